/* Which vector code paths this CPU can run. The library is compiled for
 * generic x86-64; hot loops carry AVX2 / AVX-512 variants (target attributes)
 * chosen at run time by hmti_cpu_level(). */
#ifndef HMT_KERNELS_CPU_H
#define HMT_KERNELS_CPU_H

#define AVX512_TARGET \
    __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,f16c")))
#define AVX2_TARGET __attribute__((target("avx2,fma,f16c")))

/* 2: AVX-512 F/VL/BW/DQ (+ level 1), 1: AVX2 + FMA + F16C, 0: neither.
 * Cached after the first call. */
int hmti_cpu_level(void);

/* AVX512-VBMI, GFNI and AVX512-BITALG (Ice Lake and later, Zen 4 and later):
 * the byte permutes and bit tricks of the 512-bit block kernels
 * (quant_dot_vnni_b32.c, quant_dot_vnni_k.c). Without them (Cascade Lake)
 * those types run the 256-bit kernels. */
int hmti_cpu_has_avx512_bitops(void);

/* AMX tiles with int8 products (Sapphire Rapids and later), the OS's
 * permission for this process asked for: the batched Q8_0 decode kernel
 * (quant_il16_amx.c). Cached after the first call. */
int hmti_cpu_has_amx_int8(void);

#endif

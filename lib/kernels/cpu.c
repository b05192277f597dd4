#include "kernels/cpu.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

/* F16C through cpuid: not every compiler's __builtin_cpu_supports knows it. */
static int has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

int hmti_cpu_level(void) {
    static int level = -1;
    int l = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (l < 0) {
        __builtin_cpu_init();
        const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
        if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
            __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
            l = 2;
        else
            l = avx2 ? 1 : 0;
        __atomic_store_n(&level, l, __ATOMIC_RELAXED);
    }
    return l;
}

/* Read once: the batched decode path asks per unit of rows, and in a virtual
 * machine every CPUID is a trap to the hypervisor (it took a third of a
 * Q6_K batched-decode kernel's time when asked per call). */
int hmti_cpu_has_avx512_bitops(void) {
    static int has = -1;
    int h = __atomic_load_n(&has, __ATOMIC_RELAXED);
    if (h < 0) {
        unsigned a, b, c, d; /* CPUID leaf 7, sub-leaf 0, ECX bits 1, 8 and 12 */
        h = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (c & (1u << 1)) && (c & (1u << 8)) &&
            (c & (1u << 12));
        __atomic_store_n(&has, h, __ATOMIC_RELAXED);
    }
    return h;
}

/* AMX-TILE and AMX-INT8 (CPUID leaf 7, EDX bits 24, 25), and the OS's leave:
 * Linux hands out the 8 KiB tile state per process on request
 * (arch_prctl ARCH_REQ_XCOMP_PERM = 0x1023 for XFEATURE_XTILEDATA = 18; a
 * second request, e.g. gemm_bf16.c's, is harmless). Read once. */
int hmti_cpu_has_amx_int8(void) {
    static int has = -1;
    int h = __atomic_load_n(&has, __ATOMIC_RELAXED);
    if (h < 0) {
        unsigned a, b, c, d;
        h = hmti_cpu_level() == 2 && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d & (1u << 24)) &&
            (d & (1u << 25)) && syscall(SYS_arch_prctl, 0x1023, 18) == 0;
        __atomic_store_n(&has, h, __ATOMIC_RELAXED);
    }
    return h;
}

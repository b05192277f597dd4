/* Weights kept in GGML's stored block formats, and the kernels that compute
 * on them without converting the whole matrix to F32 (docs/QUANTS.md).
 *
 * Types use ggml's numbering (enum ggml_type) so a GGUF tensor's type field
 * is used as is. A row of n elements is n / block_elems whole blocks.
 *
 * Decode (one activation row): the activation is quantized once per matmul
 * into 8-bit blocks (hmti_q8_32 for the 32-element types, hmti_q8_256 for
 * the 256-element K-quants and IQ4_XS), then each weight row is dotted with
 * it in integer arithmetic, block scales applied in float. F32, F16 and BF16
 * rows are dotted with the float activation directly.
 *
 * Every kernel has a portable C version (the oracle of tests/check_quant.c)
 * and, for the common types, AVX2 and AVX-512 (VNNI) versions; the best one
 * the CPU runs is chosen once (hmti_quant_path). */
#ifndef HMT_KERNELS_QUANT_H
#define HMT_KERNELS_QUANT_H

#include <stddef.h>
#include <stdint.h>

enum {
    HMTI_T_F32 = 0, HMTI_T_F16 = 1, HMTI_T_Q4_0 = 2, HMTI_T_Q4_1 = 3, HMTI_T_Q5_0 = 6,
    HMTI_T_Q5_1 = 7, HMTI_T_Q8_0 = 8, HMTI_T_Q2_K = 10, HMTI_T_Q3_K = 11, HMTI_T_Q4_K = 12,
    HMTI_T_Q5_K = 13, HMTI_T_Q6_K = 14, HMTI_T_IQ4_NL = 20, HMTI_T_IQ4_XS = 23, HMTI_T_BF16 = 30
};

#define HMTI_QK_K 256

typedef struct {
    const char *name;    /* ggml's name, "Q4_K" */
    uint32_t type;       /* ggml type id */
    int32_t block_elems; /* 1 for F32/F16/BF16, 32, or 256 */
    int32_t block_bytes;
    int32_t act_block;   /* activation block: 0 (float activation), 32 or 256 */
} hmti_qtraits;

/* The supported weight types, for messages. */
#define HMTI_QTYPES_LIST \
    "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS"

/* Traits of a supported weight type, NULL otherwise. */
const hmti_qtraits *hmti_qtraits_of(uint32_t type);
/* Bytes of a row of n elements; 0 if the type is unsupported or n is not a
 * positive multiple of its block. */
size_t hmti_qrow_bytes(uint32_t type, int64_t n);

/* ---- dequantization (portable C; bit-exact to tests/reference/quants_ref.py) */
/* dst[0..n) = the values of the n elements at src (n a multiple of the block).
 * F32 / F16 / BF16 rows must be aligned to their element size (GGUF data
 * is); block rows and every dot kernel need no alignment. */
void hmti_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);

/* Index of the first element whose value is not finite, or -1 (quant_check.c):
 * every element of F32/F16/BF16 data; for a block type the f16 scale fields
 * (d, dmin, m) of every block, reported as the index of the block's first
 * element. n_elems: a multiple of the block. *value (if not NULL): the
 * non-finite element or scale. */
int64_t hmti_quant_first_nonfinite(uint32_t type, const void *data, int64_t n_elems, float *value);

/* ---- activation blocks ---------------------------------------------------------- */
/* Per block: d = max|x| / 127, q = round-half-even(x * (1 / d)) in [-127, 127]
 * (d = 0, q = 0 for an all-zero block), float32 throughout; sum[i] = sum of
 * q over elements 16i .. 16i + 15. */
typedef struct {
    float d;
    int16_t sum[2];
    int8_t qs[32];
} hmti_q8_32;

typedef struct {
    float d;
    int16_t sum[16];
    int8_t qs[HMTI_QK_K];
} hmti_q8_256;

/* Bytes of the activation blocks for a row of n elements dotted with type
 * (0 for F32/F16/BF16, whose kernels read the float activation). */
size_t hmti_qact_bytes(uint32_t type, int64_t n);
/* x[0..n) -> n / block activation blocks of the kind type needs (32 or 256). */
void hmti_quantize_act(uint32_t type, const float *x, int64_t n, void *out);
/* The two block kinds directly (one definition for every dot path). */
void hmti_quantize_q8_32(const float *x, int64_t n, hmti_q8_32 *out);
void hmti_quantize_q8_256(const float *x, int64_t n, hmti_q8_256 *out);
/* One block of k values (k a multiple of 16) in portable C, the definition
 * the vector copy used by the two above must equal bit for bit: returns d,
 * fills q[k] and the k / 16 sums. */
float hmti_quantize_block_ref(const float *x, int k, int8_t *q, int16_t *sums);

/* ---- dot products ------------------------------------------------------------------ */
/* Dot of one weight row w (n elements of the type) with the activation act:
 * hmti_q8_32 / hmti_q8_256 blocks for quantized types, float[n] for
 * F32/F16/BF16. */
typedef float (*hmti_vec_dot_fn)(int64_t n, const void *w, const void *act);

enum { HMTI_QPATH_REF = 0, HMTI_QPATH_AVX2 = 1, HMTI_QPATH_AVX512 = 2, HMTI_QPATH_VNNI = 3 };
#define HMTI_QPATH_COUNT 4

/* The kernel of one path: NULL if that path has no kernel of its own for the
 * type (callers fall back to a lower path). Tests use it to compare paths. */
hmti_vec_dot_fn hmti_vec_dot_path(uint32_t type, int path);
/* The highest path this CPU runs (REF: no AVX2+FMA+F16C; VNNI: AVX-512
 * F/BW/VL/DQ plus AVX512-VNNI). Detected once. */
int hmti_quant_path(void);
/* The kernel chosen for this CPU (best path <= hmti_quant_path() that has
 * one), chosen once per type. NULL for an unsupported type. */
hmti_vec_dot_fn hmti_vec_dot_best(uint32_t type);

/* ---- GEMV on quantized rows ---------------------------------------------------------- */
/* y[r] = dot(row r of W, x) for r in [0, rows): row r at w + r * row_stride
 * bytes, cols elements each. scratch: hmti_qact_bytes(type, cols) bytes for
 * the quantized activation (unused, may be NULL, for F32/F16/BF16). The
 * activation is quantized once; the caller may split rows across threads by
 * calling hmti_gemv_q_rows on ranges with one shared, already filled scratch. */
void hmti_gemv_q(uint32_t type, int64_t rows, int64_t cols, const void *w, size_t row_stride,
                 const float *x, float *y, void *scratch);
/* Rows [r0, r1) only, activation already prepared: act = the filled scratch
 * (or x itself for F32/F16/BF16). */
void hmti_gemv_q_rows(uint32_t type, int64_t r0, int64_t r1, int64_t cols, const void *w,
                      size_t row_stride, const void *act, float *y);

/* ---- several activation rows at once (batched decode) ------------------------------- */
/* The activation rows of a batched decode step are each quantized once
 * (hmti_quantize_act), then, for the types with a multi-row kernel on this
 * CPU, also laid out for it (hmti_qact_wide): the kernel transposes a group
 * of weight rows once and dots it with every activation row. */
/* The wide layout type's multi-row kernel reads (1, 2), 3 for the kernels
 * that read the activation rows as they are (the float types: the float
 * rows; Q4_K, Q5_K, Q6_K: their 256-element blocks), or 0: none on this CPU. */
int hmti_qmulti_kind(uint32_t type);
/* Bytes of a row of cols elements (cols a multiple of 32) in wide layout kind. */
size_t hmti_qact_wide_bytes(int kind, int64_t cols);
/* act: cols / 32 activation blocks -> out (hmti_qact_wide_bytes). */
void hmti_qact_wide(int kind, const hmti_q8_32 *act, int64_t cols, void *out);
/* hmti_gemv_q_rows (il = 0: rows row_bytes apart) or hmti_gemv_q_rows_il (il = 1: an
 * interleaved matrix of `rows` rows) for n_act activation rows at once: row a's
 * activation blocks (F32/F16/BF16: its floats) at act + a * act_stride bytes,
 * its wide layout at wide + a * wide_stride; y[a * ldy + r] for r in [r0, r1),
 * each bit-identical to the one-row call. type must have hmti_qmulti_kind > 0, or
 * (il = 1) hmti_q_il_rows 16: those groups need no wide layout (wide unused). */
void hmti_gemv_q_rows_multi(uint32_t type, int il, int64_t rows, int64_t r0, int64_t r1, int64_t cols,
                            const void *w, size_t row_bytes, const void *act, size_t act_stride,
                            const void *wide, size_t wide_stride, int64_t n_act, float *y, int64_t ldy);

/* ---- interleaved layout ----------------------------------------------------------------- */
/* A matrix of Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q8_0, Q4_K, Q5_K, Q6_K, F16 or BF16 may be repacked once
 * (hmti_q_interleave) into groups of R = hmti_q_il_rows(type) = 16 rows: group g
 * (rows Rg..Rg+R-1) takes the same bytes [Rg * row_bytes, (Rg + R) *
 * row_bytes) as the R rows as stored. Rows past the last whole group stay
 * as stored. Only on CPUs whose kernels read the layout (the 512-bit VNNI
 * ones).
 *
 * Q8_0, R = 16: per block b in block order, the 16 rows' f16 scales (32
 * bytes, row order), then 512 bytes of quants as [v = 0..7][row 0..15][4
 * bytes: elements 4v..4v+3 of that row's block], each byte w ^ 0x80 (w +
 * 128 as unsigned). A 64-byte load holds 4 weights of each row in its own
 * int32 lane, so a vpdpbusd against a broadcast activation dword sums each
 * row's block in place (16 rows' results in the 16 lanes, no fold), and 8
 * such rows of 64 bytes are an AMX int8 B tile (K = 32, N = 16).
 * Q4_0, R = 16: the same with 256 bytes of nibbles after the scales, as
 * [v = 0..3][row 0..15][4 bytes: the row's stored nibble bytes 4v..4v+3]:
 * a load's low nibbles are elements 4v..4v+3 of each row, its high nibbles
 * elements 16 + 4v..16 + 4v + 3 (q + 8 as unsigned; no AMX kernel).
 * Q5_0, R = 16: the scales, the 16 rows' 32-bit 5th bits (64 bytes, row
 * order: lane r of a load), then the nibbles as Q4_0's (q + 16). Q4_1,
 * Q5_1, R = 16: as Q4_0, Q5_0 with the 16 rows' f16 mins after the scales
 * and q as stored (a second FMA per block adds the activation block's sum
 * * (min * activation scale)). IQ4_NL, R = 16: as Q4_0 (the kernels look
 * the code-book values + 128 up by nibble). Per row
 * the result is sum over blocks, in order, of one FMA: (exact int sum) *
 * (f16 scale * activation scale) + acc; not the bits of the stored rows'
 * kernel (another float order), the same bits for one or several
 * activation rows, with VNNI or AMX.
 * F16 and BF16, R = 16 (any AVX-512 CPU; rows of a multiple of 32
 * columns): the group column by column, column c's 16 values (row order,
 * 32 bytes) at 32c. Converted, a column is one vector of the 16 rows'
 * weights: one FMA per column with the activation broadcast, one
 * sequential stream per group (hmti_il16h_dot_ref: 4 chains by column mod
 * 4; not the stored rows' bits). hmti_q_il_dequant's b0 and nb count
 * columns (the types' blocks are one element).
 * Q6_K, R = 16, per super-block (256 columns, 16 x 210 bytes): the 16 rows'
 * f16 d, their int8 scales as [sub-block 0..15][row 0..15], then per 32
 * columns the low 4 bits of q (0..63) as Q4_0's nibbles (256 bytes) and
 * the top 2 bits as [16-column half][row][4 bytes, 4 fields of 2 bits]
 * (128 bytes): 6 loads give each row's 32 q in its own dword lanes. Per
 * row and super-block in order one FMA: (exact int sum over sub-blocks of
 * scale * (q - 32) . activation) * (d * activation scale) + acc. Blocks
 * (b0, nb below) of hmti_q_il_dequant are super-blocks.
 * Q4_K (Q5_K), R = 16, per super-block (256 columns, 16 x 144 (176)
 * bytes): the 16 rows' f16 d, their f16 dmin, their 12 bytes of 6-bit
 * scales and mins as [4-byte word 0..2][row][4 bytes], (Q5_K: the 32 bytes
 * of 5th bits as [4-byte word 0..7][row][4 bytes],) then the nibbles as
 * [64-column chunk][k 0..7][row][4 bytes]. Per row and super-block in
 * order two FMAs: the exact scaled int sum times d * activation scale,
 * then minus the exact min-weighted activation sum times dmin * activation
 * scale. Blocks of hmti_q_il_dequant are super-blocks (quant_impl.h has
 * every byte).
 *
 * Q2_K, Q3_K and IQ4_XS have no such layout: computed on as stored. */
/* R for type (rows per group), or 0: no kernel of this CPU reads the layout. */
int hmti_q_il_rows(uint32_t type);
/* 1 if a rows × cols matrix of type is repacked (hmti_matrix_repack): the
 * layout exists, at least one whole group, cols a multiple of 32. */
int hmti_q_il_fits(uint32_t type, int64_t rows, int64_t cols);
/* dst (row_bytes * rows bytes, not overlapping src) <- the rows at src, as
 * stored, in the interleaved layout. type must have hmti_q_il_rows > 0. */
void hmti_q_interleave(uint32_t type, int64_t rows, int64_t cols, const void *src, void *dst);
/* Blocks [b0, b0 + nb) of row r of an interleaved matrix at w, dequantized
 * into dst (nb blocks' elements). */
void hmti_q_il_dequant(uint32_t type, int64_t rows, int64_t cols, const void *w, int64_t r, int64_t b0,
                       int64_t nb, float *dst);
/* Rows [r, r + 16) of an interleaved matrix, blocks [b0, b0 + nb), into dst
 * column-major (element (r + i, column c of the range) at dst[c * ld + i]),
 * exact as hmti_q_il_dequant, if those rows are one whole group of 16
 * (every type in groups of 16; b0, nb: blocks of 32 columns for every type,
 * Q4_K and Q6_K whole super-blocks only): returns 1; else 0, nothing written. */
int hmti_q_il_dequant16(uint32_t type, int64_t rows, int64_t cols, const void *w, int64_t r, int64_t b0,
                        int64_t nb, float *dst, int64_t ld);
/* hmti_gemv_q_rows on an interleaved matrix of `rows` rows. */
void hmti_gemv_q_rows_il(uint32_t type, int64_t rows, int64_t r0, int64_t r1, int64_t cols,
                         const void *w, const void *act, float *y);
/* The bytes each of 4 places must hold for the type's interleaved kernels
 * to read them side by side (hmti_gemv_q_il4) faster than one after
 * another: 0 for any length, -1 where they never do (no such kernel). */
int64_t hmti_q_il_stream_min(uint32_t type);
/* n_groups whole groups of 16 interleaved rows at each of g[0..3] (each
 * g[s] the start of a group) against one activation, read side by side as
 * 4 streams: row r of group i of g[s] into y[s][16 i + r], each the
 * one-range call's bits. hmti_q_il_stream_min(type) must be >= 0. */
void hmti_gemv_q_il4(uint32_t type, int64_t n_groups, int64_t cols, const uint8_t *const g[4], const void *act,
                     float *const y[4]);
/* Test hook: 0 keeps the batched Q8_0 kernel of the 16-row groups off AMX
 * (the AVX512-VNNI one runs instead; the same bits), 1 (the default) lets
 * it use AMX where the CPU has it. */
void hmti_qmulti_amx_enable(int on);

/* ---- exact-activation variant (quant_dot_exact.c) ------------------------------------ */
/* The dot of the stored weights with x itself (no activation quantization),
 * up to float rounding: rows dequantized a super-block at a time, dotted in
 * float. Slower; for tests and for decode results that must not depend on
 * the 8-bit activations. x: cols floats. */
float hmti_vec_dot_exact(uint32_t type, int64_t n, const void *w, const float *x);
void hmti_gemv_q_exact(uint32_t type, int64_t rows, int64_t cols, const void *w, size_t row_stride,
                       const float *x, float *y);

#endif

/* A loaded backbone: hyperparameters from GGUF metadata, weight matrices
 * (F32 packed for the GEMM kernels, other types as stored in the mapped
 * file), the tokenizer. Immutable after hmti_model_load returns,
 * so any number of contexts on any threads share it; reference-counted so a
 * context keeps its model alive. */
#ifndef HMT_MODEL_H
#define HMT_MODEL_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/arena.h"
#include "core/busy.h"
#include "core/error.h"
#include "io/gguf.h"
#include "kernels/kernels.h"
#include "text/tokenizer.h"

typedef enum {
    HMTI_ARCH_LLAMA,
    HMTI_ARCH_QWEN2,
    HMTI_ARCH_QWEN3,
    HMTI_ARCH_GEMMA2,
    HMTI_ARCH_GEMMA3,
    HMTI_ARCH_PHI3
} hmti_arch;

typedef enum { HMTI_ROPE_NONE, HMTI_ROPE_LINEAR, HMTI_ROPE_YARN } hmti_rope_scaling;

/* RoPE as the file declares it (rope.c). */
typedef struct {
    int32_t n_rot;        /* rotated dims of each head (rope.dimension_count)        */
    int scaling;          /* hmti_rope_scaling (rope.scaling.type; absent = linear)  */
    float factor;         /* rope.scaling.factor (or rope.scale_linear); 1 = none    */
    float attn_factor;    /* rope.scaling.attn_factor                                */
    int32_t n_ctx_orig;   /* rope.scaling.original_context_length (YaRN)             */
    int has_freq_factors; /* rope_freqs.weight present (llama3 scaling)              */
    int longrope;         /* phi3: rope_factors_short/long.weight present (LongRoPE) */
} hmti_rope_cfg;

/* q, k and v are one matrix, and gate and up another, so each block runs
 * four GEMMs (four pool jobs) instead of seven. */
typedef struct {
    hmti_matrix wqkv;            /* rows: q [n_head*hd], k [n_kv*hd], v [n_kv*hd]; cols d */
    hmti_matrix wo;              /* [d][n_head*hd]                                        */
    hmti_matrix gate_up;         /* rows: gate [ff], up [ff]; cols d                      */
    hmti_matrix down;            /* [d][ff]                                               */
    float *attn_norm, *ffn_norm; /* [d]                                                   */
    float *bqkv;                 /* qwen2 q|k|v biases, NULL for llama                    */
    float *q_norm, *k_norm;      /* qwen3, gemma3 per-head RMSNorm weights [hd], else NULL */
    float *attn_post_norm, *ffn_post_norm; /* gemma2/3 norms of the attention and FFN
                                              outputs before each residual add, else NULL */
    int swa;                     /* sliding-window layer (m->n_swa; gemma3: local RoPE)    */
} hmti_layer;

struct hmt_model {
    atomic_int refs;
    hmti_gguf *gguf; /* kept mapped: metadata queries, embedding rows */
    hmti_arch arch;
    char arch_name[32];
    int32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx_train, head_dim;
    float rope_base, rms_eps;
    int rope_neox;
    hmti_rope_cfg rope;
    double *rope_freq;  /* [rope.n_rot / 2]: per-pair angle per position (rope.c) */
    float rope_mscale;  /* multiplies cos and sin (YaRN's attention factor)         */
    double *rope_freq_swa; /* sliding-window layers' table (gemma3: base 10000, unscaled);
                              == rope_freq when they share it                      */
    double *rope_freq_long; /* LongRoPE (phi3): the long factors' table, used by a context
                               longer than rope.n_ctx_orig (rope_freq: the short
                               factors'); NULL without LongRoPE                     */
    /* Gemma 2/3 (gemma.c); neutral values for the other architectures */
    int32_t n_swa;       /* window of sliding layers in KV slots (0: none)         */
    int32_t swa_period;  /* layer il slides when il % period < period - 1 (gemma);
                            0: every layer (llama, qwen2, phi3: Mistral-style)     */
    float attn_scale;    /* scores = q·k · attn_scale (1/sqrt(hd) unless gemma)    */
    float attn_softcap;  /* > 0: scores = c·tanh(scores / c) before the softmax    */
    float final_softcap; /* > 0: logits = c·tanh(logits / c)                       */
    float embd_scale;    /* token rows (hmti_model_embed) multiplied by it (gemma3) */
    float input_scale;   /* every input row multiplied by it (gemma2: tokens and
                            caller embeddings alike)                               */
    int gelu;            /* FFN gate: GELU-tanh (gemma), else SiLU                 */
    const hmti_gguf_tensor *tok_embd; /* rows converted on use, never copied */
    hmti_matrix output;               /* LM head (token_embd's rows if tied)       */
    hmti_arena weights;               /* the matrices' packed and repacked copies  */
    int embd_from_output;             /* tied and packed or repacked: embedding rows read from output */
    float *output_norm;
    hmti_layer *layers;
    hmti_vocab *vocab; /* NULL when the file has no tokenizer */
    uint64_t n_params;
    uint64_t fingerprint; /* identifies the weights in snapshots and datastores */
    atomic_int user_freed; /* hmt_model_free was called: a second call is a bug */
    hmti_guard guard;      /* last: see busy.h (magic only: a model is shared)  */
};

int hmti_model_load(hmt_model **out, const char *path);
void hmti_model_retain(hmt_model *m);
void hmti_model_release(hmt_model *m);
/* Input embedding of token t (caller checked the range) into out[n_embd]. */
void hmti_model_embed(const hmt_model *m, hmt_token t, float *out);

/* HMT_E_UNSUPPORTED naming the first metadata key or tensor of g that would
 * change the arithmetic in a way libhmt does not implement (model_unsupported.c),
 * HMT_OK if there is none. arch: the key prefix ("llama"); a: the architecture
 * (the gemma archs implement the window and, gemma2, the soft-capping keys). */
int hmti_model_refuse_unimplemented(const hmti_gguf *g, const char *arch, int32_t n_ctx_train,
                                    hmti_arch a);

/* HMT_E_UNSUPPORTED for a key the file sets to something libhmt does not
 * compute: "model: '<key>' = <value> <why>, which libhmt does not implement
 * ...". The one wording of rope.c, gemma.c and model_unsupported.c. */
int hmti_model_refuse(const char *key, const char *value, const char *why);
/* A float key that must be absent or equal to want (the value that leaves
 * the arithmetic as libhmt computes it); another value is refused with why. */
int hmti_model_float_must_be(const hmti_gguf *g, const char *key, float want,
                             const char *why);
/* RoPE (rope.c): read and check the keys (after the head size is known),
 * then, once the weights are checked, build m->rope_freq and m->rope_mscale
 * (freq_factors: rope_freqs.weight's n_rot/2 values, or NULL). */
int hmti_model_read_rope(hmt_model *m);
/* Gemma 2/3 hyperparameters (gemma.c): sliding window and its layer pattern,
 * soft-capping, attention scale, embedding scale, the local RoPE base; for
 * llama, qwen2 and phi3 the window on every layer; the neutral values
 * otherwise. After hmti_model_read_rope. */
int hmti_model_read_gemma(hmt_model *m);
/* gemma3: HMT_E_UNSUPPORTED naming the first vision tensor of the file. */
int hmti_model_refuse_vision(const hmt_model *m);
/* freq_factors: rope_freqs.weight, or LongRoPE's short factors; long: LongRoPE's
 * long factors (m->rope_freq_long), else NULL. */
int hmti_model_rope_table(hmt_model *m, const float *freq_factors, const float *long_factors);

/* The RoPE table of a layer in a context of n_ctx slots: LongRoPE's long
 * factors when the context is longer than the original one (llama.cpp's
 * rule, chosen per context as llama.cpp does), else the short or only one. */
static inline const double *hmti_model_rope_freqs(const hmt_model *m, int swa, int32_t n_ctx) {
    if (m->rope_freq_long && n_ctx > m->rope.n_ctx_orig) return m->rope_freq_long;
    return swa ? m->rope_freq_swa : m->rope_freq;
}

#endif

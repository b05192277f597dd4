/* HMT document streams: the segmenter, the summary pass, recall, the main
 * pass with sensory memory, the memory cache, and the comparison modes
 * (docs/HMT.md). Shared by stream.c (the engine) and snapshot.c. */
#ifndef HMT_STREAM_H
#define HMT_STREAM_H

#include "backbone/backbone.h"
#include "core/abort.h"
#include "core/busy.h"
#include "core/outbuf.h"
#include "stream/adapter.h"

/* Test hook: called when a segment closes with its S (NULL if none), P (NULL
 * if none) and M (NULL if none). Internal; tests set it directly. */
typedef void (*hmti_segment_hook)(void *data, int64_t segment, const float *s, const float *p,
                                  const float *m);

struct hmt_stream {
    hmt_model *model;
    const hmt_adapter *ad; /* NULL in segments/window modes without one */
    hmti_backbone bb;
    /* settings, resolved at creation */
    int mode, lookahead, all_logits, bf16;
    int32_t L, k, N, j, j_gen, d, W;
    int32_t n_sinks;      /* sinks mode: HMT_P_SINKS                          */
    int32_t seg_sinks;    /* HMT_P_SEGMENT_SINKS (experimental), 0 = off      */
    hmt_token *sink_tok;  /* the document's first seg_sinks ids [seg_sinks]  */
    /* the open segment */
    int64_t seg_index;    /* index of the open segment                       */
    hmt_token *seg_tok;   /* its tokens fed so far [L]                        */
    int32_t seg_len;      /* tokens fed into it                              */
    int32_t seg_eval;     /* tokens of it evaluated in the main pass         */
    int p_known;          /* P of the open segment is computed               */
    int prefix_done;      /* [P, sensory] rows are in the KV cache           */
    float *p, *s;         /* P and S of the open segment [d]                 */
    hmt_token *prev_tok;  /* the previous segment's tokens [L]               */
    int32_t prev_len;
    hmt_token *sens;      /* sensory ids of the open segment [k]             */
    int32_t sens_len;
    /* the memory cache, oldest first */
    float *mem, *keys;    /* [N][d], [N][d_h]                                */
    int64_t *mem_seg;     /* segment index of each memory                    */
    int32_t fill;
    float *last_m;        /* M of the last closed segment (rmt) [d]          */
    int has_last_m;
    /* recall of the open segment */
    float *rw;            /* [N]                                             */
    int64_t *rseg;        /* [N]                                             */
    int32_t rn;
    float *q;             /* scratch [d_h]                                   */
    /* window mode: the ids of the last W tokens (ring) */
    hmt_token *win;
    int64_t win_base;     /* window and sinks modes: tokens dropped from the
                             cache so far (its fill is n_fed - win_base)      */
    /* counters and outputs */
    int64_t n_fed, n_ready;
    int64_t ready_first;  /* outputs of the last call: [ready_first, n_ready) */
    float *logits;        /* rows for ready tokens of the last call          */
    size_t logits_cap;    /* in rows                                         */
    int keep_ffn;         /* HMT_P_KEEP_FFN_INPUT                            */
    float *ffn;           /* kNN keys, rows parallel to logits               */
    size_t ffn_cap;
    hmti_retired retired; /* outgrown logits/ffn blocks, kept until free  */
    uint8_t *flags;       /* per-row output flags scratch [n_batch]          */
    float *pass_buf;      /* hmt_streams_feed's outputs when this stream leads
                             a batched pass (grown on first use)             */
    size_t pass_cap;      /* in floats                                       */
    float *hidden;        /* [d] scratch for M / S                           */
    int broken;
    hmti_abort abort;     /* polled between layers of every pass         */
    hmt_recall_fn recall_fn;
    void *recall_data;
    hmti_segment_hook hook;
    void *hook_data;
    hmti_guard guard; /* last: see busy.h */
};

/* Modes that cut the text into segments (full, rmt, segments); window and
 * sinks run the backbone over one sliding cache instead. */
static inline int hmti_mode_segmented(int mode) {
    return mode != HMT_MODE_WINDOW && mode != HMT_MODE_SINKS;
}

/* hmt_stream_feed without the handle guard (the caller holds it). */
int hmti_stream_feed(hmt_stream *s, const hmt_token *tokens, size_t n);

/* One-token steps done for several streams in one backbone pass
 * (streams_feed.c). step_slot: the KV slot (= RoPE position) of the next
 * token when feeding it takes exactly one backbone row at that slot and
 * nothing before it (no segment prompt, prefix, refill or shift pending),
 * else -1. step_reserve: room for that token's outputs (HMT_E_NOMEM
 * changes nothing). step_done: record the token as fed and evaluated with
 * these outputs, closing the segment it completes (a failure there breaks
 * the stream, as in hmt_stream_feed). */
int32_t hmti_stream_step_slot(const hmt_stream *s);
int hmti_stream_step_reserve(hmt_stream *s);
int hmti_stream_step_done(hmt_stream *s, hmt_token tok, const float *logits, const float *ffn);
/* Test hook: rows evaluated so far, process-wide, in batched passes of two
 * or more streams. */
long long hmti_streams_rows_batched(void);

#endif

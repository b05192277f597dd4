/* The end-of-generation set of a vocabulary (rules in eog.h). */
#include "text/eog.h"

#include <string.h>

#include "core/error.h"

/* Texts that end a generation, whatever their token type (llama.cpp's list). */
static const char *const EOG_TEXTS[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>",
    "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>",
    "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<eos>",
    "<turn|>", "<|tool_response>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>", /* DeepSeek */
    "[e~[",
};

/* Texts that make a token the end-of-turn token when no id is given. */
static const char *const EOT_TEXTS[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>",
    "<end_of_utterance>",
};

static const char *const EOM_TEXTS[] = {"<|eom_id|>"};
static const char *const FIM_PAD_TEXTS[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>",
                                            "[PAD]"};
static const char *const FIM_REP_TEXTS[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                            "<REPO>", "<reponame>"};
static const char *const FIM_SEP_TEXTS[] = {"<|file_sep|>"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static hmt_token find(const hmti_vocab *v, const char *text) {
    return hmti_vocab_find(v, text, strlen(text));
}

/* Lowest id among the tokens with one of these texts, or -1. */
static hmt_token lowest_of(const hmti_vocab *v, const char *const *texts, size_t n) {
    hmt_token best = -1;
    for (size_t i = 0; i < n; i++) {
        hmt_token t = find(v, texts[i]);
        if (t >= 0 && (best < 0 || t < best)) best = t;
    }
    return best;
}

/* An optional id key: -1 when absent, stored as -1 / UINT32_MAX ("none") or
 * outside the vocabulary (warned, as llama.cpp does). */
static int meta_id(const hmti_vocab *v, const hmti_gguf *g, const char *key, hmt_token *out) {
    *out = -1;
    if (hmti_gguf_find_key(g, key) < 0) return HMT_OK; /* absent: no message */
    int64_t x;
    int rc = hmti_gguf_get_i64(g, key, &x);
    if (rc) return rc;
    if (x == -1 || x == (int64_t)UINT32_MAX) return HMT_OK;
    if (x < 0 || x >= hmti_vocab_n_tokens(v)) {
        hmti_log(HMT_LOG_WARN, "tokenizer: %s = %lld is outside [0, %d): ignored", key,
                 (long long)x, hmti_vocab_n_tokens(v));
        return HMT_OK;
    }
    *out = (hmt_token)x;
    return HMT_OK;
}

static void add(hmti_eog *e, hmt_token t) {
    if (t < 0) return;
    int32_t i = 0;
    while (i < e->n && e->ids[i] < t) i++;
    if (i < e->n && e->ids[i] == t) return;
    if (e->n == HMTI_EOG_MAX) return; /* cannot happen: see HMTI_EOG_MAX */
    memmove(e->ids + i + 1, e->ids + i, (size_t)(e->n - i) * sizeof *e->ids);
    e->ids[i] = t;
    e->n++;
}

static void drop(hmti_eog *e, hmt_token t) {
    for (int32_t i = 0; i < e->n; i++) {
        if (e->ids[i] != t) continue;
        memmove(e->ids + i, e->ids + i + 1, (size_t)(e->n - i - 1) * sizeof *e->ids);
        e->n--;
        return;
    }
}

int hmti_eog_has(const hmti_eog *e, hmt_token t) {
    if (!e || t < 0) return 0;
    int32_t lo = 0, hi = e->n;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (e->ids[mid] < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < e->n && e->ids[lo] == t;
}

/* The text's token is in the set (and its id, or -1). */
static hmt_token member(const hmti_eog *e, const hmti_vocab *v, const char *text) {
    hmt_token t = find(v, text);
    return hmti_eog_has(e, t) ? t : -1;
}

int hmti_eog_init(hmti_eog *e, const hmti_vocab *v, const hmti_gguf *g) {
    memset(e, 0, sizeof *e);
    e->eot = e->eom = -1;
    hmt_token pad, rep, sep;
    int rc;
    if ((rc = meta_id(v, g, "tokenizer.ggml.eot_token_id", &e->eot)) ||
        (rc = meta_id(v, g, "tokenizer.ggml.eom_token_id", &e->eom)) ||
        (rc = meta_id(v, g, "tokenizer.ggml.fim_pad_token_id", &pad)) ||
        (rc = meta_id(v, g, "tokenizer.ggml.fim_rep_token_id", &rep)) ||
        (rc = meta_id(v, g, "tokenizer.ggml.fim_sep_token_id", &sep)))
        return rc;
    if (e->eot < 0) e->eot = lowest_of(v, EOT_TEXTS, COUNT(EOT_TEXTS));
    if (e->eom < 0) e->eom = lowest_of(v, EOM_TEXTS, COUNT(EOM_TEXTS));
    if (pad < 0) pad = lowest_of(v, FIM_PAD_TEXTS, COUNT(FIM_PAD_TEXTS));
    if (rep < 0) rep = lowest_of(v, FIM_REP_TEXTS, COUNT(FIM_REP_TEXTS));
    if (sep < 0) sep = lowest_of(v, FIM_SEP_TEXTS, COUNT(FIM_SEP_TEXTS));
    add(e, pad);
    add(e, rep);
    add(e, sep);
    for (size_t i = 0; i < COUNT(EOG_TEXTS); i++) add(e, find(v, EOG_TEXTS[i]));
    add(e, hmti_vocab_eos(v));
    add(e, e->eot);
    add(e, e->eom);
    /* llama.cpp's exceptions (gpt-oss / solar-open, gemma4) */
    hmt_token end = member(e, v, "<|end|>");
    int has_return = member(e, v, "<|return|>") >= 0;
    int has_call = member(e, v, "<|call|>") >= 0 || member(e, v, "<|calls|>") >= 0;
    int has_flush = member(e, v, "<|flush|>") >= 0;
    if (end >= 0 && has_call && (has_return || has_flush)) drop(e, end);
    hmt_token s = member(e, v, "</s>");
    if (s >= 0 && member(e, v, "<|tool_response>") >= 0) drop(e, s);
    return HMT_OK;
}

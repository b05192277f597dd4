/* Repetition metrics of generated text (algorithms.md §3.5), header-only,
 * shared by the generation benchmarks:
 *   seq-rep-n (Welleck, n = 1..4): 1 − unique n-grams / n-grams, per continuation
 *   rep-sen: (#sentences − #unique) / #sentences, sentences split at delimiter
 *            tokens (text before the first one excluded, the last span drops
 *            its final token, as DITTO's report_metrics.py)
 *   rep-w (Fu, w = 16): fraction of tokens that occur in the previous w tokens
 *   rep-r (Fu): fraction of tokens in a bigram that occurs more than once
 * Each is summed per continuation by repm_add and averaged by repm_mean. */
#ifndef HMT_BENCH_REP_METRICS_H
#define HMT_BENCH_REP_METRICS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hmt/hmt.h>

typedef struct {
    double seq_rep[5], rep_sen, rep_w, rep_r; /* sums over continuations  */
    int n_cont[5], n_sen_cont, n_w_cont;      /* continuations summed     */
} repm;

static int repm_n; /* n of the n-grams the qsort comparator compares */

static int repm_cmp_ngram(const void *a, const void *b) {
    return memcmp(*(const hmt_token *const *)a, *(const hmt_token *const *)b,
                  (size_t)repm_n * sizeof(hmt_token));
}

/* Number of distinct n-grams of s[0..len); tmp holds len pointers. */
static int repm_distinct_ngrams(const hmt_token *s, int len, int n, const hmt_token **tmp) {
    int m = len - n + 1;
    if (m <= 0) return 0;
    for (int i = 0; i < m; i++) tmp[i] = s + i;
    repm_n = n;
    qsort(tmp, (size_t)m, sizeof *tmp, repm_cmp_ngram);
    int u = 1;
    for (int i = 1; i < m; i++) u += repm_cmp_ngram(&tmp[i - 1], &tmp[i]) != 0;
    return u;
}

static int repm_same_span(const hmt_token *a, int la, const hmt_token *b, int lb) {
    return la == lb && !memcmp(a, b, (size_t)la * sizeof *a);
}

/* Add one continuation s[0..len). is_delim[v] marks the sentence ends;
 * tmp holds len pointers. */
static void repm_add(repm *m, const hmt_token *s, int len, const unsigned char *is_delim,
                     int32_t n_vocab, const hmt_token **tmp) {
    for (int n = 1; n <= 4; n++) {
        int total = len - n + 1;
        if (total <= 0) continue;
        m->seq_rep[n] += 1.0 - (double)repm_distinct_ngrams(s, len, n, tmp) / total;
        m->n_cont[n]++;
    }
    /* rep-sen: spans after each delimiter, up to the next one (the last span
       stops one token before the end) */
    int starts[1024], lens[1024], ns = 0, prev = -1;
    for (int i = 0; i < len && ns < 1024; i++) {
        if (s[i] < 0 || s[i] >= n_vocab || !is_delim[s[i]]) continue;
        if (prev >= 0) {
            starts[ns] = prev + 1;
            lens[ns++] = i - prev - 1;
        }
        prev = i;
    }
    if (prev >= 0 && ns < 1024) {
        starts[ns] = prev + 1;
        lens[ns] = len - 1 - (prev + 1);
        if (lens[ns] < 0) lens[ns] = 0;
        ns++;
    }
    if (ns > 0) {
        int uniq = 0;
        for (int i = 0; i < ns; i++) {
            int seen = 0;
            for (int j = 0; j < i && !seen; j++)
                seen = repm_same_span(s + starts[i], lens[i], s + starts[j], lens[j]);
            uniq += !seen;
        }
        m->rep_sen += (double)(ns - uniq) / ns;
    }
    m->n_sen_cont++; /* 0 for a continuation without a delimiter */
    if (len > 0) {
        int hits = 0;
        for (int i = 0; i < len; i++) {
            int lo = i - 16 < 0 ? 0 : i - 16;
            for (int j = lo; j < i; j++)
                if (s[j] == s[i]) {
                    hits++;
                    break;
                }
        }
        m->rep_w += (double)hits / len;
        /* rep-r: a token counts if (s[i-1], s[i]) or (s[i], s[i+1]) occurs twice */
        int rr = 0;
        for (int i = 0; i < len; i++) {
            int rep = 0;
            for (int side = 0; side < 2 && !rep; side++) {
                int a = side == 0 ? i - 1 : i;
                if (a < 0 || a + 1 >= len) continue;
                for (int j = 0; j + 1 < len && !rep; j++)
                    if (j != a && s[j] == s[a] && s[j + 1] == s[a + 1]) rep = 1;
            }
            rr += rep;
        }
        m->rep_r += (double)rr / len;
        m->n_w_cont++;
    }
}

/* Averages over continuations: out[0..3] = seq-rep-1..4, out[4] rep-sen,
 * out[5] rep-w16, out[6] rep-r. */
static void repm_mean(const repm *m, double out[7]) {
    for (int n = 1; n <= 4; n++) out[n - 1] = m->n_cont[n] ? m->seq_rep[n] / m->n_cont[n] : 0.0;
    out[4] = m->n_sen_cont ? m->rep_sen / m->n_sen_cont : 0.0;
    out[5] = m->n_w_cont ? m->rep_w / m->n_w_cont : 0.0;
    out[6] = m->n_w_cont ? m->rep_r / m->n_w_cont : 0.0;
}

#endif /* HMT_BENCH_REP_METRICS_H */

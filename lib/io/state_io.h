/* Saved states (stream snapshots, context states): one walk over an object
 * serves saving, checking and loading it, each field copied between the
 * object and a cursor over a buffer; and the file side of both (atomic
 * write, bounded read of a regular file). */
#ifndef HMT_STATE_IO_H
#define HMT_STATE_IO_H

#include <stddef.h>
#include <stdint.h>

#include "hmt/hmt.h"

typedef enum { HMTI_SAVE, HMTI_CHECK, HMTI_LOAD } hmti_walk_kind;

typedef struct {
    hmti_walk_kind kind;
    unsigned char *out;      /* SAVE: output (NULL while measuring) */
    const unsigned char *in; /* CHECK, LOAD: input                  */
    size_t pos, len;         /* CHECK, LOAD: a field past len sets bad */
    int bad;
    int32_t n_vocab;        /* CHECK: token ids must lie below it...  */
    int bad_id;             /* ...else this is set                     */
    const char *bad_float;  /* CHECK: the first field with a non-finite value */
    int64_t bad_float_at;   /* its index in that field               */
} hmti_walk;

/* n bytes of field: SAVE copies them out (when out is set), LOAD in, CHECK
 * only advances; every kind moves pos by n. */
void hmti_walk_bytes(hmti_walk *c, void *field, size_t n);
/* Token ids: CHECK also requires 0 <= id < n_vocab (else bad_id). */
void hmti_walk_tokens(hmti_walk *c, hmt_token *field, size_t n);
/* Floats: CHECK also requires them finite (a NaN in a cache would turn
 * every later logit into NaN); the first offender is named by bad_float
 * (= name) and bad_float_at (its index in this call, plus `base`). */
void hmti_walk_floats(hmti_walk *c, float *field, size_t n, const char *name, int64_t base);
/* The same for 16-bit floats: IEEE half, or bfloat16 when bf16. */
void hmti_walk_halves(hmti_walk *c, uint16_t *field, size_t n, int bf16, const char *name,
                      int64_t base);

/* Write len bytes to path atomically (lib/io/atomic_file.c): on failure
 * path is unchanged. HMT_OK or HMT_E_IO / HMT_E_NOMEM with a message. */
int hmti_state_write_file(const char *path, const void *buf, size_t len, const char *who);

/* Read the regular file path into a malloc'd *buf (*len bytes): HMT_E_IO
 * for a folder, FIFO or device or a read error; HMT_E_FORMAT, before a byte
 * is read, when it is larger than max ("who: 'path' has N bytes, more than
 * any `what` (at most max)"). */
int hmti_state_read_file(const char *path, size_t max, const char *what, const char *who,
                         unsigned char **buf, size_t *len);

#endif

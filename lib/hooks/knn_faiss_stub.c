/* The FAISS bridge (lib/hooks/knn_faiss.h) of a libhmt built without FAISS
 * (`make HAVE_FAISS=0`, or libfaiss-dev not installed): every entry point
 * reports that the backend is not built in, so the rest of the library links
 * and works unchanged. The Makefile compiles either this file or
 * lib/hooks/knn_faiss.cc, never both. */
#include "core/error.h"
#include "hooks/knn_faiss.h"

#define NOT_BUILT(what)                                                                    \
    hmti_errf(HMT_E_UNSUPPORTED, "%s: the FAISS backend is not built into this libhmt "   \
              "(install libfaiss-dev and rebuild; see docs/KNN.md)", what)

int hmti_faiss_available(void) { return 0; }

int hmti_faiss_create(hmti_faiss **out, int32_t d, int32_t nlist, int32_t m, uint64_t seed) {
    (void)d, (void)nlist, (void)m, (void)seed;
    *out = NULL;
    return NOT_BUILT("knn faiss");
}

void hmti_faiss_free(hmti_faiss *f) { (void)f; }

int hmti_faiss_train(hmti_faiss *f, hmti_pool *pool, int64_t n, const float *x) {
    (void)f, (void)pool, (void)n, (void)x;
    return NOT_BUILT("knn faiss");
}

int hmti_faiss_add(hmti_faiss *f, hmti_pool *pool, int64_t first_id, int64_t n, const float *x) {
    (void)f, (void)pool, (void)first_id, (void)n, (void)x;
    return NOT_BUILT("knn faiss");
}

int hmti_faiss_write(const hmti_faiss *f, hmti_faiss_write_fn write, void *ud) {
    (void)f, (void)write, (void)ud;
    return NOT_BUILT("knn faiss");
}

int hmti_faiss_read(hmti_faiss **out, const void *bytes, size_t len) {
    (void)bytes, (void)len;
    *out = NULL;
    return NOT_BUILT("knn faiss");
}

void hmti_faiss_get_shape(const hmti_faiss *f, hmti_faiss_shape *out) {
    (void)f;
    *out = (hmti_faiss_shape){0, 0, 0, 0, 0};
}

int hmti_faiss_search(const hmti_faiss *f, int n_threads, const float *q, int64_t nq, int64_t k,
                      int32_t nprobe, float *dist, int64_t *labels) {
    (void)f, (void)n_threads, (void)q, (void)nq, (void)k, (void)nprobe, (void)dist, (void)labels;
    return NOT_BUILT("knn faiss");
}

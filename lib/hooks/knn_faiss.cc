// libhmt's only C++ file: the FAISS IVF-PQ index behind lib/knn_faiss.h.
//
// Debian's libfaiss-dev is a static C++ library whose C API headers ship
// without their implementation, so this file is that C face. Its functions
// have C linkage and hidden visibility (the version script exports hmt_*
// only); every exception is caught here and becomes an hmt status with a
// message. FAISS's own OpenMP threads are set per call and restored after.
#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <faiss/invlists/InvertedLists.h>
#include <omp.h>

#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <vector>

extern "C" {
#include "core/error.h"
}
#include "hooks/knn_faiss.h"

namespace {

using idx_t = faiss::Index::idx_t;

// A failure already recorded with hmti_errf, carried through FAISS's frames.
struct Status {
    int code;
};

// FAISS parallelizes with OpenMP; this sets the calling thread's team size for
// one call and gives the host's setting back afterwards.
struct OmpThreads {
    int prev;
    explicit OmpThreads(int n) : prev(omp_get_max_threads()) { omp_set_num_threads(n < 1 ? 1 : n); }
    ~OmpThreads() { omp_set_num_threads(prev); }
    OmpThreads(const OmpThreads &) = delete;
    OmpThreads &operator=(const OmpThreads &) = delete;
};

// Run fn; map whatever it throws to a status. faiss_code is the status for a
// FAISS exception (HMT_E_FORMAT when reading a file, HMT_E_INTERNAL elsewhere).
template <class F> int guarded(const char *what, int faiss_code, F &&fn) {
    try {
        return fn();
    } catch (const Status &s) {
        return s.code;
    } catch (const std::bad_alloc &) {
        return hmti_errf(HMT_E_NOMEM, "%s: out of memory", what);
    } catch (const faiss::FaissException &e) {
        return hmti_errf(faiss_code, "%s: FAISS: %s", what, e.what());
    } catch (const std::exception &e) {
        return hmti_errf(HMT_E_INTERNAL, "%s: %s", what, e.what());
    } catch (...) {
        return hmti_errf(HMT_E_INTERNAL, "%s: unknown C++ exception", what);
    }
}

// A FAISS index whose search is hmti_nearest_rows: given to faiss::Clustering
// for the assignment step of k-means (k = 1 is all it asks for).
struct GemmAssign : faiss::Index {
    std::vector<float> rows;
    hmti_pool *pool;
    GemmAssign(idx_t dim, hmti_pool *p) : faiss::Index(dim, faiss::METRIC_L2), pool(p) {}
    void add(idx_t n, const float *x) override {
        rows.insert(rows.end(), x, x + n * d);
        ntotal += n;
    }
    void reset() override {
        rows.clear();
        ntotal = 0;
    }
    void search(idx_t n, const float *x, idx_t k, float *dist, idx_t *labels,
                const faiss::SearchParameters *) const override {
        if (k != 1) FAISS_THROW_MSG("GemmAssign: only k = 1 is implemented");
        int rc = hmti_nearest_rows(pool, x, n, rows.data(), ntotal, d, dist, labels);
        if (rc) throw Status{rc};
    }
};

struct MemReader : faiss::IOReader {
    const unsigned char *p;
    size_t len, pos = 0;
    MemReader(const void *bytes, size_t n) : p(static_cast<const unsigned char *>(bytes)), len(n) {}
    size_t operator()(void *ptr, size_t size, size_t nitems) override {
        if (size == 0 || nitems == 0) return 0;
        size_t avail = (len - pos) / size;
        size_t n = nitems < avail ? nitems : avail;
        std::memcpy(ptr, p + pos, n * size);
        pos += n * size;
        return n;
    }
};

struct CallbackWriter : faiss::IOWriter {
    hmti_faiss_write_fn fn;
    void *ud;
    bool failed = false;
    CallbackWriter(hmti_faiss_write_fn f, void *u) : fn(f), ud(u) {}
    size_t operator()(const void *ptr, size_t size, size_t nitems) override {
        if (failed) return 0;
        if (size && nitems && fn(ud, ptr, size * nitems)) {
            failed = true;
            return 0;
        }
        return nitems;
    }
};

// Residuals x − centroid(list) of n vectors.
void residuals(const faiss::IndexFlat &q, const float *x, idx_t n, const idx_t *list, float *out) {
    const idx_t d = q.d;
    const float *c = q.get_xb();
    for (idx_t i = 0; i < n; i++)
        for (idx_t p = 0; p < d; p++) out[i * d + p] = x[i * d + p] - c[list[i] * d + p];
}

void nearest(hmti_pool *pool, const float *x, idx_t n, const float *c, idx_t nc, idx_t d,
             float *dist, idx_t *idx) {
    int rc = hmti_nearest_rows(pool, x, n, c, nc, d, dist, idx);
    if (rc) throw Status{rc};
}

} // namespace

struct hmti_faiss {
    std::unique_ptr<faiss::IndexIVFPQ> ix;
    faiss::IndexFlat *coarse() const { return static_cast<faiss::IndexFlat *>(ix->quantizer); }
};

extern "C" {

int hmti_faiss_available(void) { return 1; }

int hmti_faiss_create(hmti_faiss **out, int32_t d, int32_t nlist, int32_t m, uint64_t seed) {
    *out = nullptr;
    return guarded("knn faiss create", HMT_E_INVAL, [&]() -> int {
        std::unique_ptr<hmti_faiss> f(new hmti_faiss);
        std::unique_ptr<faiss::IndexFlatL2> q(new faiss::IndexFlatL2(d));
        f->ix.reset(new faiss::IndexIVFPQ(q.get(), (size_t)d, (size_t)nlist, (size_t)m, 8));
        q.release();
        f->ix->own_fields = true;
        f->ix->cp.niter = 10;    // FAISS's IVF default, stated so the docs hold
        f->ix->pq.cp.niter = 25; // FAISS's k-means default
        f->ix->cp.seed = (int)(seed & 0x7fffffff);
        f->ix->pq.cp.seed = (int)((seed >> 31) & 0x7fffffff) ^ 0x5bd1e995;
        *out = f.release();
        return HMT_OK;
    });
}

void hmti_faiss_free(hmti_faiss *f) { delete f; }

// What IndexIVFPQ::train does (coarse k-means, residuals, PQ k-means, the
// precomputed tables), with the assignments through GemmAssign.
int hmti_faiss_train(hmti_faiss *f, hmti_pool *pool, int64_t n, const float *x) {
    return guarded("knn faiss train", HMT_E_INTERNAL, [&]() -> int {
        OmpThreads one(1); // the parallel work runs on libhmt's pool
        faiss::IndexIVFPQ &ix = *f->ix;
        const idx_t d = ix.d;
        faiss::Clustering coarse_km((int)d, (int)ix.nlist, ix.cp);
        GemmAssign ga(d, pool);
        coarse_km.train(n, x, ga);
        ix.quantizer->reset();
        ix.quantizer->add((idx_t)ix.nlist, coarse_km.centroids.data());
        std::vector<idx_t> list(n);
        std::vector<float> dist(n), res((size_t)n * d);
        nearest(pool, x, n, f->coarse()->get_xb(), (idx_t)ix.nlist, d, dist.data(), list.data());
        residuals(*f->coarse(), x, n, list.data(), res.data());
        GemmAssign gs((idx_t)ix.pq.dsub, pool);
        ix.pq.assign_index = &gs;
        try {
            ix.pq.train((size_t)n, res.data());
        } catch (...) {
            ix.pq.assign_index = nullptr;
            throw;
        }
        ix.pq.assign_index = nullptr;
        ix.is_trained = true;
        ix.precompute_table();
        return HMT_OK;
    });
}

int hmti_faiss_add(hmti_faiss *f, hmti_pool *pool, int64_t first_id, int64_t n, const float *x) {
    return guarded("knn faiss add", HMT_E_INTERNAL, [&]() -> int {
        faiss::IndexIVFPQ &ix = *f->ix;
        if (!ix.is_trained) FAISS_THROW_MSG("index not trained");
        const idx_t d = ix.d, M = (idx_t)ix.pq.M, ds = (idx_t)ix.pq.dsub, ks = (idx_t)ix.pq.ksub;
        std::vector<idx_t> list(n), sub_code(n);
        std::vector<float> dist(n), res((size_t)n * d), sub((size_t)n * ds);
        std::vector<uint8_t> codes((size_t)n * M);
        nearest(pool, x, n, f->coarse()->get_xb(), (idx_t)ix.nlist, d, dist.data(), list.data());
        residuals(*f->coarse(), x, n, list.data(), res.data());
        for (idx_t j = 0; j < M; j++) { // sub-quantizer j encodes columns [j·ds, (j+1)·ds)
            for (idx_t i = 0; i < n; i++)
                std::memcpy(&sub[i * ds], &res[i * d + j * ds], ds * sizeof(float));
            nearest(pool, sub.data(), n, ix.pq.get_centroids(j, 0), ks, ds, dist.data(),
                    sub_code.data());
            for (idx_t i = 0; i < n; i++) codes[i * M + j] = (uint8_t)sub_code[i];
        }
        for (idx_t i = 0; i < n; i++)
            ix.invlists->add_entry((size_t)list[i], first_id + i, &codes[i * M]);
        ix.ntotal += n;
        return HMT_OK;
    });
}

int hmti_faiss_write(const hmti_faiss *f, hmti_faiss_write_fn write, void *ud) {
    CallbackWriter w(write, ud);
    int rc = guarded("knn faiss write", HMT_E_IO, [&]() -> int {
        faiss::write_index(f->ix.get(), &w);
        return HMT_OK;
    });
    return w.failed ? HMT_E_IO : rc; // the callback's message stands
}

int hmti_faiss_read(hmti_faiss **out, const void *bytes, size_t len) {
    *out = nullptr;
    return guarded("knn faiss read", HMT_E_FORMAT, [&]() -> int {
        MemReader r(bytes, len);
        std::unique_ptr<faiss::Index> idx(faiss::read_index(&r));
        auto *ivfpq = dynamic_cast<faiss::IndexIVFPQ *>(idx.get());
        if (!ivfpq || ivfpq->metric_type != faiss::METRIC_L2 || !ivfpq->is_trained ||
            !ivfpq->by_residual || ivfpq->pq.nbits != 8 ||
            !dynamic_cast<faiss::IndexFlatL2 *>(ivfpq->quantizer) ||
            !dynamic_cast<faiss::ArrayInvertedLists *>(ivfpq->invlists))
            return hmti_errf(HMT_E_FORMAT, "knn faiss read: not a trained L2 IVF-PQ index with a "
                             "flat quantizer, in-memory lists and 8-bit codes");
        if (r.pos != len)
            return hmti_errf(HMT_E_FORMAT, "knn faiss read: %zu trailing bytes after the index",
                             len - r.pos);
        std::unique_ptr<hmti_faiss> f(new hmti_faiss);
        idx.release();
        f->ix.reset(ivfpq);
        *out = f.release();
        return HMT_OK;
    });
}

void hmti_faiss_get_shape(const hmti_faiss *f, hmti_faiss_shape *out) {
    out->d = (int32_t)f->ix->d;
    out->nlist = (int32_t)f->ix->nlist;
    out->m = (int32_t)f->ix->pq.M;
    out->nbits = (int32_t)f->ix->pq.nbits;
    out->ntotal = (int64_t)f->ix->ntotal;
}

int hmti_faiss_search(const hmti_faiss *f, int n_threads, const float *q, int64_t nq, int64_t k,
                      int32_t nprobe, float *dist, int64_t *labels) {
    return guarded("knn faiss search", HMT_E_INTERNAL, [&]() -> int {
        OmpThreads team(n_threads);
        faiss::SearchParametersIVF sp;
        sp.nprobe = (size_t)nprobe < f->ix->nlist ? (size_t)nprobe : f->ix->nlist;
        f->ix->search(nq, q, k, dist, labels, &sp);
        return HMT_OK;
    });
}

} // extern "C"

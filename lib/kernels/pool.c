/* A small persistent thread pool. One job at a time: the caller publishes
 * (fn, arg) and a ticket = (job number << 16 | next share), runs share 0
 * itself, then at once claims any share no worker has claimed yet: a worker
 * that has not started by then is asleep or descheduled (2 shared cores),
 * and would need its wake-up plus the whole share, so the caller doing it
 * is never later (it used to wait 20 µs first: up to 20 µs per job, and a
 * decode step runs ~150 jobs per token). Workers spin on the ticket for
 * SPIN_NS after each job, then sleep on a condition variable; the caller
 * likewise spins, then sleeps, while in-flight shares finish.
 *
 * Every share ith in [0, nth) runs exactly once per job, share 0 on the
 * caller's thread; other shares may run on any pool thread, so ith names a
 * share (e.g. a scratch slot), not an OS thread.
 *
 * Memory order: fn/arg are written before the ticket (seq_cst store) and read
 * after a successful claim (CAS), and the caller cannot publish the next job
 * before every share of this one has finished, so a claimed share always sees
 * its own job's fn/arg. Sequentially consistent atomics on the "am I about to
 * sleep" flags (n_sleeping, caller_sleeping) make check-then-wait safe
 * (Dekker-style).
 *
 * A pool is also the public hmt_threadpool: reference counted (every
 * context, stream and datastore using it holds a reference), shared by any
 * number of them, and used by one of them at a time: a forward pass or a
 * search acquires it (use_mu) for its whole duration, so jobs and the
 * scratch never interleave. The process-wide default pool (one thread per
 * online CPU) is created on first use and stopped when its last user goes. */
#include <errno.h>
#include <immintrin.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "core/alloc.h"
#include "core/busy.h"
#include "core/error.h"
#include "core/params.h"
#include "kernels/kernels.h"

#define SPIN_NS 100000 /* ~100 µs: covers the gap between two layers' jobs */
#define SHARE_BITS 16
#define SHARE_MASK ((UINT64_C(1) << SHARE_BITS) - 1)

struct hmt_threadpool {
    int n_threads;
    atomic_int refs;
    pthread_mutex_t use_mu; /* held by the one user running jobs           */
    int is_default;         /* the process default: released under default_mu */
    void *scratch;                    /* shared part, then n_threads local parts */
    size_t shared_bytes, local_bytes; /* each rounded up to 64                   */
    pthread_t *threads;
    struct worker_arg *wargs;
    int n_started;
    uint64_t job; /* caller-only counter */

    hmti_job_fn fn;
    void *arg;
    _Atomic uint64_t ticket;    /* job << 16 | next unclaimed share */
    atomic_int pending;         /* shares 1..n-1 not finished yet   */
    atomic_int n_sleeping;      /* workers blocked on cv_work       */
    atomic_int caller_sleeping; /* caller blocked on cv_done        */
    atomic_int stop;

    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
    hmti_guard guard; /* last: see busy.h */
};

struct worker_arg {
    hmti_pool *pool;
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void cpu_relax(void) { _mm_pause(); }

/* Claim and run unclaimed shares until none is left. */
static void run_shares(hmti_pool *pool) {
    const uint64_t n = (uint64_t)pool->n_threads;
    uint64_t v = atomic_load_explicit(&pool->ticket, memory_order_acquire);
    while ((v & SHARE_MASK) < n) {
        if (!atomic_compare_exchange_weak_explicit(&pool->ticket, &v, v + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        pool->fn(pool->arg, (int)(v & SHARE_MASK), (int)n);
        if (atomic_fetch_sub(&pool->pending, 1) == 1 && atomic_load(&pool->caller_sleeping)) {
            pthread_mutex_lock(&pool->mu);
            pthread_cond_broadcast(&pool->cv_done);
            pthread_mutex_unlock(&pool->mu);
        }
        v = atomic_load_explicit(&pool->ticket, memory_order_acquire);
    }
}

static void *worker_main(void *p) {
    hmti_pool *pool = ((struct worker_arg *)p)->pool;
    uint64_t seen = 0;
    for (;;) {
        /* wait for a new job number: spin, then sleep */
        uint64_t v = atomic_load_explicit(&pool->ticket, memory_order_acquire);
        if (v >> SHARE_BITS == seen) {
            int64_t t0 = now_ns();
            for (int i = 1;; i++) {
                cpu_relax();
                v = atomic_load_explicit(&pool->ticket, memory_order_acquire);
                if (v >> SHARE_BITS != seen) break;
                if ((i & 63) == 0 && now_ns() - t0 > SPIN_NS) break;
            }
        }
        if (v >> SHARE_BITS == seen) {
            pthread_mutex_lock(&pool->mu);
            atomic_fetch_add(&pool->n_sleeping, 1);
            while ((v = atomic_load(&pool->ticket)) >> SHARE_BITS == seen)
                pthread_cond_wait(&pool->cv_work, &pool->mu);
            atomic_fetch_sub(&pool->n_sleeping, 1);
            pthread_mutex_unlock(&pool->mu);
        }
        seen = v >> SHARE_BITS;
        if (atomic_load_explicit(&pool->stop, memory_order_acquire)) break;
        run_shares(pool);
    }
    return NULL;
}

static void wake_workers(hmti_pool *pool) {
    if (atomic_load(&pool->n_sleeping) > 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->cv_work);
        pthread_mutex_unlock(&pool->mu);
    }
}

static void stop_and_join(hmti_pool *pool) {
    atomic_store(&pool->stop, 1);
    pool->job++;
    atomic_store(&pool->ticket, pool->job << SHARE_BITS | (uint64_t)pool->n_threads);
    pthread_mutex_lock(&pool->mu);
    pthread_cond_broadcast(&pool->cv_work);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 0; i < pool->n_started; i++) pthread_join(pool->threads[i], NULL);
    pool->n_started = 0;
}

int hmti_pool_create(hmti_pool **out, int n_threads) {
    if (!out) return hmti_errf(HMT_E_INVAL, "hmti_pool_create: out is NULL");
    *out = NULL;
    if (n_threads < 1) return hmti_errf(HMT_E_INVAL, "thread count %d must be >= 1", n_threads);
    hmti_pool *pool = hmti_calloc(1, sizeof *pool);
    if (!pool) return hmti_errf(HMT_E_NOMEM, "out of memory creating a thread pool");
    pool->n_threads = n_threads;
    atomic_init(&pool->refs, 1);
    pthread_mutex_init(&pool->use_mu, NULL);
    hmti_guard_init(&pool->guard, HMTI_MAGIC_POOL);
    atomic_init(&pool->ticket, (uint64_t)n_threads); /* job 0: nothing to claim */
    atomic_init(&pool->pending, 0);
    atomic_init(&pool->n_sleeping, 0);
    atomic_init(&pool->caller_sleeping, 0);
    atomic_init(&pool->stop, 0);
    if (n_threads == 1) {
        *out = pool;
        return HMT_OK;
    }
    pool->threads = hmti_calloc((size_t)n_threads - 1, sizeof *pool->threads);
    pool->wargs = hmti_calloc((size_t)n_threads - 1, sizeof *pool->wargs);
    if (!pool->threads || !pool->wargs) {
        free(pool->threads);
        free(pool->wargs);
        pthread_mutex_destroy(&pool->use_mu);
        free(pool);
        return hmti_errf(HMT_E_NOMEM, "out of memory creating a thread pool");
    }
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv_work, NULL);
    pthread_cond_init(&pool->cv_done, NULL);

    /* Workers never handle the application's signals. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = 0;
    for (int i = 0; i < n_threads - 1; i++) {
        pool->wargs[i].pool = pool;
        err = pthread_create(&pool->threads[i], NULL, worker_main, &pool->wargs[i]);
        if (err) break;
        pool->n_started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        stop_and_join(pool);
        hmti_pool_release(pool);
        return hmti_errf(err == EAGAIN ? HMT_E_NOMEM : HMT_E_INTERNAL,
                         "cannot start %d worker threads (error %d)", n_threads - 1, err);
    }
    *out = pool;
    return HMT_OK;
}

void hmti_pool_retain(hmti_pool *pool) {
    if (pool) atomic_fetch_add(&pool->refs, 1);
}

static pthread_mutex_t default_mu = PTHREAD_MUTEX_INITIALIZER;
static hmti_pool *default_pool;

void hmti_pool_release(hmti_pool *pool) {
    if (!pool) return;
    if (pool->is_default) { /* hmti_pool_default may be retaining it right now */
        pthread_mutex_lock(&default_mu);
        const int last = atomic_fetch_sub(&pool->refs, 1) == 1;
        if (last) default_pool = NULL;
        pthread_mutex_unlock(&default_mu);
        if (!last) return;
    } else if (atomic_fetch_sub(&pool->refs, 1) != 1) {
        return;
    }
    hmti_guard_poison(&pool->guard);
    pthread_mutex_destroy(&pool->use_mu);
    if (pool->n_threads > 1) {
        stop_and_join(pool);
        pthread_mutex_destroy(&pool->mu);
        pthread_cond_destroy(&pool->cv_work);
        pthread_cond_destroy(&pool->cv_done);
    }
    free(pool->threads);
    free(pool->wargs);
    free(pool->scratch);
    free(pool);
}

static size_t round64(size_t n) { return (n + 63) / 64 * 64; }

static int reserve(hmti_pool *pool, size_t shared_bytes, size_t local_bytes) {
    shared_bytes = round64(shared_bytes);
    local_bytes = round64(local_bytes);
    if (shared_bytes < pool->shared_bytes) shared_bytes = pool->shared_bytes;
    if (local_bytes < pool->local_bytes) local_bytes = pool->local_bytes;
    if (shared_bytes == pool->shared_bytes && local_bytes == pool->local_bytes) return HMT_OK;
    const size_t nt = (size_t)pool->n_threads;
    if (local_bytes && nt > (SIZE_MAX - shared_bytes) / local_bytes)
        return hmti_errf(HMT_E_NOMEM, "thread pool scratch is too large");
    void *mem = NULL;
    if (hmti_posix_memalign(&mem, 64, shared_bytes + nt * local_bytes) != 0)
        return hmti_errf(HMT_E_NOMEM, "out of memory for %zu bytes of matmul scratch",
                         shared_bytes + nt * local_bytes);
    free(pool->scratch);
    pool->scratch = mem;
    pool->shared_bytes = shared_bytes;
    pool->local_bytes = local_bytes;
    return HMT_OK;
}

void *hmti_pool_shared(hmti_pool *pool, size_t *bytes) {
    *bytes = pool && pool->scratch ? pool->shared_bytes : 0;
    return *bytes ? pool->scratch : NULL;
}

void *hmti_pool_local(hmti_pool *pool, int ith, size_t *bytes) {
    *bytes = pool && pool->scratch && ith >= 0 && ith < pool->n_threads ? pool->local_bytes : 0;
    return *bytes ? (char *)pool->scratch + pool->shared_bytes + (size_t)ith * pool->local_bytes
                  : NULL;
}

/* The scratch may be in use by another user's job: wait for the pool. */
int hmti_pool_reserve(hmti_pool *pool, size_t shared_bytes, size_t local_bytes) {
    int rc = hmti_pool_acquire(pool, "thread pool");
    if (rc) return rc;
    rc = reserve(pool, shared_bytes, local_bytes);
    hmti_pool_unlock(pool);
    return rc;
}

int hmti_pool_n_threads(const hmti_pool *pool) { return pool ? pool->n_threads : 1; }

/* The pools this thread holds, innermost last: a nested acquire of one of
 * them (a callback evaluating on its caller's pool) would deadlock. Calls
 * nest only through callbacks, a few deep at most. */
#define MAX_HELD 16
static _Thread_local const hmti_pool *held[MAX_HELD];
static _Thread_local int n_held;

static int holds(const hmti_pool *pool) {
    for (int i = 0; i < n_held; i++)
        if (held[i] == pool) return 1;
    return 0;
}

int hmti_pool_acquire(hmti_pool *pool, const char *who) {
    if (holds(pool))
        return hmti_errf(HMT_E_MISUSE, "%s: its thread pool is in use by an outer call on this "
                         "thread (a callback evaluating on the same pool); give the inner "
                         "object its own hmt_threadpool", who);
    if (n_held == MAX_HELD)
        return hmti_errf(HMT_E_MISUSE, "%s: thread pools nested %d deep by callbacks", who,
                         MAX_HELD);
    pthread_mutex_lock(&pool->use_mu);
    held[n_held++] = pool;
    return HMT_OK;
}

int hmti_pool_try_acquire(hmti_pool *pool) {
    if (holds(pool) || n_held == MAX_HELD || pthread_mutex_trylock(&pool->use_mu) != 0) return 0;
    held[n_held++] = pool;
    return 1;
}

void hmti_pool_unlock(hmti_pool *pool) {
    for (int i = n_held - 1; i >= 0; i--)
        if (held[i] == pool) {
            held[i] = held[--n_held];
            break;
        }
    pthread_mutex_unlock(&pool->use_mu);
}

/* The process-wide default: created on first use, shared by every object
 * that did not ask for its own pool, stopped when the last of them is freed
 * (so no worker outlives the objects, and valgrind sees no thread left). */
int hmti_pool_default(hmti_pool **out) {
    pthread_mutex_lock(&default_mu);
    int rc = HMT_OK;
    if (default_pool) {
        hmti_pool_retain(default_pool);
    } else if (!(rc = hmti_pool_create(&default_pool, hmti_resolve_threads(0)))) {
        default_pool->is_default = 1;
    }
    *out = rc ? NULL : default_pool;
    pthread_mutex_unlock(&default_mu);
    return rc;
}

int hmti_pool_for_threads(hmti_pool **out, int64_t n_threads) {
    return n_threads == HMT_AUTO ? hmti_pool_default(out)
                                 : hmti_pool_create(out, (int)n_threads);
}

/* ---- the public handle ---- */

HMT_API int hmt_threadpool_create(hmt_threadpool **out, int32_t n_threads) {
    if (!out) return hmti_errf(HMT_E_INVAL, "hmt_threadpool_create: out is NULL");
    *out = NULL;
    if (n_threads != HMT_AUTO && (n_threads < 1 || n_threads > 1024))
        return hmti_errf(HMT_E_INVAL, "hmt_threadpool_create: %d threads (1..1024, or HMT_AUTO)",
                         (int)n_threads);
    return hmti_pool_create(out, hmti_resolve_threads(n_threads == HMT_AUTO ? 0 : n_threads));
}

HMT_API void hmt_threadpool_free(hmt_threadpool *tp) {
    if (!tp || hmti_guard_check(&tp->guard, HMTI_MAGIC_POOL, "hmt_threadpool_free")) return;
    hmti_pool_release(tp);
}

HMT_API int32_t hmt_threadpool_n_threads(const hmt_threadpool *tp) {
    return tp ? tp->n_threads : 0;
}

int hmti_pool_check(const hmti_pool *tp, const char *fn) {
    return tp ? hmti_guard_check(&tp->guard, HMTI_MAGIC_POOL, fn) : HMT_OK;
}

void hmti_pool_run(hmti_pool *pool, hmti_job_fn fn, void *arg) {
    if (!pool || pool->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    atomic_store_explicit(&pool->pending, pool->n_threads - 1, memory_order_relaxed);
    pool->job++;
    atomic_store(&pool->ticket, pool->job << SHARE_BITS | 1u); /* publishes fn/arg/pending */
    wake_workers(pool);

    fn(arg, 0, pool->n_threads);
    run_shares(pool); /* shares no worker has picked up */

    if (atomic_load_explicit(&pool->pending, memory_order_acquire) == 0) return;
    int64_t t0 = now_ns();
    for (int i = 1;; i++) {
        cpu_relax();
        if (atomic_load_explicit(&pool->pending, memory_order_acquire) == 0) return;
        if ((i & 15) == 0 && now_ns() - t0 > SPIN_NS) break;
    }
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->caller_sleeping, 1);
    while (atomic_load(&pool->pending) != 0) pthread_cond_wait(&pool->cv_done, &pool->mu);
    atomic_store(&pool->caller_sleeping, 0);
    pthread_mutex_unlock(&pool->mu);
}

void hmti_split_range(int64_t n, int ith, int nth, int64_t align, int64_t *lo, int64_t *hi) {
    if (nth < 1) nth = 1;
    if (align < 1) align = 1;
    int64_t units = (n + align - 1) / align;
    int64_t base = units / nth, rem = units % nth;
    int64_t u0 = ith * base + (ith < rem ? ith : rem);
    int64_t u1 = u0 + base + (ith < rem ? 1 : 0);
    int64_t a = u0 * align, b = u1 * align;
    *lo = a < n ? a : n;
    *hi = b < n ? b : n;
}

void hmti_work_init(hmti_work *w, int64_t n, int64_t grab) {
    w->n = n;
    w->grab = grab < 1 ? 1 : grab;
    atomic_init(&w->next, 0);
}

int hmti_work_take(hmti_work *w, int64_t *lo, int64_t *hi) {
    int64_t i0 = atomic_fetch_add_explicit(&w->next, w->grab, memory_order_relaxed);
    if (i0 >= w->n) return 0;
    *lo = i0;
    *hi = i0 + w->grab < w->n ? i0 + w->grab : w->n;
    return 1;
}

void hmti_swork_init(hmti_swork *w, int64_t n, int64_t grab, int nth, int streams) {
    /* units are row groups: far below 2^32 (checked by the caller's sizes) */
    w->grab = grab < 1 ? 1 : grab;
    w->n_share = nth < 1 ? 1 : nth > HMTI_SWORK_MAX ? HMTI_SWORK_MAX : nth;
    w->per_share = streams < 1 ? 1 : streams > HMTI_SWORK_STREAMS ? HMTI_SWORK_STREAMS : streams;
    if (w->n_share * w->per_share > HMTI_SWORK_MAX) w->per_share = 1;
    const int n_seg = w->n_share * w->per_share; /* share i's segments: its range's parts, in order */
    for (int s = 0; s < n_seg; s++) {
        int64_t lo, hi;
        hmti_split_range(n, s, n_seg, 1, &lo, &hi);
        atomic_init(&w->seg[s].v, (uint64_t)lo << 32 | (uint64_t)hi);
    }
}

/* A grab from the front (own segment) or the back (another's) of segment s. */
static int swork_grab(hmti_swork *w, int s, int front, int64_t *lo, int64_t *hi) {
    uint64_t v = atomic_load_explicit(&w->seg[s].v, memory_order_relaxed);
    for (;;) {
        const int64_t f = (int64_t)(v >> 32), b = (int64_t)(v & 0xFFFFFFFFu);
        if (f >= b) return 0;
        /* Half of what is left, the owner's takes at most grab: the last
         * takes are small, so the shares finish together (a thief's or the
         * owner's last take is one unit, not one grab: +1-4% on a 135M
         * model's decode at 2 threads, whose matrices are 36-192 units) */
        const int64_t half = (b - f + 1) / 2;
        const int64_t g = front && w->grab < half ? w->grab : half;
        const int64_t nf = front ? (f + g < b ? f + g : b) : f;
        const int64_t nb = front ? b : (b - g > f ? b - g : f);
        if (atomic_compare_exchange_weak_explicit(&w->seg[s].v, &v, (uint64_t)nf << 32 | (uint64_t)nb,
                                                  memory_order_relaxed, memory_order_relaxed)) {
            *lo = front ? f : nb;
            *hi = front ? nf : b;
            return 1;
        }
    }
}

int hmti_swork_take(hmti_swork *w, int ith, int64_t *lo, int64_t *hi) {
    const int per = w->per_share, n_seg = w->n_share * per;
    const int own = (ith < w->n_share ? ith : ith % w->n_share) * per; /* no division per take */
    int k = 0;
    for (int s = 0; s < per; s++) k += swork_grab(w, own + s, 1, lo + k, hi + k);
    if (k) return k;
    for (int s = own + per; s < own + n_seg; s++)
        if (swork_grab(w, s < n_seg ? s : s - n_seg, 0, lo, hi)) return 1;
    return 0;
}

/* Files and counts (docs/ROBUSTNESS.md, "Files"):
 * - every writer (snapshot, context state, datastore, FAISS index) replaces its target
 *   atomically: the n-th I/O step failing, for every n, leaves the old file
 *   byte-identical and no temporary behind, with strerror in the message; a
 *   real full disk (a small tmpfs, when we may mount one) does the same;
 * - two datastore builds racing to one output leave exactly one of them, and
 *   a file mixing two builds never validates;
 * - counts read from a file are bounded by what the file holds;
 * - FIFOs, folders and devices are refused promptly by every loader. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/atomic_file.h"

#include "hmt/hmt.h"
#include "hmt/experimental.h"
#include "util/gguf_build.h"
#include "util/testutil.h"

static const char *ENOSPC_TEXT = "No space left on device";

/* A fresh folder (so "no temporary left" is: exactly the expected entries). */
static char *fresh_dir(void) {
    const char *t = getenv("TMPDIR");
    char *d = malloc(4096);
    snprintf(d, 4096, "%s/hmt-files-XXXXXX", t ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(d));
    return d;
}

static int n_entries(const char *dir) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void rm_dir(char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        char p[8192];
        for (struct dirent *e; (e = readdir(d));)
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

static int same_bytes(const char *path, const void *want, size_t len) {
    size_t got = 0;
    void *b = hmt_test_read_file(path, &got);
    int ok = b && got == len && memcmp(b, want, len) == 0;
    free(b);
    return ok;
}

/* ---- the atomic-write sweep ------------------------------------------------ */
typedef int (*write_fn)(void *state, const char *path);

/* For n = 1, 2, ... (every n, or every stride-th one past the first and
 * before the last 12 when a write is slow): the n-th I/O step fails with
 * ENOSPC. A failed write must be HMT_E_IO with strerror's text, the old
 * target byte-identical and the folder holding only it. The folder fsync
 * comes after the rename, so a failure there still succeeds. */
static void sweep_writes(const char *what, write_fn op, void *state, long stride) {
    char *dir = fresh_dir();
    char path[4200];
    snprintf(path, sizeof path, "%s/target", dir);
    /* the new content, written once without failures: its size and steps */
    hmti_afile_fail_at(0, 0);
    ck_assert_msg(op(state, path) == HMT_OK, "%s: %s", what, hmt_last_error_msg());
    const long steps = hmti_afile_steps();
    ck_assert_msg(steps >= 4, "%s: only %ld I/O steps: is the hook wired?", what, steps);
    size_t new_len;
    unsigned char *new_bytes = hmt_test_read_file(path, &new_len);
    static const char OLD[] = "the previous good file";
    for (long n = 1; n <= steps + 1; n++) {
        if (stride > 1 && n > 8 && n < steps - 12 && n % stride) continue;
        ck_assert_int_eq(hmt_test_write_file(path, OLD, sizeof OLD), 0);
        hmti_afile_fail_at(n, ENOSPC);
        int rc = op(state, path);
        const long failed = hmti_afile_fail_at(0, 0);
        EXPECT_MSG(n_entries(dir) == 1, "%s: step %ld: %d entries in the folder (a temporary "
                   "left behind?)", what, n, n_entries(dir));
        if (rc == HMT_OK) {
            EXPECT_MSG(same_bytes(path, new_bytes, new_len), "%s: step %ld: success but not the "
                       "new file", what, n);
            EXPECT_MSG(!failed || n == steps, "%s: step %ld failed, yet the write succeeded",
                       what, n);
            continue;
        }
        EXPECT_MSG(failed == 1, "%s: step %ld: rc %d without an injected failure: %s", what, n,
                   rc, hmt_last_error_msg());
        EXPECT_MSG(rc == HMT_E_IO, "%s: step %ld: rc %d (%s)", what, n, rc, hmt_last_error_msg());
        EXPECT_MSG(strstr(hmt_last_error_msg(), ENOSPC_TEXT), "%s: step %ld: message '%s'",
                   what, n, hmt_last_error_msg());
        EXPECT_MSG(same_bytes(path, OLD, sizeof OLD), "%s: step %ld: the old file changed",
                   what, n);
    }
    printf("%s: %ld I/O steps, each made to fail%s\n", what, steps,
           stride > 1 ? " (every one at the ends, every stride-th in between)" : "");
    free(new_bytes);
    rm_dir(dir);
}

typedef struct {
    hmt_model *model;
    hmt_adapter *adapter;
    hmt_stream *stream;
    hmt_knn *knn;
    const float *keys;
    const hmt_token *vals;
    size_t n;
    hmt_params *params;
} fixture;

static int write_snapshot(void *state, const char *path) {
    fixture *f = state;
    return hmt_stream_save_file(f->stream, path);
}

static int write_datastore(void *state, const char *path) {
    fixture *f = state;
    hmt_knn_builder *b = NULL;
    int rc = hmt_knn_builder_create(&b, f->model, path, f->params);
    if (!rc) rc = hmt_knn_builder_add(b, f->keys, f->vals, f->n);
    if (!rc) rc = hmt_knn_builder_finish(b);
    hmt_knn_builder_free(b);
    return rc;
}

static int write_faiss(void *state, const char *path) {
    fixture *f = state;
    return hmt_knn_faiss_build(f->knn, path, f->params, NULL, NULL);
}

static void stream_fixture(fixture *f, int n_tokens) {
    memset(f, 0, sizeof *f);
    f->model = hmt_test_load_model("llama-f32.gguf");
    ck_assert_int_eq(hmt_adapter_load(&f->adapter, f->model,
                                      hmt_test_data("hmt-full-a.adapter.gguf")), HMT_OK);
    ck_assert_int_eq(hmt_stream_create(&f->stream, f->model, f->adapter, NULL), HMT_OK);
    hmt_token t[256];
    for (int i = 0; i < n_tokens; i++) t[i] = (hmt_token)(i * 7 % 300);
    ck_assert_int_eq(hmt_stream_feed(f->stream, t, (size_t)n_tokens), HMT_OK);
}

static void fixture_free(fixture *f) {
    hmt_knn_free(f->knn);
    hmt_stream_free(f->stream);
    hmt_adapter_free(f->adapter);
    hmt_model_free(f->model);
    hmt_params_free(f->params);
}

static float *random_keys(size_t n, int d, uint64_t seed, hmt_token **vals) {
    float *k = malloc(n * (size_t)d * sizeof *k);
    *vals = malloc(n * sizeof **vals);
    for (size_t i = 0; i < n * (size_t)d; i++) k[i] = hmt_test_nrand(&seed);
    for (size_t i = 0; i < n; i++) (*vals)[i] = (hmt_token)(hmt_test_urand(&seed) * 320);
    return k;
}

START_TEST(snapshot_save_is_atomic) {
    fixture f;
    stream_fixture(&f, 40);
    sweep_writes("snapshot", write_snapshot, &f, 1);
    fixture_free(&f);
}
END_TEST

static int write_ctx_state(void *state, const char *path) {
    return hmt_ctx_save_file(state, path);
}

START_TEST(ctx_state_save_is_atomic) {
    hmt_model *m = hmt_test_load_model("llama-f32.gguf");
    hmt_ctx *c = NULL;
    ck_assert_int_eq(hmt_ctx_create(&c, m, NULL), HMT_OK);
    hmt_token t[24];
    for (int i = 0; i < 24; i++) t[i] = (hmt_token)(i * 11 % 300);
    ck_assert_int_eq(hmt_ctx_eval_tokens(c, t, 24, 1), HMT_OK);
    sweep_writes("context state", write_ctx_state, c, 1);
    hmt_ctx_free(c);
    hmt_model_free(m);
}
END_TEST

START_TEST(datastore_build_is_atomic) {
    fixture f = {0};
    f.model = hmt_test_load_model("llama-f32.gguf");
    hmt_token *vals;
    float *keys = random_keys(37, hmt_model_n_embd(f.model), 0x5EED01, &vals);
    f.keys = keys, f.vals = vals, f.n = 37;
    for (int f16 = 0; f16 < 2; f16++) {
        ck_assert_int_eq(hmt_params_create(&f.params), HMT_OK);
        ck_assert_int_eq(hmt_params_set_int(f.params, HMT_P_KNN_KEY_F16, f16), HMT_OK);
        sweep_writes(f16 ? "datastore (F16)" : "datastore", write_datastore, &f, 1);
        hmt_params_free(f.params);
        f.params = NULL;
    }
    free(keys);
    free(vals);
    fixture_free(&f);
}
END_TEST

START_TEST(faiss_index_build_is_atomic) {
    if (!hmt_knn_faiss_available()) {
        printf("faiss_index_build_is_atomic: skipped (libhmt built without FAISS)\n");
        return;
    }
    fixture f = {0};
    f.model = hmt_test_load_model("llama-f32.gguf");
    hmt_token *vals;
    const size_t n = 10240; /* k-means needs 39 keys per centroid, 256 centroids */
    float *keys = random_keys(n, hmt_model_n_embd(f.model), 0x5EED02, &vals);
    f.keys = keys, f.vals = vals, f.n = n;
    char *dir = fresh_dir();
    char ds[4200];
    snprintf(ds, sizeof ds, "%s/keys.knn", dir);
    ck_assert_int_eq(write_datastore(&f, ds), HMT_OK);
    ck_assert_int_eq(hmt_knn_load(&f.knn, f.model, ds, NULL), HMT_OK);
    ck_assert_int_eq(hmt_params_create(&f.params), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(f.params, HMT_P_KNN_NLIST, 8), HMT_OK);
    /* each attempt trains FAISS again: every step around the header and the
     * commit, every 16th inside FAISS's own payload */
    sweep_writes("FAISS index", write_faiss, &f, 16);
    free(keys);
    free(vals);
    fixture_free(&f);
    rm_dir(dir);
}
END_TEST

/* ---- a real full disk -------------------------------------------------------- */
/* Mount a tmpfs of `bytes` on a fresh folder; NULL (reason printed) if we may not. */
static char *small_disk(size_t bytes, const char *test) {
    if (geteuid() != 0) {
        printf("%s: skipped (not root: cannot mount a small tmpfs)\n", test);
        return NULL;
    }
    /* in a mount namespace of this (forked) test, so the tmpfs goes away
     * with it even when an assertion ends the test early */
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        printf("%s: skipped (no private mount namespace: %s)\n", test, strerror(errno));
        return NULL;
    }
    char *dir = fresh_dir();
    char opt[64];
    snprintf(opt, sizeof opt, "size=%zu", bytes);
    if (mount("tmpfs", dir, "tmpfs", 0, opt) != 0) {
        printf("%s: skipped (mount -t tmpfs: %s)\n", test, strerror(errno));
        rm_dir(dir);
        return NULL;
    }
    return dir;
}

static void drop_disk(char *dir) {
    umount2(dir, MNT_DETACH);
    rm_dir(dir);
}

/* Fill the disk until only `room` bytes (whole pages) are free. */
static void fill_disk(const char *dir, size_t room) {
    char p[4200];
    snprintf(p, sizeof p, "%s/filler", dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    static char page[4096];
    for (;;) {
        struct statvfs v;
        ck_assert_int_eq(fstatvfs(fd, &v), 0);
        if ((size_t)v.f_bavail * v.f_bsize <= room) break;
        if (write(fd, page, sizeof page) != (ssize_t)sizeof page) break;
    }
    close(fd);
}

START_TEST(snapshot_save_on_a_full_disk) {
    fixture f;
    stream_fixture(&f, 8);
    size_t old_len = 0;
    ck_assert_int_eq(hmt_stream_save(f.stream, NULL, 0, &old_len), HMT_E_BUFFER);
    char *dir = small_disk(old_len + (1u << 20), "snapshot_save_on_a_full_disk");
    if (!dir) {
        fixture_free(&f);
        return;
    }
    char path[4200], fresh[4200];
    snprintf(path, sizeof path, "%s/stream.snap", dir);
    snprintf(fresh, sizeof fresh, "%s/new.snap", dir);
    ck_assert_int_eq(hmt_stream_save_file(f.stream, path), HMT_OK);
    size_t len;
    unsigned char *old = hmt_test_read_file(path, &len);
    hmt_token t[40];
    for (int i = 0; i < 40; i++) t[i] = (hmt_token)(i * 11 % 300);
    ck_assert_int_eq(hmt_stream_feed(f.stream, t, 40), HMT_OK);
    fill_disk(dir, 0);
    /* A new file: the snapshot (under 4 KiB) sits in stdio's buffer until
     * the final flush, which fails; that path once closed the FILE twice
     * (glibc: "double free detected", abort). */
    ck_assert_int_eq(hmt_stream_save_file(f.stream, fresh), HMT_E_IO);
    ck_assert_msg(strstr(hmt_last_error_msg(), ENOSPC_TEXT), "%s", hmt_last_error_msg());
    ck_assert_int_ne(access(fresh, F_OK), 0);
    /* Over the old snapshot: refused, the old one intact */
    ck_assert_int_eq(hmt_stream_save_file(f.stream, path), HMT_E_IO);
    ck_assert_msg(strstr(hmt_last_error_msg(), ENOSPC_TEXT), "%s", hmt_last_error_msg());
    ck_assert_msg(same_bytes(path, old, len), "the old snapshot changed");
    ck_assert_int_eq(n_entries(dir), 2); /* the snapshot and the filler */
    free(old);
    drop_disk(dir);
    fixture_free(&f);
}
END_TEST

START_TEST(datastore_build_on_a_full_disk) {
    char *dir = small_disk(256u << 10, "datastore_build_on_a_full_disk");
    if (!dir) return;
    fixture f = {0};
    f.model = hmt_test_load_model("llama-f32.gguf");
    hmt_token *vals;
    float *keys = random_keys(2000, hmt_model_n_embd(f.model), 0x5EED03, &vals);
    f.keys = keys, f.vals = vals, f.n = 100;
    char path[4200];
    snprintf(path, sizeof path, "%s/keys.knn", dir);
    ck_assert_int_eq(write_datastore(&f, path), HMT_OK);
    size_t len;
    unsigned char *old = hmt_test_read_file(path, &len);
    f.n = 2000; /* 2000 × 64 × 4 bytes: more than the disk */
    ck_assert_int_eq(write_datastore(&f, path), HMT_E_IO);
    ck_assert_msg(strstr(hmt_last_error_msg(), ENOSPC_TEXT), "%s", hmt_last_error_msg());
    ck_assert_msg(same_bytes(path, old, len), "the old datastore changed");
    ck_assert_int_eq(n_entries(dir), 1);
    free(old);
    free(keys);
    free(vals);
    fixture_free(&f);
    drop_disk(dir);
}
END_TEST

/* ---- two builds, one output ------------------------------------------------------ */
START_TEST(racing_builds_leave_one_of_them) {
    fixture a = {0}, b = {0};
    a.model = hmt_test_load_model("llama-f32.gguf");
    const int d = hmt_model_n_embd(a.model);
    hmt_token *va, *vb;
    const size_t n = 20000;
    float *ka = random_keys(n, d, 0xA, &va), *kb = random_keys(n, d, 0xB, &vb);
    a.keys = ka, a.vals = va, a.n = n;
    b = a, b.keys = kb, b.vals = vb;
    char *dir = fresh_dir();
    char pa[4200], pb[4200], out[4200];
    snprintf(pa, sizeof pa, "%s/a.knn", dir);
    snprintf(pb, sizeof pb, "%s/b.knn", dir);
    snprintf(out, sizeof out, "%s/out.knn", dir);
    ck_assert_int_eq(write_datastore(&a, pa), HMT_OK);
    ck_assert_int_eq(write_datastore(&b, pb), HMT_OK);
    size_t la, lb;
    unsigned char *fa = hmt_test_read_file(pa, &la), *fb = hmt_test_read_file(pb, &lb);
    ck_assert_uint_eq(la, lb);
    /* a.knn's header and values around b.knn's keys (what racing builds
     * through one "<path>.tmp" left behind): refused */
    const size_t keys_at = 128, kbytes = n * (size_t)d * 4;
    unsigned char *mix = gb_dup(fa, la);
    memcpy(mix + keys_at, fb + keys_at, kbytes);
    ck_assert_int_eq(hmt_test_write_file(out, mix, la), 0);
    free(mix);
    hmt_knn *ds = NULL;
    ck_assert_int_eq(hmt_knn_load(&ds, a.model, out, NULL), HMT_E_FORMAT);
    ck_assert_msg(strstr(hmt_last_error_msg(), "checksum"), "%s", hmt_last_error_msg());
    unlink(out);
    for (int round = 0; round < 4; round++) {
        int go[2];
        ck_assert_int_eq(pipe(go), 0);
        pid_t kid[2];
        for (int k = 0; k < 2; k++) {
            kid[k] = fork();
            ck_assert_int_ge(kid[k], 0);
            if (kid[k] == 0) {
                char c;
                close(go[1]);
                if (read(go[0], &c, 1) < 0) _exit(3); /* start together */
                _exit(write_datastore(k ? &b : &a, out) == HMT_OK ? 0 : 1);
            }
        }
        close(go[0]);
        close(go[1]); /* both start */
        int ok = 0;
        for (int k = 0; k < 2; k++) {
            int st;
            ck_assert_int_eq(waitpid(kid[k], &st, 0), kid[k]);
            ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
        }
        ck_assert_int_eq(ok, 2); /* both builds succeed: neither saw the other */
        size_t lo;
        unsigned char *fo = hmt_test_read_file(out, &lo);
        ck_assert_msg(fo && lo == la && (!memcmp(fo, fa, la) || !memcmp(fo, fb, lb)),
                      "round %d: the output is neither build", round);
        free(fo);
        ds = NULL;
        ck_assert_msg(hmt_knn_load(&ds, a.model, out, NULL) == HMT_OK, "%s", hmt_last_error_msg());
        hmt_knn_free(ds);
        ck_assert_int_eq(n_entries(dir), 3);
    }
    free(fa);
    free(fb);
    free(ka), free(kb), free(va), free(vb);
    hmt_model_free(a.model);
    rm_dir(dir);
}
END_TEST

/* ---- counts ------------------------------------------------------------------------ */
/* Run fn in a child with an alarm (a hang fails rather than hangs) and, when
 * not under ASan (whose shadow memory needs a huge address space), an
 * address-space limit of `as_mb` MiB above what the child already maps. */
typedef void (*child_fn)(void *arg);

static void in_child(child_fn fn, void *arg, unsigned seconds, long as_mb, const char *what) {
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* Check's runner handles SIGALRM by killing the whole test's process
         * group: the default action kills only this child, and says so */
        signal(SIGALRM, SIG_DFL);
        alarm(seconds);
#if !defined(__SANITIZE_ADDRESS__)
        if (as_mb > 0) {
            long pages = 0;
            FILE *f = fopen("/proc/self/statm", "r");
            if (f && fscanf(f, "%ld", &pages) == 1) {
                struct rlimit r;
                r.rlim_cur = r.rlim_max = (rlim_t)pages * 4096 + ((rlim_t)as_mb << 20);
                setrlimit(RLIMIT_AS, &r);
            }
            if (f) fclose(f);
        }
#else
        (void)as_mb;
#endif
        fn(arg);
        _exit(0);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(!WIFSIGNALED(st), "%s: killed by signal %d%s", what, WTERMSIG(st),
                  WTERMSIG(st) == SIGALRM ? " (the alarm: it hung)" : "");
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: failed (exit %d)", what,
                  WEXITSTATUS(st));
}

#define CHILD_CHECK(c, ...)                                                       \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, __VA_ARGS__);                                         \
            fprintf(stderr, " [%s] (last error: %s)\n", #c, hmt_last_error_msg()); \
            _exit(1);                                                             \
        }                                                                         \
    } while (0)

typedef struct {
    const char *path, *field;
    int want;
} refusal;

static void child_load_model(void *arg) {
    const refusal *r = arg;
    hmt_model *m = NULL;
    int rc = hmt_model_load(&m, r->path, NULL);
    CHILD_CHECK(rc == r->want && strstr(hmt_last_error_msg(), r->field),
                "model load of %s: rc %d, want %d naming '%s'", r->path, rc, r->want, r->field);
}

/* A llama model header with one small embedding and block_count = layers. */
static void tiny_llama(const char *path, uint32_t layers) {
    gguf_builder b;
    gguf_build_init(&b);
    gguf_build_string(&b, "general.architecture", "llama");
    gguf_build_u32(&b, "llama.embedding_length", 64);
    gguf_build_u32(&b, "llama.block_count", layers);
    gguf_build_u32(&b, "llama.feed_forward_length", 128);
    gguf_build_u32(&b, "llama.attention.head_count", 4);
    gguf_build_u32(&b, "llama.context_length", 256);
    const uint64_t ne[2] = {64, 16};
    gguf_build_tensor(&b, "token_embd.weight", 0, 2, ne, NULL, 64 * 16 * 4);
    size_t len;
    uint8_t *buf = gguf_build_finish(&b, &len);
    ck_assert_int_eq(hmt_test_write_file(path, buf, len), 0);
    free(buf);
    gguf_build_free(&b);
}

START_TEST(huge_layer_count_is_refused_quickly) {
    const uint32_t counts[] = {10000000u, 100000000u, 2000000000u};
    for (int i = 0; i < 3; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s", hmt_test_tmp_path(".gguf"));
        tiny_llama(path, counts[i]);
        refusal r = {path, "block_count", HMT_E_FORMAT};
        const time_t t0 = time(NULL);
        /* 10^7 layers once took 1.8 GB and 17 s: 128 MiB and 5 s are plenty */
        in_child(child_load_model, &r, 5, 128, "huge block_count");
        ck_assert_int_le(time(NULL) - t0, 3);
        unlink(path);
    }
}
END_TEST

START_TEST(huge_gguf_counts_are_refused) {
    char path[4096];
    snprintf(path, sizeof path, "%s", hmt_test_tmp_path(".gguf"));
    tiny_llama(path, 1);
    size_t len;
    unsigned char *good = hmt_test_read_file(path, &len);
    /* header: magic, version, u64 tensor count at 8, u64 metadata count at 16 */
    const struct {
        size_t off;
        const char *field;
    } cases[] = {{8, "tensor count"}, {16, "metadata count"}};
    for (int i = 0; i < 2; i++) {
        unsigned char *b = gb_dup(good, len);
        const uint64_t huge = (uint64_t)1 << 40;
        memcpy(b + cases[i].off, &huge, 8);
        ck_assert_int_eq(hmt_test_write_file(path, b, len), 0);
        refusal r = {path, cases[i].field, HMT_E_FORMAT};
        in_child(child_load_model, &r, 5, 128, cases[i].field);
        free(b);
    }
    free(good);
    unlink(path);
}
END_TEST

typedef struct {
    fixture *f;
    const char *path;
} restore_arg;

static void child_restore_huge(void *arg) {
    const restore_arg *a = arg;
    int rc = hmt_stream_restore_file(a->f->stream, a->path);
    CHILD_CHECK(rc == HMT_E_FORMAT && strstr(hmt_last_error_msg(), "more than any snapshot"),
                "restore of a huge file: rc %d", rc);
}

START_TEST(huge_snapshot_file_is_refused_unread) {
    fixture f;
    stream_fixture(&f, 8);
    char path[4096];
    snprintf(path, sizeof path, "%s", hmt_test_tmp_path(".snap"));
    /* a sparse 64 GiB file: read whole, it would exhaust memory */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)64 << 30), 0);
    close(fd);
    restore_arg a = {&f, path};
    in_child(child_restore_huge, &a, 5, 256, "huge snapshot file");
    unlink(path);
    fixture_free(&f);
}
END_TEST

/* ---- special files ------------------------------------------------------------------ */
typedef struct {
    fixture *f;
    const char *path, *kind;
    int which; /* 0 model, 1 adapter, 2 datastore, 3 FAISS index, 4 snapshot */
} special_arg;

static void child_open_special(void *arg) {
    const special_arg *s = arg;
    int rc = HMT_E_INTERNAL;
    hmt_model *m = NULL;
    hmt_adapter *ad = NULL;
    hmt_knn *k = NULL;
    switch (s->which) {
    case 0: rc = hmt_model_load(&m, s->path, NULL); break;
    case 1: rc = hmt_adapter_load(&ad, s->f->model, s->path); break;
    case 2: rc = hmt_knn_load(&k, s->f->model, s->path, NULL); break;
    case 3: rc = hmt_knn_faiss_attach(s->f->knn, s->path, NULL); break;
    case 4: rc = hmt_stream_restore_file(s->f->stream, s->path); break;
    }
    CHILD_CHECK(rc == HMT_E_IO && strstr(hmt_last_error_msg(), s->kind),
                "loader %d on %s: rc %d, want HMT_E_IO naming '%s'", s->which, s->path, rc,
                s->kind);
}

START_TEST(special_files_are_refused_promptly) {
    fixture f;
    stream_fixture(&f, 8);
    char *dir = fresh_dir();
    char fifo[4200], ds[4200];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    snprintf(ds, sizeof ds, "%s/keys.knn", dir);
    hmt_token *vals;
    float *keys = random_keys(37, hmt_model_n_embd(f.model), 0x5EED04, &vals);
    f.keys = keys, f.vals = vals, f.n = 37;
    ck_assert_int_eq(write_datastore(&f, ds), HMT_OK);
    ck_assert_int_eq(hmt_knn_load(&f.knn, f.model, ds, NULL), HMT_OK);
    const struct {
        const char *path, *kind;
    } paths[] = {{fifo, "FIFO"}, {dir, "directory"}, {"/dev/zero", "character device"},
                 {"/dev/null", "character device"}};
    const int loaders = hmt_knn_faiss_available() ? 5 : 4; /* without FAISS: UNSUPPORTED */
    for (int p = 0; p < 4; p++)
        for (int w = 0; w < 5; w++) {
            if (w == 3 && loaders == 4) continue;
            special_arg s = {&f, paths[p].path, paths[p].kind, w};
            char what[200];
            snprintf(what, sizeof what, "loader %d on %s", w, paths[p].path);
            in_child(child_open_special, &s, 5, 256, what); /* /dev/zero read whole */
        }
    free(keys);
    free(vals);
    fixture_free(&f);
    rm_dir(dir);
}
END_TEST

Suite *hmt_suite_files(void);
Suite *hmt_suite_files(void) {
    Suite *s = suite_create("files");
    TCase *tc = tcase_create("atomic writes");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, snapshot_save_is_atomic);
    tcase_add_test(tc, ctx_state_save_is_atomic);
    tcase_add_test(tc, datastore_build_is_atomic);
    tcase_add_test(tc, faiss_index_build_is_atomic);
    tcase_add_test(tc, snapshot_save_on_a_full_disk);
    tcase_add_test(tc, datastore_build_on_a_full_disk);
    tcase_add_test(tc, racing_builds_leave_one_of_them);
    suite_add_tcase(s, tc);
    tc = tcase_create("bounded reads");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, huge_layer_count_is_refused_quickly);
    tcase_add_test(tc, huge_gguf_counts_are_refused);
    tcase_add_test(tc, huge_snapshot_file_is_refused_unread);
    tcase_add_test(tc, special_files_are_refused_promptly);
    suite_add_tcase(s, tc);
    return s;
}

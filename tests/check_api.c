/* Versions, status table, params: the parts of the API that need no model. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "hmt/hmt.h"
#include "hmt/experimental.h" /* the experimental keys that take HMT_AUTO */

START_TEST(version_matches_header) {
    ck_assert_uint_eq(hmt_version_number(), HMT_VERSION_NUMBER);
    ck_assert_str_eq(hmt_version_string(), HMT_VERSION_STRING);
    ck_assert_uint_eq(hmt_abi_version(), HMT_ABI_VERSION);
    ck_assert(HMT_AT_LEAST_VERSION(0, 1, 0));
}
END_TEST

START_TEST(every_status_has_text) {
    for (int s = HMT_OK; s >= HMT_E_INTERNAL; s--) {
        const char *t = hmt_strerror(s);
        ck_assert_ptr_nonnull(t);
        ck_assert_str_ne(t, "unknown status");
    }
    ck_assert_str_eq(hmt_strerror(-1000), "unknown status");
    ck_assert_str_eq(hmt_strerror(7), "unknown status");
}
END_TEST

START_TEST(params_defaults_bounds_and_errors) {
    hmt_params *p = NULL;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    double v, lo, hi, def;
    int is_int;
    ck_assert_int_eq(hmt_param_bounds(HMT_P_TOP_P, &lo, &hi, &def, &is_int), HMT_OK);
    ck_assert_int_eq(is_int, 0);
    ck_assert_int_eq(hmt_params_get(p, HMT_P_TOP_P, &v), HMT_OK);
    ck_assert(v == def);
    /* wrong type, out of range, unknown key: rejected, value unchanged */
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_TOP_P, 1), HMT_E_INVAL);
    ck_assert_int_eq(hmt_params_set_float(p, HMT_P_TOP_P, 1.5), HMT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "top_p"));
    ck_assert_int_eq(hmt_params_set_int(p, (hmt_param)12345, 1), HMT_E_INVAL);
    ck_assert_int_eq(hmt_params_get(p, HMT_P_TOP_P, &v), HMT_OK);
    ck_assert(v == def);
    ck_assert_int_eq(hmt_params_set_float(p, HMT_P_TOP_P, 0.5), HMT_OK);
    ck_assert_int_eq(hmt_params_get(p, HMT_P_TOP_P, &v), HMT_OK);
    ck_assert(v == 0.5);
    /* 0.2: HMT_AUTO (-1) is the "derive it" value; 0 and below -1 are refused */
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_THREADS, -2), HMT_E_INVAL);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_THREADS, 0), HMT_E_INVAL);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_N_THREADS, HMT_AUTO), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(NULL, HMT_P_N_THREADS, 1), HMT_E_INVAL);
    ck_assert_int_eq(hmt_params_create(NULL), HMT_E_INVAL);
    hmt_params_free(p);
    hmt_params_free(NULL);
}
END_TEST

/* ---- API 0.2 ------------------------------------------------------------------ */
/* HMT_AUTO (-1) is the one "derive it" value: accepted, and the default, for
 * the keys that offer it; 0 is refused for them, except SENSORY_LENGTH (0 =
 * no sensory memory) and RECALL_BF16 (0 = off). hmt_param_bounds says lo = -1. */
START_TEST(auto_sentinel_and_zero) {
    static const hmt_param auto_keys[] = {
        HMT_P_N_CTX,          HMT_P_N_THREADS,          HMT_P_SEGMENT_LENGTH,
        HMT_P_SENSORY_LENGTH, HMT_P_CACHE_SIZE,         HMT_P_SUMMARY_LENGTH,
        HMT_P_GEN_SUMMARY_LENGTH, HMT_P_WINDOW,   HMT_P_RECALL_BF16,
        HMT_P_KNN_NLIST,      HMT_P_KNN_PQ_M,           HMT_P_KNN_TRAIN_SIZE};
    hmt_params *p = NULL;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    for (size_t i = 0; i < sizeof auto_keys / sizeof *auto_keys; i++) {
        const hmt_param k = auto_keys[i];
        double lo, def, v;
        ck_assert_int_eq(hmt_param_bounds(k, &lo, NULL, &def, NULL), HMT_OK);
        ck_assert_msg(lo == HMT_AUTO && def == HMT_AUTO, "%s: lo %g def %g", hmt_param_name(k),
                      lo, def);
        ck_assert_int_eq(hmt_params_get(p, k, &v), HMT_OK);
        ck_assert(v == HMT_AUTO);
        ck_assert_int_eq(hmt_params_set_int(p, k, HMT_AUTO), HMT_OK);
        ck_assert_int_eq(hmt_params_set_int(p, k, -2), HMT_E_INVAL);
        const int zero_ok = k == HMT_P_SENSORY_LENGTH || k == HMT_P_RECALL_BF16;
        ck_assert_msg(hmt_params_set_int(p, k, 0) == (zero_ok ? HMT_OK : HMT_E_INVAL),
                      "%s = 0", hmt_param_name(k));
        if (!zero_ok) ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), hmt_param_name(k)));
        ck_assert_int_eq(hmt_params_get(p, k, &v), HMT_OK);
        ck_assert(v == (zero_ok ? 0 : HMT_AUTO)); /* a refused value changes nothing */
        ck_assert_int_eq(hmt_params_set_int(p, k, 1), HMT_OK);
    }
    /* keys without HMT_AUTO keep their own range: top_k 0 = all, -1 refused */
    double lo;
    ck_assert_int_eq(hmt_param_bounds(HMT_P_TOP_K, &lo, NULL, NULL, NULL), HMT_OK);
    ck_assert(lo == 0);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_TOP_K, 0), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_TOP_K, HMT_AUTO), HMT_E_INVAL);
    hmt_params_free(p);
}
END_TEST

/* hmt_params_copy copies the values and which keys were set;
 * hmt_param_name gives the name messages use. */
START_TEST(params_copy_and_names) {
    hmt_params *p = NULL, *c = NULL;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_TOP_K, 7), HMT_OK);
    ck_assert_int_eq(hmt_params_set_float(p, HMT_P_TEMPERATURE, 0.25), HMT_OK);
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_SEGMENT_LENGTH, 12), HMT_OK);
    ck_assert_int_eq(hmt_params_copy(&c, p), HMT_OK);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_ne(c, p);
    double v;
    ck_assert_int_eq(hmt_params_get(c, HMT_P_TOP_K, &v), HMT_OK);
    ck_assert(v == 7);
    ck_assert_int_eq(hmt_params_get(c, HMT_P_TEMPERATURE, &v), HMT_OK);
    ck_assert(v == 0.25);
    ck_assert_int_eq(hmt_params_get(c, HMT_P_SEGMENT_LENGTH, &v), HMT_OK);
    ck_assert(v == 12);
    ck_assert_int_eq(hmt_params_get(c, HMT_P_TOP_P, &v), HMT_OK); /* never set: default */
    ck_assert(v == 0.95);
    /* independent: changing one leaves the other */
    ck_assert_int_eq(hmt_params_set_int(p, HMT_P_TOP_K, 9), HMT_OK);
    ck_assert_int_eq(hmt_params_get(c, HMT_P_TOP_K, &v), HMT_OK);
    ck_assert(v == 7);
    /* set-ness is copied: the copy is a stream's and a sampler's params, so a
     * sampler refuses it for segment_length (check_messages: a context for top_k) */
    hmt_sampler *s = NULL;
    ck_assert_int_eq(hmt_sampler_create(&s, c), HMT_E_INVAL);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(hmt_last_error_msg(), "segment_length"));
    hmt_params_free(c);
    /* a copy of a fresh object has nothing set: every creator takes it */
    hmt_params *fresh = NULL;
    ck_assert_int_eq(hmt_params_create(&fresh), HMT_OK);
    ck_assert_int_eq(hmt_params_copy(&c, fresh), HMT_OK);
    ck_assert_int_eq(hmt_sampler_create(&s, c), HMT_OK);
    hmt_sampler_free(s);
    hmt_params_free(c);
    hmt_params_free(fresh);
    /* argument errors */
    c = (hmt_params *)p;
    ck_assert_int_eq(hmt_params_copy(&c, NULL), HMT_E_INVAL);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(hmt_params_copy(NULL, p), HMT_E_INVAL);
    hmt_params_free(p);
    /* names */
    ck_assert_str_eq(hmt_param_name(HMT_P_TOP_K), "top_k");
    ck_assert_str_eq(hmt_param_name(HMT_P_N_CTX), "n_ctx");
    ck_assert_str_eq(hmt_param_name(HMT_P_WINDOW), "window");
    ck_assert_str_eq(hmt_param_name(HMT_P_SEGMENT_LENGTH), "segment_length");
    ck_assert_ptr_null(hmt_param_name((hmt_param)12345));
    ck_assert_ptr_null(hmt_param_name((hmt_param)-1));
}
END_TEST

/* The error rule: a failure sets the thread's message; a successful call
 * never changes it; hmt_last_error_clear() empties it. Thread-local. */
static void *other_thread_msg(void *arg) {
    *(int *)arg = hmt_last_error_msg()[0] == '\0';
    return NULL;
}

START_TEST(last_error_rule) {
    hmt_last_error_clear();
    ck_assert_str_eq(hmt_last_error_msg(), "");
    hmt_params *p = NULL;
    ck_assert_int_eq(hmt_params_create(&p), HMT_OK);
    ck_assert_int_eq(hmt_params_set_float(p, HMT_P_TOP_P, 1.5), HMT_E_INVAL);
    char saved[512];
    snprintf(saved, sizeof saved, "%s", hmt_last_error_msg());
    ck_assert_ptr_nonnull(strstr(saved, "top_p"));
    /* successful calls of every kind leave it as it was */
    ck_assert_int_eq(hmt_params_set_float(p, HMT_P_TOP_P, 0.5), HMT_OK);
    double v;
    ck_assert_int_eq(hmt_params_get(p, HMT_P_TOP_P, &v), HMT_OK);
    hmt_sampler *s = NULL;
    ck_assert_int_eq(hmt_sampler_create(&s, p), HMT_OK);
    const float z[3] = {0, 1, 2};
    hmt_token t;
    ck_assert_int_eq(hmt_sampler_sample(s, z, 3, &t), HMT_OK);
    hmt_sampler_free(s);
    ck_assert_str_eq(hmt_last_error_msg(), saved);
    /* another failure replaces it */
    ck_assert_int_eq(hmt_params_set_int(p, (hmt_param)12345, 1), HMT_E_INVAL);
    ck_assert_str_ne(hmt_last_error_msg(), saved);
    ck_assert_str_ne(hmt_last_error_msg(), "");
    /* per thread: another thread has its own (empty) message */
    int theirs_empty = 0;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, other_thread_msg, &theirs_empty), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(theirs_empty, 1);
    /* clear */
    hmt_last_error_clear();
    ck_assert_str_eq(hmt_last_error_msg(), "");
    ck_assert_int_eq(hmt_params_set_float(p, HMT_P_TOP_P, 0.7), HMT_OK);
    ck_assert_str_eq(hmt_last_error_msg(), "");
    hmt_params_free(p);
}
END_TEST

Suite *hmt_suite_api(void);
Suite *hmt_suite_api(void) {
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("basics");
    tcase_add_test(tc, version_matches_header);
    tcase_add_test(tc, every_status_has_text);
    tcase_add_test(tc, params_defaults_bounds_and_errors);
    tcase_add_test(tc, auto_sentinel_and_zero);
    tcase_add_test(tc, params_copy_and_names);
    tcase_add_test(tc, last_error_rule);
    suite_add_tcase(s, tc);
    return s;
}

/* Versions, status table, params: the parts of the API that need no model. */
#include <check.h>
#include <string.h>

#include "hmt/hmt.h"

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

Suite *hmt_suite_api(void);
Suite *hmt_suite_api(void) {
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("basics");
    tcase_add_test(tc, version_matches_header);
    tcase_add_test(tc, every_status_has_text);
    tcase_add_test(tc, params_defaults_bounds_and_errors);
    suite_add_tcase(s, tc);
    return s;
}

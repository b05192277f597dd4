/* One Check runner for every suite. Each tests/check_<name>.c defines
 * Suite *hmt_suite_<name>(void); the Makefile lists them in suites.h.
 * CK_FORK=no (for gdb/valgrind) and CK_RUN_SUITE work as usual. */
#include <check.h>
#include <stdlib.h>

#define HMT_SUITE(name) Suite *hmt_suite_##name(void);
#include "suites.h"
#undef HMT_SUITE

int main(void) {
    SRunner *sr = srunner_create(NULL);
#define HMT_SUITE(name) srunner_add_suite(sr, hmt_suite_##name());
#include "suites.h"
#undef HMT_SUITE
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

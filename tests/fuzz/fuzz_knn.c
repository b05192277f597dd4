/* libFuzzer: arbitrary bytes as a kNN-LM datastore file for the demo model
 * (through a memfd, since the loader maps a path). A datastore that loads is
 * searched, so every key and value the validation let through is read.
 * Each input is loaded twice: as it is, and with its content and header
 * checksums recomputed, so that mutations reach the checks behind them.
 * The seeds are datastores written by examples/hmt-datastore (tests/fuzz/seeds.sh). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/fnv.h"
#include "hmt/hmt.h"
#include "hooks/knn.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static hmt_model *model;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (hmt_model_load(&model, "models/demo-random-f16.gguf", NULL)) abort();
    return 0;
}

static void load_once(const uint8_t *data, size_t size) {
    int fd = memfd_create("knn", 0);
    if (fd < 0) return;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    hmt_knn *k = NULL;
    if (hmt_knn_load(&k, model, path, NULL) == 0) {
        float q[128] = {0}, dist[8];
        int64_t idx[8];
        hmt_token val[8];
        if (hmt_knn_search(k, q, 1, 8, dist, idx, val)) abort();
        for (int j = 0; j < 8; j++) { /* values_out: the stored value, -1 past the count */
            hmt_token v = -1;
            if (idx[j] >= 0 && hmt_knn_copy_entry(k, idx[j], NULL, 0, &v)) abort();
            if (val[j] != v) abort();
        }
        hmt_knn_free(k);
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load_once(data, size);
    if (size < HMTI_KNN_HEADER_SIZE) return 0;
    uint8_t *fixed = malloc(size);
    if (!fixed) return 0;
    memcpy(fixed, data, size);
    uint64_t koff, sum;
    memcpy(&koff, fixed + HMTI_KNN_OFF_KEYS, 8);
    if (koff <= size && !hmti_knn_content_sum(NULL, fixed + koff, size - koff, &sum))
        memcpy(fixed + HMTI_KNN_OFF_CONTENT, &sum, 8);
    sum = hmti_fnv1a(HMTI_FNV_INIT, fixed, HMTI_KNN_CHECKED_BYTES);
    memcpy(fixed + HMTI_KNN_OFF_CHECKSUM, &sum, 8);
    load_once(fixed, size);
    free(fixed);
    return 0;
}

#include "kernels/cpu.h"

int hmti_cpu_level(void) {
    static int level = -1;
    int l = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (l < 0) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
            __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
            l = 2;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            l = 1;
        else
            l = 0;
        __atomic_store_n(&level, l, __ATOMIC_RELAXED);
    }
    return l;
}

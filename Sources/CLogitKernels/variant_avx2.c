// The avx2 kernels: AVX2 with F16C: sixteen lanes are two ymm registers.
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "kernel_table.h"

#pragma clang attribute push(__attribute__((target("avx2,avx,f16c,bmi,bmi2,lzcnt,popcnt"))), apply_to = function)
#define LK_NAME(name) lk_avx2_##name
#define LK_F16C 1
#define LK_PACK_AVX2 1
#include "kernel_bodies.h"
#include "kernel_entries.h"
#pragma clang attribute pop
#endif

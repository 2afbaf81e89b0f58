// The avx512 kernels: AVX-512 (F, DQ, BW, VL) with F16C: sixteen lanes are one zmm register.
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "kernel_table.h"

#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,avx,f16c,bmi,bmi2,lzcnt,popcnt"))), apply_to = function)
#define LK_NAME(name) lk_avx512_##name
#define LK_F16C 1
#define LK_PACK_AVX2 1
#include "kernel_bodies.h"
#include "kernel_entries.h"
#pragma clang attribute pop
#endif

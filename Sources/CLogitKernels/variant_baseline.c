// The baseline kernels: baseline x86-64 (SSE2): sixteen lanes are four xmm registers; f16 widened in integer lanes.
#if defined(__x86_64__)
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "kernel_table.h"

#define LK_NAME(name) lk_baseline_##name
#define LK_F16C 0
#include "kernel_bodies.h"
#include "kernel_entries.h"
#endif

// The portable kernels: any other CPU: the compiler lowers the sixteen lanes to what the target has (NEON on arm64).
#if !defined(__x86_64__)
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "kernel_table.h"

#define LK_NAME(name) lk_portable_##name
#define LK_F16C 0
#include "kernel_bodies.h"
#include "kernel_entries.h"
#endif

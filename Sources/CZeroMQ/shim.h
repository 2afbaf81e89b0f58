#ifndef LOGITD_CZEROMQ_SHIM_H
#define LOGITD_CZEROMQ_SHIM_H

#include <zmq.h>

/* zmq_msg_t is an opaque 64-byte union in C; Swift sees it as a tuple, which is fine to
   allocate but awkward to name. These helpers keep the wrapper free of magic numbers. */
static inline size_t czmq_msg_struct_size(void) { return sizeof(zmq_msg_t); }

/* libzmq reports "interrupted" and "would block" through errno; Swift cannot read
   C macros that expand to expressions, so the values are exported as functions. */
static inline int czmq_eagain(void) { return EAGAIN; }
static inline int czmq_eintr(void) { return EINTR; }
static inline int czmq_eterm(void) { return ETERM; }
static inline int czmq_ehostunreach(void) { return EHOSTUNREACH; }

#endif

/*
 * Reference counts of objects shared by threads and read-only once shared (a feed batch, a chat event, a WebSocket
 * frame): whoever drops the last reference frees the object.
 */
#ifndef NOTIGATE_REFCOUNT_H
#define NOTIGATE_REFCOUNT_H

#include <stdatomic.h>
#include <stdbool.h>

typedef _Atomic unsigned refcount_t;

static inline void refcount_init(refcount_t *r, unsigned n)
{
    atomic_init(r, n);
}

static inline void refcount_retain(refcount_t *r)
{
    atomic_fetch_add_explicit(r, 1, memory_order_relaxed);
}

/* True when that was the last reference: the caller frees. (acq_rel: every holder's reads and writes come before it.) */
static inline bool refcount_release(refcount_t *r)
{
    return atomic_fetch_sub_explicit(r, 1, memory_order_acq_rel) == 1;
}

#endif

/*
 * The HTTP/2 idle timeout, enforced. h2o 2.2.5 restarts an HTTP/2 connection's idle timer on every read, so a client
 * that sends one byte a second (of a HEADERS frame it never finishes, or a PING now and then) keeps its connection
 * forever. Once a second this module looks at the thread's HTTP/2 connections and expires h2o's own idle timer (GOAWAY
 * "idle timeout", then close, exactly what h2o does when the timer fires) for every connection that has had no request
 * in flight and opened no new stream for --http2-idle-timeout-ms, whatever bytes came meanwhile.
 *
 * It reads h2o's HTTP/2 connection (h2o/http2_internal.h, installed with libh2o-evloop 2.2.5): the list of connections
 * in the context, each one's stream counts, highest stream id and idle-timeout entry. All on the thread's loop.
 */
#ifndef NOTIGATE_H2_IDLE_H
#define NOTIGATE_H2_IDLE_H

#include <stdint.h>
#include <h2o.h>
#include "strmap.h"

typedef struct st_gateway_thread_t gateway_thread_t;

/* Per-thread state, embedded in gateway_thread_t. */
typedef struct st_h2_idle_t {
    h2o_timeout_t second;
    h2o_timeout_entry_t entry;
    strmap_t *conns; /* connection id -> h2_idle_conn_t (private): since when it is idle */
    uint64_t closed; /* connections closed by this module */
} h2_idle_t;

/* Starts the sweep on the thread's loop (after h2o_context_init). Loop thread. */
void h2_idle_init(gateway_thread_t *thread);

/* Stops it and frees its state (before the loop is destroyed). Loop thread. */
void h2_idle_dispose(gateway_thread_t *thread);

#endif

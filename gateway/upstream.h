/*
 * The gateway side of the gateway <-> worker hop, one upstream per worker kind (notifier, history-svc).
 *
 * An upstream is an nng REQ socket listening on the kind's address; workers dial in, and nng spreads requests over
 * the connected replicas (round robin), so replicas are added and removed without touching the gateway. A request in
 * flight on a replica that goes away is resent at once to another one (nng REQ), which is why the operations are
 * idempotent (reads, and writes keyed by the request id).
 *
 * Each loop thread has its own client. The calls one loop iteration makes to a kind go out together, as one batch
 * frame (proto.h) on one nng context, once the iteration's events are handled: under load one nng round trip and one
 * hop between threads on each side then carry many calls, and at low load a call goes alone, without waiting. Many
 * batches are in flight at once. nng completes them on its own threads; the completions are posted back to the loop
 * (h2o_multithread), where the callbacks run. Nothing here blocks the loop.
 */
#ifndef NOTIGATE_UPSTREAM_H
#define NOTIGATE_UPSTREAM_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stdint.h>
#include <h2o.h>
#include <h2o/multithread.h>
#include "proto.h"

typedef enum en_upstream_outcome_t {
    UPSTREAM_OK = 0,       /* a reply arrived and decoded (its status may still be an error of the worker's) */
    UPSTREAM_WORKER_ERROR, /* never a result: counts, in the outcome counters, replies whose status is an error */
    UPSTREAM_TIMEOUT,      /* no reply within the timeout */
    UPSTREAM_NO_REPLICA,   /* no replica connected */
    UPSTREAM_OVERLOADED,   /* this thread already has max_inflight requests out to this kind */
    UPSTREAM_BAD_REPLY,    /* the reply did not decode */
    UPSTREAM_CANCELLED,    /* the client request went away first */
    UPSTREAM_FAILED,       /* any other transport error */
    UPSTREAM_OUTCOME_COUNT
} upstream_outcome_t;

typedef struct st_upstream_t upstream_t;
typedef struct st_upstream_client_t upstream_client_t;
typedef struct st_upstream_call_t upstream_call_t;

/* What a call produced. Owned by the callback's receiver: release with upstream_result_dispose. rep is valid (and its
 * strings point into the reply message) when outcome is UPSTREAM_OK. */
typedef struct st_upstream_result_t {
    upstream_outcome_t outcome;
    proto_reply_t rep;
    struct st_upstream_reply_t *_reply; /* the reply message, shared by the calls of a batch */
} upstream_result_t;

/* Loop thread; runs once per started call unless the call was cancelled. */
typedef void (*upstream_cb)(upstream_result_t *result, void *data);

/* Opens the REQ socket for a worker kind and listens on url. Returns NULL (logged) if it cannot listen. Main thread. */
upstream_t *upstream_create(const char *kind, const char *url);
/* After every client is destroyed. Returns 0, or -1 if nng_close is stuck (see nng_close.h): exit without nng then. */
int upstream_destroy(upstream_t *up);

const char *upstream_kind(const upstream_t *up);

/* Replicas connected now (any thread). */
unsigned upstream_replicas(const upstream_t *up);

/* A thread's client: its calls complete on loop through queue. outcomes (UPSTREAM_OUTCOME_COUNT counters, updated by
 * the loop thread with relaxed atomics) count every finished call. Loop thread. */
upstream_client_t *upstream_client_create(upstream_t *up, h2o_loop_t *loop, h2o_multithread_queue_t *queue, unsigned max_inflight,
                                          _Atomic uint64_t *outcomes);
void upstream_client_destroy(upstream_client_t *client);

/* Calls in flight from this client. */
unsigned upstream_client_inflight(const upstream_client_t *client);

/* Sends req and waits up to timeout_ms (send and reply together) for the reply. With resend, a request in flight on a
 * replica that goes away is sent again to another (the worker must apply it once, by request id); without, the call
 * fails (UPSTREAM_FAILED). Returns the call (cb runs later on the loop), or NULL with *outcome set
 * (UPSTREAM_NO_REPLICA, UPSTREAM_OVERLOADED) when it could not start: then cb never runs. Loop thread. */
upstream_call_t *upstream_call(upstream_client_t *client, const proto_request_t *req, uint32_t timeout_ms, bool resend,
                               upstream_cb cb, void *data, upstream_outcome_t *outcome);

/* Abandons a call: its callback will not run. Loop thread. */
void upstream_call_cancel(upstream_call_t *call);

void upstream_result_dispose(upstream_result_t *result);

const char *upstream_outcome_name(upstream_outcome_t outcome);

/* Counts replies by the identity of the replica that sent them ("by"), for the metrics: up to 64 replicas a kind. */
typedef struct st_upstream_replica_stat_t {
    char identity[96];
    _Atomic uint64_t replies;
} upstream_replica_stat_t;

/* Calls cb for each replica this client has seen a reply from. Any thread. */
void upstream_client_foreach_replica(const upstream_client_t *client,
                                     void (*cb)(const char *identity, uint64_t replies, void *data), void *data);

#endif

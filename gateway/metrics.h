/*
 * Request metrics, kept per loop thread (one writer each, relaxed atomics) and summed when /metrics is read, and
 * the Prometheus text rendering of them and of the worker counters.
 */
#ifndef NOTIGATE_METRICS_H
#define NOTIGATE_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "http_parse.h"
#include "json_out.h"
#include "route_table.h"
#include "upstream.h"

/* statuses counted one by one; anything else falls in the last slot as "other" */
#define METRICS_STATUSES                                                                                                           \
    {                                                                                                                              \
        101, 200, 201, 204, 400, 401, 403, 404, 405, 408, 413, 429, 500, 502, 503, 504                                             \
    }
#define METRICS_NSTATUS 17
/* latency buckets, in microseconds */
#define METRICS_BUCKETS_US                                                                                                         \
    {                                                                                                                              \
        500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000                                       \
    }
#define METRICS_NBUCKETS 12

/* worker kinds: the two built in, then the route table's (gateway/route_table.h) */
enum { METRICS_NOTIFIER = 0, METRICS_HISTORY = 1, METRICS_FIRST_ROUTED = 2, METRICS_NKINDS = 2 + ROUTE_KINDS_MAX };
/* what a partial answer lacked: the realtime view, the history, or both */
enum { METRICS_MISSING_NOTIFIER = 0, METRICS_MISSING_HISTORY = 1, METRICS_MISSING_BOTH = 2, METRICS_NMISSING = 3 };

typedef struct st_metrics_t {
    _Atomic uint64_t requests[ROUTE_COUNT][METRICS_NSTATUS];
    _Atomic uint64_t latency_buckets[ROUTE_COUNT][METRICS_NBUCKETS]; /* not cumulative; summed when rendered */
    _Atomic uint64_t latency_sum_us[ROUTE_COUNT];
    _Atomic uint64_t worker_outcomes[METRICS_NKINDS][UPSTREAM_OUTCOME_COUNT];
    _Atomic uint64_t partial[ROUTE_COUNT][METRICS_NMISSING]; /* 200 answers without one source or both */
} metrics_t;

/* Counts one answered request. Owner thread. */
void metrics_record(metrics_t *m, route_t route, int status, uint64_t duration_us);

/* Counts one answer sent without the notifier's part, the history's, or both (at least one is true). Owner thread. */
void metrics_record_partial(metrics_t *m, route_t route, bool notifier_missing, bool history_missing);

/* What /metrics shows besides the per-thread counters. */
typedef struct st_metrics_source_t {
    metrics_t **threads;                         /* one per loop thread */
    upstream_client_t **clients[METRICS_NKINDS]; /* per kind, one per loop thread */
    size_t nkinds;                               /* kinds in use */
    size_t nthreads;
    upstream_t *upstreams[METRICS_NKINDS];
    int64_t started_at_ms;
    struct st_guard_t *guard; /* the limits' rejections and tables */
} metrics_source_t;

/* Renders everything in the Prometheus text format (version 0.0.4). Any thread. */
void metrics_render(const metrics_source_t *src, json_out_t *out);

#endif

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "clock.h"
#include "guard.h"
#include "metrics.h"

static const int statuses[] = METRICS_STATUSES;
static const uint64_t buckets_us[] = METRICS_BUCKETS_US;

static void inc(_Atomic uint64_t *c, uint64_t by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by, memory_order_relaxed);
}

static uint64_t get(const _Atomic uint64_t *c)
{
    return atomic_load_explicit((_Atomic uint64_t *)c, memory_order_relaxed);
}

void metrics_record(metrics_t *m, route_t route, int status, uint64_t duration_us)
{
    size_t s = 0;
    while (s < METRICS_NSTATUS - 1 && statuses[s] != status)
        ++s;
    inc(&m->requests[route][s], 1);
    size_t b = 0;
    while (b < METRICS_NBUCKETS && duration_us > buckets_us[b])
        ++b;
    if (b < METRICS_NBUCKETS) /* beyond the last bucket, only +Inf (the count) has it */
        inc(&m->latency_buckets[route][b], 1);
    inc(&m->latency_sum_us[route], duration_us);
}

void metrics_record_partial(metrics_t *m, route_t route, bool notifier_missing, bool history_missing)
{
    if (notifier_missing && history_missing)
        inc(&m->partial[route][METRICS_MISSING_BOTH], 1);
    else if (notifier_missing)
        inc(&m->partial[route][METRICS_MISSING_NOTIFIER], 1);
    else if (history_missing)
        inc(&m->partial[route][METRICS_MISSING_HISTORY], 1);
}

static void line(json_out_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(json_out_t *out, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0)
        json_out_raw(out, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

typedef struct st_replica_sum_t {
    char identity[96];
    uint64_t replies;
} replica_sum_t;

typedef struct st_replica_sums_t {
    replica_sum_t items[256];
    size_t n;
} replica_sums_t;

static void add_replica(const char *identity, uint64_t replies, void *data)
{
    replica_sums_t *sums = data;
    for (size_t i = 0; i < sums->n; ++i) {
        if (strcmp(sums->items[i].identity, identity) == 0) {
            sums->items[i].replies += replies;
            return;
        }
    }
    if (sums->n < sizeof(sums->items) / sizeof(sums->items[0])) {
        snprintf(sums->items[sums->n].identity, sizeof(sums->items[0].identity), "%s", identity);
        sums->items[sums->n++].replies = replies;
    }
}

void metrics_render(const metrics_source_t *src, json_out_t *out)
{
    line(out, "# HELP notigate_http_requests_total HTTP requests answered, by route and status.\n"
              "# TYPE notigate_http_requests_total counter\n");
    for (int r = 0; r < ROUTE_COUNT; ++r) {
        for (int s = 0; s < METRICS_NSTATUS; ++s) {
            uint64_t total = 0;
            for (size_t t = 0; t < src->nthreads; ++t)
                total += get(&src->threads[t]->requests[r][s]);
            if (total == 0)
                continue;
            char status[8];
            if (s < METRICS_NSTATUS - 1)
                snprintf(status, sizeof(status), "%d", statuses[s]);
            else
                snprintf(status, sizeof(status), "other");
            line(out, "notigate_http_requests_total{route=\"%s\",status=\"%s\"} %" PRIu64 "\n", route_name((route_t)r), status,
                 total);
        }
    }

    line(out, "# HELP notigate_http_request_duration_seconds Time from the request to its answer, by route.\n"
              "# TYPE notigate_http_request_duration_seconds histogram\n");
    for (int r = 0; r < ROUTE_COUNT; ++r) {
        uint64_t count = 0, sum_us = 0, per_bucket[METRICS_NBUCKETS] = {0};
        for (size_t t = 0; t < src->nthreads; ++t) {
            for (int s = 0; s < METRICS_NSTATUS; ++s)
                count += get(&src->threads[t]->requests[r][s]);
            for (int b = 0; b < METRICS_NBUCKETS; ++b)
                per_bucket[b] += get(&src->threads[t]->latency_buckets[r][b]);
            sum_us += get(&src->threads[t]->latency_sum_us[r]);
        }
        if (count == 0)
            continue;
        uint64_t cumulative = 0;
        for (int b = 0; b < METRICS_NBUCKETS; ++b) {
            cumulative += per_bucket[b];
            line(out, "notigate_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %" PRIu64 "\n", route_name((route_t)r),
                 (double)buckets_us[b] / 1e6, cumulative);
        }
        line(out, "notigate_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", route_name((route_t)r),
             count);
        line(out, "notigate_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", route_name((route_t)r), (double)sum_us / 1e6);
        line(out, "notigate_http_request_duration_seconds_count{route=\"%s\"} %" PRIu64 "\n", route_name((route_t)r), count);
    }

    static const char *const missing_names[METRICS_NMISSING] = {"notifier", "history", "both"};
    line(out, "# HELP notigate_http_partial_answers_total Answers of the merged lists sent without a worker's part (it failed "
              "or passed --worker-timeout-ms), by route and missing part.\n"
              "# TYPE notigate_http_partial_answers_total counter\n");
    for (int r = 0; r < ROUTE_COUNT; ++r) {
        if (r != ROUTE_LIST && r != ROUTE_HYBRID)
            continue;
        for (int k = 0; k < METRICS_NMISSING; ++k) {
            uint64_t total = 0;
            for (size_t t = 0; t < src->nthreads; ++t)
                total += get(&src->threads[t]->partial[r][k]);
            line(out, "notigate_http_partial_answers_total{route=\"%s\",missing=\"%s\"} %" PRIu64 "\n", route_name((route_t)r),
                 missing_names[k], total);
        }
    }

    line(out, "# HELP notigate_worker_replies_total Requests to workers, by worker kind and outcome.\n"
              "# TYPE notigate_worker_replies_total counter\n");
    for (size_t k = 0; k < src->nkinds; ++k) {
        for (int o = 0; o < UPSTREAM_OUTCOME_COUNT; ++o) {
            uint64_t total = 0;
            for (size_t t = 0; t < src->nthreads; ++t)
                total += get(&src->threads[t]->worker_outcomes[k][o]);
            line(out, "notigate_worker_replies_total{kind=\"%s\",outcome=\"%s\"} %" PRIu64 "\n", upstream_kind(src->upstreams[k]),
                 upstream_outcome_name((upstream_outcome_t)o), total);
        }
    }

    line(out, "# HELP notigate_worker_replicas Worker replicas connected now, by kind.\n"
              "# TYPE notigate_worker_replicas gauge\n");
    for (size_t k = 0; k < src->nkinds; ++k)
        line(out, "notigate_worker_replicas{kind=\"%s\"} %u\n", upstream_kind(src->upstreams[k]),
             upstream_replicas(src->upstreams[k]));

    line(out, "# HELP notigate_worker_replica_replies_total Replies received, by the replica that sent them.\n"
              "# TYPE notigate_worker_replica_replies_total counter\n");
    for (size_t k = 0; k < src->nkinds; ++k) {
        replica_sums_t local;
        local.n = 0;
        for (size_t t = 0; t < src->nthreads; ++t)
            upstream_client_foreach_replica(src->clients[k][t], add_replica, &local);
        for (size_t i = 0; i < local.n; ++i)
            line(out, "notigate_worker_replica_replies_total{kind=\"%s\",replica=\"%s\"} %" PRIu64 "\n",
                 upstream_kind(src->upstreams[k]), local.items[i].identity, local.items[i].replies);
    }

    if (src->guard != NULL)
        guard_render(src->guard, out);

    line(out,
         "# HELP notigate_uptime_seconds Seconds since the gateway started.\n# TYPE notigate_uptime_seconds gauge\n"
         "notigate_uptime_seconds %.3f\n",
         (double)(clock_wall_ms() - src->started_at_ms) / 1000.0);
}

/*
 * Crashes lose nothing that was acknowledged, and hostile clients cannot grow the gateway's memory:
 *   - a replica of history-svc, or of the notifier, killed (SIGKILL) under a steady load of reads and publishes: no
 *     client sees a failure, and every acknowledged publish is stored exactly once;
 *   - redis-server killed under a publish load and restarted from its directory: every 201 is still there, and what
 *     was published while it was down got a 503, in time;
 *   - 1,000 WebSocket clients that never read, while notifications flow: each is cut off at its queue bound and the
 *     gateway's resident memory stays under a bound computed from its configuration;
 *   - a client trickling an HTTP request, or a WebSocket frame, one byte a second: disconnected within the documented
 *     time.
 * Every test kills or adds processes, so each has its own system, started in the test's own child.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include "harness.h"

#define MARGIN_MS 1500 /* scheduling slack on a busy 2-core machine (sanitizers included), on top of documented times */

static harness_t *sys;

static harness_t *own_system(const harness_opts_t *opts)
{
    return sys = harness_start(tcase_name(), opts);
}

static void own_down(void)
{
    int crashes = harness_stop(sys);
    sys = NULL;
    ck_assert_msg(crashes == 0, "%d process(es) crashed during the test (see above)", crashes);
}

/* ---- load: client threads publishing and reading until told to stop ------------------------------------------- */

#define LOAD_MAX_IDS 20000

typedef enum en_load_role_t { LOAD_PUBLISH, LOAD_READ } load_role_t;

typedef struct st_load_t {
    const harness_t *h;
    const char *user;
    load_role_t role;
    int index;
    atomic_bool *stop;
    /* results, read by the main thread after the join */
    uint64_t *ids; /* publishes answered 201 */
    size_t nids;
    double (*spans)[2]; /* start and end (harness_mono_ms) of each successful request */
    size_t nspans;
    unsigned requests, failures;
    char first_failure[600];
} load_t;

static void load_fail(load_t *l, const harness_resp_t *r, const char *what)
{
    if (l->failures++ == 0)
        snprintf(l->first_failure, sizeof(l->first_failure), "%s: HTTP %ld (%s) after %.0f ms: %.400s", what, r->status, r->error,
                 r->elapsed_ms, r->body != NULL ? r->body : "");
}

static void *load_run(void *arg)
{
    load_t *l = arg;
    char path[160], body[200];
    while (!atomic_load(l->stop)) {
        harness_resp_t *r;
        double t0 = harness_mono_ms();
        if (l->role == LOAD_PUBLISH) {
            snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"message\":\"load %d.%u\"}", l->user, l->index, l->requests);
            harness_req_t req = {.method = "POST", .path = "/v1/notifications", .body = body, .timeout_ms = 20000};
            r = harness_request(l->h, &req);
            json_t *id = json_object_get(r->json, "id");
            if (r->status != 201 || !json_is_integer(id))
                load_fail(l, r, "publish");
            else if (l->nids < LOAD_MAX_IDS)
                l->ids[l->nids++] = (uint64_t)json_integer_value(id);
        } else {
            snprintf(path, sizeof(path), "/v1/users/%s/notifications?limit=20", l->user);
            harness_req_t req = {.path = path, .timeout_ms = 20000};
            r = harness_request(l->h, &req);
            if (r->status != 200 || !json_is_false(json_object_get(r->json, "partial")))
                load_fail(l, r, "read");
        }
        if (r->status / 100 == 2 && l->nspans < LOAD_MAX_IDS) {
            l->spans[l->nspans][0] = t0;
            l->spans[l->nspans++][1] = harness_mono_ms();
        }
        ++l->requests;
        harness_resp_free(r);
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Every id of user in history, read page by page through the API (each page asserted complete); sorted. */
static size_t history_ids(const char *user, uint64_t *out, size_t max)
{
    size_t n = 0;
    uint64_t before = 0;
    for (;;) {
        harness_resp_t *r = harness_list(sys, user, 100, before);
        ck_assert_msg(json_is_false(json_object_get(r->json, "partial")), "partial page while reading back: %.500s", r->body);
        n += harness_ids(json_object_get(r->json, "realtime"), out + n, max - n);
        n += harness_ids(json_object_get(r->json, "historical"), out + n, max - n);
        json_t *next = json_object_get(r->json, "next_before");
        before = json_is_integer(next) ? (uint64_t)json_integer_value(next) : 0;
        harness_resp_free(r);
        if (before == 0 || n >= max)
            break;
    }
    qsort(out, n, sizeof(*out), cmp_u64);
    return n;
}

typedef struct st_stored_t {
    uint64_t id;
    char message[48];
} stored_t;

static int cmp_stored(const void *a, const void *b)
{
    return cmp_u64(&((const stored_t *)a)->id, &((const stored_t *)b)->id);
}

static void stored_add(const json_t *list, stored_t *out, size_t *n, size_t max)
{
    for (size_t i = 0; i < json_array_size(list) && *n < max; ++i) {
        const json_t *e = json_array_get(list, i);
        out[*n].id = (uint64_t)json_integer_value(json_object_get(e, "id"));
        snprintf(out[*n].message, sizeof(out[*n].message), "%s", json_string_value(json_object_get(e, "message")));
        ++*n;
    }
}

/* Every notification of user in history (id and message), read page by page through the API; sorted by id. */
static size_t history_stored(const char *user, stored_t *out, size_t max)
{
    size_t n = 0;
    uint64_t before = 0;
    for (;;) {
        harness_resp_t *r = harness_list(sys, user, 100, before);
        ck_assert_msg(json_is_false(json_object_get(r->json, "partial")), "partial page while reading back: %.500s", r->body);
        stored_add(json_object_get(r->json, "realtime"), out, &n, max);
        stored_add(json_object_get(r->json, "historical"), out, &n, max);
        json_t *next = json_object_get(r->json, "next_before");
        before = json_is_integer(next) ? (uint64_t)json_integer_value(next) : 0;
        harness_resp_free(r);
        if (before == 0 || n >= max)
            break;
    }
    qsort(out, n, sizeof(*out), cmp_stored);
    return n;
}

/* Runs publishers and readers on user for the whole of lead_ms + then_ms, and calls fault(data) after lead_ms; fault
 * returns the time (harness_mono_ms) from which requests are stuck on the faulty replica, and sets *killed_at. Asserts
 * that no request failed, that some were in flight on the replica when it died (waiting since the first half of the
 * stuck time, when requests otherwise take milliseconds, and answered after the kill) and still succeeded (publishes too if publishes_hit), and that history holds every acknowledged id exactly once and nothing else. */
static void load_through(const char *user, int lead_ms, int then_ms, double (*fault)(void *, double *), void *data,
                         bool publishes_hit)
{
    enum { PUBLISHERS = 3, READERS = 3 };
    load_t loads[PUBLISHERS + READERS];
    pthread_t tids[PUBLISHERS + READERS];
    atomic_bool stop = false;
    for (int i = 0; i < PUBLISHERS + READERS; ++i) {
        loads[i] = (load_t){.h = sys, .user = user, .role = i < PUBLISHERS ? LOAD_PUBLISH : LOAD_READ, .index = i, .stop = &stop};
        if (i < PUBLISHERS)
            ck_assert_ptr_nonnull(loads[i].ids = malloc(LOAD_MAX_IDS * sizeof(uint64_t)));
        ck_assert_ptr_nonnull(loads[i].spans = malloc(LOAD_MAX_IDS * sizeof(loads[i].spans[0])));
        ck_assert_int_eq(pthread_create(tids + i, NULL, load_run, loads + i), 0);
    }
    harness_sleep_ms(lead_ms);
    double killed_at = 0, stuck_from = fault(data, &killed_at);
    harness_sleep_ms(then_ms);
    atomic_store(&stop, true);
    unsigned publishes = 0, reads = 0, in_flight[2] = {0, 0};
    size_t acked = 0;
    for (int i = 0; i < PUBLISHERS + READERS; ++i) {
        pthread_join(tids[i], NULL);
        *(loads[i].role == LOAD_PUBLISH ? &publishes : &reads) += loads[i].requests;
        acked += loads[i].nids;
        for (size_t k = 0; k < loads[i].nspans; ++k)
            if (loads[i].spans[k][0] < killed_at - (killed_at - stuck_from) / 2 && loads[i].spans[k][1] > killed_at)
                ++in_flight[loads[i].role];
        free(loads[i].spans);
    }
    fprintf(stderr, "%s: %u publishes, %u reads; in flight at the kill and answered all the same: %u publishes, %u reads\n",
            tcase_name(), publishes, reads, in_flight[LOAD_PUBLISH], in_flight[LOAD_READ]);
    for (int i = 0; i < PUBLISHERS + READERS; ++i)
        ck_assert_msg(loads[i].failures == 0, "client %d (%s) saw %u failed request(s) of %u; the first: %s", i,
                      loads[i].role == LOAD_PUBLISH ? "publisher" : "reader", loads[i].failures, loads[i].requests,
                      loads[i].first_failure);
    ck_assert_msg(publishes > 20 && reads > 20, "too little load to show anything: %u publishes, %u reads", publishes, reads);
    ck_assert_msg(in_flight[LOAD_READ] > 0, "no read was in flight at the kill: the test showed nothing");
    ck_assert_msg(!publishes_hit || in_flight[LOAD_PUBLISH] > 0, "no publish was in flight at the kill: the test showed nothing");

    uint64_t *want = malloc((acked + 1) * sizeof(uint64_t)), *got = malloc((acked + 64) * sizeof(uint64_t));
    ck_assert_ptr_nonnull(want);
    ck_assert_ptr_nonnull(got);
    size_t nw = 0;
    for (int i = 0; i < PUBLISHERS; ++i) {
        memcpy(want + nw, loads[i].ids, loads[i].nids * sizeof(uint64_t));
        nw += loads[i].nids;
        free(loads[i].ids);
    }
    qsort(want, nw, sizeof(*want), cmp_u64);
    for (size_t i = 1; i < nw; ++i)
        ck_assert_msg(want[i] != want[i - 1], "two publishes were answered with the same id %" PRIu64, want[i]);
    size_t ng = history_ids(user, got, acked + 64);
    for (size_t i = 1; i < ng; ++i)
        ck_assert_msg(got[i] != got[i - 1], "id %" PRIu64 " is twice in the history", got[i]);
    ck_assert_msg(ng == nw, "history holds %zu notifications, %zu were acknowledged (a publish stored twice or lost)", ng, nw);
    ck_assert_msg(memcmp(got, want, nw * sizeof(uint64_t)) == 0, "history's ids are not the acknowledged ones");
    free(want);
    free(got);
}

typedef struct st_kill_arg_t {
    harness_kind_t kind;
    const char *kind_name;
} kill_arg_t;

/* SIGSTOP first, so that requests pile up on the replica (sent, not answered), then SIGKILL: they were in flight on
 * it when it died and must be answered by the other replica. */
static double kill_one_replica(void *data, double *killed_at)
{
    kill_arg_t *k = data;
    harness_proc_t *victim = harness_proc(sys, k->kind, 0);
    harness_proc_pause(victim);
    double stuck_from = harness_mono_ms();
    harness_sleep_ms(300);
    *killed_at = harness_mono_ms();
    harness_proc_kill(sys, victim);
    return stuck_from;
}

static void kill_replica_under_load(harness_kind_t kind, const char *kind_name, const char *prefix)
{
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    /* the deadlines: long enough for a loaded 2-core machine (sanitizers included); what is checked is that nothing
     * fails, not how fast it is */
    opts.worker_timeout_ms = 3000;
    opts.write_timeout_ms = 5000;
    if (kind == HARNESS_HISTORY)
        opts.histories = 2;
    else
        opts.notifiers = 2;
    own_system(&opts);
    char user[64];
    harness_user(user, prefix);
    kill_arg_t k = {kind, kind_name};
    load_through(user, 1000, 1500, kill_one_replica, &k, kind == HARNESS_HISTORY);
    ck_assert_int_eq(harness_wait_replicas(sys, kind_name, 1, 3000), 0);
}

START_TEST(history_replica_killed_under_load)
{
    kill_replica_under_load(HARNESS_HISTORY, "history", "khl");
}
END_TEST

START_TEST(notifier_replica_killed_under_load)
{
    kill_replica_under_load(HARNESS_NOTIFIER, "notifier", "knl");
}
END_TEST

/* ---- Redis killed under a publish load ------------------------------------------------------------------------- */

#define PUB_MAX 20000

typedef struct st_pub_result_t {
    double start, end; /* harness_mono_ms */
    long status;
    uint64_t id;     /* 201 */
    char message[48];
    char code[32];   /* 503: the error code */
    bool bad;        /* neither a 201 with an id nor a JSON 503 */
} pub_result_t;

typedef struct st_publisher_t {
    const char *user;
    int index;
    atomic_bool *stop;
    pub_result_t *results;
    size_t n;
    char first_bad[1024];
} publisher_t;

static void *publisher_run(void *arg)
{
    publisher_t *p = arg;
    char body[200];
    while (!atomic_load(p->stop) && p->n < PUB_MAX) {
        pub_result_t *res = p->results + p->n++;
        snprintf(res->message, sizeof(res->message), "durable %d.%zu", p->index, p->n);
        snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"message\":\"%s\"}", p->user, res->message);
        harness_req_t req = {.method = "POST", .path = "/v1/notifications", .body = body, .timeout_ms = 20000};
        res->start = harness_mono_ms();
        harness_resp_t *r = harness_request(sys, &req);
        res->end = harness_mono_ms();
        res->status = r->status;
        json_t *id = json_object_get(r->json, "id"), *code = json_object_get(json_object_get(r->json, "error"), "code");
        if (r->status == 201 && json_is_integer(id)) {
            res->id = (uint64_t)json_integer_value(id);
        } else if (r->status == 503 && strncmp(r->content_type, "application/json", 16) == 0 && json_is_string(code)) {
            snprintf(res->code, sizeof(res->code), "%s", json_string_value(code));
        } else {
            res->bad = true;
            if (p->first_bad[0] == '\0')
                snprintf(p->first_bad, sizeof(p->first_bad), "HTTP %ld (%s) content-type '%s': %.400s", r->status, r->error,
                         r->content_type, r->body);
        }
        harness_resp_free(r);
        if (res->status != 201)
            harness_sleep_ms(5); /* the outage answers at once: do not spin */
    }
    return NULL;
}

START_TEST(redis_killed_under_publish_load)
{
    enum { PUBLISHERS = 4, OUTAGE_MS = 1500 };
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    opts.write_timeout_ms = 2000;
    own_system(&opts);
    char user[64];
    harness_user(user, "rk");
    publisher_t pubs[PUBLISHERS];
    pthread_t tids[PUBLISHERS];
    atomic_bool stop = false;
    for (int i = 0; i < PUBLISHERS; ++i) {
        pubs[i] = (publisher_t){.user = user, .index = i, .stop = &stop};
        ck_assert_ptr_nonnull(pubs[i].results = calloc(PUB_MAX, sizeof(pub_result_t)));
        ck_assert_int_eq(pthread_create(tids + i, NULL, publisher_run, pubs + i), 0);
    }
    harness_sleep_ms(800);
    harness_proc_kill(sys, harness_proc(sys, HARNESS_REDIS, 0)); /* SIGKILL, and reaped: Redis is gone from here on */
    double dead_from = harness_mono_ms();
    harness_sleep_ms(OUTAGE_MS);
    double dead_until = harness_mono_ms();
    harness_add(sys, HARNESS_REDIS); /* the same port and directory: it loads its append-only file */
    ck_assert_msg(harness_wait_ready(sys, 10000) == 0, "/readyz not 200 within 10 s of Redis coming back");
    harness_sleep_ms(1000);
    atomic_store(&stop, true);

    size_t acked = 0, total = 0, during = 0, after = 0;
    uint64_t max_before = 0, min_after = UINT64_MAX;
    for (int i = 0; i < PUBLISHERS; ++i) {
        pthread_join(tids[i], NULL);
        ck_assert_msg(pubs[i].first_bad[0] == '\0', "publisher %d got neither a 201 nor a JSON 503: %s", i, pubs[i].first_bad);
        for (size_t k = 0; k < pubs[i].n; ++k) {
            const pub_result_t *res = pubs[i].results + k;
            ++total;
            acked += res->status == 201;
            ck_assert_msg(res->end - res->start < opts.write_timeout_ms + MARGIN_MS,
                          "a publish took %.0f ms (HTTP %ld), past the %d ms write timeout", res->end - res->start, res->status,
                          opts.write_timeout_ms);
            if (res->start >= dead_from && res->end <= dead_until) {
                ++during;
                ck_assert_msg(res->status == 503, "a publish sent and answered while Redis was dead got HTTP %ld (id %" PRIu64 ")",
                              res->status, res->id);
            }
            after += res->start > dead_until && res->status == 201;
            if (res->status == 201 && res->end < dead_from && res->id > max_before)
                max_before = res->id;
            if (res->status == 201 && res->start > dead_until && res->id < min_after)
                min_after = res->id;
        }
    }
    fprintf(stderr, "%s: %zu publishes, %zu acknowledged (201), %zu sent and answered while Redis was dead (all 503), %zu 201s "
                    "after its restart\n",
            tcase_name(), total, acked, during, after);
    ck_assert_msg(during > 0, "no publish was sent while Redis was dead");
    ck_assert_msg(after > 0, "no publish succeeded after Redis came back");
    ck_assert_msg(min_after > max_before, "ids went back after the Redis restart: %" PRIu64 " after %" PRIu64 " before it", min_after,
                  max_before);

    /* every acknowledged notification is in the history Redis reloaded from its append-only file, with its message */
    stored_t *got = malloc((total + 64) * sizeof(stored_t));
    ck_assert_ptr_nonnull(got);
    size_t ng = history_stored(user, got, total + 64), missing = 0;
    const pub_result_t *first_missing = NULL;
    for (int i = 0; i < PUBLISHERS; ++i) {
        for (size_t k = 0; k < pubs[i].n; ++k) {
            const pub_result_t *res = pubs[i].results + k;
            stored_t key = {.id = res->id};
            const stored_t *found = res->status == 201 ? bsearch(&key, got, ng, sizeof(*got), cmp_stored) : NULL;
            if (res->status == 201 && (found == NULL || strcmp(found->message, res->message) != 0) && missing++ == 0)
                first_missing = res;
        }
    }
    ck_assert_msg(missing == 0,
                  "%zu acknowledged notification(s) lost in the Redis crash (first: id %" PRIu64 " \"%s\"); history holds %zu",
                  missing, first_missing != NULL ? first_missing->id : 0, first_missing != NULL ? first_missing->message : "", ng);
    for (int i = 0; i < PUBLISHERS; ++i)
        free(pubs[i].results);
    free(got);
}
END_TEST

static void add_own(Suite *s, const TTest *test, int timeout_s)
{
    TCase *tc = tcase_create(test->name); /* named after the test: the runner prints its system's logs if it fails */
    tcase_add_checked_fixture(tc, NULL, own_down);
    tcase_set_timeout(tc, timeout_s);
    tcase_add_test(tc, test);
    suite_add_tcase(s, tc);
}

static Suite *crash_suite(void)
{
    Suite *s = suite_create("integration_crash");
    add_own(s, history_replica_killed_under_load, 60);
    add_own(s, notifier_replica_killed_under_load, 60);
    add_own(s, redis_killed_under_publish_load, 60);
    return s;
}

int main(void)
{
    return harness_main(crash_suite());
}

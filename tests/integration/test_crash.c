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
    harness_stop_own(&sys);
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
 * stuck time, when requests otherwise take milliseconds, and answered after the kill) and still succeeded (publishes too if
 * publishes_hit), and that history holds every acknowledged id exactly once and nothing else. */
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
    uint64_t id; /* 201 */
    char message[48];
    char code[32]; /* 503: the error code */
    bool bad;      /* neither a 201 with an id nor a JSON 503 */
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
    /* the read-back pages of 100 must not come back partial because the notifier, reloading its window after Redis
     * came back, is slow under the sanitizers on a busy machine (CI saw one 250 ms timeout): this test is about what
     * history holds */
    opts.worker_timeout_ms = 2000;
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

    size_t acked = 0, total = 0, during = 0, after = 0, unavailable = 0, timeout = 0, other = 0;
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
            if (res->status == 503) {
                if (strcmp(res->code, "unavailable") == 0)
                    ++unavailable;
                else if (strcmp(res->code, "timeout") == 0)
                    ++timeout;
                else
                    ++other;
            }
            if (res->status == 201 && res->end < dead_from && res->id > max_before)
                max_before = res->id;
            if (res->status == 201 && res->start > dead_until && res->id < min_after)
                min_after = res->id;
        }
    }
    fprintf(stderr,
            "%s: %zu publishes, %zu acknowledged (201), %zu sent and answered while Redis was dead (all 503), %zu 201s "
            "after its restart; 503s: %zu unavailable, %zu timeout, %zu other\n",
            tcase_name(), total, acked, during, after, unavailable, timeout, other);
    ck_assert_msg(during > 0, "no publish was sent while Redis was dead");
    ck_assert_msg(after > 0, "no publish succeeded after Redis came back");
    ck_assert_msg(min_after > max_before, "ids went back after the Redis restart: %" PRIu64 " after %" PRIu64 " before it",
                  min_after, max_before);

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

/* ---- hostile clients --------------------------------------------------------------------------------------------- */

/* A kB figure ("VmRSS", "VmHWM") from /proc/PID/status, or -1. */
static long proc_status_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    long v = -1;
    size_t flen = strlen(field);
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    while (fgets(line, sizeof(line), fp) != NULL)
        if (strncmp(line, field, flen) == 0 && line[flen] == ':')
            v = strtol(line + flen + 1, NULL, 10);
    fclose(fp);
    return v;
}

/* Lines of p's log holding needle; with queued, each line's "queued=N" goes to queued[] (up to max). */
static size_t log_lines(const harness_proc_t *p, const char *needle, long *queued, size_t max)
{
    FILE *fp = fopen(p->log_path, "r");
    char line[2048];
    size_t n = 0;
    if (fp == NULL)
        return 0;
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (strstr(line, needle) == NULL)
            continue;
        const char *q = strstr(line, " queued=");
        if (queued != NULL && n < max)
            queued[n] = q != NULL ? strtol(q + 8, NULL, 10) : -1;
        ++n;
    }
    fclose(fp);
    return n;
}

static void raise_nofile(rlim_t want)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    ck_assert_msg(rl.rlim_cur >= want, "the open-files limit is %lu, the test needs %lu (ulimit -Hn)", (unsigned long)rl.rlim_cur,
                  (unsigned long)want);
}

/* A TCP connection from src (a 127.0.0.0/8 address) to the gateway. rcvbuf > 0 shrinks the receive buffer and the
 * segment size the client announces, so that the kernels (its receive buffer, and the gateway's send buffer, which
 * Linux sizes from the peer's segment size) hold little of what the client does not read. Returns the fd or -1. */
static int tcp_open(const char *src, uint16_t port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), mss = 1024;
    struct sockaddr_in a = {.sin_family = AF_INET}, to = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (fd < 0)
        return -1;
    if (rcvbuf > 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
        setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss));
    }
    inet_pton(AF_INET, src, &a.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends a WebSocket upgrade for path and reads the answer's head, nothing after it. Returns 0 on a 101. */
static int ws_upgrade(int fd, const char *path, char *err, size_t errsz)
{
    char req[2048], head[2048];
    int len = snprintf(req, sizeof(req),
                       "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                       path);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (send(fd, req, (size_t)len, MSG_NOSIGNAL) != len) {
        snprintf(err, errsz, "send: %s", strerror(errno));
        return -1;
    }
    size_t got = 0;
    for (;;) { /* peek, then take exactly the head: what follows (the hello frame) stays unread */
        ssize_t n = recv(fd, head, sizeof(head) - 1, MSG_PEEK);
        if (n <= 0) {
            snprintf(err, errsz, "no answer to the upgrade (%s)", n == 0 ? "closed" : strerror(errno));
            return -1;
        }
        head[n] = '\0';
        char *end = strstr(head, "\r\n\r\n");
        if (end != NULL) {
            got = (size_t)(end + 4 - head);
            break;
        }
        if ((size_t)n == sizeof(head) - 1) {
            snprintf(err, errsz, "answer head too long");
            return -1;
        }
        usleep(1000);
    }
    if (recv(fd, head, got, 0) != (ssize_t)got || strncmp(head, "HTTP/1.1 101", 12) != 0) {
        snprintf(err, errsz, "not upgraded: %.200s", head);
        return -1;
    }
    return 0;
}

/* The documented bound on the gateway's resident memory with n sessions whose clients do not read (README, "Hostile
 * clients"): what it held before they came, plus per session a fixed cost and twice its queue bound (the queued
 * messages with their allocation overhead, and what h2o holds in the socket's write buffer), plus slack for the
 * allocator. */
#define HOSTILE_PER_SESSION_KIB 24
#define HOSTILE_SLACK_KIB (16 * 1024)
static long hostile_bound_kib(long before_kib, long n, long queue_max)
{
    return before_kib + n * (HOSTILE_PER_SESSION_KIB + 2 * queue_max / 1024) + HOSTILE_SLACK_KIB;
}

START_TEST(readers_that_never_read)
{
    /* 10 sessions per user and per source address: under the default --max-sessions-per-user (16) and
     * --max-conns-per-addr (256), which this test leaves as they are */
    enum { CLIENTS = 1000, USERS = 100, SOURCES = 100, MSG = 4000, MAX_ROUNDS = 250 };
    const long queue_max = 16384;
    raise_nofile(CLIENTS + 512); /* the gateway, started below, inherits it */
    char qarg[32];
    snprintf(qarg, sizeof(qarg), "%ld", queue_max);
    const char *const gw_args[] = {"--ws-queue-max", qarg, NULL};
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    opts.worker_timeout_ms = 3000;
    opts.write_timeout_ms = 5000;
    opts.gateway_args = gw_args;
    own_system(&opts);
    harness_proc_t *gw = harness_proc(sys, HARNESS_GATEWAY, 0);
    bool asan = getenv("ASAN_OPTIONS") != NULL; /* AddressSanitizer keeps freed memory in quarantine: RSS says nothing */
    char users[USERS][64], tokens[USERS][1024], path[1200], err[256], src[32], body[MSG + 200];
    for (int u = 0; u < USERS; ++u)
        harness_token(sys, tokens[u], sizeof(tokens[u]), harness_user(users[u], "never-reads"), NULL, 3600);
    /* warm the gateway's paths so that the baseline is not its cold start */
    for (int u = 0; u < USERS; ++u)
        harness_publish(sys, users[u], "warm-up", NULL, NULL);
    long before = proc_status_kib(gw->pid, "VmRSS");

    int *fds = malloc(CLIENTS * sizeof(int));
    ck_assert_ptr_nonnull(fds);
    double t0 = harness_mono_ms();
    for (int i = 0; i < CLIENTS; ++i) {
        snprintf(src, sizeof(src), "127.0.0.%d", 2 + i % SOURCES); /* many addresses, as many hostile clients would be */
        snprintf(path, sizeof(path), "/v1/ws?user_id=%s&token=%s", users[i % USERS], tokens[i % USERS]);
        fds[i] = tcp_open(src, sys->http_port, 4096);
        ck_assert_msg(fds[i] >= 0, "client %d: connect from %s: %s", i, src, strerror(errno));
        ck_assert_msg(ws_upgrade(fds[i], path, err, sizeof(err)) == 0, "client %d: %s", i, err);
    }
    long connected = proc_status_kib(gw->pid, "VmRSS"), bound = hostile_bound_kib(before, CLIENTS, queue_max);
    fprintf(stderr, "%s: %d sessions open in %.0f ms; gateway RSS %ld KiB before them, %ld KiB with them; bound %ld KiB\n",
            tcase_name(), CLIENTS, harness_mono_ms() - t0, before, connected, bound);

    /* notifications flow to every user until every session was cut off at its bound */
    memset(body, 0, sizeof(body));
    size_t cut = 0;
    int rounds = 0;
    long hwm = 0;
    for (; rounds < MAX_ROUNDS && cut < CLIENTS; ++rounds) {
        for (int u = 0; u < USERS; ++u) {
            int len = snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"message\":\"%d ", users[u], rounds);
            memset(body + len, 'x', MSG);
            snprintf(body + len + MSG, sizeof(body) - (size_t)len - MSG, "\"}");
            harness_resp_t *r = harness_post(sys, "/v1/notifications", body);
            ck_assert_msg(r->status == 201, "publish during the flood: HTTP %ld (%s) %.300s", r->status, r->error, r->body);
            harness_resp_free(r);
        }
        cut = log_lines(gw, "send queue full", NULL, 0);
        hwm = proc_status_kib(gw->pid, "VmHWM");
        if (!asan)
            ck_assert_msg(hwm <= bound,
                          "gateway peak RSS %ld KiB passed the bound %ld KiB after %d rounds (%zu of %d sessions cut)", hwm, bound,
                          rounds + 1, cut, CLIENTS);
    }
    long after = proc_status_kib(gw->pid, "VmRSS");
    fprintf(stderr,
            "%s: %zu of %d sessions cut off after %d rounds (%d KB to each session); gateway RSS %ld KiB now, peak %ld KiB, "
            "bound %ld KiB%s\n",
            tcase_name(), cut, CLIENTS, rounds, rounds * (MSG + 100) / 1000, after, hwm, bound,
            asan ? " (not asserted under AddressSanitizer)" : "");
    ck_assert_msg(cut == CLIENTS, "only %zu of %d sessions that never read were cut off after %d KB were sent to each", cut,
                  CLIENTS, rounds * (MSG + 100) / 1000);

    /* each at its bound: the next frame would have passed it */
    long *queued = malloc(CLIENTS * sizeof(long));
    ck_assert_ptr_nonnull(queued);
    ck_assert_uint_eq(log_lines(gw, "send queue full", queued, CLIENTS), CLIENTS);
    for (int i = 0; i < CLIENTS; ++i)
        ck_assert_msg(queued[i] <= queue_max && queued[i] > queue_max - (MSG + 400),
                      "a session was cut with %ld bytes queued (bound %ld, frames of ~%d bytes)", queued[i], queue_max, MSG + 200);
    free(queued);

    /* the gateway serves on */
    for (int i = 0; i < CLIENTS; ++i)
        close(fds[i]);
    free(fds);
    uint64_t id = harness_publish(sys, users[0], "after the flood", NULL, NULL);
    ck_assert(harness_wait_realtime(sys, users[0], id, 3000));
}
END_TEST

/* Trickles bytes to fd, one every interval_ms, until the gateway closes the connection or limit_ms passes. Returns the
 * milliseconds from the first byte to the close, or -1 if it stayed open. */
static double trickle_until_closed(int fd, const char *bytes, size_t len, int interval_ms, int limit_ms)
{
    double t0 = harness_mono_ms();
    size_t i = 0;
    char buf[4096];
    while (harness_mono_ms() - t0 < limit_ms) {
        if (i < len && send(fd, bytes + i, 1, MSG_NOSIGNAL) != 1)
            return harness_mono_ms() - t0;
        ++i;
        double next = t0 + (double)i * interval_ms;
        for (double now = harness_mono_ms(); now < next; now = harness_mono_ms()) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (poll(&p, 1, (int)(next - now) + 1) > 0) {
                ssize_t n = recv(fd, buf, sizeof(buf), 0);
                if (n <= 0)
                    return harness_mono_ms() - t0; /* closed (0) or reset */
            }
        }
    }
    return -1;
}

START_TEST(slow_http_request)
{
    const int timeout_ms = 3000;
    char targ[32];
    snprintf(targ, sizeof(targ), "%d", timeout_ms);
    const char *const gw_args[] = {"--http-request-timeout-ms", targ, "--http2-idle-timeout-ms", targ, NULL};
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    opts.gateway_args = gw_args;
    own_system(&opts);
    /* one byte a second of a request head that would take 60 s, and of a body after a head sent at once */
    const char head[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    int fd = tcp_open("127.0.0.1", sys->http_port, 0);
    ck_assert_int_ge(fd, 0);
    double took = trickle_until_closed(fd, head, sizeof(head) - 1, 1000, timeout_ms + 10000);
    close(fd);
    fprintf(stderr, "%s: a head trickled at 1 byte/s was closed after %.0f ms (--http-request-timeout-ms %d)\n", tcase_name(), took,
            timeout_ms);
    ck_assert_msg(took >= 0, "a request trickled at one byte a second was still open after %d ms", timeout_ms + 10000);
    ck_assert_msg(took > timeout_ms - 1100 && took < timeout_ms + MARGIN_MS, "closed after %.0f ms, expected about %d", took,
                  timeout_ms);

    char post_head[256];
    snprintf(post_head, sizeof(post_head), "POST /v1/notifications HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 60\r\n\r\n");
    fd = tcp_open("127.0.0.1", sys->http_port, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(send(fd, post_head, strlen(post_head), MSG_NOSIGNAL), (ssize_t)strlen(post_head));
    const char body[] = "{\"user_id\":\"slow\",\"message\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}";
    took = trickle_until_closed(fd, body, sizeof(body) - 1, 1000, timeout_ms + 10000);
    close(fd);
    fprintf(stderr, "%s: a body trickled at 1 byte/s was closed after %.0f ms\n", tcase_name(), took);
    ck_assert_msg(took >= 0 && took < timeout_ms + MARGIN_MS, "a body trickled at one byte a second: closed after %.0f ms", took);

    /* HTTP/2 (h2c): the preface and SETTINGS at once, then a HEADERS frame one byte a second. h2o restarts its idle timer
     * on every read; the gateway's sweep (h2_idle.c) closes a connection with no request for the idle timeout all the
     * same, within a second of it */
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    char headers[9 + 64];
    memcpy(headers, "\x00\x00\x40\x01\x04\x00\x00\x00\x01", 9); /* HEADERS, 64 bytes, END_HEADERS, stream 1 */
    memset(headers + 9, 0x82, 64);                              /* ":method: GET", over and over */
    fd = tcp_open("127.0.0.1", sys->http_port, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(send(fd, preface, sizeof(preface) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(preface) - 1);
    took = trickle_until_closed(fd, headers, sizeof(headers), 1000, timeout_ms + 10000);
    close(fd);
    fprintf(stderr, "%s: an HTTP/2 HEADERS frame trickled at 1 byte/s was closed after %.0f ms (--http2-idle-timeout-ms %d)\n",
            tcase_name(), took, timeout_ms);
    ck_assert_msg(took >= 0, "an HTTP/2 frame trickled at one byte a second was still open after %d ms", timeout_ms + 10000);
    ck_assert_msg(took > timeout_ms - 1100 && took < timeout_ms + 1000 + MARGIN_MS, "closed after %.0f ms, expected %d-%d", took,
                  timeout_ms, timeout_ms + 1000);
    ck_assert(harness_log_contains(harness_proc(sys, HARNESS_GATEWAY, 0), "HTTP/2 connection closed: no request"));

    /* keep-alive: the timeout starts again for each request, not for the connection */
    fd = tcp_open("127.0.0.1", sys->http_port, 0);
    ck_assert_int_ge(fd, 0);
    const char quick[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    char buf[2048];
    for (int i = 0; i < 3; ++i) {
        ck_assert_int_eq(send(fd, quick, sizeof(quick) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(quick) - 1);
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        ck_assert_msg(n > 12 && strncmp(buf, "HTTP/1.1 200", 12) == 0, "keep-alive request %d not answered", i);
        harness_sleep_ms(timeout_ms / 2);
    }
    close(fd);
}
END_TEST

START_TEST(slow_websocket_frame)
{
    const int interval_ms = 1000, ping_timeout_ms = 1000;
    const char *const gw_args[] = {"--ws-ping-interval-ms", "1000", "--ws-ping-timeout-ms", "1000", NULL};
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    opts.gateway_args = gw_args;
    own_system(&opts);
    char err[256];
    int fd = tcp_open("127.0.0.1", sys->http_port, 0);
    ck_assert_int_ge(fd, 0);
    char tok[1024], path[1100];
    snprintf(path, sizeof(path), "/v1/ws?token=%s", harness_token(sys, tok, sizeof(tok), "slow-frame", NULL, 3600));
    ck_assert_msg(ws_upgrade(fd, path, err, sizeof(err)) == 0, "%s", err);
    /* a masked text frame of 125 bytes, trickled: it would take two minutes; no pong can pass it */
    char frame[2 + 4 + 125];
    frame[0] = (char)0x81;
    frame[1] = (char)(0x80 | 125);
    memset(frame + 2, 0x11, sizeof(frame) - 2);
    /* the documented bound: closed (1008) within 2 x interval + timeout of the last complete message, and the connection
     * dropped at most 3 s later when the client does not answer the close frame (session.c's 2 s grace, checked each second) */
    const int bound_ms = 2 * interval_ms + ping_timeout_ms + 3000;
    double took = trickle_until_closed(fd, frame, sizeof(frame), 1000, bound_ms + 10000);
    close(fd);
    fprintf(stderr, "%s: a frame trickled at 1 byte/s was closed after %.0f ms (ping interval %d ms, timeout %d ms)\n",
            tcase_name(), took, interval_ms, ping_timeout_ms);
    ck_assert_msg(took >= 0, "a WebSocket frame trickled at one byte a second was never cut off");
    ck_assert_msg(took < bound_ms + MARGIN_MS, "closed after %.0f ms: later than 2 x interval + timeout + 3 s (%d ms)", took,
                  bound_ms);
    ck_assert_msg(harness_log_contains(harness_proc(sys, HARNESS_GATEWAY, 0), "session closed: no answer to pings"),
                  "the gateway did not log the heartbeat cut-off");
}
END_TEST

static void add_own(Suite *s, const TTest *test, int timeout_s)
{
    harness_add_own(s, test, timeout_s, own_down);
}

static Suite *crash_suite(void)
{
    Suite *s = suite_create("integration_crash");
    add_own(s, history_replica_killed_under_load, 60);
    add_own(s, notifier_replica_killed_under_load, 60);
    add_own(s, redis_killed_under_publish_load, 60);
    add_own(s, readers_that_never_read, 120);
    add_own(s, slow_http_request, 60);
    add_own(s, slow_websocket_frame, 60);
    return s;
}

int main(void)
{
    return harness_main(crash_suite());
}

/*
 * The REST API against a running system: publish and fetch, pagination, read state, bad inputs, HTTP/2 and HTTPS.
 * These tests only send requests, so each TCase shares one system started in the runner (unchecked fixture); every
 * test uses its own user ids.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"

static harness_t *sys;

static void publish_up(void)
{
    sys = harness_start("publish", NULL);
}

static void read_state_up(void)
{
    sys = harness_start("read_state", NULL);
}

static void bad_input_up(void)
{
    sys = harness_start("bad_input", NULL);
}

static void http2_up(void)
{
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    opts.tls = true;
    sys = harness_start("http2", &opts);
}

static void shared_down(void)
{
    harness_stop(sys); /* a crash is recorded and fails the runner (harness_main) */
    sys = NULL;
}

/* After each test, in the test's child: nothing of the shared system may have died under it. */
static void assert_alive(void)
{
    harness_assert_alive(sys);
}

/* Asserts a list of notifications is newest first without repeats, every item for user; copies the ids to out. */
static size_t list_ids(const json_t *list, const char *user, uint64_t *out, size_t max, const char *what, const char *body)
{
    size_t i, n = harness_ids(list, out, max);
    json_t *v;
    ck_assert_msg(n <= max, "%s: %zu items, more than %zu: %.300s", what, n, max, body);
    for (i = 1; i < n; ++i)
        ck_assert_msg(out[i] < out[i - 1], "%s is not newest first without repeats (%" PRIu64 " after %" PRIu64 "): %.800s", what,
                      out[i], out[i - 1], body);
    json_array_foreach(list, i, v)
    {
        ck_assert_msg(strcmp(json_string_value(json_object_get(v, "user_id")), user) == 0,
                      "%s holds another user's notification: %.800s", what, body);
    }
    return n;
}

static bool contains(const uint64_t *ids, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; ++i)
        if (ids[i] == id)
            return true;
    return false;
}

static const json_t *find(const json_t *list, uint64_t id)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if ((uint64_t)json_integer_value(json_object_get(v, "id")) == id)
            return v;
    }
    return NULL;
}

static void mark_read(const char *user, uint64_t id, long expect)
{
    char path[256];
    snprintf(path, sizeof(path), "/v1/users/%s/notifications/%" PRIu64 "/read", user, id);
    harness_resp_t *r = harness_post(sys, path, NULL);
    ck_assert_msg(r->status == expect, "POST %s: expected %ld, got %ld: %.300s", path, expect, r->status, r->body);
    if (expect == 204)
        ck_assert_msg(r->body_len == 0, "204 with a body: %.300s", r->body);
    else
        HARNESS_ASSERT_ERROR(r, expect, "not_found");
    harness_resp_free(r);
}

/* ---- 1. publish, then fetch ------------------------------------------------------------------------------------ */

START_TEST(publish_then_fetch)
{
    char user[64], other[64], msg[64];
    uint64_t ids[8], other_ids[3], rt[100], hist[100];
    int64_t ts[8];
    size_t nother = 0;
    harness_user(user, "pub");
    harness_user(other, "pub-other");

    int64_t t0 = harness_wall_ms();
    for (int i = 0; i < 8; ++i) {
        snprintf(msg, sizeof(msg), "message %d", i);
        ids[i] = harness_publish(sys, user, msg, i % 2 == 1 ? "alert" : NULL, &ts[i]);
        if (i % 3 == 0)
            other_ids[nother++] = harness_publish(sys, other, "not for the first user", NULL, NULL);
        if (i > 0) {
            ck_assert_msg(ids[i] > ids[i - 1], "ids do not increase with publish order: %" PRIu64 " then %" PRIu64, ids[i - 1],
                          ids[i]);
            ck_assert_msg(ts[i] >= ts[i - 1], "ts went back: %" PRId64 " then %" PRId64, ts[i - 1], ts[i]);
        }
    }
    int64_t t1 = harness_wall_ms();
    for (int i = 0; i < 8; ++i) /* milliseconds since the epoch, from the same clock (a second of slack) */
        ck_assert_msg(ts[i] >= t0 - 1000 && ts[i] <= t1 + 1000, "ts %" PRId64 " is not in ms between %" PRId64 " and %" PRId64,
                      ts[i], t0, t1);

    /* two read ones, so that the first page has both lists */
    mark_read(user, ids[2], 204);
    mark_read(user, ids[5], 204);
    ck_assert_msg(harness_wait_realtime(sys, user, ids[7], 1000), "the newest notification never reached realtime");

    harness_resp_t *r = harness_list(sys, user, 0, 0);
    json_t *jrt = json_object_get(r->json, "realtime"), *jhist = json_object_get(r->json, "historical");
    size_t nrt = list_ids(jrt, user, rt, 100, "realtime", r->body), nhist = list_ids(jhist, user, hist, 100, "historical", r->body);
    ck_assert_msg(nrt > 0 && rt[0] == ids[7], "the newest is not first in realtime: %.800s", r->body);
    ck_assert_msg(nrt == 6 && nhist == 2, "expected 6 realtime and 2 historical: %.1000s", r->body);
    for (size_t i = 0; i < nrt; ++i)
        ck_assert_msg(!contains(hist, nhist, rt[i]), "id %" PRIu64 " is in both realtime and historical: %.1000s", rt[i], r->body);
    for (int i = 0; i < 8; ++i) {
        bool read = i == 2 || i == 5;
        const json_t *n = find(read ? jhist : jrt, ids[i]);
        ck_assert_msg(n != NULL, "id %" PRIu64 " (%s) missing from %s: %.1000s", ids[i], read ? "read" : "unread",
                      read ? "historical" : "realtime", r->body);
        snprintf(msg, sizeof(msg), "message %d", i);
        ck_assert_str_eq(json_string_value(json_object_get(n, "message")), msg);
        ck_assert_str_eq(json_string_value(json_object_get(n, "kind")), i % 2 == 1 ? "alert" : "info");
        ck_assert_int_eq(json_integer_value(json_object_get(n, "ts")), ts[i]);
        ck_assert_msg(json_is_true(json_object_get(n, "read")) == read, "read flag of %" PRIu64 ": %.1000s", ids[i], r->body);
    }
    for (size_t i = 0; i < nother; ++i)
        ck_assert_msg(!contains(rt, nrt, other_ids[i]) && !contains(hist, nhist, other_ids[i]), "another user's id in the list");
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "unread_count")), 6);
    ck_assert_msg(json_is_null(json_object_get(r->json, "next_before")), "next_before on the only page: %.300s", r->body);
    ck_assert_msg(json_is_false(json_object_get(r->json, "partial")), "partial with every worker up: %.500s", r->body);
    harness_resp_free(r);

    /* the other user sees only theirs */
    r = harness_list(sys, other, 0, 0);
    nrt = list_ids(json_object_get(r->json, "realtime"), other, rt, 100, "realtime", r->body);
    nhist = list_ids(json_object_get(r->json, "historical"), other, hist, 100, "historical", r->body);
    ck_assert_msg(nrt + nhist == nother, "the other user has %zu+%zu notifications, expected %zu: %.800s", nrt, nhist, nother,
                  r->body);
    for (int i = 0; i < 8; ++i)
        ck_assert(!contains(rt, nrt, ids[i]) && !contains(hist, nhist, ids[i]));
    harness_resp_free(r);
}
END_TEST

START_TEST(message_round_trip)
{
    /* quotes, backslash, control characters, multi-byte UTF-8 and an emoji survive the trip through Redis and back */
    const char *text =
        "quote \" backslash \\ newline \n tab \t ctrl \x01 \x1f e-acute \xc3\xa9 euro \xe2\x82\xac emoji \xf0\x9f\x98\x80 end";
    char user[64];
    harness_user(user, "text");
    uint64_t id = harness_publish(sys, user, text, "a.b_c-D9", NULL);
    ck_assert(harness_wait_realtime(sys, user, id, 1000));
    harness_resp_t *r = harness_list(sys, user, 0, 0);
    const json_t *n = find(json_object_get(r->json, "realtime"), id);
    ck_assert_msg(n != NULL, "not in realtime: %.500s", r->body);
    ck_assert_str_eq(json_string_value(json_object_get(n, "message")), text);
    ck_assert_str_eq(json_string_value(json_object_get(n, "kind")), "a.b_c-D9");
    harness_resp_free(r);

    /* the same through the historical side: read it */
    mark_read(user, id, 204);
    r = harness_list(sys, user, 0, 0);
    n = find(json_object_get(r->json, "historical"), id);
    ck_assert_msg(n != NULL, "not in historical once read: %.500s", r->body);
    ck_assert_str_eq(json_string_value(json_object_get(n, "message")), text);
    harness_resp_free(r);
}
END_TEST

/* Notifications written by the first storage layout (the user set's member a bare id, the fields in ng:n:<id>) are
 * still listed, marked read and counted beside those of the current one (history-svc/store.h). */
START_TEST(first_layout_records_still_served)
{
    char user[64], cmd[512];
    harness_user(user, "layout1");
    uint64_t newer = harness_publish(sys, user, "current layout", NULL, NULL);
    uint64_t old_ids[2];
    /* two records of the first layout, with ids below the published one (ids are only compared, never reused here) */
    for (int i = 0; i < 2; ++i) {
        old_ids[i] = 1000000000000ull + (uint64_t)i; /* far above any id the counter gives in a test run */
        snprintf(cmd, sizeof(cmd), "HSET ng:n:%llu u %s m \"old one %d\" k legacy ts %lld r 0\r\n", (unsigned long long)old_ids[i],
                 user, i, (long long)(1700000000000ll + i));
        ck_assert_int_eq(harness_redis_int(sys, cmd), 5);
        snprintf(cmd, sizeof(cmd), "ZADD ng:u:%s %llu %llu\r\n", user, (unsigned long long)old_ids[i], (unsigned long long)old_ids[i]);
        ck_assert_int_eq(harness_redis_int(sys, cmd), 1);
        snprintf(cmd, sizeof(cmd), "ZADD ng:u:%s:unread %llu %llu\r\n", user, (unsigned long long)old_ids[i],
                 (unsigned long long)old_ids[i]);
        ck_assert_int_eq(harness_redis_int(sys, cmd), 1);
    }
    ck_assert(harness_wait_realtime(sys, user, newer, 1000));

    harness_resp_t *r = harness_list(sys, user, 0, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "unread_count")), 3);
    for (int i = 0; i < 2; ++i) {
        const json_t *n = find(json_object_get(r->json, "historical"), old_ids[i]);
        ck_assert_msg(n != NULL, "first-layout record %d not listed: %.800s", i, r->body);
        char text[32];
        snprintf(text, sizeof(text), "old one %d", i);
        ck_assert_str_eq(json_string_value(json_object_get(n, "message")), text);
        ck_assert_str_eq(json_string_value(json_object_get(n, "kind")), "legacy");
        ck_assert_int_eq(json_integer_value(json_object_get(n, "ts")), 1700000000000ll + i);
        ck_assert(json_is_false(json_object_get(n, "read")));
    }
    harness_resp_free(r);

    mark_read(user, old_ids[1], 204);
    r = harness_list(sys, user, 0, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "unread_count")), 2);
    const json_t *n = find(json_object_get(r->json, "historical"), old_ids[1]);
    ck_assert_msg(n != NULL && json_is_true(json_object_get(n, "read")), "marked first-layout record: %.800s", r->body);
    n = find(json_object_get(r->json, "historical"), old_ids[0]);
    ck_assert_msg(n != NULL && json_is_false(json_object_get(n, "read")), "the other first-layout record: %.800s", r->body);
    harness_resp_free(r);
}
END_TEST

START_TEST(pagination_walk)
{
    enum { N = 57, LIMIT = 10 };
    static const int read_ones[] = {0, 1, 10, 29, 30, 55, 56};
    char user[64], other[64];
    uint64_t ids[N], seen[N + 10], rt[LIMIT + 1], hist[LIMIT + 1], prev_min = UINT64_MAX;
    size_t nseen = 0, pages = 0;
    const size_t nread = sizeof(read_ones) / sizeof(read_ones[0]);
    harness_user(user, "page");
    harness_user(other, "page-other");

    for (int i = 0; i < N; ++i) {
        char msg[32];
        snprintf(msg, sizeof(msg), "n%d", i);
        ids[i] = harness_publish(sys, user, msg, NULL, NULL);
        if (i % 6 == 0)
            harness_publish(sys, other, "noise", NULL, NULL);
    }
    for (size_t i = 0; i < nread; ++i)
        mark_read(user, ids[read_ones[i]], 204);
    ck_assert(harness_wait_realtime(sys, user, ids[54], 1000));

    uint64_t before = 0;
    do {
        harness_resp_t *r = harness_list(sys, user, LIMIT, before);
        json_t *jrt = json_object_get(r->json, "realtime"), *jhist = json_object_get(r->json, "historical");
        size_t nrt = list_ids(jrt, user, rt, LIMIT, "realtime", r->body);
        size_t nhist = list_ids(jhist, user, hist, LIMIT, "historical", r->body);
        ck_assert_msg(nrt + nhist <= LIMIT && nrt + nhist > 0, "page %zu has %zu items: %.1500s", pages, nrt + nhist, r->body);
        ck_assert_msg(json_is_false(json_object_get(r->json, "partial")), "partial page: %.500s", r->body);
        ck_assert_int_eq(json_integer_value(json_object_get(r->json, "unread_count")), N - (int)nread);
        for (size_t i = 0; i < nrt + nhist; ++i) {
            uint64_t id = i < nrt ? rt[i] : hist[i - nrt];
            ck_assert_msg(id < prev_min, "page %zu repeats or goes back to id %" PRIu64 ": %.1500s", pages, id, r->body);
            ck_assert_msg(!contains(seen, nseen, id), "id %" PRIu64 " seen twice: %.1500s", id, r->body);
            seen[nseen++] = id;
            bool read = false;
            for (size_t k = 0; k < nread; ++k)
                read = read || ids[read_ones[k]] == id;
            /* unread ones are realtime, read ones historical with "read":true */
            ck_assert_msg((i < nrt) == !read, "id %" PRIu64 " (%s) is in the wrong list: %.1500s", id, read ? "read" : "unread",
                          r->body);
            ck_assert_msg(json_is_true(json_object_get(find(i < nrt ? jrt : jhist, id), "read")) == read, "read flag of %" PRIu64,
                          id);
        }
        for (size_t i = 0; i < nrt + nhist; ++i) {
            uint64_t id = i < nrt ? rt[i] : hist[i - nrt];
            prev_min = id < prev_min ? id : prev_min;
        }
        json_t *next = json_object_get(r->json, "next_before");
        before = json_is_integer(next) ? (uint64_t)json_integer_value(next) : 0;
        if (before != 0)
            ck_assert_msg(before == prev_min, "next_before %" PRIu64 " is not the oldest id of the page (%" PRIu64 ")", before,
                          prev_min);
        ++pages;
        harness_resp_free(r);
        ck_assert_msg(pages <= N, "next_before never became null");
    } while (before != 0);

    ck_assert_msg(nseen == N, "the walk saw %zu notifications in %zu pages, expected %d", nseen, pages, N);
    for (int i = 0; i < N; ++i)
        ck_assert_msg(contains(seen, nseen, ids[i]), "id %" PRIu64 " (published %dth) never showed up", ids[i], i);
    ck_assert_uint_eq(pages, (N + LIMIT - 1) / LIMIT);
}
END_TEST

START_TEST(hybrid_shape)
{
    char user[64];
    harness_user(user, "hybrid");
    uint64_t a = harness_publish(sys, user, "first", NULL, NULL), b = harness_publish(sys, user, "second", NULL, NULL);
    mark_read(user, a, 204);
    ck_assert(harness_wait_realtime(sys, user, b, 1000));
    harness_resp_t *r = harness_get(sys, "/hybrid/notifications?user_id=%s", user);
    ck_assert_msg(r->status == 200, "hybrid: %ld %.300s", r->status, r->body);
    ck_assert_msg(r->x_partial[0] == '\0', "x-partial with every worker up: %s", r->x_partial);
    ck_assert_msg(json_is_string(json_object_get(r->json, "server")), "no server field: %.300s", r->body);
    ck_assert_msg(find(json_object_get(r->json, "realtime"), b) != NULL &&
                      json_array_size(json_object_get(r->json, "realtime")) == 1,
                  "hybrid realtime: %.500s", r->body);
    ck_assert_msg(find(json_object_get(r->json, "historical"), a) != NULL &&
                      json_array_size(json_object_get(r->json, "historical")) == 1,
                  "hybrid historical: %.500s", r->body);
    harness_resp_free(r);
}
END_TEST

/* Bursts of requests started together: the workers' replies reach both gateway loop threads at the same moment. The
 * gateway once crashed under this (each loop's h2o context was created on the main thread, so both loops shared its
 * thread-local socket buffer allocator; use-after-free under ASan, SIGSEGV without). */
START_TEST(concurrent_requests)
{
    enum { BURST = 8, ROUNDS = 150 };
    char user[64], path[160], body[160];
    int published = 0;
    harness_user(user, "load");
    snprintf(path, sizeof(path), "/v1/users/%s/notifications?limit=5", user);
    snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"message\":\"load\"}", user);
    harness_req_t publish = {.path = "/v1/notifications", .body = body}, list = {.path = path};
    for (int round = 0; round < ROUNDS; ++round) {
        harness_async_t *a[BURST];
        for (int i = 0; i < BURST; ++i)
            a[i] = harness_request_start(sys, i % 2 == 0 ? &publish : &list);
        for (int i = 0; i < BURST; ++i) {
            harness_resp_t *r = harness_request_finish(a[i]);
            ck_assert_msg(r->status == (i % 2 == 0 ? 201 : 200), "round %d, request %d: %ld (%s) %.200s", round, i, r->status,
                          r->error, r->body);
            published += i % 2 == 0;
            harness_resp_free(r);
        }
    }
    harness_assert_alive(sys);
    harness_resp_t *r = harness_list(sys, user, 1, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "unread_count")), published);
    harness_resp_free(r);
}
END_TEST

/* ---- 2. read state --------------------------------------------------------------------------------------------- */

START_TEST(mark_one_read)
{
    char user[64], other[64];
    harness_user(user, "read");
    harness_user(other, "read-other");
    uint64_t a = harness_publish(sys, user, "a", NULL, NULL), b = harness_publish(sys, user, "b", NULL, NULL),
             c = harness_publish(sys, user, "c", NULL, NULL), x = harness_publish(sys, other, "x", NULL, NULL);
    ck_assert(harness_wait_realtime(sys, user, c, 1000));
    harness_resp_t *r = harness_list(sys, user, 0, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "unread_count")), 3);
    harness_resp_free(r);

    mark_read(user, b, 204);
    /* at once: history knows, and the merge keeps it out of realtime even if the notifier has not heard yet */
    r = harness_list(sys, user, 0, 0);
    const json_t *n = find(json_object_get(r->json, "historical"), b);
    ck_assert_msg(n != NULL && json_is_true(json_object_get(n, "read")), "read one not in historical with read:true: %.800s",
                  r->body);
    ck_assert_msg(!harness_has_id(json_object_get(r->json, "realtime"), b), "read one still in realtime: %.800s", r->body);
    ck_assert_msg(harness_has_id(json_object_get(r->json, "realtime"), a) &&
                      harness_has_id(json_object_get(r->json, "realtime"), c),
                  "unread ones left realtime: %.800s", r->body);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "unread_count")), 2);
    harness_resp_free(r);

    mark_read(user, b, 204); /* again: idempotent */
    r = harness_list(sys, user, 0, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "unread_count")), 2);
    harness_resp_free(r);

    mark_read(user, c + 1000000, 404); /* no such notification */
    mark_read(user, x, 404);           /* someone else's */
    r = harness_list(sys, other, 0, 0);
    n = find(json_object_get(r->json, "realtime"), x);
    ck_assert_msg(n != NULL && json_is_false(json_object_get(n, "read")), "the other user's notification changed: %.500s", r->body);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "unread_count")), 1);
    harness_resp_free(r);
}
END_TEST

START_TEST(mark_all_read)
{
    char user[64], path[256];
    uint64_t ids[5];
    harness_user(user, "readall");
    for (int i = 0; i < 5; ++i)
        ids[i] = harness_publish(sys, user, "m", NULL, NULL);
    mark_read(user, ids[1], 204);
    ck_assert(harness_wait_realtime(sys, user, ids[4], 1000));

    snprintf(path, sizeof(path), "/v1/users/%s/notifications/read", user);
    harness_resp_t *r = harness_post(sys, path, NULL);
    ck_assert_msg(r->status == 200, "mark all: %ld %.300s", r->status, r->body);
    ck_assert_str_eq(json_string_value(json_object_get(r->json, "user_id")), user);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "marked")), 4);
    harness_resp_free(r);

    r = harness_list(sys, user, 0, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "unread_count")), 0);
    ck_assert_msg(json_array_size(json_object_get(r->json, "realtime")) == 0, "realtime after mark all: %.800s", r->body);
    ck_assert_uint_eq(json_array_size(json_object_get(r->json, "historical")), 5);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(r->json, "historical"), i, v) ck_assert(json_is_true(json_object_get(v, "read")));
    harness_resp_free(r);

    r = harness_post(sys, path, NULL); /* nothing left */
    ck_assert_int_eq(r->status, 200);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "marked")), 0);
    harness_resp_free(r);

    /* a notification published after the mark is unread */
    uint64_t later = harness_publish(sys, user, "later", NULL, NULL);
    ck_assert(harness_wait_realtime(sys, user, later, 1000));
    r = harness_list(sys, user, 0, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "unread_count")), 1);
    harness_resp_free(r);
}
END_TEST

/* history-svc marks at most 1000 ids per script run and loops: more than a batch must all be marked */
START_TEST(mark_all_read_over_a_batch)
{
    enum { N = 1003, THREADS = 4 };
    char user[64], path[256], body[160];
    harness_user(user, "batch");
    snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"message\":\"bulk\"}", user);
    harness_req_t req = {.method = "POST", .path = "/v1/notifications", .body = body};
    for (int done = 0; done < N;) {
        harness_async_t *a[THREADS];
        int n = N - done < THREADS ? N - done : THREADS;
        for (int i = 0; i < n; ++i)
            a[i] = harness_request_start(sys, &req);
        for (int i = 0; i < n; ++i) {
            harness_resp_t *r = harness_request_finish(a[i]);
            ck_assert_msg(r->status == 201, "publish: %ld %.300s", r->status, r->body);
            harness_resp_free(r);
        }
        done += n;
    }
    harness_resp_t *r = harness_list(sys, user, 1, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "unread_count")), N);
    harness_resp_free(r);

    snprintf(path, sizeof(path), "/v1/users/%s/notifications/read", user);
    r = harness_post(sys, path, NULL);
    ck_assert_msg(r->status == 200, "mark all: %ld %.300s", r->status, r->body);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "marked")), N);
    harness_resp_free(r);

    r = harness_list(sys, user, 100, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "unread_count")), 0);
    ck_assert_msg(json_array_size(json_object_get(r->json, "realtime")) == 0, "realtime after mark all: %.300s", r->body);
    harness_resp_free(r);
}
END_TEST

/* ---- 3. bad inputs --------------------------------------------------------------------------------------------- */

static void expect_error(const char *label, harness_resp_t *r, long status, const char *code)
{
    ck_assert_msg(r->status == status, "%s: expected %ld, got %ld (%s): %.300s", label, status, r->status, r->error, r->body);
    ck_assert_msg(strncmp(r->content_type, "application/json", 16) == 0, "%s: error is not JSON (content-type '%s'): %.200s", label,
                  r->content_type, r->body);
    json_t *e = json_object_get(r->json, "error");
    ck_assert_msg(json_is_object(e) && json_is_string(json_object_get(e, "code")) &&
                      strcmp(json_string_value(json_object_get(e, "code")), code) == 0 &&
                      json_is_string(json_object_get(e, "message")) && json_string_length(json_object_get(e, "message")) > 0,
                  "%s: expected error code %s: %.300s", label, code, r->body);
    harness_resp_free(r);
}

static harness_resp_t *post_proto(harness_proto_t proto, const char *path, const char *body, size_t len)
{
    harness_req_t req = {.proto = proto, .method = "POST", .path = path, .body = body, .body_len = len};
    return harness_request(sys, &req);
}

static char *repeat(const char *unit, size_t times)
{
    size_t len = strlen(unit);
    char *s = malloc(len * times + 1);
    for (size_t i = 0; i < times; ++i)
        memcpy(s + i * len, unit, len);
    s[len * times] = '\0';
    return s;
}

static char *publish_body(const char *user, const char *message_json, const char *extra)
{
    size_t n = strlen(user) + strlen(message_json) + strlen(extra) + 64;
    char *b = malloc(n);
    snprintf(b, n, "{\"user_id\":\"%s\",\"message\":%s%s}", user, message_json, extra);
    return b;
}

START_TEST(publish_rejects_bad_bodies)
{
    char user[64];
    harness_user(user, "bad");
    struct {
        const char *label, *body;
        const char *code;
    } cases[] = {
        {"empty body", "", "invalid_json"},
        {"truncated JSON", "{\"user_id\":\"u\"", "invalid_json"},
        {"trailing garbage", "{\"user_id\":\"u\",\"message\":\"m\"} x", "invalid_json"},
        {"array", "[1,2]", "invalid_json"},
        {"string", "\"user_id\"", "invalid_json"},
        {"number", "42", "invalid_json"},
        {"null", "null", "invalid_json"},
        {"duplicate key", "{\"user_id\":\"u\",\"user_id\":\"v\",\"message\":\"m\"}", "invalid_json"},
        {"invalid UTF-8 in message", "{\"user_id\":\"u\",\"message\":\"\xff\xfe\"}", "invalid_json"},
        {"overlong UTF-8 in message", "{\"user_id\":\"u\",\"message\":\"\xc0\xaf\"}", "invalid_json"},
        {"lone surrogate in message", "{\"user_id\":\"u\",\"message\":\"\\ud800\"}", "invalid_json"},
        {"NUL in message", "{\"user_id\":\"u\",\"message\":\"a\\u0000b\"}", "invalid_json"},
        {"missing user_id", "{\"message\":\"m\"}", "invalid_user_id"},
        {"empty user_id", "{\"user_id\":\"\",\"message\":\"m\"}", "invalid_user_id"},
        {"user_id with a space", "{\"user_id\":\"a b\",\"message\":\"m\"}", "invalid_user_id"},
        {"user_id with a slash", "{\"user_id\":\"a/b\",\"message\":\"m\"}", "invalid_user_id"},
        {"user_id not a string", "{\"user_id\":42,\"message\":\"m\"}", "invalid_user_id"},
        {"user_id null", "{\"user_id\":null,\"message\":\"m\"}", "invalid_user_id"},
        {"missing message", "{\"user_id\":\"u\"}", "invalid_message"},
        {"empty message", "{\"user_id\":\"u\",\"message\":\"\"}", "invalid_message"},
        {"message not a string", "{\"user_id\":\"u\",\"message\":5}", "invalid_message"},
        {"message an object", "{\"user_id\":\"u\",\"message\":{}}", "invalid_message"},
        {"kind with a space", "{\"user_id\":\"u\",\"message\":\"m\",\"kind\":\"a b\"}", "invalid_kind"},
        {"empty kind", "{\"user_id\":\"u\",\"message\":\"m\",\"kind\":\"\"}", "invalid_kind"},
        {"kind not a string", "{\"user_id\":\"u\",\"message\":\"m\",\"kind\":7}", "invalid_kind"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i)
        expect_error(cases[i].label, harness_post(sys, "/v1/notifications", cases[i].body), 400, cases[i].code);

    /* lengths, on both sides of each limit */
    char *long_user = repeat("u", 65), *max_user = repeat("u", 64), *body;
    body = malloc(200);
    snprintf(body, 200, "{\"user_id\":\"%s\",\"message\":\"m\"}", long_user);
    expect_error("65-character user_id", harness_post(sys, "/v1/notifications", body), 400, "invalid_user_id");
    snprintf(body, 200, "{\"user_id\":\"%s\",\"message\":\"m\"}", max_user);
    harness_resp_t *r = harness_post(sys, "/v1/notifications", body);
    ck_assert_msg(r->status == 201, "64-character user_id: %ld %.300s", r->status, r->body);
    harness_resp_free(r);
    free(body);
    free(long_user);
    free(max_user);

    struct {
        const char *label, *unit;
        size_t times;
        long status;
    } sizes[] = {
        {"4096-byte message", "x", 4096, 201},
        {"4097-byte message", "x", 4097, 400},
        {"4095 bytes in 1365 three-byte characters", "\xe2\x82\xac", 1365, 201},
        {"4098 bytes in 1366 three-byte characters", "\xe2\x82\xac", 1366, 400},
    };
    int accepted = 0;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); ++i) {
        char *text = repeat(sizes[i].unit, sizes[i].times), *quoted = malloc(strlen(text) + 3);
        sprintf(quoted, "\"%s\"", text);
        body = publish_body(user, quoted, "");
        r = harness_post(sys, "/v1/notifications", body);
        if (sizes[i].status == 201) {
            ck_assert_msg(r->status == 201, "%s: expected 201, got %ld: %.300s", sizes[i].label, r->status, r->body);
            harness_resp_free(r);
            ++accepted;
        } else {
            expect_error(sizes[i].label, r, 400, "invalid_message");
        }
        free(body);
        free(quoted);
        free(text);
    }

    char *kind32 = repeat("k", 32), *kind33 = repeat("k", 33), extra[80];
    snprintf(extra, sizeof(extra), ",\"kind\":\"%s\"", kind33);
    body = publish_body(user, "\"m\"", extra);
    expect_error("33-character kind", harness_post(sys, "/v1/notifications", body), 400, "invalid_kind");
    free(body);
    snprintf(extra, sizeof(extra), ",\"kind\":\"%s\"", kind32);
    body = publish_body(user, "\"m\"", extra);
    r = harness_post(sys, "/v1/notifications", body);
    ck_assert_msg(r->status == 201, "32-character kind: %ld %.300s", r->status, r->body);
    harness_resp_free(r);
    ++accepted;
    free(body);
    body = publish_body(user, "\"m\"", ",\"kind\":null"); /* null kind: the default */
    r = harness_post(sys, "/v1/notifications", body);
    ck_assert_msg(r->status == 201, "null kind: %ld %.300s", r->status, r->body);
    harness_resp_free(r);
    ++accepted;
    free(body);
    free(kind32);
    free(kind33);

    /* only the accepted ones were stored */
    r = harness_list(sys, user, 100, 0);
    size_t total = json_array_size(json_object_get(r->json, "realtime")) + json_array_size(json_object_get(r->json, "historical"));
    ck_assert_msg(total == (size_t)accepted, "user has %zu notifications, %d were accepted: %.300s", total, accepted, r->body);
    harness_resp_free(r);
}
END_TEST

/* A body of exactly 64 KiB is read; one byte more is 413 JSON, over HTTP/1.1 and HTTP/2. */
START_TEST(publish_body_limit)
{
    enum { MAX = 64 * 1024 };
    char user[64], head[160];
    harness_user(user, "big");
    int n = snprintf(head, sizeof(head), "{\"user_id\":\"%s\",\"message\":\"m\",\"pad\":\"", user);
    char *body = malloc(MAX + 2);
    memcpy(body, head, (size_t)n);
    memset(body + n, 'p', MAX + 2 - (size_t)n);
    memcpy(body + MAX - 2, "\"}", 2); /* exactly MAX bytes: an unknown field pads it */

    harness_resp_t *r = post_proto(HARNESS_HTTP1, "/v1/notifications", body, MAX);
    ck_assert_msg(r->status == 201, "a 64 KiB body: %ld %.300s", r->status, r->body);
    harness_resp_free(r);

    memcpy(body + MAX - 2, "p\"}", 3); /* MAX + 1 bytes */
    expect_error("64 KiB + 1 over HTTP/1.1", post_proto(HARNESS_HTTP1, "/v1/notifications", body, MAX + 1), 413,
                 "payload_too_large");
    expect_error("64 KiB + 1 over HTTP/2", post_proto(HARNESS_H2C, "/v1/notifications", body, MAX + 1), 413, "payload_too_large");
    free(body);

    r = harness_list(sys, user, 0, 0);
    size_t total = json_array_size(json_object_get(r->json, "realtime")) + json_array_size(json_object_get(r->json, "historical"));
    ck_assert_msg(total == 1, "stored %zu, expected only the 64 KiB one: %.300s", total, r->body);
    harness_resp_free(r);
}
END_TEST

/* Far over the limit (beyond h2o's own buffer limit, 4 x 64 KiB) the API's contract still holds: 413, JSON. */
/* Beyond h2o's own limit (4 x 64 KiB) the HTTP layer refuses the body before the API sees it: h2o 2.2.5 answers a
 * plain-text 413 over HTTP/1.1 and resets the stream over HTTP/2, with no hook to answer JSON (README, "Errors"). What
 * matters is that nothing is stored and the gateway stays up. */
START_TEST(publish_far_over_the_limit)
{
    enum { SIZE = 300 * 1024 };
    char user[64], *body = malloc(SIZE);
    harness_user(user, "far");
    int n = snprintf(body, SIZE, "{\"user_id\":\"%s\",\"message\":\"", user);
    memset(body + n, 'x', SIZE - (size_t)n - 2);
    memcpy(body + SIZE - 2, "\"}", 2);
    harness_resp_t *h1 = post_proto(HARNESS_HTTP1, "/v1/notifications", body, SIZE);
    harness_resp_t *h2 = post_proto(HARNESS_H2C, "/v1/notifications", body, SIZE);
    free(body);
    ck_assert_msg(h1->status == 413, "a 300 KiB publish over HTTP/1.1 must get 413; got %ld '%s' %.80s", h1->status,
                  h1->content_type, h1->body);
    ck_assert_msg(h2->status == 413 || h2->status == 0, "a 300 KiB publish over HTTP/2 must be refused; got %ld %.80s", h2->status,
                  h2->body);
    harness_resp_t *list = harness_list(sys, user, 0, 0);
    ck_assert_int_eq(json_array_size(json_object_get(list->json, "historical")), 0);
    harness_resp_free(list);
    harness_resp_free(h1);
    harness_resp_free(h2);
    harness_resp_t *health = harness_get(sys, "/healthz");
    ck_assert_int_eq(health->status, 200);
    harness_resp_free(health);
}
END_TEST

/* A publish retried with the same Idempotency-Key is stored once and answered with the first id; the key is scoped to
 * the user, and a malformed key is refused. */
START_TEST(publish_with_idempotency_key)
{
    char user[64], other[64], body[160], body2[160];
    harness_user(user, "idem");
    harness_user(other, "idem");
    snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"message\":\"charge card\"}", user);
    snprintf(body2, sizeof(body2), "{\"user_id\":\"%s\",\"message\":\"charge card\"}", other);
    harness_req_t req = {.method = "POST", .path = "/v1/notifications", .body = body, .header = "Idempotency-Key: order-42"};
    harness_resp_t *first = harness_request(sys, &req), *again = harness_request(sys, &req);
    ck_assert_msg(first->status == 201 && again->status == 201, "expected 201 twice, got %ld and %ld", first->status,
                  again->status);
    json_int_t id = json_integer_value(json_object_get(first->json, "id"));
    ck_assert_int_eq(json_integer_value(json_object_get(again->json, "id")), id);
    ck_assert_int_eq(json_integer_value(json_object_get(again->json, "ts")),
                     json_integer_value(json_object_get(first->json, "ts")));

    req.body = body2; /* same key, another user: a different notification */
    harness_resp_t *third = harness_request(sys, &req);
    ck_assert_int_eq(third->status, 201);
    ck_assert_int_ne(json_integer_value(json_object_get(third->json, "id")), id);

    harness_resp_t *list = harness_list(sys, user, 0, 0);
    size_t total =
        json_array_size(json_object_get(list->json, "realtime")) + json_array_size(json_object_get(list->json, "historical"));
    ck_assert_msg(total == 1, "the retried publish was stored %zu times", total);

    req.body = body;
    req.header = "Idempotency-Key: has space";
    expect_error("malformed Idempotency-Key", harness_request(sys, &req), 400, "invalid_idempotency_key");
    harness_resp_free(first);
    harness_resp_free(again);
    harness_resp_free(third);
    harness_resp_free(list);
}
END_TEST

/* How many kept publish answers (ng:idem:*) Redis holds for longer than ttl_s seconds (above), or for at most it. */
static long long idem_keys(bool above, int ttl_s)
{
    char cmd[400];
    snprintf(cmd, sizeof(cmd),
             "EVAL \"local n = 0 for _, k in ipairs(redis.call('KEYS', 'ng:idem:*')) do local t = redis.call('TTL', k) "
             "if (t > %d) == (ARGV[1] == '1') then n = n + 1 end end return n\" 0 %d\r\n",
             ttl_s, above ? 1 : 0);
    return harness_redis_int(sys, cmd);
}

/* A publish without an Idempotency-Key keeps its answer only for the gateway's own resends (10 minutes), one with a key
 * for the day the key is honoured: at a thousand publishes a second, a day of answers kept for every publish would
 * have been some 86 million keys. */
START_TEST(publish_answers_kept_only_as_long_as_needed)
{
    char user[64], body[160];
    harness_user(user, "idem-ttl");
    snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"message\":\"kept briefly\"}", user);
    long long day = idem_keys(true, 600), brief = idem_keys(false, 600);

    harness_req_t req = {.method = "POST", .path = "/v1/notifications", .body = body};
    harness_resp_t *r = harness_request(sys, &req);
    ck_assert_int_eq(r->status, 201);
    harness_resp_free(r);
    ck_assert_int_eq(idem_keys(false, 600), brief + 1);
    ck_assert_int_eq(idem_keys(true, 600), day);

    req.header = "Idempotency-Key: ttl-check-1";
    r = harness_request(sys, &req);
    ck_assert_int_eq(r->status, 201);
    harness_resp_free(r);
    ck_assert_int_eq(idem_keys(true, 600), day + 1);
    ck_assert_int_eq(idem_keys(false, 600), brief + 1);
}
END_TEST

START_TEST(list_rejects_bad_params)
{
    static const char *bad_limits[] = {"0", "101", "abc", "-1", "", "1.5", "1e2", "010", "%", "99999999999999999999999"};
    static const char *bad_befores[] = {"0", "abc", "-1", "", "18446744073709551616", "1x", "%zz"};
    char user[64];
    harness_user(user, "params");
    for (size_t i = 0; i < sizeof(bad_limits) / sizeof(bad_limits[0]); ++i) {
        char label[64];
        snprintf(label, sizeof(label), "limit=%s", bad_limits[i]);
        expect_error(label, harness_get(sys, "/v1/users/%s/notifications?limit=%s", user, bad_limits[i]), 400, "invalid_limit");
    }
    for (size_t i = 0; i < sizeof(bad_befores) / sizeof(bad_befores[0]); ++i) {
        char label[64];
        snprintf(label, sizeof(label), "before=%s", bad_befores[i]);
        expect_error(label, harness_get(sys, "/v1/users/%s/notifications?before=%s", user, bad_befores[i]), 400, "invalid_cursor");
    }
    static const char *good[] = {"limit=1",         "limit=100", "limit=%31%30", "before=1", "before=18446744073709551615",
                                 "limit=5&before=3"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); ++i) {
        harness_resp_t *r = harness_get(sys, "/v1/users/%s/notifications?%s", user, good[i]);
        ck_assert_msg(r->status == 200, "%s: %ld %.300s", good[i], r->status, r->body);
        harness_resp_free(r);
    }
    expect_error("hybrid without user_id", harness_get(sys, "/hybrid/notifications"), 400, "invalid_user_id");
    expect_error("hybrid with an empty user_id", harness_get(sys, "/hybrid/notifications?user_id="), 400, "invalid_user_id");
    expect_error("hybrid with a bad user_id", harness_get(sys, "/hybrid/notifications?user_id=a%%20b"), 400, "invalid_user_id");
    expect_error("hybrid with limit=0", harness_get(sys, "/hybrid/notifications?user_id=%s&limit=0", user), 400, "invalid_limit");
}
END_TEST

START_TEST(bad_paths_and_methods)
{
    char *long_user = repeat("a", 65);
    expect_error("space in user id", harness_get(sys, "/v1/users/a%%20b/notifications"), 400, "invalid_user_id");
    expect_error("65-character user id", harness_get(sys, "/v1/users/%s/notifications", long_user), 400, "invalid_user_id");
    expect_error("$ in user id", harness_get(sys, "/v1/users/a$b/notifications"), 400, "invalid_user_id");
    expect_error("bad user in mark read", harness_post(sys, "/v1/users/a%20b/notifications/1/read", NULL), 400, "invalid_user_id");
    expect_error("bad user in mark all", harness_post(sys, "/v1/users/a%20b/notifications/read", NULL), 400, "invalid_user_id");
    expect_error("id abc", harness_post(sys, "/v1/users/u/notifications/abc/read", NULL), 400, "invalid_id");
    expect_error("id 0", harness_post(sys, "/v1/users/u/notifications/0/read", NULL), 400, "invalid_id");
    expect_error("id -1", harness_post(sys, "/v1/users/u/notifications/-1/read", NULL), 400, "invalid_id");
    expect_error("id 2^64", harness_post(sys, "/v1/users/u/notifications/18446744073709551616/read", NULL), 400, "invalid_id");
    free(long_user);

    static const char *unknown[] = {"/index.html",
                                    "/v1",
                                    "/v1/notificationsx",
                                    "/v1/notifications/1",
                                    "/v1/users/u",
                                    "/v1/users/u/other",
                                    "/v1/users/u/notifications/1/read/x",
                                    "/v1/users/u/notifications/1",
                                    "/healthz/x",
                                    "/hybrid",
                                    "/metricsz"};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); ++i)
        expect_error(unknown[i], harness_get(sys, "%s", unknown[i]), 404, "not_found");

    struct {
        const char *method, *path, *allow;
    } wrong[] = {
        {"GET", "/v1/notifications", "POST"},
        {"PUT", "/v1/notifications", "POST"},
        {"DELETE", "/v1/users/u/notifications", "GET, HEAD"},
        {"POST", "/v1/users/u/notifications", "GET, HEAD"},
        {"GET", "/v1/users/u/notifications/1/read", "POST"},
        {"GET", "/v1/users/u/notifications/read", "POST"},
        {"POST", "/healthz", "GET, HEAD"},
        {"POST", "/readyz", "GET, HEAD"},
        {"DELETE", "/metrics", "GET, HEAD"},
        {"POST", "/hybrid/notifications", "GET, HEAD"},
        {"PATCH", "/v1/notifications", "POST"},
    };
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); ++i) {
        char label[128];
        harness_req_t req = {.method = wrong[i].method, .path = wrong[i].path};
        harness_resp_t *r = harness_request(sys, &req);
        snprintf(label, sizeof(label), "%s %s", wrong[i].method, wrong[i].path);
        ck_assert_msg(strcmp(r->allow, wrong[i].allow) == 0, "%s: Allow is '%s', expected '%s'", label, r->allow, wrong[i].allow);
        expect_error(label, r, 405, "method_not_allowed");
    }

    harness_req_t head = {.method = "HEAD", .path = "/healthz"};
    harness_resp_t *r = harness_request(sys, &head);
    ck_assert_msg(r->status == 200 && r->body_len == 0, "HEAD /healthz: %ld, %zu bytes", r->status, r->body_len);
    harness_resp_free(r);
}
END_TEST

START_TEST(errors_over_http2)
{
    harness_req_t req = {.proto = HARNESS_H2C, .method = "POST", .path = "/v1/notifications", .body = "{\"user_id\":"};
    harness_resp_t *r = harness_request(sys, &req);
    ck_assert_int_eq(r->http_version, 20);
    expect_error("h2 invalid JSON", r, 400, "invalid_json");

    req.body = "{\"user_id\":\"u\",\"message\":\"m\",\"kind\":\"no way\"}";
    expect_error("h2 bad kind", harness_request(sys, &req), 400, "invalid_kind");

    req = (harness_req_t){.proto = HARNESS_H2C, .path = "/v1/users/u/notifications?limit=0"};
    expect_error("h2 limit=0", harness_request(sys, &req), 400, "invalid_limit");

    req = (harness_req_t){.proto = HARNESS_H2C, .path = "/nope"};
    expect_error("h2 unknown path", harness_request(sys, &req), 404, "not_found");

    req = (harness_req_t){.proto = HARNESS_H2C, .method = "DELETE", .path = "/v1/notifications"};
    r = harness_request(sys, &req);
    ck_assert_str_eq(r->allow, "POST");
    expect_error("h2 DELETE", r, 405, "method_not_allowed");
}
END_TEST

/* ---- 7. HTTP/2 and HTTPS --------------------------------------------------------------------------------------- */

static void roundtrip(harness_proto_t proto, long want_version, const char *label)
{
    char user[64], body[160], path[160];
    harness_user(user, label);
    snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"message\":\"over %s\"}", user, label);
    harness_req_t req = {.proto = proto, .path = "/v1/notifications", .body = body};
    harness_resp_t *r = harness_request(sys, &req);
    ck_assert_msg(r->status == 201, "%s publish: %ld (%s) %.300s", label, r->status, r->error, r->body);
    ck_assert_msg(r->http_version == want_version, "%s publish spoke HTTP %ld, expected %ld", label, r->http_version, want_version);
    uint64_t id = (uint64_t)json_integer_value(json_object_get(r->json, "id"));
    harness_resp_free(r);
    ck_assert(harness_wait_realtime(sys, user, id, 1000));

    snprintf(path, sizeof(path), "/v1/users/%s/notifications", user);
    req = (harness_req_t){.proto = proto, .path = path};
    r = harness_request(sys, &req);
    ck_assert_msg(r->status == 200 && r->http_version == want_version, "%s list: %ld over %ld (%s)", label, r->status,
                  r->http_version, r->error);
    const json_t *n = find(json_object_get(r->json, "realtime"), id);
    ck_assert_msg(n != NULL, "%s: published notification not listed: %.300s", label, r->body);
    ck_assert_msg(strncmp(json_string_value(json_object_get(n, "message")), "over ", 5) == 0, "%s: message", label);
    harness_resp_free(r);

    req = (harness_req_t){.proto = proto, .path = "/healthz"};
    r = harness_request(sys, &req);
    ck_assert_msg(r->status == 200 && r->http_version == want_version, "%s healthz: %ld over %ld", label, r->status,
                  r->http_version);
    harness_resp_free(r);
}

START_TEST(h2c_prior_knowledge)
{
    roundtrip(HARNESS_H2C, 20, "h2c");
}
END_TEST

START_TEST(https_negotiates_h2)
{
    roundtrip(HARNESS_HTTPS, 20, "h2");
    roundtrip(HARNESS_HTTPS_H1, 11, "https1");
}
END_TEST

START_TEST(http1_still_works_beside_h2)
{
    roundtrip(HARNESS_HTTP1, 11, "http1");
}
END_TEST

/* Many streams at once on one HTTP/2 connection (TLS: see harness_request_multiplexed): every answer belongs to its own
 * request. */
START_TEST(h2_many_streams)
{
    enum { USERS = 10, PER = 4, N = USERS * PER };
    char users[USERS][64], bodies[N][160], paths[2 * USERS][200];
    harness_req_t reqs[2 * USERS > N ? 2 * USERS : N];
    harness_resp_t *resps[2 * USERS > N ? 2 * USERS : N];
    uint64_t ids[N];
    for (int u = 0; u < USERS; ++u)
        harness_user(users[u], "mux");
    for (int i = 0; i < N; ++i) {
        snprintf(bodies[i], sizeof(bodies[i]), "{\"user_id\":\"%s\",\"message\":\"stream %d\"}", users[i % USERS], i);
        reqs[i] = (harness_req_t){.proto = HARNESS_HTTPS, .path = "/v1/notifications", .body = bodies[i]};
    }
    harness_request_multiplexed(sys, reqs, N, resps);
    for (int i = 0; i < N; ++i) {
        harness_resp_t *r = resps[i];
        ck_assert_msg(r->status == 201 && r->http_version == 20, "stream %d: %ld over %ld (%s) %.300s", i, r->status,
                      r->http_version, r->error, r->body);
        ck_assert_msg(strcmp(json_string_value(json_object_get(r->json, "user_id")), users[i % USERS]) == 0,
                      "stream %d got another request's answer: %.300s", i, r->body);
        ids[i] = (uint64_t)json_integer_value(json_object_get(r->json, "id"));
        for (int k = 0; k < i; ++k)
            ck_assert_msg(ids[k] != ids[i], "streams %d and %d got the same id %" PRIu64, k, i, ids[i]);
        harness_resp_free(r);
    }
    for (int u = 0; u < USERS; ++u)
        ck_assert(harness_wait_realtime(sys, users[u], ids[N - USERS + u], 1000));

    for (int i = 0; i < 2 * USERS; ++i) {
        if (i < USERS)
            snprintf(paths[i], sizeof(paths[i]), "/v1/users/%.64s/notifications", users[i % USERS]);
        else
            snprintf(paths[i], sizeof(paths[i]), "/hybrid/notifications?user_id=%s", users[i - USERS]);
        reqs[i] = (harness_req_t){.proto = HARNESS_HTTPS, .path = paths[i]};
    }
    harness_request_multiplexed(sys, reqs, 2 * USERS, resps);
    for (int i = 0; i < 2 * USERS; ++i) {
        harness_resp_t *r = resps[i];
        int u = i % USERS;
        ck_assert_msg(r->status == 200 && r->http_version == 20, "list stream %d: %ld (%s)", i, r->status, r->error);
        const json_t *rt = json_object_get(r->json, "realtime"), *hist = json_object_get(r->json, "historical");
        ck_assert_msg(json_array_size(rt) == PER && json_array_size(hist) == 0, "stream %d (%s): %.800s", i, paths[i], r->body);
        for (int k = 0; k < PER; ++k)
            ck_assert_msg(harness_has_id(rt, ids[k * USERS + u]), "stream %d lacks id %" PRIu64 ": %.800s", i, ids[k * USERS + u],
                          r->body);
        harness_resp_free(r);
    }
}
END_TEST

static TCase *shared_tcase(const char *name, void (*up)(void))
{
    TCase *tc = tcase_create(name);
    tcase_add_unchecked_fixture(tc, up, shared_down);
    tcase_add_checked_fixture(tc, NULL, assert_alive);
    tcase_set_timeout(tc, 30);
    return tc;
}

static Suite *api_suite(void)
{
    Suite *s = suite_create("integration_api");
    TCase *tc = shared_tcase("publish", publish_up);
    tcase_add_test(tc, publish_then_fetch);
    tcase_add_test(tc, message_round_trip);
    tcase_add_test(tc, first_layout_records_still_served);
    tcase_add_test(tc, pagination_walk);
    tcase_add_test(tc, hybrid_shape);
    tcase_add_test(tc, concurrent_requests);
    suite_add_tcase(s, tc);

    tc = shared_tcase("read_state", read_state_up);
    tcase_add_test(tc, mark_one_read);
    tcase_add_test(tc, mark_all_read);
    tcase_add_test(tc, mark_all_read_over_a_batch);
    suite_add_tcase(s, tc);

    tc = shared_tcase("bad_input", bad_input_up);
    tcase_add_test(tc, publish_rejects_bad_bodies);
    tcase_add_test(tc, publish_body_limit);
    tcase_add_test(tc, list_rejects_bad_params);
    tcase_add_test(tc, bad_paths_and_methods);
    tcase_add_test(tc, errors_over_http2);
    tcase_add_test(tc, publish_far_over_the_limit);
    tcase_add_test(tc, publish_with_idempotency_key);
    tcase_add_test(tc, publish_answers_kept_only_as_long_as_needed);
    suite_add_tcase(s, tc);

    tc = shared_tcase("http2", http2_up);
    tcase_add_test(tc, h2c_prior_knowledge);
    tcase_add_test(tc, https_negotiates_h2);
    tcase_add_test(tc, http1_still_works_beside_h2);
    tcase_add_test(tc, h2_many_streams);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_main(api_suite());
}

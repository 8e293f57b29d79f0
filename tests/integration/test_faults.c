/*
 * Faults and replicas: workers killed (SIGKILL) or stopped (SIGSTOP), several replicas of each kind, /readyz, and
 * Redis going away. Every test kills or adds processes, so each has its own system, started in the test's own child
 * (the TCase is named after the test, which is how the runner finds its logs when it fails).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include "harness.h"

#define MARGIN_MS 500 /* scheduling slack on a busy 2-core machine, on top of the gateway's own timeouts */

static harness_t *sys;

static harness_t *own_system(const harness_opts_t *opts)
{
    return sys = harness_start(tcase_name(), opts);
}

static void own_down(void)
{
    harness_stop_own(&sys);
}

static harness_resp_t *post_path(const char *fmt, const char *user, uint64_t id)
{
    char path[256];
    snprintf(path, sizeof(path), fmt, user, id);
    return harness_post(sys, path, NULL);
}

/* The single entry of "errors", asserted to come from source; returns its code. */
static const char *only_error(const harness_resp_t *r, const char *source)
{
    json_t *errors = json_object_get(r->json, "errors");
    ck_assert_msg(json_is_true(json_object_get(r->json, "partial")), "not partial: %.800s", r->body);
    ck_assert_msg(json_array_size(errors) == 1, "expected one error: %.800s", r->body);
    json_t *e = json_array_get(errors, 0);
    ck_assert_msg(strcmp(json_string_value(json_object_get(e, "source")), source) == 0, "error does not name %s: %.800s", source,
                  r->body);
    return json_string_value(json_object_get(e, "code"));
}

static bool is_one_of(const char *s, const char *a, const char *b)
{
    return s != NULL && (strcmp(s, a) == 0 || strcmp(s, b) == 0);
}

static void assert_readyz(long status)
{
    harness_resp_t *r = harness_get(sys, "/readyz");
    ck_assert_msg(r->status == status, "/readyz: expected %ld, got %ld: %.500s", status, r->status, r->body);
    ck_assert_msg(json_is_boolean(json_object_get(r->json, "ready")) &&
                      json_is_true(json_object_get(r->json, "ready")) == (status == 200),
                  "/readyz body disagrees with its status: %.500s", r->body);
    harness_resp_free(r);
}

/* ---- 4. a worker killed or stopped ----------------------------------------------------------------------------- */

START_TEST(kill_notifier)
{
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    opts.worker_timeout_ms = 1000;
    own_system(&opts);
    char user[64], other[64], path[160];
    uint64_t ids[6], other_last = 0;
    harness_user(user, "kn");
    harness_user(other, "kn-all");
    for (int i = 0; i < 5; ++i) {
        ids[i] = harness_publish(sys, user, "before the kill", NULL, NULL);
        other_last = harness_publish(sys, other, "to be marked all read", NULL, NULL);
    }
    harness_resp_t *r = post_path("/v1/users/%s/notifications/%" PRIu64 "/read", user, ids[1]);
    ck_assert_int_eq(r->status, 204);
    harness_resp_free(r);
    snprintf(path, sizeof(path), "/v1/users/%s/notifications/read", other);
    r = harness_post(sys, path, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "marked")), 5);
    harness_resp_free(r);
    ck_assert(harness_wait_realtime(sys, user, ids[4], 1000));

    const char *partial_metric = "notigate_http_partial_answers_total{route=\"list\",missing=\"notifier\"}";
    double partial_before = harness_metric(sys, partial_metric);
    harness_proc_kill(sys, harness_proc(sys, HARNESS_NOTIFIER, 0));
    double t0 = harness_mono_ms();
    r = harness_list(sys, user, 0, 0);
    double took = harness_mono_ms() - t0;
    ck_assert_msg(took < opts.worker_timeout_ms + MARGIN_MS, "list took %.0f ms with the notifier gone", took);
    const char *code = only_error(r, "notifier");
    ck_assert_msg(is_one_of(code, "no_replica", "timeout"), "unexpected error code %s", code);
    ck_assert_msg(json_array_size(json_object_get(r->json, "realtime")) == 0, "realtime without a notifier: %.800s", r->body);
    ck_assert_msg(json_array_size(json_object_get(r->json, "historical")) == 5, "history should hold all 5: %.800s", r->body);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "unread_count")), 4);
    harness_resp_free(r);

    /* once the gateway has seen the replica go: no waiting at all */
    ck_assert_int_eq(harness_wait_replicas(sys, "notifier", 0, 3000), 0);
    t0 = harness_mono_ms();
    r = harness_list(sys, user, 0, 0);
    took = harness_mono_ms() - t0;
    ck_assert_str_eq(only_error(r, "notifier"), "no_replica");
    ck_assert_msg(took < opts.worker_timeout_ms / 2, "with no replica connected the list still waited %.0f ms", took);
    harness_resp_free(r);
    ck_assert_msg(harness_metric(sys, partial_metric) == partial_before + 2, "partial lists without the notifier: %.0f -> %.0f",
                  partial_before, harness_metric(sys, partial_metric));

    r = harness_get(sys, "/hybrid/notifications?user_id=%s", user);
    ck_assert_msg(r->status == 200 && strcmp(r->x_partial, "notifier") == 0, "hybrid: %ld, x-partial '%s'", r->status,
                  r->x_partial);
    harness_resp_free(r);
    assert_readyz(503);

    ids[5] = harness_publish(sys, user, "while the notifier was away", NULL, NULL); /* writes need only history-svc */

    /* a new replica reloads its window from the stream: unread ones only, including the one it missed */
    harness_add(sys, HARNESS_NOTIFIER);
    ck_assert_int_eq(harness_wait_replicas(sys, "notifier", 1, 5000), 0);
    const uint64_t want[] = {ids[5], ids[4], ids[3], ids[2], ids[0]};
    uint64_t got[16];
    size_t n = 0;
    bool recovered = false;
    double deadline = harness_mono_ms() + 3000;
    while (!recovered && harness_mono_ms() < deadline) {
        r = harness_list(sys, user, 0, 0);
        n = harness_ids(json_object_get(r->json, "realtime"), got, 16);
        recovered = json_is_false(json_object_get(r->json, "partial")) && n == 5 && memcmp(got, want, sizeof(want)) == 0;
        if (recovered) {
            ck_assert_msg(json_array_size(json_object_get(r->json, "historical")) == 1 &&
                              harness_has_id(json_object_get(r->json, "historical"), ids[1]),
                          "historical after recovery: %.800s", r->body);
        } else if (harness_mono_ms() >= deadline) {
            ck_abort_msg("no recovery within 3 s of a new notifier; last answer: %.800s", r->body);
        }
        harness_resp_free(r);
        harness_sleep_ms(20);
    }
    ck_assert(recovered);
    assert_readyz(200);

    /* the new replica's own view, without history to correct it: exactly the unread ones, for both users (the
     * second user's notifications were all marked read with one "mark all" event) */
    ck_assert_msg(harness_wait_realtime(sys, other, other_last, 1) == false, "the other user's marked-all ones are in realtime");
    harness_proc_kill(sys, harness_proc(sys, HARNESS_HISTORY, 0));
    ck_assert_int_eq(harness_wait_replicas(sys, "history", 0, 3000), 0);
    r = harness_list(sys, user, 0, 0);
    ck_assert_str_eq(only_error(r, "history"), "no_replica");
    n = harness_ids(json_object_get(r->json, "realtime"), got, 16);
    ck_assert_msg(n == 5 && memcmp(got, want, sizeof(want)) == 0, "the reloaded view is not the unread ones: %.800s", r->body);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "unread_count")), 5);
    harness_resp_free(r);
    r = harness_list(sys, other, 0, 0);
    ck_assert_msg(json_array_size(json_object_get(r->json, "realtime")) == 0, "marked-all ones came back: %.800s", r->body);
    harness_resp_free(r);
}
END_TEST

START_TEST(kill_history)
{
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    opts.worker_timeout_ms = 1000;
    own_system(&opts);
    char user[64];
    uint64_t ids[3];
    harness_user(user, "kh");
    for (int i = 0; i < 3; ++i)
        ids[i] = harness_publish(sys, user, "stored", NULL, NULL);
    ck_assert(harness_wait_realtime(sys, user, ids[2], 1000));

    const char *list_metric = "notigate_http_partial_answers_total{route=\"list\",missing=\"history\"}";
    const char *hybrid_metric = "notigate_http_partial_answers_total{route=\"hybrid\",missing=\"history\"}";
    double partial_list = harness_metric(sys, list_metric), partial_hybrid = harness_metric(sys, hybrid_metric);
    harness_proc_kill(sys, harness_proc(sys, HARNESS_HISTORY, 0));
    double t0 = harness_mono_ms();
    harness_resp_t *r = harness_list(sys, user, 0, 0);
    double took = harness_mono_ms() - t0;
    ck_assert_msg(took < opts.worker_timeout_ms + MARGIN_MS, "list took %.0f ms with history-svc gone", took);
    const char *code = only_error(r, "history");
    ck_assert_msg(is_one_of(code, "no_replica", "timeout"), "unexpected error code %s", code);
    uint64_t rt[8];
    size_t n = harness_ids(json_object_get(r->json, "realtime"), rt, 8);
    ck_assert_msg(n == 3 && rt[0] == ids[2] && rt[2] == ids[0], "realtime should still hold all 3: %.800s", r->body);
    ck_assert_msg(json_array_size(json_object_get(r->json, "historical")) == 0, "historical without history-svc: %.800s", r->body);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "unread_count")), 3);
    ck_assert_msg(json_is_null(json_object_get(r->json, "next_before")), "a cursor without history: %.300s", r->body);
    harness_resp_free(r);

    r = harness_get(sys, "/hybrid/notifications?user_id=%s", user);
    ck_assert_msg(r->status == 200 && strcmp(r->x_partial, "history") == 0, "hybrid: %ld, x-partial '%s'", r->status, r->x_partial);
    harness_resp_free(r);
    /* operators see the partial answers in /metrics, by route and by what they lacked */
    ck_assert_msg(harness_metric(sys, list_metric) == partial_list + 1 && harness_metric(sys, hybrid_metric) == partial_hybrid + 1,
                  "partial answers counted: list %.0f -> %.0f, hybrid %.0f -> %.0f", partial_list, harness_metric(sys, list_metric),
                  partial_hybrid, harness_metric(sys, hybrid_metric));

    /* writes need history-svc: 503 JSON, nothing stored */
    ck_assert_int_eq(harness_wait_replicas(sys, "history", 0, 3000), 0);
    char body[160];
    snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"message\":\"lost\"}", user);
    r = harness_post(sys, "/v1/notifications", body);
    HARNESS_ASSERT_ERROR(r, 503, "no_replica");
    harness_resp_free(r);
    r = post_path("/v1/users/%s/notifications/%" PRIu64 "/read", user, ids[0]);
    HARNESS_ASSERT_ERROR(r, 503, "no_replica");
    harness_resp_free(r);
    snprintf(body, sizeof(body), "/v1/users/%s/notifications/read", user);
    r = harness_post(sys, body, NULL);
    HARNESS_ASSERT_ERROR(r, 503, "no_replica");
    harness_resp_free(r);
    assert_readyz(503);

    harness_add(sys, HARNESS_HISTORY);
    ck_assert_int_eq(harness_wait_replicas(sys, "history", 1, 5000), 0);
    uint64_t later = harness_publish(sys, user, "after recovery", NULL, NULL);
    ck_assert_msg(later > ids[2], "id %" PRIu64 " after recovery is not above %" PRIu64, later, ids[2]);
    ck_assert(harness_wait_realtime(sys, user, later, 1000));
    r = harness_list(sys, user, 0, 0);
    ck_assert_msg(json_is_false(json_object_get(r->json, "partial")), "still partial: %.500s", r->body);
    n = harness_ids(json_object_get(r->json, "realtime"), rt, 8);
    ck_assert_msg(n == 4 && rt[0] == later, "expected the 3 and the new one, nothing from the 503: %.800s", r->body);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "unread_count")), 4);
    harness_resp_free(r);
    assert_readyz(200);
}
END_TEST

/* A stopped notifier keeps its connection: requests wait for the timeout, then the answer is partial. */
START_TEST(stopped_notifier)
{
    enum { SLOW = 6, HEALTH = 10 };
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    opts.worker_timeout_ms = 400;
    own_system(&opts);
    char user[64], path[160];
    harness_user(user, "sn");
    uint64_t a = harness_publish(sys, user, "a", NULL, NULL), b = harness_publish(sys, user, "b", NULL, NULL);
    ck_assert(harness_wait_realtime(sys, user, b, 1000));

    harness_proc_t *nt = harness_proc(sys, HARNESS_NOTIFIER, 0);
    harness_proc_pause(nt);
    snprintf(path, sizeof(path), "/v1/users/%s/notifications", user);
    harness_req_t req = {.path = path};
    harness_async_t *slow[SLOW];
    for (int i = 0; i < SLOW; ++i)
        slow[i] = harness_request_start(sys, &req);
    harness_sleep_ms(30);

    /* the loop is not blocked by requests waiting on a worker */
    for (int i = 0; i < HEALTH; ++i) {
        harness_resp_t *r = harness_get(sys, "/healthz");
        ck_assert_msg(r->status == 200, "/healthz: %ld %s", r->status, r->error);
        ck_assert_msg(r->elapsed_ms < 50, "/healthz took %.1f ms while lists wait on a stopped notifier", r->elapsed_ms);
        harness_resp_free(r);
        harness_sleep_ms(10);
    }

    for (int i = 0; i < SLOW; ++i) {
        harness_resp_t *r = harness_request_finish(slow[i]);
        ck_assert_msg(r->status == 200, "slow list: %ld (%s) %.300s", r->status, r->error, r->body);
        ck_assert_msg(r->elapsed_ms < opts.worker_timeout_ms + MARGIN_MS, "slow list took %.0f ms", r->elapsed_ms);
        ck_assert_msg(r->elapsed_ms > opts.worker_timeout_ms - 50, "answered in %.0f ms: it did not wait for the stopped notifier",
                      r->elapsed_ms);
        ck_assert_str_eq(only_error(r, "notifier"), "timeout");
        ck_assert_msg(harness_has_id(json_object_get(r->json, "historical"), a) &&
                          harness_has_id(json_object_get(r->json, "historical"), b),
                      "history's part is missing: %.500s", r->body);
        harness_resp_free(r);
    }
    double t0 = harness_mono_ms();
    harness_resp_t *r = harness_list(sys, user, 0, 0);
    ck_assert_msg(harness_mono_ms() - t0 < opts.worker_timeout_ms + MARGIN_MS, "list took too long");
    ck_assert_str_eq(only_error(r, "notifier"), "timeout");
    harness_resp_free(r);

    harness_proc_resume(nt);
    ck_assert_msg(harness_wait_realtime(sys, user, b, 2000), "no full answer after the notifier resumed");
}
END_TEST

START_TEST(stopped_history)
{
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    opts.worker_timeout_ms = 300;
    opts.write_timeout_ms = 800;
    own_system(&opts);
    char user[64], body[160];
    harness_user(user, "sh");
    uint64_t a = harness_publish(sys, user, "a", NULL, NULL);
    ck_assert(harness_wait_realtime(sys, user, a, 1000));

    harness_proc_t *hs = harness_proc(sys, HARNESS_HISTORY, 0);
    harness_proc_pause(hs);
    double t0 = harness_mono_ms();
    harness_resp_t *r = harness_list(sys, user, 0, 0);
    double took = harness_mono_ms() - t0;
    ck_assert_msg(took < opts.worker_timeout_ms + MARGIN_MS, "list took %.0f ms", took);
    ck_assert_str_eq(only_error(r, "history"), "timeout");
    ck_assert_msg(harness_has_id(json_object_get(r->json, "realtime"), a), "realtime part missing: %.500s", r->body);
    harness_resp_free(r);

    snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"message\":\"slow\"}", user);
    t0 = harness_mono_ms();
    r = harness_post(sys, "/v1/notifications", body);
    took = harness_mono_ms() - t0;
    HARNESS_ASSERT_ERROR(r, 503, "timeout");
    ck_assert_msg(took < opts.write_timeout_ms + MARGIN_MS, "publish took %.0f ms", took);
    ck_assert_msg(strstr(r->body, "may have been stored") != NULL, "a timed-out publish must say it may be stored: %.300s",
                  r->body);
    harness_resp_free(r);

    r = harness_get(sys, "/healthz");
    ck_assert_msg(r->status == 200 && r->elapsed_ms < 50, "/healthz: %ld in %.1f ms", r->status, r->elapsed_ms);
    harness_resp_free(r);

    harness_proc_resume(hs);
    uint64_t c = harness_publish(sys, user, "after resume", NULL, NULL);
    ck_assert(harness_wait_realtime(sys, user, c, 1000));
}
END_TEST

/* The gateway asks both workers at once: with both stopped, a list takes one timeout, not two, and names both. */
START_TEST(both_workers_stopped)
{
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    opts.worker_timeout_ms = 400;
    own_system(&opts);
    char user[64];
    harness_user(user, "both");
    harness_proc_t *nt = harness_proc(sys, HARNESS_NOTIFIER, 0), *hs = harness_proc(sys, HARNESS_HISTORY, 0);
    harness_proc_pause(nt);
    harness_proc_pause(hs);
    double t0 = harness_mono_ms();
    harness_resp_t *r = harness_list(sys, user, 0, 0);
    double took = harness_mono_ms() - t0;
    ck_assert_msg(took >= opts.worker_timeout_ms - 20 && took < 1.5 * opts.worker_timeout_ms,
                  "with both workers stopped the list took %.0f ms: the calls must run concurrently (one %d ms timeout)", took,
                  opts.worker_timeout_ms);
    json_t *errors = json_object_get(r->json, "errors");
    ck_assert_msg(json_is_true(json_object_get(r->json, "partial")) && json_array_size(errors) == 2, "%.500s", r->body);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(errors, 0), "source")), "notifier");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(errors, 1), "source")), "history");
    ck_assert_msg(json_is_null(json_object_get(r->json, "unread_count")), "unread_count without any worker: %.300s", r->body);
    harness_resp_free(r);
    harness_proc_resume(nt);
    harness_proc_resume(hs);
}
END_TEST

/* Clients that give up while their request waits on a worker (HTTP/2 stream resets, HTTP/1.1 connections closed): the
 * gateway drops the request's worker calls and carries on. */
START_TEST(client_gives_up)
{
    enum { STREAMS = 30, CONNS = 5 };
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    opts.worker_timeout_ms = 1000;
    opts.tls = true; /* multiplexed streams: see harness_request_multiplexed */
    own_system(&opts);
    char user[64], path[160];
    harness_user(user, "gone");
    uint64_t id = harness_publish(sys, user, "m", NULL, NULL);
    ck_assert(harness_wait_realtime(sys, user, id, 1000));

    harness_proc_t *nt = harness_proc(sys, HARNESS_NOTIFIER, 0);
    harness_proc_pause(nt);
    snprintf(path, sizeof(path), "/v1/users/%s/notifications", user);
    harness_req_t reqs[STREAMS];
    harness_resp_t *resps[STREAMS];
    harness_async_t *conns[CONNS];
    for (int i = 0; i < CONNS; ++i)
        conns[i] = harness_request_start(sys, &(harness_req_t){.path = path, .timeout_ms = 300});
    for (int i = 0; i < STREAMS; ++i)
        reqs[i] = (harness_req_t){.proto = HARNESS_HTTPS, .path = path, .timeout_ms = 300};
    harness_request_multiplexed(sys, reqs, STREAMS, resps);
    for (int i = 0; i < STREAMS; ++i) {
        ck_assert_msg(resps[i]->status == 0, "stream %d was answered (%ld) before the worker timeout", i, resps[i]->status);
        harness_resp_free(resps[i]);
    }
    for (int i = 0; i < CONNS; ++i) {
        harness_resp_t *r = harness_request_finish(conns[i]);
        ck_assert_msg(r->status == 0, "connection %d was answered (%ld) before the worker timeout", i, r->status);
        harness_resp_free(r);
    }

    harness_resp_t *r = harness_get(sys, "/healthz");
    ck_assert_msg(r->status == 200, "/healthz after the resets: %ld %s", r->status, r->error);
    harness_resp_free(r);
    harness_sleep_ms(opts.worker_timeout_ms); /* past the abandoned calls' deadlines */
    harness_proc_resume(nt);
    ck_assert_msg(harness_wait_realtime(sys, user, id, 2000), "no full answer after the resets");
    for (int i = 0; i < 20; ++i) {
        r = harness_list(sys, user, 0, 0);
        ck_assert_msg(json_is_false(json_object_get(r->json, "partial")) &&
                          harness_has_id(json_object_get(r->json, "realtime"), id),
                      "after the resets: %.500s", r->body);
        harness_resp_free(r);
    }
    /* the reset streams' calls were cancelled, not left to time out */
    double cancelled = harness_metric(sys, "notigate_worker_replies_total{kind=\"notifier\",outcome=\"cancelled\"}");
    ck_assert_msg(cancelled >= STREAMS, "only %.0f notifier calls cancelled for %d reset streams", cancelled, STREAMS);
}
END_TEST

/* History-svc replicas replaced one at a time (SIGTERM, then a new one) under a steady stream of publishes: every
 * publish succeeds, exactly once. */
typedef struct st_publisher_t {
    pthread_t tid;
    const char *user;
    int count, created;
    long statuses[100];
    uint64_t ids[100];
    char first_error[256]; /* the body of the first failed publish */
} publisher_t;

static void *publisher_main(void *arg)
{
    publisher_t *p = arg;
    char body[160];
    snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"message\":\"rolling\"}", p->user);
    harness_req_t req = {.method = "POST", .path = "/v1/notifications", .body = body};
    for (int i = 0; i < p->count; ++i) {
        harness_resp_t *r = harness_request(sys, &req);
        p->statuses[i] = r->status;
        p->ids[i] = r->status == 201 ? (uint64_t)json_integer_value(json_object_get(r->json, "id")) : 0;
        p->created += r->status == 201;
        if (r->status != 201 && p->first_error[0] == '\0')
            snprintf(p->first_error, sizeof(p->first_error), "%ld %.80s%.160s", r->status, r->error, r->body);
        harness_resp_free(r);
        harness_sleep_ms(2);
    }
    return NULL;
}

START_TEST(rolling_restart_history)
{
    enum { PUBLISHERS = 4, EACH = 100 };
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    opts.histories = 2;
    own_system(&opts);
    char user[64];
    harness_user(user, "roll");
    publisher_t pubs[PUBLISHERS];
    for (int i = 0; i < PUBLISHERS; ++i) {
        pubs[i] = (publisher_t){.user = user, .count = EACH};
        ck_assert(pthread_create(&pubs[i].tid, NULL, publisher_main, pubs + i) == 0);
    }
    for (int round = 0; round < 2; ++round) {
        harness_sleep_ms(100);
        harness_proc_t *old = harness_proc(sys, HARNESS_HISTORY, 0);
        int status = harness_proc_terminate(sys, old, 6000);
        ck_assert_msg(status != -1, "%s did not exit within 6 s of SIGTERM (its stacks are in its log)", old->name);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: wait status 0x%x, expected exit 0", old->name, status);
        harness_add(sys, HARNESS_HISTORY);
        ck_assert_int_eq(harness_wait_replicas(sys, "history", 2, 5000), 0);
    }
    int created = 0;
    for (int i = 0; i < PUBLISHERS; ++i) {
        pthread_join(pubs[i].tid, NULL);
        created += pubs[i].created;
    }
    for (int i = 0; i < PUBLISHERS; ++i)
        for (int k = 0; k < EACH; ++k)
            ck_assert_msg(pubs[i].statuses[k] == 201,
                          "publish %d of publisher %d got %ld during the rolling restart (first failure: %s)", k, i,
                          pubs[i].statuses[k], pubs[i].first_error);
    for (int i = 0; i < PUBLISHERS; ++i)
        for (int k = 0; k < EACH; ++k)
            for (int j = 0; j <= i; ++j)
                for (int l = 0; l < (j == i ? k : EACH); ++l)
                    ck_assert_msg(pubs[i].ids[k] != pubs[j].ids[l], "id %" PRIu64 " given twice", pubs[i].ids[k]);
    harness_resp_t *r = harness_list(sys, user, 1, 0);
    ck_assert_msg(json_integer_value(json_object_get(r->json, "unread_count")) == created,
                  "stored %" JSON_INTEGER_FORMAT ", created %d", json_integer_value(json_object_get(r->json, "unread_count")),
                  created);
    harness_resp_free(r);
}
END_TEST

/* A notifier that has not loaded its window (here: it cannot reach Redis at all) has no realtime view: its empty
 * answer must not pass for a complete one. */
START_TEST(notifier_without_its_window)
{
    own_system(NULL);
    char user[64];
    harness_user(user, "nowin");
    static const char *const bad_redis[] = {"--redis-url", "redis://127.0.0.1:1", NULL}; /* nothing listens on port 1 */
    harness_proc_kill(sys, harness_proc(sys, HARNESS_NOTIFIER, 0));
    ck_assert_int_eq(harness_wait_replicas(sys, "notifier", 0, 3000), 0);
    harness_add_args(sys, HARNESS_NOTIFIER, bad_redis); /* it joins the gateway after its Redis deadline (1 s) */
    ck_assert_int_eq(harness_wait_replicas(sys, "notifier", 1, 5000), 0);
    uint64_t id = harness_publish(sys, user, "unread, but the notifier cannot know", NULL, NULL);
    harness_sleep_ms(200);

    harness_resp_t *r = harness_list(sys, user, 0, 0);
    ck_assert_msg(!harness_has_id(json_object_get(r->json, "realtime"), id), "realtime from a notifier without Redis? %.500s",
                  r->body);
    ck_assert_msg(harness_has_id(json_object_get(r->json, "historical"), id), "history's part is missing: %.500s", r->body);
    /* the unread notification is only in historical: the answer must say realtime is missing */
    ck_assert_msg(json_is_true(json_object_get(r->json, "partial")), "an empty realtime view passed for a complete answer: %.500s",
                  r->body);
    ck_assert_str_eq(only_error(r, "notifier"), "unavailable");
    harness_resp_free(r);
    /* and the system is not ready: a replica is connected, but it cannot serve its view */
    assert_readyz(503);
    r = harness_get(sys, "/readyz");
    const json_t *nt = json_object_get(json_object_get(r->json, "checks"), "notifier");
    ck_assert_msg(json_is_true(json_object_get(nt, "answered")) && json_is_false(json_object_get(nt, "redis")),
                  "/readyz should show the notifier answering without its view: %.500s", r->body);
    harness_resp_free(r);
}
END_TEST

/* History is the authority on read state. The notifier here follows a Redis replica that is then stopped, so its view
 * is frozen: what is marked read meanwhile must still leave realtime at once, by the gateway's merge. */
START_TEST(stale_notifier_read_state)
{
    own_system(NULL);
    char user[64], url[64], path[160];
    uint16_t replica_port;
    uint64_t ids[3];
    harness_user(user, "stale");
    harness_proc_t *replica = harness_add_redis_replica(sys, &replica_port);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u", replica_port);
    const char *const args[] = {"--redis-url", url, NULL};
    harness_proc_kill(sys, harness_proc(sys, HARNESS_NOTIFIER, 0)); /* the one on the primary */
    ck_assert_int_eq(harness_wait_replicas(sys, "notifier", 0, 3000), 0);
    harness_add_args(sys, HARNESS_NOTIFIER, args);
    ck_assert_int_eq(harness_wait_replicas(sys, "notifier", 1, 5000), 0);
    for (int i = 0; i < 3; ++i)
        ids[i] = harness_publish(sys, user, "m", NULL, NULL);
    ck_assert(harness_wait_realtime(sys, user, ids[2], 2000));

    harness_proc_pause(replica); /* the notifier hears nothing from now on */
    harness_resp_t *r = post_path("/v1/users/%s/notifications/%" PRIu64 "/read", user, ids[1]);
    ck_assert_int_eq(r->status, 204);
    harness_resp_free(r);
    r = harness_list(sys, user, 0, 0);
    uint64_t rt[8];
    size_t n = harness_ids(json_object_get(r->json, "realtime"), rt, 8);
    ck_assert_msg(n == 2 && rt[0] == ids[2] && rt[1] == ids[0], "the read one must leave realtime at once: %.800s", r->body);
    ck_assert_msg(json_array_size(json_object_get(r->json, "historical")) == 1 &&
                      harness_has_id(json_object_get(r->json, "historical"), ids[1]),
                  "the read one must be in historical: %.800s", r->body);
    ck_assert(json_is_true(json_object_get(json_array_get(json_object_get(r->json, "historical"), 0), "read")));
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "unread_count")), 2);
    ck_assert(json_is_false(json_object_get(r->json, "partial")));
    harness_resp_free(r);

    snprintf(path, sizeof(path), "/v1/users/%s/notifications/read", user);
    r = harness_post(sys, path, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "marked")), 2);
    harness_resp_free(r);
    r = harness_list(sys, user, 0, 0);
    ck_assert_msg(json_array_size(json_object_get(r->json, "realtime")) == 0 &&
                      json_array_size(json_object_get(r->json, "historical")) == 3,
                  "after mark all, with a notifier that has not heard: %.800s", r->body);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "unread_count")), 0);
    harness_resp_free(r);

    harness_proc_resume(replica); /* the notifier catches up */
    uint64_t later = harness_publish(sys, user, "later", NULL, NULL);
    ck_assert_msg(harness_wait_realtime(sys, user, later, 5000), "the notifier did not catch up with the replica");
    r = harness_list(sys, user, 0, 0);
    n = harness_ids(json_object_get(r->json, "realtime"), rt, 8);
    ck_assert_msg(n == 1 && rt[0] == later, "after catching up: %.800s", r->body);
    harness_resp_free(r);
}
END_TEST

/* nng's REQ is at-least-once: a publish whose worker died after Redis ran it, but before the reply, is sent again to
 * the next replica. The request id makes the second run a replay: one notification, and the client gets its id. */
START_TEST(publish_replayed_once)
{
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    opts.write_timeout_ms = 8000;
    own_system(&opts);
    char user[64], body[160];
    harness_user(user, "replay");
    uint64_t first = harness_publish(sys, user, "before", NULL, NULL);

    harness_proc_t *redis = harness_proc(sys, HARNESS_REDIS, 0), *a = harness_proc(sys, HARNESS_HISTORY, 0);
    harness_proc_pause(redis);
    snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"message\":\"exactly once\"}", user);
    harness_req_t req = {.method = "POST", .path = "/v1/notifications", .body = body, .timeout_ms = 15000};
    harness_async_t *pending = harness_request_start(sys, &req);
    harness_sleep_ms(300); /* history-svc has sent the script to the stopped Redis */
    harness_proc_pause(a);
    harness_proc_resume(redis); /* Redis runs the script; the reply waits in history-svc's socket */
    harness_sleep_ms(300);
    harness_proc_kill(sys, a); /* the gateway sends the request again when a replica connects */
    harness_proc_t *b = harness_add(sys, HARNESS_HISTORY);

    harness_resp_t *r = harness_request_finish(pending);
    ck_assert_msg(r->status == 201, "publish across the replay: %ld (%s) %.300s", r->status, r->error, r->body);
    uint64_t id = (uint64_t)json_integer_value(json_object_get(r->json, "id"));
    harness_resp_free(r);
    ck_assert_msg(harness_log_contains(b, "publish replayed"), "the second replica did not replay the request (see its log)");

    r = harness_list(sys, user, 0, 0);
    uint64_t all[8];
    size_t n = harness_ids(json_object_get(r->json, "historical"), all, 8);
    n += harness_ids(json_object_get(r->json, "realtime"), all + n, 8 - n);
    ck_assert_msg(n == 2, "expected the first and the replayed one, stored once: %.800s", r->body);
    ck_assert_msg((all[0] == id && all[1] == first) || (all[1] == id && all[0] == first), "ids: %.800s", r->body);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "unread_count")), 2);
    harness_resp_free(r);
}
END_TEST

/* ---- 5. replicas ----------------------------------------------------------------------------------------------- */

START_TEST(two_history_replicas)
{
    enum { REQUESTS = 50 };
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    opts.histories = 2;
    own_system(&opts);
    char user[64], names[8][96];
    double replies[8];
    harness_user(user, "hr");
    for (int i = 0; i < 5; ++i)
        harness_publish(sys, user, "m", NULL, NULL);
    for (int i = 0; i < REQUESTS; ++i) {
        harness_resp_t *r = harness_list(sys, user, 0, 0);
        ck_assert_msg(json_is_false(json_object_get(r->json, "partial")), "partial: %.300s", r->body);
        ck_assert_uint_eq(
            json_array_size(json_object_get(r->json, "realtime")) + json_array_size(json_object_get(r->json, "historical")), 5);
        harness_resp_free(r);
    }
    ck_assert_int_eq(harness_metric(sys, "notigate_worker_replicas{kind=\"history\"}"), 2);
    size_t n = harness_replica_replies(sys, "history", names, replies, 8);
    ck_assert_msg(n == 2, "expected two history replicas in /metrics, found %zu", n);
    ck_assert_msg(strcmp(names[0], names[1]) != 0, "the same replica twice: %s", names[0]);
    for (unsigned i = 0; i < 2; ++i) {
        char suffix[32];
        harness_proc_t *p = harness_proc(sys, HARNESS_HISTORY, i);
        snprintf(suffix, sizeof(suffix), ":%d", (int)p->pid);
        bool found = false;
        for (size_t k = 0; k < n; ++k) {
            size_t len = strlen(names[k]);
            if (strncmp(names[k], "history-svc@", 12) == 0 && len > strlen(suffix) &&
                strcmp(names[k] + len - strlen(suffix), suffix) == 0) {
                found = true;
                ck_assert_msg(replies[k] > 0, "replica %s never replied", names[k]);
            }
        }
        ck_assert_msg(found, "history-svc pid %d is not among the replicas in /metrics (%s, %s)", (int)p->pid, names[0], names[1]);
    }

    /* one replica goes: the other carries on, nothing partial */
    harness_proc_kill(sys, harness_proc(sys, HARNESS_HISTORY, 0));
    ck_assert_int_eq(harness_wait_replicas(sys, "history", 1, 3000), 0);
    for (int i = 0; i < 20; ++i) {
        harness_resp_t *r = harness_list(sys, user, 0, 0);
        ck_assert_msg(json_is_false(json_object_get(r->json, "partial")), "partial with one replica left: %.300s", r->body);
        harness_resp_free(r);
    }
    harness_publish(sys, user, "one replica left", NULL, NULL);
}
END_TEST

START_TEST(two_notifier_replicas)
{
    enum { REQUESTS = 20 };
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    opts.notifiers = 2;
    own_system(&opts);
    char user[64], names[8][96], after_names[8][96];
    double before[8], after[8];
    harness_user(user, "nr");
    uint64_t id = harness_publish(sys, user, "seen by both", NULL, NULL);

    /* two answers in a row hold it: with round robin, one from each replica */
    int streak = 0;
    double deadline = harness_mono_ms() + 1000;
    while (streak < 2) {
        ck_assert_msg(harness_mono_ms() < deadline, "not in realtime on two answers in a row within 1 s");
        harness_resp_t *r = harness_list(sys, user, 0, 0);
        streak = harness_has_id(json_object_get(r->json, "realtime"), id) ? streak + 1 : 0;
        harness_resp_free(r);
    }

    size_t nb = harness_replica_replies(sys, "notifier", names, before, 8);
    for (int i = 0; i < REQUESTS; ++i) {
        harness_resp_t *r = harness_list(sys, user, 0, 0);
        ck_assert_msg(json_is_false(json_object_get(r->json, "partial")) &&
                          harness_has_id(json_object_get(r->json, "realtime"), id),
                      "answer %d lacks the notification in realtime: %.500s", i, r->body);
        harness_resp_free(r);
    }
    size_t na = harness_replica_replies(sys, "notifier", after_names, after, 8);
    ck_assert_msg(na == 2, "expected two notifier replicas in /metrics, found %zu", na);
    for (size_t i = 0; i < na; ++i) {
        double prev = 0;
        for (size_t k = 0; k < nb; ++k)
            if (strcmp(names[k], after_names[i]) == 0)
                prev = before[k];
        ck_assert_msg(after[i] > prev, "replica %s answered none of the %d requests", after_names[i], REQUESTS);
    }
}
END_TEST

/* ---- 6. readiness ---------------------------------------------------------------------------------------------- */

START_TEST(readyz_follows_workers)
{
    own_system(NULL);
    harness_resp_t *r = harness_get(sys, "/readyz");
    ck_assert_msg(r->status == 200, "/readyz: %ld %.300s", r->status, r->body);
    json_t *checks = json_object_get(r->json, "checks");
    for (int i = 0; i < 2; ++i) {
        json_t *c = json_object_get(checks, i == 0 ? "notifier" : "history");
        ck_assert_msg(json_integer_value(json_object_get(c, "replicas")) == 1 && json_is_true(json_object_get(c, "answered")) &&
                          json_is_true(json_object_get(c, "redis")),
                      "/readyz checks: %.500s", r->body);
    }
    harness_resp_free(r);

    harness_proc_kill(sys, harness_proc(sys, HARNESS_HISTORY, 0));
    ck_assert_int_eq(harness_wait_replicas(sys, "history", 0, 3000), 0);
    r = harness_get(sys, "/readyz");
    ck_assert_msg(r->status == 503, "/readyz with no history replica: %ld %.300s", r->status, r->body);
    json_t *h = json_object_get(json_object_get(r->json, "checks"), "history");
    ck_assert_msg(json_is_false(json_object_get(h, "answered")) && json_integer_value(json_object_get(h, "replicas")) == 0 &&
                      json_is_string(json_object_get(h, "error")),
                  "/readyz history check: %.500s", r->body);
    harness_resp_free(r);

    harness_add(sys, HARNESS_HISTORY);
    ck_assert_int_eq(harness_wait_ready(sys, 5000), 0);

    harness_proc_kill(sys, harness_proc(sys, HARNESS_NOTIFIER, 0));
    ck_assert_int_eq(harness_wait_replicas(sys, "notifier", 0, 3000), 0);
    assert_readyz(503);
    harness_add(sys, HARNESS_NOTIFIER);
    ck_assert_int_eq(harness_wait_ready(sys, 5000), 0);
}
END_TEST

/* Workers may come up after the gateway (or never): it answers what it can. */
START_TEST(start_without_history)
{
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    opts.histories = 0;
    opts.no_wait_ready = true;
    own_system(&opts);
    char user[64], body[160];
    harness_user(user, "nohist");
    ck_assert_int_eq(harness_wait_replicas(sys, "notifier", 1, 5000), 0);
    assert_readyz(503);
    snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"message\":\"m\"}", user);
    harness_resp_t *r = harness_post(sys, "/v1/notifications", body);
    HARNESS_ASSERT_ERROR(r, 503, "no_replica");
    harness_resp_free(r);
    r = harness_list(sys, user, 0, 0);
    ck_assert_str_eq(only_error(r, "history"), "no_replica");
    harness_resp_free(r);

    harness_add(sys, HARNESS_HISTORY);
    ck_assert_int_eq(harness_wait_ready(sys, 5000), 0);
    uint64_t id = harness_publish(sys, user, "m", NULL, NULL);
    ck_assert(harness_wait_realtime(sys, user, id, 1000));
}
END_TEST

START_TEST(redis_down)
{
    own_system(NULL);
    char user[64], body[160];
    uint64_t ids[3];
    harness_user(user, "rd");
    for (int i = 0; i < 3; ++i)
        ids[i] = harness_publish(sys, user, "kept", NULL, NULL);
    harness_resp_t *r = post_path("/v1/users/%s/notifications/%" PRIu64 "/read", user, ids[0]);
    ck_assert_int_eq(r->status, 204);
    harness_resp_free(r);
    ck_assert(harness_wait_realtime(sys, user, ids[2], 1000));

    harness_proc_kill(sys, harness_proc(sys, HARNESS_REDIS, 0));
    double deadline = harness_mono_ms() + 3000;
    for (;;) {
        r = harness_get(sys, "/readyz");
        if (r->status == 503)
            break;
        ck_assert_msg(harness_mono_ms() < deadline, "/readyz still %ld 3 s after Redis died: %.300s", r->status, r->body);
        harness_resp_free(r);
        harness_sleep_ms(20);
    }
    json_t *h = json_object_get(json_object_get(r->json, "checks"), "history");
    ck_assert_msg(json_is_false(json_object_get(r->json, "ready")) && json_is_false(json_object_get(h, "redis")),
                  "/readyz should blame Redis: %.500s", r->body);
    harness_resp_free(r);

    snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"message\":\"during the outage\"}", user);
    for (int i = 0; i < 5; ++i) {
        r = harness_post(sys, "/v1/notifications", body);
        ck_assert_msg(r->status != 201, "publish accepted (201) while Redis is down: %.300s", r->body);
        HARNESS_ASSERT_ERROR(r, 503, "unavailable");
        harness_resp_free(r);
    }
    r = harness_list(sys, user, 0, 0);
    ck_assert_str_eq(only_error(r, "history"), "unavailable");
    ck_assert_msg(harness_has_id(json_object_get(r->json, "realtime"), ids[2]) &&
                      harness_has_id(json_object_get(r->json, "realtime"), ids[1]),
                  "the notifier's view should survive a Redis outage: %.500s", r->body);
    harness_resp_free(r);

    /* Redis back on the same port and directory: the append-only file kept everything, ids go on from there */
    harness_add(sys, HARNESS_REDIS);
    ck_assert_msg(harness_wait_ready(sys, 8000) == 0, "/readyz not 200 within 8 s of Redis coming back");
    uint64_t later = harness_publish(sys, user, "after the outage", NULL, NULL);
    ck_assert_msg(later > ids[2], "id %" PRIu64 " reused or went back after a Redis restart (last was %" PRIu64 ")", later, ids[2]);
    ck_assert_msg(harness_wait_realtime(sys, user, later, 3000), "the notifier did not resume following the stream");
    r = harness_list(sys, user, 0, 0);
    uint64_t rt[8], hist[8];
    size_t nrt = harness_ids(json_object_get(r->json, "realtime"), rt, 8),
           nhist = harness_ids(json_object_get(r->json, "historical"), hist, 8);
    ck_assert_msg(nrt == 3 && nhist == 1 && hist[0] == ids[0] && rt[0] == later, "after the restart: %.800s", r->body);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "unread_count")), 3);
    harness_resp_free(r);
}
END_TEST

static void add_own(Suite *s, const TTest *test, int timeout_s)
{
    harness_add_own(s, test, timeout_s, own_down);
}

static Suite *faults_suite(void)
{
    Suite *s = suite_create("integration_faults");
    add_own(s, kill_notifier, 30);
    add_own(s, kill_history, 30);
    add_own(s, stopped_notifier, 30);
    add_own(s, stopped_history, 30);
    add_own(s, both_workers_stopped, 30);
    add_own(s, client_gives_up, 30);
    add_own(s, rolling_restart_history, 40);
    add_own(s, two_history_replicas, 30);
    add_own(s, two_notifier_replicas, 30);
    add_own(s, readyz_follows_workers, 30);
    add_own(s, start_without_history, 30);
    add_own(s, redis_down, 40);
    add_own(s, notifier_without_its_window, 30);
    add_own(s, stale_notifier_read_state, 30);
    add_own(s, publish_replayed_once, 30);
    return s;
}

int main(void)
{
    return harness_main(faults_suite());
}

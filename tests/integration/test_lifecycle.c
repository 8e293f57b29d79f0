/*
 * Stopping: SIGTERM makes the gateway stop accepting, finish the requests in flight and exit 0; workers likewise.
 * The exit status is only visible to the process that started the system, so each test has its own system, started
 * in the test's child.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include "harness.h"

#define MARGIN_MS 500

static harness_t *sys;

static harness_t *own_system(const harness_opts_t *opts)
{
    return sys = harness_start(tcase_name(), opts);
}

static void own_down(void)
{
    harness_stop_own(&sys);
}

static void assert_exit_zero(const char *what, int status)
{
    ck_assert_msg(status != -1, "%s did not exit in time after SIGTERM (its stacks are in its log)", what);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: exit status %d (signal %d), expected 0", what,
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

START_TEST(gateway_graceful_stop)
{
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    opts.worker_timeout_ms = 1500; /* the in-flight requests last that long: time to look at the gateway meanwhile */
    own_system(&opts);
    char user[64], path[160];
    harness_user(user, "stop");
    uint64_t id = harness_publish(sys, user, "in flight", NULL, NULL);
    ck_assert(harness_wait_realtime(sys, user, id, 1000));

    harness_proc_t *gw = harness_proc(sys, HARNESS_GATEWAY, 0), *nt = harness_proc(sys, HARNESS_NOTIFIER, 0);
    harness_proc_pause(nt); /* list requests now wait for the worker timeout */
    snprintf(path, sizeof(path), "/v1/users/%s/notifications", user);
    harness_req_t h1 = {.proto = HARNESS_HTTP1, .path = path}, h2 = {.proto = HARNESS_H2C, .path = path};
    harness_async_t *a1 = harness_request_start(sys, &h1), *a2 = harness_request_start(sys, &h2);
    harness_sleep_ms(200);

    double t_term = harness_mono_ms();
    harness_proc_signal(sys, gw, SIGTERM);

    /* no new connections, while the old requests are still being served (until the listeners are closed, a connect may
     * still succeed, or be reset if it was queued on a listener as it closed) */
    int err;
    while ((err = harness_tcp_connect(sys->http_port)) != ECONNREFUSED && harness_mono_ms() - t_term < 500)
        harness_sleep_ms(5);
    ck_assert_msg(err == ECONNREFUSED, "a new connection %s %.0f ms after SIGTERM", err == 0 ? "was accepted" : strerror(err),
                  harness_mono_ms() - t_term);
    ck_assert_msg(harness_proc_alive(gw), "the gateway exited before answering the requests in flight");
    harness_resp_t *r = harness_get(sys, "/healthz");
    ck_assert_msg(r->status == 0, "a request on a new connection got %ld during shutdown", r->status);
    harness_resp_free(r);

    harness_resp_t *r1 = harness_request_finish(a1), *r2 = harness_request_finish(a2);
    harness_resp_t *both[] = {r1, r2};
    for (int i = 0; i < 2; ++i) {
        r = both[i];
        ck_assert_msg(r->status == 200, "in-flight request over HTTP/%s: %ld (%s) %.300s", i == 0 ? "1.1" : "2", r->status,
                      r->error, r->body);
        ck_assert_int_eq(r->http_version, i == 0 ? 11 : 20);
        ck_assert_msg(json_is_true(json_object_get(r->json, "partial")) &&
                          harness_has_id(json_object_get(r->json, "historical"), id),
                      "in-flight answer: %.500s", r->body);
        harness_resp_free(r);
    }

    int status = harness_proc_wait(gw, 5000);
    assert_exit_zero("gateway", status);
    ck_assert_msg(harness_log_contains(gw, "gateway stopped"), "the gateway did not log its stop");

    harness_proc_resume(nt);
    assert_exit_zero("notifier", harness_proc_terminate(sys, nt, 8000));
    assert_exit_zero("history-svc", harness_proc_terminate(sys, harness_proc(sys, HARNESS_HISTORY, 0), 8000));
}
END_TEST

/* With nothing in flight, every process stops promptly and cleanly, workers first. */
START_TEST(idle_stop)
{
    own_system(NULL);
    harness_proc_t *nt = harness_proc(sys, HARNESS_NOTIFIER, 0), *hs = harness_proc(sys, HARNESS_HISTORY, 0),
                   *gw = harness_proc(sys, HARNESS_GATEWAY, 0);
    double t0 = harness_mono_ms();
    assert_exit_zero("notifier", harness_proc_terminate(sys, nt, 3000));
    ck_assert_msg(harness_log_contains(nt, "notifier stopped"), "the notifier did not log its stop");
    ck_assert_int_eq(harness_wait_replicas(sys, "notifier", 0, 3000), 0);
    assert_exit_zero("history-svc", harness_proc_terminate(sys, hs, 3000));
    ck_assert_msg(harness_log_contains(hs, "history-svc stopped"), "history-svc did not log its stop");
    ck_assert_int_eq(harness_wait_replicas(sys, "history", 0, 3000), 0);
    assert_exit_zero("gateway", harness_proc_terminate(sys, gw, 3000));
    ck_assert_msg(harness_mono_ms() - t0 < 4000, "stopping an idle system took %.0f ms", harness_mono_ms() - t0);
    ck_assert_int_eq(harness_tcp_connect(sys->http_port), ECONNREFUSED);
}
END_TEST

/* A worker told to stop while it serves a request answers it first: history-svc waits on a stopped Redis, gets
 * SIGTERM, and the client still gets history-svc's own answer (503 "unavailable" once its Redis deadline passes),
 * not a timeout. */
START_TEST(worker_drains_in_flight)
{
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    opts.write_timeout_ms = 4000;
    own_system(&opts);
    char user[64], body[160];
    harness_user(user, "drain");
    harness_publish(sys, user, "warm", NULL, NULL);

    harness_proc_t *redis = harness_proc(sys, HARNESS_REDIS, 0), *hs = harness_proc(sys, HARNESS_HISTORY, 0);
    harness_proc_pause(redis);
    snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"message\":\"while stopping\"}", user);
    harness_req_t req = {.method = "POST", .path = "/v1/notifications", .body = body};
    harness_async_t *a = harness_request_start(sys, &req);
    harness_sleep_ms(200); /* history-svc has it, waiting on Redis (its deadline: 1000 ms) */
    harness_proc_signal(sys, hs, SIGTERM);

    harness_resp_t *r = harness_request_finish(a);
    HARNESS_ASSERT_ERROR(r, 503, "unavailable");
    ck_assert_msg(r->elapsed_ms < 1000 + 200 + MARGIN_MS, "the answer took %.0f ms", r->elapsed_ms);
    harness_resp_free(r);
    assert_exit_zero("history-svc", harness_proc_wait(hs, 6000));
    harness_proc_resume(redis);
}
END_TEST

static void add_own(Suite *s, const TTest *test, int timeout_s)
{
    harness_add_own(s, test, timeout_s, own_down);
}

static Suite *lifecycle_suite(void)
{
    Suite *s = suite_create("integration_lifecycle");
    add_own(s, gateway_graceful_stop, 30);
    add_own(s, idle_stop, 30);
    add_own(s, worker_drains_in_flight, 30);
    return s;
}

int main(void)
{
    return harness_main(lifecycle_suite());
}

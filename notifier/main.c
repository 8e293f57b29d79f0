/*
 * notifier: holds the realtime view of notifications (published in the last REALTIME_WINDOW seconds and unread) and
 * answers RECENT requests from it. Every replica follows the same Redis event stream, so any replica can answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include "clock.h"
#include "config.h"
#include "log.h"
#include "realtime.h"
#include "redis_client.h"
#include "rpc_server.h"
#include "stream.h"
#include "worker.h"

typedef struct st_notifier_t {
    realtime_t *rt;
    watch_t *watch;
    stream_reader_t *reader;
    h2o_timeout_t sweep;
    h2o_timeout_entry_t sweep_entry;
    h2o_loop_t *loop;
    bool draining; /* stopping: WATCH requests are answered at once, never held */
} notifier_t;

static void on_request(rpc_call_t *call, const proto_request_t *req, void *data)
{
    notifier_t *nt = data;
    switch (req->op) {
    case PROTO_OP_RECENT: {
        if (!stream_reader_is_loaded(nt->reader)) {
            /* no view yet (Redis unreachable, or the window still loading): an empty list would pass for "nothing
             * unread", so say the realtime view is missing and let the gateway mark the answer partial */
            rpc_call_reply_error(call, PROTO_ST_UNAVAILABLE, "realtime window not loaded yet");
            break;
        }
        proto_notification_t items[PROTO_LIMIT_MAX];
        proto_reply_t rep = {.status = PROTO_ST_OK, .list = true, .items = items};
        rep.nitems = realtime_query(nt->rt, req->user_id, req->before, req->limit, clock_wall_ms(), items, &rep.unread_count);
        rpc_call_reply(call, &rep);
    } break;
    case PROTO_OP_WATCH:
        if (!stream_reader_is_loaded(nt->reader)) {
            rpc_call_reply_error(call, PROTO_ST_UNAVAILABLE, "realtime window not loaded yet");
            break;
        }
        if (nt->draining) {
            /* a WATCH already on its way when the drain began: held, it would keep the drain waiting (and outlive it) */
            proto_request_t now = *req;
            now.wait_ms = 0;
            watch_serve(nt->watch, call, &now);
            break;
        }
        watch_serve(nt->watch, call, req);
        break;
    case PROTO_OP_HEALTH: {
        proto_reply_t rep = {.status = PROTO_ST_OK, .redis_ok = stream_reader_is_live(nt->reader)};
        rpc_call_reply(call, &rep);
    } break;
    default:
        rpc_call_reply_error(call, PROTO_ST_BAD_REQUEST, "operation not served by the notifier");
        break;
    }
}

static void on_sweep(h2o_timeout_entry_t *entry)
{
    notifier_t *nt = H2O_STRUCT_FROM_MEMBER(notifier_t, sweep_entry, entry);
    realtime_expire(nt->rt, clock_wall_ms());
    h2o_timeout_link(nt->loop, &nt->sweep, &nt->sweep_entry);
}

static bool stream_healthy(void *data)
{
    return stream_reader_is_live(data);
}

static void release_watchers(void *data)
{
    notifier_t *nt = data;
    nt->draining = true;
    watch_release_all(nt->watch);
}

static bool stream_loaded(void *data)
{
    return stream_reader_is_loaded(data);
}

int main(int argc, char **argv)
{
    const char *gateway = "tcp://127.0.0.1:7101", *redis_url = "redis://127.0.0.1:6379", *health_file = "";
    int64_t window_s = 300, per_user_cap = 100, total_cap = 1000000, redis_timeout_ms = 1000, concurrency = 256, drain_ms = 5000,
            feed_events = 65536, feed_mib = 64;
    config_option_t options[] = {
        {"gateway", "GATEWAY_URL", CONFIG_STRING, &gateway, 0, 0, "gateway notifier listener(s) to dial, comma-separated nng URLs"},
        {"redis-url", NULL, CONFIG_STRING, &redis_url, 0, 0,
         "Redis holding the event stream: redis://[:password@]host[:port][/db]"},
        {"realtime-window", "REALTIME_WINDOW", CONFIG_INT, &window_s, 1, 86400,
         "seconds a notification stays in the realtime view (if unread)"},
        {"per-user-cap", NULL, CONFIG_INT, &per_user_cap, 1, 100000, "most notifications held per user (oldest dropped first)"},
        {"max-entries", NULL, CONFIG_INT, &total_cap, 1, 100000000, "most notifications held in all (oldest dropped first)"},
        {"feed-events", NULL, CONFIG_INT, &feed_events, 1, 10000000,
         "notifications kept for gateways' live feeds (a gateway further behind resyncs from history)"},
        {"feed-mib", NULL, CONFIG_INT, &feed_mib, 1, 65536, "memory bound of that feed, MiB"},
        {"redis-timeout-ms", NULL, CONFIG_INT, &redis_timeout_ms, 10, 60000, "deadline of one Redis command"},
        {"concurrency", NULL, CONFIG_INT, &concurrency, 1, 65536, "requests served at once (nng contexts)"},
        {"drain-ms", NULL, CONFIG_INT, &drain_ms, 0, 600000, "on SIGTERM, how long to finish requests in flight"},
        {"health-file", NULL, CONFIG_STRING, &health_file, 0, 0,
         "file rewritten every second while healthy (for container health checks)"},
        {NULL}};

    int exit_code = config_init_process(
        "notifier", "Holds the realtime view of notifications and serves it to the gateway over nng.", options, argc, argv);
    if (exit_code >= 0)
        return exit_code;
    worker_block_signals();

    notifier_t nt = {0};
    nt.loop = h2o_evloop_create();
    nt.rt = realtime_create(window_s * 1000, (size_t)per_user_cap, (size_t)total_cap);
    nt.watch = watch_create(nt.loop, (size_t)feed_events, (size_t)feed_mib * 1024 * 1024);
    nt.reader = stream_reader_create(nt.loop, nt.rt, nt.watch, window_s * 1000, 2000);
    redis_client_t *rc =
        redis_client_create(nt.loop, redis_url, "stream", (uint32_t)redis_timeout_ms, stream_reader_on_connect, nt.reader);
    if (rc == NULL)
        return 2;
    h2o_timeout_init(nt.loop, &nt.sweep, 1000);
    nt.sweep_entry.cb = on_sweep;
    h2o_timeout_link(nt.loop, &nt.sweep, &nt.sweep_entry);

    /* join the gateway's pool once the window is loaded (or after the Redis deadline anyway, answering "unavailable"
     * until it is): otherwise the first answers of a new replica would miss realtime notifications */
    worker_wait_ready(nt.loop, stream_loaded, nt.reader, (uint32_t)redis_timeout_ms);

    char identity[128];
    rpc_identity(identity, sizeof(identity), "notifier");
    rpc_server_t *server = rpc_server_create(nt.loop, gateway, (unsigned)concurrency, identity, on_request, &nt);
    if (server == NULL)
        return 2;
    rpc_server_on_drain(server, release_watchers, &nt);
    log_info("notifier started", "identity=%s gateway=%s redis=%s window_s=%d per_user_cap=%d", identity, gateway, redis_url,
             (int)window_s, (int)per_user_cap);

    worker_run(nt.loop, server, (uint32_t)drain_ms, health_file, stream_healthy, nt.reader);

    /* nothing is held after the drain (see on_request); if anything were, it must be answered while its call exists:
     * watch_destroy below would answer it after rpc_server_destroy freed the call */
    watch_release_all(nt.watch);
    if (rpc_server_destroy(server) != 0) {
        /* requests in flight were answered; only the socket's teardown is stuck */
        log_info("notifier stopped", "nng_close=stuck");
        return 0;
    }
    redis_client_destroy(rc);
    h2o_timeout_unlink(&nt.sweep_entry);
    h2o_timeout_dispose(nt.loop, &nt.sweep);
    stream_reader_destroy(nt.reader);
    watch_destroy(nt.watch);
    realtime_destroy(nt.rt);
    h2o_evloop_destroy(nt.loop);
    log_info("notifier stopped", NULL);
    return 0;
}

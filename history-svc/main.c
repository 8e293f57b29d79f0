/*
 * history-svc: persists every notification in Redis and serves pages of a user's history, newest first, with
 * read/unread state. Stateless: run as many replicas as you like; each dials in to the gateway.
 */
#include <stdio.h>
#include <stdlib.h>
#include "config.h"
#include "log.h"
#include "redis_client.h"
#include "rpc_server.h"
#include "store.h"
#include "worker.h"

static void on_store_done(proto_reply_t *rep, void *data)
{
    rpc_call_t *call = data;
    rpc_call_reply(call, rep);
}

static void on_request(rpc_call_t *call, const proto_request_t *req, void *data)
{
    history_store_execute(data, req, on_store_done, call);
}

static bool redis_healthy(void *data)
{
    return redis_client_is_connected(data);
}

int main(int argc, char **argv)
{
    const char *gateway = "tcp://127.0.0.1:7102", *redis_url = "redis://127.0.0.1:6379", *health_file = "";
    int64_t redis_timeout_ms = 1000, concurrency = 256, retention_s = 3600, drain_ms = 5000;
    config_option_t options[] = {
        {"gateway", "GATEWAY_URL", CONFIG_STRING, &gateway, 0, 0, "gateway history listener(s) to dial, comma-separated nng URLs"},
        {"redis-url", NULL, CONFIG_STRING, &redis_url, 0, 0, "Redis to persist to: redis://[:password@]host[:port][/db]"},
        {"redis-timeout-ms", NULL, CONFIG_INT, &redis_timeout_ms, 10, 60000, "deadline of one Redis command"},
        {"concurrency", NULL, CONFIG_INT, &concurrency, 1, 65536, "requests served at once (nng contexts)"},
        {"stream-retention", NULL, CONFIG_INT, &retention_s, 60, 86400 * 30,
         "seconds of events kept in the stream the notifiers read (must cover their REALTIME_WINDOW)"},
        {"drain-ms", NULL, CONFIG_INT, &drain_ms, 0, 600000, "on SIGTERM, how long to finish requests in flight"},
        {"health-file", NULL, CONFIG_STRING, &health_file, 0, 0,
         "file rewritten every second while healthy (for container health checks)"},
        {NULL}};

    int exit_code = config_init_process(
        "history-svc", "Persists notification history in Redis and serves it to the gateway over nng.", options, argc, argv);
    if (exit_code >= 0)
        return exit_code;
    worker_block_signals();

    h2o_loop_t *loop = h2o_evloop_create();
    redis_client_t *rc = redis_client_create(loop, redis_url, "history", (uint32_t)redis_timeout_ms, NULL, NULL);
    if (rc == NULL)
        return 2;
    history_store_t *store = history_store_create(rc, retention_s * 1000);

    /* join the gateway's pool once Redis answers (or after its deadline anyway) */
    worker_wait_ready(loop, redis_healthy, rc, (uint32_t)redis_timeout_ms);

    char identity[128];
    rpc_identity(identity, sizeof(identity), "history-svc");
    rpc_server_t *server = rpc_server_create(loop, gateway, (unsigned)concurrency, identity, on_request, store);
    if (server == NULL)
        return 2;
    log_info("history-svc started", "identity=%s gateway=%s redis=%s concurrency=%d", identity, gateway, redis_url,
             (int)concurrency);

    worker_run(loop, server, (uint32_t)drain_ms, health_file, redis_healthy, rc);

    if (rpc_server_destroy(server) != 0) {
        /* requests in flight were answered; only the socket's teardown is stuck */
        log_info("history-svc stopped", "nng_close=stuck");
        return 0;
    }
    redis_client_destroy(rc);
    history_store_destroy(store);
    h2o_evloop_destroy(loop);
    log_info("history-svc stopped", NULL);
    return 0;
}

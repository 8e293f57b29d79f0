/*
 * What the worker processes (notifier, history-svc) share around their loop: signal handling and a graceful stop.
 * Main thread only.
 */
#ifndef NOTIGATE_WORKER_H
#define NOTIGATE_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include "rpc_server.h"

/* Blocks SIGINT and SIGTERM in the calling thread (and so in every thread created after it, nng's included) and
 * ignores SIGPIPE. Call first thing in main. */
void worker_block_signals(void);

/* Says whether the worker can do its job now (e.g. its Redis connection is up). Loop thread. */
typedef bool (*worker_health_cb)(void *data);

/* Runs loop until ready(data) holds or timeout_ms passes. Before rpc_server_create, so that a replica joins the
 * gateway's pool only once it can serve (a replica that cannot would fail requests others could answer). */
void worker_wait_ready(h2o_loop_t *loop, worker_health_cb ready, void *data, uint32_t timeout_ms);

/* Runs loop until SIGTERM or SIGINT, then stops taking requests from server, keeps running until the calls being
 * served are answered (at most drain_ms), and returns. The caller then destroys what it made.
 * Healthy means connected to at least one gateway and healthy(data). If health_file is not empty, it is rewritten
 * every second while healthy and removed while not (and on exit), for container health checks: "healthy" means the
 * file is younger than a few seconds. While no gateway is connected, a warning is logged every 10 s. */
void worker_run(h2o_loop_t *loop, rpc_server_t *server, uint32_t drain_ms, const char *health_file, worker_health_cb healthy,
                void *data);

#endif

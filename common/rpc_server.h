/*
 * The worker side of the gateway <-> worker hop: an nng REP socket that dials in to the gateway's listener(s), with
 * a fixed pool of contexts so that many requests are served at once, and every request handed to the worker's h2o
 * evloop thread.
 *
 * Workers dial the gateway (not the other way round), so replicas come and go without the gateway's configuration
 * changing; nng's REQ side spreads requests over whichever replicas are connected.
 *
 * Threads: nng completes receives and sends on its own threads; those callbacks only move calls between states and
 * post them to the loop. The request callback, rpc_call_reply* and everything else here run on the loop thread.
 */
#ifndef NOTIGATE_RPC_SERVER_H
#define NOTIGATE_RPC_SERVER_H

#define H2O_USE_LIBUV 0
#include <h2o/socket.h>
#include <h2o/timeout.h>
#include <stdbool.h>
#include "proto.h"

typedef struct st_rpc_server_t rpc_server_t;
typedef struct st_rpc_call_t rpc_call_t;

/* Called on the loop thread for each well-formed request. The worker must answer the call exactly once with
 * rpc_call_reply or rpc_call_reply_error, now or later. req's strings point into the request frame, which stays
 * alive until the call is answered. Malformed or wrong-version requests are answered by the server itself. */
typedef void (*rpc_request_cb)(rpc_call_t *call, const proto_request_t *req, void *data);

/* Opens the REP socket, dials every URL in the comma-separated list dial_urls (retrying until they answer) and
 * starts `concurrency` contexts. identity (copied) is sent as "by" in every reply. Returns NULL on a bad URL. */
rpc_server_t *rpc_server_create(h2o_loop_t *loop, const char *dial_urls, unsigned concurrency, const char *identity,
                                rpc_request_cb cb, void *data);

/* Encodes rep (with this worker's identity) and sends it; ends the call. */
void rpc_call_reply(rpc_call_t *call, proto_reply_t *rep);

/* Answers with a bare status and reason; ends the call. */
void rpc_call_reply_error(rpc_call_t *call, proto_status_t status, const char *reason);

/* Stops taking new requests; calls being served still get their answers. Requests the gateway already queued to
 * this replica but that were not yet taken are resent by the gateway to another replica once the socket closes. */
void rpc_server_drain(rpc_server_t *server);

/* Sets a callback run by rpc_server_drain, on the loop thread, for the worker to answer calls it holds (long polls). */
void rpc_server_on_drain(rpc_server_t *server, void (*cb)(void *data), void *data);

/* Number of calls taken and not yet fully answered. After rpc_server_drain, 0 means it is safe to destroy. */
unsigned rpc_server_busy(rpc_server_t *server);

/* Closes the socket and frees everything. Loop thread; after this the loop must not run the server's messages.
 * Returns 0, or -1 if nng_close did not return in time (see nng_close.h): then nothing is freed and the caller should
 * exit without touching nng again. */
int rpc_server_destroy(rpc_server_t *server);

/* Gateways this worker is connected to now (any thread). */
unsigned rpc_server_gateways(rpc_server_t *server);

/* Identity of this worker, "<kind>@<hostname>:<pid>", written into buf. */
void rpc_identity(char *buf, size_t bufsz, const char *kind);

#endif

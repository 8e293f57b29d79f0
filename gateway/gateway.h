/*
 * The gateway process: N loop threads, each with its own h2o context, listening socket (SO_REUSEPORT) and upstream
 * clients; the workers' upstreams and the configuration are shared. The main thread only starts and stops them.
 */
#ifndef NOTIGATE_GATEWAY_H
#define NOTIGATE_GATEWAY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <h2o.h>
#include <h2o/multithread.h>
#include <openssl/ssl.h>
#include "auth.h"
#include "chat.h"
#include "feed.h"
#include "guard.h"
#include "h2_idle.h"
#include "json_out.h"
#include "metrics.h"
#include "route_table.h"
#include "session.h"
#include "upstream.h"

#define AUTH_CACHE_SLOTS 1024 /* tokens remembered per loop thread (auth.h): ~600 KiB, touched only as used */

typedef struct st_gateway_config_t {
    const char *listen;     /* host:port for plain HTTP/1.1 and h2c, or "" */
    const char *tls_listen; /* host:port for TLS (h2 and http/1.1 by ALPN), or "" */
    const char *tls_cert, *tls_key;
    const char *notifier_bind, *history_bind; /* nng URLs workers dial */
    int64_t threads;
    int64_t read_timeout_ms;  /* list, hybrid, readyz: each worker */
    int64_t write_timeout_ms; /* publish and mark read: history-svc */
    int64_t max_inflight;     /* per thread and worker kind */
    int64_t shutdown_timeout_ms;
    /* HTTP/1.1: a request's head and body must have arrived within this of its start (h2o's http1.req_timeout) */
    int64_t http_request_timeout_ms;
    /* HTTP/2: a connection with no request in flight and no bytes arriving is closed after this (h2o's idle_timeout) */
    int64_t http2_idle_timeout_ms;
    int64_t ws_ping_interval_ms; /* WebSocket heartbeat: a ping every interval */
    int64_t ws_ping_timeout_ms;  /* ... and the session closes if nothing came back for interval + timeout */
    int64_t ws_max_message;      /* largest message a client may send */
    int64_t ws_queue_max;        /* bytes queued to one session before it is disconnected as a slow reader */
    int64_t presence_full_max;   /* chat rooms up to this many members: the seed's presence; bigger: capped (chat.h) */
    const char *routes_file;     /* a route table replacing the built-in one, or "" */
    const char *orders_bind;     /* the built-in table's orders kind: the nng URL its replicas dial */
    guard_config_t guard;        /* limits against abuse, CORS */
    const char *jwt_secret_file; /* the HS256 secret (or NOTIGATE_JWT_SECRET), or "" */
    const char *api_keys_file;   /* publisher API keys, one a line, or "" */
    int64_t insecure_no_auth;    /* run without any authentication (no secret) */
} gateway_config_t;

typedef struct st_gateway_t gateway_t;

typedef struct st_gateway_thread_t {
    gateway_t *gw;
    unsigned index;
    pthread_t tid;
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx, tls_accept_ctx;
    int listen_fd, tls_listen_fd; /* opened by gateway_start, watched by the thread; -1 for none */
    h2o_socket_t *listener, *tls_listener;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t control; /* the main thread asks for shutdown through it */
    h2o_multithread_message_t shutdown_msg;
    upstream_client_t *notifier, *history;
    upstream_client_t *routed[ROUTE_KINDS_MAX]; /* the route table's kinds */
    metrics_t metrics;
    json_out_t out;            /* response buffer, reused */
    json_out_t ws_out, ws_one; /* frame buffers of the sessions */
    sessions_t sessions;
    chat_local_t chat;
    h2_idle_t h2idle; /* closes HTTP/2 connections that trickle bytes without requests */
    auth_cache_t *auth_cache; /* tokens this thread verified (auth.h) */
    unsigned pending; /* requests waiting on workers */
    bool shutting_down;
    uint64_t shutdown_at_us;
} gateway_thread_t;

struct st_gateway_t {
    gateway_config_t cfg;
    h2o_globalconf_t h2o_config;
    SSL_CTX *ssl_ctx;
    upstream_t *notifier, *history;
    route_table_t routes;
    upstream_t *routed[ROUTE_KINDS_MAX]; /* one per kind of routes */
    gateway_thread_t *threads;
    unsigned nthreads;
    pthread_barrier_t started; /* the loop threads and gateway_start: every thread is set up */
    pthread_barrier_t stopped; /* the loop threads: none serves requests any more */
    metrics_source_t metrics_source;
    chat_t *chat;
    feed_t *feed;           /* run by thread 0 */
    uint8_t instance_id[8]; /* random per process: the first half of every request id */
    _Atomic uint64_t next_rid;
    int64_t started_at_ms;
    guard_t guard; /* the limits' shared tables */
    auth_keys_t auth; /* auth.secret_len == 0: authentication is off (--insecure-no-auth) */
};

/* ---- authentication (routes.c) --------------------------------------------------------------------------------- */

/* Reads and checks req's credential. Loop thread. */
void gateway_authenticate(gateway_thread_t *thread, h2o_req_t *req, const char *query, size_t query_len, auth_principal_t *a);

/* Checks a token given some other way (Socket.IO's auth.token) and fills a as gateway_authenticate does. */
void gateway_authenticate_token(gateway_thread_t *thread, const char *token, size_t len, auth_principal_t *a);

/* 0 if a may act as user (its token's sub), else the status to answer: 401 (no valid credential) or 403. */
int gateway_auth_check_user(const auth_principal_t *a, const char *user, size_t len);

/* 0 if a is a publisher (API key, or the publish scope), else 401 or 403. */
int gateway_auth_check_publisher(const auth_principal_t *a);

/* 0 if a holds any valid credential (or auth is off), else 401. */
int gateway_auth_check_any(const auth_principal_t *a);

/* Answers the status gateway_auth_check_* gave: 401 with WWW-Authenticate and the reason, or 403 with message. */
void gateway_respond_auth(gateway_thread_t *thread, h2o_req_t *req, route_t route, uint64_t started_us, const auth_principal_t *a,
                          int status, const char *message);

/* server.c: starts the loop threads (listening sockets are opened here, so errors surface before returning).
 * Returns 0, or -1 after logging why. */
int gateway_start(gateway_t *gw);

/* Asks every loop thread to stop accepting, finish what is in flight and exit; waits for them. Each thread frees its
 * own loop and h2o context. Returns 0, or -1 if a thread had to leave its context to the exit (a connection was still
 * open): then the h2o configuration and the TLS context must stay too. Main thread. */
int gateway_stop(gateway_t *gw);

/* routes.c: the h2o handler for every path. */
int gateway_on_req(h2o_handler_t *self, h2o_req_t *req);

/* Answers req with the JSON error {"error":{"code","message"}} and counts it. Loop thread. */
void gateway_respond_error(gateway_thread_t *thread, h2o_req_t *req, route_t route, uint64_t started_us, int status,
                           const char *code, const char *message);

/* Answers req with status, a body of content type ctype (NULL: none) and the headers every answer carries; counts it.
 * Loop thread. */
void gateway_respond(gateway_thread_t *thread, h2o_req_t *req, route_t route, uint64_t started_us, int status, const char *ctype,
                     const char *body, size_t len);

/* A request id for a worker call: this process's random half and a counter. Any thread. */
void gateway_new_rid(gateway_t *gw, uint8_t rid[PROTO_RID_LEN]);

/* The thread that owns req (its h2o context is embedded in the thread). */
static inline gateway_thread_t *gateway_thread_of(h2o_req_t *req)
{
    return H2O_STRUCT_FROM_MEMBER(gateway_thread_t, ctx, req->conn->ctx);
}

#endif

/*
 * The gateway's guard against abuse: the limits (open connections per client address, requests per second per
 * credential, sessions per user, messages per second per session), CORS and the security headers. It keeps its
 * tables in quota.c, shared by every loop thread, and is called from a few hooks: the accept loop (server.c), the
 * start of every request (routes.c), the session's upgrade, CONNECT, messages and end (session.c, socketio.c).
 *
 * What a client sees when a limit is reached is in the README's "Limits" section: a JSON 429 (Retry-After where
 * waiting helps), Socket.IO's CONNECT_ERROR, or an error event on an open WebSocket. Every rejection is counted by kind
 * in /metrics.
 */
#ifndef NOTIGATE_GUARD_H
#define NOTIGATE_GUARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <h2o.h>
#include "auth.h"
#include "http_parse.h"
#include "json_out.h"
#include "quota.h"

typedef struct st_gateway_thread_t gateway_thread_t;

typedef enum en_guard_reject_t {
    GUARD_REJECT_CONNECTIONS = 0, /* over the connections of one address (answered 429, or closed at once) */
    GUARD_REJECT_RATE,            /* over the request rate of a credential or address */
    GUARD_REJECT_SESSIONS,        /* over the sessions of a user */
    GUARD_REJECT_MESSAGES,        /* over the message rate of a session */
    GUARD_REJECT_TABLE_FULL,      /* a table had no room for a new key */
    GUARD_REJECT_CORS,            /* a preflight from an origin not allowed */
    GUARD_REJECT_ORIGIN,          /* a WebSocket upgrade or a write from a foreign origin */
    GUARD_REJECT_COUNT
} guard_reject_t;

/* The limits' settings (0 turns a limit off). */
typedef struct st_guard_config_t {
    int64_t max_conns_per_addr;                /* open connections per client address (IPv4 address, IPv6 /64) */
    int64_t rate_limit, rate_burst;            /* requests per second per credential (or address without one), and the burst */
    int64_t max_sessions_per_user;             /* WebSocket and Socket.IO sessions per user, in the process */
    int64_t ws_message_rate, ws_message_burst; /* messages per second a session may send, and the burst */
    int64_t table_size;                        /* keys each table holds (addresses, credentials, users) */
    const char *cors_origins;                  /* "https://a.example,https://b.example", "*", or "" (same origin only) */
} guard_config_t;

typedef struct st_guard_t {
    guard_config_t cfg;
    uint8_t secret[32]; /* keys the hashes of addresses, credentials and users */
    quota_counts_t *conns, *sessions;
    quota_buckets_t *rates;
    char **origins; /* the allowed origins, lower case */
    size_t norigins;
    bool any_origin; /* "*" is in the list */
    _Atomic uint64_t rejected[GUARD_REJECT_COUNT];
} guard_t;

/* Sets g up from cfg (copied; cors_origins must outlive g). Returns 0, or -1 with a reason in err (a bad origin). Main
 * thread, before the loop threads start. */
int guard_init(guard_t *g, const guard_config_t *cfg, char *err, size_t errsz);
void guard_dispose(guard_t *g);

/* A connection just accepted: counts it for its client address, and ties the count to the socket's close (on_close).
 * Over the limit the connection is marked: each of its requests is answered 429 and an HTTP/1 connection is closed after
 * the answer. Beyond twice the limit (or when the address table is full) it is closed at once. Returns false if sock
 * was closed. Loop thread. */
bool guard_on_accept(guard_t *g, h2o_socket_t *sock);

/* At the start of every request, once its route is known: an over-limit connection, CORS (a preflight is answered here,
 * an allowed foreign origin gets its Access-Control-Allow-* headers), a foreign origin's write or WebSocket upgrade, the
 * request rate (counted under auth's user when it holds a valid token, else under the client address: see guard.c
 * rate_key). Returns true if it answered req (the handler must then leave it alone). Loop thread. */
bool guard_on_req(gateway_thread_t *thread, h2o_req_t *req, route_t route, const char *query, size_t query_len,
                  const auth_principal_t *auth, uint64_t started_us);

/* The key a user's sessions are counted under. Any thread. */
void guard_user_key(const guard_t *g, const char *user, size_t len, quota_key_t *key);

/* Takes one of the sessions of the user of key. Returns 0, -1 if the user has max_sessions_per_user already, -2 if
 * the table is full (each counted in /metrics). Any thread. */
int guard_session_acquire(guard_t *g, const quota_key_t *key);
void guard_session_release(guard_t *g, const quota_key_t *key);

/* A session's message bucket: init when it opens; take for every message it sends (false: over the rate, counted). */
void guard_message_init(guard_t *g, quota_bucket_t *b);
bool guard_message_take(guard_t *g, quota_bucket_t *b);

/* The demo page's security headers (CSP with connect-src to this origin's ws/wss, nosniff, no referrer, no framing). */
void guard_page_headers(h2o_req_t *req);

/* Counts one rejection of kind. Any thread. */
void guard_count(guard_t *g, guard_reject_t kind);

/* Frees refilled rate buckets, a slice of the table a call (a full pass every 16 calls). Call about once a second. */
void guard_sweep(guard_t *g);

/* The guard's Prometheus series: rejections by kind, entries of each table. Any thread. */
void guard_render(guard_t *g, json_out_t *out);

#endif

#include <ctype.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include "clock.h"
#include "gateway.h"
#include "guard.h"
#include "log.h"
#include "strmap.h"

#define PREFLIGHT_MAX_AGE "600"
#define ALLOW_METHODS "GET, POST, OPTIONS"
#define ALLOW_HEADERS "Authorization, Content-Type, Idempotency-Key"
#define EXPOSE_HEADERS "Retry-After, X-Partial"
#define SWEEP_SLICES 16

static const char *reject_names[GUARD_REJECT_COUNT] = {"connections", "rate", "sessions", "messages",
                                                       "table_full",  "cors", "origin"};

/* One accepted connection, tied to its socket's close. */
typedef struct st_guard_conn_t {
    guard_t *guard;
    quota_key_t key;
    bool counted; /* holds one of its address's connections */
    bool over;    /* over the limit: its requests get 429 */
} guard_conn_t;

void guard_count(guard_t *g, guard_reject_t kind)
{
    atomic_fetch_add_explicit(&g->rejected[kind], 1, memory_order_relaxed);
}

/* ---- keys ------------------------------------------------------------------------------------------------------- */

/* A key for (tag, bytes): two SipHash values under the process's secret (the tag mixed into each half's key), so that
 * keys spread evenly over the tables and no client can aim at a slot or at another client's key. */
static void make_key(const guard_t *g, char tag, const void *bytes, size_t len, quota_key_t *key)
{
    uint64_t k[4], t = (uint64_t)(unsigned char)tag;
    memcpy(k, g->secret, sizeof(k));
    uint64_t h0 = strmap_hash(bytes, len, k[0] ^ t, k[1]), h1 = strmap_hash(bytes, len, k[2] ^ t, k[3]);
    memcpy(key->b, &h0, 8);
    memcpy(key->b + 8, &h1, 8);
}

/* The client address as a key: an IPv4 address, or the /64 of an IPv6 one (an IPv4-mapped IPv6 address is its IPv4
 * address). Returns false for an address of another family (none are served). */
static bool address_key(const guard_t *g, const struct sockaddr *sa, socklen_t salen, quota_key_t *key)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (salen >= sizeof(struct sockaddr_in) && sa->sa_family == AF_INET) {
        make_key(g, '4', &((const struct sockaddr_in *)sa)->sin_addr, 4, key);
        return true;
    }
    if (salen >= sizeof(struct sockaddr_in6) && sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (memcmp(a, mapped, sizeof(mapped)) == 0)
            make_key(g, '4', a + 12, 4, key);
        else
            make_key(g, '6', a, 8, key);
        return true;
    }
    return false;
}

/* The request's credential: the Authorization Bearer value, else the token query parameter. Returns its length (0:
 * none); *value points into req or into buf. */
static size_t request_credential(h2o_req_t *req, const char *query, size_t query_len, char *buf, size_t bufsz, const char **value)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i != -1) {
        h2o_iovec_t v = req->headers.entries[i].value;
        if (v.len > 7 && h2o_lcstris(v.base, 7, H2O_STRLIT("bearer "))) {
            *value = v.base + 7;
            return v.len - 7;
        }
    }
    int n = query_get(query, query_len, "token", buf, bufsz);
    if (n > 0) {
        *value = buf;
        return (size_t)n;
    }
    return 0;
}

/* The key a request's rate is limited by. With authentication on: a valid token's user (all of a user's tokens share
 * one bucket), a valid API key, else the client address (an invalid or made-up credential gets no bucket of its own).
 * With it off: the credential as sent, else the client address. Returns false if there is none. */
static bool rate_key(const guard_t *g, h2o_req_t *req, const char *query, size_t query_len, const auth_principal_t *auth,
                     quota_key_t *key)
{
    char buf[4096];
    const char *cred;
    if (auth != NULL && !auth->off && auth->valid && !auth->api_key) {
        make_key(g, 's', auth->claims.sub, auth->claims.sub_len, key);
        return true;
    }
    if (auth == NULL || auth->off || auth->valid) {
        size_t cred_len = request_credential(req, query, query_len, buf, sizeof(buf), &cred);
        if (cred_len != 0) {
            make_key(g, 't', cred, cred_len, key);
            return true;
        }
    }
    struct sockaddr_storage ss;
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    return len != 0 && address_key(g, (struct sockaddr *)&ss, len, key);
}

/* ---- setup ------------------------------------------------------------------------------------------------------ */

/* Checks one origin of --cors-origins: "*" or scheme://host[:port], nothing after. */
static bool valid_origin(const char *s, size_t len)
{
    if (len == 1 && s[0] == '*')
        return true;
    size_t skip = len > 7 && strncmp(s, "http://", 7) == 0 ? 7 : (len > 8 && strncmp(s, "https://", 8) == 0 ? 8 : 0);
    if (skip == 0)
        return false;
    for (size_t i = skip; i < len; ++i)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '.' || s[i] == '-' || s[i] == ':' || s[i] == '[' || s[i] == ']'))
            return false;
    return true;
}

int guard_init(guard_t *g, const guard_config_t *cfg, char *err, size_t errsz)
{
    memset(g, 0, sizeof(*g));
    g->cfg = *cfg;
    if (getrandom(g->secret, sizeof(g->secret), 0) != (ssize_t)sizeof(g->secret)) {
        snprintf(err, errsz, "getrandom failed");
        return -1;
    }
    for (const char *p = cfg->cors_origins; *p != '\0';) {
        const char *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && isspace((unsigned char)*a))
            ++a;
        while (b > a && (isspace((unsigned char)b[-1]) || b[-1] == '/'))
            --b;
        if (a < b) {
            if (!valid_origin(a, (size_t)(b - a)) || (size_t)(b - a) > 255) {
                snprintf(err, errsz, "--cors-origins: \"%.*s\" is not an origin (scheme://host[:port]) or *",
                         (int)(b - a > 200 ? 200 : b - a), a);
                guard_dispose(g);
                return -1;
            }
            if (b - a == 1 && *a == '*')
                g->any_origin = true;
            if ((g->origins = realloc(g->origins, (g->norigins + 1) * sizeof(*g->origins))) == NULL)
                abort();
            char *o = h2o_mem_alloc((size_t)(b - a) + 1);
            for (size_t i = 0; i < (size_t)(b - a); ++i)
                o[i] = (char)tolower((unsigned char)a[i]);
            o[b - a] = '\0';
            g->origins[g->norigins++] = o;
        }
        p = *end == ',' ? end + 1 : end;
    }
    size_t cap = (size_t)cfg->table_size;
    g->conns = quota_counts_create(cap);
    g->sessions = quota_counts_create(cap);
    if (cfg->rate_limit > 0)
        g->rates =
            quota_buckets_create(cap, (double)cfg->rate_limit, (double)(cfg->rate_burst > 0 ? cfg->rate_burst : cfg->rate_limit));
    return 0;
}

void guard_dispose(guard_t *g)
{
    for (size_t i = 0; i < g->norigins; ++i)
        free(g->origins[i]);
    free(g->origins);
    quota_counts_destroy(g->conns);
    quota_counts_destroy(g->sessions);
    quota_buckets_destroy(g->rates);
    g->origins = NULL;
    g->norigins = 0;
    g->conns = g->sessions = NULL;
    g->rates = NULL;
}

/* ---- connections ------------------------------------------------------------------------------------------------ */

static void on_conn_close(void *data)
{
    guard_conn_t *c = data;
    if (c->counted)
        quota_counts_release(c->guard->conns, &c->key);
    free(c);
}

bool guard_on_accept(guard_t *g, h2o_socket_t *sock)
{
    uint32_t max = (uint32_t)g->cfg.max_conns_per_addr, count = 0;
    if (max == 0)
        return true;
    struct sockaddr_storage ss;
    socklen_t len = h2o_socket_getpeername(sock, (struct sockaddr *)&ss);
    quota_key_t key;
    if (len == 0 || !address_key(g, (struct sockaddr *)&ss, len, &key))
        return true;
    /* up to twice the limit the connection is counted and each request gets a 429 that says why; beyond, it costs
     * nothing more than an accept */
    quota_result_t rv = quota_counts_acquire(g->conns, &key, 2 * max, &count);
    if (rv != QUOTA_OK) {
        guard_count(g, rv == QUOTA_FULL ? GUARD_REJECT_TABLE_FULL : GUARD_REJECT_CONNECTIONS);
        char host[NI_MAXHOST] = "?";
        if (h2o_socket_getnumerichost((struct sockaddr *)&ss, len, host) == SIZE_MAX)
            strcpy(host, "?");
        log_warn(rv == QUOTA_FULL ? "connection closed: the address table is full"
                                  : "connection closed: far over the limit per address",
                 "addr=%s limit=%" PRIu32, host, max);
        h2o_socket_close(sock);
        return false;
    }
    guard_conn_t *c = h2o_mem_alloc(sizeof(*c));
    *c = (guard_conn_t){.guard = g, .key = key, .counted = true, .over = count > max};
    sock->on_close.cb = on_conn_close;
    sock->on_close.data = c;
    return true;
}

/* The guard's record of the request's connection, or NULL. */
static guard_conn_t *conn_of(h2o_req_t *req)
{
    if (req->conn->callbacks->get_socket == NULL)
        return NULL;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    return sock != NULL && sock->on_close.cb == on_conn_close ? sock->on_close.data : NULL;
}

/* ---- CORS ------------------------------------------------------------------------------------------------------- */

/* The length of "scheme://host[:port]" without a default port (:80 for http, :443 for https). */
static size_t strip_default_port(const char *s, size_t len, bool https)
{
    const char *port = https ? ":443" : ":80";
    size_t plen = strlen(port);
    if (len > plen && memcmp(s + len - plen, port, plen) == 0)
        return len - plen;
    return len;
}

/* True if origin is the origin the request was sent to (its scheme and Host). */
static bool same_origin(h2o_req_t *req, h2o_iovec_t origin)
{
    h2o_iovec_t scheme = req->input.scheme->name, host = req->input.authority;
    bool https = scheme.len == 5;
    if (origin.len < scheme.len + 3 || !h2o_lcstris(origin.base, scheme.len, scheme.base, scheme.len) ||
        memcmp(origin.base + scheme.len, "://", 3) != 0)
        return false;
    const char *o = origin.base + scheme.len + 3;
    size_t olen = strip_default_port(o, origin.len - scheme.len - 3, https), hlen = strip_default_port(host.base, host.len, https);
    return olen == hlen && h2o_lcstris(o, olen, host.base, hlen);
}

static bool allowed_origin(const guard_t *g, h2o_iovec_t origin)
{
    if (g->any_origin)
        return true;
    for (size_t i = 0; i < g->norigins; ++i)
        if (h2o_lcstris(origin.base, origin.len, g->origins[i], strlen(g->origins[i])))
            return true;
    return false;
}

static void add_header(h2o_req_t *req, const char *name, size_t name_len, const char *value, size_t value_len)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, name_len, 0, NULL, value, value_len);
}

static void add_allow_origin(h2o_req_t *req, h2o_iovec_t origin)
{
    h2o_iovec_t copy = h2o_strdup(&req->pool, origin.base, origin.len);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCESS_CONTROL_ALLOW_ORIGIN, NULL, copy.base, copy.len);
}

/* Answers a CORS preflight (OPTIONS with Origin and Access-Control-Request-Method). */
static void answer_preflight(gateway_thread_t *thread, h2o_req_t *req, route_t route, h2o_iovec_t origin, bool allowed,
                             uint64_t started_us)
{
    guard_t *g = &thread->gw->guard;
    if (!allowed) {
        guard_count(g, GUARD_REJECT_CORS);
        gateway_respond_error(thread, req, route, started_us, 403, "cors_forbidden",
                              "this origin may not call the API: it is not in the gateway's --cors-origins");
        return;
    }
    add_allow_origin(req, origin);
    add_header(req, H2O_STRLIT("access-control-allow-methods"), H2O_STRLIT(ALLOW_METHODS));
    add_header(req, H2O_STRLIT("access-control-allow-headers"), H2O_STRLIT(ALLOW_HEADERS));
    add_header(req, H2O_STRLIT("access-control-max-age"), H2O_STRLIT(PREFLIGHT_MAX_AGE));
    gateway_respond(thread, req, route, started_us, 204, NULL, "", 0);
}

/* ---- requests --------------------------------------------------------------------------------------------------- */

static void add_retry_after(h2o_req_t *req, uint64_t retry_after_us)
{
    uint64_t secs = (retry_after_us + 999999) / 1000000;
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%" PRIu64, secs < 1 ? 1 : secs);
    h2o_iovec_t v = h2o_strdup(&req->pool, buf, (size_t)n);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, v.base, v.len);
}

bool guard_on_req(gateway_thread_t *thread, h2o_req_t *req, route_t route, const char *query, size_t query_len,
                  const auth_principal_t *auth, uint64_t started_us)
{
    guard_t *g = &thread->gw->guard;
    guard_conn_t *conn = conn_of(req);
    if (conn != NULL && conn->over) {
        guard_count(g, GUARD_REJECT_CONNECTIONS);
        req->http1_is_persistent = 0; /* HTTP/1: closed after this answer */
        add_retry_after(req, 1000000);
        char msg[160];
        snprintf(msg, sizeof(msg), "too many connections from your address (the limit is %" PRId64 "): close some and retry",
                 g->cfg.max_conns_per_addr);
        gateway_respond_error(thread, req, route, started_us, 429, "too_many_connections", msg);
        return true;
    }

    ssize_t oi = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
    if (oi != -1) {
        h2o_iovec_t origin = req->headers.entries[oi].value;
        bool same = same_origin(req, origin), allowed = same || allowed_origin(g, origin);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL, H2O_STRLIT("Origin"));
        if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("OPTIONS")) &&
            h2o_find_header_by_str(&req->headers, H2O_STRLIT("access-control-request-method"), -1) != -1) {
            answer_preflight(thread, req, route, origin, allowed, started_us);
            return true;
        }
        bool safe = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
                    h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
        bool upgrade = route == ROUTE_WS || route == ROUTE_SOCKETIO;
        if (!allowed && (upgrade || !safe)) {
            /* a page of another site would act with the user's network position (cross-site WebSocket hijacking, a
             * form's POST): only the origins allowed may */
            guard_count(g, GUARD_REJECT_ORIGIN);
            char msg[200];
            snprintf(msg, sizeof(msg), "requests from the origin %.*s are not allowed: it is not this site nor in --cors-origins",
                     (int)(origin.len > 100 ? 100 : origin.len), origin.base);
            gateway_respond_error(thread, req, route, started_us, 403, "origin_forbidden", msg);
            return true;
        }
        if (allowed && !same) {
            add_allow_origin(req, origin);
            add_header(req, H2O_STRLIT("access-control-expose-headers"), H2O_STRLIT(EXPOSE_HEADERS));
        }
    }

    if (g->rates != NULL && route != ROUTE_HEALTHZ && route != ROUTE_READYZ && route != ROUTE_METRICS) {
        quota_key_t key;
        uint64_t retry_after_us = 0;
        quota_result_t rv = rate_key(g, req, query, query_len, auth, &key)
                                ? quota_buckets_take(g->rates, &key, clock_mono_us(), &retry_after_us)
                                : QUOTA_OK;
        if (rv != QUOTA_OK) {
            guard_count(g, rv == QUOTA_FULL ? GUARD_REJECT_TABLE_FULL : GUARD_REJECT_RATE);
            add_retry_after(req, retry_after_us);
            char msg[160];
            snprintf(msg, sizeof(msg),
                     "too many requests: at most %" PRId64 " a second (bursts of %" PRId64 "); retry after the Retry-After seconds",
                     g->cfg.rate_limit, g->cfg.rate_burst > 0 ? g->cfg.rate_burst : g->cfg.rate_limit);
            gateway_respond_error(thread, req, route, started_us, 429, "rate_limited", msg);
            return true;
        }
    }
    return false;
}

/* ---- sessions --------------------------------------------------------------------------------------------------- */

void guard_user_key(const guard_t *g, const char *user, size_t len, quota_key_t *key)
{
    make_key(g, 'u', user, len, key);
}

int guard_session_acquire(guard_t *g, const quota_key_t *key)
{
    if (g->cfg.max_sessions_per_user == 0)
        return 0;
    quota_result_t rv = quota_counts_acquire(g->sessions, key, (uint32_t)g->cfg.max_sessions_per_user, NULL);
    if (rv == QUOTA_OK)
        return 0;
    guard_count(g, rv == QUOTA_FULL ? GUARD_REJECT_TABLE_FULL : GUARD_REJECT_SESSIONS);
    return rv == QUOTA_FULL ? -2 : -1;
}

void guard_session_release(guard_t *g, const quota_key_t *key)
{
    if (g->cfg.max_sessions_per_user != 0)
        quota_counts_release(g->sessions, key);
}

void guard_message_init(guard_t *g, quota_bucket_t *b)
{
    quota_bucket_init(b, (double)(g->cfg.ws_message_burst > 0 ? g->cfg.ws_message_burst : g->cfg.ws_message_rate), clock_mono_us());
}

bool guard_message_take(guard_t *g, quota_bucket_t *b)
{
    if (g->cfg.ws_message_rate == 0)
        return true;
    double burst = (double)(g->cfg.ws_message_burst > 0 ? g->cfg.ws_message_burst : g->cfg.ws_message_rate);
    if (quota_bucket_take(b, (double)g->cfg.ws_message_rate, burst, clock_mono_us(), NULL))
        return true;
    guard_count(g, GUARD_REJECT_MESSAGES);
    return false;
}

/* ---- headers, upkeep, metrics ----------------------------------------------------------------------------------- */

void guard_page_headers(h2o_req_t *req)
{
    /* connect-src 'self' covers ws(s) to the same host in CSP 3 browsers; older ones need the ws(s) origin spelled
     * out, taken from Host when it is a plain host[:port] */
    h2o_iovec_t host = req->input.authority;
    bool plain = host.len != 0 && host.len <= 255;
    for (size_t i = 0; plain && i < host.len; ++i)
        plain = isalnum((unsigned char)host.base[i]) || host.base[i] == '.' || host.base[i] == '-' || host.base[i] == ':' ||
                host.base[i] == '[' || host.base[i] == ']';
    char csp[640];
    int n = snprintf(csp, sizeof(csp),
                     "default-src 'none'; script-src 'self'; connect-src 'self'%s%.*s; style-src 'unsafe-inline'; "
                     "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
                     plain ? (req->input.scheme->name.len == 5 ? " wss://" : " ws://") : "", plain ? (int)host.len : 0,
                     plain ? host.base : "");
    h2o_iovec_t v = h2o_strdup(&req->pool, csp, (size_t)n);
    add_header(req, H2O_STRLIT("content-security-policy"), v.base, v.len);
    add_header(req, H2O_STRLIT("x-frame-options"), H2O_STRLIT("DENY"));
    add_header(req, H2O_STRLIT("referrer-policy"), H2O_STRLIT("no-referrer"));
}

void guard_sweep(guard_t *g)
{
    if (g->rates != NULL)
        quota_buckets_sweep(g->rates, clock_mono_us(), (size_t)(g->cfg.table_size / SWEEP_SLICES) + 1);
}

void guard_render(guard_t *g, json_out_t *out)
{
    char buf[256];
    json_out_cstr(out, "# HELP notigate_limit_rejections_total Requests, connections, sessions and messages refused by a limit "
                       "or the origin checks, by kind.\n# TYPE notigate_limit_rejections_total counter\n");
    for (int k = 0; k < GUARD_REJECT_COUNT; ++k) {
        int n = snprintf(buf, sizeof(buf), "notigate_limit_rejections_total{kind=\"%s\"} %" PRIu64 "\n", reject_names[k],
                         atomic_load_explicit(&g->rejected[k], memory_order_relaxed));
        json_out_raw(out, buf, (size_t)n);
    }
    int n =
        snprintf(buf, sizeof(buf),
                 "# HELP notigate_limit_table_entries Keys held by each limit's table.\n# TYPE notigate_limit_table_entries gauge\n"
                 "notigate_limit_table_entries{table=\"addresses\"} %zu\n"
                 "notigate_limit_table_entries{table=\"users\"} %zu\n"
                 "notigate_limit_table_entries{table=\"rates\"} %zu\n",
                 quota_counts_size(g->conns), quota_counts_size(g->sessions), g->rates != NULL ? quota_buckets_size(g->rates) : 0);
    json_out_raw(out, buf, (size_t)n);
}

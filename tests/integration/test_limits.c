/*
 * The gateway's limits against abuse, CORS and security headers, against a real system: connections per client
 * address, requests per second per credential, WebSocket sessions per user, CORS preflights, foreign-origin WebSocket
 * upgrades, the demo page's headers, and the rejections in /metrics. Requests are written by hand on raw sockets
 * (several on one connection, any headers), each system started with the limits under test set low.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include "harness.h"

static harness_t *sys;

static void own_down(void)
{
    harness_stop_own(&sys);
}

static harness_t *start_with(const char *const *args)
{
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    opts.gateway_args = args;
    opts.no_auth = true; /* the limits on their own, keyed by made-up credentials (token-a...): test_auth.c checks them */
    return sys = harness_start(tcase_name(), &opts);
}

/* ---- raw HTTP/1.1 ------------------------------------------------------------------------------------------------ */

typedef struct {
    int status;
    char head[4096]; /* status line and headers */
    char body[4096];
    bool closed; /* the server closed the connection after the answer */
} raw_resp_t;

static int raw_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s", strerror(errno));
    return fd;
}

/* Reads one answer (headers, and a Content-Length body) within 5 s; a 101 has no body. Then looks (50 ms) whether the
 * server closed the connection, for answers that should close it. */
static void raw_read(int fd, raw_resp_t *r, bool check_close)
{
    char buf[8192];
    size_t n = 0;
    memset(r, 0, sizeof(*r));
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ck_assert_msg(poll(&p, 1, 5000) == 1, "no answer within 5 s (have %zu bytes)", n);
        ssize_t got = read(fd, buf + n, sizeof(buf) - 1 - n);
        ck_assert_msg(got > 0, "connection closed before a whole answer (have %zu bytes: %.*s)", n, (int)n, buf);
        n += (size_t)got;
        buf[n] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end == NULL)
            continue;
        size_t head_len = (size_t)(end - buf) + 4;
        ck_assert(sscanf(buf, "HTTP/1.1 %d", &r->status) == 1);
        size_t clen = 0;
        for (char *l = buf; l < end; l = strstr(l, "\r\n") + 2)
            if (strncasecmp(l, "content-length:", 15) == 0)
                clen = strtoul(l + 15, NULL, 10);
        if (r->status != 101 && n < head_len + clen)
            continue;
        snprintf(r->head, sizeof(r->head), "%.*s", (int)head_len, buf);
        snprintf(r->body, sizeof(r->body), "%.*s", (int)clen, buf + head_len);
        break;
    }
    if (check_close) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        r->closed = poll(&p, 1, 500) == 1 && read(fd, buf, sizeof(buf)) == 0;
    }
}

static void raw_send(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void raw_send(int fd, const char *fmt, ...)
{
    char req[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(req, sizeof(req), fmt, ap);
    va_end(ap);
    ck_assert(n > 0 && (size_t)n < sizeof(req));
    ck_assert_int_eq(write(fd, req, (size_t)n), n);
}

/* One request on a new connection, closed after. extra: more header lines, each ending in \r\n. */
static void raw_once(const char *method, const char *path, const char *extra, raw_resp_t *r)
{
    int fd = raw_connect(sys->http_port);
    raw_send(fd, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n%sContent-Length: 0\r\n\r\n", method, path, sys->http_port, extra);
    raw_read(fd, r, false);
    close(fd);
}

/* The value of header name (lower case) in r, or NULL. */
static const char *header(const raw_resp_t *r, const char *name, char *buf, size_t bufsz)
{
    size_t nlen = strlen(name);
    for (const char *l = r->head; (l = strstr(l, "\r\n")) != NULL;) {
        l += 2;
        if (strncasecmp(l, name, nlen) == 0 && l[nlen] == ':') {
            const char *v = l + nlen + 1, *e = strstr(v, "\r\n");
            while (*v == ' ')
                ++v;
            snprintf(buf, bufsz, "%.*s", (int)(e - v), v);
            return buf;
        }
    }
    return NULL;
}

static void assert_error(const raw_resp_t *r, int status, const char *code)
{
    ck_assert_msg(r->status == status, "expected %d, got %d: %s%s", status, r->status, r->head, r->body);
    char ct[128];
    ck_assert_msg(header(r, "content-type", ct, sizeof(ct)) != NULL && strncmp(ct, "application/json", 16) == 0, "not JSON: %s",
                  r->head);
    json_t *j = json_loads(r->body, 0, NULL);
    json_t *e = json_object_get(j, "error");
    ck_assert_msg(json_is_string(json_object_get(e, "code")) && strcmp(json_string_value(json_object_get(e, "code")), code) == 0 &&
                      json_string_length(json_object_get(e, "message")) > 0,
                  "expected error %s in %s", code, r->body);
    json_decref(j);
}

static double rejections(const char *kind)
{
    char series[128];
    snprintf(series, sizeof(series), "notigate_limit_rejections_total{kind=\"%s\"}", kind);
    return harness_metric(sys, series);
}

/* ---- connections per address ------------------------------------------------------------------------------------- */

/* A connection the gateway answered 200 on (so it is counted and within the limit). The harness's own last connections
 * may not be seen closed yet when a test starts: retries for up to 2 s. */
static int open_within_limit(void)
{
    raw_resp_t r;
    for (int attempt = 0; attempt < 40; ++attempt) {
        int fd = raw_connect(sys->http_port);
        raw_send(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        raw_read(fd, &r, false);
        if (r.status == 200)
            return fd;
        close(fd);
        harness_sleep_ms(50);
    }
    ck_abort_msg("no connection within the limit: %d %s", r.status, r.body);
    return -1;
}

START_TEST(connections_per_address)
{
    static const char *const args[] = {"--max-conns-per-addr", "3", NULL};
    start_with(args);
    raw_resp_t r;
    int fds[3];
    for (int i = 0; i < 3; ++i) /* three open connections, each known to the gateway (it answered on it) */
        fds[i] = open_within_limit();
    int extra = raw_connect(sys->http_port);
    raw_send(extra, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    raw_read(extra, &r, true);
    assert_error(&r, 429, "too_many_connections");
    char v[64];
    ck_assert_msg(header(&r, "retry-after", v, sizeof(v)) != NULL, "no Retry-After: %s", r.head);
    ck_assert_msg(r.closed, "the connection over the limit stayed open");
    close(extra);

    /* the connections within the limit still work */
    raw_send(fds[0], "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    raw_read(fds[0], &r, false);
    ck_assert_int_eq(r.status, 200);

    /* one closes: a new connection gets in (the gateway sees the close soon after) */
    close(fds[1]);
    fds[1] = open_within_limit();

    for (int i = 0; i < 3; ++i)
        close(fds[i]);
    double rejected = -1; /* /metrics itself may be refused until the gateway has seen the closes */
    for (int attempt = 0; attempt < 40 && (rejected = rejections("connections")) < 0; ++attempt)
        harness_sleep_ms(50);
    ck_assert_double_ge(rejected, 1);
    /* every count goes back: once all are closed, only the connection reading /metrics is counted */
    double entries = -1;
    for (int attempt = 0; attempt < 40; ++attempt) {
        if ((entries = harness_metric(sys, "notigate_limit_table_entries{table=\"addresses\"}")) == 1)
            break;
        harness_sleep_ms(50);
    }
    ck_assert_msg(entries == 1, "address table entries: %g, expected 1 (the /metrics request's own)", entries);
}
END_TEST

START_TEST(connections_far_over_closed_at_once)
{
    static const char *const args[] = {"--max-conns-per-addr", "1", NULL};
    start_with(args);
    raw_resp_t r;
    int first = open_within_limit();
    /* the next connection is over the limit (it would get a 429 that says why); beyond twice the limit a connection is
     * closed at once, without an answer. Connections are accepted by two threads in no set order, so keep opening
     * (holding each) until one is closed at once: with the limit at 1 that must be the third at the latest. */
    int held[8], nheld = 0;
    bool closed_at_once = false;
    while (!closed_at_once && nheld < 8) {
        int fd = raw_connect(sys->http_port);
        char buf[64];
        struct pollfd p = {.fd = fd, .events = POLLIN};
        closed_at_once = poll(&p, 1, 1000) == 1 && read(fd, buf, sizeof(buf)) <= 0;
        held[nheld++] = fd;
    }
    ck_assert_msg(closed_at_once, "no connection beyond twice the limit was closed at once");
    ck_assert_msg(nheld <= 2, "%d connections were held open beyond the limit of 1 (at most 1 over it)", nheld - 1);
    raw_send(first, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); /* the one within the limit goes on */
    raw_read(first, &r, false);
    ck_assert_int_eq(r.status, 200);
    for (int i = 0; i < nheld; ++i)
        close(held[i]);
    close(first);
    double rejected = -1; /* /metrics itself may be refused until the gateway has seen the closes */
    for (int attempt = 0; attempt < 40 && (rejected = rejections("connections")) < 0; ++attempt)
        harness_sleep_ms(50);
    ck_assert_double_ge(rejected, 1);
}
END_TEST

/* ---- requests per second per credential -------------------------------------------------------------------------- */

START_TEST(rate_per_token)
{
    static const char *const args[] = {"--rate-limit", "2", "--rate-burst", "4", NULL};
    start_with(args);
    raw_resp_t r;
    const char *path = "/v1/users/rate-user/notifications";
    for (int i = 0; i < 4; ++i) { /* the burst passes */
        raw_once("GET", path, "Authorization: Bearer token-a\r\n", &r);
        ck_assert_msg(r.status == 200, "request %d of the burst: %d %s", i, r.status, r.body);
    }
    raw_once("GET", path, "Authorization: Bearer token-a\r\n", &r);
    assert_error(&r, 429, "rate_limited");
    char v[64];
    ck_assert_msg(header(&r, "retry-after", v, sizeof(v)) != NULL && atoi(v) >= 1, "Retry-After: %s", r.head);
    /* the same credential in the query is the same key */
    raw_once("GET", "/v1/users/rate-user/notifications?token=token-a", "", &r);
    assert_error(&r, 429, "rate_limited");
    /* another credential has a bucket of its own; the operations endpoints are not limited */
    raw_once("GET", path, "Authorization: Bearer token-b\r\n", &r);
    ck_assert_int_eq(r.status, 200);
    raw_once("GET", "/healthz", "Authorization: Bearer token-a\r\n", &r);
    ck_assert_int_eq(r.status, 200);
    /* 2 a second: a token is back within half a second */
    harness_sleep_ms(600);
    raw_once("GET", path, "Authorization: Bearer token-a\r\n", &r);
    ck_assert_msg(r.status == 200, "after the refill: %d %s", r.status, r.body);
    ck_assert_double_ge(rejections("rate"), 2);
}
END_TEST

/* With authentication on, the bucket is the verified user's: made-up or wrongly signed tokens do not each get a fresh
 * bucket (they all count under the client address), and two valid tokens of one user share theirs. */
START_TEST(rate_keyed_by_verified_user)
{
    static const char *const args[] = {"--rate-limit", "1", "--rate-burst", "3", NULL};
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    opts.gateway_args = args;
    sys = harness_start(tcase_name(), &opts);
    raw_resp_t r;
    char hdr[1200], tok[1024];
    /* made-up credentials, a new one each time: 401 while the address's burst lasts, then 429 */
    for (int i = 0; i < 3; ++i) {
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer made-up-%d\r\n", i);
        raw_once("GET", "/v1/users/ratev/notifications", hdr, &r);
        ck_assert_msg(r.status == 401, "made-up token %d: %d %s", i, r.status, r.body);
    }
    raw_once("GET", "/v1/users/ratev/notifications", "Authorization: Bearer made-up-99\r\n", &r);
    assert_error(&r, 429, "rate_limited");
    /* a valid token has its user's bucket, shared by another token of the same user */
    for (int i = 0; i < 3; ++i) {
        harness_token(sys, tok, sizeof(tok), "ratev", NULL, 60 + i); /* different exp: a different token */
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", tok);
        raw_once("GET", "/v1/users/ratev/notifications", hdr, &r);
        ck_assert_msg(r.status == 200, "valid token %d: %d %s", i, r.status, r.body);
    }
    harness_token(sys, tok, sizeof(tok), "ratev", NULL, 120);
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", tok);
    raw_once("GET", "/v1/users/ratev/notifications", hdr, &r);
    assert_error(&r, 429, "rate_limited");
}
END_TEST

START_TEST(rate_per_address_without_token)
{
    static const char *const args[] = {"--rate-limit", "1", "--rate-burst", "2", NULL};
    start_with(args);
    raw_resp_t r;
    raw_once("GET", "/nowhere", "", &r);
    ck_assert_int_eq(r.status, 404);
    raw_once("GET", "/nowhere", "", &r);
    ck_assert_int_eq(r.status, 404);
    raw_once("GET", "/nowhere", "", &r);
    assert_error(&r, 429, "rate_limited");
}
END_TEST

/* ---- sessions per user ------------------------------------------------------------------------------------------- */

static int ws_open(const char *user, const char *origin, raw_resp_t *r)
{
    int fd = raw_connect(sys->http_port);
    raw_send(fd,
             "GET /v1/ws?user_id=%s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s%s%s\r\n",
             user, sys->http_port, origin != NULL ? "Origin: " : "", origin != NULL ? origin : "", origin != NULL ? "\r\n" : "");
    raw_read(fd, r, false);
    return fd;
}

START_TEST(sessions_per_user)
{
    static const char *const args[] = {"--max-sessions-per-user", "2", NULL};
    start_with(args);
    raw_resp_t r;
    char user[64];
    harness_user(user, "sess");
    int a = ws_open(user, NULL, &r);
    ck_assert_int_eq(r.status, 101);
    int b = ws_open(user, NULL, &r);
    ck_assert_int_eq(r.status, 101);
    int c = ws_open(user, NULL, &r);
    assert_error(&r, 429, "too_many_sessions");
    close(c);
    char other[64];
    int d = ws_open(harness_user(other, "sess-other"), NULL, &r); /* another user is not held back */
    ck_assert_int_eq(r.status, 101);
    close(a); /* its session ends: room for one more */
    int status = 0, e = -1;
    for (int attempt = 0; attempt < 40 && status != 101; ++attempt) {
        e = ws_open(user, NULL, &r);
        if ((status = r.status) != 101) {
            close(e);
            harness_sleep_ms(50);
        }
    }
    ck_assert_msg(status == 101, "no session after one closed: %d", status);
    ck_assert_double_ge(rejections("sessions"), 1);
    close(b);
    close(d);
    close(e);
    double entries = -1; /* the counts go back to zero */
    for (int attempt = 0; attempt < 40 && (entries = harness_metric(sys, "notigate_limit_table_entries{table=\"users\"}")) != 0;
         ++attempt)
        harness_sleep_ms(50);
    ck_assert_msg(entries == 0, "user table entries: %g, expected 0", entries);
}
END_TEST

/* ---- CORS and origins -------------------------------------------------------------------------------------------- */

#define PREFLIGHT(origin)                                                                                                          \
    "Origin: " origin "\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization, content-type\r\n"

START_TEST(cors_default_same_origin_only)
{
    start_with(NULL);
    raw_resp_t r;
    char v[512];
    raw_once("OPTIONS", "/v1/notifications", PREFLIGHT("https://evil.example"), &r);
    assert_error(&r, 403, "cors_forbidden");
    ck_assert_msg(header(&r, "access-control-allow-origin", v, sizeof(v)) == NULL, "allow-origin for a foreign origin: %s", r.head);
    /* a foreign origin's GET is answered without Access-Control-Allow-* (the browser keeps it from the page) */
    raw_once("GET", "/v1/users/u1/notifications", "Origin: https://evil.example\r\n", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(header(&r, "access-control-allow-origin", v, sizeof(v)) == NULL);
    /* and its writes are refused (a form posting text/plain needs no preflight) */
    raw_once("POST", "/v1/users/u1/notifications/read", "Origin: https://evil.example\r\n", &r);
    assert_error(&r, 403, "origin_forbidden");
    /* the same origin writes */
    char same[128];
    snprintf(same, sizeof(same), "Origin: http://127.0.0.1:%u\r\n", sys->http_port);
    raw_once("POST", "/v1/users/u1/notifications/read", same, &r);
    ck_assert_msg(r.status == 200, "same-origin write: %d %s", r.status, r.body);
    ck_assert_double_ge(rejections("cors"), 1);
    ck_assert_double_ge(rejections("origin"), 1);
}
END_TEST

START_TEST(cors_allowed_origins)
{
    static const char *const args[] = {"--cors-origins", "https://a.example, https://b.example:8443", NULL};
    start_with(args);
    raw_resp_t r;
    char v[512];
    raw_once("OPTIONS", "/v1/notifications", PREFLIGHT("https://a.example"), &r);
    ck_assert_msg(r.status == 204, "preflight: %d %s", r.status, r.head);
    ck_assert_str_eq(header(&r, "access-control-allow-origin", v, sizeof(v)), "https://a.example");
    ck_assert_ptr_nonnull(strstr(header(&r, "access-control-allow-methods", v, sizeof(v)), "POST"));
    header(&r, "access-control-allow-headers", v, sizeof(v));
    ck_assert_msg(strstr(v, "Authorization") && strstr(v, "Content-Type") && strstr(v, "Idempotency-Key"), "allow-headers: %s", v);
    ck_assert_ptr_nonnull(header(&r, "access-control-max-age", v, sizeof(v)));
    ck_assert_str_eq(header(&r, "vary", v, sizeof(v)), "Origin");
    raw_once("OPTIONS", "/v1/orders", PREFLIGHT("https://b.example:8443"), &r); /* a routed path too */
    ck_assert_int_eq(r.status, 204);
    raw_once("OPTIONS", "/v1/notifications", PREFLIGHT("https://c.example"), &r);
    assert_error(&r, 403, "cors_forbidden");
    raw_once("GET", "/v1/users/u1/notifications", "Origin: https://a.example\r\n", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(header(&r, "access-control-allow-origin", v, sizeof(v)), "https://a.example");
    ck_assert_ptr_nonnull(strstr(header(&r, "access-control-expose-headers", v, sizeof(v)), "Retry-After"));
}
END_TEST

START_TEST(websocket_foreign_origin_refused)
{
    static const char *const args[] = {"--cors-origins", "https://a.example", NULL};
    start_with(args);
    raw_resp_t r;
    int fd = ws_open("origin-user", "https://evil.example", &r);
    assert_error(&r, 403, "origin_forbidden");
    close(fd);
    char same[64];
    snprintf(same, sizeof(same), "http://127.0.0.1:%u", sys->http_port);
    fd = ws_open("origin-user", same, &r);
    ck_assert_int_eq(r.status, 101);
    close(fd);
    fd = ws_open("origin-user", "https://a.example", &r);
    ck_assert_int_eq(r.status, 101);
    close(fd);
    fd = ws_open("origin-user", NULL, &r); /* no Origin: not a browser */
    ck_assert_int_eq(r.status, 101);
    close(fd);
    /* Socket.IO alike */
    fd = raw_connect(sys->http_port);
    raw_send(fd,
             "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
             "Origin: http://127.0.0.1:1\r\n\r\n",
             sys->http_port);
    raw_read(fd, &r, false);
    assert_error(&r, 403, "origin_forbidden");
    close(fd);
}
END_TEST

/* ---- headers ----------------------------------------------------------------------------------------------------- */

START_TEST(security_headers)
{
    start_with(NULL);
    raw_resp_t r;
    char v[1024];
    const char *pages[] = {"/", "/app.js"};
    for (size_t i = 0; i < 2; ++i) {
        raw_once("GET", pages[i], "", &r);
        ck_assert_msg(r.status == 200, "%s: %d", pages[i], r.status);
        ck_assert_msg(header(&r, "content-security-policy", v, sizeof(v)) != NULL, "%s: no CSP", pages[i]);
        ck_assert_msg(strstr(v, "default-src 'none'") && strstr(v, "script-src 'self'") && strstr(v, "connect-src 'self'") &&
                          strstr(v, "frame-ancestors 'none'"),
                      "CSP: %s", v);
        char ws[64];
        snprintf(ws, sizeof(ws), "ws://127.0.0.1:%u", sys->http_port);
        ck_assert_msg(strstr(v, ws) != NULL, "CSP without %s: %s", ws, v);
        ck_assert_str_eq(header(&r, "x-frame-options", v, sizeof(v)), "DENY");
        ck_assert_str_eq(header(&r, "x-content-type-options", v, sizeof(v)), "nosniff");
        ck_assert_str_eq(header(&r, "referrer-policy", v, sizeof(v)), "no-referrer");
    }
    const char *api[] = {"/v1/users/u1/notifications", "/healthz", "/nowhere"};
    for (size_t i = 0; i < 3; ++i) {
        raw_once("GET", api[i], "", &r);
        ck_assert_str_eq(header(&r, "x-content-type-options", v, sizeof(v)), "nosniff");
        ck_assert_str_eq(header(&r, "cache-control", v, sizeof(v)), "no-store");
    }
}
END_TEST

static void add_own(Suite *s, const TTest *test, int timeout_s)
{
    harness_add_own(s, test, timeout_s, own_down);
}

int main(void)
{
    Suite *s = suite_create("integration_limits");
    add_own(s, connections_per_address, 40);
    add_own(s, connections_far_over_closed_at_once, 30);
    add_own(s, rate_per_token, 30);
    add_own(s, rate_per_address_without_token, 30);
    add_own(s, rate_keyed_by_verified_user, 30);
    add_own(s, sessions_per_user, 40);
    add_own(s, cors_default_same_origin_only, 30);
    add_own(s, cors_allowed_origins, 30);
    add_own(s, websocket_foreign_origin_refused, 30);
    add_own(s, security_headers, 30);
    return harness_main(s);
}

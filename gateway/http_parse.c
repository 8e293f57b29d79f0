#include <stdio.h>
#include <string.h>
#include "http_parse.h"
#include "valid.h"

#define SET_ERR(err, st, c, ...)                                                                                                   \
    do {                                                                                                                           \
        (err)->status = (st);                                                                                                      \
        (err)->code = (c);                                                                                                         \
        snprintf((err)->message, sizeof((err)->message), __VA_ARGS__);                                                             \
    } while (0)

static bool eq(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && memcmp(s, lit, n) == 0;
}

int parse_u64(const char *s, size_t len, uint64_t max, uint64_t *v)
{
    uint64_t x = 0;
    if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
        return -1;
    for (size_t i = 0; i < len; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (d > max || x > (max - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

int route_match(const char *path, size_t len, route_match_t *m, api_error_t *err)
{
    memset(m, 0, sizeof(*m));
    if (eq(path, len, "/v1/notifications")) {
        m->route = ROUTE_PUBLISH;
    } else if (eq(path, len, "/hybrid/notifications")) {
        m->route = ROUTE_HYBRID;
    } else if (eq(path, len, "/healthz")) {
        m->route = ROUTE_HEALTHZ;
    } else if (eq(path, len, "/readyz")) {
        m->route = ROUTE_READYZ;
    } else if (eq(path, len, "/metrics")) {
        m->route = ROUTE_METRICS;
    } else if (eq(path, len, "/v1/ws")) {
        m->route = ROUTE_WS;
    } else if (eq(path, len, "/socket.io/") || eq(path, len, "/socket.io")) {
        m->route = ROUTE_SOCKETIO;
    } else if (eq(path, len, "/")) {
        m->route = ROUTE_PAGE;
    } else if (eq(path, len, "/app.js")) {
        m->route = ROUTE_PAGE_JS;
    } else if (len > 10 && memcmp(path, "/v1/users/", 10) == 0) {
        /* /v1/users/{user_id}/notifications[/read | /{id}/read] */
        const char *seg[5], *p = path + 10, *end = path + len;
        size_t seglen[5], nseg = 0;
        for (;;) {
            const char *slash = memchr(p, '/', (size_t)(end - p));
            const char *stop = slash != NULL ? slash : end;
            if (nseg == 5)
                return 0; /* more segments than any route has */
            seg[nseg] = p;
            seglen[nseg++] = (size_t)(stop - p);
            if (slash == NULL)
                break;
            p = slash + 1;
        }
        if (nseg < 2 || nseg > 4 || !eq(seg[1], seglen[1], "notifications"))
            return 0;
        if (nseg == 2) {
            m->route = ROUTE_LIST;
        } else if (nseg == 3 && eq(seg[2], seglen[2], "read")) {
            m->route = ROUTE_MARK_ALL_READ;
        } else if (nseg == 4 && eq(seg[3], seglen[3], "read")) {
            m->route = ROUTE_MARK_READ;
            if (parse_u64(seg[2], seglen[2], UINT64_MAX, &m->id) != 0 || m->id == 0) {
                SET_ERR(err, 400, "invalid_id", "notification id must be a positive integer");
                return -1;
            }
        } else {
            return 0;
        }
        if (!valid_user_id(seg[0], seglen[0])) {
            memset(m, 0, sizeof(*m));
            SET_ERR(err, 400, "invalid_user_id", "user_id must be 1-64 characters of A-Z a-z 0-9 _ . -");
            return -1;
        }
        m->user_id = seg[0];
        m->user_id_len = seglen[0];
    }
    return 0;
}

const char *route_allow(route_t route)
{
    switch (route) {
    case ROUTE_PUBLISH:
    case ROUTE_MARK_READ:
    case ROUTE_MARK_ALL_READ:
        return "POST";
    case ROUTE_NOT_FOUND:
        return "";
    default:
        return "GET, HEAD";
    }
}

bool route_allows(route_t route, const char *method, size_t len)
{
    if (route == ROUTE_NOT_FOUND)
        return false;
    if (strcmp(route_allow(route), "POST") == 0)
        return eq(method, len, "POST");
    return eq(method, len, "GET") || eq(method, len, "HEAD");
}

const char *route_name(route_t route)
{
    static const char *names[] = {"not_found", "publish", "list",    "mark_read", "mark_all_read", "hybrid",
                                  "healthz",   "readyz",  "metrics", "ws",        "socketio",      "page", "page_js", "forward"};
    return (unsigned)route < ROUTE_COUNT ? names[route] : "not_found";
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int query_get(const char *query, size_t len, const char *key, char *buf, size_t bufsz)
{
    size_t keylen = strlen(key);
    const char *p = query, *end = query + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp != NULL ? amp : end;
        const char *eqs = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eqs != NULL ? eqs : stop;
        if ((size_t)(kend - p) == keylen && memcmp(p, key, keylen) == 0) {
            const char *v = eqs != NULL ? eqs + 1 : stop;
            size_t o = 0;
            for (; v < stop; ++v) {
                char c = *v;
                if (c == '%') {
                    int hi, lo;
                    if (stop - v < 3 || (hi = hexval(v[1])) < 0 || (lo = hexval(v[2])) < 0)
                        return -2;
                    c = (char)(hi << 4 | lo);
                    v += 2;
                } else if (c == '+') {
                    c = ' ';
                }
                if (o + 1 >= bufsz)
                    return -2;
                buf[o++] = c;
            }
            buf[o] = '\0';
            if (memchr(buf, '\0', o) != NULL)
                return -2;
            return (int)o;
        }
        p = stop + 1;
    }
    return -1;
}

int list_params_parse(const char *query, size_t len, uint32_t *limit, uint64_t *before, api_error_t *err)
{
    char buf[32];
    int n;
    uint64_t v;

    *limit = 20;
    *before = 0;
    if ((n = query_get(query, len, "limit", buf, sizeof(buf))) != -1) {
        if (n < 0 || parse_u64(buf, (size_t)n, 100, &v) != 0 || v < 1) {
            SET_ERR(err, 400, "invalid_limit", "limit must be an integer from 1 to 100");
            return -1;
        }
        *limit = (uint32_t)v;
    }
    if ((n = query_get(query, len, "before", buf, sizeof(buf))) != -1) {
        if (n < 0 || parse_u64(buf, (size_t)n, UINT64_MAX, &v) != 0 || v < 1) {
            SET_ERR(err, 400, "invalid_cursor", "before must be a notification id (a positive integer) from next_before");
            return -1;
        }
        *before = v;
    }
    return 0;
}

int publish_body_parse(publish_body_t *out, const char *body, size_t len, api_error_t *err)
{
    json_error_t jerr;
    memset(out, 0, sizeof(*out));

    if (len > PUBLISH_BODY_MAX) {
        SET_ERR(err, 413, "payload_too_large", "request body is larger than %d bytes", PUBLISH_BODY_MAX);
        return -1;
    }
    if (len == 0) {
        SET_ERR(err, 400, "invalid_json", "request body must be a JSON object");
        return -1;
    }
    /* jansson rejects invalid UTF-8, NUL in strings, trailing garbage; duplicates are refused to avoid ambiguity */
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        SET_ERR(err, 400, "invalid_json", "invalid JSON at line %d column %d: %.100s", jerr.line, jerr.column, jerr.text);
        return -1;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        SET_ERR(err, 400, "invalid_json", "request body must be a JSON object");
        return -1;
    }
    out->_root = root;

    json_t *user = json_object_get(root, "user_id"), *message = json_object_get(root, "message"),
           *kind = json_object_get(root, "kind");
    if (!json_is_string(user) || !valid_user_id(json_string_value(user), json_string_length(user))) {
        SET_ERR(err, 400, "invalid_user_id", "user_id must be a string of 1-64 characters of A-Z a-z 0-9 _ . -");
        goto Error;
    }
    if (!json_is_string(message) || !valid_message(json_string_value(message), json_string_length(message))) {
        SET_ERR(err, 400, "invalid_message", "message must be a string of 1-%d bytes of UTF-8", VALID_MESSAGE_MAX);
        goto Error;
    }
    if (kind != NULL && !json_is_null(kind) &&
        (!json_is_string(kind) || !valid_kind(json_string_value(kind), json_string_length(kind)))) {
        SET_ERR(err, 400, "invalid_kind", "kind must be a string of 1-%d characters of A-Z a-z 0-9 _ . -", VALID_KIND_MAX);
        goto Error;
    }
    out->user_id = json_string_value(user);
    out->user_id_len = json_string_length(user);
    out->message = json_string_value(message);
    out->message_len = json_string_length(message);
    if (json_is_string(kind)) {
        out->kind = json_string_value(kind);
        out->kind_len = json_string_length(kind);
    } else {
        out->kind = "info";
        out->kind_len = 4;
    }
    return 0;

Error:
    publish_body_dispose(out);
    return -1;
}

void publish_body_dispose(publish_body_t *body)
{
    if (body->_root != NULL)
        json_decref(body->_root);
    memset(body, 0, sizeof(*body));
}

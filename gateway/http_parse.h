/*
 * Reading what clients send: which route a path names, query parameters, and the JSON body of a publish.
 * Pure functions on bytes, any thread; nothing here trusts its input.
 */
#ifndef NOTIGATE_HTTP_PARSE_H
#define NOTIGATE_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

typedef enum en_route_t {
    ROUTE_NOT_FOUND = 0,
    ROUTE_PUBLISH,       /* POST /v1/notifications */
    ROUTE_LIST,          /* GET  /v1/users/{user_id}/notifications */
    ROUTE_MARK_READ,     /* POST /v1/users/{user_id}/notifications/{id}/read */
    ROUTE_MARK_ALL_READ, /* POST /v1/users/{user_id}/notifications/read */
    ROUTE_HYBRID,        /* GET  /hybrid/notifications?user_id= */
    ROUTE_HEALTHZ,       /* GET  /healthz */
    ROUTE_READYZ,        /* GET  /readyz */
    ROUTE_METRICS,       /* GET  /metrics */
    ROUTE_WS,            /* GET  /v1/ws (WebSocket) */
    ROUTE_SOCKETIO,      /* GET  /socket.io/ (Socket.IO over WebSocket) */
    ROUTE_PAGE,          /* GET  / (the demo page) */
    ROUTE_PAGE_JS,       /* GET  /app.js (its script) */
    ROUTE_FORWARD,       /* a route of the route table (gateway/route_table.h), answered by a worker kind */
    ROUTE_COUNT
} route_t;

/* An error to send back: HTTP status, a stable machine-readable code, a sentence for people. */
typedef struct st_api_error_t {
    int status;
    const char *code;
    char message[192];
} api_error_t;

typedef struct st_route_match_t {
    route_t route;
    const char *user_id; /* into the path; set for the /v1/users/{user_id}/... routes */
    size_t user_id_len;
    uint64_t id; /* ROUTE_MARK_READ */
} route_match_t;

/* Matches the path part of a request target (no query). On a known route returns 0 and fills m; an invalid
 * user id or notification id in a known route's shape gives 400 in err; anything else is ROUTE_NOT_FOUND (0 too). */
int route_match(const char *path, size_t len, route_match_t *m, api_error_t *err);

/* The methods a route allows, as an Allow header value, and whether method (e.g. "GET") is one of them. HEAD is
 * allowed wherever GET is. */
const char *route_allow(route_t route);
bool route_allows(route_t route, const char *method, size_t len);

/* A short name for metrics labels. */
const char *route_name(route_t route);

/* Finds key in a query string (no leading '?') and percent-decodes its first value into buf (NUL-terminated).
 * Returns the decoded length, -1 if absent, or -2 if malformed or longer than bufsz - 1. */
int query_get(const char *query, size_t len, const char *key, char *buf, size_t bufsz);

/* Parses a positive decimal integer (no sign, no leading zeros beyond "0", at most max). Returns 0 or -1. */
int parse_u64(const char *s, size_t len, uint64_t max, uint64_t *v);

/* Reads limit (1-100, default 20) and before (a notification id, default none) from a query string. */
int list_params_parse(const char *query, size_t len, uint32_t *limit, uint64_t *before, api_error_t *err);

typedef struct st_publish_body_t {
    json_t *_root; /* owns the strings below */
    const char *user_id;
    size_t user_id_len;
    const char *message;
    size_t message_len;
    const char *kind; /* "info" unless given */
    size_t kind_len;
} publish_body_t;

#define PUBLISH_BODY_MAX (64 * 1024)

/* Parses and validates {"user_id", "message", "kind"?}. Returns 0, or -1 with err set (400 for bad JSON or fields,
 * 413 over PUBLISH_BODY_MAX). On success release with publish_body_dispose. */
int publish_body_parse(publish_body_t *out, const char *body, size_t len, api_error_t *err);
void publish_body_dispose(publish_body_t *body);

#endif

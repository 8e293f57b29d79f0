/*
 * The route table: which HTTP routes go to which worker kind (its nng address, timeout, and whether a request may be
 * resent to another replica), or to an HTTP upstream through h2o's reverse proxy, so that a new worker kind is one
 * entry plus its process, and a service not yet moved over (the seed's Python API, say) can stay behind the gateway.
 *
 * Built in: the orders worker. A JSON file replaces the whole table (gateway --routes FILE):
 *
 *   {"kinds":  {"orders": "tcp://0.0.0.0:7103"},
 *    "routes": [{"method": "POST", "path": "/v1/orders",  "kind": "orders", "timeout_ms": 2000, "retry": true},
 *               {"method": "GET",  "path": "/v1/orders/", "kind": "orders"},
 *               {"path": "/legacy/", "upstream": "http://127.0.0.1:9000/"}]}
 *
 * A path ending in '/' matches everything below it; other paths match exactly. "method" defaults to any ("*");
 * timeout_ms to 1000; retry to true (the worker must then be idempotent by request id, as the orders worker is).
 * Upstream routes match by prefix, for every method.
 *
 * "auth" says who may use a worker route when authentication is on: "public" (anyone), "user" (any valid token or API
 * key), "publisher" (an API key or a token with the publish scope; the default), or "owner" (a token whose sub is the
 * "customer_id" of the request's JSON body, when it names one, and of the worker's answer, at the top or in its
 * "order"; or a publisher). Upstream routes are proxied as they are: they take no "auth". Pure functions: any thread.
 */
#ifndef NOTIGATE_ROUTE_TABLE_H
#define NOTIGATE_ROUTE_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROUTE_TABLE_MAX 64
#define ROUTE_KINDS_MAX 8

typedef enum en_route_auth_t { ROUTE_AUTH_PUBLISHER = 0, ROUTE_AUTH_PUBLIC, ROUTE_AUTH_USER, ROUTE_AUTH_OWNER } route_auth_t;

typedef struct st_route_entry_t {
    char method[16]; /* "*": any */
    char path[256];
    bool prefix;        /* path ends with '/' */
    int kind;           /* index into kinds, or -1 for an HTTP upstream */
    char upstream[256]; /* kind -1: the upstream's URL */
    uint32_t timeout_ms;
    bool retry;
    route_auth_t auth;
} route_entry_t;

typedef struct st_route_kind_t {
    char name[32];
    char address[256]; /* the nng URL the kind's replicas dial in to */
} route_kind_t;

typedef struct st_route_table_t {
    route_entry_t entries[ROUTE_TABLE_MAX];
    size_t n;
    route_kind_t kinds[ROUTE_KINDS_MAX];
    size_t nkinds;
} route_table_t;

/* The built-in table: the orders kind, whose replicas dial orders_address. */
void route_table_builtin(route_table_t *t, const char *orders_address);

/* Replaces t with the table in json. Returns 0, or -1 with a reason in err. */
int route_table_parse(route_table_t *t, const char *json, size_t len, char *err, size_t errsz);

/* The worker entry for method and path (upstream entries are h2o's to match), or NULL. When the path matches entries
 * but none allows method, *allow (if not NULL) lists the methods that would ("GET, POST"). */
const route_entry_t *route_table_match(const route_table_t *t, const char *method, size_t method_len, const char *path,
                                       size_t path_len, char *allow, size_t allowsz);

#endif

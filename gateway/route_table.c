#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include "route_table.h"

static int add_kind(route_table_t *t, const char *name, const char *address)
{
    if (t->nkinds == ROUTE_KINDS_MAX)
        return -1;
    route_kind_t *k = &t->kinds[t->nkinds];
    snprintf(k->name, sizeof(k->name), "%s", name);
    snprintf(k->address, sizeof(k->address), "%s", address);
    return (int)t->nkinds++;
}

static void add_route(route_table_t *t, const char *method, const char *path, int kind, uint32_t timeout_ms, bool retry,
                      route_auth_t auth)
{
    route_entry_t *e = &t->entries[t->n++];
    memset(e, 0, sizeof(*e));
    snprintf(e->method, sizeof(e->method), "%s", method);
    snprintf(e->path, sizeof(e->path), "%s", path);
    e->prefix = path[strlen(path) - 1] == '/';
    e->kind = kind;
    e->timeout_ms = timeout_ms;
    e->retry = retry;
    e->auth = auth;
}

void route_table_builtin(route_table_t *t, const char *orders_address)
{
    memset(t, 0, sizeof(*t));
    int orders = add_kind(t, "orders", orders_address);
    /* every orders operation is idempotent by request id: a resend to another replica applies nothing twice */
    add_route(t, "POST", "/v1/orders", orders, 2000, true, ROUTE_AUTH_OWNER);
    add_route(t, "GET", "/v1/orders/", orders, 1000, true, ROUTE_AUTH_OWNER);
    add_route(t, "GET", "/v1/inventory", orders, 1000, true, ROUTE_AUTH_PUBLIC); /* stock levels, as a shop shows them */
    add_route(t, "PUT", "/v1/inventory/", orders, 1000, true, ROUTE_AUTH_PUBLISHER);
}

#define FAIL(...)                                                                                                                  \
    do {                                                                                                                           \
        snprintf(err, errsz, __VA_ARGS__);                                                                                         \
        goto Exit;                                                                                                                 \
    } while (0)

int route_table_parse(route_table_t *t, const char *json, size_t len, char *err, size_t errsz)
{
    json_error_t jerr;
    int rv = -1;
    route_table_t nt = {.n = 0};
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr), *kinds, *routes, *v;
    const char *name;
    size_t i;

    if (root == NULL)
        FAIL("invalid JSON at line %d: %s", jerr.line, jerr.text);
    if (!json_is_object(root) || !json_is_object(kinds = json_object_get(root, "kinds")) ||
        !json_is_array(routes = json_object_get(root, "routes")))
        FAIL("the table is {\"kinds\": {name: nng URL}, \"routes\": [...]}");
    json_object_foreach(kinds, name, v)
    {
        if (!json_is_string(v) || strlen(name) == 0 || strlen(name) >= sizeof(nt.kinds[0].name) ||
            json_string_length(v) >= sizeof(nt.kinds[0].address))
            FAIL("kind \"%s\": needs a name of 1-31 characters and an nng URL", name);
        if (strcmp(name, "notifier") == 0 || strcmp(name, "history") == 0)
            FAIL("kind \"%s\" is built in and cannot be routed", name);
        if (add_kind(&nt, name, json_string_value(v)) < 0)
            FAIL("more than %d kinds", ROUTE_KINDS_MAX);
    }
    if (json_array_size(routes) > ROUTE_TABLE_MAX)
        FAIL("more than %d routes", ROUTE_TABLE_MAX);
    json_array_foreach(routes, i, v)
    {
        json_t *method = json_object_get(v, "method"), *path = json_object_get(v, "path"), *kind = json_object_get(v, "kind"),
               *upstream = json_object_get(v, "upstream"), *timeout = json_object_get(v, "timeout_ms"),
               *retry = json_object_get(v, "retry"), *auth = json_object_get(v, "auth");
        if (!json_is_object(v) || !json_is_string(path) || json_string_value(path)[0] != '/' ||
            json_string_length(path) >= sizeof(nt.entries[0].path))
            FAIL("route %zu: needs a \"path\" starting with /", i);
        if ((kind == NULL) == (upstream == NULL))
            FAIL("route %zu (%s): needs either a \"kind\" or an \"upstream\"", i, json_string_value(path));
        if (method != NULL && (!json_is_string(method) || json_string_length(method) == 0 || json_string_length(method) >= 16))
            FAIL("route %zu (%s): \"method\" must be an HTTP method or \"*\"", i, json_string_value(path));
        if (timeout != NULL &&
            (!json_is_integer(timeout) || json_integer_value(timeout) < 1 || json_integer_value(timeout) > 600000))
            FAIL("route %zu (%s): \"timeout_ms\" must be 1-600000", i, json_string_value(path));
        if (retry != NULL && !json_is_boolean(retry))
            FAIL("route %zu (%s): \"retry\" must be true or false", i, json_string_value(path));
        static const char *auth_names[] = {"publisher", "public", "user", "owner"};
        route_auth_t policy = ROUTE_AUTH_PUBLISHER;
        if (auth != NULL && upstream != NULL)
            FAIL("route %zu (%s): upstream routes are proxied as they are: \"auth\" applies to worker routes only", i,
                 json_string_value(path));
        if (auth != NULL) {
            size_t a = 0;
            while (a < 4 && !(json_is_string(auth) && strcmp(json_string_value(auth), auth_names[a]) == 0))
                ++a;
            if (a == 4)
                FAIL("route %zu (%s): \"auth\" must be \"public\", \"user\", \"publisher\" or \"owner\"", i,
                     json_string_value(path));
            policy = (route_auth_t)a;
        }
        int k = -1;
        if (kind != NULL) {
            for (size_t j = 0; j < nt.nkinds && json_is_string(kind); ++j)
                if (strcmp(nt.kinds[j].name, json_string_value(kind)) == 0)
                    k = (int)j;
            if (k < 0)
                FAIL("route %zu (%s): kind is not one of \"kinds\"", i, json_string_value(path));
        } else if (!json_is_string(upstream) ||
                   (strncmp(json_string_value(upstream), "http://", 7) != 0 &&
                    strncmp(json_string_value(upstream), "https://", 8) != 0) ||
                   json_string_length(upstream) >= sizeof(nt.entries[0].upstream)) {
            FAIL("route %zu (%s): \"upstream\" must be an http:// or https:// URL", i, json_string_value(path));
        }
        add_route(&nt, method != NULL ? json_string_value(method) : "*", json_string_value(path), k,
                  timeout != NULL ? (uint32_t)json_integer_value(timeout) : 1000, retry == NULL || json_is_true(retry), policy);
        if (k < 0) {
            snprintf(nt.entries[nt.n - 1].upstream, sizeof(nt.entries[0].upstream), "%s", json_string_value(upstream));
            nt.entries[nt.n - 1].prefix = true; /* h2o matches upstream paths by prefix */
        }
    }
    *t = nt;
    rv = 0;
Exit:
    if (root != NULL)
        json_decref(root);
    return rv;
}

static bool path_matches(const route_entry_t *e, const char *path, size_t len)
{
    size_t n = strlen(e->path);
    if (!e->prefix)
        return len == n && memcmp(path, e->path, n) == 0;
    return len > n && memcmp(path, e->path, n) == 0; /* "/v1/orders/" matches "/v1/orders/..." */
}

/* True if the comma-separated list holds method as one of its items ("PAT" is not in "PATCH, GET"). */
static bool allow_has(const char *list, const char *method)
{
    size_t n = strlen(method);
    for (const char *p = list; (p = strstr(p, method)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == '\0' || p[n] == ','))
            return true;
    return false;
}

const route_entry_t *route_table_match(const route_table_t *t, const char *method, size_t method_len, const char *path,
                                       size_t path_len, char *allow, size_t allowsz)
{
    size_t used = 0;
    if (allow != NULL && allowsz > 0)
        allow[0] = '\0';
    for (size_t i = 0; i < t->n; ++i) {
        const route_entry_t *e = &t->entries[i];
        if (e->kind < 0 || !path_matches(e, path, path_len))
            continue;
        if (strcmp(e->method, "*") == 0 || (strlen(e->method) == method_len && memcmp(e->method, method, method_len) == 0))
            return e;
        if (allow != NULL && used < allowsz && !allow_has(allow, e->method)) {
            int n = snprintf(allow + used, allowsz - used, "%s%s", used != 0 ? ", " : "", e->method);
            if (n > 0)
                used += (size_t)n < allowsz - used ? (size_t)n : allowsz - used - 1;
        }
    }
    return NULL;
}

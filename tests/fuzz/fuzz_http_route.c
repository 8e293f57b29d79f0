/*
 * libFuzzer target: what the gateway reads from a request line before any worker is asked, in the order
 * gateway_on_req does it: route_match on the path, route_allows on the method, then query_get (user_id, as the
 * hybrid route does), since (as the WebSocket handshakes do) and list_params_parse on the query string. The input is "METHOD
 * target" (or just a target, read as a GET); the target splits into path and query at the first '?', as h2o hands it over. Besides
 * crashing nothing, every answer must be one the handlers can act on.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"
#include "http_parse.h"
#include "proto.h"
#include "valid.h"

static void check_error(const api_error_t *err)
{
    FUZZ_ASSERT(err->status == 400 && err->code != NULL && memchr(err->message, '\0', sizeof(err->message)) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data, *method = "GET", *path = in, *query = "";
    size_t method_len = 3, path_len = size, query_len = 0;
    const char *sp = memchr(in, ' ', size);
    if (sp != NULL) {
        method = in;
        method_len = (size_t)(sp - in);
        path = sp + 1;
        path_len = size - method_len - 1;
    }
    const char *q = memchr(path, '?', path_len);
    if (q != NULL) {
        query = q + 1;
        query_len = path_len - (size_t)(q + 1 - path);
        path_len = (size_t)(q - path);
    }

    route_match_t m;
    api_error_t err;
    memset(&err, 0, sizeof(err));
    if (route_match(path, path_len, &m, &err) != 0) {
        check_error(&err);
        return 0;
    }
    FUZZ_ASSERT((unsigned)m.route < ROUTE_COUNT && route_name(m.route) != NULL && route_allow(m.route) != NULL);
    if (m.route == ROUTE_LIST || m.route == ROUTE_MARK_READ || m.route == ROUTE_MARK_ALL_READ) {
        /* the user id points into the path and is valid; a notification id is positive */
        FUZZ_ASSERT(m.user_id != NULL && m.user_id >= path && m.user_id + m.user_id_len <= path + path_len);
        FUZZ_ASSERT(valid_user_id(m.user_id, m.user_id_len));
        FUZZ_ASSERT(m.route != ROUTE_MARK_READ || m.id != 0);
    } else {
        FUZZ_ASSERT(m.user_id == NULL);
    }
    bool allowed = route_allows(m.route, method, method_len);
    FUZZ_ASSERT(m.route != ROUTE_NOT_FOUND || !allowed);

    char user[VALID_USER_ID_MAX + 2];
    int n = query_get(query, query_len, "user_id", user, sizeof(user));
    FUZZ_ASSERT(n >= -2 && n < (int)sizeof(user));
    if (n >= 0)
        FUZZ_ASSERT(user[n] == '\0' && strlen(user) == (size_t)n); /* no NUL inside a decoded value */

    /* the WebSocket and Socket.IO handshakes' since (session.c): a number read back is the digits given, exactly */
    char since[32], back[32];
    uint64_t v;
    n = query_get(query, query_len, "since", since, sizeof(since));
    FUZZ_ASSERT(n >= -2 && n < (int)sizeof(since));
    if (n >= 0 && parse_u64(since, (size_t)n, UINT64_MAX, &v) == 0) {
        int blen = snprintf(back, sizeof(back), "%" PRIu64, v);
        FUZZ_ASSERT(blen == n && memcmp(back, since, (size_t)n) == 0);
    }

    uint32_t limit;
    uint64_t before;
    memset(&err, 0, sizeof(err));
    if (list_params_parse(query, query_len, &limit, &before, &err) == 0)
        FUZZ_ASSERT(limit >= 1 && limit <= PROTO_LIMIT_MAX);
    else
        check_error(&err);
    return 0;
}

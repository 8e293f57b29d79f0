/*
 * Unit tests of gateway/http_parse.c: routes, query strings, list parameters and the publish body.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include "http_parse.h"

#define LIT(s) (s), sizeof(s) - 1

/* Matches path; returns route_match's result and leaves the match and error for inspection. */
static int match(const char *path, route_match_t *m, api_error_t *err)
{
    memset(err, 0, sizeof(*err));
    return route_match(path, strlen(path), m, err);
}

static bool user_is(const route_match_t *m, const char *user)
{
    return m->user_id_len == strlen(user) && memcmp(m->user_id, user, m->user_id_len) == 0;
}

/* ---- routes ----------------------------------------------------------------------------------------------------- */

START_TEST(test_route_fixed_paths)
{
    static const struct {
        const char *path;
        route_t route;
    } cases[] = {
        {"/v1/notifications", ROUTE_PUBLISH}, {"/hybrid/notifications", ROUTE_HYBRID},
        {"/healthz", ROUTE_HEALTHZ},          {"/readyz", ROUTE_READYZ},
        {"/metrics", ROUTE_METRICS},          {"/v1/ws", ROUTE_WS},
        {"/socket.io/", ROUTE_SOCKETIO},      {"/socket.io", ROUTE_SOCKETIO},
        {"/", ROUTE_PAGE},                    {"/app.js", ROUTE_PAGE_JS},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        route_match_t m;
        api_error_t err;
        ck_assert_int_eq(match(cases[i].path, &m, &err), 0);
        ck_assert_msg(m.route == cases[i].route, "%s", cases[i].path);
        ck_assert_ptr_null(m.user_id);
        ck_assert_uint_eq(m.id, 0);
    }
}
END_TEST

START_TEST(test_route_user_paths)
{
    route_match_t m;
    api_error_t err;

    ck_assert_int_eq(match("/v1/users/alice/notifications", &m, &err), 0);
    ck_assert_int_eq(m.route, ROUTE_LIST);
    ck_assert(user_is(&m, "alice"));

    ck_assert_int_eq(match("/v1/users/a.b-c_D9/notifications/read", &m, &err), 0);
    ck_assert_int_eq(m.route, ROUTE_MARK_ALL_READ);
    ck_assert(user_is(&m, "a.b-c_D9"));

    ck_assert_int_eq(match("/v1/users/bob/notifications/42/read", &m, &err), 0);
    ck_assert_int_eq(m.route, ROUTE_MARK_READ);
    ck_assert(user_is(&m, "bob"));
    ck_assert_uint_eq(m.id, 42);

    ck_assert_int_eq(match("/v1/users/bob/notifications/18446744073709551615/read", &m, &err), 0);
    ck_assert_int_eq(m.route, ROUTE_MARK_READ);
    ck_assert_uint_eq(m.id, UINT64_MAX);

    /* a 64-character user id is the longest */
    char path[128];
    snprintf(path, sizeof(path), "/v1/users/%.64s/notifications",
             "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu");
    ck_assert_int_eq(match(path, &m, &err), 0);
    ck_assert_int_eq(m.route, ROUTE_LIST);
    ck_assert_uint_eq(m.user_id_len, 64);

    /* only len bytes count */
    ck_assert_int_eq(route_match("/healthzzz", 8, &m, &err), 0);
    ck_assert_int_eq(m.route, ROUTE_HEALTHZ);
}
END_TEST

START_TEST(test_route_not_found)
{
    static const char *const paths[] = {
        "",
        "//",
        "/index.html",
        "/app.js/",
        "/v1/ws/",
        "/socket.io/x",
        "/healthz/",
        "/healthz/x",
        "/HEALTHZ",
        "/healthz?x=1",
        "/metric",
        "/v1/notifications/",
        "/v1/notifications/1",
        "/v1/users",
        "/v1/users/",
        "/v1/users/alice",
        "/v1/users/alice/",
        "/v1/users/alice/notifications/",
        "/v1/users/alice/notifications/read/",
        "/v1/users/alice/notifications/5/read/",
        "/v1/users/alice/notifications/5/read/x",
        "/v1/users/alice/notifications/5/unread",
        "/v1/users/alice/notifications/x/y/z/w/v",
        "/v1/users/alice/notification",
        "/v1/users/alice/messages",
        "/v1/users/alice/notifications/unread",
        "/v2/users/alice/notifications",
        "//v1/users/alice/notifications",
        "/hybrid/notifications/",
        "/hybrid",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); ++i) {
        route_match_t m;
        api_error_t err;
        m.route = ROUTE_METRICS;
        ck_assert_msg(match(paths[i], &m, &err) == 0, "%s", paths[i]);
        ck_assert_msg(m.route == ROUTE_NOT_FOUND, "%s matched route %d", paths[i], m.route);
    }
}
END_TEST

START_TEST(test_route_bad_user_id)
{
    static const char *const paths[] = {
        "/v1/users//notifications",
        "/v1/users/al%20ice/notifications",
        "/v1/users/al ice/notifications/read",
        "/v1/users/\xc3\xa9/notifications/5/read",
        "/v1/users/uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu/notifications", /* 65 */
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); ++i) {
        route_match_t m;
        api_error_t err;
        ck_assert_msg(match(paths[i], &m, &err) == -1, "%s", paths[i]);
        ck_assert_int_eq(err.status, 400);
        ck_assert_str_eq(err.code, "invalid_user_id");
        ck_assert(err.message[0] != '\0');
        ck_assert_ptr_null(m.user_id);
    }
}
END_TEST

START_TEST(test_route_bad_notification_id)
{
    static const char *const ids[] = {"0",
                                      "00",
                                      "01",
                                      "007",
                                      "-1",
                                      "+1",
                                      "1a",
                                      "a1",
                                      "abc",
                                      "1.5",
                                      " 1",
                                      "1 ",
                                      "0x10",
                                      "18446744073709551616",
                                      "99999999999999999999",
                                      "184467440737095516150",
                                      "%31"};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); ++i) {
        char path[128];
        route_match_t m;
        api_error_t err;
        snprintf(path, sizeof(path), "/v1/users/alice/notifications/%s/read", ids[i]);
        ck_assert_msg(match(path, &m, &err) == -1, "%s", path);
        ck_assert_int_eq(err.status, 400);
        ck_assert_str_eq(err.code, "invalid_id");
    }
    /* an empty id segment is an id that is not a number */
    route_match_t m;
    api_error_t err;
    ck_assert_int_eq(match("/v1/users/alice/notifications//read", &m, &err), -1);
    ck_assert_str_eq(err.code, "invalid_id");
}
END_TEST

START_TEST(test_route_allows)
{
    static const route_t post[] = {ROUTE_PUBLISH, ROUTE_MARK_READ, ROUTE_MARK_ALL_READ};
    static const route_t get[] = {ROUTE_LIST,    ROUTE_HYBRID, ROUTE_HEALTHZ,  ROUTE_READYZ,
                                  ROUTE_METRICS, ROUTE_WS,     ROUTE_SOCKETIO, ROUTE_PAGE, ROUTE_PAGE_JS};
    for (size_t i = 0; i < sizeof(post) / sizeof(post[0]); ++i) {
        ck_assert_str_eq(route_allow(post[i]), "POST");
        ck_assert(route_allows(post[i], LIT("POST")));
        ck_assert(!route_allows(post[i], LIT("GET")));
        ck_assert(!route_allows(post[i], LIT("HEAD")));
        ck_assert(!route_allows(post[i], LIT("PUT")));
        ck_assert(!route_allows(post[i], LIT("post")));
        ck_assert(!route_allows(post[i], LIT("POSTX")));
        ck_assert(!route_allows(post[i], "POST", 3));
    }
    for (size_t i = 0; i < sizeof(get) / sizeof(get[0]); ++i) {
        ck_assert_str_eq(route_allow(get[i]), "GET, HEAD");
        ck_assert(route_allows(get[i], LIT("GET")));
        ck_assert(route_allows(get[i], LIT("HEAD")));
        ck_assert(!route_allows(get[i], LIT("POST")));
        ck_assert(!route_allows(get[i], LIT("DELETE")));
        ck_assert(!route_allows(get[i], LIT("get")));
        ck_assert(!route_allows(get[i], LIT("")));
    }
    ck_assert_str_eq(route_allow(ROUTE_NOT_FOUND), "");
    ck_assert(!route_allows(ROUTE_NOT_FOUND, LIT("GET")));
    ck_assert(!route_allows(ROUTE_NOT_FOUND, LIT("POST")));
}
END_TEST

START_TEST(test_route_names)
{
    ck_assert_str_eq(route_name(ROUTE_NOT_FOUND), "not_found");
    ck_assert_str_eq(route_name(ROUTE_PUBLISH), "publish");
    ck_assert_str_eq(route_name(ROUTE_LIST), "list");
    ck_assert_str_eq(route_name(ROUTE_MARK_READ), "mark_read");
    ck_assert_str_eq(route_name(ROUTE_MARK_ALL_READ), "mark_all_read");
    ck_assert_str_eq(route_name(ROUTE_HYBRID), "hybrid");
    ck_assert_str_eq(route_name(ROUTE_HEALTHZ), "healthz");
    ck_assert_str_eq(route_name(ROUTE_READYZ), "readyz");
    ck_assert_str_eq(route_name(ROUTE_METRICS), "metrics");
    ck_assert_str_eq(route_name(ROUTE_WS), "ws");
    ck_assert_str_eq(route_name(ROUTE_SOCKETIO), "socketio");
    ck_assert_str_eq(route_name(ROUTE_PAGE), "page");
    ck_assert_str_eq(route_name(ROUTE_PAGE_JS), "page_js");
    ck_assert_str_eq(route_name(ROUTE_COUNT), "not_found");
    ck_assert_str_eq(route_name((route_t)1000), "not_found");
}
END_TEST

/* ---- parse_u64 -------------------------------------------------------------------------------------------------- */

START_TEST(test_parse_u64)
{
    uint64_t v = 12345;
    ck_assert_int_eq(parse_u64(LIT("0"), 100, &v), 0);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(parse_u64(LIT("100"), 100, &v), 0);
    ck_assert_uint_eq(v, 100);
    ck_assert_int_eq(parse_u64(LIT("101"), 100, &v), -1);
    ck_assert_int_eq(parse_u64(LIT("1000"), 100, &v), -1);
    ck_assert_int_eq(parse_u64(LIT("18446744073709551615"), UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v, UINT64_MAX);
    ck_assert_int_eq(parse_u64(LIT("18446744073709551616"), UINT64_MAX, &v), -1);
    ck_assert_int_eq(parse_u64(LIT("28446744073709551615"), UINT64_MAX, &v), -1);
    ck_assert_int_eq(parse_u64(LIT(""), 100, &v), -1);
    ck_assert_int_eq(parse_u64(LIT("05"), 100, &v), -1);
    ck_assert_int_eq(parse_u64(LIT("-5"), 100, &v), -1);
    /* a bound below 10 holds for single digits too */
    ck_assert_int_eq(parse_u64(LIT("5"), 5, &v), 0);
    ck_assert_uint_eq(v, 5);
    ck_assert_int_eq(parse_u64(LIT("7"), 5, &v), -1);
    ck_assert_int_eq(parse_u64(LIT("9"), 0, &v), -1);
    ck_assert_int_eq(parse_u64(LIT("0"), 0, &v), 0);
    ck_assert_uint_eq(v, 0);
    /* failures leave *v alone */
    v = 77;
    ck_assert_int_eq(parse_u64(LIT("x"), 100, &v), -1);
    ck_assert_uint_eq(v, 77);
}
END_TEST

/* ---- query strings ---------------------------------------------------------------------------------------------- */

static int qget(const char *query, const char *key, char *buf, size_t bufsz)
{
    memset(buf, 'X', bufsz);
    return query_get(query, strlen(query), key, buf, bufsz);
}

START_TEST(test_query_get)
{
    char buf[32];
    ck_assert_int_eq(qget("", "limit", buf, sizeof(buf)), -1);
    ck_assert_int_eq(qget("before=5", "limit", buf, sizeof(buf)), -1);
    ck_assert_int_eq(qget("limits=5&xlimit=6&limi=7", "limit", buf, sizeof(buf)), -1);

    ck_assert_int_eq(qget("limit=5", "limit", buf, sizeof(buf)), 1);
    ck_assert_str_eq(buf, "5");
    ck_assert_int_eq(qget("a=1&limit=50&b=2", "limit", buf, sizeof(buf)), 2);
    ck_assert_str_eq(buf, "50");
    ck_assert_int_eq(qget("a=1&&limit=7&", "limit", buf, sizeof(buf)), 1);
    ck_assert_str_eq(buf, "7");

    /* empty values, with and without '=' */
    ck_assert_int_eq(qget("limit=", "limit", buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(qget("limit&x=1", "limit", buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "");

    /* percent-decoding, both cases of hex digits, and '+' as a space */
    ck_assert_int_eq(qget("user_id=al%69ce", "user_id", buf, sizeof(buf)), 5);
    ck_assert_str_eq(buf, "alice");
    ck_assert_int_eq(qget("q=%2f%2F%41", "q", buf, sizeof(buf)), 3);
    ck_assert_str_eq(buf, "//A");
    ck_assert_int_eq(qget("q=a+b%2Bc", "q", buf, sizeof(buf)), 5);
    ck_assert_str_eq(buf, "a b+c");
    ck_assert_int_eq(qget("q=%C3%A9", "q", buf, sizeof(buf)), 2);
    ck_assert_str_eq(buf, "\xc3\xa9");
    ck_assert_int_eq(qget("q=a=b", "q", buf, sizeof(buf)), 3);
    ck_assert_str_eq(buf, "a=b");

    /* first occurrence wins */
    ck_assert_int_eq(qget("limit=1&limit=2", "limit", buf, sizeof(buf)), 1);
    ck_assert_str_eq(buf, "1");
    ck_assert_int_eq(qget("limit=&limit=2", "limit", buf, sizeof(buf)), 0);

    /* only len bytes of the query count */
    ck_assert_int_eq(query_get("limit=123", 7, "limit", buf, sizeof(buf)), 1);
    ck_assert_str_eq(buf, "1");
}
END_TEST

START_TEST(test_query_get_malformed)
{
    char buf[8];
    ck_assert_int_eq(qget("q=%", "q", buf, sizeof(buf)), -2);
    ck_assert_int_eq(qget("q=%4", "q", buf, sizeof(buf)), -2);
    ck_assert_int_eq(qget("q=%4&x=1", "q", buf, sizeof(buf)), -2);
    ck_assert_int_eq(qget("q=%zz", "q", buf, sizeof(buf)), -2);
    ck_assert_int_eq(qget("q=%g1", "q", buf, sizeof(buf)), -2);
    ck_assert_int_eq(qget("q=a%", "q", buf, sizeof(buf)), -2);
    /* a decoded NUL would cut the value short: refused */
    ck_assert_int_eq(qget("q=%00", "q", buf, sizeof(buf)), -2);
    ck_assert_int_eq(qget("q=ab%00cd", "q", buf, sizeof(buf)), -2);
    /* too long for the buffer: 7 characters fit in 8 bytes, 8 do not */
    ck_assert_int_eq(qget("q=1234567", "q", buf, sizeof(buf)), 7);
    ck_assert_str_eq(buf, "1234567");
    ck_assert_int_eq(qget("q=12345678", "q", buf, sizeof(buf)), -2);
    ck_assert_int_eq(qget("q=%31%32%33%34%35%36%37", "q", buf, sizeof(buf)), 7);
    ck_assert_int_eq(qget("q=%31%32%33%34%35%36%37%38", "q", buf, sizeof(buf)), -2);
    /* a malformed later occurrence does not matter once the first is found */
    ck_assert_int_eq(qget("q=1&q=%zz", "q", buf, sizeof(buf)), 1);
    /* nor does a malformed other key */
    ck_assert_int_eq(qget("x=%zz&q=2", "q", buf, sizeof(buf)), 1);
    ck_assert_str_eq(buf, "2");
}
END_TEST

/* ---- list parameters -------------------------------------------------------------------------------------------- */

static int list(const char *query, uint32_t *limit, uint64_t *before, api_error_t *err)
{
    memset(err, 0, sizeof(*err));
    *limit = 999;
    *before = 999;
    return list_params_parse(query, strlen(query), limit, before, err);
}

START_TEST(test_list_params)
{
    uint32_t limit;
    uint64_t before;
    api_error_t err;

    ck_assert_int_eq(list("", &limit, &before, &err), 0);
    ck_assert_uint_eq(limit, 20);
    ck_assert_uint_eq(before, 0);

    ck_assert_int_eq(list("user_id=x", &limit, &before, &err), 0);
    ck_assert_uint_eq(limit, 20);
    ck_assert_uint_eq(before, 0);

    ck_assert_int_eq(list("limit=1", &limit, &before, &err), 0);
    ck_assert_uint_eq(limit, 1);
    ck_assert_int_eq(list("limit=100", &limit, &before, &err), 0);
    ck_assert_uint_eq(limit, 100);
    ck_assert_int_eq(list("limit=37&before=18446744073709551615", &limit, &before, &err), 0);
    ck_assert_uint_eq(limit, 37);
    ck_assert_uint_eq(before, UINT64_MAX);
    ck_assert_int_eq(list("before=1", &limit, &before, &err), 0);
    ck_assert_uint_eq(before, 1);
    ck_assert_uint_eq(limit, 20);
    ck_assert_int_eq(list("limit=%35", &limit, &before, &err), 0);
    ck_assert_uint_eq(limit, 5);
}
END_TEST

START_TEST(test_list_params_rejected)
{
    static const struct {
        const char *query;
        const char *code;
    } cases[] = {
        {"limit=0", "invalid_limit"},
        {"limit=101", "invalid_limit"},
        {"limit=1000", "invalid_limit"},
        {"limit=abc", "invalid_limit"},
        {"limit=-1", "invalid_limit"},
        {"limit=+5", "invalid_limit"},
        {"limit=05", "invalid_limit"},
        {"limit=", "invalid_limit"},
        {"limit", "invalid_limit"},
        {"limit=5.0", "invalid_limit"},
        {"limit=%zz", "invalid_limit"},
        {"limit=99999999999999999999999999999999", "invalid_limit"},
        {"before=0", "invalid_cursor"},
        {"before=abc", "invalid_cursor"},
        {"before=-1", "invalid_cursor"},
        {"before=", "invalid_cursor"},
        {"before=18446744073709551616", "invalid_cursor"},
        {"before=1%00", "invalid_cursor"},
        {"limit=10&before=x", "invalid_cursor"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        uint32_t limit;
        uint64_t before;
        api_error_t err;
        ck_assert_msg(list(cases[i].query, &limit, &before, &err) == -1, "%s", cases[i].query);
        ck_assert_int_eq(err.status, 400);
        ck_assert_msg(strcmp(err.code, cases[i].code) == 0, "%s: code %s", cases[i].query, err.code);
        ck_assert(err.message[0] != '\0');
    }
}
END_TEST

/* ---- publish body ----------------------------------------------------------------------------------------------- */

static int publish(const char *body, size_t len, publish_body_t *out, api_error_t *err)
{
    memset(err, 0, sizeof(*err));
    return publish_body_parse(out, body, len, err);
}

static bool bytes_are(const char *p, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(p, want, len) == 0;
}

START_TEST(test_publish_valid)
{
    publish_body_t b;
    api_error_t err;

    ck_assert_int_eq(publish(LIT("{\"user_id\":\"alice\",\"message\":\"hi \\u00e9 \\ud83d\\ude00\",\"kind\":\"alert\"}"), &b, &err),
                     0);
    ck_assert(bytes_are(b.user_id, b.user_id_len, "alice"));
    ck_assert(bytes_are(b.message, b.message_len, "hi \xc3\xa9 \xf0\x9f\x98\x80"));
    ck_assert(bytes_are(b.kind, b.kind_len, "alert"));
    publish_body_dispose(&b);
    ck_assert_ptr_null(b._root);

    /* without kind, and with kind null: "info"; unknown keys are ignored; whitespace around is fine */
    ck_assert_int_eq(publish(LIT(" {\"message\":\"m\",\"user_id\":\"bob\",\"extra\":[1,2]} \n"), &b, &err), 0);
    ck_assert(bytes_are(b.kind, b.kind_len, "info"));
    ck_assert(bytes_are(b.user_id, b.user_id_len, "bob"));
    publish_body_dispose(&b);
    ck_assert_int_eq(publish(LIT("{\"user_id\":\"bob\",\"message\":\"m\",\"kind\":null}"), &b, &err), 0);
    ck_assert(bytes_are(b.kind, b.kind_len, "info"));
    publish_body_dispose(&b);
}
END_TEST

START_TEST(test_publish_limits)
{
    /* a 4096-byte message in a body of exactly PUBLISH_BODY_MAX bytes (padded with spaces): accepted */
    static char body[PUBLISH_BODY_MAX + 2];
    publish_body_t b;
    api_error_t err;
    int n = snprintf(body, sizeof(body), "{\"user_id\":\"u\",\"message\":\"");
    memset(body + n, 'm', 4096);
    n += 4096;
    n += snprintf(body + n, sizeof(body) - (size_t)n, "\"}");
    memset(body + n, ' ', sizeof(body) - (size_t)n);
    ck_assert_int_eq(publish(body, PUBLISH_BODY_MAX, &b, &err), 0);
    ck_assert_uint_eq(b.message_len, 4096);
    publish_body_dispose(&b);

    /* one byte more: 413 before any parsing */
    ck_assert_int_eq(publish(body, PUBLISH_BODY_MAX + 1, &b, &err), -1);
    ck_assert_int_eq(err.status, 413);
    ck_assert_str_eq(err.code, "payload_too_large");
    ck_assert_ptr_null(b._root);

    /* a 4097-byte message */
    n = snprintf(body, sizeof(body), "{\"user_id\":\"u\",\"message\":\"");
    memset(body + n, 'm', 4097);
    n += 4097;
    n += snprintf(body + n, sizeof(body) - (size_t)n, "\"}");
    ck_assert_int_eq(publish(body, (size_t)n, &b, &err), -1);
    ck_assert_int_eq(err.status, 400);
    ck_assert_str_eq(err.code, "invalid_message");
}
END_TEST

START_TEST(test_publish_bad_fields)
{
    static const struct {
        const char *body;
        const char *code;
    } cases[] = {
        {"{\"message\":\"m\"}", "invalid_user_id"},
        {"{\"user_id\":null,\"message\":\"m\"}", "invalid_user_id"},
        {"{\"user_id\":5,\"message\":\"m\"}", "invalid_user_id"},
        {"{\"user_id\":\"\",\"message\":\"m\"}", "invalid_user_id"},
        {"{\"user_id\":\"a b\",\"message\":\"m\"}", "invalid_user_id"},
        {"{\"user_id\":[\"a\"],\"message\":\"m\"}", "invalid_user_id"},
        {"{\"user_id\":\"uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu\",\"message\":\"m\"}",
         "invalid_user_id"},
        {"{\"user_id\":\"\\u00e9\",\"message\":\"m\"}", "invalid_user_id"},
        {"{\"user_id\":\"u\"}", "invalid_message"},
        {"{\"user_id\":\"u\",\"message\":\"\"}", "invalid_message"},
        {"{\"user_id\":\"u\",\"message\":null}", "invalid_message"},
        {"{\"user_id\":\"u\",\"message\":1}", "invalid_message"},
        {"{\"user_id\":\"u\",\"message\":{}}", "invalid_message"},
        {"{\"user_id\":\"u\",\"message\":\"\\ud800\"}", "invalid_json"}, /* lone surrogate: jansson refuses it */
        {"{\"user_id\":\"u\",\"message\":\"m\",\"kind\":\"\"}", "invalid_kind"},
        {"{\"user_id\":\"u\",\"message\":\"m\",\"kind\":\"a b\"}", "invalid_kind"},
        {"{\"user_id\":\"u\",\"message\":\"m\",\"kind\":3}", "invalid_kind"},
        {"{\"user_id\":\"u\",\"message\":\"m\",\"kind\":false}", "invalid_kind"},
        {"{\"user_id\":\"u\",\"message\":\"m\",\"kind\":\"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\"}", "invalid_kind"},
        /* the first bad field is the one reported */
        {"{\"user_id\":\"\",\"message\":\"\",\"kind\":\"\"}", "invalid_user_id"},
        {"{\"user_id\":\"u\",\"message\":\"\",\"kind\":\"\"}", "invalid_message"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        publish_body_t b;
        api_error_t err;
        ck_assert_msg(publish(cases[i].body, strlen(cases[i].body), &b, &err) == -1, "%s", cases[i].body);
        ck_assert_int_eq(err.status, 400);
        ck_assert_msg(strcmp(err.code, cases[i].code) == 0, "%s: code %s", cases[i].body, err.code);
        ck_assert(err.message[0] != '\0');
        ck_assert_ptr_null(b._root);
    }
}
END_TEST

START_TEST(test_publish_bad_json)
{
    static const struct {
        const char *body;
        size_t len;
    } cases[] = {
#define C(lit) {lit, sizeof(lit) - 1}
        C("{"),
        C("not json"),
        C("{\"user_id\":\"u\",\"message\":\"m\""),
        C("{\"user_id\":\"u\",\"message\":\"m\",}"),
        C("{'user_id':'u','message':'m'}"),
        C("[\"user_id\",\"u\"]"),
        C("\"a string\""),
        C("42"),
        C("null"),
        C("{\"user_id\":\"u\",\"user_id\":\"v\",\"message\":\"m\"}"), /* duplicate keys */
        C("{\"user_id\":\"u\",\"message\":\"m\xff\"}"),               /* invalid UTF-8 */
        C("{\"user_id\":\"u\",\"message\":\"\xc0\xaf\"}"),            /* overlong */
        C("{\"user_id\":\"u\",\"message\":\"\xed\xa0\x80\"}"),        /* raw surrogate */
        C("{\"user_id\":\"u\",\"message\":\"a\\u0000b\"}"),           /* NUL */
        C("{\"user_id\":\"u\",\"message\":\"a\0b\"}"),                /* raw NUL */
        C("{\"user_id\":\"u\",\"message\":\"m\"} x"),                 /* trailing garbage */
        C("{\"user_id\":\"u\",\"message\":\"m\"}{}"),                 /* two values */
        C("{\"user_id\":\"u\",\"message\":\"m\"}\0"),                 /* trailing NUL */
        C("{\"user_id\":\"u\",\"message\":\"line\nbreak\"}"),         /* raw control character */
        C("{\"user_id\":\"u\",\"message\":\"m\"/*c*/}"),              /* comment */
        C("{\"user_id\":\"u\",\"message\":\"m\",\"n\":NaN}"),
        C(" "),
#undef C
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        publish_body_t b;
        api_error_t err;
        ck_assert_msg(publish(cases[i].body, cases[i].len, &b, &err) == -1, "case %zu", i);
        ck_assert_int_eq(err.status, 400);
        ck_assert_msg(strcmp(err.code, "invalid_json") == 0, "case %zu: code %s", i, err.code);
        ck_assert_ptr_null(b._root);
    }

    /* the empty body */
    publish_body_t b;
    api_error_t err;
    ck_assert_int_eq(publish("", 0, &b, &err), -1);
    ck_assert_int_eq(err.status, 400);
    ck_assert_str_eq(err.code, "invalid_json");
}
END_TEST

START_TEST(test_publish_huge_body)
{
    /* far over the limit: refused by size, whatever it holds */
    size_t len = 10 * PUBLISH_BODY_MAX;
    char *body = malloc(len);
    memset(body, '{', len);
    publish_body_t b;
    api_error_t err;
    ck_assert_int_eq(publish(body, len, &b, &err), -1);
    ck_assert_int_eq(err.status, 413);
    ck_assert_str_eq(err.code, "payload_too_large");
    free(body);
}
END_TEST

static Suite *http_parse_suite(void)
{
    Suite *s = suite_create("http_parse");
    TCase *tc = tcase_create("routes");
    tcase_add_test(tc, test_route_fixed_paths);
    tcase_add_test(tc, test_route_user_paths);
    tcase_add_test(tc, test_route_not_found);
    tcase_add_test(tc, test_route_bad_user_id);
    tcase_add_test(tc, test_route_bad_notification_id);
    tcase_add_test(tc, test_route_allows);
    tcase_add_test(tc, test_route_names);
    suite_add_tcase(s, tc);

    tc = tcase_create("query");
    tcase_add_test(tc, test_parse_u64);
    tcase_add_test(tc, test_query_get);
    tcase_add_test(tc, test_query_get_malformed);
    tcase_add_test(tc, test_list_params);
    tcase_add_test(tc, test_list_params_rejected);
    suite_add_tcase(s, tc);

    tc = tcase_create("publish_body");
    tcase_add_test(tc, test_publish_valid);
    tcase_add_test(tc, test_publish_limits);
    tcase_add_test(tc, test_publish_bad_fields);
    tcase_add_test(tc, test_publish_bad_json);
    tcase_add_test(tc, test_publish_huge_body);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(http_parse_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

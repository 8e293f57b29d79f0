/*
 * Unit tests of gateway/route_table.c: the built-in table, the JSON file format (--routes) and its errors, and
 * matching (exact and prefix paths, methods, the Allow list of a 405, upstream entries left to h2o).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "route_table.h"

#define LIT(s) (s), sizeof(s) - 1

/* route_table_match with NUL-terminated method and path; allow gets the Allow list. */
static const route_entry_t *match(const route_table_t *t, const char *method, const char *path, char *allow, size_t allowsz)
{
    return route_table_match(t, method, strlen(method), path, strlen(path), allow, allowsz);
}

/* Asserts method path matches the entry with that path and method (by content), and returns it. */
static const route_entry_t *assert_match(const route_table_t *t, const char *method, const char *path, const char *entry_path,
                                         const char *entry_method)
{
    char allow[64] = "unchanged";
    const route_entry_t *e = match(t, method, path, allow, sizeof(allow));
    ck_assert_msg(e != NULL, "%s %s: no match (allow \"%s\")", method, path, allow);
    ck_assert_msg(strcmp(e->path, entry_path) == 0 && strcmp(e->method, entry_method) == 0, "%s %s matched %s %s, expected %s %s",
                  method, path, e->method, e->path, entry_method, entry_path);
    return e;
}

/* Asserts method path matches nothing and that the Allow list is allow ("" for a 404). */
static void assert_no_match(const route_table_t *t, const char *method, const char *path, const char *allow)
{
    char got[64];
    memset(got, 'x', sizeof(got));
    const route_entry_t *e = match(t, method, path, got, sizeof(got));
    ck_assert_msg(e == NULL, "%s %s: matched %s %s", method, path, e != NULL ? e->method : "", e != NULL ? e->path : "");
    ck_assert_msg(strcmp(got, allow) == 0, "%s %s: allow \"%s\", expected \"%s\"", method, path, got, allow);
}

/* Parses json into t; asserts success. */
static void parse_ok(route_table_t *t, const char *json)
{
    char err[256] = "";
    int rv = route_table_parse(t, json, strlen(json), err, sizeof(err));
    ck_assert_msg(rv == 0, "rejected (%s): %s", err, json);
}

/* Asserts json is refused with an error containing needle, and that the table is left as it was. */
static void assert_parse_error(const char *json, const char *needle)
{
    route_table_t t, before;
    char err[256] = "";
    route_table_builtin(&t, "tcp://127.0.0.1:7103");
    memcpy(&before, &t, sizeof(t));
    int rv = route_table_parse(&t, json, strlen(json), err, sizeof(err));
    ck_assert_msg(rv == -1, "accepted: %s", json);
    ck_assert_msg(strstr(err, needle) != NULL, "%s\n  error \"%s\" does not say \"%s\"", json, err, needle);
    ck_assert_msg(memcmp(&t, &before, sizeof(t)) == 0, "a refused table changed the old one: %s", json);
}

/* ---- the built-in table ---------------------------------------------------------------------------------------- */

START_TEST(builtin)
{
    route_table_t t;
    memset(&t, 0xa5, sizeof(t));
    route_table_builtin(&t, "tcp://10.0.0.1:7103");
    ck_assert_int_eq(t.nkinds, 1);
    ck_assert_str_eq(t.kinds[0].name, "orders");
    ck_assert_str_eq(t.kinds[0].address, "tcp://10.0.0.1:7103");
    ck_assert_int_eq(t.n, 4);

    const route_entry_t *e = assert_match(&t, "POST", "/v1/orders", "/v1/orders", "POST");
    ck_assert_int_eq(e->kind, 0);
    ck_assert(!e->prefix);
    ck_assert_int_eq(e->timeout_ms, 2000);
    ck_assert(e->retry); /* the orders worker is idempotent by request id */
    e = assert_match(&t, "GET", "/v1/orders/ORD20261125120000000001", "/v1/orders/", "GET");
    ck_assert(e->prefix);
    ck_assert_int_eq(e->kind, 0);
    ck_assert_int_eq(e->timeout_ms, 1000);
    ck_assert(e->retry);
    e = assert_match(&t, "GET", "/v1/inventory", "/v1/inventory", "GET");
    ck_assert(!e->prefix && e->retry);
    e = assert_match(&t, "PUT", "/v1/inventory/item1", "/v1/inventory/", "PUT");
    ck_assert(e->prefix && e->retry);
    for (size_t i = 0; i < t.n; ++i)
        ck_assert_msg(t.entries[i].kind == 0 && t.entries[i].upstream[0] == '\0', "entry %zu", i);
    /* who may use them: orders by their customer, stock levels by anyone, stock changes by publishers */
    ck_assert_int_eq(t.entries[0].auth, ROUTE_AUTH_OWNER);
    ck_assert_int_eq(t.entries[1].auth, ROUTE_AUTH_OWNER);
    ck_assert_int_eq(t.entries[2].auth, ROUTE_AUTH_PUBLIC);
    ck_assert_int_eq(t.entries[3].auth, ROUTE_AUTH_PUBLISHER);
}
END_TEST

START_TEST(parse_auth)
{
    route_table_t t;
    parse_ok(&t, "{\"kinds\":{\"k\":\"tcp://127.0.0.1:1\"},\"routes\":["
                 "{\"path\":\"/a\",\"kind\":\"k\"},{\"path\":\"/b\",\"kind\":\"k\",\"auth\":\"public\"},"
                 "{\"path\":\"/c\",\"kind\":\"k\",\"auth\":\"user\"},{\"path\":\"/d\",\"kind\":\"k\",\"auth\":\"owner\"},"
                 "{\"path\":\"/e\",\"kind\":\"k\",\"auth\":\"publisher\"}]}");
    ck_assert_int_eq(t.entries[0].auth, ROUTE_AUTH_PUBLISHER); /* the default: the safe one */
    ck_assert_int_eq(t.entries[1].auth, ROUTE_AUTH_PUBLIC);
    ck_assert_int_eq(t.entries[2].auth, ROUTE_AUTH_USER);
    ck_assert_int_eq(t.entries[3].auth, ROUTE_AUTH_OWNER);
    ck_assert_int_eq(t.entries[4].auth, ROUTE_AUTH_PUBLISHER);
    assert_parse_error("{\"kinds\":{\"k\":\"tcp://h:1\"},\"routes\":[{\"path\":\"/a\",\"kind\":\"k\",\"auth\":\"admin\"}]}",
                       "\"auth\" must be \"public\", \"user\", \"publisher\" or \"owner\"");
    assert_parse_error("{\"kinds\":{\"k\":\"tcp://h:1\"},\"routes\":[{\"path\":\"/a\",\"kind\":\"k\",\"auth\":true}]}",
                       "\"auth\" must be");
    assert_parse_error("{\"kinds\":{},\"routes\":[{\"path\":\"/u/\",\"upstream\":\"http://h/\",\"auth\":\"user\"}]}",
                       "\"auth\" applies to worker routes only");
}
END_TEST

START_TEST(builtin_405_and_404)
{
    route_table_t t;
    route_table_builtin(&t, "tcp://127.0.0.1:7103");
    /* the path is routed, the method is not: the Allow list names what is */
    assert_no_match(&t, "GET", "/v1/orders", "POST");
    assert_no_match(&t, "PUT", "/v1/orders", "POST");
    assert_no_match(&t, "post", "/v1/orders", "POST"); /* methods are case-sensitive (RFC 9110) */
    assert_no_match(&t, "DELETE", "/v1/orders/ORD1", "GET");
    assert_no_match(&t, "POST", "/v1/orders/ORD1", "GET");
    assert_no_match(&t, "POST", "/v1/inventory", "GET");
    assert_no_match(&t, "GET", "/v1/inventory/item1", "PUT");
    /* not routed at all: the gateway's own routes (or its 404) take over */
    assert_no_match(&t, "GET", "/v1/orders/", ""); /* a prefix matches only something below it */
    assert_no_match(&t, "POST", "/v1/orders/", "");
    assert_no_match(&t, "POST", "/v1/ordersX", "");
    assert_no_match(&t, "POST", "/v1/order", "");
    assert_no_match(&t, "GET", "/v1/inventory/", "");
    assert_no_match(&t, "GET", "/v1/inventoryX", "");
    assert_no_match(&t, "POST", "/v1/notifications", "");
    assert_no_match(&t, "GET", "/healthz", "");
    assert_no_match(&t, "GET", "/", "");
    assert_no_match(&t, "GET", "", "");
    /* below a prefix, any depth: the worker decides what it serves */
    assert_match(&t, "GET", "/v1/orders/a/b", "/v1/orders/", "GET");
}
END_TEST

/* allow may be NULL or tiny: matching still works and nothing is written past allowsz. */
START_TEST(allow_buffer)
{
    route_table_t t;
    route_table_builtin(&t, "tcp://127.0.0.1:7103");
    ck_assert_ptr_null(route_table_match(&t, LIT("GET"), LIT("/v1/orders"), NULL, 0));
    ck_assert_ptr_nonnull(route_table_match(&t, LIT("POST"), LIT("/v1/orders"), NULL, 0));
    char small[4] = {'x', 'x', 'x', 'x'};
    ck_assert_ptr_null(route_table_match(&t, LIT("GET"), LIT("/v1/orders"), small, 3));
    ck_assert_msg(small[3] == 'x', "wrote past allowsz");
    ck_assert_msg(memchr(small, '\0', 3) != NULL, "the allow list is not terminated");
    char one[2] = {'x', 'x'};
    ck_assert_ptr_null(route_table_match(&t, LIT("GET"), LIT("/v1/orders"), one, 1));
    ck_assert_int_eq(one[0], '\0');
    ck_assert_int_eq(one[1], 'x');
}
END_TEST

/* ---- the file format ------------------------------------------------------------------------------------------- */

static const char FULL[] =
    "{\"kinds\": {\"orders\": \"tcp://0.0.0.0:7103\", \"billing\": \"ipc:///tmp/billing.ipc\"},\n"
    " \"routes\": [\n"
    "  {\"method\": \"POST\", \"path\": \"/v1/orders\", \"kind\": \"orders\", \"timeout_ms\": 5000, \"retry\": true},\n"
    "  {\"method\": \"GET\", \"path\": \"/v1/orders/\", \"kind\": \"orders\"},\n"
    "  {\"path\": \"/legacy/\", \"upstream\": \"http://127.0.0.1:9000/api/\", \"timeout_ms\": 3000},\n"
    "  {\"path\": \"/v1/invoices\", \"kind\": \"billing\", \"retry\": false},\n"
    "  {\"method\": \"PUT\", \"path\": \"/v1/invoices\", \"kind\": \"orders\"},\n"
    "  {\"path\": \"/secure/\", \"upstream\": \"https://example.org\"}\n"
    " ]}";

START_TEST(parse_full)
{
    route_table_t t;
    route_table_builtin(&t, "tcp://127.0.0.1:7103");
    parse_ok(&t, FULL);
    ck_assert_int_eq(t.nkinds, 2);
    ck_assert_str_eq(t.kinds[0].name, "orders");
    ck_assert_str_eq(t.kinds[0].address, "tcp://0.0.0.0:7103");
    ck_assert_str_eq(t.kinds[1].name, "billing");
    ck_assert_str_eq(t.kinds[1].address, "ipc:///tmp/billing.ipc");
    ck_assert_int_eq(t.n, 6);

    const route_entry_t *e = &t.entries[0];
    ck_assert_str_eq(e->method, "POST");
    ck_assert_str_eq(e->path, "/v1/orders");
    ck_assert(!e->prefix && e->kind == 0 && e->timeout_ms == 5000 && e->retry);
    e = &t.entries[1];
    ck_assert(e->prefix && e->kind == 0);
    ck_assert_int_eq(e->timeout_ms, 1000); /* the default */
    ck_assert(e->retry);                   /* the default */
    e = &t.entries[2];
    ck_assert_int_eq(e->kind, -1);
    ck_assert_str_eq(e->upstream, "http://127.0.0.1:9000/api/");
    ck_assert_str_eq(e->method, "*");
    ck_assert(e->prefix); /* h2o matches upstream paths by prefix */
    ck_assert_int_eq(e->timeout_ms, 3000);
    e = &t.entries[3];
    ck_assert_str_eq(e->method, "*"); /* no method: any */
    ck_assert(e->kind == 1 && !e->retry && !e->prefix);
    e = &t.entries[5];
    ck_assert(e->kind == -1 && e->prefix);
    ck_assert_str_eq(e->upstream, "https://example.org");
}
END_TEST

START_TEST(match_parsed)
{
    route_table_t t;
    route_table_builtin(&t, "tcp://127.0.0.1:7103");
    parse_ok(&t, FULL);
    /* the file replaced the whole built-in table */
    assert_no_match(&t, "GET", "/v1/inventory", "");
    assert_no_match(&t, "PUT", "/v1/inventory/item1", "");
    assert_match(&t, "POST", "/v1/orders", "/v1/orders", "POST");
    assert_no_match(&t, "GET", "/v1/orders", "POST");
    /* "*" takes every method; the first entry that matches wins, so the PUT entry after it is never reached */
    const route_entry_t *e = assert_match(&t, "DELETE", "/v1/invoices", "/v1/invoices", "*");
    ck_assert_int_eq(e->kind, 1);
    e = assert_match(&t, "PUT", "/v1/invoices", "/v1/invoices", "*");
    ck_assert_int_eq(e->kind, 1);
    e = assert_match(&t, "BREW", "/v1/invoices", "/v1/invoices", "*");
    /* upstream entries are h2o's: never matched here, and never in an Allow list */
    assert_no_match(&t, "GET", "/legacy/x", "");
    assert_no_match(&t, "POST", "/legacy/", "");
    assert_no_match(&t, "GET", "/secure/a/b", "");
}
END_TEST

/* Several entries on one path: the Allow list names each method once, in table order. */
START_TEST(allow_list)
{
    route_table_t t;
    parse_ok(&t, "{\"kinds\":{\"k\":\"tcp://127.0.0.1:1\"},\"routes\":["
                 "{\"method\":\"GET\",\"path\":\"/r/\",\"kind\":\"k\"},"
                 "{\"method\":\"PUT\",\"path\":\"/r/\",\"kind\":\"k\"},"
                 "{\"method\":\"GET\",\"path\":\"/r/x\",\"kind\":\"k\"},"
                 "{\"method\":\"DELETE\",\"path\":\"/r/x\",\"kind\":\"k\"},"
                 "{\"method\":\"PATCH\",\"path\":\"/r/\",\"kind\":\"k\"}]}");
    assert_no_match(&t, "POST", "/r/x", "GET, PUT, DELETE, PATCH");
    assert_no_match(&t, "POST", "/r/y", "GET, PUT, PATCH");
    assert_match(&t, "DELETE", "/r/x", "/r/x", "DELETE");
    assert_match(&t, "GET", "/r/x", "/r/", "GET"); /* the prefix entry comes first */

    /* a method that is a substring of one already listed is still listed */
    parse_ok(&t, "{\"kinds\":{\"k\":\"tcp://127.0.0.1:1\"},\"routes\":["
                 "{\"method\":\"PATCH\",\"path\":\"/p\",\"kind\":\"k\"},"
                 "{\"method\":\"PAT\",\"path\":\"/p\",\"kind\":\"k\"},"
                 "{\"method\":\"GET\",\"path\":\"/p\",\"kind\":\"k\"}]}");
    assert_no_match(&t, "POST", "/p", "PATCH, PAT, GET");
    assert_match(&t, "PAT", "/p", "/p", "PAT");
}
END_TEST

START_TEST(parse_bounds)
{
    route_table_t t;
    char json[20000], *p;
    /* ROUTE_TABLE_MAX routes pass, one more does not */
    p = json + sprintf(json, "{\"kinds\":{\"k\":\"tcp://127.0.0.1:1\"},\"routes\":[");
    for (int i = 0; i < ROUTE_TABLE_MAX; ++i)
        p += sprintf(p, "%s{\"path\":\"/r%d\",\"kind\":\"k\"}", i != 0 ? "," : "", i);
    strcpy(p, "]}");
    parse_ok(&t, json);
    ck_assert_int_eq(t.n, ROUTE_TABLE_MAX);
    assert_match(&t, "GET", "/r63", "/r63", "*");
    sprintf(p, ",{\"path\":\"/r%d\",\"kind\":\"k\"}]}", ROUTE_TABLE_MAX);
    assert_parse_error(json, "more than 64 routes");

    /* ROUTE_KINDS_MAX kinds pass, one more does not */
    p = json + sprintf(json, "{\"kinds\":{");
    for (int i = 0; i < ROUTE_KINDS_MAX; ++i)
        p += sprintf(p, "%s\"k%d\":\"tcp://127.0.0.1:%d\"", i != 0 ? "," : "", i, 7000 + i);
    strcpy(p, "},\"routes\":[]}");
    parse_ok(&t, json);
    ck_assert_int_eq(t.nkinds, ROUTE_KINDS_MAX);
    ck_assert_int_eq(t.n, 0);
    sprintf(p, ",\"k%d\":\"tcp://127.0.0.1:1\"},\"routes\":[]}", ROUTE_KINDS_MAX);
    assert_parse_error(json, "more than 8 kinds");

    /* a kind name of 31 characters passes, 32 do not */
    char name[40];
    memset(name, 'n', 32);
    name[31] = '\0';
    sprintf(json, "{\"kinds\":{\"%s\":\"tcp://127.0.0.1:1\"},\"routes\":[{\"path\":\"/a\",\"kind\":\"%s\"}]}", name, name);
    parse_ok(&t, json);
    ck_assert_str_eq(t.kinds[0].name, name);
    name[31] = 'n', name[32] = '\0';
    sprintf(json, "{\"kinds\":{\"%s\":\"tcp://127.0.0.1:1\"},\"routes\":[]}", name);
    assert_parse_error(json, "needs a name of 1-31 characters");

    /* a path of 255 characters passes, 256 do not */
    char path[300];
    path[0] = '/';
    memset(path + 1, 'p', 255);
    path[255] = '\0';
    sprintf(json, "{\"kinds\":{\"k\":\"tcp://127.0.0.1:1\"},\"routes\":[{\"path\":\"%s\",\"kind\":\"k\"}]}", path);
    parse_ok(&t, json);
    ck_assert_int_eq(strlen(t.entries[0].path), 255);
    path[255] = 'p', path[256] = '\0';
    sprintf(json, "{\"kinds\":{\"k\":\"tcp://127.0.0.1:1\"},\"routes\":[{\"path\":\"%s\",\"kind\":\"k\"}]}", path);
    assert_parse_error(json, "needs a \"path\" starting with /");

    /* timeout_ms 1 and 600000 pass */
    parse_ok(&t, "{\"kinds\":{\"k\":\"tcp://127.0.0.1:1\"},\"routes\":[{\"path\":\"/a\",\"kind\":\"k\",\"timeout_ms\":1},"
                 "{\"path\":\"/b\",\"kind\":\"k\",\"timeout_ms\":600000}]}");
    ck_assert_int_eq(t.entries[0].timeout_ms, 1);
    ck_assert_int_eq(t.entries[1].timeout_ms, 600000);

    /* an empty table is a table: nothing routed */
    parse_ok(&t, "{\"kinds\":{},\"routes\":[]}");
    ck_assert_int_eq(t.n, 0);
    ck_assert_int_eq(t.nkinds, 0);
    assert_no_match(&t, "POST", "/v1/orders", "");
}
END_TEST

START_TEST(parse_errors)
{
    assert_parse_error("", "invalid JSON");
    assert_parse_error("{", "invalid JSON");
    assert_parse_error("{\"kinds\":{},\"routes\":[]} x", "invalid JSON");
    assert_parse_error("{\"kinds\":{\"a\":\"tcp://h:1\",\"a\":\"tcp://h:2\"},\"routes\":[]}", "invalid JSON"); /* duplicate */
    assert_parse_error("[]", "the table is {");
    assert_parse_error("{\"routes\":[]}", "the table is {");
    assert_parse_error("{\"kinds\":{}}", "the table is {");
    assert_parse_error("{\"kinds\":[],\"routes\":[]}", "the table is {");
    assert_parse_error("{\"kinds\":{},\"routes\":{}}", "the table is {");

    /* kinds */
    assert_parse_error("{\"kinds\":{\"k\":7},\"routes\":[]}", "kind \"k\": needs a name of 1-31 characters and an nng URL");
    assert_parse_error("{\"kinds\":{\"\":\"tcp://h:1\"},\"routes\":[]}", "needs a name of 1-31 characters");
    assert_parse_error("{\"kinds\":{\"notifier\":\"tcp://h:1\"},\"routes\":[]}", "kind \"notifier\" is built in");
    assert_parse_error("{\"kinds\":{\"history\":\"tcp://h:1\"},\"routes\":[]}", "kind \"history\" is built in");

    /* routes */
    static const char K[] = "{\"kinds\":{\"k\":\"tcp://127.0.0.1:1\"},\"routes\":[%s]}";
    static const struct {
        const char *route, *error;
    } bad[] = {
        {"5", "route 0: needs a \"path\" starting with /"},
        {"{}", "route 0: needs a \"path\""},
        {"{\"kind\":\"k\"}", "route 0: needs a \"path\""},
        {"{\"path\":7,\"kind\":\"k\"}", "route 0: needs a \"path\""},
        {"{\"path\":\"v1/x\",\"kind\":\"k\"}", "route 0: needs a \"path\""},
        {"{\"path\":\"\",\"kind\":\"k\"}", "route 0: needs a \"path\""},
        {"{\"path\":\"/a\"}", "route 0 (/a): needs either a \"kind\" or an \"upstream\""},
        {"{\"path\":\"/a\",\"kind\":\"k\",\"upstream\":\"http://h/\"}", "needs either a \"kind\" or an \"upstream\""},
        {"{\"path\":\"/a\",\"kind\":\"nope\"}", "route 0 (/a): kind is not one of \"kinds\""},
        {"{\"path\":\"/a\",\"kind\":7}", "kind is not one of \"kinds\""},
        {"{\"path\":\"/a\",\"kind\":\"k\",\"method\":\"\"}", "\"method\" must be an HTTP method or \"*\""},
        {"{\"path\":\"/a\",\"kind\":\"k\",\"method\":5}", "\"method\" must be an HTTP method"},
        {"{\"path\":\"/a\",\"kind\":\"k\",\"method\":\"ABCDEFGHIJKLMNOP\"}", "\"method\" must be an HTTP method"},
        {"{\"path\":\"/a\",\"kind\":\"k\",\"timeout_ms\":0}", "\"timeout_ms\" must be 1-600000"},
        {"{\"path\":\"/a\",\"kind\":\"k\",\"timeout_ms\":600001}", "\"timeout_ms\" must be 1-600000"},
        {"{\"path\":\"/a\",\"kind\":\"k\",\"timeout_ms\":-1}", "\"timeout_ms\" must be 1-600000"},
        {"{\"path\":\"/a\",\"kind\":\"k\",\"timeout_ms\":1.5}", "\"timeout_ms\" must be 1-600000"},
        {"{\"path\":\"/a\",\"kind\":\"k\",\"timeout_ms\":\"100\"}", "\"timeout_ms\" must be 1-600000"},
        {"{\"path\":\"/a\",\"kind\":\"k\",\"retry\":1}", "\"retry\" must be true or false"},
        {"{\"path\":\"/a\",\"kind\":\"k\",\"retry\":\"yes\"}", "\"retry\" must be true or false"},
        {"{\"path\":\"/a\",\"upstream\":\"ftp://h/\"}", "\"upstream\" must be an http:// or https:// URL"},
        {"{\"path\":\"/a\",\"upstream\":\"127.0.0.1:9000\"}", "\"upstream\" must be an http:// or https:// URL"},
        {"{\"path\":\"/a\",\"upstream\":7}", "\"upstream\" must be an http:// or https:// URL"},
        {"{\"path\":\"/a\",\"upstream\":null}", "\"upstream\" must be an http:// or https:// URL"},
        /* the index of the bad route is named */
        {"{\"path\":\"/ok\",\"kind\":\"k\"},{\"path\":\"/b\",\"kind\":\"zz\"}", "route 1 (/b): kind is not one of"},
    };
    char json[1024];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        snprintf(json, sizeof(json), K, bad[i].route);
        assert_parse_error(json, bad[i].error);
    }

    /* an upstream URL of 255 characters passes, 256 do not */
    char url[300];
    strcpy(url, "http://127.0.0.1:9000/");
    memset(url + strlen(url), 'u', 255 - strlen(url));
    url[255] = '\0';
    route_table_t t;
    snprintf(json, sizeof(json), "{\"kinds\":{},\"routes\":[{\"path\":\"/u/\",\"upstream\":\"%s\"}]}", url);
    parse_ok(&t, json);
    ck_assert_int_eq(strlen(t.entries[0].upstream), 255);
    url[255] = 'u', url[256] = '\0';
    snprintf(json, sizeof(json), "{\"kinds\":{},\"routes\":[{\"path\":\"/u/\",\"upstream\":\"%s\"}]}", url);
    assert_parse_error(json, "\"upstream\" must be an http:// or https:// URL");
}
END_TEST

static Suite *route_table_suite(void)
{
    Suite *s = suite_create("route_table");
    TCase *tc = tcase_create("route_table");
    tcase_add_test(tc, builtin);
    tcase_add_test(tc, builtin_405_and_404);
    tcase_add_test(tc, allow_buffer);
    tcase_add_test(tc, parse_full);
    tcase_add_test(tc, match_parsed);
    tcase_add_test(tc, allow_list);
    tcase_add_test(tc, parse_bounds);
    tcase_add_test(tc, parse_errors);
    tcase_add_test(tc, parse_auth);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(route_table_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

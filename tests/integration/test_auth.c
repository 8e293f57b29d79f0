/*
 * Authentication against the real system: every route and both socket kinds with another user's token (403, and
 * nothing of the user in the answer or in the store), without a token, with an expired, not-yet-valid, wrongly signed
 * or alg:none token (401); the right token, the query's token and API keys work; the gateway refuses to start without a
 * secret unless --insecure-no-auth.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "harness.h"

#define API_KEY "it-publisher-key-0123456789abcdef"

static harness_t *sys;
static char api_keys_path[400];
static const char *gateway_args[] = {"--api-keys-file", api_keys_path, NULL};

/* One system for the TCase: orders too, and an API keys file. */
static void shared_up(void)
{
    snprintf(api_keys_path, sizeof(api_keys_path), "/tmp/notigate-it-apikeys.%d", (int)getpid());
    FILE *fp = fopen(api_keys_path, "w");
    fputs("# publishers\n" API_KEY "\n", fp);
    fclose(fp);
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    opts.orders = 1;
    opts.gateway_args = gateway_args;
    sys = harness_start("auth", &opts);
}

static void shared_down(void)
{
    harness_stop(sys);
    sys = NULL;
    unlink(api_keys_path);
}

static harness_resp_t *req_with(const char *method, const char *path, const char *body, const char *token, const char *header)
{
    harness_req_t req = {.method = method, .path = path, .body = body, .token = token, .header = header};
    return harness_request(sys, &req);
}

/* Asserts r is a 401/403 JSON error with code, a WWW-Authenticate header, and none of secret in its body. */
static void assert_refused(harness_resp_t *r, int status, const char *code, const char *secret, const char *what)
{
    ck_assert_msg(r->status == status, "%s: expected %d, got %ld: %.300s", what, status, r->status, r->body);
    HARNESS_ASSERT_ERROR(r, status, code);
    ck_assert_msg(strncmp(r->www_authenticate, "Bearer realm=\"notigate\"", 22) == 0, "%s: WWW-Authenticate is '%s'", what,
                  r->www_authenticate);
    ck_assert_msg(json_object_size(r->json) == 1, "%s: more than the error in %.300s", what, r->body);
    if (secret != NULL)
        ck_assert_msg(strstr(r->body, secret) == NULL, "%s: the answer holds the other user's data: %.300s", what, r->body);
    harness_resp_free(r);
}

/* The WebSocket handshake of path with a token in the query (or none), over HTTP/1.1. */
static harness_resp_t *upgrade(const char *path, const char *token)
{
    char full[2048];
    snprintf(full, sizeof(full), "%s%s%s", path, token != NULL ? "&token=" : "", token != NULL ? token : "");
    harness_req_t req = {.path = full,
                         .token = HARNESS_NO_TOKEN,
                         .timeout_ms = 3000,
                         .header = "Connection: Upgrade\nUpgrade: websocket\nSec-WebSocket-Version: 13\n"
                                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="};
    return harness_request(sys, &req);
}

static void b64url(const char *in, char *out)
{
    int len = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in, (int)strlen(in));
    while (len > 0 && out[len - 1] == '=')
        --len;
    for (int i = 0; i < len; ++i)
        out[i] = out[i] == '+' ? '-' : (out[i] == '/' ? '_' : out[i]);
    out[len] = '\0';
}

/* Every route, with bob's token on alice's data: 403, the body is only the error, and nothing changed. */
START_TEST(test_other_users_token_reads_nothing)
{
    char alice_msg[96], alice_tok[1024], bob_tok[1024], path[1400], body[512], order_id[64];
    char alice[64], bob[64];
    harness_user(alice, "alice");
    harness_user(bob, "bob");
    snprintf(alice_msg, sizeof(alice_msg), "secret-of-%s", alice);
    harness_token(sys, alice_tok, sizeof(alice_tok), alice, NULL, 600);
    harness_token(sys, bob_tok, sizeof(bob_tok), bob, NULL, 600);
    uint64_t id = harness_publish(sys, alice, alice_msg, NULL, NULL); /* as the harness's publisher */

    snprintf(path, sizeof(path), "/v1/users/%s/notifications", alice);
    assert_refused(req_with("GET", path, NULL, bob_tok, NULL), 403, "forbidden", alice_msg, "list");
    snprintf(path, sizeof(path), "/v1/users/%s/notifications?token=%s", alice, bob_tok);
    assert_refused(req_with("GET", path, NULL, HARNESS_NO_TOKEN, NULL), 403, "forbidden", alice_msg, "list, query token");
    snprintf(path, sizeof(path), "/hybrid/notifications?user_id=%s", alice);
    assert_refused(req_with("GET", path, NULL, bob_tok, NULL), 403, "forbidden", alice_msg, "hybrid");
    snprintf(path, sizeof(path), "/v1/users/%s/notifications/%llu/read", alice, (unsigned long long)id);
    assert_refused(req_with("POST", path, "", bob_tok, NULL), 403, "forbidden", alice_msg, "mark one read");
    snprintf(path, sizeof(path), "/v1/users/%s/notifications/read", alice);
    assert_refused(req_with("POST", path, "", bob_tok, NULL), 403, "forbidden", alice_msg, "mark all read");
    snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"message\":\"forged\"}", alice);
    assert_refused(req_with("POST", "/v1/notifications", body, bob_tok, NULL), 403, "forbidden", NULL, "publish");

    /* alice's notification is still hers, unread, and nothing was published in her name */
    snprintf(path, sizeof(path), "/v1/users/%s/notifications", alice);
    harness_resp_t *r = req_with("GET", path, NULL, alice_tok, NULL);
    ck_assert_msg(r->status == 200, "alice's own list: %ld %.300s", r->status, r->body);
    json_t *hist = json_object_get(r->json, "historical"), *rt = json_object_get(r->json, "realtime");
    ck_assert_msg(json_array_size(hist) + json_array_size(rt) == 1 && strstr(r->body, "forged") == NULL, "alice's list: %.500s",
                  r->body);
    ck_assert_msg(strstr(r->body, "\"read\":false") != NULL, "bob marked alice's notification read: %.500s", r->body);
    harness_resp_free(r);

    /* orders: alice places one; bob can neither read it, nor place one for her, nor replay her Idempotency-Key */
    harness_resp_t *set = req_with("PUT", "/v1/inventory/item1", "{\"quantity\":100}", NULL, NULL); /* as the publisher */
    ck_assert_msg(set->status == 200, "set stock: %ld %.200s", set->status, set->body);
    harness_resp_free(set);
    long long stock = harness_redis_int(sys, "HGET ord:stock item1\r\n");
    snprintf(body, sizeof(body),
             "{\"customer_id\":\"%s\",\"items\":[{\"product_id\":\"item1\",\"quantity\":1}],\"total_amount\":3}", alice);
    char key[128];
    snprintf(key, sizeof(key), "Idempotency-Key: auth-%s", alice);
    r = req_with("POST", "/v1/orders", body, alice_tok, key);
    ck_assert_msg(r->status == 201, "alice's order: %ld %.300s", r->status, r->body);
    snprintf(order_id, sizeof(order_id), "%s", json_string_value(json_object_get(json_object_get(r->json, "order"), "order_id")));
    harness_resp_free(r);
    ck_assert_int_eq(harness_redis_int(sys, "HGET ord:stock item1\r\n"), stock - 1);

    snprintf(path, sizeof(path), "/v1/orders/%s", order_id);
    assert_refused(req_with("GET", path, NULL, bob_tok, NULL), 403, "forbidden", order_id, "get alice's order");
    assert_refused(req_with("POST", "/v1/orders", body, bob_tok, NULL), 403, "forbidden", NULL, "order for alice");
    char bob_body[512];
    snprintf(bob_body, sizeof(bob_body),
             "{\"customer_id\":\"%s\",\"items\":[{\"product_id\":\"item1\",\"quantity\":1}],\"total_amount\":3}", bob);
    assert_refused(req_with("POST", "/v1/orders", bob_body, bob_tok, key), 403, "forbidden", order_id, "alice's key replayed");
    ck_assert_int_eq(harness_redis_int(sys, "HGET ord:stock item1\r\n"), stock - 1);
    r = req_with("GET", path, NULL, alice_tok, NULL);
    ck_assert_msg(r->status == 200 && strstr(r->body, order_id) != NULL, "alice's own order: %ld %.300s", r->status, r->body);
    harness_resp_free(r);
    assert_refused(req_with("PUT", "/v1/inventory/item1", "{\"quantity\":5}", bob_tok, NULL), 403, "forbidden", NULL, "set stock");
    ck_assert_int_eq(harness_redis_int(sys, "HGET ord:stock item1\r\n"), stock - 1);

    /* both socket kinds refuse the upgrade */
    snprintf(path, sizeof(path), "/v1/ws?user_id=%s", alice);
    assert_refused(upgrade(path, bob_tok), 403, "forbidden", alice_msg, "native WebSocket");
    snprintf(path, sizeof(path), "/socket.io/?EIO=4&transport=websocket&user_id=%s", alice);
    assert_refused(upgrade(path, bob_tok), 403, "forbidden", alice_msg, "Socket.IO");
}
END_TEST

/* No token, or a bad one: 401 on every route that needs one, and no data. */
START_TEST(test_missing_and_bad_tokens)
{
    char alice[64], path[256], tok[1024], claims[256], hdr[128], c64[512], forged[1200];
    harness_user(alice, "carol");
    char msg[96];
    snprintf(msg, sizeof(msg), "secret-of-%s", alice);
    harness_publish(sys, alice, msg, NULL, NULL);

    const struct {
        const char *method, *fmt, *body;
    } routes[] = {
        {"GET", "/v1/users/%s/notifications", NULL},
        {"GET", "/hybrid/notifications?user_id=%s", NULL},
        {"POST", "/v1/users/%s/notifications/1/read", ""},
        {"POST", "/v1/users/%s/notifications/read", ""},
        {"POST", "/v1/notifications", "{\"user_id\":\"x\",\"message\":\"m\"}"},
        {"POST", "/v1/orders", "{\"customer_id\":\"x\",\"items\":[{\"product_id\":\"item1\",\"quantity\":1}],\"total_amount\":1}"},
        {"GET", "/v1/orders/ORD20261125120000000001", NULL},
        {"PUT", "/v1/inventory/item1", "{\"quantity\":1}"},
        {"GET", "/v1/ws?user_id=%s", NULL}};

    /* tokens for alice that must not work */
    const char *bad[5];
    char expired[1024], future[1024], wrong_sig[1200];
    bad[0] = HARNESS_NO_TOKEN;
    bad[1] = harness_token(sys, expired, sizeof(expired), alice, NULL, -10);
    /* nbf an hour ahead (auth_mint sets none): signed here with the system's secret */
    snprintf(claims, sizeof(claims), "{\"sub\":\"%s\",\"exp\":%lld,\"nbf\":%lld}", alice, (long long)time(NULL) + 7200,
             (long long)time(NULL) + 3600);
    b64url("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", hdr);
    b64url(claims, c64);
    {
        unsigned char mac[64];
        unsigned mac_len;
        char signing[1024], sig[128];
        snprintf(signing, sizeof(signing), "%s.%s", hdr, c64);
        HMAC(EVP_sha256(), sys->jwt_secret, (int)strlen(sys->jwt_secret), (unsigned char *)signing, strlen(signing), mac, &mac_len);
        mac[mac_len] = '\0';
        int n = EVP_EncodeBlock((unsigned char *)sig, mac, (int)mac_len);
        while (n > 0 && sig[n - 1] == '=')
            --n;
        for (int i = 0; i < n; ++i)
            sig[i] = sig[i] == '+' ? '-' : (sig[i] == '/' ? '_' : sig[i]);
        sig[n] = '\0';
        snprintf(future, sizeof(future), "%s.%s", signing, sig);
    }
    bad[2] = future;
    /* a valid token's signature on other claims */
    harness_token(sys, tok, sizeof(tok), alice, "publish", 600);
    snprintf(claims, sizeof(claims), "{\"sub\":\"%s\",\"exp\":%lld,\"scope\":\"publish\"}", alice, (long long)time(NULL) + 99999);
    b64url(claims, c64);
    snprintf(wrong_sig, sizeof(wrong_sig), "%s.%s%s", hdr, c64, strrchr(tok, '.'));
    bad[3] = wrong_sig;
    /* alg none */
    char none_hdr[128];
    b64url("{\"alg\":\"none\",\"typ\":\"JWT\"}", none_hdr);
    snprintf(forged, sizeof(forged), "%s.%s.", none_hdr, c64);
    bad[4] = forged;
    static const char *codes[] = {"unauthorized", "token_expired", "token_not_yet_valid", "invalid_token", "invalid_token"};

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); ++i) {
        snprintf(path, sizeof(path), routes[i].fmt, alice);
        for (size_t j = 0; j < 5; ++j) {
            char what[400];
            snprintf(what, sizeof(what), "%s %s with token %zu", routes[i].method, path, j);
            harness_resp_t *r;
            if (strncmp(path, "/v1/ws", 6) == 0)
                r = upgrade(path, j == 0 ? NULL : bad[j]);
            else
                r = req_with(routes[i].method, path, routes[i].body, bad[j], NULL);
            assert_refused(r, 401, codes[j], msg, what);
        }
    }
    /* Socket.IO: a bad token given with the upgrade is refused before it */
    snprintf(path, sizeof(path), "/socket.io/?EIO=4&transport=websocket&user_id=%s", alice);
    assert_refused(upgrade(path, expired), 401, "token_expired", msg, "Socket.IO, expired token");
    /* a credential that is neither a token nor a key, and another scheme */
    assert_refused(req_with("POST", "/v1/notifications", "{}", "not-a-token", NULL), 401, "invalid_token", NULL, "garbage");
    harness_req_t basic = {.method = "GET", .token = HARNESS_NO_TOKEN, .header = "Authorization: Basic YTpi"};
    snprintf(path, sizeof(path), "/v1/users/%s/notifications", alice);
    basic.path = path;
    assert_refused(harness_request(sys, &basic), 401, "invalid_token", msg, "Basic scheme");
    /* what needs none still answers without one */
    harness_resp_t *r = req_with("GET", "/healthz", NULL, HARNESS_NO_TOKEN, NULL);
    ck_assert_int_eq(r->status, 200);
    harness_resp_free(r);
    r = req_with("GET", "/v1/inventory", NULL, HARNESS_NO_TOKEN, NULL);
    ck_assert_msg(r->status == 200, "inventory: %ld %.200s", r->status, r->body);
    harness_resp_free(r);
}
END_TEST

/* The right token works, by header and by query; publisher tokens and API keys publish; API keys read nobody's. */
START_TEST(test_right_credentials)
{
    char dave[64], tok[1024], pub[1024], path[1400], body[256];
    harness_user(dave, "dave");
    harness_token(sys, tok, sizeof(tok), dave, "read", 600);
    harness_token(sys, pub, sizeof(pub), "backoffice", "read publish", 600);

    snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"message\":\"by token\"}", dave);
    harness_resp_t *r = req_with("POST", "/v1/notifications", body, pub, NULL);
    ck_assert_msg(r->status == 201, "publish with a publisher token: %ld %.200s", r->status, r->body);
    uint64_t id = (uint64_t)json_integer_value(json_object_get(r->json, "id"));
    harness_resp_free(r);
    snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"message\":\"by key\"}", dave);
    r = req_with("POST", "/v1/notifications", body, API_KEY, NULL);
    ck_assert_msg(r->status == 201, "publish with the API key (Bearer): %ld %.200s", r->status, r->body);
    harness_resp_free(r);
    snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"message\":\"by x-api-key\"}", dave);
    r = req_with("POST", "/v1/notifications", body, HARNESS_NO_TOKEN, "X-API-Key: " API_KEY);
    ck_assert_msg(r->status == 201, "publish with X-API-Key: %ld %.200s", r->status, r->body);
    harness_resp_free(r);
    r = req_with("POST", "/v1/notifications", body, HARNESS_NO_TOKEN, "X-API-Key: " API_KEY "x");
    HARNESS_ASSERT_ERROR(r, 401, "invalid_token");
    harness_resp_free(r);

    snprintf(path, sizeof(path), "/v1/users/%s/notifications?token=%s", dave, tok);
    r = req_with("GET", path, NULL, HARNESS_NO_TOKEN, NULL);
    ck_assert_msg(r->status == 200 && strstr(r->body, "by x-api-key") != NULL, "list by query token: %ld %.300s", r->status,
                  r->body);
    harness_resp_free(r);
    snprintf(path, sizeof(path), "/v1/users/%s/notifications/%llu/read", dave, (unsigned long long)id);
    r = req_with("POST", path, "", tok, NULL);
    ck_assert_msg(r->status == 204, "mark read with the user's token: %ld %.200s", r->status, r->body);
    harness_resp_free(r);
    /* an API key is a publisher, not a user */
    snprintf(path, sizeof(path), "/v1/users/%s/notifications", dave);
    assert_refused(req_with("GET", path, NULL, API_KEY, NULL), 403, "forbidden", "by key", "API key reading");
    /* the publisher can set stock and place an order for a customer */
    r = req_with("PUT", "/v1/inventory/item3", "{\"quantity\":300}", API_KEY, NULL);
    ck_assert_msg(r->status == 200, "set stock with the API key: %ld %.200s", r->status, r->body);
    harness_resp_free(r);
    snprintf(body, sizeof(body),
             "{\"customer_id\":\"%s\",\"items\":[{\"product_id\":\"item3\",\"quantity\":1}],\"total_amount\":2}", dave);
    r = req_with("POST", "/v1/orders", body, tok, NULL); /* dave himself */
    ck_assert_msg(r->status == 201, "dave's own order: %ld %.200s", r->status, r->body);
    harness_resp_free(r);
}
END_TEST

/* Without a secret the gateway does not start, unless --insecure-no-auth; a short secret is refused too. */
START_TEST(test_refuses_to_start_without_secret)
{
    char out[4096], listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", sys->http_port); /* never bound: it exits first */
    const char *args[] = {"--listen", listen, "--threads", "1", NULL};
    const char *env[] = {"PATH=/usr/bin:/bin", NULL};
    int st = harness_run_gateway(sys, args, env, out, sizeof(out), 5000);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 2, "no secret: status %d, output: %s", st, out);
    ck_assert_msg(strstr(out, "no JWT secret") != NULL && strstr(out, "--insecure-no-auth") != NULL, "no reason given: %s", out);

    const char *env_short[] = {"PATH=/usr/bin:/bin", "NOTIGATE_JWT_SECRET=only-twenty-bytes-x", NULL};
    st = harness_run_gateway(sys, args, env_short, out, sizeof(out), 5000);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 2 && strstr(out, "32 to 4096 bytes") != NULL,
                  "short secret: status %d, output: %s", st, out);

    /* --insecure-no-auth: it starts, warns, and serves a user's list without a token */
    harness_opts_t opts = HARNESS_OPTS_DEFAULT;
    opts.no_auth = true;
    harness_t *open_sys = harness_start("auth-off", &opts);
    harness_req_t req = {.path = "/v1/users/nobody/notifications", .token = HARNESS_NO_TOKEN};
    harness_resp_t *r = harness_request(open_sys, &req);
    ck_assert_msg(r->status == 200, "no auth: %ld %.200s", r->status, r->body);
    harness_resp_free(r);
    ck_assert(harness_log_contains(harness_proc(open_sys, HARNESS_GATEWAY, 0), "AUTHENTICATION IS OFF"));
    ck_assert_int_eq(harness_stop(open_sys), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("auth");
    tcase_add_unchecked_fixture(tc, shared_up, shared_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_other_users_token_reads_nothing);
    tcase_add_test(tc, test_missing_and_bad_tokens);
    tcase_add_test(tc, test_right_credentials);
    tcase_add_test(tc, test_refuses_to_start_without_secret);
    suite_add_tcase(s, tc);
    return harness_main(s);
}

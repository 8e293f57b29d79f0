/*
 * Unit tests of gateway/auth.c: JWT HS256 verification (against tokens made by Python's hmac module, and against tokens
 * built here with every kind of defect), minting, scopes, secrets and API keys.
 */
#include <check.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth.h"

#define SECRET "unit-test-secret-0123456789abcdefghijklmnop" /* 43 bytes */
#define KEY (const uint8_t *)SECRET, sizeof(SECRET) - 1
#define NOW 1700000000

/* Made with Python 3 (hmac, hashlib, base64) from SECRET, independently of auth.c. */
static const char py_alice[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MjAwMDAwMDAwMCwibmJmIjoxNjAwMDAwMDAwLCJzY29wZSI6InJlYWQgcH"
    "VibGlzaCJ9.IF6ZsE-5CQ0ueGj9W_8peSGWLxN7PUxUFvkYXAg9YQY"; /* sub alice, exp 2000000000, nbf 1600000000, scope "read publish" */
static const char py_bob[] = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2Iuc21pdGgtMiIsImV4cCI6MTcwMDAwMDAwMC41fQ."
                             "5uJAJ4Szaa4MLAeregL_yUEarufGTBxdudJ0mOAXYwM"; /* sub bob.smith-2, exp 1700000000.5 */

static void b64url(const char *in, size_t n, char *out)
{
    int len = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in, (int)n);
    while (len > 0 && out[len - 1] == '=')
        --len;
    for (int i = 0; i < len; ++i)
        out[i] = out[i] == '+' ? '-' : (out[i] == '/' ? '_' : out[i]);
    out[len] = '\0';
}

/* A token from raw header and claims text, signed with key (the test's own HMAC call). */
static char *make_token(const char *header, const char *claims, const char *key)
{
    static char buf[8192];
    char seg[4096];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len;
    b64url(header, strlen(header), seg);
    strcpy(buf, seg);
    strcat(buf, ".");
    b64url(claims, strlen(claims), seg);
    strcat(buf, seg);
    HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)buf, strlen(buf), mac, &mac_len);
    b64url((const char *)mac, mac_len, seg);
    strcat(buf, ".");
    strcat(buf, seg);
    return buf;
}

static auth_result_t verify(const char *token, auth_claims_t *c)
{
    auth_claims_t scratch;
    return auth_verify(KEY, token, strlen(token), NOW, c != NULL ? c : &scratch);
}

#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

START_TEST(test_valid_python_tokens)
{
    auth_claims_t c;
    ck_assert_int_eq(verify(py_alice, &c), AUTH_OK);
    ck_assert_str_eq(c.sub, "alice");
    ck_assert_uint_eq(c.sub_len, 5);
    ck_assert_uint_eq(c.scopes, AUTH_SCOPE_PUBLISH);
    ck_assert_int_eq(c.exp, 2000000000);

    ck_assert_int_eq(verify(py_bob, &c), AUTH_OK); /* exp 1700000000.5 is still ahead of NOW */
    ck_assert_str_eq(c.sub, "bob.smith-2");
    ck_assert_uint_eq(c.scopes, 0);
    ck_assert_int_eq(auth_verify(KEY, py_bob, strlen(py_bob), NOW + 1, &c), AUTH_EXPIRED);
}
END_TEST

START_TEST(test_mint_round_trip)
{
    char tok[AUTH_TOKEN_MAX];
    auth_claims_t c;
    int n = auth_mint(KEY, "carol", "publish", NOW, 60, tok, sizeof(tok));
    ck_assert_int_gt(n, 0);
    ck_assert_uint_eq(strlen(tok), (size_t)n);
    ck_assert_int_eq(auth_verify(KEY, tok, (size_t)n, NOW, &c), AUTH_OK);
    ck_assert_str_eq(c.sub, "carol");
    ck_assert_uint_eq(c.scopes, AUTH_SCOPE_PUBLISH);
    ck_assert_int_eq(c.exp, NOW + 60);
    ck_assert_int_eq(auth_verify(KEY, tok, (size_t)n, NOW + 59, &c), AUTH_OK);
    ck_assert_int_eq(auth_verify(KEY, tok, (size_t)n, NOW + 60, &c), AUTH_EXPIRED);

    n = auth_mint(KEY, "dave", NULL, NOW, 60, tok, sizeof(tok));
    ck_assert_int_eq(auth_verify(KEY, tok, (size_t)n, NOW, &c), AUTH_OK);
    ck_assert_uint_eq(c.scopes, 0);

    ck_assert_int_eq(auth_mint(KEY, "no spaces", NULL, NOW, 60, tok, sizeof(tok)), -1);
    ck_assert_int_eq(auth_mint(KEY, "", NULL, NOW, 60, tok, sizeof(tok)), -1);
    ck_assert_int_eq(auth_mint(KEY, "eve", "bad\nscope", NOW, 60, tok, sizeof(tok)), -1);
    ck_assert_int_eq(auth_mint(KEY, "eve", NULL, NOW, 60, tok, 20), -1); /* too small */
}
END_TEST

START_TEST(test_expiry_and_nbf)
{
    ck_assert_int_eq(verify(make_token(HS256, "{\"sub\":\"a\",\"exp\":1699999999}", SECRET), NULL), AUTH_EXPIRED);
    ck_assert_int_eq(verify(make_token(HS256, "{\"sub\":\"a\",\"exp\":1700000000}", SECRET), NULL), AUTH_EXPIRED);
    ck_assert_int_eq(verify(make_token(HS256, "{\"sub\":\"a\",\"exp\":1700000001}", SECRET), NULL), AUTH_OK);
    ck_assert_int_eq(verify(make_token(HS256, "{\"sub\":\"a\",\"exp\":1800000000,\"nbf\":1700000001}", SECRET), NULL),
                     AUTH_NOT_YET_VALID);
    ck_assert_int_eq(verify(make_token(HS256, "{\"sub\":\"a\",\"exp\":1800000000,\"nbf\":1700000000}", SECRET), NULL), AUTH_OK);
    ck_assert_int_eq(verify(make_token(HS256, "{\"sub\":\"a\"}", SECRET), NULL), AUTH_NO_EXP);
    ck_assert_int_eq(verify(make_token(HS256, "{\"sub\":\"a\",\"exp\":\"1800000000\"}", SECRET), NULL), AUTH_MALFORMED);
    ck_assert_int_eq(verify(make_token(HS256, "{\"sub\":\"a\",\"exp\":1800000000,\"nbf\":null}", SECRET), NULL), AUTH_MALFORMED);
}
END_TEST

/* The cache answers as auth_verify does, for every kind of token, the first time (verified) and the next (remembered),
 * and at several times: a remembered token's exp and nbf are checked against each call's now. */
START_TEST(test_cache_answers_as_verify)
{
    static char tokens[10][8192];
    char long_claims[1024];
    snprintf(long_claims, sizeof(long_claims), "{\"sub\":\"longer\",\"exp\":1800000000,\"pad\":\"%0600d\"}", 7);
    const char *sources[][2] = {
        {HS256, "{\"sub\":\"alice\",\"exp\":1800000000,\"scope\":\"publish\"}"},
        {HS256, "{\"sub\":\"bob\",\"exp\":1700000100}"},                          /* expires between the nows */
        {HS256, "{\"sub\":\"carol\",\"exp\":1800000000,\"nbf\":1700000100}"},     /* becomes valid between them */
        {HS256, "{\"sub\":\"dave\",\"exp\":1699999999}"},                         /* expired */
        {"{\"alg\":\"none\"}", "{\"sub\":\"eve\",\"exp\":1800000000}"},           /* bad alg */
        {HS256, "{\"exp\":1800000000}"},                                          /* no subject */
        {HS256, long_claims},                                                     /* longer than the cache keeps */
    };
    size_t n = sizeof(sources) / sizeof(sources[0]);
    for (size_t i = 0; i < n; ++i)
        snprintf(tokens[i], sizeof(tokens[i]), "%s", make_token(sources[i][0], sources[i][1], SECRET));
    snprintf(tokens[n], sizeof(tokens[n]), "%s", make_token(HS256, sources[0][1], "another-secret-0123456789abcdefghijkl"));
    snprintf(tokens[n + 1], sizeof(tokens[n + 1]), "%s", tokens[0]);
    tokens[n + 1][strlen(tokens[n + 1]) - 1] ^= 1; /* alice's, one signature bit off: same length, same slot or not */
    snprintf(tokens[n + 2], sizeof(tokens[n + 2]), "not.a.token");
    n += 3;
    ck_assert_uint_gt(strlen(tokens[6]), AUTH_CACHE_TOKEN_MAX);

    static const int64_t nows[] = {NOW, NOW + 200, NOW, 1800000000, NOW + 50};
    for (size_t slots = 1; slots <= 64; slots *= 64) { /* one slot: every token pushes the last out; 64: they stay */
        auth_cache_t *cache = auth_cache_create(slots);
        for (size_t k = 0; k < sizeof(nows) / sizeof(nows[0]); ++k) {
            for (size_t rep = 0; rep < 2; ++rep) {
                for (size_t i = 0; i < n; ++i) {
                    auth_claims_t want, got;
                    memset(&want, 0, sizeof(want));
                    memset(&got, 0, sizeof(got));
                    auth_result_t w = auth_verify(KEY, tokens[i], strlen(tokens[i]), nows[k], &want);
                    auth_result_t g = auth_cache_verify(cache, KEY, tokens[i], strlen(tokens[i]), nows[k], &got);
                    ck_assert_msg(g == w, "token %zu at %lld (slots %zu, pass %zu): cache %d, verify %d", i, (long long)nows[k],
                                  slots, rep, g, w);
                    if (w == AUTH_OK) {
                        ck_assert_str_eq(got.sub, want.sub);
                        ck_assert_uint_eq(got.sub_len, want.sub_len);
                        ck_assert_uint_eq(got.scopes, want.scopes);
                        ck_assert_int_eq(got.exp, want.exp);
                    }
                }
            }
        }
        auth_cache_destroy(cache);
    }
}
END_TEST

/* A remembered token is the same bytes, not a look-alike: after alice's token is remembered, her claims under a changed
 * signature, and bob's claims under her signature, are still refused. */
START_TEST(test_cache_remembers_exact_bytes)
{
    auth_cache_t *cache = auth_cache_create(1);
    auth_claims_t c;
    ck_assert_int_eq(auth_cache_verify(cache, KEY, py_alice, strlen(py_alice), NOW, &c), AUTH_OK);
    char tok[512];
    snprintf(tok, sizeof(tok), "%s", py_alice);
    tok[strlen(tok) - 2] = tok[strlen(tok) - 2] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(auth_cache_verify(cache, KEY, tok, strlen(tok), NOW, &c), AUTH_BAD_SIGNATURE);
    char bob_claims[256], rebuilt[1024];
    const char *bob = "{\"sub\":\"bobby\",\"exp\":2000000000}";
    b64url(bob, strlen(bob), bob_claims);
    snprintf(rebuilt, sizeof(rebuilt), "%.*s%s%s", (int)(strchr(py_alice, '.') + 1 - py_alice), py_alice, bob_claims,
             strrchr(py_alice, '.'));
    ck_assert_int_eq(auth_cache_verify(cache, KEY, rebuilt, strlen(rebuilt), NOW, &c), AUTH_BAD_SIGNATURE);
    ck_assert_int_eq(auth_cache_verify(cache, KEY, py_alice, strlen(py_alice), NOW, &c), AUTH_OK); /* still there */
    auth_cache_destroy(cache);
}
END_TEST

START_TEST(test_wrong_signature)
{
    char tok[512];
    ck_assert_int_eq(verify(make_token(HS256, "{\"sub\":\"a\",\"exp\":1800000000}", "another-secret-0123456789abcdefghijkl"), NULL),
                     AUTH_BAD_SIGNATURE);
    /* alice's claims changed to bob's under alice's signature */
    snprintf(tok, sizeof(tok), "%s", py_alice);
    char *claims = strchr(tok, '.') + 1;
    char bob_claims[256];
    const char *bob = "{\"sub\":\"bobby\",\"exp\":2000000000,\"nbf\":1600000000,\"scope\":\"read publish\"}";
    b64url(bob, strlen(bob), bob_claims);
    char rebuilt[1024];
    snprintf(rebuilt, sizeof(rebuilt), "%.*s%s%s", (int)(claims - tok), tok, bob_claims, strrchr(py_alice, '.'));
    ck_assert_int_eq(verify(rebuilt, NULL), AUTH_BAD_SIGNATURE);
    /* one flipped character of the signature; a truncated and a missing signature */
    snprintf(tok, sizeof(tok), "%s", py_alice);
    char *last = tok + strlen(tok) - 2;
    *last = *last == 'A' ? 'B' : 'A';
    ck_assert_int_eq(verify(tok, NULL), AUTH_BAD_SIGNATURE);
    snprintf(tok, sizeof(tok), "%.*s", (int)strlen(py_alice) - 4, py_alice);
    ck_assert_int_ne(verify(tok, NULL), AUTH_OK);
    snprintf(tok, sizeof(tok), "%.*s", (int)(strrchr(py_alice, '.') - py_alice + 1), py_alice);
    ck_assert_int_eq(verify(tok, NULL), AUTH_MALFORMED); /* an empty segment */
    /* the right token under another secret */
    auth_claims_t c;
    const char other[] = "unit-test-secret-0123456789abcdefghijklmnoq";
    ck_assert_int_eq(auth_verify((const uint8_t *)other, sizeof(other) - 1, py_alice, strlen(py_alice), NOW, &c),
                     AUTH_BAD_SIGNATURE);
}
END_TEST

START_TEST(test_algorithms)
{
    const char *claims = "{\"sub\":\"a\",\"exp\":1800000000}";
    ck_assert_int_eq(verify(make_token("{\"alg\":\"none\"}", claims, SECRET), NULL), AUTH_BAD_ALG);
    ck_assert_int_eq(verify(make_token("{\"alg\":\"HS512\"}", claims, SECRET), NULL), AUTH_BAD_ALG);
    ck_assert_int_eq(verify(make_token("{\"alg\":\"RS256\"}", claims, SECRET), NULL), AUTH_BAD_ALG);
    ck_assert_int_eq(verify(make_token("{\"alg\":\"hs256\"}", claims, SECRET), NULL), AUTH_BAD_ALG);
    ck_assert_int_eq(verify(make_token("{\"typ\":\"JWT\"}", claims, SECRET), NULL), AUTH_BAD_ALG);
    ck_assert_int_eq(verify(make_token("{\"alg\":null}", claims, SECRET), NULL), AUTH_BAD_ALG);
    ck_assert_int_eq(verify(make_token("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", claims, SECRET), NULL), AUTH_BAD_ALG);
    ck_assert_int_eq(verify(make_token("{\"alg\":\"HS256\",\"typ\":\"JWE\"}", claims, SECRET), NULL), AUTH_MALFORMED);
    ck_assert_int_eq(verify(make_token("{\"alg\":\"HS256\",\"typ\":\"jwt\"}", claims, SECRET), NULL), AUTH_OK);

    /* alg none with an empty signature, the classic forgery */
    char tok[512], h[128], c[128];
    const char *none = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
    b64url(none, strlen(none), h);
    b64url(claims, strlen(claims), c);
    snprintf(tok, sizeof(tok), "%s.%s.", h, c);
    ck_assert_int_eq(verify(tok, NULL), AUTH_BAD_ALG);
}
END_TEST

START_TEST(test_malformed)
{
    const char *bad[] = {"",
                         "abc",
                         "a.b",
                         "a.b.c.d",
                         "..",
                         "eyJhbGciOiJIUzI1NiJ9..",
                         "eyJhbGciOiJIUzI1NiJ9 .e30.AAAA", /* a space */
                         "eyJhbGciOiJIUzI1NiJ9=.e30.AAAA", /* padding */
                         "eyJhbGciOiJIUzI1NiJ9.e30=.AAAA", /* padding */
                         "eyJhbGciOiJIUzI1NiJ9.e+0.AAAA",  /* standard, not URL, alphabet */
                         "eyJhbGciOiJIUzI1NiJ9.e.AAAA",    /* 1 character: no byte */
                         "eyJhbGciOiJIUzI1NiJ9.e31.AAAA",  /* non-zero unused bits ("e30" spelled another way) */
                         "bm90IGpzb24.e30.AAAA",           /* header is not JSON */
                         "WzFd.e30.AAAA",                  /* header is an array */
                         NULL};
    for (int i = 0; bad[i] != NULL; ++i) {
        auth_claims_t c;
        ck_assert_msg(auth_verify(KEY, bad[i], strlen(bad[i]), NOW, &c) == AUTH_MALFORMED,
                      "token %d (%s) was not refused as malformed", i, bad[i]);
    }
    /* validly signed, but the claims are not a JSON object, or not JSON at all, or have a duplicate key */
    ck_assert_int_eq(verify(make_token(HS256, "[1,2]", SECRET), NULL), AUTH_MALFORMED);
    ck_assert_int_eq(verify(make_token(HS256, "{\"sub\":\"a\",", SECRET), NULL), AUTH_MALFORMED);
    ck_assert_int_eq(verify(make_token(HS256, "{\"sub\":\"a\",\"sub\":\"b\",\"exp\":1800000000}", SECRET), NULL), AUTH_MALFORMED);
    ck_assert_int_eq(verify(make_token(HS256, "{\"sub\":\"a\",\"exp\":1800000000,\"scope\":[\"publish\"]}", SECRET), NULL),
                     AUTH_MALFORMED);
    /* a token over the size limit is refused before decoding */
    char *big = malloc(AUTH_TOKEN_MAX + 2);
    memset(big, 'A', AUTH_TOKEN_MAX + 1);
    big[10] = big[20] = '.';
    auth_claims_t c;
    ck_assert_int_eq(auth_verify(KEY, big, AUTH_TOKEN_MAX + 1, NOW, &c), AUTH_MALFORMED);
    free(big);
}
END_TEST

START_TEST(test_subject)
{
    ck_assert_int_eq(verify(make_token(HS256, "{\"exp\":1800000000}", SECRET), NULL), AUTH_BAD_SUBJECT);
    ck_assert_int_eq(verify(make_token(HS256, "{\"sub\":\"\",\"exp\":1800000000}", SECRET), NULL), AUTH_BAD_SUBJECT);
    ck_assert_int_eq(verify(make_token(HS256, "{\"sub\":\"al ice\",\"exp\":1800000000}", SECRET), NULL), AUTH_BAD_SUBJECT);
    ck_assert_int_eq(verify(make_token(HS256, "{\"sub\":\"../bob\",\"exp\":1800000000}", SECRET), NULL), AUTH_BAD_SUBJECT);
    ck_assert_int_eq(verify(make_token(HS256, "{\"sub\":42,\"exp\":1800000000}", SECRET), NULL), AUTH_BAD_SUBJECT);
    char claims[256];
    snprintf(claims, sizeof(claims), "{\"sub\":\"%065d\",\"exp\":1800000000}", 0); /* 65 characters */
    ck_assert_int_eq(verify(make_token(HS256, claims, SECRET), NULL), AUTH_BAD_SUBJECT);
    snprintf(claims, sizeof(claims), "{\"sub\":\"%064d\",\"exp\":1800000000}", 0);
    auth_claims_t c;
    ck_assert_int_eq(verify(make_token(HS256, claims, SECRET), &c), AUTH_OK);
    ck_assert_uint_eq(c.sub_len, 64);
}
END_TEST

START_TEST(test_scopes)
{
    ck_assert_uint_eq(auth_scopes_parse("publish", 7), AUTH_SCOPE_PUBLISH);
    ck_assert_uint_eq(auth_scopes_parse("  read   publish  ", 18), AUTH_SCOPE_PUBLISH);
    ck_assert_uint_eq(auth_scopes_parse("publisher", 9), 0);
    ck_assert_uint_eq(auth_scopes_parse("publis", 6), 0);
    ck_assert_uint_eq(auth_scopes_parse("read:publish", 12), 0);
    ck_assert_uint_eq(auth_scopes_parse("PUBLISH", 7), 0);
    ck_assert_uint_eq(auth_scopes_parse("", 0), 0);
    ck_assert_uint_eq(auth_scopes_parse("publish", 5), 0); /* only len bytes count */
    auth_claims_t c;
    ck_assert_int_eq(verify(make_token(HS256, "{\"sub\":\"a\",\"exp\":1800000000,\"scope\":\"read\"}", SECRET), &c), AUTH_OK);
    ck_assert_uint_eq(c.scopes, 0);
}
END_TEST

START_TEST(test_secret)
{
    auth_keys_t keys = {.secret_len = 0};
    char err[128];
    ck_assert_int_eq(auth_keys_set_secret(&keys, "short", 5, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "32"));
    ck_assert_int_eq(auth_keys_set_secret(&keys, "0123456789abcdef0123456789abcde\n", 32, err, sizeof(err)), -1); /* 31 + LF */
    ck_assert_int_eq(auth_keys_set_secret(&keys, SECRET "\r\n", sizeof(SECRET) + 1, err, sizeof(err)), 0);
    ck_assert_uint_eq(keys.secret_len, sizeof(SECRET) - 1);
    auth_claims_t c;
    ck_assert_int_eq(auth_verify(keys.secret, keys.secret_len, py_alice, strlen(py_alice), NOW, &c), AUTH_OK);
    auth_keys_dispose(&keys);
    ck_assert_uint_eq(keys.secret_len, 0);
}
END_TEST

START_TEST(test_api_keys)
{
    auth_keys_t keys = {.secret_len = 0};
    char err[128];
    const char file[] = "# publisher keys\n\n  key-one-0123456789abcdef  \r\nkey-two-0123456789abcdef\n";
    ck_assert(!auth_api_key_valid(&keys, "key-one-0123456789abcdef", 24)); /* none loaded */
    ck_assert_int_eq(auth_keys_load_api_keys(&keys, file, sizeof(file) - 1, err, sizeof(err)), 0);
    ck_assert_uint_eq(keys.napi_keys, 2);
    ck_assert(auth_api_key_valid(&keys, "key-one-0123456789abcdef", 24));
    ck_assert(auth_api_key_valid(&keys, "key-two-0123456789abcdef", 24));
    ck_assert(!auth_api_key_valid(&keys, "key-two-0123456789abcde", 23));
    ck_assert(!auth_api_key_valid(&keys, "key-two-0123456789abcdeg", 24));
    ck_assert(!auth_api_key_valid(&keys, "", 0));
    ck_assert(!auth_api_key_valid(&keys, "# publisher keys", 16));
    ck_assert_int_eq(auth_keys_load_api_keys(&keys, "too-short\n", 10, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "line 1"));
    ck_assert_int_eq(auth_keys_load_api_keys(&keys, "ok-key-0123456789abcdef\nbad key with spaces 0123\n", 48, err, sizeof(err)),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "line 2"));
    auth_keys_dispose(&keys);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_valid_python_tokens);
    tcase_add_test(tc, test_mint_round_trip);
    tcase_add_test(tc, test_expiry_and_nbf);
    tcase_add_test(tc, test_wrong_signature);
    tcase_add_test(tc, test_algorithms);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_subject);
    tcase_add_test(tc, test_scopes);
    tcase_add_test(tc, test_secret);
    tcase_add_test(tc, test_api_keys);
    tcase_add_test(tc, test_cache_answers_as_verify);
    tcase_add_test(tc, test_cache_remembers_exact_bytes);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#include <jansson.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "auth.h"
#include "strmap.h"

#define B64_MAX (AUTH_TOKEN_MAX + 4)

/* ---- base64url (RFC 4648 section 5, no padding): OpenSSL's base64 with the alphabet swapped ----------------------- */

/* Decodes len characters of base64url into out (room for len * 3 / 4 + 3 bytes). Strict: only the URL alphabet, no
 * padding, and the canonical encoding (unused bits zero), so that every byte string has one spelling. Returns the
 * decoded length or -1. */
static int b64url_decode(const char *in, size_t len, uint8_t *out)
{
    char buf[B64_MAX], check[B64_MAX + 1];
    if (len == 0 || len % 4 == 1 || len > AUTH_TOKEN_MAX)
        return -1;
    for (size_t i = 0; i < len; ++i) {
        char c = in[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            buf[i] = c;
        else if (c == '-')
            buf[i] = '+';
        else if (c == '_')
            buf[i] = '/';
        else
            return -1;
    }
    size_t padded = len, pad = 0;
    while (padded % 4 != 0)
        buf[padded++] = '=', ++pad;
    int n = EVP_DecodeBlock(out, (const unsigned char *)buf, (int)padded); /* counts the padding as zero bytes */
    if (n < 0 || (size_t)n < pad)
        return -1;
    n -= (int)pad;
    if (EVP_EncodeBlock((unsigned char *)check, out, n) != (int)padded || memcmp(check, buf, padded) != 0)
        return -1; /* non-zero unused bits: another spelling of the same bytes */
    return n;
}

/* Encodes n bytes as base64url without padding into out (room for n * 4 / 3 + 4). Returns the length. */
static size_t b64url_encode(const uint8_t *in, size_t n, char *out)
{
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (len > 0 && out[len - 1] == '=')
        --len;
    for (int i = 0; i < len; ++i)
        out[i] = out[i] == '+' ? '-' : (out[i] == '/' ? '_' : out[i]);
    out[len] = '\0';
    return (size_t)len;
}

/* ---- tokens ----------------------------------------------------------------------------------------------------- */

static json_t *decode_json(const char *seg, size_t len)
{
    uint8_t raw[B64_MAX];
    int n = b64url_decode(seg, len, raw);
    if (n < 0)
        return NULL;
    json_error_t jerr;
    json_t *v = json_loadb((const char *)raw, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (v != NULL && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

unsigned auth_scopes_parse(const char *s, size_t len)
{
    unsigned scopes = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && s[i] == ' ')
            ++i;
        size_t start = i;
        while (i < len && s[i] != ' ')
            ++i;
        if (i - start == 7 && memcmp(s + start, "publish", 7) == 0)
            scopes |= AUTH_SCOPE_PUBLISH;
    }
    return scopes;
}

/* Everything auth_verify checks but the times: fills claims, *exp and *nbf (-inf without one) on AUTH_OK. */
static auth_result_t verify_signed(const uint8_t *secret, size_t secret_len, const char *token, size_t len, auth_claims_t *claims,
                                   double *exp_at, double *nbf_at)
{
    auth_result_t rv = AUTH_MALFORMED;
    json_t *header = NULL, *payload = NULL;
    const char *end = token + len, *dot1, *dot2;

    if (len == 0 || len > AUTH_TOKEN_MAX || (dot1 = memchr(token, '.', len)) == NULL ||
        (dot2 = memchr(dot1 + 1, '.', (size_t)(end - dot1 - 1))) == NULL || memchr(dot2 + 1, '.', (size_t)(end - dot2 - 1)) != NULL)
        goto Exit;

    /* the header first: it says how the token is signed, and only HS256 is accepted */
    if ((header = decode_json(token, (size_t)(dot1 - token))) == NULL)
        goto Exit;
    json_t *alg = json_object_get(header, "alg"), *typ = json_object_get(header, "typ");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0 || json_object_get(header, "crit") != NULL) {
        rv = AUTH_BAD_ALG;
        goto Exit;
    }
    if (typ != NULL && !(json_is_string(typ) && strcasecmp(json_string_value(typ), "JWT") == 0))
        goto Exit;

    /* the claims' encoding, then the signature, before anything of the claims is believed */
    uint8_t raw[B64_MAX], sig[B64_MAX], mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    int raw_len = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), raw);
    int sig_len = b64url_decode(dot2 + 1, (size_t)(end - dot2 - 1), sig);
    if (raw_len < 0 || sig_len < 0)
        goto Exit;
    if (HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)token, (size_t)(dot2 - token), mac, &mac_len) == NULL ||
        (size_t)sig_len != mac_len || CRYPTO_memcmp(mac, sig, mac_len) != 0) {
        rv = AUTH_BAD_SIGNATURE;
        goto Exit;
    }

    json_error_t jerr;
    if ((payload = json_loadb((const char *)raw, (size_t)raw_len, JSON_REJECT_DUPLICATES, &jerr)) == NULL ||
        !json_is_object(payload))
        goto Exit;
    json_t *sub = json_object_get(payload, "sub"), *exp = json_object_get(payload, "exp"), *nbf = json_object_get(payload, "nbf"),
           *scope = json_object_get(payload, "scope");
    if ((exp != NULL && !json_is_number(exp)) || (nbf != NULL && !json_is_number(nbf)) || (scope != NULL && !json_is_string(scope)))
        goto Exit;
    if (!json_is_string(sub) || !valid_user_id(json_string_value(sub), json_string_length(sub))) {
        rv = AUTH_BAD_SUBJECT;
        goto Exit;
    }
    if (exp == NULL) {
        rv = AUTH_NO_EXP;
        goto Exit;
    }
    *exp_at = json_number_value(exp);
    *nbf_at = nbf != NULL ? json_number_value(nbf) : -INFINITY;
    memcpy(claims->sub, json_string_value(sub), json_string_length(sub));
    claims->sub_len = json_string_length(sub);
    claims->sub[claims->sub_len] = '\0';
    claims->scopes = scope != NULL ? auth_scopes_parse(json_string_value(scope), json_string_length(scope)) : 0;
    double e = json_number_value(exp);
    claims->exp = e > 9e15 ? INT64_MAX / 2 : (int64_t)e;
    rv = AUTH_OK;

Exit:
    if (header != NULL)
        json_decref(header);
    if (payload != NULL)
        json_decref(payload);
    return rv;
}

static auth_result_t check_times(int64_t now, double exp_at, double nbf_at)
{
    if ((double)now >= exp_at)
        return AUTH_EXPIRED;
    if ((double)now < nbf_at)
        return AUTH_NOT_YET_VALID;
    return AUTH_OK;
}

auth_result_t auth_verify(const uint8_t *secret, size_t secret_len, const char *token, size_t len, int64_t now,
                          auth_claims_t *claims)
{
    double exp_at, nbf_at;
    auth_result_t rv = verify_signed(secret, secret_len, token, len, claims, &exp_at, &nbf_at);
    return rv == AUTH_OK ? check_times(now, exp_at, nbf_at) : rv;
}

/* ---- verified tokens, remembered -------------------------------------------------------------------------------- */

typedef struct st_auth_cache_slot_t {
    size_t len; /* 0: empty */
    char token[AUTH_CACHE_TOKEN_MAX];
    auth_claims_t claims;
    double exp_at, nbf_at;
} auth_cache_slot_t;

struct st_auth_cache_t {
    uint64_t k0, k1; /* the slot a token lands in is not the client's to choose */
    size_t mask;
    auth_cache_slot_t slots[];
};

auth_cache_t *auth_cache_create(size_t nslots)
{
    if (nslots == 0 || (nslots & (nslots - 1)) != 0)
        abort(); /* a power of two: a bug, not an input */
    auth_cache_t *cache = calloc(1, sizeof(*cache) + nslots * sizeof(cache->slots[0]));
    if (cache == NULL || RAND_bytes((unsigned char *)&cache->k0, sizeof(cache->k0)) != 1 ||
        RAND_bytes((unsigned char *)&cache->k1, sizeof(cache->k1)) != 1)
        abort();
    cache->mask = nslots - 1;
    return cache;
}

void auth_cache_destroy(auth_cache_t *cache)
{
    if (cache != NULL)
        OPENSSL_cleanse(cache->slots, (cache->mask + 1) * sizeof(cache->slots[0])); /* tokens are credentials */
    free(cache);
}

auth_result_t auth_cache_verify(auth_cache_t *cache, const uint8_t *secret, size_t secret_len, const char *token, size_t len,
                                int64_t now, auth_claims_t *claims)
{
    if (len == 0 || len > AUTH_CACHE_TOKEN_MAX)
        return auth_verify(secret, secret_len, token, len, now, claims);
    auth_cache_slot_t *slot = &cache->slots[strmap_hash(token, len, cache->k0, cache->k1) & cache->mask];
    if (slot->len == len && CRYPTO_memcmp(slot->token, token, len) == 0) {
        *claims = slot->claims;
        return check_times(now, slot->exp_at, slot->nbf_at);
    }
    double exp_at, nbf_at;
    auth_result_t rv = verify_signed(secret, secret_len, token, len, claims, &exp_at, &nbf_at);
    if (rv != AUTH_OK)
        return rv; /* only tokens signed with the secret are remembered: forgeries cannot push them out */
    memcpy(slot->token, token, len);
    slot->len = len;
    slot->claims = *claims;
    slot->exp_at = exp_at;
    slot->nbf_at = nbf_at;
    return check_times(now, exp_at, nbf_at);
}

const char *auth_result_message(auth_result_t r)
{
    switch (r) {
    case AUTH_OK:
        return "valid";
    case AUTH_MALFORMED:
        return "the token is not a well-formed JWT (three base64url segments of JSON objects)";
    case AUTH_BAD_ALG:
        return "the token's alg is not HS256";
    case AUTH_BAD_SIGNATURE:
        return "the token's signature does not match";
    case AUTH_EXPIRED:
        return "the token has expired";
    case AUTH_NOT_YET_VALID:
        return "the token is not valid yet (nbf)";
    case AUTH_NO_EXP:
        return "the token has no exp: tokens must expire";
    case AUTH_BAD_SUBJECT:
        return "the token's sub is not a valid user id";
    }
    return "invalid token";
}

int auth_mint(const uint8_t *secret, size_t secret_len, const char *sub, const char *scope, int64_t now, int64_t ttl, char *out,
              size_t outsz)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char buf[2 * AUTH_TOKEN_MAX];
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    int rv = -1;

    if (sub == NULL || !valid_user_id(sub, strlen(sub)))
        return -1;
    for (const char *p = scope; p != NULL && *p != '\0'; ++p)
        if (*p < 0x20 || *p > 0x7e)
            return -1;
    json_t *claims = json_pack("{s:s, s:I, s:I}", "sub", sub, "iat", (json_int_t)now, "exp", (json_int_t)(now + ttl));
    if (scope != NULL && scope[0] != '\0')
        json_object_set_new(claims, "scope", json_string(scope));
    char *text = json_dumps(claims, JSON_COMPACT);
    json_decref(claims);
    if (text == NULL)
        abort();
    size_t text_len = strlen(text);
    if (text_len > AUTH_TOKEN_MAX / 2)
        goto Exit;
    size_t n = b64url_encode((const uint8_t *)header, sizeof(header) - 1, buf);
    buf[n++] = '.';
    n += b64url_encode((const uint8_t *)text, text_len, buf + n);
    if (HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)buf, n, mac, &mac_len) == NULL)
        goto Exit;
    buf[n++] = '.';
    n += b64url_encode(mac, mac_len, buf + n);
    if (n + 1 > outsz)
        goto Exit;
    memcpy(out, buf, n + 1);
    rv = (int)n;
Exit:
    free(text);
    return rv;
}

/* ---- keys ------------------------------------------------------------------------------------------------------- */

int auth_keys_set_secret(auth_keys_t *keys, const char *text, size_t len, char *err, size_t errsz)
{
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        --len;
    if (len < AUTH_SECRET_MIN || len > AUTH_SECRET_MAX) {
        snprintf(err, errsz, "the JWT secret must be %d to %d bytes (it is %zu)", AUTH_SECRET_MIN, AUTH_SECRET_MAX, len);
        return -1;
    }
    memcpy(keys->secret, text, len);
    keys->secret_len = len;
    return 0;
}

int auth_keys_load_api_keys(auth_keys_t *keys, const char *text, size_t len, char *err, size_t errsz)
{
    size_t line_no = 0;
    for (size_t i = 0; i < len;) {
        const char *line = text + i, *nl = memchr(line, '\n', len - i);
        size_t n = nl != NULL ? (size_t)(nl - line) : len - i;
        i += n + 1;
        ++line_no;
        while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
            --n;
        while (n > 0 && (*line == ' ' || *line == '\t'))
            ++line, --n;
        if (n == 0 || *line == '#')
            continue;
        for (size_t j = 0; j < n; ++j) {
            if (line[j] < 0x21 || line[j] > 0x7e) {
                snprintf(err, errsz, "API key on line %zu: only visible ASCII characters", line_no);
                return -1;
            }
        }
        if (n < AUTH_API_KEY_MIN) {
            snprintf(err, errsz, "API key on line %zu is shorter than %d characters", line_no, AUTH_API_KEY_MIN);
            return -1;
        }
        if (keys->napi_keys == AUTH_API_KEYS_MAX) {
            snprintf(err, errsz, "more than %d API keys", AUTH_API_KEYS_MAX);
            return -1;
        }
        if (keys->api_keys == NULL && (keys->api_keys = calloc(AUTH_API_KEYS_MAX, sizeof(*keys->api_keys))) == NULL)
            abort();
        SHA256((const unsigned char *)line, n, keys->api_keys[keys->napi_keys++]);
    }
    return 0;
}

bool auth_api_key_valid(const auth_keys_t *keys, const char *key, size_t len)
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    int match = 0;
    if (keys->napi_keys == 0 || len == 0 || len > AUTH_TOKEN_MAX)
        return false;
    SHA256((const unsigned char *)key, len, md); /* equal lengths for the comparison, whatever was sent */
    for (size_t i = 0; i < keys->napi_keys; ++i)
        match |= CRYPTO_memcmp(md, keys->api_keys[i], sizeof(md)) == 0;
    return match != 0;
}

void auth_keys_dispose(auth_keys_t *keys)
{
    free(keys->api_keys);
    keys->api_keys = NULL;
    keys->napi_keys = 0;
    OPENSSL_cleanse(keys->secret, sizeof(keys->secret));
    keys->secret_len = 0;
}

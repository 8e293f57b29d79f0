/*
 * Authentication: JWT (HS256) bearer tokens and API keys.
 *
 * A token is header.claims.signature, each base64url without padding (RFC 7519). The header must be {"alg":"HS256"}
 * ("typ", when present, "JWT"; no "crit"); the signature is HMAC-SHA256 of "header.claims" under the shared secret,
 * computed by OpenSSL and compared in constant time. Claims: "sub" (the user id, required), "exp" (required), "nbf"
 * (optional), both NumericDate seconds; "scope" (optional) space-separated, of which "publish" is known.
 * API keys are opaque strings from a file, kept as SHA-256 digests and compared in constant time.
 *
 * Pure functions on bytes: any thread. An auth_keys_t is built once at start and only read afterwards.
 */
#ifndef NOTIGATE_AUTH_H
#define NOTIGATE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "valid.h"

#define AUTH_SECRET_MIN 32 /* bytes of the HS256 secret */
#define AUTH_SECRET_MAX 4096
#define AUTH_TOKEN_MAX 4096 /* longer tokens are refused before any decoding */
#define AUTH_API_KEY_MIN 16
#define AUTH_API_KEYS_MAX 256

#define AUTH_SCOPE_PUBLISH 1u /* publish notifications, change inventory, act for any customer */

typedef enum en_auth_result_t {
    AUTH_OK = 0,
    AUTH_MALFORMED,     /* not three base64url segments, not JSON objects, a claim of the wrong type */
    AUTH_BAD_ALG,       /* "alg" is not HS256 ("none" included), or a "crit" header */
    AUTH_BAD_SIGNATURE, /* the signature does not match */
    AUTH_EXPIRED,       /* now >= exp */
    AUTH_NOT_YET_VALID, /* now < nbf */
    AUTH_NO_EXP,        /* no "exp": tokens must expire */
    AUTH_BAD_SUBJECT,   /* "sub" missing, or not a valid user id */
} auth_result_t;

typedef struct st_auth_claims_t {
    char sub[VALID_USER_ID_MAX + 1];
    size_t sub_len;
    unsigned scopes; /* AUTH_SCOPE_* bits */
    int64_t exp;     /* seconds since the epoch */
} auth_claims_t;

/* Who sent a request, from its credential (the gateway reads it: gateway.h, gateway_authenticate). */
typedef struct st_auth_principal_t {
    bool off;             /* authentication is off: everything is allowed */
    bool present;         /* a credential was sent */
    bool valid;           /* ... and it is good */
    bool publisher;       /* an API key, or a token with the publish scope */
    bool api_key;         /* the credential is an API key (no user) */
    auth_result_t result; /* why a token was refused */
    auth_claims_t claims; /* a valid token's claims */
} auth_principal_t;

typedef struct st_auth_keys_t {
    uint8_t secret[AUTH_SECRET_MAX];
    size_t secret_len;       /* 0: no secret */
    uint8_t (*api_keys)[32]; /* SHA-256 of each API key */
    size_t napi_keys;
} auth_keys_t;

/* Verifies token (len bytes, not NUL-terminated) against secret at time now (seconds since the epoch). On AUTH_OK
 * fills claims; otherwise claims is left undefined. */
auth_result_t auth_verify(const uint8_t *secret, size_t secret_len, const char *token, size_t len, int64_t now,
                          auth_claims_t *claims);

/* Verified tokens, remembered: a client sends the same token with every request, and checking one costs some 7 us
 * (OpenSSL's HMAC and two JSON parses). A token's signature and claims are facts of its bytes under one secret, so a
 * token seen before (the same bytes, compared in constant time) skips them; its times (exp, nbf) are checked against
 * now every time. Direct-mapped on a keyed hash of the token: nslots (a power of two) tokens of at most
 * AUTH_CACHE_TOKEN_MAX bytes (longer ones are verified every time), about 0.6 KiB a slot, allocated as used.
 * For one secret; one thread (the gateway keeps one a loop thread). */
#define AUTH_CACHE_TOKEN_MAX 512
typedef struct st_auth_cache_t auth_cache_t;
auth_cache_t *auth_cache_create(size_t nslots);
void auth_cache_destroy(auth_cache_t *cache);

/* auth_verify, answered from cache when it holds this token. */
auth_result_t auth_cache_verify(auth_cache_t *cache, const uint8_t *secret, size_t secret_len, const char *token, size_t len,
                                int64_t now, auth_claims_t *claims);

/* A short sentence saying why a token was refused ("the token has expired"), for error messages. */
const char *auth_result_message(auth_result_t r);

/* Parses a "scope" value ("read publish"): the AUTH_SCOPE_* bits of the scopes it names (others are ignored). */
unsigned auth_scopes_parse(const char *s, size_t len);

/* Writes a signed token for sub (a valid user id) with scope (a space-separated list, or NULL/"" for none), iat = now
 * and exp = now + ttl into out (NUL-terminated). Returns its length, or -1 if sub is invalid, scope has characters
 * outside printable ASCII, or out is too small. */
int auth_mint(const uint8_t *secret, size_t secret_len, const char *sub, const char *scope, int64_t now, int64_t ttl, char *out,
              size_t outsz);

/* Reads a secret from text (a file's contents or an environment variable): trailing CR/LF are dropped. Returns 0, or
 * -1 with a reason in err when it is shorter than AUTH_SECRET_MIN or longer than AUTH_SECRET_MAX bytes. */
int auth_keys_set_secret(auth_keys_t *keys, const char *text, size_t len, char *err, size_t errsz);

/* Reads API keys from text: one a line; blank lines and lines starting with '#' are skipped, surrounding spaces
 * trimmed. Returns 0, or -1 with a reason in err (a key shorter than AUTH_API_KEY_MIN, more than AUTH_API_KEYS_MAX
 * keys, a key with characters outside visible ASCII). */
int auth_keys_load_api_keys(auth_keys_t *keys, const char *text, size_t len, char *err, size_t errsz);

/* True if key is one of the API keys (each compared in constant time, all of them every time). */
bool auth_api_key_valid(const auth_keys_t *keys, const char *key, size_t len);

/* Frees the API keys and wipes the secret. */
void auth_keys_dispose(auth_keys_t *keys);

#endif

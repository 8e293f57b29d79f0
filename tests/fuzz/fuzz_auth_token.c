/*
 * libFuzzer target: auth_verify, the bearer token straight from the client (header, query or Socket.IO's auth.token).
 * Each input is checked twice: as it is (it must be refused: the fuzzer cannot forge HMAC-SHA256), and signed with the
 * target's secret as header.claims (so that the fuzzer reaches the claims: a token accepted then must carry a valid
 * user id and an exp ahead of now). The API keys parser and the scope parser read the same bytes; a user id mints a
 * token that verifies back to it.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <string.h>
#include "auth.h"
#include "fuzz.h"
#include "valid.h"

#define SECRET "fuzz-secret-0123456789abcdef0123456789"
#define NOW 1800000000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char signed_buf[2 * AUTH_TOKEN_MAX];
    auth_claims_t claims;
    const uint8_t *key = (const uint8_t *)SECRET;
    size_t key_len = sizeof(SECRET) - 1;

    FUZZ_ASSERT(auth_verify(key, key_len, (const char *)data, size, NOW, &claims) != AUTH_OK);

    if (size <= AUTH_TOKEN_MAX - 64) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned mac_len;
        char sig[128];
        HMAC(EVP_sha256(), key, (int)key_len, data, size, mac, &mac_len);
        int n = EVP_EncodeBlock((unsigned char *)sig, mac, (int)mac_len);
        while (n > 0 && sig[n - 1] == '=')
            --n;
        for (int i = 0; i < n; ++i)
            sig[i] = sig[i] == '+' ? '-' : (sig[i] == '/' ? '_' : sig[i]);
        memcpy(signed_buf, data, size);
        signed_buf[size] = '.';
        memcpy(signed_buf + size + 1, sig, (size_t)n);
        if (auth_verify(key, key_len, signed_buf, size + 1 + (size_t)n, NOW, &claims) == AUTH_OK) {
            FUZZ_ASSERT(claims.sub_len == strlen(claims.sub) && valid_user_id(claims.sub, claims.sub_len));
            FUZZ_ASSERT(claims.exp >= NOW);
            FUZZ_ASSERT((claims.scopes & ~AUTH_SCOPE_PUBLISH) == 0);
        }
    }

    (void)auth_scopes_parse((const char *)data, size);
    auth_keys_t keys = {.secret_len = 0};
    char err[160];
    if (auth_keys_load_api_keys(&keys, (const char *)data, size, err, sizeof(err)) == 0 && keys.napi_keys != 0)
        FUZZ_ASSERT(!auth_api_key_valid(&keys, "x", 1));
    auth_keys_dispose(&keys);

    if (size <= VALID_USER_ID_MAX && valid_user_id((const char *)data, size)) {
        char sub[VALID_USER_ID_MAX + 1], tok[AUTH_TOKEN_MAX];
        memcpy(sub, data, size);
        sub[size] = '\0';
        int n = auth_mint(key, key_len, sub, "publish", NOW, 60, tok, sizeof(tok));
        FUZZ_ASSERT(n > 0 && auth_verify(key, key_len, tok, (size_t)n, NOW, &claims) == AUTH_OK);
        FUZZ_ASSERT(strcmp(claims.sub, sub) == 0 && claims.scopes == AUTH_SCOPE_PUBLISH && claims.exp == NOW + 60);
    }
    return 0;
}

/*
 * libFuzzer target: publish_body_parse, the JSON body of POST /v1/notifications, straight from the client. Whatever
 * the bytes, it must answer 400 or 413 with an error, or hand back fields that pass the same validation history-svc
 * applies (valid.h), and leak nothing (publish_body_dispose).
 */
#include <stdint.h>
#include <string.h>
#include "fuzz.h"
#include "http_parse.h"
#include "valid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    publish_body_t body;
    api_error_t err;
    memset(&err, 0, sizeof(err));
    if (publish_body_parse(&body, (const char *)data, size, &err) != 0) {
        FUZZ_ASSERT((err.status == 400 || err.status == 413) && err.code != NULL);
        FUZZ_ASSERT(memchr(err.message, '\0', sizeof(err.message)) != NULL);
        FUZZ_ASSERT(body._root == NULL); /* nothing left to dispose */
        return 0;
    }
    FUZZ_ASSERT(size <= PUBLISH_BODY_MAX);
    FUZZ_ASSERT(valid_user_id(body.user_id, body.user_id_len));
    FUZZ_ASSERT(valid_message(body.message, body.message_len));
    FUZZ_ASSERT(valid_kind(body.kind, body.kind_len));
    publish_body_dispose(&body);
    return 0;
}

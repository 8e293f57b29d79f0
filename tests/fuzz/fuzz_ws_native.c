/*
 * libFuzzer target: native_parse, every text message a native WebSocket client sends (/v1/ws). Whatever the bytes, it
 * must answer one of its error codes with a message, or a message kind whose fields pass the checks the chat applies
 * (a valid username, a valid room); and what it accepts must survive a round trip: written back as JSON by json_out
 * (as the gateway writes names and messages to clients) and parsed again, it gives the same fields.
 */
#include <stdint.h>
#include <string.h>
#include "fuzz.h"
#include "json_out.h"
#include "valid.h"
#include "wsmsg.h"

static bool bytes_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool known_error(const char *code)
{
    static const char *const codes[] = {"invalid_json", "invalid_type",    "invalid_username",
                                        "invalid_room", "invalid_message", "unknown_type"};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); ++i)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    native_msg_t msg, again;
    native_kind_t kind = native_parse(&msg, (const char *)data, size);
    FUZZ_ASSERT(kind == msg.kind);
    json_out_t o = {NULL};
    switch (kind) {
    case NATIVE_MSG_ERROR:
        FUZZ_ASSERT(msg.code != NULL && known_error(msg.code) && msg.error != NULL && msg.error[0] != '\0');
        break;
    case NATIVE_MSG_JOIN:
        FUZZ_ASSERT(wsmsg_valid_username(msg.join.username, msg.join.username_len));
        FUZZ_ASSERT(valid_user_id(msg.join.room, msg.join.room_len));
        json_out_lit(&o, "{\"type\":\"join\",\"username\":");
        json_out_str(&o, msg.join.username, msg.join.username_len);
        json_out_lit(&o, ",\"room\":");
        json_out_str(&o, msg.join.room, msg.join.room_len);
        json_out_lit(&o, "}");
        FUZZ_ASSERT(native_parse(&again, o.buf, o.len) == NATIVE_MSG_JOIN);
        FUZZ_ASSERT(bytes_eq(again.join.username, again.join.username_len, msg.join.username, msg.join.username_len));
        FUZZ_ASSERT(bytes_eq(again.join.room, again.join.room_len, msg.join.room, msg.join.room_len));
        native_msg_dispose(&again);
        break;
    case NATIVE_MSG_SEND_MESSAGE:
        FUZZ_ASSERT(msg.message != NULL);
        json_out_lit(&o, "{\"message\":");
        json_out_str(&o, msg.message, msg.message_len);
        json_out_lit(&o, ",\"type\":\"send_message\"}");
        FUZZ_ASSERT(native_parse(&again, o.buf, o.len) == NATIVE_MSG_SEND_MESSAGE);
        FUZZ_ASSERT(bytes_eq(again.message, again.message_len, msg.message, msg.message_len));
        native_msg_dispose(&again);
        break;
    case NATIVE_MSG_LEAVE:
    case NATIVE_MSG_PING:
        break;
    default:
        FUZZ_ASSERT(!"a kind native_parse does not define");
    }
    json_out_dispose(&o);
    native_msg_dispose(&msg);
    FUZZ_ASSERT(msg._root == NULL);
    native_msg_dispose(&msg); /* twice is harmless */
    return 0;
}

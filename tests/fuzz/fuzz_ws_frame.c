/*
 * libFuzzer target: the WebSocket frame parser (gateway/ws_frame.c) on what a client sends. The first byte picks the
 * message limit (1 to 1021 bytes), the second the size of the chunks the rest is fed in (0: all at once, as one read),
 * as a connection does: what the parser leaves unconsumed is presented again with the next chunk. Invariants: no
 * message over the limit is delivered; a text message is valid UTF-8 (checked here by an independent decoder); control
 * payloads are at most 125 bytes and a close carries a valid code and a UTF-8 reason; nothing comes after an error;
 * the parser never holds back more than a header and a control frame; and feeding in chunks gives exactly what
 * feeding whole gives.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"
#include "ws_frame.h"

/* UTF-8 as RFC 3629 defines it, decoded the plain way: the shortest form, no surrogates, nothing past U+10FFFF. */
static bool utf8_ok(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint32_t c = s[i], need, min;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            need = 1, min = 0x80, c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            need = 2, min = 0x800, c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            need = 3, min = 0x10000, c &= 0x07;
        } else {
            return false;
        }
        if (i + need >= len)
            return false; /* cut short */
        for (uint32_t k = 1; k <= need; ++k) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            c = c << 6 | (s[i + k] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return false;
        i += need + 1;
    }
    return true;
}

typedef struct {
    fuzz_buf_t digest; /* every event, in order, as bytes */
    fuzz_buf_t msg;    /* the message being assembled */
    uint8_t msg_op;
    bool failed;
    uint64_t max;
} run_t;

static void digest(run_t *r, uint8_t tag, const void *bytes, size_t len)
{
    uint64_t n = len;
    fuzz_buf_write(&r->digest, (const char *)&tag, 1);
    fuzz_buf_write(&r->digest, (const char *)&n, sizeof(n));
    fuzz_buf_write(&r->digest, bytes, len);
}

static void on_event(run_t *r, const ws_event_t *ev)
{
    FUZZ_ASSERT(!r->failed); /* nothing after an error */
    switch (ev->type) {
    case WS_EV_DATA:
        FUZZ_ASSERT(ev->opcode == WS_OP_TEXT || ev->opcode == WS_OP_BINARY);
        if (ev->first) {
            FUZZ_ASSERT(r->msg_op == 0);
            r->msg.len = 0;
            r->msg_op = ev->opcode;
        }
        FUZZ_ASSERT(r->msg_op == ev->opcode);
        fuzz_buf_write(&r->msg, (const char *)ev->data, ev->len);
        FUZZ_ASSERT(r->msg.len <= r->max); /* never more than the limit */
        if (ev->last) {
            if (ev->opcode == WS_OP_TEXT)
                FUZZ_ASSERT(utf8_ok((const uint8_t *)r->msg.data, r->msg.len));
            digest(r, ev->opcode, r->msg.data, r->msg.len);
            r->msg_op = 0;
        }
        break;
    case WS_EV_CONTROL:
        FUZZ_ASSERT(ev->len <= WS_CONTROL_MAX);
        FUZZ_ASSERT(ev->opcode == WS_OP_CLOSE || ev->opcode == WS_OP_PING || ev->opcode == WS_OP_PONG);
        if (ev->opcode == WS_OP_CLOSE) {
            FUZZ_ASSERT(ev->close_code == WS_CLOSE_NO_STATUS ? ev->len == 0 : ws_close_code_valid(ev->close_code));
            FUZZ_ASSERT(ev->reason_len == 0 || utf8_ok((const uint8_t *)ev->reason, ev->reason_len));
        }
        digest(r, ev->opcode | 0x10, ev->data, ev->len);
        break;
    case WS_EV_ERROR:
        FUZZ_ASSERT(ev->close_code == WS_CLOSE_PROTOCOL_ERROR || ev->close_code == WS_CLOSE_INVALID_DATA ||
                    ev->close_code == WS_CLOSE_TOO_BIG);
        FUZZ_ASSERT(ev->reason != NULL && ev->reason_len > 0 && ev->reason_len <= WS_CONTROL_MAX - 2);
        digest(r, 0xee, &ev->close_code, sizeof(ev->close_code));
        r->failed = true;
        break;
    default:
        FUZZ_ASSERT(!"an unknown event");
    }
}

/* Feeds in (copied: the parser unmasks in place) in chunks of chunk bytes (0: whole). */
static void run(run_t *r, const uint8_t *in, size_t len, size_t chunk)
{
    uint8_t *buf = malloc(len + 1);
    size_t have = 0, given = 0;
    ws_parser_t p;
    ws_parser_init(&p, r->max);
    if (chunk == 0)
        chunk = len;
    while (given < len) {
        size_t n = len - given < chunk ? len - given : chunk;
        memcpy(buf + have, in + given, n);
        have += n;
        given += n;
        size_t off = 0;
        for (;;) {
            ws_event_t ev;
            size_t used = ws_parser_next(&p, buf + off, have - off, &ev);
            FUZZ_ASSERT(used <= have - off);
            off += used;
            if (ev.type == WS_EV_NONE)
                break;
            on_event(r, &ev);
        }
        memmove(buf, buf + off, have - off);
        have -= off;
        FUZZ_ASSERT(have <= 14 + WS_CONTROL_MAX); /* at most a header and a control frame wait for more */
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint64_t max = 1 + (uint64_t)data[0] * 4;
    size_t chunk = data[1] % 17;
    data += 2;
    size -= 2;
    run_t whole = {.max = max}, chunked = {.max = max};
    run(&whole, data, size, 0);
    run(&chunked, data, size, chunk == 0 ? 1 : chunk);
    FUZZ_ASSERT(whole.digest.len == chunked.digest.len);
    FUZZ_ASSERT(whole.digest.len == 0 || memcmp(whole.digest.data, chunked.digest.data, whole.digest.len) == 0);
    free(whole.digest.data);
    free(whole.msg.data);
    free(chunked.digest.data);
    free(chunked.msg.data);
    return 0;
}

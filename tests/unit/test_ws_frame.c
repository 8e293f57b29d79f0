/*
 * Unit tests of gateway/ws_frame.c: the incremental frame parser (every rule of RFC 6455 it enforces, bytes fed whole
 * and one at a time), the server's frame headers, close payloads, UTF-8 validation and the handshake's keys.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ws_frame.h"

#define LIT(s) (s), sizeof(s) - 1

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

enum { LEN_SHORTEST = 0, LEN_16 = 16, LEN_64 = 64 };

/* Appends a client frame to out at *n: b0 is FIN|RSV|opcode, masked or not, the length written in the shortest form or
 * in the one asked for. */
static void frame(uint8_t *out, size_t *n, uint8_t b0, bool masked, const void *payload, size_t len, int form)
{
    uint8_t *o = out + *n;
    size_t h = 0;
    o[h++] = b0;
    uint8_t mbit = masked ? 0x80 : 0;
    if (form == LEN_SHORTEST && len < 126) {
        o[h++] = mbit | (uint8_t)len;
    } else if (form == LEN_16 || (form == LEN_SHORTEST && len <= 0xffff)) {
        o[h++] = mbit | 126;
        o[h++] = (uint8_t)(len >> 8);
        o[h++] = (uint8_t)len;
    } else {
        o[h++] = mbit | 127;
        for (int i = 0; i < 8; ++i)
            o[h++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    if (masked) {
        memcpy(o + h, MASK, 4);
        h += 4;
    }
    for (size_t i = 0; i < len; ++i)
        o[h + i] = ((const uint8_t *)payload)[i] ^ (masked ? MASK[i & 3] : 0);
    *n += h + len;
}

#define FIN 0x80

/* What a parser made of some bytes, as text: T:<text> (a text message), B:<len> (binary), P:<payload> (ping),
 * O:<payload> (pong), C:<code>:<reason> (close), E:<code> (error), separated by '|'. Data chunks are assembled as the
 * connection does. */
typedef struct {
    char log[200000];
    size_t loglen;
    char *msg;
    size_t msg_len, msg_cap;
    uint8_t msg_op;
    int events_after_error;
    bool failed;
    bool whole_chunk; /* the last text message came in one chunk (delivered without copying) */
} result_t;

static void logf_(result_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(result_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    r->loglen += (size_t)vsnprintf(r->log + r->loglen, sizeof(r->log) - r->loglen, fmt, ap);
    va_end(ap);
}

static void on_event(result_t *r, const ws_event_t *ev)
{
    if (r->failed)
        ++r->events_after_error;
    switch (ev->type) {
    case WS_EV_DATA:
        if (ev->first) {
            r->msg_len = 0;
            r->msg_op = ev->opcode;
        }
        if (ev->opcode != r->msg_op) /* (no ck_assert per byte: each one is a write to Check's pipe) */
            ck_abort_msg("a chunk of opcode %d in a message of opcode %d", ev->opcode, r->msg_op);
        if (r->msg_len + ev->len + 1 > r->msg_cap) {
            r->msg_cap = (r->msg_len + ev->len + 1) * 2;
            r->msg = realloc(r->msg, r->msg_cap);
        }
        memcpy(r->msg + r->msg_len, ev->data, ev->len);
        r->msg_len += ev->len;
        if (ev->last) {
            r->whole_chunk = ev->first;
            if (ev->opcode == WS_OP_TEXT)
                logf_(r, "T:%.*s|", (int)r->msg_len, r->msg);
            else
                logf_(r, "B:%zu|", r->msg_len);
        }
        break;
    case WS_EV_CONTROL:
        if (ev->opcode == WS_OP_CLOSE)
            logf_(r, "C:%u:%.*s|", ev->close_code, (int)ev->reason_len, ev->reason != NULL ? ev->reason : "");
        else
            logf_(r, "%s:%.*s|", ev->opcode == WS_OP_PING ? "P" : "O", (int)ev->len, (const char *)ev->data);
        break;
    case WS_EV_ERROR:
        ck_assert_ptr_nonnull(ev->reason);
        ck_assert_uint_gt(strlen(ev->reason), 0);
        logf_(r, "E:%u|", ev->close_code);
        r->failed = true;
        break;
    default:
        break;
    }
}

/* Feeds bytes to a new parser (max_message) in chunks of chunk bytes (0: all at once), keeping what it leaves
 * unconsumed for the next call as a connection does. Returns the result (static). */
static result_t *feed(const uint8_t *bytes, size_t len, size_t chunk, uint64_t max_message)
{
    static result_t r;
    free(r.msg);
    memset(&r, 0, sizeof(r));
    ws_parser_t p;
    ws_parser_init(&p, max_message);
    uint8_t *buf = malloc(len + 1);
    size_t have = 0, given = 0;
    if (chunk == 0)
        chunk = len;
    while (given < len) {
        size_t n = len - given < chunk ? len - given : chunk;
        memcpy(buf + have, bytes + given, n);
        have += n;
        given += n;
        size_t off = 0;
        for (;;) {
            ws_event_t ev;
            size_t used = ws_parser_next(&p, buf + off, have - off, &ev);
            if (used > have - off)
                ck_abort_msg("consumed %zu of %zu bytes", used, have - off);
            off += used;
            if (ev.type == WS_EV_NONE)
                break;
            on_event(&r, &ev);
        }
        memmove(buf, buf + off, have - off);
        have -= off;
        if (have > 14 + 125)
            ck_abort_msg("the parser kept %zu bytes unconsumed", have);
    }
    free(buf);
    return &r;
}

/* The result is expected whole and one byte at a time alike. */
static void expect(const uint8_t *bytes, size_t len, uint64_t max_message, const char *want)
{
    result_t *r = feed(bytes, len, 0, max_message);
    ck_assert_str_eq(r->log, want);
    ck_assert_int_eq(r->events_after_error, 0);
    r = feed(bytes, len, 1, max_message);
    ck_assert_str_eq(r->log, want);
    r = feed(bytes, len, 3, max_message);
    ck_assert_str_eq(r->log, want);
}

/* ---- parser ----------------------------------------------------------------------------------------------------- */

START_TEST(test_masked_text)
{
    uint8_t b[64];
    size_t n = 0;
    frame(b, &n, FIN | WS_OP_TEXT, true, LIT("Hello"), LEN_SHORTEST);
    expect(b, n, 1000, "T:Hello|");
    ck_assert(feed(b, n, 0, 1000)->whole_chunk); /* delivered from the input as it is */
    ck_assert(!feed(b, n, 1, 1000)->whole_chunk);

    /* an empty text message, and two messages in one read */
    n = 0;
    frame(b, &n, FIN | WS_OP_TEXT, true, "", 0, LEN_SHORTEST);
    frame(b, &n, FIN | WS_OP_TEXT, true, LIT("x"), LEN_SHORTEST);
    expect(b, n, 1000, "T:|T:x|");
}
END_TEST

START_TEST(test_unmasked_refused)
{
    uint8_t b[64];
    size_t n = 0;
    frame(b, &n, FIN | WS_OP_TEXT, false, LIT("Hello"), LEN_SHORTEST);
    expect(b, n, 1000, "E:1002|");
    n = 0;
    frame(b, &n, FIN | WS_OP_PING, false, "", 0, LEN_SHORTEST);
    expect(b, n, 1000, "E:1002|");
}
END_TEST

START_TEST(test_length_forms)
{
    static uint8_t b[200000], text[70000];
    char want[100];
    for (size_t i = 0; i < sizeof(text); ++i)
        text[i] = (uint8_t)('a' + i % 26);
    static const size_t lens[] = {0, 1, 125, 126, 127, 1000, 65535, 65536, 70000};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); ++i) {
        size_t n = 0;
        frame(b, &n, FIN | WS_OP_BINARY, true, text, lens[i], LEN_SHORTEST);
        snprintf(want, sizeof(want), "B:%zu|", lens[i]);
        expect(b, n, 100000, want);
        n = 0;
        frame(b, &n, FIN | WS_OP_TEXT, true, text, lens[i], LEN_SHORTEST);
        result_t *r = feed(b, n, 7, 100000);
        ck_assert_uint_eq(r->msg_len, lens[i]);
        ck_assert(memcmp(r->msg, text, lens[i]) == 0);
    }
    /* the header's size in each form */
    size_t n = 0;
    frame(b, &n, FIN | WS_OP_TEXT, true, text, 125, LEN_SHORTEST);
    ck_assert_uint_eq(n, 2 + 4 + 125);
    n = 0;
    frame(b, &n, FIN | WS_OP_TEXT, true, text, 126, LEN_SHORTEST);
    ck_assert_uint_eq(n, 4 + 4 + 126);
    n = 0;
    frame(b, &n, FIN | WS_OP_TEXT, true, text, 65536, LEN_SHORTEST);
    ck_assert_uint_eq(n, 10 + 4 + 65536);
}
END_TEST

START_TEST(test_length_not_minimal_or_too_big)
{
    static uint8_t b[1000];
    size_t n = 0;
    frame(b, &n, FIN | WS_OP_TEXT, true, LIT("hello"), LEN_16); /* 5 in 16 bits */
    expect(b, n, 100000, "E:1002|");
    n = 0;
    frame(b, &n, FIN | WS_OP_TEXT, true, b + 500, 125, LEN_16);
    expect(b, n, 100000, "E:1002|");
    n = 0;
    frame(b, &n, FIN | WS_OP_TEXT, true, b + 500, 200, LEN_64); /* 200 in 64 bits */
    expect(b, n, 100000, "E:1002|");
    /* 2^63 and more: refused from the header alone */
    uint8_t top[] = {FIN | WS_OP_BINARY, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
    expect(top, sizeof(top), UINT64_MAX, "E:1002|");
    /* just under 2^63 with no limit: accepted, waiting for the payload */
    uint8_t big[] = {FIN | WS_OP_BINARY, 0x80 | 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 'a'};
    expect(big, sizeof(big), UINT64_MAX, "");
}
END_TEST

START_TEST(test_fragmented_with_ping_between)
{
    uint8_t b[256];
    size_t n = 0;
    frame(b, &n, WS_OP_TEXT, true, LIT("Hel"), LEN_SHORTEST);
    frame(b, &n, FIN | WS_OP_PING, true, LIT("p1"), LEN_SHORTEST);
    frame(b, &n, WS_OP_CONTINUATION, true, LIT("lo, "), LEN_SHORTEST);
    frame(b, &n, WS_OP_CONTINUATION, true, "", 0, LEN_SHORTEST);
    frame(b, &n, FIN | WS_OP_PONG, true, LIT("p2"), LEN_SHORTEST);
    frame(b, &n, FIN | WS_OP_CONTINUATION, true, LIT("world"), LEN_SHORTEST);
    frame(b, &n, FIN | WS_OP_TEXT, true, LIT("next"), LEN_SHORTEST);
    expect(b, n, 1000, "P:p1|O:p2|T:Hello, world|T:next|");
    ck_assert(feed(b, n, 0, 1000)->whole_chunk); /* the last message came whole */
}
END_TEST

START_TEST(test_continuation_rules)
{
    uint8_t b[256];
    size_t n = 0;
    frame(b, &n, FIN | WS_OP_CONTINUATION, true, LIT("stray"), LEN_SHORTEST);
    expect(b, n, 1000, "E:1002|");
    n = 0;
    frame(b, &n, WS_OP_TEXT, true, LIT("a"), LEN_SHORTEST);
    frame(b, &n, FIN | WS_OP_TEXT, true, LIT("b"), LEN_SHORTEST); /* a new message before the first ended */
    expect(b, n, 1000, "E:1002|");
    n = 0;
    frame(b, &n, WS_OP_BINARY, true, LIT("a"), LEN_SHORTEST);
    frame(b, &n, FIN | WS_OP_CONTINUATION, true, LIT("bc"), LEN_SHORTEST);
    expect(b, n, 1000, "B:3|");
}
END_TEST

START_TEST(test_oversize_refused_early)
{
    uint8_t b[400], x[100];
    size_t n = 0;
    memset(x, 'x', sizeof(x));
    /* the header alone announces 101 bytes over a limit of 100: refused before any payload byte came */
    uint8_t hdr[] = {FIN | WS_OP_TEXT, 0x80 | 101, 1, 2, 3, 4};
    expect(hdr, sizeof(hdr), 100, "E:1009|");
    uint8_t hdr64[] = {FIN | WS_OP_TEXT, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4};
    expect(hdr64, sizeof(hdr64), 100, "E:1009|");
    /* exactly at the limit: fine */
    frame(b, &n, FIN | WS_OP_TEXT, true, x, 100, LEN_SHORTEST);
    result_t *r = feed(b, n, 1, 100);
    ck_assert_uint_eq(r->msg_len, 100);
    ck_assert(!r->failed);
    /* fragments: 60 + 40 fine, 60 + 41 refused at the second header, before the ping that follows */
    n = 0;
    frame(b, &n, WS_OP_TEXT, true, x, 60, LEN_SHORTEST);
    frame(b, &n, FIN | WS_OP_CONTINUATION, true, x, 40, LEN_SHORTEST);
    r = feed(b, n, 0, 100);
    ck_assert(!r->failed);
    ck_assert_uint_eq(r->msg_len, 100);
    n = 0;
    frame(b, &n, WS_OP_TEXT, true, x, 60, LEN_SHORTEST);
    frame(b, &n, FIN | WS_OP_CONTINUATION, true, x, 41, LEN_SHORTEST);
    frame(b, &n, FIN | WS_OP_PING, true, "", 0, LEN_SHORTEST);
    expect(b, n, 100, "E:1009|");
    /* the limit counts messages, not frames: one message after another at the limit each */
    n = 0;
    frame(b, &n, FIN | WS_OP_TEXT, true, x, 100, LEN_SHORTEST);
    frame(b, &n, FIN | WS_OP_TEXT, true, x, 100, LEN_SHORTEST);
    r = feed(b, n, 0, 100);
    ck_assert(!r->failed);
}
END_TEST

START_TEST(test_utf8_across_fragments)
{
    uint8_t b[256];
    size_t n = 0;
    frame(b, &n, WS_OP_TEXT, true, LIT("\xe2\x82"), LEN_SHORTEST); /* the euro sign, split */
    frame(b, &n, FIN | WS_OP_CONTINUATION, true, LIT("\xac"), LEN_SHORTEST);
    expect(b, n, 1000, "T:\xe2\x82\xac|");
    n = 0;
    frame(b, &n, WS_OP_TEXT, true, LIT("ok \xe2\x82"), LEN_SHORTEST);
    frame(b, &n, FIN | WS_OP_CONTINUATION, true, LIT("A"), LEN_SHORTEST);
    expect(b, n, 1000, "E:1007|");
    n = 0;
    frame(b, &n, WS_OP_TEXT, true, LIT("ends in the middle \xf0\x9f"), LEN_SHORTEST);
    frame(b, &n, FIN | WS_OP_CONTINUATION, true, "", 0, LEN_SHORTEST);
    expect(b, n, 1000, "E:1007|");
    static const char *bad[] = {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",    "\xff",
                                "\x80",     "\xe0\x80\xaf", "\xf8\x88\x80\x80\x80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        n = 0;
        frame(b, &n, FIN | WS_OP_TEXT, true, bad[i], strlen(bad[i]), LEN_SHORTEST);
        expect(b, n, 1000, "E:1007|");
    }
    /* binary is not UTF-8 checked */
    n = 0;
    frame(b, &n, FIN | WS_OP_BINARY, true, LIT("\xff\xfe"), LEN_SHORTEST);
    expect(b, n, 1000, "B:2|");
}
END_TEST

START_TEST(test_control_frames)
{
    uint8_t b[400], pad[126];
    memset(pad, 'p', sizeof(pad));
    size_t n = 0;
    frame(b, &n, FIN | WS_OP_PING, true, pad, 125, LEN_SHORTEST);
    result_t *r = feed(b, n, 1, 1000);
    ck_assert_uint_eq(r->loglen, 2 + 125 + 1);
    n = 0;
    frame(b, &n, FIN | WS_OP_PING, true, pad, 126, LEN_SHORTEST); /* too long */
    expect(b, n, 1000, "E:1002|");
    n = 0;
    frame(b, &n, WS_OP_PING, true, LIT("x"), LEN_SHORTEST); /* fragmented */
    expect(b, n, 1000, "E:1002|");
    n = 0;
    frame(b, &n, FIN | WS_OP_PONG, true, "", 0, LEN_SHORTEST);
    expect(b, n, 1000, "O:|");
}
END_TEST

static void close_frame(uint8_t *b, size_t *n, int code, const char *reason)
{
    uint8_t payload[200] = {0};
    size_t len = 0;
    if (code >= 0) {
        payload[0] = (uint8_t)(code >> 8);
        payload[1] = (uint8_t)code;
        len = 2;
    }
    memcpy(payload + len, reason, strlen(reason));
    len += strlen(reason);
    frame(b, n, FIN | WS_OP_CLOSE, true, payload, len, LEN_SHORTEST);
}

START_TEST(test_close_frames)
{
    uint8_t b[400];
    size_t n = 0;
    close_frame(b, &n, 1000, "bye");
    expect(b, n, 1000, "C:1000:bye|");
    n = 0;
    close_frame(b, &n, -1, ""); /* no code */
    expect(b, n, 1000, "C:1005:|");
    n = 0;
    frame(b, &n, FIN | WS_OP_CLOSE, true, "\x03", 1, LEN_SHORTEST); /* one byte */
    expect(b, n, 1000, "E:1002|");
    static const int valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4000, 4999};
    static const int invalid[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535};
    char want[64];
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); ++i) {
        n = 0;
        close_frame(b, &n, valid[i], "");
        snprintf(want, sizeof(want), "C:%d:|", valid[i]);
        expect(b, n, 1000, want);
        ck_assert(ws_close_code_valid((unsigned)valid[i]));
    }
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); ++i) {
        n = 0;
        close_frame(b, &n, invalid[i], "");
        expect(b, n, 1000, "E:1002|");
        ck_assert(!ws_close_code_valid((unsigned)invalid[i]));
    }
    n = 0;
    close_frame(b, &n, 1000, "bad \xc3\x28");
    expect(b, n, 1000, "E:1007|");
    /* a close between fragments is read (what follows is the connection's business) */
    n = 0;
    frame(b, &n, WS_OP_TEXT, true, LIT("a"), LEN_SHORTEST);
    close_frame(b, &n, 1001, "going");
    expect(b, n, 1000, "C:1001:going|");
}
END_TEST

START_TEST(test_rsv_and_opcodes)
{
    uint8_t b[64];
    static const uint8_t rsv[] = {0x40, 0x20, 0x10, 0x70};
    for (size_t i = 0; i < sizeof(rsv); ++i) {
        size_t n = 0;
        frame(b, &n, FIN | rsv[i] | WS_OP_TEXT, true, LIT("x"), LEN_SHORTEST);
        expect(b, n, 1000, "E:1002|");
    }
    for (uint8_t op = 3; op <= 0xf; ++op) {
        if (op == WS_OP_CLOSE || op == WS_OP_PING || op == WS_OP_PONG)
            continue;
        size_t n = 0;
        frame(b, &n, FIN | op, true, LIT("x"), LEN_SHORTEST);
        expect(b, n, 1000, "E:1002|");
    }
}
END_TEST

START_TEST(test_after_error_ignored)
{
    uint8_t b[128];
    size_t n = 0;
    frame(b, &n, FIN | 0x40 | WS_OP_TEXT, true, LIT("x"), LEN_SHORTEST);
    frame(b, &n, FIN | WS_OP_TEXT, true, LIT("after"), LEN_SHORTEST);
    frame(b, &n, FIN | WS_OP_PING, true, LIT("p"), LEN_SHORTEST);
    expect(b, n, 1000, "E:1002|");
    ck_assert_int_eq(feed(b, n, 1, 1000)->events_after_error, 0);
}
END_TEST

START_TEST(test_unmask_in_place)
{
    uint8_t b[64];
    size_t n = 0;
    frame(b, &n, FIN | WS_OP_TEXT, true, LIT("abcdefgh"), LEN_SHORTEST);
    ws_parser_t p;
    ws_parser_init(&p, 100);
    ws_event_t ev;
    ck_assert_uint_eq(ws_parser_next(&p, b, n, &ev), n);
    ck_assert_int_eq(ev.type, WS_EV_DATA);
    ck_assert_ptr_eq(ev.data, b + 6); /* into the input, no copy */
    ck_assert(ev.first && ev.last);
    ck_assert(memcmp(ev.data, "abcdefgh", 8) == 0);
    ck_assert_uint_eq(ws_parser_next(&p, b + n, 0, &ev), 0);
    ck_assert_int_eq(ev.type, WS_EV_NONE);
    ck_assert_uint_le(sizeof(ws_parser_t), 48);
}
END_TEST

/* ---- writer ----------------------------------------------------------------------------------------------------- */

START_TEST(test_frame_header)
{
    uint8_t h[WS_HEADER_MAX];
    ck_assert_uint_eq(ws_frame_header(h, WS_OP_TEXT, 0), 2);
    ck_assert(h[0] == 0x81 && h[1] == 0);
    ck_assert_uint_eq(ws_frame_header(h, WS_OP_TEXT, 125), 2);
    ck_assert(h[0] == 0x81 && h[1] == 125);
    ck_assert_uint_eq(ws_frame_header(h, WS_OP_PONG, 126), 4);
    ck_assert(h[0] == 0x8a && h[1] == 126 && h[2] == 0 && h[3] == 126);
    ck_assert_uint_eq(ws_frame_header(h, WS_OP_TEXT, 65535), 4);
    ck_assert(h[1] == 126 && h[2] == 0xff && h[3] == 0xff);
    ck_assert_uint_eq(ws_frame_header(h, WS_OP_CLOSE, 65536), 10);
    static const uint8_t want[] = {0x88, 127, 0, 0, 0, 0, 0, 1, 0, 0};
    ck_assert(memcmp(h, want, 10) == 0);
    ck_assert_uint_eq(ws_frame_header(h, WS_OP_PING, 0x0102030405ull), 10);
    static const uint8_t want2[] = {0x89, 127, 0, 0, 0, 1, 2, 3, 4, 5};
    ck_assert(memcmp(h, want2, 10) == 0);
}
END_TEST

START_TEST(test_close_payload)
{
    uint8_t out[WS_CONTROL_MAX];
    ck_assert_uint_eq(ws_close_payload(out, 0, "ignored", 7), 0);
    ck_assert_uint_eq(ws_close_payload(out, 4001, NULL, 0), 2); /* an echo: the code alone */
    ck_assert(out[0] == 0x0f && out[1] == 0xa1);
    ck_assert_uint_eq(ws_close_payload(out, 1009, LIT("message too big")), 2 + 15);
    ck_assert(out[0] == 0x03 && out[1] == 0xf1 && memcmp(out + 2, "message too big", 15) == 0);
    /* a long reason is cut to 123 bytes, not inside a character: 122 ASCII then a 2-byte character */
    char reason[200];
    memset(reason, 'a', 122);
    memcpy(reason + 122, "\xc3\xa9 and more", 10);
    size_t n = ws_close_payload(out, 1000, reason, 132);
    ck_assert_uint_eq(n, 2 + 122);
    ck_assert(ws_utf8_valid(out + 2, n - 2));
    memset(reason, 'b', 200);
    ck_assert_uint_eq(ws_close_payload(out, 1000, reason, 200), WS_CONTROL_MAX);
}
END_TEST

START_TEST(test_utf8_validator)
{
    ck_assert(ws_utf8_valid((const uint8_t *)"", 0));
    ck_assert(ws_utf8_valid((const uint8_t *)LIT("plain ascii, long enough for the 8-byte path")));
    ck_assert(ws_utf8_valid(
        (const uint8_t *)LIT("\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xed\x9f\xbf \xee\x80\x80 \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf")));
    ck_assert(!ws_utf8_valid((const uint8_t *)LIT("\xc1\xbf")));         /* overlong */
    ck_assert(!ws_utf8_valid((const uint8_t *)LIT("\xed\xbf\xbf")));     /* surrogate */
    ck_assert(!ws_utf8_valid((const uint8_t *)LIT("\xf4\x90\x80\x80"))); /* past U+10FFFF */
    ck_assert(!ws_utf8_valid((const uint8_t *)LIT("abcdefgh\xe2\x82"))); /* cut */
    /* fed byte by byte, the same verdicts */
    const char *s = "x\xf0\x9f\x98\x80y";
    uint8_t st = WS_UTF8_OK;
    for (size_t i = 0; i < strlen(s); ++i)
        ck_assert(ws_utf8_feed(&st, (const uint8_t *)s + i, 1));
    ck_assert_int_eq(st, WS_UTF8_OK);
    st = WS_UTF8_OK;
    ck_assert(ws_utf8_feed(&st, (const uint8_t *)"\xe2", 1));
    ck_assert(!ws_utf8_feed(&st, (const uint8_t *)"(", 1));
    ck_assert(!ws_utf8_feed(&st, (const uint8_t *)"a", 1)); /* stays failed */
}
END_TEST

START_TEST(test_handshake_keys)
{
    char accept[WS_ACCEPT_KEY_LEN + 1];
    ws_accept_key(accept, LIT("dGhlIHNhbXBsZSBub25jZQ==")); /* RFC 6455, section 1.3 */
    ck_assert_str_eq(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    ck_assert(ws_client_key_valid(LIT("dGhlIHNhbXBsZSBub25jZQ==")));
    ck_assert(ws_client_key_valid(LIT("AAAAAAAAAAAAAAAAAAAAAA==")));
    ck_assert(ws_client_key_valid(LIT("/+/+/+/+/+/+/+/+/+/+/w==")));
    ck_assert(!ws_client_key_valid(LIT("dGhlIHNhbXBsZSBub25jZQ=")));   /* 23 characters */
    ck_assert(!ws_client_key_valid(LIT("dGhlIHNhbXBsZSBub25jZQ==="))); /* 25 */
    ck_assert(!ws_client_key_valid(LIT("dGhlIHNhbXBsZSBub25jZR==")));  /* padding bits set: not 16 bytes exactly */
    ck_assert(!ws_client_key_valid(LIT("dGhlIHNhbXBs ZSBub25jZ==")));  /* not base64 */
    ck_assert(!ws_client_key_valid(LIT("dGhlIHNhbXBsZSBub25jZQAA")));  /* 18 bytes */
    ck_assert(!ws_client_key_valid(LIT("")));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ws_frame");
    TCase *tc = tcase_create("parser");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_masked_text);
    tcase_add_test(tc, test_unmasked_refused);
    tcase_add_test(tc, test_length_forms);
    tcase_add_test(tc, test_length_not_minimal_or_too_big);
    tcase_add_test(tc, test_fragmented_with_ping_between);
    tcase_add_test(tc, test_continuation_rules);
    tcase_add_test(tc, test_oversize_refused_early);
    tcase_add_test(tc, test_utf8_across_fragments);
    tcase_add_test(tc, test_control_frames);
    tcase_add_test(tc, test_close_frames);
    tcase_add_test(tc, test_rsv_and_opcodes);
    tcase_add_test(tc, test_after_error_ignored);
    tcase_add_test(tc, test_unmask_in_place);
    suite_add_tcase(s, tc);
    TCase *tw = tcase_create("writer");
    tcase_add_test(tw, test_frame_header);
    tcase_add_test(tw, test_close_payload);
    tcase_add_test(tw, test_utf8_validator);
    tcase_add_test(tw, test_handshake_keys);
    suite_add_tcase(s, tw);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

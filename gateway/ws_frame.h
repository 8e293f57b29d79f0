/*
 * The WebSocket wire format (RFC 6455), server side: an incremental frame parser, the server's frame headers, the
 * close payload, UTF-8 validation and the handshake's accept key. Pure functions on bytes, any thread; nothing here
 * trusts its input. gateway/ws_conn.c runs them on an h2o socket.
 *
 * The parser needs no buffer of its own: a frame header (2 to 14 bytes) and a whole control frame (at most 131 bytes)
 * are read only once they are complete in the caller's buffer, which keeps what was not consumed and presents it again
 * followed by what arrives next. Data frame payloads are handed out as they arrive, unmasked in place.
 */
#ifndef NOTIGATE_WS_FRAME_H
#define NOTIGATE_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* opcodes */
#define WS_OP_CONTINUATION 0x0
#define WS_OP_TEXT 0x1
#define WS_OP_BINARY 0x2
#define WS_OP_CLOSE 0x8
#define WS_OP_PING 0x9
#define WS_OP_PONG 0xa

/* close codes the parser fails with */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_PROTOCOL_ERROR 1002
#define WS_CLOSE_NO_STATUS 1005 /* a close frame without a code (never sent) */
#define WS_CLOSE_INVALID_DATA 1007
#define WS_CLOSE_TOO_BIG 1009

#define WS_CONTROL_MAX 125   /* longest control frame payload */
#define WS_HEADER_MAX 10     /* longest header of a server frame (servers do not mask) */
#define WS_ACCEPT_KEY_LEN 28 /* base64 of a SHA-1 */
#define WS_CLIENT_KEY_LEN 24 /* base64 of 16 bytes */

/* The parser's state: about 32 bytes, kept in the connection. Zeroed by ws_parser_init. */
typedef struct st_ws_parser_t {
    uint64_t max_message; /* largest message (sum of its frames' payloads) accepted */
    uint64_t remaining;   /* payload bytes of the current data frame still to come */
    uint64_t msg_len;     /* payload bytes the frames of the current message announced so far */
    uint8_t mask[4];
    uint8_t mask_off;   /* offset in the mask of the next payload byte */
    uint8_t msg_opcode; /* WS_OP_TEXT or WS_OP_BINARY while a message is incomplete, else 0 */
    uint8_t utf8;       /* UTF-8 validation state across the chunks of a text message */
    bool in_frame;      /* a data frame's header was read; its payload (remaining bytes) follows */
    bool fin;           /* the current data frame ends its message */
    bool first;         /* the next chunk handed out is the first of its message */
    bool failed;        /* an error was reported: everything else is ignored */
} ws_parser_t;

typedef enum en_ws_event_type_t {
    WS_EV_NONE = 0, /* nothing more in the bytes given: present the unconsumed ones again, with more */
    WS_EV_DATA,     /* a chunk of a text or binary message's payload (unmasked in place) */
    WS_EV_CONTROL,  /* a whole control frame (close, ping, pong), its payload unmasked in place */
    WS_EV_ERROR     /* the peer broke the protocol: close with close_code (reason says why); the parser stops */
} ws_event_type_t;

typedef struct st_ws_event_t {
    ws_event_type_t type;
    uint8_t opcode;   /* DATA: the message's (WS_OP_TEXT or WS_OP_BINARY); CONTROL: the frame's */
    bool first, last; /* DATA: the chunk starts / ends its message (a text message is then known valid UTF-8) */
    uint8_t *data;    /* DATA, CONTROL: the payload (into the caller's buffer); for a close, the whole payload */
    size_t len;
    uint16_t close_code; /* CONTROL close: the peer's code (WS_CLOSE_NO_STATUS without one); ERROR: the code to send */
    const char *reason;  /* CONTROL close: the peer's reason (reason_len bytes, valid UTF-8); ERROR: a sentence */
    size_t reason_len;
} ws_event_t;

/* Starts a parser that accepts messages of up to max_message bytes. */
void ws_parser_init(ws_parser_t *p, uint64_t max_message);

/* Reads from buf (len bytes, unmasked in place) up to the next event and fills *ev. Returns the number of bytes
 * consumed: call again from buf + consumed until the event is WS_EV_NONE; the bytes left then (a partial header or
 * control frame) must be presented again at the start of the next call. The same bytes give the same events however
 * they are split over calls (a data payload then comes in more, shorter chunks). After WS_EV_ERROR, everything is
 * consumed and ignored. Rules: RSV bits, unknown opcodes, unmasked frames, non-minimal or 2^63+ lengths, stray or
 * missing continuation frames, fragmented or long (> 125) control frames, bad close payloads -> 1002; invalid UTF-8
 * in text or in a close reason -> 1007; a message whose frames announce more than max_message bytes -> 1009, as soon
 * as the header that passes the limit is read. */
size_t ws_parser_next(ws_parser_t *p, uint8_t *buf, size_t len, ws_event_t *ev);

/* Whether a close code received from a peer is valid (1000-1014 but 1004, 1005, 1006; 3000-4999). */
bool ws_close_code_valid(unsigned code);

/* UTF-8 validation that can be split anywhere: *state starts at 0 (WS_UTF8_OK); returns false at the first byte that
 * cannot be valid. The text is valid when it ends with *state == WS_UTF8_OK. */
#define WS_UTF8_OK 0
bool ws_utf8_feed(uint8_t *state, const uint8_t *s, size_t len);
bool ws_utf8_valid(const uint8_t *s, size_t len);

/* Writes the header of an unmasked, final frame (opcode, payload of len bytes) to out; returns its length (2, 4 or 10). */
size_t ws_frame_header(uint8_t out[WS_HEADER_MAX], uint8_t opcode, uint64_t len);

/* Writes a close payload (code, then reason cut to fit 125 bytes on a UTF-8 character boundary) to out; returns its
 * length. code 0 writes an empty payload. */
size_t ws_close_payload(uint8_t out[WS_CONTROL_MAX], uint16_t code, const char *reason, size_t reason_len);

/* Whether key (Sec-WebSocket-Key) is the base64 of 16 bytes: 22 base64 characters, the last with its 4 low bits zero,
 * then "==". */
bool ws_client_key_valid(const char *key, size_t len);

/* Computes Sec-WebSocket-Accept: base64(SHA-1(key + the RFC's GUID)), NUL-terminated, into out. */
void ws_accept_key(char out[WS_ACCEPT_KEY_LEN + 1], const char *key, size_t key_len);

#endif

/*
 * A server-side WebSocket connection (RFC 6455) on the h2o socket that h2o_http1_upgrade hands over, small while idle:
 * besides this struct and h2o's socket nothing stays allocated. A message is assembled only while it is incomplete
 * (one complete in the socket's input is delivered from there), the socket's input buffer is released whenever a read
 * leaves it empty, and the send queue holds frames only until they are written (one write in flight, many frames per
 * write).
 *
 * The connection answers pings, echoes the peer's close, and fails the connection (a close frame with the parser's
 * code, ws_frame.h) on a protocol error. A close frame is queued behind the frames already queued, and nothing is
 * queued after it. All functions run on the loop thread of the connection's socket.
 */
#ifndef NOTIGATE_WS_CONN_H
#define NOTIGATE_WS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <h2o.h>
#include "ws_frame.h"

typedef struct st_ws_conn_t ws_conn_t;

typedef enum en_ws_conn_event_t {
    WS_CONN_TEXT,    /* a whole text message (valid UTF-8): data, len; valid only during the call */
    WS_CONN_BINARY,  /* a binary message began (refused on arrival: no data; the user closes with 1003) */
    WS_CONN_PING,    /* a ping came (answered already) */
    WS_CONN_PONG,    /* a pong came */
    WS_CONN_CLOSING, /* the peer sent a close (echoed) or broke the protocol (a close is queued, code in close_code,
                      * data/len: why): nothing more can be sent; WS_CONN_CLOSED follows */
    WS_CONN_CLOSED   /* the socket is closed (close handshake over, peer gone, write error): free the connection */
} ws_conn_event_t;

/* Called for each event. The callback may send, close, or ask for the connection to be freed later; it must not call
 * ws_conn_free itself. */
typedef void (*ws_conn_cb)(ws_conn_t *conn, ws_conn_event_t event, const char *data, size_t len);

typedef struct st_ws_conn_frame_t ws_conn_frame_t;

struct st_ws_conn_t {
    h2o_socket_t *sock; /* NULL until the 101 went out, and once closed */
    void *data;         /* the user's */
    ws_conn_cb cb;
    ws_parser_t parser;
    uint16_t close_code; /* the code of the close frame sent or queued (0: none) */
    /* private */
    bool _upgrading;                 /* the 101 is being written (h2o holds a pointer to this connection) */
    bool _orphan;                    /* freed by the user during the upgrade: free once h2o calls back */
    bool _close_queued;              /* a close frame is queued or written: nothing more is sent */
    bool _close_written;             /* ... and it was written */
    bool _peer_closed;               /* the peer's close frame came */
    bool _failed;                    /* we failed the connection (protocol error): input is ignored until the peer closes */
    bool _closed;                    /* the socket was closed and WS_CONN_CLOSED delivered */
    uint16_t _inflight;              /* frames (from _head) in the write in flight */
    ws_conn_frame_t *_head, **_tail; /* frames queued and not yet written */
    size_t _queued;                  /* bytes of the frames queued (the write in flight included) */
    char *_msg;                      /* the message being assembled (NULL while none is) */
    size_t _msg_len;
};

/* Answers a WebSocket handshake (101) and starts conn on the socket h2o hands over after it; data and cb are the
 * user's. req must have passed ws_conn_check_handshake (key: its Sec-WebSocket-Key). Frames may be queued at once:
 * they are written once the upgrade is done. The caller owns conn (allocated with ws_conn_new). */
ws_conn_t *ws_conn_new(uint64_t max_message, ws_conn_cb cb, void *data);
void ws_conn_upgrade(ws_conn_t *conn, h2o_req_t *req, h2o_iovec_t key);

/* An error answer to a handshake that cannot be upgraded. */
typedef struct st_ws_handshake_error_t {
    int status; /* 400, or 426 (the caller adds Sec-WebSocket-Version: 13) */
    const char *code;
    const char *message;
} ws_handshake_error_t;

/* Checks that req is a WebSocket opening handshake over HTTP/1.1: GET, Upgrade: websocket with Connection: upgrade,
 * Sec-WebSocket-Version: 13, a Sec-WebSocket-Key of 16 bytes in base64. Returns 0 and sets *key, or -1 and fills
 * *err. Never matches HTTP/2 (h2o 2.2 has no WebSocket over HTTP/2). */
int ws_conn_check_handshake(h2o_req_t *req, h2o_iovec_t *key, ws_handshake_error_t *err);

/* Queues one text frame (copied; header and payload in one allocation). Returns 0, or -1 if nothing can be sent any
 * more (closing or closed). Written by ws_conn_flush. */
int ws_conn_send_text(ws_conn_t *conn, const char *data, size_t len);

/* A text frame built once (header and payload) for many connections, on any threads: a message to a big room holds
 * one copy of its bytes, not one per session. Reference-counted (atomically): the creator holds one reference. */
typedef struct st_ws_conn_shared_t ws_conn_shared_t;
/* A text frame of len payload bytes, which the caller writes at *payload before it queues the frame anywhere. */
ws_conn_shared_t *ws_conn_shared_text(size_t len, char **payload);
void ws_conn_shared_retain(ws_conn_shared_t *f);
void ws_conn_shared_release(ws_conn_shared_t *f);
/* Bytes the frame adds to a connection's queue (header included). */
size_t ws_conn_shared_size(const ws_conn_shared_t *f);

/* Queues the shared frame f, taking a reference of its own (the caller keeps its). Returns as ws_conn_send_text. */
int ws_conn_send_shared(ws_conn_t *conn, ws_conn_shared_t *f);

/* Queues a ping with an empty payload. Returns as ws_conn_send_text. */
int ws_conn_ping(ws_conn_t *conn);

/* Queues a close frame (code, reason: cut to fit 123 bytes) behind what is queued; nothing is sent after it. Once it
 * is written and the peer's close came, the socket is closed (WS_CONN_CLOSED). Does nothing if a close is queued. */
void ws_conn_close(ws_conn_t *conn, uint16_t code, const char *reason);

/* Starts writing what is queued, unless a write is in flight (its completion writes the rest) or the upgrade is not
 * done. */
void ws_conn_flush(ws_conn_t *conn);

/* Bytes queued and not yet written (frame headers included). */
static inline size_t ws_conn_queued(const ws_conn_t *conn)
{
    return conn->_queued;
}

/* Closes the socket (what is unsent is dropped) and frees conn. Not from inside conn's callback. */
void ws_conn_free(ws_conn_t *conn);

#endif

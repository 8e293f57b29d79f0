#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "refcount.h"
#include "ws_conn.h"
#include <h2o/http1.h>

#define WRITE_MAX_FRAMES 64 /* frames handed to one h2o_socket_write */

/* A frame to send, freed once written: header and payload in bytes, or a shared frame's. */
struct st_ws_conn_frame_t {
    ws_conn_frame_t *next;
    size_t len;
    const uint8_t *data;      /* bytes, or shared->bytes */
    ws_conn_shared_t *shared; /* a reference, or NULL */
    uint8_t bytes[];
};

struct st_ws_conn_shared_t {
    refcount_t refs;
    size_t len;
    uint8_t bytes[];
};

static void frame_free(ws_conn_frame_t *f)
{
    if (f->shared != NULL)
        ws_conn_shared_release(f->shared);
    free(f);
}

static void on_read(h2o_socket_t *sock, const char *err);

ws_conn_t *ws_conn_new(uint64_t max_message, ws_conn_cb cb, void *data)
{
    ws_conn_t *conn = calloc(1, sizeof(*conn));
    if (conn == NULL)
        abort();
    conn->cb = cb;
    conn->data = data;
    ws_parser_init(&conn->parser, max_message);
    conn->_tail = &conn->_head;
    return conn;
}

static void free_frames(ws_conn_t *conn)
{
    while (conn->_head != NULL) {
        ws_conn_frame_t *f = conn->_head;
        conn->_head = f->next;
        frame_free(f);
    }
    conn->_tail = &conn->_head;
    conn->_queued = 0;
    conn->_inflight = 0;
}

static void drop_message(ws_conn_t *conn)
{
    free(conn->_msg);
    conn->_msg = NULL;
    conn->_msg_len = 0;
}

/* The socket is done with: close it, drop what is queued, tell the user (once). */
static void conn_closed(ws_conn_t *conn)
{
    if (conn->_closed)
        return;
    conn->_closed = true;
    conn->_close_queued = true; /* nothing more can be sent */
    if (conn->sock != NULL) {
        h2o_socket_close(conn->sock);
        conn->sock = NULL;
    }
    free_frames(conn);
    drop_message(conn);
    conn->cb(conn, WS_CONN_CLOSED, NULL, 0);
}

void ws_conn_free(ws_conn_t *conn)
{
    free_frames(conn);
    drop_message(conn);
    if (conn->_upgrading) {
        conn->_orphan = true; /* h2o still holds it: on_upgrade_complete frees it */
        return;
    }
    if (conn->sock != NULL)
        h2o_socket_close(conn->sock);
    free(conn);
}

/* ---- sending ---------------------------------------------------------------------------------------------------- */

static void enqueue(ws_conn_t *conn, uint8_t opcode, const void *payload, size_t len)
{
    uint8_t header[WS_HEADER_MAX];
    size_t hlen = ws_frame_header(header, opcode, len);
    ws_conn_frame_t *f = malloc(offsetof(ws_conn_frame_t, bytes) + hlen + len);
    if (f == NULL)
        abort();
    f->next = NULL;
    f->len = hlen + len;
    f->data = f->bytes;
    f->shared = NULL;
    memcpy(f->bytes, header, hlen);
    if (len != 0)
        memcpy(f->bytes + hlen, payload, len);
    *conn->_tail = f;
    conn->_tail = &f->next;
    conn->_queued += f->len;
}

ws_conn_shared_t *ws_conn_shared_text(size_t len, char **payload)
{
    uint8_t header[WS_HEADER_MAX];
    size_t hlen = ws_frame_header(header, WS_OP_TEXT, len);
    ws_conn_shared_t *f = malloc(offsetof(ws_conn_shared_t, bytes) + hlen + len);
    if (f == NULL)
        abort();
    refcount_init(&f->refs, 1);
    f->len = hlen + len;
    memcpy(f->bytes, header, hlen);
    *payload = (char *)f->bytes + hlen;
    return f;
}

void ws_conn_shared_retain(ws_conn_shared_t *f)
{
    refcount_retain(&f->refs);
}

void ws_conn_shared_release(ws_conn_shared_t *f)
{
    if (refcount_release(&f->refs))
        free(f);
}

size_t ws_conn_shared_size(const ws_conn_shared_t *f)
{
    return f->len;
}

int ws_conn_send_shared(ws_conn_t *conn, ws_conn_shared_t *shared)
{
    if (conn->_close_queued)
        return -1;
    ws_conn_frame_t *f = malloc(sizeof(*f));
    if (f == NULL)
        abort();
    ws_conn_shared_retain(shared);
    *f = (ws_conn_frame_t){.len = shared->len, .data = shared->bytes, .shared = shared};
    *conn->_tail = f;
    conn->_tail = &f->next;
    conn->_queued += f->len;
    return 0;
}

int ws_conn_send_text(ws_conn_t *conn, const char *data, size_t len)
{
    if (conn->_close_queued)
        return -1;
    enqueue(conn, WS_OP_TEXT, data, len);
    return 0;
}

int ws_conn_ping(ws_conn_t *conn)
{
    if (conn->_close_queued)
        return -1;
    enqueue(conn, WS_OP_PING, NULL, 0);
    return 0;
}

static void queue_close(ws_conn_t *conn, uint16_t code, const char *reason, size_t reason_len)
{
    uint8_t payload[WS_CONTROL_MAX];
    size_t n = ws_close_payload(payload, code, reason, reason_len);
    enqueue(conn, WS_OP_CLOSE, payload, n);
    conn->_close_queued = true;
    conn->close_code = code;
}

void ws_conn_close(ws_conn_t *conn, uint16_t code, const char *reason)
{
    if (conn->_close_queued)
        return;
    queue_close(conn, code, reason, strlen(reason));
}

static void on_write(h2o_socket_t *sock, const char *err)
{
    ws_conn_t *conn = sock->data;
    for (; conn->_inflight != 0; --conn->_inflight) {
        ws_conn_frame_t *f = conn->_head;
        conn->_head = f->next;
        conn->_queued -= f->len;
        frame_free(f);
    }
    if (conn->_head == NULL)
        conn->_tail = &conn->_head;
    if (err != NULL) {
        conn_closed(conn);
        return;
    }
    if (conn->_close_queued && conn->_head == NULL) {
        conn->_close_written = true;
        if (conn->_peer_closed) {
            conn_closed(conn); /* the close handshake is over */
            return;
        }
        /* wait for the peer's close (or, after a protocol error, for it to go away) */
    }
    ws_conn_flush(conn);
}

void ws_conn_flush(ws_conn_t *conn)
{
    if (conn->sock == NULL || conn->_inflight != 0 || conn->_head == NULL)
        return;
    h2o_iovec_t bufs[WRITE_MAX_FRAMES];
    size_t n = 0;
    for (ws_conn_frame_t *f = conn->_head; f != NULL && n < WRITE_MAX_FRAMES; f = f->next)
        bufs[n++] = h2o_iovec_init(f->data, f->len);
    conn->_inflight = (uint16_t)n;
    h2o_socket_write(conn->sock, bufs, n, on_write);
}

/* ---- receiving -------------------------------------------------------------------------------------------------- */

static void on_data(ws_conn_t *conn, const ws_event_t *ev)
{
    if (ev->opcode == WS_OP_BINARY) {
        if (ev->first)
            conn->cb(conn, WS_CONN_BINARY, NULL, 0); /* the rest of it is dropped as it comes */
        return;
    }
    if (ev->first && ev->last) {
        conn->cb(conn, WS_CONN_TEXT, (const char *)ev->data, ev->len); /* whole in the input: no copy */
        return;
    }
    if (ev->len != 0) {
        /* the parser bounds the message by max_message */
        char *msg = realloc(conn->_msg, conn->_msg_len + ev->len);
        if (msg == NULL)
            abort();
        memcpy(msg + conn->_msg_len, ev->data, ev->len);
        conn->_msg = msg;
        conn->_msg_len += ev->len;
    }
    if (ev->last) {
        char *msg = conn->_msg;
        size_t len = conn->_msg_len;
        conn->_msg = NULL;
        conn->_msg_len = 0;
        conn->cb(conn, WS_CONN_TEXT, msg != NULL ? msg : "", len);
        free(msg);
    }
}

static void on_control(ws_conn_t *conn, const ws_event_t *ev)
{
    switch (ev->opcode) {
    case WS_OP_PING:
        if (!conn->_close_queued)
            enqueue(conn, WS_OP_PONG, ev->data, ev->len);
        conn->cb(conn, WS_CONN_PING, NULL, 0);
        break;
    case WS_OP_PONG:
        conn->cb(conn, WS_CONN_PONG, NULL, 0);
        break;
    case WS_OP_CLOSE:
        conn->_peer_closed = true;
        drop_message(conn);
        if (!conn->_close_queued) {
            /* echo the peer's code (none if it sent none) */
            queue_close(conn, ev->close_code == WS_CLOSE_NO_STATUS ? 0 : ev->close_code, NULL, 0);
            conn->close_code = ev->close_code;
            conn->cb(conn, WS_CONN_CLOSING, ev->reason, ev->reason_len);
        } else if (conn->_close_written) {
            conn_closed(conn); /* the answer to our close */
        }
        break;
    }
}

static void on_event(ws_conn_t *conn, const ws_event_t *ev)
{
    if (conn->_peer_closed)
        return; /* nothing counts after the peer's close */
    switch (ev->type) {
    case WS_EV_DATA:
        on_data(conn, ev);
        break;
    case WS_EV_CONTROL:
        on_control(conn, ev);
        break;
    case WS_EV_ERROR:
        conn->_failed = true;
        drop_message(conn);
        if (!conn->_close_queued) {
            queue_close(conn, ev->close_code, ev->reason, ev->reason_len);
            conn->cb(conn, WS_CONN_CLOSING, ev->reason, ev->reason_len);
        }
        break;
    default:
        break;
    }
}

/* Parses what the socket's input holds, delivers it, keeps a partial frame for later, and releases the input buffer
 * if it is left empty (an idle connection then holds none). */
static void process_input(ws_conn_t *conn)
{
    size_t off = 0;
    h2o_buffer_t *in = conn->sock->input;
    while (!conn->_closed && off < in->size) {
        ws_event_t ev;
        off += ws_parser_next(&conn->parser, (uint8_t *)in->bytes + off, in->size - off, &ev);
        if (ev.type == WS_EV_NONE)
            break;
        on_event(conn, &ev);
    }
    if (conn->_closed)
        return;
    h2o_buffer_consume(&conn->sock->input, off);
    if (conn->sock->input->size == 0) {
        /* h2o's evloop reserves the buffer again before its next read (h2o_buffer_reserve on the prototype's empty
         * buffer allocates) and touches it only from there */
        h2o_buffer_dispose(&conn->sock->input);
        h2o_buffer_init(&conn->sock->input, &h2o_socket_buffer_prototype);
    }
    ws_conn_flush(conn);
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    ws_conn_t *conn = sock->data;
    if (err != NULL) {
        conn_closed(conn);
        return;
    }
    process_input(conn);
}

/* ---- opening ---------------------------------------------------------------------------------------------------- */

static void on_upgrade_complete(void *user_data, h2o_socket_t *sock, size_t reqsize)
{
    ws_conn_t *conn = user_data;
    conn->_upgrading = false;
    if (conn->_orphan) {
        if (sock != NULL)
            h2o_socket_close(sock);
        free(conn);
        return;
    }
    if (sock == NULL) {
        conn_closed(conn); /* the 101 could not be written */
        return;
    }
    conn->sock = sock;
    sock->data = conn;
    h2o_buffer_consume(&sock->input, reqsize); /* the request; frames the client sent at once may follow */
    h2o_socket_read_start(sock, on_read);
    process_input(conn); /* also writes what was queued meanwhile */
}

void ws_conn_upgrade(ws_conn_t *conn, h2o_req_t *req, h2o_iovec_t key)
{
    char accept[WS_ACCEPT_KEY_LEN + 1];
    ws_accept_key(accept, key.base, key.len);
    req->res.status = 101;
    req->res.reason = "Switching Protocols";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_UPGRADE, NULL, H2O_STRLIT("websocket"));
    h2o_iovec_t value = h2o_strdup(&req->pool, accept, WS_ACCEPT_KEY_LEN);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("sec-websocket-accept"), 0, NULL, value.base, value.len);
    conn->_upgrading = true;
    h2o_http1_upgrade(req, NULL, 0, on_upgrade_complete, conn);
}

int ws_conn_check_handshake(h2o_req_t *req, h2o_iovec_t *key, ws_handshake_error_t *err)
{
    ssize_t i;
    err->status = 400;
    err->code = "websocket_required";
    err->message = "this endpoint speaks WebSocket: send an HTTP/1.1 Upgrade: websocket request";
    if (req->version >= 0x200 || !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")))
        return -1; /* h2o 2.2 upgrades only HTTP/1.1 connections */
    if (req->upgrade.base == NULL || !h2o_lcstris(req->upgrade.base, req->upgrade.len, H2O_STRLIT("websocket")))
        return -1;
    if ((i = h2o_find_header(&req->headers, H2O_TOKEN_CONNECTION, -1)) != -1 &&
        !h2o_contains_token(req->headers.entries[i].value.base, req->headers.entries[i].value.len, H2O_STRLIT("upgrade"), ','))
        return -1;
    if ((i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("sec-websocket-version"), -1)) == -1 ||
        !h2o_memis(req->headers.entries[i].value.base, req->headers.entries[i].value.len, H2O_STRLIT("13"))) {
        err->status = 426;
        err->code = "unsupported_websocket_version";
        err->message = "this gateway speaks WebSocket version 13 (RFC 6455): send Sec-WebSocket-Version: 13";
        return -1;
    }
    if ((i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("sec-websocket-key"), -1)) == -1 ||
        !ws_client_key_valid(req->headers.entries[i].value.base, req->headers.entries[i].value.len)) {
        err->code = "invalid_websocket_key";
        err->message = "Sec-WebSocket-Key must be 16 random bytes in base64 (24 characters)";
        return -1;
    }
    *key = req->headers.entries[i].value;
    return 0;
}

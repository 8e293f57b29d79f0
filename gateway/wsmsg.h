/*
 * Parsing and validation of what WebSocket clients send, in both protocols: the native protocol's JSON messages
 * (ws_native.c) and Engine.IO v4 / Socket.IO v5 packets (socketio.c). Pure functions with no session: the handlers
 * act on what these return, the unit tests and the fuzz targets (tests/fuzz) call them directly. Any thread.
 *
 * What a parse hands back points into the input or into the JSON document the result owns: keep the input alive while
 * using it, and release the result with its dispose function (also after an error; disposing twice is harmless).
 */
#ifndef NOTIGATE_WSMSG_H
#define NOTIGATE_WSMSG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WSMSG_NAME_MAX 64               /* a chat username: bytes of UTF-8 */
#define WSMSG_DEFAULT_ROOM "lobby"      /* the room of a join that names none */
#define WSMSG_NSP_MAX 128               /* a Socket.IO namespace the server names back in a CONNECT_ERROR */
#define WSMSG_ACK_ID_MAX 999999999999LL /* a Socket.IO acknowledgement id: up to 12 digits */

/* A chat username: 1-64 bytes of UTF-8, no control characters. */
bool wsmsg_valid_username(const char *s, size_t len);

/* A chat join, as both protocols carry it: username and room, each valid (the room defaults to WSMSG_DEFAULT_ROOM). */
typedef struct st_wsmsg_join_t {
    const char *username, *room;
    size_t username_len, room_len;
} wsmsg_join_t;

/* ---- native protocol: {"type":"join","username","room"?} {"type":"send_message","message"} {"type":"leave"}
 *      {"type":"ping"} ---------------------------------------------------------------------------------------------- */

typedef enum en_native_kind_t {
    NATIVE_MSG_ERROR = 0, /* code and message say what is wrong, for an error frame */
    NATIVE_MSG_JOIN,
    NATIVE_MSG_SEND_MESSAGE, /* message is a JSON string's bytes, not yet checked (chat_send_message does, after the
                              * session is known to be in a room) */
    NATIVE_MSG_LEAVE,
    NATIVE_MSG_PING,
} native_kind_t;

typedef struct st_native_msg_t {
    native_kind_t kind;
    wsmsg_join_t join;   /* NATIVE_MSG_JOIN */
    const char *message; /* NATIVE_MSG_SEND_MESSAGE */
    size_t message_len;
    const char *code, *error; /* NATIVE_MSG_ERROR: a static error code and message */
    json_t *_root;
} native_msg_t;

/* Parses one text message of the native protocol. Returns msg->kind (NATIVE_MSG_ERROR with code and error set for a
 * message that is not valid JSON, has no string "type", an unknown type, or a join or send_message whose fields are
 * missing, of the wrong type or invalid). Release with native_msg_dispose. */
native_kind_t native_parse(native_msg_t *msg, const char *data, size_t len);
void native_msg_dispose(native_msg_t *msg);

/* ---- Engine.IO v4 / Socket.IO v5 ---------------------------------------------------------------------------------- */

typedef enum en_sio_kind_t {
    SIO_PKT_ERROR = 0,     /* code and error say what is wrong (session_send_error) */
    SIO_PKT_IGNORE,        /* nothing to do: an empty frame, Engine.IO pong, upgrade or noop, a Socket.IO ACK */
    SIO_PKT_CLOSE,         /* Engine.IO close, or a Socket.IO DISCONNECT of the default namespace */
    SIO_PKT_PING,          /* an Engine.IO ping from the client: answer with a pong */
    SIO_PKT_CONNECT,       /* Socket.IO CONNECT of the default namespace; payload is its auth, or empty */
    SIO_PKT_CONNECT_OTHER, /* Socket.IO CONNECT of another namespace, named by nsp: answer CONNECT_ERROR */
    SIO_PKT_EVENT,         /* Socket.IO EVENT of the default namespace; payload is the JSON array */
    SIO_PKT_EVENT_OTHER,   /* Socket.IO EVENT of another namespace (never connected) */
} sio_kind_t;

typedef struct st_sio_packet_t {
    sio_kind_t kind;
    const char *nsp; /* the namespace as sent ("/name"), only for SIO_PKT_CONNECT_OTHER: printable ASCII, no ',' */
    size_t nsp_len;
    long long ack_id;    /* the acknowledgement the client asked for, or -1 (0 to WSMSG_ACK_ID_MAX) */
    const char *payload; /* what follows the header (namespace and ack id) */
    size_t payload_len;
    const char *code, *error; /* SIO_PKT_ERROR */
} sio_packet_t;

/* Splits one WebSocket text frame into an Engine.IO packet and, for a message, its Socket.IO header: type, namespace,
 * ack id. The payload is left as it is (sio_parse_auth, sio_parse_event read it). Allocates nothing. */
sio_kind_t sio_parse_packet(sio_packet_t *pkt, const char *data, size_t len);

/* The CONNECT payload (auth): empty, or a JSON object with an optional "user_id" (a valid user id) and "since" (an
 * integer >= 0); null fields count as absent. */
typedef struct st_sio_auth_t {
    const char *user; /* NULL: none given */
    size_t user_len;
    bool has_since;
    uint64_t since;
    const char *error; /* the CONNECT_ERROR message when invalid */
    json_t *_root;
} sio_auth_t;

/* Returns 0, or -1 with auth->error set. Release with sio_auth_dispose. */
int sio_parse_auth(sio_auth_t *auth, const char *payload, size_t len);
void sio_auth_dispose(sio_auth_t *auth);

/* An EVENT's JSON array ["name", arg]: join (a username, or {username, room}), send_message ({message} or a string),
 * leave. */
typedef enum en_sio_event_kind_t {
    SIO_EV_ERROR = 0, /* code and error set (the event's ack gets them, or an error event) */
    SIO_EV_JOIN,
    SIO_EV_SEND_MESSAGE, /* message not yet checked, as NATIVE_MSG_SEND_MESSAGE */
    SIO_EV_LEAVE,
} sio_event_kind_t;

typedef struct st_sio_event_t {
    sio_event_kind_t kind;
    wsmsg_join_t join;
    const char *message;
    size_t message_len;
    const char *code, *error;
    json_t *_root;
} sio_event_t;

/* Returns ev->kind. Release with sio_event_dispose. */
sio_event_kind_t sio_parse_event(sio_event_t *ev, const char *payload, size_t len);
void sio_event_dispose(sio_event_t *ev);

#endif

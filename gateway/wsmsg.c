#include <string.h>
#include "valid.h"
#include "wsmsg.h"

bool wsmsg_valid_username(const char *s, size_t len)
{
    if (len == 0 || len > WSMSG_NAME_MAX || !valid_utf8(s, len))
        return false;
    for (size_t i = 0; i < len; ++i)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* True if the JSON string v is exactly lit (a string with a NUL inside never is). */
static bool string_is(json_t *v, const char *lit)
{
    size_t n = strlen(lit);
    return json_is_string(v) && json_string_length(v) == n && memcmp(json_string_value(v), lit, n) == 0;
}

/* Checks a join's username and room (JSON strings, room NULL or null for none) as chat_join would, and fills join.
 * Returns 0, or -1 with *code and *error set. */
static int parse_join(wsmsg_join_t *join, json_t *user, json_t *room, const char **code, const char **error)
{
    join->username = json_string_value(user);
    join->username_len = json_string_length(user);
    if (!wsmsg_valid_username(join->username, join->username_len)) {
        *code = "invalid_username", *error = "username must be 1-64 bytes of UTF-8 without control characters";
        return -1;
    }
    if (json_is_string(room) && json_string_length(room) != 0) {
        join->room = json_string_value(room);
        join->room_len = json_string_length(room);
    } else {
        join->room = WSMSG_DEFAULT_ROOM;
        join->room_len = sizeof(WSMSG_DEFAULT_ROOM) - 1;
    }
    if (!valid_user_id(join->room, join->room_len)) {
        *code = "invalid_room", *error = "room must be 1-64 characters of A-Z a-z 0-9 _ . -";
        return -1;
    }
    return 0;
}

/* ---- native ------------------------------------------------------------------------------------------------------ */

static native_kind_t native_error(native_msg_t *msg, const char *code, const char *error)
{
    msg->kind = NATIVE_MSG_ERROR;
    msg->code = code;
    msg->error = error;
    return NATIVE_MSG_ERROR;
}

native_kind_t native_parse(native_msg_t *msg, const char *data, size_t len)
{
    json_error_t jerr;
    memset(msg, 0, sizeof(*msg));
    json_t *root = msg->_root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root))
        return native_error(msg, "invalid_json", "frames must be JSON objects with a \"type\"");
    json_t *type = json_object_get(root, "type");
    if (!json_is_string(type))
        return native_error(msg, "invalid_type", "frames must have a string \"type\"");
    if (string_is(type, "join")) {
        json_t *user = json_object_get(root, "username"), *room = json_object_get(root, "room");
        if (!json_is_string(user) || (room != NULL && !json_is_null(room) && !json_is_string(room)))
            return native_error(msg, "invalid_username", "join needs a string \"username\" (and may name a string \"room\")");
        if (parse_join(&msg->join, user, room, &msg->code, &msg->error) != 0)
            return native_error(msg, msg->code, msg->error);
        return msg->kind = NATIVE_MSG_JOIN;
    }
    if (string_is(type, "send_message")) {
        json_t *m = json_object_get(root, "message");
        if (!json_is_string(m))
            return native_error(msg, "invalid_message", "send_message needs a string \"message\"");
        msg->message = json_string_value(m);
        msg->message_len = json_string_length(m);
        return msg->kind = NATIVE_MSG_SEND_MESSAGE;
    }
    if (string_is(type, "leave"))
        return msg->kind = NATIVE_MSG_LEAVE;
    if (string_is(type, "ping"))
        return msg->kind = NATIVE_MSG_PING;
    return native_error(msg, "unknown_type", "type must be join, send_message, leave or ping");
}

void native_msg_dispose(native_msg_t *msg)
{
    if (msg->_root != NULL)
        json_decref(msg->_root);
    memset(msg, 0, sizeof(*msg));
}

/* ---- Engine.IO / Socket.IO ------------------------------------------------------------------------------------- */

static sio_kind_t sio_error(sio_packet_t *pkt, const char *code, const char *error)
{
    pkt->kind = SIO_PKT_ERROR;
    pkt->code = code;
    pkt->error = error;
    return SIO_PKT_ERROR;
}

/* A namespace the server may name back in a text frame: printable ASCII, no ',' (it ends the namespace). */
static bool valid_nsp(const char *s, size_t len)
{
    if (len == 0 || len > WSMSG_NSP_MAX || s[0] != '/')
        return false;
    for (size_t i = 0; i < len; ++i)
        if (s[i] < 0x20 || s[i] > 0x7e || s[i] == ',')
            return false;
    return true;
}

sio_kind_t sio_parse_packet(sio_packet_t *pkt, const char *data, size_t len)
{
    memset(pkt, 0, sizeof(*pkt));
    pkt->ack_id = -1;
    if (len == 0)
        return pkt->kind = SIO_PKT_IGNORE;
    switch (data[0]) {
    case '1': /* close */
        return pkt->kind = SIO_PKT_CLOSE;
    case '2': /* a client ping (not in EIO 4, but harmless) */
        return pkt->kind = SIO_PKT_PING;
    case '3': /* pong: the heartbeat saw it (last_seen) */
    case '5': /* upgrade, noop: nothing to do over WebSocket */
    case '6':
        return pkt->kind = SIO_PKT_IGNORE;
    case '4':
        break;
    default:
        return sio_error(pkt, "invalid_packet", "unknown Engine.IO packet type");
    }
    if (len < 2)
        return sio_error(pkt, "invalid_packet", "empty Socket.IO packet");

    /* a Socket.IO packet: type, [namespace ","], [ack id], [JSON] */
    const char *p = data + 2, *end = data + len;
    char type = data[1];
    bool other_nsp = false;
    if (p < end && *p == '/') {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *nsp_end = comma != NULL ? comma : end;
        pkt->nsp = p;
        pkt->nsp_len = (size_t)(nsp_end - p);
        other_nsp = pkt->nsp_len != 1; /* "/" alone is the default namespace */
        p = comma != NULL ? comma + 1 : end;
    }
    if (p < end && *p >= '0' && *p <= '9') {
        const char *digits = p;
        pkt->ack_id = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (p - digits == 12)
                return sio_error(pkt, "invalid_packet", "an ack id has at most 12 digits");
            pkt->ack_id = pkt->ack_id * 10 + (*p++ - '0');
        }
    }
    pkt->payload = p;
    pkt->payload_len = (size_t)(end - p);

    switch (type) {
    case '0':
        if (!other_nsp)
            return pkt->kind = SIO_PKT_CONNECT;
        if (!valid_nsp(pkt->nsp, pkt->nsp_len))
            return sio_error(pkt, "invalid_packet", "a namespace is up to 128 printable ASCII characters");
        return pkt->kind = SIO_PKT_CONNECT_OTHER;
    case '1':
        return pkt->kind = other_nsp ? SIO_PKT_IGNORE : SIO_PKT_CLOSE;
    case '2':
        return pkt->kind = other_nsp ? SIO_PKT_EVENT_OTHER : SIO_PKT_EVENT;
    case '3': /* an acknowledgement from the client: we never ask for one */
        return pkt->kind = SIO_PKT_IGNORE;
    case '5':
    case '6':
        return sio_error(pkt, "unsupported", "binary events are not supported");
    default:
        return sio_error(pkt, "invalid_packet", "unknown Socket.IO packet type");
    }
}

int sio_parse_auth(sio_auth_t *auth, const char *payload, size_t len)
{
    json_error_t jerr;
    memset(auth, 0, sizeof(*auth));
    if (len == 0)
        return 0;
    json_t *root = auth->_root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        auth->error = "the CONNECT payload (auth) must be a JSON object";
        return -1;
    }
    json_t *u = json_object_get(root, "user_id"), *si = json_object_get(root, "since");
    if (u != NULL && !json_is_null(u)) {
        if (!json_is_string(u) || !valid_user_id(json_string_value(u), json_string_length(u))) {
            auth->error = "user_id must be 1-64 characters of A-Z a-z 0-9 _ . -";
            return -1;
        }
        auth->user = json_string_value(u);
        auth->user_len = json_string_length(u);
    }
    if (si != NULL && !json_is_null(si)) {
        if (!json_is_integer(si) || json_integer_value(si) < 0) {
            auth->user = NULL, auth->user_len = 0;
            auth->error = "since must be the id of the last notification received";
            return -1;
        }
        auth->has_since = true;
        auth->since = (uint64_t)json_integer_value(si);
    }
    return 0;
}

void sio_auth_dispose(sio_auth_t *auth)
{
    if (auth->_root != NULL)
        json_decref(auth->_root);
    memset(auth, 0, sizeof(*auth));
}

static sio_event_kind_t event_error(sio_event_t *ev, const char *code, const char *error)
{
    ev->kind = SIO_EV_ERROR;
    ev->code = code;
    ev->error = error;
    return SIO_EV_ERROR;
}

sio_event_kind_t sio_parse_event(sio_event_t *ev, const char *payload, size_t len)
{
    json_error_t jerr;
    memset(ev, 0, sizeof(*ev));
    json_t *args = ev->_root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *name = json_array_get(args, 0), *arg = json_array_get(args, 1); /* NULL unless an array that long */
    if (!json_is_string(name))
        return event_error(ev, "invalid_event", "an event is a JSON array starting with its name");
    if (string_is(name, "join")) {
        json_t *user = json_is_object(arg) ? json_object_get(arg, "username") : arg;
        json_t *room = json_is_object(arg) ? json_object_get(arg, "room") : NULL;
        if (!json_is_string(user) || (room != NULL && !json_is_null(room) && !json_is_string(room)))
            return event_error(ev, "invalid_username", "join takes a username, or {username, room}");
        if (parse_join(&ev->join, user, room, &ev->code, &ev->error) != 0)
            return event_error(ev, ev->code, ev->error);
        return ev->kind = SIO_EV_JOIN;
    }
    if (string_is(name, "send_message")) {
        json_t *m = json_is_object(arg) ? json_object_get(arg, "message") : arg;
        if (!json_is_string(m))
            return event_error(ev, "invalid_message", "send_message takes {message} or a string");
        ev->message = json_string_value(m);
        ev->message_len = json_string_length(m);
        return ev->kind = SIO_EV_SEND_MESSAGE;
    }
    if (string_is(name, "leave"))
        return ev->kind = SIO_EV_LEAVE;
    return event_error(ev, "unknown_event", "events are join, send_message and leave");
}

void sio_event_dispose(sio_event_t *ev)
{
    if (ev->_root != NULL)
        json_decref(ev->_root);
    memset(ev, 0, sizeof(*ev));
}

/*
 * Socket.IO v5 over Engine.IO v4, WebSocket transport only (/socket.io/?EIO=4&transport=websocket), so that an
 * unmodified socket.io-client 4.x with transports: ["websocket"] runs the seed's chat and receives notifications.
 *
 * Engine.IO packets (one per WebSocket text frame): 0 open (server), 1 close, 2 ping (server), 3 pong (client),
 * 4 message, 6 noop. A message carries a Socket.IO packet: 0 CONNECT [nsp,][auth], 1 DISCONNECT, 2 EVENT
 * [nsp,][ack id]["name",args...], 3 ACK [nsp,]ack id[args...], 4 CONNECT_ERROR; 5 and 6 (binary) are not served.
 *
 * Events: join (a username, or {username, room}), send_message ({message} or a string), leave; the server emits
 * user_joined, online_users, new_message, user_left, notification and error, with the seed's payloads (in a room over
 * --presence-full-max: online_users with the first names and the total as a second argument, chat.h). An event
 * sent with an acknowledgement gets [{"ok":true,...}] or [{"ok":false,"error":{code,message}}]. The user whose
 * notifications the socket receives comes from auth {user_id, since} or from the query's user_id and since. With
 * authentication on, CONNECT needs a token (auth.token, or one given with the upgrade: Authorization header or the
 * query's token), for that user if one is named; a bad one is answered CONNECT_ERROR 44{"message","data":{"code"}}.
 * Packets, CONNECT payloads and events are parsed and checked by sio_parse_* (wsmsg.c); this file acts on them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chat.h"
#include "gateway.h"
#include "json_out.h"
#include "session.h"
#include "wsmsg.h"

static void send_packet(session_t *s, const char *prefix, const char *json, size_t len)
{
    json_out_t *o = &s->thread->ws_out;
    json_out_reset(o);
    json_out_cstr(o, prefix);
    if (json != NULL)
        json_out_raw(o, json, len);
    session_send(s, o->buf, o->len);
}

void socketio_send_connect(session_t *s)
{
    char sid[24]; /* the socket's id in the namespace: shown once, here */
    session_random_sid(sid, 20);
    json_out_t o = {NULL};
    json_out_lit(&o, "{\"sid\":");
    json_out_str(&o, sid, strlen(sid));
    json_out_lit(&o, "}");
    send_packet(s, "40", o.buf, o.len);
    json_out_dispose(&o);
}

/* CONNECT_ERROR with a message (the client's connect_error event: err.message) and, if code is not NULL, data {code}
 * (err.data), for the namespace nsp ("/name", or empty for the default one): a client ignores a CONNECT_ERROR that
 * does not name the namespace it connects to. */
static void connect_error_code(session_t *s, const char *nsp, size_t nsp_len, const char *code, const char *message)
{
    json_out_t o = {NULL};
    json_out_lit(&o, "44");
    if (nsp_len != 0) {
        json_out_raw(&o, nsp, nsp_len);
        json_out_lit(&o, ",");
    }
    json_out_lit(&o, "{\"message\":");
    json_out_str(&o, message, strlen(message));
    if (code != NULL) {
        json_out_lit(&o, ",\"data\":{\"code\":");
        json_out_str(&o, code, strlen(code));
        json_out_lit(&o, "}");
    }
    json_out_lit(&o, "}");
    send_packet(s, "", o.buf, o.len);
    json_out_dispose(&o);
}

static void connect_error(session_t *s, const char *nsp, size_t nsp_len, const char *message)
{
    connect_error_code(s, nsp, nsp_len, NULL, message);
}

/* Who connects: the token of CONNECT's auth.token if there is one, else the upgrade's credential; user (if any) must be
 * its user. Returns 0, or answers CONNECT_ERROR and returns -1: nothing of the user is ever sent then. */
static int connect_auth(session_t *s, json_t *auth, const char *user, size_t user_len)
{
    gateway_t *gw = s->thread->gw;
    auth_principal_t a = s->sio.query->auth; /* the query lives until connected */
    json_t *tok = json_object_get(auth, "token");
    char message[160];
    if (gw->auth.secret_len == 0)
        return 0;
    if (tok != NULL && !json_is_null(tok)) {
        if (!json_is_string(tok)) {
            connect_error_code(s, "", 0, "invalid_token", "auth.token must be a string");
            return -1;
        }
        gateway_authenticate_token(s->thread, json_string_value(tok), json_string_length(tok), &a);
    }
    if (!a.present) {
        connect_error_code(s, "", 0, "unauthorized", "a token is required: connect with auth: {token}");
        return -1;
    }
    if (!a.valid) {
        const char *code =
            a.result == AUTH_EXPIRED ? "token_expired" : (a.result == AUTH_NOT_YET_VALID ? "token_not_yet_valid" : "invalid_token");
        snprintf(message, sizeof(message), "%s", auth_result_message(a.result));
        connect_error_code(s, "", 0, code, message);
        return -1;
    }
    if (user_len != 0 && gateway_auth_check_user(&a, user, user_len) != 0) {
        connect_error_code(s, "", 0, "forbidden", "the token is for another user");
        return -1;
    }
    s->auth_exp = a.valid && !a.api_key ? a.claims.exp : 0;
    return 0;
}

void socketio_on_open(session_t *s)
{
    const gateway_config_t *cfg = &s->thread->gw->cfg;
    char open[256];
    int n = snprintf(open, sizeof(open),
                     "0{\"sid\":\"%s\",\"upgrades\":[],\"pingInterval\":%lld,\"pingTimeout\":%lld,\"maxPayload\":%lld}", s->sid,
                     (long long)cfg->ws_ping_interval_ms, (long long)cfg->ws_ping_timeout_ms, (long long)cfg->ws_max_message);
    session_send(s, open, (size_t)n);
}

void socketio_ping(session_t *s)
{
    session_send(s, "2", 1);
}

/* Sends the acknowledgement 43<id>[payload] if the client asked for one (id >= 0). */
static void ack(session_t *s, long long id, const char *payload, size_t len)
{
    if (id < 0)
        return;
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "43%lld[", id);
    json_out_t *o = &s->thread->ws_out;
    json_out_reset(o);
    json_out_cstr(o, prefix);
    json_out_raw(o, payload, len);
    json_out_lit(o, "]");
    session_send(s, o->buf, o->len);
}

static void ack_error(session_t *s, long long id, const char *code, const char *message)
{
    json_out_t o = {NULL};
    json_out_lit(&o, "{\"ok\":false,\"error\":{\"code\":");
    json_out_str(&o, code, strlen(code));
    json_out_lit(&o, ",\"message\":");
    json_out_str(&o, message, strlen(message));
    json_out_lit(&o, "}}");
    if (id >= 0)
        ack(s, id, o.buf, o.len);
    else
        session_send_error(s, code, message);
    json_out_dispose(&o);
}

static void on_connect(session_t *s, const char *data, size_t len)
{
    sio_auth_t auth;
    if (s->sio.connected)
        return; /* a second CONNECT: nothing to do */
    if (sio_parse_auth(&auth, data, len) != 0) {
        connect_error(s, "", 0, auth.error);
        goto Exit;
    }
    /* the handshake's query names the user and since, auth overrides them */
    struct st_session_sio_query_t *query = s->sio.query; /* set until connected */
    const char *user = auth.user != NULL ? auth.user : query->user;
    size_t user_len = auth.user != NULL ? auth.user_len : query->user_len;
    bool has_since = auth.has_since || query->has_since;
    uint64_t since = auth.has_since ? auth.since : query->since;
    if (connect_auth(s, auth._root, user, user_len) != 0) /* the auth object's token, if any */
        goto Exit;
    if (user_len != 0 && s->user_len == 0 && session_claim_user(s, user, user_len) != 0) {
        connect_error(s, "", 0, "too many sessions: this user has all the sessions allowed open; close one first");
        goto Exit;
    }
    s->sio.connected = true;
    if (user_len != 0 && s->user_len == 0 && !has_since) {
        s->greet_pending = true; /* the CONNECT answer once the session knows where it starts (session.c, greet) */
        session_attach_user(s, user, user_len, false, 0);
    } else {
        socketio_send_connect(s);
        if (user_len != 0 && s->user_len == 0)
            session_attach_user(s, user, user_len, has_since, since);
    }
    s->sio.query = NULL; /* user may point into it: attaching copied it */
    free(query);
Exit:
    sio_auth_dispose(&auth);
}

static void ack_joined(session_t *s, long long id)
{
    if (id < 0)
        return;
    json_out_t o = {NULL};
    json_out_lit(&o, "{\"ok\":true,");
    chat_write_joined(s, &o);
    json_out_lit(&o, "}");
    ack(s, id, o.buf, o.len);
    json_out_dispose(&o);
}

static void on_event(session_t *s, long long ack_id, const char *data, size_t len)
{
    sio_event_t ev;
    const char *code, *message;
    switch (sio_parse_event(&ev, data, len)) {
    case SIO_EV_ERROR:
        ack_error(s, ack_id, ev.code, ev.error);
        break;
    case SIO_EV_JOIN:
        if (chat_join(s, ev.join.username, ev.join.username_len, ev.join.room, ev.join.room_len, &code, &message) != 0)
            ack_error(s, ack_id, code, message);
        else
            ack_joined(s, ack_id);
        break;
    case SIO_EV_SEND_MESSAGE:
        if (chat_send_message(s, ev.message, ev.message_len, &code, &message) != 0)
            ack_error(s, ack_id, code, message);
        else
            ack(s, ack_id, "{\"ok\":true}", 11);
        break;
    case SIO_EV_LEAVE:
        chat_leave(s);
        ack(s, ack_id, "{\"ok\":true}", 11);
        break;
    }
    sio_event_dispose(&ev);
}

void socketio_on_message(session_t *s, const char *data, size_t len)
{
    sio_packet_t pkt;
    switch (sio_parse_packet(&pkt, data, len)) {
    case SIO_PKT_ERROR:
        session_send_error(s, pkt.code, pkt.error);
        break;
    case SIO_PKT_IGNORE:
        break;
    case SIO_PKT_CLOSE:
        session_close(s, SESSION_CLOSE_NORMAL, "");
        break;
    case SIO_PKT_PING:
        session_send(s, "3", 1);
        break;
    case SIO_PKT_CONNECT:
        on_connect(s, pkt.payload, pkt.payload_len);
        break;
    case SIO_PKT_CONNECT_OTHER:
        connect_error(s, pkt.nsp, pkt.nsp_len, "Invalid namespace");
        break;
    case SIO_PKT_EVENT:
    case SIO_PKT_EVENT_OTHER:
        if (pkt.kind == SIO_PKT_EVENT_OTHER || !s->sio.connected)
            ack_error(s, pkt.ack_id, "not_connected", "connect to the default namespace first");
        else
            on_event(s, pkt.ack_id, pkt.payload, pkt.payload_len);
        break;
    }
}

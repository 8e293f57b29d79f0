/*
 * The native WebSocket protocol at GET /v1/ws?user_id=U[&since=ID]: JSON text frames both ways.
 *
 *   server -> client  {"type":"hello","data":{"sid","user_id","ping_interval_ms"}}         first frame
 *                     {"type":"notification","data":{notification}}                       the user's notifications
 *                     {"type":"joined","data":{"room","username","online_users"[,"online_count"]}} answer to join
 *                     {"type":"user_joined","data":"name"}, {"type":"user_left","data":"name"},
 *                     {"type":"online_users","data":["name",...][,"count":N]}  (count: rooms over --presence-full-max)
 *                     {"type":"new_message","data":{"sender","message","timestamp","room"}}
 *                     {"type":"left","data":{"room"}}, {"type":"pong"}
 *                     {"type":"error","data":{"code","message"}}                          a bad frame; the session stays
 *   client -> server  {"type":"join","username":"..","room":".."?}, {"type":"send_message","message":".."},
 *                     {"type":"leave"}, {"type":"ping"}
 * The messages are parsed and checked by native_parse (wsmsg.c); this file acts on them.
 */
#include <string.h>
#include "chat.h"
#include "gateway.h"
#include "json_out.h"
#include "session.h"
#include "wsmsg.h"

void native_on_open(session_t *s, const char *user, size_t user_len)
{
    json_out_t o = {NULL};
    json_out_lit(&o, "{\"sid\":");
    json_out_str(&o, s->sid, strlen(s->sid));
    json_out_lit(&o, ",\"user_id\":");
    if (user_len != 0)
        json_out_str(&o, user, user_len);
    else
        json_out_lit(&o, "null");
    json_out_lit(&o, ",\"ping_interval_ms\":");
    json_out_i64(&o, s->thread->gw->cfg.ws_ping_interval_ms);
    json_out_lit(&o, "}");
    session_send_event(s, "hello", o.buf, o.len);
    json_out_dispose(&o);
}

static void send_joined(session_t *s)
{
    json_out_t o = {NULL};
    json_out_lit(&o, "{");
    chat_write_joined(s, &o);
    json_out_lit(&o, "}");
    session_send_event(s, "joined", o.buf, o.len);
    json_out_dispose(&o);
}

void native_on_message(session_t *s, const char *data, size_t len)
{
    native_msg_t msg;
    const char *code, *message;
    switch (native_parse(&msg, data, len)) {
    case NATIVE_MSG_ERROR:
        session_send_error(s, msg.code, msg.error);
        break;
    case NATIVE_MSG_JOIN:
        if (chat_join(s, msg.join.username, msg.join.username_len, msg.join.room, msg.join.room_len, &code, &message) != 0)
            session_send_error(s, code, message);
        else
            send_joined(s);
        break;
    case NATIVE_MSG_SEND_MESSAGE:
        if (chat_send_message(s, msg.message, msg.message_len, &code, &message) != 0)
            session_send_error(s, code, message);
        break;
    case NATIVE_MSG_LEAVE:
        if (s->chat == NULL) {
            session_send_error(s, "not_joined", "not in a room");
        } else {
            json_out_t o = {NULL};
            json_out_lit(&o, "{\"room\":");
            json_out_str(&o, s->chat->room, strlen(s->chat->room));
            json_out_lit(&o, "}");
            chat_leave(s);
            session_send_event(s, "left", o.buf, o.len);
            json_out_dispose(&o);
        }
        break;
    case NATIVE_MSG_PING:
        session_send(s, "{\"type\":\"pong\"}", 15);
        break;
    }
    native_msg_dispose(&msg);
}

/*
 * The native WebSocket protocol at GET /v1/ws?user_id=U[&since=ID]: JSON text frames both ways.
 *
 *   server -> client  {"type":"hello","data":{"sid","user_id","ping_interval_ms"}}         first frame
 *                     {"type":"notification","data":{notification}}                       the user's notifications
 *                     {"type":"joined","data":{"room","username","online_users"}}         answer to join
 *                     {"type":"user_joined","data":"name"}, {"type":"user_left","data":"name"},
 *                     {"type":"online_users","data":["name",...]},
 *                     {"type":"new_message","data":{"sender","message","timestamp","room"}}
 *                     {"type":"left","data":{"room"}}, {"type":"pong"}
 *                     {"type":"error","data":{"code","message"}}                          a bad frame; the session stays
 *   client -> server  {"type":"join","username":"..","room":".."?}, {"type":"send_message","message":".."},
 *                     {"type":"leave"}, {"type":"ping"}
 */
#include <jansson.h>
#include <string.h>
#include "chat.h"
#include "gateway.h"
#include "json_out.h"
#include "session.h"

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
    json_out_lit(&o, "{\"room\":");
    json_out_str(&o, s->chat->room, strlen(s->chat->room));
    json_out_lit(&o, ",\"username\":");
    json_out_str(&o, s->chat->username, strlen(s->chat->username));
    json_out_lit(&o, ",\"online_users\":");
    chat_online_users(s, &o);
    json_out_lit(&o, "}");
    session_send_event(s, "joined", o.buf, o.len);
    json_out_dispose(&o);
}

void native_on_message(session_t *s, const char *data, size_t len)
{
    json_error_t jerr;
    const char *code, *message;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || !json_is_object(root)) {
        session_send_error(s, "invalid_json", "frames must be JSON objects with a \"type\"");
        goto Exit;
    }
    json_t *type = json_object_get(root, "type");
    const char *t = json_string_value(type);
    if (t == NULL) {
        session_send_error(s, "invalid_type", "frames must have a string \"type\"");
    } else if (strcmp(t, "join") == 0) {
        json_t *user = json_object_get(root, "username"), *room = json_object_get(root, "room");
        if (!json_is_string(user) || (room != NULL && !json_is_null(room) && !json_is_string(room))) {
            session_send_error(s, "invalid_username", "join needs a string \"username\" (and may name a string \"room\")");
        } else if (chat_join(s, json_string_value(user), json_string_length(user), json_string_value(room),
                             json_is_string(room) ? json_string_length(room) : 0, &code, &message) != 0) {
            session_send_error(s, code, message);
        } else {
            send_joined(s);
        }
    } else if (strcmp(t, "send_message") == 0) {
        json_t *msg = json_object_get(root, "message");
        if (!json_is_string(msg))
            session_send_error(s, "invalid_message", "send_message needs a string \"message\"");
        else if (chat_send_message(s, json_string_value(msg), json_string_length(msg), &code, &message) != 0)
            session_send_error(s, code, message);
    } else if (strcmp(t, "leave") == 0) {
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
    } else if (strcmp(t, "ping") == 0) {
        session_send(s, "{\"type\":\"pong\"}", 15);
    } else {
        session_send_error(s, "unknown_type", "type must be join, send_message, leave or ping");
    }
Exit:
    if (root != NULL)
        json_decref(root);
}

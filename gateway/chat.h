/*
 * Chat rooms with presence, as the seed's Socket.IO chat server has them (join, send_message, new_message,
 * user_joined, user_left, online_users), for native and Socket.IO sessions alike.
 *
 * Rooms are process-wide: a room's members may sit on any loop thread. The room registry (members, in join order) is
 * shared under a mutex; a message is rendered once per protocol and posted to each thread that has members in the
 * room, where it goes to that thread's sessions. Presence (online_users) is coalesced: at most one update per room
 * per window (50 ms, longer for big rooms), so a crowd joining does not send the member list once per join.
 * Rooms span the loop threads of one gateway process (like Socket.IO without an adapter).
 *
 * Big rooms: a room of at most presence_full_max members (--presence-full-max) behaves as the seed's chat (user_joined
 * and user_left to the others, online_users with every name). Above it, joins and leaves are not announced one by one
 * (N joins would cost N^2 frames) and every list of names (online_users, the joined answer) holds the first
 * presence_full_max members in join order plus the room's total count, so that a join, a leave and a presence update
 * cost O(presence_full_max) under the mutex and per frame, not O(members). Members are kept in a list in join order:
 * joining and leaving are O(1).
 */
#ifndef NOTIGATE_CHAT_H
#define NOTIGATE_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <h2o.h>
#include <h2o/multithread.h>
#include "json_out.h"
#include "strmap.h"
#include "valid.h"
#include "wsmsg.h"

typedef struct st_gateway_t gateway_t;
typedef struct st_gateway_thread_t gateway_thread_t;
typedef struct st_session_t session_t;
typedef struct st_chat_t chat_t;

#define CHAT_DEFAULT_ROOM WSMSG_DEFAULT_ROOM
#define CHAT_NAME_MAX WSMSG_NAME_MAX /* username: bytes of UTF-8 (wsmsg_valid_username) */

/* The part of a thread: its sessions per room, and the receiver of other threads' posts. Embedded in the thread. */
typedef struct st_chat_local_t {
    strmap_t *rooms; /* room -> chat_local_room_t */
    h2o_multithread_receiver_t receiver;
    h2o_timeout_t presence; /* thread 0 only: the presence flusher */
    h2o_timeout_entry_t presence_entry;
} chat_local_t;

/* A joined session's membership (session->chat). */
typedef struct st_chat_member_t {
    h2o_linklist_t _link; /* chat.c: in its room's members, in join order (under the chat's mutex) */
    char username[CHAT_NAME_MAX + 1];
    char room[VALID_USER_ID_MAX + 1];
} chat_member_t;

#define CHAT_PRESENCE_FULL_MAX_DEFAULT 100 /* --presence-full-max */
#define CHAT_PRESENCE_FULL_MAX_LIMIT 1000  /* its largest value: a list of names stays well under --ws-queue-max */

/* The registry; presence_full_max: rooms up to this many members get the seed's presence, bigger ones capped lists. */
chat_t *chat_create(gateway_t *gw, size_t presence_full_max);
void chat_destroy(chat_t *chat);

/* Loop thread setup and teardown (after every session left). Thread 0 also runs the presence flusher. */
void chat_local_init(gateway_thread_t *thread);
void chat_local_dispose(gateway_thread_t *thread);

/* Joins room (NULL or empty: the default) as username, leaving any room the session was in. Returns 0, or -1 with
 * *code and *message set for the client (bad username or room; the message parsers of wsmsg.h check both first).
 * The others in the room get user_joined (unless the room is then over presence_full_max), everyone gets
 * online_users soon after. */
int chat_join(session_t *s, const char *username, size_t ulen, const char *room, size_t rlen, const char **code,
              const char **message);

/* Leaves the session's room, if any: the others get user_left (unless the room was over presence_full_max) and
 * online_users. */
void chat_leave(session_t *s);

/* Sends new_message {sender, message, timestamp} to everyone in the session's room (the sender too). Returns 0, or -1
 * with *code and *message set (not joined, bad message). */
int chat_send_message(session_t *s, const char *message, size_t len, const char **code, const char **msg);

/* Appends the fields of the joiner's answer (native `joined`, Socket.IO join acknowledgement) to buf:
 * `"room":R,"username":U,"online_users":[names]`, every name in a room of at most presence_full_max members, else the
 * first presence_full_max and `,"online_count":N`. */
void chat_write_joined(session_t *s, json_out_t *buf); /* s has joined (s->chat is set) */

#endif

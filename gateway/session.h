/*
 * WebSocket sessions of the gateway: the native protocol (/v1/ws) and Socket.IO (/socket.io/), over our own WebSocket
 * connection (ws_conn.h) on the loop thread that accepted the connection. No thread or process per connection.
 *
 * A session belongs to its thread. It may name a user (it then receives that user's notifications live, from the
 * feed) and may join one chat room. Everything the session sends goes through one bounded queue: a client that does
 * not read is disconnected when the queue passes its bound, so it never grows the gateway's memory.
 *
 * Closing is deferred: a session that ends (peer closed, error, heartbeat lost, queue overflow) is marked dead at once
 * (nothing more is sent to it) and freed from a zero-delay timer, so that a broadcast walking a list of sessions never
 * sees one freed under it. All functions run on the session's loop thread.
 */
#ifndef NOTIGATE_SESSION_H
#define NOTIGATE_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <h2o.h>
#include <h2o/multithread.h>
#include "quota.h"
#include "auth.h"
#include "proto.h"
#include "strmap.h"
#include "upstream.h"
#include "valid.h"
#include "ws_conn.h"

typedef struct st_gateway_thread_t gateway_thread_t;
typedef struct st_session_t session_t;
typedef struct st_feed_batch_t feed_batch_t;

typedef enum en_session_proto_t { SESSION_NATIVE = 0, SESSION_SOCKETIO = 1 } session_proto_t;

/* WebSocket close codes used */
#define SESSION_CLOSE_NORMAL 1000
#define SESSION_CLOSE_GOING_AWAY 1001  /* the gateway stops */
#define SESSION_CLOSE_UNSUPPORTED 1003 /* binary frames */
#define SESSION_CLOSE_POLICY 1008      /* heartbeat lost, token expired (over the send queue's bound: cut, no close frame) */
#define SESSION_CLOSE_TOO_BIG 1009     /* a message over the size limit (ws_conn closes with it) */
#define SESSION_CLOSE_TRY_AGAIN 1013   /* the history needed to resume is not reachable now: reconnect with since */

#define SESSION_RESUME_BUFFER 64 /* live notifications held while a resume reads history; beyond, history is read again */

/* Per-thread state, embedded in gateway_thread_t. */
typedef struct st_sessions_t {
    strmap_t *users;     /* user id -> session_list_t: sessions that receive the user's notifications */
    h2o_linklist_t all;  /* every live session, by all_link */
    h2o_linklist_t reap; /* dead sessions to free, by reap_link */
    h2o_timeout_t zero;  /* 0 ms: runs the reaper after the current event */
    h2o_timeout_entry_t reap_entry;
    h2o_timeout_t heartbeat; /* ping interval */
    h2o_timeout_t second;    /* 1 s: closing sessions whose peer does not answer the close, resumes waiting to go on */
    h2o_timeout_entry_t second_entry;
    h2o_linklist_t closing;                   /* closing sessions (close frame queued or sent), by reap_link */
    h2o_linklist_t flush;                     /* sessions with frames queued, written after the current event */
    h2o_multithread_receiver_t feed_receiver; /* feed batches, from the feed's thread */
    uint64_t next_id;
    unsigned count;
} sessions_t;

struct st_session_t {
    gateway_thread_t *thread;
    ws_conn_t *ws;
    session_proto_t proto;
    uint64_t id;  /* unique in the process: thread index in the top 8 bits */
    char sid[24]; /* the id shown to clients (Engine.IO / Socket.IO sid, native welcome) */
    char user_id[VALID_USER_ID_MAX + 1];
    size_t user_len;     /* 0: no user, no notifications */
    bool dead;           /* closed or closing: nothing more is sent, it is freed soon */
    bool reaping;        /* on the reap list: freed after the current event */
    bool has_baseline;   /* last_sent_id says where the session is (a resync can go on from it) */
    bool greet_pending;  /* the first frame (hello, Socket.IO's CONNECT answer) waits for the baseline: see greet() */
    struct {
        bool connected; /* the client connected to the default namespace */
        struct st_session_sio_query_t {
            uint64_t since;
            bool has_since;
            size_t user_len;
            char user[VALID_USER_ID_MAX + 1];
            auth_principal_t auth; /* the upgrade's credential, if any (CONNECT's auth.token replaces it) */
        } * query; /* user_id and since from the handshake's query, used at CONNECT: allocated until connected */
    } sio;
    bool has_user_slot; /* holds one of the sessions of the user of user_slot (the limit per user, guard.c) */
    quota_key_t user_slot;
    quota_bucket_t msg_bucket; /* the messages per second the client may send */
    int64_t auth_exp; /* the session's token expires then (seconds since the epoch): closed at the next heartbeat; 0 none */
    uint64_t last_seen_us, ping_sent_us;
    uint64_t close_deadline_us;
    /* notifications */
    uint64_t last_sent_id;
    struct {
        bool active;           /* reading what the session missed from history */
        bool again;            /* live notifications were dropped meanwhile: read history once more */
        bool wait_queue;       /* paused until the send queue drains (below a quarter of its bound) */
        upstream_call_t *call; /* the SINCE call in flight */
        size_t nbuffered;      /* live notifications that came meanwhile (up to SESSION_RESUME_BUFFER) */
        struct st_session_buffered_t {
            feed_batch_t *batch;
            size_t index;
        } * buffered; /* allocated while needed: an idle session stays small */
    } resume;
    /* chat */
    struct st_chat_member_t *chat; /* NULL until joined */
    h2o_linklist_t user_link;      /* in the user's session list */
    h2o_linklist_t room_link;      /* in the room's list of this thread (chat.c) */
    h2o_linklist_t all_link;
    h2o_linklist_t reap_link;  /* in the closing list, then the reap list */
    h2o_linklist_t flush_link; /* in the flush list while it has frames to write */
    h2o_timeout_entry_t heartbeat_entry;
};

/* Sets up and tears down a thread's sessions; sessions_close_all closes every session with code (the gateway stops). */
void sessions_init(gateway_thread_t *thread);
void sessions_close_all(gateway_thread_t *thread, uint16_t code, const char *reason);
void sessions_dispose(gateway_thread_t *thread);

/* The HTTP handlers of GET /v1/ws and GET /socket.io/: validate, upgrade to WebSocket, start the session. */
int session_handle_native(gateway_thread_t *thread, h2o_req_t *req, const char *query, size_t query_len, const auth_principal_t *auth,
                          uint64_t started_us);
int session_handle_socketio(gateway_thread_t *thread, h2o_req_t *req, const char *query, size_t query_len, const auth_principal_t *auth,
                            uint64_t started_us);

/* Queues one text frame (copied). Over the queue's bound, the session is closed instead (SESSION_CLOSE_POLICY). */
void session_send(session_t *s, const char *frame, size_t len);

/* The same for a frame shared by many sessions (ws_conn.h): the session takes a reference, not a copy. */
void session_send_shared(session_t *s, ws_conn_shared_t *frame);

/* Queues an event in the session's protocol: native {"type":event,"data":payload}, Socket.IO 42[event,payload].
 * payload is JSON. */
void session_send_event(session_t *s, const char *event, const char *payload, size_t len);

/* Makes s hold one of user's sessions (the limit of sessions per user), giving back the one it held for another user.
 * Returns 0, or -1 if the user has all the sessions allowed (-2: no room to count them): s is left as it was. */
int session_claim_user(session_t *s, const char *user, size_t len);

/* Sends an error event {"code","message"} (native "error", Socket.IO "error" event). */
void session_send_error(session_t *s, const char *code, const char *message);

/* Closes with a WebSocket close frame (code, reason), queued behind the frames queued before. The session is freed once
 * the peer answers or 2 s pass. */
void session_close(session_t *s, uint16_t code, const char *reason);

/* Gives the session a user and starts its notifications: with since (resume), first what it missed from history;
 * without, from the user's newest notification in history (the baseline). With s->greet_pending set, the session's first
 * frame is sent once the baseline is known, so that whatever the client publishes after it reaches the session. */
void session_attach_user(session_t *s, const char *user, size_t len, bool resume, uint64_t since);

/* Delivers a feed batch to this thread's sessions (called for every batch the feed posts). */
void sessions_deliver(gateway_thread_t *thread, feed_batch_t *batch);

/* Makes every session with a user read what it may have missed from history (the feed lost notifications). */
void sessions_resync(gateway_thread_t *thread);

/* Protocol handlers (ws_native.c, socketio.c): a text message from the client, and the session's first frames. The
 * native hello names user (user_len 0: none), the user the session is about to get notifications for. */
void native_on_open(session_t *s, const char *user, size_t user_len);
void native_on_message(session_t *s, const char *data, size_t len);
void socketio_on_open(session_t *s);
void socketio_send_connect(session_t *s); /* the answer to the client's CONNECT: 40{"sid"} */
/* Writes n random characters of [A-Za-z0-9_-] and a NUL to buf (n <= 32): session and socket ids. */
void session_random_sid(char *buf, size_t n);
void socketio_on_message(session_t *s, const char *data, size_t len);
void socketio_ping(session_t *s);

#endif

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "chat.h"
#include "clock.h"
#include "gateway.h"
#include "json_out.h"
#include "log.h"
#include "refcount.h"
#include "session.h"

#define PRESENCE_TICK_MS 25
#define PRESENCE_WINDOW_MAX_US 10000000 /* a room's online_users at least this often while it changes */

typedef struct st_chat_room_t {
    char name[VALID_USER_ID_MAX + 1];
    h2o_linklist_t members; /* chat_member_t by _link, in join order; each session frees its own after unlinking it */
    size_t nmembers;
    unsigned *per_thread; /* members on each loop thread */
    bool dirty;           /* presence changed since the last online_users */
    uint64_t last_presence_us;
    struct st_chat_room_t *next_dirty;
} chat_room_t;

struct st_chat_t {
    gateway_t *gw;
    size_t full_max;       /* --presence-full-max */
    pthread_mutex_t mutex; /* guards everything below */
    strmap_t *rooms;       /* name -> chat_room_t */
    chat_room_t *dirty;    /* rooms whose presence is to be sent */
};

/* One message for the sessions of a room on one thread; the frames are shared by the threads and the sessions (each
 * session's queue holds a reference, not a copy: a message to 10,000 members is one copy of its bytes per protocol). */
typedef struct st_chat_event_t {
    refcount_t refs;
    char room[VALID_USER_ID_MAX + 1];
    uint64_t exclude; /* a session that does not get it (the one that joined or left), or 0 */
    ws_conn_shared_t *native, *sio;
} chat_event_t;

typedef struct st_chat_delivery_t {
    h2o_multithread_message_t msg;
    chat_event_t *event;
} chat_delivery_t;

typedef struct st_chat_local_room_t {
    h2o_linklist_t sessions; /* session_t by room_link */
} chat_local_room_t;

static chat_t *the_chat(gateway_thread_t *thread)
{
    return thread->gw->chat;
}

/* ---- events ----------------------------------------------------------------------------------------------------- */

/* The event NAME with PAYLOAD (JSON); count (a JSON number, or NULL) is the total that goes with a capped list. */
static chat_event_t *event_new(const char *room, uint64_t exclude, const char *name, const char *payload, size_t len,
                               const char *count)
{
    size_t nlen = strlen(name), clen = count != NULL ? strlen(count) : 0;
    /* native {"type":"NAME","data":PAYLOAD[,"count":COUNT]}; Socket.IO 42["NAME",PAYLOAD[,COUNT]] */
    size_t native_len = 9 + nlen + 9 + len + (count != NULL ? 9 + clen : 0) + 1,
           sio_len = 4 + nlen + 2 + len + (count != NULL ? 1 + clen : 0) + 1;
    chat_event_t *ev = malloc(sizeof(*ev));
    if (ev == NULL)
        abort();
    refcount_init(&ev->refs, 1);
    snprintf(ev->room, sizeof(ev->room), "%s", room);
    ev->exclude = exclude;
    char *p;
    ev->native = ws_conn_shared_text(native_len, &p);
    memcpy(p, "{\"type\":\"", 9), p += 9;
    memcpy(p, name, nlen), p += nlen;
    memcpy(p, "\",\"data\":", 9), p += 9;
    memcpy(p, payload, len), p += len;
    if (count != NULL) {
        memcpy(p, ",\"count\":", 9), p += 9;
        memcpy(p, count, clen), p += clen;
    }
    *p++ = '}';
    ev->sio = ws_conn_shared_text(sio_len, &p);
    memcpy(p, "42[\"", 4), p += 4;
    memcpy(p, name, nlen), p += nlen;
    memcpy(p, "\",", 2), p += 2;
    memcpy(p, payload, len), p += len;
    if (count != NULL) {
        *p++ = ',';
        memcpy(p, count, clen), p += clen;
    }
    *p++ = ']';
    return ev;
}

static void event_release(chat_event_t *ev)
{
    if (refcount_release(&ev->refs)) {
        ws_conn_shared_release(ev->native);
        ws_conn_shared_release(ev->sio);
        free(ev);
    }
}

/* On the receiving thread: hands ev to its local sessions of the room. */
static void deliver(gateway_thread_t *thread, chat_event_t *ev)
{
    chat_local_room_t *lr = strmap_get(thread->chat.rooms, ev->room, strlen(ev->room));
    if (lr == NULL)
        return;
    for (h2o_linklist_t *l = lr->sessions.next; l != &lr->sessions; l = l->next) {
        session_t *s = H2O_STRUCT_FROM_MEMBER(session_t, room_link, l);
        if (s->dead || s->id == ev->exclude)
            continue;
        session_send_shared(s, s->proto == SESSION_SOCKETIO ? ev->sio : ev->native);
    }
}

static void on_delivery(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    gateway_thread_t *thread = H2O_STRUCT_FROM_MEMBER(gateway_thread_t, chat.receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        chat_delivery_t *d = H2O_STRUCT_FROM_MEMBER(chat_delivery_t, msg.link, messages->next);
        h2o_linklist_unlink(&d->msg.link);
        deliver(thread, d->event);
        event_release(d->event);
        free(d);
    }
}

/* Sends ev to the threads that have members of the room (given as a snapshot of per_thread); takes the caller's ref. */
static void post(gateway_thread_t *from, chat_event_t *ev, const unsigned *per_thread)
{
    gateway_t *gw = from->gw;
    for (unsigned t = 0; t < gw->nthreads; ++t) {
        if (per_thread[t] == 0)
            continue;
        if (t == from->index) {
            deliver(from, ev); /* own thread: at once, in order with what the session does next */
            continue;
        }
        chat_delivery_t *d = malloc(sizeof(*d));
        if (d == NULL)
            abort();
        refcount_retain(&ev->refs);
        *d = (chat_delivery_t){.event = ev};
        h2o_multithread_send_message(&gw->threads[t].chat.receiver, &d->msg);
    }
    event_release(ev);
}

/* ---- the registry ----------------------------------------------------------------------------------------------- */

static void mark_dirty(chat_t *chat, chat_room_t *room)
{
    if (!room->dirty) {
        room->dirty = true;
        room->next_dirty = chat->dirty;
        chat->dirty = room;
    }
}

static chat_room_t *room_get(chat_t *chat, const char *name, size_t len, bool create)
{
    chat_room_t *room = strmap_get(chat->rooms, name, len);
    if (room == NULL && create) {
        if ((room = calloc(1, sizeof(*room))) == NULL || (room->per_thread = calloc(chat->gw->nthreads, sizeof(unsigned))) == NULL)
            abort();
        memcpy(room->name, name, len);
        h2o_linklist_init_anchor(&room->members);
        strmap_set(chat->rooms, room->name, len, room);
    }
    return room;
}

static void room_free(chat_t *chat, chat_room_t *room)
{
    strmap_remove(chat->rooms, room->name, strlen(room->name));
    free(room->per_thread);
    free(room);
}

chat_t *chat_create(gateway_t *gw, size_t presence_full_max)
{
    chat_t *chat = calloc(1, sizeof(*chat));
    if (chat == NULL)
        abort();
    chat->gw = gw;
    chat->full_max = presence_full_max;
    pthread_mutex_init(&chat->mutex, NULL);
    chat->rooms = strmap_create();
    return chat;
}

static void free_room_cb(const char *key, size_t len, void *value, void *data)
{
    chat_room_t *room = value;
    free(room->per_thread);
    free(room);
}

void chat_destroy(chat_t *chat)
{
    strmap_foreach(chat->rooms, free_room_cb, NULL);
    strmap_destroy(chat->rooms);
    pthread_mutex_destroy(&chat->mutex);
    free(chat);
}

/* ---- presence --------------------------------------------------------------------------------------------------- */

/* True if the room is over --presence-full-max: no user_joined / user_left, capped lists with a count. */
static bool room_is_big(const chat_t *chat, size_t nmembers)
{
    return nmembers > chat->full_max;
}

/* The first (in join order) --presence-full-max members' names as a JSON array, under the mutex: O(full_max) however
 * big the room. Returns true if some were left out. */
static bool write_names(const chat_t *chat, const chat_room_t *room, json_out_t *buf)
{
    size_t n = 0;
    json_out_lit(buf, "[");
    for (const h2o_linklist_t *l = room->members.next; l != &room->members && n < chat->full_max; l = l->next, ++n) {
        const chat_member_t *m = H2O_STRUCT_FROM_MEMBER(chat_member_t, _link, l);
        if (n != 0)
            json_out_lit(buf, ",");
        json_out_str(buf, m->username, strlen(m->username));
    }
    json_out_lit(buf, "]");
    return n < room->nmembers;
}

/* Thread 0, every tick: one online_users per dirty room whose window has passed. */
static void on_presence_tick(h2o_timeout_entry_t *entry)
{
    gateway_thread_t *thread = H2O_STRUCT_FROM_MEMBER(gateway_thread_t, chat.presence_entry, entry);
    chat_t *chat = the_chat(thread);
    uint64_t now = clock_mono_us();
    json_out_t buf = {NULL};

    pthread_mutex_lock(&chat->mutex);
    chat_room_t **link = &chat->dirty;
    while (*link != NULL) {
        chat_room_t *room = *link;
        /* an update costs a frame per member (about 20 us of kernel time each here): a window growing with the room
         * keeps its cost near a tenth of a core whatever the size, up to 50,000 members */
        uint64_t window_us = (50 + room->nmembers / 5) * 1000;
        if (window_us > PRESENCE_WINDOW_MAX_US)
            window_us = PRESENCE_WINDOW_MAX_US;
        if (now - room->last_presence_us < window_us) {
            link = &room->next_dirty;
            continue;
        }
        *link = room->next_dirty;
        room->dirty = false;
        room->last_presence_us = now;
        if (room->nmembers == 0) {
            room_free(chat, room);
            continue;
        }
        json_out_reset(&buf);
        char count[24];
        bool capped = write_names(chat, room, &buf);
        snprintf(count, sizeof(count), "%zu", room->nmembers);
        chat_event_t *ev = event_new(room->name, 0, "online_users", buf.buf, buf.len, capped ? count : NULL);
        unsigned per_thread[256];
        memcpy(per_thread, room->per_thread, thread->gw->nthreads * sizeof(unsigned));
        pthread_mutex_unlock(&chat->mutex);
        post(thread, ev, per_thread); /* outside the lock: own-thread delivery sends */
        pthread_mutex_lock(&chat->mutex);
        link = &chat->dirty; /* the list may have changed meanwhile */
    }
    pthread_mutex_unlock(&chat->mutex);
    json_out_dispose(&buf);
    h2o_timeout_link(thread->loop, &thread->chat.presence, &thread->chat.presence_entry);
}

/* ---- per thread ------------------------------------------------------------------------------------------------- */

void chat_local_init(gateway_thread_t *thread)
{
    thread->chat.rooms = strmap_create();
    h2o_multithread_register_receiver(thread->ctx.queue, &thread->chat.receiver, on_delivery);
    if (thread->index == 0) {
        h2o_timeout_init(thread->loop, &thread->chat.presence, PRESENCE_TICK_MS);
        thread->chat.presence_entry.cb = on_presence_tick;
        h2o_timeout_link(thread->loop, &thread->chat.presence, &thread->chat.presence_entry);
    }
}

static void free_local_room(const char *key, size_t len, void *value, void *data)
{
    free(value);
}

void chat_local_dispose(gateway_thread_t *thread)
{
    if (thread->index == 0) {
        h2o_timeout_unlink(&thread->chat.presence_entry);
        h2o_timeout_dispose(thread->loop, &thread->chat.presence);
    }
    /* posts from other threads that are still queued: deliver (to nobody) and free them */
    while (!h2o_linklist_is_empty(&thread->chat.receiver._messages))
        h2o_evloop_run(thread->loop, 0);
    h2o_multithread_unregister_receiver(thread->ctx.queue, &thread->chat.receiver);
    strmap_foreach(thread->chat.rooms, free_local_room, NULL);
    strmap_destroy(thread->chat.rooms);
}

/* ---- join, leave, send ------------------------------------------------------------------------------------------ */

int chat_join(session_t *s, const char *username, size_t ulen, const char *room_name, size_t rlen, const char **code,
              const char **message)
{
    gateway_thread_t *thread = s->thread;
    chat_t *chat = the_chat(thread);
    if (!wsmsg_valid_username(username, ulen)) { /* the callers checked already (wsmsg.c): keep it true here */
        *code = "invalid_username", *message = "username must be 1-64 bytes of UTF-8 without control characters";
        return -1;
    }
    if (room_name == NULL || rlen == 0)
        room_name = CHAT_DEFAULT_ROOM, rlen = strlen(CHAT_DEFAULT_ROOM);
    if (!valid_user_id(room_name, rlen)) {
        *code = "invalid_room", *message = "room must be 1-64 characters of A-Z a-z 0-9 _ . -";
        return -1;
    }
    if (s->chat != NULL)
        chat_leave(s);

    chat_member_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        abort();
    memcpy(m->username, username, ulen);
    memcpy(m->room, room_name, rlen);
    s->chat = m;

    chat_local_room_t *lr = strmap_get(thread->chat.rooms, room_name, rlen);
    if (lr == NULL) {
        if ((lr = malloc(sizeof(*lr))) == NULL)
            abort();
        h2o_linklist_init_anchor(&lr->sessions);
        strmap_set(thread->chat.rooms, room_name, rlen, lr);
    }
    h2o_linklist_insert(&lr->sessions, &s->room_link);

    unsigned per_thread[256];
    pthread_mutex_lock(&chat->mutex);
    chat_room_t *room = room_get(chat, room_name, rlen, true);
    h2o_linklist_insert(&room->members, &m->_link);
    ++room->nmembers;
    ++room->per_thread[thread->index];
    mark_dirty(chat, room);
    bool announce = !room_is_big(chat, room->nmembers);
    if (announce)
        memcpy(per_thread, room->per_thread, thread->gw->nthreads * sizeof(unsigned));
    pthread_mutex_unlock(&chat->mutex);

    if (announce) {
        json_out_t name = {NULL};
        json_out_str(&name, m->username, ulen);
        post(thread, event_new(m->room, s->id, "user_joined", name.buf, name.len, NULL), per_thread);
        json_out_dispose(&name);
    }
    return 0;
}

void chat_leave(session_t *s)
{
    gateway_thread_t *thread = s->thread;
    chat_t *chat = the_chat(thread);
    chat_member_t *m = s->chat;
    if (m == NULL)
        return;
    s->chat = NULL;
    size_t rlen = strlen(m->room);

    h2o_linklist_unlink(&s->room_link);
    chat_local_room_t *lr = strmap_get(thread->chat.rooms, m->room, rlen);
    if (lr != NULL && h2o_linklist_is_empty(&lr->sessions)) {
        strmap_remove(thread->chat.rooms, m->room, rlen);
        free(lr);
    }

    unsigned per_thread[256];
    bool announce = false;
    pthread_mutex_lock(&chat->mutex);
    chat_room_t *room = room_get(chat, m->room, rlen, false); /* there while it has members: m is one */
    if (room != NULL) {
        announce = !room_is_big(chat, room->nmembers); /* counting the one who leaves, as its join did */
        h2o_linklist_unlink(&m->_link);
        --room->nmembers;
        --room->per_thread[thread->index];
        mark_dirty(chat, room);
        if (announce)
            memcpy(per_thread, room->per_thread, thread->gw->nthreads * sizeof(unsigned));
    }
    pthread_mutex_unlock(&chat->mutex);

    if (announce) {
        json_out_t name = {NULL};
        json_out_str(&name, m->username, strlen(m->username));
        post(thread, event_new(m->room, s->id, "user_left", name.buf, name.len, NULL), per_thread);
        json_out_dispose(&name);
    }
    free(m); /* unlinked under the mutex: no other thread reads it any more */
}

int chat_send_message(session_t *s, const char *message, size_t len, const char **code, const char **msg)
{
    gateway_thread_t *thread = s->thread;
    chat_t *chat = the_chat(thread);
    chat_member_t *m = s->chat;
    if (m == NULL) {
        *code = "not_joined", *msg = "join a room before sending messages";
        return -1;
    }
    if (!valid_message(message, len)) {
        *code = "invalid_message", *msg = "message must be 1-4096 bytes of UTF-8";
        return -1;
    }
    char ts[64];
    clock_iso8601(ts, sizeof(ts), clock_wall_ms());
    json_out_t payload = {NULL};
    json_out_lit(&payload, "{\"sender\":");
    json_out_str(&payload, m->username, strlen(m->username));
    json_out_lit(&payload, ",\"message\":");
    json_out_str(&payload, message, len);
    json_out_lit(&payload, ",\"timestamp\":\"");
    json_out_cstr(&payload, ts);
    json_out_lit(&payload, "\",\"room\":");
    json_out_str(&payload, m->room, strlen(m->room));
    json_out_lit(&payload, "}");

    unsigned per_thread[256];
    pthread_mutex_lock(&chat->mutex);
    chat_room_t *room = room_get(chat, m->room, strlen(m->room), false);
    if (room != NULL)
        memcpy(per_thread, room->per_thread, thread->gw->nthreads * sizeof(unsigned));
    pthread_mutex_unlock(&chat->mutex);
    if (room != NULL)
        post(thread, event_new(m->room, 0, "new_message", payload.buf, payload.len, NULL), per_thread);
    json_out_dispose(&payload);
    return 0;
}

void chat_write_joined(session_t *s, json_out_t *buf)
{
    chat_t *chat = the_chat(s->thread);
    size_t total = 0;
    bool capped = false;
    json_out_lit(buf, "\"room\":");
    json_out_str(buf, s->chat->room, strlen(s->chat->room));
    json_out_lit(buf, ",\"username\":");
    json_out_str(buf, s->chat->username, strlen(s->chat->username));
    json_out_lit(buf, ",\"online_users\":");
    pthread_mutex_lock(&chat->mutex);
    chat_room_t *room = room_get(chat, s->chat->room, strlen(s->chat->room), false);
    if (room != NULL) {
        capped = write_names(chat, room, buf);
        total = room->nmembers;
    } else {
        json_out_lit(buf, "[]");
    }
    pthread_mutex_unlock(&chat->mutex);
    if (capped) {
        json_out_lit(buf, ",\"online_count\":");
        json_out_u64(buf, total);
    }
}

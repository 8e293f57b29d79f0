#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include "chat.h"
#include "clock.h"
#include "feed.h"
#include "gateway.h"
#include "http_parse.h"
#include "log.h"
#include "session.h"

#define CLOSE_GRACE_US 2000000 /* a peer that does not answer our close frame within it is cut off */
#define RESUME_PAGE 100

typedef struct st_session_list_t {
    h2o_linklist_t sessions; /* session_t by user_link */
} session_list_t;

static void on_zero(h2o_timeout_entry_t *entry);
static void on_second(h2o_timeout_entry_t *entry);
static void on_feed(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);
static void resume_next(session_t *s);

static const gateway_config_t *cfg_of(session_t *s)
{
    return &s->thread->gw->cfg;
}

/* ---- per thread ------------------------------------------------------------------------------------------------- */

void sessions_init(gateway_thread_t *thread)
{
    sessions_t *ss = &thread->sessions;
    ss->users = strmap_create();
    h2o_linklist_init_anchor(&ss->all);
    h2o_linklist_init_anchor(&ss->reap);
    h2o_linklist_init_anchor(&ss->closing);
    h2o_linklist_init_anchor(&ss->flush);
    h2o_timeout_init(thread->loop, &ss->zero, 0);
    ss->reap_entry.cb = on_zero;
    h2o_timeout_init(thread->loop, &ss->heartbeat, (uint64_t)thread->gw->cfg.ws_ping_interval_ms);
    h2o_timeout_init(thread->loop, &ss->second, 1000);
    ss->second_entry.cb = on_second;
    h2o_timeout_link(thread->loop, &ss->second, &ss->second_entry);
    h2o_multithread_register_receiver(thread->ctx.queue, &ss->feed_receiver, on_feed);
}

static void schedule_zero(gateway_thread_t *thread)
{
    if (!h2o_timeout_is_linked(&thread->sessions.reap_entry))
        h2o_timeout_link(thread->loop, &thread->sessions.zero, &thread->sessions.reap_entry);
}

/* Marks s dead and has it freed after the current event. */
static void session_kill(session_t *s)
{
    if (s->reaping)
        return;
    s->dead = s->reaping = true;
    if (h2o_linklist_is_linked(&s->reap_link))
        h2o_linklist_unlink(&s->reap_link); /* from the closing list */
    h2o_linklist_insert(&s->thread->sessions.reap, &s->reap_link);
    schedule_zero(s->thread);
}

static void session_free(session_t *s)
{
    gateway_thread_t *thread = s->thread;
    if (s->chat != NULL)
        chat_leave(s);
    if (s->user_len != 0) {
        h2o_linklist_unlink(&s->user_link);
        session_list_t *list = strmap_get(thread->sessions.users, s->user_id, s->user_len);
        if (list != NULL && h2o_linklist_is_empty(&list->sessions)) {
            strmap_remove(thread->sessions.users, s->user_id, s->user_len);
            free(list);
        }
    }
    if (s->resume.call != NULL)
        upstream_call_cancel(s->resume.call);
    for (size_t i = 0; i < s->resume.nbuffered; ++i)
        feed_batch_release(s->resume.buffered[i].batch);
    free(s->resume.buffered);
    if (h2o_timeout_is_linked(&s->heartbeat_entry))
        h2o_timeout_unlink(&s->heartbeat_entry);
    if (h2o_linklist_is_linked(&s->flush_link))
        h2o_linklist_unlink(&s->flush_link);
    if (s->has_user_slot)
        guard_session_release(&thread->gw->guard, &s->user_slot);
    h2o_linklist_unlink(&s->all_link);
    free(s->sio.query);
    ws_conn_free(s->ws);
    --thread->sessions.count;
    free(s);
}

/* After the current event: write what sessions queued, then free dead sessions. */
static void on_zero(h2o_timeout_entry_t *entry)
{
    gateway_thread_t *thread = H2O_STRUCT_FROM_MEMBER(gateway_thread_t, sessions.reap_entry, entry);
    sessions_t *ss = &thread->sessions;
    while (!h2o_linklist_is_empty(&ss->flush)) {
        session_t *s = H2O_STRUCT_FROM_MEMBER(session_t, flush_link, ss->flush.next);
        h2o_linklist_unlink(&s->flush_link);
        if (!s->reaping)
            ws_conn_flush(s->ws);
    }
    while (!h2o_linklist_is_empty(&ss->reap)) {
        session_t *s = H2O_STRUCT_FROM_MEMBER(session_t, reap_link, ss->reap.next);
        h2o_linklist_unlink(&s->reap_link);
        session_free(s);
    }
}

static void on_second(h2o_timeout_entry_t *entry)
{
    gateway_thread_t *thread = H2O_STRUCT_FROM_MEMBER(gateway_thread_t, sessions.second_entry, entry);
    uint64_t now = clock_mono_us();
    for (h2o_linklist_t *l = thread->sessions.closing.next, *next; l != &thread->sessions.closing; l = next) {
        next = l->next;
        session_t *s = H2O_STRUCT_FROM_MEMBER(session_t, reap_link, l);
        if (now >= s->close_deadline_us)
            session_kill(s);
    }
    for (h2o_linklist_t *l = thread->sessions.all.next; l != &thread->sessions.all; l = l->next) {
        session_t *s = H2O_STRUCT_FROM_MEMBER(session_t, all_link, l);
        if (s->resume.wait_queue && !s->dead &&
            ws_conn_queued(s->ws) < (size_t)thread->gw->cfg.ws_queue_max / 4) {
            s->resume.wait_queue = false;
            resume_next(s);
        }
    }
    if (thread->index == 0)
        guard_sweep(&thread->gw->guard); /* refilled rate buckets */
    h2o_timeout_link(thread->loop, &thread->sessions.second, &thread->sessions.second_entry);
}

void sessions_close_all(gateway_thread_t *thread, uint16_t code, const char *reason)
{
    for (h2o_linklist_t *l = thread->sessions.all.next; l != &thread->sessions.all; l = l->next) {
        session_t *s = H2O_STRUCT_FROM_MEMBER(session_t, all_link, l);
        if (!s->dead)
            session_close(s, code, reason);
    }
}

void sessions_dispose(gateway_thread_t *thread)
{
    sessions_t *ss = &thread->sessions;
    while (!h2o_linklist_is_empty(&ss->all))
        session_kill(H2O_STRUCT_FROM_MEMBER(session_t, all_link, ss->all.next)), on_zero(&ss->reap_entry);
    if (h2o_timeout_is_linked(&ss->reap_entry))
        h2o_timeout_unlink(&ss->reap_entry);
    h2o_timeout_unlink(&ss->second_entry);
    h2o_timeout_dispose(thread->loop, &ss->zero);
    h2o_timeout_dispose(thread->loop, &ss->heartbeat);
    h2o_timeout_dispose(thread->loop, &ss->second);
    while (!h2o_linklist_is_empty(&ss->feed_receiver._messages))
        h2o_evloop_run(thread->loop, 0);
    h2o_multithread_unregister_receiver(thread->ctx.queue, &ss->feed_receiver);
    strmap_destroy(ss->users);
}

/* ---- sending ---------------------------------------------------------------------------------------------------- */

static void schedule_flush(session_t *s)
{
    if (!h2o_linklist_is_linked(&s->flush_link)) {
        h2o_linklist_insert(&s->thread->sessions.flush, &s->flush_link);
        schedule_zero(s->thread);
    }
}

/* True if len more bytes fit in s's queue; else s is cut off. */
static bool queue_room(session_t *s, size_t len)
{
    if (s->dead)
        return false;
    size_t queued = ws_conn_queued(s->ws);
    if (queued + len > (size_t)cfg_of(s)->ws_queue_max) {
        log_info("session closed: send queue full (the client does not read)", "sid=%s queued=%zu", s->sid, queued);
        /* the close frame would wait behind what the client does not read: cut it off */
        session_kill(s);
        return false;
    }
    return true;
}

void session_send(session_t *s, const char *frame, size_t len)
{
    if (!queue_room(s, len))
        return;
    if (ws_conn_send_text(s->ws, frame, len) != 0)
        return; /* the connection is closing: it reports when it is closed */
    schedule_flush(s);
}

void session_send_shared(session_t *s, ws_conn_shared_t *frame)
{
    if (!queue_room(s, ws_conn_shared_size(frame)))
        return;
    if (ws_conn_send_shared(s->ws, frame) != 0)
        return;
    schedule_flush(s);
}

static void greet(session_t *s);

void session_send_event(session_t *s, const char *event, const char *payload, size_t len)
{
    if (s->greet_pending)
        greet(s); /* the client sent something before its first frame went out: that frame comes first anyway */
    json_out_t *o = &s->thread->ws_out;
    json_out_reset(o);
    if (s->proto == SESSION_SOCKETIO) {
        json_out_lit(o, "42[");
        json_out_str(o, event, strlen(event));
        json_out_lit(o, ",");
    } else {
        json_out_lit(o, "{\"type\":");
        json_out_str(o, event, strlen(event));
        json_out_lit(o, ",\"data\":");
    }
    json_out_raw(o, payload, len);
    json_out_cstr(o, s->proto == SESSION_SOCKETIO ? "]" : "}");
    session_send(s, o->buf, o->len);
}

void session_send_error(session_t *s, const char *code, const char *message)
{
    json_out_t payload = {NULL};
    json_out_lit(&payload, "{\"code\":");
    json_out_str(&payload, code, strlen(code));
    json_out_lit(&payload, ",\"message\":");
    json_out_str(&payload, message, strlen(message));
    json_out_lit(&payload, "}");
    session_send_event(s, "error", payload.buf, payload.len);
    json_out_dispose(&payload);
}

/* Marks s dead and gives its peer CLOSE_GRACE_US to finish the close handshake before it is cut off. */
static void session_closing(session_t *s)
{
    s->dead = true;
    s->close_deadline_us = clock_mono_us() + CLOSE_GRACE_US;
    h2o_linklist_insert(&s->thread->sessions.closing, &s->reap_link);
}

void session_close(session_t *s, uint16_t code, const char *reason)
{
    if (s->dead)
        return;
    session_closing(s);
    ws_conn_close(s->ws, code, reason); /* behind what is queued */
    schedule_flush(s);
}

/* ---- heartbeat -------------------------------------------------------------------------------------------------- */

static void on_heartbeat(h2o_timeout_entry_t *entry)
{
    session_t *s = H2O_STRUCT_FROM_MEMBER(session_t, heartbeat_entry, entry);
    const gateway_config_t *cfg = cfg_of(s);
    uint64_t now = clock_mono_us();
    if (s->dead)
        return;
    if (s->auth_exp != 0 && (int64_t)time(NULL) >= s->auth_exp) {
        log_info("session closed: its token expired", "sid=%s user=%s", s->sid, s->user_id);
        session_send_error(s, "token_expired", "the token has expired: reconnect with a new one (and since)");
        session_close(s, SESSION_CLOSE_POLICY, "token expired");
        return;
    }
    if (now - s->last_seen_us > (uint64_t)(cfg->ws_ping_interval_ms + cfg->ws_ping_timeout_ms) * 1000) {
        log_info("session closed: no answer to pings", "sid=%s", s->sid);
        session_close(s, SESSION_CLOSE_POLICY, "heartbeat timeout");
        return;
    }
    if (s->proto == SESSION_SOCKETIO) {
        socketio_ping(s);
    } else {
        if (ws_conn_ping(s->ws) == 0)
            schedule_flush(s);
    }
    s->ping_sent_us = now;
    h2o_timeout_link(s->thread->loop, &s->thread->sessions.heartbeat, &s->heartbeat_entry);
}

/* ---- receiving -------------------------------------------------------------------------------------------------- */

static void on_ws_event(ws_conn_t *conn, ws_conn_event_t event, const char *data, size_t len)
{
    session_t *s = conn->data;
    switch (event) {
    case WS_CONN_CLOSED:
        session_kill(s); /* freed after the current event (never from inside the connection's callback) */
        return;
    case WS_CONN_CLOSING:
        /* the peer closed (echoed), or broke the protocol (a close frame with the reason is queued) */
        if (conn->close_code != SESSION_CLOSE_NORMAL && conn->close_code != SESSION_CLOSE_GOING_AWAY &&
            conn->close_code != WS_CLOSE_NO_STATUS)
            log_info("session closing: peer closed or broke the protocol", "sid=%s code=%u reason=\"%.*s\"", s->sid,
                     (unsigned)conn->close_code, (int)(len > 123 ? 123 : len), data != NULL ? data : "");
        if (!s->dead)
            session_closing(s);
        schedule_flush(s);
        return;
    default:
        break;
    }
    s->last_seen_us = clock_mono_us(); /* any frame counts for the heartbeat */
    if (s->dead)
        return;
    switch (event) {
    case WS_CONN_TEXT:
        if (!guard_message_take(&s->thread->gw->guard, &s->msg_bucket)) {
            session_send_error(s, "rate_limited", "too many messages: this one was dropped; slow down");
            break;
        }
        if (s->proto == SESSION_SOCKETIO)
            socketio_on_message(s, data, len);
        else
            native_on_message(s, data, len);
        break;
    case WS_CONN_BINARY:
        session_close(s, SESSION_CLOSE_UNSUPPORTED, "binary frames are not supported: send JSON text frames");
        break;
    default:
        break; /* ping (answered), pong */
    }
}

/* ---- notifications ---------------------------------------------------------------------------------------------- */

static void send_notification_frame(session_t *s, const feed_item_t *it)
{
    if (s->proto == SESSION_SOCKETIO)
        session_send(s, it->sio, it->sio_len);
    else
        session_send(s, it->native, it->native_len);
    s->last_sent_id = it->id;
}

/* The resume is over: what the feed brought meanwhile goes out (what history did not), and the session is live. */
static void resume_finish(session_t *s)
{
    for (size_t i = 0; i < s->resume.nbuffered; ++i) {
        const feed_item_t *it = &s->resume.buffered[i].batch->items[s->resume.buffered[i].index];
        if (it->id > s->last_sent_id)
            send_notification_frame(s, it);
        feed_batch_release(s->resume.buffered[i].batch);
    }
    free(s->resume.buffered);
    s->resume.buffered = NULL;
    s->resume.nbuffered = 0;
    s->resume.active = false;
}

static void on_resume_reply(upstream_result_t *res, void *data)
{
    session_t *s = data;
    s->resume.call = NULL;
    const proto_reply_t *rep = res->outcome == UPSTREAM_OK && res->rep.status == PROTO_ST_OK ? &res->rep : NULL;
    if (rep == NULL) {
        log_warn("session resume failed: history unreachable", "sid=%s outcome=%s", s->sid, upstream_outcome_name(res->outcome));
        upstream_result_dispose(res);
        session_send_error(s, "resume_failed", "history is unreachable now; reconnect with since=<the last id you got>");
        session_close(s, SESSION_CLOSE_TRY_AGAIN, "history unreachable");
        return;
    }
    json_out_t *one = &s->thread->ws_one, *frame = &s->thread->ws_out;
    size_t half = (size_t)cfg_of(s)->ws_queue_max / 2;
    bool paced = false;
    for (size_t i = 0; i < rep->nitems && !s->dead; ++i) {
        const proto_notification_t *it = rep->items + i;
        if (it->id <= s->last_sent_id)
            continue;
        json_out_reset(one);
        json_out_notification(one, it);
        json_out_reset(frame);
        feed_write_frame(frame, s->proto == SESSION_SOCKETIO, one->buf, one->len);
        /* a page can be bigger than the queue's bound (100 large notifications): queued at once it would cut off the
         * session, and the client's next resume would fail the same way. The rest waits until the client has read. */
        size_t queued = ws_conn_queued(s->ws);
        if (queued != 0 && queued + frame->len > half) {
            paced = true;
            break;
        }
        session_send(s, frame->buf, frame->len);
        s->last_sent_id = it->id;
    }
    bool more = rep->has_more;
    upstream_result_dispose(res);
    if (s->dead)
        return;
    if (paced) {
        s->resume.wait_queue = true; /* on_second reads on from last_sent_id once the queue has drained */
    } else if (more || s->resume.again) {
        s->resume.again = false;
        resume_next(s);
    } else {
        resume_finish(s);
    }
}

/* Reads the next page of what the session missed (ids above last_sent_id), unless its queue should drain first. */
static void resume_next(session_t *s)
{
    if (ws_conn_queued(s->ws) >= (size_t)cfg_of(s)->ws_queue_max / 2) {
        s->resume.wait_queue = true; /* on_second goes on once the client has read */
        return;
    }
    proto_request_t req = {
        .op = PROTO_OP_SINCE, .user_id = {s->user_id, s->user_len}, .after = s->last_sent_id, .limit = RESUME_PAGE};
    upstream_outcome_t outcome;
    gateway_new_rid(s->thread->gw, req.rid);
    s->resume.call =
        upstream_call(s->thread->history, &req, (uint32_t)cfg_of(s)->write_timeout_ms, true, on_resume_reply, s, &outcome);
    if (s->resume.call == NULL) {
        upstream_result_t res = {.outcome = outcome};
        on_resume_reply(&res, s);
    }
}

/* The session's first frame, held back while a session without since learns where it starts: a notification the client
 * causes once it has this frame (it publishes, or places an order) then has an id above the baseline and reaches the
 * session. Sent at once, the frame would let such a notification into history before the baseline was read, and the
 * session would take it for one published before it connected. */
static void greet(session_t *s)
{
    if (!s->greet_pending)
        return;
    s->greet_pending = false;
    if (s->proto == SESSION_SOCKETIO)
        socketio_send_connect(s);
    else
        native_on_open(s, s->user_id, s->user_len);
}

/* A session without since starts from the newest notification the user has now. */
static void on_baseline_reply(upstream_result_t *res, void *data)
{
    session_t *s = data;
    s->resume.call = NULL;
    if (res->outcome == UPSTREAM_OK && res->rep.status == PROTO_ST_OK) {
        s->last_sent_id = res->rep.nitems != 0 ? res->rep.items[0].id : 0;
        s->has_baseline = true;
    } else {
        log_warn("session starts without a baseline: history unreachable", "sid=%s", s->sid);
    }
    upstream_result_dispose(res);
    greet(s);
    if (s->resume.again && s->has_baseline) {
        s->resume.again = false;
        resume_next(s);
    } else {
        resume_finish(s);
    }
}

void session_attach_user(session_t *s, const char *user, size_t len, bool resume, uint64_t since)
{
    sessions_t *ss = &s->thread->sessions;
    memcpy(s->user_id, user, len);
    s->user_id[len] = '\0';
    s->user_len = len;
    session_list_t *list = strmap_get(ss->users, user, len);
    if (list == NULL) {
        if ((list = malloc(sizeof(*list))) == NULL)
            abort();
        h2o_linklist_init_anchor(&list->sessions);
        strmap_set(ss->users, s->user_id, len, list);
    }
    h2o_linklist_insert(&list->sessions, &s->user_link);

    s->resume.active = true; /* live notifications wait until we know where the session starts */
    if (resume) {
        s->last_sent_id = since;
        s->has_baseline = true;
        resume_next(s);
        return;
    }
    proto_request_t req = {.op = PROTO_OP_PAGE, .user_id = {s->user_id, len}, .limit = 1};
    upstream_outcome_t outcome;
    gateway_new_rid(s->thread->gw, req.rid);
    s->resume.call =
        upstream_call(s->thread->history, &req, (uint32_t)cfg_of(s)->read_timeout_ms, true, on_baseline_reply, s, &outcome);
    if (s->resume.call == NULL) {
        upstream_result_t res = {.outcome = outcome};
        on_baseline_reply(&res, s);
    }
}

void sessions_deliver(gateway_thread_t *thread, feed_batch_t *batch)
{
    for (size_t i = 0; i < batch->n; ++i) {
        const feed_item_t *it = batch->items + i;
        session_list_t *list = strmap_get(thread->sessions.users, it->user, it->user_len);
        if (list == NULL)
            continue;
        for (h2o_linklist_t *l = list->sessions.next; l != &list->sessions; l = l->next) {
            session_t *s = H2O_STRUCT_FROM_MEMBER(session_t, user_link, l);
            if (s->dead)
                continue;
            if (s->resume.active) {
                if (s->resume.buffered == NULL &&
                    (s->resume.buffered = malloc(SESSION_RESUME_BUFFER * sizeof(*s->resume.buffered))) == NULL)
                    abort();
                if (s->resume.nbuffered < SESSION_RESUME_BUFFER) {
                    feed_batch_retain(batch);
                    s->resume.buffered[s->resume.nbuffered].batch = batch;
                    s->resume.buffered[s->resume.nbuffered++].index = i;
                } else {
                    s->resume.again = true; /* history will have it */
                }
            } else if (it->id > s->last_sent_id) {
                send_notification_frame(s, it);
            }
        }
    }
}

void sessions_resync(gateway_thread_t *thread)
{
    for (h2o_linklist_t *l = thread->sessions.all.next; l != &thread->sessions.all; l = l->next) {
        session_t *s = H2O_STRUCT_FROM_MEMBER(session_t, all_link, l);
        if (s->dead || s->user_len == 0)
            continue;
        if (s->resume.active) {
            s->resume.again = true;
        } else if (s->has_baseline) {
            s->resume.active = true;
            resume_next(s);
        }
    }
}

static void on_feed(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    gateway_thread_t *thread = H2O_STRUCT_FROM_MEMBER(gateway_thread_t, sessions.feed_receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        feed_delivery_t *d = H2O_STRUCT_FROM_MEMBER(feed_delivery_t, msg.link, messages->next);
        h2o_linklist_unlink(&d->msg.link);
        if (d->batch->resync)
            sessions_resync(thread);
        sessions_deliver(thread, d->batch);
        feed_batch_release(d->batch);
        free(d);
    }
}

/* ---- opening ---------------------------------------------------------------------------------------------------- */

void session_random_sid(char *buf, size_t n)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[32];
    if (n > sizeof(raw))
        n = sizeof(raw);
    if (getrandom(raw, n, 0) != (ssize_t)n)
        abort();
    for (size_t i = 0; i < n; ++i)
        buf[i] = alphabet[raw[i] & 63];
    buf[n] = '\0';
}

int session_claim_user(session_t *s, const char *user, size_t len)
{
    guard_t *g = &s->thread->gw->guard;
    quota_key_t key;
    int rv;
    guard_user_key(g, user, len, &key);
    if (s->has_user_slot && memcmp(&key, &s->user_slot, sizeof(key)) == 0)
        return 0;
    if ((rv = guard_session_acquire(g, &key)) != 0)
        return rv;
    if (s->has_user_slot)
        guard_session_release(g, &s->user_slot);
    s->user_slot = key;
    s->has_user_slot = true;
    return 0;
}

/* Upgrades req and starts a session for user (ulen 0: none yet); returns NULL (after answering) if req is not a
 * WebSocket handshake or the user has all the sessions allowed. */
static session_t *open_session(gateway_thread_t *thread, h2o_req_t *req, session_proto_t proto, route_t route, uint64_t started_us,
                               const char *user, size_t ulen)
{
    guard_t *g = &thread->gw->guard;
    h2o_iovec_t key;
    ws_handshake_error_t err;
    quota_key_t slot;
    if (ws_conn_check_handshake(req, &key, &err) != 0) {
        if (err.status == 426)
            h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("sec-websocket-version"), 0, NULL, H2O_STRLIT("13"));
        gateway_respond_error(thread, req, route, started_us, err.status, err.code, err.message);
        return NULL;
    }
    if (ulen != 0) {
        guard_user_key(g, user, ulen, &slot);
        int rv = guard_session_acquire(g, &slot);
        if (rv != 0) {
            char msg[160];
            snprintf(msg, sizeof(msg),
                     rv == -1 ? "this user has %" PRId64 " sessions open, the most allowed: close one first"
                              : "too many users have sessions open now (%" PRId64 " sessions each at most)",
                     g->cfg.max_sessions_per_user);
            gateway_respond_error(thread, req, route, started_us, 429, "too_many_sessions", msg);
            return NULL;
        }
    }
    session_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        abort();
    s->has_user_slot = ulen != 0;
    if (ulen != 0)
        s->user_slot = slot;
    guard_message_init(g, &s->msg_bucket);
    s->thread = thread;
    s->proto = proto;
    s->id = ((uint64_t)(thread->index + 1) << 56) | ++thread->sessions.next_id;
    session_random_sid(s->sid, 20);
    s->last_seen_us = clock_mono_us();
    s->heartbeat_entry.cb = on_heartbeat;
    h2o_linklist_insert(&thread->sessions.all, &s->all_link);
    ++thread->sessions.count;
    metrics_record(&thread->metrics, route, 101, clock_mono_us() - started_us);

    s->ws = ws_conn_new((uint64_t)thread->gw->cfg.ws_max_message, on_ws_event, s);
    ws_conn_upgrade(s->ws, req, key);
    h2o_timeout_link(thread->loop, &thread->sessions.heartbeat, &s->heartbeat_entry);
    return s;
}

/* Reads user_id and since from a session's query. Returns 0, or -1 after answering 400. *ulen is 0 without a user. */
static int session_query(gateway_thread_t *thread, h2o_req_t *req, route_t route, const char *query, size_t query_len,
                         uint64_t started_us, char user[VALID_USER_ID_MAX + 2], size_t *ulen, bool *has_since, uint64_t *since)
{
    char since_buf[32];
    int n = query_get(query, query_len, "user_id", user, VALID_USER_ID_MAX + 2);
    int slen = query_get(query, query_len, "since", since_buf, sizeof(since_buf));
    if (n == -2 || (n >= 0 && !valid_user_id(user, (size_t)n))) {
        gateway_respond_error(thread, req, route, started_us, 400, "invalid_user_id",
                              "user_id must be 1-64 characters of A-Z a-z 0-9 _ . -");
        return -1;
    }
    *since = 0;
    if (slen == -2 || (slen >= 0 && parse_u64(since_buf, (size_t)slen, UINT64_MAX, since) != 0)) {
        gateway_respond_error(thread, req, route, started_us, 400, "invalid_cursor",
                              "since must be the id of the last notification received (an integer)");
        return -1;
    }
    *ulen = n > 0 ? (size_t)n : 0;
    *has_since = slen >= 0;
    return 0;
}

/* The expiry to watch for a session opened with a: its token's exp (an API key or no authentication: none). */
static int64_t expiry_of(const auth_principal_t *a)
{
    return a->valid && !a->api_key ? a->claims.exp : 0;
}

int session_handle_native(gateway_thread_t *thread, h2o_req_t *req, const char *query, size_t query_len, const auth_principal_t *auth,
                          uint64_t started_us)
{
    char user[VALID_USER_ID_MAX + 2];
    size_t ulen;
    bool has_since;
    uint64_t since;
    int st;
    /* refused before the upgrade: 401 without a valid token, 403 with another user's */
    if ((st = gateway_auth_check_any(auth)) != 0) {
        gateway_respond_auth(thread, req, ROUTE_WS, started_us, auth, st, "");
        return 0;
    }
    if (session_query(thread, req, ROUTE_WS, query, query_len, started_us, user, &ulen, &has_since, &since) != 0)
        return 0;
    if (has_since && ulen == 0) {
        gateway_respond_error(thread, req, ROUTE_WS, started_us, 400, "invalid_user_id", "since needs a user_id");
        return 0;
    }
    if (ulen != 0 && (st = gateway_auth_check_user(auth, user, ulen)) != 0) {
        gateway_respond_auth(thread, req, ROUTE_WS, started_us, auth, st, "the token is for another user");
        return 0;
    }
    session_t *s = open_session(thread, req, SESSION_NATIVE, ROUTE_WS, started_us, user, ulen);
    if (s == NULL)
        return 0;
    s->auth_exp = expiry_of(auth);
    if (ulen != 0 && !has_since) {
        s->greet_pending = true; /* hello once the session knows where it starts (greet) */
        session_attach_user(s, user, ulen, false, 0);
    } else {
        native_on_open(s, user, ulen); /* hello first: a resume that fails at once sends its error after it */
        if (ulen != 0)
            session_attach_user(s, user, ulen, has_since, since);
    }
    return 0;
}

int session_handle_socketio(gateway_thread_t *thread, h2o_req_t *req, const char *query, size_t query_len, const auth_principal_t *auth,
                            uint64_t started_us)
{
    char eio[8], transport[16];
    int n = query_get(query, query_len, "EIO", eio, sizeof(eio));
    if (n != 1 || eio[0] != '4') {
        gateway_respond_error(thread, req, ROUTE_SOCKETIO, started_us, 400, "unsupported_protocol_version",
                              "only Engine.IO v4 (Socket.IO v3 and v4 clients) is served: EIO=4");
        return 0;
    }
    n = query_get(query, query_len, "transport", transport, sizeof(transport));
    if (n < 0 || strcmp(transport, "websocket") != 0) {
        gateway_respond_error(thread, req, ROUTE_SOCKETIO, started_us, 400, "transport_unknown",
                              "only the websocket transport is served: connect with transports: [\"websocket\"]");
        return 0;
    }
    char user[VALID_USER_ID_MAX + 2];
    size_t ulen;
    bool has_since;
    uint64_t since;
    int st;
    if (session_query(thread, req, ROUTE_SOCKETIO, query, query_len, started_us, user, &ulen, &has_since, &since) != 0)
        return 0;
    /* the token may come later, in CONNECT's auth (socket.io-client's auth: {token}); one given now (header or query)
     * must be good, and for the query's user */
    if (auth->present && (st = gateway_auth_check_any(auth)) != 0) {
        gateway_respond_auth(thread, req, ROUTE_SOCKETIO, started_us, auth, st, "");
        return 0;
    }
    if (auth->present && ulen != 0 && (st = gateway_auth_check_user(auth, user, ulen)) != 0) {
        gateway_respond_auth(thread, req, ROUTE_SOCKETIO, started_us, auth, st, "the token is for another user");
        return 0;
    }
    /* the query's user takes one of its sessions now only if the upgrade proved who it is (or auth is off); else at
     * CONNECT, once its token is checked: no one holds another user's sessions without that user's token */
    bool proven = auth->off || auth->valid;
    session_t *s = open_session(thread, req, SESSION_SOCKETIO, ROUTE_SOCKETIO, started_us, user, proven ? ulen : 0);
    if (s == NULL)
        return 0;
    if ((s->sio.query = malloc(sizeof(*s->sio.query))) == NULL)
        abort();
    memcpy(s->sio.query->user, user, ulen);
    s->sio.query->user[ulen] = '\0';
    s->sio.query->user_len = ulen;
    s->sio.query->has_since = has_since;
    s->sio.query->since = since;
    s->sio.query->auth = *auth;
    socketio_on_open(s);
    return 0;
}

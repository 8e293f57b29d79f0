#include <stdlib.h>
#include <string.h>
#include <h2o/linklist.h>
#include <h2o/memory.h>
#include "realtime.h"
#include "strmap.h"

typedef struct st_user_t {
    h2o_linklist_t entries; /* entry_t by user_link, ascending id */
    size_t count;
    size_t idlen;
    uint64_t newest_id; /* highest id ever added: older ids arriving again are replays */
    char id[];
} user_t;

typedef struct st_entry_t {
    uint64_t id;
    int64_t ts;
    user_t *user;
    h2o_linklist_t user_link;
    h2o_linklist_t all_link;
    size_t message_len, kind_len;
    char text[]; /* message then kind */
} entry_t;

struct st_realtime_t {
    int64_t window_ms;
    size_t per_user_cap, total_cap;
    strmap_t *users;
    h2o_linklist_t all; /* entry_t by all_link, in arrival (= id) order */
    size_t size;
};

realtime_t *realtime_create(int64_t window_ms, size_t per_user_cap, size_t total_cap)
{
    realtime_t *rt = calloc(1, sizeof(*rt));
    if (rt == NULL)
        abort();
    rt->window_ms = window_ms;
    rt->per_user_cap = per_user_cap;
    rt->total_cap = total_cap;
    rt->users = strmap_create();
    h2o_linklist_init_anchor(&rt->all);
    return rt;
}

static void remove_entry(realtime_t *rt, entry_t *e)
{
    user_t *u = e->user;
    h2o_linklist_unlink(&e->user_link);
    h2o_linklist_unlink(&e->all_link);
    free(e);
    --rt->size;
    if (--u->count == 0) {
        strmap_remove(rt->users, u->id, u->idlen);
        free(u);
    }
}

void realtime_destroy(realtime_t *rt)
{
    while (!h2o_linklist_is_empty(&rt->all))
        remove_entry(rt, H2O_STRUCT_FROM_MEMBER(entry_t, all_link, rt->all.next));
    strmap_destroy(rt->users);
    free(rt);
}

bool realtime_add(realtime_t *rt, const proto_notification_t *n, int64_t now_ms)
{
    if (n->ts < now_ms - rt->window_ms || rt->per_user_cap == 0 || rt->total_cap == 0)
        return false;

    user_t *u = strmap_get(rt->users, n->user_id.ptr, n->user_id.len);
    if (u != NULL && n->id <= u->newest_id)
        return false;
    if (u == NULL) {
        if ((u = malloc(sizeof(*u) + n->user_id.len)) == NULL)
            abort();
        h2o_linklist_init_anchor(&u->entries);
        u->count = 0;
        u->idlen = n->user_id.len;
        memcpy(u->id, n->user_id.ptr, n->user_id.len);
        strmap_set(rt->users, u->id, u->idlen, u);
    }
    u->newest_id = n->id;

    entry_t *e = malloc(sizeof(*e) + n->message.len + n->kind.len);
    if (e == NULL)
        abort();
    e->id = n->id;
    e->ts = n->ts;
    e->user = u;
    e->message_len = n->message.len;
    e->kind_len = n->kind.len;
    e->user_link = e->all_link = (h2o_linklist_t){NULL};
    memcpy(e->text, n->message.ptr, n->message.len);
    memcpy(e->text + n->message.len, n->kind.ptr, n->kind.len);
    h2o_linklist_insert(&u->entries, &e->user_link);
    h2o_linklist_insert(&rt->all, &e->all_link);
    ++u->count;
    ++rt->size;

    if (u->count > rt->per_user_cap)
        remove_entry(rt, H2O_STRUCT_FROM_MEMBER(entry_t, user_link, u->entries.next));
    if (rt->size > rt->total_cap)
        remove_entry(rt, H2O_STRUCT_FROM_MEMBER(entry_t, all_link, rt->all.next));
    return true;
}

bool realtime_mark_read(realtime_t *rt, proto_str_t user_id, uint64_t id)
{
    user_t *u = strmap_get(rt->users, user_id.ptr, user_id.len);
    if (u == NULL)
        return false;
    for (h2o_linklist_t *l = u->entries.prev; l != &u->entries; l = l->prev) {
        entry_t *e = H2O_STRUCT_FROM_MEMBER(entry_t, user_link, l);
        if (e->id == id) {
            remove_entry(rt, e);
            return true;
        }
        if (e->id < id)
            break;
    }
    return false;
}

size_t realtime_mark_all_read(realtime_t *rt, proto_str_t user_id, uint64_t upto)
{
    user_t *u = strmap_get(rt->users, user_id.ptr, user_id.len);
    size_t n = 0;
    if (u == NULL)
        return 0;
    /* oldest first; removing the user's last entry frees u, so count what is left before each step */
    for (size_t left = u->count; left > 0; --left) {
        entry_t *e = H2O_STRUCT_FROM_MEMBER(entry_t, user_link, u->entries.next);
        if (e->id > upto)
            break;
        remove_entry(rt, e);
        ++n;
    }
    return n;
}

size_t realtime_query(realtime_t *rt, proto_str_t user_id, uint64_t before, size_t limit, int64_t now_ms, proto_notification_t *out,
                      uint64_t *unread)
{
    user_t *u = strmap_get(rt->users, user_id.ptr, user_id.len);
    size_t n = 0;
    *unread = 0;
    if (u == NULL)
        return 0;
    int64_t oldest_ts = now_ms - rt->window_ms;
    for (h2o_linklist_t *l = u->entries.prev; l != &u->entries; l = l->prev) {
        entry_t *e = H2O_STRUCT_FROM_MEMBER(entry_t, user_link, l);
        if (e->ts < oldest_ts)
            continue; /* not yet swept by realtime_expire */
        ++*unread;
        if ((before == 0 || e->id < before) && n < limit) {
            out[n++] = (proto_notification_t){.id = e->id,
                                              .ts = e->ts,
                                              .user_id = {u->id, u->idlen},
                                              .message = {e->text, e->message_len},
                                              .kind = {e->text + e->message_len, e->kind_len},
                                              .read = false};
        }
    }
    return n;
}

void realtime_expire(realtime_t *rt, int64_t now_ms)
{
    int64_t oldest_ts = now_ms - rt->window_ms;
    while (!h2o_linklist_is_empty(&rt->all)) {
        entry_t *e = H2O_STRUCT_FROM_MEMBER(entry_t, all_link, rt->all.next);
        if (e->ts >= oldest_ts)
            break;
        remove_entry(rt, e);
    }
}

size_t realtime_size(const realtime_t *rt)
{
    return rt->size;
}

size_t realtime_users(const realtime_t *rt)
{
    return strmap_size(rt->users);
}

/*
 * The realtime view: per user, the notifications published in the last window_ms that are still unread, newest
 * first. Memory is bounded: at most per_user_cap entries a user (oldest dropped first) and total_cap in all (oldest
 * anywhere dropped first), and entries leave when they age out of the window or are read.
 *
 * Fed in stream order (ids ascending), so each user's list and the global list stay ordered by id without sorting.
 * One owner thread; strings returned point into the store and are valid until the next call that changes it.
 */
#ifndef NOTIGATE_REALTIME_H
#define NOTIGATE_REALTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "proto.h"

typedef struct st_realtime_t realtime_t;

realtime_t *realtime_create(int64_t window_ms, size_t per_user_cap, size_t total_cap);
void realtime_destroy(realtime_t *rt);

/* Adds n (copied) unless its id is not above the newest the user has (a replay) or it is already out of the window
 * at now_ms. Returns true if added. */
bool realtime_add(realtime_t *rt, const proto_notification_t *n, int64_t now_ms);

/* Drops the user's notification id if held (it was read). Returns true if it was there. */
bool realtime_mark_read(realtime_t *rt, proto_str_t user_id, uint64_t id);

/* Drops every notification of the user with an id up to upto. Returns how many were dropped. */
size_t realtime_mark_all_read(realtime_t *rt, proto_str_t user_id, uint64_t upto);

/* Writes to out (room for limit) the user's notifications in the window at now_ms with id below before (0: no
 * bound), newest first, and returns how many; *unread is set to how many the user has in the window in all. */
size_t realtime_query(realtime_t *rt, proto_str_t user_id, uint64_t before, size_t limit, int64_t now_ms, proto_notification_t *out,
                      uint64_t *unread);

/* Drops everything older than the window at now_ms. Call periodically. */
void realtime_expire(realtime_t *rt, int64_t now_ms);

/* Entries and users held. */
size_t realtime_size(const realtime_t *rt);
size_t realtime_users(const realtime_t *rt);

#endif

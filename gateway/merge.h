/*
 * Merging the realtime view (notifier) and the history (history-svc) into one page. Pure, any thread.
 *
 * A page covers the ids from the oldest item of the history page up to `before` (or the newest). Realtime items in
 * that range are listed under "realtime" and left out of "historical"; realtime items older than the range belong to
 * a later page and are left out here. History is the authority on read state: an item history reports read is not
 * realtime, whatever the notifier still holds. Walking next_before therefore lists every notification exactly once.
 * Without history, realtime items below `before` are listed and there is no next page; without the notifier, the
 * history page is listed as it is.
 */
#ifndef NOTIGATE_MERGE_H
#define NOTIGATE_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "proto.h"

typedef struct st_merge_result_t {
    const proto_notification_t *realtime[PROTO_LIMIT_MAX];
    size_t nrealtime;
    const proto_notification_t *historical[PROTO_LIMIT_MAX];
    size_t nhistorical;
    uint64_t next_before; /* 0: there is no older page (or, without history, none is known) */
    uint64_t unread_count;
} merge_result_t;

/* realtime, history: the workers' replies (items newest first), or NULL for a worker that did not answer. before:
 * the page's cursor (0: newest). The result points into the replies' items. */
void merge_notifications(const proto_reply_t *realtime, const proto_reply_t *history, uint64_t before, merge_result_t *out);

#endif

#include "merge.h"

static size_t capped(const proto_reply_t *rep)
{
    return rep == NULL ? 0 : (rep->nitems < PROTO_LIMIT_MAX ? rep->nitems : PROTO_LIMIT_MAX);
}

void merge_notifications(const proto_reply_t *realtime, const proto_reply_t *history, uint64_t before, merge_result_t *out)
{
    size_t nr = capped(realtime), nh = capped(history);
    const proto_notification_t *R = nr != 0 ? realtime->items : NULL, *H = nh != 0 ? history->items : NULL;

    out->nrealtime = out->nhistorical = 0;
    out->next_before = 0;
    out->unread_count = 0;

    if (history == NULL) {
        for (size_t i = 0; i < nr; ++i)
            if (before == 0 || R[i].id < before)
                out->realtime[out->nrealtime++] = &R[i];
        out->unread_count = realtime != NULL ? realtime->unread_count : 0;
        return;
    }

    uint64_t lower = history->has_more && nh != 0 ? H[nh - 1].id : 0;
    out->next_before = lower;
    out->unread_count = history->unread_count;

    size_t j = 0;
    for (size_t i = 0; i < nr; ++i) {
        const proto_notification_t *r = &R[i];
        if ((before != 0 && r->id >= before) || r->id < lower)
            continue;
        while (j < nh && H[j].id > r->id)
            out->historical[out->nhistorical++] = &H[j++];
        if (j < nh && H[j].id == r->id) {
            if (H[j].read) {
                out->historical[out->nhistorical++] = &H[j++]; /* read since the notifier saw it */
                continue;
            }
            ++j;
        }
        out->realtime[out->nrealtime++] = r;
    }
    while (j < nh)
        out->historical[out->nhistorical++] = &H[j++];
}

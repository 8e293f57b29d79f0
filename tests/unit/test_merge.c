/*
 * Unit tests of gateway/merge.c: one page from the notifier's realtime view and the history page, and the property
 * that walking next_before lists every notification exactly once.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include "merge.h"
#include "unit_check.h"

#define MAXN 400

typedef struct st_fixture_t {
    proto_notification_t items[MAXN];
    proto_reply_t rep;
} fixture_t;

/* Fills f with the ids (newest first) and their read flags (NULL: all unread). */
static const proto_reply_t *reply_of(fixture_t *f, const uint64_t *ids, const bool *read, size_t n, uint64_t unread, bool has_more)
{
    ck_assert_uint_le(n, MAXN);
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < n; ++i) {
        f->items[i] = (proto_notification_t){.id = ids[i],
                                             .ts = (int64_t)ids[i] * 10,
                                             .user_id = {"u", 1},
                                             .message = {"m", 1},
                                             .kind = {"info", 4},
                                             .read = read != NULL && read[i]};
    }
    f->rep = (proto_reply_t){.status = PROTO_ST_OK,
                             .list = true,
                             .items = n != 0 ? f->items : NULL,
                             .nitems = n,
                             .unread_count = unread,
                             .has_more = has_more};
    return &f->rep;
}

static void assert_ids(const proto_notification_t *const *got, size_t ngot, const uint64_t *want, size_t nwant, const char *what)
{
    ck_assert_msg(ngot == nwant, "%s: %zu items, want %zu", what, ngot, nwant);
    for (size_t i = 0; i < nwant; ++i)
        ck_assert_msg(got[i]->id == want[i], "%s[%zu] = %llu, want %llu", what, i, (unsigned long long)got[i]->id,
                      (unsigned long long)want[i]);
}

/* A result full of garbage, to show that merge sets every field. */
static void spoil(merge_result_t *m)
{
    memset(m, 0xa5, sizeof(*m));
}

START_TEST(test_overlap)
{
    fixture_t hf, rf;
    uint64_t hist[] = {10, 9, 8, 7, 6}, rt[] = {10, 8};
    const proto_reply_t *h = reply_of(&hf, hist, NULL, 5, 12, true), *r = reply_of(&rf, rt, NULL, 2, 2, false);
    merge_result_t m;
    spoil(&m);
    merge_notifications(r, h, 0, &m);
    assert_ids(m.realtime, m.nrealtime, (uint64_t[]){10, 8}, 2, "realtime");
    assert_ids(m.historical, m.nhistorical, (uint64_t[]){9, 7, 6}, 3, "historical");
    ck_assert_uint_eq(m.next_before, 6);
    ck_assert_uint_eq(m.unread_count, 12); /* history's count, not the notifier's */
    /* the realtime entries are the notifier's items */
    ck_assert_ptr_eq(m.realtime[0], &rf.items[0]);
    ck_assert_ptr_eq(m.historical[0], &hf.items[1]);
}
END_TEST

START_TEST(test_realtime_not_in_history_page)
{
    /* the notifier holds 11, which history's page (below before = 12) did not list: still listed once, as realtime */
    fixture_t hf, rf;
    uint64_t hist[] = {10, 9}, rt[] = {11, 9};
    merge_result_t m;
    spoil(&m);
    merge_notifications(reply_of(&rf, rt, NULL, 2, 2, false), reply_of(&hf, hist, NULL, 2, 2, false), 12, &m);
    assert_ids(m.realtime, m.nrealtime, (uint64_t[]){11, 9}, 2, "realtime");
    assert_ids(m.historical, m.nhistorical, (uint64_t[]){10}, 1, "historical");
    ck_assert_uint_eq(m.next_before, 0);
}
END_TEST

START_TEST(test_read_in_history_wins)
{
    fixture_t hf, rf;
    uint64_t hist[] = {10, 9, 8}, rt[] = {10, 9};
    bool read[] = {true, false, true};
    merge_result_t m;
    spoil(&m);
    merge_notifications(reply_of(&rf, rt, NULL, 2, 2, false), reply_of(&hf, hist, read, 3, 1, false), 0, &m);
    assert_ids(m.realtime, m.nrealtime, (uint64_t[]){9}, 1, "realtime");
    assert_ids(m.historical, m.nhistorical, (uint64_t[]){10, 8}, 2, "historical");
    /* the historical entry is history's (read) copy */
    ck_assert(m.historical[0]->read);
    ck_assert_ptr_eq(m.historical[0], &hf.items[0]);
    ck_assert_uint_eq(m.next_before, 0);
    ck_assert_uint_eq(m.unread_count, 1);
}
END_TEST

START_TEST(test_realtime_older_than_page)
{
    fixture_t hf, rf;
    uint64_t hist[] = {10, 9, 8}, rt[] = {9, 7, 5};
    merge_result_t m;

    /* with more history below, 7 and 5 belong to a later page */
    spoil(&m);
    merge_notifications(reply_of(&rf, rt, NULL, 3, 3, false), reply_of(&hf, hist, NULL, 3, 6, true), 0, &m);
    assert_ids(m.realtime, m.nrealtime, (uint64_t[]){9}, 1, "realtime");
    assert_ids(m.historical, m.nhistorical, (uint64_t[]){10, 8}, 2, "historical");
    ck_assert_uint_eq(m.next_before, 8);

    /* the item at the page's lower bound itself is on this page */
    uint64_t rt2[] = {8, 7};
    spoil(&m);
    merge_notifications(reply_of(&rf, rt2, NULL, 2, 2, false), reply_of(&hf, hist, NULL, 3, 6, true), 0, &m);
    assert_ids(m.realtime, m.nrealtime, (uint64_t[]){8}, 1, "realtime");
    assert_ids(m.historical, m.nhistorical, (uint64_t[]){10, 9}, 2, "historical");
    ck_assert_uint_eq(m.next_before, 8);
}
END_TEST

START_TEST(test_next_before_only_when_more)
{
    fixture_t hf, rf;
    uint64_t hist[] = {30, 20, 10};
    merge_result_t m;

    spoil(&m);
    merge_notifications(reply_of(&rf, NULL, NULL, 0, 0, false), reply_of(&hf, hist, NULL, 3, 3, false), 40, &m);
    ck_assert_uint_eq(m.next_before, 0);
    assert_ids(m.historical, m.nhistorical, hist, 3, "historical");
    ck_assert_uint_eq(m.nrealtime, 0);

    spoil(&m);
    merge_notifications(reply_of(&rf, NULL, NULL, 0, 0, false), reply_of(&hf, hist, NULL, 3, 3, true), 40, &m);
    ck_assert_uint_eq(m.next_before, 10);

    /* "more" with an empty page gives no cursor to go on from */
    spoil(&m);
    merge_notifications(reply_of(&rf, NULL, NULL, 0, 0, false), reply_of(&hf, NULL, NULL, 0, 0, true), 40, &m);
    ck_assert_uint_eq(m.next_before, 0);
    ck_assert_uint_eq(m.nhistorical, 0);
}
END_TEST

START_TEST(test_history_missing)
{
    fixture_t rf;
    uint64_t rt[] = {10, 8, 5};
    merge_result_t m;

    spoil(&m);
    merge_notifications(reply_of(&rf, rt, NULL, 3, 7, false), NULL, 0, &m);
    assert_ids(m.realtime, m.nrealtime, rt, 3, "realtime");
    ck_assert_uint_eq(m.nhistorical, 0);
    ck_assert_uint_eq(m.next_before, 0);
    ck_assert_uint_eq(m.unread_count, 7);

    spoil(&m);
    merge_notifications(reply_of(&rf, rt, NULL, 3, 7, false), NULL, 8, &m);
    assert_ids(m.realtime, m.nrealtime, (uint64_t[]){5}, 1, "realtime below 8");
    ck_assert_uint_eq(m.nhistorical, 0);
    ck_assert_uint_eq(m.next_before, 0);
    ck_assert_uint_eq(m.unread_count, 7);
}
END_TEST

START_TEST(test_notifier_missing)
{
    fixture_t hf;
    uint64_t hist[] = {10, 9, 8};
    bool read[] = {false, true, false};
    merge_result_t m;
    spoil(&m);
    merge_notifications(NULL, reply_of(&hf, hist, read, 3, 4, true), 11, &m);
    ck_assert_uint_eq(m.nrealtime, 0);
    assert_ids(m.historical, m.nhistorical, hist, 3, "historical");
    ck_assert_uint_eq(m.next_before, 8);
    ck_assert_uint_eq(m.unread_count, 4);
}
END_TEST

START_TEST(test_both_missing)
{
    merge_result_t m;
    spoil(&m);
    merge_notifications(NULL, NULL, 0, &m);
    ck_assert_uint_eq(m.nrealtime, 0);
    ck_assert_uint_eq(m.nhistorical, 0);
    ck_assert_uint_eq(m.next_before, 0);
    ck_assert_uint_eq(m.unread_count, 0);
}
END_TEST

START_TEST(test_before_filters_realtime)
{
    /* a notifier that ignored the cursor: its items at or above before are not on this page */
    fixture_t hf, rf;
    uint64_t hist[] = {9, 8}, rt[] = {12, 10, 9};
    merge_result_t m;
    spoil(&m);
    merge_notifications(reply_of(&rf, rt, NULL, 3, 3, false), reply_of(&hf, hist, NULL, 2, 3, false), 10, &m);
    assert_ids(m.realtime, m.nrealtime, (uint64_t[]){9}, 1, "realtime");
    assert_ids(m.historical, m.nhistorical, (uint64_t[]){8}, 1, "historical");
}
END_TEST

START_TEST(test_oversized_replies_capped)
{
    /* more items than a page holds (a misbehaving worker): at most PROTO_LIMIT_MAX of each, nothing overflows */
    static fixture_t hf, rf;
    uint64_t ids[MAXN];
    for (size_t i = 0; i < MAXN; ++i)
        ids[i] = 1000 - i;
    merge_result_t m;
    spoil(&m);
    merge_notifications(reply_of(&rf, ids, NULL, 150, 150, false), reply_of(&hf, ids + 150, NULL, 250, 250, true), 0, &m);
    ck_assert_uint_eq(m.nrealtime, PROTO_LIMIT_MAX);
    ck_assert_uint_eq(m.nhistorical, PROTO_LIMIT_MAX);
    ck_assert_uint_eq(m.realtime[0]->id, 1000);
    ck_assert_uint_eq(m.historical[PROTO_LIMIT_MAX - 1]->id, 1000 - 150 - PROTO_LIMIT_MAX + 1);
    ck_assert_uint_eq(m.next_before, 1000 - 150 - PROTO_LIMIT_MAX + 1);

    spoil(&m);
    merge_notifications(reply_of(&rf, ids, NULL, 150, 150, false), NULL, 0, &m);
    ck_assert_uint_eq(m.nrealtime, PROTO_LIMIT_MAX);
}
END_TEST

/* ---- pagination property ---------------------------------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng(void)
{
    return unit_rng(&rng_state);
}

typedef struct st_world_t {
    size_t n;
    uint64_t ids[MAXN]; /* ascending */
    bool read[MAXN];
    bool held[MAXN]; /* in the notifier's realtime view */
    size_t nheld;
} world_t;

/* Random ids with gaps, random read flags, and a realtime view of recent items: unread ones, and if held_read also some
 * that history already reports read (the notifier has not seen the read event yet). */
static void world_make(world_t *w, bool held_read)
{
    memset(w, 0, sizeof(*w));
    w->n = rng() % 250;
    uint64_t id = 1 + rng() % 5;
    for (size_t i = 0; i < w->n; ++i) {
        w->ids[i] = id;
        id += 1 + (rng() % 4 == 0 ? rng() % 1000 : 0);
        w->read[i] = rng() % 3 == 0;
    }
    size_t recent_from = w->n != 0 ? rng() % (w->n + 1) : 0;
    for (size_t i = recent_from; i < w->n; ++i) {
        if (rng() % 5 != 0 && (!w->read[i] || (held_read && rng() % 2 == 0))) {
            w->held[i] = true;
            ++w->nheld;
        }
    }
}

/* What history-svc answers to PAGE(before, limit). */
static const proto_reply_t *world_history(const world_t *w, fixture_t *f, uint64_t before, size_t limit)
{
    uint64_t ids[MAXN];
    bool read[MAXN];
    size_t n = 0, unread = 0;
    bool more = false;
    for (size_t i = w->n; i-- > 0;) {
        unread += !w->read[i];
        if (before != 0 && w->ids[i] >= before)
            continue;
        if (n == limit) {
            more = true;
            continue;
        }
        ids[n] = w->ids[i];
        read[n++] = w->read[i];
    }
    return reply_of(f, ids, read, n, unread, more);
}

/* What the notifier answers to RECENT(before, limit). */
static const proto_reply_t *world_notifier(const world_t *w, fixture_t *f, uint64_t before, size_t limit)
{
    uint64_t ids[MAXN];
    size_t n = 0;
    for (size_t i = w->n; i-- > 0;)
        if (w->held[i] && (before == 0 || w->ids[i] < before) && n < limit)
            ids[n++] = w->ids[i];
    return reply_of(f, ids, NULL, n, w->nheld, false);
}

static size_t index_of(const world_t *w, uint64_t id)
{
    size_t lo = 0, hi = w->n; /* ids ascending: binary search */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    REQUIRE(lo < w->n && w->ids[lo] == id, "id %llu is not in the world", (unsigned long long)id);
    return lo;
}

static void check_walk(const world_t *w, size_t limit)
{
    static fixture_t hf, rf;
    unsigned seen[MAXN] = {0};
    uint64_t before = 0;
    size_t pages = 0;
    do {
        merge_result_t m;
        spoil(&m);
        merge_notifications(world_notifier(w, &rf, before, limit), world_history(w, &hf, before, limit), before, &m);
        REQUIRE(m.nrealtime + m.nhistorical <= 2 * limit, "page of %zu items", m.nrealtime + m.nhistorical);
        uint64_t prev = UINT64_MAX;
        for (size_t i = 0; i < m.nrealtime; ++i) {
            size_t k = index_of(w, m.realtime[i]->id);
            REQUIRE(!w->read[k], "id %llu is read but listed as realtime", (unsigned long long)w->ids[k]);
            REQUIRE(w->held[k], "id %llu listed as realtime but the notifier does not hold it", (unsigned long long)w->ids[k]);
            REQUIRE(m.realtime[i]->id < prev, "realtime not newest first"); /* newest first */
            prev = m.realtime[i]->id;
            ++seen[k];
        }
        prev = UINT64_MAX;
        for (size_t i = 0; i < m.nhistorical; ++i) {
            size_t k = index_of(w, m.historical[i]->id);
            REQUIRE(m.historical[i]->id < prev, "historical not newest first");
            prev = m.historical[i]->id;
            REQUIRE(m.historical[i]->read == w->read[k], "read flag of %llu", (unsigned long long)w->ids[k]);
            ++seen[k];
        }
        REQUIRE(m.unread_count == hf.rep.unread_count, "unread %llu", (unsigned long long)m.unread_count);
        uint64_t oldest = hf.rep.nitems != 0 ? hf.rep.items[hf.rep.nitems - 1].id : 0;
        REQUIRE(m.next_before == (hf.rep.has_more ? oldest : 0), "next_before %llu", (unsigned long long)m.next_before);
        REQUIRE(before == 0 || m.next_before < before, "no progress at %llu", (unsigned long long)before);
        before = m.next_before;
        REQUIRE(++pages <= w->n + 1, "too many pages");
    } while (before != 0);

    for (size_t i = 0; i < w->n; ++i)
        REQUIRE(seen[i] == 1, "limit %zu, %zu ids: id %llu listed %u times (read %d, held %d)", limit, w->n,
                (unsigned long long)w->ids[i], seen[i], w->read[i], w->held[i]);
}

START_TEST(test_pagination_property)
{
    static const size_t limits[] = {1, 2, 3, 5, 7, 10, 20, 50, 100};
    static world_t w;
    rng_state = 0x5eed5eed12345678ULL;
    for (int round = 0; round < 300; ++round) {
        world_make(&w, round % 2 == 1);
        for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); ++l)
            check_walk(&w, limits[l]);
    }
}
END_TEST

static Suite *merge_suite(void)
{
    Suite *s = suite_create("merge");
    TCase *tc = tcase_create("cases");
    tcase_add_test(tc, test_overlap);
    tcase_add_test(tc, test_realtime_not_in_history_page);
    tcase_add_test(tc, test_read_in_history_wins);
    tcase_add_test(tc, test_realtime_older_than_page);
    tcase_add_test(tc, test_next_before_only_when_more);
    tcase_add_test(tc, test_history_missing);
    tcase_add_test(tc, test_notifier_missing);
    tcase_add_test(tc, test_both_missing);
    tcase_add_test(tc, test_before_filters_realtime);
    tcase_add_test(tc, test_oversized_replies_capped);
    suite_add_tcase(s, tc);

    tc = tcase_create("property");
    tcase_set_timeout(tc, 50);
    tcase_add_test(tc, test_pagination_property);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(merge_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

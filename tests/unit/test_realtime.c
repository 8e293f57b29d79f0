/*
 * Unit tests of notifier/realtime.c: the in-memory realtime view (window, caps, replays, read marks).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "realtime.h"

#define WINDOW 60000
#define T0 1700000000000LL

static proto_str_t U(const char *user)
{
    return (proto_str_t){user, strlen(user)};
}

/* Adds user's notification id with timestamp ts (message "m<id>", kind "k<id % 3>") at now. */
static bool add(realtime_t *rt, const char *user, uint64_t id, int64_t ts, int64_t now)
{
    char msg[32], kind[8];
    snprintf(msg, sizeof(msg), "m%llu", (unsigned long long)id);
    snprintf(kind, sizeof(kind), "k%llu", (unsigned long long)(id % 3));
    proto_notification_t n = {.id = id, .ts = ts, .user_id = U(user), .message = U(msg), .kind = U(kind), .read = true};
    return realtime_add(rt, &n, now);
}

/* Queries and checks the ids returned (newest first) and the unread count. */
static void expect(realtime_t *rt, const char *user, uint64_t before, size_t limit, int64_t now, const uint64_t *ids, size_t n,
                   uint64_t unread)
{
    proto_notification_t out[64];
    uint64_t got_unread = 12345;
    ck_assert_uint_le(limit, 64);
    size_t got = realtime_query(rt, U(user), before, limit, now, out, &got_unread);
    ck_assert_msg(got == n, "%s before %llu limit %zu: %zu items, want %zu", user, (unsigned long long)before, limit, got, n);
    for (size_t i = 0; i < n; ++i)
        ck_assert_msg(out[i].id == ids[i], "%s: item %zu is %llu, want %llu", user, i, (unsigned long long)out[i].id,
                      (unsigned long long)ids[i]);
    ck_assert_uint_eq(got_unread, unread);
}

#define IDS(...) (uint64_t[]){__VA_ARGS__}, sizeof((uint64_t[]){__VA_ARGS__}) / sizeof(uint64_t)
#define NONE NULL, 0

START_TEST(test_add_query_newest_first)
{
    realtime_t *rt = realtime_create(WINDOW, 100, 1000);
    for (uint64_t id = 1; id <= 5; ++id)
        ck_assert(add(rt, "alice", id, T0 + (int64_t)id, T0 + 10));
    ck_assert(add(rt, "bob", 6, T0 + 6, T0 + 10));
    ck_assert_uint_eq(realtime_size(rt), 6);
    ck_assert_uint_eq(realtime_users(rt), 2);

    expect(rt, "alice", 0, 10, T0 + 10, IDS(5, 4, 3, 2, 1), 5);
    expect(rt, "bob", 0, 10, T0 + 10, IDS(6), 1);
    expect(rt, "carol", 0, 10, T0 + 10, NONE, 0);

    /* every field copied, and the strings live in the store */
    proto_notification_t out[2];
    uint64_t unread;
    ck_assert_uint_eq(realtime_query(rt, U("alice"), 0, 1, T0 + 10, out, &unread), 1);
    ck_assert_uint_eq(out[0].id, 5);
    ck_assert_int_eq(out[0].ts, T0 + 5);
    ck_assert_uint_eq(out[0].user_id.len, 5);
    ck_assert_mem_eq(out[0].user_id.ptr, "alice", 5);
    ck_assert_uint_eq(out[0].message.len, 2);
    ck_assert_mem_eq(out[0].message.ptr, "m5", 2);
    ck_assert_uint_eq(out[0].kind.len, 2);
    ck_assert_mem_eq(out[0].kind.ptr, "k2", 2);
    ck_assert(!out[0].read); /* whatever the caller passed in: what the store holds is unread */
    realtime_destroy(rt);
}
END_TEST

START_TEST(test_before_and_limit)
{
    realtime_t *rt = realtime_create(WINDOW, 100, 1000);
    static const uint64_t ids[] = {3, 7, 10, 11, 20};
    for (size_t i = 0; i < 5; ++i)
        ck_assert(add(rt, "alice", ids[i], T0, T0));

    expect(rt, "alice", 0, 2, T0, IDS(20, 11), 5);
    expect(rt, "alice", 11, 10, T0, IDS(10, 7, 3), 5);
    expect(rt, "alice", 11, 2, T0, IDS(10, 7), 5);
    expect(rt, "alice", 12, 1, T0, IDS(11), 5);
    expect(rt, "alice", 21, 10, T0, IDS(20, 11, 10, 7, 3), 5);
    expect(rt, "alice", 3, 10, T0, NONE, 5);
    expect(rt, "alice", 1, 10, T0, NONE, 5);
    expect(rt, "alice", 0, 0, T0, NONE, 5);
    realtime_destroy(rt);
}
END_TEST

START_TEST(test_window)
{
    realtime_t *rt = realtime_create(1000, 100, 1000);
    ck_assert(add(rt, "alice", 1, T0, T0));
    ck_assert(add(rt, "alice", 2, T0 + 500, T0 + 500));
    ck_assert(add(rt, "bob", 3, T0 + 600, T0 + 600));

    /* at the edge of the window an entry is still in it */
    expect(rt, "alice", 0, 10, T0 + 1000, IDS(2, 1), 2);
    /* older than the window: not returned nor counted, though still held until expired */
    expect(rt, "alice", 0, 10, T0 + 1001, IDS(2), 1);
    ck_assert_uint_eq(realtime_size(rt), 3);

    realtime_expire(rt, T0 + 1001);
    ck_assert_uint_eq(realtime_size(rt), 2);
    ck_assert_uint_eq(realtime_users(rt), 2);
    expect(rt, "alice", 0, 10, T0 + 1001, IDS(2), 1);

    /* expiring again at the same time changes nothing; later, alice's last entry goes and so does alice */
    realtime_expire(rt, T0 + 1001);
    ck_assert_uint_eq(realtime_size(rt), 2);
    realtime_expire(rt, T0 + 1501);
    ck_assert_uint_eq(realtime_size(rt), 1);
    ck_assert_uint_eq(realtime_users(rt), 1);
    expect(rt, "alice", 0, 10, T0 + 1501, NONE, 0);
    expect(rt, "bob", 0, 10, T0 + 1501, IDS(3), 1);
    realtime_expire(rt, T0 + 1000000);
    ck_assert_uint_eq(realtime_size(rt), 0);
    ck_assert_uint_eq(realtime_users(rt), 0);

    /* a notification already out of the window is not added */
    ck_assert(!add(rt, "carol", 10, T0, T0 + 1001));
    ck_assert(add(rt, "carol", 11, T0 + 1, T0 + 1001));
    ck_assert_uint_eq(realtime_size(rt), 1);
    realtime_destroy(rt);
}
END_TEST

START_TEST(test_per_user_cap)
{
    realtime_t *rt = realtime_create(WINDOW, 3, 1000);
    for (uint64_t id = 1; id <= 5; ++id)
        ck_assert(add(rt, "alice", id, T0, T0));
    ck_assert(add(rt, "bob", 6, T0, T0));
    ck_assert(add(rt, "bob", 7, T0, T0));
    ck_assert_uint_eq(realtime_size(rt), 5);
    expect(rt, "alice", 0, 10, T0, IDS(5, 4, 3), 3);
    expect(rt, "bob", 0, 10, T0, IDS(7, 6), 2);
    /* a dropped id coming again is still a replay */
    ck_assert(!add(rt, "alice", 2, T0, T0));
    expect(rt, "alice", 0, 10, T0, IDS(5, 4, 3), 3);
    realtime_destroy(rt);
}
END_TEST

START_TEST(test_total_cap)
{
    realtime_t *rt = realtime_create(WINDOW, 10, 4);
    ck_assert(add(rt, "alice", 1, T0, T0));
    ck_assert(add(rt, "bob", 2, T0, T0));
    ck_assert(add(rt, "alice", 3, T0, T0));
    ck_assert(add(rt, "carol", 4, T0, T0));
    ck_assert_uint_eq(realtime_size(rt), 4);

    ck_assert(add(rt, "bob", 5, T0, T0)); /* drops 1 (alice's) */
    ck_assert_uint_eq(realtime_size(rt), 4);
    expect(rt, "alice", 0, 10, T0, IDS(3), 1);
    expect(rt, "bob", 0, 10, T0, IDS(5, 2), 2);

    ck_assert(add(rt, "dave", 6, T0, T0)); /* drops 2 (bob's) */
    expect(rt, "bob", 0, 10, T0, IDS(5), 1);
    ck_assert_uint_eq(realtime_users(rt), 4);

    ck_assert(add(rt, "carol", 7, T0, T0)); /* drops 3, alice's last: alice goes */
    ck_assert_uint_eq(realtime_size(rt), 4);
    ck_assert_uint_eq(realtime_users(rt), 3);
    expect(rt, "alice", 0, 10, T0, NONE, 0);
    expect(rt, "carol", 0, 10, T0, IDS(7, 4), 2);
    expect(rt, "dave", 0, 10, T0, IDS(6), 1);
    realtime_destroy(rt);
}
END_TEST

START_TEST(test_caps_of_one_and_zero)
{
    realtime_t *rt = realtime_create(WINDOW, 1, 1);
    ck_assert(add(rt, "alice", 1, T0, T0));
    ck_assert(add(rt, "bob", 2, T0, T0));
    ck_assert_uint_eq(realtime_size(rt), 1);
    ck_assert_uint_eq(realtime_users(rt), 1);
    expect(rt, "bob", 0, 10, T0, IDS(2), 1);
    ck_assert(add(rt, "bob", 3, T0, T0));
    expect(rt, "bob", 0, 10, T0, IDS(3), 1);
    ck_assert_uint_eq(realtime_size(rt), 1);
    realtime_destroy(rt);

    rt = realtime_create(WINDOW, 0, 10);
    ck_assert(!add(rt, "alice", 1, T0, T0));
    ck_assert_uint_eq(realtime_size(rt), 0);
    ck_assert_uint_eq(realtime_users(rt), 0);
    realtime_destroy(rt);

    rt = realtime_create(WINDOW, 10, 0);
    ck_assert(!add(rt, "alice", 1, T0, T0));
    ck_assert_uint_eq(realtime_size(rt), 0);
    ck_assert_uint_eq(realtime_users(rt), 0);
    realtime_destroy(rt);
}
END_TEST

START_TEST(test_replays_ignored)
{
    realtime_t *rt = realtime_create(WINDOW, 100, 1000);
    ck_assert(add(rt, "alice", 5, T0, T0));
    ck_assert(!add(rt, "alice", 5, T0, T0));
    ck_assert(!add(rt, "alice", 3, T0, T0));
    ck_assert_uint_eq(realtime_size(rt), 1);
    /* replays are per user */
    ck_assert(add(rt, "bob", 3, T0, T0));
    ck_assert(add(rt, "alice", 6, T0, T0));
    expect(rt, "alice", 0, 10, T0, IDS(6, 5), 2);

    /* after a read the newest id is still remembered while the user has entries */
    ck_assert(realtime_mark_read(rt, U("alice"), 6));
    ck_assert(!add(rt, "alice", 6, T0, T0));
    expect(rt, "alice", 0, 10, T0, IDS(5), 1);
    realtime_destroy(rt);
}
END_TEST

START_TEST(test_mark_read)
{
    realtime_t *rt = realtime_create(WINDOW, 100, 1000);
    for (uint64_t id = 1; id <= 3; ++id)
        ck_assert(add(rt, "alice", id, T0, T0));
    ck_assert(add(rt, "bob", 4, T0, T0));

    ck_assert(realtime_mark_read(rt, U("alice"), 2));
    expect(rt, "alice", 0, 10, T0, IDS(3, 1), 2);
    ck_assert_uint_eq(realtime_size(rt), 3);
    ck_assert(!realtime_mark_read(rt, U("alice"), 2));
    ck_assert(!realtime_mark_read(rt, U("alice"), 99));
    ck_assert(!realtime_mark_read(rt, U("alice"), 0));
    ck_assert(!realtime_mark_read(rt, U("alice"), 4)); /* bob's */
    ck_assert(!realtime_mark_read(rt, U("nobody"), 1));
    ck_assert_uint_eq(realtime_size(rt), 3);

    ck_assert(realtime_mark_read(rt, U("alice"), 1));
    ck_assert(realtime_mark_read(rt, U("alice"), 3));
    ck_assert_uint_eq(realtime_size(rt), 1);
    ck_assert_uint_eq(realtime_users(rt), 1);
    expect(rt, "alice", 0, 10, T0, NONE, 0);
    expect(rt, "bob", 0, 10, T0, IDS(4), 1);

    /* a user whose only entry is read leaves nothing behind */
    ck_assert(add(rt, "carol", 5, T0, T0));
    ck_assert(realtime_mark_read(rt, U("carol"), 5));
    ck_assert_uint_eq(realtime_users(rt), 1);
    realtime_destroy(rt);
}
END_TEST

START_TEST(test_mark_all_read)
{
    realtime_t *rt = realtime_create(WINDOW, 100, 1000);
    for (uint64_t id = 1; id <= 5; ++id)
        ck_assert(add(rt, "alice", id * 10, T0, T0));
    ck_assert(add(rt, "bob", 60, T0, T0));

    ck_assert_uint_eq(realtime_mark_all_read(rt, U("alice"), 5), 0);
    ck_assert_uint_eq(realtime_mark_all_read(rt, U("alice"), 30), 3);
    expect(rt, "alice", 0, 10, T0, IDS(50, 40), 2);
    ck_assert_uint_eq(realtime_size(rt), 3);
    ck_assert_uint_eq(realtime_mark_all_read(rt, U("alice"), 30), 0);
    ck_assert_uint_eq(realtime_mark_all_read(rt, U("nobody"), UINT64_MAX), 0);

    ck_assert_uint_eq(realtime_mark_all_read(rt, U("alice"), UINT64_MAX), 2);
    ck_assert_uint_eq(realtime_users(rt), 1);
    ck_assert_uint_eq(realtime_size(rt), 1);
    expect(rt, "alice", 0, 10, T0, NONE, 0);
    expect(rt, "bob", 0, 10, T0, IDS(60), 1);

    /* upto exactly the newest takes them all */
    ck_assert_uint_eq(realtime_mark_all_read(rt, U("bob"), 60), 1);
    ck_assert_uint_eq(realtime_users(rt), 0);
    ck_assert_uint_eq(realtime_size(rt), 0);
    realtime_destroy(rt);
}
END_TEST

START_TEST(test_users_freed_when_empty)
{
    /* users come and go many times over, through every way of emptying them, next to one that stays (until the
     * window passes); the counts stay exact */
    realtime_t *rt = realtime_create(1000, 4, 64);
    uint64_t id = 1;
    int64_t now = T0;
    for (int round = 0; round < 200; ++round) {
        char user[16];
        snprintf(user, sizeof(user), "u%d", round % 7);
        ck_assert(add(rt, "other", id, now, now));
        ck_assert(add(rt, user, id + 1, now, now));
        ck_assert(add(rt, user, id + 2, now, now));
        size_t users = realtime_users(rt), size = realtime_size(rt);
        ck_assert_uint_eq(users, 2);
        switch (round % 3) {
        case 0:
            ck_assert(realtime_mark_read(rt, U(user), id + 1));
            ck_assert(realtime_mark_read(rt, U(user), id + 2));
            break;
        case 1:
            ck_assert_uint_eq(realtime_mark_all_read(rt, U(user), id + 2), 2);
            break;
        default:
            now += 1001;
            realtime_expire(rt, now);
            break;
        }
        id += 3;
        if (round % 3 != 2) {
            ck_assert_uint_eq(realtime_users(rt), users - 1);
            ck_assert_uint_eq(realtime_size(rt), size - 2);
            expect(rt, user, 0, 10, now, NONE, 0);
        } else {
            ck_assert_uint_eq(realtime_users(rt), 0);
            ck_assert_uint_eq(realtime_size(rt), 0);
        }
    }
    realtime_destroy(rt);
}
END_TEST

START_TEST(test_unread_count)
{
    realtime_t *rt = realtime_create(1000, 100, 1000);
    for (uint64_t id = 1; id <= 30; ++id)
        ck_assert(add(rt, "alice", id, T0 + (int64_t)id * 10, T0 + (int64_t)id * 10));
    /* the count covers the whole window, whatever before and limit select */
    expect(rt, "alice", 0, 3, T0 + 300, IDS(30, 29, 28), 30);
    expect(rt, "alice", 5, 3, T0 + 300, IDS(4, 3, 2), 30);
    /* 1000 ms after id 10's time, ids below 10 are out of the window */
    expect(rt, "alice", 0, 1, T0 + 1100, IDS(30), 21);
    expect(rt, "alice", 12, 5, T0 + 1100, IDS(11, 10), 21);
    ck_assert(realtime_mark_read(rt, U("alice"), 30));
    expect(rt, "alice", 0, 1, T0 + 1100, IDS(29), 20);
    realtime_destroy(rt);
}
END_TEST

START_TEST(test_destroy_with_entries)
{
    /* destroy frees everything (checked by ASan/LSan in sanitizer builds) */
    realtime_t *rt = realtime_create(WINDOW, 50, 500);
    for (uint64_t id = 1; id <= 1000; ++id) {
        char user[16];
        snprintf(user, sizeof(user), "user-%llu", (unsigned long long)(id % 37));
        ck_assert(add(rt, user, id, T0, T0));
    }
    ck_assert_uint_eq(realtime_size(rt), 500);
    ck_assert_uint_eq(realtime_users(rt), 37);
    realtime_destroy(rt);
}
END_TEST

static Suite *realtime_suite(void)
{
    Suite *s = suite_create("realtime");
    TCase *tc = tcase_create("realtime");
    tcase_add_test(tc, test_add_query_newest_first);
    tcase_add_test(tc, test_before_and_limit);
    tcase_add_test(tc, test_window);
    tcase_add_test(tc, test_per_user_cap);
    tcase_add_test(tc, test_total_cap);
    tcase_add_test(tc, test_caps_of_one_and_zero);
    tcase_add_test(tc, test_replays_ignored);
    tcase_add_test(tc, test_mark_read);
    tcase_add_test(tc, test_mark_all_read);
    tcase_add_test(tc, test_users_freed_when_empty);
    tcase_add_test(tc, test_unread_count);
    tcase_add_test(tc, test_destroy_with_entries);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(realtime_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

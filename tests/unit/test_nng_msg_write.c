/*
 * Unit tests of common/nng_msg_write.c: appending an encoder's many small writes to an nng message.
 */
#include <check.h>
#include <nng/nng.h>
#include <stdlib.h>
#include <string.h>
#include "nng_msg_write.h"
#include "proto.h"

/* The bytes come out whole and in order, and the body grows by doubling: nng 1.5.2's own append would have made a new
 * buffer for each of these writes (the count of capacity changes would equal the number of writes). */
START_TEST(test_small_writes_grow_by_doubling)
{
    nng_msg *m;
    ck_assert_int_eq(nng_msg_alloc(&m, 0), 0);
    char expect[3000];
    size_t changes = 0, cap = nng_msg_capacity(m);
    for (int i = 0; i < 1000; ++i) {
        char piece[3] = {(char)('a' + i % 26), (char)('0' + i % 10), (char)i};
        memcpy(expect + 3 * i, piece, 3);
        ck_assert_int_eq(nng_msg_write(m, piece, 3), 0);
        if (nng_msg_capacity(m) != cap) {
            cap = nng_msg_capacity(m);
            ++changes;
        }
    }
    ck_assert_uint_eq(nng_msg_len(m), sizeof(expect));
    ck_assert_int_eq(memcmp(nng_msg_body(m), expect, sizeof(expect)), 0);
    ck_assert_uint_le(changes, 4); /* 512, 1024, 2048, 4096 */
    nng_msg_free(m);
}
END_TEST

/* A write larger than twice the capacity still lands whole, and a message that had bytes keeps them. */
START_TEST(test_large_write_after_header)
{
    nng_msg *m;
    ck_assert_int_eq(nng_msg_alloc(&m, 0), 0);
    ck_assert_int_eq(nng_msg_write(m, "head", 4), 0);
    size_t n = 100000;
    char *big = malloc(n);
    ck_assert_ptr_nonnull(big);
    for (size_t i = 0; i < n; ++i)
        big[i] = (char)(i * 7);
    ck_assert_int_eq(nng_msg_write(m, big, n), 0);
    ck_assert_uint_eq(nng_msg_len(m), n + 4);
    ck_assert_int_eq(memcmp(nng_msg_body(m), "head", 4), 0);
    ck_assert_int_eq(memcmp((char *)nng_msg_body(m) + 4, big, n), 0);
    free(big);
    nng_msg_free(m);
}
END_TEST

/* As the proto encoders' writer: a 20-notification reply decodes back from the message. */
START_TEST(test_as_proto_writer)
{
    proto_notification_t items[20];
    for (int i = 0; i < 20; ++i)
        items[i] = (proto_notification_t){.id = 100 + (uint64_t)i, .ts = 1700000000000 + i, .user_id = {"alice", 5},
                                          .message = {"your order shipped", 18}, .kind = {"order", 5}, .read = i % 2};
    proto_reply_t rep = {.status = PROTO_ST_OK, .list = true, .items = items, .nitems = 20, .unread_count = 10},
                  back;
    nng_msg *m;
    ck_assert_int_eq(nng_msg_alloc(&m, 0), 0);
    ck_assert_int_eq(proto_reply_encode(&rep, nng_msg_write, m), 0);
    ck_assert_int_eq(proto_reply_decode(&back, nng_msg_body(m), nng_msg_len(m)), 0);
    ck_assert_uint_eq(back.nitems, 20);
    ck_assert_uint_eq(back.items[19].id, 119);
    ck_assert(back.items[19].read);
    ck_assert_uint_eq(back.unread_count, 10);
    proto_reply_dispose(&back);
    nng_msg_free(m);
}
END_TEST

static Suite *nng_msg_write_suite(void)
{
    Suite *s = suite_create("nng_msg_write");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_small_writes_grow_by_doubling);
    tcase_add_test(tc, test_large_write_after_header);
    tcase_add_test(tc, test_as_proto_writer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(nng_msg_write_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

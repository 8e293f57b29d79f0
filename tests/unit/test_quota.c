/*
 * Unit tests of gateway/quota.c: the token bucket, the table of counts and the table of buckets behind the gateway's
 * limits, on a fake clock.
 */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include "quota.h"

#define SEC 1000000ull

/* A key whose slot is chosen by slot (the table indexes by the first 8 bytes) and told apart by id. */
static quota_key_t key_at(uint64_t slot, uint32_t id)
{
    quota_key_t k;
    memset(&k, 0, sizeof(k));
    memcpy(k.b, &slot, sizeof(slot));
    memcpy(k.b + 8, &id, sizeof(id));
    return k;
}

START_TEST(test_bucket_burst_then_rate)
{
    quota_bucket_t b;
    uint64_t now = 1000 * SEC, retry = 0;
    quota_bucket_init(&b, 5, now);
    for (int i = 0; i < 5; ++i)
        ck_assert(quota_bucket_take(&b, 2, 5, now, &retry)); /* the burst passes at once */
    ck_assert(!quota_bucket_take(&b, 2, 5, now, &retry));
    ck_assert_uint_ge(retry, SEC / 2); /* 2 a second: the next token in half a second */
    ck_assert_uint_le(retry, SEC / 2 + 10);
    ck_assert(!quota_bucket_take(&b, 2, 5, now + SEC / 4, &retry));
    ck_assert_uint_ge(retry, SEC / 4);
    ck_assert_uint_le(retry, SEC / 4 + 10);
    ck_assert(quota_bucket_take(&b, 2, 5, now + SEC / 2, &retry)); /* refilled one */
    ck_assert(!quota_bucket_take(&b, 2, 5, now + SEC / 2, &retry));
    /* a long idle time refills up to the burst, not beyond */
    ck_assert(!quota_bucket_is_full(&b, 2, 5, now + SEC));
    ck_assert(quota_bucket_is_full(&b, 2, 5, now + 100 * SEC));
    int passed = 0;
    while (quota_bucket_take(&b, 2, 5, now + 100 * SEC, NULL))
        ++passed;
    ck_assert_int_eq(passed, 5);
    /* a clock going back refills nothing */
    ck_assert(!quota_bucket_take(&b, 2, 5, now, NULL));
}
END_TEST

START_TEST(test_counts_limit_and_back_to_zero)
{
    quota_counts_t *t = quota_counts_create(1024);
    quota_key_t a = key_at(7, 1), b = key_at(7, 2); /* same slot, different keys */
    uint32_t n = 0;
    for (uint32_t i = 1; i <= 3; ++i) {
        ck_assert_int_eq(quota_counts_acquire(t, &a, 3, &n), QUOTA_OK);
        ck_assert_uint_eq(n, i);
    }
    ck_assert_int_eq(quota_counts_acquire(t, &a, 3, &n), QUOTA_OVER);
    ck_assert_uint_eq(quota_counts_get(t, &a), 3); /* a refusal counts nothing */
    ck_assert_int_eq(quota_counts_acquire(t, &b, 3, &n), QUOTA_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(quota_counts_size(t), 2);
    quota_counts_release(t, &a);
    ck_assert_int_eq(quota_counts_acquire(t, &a, 3, NULL), QUOTA_OK); /* room again */
    for (int i = 0; i < 3; ++i)
        quota_counts_release(t, &a);
    ck_assert_uint_eq(quota_counts_get(t, &a), 0);
    quota_counts_release(t, &b);
    ck_assert_uint_eq(quota_counts_size(t), 0); /* entries go at 0 */
    quota_counts_release(t, &b);                /* a release without an acquire changes nothing */
    ck_assert_uint_eq(quota_counts_size(t), 0);
    ck_assert_int_eq(quota_counts_acquire(t, &a, 0, NULL), QUOTA_OVER); /* a limit of 0 admits nothing */
    quota_counts_destroy(t);
}
END_TEST

START_TEST(test_counts_window_full)
{
    quota_counts_t *t = quota_counts_create(4096);
    quota_key_t keys[QUOTA_WINDOW + 1];
    for (uint32_t i = 0; i <= QUOTA_WINDOW; ++i)
        keys[i] = key_at(100, i); /* all aimed at one slot: one window */
    for (uint32_t i = 0; i < QUOTA_WINDOW; ++i)
        ck_assert_int_eq(quota_counts_acquire(t, &keys[i], 10, NULL), QUOTA_OK);
    ck_assert_int_eq(quota_counts_acquire(t, &keys[QUOTA_WINDOW], 10, NULL), QUOTA_FULL);
    ck_assert_int_eq(quota_counts_acquire(t, &keys[3], 10, NULL), QUOTA_OK); /* a key already in gets on */
    ck_assert_uint_eq(quota_counts_size(t), QUOTA_WINDOW);
    quota_key_t elsewhere = key_at(2000, 0); /* another window has room */
    ck_assert_int_eq(quota_counts_acquire(t, &elsewhere, 10, NULL), QUOTA_OK);
    quota_counts_release(t, &keys[5]); /* its slot frees */
    ck_assert_int_eq(quota_counts_acquire(t, &keys[QUOTA_WINDOW], 10, NULL), QUOTA_OK);
    ck_assert_uint_eq(quota_counts_get(t, &keys[QUOTA_WINDOW]), 1);
    quota_counts_destroy(t);
}
END_TEST

START_TEST(test_counts_capacity_is_bounded)
{
    quota_counts_t *t = quota_counts_create(100); /* rounded up to 128 */
    size_t ok = 0;
    for (uint32_t i = 0; i < 1000; ++i) {
        quota_key_t k = key_at((uint64_t)i * 0x9e3779b97f4a7c15ull, i);
        if (quota_counts_acquire(t, &k, 1, NULL) == QUOTA_OK)
            ++ok;
    }
    ck_assert_uint_le(ok, 128);
    ck_assert_uint_ge(ok, 64); /* most of the table is usable */
    ck_assert_uint_eq(quota_counts_size(t), ok);
    quota_counts_destroy(t);
}
END_TEST

typedef struct {
    quota_counts_t *t;
    int base;
} worker_arg_t;

static void *hammer(void *p)
{
    worker_arg_t *a = p;
    for (int round = 0; round < 2000; ++round) {
        quota_key_t k = key_at((uint64_t)(round % 37) * 7919, (uint32_t)(round % 37));
        if (quota_counts_acquire(a->t, &k, 1000000, NULL) == QUOTA_OK)
            quota_counts_release(a->t, &k);
    }
    return NULL;
}

START_TEST(test_counts_threads)
{
    quota_counts_t *t = quota_counts_create(1024);
    pthread_t th[4];
    worker_arg_t args[4];
    for (int i = 0; i < 4; ++i) {
        args[i] = (worker_arg_t){t, i};
        pthread_create(&th[i], NULL, hammer, &args[i]);
    }
    for (int i = 0; i < 4; ++i)
        pthread_join(th[i], NULL);
    ck_assert_uint_eq(quota_counts_size(t), 0);
    quota_counts_destroy(t);
}
END_TEST

START_TEST(test_buckets_rate_and_refill)
{
    quota_buckets_t *t = quota_buckets_create(1024, 10, 3);
    quota_key_t a = key_at(1, 1), b = key_at(1, 2);
    uint64_t now = 50 * SEC, retry = 0;
    for (int i = 0; i < 3; ++i)
        ck_assert_int_eq(quota_buckets_take(t, &a, now, &retry), QUOTA_OK);
    ck_assert_int_eq(quota_buckets_take(t, &a, now, &retry), QUOTA_OVER);
    ck_assert_uint_ge(retry, SEC / 10);
    ck_assert_uint_le(retry, SEC / 10 + 10);
    ck_assert_int_eq(quota_buckets_take(t, &b, now, &retry), QUOTA_OK); /* each key its own bucket */
    ck_assert_int_eq(quota_buckets_take(t, &a, now + SEC / 10, &retry), QUOTA_OK);
    ck_assert_int_eq(quota_buckets_take(t, &a, now + SEC / 10, &retry), QUOTA_OVER);
    ck_assert_uint_eq(quota_buckets_size(t), 2);
    quota_buckets_destroy(t);
}
END_TEST

START_TEST(test_buckets_idle_evicted_and_cap)
{
    quota_buckets_t *t = quota_buckets_create(16, 1, 2); /* one window */
    uint64_t now = 10 * SEC, retry = 0;
    quota_key_t keys[QUOTA_WINDOW + 1];
    for (uint32_t i = 0; i <= QUOTA_WINDOW; ++i)
        keys[i] = key_at(0, i);
    for (uint32_t i = 0; i < QUOTA_WINDOW; ++i)
        ck_assert_int_eq(quota_buckets_take(t, &keys[i], now, &retry), QUOTA_OK);
    ck_assert_uint_eq(quota_buckets_size(t), QUOTA_WINDOW);
    /* every bucket is in use: a new key has no room, and is told when a slot frees (one token short of full: 1 s) */
    ck_assert_int_eq(quota_buckets_take(t, &keys[QUOTA_WINDOW], now, &retry), QUOTA_FULL);
    ck_assert_uint_ge(retry, SEC);
    ck_assert_uint_le(retry, SEC + 10);
    /* once a bucket has refilled it is the same as no entry: the new key takes a slot, and the refilled buckets the
     * lookup walked past went too */
    ck_assert_int_eq(quota_buckets_take(t, &keys[QUOTA_WINDOW], now + SEC, &retry), QUOTA_OK);
    ck_assert_uint_eq(quota_buckets_size(t), 1);
    ck_assert_uint_eq(quota_buckets_sweep(t, now + SEC + SEC / 2, 16), 0); /* its bucket is not full yet */
    ck_assert_uint_eq(quota_buckets_sweep(t, now + 2 * SEC, 16), 1);
    ck_assert_uint_eq(quota_buckets_size(t), 0);
    quota_buckets_destroy(t);
}
END_TEST

START_TEST(test_buckets_sweep)
{
    quota_buckets_t *t = quota_buckets_create(64, 1, 2);
    uint64_t now = 10 * SEC;
    for (uint32_t i = 0; i < 20; ++i) {
        quota_key_t k = key_at((uint64_t)i * 3, i);
        ck_assert_int_eq(quota_buckets_take(t, &k, now, NULL), QUOTA_OK);
    }
    ck_assert_uint_eq(quota_buckets_size(t), 20);
    ck_assert_uint_eq(quota_buckets_sweep(t, now + SEC / 2, 64), 0); /* none refilled yet */
    size_t freed = 0;
    for (int i = 0; i < 4; ++i)
        freed += quota_buckets_sweep(t, now + SEC, 16); /* a quarter of the table each call */
    ck_assert_uint_eq(freed, 20);
    ck_assert_uint_eq(quota_buckets_size(t), 0);
    quota_buckets_destroy(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quota");
    TCase *tc = tcase_create("quota");
    tcase_add_test(tc, test_bucket_burst_then_rate);
    tcase_add_test(tc, test_counts_limit_and_back_to_zero);
    tcase_add_test(tc, test_counts_window_full);
    tcase_add_test(tc, test_counts_capacity_is_bounded);
    tcase_add_test(tc, test_counts_threads);
    tcase_add_test(tc, test_buckets_rate_and_refill);
    tcase_add_test(tc, test_buckets_idle_evicted_and_cap);
    tcase_add_test(tc, test_buckets_sweep);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

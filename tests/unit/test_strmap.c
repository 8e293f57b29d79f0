/*
 * Unit tests of common/strmap.c: the keyed hash map from byte strings to pointers.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "strmap.h"

#define LIT(s) (s), sizeof(s) - 1

/* distinct non-NULL values */
static int values[10000];
#define V(i) ((void *)&values[(i)])

START_TEST(test_hash_is_keyed)
{
    /* SipHash-1-3 is deterministic under one key, and another key (or other bytes) gives another value */
    uint64_t a = strmap_hash(LIT("alice"), 1, 2);
    ck_assert_uint_eq(a, strmap_hash(LIT("alice"), 1, 2));
    ck_assert_uint_ne(a, strmap_hash(LIT("alice"), 1, 3));
    ck_assert_uint_ne(a, strmap_hash(LIT("alice"), 0, 2));
    ck_assert_uint_ne(a, strmap_hash(LIT("alicf"), 1, 2));
    ck_assert_uint_ne(strmap_hash("", 0, 1, 2), strmap_hash("", 0, 1, 3));
}
END_TEST

START_TEST(test_set_get_replace_remove)
{
    strmap_t *m = strmap_create();
    ck_assert_uint_eq(strmap_size(m), 0);
    ck_assert_ptr_null(strmap_get(m, LIT("alice")));

    strmap_set(m, LIT("alice"), V(1));
    strmap_set(m, LIT("bob"), V(2));
    ck_assert_uint_eq(strmap_size(m), 2);
    ck_assert_ptr_eq(strmap_get(m, LIT("alice")), V(1));
    ck_assert_ptr_eq(strmap_get(m, LIT("bob")), V(2));
    ck_assert_ptr_null(strmap_get(m, LIT("carol")));
    /* prefixes and extensions are other keys */
    ck_assert_ptr_null(strmap_get(m, LIT("alic")));
    ck_assert_ptr_null(strmap_get(m, LIT("alice2")));
    ck_assert_ptr_null(strmap_get(m, LIT("ALICE")));

    /* replacing keeps the size */
    strmap_set(m, LIT("alice"), V(3));
    ck_assert_uint_eq(strmap_size(m), 2);
    ck_assert_ptr_eq(strmap_get(m, LIT("alice")), V(3));

    ck_assert_ptr_eq(strmap_remove(m, LIT("alice")), V(3));
    ck_assert_uint_eq(strmap_size(m), 1);
    ck_assert_ptr_null(strmap_get(m, LIT("alice")));
    ck_assert_ptr_null(strmap_remove(m, LIT("alice")));
    ck_assert_ptr_null(strmap_remove(m, LIT("nobody")));
    ck_assert_uint_eq(strmap_size(m), 1);
    ck_assert_ptr_eq(strmap_get(m, LIT("bob")), V(2));

    /* and back again */
    strmap_set(m, LIT("alice"), V(4));
    ck_assert_ptr_eq(strmap_get(m, LIT("alice")), V(4));
    ck_assert_uint_eq(strmap_size(m), 2);
    strmap_destroy(m);
}
END_TEST

START_TEST(test_key_is_copied)
{
    strmap_t *m = strmap_create();
    char key[8];
    strcpy(key, "temp");
    strmap_set(m, key, 4, V(1));
    strcpy(key, "XXXX");
    ck_assert_ptr_eq(strmap_get(m, LIT("temp")), V(1));
    ck_assert_ptr_null(strmap_get(m, LIT("XXXX")));
    strmap_destroy(m);
}
END_TEST

START_TEST(test_binary_and_empty_keys)
{
    strmap_t *m = strmap_create();
    strmap_set(m, "", 0, V(1));
    strmap_set(m, "a\0b", 3, V(2));
    strmap_set(m, "a\0c", 3, V(3));
    strmap_set(m, "a", 1, V(4));
    strmap_set(m, "\0", 1, V(5));
    strmap_set(m, "\0\0", 2, V(6));
    strmap_set(m, "\xff\xfe", 2, V(7));
    ck_assert_uint_eq(strmap_size(m), 7);
    ck_assert_ptr_eq(strmap_get(m, "", 0), V(1));
    ck_assert_ptr_eq(strmap_get(m, "a\0b", 3), V(2));
    ck_assert_ptr_eq(strmap_get(m, "a\0c", 3), V(3));
    ck_assert_ptr_eq(strmap_get(m, "a", 1), V(4));
    ck_assert_ptr_eq(strmap_get(m, "\0", 1), V(5));
    ck_assert_ptr_eq(strmap_get(m, "\0\0", 2), V(6));
    ck_assert_ptr_eq(strmap_get(m, "\xff\xfe", 2), V(7));
    ck_assert_ptr_null(strmap_get(m, "a\0", 2));
    ck_assert_ptr_null(strmap_get(m, "\0\0\0", 3));

    ck_assert_ptr_eq(strmap_remove(m, "", 0), V(1));
    ck_assert_ptr_null(strmap_get(m, "", 0));
    ck_assert_ptr_eq(strmap_get(m, "\0", 1), V(5));
    ck_assert_ptr_eq(strmap_remove(m, "a\0b", 3), V(2));
    ck_assert_ptr_eq(strmap_get(m, "a\0c", 3), V(3));
    ck_assert_uint_eq(strmap_size(m), 5);
    strmap_destroy(m);
}
END_TEST

static size_t key_of(char *buf, size_t bufsz, int i)
{
    /* lengths from 1 to 30 so that every tail length of the hash is used */
    int n = snprintf(buf, bufsz, "key-%d-", i);
    while (n < (int)bufsz - 1 && n < 1 + i % 30)
        buf[n++] = (char)('a' + i % 26);
    return (size_t)n;
}

START_TEST(test_many_keys)
{
    enum { N = 10000 };
    strmap_t *m = strmap_create();
    char key[64];
    for (int i = 0; i < N; ++i) {
        size_t len = key_of(key, sizeof(key), i);
        ck_assert_ptr_null(strmap_get(m, key, len));
        strmap_set(m, key, len, V(i));
        ck_assert_uint_eq(strmap_size(m), (size_t)i + 1);
    }
    for (int i = 0; i < N; ++i) {
        size_t len = key_of(key, sizeof(key), i);
        ck_assert_msg(strmap_get(m, key, len) == V(i), "key %d", i);
    }
    /* remove every other key; the rest stay */
    for (int i = 0; i < N; i += 2) {
        size_t len = key_of(key, sizeof(key), i);
        ck_assert_ptr_eq(strmap_remove(m, key, len), V(i));
    }
    ck_assert_uint_eq(strmap_size(m), N / 2);
    for (int i = 0; i < N; ++i) {
        size_t len = key_of(key, sizeof(key), i);
        ck_assert_ptr_eq(strmap_get(m, key, len), i % 2 ? V(i) : NULL);
    }
    /* re-adding with new values */
    for (int i = 0; i < N; i += 2) {
        size_t len = key_of(key, sizeof(key), i);
        strmap_set(m, key, len, V(N - 1 - i));
    }
    ck_assert_uint_eq(strmap_size(m), N);
    for (int i = 0; i < N; i += 2) {
        size_t len = key_of(key, sizeof(key), i);
        ck_assert_ptr_eq(strmap_get(m, key, len), V(N - 1 - i));
    }
    strmap_destroy(m);
}
END_TEST

typedef struct st_visit_t {
    unsigned seen[10000];
    size_t calls;
    bool bad;
} visit_t;

static void visit(const char *key, size_t len, void *value, void *data)
{
    visit_t *v = data;
    int i = (int)((int *)value - values);
    char want[64];
    ++v->calls;
    if (i < 0 || i >= 10000 || key_of(want, sizeof(want), i) != len || memcmp(want, key, len) != 0) {
        v->bad = true;
        return;
    }
    ++v->seen[i];
}

START_TEST(test_foreach)
{
    static visit_t v;
    strmap_t *m = strmap_create();
    char key[64];

    memset(&v, 0, sizeof(v));
    strmap_foreach(m, visit, &v);
    ck_assert_uint_eq(v.calls, 0);

    for (int i = 0; i < 3000; ++i) {
        size_t len = key_of(key, sizeof(key), i);
        strmap_set(m, key, len, V(i));
    }
    for (int i = 0; i < 3000; i += 3) {
        size_t len = key_of(key, sizeof(key), i);
        strmap_remove(m, key, len);
    }
    strmap_foreach(m, visit, &v);
    ck_assert(!v.bad);
    ck_assert_uint_eq(v.calls, strmap_size(m));
    ck_assert_uint_eq(v.calls, 2000);
    for (int i = 0; i < 3000; ++i)
        ck_assert_msg(v.seen[i] == (i % 3 ? 1u : 0u), "key %d visited %u times", i, v.seen[i]);
    strmap_destroy(m);
}
END_TEST

static Suite *strmap_suite(void)
{
    Suite *s = suite_create("strmap");
    TCase *tc = tcase_create("strmap");
    tcase_add_test(tc, test_set_get_replace_remove);
    tcase_add_test(tc, test_hash_is_keyed);
    tcase_add_test(tc, test_key_is_copied);
    tcase_add_test(tc, test_binary_and_empty_keys);
    tcase_add_test(tc, test_many_keys);
    tcase_add_test(tc, test_foreach);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(strmap_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

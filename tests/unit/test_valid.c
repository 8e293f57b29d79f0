/*
 * Unit tests of common/valid.c: user ids, kinds, UTF-8 and message bounds.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include "valid.h"
#include "unit_check.h"

#define LIT(s) (s), sizeof(s) - 1

START_TEST(test_user_id_lengths)
{
    char buf[VALID_USER_ID_MAX + 2];
    memset(buf, 'a', sizeof(buf));
    ck_assert(!valid_user_id(buf, 0));
    ck_assert(valid_user_id(buf, 1));
    ck_assert(valid_user_id(buf, VALID_USER_ID_MAX - 1));
    ck_assert(valid_user_id(buf, VALID_USER_ID_MAX));
    ck_assert(!valid_user_id(buf, VALID_USER_ID_MAX + 1));
    ck_assert(!valid_user_id(buf, VALID_USER_ID_MAX + 2));
    ck_assert_int_eq(VALID_USER_ID_MAX, 64);
}
END_TEST

START_TEST(test_user_id_characters)
{
    ck_assert(valid_user_id(LIT("abcdefghijklmnopqrstuvwxyz")));
    ck_assert(valid_user_id(LIT("ABCDEFGHIJKLMNOPQRSTUVWXYZ")));
    ck_assert(valid_user_id(LIT("0123456789")));
    ck_assert(valid_user_id(LIT("user_1.test-2")));
    ck_assert(valid_user_id(LIT("_")));
    ck_assert(valid_user_id(LIT(".")));
    ck_assert(valid_user_id(LIT("-")));

    /* every other byte, alone and in the middle of a good id */
    for (int c = 0; c < 256; ++c) {
        bool allowed =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
        char one = (char)c, mid[3] = {'a', (char)c, 'b'};
        REQUIRE(valid_user_id(&one, 1) == allowed, "byte 0x%02x", c);
        REQUIRE(valid_user_id(mid, 3) == allowed, "byte 0x%02x inside", c);
    }
    ck_assert(!valid_user_id(LIT("al ice")));
    ck_assert(!valid_user_id(LIT("alice/bob")));
    ck_assert(!valid_user_id(LIT("alice%20")));
    ck_assert(!valid_user_id(LIT("\xc3\xa9tienne")));
    ck_assert(!valid_user_id("a\0b", 3));
    /* only len bytes count: what follows is not looked at */
    ck_assert(valid_user_id("ab cd", 2));
}
END_TEST

START_TEST(test_kind)
{
    char buf[VALID_KIND_MAX + 1];
    memset(buf, 'k', sizeof(buf));
    ck_assert(!valid_kind(buf, 0));
    ck_assert(valid_kind(buf, 1));
    ck_assert(valid_kind(buf, VALID_KIND_MAX));
    ck_assert(!valid_kind(buf, VALID_KIND_MAX + 1));
    ck_assert_int_eq(VALID_KIND_MAX, 32);
    ck_assert(valid_kind(LIT("info")));
    ck_assert(valid_kind(LIT("order.shipped-v2_x")));
    ck_assert(!valid_kind(LIT("order shipped")));
    ck_assert(!valid_kind(LIT("a:b")));
    ck_assert(!valid_kind(LIT("\xe2\x82\xac")));
}
END_TEST

START_TEST(test_utf8_valid)
{
    ck_assert(valid_utf8("", 0));
    ck_assert(valid_utf8(LIT("plain ascii ~\x7f")));
    ck_assert(valid_utf8(LIT("\xc2\x80")));         /* U+0080, smallest 2-byte */
    ck_assert(valid_utf8(LIT("\xc3\xa9")));         /* é */
    ck_assert(valid_utf8(LIT("\xdf\xbf")));         /* U+07FF, largest 2-byte */
    ck_assert(valid_utf8(LIT("\xe0\xa0\x80")));     /* U+0800, smallest 3-byte */
    ck_assert(valid_utf8(LIT("\xe2\x82\xac")));     /* € */
    ck_assert(valid_utf8(LIT("\xed\x9f\xbf")));     /* U+D7FF, just below the surrogates */
    ck_assert(valid_utf8(LIT("\xee\x80\x80")));     /* U+E000, just above */
    ck_assert(valid_utf8(LIT("\xef\xbf\xbf")));     /* U+FFFF */
    ck_assert(valid_utf8(LIT("\xf0\x90\x80\x80"))); /* U+10000, smallest 4-byte */
    ck_assert(valid_utf8(LIT("\xf0\x9f\x98\x80"))); /* 😀 */
    ck_assert(valid_utf8(LIT("\xf4\x8f\xbf\xbf"))); /* U+10FFFF, the last code point */
    ck_assert(valid_utf8(LIT("a\xc3\xa9"
                             "b\xe2\x82\xac"
                             "c\xf0\x9f\x98\x80"
                             "d")));
}
END_TEST

START_TEST(test_utf8_invalid)
{
    static const struct {
        const char *s;
        size_t len;
        const char *why;
    } cases[] = {
#define C(lit, why) {lit, sizeof(lit) - 1, why}
        C("\0", "NUL byte"),
        C("ab\0cd", "NUL inside"),
        C("\xc0\x80", "overlong NUL"),
        C("\xc0\xaf", "overlong '/'"),
        C("\xc1\xbf", "overlong 2-byte"),
        C("\xe0\x80\xaf", "overlong 3-byte"),
        C("\xe0\x9f\xbf", "overlong U+07FF in 3 bytes"),
        C("\xf0\x80\x80\xaf", "overlong 4-byte"),
        C("\xf0\x8f\xbf\xbf", "overlong U+FFFF in 4 bytes"),
        C("\xed\xa0\x80", "surrogate U+D800"),
        C("\xed\xbf\xbf", "surrogate U+DFFF"),
        C("\xed\xa0\xbd\xed\xb8\x80", "surrogate pair (CESU-8)"),
        C("\xf4\x90\x80\x80", "U+110000"),
        C("\xf5\x80\x80\x80", "lead byte 0xf5"),
        C("\xf7\xbf\xbf\xbf", "lead byte 0xf7"),
        C("\xf8\x88\x80\x80\x80", "5-byte form"),
        C("\xfc\x84\x80\x80\x80\x80", "6-byte form"),
        C("\xfe", "0xfe"),
        C("\xff", "0xff"),
        C("\x80", "lone continuation"),
        C("a\xbf", "continuation after ascii"),
        C("\xc3", "truncated 2-byte"),
        C("\xe2\x82", "truncated 3-byte"),
        C("\xe2", "truncated 3-byte, lead only"),
        C("\xf0\x9f\x98", "truncated 4-byte"),
        C("abc\xf0\x9f", "truncated at the end"),
        C("\xc3(", "bad continuation"),
        C("\xe2\x28\xa1", "bad second byte"),
        C("\xe2\x82\x28", "bad third byte"),
        C("\xf0\x9f\x98\x28", "bad fourth byte"),
        C("\xc3\xa9\xa9", "extra continuation"),
#undef C
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i)
        ck_assert_msg(!valid_utf8(cases[i].s, cases[i].len), "accepted: %s", cases[i].why);

    /* a valid sequence cut by len: the bytes after len are not read */
    ck_assert(!valid_utf8("\xe2\x82\xac", 2));
    ck_assert(valid_utf8("a\xe2\x82\xac", 1));
}
END_TEST

START_TEST(test_utf8_all_two_byte_and_surrogates)
{
    /* exhaustively: every 2-byte and 3-byte encoding is valid exactly when it is the shortest form and no surrogate */
    for (unsigned b0 = 0xc0; b0 <= 0xdf; ++b0) {
        for (unsigned b1 = 0x80; b1 <= 0xbf; ++b1) {
            char s[2] = {(char)b0, (char)b1};
            REQUIRE(valid_utf8(s, 2) == (b0 >= 0xc2), "%02x %02x", b0, b1);
        }
    }
    for (unsigned cp = 0; cp <= 0xffff; ++cp) {
        char s[3] = {(char)(0xe0 | (cp >> 12)), (char)(0x80 | ((cp >> 6) & 0x3f)), (char)(0x80 | (cp & 0x3f))};
        REQUIRE(valid_utf8(s, 3) == (cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff)), "U+%04X", cp);
    }
}
END_TEST

START_TEST(test_message_bounds)
{
    static char buf[VALID_MESSAGE_MAX + 4];
    memset(buf, 'm', sizeof(buf));
    ck_assert(!valid_message(buf, 0));
    ck_assert(valid_message(buf, 1));
    ck_assert(valid_message(buf, VALID_MESSAGE_MAX));
    ck_assert(!valid_message(buf, VALID_MESSAGE_MAX + 1));
    ck_assert_int_eq(VALID_MESSAGE_MAX, 4096);

    /* the bound is in bytes, not characters: 1024 four-byte characters fit, one more byte does not */
    for (size_t i = 0; i < VALID_MESSAGE_MAX; i += 4)
        memcpy(buf + i, "\xf0\x9f\x98\x80", 4);
    ck_assert(valid_message(buf, VALID_MESSAGE_MAX));
    buf[VALID_MESSAGE_MAX] = 'x';
    ck_assert(!valid_message(buf, VALID_MESSAGE_MAX + 1));

    /* within bounds but not UTF-8 */
    ck_assert(!valid_message(LIT("bad \xff byte")));
    ck_assert(!valid_message("nul\0inside", 10));
    ck_assert(valid_message(LIT("caf\xc3\xa9")));
}
END_TEST

static Suite *valid_suite(void)
{
    Suite *s = suite_create("valid");
    TCase *tc = tcase_create("valid");
    tcase_add_test(tc, test_user_id_lengths);
    tcase_add_test(tc, test_user_id_characters);
    tcase_add_test(tc, test_kind);
    tcase_add_test(tc, test_utf8_valid);
    tcase_add_test(tc, test_utf8_invalid);
    tcase_add_test(tc, test_utf8_all_two_byte_and_surrogates);
    tcase_add_test(tc, test_message_bounds);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(valid_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

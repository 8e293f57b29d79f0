/*
 * Unit tests of gateway/json_out.c: escaping, integers, and output that jansson reads back to the same values.
 */
#include <check.h>
#include <inttypes.h>
#include <stdbool.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json_out.h"
#include "unit_check.h"

#define LIT(s) (s), sizeof(s) - 1

static bool out_is(const json_out_t *j, const char *want)
{
    return j->len == strlen(want) && memcmp(j->buf, want, j->len) == 0;
}

#define ck_assert_out(j, want) ck_assert_msg(out_is((j), (want)), "got [%.*s], want [%s]", (int)(j)->len, (j)->buf, (want))

/* Writes s as a JSON string and checks the text, then that jansson decodes it back to the same bytes. */
static void check_str(const char *s, size_t len, const char *want)
{
    json_out_t j = {NULL};
    json_error_t err;
    json_out_str(&j, s, len);
    ck_assert_out(&j, want);

    json_t *v = json_loadb(j.buf, j.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    ck_assert_msg(v != NULL, "jansson: %s in [%.*s]", err.text, (int)j.len, j.buf);
    ck_assert(json_is_string(v));
    ck_assert_uint_eq(json_string_length(v), len);
    ck_assert_mem_eq(json_string_value(v), s, len);
    json_decref(v);
    json_out_dispose(&j);
}

START_TEST(test_str_plain_and_empty)
{
    check_str("", 0, "\"\"");
    check_str(LIT("hello world"), "\"hello world\"");
    check_str(LIT("/slash/ and ' quote and \x7f"), "\"/slash/ and ' quote and \x7f\"");
}
END_TEST

START_TEST(test_str_escapes)
{
    check_str(LIT("say \"hi\""), "\"say \\\"hi\\\"\"");
    check_str(LIT("back\\slash"), "\"back\\\\slash\"");
    check_str(LIT("\\\""), "\"\\\\\\\"\"");
    check_str(LIT("a\nb\rc\td\be\ff"), "\"a\\nb\\rc\\td\\be\\ff\"");
    check_str("\0", 1, "\"\\u0000\"");
    check_str(LIT("\x01\x02\x1f"), "\"\\u0001\\u0002\\u001f\"");
    check_str(LIT("\x0b\x0e\x10\x1b"), "\"\\u000b\\u000e\\u0010\\u001b\"");
    check_str(LIT(" "), "\" \"");
}
END_TEST

START_TEST(test_str_every_control_character)
{
    for (unsigned c = 0; c < 0x20; ++c) {
        char in = (char)c, want[16];
        switch (c) {
        case '\b':
            strcpy(want, "\"\\b\"");
            break;
        case '\t':
            strcpy(want, "\"\\t\"");
            break;
        case '\n':
            strcpy(want, "\"\\n\"");
            break;
        case '\f':
            strcpy(want, "\"\\f\"");
            break;
        case '\r':
            strcpy(want, "\"\\r\"");
            break;
        default:
            snprintf(want, sizeof(want), "\"\\u%04x\"", c);
            break;
        }
        check_str(&in, 1, want);
    }
}
END_TEST

START_TEST(test_str_utf8_passthrough)
{
    check_str(LIT("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
    check_str(LIT("\xe2\x82\xac 5"), "\"\xe2\x82\xac 5\"");
    check_str(LIT("\xf0\x9f\x98\x80!"), "\"\xf0\x9f\x98\x80!\"");
    check_str(LIT("\xef\xbf\xbf\xf4\x8f\xbf\xbf"), "\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"");
    /* U+2028 and U+2029 are valid unescaped in JSON */
    check_str(LIT("\xe2\x80\xa8\xe2\x80\xa9"), "\"\xe2\x80\xa8\xe2\x80\xa9\"");
}
END_TEST

START_TEST(test_integers)
{
    static const struct {
        uint64_t v;
        const char *want;
    } u[] = {{0, "0"}, {1, "1"}, {9, "9"}, {10, "10"}, {1234567890, "1234567890"}, {UINT64_MAX, "18446744073709551615"}};
    static const struct {
        int64_t v;
        const char *want;
    } i[] = {{0, "0"},
             {-1, "-1"},
             {42, "42"},
             {-10, "-10"},
             {INT64_MAX, "9223372036854775807"},
             {INT64_MIN, "-9223372036854775808"},
             {INT64_MIN + 1, "-9223372036854775807"}};
    json_out_t j = {NULL};
    for (size_t k = 0; k < sizeof(u) / sizeof(u[0]); ++k) {
        json_out_reset(&j);
        json_out_u64(&j, u[k].v);
        ck_assert_out(&j, u[k].want);
    }
    for (size_t k = 0; k < sizeof(i) / sizeof(i[0]); ++k) {
        json_out_reset(&j);
        json_out_i64(&j, i[k].v);
        ck_assert_out(&j, i[k].want);
    }
    /* the signed ones read back with jansson (whose integers are 64-bit signed) */
    for (size_t k = 0; k < sizeof(i) / sizeof(i[0]); ++k) {
        json_error_t err;
        json_out_reset(&j);
        json_out_i64(&j, i[k].v);
        json_t *v = json_loadb(j.buf, j.len, JSON_DECODE_ANY, &err);
        ck_assert_ptr_nonnull(v);
        ck_assert(json_is_integer(v));
        ck_assert_int_eq(json_integer_value(v), i[k].v);
        json_decref(v);
    }
    json_out_dispose(&j);
}
END_TEST

START_TEST(test_document_roundtrip)
{
    /* an object as the gateway builds one, parsed back by jansson */
    static const char *const messages[] = {"plain",        "with \"quotes\" and \\",       "tab\there\nnewline",
                                           "\x01\x1f ctl", "\xe2\x82\xac\xf0\x9f\x98\x80", ""};
    json_out_t j = {NULL};
    json_error_t err;
    json_out_lit(&j, "{\"items\":[");
    for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); ++i) {
        if (i != 0)
            json_out_lit(&j, ",");
        json_out_lit(&j, "{\"id\":");
        json_out_u64(&j, 1000 + i);
        json_out_lit(&j, ",\"ts\":");
        json_out_i64(&j, -(int64_t)i);
        json_out_lit(&j, ",\"message\":");
        json_out_str(&j, messages[i], strlen(messages[i]));
        json_out_raw(&j, LIT("}"));
    }
    json_out_lit(&j, "],\"server\":");
    json_out_str(&j, LIT("notigate"));
    json_out_cstr(&j, ",\"done\":true}");

    json_t *root = json_loadb(j.buf, j.len, JSON_REJECT_DUPLICATES, &err);
    ck_assert_msg(root != NULL, "jansson: %s", err.text);
    json_t *items = json_object_get(root, "items");
    ck_assert_uint_eq(json_array_size(items), sizeof(messages) / sizeof(messages[0]));
    for (size_t i = 0; i < json_array_size(items); ++i) {
        json_t *item = json_array_get(items, i);
        ck_assert_int_eq(json_integer_value(json_object_get(item, "id")), 1000 + (json_int_t)i);
        ck_assert_int_eq(json_integer_value(json_object_get(item, "ts")), -(json_int_t)i);
        ck_assert_str_eq(json_string_value(json_object_get(item, "message")), messages[i]);
    }
    ck_assert_str_eq(json_string_value(json_object_get(root, "server")), "notigate");
    ck_assert(json_is_true(json_object_get(root, "done")));
    json_decref(root);
    json_out_dispose(&j);
    ck_assert_ptr_null(j.buf);
    ck_assert_uint_eq(j.len, 0);
    ck_assert_uint_eq(j.cap, 0);
}
END_TEST

START_TEST(test_growth)
{
    /* far beyond the first allocation, by every writer, checked byte for byte */
    json_out_t j = {NULL};
    size_t expect_len = 0;
    for (int i = 0; i < 5000; ++i) {
        json_out_u64(&j, UINT64_MAX);
        json_out_lit(&j, ",");
        json_out_str(&j, LIT("\x01\"")); /* 10 bytes of output from 2 of input */
        json_out_i64(&j, INT64_MIN);
        expect_len += 20 + 1 + 10 + 20;
        REQUIRE(j.len == expect_len && j.cap >= j.len, "len %zu cap %zu, want len %zu", j.len, j.cap, expect_len);
    }
    for (size_t off = 0; off < j.len; off += 51)
        REQUIRE(memcmp(j.buf + off, "18446744073709551615,\"\\u0001\\\"\"-9223372036854775808", 51) == 0, "at %zu", off);

    /* one string much larger than the buffer in one call */
    json_out_t big = {NULL};
    size_t n = 300000;
    char *s = malloc(n);
    memset(s, '"', n);
    json_out_str(&big, s, n);
    ck_assert_uint_eq(big.len, 2 * n + 2);
    ck_assert_int_eq(big.buf[0], '"');
    ck_assert_int_eq(big.buf[big.len - 1], '"');
    for (size_t i = 1; i + 1 < big.len; i += 2)
        REQUIRE(big.buf[i] == '\\' && big.buf[i + 1] == '"', "at %zu", i);

    /* reset keeps the memory and starts over */
    char *mem = big.buf;
    size_t cap = big.cap;
    json_out_reset(&big);
    json_out_lit(&big, "[]");
    ck_assert_out(&big, "[]");
    ck_assert_ptr_eq(big.buf, mem);
    ck_assert_uint_eq(big.cap, cap);

    free(s);
    json_out_dispose(&big);
    json_out_dispose(&j);
}
END_TEST

START_TEST(test_small_pieces_from_empty)
{
    json_out_t j = {NULL};
    json_out_raw(&j, "", 0);
    ck_assert_uint_eq(j.len, 0);
    json_out_cstr(&j, "[");
    json_out_u64(&j, 0);
    json_out_lit(&j, "]");
    ck_assert_out(&j, "[0]");
    json_out_dispose(&j);
}
END_TEST

static Suite *json_out_suite(void)
{
    Suite *s = suite_create("json_out");
    TCase *tc = tcase_create("json_out");
    tcase_add_test(tc, test_str_plain_and_empty);
    tcase_add_test(tc, test_str_escapes);
    tcase_add_test(tc, test_str_every_control_character);
    tcase_add_test(tc, test_str_utf8_passthrough);
    tcase_add_test(tc, test_integers);
    tcase_add_test(tc, test_document_roundtrip);
    tcase_add_test(tc, test_growth);
    tcase_add_test(tc, test_small_pieces_from_empty);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(json_out_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

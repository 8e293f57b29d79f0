/*
 * Unit tests of common/config.c: flags and environment variables. Check runs each test in its own forked child, so the
 * environment changes here do not leak from one test to the next.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "config.h"

/* The options under test, reset to their defaults before each parse. */
static const char *redis_url;
static const char *name;
static int64_t port, workers, offset, insecure;

static const config_option_t OPTIONS[] = {
    {"redis-url", NULL, CONFIG_STRING, &redis_url, 0, 0, "Redis to use"},
    {"name", NULL, CONFIG_STRING, &name, 0, 0, "replica name"},
    {"port", NULL, CONFIG_INT, &port, 1, 65535, "port to listen on"},
    {"workers", "NG_WORKERS", CONFIG_INT, &workers, 1, 64, "worker count"},
    {"offset", NULL, CONFIG_INT, &offset, INT64_MIN, INT64_MAX, "any integer"},
    {"insecure", "NG_INSECURE", CONFIG_BOOL, &insecure, 0, 1, "a switch"},
    {NULL},
};

static void defaults(void)
{
    redis_url = "redis://127.0.0.1:6379";
    name = NULL;
    port = 8080;
    workers = 4;
    offset = 0;
    insecure = 0;
    unsetenv("NG_INSECURE");
    unsetenv("REDIS_URL");
    unsetenv("NAME");
    unsetenv("PORT");
    unsetenv("WORKERS");
    unsetenv("NG_WORKERS");
    unsetenv("OFFSET");
}

/* Parses argv (NULL-terminated, program name first) after resetting the defaults. */
static config_result_t parse(char **argv)
{
    int argc = 0;
    while (argv[argc] != NULL)
        ++argc;
    return config_parse("prog", "A test program.", OPTIONS, argc, argv);
}

#define ARGV(...) ((char *[]){"prog", __VA_ARGS__, NULL})
#define NO_ARGS ((char *[]){"prog", NULL})

static void setup(void)
{
    defaults();
}

START_TEST(test_defaults_kept)
{
    ck_assert_int_eq(parse(NO_ARGS), CONFIG_OK);
    ck_assert_str_eq(redis_url, "redis://127.0.0.1:6379");
    ck_assert_ptr_null(name);
    ck_assert_int_eq(port, 8080);
    ck_assert_int_eq(workers, 4);
}
END_TEST

START_TEST(test_flag_forms)
{
    ck_assert_int_eq(parse(ARGV("--port=9000", "--redis-url", "redis://r:1", "--name", "a=b", "--workers=8")), CONFIG_OK);
    ck_assert_int_eq(port, 9000);
    ck_assert_str_eq(redis_url, "redis://r:1");
    ck_assert_str_eq(name, "a=b");
    ck_assert_int_eq(workers, 8);

    /* the value after a space may itself look like anything, e.g. start with dashes */
    defaults();
    ck_assert_int_eq(parse(ARGV("--name", "--port")), CONFIG_OK);
    ck_assert_str_eq(name, "--port");
    ck_assert_int_eq(port, 8080);

    /* an empty string after '=' */
    defaults();
    ck_assert_int_eq(parse(ARGV("--name=")), CONFIG_OK);
    ck_assert_str_eq(name, "");

    /* the last occurrence wins */
    defaults();
    ck_assert_int_eq(parse(ARGV("--port=1", "--port", "2")), CONFIG_OK);
    ck_assert_int_eq(port, 2);
}
END_TEST

START_TEST(test_environment)
{
    setenv("PORT", "7000", 1);
    setenv("REDIS_URL", "redis://env:2", 1);
    setenv("NG_WORKERS", "16", 1);
    setenv("WORKERS", "32", 1); /* not this option's variable: it names NG_WORKERS */
    ck_assert_int_eq(parse(NO_ARGS), CONFIG_OK);
    ck_assert_int_eq(port, 7000);
    ck_assert_str_eq(redis_url, "redis://env:2");
    ck_assert_int_eq(workers, 16);

    /* an empty variable counts as unset */
    defaults();
    setenv("PORT", "", 1);
    ck_assert_int_eq(parse(NO_ARGS), CONFIG_OK);
    ck_assert_int_eq(port, 8080);
}
END_TEST

START_TEST(test_flag_overrides_environment)
{
    setenv("PORT", "7000", 1);
    setenv("REDIS_URL", "redis://env:2", 1);
    setenv("NG_WORKERS", "16", 1);
    ck_assert_int_eq(parse(ARGV("--port", "9001", "--redis-url=redis://flag:3", "--workers=2")), CONFIG_OK);
    ck_assert_int_eq(port, 9001);
    ck_assert_str_eq(redis_url, "redis://flag:3");
    ck_assert_int_eq(workers, 2);
}
END_TEST

START_TEST(test_bad_flags)
{
    char **cases[] = {
        ARGV("--unknown=1"), ARGV("--unknown"),
        ARGV("--portx=1"), /* not a prefix match */
        ARGV("--por=1"),     ARGV("--PORT=1"),
        ARGV("--port"), /* missing value */
        ARGV("--name"),      ARGV("--port=1", "--redis-url"),
        ARGV("port=1"), /* not a flag */
        ARGV("-p", "1"),     ARGV("--"),
        ARGV("--=5"),
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        defaults();
        ck_assert_msg(parse(cases[i]) == CONFIG_EXIT_FAILURE, "case %zu (%s)", i, cases[i][1]);
    }
}
END_TEST

START_TEST(test_integer_values)
{
    static const struct {
        const char *text;
        bool ok;
        int64_t value;
    } cases[] = {
        {"1", true, 1},
        {"65535", true, 65535},
        {"0", false, 0},
        {"65536", false, 0},
        {"-1", false, 0},
        {"", false, 0},
        {"abc", false, 0},
        {"80abc", false, 0},
        {"80 ", false, 0},
        {"8.0", false, 0},
        {"0x50", false, 0},
        {"99999999999999999999", false, 0},
        {"-99999999999999999999", false, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        char flag[64];
        snprintf(flag, sizeof(flag), "--port=%s", cases[i].text);
        defaults();
        config_result_t rv = parse(ARGV(flag));
        ck_assert_msg(rv == (cases[i].ok ? CONFIG_OK : CONFIG_EXIT_FAILURE), "--port=%s: %d", cases[i].text, rv);
        ck_assert_int_eq(port, cases[i].ok ? cases[i].value : 8080);

        /* the same through the environment */
        defaults();
        if (cases[i].text[0] != '\0') {
            setenv("PORT", cases[i].text, 1);
            rv = parse(NO_ARGS);
            ck_assert_msg(rv == (cases[i].ok ? CONFIG_OK : CONFIG_EXIT_FAILURE), "PORT=%s: %d", cases[i].text, rv);
        }
    }

    /* the full 64-bit range */
    defaults();
    ck_assert_int_eq(parse(ARGV("--offset=-9223372036854775808")), CONFIG_OK);
    ck_assert_int_eq(offset, INT64_MIN);
    ck_assert_int_eq(parse(ARGV("--offset", "9223372036854775807")), CONFIG_OK);
    ck_assert_int_eq(offset, INT64_MAX);
    ck_assert_int_eq(parse(ARGV("--offset=9223372036854775808")), CONFIG_EXIT_FAILURE);
    ck_assert_int_eq(parse(ARGV("--offset=-9223372036854775809")), CONFIG_EXIT_FAILURE);

    /* a bad environment value is an error even if a flag would have replaced it */
    defaults();
    setenv("NG_WORKERS", "100", 1);
    ck_assert_int_eq(parse(ARGV("--workers=3")), CONFIG_EXIT_FAILURE);
}
END_TEST

/* Runs parse(argv) with stdout captured into buf. */
static config_result_t parse_capturing(char **argv, char *buf, size_t bufsz)
{
    FILE *tmp = tmpfile();
    ck_assert_ptr_nonnull(tmp);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(fileno(tmp), STDOUT_FILENO);
    config_result_t rv = parse(argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    rewind(tmp);
    size_t n = fread(buf, 1, bufsz - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
    return rv;
}

START_TEST(test_help)
{
    static char out[8192];
    setenv("PORT", "7000", 1);
    ck_assert_int_eq(parse_capturing(ARGV("--help"), out, sizeof(out)), CONFIG_EXIT_SUCCESS);
    ck_assert_ptr_nonnull(strstr(out, "Usage: prog [options]"));
    ck_assert_ptr_nonnull(strstr(out, "A test program."));
    ck_assert_ptr_nonnull(strstr(out, "--redis-url"));
    ck_assert_ptr_nonnull(strstr(out, "env REDIS_URL, default: redis://127.0.0.1:6379"));
    ck_assert_ptr_nonnull(strstr(out, "env NAME, default: (none)"));
    /* the default shown is what the environment made it */
    ck_assert_ptr_nonnull(strstr(out, "env PORT, default: 7000"));
    ck_assert_ptr_nonnull(strstr(out, "env NG_WORKERS, default: 4"));
    ck_assert_ptr_nonnull(strstr(out, "--help"));

    defaults();
    ck_assert_int_eq(parse_capturing(ARGV("-h"), out, sizeof(out)), CONFIG_EXIT_SUCCESS);
    ck_assert_ptr_nonnull(strstr(out, "Usage: prog"));

    /* --help wins over the flags after it, but not over a bad flag before it */
    defaults();
    ck_assert_int_eq(parse_capturing(ARGV("--port=1", "--help", "--bogus"), out, sizeof(out)), CONFIG_EXIT_SUCCESS);
    defaults();
    ck_assert_int_eq(parse_capturing(ARGV("--bogus", "--help"), out, sizeof(out)), CONFIG_EXIT_FAILURE);
}
END_TEST

/* config_init_process: the common --log-level comes on top of the program's options; the return value tells main
 * whether to go on (-1) or exit with 0 (--help) or 2 (a bad flag or log level). */
START_TEST(test_init_process)
{
    unsetenv("LOG_LEVEL");
    ck_assert_int_eq(config_init_process("prog", "A test program.", OPTIONS, 3, ARGV("--port", "9")), -1);
    ck_assert_int_eq(port, 9);
    defaults();
    ck_assert_int_eq(config_init_process("prog", "A test program.", OPTIONS, 3, ARGV("--log-level", "warn")), -1);
    ck_assert_int_eq(config_init_process("prog", "A test program.", OPTIONS, 3, ARGV("--log-level", "loud")), 2);
    ck_assert_int_eq(config_init_process("prog", "A test program.", OPTIONS, 2, ARGV("--bogus")), 2);
    setenv("LOG_LEVEL", "nope", 1);
    ck_assert_int_eq(config_init_process("prog", "A test program.", OPTIONS, 1, NO_ARGS), 2);
    unsetenv("LOG_LEVEL");
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    int rv = config_init_process("prog", "A test program.", OPTIONS, 2, ARGV("--help"));
    fclose(stdout);
    stdout = saved;
    ck_assert_int_eq(rv, 0);
}
END_TEST

/* A CONFIG_BOOL flag takes no value (the next argument is not eaten), or =0/=1; its variable says 1/0, yes/no... */
START_TEST(test_bool)
{
    ck_assert_int_eq(parse(ARGV("--insecure", "--port", "9")), CONFIG_OK);
    ck_assert_int_eq(insecure, 1);
    ck_assert_int_eq(port, 9);
    defaults();
    ck_assert_int_eq(parse(ARGV("--insecure=0")), CONFIG_OK);
    ck_assert_int_eq(insecure, 0);
    defaults();
    setenv("NG_INSECURE", "yes", 1);
    ck_assert_int_eq(parse(NO_ARGS), CONFIG_OK);
    ck_assert_int_eq(insecure, 1);
    ck_assert_int_eq(parse(ARGV("--insecure=off")), CONFIG_OK); /* the flag wins */
    ck_assert_int_eq(insecure, 0);
    defaults();
    setenv("NG_INSECURE", "maybe", 1);
    FILE *saved = stderr;
    stderr = fopen("/dev/null", "w");
    config_result_t rv = parse(NO_ARGS);
    unsetenv("NG_INSECURE");
    config_result_t rv2 = parse(ARGV("--insecure=2"));
    fclose(stderr);
    stderr = saved;
    ck_assert_int_eq(rv, CONFIG_EXIT_FAILURE);
    ck_assert_int_eq(rv2, CONFIG_EXIT_FAILURE);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_defaults_kept);
    tcase_add_test(tc, test_flag_forms);
    tcase_add_test(tc, test_environment);
    tcase_add_test(tc, test_flag_overrides_environment);
    tcase_add_test(tc, test_bad_flags);
    tcase_add_test(tc, test_integer_values);
    tcase_add_test(tc, test_help);
    tcase_add_test(tc, test_bool);
    tcase_add_test(tc, test_init_process);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

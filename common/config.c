#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "config.h"
#include "log.h"

static void env_name_of(const config_option_t *opt, char *buf, size_t bufsz)
{
    if (opt->env != NULL) {
        snprintf(buf, bufsz, "%s", opt->env);
        return;
    }
    size_t i = 0;
    for (; opt->name[i] != '\0' && i + 1 < bufsz; ++i) {
        char c = opt->name[i];
        buf[i] = c == '-' ? '_' : (c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c);
    }
    buf[i] = '\0';
}

static int assign(const config_option_t *opt, const char *text, const char *source)
{
    if (opt->type == CONFIG_STRING) {
        *(const char **)opt->value = text;
        return 0;
    }
    if (opt->type == CONFIG_BOOL) {
        static const char *yes[] = {"1", "true", "yes", "on"}, *no[] = {"0", "false", "no", "off"};
        for (size_t i = 0; i < 4; ++i) {
            if (strcasecmp(text, yes[i]) == 0 || strcasecmp(text, no[i]) == 0) {
                *(int64_t *)opt->value = strcasecmp(text, yes[i]) == 0;
                return 0;
            }
        }
        fprintf(stderr, "invalid value '%s' for %s: expected 1 or 0 (true/false, yes/no, on/off)\n", text, source);
        return -1;
    }
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < opt->min || v > opt->max) {
        fprintf(stderr, "invalid value '%s' for %s: expected an integer from %" PRId64 " to %" PRId64 "\n", text, source, opt->min,
                opt->max);
        return -1;
    }
    *(int64_t *)opt->value = v;
    return 0;
}

static void print_usage(const char *program, const char *summary, const config_option_t *options)
{
    char env[64];
    printf("Usage: %s [options]\n\n%s\n\nOptions (each also read from the environment variable shown):\n", program, summary);
    for (const config_option_t *opt = options; opt->name != NULL; ++opt) {
        env_name_of(opt, env, sizeof(env));
        printf("  --%-22s %s\n", opt->name, opt->help);
        if (opt->type == CONFIG_STRING) {
            const char *def = *(const char **)opt->value;
            printf("  %-24s env %s, default: %s\n", "", env, def != NULL && def[0] != '\0' ? def : "(none)");
        } else if (opt->type == CONFIG_BOOL) {
            printf("  %-24s env %s=1, default: %s\n", "", env, *(int64_t *)opt->value ? "on" : "off");
        } else {
            printf("  %-24s env %s, default: %" PRId64 "\n", "", env, *(int64_t *)opt->value);
        }
    }
    printf("  --%-22s %s\n", "help", "print this help and exit");
}

config_result_t config_parse(const char *program, const char *summary, const config_option_t *options, int argc, char **argv)
{
    char env[64], source[96];

    for (const config_option_t *opt = options; opt->name != NULL; ++opt) {
        env_name_of(opt, env, sizeof(env));
        const char *v = getenv(env);
        if (v != NULL && v[0] != '\0') {
            snprintf(source, sizeof(source), "environment variable %s", env);
            if (assign(opt, v, source) != 0)
                return CONFIG_EXIT_FAILURE;
        }
    }

    for (int i = 1; i < argc; ++i) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_usage(program, summary, options);
            return CONFIG_EXIT_SUCCESS;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "%s: unexpected argument '%s' (try --help)\n", program, arg);
            return CONFIG_EXIT_FAILURE;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t namelen = eq != NULL ? (size_t)(eq - name) : strlen(name);
        const config_option_t *opt = options;
        for (; opt->name != NULL; ++opt)
            if (strlen(opt->name) == namelen && strncmp(opt->name, name, namelen) == 0)
                break;
        if (opt->name == NULL) {
            fprintf(stderr, "%s: unknown option '%.*s' (try --help)\n", program, (int)(namelen + 2), arg);
            return CONFIG_EXIT_FAILURE;
        }
        const char *value = eq != NULL ? eq + 1 : (opt->type == CONFIG_BOOL ? "1" : (i + 1 < argc ? argv[++i] : NULL));
        if (value == NULL) {
            fprintf(stderr, "%s: option --%s needs a value\n", program, opt->name);
            return CONFIG_EXIT_FAILURE;
        }
        snprintf(source, sizeof(source), "--%s", opt->name);
        if (assign(opt, value, source) != 0)
            return CONFIG_EXIT_FAILURE;
    }
    return CONFIG_OK;
}

int config_init_process(const char *program, const char *summary, const config_option_t *options, int argc, char **argv)
{
    const char *level_name = "info";
    size_t n = 0;
    while (options[n].name != NULL)
        ++n;
    config_option_t *all = calloc(n + 2, sizeof(*all));
    if (all == NULL)
        abort();
    memcpy(all, options, n * sizeof(*all));
    all[n] = (config_option_t){"log-level", NULL, CONFIG_STRING, &level_name, 0, 0, "debug, info, warn or error"};

    config_result_t rv = config_parse(program, summary, all, argc, argv);
    free(all);
    if (rv == CONFIG_EXIT_SUCCESS)
        return 0;
    if (rv != CONFIG_OK)
        return 2;
    log_level_t level;
    if (log_level_parse(level_name, &level) != 0) {
        fprintf(stderr, "%s: unknown log level '%s' (debug, info, warn or error)\n", program, level_name);
        return 2;
    }
    log_init(program, level);
    return -1;
}

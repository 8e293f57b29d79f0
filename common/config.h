/*
 * Command-line flags with matching environment variables, described by one table per binary.
 *
 * Each option is read first from its environment variable, then from the command line, so a flag wins over the
 * environment. The variable's name is the flag's in capitals with '-' turned into '_' (--redis-url: REDIS_URL)
 * unless the table names another. --help prints the table with every default. Call from main, before threads.
 */
#ifndef NOTIGATE_CONFIG_H
#define NOTIGATE_CONFIG_H

#include <stdint.h>

/* CONFIG_BOOL: a flag that takes no value (--insecure-no-auth; --name=0 or --name=1 also work); its variable is 1, true,
 * yes or on, or 0, false, no or off. */
typedef enum en_config_type_t { CONFIG_STRING, CONFIG_INT, CONFIG_BOOL } config_type_t;

typedef struct st_config_option_t {
    const char *name; /* long flag without the dashes, e.g. "redis-url" */
    const char *env;  /* environment variable, or NULL for the derived name */
    config_type_t type;
    void *value;      /* const char ** for CONFIG_STRING (points into argv/environ), int64_t * for CONFIG_INT and CONFIG_BOOL */
    int64_t min, max; /* accepted range for CONFIG_INT */
    const char *help;
} config_option_t;

typedef enum en_config_result_t { CONFIG_OK = 0, CONFIG_EXIT_SUCCESS = 1, CONFIG_EXIT_FAILURE = -1 } config_result_t;

/* Parses the environment and argv against options (terminated by an entry with name NULL). On --help prints usage
 * (program name, summary, options and defaults) to stdout and returns CONFIG_EXIT_SUCCESS; on a bad flag or value
 * prints the reason to stderr and returns CONFIG_EXIT_FAILURE. */
config_result_t config_parse(const char *program, const char *summary, const config_option_t *options, int argc, char **argv);

/* What every binary does first: parses options as config_parse does, plus the common --log-level (LOG_LEVEL, default
 * info), and sets up logging with program as the service name. Returns -1 when main should go on, else the code main
 * should exit with (0 after --help, 2 after a bad option). */
int config_init_process(const char *program, const char *summary, const config_option_t *options, int argc, char **argv);

#endif

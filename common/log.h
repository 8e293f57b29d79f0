/*
 * Structured one-line logs (logfmt) on stderr.
 *
 *   ts=2026-11-25T15:04:52.123Z level=info svc=gateway pid=7 msg="listening" addr=0.0.0.0:8080
 *
 * Every line is written with a single write(2), so lines from several threads never interleave.
 * All functions may be called from any thread once log_init has run.
 */
#ifndef NOTIGATE_LOG_H
#define NOTIGATE_LOG_H

#include <stdarg.h>

typedef enum en_log_level_t { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR } log_level_t;

/* Sets the service name printed as svc= and the lowest level written. Call once, first thing in main. */
void log_init(const char *service, log_level_t min_level);

/* Parses "debug", "info", "warn" or "error"; returns 0 and sets *level, or -1 if the name is unknown. */
int log_level_parse(const char *name, log_level_t *level);

/* Writes one line: msg is quoted; kv_fmt (printf format, may be NULL) renders the rest as key=value pairs.
 * Values that may hold spaces or quotes must be passed through log_quote by the caller. */
void log_write(log_level_t level, const char *msg, const char *kv_fmt, ...) __attribute__((format(printf, 3, 4)));

/* Copies s into buf (size bufsz) as a logfmt-safe quoted value ("..." with \" and \\ escaped, control characters
 * replaced by '?', truncated to fit). Returns buf. */
const char *log_quote(char *buf, size_t bufsz, const char *s);

#define log_debug(msg, ...) log_write(LOG_LEVEL_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...) log_write(LOG_LEVEL_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_write(LOG_LEVEL_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_write(LOG_LEVEL_ERROR, msg, __VA_ARGS__)

#endif

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "log.h"

static const char *service_name = "notigate";
static log_level_t min_level = LOG_LEVEL_INFO;
static const char *level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *service, log_level_t level)
{
    service_name = service;
    min_level = level;
}

int log_level_parse(const char *name, log_level_t *level)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); ++i) {
        if (strcmp(name, level_names[i]) == 0) {
            *level = (log_level_t)i;
            return 0;
        }
    }
    return -1;
}

const char *log_quote(char *buf, size_t bufsz, const char *s)
{
    size_t o = 0;
    if (bufsz < 3) {
        if (bufsz > 0)
            buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (; s != NULL && *s != '\0' && o + 3 < bufsz; ++s) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else {
            buf[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

void log_write(log_level_t level, const char *msg, const char *kv_fmt, ...)
{
    if (level < min_level)
        return;

    char line[2048], quoted[512];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);

    int n = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ level=%s svc=%s pid=%d msg=%s", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000), level_names[level],
                     service_name, (int)getpid(), log_quote(quoted, sizeof(quoted), msg));
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(line) - 2 ? (size_t)n : sizeof(line) - 2;
    if (kv_fmt != NULL && kv_fmt[0] != '\0' && len < sizeof(line) - 3) {
        line[len++] = ' ';
        va_list ap;
        va_start(ap, kv_fmt);
        int m = vsnprintf(line + len, sizeof(line) - len - 1, kv_fmt, ap);
        va_end(ap);
        if (m > 0)
            len += (size_t)m < sizeof(line) - len - 1 ? (size_t)m : sizeof(line) - len - 2;
    }
    line[len++] = '\n';
    ssize_t unused = write(STDERR_FILENO, line, len);
    (void)unused;
}

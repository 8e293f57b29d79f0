/*
 * Wall-clock and monotonic time in milliseconds. Any thread.
 */
#ifndef NOTIGATE_CLOCK_H
#define NOTIGATE_CLOCK_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* Milliseconds since the Unix epoch (the ts of notifications). */
static inline int64_t clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic microseconds, for measuring durations. */
static inline uint64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Writes ms (since the epoch) as ISO 8601 UTC with milliseconds, "2026-11-25T15:04:52.123Z" (JavaScript's
 * toISOString), into buf (at least 32 bytes). Returns buf. */
static inline const char *clock_iso8601(char *buf, size_t bufsz, int64_t ms)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(buf, bufsz, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return buf;
}

#endif

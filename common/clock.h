/*
 * Wall-clock and monotonic time in milliseconds. Any thread.
 */
#ifndef NOTIGATE_CLOCK_H
#define NOTIGATE_CLOCK_H

#include <stdint.h>
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

#endif

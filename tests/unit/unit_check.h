/*
 * What several unit tests share on top of Check.
 */
#ifndef NOTIGATE_UNIT_CHECK_H
#define NOTIGATE_UNIT_CHECK_H

#include <check.h>
#include <stdint.h>

/* Check records every passing ck_assert with a write to its parent process: in hot loops, REQUIRE calls into Check
 * only when the condition fails. */
#define REQUIRE(cond, ...)                                                                                                         \
    do {                                                                                                                           \
        if (!(cond))                                                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                                                             \
    } while (0)

/* xorshift64*: a fixed seed gives the same sequence on every run, so a failure can be replayed. *state must not be 0. */
static inline uint64_t unit_rng(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545F4914F6CDD1DULL;
}

#endif

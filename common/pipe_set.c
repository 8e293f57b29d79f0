#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include "pipe_set.h"

void pipe_set_init(pipe_set_t *set)
{
    pthread_mutex_init(&set->_mutex, NULL);
    set->_ids = NULL;
    set->_n = set->_cap = 0;
    atomic_store(&set->count, 0);
}

void pipe_set_dispose(pipe_set_t *set)
{
    pthread_mutex_destroy(&set->_mutex);
    free(set->_ids);
    set->_ids = NULL;
}

bool pipe_set_update(pipe_set_t *set, nng_pipe pipe, nng_pipe_ev ev, unsigned *count)
{
    uint32_t id = (uint32_t)nng_pipe_id(pipe);
    bool changed = false;

    pthread_mutex_lock(&set->_mutex);
    if (ev == NNG_PIPE_EV_ADD_POST) {
        if (set->_n == set->_cap) {
            set->_cap = set->_cap != 0 ? set->_cap * 2 : 16;
            if ((set->_ids = realloc(set->_ids, set->_cap * sizeof(*set->_ids))) == NULL)
                abort();
        }
        set->_ids[set->_n++] = id;
        changed = true;
    } else if (ev == NNG_PIPE_EV_REM_POST) {
        for (size_t i = 0; i < set->_n; ++i) {
            if (set->_ids[i] == id) {
                set->_ids[i] = set->_ids[--set->_n];
                changed = true;
                break;
            }
        }
    }
    *count = (unsigned)set->_n;
    atomic_store(&set->count, *count);
    pthread_mutex_unlock(&set->_mutex);
    return changed;
}

void pipe_set_remote(nng_pipe pipe, char *buf, size_t bufsz)
{
    nng_sockaddr sa;
    snprintf(buf, bufsz, "?");
    if (nng_pipe_get_addr(pipe, NNG_OPT_REMADDR, &sa) != 0)
        return;
    if (sa.s_family == NNG_AF_INET) {
        const uint8_t *ip = (const uint8_t *)&sa.s_in.sa_addr;
        snprintf(buf, bufsz, "%u.%u.%u.%u:%u", ip[0], ip[1], ip[2], ip[3], ntohs(sa.s_in.sa_port));
    } else if (sa.s_family == NNG_AF_INET6) {
        char addr[INET6_ADDRSTRLEN];
        if (inet_ntop(AF_INET6, sa.s_in6.sa_addr, addr, sizeof(addr)) != NULL)
            snprintf(buf, bufsz, "[%s]:%u", addr, ntohs(sa.s_in6.sa_port));
    } else if (sa.s_family == NNG_AF_IPC) {
        snprintf(buf, bufsz, "ipc");
    }
}

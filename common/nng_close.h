/*
 * nng_close with a deadline. Debian's nng 1.5.2 sometimes never returns from nng_close on a REQ/REP socket whose
 * contexts were busy moments before (nng issues #1543 and #1813, fixed in later releases): a process stopping on
 * SIGTERM would then hang until SIGKILL. Main thread, at shutdown.
 */
#ifndef NOTIGATE_NNG_CLOSE_H
#define NOTIGATE_NNG_CLOSE_H

#include <nng/nng.h>

/* Closes sock on a helper thread and waits up to timeout_ms. Returns 0 once closed, or -1 if nng_close is still
 * stuck: the socket then belongs to that thread, and the caller must not touch anything nng still holds (its aios,
 * contexts) but exit. */
int nng_close_within(nng_socket sock, unsigned timeout_ms);

#endif

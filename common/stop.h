#ifndef VOICE_STOP_H
#define VOICE_STOP_H

#include <stdbool.h>

/*
 * The process-wide stop flag. Base layer: libc only. The FastCGI runtime
 * (server.c) raises it on SIGTERM/SIGINT; code that waits or loops (a retry,
 * a replay, a reconciliation pass, the simulator's delays) checks it to give
 * up early. Never lowered.
 */

/* Raises the flag. Async-signal-safe and thread-safe. */
void stop_request(void);

/* True once stop_request was called in this process. */
bool stop_requested(void);

#endif

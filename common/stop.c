#include "stop.h"

#include <signal.h>

static volatile sig_atomic_t stopping;

void stop_request(void)
{
	__atomic_store_n(&stopping, 1, __ATOMIC_RELAXED);
}

bool stop_requested(void)
{
	return __atomic_load_n(&stopping, __ATOMIC_RELAXED) != 0;
}

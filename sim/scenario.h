#ifndef SIM_SCENARIO_H
#define SIM_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>

/*
 * What happens to a simulated outbound call, chosen by its To number
 * (sim/README.md has the table). Pure logic; times are nominal milliseconds
 * before SIM_TIME_SCALE is applied.
 */

enum simscen_outcome {
	SIMSCEN_ANSWER = 0, /* ringing, answered (in-progress), completed */
	SIMSCEN_BUSY,       /* ringing, then busy */
	SIMSCEN_NO_ANSWER,  /* ringing for the request's Timeout, then no-answer */
	SIMSCEN_FAILED,     /* failed without ringing */
};

enum simscen_fault {
	SIMFAULT_NONE = 0,
	SIMFAULT_429,  /* REST answers 429 / 20429; no call is created */
	SIMFAULT_500,  /* REST answers 500 / 20500; no call is created */
	SIMFAULT_SLOW, /* call created; REST answer held back SIM_SLOW_MS (unscaled) */
	SIMFAULT_REPLY_LOST, /* call created; the REST answer is cut off mid-body */
};

struct simscen {
	const char *name;            /* static, e.g. "answered" */
	enum simscen_outcome outcome;
	enum simscen_fault fault;
	bool reverse;                /* deliver the callbacks newest first */
	bool duplicate;              /* deliver the terminal callback twice */
	bool no_callbacks;           /* deliver no status callback at all */
	long long ring_ms;           /* initiated -> ringing */
	long long answer_ms;         /* ringing -> answered or busy */
	long long talk_ms;           /* answered -> completed (CallDuration) */
};

/* Nominal timings of the default scenario. */
#define SIMSCEN_RING_MS 1000
#define SIMSCEN_ANSWER_MS 2000
#define SIMSCEN_TALK_MS 5000
#define SIMSCEN_LONG_MS 600000 /* the long scenario: time to cancel or hang up */

/* Fills *out with the scenario for an E.164 To number; the default
 * (answered, completed after SIMSCEN_TALK_MS) for any number not listed. */
void simscen_lookup(const char *to, struct simscen *out);

/* One documented row: the number (or a pattern such as "+1415555011N") and
 * what it does. For README checks and /_sim/scenarios. */
struct simscen_row {
	const char *number;
	const char *name;
	const char *what;
};
const struct simscen_row *simscen_table(size_t *n);

/* Scenario by name (as in simscen_table), for the inbound CLI's --scenario.
 * False if unknown. */
bool simscen_by_name(const char *name, struct simscen *out);

#endif

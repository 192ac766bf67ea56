#include "scenario.h"

#include <string.h>

static const struct simscen_row rows[] = {
	{ "+14155550100", "answered", "answered after 3 s, completed after 5 s (also any number not listed)" },
	{ "+14155550101", "busy", "ringing, then busy after 3 s" },
	{ "+14155550102", "no-answer", "ringing for the request's Timeout (default 60 s), then no-answer" },
	{ "+14155550103", "failed", "failed after 1 s without ringing" },
	{ "+14155550104", "out-of-order", "answered and completed; callbacks delivered newest first" },
	{ "+14155550105", "duplicate", "answered and completed; terminal callback delivered twice with the same I-Twilio-Idempotency-Token" },
	{ "+14155550106", "rate-limited", "REST answers 429 with code 20429 (Calls create, and Calls list filtered by this To); no call is created" },
	{ "+14155550107", "server-error", "REST answers 500 with code 20500; no call is created" },
	{ "+14155550108", "slow", "REST answer held back SIM_SLOW_MS (real time, never scaled); the call is created and proceeds as answered" },
	{ "+14155550109", "long", "answered; completed after 600 s, unless canceled or hung up first (Calls update)" },
	{ "+1415555011N", "talk-N", "answered; completed after N seconds (N = 0..9; CallDuration N)" },
	{ "+14155550180", "callbacks-dropped", "answered and completed, but no status callback is ever delivered" },
	{ "+14155550181", "reply-lost", "the call is created and proceeds as answered, but the REST answer is cut off mid-body (201, unreadable JSON)" },
	{ "+14155550182", "reply-lost-quiet", "as reply-lost, and no status callback is delivered either" },
	{ "+14155550183", "slow-quiet", "as slow (the call is created, the REST answer held back SIM_SLOW_MS), and no status callback is delivered" },
};

const struct simscen_row *simscen_table(size_t *n)
{
	*n = sizeof rows / sizeof rows[0];
	return rows;
}

static void set_default(struct simscen *s)
{
	memset(s, 0, sizeof *s);
	s->name = "answered";
	s->outcome = SIMSCEN_ANSWER;
	s->fault = SIMFAULT_NONE;
	s->ring_ms = SIMSCEN_RING_MS;
	s->answer_ms = SIMSCEN_ANSWER_MS;
	s->talk_ms = SIMSCEN_TALK_MS;
}

bool simscen_by_name(const char *name, struct simscen *s)
{
	set_default(s);
	if (strcmp(name, "answered") == 0)
		return true;
	if (strcmp(name, "busy") == 0) {
		s->outcome = SIMSCEN_BUSY;
	} else if (strcmp(name, "no-answer") == 0) {
		s->outcome = SIMSCEN_NO_ANSWER;
	} else if (strcmp(name, "failed") == 0) {
		s->outcome = SIMSCEN_FAILED;
	} else if (strcmp(name, "out-of-order") == 0) {
		s->reverse = true;
	} else if (strcmp(name, "duplicate") == 0) {
		s->duplicate = true;
	} else if (strcmp(name, "rate-limited") == 0) {
		s->fault = SIMFAULT_429;
	} else if (strcmp(name, "server-error") == 0) {
		s->fault = SIMFAULT_500;
	} else if (strcmp(name, "slow") == 0) {
		s->fault = SIMFAULT_SLOW;
	} else if (strcmp(name, "long") == 0) {
		s->talk_ms = SIMSCEN_LONG_MS;
	} else if (strcmp(name, "callbacks-dropped") == 0) {
		s->no_callbacks = true;
	} else if (strcmp(name, "reply-lost") == 0) {
		s->fault = SIMFAULT_REPLY_LOST;
	} else if (strcmp(name, "reply-lost-quiet") == 0) {
		s->fault = SIMFAULT_REPLY_LOST;
		s->no_callbacks = true;
	} else if (strcmp(name, "slow-quiet") == 0) {
		s->fault = SIMFAULT_SLOW;
		s->no_callbacks = true;
	} else if (strncmp(name, "talk-", 5) == 0 && name[5] >= '0' && name[5] <= '9' &&
	           name[6] == '\0') {
		s->talk_ms = (long long)(name[5] - '0') * 1000;
	} else {
		set_default(s);
		return false;
	}
	s->name = NULL;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		if (strcmp(rows[i].name, name) == 0)
			s->name = rows[i].name;
	if (s->name == NULL)
		s->name = "talk-N";
	return true;
}

void simscen_lookup(const char *to, struct simscen *out)
{
	static const char prefix[] = "+141555501";
	static const char *const by_digit[] = {
		"answered", "busy", "no-answer", "failed", "out-of-order",
		"duplicate", "rate-limited", "server-error", "slow", "long",
	};
	char talk[] = "talk-0";

	set_default(out);
	if (strncmp(to, prefix, sizeof prefix - 1) != 0 || strlen(to) != sizeof prefix + 1)
		return;
	if (to[10] == '0' && to[11] >= '0' && to[11] <= '9') {
		const char *name = by_digit[to[11] - '0'];

		if (name != NULL)
			(void)simscen_by_name(name, out);
	} else if (to[10] == '1' && to[11] >= '0' && to[11] <= '9') {
		talk[5] = to[11];
		(void)simscen_by_name(talk, out);
	} else if (to[10] == '8' && to[11] >= '0' && to[11] <= '3') {
		static const char *const faults[] = { "callbacks-dropped", "reply-lost",
			"reply-lost-quiet", "slow-quiet" };

		(void)simscen_by_name(faults[to[11] - '0'], out);
	}
}

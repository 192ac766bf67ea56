#include "route.h"

#include <stdbool.h>
#include <string.h>

#define SID_SEGMENT "{sid}"

/* In enum route's order; the metrics render routes in this order too. */
static const char *const templates[] = {
	[ROUTE_CALL] = "/call",
	[ROUTE_CALLS] = "/calls",
	[ROUTE_CALL_ONE] = "/calls/{sid}",
	[ROUTE_CALL_CANCEL] = "/calls/{sid}/cancel",
	[ROUTE_CALL_HANGUP] = "/calls/{sid}/hangup",
	[ROUTE_RECORDING] = "/recordings/{sid}",
	[ROUTE_TWILIO_WEBHOOK] = "/twilio/webhook",
	[ROUTE_TWILIO_VOICE] = "/twilio/voice",
	[ROUTE_TWILIO_RECORDING] = "/twilio/recording",
	[ROUTE_HEALTHZ] = "/healthz",
	[ROUTE_READYZ] = "/readyz",
	[ROUTE_METRICS] = "/metrics",
	[ROUTE_OTHER] = "other",
};

_Static_assert(sizeof templates / sizeof templates[0] == ROUTE_COUNT, "one template per route");

/* True when path matches tmpl; *seg and *seglen locate its "{sid}" segment
 * (NULL, 0 when tmpl has none). */
static bool matches(const char *tmpl, const char *path, const char **seg, size_t *seglen)
{
	const char *var = strstr(tmpl, SID_SEGMENT);
	size_t head, n;

	*seg = NULL;
	*seglen = 0;
	if (var == NULL)
		return strcmp(tmpl, path) == 0;
	head = (size_t)(var - tmpl);
	if (strncmp(tmpl, path, head) != 0)
		return false;
	n = strcspn(path + head, "/");
	if (strcmp(var + strlen(SID_SEGMENT), path + head + n) != 0)
		return false;
	*seg = path + head;
	*seglen = n;
	return true;
}

enum route route_match(const char *path, char *sid)
{
	const char *seg = NULL;
	size_t i, n = 0;

	if (sid != NULL)
		sid[0] = '\0';
	if (path == NULL)
		return ROUTE_OTHER;
	for (i = 0; i < ROUTE_COUNT - 1; i++) {
		if (!matches(templates[i], path, &seg, &n))
			continue;
		if (sid != NULL && seg != NULL && n < ROUTE_MAX_SID) {
			memcpy(sid, seg, n);
			sid[n] = '\0';
		}
		return (enum route)i;
	}
	return ROUTE_OTHER;
}

const char *route_name(enum route r)
{
	return (size_t)r < ROUTE_COUNT ? templates[r] : templates[ROUTE_OTHER];
}

#ifndef VOICE_ROUTE_H
#define VOICE_ROUTE_H

#include <stddef.h>

/*
 * The service's endpoints, named once: the handlers route by them and the
 * metrics label requests with their templates (common/metrics.h). A
 * template's "{sid}" segment matches any one path segment, empty included;
 * everything else matches literally. Both pools share the table: each
 * handler answers the routes it serves and 404 for the others.
 */
enum route {
	ROUTE_CALL,             /* POST /call */
	ROUTE_CALLS,            /* GET /calls */
	ROUTE_CALL_ONE,         /* GET /calls/{sid} */
	ROUTE_CALL_CANCEL,      /* POST /calls/{sid}/cancel */
	ROUTE_CALL_HANGUP,      /* POST /calls/{sid}/hangup */
	ROUTE_RECORDING,        /* GET /recordings/{sid} */
	ROUTE_TWILIO_WEBHOOK,   /* POST /twilio/webhook: call status callbacks */
	ROUTE_TWILIO_VOICE,     /* POST /twilio/voice: Voice URL requests */
	ROUTE_TWILIO_RECORDING, /* POST /twilio/recording: recording status callbacks */
	ROUTE_HEALTHZ,          /* GET /healthz */
	ROUTE_READYZ,           /* GET /readyz */
	ROUTE_METRICS,          /* GET /metrics */
	ROUTE_OTHER,            /* no such endpoint */
};
#define ROUTE_COUNT ((size_t)ROUTE_OTHER + 1)

/* Longest sid segment route_match copies, with its NUL. */
#define ROUTE_MAX_SID 40

/*
 * The route of a request path (without its query; NULL matches nothing).
 * When sid is not NULL it receives the "{sid}" segment of the routes that
 * have one, "" when there is none or it is ROUTE_MAX_SID bytes or longer.
 */
enum route route_match(const char *path, char *sid);

/* The template of r ("/calls/{sid}"), or "other" for ROUTE_OTHER and any
 * value out of range. Static. */
const char *route_name(enum route r);

#endif

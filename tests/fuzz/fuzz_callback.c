/*
 * form_parse then callback_parse on arbitrary bytes, as webhook_fcgi runs
 * them on a signed body. Whatever validates must hold typed fields within
 * their caps and a payload that is one JSON object with a member for every
 * key; whatever fails must say which parameter and leave nothing to free.
 * Each body is checked against our account and against the account it names,
 * so mutations get past the AccountSid check.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "callback.h"
#include "form.h"
#include "sid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OURS "AC0123456789abcdef0123456789abcdef"

static void check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_callback: %s\n", what);
		abort();
	}
}

static void check_event(const struct form *f, const struct call_event *ev)
{
	struct json_tokener *tok;
	struct json_object *o, *v;
	size_t i;

	check(sid_valid(ev->call_sid, "CA"), "accepted a bad CallSid");
	check(sid_valid(ev->account_sid, "AC"), "accepted a bad AccountSid");
	check(callback_status_valid(ev->status), "accepted a bad CallStatus");
	check(strcmp(ev->call_sid, form_get(f, "CallSid")) == 0, "CallSid changed");
	check(strcmp(ev->status, form_get(f, "CallStatus")) == 0, "CallStatus changed");
	check(strlen(ev->direction) > 0, "empty Direction");
	check(ev->sequence_number >= -1 && ev->sequence_number <= 1000000, "SequenceNumber range");
	check(ev->duration_seconds >= -1 && ev->duration_seconds <= 100000000, "CallDuration range");
	check(ev->sip_response_code == -1 ||
	      (ev->sip_response_code >= 100 && ev->sip_response_code <= 699), "SipResponseCode range");
	check(ev->payload != NULL, "no payload");

	tok = json_tokener_new();
	check(tok != NULL, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, ev->payload, (int)strlen(ev->payload));
	check(o != NULL && json_tokener_get_error(tok) == json_tokener_success, "payload not JSON");
	check(json_tokener_get_parse_end(tok) == strlen(ev->payload), "payload has trailing bytes");
	json_tokener_free(tok);
	check(json_object_is_type(o, json_type_object), "payload not an object");
	for (i = 0; i < f->n; i++) {
		size_t count = form_count(f, f->params[i].key);

		check(json_object_object_get_ex(o, f->params[i].key, &v), "payload lost a key");
		if (count == 1)
			check(json_object_is_type(v, json_type_string) &&
			      strcmp(json_object_get_string(v), f->params[i].value) == 0,
			      "payload changed a value");
		else
			check(json_object_is_type(v, json_type_array) &&
			      json_object_array_length(v) == count, "repeated key not an array");
	}
	json_object_put(o);
}

static void run(const struct form *f, const char *account)
{
	struct call_event ev;
	char field[64];
	enum verr e;

	memset(field, 0, sizeof field);
	e = callback_parse(f, account, &ev, field, sizeof field);
	if (e == VERR_OK) {
		check(strcmp(ev.account_sid, account) == 0, "accepted another account");
		check_event(f, &ev);
	} else {
		check(e == VERR_INVALID || e == VERR_FORBIDDEN, "unexpected error");
		check(e != VERR_FORBIDDEN || strcmp(field, "AccountSid") == 0, "forbidden, not AccountSid");
		check(field[0] != '\0', "no field named");
		check(ev.payload == NULL, "failed parse left a payload");
	}
	callback_event_free(&ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct form f = { 0 };
	char err[FORM_MAX_ERROR];
	const char *acct;

	if (form_parse((const char *)data, size, &f, err, sizeof err) != VERR_OK)
		return 0;
	run(&f, OURS);
	acct = form_get(&f, "AccountSid");
	if (acct != NULL && sid_valid(acct, "AC"))
		run(&f, acct);
	form_free(&f);
	return 0;
}

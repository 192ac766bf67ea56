#include "inbound.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "buf.h"
#include "clock.h"
#include "call.h"
#include "hook.h"
#include "log.h"
#include "num.h"
#include "params.h"
#include "store.h"
#include "twimlcheck.h"

#define SIMINBOUND_USAGE 64

struct opts {
	const char *from, *to, *url, *method, *status_callback, *status_callback_method;
	long long duration;
};

static int usage(const char *why)
{
	fprintf(stderr, "twilio_sim inbound: %s\n"
	        "usage: twilio_sim inbound --from E164 --to E164 --url URL [--method POST|GET]\n"
	        "       [--status-callback URL] [--status-callback-method POST|GET] [--duration SECONDS]\n",
	        why);
	return SIMINBOUND_USAGE;
}

static bool method_ok(const char *m)
{
	return strcmp(m, "GET") == 0 || strcmp(m, "POST") == 0;
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "url", required_argument, NULL, 'u' },
		{ "method", required_argument, NULL, 'm' },
		{ "status-callback", required_argument, NULL, 's' },
		{ "status-callback-method", required_argument, NULL, 'S' },
		{ "duration", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof *o);
	o->method = "POST";
	o->status_callback_method = "POST";
	o->duration = 5;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o->from = optarg;
			break;
		case 't':
			o->to = optarg;
			break;
		case 'u':
			o->url = optarg;
			break;
		case 'm':
			o->method = optarg;
			break;
		case 's':
			o->status_callback = optarg;
			break;
		case 'S':
			o->status_callback_method = optarg;
			break;
		case 'd':
			if (!num_parse(optarg, 0, 3600, &o->duration))
				return usage("--duration must be an integer from 0 to 3600");
			break;
		default:
			return usage("unknown option");
		}
	}
	if (optind != argc)
		return usage("unexpected argument");
	if (o->from == NULL || o->to == NULL || o->url == NULL)
		return usage("--from, --to and --url are required");
	if (!simparams_url_ok(o->url) ||
	    (o->status_callback != NULL && !simparams_url_ok(o->status_callback)))
		return usage("urls must be absolute http or https urls");
	if (!method_ok(o->method) || !method_ok(o->status_callback_method))
		return usage("methods must be GET or POST");
	return 0;
}

static void save_status(const struct simcfg *cfg, struct json_object *doc, const char *sid,
                        const char *status)
{
	struct json_object *call;
	char now[SIMCALL_MAX_DATE];

	if (!json_object_object_get_ex(doc, "call", &call))
		return;
	simcall_rfc2822(time(NULL), now);
	json_object_object_add(call, "status", json_object_new_string(status));
	json_object_object_add(call, "date_updated", json_object_new_string(now));
	if (simstore_call_put(cfg->state_dir, sid, doc) != VERR_OK)
		log_warn("could not save call state", LF_STR("call_sid", sid));
}

static void status_callback(const struct simcfg *cfg, const struct opts *o, const char *sid,
                            const char *from, const char *to, const char *status,
                            long long seq, long long talk_s, bool terminal)
{
	struct form f = { 0 };
	char now[SIMCALL_MAX_DATE], seqs[24], secs[24], mins[24], token[SIMCALL_MAX_SID];
	long http = 0;
	bool ok;

	simcall_rfc2822(time(NULL), now);
	snprintf(seqs, sizeof seqs, "%lld", seq);
	snprintf(secs, sizeof secs, "%lld", talk_s);
	snprintf(mins, sizeof mins, "%lld", (talk_s + 59) / 60);
	ok = simcall_base_params(&f, cfg->account_sid, sid, from, to, status, "inbound") == VERR_OK &&
	     form_add(&f, "Timestamp", now) == VERR_OK &&
	     form_add(&f, "CallbackSource", "call-progress-events") == VERR_OK &&
	     form_add(&f, "SequenceNumber", seqs) == VERR_OK;
	if (ok && terminal)
		ok = form_add(&f, "CallDuration", secs) == VERR_OK &&
		     form_add(&f, "Duration", mins) == VERR_OK;
	if (ok && simcall_new_sid("ID", token) == VERR_OK)
		simcall_deliver(cfg, sid, "status-callback", status, seq, o->status_callback,
		                o->status_callback_method, &f, token + 2, &http, NULL);
	fprintf(stderr, "status callback %s: http %ld\n", status, http);
	form_free(&f);
}

int siminbound_main(const struct simcfg *cfg, int argc, char **argv)
{
	struct opts o;
	struct simcall_req req;
	struct simtwiml tw;
	struct form params = { 0 };
	struct json_object *doc = NULL, *call;
	struct buf body;
	char sid[SIMCALL_MAX_SID];
	long status = 0;
	int rc;
	bool valid = false;
	const char *terminal = "completed";

	if ((rc = parse(argc, argv, &o)) != 0)
		return rc;
	memset(&req, 0, sizeof req);
	if (!simparams_e164(o.from, req.from) || !simparams_e164(o.to, req.to))
		return usage("--from and --to must be valid E.164 numbers");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "twilio_sim inbound: could not initialise libcurl\n");
		return 3;
	}
	buf_init(&body, SIMHOOK_MAX_BODY);
	rc = 1;
	req.method = o.method;
	req.url = o.url;
	req.status_callback = o.status_callback;
	req.status_callback_method = o.status_callback_method;
	req.events = SIMEV_RINGING | SIMEV_ANSWERED | SIMEV_COMPLETED;
	req.timeout = 60;
	if (simcall_new_sid("CA", sid) != VERR_OK ||
	    (doc = simcall_state_new(cfg, sid, &req, "inbound")) == NULL ||
	    !json_object_object_get_ex(doc, "call", &call)) {
		fprintf(stderr, "twilio_sim inbound: out of memory\n");
		goto out;
	}
	json_object_object_add(call, "direction", json_object_new_string("inbound"));
	save_status(cfg, doc, sid, "ringing");
	fprintf(stderr, "call %s from %s to %s\n", sid, req.from, req.to);

	if (simcall_base_params(&params, cfg->account_sid, sid, req.from, req.to, "ringing",
	                        "inbound") != VERR_OK) {
		fprintf(stderr, "twilio_sim inbound: could not build the request\n");
		goto out;
	}
	simcall_deliver(cfg, sid, "voice-url", NULL, -1, o.url, o.method, &params, NULL, &status,
	                &body);
	fwrite(buf_str(&body), 1, body.len, stdout);
	if (body.len > 0 && body.data[body.len - 1] != '\n')
		fputc('\n', stdout);
	fflush(stdout);
	if (status == 0) {
		fprintf(stderr, "twilio_sim inbound: voice url could not be reached\n");
		rc = 3;
		terminal = "failed";
	} else if (status != 200) {
		fprintf(stderr, "twilio_sim inbound: voice url answered http %ld\n", status);
		terminal = "failed";
	} else if (!simtwiml_check(body.data, body.len, &tw)) {
		fprintf(stderr, "twilio_sim inbound: answer is not twiml: %s\n", tw.why);
		terminal = "failed";
	} else {
		valid = true;
		rc = 0;
		if (strcmp(tw.first_verb, "Reject") == 0)
			terminal = strcmp(tw.reject_reason, "busy") == 0 ? "busy" : "no-answer";
	}

	if (o.status_callback != NULL) {
		long long seq = 0;
		bool answered = valid && strcmp(terminal, "completed") == 0;

		status_callback(cfg, &o, sid, req.from, req.to, "ringing", seq++, 0, false);
		if (answered) {
			save_status(cfg, doc, sid, "in-progress");
			status_callback(cfg, &o, sid, req.from, req.to, "in-progress", seq++, 0, false);
			clock_sleep_ms(simcfg_scaled_ms(cfg, o.duration * 1000));
		}
		save_status(cfg, doc, sid, terminal);
		status_callback(cfg, &o, sid, req.from, req.to, terminal, seq, answered ? o.duration : 0,
		                true);
	} else {
		save_status(cfg, doc, sid, terminal);
	}
out:
	json_object_put(doc);
	form_free(&params);
	buf_free(&body);
	curl_global_cleanup();
	return rc;
}

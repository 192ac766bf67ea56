#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "form.h"
#include "sig.h"

/*
 * X-Twilio-Signature (docs/TWILIO.md, "Signatures"). Every vector of the
 * twilio-python, twilio-node and twilio-go test suites, plus two of ours (a
 * key that is a prefix of another, an encoded query), all recomputed
 * independently ("Test vectors"), fed through form_parse as a real webhook
 * body would be; then the URL forms sig_verify accepts and the tampering it
 * refuses, argument errors, and an IPv6 base URL (SHA-256 itself: hash_test.c).
 */
#define TOKEN "12345"
#define BASE "https://mycompany.com/myapp.php?foo=1&bar=2"
#define JSON_BODY "{\"property\": \"value\", \"boolean\": true}"
#define JSON_HASH "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
#define EMPTY_OBJ_HASH "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

/* Encoded bodies; NULL means no params. */
#define P_DEFAULT                                                                        \
	"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309" \
	"&To=%2B18005551212"
#define P_DEFAULT_SHUFFLED                                                               \
	"To=%2B18005551212&From=%2B14158675309&Digits=1234&Caller=%2B14158675309"         \
	"&CallSid=CA1234567890ABCDE"
#define P_BINDING "MessagingBinding.Address=%2B1325xxxxxxx&MessagingBinding.Address=%2B1415xxxxxxx"
#define P_BINDING_REV "MessagingBinding.Address=%2B1415xxxxxxx&MessagingBinding.Address=%2B1325xxxxxxx"
#define P_DIGITS "Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234"
#define P_DIGITS_REV "Digits=1234&Digits=1234&Digits=5678&SidAccount=AC123&Sid=CA123"
#define P_REASON                                                                         \
	"Reason=Participant+left&ReasonConferenceEnded="                                  \
	"participant-with-end-conference-on-exit-left"
#define P_HELLO "Body=Hello+world&From=%2B14158675309"

struct vector {
	const char *url;    /* the full URL Twilio signed */
	size_t split;       /* where public_base_url ends and request_uri starts */
	const char *params; /* encoded form body, NULL for none */
	const char *json;   /* raw JSON body, NULL for a form body */
	const char *sig;
};

/* split: length of "scheme://authority" */
static const struct vector vectors[] = {
	{ BASE, 21, P_DEFAULT, NULL, "RSOYDt4T1cUTdK1PDd93/VVr8B8=" },
	{ BASE, 21, P_DEFAULT_SHUFFLED, NULL, "RSOYDt4T1cUTdK1PDd93/VVr8B8=" },
	{ "https://mycompany.com:443/myapp.php?foo=1&bar=2", 25, P_DEFAULT, NULL,
	  "kvajT1Ptam85bY51eRf/AJRuM3w=" },
	{ "http://mycompany.com:80/myapp.php?foo=1&bar=2", 23, P_DEFAULT, NULL,
	  "0ZXoZLH/DfblKGATFgpif+LLRf4=" },
	{ "http://mycompany.com:1234/myapp.php?foo=1&bar=2", 25, P_DEFAULT, NULL,
	  "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=" },
	{ "http://mycompany.com/myapp.php?foo=1&bar=2", 20, P_DEFAULT, NULL,
	  "OyGYPqTF6ztdbRNCvuQO/oPvqQ4=" },
	{ "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2", 31, P_DEFAULT, NULL,
	  "CukzLTc1tT5dXEDIHm/tKBanW10=" },
	{ "https://user@mycompany.com/myapp.php?foo=1&bar=2", 26, P_DEFAULT, NULL,
	  "2YRLlVAflCqxaNicjMpJcSTgzSs=" },
	{ "https://user:pass@mycompany.com:443/myapp.php?foo=1&bar=2", 35, P_DEFAULT, NULL,
	  "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI=" },
	{ BASE "&Body=It%27s+amazing", 21, P_DEFAULT, NULL, "TfZzewPq8wqrGlMfyAud8+/IvJ0=" },
	{ BASE, 21, P_BINDING, NULL, "83O6e2vORAoJHUNzJjDWN1jz+BA=" },
	{ BASE, 21, P_BINDING_REV, NULL, "83O6e2vORAoJHUNzJjDWN1jz+BA=" },
	{ BASE, 21, P_DIGITS, NULL, "IK+Dwps556ElfBT0I3Rgjkr1wJU=" },
	{ BASE, 21, P_DIGITS_REV, NULL, "IK+Dwps556ElfBT0I3Rgjkr1wJU=" },
	{ BASE "&bodySHA256=" JSON_HASH, 21, NULL, JSON_BODY, "a9nBmqA0ju/hNViExpshrM61xv4=" },
	{ "https://mycompany.com/myapp.php?bodySHA256=" JSON_HASH, 21, NULL, JSON_BODY,
	  "y77kIzt2vzLz71DgmJGsen2scGs=" },
	{ "https://mycompany.com:443/myapp.php?foo=1&bar=2&bodySHA256=" EMPTY_OBJ_HASH, 25, NULL,
	  "{}", "Ldidvp12m26NI7eqEvxnEpkd9Hc=" },
	{ "https://example.com/twilio/status", 19, P_REASON, NULL, "0PnteJWE1xtbaNU44xaNy48eeZY=" },
	{ "https://example.com/voice?x=a+b&y=It%27s", 19, P_HELLO, NULL,
	  "6yEBiA7e1z0LlHJDXaeWQ0QpLLE=" },
};

static void parse_params(const char *enc, struct form *f)
{
	*f = (struct form){ 0 };
	if (enc != NULL)
		assert_int_equal(form_parse(enc, strlen(enc), f, NULL, 0), VERR_OK);
}

static void split(const char *url, size_t at, char *base, size_t basesz)
{
	assert_true(at < basesz);
	memcpy(base, url, at);
	base[at] = '\0';
	assert_int_equal(url[at], '/');
}

static bool verify(const char *token, const char *base, const char *uri, const char *params,
                   const char *json, const char *header)
{
	struct form f;
	bool ok;

	parse_params(params, &f);
	ok = sig_verify(token, base, uri, params ? &f : NULL, json, json ? strlen(json) : 0,
	                json != NULL, header);
	form_free(&f);
	return ok;
}

static void compute(const char *url, const char *params, char out[SIG_MAX_B64])
{
	struct form f;

	parse_params(params, &f);
	assert_int_equal(sig_compute(TOKEN, url, params ? &f : NULL, out, SIG_MAX_B64), VERR_OK);
	form_free(&f);
}

static void test_compute_vectors(void **state)
{
	char out[SIG_MAX_B64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		compute(vectors[i].url, vectors[i].params, out);
		if (strcmp(out, vectors[i].sig) != 0)
			fail_msg("vectors[%zu] %s: got %s want %s", i, vectors[i].url, out,
			         vectors[i].sig);
	}
}

static void test_verify_vectors(void **state)
{
	char base[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		const struct vector *v = &vectors[i];

		split(v->url, v->split, base, sizeof base);
		if (!verify(TOKEN, base, v->url + v->split, v->params, v->json, v->sig))
			fail_msg("vectors[%zu] %s: rejected", i, v->url);
		/* every tampering must be rejected */
		if (verify("12346", base, v->url + v->split, v->params, v->json, v->sig))
			fail_msg("vectors[%zu]: accepted with a wrong token", i);
		if (verify(TOKEN, "https://evil.example", v->url + v->split, v->params, v->json,
		           v->sig))
			fail_msg("vectors[%zu]: accepted with a wrong host", i);
		if (v->json != NULL &&
		    verify(TOKEN, base, v->url + v->split, NULL, "{\"tampered\": true}", v->sig))
			fail_msg("vectors[%zu]: accepted a tampered json body", i);
		if (v->params != NULL && verify(TOKEN, base, v->url + v->split, "x=1", NULL, v->sig))
			fail_msg("vectors[%zu]: accepted tampered params", i);
	}
}

struct verify_case {
	const char *name;
	const char *base;
	const char *uri;
	const char *params;
	const char *json;
	const char *header;
};

#define URI "/myapp.php?foo=1&bar=2"

/* Accepted through the port variants (docs/TWILIO.md, "The URL that is
 * signed"). */
static const struct verify_case valid[] = {
	{ "any port removed", "https://mycompany.com:1234", URI, P_DEFAULT, NULL,
	  "RSOYDt4T1cUTdK1PDd93/VVr8B8=" },
	{ "443 removed", "https://mycompany.com:443", URI, P_DEFAULT, NULL,
	  "RSOYDt4T1cUTdK1PDd93/VVr8B8=" },
	{ "443 added", "https://mycompany.com", URI, P_DEFAULT, NULL,
	  "kvajT1Ptam85bY51eRf/AJRuM3w=" },
	{ "80 added", "http://mycompany.com", URI, P_DEFAULT, NULL,
	  "0ZXoZLH/DfblKGATFgpif+LLRf4=" },
	{ "80 removed", "http://mycompany.com:80", URI, P_DEFAULT, NULL,
	  "OyGYPqTF6ztdbRNCvuQO/oPvqQ4=" },
	{ "explicit port kept", "http://mycompany.com:1234", URI, P_DEFAULT, NULL,
	  "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=" },
	{ "userinfo, 443 added", "https://user:pass@mycompany.com", URI, P_DEFAULT, NULL,
	  "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI=" },
	{ "userinfo, 443 removed", "https://user:pass@mycompany.com:443", URI, P_DEFAULT, NULL,
	  "CukzLTc1tT5dXEDIHm/tKBanW10=" },
	{ "json {} only with :443", "https://mycompany.com", URI "&bodySHA256=" EMPTY_OBJ_HASH,
	  NULL, "{}", "Ldidvp12m26NI7eqEvxnEpkd9Hc=" },
	{ "json, base with port", "https://mycompany.com:443", URI "&bodySHA256=" JSON_HASH, NULL,
	  JSON_BODY, "a9nBmqA0ju/hNViExpshrM61xv4=" },
};

/* Rejected: the signature does not cover what was received. */
static const struct verify_case invalid[] = {
	{ "query changed", "https://mycompany.com", "/myapp.php?foo=1&bar=3", P_DEFAULT, NULL,
	  "RSOYDt4T1cUTdK1PDd93/VVr8B8=" },
	{ "query re-sorted", "https://mycompany.com", "/myapp.php?bar=2&foo=1", P_DEFAULT, NULL,
	  "RSOYDt4T1cUTdK1PDd93/VVr8B8=" },
	{ "query decoded", "https://example.com", "/voice?x=a b&y=It's", P_HELLO, NULL,
	  "6yEBiA7e1z0LlHJDXaeWQ0QpLLE=" },
	{ "query re-encoded", "https://example.com", "/voice?x=a%20b&y=It%27s", P_HELLO, NULL,
	  "6yEBiA7e1z0LlHJDXaeWQ0QpLLE=" },
	{ "path changed", "https://mycompany.com", "/myapp.phq?foo=1&bar=2", P_DEFAULT, NULL,
	  "RSOYDt4T1cUTdK1PDd93/VVr8B8=" },
	{ "scheme changed", "http://mycompany.com", URI, P_DEFAULT, NULL,
	  "RSOYDt4T1cUTdK1PDd93/VVr8B8=" },
	{ "wrong explicit port", "https://mycompany.com", URI, P_DEFAULT, NULL,
	  "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=" },
	{ "userinfo dropped", "https://mycompany.com", URI, P_DEFAULT, NULL,
	  "CukzLTc1tT5dXEDIHm/tKBanW10=" },
	{ "param value changed", "https://mycompany.com", URI,
	  "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309"
	  "&To=%2B18005551213",
	  NULL, "RSOYDt4T1cUTdK1PDd93/VVr8B8=" },
	{ "param added", "https://mycompany.com", URI, P_DEFAULT "&CallStatus=completed", NULL,
	  "RSOYDt4T1cUTdK1PDd93/VVr8B8=" },
	{ "param removed", "https://mycompany.com", URI,
	  "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309",
	  NULL, "RSOYDt4T1cUTdK1PDd93/VVr8B8=" },
	{ "param key renamed", "https://mycompany.com", URI,
	  "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digit=1234&From=%2B14158675309"
	  "&To=%2B18005551212",
	  NULL, "RSOYDt4T1cUTdK1PDd93/VVr8B8=" },
	{ "no params", "https://mycompany.com", URI, NULL, NULL, "RSOYDt4T1cUTdK1PDd93/VVr8B8=" },
	{ "header one char off", "https://mycompany.com", URI, P_DEFAULT, NULL,
	  "RSOYDt4T1cUTdK1PDd93/VVr8B9=" },
	{ "header truncated", "https://mycompany.com", URI, P_DEFAULT, NULL,
	  "RSOYDt4T1cUTdK1PDd93/VVr8B8" },
	{ "header extended", "https://mycompany.com", URI, P_DEFAULT, NULL,
	  "RSOYDt4T1cUTdK1PDd93/VVr8B8==" },
	{ "header prefix", "https://mycompany.com", URI, P_DEFAULT, NULL, "RSOY" },
	{ "header empty", "https://mycompany.com", URI, P_DEFAULT, NULL, "" },
	{ "header missing", "https://mycompany.com", URI, P_DEFAULT, NULL, NULL },
	{ "old go bug (joined sort)", "https://example.com", "/twilio/status", P_REASON, NULL,
	  "umwWHrgDDMQUx9C1eHhzIt13QIk=" },
	{ "no de-duplication", "https://mycompany.com", URI, P_DIGITS, NULL,
	  "tM//N+MVWOh7+ol2z8YCNxSY0Eg=" },
	{ "json body tampered", "https://mycompany.com", URI "&bodySHA256=" JSON_HASH, NULL,
	  "{\"property\": \"value\", \"boolean\": false}", "a9nBmqA0ju/hNViExpshrM61xv4=" },
	{ "json body empty", "https://mycompany.com", URI "&bodySHA256=" JSON_HASH, NULL, "",
	  "a9nBmqA0ju/hNViExpshrM61xv4=" },
	/* the signature over the URL is genuine: only the body check can refuse these */
	{ "json bodySHA256 missing", "https://mycompany.com", URI, NULL, JSON_BODY,
	  "PLACEHOLDER" },
	{ "json bodySHA256 wrong", "https://mycompany.com", URI "&bodySHA256=" EMPTY_OBJ_HASH, NULL,
	  JSON_BODY, "PLACEHOLDER" },
	{ "json bodySHA256 uppercase", "https://mycompany.com",
	  URI "&bodySHA256=0A1FF7634D9AB3B95DB5C9A2DFE9416E41502B283A80C7CF19632632F96E6620", NULL,
	  JSON_BODY, "PLACEHOLDER" },
	{ "json bodySHA256 empty", "https://mycompany.com", URI "&bodySHA256=", NULL, JSON_BODY,
	  "PLACEHOLDER" },
	{ "json bodySHA256 as prefix key", "https://mycompany.com",
	  URI "&xbodySHA256=" JSON_HASH, NULL, JSON_BODY, "PLACEHOLDER" },
	{ "json bodySHA256 second", "https://mycompany.com",
	  URI "&bodySHA256=" EMPTY_OBJ_HASH "&bodySHA256=" JSON_HASH, NULL, JSON_BODY,
	  "PLACEHOLDER" },
	{ "base without scheme", "mycompany.com", URI, P_DEFAULT, NULL,
	  "RSOYDt4T1cUTdK1PDd93/VVr8B8=" },
	{ "uri without slash", "https://mycompany.com", "myapp.php?foo=1&bar=2", P_DEFAULT, NULL,
	  "RSOYDt4T1cUTdK1PDd93/VVr8B8=" },
};

static void test_verify_valid(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof valid / sizeof valid[0]; i++)
		if (!verify(TOKEN, valid[i].base, valid[i].uri, valid[i].params, valid[i].json,
		            valid[i].header))
			fail_msg("valid[%zu] %s: rejected", i, valid[i].name);
}

static void test_verify_invalid(void **state)
{
	char url[512], genuine[SIG_MAX_B64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
		const struct verify_case *c = &invalid[i];
		const char *header = c->header;

		if (header != NULL && strcmp(header, "PLACEHOLDER") == 0) {
			/* a real signature over exactly this URL, as an attacker replaying
			 * a captured request with another body would hold */
			assert_true((size_t)snprintf(url, sizeof url, "%s%s", c->base, c->uri) <
			            sizeof url);
			compute(url, NULL, genuine);
			assert_true(verify(TOKEN, c->base, c->uri, NULL, NULL, genuine));
			header = genuine;
		}
		if (verify(TOKEN, c->base, c->uri, c->params, c->json, header))
			fail_msg("invalid[%zu] %s: accepted", i, c->name);
	}
}

static void test_verify_arguments(void **state)
{
	struct form f;
	const char *sig = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";

	(void)state;
	parse_params(P_DEFAULT, &f);
	assert_true(sig_verify(TOKEN, "https://mycompany.com", URI, &f, NULL, 0, false, sig));
	assert_false(sig_verify(NULL, "https://mycompany.com", URI, &f, NULL, 0, false, sig));
	assert_false(sig_verify("", "https://mycompany.com", URI, &f, NULL, 0, false, sig));
	assert_false(sig_verify(TOKEN, NULL, URI, &f, NULL, 0, false, sig));
	assert_false(sig_verify(TOKEN, "", URI, &f, NULL, 0, false, sig));
	assert_false(sig_verify(TOKEN, "https://", URI, &f, NULL, 0, false, sig));
	assert_false(sig_verify(TOKEN, "https://user@", URI, &f, NULL, 0, false, sig));
	assert_false(sig_verify(TOKEN, "/x://mycompany.com", URI, &f, NULL, 0, false, sig));
	assert_false(sig_verify(TOKEN, "https://[::1", URI, &f, NULL, 0, false, sig));
	assert_false(sig_verify(TOKEN, "https://mycompany.com", NULL, &f, NULL, 0, false, sig));
	/* a form body ignores body bytes; a JSON body ignores params */
	assert_true(sig_verify(TOKEN, "https://mycompany.com", URI, &f, "junk", 4, false, sig));
	assert_true(sig_verify(TOKEN, "https://mycompany.com", URI "&bodySHA256=" JSON_HASH, &f,
	                       JSON_BODY, strlen(JSON_BODY), true,
	                       "a9nBmqA0ju/hNViExpshrM61xv4="));
	assert_false(sig_verify(TOKEN, "https://mycompany.com", URI "&bodySHA256=" JSON_HASH, NULL,
	                        NULL, 5, true, "a9nBmqA0ju/hNViExpshrM61xv4="));
	form_free(&f);
}

static void test_verify_ipv6(void **state)
{
	char plain[SIG_MAX_B64], port[SIG_MAX_B64];

	(void)state;
	compute("https://[2001:db8::1]/x?a=1", NULL, plain);
	compute("https://[2001:db8::1]:443/x?a=1", NULL, port);
	assert_true(verify(TOKEN, "https://[2001:db8::1]:8443", "/x?a=1", NULL, NULL, plain));
	assert_true(verify(TOKEN, "https://[2001:db8::1]", "/x?a=1", NULL, NULL, port));
	assert_true(verify(TOKEN, "https://[2001:db8::1]:443", "/x?a=1", NULL, NULL, plain));
	assert_false(verify(TOKEN, "https://[2001:db8::2]", "/x?a=1", NULL, NULL, plain));
}

static void test_compute_reason_order(void **state)
{
	char out[SIG_MAX_B64];

	(void)state;
	compute("https://example.com/twilio/status", P_REASON, out);
	assert_string_equal(out, "0PnteJWE1xtbaNU44xaNy48eeZY=");
	assert_string_not_equal(out, "umwWHrgDDMQUx9C1eHhzIt13QIk=");
	compute(BASE, P_DIGITS, out);
	assert_string_not_equal(out, "tM//N+MVWOh7+ol2z8YCNxSY0Eg=");
	/* the {} vector signs the :443 URL only */
	compute(BASE "&bodySHA256=" EMPTY_OBJ_HASH, NULL, out);
	assert_string_not_equal(out, "Ldidvp12m26NI7eqEvxnEpkd9Hc=");
}

static void test_compute_errors(void **state)
{
	char out[SIG_MAX_B64];
	struct form bad = { 0 };
	struct form_param p = { NULL, NULL };

	(void)state;
	assert_int_equal(sig_compute(TOKEN, BASE, NULL, out, SIG_MAX_B64 - 1), VERR_TOOBIG);
	assert_string_equal(out, "");
	assert_int_equal(sig_compute(TOKEN, BASE, NULL, NULL, 0), VERR_TOOBIG);
	assert_int_equal(sig_compute("", BASE, NULL, out, sizeof out), VERR_INVALID);
	assert_int_equal(sig_compute(NULL, BASE, NULL, out, sizeof out), VERR_INVALID);
	assert_int_equal(sig_compute(TOKEN, NULL, NULL, out, sizeof out), VERR_INVALID);
	bad.params = &p;
	bad.n = 1;
	assert_int_equal(sig_compute(TOKEN, BASE, &bad, out, sizeof out), VERR_INVALID);
	bad.n = 0;
	assert_int_equal(sig_compute(TOKEN, BASE, &bad, out, sizeof out), VERR_OK);
	assert_int_equal(strlen(out), SIG_MAX_B64 - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compute_vectors),
		cmocka_unit_test(test_verify_vectors),
		cmocka_unit_test(test_verify_valid),
		cmocka_unit_test(test_verify_invalid),
		cmocka_unit_test(test_verify_arguments),
		cmocka_unit_test(test_verify_ipv6),
		cmocka_unit_test(test_compute_reason_order),
		cmocka_unit_test(test_compute_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

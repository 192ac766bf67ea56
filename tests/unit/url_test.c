/*
 * URL checks (url_check): what each caller's flags accept and refuse, the
 * forms libcurl would parse but rewrite (one or three slashes, numeric
 * hosts, percent-encoded names, zones), and userinfo told apart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "url.h"

/* The flags of the callers: POST /call's url, the two base URLs of the
 * configuration, the simulator's uri parameters. */
#define CALLREQ URL_ANY_CASE
#define PUBLIC_BASE URL_NO_QUERY
#define API_BASE (URL_NO_QUERY | URL_HTTP)
#define SIM (URL_HTTP | URL_HOSTNAME)

struct url_case {
	const char *s;
	unsigned flags;
};

static void test_valid(void **state)
{
	static const struct url_case valid[] = {
		{ "https://example.com", 0 },
		{ "https://example.com/", 0 },
		{ "https://example.com/twiml?x=1&y=%20#frag", CALLREQ },
		{ "HTTPS://Example.COM:8443/a/b", CALLREQ },
		{ "Https://example.com/", CALLREQ },
		{ "https://[::1]:443/x", CALLREQ },
		{ "https://[0:0:0:0:0:0:0:1]/", 0 },
		{ "https://[::ffff:1.2.3.4]/", 0 },
		{ "https://a.example/x?q=a:b@c/d;e=f!$'()*+,~", CALLREQ },
		{ "https://my_host.internal/", CALLREQ },
		{ "https://example.com?x", 0 },
		{ "https://example.com#f", 0 },
		{ "https://example.com:1/", 0 },
		{ "https://example.com:65535/", 0 },
		{ "https://example.com:00443/", 0 },
		{ "https://example.com./", 0 },
		{ "https://1.2.3.4/", 0 },
		{ "https://999.1.1.1/", 0 }, /* a name to libcurl: kept as written */
		{ "https://example.com/a/../b", 0 },
		{ "https://example.com/a@b", 0 },
		{ "https://example.com/%7Euser/%41", 0 },
		{ "https://voice.example.com", PUBLIC_BASE },
		{ "https://voice.example.com:8443/base/", PUBLIC_BASE },
		{ "http://127.0.0.1:8080", API_BASE },
		{ "https://api.twilio.com", API_BASE },
		{ "http://127.0.0.1:8443/twilio/webhook#rc=2", SIM },
		{ "https://example.com/x?y=1", SIM },
		{ "https://[::1]:8443/", SIM },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		print_message("valid: %s (%#x)\n", valid[i].s, valid[i].flags);
		assert_int_equal(url_check(valid[i].s, valid[i].flags), VERR_OK);
	}
}

static void test_invalid(void **state)
{
	static const struct url_case invalid[] = {
		{ "", CALLREQ },
		{ "https", CALLREQ },
		{ "https://", CALLREQ },
		{ "https:///twiml", CALLREQ },      /* libcurl: host "twiml" */
		{ "https:/example.com/", CALLREQ }, /* libcurl: one slash is enough */
		{ "https:\\\\example.com/", CALLREQ },
		{ "https:example.com", CALLREQ },
		{ "//example.com/", CALLREQ },
		{ "/twiml", CALLREQ },
		{ "example.com", CALLREQ },
		{ "ftp://example.com/", CALLREQ },
		{ "javascript:alert(1)", CALLREQ },
		{ "http://example.com/", CALLREQ },
		{ "HTTPS://example.com/", 0 },
		{ "Http://127.0.0.1/", SIM },
		{ " https://example.com/", CALLREQ },
		{ "https://example.com/ ", CALLREQ },
		{ "https://exa mple.com/", CALLREQ },
		{ "https://example.com/\r\nX: y", CALLREQ },
		{ "https://example.com/\x7f", CALLREQ },
		{ "https://.example.com/", CALLREQ },
		{ "https://-a.example/", CALLREQ },
		{ "https://ex~ample.com/", CALLREQ },
		{ "https://ex|ample.com/", CALLREQ },
		{ "https://ex%41mple.com/", CALLREQ }, /* libcurl decodes it */
		{ "https://ex\xc3\xa4mple.com/", CALLREQ },
		{ "https://0x7f.1/", CALLREQ },     /* libcurl: 127.0.0.1 */
		{ "https://1.2.3/", CALLREQ },      /* libcurl: 1.2.0.3 */
		{ "https://127.0.01/", CALLREQ },   /* libcurl: 127.0.0.1 */
		{ "https://443/", CALLREQ },        /* libcurl: 0.0.1.187 */
		{ "https://:443/", CALLREQ },
		{ "https://example.com:/", CALLREQ },
		{ "https://example.com:0/", CALLREQ },
		{ "https://example.com:00000/", CALLREQ },
		{ "https://example.com:000443/", CALLREQ },
		{ "https://example.com:65536/", CALLREQ },
		{ "https://example.com:443x/", CALLREQ },
		{ "https://example.com:-1/", CALLREQ },
		{ "https://[::1/", CALLREQ },
		{ "https://[]/", CALLREQ },
		{ "https://[1.2.3.4]/", CALLREQ },
		{ "https://[v1.x]/", CALLREQ },
		{ "https://[fe80::1%25eth0]/", CALLREQ },
		{ "https://[::1]x/", CALLREQ },
		{ "https://example.com/a%zzb", CALLREQ },
		{ "https://example.com/a%2", CALLREQ },
		{ "https://example.com/a%", CALLREQ },
		{ "https://example.com/a<b>", CALLREQ },
		{ "https://example.com/a\"b", CALLREQ },
		{ "https://example.com/a\\b", CALLREQ },
		{ "https://example.com/a{b}|c^d`e[f]", CALLREQ },
		{ "https://example.com/\xc3\xa9", CALLREQ },
		{ "https://example.com/#a#b", CALLREQ },
		{ "https://voice.example.com/?x", PUBLIC_BASE },
		{ "https://voice.example.com#f", PUBLIC_BASE },
		{ "http://voice.example.com", PUBLIC_BASE },
		{ "https://a_b.example/", SIM },
		{ "https://example.com:0/", SIM },
		{ "https://example.com/a b", SIM },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
		print_message("invalid: %s (%#x)\n", invalid[i].s, invalid[i].flags);
		assert_int_equal(url_check(invalid[i].s, invalid[i].flags), VERR_INVALID);
	}
}

/* Userinfo is told apart (POST /call says "credentials"), for any flags. */
static void test_userinfo(void **state)
{
	static const struct url_case forbidden[] = {
		{ "https://user:pw@example.com/", CALLREQ },
		{ "https://evil.example@example.com/", CALLREQ },
		{ "https://@example.com/", CALLREQ },
		{ "https://:pw@example.com/", CALLREQ },
		{ "HTTPS://u@.example.com/", CALLREQ },
		{ "https://u@voice.example.com", PUBLIC_BASE },
		{ "http://u@127.0.0.1/", SIM },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++) {
		print_message("userinfo: %s (%#x)\n", forbidden[i].s, forbidden[i].flags);
		assert_int_equal(url_check(forbidden[i].s, forbidden[i].flags), VERR_FORBIDDEN);
	}
	/* not a URL of ours first: the scheme is wrong */
	assert_int_equal(url_check("https:/user:pw@example.com/", CALLREQ), VERR_INVALID);
	assert_int_equal(url_check("ftp://user@example.com/", CALLREQ), VERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_userinfo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

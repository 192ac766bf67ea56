#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "twiml.h"

#define DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"

/* Builds one document with a single <Say> and compares it. */
static const struct {
	const char *text, *voice, *language, *want;
} say_valid[] = {
	/* twilio-python test_voice_response.py shape, plus our declaration */
	{ "Hello World", NULL, NULL, DECL "<Response><Say>Hello World</Say></Response>" },
	{ "a & b", NULL, NULL, DECL "<Response><Say>a &amp; b</Say></Response>" },
	{ "<Play>x</Play>", NULL, NULL,
	  DECL "<Response><Say>&lt;Play&gt;x&lt;/Play&gt;</Say></Response>" },
	{ "say \"hi\" it's", NULL, NULL,
	  DECL "<Response><Say>say &quot;hi&quot; it&apos;s</Say></Response>" },
	{ "&amp;", NULL, NULL, DECL "<Response><Say>&amp;amp;</Say></Response>" },
	{ "tab\tline\nret\r", NULL, NULL,
	  DECL "<Response><Say>tab\tline\nret&#13;</Say></Response>" },
	{ "Grüße 日本 😀", NULL, NULL, DECL "<Response><Say>Grüße 日本 😀</Say></Response>" },
	{ "Hi", "alice", "en-US",
	  DECL "<Response><Say voice=\"alice\" language=\"en-US\">Hi</Say></Response>" },
	{ "Hi", "", "en-GB", DECL "<Response><Say language=\"en-GB\">Hi</Say></Response>" },
	{ "Hi", "Polly.\"x\"&<y>'", NULL,
	  DECL "<Response><Say voice=\"Polly.&quot;x&quot;&amp;&lt;y&gt;&apos;\">Hi</Say></Response>" },
	{ "Hi", "a\tb\nc\rd", NULL,
	  DECL "<Response><Say voice=\"a&#9;b&#10;c&#13;d\">Hi</Say></Response>" },
};

static const struct {
	const char *text, *voice, *language;
} say_invalid[] = {
	{ NULL, NULL, NULL },
	{ "", NULL, NULL },
	{ "bell\a", NULL, NULL },
	{ "nul-ish \x01", NULL, NULL },
	{ "esc \x1b[31m", NULL, NULL },
	{ "\x1f", NULL, NULL },
	{ "bad utf8 \xff", NULL, NULL },
	{ "truncated \xc3", NULL, NULL },
	{ "overlong \xc0\xaf", NULL, NULL },
	{ "surrogate \xed\xa0\x80", NULL, NULL },
	{ "nonchar \xef\xbf\xbe", NULL, NULL },
	{ "nonchar \xef\xbf\xbf", NULL, NULL },
	{ "too high \xf4\x90\x80\x80", NULL, NULL },
	{ "ok", "voice\x02", NULL },
	{ "ok", NULL, "en\x7f\xff" },
};

static void test_say_valid(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(say_valid) / sizeof(say_valid[0]); i++) {
		struct buf b;
		struct twiml t;

		buf_init(&b, TWIML_MAX_RESPONSE);
		assert_int_equal(twiml_begin(&t, &b), VERR_OK);
		assert_int_equal(twiml_say(&t, say_valid[i].text, say_valid[i].voice,
		                           say_valid[i].language), VERR_OK);
		assert_int_equal(twiml_finish(&t), VERR_OK);
		assert_string_equal(buf_str(&b), say_valid[i].want);
		buf_free(&b);
	}
}

static void test_say_invalid(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(say_invalid) / sizeof(say_invalid[0]); i++) {
		struct buf b;
		struct twiml t;

		buf_init(&b, TWIML_MAX_RESPONSE);
		assert_int_equal(twiml_begin(&t, &b), VERR_OK);
		assert_int_equal(twiml_say(&t, say_invalid[i].text, say_invalid[i].voice,
		                           say_invalid[i].language), VERR_INVALID);
		/* the failed verb left nothing behind: the document is still empty */
		assert_int_equal(twiml_finish(&t), VERR_OK);
		assert_string_equal(buf_str(&b), DECL "<Response />");
		buf_free(&b);
	}
}

enum op { OP_SAY, OP_DIAL, OP_REJECT_REJECTED, OP_REJECT_BUSY, OP_HANGUP, OP_PAUSE, OP_END };

struct step {
	enum op op;
	const char *arg;
	int n;
	enum verr want;
};

/* Sequences of verbs and the exact document they give. */
static const struct {
	const char *name;
	struct step steps[5];
	const char *want;
} docs[] = {
	{ "empty", { { OP_END, NULL, 0, VERR_OK } },
	  /* twilio-python: <?xml version="1.0" encoding="UTF-8"?><Response /> */
	  DECL "<Response />" },
	{ "hangup", { { OP_HANGUP, NULL, 0, VERR_OK }, { OP_END, NULL, 0, VERR_OK } },
	  DECL "<Response><Hangup /></Response>" },
	{ "reject", { { OP_REJECT_REJECTED, NULL, 0, VERR_OK }, { OP_END, NULL, 0, VERR_OK } },
	  DECL "<Response><Reject reason=\"rejected\" /></Response>" },
	{ "reject busy", { { OP_REJECT_BUSY, NULL, 0, VERR_OK }, { OP_END, NULL, 0, VERR_OK } },
	  DECL "<Response><Reject reason=\"busy\" /></Response>" },
	{ "dial", { { OP_DIAL, "+14155550100", 0, VERR_OK }, { OP_END, NULL, 0, VERR_OK } },
	  DECL "<Response><Dial><Number>+14155550100</Number></Dial></Response>" },
	{ "say pause dial",
	  { { OP_SAY, "Connecting you", 0, VERR_OK }, { OP_PAUSE, NULL, 2, VERR_OK },
	    { OP_DIAL, "+442071838750", 0, VERR_OK }, { OP_HANGUP, NULL, 0, VERR_OK },
	    { OP_END, NULL, 0, VERR_OK } },
	  DECL "<Response><Say>Connecting you</Say><Pause length=\"2\" />"
	       "<Dial><Number>+442071838750</Number></Dial><Hangup /></Response>" },
	{ "reject not first",
	  { { OP_SAY, "hi", 0, VERR_OK }, { OP_REJECT_BUSY, NULL, 0, VERR_INVALID },
	    { OP_END, NULL, 0, VERR_OK } },
	  DECL "<Response><Say>hi</Say></Response>" },
	{ "dial not e164",
	  { { OP_DIAL, "14155550100", 0, VERR_INVALID }, { OP_DIAL, "+0123", 0, VERR_INVALID },
	    { OP_DIAL, "+1415555010&", 0, VERR_INVALID }, { OP_DIAL, "+1234567890123456", 0, VERR_INVALID },
	    { OP_END, NULL, 0, VERR_OK } },
	  DECL "<Response />" },
	{ "dial bounds",
	  { { OP_DIAL, "+12", 0, VERR_OK }, { OP_DIAL, "+123456789012345", 0, VERR_OK },
	    { OP_DIAL, "+1", 0, VERR_INVALID }, { OP_DIAL, "", 0, VERR_INVALID },
	    { OP_END, NULL, 0, VERR_OK } },
	  DECL "<Response><Dial><Number>+12</Number></Dial>"
	       "<Dial><Number>+123456789012345</Number></Dial></Response>" },
	{ "pause bounds",
	  { { OP_PAUSE, NULL, 0, VERR_INVALID }, { OP_PAUSE, NULL, TWIML_MAX_PAUSE + 1, VERR_INVALID },
	    { OP_PAUSE, NULL, -1, VERR_INVALID }, { OP_PAUSE, NULL, TWIML_MAX_PAUSE, VERR_OK },
	    { OP_END, NULL, 0, VERR_OK } },
	  DECL "<Response><Pause length=\"600\" /></Response>" },
};

static enum verr run_step(struct twiml *t, const struct step *s)
{
	switch (s->op) {
	case OP_SAY: return twiml_say(t, s->arg, NULL, NULL);
	case OP_DIAL: return twiml_dial(t, s->arg);
	case OP_REJECT_REJECTED: return twiml_reject(t, TWIML_REJECT_REJECTED);
	case OP_REJECT_BUSY: return twiml_reject(t, TWIML_REJECT_BUSY);
	case OP_HANGUP: return twiml_hangup(t);
	case OP_PAUSE: return twiml_pause(t, s->n);
	case OP_END: return twiml_finish(t);
	}
	return VERR_INVALID;
}

static void test_documents(void **state)
{
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		struct buf b;
		struct twiml t;
		bool ended = false;

		buf_init(&b, TWIML_MAX_RESPONSE);
		assert_int_equal(twiml_begin(&t, &b), VERR_OK);
		for (j = 0; j < 5 && !ended; j++) {
			const struct step *s = &docs[i].steps[j];

			if (run_step(&t, s) != s->want)
				fail_msg("%s: step %zu", docs[i].name, j);
			ended = s->op == OP_END;
		}
		assert_true(ended);
		if (strcmp(buf_str(&b), docs[i].want) != 0)
			fail_msg("%s: got %s", docs[i].name, buf_str(&b));
		buf_free(&b);
	}
}

static void test_after_finish(void **state)
{
	struct buf b;
	struct twiml t;

	(void)state;
	buf_init(&b, TWIML_MAX_RESPONSE);
	assert_int_equal(twiml_begin(&t, &b), VERR_OK);
	assert_int_equal(twiml_hangup(&t), VERR_OK);
	assert_int_equal(twiml_finish(&t), VERR_OK);
	assert_int_equal(twiml_say(&t, "late", NULL, NULL), VERR_INVALID);
	assert_int_equal(twiml_hangup(&t), VERR_INVALID);
	assert_int_equal(twiml_finish(&t), VERR_INVALID);
	assert_string_equal(buf_str(&b), DECL "<Response><Hangup /></Response>");
	buf_free(&b);
}

/* The cap of the caller's buffer is the document cap: a verb that would
 * cross it fails whole and leaves the buffer as it was. */
static void test_cap(void **state)
{
	char text[TWIML_MAX_INLINE + 1];
	struct buf b;
	struct twiml t;
	size_t before;

	(void)state;
	memset(text, 'a', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	buf_init(&b, TWIML_MAX_INLINE);
	assert_int_equal(twiml_begin(&t, &b), VERR_OK);
	before = b.len;
	assert_int_equal(twiml_say(&t, text, NULL, NULL), VERR_TOOBIG);
	assert_int_equal(b.len, before);
	assert_int_equal(twiml_say(&t, "short", NULL, NULL), VERR_OK);
	assert_int_equal(twiml_finish(&t), VERR_OK);
	assert_string_equal(buf_str(&b), DECL "<Response><Say>short</Say></Response>");
	assert_true(b.len <= TWIML_MAX_INLINE);
	buf_free(&b);

	/* escaping expands: 1000 '&' fit as text but not as 5000 bytes */
	memset(text, '&', 1000);
	text[1000] = '\0';
	buf_init(&b, TWIML_MAX_INLINE);
	assert_int_equal(twiml_begin(&t, &b), VERR_OK);
	assert_int_equal(twiml_say(&t, text, NULL, NULL), VERR_TOOBIG);
	buf_free(&b);

	/* the closing tag does not fit: finish fails, the buffer is unchanged */
	buf_init(&b, strlen(DECL "<Response><Hangup />") + 3);
	assert_int_equal(twiml_begin(&t, &b), VERR_OK);
	assert_int_equal(twiml_hangup(&t), VERR_OK);
	assert_int_equal(twiml_finish(&t), VERR_TOOBIG);
	assert_string_equal(buf_str(&b), DECL "<Response><Hangup />");
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_say_valid),
		cmocka_unit_test(test_say_invalid),
		cmocka_unit_test(test_documents),
		cmocka_unit_test(test_after_finish),
		cmocka_unit_test(test_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

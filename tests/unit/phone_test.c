/*
 * phone_parse, phone types and the destination policy. Example numbers per
 * type come from libphonenumber's own metadata
 * (PhoneNumberUtil::GetExampleNumberForType) so they are valid there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "phone.h"

#define MASK "\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2" /* "•••" */

struct valid_case {
	const char *in;
	const char *region; /* default region, NULL for none */
	const char *e164;
	const char *cc;     /* region of the number */
	enum phone_type type;
};

static const struct valid_case valid[] = {
	/* E.164 from several countries */
	{ "+14155552671", NULL, "+14155552671", "US", PHONE_FIXED_LINE_OR_MOBILE },
	{ "+442079460958", NULL, "+442079460958", "GB", PHONE_FIXED_LINE },
	{ "+447400123456", NULL, "+447400123456", "GB", PHONE_MOBILE },
	{ "+4930123456", NULL, "+4930123456", "DE", PHONE_FIXED_LINE },
	{ "+4915123456789", NULL, "+4915123456789", "DE", PHONE_MOBILE },
	{ "+33612345678", NULL, "+33612345678", "FR", PHONE_MOBILE },
	{ "+918123456789", NULL, "+918123456789", "IN", PHONE_MOBILE },
	{ "+61412345678", NULL, "+61412345678", "AU", PHONE_MOBILE },
	{ "+819012345678", NULL, "+819012345678", "JP", PHONE_MOBILE },
	{ "+15062345678", NULL, "+15062345678", "CA", PHONE_FIXED_LINE_OR_MOBILE },
	{ "+5511961234567", NULL, "+5511961234567", "BR", PHONE_MOBILE },
	{ "+27711234567", NULL, "+27711234567", "ZA", PHONE_MOBILE },
	{ "+6581234567", NULL, "+6581234567", "SG", PHONE_MOBILE },
	/* the region is ignored for international input */
	{ "+14155552671", "GB", "+14155552671", "US", PHONE_FIXED_LINE_OR_MOBILE },
	{ "+14155552671", "", "+14155552671", "US", PHONE_FIXED_LINE_OR_MOBILE },
	/* punctuation variants */
	{ "+1 415 555 2671", NULL, "+14155552671", "US", PHONE_FIXED_LINE_OR_MOBILE },
	{ "+1 (415) 555-2671", NULL, "+14155552671", "US", PHONE_FIXED_LINE_OR_MOBILE },
	{ "+1.415.555.2671", NULL, "+14155552671", "US", PHONE_FIXED_LINE_OR_MOBILE },
	{ "+1-415-555-2671", NULL, "+14155552671", "US", PHONE_FIXED_LINE_OR_MOBILE },
	{ "  +1 415 555 2671  ", NULL, "+14155552671", "US", PHONE_FIXED_LINE_OR_MOBILE },
	{ "+44 (0)20 7946 0958", NULL, "+442079460958", "GB", PHONE_FIXED_LINE },
	{ "+49 (030) 123456", NULL, "+4930123456", "DE", PHONE_FIXED_LINE },
	{ "+81 90-1234-5678", NULL, "+819012345678", "JP", PHONE_MOBILE },
	/* national formats with a country */
	{ "(415) 555-2671", "US", "+14155552671", "US", PHONE_FIXED_LINE_OR_MOBILE },
	{ "415.555.2671", "US", "+14155552671", "US", PHONE_FIXED_LINE_OR_MOBILE },
	{ "1 415 555 2671", "US", "+14155552671", "US", PHONE_FIXED_LINE_OR_MOBILE },
	{ "(415) 555-2671", "us", "+14155552671", "US", PHONE_FIXED_LINE_OR_MOBILE },
	{ "415 555 2671", "CA", "+14155552671", "US", PHONE_FIXED_LINE_OR_MOBILE },
	{ "020 7946 0958", "GB", "+442079460958", "GB", PHONE_FIXED_LINE },
	{ "07400 123456", "gb", "+447400123456", "GB", PHONE_MOBILE },
	{ "030 123456", "DE", "+4930123456", "DE", PHONE_FIXED_LINE },
	{ "01 23 45 67 89", "FR", "+33123456789", "FR", PHONE_FIXED_LINE },
	{ "081234 56789", "IN", "+918123456789", "IN", PHONE_MOBILE },
	{ "0412 345 678", "AU", "+61412345678", "AU", PHONE_MOBILE },
	{ "090-1234-5678", "JP", "+819012345678", "JP", PHONE_MOBILE },
	/* international dialling prefix in national input */
	{ "011 44 20 7946 0958", "US", "+442079460958", "GB", PHONE_FIXED_LINE },
	{ "0044 20 7946 0958", "GB", "+442079460958", "GB", PHONE_FIXED_LINE },
	/* every type libphonenumber can report for a valid number */
	{ "+18002345678", NULL, "+18002345678", "US", PHONE_TOLL_FREE },
	{ "+19002345678", NULL, "+19002345678", "US", PHONE_PREMIUM_RATE },
	{ "+449012345678", NULL, "+449012345678", "GB", PHONE_PREMIUM_RATE },
	{ "0901 234 5678", "GB", "+449012345678", "GB", PHONE_PREMIUM_RATE },
	{ "+4918012345", NULL, "+4918012345", "DE", PHONE_SHARED_COST },
	{ "+33884012345", NULL, "+33884012345", "FR", PHONE_SHARED_COST },
	{ "+445612345678", NULL, "+445612345678", "GB", PHONE_VOIP },
	{ "+447012345678", NULL, "+447012345678", "GB", PHONE_PERSONAL_NUMBER },
	{ "+15005550006", NULL, "+15005550006", "US", PHONE_PERSONAL_NUMBER },
	{ "+447640123456", NULL, "+447640123456", "GB", PHONE_PAGER },
	{ "+445512345678", NULL, "+445512345678", "GB", PHONE_UAN },
	{ "+49177991234567", NULL, "+49177991234567", "DE", PHONE_VOICEMAIL },
	{ "+3933101234501", NULL, "+3933101234501", "IT", PHONE_VOICEMAIL },
	/* non-geographic */
	{ "+800 1234 5678", NULL, "+80012345678", "001", PHONE_TOLL_FREE },
	{ "+881612345678", NULL, "+881612345678", "001", PHONE_MOBILE },
};

struct invalid_case {
	const char *in;
	const char *region;
	const char *reason;
};

#define CHARS "only digits, spaces and + ( ) - . are allowed"
#define NOTVALID "not a valid phone number"

static const struct invalid_case invalid[] = {
	/* tel: URIs, letters, surrounding text, extensions */
	{ "tel:+14155552671", NULL, CHARS },
	{ "TEL:+14155552671", NULL, CHARS },
	{ "sip:+14155552671@example.com", NULL, CHARS },
	{ "1-800-FLOWERS", "US", CHARS },
	{ "+1-800-flowers", NULL, CHARS },
	{ "+1 800 356 9377a", NULL, CHARS },
	{ "call +14155552671", NULL, CHARS },
	{ "+14155552671 please", NULL, CHARS },
	{ "+14155552671 ext. 12", NULL, CHARS },
	{ "+14155552671x12", NULL, CHARS },
	{ "+14155552671;ext=12", NULL, CHARS },
	{ "+14155552671#12", NULL, CHARS },
	{ "*67 +14155552671", NULL, CHARS },
	{ "+1/415/555/2671", NULL, CHARS },
	{ "+1\t415 555 2671", NULL, CHARS },
	{ "+14155552671\n", NULL, CHARS },
	{ "+1,415,555,2671", NULL, CHARS },
	/* '+' only once and first */
	{ "1+4155552671", "US", CHARS },
	{ "++14155552671", NULL, CHARS },
	{ "(+1) 415 555 2671", NULL, CHARS },
	/* non-ASCII digits and look-alikes */
	{ "+\xd9\xa1\xd9\xa4\xd9\xa1\xd9\xa5\xd9\xa5\xd9\xa5\xd9\xa5\xd9\xa2\xd9\xa6\xd9\xa7\xd9\xa1",
	  NULL, CHARS }, /* Arabic-Indic +١٤١٥٥٥٥٢٦٧١ */
	{ "+\xdb\xb1\xdb\xb4\xdb\xb1\xdb\xb5\xdb\xb5\xdb\xb5\xdb\xb5\xdb\xb2\xdb\xb6\xdb\xb7\xdb\xb1",
	  NULL, CHARS }, /* Extended Arabic-Indic (Persian) */
	{ "\xef\xbc\x8b\xef\xbc\x91\xef\xbc\x94\xef\xbc\x91\xef\xbc\x95\xef\xbc\x95\xef\xbc\x95"
	  "\xef\xbc\x95\xef\xbc\x92\xef\xbc\x96\xef\xbc\x97\xef\xbc\x91",
	  NULL, CHARS }, /* full-width ＋１４１５５５５２６７１ */
	{ "+1415555267\xef\xbc\x91", NULL, CHARS },
	{ "+1 415\xc2\xa0" "555 2671", NULL, CHARS }, /* no-break space */
	{ "+1 415\xe2\x80\x93" "555 2671", NULL, CHARS }, /* en dash */
	{ "\xe2\x80\xad+14155552671", NULL, CHARS },  /* bidi override */
	/* empty, too short, too long, no digits */
	{ "", NULL, "phone number is empty" },
	{ "   ", NULL, "phone number is empty" },
	{ "+", NULL, NOTVALID },
	{ "()-.", "US", NOTVALID },
	{ "+1", NULL, NOTVALID },
	{ "+12", NULL, NOTVALID },
	{ "+1 415 555 267", NULL, NOTVALID },
	{ "+1 415 555 26710", NULL, NOTVALID },
	{ "+1415555267112345", NULL, NOTVALID },
	{ "+1 415 555 2671 0000000000000000000000000000000000000000000000", NULL, NOTVALID },
	{ "+1 415 555 2671 00000000000000000000000000000000000000000000000000", NULL,
	  "phone number is too long" },
	{ "555 2671", "US", NOTVALID },
	/* possible but not valid */
	{ "+1 123 456 7890", NULL, NOTVALID },
	{ "02079460958", "US", NOTVALID },
	{ "+0 415 555 2671", NULL, NOTVALID },
	{ "+999 123 4567", NULL, NOTVALID },
	/* country */
	{ "4155552671", NULL, "country is required for a national number" },
	{ "4155552671", "", "country is required for a national number" },
	{ "14155552671", NULL, "country is required for a national number" },
	{ "(415) 555-2671", "ZZ", "unknown country 'ZZ'" },
	{ "(415) 555-2671", "xx", "unknown country 'XX'" },
	{ "(415) 555-2671", "USA", "country must be a two-letter iso 3166 code" },
	{ "(415) 555-2671", "U", "country must be a two-letter iso 3166 code" },
	{ "(415) 555-2671", "001", "country must be a two-letter iso 3166 code" },
	{ "(415) 555-2671", "1A", "country must be a two-letter iso 3166 code" },
};

static void test_valid(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		const struct valid_case *c = &valid[i];
		struct phone_number n;
		char err[PHONE_MAX_REASON] = "unset";
		enum verr e = phone_parse(c->in, c->region, &n, err, sizeof err);

		if (e != VERR_OK)
			fail_msg("'%s' (%s): %s", c->in, c->region ? c->region : "-", err);
		assert_string_equal(n.e164, c->e164);
		assert_string_equal(n.region, c->cc);
		if (n.type != c->type)
			fail_msg("'%s': type %s, want %s", c->in, phone_type_name(n.type),
			         phone_type_name(c->type));
		assert_string_equal(err, "");
	}
}

static void test_invalid(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
		const struct invalid_case *c = &invalid[i];
		struct phone_number n;
		char err[PHONE_MAX_REASON] = "";
		enum verr e = phone_parse(c->in, c->region, &n, err, sizeof err);

		if (e != VERR_INVALID)
			fail_msg("'%s' (%s): accepted as %s", c->in, c->region ? c->region : "-",
			         e == VERR_OK ? n.e164 : verr_strerror(e));
		if (strcmp(err, c->reason) != 0)
			fail_msg("'%s': reason '%s', want '%s'", c->in, err, c->reason);
	}
}

static void test_parse_edges(void **state)
{
	struct phone_number n;
	char small[8];

	(void)state;
	assert_int_equal(phone_parse(NULL, "US", &n, small, sizeof small), VERR_INVALID);
	/* reason truncated but terminated */
	assert_int_equal(phone_parse("tel:1", NULL, &n, small, sizeof small), VERR_INVALID);
	assert_int_equal(strlen(small), sizeof small - 1);
	/* no error buffer at all */
	assert_int_equal(phone_parse("+14155552671", NULL, &n, NULL, 0), VERR_OK);
	assert_int_equal(phone_parse("nope", NULL, &n, NULL, 0), VERR_INVALID);
}

static void test_type_names(void **state)
{
	static const struct {
		enum phone_type t;
		const char *name;
	} names[] = {
		{ PHONE_FIXED_LINE, "fixed_line" },
		{ PHONE_MOBILE, "mobile" },
		{ PHONE_FIXED_LINE_OR_MOBILE, "fixed_line_or_mobile" },
		{ PHONE_TOLL_FREE, "toll_free" },
		{ PHONE_PREMIUM_RATE, "premium_rate" },
		{ PHONE_SHARED_COST, "shared_cost" },
		{ PHONE_VOIP, "voip" },
		{ PHONE_PERSONAL_NUMBER, "personal_number" },
		{ PHONE_PAGER, "pager" },
		{ PHONE_UAN, "uan" },
		{ PHONE_VOICEMAIL, "voicemail" },
		{ PHONE_UNKNOWN, "unknown" },
	};
	static const char *const bad[] = { "", "Premium_Rate", "premium-rate", "premium_rate ",
		                           "premium", "fixed", "unknown_type" };
	enum phone_type t;
	size_t i;

	(void)state;
	assert_int_equal(sizeof names / sizeof names[0], PHONE_TYPE__COUNT);
	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		assert_string_equal(phone_type_name(names[i].t), names[i].name);
		assert_true(phone_type_parse(names[i].name, &t));
		assert_int_equal(t, names[i].t);
	}
	assert_string_equal(phone_type_name((enum phone_type)99), "unknown");
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		t = PHONE_MOBILE;
		assert_false(phone_type_parse(bad[i], &t));
		assert_int_equal(t, PHONE_MOBILE);
	}
	assert_false(phone_type_parse(NULL, &t));
}

static void test_region_known(void **state)
{
	(void)state;
	assert_true(phone_region_known("US"));
	assert_true(phone_region_known("gb"));
	assert_true(phone_region_known("Jp"));
	assert_false(phone_region_known("ZZ"));
	assert_false(phone_region_known("XX"));
	assert_false(phone_region_known("001"));
	assert_false(phone_region_known("USA"));
	assert_false(phone_region_known(""));
	assert_false(phone_region_known(NULL));
}

/* ---- policy ---- */

struct policy_config_case {
	const char *allowed;
	const char *blocked;
	const char *reason; /* NULL: valid */
};

/* The caller ID the policy tables are parsed with (its country: US). */
#define CALLER_ID "+14155550199"

static const struct policy_config_case policy_configs[] = {
	{ NULL, NULL, NULL },
	{ "", "", NULL },
	{ "   ", "  ", NULL },
	{ "*", NULL, NULL },
	{ " * ", "", NULL },
	{ "*,US", NULL, "'*' (every country) cannot be combined with countries in allowed countries" },
	{ "US, *", NULL, "'*' (every country) cannot be combined with countries in allowed countries" },
	{ "**", NULL, "invalid country '**' in allowed countries: expected two letters" },
	{ "US,CA,GB", NULL, NULL },
	{ " us , Ca,gb ", "premium_rate, voip", NULL },
	{ "US,US", "uan,uan", NULL },
	{ "USA", NULL, "invalid country 'USA' in allowed countries: expected two letters" },
	{ "US,,CA", NULL, "empty entry in allowed countries" },
	{ "US,", NULL, "empty entry in allowed countries" },
	{ ",US", NULL, "empty entry in allowed countries" },
	{ "US CA", NULL, "invalid country 'US CA' in allowed countries: expected two letters" },
	{ "US;CA", NULL, "invalid country 'US;CA' in allowed countries: expected two letters" },
	{ "ZZ", NULL, "unknown country 'ZZ' in allowed countries" },
	{ "US,xx", NULL, "unknown country 'XX' in allowed countries" },
	{ "001", NULL, "invalid country '001' in allowed countries: expected two letters" },
	{ "U1", NULL, "invalid country 'U1' in allowed countries: expected two letters" },
	{ NULL, "premium", "unknown phone type 'premium' in blocked types" },
	{ NULL, "PREMIUM_RATE", "unknown phone type 'PREMIUM_RATE' in blocked types" },
	{ NULL, "premium_rate,", "empty entry in blocked types" },
	{ NULL, "voip,,uan", "empty entry in blocked types" },
	{ NULL, "premium_rate;uan", "unknown phone type 'premium_rate;uan' in blocked types" },
};

static void test_policy_parse(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof policy_configs / sizeof policy_configs[0]; i++) {
		const struct policy_config_case *c = &policy_configs[i];
		struct phone_policy p;
		char err[PHONE_MAX_REASON] = "unset";
		enum verr e = phone_policy_parse(c->allowed, CALLER_ID, c->blocked, &p, err, sizeof err);

		if (c->reason == NULL) {
			if (e != VERR_OK)
				fail_msg("'%s' / '%s': %s", c->allowed ? c->allowed : "(null)",
				         c->blocked ? c->blocked : "(null)", err);
			assert_string_equal(err, "");
			continue;
		}
		if (e != VERR_CONFIG)
			fail_msg("'%s' / '%s': accepted", c->allowed ? c->allowed : "(null)",
			         c->blocked ? c->blocked : "(null)");
		if (strcmp(err, c->reason) != 0)
			fail_msg("reason '%s', want '%s'", err, c->reason);
	}
}

static void test_policy_fields(void **state)
{
	struct phone_policy p;
	char err[PHONE_MAX_REASON];

	(void)state;
	assert_int_equal(phone_policy_parse(" us , Ca,gb,US ", CALLER_ID, "premium_rate, voip", &p,
	                                    err, sizeof err),
	                 VERR_OK);
	assert_int_equal(p.n_allowed, 3);
	assert_string_equal(p.allowed[0], "US");
	assert_string_equal(p.allowed[1], "CA");
	assert_string_equal(p.allowed[2], "GB");
	assert_false(p.all_countries);
	assert_false(p.from_caller_id);
	assert_int_equal(p.blocked, (1u << PHONE_PREMIUM_RATE) | (1u << PHONE_VOIP));

	/* nothing said: the caller ID's country, not every country */
	assert_int_equal(phone_policy_parse(NULL, CALLER_ID, NULL, &p, err, sizeof err), VERR_OK);
	assert_int_equal(p.n_allowed, 1);
	assert_string_equal(p.allowed[0], "US");
	assert_true(p.from_caller_id);
	assert_false(p.all_countries);
	assert_int_equal(p.blocked, PHONE_BLOCKED_DEFAULT);
	assert_int_equal(phone_policy_parse("", CALLER_ID, "", &p, err, sizeof err), VERR_OK);
	assert_int_equal(p.n_allowed, 1);
	assert_int_equal(p.blocked, 0);
	/* every country only when said */
	assert_int_equal(phone_policy_parse("*", CALLER_ID, NULL, &p, err, sizeof err), VERR_OK);
	assert_true(p.all_countries);
	assert_int_equal(p.n_allowed, 0);
	assert_int_equal(phone_policy_parse("*", NULL, NULL, &p, err, sizeof err), VERR_OK);
	assert_true(p.all_countries);
}

/* The default allowed countries: the caller ID's own, or no start at all. */
static void test_policy_default_country(void **state)
{
	static const struct {
		const char *caller_id, *country; /* country NULL: refused, reason */
		const char *reason;
	} cases[] = {
		{ "+14155550199", "US", NULL },
		{ "+15062345678", "CA", NULL }, /* NANP, but Canada: not the US too */
		{ "+442079460958", "GB", NULL },
		{ "+4930123456", "DE", NULL },
		{ NULL, NULL,
		  "CALL_ALLOWED_COUNTRIES and TWILIO_FROM_NUMBER are both unset: list the countries "
		  "calls may go to ('*' for all)" },
		{ "", NULL,
		  "CALL_ALLOWED_COUNTRIES and TWILIO_FROM_NUMBER are both unset: list the countries "
		  "calls may go to ('*' for all)" },
		{ "+80012345678", NULL,
		  "CALL_ALLOWED_COUNTRIES is unset and TWILIO_FROM_NUMBER has no country: list the "
		  "countries calls may go to ('*' for all)" },
		{ "+1415555", NULL,
		  "CALL_ALLOWED_COUNTRIES is unset and TWILIO_FROM_NUMBER has no country: list the "
		  "countries calls may go to ('*' for all)" },
	};
	struct phone_policy p;
	char err[PHONE_MAX_REASON];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum verr e = phone_policy_parse("  ", cases[i].caller_id, NULL, &p, err, sizeof err);

		if (cases[i].country != NULL) {
			if (e != VERR_OK)
				fail_msg("%s: %s", cases[i].caller_id, err);
			assert_int_equal(p.n_allowed, 1);
			assert_string_equal(p.allowed[0], cases[i].country);
			assert_true(p.from_caller_id);
		} else {
			if (e != VERR_CONFIG)
				fail_msg("%s: accepted", cases[i].caller_id ? cases[i].caller_id : "(null)");
			assert_string_equal(err, cases[i].reason);
		}
		/* a list, or "*", needs no caller ID */
		assert_int_equal(phone_policy_parse("FR", cases[i].caller_id, NULL, &p, err, sizeof err),
		                 VERR_OK);
		assert_int_equal(phone_policy_parse("*", cases[i].caller_id, NULL, &p, err, sizeof err),
		                 VERR_OK);
	}
}

struct policy_case {
	const char *allowed;
	const char *blocked;
	const char *number;
	const char *why; /* NULL: allowed */
};

static const struct policy_case policy_cases[] = {
	/* every country, risky types blocked */
	{ "*", NULL, "+14155552671", NULL },
	{ "*", NULL, "+447400123456", NULL },
	{ "*", NULL, "+18002345678", NULL },
	{ "*", NULL, "+445612345678", NULL },
	{ "*", NULL, "+447012345678", NULL },
	{ "*", NULL, "+447640123456", NULL },
	{ "*", NULL, "+449012345678", "calls to premium rate numbers are not allowed" },
	{ "*", NULL, "+19002345678", "calls to premium rate numbers are not allowed" },
	{ "*", NULL, "+4918012345", "calls to shared cost numbers are not allowed" },
	{ "*", NULL, "+33884012345", "calls to shared cost numbers are not allowed" },
	{ "*", NULL, "+445512345678", "calls to universal access (uan) numbers are not allowed" },
	{ "*", NULL, "+49177991234567", "calls to voicemail access numbers are not allowed" },
	{ "*", NULL, "+80012345678", "calls to non-geographic numbers are not allowed" },
	{ "*", NULL, "+881612345678", "calls to non-geographic numbers are not allowed" },
	/* nothing blocked */
	{ "*", "", "+449012345678", NULL },
	{ "*", "", "+49177991234567", NULL },
	{ "*", "", "+80012345678", "calls to non-geographic numbers are not allowed" },
	/* operator's own list */
	{ "*", "mobile,voip", "+447400123456", "calls to mobile numbers are not allowed" },
	{ "*", "mobile,voip", "+445612345678", "calls to voip numbers are not allowed" },
	{ "*", "mobile,voip", "+449012345678", NULL },
	{ "*", "toll_free", "+18002345678", "calls to toll free numbers are not allowed" },
	{ "*", "fixed_line_or_mobile", "+14155552671",
	  "calls to fixed line or mobile numbers are not allowed" },
	/* the default: the caller ID's country (US) only */
	{ NULL, NULL, "+14155552671", NULL },
	{ NULL, NULL, "+447400123456", "calls to GB are not allowed" },
	{ NULL, NULL, "+15062345678", "calls to CA are not allowed" },
	{ "", NULL, "+33612345678", "calls to FR are not allowed" },
	{ NULL, NULL, "+19002345678", "calls to premium rate numbers are not allowed" },
	/* allowed countries */
	{ "US,CA,GB", NULL, "+14155552671", NULL },
	{ "US,CA,GB", NULL, "+15062345678", NULL },
	{ "US,CA,GB", NULL, "+442079460958", NULL },
	{ "US,CA,GB", NULL, "+33612345678", "calls to FR are not allowed" },
	{ "US,CA,GB", NULL, "+4930123456", "calls to DE are not allowed" },
	{ "us", NULL, "+15062345678", "calls to CA are not allowed" },
	{ "US,CA,GB", NULL, "+449012345678", "calls to premium rate numbers are not allowed" },
	{ "US", "", "+80012345678", "calls to non-geographic numbers are not allowed" },
};

static void test_policy_allows(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof policy_cases / sizeof policy_cases[0]; i++) {
		const struct policy_case *c = &policy_cases[i];
		struct phone_policy p;
		struct phone_number n;
		char err[PHONE_MAX_REASON], why[PHONE_MAX_REASON] = "unset";
		bool ok;

		assert_int_equal(phone_policy_parse(c->allowed, CALLER_ID, c->blocked, &p, err,
		                                    sizeof err),
		                 VERR_OK);
		if (phone_parse(c->number, NULL, &n, err, sizeof err) != VERR_OK)
			fail_msg("'%s': %s", c->number, err);
		ok = phone_policy_allows(&p, &n, why, sizeof why);
		if (c->why == NULL) {
			if (!ok)
				fail_msg("'%s' refused: %s", c->number, why);
			assert_string_equal(why, "");
		} else {
			if (ok)
				fail_msg("'%s' allowed, want '%s'", c->number, c->why);
			if (strcmp(why, c->why) != 0)
				fail_msg("'%s': '%s', want '%s'", c->number, why, c->why);
		}
	}
}

/* A valid number is never of type unknown, so this one is made up. */
static void test_policy_unknown_type(void **state)
{
	struct phone_policy p;
	struct phone_number n = { "+14155552671", "US", PHONE_UNKNOWN };
	char err[PHONE_MAX_REASON], why[PHONE_MAX_REASON];

	(void)state;
	assert_int_equal(phone_policy_parse(NULL, CALLER_ID, NULL, &p, err, sizeof err), VERR_OK);
	assert_false(phone_policy_allows(&p, &n, why, sizeof why));
	assert_string_equal(why, "calls to unclassified numbers are not allowed");
	n.type = (enum phone_type)42; /* out of range counts as unknown */
	assert_false(phone_policy_allows(&p, &n, NULL, 0));
	assert_int_equal(phone_policy_parse(NULL, CALLER_ID, "", &p, err, sizeof err), VERR_OK);
	assert_true(phone_policy_allows(&p, &n, why, sizeof why));
}

/* log_mask_phone (common/log.h) keeps the country code whole, and nothing of the number after it, for
 * every code libphonenumber knows: the mask's table agrees with its
 * metadata (one digit, two or three). */
static void test_log_mask_country_codes(void **state)
{
	char in[32], want[32], out[LOG_MASKED_MAX];
	int cc, known = 0;

	(void)state;
	for (cc = 1; cc <= 999; cc++) {
		if (!phone_lnp_calling_code_known(cc))
			continue;
		known++;
		snprintf(in, sizeof in, "+%d555501234", cc); /* 9 digits after the code */
		snprintf(want, sizeof want, "+%d" MASK "1234", cc);
		log_mask_phone(in, out, sizeof out);
		if (strcmp(out, want) != 0)
			fail_msg("country code %d: %s, want %s", cc, out, want);
	}
	assert_true(known > 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_parse_edges),
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_region_known),
		cmocka_unit_test(test_policy_parse),
		cmocka_unit_test(test_policy_fields),
		cmocka_unit_test(test_policy_default_country),
		cmocka_unit_test(test_policy_allows),
		cmocka_unit_test(test_policy_unknown_type),
		cmocka_unit_test(test_log_mask_country_codes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

#ifndef VOICE_PHONE_H
#define VOICE_PHONE_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Phone numbers: strict input checks here in C, then parsing, normalisation
 * to E.164 and classification by libphonenumber (phone_lnp.cc), then the
 * operator's destination policy (docs/API.md, "POST /call": 403 for a
 * country or number type that is not allowed, 422 for an invalid number).
 */

#define PHONE_MAX_INPUT 64    /* longest accepted input, bytes, excluding NUL */
#define PHONE_MAX_E164 17     /* '+' + at most 15 digits (ITU-T E.164 §6) + NUL */
#define PHONE_MAX_REGION 4    /* "US" or "001" + NUL */
#define PHONE_MAX_ALLOWED 256 /* entries in an allowed-countries list */
#define PHONE_MAX_REASON 128  /* suggested size of err / why buffers */

/* libphonenumber's PhoneNumberUtil::PhoneNumberType, in the same order. */
enum phone_type {
	PHONE_FIXED_LINE,
	PHONE_MOBILE,
	PHONE_FIXED_LINE_OR_MOBILE,
	PHONE_TOLL_FREE,
	PHONE_PREMIUM_RATE,
	PHONE_SHARED_COST,
	PHONE_VOIP,
	PHONE_PERSONAL_NUMBER,
	PHONE_PAGER,
	PHONE_UAN,
	PHONE_VOICEMAIL,
	PHONE_UNKNOWN,
	PHONE_TYPE__COUNT
};

/*
 * A valid number. region is the ISO 3166 alpha-2 code of the number's country
 * (upper case), or "001" for non-geographic numbers (country calling codes
 * 800, 808, 870, 878, 881, 882, 883, 888, 979: libphonenumber's "world").
 */
struct phone_number {
	char e164[PHONE_MAX_E164];
	char region[PHONE_MAX_REGION];
	enum phone_type type;
};

/* Region code libphonenumber gives non-geographic numbers. */
#define PHONE_REGION_NONGEO "001"

/* Static snake_case name of t ("premium_rate", "fixed_line_or_mobile", ...);
 * "unknown" for values outside the enum. Never NULL. */
const char *phone_type_name(enum phone_type t);

/* Parses an exact, case-sensitive phone_type_name() back into *out.
 * Returns false (and leaves *out alone) for anything else, NULL included. */
bool phone_type_parse(const char *name, enum phone_type *out);

/*
 * True if region is two ASCII letters (either case) naming a region
 * libphonenumber knows ("US", "gb"). False for NULL, "", "001", "ZZ".
 */
bool phone_region_known(const char *region);

/*
 * Parses a phone number written by a person or a program.
 *
 * input must be a NUL-terminated string of at most PHONE_MAX_INPUT bytes made
 * of ASCII digits, spaces and "+ ( ) - ." only, holding at least one digit,
 * with '+' at most once and only as its first non-space character. Everything
 * else (tel: URIs, surrounding text, letters including vanity letters,
 * non-ASCII digits, extensions, empty input) is refused here, before
 * libphonenumber sees it, because libphonenumber is lenient (it extracts a
 * number from text and maps letters to digits).
 *
 * Input starting with '+' is read as international (E.164 with optional
 * punctuation) and default_region is ignored. Other input is national and is
 * read with default_region, an ISO 3166 alpha-2 code in either case; NULL or
 * "" means a national number is refused. International dialling prefixes in
 * national input ("011 44 …" for US, "0044 …" for GB) are understood.
 *
 * The number must be valid per libphonenumber's IsValidNumber (right length
 * and prefix for its country), not merely possible.
 *
 * On success fills *out (e164, region, type via GetNumberType and
 * GetRegionCodeForNumber) and returns VERR_OK. Errors, with a lowercase human
 * reason in err (always NUL-terminated when errsz > 0; *out is then
 * unspecified):
 *   VERR_INVALID  "only digits, spaces and + ( ) - . are allowed",
 *                 "phone number is empty", "phone number is too long",
 *                 "country is required for a national number",
 *                 "unknown country 'XX'", "not a valid phone number"
 *   VERR_NOMEM    libphonenumber could not allocate
 *   VERR_IO       libphonenumber failed in an unexpected way
 * Never throws; safe to call after fork (PhoneNumberUtil is a process-wide
 * singleton created on first use).
 */
enum verr phone_parse(const char *input, const char *default_region, struct phone_number *out,
                      char *err, size_t errsz);

/*
 * Where calls may go. Build it with phone_policy_parse; the fields are for
 * tests and logs.
 */
struct phone_policy {
	char allowed[PHONE_MAX_ALLOWED][3]; /* upper-case alpha-2 codes */
	size_t n_allowed;
	bool all_countries;                 /* "*": every country, allowed is empty */
	bool from_caller_id;                /* allowed is the caller ID's country (the default) */
	unsigned blocked;                   /* bit (1u << phone_type) set: refused */
};

/* Types blocked when the operator says nothing: premium_rate, shared_cost,
 * uan, voicemail, unknown (numbers whose cost cannot be known up front). */
#define PHONE_BLOCKED_DEFAULT                                                      \
	((1u << PHONE_PREMIUM_RATE) | (1u << PHONE_SHARED_COST) | (1u << PHONE_UAN) | \
	 (1u << PHONE_VOICEMAIL) | (1u << PHONE_UNKNOWN))

/*
 * Builds a policy from configuration text.
 *
 * allowed_countries: comma-separated ISO 3166 alpha-2 codes ("US,CA,GB"),
 * either case, spaces around entries ignored, duplicates harmless. Each entry
 * must be two letters that libphonenumber knows. "*" alone means every
 * country; it must be said explicitly, because a leaked API key that can
 * dial anywhere is worth money to international revenue-share fraud. NULL,
 * "" or only spaces means the country of caller_id (the default caller ID,
 * E.164, e.g. TWILIO_FROM_NUMBER: "+14155550199" allows US only), and is
 * refused when caller_id is NULL, "" or has no country (non-geographic).
 *
 * blocked_types: comma-separated phone_type_name()s ("premium_rate,voip"),
 * spaces around entries ignored. NULL means PHONE_BLOCKED_DEFAULT; "" (or
 * only spaces) means nothing is blocked.
 *
 * Returns VERR_OK, or VERR_CONFIG with a reason naming the bad entry in err
 * (e.g. "unknown country 'XX' in allowed countries", "'*' (every country)
 * cannot be combined with countries in allowed countries", "empty entry in
 * blocked types", "unknown phone type 'prem' in blocked types", or why no
 * default could be taken from caller_id); *out is then unspecified.
 */
enum verr phone_policy_parse(const char *allowed_countries, const char *caller_id,
                             const char *blocked_types, struct phone_policy *out, char *err,
                             size_t errsz);

/*
 * True if the policy lets calls go to n. Otherwise false with a lowercase
 * reason in why (when whysz > 0), e.g. "calls to premium rate numbers are not
 * allowed", "calls to GB are not allowed". Non-geographic numbers (region
 * "001": satellite and international networks, a classic toll-fraud target)
 * are never allowed, because no country list can name them.
 */
bool phone_policy_allows(const struct phone_policy *p, const struct phone_number *n, char *why,
                         size_t whysz);

/*
 * Internal: the libphonenumber wrapper in phone_lnp.cc. Use phone_parse and
 * phone_region_known instead; these assume already checked input.
 */
enum phone_lnp_status {
	PHONE_LNP_OK = 0,
	PHONE_LNP_NO_COUNTRY,  /* no country calling code and no usable region */
	PHONE_LNP_INVALID,     /* not a number, too short/long, or not valid */
	PHONE_LNP_NOMEM,       /* std::bad_alloc */
	PHONE_LNP_FAILED       /* any other exception */
};

/* Parses input with region (upper case, or "") and, if the number is valid,
 * writes its E.164 form, region code and type (an enum phone_type value).
 * Never lets an exception out. */
enum phone_lnp_status phone_lnp_parse(const char *input, const char *region, char *e164,
                                      size_t e164sz, char *region_out, size_t regionsz,
                                      int *type);

/* True if region (upper case) is a region libphonenumber supports. */
bool phone_lnp_region_supported(const char *region);

/* True if cc is a country calling code libphonenumber has metadata for
 * (geographic or not); for tests that check tables against it. */
bool phone_lnp_calling_code_known(int cc);

#ifdef __cplusplus
}
#endif

#endif

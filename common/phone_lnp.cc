/*
 * The only C++ in the tree: a thin extern "C" wrapper around libphonenumber's
 * PhoneNumberUtil (https://github.com/google/libphonenumber, cpp/). Input has
 * already been checked by phone.c. No exception ever crosses into C.
 */
#include "phone.h"

#include <cstring>
#include <new>
#include <string>

#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

static bool copy_out(const std::string &s, char *dst, size_t dstsz)
{
	if (dstsz == 0 || s.size() >= dstsz)
		return false;
	std::memcpy(dst, s.data(), s.size());
	dst[s.size()] = '\0';
	return true;
}

static int map_type(PhoneNumberUtil::PhoneNumberType t)
{
	switch (t) {
	case PhoneNumberUtil::FIXED_LINE: return PHONE_FIXED_LINE;
	case PhoneNumberUtil::MOBILE: return PHONE_MOBILE;
	case PhoneNumberUtil::FIXED_LINE_OR_MOBILE: return PHONE_FIXED_LINE_OR_MOBILE;
	case PhoneNumberUtil::TOLL_FREE: return PHONE_TOLL_FREE;
	case PhoneNumberUtil::PREMIUM_RATE: return PHONE_PREMIUM_RATE;
	case PhoneNumberUtil::SHARED_COST: return PHONE_SHARED_COST;
	case PhoneNumberUtil::VOIP: return PHONE_VOIP;
	case PhoneNumberUtil::PERSONAL_NUMBER: return PHONE_PERSONAL_NUMBER;
	case PhoneNumberUtil::PAGER: return PHONE_PAGER;
	case PhoneNumberUtil::UAN: return PHONE_UAN;
	case PhoneNumberUtil::VOICEMAIL: return PHONE_VOICEMAIL;
	case PhoneNumberUtil::UNKNOWN: return PHONE_UNKNOWN;
	}
	return PHONE_UNKNOWN;
}

extern "C" enum phone_lnp_status phone_lnp_parse(const char *input, const char *region,
                                                 char *e164, size_t e164sz, char *region_out,
                                                 size_t regionsz, int *type)
{
	try {
		const PhoneNumberUtil *u = PhoneNumberUtil::GetInstance();
		PhoneNumber n;
		std::string formatted, rc;

		switch (u->Parse(std::string(input), std::string(region), &n)) {
		case PhoneNumberUtil::NO_PARSING_ERROR:
			break;
		case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR:
			return PHONE_LNP_NO_COUNTRY;
		default:
			return PHONE_LNP_INVALID;
		}
		/* phone.c refuses extensions; this guards against a lenient parse.
		 * IsValidNumber(n) is exactly this, but finding the region is the
		 * costly part (a regular expression per region that shares the
		 * calling code), so it is done once. */
		if (n.has_extension())
			return PHONE_LNP_INVALID;
		u->GetRegionCodeForNumber(n, &rc);
		if (!u->IsValidNumberForRegion(n, rc))
			return PHONE_LNP_INVALID;
		u->Format(n, PhoneNumberUtil::E164, &formatted);
		if (!copy_out(formatted, e164, e164sz) || !copy_out(rc, region_out, regionsz))
			return PHONE_LNP_INVALID;
		*type = map_type(u->GetNumberType(n));
		return PHONE_LNP_OK;
	} catch (const std::bad_alloc &) {
		return PHONE_LNP_NOMEM;
	} catch (...) {
		return PHONE_LNP_FAILED;
	}
}

extern "C" bool phone_lnp_region_supported(const char *region)
{
	try {
		/* 0 means "not a supported region" (GetCountryCodeForRegion). */
		return PhoneNumberUtil::GetInstance()->GetCountryCodeForRegion(std::string(region)) != 0;
	} catch (...) {
		return false;
	}
}

extern "C" bool phone_lnp_calling_code_known(int cc)
{
	try {
		std::string rc;

		/* "ZZ" (unknown) for a code with no metadata; "001" for non-geographic */
		PhoneNumberUtil::GetInstance()->GetRegionCodeForCountryCode(cc, &rc);
		return rc != "ZZ";
	} catch (...) {
		return false;
	}
}

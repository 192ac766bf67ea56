#include "simcfg.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "log.h"
#include "num.h"
#include "sid.h"

static bool is_secret(const char *s)
{
	size_t n = strlen(s), i;

	if (n < 8 || n >= SIMCFG_MAX_SECRET)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

static enum verr bad(char *err, size_t errsz, const char *name, const char *what)
{
	snprintf(err, errsz, "%s %s", name, what);
	return VERR_CONFIG;
}

/* '+' then 2 to 15 digits, the first not 0. */
static bool is_e164(const char *s, size_t n)
{
	size_t i;

	if (n < 3 || n > 16 || s[0] != '+' || s[1] == '0')
		return false;
	for (i = 1; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* A comma list of E.164 numbers into out (at most SIMCFG_MAX_NUMBERS). */
static bool parse_numbers(const char *v, char out[][SIMCFG_MAX_E164], size_t *n)
{
	const char *p = v;

	*n = 0;
	while (*p != '\0') {
		size_t len = strcspn(p, ",");

		if (len > 0) {
			if (*n == SIMCFG_MAX_NUMBERS || !is_e164(p, len))
				return false;
			memcpy(out[*n], p, len);
			out[*n][len] = '\0';
			(*n)++;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	return true;
}

/* Strict decimal float: digits with an optional fraction, nothing else. */
static bool parse_scale(const char *s, double *out)
{
	char *end;
	double v;
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
			return false;
	if (i == 0 || i > 16)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !isfinite(v) || v <= 0.0 || v > 100.0)
		return false;
	*out = v;
	return true;
}

enum verr simcfg_load(struct simcfg *cfg, char *err, size_t errsz)
{
	const char *v;

	memset(cfg, 0, sizeof *cfg);
	v = config_get("TWILIO_ACCOUNT_SID");
	if (v == NULL || v[0] == '\0')
		return bad(err, errsz, "TWILIO_ACCOUNT_SID", "is not set");
	if (!sid_valid(v, "AC"))
		return bad(err, errsz, "TWILIO_ACCOUNT_SID", "must be AC followed by 32 hex digits");
	str_copy(cfg->account_sid, sizeof cfg->account_sid, v);

	v = config_get("TWILIO_AUTH_TOKEN");
	if (v == NULL || v[0] == '\0')
		return bad(err, errsz, "TWILIO_AUTH_TOKEN", "is not set");
	if (!is_secret(v))
		return bad(err, errsz, "TWILIO_AUTH_TOKEN", "must be 8 to 128 printable characters");
	str_copy(cfg->auth_token, sizeof cfg->auth_token, v);

	v = config_get("TWILIO_API_KEY_SID");
	if (v != NULL && v[0] != '\0') {
		if (!sid_valid(v, "SK"))
			return bad(err, errsz, "TWILIO_API_KEY_SID", "must be SK followed by 32 hex digits");
		str_copy(cfg->api_key_sid, sizeof cfg->api_key_sid, v);
	}
	v = config_get("TWILIO_API_KEY_SECRET");
	if (v != NULL && v[0] != '\0') {
		if (!is_secret(v))
			return bad(err, errsz, "TWILIO_API_KEY_SECRET", "must be 8 to 128 printable characters");
		str_copy(cfg->api_key_secret, sizeof cfg->api_key_secret, v);
	}
	if ((cfg->api_key_sid[0] == '\0') != (cfg->api_key_secret[0] == '\0'))
		return bad(err, errsz, cfg->api_key_sid[0] == '\0' ? "TWILIO_API_KEY_SID" : "TWILIO_API_KEY_SECRET",
		           "is not set but its pair is");

	v = config_get("SIM_STATE_DIR");
	if (v == NULL || v[0] == '\0')
		return bad(err, errsz, "SIM_STATE_DIR", "is not set");
	if (v[0] != '/' || !str_copy(cfg->state_dir, sizeof cfg->state_dir - 64, v))
		return bad(err, errsz, "SIM_STATE_DIR", "must be an absolute path under 960 bytes");

	v = config_get("SIM_CA_FILE");
	if (v != NULL && v[0] != '\0' && !str_copy(cfg->ca_file, sizeof cfg->ca_file, v))
		return bad(err, errsz, "SIM_CA_FILE", "is too long");

	cfg->time_scale = 1.0;
	v = config_get("SIM_TIME_SCALE");
	if (v != NULL && v[0] != '\0' && !parse_scale(v, &cfg->time_scale))
		return bad(err, errsz, "SIM_TIME_SCALE", "must be a decimal number in (0, 100]");

	cfg->slow_ms = 20000;
	v = config_get("SIM_SLOW_MS");
	if (v != NULL && v[0] != '\0' && !num_parse(v, 1000, 600000, &cfg->slow_ms))
		return bad(err, errsz, "SIM_SLOW_MS", "must be an integer from 1000 to 600000");

	v = config_get("SIM_ACCOUNT_NAME");
	str_copy(cfg->account_name, sizeof cfg->account_name, "Simulated account");
	if (v != NULL && v[0] != '\0') {
		size_t i;

		for (i = 0; v[i] != '\0'; i++)
			if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
				return bad(err, errsz, "SIM_ACCOUNT_NAME", "must be printable");
		if (!str_copy(cfg->account_name, sizeof cfg->account_name, v))
			return bad(err, errsz, "SIM_ACCOUNT_NAME", "must be at most 64 bytes");
	}
	v = config_get("SIM_ACCOUNT_STATUS");
	str_copy(cfg->account_status, sizeof cfg->account_status, v != NULL && v[0] ? v : "active");
	if (strcmp(cfg->account_status, "active") != 0 && strcmp(cfg->account_status, "suspended") != 0 &&
	    strcmp(cfg->account_status, "closed") != 0)
		return bad(err, errsz, "SIM_ACCOUNT_STATUS", "must be active, suspended or closed");
	v = config_get("SIM_ACCOUNT_TYPE");
	str_copy(cfg->account_type, sizeof cfg->account_type, v != NULL && v[0] ? v : "Full");
	if (strcmp(cfg->account_type, "Full") != 0 && strcmp(cfg->account_type, "Trial") != 0)
		return bad(err, errsz, "SIM_ACCOUNT_TYPE", "must be Full or Trial");
	v = config_get("SIM_INCOMING_NUMBERS");
	if (v == NULL || v[0] == '\0')
		v = config_get("TWILIO_FROM_NUMBER");
	if (v != NULL && !parse_numbers(v, cfg->numbers, &cfg->nnumbers))
		return bad(err, errsz, "SIM_INCOMING_NUMBERS",
		           "must be a comma list of at most 16 E.164 numbers");
	v = config_get("SIM_CALLER_IDS");
	if (v != NULL && !parse_numbers(v, cfg->caller_ids, &cfg->ncaller_ids))
		return bad(err, errsz, "SIM_CALLER_IDS", "must be a comma list of at most 16 E.164 numbers");

	v = config_get("LOG_LEVEL");
	if (v != NULL && v[0] != '\0') {
		enum log_level lvl;

		if (!log_level_parse(v, &lvl))
			return bad(err, errsz, "LOG_LEVEL", "must be debug, info, warn or error");
		log_set_level(lvl);
	}
	log_add_secret(cfg->auth_token);
	if (cfg->api_key_secret[0] != '\0')
		log_add_secret(cfg->api_key_secret);
	return VERR_OK;
}

long long simcfg_scaled_ms(const struct simcfg *cfg, long long ms)
{
	double v = (double)ms * cfg->time_scale;

	if (v <= 0.0)
		return 0;
	if (v > 86400000.0)
		return 86400000;
	return (long long)v;
}

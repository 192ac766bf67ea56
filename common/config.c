#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "num.h"
#include "sid.h"
#include "url.h"

#define ENV_MAX_FILE (64 * 1024)
#define ENV_MAX_VARS 128

struct env_var {
	char *name;
	char *value;
};

/* Variables from the .env file; owned here, replaced by each config_load. */
static struct env_var envfile[ENV_MAX_VARS];
static size_t nenvfile;

static void envfile_clear(void)
{
	size_t i;

	for (i = 0; i < nenvfile; i++) {
		free(envfile[i].name);
		free(envfile[i].value);
	}
	nenvfile = 0;
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

static bool is_var_name(const char *s)
{
	if (!(isupper((unsigned char)*s) || *s == '_'))
		return false;
	for (; *s != '\0'; s++)
		if (!(isupper((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_'))
			return false;
	return true;
}

/* Parses KEY=VALUE lines: '#' comments, optional "export ", values optionally
 * in single or double quotes (no escapes). Malformed lines are an error. */
static enum verr envfile_load(const char *path, char *err, size_t errsz)
{
	FILE *f;
	char line[4096];
	int lineno = 0;

	envfile_clear();
	f = fopen(path, "r");
	if (f == NULL) {
		if (errno == ENOENT)
			return VERR_OK;
		snprintf(err, errsz, "cannot read %s: %s", path, strerror(errno));
		return VERR_IO;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		char *p, *eq, *val;
		size_t vlen;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errsz, "%s line %d is too long", path, lineno);
			goto fail;
		}
		line[strcspn(line, "\n")] = '\0';
		p = trim(line);
		if (*p == '\0' || *p == '#')
			continue;
		if (strncmp(p, "export ", 7) == 0)
			p = trim(p + 7);
		eq = strchr(p, '=');
		if (eq == NULL) {
			snprintf(err, errsz, "%s line %d is not NAME=value", path, lineno);
			goto fail;
		}
		*eq = '\0';
		p = trim(p);
		val = trim(eq + 1);
		vlen = strlen(val);
		if (vlen >= 2 && (val[0] == '"' || val[0] == '\'') && val[vlen - 1] == val[0]) {
			val[vlen - 1] = '\0';
			val++;
		}
		if (!is_var_name(p)) {
			snprintf(err, errsz, "%s line %d: bad variable name", path, lineno);
			goto fail;
		}
		if (nenvfile >= ENV_MAX_VARS) {
			snprintf(err, errsz, "%s has more than %d variables", path, ENV_MAX_VARS);
			goto fail;
		}
		envfile[nenvfile].name = strdup(p);
		envfile[nenvfile].value = strdup(val);
		if (envfile[nenvfile].name == NULL || envfile[nenvfile].value == NULL) {
			free(envfile[nenvfile].name);
			free(envfile[nenvfile].value);
			snprintf(err, errsz, "out of memory reading %s", path);
			goto fail;
		}
		nenvfile++;
		if ((size_t)ftell(f) > ENV_MAX_FILE) {
			snprintf(err, errsz, "%s is larger than %d bytes", path, ENV_MAX_FILE);
			goto fail;
		}
	}
	fclose(f);
	return VERR_OK;
fail:
	fclose(f);
	envfile_clear();
	return VERR_CONFIG;
}

const char *config_get(const char *name)
{
	const char *v = getenv(name);
	size_t i;

	if (v != NULL)
		return v;
	for (i = nenvfile; i > 0; i--) /* a later line wins, as in a shell */
		if (strcmp(envfile[i - 1].name, name) == 0)
			return envfile[i - 1].value;
	return NULL;
}

/* Printable ASCII without spaces: what tokens and secrets look like. */
static bool is_token(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s), i;

	if (n < min || n > max)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

/* An absolute http(s) URL (url_check) with no query, fragment or userinfo.
 * The trailing slash is removed. https_only refuses http. */
static bool is_base_url(char *s, bool https_only)
{
	size_t n;

	if (url_check(s, URL_NO_QUERY | (https_only ? 0u : URL_HTTP)) != VERR_OK)
		return false;
	n = strlen(s);
	while (n > 0 && s[n - 1] == '/')
		s[--n] = '\0';
	return true;
}

static bool is_e164(const char *s)
{
	size_t n = strlen(s), i;

	if (n < 8 || n > 16 || s[0] != '+' || s[1] == '0')
		return false;
	for (i = 1; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* Copies variable name into dst (default def when unset or empty). */
static enum verr get_str(const char *name, const char *def, char *dst, size_t dstsz,
                         char *err, size_t errsz)
{
	const char *v = config_get(name);

	if (v == NULL || v[0] == '\0')
		v = def;
	if (!str_copy(dst, dstsz, v)) {
		snprintf(err, errsz, "%s is longer than %zu bytes", name, dstsz - 1);
		return VERR_CONFIG;
	}
	return VERR_OK;
}

static enum verr get_ms(const char *name, long long def, long long min, long long max,
                        long long *out, char *err, size_t errsz)
{
	const char *v = config_get(name);

	if (v == NULL || v[0] == '\0') {
		*out = def;
		return VERR_OK;
	}
	if (!num_parse(v, min, max, out)) {
		snprintf(err, errsz, "%s must be an integer from %lld to %lld", name, min, max);
		return VERR_CONFIG;
	}
	return VERR_OK;
}

#define TRY(x)                       \
	do {                             \
		if ((e = (x)) != VERR_OK)    \
			return e;                \
	} while (0)

#define REQUIRE(cond, ...)                          \
	do {                                            \
		if (!(cond)) {                              \
			snprintf(err, errsz, __VA_ARGS__);      \
			return VERR_CONFIG;                     \
		}                                           \
	} while (0)

enum verr config_load(struct config *cfg, unsigned need, char *err, size_t errsz)
{
	const char *path = getenv("VOICE_ENV_FILE");
	char level[16];
	enum verr e;

	memset(cfg, 0, sizeof *cfg);
	TRY(envfile_load(path != NULL && path[0] != '\0' ? path : ".env", err, errsz));

	TRY(get_str("TWILIO_ACCOUNT_SID", "", cfg->account_sid, sizeof cfg->account_sid, err, errsz));
	REQUIRE(cfg->account_sid[0] != '\0', "TWILIO_ACCOUNT_SID is not set");
	REQUIRE(sid_valid(cfg->account_sid, "AC"), "TWILIO_ACCOUNT_SID must be AC followed by 32 hex digits");

	TRY(get_str("TWILIO_AUTH_TOKEN", "", cfg->auth_token, sizeof cfg->auth_token, err, errsz));
	TRY(get_str("TWILIO_API_KEY_SID", "", cfg->api_key_sid, sizeof cfg->api_key_sid, err, errsz));
	TRY(get_str("TWILIO_API_KEY_SECRET", "", cfg->api_key_secret, sizeof cfg->api_key_secret, err, errsz));
	REQUIRE(cfg->auth_token[0] == '\0' || is_token(cfg->auth_token, 16, 128),
	        "TWILIO_AUTH_TOKEN must be 16 to 128 printable characters without spaces");
	REQUIRE(cfg->api_key_sid[0] == '\0' || sid_valid(cfg->api_key_sid, "SK"),
	        "TWILIO_API_KEY_SID must be SK followed by 32 hex digits");
	REQUIRE((cfg->api_key_sid[0] == '\0') == (cfg->api_key_secret[0] == '\0'),
	        "%s is set without %s",
	        cfg->api_key_sid[0] ? "TWILIO_API_KEY_SID" : "TWILIO_API_KEY_SECRET",
	        cfg->api_key_sid[0] ? "TWILIO_API_KEY_SECRET" : "TWILIO_API_KEY_SID");
	REQUIRE(cfg->api_key_secret[0] == '\0' || is_token(cfg->api_key_secret, 16, 128),
	        "TWILIO_API_KEY_SECRET must be 16 to 128 printable characters without spaces");
	if (need & CONFIG_NEED_WEBHOOK)
		REQUIRE(cfg->auth_token[0] != '\0', "TWILIO_AUTH_TOKEN is not set");
	if (need & CONFIG_NEED_REST)
		REQUIRE(cfg->auth_token[0] != '\0' || cfg->api_key_sid[0] != '\0',
		        "TWILIO_AUTH_TOKEN is not set (nor TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET)");

	TRY(get_str("TWILIO_FROM_NUMBER", "", cfg->from_number, sizeof cfg->from_number, err, errsz));
	REQUIRE(cfg->from_number[0] == '\0' || is_e164(cfg->from_number),
	        "TWILIO_FROM_NUMBER must be an E.164 number such as +14155550100");

	TRY(get_str("TWILIO_API_BASE_URL", "https://api.twilio.com", cfg->api_base_url,
	            sizeof cfg->api_base_url, err, errsz));
	REQUIRE(is_base_url(cfg->api_base_url, false),
	        "TWILIO_API_BASE_URL must be an http(s) URL without query or credentials");

	TRY(get_str("PUBLIC_BASE_URL", "", cfg->public_base_url, sizeof cfg->public_base_url, err, errsz));
	REQUIRE(cfg->public_base_url[0] != '\0', "PUBLIC_BASE_URL is not set");
	REQUIRE(is_base_url(cfg->public_base_url, true),
	        "PUBLIC_BASE_URL must be an https URL without query or credentials");

	TRY(get_str("DATABASE_URL", "", cfg->database_url, sizeof cfg->database_url, err, errsz));
	REQUIRE(cfg->database_url[0] != '\0', "DATABASE_URL is not set");

	TRY(get_str("CALL_ALLOWED_COUNTRIES", "", cfg->allowed_countries,
	            sizeof cfg->allowed_countries, err, errsz));

	TRY(get_str("LOG_LEVEL", "info", level, sizeof level, err, errsz));
	REQUIRE(log_level_parse(level, &cfg->log_level), "LOG_LEVEL must be debug, info, warn or error");

	TRY(get_str("VOICE_INBOUND_MODE", "say", level, sizeof level, err, errsz));
	if (strcmp(level, "say") == 0)
		cfg->inbound_mode = VOICE_MODE_SAY;
	else if (strcmp(level, "dial") == 0)
		cfg->inbound_mode = VOICE_MODE_DIAL;
	else if (strcmp(level, "reject") == 0)
		cfg->inbound_mode = VOICE_MODE_REJECT;
	else
		REQUIRE(false, "VOICE_INBOUND_MODE must be say, dial or reject");
	TRY(get_str("VOICE_GREETING", "Hello. You have reached a Twilio Voice service. Goodbye.",
	            cfg->greeting, sizeof cfg->greeting, err, errsz));
	TRY(get_str("VOICE_FORWARD_TO", "", cfg->forward_to, sizeof cfg->forward_to, err, errsz));
	REQUIRE(cfg->forward_to[0] == '\0' || is_e164(cfg->forward_to),
	        "VOICE_FORWARD_TO must be an E.164 number such as +14155550100");
	REQUIRE(cfg->inbound_mode != VOICE_MODE_DIAL || cfg->forward_to[0] != '\0',
	        "VOICE_FORWARD_TO is not set (VOICE_INBOUND_MODE=dial needs it)");

	TRY(get_str("VOICE_SPOOL_DIR", "/var/spool/twilio-voice", cfg->spool_dir,
	            sizeof cfg->spool_dir, err, errsz));
	TRY(get_str("VOICE_METRICS_FILE", "/dev/shm/twilio-voice.metrics", cfg->metrics_file,
	            sizeof cfg->metrics_file, err, errsz));
	REQUIRE(cfg->metrics_file[0] == '/' && cfg->metrics_file[strlen(cfg->metrics_file) - 1] != '/',
	        "VOICE_METRICS_FILE must be an absolute file path such as /dev/shm/twilio-voice.metrics");

	TRY(get_ms("TWILIO_TIMEOUT_MS", 15000, 1000, 120000, &cfg->twilio_timeout_ms, err, errsz));
	TRY(get_ms("TWILIO_CONNECT_TIMEOUT_MS", 5000, 100, 60000, &cfg->twilio_connect_timeout_ms,
	           err, errsz));
	REQUIRE(cfg->twilio_connect_timeout_ms <= cfg->twilio_timeout_ms,
	        "TWILIO_CONNECT_TIMEOUT_MS must not exceed TWILIO_TIMEOUT_MS");

	log_set_level(cfg->log_level);
	log_add_secret(cfg->auth_token);
	log_add_secret(cfg->api_key_secret);
	log_add_secret(cfg->database_url); /* may hold a password */
	return VERR_OK;
}

/* A positive integer setting (default def when unset or empty). */
static enum verr get_int(const char *name, long long def, long long max, int *out, char *err,
                         size_t errsz)
{
	long long v;
	enum verr e = get_ms(name, def, 1, max, &v, err, errsz);

	*out = (int)v;
	return e;
}

enum verr config_pool_load(const char *pool, const struct config_pool_defaults *def,
                           struct config_pool *out, char *err, size_t errsz)
{
	char workers[48], threads[48], conns[48];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	enum verr e;

	snprintf(workers, sizeof workers, "VOICE_%s_WORKERS", pool);
	snprintf(threads, sizeof threads, "VOICE_%s_THREADS", pool);
	snprintf(conns, sizeof conns, "VOICE_%s_DB_CONNECTIONS", pool);
	if (cpus < 1)
		cpus = 1;
	cpus = (cpus + def->cpus_per_worker - 1) / def->cpus_per_worker;
	if (cpus > CONFIG_MAX_WORKERS)
		cpus = CONFIG_MAX_WORKERS;
	/* unset sizes follow the set ones: a default worker count follows the
	 * CPUs but is never more than the connection cap (set or default), and
	 * a default cap grows to a worker count that was set */
	TRY(get_int(conns, 0, 10000, &out->db_connections, err, errsz));
	TRY(get_int(workers, 0, CONFIG_MAX_WORKERS, &out->workers, err, errsz));
	if (out->workers == 0) {
		int cap = out->db_connections > 0 ? out->db_connections : def->db_connections;

		out->workers = cap < cpus ? cap : (int)cpus;
	}
	if (out->db_connections == 0)
		out->db_connections =
		    def->db_connections > out->workers ? def->db_connections : out->workers;
	TRY(get_int(threads, def->threads, CONFIG_MAX_THREADS, &out->threads, err, errsz));
	REQUIRE(out->db_connections >= out->workers,
	        "%s (%d) must be at least %s (%d): every worker process needs a connection", conns,
	        out->db_connections, workers, out->workers);
	out->db_per_worker = out->db_connections / out->workers;
	return VERR_OK;
}

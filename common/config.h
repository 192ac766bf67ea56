#ifndef VOICE_CONFIG_H
#define VOICE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "log.h"

/*
 * Configuration from the environment and the .env file (VOICE_ENV_FILE, or
 * ./.env); a variable set in the environment wins over the file. Everything
 * is validated once at start. Every variable read here is documented in
 * .env.example.
 */
#define CONFIG_MAX_SID 35     /* "AC" / "SK" + 32 hex + NUL */
#define CONFIG_MAX_SECRET 129
#define CONFIG_MAX_URL 1024
#define CONFIG_MAX_NUMBER 33
#define CONFIG_MAX_LIST 512
#define CONFIG_MAX_TEXT 512

/* What POST /twilio/voice answers an inbound call with (VOICE_INBOUND_MODE). */
enum voice_mode { VOICE_MODE_SAY = 0, VOICE_MODE_DIAL, VOICE_MODE_REJECT };

struct config {
	char account_sid[CONFIG_MAX_SID];
	char auth_token[CONFIG_MAX_SECRET];
	char api_key_sid[CONFIG_MAX_SID];       /* "" when unset */
	char api_key_secret[CONFIG_MAX_SECRET]; /* "" when unset */
	char from_number[CONFIG_MAX_NUMBER];    /* "" when unset */
	char api_base_url[CONFIG_MAX_URL];      /* no trailing slash */
	char public_base_url[CONFIG_MAX_URL];   /* https origin, no trailing slash */
	char database_url[CONFIG_MAX_URL];
	char allowed_countries[CONFIG_MAX_LIST];
	enum log_level log_level;
	enum voice_mode inbound_mode;
	char greeting[CONFIG_MAX_TEXT];          /* VOICE_GREETING */
	char forward_to[CONFIG_MAX_NUMBER];      /* VOICE_FORWARD_TO, "" unless dial */
	char spool_dir[CONFIG_MAX_URL];          /* VOICE_SPOOL_DIR */
	char metrics_file[CONFIG_MAX_URL];       /* VOICE_METRICS_FILE, an absolute path */
	long long twilio_timeout_ms;
	long long twilio_connect_timeout_ms;
};

/* What a worker needs beyond the common settings. */
enum config_need {
	CONFIG_NEED_REST = 1u << 0,    /* REST credentials (token or API key pair) */
	CONFIG_NEED_WEBHOOK = 1u << 1, /* TWILIO_AUTH_TOKEN for signatures */
};

/*
 * Loads and validates the configuration into cfg. need is a mask of
 * config_need. On failure returns VERR_CONFIG with one line naming the
 * variable in err (e.g. "TWILIO_ACCOUNT_SID is not set"); VERR_IO when the
 * .env file exists but cannot be read. Secrets are registered with the logger.
 */
enum verr config_load(struct config *cfg, unsigned need, char *err, size_t errsz);

/*
 * A pool's runtime sizes: VOICE_<POOL>_WORKERS processes (default: one per
 * def.cpus_per_worker online CPUs, at least one), VOICE_<POOL>_THREADS
 * requests in flight per process and VOICE_<POOL>_DB_CONNECTIONS
 * PostgreSQL connections for the whole pool, split evenly over its
 * processes (db_per_worker). pool is the upper-case pool name in those
 * variables (CALL or WEBHOOK). Call after config_load (it reads the same
 * .env file).
 * VERR_CONFIG with one line naming the variable.
 */
#define CONFIG_MAX_WORKERS 64
#define CONFIG_MAX_THREADS 1024
struct config_pool {
	int workers, threads, db_connections, db_per_worker;
};
struct config_pool_defaults {
	int cpus_per_worker, threads, db_connections;
};
enum verr config_pool_load(const char *pool, const struct config_pool_defaults *def,
                           struct config_pool *out, char *err, size_t errsz);

/*
 * Looks up one variable: the environment first, then the .env file loaded by
 * the last config_load (or none). Returns a borrowed string valid until the
 * next config_load, or NULL. For module-specific settings.
 */
const char *config_get(const char *name);

#endif

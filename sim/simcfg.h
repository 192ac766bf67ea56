#ifndef SIM_SIMCFG_H
#define SIM_SIMCFG_H

#include <stddef.h>

#include "err.h"

/*
 * The simulator's settings, read from the environment (config_get: the
 * environment, or .env when a config_load ran; the simulator runs none).
 *
 *   TWILIO_ACCOUNT_SID     required, AC + 32 hex
 *   TWILIO_AUTH_TOKEN      required, 8..128 printable characters
 *   TWILIO_API_KEY_SID     optional, SK + 32 hex (with the secret)
 *   TWILIO_API_KEY_SECRET  optional, 8..128 printable characters (with the SID)
 *   SIM_STATE_DIR          required, a directory the simulator may write
 *   SIM_CA_FILE            optional, PEM bundle to verify webhook TLS with
 *                          (default: the system store; verification stays on)
 *   SIM_TIME_SCALE         optional float in (0, 100], default 1.0
 *   SIM_SLOW_MS            optional integer in [1000, 600000], default 20000
 *   SIM_ACCOUNT_NAME       optional, the account's friendly_name (printable,
 *                          at most 64 bytes), default "Simulated account"
 *   SIM_ACCOUNT_STATUS     optional, active (default), suspended or closed
 *   SIM_ACCOUNT_TYPE       optional, Full (default) or Trial
 *   SIM_INCOMING_NUMBERS   optional, comma list of E.164 numbers the account
 *                          owns (IncomingPhoneNumbers); default
 *                          TWILIO_FROM_NUMBER when that is set
 *   SIM_CALLER_IDS         optional, comma list of E.164 verified caller IDs
 *                          (OutgoingCallerIds); default none
 *   LOG_LEVEL              optional, debug|info|warn|error (default info)
 */
#define SIMCFG_MAX_SID 35
#define SIMCFG_MAX_SECRET 129
#define SIMCFG_MAX_PATH 1024
#define SIMCFG_MAX_ERROR 160
#define SIMCFG_MAX_NAME 65
#define SIMCFG_MAX_NUMBERS 16
#define SIMCFG_MAX_E164 17 /* '+' and at most 15 digits */

struct simcfg {
	char account_sid[SIMCFG_MAX_SID];
	char auth_token[SIMCFG_MAX_SECRET];
	char api_key_sid[SIMCFG_MAX_SID];       /* "" when unset */
	char api_key_secret[SIMCFG_MAX_SECRET]; /* "" when unset */
	char state_dir[SIMCFG_MAX_PATH];
	char ca_file[SIMCFG_MAX_PATH];          /* "" when unset */
	double time_scale;
	long long slow_ms;
	char account_name[SIMCFG_MAX_NAME];
	char account_status[16];
	char account_type[8];
	char numbers[SIMCFG_MAX_NUMBERS][SIMCFG_MAX_E164];    /* SIM_INCOMING_NUMBERS */
	size_t nnumbers;
	char caller_ids[SIMCFG_MAX_NUMBERS][SIMCFG_MAX_E164]; /* SIM_CALLER_IDS */
	size_t ncaller_ids;
};

/*
 * Loads and validates the settings into cfg and registers the secrets with
 * the logger. On failure returns VERR_CONFIG with one lowercase line naming
 * the variable in err ("TWILIO_AUTH_TOKEN is not set").
 */
enum verr simcfg_load(struct simcfg *cfg, char *err, size_t errsz);

/* ms nominal milliseconds scaled by SIM_TIME_SCALE (never negative). */
long long simcfg_scaled_ms(const struct simcfg *cfg, long long ms);

#endif

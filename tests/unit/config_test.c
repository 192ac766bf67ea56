#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static const char *const vars[] = {
	"TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY_SID", "TWILIO_API_KEY_SECRET",
	"TWILIO_FROM_NUMBER", "TWILIO_API_BASE_URL", "PUBLIC_BASE_URL", "DATABASE_URL",
	"CALL_ALLOWED_COUNTRIES", "LOG_LEVEL", "TWILIO_TIMEOUT_MS", "TWILIO_CONNECT_TIMEOUT_MS",
	"VOICE_METRICS_FILE",
};

static void set_valid_env(void)
{
	size_t i;

	for (i = 0; i < sizeof vars / sizeof vars[0]; i++)
		unsetenv(vars[i]);
	setenv("VOICE_ENV_FILE", "/nonexistent/.env", 1);
	setenv("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef", 1);
	setenv("TWILIO_AUTH_TOKEN", "0123456789abcdef0123456789abcdef", 1);
	setenv("PUBLIC_BASE_URL", "https://voice.example.com/", 1);
	setenv("DATABASE_URL", "postgresql://voice@127.0.0.1/voice", 1);
}

static void test_valid(void **state)
{
	struct config cfg;
	char err[256] = "";

	(void)state;
	set_valid_env();
	assert_int_equal(config_load(&cfg, CONFIG_NEED_REST | CONFIG_NEED_WEBHOOK, err, sizeof err), VERR_OK);
	assert_string_equal(cfg.public_base_url, "https://voice.example.com"); /* slash trimmed */
	assert_string_equal(cfg.api_base_url, "https://api.twilio.com");      /* default */
	setenv("PUBLIC_BASE_URL", "https://voice.example.com/hooks@v1//", 1); /* '@' in a path */
	assert_int_equal(config_load(&cfg, CONFIG_NEED_REST | CONFIG_NEED_WEBHOOK, err, sizeof err), VERR_OK);
	assert_string_equal(cfg.public_base_url, "https://voice.example.com/hooks@v1");
	setenv("PUBLIC_BASE_URL", "https://voice.example.com/", 1);
	assert_int_equal(cfg.twilio_timeout_ms, 15000);
	assert_int_equal(cfg.log_level, LOG_INFO);
	assert_string_equal(cfg.metrics_file, "/dev/shm/twilio-voice.metrics"); /* default */

	setenv("TWILIO_API_KEY_SID", "SK0123456789abcdef0123456789abcdef", 1);
	setenv("TWILIO_API_KEY_SECRET", "abcdefabcdefabcdefabcdefabcdefab", 1);
	unsetenv("TWILIO_AUTH_TOKEN");
	assert_int_equal(config_load(&cfg, CONFIG_NEED_REST, err, sizeof err), VERR_OK);
}

/* Each row: variable to set (or unset when value is NULL) on top of a valid
 * environment, the need mask, and a word the error line must contain. */
static void test_invalid(void **state)
{
	static const struct {
		const char *var, *value;
		unsigned need;
		const char *want;
	} invalid[] = {
		{ "TWILIO_ACCOUNT_SID", NULL, 0, "TWILIO_ACCOUNT_SID is not set" },
		{ "TWILIO_ACCOUNT_SID", "AC123", 0, "TWILIO_ACCOUNT_SID" },
		{ "TWILIO_ACCOUNT_SID", "SK0123456789abcdef0123456789abcdef", 0, "TWILIO_ACCOUNT_SID" },
		{ "TWILIO_AUTH_TOKEN", NULL, CONFIG_NEED_WEBHOOK, "TWILIO_AUTH_TOKEN is not set" },
		{ "TWILIO_AUTH_TOKEN", NULL, CONFIG_NEED_REST, "TWILIO_AUTH_TOKEN" },
		{ "TWILIO_AUTH_TOKEN", "has space in it 0123456", 0, "TWILIO_AUTH_TOKEN" },
		{ "TWILIO_API_KEY_SID", "SK0123456789abcdef0123456789abcdef", 0, "TWILIO_API_KEY_SECRET" },
		{ "TWILIO_API_KEY_SECRET", "abcdefabcdefabcdefabcdefabcdefab", 0, "TWILIO_API_KEY_SID" },
		{ "TWILIO_FROM_NUMBER", "4155550100", 0, "TWILIO_FROM_NUMBER" },
		{ "TWILIO_API_BASE_URL", "ftp://x", 0, "TWILIO_API_BASE_URL" },
		{ "PUBLIC_BASE_URL", NULL, 0, "PUBLIC_BASE_URL is not set" },
		{ "PUBLIC_BASE_URL", "http://voice.example.com", 0, "PUBLIC_BASE_URL" },
		{ "PUBLIC_BASE_URL", "https://voice.example.com/?x=1", 0, "PUBLIC_BASE_URL" },
		{ "PUBLIC_BASE_URL", "https://user:pw@voice.example.com", 0, "PUBLIC_BASE_URL" },
		/* refused since the check is url_check's (accepted before) */
		{ "PUBLIC_BASE_URL", "https://:443", 0, "PUBLIC_BASE_URL" },
		{ "PUBLIC_BASE_URL", "https://voice.example.com:99999", 0, "PUBLIC_BASE_URL" },
		{ "PUBLIC_BASE_URL", "https://voice.example.com:0", 0, "PUBLIC_BASE_URL" },
		{ "PUBLIC_BASE_URL", "https://voice\x01.example.com", 0, "PUBLIC_BASE_URL" },
		{ "PUBLIC_BASE_URL", "https://voice.example.com/a<b>", 0, "PUBLIC_BASE_URL" },
		{ "PUBLIC_BASE_URL", "https://0x7f.1", 0, "PUBLIC_BASE_URL" },
		{ "PUBLIC_BASE_URL", "https:///voice.example.com", 0, "PUBLIC_BASE_URL" },
		{ "TWILIO_API_BASE_URL", "http://[::1", 0, "TWILIO_API_BASE_URL" },
		{ "TWILIO_API_BASE_URL", "HTTPS://api.twilio.com", 0, "TWILIO_API_BASE_URL" },
		{ "DATABASE_URL", NULL, 0, "DATABASE_URL is not set" },
		{ "LOG_LEVEL", "loud", 0, "LOG_LEVEL" },
		{ "TWILIO_TIMEOUT_MS", "15s", 0, "TWILIO_TIMEOUT_MS" },
		{ "TWILIO_CONNECT_TIMEOUT_MS", "60000", 0, "TWILIO_CONNECT_TIMEOUT_MS" },
		{ "VOICE_METRICS_FILE", "run/metrics.shm", 0, "VOICE_METRICS_FILE" },
		{ "VOICE_METRICS_FILE", "/run/voice/", 0, "VOICE_METRICS_FILE" },
	};
	struct config cfg;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
		char err[256] = "";

		set_valid_env();
		if (invalid[i].value == NULL)
			unsetenv(invalid[i].var);
		else
			setenv(invalid[i].var, invalid[i].value, 1);
		assert_int_equal(config_load(&cfg, invalid[i].need, err, sizeof err), VERR_CONFIG);
		if (strstr(err, invalid[i].want) == NULL)
			fail_msg("row %zu: error '%s' does not mention '%s'", i, err, invalid[i].want);
		assert_null(strchr(err, '\n'));
	}
}

static void test_env_file_and_precedence(void **state)
{
	char path[] = "/tmp/voice-config-test-XXXXXX";
	int fd = mkstemp(path);
	FILE *f;
	struct config cfg;
	char err[256] = "";

	(void)state;
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("# comment\n\nexport LOG_LEVEL=debug\nTWILIO_FROM_NUMBER=\"+14155550199\"\n"
	      "DATABASE_URL='postgresql://file@127.0.0.1/file'\n", f);
	fclose(f);
	set_valid_env();
	unsetenv("LOG_LEVEL");
	setenv("VOICE_ENV_FILE", path, 1);
	assert_int_equal(config_load(&cfg, 0, err, sizeof err), VERR_OK);
	assert_int_equal(cfg.log_level, LOG_DEBUG);                 /* from the file */
	assert_string_equal(cfg.from_number, "+14155550199");         /* quotes removed */
	assert_string_equal(cfg.database_url, "postgresql://voice@127.0.0.1/voice"); /* env wins */
	assert_string_equal(config_get("LOG_LEVEL"), "debug");

	f = fopen(path, "w");
	fputs("this is not an assignment\n", f);
	fclose(f);
	assert_int_equal(config_load(&cfg, 0, err, sizeof err), VERR_CONFIG);
	assert_non_null(strstr(err, "line 1"));
	unlink(path);
}

/* Pool sizes: unset ones follow the set ones; the cap holds every worker. */
static void test_pool_sizes(void **state)
{
	static const struct {
		const char *workers, *conns, *threads;
		int want_workers, want_conns, want_per_worker, want_threads; /* 0 workers: refused */
	} cases[] = {
		{ NULL, NULL, NULL, -1, 4, -1, 32 },  /* CPUs / 2, capped by the default cap of 4 */
		{ "3", NULL, NULL, 3, 4, 1, 32 },
		{ "6", NULL, "8", 6, 6, 1, 8 },       /* a default cap grows to the workers */
		{ NULL, "1", NULL, 1, 1, 1, 32 },     /* default workers never exceed the cap */
		{ "2", "9", NULL, 2, 9, 4, 32 },
		{ "4", "3", NULL, 0, 0, 0, 0 },       /* set cap below set workers */
		{ "0", NULL, NULL, 0, 0, 0, 0 },
		{ "65", NULL, NULL, 0, 0, 0, 0 },
		{ NULL, NULL, "0", 0, 0, 0, 0 },
		{ "two", NULL, NULL, 0, 0, 0, 0 },
	};
	static const struct config_pool_defaults defaults = { 2, 32, 4 };
	long cpus = (sysconf(_SC_NPROCESSORS_ONLN) + 1) / 2;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct config_pool p;
		char err[256] = "";
		enum verr e;

		if (cases[i].workers) setenv("VOICE_WEBHOOK_WORKERS", cases[i].workers, 1);
		else unsetenv("VOICE_WEBHOOK_WORKERS");
		if (cases[i].conns) setenv("VOICE_WEBHOOK_DB_CONNECTIONS", cases[i].conns, 1);
		else unsetenv("VOICE_WEBHOOK_DB_CONNECTIONS");
		if (cases[i].threads) setenv("VOICE_WEBHOOK_THREADS", cases[i].threads, 1);
		else unsetenv("VOICE_WEBHOOK_THREADS");
		e = config_pool_load("WEBHOOK", &defaults, &p, err, sizeof err);
		if (cases[i].want_workers == 0) {
			assert_int_equal(e, VERR_CONFIG);
			assert_non_null(strstr(err, "VOICE_WEBHOOK_"));
			continue;
		}
		assert_int_equal(e, VERR_OK);
		if (cases[i].want_workers < 0) {
			assert_int_equal(p.workers, cpus < 4 ? cpus : 4);
		} else {
			assert_int_equal(p.workers, cases[i].want_workers);
			assert_int_equal(p.db_per_worker, cases[i].want_per_worker);
		}
		assert_int_equal(p.db_connections, cases[i].want_conns);
		assert_int_equal(p.threads, cases[i].want_threads);
		assert_true(p.db_per_worker * p.workers <= p.db_connections);
	}
	unsetenv("VOICE_WEBHOOK_WORKERS");
	unsetenv("VOICE_WEBHOOK_DB_CONNECTIONS");
	unsetenv("VOICE_WEBHOOK_THREADS");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_env_file_and_precedence),
		cmocka_unit_test(test_pool_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

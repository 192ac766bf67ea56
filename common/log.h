#ifndef VOICE_LOG_H
#define VOICE_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

/*
 * JSON-lines logger: one object per line on stderr with "time" (RFC 3339 UTC,
 * milliseconds), "level", "msg", "request_id" (when set) and the fields given.
 * Strings are JSON-escaped. Every registered secret is replaced by
 * "[redacted]" wherever it appears in a line, so a secret can never be printed
 * even by mistake. Phone-number fields are masked (+1•••0100).
 */
enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

enum log_field_kind { LOG_F_END = 0, LOG_F_STR, LOG_F_INT, LOG_F_PHONE };

struct log_field {
	enum log_field_kind kind;
	const char *key;
	const char *str; /* LOG_F_STR, LOG_F_PHONE; NULL omits the field */
	long long num;   /* LOG_F_INT */
};

#define LF_STR(k, v) ((struct log_field){ LOG_F_STR, (k), (v), 0 })
#define LF_INT(k, v) ((struct log_field){ LOG_F_INT, (k), NULL, (long long)(v) })
#define LF_PHONE(k, v) ((struct log_field){ LOG_F_PHONE, (k), (v), 0 })
#define LF_END ((struct log_field){ LOG_F_END, NULL, NULL, 0 })

/* Emits one line if level >= the configured level. Arguments after msg are
 * struct log_field values terminated by LF_END; use the macros below. */
void log_emit(enum log_level level, const char *msg, ...);

#define log_debug(...) log_emit(LOG_DEBUG, __VA_ARGS__, LF_END)
#define log_info(...) log_emit(LOG_INFO, __VA_ARGS__, LF_END)
#define log_warn(...) log_emit(LOG_WARN, __VA_ARGS__, LF_END)
#define log_error(...) log_emit(LOG_ERROR, __VA_ARGS__, LF_END)

/* Parses "debug", "info", "warn", "error". */
bool log_level_parse(const char *s, enum log_level *out);
void log_set_level(enum log_level level);

/* Registers a secret to redact (at most LOG_MAX_SECRETS; strings shorter than
 * 4 bytes are ignored). The string is copied. */
#define LOG_MAX_SECRETS 8
void log_add_secret(const char *secret);

/* Writes the current UTC time as RFC 3339 with milliseconds (or
 * microseconds when micro) into out, which should hold LOG_MAX_TIME bytes. */
#define LOG_MAX_TIME 40
void log_timestamp(char *out, size_t outsz, bool micro);

/* Sets the request id added to every line the calling thread logs until
 * cleared with NULL. Copied; truncated to LOG_MAX_REQUEST_ID bytes. Every
 * other logger call is thread-safe too: a line is one write(2). */
#define LOG_MAX_REQUEST_ID 64
void log_set_request_id(const char *rid);

/* Writes a masked form of a phone number into out. E.164 keeps its country
 * calling code and the last 4, 3 or 2 digits (9 or more, 7 or 8, 4 to 6
 * digits after the country code; none when fewer): +1•••0100, +44•••0958,
 * +354•••234. Anything else (client:alice, anonymous) keeps only its last
 * two characters when it has at least six and they are ASCII letters or
 * digits: •••ce. Always NUL-terminates; out should hold LOG_MASKED_MAX
 * bytes. */
#define LOG_MASKED_MAX 48
void log_mask_phone(const char *in, char *out, size_t outsz);

/* Appends s to b as a JSON string literal (with quotes), escaping control
 * characters, '"' and '\\'. VERR_TOOBIG, VERR_NOMEM. */
enum verr log_json_string(struct buf *b, const char *s) VOICE_MUST_USE;

#endif

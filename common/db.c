#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "buf.h"
#include "log.h"

#define DB_CONNECT_TIMEOUT "5"

/* Every statement the service runs. Prepared lazily, once per connection.
 * retry_safe: may be sent again after the connection broke mid-statement
 * (reads, and writes whose repetition changes nothing). */
enum stmt {
	STMT_PING,
	STMT_APIKEY_FIND,
	STMT__COUNT
};

static const struct {
	const char *name;
	const char *sql;
	int nparams;
	bool retry_safe;
} stmts[STMT__COUNT] = {
	[STMT_PING] = { "ping", "SELECT 1", 0, true },
	[STMT_APIKEY_FIND] = { "apikey_find",
		"SELECT name FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", 1, true },
};

struct db {
	char *conninfo;
	PGconn *conn;
	bool prepared[STMT__COUNT];
};

struct db *db_new(const char *conninfo)
{
	struct db *db = calloc(1, sizeof *db);

	if (db == NULL)
		return NULL;
	db->conninfo = strdup(conninfo);
	if (db->conninfo == NULL) {
		free(db);
		return NULL;
	}
	return db;
}

static void db_disconnect(struct db *db)
{
	PQfinish(db->conn);
	db->conn = NULL;
	memset(db->prepared, 0, sizeof db->prepared);
}

void db_free(struct db *db)
{
	if (db == NULL)
		return;
	db_disconnect(db);
	free(db->conninfo);
	free(db);
}

/* The first line of a libpq message, without the trailing newline. */
static void first_line(const char *msg, char *out, size_t outsz)
{
	str_copy(out, outsz, msg != NULL ? msg : "");
	out[strcspn(out, "\r\n")] = '\0';
}

static enum verr db_connect(struct db *db)
{
	/* conninfo comes last so that its own settings (e.g. connect_timeout,
	 * sslmode=require for Supabase) win over these defaults */
	const char *const keys[] = { "connect_timeout", "application_name", "dbname", NULL };
	const char *const vals[] = { DB_CONNECT_TIMEOUT, "twilio-voice", db->conninfo, NULL };
	char msg[256];

	if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK)
		return VERR_OK;
	db_disconnect(db);
	db->conn = PQconnectdbParams(keys, vals, 1);
	if (db->conn == NULL)
		return VERR_NOMEM;
	if (PQstatus(db->conn) != CONNECTION_OK) {
		first_line(PQerrorMessage(db->conn), msg, sizeof msg);
		log_warn("could not connect to the database", LF_STR("error", msg));
		db_disconnect(db);
		return VERR_DB_DOWN;
	}
	log_info("connected to the database", LF_INT("server_version", PQserverVersion(db->conn)));
	return VERR_OK;
}

static enum verr db_prepare(struct db *db, enum stmt id)
{
	PGresult *res;
	char msg[256];
	enum verr e = VERR_OK;

	if (db->prepared[id])
		return VERR_OK;
	res = PQprepare(db->conn, stmts[id].name, stmts[id].sql, stmts[id].nparams, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		first_line(PQerrorMessage(db->conn), msg, sizeof msg);
		e = PQstatus(db->conn) == CONNECTION_OK ? VERR_DB : VERR_DB_DOWN;
		log_error("could not prepare statement", LF_STR("statement", stmts[id].name),
		          LF_STR("error", msg));
	} else {
		db->prepared[id] = true;
	}
	PQclear(res);
	return e;
}

/*
 * Runs prepared statement id with params; on success *out holds a result
 * whose status is want (caller frees with PQclear). A connection lost
 * before or during the statement is re-established, and the statement sent
 * once more if it is retry_safe. VERR_DB_DOWN, VERR_DB (logged, with the
 * SQLSTATE copied into sqlstate when given).
 */
static enum verr db_run(struct db *db, enum stmt id, const char *const *params,
                        ExecStatusType want, PGresult **out, char sqlstate[6])
{
	int attempt;
	char msg[256];

	*out = NULL;
	if (sqlstate != NULL)
		sqlstate[0] = '\0';
	for (attempt = 0; attempt < 2; attempt++) {
		PGresult *res;
		enum verr e = db_connect(db);

		if (e == VERR_OK)
			e = db_prepare(db, id);
		if (e == VERR_DB_DOWN && attempt == 0 && db->conn != NULL) {
			db_disconnect(db);
			continue;
		}
		if (e != VERR_OK)
			return e;
		res = PQexecPrepared(db->conn, stmts[id].name, stmts[id].nparams, params, NULL, NULL, 0);
		if (PQresultStatus(res) == want) {
			*out = res;
			return VERR_OK;
		}
		first_line(PQerrorMessage(db->conn), msg, sizeof msg);
		if (PQstatus(db->conn) != CONNECTION_OK) {
			PQclear(res);
			db_disconnect(db);
			log_warn("lost the database connection", LF_STR("statement", stmts[id].name),
			         LF_STR("error", msg));
			if (attempt == 0 && stmts[id].retry_safe)
				continue;
			return VERR_DB_DOWN;
		}
		if (sqlstate != NULL) {
			const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);

			str_copy(sqlstate, 6, st != NULL ? st : "");
		}
		log_error("database statement failed", LF_STR("statement", stmts[id].name),
		          LF_STR("error", msg));
		PQclear(res);
		return VERR_DB;
	}
	return VERR_DB_DOWN;
}

enum verr db_ping(struct db *db)
{
	PGresult *res;
	enum verr e = db_run(db, STMT_PING, NULL, PGRES_TUPLES_OK, &res, NULL);

	PQclear(res);
	return e == VERR_OK ? VERR_OK : VERR_DB_DOWN;
}

enum verr db_apikey_find(struct db *db, const char *hash_hex, char *name, size_t namesz)
{
	const char *params[1] = { hash_hex };
	PGresult *res;
	enum verr e = db_run(db, STMT_APIKEY_FIND, params, PGRES_TUPLES_OK, &res, NULL);

	if (e == VERR_OK) {
		if (PQntuples(res) == 0)
			e = VERR_NOTFOUND;
		else
			str_copy(name, namesz, PQgetvalue(res, 0, 0));
	}
	PQclear(res);
	return e;
}

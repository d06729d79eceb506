/*
 * db.c - the SQLite store.  See db.h for the promises.
 *
 * Connections are per thread (pthread key), because a shared connection
 * would serialise every request on its mutex; WAL lets readers run beside
 * the one writer, and busy_timeout makes writers queue instead of failing.
 * Statements are prepared once per connection from the table below; this
 * file must never build SQL text from input.
 */
#include "db_int.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "embed.h"
#include "log.h"

#define DB_BUSY_TIMEOUT_MS 5000
#define MIGRATION_PREFIX "db/migrations/"

static void
conn_close(struct db_conn *c)
{
	int i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nst; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close(c->h);
	free(c);
}

/* pthread key destructor: runs when a thread that used the store ends.  The
 * key's value is a pointer into db->conns, unlinked here. */
struct conn_slot {
	struct db *db;
	struct db_conn *conn;
};

static void
conn_slot_free(void *p)
{
	struct conn_slot *slot = p;
	struct db_conn **pp;

	pthread_mutex_lock(&slot->db->lock);
	for (pp = &slot->db->conns; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == slot->conn) {
			*pp = slot->conn->next;
			break;
		}
	}
	pthread_mutex_unlock(&slot->db->lock);
	conn_close(slot->conn);
	free(slot);
}

or_rc
db_sqlite_fail(struct or_err *err, sqlite3 *h, const char *what)
{
	return or_fail(err, OR_E_IO, "database_error", NULL, "database: %s: %s",
		       what, h != NULL ? sqlite3_errmsg(h) : "cannot open");
}

static or_rc
conn_open(struct db *db, struct db_conn **out, struct or_err *err)
{
	static const char *pragmas =
		"PRAGMA journal_mode = WAL;"
		"PRAGMA synchronous = FULL;"
		"PRAGMA foreign_keys = ON;";
	struct db_conn *c = NULL;
	int rc;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	rc = sqlite3_open_v2(db->path, &c->h,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(c->h, DB_BUSY_TIMEOUT_MS);
	rc = sqlite3_exec(c->h, pragmas, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	*out = c;
	return OR_OK;
fail:
	db_sqlite_fail(err, c->h, db->path);
	conn_close(c);
	return err != NULL ? err->rc : OR_E_IO;
}

or_rc
db_conn(struct db *db, struct db_conn **out, struct or_err *err)
{
	struct conn_slot *slot;
	struct db_conn *c = NULL;
	or_rc rc;

	slot = pthread_getspecific(db->key);
	if (slot != NULL) {
		*out = slot->conn;
		return OR_OK;
	}
	rc = conn_open(db, &c, err);
	if (rc != OR_OK)
		return rc;
	slot = malloc(sizeof(*slot));
	if (slot == NULL) {
		conn_close(c);
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	}
	slot->db = db;
	slot->conn = c;
	pthread_mutex_lock(&db->lock);
	c->next = db->conns;
	db->conns = c;
	pthread_mutex_unlock(&db->lock);
	pthread_setspecific(db->key, slot);
	*out = c;
	return OR_OK;
}

or_rc
db_stmt(struct db_conn *c, const char *sql, sqlite3_stmt **out,
	struct or_err *err)
{
	int i;

	for (i = 0; i < c->nst; i++) {
		if (c->sql[i] == sql) {
			sqlite3_reset(c->st[i]);
			sqlite3_clear_bindings(c->st[i]);
			*out = c->st[i];
			return OR_OK;
		}
	}
	if (c->nst == DB_STMT_MAX)
		return or_fail(err, OR_E_IO, NULL, NULL,
			       "database: statement cache full (raise DB_STMT_MAX)");
	if (sqlite3_prepare_v3(c->h, sql, -1, SQLITE_PREPARE_PERSISTENT,
			       &c->st[c->nst], NULL) != SQLITE_OK)
		return db_sqlite_fail(err, c->h, "prepare");
	c->sql[c->nst] = sql;
	*out = c->st[c->nst++];
	return OR_OK;
}

or_rc
db_step_done(struct db_conn *c, sqlite3_stmt *s, struct or_err *err)
{
	int rc;

	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return OR_OK;
	if (rc == SQLITE_CONSTRAINT)
		return or_fail(err, OR_E_CONFLICT, NULL, NULL, "database: %s",
			       sqlite3_errmsg(c->h));
	if (rc == SQLITE_BUSY)
		return or_fail(err, OR_E_RETRYABLE, NULL, NULL,
			       "database is busy, try again");
	return db_sqlite_fail(err, c->h, "write");
}

static const char sql_begin[] = "BEGIN IMMEDIATE";
static const char sql_commit[] = "COMMIT";
static const char sql_rollback[] = "ROLLBACK";
static const char sql_ping[] = "SELECT count(*) FROM schema_migrations";
static const char sql_audit[] =
	"INSERT INTO audit (at, actor, remote, action, target, detail) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

static or_rc
exec_simple(struct db_conn *c, const char *sql, struct or_err *err)
{
	sqlite3_stmt *s = NULL;
	or_rc rc;

	rc = db_stmt(c, sql, &s, err);
	if (rc != OR_OK)
		return rc;
	return db_step_done(c, s, err);
}

or_rc
db_tx_begin(struct db_conn *c, struct or_err *err)
{
	return exec_simple(c, sql_begin, err);
}

or_rc
db_tx_commit(struct db *db, struct db_conn *c, struct or_err *err)
{
	or_rc rc;

	rc = exec_simple(c, sql_commit, err);
	if (rc == OR_OK)
		atomic_fetch_add(&db->generation, 1);
	return rc;
}

or_rc
db_tx_commit_quiet(struct db_conn *c, struct or_err *err)
{
	return exec_simple(c, sql_commit, err);
}

void
db_tx_rollback(struct db_conn *c)
{
	if (!sqlite3_get_autocommit(c->h))
		exec_simple(c, sql_rollback, NULL);
}

void
db_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v == NULL)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

json_t *
db_col_json(sqlite3_stmt *s, int i)
{
	const char *t = (const char *)sqlite3_column_text(s, i);
	json_t *v;

	if (t == NULL)
		return json_object();
	v = json_loads(t, 0, NULL);
	return v != NULL ? v : json_object();
}

json_t *
db_col_str(sqlite3_stmt *s, int i)
{
	const char *t = (const char *)sqlite3_column_text(s, i);

	return t != NULL ? json_string(t) : json_null();
}

void
db_audit(struct db_conn *c, const struct db_actor *who, const char *action,
	 const char *target, const char *detail)
{
	sqlite3_stmt *s = NULL;
	char now[32];

	if (db_stmt(c, sql_audit, &s, NULL) != OR_OK)
		return;
	log_now_iso(now, sizeof(now));
	db_bind_text(s, 1, now);
	db_bind_text(s, 2, who->user);
	db_bind_text(s, 3, who->remote);
	db_bind_text(s, 4, action);
	db_bind_text(s, 5, target);
	db_bind_text(s, 6, detail);
	if (db_step_done(c, s, NULL) != OR_OK)
		log_warn("database: audit record for %s %s not written",
			 action, target);
}

/* ---- open, close, migrate ------------------------------------------ */

static or_rc
mkdir_parents(const char *path, struct or_err *err)
{
	char dir[PATH_MAX];
	char *p;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return or_fail(err, OR_E_INVALID, NULL, "db", "path too long");
	p = strrchr(dir, '/');
	if (p == NULL || p == dir)
		return OR_OK;
	*p = '\0';
	for (p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0750) != 0 && errno != EEXIST)
			goto fail;
		*p = '/';
	}
	if (mkdir(dir, 0750) != 0 && errno != EEXIST)
		goto fail;
	return OR_OK;
fail:
	return or_fail(err, OR_E_IO, NULL, "db", "cannot create %s: %s", dir,
		       strerror(errno));
}

or_rc
db_open(const char *path, struct db **out, struct or_err *err)
{
	struct db *db;
	struct db_conn *c = NULL;
	or_rc rc;

	rc = mkdir_parents(path, err);
	if (rc != OR_OK)
		return rc;
	db = calloc(1, sizeof(*db));
	if (db == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	db->path = strdup(path);
	if (db->path == NULL || pthread_key_create(&db->key, conn_slot_free) != 0) {
		free(db->path);
		free(db);
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	}
	pthread_mutex_init(&db->lock, NULL);
	atomic_init(&db->generation, 1);
	/* Open this thread's connection now: a bad path fails at start-up. */
	rc = db_conn(db, &c, err);
	if (rc != OR_OK) {
		db_close(db);
		return rc;
	}
	*out = db;
	return OR_OK;
}

void
db_close(struct db *db)
{
	struct conn_slot *slot;
	struct db_conn *c, *next;

	if (db == NULL)
		return;
	/* The calling thread's slot is not freed by the key destructor
	 * (that runs at thread exit), so free it here. */
	slot = pthread_getspecific(db->key);
	if (slot != NULL) {
		pthread_setspecific(db->key, NULL);
		free(slot);
	}
	pthread_key_delete(db->key);
	/* Threads that used the store have ended (the HTTP daemon is
	 * stopped first), so what is left is ours to close. */
	for (c = db->conns; c != NULL; c = next) {
		next = c->next;
		conn_close(c);
	}
	pthread_mutex_destroy(&db->lock);
	free(db->path);
	free(db);
}

unsigned long
db_generation(struct db *db)
{
	return atomic_load(&db->generation);
}

static int
migration_version(const char *name)
{
	const char *base = name + strlen(MIGRATION_PREFIX);
	int v = 0, i;

	for (i = 0; i < 4; i++) {
		if (base[i] < '0' || base[i] > '9')
			return -1;
		v = v * 10 + (base[i] - '0');
	}
	return base[4] == '_' ? v : -1;
}

static or_rc
schema_table(struct db_conn *c, struct or_err *err)
{
	if (sqlite3_exec(c->h,
			 "CREATE TABLE IF NOT EXISTS schema_migrations ("
			 "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
			 "applied_at TEXT NOT NULL)",
			 NULL, NULL, NULL) != SQLITE_OK)
		return db_sqlite_fail(err, c->h, "schema table");
	return OR_OK;
}

static or_rc
version_applied(struct db_conn *c, int version, int *applied,
		struct or_err *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (sqlite3_prepare_v2(c->h,
			       "SELECT 1 FROM schema_migrations WHERE version = ?1",
			       -1, &s, NULL) != SQLITE_OK)
		return db_sqlite_fail(err, c->h, "prepare");
	sqlite3_bind_int(s, 1, version);
	rc = sqlite3_step(s);
	*applied = rc == SQLITE_ROW;
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_sqlite_fail(err, c->h, "read schema");
	return OR_OK;
}

or_rc
db_schema_version(struct db *db, int *out, struct or_err *err)
{
	struct db_conn *c = NULL;
	sqlite3_stmt *s = NULL;
	or_rc rc;

	rc = db_conn(db, &c, err);
	if (rc != OR_OK)
		return rc;
	rc = schema_table(c, err);
	if (rc != OR_OK)
		return rc;
	if (sqlite3_prepare_v2(c->h,
			       "SELECT coalesce(max(version), 0) FROM schema_migrations",
			       -1, &s, NULL) != SQLITE_OK)
		return db_sqlite_fail(err, c->h, "prepare");
	if (sqlite3_step(s) == SQLITE_ROW) {
		*out = sqlite3_column_int(s, 0);
	} else {
		rc = db_sqlite_fail(err, c->h, "read schema");
	}
	sqlite3_finalize(s);
	return rc;
}

static or_rc
migration_apply(struct db *db, struct db_conn *c, const struct embed_file *f,
		int version, struct or_err *err)
{
	sqlite3_stmt *s = NULL;
	char now[32];
	char *msg = NULL;
	or_rc rc;

	rc = db_tx_begin(c, err);
	if (rc != OR_OK)
		return rc;
	if (sqlite3_exec(c->h, f->data, NULL, NULL, &msg) != SQLITE_OK) {
		rc = or_fail(err, OR_E_IO, "migration_failed", NULL,
			     "migration %s failed: %s", f->name,
			     msg != NULL ? msg : "unknown error");
		sqlite3_free(msg);
		goto out;
	}
	log_now_iso(now, sizeof(now));
	if (sqlite3_prepare_v2(c->h,
			       "INSERT INTO schema_migrations (version, name, applied_at) "
			       "VALUES (?1, ?2, ?3)",
			       -1, &s, NULL) != SQLITE_OK) {
		rc = db_sqlite_fail(err, c->h, "prepare");
		goto out;
	}
	sqlite3_bind_int(s, 1, version);
	db_bind_text(s, 2, f->name + strlen(MIGRATION_PREFIX));
	db_bind_text(s, 3, now);
	rc = db_step_done(c, s, err);
	if (rc != OR_OK)
		goto out;
	rc = db_tx_commit(db, c, err);
	if (rc == OR_OK)
		log_info("database: applied migration %s", f->name);
out:
	sqlite3_finalize(s);
	if (rc != OR_OK)
		db_tx_rollback(c);
	return rc;
}

or_rc
db_migrate(struct db *db, struct or_err *err)
{
	const struct embed_file *f, *todo[64];
	struct db_conn *c = NULL;
	int current = 0, known = 0, applied = 0, i, j, n = 0;
	or_rc rc;

	rc = db_conn(db, &c, err);
	if (rc != OR_OK)
		return rc;
	rc = db_schema_version(db, &current, err);
	if (rc != OR_OK)
		return rc;
	for (f = embed_files; f->name != NULL; f++) {
		if (strncmp(f->name, MIGRATION_PREFIX, strlen(MIGRATION_PREFIX)) != 0)
			continue;
		if (migration_version(f->name) < 0 || n == 64)
			return or_fail(err, OR_E_INVALID, NULL, NULL,
				       "bad migration file name %s", f->name);
		todo[n++] = f;
	}
	/* Sort by version (insertion sort: a few dozen files at most). */
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && migration_version(todo[j - 1]->name) >
					     migration_version(todo[j]->name); j--) {
			f = todo[j];
			todo[j] = todo[j - 1];
			todo[j - 1] = f;
		}
	if (n > 0)
		known = migration_version(todo[n - 1]->name);
	if (current > known)
		return or_fail(err, OR_E_CONFLICT, "schema_too_new", "db",
			       "database %s has schema version %d, but this "
			       "outrigger knows versions up to %d: run a newer "
			       "outrigger, or point --db at another file",
			       db->path, current, known);
	for (i = 0; i < n; i++) {
		rc = version_applied(c, migration_version(todo[i]->name),
				     &applied, err);
		if (rc != OR_OK)
			return rc;
		if (applied)
			continue;
		rc = migration_apply(db, c, todo[i],
				     migration_version(todo[i]->name), err);
		if (rc != OR_OK)
			return rc;
	}
	return OR_OK;
}

or_rc
db_ping(struct db *db, struct or_err *err)
{
	struct db_conn *c = NULL;
	sqlite3_stmt *s = NULL;
	time_t now = time(NULL);
	or_rc rc;

	rc = db_conn(db, &c, err);
	if (rc != OR_OK)
		return rc;
	if (c->ping_at == now)
		return c->ping_rc == OR_OK
			       ? OR_OK
			       : or_fail(err, c->ping_rc, NULL, NULL,
					 "database is not answering");
	rc = db_stmt(c, sql_ping, &s, err);
	if (rc == OR_OK && sqlite3_step(s) != SQLITE_ROW)
		rc = db_sqlite_fail(err, c->h, "ping");
	if (rc == OR_OK)
		sqlite3_reset(s);
	c->ping_at = now;
	c->ping_rc = rc;
	return rc;
}


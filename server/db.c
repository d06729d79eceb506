/*
 * db.c - the SQLite store.  See db.h for the promises.
 *
 * Connections are per thread (pthread key), because a shared connection
 * would serialise every request on its mutex; WAL lets readers run beside
 * the one writer, and busy_timeout makes writers queue instead of failing.
 * Statements are prepared once per connection from the table below; this
 * file must never build SQL text from input.
 */
#include "db.h"

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

enum stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_PING,
	ST_ENV_INSERT,
	ST_ENV_GET,
	ST_ENV_LIST,
	ST_ENV_LIST_STATUS,
	ST_ENV_LOCK,
	ST_ENV_SET_PARAMS,
	ST_ENV_DELETE,
	ST_ENV_RESOURCES,
	ST_RES_COUNT,
	ST_AUDIT,
	ST__COUNT
};

/* The columns every environment query selects, in env_from_row's order. */
#define ENV_COLUMNS                                                         \
	"e.id, e.name, e.provider, e.blueprint, e.params, e.status, "      \
	"e.outputs, e.active_run_id, e.created_by, e.created_at, "         \
	"e.updated_by, e.updated_at, r.id, r.action, r.status, "          \
	"r.created_at, r.started_at, r.finished_at "
#define ENV_FROM                                                            \
	"FROM environments e LEFT JOIN runs r ON r.id = "                  \
	"(SELECT max(id) FROM runs WHERE environment_id = e.id) "

static const char *const stmt_sql[ST__COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_PING] = "SELECT count(*) FROM schema_migrations",
	[ST_ENV_INSERT] =
		"INSERT INTO environments (name, provider, blueprint, params, "
		"created_by, created_at, updated_by, updated_at) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5, ?6)",
	[ST_ENV_GET] = "SELECT " ENV_COLUMNS ENV_FROM "WHERE e.name = ?1",
	[ST_ENV_LIST] = "SELECT " ENV_COLUMNS ENV_FROM
			"WHERE e.id < ?1 ORDER BY e.id DESC LIMIT ?2",
	[ST_ENV_LIST_STATUS] = "SELECT " ENV_COLUMNS ENV_FROM
			       "WHERE e.status = ?3 AND e.id < ?1 "
			       "ORDER BY e.id DESC LIMIT ?2",
	[ST_ENV_LOCK] = "SELECT id, blueprint, params, active_run_id "
			"FROM environments WHERE name = ?1",
	[ST_ENV_SET_PARAMS] = "UPDATE environments SET params = ?2, "
			      "updated_by = ?3, updated_at = ?4 WHERE id = ?1",
	[ST_ENV_DELETE] = "DELETE FROM environments WHERE id = ?1",
	[ST_ENV_RESOURCES] = "SELECT kind, name, self_link, status, attrs, step, "
			     "created_at, updated_at FROM resources "
			     "WHERE environment_id = ?1 ORDER BY kind, name",
	[ST_RES_COUNT] = "SELECT count(*) FROM resources WHERE environment_id = ?1",
	[ST_AUDIT] = "INSERT INTO audit (at, actor, remote, action, target, detail) "
		     "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
};

struct db_conn {
	sqlite3 *h;
	sqlite3_stmt *st[ST__COUNT];
	time_t ping_at;	/* when db_ping last asked SQLite */
	or_rc ping_rc;
	struct db_conn *next;
};

struct db {
	char *path;
	pthread_key_t key;
	atomic_ulong generation;
	pthread_mutex_t lock;	/* guards conns */
	struct db_conn *conns;	/* every open connection, for db_close */
};

static void
conn_close(struct db_conn *c)
{
	int i;

	if (c == NULL)
		return;
	for (i = 0; i < ST__COUNT; i++)
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

static or_rc
sqlite_fail(struct or_err *err, sqlite3 *h, const char *what)
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
	sqlite_fail(err, c->h, db->path);
	conn_close(c);
	return err != NULL ? err->rc : OR_E_IO;
}

/* The calling thread's connection, opened on first use. */
static or_rc
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

/* A reset, cleared statement of this connection, prepared on first use. */
static or_rc
stmt(struct db_conn *c, enum stmt_id id, sqlite3_stmt **out,
     struct or_err *err)
{
	if (c->st[id] == NULL) {
		if (sqlite3_prepare_v3(c->h, stmt_sql[id], -1,
				       SQLITE_PREPARE_PERSISTENT, &c->st[id],
				       NULL) != SQLITE_OK)
			return sqlite_fail(err, c->h, "prepare");
	} else {
		sqlite3_reset(c->st[id]);
		sqlite3_clear_bindings(c->st[id]);
	}
	*out = c->st[id];
	return OR_OK;
}

/* Run a statement that returns no rows. */
static or_rc
stmt_done(struct db_conn *c, sqlite3_stmt *s, struct or_err *err)
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
	return sqlite_fail(err, c->h, "write");
}

static or_rc
exec_simple(struct db_conn *c, enum stmt_id id, struct or_err *err)
{
	sqlite3_stmt *s = NULL;
	or_rc rc;

	rc = stmt(c, id, &s, err);
	if (rc != OR_OK)
		return rc;
	return stmt_done(c, s, err);
}

static or_rc
tx_begin(struct db_conn *c, struct or_err *err)
{
	return exec_simple(c, ST_BEGIN, err);
}

static or_rc
tx_commit(struct db *db, struct db_conn *c, struct or_err *err)
{
	or_rc rc;

	rc = exec_simple(c, ST_COMMIT, err);
	if (rc == OR_OK)
		atomic_fetch_add(&db->generation, 1);
	return rc;
}

static void
tx_rollback(struct db_conn *c)
{
	if (!sqlite3_get_autocommit(c->h))
		exec_simple(c, ST_ROLLBACK, NULL);
}

static void
bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v == NULL)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
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
		return sqlite_fail(err, c->h, "schema table");
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
		return sqlite_fail(err, c->h, "prepare");
	sqlite3_bind_int(s, 1, version);
	rc = sqlite3_step(s);
	*applied = rc == SQLITE_ROW;
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sqlite_fail(err, c->h, "read schema");
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
		return sqlite_fail(err, c->h, "prepare");
	if (sqlite3_step(s) == SQLITE_ROW) {
		*out = sqlite3_column_int(s, 0);
	} else {
		rc = sqlite_fail(err, c->h, "read schema");
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

	rc = tx_begin(c, err);
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
		rc = sqlite_fail(err, c->h, "prepare");
		goto out;
	}
	sqlite3_bind_int(s, 1, version);
	bind_text(s, 2, f->name + strlen(MIGRATION_PREFIX));
	bind_text(s, 3, now);
	rc = stmt_done(c, s, err);
	if (rc != OR_OK)
		goto out;
	rc = tx_commit(db, c, err);
	if (rc == OR_OK)
		log_info("database: applied migration %s", f->name);
out:
	sqlite3_finalize(s);
	if (rc != OR_OK)
		tx_rollback(c);
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
	rc = stmt(c, ST_PING, &s, err);
	if (rc == OR_OK && sqlite3_step(s) != SQLITE_ROW)
		rc = sqlite_fail(err, c->h, "ping");
	if (rc == OR_OK)
		sqlite3_reset(s);
	c->ping_at = now;
	c->ping_rc = rc;
	return rc;
}

/* ---- environments ---------------------------------------------------- */

static void
audit(struct db_conn *c, const struct db_actor *who, const char *action,
      const char *target, const char *detail)
{
	sqlite3_stmt *s = NULL;
	char now[32];

	if (stmt(c, ST_AUDIT, &s, NULL) != OR_OK)
		return;
	log_now_iso(now, sizeof(now));
	bind_text(s, 1, now);
	bind_text(s, 2, who->user);
	bind_text(s, 3, who->remote);
	bind_text(s, 4, action);
	bind_text(s, 5, target);
	bind_text(s, 6, detail);
	if (stmt_done(c, s, NULL) != OR_OK)
		log_warn("database: audit record for %s %s not written",
			 action, target);
}

static json_t *
col_json(sqlite3_stmt *s, int i)
{
	const char *t = (const char *)sqlite3_column_text(s, i);
	json_t *v;

	if (t == NULL)
		return json_object();
	v = json_loads(t, 0, NULL);
	return v != NULL ? v : json_object();
}

static json_t *
col_str(sqlite3_stmt *s, int i)
{
	const char *t = (const char *)sqlite3_column_text(s, i);

	return t != NULL ? json_string(t) : json_null();
}

/* The JSON of the environment in the current row (ENV_COLUMNS). */
static json_t *
env_from_row(sqlite3_stmt *s)
{
	json_t *e, *run = json_null();

	if (sqlite3_column_type(s, 12) != SQLITE_NULL)
		run = json_pack("{s:I, s:o, s:o, s:o, s:o, s:o}",
				"id", (json_int_t)sqlite3_column_int64(s, 12),
				"action", col_str(s, 13), "status", col_str(s, 14),
				"created_at", col_str(s, 15),
				"started_at", col_str(s, 16),
				"finished_at", col_str(s, 17));
	e = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
		      "name", col_str(s, 1), "provider", col_str(s, 2),
		      "blueprint", col_str(s, 3), "params", col_json(s, 4),
		      "status", col_str(s, 5), "outputs", col_json(s, 6),
		      "created_by", col_str(s, 8), "created_at", col_str(s, 9),
		      "updated_by", col_str(s, 10), "updated_at", col_str(s, 11),
		      "last_run", run);
	if (e == NULL)
		return NULL;
	json_object_set_new(e, "active_run_id",
			    sqlite3_column_type(s, 7) == SQLITE_NULL
				    ? json_null()
				    : json_integer(sqlite3_column_int64(s, 7)));
	return e;
}

static or_rc
env_resources(struct db_conn *c, long long env_id, json_t *env,
	      struct or_err *err)
{
	static const struct {
		const char *kind, *key;
	} kinds[] = {{"cluster", "clusters"},
		     {"vm", "vms"},
		     {"firewall_rule", "firewall_rules"}};
	sqlite3_stmt *s = NULL;
	json_t *res, *r;
	size_t i;
	or_rc rc;
	int step;

	res = json_object();
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		json_object_set_new(res, kinds[i].key, json_array());
	rc = stmt(c, ST_ENV_RESOURCES, &s, err);
	if (rc != OR_OK)
		goto out;
	sqlite3_bind_int64(s, 1, env_id);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		const char *kind = (const char *)sqlite3_column_text(s, 0);

		r = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
			      "name", col_str(s, 1), "self_link", col_str(s, 2),
			      "status", col_str(s, 3), "attrs", col_json(s, 4),
			      "step", col_str(s, 5), "created_at", col_str(s, 6),
			      "updated_at", col_str(s, 7));
		for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
			if (kind != NULL && strcmp(kind, kinds[i].kind) == 0)
				break;
		if (r != NULL && i < sizeof(kinds) / sizeof(kinds[0]))
			json_array_append(json_object_get(res, kinds[i].key), r);
		json_decref(r);
	}
	sqlite3_reset(s);
	if (step != SQLITE_DONE)
		rc = sqlite_fail(err, c->h, "read resources");
out:
	json_object_set_new(env, "resources", res);
	return rc;
}

/* Read one environment by name into *out (with resources). */
static or_rc
env_get(struct db_conn *c, const char *name, json_t **out, struct or_err *err)
{
	sqlite3_stmt *s = NULL;
	json_t *e;
	long long id;
	int step;
	or_rc rc;

	rc = stmt(c, ST_ENV_GET, &s, err);
	if (rc != OR_OK)
		return rc;
	bind_text(s, 1, name);
	step = sqlite3_step(s);
	if (step == SQLITE_DONE) {
		sqlite3_reset(s);
		return or_fail(err, OR_E_NOTFOUND, NULL, "name",
			       "no environment named '%s'", name);
	}
	if (step != SQLITE_ROW) {
		rc = sqlite_fail(err, c->h, "read environment");
		sqlite3_reset(s);
		return rc;
	}
	id = sqlite3_column_int64(s, 0);
	e = env_from_row(s);
	sqlite3_reset(s);
	if (e == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	rc = env_resources(c, id, e, err);
	if (rc != OR_OK) {
		json_decref(e);
		return rc;
	}
	*out = e;
	return OR_OK;
}

or_rc
db_env_get(struct db *db, const char *name, json_t **out, struct or_err *err)
{
	struct db_conn *c = NULL;
	or_rc rc;

	rc = db_conn(db, &c, err);
	if (rc != OR_OK)
		return rc;
	return env_get(c, name, out, err);
}

or_rc
db_env_create(struct db *db, const struct db_env_new *e,
	      const struct db_actor *who, json_t **out, struct or_err *err)
{
	struct db_conn *c = NULL;
	sqlite3_stmt *s = NULL;
	char now[32], *params = NULL;
	or_rc rc;

	rc = db_conn(db, &c, err);
	if (rc != OR_OK)
		return rc;
	params = json_dumps(e->params, JSON_COMPACT | JSON_SORT_KEYS);
	if (params == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	rc = tx_begin(c, err);
	if (rc != OR_OK)
		goto out;
	rc = stmt(c, ST_ENV_INSERT, &s, err);
	if (rc != OR_OK)
		goto out;
	log_now_iso(now, sizeof(now));
	bind_text(s, 1, e->name);
	bind_text(s, 2, e->provider);
	bind_text(s, 3, e->blueprint);
	bind_text(s, 4, params);
	bind_text(s, 5, who->user);
	bind_text(s, 6, now);
	rc = stmt_done(c, s, err);
	if (rc == OR_E_CONFLICT) {
		or_fail(err, OR_E_CONFLICT, "already_exists", "name",
			"an environment named '%s' already exists", e->name);
		goto out;
	}
	if (rc != OR_OK)
		goto out;
	audit(c, who, "environment.create", e->name, e->blueprint);
	rc = tx_commit(db, c, err);
	if (rc != OR_OK)
		goto out;
	rc = env_get(c, e->name, out, err);
out:
	if (rc != OR_OK)
		tx_rollback(c);
	free(params);
	return rc;
}

or_rc
db_env_list(struct db *db, const char *status, long long before_id, int limit,
	    json_t **items, long long *next_id, struct or_err *err)
{
	struct db_conn *c = NULL;
	sqlite3_stmt *s = NULL;
	json_t *arr, *e;
	long long last = 0;
	int step, n = 0;
	or_rc rc;

	rc = db_conn(db, &c, err);
	if (rc != OR_OK)
		return rc;
	rc = stmt(c, status != NULL ? ST_ENV_LIST_STATUS : ST_ENV_LIST, &s, err);
	if (rc != OR_OK)
		return rc;
	sqlite3_bind_int64(s, 1, before_id > 0 ? before_id : LLONG_MAX);
	/* One more than asked, to know whether another page follows. */
	sqlite3_bind_int(s, 2, limit + 1);
	if (status != NULL)
		bind_text(s, 3, status);
	arr = json_array();
	*next_id = 0;
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == limit) {
			*next_id = last;
			break;
		}
		last = sqlite3_column_int64(s, 0);
		e = env_from_row(s);
		if (e == NULL || json_array_append_new(arr, e) != 0) {
			rc = or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
			break;
		}
		n++;
	}
	if (rc == OR_OK && step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sqlite_fail(err, c->h, "list environments");
	sqlite3_reset(s);
	if (rc != OR_OK) {
		json_decref(arr);
		return rc;
	}
	*items = arr;
	return OR_OK;
}

/* Lock row of an environment inside a transaction: id, blueprint, params,
 * whether a run is active.  *blueprint and *params are new allocations. */
static or_rc
env_lock_row(struct db_conn *c, const char *name, long long *id,
	     char **blueprint, json_t **params, int *locked,
	     struct or_err *err)
{
	sqlite3_stmt *s = NULL;
	int step;
	or_rc rc;

	rc = stmt(c, ST_ENV_LOCK, &s, err);
	if (rc != OR_OK)
		return rc;
	bind_text(s, 1, name);
	step = sqlite3_step(s);
	if (step == SQLITE_DONE) {
		rc = or_fail(err, OR_E_NOTFOUND, NULL, "name",
			     "no environment named '%s'", name);
	} else if (step != SQLITE_ROW) {
		rc = sqlite_fail(err, c->h, "read environment");
	} else {
		*id = sqlite3_column_int64(s, 0);
		*locked = sqlite3_column_type(s, 3) != SQLITE_NULL;
		if (blueprint != NULL)
			*blueprint = strdup((const char *)sqlite3_column_text(s, 1));
		if (params != NULL)
			*params = col_json(s, 2);
	}
	sqlite3_reset(s);
	return rc;
}

or_rc
db_env_update_params(struct db *db, const char *name, db_params_fn fn,
		     void *ctx, const struct db_actor *who, json_t **out,
		     struct or_err *err)
{
	struct db_conn *c = NULL;
	sqlite3_stmt *s = NULL;
	json_t *params = NULL, *next = NULL;
	char *blueprint = NULL, *text = NULL, now[32];
	long long id;
	int locked;
	or_rc rc;

	rc = db_conn(db, &c, err);
	if (rc != OR_OK)
		return rc;
	rc = tx_begin(c, err);
	if (rc != OR_OK)
		return rc;
	rc = env_lock_row(c, name, &id, &blueprint, &params, &locked, err);
	if (rc != OR_OK)
		goto out;
	if (locked) {
		rc = or_fail(err, OR_E_CONFLICT, "locked", "name",
			     "environment '%s' has a run in progress; change "
			     "its params when the run has finished", name);
		goto out;
	}
	if (blueprint == NULL) {
		rc = or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
		goto out;
	}
	rc = fn(ctx, blueprint, params, &next, err);
	if (rc != OR_OK)
		goto out;
	text = json_dumps(next, JSON_COMPACT | JSON_SORT_KEYS);
	if (text == NULL) {
		rc = or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
		goto out;
	}
	rc = stmt(c, ST_ENV_SET_PARAMS, &s, err);
	if (rc != OR_OK)
		goto out;
	log_now_iso(now, sizeof(now));
	sqlite3_bind_int64(s, 1, id);
	bind_text(s, 2, text);
	bind_text(s, 3, who->user);
	bind_text(s, 4, now);
	rc = stmt_done(c, s, err);
	if (rc != OR_OK)
		goto out;
	audit(c, who, "environment.update", name, NULL);
	rc = tx_commit(db, c, err);
	if (rc != OR_OK)
		goto out;
	rc = env_get(c, name, out, err);
out:
	if (rc != OR_OK)
		tx_rollback(c);
	json_decref(params);
	json_decref(next);
	free(blueprint);
	free(text);
	return rc;
}

or_rc
db_env_delete(struct db *db, const char *name, int force,
	      const struct db_actor *who, struct or_err *err)
{
	struct db_conn *c = NULL;
	sqlite3_stmt *s = NULL;
	long long id, owned = 0;
	int locked;
	or_rc rc;

	rc = db_conn(db, &c, err);
	if (rc != OR_OK)
		return rc;
	rc = tx_begin(c, err);
	if (rc != OR_OK)
		return rc;
	rc = env_lock_row(c, name, &id, NULL, NULL, &locked, err);
	if (rc != OR_OK)
		goto out;
	if (locked) {
		rc = or_fail(err, OR_E_CONFLICT, "locked", "name",
			     "environment '%s' has a run in progress; cancel "
			     "it or wait for it to finish", name);
		goto out;
	}
	rc = stmt(c, ST_RES_COUNT, &s, err);
	if (rc != OR_OK)
		goto out;
	sqlite3_bind_int64(s, 1, id);
	if (sqlite3_step(s) == SQLITE_ROW)
		owned = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (owned > 0 && !force) {
		rc = or_fail(err, OR_E_CONFLICT, "owns_resources", "name",
			     "environment '%s' still owns %lld cloud "
			     "resource(s): destroy it first, or delete with "
			     "?force=true to forget them", name, owned);
		goto out;
	}
	rc = stmt(c, ST_ENV_DELETE, &s, err);
	if (rc != OR_OK)
		goto out;
	sqlite3_bind_int64(s, 1, id);
	rc = stmt_done(c, s, err);
	if (rc != OR_OK)
		goto out;
	audit(c, who, force ? "environment.delete.force" : "environment.delete",
	      name, NULL);
	rc = tx_commit(db, c, err);
out:
	if (rc != OR_OK)
		tx_rollback(c);
	return rc;
}

/*
 * db_env.c - environments in the store: create, read, list, change params,
 * delete; each write in one transaction with its audit record.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"
#include "log.h"

/* The columns every environment query selects, in env_from_row's order. */
#define ENV_COLUMNS                                                         \
	"e.id, e.name, e.provider, e.blueprint, e.params, e.status, "      \
	"e.outputs, e.active_run_id, e.created_by, e.created_at, "         \
	"e.updated_by, e.updated_at, r.id, r.action, r.status, "          \
	"r.created_at, r.started_at, r.finished_at "
#define ENV_FROM                                                            \
	"FROM environments e LEFT JOIN runs r ON r.id = "                  \
	"(SELECT max(id) FROM runs WHERE environment_id = e.id) "

static const char sql_env_insert[] =
	"INSERT INTO environments (name, provider, blueprint, params, "
	"created_by, created_at, updated_by, updated_at) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5, ?6)";
static const char sql_env_get[] =
	"SELECT " ENV_COLUMNS ENV_FROM "WHERE e.name = ?1";
static const char sql_env_list[] =
	"SELECT " ENV_COLUMNS ENV_FROM
	"WHERE e.id < ?1 ORDER BY e.id DESC LIMIT ?2";
static const char sql_env_list_status[] =
	"SELECT " ENV_COLUMNS ENV_FROM
	"WHERE e.status = ?3 AND e.id < ?1 "
	"ORDER BY e.id DESC LIMIT ?2";
static const char sql_env_lock[] =
	"SELECT id, blueprint, params, active_run_id "
	"FROM environments WHERE name = ?1";
static const char sql_env_set_params[] =
	"UPDATE environments SET params = ?2, "
	"updated_by = ?3, updated_at = ?4 WHERE id = ?1";
static const char sql_env_delete[] =
	"DELETE FROM environments WHERE id = ?1";
static const char sql_env_resources[] =
	"SELECT kind, name, self_link, status, attrs, step, "
	"created_at, updated_at FROM resources "
	"WHERE environment_id = ?1 ORDER BY kind, name";
static const char sql_res_count[] =
	"SELECT count(*) FROM resources WHERE environment_id = ?1";

/* The JSON of the environment in the current row (ENV_COLUMNS). */
static json_t *
env_from_row(sqlite3_stmt *s)
{
	json_t *e, *run = json_null();

	if (sqlite3_column_type(s, 12) != SQLITE_NULL)
		run = json_pack("{s:I, s:o, s:o, s:o, s:o, s:o}",
				"id", (json_int_t)sqlite3_column_int64(s, 12),
				"action", db_col_str(s, 13), "status", db_col_str(s, 14),
				"created_at", db_col_str(s, 15),
				"started_at", db_col_str(s, 16),
				"finished_at", db_col_str(s, 17));
	e = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
		      "name", db_col_str(s, 1), "provider", db_col_str(s, 2),
		      "blueprint", db_col_str(s, 3), "params", db_col_json(s, 4),
		      "status", db_col_str(s, 5), "outputs", db_col_json(s, 6),
		      "created_by", db_col_str(s, 8), "created_at", db_col_str(s, 9),
		      "updated_by", db_col_str(s, 10), "updated_at", db_col_str(s, 11),
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
	rc = db_stmt(c, sql_env_resources, &s, err);
	if (rc != OR_OK)
		goto out;
	sqlite3_bind_int64(s, 1, env_id);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		const char *kind = (const char *)sqlite3_column_text(s, 0);

		r = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
			      "name", db_col_str(s, 1), "self_link", db_col_str(s, 2),
			      "status", db_col_str(s, 3), "attrs", db_col_json(s, 4),
			      "step", db_col_str(s, 5), "created_at", db_col_str(s, 6),
			      "updated_at", db_col_str(s, 7));
		for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
			if (kind != NULL && strcmp(kind, kinds[i].kind) == 0)
				break;
		if (r != NULL && i < sizeof(kinds) / sizeof(kinds[0]))
			json_array_append(json_object_get(res, kinds[i].key), r);
		json_decref(r);
	}
	sqlite3_reset(s);
	if (step != SQLITE_DONE)
		rc = db_sqlite_fail(err, c->h, "read resources");
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

	rc = db_stmt(c, sql_env_get, &s, err);
	if (rc != OR_OK)
		return rc;
	db_bind_text(s, 1, name);
	step = sqlite3_step(s);
	if (step == SQLITE_DONE) {
		sqlite3_reset(s);
		return or_fail(err, OR_E_NOTFOUND, NULL, "name",
			       "no environment named '%s'", name);
	}
	if (step != SQLITE_ROW) {
		rc = db_sqlite_fail(err, c->h, "read environment");
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
	rc = db_tx_begin(c, err);
	if (rc != OR_OK)
		goto out;
	rc = db_stmt(c, sql_env_insert, &s, err);
	if (rc != OR_OK)
		goto out;
	log_now_iso(now, sizeof(now));
	db_bind_text(s, 1, e->name);
	db_bind_text(s, 2, e->provider);
	db_bind_text(s, 3, e->blueprint);
	db_bind_text(s, 4, params);
	db_bind_text(s, 5, who->user);
	db_bind_text(s, 6, now);
	rc = db_step_done(c, s, err);
	if (rc == OR_E_CONFLICT) {
		or_fail(err, OR_E_CONFLICT, "already_exists", "name",
			"an environment named '%s' already exists", e->name);
		goto out;
	}
	if (rc != OR_OK)
		goto out;
	db_audit(c, who, "environment.create", e->name, e->blueprint);
	rc = db_tx_commit(db, c, err);
	if (rc != OR_OK)
		goto out;
	rc = env_get(c, e->name, out, err);
out:
	if (rc != OR_OK)
		db_tx_rollback(c);
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
	rc = db_stmt(c, status != NULL ? sql_env_list_status : sql_env_list, &s, err);
	if (rc != OR_OK)
		return rc;
	sqlite3_bind_int64(s, 1, before_id > 0 ? before_id : LLONG_MAX);
	/* One more than asked, to know whether another page follows. */
	sqlite3_bind_int(s, 2, limit + 1);
	if (status != NULL)
		db_bind_text(s, 3, status);
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
		rc = db_sqlite_fail(err, c->h, "list environments");
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

	rc = db_stmt(c, sql_env_lock, &s, err);
	if (rc != OR_OK)
		return rc;
	db_bind_text(s, 1, name);
	step = sqlite3_step(s);
	if (step == SQLITE_DONE) {
		rc = or_fail(err, OR_E_NOTFOUND, NULL, "name",
			     "no environment named '%s'", name);
	} else if (step != SQLITE_ROW) {
		rc = db_sqlite_fail(err, c->h, "read environment");
	} else {
		*id = sqlite3_column_int64(s, 0);
		*locked = sqlite3_column_type(s, 3) != SQLITE_NULL;
		if (blueprint != NULL)
			*blueprint = strdup((const char *)sqlite3_column_text(s, 1));
		if (params != NULL)
			*params = db_col_json(s, 2);
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
	rc = db_tx_begin(c, err);
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
	rc = db_stmt(c, sql_env_set_params, &s, err);
	if (rc != OR_OK)
		goto out;
	log_now_iso(now, sizeof(now));
	sqlite3_bind_int64(s, 1, id);
	db_bind_text(s, 2, text);
	db_bind_text(s, 3, who->user);
	db_bind_text(s, 4, now);
	rc = db_step_done(c, s, err);
	if (rc != OR_OK)
		goto out;
	db_audit(c, who, "environment.update", name, NULL);
	rc = db_tx_commit(db, c, err);
	if (rc != OR_OK)
		goto out;
	rc = env_get(c, name, out, err);
out:
	if (rc != OR_OK)
		db_tx_rollback(c);
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
	rc = db_tx_begin(c, err);
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
	rc = db_stmt(c, sql_res_count, &s, err);
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
	rc = db_stmt(c, sql_env_delete, &s, err);
	if (rc != OR_OK)
		goto out;
	sqlite3_bind_int64(s, 1, id);
	rc = db_step_done(c, s, err);
	if (rc != OR_OK)
		goto out;
	db_audit(c, who, force ? "environment.delete.force" : "environment.delete",
	      name, NULL);
	rc = db_tx_commit(db, c, err);
out:
	if (rc != OR_OK)
		db_tx_rollback(c);
	return rc;
}

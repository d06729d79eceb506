/*
 * db_sched.c - the store as the scheduler uses it: find the active runs,
 * load one whole, and commit each of its state changes - with the log
 * lines that came before it - in one transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"
#include "log.h"

static const char sql_active[] =
	"SELECT id, cancel_requested FROM runs WHERE status IN ('queued', 'running') "
	"ORDER BY id";
static const char sql_load_run[] =
	"SELECT r.id, r.environment_id, e.name, e.provider, r.action, r.status, "
	"r.graph, r.params, r.outputs_map, r.round, r.cancel_requested, r.started_at "
	"FROM runs r JOIN environments e ON e.id = r.environment_id WHERE r.id = ?1";
static const char sql_load_steps[] =
	"SELECT idx, name, status, attempts, round_attempts, retry_at, outputs, "
	"started_at, finished_at, error_code, error_message FROM step_runs "
	"WHERE run_id = ?1 ORDER BY idx";
static const char sql_load_secrets[] =
	"SELECT name, value FROM secrets WHERE environment_id = ?1";
static const char sql_load_state[] =
	"SELECT step, state, outputs FROM step_state WHERE environment_id = ?1";
static const char sql_max_seq[] =
	"SELECT coalesce(max(seq), 0) FROM events WHERE run_id = ?1";
static const char sql_event[] =
	"INSERT INTO events (run_id, seq, ts, kind, step, stream, data) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char sql_step[] =
	"UPDATE step_runs SET status = ?3, attempts = ?4, round_attempts = ?5, "
	"retry_at = ?6, started_at = ?7, finished_at = ?8, outputs = ?9, "
	"error_code = ?10, error_message = ?11, runner_pid = ?12 "
	"WHERE run_id = ?1 AND idx = ?2";
static const char sql_run[] =
	"UPDATE runs SET status = ?2, started_at = ?3, finished_at = ?4, "
	"error_code = ?5, error_message = ?6 WHERE id = ?1";
static const char sql_env[] =
	"UPDATE environments SET status = coalesce(?2, status), "
	"outputs = coalesce(?3, outputs), "
	"active_run_id = CASE WHEN ?4 THEN NULL ELSE active_run_id END, "
	"updated_at = ?5 WHERE id = ?1";
static const char sql_state[] =
	"INSERT INTO step_state (environment_id, step, state) VALUES (?1, ?2, ?3) "
	"ON CONFLICT (environment_id, step) DO UPDATE SET state = excluded.state";
static const char sql_step_outputs[] =
	"INSERT INTO step_state (environment_id, step, outputs) VALUES (?1, ?2, ?3) "
	"ON CONFLICT (environment_id, step) DO UPDATE SET outputs = excluded.outputs";
static const char sql_secret[] =
	"INSERT INTO secrets (environment_id, name, value, created_at) "
	"VALUES (?1, ?2, ?3, ?4) ON CONFLICT (environment_id, name) "
	"DO UPDATE SET value = excluded.value";

/* A resource row, kept by (environment, kind, name). */
static const char sql_resource_put[] =
	"INSERT INTO resources (environment_id, kind, name, self_link, status, attrs, step, "
	"created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, coalesce(?6, '{}'), ?7, ?8, ?8) "
	"ON CONFLICT (environment_id, kind, name) DO UPDATE SET "
	"self_link = coalesce(excluded.self_link, self_link), "
	"status = coalesce(excluded.status, status), attrs = excluded.attrs, "
	"updated_at = excluded.updated_at";

static const char sql_resource_drop[] =
	"DELETE FROM resources WHERE environment_id = ?1 AND kind = ?2 AND name = ?3";

or_rc
db_sched_active(struct db *db, json_t **out, struct or_err *err)
{
	struct db_conn *c = NULL;
	sqlite3_stmt *s = NULL;
	json_t *arr;
	int rows;
	or_rc rc;

	rc = db_conn(db, &c, err);
	if (rc == OR_OK)
		rc = db_stmt(c, sql_active, &s, err);
	if (rc != OR_OK)
		return rc;
	arr = json_array();
	while ((rows = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(arr, json_pack("{s:I, s:b}", "id",
						     (json_int_t)sqlite3_column_int64(s, 0),
						     "cancel_requested",
						     sqlite3_column_int(s, 1) != 0));
	sqlite3_reset(s);
	if (rows != SQLITE_DONE) {
		json_decref(arr);
		return db_sqlite_fail(err, c->h, "active runs");
	}
	*out = arr;
	return OR_OK;
}

or_rc
db_sched_load(struct db *db, long long id, json_t **out, struct or_err *err)
{
	struct db_conn *c = NULL;
	sqlite3_stmt *s = NULL;
	json_t *run = NULL, *steps, *secrets, *state, *st;
	long long env_id;
	or_rc rc;

	rc = db_conn(db, &c, err);
	if (rc == OR_OK)
		rc = db_stmt(c, sql_load_run, &s, err);
	if (rc != OR_OK)
		return rc;
	sqlite3_bind_int64(s, 1, id);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_reset(s);
		return or_fail(err, OR_E_NOTFOUND, NULL, NULL, "no run %lld", id);
	}
	env_id = sqlite3_column_int64(s, 1);
	run = json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:i, s:b, s:o}",
			"id", (json_int_t)id, "environment_id", (json_int_t)env_id,
			"environment", db_col_str(s, 2), "provider", db_col_str(s, 3),
			"action", db_col_str(s, 4), "status", db_col_str(s, 5),
			"graph", db_col_json(s, 6), "params", db_col_json(s, 7),
			"outputs_map", db_col_json(s, 8), "round", sqlite3_column_int(s, 9),
			"cancel_requested", sqlite3_column_int(s, 10) != 0,
			"started_at", db_col_str(s, 11));
	sqlite3_reset(s);
	if (run == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");

	steps = json_array();
	json_object_set_new(run, "steps", steps);
	rc = db_stmt(c, sql_load_steps, &s, err);
	if (rc != OR_OK)
		goto out;
	sqlite3_bind_int64(s, 1, id);
	while (sqlite3_step(s) == SQLITE_ROW) {
		st = json_pack("{s:i, s:o, s:o, s:i, s:i, s:o, s:o, s:o, s:o, s:o, s:o}",
			       "idx", sqlite3_column_int(s, 0), "name", db_col_str(s, 1),
			       "status", db_col_str(s, 2), "attempts", sqlite3_column_int(s, 3),
			       "round_attempts", sqlite3_column_int(s, 4),
			       "retry_at", sqlite3_column_type(s, 5) == SQLITE_NULL
						   ? json_null()
						   : json_integer(sqlite3_column_int64(s, 5)),
			       "outputs", db_col_json(s, 6), "started_at", db_col_str(s, 7),
			       "finished_at", db_col_str(s, 8), "error_code", db_col_str(s, 9),
			       "error_message", db_col_str(s, 10));
		json_array_append_new(steps, st);
	}
	sqlite3_reset(s);

	secrets = json_object();
	json_object_set_new(run, "secrets", secrets);
	rc = db_stmt(c, sql_load_secrets, &s, err);
	if (rc != OR_OK)
		goto out;
	sqlite3_bind_int64(s, 1, env_id);
	while (sqlite3_step(s) == SQLITE_ROW)
		json_object_set_new(secrets, (const char *)sqlite3_column_text(s, 0),
				    db_col_str(s, 1));
	sqlite3_reset(s);

	state = json_object();
	json_object_set_new(run, "step_state", state);
	rc = db_stmt(c, sql_load_state, &s, err);
	if (rc != OR_OK)
		goto out;
	sqlite3_bind_int64(s, 1, env_id);
	while (sqlite3_step(s) == SQLITE_ROW)
		json_object_set_new(state, (const char *)sqlite3_column_text(s, 0),
				    json_pack("{s:o, s:o}", "state", db_col_json(s, 1),
					      "outputs", db_col_json(s, 2)));
	sqlite3_reset(s);

	rc = db_stmt(c, sql_max_seq, &s, err);
	if (rc != OR_OK)
		goto out;
	sqlite3_bind_int64(s, 1, id);
	if (sqlite3_step(s) == SQLITE_ROW)
		json_object_set_new(run, "max_seq", json_integer(sqlite3_column_int64(s, 0)));
	sqlite3_reset(s);
out:
	if (rc != OR_OK) {
		json_decref(run);
		return rc;
	}
	*out = run;
	return OR_OK;
}

/* Bind a JSON member: strings as text, integers as integers, objects as
 * JSON text, null/absent as NULL. */
static void
bind_member(sqlite3_stmt *s, int i, json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	char *t;

	if (v == NULL || json_is_null(v)) {
		sqlite3_bind_null(s, i);
	} else if (json_is_string(v)) {
		db_bind_text(s, i, json_string_value(v));
	} else if (json_is_integer(v)) {
		sqlite3_bind_int64(s, i, json_integer_value(v));
	} else if (json_is_boolean(v)) {
		sqlite3_bind_int(s, i, json_is_true(v));
	} else {
		t = json_dumps(v, JSON_COMPACT);
		db_bind_text(s, i, t);
		free(t);
	}
}

static or_rc
apply_op(struct db_conn *c, json_t *op, struct or_err *err)
{
	const char *kind = json_string_value(json_object_get(op, "op"));
	sqlite3_stmt *s = NULL;
	char now[32];
	or_rc rc;

	if (kind == NULL)
		return or_fail(err, OR_E_INVALID, NULL, NULL, "scheduler op without a kind");
	if (strcmp(kind, "step") == 0) {
		rc = db_stmt(c, sql_step, &s, err);
		if (rc != OR_OK)
			return rc;
		bind_member(s, 1, op, "run");
		bind_member(s, 2, op, "idx");
		bind_member(s, 3, op, "status");
		bind_member(s, 4, op, "attempts");
		bind_member(s, 5, op, "round_attempts");
		bind_member(s, 6, op, "retry_at");
		bind_member(s, 7, op, "started_at");
		bind_member(s, 8, op, "finished_at");
		bind_member(s, 9, op, "outputs");
		bind_member(s, 10, op, "error_code");
		bind_member(s, 11, op, "error_message");
		bind_member(s, 12, op, "runner_pid");
	} else if (strcmp(kind, "run") == 0) {
		rc = db_stmt(c, sql_run, &s, err);
		if (rc != OR_OK)
			return rc;
		bind_member(s, 1, op, "id");
		bind_member(s, 2, op, "status");
		bind_member(s, 3, op, "started_at");
		bind_member(s, 4, op, "finished_at");
		bind_member(s, 5, op, "error_code");
		bind_member(s, 6, op, "error_message");
	} else if (strcmp(kind, "env") == 0) {
		rc = db_stmt(c, sql_env, &s, err);
		if (rc != OR_OK)
			return rc;
		log_now_iso(now, sizeof(now));
		bind_member(s, 1, op, "id");
		bind_member(s, 2, op, "status");
		bind_member(s, 3, op, "outputs");
		bind_member(s, 4, op, "unlock");
		db_bind_text(s, 5, now);
	} else if (strcmp(kind, "state") == 0 || strcmp(kind, "step_outputs") == 0) {
		int is_state = strcmp(kind, "state") == 0;

		rc = db_stmt(c, is_state ? sql_state : sql_step_outputs, &s, err);
		if (rc != OR_OK)
			return rc;
		bind_member(s, 1, op, "env");
		bind_member(s, 2, op, "step");
		bind_member(s, 3, op, is_state ? "state" : "outputs");
	} else if (strcmp(kind, "secret") == 0) {
		rc = db_stmt(c, sql_secret, &s, err);
		if (rc != OR_OK)
			return rc;
		log_now_iso(now, sizeof(now));
		bind_member(s, 1, op, "env");
		bind_member(s, 2, op, "name");
		bind_member(s, 3, op, "value");
		db_bind_text(s, 4, now);
	} else if (strcmp(kind, "resource_put") == 0) {
		rc = db_stmt(c, sql_resource_put, &s, err);
		if (rc != OR_OK)
			return rc;
		log_now_iso(now, sizeof(now));
		bind_member(s, 1, op, "env");
		bind_member(s, 2, op, "kind");
		bind_member(s, 3, op, "name");
		bind_member(s, 4, op, "self_link");
		bind_member(s, 5, op, "status");
		bind_member(s, 6, op, "attrs");
		bind_member(s, 7, op, "step");
		db_bind_text(s, 8, now);
	} else if (strcmp(kind, "resource_drop") == 0) {
		rc = db_stmt(c, sql_resource_drop, &s, err);
		if (rc != OR_OK)
			return rc;
		bind_member(s, 1, op, "env");
		bind_member(s, 2, op, "kind");
		bind_member(s, 3, op, "name");
	} else {
		return or_fail(err, OR_E_INVALID, NULL, NULL, "unknown scheduler op %s", kind);
	}
	return db_step_done(c, s, err);
}

or_rc
db_sched_commit(struct db *db, const struct db_event *events, size_t n,
		json_t *ops, struct or_err *err)
{
	struct db_conn *c = NULL;
	sqlite3_stmt *s = NULL;
	json_t *op;
	size_t i;
	or_rc rc;

	rc = db_conn(db, &c, err);
	if (rc != OR_OK)
		return rc;
	rc = db_tx_begin(c, err);
	if (rc != OR_OK)
		return rc;
	for (i = 0; i < n && rc == OR_OK; i++) {
		rc = db_stmt(c, sql_event, &s, err);
		if (rc != OR_OK)
			break;
		sqlite3_bind_int64(s, 1, events[i].run);
		sqlite3_bind_int64(s, 2, events[i].seq);
		/* The buffers outlive the statement's step: no copy needed. */
		sqlite3_bind_text(s, 3, events[i].ts, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 4, events[i].kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 5, events[i].step, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 6, events[i].stream, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 7, events[i].data, -1, SQLITE_STATIC);
		rc = db_step_done(c, s, err);
	}
	json_array_foreach(ops, i, op) {
		if (rc != OR_OK)
			break;
		rc = apply_op(c, op, err);
	}
	if (rc == OR_OK)
		rc = json_array_size(ops) > 0 ? db_tx_commit(db, c, err)
					      : db_tx_commit_quiet(c, err);
	if (rc != OR_OK)
		db_tx_rollback(c);
	return rc;
}

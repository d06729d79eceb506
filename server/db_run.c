/*
 * db_run.c - runs as the API sees them: start one (taking the
 * environment's lock in the same transaction), read one with its steps,
 * ask for cancel or retry, page through its logs and events.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"
#include "log.h"

static const char sql_env_for_run[] =
	"SELECT id, active_run_id, blueprint, params FROM environments WHERE name = ?1";
static const char sql_run_insert[] =
	"INSERT INTO runs (environment_id, action, status, created_by, created_at, "
	"graph, params, outputs_map) VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?6, ?7)";
static const char sql_step_insert[] =
	"INSERT INTO step_runs (run_id, idx, name, plugin) VALUES (?1, ?2, ?3, ?4)";
static const char sql_env_take[] =
	"UPDATE environments SET active_run_id = ?2, status = coalesce(?3, status), "
	"updated_by = ?4, updated_at = ?5 WHERE id = ?1";
static const char sql_run_get[] =
	"SELECT r.id, e.name, r.action, r.status, r.created_by, r.created_at, "
	"r.started_at, r.finished_at, r.error_code, r.error_message, "
	"r.cancel_requested, r.round, r.environment_id "
	"FROM runs r JOIN environments e ON e.id = r.environment_id WHERE r.id = ?1";
static const char sql_run_steps[] =
	"SELECT name, plugin, status, attempts, started_at, finished_at, outputs, "
	"error_code, error_message, idx FROM step_runs WHERE run_id = ?1 ORDER BY idx";
static const char sql_run_graph[] = "SELECT graph FROM runs WHERE id = ?1";
static const char sql_run_cancel[] =
	"UPDATE runs SET cancel_requested = 1 WHERE id = ?1 "
	"AND status IN ('queued', 'running')";
static const char sql_run_requeue[] =
	"UPDATE runs SET status = 'queued', cancel_requested = 0, round = round + 1, "
	"finished_at = NULL, error_code = NULL, error_message = NULL WHERE id = ?1";
static const char sql_steps_requeue[] =
	"UPDATE step_runs SET status = 'pending', round_attempts = 0, retry_at = NULL, "
	"error_code = NULL, error_message = NULL, finished_at = NULL "
	"WHERE run_id = ?1 AND status <> 'succeeded'";
static const char sql_run_logs[] =
	"SELECT seq, ts, step, stream, data FROM events WHERE run_id = ?1 "
	"AND kind = 'log' AND seq > ?2 AND (?3 IS NULL OR step = ?3) "
	"ORDER BY seq LIMIT ?4";
static const char sql_run_events[] =
	"SELECT seq, ts, kind, step, stream, data FROM events WHERE run_id = ?1 "
	"AND seq > ?2 ORDER BY seq LIMIT ?3";

static const char *
status_for(const char *action)
{
	if (strcmp(action, "apply") == 0)
		return "applying";
	if (strcmp(action, "destroy") == 0)
		return "destroying";
	return NULL; /* plan changes nothing */
}

/* The run with its steps; c is the caller's connection. */
static or_rc
run_read(struct db_conn *c, long long id, json_t **out, struct or_err *err)
{
	sqlite3_stmt *s = NULL;
	json_t *run, *steps, *st, *e, *graph = NULL, *g;
	int step;
	or_rc rc;

	rc = db_stmt(c, sql_run_get, &s, err);
	if (rc != OR_OK)
		return rc;
	sqlite3_bind_int64(s, 1, id);
	step = sqlite3_step(s);
	if (step != SQLITE_ROW) {
		sqlite3_reset(s);
		if (step == SQLITE_DONE)
			return or_fail(err, OR_E_NOTFOUND, NULL, "id", "no run %lld", id);
		return db_sqlite_fail(err, c->h, "read run");
	}
	e = json_null();
	if (sqlite3_column_type(s, 8) != SQLITE_NULL)
		e = json_pack("{s:o, s:o}", "code", db_col_str(s, 8), "message",
			      db_col_str(s, 9));
	run = json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:i}",
			"id", (json_int_t)sqlite3_column_int64(s, 0),
			"environment", db_col_str(s, 1), "action", db_col_str(s, 2),
			"status", db_col_str(s, 3), "created_by", db_col_str(s, 4),
			"created_at", db_col_str(s, 5), "started_at", db_col_str(s, 6),
			"finished_at", db_col_str(s, 7), "error", e,
			"cancel_requested", sqlite3_column_int(s, 10) != 0,
			"round", sqlite3_column_int(s, 11));
	sqlite3_reset(s);
	if (run == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");

	rc = db_stmt(c, sql_run_graph, &s, err);
	if (rc == OR_OK) {
		sqlite3_bind_int64(s, 1, id);
		graph = sqlite3_step(s) == SQLITE_ROW ? db_col_json(s, 0) : json_array();
		sqlite3_reset(s);
		rc = db_stmt(c, sql_run_steps, &s, err);
	}
	if (rc != OR_OK) {
		json_decref(run);
		json_decref(graph);
		return rc;
	}
	steps = json_array();
	sqlite3_bind_int64(s, 1, id);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		e = json_null();
		if (sqlite3_column_type(s, 7) != SQLITE_NULL)
			e = json_pack("{s:o, s:o}", "code", db_col_str(s, 7), "message",
				      db_col_str(s, 8));
		st = json_pack("{s:o, s:o, s:o, s:i, s:o, s:o, s:o, s:o}",
			       "name", db_col_str(s, 0), "plugin", db_col_str(s, 1),
			       "status", db_col_str(s, 2), "attempts", sqlite3_column_int(s, 3),
			       "started_at", db_col_str(s, 4), "finished_at", db_col_str(s, 5),
			       "outputs", db_col_json(s, 6), "error", e);
		g = json_array_get(graph, (size_t)sqlite3_column_int(s, 9));
		if (st != NULL && json_is_array(json_object_get(g, "after")))
			json_object_set(st, "after", json_object_get(g, "after"));
		json_array_append_new(steps, st);
	}
	sqlite3_reset(s);
	json_decref(graph);
	json_object_set_new(run, "steps", steps);
	if (step != SQLITE_DONE) {
		json_decref(run);
		return db_sqlite_fail(err, c->h, "read steps");
	}
	*out = run;
	return OR_OK;
}

or_rc
db_run_get(struct db *db, long long id, json_t **out, struct or_err *err)
{
	struct db_conn *c = NULL;
	or_rc rc;

	rc = db_conn(db, &c, err);
	if (rc != OR_OK)
		return rc;
	return run_read(c, id, out, err);
}

or_rc
db_run_create(struct db *db, const struct db_run_new *n,
	      const struct db_actor *who, json_t **out, struct or_err *err)
{
	struct db_conn *c = NULL;
	sqlite3_stmt *s = NULL;
	char now[32], *graph = NULL, *params = NULL, *omap = NULL;
	long long env_id = 0, run_id;
	json_t *step;
	size_t i;
	or_rc rc;

	rc = db_conn(db, &c, err);
	if (rc != OR_OK)
		return rc;
	rc = db_tx_begin(c, err);
	if (rc != OR_OK)
		return rc;
	rc = db_stmt(c, sql_env_for_run, &s, err);
	if (rc != OR_OK)
		goto out;
	db_bind_text(s, 1, n->environment);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_reset(s);
		rc = or_fail(err, OR_E_NOTFOUND, NULL, "name",
			     "no environment named '%s'", n->environment);
		goto out;
	}
	env_id = sqlite3_column_int64(s, 0);
	if (sqlite3_column_type(s, 1) != SQLITE_NULL) {
		long long holder = sqlite3_column_int64(s, 1);

		sqlite3_reset(s);
		rc = or_fail(err, OR_E_CONFLICT, "locked", "name",
			     "environment '%s' has run %lld in progress: one run "
			     "at a time (cancel it, or wait)", n->environment, holder);
		goto out;
	}
	if (strcmp((const char *)sqlite3_column_text(s, 2), n->blueprint) != 0) {
		sqlite3_reset(s);
		rc = or_fail(err, OR_E_CONFLICT, NULL, "blueprint",
			     "the environment's blueprint changed; try again");
		goto out;
	}
	params = strdup((const char *)sqlite3_column_text(s, 3));
	sqlite3_reset(s);
	graph = json_dumps(n->graph, JSON_COMPACT);
	omap = json_dumps(n->outputs_map, JSON_COMPACT);
	if (graph == NULL || params == NULL || omap == NULL) {
		rc = or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
		goto out;
	}
	log_now_iso(now, sizeof(now));
	rc = db_stmt(c, sql_run_insert, &s, err);
	if (rc != OR_OK)
		goto out;
	sqlite3_bind_int64(s, 1, env_id);
	db_bind_text(s, 2, n->action);
	db_bind_text(s, 3, who->user);
	db_bind_text(s, 4, now);
	db_bind_text(s, 5, graph);
	db_bind_text(s, 6, params);
	db_bind_text(s, 7, omap);
	rc = db_step_done(c, s, err);
	if (rc != OR_OK)
		goto out;
	run_id = sqlite3_last_insert_rowid(c->h);
	json_array_foreach(n->graph, i, step) {
		rc = db_stmt(c, sql_step_insert, &s, err);
		if (rc != OR_OK)
			goto out;
		sqlite3_bind_int64(s, 1, run_id);
		sqlite3_bind_int64(s, 2, (long long)i);
		db_bind_text(s, 3, json_string_value(json_object_get(step, "name")));
		db_bind_text(s, 4, json_string_value(json_object_get(step, "plugin")));
		rc = db_step_done(c, s, err);
		if (rc != OR_OK)
			goto out;
	}
	rc = db_stmt(c, sql_env_take, &s, err);
	if (rc != OR_OK)
		goto out;
	sqlite3_bind_int64(s, 1, env_id);
	sqlite3_bind_int64(s, 2, run_id);
	db_bind_text(s, 3, status_for(n->action));
	db_bind_text(s, 4, who->user);
	db_bind_text(s, 5, now);
	rc = db_step_done(c, s, err);
	if (rc != OR_OK)
		goto out;
	db_audit(c, who, "run.create", n->environment, n->action);
	rc = db_tx_commit(db, c, err);
	if (rc == OR_OK)
		rc = run_read(c, run_id, out, err);
out:
	if (rc != OR_OK)
		db_tx_rollback(c);
	free(graph);
	free(params);
	free(omap);
	return rc;
}

or_rc
db_run_cancel(struct db *db, long long id, const struct db_actor *who,
	      json_t **out, struct or_err *err)
{
	struct db_conn *c = NULL;
	sqlite3_stmt *s = NULL;
	char target[32];
	or_rc rc;

	rc = db_conn(db, &c, err);
	if (rc != OR_OK)
		return rc;
	rc = db_tx_begin(c, err);
	if (rc != OR_OK)
		return rc;
	rc = db_stmt(c, sql_run_cancel, &s, err);
	if (rc != OR_OK)
		goto out;
	sqlite3_bind_int64(s, 1, id);
	rc = db_step_done(c, s, err);
	if (rc != OR_OK)
		goto out;
	if (sqlite3_changes(c->h) == 0) {
		json_t *run = NULL;

		rc = run_read(c, id, &run, err);
		if (rc == OR_OK)
			rc = or_fail(err, OR_E_CONFLICT, "finished", "id",
				     "run %lld has already finished (%s)", id,
				     json_string_value(json_object_get(run, "status")));
		json_decref(run);
		goto out;
	}
	snprintf(target, sizeof(target), "run %lld", id);
	db_audit(c, who, "run.cancel", target, NULL);
	rc = db_tx_commit(db, c, err);
	if (rc == OR_OK)
		rc = run_read(c, id, out, err);
out:
	if (rc != OR_OK)
		db_tx_rollback(c);
	return rc;
}

or_rc
db_run_retry(struct db *db, long long id, const struct db_actor *who,
	     json_t **out, struct or_err *err)
{
	struct db_conn *c = NULL;
	sqlite3_stmt *s = NULL;
	json_t *run = NULL;
	const char *status, *action, *env;
	char now[32], target[32];
	long long env_id;
	or_rc rc;

	rc = db_conn(db, &c, err);
	if (rc != OR_OK)
		return rc;
	rc = db_tx_begin(c, err);
	if (rc != OR_OK)
		return rc;
	rc = run_read(c, id, &run, err);
	if (rc != OR_OK)
		goto out;
	status = json_string_value(json_object_get(run, "status"));
	action = json_string_value(json_object_get(run, "action"));
	env = json_string_value(json_object_get(run, "environment"));
	if (strcmp(status, "failed") != 0 && strcmp(status, "cancelled") != 0) {
		rc = or_fail(err, OR_E_CONFLICT, "not_retryable", "id",
			     "run %lld is %s; only a failed or cancelled run can be retried",
			     id, status);
		goto out;
	}
	/* The environment must be free, and this must be its latest run:
	 * resuming an old run would undo what came after it. */
	rc = db_stmt(c, sql_env_for_run, &s, err);
	if (rc != OR_OK)
		goto out;
	db_bind_text(s, 1, env);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_reset(s);
		rc = or_fail(err, OR_E_NOTFOUND, NULL, "id", "its environment is gone");
		goto out;
	}
	env_id = sqlite3_column_int64(s, 0);
	if (sqlite3_column_type(s, 1) != SQLITE_NULL) {
		sqlite3_reset(s);
		rc = or_fail(err, OR_E_CONFLICT, "locked", "id",
			     "environment '%s' has another run in progress", env);
		goto out;
	}
	sqlite3_reset(s);
	/* run stays alive until out: action and env point into it. */
	rc = db_stmt(c, sql_run_requeue, &s, err);
	if (rc == OR_OK) {
		sqlite3_bind_int64(s, 1, id);
		rc = db_step_done(c, s, err);
	}
	if (rc == OR_OK)
		rc = db_stmt(c, sql_steps_requeue, &s, err);
	if (rc == OR_OK) {
		sqlite3_bind_int64(s, 1, id);
		rc = db_step_done(c, s, err);
	}
	if (rc == OR_OK)
		rc = db_stmt(c, sql_env_take, &s, err);
	if (rc != OR_OK)
		goto out;
	log_now_iso(now, sizeof(now));
	sqlite3_bind_int64(s, 1, env_id);
	sqlite3_bind_int64(s, 2, id);
	db_bind_text(s, 3, status_for(action));
	db_bind_text(s, 4, who->user);
	db_bind_text(s, 5, now);
	rc = db_step_done(c, s, err);
	if (rc != OR_OK)
		goto out;
	snprintf(target, sizeof(target), "run %lld", id);
	db_audit(c, who, "run.retry", target, NULL);
	rc = db_tx_commit(db, c, err);
	json_decref(run);
	run = NULL;
	if (rc == OR_OK)
		rc = run_read(c, id, out, err);
out:
	if (rc != OR_OK)
		db_tx_rollback(c);
	json_decref(run);
	return rc;
}

or_rc
db_run_logs(struct db *db, long long id, const char *step, long long after,
	    int limit, json_t **lines, long long *next, struct or_err *err)
{
	struct db_conn *c = NULL;
	sqlite3_stmt *s = NULL;
	json_t *arr, *l;
	long long last = after;
	int n = 0, rows;
	or_rc rc;

	rc = db_conn(db, &c, err);
	if (rc != OR_OK)
		return rc;
	rc = db_stmt(c, sql_run_logs, &s, err);
	if (rc != OR_OK)
		return rc;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, after);
	db_bind_text(s, 3, step);
	sqlite3_bind_int(s, 4, limit);
	arr = json_array();
	while ((rows = sqlite3_step(s)) == SQLITE_ROW) {
		last = sqlite3_column_int64(s, 0);
		l = json_pack("{s:I, s:o, s:o, s:o, s:o}", "seq", (json_int_t)last,
			      "ts", db_col_str(s, 1), "step", db_col_str(s, 2),
			      "stream", db_col_str(s, 3), "text", db_col_str(s, 4));
		json_array_append_new(arr, l);
		n++;
	}
	sqlite3_reset(s);
	if (rows != SQLITE_DONE) {
		json_decref(arr);
		return db_sqlite_fail(err, c->h, "read logs");
	}
	*lines = arr;
	*next = n == limit ? last : 0;
	return OR_OK;
}

or_rc
db_run_events(struct db *db, long long id, long long after, int limit,
	      json_t **events, int *finished, struct or_err *err)
{
	struct db_conn *c = NULL;
	sqlite3_stmt *s = NULL;
	json_t *arr, *ev, *run = NULL;
	const char *st;
	int rows;
	or_rc rc;

	rc = db_conn(db, &c, err);
	if (rc != OR_OK)
		return rc;
	/* Status first: events written before it are all in the table. */
	rc = run_read(c, id, &run, err);
	if (rc != OR_OK)
		return rc;
	st = json_string_value(json_object_get(run, "status"));
	*finished = strcmp(st, "succeeded") == 0 || strcmp(st, "failed") == 0 ||
		    strcmp(st, "cancelled") == 0;
	json_decref(run);
	rc = db_stmt(c, sql_run_events, &s, err);
	if (rc != OR_OK)
		return rc;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, after);
	sqlite3_bind_int(s, 3, limit);
	arr = json_array();
	while ((rows = sqlite3_step(s)) == SQLITE_ROW) {
		ev = json_pack("{s:I, s:o, s:o, s:o, s:o, s:o}",
			       "seq", (json_int_t)sqlite3_column_int64(s, 0),
			       "ts", db_col_str(s, 1), "kind", db_col_str(s, 2),
			       "step", db_col_str(s, 3), "stream", db_col_str(s, 4),
			       "data", db_col_str(s, 5));
		json_array_append_new(arr, ev);
	}
	sqlite3_reset(s);
	if (rows != SQLITE_DONE) {
		json_decref(arr);
		return db_sqlite_fail(err, c->h, "read events");
	}
	*events = arr;
	return OR_OK;
}

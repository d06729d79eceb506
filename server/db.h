/*
 * db.h - the store: one SQLite file in WAL mode, owned by one server.
 *
 * Each thread gets its own connection, opened lazily and closed when the
 * thread ends, with its prepared statements cached; SQL text is never built
 * from input.  Every write bumps a generation counter so that cached answers
 * (the HTTP layer's response cache, ETags) know when they are stale.  Only
 * one outrigger process may own a database file at a time.
 *
 * Functions returning json_t * hand the caller one reference (json_decref it).
 */
#ifndef DB_H
#define DB_H

#include <jansson.h>

#include "or.h"

struct db;

/* Open (creating the file and its parent directory if needed).  Nothing is
 * migrated yet.  *out is freed with db_close. */
or_rc db_open(const char *path, struct db **out, struct or_err *err);
void db_close(struct db *db);

/* Apply the embedded db/migrations/NNNN_*.sql not yet recorded, in order,
 * each in its own transaction.  Refuses a database from a newer schema. */
or_rc db_migrate(struct db *db, struct or_err *err);

/* The schema version recorded in the database (0 for an empty one). */
or_rc db_schema_version(struct db *db, int *out, struct or_err *err);

/* Changes with every committed write made through this struct db. */
unsigned long db_generation(struct db *db);

/* Is the database answering?  Cheap: checks at most once a second per
 * thread and remembers the answer in between. */
or_rc db_ping(struct db *db, struct or_err *err);

/* Who asks, for created_by/updated_by and the audit trail. */
struct db_actor {
	const char *user;
	const char *remote;
};

struct db_env_new {
	const char *name;
	const char *provider;
	const char *blueprint;
	json_t *params;	/* borrowed; already validated, defaults filled */
};

/* Insert; OR_E_CONFLICT if the name is taken.  *out: the stored environment. */
or_rc db_env_create(struct db *db, const struct db_env_new *e,
		    const struct db_actor *who, json_t **out, struct or_err *err);

/* One environment with its resources and last run. */
or_rc db_env_get(struct db *db, const char *name, json_t **out,
		 struct or_err *err);

/* A page of environments, newest first.  status may be NULL (all).  Only ids
 * below before_id are listed (0: from the newest).  *next_id is the cursor
 * of the following page, 0 when this is the last one. */
or_rc db_env_list(struct db *db, const char *status, long long before_id,
		  int limit, json_t **items, long long *next_id,
		  struct or_err *err);

/* Computes new params from the stored ones, inside the write transaction.
 * Returns a new reference in *params_out, or an error. */
typedef or_rc (*db_params_fn)(void *ctx, const char *blueprint,
			      json_t *params_in, json_t **params_out,
			      struct or_err *err);

/* Change an environment's params atomically: OR_E_NOTFOUND, OR_E_CONFLICT
 * while a run holds its lock, or fn's error.  *out: the stored environment. */
or_rc db_env_update_params(struct db *db, const char *name, db_params_fn fn,
			   void *ctx, const struct db_actor *who, json_t **out,
			   struct or_err *err);

/* Forget an environment.  OR_E_CONFLICT while a run holds its lock, or while
 * it owns cloud resources and force is 0. */
or_rc db_env_delete(struct db *db, const char *name, int force,
		    const struct db_actor *who, struct or_err *err);

/* ---- runs (db_run.c) ---------------------------------------------------
 * The API writes a run's request (create, cancel, retry); the scheduler
 * does everything after that.  Run JSON: id, environment, action, status,
 * created_by, created_at, started_at, finished_at, error, steps[]. */

struct db_run_new {
	const char *environment;
	const char *action;	/* apply | destroy | plan */
	json_t *graph;		/* borrowed: [{name, plugin, with, deps, retries}] */
	json_t *outputs_map;	/* borrowed: the blueprint's outputs */
	const char *blueprint;	/* must still be the environment's */
};

/* Start a run: OR_E_NOTFOUND, OR_E_CONFLICT ("locked") while another run
 * holds the environment.  *out: the run. */
or_rc db_run_create(struct db *db, const struct db_run_new *n,
		    const struct db_actor *who, json_t **out, struct or_err *err);
or_rc db_run_get(struct db *db, long long id, json_t **out, struct or_err *err);
/* Ask a queued or running run to stop (OR_E_CONFLICT when finished). */
or_rc db_run_cancel(struct db *db, long long id, const struct db_actor *who,
		    json_t **out, struct or_err *err);
/* Queue a failed or cancelled run again from its unfinished steps. */
or_rc db_run_retry(struct db *db, long long id, const struct db_actor *who,
		   json_t **out, struct or_err *err);
/* Log lines of a run after sequence number after (0: from the start),
 * of one step (NULL: all), at most limit.  *next: the cursor for the
 * next page, 0 when none is left now. */
or_rc db_run_logs(struct db *db, long long id, const char *step,
		  long long after, int limit, json_t **lines, long long *next,
		  struct or_err *err);
/* Events (kind, step, stream, data, seq, ts) after seq, at most limit;
 * *finished: the run has ended. */
or_rc db_run_events(struct db *db, long long id, long long after, int limit,
		    json_t **events, int *finished, struct or_err *err);

/* ---- the scheduler's view (db_sched.c) ------------------------------------ */

/* One event row: a log line or a status change (data is JSON then). */
struct db_event {
	long long run;
	long long seq;
	char ts[32];
	const char *kind;	/* "log", "step", "run" */
	const char *step;	/* NULL for the run itself */
	const char *stream;	/* logs: stdout, stderr, info, warn, error, debug */
	char *data;		/* owned by whoever filled the struct */
};

/* Ids of queued and running runs: [{id, cancel_requested}]. */
or_rc db_sched_active(struct db *db, json_t **out, struct or_err *err);

/* Everything the scheduler needs of a run: the run row (graph, params,
 * outputs_map, action, status, round, environment id, name, provider),
 * "steps" (their rows by idx), "secrets" {name: value}, "step_state"
 * {step: {state, outputs}}, and "max_seq". */
or_rc db_sched_load(struct db *db, long long id, json_t **out, struct or_err *err);

/* One transaction: the events, then each change in ops, in order.  ops is
 * an array of objects, by "op":
 *   step:   run, idx, status, attempts, round_attempts, retry_at|null,
 *           started_at|null, finished_at|null, outputs (object),
 *           error_code|null, error_message|null, runner_pid|null
 *   run:    id, status, started_at|null, finished_at|null, error_code|null,
 *           error_message|null
 *   env:    id, status|null (keep), outputs|null (keep), unlock (bool)
 *   state:  env, step, state (object)            (step_state.state)
 *   step_outputs: env, step, outputs (object)     (step_state.outputs)
 *   secret: env, name, value
 * ops may be NULL.  Nothing is written unless everything is. */
or_rc db_sched_commit(struct db *db, const struct db_event *events, size_t n,
		      json_t *ops, struct or_err *err);

#endif

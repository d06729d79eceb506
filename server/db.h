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

#endif

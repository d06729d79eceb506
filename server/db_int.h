/*
 * db_int.h - what the store's files (db.c, db_env.c, db_run.c) share: the
 * per-thread connection, its statement cache and transaction helpers.
 * Nothing outside db_*.c includes this.
 */
#ifndef DB_INT_H
#define DB_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <time.h>

#include "db.h"

#define DB_STMT_MAX 96

struct db_conn {
	sqlite3 *h;
	/* Prepared statements, keyed by the address of their SQL text: each
	 * statement is a static string in one of the db_*.c files. */
	const char *sql[DB_STMT_MAX];
	sqlite3_stmt *st[DB_STMT_MAX];
	int nst;
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

/* The calling thread's connection, opened on first use. */
or_rc db_conn(struct db *db, struct db_conn **out, struct or_err *err);

/* The statement for sql (a static string), prepared on first use, reset
 * and cleared. */
or_rc db_stmt(struct db_conn *c, const char *sql, sqlite3_stmt **out,
	      struct or_err *err);

/* Step a statement that returns no rows (or ignore its rows) and reset it.
 * A constraint failure is OR_E_CONFLICT, SQLITE_BUSY OR_E_RETRYABLE. */
or_rc db_step_done(struct db_conn *c, sqlite3_stmt *s, struct or_err *err);

/* BEGIN IMMEDIATE / COMMIT (bumping the generation) / ROLLBACK if open. */
or_rc db_tx_begin(struct db_conn *c, struct or_err *err);
or_rc db_tx_commit(struct db *db, struct db_conn *c, struct or_err *err);
/* COMMIT without changing the generation: for writes no cached answer
 * shows (the run's event log). */
or_rc db_tx_commit_quiet(struct db_conn *c, struct or_err *err);
void db_tx_rollback(struct db_conn *c);

or_rc db_sqlite_fail(struct or_err *err, sqlite3 *h, const char *what);

/* Bind text (NULL binds NULL), copied by SQLite. */
void db_bind_text(sqlite3_stmt *s, int i, const char *v);
/* Column i as a new JSON value: parsed JSON text ({} when NULL or bad), or
 * a string (null when NULL). */
json_t *db_col_json(sqlite3_stmt *s, int i);
json_t *db_col_str(sqlite3_stmt *s, int i);

/* Record who did what in the audit table (inside the caller's transaction). */
void db_audit(struct db_conn *c, const struct db_actor *who, const char *action,
	      const char *target, const char *detail);

#endif

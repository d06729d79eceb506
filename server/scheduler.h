/*
 * scheduler.h - the scheduler: one thread that runs every active run's step
 * graph, one runner process per step attempt, as many at once as the graph
 * and the limit allow.
 *
 * The API only writes requests into the store (a new run, a cancel, a
 * retry) and wakes the scheduler; the scheduler owns every change of run
 * and step state after that, committing each change (with the log lines
 * before it) before acting on it.  So a server killed at any moment
 * resumes on restart: steps whose runner died run again, finished steps
 * never do.  State machine and protocol: docs/engine.md.
 */
#ifndef SCHED_H
#define SCHED_H

#include <jansson.h>

#include "db.h"

struct sched_cfg {
	struct db *db;
	const char *plugins_dir;
	json_t *providers;	/* borrowed: {"sandbox": {...}, "gcp": {...}} */
	unsigned max_parallel;	/* step runners at once, all runs together */
	unsigned retry_base_ms;	/* first retry delay; doubles each time */
	unsigned cancel_grace_ms;	/* SIGTERM, then SIGKILL after this */
	/* Called on the scheduler thread after events are committed;
	 * finished: the run has ended (its last events are in this call). */
	void (*on_events)(void *ctx, long long run, const struct db_event *ev,
			  size_t n, int finished);
	void *ctx;
};

struct sched;

/* Resume what was running and start the thread. */
or_rc sched_start(const struct sched_cfg *cfg, struct sched **out,
		  struct or_err *err);

/* Something changed in the store (a run was created, cancelled, retried):
 * look again.  Safe from any thread; never blocks. */
void sched_wake(struct sched *s);

/* Stop the thread.  Running steps are stopped too (SIGTERM, then SIGKILL)
 * and left as they are in the store, so the next start runs them again. */
void sched_stop(struct sched *s);

#endif

/*
 * cloud.h - the sandbox's state: every simulated Google resource as a JSON
 * document in one SQLite file under the sandbox directory, long-running
 * operations with simulated durations, and the simulated clock.
 *
 * All access goes through one mutex (the sandbox serves a handful of
 * clients; simplicity beats concurrency here).  Documents returned are new
 * references the caller owns.
 */
#ifndef CLOUD_H
#define CLOUD_H

#include <jansson.h>

#include "or.h"

struct cloud;

struct cloud_cfg {
	const char *dir;	/* state lives here */
	double time_scale;	/* simulated durations x this */
	unsigned seed;		/* random choices are reproducible */
	const char *compute_base;	/* ".../compute/v1/" for selfLinks */
};

or_rc cloud_open(const struct cloud_cfg *cfg, struct cloud **out, struct or_err *err);
void cloud_close(struct cloud *c);

void cloud_lock(struct cloud *c);
void cloud_unlock(struct cloud *c);

/* Documents by kind and path ("projects/p/zones/z/instances/vm").  get:
 * NULL when absent.  list: every document of kind whose path starts with
 * prefix. */
json_t *cloud_get(struct cloud *c, const char *kind, const char *path);
or_rc cloud_put(struct cloud *c, const char *kind, const char *path, json_t *doc);
or_rc cloud_del(struct cloud *c, const char *kind, const char *path);
json_t *cloud_list(struct cloud *c, const char *kind, const char *prefix);

/* A counter that survives restarts (ids, addresses). */
long long cloud_next(struct cloud *c, const char *counter);

/* Simulated time: now in ms, and a duration in real seconds scaled. */
long long cloud_now_ms(void);
long long cloud_after_ms(struct cloud *c, double real_seconds);

/* Random in [0, n), from the seed. */
unsigned cloud_random(struct cloud *c, unsigned n);

const char *cloud_compute_base(struct cloud *c);

/* A copy of a stored document without its internal fields (those whose
 * name starts with '_'): what an API answers.  New reference. */
json_t *cloud_public_copy(json_t *doc);

#endif

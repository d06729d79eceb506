/*
 * cloud.c - the sandbox's state store (see cloud.h).  One table of JSON
 * documents keyed by (kind, path), one of counters.  Prepared statements
 * only; nothing outside this directory is written.
 */
#include "cloud.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct cloud {
	sqlite3 *h;
	pthread_mutex_t lock;
	double time_scale;
	unsigned rand_state;
	char *compute_base;
};

static const char schema[] =
	"PRAGMA journal_mode = WAL;"
	"PRAGMA synchronous = NORMAL;"
	"CREATE TABLE IF NOT EXISTS docs (kind TEXT NOT NULL, path TEXT NOT NULL, "
	"body TEXT NOT NULL, PRIMARY KEY (kind, path)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);";

or_rc
cloud_open(const struct cloud_cfg *cfg, struct cloud **out, struct or_err *err)
{
	struct cloud *c;
	char path[4096];

	if (mkdir(cfg->dir, 0755) != 0 && errno != EEXIST)
		return or_fail(err, OR_E_IO, NULL, "dir", "cannot create %s: %s", cfg->dir,
			       strerror(errno));
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	snprintf(path, sizeof(path), "%s/cloud.db", cfg->dir);
	if (sqlite3_open(path, &c->h) != SQLITE_OK ||
	    sqlite3_exec(c->h, schema, NULL, NULL, NULL) != SQLITE_OK) {
		or_fail(err, OR_E_IO, NULL, "dir", "sandbox state %s: %s", path,
			sqlite3_errmsg(c->h));
		sqlite3_close(c->h);
		free(c);
		return OR_E_IO;
	}
	sqlite3_busy_timeout(c->h, 5000);
	pthread_mutex_init(&c->lock, NULL);
	c->time_scale = cfg->time_scale > 0 ? cfg->time_scale : 1.0;
	c->rand_state = cfg->seed != 0 ? cfg->seed : 1;
	c->compute_base = strdup(cfg->compute_base != NULL ? cfg->compute_base : "");
	*out = c;
	return OR_OK;
}

void
cloud_close(struct cloud *c)
{
	if (c == NULL)
		return;
	sqlite3_close(c->h);
	pthread_mutex_destroy(&c->lock);
	free(c->compute_base);
	free(c);
}

void
cloud_lock(struct cloud *c)
{
	pthread_mutex_lock(&c->lock);
}

void
cloud_unlock(struct cloud *c)
{
	pthread_mutex_unlock(&c->lock);
}

const char *
cloud_compute_base(struct cloud *c)
{
	return c->compute_base;
}

json_t *
cloud_get(struct cloud *c, const char *kind, const char *path)
{
	sqlite3_stmt *s = NULL;
	json_t *doc = NULL;

	if (sqlite3_prepare_v2(c->h, "SELECT body FROM docs WHERE kind = ?1 AND path = ?2",
			       -1, &s, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		doc = json_loads((const char *)sqlite3_column_text(s, 0), 0, NULL);
	sqlite3_finalize(s);
	return doc;
}

or_rc
cloud_put(struct cloud *c, const char *kind, const char *path, json_t *doc)
{
	sqlite3_stmt *s = NULL;
	char *text = json_dumps(doc, JSON_COMPACT);
	int rc = SQLITE_ERROR;

	if (text != NULL &&
	    sqlite3_prepare_v2(c->h, "INSERT OR REPLACE INTO docs (kind, path, body) "
				     "VALUES (?1, ?2, ?3)", -1, &s, NULL) == SQLITE_OK) {
		sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, text, -1, SQLITE_STATIC);
		rc = sqlite3_step(s);
	}
	sqlite3_finalize(s);
	free(text);
	return rc == SQLITE_DONE ? OR_OK : OR_E_IO;
}

or_rc
cloud_del(struct cloud *c, const char *kind, const char *path)
{
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_ERROR;

	if (sqlite3_prepare_v2(c->h, "DELETE FROM docs WHERE kind = ?1 AND path = ?2", -1,
			       &s, NULL) == SQLITE_OK) {
		sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
		rc = sqlite3_step(s);
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? OR_OK : OR_E_IO;
}

json_t *
cloud_list(struct cloud *c, const char *kind, const char *prefix)
{
	sqlite3_stmt *s = NULL;
	json_t *arr = json_array(), *doc;
	size_t plen = strlen(prefix);

	/* A range scan on the key: prefix <= path < prefix + U+FFFF. */
	if (sqlite3_prepare_v2(c->h, "SELECT path, body FROM docs WHERE kind = ?1 AND "
				     "path >= ?2 ORDER BY path", -1, &s, NULL) != SQLITE_OK)
		return arr;
	sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, prefix, -1, SQLITE_STATIC);
	while (sqlite3_step(s) == SQLITE_ROW) {
		if (strncmp((const char *)sqlite3_column_text(s, 0), prefix, plen) != 0)
			break;
		doc = json_loads((const char *)sqlite3_column_text(s, 1), 0, NULL);
		if (doc != NULL)
			json_array_append_new(arr, doc);
	}
	sqlite3_finalize(s);
	return arr;
}

long long
cloud_next(struct cloud *c, const char *counter)
{
	sqlite3_stmt *s = NULL;
	long long v = 1;

	if (sqlite3_prepare_v2(c->h, "INSERT INTO counters (name, value) VALUES (?1, 1) "
				     "ON CONFLICT (name) DO UPDATE SET value = value + 1 "
				     "RETURNING value", -1, &s, NULL) == SQLITE_OK) {
		sqlite3_bind_text(s, 1, counter, -1, SQLITE_STATIC);
		if (sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int64(s, 0);
	}
	sqlite3_finalize(s);
	return v;
}

long long
cloud_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long
cloud_after_ms(struct cloud *c, double real_seconds)
{
	return cloud_now_ms() + (long long)(real_seconds * 1000.0 * c->time_scale);
}

unsigned
cloud_random(struct cloud *c, unsigned n)
{
	/* xorshift32: small, reproducible from --seed. */
	unsigned x = c->rand_state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	c->rand_state = x;
	return n > 0 ? x % n : 0;
}

json_t *
cloud_public_copy(json_t *doc)
{
	json_t *out = json_deep_copy(doc), *v;
	const char *key;
	void *tmp;

	json_object_foreach_safe(out, tmp, key, v)
		if (key[0] == '_')
			json_object_del(out, key);
	return out;
}

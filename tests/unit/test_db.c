/*
 * test_db.c - the store on real SQLite files: migrations, environments,
 * locks, the generation counter, and connections from several threads.
 */
#include "check.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "db.h"
#include "unit.h"

static const struct db_actor who = {"tester", "127.0.0.1"};

static struct db *
open_fresh(char *dir, size_t size, char *path, size_t psize)
{
	struct db *db = NULL;

	tmpdir_make(dir, size);
	snprintf(path, psize, "%s/a/b/o.db", dir);
	CHECK_INT(db_open(path, &db, NULL), OR_OK);
	CHECK_INT(db_migrate(db, NULL), OR_OK);
	return db;
}

static void
create(struct db *db, const char *name, or_rc want)
{
	struct db_env_new e = {name, "sandbox", "demo", NULL};
	struct or_err err;
	json_t *out = NULL;

	e.params = json_pack("{s:s}", "owner", "t");
	CHECK_INT(db_env_create(db, &e, &who, &out, &err), want);
	if (want == OR_OK)
		CHECK_STR(json_string_value(json_object_get(out, "name")), name);
	json_decref(out);
	json_decref(e.params);
}

static void
t_migrate_and_version(void)
{
	char dir[64], path[128];
	struct db *db = open_fresh(dir, sizeof(dir), path, sizeof(path));
	struct or_err err;
	int v = -1;

	CHECK_INT(db_schema_version(db, &v, NULL), OR_OK);
	CHECK_INT(v, 3);
	CHECK_INT(db_migrate(db, NULL), OR_OK); /* idempotent */
	CHECK_INT(db_ping(db, NULL), OR_OK);
	db_close(db);

	/* A newer schema is refused with a sentence naming both versions. */
	{
		sqlite3 *h;

		CHECK_INT(sqlite3_open(path, &h), SQLITE_OK);
		CHECK_INT(sqlite3_exec(h, "INSERT INTO schema_migrations VALUES (7, 'x', 'y')",
				       NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(h);
	}
	CHECK_INT(db_open(path, &db, NULL), OR_OK);
	CHECK_INT(db_migrate(db, &err), OR_E_CONFLICT);
	CHECK_STR(err.code, "schema_too_new");
	CHECK(strstr(err.message, "schema version 7") != NULL);
	CHECK(strstr(err.message, "up to 3") != NULL);
	db_close(db);
	tmpdir_remove(dir);
}

static void
t_env_crud(void)
{
	char dir[64], path[128];
	struct db *db = open_fresh(dir, sizeof(dir), path, sizeof(path));
	struct or_err err;
	json_t *items = NULL, *e = NULL;
	long long next = -1;
	unsigned long g0, g1;

	g0 = db_generation(db);
	create(db, "one", OR_OK);
	g1 = db_generation(db);
	CHECK(g1 > g0);
	create(db, "one", OR_E_CONFLICT);
	CHECK_INT(db_generation(db), g1); /* a refused write changes nothing */
	create(db, "two", OR_OK);
	create(db, "three", OR_OK);

	CHECK_INT(db_env_list(db, NULL, 0, 2, &items, &next, NULL), OR_OK);
	CHECK_INT(json_array_size(items), 2);
	CHECK_STR(json_string_value(json_object_get(json_array_get(items, 0), "name")), "three");
	CHECK(next > 0);
	json_decref(items);
	CHECK_INT(db_env_list(db, NULL, next, 2, &items, &next, NULL), OR_OK);
	CHECK_INT(json_array_size(items), 1);
	CHECK_STR(json_string_value(json_object_get(json_array_get(items, 0), "name")), "one");
	CHECK_INT(next, 0);
	json_decref(items);
	CHECK_INT(db_env_list(db, "ready", 0, 10, &items, &next, NULL), OR_OK);
	CHECK_INT(json_array_size(items), 0);
	json_decref(items);

	CHECK_INT(db_env_get(db, "two", &e, NULL), OR_OK);
	CHECK_STR(json_string_value(json_object_get(e, "created_by")), "tester");
	CHECK_STR(json_string_value(json_object_get(json_object_get(e, "params"), "owner")), "t");
	json_decref(e);
	CHECK_INT(db_env_get(db, "nine", &e, &err), OR_E_NOTFOUND);
	CHECK_STR(err.field, "name");

	CHECK_INT(db_env_delete(db, "two", 0, &who, NULL), OR_OK);
	CHECK_INT(db_env_delete(db, "two", 0, &who, NULL), OR_E_NOTFOUND);
	db_close(db);
	tmpdir_remove(dir);
}

static or_rc
set_count(void *ctx, const char *blueprint, json_t *in, json_t **out,
	  struct or_err *err)
{
	(void)err;
	CHECK_STR(blueprint, "demo");
	*out = json_copy(in);
	json_object_set_new(*out, "count", json_integer(*(int *)ctx));
	return OR_OK;
}

static or_rc
refuse(void *ctx, const char *blueprint, json_t *in, json_t **out,
       struct or_err *err)
{
	(void)ctx;
	(void)blueprint;
	(void)in;
	(void)out;
	return or_fail(err, OR_E_INVALID, NULL, "params.count", "no");
}

static void
t_update_params(void)
{
	char dir[64], path[128];
	struct db *db = open_fresh(dir, sizeof(dir), path, sizeof(path));
	struct or_err err;
	json_t *e = NULL;
	int four = 4;
	sqlite3 *h;

	create(db, "env", OR_OK);
	CHECK_INT(db_env_update_params(db, "env", set_count, &four, &who, &e, NULL), OR_OK);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(e, "params"), "count")), 4);
	json_decref(e);
	e = NULL;
	CHECK_INT(db_env_update_params(db, "env", refuse, NULL, &who, &e, &err), OR_E_INVALID);
	CHECK(e == NULL);
	CHECK_INT(db_env_get(db, "env", &e, NULL), OR_OK);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(e, "params"), "count")), 4);
	json_decref(e);
	e = NULL;
	CHECK_INT(db_env_update_params(db, "none", set_count, &four, &who, &e, NULL), OR_E_NOTFOUND);

	/* The lock column refuses changes and deletion. */
	CHECK_INT(sqlite3_open(path, &h), SQLITE_OK);
	CHECK_INT(sqlite3_exec(h, "UPDATE environments SET active_run_id = 1", NULL, NULL, NULL),
		  SQLITE_OK);
	sqlite3_close(h);
	CHECK_INT(db_env_update_params(db, "env", set_count, &four, &who, &e, &err), OR_E_CONFLICT);
	CHECK_STR(err.code, "locked");
	CHECK_INT(db_env_delete(db, "env", 1, &who, &err), OR_E_CONFLICT);
	db_close(db);
	tmpdir_remove(dir);
}

struct writer {
	struct db *db;
	int id;
	int ok;
};

static void *
write_many(void *p)
{
	struct writer *w = p;
	char name[32];
	int i;

	for (i = 0; i < 50; i++) {
		struct db_env_new e = {name, "sandbox", "demo", NULL};
		json_t *out = NULL;

		snprintf(name, sizeof(name), "t%d-%d", w->id, i);
		e.params = json_object();
		if (db_env_create(w->db, &e, &who, &out, NULL) == OR_OK)
			w->ok++;
		json_decref(out);
		json_decref(e.params);
	}
	return NULL;
}

/* Several threads, each with its own connection, write at once: busy
 * waits instead of failing, nothing is lost. */
static void
t_threads(void)
{
	char dir[64], path[128];
	struct db *db = open_fresh(dir, sizeof(dir), path, sizeof(path));
	struct writer w[4];
	pthread_t t[4];
	json_t *items = NULL;
	long long next;
	int i;

	for (i = 0; i < 4; i++) {
		w[i] = (struct writer){db, i, 0};
		pthread_create(&t[i], NULL, write_many, &w[i]);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK_INT(w[i].ok, 50);
	}
	CHECK_INT(db_env_list(db, NULL, 0, 500, &items, &next, NULL), OR_OK);
	CHECK_INT(json_array_size(items), 200);
	json_decref(items);
	db_close(db);
	tmpdir_remove(dir);
}

static void
t_open_fails_clearly(void)
{
	struct db *db = NULL;
	struct or_err err;

	CHECK(db_open("/proc/outrigger/o.db", &db, &err) != OR_OK);
	CHECK(db == NULL);
	CHECK(strlen(err.message) > 0);
}

void
suite_db(void)
{
	RUN(t_migrate_and_version);
	RUN(t_env_crud);
	RUN(t_update_params);
	RUN(t_threads);
	RUN(t_open_fails_clearly);
}

/*
 * test_store.c - the database across restarts and versions, and the
 * command line's contract (exit 2 and one line for bad flags).
 */
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_client.h"
#include "suites.h"

static void
t_restart_keeps_data(void)
{
	struct srv s, s2;
	struct res r;
	char created[64] = "";

	CHECK(srv_start(&s, NULL, NULL) == 0);
	CHECK(make_env(&s, "keeper") == 0);
	CHECK(send_json(&s, "PATCH", "/api/v1/environments/keeper",
			"{\"params\":{\"count\":5}}", &r) == 0);
	CHECK_INT(r.status, 200);
	snprintf(created, sizeof(created), "%s",
		 json_string_value(json_object_get(r.json, "created_at")));
	res_free(&r);
	CHECK_INT(srv_stop(&s, 1), 0);

	CHECK(srv_start(&s2, s.dir, NULL) == 0);
	CHECK(get(&s2, "/api/v1/environments/keeper", &r) == 0);
	CHECK_INT(r.status, 200);
	CHECK_STR(json_string_value(json_object_get(r.json, "created_at")), created);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(r.json, "params"), "count")), 5);
	res_free(&r);
	/* And after a SIGKILL, too: every acknowledged write was committed. */
	CHECK(make_env(&s2, "keeper-2") == 0);
	srv_kill(&s2);
	CHECK(srv_start(&s, s2.dir, NULL) == 0);
	CHECK(get(&s, "/api/v1/environments/keeper-2", &r) == 0);
	CHECK_INT(r.status, 200);
	res_free(&r);
	CHECK_INT(srv_stop(&s, 0), 0);
}

static void
t_migrate_command(void)
{
	char dir[] = "/tmp/outrigger-test-XXXXXX", db[128], out[1024];
	const char *args[] = {"migrate", "--db", db, NULL};
	const char *jm[] = {"migrate", "--db", db, NULL};

	CHECK(mkdtemp(dir) != NULL);
	snprintf(db, sizeof(db), "%s/sub/dir/new.db", dir); /* parents are made */
	CHECK_INT(run_bin(args, out, sizeof(out)), 0);
	CHECK(strstr(out, "schema version 3") != NULL);
	CHECK(access(db, F_OK) == 0);
	/* Idempotent. */
	CHECK_INT(run_bin(jm, out, sizeof(out)), 0);
	CHECK(strstr(out, "applied migration") == NULL);
	CHECK(strstr(out, "schema version 3") != NULL);
	/* A database from a newer schema is refused, by migrate and by serve. */
	CHECK(sql_exec(db, "INSERT INTO schema_migrations VALUES (9999, 'future.sql', 'x')") == 0);
	CHECK_INT(run_bin(args, out, sizeof(out)), 1);
	CHECK(strstr(out, "newer outrigger") != NULL);
	{
		const char *serve[] = {"serve", "--listen", "127.0.0.1:0", "--db", db, NULL};

		CHECK_INT(run_bin(serve, out, sizeof(out)), 1);
		CHECK(strstr(out, "schema version 9999") != NULL);
	}
	srv_rmdir(dir);
}

static void
t_wal_mode(void)
{
	char dir[] = "/tmp/outrigger-test-XXXXXX", db[128], out[256], cmd[300];
	const char *args[] = {"migrate", "--db", db, NULL};
	FILE *p;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(db, sizeof(db), "%s/o.db", dir);
	CHECK_INT(run_bin(args, out, sizeof(out)), 0);
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' 'PRAGMA journal_mode' 2>/dev/null", db);
	p = popen(cmd, "r");
	if (p == NULL || fgets(out, sizeof(out), p) == NULL) {
		if (p != NULL)
			pclose(p);
		srv_rmdir(dir);
		SKIP("the sqlite3 command is not installed (tools/deps.sh install test)");
	}
	pclose(p);
	CHECK_STR(out, "wal\n");
	srv_rmdir(dir);
}

static void
t_cli_contract(void)
{
	static const struct {
		const char *args[6];
		int status;
		const char *says;
	} cases[] = {
		{{"--help", NULL}, 0, "usage: outrigger"},
		{{"serve", "--help", NULL}, 0, "--blueprints DIR"},
		{{"version", NULL}, 0, "outrigger "},
		{{"frobnicate", NULL}, 2, "unknown command 'frobnicate'"},
		{{"serve", "--bogus", NULL}, 2, "unknown option '--bogus'"},
		{{"serve", "--threads", "many", NULL}, 2, "--threads wants a whole number"},
		{{"serve", "--threads", "0", NULL}, 2, "--threads wants a whole number"},
		{{"serve", "--listen", NULL}, 2, "--listen needs a value"},
		{{"serve", "--listen", "nowhere", NULL}, 2, "--listen wants ADDR:PORT"},
		{{"serve", "--listen", "127.0.0.1:99999", NULL}, 2, "--listen wants ADDR:PORT"},
		{{"serve", "--blueprints", "/nonexistent-dir", NULL}, 2, "is not a directory"},
		{{"serve", "--web", "/nonexistent-dir", NULL}, 2, "--web"},
		{{"migrate", "--listen", "x:1", NULL}, 2, "unknown option '--listen'"},
		{{"serve", "--sandbox", "--sandbox-endpoints", "/x.json", NULL}, 2, "exclude each other"},
	};
	char out[4096];
	size_t i;
	int st;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		st = run_bin(cases[i].args, out, sizeof(out));
		CHECK_INT(st, cases[i].status);
		CHECK(strstr(out, cases[i].says) != NULL);
		if (cases[i].status == 2) /* one line */
			CHECK(strchr(out, '\n') == out + strlen(out) - 1);
		if (st != cases[i].status || strstr(out, cases[i].says) == NULL)
			fprintf(stderr, "    %s %s: got %d: %s\n", cases[i].args[0],
				cases[i].args[1] ? cases[i].args[1] : "", st, out);
	}
}

/* --check loads everything, lists blueprints that did not load, exits 0. */
static void
t_check_mode(void)
{
	char dir[] = "/tmp/outrigger-test-XXXXXX", db[128], out[8192];
	const char *args[] = {"serve", "--db", db, "--blueprints", "tests/blueprints", "--check",
			      NULL};

	CHECK(mkdtemp(dir) != NULL);
	snprintf(db, sizeof(db), "%s/o.db", dir);
	CHECK_INT(run_bin(args, out, sizeof(out)), 0);
	CHECK(strstr(out, "configuration checked") != NULL);
	/* The test blueprint that names a missing plugin is reported; the
	 * tutorial blueprints, whose plugins are built, are not. */
	CHECK(strstr(out, "blueprint unknown-plugin: ") != NULL);
	CHECK(strstr(out, "blueprint mesh-expansion: ") == NULL);
	srv_rmdir(dir);
}

/* serve --sandbox starts the simulated cloud beside it (state next to the
 * database) and stops it when it stops; a bad --sandbox-endpoints file is
 * refused at start. */
static void
t_embedded_sandbox(void)
{
	const char *extra[] = {"--sandbox", NULL};
	char path[400], out[2048], bad[400];
	const char *args[] = {"serve", "--db", NULL, "--sandbox-endpoints", bad, NULL};
	struct srv s;
	json_t *e;
	FILE *f;

	CHECK(srv_start(&s, NULL, extra) == 0);
	snprintf(path, sizeof(path), "%s/sandbox/endpoints.json", s.dir);
	e = json_load_file(path, 0, NULL);
	CHECK(e != NULL);
	CHECK(strstr(json_string_value(json_object_get(e, "compute")) ? json_string_value(json_object_get(e, "compute")) : "",
		     "/compute/v1/") != NULL);
	json_decref(e);
	CHECK_INT(srv_stop(&s, 1), 0);
	snprintf(bad, sizeof(bad), "%s/bad.json", s.dir);
	f = fopen(bad, "w");
	if (f != NULL) {
		fputs("{\"compute\": 1}", f);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/o.db", s.dir);
	args[2] = path;
	CHECK_INT(run_bin(args, out, sizeof(out)), 1);
	CHECK(strstr(out, "is not a sandbox's endpoints.json") != NULL);
	srv_rmdir(s.dir);
}

/* serve --gcp-credentials KEYFILE: GET /api/v1/providers says gcp is set
 * up, with the key's account and project and never its path or key; a
 * file that is no service-account key is refused at start, by name. */
static void
t_gcp_credentials(void)
{
	char dir[] = "/tmp/outrigger-test-XXXXXX", key[128], bad[128], db[128], out[2048];
	const char *extra[] = {"--gcp-credentials", key, NULL};
	const char *args[] = {"serve", "--db", db, "--gcp-credentials", bad, NULL};
	struct srv s;
	struct res r;
	json_t *p;
	size_t i;
	FILE *f;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(key, sizeof(key), "%s/key.json", dir);
	snprintf(bad, sizeof(bad), "%s/bad.json", dir);
	snprintf(db, sizeof(db), "%s/o.db", dir);
	f = fopen(key, "w");
	if (f != NULL) {
		fputs("{\"type\": \"service_account\", \"project_id\": \"team-proj-1\", "
		      "\"private_key\": \"-----BEGIN PRIVATE KEY-----\\nMC4CAQA=\\n-----END PRIVATE KEY-----\\n\", "
		      "\"client_email\": \"deployer@team-proj-1.iam.gserviceaccount.com\"}", f);
		fclose(f);
	}
	f = fopen(bad, "w");
	if (f != NULL) {
		fputs("{\"client_email\": \"x@y\"}", f);
		fclose(f);
	}
	CHECK(srv_start(&s, NULL, extra) == 0);
	CHECK(get(&s, "/api/v1/providers", &r) == 0);
	CHECK_INT(r.status, 200);
	json_array_foreach(json_object_get(r.json, "providers"), i, p) {
		if (strcmp(json_string_value(json_object_get(p, "name")), "gcp") == 0) {
			CHECK(json_is_true(json_object_get(p, "configured")));
			CHECK_STR(json_string_value(json_object_get(p, "account")),
				  "deployer@team-proj-1.iam.gserviceaccount.com");
			CHECK_STR(json_string_value(json_object_get(p, "project")), "team-proj-1");
		} else {
			CHECK(json_is_false(json_object_get(p, "configured")));
		}
	}
	CHECK_INT(json_array_size(json_object_get(r.json, "providers")), 2);
	CHECK(r.body != NULL && strstr(r.body, "PRIVATE KEY") == NULL && strstr(r.body, key) == NULL);
	res_free(&r);
	CHECK_INT(srv_stop(&s, 0), 0);
	CHECK_INT(run_bin(args, out, sizeof(out)), 1);
	CHECK(strstr(out, "is not a service-account key file") != NULL);
	CHECK(strstr(out, "MC4CAQA") == NULL);
	unlink(key);
	unlink(bad);
	rmdir(dir);
}

void
suite_store(void)
{
	RUN(t_restart_keeps_data);
	RUN(t_migrate_command);
	RUN(t_wal_mode);
	RUN(t_cli_contract);
	RUN(t_check_mode);
	RUN(t_embedded_sandbox);
	RUN(t_gcp_credentials);
}

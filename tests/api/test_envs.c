/*
 * test_envs.c - environments: create, list, get, patch, delete, and every
 * error case of the contract (400, 404, 405, 409, 413, 415, 422 with the
 * field named).  A refused request must change nothing.
 */
#include "check.h"

#include <stdlib.h>
#include <string.h>

#include "api_client.h"
#include "suites.h"

static struct srv S;

static const char *
jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* POST a create body and check the status, error field (NULL: none
 * expected) and code (NULL: any). */
static void
expect_create(const char *body, long status, const char *field, const char *code)
{
	struct res r;

	CHECK(send_json(&S, "POST", "/api/v1/environments", body, &r) == 0);
	CHECK_INT(r.status, status);
	if (status >= 400) {
		CHECK(strlen(err_code(&r)) > 0);
		CHECK(jstr(json_object_get(r.json, "error"), "message") != NULL);
		if (field != NULL)
			CHECK_STR(err_field(&r), field);
		if (code != NULL)
			CHECK_STR(err_code(&r), code);
	}
	if (r.status != status)
		fprintf(stderr, "    body sent: %s\n    answer: %s\n", body, r.body);
	res_free(&r);
}

static void
t_create(void)
{
	const char *hdr[] = {"X-Outrigger-User: ada@example.com", NULL};
	const char *body = "{\"name\":\"alpha\",\"provider\":\"sandbox\","
			   "\"blueprint\":\"demo\",\"params\":{\"owner\":\"ada\",\"count\":7}}";
	struct res r;
	char loc[128];
	json_t *p;

	CHECK(req(&S, "POST", "/api/v1/environments", "application/json", body,
		  strlen(body), hdr, &r) == 0);
	CHECK_INT(r.status, 201);
	CHECK(res_header(&r, "Location", loc, sizeof(loc)) != NULL);
	CHECK_STR(loc, "/api/v1/environments/alpha");
	CHECK_STR(jstr(r.json, "name"), "alpha");
	CHECK_STR(jstr(r.json, "status"), "draft");
	CHECK_STR(jstr(r.json, "created_by"), "ada@example.com");
	p = json_object_get(r.json, "params");
	CHECK_INT(json_integer_value(json_object_get(p, "count")), 7);
	/* Defaults filled in and stored. */
	CHECK_STR(jstr(p, "greeting"), "hello");
	CHECK_STR(jstr(p, "mode"), "fast");
	CHECK(json_is_false(json_object_get(p, "verbose")));
	res_free(&r);

	CHECK(get(&S, "/api/v1/environments/alpha", &r) == 0);
	CHECK_INT(r.status, 200);
	CHECK_STR(jstr(json_object_get(r.json, "params"), "greeting"), "hello");
	CHECK(json_is_array(json_object_get(json_object_get(r.json, "resources"), "vms")));
	CHECK(json_is_null(json_object_get(r.json, "last_run")));
	res_free(&r);

	/* Charset parameter on the content type is fine. */
	body = "{\"name\":\"alpha-2\",\"provider\":\"gcp\",\"blueprint\":\"demo\","
	       "\"params\":{\"owner\":\"x\"}}";
	CHECK(req(&S, "POST", "/api/v1/environments", "application/json; charset=utf-8",
		  body, strlen(body), NULL, &r) == 0);
	CHECK_INT(r.status, 201);
	CHECK_STR(jstr(r.json, "created_by"), "anonymous");
	res_free(&r);
}

static void
t_create_conflict(void)
{
	struct res r;

	CHECK(make_env(&S, "dup") == 0);
	expect_create("{\"name\":\"dup\",\"provider\":\"sandbox\",\"blueprint\":\"demo\","
		      "\"params\":{\"owner\":\"other\"}}", 409, "name", "already_exists");
	/* The first one is untouched. */
	CHECK(get(&S, "/api/v1/environments/dup", &r) == 0);
	CHECK_STR(jstr(json_object_get(r.json, "params"), "owner"), "test");
	res_free(&r);
}

static void
t_create_malformed(void)
{
	struct res r;

	expect_create("{\"name\":", 400, NULL, "malformed");
	expect_create("{\"name\":\"a\",\"name\":\"b\"}", 400, NULL, "malformed");
	expect_create("", 400, NULL, "malformed");
	expect_create("[1,2]", 422, NULL, "invalid");
	expect_create("\"text\"", 400, NULL, "malformed");

	CHECK(req(&S, "POST", "/api/v1/environments", NULL, "{}", 2, NULL, &r) == 0);
	CHECK_INT(r.status, 415);
	CHECK_STR(err_code(&r), "unsupported_media_type");
	res_free(&r);
	CHECK(req(&S, "POST", "/api/v1/environments", "text/plain", "{}", 2, NULL, &r) == 0);
	CHECK_INT(r.status, 415);
	res_free(&r);
	CHECK(req(&S, "POST", "/api/v1/environments", "application/jsonx", "{}", 2, NULL, &r) == 0);
	CHECK_INT(r.status, 415);
	res_free(&r);
}

static void
t_create_invalid_fields(void)
{
	char body[512], long_name[80];
	const char *bad_names[] = {"\"Upper\"", "\"1abc\"", "\"ends-\"", "\"\"",
				   "\"has_underscore\"", "\"a.b\"", "42", "null"};
	const char *hdr[] = {"X-Outrigger-User: bad user!", NULL};
	const char *body2;
	struct res r;
	size_t i;

	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		snprintf(body, sizeof(body), "{\"name\":%s,\"provider\":\"sandbox\","
			 "\"blueprint\":\"demo\",\"params\":{\"owner\":\"x\"}}", bad_names[i]);
		expect_create(body, 422, "name", "invalid");
	}
	memset(long_name, 'a', 64);
	long_name[64] = '\0';
	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"provider\":\"sandbox\","
		 "\"blueprint\":\"demo\",\"params\":{\"owner\":\"x\"}}", long_name);
	expect_create(body, 422, "name", NULL);
	long_name[63] = '\0'; /* 63 is the longest DNS label */
	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"provider\":\"sandbox\","
		 "\"blueprint\":\"demo\",\"params\":{\"owner\":\"x\"}}", long_name);
	expect_create(body, 201, NULL, NULL);

	expect_create("{\"name\":\"p1\",\"provider\":\"aws\",\"blueprint\":\"demo\"}",
		      422, "provider", NULL);
	expect_create("{\"name\":\"p1\",\"blueprint\":\"demo\"}", 422, "provider", NULL);
	expect_create("{\"name\":\"p1\",\"provider\":\"gcp\",\"blueprint\":\"nope\"}",
		      422, "blueprint", "unknown_blueprint");
	expect_create("{\"name\":\"p1\",\"provider\":\"gcp\"}", 422, "blueprint", NULL);
	expect_create("{\"name\":\"p1\",\"provider\":\"gcp\",\"blueprint\":\"demo\","
		      "\"params\":{\"owner\":\"x\"},\"color\":\"red\"}",
		      422, "color", "unknown_field");
	/* A blueprint that did not load: 422 carrying its load error. */
	CHECK(send_json(&S, "POST", "/api/v1/environments",
			"{\"name\":\"p1\",\"provider\":\"gcp\",\"blueprint\":\"unknown-plugin\"}",
			&r) == 0);
	CHECK_INT(r.status, 422);
	CHECK_STR(err_field(&r), "blueprint");
	CHECK_STR(err_code(&r), "blueprint_not_loadable");
	CHECK(strstr(r.body, "unknown plugin") != NULL);
	res_free(&r);

	body2 = "{\"name\":\"p1\",\"provider\":\"gcp\",\"blueprint\":\"demo\","
		"\"params\":{\"owner\":\"x\"}}";
	CHECK(req(&S, "POST", "/api/v1/environments", "application/json", body2,
		  strlen(body2), hdr, &r) == 0);
	CHECK_INT(r.status, 422);
	CHECK_STR(err_field(&r), "X-Outrigger-User");
	res_free(&r);

	/* None of the refused requests created anything. */
	CHECK(get(&S, "/api/v1/environments/p1", &r) == 0);
	CHECK_INT(r.status, 404);
	res_free(&r);
}

static void
t_create_invalid_params(void)
{
#define ENV_WITH(params) \
	"{\"name\":\"pp\",\"provider\":\"sandbox\",\"blueprint\":\"demo\",\"params\":" params "}"
	expect_create(ENV_WITH("{\"owner\":\"x\",\"colour\":1}"), 422, "params.colour", "unknown_param");
	expect_create(ENV_WITH("{}"), 422, "params.owner", "required");
	expect_create(ENV_WITH("{\"owner\":null}"), 422, "params.owner", "required");
	expect_create(ENV_WITH("{\"owner\":\"x\",\"count\":\"3\"}"), 422, "params.count", NULL);
	expect_create(ENV_WITH("{\"owner\":\"x\",\"count\":3.5}"), 422, "params.count", NULL);
	expect_create(ENV_WITH("{\"owner\":\"x\",\"count\":0}"), 422, "params.count", NULL);
	expect_create(ENV_WITH("{\"owner\":\"x\",\"count\":11}"), 422, "params.count", NULL);
	expect_create(ENV_WITH("{\"owner\":\"x\",\"greeting\":\"Hello\"}"), 422, "params.greeting", NULL);
	/* A NUL inside a string never gets in: refused while parsing. */
	expect_create(ENV_WITH("{\"owner\":\"x\",\"greeting\":\"hi\\u0000there\"}"), 400, NULL, "malformed");
	expect_create("{\"name\":\"a\\u0000b\",\"provider\":\"sandbox\",\"blueprint\":\"demo\"}", 400, NULL, NULL);
	expect_create(ENV_WITH("{\"owner\":\"x\",\"mode\":\"medium\"}"), 422, "params.mode", NULL);
	expect_create(ENV_WITH("{\"owner\":\"x\",\"verbose\":\"yes\"}"), 422, "params.verbose", NULL);
	expect_create(ENV_WITH("{\"owner\":7}"), 422, "params.owner", NULL);
	expect_create(ENV_WITH("[\"owner\"]"), 422, "params", NULL);
	expect_create(ENV_WITH("{\"owner\":\"x\",\"count\":10,\"mode\":\"slow\",\"verbose\":true}"),
		      201, NULL, NULL);
#undef ENV_WITH
}

static void
t_get_missing(void)
{
	struct res r;

	CHECK(get(&S, "/api/v1/environments/nobody-here", &r) == 0);
	CHECK_INT(r.status, 404);
	CHECK_STR(err_code(&r), "not_found");
	res_free(&r);
}

static void
t_list_pagination(void)
{
	char name[32], path[128], seen[2048] = "";
	const char *prev_cursor = NULL;
	struct res r;
	json_t *items;
	int i, total = 0, pages = 0;
	char cursor[32] = "";

	for (i = 0; i < 7; i++) {
		snprintf(name, sizeof(name), "page-%d", i);
		CHECK(make_env(&S, name) == 0);
	}
	/* Newest first: page-6 opens the first page. */
	CHECK(get(&S, "/api/v1/environments?limit=3", &r) == 0);
	CHECK_INT(r.status, 200);
	items = json_object_get(r.json, "environments");
	CHECK_INT(json_array_size(items), 3);
	CHECK_STR(jstr(json_array_get(items, 0), "name"), "page-6");
	CHECK(json_is_string(json_object_get(r.json, "next_cursor")));
	res_free(&r);

	/* Walking every page sees every environment exactly once. */
	do {
		if (cursor[0] != '\0')
			snprintf(path, sizeof(path), "/api/v1/environments?limit=4&cursor=%s", cursor);
		else
			snprintf(path, sizeof(path), "/api/v1/environments?limit=4");
		CHECK(get(&S, path, &r) == 0);
		CHECK_INT(r.status, 200);
		items = json_object_get(r.json, "environments");
		for (i = 0; i < (int)json_array_size(items); i++) {
			const char *n = jstr(json_array_get(items, (size_t)i), "name");
			char key[80];

			snprintf(key, sizeof(key), "|%s|", n);
			CHECK(strstr(seen, key) == NULL);
			strncat(seen, key, sizeof(seen) - strlen(seen) - 1);
			total++;
		}
		prev_cursor = jstr(r.json, "next_cursor");
		snprintf(cursor, sizeof(cursor), "%s", prev_cursor != NULL ? prev_cursor : "");
		res_free(&r);
		pages++;
	} while (cursor[0] != '\0' && pages < 50);
	CHECK(get(&S, "/api/v1/environments?limit=500", &r) == 0);
	CHECK_INT((long long)json_array_size(json_object_get(r.json, "environments")), total);
	CHECK(json_is_null(json_object_get(r.json, "next_cursor")));
	res_free(&r);
	CHECK(total >= 7);
	CHECK(strstr(seen, "|page-0|") != NULL && strstr(seen, "|page-6|") != NULL);
}

static void
t_list_filters_and_errors(void)
{
	static const struct {
		const char *query, *field;
	} bad[] = {
		{"status=bogus", "status"}, {"limit=0", "limit"}, {"limit=501", "limit"},
		{"limit=abc", "limit"}, {"limit=-1", "limit"}, {"cursor=abc", "cursor"},
		{"cursor=0", "cursor"}, {"limit=99999999999999999999", "limit"},
	};
	char path[128];
	struct res r;
	size_t i;

	CHECK(sql_exec(S.db, "UPDATE environments SET status = 'ready' WHERE name = 'page-3'") == 0);
	CHECK(make_env(&S, "after-ready") == 0); /* a write through the API: caches drop */
	CHECK(get(&S, "/api/v1/environments?status=ready", &r) == 0);
	CHECK_INT(r.status, 200);
	CHECK_INT(json_array_size(json_object_get(r.json, "environments")), 1);
	CHECK_STR(jstr(json_array_get(json_object_get(r.json, "environments"), 0), "name"), "page-3");
	res_free(&r);
	CHECK(get(&S, "/api/v1/environments?status=destroyed", &r) == 0);
	CHECK_INT(r.status, 200);
	CHECK_INT(json_array_size(json_object_get(r.json, "environments")), 0);
	res_free(&r);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(path, sizeof(path), "/api/v1/environments?%s", bad[i].query);
		CHECK(get(&S, path, &r) == 0);
		CHECK_INT(r.status, 422);
		CHECK_STR(err_field(&r), bad[i].field);
		res_free(&r);
	}
}

static void
t_patch(void)
{
	const char *hdr[] = {"X-Outrigger-User: grace", NULL};
	const char *body = "{\"params\":{\"count\":9,\"greeting\":\"howdy\"}}";
	struct res r;

	CHECK(make_env(&S, "patchy") == 0);
	CHECK(req(&S, "PATCH", "/api/v1/environments/patchy", "application/json", body,
		  strlen(body), hdr, &r) == 0);
	CHECK_INT(r.status, 200);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(r.json, "params"), "count")), 9);
	CHECK_STR(jstr(json_object_get(r.json, "params"), "greeting"), "howdy");
	CHECK_STR(jstr(r.json, "updated_by"), "grace");
	CHECK_STR(jstr(r.json, "created_by"), "anonymous");
	res_free(&r);

	/* null puts a parameter back to its default. */
	CHECK(send_json(&S, "PATCH", "/api/v1/environments/patchy",
			"{\"params\":{\"greeting\":null}}", &r) == 0);
	CHECK_INT(r.status, 200);
	CHECK_STR(jstr(json_object_get(r.json, "params"), "greeting"), "hello");
	CHECK_INT(json_integer_value(json_object_get(json_object_get(r.json, "params"), "count")), 9);
	res_free(&r);

	/* Refused changes leave the stored params as they were. */
	CHECK(send_json(&S, "PATCH", "/api/v1/environments/patchy",
			"{\"params\":{\"count\":99}}", &r) == 0);
	CHECK_INT(r.status, 422);
	CHECK_STR(err_field(&r), "params.count");
	res_free(&r);
	CHECK(send_json(&S, "PATCH", "/api/v1/environments/patchy",
			"{\"params\":{\"owner\":null}}", &r) == 0);
	CHECK_INT(r.status, 422);
	CHECK_STR(err_field(&r), "params.owner");
	res_free(&r);
	CHECK(send_json(&S, "PATCH", "/api/v1/environments/patchy",
			"{\"params\":{\"nope\":1}}", &r) == 0);
	CHECK_INT(r.status, 422);
	CHECK_STR(err_field(&r), "params.nope");
	res_free(&r);
	CHECK(send_json(&S, "PATCH", "/api/v1/environments/patchy",
			"{\"name\":\"renamed\"}", &r) == 0);
	CHECK_INT(r.status, 422);
	CHECK_STR(err_field(&r), "name");
	res_free(&r);
	CHECK(send_json(&S, "PATCH", "/api/v1/environments/patchy", "{}", &r) == 0);
	CHECK_INT(r.status, 422);
	CHECK_STR(err_field(&r), "params");
	res_free(&r);
	CHECK(send_json(&S, "PATCH", "/api/v1/environments/patchy", "{\"params\":", &r) == 0);
	CHECK_INT(r.status, 400);
	res_free(&r);
	CHECK(req(&S, "PATCH", "/api/v1/environments/patchy", "text/plain", "{}", 2, NULL, &r) == 0);
	CHECK_INT(r.status, 415);
	res_free(&r);
	CHECK(get(&S, "/api/v1/environments/patchy", &r) == 0);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(r.json, "params"), "count")), 9);
	CHECK_STR(jstr(json_object_get(r.json, "params"), "owner"), "test");
	res_free(&r);

	CHECK(send_json(&S, "PATCH", "/api/v1/environments/ghost",
			"{\"params\":{\"count\":2}}", &r) == 0);
	CHECK_INT(r.status, 404);
	res_free(&r);
}

/* A run in progress (written here as the run engine will write it) locks
 * the environment against changes and deletion. */
static void
t_locked(void)
{
	struct res r;

	CHECK(make_env(&S, "busy") == 0);
	CHECK(sql_exec(S.db,
		       "INSERT INTO runs (environment_id, action, status, created_by, created_at) "
		       "SELECT id, 'apply', 'running', 'test', '2026-01-01T00:00:00.000Z' "
		       "FROM environments WHERE name = 'busy';"
		       "UPDATE environments SET active_run_id = last_insert_rowid() "
		       "WHERE name = 'busy';") == 0);
	CHECK(send_json(&S, "PATCH", "/api/v1/environments/busy",
			"{\"params\":{\"count\":2}}", &r) == 0);
	CHECK_INT(r.status, 409);
	CHECK_STR(err_code(&r), "locked");
	res_free(&r);
	CHECK(req(&S, "DELETE", "/api/v1/environments/busy", NULL, NULL, 0, NULL, &r) == 0);
	CHECK_INT(r.status, 409);
	CHECK_STR(err_code(&r), "locked");
	res_free(&r);
	CHECK(req(&S, "DELETE", "/api/v1/environments/busy?force=true", NULL, NULL, 0, NULL, &r) == 0);
	CHECK_INT(r.status, 409);
	res_free(&r);
	CHECK(get(&S, "/api/v1/environments/busy", &r) == 0);
	CHECK_INT(r.status, 200);
	CHECK_STR(jstr(json_object_get(r.json, "last_run"), "status"), "running");
	res_free(&r);
}

static void
t_delete(void)
{
	struct res r;

	CHECK(make_env(&S, "doomed") == 0);
	CHECK(req(&S, "DELETE", "/api/v1/environments/doomed", NULL, NULL, 0, NULL, &r) == 0);
	CHECK_INT(r.status, 204);
	CHECK_INT(r.len, 0);
	res_free(&r);
	CHECK(get(&S, "/api/v1/environments/doomed", &r) == 0);
	CHECK_INT(r.status, 404);
	res_free(&r);
	CHECK(req(&S, "DELETE", "/api/v1/environments/doomed", NULL, NULL, 0, NULL, &r) == 0);
	CHECK_INT(r.status, 404);
	res_free(&r);
	/* The name can be used again. */
	CHECK(make_env(&S, "doomed") == 0);

	/* An environment that still owns cloud resources needs force. */
	CHECK(make_env(&S, "owner") == 0);
	CHECK(sql_exec(S.db,
		       "INSERT INTO resources (environment_id, kind, name, created_at, updated_at) "
		       "SELECT id, 'vm', 'istio-gce', 'x', 'x' FROM environments WHERE name = 'owner'") == 0);
	CHECK(get(&S, "/api/v1/environments/owner", &r) == 0);
	CHECK_INT(json_array_size(json_object_get(json_object_get(r.json, "resources"), "vms")), 1);
	res_free(&r);
	CHECK(req(&S, "DELETE", "/api/v1/environments/owner", NULL, NULL, 0, NULL, &r) == 0);
	CHECK_INT(r.status, 409);
	CHECK_STR(err_code(&r), "owns_resources");
	res_free(&r);
	CHECK(req(&S, "DELETE", "/api/v1/environments/owner?force=maybe", NULL, NULL, 0, NULL, &r) == 0);
	CHECK_INT(r.status, 422);
	CHECK_STR(err_field(&r), "force");
	res_free(&r);
	CHECK(req(&S, "DELETE", "/api/v1/environments/owner?force=true", NULL, NULL, 0, NULL, &r) == 0);
	CHECK_INT(r.status, 204);
	res_free(&r);
	CHECK(get(&S, "/api/v1/environments/owner", &r) == 0);
	CHECK_INT(r.status, 404);
	res_free(&r);
}

static void
t_audit_trail(void)
{
	char out[64];
	FILE *p;
	char cmd[512];

	/* Every write above left an audit row; read them with the sqlite3 CLI
	 * when it is there (it is a test dependency). */
	snprintf(cmd, sizeof(cmd),
		 "sqlite3 '%s' \"SELECT count(*) FROM audit WHERE action = "
		 "'environment.delete.force' AND target = 'owner'\" 2>/dev/null", S.db);
	p = popen(cmd, "r");
	if (p == NULL || fgets(out, sizeof(out), p) == NULL) {
		if (p != NULL)
			pclose(p);
		SKIP("the sqlite3 command is not installed (tools/deps.sh install test)");
	}
	pclose(p);
	CHECK_INT(atoi(out), 1);
}

static void
t_stops_cleanly(void)
{
	CHECK_INT(srv_stop(&S, 0), 0);
}

void
suite_envs(void)
{
	if (srv_start(&S, NULL, NULL) != 0) {
		fprintf(stderr, "suite_envs: server did not start\n");
		check_failed++;
		return;
	}
	RUN(t_create);
	RUN(t_create_conflict);
	RUN(t_create_malformed);
	RUN(t_create_invalid_fields);
	RUN(t_create_invalid_params);
	RUN(t_get_missing);
	RUN(t_list_pagination);
	RUN(t_list_filters_and_errors);
	RUN(t_patch);
	RUN(t_locked);
	RUN(t_delete);
	RUN(t_audit_trail);
	RUN(t_stops_cleanly);
}

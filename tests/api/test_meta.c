/*
 * test_meta.c - health, the OpenAPI document against the real routes,
 * blueprints, routing errors and the API's ETags.
 */
#include "check.h"

#include <stdlib.h>
#include <string.h>

#include "api_client.h"
#include "suites.h"

static struct srv S;

static void
t_health(void)
{
	struct res r;
	char ct[128];

	CHECK(get(&S, "/api/v1/health", &r) == 0);
	CHECK_INT(r.status, 200);
	CHECK_STR(json_string_value(json_object_get(r.json, "status")), "ok");
	CHECK_STR(json_string_value(json_object_get(r.json, "db")), "ok");
	CHECK(json_is_string(json_object_get(r.json, "version")));
	CHECK(res_header(&r, "Content-Type", ct, sizeof(ct)) != NULL);
	CHECK_STR(ct, "application/json");
	res_free(&r);

	CHECK(req(&S, "HEAD", "/api/v1/health", NULL, NULL, 0, NULL, &r) == 0);
	CHECK_INT(r.status, 200);
	CHECK_INT(r.len, 0);
	res_free(&r);
}

/* The path of an OpenAPI template with {name} filled in. */
static void
fill_path(const char *tmpl, const char *name, char *out, size_t size)
{
	const char *b = strchr(tmpl, '{'), *e = b != NULL ? strchr(b, '}') : NULL;

	if (b == NULL || e == NULL)
		snprintf(out, size, "%s", tmpl);
	else
		snprintf(out, size, "%.*s%s%s", (int)(b - tmpl), tmpl, name, e + 1);
}

/* Every operation the document lists is served: it is never answered with
 * the router's 404 ("no such API path") or 405.  (The unit tests compare
 * the document with the route table both ways.) */
static void
t_openapi_matches_server(void)
{
	static const char *methods[] = {"get", "post", "patch", "delete", "put"};
	struct res doc, r;
	const char *path;
	json_t *ops;
	char p[256], upper[8];
	size_t i, j, n = 0;

	CHECK(get(&S, "/api/v1/openapi.json", &doc) == 0);
	CHECK_INT(doc.status, 200);
	CHECK(json_is_object(doc.json));
	CHECK_INT(strncmp(json_string_value(json_object_get(doc.json, "openapi")), "3.", 2), 0);
	json_object_foreach(json_object_get(doc.json, "paths"), path, ops) {
		for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
			if (json_object_get(ops, methods[i]) == NULL)
				continue;
			for (j = 0; methods[i][j] != '\0'; j++)
				upper[j] = (char)(methods[i][j] - 'a' + 'A');
			upper[j] = '\0';
			fill_path(path, strstr(path, "blueprints") ? "demo" : "probe-env", p, sizeof(p));
			CHECK(req(&S, upper, p, "application/json", "{}", 2, NULL, &r) == 0);
			CHECK(r.status != 405);
			CHECK(!(r.status == 404 && strstr(r.body, "no such API path") != NULL));
			if (r.status >= 400) {
				CHECK(strlen(err_code(&r)) > 0);
				CHECK(json_is_string(json_object_get(json_object_get(r.json, "error"),
								     "message")));
			}
			res_free(&r);
			n++;
		}
	}
	CHECK_INT(n, 17);
	res_free(&doc);
}

static void
t_routing_errors(void)
{
	struct res r;
	char allow[128];

	CHECK(get(&S, "/api/v1/nope", &r) == 0);
	CHECK_INT(r.status, 404);
	CHECK_STR(err_code(&r), "not_found");
	res_free(&r);

	/* A name that is not UTF-8 (found by the fuzzer): still a JSON 404. */
	CHECK(get(&S, "/api/v1/blueprints/m%8C%ffx", &r) == 0);
	CHECK_INT(r.status, 404);
	CHECK(r.json != NULL);
	CHECK_STR(err_code(&r), "not_found");
	res_free(&r);

	CHECK(req(&S, "DELETE", "/api/v1/health", NULL, NULL, 0, NULL, &r) == 0);
	CHECK_INT(r.status, 405);
	CHECK_STR(err_code(&r), "method_not_allowed");
	CHECK(res_header(&r, "Allow", allow, sizeof(allow)) != NULL);
	CHECK_STR(allow, "GET");
	res_free(&r);

	CHECK(req(&S, "PUT", "/api/v1/environments", NULL, NULL, 0, NULL, &r) == 0);
	CHECK_INT(r.status, 405);
	CHECK(res_header(&r, "Allow", allow, sizeof(allow)) != NULL);
	CHECK_STR(allow, "GET, POST");
	res_free(&r);

	CHECK(req(&S, "POST", "/api/v1/environments/x", "application/json", "{}", 2,
		  NULL, &r) == 0);
	CHECK_INT(r.status, 405);
	CHECK(res_header(&r, "Allow", allow, sizeof(allow)) != NULL);
	CHECK_STR(allow, "GET, PATCH, DELETE");
	res_free(&r);
}

static json_t *
find_named(json_t *arr, const char *name)
{
	json_t *v;
	size_t i;

	json_array_foreach(arr, i, v)
		if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
			return v;
	return NULL;
}

static void
t_blueprints(void)
{
	struct res r;
	json_t *demo, *legacy, *cur, *steps, *finish;

	CHECK(get(&S, "/api/v1/blueprints", &r) == 0);
	CHECK_INT(r.status, 200);
	demo = find_named(json_object_get(r.json, "blueprints"), "demo");
	CHECK(demo != NULL);
	CHECK(json_is_true(json_object_get(demo, "loadable")));
	CHECK(json_is_null(json_object_get(demo, "load_error")));
	CHECK_STR(json_string_value(json_object_get(json_object_get(json_object_get(
			  demo, "params"), "greeting"), "default")), "hello");
	/* The tutorial blueprints load: every plugin they name is built
	 * (plugins/NAME.so, `make` builds them before the tests). */
	legacy = find_named(json_object_get(r.json, "blueprints"), "mesh-expansion-legacy");
	cur = find_named(json_object_get(r.json, "blueprints"), "mesh-expansion");
	CHECK(legacy != NULL && cur != NULL);
	CHECK(json_is_true(json_object_get(legacy, "loadable")));
	CHECK(json_is_true(json_object_get(cur, "loadable")));
	if (!json_is_true(json_object_get(cur, "loadable")))
		fprintf(stderr, "    mesh-expansion: %s\n",
			json_string_value(json_object_get(cur, "load_error")));
	/* The tutorial's parameters, all seventeen, with the wizard's text. */
	CHECK_INT(json_object_size(json_object_get(cur, "params")), 17);
	CHECK_STR(json_string_value(json_object_get(json_object_get(json_object_get(
			  legacy, "params"), "istio_version"), "default")), "1.6.5");
	CHECK(json_is_true(json_object_get(json_object_get(json_object_get(
			  cur, "params"), "project"), "required")));
	res_free(&r);

	CHECK(get(&S, "/api/v1/blueprints/demo", &r) == 0);
	CHECK_INT(r.status, 200);
	steps = json_object_get(r.json, "steps");
	CHECK_INT(json_array_size(steps), 3);
	finish = find_named(steps, "finish");
	CHECK(finish != NULL);
	/* "after": count explicitly, greet through its output reference. */
	CHECK_INT(json_array_size(json_object_get(finish, "after")), 2);
	CHECK(json_is_object(json_object_get(finish, "with")));
	CHECK(json_is_object(json_object_get(r.json, "outputs")));
	res_free(&r);

	CHECK(get(&S, "/api/v1/blueprints/nope", &r) == 0);
	CHECK_INT(r.status, 404);
	CHECK_STR(err_code(&r), "not_found");
	res_free(&r);
}

/* Cacheable reads carry an ETag that changes when the store does. */
static void
t_etag(void)
{
	const char *hdr[2] = {NULL, NULL};
	struct res r;
	char etag[64], etag2[64], line[96];

	CHECK(get(&S, "/api/v1/environments", &r) == 0);
	CHECK_INT(r.status, 200);
	CHECK(res_header(&r, "ETag", etag, sizeof(etag)) != NULL);
	res_free(&r);
	snprintf(line, sizeof(line), "If-None-Match: %s", etag);
	hdr[0] = line;
	CHECK(req(&S, "GET", "/api/v1/environments", NULL, NULL, 0, hdr, &r) == 0);
	CHECK_INT(r.status, 304);
	res_free(&r);
	CHECK(make_env(&S, "etag-env") == 0);
	CHECK(req(&S, "GET", "/api/v1/environments", NULL, NULL, 0, hdr, &r) == 0);
	CHECK_INT(r.status, 200);
	CHECK(res_header(&r, "ETag", etag2, sizeof(etag2)) != NULL);
	CHECK(strcmp(etag, etag2) != 0);
	CHECK(strstr(r.body, "etag-env") != NULL);
	res_free(&r);
}

static void
t_stops_cleanly(void)
{
	CHECK_INT(srv_stop(&S, 0), 0);
}

void
suite_meta(void)
{
	if (srv_start(&S, NULL, NULL) != 0) {
		check_cur_name = "suite_meta";
		CHECK(!"server started");
		check_failed++;
		return;
	}
	RUN(t_health);
	RUN(t_openapi_matches_server);
	RUN(t_routing_errors);
	RUN(t_blueprints);
	RUN(t_etag);
	RUN(t_stops_cleanly);
}

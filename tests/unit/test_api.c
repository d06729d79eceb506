/*
 * test_api.c - the API called directly (no HTTP): the OpenAPI document
 * against the route table, and handlers on a real store.
 */
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "embed.h"
#include "unit.h"

/* The document and the route table list exactly the same operations. */
static void
t_openapi_equals_routes(void)
{
	const struct embed_file *f = embed_find("server/openapi.json");
	const struct api_route *routes;
	json_t *doc, *paths, *ops, *op;
	const char *path, *method;
	char lower[16];
	size_t n, i, j, documented = 0;

	CHECK(f != NULL);
	if (f == NULL)
		return;
	doc = json_loadb(f->data, f->len, 0, NULL);
	CHECK(doc != NULL);
	paths = json_object_get(doc, "paths");
	routes = api_routes(&n);
	for (i = 0; i < n; i++) {
		for (j = 0; routes[i].method[j] != '\0' && j < sizeof(lower) - 1; j++)
			lower[j] = (char)(routes[i].method[j] - 'A' + 'a');
		lower[j] = '\0';
		op = json_object_get(json_object_get(paths, routes[i].pattern), lower);
		CHECK(json_is_object(op));
		if (!json_is_object(op))
			fprintf(stderr, "    route %s %s is not documented\n",
				routes[i].method, routes[i].pattern);
	}
	json_object_foreach(paths, path, ops) {
		json_object_foreach(ops, method, op) {
			int found = 0;

			documented++;
			for (i = 0; i < n; i++)
				if (strcmp(routes[i].pattern, path) == 0 &&
				    strcasecmp(routes[i].method, method) == 0)
					found = 1;
			CHECK(found);
			if (!found)
				fprintf(stderr, "    documented %s %s is not served\n", method, path);
		}
	}
	CHECK_INT(documented, n);
	json_decref(doc);
}

struct fixture {
	char dir[64];
	struct db *db;
	struct plugin_set plugins;
	struct bp_set bps;
	struct api api;
};

static void
fixture_up(struct fixture *fx)
{
	const char *dirs[] = {"tests/blueprints"};
	char path[128];

	memset(fx, 0, sizeof(*fx));
	tmpdir_make(fx->dir, sizeof(fx->dir));
	snprintf(path, sizeof(path), "%s/o.db", fx->dir);
	CHECK_INT(db_open(path, &fx->db, NULL), OR_OK);
	CHECK_INT(db_migrate(fx->db, NULL), OR_OK);
	plugin_set_scan(&fx->plugins, NULL, NULL);
	CHECK_INT(bp_set_load(&fx->bps, dirs, 1, &fx->plugins, NULL), OR_OK);
	fx->api.db = fx->db;
	fx->api.blueprints = &fx->bps;
	fx->api.version = "test";
}

static void
fixture_down(struct fixture *fx)
{
	db_close(fx->db);
	bp_set_free(&fx->bps);
	plugin_set_free(&fx->plugins);
	tmpdir_remove(fx->dir);
}

static int
call(struct fixture *fx, const char *method, const char *path, const char *body,
     struct api_resp *resp)
{
	struct api_req req;

	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = path;
	req.body = body;
	req.body_len = body != NULL ? strlen(body) : 0;
	req.content_type = "application/json";
	req.remote = "test";
	api_handle(&fx->api, &req, resp);
	return resp->status;
}

static void
t_handlers(void)
{
	struct fixture fx;
	struct api_resp r;

	fixture_up(&fx);
	CHECK_INT(call(&fx, "GET", "/api/v1/health", NULL, &r), 200);
	CHECK(strstr(r.body, "\"db\":\"ok\"") != NULL);
	CHECK(!r.cacheable);
	api_resp_free(&r);
	CHECK_INT(call(&fx, "POST", "/api/v1/environments",
		       "{\"name\":\"u1\",\"provider\":\"sandbox\",\"blueprint\":\"demo\","
		       "\"params\":{\"owner\":\"o\"}}", &r), 201);
	CHECK_STR(r.location, "/api/v1/environments/u1");
	api_resp_free(&r);
	CHECK_INT(call(&fx, "GET", "/api/v1/environments/u1", NULL, &r), 200);
	CHECK(r.cacheable);
	api_resp_free(&r);
	/* Errors are never cacheable. */
	CHECK_INT(call(&fx, "GET", "/api/v1/environments/u2", NULL, &r), 404);
	CHECK(!r.cacheable);
	CHECK(strstr(r.body, "\"code\":\"not_found\"") != NULL);
	api_resp_free(&r);
	CHECK_INT(call(&fx, "HEAD", "/api/v1/environments", NULL, &r), 200);
	api_resp_free(&r);
	CHECK_INT(call(&fx, "GET", "/api/v1/environments/", NULL, &r), 404);
	api_resp_free(&r);
	CHECK_INT(call(&fx, "GET", "/api/v1/environments/u1/extra", NULL, &r), 404);
	api_resp_free(&r);
	CHECK_INT(call(&fx, "DELETE", "/api/v1/environments/u1", NULL, &r), 204);
	CHECK(r.body == NULL);
	api_resp_free(&r);
	fixture_down(&fx);
}

void
suite_api(void)
{
	RUN(t_openapi_equals_routes);
	RUN(t_handlers);
}

/*
 * api.c - REST API v1 handlers: parse, validate, read or write the store,
 * answer.  Nothing here waits on the cloud or blocks for long; the store
 * is the only thing a handler touches.  Every error goes out in the one
 * JSON shape {"error": {"code", "message", "field"}} with the status that
 * or_rc_http_status gives.
 */
#include "api.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "embed.h"
#include "scheduler.h"

#define LIST_LIMIT_DEFAULT 50
#define LIST_LIMIT_MAX 500
#define USER_MAX 64

static const char *const env_statuses[] = {"draft", "applying", "ready",
					   "failed", "destroying", "destroyed"};
static const char *const create_keys[] = {"name", "provider", "blueprint",
					  "params"};

/* ---- answers ----------------------------------------------------------- */

static void
resp_json(struct api_resp *resp, int status, json_t *body)
{
	resp->status = status;
	resp->body = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	if (resp->body == NULL) {
		resp->status = 500;
		resp->body = strdup("{\"error\":{\"code\":\"out_of_memory\","
				    "\"message\":\"out of memory\"}}");
	}
	resp->len = resp->body != NULL ? strlen(resp->body) : 0;
	json_decref(body);
}

void
api_error(struct api_resp *resp, const struct or_err *err)
{
	char msg[OR_ERR_MSG_MAX], field[OR_ERR_FIELD_MAX];
	json_t *e;

	ascii_clean(msg, sizeof(msg), err->message, NULL);
	ascii_clean(field, sizeof(field), err->field, NULL);
	e = json_pack("{s:s, s:s}", "code", err->code[0] ? err->code : or_rc_code(err->rc),
		      "message", msg);
	if (e != NULL && field[0] != '\0')
		json_object_set_new(e, "field", json_string(field));
	resp->cacheable = 0;
	resp_json(resp, or_rc_http_status(err->rc), json_pack("{s:o}", "error", e));
}

void
api_resp_free(struct api_resp *resp)
{
	free(resp->body);
	resp->body = NULL;
	resp->len = 0;
}

static void fail(struct api_resp *resp, or_rc rc, const char *code,
		 const char *field, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void
fail(struct api_resp *resp, or_rc rc, const char *code, const char *field,
     const char *fmt, ...)
{
	struct or_err err;
	char msg[OR_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	or_fail(&err, rc, code, field, "%s", msg);
	api_error(resp, &err);
}

/* ---- request helpers ---------------------------------------------------- */

static const char *
query(const struct api_req *req, const char *key)
{
	return req->query != NULL ? req->query(req->ctx, key) : NULL;
}

/* Parse the JSON body of req into *out (an object).  Errors: 415 when not
 * declared JSON, 400 when not parseable, 422 when not an object. */
static or_rc
body_object(const struct api_req *req, json_t **out, struct or_err *err)
{
	const char *ct = req->content_type;
	json_error_t jerr;
	json_t *v;
	size_t n;

	if (ct == NULL)
		return or_fail(err, OR_E_MEDIATYPE, NULL, NULL,
			       "send the body as JSON with Content-Type: application/json");
	n = strcspn(ct, "; \t");
	if (n != strlen("application/json") ||
	    strncasecmp(ct, "application/json", n) != 0)
		return or_fail(err, OR_E_MEDIATYPE, NULL, NULL,
			       "the body must be application/json, not %.64s", ct);
	if (req->body_len == 0)
		return or_fail(err, OR_E_MALFORMED, NULL, NULL,
			       "the body is empty; send a JSON object");
	v = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (v == NULL)
		return or_fail(err, OR_E_MALFORMED, NULL, NULL,
			       "malformed JSON at line %d, column %d: %s",
			       jerr.line, jerr.column, jerr.text);
	if (!json_is_object(v)) {
		json_decref(v);
		return or_fail(err, OR_E_INVALID, NULL, NULL,
			       "the body must be a JSON object");
	}
	*out = v;
	return OR_OK;
}

/* The acting user: X-Outrigger-User when given (validated), else anonymous. */
static or_rc
actor(const struct api_req *req, struct db_actor *who, struct or_err *err)
{
	const char *u = req->user;
	size_t i;

	who->remote = req->remote != NULL ? req->remote : "";
	who->user = "anonymous";
	if (u == NULL)
		return OR_OK;
	for (i = 0; u[i] != '\0'; i++)
		if (i >= USER_MAX ||
		    strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			   "0123456789._@+-", u[i]) == NULL)
			break;
	if (i == 0 || u[i] != '\0')
		return or_fail(err, OR_E_INVALID, NULL, "X-Outrigger-User",
			       "X-Outrigger-User must be 1 to %d letters, digits "
			       "or . _ @ + -", USER_MAX);
	who->user = u;
	return OR_OK;
}

/* ^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$ */
static int
dns_label(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 63 || s[0] < 'a' || s[0] > 'z' || s[n - 1] == '-')
		return 0;
	for (i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

/* A positive decimal integer no larger than max; -1 otherwise. */
static long long
parse_count(const char *s, long long max)
{
	long long v = 0;
	size_t i;

	if (s == NULL || s[0] == '\0')
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
		if (v > max)
			return -1;
	}
	return v > 0 ? v : -1;
}

/* ---- health, openapi, blueprints ------------------------------------- */

static void
h_health(struct api *api, const struct api_req *req, const char *arg,
	 struct api_resp *resp)
{
	struct or_err err;
	int ok, n;
	char buf[256];

	(void)req;
	(void)arg;
	ok = db_ping(api->db, &err) == OR_OK;
	/* Built with snprintf: this answer is on every load balancer's path. */
	n = snprintf(buf, sizeof(buf),
		     "{\"status\":\"%s\",\"version\":\"%s\",\"db\":\"%s\"}",
		     ok ? "ok" : "degraded", api->version, ok ? "ok" : "error");
	resp->status = ok ? 200 : 503;
	resp->body = strndup(buf, (size_t)n);
	resp->len = resp->body != NULL ? (size_t)n : 0;
}

static void
h_openapi(struct api *api, const struct api_req *req, const char *arg,
	  struct api_resp *resp)
{
	const struct embed_file *f = embed_find("server/openapi.json");

	(void)api;
	(void)req;
	(void)arg;
	if (f == NULL) {
		fail(resp, OR_E_NOTFOUND, NULL, NULL, "%s", "no OpenAPI document was built in");
		return;
	}
	resp->status = 200;
	resp->body = strndup(f->data, f->len);
	resp->len = resp->body != NULL ? f->len : 0;
}

static void
h_blueprints(struct api *api, const struct api_req *req, const char *arg,
	     struct api_resp *resp)
{
	json_t *list = json_array();
	size_t i;

	(void)req;
	(void)arg;
	for (i = 0; i < api->blueprints->n; i++)
		json_array_append_new(list, bp_to_json(&api->blueprints->v[i], 0));
	resp_json(resp, 200, json_pack("{s:o}", "blueprints", list));
}

static void
h_blueprint(struct api *api, const struct api_req *req, const char *name,
	    struct api_resp *resp)
{
	const struct bp *bp = bp_set_find(api->blueprints, name);

	(void)req;
	if (bp == NULL) {
		fail(resp, OR_E_NOTFOUND, NULL, "name", "no blueprint named '%.64s'", name);
		return;
	}
	resp_json(resp, 200, bp_to_json(bp, 1));
}

static void
h_plugins(struct api *api, const struct api_req *req, const char *arg,
	  struct api_resp *resp)
{
	(void)req;
	(void)arg;
	resp_json(resp, 200, json_pack("{s:O}", "plugins",
				       api->plugins != NULL && api->plugins->described != NULL
					       ? api->plugins->described
					       : json_array()));
}

/* What each provider is, never how it authenticates: key and token file
 * paths stay out of the answer. */
static void
h_providers(struct api *api, const struct api_req *req, const char *arg,
	    struct api_resp *resp)
{
	static const char *names[] = {"sandbox", "gcp"};
	json_t *list = json_array(), *p;
	const char *detail;
	size_t i;
	int configured;

	(void)req;
	(void)arg;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		p = json_object_get(api->providers, names[i]);
		if (strcmp(names[i], "sandbox") == 0) {
			configured = p != NULL;
			detail = configured ? "the simulated Google Cloud beside this server"
					    : "no sandbox: start the server with --sandbox";
		} else {
			configured = json_object_get(p, "service_account_key_file") != NULL;
			detail = configured ? "Google Cloud with the service-account key given at start"
					    : "no Google credentials configured (serve --gcp-credentials "
					      "KEYFILE); on Compute Engine the metadata server is used";
		}
		json_array_append_new(list, json_pack("{s:s, s:b, s:s, s:O*, s:O*}", "name", names[i],
						       "configured", configured, "detail", detail,
						       "project", json_object_get(p, "project"),
						       "account", json_object_get(p, "account")));
	}
	resp_json(resp, 200, json_pack("{s:o}", "providers", list));
}

/* ---- environments -------------------------------------------------------- */

/* The loadable blueprint called name, or an error naming field. */
static or_rc
usable_blueprint(struct api *api, const char *name, const struct bp **out,
		 struct or_err *err)
{
	const struct bp *bp = bp_set_find(api->blueprints, name);

	if (bp == NULL)
		return or_fail(err, OR_E_INVALID, "unknown_blueprint", "blueprint",
			       "no blueprint named '%.64s'", name);
	if (bp->load_error != NULL)
		return or_fail(err, OR_E_INVALID, "blueprint_not_loadable", "blueprint",
			       "blueprint '%s' did not load: %s", bp->name,
			       bp->load_error);
	*out = bp;
	return OR_OK;
}

static void
h_env_create(struct api *api, const struct api_req *req, const char *arg,
	     struct api_resp *resp)
{
	struct db_env_new e;
	struct db_actor who;
	struct or_err err;
	const struct bp *bp;
	const char *key;
	json_t *body = NULL, *v, *params = NULL, *env = NULL;
	size_t i;
	or_rc rc;

	(void)arg;
	rc = actor(req, &who, &err);
	if (rc == OR_OK)
		rc = body_object(req, &body, &err);
	if (rc != OR_OK)
		goto out;
	json_object_foreach(body, key, v) {
		for (i = 0; i < sizeof(create_keys) / sizeof(create_keys[0]); i++)
			if (strcmp(key, create_keys[i]) == 0)
				break;
		if (i == sizeof(create_keys) / sizeof(create_keys[0])) {
			rc = or_fail(&err, OR_E_INVALID, "unknown_field", key,
				     "unknown field '%.64s'; an environment has "
				     "name, provider, blueprint and params", key);
			goto out;
		}
	}
	e.name = json_string_value(json_object_get(body, "name"));
	e.provider = json_string_value(json_object_get(body, "provider"));
	e.blueprint = json_string_value(json_object_get(body, "blueprint"));
	if (e.name == NULL || !dns_label(e.name)) {
		rc = or_fail(&err, OR_E_INVALID, NULL, "name",
			     "name must be a DNS label: 1 to 63 lowercase letters, "
			     "digits or hyphens, starting with a letter and not "
			     "ending with a hyphen");
		goto out;
	}
	if (e.provider == NULL ||
	    (strcmp(e.provider, "sandbox") != 0 && strcmp(e.provider, "gcp") != 0)) {
		rc = or_fail(&err, OR_E_INVALID, NULL, "provider",
			     "provider must be \"sandbox\" or \"gcp\"");
		goto out;
	}
	if (e.blueprint == NULL) {
		rc = or_fail(&err, OR_E_INVALID, NULL, "blueprint",
			     "blueprint must name one of GET /api/v1/blueprints");
		goto out;
	}
	rc = usable_blueprint(api, e.blueprint, &bp, &err);
	if (rc != OR_OK)
		goto out;
	rc = bp_params_check(bp, json_object_get(body, "params"), &params, &err);
	if (rc != OR_OK)
		goto out;
	e.params = params;
	rc = db_env_create(api->db, &e, &who, &env, &err);
	if (rc != OR_OK)
		goto out;
	snprintf(resp->location, sizeof(resp->location),
		 "/api/v1/environments/%s", e.name);
	resp_json(resp, 201, env);
out:
	if (rc != OR_OK)
		api_error(resp, &err);
	json_decref(body);
	json_decref(params);
}

static void
h_env_list(struct api *api, const struct api_req *req, const char *arg,
	   struct api_resp *resp)
{
	const char *status = query(req, "status"), *s;
	struct or_err err;
	json_t *items, *page;
	long long limit = LIST_LIMIT_DEFAULT, cursor = 0, next;
	size_t i;
	char buf[32];
	or_rc rc;

	(void)arg;
	if (status != NULL) {
		for (i = 0; i < sizeof(env_statuses) / sizeof(env_statuses[0]); i++)
			if (strcmp(status, env_statuses[i]) == 0)
				break;
		if (i == sizeof(env_statuses) / sizeof(env_statuses[0])) {
			fail(resp, OR_E_INVALID, NULL, "status", "%s",
			     "status must be one of draft, applying, ready, failed, "
			     "destroying, destroyed");
			return;
		}
	}
	s = query(req, "limit");
	if (s != NULL && (limit = parse_count(s, LIST_LIMIT_MAX)) < 0) {
		fail(resp, OR_E_INVALID, NULL, "limit", "%s",
		     "limit must be a whole number from 1 to 500");
		return;
	}
	s = query(req, "cursor");
	if (s != NULL && (cursor = parse_count(s, (1LL << 62))) < 0) {
		fail(resp, OR_E_INVALID, NULL, "cursor", "%s",
		     "cursor must be a next_cursor value from an earlier page");
		return;
	}
	rc = db_env_list(api->db, status, cursor, (int)limit, &items, &next, &err);
	if (rc != OR_OK) {
		api_error(resp, &err);
		return;
	}
	page = json_pack("{s:o}", "environments", items);
	if (next > 0) {
		snprintf(buf, sizeof(buf), "%lld", next);
		json_object_set_new(page, "next_cursor", json_string(buf));
	} else {
		json_object_set_new(page, "next_cursor", json_null());
	}
	resp_json(resp, 200, page);
}

static void
h_env_get(struct api *api, const struct api_req *req, const char *name,
	  struct api_resp *resp)
{
	struct or_err err;
	json_t *env;

	(void)req;
	if (db_env_get(api->db, name, &env, &err) != OR_OK) {
		api_error(resp, &err);
		return;
	}
	resp_json(resp, 200, env);
}

struct patch_ctx {
	struct api *api;
	json_t *patch;	/* the "params" object of the request */
};

/* JSON merge patch of the stored params, then the blueprint's checks. */
static or_rc
patch_params(void *ctx, const char *blueprint, json_t *params_in,
	     json_t **params_out, struct or_err *err)
{
	struct patch_ctx *pc = ctx;
	const struct bp *bp;
	const char *key;
	json_t *merged, *v;
	or_rc rc;

	rc = usable_blueprint(pc->api, blueprint, &bp, err);
	if (rc != OR_OK)
		return rc;
	merged = json_copy(params_in);
	if (merged == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	json_object_foreach(pc->patch, key, v) {
		if (json_is_null(v))
			json_object_del(merged, key); /* back to the default */
		else
			json_object_set(merged, key, v);
	}
	rc = bp_params_check(bp, merged, params_out, err);
	json_decref(merged);
	return rc;
}

static void
h_env_patch(struct api *api, const struct api_req *req, const char *name,
	    struct api_resp *resp)
{
	struct patch_ctx pc = {api, NULL};
	struct db_actor who;
	struct or_err err;
	const char *key;
	json_t *body = NULL, *v, *env;
	or_rc rc;

	rc = actor(req, &who, &err);
	if (rc == OR_OK)
		rc = body_object(req, &body, &err);
	if (rc != OR_OK)
		goto out;
	json_object_foreach(body, key, v) {
		if (strcmp(key, "params") != 0) {
			rc = or_fail(&err, OR_E_INVALID, "immutable_field", key,
				     "only params can be changed; '%.64s' cannot "
				     "(create another environment instead)", key);
			goto out;
		}
	}
	pc.patch = json_object_get(body, "params");
	if (!json_is_object(pc.patch)) {
		rc = or_fail(&err, OR_E_INVALID, NULL, "params",
			     "send {\"params\": {...}} with the parameters to "
			     "change (null puts one back to its default)");
		goto out;
	}
	rc = db_env_update_params(api->db, name, patch_params, &pc, &who, &env, &err);
	if (rc == OR_OK)
		resp_json(resp, 200, env);
out:
	if (rc != OR_OK)
		api_error(resp, &err);
	json_decref(body);
}

static void
h_env_delete(struct api *api, const struct api_req *req, const char *name,
	     struct api_resp *resp)
{
	const char *force = query(req, "force");
	struct db_actor who;
	struct or_err err;
	or_rc rc;

	rc = actor(req, &who, &err);
	if (rc == OR_OK && force != NULL && strcmp(force, "true") != 0 &&
	    strcmp(force, "false") != 0)
		rc = or_fail(&err, OR_E_INVALID, NULL, "force",
			     "force must be true or false");
	if (rc == OR_OK)
		rc = db_env_delete(api->db, name,
				   force != NULL && strcmp(force, "true") == 0,
				   &who, &err);
	if (rc != OR_OK) {
		api_error(resp, &err);
		return;
	}
	resp->status = 204;
}


/* ---- runs ---------------------------------------------------------------- */

/* A run id from the path: a positive whole number. */
static long long
run_id(const char *arg, struct api_resp *resp)
{
	long long id = parse_count(arg, (1LL << 62));

	if (id < 0)
		fail(resp, OR_E_NOTFOUND, NULL, "id", "no run '%.32s'", arg);
	return id;
}

static void
h_run_create(struct api *api, const struct api_req *req, const char *name,
	     struct api_resp *resp)
{
	struct db_run_new n;
	struct db_actor who;
	struct or_err err;
	const struct bp *bp;
	const char *key, *action;
	json_t *body = NULL, *v, *env = NULL, *run = NULL, *graph = NULL, *omap;
	or_rc rc;

	rc = actor(req, &who, &err);
	if (rc == OR_OK)
		rc = body_object(req, &body, &err);
	if (rc != OR_OK)
		goto out;
	json_object_foreach(body, key, v) {
		if (strcmp(key, "action") != 0) {
			rc = or_fail(&err, OR_E_INVALID, "unknown_field", key,
				     "unknown field '%.64s'; a run takes only \"action\"", key);
			goto out;
		}
	}
	action = json_string_value(json_object_get(body, "action"));
	if (action == NULL || (strcmp(action, "apply") != 0 && strcmp(action, "destroy") != 0 &&
			       strcmp(action, "plan") != 0)) {
		rc = or_fail(&err, OR_E_INVALID, NULL, "action",
			     "action must be \"apply\", \"destroy\" or \"plan\"");
		goto out;
	}
	rc = db_env_get(api->db, name, &env, &err);
	if (rc != OR_OK)
		goto out;
	rc = usable_blueprint(api, json_string_value(json_object_get(env, "blueprint")), &bp, &err);
	if (rc != OR_OK)
		goto out;
	graph = bp_graph(bp);
	omap = json_object_get(bp->doc, "outputs");
	n.environment = name;
	n.action = action;
	n.graph = graph;
	n.outputs_map = json_is_object(omap) ? omap : json_object();
	n.blueprint = bp->name;
	rc = db_run_create(api->db, &n, &who, &run, &err);
	if (!json_is_object(omap))
		json_decref(n.outputs_map);
	if (rc != OR_OK)
		goto out;
	sched_wake(api->sched);
	snprintf(resp->location, sizeof(resp->location), "/api/v1/runs/%" JSON_INTEGER_FORMAT,
		 json_integer_value(json_object_get(run, "id")));
	resp_json(resp, 202, run);
out:
	if (rc != OR_OK)
		api_error(resp, &err);
	json_decref(body);
	json_decref(env);
	json_decref(graph);
}

static void
h_run_get(struct api *api, const struct api_req *req, const char *arg,
	  struct api_resp *resp)
{
	struct or_err err;
	long long id = run_id(arg, resp);
	json_t *run;

	(void)req;
	if (id < 0)
		return;
	if (db_run_get(api->db, id, &run, &err) != OR_OK) {
		api_error(resp, &err);
		return;
	}
	resp_json(resp, 200, run);
}

/* cancel and retry: the same shape, a different store call. */
static void
run_request(struct api *api, const struct api_req *req, const char *arg,
	    struct api_resp *resp,
	    or_rc (*fn)(struct db *, long long, const struct db_actor *, json_t **,
			struct or_err *))
{
	struct db_actor who;
	struct or_err err;
	long long id = run_id(arg, resp);
	json_t *run;

	if (id < 0)
		return;
	if (actor(req, &who, &err) != OR_OK || fn(api->db, id, &who, &run, &err) != OR_OK) {
		api_error(resp, &err);
		return;
	}
	sched_wake(api->sched);
	resp_json(resp, 202, run);
}

static void
h_run_cancel(struct api *api, const struct api_req *req, const char *arg,
	     struct api_resp *resp)
{
	run_request(api, req, arg, resp, db_run_cancel);
}

static void
h_run_retry(struct api *api, const struct api_req *req, const char *arg,
	    struct api_resp *resp)
{
	run_request(api, req, arg, resp, db_run_retry);
}

static void
h_run_logs(struct api *api, const struct api_req *req, const char *arg,
	   struct api_resp *resp)
{
	const char *step = query(req, "step"), *s;
	struct or_err err;
	long long id = run_id(arg, resp), after = 0, limit = 500, next;
	json_t *run, *lines;
	char buf[32];

	if (id < 0)
		return;
	s = query(req, "after");
	if (s != NULL && strcmp(s, "0") != 0 && (after = parse_count(s, (1LL << 62))) < 0) {
		fail(resp, OR_E_INVALID, NULL, "after", "%s",
		     "after must be a sequence number (0 for the start)");
		return;
	}
	if (s != NULL && strcmp(s, "0") == 0)
		after = 0;
	s = query(req, "limit");
	if (s != NULL && (limit = parse_count(s, 5000)) < 0) {
		fail(resp, OR_E_INVALID, NULL, "limit", "%s",
		     "limit must be a whole number from 1 to 5000");
		return;
	}
	if (db_run_get(api->db, id, &run, &err) != OR_OK) {
		api_error(resp, &err);
		return;
	}
	json_decref(run);
	if (db_run_logs(api->db, id, step, after, (int)limit, &lines, &next, &err) != OR_OK) {
		api_error(resp, &err);
		return;
	}
	run = json_pack("{s:o}", "lines", lines);
	if (next > 0) {
		snprintf(buf, sizeof(buf), "%lld", next);
		json_object_set_new(run, "next_after", json_string(buf));
	} else {
		json_object_set_new(run, "next_after", json_null());
	}
	resp_json(resp, 200, run);
}

static void
h_run_events(struct api *api, const struct api_req *req, const char *arg,
	     struct api_resp *resp)
{
	struct or_err err;
	long long id = run_id(arg, resp), after = 0;
	json_t *run;

	if (id < 0)
		return;
	if (db_run_get(api->db, id, &run, &err) != OR_OK) {
		api_error(resp, &err);
		return;
	}
	json_decref(run);
	if (req->last_event_id != NULL && req->last_event_id[0] != '\0' &&
	    strcmp(req->last_event_id, "0") != 0 &&
	    (after = parse_count(req->last_event_id, (1LL << 62))) < 0) {
		fail(resp, OR_E_INVALID, NULL, "Last-Event-ID", "%s",
		     "Last-Event-ID must be the id of an event of this run");
		return;
	}
	resp->status = 200;
	resp->sse_run = id;
	resp->sse_after = after;
}

/* ---- routing -------------------------------------------------------- */

static const struct api_route routes[] = {
	{"GET", "/api/v1/health", h_health, 0},
	{"GET", "/api/v1/openapi.json", h_openapi, 1},
	{"GET", "/api/v1/plugins", h_plugins, 1},
	{"GET", "/api/v1/providers", h_providers, 1},
	{"GET", "/api/v1/blueprints", h_blueprints, 1},
	{"GET", "/api/v1/blueprints/{name}", h_blueprint, 1},
	{"GET", "/api/v1/environments", h_env_list, 1},
	{"POST", "/api/v1/environments", h_env_create, 0},
	{"GET", "/api/v1/environments/{name}", h_env_get, 1},
	{"PATCH", "/api/v1/environments/{name}", h_env_patch, 0},
	{"DELETE", "/api/v1/environments/{name}", h_env_delete, 0},
	{"POST", "/api/v1/environments/{name}/runs", h_run_create, 0},
	{"GET", "/api/v1/runs/{id}", h_run_get, 0},
	{"POST", "/api/v1/runs/{id}/cancel", h_run_cancel, 0},
	{"POST", "/api/v1/runs/{id}/retry", h_run_retry, 0},
	{"GET", "/api/v1/runs/{id}/logs", h_run_logs, 0},
	{"GET", "/api/v1/runs/{id}/events", h_run_events, 0},
};

const struct api_route *
api_routes(size_t *n)
{
	*n = sizeof(routes) / sizeof(routes[0]);
	return routes;
}

/* Does path match pattern?  A "{x}" segment matches one non-empty segment,
 * copied to arg. */
static int
route_match(const char *pattern, const char *path, char *arg, size_t size)
{
	const char *p = pattern, *q = path;
	size_t n;

	while (*p != '\0') {
		if (*p == '{') {
			n = strcspn(q, "/");
			if (n == 0 || n >= size)
				return 0;
			memcpy(arg, q, n);
			arg[n] = '\0';
			q += n;
			p = strchr(p, '}');
			if (p == NULL)
				return 0;
			p++;
			continue;
		}
		if (*p != *q)
			return 0;
		p++;
		q++;
	}
	return *q == '\0';
}

void
api_handle(struct api *api, const struct api_req *req, struct api_resp *resp)
{
	const char *method = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
	char arg[256], allow[64] = "";
	size_t i, n = sizeof(routes) / sizeof(routes[0]);
	int matched = 0;

	memset(resp, 0, sizeof(*resp));
	for (i = 0; i < n; i++) {
		if (!route_match(routes[i].pattern, req->path, arg, sizeof(arg)))
			continue;
		matched = 1;
		if (strcmp(routes[i].method, method) == 0) {
			resp->cacheable = routes[i].cacheable;
			routes[i].handler(api, req, arg, resp);
			if (resp->status != 200)
				resp->cacheable = 0;
			return;
		}
		if (strlen(allow) + strlen(routes[i].method) + 3 < sizeof(allow)) {
			if (allow[0] != '\0')
				strncat(allow, ", ", sizeof(allow) - strlen(allow) - 1);
			strncat(allow, routes[i].method, sizeof(allow) - strlen(allow) - 1);
		}
	}
	if (matched) {
		fail(resp, OR_E_METHOD, NULL, NULL,
		     "this path does not answer %.16s", req->method);
		snprintf(resp->allow, sizeof(resp->allow), "%s", allow);
		return;
	}
	fail(resp, OR_E_NOTFOUND, NULL, NULL, "no such API path: %.200s", req->path);
}

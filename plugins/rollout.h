/*
 * rollout.h - the few helpers every rollout plugin shares: required
 * inputs, JSON inputs, ownership labels, Google answers, bounded file
 * reads, Kubernetes GET/DELETE/apply.  Static inline, so each plugin stays
 * one file and one .so.
 *
 * Ownership rule of the rollout: every cloud resource carries the label
 * (or, where Google has no labels, the description) outrigger-env=<env>;
 * only such a resource is adopted, and destroy touches nothing else.
 */
#ifndef ROLLOUT_H
#define ROLLOUT_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outrigger/plugin.h"

#define OWNER_LABEL "outrigger-env"

/* A required input, or NULL after fail("input", ...). */
static inline const char *
need(or_host *h, const struct or_host_api *api, const char *key)
{
	const char *v = api->input(h, key);

	if (v == NULL || v[0] == '\0')
		api->fail(h, "input", "the step needs the input \"%s\"", key);
	return v != NULL && v[0] != '\0' ? v : NULL;
}

/* An input parsed as JSON (arrays, objects, numbers); NULL when absent
 * or not JSON.  The caller json_decref's it. */
static inline json_t *
in_json(or_host *h, const struct or_host_api *api, const char *key)
{
	const char *v = api->input(h, key);

	return v != NULL ? json_loads(v, JSON_DECODE_ANY, NULL) : NULL;
}

/* An integer input with a default. */
static inline long
in_long(or_host *h, const struct or_host_api *api, const char *key, long dflt)
{
	const char *v = api->input(h, key);
	char *end;
	long n;

	if (v == NULL || v[0] == '\0')
		return dflt;
	n = strtol(v, &end, 10);
	return *end == '\0' ? n : dflt;
}

/* A boolean input ("true"/"false") with a default. */
static inline int
in_bool(or_host *h, const struct or_host_api *api, const char *key, int dflt)
{
	const char *v = api->input(h, key);

	if (v == NULL || v[0] == '\0')
		return dflt;
	return strcmp(v, "true") == 0 || strcmp(v, "1") == 0;
}

/* The environment this attempt works for. */
static inline const char *
env_name(or_host *h, const struct or_host_api *api)
{
	return api->info(h, "environment");
}

/* 1 when labels (a JSON object, may be NULL) say this environment owns
 * the resource. */
static inline int
owned_by_labels(const json_t *labels, const char *env)
{
	const char *v = json_string_value(json_object_get(labels, OWNER_LABEL));

	return v != NULL && env != NULL && strcmp(v, env) == 0;
}

/* The same for a description: "... outrigger-env=<env>" anywhere, as a
 * whole word. */
static inline int
owned_by_description(const char *desc, const char *env)
{
	char want[128];
	const char *p;
	size_t n;

	if (desc == NULL || env == NULL)
		return 0;
	n = (size_t)snprintf(want, sizeof(want), OWNER_LABEL "=%s", env);
	for (p = strstr(desc, want); p != NULL; p = strstr(p + 1, want))
		if ((p == desc || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
			return 1;
	return 0;
}

/* The body of a 2xx answer as JSON (NULL otherwise). */
static inline json_t *
body_json(const struct or_http_response *r)
{
	if (r->status < 200 || r->status > 299 || r->body == NULL)
		return NULL;
	return json_loads(r->body, 0, NULL);
}

/* Fail the step with Google's own message for a non-2xx answer: 429
 * and 5xx (left after the host's retries) are retryable, the rest not.
 * code: "quota" for 403 quota answers, else "cloud". */
static inline or_status
google_failed(or_host *h, const struct or_host_api *api, const struct or_http_response *r,
	      const char *what)
{
	const char *reason = NULL;
	const char *msg = api->gcp_error(h, r, &reason);
	int quota = reason != NULL && (strstr(reason, "uota") != NULL ||
				       strcmp(reason, "rateLimitExceeded") == 0);

	api->fail(h, quota ? "quota" : "cloud", "%s: %s", what, msg != NULL ? msg : "failed");
	return r->status == 429 || r->status >= 500 ? OR_STATUS_RETRY : OR_STATUS_FAILED;
}

/* GET a Google resource: 1 and *out (json_decref it) when it exists, 0
 * when Google says 404, -1 after fail() otherwise. */
static inline int
google_get(or_host *h, const struct or_host_api *api, const char *url, const char *what,
	   json_t **out)
{
	struct or_http_response r;
	int rc;

	*out = NULL;
	if (api->gcp(h, "GET", url, NULL, &r) != 0)
		return -1;
	if (r.status == 404) {
		rc = 0;
	} else if ((*out = body_json(&r)) != NULL) {
		rc = 1;
	} else {
		google_failed(h, api, &r, what);
		rc = -1;
	}
	api->http_free(&r);
	return rc;
}

/* ---- files ------------------------------------------------------------ */

/* The whole file at path, NUL-terminated, when it is at most max bytes;
 * NULL when it is absent, larger, or unreadable (nothing is reported: the
 * caller says what the file was for).  The caller frees it. */
static inline char *
slurp(const char *path, size_t max)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && (size_t)n <= max &&
	    fseek(f, 0, SEEK_SET) == 0) {
		data = malloc((size_t)n + 1);
		if (data != NULL && fread(data, 1, (size_t)n, f) != (size_t)n) {
			free(data);
			data = NULL;
		}
		if (data != NULL)
			data[n] = '\0';
	}
	fclose(f);
	return data;
}

/* ---- Kubernetes ------------------------------------------------------- */

/* 1 when an object's metadata.labels (o may be NULL) say this environment
 * owns it. */
static inline int
owned_object(const json_t *o, const char *env)
{
	return owned_by_labels(json_object_get(json_object_get(o, "metadata"), "labels"), env);
}

/* The client for the cluster the step's inputs "endpoint" and
 * "ca_certificate" name; NULL with fail() set by the host when they are
 * unusable.  The caller kube_close's it. */
static inline or_kube *
kube_from_inputs(or_host *h, const struct or_host_api *api)
{
	return api->kube_open(h, api->input(h, "endpoint"), api->input(h, "ca_certificate"));
}

/* One request without a body (GET, DELETE) on path: the answer's HTTP
 * status, any status, or 0 when none came (the host has called fail()).
 * With out, a 2xx answer's JSON body goes into *out, else NULL; the caller
 * json_decref's it. */
static inline long
kube_call(const struct or_host_api *api, or_kube *k, const char *method, const char *path,
	  json_t **out)
{
	struct or_http_response r = {0};
	long st;

	if (out != NULL)
		*out = NULL;
	if (api->kube_request(k, method, path, NULL, NULL, &r) != 0)
		return 0;
	st = r.status;
	if (out != NULL)
		*out = body_json(&r);
	api->http_free(&r);
	return st;
}

/* GET path: kube_call(..., "GET", ...). */
static inline long
kube_get(const struct or_host_api *api, or_kube *k, const char *path, json_t **out)
{
	return kube_call(api, k, "GET", path, out);
}

/* DELETE path, where 404 (already gone) is as good as deleted: 0, logging
 * "deleted <what>" when it was there; -1 when no answer came (fail() set
 * by the host) or after fail(h, "kubernetes", "deleting <what>: HTTP n")
 * for any other status. */
static inline int
kube_del(or_host *h, const struct or_host_api *api, or_kube *k, const char *path,
	 const char *what)
{
	long st = kube_call(api, k, "DELETE", path, NULL);

	if (st == 0)
		return -1;
	if (st == 404)
		return 0;
	if (st < 200 || st > 299) {
		api->fail(h, "kubernetes", "deleting %s: HTTP %ld", what, st);
		return -1;
	}
	api->log(h, OR_LOG_INFO, "deleted %s", what);
	return 0;
}

/* Server-side apply of one object (obj is decref'd here, whatever
 * happens), namespaced objects without one going into ns: 0, or -1 with
 * fail() set.  The text is wiped before it is freed, since it may hold a
 * key. */
static inline int
kube_apply_json(or_host *h, const struct or_host_api *api, or_kube *k, json_t *obj,
		const char *ns)
{
	char *text = json_dumps(obj, JSON_COMPACT);
	int n;

	json_decref(obj);
	if (text == NULL) {
		api->fail(h, "nomem", "out of memory");
		return -1;
	}
	n = api->kube_apply(k, text, ns);
	memset(text, 0, strlen(text));
	free(text);
	return n < 0 ? -1 : 0;
}

/* The requestId of this step's pending insert: made (a random UUID) and
 * recorded in the step's state before the first try, so every retry of
 * the same insert -- after a lost answer or a crash -- is one insert to
 * Google.  NULL after fail() when it cannot be recorded.  forget_request_id
 * once the insert is done. */
static inline const char *
request_id(or_host *h, const struct or_host_api *api)
{
	const char *rid = api->state_get(h, "request_id");
	unsigned char b[16];
	char id[37];
	FILE *rnd;
	int i, o = 0;

	if (rid != NULL && rid[0] != '\0')
		return rid;
	rnd = fopen("/dev/urandom", "rb");
	if (rnd == NULL || fread(b, 1, sizeof(b), rnd) != sizeof(b)) {
		if (rnd != NULL)
			fclose(rnd);
		api->fail(h, "io", "cannot read /dev/urandom for a requestId");
		return NULL;
	}
	fclose(rnd);
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			id[o++] = '-';
		snprintf(id + o, 3, "%02x", b[i]);
		o += 2;
	}
	id[o] = '\0';
	if (api->state_set(h, "request_id", id) != 0) {
		api->fail(h, "engine", "cannot record the requestId");
		return NULL;
	}
	return api->state_get(h, "request_id");
}

static inline void
forget_request_id(or_host *h, const struct or_host_api *api)
{
	api->state_set(h, "request_id", "");
}

/* ---- plan ------------------------------------------------------------- */

/* What a plan is given for an earlier step's output that is not known
 * yet, alone or inside a longer text ("k8s-to-(known after apply)"). */
#define NOT_YET "(known after apply)"

/* 1 when a plan can use the value v: present, and none of it still to
 * come from an earlier step. */
static inline int
known(const char *v)
{
	return v != NULL && v[0] != '\0' && strstr(v, NOT_YET) == NULL;
}

/* 1 in a plan for a value an earlier step has not made yet (or absent):
 * input checks let it through, since apply gets and checks the real one. */
static inline int
later(or_host *h, const struct or_host_api *api, const char *v)
{
	const char *a = api->info(h, "action");

	return a != NULL && strcmp(a, "plan") == 0 && !known(v);
}

/* A plan's read-only look at the cluster: the client when the inputs
 * "endpoint" and "ca_certificate" are known, else NULL (the cluster is
 * not made yet, or unusable: the plan then says what apply would do
 * without looking).  The caller kube_close's it. */
static inline or_kube *
plan_kube(or_host *h, const struct or_host_api *api)
{
	const char *ep = api->input(h, "endpoint"), *ca = api->input(h, "ca_certificate");

	return known(ep) && known(ca) ? api->kube_open(h, ep, ca) : NULL;
}

#endif

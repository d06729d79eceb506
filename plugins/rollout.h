/*
 * rollout.h - the few helpers every rollout plugin shares: required
 * inputs, JSON inputs, ownership labels, Google answers.  Static inline,
 * so each plugin stays one file and one .so.
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

#endif

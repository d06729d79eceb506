/*
 * wait.c - the built-in "wait" plugin: pause a run for some seconds, or
 * until a URL answers with a 2xx status (a service coming up, a load
 * balancer getting its address).  Exactly one of the inputs `seconds` and
 * `url` says which.
 *
 * It makes nothing, so destroy has nothing to undo.  It must never sleep
 * for more than 100 ms without noticing a cancellation, and never poll
 * faster than interval_s: the URL may be someone's production service.
 *
 * Compiled into the server; the runner finds it as or_builtin_wait.
 */
#include "builtin.h"

#include <jansson.h>
#include <math.h> /* isfinite(), a macro: no libm needed */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define WAIT_TICK_MS 100		/* cancellation is noticed this fast */
#define WAIT_MAX_S (7.0 * 24 * 3600)	/* a week: anything longer is a typo */
#define WAIT_TRY_MAX_MS 10000		/* one HTTP try never takes longer */
#define WAIT_MIN_INTERVAL_S 0.1

struct wait_spec {
	int has_seconds;
	double seconds;
	char *url;		/* owned; NULL when waiting for seconds */
	double interval_s;	/* between two tries of url */
	double timeout_s;	/* give up on url after this long */
};

static int64_t
wait_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A JSON number (or a numeric string: a parameter may arrive as text) into
 * *out.  0, or -1 when v is neither. */
static int
wait_number(const json_t *v, double *out)
{
	const char *s;
	char *end;

	if (json_is_number(v)) {
		*out = json_number_value(v);
		return isfinite(*out) ? 0 : -1;
	}
	if (!json_is_string(v))
		return -1;
	s = json_string_value(v);
	if (s[0] == '\0')
		return -1;
	*out = strtod(s, &end);
	return *end == '\0' && isfinite(*out) ? 0 : -1;
}

/* Parse and check the inputs.  0, or -1 after fail(); spec->url is freed
 * by the caller either way. */
static int
wait_spec_parse(or_host *h, const struct or_host_api *api, struct wait_spec *spec)
{
	json_t *in = NULL, *secs, *url, *v;
	json_error_t jerr;
	const char *text;
	int rc = -1;

	memset(spec, 0, sizeof(*spec));
	spec->interval_s = 2;
	spec->timeout_s = 300;
	text = api->inputs_json(h);
	in = json_loads(text != NULL ? text : "{}", 0, &jerr);
	if (in == NULL || !json_is_object(in)) {
		api->fail(h, "invalid_input", "the step's inputs are not a JSON object");
		goto out;
	}
	secs = json_object_get(in, "seconds");
	url = json_object_get(in, "url");
	if (json_is_null(secs))
		secs = NULL;
	if (json_is_null(url) || (json_is_string(url) && json_string_length(url) == 0))
		url = NULL;
	if ((secs == NULL) == (url == NULL)) {
		api->fail(h, "invalid_input", "give exactly one of seconds (a number: how long to "
			  "wait) or url (an http:// or https:// address to poll until it answers 2xx)");
		goto out;
	}
	if (secs != NULL) {
		if (wait_number(secs, &spec->seconds) != 0 || spec->seconds < 0 ||
		    spec->seconds > WAIT_MAX_S) {
			api->fail(h, "invalid_input", "seconds must be a number from 0 to %.0f",
				  WAIT_MAX_S);
			goto out;
		}
		spec->has_seconds = 1;
		rc = 0;
		goto out;
	}
	if (!json_is_string(url) || strlen(json_string_value(url)) != json_string_length(url) ||
	    (strncasecmp(json_string_value(url), "http://", 7) != 0 &&
	     strncasecmp(json_string_value(url), "https://", 8) != 0)) {
		api->fail(h, "invalid_input", "url must be an http:// or https:// address");
		goto out;
	}
	v = json_object_get(in, "interval_s");
	if (v != NULL && !json_is_null(v) &&
	    (wait_number(v, &spec->interval_s) != 0 || spec->interval_s < WAIT_MIN_INTERVAL_S ||
	     spec->interval_s > WAIT_MAX_S)) {
		api->fail(h, "invalid_input", "interval_s must be a number of seconds from %g to %.0f",
			  WAIT_MIN_INTERVAL_S, WAIT_MAX_S);
		goto out;
	}
	v = json_object_get(in, "timeout_s");
	if (v != NULL && !json_is_null(v) &&
	    (wait_number(v, &spec->timeout_s) != 0 || spec->timeout_s <= 0 ||
	     spec->timeout_s > WAIT_MAX_S)) {
		api->fail(h, "invalid_input", "timeout_s must be a number of seconds above 0, at most %.0f",
			  WAIT_MAX_S);
		goto out;
	}
	spec->url = strdup(json_string_value(url));
	if (spec->url == NULL) {
		api->fail(h, "nomem", "out of memory");
		goto out;
	}
	rc = 0;
out:
	json_decref(in);
	return rc;
}

/* Sleep until the monotonic time until_ms in slices of WAIT_TICK_MS.
 * 1 when the run was cancelled meanwhile, else 0. */
static int
wait_until(or_host *h, const struct or_host_api *api, int64_t until_ms)
{
	int64_t left;

	for (;;) {
		if (api->cancelled(h))
			return 1;
		left = until_ms - wait_now_ms();
		if (left <= 0)
			return 0;
		if (api->sleep_ms(h, left < WAIT_TICK_MS ? (long)left : WAIT_TICK_MS) != 0)
			return 1;
	}
}

/* Seconds as whole milliseconds; inputs are checked to be 0..WAIT_MAX_S.
 * (Rounded by hand: the server does not link libm.) */
static int64_t
wait_ms(double seconds)
{
	return (int64_t)(seconds * 1000 + 0.5);
}

/* done of total as 0..99: 100 is said only when the wait is over. */
static int
wait_percent(int64_t done, int64_t total)
{
	int64_t p = total > 0 ? done * 100 / total : 0;

	return p < 0 ? 0 : p > 99 ? 99 : (int)p;
}

static or_status
wait_seconds(or_host *h, const struct or_host_api *api, const struct wait_spec *spec)
{
	int64_t start = wait_now_ms(), end, shown, now, next;
	char msg[96];

	end = start + wait_ms(spec->seconds);
	snprintf(msg, sizeof(msg), "waiting %g s", spec->seconds);
	api->progress(h, 0, msg);
	shown = start;
	for (;;) {
		now = wait_now_ms();
		if (now >= end)
			break;
		/* Progress once a second: enough for a bar, not a flood. */
		if (now - shown >= 1000) {
			shown = now;
			snprintf(msg, sizeof(msg), "waited %.0f of %g s", (double)(now - start) / 1000,
				 spec->seconds);
			api->progress(h, wait_percent(now - start, end - start), msg);
		}
		next = shown + 1000 < end ? shown + 1000 : end;
		if (wait_until(h, api, next)) {
			api->log(h, OR_LOG_INFO, "cancelled after %.1f of %g s",
				 (double)(wait_now_ms() - start) / 1000, spec->seconds);
			return OR_STATUS_CANCELLED;
		}
	}
	snprintf(msg, sizeof(msg), "waited %g s", spec->seconds);
	api->progress(h, 100, msg);
	api->log(h, OR_LOG_INFO, "waited %g s", spec->seconds);
	snprintf(msg, sizeof(msg), "%.3f", (double)(wait_now_ms() - start) / 1000);
	api->output(h, "waited_s", msg);
	return OR_STATUS_OK;
}

static or_status
wait_url(or_host *h, const struct or_host_api *api, const struct wait_spec *spec)
{
	int64_t start = wait_now_ms(), deadline, tried_at, left;
	struct or_http_request req;
	struct or_http_response resp;
	char last[64] = "", now_said[64], msg[160];
	unsigned tries = 0;
	long status;
	int rc;

	deadline = start + wait_ms(spec->timeout_s);
	api->log(h, OR_LOG_INFO, "waiting for %s to answer 2xx (every %g s, at most %g s)", spec->url,
		 spec->interval_s, spec->timeout_s);
	for (;;) {
		if (api->cancelled(h)) {
			api->log(h, OR_LOG_INFO, "cancelled after %u tries", tries);
			return OR_STATUS_CANCELLED;
		}
		tried_at = wait_now_ms();
		left = deadline - tried_at;
		if (left <= 0)
			break;
		memset(&req, 0, sizeof(req));
		memset(&resp, 0, sizeof(resp));
		req.method = "GET";
		req.url = spec->url;
		/* One try per poll: the interval is the backoff here, and host
		 * retries would stretch a try past the deadline. */
		req.max_attempts = 1;
		req.timeout_ms = left < WAIT_TRY_MAX_MS ? (long)(left > 100 ? left : 100) : WAIT_TRY_MAX_MS;
		rc = api->http(h, &req, &resp);
		tries++;
		status = rc == 0 ? resp.status : 0;
		if (rc == 0)
			api->http_free(&resp);
		if (status >= 200 && status <= 299) {
			api->log(h, OR_LOG_INFO, "%s answered HTTP %ld after %.1f s", spec->url, status,
				 (double)(wait_now_ms() - start) / 1000);
			api->progress(h, 100, "answered");
			snprintf(msg, sizeof(msg), "%ld", status);
			api->output(h, "status", msg);
			snprintf(msg, sizeof(msg), "%.3f", (double)(wait_now_ms() - start) / 1000);
			api->output(h, "waited_s", msg);
			return OR_STATUS_OK;
		}
		if (status != 0)
			snprintf(now_said, sizeof(now_said), "HTTP %ld", status);
		else
			snprintf(now_said, sizeof(now_said), "no answer");
		/* Info when the answer changes, debug while it stays the same. */
		api->log(h, strcmp(now_said, last) != 0 ? OR_LOG_INFO : OR_LOG_DEBUG,
			 "%s: %s (try %u)", spec->url, now_said, tries);
		snprintf(last, sizeof(last), "%s", now_said);
		snprintf(msg, sizeof(msg), "waiting for 2xx, last: %s", last);
		api->progress(h, wait_percent(wait_now_ms() - start, deadline - start), msg);
		tried_at += wait_ms(spec->interval_s);
		if (wait_until(h, api, tried_at < deadline ? tried_at : deadline)) {
			api->log(h, OR_LOG_INFO, "cancelled after %u tries", tries);
			return OR_STATUS_CANCELLED;
		}
	}
	api->fail(h, "timeout", "%s did not answer with a 2xx status within %g s (%u tries, last: %s)",
		  spec->url, spec->timeout_s, tries, last[0] != '\0' ? last : "none");
	return OR_STATUS_FAILED;
}

static or_status
wait_apply(or_host *h, const struct or_host_api *api)
{
	struct wait_spec spec;
	or_status st = OR_STATUS_FAILED;

	if (wait_spec_parse(h, api, &spec) != 0)
		goto out;
	st = spec.has_seconds ? wait_seconds(h, api, &spec) : wait_url(h, api, &spec);
out:
	free(spec.url);
	return st;
}

static or_status
wait_plan(or_host *h, const struct or_host_api *api)
{
	struct wait_spec spec;
	or_status st = OR_STATUS_FAILED;

	if (wait_spec_parse(h, api, &spec) != 0)
		goto out;
	if (spec.has_seconds)
		api->log(h, OR_LOG_INFO, "would wait %g s", spec.seconds);
	else
		api->log(h, OR_LOG_INFO, "would poll GET %s every %g s until it answers 2xx, "
			 "failing after %g s", spec.url, spec.interval_s, spec.timeout_s);
	st = OR_STATUS_OK;
out:
	free(spec.url);
	return st;
}

static or_status
wait_destroy(or_host *h, const struct or_host_api *api)
{
	api->log(h, OR_LOG_INFO, "wait made nothing: nothing to undo");
	return OR_STATUS_OK;
}

const struct or_plugin or_builtin_wait = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = OR_PLUGIN_ABI_MINOR,
	.name = "wait",
	.summary = "Wait some seconds, or until a URL answers with a 2xx status.",
	.inputs_schema =
		"{"
		"\"seconds\": {\"type\": \"number\", \"minimum\": 0,"
		" \"description\": \"How long to wait. Give this or url, not both.\"},"
		"\"url\": {\"type\": \"string\", \"format\": \"uri\","
		" \"description\": \"An http:// or https:// address polled with GET until it answers "
		"2xx. Give this or seconds, not both.\"},"
		"\"interval_s\": {\"type\": \"number\", \"minimum\": 0.1, \"default\": 2,"
		" \"description\": \"Seconds between two tries of url.\"},"
		"\"timeout_s\": {\"type\": \"number\", \"default\": 300,"
		" \"description\": \"Fail the step (timeout) when url has not answered 2xx after this "
		"many seconds.\"}"
		"}",
	.outputs_schema =
		"{"
		"\"waited_s\": {\"type\": \"string\", \"description\": \"Seconds actually waited, "
		"e.g. \\\"12.034\\\".\"},"
		"\"status\": {\"type\": \"string\", \"description\": \"The 2xx status url answered "
		"with (url only).\"}"
		"}",
	.capabilities = OR_CAP_PLAN | OR_CAP_DESTROY,
	.plan = wait_plan,
	.apply = wait_apply,
	.destroy = wait_destroy,
	.check = NULL,
};

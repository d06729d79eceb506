/*
 * hostcheck.c - a plugin that calls every function of struct or_host_api
 * through the real loader, one group per input `mode`, and reports what it
 * saw as outputs, so tests/api/test_runs.c can check the host's side of
 * the ABI from outside.  It needs only include/outrigger/plugin.h and libc.
 *
 * Modes:
 *   inputs       input() of each JSON type, inputs_json(), info(), the ABI
 *                numbers; outputs echo them (the whole "with" as `with`).
 *   log          log() at every level, plus raw stdout and stderr lines.
 *   outputs      output() and output_json() of each type, and the refusals.
 *   progress     progress() in and out of range.
 *   fail         fail() twice (the last call wins), then FAILED.
 *   state        state_get/state_set: asks for a retry until try `need`.
 *   secret_put   secret_put() of a value it makes up (written to the file
 *                named by `file`, so the test knows what to look for), then
 *                secret_get(), and leaks it into log/stdout/stderr/progress:
 *                the host must redact every one.
 *   secret_get   secret_get() of what secret_put stored, checked against
 *                the file, and logged (redacted).
 *   secret_fail  fails with the secret inside the failure message.
 *   sleep        cancelled() and sleep_ms(`ms`); CANCELLED when cut short.
 *   http         http() GET and POST against `url`, a refused connection
 *                (`closed_url`) and a too-small max_response.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "outrigger/plugin.h"

#define HC_SECRET_NAME "token"

/* Set output key, failing the step when the host refuses it. */
static int
hc_out(or_host *h, const struct or_host_api *api, const char *key, const char *value)
{
	if (api->output(h, key, value) != 0) {
		api->fail(h, "output", "the host refused output %s", key);
		return -1;
	}
	return 0;
}

static int
hc_out_int(or_host *h, const struct or_host_api *api, const char *key, long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%ld", v);
	return hc_out(h, api, key, buf);
}

static const char *
hc_or(const char *s, const char *dflt)
{
	return s != NULL ? s : dflt;
}

static or_status
hc_inputs(or_host *h, const struct or_host_api *api)
{
	static const char *const infos[] = {"action", "environment", "provider", "step",
					    "run", "attempt", "plugin"};
	char key[64], abi[32];
	size_t i;

	if (api->output_json(h, "with", api->inputs_json(h)) != 0) {
		api->fail(h, "output", "inputs_json() is not JSON: %s",
			  hc_or(api->inputs_json(h), "(null)"));
		return OR_STATUS_FAILED;
	}
	/* input() of each type: its text, or "(null)" when absent. */
	if (hc_out(h, api, "in_s", hc_or(api->input(h, "s"), "(null)")) != 0 ||
	    hc_out(h, api, "in_n", hc_or(api->input(h, "n"), "(null)")) != 0 ||
	    hc_out(h, api, "in_b", hc_or(api->input(h, "b"), "(null)")) != 0 ||
	    hc_out(h, api, "in_o", hc_or(api->input(h, "o"), "(null)")) != 0 ||
	    hc_out(h, api, "in_missing", hc_or(api->input(h, "no-such-input"), "(null)")) != 0)
		return OR_STATUS_FAILED;
	for (i = 0; i < sizeof(infos) / sizeof(infos[0]); i++) {
		snprintf(key, sizeof(key), "info_%s", infos[i]);
		if (hc_out(h, api, key, hc_or(api->info(h, infos[i]), "(null)")) != 0)
			return OR_STATUS_FAILED;
	}
	if (hc_out(h, api, "info_unknown", hc_or(api->info(h, "no-such-fact"), "(null)")) != 0)
		return OR_STATUS_FAILED;
	snprintf(abi, sizeof(abi), "%u.%u", api->major, api->minor);
	if (hc_out(h, api, "abi", abi) != 0 ||
	    hc_out(h, api, "size_ok", api->size >= sizeof(struct or_host_api) ? "yes" : "no") != 0)
		return OR_STATUS_FAILED;
	return OR_STATUS_OK;
}

static or_status
hc_log(or_host *h, const struct or_host_api *api)
{
	api->log(h, OR_LOG_DEBUG, "hostcheck debug line");
	api->log(h, OR_LOG_INFO, "hostcheck info line");
	api->log(h, OR_LOG_WARN, "hostcheck warn line");
	api->log(h, OR_LOG_ERROR, "hostcheck error line");
	api->log(h, OR_LOG_INFO, "hostcheck formatted %d-%s-%05.1f", 42, "x", 2.5);
	api->log(h, 99, "hostcheck bad level line");
	/* What a plugin prints itself: the runner's stdout and stderr. */
	printf("hostcheck stdout line\n");
	fflush(stdout);
	fprintf(stderr, "hostcheck stderr line\n");
	fflush(stderr);
	return OR_STATUS_OK;
}

static or_status
hc_outputs(or_host *h, const struct or_host_api *api)
{
	if (hc_out(h, api, "plain", "text value") != 0)
		return OR_STATUS_FAILED;
	if (api->output_json(h, "obj", "{\"k\":[1,2,{\"z\":null}]}") != 0 ||
	    api->output_json(h, "num", "42") != 0 ||
	    api->output_json(h, "arr", "[true,false]") != 0 ||
	    api->output_json(h, "str", "\"quoted\"") != 0) {
		api->fail(h, "output", "the host refused a JSON output");
		return OR_STATUS_FAILED;
	}
	/* Refusals: a bad key, text that is not JSON, a NULL value. */
	if (hc_out_int(h, api, "refused_key", api->output(h, "bad key!", "x")) != 0 ||
	    hc_out_int(h, api, "refused_json", api->output_json(h, "badjson", "{nope")) != 0 ||
	    hc_out_int(h, api, "refused_null", api->output(h, "nullvalue", NULL)) != 0)
		return OR_STATUS_FAILED;
	/* The last value of a key wins. */
	if (hc_out(h, api, "twice", "first") != 0 || hc_out(h, api, "twice", "second") != 0)
		return OR_STATUS_FAILED;
	return OR_STATUS_OK;
}

static or_status
hc_progress(or_host *h, const struct or_host_api *api)
{
	api->progress(h, 0, "starting");
	api->progress(h, 50, "half way");
	api->progress(h, 150, "over the top");
	api->progress(h, -5, NULL);
	return OR_STATUS_OK;
}

static or_status
hc_fail(or_host *h, const struct or_host_api *api)
{
	const char *code = api->input(h, "code");

	api->fail(h, "first_code", "this first reason must be replaced");
	api->fail(h, code != NULL && code[0] != '\0' ? code : "hostcheck_failed",
		  "failing on purpose: %s", hc_or(api->input(h, "arg"), ""));
	return OR_STATUS_FAILED;
}

static or_status
hc_state(or_host *h, const struct or_host_api *api)
{
	const char *need_s = api->input(h, "need"), *seen = api->state_get(h, "tries");
	long need = need_s != NULL ? strtol(need_s, NULL, 10) : 2, tries;
	char count[32], hist[512];

	tries = (seen != NULL ? strtol(seen, NULL, 10) : 0) + 1;
	snprintf(count, sizeof(count), "%ld", tries);
	snprintf(hist, sizeof(hist), "%s%s%ld", hc_or(api->state_get(h, "history"), ""),
		 api->state_get(h, "history") != NULL ? "," : "", tries);
	if (api->state_set(h, "tries", count) != 0 || api->state_set(h, "history", hist) != 0) {
		api->fail(h, "state", "could not record try %ld", tries);
		return OR_STATUS_FAILED;
	}
	/* Committed means readable at once by this attempt too. */
	if (api->state_get(h, "tries") == NULL || strcmp(api->state_get(h, "tries"), count) != 0) {
		api->fail(h, "state", "state_get does not see what state_set stored");
		return OR_STATUS_FAILED;
	}
	if (tries < need) {
		api->fail(h, "not_yet", "try %ld of %ld asks for a retry", tries, need);
		return OR_STATUS_RETRY;
	}
	if (hc_out(h, api, "tries", count) != 0 || hc_out(h, api, "history", hist) != 0 ||
	    hc_out(h, api, "attempt_info", hc_or(api->info(h, "attempt"), "(null)")) != 0 ||
	    hc_out_int(h, api, "bad_key_rc", api->state_set(h, "bad key!", "x")) != 0 ||
	    hc_out_int(h, api, "null_value_rc", api->state_set(h, "k", NULL)) != 0)
		return OR_STATUS_FAILED;
	return OR_STATUS_OK;
}

/* The secret the test planted (or secret_put wrote) in the file `file`. */
static int
hc_read_file(or_host *h, const struct or_host_api *api, char *buf, size_t size)
{
	const char *path = api->input(h, "file");
	FILE *f = path != NULL ? fopen(path, "r") : NULL;
	size_t n;

	if (f == NULL) {
		api->fail(h, "io", "cannot open the file input");
		return -1;
	}
	n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static or_status
hc_secret_put(or_host *h, const struct or_host_api *api)
{
	const char *path = api->input(h, "file"), *got;
	char value[128];
	struct timespec ts;
	FILE *f;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(value, sizeof(value), "hc-secret-%ld-%ld-xyzzy", (long)getpid(), (long)ts.tv_nsec);
	f = path != NULL ? fopen(path, "w") : NULL;
	if (f == NULL) {
		api->fail(h, "io", "cannot write the file input");
		return OR_STATUS_FAILED;
	}
	fprintf(f, "%s\n", value);
	fclose(f);
	if (hc_out_int(h, api, "missing_rc", api->secret_get(h, HC_SECRET_NAME "-none") == NULL ? 0 : 1) != 0 ||
	    hc_out_int(h, api, "bad_name_rc", api->secret_put(h, "bad name!", "x")) != 0 ||
	    hc_out_int(h, api, "null_value_rc", api->secret_put(h, "k", NULL)) != 0)
		return OR_STATUS_FAILED;
	if (api->secret_put(h, HC_SECRET_NAME, value) != 0) {
		api->fail(h, "secret", "secret_put refused");
		return OR_STATUS_FAILED;
	}
	got = api->secret_get(h, HC_SECRET_NAME);
	if (hc_out(h, api, "roundtrip", got != NULL && strcmp(got, value) == 0 ? "yes" : "no") != 0)
		return OR_STATUS_FAILED;
	/* Every way a value can leak out of a plugin. */
	api->log(h, OR_LOG_DEBUG, "leak debug %s", value);
	api->log(h, OR_LOG_INFO, "leak info %s end", value);
	api->log(h, OR_LOG_WARN, "leak warn %s", value);
	api->log(h, OR_LOG_ERROR, "leak error %s", value);
	api->progress(h, 50, value);
	printf("leak stdout %s\n", value);
	fflush(stdout);
	fprintf(stderr, "leak stderr %s\n", value);
	fflush(stderr);
	return OR_STATUS_OK;
}

static or_status
hc_secret_get(or_host *h, const struct or_host_api *api)
{
	char want[256];
	const char *got;

	if (hc_read_file(h, api, want, sizeof(want)) != 0)
		return OR_STATUS_FAILED;
	got = api->secret_get(h, HC_SECRET_NAME);
	api->log(h, OR_LOG_INFO, "got %s", hc_or(got, "(null)"));
	if (hc_out(h, api, "match", got != NULL && strcmp(got, want) == 0 ? "yes" : "no") != 0)
		return OR_STATUS_FAILED;
	return OR_STATUS_OK;
}

static or_status
hc_secret_fail(or_host *h, const struct or_host_api *api)
{
	api->fail(h, "leak", "the token is %s, said the plugin",
		  hc_or(api->secret_get(h, HC_SECRET_NAME), "(null)"));
	return OR_STATUS_FAILED;
}

static or_status
hc_sleep(or_host *h, const struct or_host_api *api)
{
	const char *ms_s = api->input(h, "ms");
	long ms = ms_s != NULL ? strtol(ms_s, NULL, 10) : 100;
	int before = api->cancelled(h), early;

	api->log(h, OR_LOG_INFO, "sleeping %ld ms", ms);
	early = api->sleep_ms(h, ms);
	if (early || api->cancelled(h)) {
		api->log(h, OR_LOG_INFO, "woken by cancellation");
		return OR_STATUS_CANCELLED;
	}
	if (hc_out_int(h, api, "cancelled_before", before) != 0 ||
	    hc_out_int(h, api, "slept_early", early) != 0)
		return OR_STATUS_FAILED;
	return OR_STATUS_OK;
}

static or_status
hc_http(or_host *h, const struct or_host_api *api)
{
	const char *url = api->input(h, "url"), *closed = api->input(h, "closed_url");
	const char *const hdrs[] = {"X-Hostcheck: yes", NULL};
	struct or_http_request rq;
	struct or_http_response rs;
	char body[256];

	if (url == NULL || closed == NULL) {
		api->fail(h, "invalid_input", "url and closed_url are required");
		return OR_STATUS_FAILED;
	}
	memset(&rq, 0, sizeof(rq));
	rq.method = "GET";
	rq.url = url;
	rq.headers = hdrs;
	rq.timeout_ms = 5000;
	if (api->http(h, &rq, &rs) != 0)
		return OR_STATUS_FAILED; /* fail() says why */
	snprintf(body, sizeof(body), "%.200s", rs.body);
	if (hc_out_int(h, api, "get_status", rs.status) != 0 || hc_out(h, api, "get_body", body) != 0 ||
	    hc_out(h, api, "get_type", hc_or(rs.content_type, "(null)")) != 0 ||
	    hc_out_int(h, api, "get_len", (long)rs.body_len) != 0) {
		api->http_free(&rs);
		return OR_STATUS_FAILED;
	}
	api->http_free(&rs);

	rq.method = "POST";
	rq.body = "ping-body";
	rq.body_len = strlen(rq.body);
	if (api->http(h, &rq, &rs) != 0)
		return OR_STATUS_FAILED;
	snprintf(body, sizeof(body), "%.200s", rs.body);
	if (hc_out_int(h, api, "post_status", rs.status) != 0 ||
	    hc_out(h, api, "post_body", body) != 0) {
		api->http_free(&rs);
		return OR_STATUS_FAILED;
	}
	api->http_free(&rs);

	/* Nothing listens there: -1, quickly with one try. */
	rq.method = "GET";
	rq.url = closed;
	rq.body = NULL;
	rq.body_len = 0;
	rq.max_attempts = 1;
	rq.timeout_ms = 2000;
	if (hc_out_int(h, api, "closed_rc", api->http(h, &rq, &rs)) != 0 ||
	    hc_out_int(h, api, "closed_status", rs.status) != 0)
		return OR_STATUS_FAILED;
	api->http_free(&rs);

	/* An answer larger than max_response is refused. */
	rq.url = url;
	rq.max_response = 4;
	if (hc_out_int(h, api, "small_rc", api->http(h, &rq, &rs)) != 0)
		return OR_STATUS_FAILED;
	api->http_free(&rs);
	return OR_STATUS_OK;
}

static or_status
hostcheck_apply(or_host *h, const struct or_host_api *api)
{
	const char *mode = api->input(h, "mode");

	if (mode == NULL) {
		api->fail(h, "invalid_input", "mode is required");
		return OR_STATUS_FAILED;
	}
	if (strcmp(mode, "inputs") == 0)
		return hc_inputs(h, api);
	if (strcmp(mode, "log") == 0)
		return hc_log(h, api);
	if (strcmp(mode, "outputs") == 0)
		return hc_outputs(h, api);
	if (strcmp(mode, "progress") == 0)
		return hc_progress(h, api);
	if (strcmp(mode, "fail") == 0)
		return hc_fail(h, api);
	if (strcmp(mode, "state") == 0)
		return hc_state(h, api);
	if (strcmp(mode, "secret_put") == 0)
		return hc_secret_put(h, api);
	if (strcmp(mode, "secret_get") == 0)
		return hc_secret_get(h, api);
	if (strcmp(mode, "secret_fail") == 0)
		return hc_secret_fail(h, api);
	if (strcmp(mode, "sleep") == 0)
		return hc_sleep(h, api);
	if (strcmp(mode, "http") == 0)
		return hc_http(h, api);
	api->fail(h, "invalid_input", "unknown mode '%s'", mode);
	return OR_STATUS_FAILED;
}

static or_status
hostcheck_plan(or_host *h, const struct or_host_api *api)
{
	api->log(h, OR_LOG_INFO, "hostcheck would run mode %s", hc_or(api->input(h, "mode"), "?"));
	return OR_STATUS_OK;
}

static or_status
hostcheck_destroy(or_host *h, const struct or_host_api *api)
{
	api->log(h, OR_LOG_INFO, "hostcheck destroy of mode %s", hc_or(api->input(h, "mode"), "?"));
	return OR_STATUS_OK;
}

static const struct or_plugin hostcheck = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = OR_PLUGIN_ABI_MINOR,
	.name = "hostcheck",
	.summary = "Calls every host function, one group per mode (test plugin).",
	.inputs_schema = "{\"mode\": {\"type\": \"string\", \"required\": true,"
			 " \"description\": \"Which host functions to exercise\"}}",
	.outputs_schema = "{\"*\": {\"type\": \"string\", \"description\": \"What it saw\"}}",
	.capabilities = OR_CAP_PLAN | OR_CAP_DESTROY,
	.plan = hostcheck_plan,
	.apply = hostcheck_apply,
	.destroy = hostcheck_destroy,
	.check = NULL,
};

OR_PLUGIN_EXPORT(hostcheck)

/*
 * fuzz_api.c - libFuzzer target for the request path: routing, query
 * arguments, JSON bodies, environment validation against a blueprint, and
 * the store behind them.
 *
 * Input: byte 0 picks the method, then the path (with an optional query
 * string) up to the first newline, then the body.  The oracle: nothing
 * crashes or leaks (ASan/UBSan), every answer has a known status, and every
 * body is valid JSON - an error body in the contract's shape.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct api api;
static struct bp_set bps;
static struct plugin_set plugins;

static const char *const methods[] = {"GET", "POST", "PATCH", "DELETE", "HEAD", "PUT"};

struct query {
	char text[512];
};

/* Look key up in "k=v&k2=v2". */
static const char *
query_arg(void *ctx, const char *key)
{
	static __thread char val[512];
	struct query *q = ctx;
	const char *p = q->text;
	size_t klen = strlen(key), n;

	while (*p != '\0') {
		n = strcspn(p, "&");
		if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
			snprintf(val, sizeof(val), "%.*s", (int)(n - klen - 1), p + klen + 1);
			return val;
		}
		p += n;
		if (*p == '&')
			p++;
	}
	return NULL;
}

static void
setup(void)
{
	const char *dirs[] = {"tests/blueprints", "plugins/blueprints"};
	char dir[] = "/dev/shm/outrigger-fuzz-XXXXXX", path[128];
	struct db *db;

	log_set_level(LOG_ERROR);
	if (mkdtemp(dir) == NULL) {
		snprintf(dir, sizeof(dir), "/tmp/outrigger-fuzz-XXXXXX");
		if (mkdtemp(dir) == NULL)
			abort();
	}
	snprintf(path, sizeof(path), "%s/fuzz.db", dir);
	if (db_open(path, &db, NULL) != OR_OK || db_migrate(db, NULL) != OR_OK)
		abort();
	plugin_set_scan(&plugins, NULL, NULL);
	if (bp_set_load(&bps, dirs, 2, &plugins, NULL) != OR_OK)
		abort();
	api.db = db;
	api.blueprints = &bps;
	api.version = "fuzz";
	/* The database lives as long as the process; remove its name now. */
	unlink(path);
	rmdir(dir);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct api_req req;
	struct api_resp resp;
	struct query q;
	char path[512], *qm;
	size_t n, plen;
	json_t *body;

	if (!ready) {
		setup();
		ready = 1;
	}
	if (size < 1)
		return 0;
	memset(&req, 0, sizeof(req));
	req.method = methods[data[0] % (sizeof(methods) / sizeof(methods[0]))];
	data++;
	size--;
	n = 0;
	while (n < size && data[n] != '\n')
		n++;
	plen = n < sizeof(path) - 1 ? n : sizeof(path) - 1;
	memcpy(path, data, plen);
	path[plen] = '\0';
	if (strlen(path) != plen)
		return 0; /* MHD never hands a path with a NUL in it */
	q.text[0] = '\0';
	qm = strchr(path, '?');
	if (qm != NULL) {
		*qm = '\0';
		snprintf(q.text, sizeof(q.text), "%s", qm + 1);
	}
	req.path = path;
	req.body = n < size ? (const char *)data + n + 1 : NULL;
	req.body_len = n < size ? size - n - 1 : 0;
	req.content_type = "application/json";
	req.remote = "fuzz";
	req.query = query_arg;
	req.ctx = &q;
	api_handle(&api, &req, &resp);

	switch (resp.status) {
	case 200: case 201: case 204: case 400: case 404: case 405:
	case 409: case 413: case 415: case 422: case 503:
		break;
	default:
		fprintf(stderr, "unexpected status %d\n", resp.status);
		abort();
	}
	if (resp.status == 204) {
		if (resp.body != NULL)
			abort();
	} else {
		body = resp.body != NULL ? json_loadb(resp.body, resp.len, 0, NULL) : NULL;
		if (body == NULL)
			abort();
		if (resp.status >= 400 &&
		    !json_is_string(json_object_get(json_object_get(body, "error"), "message")))
			abort();
		json_decref(body);
	}
	api_resp_free(&resp);
	return 0;
}

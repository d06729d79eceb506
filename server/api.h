/*
 * api.h - the REST API v1 (contract in DESIGN.md, document in
 * server/openapi.json): routing, validation and JSON answers.
 *
 * The API knows nothing of libmicrohttpd: http.c turns a request into an
 * api_req and sends back the api_resp.  That keeps handlers thin and lets
 * the unit tests and the fuzzer drive them directly.
 */
#ifndef API_H
#define API_H

#include <stddef.h>

#include "bp.h"
#include "db.h"

struct sched;

#define API_BODY_MAX (1024 * 1024)

struct api {
	struct db *db;
	const struct bp_set *blueprints;
	const struct plugin_set *plugins;
	const char *version;
	struct sched *sched;	/* woken after run requests; may be NULL */
	json_t *providers;	/* provider_load's object; may be NULL */
};

struct api_req {
	const char *method;	/* "GET", "POST", ... (HEAD is answered as GET) */
	const char *path;	/* decoded, without the query string */
	const char *body;	/* may be NULL when body_len is 0 */
	size_t body_len;
	const char *content_type;	/* NULL when absent */
	const char *user;	/* X-Outrigger-User, NULL when absent */
	const char *remote;	/* client address, for the audit trail */
	const char *last_event_id;	/* Last-Event-ID, NULL when absent */
	/* Query string argument by name, NULL when absent. */
	const char *(*query)(void *ctx, const char *key);
	void *ctx;
};

struct api_resp {
	int status;
	char *body;		/* JSON text, owned (free with api_resp_free) */
	size_t len;
	char location[320];	/* Location header, "" for none */
	char allow[64];		/* Allow header of a 405, "" for none */
	int cacheable;		/* may be reused until the store changes */
	long long sse_run;	/* > 0: answer with the event stream of this run */
	long long sse_after;	/* ... starting after this sequence number */
};

typedef void (*api_handler)(struct api *api, const struct api_req *req,
			    const char *arg, struct api_resp *resp);

struct api_route {
	const char *method;
	const char *pattern;	/* "/api/v1/environments/{name}" */
	api_handler handler;
	int cacheable;
};

/* Answer one request.  Always fills resp (errors too). */
void api_handle(struct api *api, const struct api_req *req,
		struct api_resp *resp);
void api_resp_free(struct api_resp *resp);

/* The route table, for the OpenAPI check. */
const struct api_route *api_routes(size_t *n);

/* Fill resp with the JSON error shape for err. */
void api_error(struct api_resp *resp, const struct or_err *err);

#endif

/*
 * http.h - the HTTP server: libmicrohttpd with an epoll thread pool,
 * request bodies bounded at API_BODY_MAX, a response cache for the read
 * paths that writes to the store invalidate, static files from web/, an
 * access log line per request, and a graceful stop.
 */
#ifndef HTTP_H
#define HTTP_H

#include "api.h"
#include "sse.h"
#include "web.h"

struct http_cfg {
	const char *listen;	/* "ADDR:PORT", port 0 picks a free one */
	unsigned threads;	/* epoll worker threads */
	unsigned max_conns;	/* connections in all */
	unsigned max_per_ip;	/* connections from one address */
	unsigned timeout_s;	/* idle time before a connection is closed */
	int access_log;		/* write the access log line */
	struct sse_hub *sse;	/* run event streams */
};

struct http;

/* Is listen a usable "ADDR:PORT"?  OR_E_INVALID with a sentence if not. */
or_rc http_check_listen(const char *listen, struct or_err *err);

/* Start serving.  api and web must outlive the server. */
or_rc http_start(const struct http_cfg *cfg, struct api *api,
		 const struct web *web, struct http **out, struct or_err *err);

/* The port actually bound (useful with port 0). */
unsigned short http_port(const struct http *h);

/* Stop accepting, let requests in flight finish (up to grace_ms), stop. */
void http_stop(struct http *h, unsigned grace_ms);

#endif

/*
 * kube_http.c - libmicrohttpd glue of the sandbox Kubernetes API: HTTPS
 * (GnuTLS through MHD), bearer-token auth, request bodies, and handing
 * answers and watch streams back to MHD.
 *
 * As in server/http.c: an epoll thread pool, request state created on the
 * first access-handler call (which never answers, except to refuse an
 * oversized body, or MHD 0.9.75 drops keep-alive) and freed in the
 * completion callback.  Tokens are checked here and never logged.
 */
#include "kube_int.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"

#define CONN_MEMORY (64u * 1024)	/* kubectl's headers are small, bodies go to buf */

struct kreq {
	struct buf body;
	int too_large;
	int status;
	struct timespec start;
	char method[16];
	char url[256];
};

static enum MHD_Result
queue_buf(struct MHD_Connection *c, struct kreq *r, int status, char *body, size_t len,
	  const char *ctype)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, body != NULL ? body : "",
					       body != NULL ? MHD_RESPMEM_MUST_FREE
							    : MHD_RESPMEM_PERSISTENT);
	if (resp == NULL) {
		free(body);
		return MHD_NO;
	}
	if (ctype != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache, private");
	r->status = status;
	ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
queue_status(struct MHD_Connection *c, struct kreq *r, int code, const char *reason,
	     const char *message)
{
	char *body = NULL;
	json_t *st = json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind", "Status",
			       "apiVersion", "v1", "metadata", "status", "Failure", "message",
			       message, "reason", reason, "code", code);

	if (st != NULL)
		body = json_dumps(st, JSON_COMPACT);
	json_decref(st);
	return queue_buf(c, r, code, body, body != NULL ? strlen(body) : 0, "application/json");
}

static const char *
query_arg(void *ctx, const char *key)
{
	return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, key);
}

/* Paths any client may read, as on GKE (the dispatcher asks /version
 * before it has any credentials in hand). */
static int
public_path(const char *url)
{
	return strcmp(url, "/version") == 0 || strcmp(url, "/healthz") == 0 ||
	       strcmp(url, "/livez") == 0 || strcmp(url, "/readyz") == 0;
}

static int
authorized(struct kube *k, struct MHD_Connection *c)
{
	const char *h;

	if (k->auth == NULL)
		return 1;
	h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	while (*h == ' ')
		h++;
	return k->auth(k->auth_ctx, h) != 0;
}

static enum MHD_Result
serve(struct kube *k, struct MHD_Connection *c, struct kreq *r, const char *url,
      const char *method)
{
	struct kube_req req;
	struct kube_resp resp;
	struct MHD_Response *mr;
	enum MHD_Result ret;

	if (!public_path(url) && !authorized(k, c))
		return queue_status(c, r, 401, "Unauthorized", "Unauthorized");
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = url;
	req.query = query_arg;
	req.qctx = c;
	req.content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_CONTENT_TYPE);
	req.accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
	req.body = buf_str(&r->body);
	req.body_len = r->body.len;
	kube_handle(k, &req, &resp);
	if (resp.watch != NULL) {
		mr = kube_watch_response(resp.watch, c);
		if (mr == NULL)
			return MHD_NO;
		r->status = 200;
		ret = MHD_queue_response(c, 200, mr);
		MHD_destroy_response(mr);
		return ret;
	}
	return queue_buf(c, r, resp.status, resp.body, resp.len, resp.ctype);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
	   const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct kube *k = cls;
	struct kreq *r = *con_cls;
	const char *cl;

	(void)version;
	if (r == NULL) {
		r = calloc(1, sizeof(*r));
		if (r == NULL)
			return MHD_NO;
		buf_init(&r->body, KUBE_BODY_MAX);
		clock_gettime(CLOCK_MONOTONIC, &r->start);
		snprintf(r->method, sizeof(r->method), "%s", method);
		snprintf(r->url, sizeof(r->url), "%s", url);
		*con_cls = r;
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL && strtoull(cl, NULL, 10) > KUBE_BODY_MAX)
			return queue_status(c, r, 413, "RequestEntityTooLarge",
					    "the request body is larger than 3 MiB");
		return MHD_YES;
	}
	if (*upload_size != 0) {
		if (!r->too_large && buf_append(&r->body, upload, *upload_size) != OR_OK) {
			r->too_large = 1;
			buf_free(&r->body);
		}
		*upload_size = 0;
		return r->too_large ? MHD_NO : MHD_YES;
	}
	if (r->status != 0)
		return MHD_YES;	/* answered already (413) */
	return serve(k, c, r, url, method);
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
	     enum MHD_RequestTerminationCode toe)
{
	struct kube *k = cls;
	struct kreq *r = *con_cls;
	struct timespec now;
	double ms;

	(void)c;
	(void)toe;
	if (r == NULL)
		return;
	if (k->access_log) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (double)(now.tv_sec - r->start.tv_sec) * 1e3 +
		     (double)(now.tv_nsec - r->start.tv_nsec) / 1e6;
		log_access("kube", r->method, r->url, r->status, 0, ms);
	}
	buf_free(&r->body);
	free(r);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	/* Clients that hang up, and TLS handshakes cut short, are routine. */
	log_msg(LOG_DEBUG, "kube http: %s", msg);
}

or_rc
kube_http_start(struct kube *k, struct or_err *err)
{
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *di;
	unsigned flags;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(k->port);
	if (inet_pton(AF_INET, k->listen_addr, &sa.sin_addr) != 1 ||
	    (ntohl(sa.sin_addr.s_addr) >> 24) != 127)
		return or_fail(err, OR_E_INVALID, NULL, "listen_addr",
			       "the sandbox listens on 127.0.0.0/8 only, not '%s'", k->listen_addr);
	flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (k->cert != NULL && k->tlskey != NULL)
		flags |= MHD_USE_TLS;
	k->d = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, k,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, k, /* first, or MHD warns */
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
		MHD_OPTION_THREAD_POOL_SIZE, k->threads,
		MHD_OPTION_CONNECTION_LIMIT, 1000u,
		MHD_OPTION_CONNECTION_TIMEOUT, 300u,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, k,
		/* Without TLS the list ends here. */
		(flags & MHD_USE_TLS) ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, k->tlskey,
		MHD_OPTION_HTTPS_MEM_CERT, k->cert,
		MHD_OPTION_END);
	if (k->d == NULL)
		return or_fail(err, OR_E_IO, NULL, "listen_addr",
			       "cannot serve the Kubernetes API on %s:%u (address in use, or a bad TLS key/certificate?)",
			       k->listen_addr, k->port);
	di = MHD_get_daemon_info(k->d, MHD_DAEMON_INFO_BIND_PORT);
	k->bound_port = di != NULL ? di->port : k->port;
	return OR_OK;
}

void
kube_http_stop(struct kube *k)
{
	struct timespec ts = {0, 10 * 1000000};
	int waited = 0;

	if (k->d == NULL)
		return;
	pthread_mutex_lock(&k->lock);
	k->stopping = 1;
	kube_watch_wake(k);
	pthread_mutex_unlock(&k->lock);
	/* Streams end on their own once resumed; MHD must not stop while
	 * any is suspended. */
	for (;;) {
		pthread_mutex_lock(&k->lock);
		if (k->watchers == 0 || waited >= 3000) {
			pthread_mutex_unlock(&k->lock);
			break;
		}
		kube_watch_wake(k);
		pthread_mutex_unlock(&k->lock);
		nanosleep(&ts, NULL);
		waited += 10;
	}
	MHD_stop_daemon(k->d);
	k->d = NULL;
}

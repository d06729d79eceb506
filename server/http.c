/*
 * http.c - libmicrohttpd glue.  See http.h.
 *
 * Request-scoped state is created on the first access-handler call (which
 * must not answer, or MHD 0.9.75 drops keep-alive) and freed in the
 * completion callback, where the access log line is written.  Handlers in
 * api.c never see MHD.  Nothing here may block on anything but the store.
 */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"

/* Past the body limit, keep reading (to answer 413) only this much more;
 * a client that goes on is cut off. */
#define DISCARD_MAX (16u * 1024 * 1024)
#define CACHE_SLOTS 64
#define CACHE_KEY_MAX 512
#define CONN_MEMORY 16384

struct cache_slot {
	char key[CACHE_KEY_MAX];
	unsigned long gen;
	unsigned long used;
	struct MHD_Response *resp;	/* one reference held by the cache */
	size_t len;
	char etag[32];
};

struct http {
	struct MHD_Daemon *d;
	struct api *api;
	const struct web *web;
	struct sse_hub *sse;
	int access_log;
	unsigned short port;
	atomic_int inflight;
	pthread_mutex_t cache_lock;
	struct cache_slot cache[CACHE_SLOTS];
	unsigned long cache_clock;
};

struct req {
	struct buf body;
	size_t discarded;
	int too_large;
	int status;
	unsigned long long bytes;
	struct timespec start;
	char method[16];
	char url[256];
	char remote[INET6_ADDRSTRLEN];
};

/* ---- responses --------------------------------------------------------- */

static enum MHD_Result
queue(struct MHD_Connection *c, struct req *r, int status,
      struct MHD_Response *resp, unsigned long long bytes)
{
	enum MHD_Result ret;

	r->status = status;
	r->bytes = bytes;
	ret = MHD_queue_response(c, (unsigned)status, resp);
	return ret;
}

/* Queue a fresh buffer answer; takes ownership of body. */
static enum MHD_Result
answer(struct MHD_Connection *c, struct req *r, int status, char *body,
       size_t len, const char *ctype, const char *etag, const char *location,
       const char *allow)
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
	if (etag != NULL && etag[0] != '\0')
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
	if (location != NULL && location[0] != '\0')
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
	if (allow != NULL && allow[0] != '\0')
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	ret = queue(c, r, status, resp, len);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
answer_error(struct MHD_Connection *c, struct req *r, or_rc rc,
	     const char *message, const char *allow)
{
	struct api_resp resp;
	struct or_err err;

	memset(&resp, 0, sizeof(resp));
	or_fail(&err, rc, NULL, NULL, "%s", message);
	api_error(&resp, &err);
	return answer(c, r, resp.status, resp.body, resp.len, "application/json",
		      NULL, NULL, allow);
}

static enum MHD_Result
answer_not_modified(struct MHD_Connection *c, struct req *r, const char *etag)
{
	return answer(c, r, 304, NULL, 0, NULL, etag, NULL, NULL);
}

/* ---- response cache ---------------------------------------------------- */

/* Queue the cached answer for key if it is as new as gen.  Returns 1 when
 * answered (ret set), 0 on a miss. */
static int
cache_answer(struct http *h, struct MHD_Connection *c, struct req *r,
	     const char *key, unsigned long gen, const char *inm,
	     enum MHD_Result *ret)
{
	struct cache_slot *s;
	int hit = 0, i;

	pthread_mutex_lock(&h->cache_lock);
	for (i = 0; i < CACHE_SLOTS; i++) {
		s = &h->cache[i];
		if (s->resp == NULL || s->gen != gen || strcmp(s->key, key) != 0)
			continue;
		s->used = ++h->cache_clock;
		hit = 1;
		if (inm != NULL && strcmp(inm, s->etag) == 0) {
			char etag[32];

			memcpy(etag, s->etag, sizeof(etag));
			pthread_mutex_unlock(&h->cache_lock);
			*ret = answer_not_modified(c, r, etag);
			return 1;
		}
		/* Queue under the lock: eviction could free it otherwise. */
		*ret = queue(c, r, 200, s->resp, s->len);
		break;
	}
	pthread_mutex_unlock(&h->cache_lock);
	return hit;
}

/* Keep resp under key: replace the key's old answer, else take an empty
 * or stale slot, else the least recently used one. */
static void
cache_store(struct http *h, const char *key, unsigned long gen,
	    struct MHD_Response *resp, size_t len, const char *etag)
{
	struct cache_slot *s, *victim = NULL, *lru = &h->cache[0];
	int i;

	pthread_mutex_lock(&h->cache_lock);
	for (i = 0; i < CACHE_SLOTS && victim == NULL; i++) {
		s = &h->cache[i];
		if (s->resp != NULL && strcmp(s->key, key) == 0)
			victim = s;
	}
	for (i = 0; i < CACHE_SLOTS && victim == NULL; i++) {
		s = &h->cache[i];
		if (s->resp == NULL || s->gen != gen)
			victim = s;
		else if (s->used < lru->used)
			lru = s;
	}
	if (victim == NULL)
		victim = lru;
	if (victim->resp != NULL)
		MHD_destroy_response(victim->resp);
	snprintf(victim->key, sizeof(victim->key), "%s", key);
	snprintf(victim->etag, sizeof(victim->etag), "%s", etag);
	victim->gen = gen;
	victim->resp = resp;
	victim->len = len;
	victim->used = ++h->cache_clock;
	pthread_mutex_unlock(&h->cache_lock);
}

static void
cache_clear(struct http *h)
{
	int i;

	for (i = 0; i < CACHE_SLOTS; i++)
		if (h->cache[i].resp != NULL)
			MHD_destroy_response(h->cache[i].resp);
	memset(h->cache, 0, sizeof(h->cache));
}

/* ---- API requests -------------------------------------------------------- */

struct key_ctx {
	struct buf *b;
	int ok;
};

static enum MHD_Result
key_arg(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
	struct key_ctx *kc = cls;

	(void)kind;
	if (buf_printf(kc->b, "%c%s=%s", kc->b->len == 0 ? '?' : '&', k,
		       v != NULL ? v : "") != OR_OK)
		kc->ok = 0;
	return MHD_YES;
}

/* The cache key of a GET: path plus its query arguments as received. */
static int
cache_key(struct MHD_Connection *c, const char *path, char *out, size_t size)
{
	struct buf args;
	struct key_ctx kc = {&args, 1};
	int n;

	buf_init(&args, CACHE_KEY_MAX);
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, key_arg, &kc);
	n = snprintf(out, size, "%s%s", path, buf_str(&args));
	buf_free(&args);
	return kc.ok && n > 0 && (size_t)n < size;
}

static const char *
query_arg(void *ctx, const char *key)
{
	return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result
serve_api(struct http *h, struct MHD_Connection *c, struct req *r,
	  const char *url, const char *method)
{
	struct api_req req;
	struct api_resp resp;
	struct MHD_Response *mr;
	const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_IF_NONE_MATCH);
	int is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	char key[CACHE_KEY_MAX], etag[32];
	unsigned long gen = db_generation(h->api->db);
	enum MHD_Result ret;
	int keyed = 0;

	if (is_get) {
		keyed = cache_key(c, url, key, sizeof(key));
		if (keyed && cache_answer(h, c, r, key, gen, inm, &ret))
			return ret;
	}
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = url;
	req.body = buf_str(&r->body);
	req.body_len = r->body.len;
	req.content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_CONTENT_TYPE);
	req.user = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Outrigger-User");
	req.last_event_id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
	req.remote = r->remote;
	req.query = query_arg;
	req.ctx = c;
	api_handle(h->api, &req, &resp);
	if (resp.sse_run > 0 && h->sse != NULL) {
		api_resp_free(&resp);
		mr = sse_response(h->sse, c, resp.sse_run, resp.sse_after);
		if (mr == NULL)
			return MHD_NO;
		ret = queue(c, r, 200, mr, 0);
		MHD_destroy_response(mr);
		return ret;
	}

	if (!(resp.cacheable && is_get))
		return answer(c, r, resp.status, resp.body, resp.len,
			      resp.status == 204 ? NULL : "application/json",
			      NULL, resp.location, resp.allow);
	/* A cacheable 200: tag it with the store generation it was read at. */
	snprintf(etag, sizeof(etag), "\"g%lu\"", gen);
	mr = MHD_create_response_from_buffer(resp.len, resp.body,
					     MHD_RESPMEM_MUST_FREE);
	if (mr == NULL) {
		api_resp_free(&resp);
		return MHD_NO;
	}
	MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(mr, MHD_HTTP_HEADER_ETAG, etag);
	MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(mr, "X-Content-Type-Options", "nosniff");
	if (inm != NULL && strcmp(inm, etag) == 0)
		ret = answer_not_modified(c, r, etag);
	else
		ret = queue(c, r, 200, mr, resp.len);
	if (keyed)
		cache_store(h, key, gen, mr, resp.len, etag); /* the cache keeps our reference */
	else
		MHD_destroy_response(mr);
	return ret;
}

/* ---- static files ----------------------------------------------------- */

static enum MHD_Result
serve_file(struct http *h, struct MHD_Connection *c, struct req *r,
	   const char *url, const char *method)
{
	struct MHD_Response *resp;
	struct web_file f;
	const char *inm;
	enum MHD_Result ret;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return answer_error(c, r, OR_E_METHOD,
				    "the dashboard's files answer GET and HEAD only",
				    "GET, HEAD");
	if (web_open(h->web, url, &f, NULL) != OR_OK)
		return answer_error(c, r, OR_E_NOTFOUND, "no such page", NULL);
	inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
					  MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (inm != NULL && strcmp(inm, f.etag) == 0) {
		close(f.fd);
		return answer_not_modified(c, r, f.etag);
	}
	resp = MHD_create_response_from_fd((uint64_t)f.size, f.fd);
	if (resp == NULL) {
		close(f.fd);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, f.content_type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, f.etag);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	ret = queue(c, r, 200, resp, (unsigned long long)f.size);
	MHD_destroy_response(resp);
	return ret;
}

/* ---- the access handler ------------------------------------------------ */

static void
remote_addr(struct MHD_Connection *c, char *out, size_t size)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;

	snprintf(out, size, "-");
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL)
		return;
	sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
			  out, (socklen_t)size);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
			  out, (socklen_t)size);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
	   const char *method, const char *version, const char *upload,
	   size_t *upload_size, void **con_cls)
{
	struct http *h = cls;
	struct req *r = *con_cls;
	const char *cl;

	(void)version;
	if (r == NULL) {
		r = calloc(1, sizeof(*r));
		if (r == NULL)
			return MHD_NO;
		buf_init(&r->body, API_BODY_MAX);
		clock_gettime(CLOCK_MONOTONIC, &r->start);
		snprintf(r->method, sizeof(r->method), "%s", method);
		snprintf(r->url, sizeof(r->url), "%s", url);
		remote_addr(c, r->remote, sizeof(r->remote));
		*con_cls = r;
		atomic_fetch_add(&h->inflight, 1);
		/* A declared length over the limit is refused before reading. */
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL && strtoull(cl, NULL, 10) > API_BODY_MAX)
			return answer_error(c, r, OR_E_TOOLARGE,
					    "the body is larger than 1 MiB", NULL);
		return MHD_YES;
	}
	if (*upload_size != 0) {
		if (!r->too_large &&
		    buf_append(&r->body, upload, *upload_size) != OR_OK) {
			r->too_large = 1;
			buf_free(&r->body);
		}
		if (r->too_large) {
			r->discarded += *upload_size;
			if (r->discarded > DISCARD_MAX)
				return MHD_NO;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->too_large)
		return answer_error(c, r, OR_E_TOOLARGE,
				    "the body is larger than 1 MiB", NULL);
	if (strncmp(url, "/api/", 5) == 0 || strcmp(url, "/api") == 0)
		return serve_api(h, c, r, url, method);
	return serve_file(h, c, r, url, method);
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
	     enum MHD_RequestTerminationCode toe)
{
	struct http *h = cls;
	struct req *r = *con_cls;
	struct timespec now;
	double ms;

	(void)c;
	if (r == NULL)
		return;
	if (h->access_log) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (double)(now.tv_sec - r->start.tv_sec) * 1e3 +
		     (double)(now.tv_nsec - r->start.tv_nsec) / 1e6;
		log_access(r->remote, r->method, r->url,
			   toe == MHD_REQUEST_TERMINATED_COMPLETED_OK || r->status != 0
				   ? r->status
				   : 0,
			   r->bytes, ms);
	}
	buf_free(&r->body);
	free(r);
	*con_cls = NULL;
	atomic_fetch_sub(&h->inflight, 1);
}

/* MHD's own messages.  Clients that leave mid-answer are routine, not
 * errors, so those are logged at debug level only. */
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
	if (strstr(msg, "Failed to send") != NULL || strstr(msg, "closed") != NULL)
		log_msg(LOG_DEBUG, "http: %s", msg);
	else
		log_warn("http: %s", msg);
}

/* ---- start and stop -------------------------------------------------- */

static or_rc
parse_listen(const char *listen, struct sockaddr_storage *ss, int *v6,
	     struct or_err *err)
{
	struct addrinfo hints, *res = NULL;
	char host[256];
	const char *colon, *port, *h0;
	size_t hlen;
	int rc;

	colon = strrchr(listen, ':');
	if (colon == NULL || colon[1] == '\0')
		goto bad;
	port = colon + 1;
	h0 = listen;
	hlen = (size_t)(colon - listen);
	if (hlen >= 2 && listen[0] == '[' && listen[hlen - 1] == ']') {
		h0++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(host) || strspn(port, "0123456789") != strlen(port) ||
	    strlen(port) > 5 || atoi(port) > 65535)
		goto bad;
	memcpy(host, h0, hlen);
	host[hlen] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0 || res == NULL)
		return or_fail(err, OR_E_INVALID, NULL, "listen",
			       "cannot listen on '%s': %s", listen, gai_strerror(rc));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*v6 = res->ai_family == AF_INET6;
	freeaddrinfo(res);
	return OR_OK;
bad:
	return or_fail(err, OR_E_INVALID, NULL, "listen",
		       "--listen wants ADDR:PORT, e.g. 127.0.0.1:8080, not '%s'",
		       listen);
}

or_rc
http_check_listen(const char *listen, struct or_err *err)
{
	struct sockaddr_storage ss;
	int v6;

	return parse_listen(listen, &ss, &v6, err);
}

or_rc
http_start(const struct http_cfg *cfg, struct api *api, const struct web *web,
	   struct http **out, struct or_err *err)
{
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *di;
	unsigned flags;
	struct http *h;
	int v6 = 0;
	or_rc rc;

	rc = parse_listen(cfg->listen, &ss, &v6, err);
	if (rc != OR_OK)
		return rc;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	h->api = api;
	h->web = web;
	h->access_log = cfg->access_log;
	h->sse = cfg->sse;
	pthread_mutex_init(&h->cache_lock, NULL);
	flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
		MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
	h->d = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, h,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h, /* first, or MHD warns */
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_conns,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_per_ip,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
		MHD_OPTION_END);
	if (h->d == NULL) {
		pthread_mutex_destroy(&h->cache_lock);
		free(h);
		return or_fail(err, OR_E_IO, NULL, "listen",
			       "cannot listen on %s (address in use, or not "
			       "an address of this machine?)", cfg->listen);
	}
	di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = di != NULL ? di->port : 0;
	*out = h;
	return OR_OK;
}

unsigned short
http_port(const struct http *h)
{
	return h->port;
}

void
http_stop(struct http *h, unsigned grace_ms)
{
	MHD_socket lsock;
	unsigned waited = 0;

	if (h == NULL)
		return;
	/* Event streams end first: they would never finish by themselves. */
	sse_shutdown(h->sse);
	lsock = MHD_quiesce_daemon(h->d);
	/* Refuse new clients now: a quiesced socket left open would let the
	 * kernel accept connections that nobody will ever answer.  The socket
	 * itself must stay open until MHD_stop_daemon (MHD's rule). */
	if (lsock != MHD_INVALID_SOCKET)
		shutdown(lsock, SHUT_RDWR);
	while (atomic_load(&h->inflight) > 0 && waited < grace_ms) {
		usleep(10000);
		waited += 10;
	}
	if (atomic_load(&h->inflight) > 0)
		log_warn("http: stopping with %d request(s) unfinished",
			 atomic_load(&h->inflight));
	MHD_stop_daemon(h->d);
	if (lsock != MHD_INVALID_SOCKET)
		close(lsock);
	cache_clear(h);
	pthread_mutex_destroy(&h->cache_lock);
	free(h);
}

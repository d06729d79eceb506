/*
 * k8s.c - the product's Kubernetes client (see k8s.h and the kube_* entries
 * of include/outrigger/plugin.h).
 *
 * What kubectl does for `apply --server-side`, `delete` and `wait`, with a
 * GKE cluster's credentials: HTTPS to the endpoint, trusting only the
 * cluster's own CA, the provider's Google access token as bearer (what
 * gke-gcloud-auth-plugin hands kubectl).  Kinds are mapped to resources by
 * discovery of their group/version (GET /api/v1, /apis/G/V), cached per
 * client.
 *
 * Must never: send the token anywhere but the cluster's endpoint, put it in
 * a log line or an error, trust the system's CA store for the cluster, or
 * wait without watching cancelled().
 */
#include "k8s.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "host.h"
#include "lcurl.h"
#include "ydoc.h"

#define K8S_CA_MAX (64u << 10)		/* a CA bundle larger than this is not a CA */
#define K8S_RESPONSE_MAX (32u << 20)	/* a big CRD is ~1 MiB; lists stay well below */
#define K8S_TRIES 6			/* attempts of one request */
#define K8S_TRY_TIMEOUT_MS 30000L
#define K8S_KIND_WAIT_MS 60000L		/* for a CRD applied by an earlier document */
#define K8S_KIND_GRACE_MS 10000L	/* for a kind nothing here defines */
#define K8S_WAIT_DEFAULT_MS (10L * 60 * 1000)
#define K8S_POLL_MS 1000L
#define K8S_PROGRESS_MS 5000L

struct or_kube {
	or_host *h;
	char base[320];		/* "https://HOST[:PORT]", no trailing slash */
	char *ca;		/* PEM, NUL-terminated */
	size_t ca_len;
	const struct lcurl *L;
	CURL *curl;		/* kept for its connection */
	json_t *kinds;		/* "apiVersion\nkind" -> {"r": plural, "ns": bool} */
};

#define API (&step_host_api)

/* ---- small helpers ------------------------------------------------------ */

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static const char *
jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static int
b64val(int ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+' || ch == '-')
		return 62;
	if (ch == '/' || ch == '_')
		return 63;
	return -1;
}

/* Decode base64 (standard or URL alphabet, whitespace and padding
 * ignored) into a new NUL-terminated string; NULL when s is not base64. */
static char *
b64_decode(const char *s, size_t *out_len)
{
	size_t n = strlen(s), o = 0;
	unsigned acc = 0;
	int bits = 0, v;
	char *out = malloc(n / 4 * 3 + 4);

	if (out == NULL)
		return NULL;
	for (; *s != '\0'; s++) {
		if (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t' || *s == '=')
			continue;
		v = b64val((unsigned char)*s);
		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	*out_len = o;
	return out;
}

/* Percent-encode one path segment (a name or a namespace) into b. */
static or_rc
path_seg(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char enc[4];
	or_rc rc = OR_OK;

	for (; *s != '\0' && rc == OR_OK; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
		    ch == '~' || ch == ':' || ch == '@') {
			rc = buf_append(b, s, 1);
		} else {
			enc[0] = '%';
			enc[1] = hex[ch >> 4];
			enc[2] = hex[ch & 15];
			rc = buf_append(b, enc, 3);
		}
	}
	return rc;
}

/* The API server's own message of a non-2xx answer (a Status object), or
 * "HTTP N" with the start of the body. */
static void
k8s_message(const struct or_http_response *r, char *out, size_t size)
{
	json_t *st = r->body != NULL ? json_loads(r->body, 0, NULL) : NULL;
	const char *m = jstr(st, "message");
	char clean[400];

	if (m != NULL && m[0] != '\0') {
		snprintf(out, size, "%s", m);
	} else {
		ascii_clean(clean, sizeof(clean), r->body != NULL ? r->body : "", NULL);
		snprintf(out, size, "HTTP %ld%s%s", r->status, clean[0] ? ": " : "", clean);
	}
	json_decref(st);
}

static void
resp_clear(struct or_http_response *r)
{
	free(r->body);
	free(r->content_type);
	memset(r, 0, sizeof(*r));
}

/* ---- open / close ------------------------------------------------------- */

or_kube *
k8s_open(or_host *h, const char *endpoint, const char *ca_pem)
{
	or_kube *k = NULL;
	const char *hp;
	char why[256], *ca = NULL;
	size_t n, i, ca_len = 0;

	if (endpoint == NULL || endpoint[0] == '\0') {
		API->fail(h, "invalid_input", "the cluster endpoint is empty");
		return NULL;
	}
	if (ca_pem == NULL || ca_pem[0] == '\0') {
		API->fail(h, "invalid_input", "the cluster CA certificate is empty");
		return NULL;
	}
	hp = endpoint;
	if (strncmp(hp, "https://", 8) == 0) {
		hp += 8;
	} else if (strstr(hp, "://") != NULL) {
		/* The token must never travel in clear. */
		API->fail(h, "invalid_input",
			  "the cluster endpoint must be https:// or a bare address");
		return NULL;
	}
	n = strlen(hp);
	while (n > 0 && hp[n - 1] == '/')
		n--;
	if (n == 0 || n > 255) {
		API->fail(h, "invalid_input", "the cluster endpoint is not an address");
		return NULL;
	}
	for (i = 0; i < n; i++) {
		char ch = hp[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == ':' ||
		      ch == '[' || ch == ']')) {
			API->fail(h, "invalid_input",
				  "the cluster endpoint is not an address[:port]");
			return NULL;
		}
	}
	if (strlen(ca_pem) > K8S_CA_MAX * 2) {
		API->fail(h, "invalid_input", "the cluster CA certificate is too large");
		return NULL;
	}
	/* PEM as is, or GKE's masterAuth.clusterCaCertificate: base64 of it. */
	if (strstr(ca_pem, "-----BEGIN CERTIFICATE-----") != NULL) {
		ca = strdup(ca_pem);
		ca_len = ca != NULL ? strlen(ca) : 0;
	} else {
		ca = b64_decode(ca_pem, &ca_len);
		if (ca != NULL && strstr(ca, "-----BEGIN CERTIFICATE-----") == NULL) {
			free(ca);
			API->fail(h, "invalid_input",
				  "the cluster CA certificate is neither PEM nor base64 of PEM");
			return NULL;
		}
	}
	if (ca == NULL) {
		API->fail(h, "invalid_input",
			  "the cluster CA certificate is neither PEM nor base64 of PEM");
		return NULL;
	}
	k = calloc(1, sizeof(*k));
	if (k == NULL) {
		free(ca);
		API->fail(h, "nomem", "out of memory");
		return NULL;
	}
	k->h = h;
	k->ca = ca;
	k->ca_len = ca_len;
	snprintf(k->base, sizeof(k->base), "https://%.*s", (int)n, hp);
	k->kinds = json_object();
	k->L = lcurl_get(why, sizeof(why));
	if (k->L == NULL || k->kinds == NULL) {
		API->fail(h, "kubernetes", "Kubernetes client: %s",
			  k->L == NULL ? why : "out of memory");
		k8s_close(k);
		return NULL;
	}
	return k;
}

void
k8s_close(or_kube *k)
{
	if (k == NULL)
		return;
	if (k->curl != NULL)
		k->L->easy_cleanup(k->curl);
	json_decref(k->kinds);
	free(k->ca);
	free(k);
}

/* ---- one request, with retry -------------------------------------------- */

struct sink {
	struct buf b;
	int too_big;
};

static size_t
on_data(char *p, size_t sz, size_t n, void *ud)
{
	struct sink *s = ud;

	if (buf_append(&s->b, p, sz * n) != OR_OK) {
		s->too_big = 1;
		return 0;
	}
	return sz * n;
}

static int
on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	or_kube *k = ud;

	(void)a;
	(void)b;
	(void)c;
	(void)d;
	return API->cancelled(k->h) != 0;
}

/* Connection failures worth another try: resets, refusals while the API
 * server restarts, timeouts.  A certificate that does not verify is not. */
static int
transient(CURLcode cc)
{
	return cc == CURLE_COULDNT_CONNECT || cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR ||
	       cc == CURLE_GOT_NOTHING || cc == CURLE_OPERATION_TIMEDOUT ||
	       cc == CURLE_PARTIAL_FILE || cc == CURLE_SSL_CONNECT_ERROR ||
	       cc == CURLE_HTTP2 || cc == CURLE_HTTP2_STREAM;
}

/* Why a request got no answer: code and message for fail(), or
 * already_failed when a callee (gcp_token) has called fail() itself. */
struct rq_err {
	char code[32];
	char msg[700];
	int already_failed;
};

static void rq_set(struct rq_err *e, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
rq_set(struct rq_err *e, const char *code, const char *fmt, ...)
{
	va_list ap;

	snprintf(e->code, sizeof(e->code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

/* One request with retry (see k8s_request); on -1, e says why and fail()
 * has not been called (unless e->already_failed). */
static int
request(or_kube *k, const char *method, const char *path, const char *content_type,
	const char *body, struct or_http_response *resp, struct rq_err *e)
{
	struct curl_blob blob;
	struct curl_slist *hl = NULL;
	struct sink s;
	struct buf hdr, url;
	const char *token, *why;
	char *ctype = NULL;
	long status = 0, backoff = 250, wait;
	CURLcode cc = CURLE_OK;
	int i, rc = -1;

	memset(resp, 0, sizeof(*resp));
	memset(e, 0, sizeof(*e));
	buf_init(&s.b, K8S_RESPONSE_MAX);
	buf_init(&hdr, 8192);
	buf_init(&url, 8192);
	s.too_big = 0;
	if (path == NULL || path[0] != '/' || method == NULL) {
		rq_set(e, "invalid_input", "Kubernetes request: the path must start with '/'");
		goto out;
	}
	if (buf_printf(&url, "%s%s", k->base, path) != OR_OK) {
		rq_set(e, "invalid_input", "Kubernetes request: the path is too long");
		goto out;
	}
	if (k->curl == NULL) {
		k->curl = k->L->easy_init();
		if (k->curl == NULL) {
			rq_set(e, "kubernetes", "Kubernetes client: curl_easy_init failed");
			goto out;
		}
	}
	for (i = 0; i < K8S_TRIES; i++) {
		if (i > 0) {
			/* Exponential backoff with jitter, capped at 8 s. */
			wait = backoff / 2 + random() % (backoff / 2 + 1);
			API->log(k->h, OR_LOG_WARN, "Kubernetes %s %s: %s; try %d of %d in %ld ms",
				 method, path,
				 status != 0 ? "the API server is busy or failing"
					     : k->L->easy_strerror(cc),
				 i + 1, K8S_TRIES, wait);
			if (API->sleep_ms(k->h, wait))
				break;
			backoff = backoff * 2 > 8000 ? 8000 : backoff * 2;
		}
		/* The token is asked for per try: gcp_token refreshes it when it
		 * nears expiry. */
		token = gcp_token(k->h);
		if (token == NULL) {
			e->already_failed = 1;
			goto out;
		}
		k->L->slist_free_all(hl);
		hl = NULL;
		buf_reset(&hdr);
		if (buf_printf(&hdr, "Authorization: Bearer %s", token) != OR_OK) {
			rq_set(e, "kubernetes", "Kubernetes client: the token is too long");
			goto out;
		}
		hl = k->L->slist_append(hl, hdr.data);
		memset(hdr.data, 0, hdr.len);
		buf_reset(&hdr);
		buf_printf(&hdr, "Content-Type: %s",
			   content_type != NULL ? content_type : "application/json");
		if (hl != NULL)
			hl = k->L->slist_append(hl, hdr.data);
		if (hl != NULL)
			hl = k->L->slist_append(hl, "Accept: application/json");
		if (hl != NULL)
			hl = k->L->slist_append(hl, "User-Agent: outrigger");
		if (hl == NULL) {
			rq_set(e, "nomem", "out of memory");
			goto out;
		}
		buf_reset(&s.b);
		s.too_big = 0;
		blob.data = k->ca;
		blob.len = k->ca_len;
		blob.flags = CURL_BLOB_COPY;
		k->L->easy_setopt(k->curl, CURLOPT_URL, url.data);
		k->L->easy_setopt(k->curl, CURLOPT_PROTOCOLS_STR, "https");
		k->L->easy_setopt(k->curl, CURLOPT_CAINFO_BLOB, &blob);
		k->L->easy_setopt(k->curl, CURLOPT_CAPATH, NULL); /* the cluster CA only */
		k->L->easy_setopt(k->curl, CURLOPT_SSL_VERIFYPEER, 1L);
		k->L->easy_setopt(k->curl, CURLOPT_SSL_VERIFYHOST, 2L);
		k->L->easy_setopt(k->curl, CURLOPT_HTTPHEADER, hl);
		k->L->easy_setopt(k->curl, CURLOPT_WRITEFUNCTION, on_data);
		k->L->easy_setopt(k->curl, CURLOPT_WRITEDATA, &s);
		k->L->easy_setopt(k->curl, CURLOPT_TIMEOUT_MS, K8S_TRY_TIMEOUT_MS);
		k->L->easy_setopt(k->curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
		k->L->easy_setopt(k->curl, CURLOPT_NOSIGNAL, 1L);
		k->L->easy_setopt(k->curl, CURLOPT_NOPROGRESS, 0L);
		k->L->easy_setopt(k->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
		k->L->easy_setopt(k->curl, CURLOPT_XFERINFODATA, k);
		/* One handle serves every verb: HTTPGET drops the last body. */
		k->L->easy_setopt(k->curl, CURLOPT_HTTPGET, 1L);
		if (body != NULL) {
			k->L->easy_setopt(k->curl, CURLOPT_POSTFIELDS, body);
			k->L->easy_setopt(k->curl, CURLOPT_POSTFIELDSIZE_LARGE,
					  (curl_off_t)strlen(body));
		}
		k->L->easy_setopt(k->curl, CURLOPT_CUSTOMREQUEST, method);
		cc = k->L->easy_perform(k->curl);
		status = 0;
		if (cc == CURLE_OK) {
			k->L->easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &status);
			ctype = NULL;
			k->L->easy_getinfo(k->curl, CURLINFO_CONTENT_TYPE, &ctype);
			free(resp->content_type);
			resp->content_type = ctype != NULL ? strdup(ctype) : NULL;
		}
		if (s.too_big) {
			rq_set(e, "too_large", "Kubernetes %s %s: the answer is larger than %u bytes",
			       method, path, K8S_RESPONSE_MAX);
			goto out;
		}
		if (cc == CURLE_OK && status != 429 && status < 500)
			break;
		if (API->cancelled(k->h))
			break;
		if (cc != CURLE_OK && !transient(cc))
			break;
	}
	if (API->cancelled(k->h)) {
		rq_set(e, "cancelled", "Kubernetes %s %s: cancelled", method, path);
		goto out;
	}
	if (cc != CURLE_OK) {
		why = k->L->easy_strerror(cc);
		if (cc == CURLE_PEER_FAILED_VERIFICATION)
			why = "the API server's certificate is not signed by the cluster's CA "
			      "or does not name its address";
		else if (cc == CURLE_SSL_CACERT_BADFILE)
			why = "the cluster CA certificate is not a valid PEM certificate";
		rq_set(e, "kubernetes", "Kubernetes %s %s%s: %s", method, k->base, path, why);
		goto out;
	}
	/* 429 and 5xx after the last try are answers too: the caller reads them. */
	resp->status = status;
	resp->body_len = s.b.len;
	resp->body = buf_detach(&s.b);
	if (resp->body == NULL) {
		rq_set(e, "nomem", "out of memory");
		goto out;
	}
	rc = 0;
out:
	if (hl != NULL)
		k->L->slist_free_all(hl);
	if (rc != 0)
		resp_clear(resp);
	buf_free(&s.b);
	buf_free(&hdr);
	buf_free(&url);
	return rc;
}

int
k8s_request(or_kube *k, const char *method, const char *path, const char *content_type,
	    const char *body, struct or_http_response *resp)
{
	struct rq_err e;

	if (request(k, method, path, content_type, body, resp, &e) == 0)
		return 0;
	if (!e.already_failed)
		API->fail(k->h, e.code, "%s", e.msg);
	return -1;
}

/* GET path into *obj (new reference).  Returns the status (200, 404, ...)
 * or -1 when no answer came (fail() set). */
static long
get_json(or_kube *k, const char *path, json_t **obj)
{
	struct or_http_response r;
	long st;

	*obj = NULL;
	if (k8s_request(k, "GET", path, NULL, NULL, &r) != 0)
		return -1;
	st = r.status;
	if (st >= 200 && st < 300)
		*obj = json_loads(r.body, 0, NULL);
	if (st >= 200 && st < 300 && *obj == NULL) {
		API->fail(k->h, "kubernetes", "Kubernetes GET %s: the answer is not JSON", path);
		st = -1;
	}
	resp_clear(&r);
	return st;
}

/* ---- discovery ---------------------------------------------------------- */

static void
kind_key(char *out, size_t size, const char *api_version, const char *kind)
{
	snprintf(out, size, "%s\n%s", api_version, kind);
}

/* Fetch the resource list of one group/version into the cache.  1 when the
 * API server serves the group/version, 0 when it does not (404), -1 on
 * error (fail() set). */
static int
discover_gv(or_kube *k, const char *api_version)
{
	char path[400], key[400];
	json_t *list = NULL, *res, *r;
	size_t i;
	long st;

	if (strcmp(api_version, "v1") == 0)
		snprintf(path, sizeof(path), "/api/v1");
	else if (strchr(api_version, '/') != NULL)
		snprintf(path, sizeof(path), "/apis/%s", api_version);
	else
		return 0; /* "apps" without a version, or a typo: nothing serves it */
	st = get_json(k, path, &list);
	if (st < 0)
		return -1;
	if (st == 404 || st == 503) /* 503: an aggregated API not ready yet */
		return 0;
	if (st != 200) {
		API->fail(k->h, "kubernetes", "discovery of %s: HTTP %ld", api_version, st);
		return -1;
	}
	res = json_object_get(list, "resources");
	json_array_foreach(res, i, r) {
		const char *name = jstr(r, "name"), *kind = jstr(r, "kind");

		if (name == NULL || kind == NULL || strchr(name, '/') != NULL)
			continue; /* subresources (deployments/scale) */
		kind_key(key, sizeof(key), api_version, kind);
		json_object_set_new(k->kinds, key,
				    json_pack("{s:s, s:b}", "r", name, "ns",
					      json_is_true(json_object_get(r, "namespaced"))));
	}
	json_decref(list);
	return 1;
}

/* The resource (plural) and scope of apiVersion+kind.  wait_ms > 0 waits
 * that long for the kind to appear (a CRD being established).  0 when
 * found; 1 when the server has no such kind (message in why); -1 on error
 * or cancel (fail() set). */
static int
resolve(or_kube *k, const char *api_version, const char *kind, long wait_ms,
	const char **resource, int *namespaced, char *why, size_t why_size)
{
	char key[400];
	json_t *e;
	long start = now_ms(), last_log = start;
	int first = 1;

	kind_key(key, sizeof(key), api_version, kind);
	for (;;) {
		e = json_object_get(k->kinds, key);
		if (e != NULL) {
			*resource = jstr(e, "r");
			*namespaced = json_is_true(json_object_get(e, "ns"));
			return 0;
		}
		if (!first) {
			if (now_ms() - start >= wait_ms)
				break;
			if (now_ms() - last_log >= K8S_PROGRESS_MS) {
				API->log(k->h, OR_LOG_INFO,
					 "waiting for the API server to serve kind %s of %s",
					 kind, api_version);
				last_log = now_ms();
			}
			if (API->sleep_ms(k->h, K8S_POLL_MS)) {
				API->fail(k->h, "cancelled", "cancelled while waiting for kind %s",
					  kind);
				return -1;
			}
		}
		first = 0;
		if (discover_gv(k, api_version) < 0)
			return -1;
		if (wait_ms <= 0 && json_object_get(k->kinds, key) == NULL)
			break;
	}
	snprintf(why, why_size, "no matches for kind \"%s\" in version \"%s\"", kind,
		 api_version);
	return 1;
}

/* ---- documents ---------------------------------------------------------- */

/* One object to apply or delete, and where it came from. */
struct obj {
	json_t *doc;		/* borrowed from the list */
	int number;		/* document number in the text */
};

/* Parse yaml into objects (a List's items are objects of the same document
 * number).  Returns a new array of [doc, number] pairs, or NULL with fail()
 * set. */
static json_t *
load_objects(or_kube *k, const char *yaml)
{
	struct or_err err;
	json_t *docs = NULL, *where = NULL, *out = json_array(), *d, *it;
	const char *kind;
	size_t i, j;
	int number;

	if (yaml == NULL || out == NULL) {
		API->fail(k->h, "invalid_input", "no YAML to apply");
		json_decref(out);
		return NULL;
	}
	or_err_clear(&err);
	if (ydoc_load(yaml, strlen(yaml), &docs, &where, &err) != OR_OK) {
		API->fail(k->h, "invalid_input", "%s", err.message);
		json_decref(out);
		return NULL;
	}
	json_array_foreach(docs, i, d) {
		number = (int)json_integer_value(json_array_get(json_array_get(where, i), 0));
		if (!json_is_object(d)) {
			API->fail(k->h, "invalid_input",
				  "document %d (line %d): not a Kubernetes object (a mapping)", number,
				  (int)json_integer_value(json_array_get(json_array_get(where, i), 1)));
			goto bad;
		}
		kind = jstr(d, "kind");
		/* kubectl flattens v1 List (and FooList) documents. */
		if (kind != NULL && strlen(kind) >= 4 && strcmp(kind + strlen(kind) - 4, "List") == 0 &&
		    json_is_array(json_object_get(d, "items"))) {
			json_array_foreach(json_object_get(d, "items"), j, it)
				json_array_append_new(out, json_pack("[Oi]", it, number));
			continue;
		}
		json_array_append_new(out, json_pack("[Oi]", d, number));
	}
	json_decref(docs);
	json_decref(where);
	return out;
bad:
	json_decref(docs);
	json_decref(where);
	json_decref(out);
	return NULL;
}

/* "Deployment default/frontend" or "Namespace istio-system". */
static void
describe(char *out, size_t size, const json_t *doc, const char *ns)
{
	const char *kind = jstr(doc, "kind"), *name = jstr(json_object_get(doc, "metadata"), "name");

	if (ns != NULL && ns[0] != '\0')
		snprintf(out, size, "%s %s/%s", kind != NULL ? kind : "(no kind)", ns,
			 name != NULL ? name : "(no name)");
	else
		snprintf(out, size, "%s %s", kind != NULL ? kind : "(no kind)",
			 name != NULL ? name : "(no name)");
}

/* The object's URL path (without query) into b, and its namespace into
 * *ns_out (borrowed; NULL when cluster-scoped).  0, 1 when the kind is
 * unknown (why set), -1 on error. */
static int
object_path(or_kube *k, json_t *doc, const char *default_ns, long kind_wait,
	    struct buf *b, const char **ns_out, char *why, size_t why_size)
{
	const char *av = jstr(doc, "apiVersion"), *kind = jstr(doc, "kind"), *resource, *ns;
	json_t *md = json_object_get(doc, "metadata");
	const char *name = jstr(md, "name");
	int namespaced, r;

	*ns_out = NULL;
	if (av == NULL || kind == NULL) {
		snprintf(why, why_size, "apiVersion and kind are required");
		return 1;
	}
	if (name == NULL || name[0] == '\0') {
		snprintf(why, why_size, "metadata.name is required");
		return 1;
	}
	r = resolve(k, av, kind, kind_wait, &resource, &namespaced, why, why_size);
	if (r != 0)
		return r;
	ns = jstr(md, "namespace");
	if (namespaced && (ns == NULL || ns[0] == '\0'))
		ns = default_ns != NULL && default_ns[0] != '\0' ? default_ns : "default";
	buf_reset(b);
	buf_printf(b, "%s%s", strcmp(av, "v1") == 0 ? "/api/" : "/apis/", av);
	if (namespaced) {
		buf_append_str(b, "/namespaces/");
		path_seg(b, ns);
		*ns_out = ns;
	}
	buf_printf(b, "/%s/", resource);
	if (path_seg(b, name) != OR_OK) {
		snprintf(why, why_size, "the name is too long");
		return 1;
	}
	return 0;
}

/* Whether an earlier document of this text is a CRD for kind in group. */
static int
defined_by_earlier(json_t *objs, size_t upto, const char *api_version, const char *kind)
{
	const char *slash = strchr(api_version, '/');
	size_t i, glen;
	json_t *p, *spec;

	if (slash == NULL)
		return 0;
	glen = (size_t)(slash - api_version);
	for (i = 0; i < upto; i++) {
		p = json_array_get(json_array_get(objs, i), 0);
		if (jstr(p, "kind") == NULL ||
		    strcmp(jstr(p, "kind"), "CustomResourceDefinition") != 0)
			continue;
		spec = json_object_get(p, "spec");
		if (jstr(spec, "group") != NULL && strlen(jstr(spec, "group")) == glen &&
		    strncmp(jstr(spec, "group"), api_version, glen) == 0 &&
		    jstr(json_object_get(spec, "names"), "kind") != NULL &&
		    strcmp(jstr(json_object_get(spec, "names"), "kind"), kind) == 0)
			return 1;
	}
	return 0;
}

int
k8s_apply(or_kube *k, const char *yaml, const char *default_ns)
{
	struct or_http_response r;
	struct rq_err e;
	json_t *objs, *pair, *doc = NULL, *md;
	struct buf path;
	const char *ns;
	char what[300], why[600], *body = NULL;
	int count = 0, number, res, rc = -1;
	size_t i;
	long kind_wait;

	memset(&r, 0, sizeof(r));
	buf_init(&path, 4096);
	objs = load_objects(k, yaml);
	if (objs == NULL)
		goto out;
	json_array_foreach(objs, i, pair) {
		doc = json_deep_copy(json_array_get(pair, 0));
		number = (int)json_integer_value(json_array_get(pair, 1));
		if (doc == NULL) {
			API->fail(k->h, "nomem", "out of memory");
			goto out;
		}
		kind_wait = jstr(doc, "apiVersion") != NULL && jstr(doc, "kind") != NULL &&
					    defined_by_earlier(objs, i, jstr(doc, "apiVersion"),
							       jstr(doc, "kind"))
				    ? K8S_KIND_WAIT_MS
				    : K8S_KIND_GRACE_MS;
		res = object_path(k, doc, default_ns, kind_wait, &path, &ns, why, sizeof(why));
		describe(what, sizeof(what), doc, ns);
		if (res < 0)
			goto out;
		if (res > 0) {
			API->fail(k->h, "kubernetes", "document %d (%s): %s", number, what, why);
			goto out;
		}
		/* The body names the namespace the URL names (a server-side
		 * apply body may not disagree with its URL). */
		md = json_object_get(doc, "metadata");
		if (ns != NULL)
			json_object_set_new(md, "namespace", json_string(ns));
		else
			json_object_del(md, "namespace");
		body = json_dumps(doc, JSON_COMPACT);
		if (body == NULL || buf_append_str(&path, "?fieldManager=outrigger&force=true") != OR_OK) {
			API->fail(k->h, "nomem", "out of memory");
			goto out;
		}
		if (request(k, "PATCH", path.data, "application/apply-patch+yaml", body, &r, &e) !=
		    0) {
			if (!e.already_failed)
				API->fail(k->h, e.code, "document %d (%s): %s", number, what, e.msg);
			goto out;
		}
		if (r.status < 200 || r.status >= 300) {
			k8s_message(&r, why, sizeof(why));
			API->fail(k->h, "kubernetes", "document %d (%s): %s", number, what, why);
			goto out;
		}
		API->log(k->h, OR_LOG_INFO, "applied %s", what);
		count++;
		resp_clear(&r);
		free(body);
		body = NULL;
		json_decref(doc);
		doc = NULL;
	}
	rc = count;
out:
	resp_clear(&r);
	free(body);
	json_decref(doc);
	json_decref(objs);
	buf_free(&path);
	return rc;
}

int
k8s_delete(or_kube *k, const char *yaml, const char *default_ns)
{
	struct or_http_response r;
	struct rq_err e;
	json_t *objs, *pair, *doc;
	struct buf path;
	const char *ns;
	char what[300], why[600];
	int count = 0, number, res, rc = -1;
	size_t i;

	memset(&r, 0, sizeof(r));
	buf_init(&path, 4096);
	objs = load_objects(k, yaml);
	if (objs == NULL)
		goto out;
	for (i = json_array_size(objs); i-- > 0;) {
		pair = json_array_get(objs, i);
		doc = json_array_get(pair, 0);
		number = (int)json_integer_value(json_array_get(pair, 1));
		res = object_path(k, doc, default_ns, 0, &path, &ns, why, sizeof(why));
		describe(what, sizeof(what), doc, ns);
		if (res < 0)
			goto out;
		if (res > 0) {
			if (jstr(doc, "apiVersion") != NULL && jstr(doc, "kind") != NULL &&
			    jstr(json_object_get(doc, "metadata"), "name") != NULL) {
				/* Its CRD is gone, and with it every such object. */
				API->log(k->h, OR_LOG_INFO, "%s: already gone (%s)", what, why);
				continue;
			}
			API->fail(k->h, "kubernetes", "document %d (%s): %s", number, what, why);
			goto out;
		}
		if (buf_append_str(&path, "?propagationPolicy=Background") != OR_OK) {
			API->fail(k->h, "nomem", "out of memory");
			goto out;
		}
		if (request(k, "DELETE", path.data, NULL, NULL, &r, &e) != 0) {
			if (!e.already_failed)
				API->fail(k->h, e.code, "document %d (%s): %s", number, what, e.msg);
			goto out;
		}
		if (r.status == 404) {
			API->log(k->h, OR_LOG_INFO, "%s: already gone", what);
		} else if (r.status >= 200 && r.status < 300) {
			API->log(k->h, OR_LOG_INFO, "deleted %s", what);
			count++;
		} else {
			k8s_message(&r, why, sizeof(why));
			API->fail(k->h, "kubernetes", "document %d (%s): %s", number, what, why);
			goto out;
		}
		resp_clear(&r);
	}
	rc = count;
out:
	resp_clear(&r);
	json_decref(objs);
	buf_free(&path);
	return rc;
}

/* ---- waiting ------------------------------------------------------------ */

/* One look at a condition: 1 met, 0 not yet (state says how far), -1
 * error (fail() set). */
typedef int (*probe_fn)(or_kube *k, const char *ns, const char *name, char *state,
			size_t state_size, char *out, size_t out_size);

static json_int_t
jint(const json_t *o, const char *key, json_int_t dflt)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

/* A Deployment is done when the controller has seen its latest spec and
 * as many replicas are available as it wants (kubectl rollout status also
 * wants the updated ones, which the availability of a current generation
 * implies here). */
static int
deployment_done(const json_t *d, char *state, size_t size)
{
	const json_t *spec = json_object_get(d, "spec"), *st = json_object_get(d, "status");
	json_int_t want = jint(spec, "replicas", 1), avail = jint(st, "availableReplicas", 0);
	json_int_t gen = jint(json_object_get(d, "metadata"), "generation", 0);
	json_int_t seen = jint(st, "observedGeneration", 0);

	snprintf(state, size, "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT " available%s",
		 avail, want, seen < gen ? ", new spec not yet observed" : "");
	return seen >= gen && avail >= want;
}

static int
probe_deployment(or_kube *k, const char *ns, const char *name, char *state, size_t ssize,
		 char *out, size_t osize)
{
	struct buf p;
	json_t *d = NULL;
	long st;
	int done;

	(void)out;
	(void)osize;
	buf_init(&p, 2048);
	buf_append_str(&p, "/apis/apps/v1/namespaces/");
	path_seg(&p, ns);
	buf_append_str(&p, "/deployments/");
	path_seg(&p, name);
	st = get_json(k, p.data, &d);
	buf_free(&p);
	if (st < 0)
		return -1;
	if (st == 404) {
		snprintf(state, ssize, "not found yet");
		return 0;
	}
	if (st != 200) {
		snprintf(state, ssize, "HTTP %ld", st);
		return 0;
	}
	done = deployment_done(d, state, ssize);
	json_decref(d);
	return done;
}

static int
probe_deployments(or_kube *k, const char *ns, const char *name, char *state, size_t ssize,
		  char *out, size_t osize)
{
	struct buf p;
	json_t *list = NULL, *d;
	char one[128], first[200] = "";
	size_t i, ready = 0, total;
	long st;

	(void)name;
	(void)out;
	(void)osize;
	buf_init(&p, 2048);
	buf_append_str(&p, "/apis/apps/v1/namespaces/");
	path_seg(&p, ns);
	buf_append_str(&p, "/deployments");
	st = get_json(k, p.data, &list);
	buf_free(&p);
	if (st < 0)
		return -1;
	if (st != 200) {
		snprintf(state, ssize, "HTTP %ld", st);
		return 0;
	}
	total = json_array_size(json_object_get(list, "items"));
	json_array_foreach(json_object_get(list, "items"), i, d) {
		if (deployment_done(d, one, sizeof(one))) {
			ready++;
		} else if (first[0] == '\0') {
			const char *n = jstr(json_object_get(d, "metadata"), "name");

			snprintf(first, sizeof(first), "%s: %s", n != NULL ? n : "?", one);
		}
	}
	if (ready < total)
		snprintf(state, ssize, "%zu/%zu deployments available (%s)", ready, total, first);
	else
		snprintf(state, ssize, "%zu/%zu deployments available", ready, total);
	json_decref(list);
	return ready == total;
}

static int
probe_loadbalancer(or_kube *k, const char *ns, const char *name, char *state, size_t ssize,
		   char *out, size_t osize)
{
	struct buf p;
	json_t *svc = NULL, *ing;
	const char *type, *addr;
	long st;
	int rc = 0;

	buf_init(&p, 2048);
	buf_append_str(&p, "/api/v1/namespaces/");
	path_seg(&p, ns);
	buf_append_str(&p, "/services/");
	path_seg(&p, name);
	st = get_json(k, p.data, &svc);
	buf_free(&p);
	if (st < 0)
		return -1;
	if (st == 404) {
		snprintf(state, ssize, "service not found yet");
		return 0;
	}
	if (st != 200) {
		snprintf(state, ssize, "HTTP %ld", st);
		return 0;
	}
	type = jstr(json_object_get(svc, "spec"), "type");
	if (type == NULL || strcmp(type, "LoadBalancer") != 0) {
		API->fail(k->h, "kubernetes", "service %s/%s is of type %s, not LoadBalancer: "
			  "it will never get an external address", ns, name,
			  type != NULL ? type : "ClusterIP");
		json_decref(svc);
		return -1;
	}
	ing = json_object_get(json_object_get(svc, "status"), "loadBalancer");
	ing = json_array_get(json_object_get(ing, "ingress"), 0);
	addr = jstr(ing, "ip") != NULL ? jstr(ing, "ip") : jstr(ing, "hostname");
	if (addr != NULL && addr[0] != '\0') {
		if (out != NULL && osize > 0)
			snprintf(out, osize, "%s", addr);
		snprintf(state, ssize, "address %s", addr);
		rc = 1;
	} else {
		snprintf(state, ssize, "no external address yet");
	}
	json_decref(svc);
	return rc;
}

static int
probe_crd(or_kube *k, const char *ns, const char *name, char *state, size_t ssize, char *out,
	  size_t osize)
{
	struct buf p;
	json_t *crd = NULL, *c;
	size_t i;
	long st;
	int rc = 0;

	(void)ns;
	(void)out;
	(void)osize;
	buf_init(&p, 2048);
	buf_append_str(&p, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/");
	path_seg(&p, name);
	st = get_json(k, p.data, &crd);
	buf_free(&p);
	if (st < 0)
		return -1;
	if (st != 200) {
		snprintf(state, ssize, st == 404 ? "not found yet" : "HTTP %ld", st);
		return 0;
	}
	snprintf(state, ssize, "not established yet");
	json_array_foreach(json_object_get(json_object_get(crd, "status"), "conditions"), i, c) {
		if (jstr(c, "type") != NULL && strcmp(jstr(c, "type"), "Established") == 0 &&
		    jstr(c, "status") != NULL && strcmp(jstr(c, "status"), "True") == 0) {
			snprintf(state, ssize, "established");
			rc = 1;
		}
	}
	json_decref(crd);
	return rc;
}

int
k8s_wait(or_kube *k, const char *what, const char *ns, const char *name, long timeout_ms,
	 char *out, size_t out_size)
{
	probe_fn probe;
	char state[300] = "", last[300] = "", label[300];
	long start = now_ms(), last_log = 0;
	int r;

	if (what == NULL) {
		API->fail(k->h, "invalid_input", "kube_wait: what is NULL");
		return -1;
	}
	if (ns == NULL || ns[0] == '\0')
		ns = "default";
	if (strcmp(what, "deployment") == 0)
		probe = probe_deployment;
	else if (strcmp(what, "deployments") == 0)
		probe = probe_deployments;
	else if (strcmp(what, "loadbalancer") == 0)
		probe = probe_loadbalancer;
	else if (strcmp(what, "crd") == 0)
		probe = probe_crd;
	else {
		API->fail(k->h, "invalid_input",
			  "kube_wait: unknown condition '%.60s' (deployment, deployments, "
			  "loadbalancer or crd)", what);
		return -1;
	}
	if (strcmp(what, "deployments") != 0 && (name == NULL || name[0] == '\0')) {
		API->fail(k->h, "invalid_input", "kube_wait %s: the name is empty", what);
		return -1;
	}
	if (timeout_ms <= 0)
		timeout_ms = K8S_WAIT_DEFAULT_MS;
	if (strcmp(what, "deployments") == 0)
		snprintf(label, sizeof(label), "deployments of namespace %s", ns);
	else if (strcmp(what, "crd") == 0)
		snprintf(label, sizeof(label), "CRD %s", name);
	else if (strcmp(what, "loadbalancer") == 0)
		snprintf(label, sizeof(label), "load balancer of service %s/%s", ns, name);
	else
		snprintf(label, sizeof(label), "deployment %s/%s", ns, name);
	if (out != NULL && out_size > 0)
		out[0] = '\0';
	for (;;) {
		r = probe(k, ns, name, state, sizeof(state), out, out_size);
		if (r < 0)
			return -1;
		if (r > 0) {
			API->log(k->h, OR_LOG_INFO, "%s: %s", label, state);
			return 0;
		}
		/* Every few seconds, and whenever the picture changes. */
		if (now_ms() - last_log >= K8S_PROGRESS_MS || strcmp(state, last) != 0) {
			API->log(k->h, OR_LOG_INFO, "waiting for %s: %s", label, state);
			snprintf(last, sizeof(last), "%s", state);
			last_log = now_ms();
		}
		if (now_ms() - start >= timeout_ms) {
			API->fail(k->h, "timeout", "timed out after %ld s waiting for %s: %s",
				  timeout_ms / 1000, label, state);
			return -1;
		}
		if (API->sleep_ms(k->h, K8S_POLL_MS)) {
			API->fail(k->h, "cancelled", "cancelled while waiting for %s", label);
			return -1;
		}
	}
}

/*
 * step.c - the step runner process (see step.h).  It implements the host
 * side of include/outrigger/plugin.h for one attempt: inputs from the job,
 * everything else as protocol lines to the server.
 *
 * This process must never outlive the server, and must never write
 * anything but protocol lines on descriptor 3.
 */
#include "step.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <ftw.h>
#include <sys/stat.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fetch.h"
#include "gcp.h"
#include "host.h"
#include "k8s.h"
#include "lcurl.h"
#include "ssh.h"
#include "step_pki.h"
#include "outrigger/plugin.h"
#include "plugin.h"

#define PROTO_FD 3

struct or_host {
	json_t *job;
	json_t *inputs;
	json_t *state;		/* kept in step with what the server committed */
	json_t *secrets;
	char *inputs_text;	/* inputs_json() answer */
	json_t *strings;	/* keeps input() answers alive */
	char fail_code[64];
	char fail_message[1024];
	pid_t parent;
	json_t *provider;	/* the job's provider object (borrowed from job) */
	char *workdir;		/* made on first use, removed at exit */
};

static volatile sig_atomic_t cancelled_flag;
static volatile pid_t tracked_group;

void
step_track_group(pid_t pgid)
{
	tracked_group = pgid;
}

/* ---- the protocol ------------------------------------------------------- */

static void
proto_send(json_t *msg)
{
	char *line = json_dumps(msg, JSON_COMPACT | JSON_ENSURE_ASCII);
	size_t len, off = 0;
	ssize_t n;

	json_decref(msg);
	if (line == NULL)
		return;
	len = strlen(line);
	if (len + 1 > STEP_LINE_MAX) {
		free(line);
		return;
	}
	line[len] = '\n'; /* replaces the NUL; len + 1 bytes go out */
	while (off < len + 1) {
		n = write(PROTO_FD, line + off, len + 1 - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* the server is gone; the death signal follows */
		off += (size_t)n;
	}
	free(line);
}

/* Read one line from descriptor 0 (the job or an answer); NULL at EOF.
 * Reads in blocks and keeps what follows the line for the next call (the
 * server writes answers only when asked, so nothing is lost). */
static char *
read_line(void)
{
	static char pending[65536];
	static size_t have;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap), *p, *nl;
	size_t take;
	ssize_t n;

	if (buf == NULL)
		return NULL;
	for (;;) {
		if (have == 0) {
			n = read(0, pending, sizeof(pending));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				free(buf);
				return NULL;
			}
			have = (size_t)n;
		}
		nl = memchr(pending, '\n', have);
		take = nl != NULL ? (size_t)(nl - pending) : have;
		if (len + take + 1 > cap) {
			while (len + take + 1 > cap)
				cap *= 2;
			if (cap > STEP_LINE_MAX) {
				free(buf);
				return NULL;
			}
			p = realloc(buf, cap);
			if (p == NULL) {
				free(buf);
				return NULL;
			}
			buf = p;
		}
		memcpy(buf + len, pending, take);
		len += take;
		if (nl != NULL)
			take++; /* the newline itself */
		memmove(pending, pending + take, have - take);
		have -= take;
		if (nl != NULL)
			break;
	}
	buf[len] = '\0';
	return buf;
}

/* Send a request that the server answers once it has committed it. */
static int
proto_request(json_t *msg)
{
	json_t *ans;
	char *line;
	int ok;

	proto_send(msg);
	line = read_line();
	if (line == NULL)
		return -1;
	ans = json_loads(line, 0, NULL);
	free(line);
	ok = json_is_true(json_object_get(ans, "ok"));
	json_decref(ans);
	return ok ? 0 : -1;
}

/* ---- host functions ---------------------------------------------------- */

const char *
step_keep(or_host *h, char *s)
{
	json_t *v;

	if (s == NULL)
		return NULL;
	v = json_string(s);
	free(s);
	if (v == NULL)
		return NULL;
	json_array_append_new(h->strings, v);
	return json_string_value(v);
}

static const char *
h_input(or_host *h, const char *key)
{
	json_t *v = json_object_get(h->inputs, key);
	char buf[64];

	if (v == NULL || json_is_null(v))
		return NULL;
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return step_keep(h, strdup(buf));
	}
	if (json_is_real(v)) {
		snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
		return step_keep(h, strdup(buf));
	}
	if (json_is_boolean(v))
		return json_is_true(v) ? "true" : "false";
	return step_keep(h, json_dumps(v, JSON_COMPACT));
}

static const char *
h_inputs_json(or_host *h)
{
	if (h->inputs_text == NULL)
		h->inputs_text = json_dumps(h->inputs, JSON_COMPACT);
	return h->inputs_text;
}

static const char *
h_info(or_host *h, const char *key)
{
	if (strcmp(key, "action") == 0 || strcmp(key, "plugin") == 0)
		return json_string_value(json_object_get(h->job, key));
	return json_string_value(json_object_get(json_object_get(h->job, "info"), key));
}

static void h_log(or_host *h, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
h_log(or_host *h, int level, const char *fmt, ...)
{
	static const char *levels[] = {"debug", "info", "warn", "error"};
	char text[STEP_LOG_MAX];
	va_list ap;

	(void)h;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (level < OR_LOG_DEBUG || level > OR_LOG_ERROR)
		level = OR_LOG_INFO;
	utf8_fix(text); /* a cut or a plugin's bytes must not lose the line */
	proto_send(json_pack("{s:s, s:s, s:s}", "t", "log", "level", levels[level],
			     "text", text));
}

static int
key_ok(const char *key)
{
	size_t i;

	if (key == NULL || key[0] == '\0' || strlen(key) > 63)
		return 0;
	for (i = 0; key[i] != '\0'; i++)
		if (!((key[i] >= 'a' && key[i] <= 'z') || (key[i] >= 'A' && key[i] <= 'Z') ||
		      (key[i] >= '0' && key[i] <= '9') || key[i] == '_' || key[i] == '-' ||
		      key[i] == '.' || key[i] == ':'))
			return 0;
	return 1;
}

static int
send_output(const char *key, json_t *value)
{
	if (!key_ok(key) || value == NULL) {
		json_decref(value);
		return -1;
	}
	proto_send(json_pack("{s:s, s:s, s:o}", "t", "output", "key", key, "value", value));
	return 0;
}

static int
h_output(or_host *h, const char *key, const char *value)
{
	(void)h;
	return send_output(key, value != NULL ? json_string(value) : NULL);
}

static int
h_output_json(or_host *h, const char *key, const char *text)
{
	(void)h;
	return send_output(key, text != NULL ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL);
}

static void
h_progress(or_host *h, int percent, const char *message)
{
	(void)h;
	if (percent < 0)
		percent = 0;
	if (percent > 100)
		percent = 100;
	proto_send(json_pack("{s:s, s:i, s:s}", "t", "progress", "percent", percent,
			     "message", message != NULL ? message : ""));
}

static void h_fail(or_host *h, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
h_fail(or_host *h, const char *code, const char *fmt, ...)
{
	va_list ap;

	snprintf(h->fail_code, sizeof(h->fail_code), "%s",
		 code != NULL && code[0] != '\0' ? code : "failed");
	va_start(ap, fmt);
	vsnprintf(h->fail_message, sizeof(h->fail_message), fmt, ap);
	va_end(ap);
}

static const char *
h_state_get(or_host *h, const char *key)
{
	return json_string_value(json_object_get(h->state, key));
}

static int
h_state_set(or_host *h, const char *key, const char *value)
{
	if (!key_ok(key) || value == NULL)
		return -1;
	if (proto_request(json_pack("{s:s, s:s, s:s}", "t", "state", "key", key,
				    "value", value)) != 0)
		return -1;
	json_object_set_new(h->state, key, json_string(value));
	return 0;
}

static const char *
h_secret_get(or_host *h, const char *name)
{
	return json_string_value(json_object_get(h->secrets, name));
}

static int
h_secret_put(or_host *h, const char *name, const char *value)
{
	if (!key_ok(name) || value == NULL)
		return -1;
	if (proto_request(json_pack("{s:s, s:s, s:s}", "t", "secret", "name", name,
				    "value", value)) != 0)
		return -1;
	json_object_set_new(h->secrets, name, json_string(value));
	return 0;
}

static int
h_cancelled(or_host *h)
{
	(void)h;
	return cancelled_flag != 0;
}

static int
h_sleep_ms(or_host *h, long ms)
{
	struct timespec ts;
	long slept = 0, slice;

	while (slept < ms) {
		if (h_cancelled(h))
			return 1;
		slice = ms - slept < 50 ? ms - slept : 50;
		ts.tv_sec = 0;
		ts.tv_nsec = slice * 1000000L;
		nanosleep(&ts, NULL);
		slept += slice;
	}
	return h_cancelled(h);
}

/* ---- HTTP client with retry ---------------------------------------------- */

struct sink {
	char *data;
	size_t len, max;
	int too_big;
};

static size_t
on_data(char *p, size_t sz, size_t n, void *ud)
{
	struct sink *k = ud;
	size_t add = sz * n;
	char *d;

	if (k->len + add > k->max) {
		k->too_big = 1;
		return 0;
	}
	d = realloc(k->data, k->len + add + 1);
	if (d == NULL)
		return 0;
	memcpy(d + k->len, p, add);
	k->data = d;
	k->len += add;
	d[k->len] = '\0';
	return add;
}

static int
abort_if_cancelled(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	(void)ud;
	(void)a;
	(void)b;
	(void)c;
	(void)d;
	return cancelled_flag != 0;
}

static int
h_http(or_host *h, const struct or_http_request *req, struct or_http_response *resp)
{
	int attempts = req->max_attempts > 0 ? req->max_attempts : 5, i, j;
	long backoff = 250, status = 0;
	struct curl_slist *hl = NULL;
	struct sink k = {NULL, 0, req->max_response > 0 ? req->max_response : 8u << 20, 0};
	const struct lcurl *L;
	char *ctype, why[256];
	CURLcode cc = CURLE_OK;
	CURL *c;

	memset(resp, 0, sizeof(*resp));
	L = lcurl_get(why, sizeof(why));
	if (L == NULL) {
		h_fail(h, "http_error", "HTTP %s %s: %s", req->method, req->url, why);
		return -1;
	}
	for (j = 0; req->headers != NULL && req->headers[j] != NULL; j++)
		hl = L->slist_append(hl, req->headers[j]);
	for (i = 0; i < attempts; i++) {
		if (i > 0) {
			/* Exponential backoff with full jitter, capped at 8 s. */
			long wait = backoff / 2 + random() % (backoff / 2 + 1);

			h_log(h, OR_LOG_WARN, "HTTP %s %s: %s; try %d of %d in %ld ms",
			      req->method, req->url,
			      status != 0 ? "retryable answer" : L->easy_strerror(cc),
			      i + 1, attempts, wait);
			if (h_sleep_ms(h, wait))
				break;
			backoff = backoff * 2 > 8000 ? 8000 : backoff * 2;
		}
		free(k.data);
		k.data = NULL;
		k.len = 0;
		k.too_big = 0;
		c = L->easy_init();
		if (c == NULL)
			break;
		L->easy_setopt(c, CURLOPT_URL, req->url);
		L->easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
		L->easy_setopt(c, CURLOPT_HTTPHEADER, hl);
		L->easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
		L->easy_setopt(c, CURLOPT_WRITEDATA, &k);
		L->easy_setopt(c, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 30000L);
		L->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		L->easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
		L->easy_setopt(c, CURLOPT_XFERINFOFUNCTION, abort_if_cancelled);
		if (req->body != NULL) {
			L->easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
			L->easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		}
		cc = L->easy_perform(c);
		status = 0;
		if (cc == CURLE_OK) {
			L->easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
			if (L->easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ctype) == CURLE_OK &&
			    ctype != NULL) {
				free(resp->content_type);
				resp->content_type = strdup(ctype);
			}
		}
		L->easy_cleanup(c);
		if (k.too_big) {
			h_fail(h, "too_large", "HTTP %s %s: the answer is larger than %zu bytes",
			       req->method, req->url, k.max);
			break;
		}
		if (cc == CURLE_OK && status != 429 && status < 500)
			break;
		if (cancelled_flag)
			break;
	}
	L->slist_free_all(hl);
	if (cc != CURLE_OK || k.too_big || status == 0) {
		if (!k.too_big)
			h_fail(h, cancelled_flag ? "cancelled" : "http_error", "HTTP %s %s: %s",
			       req->method, req->url,
			       cancelled_flag ? "cancelled" : L->easy_strerror(cc));
		free(k.data);
		free(resp->content_type);
		memset(resp, 0, sizeof(*resp));
		return -1;
	}
	resp->status = status;
	resp->body = k.data != NULL ? k.data : strdup("");
	resp->body_len = k.len;
	return 0;
}

static void
h_http_free(struct or_http_response *resp)
{
	if (resp == NULL)
		return;
	free(resp->body);
	free(resp->content_type);
	memset(resp, 0, sizeof(*resp));
}

/* ---- minor 1: provider, mirrors, scratch space, programs, resources ------ */

const char *
step_provider(or_host *h, const char *key)
{
	return json_string_value(json_object_get(h->provider, key));
}

static const char *
h_mirror_url(or_host *h, const char *url)
{
	json_t *mirrors = json_object_get(h->provider, "mirrors");
	const char *real, *best = NULL;
	char *out;
	json_t *to;
	size_t n;

	if (url == NULL)
		return NULL;
	/* The longest prefix wins, so a mirror can cover part of a site. */
	json_object_foreach(mirrors, real, to) {
		n = strlen(real);
		if (json_is_string(to) && strncmp(url, real, n) == 0 &&
		    (best == NULL || n > strlen(best)))
			best = real;
	}
	if (best == NULL)
		return url;
	if (asprintf(&out, "%s%s", json_string_value(json_object_get(mirrors, best)),
		     url + strlen(best)) < 0)
		return url;
	return step_keep(h, out);
}

const char *
step_workdir(or_host *h)
{
	const char *tmp = getenv("TMPDIR");
	char path[4096];

	if (h->workdir != NULL)
		return h->workdir;
	snprintf(path, sizeof(path), "%s/outrigger-step-XXXXXX",
		 tmp != NULL && tmp[0] == '/' ? tmp : "/tmp");
	if (mkdtemp(path) == NULL) {
		h_fail(h, "io", "cannot make a scratch directory: %s", strerror(errno));
		return NULL;
	}
	h->workdir = strdup(path);
	return h->workdir;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void
workdir_remove(or_host *h)
{
	if (h->workdir != NULL)
		nftw(h->workdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(h->workdir);
	h->workdir = NULL;
}

static int
h_resource(or_host *h, const char *op, const char *kind, const char *name,
	   const char *self_link, const char *status, const char *attrs_json)
{
	json_t *attrs = NULL;

	if (kind == NULL || name == NULL || name[0] == '\0' ||
	    (strcmp(kind, "cluster") != 0 && strcmp(kind, "vm") != 0 &&
	     strcmp(kind, "firewall_rule") != 0)) {
		h_fail(h, "plugin", "resource kind must be cluster, vm or firewall_rule, with a name");
		return -1;
	}
	if (attrs_json != NULL) {
		attrs = json_loads(attrs_json, 0, NULL);
		if (!json_is_object(attrs)) {
			json_decref(attrs);
			h_fail(h, "plugin", "resource attrs must be a JSON object");
			return -1;
		}
	}
	if (proto_request(json_pack("{s:s, s:s, s:s, s:s, s:s*, s:s*, s:o*}", "t", "resource",
				    "op", op, "kind", kind, "name", name, "self_link", self_link,
				    "status", status, "attrs", attrs)) != 0) {
		h_fail(h, "engine", "the server did not record %s %s", kind, name);
		return -1;
	}
	return 0;
}

static int
h_resource_put(or_host *h, const char *kind, const char *name, const char *self_link,
	       const char *status, const char *attrs_json)
{
	return h_resource(h, "put", kind, name, self_link, status,
			  attrs_json != NULL ? attrs_json : "{}");
}

static int
h_resource_drop(or_host *h, const char *kind, const char *name)
{
	return h_resource(h, "drop", kind, name, NULL, NULL, NULL);
}

/* Largest standard output run() keeps. */
#define RUN_OUT_MAX (64u << 20)

int
step_run(or_host *h, const char *const *argv, const char *cwd, char **out)
{
	posix_spawn_file_actions_t fa;
	int po[2] = {-1, -1}, pe[2] = {-1, -1}, status = -1, open_fds = 2;
	struct buf ob, eb;
	struct pollfd pf[2];
	pid_t pid = -1;
	char chunk[8192], *nl;
	ssize_t n;

	buf_init(&ob, RUN_OUT_MAX);
	buf_init(&eb, OR_LOG_LINE_MAX);
	if (out != NULL)
		*out = NULL;
	if (argv == NULL || argv[0] == NULL) {
		h_fail(h, "plugin", "run() needs a program");
		return -1;
	}
	if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0) {
		h_fail(h, "io", "cannot run %s: %s", argv[0], strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (cwd != NULL)
		posix_spawn_file_actions_addchdir_np(&fa, cwd);
	errno = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (errno != 0) {
		h_fail(h, "io", "cannot run %s: %s", argv[0], strerror(errno));
		pid = -1;
		goto out;
	}
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	pf[0].fd = po[0];
	pf[1].fd = pe[0];
	pf[0].events = pf[1].events = POLLIN;
	while (open_fds > 0) {
		if (poll(pf, 2, 1000) < 0 && errno != EINTR)
			break;
		if (cancelled_flag)
			kill(pid, SIGTERM);
		if (pf[0].fd >= 0 && (pf[0].revents & (POLLIN | POLLHUP))) {
			n = read(pf[0].fd, chunk, sizeof(chunk));
			if (n <= 0) {
				pf[0].fd = -1;
				open_fds--;
			} else if (buf_append(&ob, chunk, (size_t)n) != OR_OK) {
				kill(pid, SIGKILL);
				h_fail(h, "io", "%s printed more than %u MiB", argv[0],
				       RUN_OUT_MAX >> 20);
				status = -2;
			}
		}
		if (pf[1].fd >= 0 && (pf[1].revents & (POLLIN | POLLHUP))) {
			n = read(pf[1].fd, chunk, sizeof(chunk));
			if (n <= 0) {
				pf[1].fd = -1;
				open_fds--;
			} else {
				/* Lines of standard error into the log as they come. */
				if (buf_append(&eb, chunk, (size_t)n) != OR_OK) {
					/* A line longer than a log line: flush it cut. */
					h_log(h, OR_LOG_WARN, "%s", buf_str(&eb));
					buf_reset(&eb);
					buf_append(&eb, chunk, (size_t)n);
				}
				while (eb.len > 0 && (nl = memchr(eb.data, '\n', eb.len)) != NULL) {
					size_t used = (size_t)(nl - eb.data) + 1;

					*nl = '\0';
					h_log(h, OR_LOG_WARN, "%s", eb.data);
					memmove(eb.data, eb.data + used, eb.len - used + 1);
					eb.len -= used;
				}
			}
		}
	}
	if (eb.len > 0)
		h_log(h, OR_LOG_WARN, "%s", buf_str(&eb));
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (status == -2 || status < 0) {
		status = -1;
		goto out;
	}
	if (WIFSIGNALED(status)) {
		h_fail(h, "io", "%s was killed by signal %d", argv[0], WTERMSIG(status));
		status = -1;
		goto out;
	}
	status = WEXITSTATUS(status);
	if (out != NULL) {
		*out = buf_detach(&ob);
	}
out:
	buf_free(&ob);
	buf_free(&eb);
	if (po[0] >= 0) close(po[0]);
	if (po[1] >= 0) close(po[1]);
	if (pe[0] >= 0) close(pe[0]);
	if (pe[1] >= 0) close(pe[1]);
	return status;
}

const struct or_host_api step_host_api = {
	.major = OR_PLUGIN_ABI_MAJOR,
	.minor = OR_PLUGIN_ABI_MINOR,
	.size = sizeof(struct or_host_api),
	.input = h_input,
	.inputs_json = h_inputs_json,
	.info = h_info,
	.log = h_log,
	.output = h_output,
	.output_json = h_output_json,
	.progress = h_progress,
	.fail = h_fail,
	.state_get = h_state_get,
	.state_set = h_state_set,
	.secret_get = h_secret_get,
	.secret_put = h_secret_put,
	.cancelled = h_cancelled,
	.sleep_ms = h_sleep_ms,
	.http = h_http,
	.http_free = h_http_free,
	.provider = step_provider,
	.mirror_url = h_mirror_url,
	.gcp = gcp_call,
	.gcp_error = gcp_error,
	.gcp_wait = gcp_wait,
	.kube_open = k8s_open,
	.kube_close = k8s_close,
	.kube_request = k8s_request,
	.kube_apply = k8s_apply,
	.kube_delete = k8s_delete,
	.kube_wait = k8s_wait,
	.ssh_open = ssh_open,
	.ssh_close = ssh_close,
	.ssh_upload = ssh_upload,
	.ssh_exec = ssh_exec,
	.pki_mesh_ca = step_pki_mesh_ca,
	.pki_workload = step_pki_workload,
	.pki_ssh_key = step_pki_ssh_key,
	.pki_free = step_pki_free,
	.fetch = fetch_get,
	.run = step_run,
	.workdir = step_workdir,
	.resource_put = h_resource_put,
	.resource_drop = h_resource_drop,
};

/* ---- loading ------------------------------------------------------------ */

/* The plugin called name: built in, or dir/name.so.  On failure, why says
 * so and NULL is returned.  The handle stays open until exit. */
static const struct or_plugin *
plugin_load(const char *dir, const char *name, char *why, size_t size)
{
	const struct or_plugin *p;
	or_plugin_entry entry;
	char path[4096];
	void *dl;

	p = plugin_builtin_find(name);
	if (p != NULL)
		return p;
	if (strchr(name, '/') != NULL || name[0] == '.') {
		snprintf(why, size, "bad plugin name '%s'", name);
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/%s.so", dir, name);
	dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (dl == NULL) {
		snprintf(why, size, "cannot load plugin %.400s: %.500s", path, dlerror());
		return NULL;
	}
	*(void **)(&entry) = dlsym(dl, OR_PLUGIN_SYMBOL);
	if (entry == NULL) {
		snprintf(why, size, "%.400s does not export %s()", path, OR_PLUGIN_SYMBOL);
		return NULL;
	}
	p = entry();
	if (p == NULL) {
		snprintf(why, size, "%.400s returned no descriptor", path);
		return NULL;
	}
	if (p->abi_major != OR_PLUGIN_ABI_MAJOR) {
		snprintf(why, size,
			 "plugin %s was built for plugin ABI %u.%u, but this outrigger "
			 "runs ABI %u.%u: rebuild it against include/outrigger/plugin.h",
			 name, p->abi_major, p->abi_minor, OR_PLUGIN_ABI_MAJOR,
			 OR_PLUGIN_ABI_MINOR);
		return NULL;
	}
	if (p->abi_minor > OR_PLUGIN_ABI_MINOR) {
		snprintf(why, size,
			 "plugin %s needs plugin ABI %u.%u; this outrigger offers %u.%u",
			 name, p->abi_major, p->abi_minor, OR_PLUGIN_ABI_MAJOR,
			 OR_PLUGIN_ABI_MINOR);
		return NULL;
	}
	return p;
}

static void
on_term(int sig)
{
	(void)sig;
	cancelled_flag = 1;
}

/* The server is gone: take the whole process group (commands the plugin
 * started) down with us. */
static void
on_orphan(int sig)
{
	(void)sig;
	if (tracked_group > 0)
		kill(-tracked_group, SIGKILL);
	kill(0, SIGKILL);
	_exit(137);
}

static void
send_result(const char *status, const char *code, const char *message)
{
	proto_send(json_pack("{s:s, s:s, s:s, s:s}", "t", "result", "status", status,
			     "code", code, "message", message));
}

int
step_main(int argc, char **argv)
{
	static const char *names[] = {"ok", "failed", "retry", "cancelled"};
	const struct or_plugin *p;
	struct or_host h;
	struct sigaction sa;
	const char *action, *dir;
	char why[1024], *line;
	or_status (*op)(or_host *, const struct or_host_api *) = NULL;
	or_status st;
	pid_t parent;

	(void)argc;
	(void)argv;
	memset(&h, 0, sizeof(h));
	/* Cancellation is SIGTERM; the server's death is SIGHUP. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_orphan;
	sigaction(SIGHUP, &sa, NULL);
	prctl(PR_SET_PDEATHSIG, SIGHUP);
	signal(SIGPIPE, SIG_IGN);

	line = read_line();
	h.job = line != NULL ? json_loads(line, 0, NULL) : NULL;
	free(line);
	if (!json_is_object(h.job)) {
		send_result("failed", "runner", "the step runner got no job");
		return 2;
	}
	/* The server may have died before the death signal was armed. */
	parent = (pid_t)json_integer_value(json_object_get(h.job, "parent"));
	if (parent > 0 && getppid() != parent)
		on_orphan(0);
	h.parent = parent;
	h.inputs = json_object_get(h.job, "inputs");
	h.state = json_deep_copy(json_object_get(h.job, "state"));
	h.secrets = json_deep_copy(json_object_get(h.job, "secrets"));
	h.provider = json_object_get(h.job, "provider");
	if (!json_is_object(h.state))
		h.state = json_object();
	if (!json_is_object(h.secrets))
		h.secrets = json_object();
	h.strings = json_array();
	srandom((unsigned)(time(NULL) ^ getpid()));

	dir = json_string_value(json_object_get(h.job, "plugins_dir"));
	action = json_string_value(json_object_get(h.job, "action"));
	p = plugin_load(dir != NULL ? dir : "plugins",
			json_string_value(json_object_get(h.job, "plugin")) != NULL
				? json_string_value(json_object_get(h.job, "plugin"))
				: "",
			why, sizeof(why));
	if (p == NULL) {
		send_result("failed", "plugin_load", why);
		goto out;
	}
	if (action != NULL && strcmp(action, "apply") == 0)
		op = p->apply;
	else if (action != NULL && strcmp(action, "destroy") == 0)
		op = p->destroy;
	else if (action != NULL && strcmp(action, "plan") == 0)
		op = p->plan;
	else if (action != NULL && strcmp(action, "check") == 0)
		op = p->check;
	if (op == NULL) {
		snprintf(why, sizeof(why), "plugin %s cannot %s", p->name,
			 action != NULL ? action : "(no action)");
		send_result("failed", "unsupported", why);
		goto out;
	}
	st = op(&h, &step_host_api);
	if (st == OR_STATUS_OK) {
		send_result("ok", "", "");
	} else {
		if ((int)st < 0 || (int)st > 3)
			st = OR_STATUS_FAILED;
		send_result(names[st], h.fail_code[0] ? h.fail_code : names[st],
			    h.fail_message[0] ? h.fail_message
					      : (st == OR_STATUS_CANCELLED ? "cancelled"
									   : "the plugin reported failure without a reason"));
	}
out:
	workdir_remove(&h);
	lcurl_release();
	json_decref(h.job);
	json_decref(h.state);
	json_decref(h.secrets);
	json_decref(h.strings);
	free(h.inputs_text);
	return 0;
}

int
step_describe_main(int argc, char **argv)
{
	const struct or_plugin *p;
	char why[1024], dir[4096], name[256];
	const char *slash, *dot;
	json_t *d;

	if (argc < 3) {
		fprintf(stderr, "usage: outrigger describe-plugin DIR/NAME.so\n");
		return 2;
	}
	slash = strrchr(argv[2], '/');
	dot = strrchr(argv[2], '.');
	snprintf(dir, sizeof(dir), "%.*s", slash != NULL ? (int)(slash - argv[2]) : 1,
		 slash != NULL ? argv[2] : ".");
	snprintf(name, sizeof(name), "%.*s",
		 (int)((dot != NULL ? dot : argv[2] + strlen(argv[2])) -
		       (slash != NULL ? slash + 1 : argv[2])),
		 slash != NULL ? slash + 1 : argv[2]);
	p = plugin_load(dir, name, why, sizeof(why));
	if (p == NULL)
		d = json_pack("{s:s, s:s}", "name", name, "error", why);
	else
		d = plugin_describe(p);
	if (d != NULL)
		json_dumpf(d, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(d);
	return p != NULL ? 0 : 1;
}

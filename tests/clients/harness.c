/* harness.c - see harness.h. */
#include "harness.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HX_FILE_MAX (64u << 20)

int
hx_isolate_network(void)
{
	struct ifreq ifr;
	int s, rc;

	if (geteuid() != 0)
		return 0;
	if (unshare(CLONE_NEWNET) != 0)
		return -1;
	s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	rc = ioctl(s, SIOCGIFFLAGS, &ifr);
	if (rc == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		rc = ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
	return rc == 0 ? 0 : -1;
}

int
hx_tmpdir(char *out, size_t size, const char *prefix)
{
	snprintf(out, size, "/tmp/%s-XXXXXX", prefix);
	return mkdtemp(out) != NULL ? 0 : -1;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void
hx_rmrf(const char *path)
{
	if (path != NULL && path[0] != '\0')
		nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

char *
hx_slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL, *p;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (cap - len < 65536) {
			cap = cap != 0 ? cap * 2 : 131072;
			if (cap > HX_FILE_MAX + 1)
				break;
			p = realloc(data, cap);
			if (p == NULL)
				break;
			data = p;
		}
		n = fread(data + len, 1, cap - len - 1, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	if (data != NULL)
		data[len] = '\0';
	return data;
}

int
hx_write(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");
	int rc;

	if (f == NULL)
		return -1;
	rc = fputs(text, f) < 0 ? -1 : 0;
	return fclose(f) != 0 ? -1 : rc;
}

const char *
hx_endpoint(const struct hx_sandbox *sb, const char *key)
{
	return json_string_value(json_object_get(sb->endpoints, key));
}

int
hx_sandbox_start(struct hx_sandbox *sb, const char *bin, const char *dir, double ts)
{
	return hx_sandbox_start_args(sb, bin, dir, ts, NULL);
}

int
hx_sandbox_start_args(struct hx_sandbox *sb, const char *bin, const char *dir, double ts,
		      const char *const *extra)
{
	char out_path[600], ep_path[600], scale[32], parent[24], *out = NULL;
	const char *argv[32];
	const char *tf;
	pid_t pid;
	int i, fd, n = 0;

	memset(sb, 0, sizeof(*sb));
	snprintf(sb->dir, sizeof(sb->dir), "%s", dir);
	mkdir(dir, 0700);
	snprintf(out_path, sizeof(out_path), "%s.out", dir);
	snprintf(scale, sizeof(scale), "%g", ts);
	snprintf(parent, sizeof(parent), "%ld", (long)getpid());
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			close(fd);
		}
		snprintf(ep_path, sizeof(ep_path), "%s.err", dir);
		fd = open(ep_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 2);
			close(fd);
		}
		argv[n++] = bin;
		argv[n++] = "sandbox";
		argv[n++] = "--listen";
		argv[n++] = "127.0.0.1:0";
		argv[n++] = "--dir";
		argv[n++] = dir;
		argv[n++] = "--time-scale";
		argv[n++] = scale;
		argv[n++] = "--seed";
		argv[n++] = "11";
		/* Die with the test, even when the test is killed. */
		argv[n++] = "--parent";
		argv[n++] = parent;
		for (i = 0; extra != NULL && extra[i] != NULL && n < 31; i++)
			argv[n++] = extra[i];
		argv[n] = NULL;
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	sb->pid = pid;
	for (i = 0; i < 400; i++) {
		free(out);
		out = hx_slurp(out_path);
		if (out != NULL && strstr(out, "listening on") != NULL)
			break;
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			sb->pid = 0;
			break;
		}
		usleep(25000);
	}
	free(out);
	if (sb->pid == 0 || i == 400)
		return -1;
	snprintf(ep_path, sizeof(ep_path), "%s/endpoints.json", dir);
	sb->endpoints = json_load_file(ep_path, 0, NULL);
	tf = hx_endpoint(sb, "access_token_file");
	sb->token = tf != NULL ? hx_slurp(tf) : NULL;
	if (sb->token != NULL)
		sb->token[strcspn(sb->token, "\r\n")] = '\0';
	return sb->endpoints != NULL && sb->token != NULL ? 0 : -1;
}

void
hx_sandbox_stop(struct hx_sandbox *sb)
{
	if (sb->pid > 0) {
		kill(sb->pid, SIGTERM);
		waitpid(sb->pid, NULL, 0);
		sb->pid = 0;
	}
	json_decref(sb->endpoints);
	sb->endpoints = NULL;
	free(sb->token);
	sb->token = NULL;
}

/* ---- HTTP ------------------------------------------------------------- */

struct hx_sink {
	char *data;
	size_t len;
};

static size_t
hx_on_data(char *p, size_t sz, size_t n, void *ud)
{
	struct hx_sink *s = ud;
	char *d;

	if (s->len + sz * n > HX_FILE_MAX)
		return 0;
	d = realloc(s->data, s->len + sz * n + 1);
	if (d == NULL)
		return 0;
	memcpy(d + s->len, p, sz * n);
	s->data = d;
	s->len += sz * n;
	d[s->len] = '\0';
	return sz * n;
}

long
hx_http(const char *method, const char *url, const char *token, const char *body, char **out)
{
	struct curl_slist *hl = NULL;
	struct hx_sink s = {NULL, 0};
	char auth[8192];
	long status = 0;
	CURL *c = curl_easy_init();

	if (out != NULL)
		*out = NULL;
	if (c == NULL)
		return 0;
	if (token != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		hl = curl_slist_append(hl, auth);
	}
	hl = curl_slist_append(hl, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, hx_on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	if (body != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(hl);
	if (out != NULL)
		*out = s.data != NULL ? s.data : strdup("");
	else
		free(s.data);
	return status;
}

/* ---- the step runner ---------------------------------------------------- */

#define HX_CAPTURE_MAX (4u << 20)

static long
hx_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void
hx_log_append(struct hx_step *r, const char *level, const char *text)
{
	size_t old = r->log != NULL ? strlen(r->log) : 0, add = strlen(level) + strlen(text) + 3;
	char *p = realloc(r->log, old + add + 1);

	if (p == NULL)
		return;
	snprintf(p + old, add + 1, "%s: %s\n", level, text);
	r->log = p;
}

/* A growable byte string, at most max bytes (the rest is dropped). */
struct hx_acc {
	char *p;
	size_t len;
};

static void
hx_acc_add(struct hx_acc *a, const char *p, size_t n, size_t max)
{
	char *q;

	if (a->len + n > max)
		n = max - a->len;
	q = realloc(a->p, a->len + n + 1);
	if (q == NULL)
		return;
	memcpy(q + a->len, p, n);
	a->p = q;
	a->len += n;
	q[a->len] = '\0';
}

static const char *
hx_str(const json_t *m, const char *key)
{
	const char *v = json_string_value(json_object_get(m, key));

	return v != NULL ? v : "";
}

/* One protocol line from the step, arrived at ms. */
static void
hx_handle(struct hx_step *r, char *line, int to_step, long ms)
{
	json_t *m = json_loads(line, 0, NULL);
	const char *t = json_string_value(json_object_get(m, "t"));
	ssize_t w;

	if (t == NULL) {
		hx_log_append(r, "harness", "a line that is not a message");
		json_decref(m);
		m = json_pack("{s:s, s:s}", "t", "garbage", "text", line);
	} else if (strcmp(t, "log") == 0) {
		hx_log_append(r, json_string_value(json_object_get(m, "level")) != NULL
					 ? json_string_value(json_object_get(m, "level"))
					 : "?",
			      hx_str(m, "text"));
	} else if (strcmp(t, "output") == 0) {
		json_object_set(r->outputs, hx_str(m, "key"), json_object_get(m, "value"));
	} else if (strcmp(t, "result") == 0) {
		snprintf(r->status, sizeof(r->status), "%s", hx_str(m, "status"));
		snprintf(r->code, sizeof(r->code), "%s", hx_str(m, "code"));
		snprintf(r->message, sizeof(r->message), "%s", hx_str(m, "message"));
	} else if (strcmp(t, "progress") != 0) {
		/* state, secret, resource: the server answers once committed. */
		w = write(to_step, "{\"ok\":true}\n", 12);
		(void)w;
	}
	json_object_set_new(m, "_ms", json_integer(ms));
	json_array_append_new(r->msgs, m);
}

/* 1 when the last message is a log line containing needle. */
static int
hx_is_log(const struct hx_step *r, const char *needle)
{
	const json_t *m = json_array_get(r->msgs, json_array_size(r->msgs) - 1);

	return strcmp(hx_str(m, "t"), "log") == 0 && strstr(hx_str(m, "text"), needle) != NULL;
}

int
hx_step_run(const char *step_bin, json_t *job, int timeout_s, struct hx_step *r)
{
	struct hx_step_opts o = {(long)timeout_s * 1000L, NULL, 0};

	return hx_step_run_opts(step_bin, job, &o, r);
}

int
hx_step_run_opts(const char *step_bin, json_t *job, const struct hx_step_opts *o,
		 struct hx_step *r)
{
	int in[2] = {-1, -1}, proto[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
	int st, i, nfd = o->capture ? 3 : 1;
	struct hx_acc acc[3] = {{NULL, 0}, {NULL, 0}, {NULL, 0}};
	char *line, *nl, chunk[65536];
	struct pollfd pfd[3];
	long t0, left;
	ssize_t n;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	r->outputs = json_object();
	r->msgs = json_array();
	r->exit_status = -1;
	r->term_ms = -1;
	if (pipe(in) != 0 || pipe(proto) != 0 || (o->capture && (pipe(out) != 0 || pipe(err) != 0)))
		goto fail;
	t0 = hx_now_ms();
	pid = fork();
	if (pid < 0)
		goto fail;
	if (pid == 0) {
		/* Any of these may be descriptor 3: move the protocol's end
		 * out of the way before closing them. */
		int w = fcntl(proto[1], F_DUPFD, 10);

		dup2(in[0], 0);
		if (o->capture) {
			dup2(out[1], 1);
			dup2(err[1], 2);
			close(out[0]);
			close(out[1]);
			close(err[0]);
			close(err[1]);
		}
		close(in[0]);
		close(in[1]);
		close(proto[0]);
		close(proto[1]);
		dup2(w, 3);
		close(w);
		execl(step_bin, step_bin, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(proto[1]);
	if (o->capture) {
		close(out[1]);
		close(err[1]);
	}
	signal(SIGPIPE, SIG_IGN);
	line = json_dumps(job, JSON_COMPACT);
	if (line != NULL) {
		n = write(in[1], line, strlen(line));
		n = write(in[1], "\n", 1);
		(void)n;
	}
	free(line);
	pfd[0].fd = proto[0];
	pfd[1].fd = out[0];
	pfd[2].fd = err[0];
	for (i = 0; i < 3; i++)
		pfd[i].events = POLLIN;
	while (pfd[0].fd >= 0 || (nfd > 1 && (pfd[1].fd >= 0 || pfd[2].fd >= 0))) {
		left = o->timeout_ms - (hx_now_ms() - t0);
		if (left <= 0) {
			hx_log_append(r, "harness", "timed out: killing the step");
			kill(pid, SIGKILL);
			break;
		}
		if (poll(pfd, (nfds_t)nfd, left < 500 ? (int)left : 500) <= 0)
			continue;
		for (i = 0; i < nfd; i++) {
			if (pfd[i].fd < 0 || pfd[i].revents == 0)
				continue;
			n = read(pfd[i].fd, chunk, sizeof(chunk));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
				continue;
			}
			/* The protocol is never cut: a line is kept whole. */
			hx_acc_add(&acc[i], chunk, (size_t)n, i == 0 ? (size_t)-1 / 2 : HX_CAPTURE_MAX);
			while (i == 0 && acc[0].p != NULL &&
			       (nl = memchr(acc[0].p, '\n', acc[0].len)) != NULL) {
				*nl = '\0';
				hx_handle(r, acc[0].p, in[1], hx_now_ms() - t0);
				acc[0].len -= (size_t)(nl + 1 - acc[0].p);
				memmove(acc[0].p, nl + 1, acc[0].len + 1);
				if (o->term_on != NULL && r->term_ms < 0 && hx_is_log(r, o->term_on)) {
					kill(pid, SIGTERM);
					r->term_ms = hx_now_ms() - t0;
				}
			}
		}
	}
	for (i = 0; i < 3; i++)
		if (pfd[i].fd >= 0)
			close(pfd[i].fd);
	close(in[1]);
	if (waitpid(pid, &st, 0) == pid)
		r->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	r->ms = hx_now_ms() - t0;
	free(acc[0].p);
	if (o->capture) {
		r->out = acc[1].p != NULL ? acc[1].p : strdup("");
		r->err = acc[2].p != NULL ? acc[2].p : strdup("");
	}
	if (r->log == NULL)
		r->log = strdup("");
	return 0;
fail:
	for (i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (proto[i] >= 0)
			close(proto[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	return -1;
}

void
hx_step_free(struct hx_step *r)
{
	json_decref(r->outputs);
	json_decref(r->msgs);
	free(r->log);
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof(*r));
}

const char *
hx_step_log(const struct hx_step *r, const char *needle, int nth, const char **level, long *ms)
{
	size_t i;
	json_t *m;
	const char *t, *text;

	json_array_foreach(r->msgs, i, m) {
		t = json_string_value(json_object_get(m, "t"));
		text = json_string_value(json_object_get(m, "text"));
		if (t == NULL || strcmp(t, "log") != 0 || text == NULL)
			continue;
		if (needle != NULL && strstr(text, needle) == NULL)
			continue;
		if (nth-- > 0)
			continue;
		if (level != NULL)
			*level = json_string_value(json_object_get(m, "level"));
		if (ms != NULL)
			*ms = (long)json_integer_value(json_object_get(m, "_ms"));
		return text;
	}
	return NULL;
}

int
hx_step_log_index(const struct hx_step *r, const char *text)
{
	size_t i;
	json_t *m;
	const char *t, *x;

	json_array_foreach(r->msgs, i, m) {
		t = json_string_value(json_object_get(m, "t"));
		x = json_string_value(json_object_get(m, "text"));
		if (t != NULL && strcmp(t, "log") == 0 && x != NULL && strcmp(x, text) == 0)
			return (int)i;
	}
	return -1;
}

int
hx_step_mentions(const struct hx_step *r, const char *needle)
{
	char *all = json_dumps(r->msgs, JSON_COMPACT);
	int found = all != NULL && strstr(all, needle) != NULL;

	free(all);
	return found || (r->out != NULL && strstr(r->out, needle) != NULL) ||
	       (r->err != NULL && strstr(r->err, needle) != NULL);
}

const char *
hx_step_output(const struct hx_step *r, const char *key)
{
	return json_string_value(json_object_get(r->outputs, key));
}

const char *
hx_step_state(const struct hx_step *r, const char *key, const char **key_out)
{
	size_t i;
	json_t *m;
	const char *t, *k;

	json_array_foreach(r->msgs, i, m) {
		t = json_string_value(json_object_get(m, "t"));
		k = json_string_value(json_object_get(m, "key"));
		if (t == NULL || strcmp(t, "state") != 0 || k == NULL)
			continue;
		if (key != NULL && strcmp(k, key) != 0)
			continue;
		if (key_out != NULL)
			*key_out = k;
		return json_string_value(json_object_get(m, "value"));
	}
	return NULL;
}

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
	char out_path[600], ep_path[600], scale[32], *out = NULL;
	const char *tf;
	pid_t pid;
	int i, fd;

	memset(sb, 0, sizeof(*sb));
	snprintf(sb->dir, sizeof(sb->dir), "%s", dir);
	mkdir(dir, 0700);
	snprintf(out_path, sizeof(out_path), "%s.out", dir);
	snprintf(scale, sizeof(scale), "%g", ts);
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
		execl(bin, bin, "sandbox", "--listen", "127.0.0.1:0", "--dir", dir, "--time-scale",
		      scale, "--seed", "11", (char *)NULL);
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

/* One protocol line from the step. */
static void
hx_handle(struct hx_step *r, const char *line, int to_step)
{
	json_t *m = json_loads(line, 0, NULL);
	const char *t = json_string_value(json_object_get(m, "t"));
	ssize_t w;

	if (t == NULL) {
		hx_log_append(r, "harness", "a line that is not a message");
	} else if (strcmp(t, "log") == 0) {
		hx_log_append(r, json_string_value(json_object_get(m, "level")) != NULL
					 ? json_string_value(json_object_get(m, "level"))
					 : "?",
			      json_string_value(json_object_get(m, "text")) != NULL
				      ? json_string_value(json_object_get(m, "text"))
				      : "");
	} else if (strcmp(t, "output") == 0) {
		json_object_set(r->outputs, json_string_value(json_object_get(m, "key")),
				json_object_get(m, "value"));
	} else if (strcmp(t, "result") == 0) {
		snprintf(r->status, sizeof(r->status), "%s",
			 json_string_value(json_object_get(m, "status")));
		snprintf(r->code, sizeof(r->code), "%s", json_string_value(json_object_get(m, "code")));
		snprintf(r->message, sizeof(r->message), "%s",
			 json_string_value(json_object_get(m, "message")));
	} else if (strcmp(t, "progress") != 0) {
		/* state, secret, resource: the server answers once committed. */
		w = write(to_step, "{\"ok\":true}\n", 12);
		(void)w;
	}
	json_decref(m);
}

int
hx_step_run(const char *step_bin, json_t *job, int timeout_s, struct hx_step *r)
{
	int in[2], proto[2], st;
	char *line, *buf = NULL, *nl, chunk[65536];
	size_t len = 0;
	struct pollfd pfd;
	long deadline;
	ssize_t n;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	r->outputs = json_object();
	r->exit_status = -1;
	if (pipe(in) != 0)
		return -1;
	if (pipe(proto) != 0) {
		close(in[0]);
		close(in[1]);
		return -1;
	}
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* Any of the four may be descriptor 3: move the protocol's
		 * end out of the way before closing them. */
		int w = fcntl(proto[1], F_DUPFD, 10);

		dup2(in[0], 0);
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
	signal(SIGPIPE, SIG_IGN);
	line = json_dumps(job, JSON_COMPACT);
	if (line != NULL) {
		n = write(in[1], line, strlen(line));
		n = write(in[1], "\n", 1);
		(void)n;
	}
	free(line);
	deadline = hx_now_ms() + (long)timeout_s * 1000L;
	for (;;) {
		pfd.fd = proto[0];
		pfd.events = POLLIN;
		if (hx_now_ms() > deadline) {
			hx_log_append(r, "harness", "timed out: killing the step");
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&pfd, 1, 500) <= 0)
			continue;
		n = read(proto[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		nl = realloc(buf, len + (size_t)n + 1);
		if (nl == NULL)
			break;
		buf = nl;
		memcpy(buf + len, chunk, (size_t)n);
		len += (size_t)n;
		buf[len] = '\0';
		while ((nl = memchr(buf, '\n', len)) != NULL) {
			*nl = '\0';
			hx_handle(r, buf, in[1]);
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len);
			buf[len] = '\0';
		}
	}
	free(buf);
	close(proto[0]);
	close(in[1]);
	if (waitpid(pid, &st, 0) == pid)
		r->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (r->log == NULL)
		r->log = strdup("");
	return 0;
}

void
hx_step_free(struct hx_step *r)
{
	json_decref(r->outputs);
	free(r->log);
	memset(r, 0, sizeof(*r));
}

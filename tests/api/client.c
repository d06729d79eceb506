/*
 * client.c - server process control and HTTP helpers for the API tests.
 */
#include "api_client.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sqlite3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *
bin(void)
{
	const char *b = getenv("OUTRIGGER_BIN");

	return b != NULL && b[0] != '\0' ? b : "build/outrigger";
}

int
srv_start(struct srv *s, const char *dir, const char *const *extra)
{
	const char *argv[64];
	char line[256] = "";
	int out[2], n = 0, i;
	size_t got = 0;
	struct pollfd pfd;
	char *p;

	memset(s, 0, sizeof(*s));
	if (dir != NULL) {
		snprintf(s->dir, sizeof(s->dir), "%s", dir);
	} else {
		snprintf(s->dir, sizeof(s->dir), "/tmp/outrigger-test-XXXXXX");
		if (mkdtemp(s->dir) == NULL)
			return -1;
	}
	snprintf(s->db, sizeof(s->db), "%s/o.db", s->dir);
	snprintf(s->log, sizeof(s->log), "%s/server.log", s->dir);
	argv[n++] = bin();
	argv[n++] = "serve";
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--db";
	argv[n++] = s->db;
	argv[n++] = "--blueprints";
	argv[n++] = "tests/blueprints";
	for (i = 0; extra != NULL && extra[i] != NULL && n < 62; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	if (pipe(out) != 0)
		return -1;
	s->pid = fork();
	if (s->pid < 0)
		return -1;
	if (s->pid == 0) {
		FILE *lf = fopen(s->log, "a");

		dup2(out[1], 1);
		if (lf != NULL)
			dup2(fileno(lf), 2);
		close(out[0]);
		close(out[1]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	/* Wait for the "listening on http://…" line. */
	pfd.fd = out[0];
	pfd.events = POLLIN;
	while (got < sizeof(line) - 1 && strchr(line, '\n') == NULL) {
		line[got] = '\0';
		if (poll(&pfd, 1, 10000) <= 0)
			break;
		ssize_t r = read(out[0], line + got, sizeof(line) - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		line[got] = '\0';
	}
	close(out[0]);
	p = strstr(line, "http://127.0.0.1:");
	if (p == NULL) {
		char cmd[400];

		fprintf(stderr, "server did not start; its log %s says:\n", s->log);
		snprintf(cmd, sizeof(cmd), "tail -n 20 '%s' >&2", s->log);
		if (system(cmd) != 0)
			fprintf(stderr, "(no log)\n");
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
		return -1;
	}
	s->port = (unsigned short)atoi(p + strlen("http://127.0.0.1:"));
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%u", s->port);
	return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void
srv_rmdir(const char *dir)
{
	if (dir[0] != '\0' && strncmp(dir, "/tmp/outrigger-test-", 20) == 0)
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Wait for the child up to ms; returns its status or -1. */
static int
wait_ms(pid_t pid, int ms)
{
	int st, i;

	for (i = 0; i < ms; i += 5) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(5000);
	}
	return -1;
}

/* Did the sanitizers report anything in the server's log?  Prints it. */
static int
log_has_sanitizer_report(const char *path)
{
	char line[1024];
	int found = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, "Sanitizer") != NULL || strstr(line, "runtime error:") != NULL)
			found = 1;
		if (found)
			fputs(line, stderr);
	}
	fclose(f);
	return found;
}

int
srv_stop(struct srv *s, int keep_dir)
{
	int st = 0;

	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		st = wait_ms(s->pid, 15000);
		if (st < 0) {
			kill(s->pid, SIGKILL);
			waitpid(s->pid, NULL, 0);
		}
		s->pid = 0;
	}
	if (log_has_sanitizer_report(s->log))
		st = 99; /* a sanitizer finding fails the test that stops it */
	if (!keep_dir)
		srv_rmdir(s->dir);
	return st;
}

void
srv_kill(struct srv *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
}

struct sink {
	char *data;
	size_t len;
};

static size_t
on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct sink *k = ud;
	char *d = realloc(k->data, k->len + sz * n + 1);

	if (d == NULL)
		return 0;
	memcpy(d + k->len, p, sz * n);
	k->data = d;
	k->len += sz * n;
	d[k->len] = '\0';
	return sz * n;
}

static size_t
on_header(char *p, size_t sz, size_t n, void *ud)
{
	struct res *r = ud;
	size_t have = strlen(r->headers), add = sz * n;

	if (have + add < sizeof(r->headers)) {
		memcpy(r->headers + have, p, add);
		r->headers[have + add] = '\0';
	}
	return sz * n;
}

int
req(struct srv *s, const char *method, const char *path, const char *ctype,
    const char *body, size_t len, const char *const *headers, struct res *r)
{
	struct curl_slist *hl = NULL;
	struct sink k = {NULL, 0};
	char url[2048], h[512];
	CURL *c;
	CURLcode cc;
	int i;

	memset(r, 0, sizeof(*r));
	c = curl_easy_init();
	if (c == NULL)
		return -1;
	snprintf(url, sizeof(url), "%s%s", s->url, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &k);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	snprintf(h, sizeof(h), "Content-Type:%s%s", ctype != NULL ? " " : "",
		 ctype != NULL ? ctype : "");
	hl = curl_slist_append(hl, h);
	hl = curl_slist_append(hl, "Expect:");
	for (i = 0; headers != NULL && headers[i] != NULL; i++)
		hl = curl_slist_append(hl, headers[i]);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	r->body = k.data != NULL ? k.data : strdup("");
	r->len = k.len;
	if (r->len > 0)
		r->json = json_loadb(r->body, r->len, 0, NULL);
	return cc == CURLE_OK ? 0 : -1;
}

int
get(struct srv *s, const char *path, struct res *r)
{
	return req(s, "GET", path, NULL, NULL, 0, NULL, r);
}

int
send_json(struct srv *s, const char *method, const char *path,
	  const char *json, struct res *r)
{
	return req(s, method, path, "application/json", json,
		   json != NULL ? strlen(json) : 0, NULL, r);
}

void
res_free(struct res *r)
{
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

const char *
res_header(const struct res *r, const char *name, char *out, size_t size)
{
	const char *p = r->headers;
	size_t n = strlen(name), v;

	while (p != NULL && *p != '\0') {
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			p += n + 1;
			while (*p == ' ')
				p++;
			v = strcspn(p, "\r\n");
			snprintf(out, size, "%.*s", (int)v, p);
			return out;
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return NULL;
}

static const char *
err_member(const struct res *r, const char *key)
{
	json_t *v = json_object_get(json_object_get(r->json, "error"), key);

	return json_is_string(v) ? json_string_value(v) : "";
}

const char *
err_code(const struct res *r)
{
	return err_member(r, "code");
}

const char *
err_field(const struct res *r)
{
	return err_member(r, "field");
}

int
tcp_connect(const struct srv *s)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(s->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	/* Pieces sent with pauses must leave as separate segments. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

ssize_t
raw_exchange(struct srv *s, const void *data, size_t len, char *out,
	     size_t size, int timeout_ms)
{
	struct pollfd pfd;
	size_t got = 0;
	ssize_t n;
	int fd;

	fd = tcp_connect(s);
	if (fd < 0)
		return -1;
	if (len > 0 && send(fd, data, len, MSG_NOSIGNAL) < 0) {
		close(fd);
		return -1;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (got + 1 < size && poll(&pfd, 1, timeout_ms) > 0) {
		n = recv(fd, out + got, size - 1 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	out[got] = '\0';
	close(fd);
	return (ssize_t)got;
}

int
make_env(struct srv *s, const char *name)
{
	struct res r;
	char body[256];
	long st;

	snprintf(body, sizeof(body),
		 "{\"name\":\"%s\",\"provider\":\"sandbox\",\"blueprint\":\"demo\","
		 "\"params\":{\"owner\":\"test\"}}", name);
	if (send_json(s, "POST", "/api/v1/environments", body, &r) != 0)
		return -1;
	st = r.status;
	res_free(&r);
	return st == 201 ? 0 : -1;
}

int
run_bin(const char *const *args, char *out, size_t size)
{
	const char *argv[32];
	int p[2], st, n = 0;
	size_t got = 0;
	ssize_t r;
	pid_t pid;

	argv[n++] = bin();
	while (args[n - 1] != NULL && n < 31) {
		argv[n] = args[n - 1];
		n++;
	}
	argv[n] = NULL;
	if (pipe(p) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		close(p[1]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	while (got + 1 < size && (r = read(p[0], out + got, size - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = '\0';
	close(p[0]);
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int
sql_exec(const char *db, const char *sql)
{
	sqlite3 *h = NULL;
	int rc;

	if (sqlite3_open(db, &h) != SQLITE_OK) {
		sqlite3_close(h);
		return -1;
	}
	sqlite3_busy_timeout(h, 5000);
	rc = sqlite3_exec(h, sql, NULL, NULL, NULL);
	sqlite3_close(h);
	return rc == SQLITE_OK ? 0 : -1;
}

/*
 * test_robust.c - what a hostile or clumsy network does to the server:
 * garbage and truncated requests, slow clients, connection limits, body
 * limits, static-file escapes, graceful stops, the access log, and many
 * connections at once.
 *
 * Every test drives a real server on 127.0.0.1; most use raw sockets so
 * that the bytes on the wire are exactly the ones written here.  A test
 * passes only when the server is still healthy at its end.
 */
#include "check.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api_client.h"
#include "suites.h"

#define MIB (1024 * 1024)

/* ---- small helpers ------------------------------------------------------ */

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}


/* Send all of data; 0, or -1 when the peer closed or reset. */
static int
send_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	ssize_t n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
send_str(int fd, const char *s)
{
	return send_all(fd, s, strlen(s));
}

/* Content-Length of the response head in buf[0..head), -1 when absent. */
static long
head_content_length(const char *buf, size_t head)
{
	const char *p = buf, *end = buf + head;
	static const char name[] = "content-length:";

	while (p < end) {
		if ((size_t)(end - p) > sizeof(name) - 1 &&
		    strncasecmp(p, name, sizeof(name) - 1) == 0)
			return strtol(p + sizeof(name) - 1, NULL, 10);
		p = memchr(p, '\n', (size_t)(end - p));
		if (p == NULL)
			break;
		p++;
	}
	return -1;
}

/* Does buf hold a whole response: its head and Content-Length bytes? */
static int
response_complete(const char *buf, size_t len)
{
	const char *e = memmem(buf, len, "\r\n\r\n", 4);
	size_t head;
	long cl;

	if (e == NULL)
		return 0;
	head = (size_t)(e - buf) + 4;
	cl = head_content_length(buf, head);
	if (cl < 0)
		return 1; /* a head without a length: no body expected here */
	return len >= head + (size_t)cl;
}

/* Read from fd until a whole response arrived, the peer closed (or reset),
 * or timeout_ms passed.  out is NUL-terminated; *closed tells whether the
 * peer closed.  Returns the bytes read. */
static size_t
read_response(int fd, char *out, size_t size, int timeout_ms, int *closed)
{
	long long deadline = now_ms() + timeout_ms;
	struct pollfd pfd = {fd, POLLIN, 0};
	size_t got = 0;
	ssize_t n;
	int left;

	*closed = 0;
	while (got + 1 < size && !response_complete(out, got)) {
		left = (int)(deadline - now_ms());
		if (left <= 0 || poll(&pfd, 1, left) <= 0)
			break;
		n = recv(fd, out + got, size - 1 - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*closed = 1;
			break;
		}
		got += (size_t)n;
		out[got] = '\0';
	}
	out[got] = '\0';
	return got;
}

/* The status of a raw response, or -1 when buf does not start with one. */
static int
raw_status(const char *buf)
{
	if (strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
		return -1;
	return atoi(buf + 9);
}

/* The body of a raw response (after the head), "" when there is none. */
static const char *
raw_body(const char *buf)
{
	const char *p = strstr(buf, "\r\n\r\n");

	return p != NULL ? p + 4 : "";
}

/* error.code in a raw response's JSON body, copied into out. */
static const char *
raw_err_code(const char *buf, char *out, size_t size)
{
	json_t *j = json_loads(raw_body(buf), 0, NULL);
	json_t *c = json_object_get(json_object_get(j, "error"), "code");

	snprintf(out, size, "%s", json_is_string(c) ? json_string_value(c) : "");
	json_decref(j);
	return out;
}

/* GET path's status (0 when no answer). */
static long
status_of(struct srv *s, const char *path)
{
	struct res r;
	long st;

	get(s, path, &r);
	st = r.status;
	res_free(&r);
	return st;
}

/* Poll health until 200 or ms pass; the last status. */
static long
health_within(struct srv *s, int ms)
{
	long long deadline = now_ms() + ms;
	long st;

	for (;;) {
		st = status_of(s, "/api/v1/health");
		if (st == 200 || now_ms() >= deadline)
			return st;
		sleep_ms(50);
	}
}

/* Wait for the server process to exit; its status, or -1 after ms. */
static int
wait_exit(struct srv *s, int ms)
{
	long long deadline = now_ms() + ms;
	int st;

	while (now_ms() < deadline) {
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			s->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		sleep_ms(10);
	}
	return -1;
}

/* The whole of a file, NUL-terminated (caller frees), or NULL. */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL, *d;
	size_t len = 0, n;
	char chunk[8192];

	if (f == NULL)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		d = realloc(data, len + n + 1);
		if (d == NULL)
			break;
		data = d;
		memcpy(data + len, chunk, n);
		len += n;
	}
	fclose(f);
	if (data == NULL)
		data = calloc(1, 1);
	else
		data[len] = '\0';
	return data;
}

/* Lines of text that contain needle. */
static int
count_lines_with(const char *text, const char *needle)
{
	const char *line = text, *nl;
	int n = 0;
	size_t len;

	while (line != NULL && *line != '\0') {
		nl = strchr(line, '\n');
		len = nl != NULL ? (size_t)(nl - line) : strlen(line);
		if (memmem(line, len, needle, strlen(needle)) != NULL)
			n++;
		line = nl != NULL ? nl + 1 : NULL;
	}
	return n;
}

static int
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/* A creation body for environment name, padded with spaces to exactly len
 * bytes (len must leave room for the JSON).  Caller frees. */
static char *
padded_env_body(const char *name, size_t len)
{
	char head[256];
	char *b;
	int n;

	n = snprintf(head, sizeof(head),
		     "{\"name\":\"%s\",\"provider\":\"sandbox\",\"blueprint\":\"demo\","
		     "\"params\":{\"owner\":\"test\"}",
		     name);
	if (n < 0 || (size_t)n + 1 > len)
		return NULL;
	b = malloc(len + 1);
	if (b == NULL)
		return NULL;
	memcpy(b, head, (size_t)n);
	memset(b + n, ' ', len - (size_t)n - 1);
	b[len - 1] = '}';
	b[len] = '\0';
	return b;
}

/* ---- 1. garbage --------------------------------------------------------- */

struct garbage {
	const char *name;
	char *data;
	size_t len;
};

static uint32_t
xorshift(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static char *
noise(size_t len, uint32_t seed)
{
	char *b = malloc(len);
	size_t i;

	for (i = 0; b != NULL && i < len; i++)
		b[i] = (char)(xorshift(&seed) & 0xff);
	return b;
}

static char *
dup_str(const char *s, size_t *len)
{
	*len = strlen(s);
	return strdup(s);
}

/* Every case goes out at once on its own connection, so the cases the
 * server can only end by its idle timeout cost one timeout, not several. */
static void
t_garbage(void)
{
	const char *const extra[] = {"--timeout", "1", NULL};
	char big_hdr_head[] = "GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ";
	struct garbage g[10];
	int fd[10], closed, st, ok, i, ng = 0;
	static char out[4096];
	struct srv s;
	size_t n;

	if (srv_start(&s, NULL, extra) != 0) {
		CHECK(!"server starts");
		return;
	}
	g[ng].name = "random binary, then CRLF CRLF";
	g[ng].len = 516;
	g[ng].data = noise(g[ng].len, 12345);
	if (g[ng].data != NULL)
		memcpy(g[ng].data + 512, "\r\n\r\n", 4);
	ng++;
	g[ng].name = "64 KiB of noise";
	g[ng].len = 65536;
	g[ng].data = noise(g[ng].len, 777);
	ng++;
	g[ng].name = "64 KiB of letters, no newline";
	g[ng].len = 65536;
	g[ng].data = malloc(g[ng].len);
	if (g[ng].data != NULL)
		memset(g[ng].data, 'a', g[ng].len);
	ng++;
	g[ng].name = "bare CRLF CRLF";
	g[ng].data = dup_str("\r\n\r\n", &g[ng].len);
	ng++;
	g[ng].name = "request line without version";
	g[ng].data = dup_str("GET /api/v1/health\r\nHost: x\r\n\r\n", &g[ng].len);
	ng++;
	g[ng].name = "HTTP/0.9 request";
	g[ng].data = dup_str("GET /api/v1/health\r\n", &g[ng].len);
	ng++;
	g[ng].name = "header without colon";
	g[ng].data = dup_str("GET /api/v1/health HTTP/1.1\r\nHost: x\r\n"
			     "NoColonHere\r\n\r\n", &g[ng].len);
	ng++;
	g[ng].name = "NUL in the request line";
	g[ng].len = 33;
	g[ng].data = malloc(g[ng].len);
	if (g[ng].data != NULL)
		memcpy(g[ng].data, "GET /api/v1\0health HTTP/1.1\r\n\r\n\r\n", 33);
	ng++;
	g[ng].name = "64 KiB header line";
	g[ng].len = strlen(big_hdr_head) + 65536 + 4;
	g[ng].data = malloc(g[ng].len);
	if (g[ng].data != NULL) {
		n = strlen(big_hdr_head);
		memcpy(g[ng].data, big_hdr_head, n);
		memset(g[ng].data + n, 'b', 65536);
		memcpy(g[ng].data + n + 65536, "\r\n\r\n", 4);
	}
	ng++;

	for (i = 0; i < ng; i++) {
		fd[i] = tcp_connect(&s);
		CHECK(fd[i] >= 0);
		CHECK(g[i].data != NULL);
		/* A send may fail when the server has already given up on
		 * the connection; what it answered is still readable. */
		if (fd[i] >= 0 && g[i].data != NULL)
			send_all(fd[i], g[i].data, g[i].len);
	}
	for (i = 0; i < ng; i++) {
		if (fd[i] < 0)
			continue;
		/* Idle timeout 1 s; ASan and a loaded machine get slack. */
		n = read_response(fd[i], out, sizeof(out), 6000, &closed);
		st = raw_status(out);
		ok = (n == 0 && closed) || (st >= 400 && st <= 499);
		if (!ok)
			fprintf(stderr, "    %s: got %zu bytes (%s), status %d: %.60s\n",
				g[i].name, n, closed ? "closed" : "still open", st, out);
		CHECK(ok);
		close(fd[i]);
		free(g[i].data);
	}
	CHECK_INT(health_within(&s, 3000), 200);
	CHECK_INT(srv_stop(&s, 0), 0);
}

/* ---- 2. truncated requests ------------------------------------------------ */

static void
t_truncated(void)
{
	static const char *const cuts[] = {
		/* Content-Length 100, 10 bytes of body. */
		"POST /api/v1/environments HTTP/1.1\r\nHost: x\r\n"
		"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
		"{\"name\":\"t",
		/* Cut in the middle of a header. */
		"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nAcce",
		/* Cut in the request line. */
		"POST /api/v1/envir",
		/* Headers complete, body never sent. */
		"POST /api/v1/environments HTTP/1.1\r\nHost: x\r\n"
		"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n",
	};
	struct srv s;
	struct res r;
	size_t i;
	int fd;

	if (srv_start(&s, NULL, NULL) != 0) {
		CHECK(!"server starts");
		return;
	}
	for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		fd = tcp_connect(&s);
		CHECK(fd >= 0);
		if (fd < 0)
			continue;
		CHECK_INT(send_str(fd, cuts[i]), 0);
		sleep_ms(50); /* let the server read it before the close */
		close(fd);
	}
	CHECK_INT(health_within(&s, 3000), 200);
	CHECK_INT(make_env(&s, "after-cut"), 0);
	get(&s, "/api/v1/environments/after-cut", &r);
	CHECK_INT(r.status, 200);
	res_free(&r);
	/* The cut requests created nothing. */
	get(&s, "/api/v1/environments", &r);
	CHECK_INT(r.status, 200);
	CHECK_INT(json_array_size(json_object_get(r.json, "environments")), 1);
	res_free(&r);
	CHECK_INT(srv_stop(&s, 0), 0);
}

/* ---- 3. slow clients ------------------------------------------------------ */

#define SLOW_CLIENTS 20

static void
t_slowloris(void)
{
	const char *const extra[] = {"--timeout", "1", NULL};
	int fd[SLOW_CLIENTS], closed, i, nclosed = 0;
	long long t0, t, elapsed, last = 0;
	char out[512];
	struct srv s;
	long st;

	if (srv_start(&s, NULL, extra) != 0) {
		CHECK(!"server starts");
		return;
	}
	for (i = 0; i < SLOW_CLIENTS; i++) {
		fd[i] = tcp_connect(&s);
		CHECK(fd[i] >= 0);
		if (fd[i] >= 0)
			CHECK_INT(send_str(fd[i], "GET /api/v1/hea"), 0);
	}
	t0 = now_ms();
	/* The slow ones must not hold anybody else up. */
	t = now_ms();
	st = status_of(&s, "/api/v1/health");
	elapsed = now_ms() - t;
	CHECK_INT(st, 200);
	if (elapsed >= 1000)
		fprintf(stderr, "    health took %lld ms beside slow clients\n", elapsed);
	CHECK(elapsed < 1000);
	/* Each slow one is cut off by the 1 s idle timeout. */
	for (i = 0; i < SLOW_CLIENTS; i++) {
		if (fd[i] < 0)
			continue;
		read_response(fd[i], out, sizeof(out), (int)(t0 + 4000 - now_ms()),
			      &closed);
		CHECK(raw_status(out) != 200);
		if (closed) {
			nclosed++;
			last = now_ms() - t0;
		}
		close(fd[i]);
	}
	CHECK_INT(nclosed, SLOW_CLIENTS);
	if (last > 3500)
		fprintf(stderr, "    last slow client closed after %lld ms\n", last);
	CHECK(last <= 3500);
	/* Closed by the timeout, not refused at once. */
	CHECK(last >= 500);
	CHECK_INT(status_of(&s, "/api/v1/health"), 200);
	CHECK_INT(srv_stop(&s, 0), 0);
}

/* ---- 4. connection limits ------------------------------------------------- */

static void
t_per_ip_limit(void)
{
	const char *const extra[] = {"--max-connections-per-ip", "4", NULL};
	int idle[4], fd, closed, i;
	char out[1024];
	struct srv s;

	if (srv_start(&s, NULL, extra) != 0) {
		CHECK(!"server starts");
		return;
	}
	for (i = 0; i < 4; i++) {
		idle[i] = tcp_connect(&s);
		CHECK(idle[i] >= 0);
	}
	sleep_ms(300); /* the server accepts them */
	fd = tcp_connect(&s);
	if (fd >= 0) {
		send_str(fd, "GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n");
		read_response(fd, out, sizeof(out), 2000, &closed);
		if (raw_status(out) == 200)
			fprintf(stderr, "    a 5th connection from one address was served\n");
		CHECK(raw_status(out) != 200);
		close(fd);
	}
	CHECK(status_of(&s, "/api/v1/health") != 200);
	for (i = 0; i < 4; i++)
		if (idle[i] >= 0)
			close(idle[i]);
	CHECK_INT(health_within(&s, 3000), 200);
	CHECK_INT(srv_stop(&s, 0), 0);
}

/* The total limit: a client past it is not served while the server is
 * full, and is not left hanging once a place frees up (served or closed). */
static void
t_total_limit(void)
{
	const char *const extra[] = {"--max-connections", "4", NULL};
	int idle[4], fd, closed, i;
	char out[1024];
	struct srv s;
	size_t n;

	if (srv_start(&s, NULL, extra) != 0) {
		CHECK(!"server starts");
		return;
	}
	for (i = 0; i < 4; i++) {
		idle[i] = tcp_connect(&s);
		CHECK(idle[i] >= 0);
	}
	sleep_ms(300);
	fd = tcp_connect(&s);
	CHECK(fd >= 0);
	if (fd >= 0) {
		send_str(fd, "GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n");
		n = read_response(fd, out, sizeof(out), 1000, &closed);
		CHECK(raw_status(out) != 200);
		for (i = 0; i < 4; i++)
			if (idle[i] >= 0)
				close(idle[i]);
		if (n == 0 && !closed) {
			n = read_response(fd, out, sizeof(out), 4000, &closed);
			if (n == 0 && !closed)
				fprintf(stderr, "    the waiting client still hangs\n");
			CHECK(n > 0 || closed);
		}
		close(fd);
	} else {
		for (i = 0; i < 4; i++)
			if (idle[i] >= 0)
				close(idle[i]);
	}
	CHECK_INT(health_within(&s, 3000), 200);
	CHECK_INT(srv_stop(&s, 0), 0);
}

/* ---- 5. body limits ------------------------------------------------------- */

static void
t_body_limits(void)
{
	static const char chunked_head[] =
		"POST /api/v1/environments HTTP/1.1\r\nHost: x\r\n"
		"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
	static char out[8192];
	char code[64], line[32];
	struct srv s;
	struct res r;
	char *body, *chunk;
	int fd, closed, i;
	size_t len;

	if (srv_start(&s, NULL, NULL) != 0) {
		CHECK(!"server starts");
		return;
	}

	/* One byte over, with its Content-Length. */
	body = padded_env_body("over", (size_t)MIB + 1);
	CHECK(body != NULL);
	if (body != NULL) {
		req(&s, "POST", "/api/v1/environments", "application/json", body,
		    (size_t)MIB + 1, NULL, &r);
		CHECK_INT(r.status, 413);
		CHECK_STR(err_code(&r), "too_large");
		res_free(&r);
		free(body);
	}

	/* Exactly the limit is still a body. */
	body = padded_env_body("exact-mib", (size_t)MIB);
	CHECK(body != NULL);
	if (body != NULL) {
		req(&s, "POST", "/api/v1/environments", "application/json", body,
		    (size_t)MIB, NULL, &r);
		CHECK_INT(r.status, 201);
		res_free(&r);
		free(body);
	}

	/* A declared length over the limit is refused before any body. */
	fd = tcp_connect(&s);
	CHECK(fd >= 0);
	if (fd >= 0) {
		send_str(fd, "POST /api/v1/environments HTTP/1.1\r\nHost: x\r\n"
			     "Content-Type: application/json\r\n"
			     "Content-Length: 2097152\r\n\r\n");
		read_response(fd, out, sizeof(out), 3000, &closed);
		CHECK_INT(raw_status(out), 413);
		CHECK_STR(raw_err_code(out, code, sizeof(code)), "too_large");
		close(fd);
	}

	/* Chunked, no length declared: 17 chunks of 64 KiB. */
	fd = tcp_connect(&s);
	chunk = malloc(65536);
	CHECK(fd >= 0);
	CHECK(chunk != NULL);
	if (fd >= 0 && chunk != NULL) {
		memset(chunk, ' ', 65536);
		chunk[0] = '{';
		CHECK_INT(send_str(fd, chunked_head), 0);
		for (i = 0; i < 17; i++) {
			snprintf(line, sizeof(line), "%x\r\n", 65536);
			if (send_str(fd, line) != 0 || send_all(fd, chunk, 65536) != 0 ||
			    send_str(fd, "\r\n") != 0)
				break;
		}
		send_str(fd, "0\r\n\r\n");
		read_response(fd, out, sizeof(out), 5000, &closed);
		CHECK_INT(raw_status(out), 413);
		CHECK_STR(raw_err_code(out, code, sizeof(code)), "too_large");
	}
	if (fd >= 0)
		close(fd);
	free(chunk);

	/* A small chunked body is fine. */
	fd = tcp_connect(&s);
	CHECK(fd >= 0);
	body = padded_env_body("chunky", 200);
	if (fd >= 0 && body != NULL) {
		len = strlen(body);
		send_str(fd, chunked_head);
		snprintf(line, sizeof(line), "%zx\r\n", len / 2);
		send_str(fd, line);
		send_all(fd, body, len / 2);
		snprintf(line, sizeof(line), "\r\n%zx\r\n", len - len / 2);
		send_str(fd, line);
		send_all(fd, body + len / 2, len - len / 2);
		send_str(fd, "\r\n0\r\n\r\n");
		read_response(fd, out, sizeof(out), 3000, &closed);
		CHECK_INT(raw_status(out), 201);
	}
	if (fd >= 0)
		close(fd);
	free(body);

	/* And the server goes on taking ordinary bodies. */
	CHECK_INT(make_env(&s, "small-after"), 0);
	get(&s, "/api/v1/environments", &r);
	CHECK_INT(r.status, 200);
	CHECK_INT(json_array_size(json_object_get(r.json, "environments")), 3);
	res_free(&r);
	CHECK_INT(srv_stop(&s, 0), 0);
}

/* ---- 6. static files ------------------------------------------------------ */

static const char *const escapes[] = {
	"/../Makefile",
	"/%2e%2e/Makefile",
	"/%2E%2E%2FMakefile",
	"/..%2fMakefile",
	"/.%2e/Makefile",
	"/.hidden",
	"//etc/passwd",
	"/web/../../etc/passwd",
	"/..",
	"/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
	"/..\\Makefile",
	"/index.html/../../Makefile",
	NULL,
};

static void
t_static_files(void)
{
	char etag[128], ctype[128], allow[128], hdr[160], raw[512];
	const char *const inm[] = {hdr, NULL};
	static char out[65536];
	struct srv s;
	struct res r;
	int i, closed, fd;

	if (srv_start(&s, NULL, NULL) != 0) {
		CHECK(!"server starts");
		return;
	}
	get(&s, "/", &r);
	CHECK_INT(r.status, 200);
	CHECK(res_header(&r, "Content-Type", ctype, sizeof(ctype)) != NULL &&
	      strncmp(ctype, "text/html", 9) == 0);
	CHECK(res_header(&r, "ETag", etag, sizeof(etag)) != NULL && etag[0] != '\0');
	CHECK(strstr(r.body, "<html") != NULL);
	res_free(&r);

	snprintf(hdr, sizeof(hdr), "If-None-Match: %s", etag);
	req(&s, "GET", "/", NULL, NULL, 0, inm, &r);
	CHECK_INT(r.status, 304);
	CHECK_INT(r.len, 0);
	res_free(&r);

	get(&s, "/app.css", &r);
	CHECK_INT(r.status, 200);
	CHECK(res_header(&r, "Content-Type", ctype, sizeof(ctype)) != NULL &&
	      strncmp(ctype, "text/css", 8) == 0);
	res_free(&r);
	get(&s, "/app.js", &r);
	CHECK_INT(r.status, 200);
	CHECK(res_header(&r, "Content-Type", ctype, sizeof(ctype)) != NULL &&
	      strncmp(ctype, "text/javascript", 15) == 0);
	res_free(&r);

	for (i = 0; escapes[i] != NULL; i++) {
		get(&s, escapes[i], &r);
		if (r.status != 404)
			fprintf(stderr, "    GET %s answered %ld\n", escapes[i], r.status);
		CHECK_INT(r.status, 404);
		CHECK(strstr(r.body, "root:") == NULL);
		CHECK(strstr(r.body, "PKGS") == NULL);
		res_free(&r);
		/* The same bytes on a raw socket, in case curl tidied them. */
		fd = tcp_connect(&s);
		CHECK(fd >= 0);
		if (fd < 0)
			continue;
		snprintf(raw, sizeof(raw),
			 "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			 escapes[i]);
		send_str(fd, raw);
		read_response(fd, out, sizeof(out), 3000, &closed);
		if (raw_status(out) != 404)
			fprintf(stderr, "    raw GET %s answered %d\n", escapes[i],
				raw_status(out));
		CHECK_INT(raw_status(out), 404);
		CHECK(strstr(out, "root:") == NULL);
		close(fd);
	}

	req(&s, "POST", "/", "text/plain", "x", 1, NULL, &r);
	CHECK_INT(r.status, 405);
	CHECK(res_header(&r, "Allow", allow, sizeof(allow)) != NULL &&
	      strstr(allow, "GET") != NULL);
	res_free(&r);
	req(&s, "DELETE", "/app.js", NULL, NULL, 0, NULL, &r);
	CHECK_INT(r.status, 405);
	res_free(&r);
	CHECK_INT(srv_stop(&s, 0), 0);
}

/* A web directory of our own: a regular file, a hidden one, and symbolic
 * links that lead out of it. */
static void
t_static_symlinks(void)
{
	static const char *const outside[] = {
		"/passwd.txt", "/etc/passwd", "/etc/hostname", "/.hidden",
		"/.git/config", "/sub/up.txt", NULL,
	};
	char dir[] = "/tmp/outrigger-test-XXXXXX";
	char web[300], path[400];
	const char *extra[] = {"--web", web, NULL};
	struct srv s;
	struct res r;
	int i, made = 1;

	if (mkdtemp(dir) == NULL) {
		CHECK(!"mkdtemp");
		return;
	}
	snprintf(web, sizeof(web), "%s/web", dir);
	made &= mkdir(web, 0755) == 0;
	snprintf(path, sizeof(path), "%s/index.html", web);
	made &= write_file(path, "<html>own</html>\n") == 0;
	snprintf(path, sizeof(path), "%s/ok.txt", web);
	made &= write_file(path, "plain and regular\n") == 0;
	snprintf(path, sizeof(path), "%s/.hidden", web);
	made &= write_file(path, "secret\n") == 0;
	snprintf(path, sizeof(path), "%s/.git", web);
	made &= mkdir(path, 0755) == 0;
	snprintf(path, sizeof(path), "%s/.git/config", web);
	made &= write_file(path, "[secret]\n") == 0;
	snprintf(path, sizeof(path), "%s/passwd.txt", web);
	made &= symlink("/etc/passwd", path) == 0;
	snprintf(path, sizeof(path), "%s/etc", web);
	made &= symlink("/etc", path) == 0;
	snprintf(path, sizeof(path), "%s/sub", web);
	made &= mkdir(path, 0755) == 0;
	snprintf(path, sizeof(path), "%s/sub/up.txt", web);
	made &= symlink("../../server.log", path) == 0; /* beside web/, not in it */
	CHECK(made);
	if (srv_start(&s, dir, extra) != 0) {
		CHECK(!"server starts");
		srv_rmdir(dir);
		return;
	}
	get(&s, "/ok.txt", &r);
	CHECK_INT(r.status, 200);
	CHECK_STR(r.body, "plain and regular\n");
	res_free(&r);
	get(&s, "/", &r);
	CHECK_INT(r.status, 200);
	CHECK_STR(r.body, "<html>own</html>\n");
	res_free(&r);
	for (i = 0; outside[i] != NULL; i++) {
		get(&s, outside[i], &r);
		if (r.status != 404)
			fprintf(stderr, "    GET %s answered %ld\n", outside[i], r.status);
		CHECK_INT(r.status, 404);
		CHECK(strstr(r.body, "root:") == NULL);
		CHECK(strstr(r.body, "secret") == NULL);
		res_free(&r);
	}
	CHECK_INT(srv_stop(&s, 0), 0); /* removes dir, links and all */
}

/* ---- 7. graceful stop ----------------------------------------------------- */

static void
t_graceful_stop(void)
{
	char head[256], out[4096];
	long long t_answer, t_exit;
	struct srv s, s2;
	struct res r;
	int fd, closed, i, st, sent_ok = 1;
	char *body;
	char *d;

	if (srv_start(&s, NULL, NULL) != 0) {
		CHECK(!"server starts");
		return;
	}
	CHECK_INT(make_env(&s, "before"), 0);
	body = padded_env_body("graceful", 2000);
	fd = tcp_connect(&s);
	CHECK(fd >= 0);
	CHECK(body != NULL);
	if (fd < 0 || body == NULL) {
		if (fd >= 0)
			close(fd);
		free(body);
		srv_stop(&s, 0);
		return;
	}
	snprintf(head, sizeof(head),
		 "POST /api/v1/environments HTTP/1.1\r\nHost: x\r\n"
		 "Content-Type: application/json\r\nContent-Length: 2000\r\n\r\n");
	sent_ok &= send_str(fd, head) == 0;
	for (i = 0; i < 10; i++) {
		sent_ok &= send_all(fd, body + i * 200, 200) == 0;
		if (i == 4)
			CHECK_INT(kill(s.pid, SIGTERM), 0);
		sleep_ms(100);
	}
	CHECK(sent_ok);
	read_response(fd, out, sizeof(out), 5000, &closed);
	t_answer = now_ms();
	if (raw_status(out) != 201)
		fprintf(stderr, "    in-flight request got: %.80s (%s)\n",
			out[0] != '\0' ? out : "nothing",
			closed ? "closed" : "open");
	CHECK_INT(raw_status(out), 201);
	free(body);
	/* Kept open on purpose: an idle keep-alive connection must not hold
	 * up the stop. */
	st = wait_exit(&s, 8000);
	t_exit = now_ms();
	close(fd);
	CHECK_INT(st, 0);
	if (st != 0)
		srv_kill(&s);
	CHECK(t_exit - t_answer < 5000);
	d = slurp(s.log);
	CHECK(d != NULL && strstr(d, "SIGTERM received") != NULL);
	CHECK(d != NULL && strstr(d, "stopped cleanly") != NULL);
	CHECK(d != NULL && strstr(d, "unfinished") == NULL);
	free(d);
	srv_stop(&s, 1);

	/* The database survived: both environments are there. */
	if (srv_start(&s2, s.dir, NULL) != 0) {
		CHECK(!"server restarts on the same directory");
		srv_rmdir(s.dir);
		return;
	}
	get(&s2, "/api/v1/environments", &r);
	CHECK_INT(r.status, 200);
	CHECK_INT(json_array_size(json_object_get(r.json, "environments")), 2);
	res_free(&r);
	CHECK_INT(status_of(&s2, "/api/v1/environments/graceful"), 200);
	CHECK_INT(status_of(&s2, "/api/v1/environments/before"), 200);
	CHECK_INT(srv_stop(&s2, 0), 0);
}

/* While a stop waits for requests in flight, a new client is refused or
 * answered at once, not left connected and unanswered until the server
 * exits (a load balancer or a retry should go elsewhere right away). */
static void
t_stop_refuses_new(void)
{
	char out[2048];
	long long t0;
	struct srv s;
	int fd, fd2, closed, st;
	char *body;
	size_t n;

	if (srv_start(&s, NULL, NULL) != 0) {
		CHECK(!"server starts");
		return;
	}
	body = padded_env_body("late", 300);
	fd = tcp_connect(&s);
	CHECK(fd >= 0);
	CHECK(body != NULL);
	if (fd < 0 || body == NULL) {
		if (fd >= 0)
			close(fd);
		free(body);
		srv_stop(&s, 0);
		return;
	}
	send_str(fd, "POST /api/v1/environments HTTP/1.1\r\nHost: x\r\n"
		     "Content-Type: application/json\r\nContent-Length: 300\r\n\r\n");
	send_all(fd, body, 100);
	sleep_ms(200); /* the server has the headers: the request is in flight */
	CHECK_INT(kill(s.pid, SIGTERM), 0);
	sleep_ms(200);
	t0 = now_ms();
	fd2 = tcp_connect(&s);
	if (fd2 >= 0) {
		send_str(fd2, "GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n");
		n = read_response(fd2, out, sizeof(out), 1000, &closed);
		if (n == 0 && !closed)
			fprintf(stderr, "    a client that connected during the stop got "
				"no answer and no close in %lld ms\n", now_ms() - t0);
		CHECK(n > 0 || closed);
		close(fd2);
	}
	/* The request in flight still completes. */
	send_all(fd, body + 100, 200);
	read_response(fd, out, sizeof(out), 5000, &closed);
	CHECK_INT(raw_status(out), 201);
	close(fd);
	free(body);
	st = wait_exit(&s, 8000);
	CHECK_INT(st, 0);
	if (st != 0)
		srv_kill(&s);
	srv_stop(&s, 0);
}

/* SIGINT stops as SIGTERM does, even with an idle keep-alive client. */
static void
t_sigint(void)
{
	char out[2048];
	struct srv s;
	int fd, closed, st;
	char *d;

	if (srv_start(&s, NULL, NULL) != 0) {
		CHECK(!"server starts");
		return;
	}
	fd = tcp_connect(&s);
	CHECK(fd >= 0);
	if (fd >= 0) {
		send_str(fd, "GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n");
		read_response(fd, out, sizeof(out), 3000, &closed);
		CHECK_INT(raw_status(out), 200);
		CHECK(!closed);
	}
	CHECK_INT(kill(s.pid, SIGINT), 0);
	st = wait_exit(&s, 8000);
	CHECK_INT(st, 0);
	if (st != 0)
		srv_kill(&s);
	if (fd >= 0)
		close(fd);
	d = slurp(s.log);
	CHECK(d != NULL && strstr(d, "SIGINT received") != NULL);
	free(d);
	srv_stop(&s, 0);
}

/* ---- 8. access log -------------------------------------------------------- */

static void
t_access_log(void)
{
	/* A newline (and CR) in the path that tries to forge a log line. */
	static const char forged[] =
		"/api/v1/health%0d%0a2001-01-01T00:00:00.000Z%20access%20"
		"203.0.113.9%20%22GET%20/forged%22%20200%201%200.01ms";
	static const char *const want[] = {
		"\"GET /api/v1/health\" 200 ",
		"\"GET /api/v1/nope\" 404 ",
		"\"POST /api/v1/environments\" 400 ",
		"\"POST /api/v1/environments\" 201 ",
		"\"DELETE /api/v1/health\" 405 ",
		"\"GET /\" 200 ",
		NULL,
	};
	const int sent = 7;
	long long deadline;
	struct srv s;
	struct res r;
	char *d = NULL;
	const char *line, *nl, *q;
	int i, quotes, bad_lines = 0;

	if (srv_start(&s, NULL, NULL) != 0) {
		CHECK(!"server starts");
		return;
	}
	CHECK_INT(status_of(&s, "/api/v1/health"), 200);
	CHECK_INT(status_of(&s, "/api/v1/nope"), 404);
	send_json(&s, "POST", "/api/v1/environments", "{not json", &r);
	CHECK_INT(r.status, 400);
	res_free(&r);
	CHECK_INT(make_env(&s, "logged"), 0);
	req(&s, "DELETE", "/api/v1/health", NULL, NULL, 0, NULL, &r);
	CHECK_INT(r.status, 405);
	res_free(&r);
	CHECK_INT(status_of(&s, "/"), 200);
	CHECK_INT(status_of(&s, forged), 404);

	/* Lines are written when a request completes; give them a moment. */
	deadline = now_ms() + 3000;
	do {
		free(d);
		d = slurp(s.log);
		if (d != NULL && count_lines_with(d, " access ") >= sent)
			break;
		sleep_ms(20);
	} while (now_ms() < deadline);
	sleep_ms(100);
	free(d);
	d = slurp(s.log);
	CHECK(d != NULL);
	if (d == NULL) {
		srv_stop(&s, 0);
		return;
	}
	CHECK_INT(count_lines_with(d, " access "), sent);
	for (i = 0; want[i] != NULL; i++) {
		if (count_lines_with(d, want[i]) < 1)
			fprintf(stderr, "    no access line with %s\n", want[i]);
		CHECK(count_lines_with(d, want[i]) >= 1);
	}
	CHECK_INT(count_lines_with(d, "\"GET /api/v1/health\" 200 "), 1);
	/* The forged request is one line, with its real status, and nothing
	 * in the log begins with the forged timestamp. */
	CHECK_INT(count_lines_with(d, "203.0.113.9"), 1);
	CHECK(count_lines_with(d, "203.0.113.9") == 0 ||
	      strstr(strstr(d, "203.0.113.9"), " 404 ") != NULL);
	CHECK(strstr(d, "\n2001-01-01T00:00:00.000Z") == NULL);
	/* Each access line has exactly its two quotes. */
	for (line = d; line != NULL && *line != '\0'; line = nl != NULL ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (memmem(line, nl != NULL ? (size_t)(nl - line) : strlen(line),
			   " access ", 8) == NULL)
			continue;
		quotes = 0;
		for (q = line; q != nl && *q != '\0'; q++)
			quotes += *q == '"';
		if (quotes != 2) {
			fprintf(stderr, "    access line with %d quotes: %.*s\n", quotes,
				(int)(nl != NULL ? nl - line : (long)strlen(line)), line);
			bad_lines++;
		}
	}
	CHECK_INT(bad_lines, 0);
	free(d);
	CHECK_INT(srv_stop(&s, 0), 0);
}

/* ---- 9. many connections -------------------------------------------------- */

#define MANY_CONNS 200
#define MANY_REQS 5

struct many {
	const char *url;
	pthread_barrier_t *barrier;
	int ok;
	long connects;
};

static size_t
discard(char *p, size_t sz, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return sz * n;
}

static void *
many_worker(void *arg)
{
	struct many *m = arg;
	CURL *c = curl_easy_init();
	long st, nc;
	int i;

	for (i = 0; i < MANY_REQS; i++) {
		st = 0;
		nc = 0;
		if (c != NULL) {
			curl_easy_setopt(c, CURLOPT_URL, m->url);
			curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
			curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
			curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
			if (curl_easy_perform(c) == CURLE_OK)
				curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
			curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &nc);
		}
		m->ok += st == 200;
		m->connects += nc;
		/* After the first answer, all connections are open at once. */
		if (i == 0)
			pthread_barrier_wait(m->barrier);
	}
	if (c != NULL)
		curl_easy_cleanup(c);
	return NULL;
}

static void
t_many_connections(void)
{
	static struct many m[MANY_CONNS];
	pthread_t th[MANY_CONNS];
	pthread_barrier_t barrier;
	pthread_attr_t attr;
	char url[192];
	struct srv s;
	int i, started = 0, ok = 0;
	long connects = 0;
	long long t0;

	if (srv_start(&s, NULL, NULL) != 0) {
		CHECK(!"server starts");
		return;
	}
	snprintf(url, sizeof(url), "%s/api/v1/health", s.url);
	pthread_barrier_init(&barrier, NULL, MANY_CONNS);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	t0 = now_ms();
	for (i = 0; i < MANY_CONNS; i++) {
		m[i].url = url;
		m[i].barrier = &barrier;
		m[i].ok = 0;
		m[i].connects = 0;
		if (pthread_create(&th[i], &attr, many_worker, &m[i]) != 0)
			break;
		started++;
	}
	CHECK_INT(started, MANY_CONNS);
	if (started != MANY_CONNS) {
		/* The barrier would never open; nothing sane is left to do. */
		fprintf(stderr, "    could not start %d threads\n", MANY_CONNS);
		abort();
	}
	for (i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		ok += m[i].ok;
		connects += m[i].connects;
	}
	pthread_attr_destroy(&attr);
	pthread_barrier_destroy(&barrier);
	CHECK_INT(ok, MANY_CONNS * MANY_REQS);
	/* Keep-alive held: one connection per client. */
	CHECK_INT(connects, MANY_CONNS);
	fprintf(stderr, "    %d requests on %ld connections in %lld ms\n",
		MANY_CONNS * MANY_REQS, connects, now_ms() - t0);
	CHECK_INT(status_of(&s, "/api/v1/health"), 200);
	CHECK_INT(srv_stop(&s, 0), 0);
}

void
suite_robust(void)
{
	RUN(t_garbage);
	RUN(t_truncated);
	RUN(t_slowloris);
	RUN(t_per_ip_limit);
	RUN(t_total_limit);
	RUN(t_body_limits);
	RUN(t_static_files);
	RUN(t_static_symlinks);
	RUN(t_graceful_stop);
	RUN(t_stop_refuses_new);
	RUN(t_sigint);
	RUN(t_access_log);
	RUN(t_many_connections);
}

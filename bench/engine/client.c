/*
 * client.c - the measuring side of bench/engine/run.sh, one binary with
 * one subcommand per job.  Libc only (no libcurl: the SSE watchers must be
 * thousands of cheap non-blocking sockets on one epoll loop); 127.0.0.1
 * (any IPv4 literal) only.
 *
 *   spawn N PROG [ARG...]       posix_spawn + waitpid N times
 *   step N OUTRIGGER JOBFILE    N standalone `OUTRIGGER step` runs of the job in
 *                               JOBFILE (one JSON line), wired like the server
 *                               wires a runner (job on 0, protocol on 3)
 *   lines N BYTES               N lines of BYTES bytes on stdout (for exec)
 *   probe HOST PORT PATH RATE CONNS SECONDS [--pid PID] [--raw FILE]
 *                               GET PATH at a fixed RATE per second over CONNS
 *                               keep-alive connections for SECONDS; latency is
 *                               measured from when each request was due, so a
 *                               stalled server is not hidden (no coordinated
 *                               omission)
 *   watch HOST PORT PATH N --expect K [--ready FILE] [--timeout S] [--pid PID]
 *                               [--raw FILE]
 *                               N watchers of an SSE stream (HTTP/1.1, chunked
 *                               decoded); counts data lines holding
 *                               "tick I USEC" (I < K) and their latency
 *                               (receive time - USEC, CLOCK_REALTIME); writes
 *                               FILE once all N streams are open; ends when
 *                               every stream has ended or after S seconds
 *
 * Each subcommand prints one summary line of key=value pairs on stdout
 * (times in ms unless the key says us), and exits 0 when it could measure,
 * 1 when it could not (the summary says why), 2 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- small things -------------------------------------------------------- */

static int64_t
now_us(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
usage(void)
{
	fprintf(stderr,
		"usage: client spawn N PROG [ARG...]\n"
		"       client step N OUTRIGGER JOBFILE\n"
		"       client lines N BYTES\n"
		"       client probe HOST PORT PATH RATE CONNS SECONDS [--pid PID] [--raw FILE]\n"
		"       client watch HOST PORT PATH N --expect K [--ready FILE] [--timeout S]"
		" [--pid PID] [--raw FILE]\n");
	exit(2);
}

static long
arg_long(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "client: bad number '%s' (%ld..%ld)\n", s, min, max);
		exit(2);
	}
	return v;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Percentile p (0..100) of sorted v[n], nearest rank, in ms. */
static double
pct_ms(const int64_t *v, size_t n, double p)
{
	size_t k;

	if (n == 0)
		return -1;
	k = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (double)v[k - 1] / 1000.0;
}

/* VmRSS of pid in kB, or -1. */
static long
rss_kb(long pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

/* A non-blocking socket connecting to host:port; -1 on error. */
static int
open_conn(const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
make_addr(struct sockaddr_in *sa, const char *host, const char *port)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)arg_long(port, 1, 65535));
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
		fprintf(stderr, "client: HOST must be an IPv4 address such as 127.0.0.1\n");
		exit(2);
	}
}

/* ---- HTTP/1.1 response parsing ------------------------------------------------ */

enum ck_state { CK_SIZE, CK_DATA, CK_DATA_CR, CK_DATA_LF, CK_TRAILER, CK_DONE };

/* One response: headers, then a body by Content-Length, chunks, or until
 * the connection closes. */
struct resp {
	char head[16384];
	size_t hlen;
	int have_head;
	int status;
	int chunked;
	long long clen;		/* -1: unknown */
	long long got;		/* body bytes (Content-Length mode) */
	enum ck_state ck;
	unsigned long long ck_left;
	int ck_digits;
	int done;
};

static void
resp_reset(struct resp *r)
{
	r->hlen = 0;
	r->have_head = 0;
	r->status = 0;
	r->chunked = 0;
	r->clen = -1;
	r->got = 0;
	r->ck = CK_SIZE;
	r->ck_left = 0;
	r->ck_digits = 0;
	r->done = 0;
}

static const char *
find_header(const char *head, const char *name)
{
	const char *p = head;
	size_t n = strlen(name);

	while ((p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':')
			return p + n + 1;
	}
	return NULL;
}

/* Feed bytes; body bytes go to fn.  Returns bytes used (the rest belongs
 * to the next response), or -1 on a malformed response. */
static long
resp_feed(struct resp *r, const char *p, size_t len,
	  void (*fn)(void *, const char *, size_t), void *ctx)
{
	size_t i = 0, take;
	const char *end, *v;
	char c;

	while (!r->have_head && i < len) {
		if (r->hlen + 1 >= sizeof(r->head))
			return -1;
		r->head[r->hlen++] = p[i++];
		r->head[r->hlen] = '\0';
		if (r->hlen >= 4 && memcmp(r->head + r->hlen - 4, "\r\n\r\n", 4) == 0) {
			r->have_head = 1;
			if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1)
				return -1;
			v = find_header(r->head, "Transfer-Encoding");
			r->chunked = v != NULL && strstr(v, "chunked") != NULL &&
				     (end = strstr(v, "\r\n")) != NULL && strstr(v, "chunked") < end;
			v = find_header(r->head, "Content-Length");
			if (v != NULL && !r->chunked)
				r->clen = strtoll(v, NULL, 10);
			if (!r->chunked && r->clen == 0)
				r->done = 1;
		}
	}
	while (r->have_head && !r->done && i < len) {
		if (!r->chunked) {
			take = len - i;
			if (r->clen >= 0 && (long long)take > r->clen - r->got)
				take = (size_t)(r->clen - r->got);
			if (fn != NULL)
				fn(ctx, p + i, take);
			r->got += (long long)take;
			i += take;
			if (r->clen >= 0 && r->got == r->clen)
				r->done = 1;
			continue;
		}
		switch (r->ck) {
		case CK_SIZE:
			c = p[i++];
			if (c >= '0' && c <= '9')
				r->ck_left = r->ck_left * 16 + (unsigned)(c - '0'), r->ck_digits++;
			else if (c >= 'a' && c <= 'f')
				r->ck_left = r->ck_left * 16 + (unsigned)(c - 'a' + 10), r->ck_digits++;
			else if (c >= 'A' && c <= 'F')
				r->ck_left = r->ck_left * 16 + (unsigned)(c - 'A' + 10), r->ck_digits++;
			else if (c == '\n') {
				if (r->ck_digits == 0)
					return -1;
				r->ck = r->ck_left == 0 ? CK_TRAILER : CK_DATA;
				r->ck_digits = 0;
			} else if (r->ck_digits == 0 && c != '\r') {
				return -1;
			}
			/* ';' extensions and '\r' are skipped until '\n'. */
			break;
		case CK_DATA:
			take = len - i;
			if (take > r->ck_left)
				take = (size_t)r->ck_left;
			if (fn != NULL)
				fn(ctx, p + i, take);
			r->ck_left -= take;
			i += take;
			if (r->ck_left == 0)
				r->ck = CK_DATA_CR;
			break;
		case CK_DATA_CR:
			c = p[i++];
			r->ck = c == '\r' ? CK_DATA_LF : c == '\n' ? CK_SIZE : CK_DATA_CR;
			if (c != '\r' && c != '\n')
				return -1;
			break;
		case CK_DATA_LF:
			if (p[i++] != '\n')
				return -1;
			r->ck = CK_SIZE;
			break;
		case CK_TRAILER:
			/* Trailer lines end with an empty line; MHD sends none, so
			 * this is "\r\n" (or trailers, skipped to the empty line). */
			c = p[i++];
			if (c == '\n') {
				if (r->ck_digits == 0) {
					r->ck = CK_DONE;
					r->done = 1;
				}
				r->ck_digits = 0;
			} else if (c != '\r') {
				r->ck_digits = 1; /* inside a trailer line */
			}
			break;
		case CK_DONE:
			r->done = 1;
			break;
		}
	}
	return (long)i;
}

/* ---- spawn and step ------------------------------------------------------- */

static void
summary_times(const char *what, int64_t *t, size_t n, int failures)
{
	double sum = 0;
	size_t i;

	qsort(t, n, sizeof(*t), cmp_i64);
	for (i = 0; i < n; i++)
		sum += (double)t[i];
	printf("what=%s n=%zu failures=%d median_ms=%.3f p10_ms=%.3f p90_ms=%.3f mean_ms=%.3f "
	       "min_ms=%.3f max_ms=%.3f\n",
	       what, n, failures, pct_ms(t, n, 50), pct_ms(t, n, 10), pct_ms(t, n, 90),
	       n > 0 ? sum / (double)n / 1000.0 : -1, n > 0 ? (double)t[0] / 1000.0 : -1,
	       n > 0 ? (double)t[n - 1] / 1000.0 : -1);
}

static int
cmd_spawn(int argc, char **argv)
{
	long n, i;
	int64_t *t, t0;
	int st, failures = 0;
	pid_t pid;
	posix_spawn_file_actions_t fa;

	if (argc < 4)
		usage();
	n = arg_long(argv[2], 1, 1000000);
	t = calloc((size_t)n, sizeof(*t));
	if (t == NULL)
		return 1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	for (i = 0; i < n; i++) {
		t0 = now_us(CLOCK_MONOTONIC);
		if (posix_spawn(&pid, argv[3], &fa, NULL, argv + 3, environ) != 0) {
			failures++;
			continue;
		}
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		t[i] = now_us(CLOCK_MONOTONIC) - t0;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failures++;
	}
	posix_spawn_file_actions_destroy(&fa);
	summary_times("spawn", t, (size_t)n, failures);
	free(t);
	return failures == 0 ? 0 : 1;
}

static int
cmd_step(int argc, char **argv)
{
	char *av[] = {argv[3], "step", NULL}, job[65536], buf[65536], res[65536];
	posix_spawn_file_actions_t fa;
	int in[2], pr[2], st, failures = 0;
	size_t jlen, rlen;
	int64_t *t, t0;
	ssize_t k;
	long n, i;
	pid_t pid;
	FILE *f;

	if (argc != 5)
		usage();
	n = arg_long(argv[2], 1, 1000000);
	f = fopen(argv[4], "r");
	if (f == NULL || fgets(job, sizeof(job) - 1, f) == NULL) {
		printf("what=step error=cannot_read_job\n");
		return 1;
	}
	fclose(f);
	jlen = strlen(job);
	if (jlen == 0 || job[jlen - 1] != '\n') {
		job[jlen++] = '\n';
		job[jlen] = '\0';
	}
	t = calloc((size_t)n, sizeof(*t));
	if (t == NULL)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < n; i++) {
		t0 = now_us(CLOCK_MONOTONIC);
		if (pipe2(in, O_CLOEXEC) != 0 || pipe2(pr, O_CLOEXEC) != 0)
			return 1;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, in[0], 0);
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
		posix_spawn_file_actions_adddup2(&fa, pr[1], 3);
		if (posix_spawn(&pid, argv[3], &fa, NULL, av, environ) != 0) {
			failures++;
			posix_spawn_file_actions_destroy(&fa);
			continue;
		}
		posix_spawn_file_actions_destroy(&fa);
		close(in[0]);
		close(pr[1]);
		if (write(in[1], job, jlen) != (ssize_t)jlen)
			failures++;
		rlen = 0;
		while ((k = read(pr[0], buf, sizeof(buf))) > 0 || (k < 0 && errno == EINTR))
			if (k > 0 && rlen + (size_t)k < sizeof(res)) {
				memcpy(res + rlen, buf, (size_t)k);
				rlen += (size_t)k;
			}
		res[rlen] = '\0';
		close(pr[0]);
		close(in[1]);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		t[i] = now_us(CLOCK_MONOTONIC) - t0;
		if (strstr(res, "\"t\":\"result\"") == NULL || strstr(res, "\"status\":\"ok\"") == NULL) {
			if (failures == 0)
				fprintf(stderr, "client step: no ok result; the runner said: %.500s\n", res);
			failures++;
		}
	}
	summary_times("step", t, (size_t)n, failures);
	free(t);
	return failures == 0 ? 0 : 1;
}

/* ---- lines ------------------------------------------------------------------ */

static int
cmd_lines(int argc, char **argv)
{
	static const char filler[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	static char out[1 << 16];
	char line[4096];
	long n, bytes, i, k;
	int h;

	if (argc != 4)
		usage();
	n = arg_long(argv[2], 0, 1000000000L);
	bytes = arg_long(argv[3], 12, (long)sizeof(line) - 2);
	setvbuf(stdout, out, _IOFBF, sizeof(out));
	for (i = 0; i < n; i++) {
		/* The same lines as chatty.c's: "L%09ld " then filler. */
		h = snprintf(line, sizeof(line), "L%09ld ", i);
		for (k = h; k < bytes; k++)
			line[k] = filler[k % (long)(sizeof(filler) - 1)];
		line[bytes] = '\n';
		if (fwrite(line, 1, (size_t)bytes + 1, stdout) != (size_t)bytes + 1)
			return 1;
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- probe: paced GETs ------------------------------------------------------ */

enum pstate { P_CONNECTING, P_IDLE, P_BUSY, P_DEAD };

struct pconn {
	int fd;
	enum pstate st;
	int64_t due;		/* the in-flight request's due time (us, monotonic) */
	struct resp r;
};

static int
cmd_probe(int argc, char **argv)
{
	struct sockaddr_in sa;
	struct epoll_event ev, evs[64];
	struct pconn *c;
	char req[1024], buf[65536];
	long rate, nconn, seconds, pid = 0, rss_max = -1, rss;
	const char *raw = NULL;
	int64_t t0, tend, now, next_rss = 0, *lat;
	long long k_sent = 0, k_total, ndone = 0, errors = 0, non200 = 0, reconnects = 0;
	int ep, i, n, timeout, reqlen, a, idle;
	ssize_t got;
	long used;
	FILE *f;

	if (argc < 8)
		usage();
	make_addr(&sa, argv[2], argv[3]);
	rate = arg_long(argv[5], 1, 1000000);
	nconn = arg_long(argv[6], 1, 10000);
	seconds = arg_long(argv[7], 1, 86400);
	for (a = 8; a < argc; a++) {
		if (strcmp(argv[a], "--pid") == 0 && a + 1 < argc)
			pid = arg_long(argv[++a], 1, 1L << 30);
		else if (strcmp(argv[a], "--raw") == 0 && a + 1 < argc)
			raw = argv[++a];
		else
			usage();
	}
	reqlen = snprintf(req, sizeof(req),
			  "GET %s HTTP/1.1\r\nHost: %s:%s\r\nAccept: application/json\r\n\r\n",
			  argv[4], argv[2], argv[3]);
	k_total = (long long)rate * seconds;
	lat = calloc((size_t)k_total, sizeof(*lat));
	c = calloc((size_t)nconn, sizeof(*c));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (lat == NULL || c == NULL || ep < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < nconn; i++) {
		c[i].fd = open_conn(&sa);
		c[i].st = c[i].fd >= 0 ? P_CONNECTING : P_DEAD;
		if (c[i].fd < 0)
			continue;
		ev.events = EPOLLIN | EPOLLOUT;
		ev.data.u32 = (uint32_t)i;
		epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
	}
	/* Wait (up to 5 s) for the connections before the clock starts. */
	t0 = now_us(CLOCK_MONOTONIC);
	for (;;) {
		idle = 0;
		for (i = 0; i < nconn; i++)
			idle += c[i].st != P_CONNECTING;
		if (idle == nconn || now_us(CLOCK_MONOTONIC) - t0 > 5000000)
			break;
		n = epoll_wait(ep, evs, 64, 100);
		for (i = 0; i < n; i++) {
			struct pconn *p = &c[evs[i].data.u32];
			int err = 0;
			socklen_t el = sizeof(err);

			getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &el);
			p->st = err == 0 ? P_IDLE : P_DEAD;
			ev.events = EPOLLIN;
			ev.data.u32 = evs[i].data.u32;
			epoll_ctl(ep, EPOLL_CTL_MOD, p->fd, &ev);
		}
	}
	t0 = now_us(CLOCK_MONOTONIC);
	tend = t0 + (int64_t)seconds * 1000000;
	for (;;) {
		now = now_us(CLOCK_MONOTONIC);
		if (pid > 0 && now >= next_rss) {
			rss = rss_kb(pid);
			if (rss > rss_max)
				rss_max = rss;
			next_rss = now + 100000;
		}
		/* Send every due request an idle connection can take. */
		for (i = 0; i < nconn && k_sent < k_total; i++) {
			int64_t due = t0 + (int64_t)(k_sent * 1000000LL / rate);

			if (due > now)
				break;
			if (c[i].st != P_IDLE)
				continue;
			if (send(c[i].fd, req, (size_t)reqlen, MSG_NOSIGNAL) != reqlen) {
				/* Lost the connection between requests: reopen. */
				close(c[i].fd);
				c[i].fd = open_conn(&sa);
				reconnects++;
				c[i].st = c[i].fd >= 0 ? P_CONNECTING : P_DEAD;
				if (c[i].fd >= 0) {
					ev.events = EPOLLIN | EPOLLOUT;
					ev.data.u32 = (uint32_t)i;
					epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
				}
				continue;
			}
			c[i].st = P_BUSY;
			c[i].due = due;
			resp_reset(&c[i].r);
			k_sent++;
			i = -1; /* look for the next due request from the start */
		}
		if (k_sent >= k_total && ndone + errors >= k_sent)
			break;
		if (now > tend + 10000000) {
			/* In flight for 10 s after the end: count them lost. */
			errors += k_sent - ndone - errors;
			break;
		}
		timeout = 50;
		if (k_sent < k_total) {
			int64_t due = t0 + (int64_t)(k_sent * 1000000LL / rate);

			timeout = due <= now ? 0 : (int)((due - now + 999) / 1000);
			if (timeout > 50)
				timeout = 50;
		}
		n = epoll_wait(ep, evs, 64, timeout);
		for (i = 0; i < n; i++) {
			struct pconn *p = &c[evs[i].data.u32];

			if (p->st == P_CONNECTING) {
				int err = 0;
				socklen_t el = sizeof(err);

				getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				p->st = err == 0 ? P_IDLE : P_DEAD;
				ev.events = EPOLLIN;
				ev.data.u32 = evs[i].data.u32;
				epoll_ctl(ep, EPOLL_CTL_MOD, p->fd, &ev);
				continue;
			}
			for (;;) {
				got = recv(p->fd, buf, sizeof(buf), 0);
				if (got < 0 && errno == EINTR)
					continue;
				if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
					break;
				if (got <= 0) {
					/* Closed by the server. */
					if (p->st == P_BUSY)
						errors++;
					epoll_ctl(ep, EPOLL_CTL_DEL, p->fd, NULL);
					close(p->fd);
					p->fd = open_conn(&sa);
					reconnects++;
					p->st = p->fd >= 0 ? P_CONNECTING : P_DEAD;
					if (p->fd >= 0) {
						ev.events = EPOLLIN | EPOLLOUT;
						ev.data.u32 = evs[i].data.u32;
						epoll_ctl(ep, EPOLL_CTL_ADD, p->fd, &ev);
					}
					break;
				}
				if (p->st != P_BUSY)
					continue; /* nothing asked: ignore */
				used = resp_feed(&p->r, buf, (size_t)got, NULL, NULL);
				if (used < 0) {
					errors++;
					p->st = P_IDLE;
					continue;
				}
				if (p->r.done) {
					lat[ndone++] = now_us(CLOCK_MONOTONIC) - p->due;
					if (p->r.status != 200)
						non200++;
					p->st = P_IDLE;
				}
			}
		}
	}
	if (raw != NULL && (f = fopen(raw, "w")) != NULL) {
		for (i = 0; i < ndone; i++)
			fprintf(f, "%lld\n", (long long)lat[i]);
		fclose(f);
	}
	qsort(lat, (size_t)ndone, sizeof(*lat), cmp_i64);
	printf("what=probe rate=%ld conns=%ld seconds=%ld asked=%lld done=%lld errors=%lld "
	       "non200=%lld reconnects=%lld p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
	       "rss_max_kb=%ld\n",
	       rate, nconn, seconds, k_total, ndone, errors, non200, reconnects,
	       pct_ms(lat, (size_t)ndone, 50), pct_ms(lat, (size_t)ndone, 90),
	       pct_ms(lat, (size_t)ndone, 99),
	       ndone > 0 ? (double)lat[ndone - 1] / 1000.0 : -1, rss_max);
	for (i = 0; i < nconn; i++)
		if (c[i].fd >= 0)
			close(c[i].fd);
	free(c);
	free(lat);
	return ndone > 0 && errors == 0 && non200 == 0 ? 0 : 1;
}

/* ---- watch: SSE watchers ------------------------------------------------------ */

enum wstate { W_WAIT, W_CONNECTING, W_OPEN, W_ENDED, W_FAILED };

struct wconn {
	int fd;
	enum wstate st;
	struct resp r;
	char line[8192];
	size_t llen;
	int overlong;
	long long got;		/* ticks received */
	int64_t recv_at;	/* receive time of the bytes being parsed */
};

struct watch {
	struct wconn *c;
	long n, k;
	int32_t *lat;		/* [tick][watcher]: latency us, INT32_MIN = not yet */
	long long delivered, dups, out_of_range, bad;
	long cur;
};

static struct watch W;

/* One complete SSE line of watcher W.cur. */
static void
watch_line(struct wconn *c, const char *s, size_t len)
{
	const char *p;
	long long idx, usec;
	int32_t *slot;
	int64_t d;

	if (len < 5 || memcmp(s, "data:", 5) != 0)
		return;
	p = memmem(s, len, "\"text\":\"tick ", 13);
	if (p == NULL)
		return;
	if (sscanf(p + 13, "%lld %lld", &idx, &usec) != 2) {
		W.bad++;
		return;
	}
	if (idx < 0 || idx >= W.k) {
		W.out_of_range++;
		return;
	}
	slot = &W.lat[(size_t)idx * (size_t)W.n + (size_t)W.cur];
	if (*slot != INT32_MIN) {
		W.dups++;
		return;
	}
	d = c->recv_at - usec;
	*slot = d > INT32_MAX ? INT32_MAX : d < -INT32_MAX ? -INT32_MAX : (int32_t)d;
	c->got++;
	W.delivered++;
}

/* Body bytes of watcher W.cur: split into lines. */
static void
watch_body(void *ctx, const char *p, size_t len)
{
	struct wconn *c = ctx;
	const char *nl;
	size_t take;

	while (len > 0) {
		nl = memchr(p, '\n', len);
		take = nl != NULL ? (size_t)(nl - p) : len;
		if (c->llen + take < sizeof(c->line)) {
			memcpy(c->line + c->llen, p, take);
			c->llen += take;
		} else {
			c->overlong = 1;
		}
		if (nl == NULL)
			return;
		if (c->llen > 0 && c->line[c->llen - 1] == '\r')
			c->llen--;
		if (!c->overlong)
			watch_line(c, c->line, c->llen);
		c->llen = 0;
		c->overlong = 0;
		p += take + 1;
		len -= take + 1;
	}
}

static int
cmd_watch(int argc, char **argv)
{
	struct sockaddr_in sa;
	struct epoll_event ev, *evs;
	char req[1024], buf[65536];
	const char *ready = NULL, *raw = NULL;
	long timeout_s = 120, pid = 0, rss, rss_ready = -1, rss_max = -1, a;
	long opened = 0, open_now = 0, ended = 0, failed = 0, pending = 0, i, j;
	int64_t t_start, now, next_rss = 0, t_ready = 0, *all;
	size_t nall = 0;
	int ep, n, e, reqlen, ready_done = 0, timed_out = 0;
	ssize_t got;
	long used;
	FILE *f;

	if (argc < 6)
		usage();
	make_addr(&sa, argv[2], argv[3]);
	W.n = arg_long(argv[5], 1, 100000);
	W.k = -1;
	for (a = 6; a < argc; a++) {
		if (strcmp(argv[a], "--expect") == 0 && a + 1 < argc)
			W.k = arg_long(argv[++a], 1, 10000000);
		else if (strcmp(argv[a], "--ready") == 0 && a + 1 < argc)
			ready = argv[++a];
		else if (strcmp(argv[a], "--timeout") == 0 && a + 1 < argc)
			timeout_s = arg_long(argv[++a], 1, 86400);
		else if (strcmp(argv[a], "--pid") == 0 && a + 1 < argc)
			pid = arg_long(argv[++a], 1, 1L << 30);
		else if (strcmp(argv[a], "--raw") == 0 && a + 1 < argc)
			raw = argv[++a];
		else
			usage();
	}
	if (W.k < 0)
		usage();
	reqlen = snprintf(req, sizeof(req),
			  "GET %s HTTP/1.1\r\nHost: %s:%s\r\nAccept: text/event-stream\r\n"
			  "Cache-Control: no-cache\r\n\r\n",
			  argv[4], argv[2], argv[3]);
	W.c = calloc((size_t)W.n, sizeof(*W.c));
	W.lat = malloc((size_t)W.n * (size_t)W.k * sizeof(*W.lat));
	evs = calloc(1024, sizeof(*evs));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (W.c == NULL || W.lat == NULL || evs == NULL || ep < 0) {
		printf("what=watch error=out_of_memory\n");
		return 1;
	}
	for (i = 0; i < W.n * W.k; i++)
		W.lat[i] = INT32_MIN;
	signal(SIGPIPE, SIG_IGN);
	t_start = now_us(CLOCK_MONOTONIC);
	for (;;) {
		now = now_us(CLOCK_MONOTONIC);
		if (pid > 0 && now >= next_rss) {
			rss = rss_kb(pid);
			if (rss > rss_max)
				rss_max = rss;
			next_rss = now + 100000;
		}
		/* Open connections, at most 256 handshakes at a time (a burst
		 * of thousands overflows the listen backlog and costs 1 s SYN
		 * retries, which says nothing about the server). */
		while (opened < W.n && pending < 256) {
			struct wconn *c = &W.c[opened];

			c->fd = open_conn(&sa);
			if (c->fd < 0) {
				c->st = W_FAILED;
				failed++;
				opened++;
				continue;
			}
			c->st = W_CONNECTING;
			resp_reset(&c->r);
			ev.events = EPOLLIN | EPOLLOUT;
			ev.data.u64 = (uint64_t)opened;
			epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
			opened++;
			pending++;
		}
		if (!ready_done && opened == W.n && open_now + ended + failed == W.n) {
			ready_done = 1;
			t_ready = now;
			rss_ready = rss_kb(pid);
			if (ready != NULL && (f = fopen(ready, "w")) != NULL) {
				fprintf(f, "%ld\n", open_now);
				fclose(f);
			}
		}
		if (opened == W.n && ended + failed == W.n)
			break;
		if (now - t_start > (int64_t)timeout_s * 1000000) {
			timed_out = 1;
			break;
		}
		n = epoll_wait(ep, evs, 1024, 100);
		for (e = 0; e < n; e++) {
			struct wconn *c = &W.c[evs[e].data.u64];

			W.cur = (long)evs[e].data.u64;
			if (c->st == W_CONNECTING) {
				int err = 0;
				socklen_t el = sizeof(err);

				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err != 0 || send(c->fd, req, (size_t)reqlen, MSG_NOSIGNAL) != reqlen) {
					epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
					close(c->fd);
					c->fd = -1;
					c->st = W_FAILED;
					failed++;
					pending--;
					continue;
				}
				c->st = W_OPEN;
				ev.events = EPOLLIN;
				ev.data.u64 = evs[e].data.u64;
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				continue;
			}
			if (c->st != W_OPEN)
				continue;
			for (;;) {
				got = recv(c->fd, buf, sizeof(buf), 0);
				if (got < 0 && errno == EINTR)
					continue;
				if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
					break;
				c->recv_at = now_us(CLOCK_REALTIME);
				if (got > 0) {
					int had_head = c->r.have_head;

					used = resp_feed(&c->r, buf, (size_t)got, watch_body, c);
					if (!had_head && c->r.have_head) {
						pending--;
						if (c->r.status == 200) {
							open_now++;
						} else {
							used = -1;
						}
					}
					if (used >= 0 && !c->r.done)
						continue;
				}
				/* End of stream, a closed socket, or an error. */
				if (c->r.have_head && c->r.status == 200)
					open_now--;
				else if (!c->r.have_head)
					pending--;
				if (got > 0 && used >= 0 && c->r.done) {
					c->st = W_ENDED;
					ended++;
				} else if (got == 0 && c->r.have_head && c->r.status == 200 &&
					   !c->r.chunked && c->r.clen < 0) {
					c->st = W_ENDED; /* close-delimited body */
					ended++;
				} else {
					c->st = W_FAILED;
					failed++;
				}
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				c->fd = -1;
				break;
			}
		}
	}
	/* Latencies of everything delivered; per-tick figures to raw. */
	all = malloc((W.delivered > 0 ? (size_t)W.delivered : 1) * sizeof(*all));
	f = raw != NULL ? fopen(raw, "w") : NULL;
	if (f != NULL)
		fprintf(f, "tick\tdelivered\tmin_ms\tp50_ms\tmax_ms\n");
	for (j = 0; all != NULL && j < W.k; j++) {
		size_t base = nall;

		for (i = 0; i < W.n; i++) {
			int32_t v = W.lat[(size_t)j * (size_t)W.n + (size_t)i];

			if (v != INT32_MIN)
				all[nall++] = v;
		}
		if (f != NULL) {
			qsort(all + base, nall - base, sizeof(*all), cmp_i64);
			if (nall > base)
				fprintf(f, "%ld\t%zu\t%.3f\t%.3f\t%.3f\n", j, nall - base,
					(double)all[base] / 1000.0,
					pct_ms(all + base, nall - base, 50),
					(double)all[nall - 1] / 1000.0);
			else
				fprintf(f, "%ld\t0\t\t\t\n", j);
		}
	}
	if (f != NULL)
		fclose(f);
	if (all != NULL)
		qsort(all, nall, sizeof(*all), cmp_i64);
	{
		long short_watchers = 0;

		for (i = 0; i < W.n; i++)
			short_watchers += W.c[i].got < W.k;
		printf("what=watch watchers=%ld ready=%d ready_after_ms=%.0f failed=%ld ended=%ld "
		       "timed_out=%d expected=%lld delivered=%lld missing=%lld dups=%lld "
		       "short_watchers=%ld bad=%lld out_of_range=%lld p50_ms=%.3f p90_ms=%.3f "
		       "p99_ms=%.3f p999_ms=%.3f max_ms=%.3f rss_ready_kb=%ld rss_max_kb=%ld\n",
		       W.n, ready_done, ready_done ? (double)(t_ready - t_start) / 1000.0 : -1,
		       failed, ended, timed_out, (long long)W.n * W.k, W.delivered,
		       (long long)W.n * W.k - W.delivered, W.dups, short_watchers, W.bad,
		       W.out_of_range, pct_ms(all, nall, 50), pct_ms(all, nall, 90),
		       pct_ms(all, nall, 99), pct_ms(all, nall, 99.9),
		       nall > 0 ? (double)all[nall - 1] / 1000.0 : -1, rss_ready, rss_max);
	}
	for (i = 0; i < opened; i++)
		if (W.c[i].fd >= 0)
			close(W.c[i].fd);
	free(all);
	free(W.lat);
	free(W.c);
	free(evs);
	return ready_done && !timed_out && W.delivered == (long long)W.n * W.k ? 0 : 1;
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (strcmp(argv[1], "spawn") == 0)
		return cmd_spawn(argc, argv);
	if (strcmp(argv[1], "step") == 0)
		return cmd_step(argc, argv);
	if (strcmp(argv[1], "lines") == 0)
		return cmd_lines(argc, argv);
	if (strcmp(argv[1], "probe") == 0)
		return cmd_probe(argc, argv);
	if (strcmp(argv[1], "watch") == 0)
		return cmd_watch(argc, argv);
	usage();
	return 2;
}

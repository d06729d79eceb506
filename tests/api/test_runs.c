/*
 * test_runs.c - the run engine from outside: runs of the test blueprints
 * (tests/blueprints) on a real server, with the test plugins
 * (tests/plugins, built into build/test-plugins) loaded through the real
 * loader.  What must hold: outputs flow between steps, independent steps
 * overlap, dependents wait, a failure skips only what depends on it, retry
 * never redoes a succeeded step, cancel leaves no process behind, one run
 * per environment, destroy walks the graph backwards, plan changes
 * nothing, logs and event streams lose and repeat nothing, a killed server
 * resumes where it was, and secrets appear nowhere.
 *
 * The main server (S) runs with --retry-base-ms 40 and --cancel-grace-ms
 * 1000 so that retries and cancellations are quick.  Scratch files (trails,
 * pid files, gates) live in its directory, which srv_stop removes.
 */
#include "check.h"

#include "outrigger/plugin.h"

/* The host's ABI as "MAJOR.MINOR", which the tests expect reported. */
#define ABI_STR2(a, b) #a "." #b
#define ABI_STR(a, b) ABI_STR2(a, b)
#define ABI_TEXT ABI_STR(OR_PLUGIN_ABI_MAJOR, OR_PLUGIN_ABI_MINOR)

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api_client.h"
#include "suites.h"

static struct srv S;
static int S_up;

/* How each server of this suite exited (srv_stop: 0, or 99 after a
 * sanitizer report in its log), checked together by the last test. */
static struct {
	const char *who;
	int rc;
} exits[16];
static int nexits;

static void
stop_server(struct srv *s, const char *who)
{
	int rc = srv_stop(s, 0);

	if (rc != 0)
		fprintf(stderr, "    (server of %s exited with %d)\n", who, rc);
	if (nexits < (int)(sizeof(exits) / sizeof(exits[0]))) {
		exits[nexits].who = who;
		exits[nexits++].rc = rc;
	}
}

/* ---- small helpers ------------------------------------------------------- */

static const char *
jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* a equals b, and neither is NULL. */
static int
streq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* "2026-01-02T03:04:05.678Z" as ms since the epoch; -1 when not that. */
static long long
iso_ms(const char *s)
{
	struct tm tm;
	int ms;

	if (s == NULL)
		return -1;
	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (long long)timegm(&tm) * 1000 + ms;
}

/* A path in the main server's scratch directory. */
static void
scratch(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", S.dir, name);
}

static int
file_read(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	buf[0] = '\0';
	if (f == NULL)
		return -1;
	n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	return 0;
}

static int
file_touch(const char *path)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	fclose(f);
	return 0;
}

static int
file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* The pid written in path (waiting up to ms for it to appear), or -1. */
static pid_t
pid_from_file(const char *path, int ms)
{
	char buf[64];
	long long until = now_ms() + ms;
	long v;

	do {
		if (file_read(path, buf, sizeof(buf)) == 0 && (v = strtol(buf, NULL, 10)) > 1)
			return (pid_t)v;
		sleep_ms(10);
	} while (now_ms() < until);
	return -1;
}

/* Is pid a zombie (exited, waiting for its parent to reap it)? */
static int
pid_zombie(pid_t pid)
{
	char path[64], stat[512], *p;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if (file_read(path, stat, sizeof(stat)) != 0)
		return 0;
	p = strrchr(stat, ')');
	return p != NULL && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/* Wait up to ms for pid to be gone: kill(pid, 0) fails with ESRCH (or it
 * is a zombie that only its new parent has yet to reap).  1 when gone. */
static int
pid_gone(pid_t pid, int ms)
{
	long long until = now_ms() + ms;

	for (;;) {
		if ((kill(pid, 0) != 0 && errno == ESRCH) || pid_zombie(pid))
			return 1;
		if (now_ms() >= until)
			return 0;
		sleep_ms(10);
	}
}

/* A process the tests caused to exist and that must not outlive them. */
static void
stop_leftover(pid_t pid)
{
	if (pid > 1 && kill(pid, 0) == 0 && !pid_zombie(pid)) {
		fprintf(stderr, "    (killing leftover process %ld)\n", (long)pid);
		kill(pid, SIGKILL);
	}
}

/* ---- runs --------------------------------------------------------------- */

/* Create environment name on blueprint bp with params (JSON text, may be
 * NULL).  0 on 201. */
static int
env_create(struct srv *s, const char *name, const char *bp, const char *params)
{
	char body[4096];
	struct res r;
	long st;

	snprintf(body, sizeof(body),
		 "{\"name\":\"%s\",\"provider\":\"sandbox\",\"blueprint\":\"%s\"%s%s}", name, bp,
		 params != NULL ? ",\"params\":" : "", params != NULL ? params : "");
	if (send_json(s, "POST", "/api/v1/environments", body, &r) != 0)
		return -1;
	st = r.status;
	if (st != 201)
		fprintf(stderr, "    creating %s on %s: %ld %s\n", name, bp, st, r.body);
	res_free(&r);
	return st == 201 ? 0 : -1;
}

/* Start a run; checks the 202 answer and its Location.  The run id, or -1. */
static long long
run_start(struct srv *s, const char *env, const char *action)
{
	char path[256], body[64], loc[128], want[64];
	long long id = -1;
	struct res r;

	snprintf(path, sizeof(path), "/api/v1/environments/%s/runs", env);
	snprintf(body, sizeof(body), "{\"action\":\"%s\"}", action);
	CHECK(send_json(s, "POST", path, body, &r) == 0);
	CHECK_INT(r.status, 202);
	if (r.status == 202) {
		id = json_integer_value(json_object_get(r.json, "id"));
		CHECK(id > 0);
		snprintf(want, sizeof(want), "/api/v1/runs/%lld", id);
		CHECK(res_header(&r, "Location", loc, sizeof(loc)) != NULL);
		CHECK_STR(loc, want);
		CHECK_STR(jstr(r.json, "action"), action);
		CHECK_STR(jstr(r.json, "environment"), env);
	} else {
		fprintf(stderr, "    %s of %s: %s\n", action, env, r.body);
	}
	res_free(&r);
	return id;
}

static json_t *
run_get(struct srv *s, long long id)
{
	char path[64];
	json_t *run = NULL;
	struct res r;

	snprintf(path, sizeof(path), "/api/v1/runs/%lld", id);
	if (get(s, path, &r) == 0 && r.status == 200)
		run = json_incref(r.json);
	res_free(&r);
	return run;
}

static int
run_finished(json_t *run)
{
	const char *st = jstr(run, "status");

	return st != NULL && (strcmp(st, "succeeded") == 0 || strcmp(st, "failed") == 0 ||
			      strcmp(st, "cancelled") == 0);
}

/* Poll until run id has finished (up to ms); the last state seen (owned,
 * NULL if none).  A timeout is a failed CHECK. */
static json_t *
run_wait(struct srv *s, long long id, int ms)
{
	long long until = now_ms() + ms;
	json_t *run = NULL;

	for (;;) {
		json_decref(run);
		run = run_get(s, id);
		if (run != NULL && run_finished(run))
			return run;
		if (now_ms() >= until)
			break;
		sleep_ms(15);
	}
	CHECK(!"run finished in time");
	fprintf(stderr, "    run %lld still %s after %d ms\n", id,
		run != NULL ? jstr(run, "status") : "(unreadable)", ms);
	return run;
}

/* Poll until step name of run id has status st (up to ms).  1 if so. */
static int
step_wait(struct srv *s, long long id, const char *name, const char *st, int ms)
{
	long long until = now_ms() + ms;
	json_t *run, *step;
	size_t i;
	int ok = 0;

	while (!ok && now_ms() < until) {
		run = run_get(s, id);
		json_array_foreach(json_object_get(run, "steps"), i, step)
			if (streq(jstr(step, "name"), name) && streq(jstr(step, "status"), st))
				ok = 1;
		json_decref(run);
		if (!ok)
			sleep_ms(10);
	}
	return ok;
}

static json_t *
step_of(json_t *run, const char *name)
{
	json_t *step;
	size_t i;

	json_array_foreach(json_object_get(run, "steps"), i, step)
		if (jstr(step, "name") != NULL && streq(jstr(step, "name"), name))
			return step;
	return NULL;
}

static const char *
step_status(json_t *run, const char *name)
{
	const char *st = jstr(step_of(run, name), "status");

	return st != NULL ? st : "(no such step)";
}

static int
step_attempts(json_t *run, const char *name)
{
	return (int)json_integer_value(json_object_get(step_of(run, name), "attempts"));
}

static long long
step_start(json_t *run, const char *name)
{
	return iso_ms(jstr(step_of(run, name), "started_at"));
}

static long long
step_end(json_t *run, const char *name)
{
	return iso_ms(jstr(step_of(run, name), "finished_at"));
}

static json_t *
step_output(json_t *run, const char *step, const char *key)
{
	return json_object_get(json_object_get(step_of(run, step), "outputs"), key);
}

static const char *
step_err(json_t *run, const char *step, const char *key)
{
	return jstr(json_object_get(step_of(run, step), "error"), key);
}

static json_t *
env_get(struct srv *s, const char *name)
{
	char path[256];
	json_t *env = NULL;
	struct res r;

	snprintf(path, sizeof(path), "/api/v1/environments/%s", name);
	if (get(s, path, &r) == 0 && r.status == 200)
		env = json_incref(r.json);
	res_free(&r);
	return env;
}

/* POST /runs/{id}/VERB; the HTTP status, with the error code in code. */
static long
run_post(struct srv *s, long long id, const char *verb, char *code, size_t size)
{
	char path[96];
	struct res r;
	long st;

	snprintf(path, sizeof(path), "/api/v1/runs/%lld/%s", id, verb);
	if (req(s, "POST", path, NULL, NULL, 0, NULL, &r) != 0) {
		res_free(&r);
		return -1;
	}
	st = r.status;
	if (code != NULL)
		snprintf(code, size, "%s", err_code(&r));
	res_free(&r);
	return st;
}

/* Every log line of run id (of one step when step is not NULL), paging
 * with the largest page.  Owned array. */
static json_t *
logs_all(struct srv *s, long long id, const char *step)
{
	json_t *all = json_array(), *l;
	char path[512], after[32] = "0";
	struct res r;
	size_t i;

	for (;;) {
		snprintf(path, sizeof(path), "/api/v1/runs/%lld/logs?limit=5000&after=%s%s%s", id,
			 after, step != NULL ? "&step=" : "", step != NULL ? step : "");
		if (get(s, path, &r) != 0 || r.status != 200) {
			CHECK(!"logs readable");
			res_free(&r);
			break;
		}
		json_array_foreach(json_object_get(r.json, "lines"), i, l)
			json_array_append(all, l);
		if (!json_is_string(json_object_get(r.json, "next_after"))) {
			res_free(&r);
			break;
		}
		snprintf(after, sizeof(after), "%s", jstr(r.json, "next_after"));
		res_free(&r);
	}
	return all;
}

/* The seq of the first log line of run id (step may be NULL) whose text
 * contains needle, or -1. */
static long long
log_find(struct srv *s, long long id, const char *step, const char *needle)
{
	json_t *all = logs_all(s, id, step), *l;
	long long seq = -1;
	size_t i;

	json_array_foreach(all, i, l)
		if (jstr(l, "text") != NULL && strstr(jstr(l, "text"), needle) != NULL) {
			seq = json_integer_value(json_object_get(l, "seq"));
			break;
		}
	json_decref(all);
	return seq;
}

/* The runner of a sanitizer build reports leaks and undefined behaviour on
 * its stderr, which becomes step log lines: none may be there. */
static void
check_no_sanitizer_lines(struct srv *s, long long id)
{
	json_t *all = logs_all(s, id, NULL), *l;
	const char *t;
	size_t i;

	json_array_foreach(all, i, l) {
		t = jstr(l, "text");
		if (t != NULL && (strstr(t, "Sanitizer") != NULL || strstr(t, "runtime error:") != NULL)) {
			CHECK(!"no sanitizer report in the step logs");
			fprintf(stderr, "    run %lld step %s: %s\n", id, jstr(l, "step"), t);
		}
	}
	json_decref(all);
}

/* Start a run and wait for its end; the final run (owned) or NULL. */
static json_t *
run_through(struct srv *s, const char *env, const char *action, int ms)
{
	long long id = run_start(s, env, action);
	json_t *run;

	if (id < 0)
		return NULL;
	run = run_wait(s, id, ms);
	check_no_sanitizer_lines(s, id);
	return run;
}

static long long
run_id_of(json_t *run)
{
	return json_integer_value(json_object_get(run, "id"));
}

/* ---- Server-Sent Events, parsed by hand ----------------------------------- */

/* One stream's worth of events: [{id, event, data}] in arrival order. */
struct sse {
	json_t *events;
	char *buf;		/* bytes not yet split into lines */
	size_t len;
	char cur_id[32], cur_event[32];
	char *cur_data;		/* data lines so far, joined by \n; NULL: none */
	int retry_seen, comments;
	int bad_lines;		/* lines that are no SSE field */
	/* Called after each event: return 1 to drop the connection there. */
	int (*on_event)(struct sse *x, json_t *ev);
	void *ctx;
	int dropped;
};

static void
sse_init(struct sse *x)
{
	memset(x, 0, sizeof(*x));
	x->events = json_array();
}

static void
sse_free(struct sse *x)
{
	json_decref(x->events);
	free(x->buf);
	free(x->cur_data);
	memset(x, 0, sizeof(*x));
}

/* One line without its end.  Returns 1 when the connection must drop. */
static int
sse_line(struct sse *x, char *line)
{
	char *colon, *val;
	json_t *ev;
	size_t n;

	n = strlen(line);
	if (n > 0 && line[n - 1] == '\r')
		line[--n] = '\0';
	if (n == 0) {
		/* Dispatch; an event without data is not one (the retry: block). */
		if (x->cur_data == NULL) {
			x->cur_event[0] = '\0';
			return 0;
		}
		ev = json_pack("{s:I, s:s, s:o}", "id", (json_int_t)strtoll(x->cur_id, NULL, 10),
			       "event", x->cur_event[0] ? x->cur_event : "message", "data",
			       json_loads(x->cur_data, 0, NULL) ?: json_string(x->cur_data));
		if (x->cur_id[0] == '\0')
			json_object_set_new(ev, "no_id", json_true());
		json_array_append_new(x->events, ev);
		free(x->cur_data);
		x->cur_data = NULL;
		x->cur_event[0] = '\0';
		return x->on_event != NULL && x->on_event(x, ev);
	}
	if (line[0] == ':') {
		x->comments++;
		return 0;
	}
	colon = strchr(line, ':');
	val = colon != NULL ? colon + 1 : line + n;
	if (colon != NULL)
		*colon = '\0';
	if (*val == ' ')
		val++;
	if (strcmp(line, "id") == 0) {
		snprintf(x->cur_id, sizeof(x->cur_id), "%s", val);
	} else if (strcmp(line, "event") == 0) {
		snprintf(x->cur_event, sizeof(x->cur_event), "%s", val);
	} else if (strcmp(line, "data") == 0) {
		size_t old = x->cur_data != NULL ? strlen(x->cur_data) : 0;
		char *d = realloc(x->cur_data, old + strlen(val) + 2);

		if (d == NULL)
			return 1;
		if (x->cur_data != NULL)
			d[old++] = '\n';
		memcpy(d + old, val, strlen(val) + 1);
		x->cur_data = d;
	} else if (strcmp(line, "retry") == 0) {
		x->retry_seen = 1;
	} else {
		x->bad_lines++;
	}
	return 0;
}

static size_t
sse_write(char *p, size_t sz, size_t nm, void *ud)
{
	struct sse *x = ud;
	size_t add = sz * nm, start = 0, i;
	char *b = realloc(x->buf, x->len + add + 1);

	if (b == NULL)
		return 0;
	x->buf = b;
	memcpy(b + x->len, p, add);
	x->len += add;
	b[x->len] = '\0';
	for (i = 0; i < x->len; i++) {
		if (b[i] != '\n')
			continue;
		b[i] = '\0';
		if (sse_line(x, b + start)) {
			x->dropped = 1;
			return 0; /* curl stops: the connection drops here */
		}
		start = i + 1;
	}
	memmove(b, b + start, x->len - start + 1);
	x->len -= start;
	return add;
}

/* GET the event stream of run id (after last_id when not NULL) into x.
 * Returns curl's code; *status the HTTP status. */
static CURLcode
sse_get(struct srv *s, long long id, const char *last_id, struct sse *x, long *status,
	long timeout_s)
{
	struct curl_slist *hl = NULL;
	char url[256], h[96];
	CURLcode cc;
	CURL *c;

	c = curl_easy_init();
	if (c == NULL)
		return CURLE_FAILED_INIT;
	snprintf(url, sizeof(url), "%s/api/v1/runs/%lld/events", s->url, id);
	hl = curl_slist_append(hl, "Accept: text/event-stream");
	if (last_id != NULL) {
		snprintf(h, sizeof(h), "Last-Event-ID: %s", last_id);
		hl = curl_slist_append(hl, h);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sse_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
	cc = curl_easy_perform(c);
	*status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	return cc;
}

static long long
ev_id(json_t *ev)
{
	return json_integer_value(json_object_get(ev, "id"));
}

static const char *
ev_kind(json_t *ev)
{
	return jstr(ev, "event");
}

static json_t *
ev_data(json_t *ev)
{
	return json_object_get(ev, "data");
}

/* ids are first, first+1, ...: none lost, none repeated.  Each event has
 * an id, its data is JSON carrying the same seq.  Returns the last id. */
static long long
check_contiguous(json_t *events, long long first)
{
	long long want = first;
	json_t *ev;
	size_t i;
	int bad = 0;

	json_array_foreach(events, i, ev) {
		if (ev_id(ev) != want || json_object_get(ev, "no_id") != NULL ||
		    json_integer_value(json_object_get(ev_data(ev), "seq")) != ev_id(ev)) {
			if (bad++ < 3)
				fprintf(stderr, "    event %zu: id %lld, want %lld\n", i, ev_id(ev), want);
			want = ev_id(ev);
		}
		want++;
	}
	CHECK_INT(bad, 0);
	return want - 1;
}

/* The events' log lines must be exactly /logs' lines: same seqs, texts,
 * steps and streams, in the same order. */
static void
check_events_match_logs(struct srv *s, long long id, json_t *events)
{
	json_t *logs = logs_all(s, id, NULL), *ev, *d, *l;
	size_t i, k = 0;
	int bad = 0;

	json_array_foreach(events, i, ev) {
		if (!streq(ev_kind(ev), "log"))
			continue;
		d = ev_data(ev);
		l = json_array_get(logs, k++);
		if (l == NULL || json_integer_value(json_object_get(l, "seq")) != ev_id(ev) ||
		    !json_equal(json_object_get(l, "text"), json_object_get(d, "text")) ||
		    !json_equal(json_object_get(l, "step"), json_object_get(d, "step")) ||
		    !json_equal(json_object_get(l, "stream"), json_object_get(d, "stream"))) {
			if (bad++ < 3)
				fprintf(stderr, "    log event %lld differs from /logs line %zu\n",
					ev_id(ev), k - 1);
		}
	}
	CHECK_INT(bad, 0);
	CHECK_INT(k, json_array_size(logs));
	json_decref(logs);
}

/* ---- a tiny HTTP server for the plugins' http() --------------------------- */

/* Answers one request per connection: the first with 503 (so the host's
 * retry shows), the others with 200 "echo METHOD hdr=yes|no body=BODY". */
struct mini {
	int fd;
	unsigned short port;
	pthread_t thread;
	atomic_int stop, requests;
};

static void
mini_serve(struct mini *m, int c)
{
	char in[16384], out[17000], method[16] = "", *end, *cl;
	size_t got = 0, need = 0, hdr_len;
	struct pollfd pfd = {c, POLLIN, 0};
	const char *body;
	ssize_t n;
	int k, len;

	for (;;) {
		if (poll(&pfd, 1, 2000) <= 0)
			return;
		n = recv(c, in + got, sizeof(in) - 1 - got, 0);
		if (n <= 0)
			return;
		got += (size_t)n;
		in[got] = '\0';
		end = strstr(in, "\r\n\r\n");
		if (end == NULL)
			continue;
		hdr_len = (size_t)(end - in) + 4;
		cl = strcasestr(in, "\r\nContent-Length:");
		need = cl != NULL && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
		if (got >= hdr_len + need || got == sizeof(in) - 1)
			break;
	}
	sscanf(in, "%15s", method);
	body = in + hdr_len;
	in[hdr_len + need < got ? hdr_len + need : got] = '\0';
	k = atomic_fetch_add(&m->requests, 1) + 1;
	if (k == 1) {
		len = snprintf(out, sizeof(out), "HTTP/1.1 503 Service Unavailable\r\n"
			       "Content-Length: 4\r\nConnection: close\r\n\r\nbusy");
	} else {
		char text[16500];
		int tl = snprintf(text, sizeof(text), "echo %s hdr=%s body=%s", method,
				  strcasestr(in, "\r\nX-Hostcheck: yes\r\n") != NULL ? "yes" : "no", body);

		len = snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
			       "Content-Length: %d\r\nConnection: close\r\n\r\n%s", tl, text);
	}
	if (len > 0)
		(void)send(c, out, (size_t)len, MSG_NOSIGNAL);
}

static void *
mini_main(void *arg)
{
	struct mini *m = arg;
	struct pollfd pfd = {m->fd, POLLIN, 0};
	int c;

	while (!atomic_load(&m->stop)) {
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		c = accept(m->fd, NULL, NULL);
		if (c < 0)
			continue;
		mini_serve(m, c);
		close(c);
	}
	return NULL;
}

/* A loopback port: a listening socket when listen_too, else one nobody
 * listens on (bound, then closed).  0 on failure. */
static unsigned short
loopback_port(int *fd_out)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0 ||
	    (fd_out != NULL && listen(fd, 16) != 0)) {
		close(fd);
		return 0;
	}
	if (fd_out != NULL)
		*fd_out = fd;
	else
		close(fd);
	return ntohs(sa.sin_port);
}

static int
mini_start(struct mini *m)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	m->port = loopback_port(&m->fd);
	if (m->port == 0)
		return -1;
	if (pthread_create(&m->thread, NULL, mini_main, m) != 0) {
		close(m->fd);
		return -1;
	}
	return 0;
}

static void
mini_stop(struct mini *m)
{
	atomic_store(&m->stop, 1);
	pthread_join(m->thread, NULL);
	close(m->fd);
}

/* ---- 1. apply ------------------------------------------------------------ */

/* Every step of a finished run has the documented fields. */
static void
check_step_shape(json_t *run)
{
	static const char *const keys[] = {"name", "plugin", "status", "attempts", "started_at",
					   "finished_at", "outputs", "error"};
	json_t *step;
	size_t i, k;

	json_array_foreach(json_object_get(run, "steps"), i, step) {
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (json_object_get(step, keys[k]) == NULL) {
				CHECK(!"step has every field");
				fprintf(stderr, "    step %zu has no %s\n", i, keys[k]);
			}
		CHECK(json_is_string(json_object_get(step, "name")));
		CHECK(json_is_string(json_object_get(step, "plugin")));
		CHECK(json_is_integer(json_object_get(step, "attempts")));
		CHECK(json_is_object(json_object_get(step, "outputs")));
	}
}

static void
t_apply_demo(void)
{
	const char *hdr[] = {"X-Outrigger-User: ada@example.com", NULL};
	const char *body = "{\"action\":\"apply\"}";
	char loc[128], want[64];
	json_t *run, *env, *step;
	long long id, id2;
	struct res r;
	size_t i;

	CHECK(make_env(&S, "demo-one") == 0);
	CHECK(req(&S, "POST", "/api/v1/environments/demo-one/runs", "application/json", body,
		  strlen(body), hdr, &r) == 0);
	CHECK_INT(r.status, 202);
	id = json_integer_value(json_object_get(r.json, "id"));
	CHECK(id > 0);
	snprintf(want, sizeof(want), "/api/v1/runs/%lld", id);
	CHECK(res_header(&r, "Location", loc, sizeof(loc)) != NULL);
	CHECK_STR(loc, want);
	CHECK_STR(jstr(r.json, "status"), "queued");
	CHECK_STR(jstr(r.json, "action"), "apply");
	CHECK_STR(jstr(r.json, "created_by"), "ada@example.com");
	CHECK_INT(json_array_size(json_object_get(r.json, "steps")), 3);
	json_array_foreach(json_object_get(r.json, "steps"), i, step) {
		CHECK_STR(jstr(step, "status"), "pending");
		CHECK_INT(json_integer_value(json_object_get(step, "attempts")), 0);
	}
	res_free(&r);
	if (id <= 0)
		return;

	/* The environment is locked by the run and says it is applying. */
	env = env_get(&S, "demo-one");
	CHECK(json_integer_value(json_object_get(env, "active_run_id")) == id ||
	      streq(jstr(env, "status"), "ready")); /* or already done */
	json_decref(env);

	run = run_wait(&S, id, 10000);
	CHECK_STR(jstr(run, "status"), "succeeded");
	CHECK(json_is_null(json_object_get(run, "error")));
	CHECK(iso_ms(jstr(run, "started_at")) > 0);
	CHECK(iso_ms(jstr(run, "finished_at")) >= iso_ms(jstr(run, "started_at")));
	CHECK_INT(json_array_size(json_object_get(run, "steps")), 3);
	check_step_shape(run);
	json_array_foreach(json_object_get(run, "steps"), i, step) {
		CHECK_STR(jstr(step, "plugin"), "exec");
		CHECK_STR(jstr(step, "status"), "succeeded");
		CHECK_INT(json_integer_value(json_object_get(step, "attempts")), 1);
		CHECK(iso_ms(jstr(step, "started_at")) > 0);
		CHECK(iso_ms(jstr(step, "finished_at")) >= iso_ms(jstr(step, "started_at")));
		CHECK(json_is_null(json_object_get(step, "error")));
	}
	/* greet's output reached finish's command line. */
	CHECK_STR(json_string_value(step_output(run, "greet", "word")), "hello");
	CHECK(log_find(&S, id, "finish", "hello test") > 0);
	json_decref(run);
	check_no_sanitizer_lines(&S, id);

	env = env_get(&S, "demo-one");
	CHECK_STR(jstr(env, "status"), "ready");
	CHECK(json_is_null(json_object_get(env, "active_run_id")));
	CHECK_STR(jstr(json_object_get(env, "outputs"), "word"), "hello");
	CHECK_INT(json_integer_value(json_object_get(json_object_get(env, "last_run"), "id")), id);
	json_decref(env);

	/* Re-apply with a changed parameter: it runs again, outputs follow. */
	CHECK(send_json(&S, "PATCH", "/api/v1/environments/demo-one",
			"{\"params\":{\"greeting\":\"hey\"}}", &r) == 0);
	CHECK_INT(r.status, 200);
	res_free(&r);
	id2 = run_start(&S, "demo-one", "apply");
	CHECK(id2 > id);
	run = run_wait(&S, id2, 10000);
	CHECK_STR(jstr(run, "status"), "succeeded");
	CHECK_STR(json_string_value(step_output(run, "greet", "word")), "hey");
	CHECK_INT(step_attempts(run, "greet"), 1);
	json_decref(run);
	CHECK(log_find(&S, id2, "finish", "hey test") > 0);
	env = env_get(&S, "demo-one");
	CHECK_STR(jstr(env, "status"), "ready");
	CHECK_STR(jstr(json_object_get(env, "outputs"), "word"), "hey");
	json_decref(env);
	/* The first run is unchanged. */
	run = run_get(&S, id);
	CHECK_STR(json_string_value(step_output(run, "greet", "word")), "hello");
	json_decref(run);
}

/* ---- 2. parallelism ---------------------------------------------------------- */

static void
check_parallel_run(json_t *run, int sequential)
{
	static const char *const names[] = {"one", "two", "three"};
	long long s[3], e[3], maxs = 0, mine = 0, maxe = 0, total;
	int i, j;

	CHECK_STR(jstr(run, "status"), "succeeded");
	for (i = 0; i < 3; i++) {
		s[i] = step_start(run, names[i]);
		e[i] = step_end(run, names[i]);
		CHECK(s[i] > 0 && e[i] - s[i] >= 450); /* each really slept */
		if (i == 0 || s[i] > maxs)
			maxs = s[i];
		if (i == 0 || e[i] < mine)
			mine = e[i];
		if (i == 0 || e[i] > maxe)
			maxe = e[i];
	}
	total = iso_ms(jstr(run, "finished_at")) - iso_ms(jstr(run, "started_at"));
	if (!sequential) {
		/* All three intervals share a moment. */
		CHECK(maxs < mine);
		CHECK(total < 1200);
		if (!(maxs < mine) || total >= 1200)
			fprintf(stderr, "    starts/ends %lld..%lld %lld..%lld %lld..%lld, run %lld ms\n",
				s[0] % 100000, e[0] % 100000, s[1] % 100000, e[1] % 100000,
				s[2] % 100000, e[2] % 100000, total);
	} else {
		/* No two overlap. */
		for (i = 0; i < 3; i++)
			for (j = i + 1; j < 3; j++)
				CHECK(e[i] <= s[j] || e[j] <= s[i]);
		CHECK(total >= 1500);
	}
	CHECK(step_start(run, "join") >= maxe);
}

static void
t_parallel(void)
{
	json_t *run;

	CHECK(env_create(&S, "par", "parallel", NULL) == 0);
	run = run_through(&S, "par", "apply", 10000);
	check_parallel_run(run, 0);
	json_decref(run);
}

static void
t_parallel_one(void)
{
	const char *extra[] = {"--parallel", "1", NULL};
	struct srv p;
	json_t *run;

	if (srv_start(&p, NULL, extra) != 0) {
		CHECK(!"server with --parallel 1 starts");
		return;
	}
	CHECK(env_create(&p, "par", "parallel", NULL) == 0);
	run = run_through(&p, "par", "apply", 10000);
	check_parallel_run(run, 1);
	json_decref(run);
	stop_server(&p, "t_parallel_one");
}

/* ---- 3. outputs and order ------------------------------------------------- */

static void
chain_params(char *out, size_t size, const char *trail)
{
	snprintf(out, size, "{\"trail\":\"%s\"}", trail);
}

static void
t_chain_outputs(void)
{
	char trail[400], params[512], text[256];
	json_t *run, *env, *outs;

	scratch(trail, sizeof(trail), "trail-chain");
	chain_params(params, sizeof(params), trail);
	CHECK(env_create(&S, "chain-out", "chain", params) == 0);
	run = run_through(&S, "chain-out", "apply", 10000);
	CHECK_STR(jstr(run, "status"), "succeeded");
	check_step_shape(run);
	CHECK_STR(json_string_value(step_output(run, "make", "val")), "abc-123");
	CHECK_STR(json_string_value(step_output(run, "make", "n")), "7");
	/* A whole-string reference and one inside longer text (in env). */
	CHECK_STR(json_string_value(step_output(run, "use", "got")), "abc-123");
	CHECK_STR(json_string_value(step_output(run, "use", "pre")), "x-abc-123-y");
	/* "command": "${params.cmd}" stayed an array, so the command ran. */
	CHECK_STR(json_string_value(step_output(run, "typed", "typed")), "yes");
	CHECK_STR(json_string_value(step_output(run, "last", "all")), "abc-123/yes");
	json_decref(run);
	CHECK(file_read(trail, text, sizeof(text)) == 0);
	CHECK_STR(text, "make\nuse\nlast\n");

	env = env_get(&S, "chain-out");
	outs = json_object_get(env, "outputs");
	CHECK_STR(jstr(env, "status"), "ready");
	CHECK_STR(jstr(outs, "val"), "abc-123");
	CHECK_STR(jstr(outs, "all"), "abc-123/yes");
	CHECK_STR(jstr(outs, "n"), "7");
	CHECK_INT(json_object_size(outs), 3);
	json_decref(env);
}

static void
t_order(void)
{
	char trail[400], params[512];
	json_t *run;

	scratch(trail, sizeof(trail), "trail-order");
	chain_params(params, sizeof(params), trail);
	CHECK(env_create(&S, "chain-order", "chain", params) == 0);
	run = run_through(&S, "chain-order", "apply", 10000);
	CHECK_STR(jstr(run, "status"), "succeeded");
	/* use references make; typed is after use; last after typed. */
	CHECK(step_start(run, "use") >= step_end(run, "make"));
	CHECK(step_start(run, "typed") >= step_end(run, "use"));
	CHECK(step_start(run, "last") >= step_end(run, "typed"));
	CHECK(step_end(run, "make") > 0 && step_end(run, "last") > 0);
	json_decref(run);

	/* demo: finish comes after count (after) and greet (reference). */
	CHECK(make_env(&S, "demo-order") == 0);
	run = run_through(&S, "demo-order", "apply", 10000);
	CHECK_STR(jstr(run, "status"), "succeeded");
	CHECK(step_start(run, "finish") >= step_end(run, "greet"));
	CHECK(step_start(run, "finish") >= step_end(run, "count"));
	json_decref(run);
}

/* ---- 4-5. failure, retry -------------------------------------------------- */

/* Create env on failing.json and run it once: it must fail.  The run id. */
static long long
failing_run(struct srv *s, const char *env, char *fix, char *trail, size_t size, json_t **out)
{
	char params[1024], name[128];
	long long id;

	snprintf(name, sizeof(name), "fix-%s", env);
	scratch(fix, size, name);
	snprintf(name, sizeof(name), "trail-%s", env);
	scratch(trail, size, name);
	snprintf(params, sizeof(params), "{\"fix\":\"%s\",\"trail\":\"%s\"}", fix, trail);
	*out = NULL;
	if (env_create(s, env, "failing", params) != 0)
		return -1;
	id = run_start(s, env, "apply");
	if (id > 0)
		*out = run_wait(s, id, 10000);
	return id;
}

static void
t_failure(void)
{
	char fix[400], trail[400], text[256];
	const char *msg;
	json_t *run, *env;

	failing_run(&S, "fail-one", fix, trail, sizeof(fix), &run);
	CHECK_STR(jstr(run, "status"), "failed");
	check_step_shape(run);
	CHECK_STR(step_status(run, "prep"), "succeeded");
	CHECK_STR(step_status(run, "bad"), "failed");
	CHECK_STR(step_err(run, "bad", "code"), "exit_status");
	msg = step_err(run, "bad", "message");
	CHECK(msg != NULL && strstr(msg, "status 3") != NULL);
	/* The command's last words on stderr, not just the status. */
	CHECK(msg != NULL && strstr(msg, "some noise") != NULL);
	CHECK(msg != NULL && strstr(msg, "cannot find") != NULL);
	if (msg != NULL && strstr(msg, "cannot find") == NULL)
		fprintf(stderr, "    message: %s\n", msg);
	/* The run says which step failed and why. */
	CHECK_STR(jstr(json_object_get(run, "error"), "code"), "exit_status");
	msg = jstr(json_object_get(run, "error"), "message");
	CHECK(msg != NULL && strstr(msg, "bad") != NULL && strstr(msg, "status 3") != NULL);
	/* The independent sibling was running and finished after the failure. */
	CHECK_STR(step_status(run, "sibling"), "succeeded");
	CHECK(step_end(run, "sibling") >= step_end(run, "bad"));
	/* What depends on the failure never ran. */
	CHECK_STR(step_status(run, "after-bad"), "skipped");
	CHECK_STR(step_status(run, "after-after"), "skipped");
	CHECK_INT(step_attempts(run, "after-bad"), 0);
	CHECK_INT(step_attempts(run, "after-after"), 0);
	CHECK(json_object_get(step_of(run, "after-bad"), "started_at") != NULL &&
	      json_is_null(json_object_get(step_of(run, "after-bad"), "started_at")));
	json_decref(run);
	CHECK(file_read(trail, text, sizeof(text)) == 0);
	CHECK(strstr(text, "after-bad") == NULL);

	env = env_get(&S, "fail-one");
	CHECK_STR(jstr(env, "status"), "failed");
	CHECK(json_is_null(json_object_get(env, "active_run_id")));
	json_decref(env);
}

/* On a server of its own: a crash there must not take the others down. */
static void
t_retry(void)
{
	const char *extra[] = {"--retry-base-ms", "40", NULL};
	char fix[400], trail[400], text[256], code[64];
	json_t *run, *env;
	struct srv R;
	long long id;
	long st;

	if (srv_start(&R, NULL, extra) != 0) {
		CHECK(!"server starts");
		return;
	}
	id = failing_run(&R, "fail-retry", fix, trail, sizeof(fix), &run);
	CHECK_STR(jstr(run, "status"), "failed");
	json_decref(run);
	if (id < 0) {
		stop_server(&R, "t_retry");
		return;
	}
	/* Fix what made it fail, then resume the same run. */
	CHECK(file_touch(fix) == 0);
	st = run_post(&R, id, "retry", code, sizeof(code));
	CHECK_INT(st, 202);
	if (st != 202) {
		stop_server(&R, "t_retry"); /* its log says why */
		return;
	}
	run = run_wait(&R, id, 10000);
	check_no_sanitizer_lines(&R, id);
	CHECK_STR(jstr(run, "status"), "succeeded");
	CHECK(json_is_null(json_object_get(run, "error")));
	CHECK_INT(json_integer_value(json_object_get(run, "round")), 2);
	/* Succeeded steps were not redone; the failed one ran again. */
	CHECK_INT(step_attempts(run, "prep"), 1);
	CHECK_INT(step_attempts(run, "sibling"), 1);
	CHECK_INT(step_attempts(run, "bad"), 2);
	CHECK_INT(step_attempts(run, "after-bad"), 1);
	CHECK_INT(step_attempts(run, "after-after"), 1);
	CHECK_STR(step_status(run, "bad"), "succeeded");
	CHECK(json_is_null(json_object_get(step_of(run, "bad"), "error")));
	CHECK_STR(step_status(run, "after-after"), "succeeded");
	json_decref(run);
	CHECK(file_read(trail, text, sizeof(text)) == 0);
	/* prep and sibling once; bad twice; the rest once, in order. */
	CHECK_STR(text, "prep\nbad\nsibling\nbad\nafter-bad\nafter-after\n");
	env = env_get(&R, "fail-retry");
	CHECK_STR(jstr(env, "status"), "ready");
	json_decref(env);

	/* Only a failed or cancelled run can be retried. */
	CHECK_INT(run_post(&R, id, "retry", code, sizeof(code)), 409);
	CHECK_STR(code, "not_retryable");
	CHECK_INT(run_post(&R, 999999, "retry", code, sizeof(code)), 404);
	stop_server(&R, "t_retry");
}

static void
t_flaky(void)
{
	const char *msg;
	json_t *run;

	CHECK(env_create(&S, "flaky-one", "flaky", NULL) == 0);
	run = run_through(&S, "flaky-one", "apply", 15000);
	/* Enough retries: succeeds at try 3 within the one run. */
	CHECK_STR(step_status(run, "eventually"), "succeeded");
	CHECK_INT(step_attempts(run, "eventually"), 3);
	CHECK_STR(json_string_value(step_output(run, "eventually", "tries")), "3");
	CHECK(json_is_null(json_object_get(step_of(run, "eventually"), "error")));
	/* No retries: the first retryable failure is final, and says so. */
	CHECK_STR(step_status(run, "giveup"), "failed");
	CHECK_INT(step_attempts(run, "giveup"), 1);
	CHECK_STR(step_err(run, "giveup", "code"), "flaky");
	msg = step_err(run, "giveup", "message");
	CHECK(msg != NULL && strstr(msg, "gave up") != NULL);
	if (msg != NULL && strstr(msg, "gave up") == NULL)
		fprintf(stderr, "    message: %s\n", msg);
	CHECK_STR(jstr(run, "status"), "failed");
	json_decref(run);
}

/* A step waiting out its retry when a sibling fails for good: the run
 * must still end (failed), not wait forever for the retry. */
static void
t_flaky_sibling(void)
{
	long long t0 = now_ms();
	const char *msg;
	json_t *run;

	CHECK(env_create(&S, "flaky-sib", "flaky-sibling", NULL) == 0);
	run = run_through(&S, "flaky-sib", "apply", 5000);
	CHECK_STR(jstr(run, "status"), "failed");
	CHECK(now_ms() - t0 < 4000);
	CHECK_STR(step_status(run, "broken"), "failed");
	CHECK_STR(step_status(run, "waiting"), "failed");
	CHECK(step_attempts(run, "waiting") >= 1 && step_attempts(run, "waiting") < 10);
	msg = step_err(run, "waiting", "message");
	CHECK(msg != NULL && strstr(msg, "not tried again") != NULL);
	json_decref(run);
}

/* ---- 6. cancel ------------------------------------------------------------ */

/* Start slow.json on a new environment and wait until its sleep runs:
 * the run id, the sleep's and its shell's pids. */
static long long
slow_start(struct srv *s, const char *env, const char *term, int seconds, char *pidfile,
	   size_t size, pid_t *sleep_pid, pid_t *sh_pid)
{
	char params[1024], name[128], shfile[512];
	long long id;

	snprintf(name, sizeof(name), "pid-%s", env);
	snprintf(pidfile, size, "%s/%s", s->dir, name);
	snprintf(params, sizeof(params), "{\"pidfile\":\"%s\",\"term\":\"%s\",\"seconds\":%d}",
		 pidfile, term, seconds);
	*sleep_pid = *sh_pid = -1;
	if (env_create(s, env, "slow", params) != 0)
		return -1;
	id = run_start(s, env, "apply");
	if (id < 0)
		return -1;
	*sleep_pid = pid_from_file(pidfile, 10000);
	snprintf(shfile, sizeof(shfile), "%s.sh", pidfile);
	*sh_pid = pid_from_file(shfile, 1000);
	CHECK(*sleep_pid > 1);
	CHECK(*sh_pid > 1);
	return id;
}

static void
t_cancel(void)
{
	char pidfile[512], code[64];
	pid_t sleep_pid, sh_pid;
	long long id, t0;
	json_t *run, *env;

	id = slow_start(&S, "slow-cancel", "default", 30, pidfile, sizeof(pidfile), &sleep_pid,
			&sh_pid);
	if (id < 0 || sleep_pid < 0)
		return;
	CHECK(kill(sleep_pid, 0) == 0);
	run = run_get(&S, id);
	CHECK_STR(jstr(run, "status"), "running");
	CHECK_STR(step_status(run, "first"), "succeeded");
	CHECK_STR(step_status(run, "sleeper"), "running");
	CHECK_STR(step_status(run, "next"), "pending");
	json_decref(run);

	t0 = now_ms();
	CHECK_INT(run_post(&S, id, "cancel", code, sizeof(code)), 202);
	run = run_wait(&S, id, 5000);
	CHECK_STR(jstr(run, "status"), "cancelled");
	CHECK_STR(step_status(run, "first"), "succeeded");
	CHECK_STR(step_status(run, "sleeper"), "cancelled");
	CHECK_STR(step_status(run, "next"), "cancelled");
	CHECK_INT(step_attempts(run, "next"), 0);
	json_decref(run);
	/* The command took SIGTERM: gone well within the grace period. */
	CHECK(pid_gone(sleep_pid, 1000));
	CHECK(pid_gone(sh_pid, 200));
	CHECK(now_ms() - t0 < 1000 + 1500);
	check_no_sanitizer_lines(&S, id);

	env = env_get(&S, "slow-cancel");
	CHECK(json_is_null(json_object_get(env, "active_run_id")));
	CHECK(!streq(jstr(env, "status"), "applying"));
	json_decref(env);

	/* A finished run cannot be cancelled. */
	CHECK_INT(run_post(&S, id, "cancel", code, sizeof(code)), 409);
	CHECK_STR(code, "finished");
	CHECK_INT(run_post(&S, 999999, "cancel", code, sizeof(code)), 404);
	stop_leftover(sleep_pid);
	stop_leftover(sh_pid);
}

/* Cancel a command that ignores SIGTERM on server s, whose grace period
 * is grace_ms: the step ends cancelled, and by the end of the grace
 * period (plus slack) neither the command nor what it started is left. */
static void
cancel_ignoring_term(struct srv *s, const char *env, long grace_ms)
{
	char pidfile[512], code[64];
	pid_t sleep_pid, sh_pid;
	long long id, t0;
	json_t *run;
	int gone;

	id = slow_start(s, env, "ignore", 30, pidfile, sizeof(pidfile), &sleep_pid, &sh_pid);
	if (id < 0 || sleep_pid < 0)
		return;
	sleep_ms(100); /* the trap is set before the sleep starts; be generous */
	t0 = now_ms();
	CHECK_INT(run_post(s, id, "cancel", code, sizeof(code)), 202);
	/* SIGTERM alone does not stop it... */
	sleep_ms(500);
	CHECK(kill(sleep_pid, 0) == 0);
	run = run_wait(s, id, (int)grace_ms + 5000);
	CHECK_STR(jstr(run, "status"), "cancelled");
	CHECK_STR(step_status(run, "sleeper"), "cancelled");
	CHECK_STR(step_status(run, "next"), "cancelled");
	json_decref(run);
	fprintf(stderr, "    cancelled in %lld ms (grace %ld ms)\n", now_ms() - t0, grace_ms);
	/* ...but by the end of the grace period, nothing of it is left. */
	gone = pid_gone(sleep_pid, (int)(t0 + grace_ms + 1500 - now_ms()));
	CHECK(gone);
	if (!gone)
		fprintf(stderr, "    the sleep (pid %ld, SIGTERM ignored) is still running %lld ms "
			"after the cancel, %lld ms past the grace period\n", (long)sleep_pid,
			now_ms() - t0, now_ms() - t0 - grace_ms);
	CHECK(pid_gone(sh_pid, 200));
	stop_leftover(sleep_pid);
	stop_leftover(sh_pid);
}

/* With the default grace (10 s), above exec's own SIGTERM-to-SIGKILL
 * escalation (5 s). */
static void
t_cancel_sigkill(void)
{
	struct srv d;

	if (srv_start(&d, NULL, NULL) != 0) {
		CHECK(!"server starts");
		return;
	}
	cancel_ignoring_term(&d, "slow-kill", 10000);
	stop_server(&d, "t_cancel_sigkill");
}

/* With a grace period shorter than exec's escalation (1 s on S): the
 * server's own SIGKILL must reach the command too. */
static void
t_cancel_short_grace(void)
{
	cancel_ignoring_term(&S, "slow-kill-short", 1000);
}

/* ---- 7. one run per environment ---------------------------------------- */

static void
t_lock(void)
{
	char gate[400], params[600];
	json_t *run, *env;
	long long id;
	struct res r;

	scratch(gate, sizeof(gate), "gate-lock");
	snprintf(params, sizeof(params), "{\"gate\":\"%s\",\"lines\":3}", gate);
	CHECK(env_create(&S, "locked", "gated", params) == 0);
	id = run_start(&S, "locked", "apply");
	if (id < 0)
		return;
	CHECK(step_wait(&S, id, "talk", "running", 5000));

	CHECK(send_json(&S, "POST", "/api/v1/environments/locked/runs", "{\"action\":\"apply\"}",
			&r) == 0);
	CHECK_INT(r.status, 409);
	CHECK_STR(err_code(&r), "locked");
	res_free(&r);
	CHECK(send_json(&S, "POST", "/api/v1/environments/locked/runs", "{\"action\":\"plan\"}",
			&r) == 0);
	CHECK_INT(r.status, 409);
	CHECK_STR(err_code(&r), "locked");
	res_free(&r);
	CHECK(send_json(&S, "PATCH", "/api/v1/environments/locked", "{\"params\":{\"lines\":4}}",
			&r) == 0);
	CHECK_INT(r.status, 409);
	CHECK_STR(err_code(&r), "locked");
	res_free(&r);
	CHECK(req(&S, "DELETE", "/api/v1/environments/locked", NULL, NULL, 0, NULL, &r) == 0);
	CHECK_INT(r.status, 409);
	CHECK_STR(err_code(&r), "locked");
	res_free(&r);
	env = env_get(&S, "locked");
	CHECK_STR(jstr(env, "status"), "applying");
	CHECK_INT(json_integer_value(json_object_get(env, "active_run_id")), id);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(env, "params"), "lines")), 3);
	json_decref(env);

	/* Let it finish: everything works again. */
	CHECK(file_touch(gate) == 0);
	run = run_wait(&S, id, 5000);
	CHECK_STR(jstr(run, "status"), "succeeded");
	json_decref(run);
	CHECK(send_json(&S, "PATCH", "/api/v1/environments/locked", "{\"params\":{\"lines\":4}}",
			&r) == 0);
	CHECK_INT(r.status, 200);
	res_free(&r);
	run = run_through(&S, "locked", "apply", 5000);
	CHECK_STR(jstr(run, "status"), "succeeded");
	json_decref(run);
	CHECK(req(&S, "DELETE", "/api/v1/environments/locked", NULL, NULL, 0, NULL, &r) == 0);
	CHECK_INT(r.status, 204);
	res_free(&r);
	CHECK(get(&S, "/api/v1/environments/locked", &r) == 0);
	CHECK_INT(r.status, 404);
	res_free(&r);
}

/* ---- 8. destroy and plan ------------------------------------------------- */

static void
t_destroy_reverse(void)
{
	char trail[400], params[512], text[256];
	json_t *run, *env;

	scratch(trail, sizeof(trail), "trail-destroy");
	chain_params(params, sizeof(params), trail);
	CHECK(env_create(&S, "chain-destroy", "chain", params) == 0);
	run = run_through(&S, "chain-destroy", "apply", 10000);
	CHECK_STR(jstr(run, "status"), "succeeded");
	json_decref(run);
	CHECK(unlink(trail) == 0);

	run = run_through(&S, "chain-destroy", "destroy", 10000);
	CHECK_STR(jstr(run, "status"), "succeeded");
	CHECK_STR(jstr(run, "action"), "destroy");
	/* Each destroy started after the one of what depended on it. */
	CHECK(step_start(run, "typed") >= step_end(run, "last"));
	CHECK(step_start(run, "use") >= step_end(run, "typed"));
	CHECK(step_start(run, "make") >= step_end(run, "use"));
	CHECK(step_end(run, "last") > 0);
	json_decref(run);
	/* exec's destroy_command ran, with outputs from the last apply. */
	CHECK(file_read(trail, text, sizeof(text)) == 0);
	CHECK_STR(text, "undo-last\nundo-typed\nundo-use abc-123\nundo-make\n");

	env = env_get(&S, "chain-destroy");
	CHECK_STR(jstr(env, "status"), "destroyed");
	CHECK_INT(json_object_size(json_object_get(env, "outputs")), 0);
	CHECK(json_is_null(json_object_get(env, "active_run_id")));
	json_decref(env);
}

static void
t_plan(void)
{
	char trail[400], params[512];
	json_t *run, *env;
	long long id;

	scratch(trail, sizeof(trail), "trail-plan");
	chain_params(params, sizeof(params), trail);
	CHECK(env_create(&S, "chain-plan", "chain", params) == 0);
	run = run_through(&S, "chain-plan", "plan", 10000);
	id = run_id_of(run);
	CHECK_STR(jstr(run, "status"), "succeeded");
	CHECK_STR(jstr(run, "action"), "plan");
	CHECK_STR(step_status(run, "last"), "succeeded");
	json_decref(run);
	/* Nothing ran: no trail; the plan says what would run. */
	CHECK(!file_exists(trail));
	CHECK(log_find(&S, id, "make", "would run: sh -c") > 0);
	CHECK(log_find(&S, id, "make", "undo-make") > 0); /* and what destroy would do */
	CHECK(log_find(&S, id, "use", "(known after apply)") > 0);
	env = env_get(&S, "chain-plan");
	CHECK_STR(jstr(env, "status"), "draft");
	CHECK(json_is_null(json_object_get(env, "active_run_id")));
	json_decref(env);

	/* After an apply, a plan leaves status and outputs alone. */
	run = run_through(&S, "chain-plan", "apply", 10000);
	CHECK_STR(jstr(run, "status"), "succeeded");
	json_decref(run);
	CHECK(unlink(trail) == 0);
	run = run_through(&S, "chain-plan", "plan", 10000);
	id = run_id_of(run);
	CHECK_STR(jstr(run, "status"), "succeeded");
	json_decref(run);
	CHECK(!file_exists(trail));
	CHECK(log_find(&S, id, "use", "abc-123") > 0); /* known now */
	env = env_get(&S, "chain-plan");
	CHECK_STR(jstr(env, "status"), "ready");
	CHECK_STR(jstr(json_object_get(env, "outputs"), "all"), "abc-123/yes");
	CHECK_INT(json_integer_value(json_object_get(json_object_get(env, "last_run"), "id")), id);
	json_decref(env);
}

/* ---- 9. logs ------------------------------------------------------------------- */

static int
stream_ok(const char *s)
{
	static const char *const ok[] = {"stdout", "stderr", "debug", "info", "warn", "error"};
	size_t i;

	for (i = 0; s != NULL && i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(s, ok[i]) == 0)
			return 1;
	return 0;
}

static long long chatty_run; /* for the SSE tests: a long finished run */

static void
t_logs_paging(void)
{
	json_t *run, *all, *l, *page_lines;
	char path[256], after[32] = "0";
	long long id, last = 0;
	size_t i, k = 0, pages = 0;
	struct res r;
	int bad = 0;

	CHECK(env_create(&S, "chatty-small", "chatty", "{\"lines\":25}") == 0);
	run = run_through(&S, "chatty-small", "apply", 10000);
	id = run_id_of(run);
	CHECK_STR(jstr(run, "status"), "succeeded");
	json_decref(run);
	all = logs_all(&S, id, NULL);
	CHECK(json_array_size(all) >= 27);
	json_array_foreach(all, i, l) {
		CHECK(json_is_integer(json_object_get(l, "seq")));
		CHECK(iso_ms(jstr(l, "ts")) > 0);
		CHECK(json_is_string(json_object_get(l, "step")));
		CHECK(stream_ok(jstr(l, "stream")));
		CHECK(json_is_string(json_object_get(l, "text")));
		CHECK(json_integer_value(json_object_get(l, "seq")) > last);
		last = json_integer_value(json_object_get(l, "seq"));
	}

	/* Pages of 4 give the same lines, each page's cursor its last seq. */
	for (;;) {
		snprintf(path, sizeof(path), "/api/v1/runs/%lld/logs?limit=4&after=%s", id, after);
		CHECK(get(&S, path, &r) == 0);
		CHECK_INT(r.status, 200);
		page_lines = json_object_get(r.json, "lines");
		CHECK(json_array_size(page_lines) <= 4);
		pages++;
		json_array_foreach(page_lines, i, l)
			if (!json_equal(l, json_array_get(all, k++)))
				bad++;
		if (!json_is_string(json_object_get(r.json, "next_after"))) {
			CHECK(json_is_null(json_object_get(r.json, "next_after")));
			res_free(&r);
			break;
		}
		CHECK_INT(json_array_size(page_lines), 4);
		CHECK_INT(strtoll(jstr(r.json, "next_after"), NULL, 10),
			  json_integer_value(json_object_get(json_array_get(page_lines, 3), "seq")));
		snprintf(after, sizeof(after), "%s", jstr(r.json, "next_after"));
		res_free(&r);
		if (pages > 100)
			break;
	}
	CHECK_INT(bad, 0);
	CHECK_INT(k, json_array_size(all));
	CHECK(pages >= json_array_size(all) / 4);

	/* ?step= keeps one step's lines, all of them. */
	{
		json_t *q = logs_all(&S, id, "quiet");
		size_t want = 0;

		json_array_foreach(all, i, l)
			if (streq(jstr(l, "step"), "quiet"))
				want++;
		CHECK(want >= 2);
		CHECK_INT(json_array_size(q), want);
		json_array_foreach(q, i, l)
			CHECK_STR(jstr(l, "step"), "quiet");
		/* Its stdout is info, its stderr a warning. */
		CHECK(log_find(&S, id, "quiet", "one quiet line") > 0);
		json_array_foreach(q, i, l)
			if (streq(jstr(l, "text"), "and a warning"))
				CHECK_STR(jstr(l, "stream"), "warn");
		json_decref(q);
	}
	snprintf(path, sizeof(path), "/api/v1/runs/%lld/logs?step=no-such-step", id);
	CHECK(get(&S, path, &r) == 0);
	CHECK_INT(r.status, 200);
	CHECK_INT(json_array_size(json_object_get(r.json, "lines")), 0);
	CHECK(json_is_null(json_object_get(r.json, "next_after")));
	res_free(&r);
	/* after= skips what was seen: after the third line from the end, two. */
	snprintf(path, sizeof(path), "/api/v1/runs/%lld/logs?after=%lld", id,
		 (long long)json_integer_value(json_object_get(
			 json_array_get(all, json_array_size(all) - 3), "seq")));
	CHECK(get(&S, path, &r) == 0);
	CHECK_INT(json_array_size(json_object_get(r.json, "lines")), 2);
	CHECK(json_equal(json_array_get(json_object_get(r.json, "lines"), 1),
			 json_array_get(all, json_array_size(all) - 1)));
	res_free(&r);
	json_decref(all);
}

static void
t_logs_chatty(void)
{
	json_t *run, *all, *l;
	long long id, next = 1, n, t0 = now_ms();
	const char *text;
	char *end;
	size_t i;
	int bad = 0;

	CHECK(env_create(&S, "chatty", "chatty", "{\"lines\":20000}") == 0);
	run = run_through(&S, "chatty", "apply", 30000);
	id = run_id_of(run);
	CHECK_STR(jstr(run, "status"), "succeeded");
	json_decref(run);
	chatty_run = id;
	all = logs_all(&S, id, "chatty");
	json_array_foreach(all, i, l) {
		text = jstr(l, "text");
		if (!streq(jstr(l, "stream"), "info") || text == NULL || text[0] < '0' || text[0] > '9')
			continue;
		n = strtoll(text, &end, 10);
		if (*end != '\0' || n != next) {
			if (bad++ < 3)
				fprintf(stderr, "    line %zu: '%s', want %lld\n", i, text, next);
			next = n;
		}
		next++;
	}
	CHECK_INT(bad, 0);
	CHECK_INT(next - 1, 20000);
	fprintf(stderr, "    20000 lines logged and read back in %lld ms\n", now_ms() - t0);
	json_decref(all);
}

/* ---- 10. event streams ------------------------------------------------------- */

static void
t_sse_replay(void)
{
	json_t *run, *last;
	long long id = chatty_run, n, half;
	char lid[32];
	struct sse x;
	CURLcode cc;
	long status;

	if (id <= 0) {
		/* Without the big run, a small one does. */
		CHECK(env_create(&S, "sse-replay", "chatty", "{\"lines\":300}") == 0);
		run = run_through(&S, "sse-replay", "apply", 10000);
		id = run_id_of(run);
		json_decref(run);
	}
	sse_init(&x);
	cc = sse_get(&S, id, NULL, &x, &status, 30);
	/* A finished run: everything, then the stream ends by itself. */
	CHECK_INT(cc, CURLE_OK);
	CHECK_INT(status, 200);
	CHECK_INT(x.bad_lines, 0);
	n = check_contiguous(x.events, 1);
	CHECK(n > 20);
	last = json_array_get(x.events, json_array_size(x.events) - 1);
	CHECK_STR(ev_kind(last), "run");
	CHECK_STR(jstr(ev_data(last), "status"), "succeeded");
	CHECK_STR(ev_kind(json_array_get(x.events, 0)), "run");
	CHECK_STR(jstr(ev_data(json_array_get(x.events, 0)), "status"), "running");
	check_events_match_logs(&S, id, x.events);
	sse_free(&x);

	/* After Last-Event-ID: only what follows it. */
	half = n / 2;
	snprintf(lid, sizeof(lid), "%lld", half);
	sse_init(&x);
	cc = sse_get(&S, id, lid, &x, &status, 30);
	CHECK_INT(cc, CURLE_OK);
	CHECK_INT((long long)json_array_size(x.events), n - half);
	CHECK_INT(check_contiguous(x.events, half + 1), n);
	sse_free(&x);

	/* After the last one: nothing, and the stream ends. */
	snprintf(lid, sizeof(lid), "%lld", n);
	sse_init(&x);
	cc = sse_get(&S, id, lid, &x, &status, 10);
	CHECK_INT(cc, CURLE_OK);
	CHECK_INT(json_array_size(x.events), 0);
	sse_free(&x);

	/* A Last-Event-ID that is no event id. */
	sse_init(&x);
	CHECK_INT(sse_get(&S, id, "abc", &x, &status, 10), CURLE_OK);
	CHECK_INT(status, 422);
	sse_free(&x);
}

/* The watcher creates the gate once it has seen the last line before it:
 * the lines after the gate can only reach it live. */
struct gate_ctx {
	const char *gate, *trigger;
	long long opened_at;	/* ms; 0 until the gate was created */
	int drop;		/* drop the connection at the trigger instead */
};

static int
gate_on_event(struct sse *x, json_t *ev)
{
	struct gate_ctx *g = x->ctx;
	const char *text = jstr(ev_data(ev), "text");

	if (!streq(ev_kind(ev), "log") || text == NULL || !streq(text, g->trigger))
		return 0;
	if (g->drop)
		return 1;
	if (g->opened_at == 0 && file_touch(g->gate) == 0)
		g->opened_at = now_ms();
	return 0;
}

static void
t_sse_live(void)
{
	char gate[400], params[600];
	struct gate_ctx g = {NULL, "before-20", 0, 0};
	json_t *ev, *last;
	int after = 0;
	long long id;
	struct sse x;
	CURLcode cc;
	long status;
	size_t i;

	scratch(gate, sizeof(gate), "gate-live");
	g.gate = gate;
	snprintf(params, sizeof(params), "{\"gate\":\"%s\",\"lines\":20}", gate);
	CHECK(env_create(&S, "sse-live", "gated", params) == 0);
	id = run_start(&S, "sse-live", "apply");
	if (id < 0)
		return;
	sse_init(&x);
	x.on_event = gate_on_event;
	x.ctx = &g;
	cc = sse_get(&S, id, NULL, &x, &status, 20);
	/* The stream ended by itself, when the run did. */
	CHECK_INT(cc, CURLE_OK);
	CHECK_INT(status, 200);
	CHECK(g.opened_at > 0);
	CHECK(x.retry_seen);
	check_contiguous(x.events, 1);
	json_array_foreach(x.events, i, ev)
		if (streq(ev_kind(ev), "log") && jstr(ev_data(ev), "text") != NULL &&
		    strncmp(jstr(ev_data(ev), "text"), "after-", 6) == 0)
			after++;
	CHECK_INT(after, 20);
	last = json_array_get(x.events, json_array_size(x.events) - 1);
	CHECK_STR(ev_kind(last), "run");
	CHECK_STR(jstr(ev_data(last), "status"), "succeeded");
	check_events_match_logs(&S, id, x.events);
	sse_free(&x);
	json_decref(run_wait(&S, id, 5000));
}

static void
t_sse_reconnect(void)
{
	char gate[400], params[600], lid[32];
	struct gate_ctx g = {NULL, "before-150", 0, 1};
	json_t *all, *ev, *run;
	long long id, cut;
	struct sse x, y;
	CURLcode cc;
	long status;
	size_t i;

	scratch(gate, sizeof(gate), "gate-reconnect");
	g.gate = gate;
	snprintf(params, sizeof(params), "{\"gate\":\"%s\",\"lines\":300}", gate);
	CHECK(env_create(&S, "sse-reconnect", "gated", params) == 0);
	id = run_start(&S, "sse-reconnect", "apply");
	if (id < 0)
		return;
	/* Watch until "before-150", then drop the connection mid-run. */
	sse_init(&x);
	x.on_event = gate_on_event;
	x.ctx = &g;
	cc = sse_get(&S, id, NULL, &x, &status, 20);
	CHECK_INT(cc, CURLE_WRITE_ERROR);
	CHECK(x.dropped);
	cut = check_contiguous(x.events, 1);
	CHECK(cut > 150);
	/* More happens while nobody watches. */
	CHECK(file_touch(gate) == 0);
	sleep_ms(100);
	/* Reconnect with the last id seen: exactly the rest. */
	snprintf(lid, sizeof(lid), "%lld", cut);
	sse_init(&y);
	cc = sse_get(&S, id, lid, &y, &status, 20);
	CHECK_INT(cc, CURLE_OK);
	CHECK_INT(status, 200);
	CHECK(json_array_size(y.events) > 300);
	check_contiguous(y.events, cut + 1);
	run = run_wait(&S, id, 5000);
	CHECK_STR(jstr(run, "status"), "succeeded");
	json_decref(run);
	/* Both halves together are the run's whole story, as /logs tells it. */
	all = json_array();
	json_array_foreach(x.events, i, ev)
		json_array_append(all, ev);
	json_array_foreach(y.events, i, ev)
		json_array_append(all, ev);
	check_contiguous(all, 1);
	check_events_match_logs(&S, id, all);
	CHECK_STR(ev_kind(json_array_get(all, json_array_size(all) - 1)), "run");
	json_decref(all);
	sse_free(&x);
	sse_free(&y);
}

/* ---- 11. a killed server resumes ------------------------------------------------ */

static void
t_crash_restart(void)
{
	char pidfile[512], dir[256];
	pid_t sleep_pid, sh_pid, new_pid;
	struct srv s, s2;
	json_t *run;
	long long id;
	int gone;

	if (srv_start(&s, NULL, NULL) != 0) {
		CHECK(!"server starts");
		return;
	}
	id = slow_start(&s, "crash", "default", 3, pidfile, sizeof(pidfile), &sleep_pid, &sh_pid);
	if (id < 0 || sleep_pid < 0) {
		stop_server(&s, "t_crash_restart");
		return;
	}
	run = run_get(&s, id);
	CHECK_STR(step_status(run, "first"), "succeeded");
	CHECK_STR(step_status(run, "sleeper"), "running");
	json_decref(run);
	CHECK(unlink(pidfile) == 0);

	/* SIGKILL mid-step: the runner and what it started go with it (the
	 * sleep would otherwise last almost 3 s more). */
	srv_kill(&s);
	gone = pid_gone(sleep_pid, 1000);
	CHECK(gone);
	if (!gone)
		fprintf(stderr, "    the sleep (pid %ld) of a step outlived the killed server\n",
			(long)sleep_pid);
	CHECK(pid_gone(sh_pid, 500));

	snprintf(dir, sizeof(dir), "%s", s.dir);
	if (srv_start(&s2, dir, NULL) != 0) {
		CHECK(!"server restarts on the same database");
		stop_leftover(sleep_pid);
		srv_rmdir(dir);
		return;
	}
	run = run_wait(&s2, id, 15000);
	CHECK_STR(jstr(run, "status"), "succeeded");
	CHECK_INT(step_attempts(run, "first"), 1);   /* never redone */
	CHECK_INT(step_attempts(run, "sleeper"), 2); /* ran again */
	CHECK_INT(step_attempts(run, "next"), 1);
	CHECK_STR(step_status(run, "next"), "succeeded");
	json_decref(run);
	new_pid = pid_from_file(pidfile, 100);
	CHECK(new_pid > 1 && new_pid != sleep_pid);
	CHECK(log_find(&s2, id, "sleeper", "server restarted") > 0);
	check_no_sanitizer_lines(&s2, id);
	/* Environment follows: ready, lock released. */
	run = env_get(&s2, "crash");
	CHECK_STR(jstr(run, "status"), "ready");
	CHECK(json_is_null(json_object_get(run, "active_run_id")));
	json_decref(run);
	stop_server(&s2, "t_crash_restart");
	stop_leftover(sleep_pid);
	stop_leftover(sh_pid);
}

/* ---- 12. plugins through the real loader ---------------------------------- */

static long long plugins_run;	/* the hostcheck run, for the secrets test */
static char plugins_secret[256];

static void
t_hostcheck(void)
{
	char secret_file[400], params[1200];
	json_t *run, *with, *v, *env, *ev, *o;
	struct mini m;
	struct sse x;
	long status;
	long long id;
	unsigned short closed;
	size_t i;
	int progress[4], np = 0;
	const char *msgs[4];

	if (mini_start(&m) != 0) {
		CHECK(!"the tiny HTTP server starts");
		return;
	}
	closed = loopback_port(NULL);
	scratch(secret_file, sizeof(secret_file), "secret-hostcheck");
	snprintf(params, sizeof(params),
		 "{\"secret_file\":\"%s\",\"url\":\"http://127.0.0.1:%u/echo\","
		 "\"closed_url\":\"http://127.0.0.1:%u/\"}", secret_file, m.port, closed);
	CHECK(env_create(&S, "hostcheck", "plugins", params) == 0);
	run = run_through(&S, "hostcheck", "apply", 20000);
	mini_stop(&m);
	id = run_id_of(run);
	plugins_run = id;
	file_read(secret_file, plugins_secret, sizeof(plugins_secret));
	plugins_secret[strcspn(plugins_secret, "\n")] = '\0';
	CHECK_STR(jstr(run, "status"), "succeeded");
	if (!streq(jstr(run, "status"), "succeeded"))
		fprintf(stderr, "    run error: %s\n", jstr(json_object_get(run, "error"), "message"));

	/* input(), inputs_json(), info(), the ABI numbers. */
	with = step_output(run, "inputs", "with");
	v = json_pack("{s:s, s:s, s:i, s:b, s:{s:[i,i], s:s}}", "mode", "inputs", "s",
		      "text bird", "n", 5, "b", 1, "o", "a", 1, 2, "w", "bird");
	CHECK(json_equal(with, v));
	json_decref(v);
	CHECK_STR(json_string_value(step_output(run, "inputs", "in_s")), "text bird");
	CHECK_STR(json_string_value(step_output(run, "inputs", "in_n")), "5");
	CHECK_STR(json_string_value(step_output(run, "inputs", "in_b")), "true");
	v = json_loads(json_string_value(step_output(run, "inputs", "in_o")) ?: "", 0, NULL);
	CHECK(json_equal(v, json_object_get(with, "o")));
	json_decref(v);
	CHECK_STR(json_string_value(step_output(run, "inputs", "in_missing")), "(null)");
	CHECK_STR(json_string_value(step_output(run, "inputs", "info_action")), "apply");
	CHECK_STR(json_string_value(step_output(run, "inputs", "info_environment")), "hostcheck");
	CHECK_STR(json_string_value(step_output(run, "inputs", "info_provider")), "sandbox");
	CHECK_STR(json_string_value(step_output(run, "inputs", "info_step")), "inputs");
	CHECK_INT(strtoll(json_string_value(step_output(run, "inputs", "info_run")) ?: "0", NULL, 10),
		  id);
	CHECK_STR(json_string_value(step_output(run, "inputs", "info_attempt")), "1");
	CHECK_STR(json_string_value(step_output(run, "inputs", "info_plugin")), "hostcheck");
	CHECK_STR(json_string_value(step_output(run, "inputs", "info_unknown")), "(null)");
	CHECK_STR(json_string_value(step_output(run, "inputs", "abi")), ABI_TEXT);
	CHECK_STR(json_string_value(step_output(run, "inputs", "size_ok")), "yes");

	/* log() at every level, in order, and raw stdout/stderr. */
	{
		long long d = log_find(&S, id, "log", "hostcheck debug line"),
			  in = log_find(&S, id, "log", "hostcheck info line"),
			  w = log_find(&S, id, "log", "hostcheck warn line"),
			  e = log_find(&S, id, "log", "hostcheck error line");
		json_t *lines = logs_all(&S, id, "log"), *l;
		int seen = 0;

		CHECK(d > 0 && d < in && in < w && w < e);
		json_array_foreach(lines, i, l) {
			const char *t = jstr(l, "text"), *st = jstr(l, "stream");

			if (streq(t, "hostcheck debug line") && streq(st, "debug"))
				seen |= 1;
			if (streq(t, "hostcheck info line") && streq(st, "info"))
				seen |= 2;
			if (streq(t, "hostcheck warn line") && streq(st, "warn"))
				seen |= 4;
			if (streq(t, "hostcheck error line") && streq(st, "error"))
				seen |= 8;
			if (streq(t, "hostcheck formatted 42-x-002.5"))
				seen |= 16;
			if (streq(t, "hostcheck bad level line") && streq(st, "info"))
				seen |= 32;
			if (streq(t, "hostcheck stdout line") && streq(st, "stdout"))
				seen |= 64;
			if (streq(t, "hostcheck stderr line") && streq(st, "stderr"))
				seen |= 128;
		}
		CHECK_INT(seen, 255);
		json_decref(lines);
	}

	/* output() and output_json(): types kept, refusals refused. */
	CHECK_STR(json_string_value(step_output(run, "outputs", "plain")), "text value");
	v = json_loads("{\"k\":[1,2,{\"z\":null}]}", 0, NULL);
	CHECK(json_equal(step_output(run, "outputs", "obj"), v));
	CHECK(json_is_integer(step_output(run, "outputs", "num")));
	CHECK_INT(json_integer_value(step_output(run, "outputs", "num")), 42);
	CHECK(json_is_array(step_output(run, "outputs", "arr")));
	CHECK_STR(json_string_value(step_output(run, "outputs", "str")), "quoted");
	CHECK_STR(json_string_value(step_output(run, "outputs", "refused_key")), "-1");
	CHECK_STR(json_string_value(step_output(run, "outputs", "refused_json")), "-1");
	CHECK_STR(json_string_value(step_output(run, "outputs", "refused_null")), "-1");
	CHECK_STR(json_string_value(step_output(run, "outputs", "twice")), "second");
	CHECK(step_output(run, "outputs", "badjson") == NULL);
	CHECK(step_output(run, "outputs", "nullvalue") == NULL);
	/* ...and so reach the next step whole when referenced whole. */
	with = step_output(run, "typed", "with");
	CHECK(json_equal(json_object_get(with, "whole"), v));
	CHECK(json_is_integer(json_object_get(with, "num")));
	CHECK_INT(json_integer_value(json_object_get(with, "num")), 42);
	CHECK_STR(jstr(with, "text"), "n=42 s=quoted");
	o = json_loads("[[true,false],\"text value\"]", 0, NULL);
	CHECK(json_equal(json_object_get(with, "nested"), o));
	json_decref(o);
	env = env_get(&S, "hostcheck");
	CHECK(json_equal(json_object_get(json_object_get(env, "outputs"), "obj"), v));
	CHECK_STR(jstr(json_object_get(env, "outputs"), "plain"), "text value");
	CHECK_STR(jstr(json_object_get(env, "outputs"), "greeting"), "hello, bird");
	json_decref(env);
	json_decref(v);

	/* progress(): step events carrying percent (clamped) and message. */
	sse_init(&x);
	CHECK_INT(sse_get(&S, id, NULL, &x, &status, 20), CURLE_OK);
	json_array_foreach(x.events, i, ev) {
		if (!streq(ev_kind(ev), "step") || jstr(ev_data(ev), "step") == NULL ||
		    !streq(jstr(ev_data(ev), "step"), "progress") ||
		    json_object_get(ev_data(ev), "progress") == NULL || np >= 4)
			continue;
		progress[np] = (int)json_integer_value(json_object_get(ev_data(ev), "progress"));
		msgs[np++] = jstr(ev_data(ev), "message");
	}
	CHECK_INT(np, 4);
	if (np == 4) {
		CHECK_INT(progress[0], 0);
		CHECK_STR(msgs[0], "starting");
		CHECK_INT(progress[1], 50);
		CHECK_STR(msgs[1], "half way");
		CHECK_INT(progress[2], 100);
		CHECK_STR(msgs[2], "over the top");
		CHECK_INT(progress[3], 0);
		CHECK_STR(msgs[3], "");
	}
	sse_free(&x);

	/* state_get/state_set across attempts of the step. */
	CHECK_STR(step_status(run, "state"), "succeeded");
	CHECK_INT(step_attempts(run, "state"), 3);
	CHECK_STR(json_string_value(step_output(run, "state", "tries")), "3");
	CHECK_STR(json_string_value(step_output(run, "state", "history")), "1,2,3");
	CHECK_STR(json_string_value(step_output(run, "state", "attempt_info")), "3");
	CHECK_STR(json_string_value(step_output(run, "state", "bad_key_rc")), "-1");
	CHECK_STR(json_string_value(step_output(run, "state", "null_value_rc")), "-1");

	/* secret_put, then secret_get in this step and in a later one. */
	CHECK_STR(json_string_value(step_output(run, "put", "roundtrip")), "yes");
	CHECK_STR(json_string_value(step_output(run, "put", "missing_rc")), "0");
	CHECK_STR(json_string_value(step_output(run, "put", "bad_name_rc")), "-1");
	CHECK_STR(json_string_value(step_output(run, "put", "null_value_rc")), "-1");
	CHECK_STR(json_string_value(step_output(run, "get", "match")), "yes");

	/* cancelled() and sleep_ms() when nobody cancels. */
	CHECK_STR(json_string_value(step_output(run, "sleep", "cancelled_before")), "0");
	CHECK_STR(json_string_value(step_output(run, "sleep", "slept_early")), "0");
	CHECK(step_end(run, "sleep") - step_start(run, "sleep") >= 100);

	/* http(): a 503 retried, GET and POST with headers and body, a
	 * refused connection, an answer too large. */
	CHECK_STR(json_string_value(step_output(run, "http", "get_status")), "200");
	CHECK_STR(json_string_value(step_output(run, "http", "get_body")), "echo GET hdr=yes body=");
	CHECK_STR(json_string_value(step_output(run, "http", "get_type")), "text/plain");
	CHECK_STR(json_string_value(step_output(run, "http", "get_len")), "22");
	CHECK_STR(json_string_value(step_output(run, "http", "post_status")), "200");
	CHECK_STR(json_string_value(step_output(run, "http", "post_body")),
		  "echo POST hdr=yes body=ping-body");
	CHECK_STR(json_string_value(step_output(run, "http", "closed_rc")), "-1");
	CHECK_STR(json_string_value(step_output(run, "http", "closed_status")), "0");
	CHECK_STR(json_string_value(step_output(run, "http", "small_rc")), "-1");
	CHECK(atomic_load(&m.requests) >= 4);
	CHECK(log_find(&S, id, "http", "try 2 of 5") > 0);

	/* The example plugin. */
	CHECK_STR(json_string_value(step_output(run, "hello", "greeting")), "hello, bird");
	CHECK_STR(json_string_value(step_output(run, "hello", "attempt_seen")), "1");
	json_decref(run);
}

/* The whole event stream of run id must not hold secret. */
static void
check_events_free_of(long long id, const char *secret)
{
	struct sse x;
	long status;
	char *all;

	sse_init(&x);
	CHECK_INT(sse_get(&S, id, NULL, &x, &status, 20), CURLE_OK);
	all = json_dumps(x.events, JSON_COMPACT);
	CHECK(all != NULL && strstr(all, secret) == NULL);
	if (all != NULL && strstr(all, secret) != NULL) {
		const char *p = strstr(all, secret);

		fprintf(stderr, "    the secret is in the events of run %lld: ...%.100s...\n", id,
			p > all + 60 ? p - 60 : all);
	}
	free(all);
	sse_free(&x);
}

/* Nothing the API returns may hold a secret: logs, the run, its events,
 * the environment.  Where the plugin logged it, [redacted] stands. */
static void
t_secrets_redacted(void)
{
	char where[3][256];
	struct res r;
	int i;

	if (plugins_run <= 0 || plugins_secret[0] == '\0')
		SKIP("needs the hostcheck run");
	CHECK(strlen(plugins_secret) > 16);
	snprintf(where[0], sizeof(where[0]), "/api/v1/runs/%lld/logs?limit=5000", plugins_run);
	snprintf(where[1], sizeof(where[1]), "/api/v1/runs/%lld", plugins_run);
	snprintf(where[2], sizeof(where[2]), "/api/v1/environments/hostcheck");
	for (i = 0; i < 3; i++) {
		CHECK(get(&S, where[i], &r) == 0);
		CHECK_INT(r.status, 200);
		CHECK(strstr(r.body, plugins_secret) == NULL);
		if (strstr(r.body, plugins_secret) != NULL)
			fprintf(stderr, "    the secret is in GET %s\n", where[i]);
		res_free(&r);
	}
	/* [redacted] where each leak was. */
	CHECK(log_find(&S, plugins_run, "put", "leak debug [redacted]") > 0);
	CHECK(log_find(&S, plugins_run, "put", "leak info [redacted] end") > 0);
	CHECK(log_find(&S, plugins_run, "put", "leak warn [redacted]") > 0);
	CHECK(log_find(&S, plugins_run, "put", "leak error [redacted]") > 0);
	CHECK(log_find(&S, plugins_run, "put", "leak stdout [redacted]") > 0);
	CHECK(log_find(&S, plugins_run, "put", "leak stderr [redacted]") > 0);
	CHECK(log_find(&S, plugins_run, "get", "got [redacted]") > 0);

	check_events_free_of(plugins_run, plugins_secret);
}

/* A failure message that quotes a secret must not carry it into the run. */
static void
t_secret_in_failure(void)
{
	char file[400], params[800], secret[256], path[64];
	const char *msg;
	json_t *run;
	struct res r;
	long long id;

	scratch(file, sizeof(file), "secret-failure");
	snprintf(params, sizeof(params), "{\"mode\":\"secret_put\",\"file\":\"%s\"}", file);
	CHECK(env_create(&S, "secret-fail", "hostcheck-one", params) == 0);
	run = run_through(&S, "secret-fail", "apply", 10000);
	CHECK_STR(jstr(run, "status"), "succeeded");
	json_decref(run);
	CHECK(file_read(file, secret, sizeof(secret)) == 0);
	secret[strcspn(secret, "\n")] = '\0';
	CHECK(strlen(secret) > 16);

	CHECK(send_json(&S, "PATCH", "/api/v1/environments/secret-fail",
			"{\"params\":{\"mode\":\"secret_fail\"}}", &r) == 0);
	CHECK_INT(r.status, 200);
	res_free(&r);
	run = run_through(&S, "secret-fail", "apply", 10000);
	id = run_id_of(run);
	CHECK_STR(jstr(run, "status"), "failed");
	CHECK_STR(step_err(run, "one", "code"), "leak");
	msg = step_err(run, "one", "message");
	CHECK(msg != NULL && strstr(msg, "[redacted]") != NULL);
	json_decref(run);
	snprintf(path, sizeof(path), "/api/v1/runs/%lld", id);
	CHECK(get(&S, path, &r) == 0);
	CHECK(strstr(r.body, secret) == NULL);
	if (strstr(r.body, secret) != NULL)
		fprintf(stderr, "    the secret is in GET %s: %s\n", path, r.body);
	res_free(&r);
	CHECK(get(&S, "/api/v1/environments/secret-fail", &r) == 0);
	CHECK(strstr(r.body, secret) == NULL);
	res_free(&r);
	check_events_free_of(id, secret);

	/* The everyday case: a command prints the secret on stderr and fails;
	 * exec quotes its last stderr lines in the error. */
	scratch(file, sizeof(file), "secret-exec");
	snprintf(params, sizeof(params), "{\"file\":\"%s\"}", file);
	CHECK(env_create(&S, "secret-exec", "secret-exec", params) == 0);
	run = run_through(&S, "secret-exec", "apply", 10000);
	id = run_id_of(run);
	CHECK(file_read(file, secret, sizeof(secret)) == 0);
	secret[strcspn(secret, "\n")] = '\0';
	CHECK(strlen(secret) > 16);
	CHECK_STR(jstr(run, "status"), "failed");
	CHECK_STR(step_err(run, "leak", "code"), "exit_status");
	msg = step_err(run, "leak", "message");
	CHECK(msg != NULL && strstr(msg, "token: [redacted]") != NULL);
	json_decref(run);
	CHECK(log_find(&S, id, "leak", "token: [redacted]") > 0);
	snprintf(path, sizeof(path), "/api/v1/runs/%lld", id);
	CHECK(get(&S, path, &r) == 0);
	CHECK(strstr(r.body, secret) == NULL);
	if (strstr(r.body, secret) != NULL)
		fprintf(stderr, "    the secret is in GET %s: ...%.160s\n", path,
			strstr(r.body, "\"error\""));
	res_free(&r);
	check_events_free_of(id, secret);
}

static void
t_plugin_fail(void)
{
	const char *msg;
	json_t *run;

	CHECK(env_create(&S, "plugin-fail", "hostcheck-one",
			 "{\"mode\":\"fail\",\"code\":\"quota_exceeded\","
			 "\"arg\":\"too many widgets\"}") == 0);
	run = run_through(&S, "plugin-fail", "apply", 10000);
	CHECK_STR(jstr(run, "status"), "failed");
	CHECK_STR(step_status(run, "one"), "failed");
	CHECK_INT(step_attempts(run, "one"), 1);
	/* fail(): the code and message of its last call. */
	CHECK_STR(step_err(run, "one", "code"), "quota_exceeded");
	CHECK_STR(step_err(run, "one", "message"), "failing on purpose: too many widgets");
	CHECK_STR(jstr(json_object_get(run, "error"), "code"), "quota_exceeded");
	msg = jstr(json_object_get(run, "error"), "message");
	CHECK(msg != NULL && strstr(msg, "too many widgets") != NULL && strstr(msg, "one") != NULL);
	json_decref(run);
}

/* cancelled() and sleep_ms() when the run is cancelled: the plugin wakes
 * and returns CANCELLED itself, long before the grace period ends. */
static void
t_plugin_cancel(void)
{
	char code[64];
	json_t *run;
	long long id, t0;

	CHECK(env_create(&S, "plugin-cancel", "hostcheck-one",
			 "{\"mode\":\"sleep\",\"ms\":30000}") == 0);
	id = run_start(&S, "plugin-cancel", "apply");
	if (id < 0)
		return;
	CHECK(step_wait(&S, id, "one", "running", 5000));
	t0 = now_ms();
	while (log_find(&S, id, "one", "sleeping 30000 ms") < 0 && now_ms() - t0 < 5000)
		sleep_ms(10);
	t0 = now_ms();
	CHECK_INT(run_post(&S, id, "cancel", code, sizeof(code)), 202);
	run = run_wait(&S, id, 5000);
	CHECK(now_ms() - t0 < 900);
	CHECK_STR(jstr(run, "status"), "cancelled");
	CHECK_STR(step_status(run, "one"), "cancelled");
	json_decref(run);
	CHECK(log_find(&S, id, "one", "woken by cancellation") > 0);
}

static void
t_segfault(void)
{
	const char *msg;
	json_t *run;
	struct res r;

	CHECK(env_create(&S, "crashing", "bad-plugins", NULL) == 0);
	run = run_through(&S, "crashing", "apply", 10000);
	CHECK_STR(jstr(run, "status"), "failed");
	CHECK_STR(step_status(run, "crash"), "failed");
	CHECK_STR(step_err(run, "crash", "code"), "crashed");
	msg = step_err(run, "crash", "message");
	CHECK(msg != NULL && strstr(msg, "Segmentation fault") != NULL);
	if (msg != NULL && strstr(msg, "Segmentation fault") == NULL)
		fprintf(stderr, "    message: %s\n", msg);
	CHECK_STR(step_status(run, "fine"), "succeeded");
	json_decref(run);
	CHECK(get(&S, "/api/v1/health", &r) == 0);
	CHECK_INT(r.status, 200);
	res_free(&r);
}

static void
t_badabi(void)
{
	const char *err;
	json_t *p;
	struct res r;
	size_t i;
	int found = 0;

	CHECK(get(&S, "/api/v1/blueprints/badabi", &r) == 0);
	CHECK_INT(r.status, 200);
	err = jstr(r.json, "load_error");
	CHECK(err != NULL && strstr(err, "badabi") != NULL && strstr(err, "ABI 2.0") != NULL &&
	      strstr(err, ABI_TEXT) != NULL);
	if (err != NULL && strstr(err, "ABI 2.0") == NULL)
		fprintf(stderr, "    load_error: %s\n", err);
	res_free(&r);
	CHECK(send_json(&S, "POST", "/api/v1/environments",
			"{\"name\":\"abi\",\"provider\":\"sandbox\",\"blueprint\":\"badabi\"}",
			&r) == 0);
	CHECK_INT(r.status, 422);
	CHECK_STR(err_code(&r), "blueprint_not_loadable");
	CHECK_STR(err_field(&r), "blueprint");
	CHECK(strstr(r.body, "ABI 2.0") != NULL);
	res_free(&r);
	CHECK(get(&S, "/api/v1/plugins", &r) == 0);
	CHECK_INT(r.status, 200);
	json_array_foreach(json_object_get(r.json, "plugins"), i, p)
		if (streq(jstr(p, "name"), "badabi")) {
			found = 1;
			CHECK(jstr(p, "error") != NULL && strstr(jstr(p, "error"), "ABI") != NULL);
		}
	CHECK(found);
	res_free(&r);
}

static void
t_unknown_plugin(void)
{
	const char *err;
	struct res r;

	CHECK(get(&S, "/api/v1/blueprints/unknown-plugin", &r) == 0);
	CHECK_INT(r.status, 200);
	err = jstr(r.json, "load_error");
	CHECK(err != NULL && strstr(err, "no-such-plugin") != NULL);
	CHECK(json_is_false(json_object_get(r.json, "loadable")));
	res_free(&r);
	CHECK(send_json(&S, "POST", "/api/v1/environments",
			"{\"name\":\"ghost\",\"provider\":\"sandbox\",\"blueprint\":\"unknown-plugin\"}",
			&r) == 0);
	CHECK_INT(r.status, 422);
	CHECK_STR(err_code(&r), "blueprint_not_loadable");
	res_free(&r);
}

/* The smallest blueprint the format allows: no params, no outputs, a
 * step without "with".  Reading it through the API must cost nothing
 * (a sanitizer build reports any leak when the server stops). */
static void
t_minimal_blueprint(void)
{
	const char *bp = "{\"name\":\"minimal\",\"description\":\"The least a blueprint needs.\","
			 "\"steps\":[{\"name\":\"hi\",\"plugin\":\"hello\"}]}";
	char dir[] = "/tmp/outrigger-test-XXXXXX", path[128];
	const char *extra[] = {"--plugins", "build/test-plugins", "--blueprints", dir, NULL};
	struct srv m;
	struct res r;
	FILE *f;
	int i;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/minimal.json", dir);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	fputs(bp, f);
	fclose(f);
	if (srv_start(&m, NULL, extra) != 0) {
		CHECK(!"server starts");
		srv_rmdir(dir);
		return;
	}
	for (i = 0; i < 3; i++) {
		CHECK(get(&m, "/api/v1/blueprints", &r) == 0);
		CHECK_INT(r.status, 200);
		res_free(&r);
		CHECK(get(&m, "/api/v1/blueprints/minimal", &r) == 0);
		CHECK_INT(r.status, 200);
		CHECK(json_is_null(json_object_get(r.json, "load_error")));
		res_free(&r);
	}
	CHECK(env_create(&m, "tiny", "minimal", NULL) == 0);
	CHECK_INT(srv_stop(&m, 0), 0);
	srv_rmdir(dir);
}

/* ---- 13. bad input ----------------------------------------------------------- */

static void
expect_run_post(const char *env, const char *body, long status, const char *field)
{
	char path[256];
	struct res r;

	snprintf(path, sizeof(path), "/api/v1/environments/%s/runs", env);
	CHECK(send_json(&S, "POST", path, body, &r) == 0);
	CHECK_INT(r.status, status);
	if (field != NULL)
		CHECK_STR(err_field(&r), field);
	if (r.status != status)
		fprintf(stderr, "    body sent: %s\n    answer: %s\n", body, r.body);
	res_free(&r);
}

static void
t_bad_input(void)
{
	static const char *const not_found[] = {
		"/api/v1/runs/999999", "/api/v1/runs/abc", "/api/v1/runs/0", "/api/v1/runs/-1",
		"/api/v1/runs/999999/logs", "/api/v1/runs/abc/logs", "/api/v1/runs/999999/events",
	};
	char path[128];
	json_t *env;
	struct res r;
	size_t i;

	CHECK(make_env(&S, "bad-input") == 0);
	expect_run_post("bad-input", "{}", 422, "action");
	expect_run_post("bad-input", "{\"action\":\"launch\"}", 422, "action");
	expect_run_post("bad-input", "{\"action\":5}", 422, "action");
	expect_run_post("bad-input", "{\"action\":null}", 422, "action");
	expect_run_post("bad-input", "{\"action\":\"apply\",\"force\":true}", 422, "force");
	expect_run_post("bad-input", "{\"action\":", 400, NULL);
	expect_run_post("no-such-env", "{\"action\":\"apply\"}", 404, NULL);
	CHECK(req(&S, "POST", "/api/v1/environments/bad-input/runs", "text/plain",
		  "{\"action\":\"apply\"}", 18, NULL, &r) == 0);
	CHECK_INT(r.status, 415);
	res_free(&r);
	/* None of that started anything. */
	env = env_get(&S, "bad-input");
	CHECK_STR(jstr(env, "status"), "draft");
	CHECK(json_is_null(json_object_get(env, "last_run")));
	json_decref(env);

	for (i = 0; i < sizeof(not_found) / sizeof(not_found[0]); i++) {
		CHECK(get(&S, not_found[i], &r) == 0);
		CHECK_INT(r.status, 404);
		if (r.status != 404)
			fprintf(stderr, "    GET %s: %ld\n", not_found[i], r.status);
		res_free(&r);
	}
	CHECK(get(&S, "/api/v1/runs/999999", &r) == 0);
	CHECK_STR(err_code(&r), "not_found");
	res_free(&r);
	CHECK_INT(run_post(&S, 999999, "cancel", NULL, 0), 404);

	/* Logs of a real run with bad paging. */
	if (chatty_run > 0) {
		static const struct {
			const char *q, *field;
		} bad[] = {{"limit=0", "limit"}, {"limit=5001", "limit"}, {"limit=abc", "limit"},
			   {"limit=-1", "limit"}, {"after=-1", "after"}, {"after=x", "after"}};

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			snprintf(path, sizeof(path), "/api/v1/runs/%lld/logs?%s", chatty_run, bad[i].q);
			CHECK(get(&S, path, &r) == 0);
			CHECK_INT(r.status, 422);
			CHECK_STR(err_field(&r), bad[i].field);
			res_free(&r);
		}
		snprintf(path, sizeof(path), "/api/v1/runs/%lld/logs?limit=5000", chatty_run);
		CHECK(get(&S, path, &r) == 0);
		CHECK_INT(r.status, 200);
		CHECK_INT(json_array_size(json_object_get(r.json, "lines")), 5000);
		res_free(&r);
	}
	/* Runs take POST only where they change something. */
	CHECK(req(&S, "DELETE", "/api/v1/runs/1", NULL, NULL, 0, NULL, &r) == 0);
	CHECK_INT(r.status, 405);
	res_free(&r);
	CHECK(get(&S, "/api/v1/runs/1/cancel", &r) == 0);
	CHECK_INT(r.status, 405);
	res_free(&r);
}

/* Every server of the suite stopped on SIGTERM with status 0 and, in a
 * sanitizer build, without a report (leaks included) in its log. */
static void
t_servers_exit_clean(void)
{
	int i;

	stop_server(&S, "the main server");
	S_up = 0;
	for (i = 0; i < nexits; i++) {
		if (exits[i].rc != 0)
			fprintf(stderr, "    server of %s: exit %d\n", exits[i].who, exits[i].rc);
		CHECK_INT(exits[i].rc, 0);
	}
	CHECK(nexits >= 5);
}

/* ---- the suite ----------------------------------------------------------- */

void
suite_runs(void)
{
	/* The sanitizer's SEGV handler would turn the segfault plugin's crash
	 * into exit(1); the test wants the signal the server sees in
	 * production. */
	const char *extra[] = {"--plugins", "build/test-plugins", "--retry-base-ms", "40",
			       "--cancel-grace-ms", "1000", NULL};
	const char *asan = getenv("ASAN_OPTIONS");
	char *saved = asan != NULL ? strdup(asan) : NULL;
	char opts[1024];
	long long t0 = now_ms();

	snprintf(opts, sizeof(opts), "%s%shandle_segv=0", saved != NULL ? saved : "",
		 saved != NULL && saved[0] != '\0' ? ":" : "");
	setenv("ASAN_OPTIONS", opts, 1);
	S_up = srv_start(&S, NULL, extra) == 0;
	if (saved != NULL)
		setenv("ASAN_OPTIONS", saved, 1);
	else
		unsetenv("ASAN_OPTIONS");
	free(saved);
	if (!S_up) {
		fprintf(stderr, "runs: the server did not start (are build/test-plugins/*.so "
			"built?)\n");
		check_failed++;
		return;
	}
	RUN(t_apply_demo);
	RUN(t_parallel);
	RUN(t_parallel_one);
	RUN(t_chain_outputs);
	RUN(t_order);
	RUN(t_failure);
	RUN(t_retry);
	RUN(t_flaky);
	RUN(t_flaky_sibling);
	RUN(t_cancel);
	RUN(t_cancel_sigkill);
	RUN(t_cancel_short_grace);
	RUN(t_lock);
	RUN(t_destroy_reverse);
	RUN(t_plan);
	RUN(t_logs_paging);
	RUN(t_logs_chatty);
	RUN(t_sse_replay);
	RUN(t_sse_live);
	RUN(t_sse_reconnect);
	RUN(t_crash_restart);
	RUN(t_hostcheck);
	RUN(t_secrets_redacted);
	RUN(t_secret_in_failure);
	RUN(t_plugin_fail);
	RUN(t_plugin_cancel);
	RUN(t_segfault);
	RUN(t_badabi);
	RUN(t_unknown_plugin);
	RUN(t_minimal_blueprint);
	RUN(t_bad_input);
	RUN(t_servers_exit_clean);
	fprintf(stderr, "    runs suite: %lld ms\n", now_ms() - t0);
}

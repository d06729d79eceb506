/*
 * exec.c - the built-in "exec" plugin: run one command (an argv array; no
 * shell in between unless the user puts one there) as a step.  Its stdout
 * and stderr become the step's log line by line, the key=value lines it
 * writes to the file named by $OUTRIGGER_OUTPUT become the step's outputs,
 * and a non-zero exit, a signal, a timeout or a failed exec fails the step
 * with the command's own last words on stderr.
 *
 * It runs inside the step runner (one process per attempt), so blocking is
 * fine.  What it must never do: return while the command may still be
 * running (the command gets its own process group, which is signalled on
 * timeout, on cancellation and when the command leaves processes behind),
 * go more than 200 ms without asking the host whether the run is being
 * cancelled, or hand the host a log line that is not valid UTF-8.
 *
 * Compiled into the server; the runner finds it as or_builtin_exec.
 */
#include "builtin.h"
#include "step.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Bytes of text in one log line: 16 KiB with its NUL, the most the step
 * runner's log() keeps (STEP_LOG_MAX).  Longer lines are logged in pieces. */
#define EXEC_LINE_MAX (16 * 1024 - 1)
#define EXEC_OUTPUT_MAX (1024 * 1024)	/* bytes of $OUTRIGGER_OUTPUT */
#define EXEC_TAIL_LINES 5		/* stderr lines quoted in a failure */
#define EXEC_TAIL_CHARS 1000		/* ... and at most this many bytes of them */
#define EXEC_TICK_MS 100		/* longest poll(): cancellation is checked this often */
#define EXEC_KILL_GRACE_MS 5000		/* SIGTERM, then SIGKILL this much later */
#define EXEC_EXIT_GRACE_MS 500		/* command gone but its pipes still open */
#define EXEC_GIVE_UP_MS 10000		/* after SIGKILL: stop waiting, never hang */
#define EXEC_READS_PER_TICK 8		/* so a flood of output cannot starve cancel */
#define EXEC_READ_CHUNK (64 * 1024)
#define EXEC_ARGV_MAX 4096
#define EXEC_ENV_MAX 1024

/* What to run, from the step's inputs. */
struct exec_spec {
	char **argv;		/* NULL-terminated; owned */
	size_t argc;
	char **env;		/* "NAME=value" added to the environment; owned */
	size_t nenv;
	char *cwd;		/* NULL: the runner's own */
	long timeout_s;		/* 0: none */
};

/* One captured stream of the command. */
struct exec_stream {
	int fd;			/* read end of the pipe; -1 once at EOF */
	int level;		/* OR_LOG_INFO for stdout, OR_LOG_WARN for stderr */
	size_t len;		/* bytes of an unfinished line in line[] */
	char line[EXEC_LINE_MAX];
};

/* Why the command's process group was signalled. */
enum exec_why { EXEC_WHY_NONE, EXEC_WHY_TIMEOUT, EXEC_WHY_CANCELLED, EXEC_WHY_LEFTOVER };

/* Everything one run of a command needs; large, so it lives on the heap. */
struct exec_run {
	or_host *h;
	const struct or_host_api *api;
	pid_t pid;		/* the command, leader of its own process group */
	int exited;		/* reaped (or lost), wstatus is final */
	int lost;		/* reaped by someone else: status unknown */
	int wstatus;
	enum exec_why why;
	struct exec_stream out, err;
	/* The last non-blank stderr lines, a ring, for the failure message. */
	char tail[EXEC_TAIL_LINES][EXEC_TAIL_CHARS + 1];
	size_t tail_next, tail_n;
	/* A line made valid UTF-8: each bad byte can become 3 bytes. */
	char text[3 * EXEC_LINE_MAX + 1];
};

/* What the child writes to the report pipe when it cannot exec; nothing
 * is written (the pipe closes on exec) when it can. */
struct exec_report {
	int stage;		/* EXEC_STAGE_* */
	int err;		/* errno */
};
enum { EXEC_STAGE_CWD = 1, EXEC_STAGE_EXEC = 2 };

static int64_t
exec_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- inputs ------------------------------------------------------------ */

static void
exec_spec_free(struct exec_spec *spec)
{
	size_t i;

	for (i = 0; spec->argv != NULL && i < spec->argc; i++)
		free(spec->argv[i]);
	free(spec->argv);
	for (i = 0; spec->env != NULL && i < spec->nenv; i++)
		free(spec->env[i]);
	free(spec->env);
	free(spec->cwd);
	memset(spec, 0, sizeof(*spec));
}

/* A JSON scalar as an allocated C string: strings as they are, numbers
 * printed (blueprint references keep their type, so ["sleep", 5] is a
 * fair thing to write).  NULL for other types, for strings with a NUL in
 * them, and on OOM; *oom tells the two apart. */
static char *
exec_scalar_dup(const json_t *v, int *oom)
{
	char num[64];
	char *s = NULL;

	*oom = 0;
	if (json_is_string(v)) {
		if (strlen(json_string_value(v)) != json_string_length(v))
			return NULL;
		s = strdup(json_string_value(v));
	} else if (json_is_integer(v)) {
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		s = strdup(num);
	} else if (json_is_real(v)) {
		snprintf(num, sizeof(num), "%.17g", json_real_value(v));
		s = strdup(num);
	} else {
		return NULL;
	}
	if (s == NULL)
		*oom = 1;
	return s;
}

/* The step's inputs as a JSON object (owned by the caller), or NULL after
 * fail() was called. */
static json_t *
exec_inputs(or_host *h, const struct or_host_api *api)
{
	json_error_t jerr;
	const char *text;
	json_t *in;

	text = api->inputs_json(h);
	in = json_loads(text != NULL ? text : "{}", 0, &jerr);
	if (in == NULL || !json_is_object(in)) {
		json_decref(in);
		api->fail(h, "invalid_input", "the step's inputs are not a JSON object");
		return NULL;
	}
	return in;
}

/* A JSON null counts as absent: a blueprint may pass an unset parameter. */
static json_t *
exec_get(json_t *in, const char *key)
{
	json_t *v = json_object_get(in, key);

	return json_is_null(v) ? NULL : v;
}

/* Fill spec->argv from the array in[key].  0, or -1 after fail(). */
static int
exec_parse_argv(or_host *h, const struct or_host_api *api, json_t *in,
		const char *key, struct exec_spec *spec)
{
	json_t *cmd = exec_get(in, key), *item;
	size_t i;
	int oom, rc = -1;

	if (cmd == NULL) {
		api->fail(h, "invalid_input", "%s is required: the command to run as a JSON array, "
			  "e.g. [\"sh\", \"-c\", \"echo hello\"]", key);
		goto out;
	}
	if (!json_is_array(cmd) || json_array_size(cmd) == 0) {
		api->fail(h, "invalid_input", "%s must be a non-empty JSON array of strings (the argv, "
			  "run without a shell), e.g. [\"sh\", \"-c\", \"echo hello\"]", key);
		goto out;
	}
	if (json_array_size(cmd) > EXEC_ARGV_MAX) {
		api->fail(h, "invalid_input", "%s has more than %d arguments", key, EXEC_ARGV_MAX);
		goto out;
	}
	spec->argv = calloc(json_array_size(cmd) + 1, sizeof(*spec->argv));
	if (spec->argv == NULL) {
		api->fail(h, "nomem", "out of memory");
		goto out;
	}
	json_array_foreach(cmd, i, item) {
		spec->argv[i] = exec_scalar_dup(item, &oom);
		if (oom) {
			api->fail(h, "nomem", "out of memory");
			goto out;
		}
		if (spec->argv[i] == NULL) {
			api->fail(h, "invalid_input", "%s[%zu] must be a string", key, i);
			goto out;
		}
		spec->argc = i + 1;
	}
	if (spec->argv[0][0] == '\0') {
		api->fail(h, "invalid_input", "%s[0], the program to run, is empty", key);
		goto out;
	}
	rc = 0;
out:
	return rc;
}

/* Fill spec->env from the object in["env"].  0, or -1 after fail(). */
static int
exec_parse_env(or_host *h, const struct or_host_api *api, json_t *in,
	       struct exec_spec *spec)
{
	json_t *env = exec_get(in, "env"), *v;
	const char *name;
	char *val = NULL;
	size_t nlen, vlen;
	int oom, rc = -1;

	if (env == NULL)
		return 0;
	if (!json_is_object(env)) {
		api->fail(h, "invalid_input", "env must be an object of NAME: \"value\" pairs");
		goto out;
	}
	if (json_object_size(env) > EXEC_ENV_MAX) {
		api->fail(h, "invalid_input", "env has more than %d variables", EXEC_ENV_MAX);
		goto out;
	}
	spec->env = calloc(json_object_size(env) + 1, sizeof(*spec->env));
	if (spec->env == NULL) {
		api->fail(h, "nomem", "out of memory");
		goto out;
	}
	json_object_foreach(env, name, v) {
		nlen = strlen(name);
		if (nlen == 0 || strchr(name, '=') != NULL) {
			api->fail(h, "invalid_input", "env: \"%s\" is not a variable name", name);
			goto out;
		}
		val = exec_scalar_dup(v, &oom);
		if (oom) {
			api->fail(h, "nomem", "out of memory");
			goto out;
		}
		if (val == NULL) {
			api->fail(h, "invalid_input", "env.%s must be a string", name);
			goto out;
		}
		vlen = strlen(val);
		spec->env[spec->nenv] = malloc(nlen + vlen + 2);
		if (spec->env[spec->nenv] == NULL) {
			api->fail(h, "nomem", "out of memory");
			goto out;
		}
		memcpy(spec->env[spec->nenv], name, nlen);
		spec->env[spec->nenv][nlen] = '=';
		memcpy(spec->env[spec->nenv] + nlen + 1, val, vlen + 1);
		spec->nenv++;
		free(val);
		val = NULL;
	}
	rc = 0;
out:
	free(val);
	return rc;
}

/* Parse the inputs for running in[key] ("command" or "destroy_command").
 * 0, or -1 after fail(); spec is freed by the caller either way. */
static int
exec_spec_parse(or_host *h, const struct or_host_api *api, json_t *in,
		const char *key, struct exec_spec *spec)
{
	json_t *v;
	int rc = -1;

	if (exec_parse_argv(h, api, in, key, spec) != 0)
		goto out;
	if (exec_parse_env(h, api, in, spec) != 0)
		goto out;
	v = exec_get(in, "cwd");
	if (v != NULL) {
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			api->fail(h, "invalid_input", "cwd must be a directory path (a non-empty string)");
			goto out;
		}
		spec->cwd = strdup(json_string_value(v));
		if (spec->cwd == NULL) {
			api->fail(h, "nomem", "out of memory");
			goto out;
		}
	}
	v = exec_get(in, "timeout_s");
	if (v != NULL) {
		json_int_t t = -1;
		char *end = NULL;

		/* A string of digits is accepted: a parameter may arrive as text. */
		if (json_is_integer(v)) {
			t = json_integer_value(v);
		} else if (json_is_string(v) && json_string_length(v) > 0) {
			errno = 0;
			t = strtoll(json_string_value(v), &end, 10);
			if (errno != 0 || *end != '\0')
				t = -1;
		}
		if (t < 0 || t > INT_MAX) {
			api->fail(h, "invalid_input", "timeout_s must be a whole number of seconds "
				  "(0 or absent: no timeout)");
			goto out;
		}
		spec->timeout_s = (long)t;
	}
	rc = 0;
out:
	return rc;
}

/* argv as a shell would need it typed, for the log: safe words as they
 * are, anything else in single quotes.  Allocated; NULL on OOM. */
static char *
exec_quote_argv(char *const *argv)
{
	static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "0123456789_@%+=:,./-";
	size_t i, need = 1, o = 0;
	const char *p;
	char *s;

	for (i = 0; argv[i] != NULL; i++) {
		need += 3 + strlen(argv[i]);
		for (p = argv[i]; *p != '\0'; p++)
			if (*p == '\'')
				need += 3; /* ' becomes '\'' */
	}
	s = malloc(need);
	if (s == NULL)
		return NULL;
	for (i = 0; argv[i] != NULL; i++) {
		int plain = argv[i][0] != '\0' && strspn(argv[i], safe) == strlen(argv[i]);

		if (i > 0)
			s[o++] = ' ';
		if (plain) {
			memcpy(s + o, argv[i], strlen(argv[i]));
			o += strlen(argv[i]);
			continue;
		}
		s[o++] = '\'';
		for (p = argv[i]; *p != '\0'; p++) {
			if (*p == '\'') {
				memcpy(s + o, "'\\''", 4);
				o += 4;
			} else {
				s[o++] = *p;
			}
		}
		s[o++] = '\'';
	}
	s[o] = '\0';
	return s;
}

/* ---- output lines -------------------------------------------------------- */

/* The length of the well-formed UTF-8 sequence at s[0] (n bytes left),
 * or 0 when it is not one.  NUL counts as not well-formed: it would cut a
 * C string short. */
static size_t
exec_utf8_seq(const unsigned char *s, size_t n)
{
	size_t k, need;
	uint32_t cp, min;

	if (s[0] != 0 && s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		need = 1, cp = s[0] & 0x1F, min = 0x80;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		need = 2, cp = s[0] & 0x0F, min = 0x800;
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		need = 3, cp = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (need >= n)
		return 0;
	for (k = 1; k <= need; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return need + 1;
}

/* 1 if the n bytes at s are well-formed UTF-8 without NULs. */
static int
exec_utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		k = exec_utf8_seq(s + i, n - i);
		if (k == 0)
			return 0;
		i += k;
	}
	return 1;
}

/* Copy n bytes to dst as valid UTF-8 without NULs: each byte that does not
 * belong to a well-formed sequence becomes U+FFFD.  dst holds 3n+1 bytes.
 * Why here: the host ships log lines as JSON strings, which must be UTF-8,
 * and a command may print anything. */
static size_t
exec_utf8_clean(const unsigned char *s, size_t n, char *dst)
{
	size_t i = 0, o = 0, k;

	while (i < n) {
		k = exec_utf8_seq(s + i, n - i);
		if (k > 0) {
			memcpy(dst + o, s + i, k);
			o += k;
			i += k;
		} else {
			memcpy(dst + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		}
	}
	dst[o] = '\0';
	return o;
}

/* Where to split a full line so a UTF-8 sequence is not cut in two: len,
 * or the start of an unfinished sequence at its end. */
static size_t
exec_utf8_cut(const unsigned char *s, size_t len)
{
	size_t i = len, back = 0, need;

	while (i > 0 && back < 3 && (s[i - 1] & 0xC0) == 0x80) {
		i--;
		back++;
	}
	if (i > 1 && s[i - 1] >= 0xC0) {
		need = s[i - 1] >= 0xF0 ? 4 : s[i - 1] >= 0xE0 ? 3 : 2;
		if (len - (i - 1) < need)
			return i - 1;
	}
	return len;
}

/* Remember a stderr line for the failure message. */
static void
exec_tail_push(struct exec_run *r, const char *text)
{
	size_t n = strlen(text);

	if (strspn(text, " \t\r\v\f") == n)
		return; /* blank lines say nothing */
	if (n > EXEC_TAIL_CHARS) {
		n = EXEC_TAIL_CHARS;
		while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
			n--; /* text is valid UTF-8: back up to a character start */
	}
	memcpy(r->tail[r->tail_next], text, n);
	r->tail[r->tail_next][n] = '\0';
	r->tail_next = (r->tail_next + 1) % EXEC_TAIL_LINES;
	if (r->tail_n < EXEC_TAIL_LINES)
		r->tail_n++;
}

/* The remembered stderr lines, oldest first, joined by newlines and cut to
 * the last EXEC_TAIL_CHARS bytes (the end is what explains a failure). */
static void
exec_tail_text(const struct exec_run *r, char *dst, size_t cap)
{
	char all[EXEC_TAIL_LINES * (EXEC_TAIL_CHARS + 1) + 1];
	size_t i, n, len = 0, start, o = 0;
	const char *line;

	for (i = 0; i < r->tail_n; i++) {
		line = r->tail[(r->tail_next + EXEC_TAIL_LINES - r->tail_n + i) % EXEC_TAIL_LINES];
		n = strlen(line);
		if (len > 0)
			all[len++] = '\n';
		memcpy(all + len, line, n);
		len += n;
	}
	all[len] = '\0';
	start = 0;
	if (len > EXEC_TAIL_CHARS) {
		start = len - EXEC_TAIL_CHARS;
		while (start < len && ((unsigned char)all[start] & 0xC0) == 0x80)
			start++;
	}
	if (start > 0 && cap > 3) {
		memcpy(dst, "\xE2\x80\xA6", 3); /* an ellipsis: the start was cut */
		o = 3;
	}
	n = len - start;
	if (n > cap - 1 - o)
		n = cap - 1 - o;
	memcpy(dst + o, all + start, n);
	dst[o + n] = '\0';
}

/* Hand one line (without its newline) to the host's log.  Replacing bad
 * bytes can make it longer than EXEC_LINE_MAX: then it goes in pieces,
 * cut between characters. */
static void
exec_emit(struct exec_run *r, struct exec_stream *s, const char *data, size_t len)
{
	size_t n, off = 0, piece;

	if (len > 0 && data[len - 1] == '\r')
		len--; /* CRLF output: the CR is not part of the text */
	n = exec_utf8_clean((const unsigned char *)data, len, r->text);
	do {
		piece = n - off;
		if (piece > EXEC_LINE_MAX) {
			piece = EXEC_LINE_MAX;
			while (piece > 0 && ((unsigned char)r->text[off + piece] & 0xC0) == 0x80)
				piece--;
		}
		r->api->log(r->h, s->level, "%.*s", (int)piece, r->text + off);
		off += piece;
	} while (off < n);
	if (s == &r->err)
		exec_tail_push(r, r->text);
}

/* Add bytes read from a stream: every complete line is logged, and a line
 * that reaches EXEC_LINE_MAX is logged in pieces. */
static void
exec_feed(struct exec_run *r, struct exec_stream *s, const char *p, size_t n)
{
	const char *nl;
	size_t take, cut;

	while (n > 0) {
		nl = memchr(p, '\n', n);
		take = nl != NULL ? (size_t)(nl - p) : n;
		if (take > EXEC_LINE_MAX - s->len)
			take = EXEC_LINE_MAX - s->len;
		memcpy(s->line + s->len, p, take);
		s->len += take;
		p += take;
		n -= take;
		if (nl != NULL && p == nl) {
			exec_emit(r, s, s->line, s->len);
			s->len = 0;
			p++;
			n--;
		} else if (s->len == EXEC_LINE_MAX) {
			cut = exec_utf8_cut((const unsigned char *)s->line, s->len);
			exec_emit(r, s, s->line, cut);
			memmove(s->line, s->line + cut, s->len - cut);
			s->len -= cut;
		}
	}
}

/* Stop reading a stream: log what is left of its last line. */
static void
exec_stream_close(struct exec_run *r, struct exec_stream *s)
{
	if (s->fd < 0)
		return;
	if (s->len > 0)
		exec_emit(r, s, s->line, s->len);
	s->len = 0;
	close(s->fd);
	s->fd = -1;
}

/* Read what a stream has now (bounded, see EXEC_READS_PER_TICK). */
static void
exec_drain(struct exec_run *r, struct exec_stream *s)
{
	char chunk[EXEC_READ_CHUNK];
	ssize_t got;
	int i;

	for (i = 0; i < EXEC_READS_PER_TICK && s->fd >= 0; i++) {
		got = read(s->fd, chunk, sizeof(chunk));
		if (got > 0) {
			exec_feed(r, s, chunk, (size_t)got);
			continue;
		}
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (got < 0)
			r->api->log(r->h, OR_LOG_WARN, "reading the command's output failed: %s",
				    strerror(errno));
		exec_stream_close(r, s); /* EOF, or an error we cannot recover from */
	}
}

/* ---- the child ------------------------------------------------------------ */

/* Move fd to a number >= 3 (close-on-exec), so the dup2() calls onto 0, 1
 * and 2 in the child can never overwrite one another even when the runner
 * was started with a standard descriptor closed.  -1 on failure. */
static int
exec_fd_high(int fd)
{
	int nfd;

	if (fd < 0 || fd > 2)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return nfd;
}

/* In the forked child: become the leader of a new process group, die with
 * the runner, take the pipes as 0/1/2 and nothing else the runner had open
 * (its protocol pipe to the server must not leak into the command), then
 * exec.  Only async-signal-safe calls: the runner may have threads. */
__attribute__((noreturn)) static void
exec_child(char *const *argv, char **envp, const char *cwd, int in_fd, int out_fd,
	   int err_fd, int rep_fd, pid_t parent, int max_fd)
{
	struct exec_report rep = {0, 0};
	struct sigaction dfl;
	sigset_t none;
	int sig, fd;
	ssize_t unused;

	/* Handlers are reset by exec, but ignored signals and the mask are
	 * inherited: the command must start with the defaults. */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);

	(void)setpgid(0, 0);
	/* If the runner is killed outright, it cannot signal the group. */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);

	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) {
		rep.stage = EXEC_STAGE_EXEC;
		rep.err = errno;
		goto report;
	}
	if (rep_fd > 3 && close_range(3, (unsigned)rep_fd - 1, 0) != 0)
		for (fd = 3; fd < rep_fd; fd++)
			(void)close(fd);
	if (close_range((unsigned)rep_fd + 1, ~0U, 0) != 0)
		for (fd = rep_fd + 1; fd < max_fd; fd++)
			(void)close(fd);

	if (cwd != NULL && chdir(cwd) != 0) {
		rep.stage = EXEC_STAGE_CWD;
		rep.err = errno;
		goto report;
	}
	/* execvp() searches the PATH of environ: point it at the command's
	 * environment so an env.PATH input is honoured. */
	environ = envp;
	execvp(argv[0], argv);
	rep.stage = EXEC_STAGE_EXEC;
	rep.err = errno;
report:
	unused = write(rep_fd, &rep, sizeof(rep));
	(void)unused;
	_exit(127);
}

/* The command's environment: the runner's, with env's names replaced, and
 * OUTRIGGER_OUTPUT=outvar.  The array is allocated; its strings are
 * borrowed from environ, spec and outvar.  NULL on OOM. */
static char **
exec_envp(const struct exec_spec *spec, char *outvar)
{
	size_t n = 0, i, j, o = 0, len;
	char **envp, *eq;
	int replaced;

	while (environ != NULL && environ[n] != NULL)
		n++;
	envp = calloc(n + spec->nenv + 2, sizeof(*envp));
	if (envp == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		eq = strchr(environ[i], '=');
		len = eq != NULL ? (size_t)(eq - environ[i]) : strlen(environ[i]);
		replaced = len == strlen("OUTRIGGER_OUTPUT") &&
			   memcmp(environ[i], "OUTRIGGER_OUTPUT", len) == 0;
		for (j = 0; !replaced && j < spec->nenv; j++)
			replaced = strncmp(spec->env[j], environ[i], len) == 0 &&
				   spec->env[j][len] == '=';
		if (!replaced)
			envp[o++] = environ[i];
	}
	for (j = 0; j < spec->nenv; j++)
		envp[o++] = spec->env[j];
	envp[o++] = outvar;
	envp[o] = NULL;
	return envp;
}

/* ---- running ---------------------------------------------------------------- */

static void
exec_signal_group(struct exec_run *r, pid_t pgid, int sig)
{
	if (kill(-pgid, sig) != 0 && errno != ESRCH)
		r->api->log(r->h, OR_LOG_WARN, "cannot signal the command's process group %ld: %s",
			    (long)pgid, strerror(errno));
}

/* 1 while a process of group pgid is still running.  A member that has
 * exited but not been reaped still answers kill(-pgid, 0), and orphans are
 * reaped by PID 1, which in a container may take its time (or never come):
 * so on "yes", look in /proc for a member that is not a zombie. */
static int
exec_group_alive(pid_t pgid)
{
	char path[64], stat[512], *p;
	struct dirent *de;
	int alive = 0, fd;
	long pgrp;
	ssize_t n;
	DIR *d;

	if (kill(-pgid, 0) != 0)
		return errno != ESRCH;
	d = opendir("/proc");
	if (d == NULL)
		return 1; /* cannot tell: assume the worst */
	while (!alive && (de = readdir(d)) != NULL) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/stat", strtol(de->d_name, NULL, 10));
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, stat, sizeof(stat) - 1);
		close(fd);
		if (n <= 0)
			continue;
		stat[n] = '\0';
		/* "pid (comm) state ppid pgrp ...": comm may hold ") ". */
		p = strrchr(stat, ')');
		if (p == NULL || p[1] != ' ' || p[2] == '\0')
			continue;
		if (sscanf(p + 4, "%*d %ld", &pgrp) != 1 || pgrp != (long)pgid)
			continue;
		alive = p[2] != 'Z' && p[2] != 'X';
	}
	closedir(d);
	return alive;
}

/* After the command itself has exited, stop what it left running in its
 * process group (a background job that closed its output): an attempt
 * must not leave work going on behind the step's back. */
static void
exec_stop_leftovers(struct exec_run *r, pid_t pgid)
{
	int64_t start;

	if (!exec_group_alive(pgid))
		return;
	r->api->log(r->h, OR_LOG_WARN, "the command left processes running in its process group; "
		    "stopping them");
	exec_signal_group(r, pgid, SIGTERM);
	start = exec_now_ms();
	while (exec_group_alive(pgid) && exec_now_ms() - start < EXEC_KILL_GRACE_MS)
		(void)poll(NULL, 0, 20);
	if (exec_group_alive(pgid))
		exec_signal_group(r, pgid, SIGKILL);
}

/* The temporary file for $OUTRIGGER_OUTPUT, created empty: its path in
 * path.  0, or -1 after fail(). */
static int
exec_output_file(struct exec_run *r, char *path, size_t cap)
{
	const char *dir = getenv("TMPDIR");
	int n, fd;

	if (dir == NULL || dir[0] != '/')
		dir = "/tmp";
	n = snprintf(path, cap, "%s/outrigger-output-XXXXXX", dir);
	if (n < 0 || (size_t)n >= cap)
		n = snprintf(path, cap, "/tmp/outrigger-output-XXXXXX");
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		r->api->fail(r->h, "io", "cannot create the $OUTRIGGER_OUTPUT file %s: %s", path,
			     strerror(errno));
		path[0] = '\0';
		return -1;
	}
	close(fd);
	return 0;
}

static int
exec_key_ok(const char *key, size_t len)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "0123456789_";
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++)
		if (key[i] == '\0' || strchr(ok, key[i]) == NULL)
			return 0;
	return 1;
}

/* Turn the key=value lines of the $OUTRIGGER_OUTPUT file into outputs.
 * OR_STATUS_OK, or OR_STATUS_FAILED after fail() (file too large). */
static or_status
exec_collect_outputs(struct exec_run *r, const char *path)
{
	char *data = NULL, *line, *eq, *nl, *end;
	size_t len = 0, klen, llen, lineno = 0;
	or_status st = OR_STATUS_OK;
	ssize_t got;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r->api->log(r->h, OR_LOG_WARN, "cannot read $OUTRIGGER_OUTPUT (%s): no outputs",
			    strerror(errno));
		goto out;
	}
	data = malloc(EXEC_OUTPUT_MAX + 2);
	if (data == NULL) {
		r->api->fail(r->h, "nomem", "out of memory");
		st = OR_STATUS_FAILED;
		goto out;
	}
	/* Read one byte more than allowed, to tell "full" from "too big". */
	while (len <= EXEC_OUTPUT_MAX) {
		got = read(fd, data + len, EXEC_OUTPUT_MAX + 1 - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	if (len > EXEC_OUTPUT_MAX) {
		r->api->fail(r->h, "output_too_large", "the command wrote more than %d bytes to "
			     "$OUTRIGGER_OUTPUT; outputs are short key=value lines",
			     EXEC_OUTPUT_MAX);
		st = OR_STATUS_FAILED;
		goto out;
	}
	data[len] = '\0';
	end = data + len;
	for (line = data; line < end; line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(end - line));
		if (nl == NULL)
			nl = end;
		*nl = '\0';
		lineno++;
		llen = (size_t)(nl - line);
		if (llen > 0 && line[llen - 1] == '\r')
			line[--llen] = '\0';
		if (llen == 0)
			continue;
		eq = memchr(line, '=', llen);
		klen = eq != NULL ? (size_t)(eq - line) : 0;
		/* The value must be UTF-8 without NULs, or the host could not
		 * store it as a JSON string. */
		if (eq == NULL || !exec_key_ok(line, klen) ||
		    !exec_utf8_valid((const unsigned char *)eq + 1, llen - klen - 1)) {
			r->api->log(r->h, OR_LOG_WARN, "$OUTRIGGER_OUTPUT line %zu is not KEY=value "
				    "with a KEY of letters, digits and _; ignored", lineno);
			continue;
		}
		*eq = '\0';
		if (r->api->output(r->h, line, eq + 1) != 0)
			r->api->log(r->h, OR_LOG_WARN, "output %s was refused by the host", line);
		else
			r->api->log(r->h, OR_LOG_DEBUG, "output %s set", line);
	}
out:
	if (fd >= 0)
		close(fd);
	free(data);
	return st;
}

/* Start spec's command as r->pid, its stdout and stderr on r->out.fd and
 * r->err.fd (non-blocking).  0, or -1 after fail() with no child left
 * behind (a failed exec is reaped here). */
static int
exec_spawn(struct exec_run *r, const struct exec_spec *spec, char **envp)
{
	int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, rep_p[2] = {-1, -1};
	int devnull = -1, status, max_fd, i, rc = -1;
	struct exec_report rep;
	long open_max;
	pid_t pid, self;
	ssize_t got;

	if (pipe2(out_p, O_CLOEXEC) != 0 || pipe2(err_p, O_CLOEXEC) != 0 ||
	    pipe2(rep_p, O_CLOEXEC) != 0) {
		r->api->fail(r->h, "io", "cannot create pipes for the command: %s", strerror(errno));
		goto out;
	}
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	for (i = 0; i < 2; i++) {
		out_p[i] = exec_fd_high(out_p[i]);
		err_p[i] = exec_fd_high(err_p[i]);
		rep_p[i] = exec_fd_high(rep_p[i]);
	}
	devnull = exec_fd_high(devnull);
	if (devnull < 0 || out_p[0] < 0 || out_p[1] < 0 || err_p[0] < 0 || err_p[1] < 0 ||
	    rep_p[0] < 0 || rep_p[1] < 0) {
		r->api->fail(r->h, "io", "cannot set up descriptors for the command: %s",
			     strerror(errno));
		goto out;
	}
	/* Computed here: sysconf() is not async-signal-safe. */
	open_max = sysconf(_SC_OPEN_MAX);
	max_fd = open_max > 0 && open_max < 65536 ? (int)open_max : 65536;

	self = getpid();
	pid = fork();
	if (pid < 0) {
		r->api->fail(r->h, "io", "cannot start the command: fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0)
		exec_child(spec->argv, envp, spec->cwd, devnull, out_p[1], err_p[1], rep_p[1],
			   self, max_fd);
	/* Also here, so a signal sent right away reaches the group either way. */
	(void)setpgid(pid, pid);
	/* Built in, so it may tell the runner (not through the ABI): if the
	 * server dies, the runner takes this group down too. */
	step_track_group(pid);
	close(rep_p[1]);
	rep_p[1] = -1;

	/* The report pipe closes on a successful exec, or carries why not. */
	do
		got = read(rep_p[0], &rep, sizeof(rep));
	while (got < 0 && errno == EINTR);
	if (got == (ssize_t)sizeof(rep)) {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (rep.stage == EXEC_STAGE_CWD)
			r->api->fail(r->h, "exec_failed", "cannot change to directory %s: %s "
				     "(exit status 127)", spec->cwd, strerror(rep.err));
		else
			r->api->fail(r->h, "exec_failed", "cannot run %s: %s (exit status 127)",
				     spec->argv[0],
				     rep.err == ENOENT ? "command not found" : strerror(rep.err));
		goto out;
	}
	r->api->log(r->h, OR_LOG_DEBUG, "started %s as pid %ld", spec->argv[0], (long)pid);
	r->pid = pid;
	r->out.fd = out_p[0];
	r->err.fd = err_p[0];
	out_p[0] = err_p[0] = -1;
	(void)fcntl(r->out.fd, F_SETFL, O_NONBLOCK);
	(void)fcntl(r->err.fd, F_SETFL, O_NONBLOCK);
	rc = 0;
out:
	for (i = 0; i < 2; i++) {
		if (out_p[i] >= 0)
			close(out_p[i]);
		if (err_p[i] >= 0)
			close(err_p[i]);
		if (rep_p[i] >= 0)
			close(rep_p[i]);
	}
	if (devnull >= 0)
		close(devnull);
	return rc;
}

/* Log the command's output until it has exited and its pipes are closed,
 * stopping its process group on timeout, on cancellation, or when
 * something it left behind holds the pipes open.  Sets r->exited (0 only
 * if even SIGKILL did not end it), r->wstatus, r->lost and r->why. */
static void
exec_wait(struct exec_run *r, const struct exec_spec *spec)
{
	int64_t t, start, deadline, exited_at = 0, checked_at = 0, term_at = 0, kill_at = 0;
	struct pollfd pfd[2];
	nfds_t nfd;
	pid_t w;

	start = exec_now_ms();
	deadline = spec->timeout_s > 0 ? start + (int64_t)spec->timeout_s * 1000 : 0;
	for (;;) {
		t = exec_now_ms();
		if (!r->exited) {
			w = waitpid(r->pid, &r->wstatus, WNOHANG);
			if (w == r->pid || (w < 0 && errno == ECHILD)) {
				/* ECHILD: something else in the runner reaped it. */
				r->lost = w < 0;
				r->exited = 1;
				exited_at = t;
			}
		}
		if (r->exited && r->out.fd < 0 && r->err.fd < 0)
			break;
		if (r->why == EXEC_WHY_NONE && t - checked_at >= EXEC_TICK_MS) {
			checked_at = t;
			if (r->api->cancelled(r->h)) {
				r->why = EXEC_WHY_CANCELLED;
				r->api->log(r->h, OR_LOG_INFO, "cancelled: stopping the command (SIGTERM)");
			} else if (!r->exited && deadline != 0 && t >= deadline) {
				r->why = EXEC_WHY_TIMEOUT;
				r->api->log(r->h, OR_LOG_WARN, "timeout after %ld s: stopping the command "
					    "(SIGTERM)", spec->timeout_s);
			} else if (r->exited && t - exited_at >= EXEC_EXIT_GRACE_MS) {
				r->why = EXEC_WHY_LEFTOVER;
				r->api->log(r->h, OR_LOG_WARN, "the command exited but processes it "
					    "started still hold its output open; stopping them");
			}
			if (r->why != EXEC_WHY_NONE) {
				exec_signal_group(r, r->pid, SIGTERM);
				term_at = t;
			}
		}
		if (term_at != 0 && kill_at == 0 && t - term_at >= EXEC_KILL_GRACE_MS) {
			r->api->log(r->h, OR_LOG_WARN, "still running %d s after SIGTERM: sending SIGKILL",
				    EXEC_KILL_GRACE_MS / 1000);
			exec_signal_group(r, r->pid, SIGKILL);
			kill_at = t;
		}
		if (kill_at != 0 && t - kill_at >= (r->exited ? 1000 : EXEC_GIVE_UP_MS)) {
			/* Held open by a process outside the group, or a process
			 * stuck in the kernel: say so rather than hang. */
			r->api->log(r->h, OR_LOG_ERROR, r->exited
				    ? "the command's output is held open by a process outside its "
				      "process group; not waiting for it"
				    : "the command survived SIGKILL; giving up on it");
			break;
		}

		nfd = 0;
		if (r->out.fd >= 0)
			pfd[nfd++] = (struct pollfd){.fd = r->out.fd, .events = POLLIN};
		if (r->err.fd >= 0)
			pfd[nfd++] = (struct pollfd){.fd = r->err.fd, .events = POLLIN};
		/* With both pipes closed only the exit is awaited: look often. */
		if (poll(pfd, nfd, nfd > 0 ? EXEC_TICK_MS : 10) < 0 && errno != EINTR) {
			r->api->log(r->h, OR_LOG_WARN, "poll: %s", strerror(errno));
			(void)poll(NULL, 0, 10);
		}
		exec_drain(r, &r->out);
		exec_drain(r, &r->err);
	}
	exec_stream_close(r, &r->out);
	exec_stream_close(r, &r->err);
}

/* Run spec to its end and say how it went: OR_STATUS_OK, CANCELLED, or
 * FAILED after fail().  Outputs are set only when the command exits 0.
 * Returns only once the command is gone (or, in the never-seen case of a
 * process SIGKILL cannot stop, after saying so). */
static or_status
exec_run_command(or_host *h, const struct or_host_api *api, const struct exec_spec *spec)
{
	char path[PATH_MAX], outvar[PATH_MAX + 32], tail[EXEC_TAIL_CHARS + 8];
	or_status st = OR_STATUS_FAILED;
	struct exec_run *r = NULL;
	char **envp = NULL;
	int sig;

	path[0] = '\0';
	if (api->cancelled(h)) {
		st = OR_STATUS_CANCELLED;
		goto out;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		api->fail(h, "nomem", "out of memory");
		goto out;
	}
	r->h = h;
	r->api = api;
	r->pid = -1;
	r->out.fd = r->err.fd = -1;
	r->out.level = OR_LOG_INFO;
	r->err.level = OR_LOG_WARN;

	if (exec_output_file(r, path, sizeof(path)) != 0)
		goto out;
	snprintf(outvar, sizeof(outvar), "OUTRIGGER_OUTPUT=%s", path);
	envp = exec_envp(spec, outvar);
	if (envp == NULL) {
		api->fail(h, "nomem", "out of memory");
		goto out;
	}
	if (exec_spawn(r, spec, envp) != 0)
		goto out;
	exec_wait(r, spec);
	if (!r->exited) {
		api->fail(h, "signal", "the command could not be stopped (pid %ld)", (long)r->pid);
		goto out;
	}
	exec_stop_leftovers(r, r->pid);

	exec_tail_text(r, tail, sizeof(tail));
	if (r->why == EXEC_WHY_CANCELLED) {
		api->log(h, OR_LOG_INFO, "cancelled; the command was stopped");
		st = OR_STATUS_CANCELLED;
	} else if (r->why == EXEC_WHY_TIMEOUT) {
		api->fail(h, "timeout", "command did not finish within %ld s and was stopped%s%s",
			  spec->timeout_s, tail[0] != '\0' ? ": " : "", tail);
	} else if (r->lost) {
		api->fail(h, "exec_failed", "the command's exit status was lost (it was reaped by "
			  "something else in the runner)");
	} else if (WIFSIGNALED(r->wstatus)) {
		sig = WTERMSIG(r->wstatus);
		api->fail(h, "signal", "command was killed by signal %d (%s)%s%s", sig,
			  strsignal(sig), tail[0] != '\0' ? ": " : "", tail);
	} else if (WIFEXITED(r->wstatus) && WEXITSTATUS(r->wstatus) != 0) {
		api->fail(h, "exit_status", "command exited with status %d: %s",
			  WEXITSTATUS(r->wstatus), tail[0] != '\0' ? tail : "(nothing on stderr)");
	} else {
		st = exec_collect_outputs(r, path);
	}
out:
	if (r != NULL) {
		exec_stream_close(r, &r->out);
		exec_stream_close(r, &r->err);
	}
	if (path[0] != '\0')
		(void)unlink(path);
	free(envp);
	free(r);
	return st;
}

/* ---- operations ----------------------------------------------------------------- */

/* Run (or, when dry, describe) the command in the input key. */
static or_status
exec_op(or_host *h, const struct or_host_api *api, const char *key, int dry)
{
	struct exec_spec spec;
	or_status st = OR_STATUS_FAILED;
	json_t *in = NULL;
	char *shown = NULL;
	size_t i;

	memset(&spec, 0, sizeof(spec));
	in = exec_inputs(h, api);
	if (in == NULL)
		goto out;
	if (strcmp(key, "destroy_command") == 0 && exec_get(in, key) == NULL) {
		api->log(h, OR_LOG_INFO, "no destroy_command: nothing to undo");
		st = OR_STATUS_OK;
		goto out;
	}
	if (exec_spec_parse(h, api, in, key, &spec) != 0)
		goto out;
	shown = exec_quote_argv(spec.argv);
	if (shown == NULL) {
		api->fail(h, "nomem", "out of memory");
		goto out;
	}
	if (!dry) {
		api->log(h, OR_LOG_INFO, "$ %s", shown);
		st = exec_run_command(h, api, &spec);
		goto out;
	}
	api->log(h, OR_LOG_INFO, "would run: %s", shown);
	if (spec.cwd != NULL)
		api->log(h, OR_LOG_INFO, "  in directory %s", spec.cwd);
	/* Names only: values may be secrets the host does not know about. */
	for (i = 0; i < spec.nenv; i++)
		api->log(h, OR_LOG_INFO, "  with %.*s set", (int)strcspn(spec.env[i], "="),
			 spec.env[i]);
	if (spec.timeout_s > 0)
		api->log(h, OR_LOG_INFO, "  stopped after %ld s", spec.timeout_s);
	st = OR_STATUS_OK;
out:
	free(shown);
	exec_spec_free(&spec);
	json_decref(in);
	return st;
}

static or_status
exec_plan(or_host *h, const struct or_host_api *api)
{
	or_status st;
	json_t *in;

	st = exec_op(h, api, "command", 1);
	if (st != OR_STATUS_OK)
		return st;
	/* Say what destroy would do too, so a plan shows the whole story. */
	in = exec_inputs(h, api);
	if (in != NULL && exec_get(in, "destroy_command") != NULL) {
		api->log(h, OR_LOG_INFO, "on destroy:");
		st = exec_op(h, api, "destroy_command", 1);
	}
	json_decref(in);
	return st;
}

static or_status
exec_apply(or_host *h, const struct or_host_api *api)
{
	return exec_op(h, api, "command", 0);
}

static or_status
exec_destroy(or_host *h, const struct or_host_api *api)
{
	return exec_op(h, api, "destroy_command", 0);
}

const struct or_plugin or_builtin_exec = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = OR_PLUGIN_ABI_MINOR,
	.name = "exec",
	.summary = "Run a command (an argv array, no shell); its output becomes the step log "
		   "and the key=value lines it writes to $OUTRIGGER_OUTPUT its outputs.",
	.inputs_schema =
		"{"
		"\"command\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, \"required\": true,"
		" \"description\": \"The program and its arguments, run without a shell, e.g. "
		"[\\\"sh\\\", \\\"-c\\\", \\\"echo ok\\\"]. stdout is logged as info, stderr as "
		"warnings. A non-zero exit fails the step.\"},"
		"\"env\": {\"type\": \"object\", \"additionalProperties\": {\"type\": \"string\"},"
		" \"description\": \"Variables added to the command's environment.\"},"
		"\"cwd\": {\"type\": \"string\","
		" \"description\": \"Directory to run the command in (default: the runner's).\"},"
		"\"timeout_s\": {\"type\": \"integer\", \"minimum\": 0, \"default\": 0,"
		" \"description\": \"Stop the command (SIGTERM, SIGKILL 5 s later) and fail the "
		"step after this many seconds; 0 means no timeout.\"},"
		"\"destroy_command\": {\"type\": \"array\", \"items\": {\"type\": \"string\"},"
		" \"description\": \"Run by destroy, with the same env, cwd and timeout_s; "
		"without it destroy does nothing.\"}"
		"}",
	/* Outputs are whatever the command writes: "*" stands for any key. */
	.outputs_schema =
		"{"
		"\"*\": {\"type\": \"string\", \"description\": \"Each KEY=value line the command "
		"writes to the file named by $OUTRIGGER_OUTPUT (KEY of letters, digits and _) "
		"becomes output KEY.\"}"
		"}",
	.capabilities = OR_CAP_PLAN | OR_CAP_DESTROY,
	.plan = exec_plan,
	.apply = exec_apply,
	.destroy = exec_destroy,
	.check = NULL,
};

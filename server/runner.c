/*
 * runner.c - start and talk to step runner processes (see runner.h).
 *
 * posix_spawn, not fork: the server is multi-threaded, and a vfork-style
 * spawn neither copies its memory nor runs anything between fork and exec.
 * Every descriptor the server opens is close-on-exec, so a runner inherits
 * exactly the four it is given.
 */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "step.h"

extern char **environ;

static char self_exe[PATH_MAX];

struct stream {
	int fd;			/* -1 once at end of file */
	struct buf line;
	size_t max;
	int dropping;		/* inside an over-long line */
};

struct runner {
	pid_t pid;
	int pidfd;		/* readable when it exits (-1: kernel without pidfd) */
	int job_fd;		/* our end of its descriptor 0 */
	struct stream s[3];	/* RUNNER_PROTO, RUNNER_STDOUT, RUNNER_STDERR */
	int reaped;
};

or_rc
runner_init(struct or_err *err)
{
	char step[PATH_MAX + 16], *slash;
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);

	if (n <= 0)
		return or_fail(err, OR_E_IO, NULL, NULL,
			       "cannot find my own executable: %s", strerror(errno));
	self_exe[n] = '\0';
	/* Prefer the small runner program installed beside this one; it
	 * takes the same arguments as `outrigger step`. */
	slash = strrchr(self_exe, '/');
	if (slash != NULL) {
		snprintf(step, sizeof(step), "%.*s/outrigger-step", (int)(slash - self_exe),
			 self_exe);
		if (access(step, X_OK) == 0 && strlen(step) < sizeof(self_exe))
			memcpy(self_exe, step, strlen(step) + 1);
	}
	return OR_OK;
}

static void
close_pair(int p[2])
{
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	p[0] = p[1] = -1;
}

/* Spawn self_exe with argv; its descriptors 0-3 become fds[0..3] (-1:
 * /dev/null for 0..2, nothing for 3). */
static or_rc
spawn(char *const argv[], const int fds[4], pid_t *pid, struct or_err *err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, defaults;
	int i, rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	for (i = 0; i < 4; i++) {
		if (fds[i] >= 0)
			posix_spawn_file_actions_adddup2(&fa, fds[i], i);
		else if (i < 3)
			posix_spawn_file_actions_addopen(&fa, i, "/dev/null",
							 i == 0 ? O_RDONLY : O_WRONLY, 0);
	}
	/* Its own process group, so cancel reaches what the plugin starts;
	 * no inherited signal mask (the server blocks SIGTERM in every
	 * thread) and default dispositions (the server ignores SIGPIPE). */
	sigemptyset(&none);
	sigemptyset(&defaults);
	sigaddset(&defaults, SIGPIPE);
	sigaddset(&defaults, SIGTERM);
	sigaddset(&defaults, SIGINT);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &defaults);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
					      POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(pid, self_exe, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc != 0)
		return or_fail(err, OR_E_IO, "spawn_failed", NULL,
			       "cannot start the step runner %s: %s", self_exe,
			       strerror(rc));
	return OR_OK;
}

static void
write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* it died: its exit status will tell */
		p += n;
		len -= (size_t)n;
	}
}

or_rc
runner_spawn(json_t *job, struct runner **out, struct or_err *err)
{
	char *argv[] = {self_exe, "step", NULL};
	int in[2] = {-1, -1}, o[2] = {-1, -1}, e[2] = {-1, -1}, p[2] = {-1, -1};
	int fds[4];
	struct runner *r;
	char *text = NULL;
	or_rc rc = OR_OK;
	int i;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	r->pidfd = -1;
	json_object_set_new(job, "parent", json_integer(getpid()));
	text = json_dumps(job, JSON_COMPACT);
	if (text == NULL || pipe2(in, O_CLOEXEC) != 0 || pipe2(o, O_CLOEXEC) != 0 ||
	    pipe2(e, O_CLOEXEC) != 0 || pipe2(p, O_CLOEXEC) != 0) {
		rc = or_fail(err, OR_E_IO, NULL, NULL, "cannot make pipes: %s",
			     strerror(errno));
		goto fail;
	}
	fds[0] = in[0];
	fds[1] = o[1];
	fds[2] = e[1];
	fds[3] = p[1];
	rc = spawn(argv, fds, &r->pid, err);
	if (rc != OR_OK)
		goto fail;
	close(in[0]);
	close(o[1]);
	close(e[1]);
	close(p[1]);
	/* A descriptor that polls readable when the runner exits, so the
	 * scheduler learns it at once instead of looking again later. */
	r->pidfd = (int)syscall(SYS_pidfd_open, r->pid, 0);
	if (r->pidfd >= 0)
		fcntl(r->pidfd, F_SETFD, FD_CLOEXEC);
	r->job_fd = in[1];
	r->s[RUNNER_PROTO].fd = p[0];
	r->s[RUNNER_STDOUT].fd = o[0];
	r->s[RUNNER_STDERR].fd = e[0];
	r->s[RUNNER_PROTO].max = STEP_LINE_MAX;
	r->s[RUNNER_STDOUT].max = STEP_LOG_MAX;
	r->s[RUNNER_STDERR].max = STEP_LOG_MAX;
	for (i = 0; i < 3; i++) {
		buf_init(&r->s[i].line, r->s[i].max);
		fcntl(r->s[i].fd, F_SETFL, fcntl(r->s[i].fd, F_GETFL) | O_NONBLOCK);
	}
	/* The job fits in the pipe unless it is huge; the runner reads it
	 * first thing, so a blocking write cannot wait long. */
	write_all(r->job_fd, text, strlen(text));
	write_all(r->job_fd, "\n", 1);
	free(text);
	*out = r;
	return OR_OK;
fail:
	close_pair(in);
	close_pair(o);
	close_pair(e);
	close_pair(p);
	free(text);
	free(r);
	return rc;
}

pid_t
runner_pid(const struct runner *r)
{
	return r->pid;
}

int
runner_pollfds(const struct runner *r, struct pollfd *fds, void **tags)
{
	int i, n = 0;

	if (r->pidfd >= 0 && !r->reaped) {
		fds[n].fd = r->pidfd;
		fds[n].events = POLLIN;
		fds[n].revents = 0;
		tags[n] = NULL; /* nothing to read: it means "exited" */
		n++;
	}

	for (i = 0; i < 3; i++) {
		if (r->s[i].fd < 0)
			continue;
		fds[n].fd = r->s[i].fd;
		fds[n].events = POLLIN;
		fds[n].revents = 0;
		tags[n] = (void *)&r->s[i];
		n++;
	}
	return n;
}

/* Deliver complete lines held in st->line. */
static void
emit_lines(struct runner *r, enum runner_stream which, struct stream *st,
	   const char *data, size_t len, runner_line_fn fn, void *ctx)
{
	const char *nl;
	size_t take;

	while (len > 0) {
		nl = memchr(data, '\n', len);
		take = nl != NULL ? (size_t)(nl - data) : len;
		if (st->dropping) {
			/* Skip the rest of an over-long line. */
		} else if (buf_append(&st->line, data, take) != OR_OK) {
			/* Too long: deliver what fits, cut, then skip to the
			 * end of the line. */
			size_t room = st->max - st->line.len;

			buf_append(&st->line, data, room);
			fn(ctx, r, which, buf_str(&st->line), st->line.len, 1);
			buf_reset(&st->line);
			st->dropping = 1;
		}
		if (nl == NULL)
			return;
		if (!st->dropping)
			fn(ctx, r, which, buf_str(&st->line), st->line.len, 0);
		buf_reset(&st->line);
		st->dropping = 0;
		data += take + 1;
		len -= take + 1;
	}
}

void
runner_read(struct runner *r, void *tag, runner_line_fn fn, void *ctx)
{
	struct stream *st = tag;
	enum runner_stream which;
	char chunk[65536];
	ssize_t n;
	int rounds;

	if (st == NULL)
		return; /* the pidfd: reaping comes next */
	which = (enum runner_stream)(st - r->s);

	/* A bounded number of reads, so one chatty runner cannot starve the
	 * others sharing the scheduler's loop. */
	for (rounds = 0; rounds < 16; rounds++) {
		n = read(st->fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			/* End of file: a last line without its newline. */
			if (st->line.len > 0 && !st->dropping)
				fn(ctx, r, which, buf_str(&st->line), st->line.len, 0);
			buf_free(&st->line);
			close(st->fd);
			st->fd = -1;
			return;
		}
		emit_lines(r, which, st, chunk, (size_t)n, fn, ctx);
	}
}

int
runner_eof(const struct runner *r)
{
	return r->s[0].fd < 0 && r->s[1].fd < 0 && r->s[2].fd < 0;
}

void
runner_answer(struct runner *r, int ok)
{
	const char *line = ok ? "{\"ok\":true}\n" : "{\"ok\":false}\n";

	if (r->job_fd >= 0)
		write_all(r->job_fd, line, strlen(line));
}

void
runner_kill(struct runner *r, int sig)
{
	if (r->pid > 0 && !r->reaped)
		kill(-r->pid, sig);
}

int
runner_reap(struct runner *r, int *wstatus)
{
	pid_t p;

	if (r->reaped)
		return 1;
	p = waitpid(r->pid, wstatus, WNOHANG);
	if (p == r->pid) {
		r->reaped = 1;
		/* Whatever it started and left behind goes with it. */
		kill(-r->pid, SIGKILL);
		return 1;
	}
	return 0;
}

void
runner_free(struct runner *r)
{
	int i;

	if (r == NULL)
		return;
	for (i = 0; i < 3; i++) {
		if (r->s[i].fd >= 0)
			close(r->s[i].fd);
		buf_free(&r->s[i].line);
	}
	if (r->job_fd >= 0)
		close(r->job_fd);
	if (r->pidfd >= 0)
		close(r->pidfd);
	free(r);
}

or_rc
runner_describe(const char *so_path, json_t **out, struct or_err *err)
{
	char *argv[] = {self_exe, "describe-plugin", (char *)so_path, NULL};
	int p[2] = {-1, -1}, fds[4];
	struct buf b;
	char chunk[4096];
	ssize_t n;
	pid_t pid;
	int st;
	or_rc rc;

	if (pipe2(p, O_CLOEXEC) != 0)
		return or_fail(err, OR_E_IO, NULL, NULL, "pipe: %s", strerror(errno));
	fds[0] = -1;
	fds[1] = p[1];
	fds[2] = -1;
	fds[3] = -1;
	rc = spawn(argv, fds, &pid, err);
	close(p[1]);
	if (rc != OR_OK) {
		close(p[0]);
		return rc;
	}
	buf_init(&b, 1 << 20);
	while ((n = read(p[0], chunk, sizeof(chunk))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0 && buf_append(&b, chunk, (size_t)n) != OR_OK)
			break;
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	*out = json_loadb(buf_str(&b), b.len, 0, NULL);
	buf_free(&b);
	if (*out == NULL) {
		if (WIFSIGNALED(st))
			return or_fail(err, OR_E_INVALID, "plugin_crashed", NULL,
				       "plugin %s crashed while loading (%s)", so_path,
				       strsignal(WTERMSIG(st)));
		return or_fail(err, OR_E_INVALID, NULL, NULL,
			       "plugin %s could not be described", so_path);
	}
	return OR_OK;
}

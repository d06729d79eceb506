/*
 * runner.h - the server's side of one step runner process: start it with
 * its job, read its three output streams line by line, answer its
 * requests, signal it, reap it.  Used by the scheduler thread only.
 */
#ifndef RUNNER_H
#define RUNNER_H

#include <jansson.h>
#include <poll.h>
#include <sys/types.h>

#include "or.h"

enum runner_stream { RUNNER_PROTO = 0, RUNNER_STDOUT = 1, RUNNER_STDERR = 2 };

struct runner;

/* Called for each complete line (without its newline).  A line longer than
 * the stream's limit arrives cut, with truncated set. */
typedef void (*runner_line_fn)(void *ctx, struct runner *r,
			       enum runner_stream stream, const char *line,
			       size_t len, int truncated);

/* Remember the program to run (`outrigger step`); call once at start-up,
 * before any thread starts: it reads /proc/self/exe. */
or_rc runner_init(struct or_err *err);

/* Start `outrigger step` in its own process group and send it job (one
 * JSON line).  *out is freed with runner_free after it is reaped. */
or_rc runner_spawn(json_t *job, struct runner **out, struct or_err *err);

pid_t runner_pid(const struct runner *r);

/* The descriptors to poll: the open output streams, and one that becomes
 * readable when the runner exits; returns how many (0..4). */
int runner_pollfds(const struct runner *r, struct pollfd *fds, void **tags);

/* Read what is ready on one of them (tag from runner_pollfds) and call fn
 * per line. */
void runner_read(struct runner *r, void *tag, runner_line_fn fn, void *ctx);

/* All three streams are at end of file. */
int runner_eof(const struct runner *r);

/* Answer the runner's last request (state, secret): committed or not. */
void runner_answer(struct runner *r, int ok);

/* Signal the runner's whole process group. */
void runner_kill(struct runner *r, int sig);

/* Reap without blocking: 1 and the wait status when it has exited. */
int runner_reap(struct runner *r, int *wstatus);

void runner_free(struct runner *r);

/* Describe a plugin file by running `outrigger describe-plugin` (so a
 * broken plugin cannot crash the server).  *out: its JSON. */
or_rc runner_describe(const char *so_path, json_t **out, struct or_err *err);

#endif

/*
 * harness.h - what the client tests share: a sandbox started as its own
 * process, HTTP to it with libcurl, and build/outrigger-step driven
 * directly with a job (the server's side of docs/engine.md played here).
 *
 * Everything returned is owned by the caller unless said otherwise.
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

/* A running `outrigger sandbox`. */
struct hx_sandbox {
	pid_t pid;
	char dir[512];		/* its --dir */
	json_t *endpoints;	/* endpoints.json */
	char *token;		/* the access token every API call accepts */
};

/* Run as root, move this process into a new network namespace with only
 * loopback up, so nothing started from here can reach another host.  0
 * when done (or not root: nothing to do), -1 when it failed. */
int hx_isolate_network(void);

/* A new directory /tmp/PREFIX-XXXXXX into out (never under /etc, /var,
 * /home, /usr, /opt or /root: the sandbox's VMs overlay those). */
int hx_tmpdir(char *out, size_t size, const char *prefix);
void hx_rmrf(const char *path);

/* The file's contents (NUL-terminated, at most 64 MiB), NULL if absent. */
char *hx_slurp(const char *path);
int hx_write(const char *path, const char *text);

/* Start bin as a sandbox in dir (created), time scale ts.  0 when it
 * listens and endpoints.json is read. */
int hx_sandbox_start(struct hx_sandbox *sb, const char *bin, const char *dir, double ts);
/* The same with more arguments (NULL-terminated, e.g. --catalog F). */
int hx_sandbox_start_args(struct hx_sandbox *sb, const char *bin, const char *dir, double ts,
			  const char *const *extra);
/* SIGTERM by PID, wait, free. */
void hx_sandbox_stop(struct hx_sandbox *sb);
const char *hx_endpoint(const struct hx_sandbox *sb, const char *key);

/* HTTP method url with the bearer token (when not NULL) and a JSON body
 * (may be NULL).  Returns the status (0: no answer); *out gets the body
 * (caller frees) when out is not NULL. */
long hx_http(const char *method, const char *url, const char *token, const char *body,
	     char **out);

/* What one step attempt said.  Everything in it is freed by
 * hx_step_free; the strings the hx_step_ functions return are borrowed
 * from it. */
struct hx_step {
	char status[32];	/* ok | failed | retry | cancelled | "" (no result) */
	char code[64];
	char message[2048];
	json_t *outputs;	/* key -> value */
	char *log;		/* every log line, "level: text\n" */
	int exit_status;	/* 0..255, 128+signal, -1 when unknown */
	json_t *msgs;		/* every protocol message, in order, each with
				 * "_ms": when it arrived, ms after the start */
	long ms;		/* how long the step ran */
	long term_ms;		/* when SIGTERM was sent (term_on), -1 if never */
	char *out, *err;	/* with capture: its stdout and stderr (at most
				 * 4 MiB each, NUL-terminated), else NULL */
};

/* Run step_bin with job on stdin, answering state/secret/resource
 * requests with ok, for at most timeout_s; its stdout and stderr go
 * where this process's go.  0 when it ran (whatever its result), -1 when
 * it could not be started. */
int hx_step_run(const char *step_bin, json_t *job, int timeout_s, struct hx_step *r);

/* The same with options. */
struct hx_step_opts {
	long timeout_ms;	/* SIGKILL after this */
	const char *term_on;	/* SIGTERM as soon as a log line containing it
				 * arrives (a cancel); NULL: never */
	int capture;		/* 1: collect stdout and stderr into out/err */
};
int hx_step_run_opts(const char *step_bin, json_t *job, const struct hx_step_opts *o,
		     struct hx_step *r);
void hx_step_free(struct hx_step *r);

/* The text of the nth log message (0-based) whose text contains needle
 * (NULL: any), and its level and arrival time; NULL when there is none. */
const char *hx_step_log(const struct hx_step *r, const char *needle, int nth, const char **level,
			long *ms);
/* The index in r->msgs of the first log message whose text is text, or -1. */
int hx_step_log_index(const struct hx_step *r, const char *text);
/* 1 if needle occurs in any message (any field) or in the captured stdout
 * or stderr: for checking that a secret never leaks. */
int hx_step_mentions(const struct hx_step *r, const char *needle);
/* The string value of output key, or NULL. */
const char *hx_step_output(const struct hx_step *r, const char *key);
/* The value of the first state message for key (NULL: any key, then
 * *key_out says which), or NULL when none was sent. */
const char *hx_step_state(const struct hx_step *r, const char *key, const char **key_out);

#endif

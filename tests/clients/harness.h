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
/* SIGTERM by PID, wait, free. */
void hx_sandbox_stop(struct hx_sandbox *sb);
const char *hx_endpoint(const struct hx_sandbox *sb, const char *key);

/* HTTP method url with the bearer token (when not NULL) and a JSON body
 * (may be NULL).  Returns the status (0: no answer); *out gets the body
 * (caller frees) when out is not NULL. */
long hx_http(const char *method, const char *url, const char *token, const char *body,
	     char **out);

/* What one step attempt said. */
struct hx_step {
	char status[32];	/* ok | failed | retry | cancelled | "" (no result) */
	char code[64];
	char message[2048];
	json_t *outputs;	/* key -> value */
	char *log;		/* every log line, "level: text\n" */
	int exit_status;
};

/* Run step_bin with job on stdin, answering state/secret/resource
 * requests with ok, for at most timeout_s.  0 when it ran (whatever its
 * result), -1 when it could not be started. */
int hx_step_run(const char *step_bin, json_t *job, int timeout_s, struct hx_step *r);
void hx_step_free(struct hx_step *r);

#endif

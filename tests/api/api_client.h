/*
 * api_client.h - what the API tests share: start the real server binary on
 * an ephemeral loopback port with a fresh database, and talk to it over
 * libcurl.
 *
 * The binary is $OUTRIGGER_BIN (build/outrigger by default); tests run from
 * the repository root.  Each server gets its own temporary directory, which
 * srv_stop removes.
 */
#ifndef API_CLIENT_H
#define API_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

struct srv {
	pid_t pid;
	char url[128];		/* "http://127.0.0.1:PORT" (no trailing slash) */
	unsigned short port;
	char dir[256];		/* temporary directory of this server */
	char db[320];		/* its database file */
	char log[320];		/* its stderr (the access log) */
};

/* Start a server.  dir: reuse this directory (its database) when not NULL.
 * extra: NULL-terminated extra arguments, may be NULL.  0 on success. */
int srv_start(struct srv *s, const char *dir, const char *const *extra);

/* SIGTERM, wait; returns the exit status (or 128+signal), -1 on timeout.
 * keep_dir: leave the directory (to restart on the same database). */
int srv_stop(struct srv *s, int keep_dir);

/* SIGKILL, wait, keep the directory. */
void srv_kill(struct srv *s);

/* Remove a directory srv_stop(…, 1) kept. */
void srv_rmdir(const char *dir);

struct res {
	long status;
	char *body;		/* NUL-terminated, owned */
	size_t len;
	json_t *json;		/* parsed body, or NULL */
	char headers[8192];	/* raw response headers */
};

/* One request.  body may be NULL; ctype NULL sends no Content-Type.
 * headers: NULL-terminated "Name: value" strings, may be NULL.
 * Returns 0 when an HTTP answer came back (any status). */
int req(struct srv *s, const char *method, const char *path, const char *ctype,
	const char *body, size_t len, const char *const *headers,
	struct res *r);

/* Shorthands: GET, and a JSON body with the right content type. */
int get(struct srv *s, const char *path, struct res *r);
int send_json(struct srv *s, const char *method, const char *path,
	      const char *json, struct res *r);
void res_free(struct res *r);

/* A response header's value (copied into out), or NULL when absent. */
const char *res_header(const struct res *r, const char *name, char *out,
		       size_t size);

/* error.code / error.field of an error answer, "" when absent. */
const char *err_code(const struct res *r);
const char *err_field(const struct res *r);

/* A new TCP connection to the server (TCP_NODELAY set), or -1. */
int tcp_connect(const struct srv *s);

/* Send raw bytes on a fresh TCP connection and read the answer (until the
 * server closes or timeout_ms passes).  Returns bytes read, -1 on error. */
ssize_t raw_exchange(struct srv *s, const void *data, size_t len, char *out,
		     size_t size, int timeout_ms);

/* Run the outrigger binary with args (NULL-terminated, after argv[0]),
 * capturing stdout+stderr into out.  Returns the exit status. */
int run_bin(const char *const *args, char *out, size_t size);

/* Execute SQL on a database file from outside the server (simulating what
 * later subsystems write).  0 on success. */
int sql_exec(const char *db, const char *sql);

/* Create the demo environment called name (owner "test"); 0 on 201. */
int make_env(struct srv *s, const char *name);

#endif

/*
 * host.h - what the step runner's client modules share with step.c.
 *
 * step.c owns the attempt (struct or_host, the protocol to the server);
 * the clients behind the minor-1 entries of struct or_host_api live in
 * their own files (gcp.c, k8s.c, ssh.c, fetch.c, step_pki.c) and reach the
 * attempt only through the functions here and the public table.
 */
#ifndef HOST_H
#define HOST_H

#include "outrigger/plugin.h"

/* The table handed to plugins; clients call log, fail, state_get, ... on
 * it like a plugin would. */
extern const struct or_host_api step_host_api;

/* The provider's settings (see or_host_api.provider). */
const char *step_provider(or_host *h, const char *key);

/* A bearer token from the provider's credentials, valid for at least a
 * minute more; NULL with fail() set when none can be had.  (gcp.c) */
const char *gcp_token(or_host *h);

/* The attempt's scratch directory (created on first use, removed when
 * the attempt ends); NULL with fail() set when it cannot be made. */
const char *step_workdir(or_host *h);

/* Keep s (malloc'd, taken over) alive until the operation returns and
 * return it: how clients hand strings to plugins.  NULL stays NULL. */
const char *step_keep(or_host *h, char *s);

/* The run entry: a local program, stdout captured, stderr logged. */
int step_run(or_host *h, const char *const *argv, const char *cwd, char **out);

#endif

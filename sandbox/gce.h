/*
 * gce.h - the simulated Compute Engine v1: projects, zones, image families,
 * instances, firewalls, zone and global operations, with Google's shapes
 * (as gcloud sends and expects them, ../shared/notes/gcp-api.md and
 * testworld.md) and Google's error bodies.
 */
#ifndef GCE_H
#define GCE_H

#include <jansson.h>

#include "cloud.h"

/* What happens to VMs as instances come and go (the sandbox starts a real
 * sshd per RUNNING instance).  Any hook may be NULL. */
struct gce_hooks {
	void *ctx;
	void (*instance_running)(void *ctx, json_t *instance);
	void (*instance_deleted)(void *ctx, json_t *instance);
	void (*metadata_changed)(void *ctx, json_t *instance);
};

void gce_set_hooks(const struct gce_hooks *hooks);

/* Answer one request.  path is after ".../compute/v1/", without the query;
 * body may be NULL.  *out is the JSON answer (new reference), *status the
 * HTTP status.  Takes the cloud lock itself. */
void gce_handle(struct cloud *c, const char *method, const char *path,
		json_t *body, json_t **out, int *status);

/* Finish the operations whose time has come (called by a ticker and
 * before every answer).  Takes the cloud lock. */
void gce_advance(struct cloud *c);

/* A Google error body: {"error": {code, message, errors[{message, domain,
 * reason}], status}}. */
json_t *gce_error(int code, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif

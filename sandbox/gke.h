/*
 * gke.h - the simulated GKE API v1 (container.googleapis.com): clusters
 * create/get/list/delete, operations, serverConfig, in the shapes gcloud
 * sends and reads (../shared/notes/gcp-api.md section 1, testworld.md 1.2).
 * A cluster's Kubernetes API itself is started by a hook when the cluster
 * becomes RUNNING.
 */
#ifndef GKE_H
#define GKE_H

#include <jansson.h>

#include "cloud.h"

struct gke_hooks {
	void *ctx;
	/* The cluster is about to be RUNNING: start its Kubernetes API and
	 * fill "endpoint" and "masterAuth.clusterCaCertificate" in cluster.
	 * Non-zero: the operation fails with message (a sentence). */
	int (*cluster_up)(void *ctx, json_t *cluster, char *message, size_t size);
	void (*cluster_down)(void *ctx, json_t *cluster);
};

void gke_set_hooks(const struct gke_hooks *hooks);

/* Answer one request; path starts with "projects/" (after "/v1/"). */
void gke_handle(struct cloud *c, const char *method, const char *path,
		json_t *body, json_t **out, int *status);

/* Finish operations whose time has come (takes the cloud lock). */
void gke_advance(struct cloud *c);

/* Kubernetes versions the sandbox offers (serverConfig). */
extern const char *const gke_versions[];

#endif

/*
 * mesh_int.h - what mesh.c, istiod.c and shop.c share.
 */
#ifndef MESH_INT_H
#define MESH_INT_H

#include <jansson.h>
#include <pthread.h>

#include "buf.h"
#include "mesh.h"

#define MESH_CLUSTERS 32
#define MESH_LISTENERS 512
#define MESH_REQ_MAX (64u * 1024)	/* a request's head and body */
#define MESH_IO_TIMEOUT_S 10

struct mesh_cluster {
	struct kube *kube;	/* NULL: slot free */
	int active;		/* 0 once going down */
	int dirty;		/* listeners to re-sync */
	int inflight;		/* threads using kube */
	int istio;		/* istiod deployed (injector on) */
	char id[256];
	char pod_cidr[48], svc_cidr[48];
};

struct mesh_listener {
	int fd;
	int slot;		/* cluster */
	char ip[16];
	int port;
};

struct mesh {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char path[4200];	/* sidecars.json */
	struct mesh_cluster cl[MESH_CLUSTERS];
	struct mesh_listener ls[MESH_LISTENERS];
	int nls;
	json_t *instances;	/* [instance], from mesh_refresh */
	json_t *firewalls;	/* [firewall] */
	json_t *sidecars;	/* {vm ip: record} */
	json_t *bind_failed;	/* {"ip:port": true}: warned once */
	int wake[2];
	pthread_t thread;
	int thread_started, stopping;
	long long gen;		/* poll loops done */
	int conns;		/* connection threads alive */
};

/* One accepted connection, handed to its thread (which frees it). */
struct mesh_conn {
	struct mesh *m;
	int fd;
	int slot;
	char ip[16];		/* the LoadBalancer IP it came to */
	int port;
	char peer[16];		/* where it came from */
};

/* Take the cluster's kube for a while (NULL when it is going); give it
 * back with mesh_put. */
struct kube *mesh_take(struct mesh *m, int slot, struct mesh_cluster *copy);
void mesh_put(struct mesh *m, int slot);

/* Record what istiod decided about the VM at ip (rec is stolen). */
void mesh_sidecar_record(struct mesh *m, const char *ip, json_t *rec);
/* A copy of the record of the VM at ip, or NULL. */
json_t *mesh_sidecar_get(struct mesh *m, const char *ip);
/* A copy of the Compute Engine instance whose address is ip, or NULL. */
json_t *mesh_instance_by_ip(struct mesh *m, const char *ip);
/* Copies of the firewalls of project. */
json_t *mesh_firewalls_of(struct mesh *m, const char *project);

/* The mesh root (PEM, caller frees) and the signing CA's certificate,
 * key and chain (cacerts, else the sandbox's istio-ca-secret), NULL-able
 * outputs.  0 on success. */
int mesh_ca(struct kube *k, char **root, char **ca_cert, char **ca_key, char **chain);

/* Small helpers. */
const char *mesh_s(const json_t *obj, const char *dotted);	/* "" if absent */
json_t *mesh_j(const json_t *obj, const char *dotted);
/* Deployment ns/name: 1 when its Available condition is True, 0 when not,
 * -1 when there is no such Deployment. */
int mesh_deployment_available(struct kube *k, const char *ns, const char *name);
int mesh_labels_match(const json_t *selector, const json_t *labels);
int mesh_cidr_contains(const char *outer, const char *inner);
/* Read a request's head (and body by Content-Length) from fd or ssl. */
struct mesh_http {
	char method[16];
	char path[1024];
	json_t *headers;	/* {lower-case name: value} */
	struct buf body;
};
/* rd: reads up to n bytes, returns <= 0 on end/error. */
int mesh_http_read(int (*rd)(void *ctx, char *p, int n), void *ctx, struct mesh_http *h);
void mesh_http_free(struct mesh_http *h);

/* The connection handlers (each closes nothing: the caller closes fd). */
void istiod_serve(struct mesh_conn *c);
void shop_serve(struct mesh_conn *c);

#endif

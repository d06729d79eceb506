/*
 * mesh.h - what happens at a cluster's LoadBalancer addresses: the
 * simulated istiod on port 15012 (sandbox/istiod.c), the shop on port 80
 * (sandbox/shop.c), and the small controllers that stand in for istiod
 * inside the cluster (Istio marked installed once istiod is deployed, the
 * `istio-ca-root-cert` ConfigMap in every namespace, `<gateway>-istio`
 * Deployment + LoadBalancer Service for Gateway API Gateways of class
 * istio).  docs/sandbox.md says what the shop checks.
 *
 * Listeners follow the Services: port 80 of every LoadBalancer IP, port
 * 15012 of those whose Service exposes 15012; bound when the IP is assigned,
 * closed when it is released or the cluster goes.  Each connection runs on
 * its own short-lived thread.  What istiod accepted or refused, per VM, is
 * kept in DIR/sidecars.json and survives a restart.
 *
 * Locking: never calls into the cloud store (the sandbox calls
 * mesh_cluster_down with the cloud lock held); Compute Engine facts come
 * from mesh_refresh.  Never reaches outside 127.0.0.0/8; never logs a
 * token or a key.
 */
#ifndef MESH_H
#define MESH_H

#include "cloud.h"
#include "kube.h"
#include "or.h"

struct mesh;

/* dir: where sidecars.json lives (made if missing).  catalog_path: the
 * products.json VMs serve (for the record only).  *out: mesh_free. */
or_rc mesh_new(const char *dir, struct mesh **out, struct or_err *err);

/* Stop listening and wait for connections in flight.  Every cluster must
 * have been taken down first.  NULL is a no-op. */
void mesh_free(struct mesh *m);

/* A cluster's Kubernetes API runs: watch it (the mesh sets k's hook).
 * id: the cluster's path ("projects/P/locations/L/clusters/C"); pod_cidr
 * and svc_cidr: its clusterIpv4Cidr and servicesIpv4Cidr. */
void mesh_cluster_up(struct mesh *m, struct kube *k, const char *id, const char *pod_cidr,
		     const char *svc_cidr);

/* The cluster's API is about to stop: close its listeners, wait for its
 * connections.  Call before kube_stop. */
void mesh_cluster_down(struct mesh *m, struct kube *k);

/* Copy the Compute Engine facts the checks need (instances, firewalls)
 * from the cloud; takes the cloud lock itself.  The sandbox's ticker calls
 * it a few times a second. */
void mesh_refresh(struct mesh *m, struct cloud *c);

#endif

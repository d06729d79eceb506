/*
 * kube.h - the sandbox's per-cluster Kubernetes API server.
 *
 * One kube serves one simulated GKE cluster over HTTPS (libmicrohttpd with
 * GnuTLS) with bearer-token auth, and is good enough that the real kubectl
 * (1.27 to 1.33) accepts it: legacy discovery, /version, minimal OpenAPI v3
 * for server-side validation, JSON and (for a few kinds) protobuf bodies,
 * Table answers, watch, the four patch types, CRDs and their objects.
 * Tiny controllers make Deployments roll out Pods, give LoadBalancer
 * Services an ingress IP and terminate Namespaces, after delays scaled by
 * time_scale.  State (objects and the resourceVersion counter) is kept in
 * one JSON file under cfg->dir and reloaded by kube_start.
 *
 * It never reaches outside 127.0.0.0/8 and never logs a token or a Secret's
 * data.
 *
 * Not simulated: exec/attach/port-forward, real logs (pods/log answers one
 * line), aggregated discovery, OpenAPI schemas (kubectl falls back to its
 * compiled-in types; `kubectl explain` shows no fields), field validation
 * (fieldValidation=Strict accepts unknown fields), real server-side apply
 * field ownership (apply merges like a strategic merge patch and records
 * the manager), controllers for StatefulSets, DaemonSets and Jobs (stored
 * only), protobuf bodies of kinds other than those of `kubectl create
 * namespace|secret|configmap|serviceaccount|token|*role*|*rolebinding`
 * (kubectl >= 1.32 `create deployment` gets 415: use apply, or kubectl.1.31).
 */
#ifndef KUBE_H
#define KUBE_H

#include <jansson.h>

#include "or.h"

struct kube;

/* What kind of change an object went through. */
enum kube_change { KUBE_ADDED, KUBE_MODIFIED, KUBE_DELETED };

/* Called on the kube's controller thread, in resourceVersion order, after
 * every object change (the store lock is NOT held, so it may call the
 * accessors below).  obj is the object after the change (for DELETED: the
 * last state); it is borrowed for the call only.  resource is the storage
 * name, e.g. "deployments.apps", "pods", "virtualservices.networking.istio.io". */
typedef void (*kube_hook_fn)(void *ctx, struct kube *k, enum kube_change change,
			     const char *resource, const json_t *obj);

struct kube_cfg {
	const char *dir;	/* state file kube-state.json lives here */
	const char *listen_addr;	/* "127.x.y.z" */
	unsigned short port;	/* 0: any free port, see kube_port() */
	const char *tls_cert_pem;	/* server certificate (chain), PEM */
	const char *tls_key_pem;	/* its private key, PEM */
	/* Non-zero when bearer (never NULL, may be "") is a valid token. */
	int (*auth)(void *ctx, const char *bearer);
	void *auth_ctx;
	const char *service_cidr;	/* ClusterIPs, e.g. "10.96.0.0/20" */
	const char *pod_cidr;	/* pod IPs, e.g. "10.4.0.0/14"; NULL: that one */
	/* LoadBalancer ingress IPs: lb_alloc, when set, writes one into ip
	 * and returns OR_OK; otherwise the next free address of lb_range
	 * ("127.0.5.10-127.0.5.250") is used.  lb_alloc runs on the
	 * controller thread with the kube's lock held: it must not call
	 * back into the kube. */
	or_rc (*lb_alloc)(void *ctx, const char *ns, const char *name, char *ip,
			  size_t size);
	void *lb_ctx;
	const char *lb_range;
	double time_scale;	/* 1.0: realistic delays; tests use ~0.02 */
	const char *version;	/* "v1.32.4": /version; decides the kubectl */
	unsigned threads;	/* HTTP threads; 0: 2 */
	int access_log;		/* log one line per request */
};

/* Load state from cfg->dir (a fresh cluster when there is none), start
 * listening and the controllers.  On failure nothing is left running.
 * The cfg strings are copied. */
or_rc kube_start(const struct kube_cfg *cfg, struct kube **out, struct or_err *err);

/* Stop serving: open watches end, the state is written, threads joined.
 * The kube can still be read with kube_get_object/kube_list afterwards. */
void kube_stop(struct kube *k);

/* kube_stop if needed, then free everything.  kube_free(NULL) is a no-op. */
void kube_free(struct kube *k);

/* The port actually listened on. */
unsigned short kube_port(const struct kube *k);

/* Turn the simulated Istio sidecar injector on or off: with it on, pods
 * created in a namespace labelled istio-injection=enabled get a container
 * named istio-proxy. */
void kube_set_istio_installed(struct kube *k, int on);

/* Register the change hook (one; NULL removes it). */
void kube_set_hook(struct kube *k, kube_hook_fn fn, void *ctx);

/* One object.  group_version is "v1" or "apps/v1"; resource is the plural
 * ("deployments"); ns is NULL or "" for cluster-scoped ones.  On OR_OK
 * *out is a new reference the caller owns (a copy: changing it changes
 * nothing).  OR_E_NOTFOUND when absent or the type is unknown. */
or_rc kube_get_object(struct kube *k, const char *group_version,
		      const char *resource, const char *ns, const char *name,
		      json_t **out, struct or_err *err);

/* Every object of a type, in ns (NULL or "": all namespaces), optionally
 * filtered by label_selector ("app=web,tier!=db"; NULL: all).  *out is a
 * new JSON array the caller owns. */
or_rc kube_list(struct kube *k, const char *group_version, const char *resource,
		const char *ns, const char *label_selector, json_t **out,
		struct or_err *err);

/* Create obj, or replace the existing one of the same name (its status is
 * kept unless obj has one), as if a client had done so: defaults, watch
 * events and controllers follow.  obj is borrowed.  *out (may be NULL)
 * receives a copy of the stored object. */
or_rc kube_apply_object(struct kube *k, const json_t *obj, json_t **out,
			struct or_err *err);

/* Delete one object (namespaces: start their termination). */
or_rc kube_delete_object(struct kube *k, const char *group_version,
			 const char *resource, const char *ns, const char *name,
			 struct or_err *err);

/* Review a bearer token as the TokenReview API would: one this cluster's
 * TokenRequest issued (its signature checks), not expired, for a
 * ServiceAccount that still exists with the same uid.  On OR_OK *claims
 * (the caller's) holds the token's claims: aud, exp, iat, sub and
 * kubernetes.io.{namespace, serviceaccount.{name, uid}}.  OR_E_AUTH with
 * the reason otherwise (the token itself never appears in it). */
or_rc kube_token_review(struct kube *k, const char *token, json_t **claims,
			struct or_err *err);

/* The current resourceVersion counter (for tests). */
long long kube_resource_version(struct kube *k);

#endif

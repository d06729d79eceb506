/*
 * kube_int.h - what the kube_*.c files share and nobody else sees.
 *
 * Locking: one mutex (k->lock) guards everything below.  Stored objects
 * are immutable once stored: a change builds a new object and replaces the
 * old one, so the watch ring may keep references to old versions.  Every
 * json_dumps of a stored object happens under the lock (jansson reads are
 * not promised to be thread-safe).
 *
 * Files: kube.c (start, stop, C accessors), kube_store.c (objects,
 * resource types, events, persistence, selectors), kube_api.c (routing,
 * verbs, subresources, Status errors), kube_write.c (create, update,
 * delete, defaults), kube_disc.c (discovery, OpenAPI, Tables), kube_http.c
 * (libmicrohttpd, TLS, bearer auth),
 * kube_patch.c (merge, strategic merge, JSON patch, YAML), kube_pb.c
 * (protobuf bodies), kube_watch.c (watch streams), kube_ctrl.c
 * (controllers, addresses, the hook).
 */
#ifndef KUBE_INT_H
#define KUBE_INT_H

#include <pthread.h>
#include <stdint.h>

#include "buf.h"
#include "kube.h"

#define KUBE_BODY_MAX (3u << 20)	/* the real API server's limit */
#define KUBE_RING 4096			/* watch events kept */
#define KUBE_KEY_MAX 200
#define KUBE_NODE "gke-sandbox-default-pool-0"

/* Resource flags. */
enum {
	KR_NAMESPACED = 1,
	KR_STATUS = 2,		/* has a status subresource: writes keep status */
	KR_CRD = 4,		/* defined by a CustomResourceDefinition */
	KR_TOKEN = 8,		/* serviceaccounts/token */
	KR_GENERATION = 16,	/* metadata.generation bumps on spec changes */
	KR_ALL = 32,		/* in category "all" */
	KR_SCALE = 64,		/* has a scale subresource */
};

/* One resource type as served at one group/version. */
struct kube_res {
	char group[96];
	char version[48];
	char plural[96];
	char singular[96];
	char kind[96];
	char short_names[96];	/* comma separated */
	char categories[96];	/* comma separated, beyond "all" */
	unsigned flags;
	char key[KUBE_KEY_MAX];	/* storage: "pods", "deployments.apps" */
};

struct kube_event {
	long long rv;
	enum kube_change type;
	char key[KUBE_KEY_MAX];
	json_t *obj;		/* owned */
};

struct kube_watch;
struct MHD_Connection;
struct MHD_Response;
struct MHD_Daemon;

struct kube {
	/* configuration (copied) */
	char *dir, *state_path, *listen_addr, *cert, *tlskey, *lb_range, *version;
	unsigned short port;
	double time_scale;
	unsigned threads;
	int access_log;
	int (*auth)(void *ctx, const char *bearer);
	void *auth_ctx;
	or_rc (*lb_alloc)(void *ctx, const char *ns, const char *name, char *ip,
			  size_t size);
	void *lb_ctx;
	uint32_t svc_net, svc_size, pod_net, pod_size, lb_first, lb_last;

	pthread_mutex_t lock;
	pthread_cond_t wake;		/* the controller thread sleeps on it */
	json_t *objs;			/* {key: {"ns/name": object}} */
	json_t *counters;		/* persisted cursors: {"pod_ip": n, ...} */
	long long rv;
	struct kube_res *res;		/* built-in types, then CRD ones */
	size_t n_res;
	struct kube_event ring[KUBE_RING];
	size_t ring_head, ring_count;
	long long ring_floor;		/* events at or below it are gone */
	struct kube_watch *waiters;	/* suspended watch streams */
	unsigned watchers;
	int stopping, serving;
	int dirty;			/* state not yet written */
	int changed;			/* controllers should look again */
	json_t *due;			/* "what" -> monotonic ms */
	int istio;
	unsigned char token_key[32];	/* signs TokenRequest tokens (HMAC-SHA256) */
	kube_hook_fn hook;
	void *hook_ctx;
	long long hook_rv;		/* last event handed to the hook */
	struct MHD_Daemon *d;
	pthread_t ctrl;
	int ctrl_started;
	unsigned short bound_port;
};

/* ---- kube.c -------------------------------------------------------------- */

/* The signature part of a token: base64url(HMAC-SHA256(token_key, signed))
 * appended to b.  No lock needed (the key is set once at start). */
void kube_token_sign(const struct kube *k, const char *signed_part, size_t len, struct buf *b);

/* ---- kube_store.c (lock held unless said) ---------------------------- */

or_rc kube_store_init(struct kube *k, struct or_err *err);	/* no lock */
or_rc kube_store_load(struct kube *k, struct or_err *err);	/* no lock */
/* Write the state file if dirty.  Takes the lock itself. */
or_rc kube_store_flush(struct kube *k, struct or_err *err);
void kube_store_free(struct kube *k);				/* no lock */

/* Resource types: builtin ones then CRD ones.  The pointer stays valid
 * only while the lock is held and no CRD changes (that rebuilds the
 * table): copy it (kube_res_find) to keep it across writes. */
size_t kube_res_count(struct kube *k);
const struct kube_res *kube_res_at(struct kube *k, size_t i);
int kube_res_find(struct kube *k, const char *group, const char *version,
		  const char *plural, struct kube_res *out);
/* By apiVersion ("apps/v1") and kind ("Deployment"). */
int kube_res_by_kind(struct kube *k, const char *api_version, const char *kind,
		     struct kube_res *out);
void kube_res_rebuild(struct kube *k);
/* "v1" or "apps/v1". */
void kube_res_gv(const struct kube_res *r, char *out, size_t size);

json_t *kube_obj_get(struct kube *k, const char *key, const char *ns,
		     const char *name);		/* borrowed */
json_t *kube_obj_bucket(struct kube *k, const char *key);	/* borrowed, may be NULL */
/* Store obj (stolen): sets resourceVersion, records the event, wakes
 * watchers and controllers.  Returns the stored object (borrowed). */
json_t *kube_obj_put(struct kube *k, const char *key, json_t *obj,
		     enum kube_change change);
/* Remove and record DELETED. */
void kube_obj_remove(struct kube *k, const char *key, const char *ns,
		     const char *name);

/* Helpers on objects. */
const char *kube_sget(const json_t *obj, const char *dotted);	/* "" if absent */
json_t *kube_jget(const json_t *obj, const char *dotted);	/* borrowed/NULL */
json_t *kube_meta(json_t *obj);		/* metadata, created if absent */
void kube_now_rfc3339(char *out, size_t size);
long long kube_mono_ms(void);
void kube_uid(char *out, size_t size);	/* random UUID v4 */
void kube_rand_suffix(char *out, size_t n);	/* n-1 chars [a-z0-9] */
/* Append base64 of s (url: the unpadded URL alphabet) to b. */
void kube_base64(struct buf *b, const unsigned char *s, size_t n, int url);
json_t *kube_sub_obj(json_t *obj, const char *key);	/* created if absent */

/* Label/field selectors.  parse: *out is a new array the caller owns. */
or_rc kube_sel_parse(const char *s, int fields, json_t **out, struct or_err *err);
int kube_sel_match(const json_t *sel, const json_t *obj, int fields);
int kube_sel_match_labels(const json_t *match_labels, const json_t *labels);

/* "what" becomes due delay_ms after the first call that asked; 1 once due. */
int kube_due(struct kube *k, const char *what, long long delay_ms);
void kube_due_forget(struct kube *k, const char *what);
long long kube_scaled_ms(const struct kube *k, double real_seconds);

/* ---- kube_api.c, kube_write.c ---------------------------------------------- */

struct kube_req {
	const char *method;
	const char *path;
	const char *(*query)(void *ctx, const char *key);
	void *qctx;
	const char *content_type;
	const char *accept;
	const char *body;
	size_t body_len;
};

struct kube_resp {
	int status;
	char *body;		/* malloc'd, owned */
	size_t len;
	const char *ctype;
	struct kube_watch *watch;	/* stream this instead of body */
};

/* Answer one authenticated request.  Takes the lock itself. */
void kube_handle(struct kube *k, const struct kube_req *req, struct kube_resp *resp);
const char *kube_q(const struct kube_req *req, const char *key);

struct kube_wopts {
	const char *field_manager;
	int dry_run;
	const char *sub;	/* "", "status" */
	const char *op;		/* managedFields operation: Update, Apply */
};

/* Writes, lock held.  obj is stolen.  *out (may be NULL) receives a new
 * reference to the stored object (dry run: to the would-be object). */
or_rc kube_do_create(struct kube *k, const struct kube_res *res, const char *ns,
		     json_t *obj, const struct kube_wopts *o, json_t **out,
		     struct or_err *err);
or_rc kube_do_update(struct kube *k, const struct kube_res *res, const char *ns,
		     const char *name, json_t *obj, const struct kube_wopts *o,
		     json_t **out, struct or_err *err);
/* Matching objects (new array of new references), sorted by ns/name. */
json_t *kube_select(struct kube *k, const struct kube_res *res, const char *ns,
		    const json_t *sel, const json_t *fsel);
/* Delete; *out is a new reference (the object as gone/terminating). */
or_rc kube_do_delete(struct kube *k, const struct kube_res *res, const char *ns,
		     const char *name, json_t **out, struct or_err *err);
or_rc kube_fail_notfound(struct or_err *err, const struct kube_res *res,
			 const char *name);

/* ---- kube_disc.c (lock held) ------------------------------------------- */

json_t *kube_disc_version(struct kube *k);
json_t *kube_disc_api(struct kube *k, const char *host);
json_t *kube_disc_apis(struct kube *k);
json_t *kube_disc_group(struct kube *k, const char *group);	/* NULL: none */
json_t *kube_disc_resources(struct kube *k, const char *group, const char *version);
json_t *kube_openapi_index(struct kube *k);
json_t *kube_openapi_gv(struct kube *k, const char *group, const char *version);
/* A meta.k8s.io/v1 Table of items (borrowed array). */
json_t *kube_table(struct kube *k, const struct kube_res *res, json_t *items,
		   long long rv);

/* ---- kube_patch.c (no lock needed) ------------------------------------- */

/* Each returns a new value in *out; the inputs are left alone. */
or_rc kube_merge_patch(const json_t *target, const json_t *patch, json_t **out,
		       struct or_err *err);
or_rc kube_smp(const json_t *target, const json_t *patch, json_t **out,
	       struct or_err *err);
or_rc kube_json_patch(const json_t *target, const json_t *ops, json_t **out,
		      struct or_err *err);
/* The first document of YAML text (JSON is YAML too). */
or_rc kube_yaml_parse(const char *text, size_t len, json_t **out,
		      struct or_err *err);

/* ---- kube_pb.c ----------------------------------------------------------- */

/* A "k8s\0"-prefixed protobuf body of a kind kubectl's typed clients
 * send (Namespace, Secret, ConfigMap, ServiceAccount, TokenRequest, the
 * four RBAC kinds), as JSON.  OR_E_MEDIATYPE for any other kind. */
or_rc kube_pb_decode(const void *data, size_t len, json_t **out, struct or_err *err);

/* ---- kube_watch.c --------------------------------------------------------- */

/* A new stream (lock held): initial ADDED events when from_rv is 0.
 * sel/fsel are borrowed and copied. */
or_rc kube_watch_new(struct kube *k, const struct kube_res *res, const char *ns,
		     long long from_rv, const json_t *sel, const json_t *fsel,
		     int table, long long timeout_s, struct kube_watch **out,
		     struct or_err *err);
/* The MHD response streaming w (takes w).  No lock. */
struct MHD_Response *kube_watch_response(struct kube_watch *w,
					 struct MHD_Connection *conn);
void kube_watch_free(struct kube_watch *w);
void kube_watch_wake(struct kube *k);		/* lock held */

/* ---- kube_http.c ---------------------------------------------------------- */

or_rc kube_http_start(struct kube *k, struct or_err *err);
/* End watch streams, then stop the daemon.  No lock held. */
void kube_http_stop(struct kube *k);

/* ---- kube_ctrl.c ------------------------------------------------------------ */

or_rc kube_ctrl_start(struct kube *k, struct or_err *err);
void kube_ctrl_stop(struct kube *k);
/* Addresses, lock held.  0 on success. */
int kube_alloc_cluster_ip(struct kube *k, char *ip, size_t size);
int kube_alloc_pod_ip(struct kube *k, char *ip, size_t size);
int kube_alloc_node_port(struct kube *k);
/* Admission of a new pod: the simulated sidecar injector. */
void kube_ctrl_inject(struct kube *k, json_t *pod);
/* The object's status at creation (pods Pending, namespaces Active ...). */
void kube_ctrl_initial_status(struct kube *k, const struct kube_res *res, json_t *obj);
int kube_parse_cidr(const char *cidr, uint32_t *net, uint32_t *size);
void kube_ip_str(uint32_t ip, char *out, size_t size);

#endif

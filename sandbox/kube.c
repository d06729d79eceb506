/*
 * kube.c - start, stop and the C-level accessors of a sandbox Kubernetes
 * API server (see kube.h).  A fresh cluster is seeded with what every
 * cluster has: the four system namespaces, the "kubernetes" Service on
 * the first address of the services range, and one node.
 */
#include "kube_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pki.h"

#define DEFAULT_POD_CIDR "10.4.0.0/14"
#define DEFAULT_VERSION "v1.32.4"

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static or_rc
parse_lb_range(struct kube *k, const char *range, struct or_err *err)
{
	char a[32], b[32];
	const char *dash;
	struct in_addr x, y;

	if (range == NULL || range[0] == '\0')
		return OR_OK;
	dash = strchr(range, '-');
	if (dash == NULL || (size_t)(dash - range) >= sizeof(a) || strlen(dash + 1) >= sizeof(b))
		goto bad;
	memcpy(a, range, (size_t)(dash - range));
	a[dash - range] = '\0';
	snprintf(b, sizeof(b), "%s", dash + 1);
	if (inet_pton(AF_INET, a, &x) != 1 || inet_pton(AF_INET, b, &y) != 1)
		goto bad;
	k->lb_first = ntohl(x.s_addr);
	k->lb_last = ntohl(y.s_addr);
	if ((k->lb_first >> 24) != 127 || (k->lb_last >> 24) != 127 || k->lb_first > k->lb_last)
		goto bad;
	return OR_OK;
bad:
	return or_fail(err, OR_E_INVALID, NULL, "lb_range",
		       "lb_range wants FIRST-LAST within 127.0.0.0/8, not '%s'", range);
}

static void
seed_one(struct kube *k, const char *group, const char *plural, const char *ns, json_t *obj)
{
	struct kube_res res;
	struct or_err err;

	if (!kube_res_find(k, group, "v1", plural, &res)) {
		json_decref(obj);
		return;
	}
	if (kube_do_create(k, &res, ns, obj, NULL, NULL, &err) != OR_OK)
		log_warn("kube: seeding %s: %s", plural, err.message);
}

/* What a new GKE cluster shows before anyone touched it. */
static void
seed(struct kube *k)
{
	static const char *const system_ns[] = {"default", "kube-system", "kube-public",
						"kube-node-lease"};
	char ip[32];
	size_t i;

	for (i = 0; i < sizeof(system_ns) / sizeof(system_ns[0]); i++)
		seed_one(k, "", "namespaces", "",
			 json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
				   "metadata", "name", system_ns[i]));
	seed_one(k, "rbac.authorization.k8s.io", "clusterroles", "",
		 json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:[{s:[s], s:[s], s:[s]}, {s:[s], s:[s]}]}",
			   "apiVersion", "rbac.authorization.k8s.io/v1", "kind", "ClusterRole",
			   "metadata", "name", "cluster-admin", "labels",
			   "kubernetes.io/bootstrapping", "rbac-defaults", "rules", "apiGroups", "*",
			   "resources", "*", "verbs", "*", "nonResourceURLs", "*", "verbs", "*"));
	kube_ip_str(k->svc_net + 1, ip, sizeof(ip));
	seed_one(k, "", "services", "default",
		 json_pack("{s:s, s:s, s:{s:s, s:{s:s, s:s}}, s:{s:s, s:s, s:[{s:s, s:i, s:i, s:s}]}}",
			   "apiVersion", "v1", "kind", "Service", "metadata", "name", "kubernetes",
			   "labels", "component", "apiserver", "provider", "kubernetes", "spec",
			   "type", "ClusterIP", "clusterIP", ip, "ports", "name", "https", "port",
			   443, "targetPort", 443, "protocol", "TCP"));
	seed_one(k, "", "nodes", "",
		 json_pack("{s:s, s:s, s:{s:s, s:{s:s, s:s, s:s}}, s:{s:{s:s, s:s}, s:[{s:s, s:s, s:s}], s:{s:s, s:s}}}",
			   "apiVersion", "v1", "kind", "Node", "metadata", "name", KUBE_NODE,
			   "labels", "kubernetes.io/hostname", KUBE_NODE, "kubernetes.io/os", "linux",
			   "cloud.google.com/gke-nodepool", "default-pool", "status", "nodeInfo",
			   "kubeletVersion", k->version, "osImage", "Container-Optimized OS",
			   "conditions", "type", "Ready", "status", "True", "reason",
			   "KubeletReady", "capacity", "cpu", "4", "memory", "16393076Ki"));
}

/* The key that signs this cluster's ServiceAccount tokens: made once,
 * kept (0600) beside the state so tokens stay valid across restarts. */
static or_rc
load_token_key(struct kube *k, struct or_err *err)
{
	char path[4200];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/sa-token.key", k->dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, k->token_key, sizeof(k->token_key));
		close(fd);
		if (n == (ssize_t)sizeof(k->token_key))
			return OR_OK;
	}
	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, k->token_key, sizeof(k->token_key)) : -1;
	if (fd >= 0)
		close(fd);
	if (n != (ssize_t)sizeof(k->token_key))
		return or_fail(err, OR_E_IO, NULL, NULL, "cannot read /dev/urandom");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, k->token_key, sizeof(k->token_key)) != (ssize_t)sizeof(k->token_key)) {
		if (fd >= 0)
			close(fd);
		return or_fail(err, OR_E_IO, NULL, NULL, "cannot write %s: %s", path,
			       strerror(errno));
	}
	close(fd);
	return OR_OK;
}

void
kube_token_sign(const struct kube *k, const char *signed_part, size_t len, struct buf *b)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mlen = 0;

	HMAC(EVP_sha256(), k->token_key, (int)sizeof(k->token_key),
	     (const unsigned char *)signed_part, len, mac, &mlen);
	buf_append_str(b, ".");
	kube_base64(b, mac, mlen, 1);
}

or_rc
kube_token_review(struct kube *k, const char *token, json_t **claims, struct or_err *err)
{
	const char *dot = token != NULL ? strrchr(token, '.') : NULL;
	struct buf want;
	unsigned char *payload = NULL;
	size_t plen = 0;
	const char *first, *ns, *name, *uid;
	json_t *c = NULL, *sa, *kio;
	or_rc rc = OR_OK;

	*claims = NULL;
	if (dot == NULL || strlen(token) > 16384)
		return or_fail(err, OR_E_AUTH, NULL, NULL, "not a ServiceAccount token (a JWT)");
	buf_init(&want, 32768);
	kube_token_sign(k, token, (size_t)(dot - token), &want);
	if (want.len != strlen(dot) || CRYPTO_memcmp(want.data, dot, want.len) != 0) {
		rc = or_fail(err, OR_E_AUTH, NULL, NULL,
			     "the token was not issued by this cluster (bad signature)");
		goto out;
	}
	first = strchr(token, '.');
	if (first == NULL || first == dot ||
	    pki_b64url_decode(first + 1, (size_t)(dot - first - 1), &payload, &plen, err) != OR_OK ||
	    (c = json_loadb((const char *)payload, plen, 0, NULL)) == NULL) {
		rc = or_fail(err, OR_E_AUTH, NULL, NULL, "the token's claims do not parse");
		goto out;
	}
	if (json_integer_value(json_object_get(c, "exp")) <= (json_int_t)time(NULL)) {
		rc = or_fail(err, OR_E_AUTH, NULL, NULL, "the token has expired");
		goto out;
	}
	/* "kubernetes.io" has a dot: no kube_sget path for it. */
	kio = json_object_get(c, "kubernetes.io");
	ns = kube_sget(kio, "namespace");
	name = kube_sget(kio, "serviceaccount.name");
	uid = kube_sget(kio, "serviceaccount.uid");
	pthread_mutex_lock(&k->lock);
	sa = kube_obj_get(k, "serviceaccounts", ns, name);
	if (sa == NULL || strcmp(kube_sget(sa, "metadata.uid"), uid) != 0)
		rc = or_fail(err, OR_E_AUTH, NULL, NULL,
			     "service account %s/%s no longer exists", ns, name);
	pthread_mutex_unlock(&k->lock);
out:
	buf_free(&want);
	free(payload);
	if (rc == OR_OK)
		*claims = c;
	else
		json_decref(c);
	return rc;
}

or_rc
kube_start(const struct kube_cfg *cfg, struct kube **out, struct or_err *err)
{
	struct kube *k;
	or_rc rc;
	int fresh;

	*out = NULL;
	if (cfg->dir == NULL || cfg->listen_addr == NULL || cfg->service_cidr == NULL)
		return or_fail(err, OR_E_INVALID, NULL, "cfg",
			       "dir, listen_addr and service_cidr are required");
	if ((cfg->tls_cert_pem == NULL) != (cfg->tls_key_pem == NULL))
		return or_fail(err, OR_E_INVALID, NULL, "tls_key_pem",
			       "give both the TLS certificate and its key, or neither");
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->wake, NULL);
	k->dir = strdup(cfg->dir);
	k->listen_addr = strdup(cfg->listen_addr);
	k->cert = dup_or_null(cfg->tls_cert_pem);
	k->tlskey = dup_or_null(cfg->tls_key_pem);
	k->lb_range = dup_or_null(cfg->lb_range);
	k->version = strdup(cfg->version != NULL ? cfg->version : DEFAULT_VERSION);
	k->port = cfg->port;
	k->time_scale = cfg->time_scale > 0 ? cfg->time_scale : 1.0;
	k->threads = cfg->threads > 0 ? cfg->threads : 2;
	k->access_log = cfg->access_log;
	k->auth = cfg->auth;
	k->auth_ctx = cfg->auth_ctx;
	k->lb_alloc = cfg->lb_alloc;
	k->lb_ctx = cfg->lb_ctx;
	if (k->dir == NULL || k->listen_addr == NULL || k->version == NULL ||
	    (cfg->tls_cert_pem != NULL && (k->cert == NULL || k->tlskey == NULL))) {
		rc = or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
		goto fail;
	}
	if (kube_parse_cidr(cfg->service_cidr, &k->svc_net, &k->svc_size) != 0) {
		rc = or_fail(err, OR_E_INVALID, NULL, "service_cidr",
			     "service_cidr wants an IPv4 CIDR between /8 and /30, not '%s'",
			     cfg->service_cidr);
		goto fail;
	}
	if (kube_parse_cidr(cfg->pod_cidr != NULL ? cfg->pod_cidr : DEFAULT_POD_CIDR, &k->pod_net,
			    &k->pod_size) != 0) {
		rc = or_fail(err, OR_E_INVALID, NULL, "pod_cidr",
			     "pod_cidr wants an IPv4 CIDR between /8 and /30");
		goto fail;
	}
	rc = parse_lb_range(k, cfg->lb_range, err);
	if (rc != OR_OK)
		goto fail;
	rc = load_token_key(k, err);
	if (rc != OR_OK)
		goto fail;
	rc = kube_store_init(k, err);
	if (rc != OR_OK)
		goto fail;
	rc = kube_store_load(k, err);
	if (rc != OR_OK)
		goto fail;
	pthread_mutex_lock(&k->lock);
	fresh = kube_obj_bucket(k, "namespaces") == NULL;
	if (fresh)
		seed(k);
	pthread_mutex_unlock(&k->lock);
	rc = kube_ctrl_start(k, err);
	if (rc != OR_OK)
		goto fail;
	rc = kube_http_start(k, err);
	if (rc != OR_OK)
		goto fail;
	k->serving = 1;
	*out = k;
	return OR_OK;
fail:
	kube_free(k);
	return rc;
}

unsigned short
kube_port(const struct kube *k)
{
	return k->bound_port;
}

void
kube_stop(struct kube *k)
{
	struct or_err err;

	if (k == NULL || !k->serving)
		return;
	kube_http_stop(k);
	kube_ctrl_stop(k);
	if (kube_store_flush(k, &err) != OR_OK)
		log_warn("kube: %s", err.message);
	k->serving = 0;
}

void
kube_free(struct kube *k)
{
	if (k == NULL)
		return;
	kube_stop(k);
	/* A start that failed half way: the daemon and thread may be up. */
	kube_http_stop(k);
	kube_ctrl_stop(k);
	kube_store_free(k);
	pthread_cond_destroy(&k->wake);
	pthread_mutex_destroy(&k->lock);
	free(k->dir);
	free(k->listen_addr);
	free(k->cert);
	free(k->tlskey);
	free(k->lb_range);
	free(k->version);
	free(k);
}

void
kube_set_istio_installed(struct kube *k, int on)
{
	pthread_mutex_lock(&k->lock);
	k->istio = on != 0;
	pthread_mutex_unlock(&k->lock);
}

void
kube_set_hook(struct kube *k, kube_hook_fn fn, void *ctx)
{
	pthread_mutex_lock(&k->lock);
	k->hook = fn;
	k->hook_ctx = ctx;
	k->hook_rv = k->rv;	/* from now on, not the past */
	pthread_mutex_unlock(&k->lock);
}

long long
kube_resource_version(struct kube *k)
{
	long long rv;

	pthread_mutex_lock(&k->lock);
	rv = k->rv;
	pthread_mutex_unlock(&k->lock);
	return rv;
}

/* ---- accessors --------------------------------------------------------- */

static int
split_gv(const char *gv, char *group, size_t gs, char *version, size_t vs)
{
	const char *slash = strchr(gv, '/');

	if (slash == NULL) {
		snprintf(group, gs, "%s", "");
		snprintf(version, vs, "%s", gv);
		return 1;
	}
	if ((size_t)(slash - gv) >= gs)
		return 0;
	memcpy(group, gv, (size_t)(slash - gv));
	group[slash - gv] = '\0';
	snprintf(version, vs, "%s", slash + 1);
	return 1;
}

/* The type named by group_version + resource; lock held. */
static or_rc
find_res(struct kube *k, const char *gv, const char *resource, struct kube_res *res,
	 struct or_err *err)
{
	char group[128], version[64];

	if (gv == NULL || resource == NULL || !split_gv(gv, group, sizeof(group), version, sizeof(version)) ||
	    !kube_res_find(k, group, version, resource, res))
		return or_fail(err, OR_E_NOTFOUND, "not_found", NULL,
			       "the server doesn't have a resource type \"%s\" in %s",
			       resource != NULL ? resource : "", gv != NULL ? gv : "");
	return OR_OK;
}

or_rc
kube_get_object(struct kube *k, const char *group_version, const char *resource,
		const char *ns, const char *name, json_t **out, struct or_err *err)
{
	struct kube_res res;
	json_t *o;
	or_rc rc;

	*out = NULL;
	pthread_mutex_lock(&k->lock);
	rc = find_res(k, group_version, resource, &res, err);
	if (rc != OR_OK)
		goto out;
	o = kube_obj_get(k, res.key, (res.flags & KR_NAMESPACED) && ns != NULL ? ns : "", name);
	if (o == NULL) {
		rc = kube_fail_notfound(err, &res, name);
		goto out;
	}
	*out = json_deep_copy(o);
	if (*out == NULL)
		rc = or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
out:
	pthread_mutex_unlock(&k->lock);
	return rc;
}

or_rc
kube_list(struct kube *k, const char *group_version, const char *resource, const char *ns,
	  const char *label_selector, json_t **out, struct or_err *err)
{
	struct kube_res res;
	json_t *sel = NULL, *items;
	or_rc rc;

	*out = NULL;
	rc = kube_sel_parse(label_selector, 0, &sel, err);
	if (rc != OR_OK)
		return rc;
	pthread_mutex_lock(&k->lock);
	rc = find_res(k, group_version, resource, &res, err);
	if (rc == OR_OK) {
		items = kube_select(k, &res, ns, sel, NULL);
		/* Deep copies: the stored objects must not leave the lock. */
		*out = json_deep_copy(items);
		json_decref(items);
		if (*out == NULL)
			rc = or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	}
	pthread_mutex_unlock(&k->lock);
	json_decref(sel);
	return rc;
}

or_rc
kube_apply_object(struct kube *k, const json_t *obj, json_t **out, struct or_err *err)
{
	struct kube_res res;
	struct kube_wopts o;
	json_t *copy = NULL, *stored = NULL;
	const char *ns, *name;
	or_rc rc;

	if (out != NULL)
		*out = NULL;
	memset(&o, 0, sizeof(o));
	o.field_manager = "outrigger-sandbox";
	pthread_mutex_lock(&k->lock);
	if (!kube_res_by_kind(k, kube_sget(obj, "apiVersion"), kube_sget(obj, "kind"), &res)) {
		rc = or_fail(err, OR_E_NOTFOUND, "not_found", "kind",
			     "no matches for kind \"%s\" in version \"%s\"", kube_sget(obj, "kind"),
			     kube_sget(obj, "apiVersion"));
		goto out;
	}
	copy = json_deep_copy(obj);
	if (copy == NULL) {
		rc = or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
		goto out;
	}
	ns = kube_sget(obj, "metadata.namespace");
	name = kube_sget(obj, "metadata.name");
	if (kube_obj_get(k, res.key, (res.flags & KR_NAMESPACED) ? ns : "", name) != NULL) {
		/* The sandbox's own controllers may set status directly. */
		o.op = json_object_get(obj, "status") != NULL ? "Controller" : "Update";
		rc = kube_do_update(k, &res, ns, name, copy, &o, &stored, err);
	} else {
		o.op = "Update";
		rc = kube_do_create(k, &res, ns, copy, &o, &stored, err);
	}
	copy = NULL;
	if (rc == OR_OK && out != NULL)
		*out = json_deep_copy(stored);
out:
	json_decref(stored);
	pthread_mutex_unlock(&k->lock);
	return rc;
}

or_rc
kube_delete_object(struct kube *k, const char *group_version, const char *resource,
		   const char *ns, const char *name, struct or_err *err)
{
	struct kube_res res;
	json_t *gone = NULL;
	or_rc rc;

	pthread_mutex_lock(&k->lock);
	rc = find_res(k, group_version, resource, &res, err);
	if (rc == OR_OK)
		rc = kube_do_delete(k, &res, ns != NULL ? ns : "", name, &gone, err);
	pthread_mutex_unlock(&k->lock);
	json_decref(gone);
	return rc;
}

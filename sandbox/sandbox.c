/*
 * sandbox.c - the sandbox's command and HTTP front: one libmicrohttpd
 * daemon for the Google APIs it simulates (Compute Engine under
 * /compute/v1/, Service Usage under /v1/projects/.../services/), its own
 * admin API (faults, request log) under /admin/, bearer-token checks with
 * Google's error shape, and endpoints.json for clients.
 *
 * Thread per connection: a handful of clients, and `operations/wait` may
 * block for a moment; nothing here needs the server's epoll pool.
 */
#include "sandbox.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "catalog.h"
#include "cloud.h"
#include "disc.h"
#include "gce.h"
#include "gke.h"
#include "kube.h"
#include "mesh.h"
#include "mirror.h"
#include "vm.h"
#include "log.h"
#include "pki.h"

#define BODY_MAX (4u << 20)
#define REQUEST_LOG_MAX 4096
#define FAULTS_MAX 32

struct fault {
	regex_t re;
	char *match;
	int status;
	double rate;
	long count;		/* < 0: unlimited */
	char reason[64];
	char message[256];
};

#define CLUSTERS_MAX 32

/* A running cluster's Kubernetes API. */
struct cluster_api {
	char path[256];		/* the cluster's document */
	struct kube *kube;
};

#define VMS_MAX 64

/* A RUNNING instance's VM: a real sshd in its own namespaces. */
struct vm_slot {
	char path[512];		/* the instance's selfLink path */
	struct vm *vm;
};

struct sandbox {
	struct cloud *cloud;
	struct disc *disc;	/* Google's discovery documents, with --discovery */
	int vms_ok;		/* VMs can run here (root, namespaces, sshd) */
	struct vm_slot vms[VMS_MAX];
	char dir[4096];
	double time_scale;
	struct cluster_api clusters[CLUSTERS_MAX];
	struct mirror *mirror;	/* downloads under /mirror/ */
	struct mesh *mesh;	/* LoadBalancer IPs: istiod, the shop */
	char catalog[4200];	/* DIR/catalog.json, what VMs serve */
	char token[65];
	char *sa_public_pem;	/* verifies assertions at the token endpoint */
	char *sa_email;
	char token_uri[160];
	pthread_mutex_t lock;	/* faults and the request log */
	struct fault faults[FAULTS_MAX];
	int nfaults;
	json_t *requests;	/* [{method, path, status}] */
	unsigned rand_state;
	atomic_int stopping;
};

struct req {
	struct buf body;
	int too_large;
};

/* ---- answers ------------------------------------------------------------ */

static enum MHD_Result
send_json(struct MHD_Connection *conn, int status, json_t *body)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char *text = json_dumps(body, JSON_COMPACT);

	json_decref(body);
	if (text == NULL)
		return MHD_NO;
	r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=UTF-8");
	ret = MHD_queue_response(conn, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static void
log_request(struct sandbox *sb, const char *method, const char *url, int status)
{
	pthread_mutex_lock(&sb->lock);
	if (json_array_size(sb->requests) >= REQUEST_LOG_MAX)
		json_array_remove(sb->requests, 0);
	json_array_append_new(sb->requests, json_pack("{s:s, s:s, s:i}", "method", method,
						      "path", url, "status", status));
	pthread_mutex_unlock(&sb->lock);
}

/* ---- faults (admin) --------------------------------------------------------- */

static unsigned
next_random(struct sandbox *sb)
{
	unsigned x = sb->rand_state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	sb->rand_state = x;
	return x;
}

/* An injected error for "METHOD PATH", or NULL. */
static json_t *
fault_for(struct sandbox *sb, const char *method, const char *path, int *status)
{
	char line[2048];
	json_t *err = NULL;
	struct fault *f;
	int i;

	snprintf(line, sizeof(line), "%s %s", method, path);
	pthread_mutex_lock(&sb->lock);
	for (i = 0; i < sb->nfaults && err == NULL; i++) {
		f = &sb->faults[i];
		if (f->count == 0 || regexec(&f->re, line, 0, NULL, 0) != 0)
			continue;
		if ((double)(next_random(sb) % 1000000) / 1000000.0 >= f->rate)
			continue;
		if (f->count > 0)
			f->count--;
		*status = f->status;
		err = gce_error(f->status, f->reason, "%s", f->message);
	}
	pthread_mutex_unlock(&sb->lock);
	return err;
}

static void
faults_clear(struct sandbox *sb)
{
	int i;

	for (i = 0; i < sb->nfaults; i++) {
		regfree(&sb->faults[i].re);
		free(sb->faults[i].match);
	}
	sb->nfaults = 0;
}

static json_t *
admin(struct sandbox *sb, const char *method, const char *path, json_t *body, int *status)
{
	struct fault *f;
	const char *match;

	*status = 200;
	if (strcmp(path, "/admin/requests") == 0 && strcmp(method, "GET") == 0) {
		json_t *copy;

		pthread_mutex_lock(&sb->lock);
		copy = json_deep_copy(sb->requests);
		pthread_mutex_unlock(&sb->lock);
		return json_pack("{s:o}", "requests", copy);
	}
	/* Forget the log: a test then sees only what its own steps sent. */
	if (strcmp(path, "/admin/requests") == 0 && strcmp(method, "DELETE") == 0) {
		pthread_mutex_lock(&sb->lock);
		json_array_clear(sb->requests);
		pthread_mutex_unlock(&sb->lock);
		return json_pack("{s:i}", "requests", 0);
	}
	if (strcmp(path, "/admin/faults") != 0) {
		*status = 404;
		return gce_error(404, "notFound", "no admin path %.100s", path);
	}
	if (strcmp(method, "DELETE") == 0) {
		pthread_mutex_lock(&sb->lock);
		faults_clear(sb);
		pthread_mutex_unlock(&sb->lock);
		return json_pack("{s:i}", "faults", 0);
	}
	if (strcmp(method, "POST") != 0) {
		*status = 405;
		return gce_error(405, "badRequest", "use POST or DELETE");
	}
	match = json_string_value(json_object_get(body, "match"));
	if (match == NULL || !json_is_integer(json_object_get(body, "status"))) {
		*status = 400;
		return gce_error(400, "invalid", "a fault needs \"match\" (regex on \"METHOD PATH\") "
					       "and \"status\"");
	}
	pthread_mutex_lock(&sb->lock);
	if (sb->nfaults == FAULTS_MAX) {
		pthread_mutex_unlock(&sb->lock);
		*status = 400;
		return gce_error(400, "invalid", "at most %d faults", FAULTS_MAX);
	}
	f = &sb->faults[sb->nfaults];
	memset(f, 0, sizeof(*f));
	if (regcomp(&f->re, match, REG_EXTENDED | REG_NOSUB) != 0) {
		pthread_mutex_unlock(&sb->lock);
		*status = 400;
		return gce_error(400, "invalid", "\"match\" is not a valid regular expression");
	}
	f->match = strdup(match);
	f->status = (int)json_integer_value(json_object_get(body, "status"));
	f->rate = json_is_number(json_object_get(body, "rate"))
			  ? json_number_value(json_object_get(body, "rate"))
			  : 1.0;
	f->count = json_is_integer(json_object_get(body, "count"))
			   ? (long)json_integer_value(json_object_get(body, "count"))
			   : -1;
	snprintf(f->reason, sizeof(f->reason), "%s",
		 json_string_value(json_object_get(body, "reason")) != NULL
			 ? json_string_value(json_object_get(body, "reason"))
			 : (f->status == 429 ? "rateLimitExceeded" : "backendError"));
	snprintf(f->message, sizeof(f->message), "%s",
		 json_string_value(json_object_get(body, "message")) != NULL
			 ? json_string_value(json_object_get(body, "message"))
			 : "Injected by the sandbox");
	sb->nfaults++;
	pthread_mutex_unlock(&sb->lock);
	return json_pack("{s:i}", "faults", sb->nfaults);
}

/* ---- requests -------------------------------------------------------------- */

/* Is bearer a token of this sandbox?  (The token file's, or one the token
 * endpoint issued and that has not expired.)  Also the check of every
 * cluster's Kubernetes API, as GKE accepts Google tokens. */
static int
token_ok(void *ctx, const char *bearer)
{
	struct sandbox *sb = ctx;
	json_t *t;
	int ok;

	if (bearer == NULL || bearer[0] == '\0' || strlen(bearer) > 256)
		return 0;
	if (strcmp(bearer, sb->token) == 0)
		return 1;
	cloud_lock(sb->cloud);
	t = cloud_get(sb->cloud, "token", bearer);
	cloud_unlock(sb->cloud);
	ok = t != NULL && json_integer_value(json_object_get(t, "expires_ms")) > cloud_now_ms();
	json_decref(t);
	return ok;
}

static int
authorized(struct sandbox *sb, struct MHD_Connection *conn)
{
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");

	return h != NULL && strncmp(h, "Bearer ", 7) == 0 && token_ok(sb, h + 7);
}

/* ---- clusters: a Kubernetes API each ------------------------------------- */

/* Read a whole small file (a PEM); NULL when absent. */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *data;
	size_t n;

	if (f == NULL)
		return NULL;
	data = calloc(1, 65536);
	n = data != NULL ? fread(data, 1, 65535, f) : 0;
	fclose(f);
	if (data != NULL && n == 0) {
		free(data);
		data = NULL;
	}
	return data;
}

static int
spit(const char *path, const char *text, int mode)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	fchmod(fileno(f), (mode_t)mode);
	fputs(text, f);
	return fclose(f);
}

/* Start the Kubernetes API of cluster doc: its own CA (made once, kept in
 * DIR/clusters/N/), a server certificate for its endpoint address, port
 * 443 as root.  Fills endpoint and masterAuth.  Called with the cloud
 * locked (from the operation's effect) or at start-up. */
static int
cluster_start(struct sandbox *sb, json_t *cl, char *msg, size_t size)
{
	struct pki_issue_opts io;
	struct pki_cert *ca = NULL, *srv = NULL;
	struct kube_cfg kc;
	struct or_err err;
	struct cluster_api *slot = NULL;
	char cdir[4300], path[4400], addr[32], range[64], endpoint[48];
	char *ca_pem = NULL, *ca_key = NULL, *srv_pem = NULL, *srv_key = NULL, *b64 = NULL;
	const char *ips[2];
	long long idx = json_integer_value(json_object_get(cl, "_index"));
	int i, rc = -1;

	for (i = 0; i < CLUSTERS_MAX && slot == NULL; i++)
		if (sb->clusters[i].kube == NULL)
			slot = &sb->clusters[i];
	if (slot == NULL) {
		snprintf(msg, size, "the sandbox runs at most %d clusters", CLUSTERS_MAX);
		return -1;
	}
	snprintf(addr, sizeof(addr), "127.20.%lld.1", 1 + idx % 250);
	snprintf(range, sizeof(range), "127.30.%lld.10-127.30.%lld.250", 1 + idx % 250,
		 1 + idx % 250);
	snprintf(cdir, sizeof(cdir), "%s/clusters", sb->dir);
	mkdir(cdir, 0755);
	snprintf(cdir, sizeof(cdir), "%s/clusters/%lld", sb->dir, idx);
	mkdir(cdir, 0700);
	snprintf(path, sizeof(path), "%s/ca.pem", cdir);
	ca_pem = slurp(path);
	snprintf(path, sizeof(path), "%s/ca.key", cdir);
	ca_key = slurp(path);
	if (ca_pem == NULL || ca_key == NULL ||
	    pki_cert_load(ca_pem, ca_key, &ca, &err) != OR_OK) {
		free(ca_pem);
		pki_secret_free(ca_key);
		ca_pem = ca_key = NULL;
		if (pki_ca_new("outrigger sandbox", json_string_value(json_object_get(cl, "name")),
			       3650, &ca, &err) != OR_OK ||
		    pki_cert_pem(ca, &ca_pem, &ca_key, &err) != OR_OK)
			goto fail;
		snprintf(path, sizeof(path), "%s/ca.pem", cdir);
		spit(path, ca_pem, 0644);
		snprintf(path, sizeof(path), "%s/ca.key", cdir);
		spit(path, ca_key, 0600);
	}
	memset(&io, 0, sizeof(io));
	ips[0] = addr;
	ips[1] = NULL;
	io.cn = "kube-apiserver";
	io.days = 365;
	io.ips = ips;
	io.n_ips = 1;
	io.server_auth = 1;
	if (pki_issue(ca, &io, &srv, &err) != OR_OK ||
	    pki_cert_pem(srv, &srv_pem, &srv_key, &err) != OR_OK)
		goto fail;
	memset(&kc, 0, sizeof(kc));
	kc.dir = cdir;
	kc.listen_addr = addr;
	kc.port = geteuid() == 0 ? 443 : 0;
	kc.tls_cert_pem = srv_pem;
	kc.tls_key_pem = srv_key;
	kc.auth = token_ok;
	kc.auth_ctx = sb;
	kc.service_cidr = json_string_value(json_object_get(cl, "servicesIpv4Cidr"));
	kc.pod_cidr = json_string_value(json_object_get(cl, "clusterIpv4Cidr"));
	kc.lb_range = range;
	kc.time_scale = sb->time_scale;
	if (kube_start(&kc, &slot->kube, &err) != OR_OK)
		goto fail;
	snprintf(slot->path, sizeof(slot->path), "%s",
		 strstr(json_string_value(json_object_get(cl, "selfLink")), "projects/"));
	mesh_cluster_up(sb->mesh, slot->kube, slot->path, kc.pod_cidr, kc.service_cidr);
	if (kube_port(slot->kube) == 443)
		snprintf(endpoint, sizeof(endpoint), "%s", addr);
	else
		snprintf(endpoint, sizeof(endpoint), "%s:%u", addr, kube_port(slot->kube));
	b64 = pki_b64_encode(ca_pem, strlen(ca_pem));
	json_object_set_new(cl, "endpoint", json_string(endpoint));
	json_object_set_new(cl, "masterAuth", json_pack("{s:s}", "clusterCaCertificate", b64));
	rc = 0;
	goto out;
fail:
	snprintf(msg, size, "the cluster's Kubernetes API did not start: %s", err.message);
out:
	free(b64);
	free(ca_pem);
	pki_secret_free(ca_key);
	free(srv_pem);
	pki_secret_free(srv_key);
	pki_cert_free(ca);
	pki_cert_free(srv);
	return rc;
}

static int
hook_cluster_up(void *ctx, json_t *cl, char *msg, size_t size)
{
	return cluster_start(ctx, cl, msg, size);
}

static void
hook_cluster_down(void *ctx, json_t *cl)
{
	struct sandbox *sb = ctx;
	const char *self = json_string_value(json_object_get(cl, "selfLink"));
	int i;

	for (i = 0; i < CLUSTERS_MAX; i++)
		if (sb->clusters[i].kube != NULL && self != NULL &&
		    strstr(self, sb->clusters[i].path) != NULL) {
			mesh_cluster_down(sb->mesh, sb->clusters[i].kube);
			kube_stop(sb->clusters[i].kube);
			kube_free(sb->clusters[i].kube);
			sb->clusters[i].kube = NULL;
		}
}

/* ---- instances: a VM each -------------------------------------------------- */

static const char *
metadata_value(json_t *instance, const char *key)
{
	json_t *items = json_object_get(json_object_get(instance, "metadata"), "items"), *it;
	size_t i;

	json_array_foreach(items, i, it)
		if (strcmp(json_string_value(json_object_get(it, "key")), key) == 0)
			return json_string_value(json_object_get(it, "value"));
	return NULL;
}

static struct vm_slot *
vm_slot_of(struct sandbox *sb, json_t *instance)
{
	const char *self = json_string_value(json_object_get(instance, "selfLink"));
	int i;

	for (i = 0; i < VMS_MAX; i++)
		if (sb->vms[i].vm != NULL && self != NULL && strstr(self, sb->vms[i].path) != NULL &&
		    strlen(strstr(self, sb->vms[i].path)) == strlen(sb->vms[i].path))
			return &sb->vms[i];
	return NULL;
}

static void
hook_instance_running(void *ctx, json_t *instance)
{
	struct sandbox *sb = ctx;
	struct vm_cfg vc;
	struct or_err err;
	struct vm_slot *slot = NULL;
	char vdir[4300];
	const char *self = json_string_value(json_object_get(instance, "selfLink"));
	int i;

	if (!sb->vms_ok || self == NULL || vm_slot_of(sb, instance) != NULL)
		return;
	for (i = 0; i < VMS_MAX && slot == NULL; i++)
		if (sb->vms[i].vm == NULL)
			slot = &sb->vms[i];
	if (slot == NULL) {
		log_warn("sandbox: at most %d VMs run at once", VMS_MAX);
		return;
	}
	snprintf(vdir, sizeof(vdir), "%s/vms", sb->dir);
	mkdir(vdir, 0755);
	snprintf(vdir, sizeof(vdir), "%s/vms/%s", sb->dir,
		 json_string_value(json_object_get(instance, "id")));
	memset(&vc, 0, sizeof(vc));
	vc.dir = vdir;
	vc.name = json_string_value(json_object_get(instance, "name"));
	vc.address = json_string_value(json_object_get(instance, "_ip"));
	vc.port = 22;
	vc.ssh_keys = metadata_value(instance, "ssh-keys");
	vc.catalog = sb->catalog;
	if (vm_start(&vc, &slot->vm, &err) != OR_OK) {
		log_warn("sandbox: VM of %s did not start: %s", vc.name, err.message);
		slot->vm = NULL;
		return;
	}
	snprintf(slot->path, sizeof(slot->path), "%s", strstr(self, "projects/"));
}

static void
hook_instance_deleted(void *ctx, json_t *instance)
{
	struct vm_slot *slot = vm_slot_of(ctx, instance);
	struct or_err err;

	if (slot == NULL)
		return;
	vm_stop(slot->vm, &err);
	vm_free(slot->vm);
	slot->vm = NULL;
}

static void
hook_metadata_changed(void *ctx, json_t *instance)
{
	struct vm_slot *slot = vm_slot_of(ctx, instance);
	struct or_err err;
	const char *keys = metadata_value(instance, "ssh-keys");

	if (slot != NULL && vm_set_ssh_keys(slot->vm, keys != NULL ? keys : "", &err) != OR_OK)
		log_warn("sandbox: ssh-keys of %s: %s",
			 json_string_value(json_object_get(instance, "name")), err.message);
}

/* At start-up: every RUNNING instance gets its VM back. */
static void
vms_resume(struct sandbox *sb)
{
	json_t *all, *inst;
	size_t i;

	cloud_lock(sb->cloud);
	all = cloud_list(sb->cloud, "instance", "projects/");
	json_array_foreach(all, i, inst)
		if (strcmp(json_string_value(json_object_get(inst, "status")), "RUNNING") == 0)
			hook_instance_running(sb, inst);
	json_decref(all);
	cloud_unlock(sb->cloud);
}

static void
vms_stop(struct sandbox *sb)
{
	struct or_err err;
	int i;

	for (i = 0; i < VMS_MAX; i++)
		if (sb->vms[i].vm != NULL) {
			vm_stop(sb->vms[i].vm, &err);
			vm_free(sb->vms[i].vm);
			sb->vms[i].vm = NULL;
		}
}

/* At start-up: every RUNNING cluster gets its API back (state is in its
 * directory; the endpoint may move when not root). */
static void
clusters_resume(struct sandbox *sb)
{
	json_t *all, *cl;
	char msg[512];
	size_t i;

	cloud_lock(sb->cloud);
	all = cloud_list(sb->cloud, "cluster", "projects/");
	json_array_foreach(all, i, cl) {
		if (strcmp(json_string_value(json_object_get(cl, "status")), "RUNNING") != 0)
			continue;
		if (cluster_start(sb, cl, msg, sizeof(msg)) != 0)
			log_warn("sandbox: cluster %s: %s",
				 json_string_value(json_object_get(cl, "name")), msg);
		cloud_put(sb->cloud, "cluster",
			  strstr(json_string_value(json_object_get(cl, "selfLink")), "projects/"), cl);
	}
	json_decref(all);
	cloud_unlock(sb->cloud);
}

static void
clusters_stop(struct sandbox *sb)
{
	int i;

	for (i = 0; i < CLUSTERS_MAX; i++)
		if (sb->clusters[i].kube != NULL) {
			mesh_cluster_down(sb->mesh, sb->clusters[i].kube);
			kube_stop(sb->clusters[i].kube);
			kube_free(sb->clusters[i].kube);
			sb->clusters[i].kube = NULL;
		}
}

/* Value of key in an application/x-www-form-urlencoded body (decoded in
 * place into out).  0 when found. */
static int
form_value(const char *body, const char *key, char *out, size_t size)
{
	size_t klen = strlen(key), o = 0;
	const char *p = body, *v;
	unsigned hi, lo;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
			for (v = p + klen + 1; *v != '\0' && *v != '&' && o + 1 < size; v++) {
				if (*v == '+') {
					out[o++] = ' ';
				} else if (*v == '%' && sscanf(v + 1, "%1x%1x", &hi, &lo) == 2) {
					out[o++] = (char)(hi * 16 + lo);
					v += 2;
				} else {
					out[o++] = *v;
				}
			}
			out[o] = '\0';
			return 0;
		}
		p = strchr(p, '&');
		if (p != NULL)
			p++;
	}
	return -1;
}

static json_t *
oauth_error(int *status, const char *error, const char *description)
{
	*status = 400;
	return json_pack("{s:s, s:s}", "error", error, "error_description", description);
}

/* The token endpoint: the JWT-bearer grant, RS256 checked against the
 * sandbox service account's key (RFC 7523, gcp-api.md 3.2). */
static json_t *
token_endpoint(struct sandbox *sb, const char *body, int *status)
{
	static char assertion[16384];
	char grant[128], tok[80], *claims_text = NULL;
	unsigned char raw[24];
	struct or_err err;
	json_t *claims = NULL, *out;
	const char *aud, *iss;
	long long iat, exp, now = cloud_now_ms() / 1000;
	FILE *f;
	size_t i;

	if (body == NULL || form_value(body, "grant_type", grant, sizeof(grant)) != 0 ||
	    strcmp(grant, "urn:ietf:params:oauth:grant-type:jwt-bearer") != 0)
		return oauth_error(status, "unsupported_grant_type",
				   "Only urn:ietf:params:oauth:grant-type:jwt-bearer is supported.");
	if (form_value(body, "assertion", assertion, sizeof(assertion)) != 0)
		return oauth_error(status, "invalid_request", "Missing required parameter: assertion");
	if (pki_jwt_verify_rs256(assertion, sb->sa_public_pem, &claims_text, &err) != OR_OK)
		return oauth_error(status, "invalid_grant", "Invalid JWT Signature.");
	claims = json_loads(claims_text, 0, NULL);
	free(claims_text);
	iss = json_string_value(json_object_get(claims, "iss"));
	aud = json_string_value(json_object_get(claims, "aud"));
	iat = json_integer_value(json_object_get(claims, "iat"));
	exp = json_integer_value(json_object_get(claims, "exp"));
	if (iss == NULL || strcmp(iss, sb->sa_email) != 0) {
		out = oauth_error(status, "invalid_grant", "Invalid issuer: not a known service account.");
	} else if (aud == NULL || (strcmp(aud, sb->token_uri) != 0 &&
				   strcmp(aud, PKI_GOOGLE_TOKEN_URI) != 0)) {
		out = oauth_error(status, "invalid_grant", "Invalid JWT: Token must be a short-lived "
							   "token and in a reasonable timeframe. "
							   "Check your iat and exp values in the JWT claim.");
	} else if (exp <= iat || exp - iat > 3600 || iat > now + 300 || exp < now) {
		out = oauth_error(status, "invalid_grant", "Invalid JWT: Token must be a short-lived "
							   "token (60 minutes) and in a reasonable timeframe. "
							   "Check your iat and exp values in the JWT claim.");
	} else {
		f = fopen("/dev/urandom", "rb");
		if (f == NULL || fread(raw, 1, sizeof(raw), f) != sizeof(raw)) {
			if (f != NULL)
				fclose(f);
			json_decref(claims);
			*status = 500;
			return json_pack("{s:s}", "error", "internal_failure");
		}
		fclose(f);
		snprintf(tok, sizeof(tok), "ya29.c.sandbox-");
		for (i = 0; i < sizeof(raw); i++)
			snprintf(tok + strlen(tok), sizeof(tok) - strlen(tok), "%02x", raw[i]);
		out = json_pack("{s:I, s:s}", "expires_ms",
				(json_int_t)(cloud_now_ms() + 3600 * 1000LL), "account", iss);
		cloud_lock(sb->cloud);
		cloud_put(sb->cloud, "token", tok, out);
		cloud_unlock(sb->cloud);
		json_decref(out);
		*status = 200;
		out = json_pack("{s:s, s:i, s:s}", "access_token", tok, "expires_in", 3599,
				"token_type", "Bearer");
	}
	json_decref(claims);
	return out;
}

/* A download from the mirror: public, like the real sites (no token). */
static enum MHD_Result
send_mirror(struct sandbox *sb, struct MHD_Connection *conn, const char *method,
	    const char *url)
{
	struct mirror_answer a;
	struct MHD_Response *r = NULL;
	struct or_err err;
	enum MHD_Result ret;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		log_request(sb, method, url, 405);
		return send_json(conn, 405, gce_error(405, "badRequest", "downloads are GET only"));
	}
	if (mirror_get(sb->mirror, url, &a, &err) != OR_OK) {
		log_warn("sandbox mirror: %s: %s", url, err.message);
		log_request(sb, method, url, 500);
		return send_json(conn, 500, gce_error(500, "backendError", "%s", err.message));
	}
	if (a.fd >= 0) {
		r = MHD_create_response_from_fd((uint64_t)a.size, a.fd);
		if (r == NULL)
			close(a.fd);
	} else {
		r = MHD_create_response_from_buffer(a.len, a.body, MHD_RESPMEM_MUST_FREE);
		if (r == NULL)
			free(a.body);
	}
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, a.ctype);
	log_request(sb, method, url, a.status);
	ret = MHD_queue_response(conn, (unsigned)a.status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
	   const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct sandbox *sb = cls;
	struct req *r = *con_cls;
	json_t *body = NULL, *out = NULL;
	enum MHD_Result ret;
	int status = 200;

	(void)version;
	if (r == NULL) {
		r = calloc(1, sizeof(*r));
		if (r == NULL)
			return MHD_NO;
		buf_init(&r->body, BODY_MAX);
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_size != 0) {
		if (buf_append(&r->body, upload, *upload_size) != OR_OK)
			r->too_large = 1;
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->too_large) {
		status = 413;
		out = gce_error(413, "badRequest", "request body too large");
		goto answer;
	}
	if (r->body.len > 0 && strcmp(url, "/token") != 0) {
		body = json_loadb(r->body.data, r->body.len, 0, NULL);
		if (body == NULL && strncmp(url, "/compute/", 9) == 0) {
			status = 400;
			out = gce_error(400, "parseError", "Parse Error");
			goto answer;
		}
	}
	if (strncmp(url, "/admin/", 7) == 0) {
		out = admin(sb, method, url, body, &status);
		goto answer;
	}
	if (strncmp(url, "/mirror/", 8) == 0) {
		json_decref(body);
		return send_mirror(sb, conn, method, url);
	}
	if (strcmp(url, "/token") == 0 && strcmp(method, "POST") == 0) {
		out = token_endpoint(sb, r->body.len > 0 ? buf_str(&r->body) : NULL, &status);
		goto answer;
	}
	if (!authorized(sb, conn)) {
		status = 401;
		out = gce_error(401, "authError", "Request had invalid authentication credentials. "
						  "Expected OAuth 2 access token, login cookie or other "
						  "valid authentication credential.");
		goto answer;
	}
	out = fault_for(sb, method, url, &status);
	if (out != NULL)
		goto answer;
	/* Refuse what Google's front end would, before simulating anything
	 * (Service Usage has no document here: not checked). */
	if (sb->disc != NULL && (strncmp(url, "/compute/v1/", 12) == 0 ||
				 (strncmp(url, "/v1/", 4) == 0 && strstr(url, "/services/") == NULL))) {
		struct or_err derr;
		or_rc drc;

		if (r->body.len > 0 && body == NULL) {
			status = 400;
			out = gce_error(400, "parseError", "Invalid JSON payload received.");
			goto answer;
		}
		drc = disc_check(sb->disc, method, url, NULL, body, &derr);
		if (drc != OR_OK) {
			/* Google answers an unknown method on a known path 404. */
			status = drc == OR_E_INVALID ? 400 : 404;
			log_warn("sandbox: %s %s refused by the discovery documents: %s%s%s", method,
				 url, derr.message, derr.field[0] ? " field " : "", derr.field);
			out = gce_error(status, drc == OR_E_INVALID ? "invalid" : "notFound", "%s",
					derr.message);
			goto answer;
		}
	}
	if (strncmp(url, "/compute/v1/", 12) == 0) {
		gce_handle(sb->cloud, method, url + 12, body, &out, &status);
	} else if (strncmp(url, "/v1/projects/", 13) == 0 &&
		   (strstr(url, "/locations/") != NULL || strstr(url, "/zones/") != NULL)) {
		gke_handle(sb->cloud, method, url + 4, body, &out, &status);
	} else if (strncmp(url, "/v1/projects/", 13) == 0 && strstr(url, "/services/") != NULL &&
		   strcmp(method, "GET") == 0) {
		/* Service Usage: every API is enabled in the sandbox. */
		out = json_pack("{s:s, s:s}", "name", url + 4, "state", "ENABLED");
	} else {
		status = 404;
		out = gce_error(404, "notFound", "The requested URL %.200s was not found", url);
	}
answer:
	log_request(sb, method, url, status);
	ret = send_json(conn, status, out);
	json_decref(body);
	return ret;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
	     enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (r == NULL)
		return;
	buf_free(&r->body);
	free(r);
	*con_cls = NULL;
}

/* ---- the command ------------------------------------------------------------ */

static void *
ticker(void *arg)
{
	struct sandbox *sb = arg;
	struct timespec ts = {0, 200 * 1000000L};

	while (!atomic_load(&sb->stopping)) {
		gce_advance(sb->cloud);
		gke_advance(sb->cloud);
		mesh_refresh(sb->mesh, sb->cloud);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* The sandbox's bearer token: made once, kept in DIR/access-token. */
static int
load_token(const char *dir, char *token, size_t size)
{
	char path[4200];
	unsigned char raw[24];
	FILE *f;
	size_t i, n = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/access-token", dir);
	f = fopen(path, "r");
	if (f != NULL) {
		n = fread(token, 1, size - 1, f);
		fclose(f);
		token[n] = '\0';
		while (n > 0 && (token[n - 1] == '\n' || token[n - 1] == '\r'))
			token[--n] = '\0';
		if (n > 0)
			return 0;
	}
	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, raw, sizeof(raw)) != (ssize_t)sizeof(raw)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	snprintf(token, size, "ya29.sandbox-");
	for (i = 0; i < sizeof(raw) && strlen(token) + 3 < size; i++)
		snprintf(token + strlen(token), size - strlen(token), "%02x", raw[i]);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fchmod(fileno(f), 0600);
	fputs(token, f);
	fclose(f);
	return 0;
}

/* The sandbox's service account: its key file made once (0600) in DIR;
 * the public half and the email kept for the token endpoint. */
static int
load_service_account(struct sandbox *sb, const char *dir, const char *project)
{
	char path[4200], *key_json = NULL, *pub = NULL;
	struct or_err err;
	json_t *key;
	FILE *f;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/service-account.json", dir);
	key = json_load_file(path, 0, NULL);
	if (key == NULL) {
		if (pki_sa_key_new(project, "outrigger", sb->token_uri, &key_json, &err) != OR_OK)
			return -1;
		f = fopen(path, "w");
		if (f == NULL) {
			pki_secret_free(key_json);
			return -1;
		}
		fchmod(fileno(f), 0600);
		fputs(key_json, f);
		fclose(f);
		key = json_loads(key_json, 0, NULL);
		pki_secret_free(key_json);
	}
	if (key != NULL &&
	    pki_public_pem_from_private(json_string_value(json_object_get(key, "private_key")), &pub,
					&err) == OR_OK) {
		sb->sa_public_pem = pub;
		sb->sa_email = strdup(json_string_value(json_object_get(key, "client_email")));
		rc = sb->sa_email != NULL ? 0 : -1;
	}
	json_decref(key);
	return rc;
}

static int
write_endpoints(const char *dir, const char *base, const char *project)
{
	char path[4200], tmp[4300], url[512];
	json_t *e;
	int rc;

	e = json_object();
	snprintf(url, sizeof(url), "%s/compute/v1/", base);
	json_object_set_new(e, "compute", json_string(url));
	snprintf(url, sizeof(url), "%s/", base);
	json_object_set_new(e, "container", json_string(url));
	json_object_set_new(e, "serviceusage", json_string(url));
	snprintf(url, sizeof(url), "%s/admin/", base);
	json_object_set_new(e, "admin", json_string(url));
	json_object_set_new(e, "project", json_string(project));
	snprintf(path, sizeof(path), "%s/access-token", dir);
	json_object_set_new(e, "access_token_file", json_string(path));
	snprintf(path, sizeof(path), "%s/service-account.json", dir);
	json_object_set_new(e, "service_account_key_file", json_string(path));
	snprintf(url, sizeof(url), "%s/token", base);
	json_object_set_new(e, "token_uri", json_string(url));
	json_object_set_new(e, "mirrors", mirror_prefixes(base));
	snprintf(path, sizeof(path), "%s/endpoints.json", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	rc = json_dump_file(e, tmp, JSON_INDENT(2));
	json_decref(e);
	if (rc != 0 || rename(tmp, path) != 0)
		return -1;
	return 0;
}

/* The catalog VMs serve: --catalog FILE checked (a bad file stops the
 * start with the reason), or the sandbox's small default; written to
 * path for the VMs to copy. */
static int
write_catalog(const char *from, const char *path)
{
	struct or_err err;
	json_t *doc = NULL;
	size_t len;
	const char *def;
	char tmp[4300];
	int rc;

	if (from != NULL) {
		if (catalog_load(from, &doc, &err) != OR_OK) {
			fprintf(stderr, "outrigger sandbox: --catalog: %s\n", err.message);
			return -1;
		}
	} else {
		def = mirror_asset("catalog/products.json", &len);
		doc = def != NULL ? json_loadb(def, len, 0, NULL) : NULL;
		if (doc == NULL || catalog_check(doc, &err) != OR_OK) {
			fprintf(stderr, "outrigger sandbox: the default catalog is broken\n");
			json_decref(doc);
			return -1;
		}
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	rc = json_dump_file(doc, tmp, JSON_INDENT(2));
	json_decref(doc);
	if (rc != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, "outrigger sandbox: cannot write %s\n", path);
		return -1;
	}
	return 0;
}

static void
usage_exit(const char *msg, const char *arg)
{
	fprintf(stderr, "outrigger sandbox: %s%s%s (see outrigger --help)\n", msg,
		arg != NULL ? " " : "", arg != NULL ? arg : "");
	exit(2);
}

int
sandbox_main(int argc, char **argv)
{
	const char *listen = "127.0.0.1:8090", *dir = NULL, *project = "outrigger-sandbox";
	struct cloud_cfg cc;
	struct sandbox sb;
	struct MHD_Daemon *d = NULL;
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *di;
	struct or_err err;
	pthread_t tick;
	char base[128], host[64], absdir[4096];
	double scale = 1.0;
	unsigned seed = 1, port;
	pid_t parent = 0;
	const char *discovery = NULL, *catalog = NULL;
	sigset_t stop;
	int i, sig, status = 1;

	for (i = 2; i < argc; i++) {
		const char *f = argv[i];

		if (i + 1 >= argc)
			usage_exit("missing value after", f);
		if (strcmp(f, "--listen") == 0)
			listen = argv[++i];
		else if (strcmp(f, "--dir") == 0)
			dir = argv[++i];
		else if (strcmp(f, "--time-scale") == 0) {
			char *end;

			scale = strtod(argv[++i], &end);
			if (*end != '\0' || scale <= 0 || scale > 100)
				usage_exit("--time-scale wants a number in (0, 100], not", argv[i]);
		} else if (strcmp(f, "--seed") == 0)
			seed = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(f, "--project") == 0)
			project = argv[++i];
		else if (strcmp(f, "--discovery") == 0)
			discovery = argv[++i];
		else if (strcmp(f, "--catalog") == 0)
			catalog = argv[++i];
		else if (strcmp(f, "--parent") == 0)
			parent = (pid_t)strtol(argv[++i], NULL, 10);
		else
			usage_exit("unknown option", f);
	}
	if (dir == NULL)
		usage_exit("--dir DIR is required", NULL);
	if (sscanf(listen, "%63[^:]:%u", host, &port) != 2 || port > 65535 ||
	    strncmp(host, "127.", 4) != 0)
		usage_exit("--listen wants 127.x.y.z:PORT (loopback only), not", listen);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		usage_exit("cannot create", dir);
	if (realpath(dir, absdir) == NULL)
		usage_exit("cannot resolve", dir);

	memset(&sb, 0, sizeof(sb));
	pthread_mutex_init(&sb.lock, NULL);
	snprintf(sb.catalog, sizeof(sb.catalog), "%s/catalog.json", absdir);
	if (write_catalog(catalog, sb.catalog) != 0)
		goto out;
	sb.requests = json_array();
	sb.rand_state = seed != 0 ? seed : 1;
	if (load_token(absdir, sb.token, sizeof(sb.token)) != 0) {
		fprintf(stderr, "outrigger sandbox: cannot make the access token in %s\n", absdir);
		goto out;
	}
	if (discovery != NULL) {
		if (disc_load(discovery, &sb.disc, &err) != OR_OK) {
			fprintf(stderr, "outrigger sandbox: --discovery: %s\n", err.message);
			goto out;
		}
		log_info("sandbox: requests checked against %zu methods of the discovery "
			 "documents in %s", disc_method_count(sb.disc), discovery);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		usage_exit("--listen: not an IPv4 address:", host);

	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	/* Embedded in `serve --sandbox`: stop (cleanly, through sigwait)
	 * when the server goes, however it goes. */
	if (parent > 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			goto out;
	}
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
				     MHD_USE_POLL | MHD_USE_ERROR_LOG,
			     0, NULL, NULL, on_request, &sb, MHD_OPTION_SOCK_ADDR, &sa,
			     MHD_OPTION_NOTIFY_COMPLETED, on_completed, &sb,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "outrigger sandbox: cannot listen on %s\n", listen);
		goto out;
	}
	di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	snprintf(base, sizeof(base), "http://%s:%u", host, di != NULL ? di->port : port);

	memset(&cc, 0, sizeof(cc));
	cc.dir = absdir;
	cc.time_scale = scale;
	cc.seed = seed;
	{
		char compute[256];

		snprintf(compute, sizeof(compute), "%s/compute/v1/", base);
		cc.compute_base = compute;
		if (cloud_open(&cc, &sb.cloud, &err) != OR_OK) {
			fprintf(stderr, "outrigger sandbox: %s\n", err.message);
			goto out;
		}
	}
	snprintf(sb.token_uri, sizeof(sb.token_uri), "%s/token", base);
	if (load_service_account(&sb, absdir, project) != 0) {
		fprintf(stderr, "outrigger sandbox: cannot make the service account key in %s\n",
			absdir);
		goto out;
	}
	if (write_endpoints(absdir, base, project) != 0) {
		fprintf(stderr, "outrigger sandbox: cannot write %s/endpoints.json\n", absdir);
		goto out;
	}
	snprintf(sb.dir, sizeof(sb.dir), "%s", absdir);
	sb.time_scale = scale;
	{
		char sub[4200];

		snprintf(sub, sizeof(sub), "%s/mirror", absdir);
		if (mirror_new(sub, &sb.mirror, &err) != OR_OK) {
			fprintf(stderr, "outrigger sandbox: %s\n", err.message);
			goto out;
		}
		snprintf(sub, sizeof(sub), "%s/mesh", absdir);
		if (mesh_new(sub, &sb.mesh, &err) != OR_OK) {
			fprintf(stderr, "outrigger sandbox: %s\n", err.message);
			goto out;
		}
	}
	{
		struct gke_hooks gh = {&sb, hook_cluster_up, hook_cluster_down};

		gke_set_hooks(&gh);
	}
	clusters_resume(&sb);
	{
		struct gce_hooks hh = {&sb, hook_instance_running, hook_instance_deleted,
				       hook_metadata_changed};
		struct or_err verr;

		sb.vms_ok = vm_supported(absdir, NULL, &verr) == OR_OK;
		if (!sb.vms_ok)
			log_warn("sandbox: instances will have no VM (no sshd): %s", verr.message);
		gce_set_hooks(&hh);
	}
	vms_resume(&sb);
	if (pthread_create(&tick, NULL, ticker, &sb) != 0)
		goto out;
	printf("outrigger sandbox listening on %s/ (state in %s)\n", base, absdir);
	fflush(stdout);
	if (sigwait(&stop, &sig) != 0)
		sig = SIGTERM;
	atomic_store(&sb.stopping, 1);
	pthread_join(tick, NULL);
	clusters_stop(&sb);
	vms_stop(&sb);
	status = 0;
out:
	if (d != NULL)
		MHD_stop_daemon(d);
	mesh_free(sb.mesh);
	mirror_free(sb.mirror);
	cloud_close(sb.cloud);
	faults_clear(&sb);
	json_decref(sb.requests);
	free(sb.sa_public_pem);
	free(sb.sa_email);
	disc_free(sb.disc);
	pthread_mutex_destroy(&sb.lock);
	return status;
}

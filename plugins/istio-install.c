/*
 * istio-install.c - the tutorial's "Install Istio" step: download the
 * release, plug in the mesh CA (secret cacerts), render the control plane
 * with the release's own istioctl and apply it, then wait for istiod and
 * the gateway the VM will reach istiod through.
 *
 * Two flows, chosen by the input "flow":
 *   legacy  (Istio 1.6, the 2020 tutorial): profile demo with
 *           values.global.meshExpansion.enabled=true, which opens 15012 on
 *           istio-ingressgateway and routes it to istiod.
 *   current (Istio >= 1.20, istio.io's "Virtual Machine Installation"):
 *           profile demo with meshID/clusterName/network, the east-west
 *           gateway (samples/multicluster/gen-eastwest-gateway.sh piped
 *           into istioctl), samples/multicluster/expose-istiod.yaml, the
 *           Gateway API CRDs and samples/addons.
 *
 * istioctl only renders (`manifest generate`); the host's Kubernetes client
 * applies, as `istioctl install` would, so every object goes through the
 * same server-side apply, logging and retry.  Re-applying converges: the
 * objects are applied again, the namespace and cacerts are adopted when
 * present.  Destroy renders the same documents again (the archive is in the
 * host's cache) and deletes them in reverse, then cacerts and the
 * namespace.  Gateway API CRDs that were there before are never touched.
 *
 * Must never: log or put in an error the CA key; apply anything but what
 * the release renders and the cacerts secret.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rollout.h"

#define ISTIO_RELEASES "https://github.com/istio/istio/releases/download/"
#define GATEWAY_API_CRDS \
	"https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.2.1/standard-install.yaml"
#define GATEWAY_API_CRD_PROBE "gateways.gateway.networking.k8s.io"
#define ARCHIVE_MAX ((size_t)300 << 20)
#define CRDS_MAX ((size_t)16 << 20)
#define WAIT_MS (15L * 60 * 1000)	/* istiod and gateways on a fresh cluster */
#define ISTIOD_PORT "15012"

/* What one attempt works with; every pointer is owned here or by the host. */
struct ii {
	or_host *h;
	const struct or_host_api *api;
	or_kube *k;
	const char *flow;	/* "legacy" | "current" */
	const char *version;
	const char *ns;		/* istio-system */
	char dir[4096];		/* the extracted istio-VERSION/ */
	char istioctl[4200];
};

/* ---- small helpers -------------------------------------------------------- */

static int
is_legacy(const struct ii *c)
{
	return strcmp(c->flow, "legacy") == 0;
}

/* A release version as Istio tags them (1.6.5, 1.29.0, 1.30.0-beta.1): it
 * goes into URLs and paths, so nothing else gets through. */
static int
version_ok(const char *v)
{
	int dots = 0;
	size_t i;

	if (v == NULL || v[0] < '0' || v[0] > '9' || strlen(v) > 40)
		return 0;
	for (i = 0; v[i] != '\0' && v[i] != '-'; i++) {
		if (v[i] == '.')
			dots++;
		else if (v[i] < '0' || v[i] > '9')
			return 0;
	}
	if (dots != 2)
		return 0;
	for (; v[i] != '\0'; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') ||
		      v[i] == '.' || v[i] == '-'))
			return 0;
	return 1;
}

/* The minor number of "1.MINOR.PATCH". */
static int
version_minor(const char *v)
{
	const char *p = strchr(v, '.');

	return p != NULL ? atoi(p + 1) : 0;
}

/* A label value or name of [a-z0-9.-], as Istio's settings want them. */
static int
name_ok(const char *s, size_t max)
{
	size_t i;

	if (s == NULL || strlen(s) > max)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '.' || s[i] == '_'))
			return 0;
	return 1;
}

static char *
b64(const char *s)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(s), i, o = 0;
	const unsigned char *u = (const unsigned char *)s;
	char *out = malloc(4 * ((n + 2) / 3) + 1);

	if (out == NULL)
		return NULL;
	for (i = 0; i + 2 < n; i += 3) {
		out[o++] = tab[u[i] >> 2];
		out[o++] = tab[((u[i] & 3) << 4) | (u[i + 1] >> 4)];
		out[o++] = tab[((u[i + 1] & 15) << 2) | (u[i + 2] >> 6)];
		out[o++] = tab[u[i + 2] & 63];
	}
	if (i < n) {
		out[o++] = tab[u[i] >> 2];
		if (i + 1 < n) {
			out[o++] = tab[((u[i] & 3) << 4) | (u[i + 1] >> 4)];
			out[o++] = tab[(u[i + 1] & 15) << 2];
		} else {
			out[o++] = tab[(u[i] & 3) << 4];
			out[o++] = '=';
		}
		out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

static int
executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* tar(1): /usr/bin/tar, else the first on PATH. */
static int
find_tar(char *out, size_t size)
{
	const char *path = getenv("PATH"), *p, *e;

	snprintf(out, size, "/usr/bin/tar");
	if (executable(out))
		return 0;
	for (p = path; p != NULL && *p != '\0'; p = *e != '\0' ? e + 1 : e) {
		e = strchr(p, ':');
		if (e == NULL)
			e = p + strlen(p);
		if (e > p && (size_t)(e - p) + 5 < size) {
			snprintf(out, size, "%.*s/tar", (int)(e - p), p);
			if (executable(out))
				return 0;
		}
	}
	return -1;
}

/* ---- the release ---------------------------------------------------------- */

/* Download istio-V-linux-amd64.tar.gz (checked against the published
 * .sha256) and unpack it into the attempt's workdir. */
static int
release_unpack(struct ii *c)
{
	const char *archive, *work;
	char url[512], sha[520], tar[4096], *out = NULL;
	const char *argv[8];
	int st;

	snprintf(url, sizeof(url), ISTIO_RELEASES "%s/istio-%s-linux-amd64.tar.gz", c->version,
		 c->version);
	snprintf(sha, sizeof(sha), "%s.sha256", url);
	c->api->progress(c->h, 5, "downloading Istio");
	archive = c->api->fetch(c->h, url, NULL, sha, ARCHIVE_MAX);
	if (archive == NULL)
		return -1;
	work = c->api->workdir(c->h);
	if (work == NULL)
		return -1;
	if (find_tar(tar, sizeof(tar)) != 0) {
		c->api->fail(c->h, "environment",
			     "tar(1) is needed to unpack the Istio release and is not installed "
			     "(neither /usr/bin/tar nor on PATH)");
		return -1;
	}
	argv[0] = tar;
	argv[1] = "-xzf";
	argv[2] = archive;
	argv[3] = "--no-same-owner";
	argv[4] = "-C";
	argv[5] = work;
	argv[6] = NULL;
	st = c->api->run(c->h, argv, work, &out);
	free(out);
	if (st != 0) {
		if (st > 0)
			c->api->fail(c->h, "download", "tar could not unpack %s (exit %d)", url, st);
		return -1;
	}
	snprintf(c->dir, sizeof(c->dir), "%s/istio-%s", work, c->version);
	snprintf(c->istioctl, sizeof(c->istioctl), "%s/bin/istioctl", c->dir);
	if (!executable(c->istioctl)) {
		c->api->fail(c->h, "download", "the Istio %s archive has no bin/istioctl",
			     c->version);
		return -1;
	}
	/* The archive must be the release it claims to be. */
	argv[0] = c->istioctl;
	argv[1] = "version";
	argv[2] = "--remote=false";
	argv[3] = NULL;
	out = NULL;
	st = c->api->run(c->h, argv, c->dir, &out);
	if (st == 0 && out != NULL)
		out[strcspn(out, "\r\n")] = '\0';
	if (st != 0 || out == NULL || strcmp(out, c->version) != 0) {
		if (st >= 0)
			c->api->fail(c->h, "download", "istioctl of the %s archive says its version "
				     "is \"%.40s\"", c->version, out != NULL ? out : "");
		free(out);
		return -1;
	}
	free(out);
	c->api->log(c->h, OR_LOG_INFO, "Istio %s unpacked; istioctl version %s", c->version,
		    c->version);
	return 0;
}

/* Run istioctl (or a sample script) with args; its stdout into *out. */
static int
run_tool(struct ii *c, const char *const *argv, char **out)
{
	const char *base = strrchr(argv[0], '/');
	int st = c->api->run(c->h, argv, c->dir, out);

	if (st != 0) {
		if (st > 0)
			c->api->fail(c->h, "istioctl", "%s %s failed (exit %d); its messages are in "
				     "the log", base != NULL ? base + 1 : argv[0],
				     argv[1] != NULL ? argv[1] : "", st);
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/* The control plane: `istioctl manifest generate` with the flow's
 * settings (what the tutorial passes to `istioctl install`). */
static char *
render_control_plane(struct ii *c)
{
	const char *argv[24], *profile = c->api->input(c->h, "profile");
	const char *mesh_id = c->api->input(c->h, "mesh_id");
	const char *cluster_id = c->api->input(c->h, "cluster_id");
	const char *network = c->api->input(c->h, "network");
	char set_profile[96], set_mesh[160], set_cluster[160], set_net[160];
	char *out = NULL;
	int n = 0;

	snprintf(set_profile, sizeof(set_profile), "profile=%s",
		 profile != NULL && profile[0] != '\0' ? profile : "demo");
	argv[n++] = c->istioctl;
	argv[n++] = "manifest";
	argv[n++] = "generate";
	argv[n++] = "--set";
	argv[n++] = set_profile;
	if (is_legacy(c)) {
		if (in_bool(c->h, c->api, "mesh_expansion", 1)) {
			argv[n++] = "--set";
			argv[n++] = "values.global.meshExpansion.enabled=true";
		}
	} else {
		if (mesh_id != NULL && mesh_id[0] != '\0') {
			snprintf(set_mesh, sizeof(set_mesh), "values.global.meshID=%s", mesh_id);
			argv[n++] = "--set";
			argv[n++] = set_mesh;
		}
		if (cluster_id != NULL && cluster_id[0] != '\0') {
			snprintf(set_cluster, sizeof(set_cluster),
				 "values.global.multiCluster.clusterName=%s", cluster_id);
			argv[n++] = "--set";
			argv[n++] = set_cluster;
		}
		if (network != NULL && network[0] != '\0') {
			snprintf(set_net, sizeof(set_net), "values.global.network=%s", network);
			argv[n++] = "--set";
			argv[n++] = set_net;
		}
	}
	argv[n] = NULL;
	if (run_tool(c, argv, &out) != 0)
		return NULL;
	return out;
}

/* The east-west gateway: the sample script's IstioOperator, rendered by
 * istioctl (`gen-eastwest-gateway.sh --single-cluster | istioctl install
 * -f -` in the docs). */
static char *
render_eastwest(struct ii *c)
{
	const char *network = c->api->input(c->h, "network");
	const char *argv[8];
	char script[4300], iop[4300], *op = NULL, *out = NULL;
	FILE *f;
	int n = 0;

	snprintf(script, sizeof(script), "%s/samples/multicluster/gen-eastwest-gateway.sh", c->dir);
	if (!executable(script)) {
		c->api->fail(c->h, "istio", "Istio %s has no "
			     "samples/multicluster/gen-eastwest-gateway.sh", c->version);
		return NULL;
	}
	argv[n++] = script;
	if (network != NULL && network[0] != '\0') {
		argv[n++] = "--network";
		argv[n++] = network;
	} else {
		argv[n++] = "--single-cluster";
	}
	argv[n] = NULL;
	if (run_tool(c, argv, &op) != 0)
		return NULL;
	snprintf(iop, sizeof(iop), "%s/eastwest-gateway.yaml", c->api->workdir(c->h));
	f = fopen(iop, "w");
	if (f == NULL || fputs(op, f) < 0 || fclose(f) != 0) {
		c->api->fail(c->h, "io", "cannot write %s: %s", iop, strerror(errno));
		free(op);
		return NULL;
	}
	free(op);
	argv[0] = c->istioctl;
	argv[1] = "manifest";
	argv[2] = "generate";
	argv[3] = "-f";
	argv[4] = iop;
	argv[5] = NULL;
	if (run_tool(c, argv, &out) != 0)
		return NULL;
	return out;
}

/* A file of the release (samples/...); NULL when the release has none. */
static char *
release_file(struct ii *c, const char *rel)
{
	char path[4400];

	snprintf(path, sizeof(path), "%s/%s", c->dir, rel);
	return slurp(path, (size_t)16 << 20);
}

/* Everything this step applies from the release, in order: what destroy
 * deletes in reverse.  docs[i] malloc'd, what[i] says which for the log. */
#define MAX_DOCS 12
struct docs {
	int n;
	char *text[MAX_DOCS];
	char what[MAX_DOCS][200];
};

static void
docs_free(struct docs *d)
{
	int i;

	for (i = 0; i < d->n; i++)
		free(d->text[i]);
	d->n = 0;
}

static void
docs_add(struct docs *d, char *text, const char *what)
{
	if (d->n >= MAX_DOCS || text == NULL) {
		free(text);
		return;
	}
	d->text[d->n] = text;
	snprintf(d->what[d->n], sizeof(d->what[d->n]), "%s", what);
	d->n++;
}

static int
render_all(struct ii *c, struct docs *d)
{
	json_t *addons;
	size_t i;
	char rel[200], *t;
	const char *name;

	memset(d, 0, sizeof(*d));
	t = render_control_plane(c);
	if (t == NULL)
		return -1;
	snprintf(rel, sizeof(rel), "the Istio %s control plane", c->version);
	docs_add(d, t, rel);
	if (is_legacy(c))
		return 0;
	if (in_bool(c->h, c->api, "east_west_gateway", 1)) {
		t = render_eastwest(c);
		if (t == NULL)
			return -1;
		docs_add(d, t, "the east-west gateway");
	}
	if (in_bool(c->h, c->api, "expose_istiod", 1)) {
		t = release_file(c, "samples/multicluster/expose-istiod.yaml");
		if (t == NULL) {
			c->api->fail(c->h, "istio", "Istio %s has no "
				     "samples/multicluster/expose-istiod.yaml", c->version);
			return -1;
		}
		docs_add(d, t, "samples/multicluster/expose-istiod.yaml");
	}
	addons = in_json(c->h, c->api, "addons");
	for (i = 0; i < json_array_size(addons); i++) {
		name = json_string_value(json_array_get(addons, i));
		if (name == NULL || !name_ok(name, 63))
			continue;
		snprintf(rel, sizeof(rel), "samples/addons/%s.yaml", name);
		t = release_file(c, rel);
		if (t == NULL) {
			/* Not every release ships every addon; the tutorial's
			 * own steps only need Kiali. */
			c->api->log(c->h, OR_LOG_WARN, "Istio %s has no %s: addon %s skipped",
				    c->version, rel, name);
			continue;
		}
		docs_add(d, t, rel);
	}
	json_decref(addons);
	return 0;
}

/* ---- inputs --------------------------------------------------------------- */

static or_status
ii_init(struct ii *c, or_host *h, const struct or_host_api *api)
{
	const char *v;

	memset(c, 0, sizeof(*c));
	c->h = h;
	c->api = api;
	if (api->minor < 1) {
		api->fail(h, "abi", "istio-install needs a host with ABI minor 1 or later");
		return OR_STATUS_FAILED;
	}
	c->flow = api->input(h, "flow");
	if (c->flow == NULL || c->flow[0] == '\0')
		c->flow = "current";
	if (strcmp(c->flow, "legacy") != 0 && strcmp(c->flow, "current") != 0) {
		api->fail(h, "input", "flow must be \"legacy\" or \"current\", not \"%.40s\"",
			  c->flow);
		return OR_STATUS_FAILED;
	}
	c->version = api->input(h, "version");
	if (later(h, api, c->version)) {
		/* a plan before the step that makes the version: not checked */
		c->version = NOT_YET;
	} else if ((c->version = need(h, api, "version")) == NULL) {
		return OR_STATUS_FAILED;
	} else if (!version_ok(c->version)) {
		api->fail(h, "input", "version \"%.40s\" is not an Istio release such as 1.29.0",
			  c->version);
		return OR_STATUS_FAILED;
	} else if (is_legacy(c) && version_minor(c->version) > 8) {
		/* meshExpansion was removed in 1.9 (notes §0.4). */
		api->fail(h, "input", "the legacy flow (mesh expansion) needs Istio 1.8 or older; "
			  "%s is the current flow's", c->version);
		return OR_STATUS_FAILED;
	} else if (!is_legacy(c) && version_minor(c->version) < 9) {
		api->fail(h, "input", "the current flow needs Istio 1.9 or newer (east-west "
			  "gateway, WorkloadGroup); use the legacy flow for %s", c->version);
		return OR_STATUS_FAILED;
	}
	c->ns = api->input(h, "namespace");
	if (c->ns == NULL || c->ns[0] == '\0')
		c->ns = "istio-system";
	if (strcmp(c->ns, "istio-system") != 0) {
		/* istioctl renders istio-system; another namespace would also
		 * need values.global.istioNamespace on every component. */
		api->fail(h, "input", "namespace must be istio-system");
		return OR_STATUS_FAILED;
	}
	v = api->input(h, "network");
	if (v != NULL && !later(h, api, v) && !name_ok(v, 63)) {
		api->fail(h, "input", "network must be letters, digits, '-', '.' or '_'");
		return OR_STATUS_FAILED;
	}
	v = api->input(h, "mesh_id");
	if (v != NULL && !later(h, api, v) && !name_ok(v, 63)) {
		api->fail(h, "input", "mesh_id must be letters, digits, '-', '.' or '_'");
		return OR_STATUS_FAILED;
	}
	v = api->input(h, "cluster_id");
	if (v != NULL && !later(h, api, v) && !name_ok(v, 63)) {
		api->fail(h, "input", "cluster_id must be letters, digits, '-', '.' or '_'");
		return OR_STATUS_FAILED;
	}
	/* A plan may come before the cluster exists. */
	if ((!later(h, api, api->input(h, "endpoint")) && need(h, api, "endpoint") == NULL) ||
	    (!later(h, api, api->input(h, "ca_certificate")) &&
	     need(h, api, "ca_certificate") == NULL))
		return OR_STATUS_FAILED;
	return OR_STATUS_OK;
}

static int
ii_open(struct ii *c)
{
	c->k = kube_from_inputs(c->h, c->api);
	return c->k != NULL ? 0 : -1;
}

/* The gateway the VM reaches istiod through. */
static const char *
gateway_name(struct ii *c)
{
	if (is_legacy(c) || !in_bool(c->h, c->api, "east_west_gateway", 1))
		return "istio-ingressgateway";
	return "istio-eastwestgateway";
}

/* ---- apply ---------------------------------------------------------------- */

/* kubectl create namespace istio-system (adopted when it is there). */
static int
ensure_namespace(struct ii *c)
{
	char path[200];
	json_t *ns;

	snprintf(path, sizeof(path), "/api/v1/namespaces/%s", c->ns);
	if (kube_get(c->api, c->k, path, NULL) == 200)
		c->api->log(c->h, OR_LOG_INFO, "namespace %s exists: adopted", c->ns);
	ns = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}}", "apiVersion", "v1", "kind", "Namespace",
		       "metadata", "name", c->ns, "labels", OWNER_LABEL,
		       env_name(c->h, c->api) != NULL ? env_name(c->h, c->api) : "");
	return kube_apply_json(c->h, c->api, c->k, ns, c->ns);
}

/* The plugged-in CA (istio.io "Plug in CA Certificates"): secret cacerts
 * with ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem.  When a
 * different CA was there and istiod runs, istiod is restarted, since it
 * reads cacerts at start. */
static int
ensure_cacerts(struct ii *c)
{
	const char *ca = need(c->h, c->api, "ca_cert"), *root = need(c->h, c->api, "root_cert");
	const char *chain = need(c->h, c->api, "cert_chain");
	const char *ref = need(c->h, c->api, "ca_key_ref"), *key;
	char path[256], *e_ca = NULL, *e_key = NULL, *e_root = NULL, *e_chain = NULL;
	const char *old;
	json_t *sec = NULL, *cur = NULL;
	int rc = -1, changed = 0;

	if (ca == NULL || root == NULL || chain == NULL || ref == NULL)
		return -1;
	key = c->api->secret_get(c->h, ref);
	if (key == NULL || key[0] == '\0') {
		c->api->fail(c->h, "input", "the secret named by ca_key_ref is not in this "
			     "environment");
		return -1;
	}
	e_ca = b64(ca);
	e_key = b64(key);
	e_root = b64(root);
	e_chain = b64(chain);
	if (e_ca == NULL || e_key == NULL || e_root == NULL || e_chain == NULL) {
		c->api->fail(c->h, "nomem", "out of memory");
		goto out;
	}
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/cacerts", c->ns);
	if (kube_get(c->api, c->k, path, &cur) == 200) {
		old = json_string_value(json_object_get(json_object_get(cur, "data"), "ca-cert.pem"));
		changed = old == NULL || strcmp(old, e_ca) != 0;
		c->api->log(c->h, OR_LOG_INFO, "secret %s/cacerts exists%s", c->ns,
			    changed ? " with another CA: replaced" : ": same CA, adopted");
	}
	sec = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:s, s:{s:s, s:s, s:s, s:s}}",
			"apiVersion", "v1", "kind", "Secret", "metadata", "name", "cacerts",
			"namespace", c->ns, "labels", OWNER_LABEL,
			env_name(c->h, c->api) != NULL ? env_name(c->h, c->api) : "", "type", "Opaque",
			"data", "ca-cert.pem", e_ca, "ca-key.pem", e_key, "root-cert.pem", e_root,
			"cert-chain.pem", e_chain);
	if (kube_apply_json(c->h, c->api, c->k, sec, c->ns) != 0)
		goto out;
	c->api->log(c->h, OR_LOG_INFO, "secret %s/cacerts holds the mesh CA", c->ns);
	if (changed) {
		struct or_http_response r = {0};
		char body[200];

		snprintf(path, sizeof(path), "/apis/apps/v1/namespaces/%s/deployments/istiod", c->ns);
		snprintf(body, sizeof(body), "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":"
			 "{\"outrigger/cacerts-changed\":\"%ld\"}}}}}", (long)time(NULL));
		if (c->api->kube_request(c->k, "PATCH", path, "application/merge-patch+json", body,
					 &r) == 0 && r.status == 200)
			c->api->log(c->h, OR_LOG_INFO, "istiod restarted to load the new CA");
		c->api->http_free(&r);
	}
	rc = 0;
out:
	if (e_key != NULL)
		memset(e_key, 0, strlen(e_key));
	free(e_ca);
	free(e_key);
	free(e_root);
	free(e_chain);
	json_decref(cur);
	return rc;
}

/* Gateway API's CRDs (istio.io: "Gateway API CRDs are not installed by
 * default on most Kubernetes clusters").  Installed only when absent; the
 * state remembers that this environment installed them, so destroy
 * removes only its own. */
static int
ensure_gateway_api(struct ii *c)
{
	const char *mine = c->api->state_get(c->h, "gateway_api_crds"), *file;
	int ours = mine != NULL && strcmp(mine, "installed") == 0;
	char *text;
	int n;

	if (!ours &&
	    kube_get(c->api, c->k,
		     "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/" GATEWAY_API_CRD_PROBE,
		     NULL) == 200) {
		c->api->log(c->h, OR_LOG_INFO, "the Gateway API CRDs are already installed: "
			    "kept as they are");
		return 0;
	}
	/* Recorded before applying, so an attempt that dies half way is
	 * still known to be the one that installed them. */
	if (!ours && c->api->state_set(c->h, "gateway_api_crds", "installed") != 0) {
		c->api->fail(c->h, "state", "cannot record the Gateway API CRDs");
		return -1;
	}
	file = c->api->fetch(c->h, GATEWAY_API_CRDS, NULL, NULL, CRDS_MAX);
	if (file == NULL)
		return -1;
	text = slurp(file, CRDS_MAX);
	if (text == NULL) {
		c->api->fail(c->h, "io", "cannot read the downloaded Gateway API CRDs");
		return -1;
	}
	n = c->api->kube_apply(c->k, text, NULL);
	free(text);
	if (n < 0)
		return -1;
	c->api->log(c->h, OR_LOG_INFO, "Gateway API CRDs v1.2.1: %d objects applied", n);
	return 0;
}

static void
log_found(struct ii *c)
{
	json_t *d = NULL;
	const char *img;
	char path[200];

	snprintf(path, sizeof(path), "/apis/apps/v1/namespaces/%s/deployments/istiod", c->ns);
	if (kube_get(c->api, c->k, path, &d) != 200)
		return;
	img = json_string_value(json_object_get(
		json_array_get(json_object_get(json_object_get(json_object_get(json_object_get(
				   d, "spec"), "template"), "spec"), "containers"), 0),
		"image"));
	c->api->log(c->h, OR_LOG_INFO, "istiod is already installed (%s): converging to %s",
		    img != NULL ? img : "image unknown", c->version);
	json_decref(d);
}

static or_status
status_of_failure(struct ii *c)
{
	return c->api->cancelled(c->h) ? OR_STATUS_CANCELLED : OR_STATUS_RETRY;
}

static or_status
ii_apply(or_host *h, const struct or_host_api *api)
{
	struct ii c;
	struct docs d = {0};
	char ip[64], addr[96], host[128], num[16];
	const char *v;
	or_status st;
	int i, n;

	st = ii_init(&c, h, api);
	if (st != OR_STATUS_OK)
		return st;
	if (ii_open(&c) != 0)
		return OR_STATUS_FAILED;
	st = OR_STATUS_FAILED;
	if (release_unpack(&c) != 0) {
		st = status_of_failure(&c);
		goto out;
	}
	log_found(&c);

	/* kubectl create namespace istio-system; kubectl create secret
	 * generic cacerts -n istio-system --from-file=... */
	api->progress(h, 20, "namespace and the mesh CA");
	if (ensure_namespace(&c) != 0 || ensure_cacerts(&c) != 0) {
		st = status_of_failure(&c);
		goto out;
	}
	if (!is_legacy(&c) && in_bool(h, api, "gateway_api_crds", 1) &&
	    ensure_gateway_api(&c) != 0) {
		st = status_of_failure(&c);
		goto out;
	}

	/* istioctl install --set profile=demo ... (rendered, then applied). */
	api->progress(h, 35, "rendering Istio");
	if (render_all(&c, &d) != 0)
		goto out;
	for (i = 0; i < d.n; i++) {
		api->progress(h, 40 + 30 * i / d.n, d.what[i]);
		n = api->kube_apply(c.k, d.text[i], c.ns);
		if (n < 0) {
			st = status_of_failure(&c);
			goto out;
		}
		api->log(h, OR_LOG_INFO, "%s: %d objects applied", d.what[i], n);
	}

	/* kubectl -n istio-system get pods: everything available; then the
	 * gateway's address (the tutorial's ISTIOD_IP / GWIP). */
	api->progress(h, 75, "waiting for istiod and the gateways");
	if (api->kube_wait(c.k, "deployments", c.ns, NULL, WAIT_MS, NULL, 0) != 0) {
		st = status_of_failure(&c);
		goto out;
	}
	api->progress(h, 90, "waiting for the gateway's address");
	if (api->kube_wait(c.k, "loadbalancer", c.ns, gateway_name(&c), WAIT_MS, ip,
			   sizeof(ip)) != 0) {
		st = status_of_failure(&c);
		goto out;
	}
	snprintf(addr, sizeof(addr), "%s:" ISTIOD_PORT, ip);
	snprintf(host, sizeof(host), "istiod.%s.svc", c.ns);
	api->log(h, OR_LOG_INFO, "istiod is reachable for VMs at %s (%s, through %s)", addr, host,
		 gateway_name(&c));
	api->output(h, "namespace", c.ns);
	v = api->input(h, "cluster_id");
	/* Istio's default cluster name when none is set. */
	api->output(h, "cluster_id", v != NULL && v[0] != '\0' ? v : "Kubernetes");
	v = api->input(h, "mesh_id");
	api->output(h, "mesh_id", v != NULL && v[0] != '\0' ? v : "cluster.local");
	v = api->input(h, "trust_domain");
	api->output(h, "trust_domain", v != NULL && v[0] != '\0' ? v : "cluster.local");
	v = api->input(h, "network");
	api->output(h, "network", v != NULL ? v : "");
	api->output(h, "istiod_host", host);
	api->output(h, "istiod_address", addr);
	api->output(h, "gateway_ip", ip);
	api->output(h, "gateway_service", gateway_name(&c));
	if (is_legacy(&c))
		api->output(h, "ingress_ip", ip);
	api->output(h, "version", c.version);
	snprintf(num, sizeof(num), "%d", d.n);
	api->output(h, "manifests", num);
	api->progress(h, 100, "Istio is installed");
	st = OR_STATUS_OK;
out:
	docs_free(&d);
	api->kube_close(c.k);
	return st;
}

/* ---- destroy -------------------------------------------------------------- */

static or_status
ii_destroy(or_host *h, const struct or_host_api *api)
{
	struct ii c;
	struct docs d = {0};
	char path[256], *text;
	const char *file;
	or_status st;
	int i, n;

	st = ii_init(&c, h, api);
	if (st != OR_STATUS_OK)
		return st;
	if (ii_open(&c) != 0)
		return OR_STATUS_FAILED;
	st = OR_STATUS_FAILED;
	/* `istioctl uninstall --purge`, done as `istioctl manifest generate |
	 * kubectl delete -f -`: the same documents, newest first. */
	if (release_unpack(&c) != 0) {
		st = status_of_failure(&c);
		goto out;
	}
	if (render_all(&c, &d) != 0)
		goto out;
	for (i = d.n - 1; i >= 0; i--) {
		api->progress(h, 10 + 60 * (d.n - 1 - i) / d.n, d.what[i]);
		n = api->kube_delete(c.k, d.text[i], c.ns);
		if (n < 0) {
			st = status_of_failure(&c);
			goto out;
		}
		api->log(h, OR_LOG_INFO, "%s: %d objects deleted", d.what[i], n);
	}
	if (!is_legacy(&c) && api->state_get(h, "gateway_api_crds") != NULL &&
	    strcmp(api->state_get(h, "gateway_api_crds"), "installed") == 0) {
		file = api->fetch(h, GATEWAY_API_CRDS, NULL, NULL, CRDS_MAX);
		text = file != NULL ? slurp(file, CRDS_MAX) : NULL;
		if (text == NULL) {
			if (file != NULL)
				api->fail(h, "io", "cannot read the downloaded Gateway API CRDs");
			st = status_of_failure(&c);
			goto out;
		}
		n = api->kube_delete(c.k, text, NULL);
		free(text);
		if (n < 0) {
			st = status_of_failure(&c);
			goto out;
		}
		api->log(h, OR_LOG_INFO, "Gateway API CRDs: %d objects deleted", n);
		if (api->state_set(h, "gateway_api_crds", "removed") != 0) {
			api->fail(h, "state", "cannot record the Gateway API CRDs' removal");
			goto out;
		}
	}
	api->progress(h, 80, "the mesh CA and the namespace");
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/cacerts", c.ns);
	if (kube_del(h, api, c.k, path, "secret istio-system/cacerts") != 0) {
		st = status_of_failure(&c);
		goto out;
	}
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s", c.ns);
	if (kube_del(h, api, c.k, path, "namespace istio-system") != 0) {
		st = status_of_failure(&c);
		goto out;
	}
	api->progress(h, 100, "Istio is uninstalled");
	st = OR_STATUS_OK;
out:
	docs_free(&d);
	api->kube_close(c.k);
	return st;
}

/* ---- plan ----------------------------------------------------------------- */

/* What apply would do; changes nothing.  The inputs are checked as apply
 * checks them, except those earlier steps have not made yet; the cluster
 * is looked at (read only) when it exists. */
static or_status
ii_plan(or_host *h, const struct or_host_api *api)
{
	struct ii c;
	char what[600], path[200];
	const char *profile = api->input(h, "profile"), *v, *pre = "";
	json_t *addons;
	size_t i, o;
	long st = -1;

	if (ii_init(&c, h, api) != OR_STATUS_OK)
		return OR_STATUS_FAILED;
	if (profile == NULL || profile[0] == '\0')
		profile = "demo";
	if (is_legacy(&c)) {
		o = (size_t)snprintf(what, sizeof(what), "legacy flow: profile %s with mesh "
				     "expansion, istiod reached through istio-ingressgateway:"
				     ISTIOD_PORT, profile);
	} else {
		v = api->input(h, "mesh_id");
		o = (size_t)snprintf(what, sizeof(what), "current flow: profile %s, mesh %s, "
				     "cluster %s", profile, v != NULL && v[0] ? v : "(default)",
				     api->input(h, "cluster_id") != NULL ? api->input(h, "cluster_id")
									 : "(default)");
		if (in_bool(h, api, "east_west_gateway", 1) && o < sizeof(what))
			o += (size_t)snprintf(what + o, sizeof(what) - o, ", east-west gateway");
		if (in_bool(h, api, "expose_istiod", 1) && o < sizeof(what))
			o += (size_t)snprintf(what + o, sizeof(what) - o, ", istiod exposed to VMs");
		if (in_bool(h, api, "gateway_api_crds", 1) && o < sizeof(what))
			o += (size_t)snprintf(what + o, sizeof(what) - o,
					      ", Gateway API CRDs v1.2.1 when absent");
		addons = in_json(h, api, "addons");
		for (i = 0; i < json_array_size(addons) && o < sizeof(what); i++)
			o += (size_t)snprintf(what + o, sizeof(what) - o, "%s%s",
					      i == 0 ? ", addons " : ", ",
					      json_string_value(json_array_get(addons, i)) != NULL
						      ? json_string_value(json_array_get(addons, i))
						      : "?");
		json_decref(addons);
	}
	c.k = plan_kube(h, api);
	if (c.k == NULL) {
		pre = "the cluster does not exist yet: ";
	} else {
		snprintf(path, sizeof(path), "/apis/apps/v1/namespaces/%s/deployments/istiod", c.ns);
		st = kube_get(api, c.k, path, NULL);
		api->kube_close(c.k);
		if (st == 0)
			pre = "the cluster does not answer: ";
	}
	api->log(h, OR_LOG_INFO, "%swould install Istio %s (%s) in %s with the mesh CA as "
		 "cacerts%s, then wait for istiod and the address of %s", pre, c.version, what,
		 c.ns, st == 200 ? " (istiod is there already: would apply over it)" : "",
		 gateway_name(&c));
	return OR_STATUS_OK;
}

static const struct or_plugin istio_install = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = 1,
	.name = "istio-install",
	.summary = "Install Istio on a GKE cluster with a plugged-in mesh CA and a gateway for VMs "
		   "to reach istiod",
	.inputs_schema =
		"{"
		"\"flow\": {\"type\": \"string\", \"description\": \"legacy (Istio 1.6 mesh expansion)"
		" or current (east-west gateway)\"},"
		"\"endpoint\": {\"type\": \"string\", \"required\": true, \"description\": \"The "
		"cluster's API endpoint\"},"
		"\"ca_certificate\": {\"type\": \"string\", \"required\": true, \"description\": "
		"\"The cluster's CA (PEM or base64 of PEM)\"},"
		"\"version\": {\"type\": \"string\", \"required\": true, \"description\": \"Istio "
		"release, e.g. 1.29.0\"},"
		"\"profile\": {\"type\": \"string\", \"description\": \"istioctl profile (demo)\"},"
		"\"namespace\": {\"type\": \"string\", \"description\": \"istio-system\"},"
		"\"mesh_expansion\": {\"type\": \"boolean\", \"description\": \"legacy: "
		"values.global.meshExpansion.enabled\"},"
		"\"mesh_id\": {\"type\": \"string\", \"description\": \"values.global.meshID\"},"
		"\"cluster_id\": {\"type\": \"string\", \"description\": "
		"\"values.global.multiCluster.clusterName\"},"
		"\"network\": {\"type\": \"string\", \"description\": \"values.global.network\"},"
		"\"trust_domain\": {\"type\": \"string\", \"description\": \"The mesh's trust "
		"domain (cluster.local)\"},"
		"\"east_west_gateway\": {\"type\": \"boolean\", \"description\": \"current: install "
		"istio-eastwestgateway\"},"
		"\"expose_istiod\": {\"type\": \"boolean\", \"description\": \"current: apply "
		"samples/multicluster/expose-istiod.yaml\"},"
		"\"gateway_api_crds\": {\"type\": \"boolean\", \"description\": \"current: install "
		"Gateway API v1.2.1 CRDs when absent\"},"
		"\"addons\": {\"type\": \"array\", \"description\": \"current: samples/addons to "
		"apply, e.g. [\\\"prometheus\\\", \\\"kiali\\\"]\"},"
		"\"root_cert\": {\"type\": \"string\", \"required\": true, \"description\": \"Mesh "
		"root certificate (PEM)\"},"
		"\"ca_cert\": {\"type\": \"string\", \"required\": true, \"description\": \"Mesh "
		"intermediate CA certificate (PEM)\"},"
		"\"cert_chain\": {\"type\": \"string\", \"required\": true, \"description\": "
		"\"Intermediate's chain to the root (PEM)\"},"
		"\"ca_key_ref\": {\"type\": \"string\", \"required\": true, \"description\": "
		"\"Name of the secret holding the intermediate's key\"}"
		"}",
	.outputs_schema =
		"{"
		"\"namespace\": {\"type\": \"string\", \"description\": \"istio-system\"},"
		"\"cluster_id\": {\"type\": \"string\", \"description\": \"The mesh's name for the "
		"cluster\"},"
		"\"mesh_id\": {\"type\": \"string\", \"description\": \"The mesh ID\"},"
		"\"trust_domain\": {\"type\": \"string\", \"description\": \"The trust domain\"},"
		"\"network\": {\"type\": \"string\", \"description\": \"The cluster's network\"},"
		"\"istiod_host\": {\"type\": \"string\", \"description\": "
		"\"istiod.istio-system.svc\"},"
		"\"istiod_address\": {\"type\": \"string\", \"description\": \"GATEWAY_IP:15012, "
		"where VMs reach istiod\"},"
		"\"gateway_ip\": {\"type\": \"string\", \"description\": \"The load balancer IP of "
		"the gateway to istiod\"},"
		"\"gateway_service\": {\"type\": \"string\", \"description\": \"That gateway's "
		"Service\"},"
		"\"ingress_ip\": {\"type\": \"string\", \"description\": \"legacy: "
		"istio-ingressgateway's IP\"},"
		"\"version\": {\"type\": \"string\", \"description\": \"The Istio release\"},"
		"\"manifests\": {\"type\": \"string\", \"description\": \"How many manifests were "
		"applied\"}"
		"}",
	.capabilities = OR_CAP_PLAN | OR_CAP_DESTROY,
	.plan = ii_plan,
	.apply = ii_apply,
	.destroy = ii_destroy,
	.check = NULL,
};

OR_PLUGIN_EXPORT(istio_install)

/*
 * boutique-deploy.c - the tutorial's Online Boutique steps:
 *
 *     kubectl label namespace default istio-injection=enabled
 *     kubectl apply -f release/kubernetes-manifests.yaml
 *     kubectl delete deployment productcatalogservice   (it moves to the VM)
 *     kubectl delete svc productcatalogservice          (legacy only)
 *     kubectl apply -f release/istio-manifests.yaml
 *
 * The release files come from the real upstream URLs through fetch() (the
 * host maps them to the provider's mirror).  Legacy (Istio 1.6, Online
 * Boutique <= v0.5.2): the moved service's Service goes too, because
 * `istioctl add-to-mesh` refuses an existing one.  Current: the Service
 * stays and selects the WorkloadEntry that mesh-register makes.
 *
 * Idempotent: the moved service's documents are left out of the apply (so
 * a second run does not bring them back, nor touch the Service that
 * mesh-register made in their place) and deleted explicitly (404 fine).
 * Destroy deletes both files' objects (the moved ones excepted) and takes
 * back the injection label; a namespace it created is deleted.
 */
#include "rollout.h"

#define BOUTIQUE_BASE "https://raw.githubusercontent.com/GoogleCloudPlatform/microservices-demo/"
#define MANIFEST_MAX (8u << 20)
#define WAIT_MS (15L * 60 * 1000)

/* Namespaces that are never deleted, only un-labelled. */
static const char *const system_ns[] = {"default", "kube-system", "kube-public",
					"kube-node-lease", "istio-system", NULL};

struct bd {
	or_host *h;
	const struct or_host_api *api;
	or_kube *k;
	const char *ns, *version, *move_out;
	int legacy;
};

/* Fetch release/FILE of the version; the text (caller frees) or NULL. */
static char *
bd_fetch(struct bd *b, const char *file)
{
	char url[512];
	const char *path;
	char *text;

	snprintf(url, sizeof(url), BOUTIQUE_BASE "%s/release/%s", b->version, file);
	path = b->api->fetch(b->h, url, NULL, NULL, MANIFEST_MAX);
	if (path == NULL)
		return NULL;
	text = slurp(path, MANIFEST_MAX);
	if (text == NULL)
		b->api->fail(b->h, "io", "cannot read the downloaded %s", file);
	return text;
}

/* The value of a top-level "key: value" line of one document (upstream's
 * files are written in block style, kind at column 0, metadata.name at
 * column 2), copied into out. */
static void
doc_field(const char *doc, size_t len, const char *prefix, char *out, size_t size)
{
	size_t plen = strlen(prefix), i = 0, e;

	out[0] = '\0';
	while (i < len) {
		if (len - i > plen && strncmp(doc + i, prefix, plen) == 0) {
			i += plen;
			for (e = i; e < len && doc[e] != '\n' && doc[e] != '\r' && doc[e] != ' ' &&
				    doc[e] != '#';
			     e++)
				;
			snprintf(out, size, "%.*s", (int)(e - i), doc + i);
			if (out[0] == '"' || out[0] == '\'') {
				memmove(out, out + 1, strlen(out));
				if (out[0] != '\0')
					out[strlen(out) - 1] = '\0';
			}
			return;
		}
		while (i < len && doc[i] != '\n')
			i++;
		i++;
	}
}

/* Whether one document is the moved service's Deployment (or, legacy,
 * its Service). */
static int
is_moved(struct bd *b, const char *doc, size_t len)
{
	char kind[64], name[256];
	const char *md;

	if (b->move_out == NULL || b->move_out[0] == '\0')
		return 0;
	doc_field(doc, len, "kind: ", kind, sizeof(kind));
	md = NULL;
	for (size_t i = 0; i + 10 <= len; i++)
		if ((i == 0 || doc[i - 1] == '\n') && strncmp(doc + i, "metadata:", 9) == 0) {
			md = doc + i;
			break;
		}
	if (md == NULL)
		return 0;
	doc_field(md, len - (size_t)(md - doc), "  name: ", name, sizeof(name));
	if (strcmp(name, b->move_out) != 0)
		return 0;
	return strcmp(kind, "Deployment") == 0 || (b->legacy && strcmp(kind, "Service") == 0);
}

/* text without the moved documents (caller frees); the moved Deployment's
 * first image into image (may be NULL). */
static char *
without_moved(struct bd *b, const char *text, char *image, size_t isize)
{
	size_t len = strlen(text), start = 0, end, next;
	/* Each kept document is followed by its own "---\n": at most 4 bytes
	 * more per document than the text had, and a document has >= 1 byte. */
	char *out = malloc(len * 5 + 8), kind[64];
	size_t o = 0;

	if (out == NULL)
		return NULL;
	if (image != NULL)
		image[0] = '\0';
	while (start < len) {
		/* A document ends at a line that starts with "---". */
		end = start;
		for (;;) {
			while (end < len && text[end] != '\n')
				end++;
			if (end >= len) {
				next = len;
				break;
			}
			end++;
			if (strncmp(text + end, "---", 3) == 0) {
				next = end;
				while (next < len && text[next] != '\n')
					next++;
				next = next < len ? next + 1 : len;
				break;
			}
		}
		if (is_moved(b, text + start, end - start)) {
			doc_field(text + start, end - start, "kind: ", kind, sizeof(kind));
			if (image != NULL && image[0] == '\0' && strcmp(kind, "Deployment") == 0) {
				const char *p = strstr(text + start, "image: ");

				if (p != NULL && (size_t)(p - text) < end)
					doc_field(p, end - (size_t)(p - text), "image: ", image, isize);
			}
		} else {
			memcpy(out + o, text + start, end - start);
			o += end - start;
			if (o > 0 && out[o - 1] != '\n')
				out[o++] = '\n';
			memcpy(out + o, "---\n", 4);
			o += 4;
		}
		start = next;
	}
	out[o] = '\0';
	return out;
}

/* A release tag as upstream writes them (v0.10.6): it goes into URLs. */
static int
tag_ok(const char *v)
{
	int dots = 0;
	size_t i;

	if (v == NULL || v[0] != 'v' || v[1] < '0' || v[1] > '9' || strlen(v) > 32)
		return 0;
	for (i = 1; v[i] != '\0'; i++) {
		if (v[i] == '.' && v[i - 1] != '.')
			dots++;
		else if (v[i] < '0' || v[i] > '9')
			return 0;
	}
	return dots == 2 && v[i - 1] != '.';
}

/* The inputs into b; 0, or -1 after fail(). */
static int
bd_inputs(struct bd *b, or_host *h, const struct or_host_api *api)
{
	const char *flow = api->input(h, "flow");

	memset(b, 0, sizeof(*b));
	b->h = h;
	b->api = api;
	b->ns = api->input(h, "namespace");
	if (b->ns == NULL || b->ns[0] == '\0')
		b->ns = "default";
	b->version = need(h, api, "version");
	b->move_out = api->input(h, "move_out");
	if (b->version == NULL)
		return -1;
	if (!tag_ok(b->version)) {
		api->fail(h, "input", "version \"%.40s\" is not an Online Boutique release such "
			  "as v0.10.6", b->version);
		return -1;
	}
	/* The Istio Gateway era ends with v0.5.2 (see the blueprints). */
	if (flow != NULL && flow[0] != '\0')
		b->legacy = strcmp(flow, "legacy") == 0;
	else
		b->legacy = strncmp(b->version, "v0.", 3) == 0 && atoi(b->version + 3) <= 5;
	return 0;
}

static or_kube *
bd_open(struct bd *b, or_host *h, const struct or_host_api *api)
{
	if (bd_inputs(b, h, api) != 0)
		return NULL;
	b->k = kube_from_inputs(h, api);
	return b->k;
}

static int
is_system_ns(const char *ns)
{
	for (size_t i = 0; system_ns[i] != NULL; i++)
		if (strcmp(ns, system_ns[i]) == 0)
			return 1;
	return 0;
}

/* kubectl label namespace NS istio-injection=enabled: a server-side apply
 * that owns just that label (and ours). */
static int
label_namespace(struct bd *b, int inject)
{
	json_t *doc = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}}", "apiVersion", "v1", "kind",
				"Namespace", "metadata", "name", b->ns, "labels", OWNER_LABEL,
				env_name(b->h, b->api) != NULL ? env_name(b->h, b->api) : "");
	char *text;
	int n;

	if (doc == NULL)
		return -1;
	if (inject)
		json_object_set_new(json_object_get(json_object_get(doc, "metadata"), "labels"),
				    "istio-injection", json_string("enabled"));
	if (is_system_ns(b->ns))
		json_object_del(json_object_get(json_object_get(doc, "metadata"), "labels"),
				OWNER_LABEL);
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	n = text != NULL ? b->api->kube_apply(b->k, text, NULL) : -1;
	free(text);
	return n;
}

/* Delete kind/name of the moved service in the namespace; 404 is fine. */
static int
delete_one(struct bd *b, const char *api_path, const char *resource)
{
	char path[512];
	long st;

	snprintf(path, sizeof(path), "%s/namespaces/%s/%s/%s", api_path, b->ns, resource,
		 b->move_out);
	st = kube_call(b->api, b->k, "DELETE", path, NULL);
	if (st == 0)
		return -1;
	if (st >= 300 && st != 404) {
		b->api->fail(b->h, "kubernetes", "DELETE %s %s/%s: HTTP %ld", resource, b->ns,
			     b->move_out, st);
		return -1;
	}
	b->api->log(b->h, OR_LOG_INFO, "%s %s/%s: %s (it moves to the VM)", resource, b->ns,
		    b->move_out, st == 404 ? "already gone" : "deleted");
	return 0;
}

static or_status
bd_apply(or_host *h, const struct or_host_api *api)
{
	struct bd b;
	or_status st = OR_STATUS_FAILED;
	char *k8s = NULL, *kept = NULL, *istio = NULL, image[512];
	const char *gw_svc, *gw_ns;

	if (bd_open(&b, h, api) == NULL)
		return OR_STATUS_FAILED;
	api->progress(h, 5, "labelling the namespace");
	if (label_namespace(&b, in_bool(h, api, "inject", 1)) < 0)
		goto out;
	api->progress(h, 15, "downloading the release manifests");
	k8s = bd_fetch(&b, "kubernetes-manifests.yaml");
	if (k8s == NULL)
		goto out;
	kept = without_moved(&b, k8s, image, sizeof(image));
	if (kept == NULL) {
		api->fail(h, "nomem", "out of memory");
		goto out;
	}
	if (b.move_out != NULL && b.move_out[0] != '\0' && image[0] == '\0') {
		api->fail(h, "input", "Online Boutique %s has no Deployment %s to move to the VM",
			  b.version, b.move_out);
		goto out;
	}
	api->progress(h, 30, "applying kubernetes-manifests.yaml");
	if (api->kube_apply(b.k, kept, b.ns) < 0)
		goto out;
	if (b.move_out != NULL && b.move_out[0] != '\0') {
		if (delete_one(&b, "/apis/apps/v1", "deployments") != 0)
			goto out;
		if (b.legacy && delete_one(&b, "/api/v1", "services") != 0)
			goto out;
	}
	if (in_bool(h, api, "istio_manifests", 1)) {
		api->progress(h, 50, "applying istio-manifests.yaml");
		istio = bd_fetch(&b, "istio-manifests.yaml");
		if (istio == NULL || api->kube_apply(b.k, istio, b.ns) < 0)
			goto out;
	}
	api->progress(h, 60, "waiting for the Deployments");
	if (api->kube_wait(b.k, "deployments", b.ns, NULL, WAIT_MS, NULL, 0) != 0) {
		st = api->cancelled(h) ? OR_STATUS_CANCELLED : OR_STATUS_FAILED;
		goto out;
	}
	/* Where the shop is reached: Istio's ingress gateway (legacy), or the
	 * Deployment+Service istiod makes for the Gateway API Gateway
	 * istio-gateway (current). */
	gw_svc = b.legacy ? "istio-ingressgateway" : "istio-gateway-istio";
	gw_ns = b.legacy ? "istio-system" : b.ns;
	api->output(h, "namespace", b.ns);
	api->output(h, "gateway_service", gw_svc);
	api->output(h, "gateway_namespace", gw_ns);
	api->output(h, "vm_image", image);
	st = OR_STATUS_OK;
out:
	free(k8s);
	free(kept);
	free(istio);
	api->kube_close(b.k);
	return st;
}

static or_status
bd_destroy(or_host *h, const struct or_host_api *api)
{
	struct bd b;
	or_status st = OR_STATUS_FAILED;
	char *k8s = NULL, *kept = NULL, *istio = NULL, path[300];
	json_t *o = NULL;

	if (bd_open(&b, h, api) == NULL)
		return OR_STATUS_FAILED;
	if (in_bool(h, api, "istio_manifests", 1)) {
		istio = bd_fetch(&b, "istio-manifests.yaml");
		if (istio == NULL || api->kube_delete(b.k, istio, b.ns) < 0)
			goto out;
	}
	k8s = bd_fetch(&b, "kubernetes-manifests.yaml");
	if (k8s == NULL)
		goto out;
	/* The moved service's objects are mesh-register's now (legacy
	 * Service) or already gone (Deployment): left out. */
	kept = without_moved(&b, k8s, NULL, 0);
	if (kept == NULL || api->kube_delete(b.k, kept, b.ns) < 0)
		goto out;
	/* The namespace: deleted when we made it, else our labels removed. */
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s", b.ns);
	if (kube_get(api, b.k, path, &o) == 0)
		goto out;
	if (o != NULL && !is_system_ns(b.ns) && owned_object(o, env_name(h, api))) {
		if (kube_call(api, b.k, "DELETE", path, NULL) == 0)
			goto out;
		api->log(h, OR_LOG_INFO, "namespace %s deleted", b.ns);
	} else if (o != NULL) {
		char text[300];

		/* Applying the namespace with no labels of ours gives them up. */
		snprintf(text, sizeof(text),
			 "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\"}}",
			 b.ns);
		if (api->kube_apply(b.k, text, NULL) < 0)
			goto out;
		api->log(h, OR_LOG_INFO, "namespace %s: istio-injection label removed", b.ns);
	}
	st = OR_STATUS_OK;
out:
	json_decref(o);
	free(k8s);
	free(kept);
	free(istio);
	api->kube_close(b.k);
	return st;
}

/* What apply would do; changes nothing.  Looks at the cluster (read
 * only) when it exists. */
static or_status
bd_plan(or_host *h, const struct or_host_api *api)
{
	struct bd b;
	char path[300], move[400] = "";
	const char *pre = "";
	long st = -1;

	if (bd_inputs(&b, h, api) != 0)
		return OR_STATUS_FAILED;
	if (b.move_out != NULL && b.move_out[0] != '\0')
		snprintf(move, sizeof(move), " and move %s out of the cluster (its Deployment%s "
			 "deleted)", b.move_out, b.legacy ? " and Service" : "");
	b.k = plan_kube(h, api);
	if (b.k == NULL) {
		pre = "the cluster does not exist yet: ";
	} else {
		snprintf(path, sizeof(path), "/apis/apps/v1/namespaces/%s/deployments/frontend",
			 b.ns);
		st = kube_get(api, b.k, path, NULL);
		api->kube_close(b.k);
		if (st == 0)
			pre = "the cluster does not answer: ";
	}
	api->log(h, OR_LOG_INFO, "%swould deploy Online Boutique %s into namespace %s%s%s%s",
		 pre, b.version, b.ns, in_bool(h, api, "inject", 1) ? " with sidecar injection" : "",
		 in_bool(h, api, "istio_manifests", 1) ? ", apply its istio-manifests.yaml" : "",
		 move);
	api->log(h, OR_LOG_INFO, "the shop would be reached through %s%s",
		 b.legacy ? "istio-ingressgateway in istio-system" : "istio-gateway-istio",
		 st == 200 ? "; its frontend is there already: would apply over it" : "");
	return OR_STATUS_OK;
}

static const struct or_plugin boutique_deploy = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = 1,
	.name = "boutique-deploy",
	.summary = "Deploys Online Boutique into the mesh and moves one service out to the VM",
	.inputs_schema =
		"{\"endpoint\": {\"type\": \"string\", \"required\": true, \"description\": "
		"\"the cluster's API address\"},"
		"\"ca_certificate\": {\"type\": \"string\", \"required\": true, \"description\": "
		"\"the cluster's CA (PEM or base64)\"},"
		"\"flow\": {\"type\": \"string\", \"description\": \"legacy (Istio 1.6) or current\"},"
		"\"namespace\": {\"type\": \"string\", \"description\": \"the app's namespace (default)\"},"
		"\"version\": {\"type\": \"string\", \"required\": true, \"description\": "
		"\"Online Boutique release tag, e.g. v0.10.6\"},"
		"\"inject\": {\"type\": \"boolean\", \"description\": \"label the namespace "
		"istio-injection=enabled (true)\"},"
		"\"istio_manifests\": {\"type\": \"boolean\", \"description\": \"apply "
		"release/istio-manifests.yaml (true)\"},"
		"\"move_out\": {\"type\": \"string\", \"description\": \"service whose Deployment "
		"is removed from the cluster, to run on the VM\"}}",
	.outputs_schema =
		"{\"namespace\": {\"type\": \"string\"},"
		"\"gateway_service\": {\"type\": \"string\", \"description\": \"LoadBalancer "
		"Service in front of the shop\"},"
		"\"gateway_namespace\": {\"type\": \"string\"},"
		"\"vm_image\": {\"type\": \"string\", \"description\": \"the moved service's "
		"image in this release\"}}",
	.capabilities = OR_CAP_PLAN | OR_CAP_DESTROY,
	.plan = bd_plan,
	.apply = bd_apply,
	.destroy = bd_destroy,
};

OR_PLUGIN_EXPORT(boutique_deploy)

/*
 * kiali-link.c - the tutorial's last look at the mesh:
 *
 *     istioctl dashboard kiali      (http://localhost:20001/kiali)
 *
 * Istio 1.6's demo profile installs Kiali; later releases ship it as
 * samples/addons/kiali.yaml, which istio-install applies when asked.  This
 * step makes sure Kiali is there -- applying kiali.yaml from `istio_dir`
 * (an unpacked Istio release) when given and Kiali is missing -- waits for
 * it, and outputs where to open it: `url` through a port-forward (what
 * `istioctl dashboard kiali` opens) and `cluster_url` inside the cluster.
 *
 * Destroy removes Kiali only when this step applied it (state "applied").
 */
#include "rollout.h"

#define KIALI_MAX (4u << 20)
#define WAIT_MS (10L * 60 * 1000)

/* GET the Service: 1 there, 0 absent, -1 no answer (fail set). */
static int
kl_service(or_host *h, const struct or_host_api *api, or_kube *k, const char *ns,
	   const char *svc)
{
	char path[512];
	long st;

	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services/%s", ns, svc);
	st = kube_get(api, k, path, NULL);
	if (st == 0)
		return -1;
	if (st != 200 && st != 404) {
		api->fail(h, "kubernetes", "GET service %s/%s: HTTP %ld", ns, svc, st);
		return -1;
	}
	return st == 200;
}

static or_status
kl_apply(or_host *h, const struct or_host_api *api)
{
	const char *ns = api->input(h, "namespace"), *svc = api->input(h, "service");
	const char *dir = api->input(h, "istio_dir"), *sub = api->input(h, "path");
	long port = in_long(h, api, "port", 20001);
	or_status st = OR_STATUS_FAILED;
	char file[1024], url[512], *text = NULL;
	or_kube *k;
	int there;

	if (ns == NULL || ns[0] == '\0')
		ns = "istio-system";
	if (svc == NULL || svc[0] == '\0')
		svc = "kiali";
	if (sub == NULL)
		sub = "/kiali";
	k = kube_from_inputs(h, api);
	if (k == NULL)
		return OR_STATUS_FAILED;
	there = kl_service(h, api, k, ns, svc);
	if (there < 0) {
		st = OR_STATUS_RETRY;
		goto out;
	}
	if (!there) {
		if (dir == NULL || dir[0] == '\0') {
			api->fail(h, "not_found",
				  "Kiali is not installed (no service %s/%s): install it with the "
				  "Istio step's addons, or give this step istio_dir", ns, svc);
			goto out;
		}
		snprintf(file, sizeof(file), "%s/samples/addons/kiali.yaml", dir);
		text = slurp(file, KIALI_MAX);
		if (text == NULL) {
			api->fail(h, "not_found", "this Istio release has no samples/addons/kiali.yaml");
			goto out;
		}
		if (api->state_set(h, "applied", "kiali.yaml") != 0 ||
		    api->kube_apply(k, text, ns) < 0)
			goto out;
	}
	if (api->kube_wait(k, "deployment", ns, svc, WAIT_MS, NULL, 0) != 0) {
		st = api->cancelled(h) ? OR_STATUS_CANCELLED : OR_STATUS_FAILED;
		goto out;
	}
	snprintf(url, sizeof(url), "http://localhost:%ld%s", port, sub);
	api->output(h, "url", url);
	api->log(h, OR_LOG_INFO,
		 "Kiali: run `kubectl port-forward -n %s svc/%s %ld:%ld` (or `istioctl dashboard "
		 "kiali`) and open %s", ns, svc, port, port, url);
	snprintf(url, sizeof(url), "http://%s.%s.svc.cluster.local:%ld%s", svc, ns, port, sub);
	api->output(h, "cluster_url", url);
	st = OR_STATUS_OK;
out:
	free(text);
	api->kube_close(k);
	return st;
}

static or_status
kl_destroy(or_host *h, const struct or_host_api *api)
{
	const char *ns = api->input(h, "namespace"), *dir = api->input(h, "istio_dir");
	const char *applied = api->state_get(h, "applied");
	or_status st = OR_STATUS_FAILED;
	char file[1024], *text = NULL;
	or_kube *k;

	if (applied == NULL) {
		api->log(h, OR_LOG_INFO, "Kiali was not installed by this step: nothing to remove");
		return OR_STATUS_OK;
	}
	if (ns == NULL || ns[0] == '\0')
		ns = "istio-system";
	snprintf(file, sizeof(file), "%s/samples/addons/kiali.yaml", dir != NULL ? dir : ".");
	text = slurp(file, KIALI_MAX);
	if (text == NULL) {
		api->fail(h, "not_found", "cannot read %s to remove Kiali", file);
		return OR_STATUS_FAILED;
	}
	k = kube_from_inputs(h, api);
	if (k != NULL && api->kube_delete(k, text, ns) >= 0)
		st = OR_STATUS_OK;
	free(text);
	api->kube_close(k);
	return st;
}

/* What apply would do; changes nothing.  Looks for Kiali (read only)
 * when the cluster exists. */
static or_status
kl_plan(or_host *h, const struct or_host_api *api)
{
	const char *ns = api->input(h, "namespace"), *svc = api->input(h, "service");
	const char *dir = api->input(h, "istio_dir"), *sub = api->input(h, "path");
	long port = in_long(h, api, "port", 20001);
	const char *now = "";
	or_kube *k = NULL;
	int there = -2; /* -2: not looked */

	if (ns == NULL || ns[0] == '\0')
		ns = "istio-system";
	if (svc == NULL || svc[0] == '\0')
		svc = "kiali";
	if (sub == NULL)
		sub = "/kiali";
	if (known(ns))
		k = plan_kube(h, api);
	if (k != NULL)
		there = kl_service(h, api, k, ns, svc);
	api->kube_close(k);
	if (there == -2)
		now = known(ns) ? "the cluster does not exist yet: " : "Istio is not installed yet: ";
	else if (there == -1)
		now = "the cluster does not answer: ";
	else if (there == 1)
		now = "Kiali runs: ";
	api->log(h, OR_LOG_INFO, "%swould wait for Kiali (service %s%s%s%s%s) and give its address "
		 "http://localhost:%ld%s (through kubectl port-forward)", now,
		 known(ns) ? ns : "", known(ns) ? "/" : "", svc, known(ns) ? "" : " in Istio's namespace",
		 there == 0 ? (dir != NULL && dir[0] ? ", not there yet: would apply "
			       "samples/addons/kiali.yaml" : ", not there yet: the Istio step's "
			       "addons must install it") : "", port, sub);
	return OR_STATUS_OK;
}

static const struct or_plugin kiali_link = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = 1,
	.name = "kiali-link",
	.summary = "Makes sure Kiali runs and says where to open it (istioctl dashboard kiali)",
	.inputs_schema =
		"{\"endpoint\": {\"type\": \"string\", \"required\": true, \"description\": "
		"\"the cluster's API address\"},"
		"\"ca_certificate\": {\"type\": \"string\", \"required\": true, \"description\": "
		"\"the cluster's CA (PEM or base64)\"},"
		"\"namespace\": {\"type\": \"string\", \"description\": \"Istio's namespace\"},"
		"\"service\": {\"type\": \"string\", \"description\": \"kiali\"},"
		"\"port\": {\"type\": \"integer\", \"description\": \"20001\"},"
		"\"path\": {\"type\": \"string\", \"description\": \"/kiali\"},"
		"\"istio_dir\": {\"type\": \"string\", \"description\": \"an unpacked Istio "
		"release whose samples/addons/kiali.yaml is applied when Kiali is missing\"}}",
	.outputs_schema = "{\"url\": {\"type\": \"string\"}, \"cluster_url\": {\"type\": \"string\"}}",
	.capabilities = OR_CAP_PLAN | OR_CAP_DESTROY,
	.plan = kl_plan,
	.apply = kl_apply,
	.destroy = kl_destroy,
};

OR_PLUGIN_EXPORT(kiali_link)

/*
 * ingress-ip.c - the tutorial's end:
 *
 *     kubectl get svc istio-ingressgateway -n istio-system \
 *         -o jsonpath='{.status.loadBalancer.ingress[0].ip}'
 *     curl http://${INGRESS_IP}/      (the shop's home page, with products
 *                                      served from the VM)
 *
 * Waits for the gateway Service's external address, then asks for
 * probe_path until the answer's status is probe_status (the shop answers
 * 503 until every piece -- the VM's sidecar, its catalog, the firewall --
 * is in place, so early 503s are expected and logged, not failures).
 * Outputs ip and app_url.  Makes nothing, so destroy has nothing to undo.
 */
#include "rollout.h"

#define LB_WAIT_MS (10L * 60 * 1000)
#define PROBE_WAIT_MS (10L * 60 * 1000)

/* The first line of an answer's body, for the log. */
static void
first_line(const char *body, char *out, size_t size)
{
	size_t i;

	snprintf(out, size, "%s", body != NULL ? body : "");
	for (i = 0; out[i] != '\0'; i++)
		if (out[i] == '\n' || out[i] == '\r') {
			out[i] = '\0';
			break;
		}
}

static or_status
ii_apply(or_host *h, const struct or_host_api *api)
{
	const char *svc = need(h, api, "service"), *ns = api->input(h, "namespace");
	const char *path = api->input(h, "probe_path");
	long want = in_long(h, api, "probe_status", 200);
	long timeout = in_long(h, api, "timeout_ms", PROBE_WAIT_MS), waited = 0, pause = 1000;
	struct or_http_request req;
	struct or_http_response r;
	char ip[256], url[600], line[200], last[200] = "";
	or_kube *k;
	int tries = 0;

	if (svc == NULL)
		return OR_STATUS_FAILED;
	if (ns == NULL || ns[0] == '\0')
		ns = "default";
	if (path == NULL || path[0] != '/')
		path = "/";
	k = kube_from_inputs(h, api);
	if (k == NULL)
		return OR_STATUS_FAILED;
	api->progress(h, 10, "waiting for the gateway's external IP");
	if (api->kube_wait(k, "loadbalancer", ns, svc, LB_WAIT_MS, ip, sizeof(ip)) != 0) {
		api->kube_close(k);
		return api->cancelled(h) ? OR_STATUS_CANCELLED : OR_STATUS_FAILED;
	}
	api->kube_close(k);
	snprintf(url, sizeof(url), "http://%s%s", ip, path);
	api->log(h, OR_LOG_INFO, "INGRESS_IP=%s", ip);
	api->progress(h, 50, "waiting for the shop to answer");
	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.url = url;
	req.timeout_ms = 10000;
	req.max_attempts = 1; /* this loop is the retry */
	req.max_response = 4u << 20;
	for (;;) {
		tries++;
		if (api->http(h, &req, &r) == 0) {
			if (r.status == want) {
				api->http_free(&r);
				break;
			}
			first_line(r.body, line, sizeof(line));
			if (strcmp(line, last) != 0 || tries % 10 == 1)
				api->log(h, OR_LOG_INFO, "GET %s: %ld %s (want %ld)", url, r.status, line,
					 want);
			snprintf(last, sizeof(last), "%s", line);
			api->http_free(&r);
		} else if (tries % 10 == 1) {
			api->log(h, OR_LOG_INFO, "GET %s: no answer yet", url);
		}
		if (waited >= timeout) {
			api->fail(h, "timeout", "http://%s%s did not answer %ld within %ld s (last: %s)",
				  ip, path, want, timeout / 1000, last[0] ? last : "no answer");
			return OR_STATUS_FAILED;
		}
		if (api->sleep_ms(h, pause)) {
			api->fail(h, "cancelled", "cancelled while waiting for the shop");
			return OR_STATUS_CANCELLED;
		}
		waited += pause;
		pause = pause < 5000 ? pause * 2 : 5000;
	}
	api->output(h, "ip", ip);
	snprintf(url, sizeof(url), "http://%s/", ip);
	api->output(h, "app_url", url);
	api->log(h, OR_LOG_INFO, "the shop answers at %s", url);
	return OR_STATUS_OK;
}

static or_status
ii_destroy(or_host *h, const struct or_host_api *api)
{
	api->log(h, OR_LOG_INFO, "ingress-ip made nothing: nothing to remove");
	return OR_STATUS_OK;
}

/* What apply would do; changes nothing.  Reads the gateway Service's
 * address (read only) when the cluster and the Service are known. */
static or_status
ii_plan(or_host *h, const struct or_host_api *api)
{
	const char *svc = api->input(h, "service"), *ns = api->input(h, "namespace");
	const char *path = api->input(h, "probe_path"), *ip = NULL, *pre = "";
	long want = in_long(h, api, "probe_status", 200), st = -1;
	char p[600];
	json_t *o = NULL;
	or_kube *k = NULL;

	if (ns == NULL || ns[0] == '\0')
		ns = "default";
	if (path == NULL || path[0] != '/')
		path = "/";
	if (known(svc) && known(ns))
		k = plan_kube(h, api);
	if (k != NULL) {
		snprintf(p, sizeof(p), "/api/v1/namespaces/%s/services/%s", ns, svc);
		st = kube_get(api, k, p, &o);
		ip = json_string_value(json_object_get(json_array_get(json_object_get(
			json_object_get(json_object_get(o, "status"), "loadBalancer"), "ingress"), 0),
			"ip"));
	}
	if (!known(svc) || !known(ns))
		pre = "the gateway Service is not known yet (the app is not deployed): ";
	else if (k == NULL)
		pre = "the cluster does not exist yet: ";
	else if (st == 0)
		pre = "the cluster does not answer: ";
	else if (st == 404)
		pre = "the gateway Service is not there yet: ";
	if (ip != NULL && ip[0] != '\0')
		api->log(h, OR_LOG_INFO, "%s/%s has the external IP %s: would probe http://%s%s "
			 "until it answers %ld", ns, svc, ip, ip, path, want);
	else
		api->log(h, OR_LOG_INFO, "%swould wait for the gateway's external IP%s%s%s%s and "
			 "probe http://IP%s until it answers %ld", pre,
			 known(svc) && known(ns) ? " (service " : "", known(svc) && known(ns) ? ns : "",
			 known(svc) && known(ns) ? "/" : "", known(svc) && known(ns) ? svc : "", path,
			 want);
	json_decref(o);
	api->kube_close(k);
	return OR_STATUS_OK;
}

static const struct or_plugin ingress_ip = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = 1,
	.name = "ingress-ip",
	.summary = "Waits for the gateway's external IP and for the shop to answer there",
	.inputs_schema =
		"{\"endpoint\": {\"type\": \"string\", \"required\": true, \"description\": "
		"\"the cluster's API address\"},"
		"\"ca_certificate\": {\"type\": \"string\", \"required\": true, \"description\": "
		"\"the cluster's CA (PEM or base64)\"},"
		"\"service\": {\"type\": \"string\", \"required\": true, \"description\": "
		"\"the LoadBalancer Service in front of the app\"},"
		"\"namespace\": {\"type\": \"string\", \"description\": \"its namespace\"},"
		"\"probe_path\": {\"type\": \"string\", \"description\": \"/\"},"
		"\"probe_status\": {\"type\": \"integer\", \"description\": \"200\"},"
		"\"timeout_ms\": {\"type\": \"integer\", \"description\": \"how long the shop may "
		"take to answer (10 minutes)\"}}",
	.outputs_schema = "{\"ip\": {\"type\": \"string\"}, \"app_url\": {\"type\": \"string\"}}",
	.capabilities = OR_CAP_PLAN | OR_CAP_DESTROY,
	.plan = ii_plan,
	.apply = ii_apply,
	.destroy = ii_destroy,
};

OR_PLUGIN_EXPORT(ingress_ip)

/*
 * mesh-register.c - tells the mesh that a service now runs on the VM.
 *
 * Legacy (Istio 1.6), what the tutorial's
 *
 *     istioctl experimental add-to-mesh external-service productcatalogservice \
 *         ${GCE_IP} grpc:3550 -n default
 *
 * made (../shared/notes/istio-vm.md section 2): ServiceEntry
 * mesh-expansion-<svc> (host <svc>.<ns>.svc.cluster.local, port
 * <name>-<port> of protocol GRPC, one STATIC endpoint per address,
 * MESH_INTERNAL) and a selector-less Service <svc> (port <name>-<port>,
 * annotation kubernetes.io/service-account.name).  Like add-to-mesh it
 * refuses a Service of that name that is not its own.
 *
 * Current (Istio >= 1.20): a WorkloadEntry per address, with the
 * workload's labels (which the app's Service selects) and service account,
 * as `istioctl x workload entry configure` + auto-registration would.
 *
 * Everything made carries outrigger-env=<environment>: a re-run adopts
 * it, destroy deletes only it.
 */
#include <ctype.h>

#include "rollout.h"

#define SE_API "networking.istio.io/v1alpha3"
#define WE_API "networking.istio.io/v1beta1"

struct mr {
	or_host *h;
	const struct or_host_api *api;
	or_kube *k;
	const char *ns, *svc, *port_name, *sa;
	long port;
	json_t *addresses, *labels;
	int legacy;
};

/* GET path: 1 ours, 0 absent, -1 someone else's, -2 no answer (fail set). */
static int
mr_owner(struct mr *m, const char *path)
{
	json_t *o;
	long st;
	int rc;

	st = kube_get(m->api, m->k, path, &o);
	if (st == 0)
		return -2;
	if (st == 404)
		return 0;
	if (o == NULL) {
		m->api->fail(m->h, "kubernetes", "GET %s: no object in the answer", path);
		return -2;
	}
	rc = owned_object(o, env_name(m->h, m->api)) ? 1 : -1;
	json_decref(o);
	return rc;
}

static json_t *
owner_labels(struct mr *m)
{
	return json_pack("{s:s}", OWNER_LABEL,
			 env_name(m->h, m->api) != NULL ? env_name(m->h, m->api) : "");
}

/* A WorkloadEntry's name for one address: <service>-10-128-0-5. */
static void
we_name(struct mr *m, const char *addr, char *out, size_t size)
{
	size_t n;

	snprintf(out, size, "%s-%s", m->svc, addr);
	for (n = strlen(m->svc) + 1; out[n] != '\0'; n++)
		if (!isalnum((unsigned char)out[n]))
			out[n] = '-';
}

/* The objects to apply (or delete), as one JSON-documents text. */
static char *
mr_text(struct mr *m)
{
	char portname[128], host[512], name[300];
	json_t *docs = json_array(), *se, *eps, *svc, *we, *d;
	const char *addr;
	struct {
		char *p;
		size_t n;
	} out = {NULL, 0};
	size_t i;
	char *s, *all = NULL;

	if (m->legacy) {
		/* add-to-mesh names the port <name>-<port>, lower-cased. */
		snprintf(portname, sizeof(portname), "%s-%ld", m->port_name, m->port);
		for (i = 0; portname[i] != '\0'; i++)
			portname[i] = (char)tolower((unsigned char)portname[i]);
		snprintf(host, sizeof(host), "%s.%s.svc.cluster.local", m->svc, m->ns);
		snprintf(name, sizeof(name), "mesh-expansion-%s", m->svc);
		eps = json_array();
		json_array_foreach(m->addresses, i, d)
			json_array_append_new(eps, json_pack("{s:O}", "address", d));
		se = json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:{s:[s], s:[{s:I, s:s, s:s}], s:o, "
			       "s:s, s:s}}",
			       "apiVersion", SE_API, "kind", "ServiceEntry", "metadata", "name", name,
			       "namespace", m->ns, "labels", owner_labels(m), "spec", "hosts", host,
			       "ports", "number", (json_int_t)m->port, "protocol", "GRPC", "name",
			       portname, "endpoints", eps, "resolution", "STATIC", "location",
			       "MESH_INTERNAL");
		svc = json_pack("{s:s, s:s, s:{s:s, s:s, s:o, s:{s:s}}, s:{s:[{s:s, s:I}]}}",
				"apiVersion", "v1", "kind", "Service", "metadata", "name", m->svc,
				"namespace", m->ns, "labels", owner_labels(m), "annotations",
				"kubernetes.io/service-account.name", m->sa, "spec", "ports", "name",
				portname, "port", (json_int_t)m->port);
		/* add-to-mesh made the ServiceEntry first, then the Service. */
		json_array_append_new(docs, se);
		json_array_append_new(docs, svc);
	} else {
		json_array_foreach(m->addresses, i, d) {
			addr = json_string_value(d);
			if (addr == NULL)
				continue;
			we_name(m, addr, name, sizeof(name));
			we = json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:{s:s, s:O, s:s, s:{s:I}}}",
				       "apiVersion", WE_API, "kind", "WorkloadEntry", "metadata",
				       "name", name, "namespace", m->ns, "labels", owner_labels(m),
				       "spec", "address", addr, "labels", m->labels,
				       "serviceAccount", m->sa, "ports", m->port_name,
				       (json_int_t)m->port);
			json_array_append_new(docs, we);
		}
	}
	json_array_foreach(docs, i, d) {
		if (d == NULL)
			goto out;
		s = json_dumps(d, JSON_COMPACT);
		if (s == NULL)
			goto out;
		char *p = realloc(out.p, out.n + strlen(s) + 6);

		if (p == NULL) {
			free(s);
			goto out;
		}
		out.p = p;
		out.n += (size_t)snprintf(out.p + out.n, strlen(s) + 6, "%s\n---\n", s);
		free(s);
	}
	all = out.p;
	out.p = NULL;
out:
	free(out.p);
	json_decref(docs);
	if (all == NULL)
		m->api->fail(m->h, "input", "the service, namespace, labels or addresses are not "
					    "usable names");
	return all;
}

/* The inputs into m; 0, or -1 after fail().  mr_close frees them. */
static int
mr_inputs(struct mr *m, or_host *h, const struct or_host_api *api)
{
	const char *flow = api->input(h, "flow");

	memset(m, 0, sizeof(*m));
	m->h = h;
	m->api = api;
	m->legacy = flow != NULL && strcmp(flow, "legacy") == 0;
	m->ns = api->input(h, "namespace");
	if (m->ns == NULL || m->ns[0] == '\0')
		m->ns = "default";
	m->svc = need(h, api, "service");
	m->port_name = api->input(h, "port_name");
	if (m->port_name == NULL || m->port_name[0] == '\0')
		m->port_name = "grpc";
	m->port = in_long(h, api, "port", 0);
	m->sa = api->input(h, "service_account");
	if (m->sa == NULL || m->sa[0] == '\0')
		m->sa = m->legacy || m->svc == NULL ? "default" : m->svc;
	m->addresses = in_json(h, api, "addresses");
	m->labels = in_json(h, api, "labels");
	if (m->svc == NULL)
		return -1;
	if (m->port <= 0 || m->port > 65535) {
		api->fail(h, "input", "the input \"port\" must be a port number");
		return -1;
	}
	if (!json_is_array(m->addresses) || json_array_size(m->addresses) == 0) {
		api->fail(h, "input", "the input \"addresses\" must be a list of the VM's IPs");
		return -1;
	}
	if (!json_is_object(m->labels)) {
		json_decref(m->labels);
		m->labels = json_pack("{s:s}", "app", m->svc);
	}
	return 0;
}

static or_kube *
mr_open(struct mr *m, or_host *h, const struct or_host_api *api)
{
	if (mr_inputs(m, h, api) != 0)
		return NULL;
	m->k = kube_from_inputs(h, api);
	return m->k;
}

static void
mr_close(struct mr *m)
{
	if (m->k != NULL)
		m->api->kube_close(m->k);
	json_decref(m->addresses);
	json_decref(m->labels);
}

static or_status
mr_apply(or_host *h, const struct or_host_api *api)
{
	struct mr m;
	or_status st = OR_STATUS_FAILED;
	char path[512], *text = NULL;
	int own;

	if (mr_open(&m, h, api) == NULL)
		goto out;
	if (m.legacy) {
		/* add-to-mesh's pre-checks, in its order and words. */
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services/%s", m.ns, m.svc);
		own = mr_owner(&m, path);
		if (own == -2) {
			st = OR_STATUS_RETRY;
			goto out;
		}
		if (own == -1) {
			api->fail(h, "conflict", "service \"%s\" already exists, skip", m.svc);
			goto out;
		}
		snprintf(path, sizeof(path),
			 "/apis/" SE_API "/namespaces/%s/serviceentries/mesh-expansion-%s", m.ns,
			 m.svc);
		own = mr_owner(&m, path);
		if (own == -2) {
			st = OR_STATUS_RETRY;
			goto out;
		}
		if (own == -1) {
			api->fail(h, "conflict", "service entry \"mesh-expansion-%s\" already exists, skip",
				  m.svc);
			goto out;
		}
	}
	text = mr_text(&m);
	if (text == NULL || api->kube_apply(m.k, text, m.ns) < 0)
		goto out;
	if (m.legacy) {
		api->log(h, OR_LOG_INFO,
			 "ServiceEntry \"mesh-expansion-%s.%s\" has been created in the Istio service "
			 "mesh for the external service \"%s\"", m.svc, m.ns, m.svc);
		api->log(h, OR_LOG_INFO,
			 "Kubernetes Service \"%s.%s\" has been created in the Istio service mesh for "
			 "the external service \"%s\"", m.svc, m.ns, m.svc);
	} else {
		api->log(h, OR_LOG_INFO, "WorkloadEntry for %s in %s: %zu address(es)", m.svc, m.ns,
			 json_array_size(m.addresses));
	}
	api->output(h, "service", m.svc);
	api->output(h, "namespace", m.ns);
	snprintf(path, sizeof(path), "%s.%s.svc.cluster.local", m.svc, m.ns);
	api->output(h, "host", path);
	st = OR_STATUS_OK;
out:
	free(text);
	mr_close(&m);
	return st;
}

static or_status
mr_destroy(or_host *h, const struct or_host_api *api)
{
	struct mr m;
	or_status st = OR_STATUS_FAILED;
	char path[512], *text = NULL;
	int own;

	if (mr_open(&m, h, api) == NULL)
		goto out;
	if (m.legacy) {
		/* The Service may be the app's own again (a re-deploy): keep it
		 * then, delete only what carries our label. */
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services/%s", m.ns, m.svc);
		own = mr_owner(&m, path);
		if (own == -2) {
			st = OR_STATUS_RETRY;
			goto out;
		}
		if (own == -1) {
			api->log(h, OR_LOG_INFO, "service %s/%s is not ours: left alone", m.ns, m.svc);
			snprintf(path, sizeof(path),
				 "/apis/" SE_API "/namespaces/%s/serviceentries/mesh-expansion-%s",
				 m.ns, m.svc);
			if (mr_owner(&m, path) == 1)
				kube_call(api, m.k, "DELETE", path, NULL);
			st = OR_STATUS_OK;
			goto out;
		}
	}
	text = mr_text(&m);
	if (text == NULL || api->kube_delete(m.k, text, m.ns) < 0)
		goto out;
	st = OR_STATUS_OK;
out:
	free(text);
	mr_close(&m);
	return st;
}

/* What apply would do; changes nothing.  Looks (read only) at what is
 * registered already when the cluster and the namespace are known. */
static or_status
mr_plan(or_host *h, const struct or_host_api *api)
{
	struct mr m;
	char path[512], nsd[300], *addrs = NULL;
	const char *pre = "", *a;
	or_status st = OR_STATUS_FAILED;
	int own = -3; /* -3: not looked */

	if (mr_inputs(&m, h, api) != 0)
		goto out;
	a = json_string_value(json_array_get(m.addresses, 0));
	addrs = a != NULL && known(a) ? json_dumps(m.addresses, JSON_COMPACT) : NULL;
	if (known(m.ns) && known(m.svc) && a != NULL && known(a))
		m.k = plan_kube(h, api);
	if (m.k != NULL) {
		char name[300];

		if (m.legacy) {
			snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services/%s", m.ns,
				 m.svc);
		} else {
			we_name(&m, a, name, sizeof(name));
			snprintf(path, sizeof(path), "/apis/" WE_API "/namespaces/%s/workloadentries/%s",
				 m.ns, name);
		}
		own = mr_owner(&m, path);
	}
	if (!known(m.ns) || !known(m.svc))
		pre = "the app is not deployed yet: ";
	else if (a == NULL || !known(a))
		pre = "the VM does not exist yet: ";
	else if (own == -3)
		pre = "the cluster does not exist yet: ";
	else if (own == -2)
		pre = "the cluster does not answer: ";
	if (known(m.ns))
		snprintf(nsd, sizeof(nsd), "namespace %s", m.ns);
	else
		snprintf(nsd, sizeof(nsd), "the app's namespace");
	if (m.legacy)
		api->log(h, OR_LOG_INFO, "%swould register %s at the VM's address %s as "
			 "ServiceEntry mesh-expansion-%s and a selector-less Service %s in "
			 "%s (port %s %ld, service account %s), as istioctl add-to-mesh",
			 pre, m.svc, addrs != NULL ? addrs : "(known after apply)", m.svc, m.svc,
			 nsd, m.port_name, m.port, m.sa);
	else
		api->log(h, OR_LOG_INFO, "%swould register %s at the VM's address %s as a "
			 "WorkloadEntry in %s (port %s %ld, service account %s)", pre,
			 m.svc, addrs != NULL ? addrs : "(known after apply)",
			 nsd, m.port_name, m.port,
			 known(m.sa) ? m.sa : "that of the VM's WorkloadGroup");
	if (own == 1)
		api->log(h, OR_LOG_INFO, "%s is registered already by this environment: would "
			 "adopt it", m.svc);
	else if (own == -1)
		api->log(h, OR_LOG_WARN, "%s %s/%s exists and is not this environment's: apply "
			 "would refuse it unless an earlier step removes it",
			 m.legacy ? "Service" : "the WorkloadEntry of", m.ns, m.svc);
	st = OR_STATUS_OK;
out:
	free(addrs);
	mr_close(&m);
	return st;
}

static const struct or_plugin mesh_register = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = 1,
	.name = "mesh-register",
	.summary = "Registers the VM's service in the mesh (ServiceEntry+Service, or WorkloadEntry)",
	.inputs_schema =
		"{\"endpoint\": {\"type\": \"string\", \"required\": true, \"description\": "
		"\"the cluster's API address\"},"
		"\"ca_certificate\": {\"type\": \"string\", \"required\": true, \"description\": "
		"\"the cluster's CA (PEM or base64)\"},"
		"\"flow\": {\"type\": \"string\", \"description\": \"legacy (add-to-mesh objects) or "
		"current (WorkloadEntry)\"},"
		"\"namespace\": {\"type\": \"string\", \"description\": \"the service's namespace\"},"
		"\"service\": {\"type\": \"string\", \"required\": true, \"description\": "
		"\"the service now on the VM\"},"
		"\"port_name\": {\"type\": \"string\", \"description\": \"grpc\"},"
		"\"port\": {\"type\": \"integer\", \"required\": true, \"description\": \"its port\"},"
		"\"addresses\": {\"type\": \"array\", \"required\": true, \"description\": "
		"\"the VM's IPs\"},"
		"\"workload_group\": {\"type\": \"string\", \"description\": \"current: the "
		"WorkloadGroup (informational)\"},"
		"\"service_account\": {\"type\": \"string\", \"description\": \"the workload's "
		"service account\"},"
		"\"labels\": {\"type\": \"object\", \"description\": \"current: the workload's "
		"labels, selected by the app's Service\"}}",
	.outputs_schema = "{\"service\": {\"type\": \"string\"}, \"namespace\": {\"type\": "
			  "\"string\"}, \"host\": {\"type\": \"string\"}}",
	.capabilities = OR_CAP_PLAN | OR_CAP_DESTROY,
	.plan = mr_plan,
	.apply = mr_apply,
	.destroy = mr_destroy,
};

OR_PLUGIN_EXPORT(mesh_register)

/*
 * gke-cluster.c - the tutorial's first step:
 *
 *   gcloud container clusters create west --zone us-west2-a \
 *     --machine-type n1-standard-2 --num-nodes 5 --disk-size 100 \
 *     --image-type COS_CONTAINERD --enable-ip-alias --cluster-version V
 *   gcloud container clusters get-credentials west --zone us-west2-a
 *
 * What it corrects: the tutorial's `--image-type COS` is refused by every
 * GKE of 1.24 and later, so the blueprints ask for COS_CONTAINERD.
 *
 * Idempotent: a cluster of that name that carries this environment's label
 * is adopted (waiting out its creation if it is still provisioning); one
 * without the label belongs to someone else and fails the step.  The
 * create operation is recorded before it is waited on, so a retried or
 * resumed attempt waits for the same operation instead of creating again.
 *
 * The "credentials" are the outputs endpoint and ca_certificate: the
 * Kubernetes client of later steps talks to the cluster with them and the
 * provider's Google token, as gke-gcloud-auth-plugin does for kubectl.
 *
 * Destroy first deletes the cluster's LoadBalancer Services (so that what
 * GKE made for them goes too), then the cluster, then the firewall rules
 * GKE made for the cluster (gke-<name>-...), and forgets the resource.
 */
#include "rollout.h"

#define CREATE_TIMEOUT_MS (40L * 60 * 1000)	/* GKE takes 3-10 minutes */
#define DELETE_TIMEOUT_MS (30L * 60 * 1000)

struct cluster_in {
	const char *project, *zone, *name;
	char path[512];		/* v1/projects/P/locations/Z/clusters/NAME */
};

static int
cluster_inputs(or_host *h, const struct or_host_api *api, struct cluster_in *c)
{
	c->project = need(h, api, "project");
	c->zone = c->project != NULL ? need(h, api, "zone") : NULL;
	c->name = c->zone != NULL ? need(h, api, "name") : NULL;
	if (c->name == NULL)
		return -1;
	snprintf(c->path, sizeof(c->path), "container:v1/projects/%s/locations/%s/clusters/%s",
		 c->project, c->zone, c->name);
	return 0;
}

/* GET the cluster: 1 and *out when it exists, 0 when not, -1 on error. */
static int
cluster_get(or_host *h, const struct or_host_api *api, const struct cluster_in *c, json_t **out)
{
	return google_get(h, api, c->path, "reading the cluster", out);
}

/* Wait for a GKE operation named in state "operation", then forget it. */
static int
wait_recorded(or_host *h, const struct or_host_api *api, const struct cluster_in *c, long ms)
{
	const char *op = api->state_get(h, "operation");
	char url[600];

	if (op == NULL || op[0] == '\0')
		return 0;
	snprintf(url, sizeof(url), "container:v1/projects/%s/locations/%s/operations/%s",
		 c->project, c->zone, op);
	api->log(h, OR_LOG_INFO, "waiting for operation %s", op);
	if (api->gcp_wait(h, url, ms) != 0)
		return -1;
	api->state_set(h, "operation", "");
	return 0;
}

static json_t *
create_body(or_host *h, const struct or_host_api *api, const struct cluster_in *c)
{
	const char *version = api->input(h, "version");
	char parent[300];
	json_t *cl;

	cl = json_pack("{s:s, s:s, s:{s:b, s:b}, s:{s:s}, s:[{s:s, s:I, s:{s:s, s:s, s:I, "
		       "s:[s, s, s, s, s, s]}, s:{s:b, s:b}, s:{s:i}}]}",
		       "name", c->name,
		       "network", api->input(h, "network") ? api->input(h, "network") : "default",
		       "ipAllocationPolicy", "createSubnetwork", 0, "useIpAliases",
		       in_bool(h, api, "ip_alias", 1),
		       "resourceLabels", OWNER_LABEL, env_name(h, api),
		       "nodePools", "name", "default-pool", "initialNodeCount",
		       (json_int_t)in_long(h, api, "num_nodes", 3), "config", "machineType",
		       api->input(h, "machine_type") ? api->input(h, "machine_type") : "e2-medium",
		       "imageType",
		       api->input(h, "image_type") ? api->input(h, "image_type") : "COS_CONTAINERD",
		       "diskSizeGb", (json_int_t)in_long(h, api, "disk_size_gb", 100), "oauthScopes",
		       "https://www.googleapis.com/auth/devstorage.read_only",
		       "https://www.googleapis.com/auth/logging.write",
		       "https://www.googleapis.com/auth/monitoring",
		       "https://www.googleapis.com/auth/service.management.readonly",
		       "https://www.googleapis.com/auth/servicecontrol",
		       "https://www.googleapis.com/auth/trace.append",
		       "management", "autoRepair", 1, "autoUpgrade", 1, "upgradeSettings",
		       "maxSurge", 1);
	if (cl == NULL)
		return NULL;
	/* "latest" and "-" mean GKE's default: say nothing. */
	if (version != NULL && version[0] != '\0' && strcmp(version, "latest") != 0 &&
	    strcmp(version, "-") != 0)
		json_object_set_new(cl, "initialClusterVersion", json_string(version));
	snprintf(parent, sizeof(parent), "projects/%s/locations/%s", c->project, c->zone);
	return json_pack("{s:o, s:s}", "cluster", cl, "parent", parent);
}

static or_status
create_cluster(or_host *h, const struct or_host_api *api, const struct cluster_in *c)
{
	struct or_http_response r;
	json_t *body = create_body(h, api, c), *op = NULL;
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	char url[512];
	or_status st = OR_STATUS_FAILED;

	json_decref(body);
	if (text == NULL) {
		api->fail(h, "plugin", "out of memory");
		return OR_STATUS_FAILED;
	}
	snprintf(url, sizeof(url), "container:v1/projects/%s/locations/%s/clusters", c->project,
		 c->zone);
	api->log(h, OR_LOG_INFO, "creating cluster %s in %s", c->name, c->zone);
	if (api->gcp(h, "POST", url, text, &r) != 0) {
		free(text);
		return OR_STATUS_RETRY;
	}
	free(text);
	op = body_json(&r);
	if (op == NULL) {
		st = google_failed(h, api, &r, "creating the cluster");
	} else if (json_string_value(json_object_get(op, "name")) == NULL ||
		   api->state_set(h, "operation", json_string_value(json_object_get(op, "name"))) !=
			   0) {
		api->fail(h, "cloud", "the create answer named no operation");
	} else {
		st = OR_STATUS_OK;
	}
	json_decref(op);
	api->http_free(&r);
	return st;
}

static or_status
cluster_report(or_host *h, const struct or_host_api *api, const struct cluster_in *c,
	       json_t *cl)
{
	const char *endpoint = json_string_value(json_object_get(cl, "endpoint"));
	const char *ca = json_string_value(
		json_object_get(json_object_get(cl, "masterAuth"), "clusterCaCertificate"));
	const char *pods = json_string_value(json_object_get(cl, "clusterIpv4Cidr"));
	const char *svcs = json_string_value(json_object_get(cl, "servicesIpv4Cidr"));
	const char *self = json_string_value(json_object_get(cl, "selfLink"));
	const char *version = json_string_value(json_object_get(cl, "currentMasterVersion"));
	json_t *attrs;
	char *text;
	int rc;

	if (endpoint == NULL || ca == NULL || pods == NULL || svcs == NULL) {
		api->fail(h, "cloud", "cluster %s is RUNNING without endpoint, CA or CIDRs", c->name);
		return OR_STATUS_FAILED;
	}
	attrs = json_pack("{s:s, s:s, s:s, s:s, s:s?}", "zone", c->zone, "endpoint", endpoint,
			  "pod_cidr", pods, "service_cidr", svcs, "version", version);
	text = json_dumps(attrs, JSON_COMPACT);
	json_decref(attrs);
	rc = api->resource_put(h, "cluster", c->name, self, "RUNNING", text);
	free(text);
	if (rc != 0)
		return OR_STATUS_RETRY;
	api->output(h, "name", c->name);
	api->output(h, "location", c->zone);
	api->output(h, "endpoint", endpoint);
	api->output(h, "ca_certificate", ca);
	api->output(h, "pod_cidr", pods);
	api->output(h, "service_cidr", svcs);
	if (version != NULL)
		api->output(h, "version", version);
	if (self != NULL)
		api->output(h, "self_link", self);
	api->log(h, OR_LOG_INFO, "cluster %s is running: endpoint %s, pods %s, services %s",
		 c->name, endpoint, pods, svcs);
	return OR_STATUS_OK;
}

static or_status
cluster_apply(or_host *h, const struct or_host_api *api)
{
	struct cluster_in c;
	json_t *cl = NULL;
	const char *status;
	or_status st;
	int found, tries;

	if (cluster_inputs(h, api, &c) != 0)
		return OR_STATUS_FAILED;
	for (tries = 0; tries < 2; tries++) {
		if (wait_recorded(h, api, &c, CREATE_TIMEOUT_MS) != 0)
			return api->cancelled(h) ? OR_STATUS_CANCELLED : OR_STATUS_FAILED;
		found = cluster_get(h, api, &c, &cl);
		if (found < 0)
			return OR_STATUS_RETRY;
		if (found == 0) {
			st = create_cluster(h, api, &c);
			if (st != OR_STATUS_OK)
				return st;
			continue;
		}
		if (!owned_by_labels(json_object_get(cl, "resourceLabels"), env_name(h, api))) {
			api->fail(h, "conflict",
				  "a cluster named %s already exists in %s/%s and does not belong to "
				  "environment %s (no %s=%s label): choose another cluster_name",
				  c.name, c.project, c.zone, env_name(h, api), OWNER_LABEL,
				  env_name(h, api));
			json_decref(cl);
			return OR_STATUS_FAILED;
		}
		status = json_string_value(json_object_get(cl, "status"));
		if (status != NULL && strcmp(status, "RUNNING") == 0) {
			st = cluster_report(h, api, &c, cl);
			json_decref(cl);
			return st;
		}
		if (status != NULL && (strcmp(status, "ERROR") == 0 || strcmp(status, "STOPPING") == 0)) {
			api->fail(h, "cloud", "cluster %s is %s: %s", c.name, status,
				  json_string_value(json_object_get(cl, "statusMessage"))
					  ? json_string_value(json_object_get(cl, "statusMessage"))
					  : "no message");
			json_decref(cl);
			return OR_STATUS_FAILED;
		}
		/* Ours and still provisioning, with no operation recorded (a
		 * crash between create and state_set): wait on the cluster. */
		json_decref(cl);
		cl = NULL;
		api->log(h, OR_LOG_INFO, "cluster %s is %s; waiting", c.name,
			 status != NULL ? status : "?");
		if (api->sleep_ms(h, 5000) != 0)
			return OR_STATUS_CANCELLED;
		tries = 0;
	}
	api->fail(h, "cloud", "cluster %s did not come up", c.name);
	return OR_STATUS_RETRY;
}

/* LoadBalancer Services make cloud load balancers that outlive a deleted
 * cluster: delete them while the cluster still runs its controllers. */
static void
delete_load_balancers(or_host *h, const struct or_host_api *api, json_t *cl)
{
	const char *endpoint = json_string_value(json_object_get(cl, "endpoint"));
	const char *ca = json_string_value(
		json_object_get(json_object_get(cl, "masterAuth"), "clusterCaCertificate"));
	json_t *list = NULL, *item;
	char path[512];
	or_kube *k;
	size_t i;

	if (endpoint == NULL || ca == NULL)
		return;
	k = api->kube_open(h, endpoint, ca);
	if (k == NULL)
		return;
	/* No answer or no list: nothing to delete, the cluster goes anyway. */
	kube_get(api, k, "/api/v1/services", &list);
	json_array_foreach(json_object_get(list, "items"), i, item) {
		json_t *meta = json_object_get(item, "metadata");
		const char *type = json_string_value(
			json_object_get(json_object_get(item, "spec"), "type"));

		if (type == NULL || strcmp(type, "LoadBalancer") != 0)
			continue;
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services/%s",
			 json_string_value(json_object_get(meta, "namespace")),
			 json_string_value(json_object_get(meta, "name")));
		api->log(h, OR_LOG_INFO, "deleting LoadBalancer service %s", path + 18);
		kube_call(api, k, "DELETE", path, NULL);
	}
	json_decref(list);
	api->kube_close(k);
}

/* Firewall rules GKE made for the cluster are named gke-<cluster>-... */
static or_status
delete_gke_firewalls(or_host *h, const struct or_host_api *api, const struct cluster_in *c)
{
	struct or_http_response r;
	json_t *list, *item;
	char url[600], prefix[128];
	size_t i;

	snprintf(url, sizeof(url), "compute:projects/%s/global/firewalls", c->project);
	if (api->gcp(h, "GET", url, NULL, &r) != 0)
		return OR_STATUS_RETRY;
	list = body_json(&r);
	api->http_free(&r);
	snprintf(prefix, sizeof(prefix), "gke-%s-", c->name);
	json_array_foreach(json_object_get(list, "items"), i, item) {
		const char *name = json_string_value(json_object_get(item, "name"));

		if (name == NULL || strncmp(name, prefix, strlen(prefix)) != 0)
			continue;
		snprintf(url, sizeof(url), "compute:projects/%s/global/firewalls/%s", c->project,
			 name);
		api->log(h, OR_LOG_INFO, "deleting firewall rule %s that GKE made", name);
		if (api->gcp(h, "DELETE", url, NULL, &r) == 0)
			api->http_free(&r);
	}
	json_decref(list);
	return OR_STATUS_OK;
}

static or_status
cluster_destroy(or_host *h, const struct or_host_api *api)
{
	struct or_http_response r;
	struct cluster_in c;
	json_t *cl = NULL, *op;
	const char *status;
	int found;
	or_status st = OR_STATUS_OK;

	if (cluster_inputs(h, api, &c) != 0)
		return OR_STATUS_FAILED;
	found = cluster_get(h, api, &c, &cl);
	if (found < 0)
		return OR_STATUS_RETRY;
	if (found == 0) {
		api->log(h, OR_LOG_INFO, "cluster %s is gone already", c.name);
		goto forget;
	}
	if (!owned_by_labels(json_object_get(cl, "resourceLabels"), env_name(h, api))) {
		api->log(h, OR_LOG_WARN, "cluster %s does not belong to environment %s: left alone",
			 c.name, env_name(h, api));
		json_decref(cl);
		goto forget;
	}
	status = json_string_value(json_object_get(cl, "status"));
	if (status != NULL && strcmp(status, "RUNNING") == 0)
		delete_load_balancers(h, api, cl);
	if (status == NULL || strcmp(status, "STOPPING") != 0) {
		api->log(h, OR_LOG_INFO, "deleting cluster %s", c.name);
		if (api->gcp(h, "DELETE", c.path, NULL, &r) != 0) {
			json_decref(cl);
			return OR_STATUS_RETRY;
		}
		op = body_json(&r);
		if (op == NULL && r.status != 404) {
			st = google_failed(h, api, &r, "deleting the cluster");
			api->http_free(&r);
			json_decref(cl);
			return st;
		}
		if (op != NULL)
			api->state_set(h, "operation", json_string_value(json_object_get(op, "name")));
		json_decref(op);
		api->http_free(&r);
	}
	json_decref(cl);
	if (wait_recorded(h, api, &c, DELETE_TIMEOUT_MS) != 0)
		return api->cancelled(h) ? OR_STATUS_CANCELLED : OR_STATUS_RETRY;
	/* A cluster still STOPPING without a recorded operation: wait. */
	while ((found = cluster_get(h, api, &c, &cl)) == 1) {
		json_decref(cl);
		if (api->sleep_ms(h, 3000) != 0)
			return OR_STATUS_CANCELLED;
	}
	if (found < 0)
		return OR_STATUS_RETRY;
	st = delete_gke_firewalls(h, api, &c);
	if (st != OR_STATUS_OK)
		return st;
forget:
	return api->resource_drop(h, "cluster", c.name) == 0 ? OR_STATUS_OK : OR_STATUS_RETRY;
}

/* What apply would do, from a look at the cloud; changes nothing. */
static or_status
cluster_plan(or_host *h, const struct or_host_api *api)
{
	struct cluster_in c;
	json_t *cl = NULL;
	const char *version = api->input(h, "version");
	int found;

	if (cluster_inputs(h, api, &c) != 0)
		return OR_STATUS_FAILED;
	found = cluster_get(h, api, &c, &cl);
	if (found < 0)
		return OR_STATUS_RETRY;
	if (found == 0) {
		api->log(h, OR_LOG_INFO,
			 "would create GKE cluster %s in %s/%s: %ld x %s nodes (%s, %ld GB disks), "
			 "version %s, VPC-native (IP aliases)",
			 c.name, c.project, c.zone, in_long(h, api, "num_nodes", 3),
			 api->input(h, "machine_type") ? api->input(h, "machine_type") : "e2-medium",
			 api->input(h, "image_type") ? api->input(h, "image_type") : "COS_CONTAINERD",
			 in_long(h, api, "disk_size_gb", 100),
			 version != NULL && version[0] != '\0' ? version : "latest");
	} else if (owned_by_labels(json_object_get(cl, "resourceLabels"), env_name(h, api))) {
		api->log(h, OR_LOG_INFO, "cluster %s exists (%s) and belongs to this environment: "
					 "would adopt it", c.name,
			 json_string_value(json_object_get(cl, "status")));
	} else {
		api->fail(h, "conflict", "cluster %s exists in %s/%s and does not belong to "
					 "environment %s: apply would fail", c.name, c.project, c.zone,
			  env_name(h, api));
		json_decref(cl);
		return OR_STATUS_FAILED;
	}
	json_decref(cl);
	return OR_STATUS_OK;
}

static const struct or_plugin gke_cluster = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = OR_PLUGIN_ABI_MINOR,
	.name = "gke-cluster",
	.summary = "A GKE cluster (clusters.create), adopted when this environment made it",
	.inputs_schema =
		"{\"project\": {\"type\": \"string\", \"required\": true},"
		" \"zone\": {\"type\": \"string\", \"required\": true},"
		" \"name\": {\"type\": \"string\", \"required\": true},"
		" \"version\": {\"type\": \"string\", \"description\": \"latest, 1.X or exact\"},"
		" \"network\": {\"type\": \"string\"}, \"machine_type\": {\"type\": \"string\"},"
		" \"num_nodes\": {\"type\": \"integer\"}, \"disk_size_gb\": {\"type\": \"integer\"},"
		" \"image_type\": {\"type\": \"string\"}, \"ip_alias\": {\"type\": \"boolean\"}}",
	.outputs_schema =
		"{\"endpoint\": {\"type\": \"string\"}, \"ca_certificate\": {\"type\": \"string\","
		" \"description\": \"base64 PEM of the cluster CA\"},"
		" \"pod_cidr\": {\"type\": \"string\"}, \"service_cidr\": {\"type\": \"string\"},"
		" \"name\": {\"type\": \"string\"}, \"location\": {\"type\": \"string\"},"
		" \"version\": {\"type\": \"string\"}, \"self_link\": {\"type\": \"string\"}}",
	.capabilities = OR_CAP_DESTROY | OR_CAP_PLAN,
	.plan = cluster_plan,
	.apply = cluster_apply,
	.destroy = cluster_destroy,
};

OR_PLUGIN_EXPORT(gke_cluster)

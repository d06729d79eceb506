/*
 * gce-firewall.c - the tutorial's firewall rule, so that pods reach the
 * VM's service port:
 *
 *   gcloud compute firewall-rules create k8s-to-istio-gce \
 *     --description "Allow k8s pods IP range to GCE instance" \
 *     --source-ranges <clusterIpv4Cidr> --target-tags istio-gce \
 *     --action ALLOW --rules tcp:3550
 *
 * Firewall rules have no labels, so ownership is written into the
 * description ("... outrigger-env=<env>").  A rule of ours whose ranges,
 * tags or ports differ from the inputs is replaced (deleted, inserted); a
 * rule of that name without our mark fails the step.  Destroy deletes only
 * ours.  The insert carries a requestId kept in the step's state, and each
 * operation is recorded before it is waited on, so an attempt resumed
 * after a crash waits for it instead of inserting again.
 */
#include "rollout.h"

#define OP_TIMEOUT_MS (10L * 60 * 1000)

struct fw_in {
	const char *project, *name;
	char path[512];
};

static int
fw_inputs(or_host *h, const struct or_host_api *api, struct fw_in *f)
{
	f->project = need(h, api, "project");
	f->name = f->project != NULL ? need(h, api, "name") : NULL;
	if (f->name == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "compute:projects/%s/global/firewalls/%s", f->project,
		 f->name);
	return 0;
}

/* "tcp:3550" / "tcp" / "icmp" into {IPProtocol, ports}. */
static json_t *
allowed_rules(or_host *h, const struct or_host_api *api)
{
	json_t *in = in_json(h, api, "allow"), *out = json_array(), *v;
	const char *rule, *colon;
	size_t i;

	json_array_foreach(in, i, v) {
		rule = json_string_value(v);
		if (rule == NULL || rule[0] == '\0')
			continue;
		colon = strchr(rule, ':');
		if (colon == NULL)
			json_array_append_new(out, json_pack("{s:s}", "IPProtocol", rule));
		else
			json_array_append_new(out, json_pack("{s:s#, s:[s]}", "IPProtocol", rule,
							     (int)(colon - rule), "ports", colon + 1));
	}
	json_decref(in);
	return out;
}

static json_t *
rule_body(or_host *h, const struct or_host_api *api, const struct fw_in *f)
{
	const char *network = api->input(h, "network");
	const char *direction = api->input(h, "direction");
	json_t *ranges = in_json(h, api, "source_ranges"), *tags = in_json(h, api, "target_tags");
	char net[300], desc[256];

	snprintf(net, sizeof(net), "projects/%s/global/networks/%s", f->project,
		 network != NULL ? network : "default");
	snprintf(desc, sizeof(desc), "Allow the cluster's pods to reach the mesh VM. "
				     OWNER_LABEL "=%s", env_name(h, api));
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "name", f->name, "network", net,
			 "direction", direction != NULL ? direction : "INGRESS", "description", desc,
			 "sourceRanges", json_is_array(ranges) ? ranges : json_array(),
			 "targetTags", json_is_array(tags) ? tags : json_array(), "allowed",
			 allowed_rules(h, api));
}

/* Same ranges, tags and rules (the parts that decide what is open). */
static int
rule_matches(const json_t *have, const json_t *want)
{
	static const char *keys[] = {"sourceRanges", "targetTags", "allowed", "direction"};
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!json_equal(json_object_get(have, keys[i]), json_object_get(want, keys[i])))
			return 0;
	return 1;
}

/* Wait for the operation recorded in state "operation", then forget it. */
static or_status
wait_recorded(or_host *h, const struct or_host_api *api)
{
	const char *op = api->state_get(h, "operation");

	if (op == NULL || op[0] == '\0')
		return OR_STATUS_OK;
	if (api->gcp_wait(h, op, OP_TIMEOUT_MS) != 0)
		return api->cancelled(h) ? OR_STATUS_CANCELLED : OR_STATUS_FAILED;
	return api->state_set(h, "operation", "") == 0 ? OR_STATUS_OK : OR_STATUS_RETRY;
}

static or_status
send_and_wait(or_host *h, const struct or_host_api *api, const struct fw_in *f,
	      const char *method, const char *url, json_t *body, const char *what)
{
	struct or_http_response r;
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	const char *self;
	json_t *op;
	or_status st = OR_STATUS_OK;

	(void)f;
	if (api->gcp(h, method, url, text, &r) != 0) {
		free(text);
		return OR_STATUS_RETRY;
	}
	free(text);
	op = body_json(&r);
	self = json_string_value(json_object_get(op, "selfLink"));
	if (op == NULL && r.status == 409 && strcmp(method, "POST") == 0) {
		/* An earlier attempt's insert got there first: look again. */
		st = OR_STATUS_RETRY;
		api->fail(h, "conflict", "firewall rule %s appeared while it was being created",
			  f->name);
	} else if (op == NULL && !(r.status == 404 && strcmp(method, "DELETE") == 0)) {
		st = google_failed(h, api, &r, what);
	} else if (self != NULL) {
		if (api->state_set(h, "operation", self) != 0)
			st = OR_STATUS_RETRY;
		else
			st = wait_recorded(h, api);
	}
	json_decref(op);
	api->http_free(&r);
	return st;
}

/* The insert URL, with this step's requestId. */
static or_status
insert_url(or_host *h, const struct or_host_api *api, const struct fw_in *f, char *url,
	   size_t size)
{
	const char *rid = request_id(h, api);

	if (rid == NULL)
		return OR_STATUS_RETRY;
	snprintf(url, size, "compute:projects/%s/global/firewalls?requestId=%s", f->project, rid);
	return OR_STATUS_OK;
}

static or_status
fw_apply(or_host *h, const struct or_host_api *api)
{
	struct or_http_response r;
	struct fw_in f;
	json_t *want, *have = NULL, *attrs;
	char url[600], *text;
	or_status st = OR_STATUS_OK;

	if (fw_inputs(h, api, &f) != 0)
		return OR_STATUS_FAILED;
	st = wait_recorded(h, api);
	if (st != OR_STATUS_OK)
		return st;
	want = rule_body(h, api, &f);
	if (api->gcp(h, "GET", f.path, NULL, &r) != 0) {
		json_decref(want);
		return OR_STATUS_RETRY;
	}
	if (r.status != 404 && (have = body_json(&r)) == NULL)
		st = google_failed(h, api, &r, "reading the firewall rule");
	api->http_free(&r);
	if (st != OR_STATUS_OK)
		goto out;
	if (have == NULL) {
		st = insert_url(h, api, &f, url, sizeof(url));
		api->log(h, OR_LOG_INFO, "creating firewall rule %s", f.name);
		if (st == OR_STATUS_OK)
			st = send_and_wait(h, api, &f, "POST", url, want, "creating the firewall rule");
		if (st == OR_STATUS_OK)
			forget_request_id(h, api);
	} else if (!owned_by_description(json_string_value(json_object_get(have, "description")),
					 env_name(h, api))) {
		api->fail(h, "conflict",
			  "a firewall rule named %s already exists in project %s and does not belong "
			  "to environment %s: choose another vm_name or delete the rule",
			  f.name, f.project, env_name(h, api));
		st = OR_STATUS_FAILED;
	} else if (!rule_matches(have, want)) {
		/* Replace rather than patch: a rule is cheap, and insert and
		 * delete are what every Compute endpoint serves. */
		api->log(h, OR_LOG_INFO, "firewall rule %s differs from the inputs: replacing it",
			 f.name);
		st = send_and_wait(h, api, &f, "DELETE", f.path, NULL, "replacing the firewall rule");
		if (st == OR_STATUS_OK)
			st = insert_url(h, api, &f, url, sizeof(url));
		if (st == OR_STATUS_OK)
			st = send_and_wait(h, api, &f, "POST", url, want, "creating the firewall rule");
		if (st == OR_STATUS_OK)
			forget_request_id(h, api);
	} else {
		api->log(h, OR_LOG_INFO, "firewall rule %s is in place", f.name);
	}
	if (st != OR_STATUS_OK)
		goto out;
	attrs = json_pack("{s:O, s:O, s:O, s:O}", "network", json_object_get(want, "network"),
			  "source_ranges", json_object_get(want, "sourceRanges"), "target_tags",
			  json_object_get(want, "targetTags"), "allowed",
			  json_object_get(want, "allowed"));
	text = json_dumps(attrs, JSON_COMPACT);
	json_decref(attrs);
	snprintf(url, sizeof(url), "https://compute.googleapis.com/compute/v1/projects/%s/global/"
				   "firewalls/%s", f.project, f.name);
	if (api->resource_put(h, "firewall_rule", f.name, url, "READY", text) != 0)
		st = OR_STATUS_RETRY;
	free(text);
	api->output(h, "name", f.name);
out:
	json_decref(want);
	json_decref(have);
	return st;
}

static or_status
fw_destroy(or_host *h, const struct or_host_api *api)
{
	struct or_http_response r;
	struct fw_in f;
	json_t *have = NULL;
	or_status st = OR_STATUS_OK;

	if (fw_inputs(h, api, &f) != 0)
		return OR_STATUS_FAILED;
	st = wait_recorded(h, api);
	if (st != OR_STATUS_OK)
		return st;
	if (api->gcp(h, "GET", f.path, NULL, &r) != 0)
		return OR_STATUS_RETRY;
	if (r.status != 404 && (have = body_json(&r)) == NULL)
		st = google_failed(h, api, &r, "reading the firewall rule");
	api->http_free(&r);
	if (st != OR_STATUS_OK)
		return st;
	if (have == NULL) {
		api->log(h, OR_LOG_INFO, "firewall rule %s is gone already", f.name);
	} else if (!owned_by_description(json_string_value(json_object_get(have, "description")),
					 env_name(h, api))) {
		api->log(h, OR_LOG_WARN, "firewall rule %s does not belong to environment %s: left "
					 "alone", f.name, env_name(h, api));
	} else {
		api->log(h, OR_LOG_INFO, "deleting firewall rule %s", f.name);
		st = send_and_wait(h, api, &f, "DELETE", f.path, NULL, "deleting the firewall rule");
	}
	json_decref(have);
	if (st == OR_STATUS_OK && api->resource_drop(h, "firewall_rule", f.name) != 0)
		st = OR_STATUS_RETRY;
	return st;
}

/* What apply would do, from a look at the cloud; changes nothing.  The
 * source range (the cluster's pod range) may not be known before apply. */
static or_status
fw_plan(or_host *h, const struct or_host_api *api)
{
	struct or_http_response r;
	struct fw_in f;
	json_t *have = NULL;
	const char *ranges = api->input(h, "source_ranges"), *allow = api->input(h, "allow");

	if (fw_inputs(h, api, &f) != 0)
		return OR_STATUS_FAILED;
	if (api->gcp(h, "GET", f.path, NULL, &r) != 0)
		return OR_STATUS_RETRY;
	have = body_json(&r);
	api->http_free(&r);
	if (have == NULL) {
		api->log(h, OR_LOG_INFO, "would create firewall rule %s: allow %s from %s to the VM",
			 f.name, allow != NULL ? allow : "[]",
			 ranges != NULL ? ranges : "(known after apply)");
	} else if (owned_by_description(json_string_value(json_object_get(have, "description")),
					env_name(h, api))) {
		api->log(h, OR_LOG_INFO, "firewall rule %s exists and belongs to this environment: "
					 "would keep it, or replace it if its ranges differ", f.name);
	} else {
		api->fail(h, "conflict", "firewall rule %s exists in project %s and does not belong "
					 "to environment %s: apply would fail", f.name, f.project,
			  env_name(h, api));
		json_decref(have);
		return OR_STATUS_FAILED;
	}
	json_decref(have);
	return OR_STATUS_OK;
}

static const struct or_plugin gce_firewall = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = OR_PLUGIN_ABI_MINOR,
	.name = "gce-firewall",
	.summary = "A VPC firewall rule (firewalls.insert), marked as this environment's",
	.inputs_schema =
		"{\"project\": {\"type\": \"string\", \"required\": true},"
		" \"name\": {\"type\": \"string\", \"required\": true},"
		" \"network\": {\"type\": \"string\"}, \"direction\": {\"type\": \"string\"},"
		" \"source_ranges\": {\"type\": \"array\"}, \"target_tags\": {\"type\": \"array\"},"
		" \"allow\": {\"type\": \"array\", \"description\": \"e.g. [\\\"tcp:3550\\\"]\"}}",
	.outputs_schema = "{\"name\": {\"type\": \"string\"}}",
	.capabilities = OR_CAP_DESTROY | OR_CAP_PLAN,
	.plan = fw_plan,
	.apply = fw_apply,
	.destroy = fw_destroy,
};

OR_PLUGIN_EXPORT(gce_firewall)

/*
 * gce-instance.c - the tutorial's VM:
 *
 *   gcloud compute instances create istio-gce --zone us-west2-a \
 *     --image-family ubuntu-2204-lts --image-project ubuntu-os-cloud \
 *     --tags istio-gce --machine-type n1-standard-2
 *
 * plus what `gcloud compute ssh` does the first time: a key pair of our
 * own (ed25519, kept as the environment's secret "vm_ssh_key") whose
 * public half goes into the instance's ssh-keys metadata for user
 * "outrigger", so the bootstrap step can log in with libssh2.
 *
 * Idempotent: the insert carries a requestId recorded before it is sent
 * (Google answers a repeated insert with the same operation), an instance
 * with this environment's label is adopted (its ssh-keys brought up to
 * date with setMetadata), one without it fails the step.  Destroy deletes
 * only an instance with our label.
 */
#include "rollout.h"

#define SSH_USER "outrigger"
#define SSH_SECRET "vm_ssh_key"
#define SSH_PUBLIC_STATE "ssh_public_key"
#define OP_TIMEOUT_MS (20L * 60 * 1000)
#define RUNNING_TIMEOUT_MS (10L * 60 * 1000)

struct vm_in {
	const char *project, *zone, *name;
	char path[512];		/* compute:projects/P/zones/Z/instances/NAME */
};

static int
vm_inputs(or_host *h, const struct or_host_api *api, struct vm_in *v)
{
	v->project = need(h, api, "project");
	v->zone = v->project != NULL ? need(h, api, "zone") : NULL;
	v->name = v->zone != NULL ? need(h, api, "name") : NULL;
	if (v->name == NULL)
		return -1;
	snprintf(v->path, sizeof(v->path), "compute:projects/%s/zones/%s/instances/%s",
		 v->project, v->zone, v->name);
	return 0;
}

static int
vm_get(or_host *h, const struct or_host_api *api, const struct vm_in *v, json_t **out)
{
	return google_get(h, api, v->path, "reading the instance", out);
}

/* The login key: made once per environment, kept as a secret; its
 * public line in the step's state. */
static const char *
ssh_public_line(or_host *h, const struct or_host_api *api)
{
	struct or_pki_files k;
	const char *pub = api->state_get(h, SSH_PUBLIC_STATE);
	char comment[128];
	int ok;

	if (pub != NULL && pub[0] != '\0' && api->secret_get(h, SSH_SECRET) != NULL)
		return pub;
	snprintf(comment, sizeof(comment), "%s@outrigger-%s", SSH_USER, env_name(h, api));
	if (api->pki_ssh_key(h, comment, &k) != 0)
		return NULL;
	ok = api->secret_put(h, SSH_SECRET, k.key) == 0 &&
	     api->state_set(h, SSH_PUBLIC_STATE, k.ca_cert) == 0;
	api->pki_free(&k);
	return ok ? api->state_get(h, SSH_PUBLIC_STATE) : NULL;
}

static json_t *
insert_body(or_host *h, const struct or_host_api *api, const struct vm_in *v, const char *pub)
{
	const char *family = api->input(h, "image_family");
	const char *image_project = api->input(h, "image_project");
	const char *network = api->input(h, "network");
	const char *machine = api->input(h, "machine_type");
	json_t *tags = in_json(h, api, "tags"), *nic, *body;
	char mt[300], img[300], net[300], keys[1024];

	snprintf(mt, sizeof(mt), "zones/%s/machineTypes/%s", v->zone,
		 machine != NULL ? machine : "n1-standard-2");
	snprintf(img, sizeof(img), "projects/%s/global/images/family/%s",
		 image_project != NULL ? image_project : "debian-cloud",
		 family != NULL ? family : "debian-12");
	snprintf(net, sizeof(net), "projects/%s/global/networks/%s", v->project,
		 network != NULL ? network : "default");
	snprintf(keys, sizeof(keys), "%s:%s\n", SSH_USER, pub);
	if (!json_is_array(tags)) {
		json_decref(tags);
		tags = json_pack("[s]", v->name);
	}
	nic = json_pack("{s:s}", "network", net);
	if (in_bool(h, api, "external_ip", 1))
		json_object_set_new(nic, "accessConfigs",
				    json_pack("[{s:s, s:s, s:s}]", "name", "external-nat", "type",
					      "ONE_TO_ONE_NAT", "networkTier", "PREMIUM"));
	body = json_pack("{s:s, s:s, s:[{s:b, s:b, s:s, s:s, s:{s:s}}], s:[o], s:{s:o}, "
			 "s:{s:[{s:s, s:s}]}, s:{s:s}, s:[{s:s, s:[s]}], s:{s:b, s:s}}",
			 "name", v->name, "machineType", mt, "disks", "boot", 1, "autoDelete", 1,
			 "mode", "READ_WRITE", "type", "PERSISTENT", "initializeParams",
			 "sourceImage", img, "networkInterfaces", nic, "tags", "items", tags,
			 "metadata", "items", "key", "ssh-keys", "value", keys, "labels",
			 OWNER_LABEL, env_name(h, api), "serviceAccounts", "email", "default",
			 "scopes", "https://www.googleapis.com/auth/cloud-platform", "scheduling",
			 "automaticRestart", 1, "onHostMaintenance", "MIGRATE");
	return body;
}

/* Wait for a zone operation recorded in state "operation". */
static int
wait_recorded(or_host *h, const struct or_host_api *api, const struct vm_in *v)
{
	const char *op = api->state_get(h, "operation");
	char url[600];

	if (op == NULL || op[0] == '\0')
		return 0;
	snprintf(url, sizeof(url), "compute:projects/%s/zones/%s/operations/%s", v->project,
		 v->zone, op);
	if (api->gcp_wait(h, url, OP_TIMEOUT_MS) != 0)
		return -1;
	api->state_set(h, "operation", "");
	return 0;
}

/* POST to url (insert, setMetadata, delete) and record the operation. */
static or_status
start_op(or_host *h, const struct or_host_api *api, const char *method, const char *url,
	 json_t *body, const char *what)
{
	struct or_http_response r;
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	json_t *op;
	or_status st = OR_STATUS_OK;

	if (api->gcp(h, method, url, text, &r) != 0) {
		free(text);
		return OR_STATUS_RETRY;
	}
	free(text);
	op = body_json(&r);
	if (op == NULL)
		st = google_failed(h, api, &r, what);
	else if (api->state_set(h, "operation", json_string_value(json_object_get(op, "name"))) != 0)
		st = OR_STATUS_RETRY;
	json_decref(op);
	api->http_free(&r);
	return st;
}

/* The instance's ssh-keys must hold our line (the guest agent applies
 * metadata changes to a running VM, as Google's does). */
static or_status
ensure_key(or_host *h, const struct or_host_api *api, const struct vm_in *v, json_t *vm,
	   const char *pub)
{
	json_t *md = json_object_get(vm, "metadata"), *items, *item, *body;
	const char *have = NULL;
	char url[600], line[1024], *keys = NULL;
	size_t i;
	or_status st;

	items = json_object_get(md, "items");
	json_array_foreach(items, i, item)
		if (json_string_value(json_object_get(item, "key")) != NULL &&
		    strcmp(json_string_value(json_object_get(item, "key")), "ssh-keys") == 0)
			have = json_string_value(json_object_get(item, "value"));
	snprintf(line, sizeof(line), "%s:%s", SSH_USER, pub);
	if (have != NULL && strstr(have, line) != NULL)
		return OR_STATUS_OK;
	if (asprintf(&keys, "%s%s%s\n", have != NULL ? have : "",
		     have != NULL && have[0] != '\0' && have[strlen(have) - 1] != '\n' ? "\n" : "",
		     line) < 0)
		return OR_STATUS_FAILED;
	body = json_deep_copy(md);
	items = json_array();
	json_array_foreach(json_object_get(md, "items"), i, item)
		if (strcmp(json_string_value(json_object_get(item, "key")), "ssh-keys") != 0)
			json_array_append(items, item);
	json_array_append_new(items, json_pack("{s:s, s:s}", "key", "ssh-keys", "value", keys));
	json_object_set_new(body, "items", items);
	free(keys);
	snprintf(url, sizeof(url), "%s/setMetadata", v->path);
	api->log(h, OR_LOG_INFO, "adding the login key of user %s to %s", SSH_USER, v->name);
	st = start_op(h, api, "POST", url, body, "setting the instance's ssh-keys");
	json_decref(body);
	if (st == OR_STATUS_OK && wait_recorded(h, api, v) != 0)
		st = api->cancelled(h) ? OR_STATUS_CANCELLED : OR_STATUS_FAILED;
	return st;
}

static or_status
vm_report(or_host *h, const struct or_host_api *api, const struct vm_in *v, json_t *vm)
{
	json_t *nic = json_array_get(json_object_get(vm, "networkInterfaces"), 0);
	const char *ip = json_string_value(json_object_get(nic, "networkIP"));
	const char *nat = json_string_value(
		json_object_get(json_array_get(json_object_get(nic, "accessConfigs"), 0), "natIP"));
	const char *tag = json_string_value(
		json_array_get(json_object_get(json_object_get(vm, "tags"), "items"), 0));
	json_t *attrs;
	char *text;
	int rc;

	if (ip == NULL) {
		api->fail(h, "cloud", "instance %s is running without an internal IP", v->name);
		return OR_STATUS_FAILED;
	}
	attrs = json_pack("{s:s, s:s, s:s?, s:s?, s:s?}", "zone", v->zone, "internal_ip", ip,
			  "external_ip", nat, "tag", tag, "id",
			  json_string_value(json_object_get(vm, "id")));
	text = json_dumps(attrs, JSON_COMPACT);
	json_decref(attrs);
	rc = api->resource_put(h, "vm", v->name,
			       json_string_value(json_object_get(vm, "selfLink")), "RUNNING", text);
	free(text);
	if (rc != 0)
		return OR_STATUS_RETRY;
	api->output(h, "name", v->name);
	api->output(h, "internal_ip", ip);
	api->output(h, "external_ip", nat != NULL ? nat : ip);
	api->output(h, "tag", tag != NULL ? tag : v->name);
	api->output(h, "ssh_user", SSH_USER);
	api->output(h, "ssh_key_ref", SSH_SECRET);
	api->output(h, "zone", v->zone);
	api->log(h, OR_LOG_INFO, "instance %s is running: internal %s, external %s", v->name, ip,
		 nat != NULL ? nat : "(none)");
	return OR_STATUS_OK;
}

static or_status
vm_apply(or_host *h, const struct or_host_api *api)
{
	struct vm_in v;
	json_t *vm = NULL, *body;
	const char *pub, *status, *rid;
	char url[600];
	long waited = 0;
	or_status st;
	int found;

	if (vm_inputs(h, api, &v) != 0)
		return OR_STATUS_FAILED;
	pub = ssh_public_line(h, api);
	if (pub == NULL)
		return OR_STATUS_RETRY;
	if (wait_recorded(h, api, &v) != 0)
		return api->cancelled(h) ? OR_STATUS_CANCELLED : OR_STATUS_FAILED;
	found = vm_get(h, api, &v, &vm);
	if (found < 0)
		return OR_STATUS_RETRY;
	if (found == 0) {
		/* The requestId is ours before the insert goes out: a retry
		 * after a lost answer gets the same operation back. */
		rid = request_id(h, api);
		if (rid == NULL)
			return OR_STATUS_RETRY;
		body = insert_body(h, api, &v, pub);
		snprintf(url, sizeof(url), "compute:projects/%s/zones/%s/instances?requestId=%s",
			 v.project, v.zone, rid);
		api->log(h, OR_LOG_INFO, "creating instance %s in %s", v.name, v.zone);
		st = start_op(h, api, "POST", url, body, "creating the instance");
		json_decref(body);
		if (st != OR_STATUS_OK)
			return st;
		if (wait_recorded(h, api, &v) != 0)
			return api->cancelled(h) ? OR_STATUS_CANCELLED : OR_STATUS_FAILED;
		forget_request_id(h, api);
		found = vm_get(h, api, &v, &vm);
		if (found <= 0) {
			if (found == 0)
				api->fail(h, "cloud", "instance %s vanished after it was created", v.name);
			return OR_STATUS_RETRY;
		}
	}
	if (!owned_by_labels(json_object_get(vm, "labels"), env_name(h, api))) {
		api->fail(h, "conflict",
			  "an instance named %s already exists in %s/%s and does not belong to "
			  "environment %s (no %s=%s label): choose another vm_name",
			  v.name, v.project, v.zone, env_name(h, api), OWNER_LABEL, env_name(h, api));
		json_decref(vm);
		return OR_STATUS_FAILED;
	}
	/* STAGING until the machine runs; sshd answers only then. */
	while ((status = json_string_value(json_object_get(vm, "status"))) != NULL &&
	       strcmp(status, "RUNNING") != 0) {
		if (strcmp(status, "TERMINATED") == 0 || strcmp(status, "STOPPING") == 0 ||
		    strcmp(status, "STOPPED") == 0) {
			api->fail(h, "cloud", "instance %s is %s", v.name, status);
			json_decref(vm);
			return OR_STATUS_FAILED;
		}
		if (waited % 10000 == 0)
			api->log(h, OR_LOG_INFO, "instance %s is %s", v.name, status);
		json_decref(vm);
		vm = NULL;
		if (waited >= RUNNING_TIMEOUT_MS || api->sleep_ms(h, 1000) != 0)
			return api->cancelled(h) ? OR_STATUS_CANCELLED : OR_STATUS_RETRY;
		waited += 1000;
		if (vm_get(h, api, &v, &vm) != 1)
			return OR_STATUS_RETRY;
	}
	st = ensure_key(h, api, &v, vm, pub);
	if (st == OR_STATUS_OK)
		st = vm_report(h, api, &v, vm);
	json_decref(vm);
	return st;
}

static or_status
vm_destroy(or_host *h, const struct or_host_api *api)
{
	struct vm_in v;
	json_t *vm = NULL;
	int found;
	or_status st;

	if (vm_inputs(h, api, &v) != 0)
		return OR_STATUS_FAILED;
	if (wait_recorded(h, api, &v) != 0 && api->cancelled(h))
		return OR_STATUS_CANCELLED;
	found = vm_get(h, api, &v, &vm);
	if (found < 0)
		return OR_STATUS_RETRY;
	if (found == 1 && !owned_by_labels(json_object_get(vm, "labels"), env_name(h, api))) {
		api->log(h, OR_LOG_WARN, "instance %s does not belong to environment %s: left alone",
			 v.name, env_name(h, api));
	} else if (found == 1) {
		api->log(h, OR_LOG_INFO, "deleting instance %s", v.name);
		st = start_op(h, api, "DELETE", v.path, NULL, "deleting the instance");
		if (st != OR_STATUS_OK) {
			json_decref(vm);
			return st;
		}
		if (wait_recorded(h, api, &v) != 0) {
			json_decref(vm);
			return api->cancelled(h) ? OR_STATUS_CANCELLED : OR_STATUS_RETRY;
		}
	} else {
		api->log(h, OR_LOG_INFO, "instance %s is gone already", v.name);
	}
	json_decref(vm);
	return api->resource_drop(h, "vm", v.name) == 0 ? OR_STATUS_OK : OR_STATUS_RETRY;
}

/* What apply would do, from a look at the cloud; changes nothing. */
static or_status
vm_plan(or_host *h, const struct or_host_api *api)
{
	struct vm_in v;
	json_t *vm = NULL;
	int found;

	if (vm_inputs(h, api, &v) != 0)
		return OR_STATUS_FAILED;
	found = vm_get(h, api, &v, &vm);
	if (found < 0)
		return OR_STATUS_RETRY;
	if (found == 0) {
		api->log(h, OR_LOG_INFO,
			 "would create instance %s in %s/%s: %s from image family %s/%s, login key "
			 "for user %s in its ssh-keys%s",
			 v.name, v.project, v.zone,
			 api->input(h, "machine_type") ? api->input(h, "machine_type") : "n1-standard-2",
			 api->input(h, "image_project") ? api->input(h, "image_project") : "debian-cloud",
			 api->input(h, "image_family") ? api->input(h, "image_family") : "debian-12",
			 SSH_USER, in_bool(h, api, "external_ip", 1) ? ", an external IP" : "");
	} else if (owned_by_labels(json_object_get(vm, "labels"), env_name(h, api))) {
		api->log(h, OR_LOG_INFO, "instance %s exists (%s) and belongs to this environment: "
					 "would adopt it", v.name,
			 json_string_value(json_object_get(vm, "status")));
	} else {
		api->fail(h, "conflict", "instance %s exists in %s/%s and does not belong to "
					 "environment %s: apply would fail", v.name, v.project, v.zone,
			  env_name(h, api));
		json_decref(vm);
		return OR_STATUS_FAILED;
	}
	json_decref(vm);
	return OR_STATUS_OK;
}

static const struct or_plugin gce_instance = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = OR_PLUGIN_ABI_MINOR,
	.name = "gce-instance",
	.summary = "A Compute Engine VM with a login key of Outrigger's own in its ssh-keys",
	.inputs_schema =
		"{\"project\": {\"type\": \"string\", \"required\": true},"
		" \"zone\": {\"type\": \"string\", \"required\": true},"
		" \"name\": {\"type\": \"string\", \"required\": true},"
		" \"machine_type\": {\"type\": \"string\"}, \"image_family\": {\"type\": \"string\"},"
		" \"image_project\": {\"type\": \"string\"}, \"network\": {\"type\": \"string\"},"
		" \"tags\": {\"type\": \"array\"}, \"external_ip\": {\"type\": \"boolean\"}}",
	.outputs_schema =
		"{\"internal_ip\": {\"type\": \"string\"}, \"external_ip\": {\"type\": \"string\"},"
		" \"tag\": {\"type\": \"string\"}, \"ssh_user\": {\"type\": \"string\"},"
		" \"ssh_key_ref\": {\"type\": \"string\", \"description\": \"secret with the private key\"},"
		" \"name\": {\"type\": \"string\"}, \"zone\": {\"type\": \"string\"}}",
	.capabilities = OR_CAP_DESTROY | OR_CAP_PLAN,
	.plan = vm_plan,
	.apply = vm_apply,
	.destroy = vm_destroy,
};

OR_PLUGIN_EXPORT(gce_instance)

/*
 * preflight.c - what the cloud would refuse, found in seconds rather than
 * after minutes: the zone exists, the cluster version is one GKE offers
 * there (serverConfig), the node image type is valid (not the tutorial's
 * COS), and the VM's image family resolves.  Every other step waits for
 * this one, so bad parameters cost one short step and nothing is made.
 *
 * It makes nothing, so destroy has nothing to undo.
 */
#include "rollout.h"

/* "latest"/"-" take the default; "1.31" the newest 1.31.x; else exact. */
static const char *
pick_version(const json_t *cfg, const char *want)
{
	const json_t *valid = json_object_get(cfg, "validMasterVersions"), *v;
	size_t i, n = want != NULL ? strlen(want) : 0;

	if (want == NULL || want[0] == '\0' || strcmp(want, "latest") == 0 || strcmp(want, "-") == 0)
		return json_string_value(json_object_get(cfg, "defaultClusterVersion"));
	json_array_foreach(valid, i, v) {
		const char *s = json_string_value(v);

		if (s != NULL && (strcmp(s, want) == 0 ||
				  (strncmp(s, want, n) == 0 && (s[n] == '.' || s[n] == '-'))))
			return s; /* the list is newest first */
	}
	return NULL;
}

static or_status
preflight_apply(or_host *h, const struct or_host_api *api)
{
	const char *project = need(h, api, "project"), *zone, *version, *image, *picked;
	const char *family, *image_project;
	json_t *doc = NULL;
	char url[600], list[1024];
	size_t i, used = 0;
	json_t *v;
	int found;
	or_status st = OR_STATUS_FAILED;

	zone = project != NULL ? need(h, api, "zone") : NULL;
	if (zone == NULL)
		return OR_STATUS_FAILED;
	version = api->input(h, "cluster_version");
	image = api->input(h, "image_type");
	family = api->input(h, "vm_image_family");
	image_project = api->input(h, "vm_image_project");

	snprintf(url, sizeof(url), "compute:projects/%s/zones/%s", project, zone);
	found = google_get(h, api, url, "checking the zone", &doc);
	json_decref(doc);
	if (found < 0)
		return OR_STATUS_RETRY;
	if (found == 0) {
		api->fail(h, "preflight", "zone %s does not exist in project %s", zone, project);
		return OR_STATUS_FAILED;
	}
	api->log(h, OR_LOG_INFO, "zone %s: ok", zone);

	snprintf(url, sizeof(url), "container:v1/projects/%s/locations/%s/serverConfig", project,
		 zone);
	found = google_get(h, api, url, "reading GKE's serverConfig", &doc);
	if (found <= 0) {
		if (found == 0)
			api->fail(h, "preflight", "GKE offers no clusters in %s", zone);
		return found < 0 ? OR_STATUS_RETRY : OR_STATUS_FAILED;
	}
	picked = pick_version(doc, version);
	if (picked == NULL) {
		list[0] = '\0';
		json_array_foreach(json_object_get(doc, "validMasterVersions"), i, v)
			if (used < sizeof(list) - 64)
				used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
							 i ? ", " : "", json_string_value(v));
		api->fail(h, "preflight", "cluster_version %s is not offered by GKE in %s (valid: %s)",
			  version, zone, list);
		goto out;
	}
	api->log(h, OR_LOG_INFO, "cluster version %s: ok (%s)", version ? version : "latest",
		 picked);
	api->output(h, "cluster_version", picked);
	if (image != NULL && image[0] != '\0') {
		json_array_foreach(json_object_get(doc, "validImageTypes"), i, v)
			if (json_string_value(v) != NULL && strcmp(json_string_value(v), image) == 0)
				break;
		if (i == json_array_size(json_object_get(doc, "validImageTypes"))) {
			api->fail(h, "preflight",
				  "image type %s is not valid for GKE in %s%s", image, zone,
				  strcmp(image, "COS") == 0
					  ? " (COS ran Docker, which GKE dropped in 1.24: use "
					    "COS_CONTAINERD)"
					  : "");
			goto out;
		}
		api->log(h, OR_LOG_INFO, "node image type %s: ok", image);
	}
	json_decref(doc);
	doc = NULL;

	if (family != NULL && image_project != NULL) {
		snprintf(url, sizeof(url), "compute:projects/%s/global/images/family/%s",
			 image_project, family);
		found = google_get(h, api, url, "checking the VM's image family", &doc);
		if (found < 0)
			return OR_STATUS_RETRY;
		if (found == 0) {
			api->fail(h, "preflight", "image family %s does not exist in project %s",
				  family, image_project);
			return OR_STATUS_FAILED;
		}
		api->log(h, OR_LOG_INFO, "image family %s/%s: ok (%s)", image_project, family,
			 json_string_value(json_object_get(doc, "name")));
	}
	st = OR_STATUS_OK;
out:
	json_decref(doc);
	return st;
}

static or_status
preflight_destroy(or_host *h, const struct or_host_api *api)
{
	(void)h;
	(void)api;
	return OR_STATUS_OK;
}

static const struct or_plugin preflight = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = OR_PLUGIN_ABI_MINOR,
	.name = "preflight",
	.summary = "Checks the zone, GKE version, node image type and VM image before anything is made",
	.inputs_schema =
		"{\"project\": {\"type\": \"string\", \"required\": true},"
		" \"zone\": {\"type\": \"string\", \"required\": true},"
		" \"cluster_version\": {\"type\": \"string\"}, \"image_type\": {\"type\": \"string\"},"
		" \"vm_image_family\": {\"type\": \"string\"}, \"vm_image_project\": {\"type\": \"string\"}}",
	.outputs_schema = "{\"cluster_version\": {\"type\": \"string\"}}",
	/* Its checks only read: the plan runs them too. */
	.capabilities = OR_CAP_DESTROY | OR_CAP_PLAN,
	.plan = preflight_apply,
	.apply = preflight_apply,
	.destroy = preflight_destroy,
};

OR_PLUGIN_EXPORT(preflight)

/*
 * provider.c - the providers' settings (see provider.h).
 */
#include "provider.h"

#include <string.h>

/* Google's public endpoints: the `gcp` provider's, and the shape the
 * sandbox's endpoints.json copies. */
#define GCP_COMPUTE "https://compute.googleapis.com/compute/v1/"
#define GCP_CONTAINER "https://container.googleapis.com/"
#define GCP_SERVICEUSAGE "https://serviceusage.googleapis.com/"
#define GCP_TOKEN_URI "https://oauth2.googleapis.com/token"

/* The account and project a key file names; its private key is not read
 * into anything that lives on. */
static or_rc
key_identity(const char *path, json_t *p, struct or_err *err)
{
	json_t *k = json_load_file(path, 0, NULL);
	const char *email = json_string_value(json_object_get(k, "client_email"));
	const char *project = json_string_value(json_object_get(k, "project_id"));

	if (email == NULL || !json_is_string(json_object_get(k, "private_key"))) {
		json_decref(k);
		return or_fail(err, OR_E_INVALID, NULL, "gcp_credentials",
			       "%s is not a service-account key file (no client_email or private_key)",
			       path);
	}
	json_object_set_new(p, "account", json_string(email));
	if (project != NULL && json_object_get(p, "project") == NULL)
		json_object_set_new(p, "project", json_string(project));
	json_decref(k);
	return OR_OK;
}

or_rc
provider_load(const char *sandbox_endpoints, const char *gcp_key, const char *cache_dir,
	      json_t **out, struct or_err *err)
{
	json_t *all = json_object(), *sb, *g;
	const char *key;
	or_rc rc = OR_OK;

	*out = NULL;
	if (sandbox_endpoints != NULL) {
		sb = json_load_file(sandbox_endpoints, 0, NULL);
		if (!json_is_object(sb)) {
			json_decref(sb);
			json_decref(all);
			return or_fail(err, OR_E_INVALID, NULL, "sandbox_endpoints",
				       "%s is not a JSON object", sandbox_endpoints);
		}
		json_object_set_new(sb, "name", json_string("sandbox"));
		json_object_set_new(sb, "cache_dir", json_string(cache_dir));
		key = json_string_value(json_object_get(sb, "service_account_key_file"));
		if (key != NULL)
			rc = key_identity(key, sb, err);
		json_object_set_new(all, "sandbox", sb);
	}
	g = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", "gcp", "compute", GCP_COMPUTE,
		      "container", GCP_CONTAINER, "serviceusage", GCP_SERVICEUSAGE, "token_uri",
		      GCP_TOKEN_URI, "cache_dir", cache_dir);
	if (gcp_key != NULL && rc == OR_OK) {
		json_object_set_new(g, "service_account_key_file", json_string(gcp_key));
		rc = key_identity(gcp_key, g, err);
	}
	json_object_set_new(all, "gcp", g);
	if (rc != OR_OK) {
		json_decref(all);
		return rc;
	}
	*out = all;
	return OR_OK;
}

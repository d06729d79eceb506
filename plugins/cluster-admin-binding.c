/*
 * cluster-admin-binding.c - the tutorial's
 *
 *     kubectl create clusterrolebinding cluster-admin-binding \
 *         --clusterrole=cluster-admin --user=$(gcloud config get-value core/account)
 *
 * so that the account that installs Istio may create its cluster roles.
 * The account is the provider's own (its service account's email, as
 * gcloud's core/account would be), unless the step names a `user`.
 *
 * Idempotent: server-side apply of the same binding.  The binding carries
 * the label outrigger-env=<environment>; one of that name without it was
 * made by someone else and is neither taken over nor deleted.
 */
#include "rollout.h"

static const char *
binding_name(or_host *h, const struct or_host_api *api)
{
	const char *n = api->input(h, "name");

	return n != NULL && n[0] != '\0' ? n : "cluster-admin-binding";
}

/* The binding's current owner label: 1 ours, 0 absent, -1 someone
 * else's (fail set), -2 no answer (fail set). */
static int
cab_owner(or_host *h, const struct or_host_api *api, or_kube *k, const char *name)
{
	char path[512];
	json_t *o;
	long st;
	int rc;

	snprintf(path, sizeof(path),
		 "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/%s", name);
	st = kube_get(api, k, path, &o);
	if (st == 0)
		return -2;
	if (st == 404)
		return 0;
	if (o == NULL) {
		api->fail(h, "kubernetes", "GET ClusterRoleBinding %s: HTTP %ld", name, st);
		return -2;
	}
	rc = owned_object(o, env_name(h, api)) ? 1 : -1;
	if (rc < 0)
		api->fail(h, "conflict",
			  "ClusterRoleBinding %s exists and was not made by this environment; "
			  "remove it or choose another name", name);
	json_decref(o);
	return rc;
}

/* The account to bind: the input "user", else the provider's account.
 * It may point into *key (json_decref it after the last use). */
static const char *
cab_user(or_host *h, const struct or_host_api *api, json_t **key)
{
	const char *user = api->input(h, "user");

	*key = NULL;
	if (user == NULL || user[0] == '\0')
		user = api->provider(h, "account");
	if (user == NULL || user[0] == '\0') {
		/* gcloud's core/account for a service-account login is the key's
		 * client_email (only that is read from the key file). */
		const char *kf = api->provider(h, "service_account_key_file");

		*key = kf != NULL ? json_load_file(kf, 0, NULL) : NULL;
		user = json_string_value(json_object_get(*key, "client_email"));
	}
	if (user == NULL || user[0] == '\0') {
		/* No account to name (a token file without an identity). */
		user = "outrigger";
		api->log(h, OR_LOG_WARN, "the provider names no account; binding user \"%s\"", user);
	}
	return user;
}

static or_status
cab_apply(or_host *h, const struct or_host_api *api)
{
	const char *name = binding_name(h, api), *user;
	or_status st = OR_STATUS_FAILED;
	json_t *doc = NULL, *key = NULL;
	char *text = NULL;
	or_kube *k;
	int own;

	user = cab_user(h, api, &key);
	k = kube_from_inputs(h, api);
	if (k == NULL) {
		json_decref(key);
		return OR_STATUS_FAILED;
	}
	own = cab_owner(h, api, k, name);
	if (own == -1 || own == -2) {
		st = own == -2 ? OR_STATUS_RETRY : OR_STATUS_FAILED;
		goto out;
	}
	doc = json_pack("{s:s, s:s, s:{s:s, s:{s:s, s:s}}, s:{s:s, s:s, s:s}, s:[{s:s, s:s, s:s}]}",
			"apiVersion", "rbac.authorization.k8s.io/v1", "kind", "ClusterRoleBinding",
			"metadata", "name", name, "labels", OWNER_LABEL, env_name(h, api),
			"app.kubernetes.io/managed-by", "outrigger",
			"roleRef", "apiGroup", "rbac.authorization.k8s.io", "kind", "ClusterRole",
			"name", "cluster-admin",
			"subjects", "apiGroup", "rbac.authorization.k8s.io", "kind", "User", "name",
			user);
	text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
	if (text == NULL) {
		api->fail(h, "input", "the environment or user name is not valid text");
		goto out;
	}
	if (api->kube_apply(k, text, NULL) < 0)
		goto out;
	api->log(h, OR_LOG_INFO, "clusterrolebinding %s: cluster-admin for %s", name, user);
	api->output(h, "name", name);
	api->output(h, "user", user);
	st = OR_STATUS_OK;
out:
	free(text);
	json_decref(doc);
	json_decref(key); /* user may point into it until here */
	api->kube_close(k);
	return st;
}

static or_status
cab_destroy(or_host *h, const struct or_host_api *api)
{
	const char *name = binding_name(h, api);
	or_status st = OR_STATUS_FAILED;
	char path[512];
	or_kube *k;
	long http;
	int own;

	k = kube_from_inputs(h, api);
	if (k == NULL)
		return OR_STATUS_FAILED;
	own = cab_owner(h, api, k, name);
	if (own == -2) {
		st = OR_STATUS_RETRY;
		goto out;
	}
	if (own <= 0) {
		/* Gone, or someone else's: nothing of ours to remove. */
		api->log(h, OR_LOG_INFO, "clusterrolebinding %s: %s", name,
			 own == 0 ? "already gone" : "not ours, left alone");
		st = OR_STATUS_OK;
		goto out;
	}
	snprintf(path, sizeof(path),
		 "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/%s", name);
	http = kube_call(api, k, "DELETE", path, NULL);
	if (http == 0) {
		st = OR_STATUS_RETRY;
		goto out;
	}
	if (http >= 300 && http != 404) {
		api->fail(h, "kubernetes", "DELETE ClusterRoleBinding %s: HTTP %ld", name, http);
		goto out;
	}
	api->log(h, OR_LOG_INFO, "clusterrolebinding %s deleted", name);
	st = OR_STATUS_OK;
out:
	api->kube_close(k);
	return st;
}

/* What apply would do; changes nothing.  Looks at the cluster only when
 * it exists already. */
static or_status
cab_plan(or_host *h, const struct or_host_api *api)
{
	const char *name = binding_name(h, api), *user;
	json_t *key = NULL;
	or_kube *k = plan_kube(h, api);
	int own = -3; /* -3: not looked */

	user = cab_user(h, api, &key);
	if (k != NULL)
		own = cab_owner(h, api, k, name);
	api->kube_close(k);
	if (own == -1) {
		/* cab_owner has said why: apply would stop at the same point. */
		json_decref(key);
		return OR_STATUS_FAILED;
	}
	api->log(h, OR_LOG_INFO, "%swould bind cluster-admin to %s (ClusterRoleBinding %s%s)",
		 own == -3 ? "the cluster does not exist yet: " : own == -2 ?
		 "the cluster does not answer: " : "", user, name,
		 own == 1 ? ": exists and is this environment's, would adopt it" :
		 own == 0 ? ": would create it" : "");
	json_decref(key);
	return OR_STATUS_OK;
}

static const struct or_plugin cluster_admin_binding = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = 1,
	.name = "cluster-admin-binding",
	.summary = "Grants the installing account cluster-admin (kubectl create clusterrolebinding)",
	.inputs_schema =
		"{\"endpoint\": {\"type\": \"string\", \"required\": true, \"description\": "
		"\"the cluster's API address\"},"
		"\"ca_certificate\": {\"type\": \"string\", \"required\": true, \"description\": "
		"\"the cluster's CA (PEM or base64)\"},"
		"\"name\": {\"type\": \"string\", \"description\": \"binding name "
		"(cluster-admin-binding)\"},"
		"\"user\": {\"type\": \"string\", \"description\": \"account to bind (default: the "
		"provider's account)\"}}",
	.outputs_schema = "{\"name\": {\"type\": \"string\"}, \"user\": {\"type\": \"string\"}}",
	.capabilities = OR_CAP_PLAN | OR_CAP_DESTROY,
	.plan = cab_plan,
	.apply = cab_apply,
	.destroy = cab_destroy,
};

OR_PLUGIN_EXPORT(cluster_admin_binding)

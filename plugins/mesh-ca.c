/*
 * mesh-ca.c - the mesh's certificate authority, made by Outrigger with
 * OpenSSL: a root and, for the cluster, an intermediate that istiod signs
 * workload certificates with (Istio's "plug in CA certificates" task).
 *
 * What it corrects: the tutorial copied Istio's samples/certs into
 * `cacerts` -- public test keys with which anyone can mint identities in
 * the mesh.  Here every environment gets its own root.
 *
 * Idempotent: the CA is made once per environment and kept (keys as the
 * environment's secrets, certificates in the step's state), so a re-apply
 * hands the same certificates to istio-install and vm-files; making a new
 * root would break every identity already issued.  Nothing lives in the
 * cloud, so destroy only says so; the secrets go with the environment.
 *
 * key_bits is not used: keys are EC P-256 (see server/pki.h for why), which
 * istiod, Envoy and Go all accept.
 */
#include "rollout.h"

#define KEY_SECRET "mesh_ca_key"
#define ROOT_KEY_SECRET "mesh_root_key"

static or_status
ca_apply(or_host *h, const struct or_host_api *api)
{
	const char *root = api->state_get(h, "root_cert");
	const char *ca = api->state_get(h, "ca_cert");
	const char *chain = api->state_get(h, "cert_chain");
	const char *org = api->input(h, "organization");
	struct or_pki_files f;

	if (root == NULL || ca == NULL || chain == NULL || api->secret_get(h, KEY_SECRET) == NULL) {
		api->log(h, OR_LOG_INFO, "making the mesh root and the intermediate of cluster %s",
			 api->input(h, "cluster") ? api->input(h, "cluster") : "(unnamed)");
		if (api->pki_mesh_ca(h, org != NULL ? org : "Outrigger", api->input(h, "cluster"),
				     (int)in_long(h, api, "root_days", 3650),
				     (int)in_long(h, api, "intermediate_days", 3650), &f) != 0)
			return OR_STATUS_FAILED;
		/* Keys first: certificates without their keys are useless. */
		if (api->secret_put(h, KEY_SECRET, f.key) != 0 ||
		    api->secret_put(h, ROOT_KEY_SECRET, f.root_key) != 0 ||
		    api->state_set(h, "root_cert", f.root_cert) != 0 ||
		    api->state_set(h, "ca_cert", f.ca_cert) != 0 ||
		    api->state_set(h, "cert_chain", f.cert_chain) != 0) {
			api->pki_free(&f);
			return OR_STATUS_RETRY;
		}
		api->pki_free(&f);
		root = api->state_get(h, "root_cert");
		ca = api->state_get(h, "ca_cert");
		chain = api->state_get(h, "cert_chain");
	} else {
		api->log(h, OR_LOG_INFO, "the mesh CA exists; keeping it");
	}
	api->output(h, "root_cert", root);
	api->output(h, "ca_cert", ca);
	api->output(h, "cert_chain", chain);
	api->output(h, "ca_key_ref", KEY_SECRET);
	api->output(h, "trust_domain",
		    api->input(h, "trust_domain") ? api->input(h, "trust_domain") : "cluster.local");
	return OR_STATUS_OK;
}

static or_status
ca_destroy(or_host *h, const struct or_host_api *api)
{
	api->log(h, OR_LOG_INFO, "the mesh CA lives only in Outrigger; nothing to delete in the "
				 "cloud");
	return OR_STATUS_OK;
}

static or_status
ca_plan(or_host *h, const struct or_host_api *api)
{
	if (api->state_get(h, "root_cert") != NULL && api->secret_get(h, KEY_SECRET) != NULL)
		api->log(h, OR_LOG_INFO, "would keep this environment's mesh CA");
	else
		api->log(h, OR_LOG_INFO, "would make a mesh root (O=%s, %ld days) and an intermediate "
					 "for cluster %s (%ld days), EC P-256, for Istio's cacerts",
			 api->input(h, "organization") ? api->input(h, "organization") : "Outrigger",
			 in_long(h, api, "root_days", 3650),
			 api->input(h, "cluster") ? api->input(h, "cluster") : "(unnamed)",
			 in_long(h, api, "intermediate_days", 3650));
	return OR_STATUS_OK;
}

static const struct or_plugin mesh_ca = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = OR_PLUGIN_ABI_MINOR,
	.name = "mesh-ca",
	.summary = "The mesh's own root and intermediate CA for Istio's cacerts (never the samples)",
	.inputs_schema =
		"{\"trust_domain\": {\"type\": \"string\"}, \"organization\": {\"type\": \"string\"},"
		" \"cluster\": {\"type\": \"string\"}, \"root_days\": {\"type\": \"integer\"},"
		" \"intermediate_days\": {\"type\": \"integer\"}, \"key_bits\": {\"type\": \"integer\"},"
		" \"intermediate_san_dns\": {\"type\": \"string\"}}",
	.outputs_schema =
		"{\"root_cert\": {\"type\": \"string\"}, \"ca_cert\": {\"type\": \"string\"},"
		" \"cert_chain\": {\"type\": \"string\"}, \"ca_key_ref\": {\"type\": \"string\"},"
		" \"trust_domain\": {\"type\": \"string\"}}",
	.capabilities = OR_CAP_DESTROY | OR_CAP_PLAN,
	.plan = ca_plan,
	.apply = ca_apply,
	.destroy = ca_destroy,
};

OR_PLUGIN_EXPORT(mesh_ca)

/*
 * step_pki.c - the PKI entries of the plugin ABI, over server/pki.c.  Keys
 * go back to the plugin in its own output struct only; errors name
 * inputs, never their values.
 */
#include "step_pki.h"

#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "pki.h"

static int
pki_failed(or_host *h, const struct or_err *err)
{
	step_host_api.fail(h, "pki", "%s", err->message);
	return -1;
}

int
step_pki_mesh_ca(or_host *h, const char *org, const char *cluster, int root_days, int ca_days,
		 struct or_pki_files *out)
{
	struct pki_cert *root = NULL;
	struct pki_istio ist;
	struct or_err err;
	char *root_pem = NULL, *root_key = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	memset(&ist, 0, sizeof(ist));
	if (pki_ca_new(org, "Root CA", root_days, &root, &err) != OR_OK ||
	    pki_cert_pem(root, &root_pem, &root_key, &err) != OR_OK ||
	    pki_istio_cacerts(root, org, cluster, ca_days, &ist, &err) != OR_OK) {
		pki_failed(h, &err);
		goto out;
	}
	out->root_cert = root_pem;
	out->root_key = root_key;
	out->ca_cert = ist.ca_cert;
	out->key = ist.ca_key;
	out->cert_chain = ist.cert_chain;
	root_pem = root_key = NULL;
	ist.ca_cert = ist.ca_key = ist.cert_chain = NULL;
	rc = 0;
out:
	free(root_pem);
	pki_secret_free(root_key);
	pki_istio_clear(&ist);
	pki_cert_free(root);
	return rc;
}

int
step_pki_workload(or_host *h, const char *ca_cert, const char *ca_key, const char *root_cert,
		  const char *trust_domain, const char *ns, const char *sa, int days,
		  struct or_pki_files *out)
{
	struct pki_cert *ca = NULL;
	struct pki_workload w;
	struct or_err err;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	memset(&w, 0, sizeof(w));
	if (pki_cert_load(ca_cert, ca_key, &ca, &err) != OR_OK ||
	    pki_workload_cert(ca, root_cert, trust_domain, ns, sa, days, &w, &err) != OR_OK) {
		pki_failed(h, &err);
		goto out;
	}
	out->ca_cert = w.cert;
	out->key = w.key;
	out->cert_chain = w.cert_chain;
	out->root_cert = w.root_cert;
	memset(&w, 0, sizeof(w));
	rc = 0;
out:
	pki_workload_clear(&w);
	pki_cert_free(ca);
	return rc;
}

int
step_pki_ssh_key(or_host *h, const char *comment, struct or_pki_files *out)
{
	struct or_err err;

	memset(out, 0, sizeof(*out));
	if (pki_ssh_keypair(comment, &out->key, &out->ca_cert, &err) != OR_OK)
		return pki_failed(h, &err);
	return 0;
}

void
step_pki_free(struct or_pki_files *f)
{
	if (f == NULL)
		return;
	free(f->root_cert);
	free(f->ca_cert);
	pki_secret_free(f->key);
	free(f->cert_chain);
	pki_secret_free(f->root_key);
	memset(f, 0, sizeof(*f));
}

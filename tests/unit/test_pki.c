/*
 * test_pki.c - certificates, SSH keys and JWTs, each checked by the real
 * tools that will consume them: `openssl verify`/`x509`/`dgst` and
 * `ssh-keygen`.  Those tools are test dependencies (debian-packages.txt:
 * openssl, openssh-client); a test that needs a missing one is skipped.
 */
#include "check.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "pki.h"
#include "unit.h"

static int
have(const char *tool)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

/* Run cmd (stderr folded into stdout), keep at most size-1 bytes of its
 * output in out, return its exit status (-1 if it did not exit). */
static int
run(const char *cmd, char *out, size_t size)
{
	char full[2048], drain[256];
	size_t n = 0, k;
	FILE *p;
	int st;

	snprintf(full, sizeof(full), "%s 2>&1", cmd);
	p = popen(full, "r");
	if (p == NULL)
		return -1;
	while (n + 1 < size && (k = fread(out + n, 1, size - 1 - n, p)) > 0)
		n += k;
	while (fread(drain, 1, sizeof(drain), p) > 0)
		;
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
put(const char *dir, const char *name, const void *data, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	CHECK(fwrite(data, 1, len, f) == len);
	fclose(f);
	chmod(path, 0600); /* ssh-keygen refuses readable private keys */
}

static void
put_str(const char *dir, const char *name, const char *s)
{
	put(dir, name, s, strlen(s));
}

static int
count(const char *hay, const char *needle)
{
	int n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/* No 16-byte run of the key's base64 body appears in msg. */
static int
leaks(const char *msg, const char *secret)
{
	const char *line = strchr(secret, '\n');
	char piece[17];

	while (line != NULL && line[1] != '\0' && line[1] != '-') {
		memcpy(piece, line + 1, 16);
		piece[16] = '\0';
		if (strchr(piece, '\n') == NULL && strstr(msg, piece) != NULL)
			return 1;
		line = strchr(line + 1, '\n');
	}
	return 0;
}

/* ---- base64 ------------------------------------------------------------- */

static void
t_pki_base64(void)
{
	static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==",
					  "Zm9vYmE=", "Zm9vYmFy"};
	static const char *const url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg",
					  "Zm9vYmE", "Zm9vYmFy"};
	static const unsigned char bin[] = {0xfb, 0xff, 0xbf, 0x00, 0x3e};
	struct or_err e;
	unsigned char *d;
	size_t i, n;
	char *s;

	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		s = pki_b64_encode(in[i], strlen(in[i]));
		CHECK_STR(s, std[i]);
		free(s);
		s = pki_b64url_encode(in[i], strlen(in[i]));
		CHECK_STR(s, url[i]);
		free(s);
		CHECK_INT(pki_b64_decode(std[i], strlen(std[i]), &d, &n, &e), OR_OK);
		CHECK_INT(n, strlen(in[i]));
		CHECK_STR((char *)d, in[i]);
		free(d);
		CHECK_INT(pki_b64url_decode(url[i], strlen(url[i]), &d, &n, &e), OR_OK);
		CHECK_STR((char *)d, in[i]);
		free(d);
	}
	/* The two alphabets differ in 62 and 63. */
	s = pki_b64_encode(bin, sizeof(bin));
	CHECK_STR(s, "+/+/AD4=");
	free(s);
	s = pki_b64url_encode(bin, sizeof(bin));
	CHECK_STR(s, "-_-_AD4");
	CHECK_INT(pki_b64url_decode(s, strlen(s), &d, &n, &e), OR_OK);
	CHECK(n == sizeof(bin) && memcmp(d, bin, n) == 0);
	free(d);
	free(s);

	/* Strictness: each of these has exactly one thing wrong. */
	CHECK_INT(pki_b64_decode("Zg", 2, &d, &n, &e), OR_E_MALFORMED);	  /* no padding */
	CHECK(d == NULL);
	CHECK_INT(pki_b64_decode("Zh==", 4, &d, &n, &e), OR_E_MALFORMED); /* stray bits */
	CHECK_INT(pki_b64_decode("Zm 9", 4, &d, &n, &e), OR_E_MALFORMED); /* space */
	CHECK_INT(pki_b64_decode("-_-_", 4, &d, &n, &e), OR_E_MALFORMED); /* url chars */
	CHECK_INT(pki_b64_decode("Z===", 4, &d, &n, &e), OR_E_MALFORMED);
	CHECK_INT(pki_b64url_decode("Zg==", 4, &d, &n, &e), OR_E_MALFORMED); /* padding */
	CHECK_INT(pki_b64url_decode("+/", 2, &d, &n, &e), OR_E_MALFORMED);
	CHECK_INT(pki_b64url_decode("Zm9vY", 5, &d, &n, &e), OR_E_MALFORMED); /* length */
	CHECK_INT(pki_b64url_decode("Zh", 2, &d, &n, &e), OR_E_MALFORMED);
}

/* ---- certificates ------------------------------------------------------- */

static void
t_pki_ca_new(void)
{
	char dir[64], out[4096], *cert = NULL, *key = NULL, cmd[512];
	struct pki_cert *ca = NULL;
	struct or_err e;

	if (!have("openssl"))
		SKIP("openssl(1) is not installed (Debian package openssl)");
	tmpdir_make(dir, sizeof(dir));
	CHECK_INT(pki_ca_new("Outrigger", "cluster-ca", 3650, &ca, &e), OR_OK);
	CHECK_INT(pki_cert_pem(ca, &cert, &key, &e), OR_OK);
	CHECK(strncmp(key, "-----BEGIN PRIVATE KEY-----\n", 28) == 0);
	put_str(dir, "ca.pem", cert);
	put_str(dir, "ca.key", key);
	snprintf(cmd, sizeof(cmd),
		 "openssl x509 -in %s/ca.pem -noout -subject -issuer -serial "
		 "-ext basicConstraints,keyUsage,subjectKeyIdentifier -text", dir);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	CHECK(strstr(out, "subject=O = Outrigger, CN = cluster-ca\n") != NULL);
	CHECK(strstr(out, "issuer=O = Outrigger, CN = cluster-ca\n") != NULL);
	CHECK(strstr(out, "X509v3 Basic Constraints: critical\n    CA:TRUE\n") != NULL);
	CHECK(strstr(out, "X509v3 Key Usage: critical\n    Digital Signature, "
			  "Certificate Sign, CRL Sign\n") != NULL);
	CHECK(strstr(out, "X509v3 Subject Key Identifier:") != NULL);
	CHECK(strstr(out, "ASN1 OID: prime256v1") != NULL);
	CHECK(strstr(out, "Signature Algorithm: ecdsa-with-SHA256") != NULL);
	/* serial=<32 hex digits>: 16 bytes. */
	{
		const char *s = strstr(out, "serial=");
		CHECK(s != NULL && strspn(s + 7, "0123456789ABCDEF") == 32);
	}
	/* A self-signed root verifies against itself, and its key matches. */
	snprintf(cmd, sizeof(cmd), "openssl verify -CAfile %s/ca.pem %s/ca.pem", dir, dir);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	snprintf(cmd, sizeof(cmd),
		 "test \"$(openssl pkey -in %s/ca.key -pubout)\" = "
		 "\"$(openssl x509 -in %s/ca.pem -noout -pubkey)\"", dir, dir);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	pki_cert_free(ca);

	CHECK_INT(pki_ca_new(NULL, "x", 0, &ca, &e), OR_E_INVALID);
	CHECK_STR(e.field, "days");
	CHECK(ca == NULL);
	CHECK_INT(pki_ca_new(NULL, "", 1, &ca, &e), OR_E_INVALID);
	CHECK_STR(e.field, "cn");
	free(cert);
	pki_secret_free(key);
	tmpdir_remove(dir);
}

static void
t_pki_cert_load(void)
{
	struct pki_cert *ca = NULL, *other = NULL, *c = NULL, *leaf = NULL;
	char *cert = NULL, *key = NULL, *ocert = NULL, *okey = NULL, *again = NULL;
	struct pki_issue_opts o = {0};
	struct or_err e;

	CHECK_INT(pki_ca_new(NULL, "a", 1, &ca, &e), OR_OK);
	CHECK_INT(pki_ca_new(NULL, "b", 1, &other, &e), OR_OK);
	CHECK_INT(pki_cert_pem(ca, &cert, &key, &e), OR_OK);
	CHECK_INT(pki_cert_pem(other, &ocert, &okey, &e), OR_OK);

	CHECK_INT(pki_cert_load(cert, key, &c, &e), OR_OK);
	CHECK_INT(pki_cert_pem(c, &again, NULL, &e), OR_OK);
	CHECK_STR(again, cert);
	pki_cert_free(c);
	c = NULL;

	/* A key of another certificate, and the message names no key bytes. */
	CHECK_INT(pki_cert_load(cert, okey, &c, &e), OR_E_INVALID);
	CHECK(c == NULL);
	CHECK_STR(e.field, "key_pem");
	CHECK(!leaks(e.message, okey));
	CHECK_INT(pki_cert_load("junk", NULL, &c, &e), OR_E_INVALID);
	CHECK_STR(e.field, "cert_pem");
	CHECK_INT(pki_cert_load(cert, "-----BEGIN PRIVATE KEY-----\nAAAA\n"
				      "-----END PRIVATE KEY-----\n", &c, &e),
		  OR_E_INVALID);
	CHECK_STR(e.field, "key_pem");

	/* Without its key: a trust anchor, not an issuer. */
	CHECK_INT(pki_cert_load(cert, NULL, &c, &e), OR_OK);
	o.cn = "leaf";
	o.days = 1;
	CHECK_INT(pki_issue(c, &o, &leaf, &e), OR_E_INVALID);
	CHECK_STR(e.field, "ca");
	free(again);
	again = NULL;
	{
		char *k2 = NULL;

		CHECK_INT(pki_cert_pem(c, &again, &k2, &e), OR_E_INVALID);
		CHECK(again == NULL && k2 == NULL);
	}

	pki_cert_free(c);
	pki_cert_free(NULL);
	pki_cert_free(ca);
	pki_cert_free(other);
	free(cert);
	free(ocert);
	free(again);
	pki_secret_free(key);
	pki_secret_free(okey);
	pki_secret_free(NULL);
}

/* A cluster CA and an API-server certificate, as the simulated cloud
 * makes them for its Kubernetes endpoints. */
static void
t_pki_issue_server(void)
{
	static const char *const dns[] = {"kubernetes", "kubernetes.default.svc",
					  "*.example.test"};
	static const char *const ips[] = {"127.0.0.1", "::1"};
	struct pki_cert *ca = NULL, *srv = NULL, *rsa = NULL, *bad = NULL;
	struct pki_issue_opts o = {0};
	char dir[64], cmd[768], out[8192];
	char *ca_pem = NULL, *srv_pem = NULL, *srv_key = NULL, *rsa_pem = NULL;
	struct or_err e;

	if (!have("openssl"))
		SKIP("openssl(1) is not installed (Debian package openssl)");
	tmpdir_make(dir, sizeof(dir));
	CHECK_INT(pki_ca_new(NULL, "cluster-1-ca", 30, &ca, &e), OR_OK);
	o.cn = "kube-apiserver";
	o.days = 7;
	o.dns = dns;
	o.n_dns = 3;
	o.ips = ips;
	o.n_ips = 2;
	o.server_auth = 1;
	CHECK_INT(pki_issue(ca, &o, &srv, &e), OR_OK);
	CHECK_INT(pki_cert_pem(ca, &ca_pem, NULL, &e), OR_OK);
	CHECK_INT(pki_cert_pem(srv, &srv_pem, &srv_key, &e), OR_OK);
	put_str(dir, "ca.pem", ca_pem);
	put_str(dir, "srv.pem", srv_pem);

	snprintf(cmd, sizeof(cmd),
		 "openssl x509 -in %s/srv.pem -noout -ext basicConstraints,"
		 "keyUsage,extendedKeyUsage,subjectAltName", dir);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	CHECK(strstr(out, "    DNS:kubernetes, DNS:kubernetes.default.svc, "
			  "DNS:*.example.test, IP Address:127.0.0.1, "
			  "IP Address:0:0:0:0:0:0:0:1\n") != NULL);
	CHECK(strstr(out, "critical\n    CA:FALSE\n") != NULL);
	CHECK(strstr(out, "X509v3 Key Usage: critical\n    Digital Signature\n") != NULL);
	CHECK(strstr(out, "    TLS Web Server Authentication\n") != NULL);

	/* What a TLS client checks: chain, purpose, name or address. */
	snprintf(cmd, sizeof(cmd),
		 "openssl verify -x509_strict -CAfile %s/ca.pem -purpose sslserver "
		 "-verify_hostname kubernetes.default.svc %s/srv.pem", dir, dir);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	snprintf(cmd, sizeof(cmd),
		 "openssl verify -CAfile %s/ca.pem -verify_ip 127.0.0.1 %s/srv.pem",
		 dir, dir);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	snprintf(cmd, sizeof(cmd),
		 "openssl verify -CAfile %s/ca.pem -verify_hostname evil.test "
		 "%s/srv.pem", dir, dir);
	CHECK(run(cmd, out, sizeof(out)) != 0);
	snprintf(cmd, sizeof(cmd),
		 "openssl verify -CAfile %s/ca.pem -purpose sslclient %s/srv.pem",
		 dir, dir);
	CHECK(run(cmd, out, sizeof(out)) != 0); /* serverAuth only */
	CHECK_INT(pki_chain_verify(ca_pem, NULL, srv_pem, &e), OR_OK);
	CHECK_INT(pki_chain_verify(NULL, NULL, srv_pem, &e), OR_E_INVALID);
	CHECK_STR(e.field, "root_pem");

	/* RSA on request, with keyEncipherment. */
	o.key = PKI_KEY_RSA_2048;
	o.n_dns = 1;
	o.n_ips = 0;
	CHECK_INT(pki_issue(ca, &o, &rsa, &e), OR_OK);
	CHECK_INT(pki_cert_pem(rsa, &rsa_pem, NULL, &e), OR_OK);
	put_str(dir, "rsa.pem", rsa_pem);
	snprintf(cmd, sizeof(cmd), "openssl x509 -in %s/rsa.pem -noout -text", dir);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	CHECK(strstr(out, "Public-Key: (2048 bit)") != NULL);
	CHECK(strstr(out, "Digital Signature, Key Encipherment") != NULL);

	/* Refused input, each naming its field. */
	o.key = PKI_KEY_EC_P256;
	{
		static const char *const smuggle[] = {"a.test,URI:spiffe://x"};
		static const char *const badip[] = {"999.1.1.1"};
		static const char *const baduri[] = {"no scheme here"};

		o.dns = smuggle;
		CHECK_INT(pki_issue(ca, &o, &bad, &e), OR_E_INVALID);
		CHECK_STR(e.field, "dns");
		o.dns = dns;
		o.ips = badip;
		o.n_ips = 1;
		CHECK_INT(pki_issue(ca, &o, &bad, &e), OR_E_INVALID);
		CHECK_STR(e.field, "ips");
		o.n_ips = 0;
		o.uris = baduri;
		o.n_uris = 1;
		CHECK_INT(pki_issue(ca, &o, &bad, &e), OR_E_INVALID);
		CHECK_STR(e.field, "uris");
		o.n_uris = 0;
		o.cn = "0123456789012345678901234567890123456789012345678901234567890123456789";
		CHECK_INT(pki_issue(ca, &o, &bad, &e), OR_E_INVALID);
		CHECK_STR(e.field, "cn");
		o.cn = "x";
		o.days = 36501;
		CHECK_INT(pki_issue(ca, &o, &bad, &e), OR_E_INVALID);
		CHECK_STR(e.field, "days");
		CHECK(bad == NULL);
	}
	/* A leaf is not an issuer. */
	o.days = 1;
	CHECK_INT(pki_issue(srv, &o, &bad, &e), OR_E_INVALID);
	CHECK_STR(e.field, "ca");

	pki_cert_free(ca);
	pki_cert_free(srv);
	pki_cert_free(rsa);
	free(ca_pem);
	free(srv_pem);
	free(rsa_pem);
	pki_secret_free(srv_key);
	tmpdir_remove(dir);
}

/* The four `cacerts` files, then a VM workload certificate from them. */
static void
t_pki_istio(void)
{
	struct pki_istio p = {0}, q = {0}, r = {0};
	struct pki_workload w = {0}, w2 = {0};
	struct pki_cert *ca = NULL, *root = NULL, *sub = NULL;
	struct pki_issue_opts o = {0};
	char dir[64], cmd[1024], out[8192], *s;
	struct or_err e;

	if (!have("openssl"))
		SKIP("openssl(1) is not installed (Debian package openssl)");
	tmpdir_make(dir, sizeof(dir));
	CHECK_INT(pki_istio_cacerts(NULL, "Istio", "cluster1", 3650, &p, &e), OR_OK);
	CHECK(p.root_key != NULL);
	put_str(dir, "root-cert.pem", p.root_cert);
	put_str(dir, "ca-cert.pem", p.ca_cert);
	put_str(dir, "ca-key.pem", p.ca_key);
	put_str(dir, "cert-chain.pem", p.cert_chain);

	/* cert-chain.pem = ca-cert.pem then root-cert.pem, as the Makefile's
	 * `cat` makes it. */
	CHECK(strncmp(p.cert_chain, p.ca_cert, strlen(p.ca_cert)) == 0);
	CHECK_STR(p.cert_chain + strlen(p.ca_cert), p.root_cert);
	CHECK_INT(count(p.cert_chain, "-----BEGIN CERTIFICATE-----"), 2);
	CHECK(strncmp(p.ca_key, "-----BEGIN PRIVATE KEY-----\n", 28) == 0);

	/* istiod's check: ca-cert verifies to root-cert through the chain. */
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl verify -x509_strict -CAfile root-cert.pem "
		 "-untrusted cert-chain.pem ca-cert.pem", dir);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	CHECK_STR(out, "ca-cert.pem: OK\n");
	CHECK_INT(pki_chain_verify(p.root_cert, p.cert_chain, p.ca_cert, &e), OR_OK);
	snprintf(cmd, sizeof(cmd),
		 "cd %s && test \"$(openssl pkey -in ca-key.pem -pubout)\" = "
		 "\"$(openssl x509 -in ca-cert.pem -noout -pubkey)\"", dir);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl x509 -in ca-cert.pem -noout -subject -ext "
		 "basicConstraints,keyUsage,extendedKeyUsage,subjectAltName", dir);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	CHECK(strstr(out, "subject=O = Istio, L = cluster1, CN = Intermediate CA\n") != NULL);
	CHECK(strstr(out, "X509v3 Basic Constraints: critical\n    CA:TRUE, pathlen:0\n") != NULL);
	CHECK(strstr(out, "X509v3 Key Usage: critical\n    Digital Signature, "
			  "Certificate Sign, CRL Sign\n") != NULL);
	CHECK(strstr(out, "    DNS:istiod.istio-system.svc\n") != NULL);
	CHECK(strstr(out, "Extended Key Usage") == NULL);
	/* authorityKeyIdentifier of the intermediate = the root's key id. */
	snprintf(cmd, sizeof(cmd),
		 "cd %s && a=$(openssl x509 -in ca-cert.pem -noout -ext "
		 "authorityKeyIdentifier | sed -n 2p) && s=$(openssl x509 -in "
		 "root-cert.pem -noout -ext subjectKeyIdentifier | sed -n 2p) && "
		 "test -n \"$a\" && test \"$a\" = \"$s\"", dir);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);

	/* The VM's workload certificate, signed by the loaded intermediate. */
	CHECK_INT(pki_cert_load(p.ca_cert, p.ca_key, &ca, &e), OR_OK);
	CHECK_INT(pki_workload_cert(ca, p.root_cert, "cluster.local", "default",
				    "productcatalogservice", 1, &w, &e), OR_OK);
	put_str(dir, "leaf.pem", w.cert);
	put_str(dir, "key.pem", w.key);
	put_str(dir, "workload-chain.pem", w.cert_chain);
	CHECK_STR(w.root_cert, p.root_cert);
	CHECK_INT(count(w.cert_chain, "-----BEGIN CERTIFICATE-----"), 3);
	CHECK(strncmp(w.cert_chain, w.cert, strlen(w.cert)) == 0);
	s = w.cert_chain + strlen(w.cert);
	CHECK(strncmp(s, p.ca_cert, strlen(p.ca_cert)) == 0);
	CHECK_STR(s + strlen(p.ca_cert), p.root_cert);

	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl verify -CAfile root-cert.pem -untrusted "
		 "ca-cert.pem leaf.pem", dir);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	CHECK_STR(out, "leaf.pem: OK\n");
	/* Envoy uses it both ways (mTLS). */
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl verify -x509_strict -purpose sslserver -CAfile "
		 "root-cert.pem -untrusted ca-cert.pem leaf.pem && openssl verify "
		 "-purpose sslclient -CAfile root-cert.pem -untrusted "
		 "workload-chain.pem leaf.pem", dir);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl x509 -in leaf.pem -noout -ext "
		 "subjectAltName,basicConstraints,extendedKeyUsage", dir);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	CHECK(strstr(out, "    URI:spiffe://cluster.local/ns/default/sa/"
			  "productcatalogservice\n") != NULL);
	CHECK(strstr(out, "DNS:") == NULL); /* the tutorial's bug */
	CHECK(strstr(out, "critical\n    CA:FALSE\n") != NULL);
	CHECK(strstr(out, "TLS Web Server Authentication, TLS Web Client "
			  "Authentication") != NULL);
	snprintf(cmd, sizeof(cmd),
		 "cd %s && test \"$(openssl pkey -in key.pem -pubout)\" = "
		 "\"$(openssl x509 -in leaf.pem -noout -pubkey)\"", dir);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);

	/* A certificate from another mesh's CA does not verify here. */
	CHECK_INT(pki_istio_cacerts(NULL, "Istio", "other", 30, &q, &e), OR_OK);
	put_str(dir, "other-root.pem", q.root_cert);
	put_str(dir, "other-ca.pem", q.ca_cert);
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl verify -CAfile root-cert.pem -untrusted "
		 "other-ca.pem leaf.pem", dir);
	CHECK(run(cmd, out, sizeof(out)) != 0);
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl verify -CAfile other-root.pem -untrusted "
		 "ca-cert.pem leaf.pem", dir);
	CHECK(run(cmd, out, sizeof(out)) != 0);
	CHECK_INT(pki_chain_verify(q.root_cert, p.ca_cert, w.cert, &e), OR_E_INVALID);
	CHECK(strstr(e.message, "unable to get local issuer certificate") != NULL);
	/* ... and a root_pem that is not the CA's is caught at issue time. */
	CHECK_INT(pki_workload_cert(ca, q.root_cert, "cluster.local", "default",
				    "sa", 1, &w2, &e), OR_E_INVALID);
	CHECK_STR(e.field, "root_pem");
	CHECK(w2.cert == NULL && w2.key == NULL);

	/* A second cluster under the same root: both chains share a root. */
	CHECK_INT(pki_cert_load(p.root_cert, p.root_key, &root, &e), OR_OK);
	CHECK_INT(pki_istio_cacerts(root, "Istio", "cluster2", 365, &r, &e), OR_OK);
	CHECK(r.root_key == NULL);
	CHECK_STR(r.root_cert, p.root_cert);
	CHECK_INT(pki_chain_verify(p.root_cert, r.cert_chain, r.ca_cert, &e), OR_OK);

	/* Workload signed by the root itself: chain is leaf + root. */
	CHECK_INT(pki_workload_cert(root, NULL, "cluster.local", "vm", "default",
				    1, &w2, &e), OR_OK);
	CHECK_INT(count(w2.cert_chain, "-----BEGIN CERTIFICATE-----"), 2);
	CHECK_STR(w2.root_cert, p.root_cert);
	pki_workload_clear(&w2);

	/* pathlen:0 -- the intermediate may not sign another CA. */
	o.cn = "sub";
	o.days = 1;
	o.is_ca = 1;
	o.pathlen = -1;
	CHECK_INT(pki_issue(ca, &o, &sub, &e), OR_E_INVALID);
	CHECK(sub == NULL);

	/* Identities that are not SPIFFE path segments. */
	CHECK_INT(pki_workload_cert(ca, NULL, "cluster.local", "a/b", "sa", 1, &w2, &e),
		  OR_E_INVALID);
	CHECK_STR(e.field, "ns");
	CHECK_INT(pki_workload_cert(ca, NULL, "Cluster.Local", "ns", "sa", 1, &w2, &e),
		  OR_E_INVALID);
	CHECK_STR(e.field, "trust_domain");
	CHECK_INT(pki_workload_cert(ca, NULL, "cluster.local", "ns", "..", 1, &w2, &e),
		  OR_E_INVALID);
	CHECK_STR(e.field, "sa");

	pki_workload_clear(&w);
	pki_workload_clear(&w2);
	pki_workload_clear(NULL);
	pki_istio_clear(&p);
	pki_istio_clear(&q);
	pki_istio_clear(&r);
	pki_istio_clear(NULL);
	pki_cert_free(ca);
	pki_cert_free(root);
	tmpdir_remove(dir);
}

/* ---- SSH ---------------------------------------------------------------- */

static void
t_pki_ssh(void)
{
	char dir[64], cmd[512], out[4096], want[4096], *priv = NULL, *pub = NULL;
	char *fp = NULL, *priv2 = NULL, *pub2 = NULL;
	unsigned char *raw = NULL;
	const char *b;
	size_t raw_len, n;
	struct or_err e;

	CHECK_INT(pki_ssh_keypair("outrigger@vm-1", &priv, &pub, &e), OR_OK);
	CHECK(strncmp(pub, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", 37) == 0);
	CHECK(strlen(pub) == 12 + 68 + 15 && strcmp(pub + 80, " outrigger@vm-1") == 0);
	CHECK(strncmp(priv, "-----BEGIN OPENSSH PRIVATE KEY-----\n", 36) == 0);
	CHECK(strstr(priv, "\n-----END OPENSSH PRIVATE KEY-----\n") != NULL);

	/* The container holds what PROTOCOL.key says: magic, "none" twice,
	 * one key, and two equal check ints. */
	{
		char b64[2048];
		size_t k = 0;

		for (b = priv + 36; *b != '-' && k + 1 < sizeof(b64); b++)
			if (*b != '\n')
				b64[k++] = *b;
		b64[k] = '\0';
		CHECK_INT(pki_b64_decode(b64, k, &raw, &raw_len, &e), OR_OK);
		CHECK(raw_len > 15 + 8 + 8 + 4 + 4 + 55 + 12 &&
		      memcmp(raw, "openssh-key-v1\0\0\0\0\4none\0\0\0\4none\0\0\0\0\0\0\0\1", 39) == 0);
		if (raw_len > 15 + 8 + 8 + 4 + 4 + 55 + 12) {
			const unsigned char *sec = raw + 39 + 4 + 51 + 4;
			CHECK(memcmp(sec, sec + 4, 4) == 0);
			CHECK((raw_len - (39 + 4 + 51 + 4)) % 8 == 0);
		}
		memset(b64, 0, sizeof(b64));
		memset(raw, 0, raw_len);
		free(raw);
	}

	CHECK_INT(pki_ssh_fingerprint(pub, &fp, &e), OR_OK);
	CHECK(fp != NULL && strncmp(fp, "SHA256:", 7) == 0 && strlen(fp) == 7 + 43);

	/* No comment: just "type blob"; every key is new. */
	CHECK_INT(pki_ssh_keypair(NULL, &priv2, &pub2, &e), OR_OK);
	CHECK(strlen(pub2) == 12 + 68 && strchr(pub2 + 12, ' ') == NULL);
	CHECK(strcmp(pub, pub2) != 0);
	pki_secret_free(priv2);
	free(pub2);

	CHECK_INT(pki_ssh_keypair("two\nlines", &priv2, &pub2, &e), OR_E_INVALID);
	CHECK_STR(e.field, "comment");
	CHECK(priv2 == NULL && pub2 == NULL);

	/* Lines that are not a key. */
	CHECK_INT(pki_ssh_fingerprint("garbage", &pub2, &e), OR_E_INVALID);
	CHECK_INT(pki_ssh_fingerprint("ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAICQtQj1u4nPimw4c"
				      "2nd/nvImWvuVcoTHhEp3Ef65vG0T", &pub2, &e),
		  OR_E_INVALID); /* the blob says ssh-ed25519 */
	CHECK_INT(pki_ssh_fingerprint("ssh-ed25519 !!!!", &pub2, &e), OR_E_INVALID);
	CHECK(pub2 == NULL);

	if (!have("ssh-keygen")) {
		free(fp);
		free(pub);
		pki_secret_free(priv);
		SKIP("ssh-keygen is not installed (Debian package openssh-client)");
	}
	tmpdir_make(dir, sizeof(dir));
	put_str(dir, "id", priv);
	snprintf(want, sizeof(want), "%s\n", pub);
	put_str(dir, "id.pub", want);

	/* ssh-keygen -l: "256 SHA256:... comment (ED25519)". */
	snprintf(cmd, sizeof(cmd), "ssh-keygen -l -f %s/id.pub", dir);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	snprintf(want, sizeof(want), "256 %s outrigger@vm-1 (ED25519)\n", fp);
	CHECK_STR(out, want);
	/* ssh-keygen -y: OpenSSH reads the private key and finds the same
	 * public key in it. */
	snprintf(cmd, sizeof(cmd), "ssh-keygen -y -f %s/id", dir);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	n = strlen("ssh-ed25519 ") + 68;
	CHECK(strncmp(out, pub, n) == 0);
	/* ... and the fingerprint of the private key file is the same. */
	snprintf(cmd, sizeof(cmd), "ssh-keygen -l -f %s/id", dir);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	CHECK(strstr(out, fp) != NULL);

	/* Fingerprints of other key types, as ssh-keygen computes them. */
	free(fp);
	fp = NULL;
	snprintf(cmd, sizeof(cmd),
		 "ssh-keygen -q -t ecdsa -N '' -C other -f %s/ec && cat %s/ec.pub", dir, dir);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	CHECK_INT(pki_ssh_fingerprint(out, &fp, &e), OR_OK);
	snprintf(cmd, sizeof(cmd), "ssh-keygen -l -f %s/ec.pub", dir);
	CHECK_INT(run(cmd, want, sizeof(want)), 0);
	CHECK(fp != NULL && strstr(want, fp) != NULL);

	free(fp);
	free(pub);
	pki_secret_free(priv);
	tmpdir_remove(dir);
}

/* ---- service accounts and JWTs ------------------------------------------ */

/* header.payload.signature with one part replaced. */
static char *
jwt_with(const char *jwt, int part, const char *text)
{
	const char *d1 = strchr(jwt, '.'), *d2 = strchr(d1 + 1, '.');
	char *enc = pki_b64url_encode(text, strlen(text));
	size_t n = strlen(jwt) + strlen(enc) + 2;
	char *s = malloc(n);

	if (part == 0)
		snprintf(s, n, "%s%s", enc, d1);
	else
		snprintf(s, n, "%.*s.%s%s", (int)(d1 - jwt), jwt, enc, d2);
	free(enc);
	return s;
}

static void
t_pki_jwt(void)
{
	char dir[64], cmd[768], out[4096], *key_json = NULL, *jwt = NULL;
	char *claims = NULL, *pub = NULL, *other_json = NULL, *bad = NULL;
	char *ec_key = NULL, *ec_cert = NULL;
	unsigned char *part = NULL, *sig = NULL;
	size_t part_len, sig_len;
	const char *d1, *d2, *pem, *email, *kid;
	json_t *k = NULL, *other = NULL, *c = NULL, *h = NULL;
	struct pki_cert *ec = NULL;
	struct or_err e;
	int skip = 0;

	/* The key file, field by field. */
	CHECK_INT(pki_sa_key_new("outrigger-test", "outrigger-sa", NULL, &key_json, &e),
		  OR_OK);
	k = json_loads(key_json, 0, NULL);
	CHECK(json_is_object(k));
	CHECK_STR(json_string_value(json_object_get(k, "type")), "service_account");
	CHECK_STR(json_string_value(json_object_get(k, "project_id")), "outrigger-test");
	email = json_string_value(json_object_get(k, "client_email"));
	CHECK_STR(email, "outrigger-sa@outrigger-test.iam.gserviceaccount.com");
	CHECK_STR(json_string_value(json_object_get(k, "token_uri")), PKI_GOOGLE_TOKEN_URI);
	CHECK_STR(json_string_value(json_object_get(k, "universe_domain")), "googleapis.com");
	CHECK_STR(json_string_value(json_object_get(k, "client_x509_cert_url")),
		  "https://www.googleapis.com/robot/v1/metadata/x509/"
		  "outrigger-sa%40outrigger-test.iam.gserviceaccount.com");
	kid = json_string_value(json_object_get(k, "private_key_id"));
	CHECK(kid != NULL && strlen(kid) == 40 && strspn(kid, "0123456789abcdef") == 40);
	CHECK(strspn(json_string_value(json_object_get(k, "client_id")), "0123456789") == 21);
	pem = json_string_value(json_object_get(k, "private_key"));
	CHECK(pem != NULL && strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28) == 0);
	CHECK(strstr(key_json, "\\n") != NULL); /* newlines escaped in JSON */
	if (pem == NULL || kid == NULL)
		goto out;

	/* The assertion google-auth would send. */
	CHECK_INT(pki_sa_assertion(key_json, "https://www.googleapis.com/auth/cloud-platform",
				   NULL, 1700000000, &jwt, &e), OR_OK);
	CHECK_INT(pki_public_pem_from_private(pem, &pub, &e), OR_OK);
	CHECK(pub != NULL && strncmp(pub, "-----BEGIN PUBLIC KEY-----\n", 27) == 0);
	CHECK_INT(pki_jwt_verify_rs256(jwt, pub, &claims, &e), OR_OK);
	c = json_loads(claims, 0, NULL);
	CHECK_STR(json_string_value(json_object_get(c, "iss")), email);
	CHECK_STR(json_string_value(json_object_get(c, "aud")), PKI_GOOGLE_TOKEN_URI);
	CHECK_STR(json_string_value(json_object_get(c, "scope")),
		  "https://www.googleapis.com/auth/cloud-platform");
	CHECK_INT(json_integer_value(json_object_get(c, "iat")), 1700000000);
	CHECK_INT(json_integer_value(json_object_get(c, "exp")), 1700003600);
	d1 = strchr(jwt, '.');
	d2 = strchr(d1 + 1, '.');
	CHECK_INT(pki_b64url_decode(jwt, (size_t)(d1 - jwt), &part, &part_len, &e), OR_OK);
	h = json_loads((char *)part, 0, NULL);
	CHECK_STR(json_string_value(json_object_get(h, "alg")), "RS256");
	CHECK_STR(json_string_value(json_object_get(h, "typ")), "JWT");
	CHECK_STR(json_string_value(json_object_get(h, "kid")), kid);
	free(part);
	part = NULL;
	free(claims);
	claims = NULL;

	/* The same key can be given as the private key PEM. */
	CHECK_INT(pki_jwt_verify_rs256(jwt, pem, &claims, &e), OR_OK);
	free(claims);
	claims = NULL;

	/* Tampering. */
	bad = jwt_with(jwt, 1, "{\"iss\":\"someone-else@x.iam.gserviceaccount.com\"}");
	CHECK_INT(pki_jwt_verify_rs256(bad, pub, &claims, &e), OR_E_AUTH);
	CHECK(strstr(e.message, "signature does not verify") != NULL);
	CHECK(claims == NULL);
	free(bad);
	bad = strdup(jwt);
	bad[(d2 - jwt) + 10] = bad[(d2 - jwt) + 10] == 'A' ? 'B' : 'A';
	CHECK_INT(pki_jwt_verify_rs256(bad, pub, &claims, &e), OR_E_AUTH);
	free(bad);
	/* alg is refused for itself, before any signature is looked at. */
	bad = jwt_with(jwt, 0, "{\"alg\":\"none\",\"typ\":\"JWT\"}");
	CHECK_INT(pki_jwt_verify_rs256(bad, pub, &claims, &e), OR_E_AUTH);
	CHECK(strstr(e.message, "alg is not RS256") != NULL);
	free(bad);
	{
		/* alg none with no signature at all */
		char *h64 = pki_b64url_encode("{\"alg\":\"none\"}", 14);
		size_t n = strlen(h64) + (size_t)(d2 - d1) + 2;

		bad = malloc(n);
		snprintf(bad, n, "%s%.*s.", h64, (int)(d2 - d1), d1);
		CHECK_INT(pki_jwt_verify_rs256(bad, pub, &claims, &e), OR_E_AUTH);
		CHECK(strstr(e.message, "alg is not RS256") != NULL);
		free(bad);
		free(h64);
	}
	bad = jwt_with(jwt, 0, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
	CHECK_INT(pki_jwt_verify_rs256(bad, pub, &claims, &e), OR_E_AUTH);
	CHECK(strstr(e.message, "alg is not RS256") != NULL);
	free(bad);
	bad = jwt_with(jwt, 0, "{\"alg\":\"RS256\",\"crit\":[\"exp\"]}");
	CHECK_INT(pki_jwt_verify_rs256(bad, pub, &claims, &e), OR_E_AUTH);
	CHECK(strstr(e.message, "crit") != NULL);
	free(bad);
	bad = jwt_with(jwt, 0, "[\"RS256\"]");
	CHECK_INT(pki_jwt_verify_rs256(bad, pub, &claims, &e), OR_E_MALFORMED);
	free(bad);
	CHECK_INT(pki_jwt_verify_rs256("a.b", pub, &claims, &e), OR_E_MALFORMED);
	CHECK_INT(pki_jwt_verify_rs256("a.b.c.d", pub, &claims, &e), OR_E_MALFORMED);
	CHECK_INT(pki_jwt_verify_rs256("e30.e30.@@@@", pub, &claims, &e), OR_E_MALFORMED);
	{
		size_t n = strlen(jwt) + 2;

		bad = malloc(n + 1);
		snprintf(bad, n + 1, "%s==", jwt); /* padding is not base64url */
		CHECK_INT(pki_jwt_verify_rs256(bad, pub, &claims, &e), OR_E_MALFORMED);
		free(bad);
		bad = NULL;
	}
	/* Another account's key. */
	CHECK_INT(pki_sa_key_new("outrigger-test", "another-sa", "http://127.0.0.1:9/token",
				 &other_json, &e), OR_OK);
	other = json_loads(other_json, 0, NULL);
	CHECK_STR(json_string_value(json_object_get(other, "token_uri")),
		  "http://127.0.0.1:9/token");
	CHECK_INT(pki_jwt_verify_rs256(jwt, json_string_value(json_object_get(other, "private_key")),
				       &claims, &e), OR_E_AUTH);
	/* An EC key neither signs nor verifies RS256. */
	CHECK_INT(pki_ca_new(NULL, "ec", 1, &ec, &e), OR_OK);
	CHECK_INT(pki_cert_pem(ec, &ec_cert, &ec_key, &e), OR_OK);
	CHECK_INT(pki_jwt_verify_rs256(jwt, ec_cert, &claims, &e), OR_E_INVALID);
	CHECK_STR(e.field, "key_pem");
	CHECK_INT(pki_jwt_sign_rs256(ec_key, NULL, "{}", &bad, &e), OR_E_INVALID);
	CHECK(bad == NULL);
	CHECK_INT(pki_jwt_sign_rs256(pem, NULL, "[1]", &bad, &e), OR_E_MALFORMED);
	CHECK_INT(pki_jwt_sign_rs256(pem, NULL, "{\"a\":1,\"a\":2}", &bad, &e), OR_E_MALFORMED);

	/* Errors never quote a key file back. */
	CHECK_INT(pki_sa_assertion("{\"type\":\"service_account\",\"private_key\":"
				   "\"SECRETSECRET\" oops}", "s", NULL, 0, &bad, &e),
		  OR_E_MALFORMED);
	CHECK(strstr(e.message, "SECRET") == NULL && strstr(e.message, "oops") == NULL);
	CHECK_INT(pki_sa_key_new("Bad_Project", "outrigger-sa", NULL, &bad, &e), OR_E_INVALID);
	CHECK_STR(e.field, "project");
	CHECK_INT(pki_sa_key_new("outrigger-test", "sa", NULL, &bad, &e), OR_E_INVALID);
	CHECK_STR(e.field, "account");

	if (!have("openssl")) {
		skip = 1;
		goto out;
	}
	/* OpenSSL agrees: the signature is RSASSA-PKCS1-v1_5 SHA-256 over
	 * "header.payload", and, PKCS#1 v1.5 being deterministic, openssl
	 * signing the same bytes gives the same signature. */
	tmpdir_make(dir, sizeof(dir));
	put(dir, "signed.txt", jwt, (size_t)(d2 - jwt));
	CHECK_INT(pki_b64url_decode(d2 + 1, strlen(d2 + 1), &sig, &sig_len, &e), OR_OK);
	CHECK_INT(sig_len, 256);
	put(dir, "sig.bin", sig, sig_len);
	put_str(dir, "pub.pem", pub);
	put_str(dir, "key.pem", pem);
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl dgst -sha256 -verify pub.pem -signature sig.bin "
		 "signed.txt", dir);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	CHECK_STR(out, "Verified OK\n");
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl dgst -sha256 -sign key.pem -out sig2.bin signed.txt "
		 "&& cmp sig.bin sig2.bin", dir);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	/* A tampered payload fails with openssl too. */
	put(dir, "signed.txt", jwt, (size_t)(d2 - jwt) - 1);
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl dgst -sha256 -verify pub.pem -signature sig.bin "
		 "signed.txt", dir);
	CHECK(run(cmd, out, sizeof(out)) != 0);
	/* And a certificate for the key (Google serves them at
	 * client_x509_cert_url) works as the verification key. */
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl req -new -x509 -key key.pem -subj /CN=sa -days 1 "
		 "-out sa-cert.pem", dir);
	CHECK_INT(run(cmd, out, sizeof(out)), 0);
	{
		char path[128], certbuf[4096];
		FILE *f;
		size_t n;

		snprintf(path, sizeof(path), "%s/sa-cert.pem", dir);
		f = fopen(path, "r");
		n = f != NULL ? fread(certbuf, 1, sizeof(certbuf) - 1, f) : 0;
		certbuf[n] = '\0';
		if (f != NULL)
			fclose(f);
		CHECK_INT(pki_jwt_verify_rs256(jwt, certbuf, &claims, &e), OR_OK);
		free(claims);
		claims = NULL;
	}
	tmpdir_remove(dir);
out:
	json_decref(k);
	json_decref(other);
	json_decref(c);
	json_decref(h);
	pki_cert_free(ec);
	free(ec_cert);
	pki_secret_free(ec_key);
	free(sig);
	free(jwt);
	free(pub);
	free(claims);
	pki_secret_free(key_json);
	pki_secret_free(other_json);
	if (skip)
		SKIP("openssl(1) is not installed (Debian package openssl)");
}

void
suite_pki(void)
{
	RUN(t_pki_base64);
	RUN(t_pki_ca_new);
	RUN(t_pki_cert_load);
	RUN(t_pki_issue_server);
	RUN(t_pki_istio);
	RUN(t_pki_ssh);
	RUN(t_pki_jwt);
}

/*
 * istiod.c - the simulated istiod at port 15012 of a gateway's
 * LoadBalancer IP, as the VM's sidecar reaches it.
 *
 * The wire is the sandbox's own (real istiod speaks gRPC/xDS): TLS with
 * istiod's certificate (issued by the mesh CA for istiod.istio-system.svc,
 * so a VM that checks it with the wrong root-cert.pem fails the handshake,
 * as pilot-agent does), then one HTTP request
 *   POST /outrigger.sandbox.v1/Connect
 *   X-Outrigger-Vm-Ip: the VM's address (must be where it connects from)
 *   Authorization: Bearer TOKEN      (current flow), or a TLS client
 *                                     certificate chain (legacy flow)
 *   body: the VM's cluster.env
 * answered 200 {"status":"connected", ...} or 403 {"status":"refused",
 * "reason": ...}.  Each decision is recorded per VM (mesh_sidecar_record),
 * including handshakes the VM aborted.  Tokens and keys are never logged
 * or recorded.
 */
#include "mesh_int.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pki.h"

#define TRUST_DOMAIN "cluster.local"

static int
accept_any(int ok, X509_STORE_CTX *ctx)
{
	(void)ok;
	(void)ctx;
	return 1;	/* the chain is judged after the handshake, with reasons */
}

static int
ssl_rd(void *ctx, char *p, int n)
{
	return SSL_read(ctx, p, n);
}

static char *
x509_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data = NULL, *out = NULL;
	long len;

	if (b != NULL && PEM_write_bio_X509(b, x) == 1) {
		len = BIO_get_mem_data(b, &data);
		out = malloc((size_t)len + 1);
		if (out != NULL) {
			memcpy(out, data, (size_t)len);
			out[len] = '\0';
		}
	}
	BIO_free(b);
	return out;
}

static void
now_rfc3339(char *out, size_t size)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* cluster.env ("KEY=VALUE" lines, values maybe quoted) as an object. */
static json_t *
parse_env(const char *text)
{
	json_t *env = json_object();
	char line[2048], *eq, *v;
	const char *p = text, *nl;
	size_t n;

	while (p != NULL && *p != '\0') {
		nl = strchr(p, '\n');
		n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) ? n : sizeof(line) - 1), p);
		p = nl != NULL ? nl + 1 : NULL;
		n = strlen(line);
		while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' '))
			line[--n] = '\0';
		eq = strchr(line, '=');
		if (line[0] == '#' || eq == NULL)
			continue;
		*eq = '\0';
		v = eq + 1;
		n = strlen(v);
		if (n >= 2 && (v[0] == '\'' || v[0] == '"') && v[n - 1] == v[0]) {
			v[n - 1] = '\0';
			v++;
		}
		if (strncmp(line, "export ", 7) == 0)
			memmove(line, line + 7, strlen(line + 7) + 1);
		json_object_set_new(env, line, json_string(v));
	}
	return env;
}

/* Does a Gateway + VirtualService route port 15012 of Service svc to
 * istiod (what mesh expansion or expose-istiod.yaml configure)?  0 if so,
 * else the reason in why. */
static int
routed_to_istiod(struct kube *k, const json_t *svc, char *why, size_t size)
{
	struct or_err err;
	json_t *gws = NULL, *vss = NULL, *gw, *srv, *vs, *g, *r, *d, *routes;
	const char *kinds[] = {"tcp", "tls"};
	size_t i, j, q, w;
	int found_gw = 0, ok = 0, kind;
	char gwname[300];

	kube_list(k, "networking.istio.io/v1alpha3", "gateways", NULL, NULL, &gws, &err);
	kube_list(k, "networking.istio.io/v1alpha3", "virtualservices", NULL, NULL, &vss, &err);
	json_array_foreach(gws, i, gw) {
		int port_ok = 0;

		if (!mesh_labels_match(mesh_j(gw, "spec.selector"), mesh_j(svc, "spec.selector")))
			continue;
		json_array_foreach(mesh_j(gw, "spec.servers"), j, srv)
			if (json_integer_value(mesh_j(srv, "port.number")) == 15012)
				port_ok = 1;
		if (!port_ok)
			continue;
		found_gw = 1;
		json_array_foreach(vss, j, vs) {
			int names_gw = 0;

			json_array_foreach(mesh_j(vs, "spec.gateways"), q, g) {
				snprintf(gwname, sizeof(gwname), "%s/%s", mesh_s(gw, "metadata.namespace"),
					 mesh_s(gw, "metadata.name"));
				if ((strcmp(json_string_value(g) ? json_string_value(g) : "",
					    mesh_s(gw, "metadata.name")) == 0 &&
				     strcmp(mesh_s(vs, "metadata.namespace"),
					    mesh_s(gw, "metadata.namespace")) == 0) ||
				    strcmp(json_string_value(g) ? json_string_value(g) : "", gwname) == 0)
					names_gw = 1;
			}
			if (!names_gw)
				continue;
			for (kind = 0; kind < 2; kind++) {
				routes = mesh_j(vs, "spec");
				routes = json_object_get(routes, kinds[kind]);
				json_array_foreach(routes, q, r) {
					int port_match = json_array_size(json_object_get(r, "match")) == 0;
					json_t *mt;

					json_array_foreach(json_object_get(r, "match"), w, mt)
						if (json_integer_value(json_object_get(mt, "port")) == 15012)
							port_match = 1;
					if (!port_match)
						continue;
					json_array_foreach(json_object_get(r, "route"), w, d)
						if (strncmp(mesh_s(d, "destination.host"), "istiod.", 7) == 0 ||
						    strcmp(mesh_s(d, "destination.host"), "istiod") == 0)
							ok = 1;
				}
			}
		}
	}
	if (!found_gw)
		snprintf(why, size,
			 "no Istio Gateway selecting %s/%s's pods has a server on port 15012 "
			 "(mesh expansion's meshexpansion-gateway, or expose-istiod.yaml's istiod-gateway)",
			 mesh_s(svc, "metadata.namespace"), mesh_s(svc, "metadata.name"));
	else if (!ok)
		snprintf(why, size,
			 "no VirtualService routes port 15012 of the gateway to istiod "
			 "(meshexpansion-vs-istiod, or expose-istiod.yaml's istiod-vs)");
	json_decref(gws);
	json_decref(vss);
	return ok ? 0 : -1;
}

/* The Service whose LoadBalancer IP is ip (new reference) or NULL. */
static json_t *
service_at(struct kube *k, const char *ip)
{
	struct or_err err;
	json_t *svcs = NULL, *s, *ing, *out = NULL;
	size_t i, j;

	if (kube_list(k, "v1", "services", NULL, NULL, &svcs, &err) != OR_OK)
		return NULL;
	json_array_foreach(svcs, i, s)
		json_array_foreach(mesh_j(s, "status.loadBalancer.ingress"), j, ing)
			if (out == NULL && strcmp(mesh_s(ing, "ip"), ip) == 0)
				out = json_incref(s);
	json_decref(svcs);
	return out;
}

/* The legacy flow's identity: the client certificate chain must verify
 * against the mesh root and carry a URI SAN spiffe://TD/ns/NS/sa/SA. */
static int
check_certificate(SSL *ssl, const char *root, char *identity, size_t isize, char *why,
		  size_t wsize)
{
	X509 *leaf = SSL_get1_peer_certificate(ssl);
	STACK_OF(X509) *rest = SSL_get_peer_cert_chain(ssl);
	GENERAL_NAMES *sans = NULL;
	struct buf chain, dns;
	struct or_err err;
	char *leaf_pem = NULL, *p;
	int i, rc = -1;

	buf_init(&chain, 256 * 1024);
	buf_init(&dns, 4096);
	if (leaf == NULL) {
		snprintf(why, wsize, "no credentials: neither a token in "
				     "/var/run/secrets/tokens/istio-token nor a client certificate");
		goto out;
	}
	leaf_pem = x509_pem(leaf);
	for (i = 0; rest != NULL && i < sk_X509_num(rest); i++) {
		X509 *x = sk_X509_value(rest, i);

		if (X509_cmp(x, leaf) == 0)
			continue;
		p = x509_pem(x);
		if (p != NULL)
			buf_append_str(&chain, p);
		free(p);
	}
	if (leaf_pem == NULL ||
	    pki_chain_verify(root, chain.len > 0 ? buf_str(&chain) : NULL, leaf_pem, &err) != OR_OK) {
		snprintf(why, wsize,
			 "the certificate chain in /etc/certs does not verify against the mesh root "
			 "(secret cacerts): %s",
			 leaf_pem == NULL ? "unreadable certificate" : err.message);
		goto out;
	}
	sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	for (i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		const unsigned char *s;
		char ns[128], sa[128], td[128];
		int n = 0;

		if (g->type == GEN_DNS) {
			s = ASN1_STRING_get0_data(g->d.dNSName);
			buf_printf(&dns, "%s%.*s", dns.len > 0 ? ", " : "",
				   ASN1_STRING_length(g->d.dNSName), (const char *)s);
			continue;
		}
		if (g->type != GEN_URI)
			continue;
		s = ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
		snprintf(identity, isize, "%.*s", ASN1_STRING_length(g->d.uniformResourceIdentifier),
			 (const char *)s);
		if (sscanf(identity, "spiffe://%127[^/]/ns/%127[^/]/sa/%127[^/]%n", td, ns, sa, &n) ==
			    3 &&
		    identity[n] == '\0') {
			if (strcmp(td, TRUST_DOMAIN) != 0) {
				snprintf(why, wsize, "identity %.200s is not in trust domain %s",
					 identity, TRUST_DOMAIN);
				goto out;
			}
			rc = 0;
			goto out;
		}
	}
	snprintf(why, wsize,
		 "the certificate has no URI SAN spiffe://%s/ns/NAMESPACE/sa/SERVICE_ACCOUNT%s%.200s%s",
		 TRUST_DOMAIN, dns.len > 0 ? " (it has DNS SAN " : "", buf_str(&dns),
		 dns.len > 0 ? ")" : "");
out:
	if (rc != 0)
		identity[0] = '\0';
	GENERAL_NAMES_free(sans);
	X509_free(leaf);
	free(leaf_pem);
	buf_free(&chain);
	buf_free(&dns);
	return rc;
}

/* The current flow's identity: a TokenRequest token of this cluster for
 * audience istio-ca. */
static int
check_token(struct kube *k, const char *auth, char *identity, size_t isize, char *why,
	    size_t wsize)
{
	struct or_err err;
	json_t *claims = NULL, *a;
	size_t i;
	int aud_ok = 0;

	if (strncmp(auth, "Bearer ", 7) != 0) {
		snprintf(why, wsize, "the Authorization header is not a bearer token");
		return -1;
	}
	if (kube_token_review(k, auth + 7, &claims, &err) != OR_OK) {
		snprintf(why, wsize, "the token was refused: %s", err.message);
		return -1;
	}
	json_array_foreach(json_object_get(claims, "aud"), i, a)
		if (strcmp(json_string_value(a) ? json_string_value(a) : "", "istio-ca") == 0)
			aud_ok = 1;
	if (!aud_ok) {
		snprintf(why, wsize, "the token's audience is not istio-ca (istiod accepts only "
				     "tokens requested for audience istio-ca)");
		json_decref(claims);
		return -1;
	}
	snprintf(identity, isize, "spiffe://%s/ns/%s/sa/%s", TRUST_DOMAIN,
		 mesh_s(json_object_get(claims, "kubernetes.io"), "namespace"),
		 mesh_s(json_object_get(claims, "kubernetes.io"), "serviceaccount.name"));
	json_decref(claims);
	return 0;
}

static void
reply(SSL *ssl, int status, json_t *body)
{
	char head[256], *text = json_dumps(body, JSON_COMPACT);
	size_t len = text != NULL ? strlen(text) : 0;

	snprintf(head, sizeof(head),
		 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
		 "Connection: close\r\n\r\n",
		 status, status == 200 ? "OK" : status == 403 ? "Forbidden" : "Bad Request", len);
	SSL_write(ssl, head, (int)strlen(head));
	if (len > 0)
		SSL_write(ssl, text, (int)len);
	free(text);
	json_decref(body);
}

/* Is ip a sandbox VM's?  Only those get a record. */
static int
is_vm(struct mesh *m, const char *ip)
{
	json_t *i = mesh_instance_by_ip(m, ip);
	int yes = i != NULL;

	json_decref(i);
	return yes;
}

static void
record(struct mesh *m, const char *ip, const struct mesh_cluster *cl, const json_t *svc,
       int ok, const char *reason, const char *cred, const char *identity, json_t *env)
{
	char at[32], gw[300];

	now_rfc3339(at, sizeof(at));
	snprintf(gw, sizeof(gw), "%s/%s", mesh_s(svc, "metadata.namespace"),
		 mesh_s(svc, "metadata.name"));
	mesh_sidecar_record(m, ip,
			    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s}", "state",
				      ok ? "connected" : "refused", "reason", reason, "cluster",
				      cl->id, "gateway", gw, "credential", cred, "identity",
				      identity, "env", env != NULL ? json_incref(env) : json_object(),
				      "at", at));
	if (ok)
		log_info("sandbox istiod: VM %s connected as %s through %s", ip, identity, gw);
	else
		log_info("sandbox istiod: VM %s refused: %s", ip, reason);
}

void
istiod_serve(struct mesh_conn *c)
{
	struct mesh *m = c->m;
	struct mesh_cluster cl;
	struct kube *k = mesh_take(m, c->slot, &cl);
	struct pki_cert *ca = NULL, *srv = NULL;
	struct pki_issue_opts io;
	struct or_err err;
	struct mesh_http h;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	BIO *bio = NULL;
	X509 *x;
	EVP_PKEY *pkey = NULL;
	json_t *svc = NULL, *env = NULL;
	char *root = NULL, *ca_cert = NULL, *ca_key = NULL, *chain = NULL, *srv_pem = NULL,
	     *srv_key = NULL;
	char why[1024] = "", identity[512] = "";
	const char *dns[] = {"istiod.istio-system.svc", "istiod.istio-system.svc.cluster.local",
			     "istiod"};
	const char *cred = "none", *auth;
	int have_http = 0, ok = 0;

	memset(&h, 0, sizeof(h));
	if (k == NULL)
		return;
	svc = service_at(k, c->ip);
	if (svc == NULL)
		goto out;
	/* Nothing behind the gateway: the connection is reset, as Envoy does
	 * without a route; the VM is told why through its record. */
	if (mesh_ca(k, &root, &ca_cert, &ca_key, &chain) != 0 ||
	    mesh_deployment_available(k, "istio-system", "istiod") != 1) {
		if (is_vm(m, c->peer))
			record(m, c->peer, &cl, svc, 0,
			       "istiod is not running in the cluster (no available istiod Deployment "
			       "or no mesh CA yet)",
			       cred, "", NULL);
		goto out;
	}
	if (routed_to_istiod(k, svc, why, sizeof(why)) != 0) {
		if (is_vm(m, c->peer))
			record(m, c->peer, &cl, svc, 0, why, cred, "", NULL);
		goto out;
	}
	/* istiod's serving certificate, from the mesh CA, for the name the
	 * VM's /etc/hosts maps to the gateway. */
	memset(&io, 0, sizeof(io));
	io.cn = "istiod";
	io.days = 1;
	io.dns = dns;
	io.n_dns = 3;
	io.server_auth = 1;
	if (pki_cert_load(ca_cert, ca_key, &ca, &err) != OR_OK || pki_issue(ca, &io, &srv, &err) != OR_OK ||
	    pki_cert_pem(srv, &srv_pem, &srv_key, &err) != OR_OK) {
		log_warn("sandbox istiod: cannot make istiod's certificate: %s", err.message);
		goto out;
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL)
		goto out;
	bio = BIO_new_mem_buf(srv_pem, -1);
	x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	if (x == NULL || SSL_CTX_use_certificate(ctx, x) != 1) {
		X509_free(x);
		goto out;
	}
	X509_free(x);
	BIO_free(bio);
	/* The chain after istiod's leaf: the signing CA, then what cacerts'
	 * cert-chain.pem adds (the root, for a plugged-in CA). */
	bio = BIO_new_mem_buf(chain != NULL ? chain : ca_cert, -1);
	while (bio != NULL && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1)
			X509_free(x);
	ERR_clear_error();
	BIO_free(bio);
	bio = BIO_new_mem_buf(srv_key, -1);
	pkey = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	if (pkey == NULL || SSL_CTX_use_PrivateKey(ctx, pkey) != 1)
		goto out;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any);
	ssl = SSL_new(ctx);
	if (ssl == NULL || SSL_set_fd(ssl, c->fd) != 1)
		goto out;
	if (SSL_accept(ssl) != 1) {
		unsigned long e = ERR_peek_last_error();
		char reason[256];

		ERR_error_string_n(e, reason, sizeof(reason));
		ERR_clear_error();
		if (is_vm(m, c->peer)) {
			snprintf(why, sizeof(why),
				 "the TLS handshake with istiod failed (%s)%s", e != 0 ? reason : "connection closed",
				 strstr(reason, "unknown ca") != NULL || strstr(reason, "bad certificate") != NULL
					 ? ": the VM does not trust istiod's certificate; its "
					   "root-cert.pem is not the mesh root"
					 : "");
			record(m, c->peer, &cl, svc, 0, why, cred, "", NULL);
		}
		goto out;
	}
	if (mesh_http_read(ssl_rd, ssl, &h) != 0) {
		reply(ssl, 400, json_pack("{s:s, s:s}", "status", "refused", "reason",
					  "not a Connect request"));
		goto out;
	}
	have_http = 1;
	if (strcmp(h.method, "POST") != 0 || strcmp(h.path, "/outrigger.sandbox.v1/Connect") != 0) {
		reply(ssl, 400, json_pack("{s:s, s:s}", "status", "refused", "reason",
					  "the sandbox's istiod answers POST /outrigger.sandbox.v1/Connect "
					  "only"));
		goto out;
	}
	env = parse_env(buf_str(&h.body));
	auth = mesh_s(h.headers, "authorization");
	if (strcmp(mesh_s(h.headers, "x-outrigger-vm-ip"), c->peer) != 0) {
		snprintf(why, sizeof(why),
			 "the proxy says it is %.40s but connects from %s (istio-start.sh binds "
			 "to the VM's own address)",
			 mesh_s(h.headers, "x-outrigger-vm-ip"), c->peer);
	} else if (!is_vm(m, c->peer)) {
		snprintf(why, sizeof(why), "%s is not a Compute Engine VM's address", c->peer);
	} else if (auth[0] != '\0') {
		cred = "token";
		ok = check_token(k, auth, identity, sizeof(identity), why, sizeof(why)) == 0;
	} else {
		cred = "certificate";
		ok = check_certificate(ssl, root, identity, sizeof(identity), why, sizeof(why)) == 0;
	}
	if (is_vm(m, c->peer))
		record(m, c->peer, &cl, svc, ok, ok ? "" : why, cred, identity, env);
	if (ok)
		reply(ssl, 200, json_pack("{s:s, s:s, s:s}", "status", "connected", "identity",
					  identity, "cluster", cl.id));
	else
		reply(ssl, 403, json_pack("{s:s, s:s}", "status", "refused", "reason", why));
out:
	if (ssl != NULL) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	(void)have_http;
	mesh_http_free(&h);
	ERR_clear_error();
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	SSL_CTX_free(ctx);
	pki_cert_free(ca);
	pki_cert_free(srv);
	free(srv_pem);
	pki_secret_free(srv_key);
	free(root);
	free(ca_cert);
	pki_secret_free(ca_key);
	free(chain);
	json_decref(svc);
	json_decref(env);
	mesh_put(m, c->slot);
}

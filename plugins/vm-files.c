/*
 * vm-files.c - the tutorial's "prepare the VM's files" step, made by
 * Outrigger itself and kept as ONE secret of the environment (vm_bundle: a
 * JSON object {"file name": "content"}) for vm-bootstrap to upload.
 *
 *   legacy  (Istio 1.6): cluster.env (ISTIO_SERVICE_CIDR,
 *           ISTIO_INBOUND_PORTS, ISTIO_CP_AUTH=MUTUAL_TLS), a workload
 *           certificate for the identity issued by the mesh CA's
 *           intermediate (key.pem, cert-chain.pem), root-cert.pem, and
 *           hosts ("<gateway IP> istiod.istio-system.svc").  The tutorial's
 *           self-signed `spiffee://` DNS-SAN certificate (notes §0.2) is
 *           what this replaces: ours has the URI SAN istiod checks.
 *   current (Istio >= 1.20): the WorkloadGroup and its service account
 *           are applied, a token is requested (TokenRequest, audience
 *           istio-ca), and the files `istioctl x workload entry configure`
 *           writes are produced: cluster.env, mesh.yaml, root-cert.pem,
 *           istio-token, hosts.
 *
 * Re-applying is stable: a certificate that still chains to the current
 * CA, names the same identity and has more than a third of its life left
 * is kept, and so is a token with a third of its life left for the same
 * service account; the secret is written only when its content changes.
 * Destroy deletes the WorkloadGroup (and the service account or namespace
 * when this step created them) and empties the bundle.
 *
 * Must never: log or put in an error a key, a token or the bundle.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "rollout.h"

#define BUNDLE "vm_bundle"
#define ISTIOD_PORT "15012"
/* Ports istioctl leaves to the VM (Prometheus, the agent's health and
 * status ports), as the contract with the sidecar lists them. */
#define EXCLUDE_PORTS "15090,15021,15020"

/* ---- encoding helpers ------------------------------------------------------ */

static int
b64_val(int ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+' || ch == '-')
		return 62;
	if (ch == '/' || ch == '_')
		return 63;
	return -1;
}

/* Base64 or base64url of s[0..n) (whitespace and padding skipped) into a
 * new buffer; *len its size.  NULL on a bad character. */
static unsigned char *
b64_decode(const char *s, size_t n, size_t *len)
{
	unsigned char *out = malloc(n / 4 * 3 + 4);
	unsigned acc = 0;
	size_t i, o = 0;
	int bits = 0, v;

	if (out == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (s[i] == '=' || s[i] == '\n' || s[i] == '\r' || s[i] == ' ' || s[i] == '\t')
			continue;
		v = b64_val((unsigned char)s[i]);
		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)((acc >> bits) & 0xff);
		}
	}
	*len = o;
	return out;
}

/* The DER of the idx-th (0-based) CERTIFICATE block of a PEM text. */
static unsigned char *
pem_cert(const char *pem, int idx, size_t *len)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	const char *p = pem, *e;

	for (; p != NULL; idx--) {
		p = strstr(p, begin);
		if (p == NULL)
			return NULL;
		p += sizeof(begin) - 1;
		if (idx == 0)
			break;
	}
	if (p == NULL)
		return NULL;
	e = strstr(p, "-----END");
	return e != NULL ? b64_decode(p, (size_t)(e - p), len) : NULL;
}

/* 1 when two PEM certificates are the same certificate. */
static int
same_cert(const char *a, int ia, const char *b, int ib)
{
	size_t na = 0, nb = 0;
	unsigned char *da = a != NULL ? pem_cert(a, ia, &na) : NULL;
	unsigned char *db = b != NULL ? pem_cert(b, ib, &nb) : NULL;
	int same = da != NULL && db != NULL && na == nb && memcmp(da, db, na) == 0;

	free(da);
	free(db);
	return same;
}

/* ---- a certificate's validity and URI SAN (DER, RFC 5280) ------------------
 * The plugin links only jansson, so the few fields re-apply needs are read
 * here; the signature was checked when the host issued the certificate,
 * and the certificate comes back only from this environment's own secret. */

struct der {
	const unsigned char *p, *end;
};

/* The next TLV: its tag and content.  -1 when malformed. */
static int
der_next(struct der *d, unsigned *tag, struct der *val)
{
	size_t len, n;

	if (d->end - d->p < 2)
		return -1;
	*tag = *d->p++;
	if ((*tag & 0x1f) == 0x1f)
		return -1;
	len = *d->p++;
	if (len & 0x80) {
		n = len & 0x7f;
		if (n == 0 || n > 4 || (size_t)(d->end - d->p) < n)
			return -1;
		for (len = 0; n > 0; n--)
			len = (len << 8) | *d->p++;
	}
	if ((size_t)(d->end - d->p) < len)
		return -1;
	val->p = d->p;
	val->end = d->p + len;
	d->p += len;
	return 0;
}

static int
der_time(const struct der *v, unsigned tag, time_t *out)
{
	char s[16];
	size_t n = (size_t)(v->end - v->p), off;
	struct tm tm;

	if (n >= sizeof(s) || (tag == 0x17 && n != 13) || (tag == 0x18 && n != 15) ||
	    (tag != 0x17 && tag != 0x18))
		return -1;
	memcpy(s, v->p, n);
	s[n] = '\0';
	memset(&tm, 0, sizeof(tm));
	if (tag == 0x17) {
		tm.tm_year = (s[0] - '0') * 10 + (s[1] - '0');
		if (tm.tm_year < 50)
			tm.tm_year += 100;
		off = 2;
	} else {
		tm.tm_year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 +
			     (s[3] - '0') - 1900;
		off = 4;
	}
	tm.tm_mon = (s[off] - '0') * 10 + (s[off + 1] - '0') - 1;
	tm.tm_mday = (s[off + 2] - '0') * 10 + (s[off + 3] - '0');
	tm.tm_hour = (s[off + 4] - '0') * 10 + (s[off + 5] - '0');
	tm.tm_min = (s[off + 6] - '0') * 10 + (s[off + 7] - '0');
	tm.tm_sec = (s[off + 8] - '0') * 10 + (s[off + 9] - '0');
	*out = timegm(&tm);
	return 0;
}

/* notBefore, notAfter and the first URI SAN of a certificate.  0 or -1. */
static int
cert_facts(const unsigned char *der, size_t len, time_t *nb, time_t *na, char *uri,
	   size_t uri_size)
{
	static const unsigned char san_oid[] = {0x55, 0x1d, 0x11};
	struct der d = {der, der + len}, cert, tbs, v, t, x, exts, ext, f, names, gn;
	unsigned tag;
	int i;

	uri[0] = '\0';
	if (der_next(&d, &tag, &cert) != 0 || tag != 0x30 ||
	    der_next(&cert, &tag, &tbs) != 0 || tag != 0x30)
		return -1;
	if (tbs.p < tbs.end && *tbs.p == 0xa0 && der_next(&tbs, &tag, &v) != 0)
		return -1;
	/* serial, signature algorithm, issuer */
	for (i = 0; i < 3; i++)
		if (der_next(&tbs, &tag, &v) != 0)
			return -1;
	if (der_next(&tbs, &tag, &v) != 0 || tag != 0x30 || der_next(&v, &tag, &t) != 0 ||
	    der_time(&t, tag, nb) != 0 || der_next(&v, &tag, &t) != 0 || der_time(&t, tag, na) != 0)
		return -1;
	/* subject, public key, then optional [1] [2] [3] */
	while (tbs.p < tbs.end) {
		if (der_next(&tbs, &tag, &x) != 0)
			return -1;
		if (tag != 0xa3 || der_next(&x, &tag, &exts) != 0 || tag != 0x30)
			continue;
		while (exts.p < exts.end) {
			if (der_next(&exts, &tag, &ext) != 0 || der_next(&ext, &tag, &f) != 0)
				return -1;
			if (tag != 0x06 || f.end - f.p != 3 || memcmp(f.p, san_oid, 3) != 0)
				continue;
			if (der_next(&ext, &tag, &f) != 0)
				return -1;
			if (tag == 0x01 && der_next(&ext, &tag, &f) != 0)
				return -1;
			if (tag != 0x04 || der_next(&f, &tag, &names) != 0 || tag != 0x30)
				return -1;
			while (names.p < names.end) {
				if (der_next(&names, &tag, &gn) != 0)
					return -1;
				if (tag == 0x86 && (size_t)(gn.end - gn.p) < uri_size) {
					memcpy(uri, gn.p, (size_t)(gn.end - gn.p));
					uri[gn.end - gn.p] = '\0';
					return 0;
				}
			}
		}
	}
	return 0;
}

/* 1 when now is inside [nb, na] with more than a third of it left. */
static int
fresh(time_t nb, time_t na, time_t now)
{
	return na > nb && now >= nb && (na - now) * 3 > (na - nb);
}

/* ---- small text helpers ---------------------------------------------------- */

/* go's shellescape.Quote, which istioctl uses for cluster.env values. */
static void
sh_quote(FILE *f, const char *v)
{
	const char *p;
	int safe = v[0] != '\0';

	for (p = v; *p != '\0' && safe; p++)
		safe = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		       (*p >= '0' && *p <= '9') || strchr("_@%+=:,./-", *p) != NULL;
	if (safe) {
		fputs(v, f);
		return;
	}
	fputc('\'', f);
	for (p = v; *p != '\0'; p++) {
		if (*p == '\'')
			fputs("'\"'\"'", f);
		else
			fputc(*p, f);
	}
	fputc('\'', f);
}

/* A YAML scalar: plain when that reads back as the same string, else
 * single-quoted (what go-yaml writes). */
static void
yaml_scalar(FILE *f, const char *v)
{
	static const char *const words[] = {"true", "false", "yes", "no", "on", "off",
					    "null", "y", "n", "~", NULL};
	const char *p;
	int plain = v[0] != '\0' && strchr("-?:,[]{}#&*!|>'\"%@` ", v[0]) == NULL, i;
	int digits = 1;

	for (p = v; *p != '\0' && plain; p++) {
		plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			(*p >= '0' && *p <= '9') || strchr("_./:-", *p) != NULL;
		if (*p == ':' && (p[1] == '\0' || p[1] == ' '))
			plain = 0;
		if (!((*p >= '0' && *p <= '9') || *p == '.'))
			digits = 0;
	}
	for (i = 0; plain && words[i] != NULL; i++)
		if (strcasecmp(v, words[i]) == 0)
			plain = 0;
	if (plain && !digits) {
		fputs(v, f);
		return;
	}
	fputc('\'', f);
	for (p = v; *p != '\0'; p++) {
		if (*p == '\'')
			fputc('\'', f);
		fputc(*p, f);
	}
	fputc('\'', f);
}

/* A value for cluster.env or hosts: printable, one line. */
static int
one_line(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

/* A Kubernetes name (DNS-1123 label or subdomain). */
static int
k8s_name(const char *s)
{
	size_t i, n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '.'))
			return 0;
	return s[0] != '-' && s[n - 1] != '-';
}

/* A JSON value as text: strings as they are, integers printed. */
static const char *
jtext(const json_t *v, char *buf, size_t size)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(buf, size, "%lld", (long long)json_integer_value(v));
		return buf;
	}
	return NULL;
}

/* The host part of "HOST:PORT" (or the whole), into out. */
static void
host_of(const char *addr, char *out, size_t size)
{
	const char *colon = strrchr(addr, ':');
	size_t n = colon != NULL && strchr(addr, ':') == colon ? (size_t)(colon - addr)
							     : strlen(addr);

	snprintf(out, size, "%.*s", (int)n, addr);
}

static char *
mem_text(FILE *f, char **buf)
{
	if (fclose(f) != 0) {
		free(*buf);
		*buf = NULL;
	}
	return *buf;
}

/* ---- the bundle ------------------------------------------------------------ */

/* The bundle stored by an earlier apply, or NULL. */
static json_t *
bundle_old(or_host *h, const struct or_host_api *api)
{
	const char *v = api->secret_get(h, BUNDLE);
	json_t *b = v != NULL ? json_loads(v, 0, NULL) : NULL;

	if (b != NULL && !json_is_object(b)) {
		json_decref(b);
		b = NULL;
	}
	return b;
}

static const char *
bundle_file(const json_t *b, const char *name)
{
	return json_string_value(json_object_get(b, name));
}

/* Store the bundle when it differs from old; output bundle_ref and files. */
static int
bundle_store(or_host *h, const struct or_host_api *api, json_t *bundle, const json_t *old)
{
	char *text = json_dumps(bundle, JSON_COMPACT | JSON_SORT_KEYS), *names;
	json_t *list = json_array();
	const char *k;
	json_t *v;
	int rc = -1;

	json_object_foreach(bundle, k, v)
		json_array_append_new(list, json_string(k));
	names = json_dumps(list, JSON_COMPACT);
	json_decref(list);
	if (text == NULL || names == NULL) {
		api->fail(h, "nomem", "out of memory");
		goto out;
	}
	if (old != NULL && json_equal(bundle, old)) {
		api->log(h, OR_LOG_INFO, "the VM's files are unchanged");
	} else {
		if (api->secret_put(h, BUNDLE, text) != 0) {
			api->fail(h, "state", "cannot store the VM's files");
			goto out;
		}
		api->log(h, OR_LOG_INFO, "the VM's files are stored in secret " BUNDLE ": %s",
			 names);
	}
	api->output(h, "bundle_ref", BUNDLE);
	api->output_json(h, "files", names);
	rc = 0;
out:
	if (text != NULL)
		memset(text, 0, strlen(text));
	free(text);
	free(names);
	return rc;
}

/* hosts: "<gateway IP> istiod.istio-system.svc", as istioctl writes it. */
static int
hosts_file(or_host *h, const struct or_host_api *api, json_t *bundle)
{
	const char *addr = need(h, api, "istiod_address"), *host = api->input(h, "istiod_host");
	char ip[128], line[400];

	if (addr == NULL)
		return -1;
	if (host == NULL || host[0] == '\0')
		host = "istiod.istio-system.svc";
	host_of(addr, ip, sizeof(ip));
	if (ip[0] == '\0' || !one_line(ip) || !one_line(host) || strchr(ip, ' ') != NULL) {
		api->fail(h, "input", "istiod_address must be GATEWAY_IP:15012");
		return -1;
	}
	snprintf(line, sizeof(line), "%s %s\n", ip, host);
	json_object_set_new(bundle, "hosts", json_string(line));
	return 0;
}

/* ---- legacy: cluster.env and a mesh certificate ------------------------------ */

/* spiffe://TD/ns/NS/sa/SA into its parts; -1 when it is not one. */
static int
spiffe_split(const char *id, char *td, char *ns, char *sa, size_t size)
{
	const char *p, *n, *s;

	if (id == NULL || strncmp(id, "spiffe://", 9) != 0)
		return -1;
	p = id + 9;
	n = strstr(p, "/ns/");
	s = n != NULL ? strstr(n + 4, "/sa/") : NULL;
	if (n == NULL || s == NULL || n == p || s == n + 4 || s[4] == '\0' ||
	    (size_t)(n - p) >= size || (size_t)(s - n - 4) >= size || strlen(s + 4) >= size ||
	    strchr(s + 4, '/') != NULL)
		return -1;
	snprintf(td, size, "%.*s", (int)(n - p), p);
	snprintf(ns, size, "%.*s", (int)(s - n - 4), n + 4);
	snprintf(sa, size, "%s", s + 4);
	return 0;
}

/* cluster.env of the tutorial: the cluster_env input's keys (sorted), then
 * ISTIO_CP_AUTH=MUTUAL_TLS unless given. */
static char *
legacy_cluster_env(or_host *h, const struct or_host_api *api)
{
	json_t *env = in_json(h, api, "cluster_env"), *keys = json_array();
	char *buf = NULL, num[32];
	size_t sz = 0, i;
	const char *k, *v;
	json_t *val;
	FILE *f = NULL;
	int auth = 0;

	if (!json_is_object(env)) {
		api->fail(h, "input", "cluster_env must be an object of KEY: value");
		goto fail;
	}
	json_object_foreach(env, k, val)
		json_array_append_new(keys, json_string(k));
	/* Sorted, so the file does not change between two applies. */
	for (i = 1; i < json_array_size(keys); i++) {
		size_t j = i;

		while (j > 0 && strcmp(json_string_value(json_array_get(keys, j - 1)),
				       json_string_value(json_array_get(keys, j))) > 0) {
			json_t *a = json_incref(json_array_get(keys, j - 1));

			json_array_set(keys, j - 1, json_array_get(keys, j));
			json_array_set_new(keys, j, a);
			j--;
		}
	}
	f = open_memstream(&buf, &sz);
	if (f == NULL) {
		api->fail(h, "nomem", "out of memory");
		goto fail;
	}
	for (i = 0; i < json_array_size(keys); i++) {
		k = json_string_value(json_array_get(keys, i));
		v = jtext(json_object_get(env, k), num, sizeof(num));
		if (k[0] == '\0' || k[strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")] != '\0' ||
		    v == NULL || v[0] == '\0' || !one_line(v)) {
			api->fail(h, "input", "cluster_env: \"%.60s\" must be an upper-case name "
				  "with a one-line value", k);
			goto fail;
		}
		if (strcmp(k, "ISTIO_CP_AUTH") == 0)
			auth = 1;
		fprintf(f, "%s=", k);
		sh_quote(f, v);
		fputc('\n', f);
	}
	if (!auth)
		fputs("ISTIO_CP_AUTH=MUTUAL_TLS\n", f);
	json_decref(env);
	json_decref(keys);
	return mem_text(f, &buf);
fail:
	if (f != NULL)
		fclose(f);
	free(buf);
	json_decref(env);
	json_decref(keys);
	return NULL;
}

/* An earlier certificate worth keeping: same identity, chains to today's
 * intermediate and root, more than a third of its life left. */
static int
cert_reusable(or_host *h, const struct or_host_api *api, const json_t *old, const char *identity,
	      const char *ca_cert, const char *root_cert)
{
	const char *chain = bundle_file(old, "cert-chain.pem"), *key = bundle_file(old, "key.pem");
	char uri[512], until[64];
	unsigned char *der;
	size_t len = 0;
	time_t nb, na;
	int ok;

	if (chain == NULL || key == NULL || !same_cert(bundle_file(old, "root-cert.pem"), 0,
						      root_cert, 0) ||
	    !same_cert(chain, 1, ca_cert, 0))
		return 0;
	der = pem_cert(chain, 0, &len);
	ok = der != NULL && cert_facts(der, len, &nb, &na, uri, sizeof(uri)) == 0 &&
	     strcmp(uri, identity) == 0 && fresh(nb, na, time(NULL));
	free(der);
	if (ok) {
		strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", gmtime(&na));
		api->log(h, OR_LOG_INFO, "the VM's certificate for %s is valid until %s, more than "
			 "a third of its life left: kept", identity, until);
	}
	return ok;
}

static or_status
legacy_apply(or_host *h, const struct or_host_api *api)
{
	const char *identity = need(h, api, "identity"), *root = need(h, api, "root_cert");
	const char *ca = need(h, api, "ca_cert"), *ref = need(h, api, "ca_key_ref"), *ca_key;
	char td[256], ns[256], sa[256], *env = NULL;
	struct or_pki_files w = {0};
	json_t *old = NULL, *bundle = NULL;
	long days = in_long(h, api, "cert_days", 365);
	or_status st = OR_STATUS_FAILED;

	if (identity == NULL || root == NULL || ca == NULL || ref == NULL)
		return OR_STATUS_FAILED;
	if (spiffe_split(identity, td, ns, sa, sizeof(td)) != 0) {
		api->fail(h, "input", "identity must be spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/"
			  "SERVICE_ACCOUNT, not \"%.100s\"", identity);
		return OR_STATUS_FAILED;
	}
	if (days < 1 || days > 3650) {
		api->fail(h, "input", "cert_days must be 1 to 3650");
		return OR_STATUS_FAILED;
	}
	env = legacy_cluster_env(h, api);
	if (env == NULL)
		return OR_STATUS_FAILED;
	bundle = json_object();
	json_object_set_new(bundle, "cluster.env", json_string(env));
	json_object_set_new(bundle, "root-cert.pem", json_string(root));
	if (hosts_file(h, api, bundle) != 0)
		goto out;

	old = bundle_old(h, api);
	if (old != NULL && cert_reusable(h, api, old, identity, ca, root)) {
		json_object_set(bundle, "key.pem", json_object_get(old, "key.pem"));
		json_object_set(bundle, "cert-chain.pem", json_object_get(old, "cert-chain.pem"));
	} else {
		ca_key = api->secret_get(h, ref);
		if (ca_key == NULL || ca_key[0] == '\0') {
			api->fail(h, "input", "the secret named by ca_key_ref is not in this "
				  "environment");
			goto out;
		}
		if (api->pki_workload(h, ca, ca_key, root, td, ns, sa, (int)days, &w) != 0)
			goto out;
		json_object_set_new(bundle, "key.pem", json_string(w.key));
		json_object_set_new(bundle, "cert-chain.pem", json_string(w.cert_chain));
		api->log(h, OR_LOG_INFO, "issued the VM's certificate for %s (URI SAN), %ld days, "
			 "signed by the mesh CA's intermediate", identity, days);
	}
	if (bundle_store(h, api, bundle, old) != 0)
		goto out;
	api->output(h, "identity", identity);
	api->output(h, "namespace", ns);
	api->output(h, "service_account", sa);
	api->output(h, "flow", "legacy");
	st = OR_STATUS_OK;
out:
	api->pki_free(&w);
	free(env);
	json_decref(old);
	json_decref(bundle);
	return st;
}

/* ---- current: WorkloadGroup, token, istioctl's files --------------------------- */

struct cur {
	or_host *h;
	const struct or_host_api *api;
	or_kube *k;
	const char *ns;
	const char *wg;		/* WorkloadGroup name */
	const char *sa;
	const char *network;
	json_t *group;		/* the workload_group input */
	json_t *labels;		/* borrowed from group */
	json_t *ports;		/* name -> integer, sorted by name (new) */
	char api_version[64];	/* networking.istio.io/v1 or v1beta1 */
};

/* The version of networking.istio.io that serves workloadgroups: v1 since
 * Istio 1.22, v1beta1 before.  0; 1 when none (Istio's CRDs absent); -1
 * when the cluster did not answer. */
static int
wg_version(struct cur *c)
{
	static const char *const versions[] = {"v1", "v1beta1", "v1alpha3", NULL};
	char path[128];
	json_t *list, *r;
	size_t i;
	long st;
	int v;

	for (v = 0; versions[v] != NULL; v++) {
		snprintf(path, sizeof(path), "/apis/networking.istio.io/%s", versions[v]);
		st = kube_get(c->api, c->k, path, &list);
		if (st == 0)
			return -1;
		for (i = 0; i < json_array_size(json_object_get(list, "resources")); i++) {
			r = json_array_get(json_object_get(list, "resources"), i);
			if (json_is_string(json_object_get(r, "name")) &&
			    strcmp(json_string_value(json_object_get(r, "name")), "workloadgroups") == 0) {
				snprintf(c->api_version, sizeof(c->api_version),
					 "networking.istio.io/%s", versions[v]);
				json_decref(list);
				return 0;
			}
		}
		json_decref(list);
	}
	return 1;
}

static or_status
cur_init(struct cur *c, or_host *h, const struct or_host_api *api)
{
	const char *k, *v;
	char num[32];
	json_t *val, *ports;
	long port;
	char *end;

	memset(c, 0, sizeof(*c));
	c->h = h;
	c->api = api;
	c->ns = api->input(h, "namespace");
	if (c->ns == NULL || c->ns[0] == '\0')
		c->ns = "default";
	if (!k8s_name(c->ns) || strchr(c->ns, '.') != NULL) {
		api->fail(h, "input", "namespace must be a Kubernetes namespace name");
		return OR_STATUS_FAILED;
	}
	c->group = in_json(h, api, "workload_group");
	if (!json_is_object(c->group)) {
		api->fail(h, "input", "workload_group must be an object {name, labels, "
			  "service_account, ports, network}");
		return OR_STATUS_FAILED;
	}
	c->wg = json_string_value(json_object_get(c->group, "name"));
	c->sa = json_string_value(json_object_get(c->group, "service_account"));
	if (c->sa == NULL || c->sa[0] == '\0')
		c->sa = "default";	/* istioctl's default too */
	c->network = json_string_value(json_object_get(c->group, "network"));
	if (c->network == NULL)
		c->network = "";
	if (!k8s_name(c->wg) || !k8s_name(c->sa) || !one_line(c->network)) {
		api->fail(h, "input", "workload_group needs a name and service_account that are "
			  "Kubernetes names");
		return OR_STATUS_FAILED;
	}
	c->labels = json_object_get(c->group, "labels");
	if (c->labels != NULL && !json_is_object(c->labels)) {
		api->fail(h, "input", "workload_group.labels must be an object");
		return OR_STATUS_FAILED;
	}
	json_object_foreach(c->labels, k, val) {
		if (!json_is_string(val) || !one_line(json_string_value(val)) || !one_line(k)) {
			api->fail(h, "input", "workload_group.labels: \"%.60s\" needs a string value",
				  k);
			return OR_STATUS_FAILED;
		}
	}
	c->ports = json_object();
	ports = json_object_get(c->group, "ports");
	json_object_foreach(ports, k, val) {
		v = jtext(val, num, sizeof(num));
		port = v != NULL ? strtol(v, &end, 10) : 0;
		if (v == NULL || *end != '\0' || port < 1 || port > 65535 || !k8s_name(k)) {
			api->fail(h, "input", "workload_group.ports: \"%.60s\" must be a port number",
				  k);
			return OR_STATUS_FAILED;
		}
		json_object_set_new(c->ports, k, json_integer(port));
	}
	if (later(h, api, api->input(h, "endpoint")) ||
	    later(h, api, api->input(h, "ca_certificate")))
		return OR_STATUS_OK; /* a plan before the cluster exists: no client */
	if (need(h, api, "endpoint") == NULL || need(h, api, "ca_certificate") == NULL)
		return OR_STATUS_FAILED;
	c->k = kube_from_inputs(h, api);
	return c->k != NULL ? OR_STATUS_OK : OR_STATUS_FAILED;
}

static void
cur_free(struct cur *c)
{
	if (c->k != NULL)
		c->api->kube_close(c->k);
	json_decref(c->group);
	json_decref(c->ports);
}

static const char *
owner(struct cur *c)
{
	const char *e = env_name(c->h, c->api);

	return e != NULL ? e : "";
}

/* Make name (kind at path) unless it exists; state key remembers that this
 * step made it, recorded before it is made. */
static int
ensure(struct cur *c, const char *path, const char *state_key, const char *name, json_t *obj,
       const char *what)
{
	const char *mine = c->api->state_get(c->h, state_key);
	long st = kube_get(c->api, c->k, path, NULL);

	if (st == 0) {
		json_decref(obj);
		return -1;
	}
	if (st == 200 && (mine == NULL || strcmp(mine, name) != 0)) {
		c->api->log(c->h, OR_LOG_INFO, "%s %s exists: adopted", what, name);
		json_decref(obj);
		return 0;
	}
	if (st == 200) {
		json_decref(obj);
		return 0;
	}
	if (c->api->state_set(c->h, state_key, name) != 0) {
		json_decref(obj);
		c->api->fail(c->h, "state", "cannot record the %s", what);
		return -1;
	}
	if (kube_apply_json(c->h, c->api, c->k, obj, c->ns) != 0)
		return -1;
	c->api->log(c->h, OR_LOG_INFO, "%s %s created", what, name);
	return 0;
}

/* kubectl create namespace / serviceaccount, then the WorkloadGroup
 * (istio.io: "Create a template WorkloadGroup for the VM(s)"). */
static int
apply_group(struct cur *c)
{
	char path[512];
	json_t *wg, *tmpl, *lb;
	int rc;

	snprintf(path, sizeof(path), "/api/v1/namespaces/%s", c->ns);
	if (ensure(c, path, "namespace_created", c->ns,
		   json_pack("{s:s, s:s, s:{s:s, s:{s:s}}}", "apiVersion", "v1", "kind", "Namespace",
			     "metadata", "name", c->ns, "labels", OWNER_LABEL, owner(c)),
		   "namespace") != 0)
		return -1;
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts/%s", c->ns, c->sa);
	if (ensure(c, path, "service_account_created", c->sa,
		   json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}}", "apiVersion", "v1", "kind",
			     "ServiceAccount", "metadata", "name", c->sa, "namespace", c->ns,
			     "labels", OWNER_LABEL, owner(c)),
		   "service account") != 0)
		return -1;
	rc = wg_version(c);
	if (rc != 0) {
		if (rc > 0)
			c->api->fail(c->h, "istio", "the cluster serves no WorkloadGroup "
				     "(networking.istio.io): is Istio installed?");
		return -1;
	}
	tmpl = json_pack("{s:s, s:O}", "serviceAccount", c->sa, "ports", c->ports);
	if (c->network[0] != '\0')
		json_object_set_new(tmpl, "network", json_string(c->network));
	lb = c->labels != NULL ? json_incref(c->labels) : json_object();
	wg = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:{s:o}, s:o}}", "apiVersion",
		       c->api_version, "kind", "WorkloadGroup", "metadata", "name", c->wg,
		       "namespace", c->ns, "labels", OWNER_LABEL, owner(c), "spec", "metadata",
		       "labels", lb, "template", tmpl);
	if (kube_apply_json(c->h, c->api, c->k, wg, c->ns) != 0)
		return -1;
	c->api->log(c->h, OR_LOG_INFO, "WorkloadGroup %s/%s applied (%s, service account %s)",
		    c->ns, c->wg, c->api_version, c->sa);
	return 0;
}

/* The claims of a JWT (unverified: only to decide whether to renew it). */
static json_t *
jwt_claims(const char *tok)
{
	const char *a = tok != NULL ? strchr(tok, '.') : NULL, *b = a != NULL ? strchr(a + 1, '.') : NULL;
	unsigned char *raw;
	size_t len = 0;
	json_t *j;

	if (b == NULL)
		return NULL;
	raw = b64_decode(a + 1, (size_t)(b - a - 1), &len);
	if (raw == NULL)
		return NULL;
	j = json_loadb((const char *)raw, len, 0, NULL);
	free(raw);
	return j;
}

/* An earlier token worth keeping: for this service account (same uid),
 * audience istio-ca, the same lifetime asked, a third of it left. */
static int
token_reusable(struct cur *c, const char *tok, const char *sa_uid, long seconds)
{
	json_t *cl = jwt_claims(tok), *aud, *sa;
	json_int_t exp, iat;
	const char *s;
	size_t i;
	int ok = 0;

	if (cl == NULL || sa_uid == NULL)
		goto out;
	exp = json_integer_value(json_object_get(cl, "exp"));
	iat = json_integer_value(json_object_get(cl, "iat"));
	sa = json_object_get(json_object_get(cl, "kubernetes.io"), "serviceaccount");
	s = json_string_value(json_object_get(sa, "uid"));
	if (s == NULL || strcmp(s, sa_uid) != 0 || exp - iat != seconds ||
	    !fresh((time_t)iat, (time_t)exp, time(NULL)))
		goto out;
	aud = json_object_get(cl, "aud");
	for (i = 0; i < json_array_size(aud); i++)
		if (json_is_string(json_array_get(aud, i)) &&
		    strcmp(json_string_value(json_array_get(aud, i)), "istio-ca") == 0)
			ok = 1;
	if (json_is_string(aud) && strcmp(json_string_value(aud), "istio-ca") == 0)
		ok = 1;
	if (ok)
		c->api->log(c->h, OR_LOG_INFO, "the VM's token for %s/%s has more than a third "
			    "of its life left: kept", c->ns, c->sa);
out:
	json_decref(cl);
	return ok;
}

/* kubectl create token SA --audience istio-ca --duration SECONDS (what
 * istioctl does through the TokenRequest API).  New string, or NULL. */
static char *
token_request(struct cur *c, long seconds)
{
	struct or_http_response r = {0};
	char path[512], body[256];
	json_t *j = NULL;
	const char *tok;
	char *out = NULL;

	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts/%s/token", c->ns,
		 c->sa);
	snprintf(body, sizeof(body), "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":"
		 "\"TokenRequest\",\"spec\":{\"audiences\":[\"istio-ca\"],\"expirationSeconds\":%ld}}",
		 seconds);
	if (c->api->kube_request(c->k, "POST", path, NULL, body, &r) != 0)
		return NULL;
	j = body_json(&r);
	tok = json_string_value(json_object_get(json_object_get(j, "status"), "token"));
	if (tok == NULL)
		c->api->fail(c->h, "kubernetes", "the TokenRequest for %s/%s answered HTTP %ld "
			     "without a token", c->ns, c->sa, r.status);
	else
		out = strdup(tok);
	c->api->http_free(&r);
	json_decref(j);
	return out;
}

/* labels.CanonicalService of Istio: the canonical name and revision. */
static void
canonical(const json_t *lbls, const char *wg, const char **svc, const char **rev)
{
	static const char *const names[] = {"service.istio.io/canonical-name",
					    "app.kubernetes.io/name", "app", NULL};
	static const char *const revs[] = {"service.istio.io/canonical-revision",
					   "app.kubernetes.io/version", "version", NULL};
	int i;

	*svc = wg;
	*rev = "latest";
	for (i = 0; names[i] != NULL; i++)
		if (json_string_value(json_object_get(lbls, names[i])) != NULL) {
			*svc = json_string_value(json_object_get(lbls, names[i]));
			break;
		}
	for (i = 0; revs[i] != NULL; i++)
		if (json_string_value(json_object_get(lbls, revs[i])) != NULL) {
			*rev = json_string_value(json_object_get(lbls, revs[i]));
			break;
		}
}

/* The proxy metadata istioctl puts in mesh.yaml (proxyMetadata) and, with
 * its overrides, in cluster.env.  New object. */
static json_t *
proxy_metadata(struct cur *c)
{
	const char *svc, *rev, *k;
	const char *cluster = c->api->input(c->h, "cluster_id");
	const char *mesh = c->api->input(c->h, "mesh_id");
	const char *td = c->api->input(c->h, "trust_domain");
	json_t *md = json_object(), *lbls = json_object(), *pp = json_array(), *val;
	char *s;

	json_object_foreach(c->labels, k, val)
		json_object_set(lbls, k, val);
	canonical(lbls, c->wg, &svc, &rev);
	json_object_set_new(md, "CANONICAL_SERVICE", json_string(svc));
	json_object_set_new(md, "CANONICAL_REVISION", json_string(rev));
	json_object_set_new(md, "POD_NAMESPACE", json_string(c->ns));
	json_object_set_new(md, "SERVICE_ACCOUNT", json_string(c->sa));
	json_object_set_new(md, "TRUST_DOMAIN",
			    json_string(td != NULL && td[0] != '\0' ? td : "cluster.local"));
	json_object_set_new(md, "ISTIO_META_CLUSTER_ID",
			    json_string(cluster != NULL && cluster[0] != '\0' ? cluster : "Kubernetes"));
	json_object_set_new(md, "ISTIO_META_MESH_ID", json_string(mesh != NULL ? mesh : ""));
	json_object_set_new(md, "ISTIO_META_NETWORK", json_string(c->network));
	json_object_foreach(c->ports, k, val)
		json_array_append_new(pp, json_pack("{s:s, s:O, s:s}", "name", k, "containerPort",
						    val, "protocol", ""));
	if (json_array_size(pp) > 0) {
		s = json_dumps(pp, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (s != NULL)
			json_object_set_new(md, "ISTIO_META_POD_PORTS", json_string(s));
		free(s);
	}
	json_object_set_new(md, "ISTIO_META_WORKLOAD_NAME", json_string(c->wg));
	json_object_set_new(lbls, "service.istio.io/canonical-name", json_string(svc));
	json_object_set_new(lbls, "service.istio.io/canonical-revision", json_string(rev));
	s = json_dumps(lbls, JSON_COMPACT | JSON_SORT_KEYS);
	if (s != NULL)
		json_object_set_new(md, "ISTIO_METAJSON_LABELS", json_string(s));
	free(s);
	if (in_bool(c->h, c->api, "capture_dns", 0))
		json_object_set_new(md, "ISTIO_META_DNS_CAPTURE", json_string("true"));
	json_decref(lbls);
	json_decref(pp);
	return md;
}

/* Keys of o, sorted. */
static json_t *
sorted_keys(const json_t *o)
{
	json_t *keys = json_array(), *a;
	const char *k;
	json_t *v;
	size_t i, j;

	json_object_foreach((json_t *)o, k, v)
		json_array_append_new(keys, json_string(k));
	for (i = 1; i < json_array_size(keys); i++)
		for (j = i; j > 0 && strcmp(json_string_value(json_array_get(keys, j - 1)),
					    json_string_value(json_array_get(keys, j))) > 0; j--) {
			a = json_incref(json_array_get(keys, j - 1));
			json_array_set(keys, j - 1, json_array_get(keys, j));
			json_array_set_new(keys, j, a);
		}
	return keys;
}

/* mesh.yaml: {defaultConfig: {discoveryAddress, meshId, proxyMetadata}},
 * keys sorted as go-yaml writes a map. */
static char *
mesh_yaml(struct cur *c, const json_t *md)
{
	const char *host = c->api->input(c->h, "istiod_host");
	const char *mesh = c->api->input(c->h, "mesh_id");
	json_t *keys = sorted_keys(md);
	char *buf = NULL, addr[300];
	size_t sz = 0, i;
	FILE *f = open_memstream(&buf, &sz);

	if (f == NULL) {
		json_decref(keys);
		return NULL;
	}
	snprintf(addr, sizeof(addr), "%s:" ISTIOD_PORT,
		 host != NULL && host[0] != '\0' ? host : "istiod.istio-system.svc");
	fputs("defaultConfig:\n  discoveryAddress: ", f);
	yaml_scalar(f, addr);
	fputc('\n', f);
	if (mesh != NULL && mesh[0] != '\0') {
		fputs("  meshId: ", f);
		yaml_scalar(f, mesh);
		fputc('\n', f);
	}
	fputs("  proxyMetadata:\n", f);
	for (i = 0; i < json_array_size(keys); i++) {
		const char *k = json_string_value(json_array_get(keys, i));

		fprintf(f, "    %s: ", k);
		yaml_scalar(f, json_string_value(json_object_get(md, k)));
		fputc('\n', f);
	}
	json_decref(keys);
	return mem_text(f, &buf);
}

/* cluster.env: the proxy metadata plus istioctl's overrides, "K=V" lines
 * sorted, values shell-quoted. */
static char *
cluster_env(struct cur *c, const json_t *md)
{
	const char *ip = c->api->input(c->h, "internal_ip"), *k;
	json_t *env = json_deep_copy(md), *keys, *v;
	char *buf = NULL, ports[512] = "", svc[600];
	size_t sz = 0, i, n = 0;
	FILE *f;

	json_object_foreach(c->ports, k, v) {
		n += (size_t)snprintf(ports + n, n < sizeof(ports) ? sizeof(ports) - n : 0, "%s%lld",
				      n > 0 ? "," : "", (long long)json_integer_value(v));
	}
	snprintf(svc, sizeof(svc), "%s.%s", c->wg, c->ns);
	json_object_set_new(env, "ISTIO_INBOUND_PORTS", json_string(ports[0] != '\0' ? ports : "*"));
	json_object_set_new(env, "ISTIO_NAMESPACE", json_string(c->ns));
	json_object_set_new(env, "ISTIO_SERVICE", json_string(svc));
	json_object_set_new(env, "ISTIO_SERVICE_CIDR", json_string("*"));
	json_object_set_new(env, "ISTIO_LOCAL_EXCLUDE_PORTS", json_string(EXCLUDE_PORTS));
	json_object_set_new(env, "SERVICE_ACCOUNT", json_string(c->sa));
	if (ip != NULL && ip[0] != '\0' && one_line(ip))
		json_object_set_new(env, "ISTIO_SVC_IP", json_string(ip));
	keys = sorted_keys(env);
	f = open_memstream(&buf, &sz);
	if (f == NULL) {
		json_decref(keys);
		json_decref(env);
		return NULL;
	}
	for (i = 0; i < json_array_size(keys); i++) {
		k = json_string_value(json_array_get(keys, i));
		fprintf(f, "%s=", k);
		sh_quote(f, json_string_value(json_object_get(env, k)));
		fputc('\n', f);
	}
	json_decref(keys);
	json_decref(env);
	return mem_text(f, &buf);
}

static or_status
current_apply(or_host *h, const struct or_host_api *api)
{
	struct cur c;
	const char *root = need(h, api, "root_cert"), *old_tok;
	long seconds = in_long(h, api, "token_seconds", 3600);
	json_t *old = NULL, *bundle = NULL, *md = NULL, *sa = NULL;
	char *tok = NULL, *env = NULL, *mesh = NULL, path[512];
	or_status st;

	if (root == NULL)
		return OR_STATUS_FAILED;
	if (seconds < 600 || seconds > 48L * 3600) {
		/* Kubernetes refuses tokens shorter than 10 minutes. */
		api->fail(h, "input", "token_seconds must be 600 to 172800");
		return OR_STATUS_FAILED;
	}
	st = cur_init(&c, h, api);
	if (st != OR_STATUS_OK)
		goto out;
	st = api->cancelled(h) ? OR_STATUS_CANCELLED : OR_STATUS_RETRY;
	api->progress(h, 10, "WorkloadGroup and service account");
	if (apply_group(&c) != 0)
		goto out;

	bundle = json_object();
	json_object_set_new(bundle, "root-cert.pem", json_string(root));
	if (hosts_file(h, api, bundle) != 0) {
		st = OR_STATUS_FAILED;
		goto out;
	}
	api->progress(h, 50, "the VM's token");
	old = bundle_old(h, api);
	old_tok = bundle_file(old, "istio-token");
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts/%s", c.ns, c.sa);
	if (kube_get(c.api, c.k, path, &sa) == 0)
		goto out;
	if (old_tok != NULL &&
	    token_reusable(&c, old_tok, json_string_value(json_object_get(
						json_object_get(sa, "metadata"), "uid")), seconds)) {
		tok = strdup(old_tok);
	} else {
		tok = token_request(&c, seconds);
		if (tok != NULL)
			api->log(h, OR_LOG_INFO, "requested a token for %s/%s (audience istio-ca, "
				 "%ld s)", c.ns, c.sa, seconds);
	}
	if (tok == NULL)
		goto out;
	json_object_set_new(bundle, "istio-token", json_string(tok));

	/* istioctl x workload entry configure -f workloadgroup.yaml -o DIR
	 * --clusterID CLUSTER [--capture-dns]: its files. */
	md = proxy_metadata(&c);
	env = cluster_env(&c, md);
	mesh = mesh_yaml(&c, md);
	if (env == NULL || mesh == NULL) {
		api->fail(h, "nomem", "out of memory");
		st = OR_STATUS_FAILED;
		goto out;
	}
	json_object_set_new(bundle, "cluster.env", json_string(env));
	json_object_set_new(bundle, "mesh.yaml", json_string(mesh));
	if (bundle_store(h, api, bundle, old) != 0)
		goto out;
	api->output(h, "namespace", c.ns);
	api->output(h, "workload_group", c.wg);
	api->output(h, "workload_group_api", c.api_version);
	api->output(h, "service_account", c.sa);
	api->output(h, "flow", "current");
	api->progress(h, 100, "the VM's files are ready");
	st = OR_STATUS_OK;
out:
	if (tok != NULL)
		memset(tok, 0, strlen(tok));
	free(tok);
	free(env);
	free(mesh);
	json_decref(md);
	json_decref(sa);
	json_decref(old);
	json_decref(bundle);
	cur_free(&c);
	return st;
}

static or_status
current_destroy(or_host *h, const struct or_host_api *api)
{
	struct cur c;
	const char *mine;
	char path[512], what[400];
	or_status st = cur_init(&c, h, api);
	int rc;

	if (st != OR_STATUS_OK)
		goto out;
	st = api->cancelled(h) ? OR_STATUS_CANCELLED : OR_STATUS_RETRY;
	rc = wg_version(&c);
	if (rc < 0)
		goto out;
	if (rc == 0) {
		snprintf(path, sizeof(path), "/apis/%s/namespaces/%s/workloadgroups/%s",
			 c.api_version, c.ns, c.wg);
		snprintf(what, sizeof(what), "WorkloadGroup %s/%s", c.ns, c.wg);
		if (kube_del(h, api, c.k, path, what) != 0)
			goto out;
	}
	mine = api->state_get(h, "service_account_created");
	if (mine != NULL && strcmp(mine, c.sa) == 0) {
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts/%s", c.ns, c.sa);
		snprintf(what, sizeof(what), "service account %s/%s", c.ns, c.sa);
		if (kube_del(h, api, c.k, path, what) != 0)
			goto out;
	}
	mine = api->state_get(h, "namespace_created");
	if (mine != NULL && strcmp(mine, c.ns) == 0 && strcmp(c.ns, "default") != 0) {
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s", c.ns);
		snprintf(what, sizeof(what), "namespace %s", c.ns);
		if (kube_del(h, api, c.k, path, what) != 0)
			goto out;
	}
	st = OR_STATUS_OK;
out:
	cur_free(&c);
	return st;
}

/* ---- the operations ---------------------------------------------------------- */

static const char *
flow_of(or_host *h, const struct or_host_api *api)
{
	const char *f = api->input(h, "flow");

	if (f == NULL || f[0] == '\0')
		return "current";
	if (strcmp(f, "legacy") != 0 && strcmp(f, "current") != 0) {
		api->fail(h, "input", "flow must be \"legacy\" or \"current\", not \"%.40s\"", f);
		return NULL;
	}
	return f;
}

static or_status
vf_apply(or_host *h, const struct or_host_api *api)
{
	const char *flow;

	if (api->minor < 1) {
		api->fail(h, "abi", "vm-files needs a host with ABI minor 1 or later");
		return OR_STATUS_FAILED;
	}
	flow = flow_of(h, api);
	if (flow == NULL)
		return OR_STATUS_FAILED;
	return strcmp(flow, "legacy") == 0 ? legacy_apply(h, api) : current_apply(h, api);
}

static or_status
vf_destroy(or_host *h, const struct or_host_api *api)
{
	const char *flow;
	or_status st = OR_STATUS_OK;

	if (api->minor < 1) {
		api->fail(h, "abi", "vm-files needs a host with ABI minor 1 or later");
		return OR_STATUS_FAILED;
	}
	flow = flow_of(h, api);
	if (flow == NULL)
		return OR_STATUS_FAILED;
	if (strcmp(flow, "current") == 0)
		st = current_destroy(h, api);
	/* The key and the token have nothing left to serve: drop them. */
	if (st == OR_STATUS_OK && api->secret_get(h, BUNDLE) != NULL &&
	    strcmp(api->secret_get(h, BUNDLE), "{}") != 0) {
		if (api->secret_put(h, BUNDLE, "{}") != 0) {
			api->fail(h, "state", "cannot empty the VM's files");
			return OR_STATUS_RETRY;
		}
		api->log(h, OR_LOG_INFO, "secret " BUNDLE " emptied");
	}
	return st;
}

/* What apply would do; changes nothing (the plan makes no token, no
 * certificate, no secret).  The inputs are checked as apply checks them,
 * except those earlier steps have not made yet. */
static or_status
vf_plan(or_host *h, const struct or_host_api *api)
{
	const char *flow = flow_of(h, api), *id = api->input(h, "identity");
	const char *istiod = api->input(h, "istiod_address");
	struct cur c;

	if (flow == NULL)
		return OR_STATUS_FAILED;
	if (!known(istiod))
		istiod = "its address once Istio is installed";
	if (strcmp(flow, "legacy") == 0) {
		api->log(h, OR_LOG_INFO, "would make cluster.env, a certificate for %s (%ld days) "
			 "signed by the mesh CA, root-cert.pem and hosts (istiod at %s), stored as "
			 "secret " BUNDLE, known(id) ? id : "the VM's identity",
			 in_long(h, api, "cert_days", 365), istiod);
		return OR_STATUS_OK;
	}
	if (cur_init(&c, h, api) != OR_STATUS_OK) {
		cur_free(&c);
		return OR_STATUS_FAILED;
	}
	api->log(h, OR_LOG_INFO, "%swould apply WorkloadGroup %s/%s and service account %s, "
		 "request an istio-ca token (%ld s) and make cluster.env, mesh.yaml, root-cert.pem, "
		 "istio-token and hosts (istiod at %s), stored as secret " BUNDLE,
		 c.k == NULL ? "the cluster does not exist yet: " : "", c.ns, c.wg, c.sa,
		 in_long(h, api, "token_seconds", 3600), istiod);
	cur_free(&c);
	return OR_STATUS_OK;
}

static const struct or_plugin vm_files = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = 1,
	.name = "vm-files",
	.summary = "Make the files a VM needs to join the mesh (certificates or token, "
		   "cluster.env, mesh config, hosts), kept as one secret",
	.inputs_schema =
		"{"
		"\"flow\": {\"type\": \"string\", \"description\": \"legacy or current\"},"
		"\"istiod_address\": {\"type\": \"string\", \"required\": true, \"description\": "
		"\"GATEWAY_IP:15012 (hosts file)\"},"
		"\"istiod_host\": {\"type\": \"string\", \"description\": "
		"\"istiod.istio-system.svc\"},"
		"\"root_cert\": {\"type\": \"string\", \"required\": true, \"description\": \"Mesh "
		"root certificate (PEM)\"},"
		"\"cluster_env\": {\"type\": \"object\", \"description\": \"legacy: KEY: value of "
		"cluster.env\"},"
		"\"identity\": {\"type\": \"string\", \"description\": \"legacy: "
		"spiffe://TD/ns/NS/sa/SA of the VM\"},"
		"\"cert_days\": {\"type\": \"integer\", \"description\": \"legacy: certificate "
		"lifetime (365)\"},"
		"\"ca_cert\": {\"type\": \"string\", \"description\": \"legacy: the mesh CA's "
		"intermediate (PEM)\"},"
		"\"cert_chain\": {\"type\": \"string\", \"description\": \"legacy: its chain\"},"
		"\"ca_key_ref\": {\"type\": \"string\", \"description\": \"legacy: secret holding "
		"the intermediate's key\"},"
		"\"endpoint\": {\"type\": \"string\", \"description\": \"current: the cluster's "
		"endpoint\"},"
		"\"ca_certificate\": {\"type\": \"string\", \"description\": \"current: the "
		"cluster's CA\"},"
		"\"namespace\": {\"type\": \"string\", \"description\": \"current: namespace of the "
		"WorkloadGroup\"},"
		"\"workload_group\": {\"type\": \"object\", \"description\": \"current: {name, "
		"labels, service_account, ports, network}\"},"
		"\"internal_ip\": {\"type\": \"string\", \"description\": \"current: the VM's "
		"address (ISTIO_SVC_IP)\"},"
		"\"cluster_id\": {\"type\": \"string\", \"description\": \"current: the mesh's "
		"cluster ID\"},"
		"\"mesh_id\": {\"type\": \"string\", \"description\": \"current: the mesh ID\"},"
		"\"trust_domain\": {\"type\": \"string\", \"description\": \"current: the trust "
		"domain\"},"
		"\"token_seconds\": {\"type\": \"integer\", \"description\": \"current: token "
		"lifetime (3600)\"},"
		"\"capture_dns\": {\"type\": \"boolean\", \"description\": \"current: "
		"ISTIO_META_DNS_CAPTURE\"}"
		"}",
	.outputs_schema =
		"{"
		"\"bundle_ref\": {\"type\": \"string\", \"description\": \"The secret holding the "
		"files (vm_bundle)\"},"
		"\"files\": {\"type\": \"array\", \"description\": \"Names of the files\"},"
		"\"namespace\": {\"type\": \"string\", \"description\": \"The VM's namespace\"},"
		"\"service_account\": {\"type\": \"string\", \"description\": \"The VM's service "
		"account\"},"
		"\"workload_group\": {\"type\": \"string\", \"description\": \"current: the "
		"WorkloadGroup\"},"
		"\"workload_group_api\": {\"type\": \"string\", \"description\": \"current: its "
		"apiVersion\"},"
		"\"identity\": {\"type\": \"string\", \"description\": \"legacy: the certificate's "
		"SPIFFE ID\"},"
		"\"flow\": {\"type\": \"string\", \"description\": \"legacy or current\"}"
		"}",
	.capabilities = OR_CAP_PLAN | OR_CAP_DESTROY,
	.plan = vf_plan,
	.apply = vf_apply,
	.destroy = vf_destroy,
	.check = NULL,
};

OR_PLUGIN_EXPORT(vm_files)

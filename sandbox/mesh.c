/*
 * mesh.c - the LoadBalancer listeners and the in-cluster stand-ins for
 * istiod's controllers (see mesh.h).  The protocol handlers are in
 * istiod.c (port 15012) and shop.c (port 80).
 */
#include "mesh_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "pki.h"

/* ---- helpers ------------------------------------------------------------ */

json_t *
mesh_j(const json_t *obj, const char *dotted)
{
	char key[128];
	const char *p = dotted, *dot;
	const json_t *cur = obj;

	while (cur != NULL && p != NULL) {
		dot = strchr(p, '.');
		if (dot == NULL) {
			snprintf(key, sizeof(key), "%s", p);
			p = NULL;
		} else {
			snprintf(key, sizeof(key), "%.*s", (int)(dot - p), p);
			p = dot + 1;
		}
		cur = json_object_get(cur, key);
	}
	return (json_t *)cur;
}

const char *
mesh_s(const json_t *obj, const char *dotted)
{
	const char *s = json_string_value(mesh_j(obj, dotted));

	return s != NULL ? s : "";
}

int
mesh_labels_match(const json_t *selector, const json_t *labels)
{
	const char *key;
	json_t *v;

	if (!json_is_object(selector) || json_object_size(selector) == 0)
		return 0;
	json_object_foreach((json_t *)selector, key, v)
		if (!json_is_string(v) || !json_equal(json_object_get(labels, key), v))
			return 0;
	return 1;
}

static int
parse_cidr(const char *cidr, uint32_t *net, int *bits)
{
	char ip[32];
	const char *slash = strchr(cidr, '/');
	struct in_addr a;

	if (slash == NULL || (size_t)(slash - cidr) >= sizeof(ip))
		return -1;
	snprintf(ip, sizeof(ip), "%.*s", (int)(slash - cidr), cidr);
	*bits = atoi(slash + 1);
	if (inet_pton(AF_INET, ip, &a) != 1 || *bits < 0 || *bits > 32)
		return -1;
	*net = ntohl(a.s_addr) & (*bits == 0 ? 0 : ~0u << (32 - *bits));
	return 0;
}

int
mesh_cidr_contains(const char *outer, const char *inner)
{
	uint32_t on, in;
	int ob, ib;
	char one[40];

	if (strchr(inner, '/') == NULL) {
		snprintf(one, sizeof(one), "%s/32", inner);
		inner = one;
	}
	if (strchr(outer, '/') == NULL) {
		char o[40];

		snprintf(o, sizeof(o), "%s/32", outer);
		return mesh_cidr_contains(o, inner);
	}
	if (parse_cidr(outer, &on, &ob) != 0 || parse_cidr(inner, &in, &ib) != 0 || ob > ib)
		return 0;
	return (in & (ob == 0 ? 0 : ~0u << (32 - ob))) == on;
}

/* ---- HTTP requests (both handlers) --------------------------------------- */

int
mesh_http_read(int (*rd)(void *ctx, char *p, int n), void *ctx, struct mesh_http *h)
{
	struct buf raw;
	char chunk[4096], *end, *line, *next, *colon;
	size_t head_len, want = 0;
	int n, rc = -1;

	memset(h, 0, sizeof(*h));
	h->headers = json_object();
	buf_init(&h->body, MESH_REQ_MAX);
	buf_init(&raw, MESH_REQ_MAX);
	while ((end = raw.data != NULL ? strstr(raw.data, "\r\n\r\n") : NULL) == NULL) {
		n = rd(ctx, chunk, (int)sizeof(chunk));
		if (n <= 0 || buf_append(&raw, chunk, (size_t)n) != OR_OK)
			goto out;
	}
	head_len = (size_t)(end - raw.data) + 4;
	*end = '\0';
	next = strstr(raw.data, "\r\n");
	if (next != NULL)
		*next = '\0';
	if (sscanf(raw.data, "%15s %1023s HTTP/1.%*c", h->method, h->path) != 2)
		goto out;
	for (line = next != NULL ? next + 2 : NULL; line != NULL && *line != '\0'; line = next) {
		char *p;

		next = strstr(line, "\r\n");
		if (next != NULL) {
			*next = '\0';
			next += 2;
		}
		colon = strchr(line, ':');
		if (colon == NULL)
			continue;
		*colon = '\0';
		for (p = line; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		for (p = colon + 1; *p == ' ' || *p == '\t'; p++)
			;
		json_object_set_new(h->headers, line, json_string(p));
	}
	want = (size_t)strtoul(mesh_s(h->headers, "content-length"), NULL, 10);
	if (want > MESH_REQ_MAX)
		goto out;
	if (raw.len > head_len && buf_append(&h->body, raw.data + head_len, raw.len - head_len) != OR_OK)
		goto out;
	while (h->body.len < want) {
		n = rd(ctx, chunk, (int)sizeof(chunk));
		if (n <= 0 || buf_append(&h->body, chunk, (size_t)n) != OR_OK)
			goto out;
	}
	rc = 0;
out:
	buf_free(&raw);
	return rc;
}

void
mesh_http_free(struct mesh_http *h)
{
	json_decref(h->headers);
	h->headers = NULL;
	buf_free(&h->body);
}

/* ---- clusters --------------------------------------------------------------- */

static int
slot_of(struct mesh *m, struct kube *k)
{
	int i;

	for (i = 0; i < MESH_CLUSTERS; i++)
		if (m->cl[i].kube == k && k != NULL)
			return i;
	return -1;
}

struct kube *
mesh_take(struct mesh *m, int slot, struct mesh_cluster *copy)
{
	struct kube *k = NULL;

	pthread_mutex_lock(&m->lock);
	if (slot >= 0 && slot < MESH_CLUSTERS && m->cl[slot].kube != NULL && m->cl[slot].active) {
		k = m->cl[slot].kube;
		m->cl[slot].inflight++;
		if (copy != NULL)
			*copy = m->cl[slot];
	}
	pthread_mutex_unlock(&m->lock);
	return k;
}

void
mesh_put(struct mesh *m, int slot)
{
	pthread_mutex_lock(&m->lock);
	m->cl[slot].inflight--;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

static void
wake(struct mesh *m)
{
	ssize_t n = write(m->wake[1], "x", 1);

	(void)n;
}

/* ---- the mesh's CA ---------------------------------------------------------- */

static char *
secret_field(const json_t *secret, const char *key)
{
	const char *b64 = json_string_value(json_object_get(json_object_get(secret, "data"), key));
	unsigned char *raw = NULL;
	size_t len = 0;
	struct or_err err;

	if (b64 == NULL || pki_b64_decode(b64, strlen(b64), &raw, &len, &err) != OR_OK)
		return NULL;
	return (char *)raw;
}

int
mesh_ca(struct kube *k, char **root, char **ca_cert, char **ca_key, char **chain)
{
	struct or_err err;
	json_t *s = NULL;
	int plugged;
	char *r = NULL, *c = NULL, *key = NULL, *ch = NULL;

	plugged = kube_get_object(k, "v1", "secrets", "istio-system", "cacerts", &s, &err) == OR_OK;
	if (!plugged &&
	    kube_get_object(k, "v1", "secrets", "istio-system", "istio-ca-secret", &s, &err) != OR_OK)
		return -1;
	c = secret_field(s, "ca-cert.pem");
	key = secret_field(s, "ca-key.pem");
	r = plugged ? secret_field(s, "root-cert.pem") : secret_field(s, "ca-cert.pem");
	ch = plugged ? secret_field(s, "cert-chain.pem") : NULL;
	json_decref(s);
	if (r == NULL || c == NULL || key == NULL) {
		free(r);
		free(c);
		pki_secret_free(key);
		free(ch);
		return -1;
	}
	if (root != NULL)
		*root = r;
	else
		free(r);
	if (ca_cert != NULL)
		*ca_cert = c;
	else
		free(c);
	if (ca_key != NULL)
		*ca_key = key;
	else
		pki_secret_free(key);
	if (chain != NULL)
		*chain = ch;
	else
		free(ch);
	return 0;
}

/* Without a plugged-in `cacerts`, istiod makes its own self-signed CA and
 * keeps it in Secret istio-ca-secret: so does the sandbox, once. */
static void
ensure_self_signed_ca(struct kube *k)
{
	struct pki_cert *ca = NULL;
	struct or_err err;
	char *pem = NULL, *key = NULL, *b64c = NULL, *b64k = NULL;
	json_t *s = NULL;

	if (kube_get_object(k, "v1", "secrets", "istio-system", "cacerts", &s, &err) == OR_OK ||
	    kube_get_object(k, "v1", "secrets", "istio-system", "istio-ca-secret", &s, &err) == OR_OK) {
		json_decref(s);
		return;
	}
	if (pki_ca_new(NULL, "cluster.local", 3650, &ca, &err) != OR_OK ||
	    pki_cert_pem(ca, &pem, &key, &err) != OR_OK)
		goto out;
	b64c = pki_b64_encode(pem, strlen(pem));
	b64k = pki_b64_encode(key, strlen(key));
	s = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:{s:s, s:s}}", "apiVersion", "v1", "kind",
		      "Secret", "metadata", "name", "istio-ca-secret", "namespace", "istio-system",
		      "type", "istio.io/ca-root", "data", "ca-cert.pem", b64c, "ca-key.pem", b64k);
	if (s == NULL || kube_apply_object(k, s, NULL, &err) != OR_OK)
		log_warn("sandbox mesh: cannot store istio-ca-secret: %s",
			 s == NULL ? "out of memory" : err.message);
out:
	json_decref(s);
	free(pem);
	pki_secret_free(key);
	free(b64c);
	pki_secret_free(b64k);
	pki_cert_free(ca);
}

/* istiod publishes the mesh root as ConfigMap istio-ca-root-cert (key
 * root-cert.pem) in every namespace. */
static void
publish_root(struct kube *k)
{
	struct or_err err;
	json_t *nss = NULL, *ns, *cm = NULL, *want;
	char *root = NULL;
	size_t i;

	if (mesh_ca(k, &root, NULL, NULL, NULL) != 0 ||
	    kube_list(k, "v1", "namespaces", NULL, NULL, &nss, &err) != OR_OK)
		goto out;
	json_array_foreach(nss, i, ns) {
		const char *name = mesh_s(ns, "metadata.name"), *have;

		if (strcmp(mesh_s(ns, "status.phase"), "Terminating") == 0)
			continue;
		cm = NULL;
		kube_get_object(k, "v1", "configmaps", name, "istio-ca-root-cert", &cm, &err);
		/* (the key has a dot: no mesh_s path for it) */
		have = json_string_value(json_object_get(json_object_get(cm, "data"), "root-cert.pem"));
		if (have != NULL && strcmp(have, root) == 0) {
			json_decref(cm);
			continue;
		}
		json_decref(cm);
		want = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:s}}", "apiVersion", "v1",
				 "kind", "ConfigMap", "metadata", "name", "istio-ca-root-cert",
				 "namespace", name, "labels", "istio.io/config", "true", "data",
				 "root-cert.pem", root);
		if (want != NULL && kube_apply_object(k, want, NULL, &err) != OR_OK)
			log_warn("sandbox mesh: istio-ca-root-cert in %s: %s", name, err.message);
		json_decref(want);
	}
out:
	json_decref(nss);
	free(root);
}

/* ---- Gateway API: what istiod's gateway controller does --------------------- */

static void
gateway_deploy(struct kube *k, const json_t *gw)
{
	const char *ns = mesh_s(gw, "metadata.namespace"), *name = mesh_s(gw, "metadata.name");
	char child[300];
	struct or_err err;
	json_t *have = NULL, *ports, *l, *svc = NULL, *dep = NULL, *owner, *st, *conds;
	json_t *addrs;
	size_t i;
	int changed;

	if (strcmp(mesh_s(gw, "spec.gatewayClassName"), "istio") != 0 ||
	    json_object_get(json_object_get(gw, "metadata"), "deletionTimestamp") != NULL)
		return;
	snprintf(child, sizeof(child), "%s-istio", name);
	owner = json_pack("[{s:s, s:s, s:s, s:s, s:b}]", "apiVersion",
			  mesh_s(gw, "apiVersion"), "kind", "Gateway", "name", name, "uid",
			  mesh_s(gw, "metadata.uid"), "controller", 1);
	if (kube_get_object(k, "apps/v1", "deployments", ns, child, &have, &err) != OR_OK) {
		dep = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}, s:O}, s:{s:i, s:{s:{s:s}}, "
				"s:{s:{s:{s:s, s:s}}, s:{s:s, s:[{s:s, s:s, s:[s, s]}]}}}}",
				"apiVersion", "apps/v1", "kind", "Deployment", "metadata", "name",
				child, "namespace", ns, "labels", "gateway.networking.k8s.io/gateway-name",
				name, "istio.io/gateway-name", name, "ownerReferences", owner, "spec",
				"replicas", 1, "selector", "matchLabels",
				"gateway.networking.k8s.io/gateway-name", name, "template", "metadata",
				"labels", "gateway.networking.k8s.io/gateway-name", name,
				"sidecar.istio.io/inject", "false", "spec", "serviceAccountName", child,
				"containers", "name", "istio-proxy", "image",
				"docker.io/istio/proxyv2:sandbox", "args", "proxy", "router");
		if (dep == NULL || kube_apply_object(k, dep, NULL, &err) != OR_OK)
			log_warn("sandbox mesh: Deployment %s/%s: %s", ns, child,
				 dep == NULL ? "out of memory" : err.message);
	}
	json_decref(have);
	have = NULL;
	if (kube_get_object(k, "v1", "services", ns, child, &have, &err) != OR_OK) {
		ports = json_array();
		json_array_append_new(ports, json_pack("{s:s, s:i, s:i, s:s}", "name", "status-port",
						       "port", 15021, "targetPort", 15021,
						       "protocol", "TCP"));
		json_array_foreach(mesh_j(gw, "spec.listeners"), i, l) {
			char pname[96];

			snprintf(pname, sizeof(pname), "%s-%lld",
				 strcmp(mesh_s(l, "protocol"), "HTTPS") == 0 ? "https" : "http",
				 (long long)json_integer_value(json_object_get(l, "port")));
			json_array_append_new(ports,
					      json_pack("{s:s, s:I, s:I, s:s}", "name", pname, "port",
							json_integer_value(json_object_get(l, "port")),
							"targetPort",
							json_integer_value(json_object_get(l, "port")),
							"protocol", "TCP"));
		}
		svc = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}, s:O}, s:{s:s, s:{s:s}, s:o}}",
				"apiVersion", "v1", "kind", "Service", "metadata", "name", child,
				"namespace", ns, "labels", "gateway.networking.k8s.io/gateway-name", name,
				"istio.io/gateway-name", name, "ownerReferences", owner, "spec", "type",
				"LoadBalancer", "selector", "gateway.networking.k8s.io/gateway-name", name,
				"ports", ports);
		if (svc == NULL || kube_apply_object(k, svc, NULL, &err) != OR_OK)
			log_warn("sandbox mesh: Service %s/%s: %s", ns, child,
				 svc == NULL ? "out of memory" : err.message);
		json_decref(have);
		have = NULL;
		kube_get_object(k, "v1", "services", ns, child, &have, &err);
	}
	/* The Gateway's status: Accepted, and Programmed once its Service has
	 * an address (what `kubectl wait --for=condition=programmed` waits
	 * for). */
	addrs = json_array();
	json_array_foreach(mesh_j(have, "status.loadBalancer.ingress"), i, l)
		json_array_append_new(addrs, json_pack("{s:s, s:s}", "type", "IPAddress", "value",
						       mesh_s(l, "ip")));
	conds = json_pack("[{s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s}]", "type", "Accepted",
			  "status", "True", "reason", "Accepted", "message", "Resource accepted",
			  "type", "Programmed", "status", json_array_size(addrs) > 0 ? "True" : "False",
			  "reason", json_array_size(addrs) > 0 ? "Programmed" : "AddressNotAssigned",
			  "message",
			  json_array_size(addrs) > 0 ? "Resource programmed, assigned to service(s) "
						     : "Waiting for an address");
	changed = !json_equal(mesh_j(gw, "status.addresses"), addrs) ||
		  json_array_size(mesh_j(gw, "status.conditions")) != 2 ||
		  strcmp(mesh_s(json_array_get(mesh_j(gw, "status.conditions"), 1), "status"),
			 json_array_size(addrs) > 0 ? "True" : "False") != 0;
	if (changed) {
		json_t *copy = json_deep_copy(gw);
		char now[32];
		time_t t = time(NULL);
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_array_foreach(conds, i, l) {
			json_object_set_new(l, "lastTransitionTime", json_string(now));
			json_object_set(l, "observedGeneration",
					json_object_get(json_object_get(gw, "metadata"), "generation"));
		}
		st = json_pack("{s:O, s:O}", "addresses", addrs, "conditions", conds);
		json_object_set_new(copy, "status", st);
		if (kube_apply_object(k, copy, NULL, &err) != OR_OK)
			log_warn("sandbox mesh: status of Gateway %s/%s: %s", ns, name, err.message);
		json_decref(copy);
	}
	json_decref(addrs);
	json_decref(conds);
	json_decref(have);
	json_decref(dep);
	json_decref(svc);
	json_decref(owner);
}

static void
gateways_reconcile(struct kube *k)
{
	struct or_err err;
	json_t *gws = NULL, *gw;
	size_t i;

	if (kube_list(k, "gateway.networking.k8s.io/v1", "gateways", NULL, NULL, &gws, &err) !=
	    OR_OK)
		return;
	json_array_foreach(gws, i, gw)
		gateway_deploy(k, gw);
	json_decref(gws);
}

/* ---- the hook ------------------------------------------------------------------ */

static int
istiod_deployed(struct kube *k)
{
	struct or_err err;
	json_t *d = NULL;
	int yes = kube_get_object(k, "apps/v1", "deployments", "istio-system", "istiod", &d, &err) ==
		  OR_OK;

	json_decref(d);
	return yes;
}

static void
on_change(void *ctx, struct kube *k, enum kube_change change, const char *resource,
	  const json_t *obj)
{
	struct mesh *m = ctx;
	const char *ns = mesh_s(obj, "metadata.namespace"), *name = mesh_s(obj, "metadata.name");
	int slot, istio, was;

	pthread_mutex_lock(&m->lock);
	slot = slot_of(m, k);
	if (slot < 0 || !m->cl[slot].active) {
		pthread_mutex_unlock(&m->lock);
		return;
	}
	if (strcmp(resource, "services") == 0) {
		m->cl[slot].dirty = 1;
		wake(m);
	}
	was = m->cl[slot].istio;
	pthread_mutex_unlock(&m->lock);

	if (strcmp(resource, "deployments.apps") == 0 && strcmp(ns, "istio-system") == 0 &&
	    strcmp(name, "istiod") == 0) {
		istio = change != KUBE_DELETED;
		kube_set_istio_installed(k, istio);
		pthread_mutex_lock(&m->lock);
		m->cl[slot].istio = istio;
		pthread_mutex_unlock(&m->lock);
		if (istio && !was) {
			ensure_self_signed_ca(k);
			publish_root(k);
			gateways_reconcile(k);
		}
		return;
	}
	if (!was)
		return;
	if ((strcmp(resource, "namespaces") == 0 && change == KUBE_ADDED) ||
	    (strcmp(resource, "secrets") == 0 && strcmp(ns, "istio-system") == 0 &&
	     strcmp(name, "cacerts") == 0))
		publish_root(k);
	if (strcmp(resource, "gateways.gateway.networking.k8s.io") == 0 && change != KUBE_DELETED)
		gateway_deploy(k, obj);
	if (strcmp(resource, "services") == 0 && change != KUBE_DELETED &&
	    mesh_j(obj, "metadata.labels") != NULL &&
	    json_object_get(mesh_j(obj, "metadata.labels"), "gateway.networking.k8s.io/gateway-name") !=
		    NULL) {
		json_t *gw = NULL;
		struct or_err err;

		if (kube_get_object(k, "gateway.networking.k8s.io/v1", "gateways", ns,
				    json_string_value(json_object_get(
					    mesh_j(obj, "metadata.labels"),
					    "gateway.networking.k8s.io/gateway-name")),
				    &gw, &err) == OR_OK)
			gateway_deploy(k, gw);
		json_decref(gw);
	}
}

/* ---- listeners ------------------------------------------------------------------- */

static void *conn_main(void *arg);

static int
open_listener(struct mesh *m, const char *ip, int port)
{
	struct sockaddr_in sa;
	char key[40];
	int fd, one = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1 || strncmp(ip, "127.", 4) != 0)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 64) != 0) {
		snprintf(key, sizeof(key), "%s:%d", ip, port);
		if (json_object_get(m->bind_failed, key) == NULL) {
			log_warn("sandbox mesh: cannot listen on %s: %s%s", key, strerror(errno),
				 geteuid() != 0 ? " (ports below 1024 need root)" : "");
			json_object_set_new(m->bind_failed, key, json_true());
		}
		close(fd);
		return -1;
	}
	return fd;
}

/* Bring the listeners of cluster slot in line with its Services: port 80
 * of every LoadBalancer IP, 15012 where the Service exposes it.  Runs on
 * the listener thread (the only one that opens or closes them). */
static void
sync_cluster(struct mesh *m, int slot)
{
	struct kube *k = mesh_take(m, slot, NULL);
	struct or_err err;
	json_t *svcs = NULL, *s, *ing, *p, *want = json_object();
	const char *key;
	json_t *v;
	char wk[40];
	size_t i, j;
	int n;

	if (k == NULL) {
		json_decref(want);
		return;
	}
	if (kube_list(k, "v1", "services", NULL, NULL, &svcs, &err) == OR_OK)
		json_array_foreach(svcs, i, s) {
			if (strcmp(mesh_s(s, "spec.type"), "LoadBalancer") != 0)
				continue;
			json_array_foreach(mesh_j(s, "status.loadBalancer.ingress"), j, ing) {
				size_t q;

				snprintf(wk, sizeof(wk), "%s:80", mesh_s(ing, "ip"));
				json_object_set_new(want, wk, json_true());
				json_array_foreach(mesh_j(s, "spec.ports"), q, p)
					if (json_integer_value(json_object_get(p, "port")) == 15012) {
						snprintf(wk, sizeof(wk), "%s:15012", mesh_s(ing, "ip"));
						json_object_set_new(want, wk, json_true());
					}
			}
		}
	json_decref(svcs);
	mesh_put(m, slot);

	pthread_mutex_lock(&m->lock);
	/* Close what is no longer wanted. */
	for (n = 0; n < m->nls;) {
		snprintf(wk, sizeof(wk), "%s:%d", m->ls[n].ip, m->ls[n].port);
		if (m->ls[n].slot == slot && json_object_get(want, wk) == NULL) {
			close(m->ls[n].fd);
			m->ls[n] = m->ls[--m->nls];
			continue;
		}
		if (m->ls[n].slot == slot)
			json_object_del(want, wk);
		n++;
	}
	/* Open what is new. */
	json_object_foreach(want, key, v) {
		char ip[16];
		int port = 0, fd;

		if (sscanf(key, "%15[0-9.]:%d", ip, &port) != 2 || m->nls == MESH_LISTENERS)
			continue;
		fd = open_listener(m, ip, port);
		if (fd < 0)
			continue;
		m->ls[m->nls].fd = fd;
		m->ls[m->nls].slot = slot;
		m->ls[m->nls].port = port;
		snprintf(m->ls[m->nls].ip, sizeof(m->ls[m->nls].ip), "%s", ip);
		m->nls++;
	}
	pthread_mutex_unlock(&m->lock);
	json_decref(want);
}

static void
accept_one(struct mesh *m, const struct mesh_listener *l)
{
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	struct mesh_conn *c;
	struct timeval tv = {MESH_IO_TIMEOUT_S, 0};
	pthread_t t;
	pthread_attr_t attr;
	int fd = accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	c->m = m;
	c->fd = fd;
	c->slot = l->slot;
	c->port = l->port;
	snprintf(c->ip, sizeof(c->ip), "%s", l->ip);
	inet_ntop(AF_INET, &peer.sin_addr, c->peer, sizeof(c->peer));
	pthread_mutex_lock(&m->lock);
	m->conns++;
	pthread_mutex_unlock(&m->lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, conn_main, c) != 0) {
		pthread_mutex_lock(&m->lock);
		m->conns--;
		pthread_mutex_unlock(&m->lock);
		close(fd);
		free(c);
	}
	pthread_attr_destroy(&attr);
}

static void *
conn_main(void *arg)
{
	struct mesh_conn *c = arg;
	struct mesh *m = c->m;

	if (c->port == 15012)
		istiod_serve(c);
	else
		shop_serve(c);
	close(c->fd);
	free(c);
	pthread_mutex_lock(&m->lock);
	m->conns--;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

static void *
listener_main(void *arg)
{
	struct mesh *m = arg;
	struct pollfd fds[MESH_LISTENERS + 1];
	struct mesh_listener copy[MESH_LISTENERS];
	char drain[64];
	int i, n, slot;

	for (;;) {
		pthread_mutex_lock(&m->lock);
		if (m->stopping) {
			pthread_mutex_unlock(&m->lock);
			break;
		}
		/* Clusters going down lose their listeners here. */
		for (i = 0; i < m->nls;) {
			slot = m->ls[i].slot;
			if (m->cl[slot].kube == NULL || !m->cl[slot].active) {
				close(m->ls[i].fd);
				m->ls[i] = m->ls[--m->nls];
				continue;
			}
			i++;
		}
		for (slot = 0; slot < MESH_CLUSTERS; slot++)
			if (m->cl[slot].kube != NULL && m->cl[slot].active && m->cl[slot].dirty) {
				m->cl[slot].dirty = 0;
				pthread_mutex_unlock(&m->lock);
				sync_cluster(m, slot);
				pthread_mutex_lock(&m->lock);
			}
		n = m->nls;
		memcpy(copy, m->ls, sizeof(copy[0]) * (size_t)n);
		m->gen++;
		pthread_cond_broadcast(&m->cond);
		pthread_mutex_unlock(&m->lock);

		fds[0].fd = m->wake[0];
		fds[0].events = POLLIN;
		for (i = 0; i < n; i++) {
			fds[i + 1].fd = copy[i].fd;
			fds[i + 1].events = POLLIN;
		}
		if (poll(fds, (nfds_t)n + 1, 1000) < 0 && errno != EINTR)
			break;
		if (fds[0].revents & POLLIN)
			while (read(m->wake[0], drain, sizeof(drain)) > 0)
				;
		for (i = 0; i < n; i++)
			if (fds[i + 1].revents & POLLIN)
				accept_one(m, &copy[i]);
	}
	return NULL;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

or_rc
mesh_new(const char *dir, struct mesh **out, struct or_err *err)
{
	struct mesh *m;

	*out = NULL;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return or_fail(err, OR_E_IO, NULL, NULL, "mkdir %s: %s", dir, strerror(errno));
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	snprintf(m->path, sizeof(m->path), "%s/sidecars.json", dir);
	m->sidecars = json_load_file(m->path, 0, NULL);
	if (!json_is_object(m->sidecars)) {
		json_decref(m->sidecars);
		m->sidecars = json_object();
	}
	m->instances = json_array();
	m->firewalls = json_array();
	m->bind_failed = json_object();
	if (pipe2(m->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		m->wake[0] = m->wake[1] = -1;
		mesh_free(m);
		return or_fail(err, OR_E_IO, NULL, NULL, "pipe: %s", strerror(errno));
	}
	if (pthread_create(&m->thread, NULL, listener_main, m) != 0) {
		mesh_free(m);
		return or_fail(err, OR_E_IO, NULL, NULL, "cannot start the listener thread");
	}
	m->thread_started = 1;
	*out = m;
	return OR_OK;
}

void
mesh_free(struct mesh *m)
{
	int i;

	if (m == NULL)
		return;
	pthread_mutex_lock(&m->lock);
	m->stopping = 1;
	pthread_mutex_unlock(&m->lock);
	if (m->thread_started) {
		wake(m);
		pthread_join(m->thread, NULL);
	}
	pthread_mutex_lock(&m->lock);
	while (m->conns > 0)
		pthread_cond_wait(&m->cond, &m->lock);
	pthread_mutex_unlock(&m->lock);
	for (i = 0; i < m->nls; i++)
		close(m->ls[i].fd);
	if (m->wake[0] >= 0) {
		close(m->wake[0]);
		close(m->wake[1]);
	}
	json_decref(m->sidecars);
	json_decref(m->instances);
	json_decref(m->firewalls);
	json_decref(m->bind_failed);
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void
mesh_cluster_up(struct mesh *m, struct kube *k, const char *id, const char *pod_cidr,
		const char *svc_cidr)
{
	int i, slot = -1, istio;

	pthread_mutex_lock(&m->lock);
	for (i = 0; i < MESH_CLUSTERS && slot < 0; i++)
		if (m->cl[i].kube == NULL && m->cl[i].inflight == 0)
			slot = i;
	if (slot < 0) {
		pthread_mutex_unlock(&m->lock);
		log_warn("sandbox mesh: at most %d clusters", MESH_CLUSTERS);
		return;
	}
	memset(&m->cl[slot], 0, sizeof(m->cl[slot]));
	m->cl[slot].kube = k;
	m->cl[slot].active = 1;
	m->cl[slot].dirty = 1;
	snprintf(m->cl[slot].id, sizeof(m->cl[slot].id), "%s", id);
	snprintf(m->cl[slot].pod_cidr, sizeof(m->cl[slot].pod_cidr), "%s",
		 pod_cidr != NULL ? pod_cidr : "");
	snprintf(m->cl[slot].svc_cidr, sizeof(m->cl[slot].svc_cidr), "%s",
		 svc_cidr != NULL ? svc_cidr : "");
	pthread_mutex_unlock(&m->lock);
	istio = istiod_deployed(k);
	pthread_mutex_lock(&m->lock);
	m->cl[slot].istio = istio;
	pthread_mutex_unlock(&m->lock);
	if (istio) {
		kube_set_istio_installed(k, 1);
		gateways_reconcile(k);
	}
	kube_set_hook(k, on_change, m);
	wake(m);
}

void
mesh_cluster_down(struct mesh *m, struct kube *k)
{
	long long gen;
	int slot;

	kube_set_hook(k, NULL, NULL);
	pthread_mutex_lock(&m->lock);
	slot = slot_of(m, k);
	if (slot < 0) {
		pthread_mutex_unlock(&m->lock);
		return;
	}
	m->cl[slot].active = 0;
	gen = m->gen;
	wake(m);
	/* Two loops of the listener thread: the one under way may have
	 * copied the old listeners; the next one closes them. */
	while ((m->gen < gen + 2 && !m->stopping) || m->cl[slot].inflight > 0)
		pthread_cond_wait(&m->cond, &m->lock);
	m->cl[slot].kube = NULL;
	pthread_mutex_unlock(&m->lock);
}

/* ---- Compute Engine facts and sidecar records ---------------------------------------- */

void
mesh_refresh(struct mesh *m, struct cloud *c)
{
	json_t *inst, *fw;

	cloud_lock(c);
	inst = cloud_list(c, "instance", "projects/");
	fw = cloud_list(c, "firewall", "projects/");
	cloud_unlock(c);
	pthread_mutex_lock(&m->lock);
	json_decref(m->instances);
	json_decref(m->firewalls);
	m->instances = inst != NULL ? inst : json_array();
	m->firewalls = fw != NULL ? fw : json_array();
	pthread_mutex_unlock(&m->lock);
}

json_t *
mesh_instance_by_ip(struct mesh *m, const char *ip)
{
	json_t *out = NULL, *i;
	size_t n;

	pthread_mutex_lock(&m->lock);
	json_array_foreach(m->instances, n, i)
		if (strcmp(mesh_s(i, "_ip"), ip) == 0 ||
		    strcmp(mesh_s(json_array_get(json_object_get(i, "networkInterfaces"), 0),
				  "networkIP"),
			   ip) == 0) {
			out = json_deep_copy(i);
			break;
		}
	pthread_mutex_unlock(&m->lock);
	return out;
}

json_t *
mesh_firewalls_of(struct mesh *m, const char *project)
{
	json_t *out = json_array(), *f;
	char prefix[200];
	size_t n;

	snprintf(prefix, sizeof(prefix), "/projects/%s/global/firewalls/", project);
	pthread_mutex_lock(&m->lock);
	json_array_foreach(m->firewalls, n, f)
		if (strstr(mesh_s(f, "selfLink"), prefix) != NULL)
			json_array_append_new(out, json_deep_copy(f));
	pthread_mutex_unlock(&m->lock);
	return out;
}

void
mesh_sidecar_record(struct mesh *m, const char *ip, json_t *rec)
{
	char tmp[4300];

	pthread_mutex_lock(&m->lock);
	json_object_set_new(m->sidecars, ip, rec);
	snprintf(tmp, sizeof(tmp), "%s.tmp", m->path);
	if (json_dump_file(m->sidecars, tmp, JSON_INDENT(2)) != 0 || rename(tmp, m->path) != 0)
		log_warn("sandbox mesh: cannot write %s", m->path);
	pthread_mutex_unlock(&m->lock);
}

json_t *
mesh_sidecar_get(struct mesh *m, const char *ip)
{
	json_t *r;

	pthread_mutex_lock(&m->lock);
	r = json_deep_copy(json_object_get(m->sidecars, ip));
	pthread_mutex_unlock(&m->lock);
	return r;
}

int
mesh_deployment_available(struct kube *k, const char *ns, const char *name)
{
	struct or_err err;
	json_t *d = NULL, *c;
	size_t i;
	int ok = 0;

	if (kube_get_object(k, "apps/v1", "deployments", ns, name, &d, &err) != OR_OK)
		return -1;
	json_array_foreach(mesh_j(d, "status.conditions"), i, c)
		if (strcmp(mesh_s(c, "type"), "Available") == 0 &&
		    strcmp(mesh_s(c, "status"), "True") == 0)
			ok = 1;
	json_decref(d);
	return ok;
}

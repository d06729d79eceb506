/*
 * shop.c - Online Boutique's home page at port 80 of a LoadBalancer IP.
 *
 * The page is served only when the mesh is wired the way the tutorial
 * wires it; otherwise the answer is what Envoy gives when its upstream is
 * unreachable (503, "upstream connect error or disconnect/reset before
 * headers. reset reason: connection failure") with x-sandbox-check naming
 * the first check that failed and x-sandbox-reason saying why.  The
 * checks, in order (docs/sandbox.md):
 *   route             the Service routes to the frontend: an Istio Gateway
 *                     + VirtualService to host frontend, a Gateway API
 *                     Gateway's <name>-istio Service + HTTPRoute to
 *                     frontend, or a Service selecting app=frontend
 *                     (404, as Envoy answers without a route)
 *   frontend          Deployment frontend is Available in the app namespace
 *   catalog-endpoint  Service productcatalogservice exists there and its
 *                     endpoint is a VM: ServiceEntry
 *                     mesh-expansion-productcatalogservice, or a
 *                     WorkloadEntry matching the Service's selector; and no
 *                     in-cluster productcatalogservice Deployment is left
 *   firewall          a rule of the VM's project and network lets the
 *                     cluster's pod range reach tcp:3550 on the VM
 *   sidecar           istiod accepted the VM's sidecar in this cluster, and
 *                     its cluster.env is right
 *   catalog           the catalog server on the VM answers GET /products
 */
#include "mesh_int.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "catalog.h"

#define ENVOY_503 "upstream connect error or disconnect/reset before headers. reset reason: connection failure"

struct verdict {
	const char *check;	/* NULL: all passed */
	char reason[1024];
};

static int
fail(struct verdict *v, const char *check, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
fail(struct verdict *v, const char *check, const char *fmt, ...)
{
	va_list ap;

	v->check = check;
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
	return -1;
}

static int
fd_rd(void *ctx, char *p, int n)
{
	return (int)recv(*(int *)ctx, p, (size_t)n, 0);
}

static void
send_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void
answer(int fd, int status, const char *ctype, const char *body, const struct verdict *v)
{
	struct buf b;
	char reason[1100];

	buf_init(&b, 4u << 20);
	buf_printf(&b, "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
		       "server: istio-envoy\r\nconnection: close\r\n",
		   status, status == 200 ? "OK" : status == 404 ? "Not Found"
							     : "Service Unavailable",
		   ctype, strlen(body));
	if (v != NULL && v->check != NULL) {
		ascii_clean(reason, sizeof(reason), v->reason, NULL);
		buf_printf(&b, "x-sandbox-check: %s\r\nx-sandbox-reason: %s\r\n", v->check, reason);
	}
	buf_append_str(&b, "\r\n");
	buf_append_str(&b, body);
	send_all(fd, b.data, b.len);
	buf_free(&b);
}

/* ---- what the Service at the IP routes to ---------------------------------- */

static json_t *
list(struct kube *k, const char *gv, const char *res, const char *ns)
{
	struct or_err err;
	json_t *out = NULL;

	if (kube_list(k, gv, res, ns, NULL, &out, &err) != OR_OK)
		return json_array();
	return out;
}

static json_t *
service_at(struct kube *k, const char *ip)
{
	json_t *svcs = list(k, "v1", "services", NULL), *s, *ing, *out = NULL;
	size_t i, j;

	json_array_foreach(svcs, i, s)
		json_array_foreach(mesh_j(s, "status.loadBalancer.ingress"), j, ing)
			if (out == NULL && strcmp(mesh_s(ing, "ip"), ip) == 0)
				out = json_incref(s);
	json_decref(svcs);
	return out;
}

static int
is_frontend_host(const char *host, const char *ns)
{
	char fq[300];

	snprintf(fq, sizeof(fq), "frontend.%s.svc.cluster.local", ns);
	return strcmp(host, "frontend") == 0 || strcmp(host, fq) == 0;
}

/* The namespace of the frontend the Service at the IP routes to, into
 * app; 0 when there is a route. */
static int
route(struct kube *k, const json_t *svc, char *app, size_t size, struct verdict *v)
{
	const char *ns = mesh_s(svc, "metadata.namespace"), *gwn;
	json_t *sel = mesh_j(svc, "spec.selector"), *gws, *vss, *gw, *vs, *g, *r, *d, *srv, *hr, *p;
	size_t i, j, q, w;
	int found = 0;

	/* A Service in front of the frontend itself (frontend-external). */
	if (strcmp(mesh_s(sel, "app"), "frontend") == 0) {
		snprintf(app, size, "%s", ns);
		return 0;
	}
	/* Gateway API: <gateway>-istio and an HTTPRoute to frontend. */
	gwn = json_string_value(
		json_object_get(mesh_j(svc, "metadata.labels"), "gateway.networking.k8s.io/gateway-name"));
	if (gwn != NULL) {
		json_t *routes = list(k, "gateway.networking.k8s.io/v1", "httproutes", ns);

		json_array_foreach(routes, i, hr) {
			int parent = 0;

			json_array_foreach(mesh_j(hr, "spec.parentRefs"), j, p)
				if (strcmp(mesh_s(p, "name"), gwn) == 0)
					parent = 1;
			if (!parent)
				continue;
			json_array_foreach(mesh_j(hr, "spec.rules"), j, r)
				json_array_foreach(json_object_get(r, "backendRefs"), q, d)
					if (strcmp(mesh_s(d, "name"), "frontend") == 0)
						found = 1;
		}
		json_decref(routes);
		if (found) {
			snprintf(app, size, "%s", ns);
			return 0;
		}
		return fail(v, "route", "no HTTPRoute with parent Gateway %s routes to Service "
					"frontend in namespace %s", gwn, ns);
	}
	/* Istio: a Gateway selecting the Service's pods on port 80, and a
	 * VirtualService bound to it routing to frontend. */
	gws = list(k, "networking.istio.io/v1alpha3", "gateways", NULL);
	vss = list(k, "networking.istio.io/v1alpha3", "virtualservices", NULL);
	json_array_foreach(gws, i, gw) {
		int port_ok = 0;
		char full[300];

		if (!mesh_labels_match(mesh_j(gw, "spec.selector"), sel))
			continue;
		json_array_foreach(mesh_j(gw, "spec.servers"), j, srv)
			if (json_integer_value(mesh_j(srv, "port.number")) == 80)
				port_ok = 1;
		if (!port_ok)
			continue;
		snprintf(full, sizeof(full), "%s/%s", mesh_s(gw, "metadata.namespace"),
			 mesh_s(gw, "metadata.name"));
		json_array_foreach(vss, j, vs) {
			int bound = 0;

			json_array_foreach(mesh_j(vs, "spec.gateways"), q, g) {
				const char *gs = json_string_value(g) ? json_string_value(g) : "";

				if (strcmp(gs, full) == 0 ||
				    (strcmp(gs, mesh_s(gw, "metadata.name")) == 0 &&
				     strcmp(mesh_s(vs, "metadata.namespace"),
					    mesh_s(gw, "metadata.namespace")) == 0))
					bound = 1;
			}
			if (!bound)
				continue;
			json_array_foreach(mesh_j(vs, "spec.http"), q, r)
				json_array_foreach(json_object_get(r, "route"), w, d)
					if (!found && is_frontend_host(mesh_s(d, "destination.host"),
								       mesh_s(vs, "metadata.namespace"))) {
						found = 1;
						snprintf(app, size, "%s", mesh_s(vs, "metadata.namespace"));
					}
		}
	}
	json_decref(gws);
	json_decref(vss);
	if (found)
		return 0;
	return fail(v, "route", "no Gateway and VirtualService route port 80 of Service %s/%s to "
				"the frontend", ns, mesh_s(svc, "metadata.name"));
}

/* ---- the checks -------------------------------------------------------------- */

/* Check 2: the VM behind productcatalogservice, into vm_ip; its port. */
static int
catalog_endpoint(struct mesh *m, struct kube *k, const char *app, char *vm_ip, size_t size,
		 int *port, struct verdict *v)
{
	struct or_err err;
	json_t *svc = NULL, *se = NULL, *wes, *we, *p, *inst;
	size_t i;
	int rc = -1;

	vm_ip[0] = '\0';
	if (kube_get_object(k, "v1", "services", app, "productcatalogservice", &svc, &err) != OR_OK)
		return fail(v, "catalog-endpoint", "no Service productcatalogservice in namespace %s",
			    app);
	*port = 3550;
	json_array_foreach(mesh_j(svc, "spec.ports"), i, p) {
		json_int_t tp = json_integer_value(json_object_get(p, "targetPort"));

		*port = (int)(tp > 0 ? tp : json_integer_value(json_object_get(p, "port")));
		break;
	}
	if (kube_get_object(k, "networking.istio.io/v1alpha3", "serviceentries", app,
			    "mesh-expansion-productcatalogservice", &se, &err) == OR_OK)
		snprintf(vm_ip, size, "%s",
			 mesh_s(json_array_get(mesh_j(se, "spec.endpoints"), 0), "address"));
	if (vm_ip[0] == '\0') {
		wes = list(k, "networking.istio.io/v1alpha3", "workloadentries", app);
		json_array_foreach(wes, i, we)
			if (vm_ip[0] == '\0' &&
			    mesh_labels_match(mesh_j(svc, "spec.selector"), mesh_j(we, "spec.labels")))
				snprintf(vm_ip, size, "%s", mesh_s(we, "spec.address"));
		json_decref(wes);
	}
	if (vm_ip[0] == '\0') {
		fail(v, "catalog-endpoint",
		     "Service productcatalogservice in %s has no VM endpoint: no ServiceEntry "
		     "mesh-expansion-productcatalogservice with an address, and no WorkloadEntry "
		     "whose labels match the Service's selector", app);
		goto out;
	}
	inst = mesh_instance_by_ip(m, vm_ip);
	json_decref(inst);
	if (inst == NULL) {
		fail(v, "catalog-endpoint", "the endpoint %s of productcatalogservice is not a "
					    "Compute Engine VM's address", vm_ip);
		goto out;
	}
	if (mesh_deployment_available(k, app, "productcatalogservice") >= 0) {
		fail(v, "catalog-endpoint", "Deployment productcatalogservice still runs in %s: "
					    "the in-cluster copy must be deleted", app);
		goto out;
	}
	rc = 0;
out:
	json_decref(svc);
	json_decref(se);
	return rc;
}

/* Does "ports" of an allowed entry cover port (none: all ports)? */
static int
ports_cover(const json_t *ports, int port)
{
	json_t *p;
	size_t i;
	int a, b;

	if (json_array_size(ports) == 0)
		return 1;
	json_array_foreach(ports, i, p) {
		const char *s = json_string_value(p) ? json_string_value(p) : "";

		if (sscanf(s, "%d-%d", &a, &b) == 2 && a <= port && port <= b)
			return 1;
		if (sscanf(s, "%d", &a) == 1 && strchr(s, '-') == NULL && a == port)
			return 1;
	}
	return 0;
}

static const char *
last_segment(const char *url)
{
	const char *s = strrchr(url, '/');

	return s != NULL ? s + 1 : url;
}

/* Check 3: a firewall rule lets the pod range reach port on the VM. */
static int
firewall(struct mesh *m, const struct mesh_cluster *cl, const char *vm_ip, int port,
	 struct verdict *v)
{
	json_t *inst = mesh_instance_by_ip(m, vm_ip), *fws, *f, *a, *r, *t, *vt;
	const char *self;
	char project[128] = "", net[128];
	size_t i, j, q;
	int ok = 0;

	self = mesh_s(inst, "selfLink");
	if (strstr(self, "/projects/") != NULL)
		sscanf(strstr(self, "/projects/"), "/projects/%127[^/]", project);
	/* Copied: inst is released before the message is made. */
	snprintf(net, sizeof(net), "%s",
		 last_segment(mesh_s(json_array_get(json_object_get(inst, "networkInterfaces"), 0),
				     "network")));
	fws = mesh_firewalls_of(m, project);
	json_array_foreach(fws, i, f) {
		int src = 0, allow = 0, target;

		if (strcmp(mesh_s(f, "direction"), "EGRESS") == 0 ||
		    json_is_true(json_object_get(f, "disabled")) ||
		    strcmp(last_segment(mesh_s(f, "network")), net[0] ? net : "default") != 0)
			continue;
		json_array_foreach(json_object_get(f, "sourceRanges"), j, r)
			if (json_string_value(r) != NULL &&
			    mesh_cidr_contains(json_string_value(r), cl->pod_cidr))
				src = 1;
		json_array_foreach(json_object_get(f, "allowed"), j, a) {
			const char *proto = mesh_s(a, "IPProtocol");

			if (strcmp(proto, "all") == 0 ||
			    (strcmp(proto, "tcp") == 0 && ports_cover(json_object_get(a, "ports"), port)))
				allow = 1;
		}
		target = json_array_size(json_object_get(f, "targetTags")) == 0;
		json_array_foreach(json_object_get(f, "targetTags"), j, t)
			json_array_foreach(mesh_j(inst, "tags.items"), q, vt)
				if (json_equal(t, vt))
					target = 1;
		if (src && allow && target)
			ok = 1;
	}
	json_decref(fws);
	json_decref(inst);
	if (ok)
		return 0;
	return fail(v, "firewall",
		    "no firewall rule of project %s, network %s allows INGRESS from the cluster's "
		    "pod range %s to tcp:%d on the VM %s (with matching target tags)",
		    project, net[0] ? net : "default", cl->pod_cidr, port, vm_ip);
}

static int
ports_include(const char *list_text, int port)
{
	char copy[512], *tok, *save = NULL;

	snprintf(copy, sizeof(copy), "%s", list_text);
	for (tok = strtok_r(copy, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save))
		if (strcmp(tok, "*") == 0 || atoi(tok) == port)
			return 1;
	return 0;
}

/* Check 4: istiod accepted the VM's sidecar in this cluster. */
static int
sidecar(struct mesh *m, const struct mesh_cluster *cl, const char *vm_ip, int port,
	struct verdict *v)
{
	json_t *rec = mesh_sidecar_get(m, vm_ip), *env;
	const char *cidr;
	int rc = -1;

	if (rec == NULL)
		return fail(v, "sidecar", "the sidecar of VM %s never reached istiod (is "
					  "`systemctl start istio` done, and /etc/hosts right?)", vm_ip);
	env = json_object_get(rec, "env");
	cidr = mesh_s(env, "ISTIO_SERVICE_CIDR");
	if (strcmp(mesh_s(rec, "cluster"), cl->id) != 0)
		fail(v, "sidecar", "the sidecar of VM %s talks to the istiod of another cluster (%s)",
		     vm_ip, mesh_s(rec, "cluster"));
	else if (strcmp(mesh_s(rec, "state"), "connected") != 0)
		fail(v, "sidecar", "istiod refused the sidecar of VM %s: %s", vm_ip,
		     mesh_s(rec, "reason"));
	else if (!ports_include(mesh_s(env, "ISTIO_INBOUND_PORTS"), port))
		fail(v, "sidecar", "the VM's cluster.env has ISTIO_INBOUND_PORTS=%s, without %d",
		     mesh_s(env, "ISTIO_INBOUND_PORTS"), port);
	else if (strcmp(mesh_s(rec, "credential"), "certificate") == 0 && strcmp(cidr, cl->svc_cidr) != 0)
		fail(v, "sidecar", "the VM's cluster.env has ISTIO_SERVICE_CIDR=%s, not the cluster's "
				   "services range %s", cidr[0] ? cidr : "(none)", cl->svc_cidr);
	else if (cidr[0] != '\0' && strcmp(cidr, "*") != 0 && strcmp(cidr, cl->svc_cidr) != 0)
		fail(v, "sidecar", "the VM's cluster.env has ISTIO_SERVICE_CIDR=%s, not the cluster's "
				   "services range %s", cidr, cl->svc_cidr);
	else
		rc = 0;
	json_decref(rec);
	return rc;
}

static size_t
collect(char *p, size_t size, size_t n, void *ctx)
{
	return buf_append(ctx, p, size * n) == OR_OK ? size * n : 0;
}

/* Check 5: the catalog server on the VM; *products on success. */
static int
catalog(const char *vm_ip, int port, json_t **products, struct verdict *v)
{
	CURL *c = curl_easy_init();
	struct buf body;
	struct or_err err;
	char url[128];
	long code = 0;
	CURLcode cc;
	json_t *doc = NULL;

	*products = NULL;
	if (c == NULL)
		return fail(v, "catalog", "out of memory");
	buf_init(&body, CATALOG_MAX);
	snprintf(url, sizeof(url), "http://%s:%d/products", vm_ip, port);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	if (cc != CURLE_OK || code != 200) {
		fail(v, "catalog", "the catalog server on the VM (%s) does not answer: %s", url,
		     cc != CURLE_OK ? curl_easy_strerror(cc) : "not 200");
		goto out;
	}
	doc = json_loadb(body.data != NULL ? body.data : "", body.len, 0, NULL);
	if (doc == NULL || catalog_check(doc, &err) != OR_OK) {
		fail(v, "catalog", "the catalog server on the VM answers something that is not a "
				   "products.json document");
		goto out;
	}
	*products = json_incref(json_object_get(doc, "products"));
out:
	json_decref(doc);
	buf_free(&body);
	return *products != NULL ? 0 : -1;
}

/* ---- the page ------------------------------------------------------------------- */

static void
html_escape(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '<': buf_append_str(b, "&lt;"); break;
		case '>': buf_append_str(b, "&gt;"); break;
		case '&': buf_append_str(b, "&amp;"); break;
		case '"': buf_append_str(b, "&quot;"); break;
		default: buf_append(b, s, 1);
		}
	}
}

static char *
home_page(const json_t *products)
{
	struct buf b;
	json_t *p;
	size_t i;

	buf_init(&b, 4u << 20);
	buf_append_str(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"UTF-8\">"
			   "<title>Online Boutique</title></head>\n<body>\n"
			   "<header><h1>Online Boutique</h1>"
			   "<p>Served by the Outrigger sandbox: products from the catalog "
			   "service on the VM.</p></header>\n<main class=\"hot-products\">\n");
	json_array_foreach(products, i, p) {
		json_int_t units = json_integer_value(mesh_j(p, "priceUsd.units"));
		json_int_t nanos = json_integer_value(mesh_j(p, "priceUsd.nanos"));
		const char *cur = mesh_s(p, "priceUsd.currencyCode");

		buf_append_str(&b, "<div class=\"hot-product-card\" data-id=\"");
		html_escape(&b, mesh_s(p, "id"));
		buf_append_str(&b, "\"><div class=\"hot-product-card-name\">");
		html_escape(&b, mesh_s(p, "name"));
		buf_printf(&b, "</div><div class=\"hot-product-card-price\">%s%lld.%02lld</div></div>\n",
			   strcmp(cur, "USD") == 0 ? "$" : cur, (long long)units,
			   (long long)(nanos / 10000000));
	}
	buf_append_str(&b, "</main>\n</body>\n</html>\n");
	return buf_detach(&b);
}

void
shop_serve(struct mesh_conn *c)
{
	struct mesh *m = c->m;
	struct mesh_cluster cl;
	struct kube *k = mesh_take(m, c->slot, &cl);
	struct mesh_http h;
	struct verdict v;
	json_t *svc = NULL, *products = NULL;
	char app[256] = "", vm_ip[64] = "", *page;
	int port = 3550, healthz;

	memset(&v, 0, sizeof(v));
	memset(&h, 0, sizeof(h));
	if (k == NULL)
		return;
	if (mesh_http_read(fd_rd, &c->fd, &h) != 0)
		goto out;
	healthz = strcmp(h.path, "/_healthz") == 0;
	svc = service_at(k, c->ip);
	if (svc == NULL || route(k, svc, app, sizeof(app), &v) != 0) {
		if (v.check == NULL)
			fail(&v, "route", "no Service has the address %s", c->ip);
		answer(c->fd, 404, "text/plain", "", &v);
		goto out;
	}
	if (mesh_deployment_available(k, app, "frontend") != 1) {
		fail(&v, "frontend", "Deployment frontend in namespace %s is not available", app);
		answer(c->fd, 503, "text/plain", ENVOY_503, &v);
		goto out;
	}
	if (healthz) {
		answer(c->fd, 200, "text/plain", "ok", NULL);
		goto out;
	}
	if (catalog_endpoint(m, k, app, vm_ip, sizeof(vm_ip), &port, &v) != 0 ||
	    firewall(m, &cl, vm_ip, port, &v) != 0 || sidecar(m, &cl, vm_ip, port, &v) != 0 ||
	    catalog(vm_ip, port, &products, &v) != 0) {
		/* The frontend renders its error page when the catalog fails,
		 * but the reset reason is the upstream's: what a user sees at
		 * the ingress is Envoy's. */
		answer(c->fd, 503, "text/plain", ENVOY_503, &v);
		goto out;
	}
	page = home_page(products);
	if (page != NULL)
		answer(c->fd, 200, "text/html; charset=utf-8", page, NULL);
	free(page);
out:
	json_decref(svc);
	json_decref(products);
	mesh_http_free(&h);
	mesh_put(m, c->slot);
}

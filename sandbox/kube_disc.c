/*
 * kube_disc.c - what kubectl reads before it touches an object: /version
 * (the Cloud SDK dispatcher picks kubectl.1.XX by its minor), legacy
 * discovery (/api, /apis, resource lists with shortNames and categories;
 * aggregated discovery is deliberately not offered, since kubectl 1.27
 * only understands v2beta1 of it), the minimal OpenAPI v3 documents that
 * make kubectl trust server-side field validation, and meta.k8s.io Tables
 * for human `kubectl get` output.  All functions run with the lock held
 * and return new references.
 */
#include "kube_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- version ----------------------------------------------------------- */

json_t *
kube_disc_version(struct kube *k)
{
	int major = 1, minor = 32;
	char mj[16], mn[16];

	if (sscanf(k->version, "v%d.%d", &major, &minor) != 2) {
		major = 1;
		minor = 32;
	}
	snprintf(mj, sizeof(mj), "%d", major);
	snprintf(mn, sizeof(mn), "%d", minor);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "major", mj, "minor",
			 mn, "gitVersion", k->version, "gitCommit",
			 "0000000000000000000000000000000000000000", "gitTreeState", "clean",
			 "buildDate", "2025-01-01T00:00:00Z", "goVersion", "go1.23.6",
			 "compiler", "gc", "platform", "linux/amd64");
}

/* ---- discovery ------------------------------------------------------------ */

/* Kubernetes version order: GA before beta before alpha, higher first.
 * Negative when a sorts before b. */
static int
version_cmp(const char *a, const char *b)
{
	int ma = 0, mb = 0, na = 0, nb = 0, ta, tb;
	char sa[16] = "", sb[16] = "";

	if (sscanf(a, "v%d%15[a-z]%d", &ma, sa, &na) < 1)
		return strcmp(a, b);
	if (sscanf(b, "v%d%15[a-z]%d", &mb, sb, &nb) < 1)
		return -1;
	ta = sa[0] == '\0' ? 0 : strcmp(sa, "beta") == 0 ? 1 : 2;
	tb = sb[0] == '\0' ? 0 : strcmp(sb, "beta") == 0 ? 1 : 2;
	if (ta != tb)
		return ta - tb;
	if (ma != mb)
		return mb - ma;
	return nb - na;
}

/* The versions of group, best first, as a JSON array of strings. */
static json_t *
group_versions(struct kube *k, const char *group)
{
	json_t *out = json_array(), *v;
	size_t i, n = kube_res_count(k), j, pos;
	const struct kube_res *r;
	int have;

	for (i = 0; i < n; i++) {
		r = kube_res_at(k, i);
		if (strcmp(r->group, group) != 0)
			continue;
		have = 0;
		json_array_foreach(out, j, v)
			if (strcmp(json_string_value(v), r->version) == 0)
				have = 1;
		if (have)
			continue;
		pos = json_array_size(out);
		json_array_foreach(out, j, v) {
			if (version_cmp(r->version, json_string_value(v)) < 0) {
				pos = j;
				break;
			}
		}
		json_array_insert_new(out, pos, json_string(r->version));
	}
	return out;
}

static json_t *
group_doc(struct kube *k, const char *group)
{
	json_t *vers = group_versions(k, group), *list = json_array(), *v, *g;
	char gv[200];
	size_t i;

	if (json_array_size(vers) == 0) {
		json_decref(vers);
		json_decref(list);
		return NULL;
	}
	json_array_foreach(vers, i, v) {
		snprintf(gv, sizeof(gv), "%s/%s", group, json_string_value(v));
		json_array_append_new(list, json_pack("{s:s, s:s}", "groupVersion", gv, "version",
						      json_string_value(v)));
	}
	g = json_pack("{s:s, s:o, s:O}", "name", group, "versions", list, "preferredVersion",
		      json_array_get(list, 0));
	json_decref(vers);
	return g;
}

json_t *
kube_disc_api(struct kube *k, const char *host)
{
	char addr[96];

	snprintf(addr, sizeof(addr), "%s:%u", host != NULL ? host : k->listen_addr,
		 k->bound_port);
	return json_pack("{s:s, s:[s], s:[{s:s, s:s}]}", "kind", "APIVersions", "versions", "v1",
			 "serverAddressByClientCIDRs", "clientCIDR", "0.0.0.0/0",
			 "serverAddress", addr);
}

json_t *
kube_disc_apis(struct kube *k)
{
	json_t *groups = json_array(), *g, *seen = json_object();
	size_t i, n = kube_res_count(k);
	const struct kube_res *r;

	for (i = 0; i < n; i++) {
		r = kube_res_at(k, i);
		if (r->group[0] == '\0' || json_object_get(seen, r->group) != NULL)
			continue;
		json_object_set_new(seen, r->group, json_true());
		g = group_doc(k, r->group);
		if (g != NULL)
			json_array_append_new(groups, g);
	}
	json_decref(seen);
	return json_pack("{s:s, s:s, s:o}", "kind", "APIGroupList", "apiVersion", "v1", "groups",
			 groups);
}

json_t *
kube_disc_group(struct kube *k, const char *group)
{
	json_t *g = group_doc(k, group);

	if (g == NULL)
		return NULL;
	json_object_set_new(g, "kind", json_string("APIGroup"));
	json_object_set_new(g, "apiVersion", json_string("v1"));
	return g;
}

static json_t *
csv_array(const char *csv)
{
	json_t *a = json_array();
	char buf[128], *t, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", csv);
	for (t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
		json_array_append_new(a, json_string(t));
	return a;
}

json_t *
kube_disc_resources(struct kube *k, const char *group, const char *version)
{
	json_t *list = json_array(), *e, *cats;
	size_t i, n = kube_res_count(k);
	const struct kube_res *r;
	char gv[200], sub[200];

	for (i = 0; i < n; i++) {
		r = kube_res_at(k, i);
		if (strcmp(r->group, group) != 0 || strcmp(r->version, version) != 0)
			continue;
		e = json_pack("{s:s, s:s, s:b, s:s, s:[s,s,s,s,s,s,s]}", "name", r->plural,
			      "singularName", r->singular, "namespaced",
			      (r->flags & KR_NAMESPACED) != 0, "kind", r->kind, "verbs", "create",
			      "delete", "get", "list", "patch", "update", "watch");
		if (r->short_names[0] != '\0')
			json_object_set_new(e, "shortNames", csv_array(r->short_names));
		cats = csv_array(r->categories);
		if ((r->flags & KR_ALL) && !(r->flags & KR_CRD))
			json_array_insert_new(cats, 0, json_string("all"));
		if (json_array_size(cats) > 0)
			json_object_set_new(e, "categories", cats);
		else
			json_decref(cats);
		json_array_append_new(list, e);
		if (r->flags & KR_STATUS) {
			snprintf(sub, sizeof(sub), "%s/status", r->plural);
			json_array_append_new(list, json_pack("{s:s, s:s, s:b, s:s, s:[s,s,s]}", "name",
							      sub, "singularName", "", "namespaced",
							      (r->flags & KR_NAMESPACED) != 0, "kind",
							      r->kind, "verbs", "get", "patch", "update"));
		}
		if (r->flags & KR_SCALE) {
			snprintf(sub, sizeof(sub), "%s/scale", r->plural);
			json_array_append_new(list, json_pack("{s:s, s:s, s:b, s:s, s:s, s:s, s:[s,s,s]}",
							      "name", sub, "singularName", "",
							      "namespaced", 1, "group", "autoscaling",
							      "version", "v1", "kind", "Scale", "verbs",
							      "get", "patch", "update"));
		}
		if (strcmp(r->key, "pods") == 0)
			json_array_append_new(list, json_pack("{s:s, s:s, s:b, s:s, s:[s]}", "name",
							      "pods/log", "singularName", "",
							      "namespaced", 1, "kind", "Pod", "verbs",
							      "get"));
		if (r->flags & KR_TOKEN) {
			snprintf(sub, sizeof(sub), "%s/token", r->plural);
			json_array_append_new(list, json_pack("{s:s, s:s, s:b, s:s, s:s, s:s, s:[s]}",
							      "name", sub, "singularName", "",
							      "namespaced", 1, "group",
							      "authentication.k8s.io", "version", "v1",
							      "kind", "TokenRequest", "verbs", "create"));
		}
		if (strcmp(r->key, "namespaces") == 0)
			json_array_append_new(list, json_pack("{s:s, s:s, s:b, s:s, s:[s]}", "name",
							      "namespaces/finalize", "singularName", "",
							      "namespaced", 0, "kind", "Namespace",
							      "verbs", "update"));
	}
	if (json_array_size(list) == 0) {
		json_decref(list);
		return NULL;
	}
	if (group[0] == '\0')
		snprintf(gv, sizeof(gv), "%s", version);
	else
		snprintf(gv, sizeof(gv), "%s/%s", group, version);
	return json_pack("{s:s, s:s, s:s, s:o}", "kind", "APIResourceList", "apiVersion", "v1",
			 "groupVersion", gv, "resources", list);
}

/* ---- OpenAPI v3 ------------------------------------------------------------- */

/* Just enough for cli-runtime's query_param_verifier_v3: a PATCH per kind
 * with its GVK and a fieldValidation parameter. */
json_t *
kube_openapi_gv(struct kube *k, const char *group, const char *version)
{
	json_t *paths = json_object(), *op;
	size_t i, n = kube_res_count(k);
	const struct kube_res *r;
	char path[512], prefix[256];
	int any = 0;

	if (group[0] == '\0')
		snprintf(prefix, sizeof(prefix), "/api/%s", version);
	else
		snprintf(prefix, sizeof(prefix), "/apis/%s/%s", group, version);
	for (i = 0; i < n; i++) {
		r = kube_res_at(k, i);
		if (strcmp(r->group, group) != 0 || strcmp(r->version, version) != 0)
			continue;
		any = 1;
		if (r->flags & KR_NAMESPACED)
			snprintf(path, sizeof(path), "%s/namespaces/{namespace}/%s/{name}", prefix,
				 r->plural);
		else
			snprintf(path, sizeof(path), "%s/%s/{name}", prefix, r->plural);
		op = json_pack("{s:{s:s, s:s, s:s}, s:[{s:s, s:s, s:{s:s}, s:s}], s:s}",
			       "x-kubernetes-group-version-kind", "group", r->group, "version",
			       r->version, "kind", r->kind, "parameters", "name",
			       "fieldValidation", "in", "query", "schema", "type", "string",
			       "description",
			       "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields.",
			       "operationId", r->kind);
		json_object_set_new(paths, path, json_pack("{s:o}", "patch", op));
	}
	if (!any) {
		json_decref(paths);
		return NULL;
	}
	return json_pack("{s:s, s:{s:s, s:s}, s:o, s:{s:{}}}", "openapi", "3.0.0", "info", "title",
			 "Kubernetes", "version", k->version, "paths", paths, "components",
			 "schemas");
}

json_t *
kube_openapi_index(struct kube *k)
{
	json_t *paths = json_object(), *doc, *seen = json_object();
	size_t i, n = kube_res_count(k);
	const struct kube_res *r;
	char key[256], url[400];
	unsigned long long h;
	char *text;
	const unsigned char *p;

	for (i = 0; i < n; i++) {
		r = kube_res_at(k, i);
		if (r->group[0] == '\0')
			snprintf(key, sizeof(key), "api/%s", r->version);
		else
			snprintf(key, sizeof(key), "apis/%s/%s", r->group, r->version);
		if (json_object_get(seen, key) != NULL)
			continue;
		json_object_set_new(seen, key, json_true());
		doc = kube_openapi_gv(k, r->group, r->version);
		text = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		json_decref(doc);
		/* FNV-1a of the document: a new CRD version means a new URL, so
		 * kubectl's cache never serves a stale document. */
		h = 1469598103934665603ULL;
		for (p = (const unsigned char *)(text != NULL ? text : ""); *p != '\0'; p++)
			h = (h ^ *p) * 1099511628211ULL;
		free(text);
		snprintf(url, sizeof(url), "/openapi/v3/%s?hash=%016llX", key, h);
		json_object_set_new(paths, key, json_pack("{s:s}", "serverRelativeURL", url));
	}
	json_decref(seen);
	return json_pack("{s:o}", "paths", paths);
}

/* ---- Tables ------------------------------------------------------------------ */

static time_t
parse_time(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) == NULL)
		return 0;
	return timegm(&tm);
}

/* kubectl's duration.HumanDuration. */
static void
human_age(const char *ts, char *out, size_t size)
{
	long long s = (long long)(time(NULL) - parse_time(ts)), m, h;

	if (ts[0] == '\0') {
		snprintf(out, size, "<unknown>");
		return;
	}
	if (s < 0)
		s = 0;
	m = s / 60;
	h = m / 60;
	if (s < 120)
		snprintf(out, size, "%llds", s);
	else if (m < 10 && s % 60 != 0)
		snprintf(out, size, "%lldm%llds", m, s % 60);
	else if (m < 180)
		snprintf(out, size, "%lldm", m);
	else if (h < 8 && m % 60 != 0)
		snprintf(out, size, "%lldh%lldm", h, m % 60);
	else if (h < 48)
		snprintf(out, size, "%lldh", h);
	else if (h < 24 * 8 && h % 24 != 0)
		snprintf(out, size, "%lldd%lldh", h / 24, h % 24);
	else
		snprintf(out, size, "%lldd", h / 24);
}

struct col {
	const char *name, *type;
	int priority;
};

static const struct {
	const char *key;
	struct col cols[8];
} tables[] = {
	{"namespaces", {{"Name", "string", 0}, {"Status", "string", 0}, {"Age", "string", 0}}},
	{"pods", {{"Name", "string", 0}, {"Ready", "string", 0}, {"Status", "string", 0},
		  {"Restarts", "integer", 0}, {"Age", "string", 0}, {"IP", "string", 1},
		  {"Node", "string", 1}}},
	{"services", {{"Name", "string", 0}, {"Type", "string", 0}, {"Cluster-IP", "string", 0},
		      {"External-IP", "string", 0}, {"Port(s)", "string", 0}, {"Age", "string", 0},
		      {"Selector", "string", 1}}},
	{"deployments.apps", {{"Name", "string", 0}, {"Ready", "string", 0},
			      {"Up-to-date", "integer", 0}, {"Available", "integer", 0},
			      {"Age", "string", 0}}},
	{"replicasets.apps", {{"Name", "string", 0}, {"Desired", "integer", 0},
			      {"Current", "integer", 0}, {"Ready", "integer", 0},
			      {"Age", "string", 0}}},
	{"secrets", {{"Name", "string", 0}, {"Type", "string", 0}, {"Data", "integer", 0},
		     {"Age", "string", 0}}},
	{"configmaps", {{"Name", "string", 0}, {"Data", "integer", 0}, {"Age", "string", 0}}},
	{"serviceaccounts", {{"Name", "string", 0}, {"Secrets", "integer", 0}, {"Age", "string", 0}}},
	{"nodes", {{"Name", "string", 0}, {"Status", "string", 0}, {"Roles", "string", 0},
		   {"Age", "string", 0}, {"Version", "string", 0}}},
	{"customresourcedefinitions.apiextensions.k8s.io", {{"Name", "string", 0},
							     {"Created At", "date", 0}}},
	{"", {{"Name", "string", 0}, {"Age", "string", 0}}},
};

static void
service_ports(const json_t *svc, struct buf *b)
{
	json_t *p;
	size_t i;

	json_array_foreach(kube_jget(svc, "spec.ports"), i, p) {
		if (i > 0)
			buf_append_str(b, ",");
		if (json_object_get(p, "nodePort") != NULL)
			buf_printf(b, "%lld:%lld/%s", json_integer_value(json_object_get(p, "port")),
				   json_integer_value(json_object_get(p, "nodePort")),
				   kube_sget(p, "protocol"));
		else
			buf_printf(b, "%lld/%s", json_integer_value(json_object_get(p, "port")),
				   kube_sget(p, "protocol"));
	}
	if (b->len == 0)
		buf_append_str(b, "<none>");
}

static void
selector_str(const json_t *sel, struct buf *b)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)sel, key, v)
		buf_printf(b, "%s%s=%s", b->len > 0 ? "," : "", key, json_string_value(v));
	if (b->len == 0)
		buf_append_str(b, "<none>");
}

static json_int_t
ival(const json_t *o, const char *path)
{
	return json_integer_value(kube_jget(o, path));
}

static json_t *
cells(const struct kube_res *res, const json_t *o)
{
	const char *key = res->key, *created = kube_sget(o, "metadata.creationTimestamp");
	const char *name = kube_sget(o, "metadata.name");
	char age[32], s1[64];
	struct buf b;
	json_t *c;

	human_age(created, age, sizeof(age));
	buf_init(&b, 64 * 1024);
	if (strcmp(key, "namespaces") == 0) {
		c = json_pack("[s, s, s]", name, kube_sget(o, "status.phase"), age);
	} else if (strcmp(key, "pods") == 0) {
		json_t *cs;
		size_t i, total = json_array_size(kube_jget(o, "spec.containers")), ready = 0;
		json_int_t restarts = 0;
		const char *phase = kube_sget(o, "status.phase");

		json_array_foreach(kube_jget(o, "status.containerStatuses"), i, cs) {
			if (json_is_true(json_object_get(cs, "ready")))
				ready++;
			restarts += json_integer_value(json_object_get(cs, "restartCount"));
		}
		snprintf(s1, sizeof(s1), "%zu/%zu", ready, total);
		if (kube_jget(o, "metadata.deletionTimestamp") != NULL)
			phase = "Terminating";
		c = json_pack("[s, s, s, I, s, s, s]", name, s1, phase, (json_int_t)restarts, age,
			      kube_sget(o, "status.podIP")[0] ? kube_sget(o, "status.podIP") : "<none>",
			      kube_sget(o, "spec.nodeName")[0] ? kube_sget(o, "spec.nodeName") : "<none>");
	} else if (strcmp(key, "services") == 0) {
		const char *type = kube_sget(o, "spec.type"), *ext = "<none>";
		struct buf sel;

		if (strcmp(type, "LoadBalancer") == 0) {
			ext = json_string_value(json_object_get(
				json_array_get(kube_jget(o, "status.loadBalancer.ingress"), 0), "ip"));
			if (ext == NULL)
				ext = "<pending>";
		} else if (strcmp(type, "ExternalName") == 0) {
			ext = kube_sget(o, "spec.externalName");
		}
		service_ports(o, &b);
		buf_init(&sel, 64 * 1024);
		selector_str(kube_jget(o, "spec.selector"), &sel);
		c = json_pack("[s, s, s, s, s, s, s]", name, type,
			      kube_sget(o, "spec.clusterIP")[0] ? kube_sget(o, "spec.clusterIP") : "<none>",
			      ext, buf_str(&b), age, buf_str(&sel));
		buf_free(&sel);
	} else if (strcmp(key, "deployments.apps") == 0) {
		snprintf(s1, sizeof(s1), "%lld/%lld", (long long)ival(o, "status.readyReplicas"),
			 (long long)ival(o, "spec.replicas"));
		c = json_pack("[s, s, I, I, s]", name, s1, ival(o, "status.updatedReplicas"),
			      ival(o, "status.availableReplicas"), age);
	} else if (strcmp(key, "replicasets.apps") == 0) {
		c = json_pack("[s, I, I, I, s]", name, ival(o, "spec.replicas"),
			      ival(o, "status.replicas"), ival(o, "status.readyReplicas"), age);
	} else if (strcmp(key, "secrets") == 0) {
		c = json_pack("[s, s, I, s]", name, kube_sget(o, "type"),
			      (json_int_t)json_object_size(kube_jget(o, "data")), age);
	} else if (strcmp(key, "configmaps") == 0) {
		c = json_pack("[s, I, s]", name,
			      (json_int_t)(json_object_size(kube_jget(o, "data")) +
					   json_object_size(kube_jget(o, "binaryData"))),
			      age);
	} else if (strcmp(key, "serviceaccounts") == 0) {
		c = json_pack("[s, I, s]", name,
			      (json_int_t)json_array_size(kube_jget(o, "secrets")), age);
	} else if (strcmp(key, "nodes") == 0) {
		c = json_pack("[s, s, s, s, s]", name, "Ready", "<none>", age,
			      kube_sget(o, "status.nodeInfo.kubeletVersion"));
	} else if (strcmp(key, "customresourcedefinitions.apiextensions.k8s.io") == 0) {
		c = json_pack("[s, s]", name, created);
	} else {
		c = json_pack("[s, s]", name, age);
	}
	buf_free(&b);
	return c;
}

json_t *
kube_table(struct kube *k, const struct kube_res *res, json_t *items, long long rv)
{
	json_t *defs = json_array(), *rows = json_array(), *o, *meta;
	const struct col *cols = NULL;
	size_t i, t;
	char rvs[32];

	(void)k;
	for (t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		if (strcmp(tables[t].key, res->key) == 0 || tables[t].key[0] == '\0') {
			cols = tables[t].cols;
			break;
		}
	}
	for (i = 0; cols[i].name != NULL; i++)
		json_array_append_new(defs, json_pack("{s:s, s:s, s:s, s:s, s:i}", "name",
						      cols[i].name, "type", cols[i].type, "format",
						      i == 0 ? "name" : "", "description",
						      cols[i].name, "priority", cols[i].priority));
	json_array_foreach(items, i, o) {
		meta = json_deep_copy(json_object_get(o, "metadata"));
		json_object_del(meta, "managedFields");
		json_array_append_new(rows, json_pack("{s:o, s:{s:s, s:s, s:o}}", "cells",
						      cells(res, o), "object", "kind",
						      "PartialObjectMetadata", "apiVersion",
						      "meta.k8s.io/v1", "metadata", meta));
	}
	snprintf(rvs, sizeof(rvs), "%lld", rv);
	return json_pack("{s:s, s:s, s:{s:s}, s:o, s:o}", "kind", "Table", "apiVersion",
			 "meta.k8s.io/v1", "metadata", "resourceVersion", rvs,
			 "columnDefinitions", defs, "rows", rows);
}

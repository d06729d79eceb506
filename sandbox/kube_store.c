/*
 * kube_store.c - the objects of one simulated cluster, the resource types
 * they belong to, the event ring watchers read, selectors, and the state
 * file.  See kube_int.h for the locking rule.
 *
 * The state file is rewritten whole (write to a temporary, then rename)
 * by the controller thread when something changed, and at stop: a crash
 * can lose the last fraction of a second, never leave a torn file.
 */
#include "kube_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define STATE_FILE "kube-state.json"
#define STATE_MAX (256u << 20)

/* Built-in types.  Everything here is stored as-is unless a controller or
 * the defaults in kube_api.c know the kind. */
static const struct kube_res builtin[] = {
	{"", "v1", "namespaces", "namespace", "Namespace", "ns", "", KR_STATUS, ""},
	{"", "v1", "pods", "pod", "Pod", "po", "", KR_NAMESPACED | KR_STATUS | KR_ALL, ""},
	{"", "v1", "services", "service", "Service", "svc", "", KR_NAMESPACED | KR_STATUS | KR_ALL, ""},
	{"", "v1", "endpoints", "endpoints", "Endpoints", "ep", "", KR_NAMESPACED, ""},
	{"", "v1", "configmaps", "configmap", "ConfigMap", "cm", "", KR_NAMESPACED, ""},
	{"", "v1", "secrets", "secret", "Secret", "", "", KR_NAMESPACED, ""},
	{"", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", "sa", "", KR_NAMESPACED | KR_TOKEN, ""},
	{"", "v1", "events", "event", "Event", "ev", "", KR_NAMESPACED, ""},
	{"", "v1", "nodes", "node", "Node", "no", "", KR_STATUS, ""},
	{"", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", "pvc", "", KR_NAMESPACED | KR_STATUS, ""},
	{"", "v1", "limitranges", "limitrange", "LimitRange", "limits", "", KR_NAMESPACED, ""},
	{"", "v1", "resourcequotas", "resourcequota", "ResourceQuota", "quota", "", KR_NAMESPACED | KR_STATUS, ""},
	{"apps", "v1", "deployments", "deployment", "Deployment", "deploy", "", KR_NAMESPACED | KR_STATUS | KR_GENERATION | KR_ALL | KR_SCALE, ""},
	{"apps", "v1", "replicasets", "replicaset", "ReplicaSet", "rs", "", KR_NAMESPACED | KR_STATUS | KR_GENERATION | KR_ALL | KR_SCALE, ""},
	{"apps", "v1", "statefulsets", "statefulset", "StatefulSet", "sts", "", KR_NAMESPACED | KR_STATUS | KR_GENERATION | KR_ALL | KR_SCALE, ""},
	{"apps", "v1", "daemonsets", "daemonset", "DaemonSet", "ds", "", KR_NAMESPACED | KR_STATUS | KR_GENERATION | KR_ALL, ""},
	{"batch", "v1", "jobs", "job", "Job", "", "", KR_NAMESPACED | KR_STATUS | KR_GENERATION | KR_ALL, ""},
	{"autoscaling", "v2", "horizontalpodautoscalers", "horizontalpodautoscaler", "HorizontalPodAutoscaler", "hpa", "", KR_NAMESPACED | KR_STATUS | KR_ALL, ""},
	{"policy", "v1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", "pdb", "", KR_NAMESPACED | KR_STATUS | KR_GENERATION, ""},
	{"networking.k8s.io", "v1", "ingresses", "ingress", "Ingress", "ing", "", KR_NAMESPACED | KR_STATUS | KR_GENERATION, ""},
	{"networking.k8s.io", "v1", "networkpolicies", "networkpolicy", "NetworkPolicy", "netpol", "", KR_NAMESPACED | KR_GENERATION, ""},
	{"rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", "", "", 0, ""},
	{"rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", "", "", 0, ""},
	{"rbac.authorization.k8s.io", "v1", "roles", "role", "Role", "", "", KR_NAMESPACED, ""},
	{"rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", "", "", KR_NAMESPACED, ""},
	{"apiextensions.k8s.io", "v1", "customresourcedefinitions", "customresourcedefinition", "CustomResourceDefinition", "crd,crds", "api-extensions", KR_STATUS | KR_GENERATION, ""},
	{"admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", "mutatingwebhookconfiguration", "MutatingWebhookConfiguration", "", "api-extensions", KR_GENERATION, ""},
	{"admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", "validatingwebhookconfiguration", "ValidatingWebhookConfiguration", "", "api-extensions", KR_GENERATION, ""},
	{"coordination.k8s.io", "v1", "leases", "lease", "Lease", "", "", KR_NAMESPACED, ""},
	{"storage.k8s.io", "v1", "storageclasses", "storageclass", "StorageClass", "sc", "", 0, ""},
};
#define N_BUILTIN (sizeof(builtin) / sizeof(builtin[0]))

/* ---- small helpers ------------------------------------------------------- */

void
kube_now_rfc3339(char *out, size_t size)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

long long
kube_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
random_bytes(unsigned char *b, size_t n)
{
	ssize_t got = getrandom(b, n, 0);

	/* Only a uid or a name suffix depends on it: never fail over it. */
	if (got != (ssize_t)n) {
		size_t i;

		for (i = 0; i < n; i++)
			b[i] = (unsigned char)rand();
	}
}

void
kube_uid(char *out, size_t size)
{
	unsigned char b[16];

	random_bytes(b, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, size,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
		 b[11], b[12], b[13], b[14], b[15]);
}

void
kube_rand_suffix(char *out, size_t n)
{
	/* The alphabet of the real name generator: no vowels, no 0/1/3. */
	static const char alpha[] = "bcdfghjklmnpqrstvwxz2456789";
	unsigned char b[32];
	size_t i;

	if (n == 0)
		return;
	if (n > sizeof(b))
		n = sizeof(b);
	random_bytes(b, n);
	for (i = 0; i + 1 < n; i++)
		out[i] = alpha[b[i] % (sizeof(alpha) - 1)];
	out[n - 1] = '\0';
}

json_t *
kube_jget(const json_t *obj, const char *dotted)
{
	char part[128];
	const char *p = dotted, *dot;
	size_t n;

	while (obj != NULL && *p != '\0') {
		dot = strchr(p, '.');
		n = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (n >= sizeof(part))
			return NULL;
		memcpy(part, p, n);
		part[n] = '\0';
		obj = json_object_get(obj, part);
		p += n;
		if (*p == '.')
			p++;
	}
	return (json_t *)obj;
}

const char *
kube_sget(const json_t *obj, const char *dotted)
{
	const char *s = json_string_value(kube_jget(obj, dotted));

	return s != NULL ? s : "";
}

json_t *
kube_meta(json_t *obj)
{
	json_t *m = json_object_get(obj, "metadata");

	if (!json_is_object(m)) {
		m = json_object();
		json_object_set_new(obj, "metadata", m);
	}
	return m;
}

long long
kube_scaled_ms(const struct kube *k, double real_seconds)
{
	double ms = real_seconds * k->time_scale * 1000.0;

	return ms < 1 ? 1 : (long long)ms;
}

int
kube_due(struct kube *k, const char *what, long long delay_ms)
{
	json_t *v = json_object_get(k->due, what);
	long long now = kube_mono_ms();

	if (v == NULL) {
		json_object_set_new(k->due, what, json_integer(now + delay_ms));
		return delay_ms <= 0;
	}
	return now >= json_integer_value(v);
}

void
kube_due_forget(struct kube *k, const char *what)
{
	json_object_del(k->due, what);
}

static const char b64tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
kube_base64(struct buf *b, const unsigned char *s, size_t n, int url)
{
	size_t i;
	uint32_t v;
	char q[4];

	for (i = 0; i < n; i += 3) {
		v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) |
		    (i + 2 < n ? s[i + 2] : 0);
		q[0] = b64tbl[v >> 18];
		q[1] = b64tbl[(v >> 12) & 63];
		q[2] = i + 1 < n ? b64tbl[(v >> 6) & 63] : '=';
		q[3] = i + 2 < n ? b64tbl[v & 63] : '=';
		if (url) {
			size_t j, m = 4;

			for (j = 0; j < 4; j++) {
				if (q[j] == '+')
					q[j] = '-';
				else if (q[j] == '/')
					q[j] = '_';
				else if (q[j] == '=' && m == 4)
					m = j;
			}
			buf_append(b, q, m);
		} else {
			buf_append(b, q, 4);
		}
	}
}

/* ---- resource types ----------------------------------------------------- */

static void
res_key(struct kube_res *r)
{
	if (r->group[0] == '\0')
		snprintf(r->key, sizeof(r->key), "%s", r->plural);
	else
		snprintf(r->key, sizeof(r->key), "%s.%s", r->plural, r->group);
}

void
kube_res_gv(const struct kube_res *r, char *out, size_t size)
{
	if (r->group[0] == '\0')
		snprintf(out, size, "%s", r->version);
	else
		snprintf(out, size, "%s/%s", r->group, r->version);
}

size_t
kube_res_count(struct kube *k)
{
	return k->n_res;
}

const struct kube_res *
kube_res_at(struct kube *k, size_t i)
{
	return i < k->n_res ? &k->res[i] : NULL;
}

int
kube_res_find(struct kube *k, const char *group, const char *version,
	      const char *plural, struct kube_res *out)
{
	const struct kube_res *r;
	size_t i, n = kube_res_count(k);

	for (i = 0; i < n; i++) {
		r = kube_res_at(k, i);
		if (strcmp(r->group, group) == 0 && strcmp(r->version, version) == 0 &&
		    strcmp(r->plural, plural) == 0) {
			*out = *r;
			return 1;
		}
	}
	return 0;
}

int
kube_res_by_kind(struct kube *k, const char *api_version, const char *kind,
		 struct kube_res *out)
{
	const struct kube_res *r;
	size_t i, n = kube_res_count(k);
	char gv[160];

	for (i = 0; i < n; i++) {
		r = kube_res_at(k, i);
		kube_res_gv(r, gv, sizeof(gv));
		if (strcmp(gv, api_version) == 0 && strcmp(r->kind, kind) == 0) {
			*out = *r;
			return 1;
		}
	}
	return 0;
}

static void
join_strings(const json_t *arr, char *out, size_t size)
{
	size_t i, used = 0;
	json_t *v;
	int n;

	out[0] = '\0';
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v))
			continue;
		n = snprintf(out + used, size - used, "%s%s", used > 0 ? "," : "",
			     json_string_value(v));
		if (n < 0 || (size_t)n >= size - used) {
			out[used] = '\0';
			return;
		}
		used += (size_t)n;
	}
}

/* The table: the built-in types, then the served versions of every CRD.
 * On out of memory the old table stays. */
void
kube_res_rebuild(struct kube *k)
{
	json_t *crds = kube_obj_bucket(k, "customresourcedefinitions.apiextensions.k8s.io");
	json_t *crd, *vers, *v, *names;
	struct kube_res *arr, *r, *grown;
	const char *key, *cat;
	size_t n = 0, i;

	arr = malloc(N_BUILTIN * sizeof(*arr));
	if (arr == NULL)
		return;
	for (n = 0; n < N_BUILTIN; n++) {
		arr[n] = builtin[n];
		res_key(&arr[n]);
	}

	json_object_foreach(crds, key, crd) {
		if (json_object_get(kube_jget(crd, "metadata"), "deletionTimestamp") != NULL)
			continue;
		names = kube_jget(crd, "spec.names");
		vers = kube_jget(crd, "spec.versions");
		json_array_foreach(vers, i, v) {
			if (json_is_false(json_object_get(v, "served")))
				continue;
			grown = realloc(arr, (n + 1) * sizeof(*arr));
			if (grown == NULL) {
				free(arr);
				return;
			}
			arr = grown;
			r = &arr[n++];
			memset(r, 0, sizeof(*r));
			snprintf(r->group, sizeof(r->group), "%s", kube_sget(crd, "spec.group"));
			snprintf(r->version, sizeof(r->version), "%s",
				 kube_sget(v, "name"));
			snprintf(r->plural, sizeof(r->plural), "%s", kube_sget(names, "plural"));
			snprintf(r->singular, sizeof(r->singular), "%s",
				 kube_sget(names, "singular"));
			snprintf(r->kind, sizeof(r->kind), "%s", kube_sget(names, "kind"));
			join_strings(json_object_get(names, "shortNames"), r->short_names,
				     sizeof(r->short_names));
			join_strings(json_object_get(names, "categories"), r->categories,
				     sizeof(r->categories));
			r->flags = KR_CRD | KR_GENERATION;
			if (strcmp(kube_sget(crd, "spec.scope"), "Cluster") != 0)
				r->flags |= KR_NAMESPACED;
			if (kube_jget(v, "subresources.status") != NULL)
				r->flags |= KR_STATUS;
			/* "all" is a category like any other for CRDs. */
			cat = strstr(r->categories, "all");
			if (cat != NULL && (cat == r->categories || cat[-1] == ',') &&
			    (cat[3] == '\0' || cat[3] == ','))
				r->flags |= KR_ALL;
			res_key(r);
		}
	}
	free(k->res);
	k->res = arr;
	k->n_res = n;
}

/* ---- objects -------------------------------------------------------------- */

static void
obj_id(const char *ns, const char *name, char *out, size_t size)
{
	snprintf(out, size, "%s/%s", ns != NULL ? ns : "", name);
}

json_t *
kube_obj_bucket(struct kube *k, const char *key)
{
	return json_object_get(k->objs, key);
}

json_t *
kube_obj_get(struct kube *k, const char *key, const char *ns, const char *name)
{
	char id[600];

	obj_id(ns, name, id, sizeof(id));
	return json_object_get(kube_obj_bucket(k, key), id);
}

static void
ring_push(struct kube *k, long long rv, enum kube_change type, const char *key,
	  json_t *obj)
{
	struct kube_event *e;
	size_t slot;

	if (k->ring_count == KUBE_RING) {
		e = &k->ring[k->ring_head];
		k->ring_floor = e->rv;
		json_decref(e->obj);
		e->obj = NULL;
		k->ring_head = (k->ring_head + 1) % KUBE_RING;
		k->ring_count--;
	}
	slot = (k->ring_head + k->ring_count) % KUBE_RING;
	e = &k->ring[slot];
	e->rv = rv;
	e->type = type;
	snprintf(e->key, sizeof(e->key), "%s", key);
	e->obj = json_incref(obj);
	k->ring_count++;
}

static void
after_change(struct kube *k, const char *key)
{
	k->dirty = 1;
	k->changed = 1;
	if (strcmp(key, "customresourcedefinitions.apiextensions.k8s.io") == 0)
		kube_res_rebuild(k);
	kube_watch_wake(k);
	pthread_cond_signal(&k->wake);
}

json_t *
kube_obj_put(struct kube *k, const char *key, json_t *obj, enum kube_change change)
{
	json_t *bucket = json_object_get(k->objs, key), *meta = kube_meta(obj);
	char id[600], rvs[32];

	if (bucket == NULL) {
		bucket = json_object();
		json_object_set_new(k->objs, key, bucket);
	}
	k->rv++;
	snprintf(rvs, sizeof(rvs), "%lld", k->rv);
	json_object_set_new(meta, "resourceVersion", json_string(rvs));
	obj_id(kube_sget(meta, "namespace"), kube_sget(meta, "name"), id, sizeof(id));
	json_object_set_new(bucket, id, obj);
	ring_push(k, k->rv, change, key, obj);
	after_change(k, key);
	return obj;
}

void
kube_obj_remove(struct kube *k, const char *key, const char *ns, const char *name)
{
	json_t *bucket = json_object_get(k->objs, key), *obj, *last;
	char id[600], rvs[32];

	obj_id(ns, name, id, sizeof(id));
	obj = json_object_get(bucket, id);
	if (obj == NULL)
		return;
	/* The DELETED event carries the deletion's resourceVersion. */
	last = json_deep_copy(obj);
	k->rv++;
	if (last != NULL) {
		snprintf(rvs, sizeof(rvs), "%lld", k->rv);
		json_object_set_new(kube_meta(last), "resourceVersion", json_string(rvs));
		ring_push(k, k->rv, KUBE_DELETED, key, last);
		json_decref(last);
	}
	json_object_del(bucket, id);
	after_change(k, key);
}

/* ---- selectors -------------------------------------------------------------- */

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ')
		s++;
	e = s + strlen(s);
	while (e > s && e[-1] == ' ')
		*--e = '\0';
	return s;
}

/* One requirement: "k=v", "k==v", "k!=v", "k in (a,b)", "k notin (a)",
 * "k", "!k". */
static or_rc
sel_req(char *s, int fields, json_t *out, struct or_err *err)
{
	json_t *vals = json_array();
	char *p, *key, *op, *list, *v, *save = NULL;
	const char *opname;

	s = trim(s);
	if (*s == '\0')
		goto bad;
	if (!fields && s[0] == '!') {
		key = trim(s + 1);
		opname = "!exists";
		goto done;
	}
	p = strstr(s, "!=");
	if (p != NULL) {
		*p = '\0';
		key = trim(s);
		json_array_append_new(vals, json_string(trim(p + 2)));
		opname = "!=";
		goto done;
	}
	p = strchr(s, '=');
	if (p != NULL) {
		*p = '\0';
		key = trim(s);
		v = p + 1;
		if (*v == '=')
			v++;
		json_array_append_new(vals, json_string(trim(v)));
		opname = "=";
		goto done;
	}
	if (fields)
		goto bad;
	p = strchr(s, ' ');
	if (p == NULL) {
		key = s;
		opname = "exists";
		goto done;
	}
	*p = '\0';
	key = s;
	op = trim(p + 1);
	if (strncmp(op, "in", 2) == 0 && (op[2] == ' ' || op[2] == '(')) {
		opname = "in";
		list = op + 2;
	} else if (strncmp(op, "notin", 5) == 0 && (op[5] == ' ' || op[5] == '(')) {
		opname = "notin";
		list = op + 5;
	} else {
		goto bad;
	}
	list = trim(list);
	if (list[0] != '(' || list[strlen(list) - 1] != ')')
		goto bad;
	list[strlen(list) - 1] = '\0';
	for (v = strtok_r(list + 1, ",", &save); v != NULL; v = strtok_r(NULL, ",", &save))
		json_array_append_new(vals, json_string(trim(v)));
done:
	if (*key == '\0')
		goto bad;
	json_array_append_new(out, json_pack("{s:s, s:s, s:o}", "key", key, "op", opname,
					     "values", vals));
	return OR_OK;
bad:
	json_decref(vals);
	return or_fail(err, OR_E_MALFORMED, "bad_request", fields ? "fieldSelector" : "labelSelector",
		       "unable to parse requirement: found '%s', expected: in, notin, =, ==, !=, gt, lt",
		       s);
}

or_rc
kube_sel_parse(const char *s, int fields, json_t **out, struct or_err *err)
{
	char *copy = NULL, *start, *p;
	json_t *arr = json_array();
	int depth = 0;
	or_rc rc = OR_OK;

	*out = NULL;
	if (s == NULL || *s == '\0')
		goto out;
	copy = strdup(s);
	if (copy == NULL || arr == NULL) {
		rc = or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
		goto out;
	}
	/* Split on commas outside parentheses. */
	for (start = p = copy;; p++) {
		if (*p == '(')
			depth++;
		else if (*p == ')')
			depth--;
		if ((*p == ',' && depth == 0) || *p == '\0') {
			int end = *p == '\0';

			*p = '\0';
			rc = sel_req(start, fields, arr, err);
			if (rc != OR_OK || end)
				break;
			start = p + 1;
		}
	}
out:
	free(copy);
	if (rc != OR_OK) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return OR_OK;
}

static int
in_values(const json_t *vals, const char *v)
{
	size_t i;
	json_t *x;

	json_array_foreach(vals, i, x)
		if (strcmp(json_string_value(x), v) == 0)
			return 1;
	return 0;
}

int
kube_sel_match(const json_t *sel, const json_t *obj, int fields)
{
	const json_t *labels = kube_jget(obj, "metadata.labels");
	const char *key, *op, *have;
	json_t *r, *vals, *hv;
	size_t i;

	json_array_foreach(sel, i, r) {
		key = kube_sget(r, "key");
		op = kube_sget(r, "op");
		vals = json_object_get(r, "values");
		if (fields) {
			hv = kube_jget(obj, key);
			have = json_is_string(hv) ? json_string_value(hv) : "";
			if (strcmp(op, "=") == 0 && !in_values(vals, have))
				return 0;
			if (strcmp(op, "!=") == 0 && in_values(vals, have))
				return 0;
			continue;
		}
		hv = json_object_get(labels, key);
		have = json_string_value(hv);
		if (strcmp(op, "exists") == 0 && have == NULL)
			return 0;
		if (strcmp(op, "!exists") == 0 && have != NULL)
			return 0;
		if ((strcmp(op, "=") == 0 || strcmp(op, "in") == 0) &&
		    (have == NULL || !in_values(vals, have)))
			return 0;
		if ((strcmp(op, "!=") == 0 || strcmp(op, "notin") == 0) && have != NULL &&
		    in_values(vals, have))
			return 0;
	}
	return 1;
}

int
kube_sel_match_labels(const json_t *match_labels, const json_t *labels)
{
	const char *key;
	json_t *v;

	if (!json_is_object(match_labels) || json_object_size(match_labels) == 0)
		return 0; /* an empty selector selects nothing for controllers */
	json_object_foreach((json_t *)match_labels, key, v) {
		if (!json_is_string(v) ||
		    !json_equal(json_object_get(labels, key), v))
			return 0;
	}
	return 1;
}

/* ---- persistence ------------------------------------------------------------- */

or_rc
kube_store_init(struct kube *k, struct or_err *err)
{
	size_t n = strlen(k->dir) + sizeof(STATE_FILE) + 2;

	k->state_path = malloc(n);
	k->objs = json_object();
	k->counters = json_object();
	k->due = json_object();
	if (k->state_path == NULL || k->objs == NULL || k->counters == NULL ||
	    k->due == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	snprintf(k->state_path, n, "%s/%s", k->dir, STATE_FILE);
	kube_res_rebuild(k);
	if (k->res == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	return OR_OK;
}

or_rc
kube_store_load(struct kube *k, struct or_err *err)
{
	json_error_t jerr;
	json_t *st, *objs, *ctr;

	if (access(k->state_path, F_OK) != 0)
		return errno == ENOENT ? OR_OK
				       : or_fail(err, OR_E_IO, NULL, "dir", "cannot read %s: %s",
						 k->state_path, strerror(errno));
	st = json_load_file(k->state_path, 0, &jerr);
	if (!json_is_object(st)) {
		json_decref(st);
		return or_fail(err, OR_E_IO, NULL, "dir", "%s: line %d: %s", k->state_path,
			       jerr.line, jerr.text);
	}
	objs = json_object_get(st, "objects");
	ctr = json_object_get(st, "counters");
	if (json_is_object(objs))
		json_object_update(k->objs, objs);
	if (json_is_object(ctr))
		json_object_update(k->counters, ctr);
	k->rv = json_integer_value(json_object_get(st, "resourceVersion"));
	/* Watchers resuming from before the restart get 410 Gone, as from a
	 * real API server whose watch cache was rebuilt. */
	k->ring_floor = k->rv;
	k->hook_rv = k->rv;
	json_decref(st);
	kube_res_rebuild(k);
	return OR_OK;
}

or_rc
kube_store_flush(struct kube *k, struct or_err *err)
{
	char *text, tmp[4200];
	json_t *st;
	size_t len;
	int fd = -1;
	or_rc rc = OR_OK;

	pthread_mutex_lock(&k->lock);
	if (!k->dirty) {
		pthread_mutex_unlock(&k->lock);
		return OR_OK;
	}
	st = json_pack("{s:I, s:O, s:O}", "resourceVersion", (json_int_t)k->rv, "objects",
		       k->objs, "counters", k->counters);
	text = st != NULL ? json_dumps(st, JSON_COMPACT) : NULL;
	json_decref(st);
	k->dirty = 0;
	pthread_mutex_unlock(&k->lock);
	if (text == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	len = strlen(text);
	if (len > STATE_MAX) {
		rc = or_fail(err, OR_E_TOOLARGE, NULL, NULL, "cluster state over %u bytes",
			     STATE_MAX);
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", k->state_path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
		rc = or_fail(err, OR_E_IO, NULL, "dir", "cannot write %s: %s", tmp,
			     strerror(errno));
		goto out;
	}
	if (rename(tmp, k->state_path) != 0)
		rc = or_fail(err, OR_E_IO, NULL, "dir", "cannot rename %s: %s", tmp,
			     strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	if (rc != OR_OK) {
		pthread_mutex_lock(&k->lock);
		k->dirty = 1;	/* try again next time */
		pthread_mutex_unlock(&k->lock);
	}
	free(text);
	return rc;
}

void
kube_store_free(struct kube *k)
{
	size_t i;

	for (i = 0; i < KUBE_RING; i++) {
		json_decref(k->ring[i].obj);
		k->ring[i].obj = NULL;
	}
	json_decref(k->objs);
	json_decref(k->counters);
	json_decref(k->due);
	free(k->res);
	free(k->state_path);
	k->objs = k->counters = k->due = NULL;
	k->res = NULL;
	k->state_path = NULL;
}

/*
 * kube_ctrl.c - the controllers of a simulated cluster, on one thread:
 * Deployments make ReplicaSets, ReplicaSets make Pods, Pods become
 * Running and Ready after a delay, LoadBalancer Services get an ingress
 * IP after a delay, Namespaces terminate (contents first), objects whose
 * owner is gone are collected, every namespace has a "default"
 * ServiceAccount.  The same thread hands changes to the hook, wakes watch
 * streams once a second and writes the state file.
 *
 * Level-triggered: each pass looks at everything (a sandbox cluster holds
 * hundreds of objects, not millions) and writes only what differs, so
 * passes converge.  A pass runs after any change and when a delay falls
 * due.  Never blocks on anything but the store lock.
 */
#include "kube_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* Real-world seconds, before time_scale. */
#define POD_START_S 4.0
#define LB_IP_S 6.0
#define NS_DELETE_S 2.0
#define TICK_MS 1000
#define FLUSH_MS 200

#define ISTIO_PROXY_IMAGE "docker.io/istio/proxyv2:1.24.0"

/* ---- addresses ----------------------------------------------------------- */

int
kube_parse_cidr(const char *cidr, uint32_t *net, uint32_t *size)
{
	char ip[32];
	const char *slash = strchr(cidr, '/');
	struct in_addr a;
	int bits;

	if (slash == NULL || (size_t)(slash - cidr) >= sizeof(ip))
		return -1;
	memcpy(ip, cidr, (size_t)(slash - cidr));
	ip[slash - cidr] = '\0';
	bits = atoi(slash + 1);
	if (inet_pton(AF_INET, ip, &a) != 1 || bits < 8 || bits > 30)
		return -1;
	*size = 1u << (32 - bits);
	*net = ntohl(a.s_addr) & ~(*size - 1);
	return 0;
}

void
kube_ip_str(uint32_t ip, char *out, size_t size)
{
	struct in_addr a;

	a.s_addr = htonl(ip);
	if (inet_ntop(AF_INET, &a, out, (socklen_t)size) == NULL && size > 0)
		out[0] = '\0';
}

static long long
counter_next(struct kube *k, const char *name)
{
	long long v = json_integer_value(json_object_get(k->counters, name)) + 1;

	json_object_set_new(k->counters, name, json_integer(v));
	k->dirty = 1;
	return v;
}

/* Is ip used by a service (as clusterIP, or lb=1: as ingress IP)? */
static int
ip_used(struct kube *k, const char *ip, int lb)
{
	json_t *svcs = kube_obj_bucket(k, "services"), *s, *ing;
	const char *key;
	size_t i;

	json_object_foreach(svcs, key, s) {
		if (!lb && strcmp(kube_sget(s, "spec.clusterIP"), ip) == 0)
			return 1;
		if (lb)
			json_array_foreach(kube_jget(s, "status.loadBalancer.ingress"), i, ing)
				if (strcmp(kube_sget(ing, "ip"), ip) == 0)
					return 1;
	}
	return 0;
}

int
kube_alloc_cluster_ip(struct kube *k, char *ip, size_t size)
{
	uint32_t tries, n = k->svc_size - 2;

	/* .1 is the kubernetes Service's, handed out first. */
	for (tries = 0; tries < n; tries++) {
		long long c = counter_next(k, "svc_ip");

		kube_ip_str(k->svc_net + 1 + (uint32_t)((c - 1) % n), ip, size);
		if (!ip_used(k, ip, 0))
			return 0;
	}
	return -1;
}

int
kube_alloc_pod_ip(struct kube *k, char *ip, size_t size)
{
	long long c = counter_next(k, "pod_ip");

	/* Skip .0 and .1 of each /24, as node pod ranges do. */
	kube_ip_str(k->pod_net + 2 + (uint32_t)((c - 1) % (k->pod_size - 4)), ip, size);
	return 0;
}

int
kube_alloc_node_port(struct kube *k)
{
	json_t *svcs = kube_obj_bucket(k, "services"), *s, *p;
	const char *key;
	int tries, port, used;
	size_t i;

	for (tries = 0; tries < 2768; tries++) {
		port = 30000 + (int)((counter_next(k, "node_port") - 1) % 2768);
		used = 0;
		json_object_foreach(svcs, key, s)
			json_array_foreach(kube_jget(s, "spec.ports"), i, p)
				if (json_integer_value(json_object_get(p, "nodePort")) == port)
					used = 1;
		if (!used)
			return port;
	}
	return 30000;
}

static int
alloc_lb_ip(struct kube *k, const char *ns, const char *name, char *ip, size_t size)
{
	uint32_t a;

	if (k->lb_alloc != NULL)
		return k->lb_alloc(k->lb_ctx, ns, name, ip, size) == OR_OK ? 0 : -1;
	for (a = k->lb_first; a != 0 && a <= k->lb_last; a++) {
		kube_ip_str(a, ip, size);
		if (!ip_used(k, ip, 1))
			return 0;
	}
	return -1;
}

/* ---- admission ------------------------------------------------------------ */

void
kube_ctrl_initial_status(struct kube *k, const struct kube_res *res, json_t *obj)
{
	char now[32];
	json_t *spec;

	(void)k;
	kube_now_rfc3339(now, sizeof(now));
	if (strcmp(res->key, "namespaces") == 0) {
		json_object_set_new(obj, "status", json_pack("{s:s}", "phase", "Active"));
	} else if (strcmp(res->key, "pods") == 0) {
		spec = json_object_get(obj, "spec");
		if (json_is_object(spec) && kube_sget(spec, "nodeName")[0] == '\0')
			json_object_set_new(spec, "nodeName", json_string(KUBE_NODE));
		json_object_set_new(obj, "status",
				    json_pack("{s:s, s:s, s:[{s:s, s:s, s:n, s:s}]}", "phase",
					      "Pending", "qosClass", "BestEffort", "conditions",
					      "type", "PodScheduled", "status", "True",
					      "lastProbeTime", "lastTransitionTime", now));
	} else if (strcmp(res->key, "services") == 0) {
		json_object_set_new(obj, "status", json_pack("{s:{}}", "loadBalancer"));
	} else if (strcmp(res->key, "deployments.apps") == 0 ||
		   strcmp(res->key, "replicasets.apps") == 0) {
		json_object_set_new(obj, "status", json_object());
	}
}

static int
wants_sidecar(struct kube *k, const json_t *pod)
{
	const char *ns = kube_sget(pod, "metadata.namespace");
	json_t *nso = kube_obj_get(k, "namespaces", "", ns);
	const char *inj = kube_sget(nso, "metadata.labels.istio-injection");
	json_t *labels = kube_jget(pod, "metadata.labels");
	json_t *ann = kube_jget(pod, "metadata.annotations");
	const char *pl = json_string_value(json_object_get(labels, "sidecar.istio.io/inject"));
	const char *pa = json_string_value(json_object_get(ann, "sidecar.istio.io/inject"));
	size_t i;
	json_t *c;

	if (!k->istio || strcmp(inj, "enabled") != 0)
		return 0;
	if ((pl != NULL && strcmp(pl, "false") == 0) || (pa != NULL && strcmp(pa, "false") == 0))
		return 0;
	json_array_foreach(kube_jget(pod, "spec.containers"), i, c)
		if (strcmp(kube_sget(c, "name"), "istio-proxy") == 0)
			return 0;
	return 1;
}

void
kube_ctrl_inject(struct kube *k, json_t *pod)
{
	json_t *containers = kube_jget(pod, "spec.containers"), *meta = kube_meta(pod);
	json_t *labels, *ann;
	const char *app;

	if (!json_is_array(containers) || !wants_sidecar(k, pod))
		return;
	json_array_append_new(
		containers,
		json_pack("{s:s, s:s, s:[s,s], s:[{s:i, s:s, s:s}], s:s, s:s, s:s, s:{s:i}}",
			  "name", "istio-proxy", "image", ISTIO_PROXY_IMAGE, "args", "proxy",
			  "sidecar", "ports", "containerPort", 15090, "name", "http-envoy-prom",
			  "protocol", "TCP", "imagePullPolicy", "IfNotPresent",
			  "terminationMessagePath", "/dev/termination-log",
			  "terminationMessagePolicy", "File", "securityContext", "runAsUser",
			  1337));
	labels = json_object_get(meta, "labels");
	if (!json_is_object(labels)) {
		labels = json_object();
		json_object_set_new(meta, "labels", labels);
	}
	app = kube_sget(labels, "app");
	json_object_set_new(labels, "security.istio.io/tlsMode", json_string("istio"));
	json_object_set_new(labels, "service.istio.io/canonical-name",
			    json_string(app[0] != '\0' ? app : kube_sget(meta, "name")));
	json_object_set_new(labels, "service.istio.io/canonical-revision", json_string("latest"));
	ann = json_object_get(meta, "annotations");
	if (!json_is_object(ann)) {
		ann = json_object();
		json_object_set_new(meta, "annotations", ann);
	}
	json_object_set_new(ann, "sidecar.istio.io/status",
			    json_string("{\"initContainers\":[\"istio-init\"],\"containers\":[\"istio-proxy\"],\"volumes\":[],\"imagePullSecrets\":null,\"revision\":\"default\"}"));
}

/* ---- helpers for controller writes ------------------------------------- */

/* Store a new status for obj (borrowed) unless it is the same.  st is
 * stolen. */
static void
put_status(struct kube *k, const char *key, const json_t *obj, json_t *st)
{
	json_t *n;

	if (json_equal(json_object_get(obj, "status"), st)) {
		json_decref(st);
		return;
	}
	n = json_deep_copy(obj);
	json_object_set_new(n, "status", st);
	kube_obj_put(k, key, n, KUBE_MODIFIED);
}

static int
owned_by(const json_t *obj, const char *uid)
{
	json_t *r;
	size_t i;

	json_array_foreach(kube_jget(obj, "metadata.ownerReferences"), i, r)
		if (strcmp(kube_sget(r, "uid"), uid) == 0)
			return 1;
	return 0;
}

static json_t *
owner_ref(const json_t *owner)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "apiVersion",
			 kube_sget(owner, "apiVersion"), "kind", kube_sget(owner, "kind"), "name",
			 kube_sget(owner, "metadata.name"), "uid", kube_sget(owner, "metadata.uid"),
			 "controller", 1, "blockOwnerDeletion", 1);
}

static int
terminating(const json_t *o)
{
	return kube_jget(o, "metadata.deletionTimestamp") != NULL;
}

/* A snapshot of a bucket's objects (new array): passes change buckets. */
static json_t *
snapshot(struct kube *k, const char *key)
{
	json_t *arr = json_array(), *o;
	const char *id;

	json_object_foreach(kube_obj_bucket(k, key), id, o)
		json_array_append(arr, o);
	return arr;
}

static void
due_key(char *out, size_t size, const char *what, const json_t *o)
{
	snprintf(out, size, "%s|%s|%s|%s", what, kube_sget(o, "metadata.namespace"),
		 kube_sget(o, "metadata.name"), kube_sget(o, "metadata.uid"));
}

/* ---- namespaces --------------------------------------------------------------- */

static void
purge_namespace(struct kube *k, const char *ns)
{
	json_t *keys = json_array(), *bucket, *o, *copy;
	const char *key, *id;
	size_t i;
	void *tmp;

	json_object_foreach(k->objs, key, bucket)
		json_array_append_new(keys, json_string(key));
	json_array_foreach(keys, i, o) {
		key = json_string_value(o);
		if (strcmp(key, "namespaces") == 0)
			continue;
		copy = json_copy(kube_obj_bucket(k, key));
		json_object_foreach_safe(copy, tmp, id, bucket)
			if (strcmp(kube_sget(bucket, "metadata.namespace"), ns) == 0)
				kube_obj_remove(k, key, ns, kube_sget(bucket, "metadata.name"));
		json_decref(copy);
	}
	json_decref(keys);
}

static void
reconcile_namespaces(struct kube *k, json_t *seen)
{
	json_t *all = snapshot(k, "namespaces"), *ns, *sa;
	const char *name;
	char what[600];
	size_t i;

	json_array_foreach(all, i, ns) {
		name = kube_sget(ns, "metadata.name");
		if (terminating(ns)) {
			due_key(what, sizeof(what), "nsdel", ns);
			json_object_set_new(seen, what, json_true());
			if (!kube_due(k, what, kube_scaled_ms(k, NS_DELETE_S)))
				continue;
			purge_namespace(k, name);
			kube_obj_remove(k, "namespaces", "", name);
			continue;
		}
		if (kube_obj_get(k, "serviceaccounts", name, "default") == NULL) {
			struct kube_res res;
			struct or_err err;

			sa = json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "v1", "kind",
				       "ServiceAccount", "metadata", "name", "default", "namespace",
				       name);
			if (kube_res_find(k, "", "v1", "serviceaccounts", &res) &&
			    kube_do_create(k, &res, name, sa, NULL, NULL, &err) != OR_OK)
				log_warn("kube: default serviceaccount in %s: %s", name, err.message);
		}
	}
	json_decref(all);
}

/* ---- deployments and replicasets ------------------------------------------ */

/* pod-template-hash: FNV-1a of the template, spelt with the name alphabet. */
static void
template_hash(const json_t *tmpl, char *out, size_t size)
{
	static const char alpha[] = "bcdfghjklmnpqrstvwxz2456789";
	char *text = json_dumps(tmpl, JSON_COMPACT | JSON_SORT_KEYS), digits[16];
	const unsigned char *p;
	uint32_t h = 2166136261u;
	size_t i;

	for (p = (const unsigned char *)(text != NULL ? text : ""); *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	free(text);
	snprintf(digits, sizeof(digits), "%u", h);
	for (i = 0; digits[i] != '\0' && i + 1 < size; i++)
		out[i] = alpha[(digits[i] - '0') % (sizeof(alpha) - 1)];
	out[i] = '\0';
}

static json_int_t
revision_of(const json_t *rs)
{
	const char *v = json_string_value(json_object_get(kube_jget(rs, "metadata.annotations"),
							  "deployment.kubernetes.io/revision"));

	return v != NULL ? atoll(v) : 0;
}

static void
ensure_rs(struct kube *k, const json_t *dep, const char *hash, json_int_t replicas,
	  json_int_t revision)
{
	const char *ns = kube_sget(dep, "metadata.namespace");
	char name[400], rev[32];
	json_t *rs, *tmpl, *sel, *labels, *cur;
	struct kube_res res;
	struct or_err err;

	snprintf(name, sizeof(name), "%s-%s", kube_sget(dep, "metadata.name"), hash);
	snprintf(rev, sizeof(rev), "%lld", (long long)revision);
	cur = kube_obj_get(k, "replicasets.apps", ns, name);
	if (cur != NULL) {
		if (json_integer_value(kube_jget(cur, "spec.replicas")) != replicas ||
		    revision_of(cur) != revision) {
			rs = json_deep_copy(cur);
			json_object_set_new(json_object_get(rs, "spec"), "replicas",
					    json_integer(replicas));
			json_object_set_new(kube_sub_obj(kube_meta(rs), "annotations"),
					    "deployment.kubernetes.io/revision", json_string(rev));
			kube_obj_put(k, "replicasets.apps", rs, KUBE_MODIFIED);
		}
		return;
	}
	tmpl = json_deep_copy(kube_jget(dep, "spec.template"));
	labels = json_object_get(kube_meta(tmpl), "labels");
	if (!json_is_object(labels)) {
		labels = json_object();
		json_object_set_new(kube_meta(tmpl), "labels", labels);
	}
	json_object_set_new(labels, "pod-template-hash", json_string(hash));
	sel = json_deep_copy(kube_jget(dep, "spec.selector"));
	if (!json_is_object(sel))
		sel = json_object();
	if (!json_is_object(json_object_get(sel, "matchLabels")))
		json_object_set_new(sel, "matchLabels", json_object());
	json_object_set_new(json_object_get(sel, "matchLabels"), "pod-template-hash",
			    json_string(hash));
	rs = json_pack("{s:s, s:s, s:{s:s, s:s, s:O, s:{s:s}, s:[o]}, s:{s:I, s:o, s:o}}",
		       "apiVersion", "apps/v1", "kind", "ReplicaSet", "metadata", "name", name,
		       "namespace", ns, "labels", labels, "annotations",
		       "deployment.kubernetes.io/revision", rev, "ownerReferences",
		       owner_ref(dep), "spec", "replicas", replicas, "selector", sel, "template",
		       tmpl);
	if (kube_res_find(k, "apps", "v1", "replicasets", &res) &&
	    kube_do_create(k, &res, ns, rs, NULL, NULL, &err) != OR_OK)
		log_warn("kube: replicaset %s/%s: %s", ns, name, err.message);
}

static json_t *
condition(const json_t *old_conds, const char *type, const char *status, const char *reason,
	  const char *message)
{
	char now[32];
	json_t *c;
	size_t i;

	json_array_foreach(old_conds, i, c) {
		if (strcmp(kube_sget(c, "type"), type) == 0 &&
		    strcmp(kube_sget(c, "status"), status) == 0 &&
		    strcmp(kube_sget(c, "reason"), reason) == 0)
			return json_incref(c);	/* unchanged: keep its times */
	}
	kube_now_rfc3339(now, sizeof(now));
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", type, "status", status,
			 "lastUpdateTime", now, "lastTransitionTime", now, "reason", reason,
			 "message", message);
}

static void
reconcile_deployment(struct kube *k, const json_t *dep, json_t *rsets)
{
	const char *uid = kube_sget(dep, "metadata.uid"), *ns = kube_sget(dep, "metadata.namespace");
	json_int_t want = json_integer_value(kube_jget(dep, "spec.replicas"));
	json_int_t total = 0, updated = 0, ready = 0, rev = 0, r;
	char hash[16], new_name[400], msg[600];
	json_t *rs, *st, *conds, *old_conds = kube_jget(dep, "status.conditions");
	size_t i;
	int old_left = 0, new_ready;

	if (json_object_get(json_object_get(dep, "spec"), "replicas") == NULL)
		want = 1;
	template_hash(kube_jget(dep, "spec.template"), hash, sizeof(hash));
	snprintf(new_name, sizeof(new_name), "%s-%s", kube_sget(dep, "metadata.name"), hash);
	json_array_foreach(rsets, i, rs) {
		if (!owned_by(rs, uid))
			continue;
		r = revision_of(rs);
		if (r > rev)
			rev = r;
	}
	/* A template seen before (rollout undo) takes the next revision. */
	rs = kube_obj_get(k, "replicasets.apps", ns, new_name);
	if (rs == NULL || revision_of(rs) < rev)
		rev++;
	ensure_rs(k, dep, hash, want, rev);
	/* Old ReplicaSets scale to zero at once (no surge in the sandbox). */
	json_array_foreach(rsets, i, rs) {
		if (!owned_by(rs, uid) || strcmp(kube_sget(rs, "metadata.name"), new_name) == 0)
			continue;
		if (json_integer_value(kube_jget(rs, "spec.replicas")) != 0) {
			json_t *n = json_deep_copy(rs);

			json_object_set_new(json_object_get(n, "spec"), "replicas", json_integer(0));
			kube_obj_put(k, "replicasets.apps", n, KUBE_MODIFIED);
		}
		if (json_integer_value(kube_jget(rs, "status.replicas")) > 0)
			old_left = 1;
		total += json_integer_value(kube_jget(rs, "status.replicas"));
		ready += json_integer_value(kube_jget(rs, "status.readyReplicas"));
	}
	rs = kube_obj_get(k, "replicasets.apps", ns, new_name);
	if (rs != NULL) {
		updated = json_integer_value(kube_jget(rs, "status.replicas"));
		total += updated;
		ready += json_integer_value(kube_jget(rs, "status.readyReplicas"));
	}
	new_ready = rs != NULL && json_integer_value(kube_jget(rs, "status.readyReplicas")) >= want;
	conds = json_array();
	json_array_append_new(conds, ready >= want
					     ? condition(old_conds, "Available", "True",
							 "MinimumReplicasAvailable",
							 "Deployment has minimum availability.")
					     : condition(old_conds, "Available", "False",
							 "MinimumReplicasUnavailable",
							 "Deployment does not have minimum availability."));
	if (new_ready && !old_left) {
		snprintf(msg, sizeof(msg), "ReplicaSet \"%s\" has successfully progressed.", new_name);
		json_array_append_new(conds, condition(old_conds, "Progressing", "True",
						       "NewReplicaSetAvailable", msg));
	} else {
		snprintf(msg, sizeof(msg), "ReplicaSet \"%s\" is progressing.", new_name);
		json_array_append_new(conds, condition(old_conds, "Progressing", "True",
						       "ReplicaSetUpdated", msg));
	}
	st = json_pack("{s:I, s:I, s:I, s:I, s:I, s:o}", "observedGeneration",
		       json_integer_value(kube_jget(dep, "metadata.generation")), "replicas", total,
		       "updatedReplicas", updated, "readyReplicas", ready, "availableReplicas",
		       ready, "conditions", conds);
	if (want > ready)
		json_object_set_new(st, "unavailableReplicas", json_integer(want - ready));
	snprintf(msg, sizeof(msg), "%lld", (long long)rev);
	if (revision_of(dep) != rev) {
		/* The revision annotation, as the deployment controller keeps it. */
		json_t *n = json_deep_copy(dep);

		json_object_set_new(kube_sub_obj(kube_meta(n), "annotations"),
				    "deployment.kubernetes.io/revision", json_string(msg));
		json_object_set_new(n, "status", st);
		kube_obj_put(k, "deployments.apps", n, KUBE_MODIFIED);
		return;
	}
	put_status(k, "deployments.apps", dep, st);
}

static void
reconcile_replicaset(struct kube *k, const json_t *rs, json_t *pods)
{
	const char *uid = kube_sget(rs, "metadata.uid"), *ns = kube_sget(rs, "metadata.namespace");
	json_int_t want = json_integer_value(kube_jget(rs, "spec.replicas")), have = 0, ready = 0;
	json_t *p, *pod, *tmpl, *st;
	struct kube_res res;
	struct or_err err;
	char name[400], sfx[6];
	size_t i;

	json_array_foreach(pods, i, p) {
		if (!owned_by(p, uid) || terminating(p))
			continue;
		if (have >= want) {
			/* Scale down: newest first would be faithful; any will do. */
			kube_obj_remove(k, "pods", ns, kube_sget(p, "metadata.name"));
			continue;
		}
		have++;
		if (strcmp(kube_sget(p, "status.phase"), "Running") == 0)
			ready++;
	}
	tmpl = kube_jget(rs, "spec.template");
	while (have < want && kube_res_find(k, "", "v1", "pods", &res)) {
		kube_rand_suffix(sfx, sizeof(sfx));
		snprintf(name, sizeof(name), "%s-%s", kube_sget(rs, "metadata.name"), sfx);
		pod = json_pack("{s:s, s:s, s:{s:s, s:s, s:o, s:[o]}, s:o}", "apiVersion", "v1",
				"kind", "Pod", "metadata", "name", name, "namespace", ns, "labels",
				json_is_object(kube_jget(tmpl, "metadata.labels"))
					? json_deep_copy(kube_jget(tmpl, "metadata.labels"))
					: json_object(),
				"ownerReferences", owner_ref(rs), "spec",
				json_is_object(kube_jget(tmpl, "spec"))
					? json_deep_copy(kube_jget(tmpl, "spec"))
					: json_object());
		if (pod == NULL)
			break;
		if (kube_jget(tmpl, "metadata.annotations") != NULL)
			json_object_set_new(kube_meta(pod), "annotations",
					    json_deep_copy(kube_jget(tmpl, "metadata.annotations")));
		if (kube_do_create(k, &res, ns, pod, NULL, NULL, &err) != OR_OK) {
			log_warn("kube: pod %s/%s: %s", ns, name, err.message);
			break;
		}
		have++;
	}
	st = json_pack("{s:I, s:I, s:I, s:I, s:I}", "replicas", have, "fullyLabeledReplicas", have,
		       "readyReplicas", ready, "availableReplicas", ready, "observedGeneration",
		       json_integer_value(kube_jget(rs, "metadata.generation")));
	put_status(k, "replicasets.apps", rs, st);
}

/* ---- pods and services ------------------------------------------------------- */

static void
start_pod(struct kube *k, const json_t *pod)
{
	char now[32], ip[32];
	json_t *st, *cs = json_array(), *ics = json_array(), *c, *conds;
	size_t i;

	kube_now_rfc3339(now, sizeof(now));
	kube_alloc_pod_ip(k, ip, sizeof(ip));
	json_array_foreach(kube_jget(pod, "spec.containers"), i, c)
		json_array_append_new(
			cs, json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:i, s:{s:{s:s}}}", "name",
				      kube_sget(c, "name"), "image", kube_sget(c, "image"), "imageID",
				      kube_sget(c, "image"), "containerID", "containerd://sandbox",
				      "ready", 1, "started", 1, "restartCount", 0, "state", "running",
				      "startedAt", now));
	json_array_foreach(kube_jget(pod, "spec.initContainers"), i, c)
		json_array_append_new(
			ics, json_pack("{s:s, s:s, s:s, s:b, s:i, s:{s:{s:i, s:s}}}", "name",
				       kube_sget(c, "name"), "image", kube_sget(c, "image"), "imageID",
				       kube_sget(c, "image"), "ready", 1, "restartCount", 0, "state",
				       "terminated", "exitCode", 0, "reason", "Completed"));
	conds = json_array();
	json_array_append_new(conds, json_pack("{s:s, s:s, s:n, s:s}", "type", "Initialized",
					       "status", "True", "lastProbeTime",
					       "lastTransitionTime", now));
	json_array_append_new(conds, json_pack("{s:s, s:s, s:n, s:s}", "type", "Ready", "status",
					       "True", "lastProbeTime", "lastTransitionTime", now));
	json_array_append_new(conds, json_pack("{s:s, s:s, s:n, s:s}", "type", "ContainersReady",
					       "status", "True", "lastProbeTime",
					       "lastTransitionTime", now));
	json_array_append_new(conds, json_pack("{s:s, s:s, s:n, s:s}", "type", "PodScheduled",
					       "status", "True", "lastProbeTime",
					       "lastTransitionTime", now));
	st = json_pack("{s:s, s:o, s:s, s:s, s:[{s:s}], s:[{s:s}], s:s, s:o, s:s}", "phase",
		       "Running", "conditions", conds, "hostIP", "10.128.0.2", "podIP", ip,
		       "podIPs", "ip", ip, "hostIPs", "ip", "10.128.0.2", "startTime", now,
		       "containerStatuses", cs, "qosClass",
		       kube_sget(pod, "status.qosClass")[0] ? kube_sget(pod, "status.qosClass")
							   : "BestEffort");
	if (json_array_size(ics) > 0)
		json_object_set_new(st, "initContainerStatuses", ics);
	else
		json_decref(ics);
	put_status(k, "pods", pod, st);
}

static void
reconcile_pods(struct kube *k, json_t *seen)
{
	json_t *all = snapshot(k, "pods"), *p;
	char what[600];
	size_t i;

	json_array_foreach(all, i, p) {
		if (terminating(p) || strcmp(kube_sget(p, "status.phase"), "Pending") != 0)
			continue;
		due_key(what, sizeof(what), "podstart", p);
		json_object_set_new(seen, what, json_true());
		if (kube_due(k, what, kube_scaled_ms(k, POD_START_S)))
			start_pod(k, p);
	}
	json_decref(all);
}

static void
reconcile_services(struct kube *k, json_t *seen)
{
	json_t *all = snapshot(k, "services"), *s, *st;
	char what[600], ip[64];
	size_t i;

	json_array_foreach(all, i, s) {
		if (strcmp(kube_sget(s, "spec.type"), "LoadBalancer") != 0 ||
		    json_array_size(kube_jget(s, "status.loadBalancer.ingress")) > 0)
			continue;
		due_key(what, sizeof(what), "lbip", s);
		json_object_set_new(seen, what, json_true());
		if (!kube_due(k, what, kube_scaled_ms(k, LB_IP_S)))
			continue;
		if (alloc_lb_ip(k, kube_sget(s, "metadata.namespace"), kube_sget(s, "metadata.name"),
				ip, sizeof(ip)) != 0) {
			log_warn("kube: no LoadBalancer address left for %s/%s",
				 kube_sget(s, "metadata.namespace"), kube_sget(s, "metadata.name"));
			continue;
		}
		st = json_deep_copy(json_object_get(s, "status"));
		if (!json_is_object(st))
			st = json_object();
		json_object_set_new(st, "loadBalancer",
				    json_pack("{s:[{s:s, s:s}]}", "ingress", "ip", ip, "ipMode", "VIP"));
		put_status(k, "services", s, st);
	}
	json_decref(all);
}

/* Owned objects whose owners are gone (Background propagation). */
static void
collect_garbage(struct kube *k)
{
	json_t *uids = json_object(), *bucket, *o, *r, *copy;
	const char *key, *id;
	size_t i;
	void *tmp;
	int orphan;

	json_object_foreach(k->objs, key, bucket)
		json_object_foreach(bucket, id, o)
			json_object_set_new(uids, kube_sget(o, "metadata.uid"), json_true());
	json_object_foreach(k->objs, key, bucket) {
		copy = NULL;
		json_object_foreach(bucket, id, o) {
			orphan = 0;
			json_array_foreach(kube_jget(o, "metadata.ownerReferences"), i, r)
				if (json_object_get(uids, kube_sget(r, "uid")) == NULL)
					orphan = 1;
			if (orphan && copy == NULL)
				copy = json_array();
			if (orphan)
				json_array_append(copy, o);
		}
		json_array_foreach(copy, i, o)
			kube_obj_remove(k, key, kube_sget(o, "metadata.namespace"),
					kube_sget(o, "metadata.name"));
		json_decref(copy);
	}
	(void)tmp;
	json_decref(uids);
}

static void
reconcile(struct kube *k)
{
	json_t *seen = json_object(), *deps, *rsets, *pods, *v;
	const char *key;
	size_t i;
	void *tmp;

	reconcile_namespaces(k, seen);
	collect_garbage(k);
	deps = snapshot(k, "deployments.apps");
	rsets = snapshot(k, "replicasets.apps");
	json_array_foreach(deps, i, v)
		if (!terminating(v))
			reconcile_deployment(k, v, rsets);
	json_decref(rsets);
	rsets = snapshot(k, "replicasets.apps");
	pods = snapshot(k, "pods");
	json_array_foreach(rsets, i, v)
		if (!terminating(v))
			reconcile_replicaset(k, v, pods);
	reconcile_pods(k, seen);
	reconcile_services(k, seen);
	/* Forget delays of objects that went away. */
	json_object_foreach_safe(k->due, tmp, key, v)
		if (json_object_get(seen, key) == NULL)
			json_object_del(k->due, key);
	json_decref(deps);
	json_decref(rsets);
	json_decref(pods);
	json_decref(seen);
}

static long long
next_due(struct kube *k)
{
	long long best = 0, v;
	const char *key;
	json_t *d;

	json_object_foreach(k->due, key, d) {
		v = json_integer_value(d);
		if (best == 0 || v < best)
			best = v;
	}
	return best;
}

/* ---- the hook ------------------------------------------------------------------ */

/* Hand events after hook_rv to the hook, the lock released meanwhile. */
static void
deliver_hook(struct kube *k)
{
	struct kube_event batch[64];
	size_t n = 0, i;
	kube_hook_fn fn = k->hook;
	void *ctx = k->hook_ctx;

	if (fn == NULL) {
		k->hook_rv = k->rv;
		return;
	}
	if (k->hook_rv < k->ring_floor) {
		log_warn("kube: the hook fell behind; events up to %lld were not delivered",
			 k->ring_floor);
		k->hook_rv = k->ring_floor;
	}
	for (i = 0; i < k->ring_count && n < sizeof(batch) / sizeof(batch[0]); i++) {
		struct kube_event *e = &k->ring[(k->ring_head + i) % KUBE_RING];

		if (e->rv <= k->hook_rv)
			continue;
		batch[n] = *e;
		batch[n].obj = json_deep_copy(e->obj);
		n++;
		k->hook_rv = e->rv;
	}
	if (n == 0)
		return;
	pthread_mutex_unlock(&k->lock);
	for (i = 0; i < n; i++) {
		fn(ctx, k, batch[i].type, batch[i].key, batch[i].obj);
		json_decref(batch[i].obj);
	}
	pthread_mutex_lock(&k->lock);
}

/* ---- the thread ------------------------------------------------------------------- */

static void *
ctrl_main(void *arg)
{
	struct kube *k = arg;
	long long now, last_tick = 0, last_flush = 0, wake_at, due;
	struct timespec until;
	struct or_err err;

	pthread_mutex_lock(&k->lock);
	k->changed = 1;
	while (!k->stopping) {
		now = kube_mono_ms();
		due = next_due(k);
		if (k->changed || (due != 0 && due <= now)) {
			k->changed = 0;
			reconcile(k);
		}
		if (k->hook_rv < k->rv)
			deliver_hook(k);
		now = kube_mono_ms();
		if (now - last_tick >= TICK_MS) {
			last_tick = now;
			kube_watch_wake(k);
		}
		if (k->dirty && now - last_flush >= FLUSH_MS) {
			last_flush = now;
			pthread_mutex_unlock(&k->lock);
			if (kube_store_flush(k, &err) != OR_OK)
				log_warn("kube: %s", err.message);
			pthread_mutex_lock(&k->lock);
		}
		if (k->changed || k->hook_rv < k->rv)
			continue;
		wake_at = last_tick + TICK_MS;
		due = next_due(k);
		if (due != 0 && due < wake_at)
			wake_at = due;
		if (k->dirty && last_flush + FLUSH_MS < wake_at)
			wake_at = last_flush + FLUSH_MS;
		now = kube_mono_ms();
		if (wake_at <= now)
			continue;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += (wake_at - now) / 1000;
		until.tv_nsec += ((wake_at - now) % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&k->wake, &k->lock, &until);
	}
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

or_rc
kube_ctrl_start(struct kube *k, struct or_err *err)
{
	if (pthread_create(&k->ctrl, NULL, ctrl_main, k) != 0)
		return or_fail(err, OR_E_IO, NULL, NULL, "cannot start the controller thread");
	k->ctrl_started = 1;
	return OR_OK;
}

void
kube_ctrl_stop(struct kube *k)
{
	if (!k->ctrl_started)
		return;
	pthread_mutex_lock(&k->lock);
	k->stopping = 1;
	pthread_cond_broadcast(&k->wake);
	pthread_mutex_unlock(&k->lock);
	pthread_join(k->ctrl, NULL);
	k->ctrl_started = 0;
}

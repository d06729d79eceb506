/*
 * kube_write.c - the write path every change takes, from HTTP or from the
 * sandbox's C accessors: type and name checks, the namespace check, the
 * defaults a real API server and its admission plugins fill in,
 * resourceVersion conflicts, generation bumps, status kept apart from
 * spec, managedFields, finalizers and the deletion of namespaces and CRDs.
 * Lock held throughout (see kube_int.h).
 */
#include "kube_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "deployments.apps" or "pods": how messages name a resource. */
static const char *
qualified(const struct kube_res *res)
{
	return res->key;
}

or_rc
kube_fail_notfound(struct or_err *err, const struct kube_res *res, const char *name)
{
	return or_fail(err, OR_E_NOTFOUND, "not_found", NULL, "%s \"%s\" not found",
		       qualified(res), name);
}

/* ---- defaults and checks --------------------------------------------- */

static int
dns_name_ok(const struct kube_res *res, const char *name)
{
	const char *p;

	if (name[0] == '\0' || strlen(name) > 253)
		return 0;
	/* RBAC names are path segments ("system:aggregate-to-edit"). */
	if (strcmp(res->group, "rbac.authorization.k8s.io") == 0)
		return strchr(name, '/') == NULL && strchr(name, '%') == NULL &&
		       strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
	for (p = name; *p != '\0'; p++)
		if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' ||
		      *p == '.'))
			return 0;
	return isalnum((unsigned char)name[0]) && isalnum((unsigned char)p[-1]);
}

static void
set_default(json_t *obj, const char *key, json_t *v)
{
	if (json_object_get(obj, key) == NULL)
		json_object_set_new(obj, key, v);
	else
		json_decref(v);
}

json_t *
kube_sub_obj(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_object(v)) {
		v = json_object();
		json_object_set_new(obj, key, v);
	}
	return v;
}

static void
service_defaults(struct kube *k, json_t *svc, const json_t *old)
{
	json_t *spec = kube_sub_obj(svc, "spec"), *ports, *p, *op;
	const char *type, *cip;
	char ip[32];
	size_t i, j;
	int node_ports;

	set_default(spec, "type", json_string("ClusterIP"));
	type = kube_sget(spec, "type");
	set_default(spec, "sessionAffinity", json_string("None"));
	node_ports = strcmp(type, "NodePort") == 0 || strcmp(type, "LoadBalancer") == 0;
	ports = json_object_get(spec, "ports");
	json_array_foreach(ports, i, p) {
		set_default(p, "protocol", json_string("TCP"));
		if (json_object_get(p, "targetPort") == NULL && json_object_get(p, "port") != NULL)
			json_object_set(p, "targetPort", json_object_get(p, "port"));
		if (!node_ports || json_object_get(p, "nodePort") != NULL)
			continue;
		/* Keep the node port an update did not mention. */
		json_array_foreach(kube_jget(old, "spec.ports"), j, op) {
			if (json_equal(json_object_get(op, "port"), json_object_get(p, "port")) &&
			    json_object_get(op, "nodePort") != NULL) {
				json_object_set(p, "nodePort", json_object_get(op, "nodePort"));
				break;
			}
		}
		if (json_object_get(p, "nodePort") == NULL)
			json_object_set_new(p, "nodePort", json_integer(kube_alloc_node_port(k)));
	}
	if (strcmp(type, "ExternalName") == 0)
		return;
	cip = kube_sget(spec, "clusterIP");
	if (cip[0] == '\0' && kube_sget(old, "spec.clusterIP")[0] != '\0')
		json_object_set(spec, "clusterIP", kube_jget(old, "spec.clusterIP"));
	else if (cip[0] == '\0' && kube_alloc_cluster_ip(k, ip, sizeof(ip)) == 0)
		json_object_set_new(spec, "clusterIP", json_string(ip));
	cip = kube_sget(spec, "clusterIP");
	if (json_object_get(spec, "clusterIPs") == NULL && cip[0] != '\0')
		json_object_set_new(spec, "clusterIPs", json_pack("[s]", cip));
	set_default(spec, "ipFamilies", json_pack("[s]", "IPv4"));
	set_default(spec, "ipFamilyPolicy", json_string("SingleStack"));
	set_default(spec, "internalTrafficPolicy", json_string("Cluster"));
	if (node_ports)
		set_default(spec, "externalTrafficPolicy", json_string("Cluster"));
}

static void
pod_spec_defaults(json_t *spec)
{
	json_t *c;
	size_t i;
	const char *img, *colon;

	if (!json_is_object(spec))
		return;
	set_default(spec, "restartPolicy", json_string("Always"));
	set_default(spec, "dnsPolicy", json_string("ClusterFirst"));
	set_default(spec, "schedulerName", json_string("default-scheduler"));
	set_default(spec, "terminationGracePeriodSeconds", json_integer(30));
	json_array_foreach(json_object_get(spec, "containers"), i, c) {
		img = kube_sget(c, "image");
		colon = strrchr(img, ':');
		set_default(c, "imagePullPolicy",
			    json_string(colon == NULL || strchr(colon, '/') != NULL ||
						strcmp(colon, ":latest") == 0
					? "Always"
					: "IfNotPresent"));
		set_default(c, "terminationMessagePath", json_string("/dev/termination-log"));
		set_default(c, "terminationMessagePolicy", json_string("File"));
	}
}

static void
crd_status(json_t *crd)
{
	char now[32];
	json_t *st = kube_sub_obj(crd, "status"), *stored, *v;
	size_t i;

	kube_now_rfc3339(now, sizeof(now));
	json_object_set_new(st, "acceptedNames", json_deep_copy(kube_jget(crd, "spec.names")));
	json_object_set_new(st, "conditions",
			    json_pack("[{s:s,s:s,s:s,s:s,s:s},{s:s,s:s,s:s,s:s,s:s}]", "type",
				      "NamesAccepted", "status", "True", "reason", "NoConflicts",
				      "message", "no conflicts found", "lastTransitionTime", now,
				      "type", "Established", "status", "True", "reason",
				      "InitialNamesAccepted", "message",
				      "the initial names have been accepted",
				      "lastTransitionTime", now));
	stored = json_object_get(st, "storedVersions");
	if (!json_is_array(stored)) {
		stored = json_array();
		json_object_set_new(st, "storedVersions", stored);
	}
	json_array_foreach(kube_jget(crd, "spec.versions"), i, v) {
		size_t j;
		json_t *s;
		int have = 0;

		if (!json_is_true(json_object_get(v, "storage")))
			continue;
		json_array_foreach(stored, j, s)
			if (json_equal(s, json_object_get(v, "name")))
				have = 1;
		if (!have)
			json_array_append(stored, json_object_get(v, "name"));
	}
}

static void
secret_defaults(json_t *s)
{
	json_t *sd = json_object_get(s, "stringData"), *data, *v;
	const char *key;
	struct buf b;

	set_default(s, "type", json_string("Opaque"));
	if (!json_is_object(sd))
		return;
	data = kube_sub_obj(s, "data");
	buf_init(&b, KUBE_BODY_MAX * 2);
	json_object_foreach(sd, key, v) {
		const char *str = json_string_value(v);

		buf_reset(&b);
		if (str == NULL)
			continue;
		kube_base64(&b, (const unsigned char *)str, strlen(str), 0);
		json_object_set_new(data, key, json_string(buf_str(&b)));
	}
	buf_free(&b);
	json_object_del(s, "stringData");
}

/* Typed decoding turns JSON nulls into absent fields (Go's omitempty on
 * the way out): "creationTimestamp: null" in a pod template must not make
 * its hash differ from the same template without it. */
static void
strip_nulls(json_t *v)
{
	const char *key;
	json_t *x;
	void *tmp;
	size_t i;

	if (json_is_object(v)) {
		json_object_foreach_safe(v, tmp, key, x) {
			if (json_is_null(x))
				json_object_del(v, key);
			else
				strip_nulls(x);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			strip_nulls(x);
	}
}

/* What the API server (and its admission plugins) fill in; old is the
 * stored object on updates, NULL on create. */
static void
defaults(struct kube *k, const struct kube_res *res, json_t *obj, const json_t *old)
{
	json_t *meta, *spec;

	strip_nulls(obj);
	meta = kube_meta(obj);
	if (strcmp(res->key, "namespaces") == 0) {
		spec = kube_sub_obj(obj, "spec");
		set_default(spec, "finalizers", json_pack("[s]", "kubernetes"));
		json_object_set_new(kube_sub_obj(meta, "labels"), "kubernetes.io/metadata.name",
				    json_string(kube_sget(meta, "name")));
	} else if (strcmp(res->key, "services") == 0) {
		service_defaults(k, obj, old);
	} else if (strcmp(res->key, "deployments.apps") == 0) {
		spec = kube_sub_obj(obj, "spec");
		set_default(spec, "replicas", json_integer(1));
		set_default(spec, "revisionHistoryLimit", json_integer(10));
		set_default(spec, "progressDeadlineSeconds", json_integer(600));
		set_default(spec, "strategy",
			    json_pack("{s:s, s:{s:s, s:s}}", "type", "RollingUpdate",
				      "rollingUpdate", "maxSurge", "25%", "maxUnavailable", "25%"));
	} else if (strcmp(res->key, "replicasets.apps") == 0) {
		set_default(kube_sub_obj(obj, "spec"), "replicas", json_integer(1));
	} else if (strcmp(res->key, "pods") == 0) {
		spec = kube_sub_obj(obj, "spec");
		set_default(spec, "serviceAccountName", json_string("default"));
		set_default(spec, "serviceAccount", json_string(kube_sget(spec, "serviceAccountName")));
		pod_spec_defaults(spec);
	} else if (strcmp(res->key, "secrets") == 0) {
		secret_defaults(obj);
	} else if (strcmp(res->key, "customresourcedefinitions.apiextensions.k8s.io") == 0) {
		crd_status(obj);
	}
}

static void
managed_fields(json_t *obj, const struct kube_res *res, const struct kube_wopts *o)
{
	json_t *mf, *e, *fresh;
	char now[32], gv[160];
	size_t i;

	if (o == NULL || o->field_manager == NULL || o->field_manager[0] == '\0')
		return;
	kube_now_rfc3339(now, sizeof(now));
	kube_res_gv(res, gv, sizeof(gv));
	mf = json_object_get(kube_meta(obj), "managedFields");
	if (!json_is_array(mf)) {
		mf = json_array();
		json_object_set_new(kube_meta(obj), "managedFields", mf);
	}
	fresh = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{}}", "manager", o->field_manager,
			  "operation", o->op != NULL ? o->op : "Update", "apiVersion", gv,
			  "time", now, "fieldsType", "FieldsV1", "fieldsV1");
	if (o->sub != NULL && o->sub[0] != '\0')
		json_object_set_new(fresh, "subresource", json_string(o->sub));
	json_array_foreach(mf, i, e) {
		if (strcmp(kube_sget(e, "manager"), o->field_manager) == 0 &&
		    strcmp(kube_sget(e, "operation"), kube_sget(fresh, "operation")) == 0 &&
		    strcmp(kube_sget(e, "subresource"), kube_sget(fresh, "subresource")) == 0) {
			json_array_set_new(mf, i, fresh);
			return;
		}
	}
	json_array_append_new(mf, fresh);
}

/* The namespace a namespaced write goes to must exist and be Active. */
static or_rc
check_namespace(struct kube *k, const char *ns, int creating, struct or_err *err)
{
	json_t *n = kube_obj_get(k, "namespaces", "", ns);

	if (n == NULL)
		return or_fail(err, OR_E_NOTFOUND, "not_found", NULL,
			       "namespaces \"%s\" not found", ns);
	if (creating && strcmp(kube_sget(n, "status.phase"), "Terminating") == 0)
		return or_fail(err, OR_E_INVALID, "forbidden", NULL,
			       "unable to create new content in namespace %s because it is being terminated",
			       ns);
	return OR_OK;
}

/* apiVersion/kind of a body must be those of the path (when given). */
static or_rc
check_type(const struct kube_res *res, json_t *obj, struct or_err *err)
{
	char gv[160];
	const char *av = kube_sget(obj, "apiVersion"), *kind = kube_sget(obj, "kind");

	kube_res_gv(res, gv, sizeof(gv));
	if (av[0] != '\0' && strcmp(av, gv) != 0)
		return or_fail(err, OR_E_MALFORMED, "bad_request", "apiVersion",
			       "the API version in the data (%s) does not match the expected API version (%s)",
			       av, gv);
	if (kind[0] != '\0' && strcmp(kind, res->kind) != 0)
		return or_fail(err, OR_E_MALFORMED, "bad_request", "kind",
			       "the kind in the data (%s) does not match the expected kind (%s)",
			       kind, res->kind);
	json_object_set_new(obj, "apiVersion", json_string(gv));
	json_object_set_new(obj, "kind", json_string(res->kind));
	return OR_OK;
}

/* ---- writes ---------------------------------------------------------- */

or_rc
kube_do_create(struct kube *k, const struct kube_res *res, const char *ns, json_t *obj,
	       const struct kube_wopts *o, json_t **out, struct or_err *err)
{
	json_t *meta;
	const char *name, *gen, *ons;
	char uid[40], now[32], nm[300], sfx[6];
	or_rc rc;

	if (!json_is_object(obj)) {
		rc = or_fail(err, OR_E_MALFORMED, "bad_request", NULL,
			     "the body of the request was in an unknown format");
		goto out;
	}
	rc = check_type(res, obj, err);
	if (rc != OR_OK)
		goto out;
	meta = kube_meta(obj);
	name = kube_sget(meta, "name");
	gen = kube_sget(meta, "generateName");
	if (name[0] == '\0' && gen[0] != '\0') {
		kube_rand_suffix(sfx, sizeof(sfx));
		snprintf(nm, sizeof(nm), "%s%s", gen, sfx);
		json_object_set_new(meta, "name", json_string(nm));
		name = kube_sget(meta, "name");
	}
	if (!dns_name_ok(res, name)) {
		rc = or_fail(err, OR_E_INVALID, "invalid", "metadata.name",
			     "%s \"%s\" is invalid: metadata.name: %s", res->kind, name,
			     name[0] == '\0' ? "Required value: name or generateName is required"
					     : "Invalid value: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'");
		goto out;
	}
	if (res->flags & KR_NAMESPACED) {
		ons = kube_sget(meta, "namespace");
		if (ns == NULL || ns[0] == '\0')
			ns = ons[0] != '\0' ? ons : "default";
		if (ons[0] != '\0' && strcmp(ons, ns) != 0) {
			rc = or_fail(err, OR_E_MALFORMED, "bad_request", "metadata.namespace",
				     "the namespace of the provided object does not match the namespace sent on the request");
			goto out;
		}
		json_object_set_new(meta, "namespace", json_string(ns));
		rc = check_namespace(k, ns, 1, err);
		if (rc != OR_OK)
			goto out;
	} else {
		json_object_del(meta, "namespace");
		ns = "";
	}
	if (kube_obj_get(k, res->key, ns, name) != NULL) {
		rc = or_fail(err, OR_E_CONFLICT, "already_exists", NULL,
			     "%s \"%s\" already exists", qualified(res), name);
		goto out;
	}
	kube_uid(uid, sizeof(uid));
	kube_now_rfc3339(now, sizeof(now));
	json_object_set_new(meta, "uid", json_string(uid));
	json_object_set_new(meta, "creationTimestamp", json_string(now));
	json_object_del(meta, "resourceVersion");
	json_object_del(meta, "deletionTimestamp");
	json_object_del(meta, "managedFields");
	json_object_del(meta, "selfLink");
	if (res->flags & KR_GENERATION)
		json_object_set_new(meta, "generation", json_integer(1));
	else
		json_object_del(meta, "generation");
	if (res->flags & KR_STATUS)
		json_object_del(obj, "status");
	defaults(k, res, obj, NULL);
	kube_ctrl_initial_status(k, res, obj);
	if (strcmp(res->key, "pods") == 0)
		kube_ctrl_inject(k, obj);
	managed_fields(obj, res, o);
	if (o != NULL && o->dry_run) {
		/* Handed back, never stored. */
		if (out != NULL)
			*out = obj;
		else
			json_decref(obj);
		return OR_OK;
	}
	obj = kube_obj_put(k, res->key, obj, KUBE_ADDED);
	if (out != NULL)
		*out = json_incref(obj);
	return OR_OK;
out:
	json_decref(obj);
	return rc;
}

/* Spec-ish content: everything but metadata and status. */
static int
same_content(const json_t *a, const json_t *b)
{
	json_t *x = json_deep_copy(a), *y = json_deep_copy(b);
	int eq;

	json_object_del(x, "metadata");
	json_object_del(x, "status");
	json_object_del(y, "metadata");
	json_object_del(y, "status");
	eq = json_equal(x, y);
	json_decref(x);
	json_decref(y);
	return eq;
}

/* Equal but for resourceVersion and managedFields: a no-op write. */
static int
same_object(const json_t *a, const json_t *b)
{
	json_t *x = json_deep_copy(a), *y = json_deep_copy(b);
	int eq;

	json_object_del(kube_meta(x), "resourceVersion");
	json_object_del(kube_meta(y), "resourceVersion");
	json_object_del(kube_meta(x), "managedFields");
	json_object_del(kube_meta(y), "managedFields");
	eq = json_equal(x, y);
	json_decref(x);
	json_decref(y);
	return eq;
}

or_rc
kube_do_update(struct kube *k, const struct kube_res *res, const char *ns,
	       const char *name, json_t *obj, const struct kube_wopts *o, json_t **out,
	       struct or_err *err)
{
	json_t *old, *meta, *ometa, *fin;
	const char *sub = o != NULL && o->sub != NULL ? o->sub : "";
	const char *rv, *keep[] = {"uid", "creationTimestamp", "deletionTimestamp",
				   "generation", "managedFields"};
	size_t i;
	or_rc rc;

	if (!(res->flags & KR_NAMESPACED))
		ns = "";
	old = kube_obj_get(k, res->key, ns, name);
	if (old == NULL) {
		rc = kube_fail_notfound(err, res, name);
		goto out;
	}
	if (!json_is_object(obj)) {
		rc = or_fail(err, OR_E_MALFORMED, "bad_request", NULL,
			     "the body of the request was in an unknown format");
		goto out;
	}
	rc = check_type(res, obj, err);
	if (rc != OR_OK)
		goto out;
	meta = kube_meta(obj);
	ometa = json_object_get(old, "metadata");
	if (kube_sget(meta, "name")[0] != '\0' && strcmp(kube_sget(meta, "name"), name) != 0) {
		rc = or_fail(err, OR_E_MALFORMED, "bad_request", "metadata.name",
			     "the name of the object (%s) does not match the name on the URL (%s)",
			     kube_sget(meta, "name"), name);
		goto out;
	}
	rv = kube_sget(meta, "resourceVersion");
	if (rv[0] != '\0' && strcmp(rv, kube_sget(ometa, "resourceVersion")) != 0) {
		rc = or_fail(err, OR_E_CONFLICT, "conflict", NULL,
			     "Operation cannot be fulfilled on %s \"%s\": the object has been modified; please apply your changes to the latest version and try again",
			     qualified(res), name);
		goto out;
	}
	json_object_set_new(meta, "name", json_string(name));
	if (res->flags & KR_NAMESPACED)
		json_object_set_new(meta, "namespace", json_string(ns));
	else
		json_object_del(meta, "namespace");
	for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		if (json_object_get(ometa, keep[i]) != NULL)
			json_object_set_new(meta, keep[i],
					    json_deep_copy(json_object_get(ometa, keep[i])));
		else
			json_object_del(meta, keep[i]);
	}
	if (strcmp(sub, "status") == 0) {
		/* Only the status changes through /status. */
		json_t *st = json_incref(json_object_get(obj, "status"));

		json_decref(obj);
		obj = json_deep_copy(old);
		if (st != NULL)
			json_object_set_new(obj, "status", st);
	} else if ((res->flags & KR_STATUS) && !(o != NULL && o->op != NULL &&
						 strcmp(o->op, "Controller") == 0)) {
		if (json_object_get(old, "status") != NULL)
			json_object_set_new(obj, "status",
					    json_deep_copy(json_object_get(old, "status")));
		else
			json_object_del(obj, "status");
	}
	defaults(k, res, obj, old);
	if ((res->flags & KR_GENERATION) && !same_content(old, obj))
		json_object_set_new(kube_meta(obj), "generation",
				    json_integer(json_integer_value(json_object_get(ometa, "generation")) + 1));
	if (same_object(old, obj)) {
		json_decref(obj);
		if (out != NULL)
			*out = json_incref(old);
		return OR_OK;
	}
	managed_fields(obj, res, o);
	if (o != NULL && o->dry_run) {
		if (out != NULL)
			*out = obj;
		else
			json_decref(obj);
		return OR_OK;
	}
	/* A deleted object waits for its finalizers; the last one gone ends it. */
	fin = kube_jget(obj, "metadata.finalizers");
	if (kube_jget(obj, "metadata.deletionTimestamp") != NULL &&
	    strcmp(res->key, "namespaces") != 0 && json_array_size(fin) == 0) {
		json_t *last = json_incref(obj);

		kube_obj_put(k, res->key, obj, KUBE_MODIFIED);
		kube_obj_remove(k, res->key, ns, name);
		if (out != NULL)
			*out = last;
		else
			json_decref(last);
		return OR_OK;
	}
	obj = kube_obj_put(k, res->key, obj, KUBE_MODIFIED);
	if (out != NULL)
		*out = json_incref(obj);
	return OR_OK;
out:
	json_decref(obj);
	return rc;
}

or_rc
kube_do_delete(struct kube *k, const struct kube_res *res, const char *ns,
	       const char *name, json_t **out, struct or_err *err)
{
	json_t *old, *obj;
	char now[32];

	*out = NULL;
	if (!(res->flags & KR_NAMESPACED))
		ns = "";
	old = kube_obj_get(k, res->key, ns, name);
	if (old == NULL)
		return kube_fail_notfound(err, res, name);
	kube_now_rfc3339(now, sizeof(now));
	if (strcmp(res->key, "namespaces") == 0 ||
	    json_array_size(kube_jget(old, "metadata.finalizers")) > 0) {
		/* Namespaces terminate in the controller; finalized objects
		 * wait for whoever holds the finalizer. */
		if (kube_jget(old, "metadata.deletionTimestamp") != NULL) {
			*out = json_incref(old);
			return OR_OK;
		}
		obj = json_deep_copy(old);
		json_object_set_new(kube_meta(obj), "deletionTimestamp", json_string(now));
		json_object_set_new(kube_meta(obj), "deletionGracePeriodSeconds", json_integer(0));
		if (strcmp(res->key, "namespaces") == 0)
			json_object_set_new(kube_sub_obj(obj, "status"), "phase",
					    json_string("Terminating"));
		*out = json_incref(kube_obj_put(k, res->key, obj, KUBE_MODIFIED));
		return OR_OK;
	}
	obj = json_deep_copy(old);
	json_object_set_new(kube_meta(obj), "deletionTimestamp", json_string(now));
	if (strcmp(res->key, "customresourcedefinitions.apiextensions.k8s.io") == 0) {
		/* Its objects go with it. */
		const char *key, *cr_key = NULL;
		char buf[KUBE_KEY_MAX];
		json_t *bucket, *o, *copy;
		void *tmp;

		snprintf(buf, sizeof(buf), "%s.%s", kube_sget(old, "spec.names.plural"),
			 kube_sget(old, "spec.group"));
		cr_key = buf;
		bucket = kube_obj_bucket(k, cr_key);
		copy = json_deep_copy(bucket);
		json_object_foreach_safe(copy, tmp, key, o)
			kube_obj_remove(k, cr_key, kube_sget(o, "metadata.namespace"),
					kube_sget(o, "metadata.name"));
		json_decref(copy);
	}
	kube_obj_remove(k, res->key, ns, name);
	*out = obj;
	return OR_OK;
}

/*
 * kube_api.c - the Kubernetes REST verbs: routing of /api and /apis paths,
 * get, list, watch, create, update, patch, delete, the subresources
 * (status, serviceaccount token, scale, pod log), and Status error bodies.
 *
 * The write path itself is kube_write.c.
 *
 * Everything runs under k->lock, taken once per request in kube_handle:
 * a request sees and leaves a consistent store, and nothing here waits on
 * anything but memory.  The HTTP status of an error is chosen in exactly
 * one place, status_of() (Kubernetes has its own reasons, so the table
 * is this protocol's, not or_rc_http_status's).
 */
#include "kube_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEGS_MAX 12

/* ---- Status errors --------------------------------------------------- */

static const struct {
	const char *code;	/* or_err.code */
	int http;
	const char *reason;
} reasons[] = {
	{"already_exists", 409, "AlreadyExists"},
	{"conflict", 409, "Conflict"},
	{"forbidden", 403, "Forbidden"},
	{"gone", 410, "Expired"},
	{"not_found", 404, "NotFound"},
	{"invalid", 422, "Invalid"},
	{"bad_request", 400, "BadRequest"},
	{"malformed", 400, "BadRequest"},
	{"method_not_allowed", 405, "MethodNotAllowed"},
	{"too_large", 413, "RequestEntityTooLarge"},
	{"unsupported_media_type", 415, "UnsupportedMediaType"},
	{"not_acceptable", 406, "NotAcceptable"},
	{"unauthorized", 401, "Unauthorized"},
};

static void
status_of(const struct or_err *err, int *http, const char **reason)
{
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		if (strcmp(err->code, reasons[i].code) == 0) {
			*http = reasons[i].http;
			*reason = reasons[i].reason;
			return;
		}
	}
	*http = or_rc_http_status(err->rc);
	*reason = *http == 500 ? "InternalError" : "BadRequest";
}

static void
set_json(struct kube_resp *resp, int status, json_t *body)
{
	resp->status = status;
	resp->body = json_dumps(body, JSON_COMPACT);
	resp->len = resp->body != NULL ? strlen(resp->body) : 0;
	resp->ctype = "application/json";
	json_decref(body);
	if (resp->body == NULL)
		resp->status = 500;
}

/* A Status body for err; res and name (may be NULL) fill its details. */
static void
set_status(struct kube_resp *resp, const struct or_err *err, const struct kube_res *res,
	   const char *name)
{
	json_t *st, *details;
	const char *reason;
	int http;

	status_of(err, &http, &reason);
	details = json_object();
	if (name != NULL && name[0] != '\0')
		json_object_set_new(details, "name", json_string(name));
	if (res != NULL) {
		json_object_set_new(details, "group", json_string(res->group));
		json_object_set_new(details, "kind", json_string(res->plural));
	}
	st = json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:o, s:i}", "kind", "Status",
		       "apiVersion", "v1", "metadata", "status", "Failure", "message",
		       err->message, "reason", reason, "details", details, "code", http);
	set_json(resp, http, st);
}

const char *
kube_q(const struct kube_req *req, const char *key)
{
	return req->query != NULL ? req->query(req->qctx, key) : NULL;
}

/* ---- reading --------------------------------------------------------- */

/* A copy of a stored object as served at res's version (CRDs may serve
 * several versions of one stored object). */
static json_t *
served(const struct kube_res *res, const json_t *obj)
{
	char gv[160];
	json_t *c;

	kube_res_gv(res, gv, sizeof(gv));
	if (strcmp(kube_sget(obj, "apiVersion"), gv) == 0)
		return json_incref((json_t *)obj);
	c = json_deep_copy(obj);
	json_object_set_new(c, "apiVersion", json_string(gv));
	return c;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The matching objects, sorted by namespace/name as etcd returns them. */
json_t *
kube_select(struct kube *k, const struct kube_res *res, const char *ns,
	     const json_t *sel, const json_t *fsel)
{
	json_t *bucket = kube_obj_bucket(k, res->key), *items = json_array(), *o;
	const char **keys;
	const char *key;
	size_t n = 0, i;

	keys = malloc((json_object_size(bucket) + 1) * sizeof(*keys));
	if (keys == NULL || items == NULL) {
		free(keys);
		return items;
	}
	json_object_foreach(bucket, key, o)
		keys[n++] = key;
	qsort(keys, n, sizeof(*keys), cmp_str);
	for (i = 0; i < n; i++) {
		o = json_object_get(bucket, keys[i]);
		if (ns != NULL && ns[0] != '\0' && strcmp(kube_sget(o, "metadata.namespace"), ns) != 0)
			continue;
		if (!kube_sel_match(sel, o, 0) || !kube_sel_match(fsel, o, 1))
			continue;
		json_array_append_new(items, served(res, o));
	}
	free(keys);
	return items;
}

static int
wants_table(const struct kube_req *req)
{
	return req->accept != NULL && strstr(req->accept, "as=Table") != NULL;
}

static void
do_list(struct kube *k, const struct kube_req *req, const struct kube_res *res,
	const char *ns, struct kube_resp *resp)
{
	json_t *sel = NULL, *fsel = NULL, *items, *list;
	const char *w = kube_q(req, "watch"), *rvq = kube_q(req, "resourceVersion");
	const char *to = kube_q(req, "timeoutSeconds");
	struct or_err err;
	char gv[160], kind[200], rvs[32];
	or_rc rc;

	rc = kube_sel_parse(kube_q(req, "labelSelector"), 0, &sel, &err);
	if (rc == OR_OK)
		rc = kube_sel_parse(kube_q(req, "fieldSelector"), 1, &fsel, &err);
	if (rc != OR_OK)
		goto fail;
	if (w != NULL && (strcmp(w, "true") == 0 || strcmp(w, "1") == 0)) {
		rc = kube_watch_new(k, res, ns, rvq != NULL ? strtoll(rvq, NULL, 10) : 0, sel,
				    fsel, wants_table(req), to != NULL ? atoll(to) : 0,
				    &resp->watch, &err);
		if (rc != OR_OK)
			goto fail;
		resp->status = 200;
		resp->ctype = "application/json";
		goto out;
	}
	items = kube_select(k, res, ns, sel, fsel);
	if (wants_table(req)) {
		set_json(resp, 200, kube_table(k, res, items, k->rv));
		json_decref(items);
		goto out;
	}
	kube_res_gv(res, gv, sizeof(gv));
	snprintf(kind, sizeof(kind), "%sList", res->kind);
	snprintf(rvs, sizeof(rvs), "%lld", k->rv);
	list = json_pack("{s:s, s:s, s:{s:s}, s:o}", "kind", kind, "apiVersion", gv,
			 "metadata", "resourceVersion", rvs, "items", items);
	set_json(resp, 200, list);
	goto out;
fail:
	set_status(resp, &err, res, NULL);
out:
	json_decref(sel);
	json_decref(fsel);
}

/* ---- bodies ---------------------------------------------------------- */

static int
ctype_is(const char *ct, const char *want)
{
	size_t n = strlen(want);

	return ct != NULL && strncasecmp(ct, want, n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static or_rc
parse_body(const struct kube_req *req, json_t **out, struct or_err *err)
{
	json_error_t jerr;
	const char *ct = req->content_type;

	*out = NULL;
	if (ctype_is(ct, "application/vnd.kubernetes.protobuf"))
		return kube_pb_decode(req->body, req->body_len, out, err);
	if (ctype_is(ct, "application/yaml") || ctype_is(ct, "application/apply-patch+yaml"))
		return kube_yaml_parse(req->body, req->body_len, out, err);
	if (ct != NULL && !ctype_is(ct, "application/json") &&
	    !ctype_is(ct, "application/merge-patch+json") &&
	    !ctype_is(ct, "application/strategic-merge-patch+json") &&
	    !ctype_is(ct, "application/json-patch+json"))
		return or_fail(err, OR_E_MEDIATYPE, "unsupported_media_type", NULL,
			       "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf");
	*out = json_loadb(req->body, req->body_len, JSON_DECODE_ANY, &jerr);
	if (*out == NULL)
		return or_fail(err, OR_E_MALFORMED, "bad_request", NULL,
			       "couldn't get version/kind; json parse error: %s", jerr.text);
	return OR_OK;
}

static void
wopts(const struct kube_req *req, struct kube_wopts *o, const char *sub, const char *op)
{
	const char *dry = kube_q(req, "dryRun");

	memset(o, 0, sizeof(*o));
	o->field_manager = kube_q(req, "fieldManager");
	o->dry_run = dry != NULL && strcmp(dry, "All") == 0;
	o->sub = sub;
	o->op = op;
}

/* Answer obj (borrowed) at status. */
static void
answer_obj(struct kube_resp *resp, int status, const struct kube_res *res, const json_t *obj)
{
	set_json(resp, status, served(res, obj));
}

static void
do_patch(struct kube *k, const struct kube_req *req, const struct kube_res *res,
	 const char *ns, const char *name, const char *sub, struct kube_resp *resp)
{
	const char *ct = req->content_type;
	json_t *patch = NULL, *old, *result = NULL, *stored = NULL;
	struct kube_wopts o;
	struct or_err err;
	int apply = ctype_is(ct, "application/apply-patch+yaml");
	or_rc rc;

	if (!apply && !ctype_is(ct, "application/merge-patch+json") &&
	    !ctype_is(ct, "application/strategic-merge-patch+json") &&
	    !ctype_is(ct, "application/json-patch+json")) {
		rc = or_fail(&err, OR_E_MEDIATYPE, "unsupported_media_type", NULL,
			     "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json");
		goto fail;
	}
	wopts(req, &o, sub, apply ? "Apply" : "Update");
	if (apply && (o.field_manager == NULL || o.field_manager[0] == '\0')) {
		rc = or_fail(&err, OR_E_INVALID, "invalid", "fieldManager",
			     "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch");
		goto fail;
	}
	rc = parse_body(req, &patch, &err);
	if (rc != OR_OK)
		goto fail;
	if (strcmp(res->key, "customresourcedefinitions.apiextensions.k8s.io") != 0 &&
	    (res->flags & KR_CRD) && ctype_is(ct, "application/strategic-merge-patch+json")) {
		rc = or_fail(&err, OR_E_MEDIATYPE, "unsupported_media_type", NULL,
			     "strategic merge patch is not supported for custom resources; use merge-patch");
		goto fail;
	}
	old = kube_obj_get(k, res->key, (res->flags & KR_NAMESPACED) ? ns : "", name);
	if (old == NULL && apply && sub[0] == '\0') {
		if (kube_sget(patch, "metadata.name")[0] != '\0' &&
		    strcmp(kube_sget(patch, "metadata.name"), name) != 0) {
			rc = or_fail(&err, OR_E_MALFORMED, "bad_request", "metadata.name",
				     "the name of the object (%s) does not match the name on the URL (%s)",
				     kube_sget(patch, "metadata.name"), name);
			goto fail;
		}
		json_object_set_new(kube_meta(patch), "name", json_string(name));
		rc = kube_do_create(k, res, ns, patch, &o, &stored, &err);
		patch = NULL;
		if (rc != OR_OK)
			goto fail;
		answer_obj(resp, 201, res, stored);
		json_decref(stored);
		return;
	}
	if (old == NULL) {
		rc = kube_fail_notfound(&err, res, name);
		goto fail;
	}
	if (ctype_is(ct, "application/json-patch+json"))
		rc = kube_json_patch(old, patch, &result, &err);
	else if (ctype_is(ct, "application/merge-patch+json") || (apply && (res->flags & KR_CRD)))
		rc = kube_merge_patch(old, patch, &result, &err);
	else
		rc = kube_smp(old, patch, &result, &err);
	if (rc != OR_OK)
		goto fail;
	/* A patch that names no resourceVersion must not conflict. */
	if (json_object_get(kube_jget(patch, "metadata"), "resourceVersion") == NULL)
		json_object_set(kube_meta(result), "resourceVersion",
				kube_jget(old, "metadata.resourceVersion"));
	rc = kube_do_update(k, res, ns, name, result, &o, &stored, &err);
	result = NULL;
	if (rc != OR_OK)
		goto fail;
	answer_obj(resp, 200, res, stored);
	json_decref(stored);
	json_decref(patch);
	return;
fail:
	json_decref(patch);
	json_decref(result);
	set_status(resp, &err, res, name);
}

/* ---- serviceaccounts/NAME/token -------------------------------------- */

static void
do_token(struct kube *k, const struct kube_req *req, const struct kube_res *res,
	 const char *ns, const char *name, struct kube_resp *resp)
{
	json_t *sa, *tr = NULL, *aud, *claims;
	struct or_err err;
	struct buf tok;
	char *payload = NULL, exp_s[32];
	long long secs;
	time_t now = time(NULL), exp_t;
	struct tm tm;
	or_rc rc;

	sa = kube_obj_get(k, "serviceaccounts", ns, name);
	if (sa == NULL) {
		rc = kube_fail_notfound(&err, res, name);
		goto fail;
	}
	rc = parse_body(req, &tr, &err);
	if (rc != OR_OK)
		goto fail;
	if (!json_is_object(tr)) {
		rc = or_fail(&err, OR_E_MALFORMED, "bad_request", NULL, "a TokenRequest is expected");
		goto fail;
	}
	secs = json_integer_value(kube_jget(tr, "spec.expirationSeconds"));
	if (secs <= 0)
		secs = 3600;
	aud = kube_jget(tr, "spec.audiences");
	if (json_array_size(aud) == 0) {
		json_t *spec = kube_sub_obj(tr, "spec");

		json_object_set_new(spec, "audiences", json_pack("[s]", "https://kubernetes.default.svc"));
		aud = json_object_get(spec, "audiences");
	}
	json_object_set_new(kube_sub_obj(tr, "spec"), "expirationSeconds", json_integer(secs));
	exp_t = now + (time_t)secs;
	gmtime_r(&exp_t, &tm);
	strftime(exp_s, sizeof(exp_s), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* A JWT in shape; its signature means nothing (the sandbox's own
	 * auth callback decides what it accepts). */
	claims = json_pack("{s:O, s:I, s:I, s:s, s:s, s:{s:s, s:{s:s, s:s}}}", "aud", aud, "exp",
			   (json_int_t)exp_t, "iat", (json_int_t)now, "iss",
			   "https://kubernetes.default.svc.cluster.local", "sub", "",
			   "kubernetes.io", "namespace", ns, "serviceaccount", "name", name,
			   "uid", kube_sget(sa, "metadata.uid"));
	{
		char sub[600];

		snprintf(sub, sizeof(sub), "system:serviceaccount:%s:%s", ns, name);
		json_object_set_new(claims, "sub", json_string(sub));
	}
	payload = json_dumps(claims, JSON_COMPACT);
	json_decref(claims);
	buf_init(&tok, 64 * 1024);
	kube_base64(&tok, (const unsigned char *)"{\"alg\":\"HS256\",\"kid\":\"sandbox\"}", 31, 1);
	buf_append_str(&tok, ".");
	if (payload != NULL)
		kube_base64(&tok, (const unsigned char *)payload, strlen(payload), 1);
	/* Signed with the cluster's own key, so kube_token_review can tell
	 * the tokens this API issued from any other string. */
	kube_token_sign(k, buf_str(&tok), tok.len, &tok);
	json_object_set_new(tr, "status", json_pack("{s:s, s:s}", "token", buf_str(&tok),
						    "expirationTimestamp", exp_s));
	json_object_set_new(tr, "apiVersion", json_string("authentication.k8s.io/v1"));
	json_object_set_new(tr, "kind", json_string("TokenRequest"));
	json_object_set_new(kube_meta(tr), "name", json_string(name));
	json_object_set_new(kube_meta(tr), "namespace", json_string(ns));
	buf_free(&tok);
	free(payload);
	set_json(resp, 201, tr);
	return;
fail:
	json_decref(tr);
	set_status(resp, &err, res, name);
}

/* ---- scale and log subresources --------------------------------------- */

static json_t *
scale_of(const json_t *obj)
{
	const char *key;
	json_t *v, *ml = kube_jget(obj, "spec.selector.matchLabels");
	struct buf sel;
	json_t *s;

	buf_init(&sel, 64 * 1024);
	json_object_foreach(ml, key, v)
		buf_printf(&sel, "%s%s=%s", sel.len > 0 ? "," : "", key, json_string_value(v));
	s = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s}, s:{s:I}, s:{s:I, s:s}}", "kind",
		      "Scale", "apiVersion", "autoscaling/v1", "metadata", "name",
		      kube_sget(obj, "metadata.name"), "namespace", kube_sget(obj, "metadata.namespace"),
		      "uid", kube_sget(obj, "metadata.uid"), "resourceVersion",
		      kube_sget(obj, "metadata.resourceVersion"), "creationTimestamp",
		      kube_sget(obj, "metadata.creationTimestamp"), "spec", "replicas",
		      json_integer_value(kube_jget(obj, "spec.replicas")), "status", "replicas",
		      json_integer_value(kube_jget(obj, "status.replicas")), "selector", buf_str(&sel));
	buf_free(&sel);
	return s;
}

/* GET, PUT or PATCH .../scale: the object's spec.replicas seen as a Scale. */
static void
do_scale(struct kube *k, const struct kube_req *req, const struct kube_res *res,
	 const char *ns, const char *name, struct kube_resp *resp)
{
	const char *m = req->method, *ct = req->content_type, *rv;
	json_t *obj = kube_obj_get(k, res->key, ns, name), *scale = NULL, *in = NULL;
	json_t *out = NULL, *upd, *stored = NULL;
	struct kube_wopts o;
	struct or_err err;
	or_rc rc;

	if (obj == NULL) {
		rc = kube_fail_notfound(&err, res, name);
		goto fail;
	}
	scale = scale_of(obj);
	if (strcmp(m, "GET") == 0) {
		set_json(resp, 200, scale);
		return;
	}
	if (strcmp(m, "PUT") != 0 && strcmp(m, "PATCH") != 0) {
		rc = or_fail(&err, OR_E_METHOD, "method_not_allowed", NULL,
			     "the server does not allow this method on the requested resource");
		goto fail;
	}
	rc = parse_body(req, &in, &err);
	if (rc != OR_OK)
		goto fail;
	if (strcmp(m, "PUT") == 0)
		out = json_incref(in);
	else if (ctype_is(ct, "application/json-patch+json"))
		rc = kube_json_patch(scale, in, &out, &err);
	else if (ctype_is(ct, "application/strategic-merge-patch+json"))
		rc = kube_smp(scale, in, &out, &err);
	else
		rc = kube_merge_patch(scale, in, &out, &err);
	if (rc != OR_OK)
		goto fail;
	if (!json_is_integer(kube_jget(out, "spec.replicas"))) {
		rc = or_fail(&err, OR_E_INVALID, "invalid", "spec.replicas",
			     "Scale.autoscaling \"%s\" is invalid: spec.replicas: Required value", name);
		goto fail;
	}
	rv = kube_sget(out, "metadata.resourceVersion");
	upd = json_deep_copy(obj);
	json_object_set(json_object_get(upd, "spec"), "replicas", kube_jget(out, "spec.replicas"));
	if (rv[0] != '\0')
		json_object_set_new(kube_meta(upd), "resourceVersion", json_string(rv));
	wopts(req, &o, "", "Update");
	rc = kube_do_update(k, res, ns, name, upd, &o, &stored, &err);
	if (rc != OR_OK)
		goto fail;
	set_json(resp, 200, scale_of(stored));
	json_decref(stored);
	json_decref(scale);
	json_decref(in);
	json_decref(out);
	return;
fail:
	json_decref(scale);
	json_decref(in);
	json_decref(out);
	set_status(resp, &err, res, name);
}

/* pods/NAME/log: there is no container; say so in one line per call. */
static void
do_log(struct kube *k, const struct kube_req *req, const struct kube_res *res,
	 const char *ns, const char *name, struct kube_resp *resp)
{
	json_t *pod = kube_obj_get(k, "pods", ns, name), *c;
	const char *want = kube_q(req, "container"), *cname = NULL, *image = "";
	struct or_err err;
	struct buf b;
	size_t i;

	if (pod == NULL) {
		kube_fail_notfound(&err, res, name);
		return set_status(resp, &err, res, name);
	}
	json_array_foreach(kube_jget(pod, "spec.containers"), i, c) {
		if (want == NULL || strcmp(kube_sget(c, "name"), want) == 0) {
			cname = kube_sget(c, "name");
			image = kube_sget(c, "image");
			break;
		}
	}
	if (cname == NULL) {
		or_fail(&err, OR_E_MALFORMED, "bad_request", "container",
			"container %s is not valid for pod %s", want, name);
		return set_status(resp, &err, res, name);
	}
	buf_init(&b, 64 * 1024);
	buf_printf(&b, "sandbox: container %s of pod %s/%s (image %s) is simulated and writes no logs\n",
		   cname, ns, name, image);
	resp->status = 200;
	resp->body = buf_detach(&b);
	resp->len = resp->body != NULL ? strlen(resp->body) : 0;
	resp->ctype = "text/plain";
}

/* ---- routing --------------------------------------------------------- */

static size_t
split(char *path, char **seg, size_t max)
{
	size_t n = 0;
	char *p = path, *save = NULL, *t;

	for (t = strtok_r(p, "/", &save); t != NULL && n < max; t = strtok_r(NULL, "/", &save))
		seg[n++] = t;
	return t == NULL ? n : max + 1;
}

static void
fail_resp(struct kube_resp *resp, or_rc rc, const char *code, const char *msg)
{
	struct or_err err;

	or_fail(&err, rc, code, NULL, "%s", msg);
	set_status(resp, &err, NULL, NULL);
}

static void
not_found(struct kube_resp *resp)
{
	fail_resp(resp, OR_E_NOTFOUND, "not_found",
		  "the server could not find the requested resource");
}

static void
resource_request(struct kube *k, const struct kube_req *req, const char *group,
		 const char *version, char **s, size_t n, struct kube_resp *resp)
{
	const char *m = req->method, *ns = "", *plural, *name = NULL, *sub = "";
	struct kube_res res;
	struct kube_wopts o;
	struct or_err err;
	json_t *body = NULL, *stored = NULL, *obj;
	or_rc rc;

	if (n >= 3 && strcmp(s[0], "namespaces") == 0 &&
	    !(n == 3 && (strcmp(s[2], "status") == 0 || strcmp(s[2], "finalize") == 0))) {
		if (n > 5)
			return not_found(resp);
		ns = s[1];
		plural = s[2];
		name = n > 3 ? s[3] : NULL;
		sub = n > 4 ? s[4] : "";
	} else {
		if (n > 3 || n == 0)
			return not_found(resp);
		plural = s[0];
		name = n > 1 ? s[1] : NULL;
		sub = n > 2 ? s[2] : "";
	}
	if (!kube_res_find(k, group, version, plural, &res))
		return not_found(resp);
	if (!(res.flags & KR_NAMESPACED) && ns[0] != '\0')
		return not_found(resp);
	if ((res.flags & KR_NAMESPACED) && ns[0] == '\0' && name != NULL)
		return not_found(resp);
	if (sub[0] != '\0' && strcmp(sub, "status") != 0 &&
	    !(strcmp(sub, "token") == 0 && (res.flags & KR_TOKEN)) &&
	    !(strcmp(sub, "scale") == 0 && (res.flags & KR_SCALE)) &&
	    !(strcmp(sub, "log") == 0 && strcmp(res.key, "pods") == 0) &&
	    !(strcmp(sub, "finalize") == 0 && strcmp(res.key, "namespaces") == 0))
		return not_found(resp);
	if (strcmp(sub, "finalize") == 0)
		sub = "status";
	if (name == NULL) {
		if (strcmp(m, "GET") == 0)
			return do_list(k, req, &res, ns, resp);
		if (strcmp(m, "POST") != 0)
			return fail_resp(resp, OR_E_METHOD, "method_not_allowed",
					 "the server does not allow this method on the requested resource");
		if ((res.flags & KR_NAMESPACED) && ns[0] == '\0')
			return not_found(resp);
		rc = parse_body(req, &body, &err);
		if (rc != OR_OK)
			goto fail;
		wopts(req, &o, "", "Update");
		rc = kube_do_create(k, &res, ns, body, &o, &stored, &err);
		body = NULL;
		if (rc != OR_OK)
			goto fail;
		answer_obj(resp, 201, &res, stored);
		json_decref(stored);
		return;
	}
	if (strcmp(sub, "token") == 0) {
		if (strcmp(m, "POST") != 0)
			return fail_resp(resp, OR_E_METHOD, "method_not_allowed",
					 "the server does not allow this method on the requested resource");
		return do_token(k, req, &res, ns, name, resp);
	}
	if (strcmp(sub, "scale") == 0)
		return do_scale(k, req, &res, ns, name, resp);
	if (strcmp(sub, "log") == 0) {
		if (strcmp(m, "GET") != 0)
			return fail_resp(resp, OR_E_METHOD, "method_not_allowed",
					 "the server does not allow this method on the requested resource");
		return do_log(k, req, &res, ns, name, resp);
	}
	if (strcmp(m, "GET") == 0) {
		obj = kube_obj_get(k, res.key, ns, name);
		if (obj == NULL) {
			rc = kube_fail_notfound(&err, &res, name);
			goto fail;
		}
		if (wants_table(req)) {
			json_t *one = json_pack("[O]", obj);

			set_json(resp, 200, kube_table(k, &res, one, k->rv));
			json_decref(one);
			return;
		}
		return answer_obj(resp, 200, &res, obj);
	}
	if (strcmp(m, "PUT") == 0) {
		rc = parse_body(req, &body, &err);
		if (rc != OR_OK)
			goto fail;
		wopts(req, &o, sub, "Update");
		rc = kube_do_update(k, &res, ns, name, body, &o, &stored, &err);
		body = NULL;
		if (rc != OR_OK)
			goto fail;
		answer_obj(resp, 200, &res, stored);
		json_decref(stored);
		return;
	}
	if (strcmp(m, "PATCH") == 0)
		return do_patch(k, req, &res, ns, name, sub, resp);
	if (strcmp(m, "DELETE") == 0 && sub[0] == '\0') {
		const char *dry = kube_q(req, "dryRun");

		if (dry != NULL && strcmp(dry, "All") == 0) {
			obj = kube_obj_get(k, res.key, ns, name);
			if (obj == NULL) {
				rc = kube_fail_notfound(&err, &res, name);
				goto fail;
			}
			return answer_obj(resp, 200, &res, obj);
		}
		rc = kube_do_delete(k, &res, ns, name, &obj, &err);
		if (rc != OR_OK)
			goto fail;
		if (strcmp(res.key, "namespaces") == 0 || strcmp(res.key, "pods") == 0 ||
		    (res.flags & KR_CRD) ||
		    strcmp(res.key, "customresourcedefinitions.apiextensions.k8s.io") == 0 ||
		    kube_jget(obj, "metadata.deletionTimestamp") == NULL) {
			answer_obj(resp, 200, &res, obj);
		} else {
			set_json(resp, 200,
				 json_pack("{s:s, s:s, s:{}, s:s, s:{s:s, s:s, s:s, s:s}}", "kind",
					   "Status", "apiVersion", "v1", "metadata", "status",
					   "Success", "details", "name", name, "group", res.group,
					   "kind", res.plural, "uid",
					   kube_sget(obj, "metadata.uid")));
		}
		json_decref(obj);
		return;
	}
	return fail_resp(resp, OR_E_METHOD, "method_not_allowed",
			 "the server does not allow this method on the requested resource");
fail:
	json_decref(body);
	set_status(resp, &err, &res, name);
}

static void
answer_doc(struct kube_resp *resp, const struct kube_req *req, json_t *doc)
{
	if (doc == NULL)
		return not_found(resp);
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		json_decref(doc);
		return fail_resp(resp, OR_E_METHOD, "method_not_allowed",
				 "the server does not allow this method on the requested resource");
	}
	set_json(resp, 200, doc);
}

void
kube_handle(struct kube *k, const struct kube_req *req, struct kube_resp *resp)
{
	char path[2048], *s[SEGS_MAX];
	size_t n;

	memset(resp, 0, sizeof(*resp));
	if (strlen(req->path) >= sizeof(path))
		return not_found(resp);
	snprintf(path, sizeof(path), "%s", req->path);
	n = split(path, s, SEGS_MAX);
	if (n > SEGS_MAX)
		return not_found(resp);
	pthread_mutex_lock(&k->lock);
	if (n == 1 && (strcmp(s[0], "healthz") == 0 || strcmp(s[0], "livez") == 0 ||
		       strcmp(s[0], "readyz") == 0)) {
		resp->status = 200;
		resp->body = strdup("ok");
		resp->len = resp->body != NULL ? 2 : 0;
		resp->ctype = "text/plain; charset=utf-8";
	} else if (n == 1 && strcmp(s[0], "version") == 0) {
		answer_doc(resp, req, kube_disc_version(k));
	} else if (n == 1 && strcmp(s[0], "api") == 0) {
		answer_doc(resp, req, kube_disc_api(k, NULL));
	} else if (n == 2 && strcmp(s[0], "api") == 0) {
		answer_doc(resp, req, kube_disc_resources(k, "", s[1]));
	} else if (n >= 3 && strcmp(s[0], "api") == 0 && strcmp(s[1], "v1") == 0) {
		resource_request(k, req, "", "v1", s + 2, n - 2, resp);
	} else if (n == 1 && strcmp(s[0], "apis") == 0) {
		answer_doc(resp, req, kube_disc_apis(k));
	} else if (n == 2 && strcmp(s[0], "apis") == 0) {
		answer_doc(resp, req, kube_disc_group(k, s[1]));
	} else if (n == 3 && strcmp(s[0], "apis") == 0) {
		answer_doc(resp, req, kube_disc_resources(k, s[1], s[2]));
	} else if (n >= 4 && strcmp(s[0], "apis") == 0) {
		resource_request(k, req, s[1], s[2], s + 3, n - 3, resp);
	} else if (n == 2 && strcmp(s[0], "openapi") == 0 && strcmp(s[1], "v2") == 0) {
		/* kubectl <= 1.27 apply insists on a v2 document; an empty
		 * protobuf one is a valid, empty openapi_v2.Document, after
		 * which kubectl uses its compiled-in types, as it does for v3. */
		resp->status = 200;
		resp->body = strdup("");
		resp->len = 0;
		resp->ctype = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
	} else if (n == 2 && strcmp(s[0], "openapi") == 0 && strcmp(s[1], "v3") == 0) {
		answer_doc(resp, req, kube_openapi_index(k));
	} else if (n == 4 && strcmp(s[0], "openapi") == 0 && strcmp(s[1], "v3") == 0 &&
		   strcmp(s[2], "api") == 0) {
		answer_doc(resp, req, kube_openapi_gv(k, "", s[3]));
	} else if (n == 5 && strcmp(s[0], "openapi") == 0 && strcmp(s[1], "v3") == 0 &&
		   strcmp(s[2], "apis") == 0) {
		answer_doc(resp, req, kube_openapi_gv(k, s[3], s[4]));
	} else {
		not_found(resp);
	}
	pthread_mutex_unlock(&k->lock);
}

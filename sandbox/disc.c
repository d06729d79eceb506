/*
 * disc.c - request validation against Google discovery documents.
 *
 * Load time does the slow work once: every method's flatPath is split into
 * segment templates and the methods are sorted by segment count, so a check
 * only compares the request against methods with the same number of segments
 * (no regex, no allocation).  Bodies are walked against the document's own
 * jansson tree ($ref looked up by name in "schemas"), which keeps the code
 * small and costs a few hash lookups per field.
 *
 * What this file must never do: answer or modify a request, or echo a long
 * or possibly secret value in an error (values are quoted only when they are
 * scalars of the wrong type or enum mismatches, and then cut to 40 bytes).
 */
#include "disc.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DISC_MAX_SEG 32	   /* more path segments than any API has */
#define DISC_MAX_DEPTH 32  /* nesting of a body; Google's own limit is ~100 */
#define DISC_MAX_REFS 8	   /* $ref hops without descending into a value */
#define DISC_FIELD_MAX 256 /* field path buffer; or_err keeps 127 of it */

enum tseg_kind {
	TSEG_LIT,  /* "instances" */
	TSEG_VAR,  /* "{zone}" or "{operationsId}:cancel": one non-empty segment */
	TSEG_REST, /* "{+name}", "{name=**}": one or more segments */
};

struct tseg {
	enum tseg_kind kind;
	const char *pre, *suf; /* literal text before / after the {...} */
	size_t prelen, suflen;
};

struct disc_doc {
	json_t *root;
	json_t *schemas;
	json_t *params;	    /* parameters every method accepts (alt, key...) */
	const char *prefix; /* field path of the body root, "" or "resource" */
};

struct disc_method {
	const char *http; /* "POST"; owned by the document's json */
	const char *id;	  /* "compute.instances.insert" */
	json_t *params;	  /* the method's "parameters", may be NULL */
	json_t *request;  /* request schema ({"$ref": ...}) or NULL */
	const struct disc_doc *doc;
	char *tmpl;	  /* "/compute/v1/projects/{project}/..." split in place */
	struct tseg *seg;
	int nseg;
	int rest;	  /* has a TSEG_REST segment */
	int score;	  /* literal characters: the more specific template wins */
};

/* A property whose "annotations.required" lists method ids (compute only). */
struct disc_req {
	json_t *schema; /* the object schema holding the property */
	const char *prop;
	json_t *ids;
};

struct disc {
	struct disc_doc *docs;
	size_t ndocs;
	struct disc_method *m;
	size_t nm;
	/* m[first[n] .. first[n + 1]) have n segments and no TSEG_REST;
	 * m[first[DISC_MAX_SEG + 1] .. nm) are the TSEG_REST ones. */
	size_t first[DISC_MAX_SEG + 2];
	struct disc_req *req;
	size_t nreq, capreq;
};

/* Per-check state: the field path being built and where to report. */
struct vctx {
	const struct disc_doc *doc;
	const struct disc *d;
	const char *method_id;
	char path[DISC_FIELD_MAX];
	size_t len;
	struct or_err *err;
};

/* ---- loading ---------------------------------------------------------- */

/* Split tmpl (owned by m) into segment templates; tmpl starts with '/'. */
static or_rc
parse_template(struct disc_method *m, struct or_err *err)
{
	char *p, *seg, *open, *close;
	int n = 0;

	for (p = m->tmpl; *p != '\0'; p++)
		if (*p == '/')
			n++;
	if (n > DISC_MAX_SEG)
		return or_fail(err, OR_E_INVALID, NULL, NULL, "%s: path %s has too many segments",
			       m->id, m->tmpl);
	m->seg = calloc((size_t)n, sizeof(*m->seg));
	if (m->seg == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	m->nseg = 0;
	p = m->tmpl + 1;
	while (p != NULL) {
		struct tseg *t = &m->seg[m->nseg++];

		seg = p;
		p = strchr(p, '/');
		if (p != NULL)
			*p++ = '\0';
		open = strchr(seg, '{');
		close = open != NULL ? strchr(open, '}') : NULL;
		if (open == NULL || close == NULL) {
			t->kind = TSEG_LIT;
			t->pre = seg;
			t->prelen = strlen(seg);
			m->score += (int)t->prelen;
			continue;
		}
		/* "{+name}" and "{name=**}" may span slashes; "{name=*}" may not. */
		t->kind = open[1] == '+' || (close - open >= 3 && strncmp(close - 3, "=**", 3) == 0)
				  ? TSEG_REST
				  : TSEG_VAR;
		if (t->kind == TSEG_REST)
			m->rest = 1;
		t->pre = seg;
		t->prelen = (size_t)(open - seg);
		t->suf = close + 1;
		t->suflen = strlen(close + 1);
		m->score += (int)(t->prelen + t->suflen);
	}
	return OR_OK;
}

/* Remember every property marked required for some method ids. Recursive
 * over inline schemas; $ref targets are visited as named schemas. */
static or_rc
collect_required(struct disc *d, json_t *schema, int depth, struct or_err *err)
{
	json_t *props, *p, *ids, *sub;
	const char *k;
	or_rc rc;

	if (!json_is_object(schema) || depth > DISC_MAX_DEPTH)
		return OR_OK;
	props = json_object_get(schema, "properties");
	json_object_foreach(props, k, p) {
		ids = json_object_get(json_object_get(p, "annotations"), "required");
		if (json_is_array(ids)) {
			if (d->nreq == d->capreq) {
				size_t cap = d->capreq ? d->capreq * 2 : 64;
				struct disc_req *n = realloc(d->req, cap * sizeof(*n));

				if (n == NULL)
					return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
				d->req = n;
				d->capreq = cap;
			}
			d->req[d->nreq].schema = schema;
			d->req[d->nreq].prop = k;
			d->req[d->nreq].ids = ids;
			d->nreq++;
		}
		rc = collect_required(d, p, depth + 1, err);
		if (rc != OR_OK)
			return rc;
	}
	rc = collect_required(d, json_object_get(schema, "items"), depth + 1, err);
	if (rc != OR_OK)
		return rc;
	sub = json_object_get(schema, "additionalProperties");
	return collect_required(d, sub, depth + 1, err);
}

static or_rc
add_method(struct disc *d, size_t *cap, const struct disc_doc *doc, json_t *m,
	   struct or_err *err)
{
	const char *http = json_string_value(json_object_get(m, "httpMethod"));
	const char *id = json_string_value(json_object_get(m, "id"));
	const char *sp = json_string_value(json_object_get(doc->root, "servicePath"));
	const char *tp = json_string_value(json_object_get(m, "flatPath"));
	struct disc_method *dm;
	size_t len;

	/* flatPath spells every parameter as one segment; path may use {+x}. */
	if (tp == NULL)
		tp = json_string_value(json_object_get(m, "path"));
	if (http == NULL || tp == NULL)
		return OR_OK; /* not a REST method we can route; nothing to check */
	if (sp == NULL)
		sp = "";
	if (d->nm == *cap) {
		size_t ncap = *cap ? *cap * 2 : 256;
		struct disc_method *n = realloc(d->m, ncap * sizeof(*n));

		if (n == NULL)
			return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
		d->m = n;
		*cap = ncap;
	}
	dm = &d->m[d->nm];
	memset(dm, 0, sizeof(*dm));
	dm->http = http;
	dm->id = id != NULL ? id : "?";
	dm->params = json_object_get(m, "parameters");
	dm->request = json_object_get(m, "request");
	dm->doc = doc;
	len = 1 + strlen(sp) + strlen(tp) + 1;
	dm->tmpl = malloc(len);
	if (dm->tmpl == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	d->nm++; /* counted now so disc_free frees tmpl even if parsing fails */
	snprintf(dm->tmpl, len, "/%s%s", sp, tp);
	return parse_template(dm, err);
}

static or_rc
walk_resources(struct disc *d, size_t *cap, const struct disc_doc *doc, json_t *res,
	       int depth, struct or_err *err)
{
	const char *k;
	json_t *r, *m;
	or_rc rc;

	if (depth > DISC_MAX_DEPTH)
		return or_fail(err, OR_E_INVALID, NULL, NULL, "resources nested too deeply");
	json_object_foreach(res, k, r) {
		const char *mk;

		json_object_foreach(json_object_get(r, "methods"), mk, m) {
			rc = add_method(d, cap, doc, m, err);
			if (rc != OR_OK)
				return rc;
		}
		rc = walk_resources(d, cap, doc, json_object_get(r, "resources"), depth + 1, err);
		if (rc != OR_OK)
			return rc;
	}
	return OR_OK;
}

static int
method_cmp(const void *a, const void *b)
{
	const struct disc_method *x = a, *y = b;
	int kx = x->rest ? DISC_MAX_SEG + 1 : x->nseg, ky = y->rest ? DISC_MAX_SEG + 1 : y->nseg;

	return kx != ky ? kx - ky : strcmp(x->tmpl, y->tmpl);
}

static int
is_json_name(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return n > 5 && e->d_name[0] != '.' && strcmp(e->d_name + n - 5, ".json") == 0;
}

or_rc
disc_load(const char *dir, struct disc **out, struct or_err *err)
{
	struct dirent **names = NULL;
	struct disc *d = NULL;
	size_t cap = 0, i, ndocs = 0;
	int n = -1, k;
	or_rc rc = OR_OK;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	/* Sorted names: the same directory always gives the same index. */
	n = scandir(dir, &names, is_json_name, alphasort);
	if (n < 0) {
		rc = or_fail(err, errno == ENOENT ? OR_E_NOTFOUND : OR_E_IO, NULL, NULL,
			     "cannot read discovery directory %s: %s", dir, strerror(errno));
		goto out;
	}
	d->docs = calloc(n > 0 ? (size_t)n : 1, sizeof(*d->docs));
	if (d->docs == NULL) {
		rc = or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
		goto out;
	}
	for (k = 0; k < n; k++) {
		char file[PATH_MAX];
		json_error_t je;
		json_t *root;
		struct disc_doc *doc;

		snprintf(file, sizeof(file), "%s/%s", dir, names[k]->d_name);
		root = json_load_file(file, 0, &je);
		if (root == NULL) {
			rc = or_fail(err, OR_E_MALFORMED, NULL, NULL, "%s:%d: %s", file, je.line,
				     je.text);
			goto out;
		}
		if (!json_is_object(json_object_get(root, "resources")) ||
		    strcmp(json_string_value(json_object_get(root, "kind")) != NULL
				   ? json_string_value(json_object_get(root, "kind"))
				   : "",
			   "discovery#restDescription") != 0) {
			json_decref(root);
			continue;
		}
		doc = &d->docs[d->ndocs++];
		doc->root = root;
		doc->schemas = json_object_get(root, "schemas");
		doc->params = json_object_get(root, "parameters");
		/* Compute names the body "resource" in its errors ("Invalid value
		 * for field 'resource.name'"); one-platform APIs name fields from
		 * the body root ("cluster.name"). */
		doc->prefix = strcmp(json_string_value(json_object_get(root, "name")) != NULL
					     ? json_string_value(json_object_get(root, "name"))
					     : "",
				     "compute") == 0
				      ? "resource"
				      : "";
		rc = walk_resources(d, &cap, doc, json_object_get(root, "resources"), 0, err);
		if (rc != OR_OK)
			goto out;
		{
			const char *sk;
			json_t *s;

			json_object_foreach(doc->schemas, sk, s) {
				rc = collect_required(d, s, 0, err);
				if (rc != OR_OK)
					goto out;
			}
		}
	}
	ndocs = d->ndocs;
	if (ndocs == 0) {
		rc = or_fail(err, OR_E_NOTFOUND, NULL, NULL, "no discovery document in %s", dir);
		goto out;
	}
	qsort(d->m, d->nm, sizeof(*d->m), method_cmp);
	for (i = 0, k = 0; k <= DISC_MAX_SEG + 1; k++) {
		d->first[k] = i;
		while (i < d->nm && !d->m[i].rest && d->m[i].nseg == k)
			i++;
	}
	*out = d;
	d = NULL;
out:
	for (k = 0; k < n; k++)
		free(names[k]);
	free(names);
	disc_free(d);
	return rc;
}

size_t
disc_method_count(const struct disc *d)
{
	return d != NULL ? d->nm : 0;
}

void
disc_free(struct disc *d)
{
	size_t i;

	if (d == NULL)
		return;
	for (i = 0; i < d->nm; i++) {
		free(d->m[i].tmpl);
		free(d->m[i].seg);
	}
	free(d->m);
	for (i = 0; i < d->ndocs; i++)
		json_decref(d->docs[i].root);
	free(d->docs);
	free(d->req);
	free(d);
}

/* ---- path matching ---------------------------------------------------- */

struct pseg {
	const char *p;
	size_t len;
};

static int
seg_match(const struct tseg *t, const struct pseg *s)
{
	if (t->kind == TSEG_LIT)
		return s->len == t->prelen && memcmp(s->p, t->pre, s->len) == 0;
	/* A variable needs at least one character of its own. */
	return s->len > t->prelen + t->suflen && memcmp(s->p, t->pre, t->prelen) == 0 &&
	       memcmp(s->p + s->len - t->suflen, t->suf, t->suflen) == 0;
}

/* Templates with a multi-segment variable; backtracks, but such templates
 * hold one {+x} and are rare (none in the flatPaths of compute/container). */
static int
rest_match(const struct tseg *t, int nt, const struct pseg *s, int ns)
{
	int k;

	if (nt == 0)
		return ns == 0;
	if (ns == 0)
		return 0;
	if (t->kind != TSEG_REST)
		return seg_match(t, s) && rest_match(t + 1, nt - 1, s + 1, ns - 1);
	for (k = 1; k <= ns - (nt - 1); k++) {
		/* The span's first segment carries the prefix, its last the suffix. */
		struct tseg lo = {TSEG_VAR, t->pre, "", t->prelen, 0};
		struct tseg hi = {TSEG_VAR, "", t->suf, 0, t->suflen};

		if (!seg_match(&lo, &s[0]) || !seg_match(&hi, &s[k - 1]))
			continue;
		if (rest_match(t + 1, nt - 1, s + k, ns - k))
			return 1;
	}
	return 0;
}

static int
method_match(const struct disc_method *m, const struct pseg *s, int ns)
{
	int i;

	if (m->rest)
		return rest_match(m->seg, m->nseg, s, ns);
	if (m->nseg != ns)
		return 0;
	for (i = 0; i < ns; i++)
		if (!seg_match(&m->seg[i], &s[i]))
			return 0;
	return 1;
}

/* ---- body validation -------------------------------------------------- */

static void
fp_push_key(struct vctx *v, const char *key)
{
	int n = snprintf(v->path + v->len, sizeof(v->path) - v->len, "%s%s",
			 v->len > 0 ? "." : "", key);

	if (n > 0)
		v->len += (size_t)n < sizeof(v->path) - v->len ? (size_t)n
							   : sizeof(v->path) - v->len - 1;
}

static void
fp_push_index(struct vctx *v, size_t i)
{
	int n = snprintf(v->path + v->len, sizeof(v->path) - v->len, "[%zu]", i);

	if (n > 0)
		v->len += (size_t)n < sizeof(v->path) - v->len ? (size_t)n
							   : sizeof(v->path) - v->len - 1;
}

static const char *
fp_str(const struct vctx *v)
{
	return v->len > 0 ? v->path : "body";
}

/* A short rendering of a scalar for an error message. */
static void
render_scalar(const json_t *j, char *out, size_t n)
{
	switch (json_typeof(j)) {
	case JSON_STRING:
		snprintf(out, n, "\"%.40s%s\"", json_string_value(j),
			 json_string_length(j) > 40 ? "..." : "");
		break;
	case JSON_INTEGER:
		snprintf(out, n, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		break;
	case JSON_REAL:
		snprintf(out, n, "%g", json_real_value(j));
		break;
	case JSON_TRUE:
		snprintf(out, n, "true");
		break;
	case JSON_FALSE:
		snprintf(out, n, "false");
		break;
	case JSON_NULL:
		snprintf(out, n, "null");
		break;
	case JSON_OBJECT:
		snprintf(out, n, "an object");
		break;
	case JSON_ARRAY:
		snprintf(out, n, "an array");
		break;
	}
}

static or_rc
bad_value(struct vctx *v, const json_t *j, const char *want)
{
	char val[64];

	render_scalar(j, val, sizeof(val));
	return or_fail(v->err, OR_E_INVALID, "invalid_argument", fp_str(v),
		       "Invalid value at '%s' (%s), %s", fp_str(v), want, val);
}

/* A decimal integer as Google writes int64/uint64: optional '-', digits. */
static int
is_decimal(const char *s, int allow_minus)
{
	if (allow_minus && *s == '-')
		s++;
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

static or_rc validate(struct vctx *v, json_t *schema, json_t *val, int depth);

static or_rc
check_required(struct vctx *v, json_t *schema, json_t *obj)
{
	size_t i, k;
	json_t *idj;

	for (i = 0; i < v->d->nreq; i++) {
		const struct disc_req *r = &v->d->req[i];

		if (r->schema != schema || json_object_get(obj, r->prop) != NULL)
			continue;
		json_array_foreach(r->ids, k, idj) {
			const char *id = json_string_value(idj);

			if (id != NULL && strcmp(id, v->method_id) == 0) {
				size_t save = v->len;
				or_rc rc;

				fp_push_key(v, r->prop);
				rc = or_fail(v->err, OR_E_INVALID, "invalid_argument", fp_str(v),
					     "Required field '%s' not specified", fp_str(v));
				v->len = save;
				v->path[save] = '\0';
				return rc;
			}
		}
	}
	return OR_OK;
}

static or_rc
validate_object(struct vctx *v, json_t *schema, json_t *val, int depth)
{
	json_t *props = json_object_get(schema, "properties");
	json_t *addl = json_object_get(schema, "additionalProperties");
	json_t *sub, *ps;
	const char *k;
	size_t save = v->len;
	or_rc rc = OR_OK;

	if (!json_is_object(val))
		return bad_value(v, val, "TYPE_MESSAGE");
	/* An object schema that names nothing (e.g. google.protobuf.Struct)
	 * takes any content. */
	if (props == NULL && addl == NULL)
		return OR_OK;
	json_object_foreach(val, k, sub) {
		ps = props != NULL ? json_object_get(props, k) : NULL;
		if (ps == NULL && addl == NULL) {
			fp_push_key(v, k);
			rc = or_fail(v->err, OR_E_INVALID, "invalid_argument", v->path,
				     "Invalid JSON payload received. Unknown name \"%.64s\"%s%.*s%s: "
				     "Cannot find field.",
				     k, save > 0 ? " at '" : "", (int)save, v->path,
				     save > 0 ? "'" : "");
			goto out;
		}
		fp_push_key(v, k);
		rc = validate(v, ps != NULL ? ps : addl, sub, depth + 1);
		if (rc != OR_OK)
			goto out;
		v->len = save;
		v->path[save] = '\0';
	}
	if (v->d->nreq > 0)
		rc = check_required(v, schema, val);
	return rc;
out:
	v->len = save;
	v->path[save] = '\0';
	return rc;
}

static or_rc
validate(struct vctx *v, json_t *schema, json_t *val, int depth)
{
	const char *type, *fmt, *ref;
	json_t *en, *e, *items, *sub;
	int hops;
	size_t i, save;
	or_rc rc;

	if (depth > DISC_MAX_DEPTH)
		return or_fail(v->err, OR_E_INVALID, "invalid_argument", fp_str(v),
			       "Request nested more than %d levels deep at '%s'", DISC_MAX_DEPTH,
			       fp_str(v));
	for (hops = 0; (ref = json_string_value(json_object_get(schema, "$ref"))) != NULL;
	     hops++) {
		json_t *target = json_object_get(v->doc->schemas, ref);

		if (target == NULL || hops >= DISC_MAX_REFS)
			return or_fail(v->err, OR_E_IO, NULL, fp_str(v),
				       "discovery document: unresolvable $ref %s", ref);
		schema = target;
	}
	/* proto3 JSON: null means "not set" for any field. */
	if (json_is_null(val))
		return OR_OK;
	type = json_string_value(json_object_get(schema, "type"));
	fmt = json_string_value(json_object_get(schema, "format"));
	if (type == NULL || strcmp(type, "any") == 0)
		return OR_OK;
	if (strcmp(type, "object") == 0)
		return validate_object(v, schema, val, depth);
	if (strcmp(type, "array") == 0) {
		if (!json_is_array(val))
			return bad_value(v, val, "TYPE_ARRAY");
		items = json_object_get(schema, "items");
		if (items == NULL)
			return OR_OK;
		save = v->len;
		json_array_foreach(val, i, sub) {
			fp_push_index(v, i);
			rc = validate(v, items, sub, depth + 1);
			v->len = save;
			v->path[save] = '\0';
			if (rc != OR_OK) {
				/* The message was built with the index; keep it. */
				return rc;
			}
		}
		return OR_OK;
	}
	if (strcmp(type, "boolean") == 0)
		return json_is_boolean(val) ? OR_OK : bad_value(v, val, "TYPE_BOOL");
	if (strcmp(type, "number") == 0)
		return json_is_number(val) ? OR_OK : bad_value(v, val, "TYPE_DOUBLE");
	if (strcmp(type, "integer") == 0) {
		/* int32/uint32 travel as JSON numbers (the brief's rule; proto3
		 * parsers would also take "5", Google's clients never send it). */
		int u = fmt != NULL && strcmp(fmt, "uint32") == 0;
		json_int_t x;

		if (!json_is_integer(val))
			return bad_value(v, val, u ? "TYPE_UINT32" : "TYPE_INT32");
		x = json_integer_value(val);
		if (u ? (x < 0 || x > (json_int_t)UINT32_MAX) : (x < INT32_MIN || x > INT32_MAX))
			return bad_value(v, val, u ? "TYPE_UINT32 out of range"
						   : "TYPE_INT32 out of range");
		return OR_OK;
	}
	if (strcmp(type, "string") != 0)
		return OR_OK; /* a type this checker does not know: let it pass */
	if (fmt != NULL && (strcmp(fmt, "int64") == 0 || strcmp(fmt, "uint64") == 0)) {
		/* Google writes 64-bit integers as strings; clients also send
		 * numbers and the front ends take both. */
		int u = fmt[0] == 'u';

		if (json_is_integer(val) && (!u || json_integer_value(val) >= 0))
			return OR_OK;
		if (json_is_string(val) && is_decimal(json_string_value(val), !u))
			return OR_OK;
		return bad_value(v, val, u ? "TYPE_UINT64" : "TYPE_INT64");
	}
	if (!json_is_string(val))
		return bad_value(v, val, "TYPE_STRING");
	en = json_object_get(schema, "enum");
	if (json_is_array(en)) {
		char val_s[64];

		json_array_foreach(en, i, e) {
			const char *s = json_string_value(e);

			if (s != NULL && strcmp(s, json_string_value(val)) == 0)
				return OR_OK;
		}
		char list[200];
		size_t ll = 0;

		list[0] = '\0';
		json_array_foreach(en, i, e) {
			const char *s = json_string_value(e);
			int w;

			if (s == NULL)
				continue;
			/* Long enums (e.g. 100 disk types) are cut with ", ..." */
			w = snprintf(list + ll, sizeof(list) - ll, "%s%s", ll > 0 ? ", " : "", s);
			if (w < 0 || (size_t)w >= sizeof(list) - ll - 5) {
				snprintf(list + ll, sizeof(list) - ll, ", ...");
				break;
			}
			ll += (size_t)w;
		}
		render_scalar(val, val_s, sizeof(val_s));
		return or_fail(v->err, OR_E_INVALID, "invalid_argument", fp_str(v),
			       "Invalid value at '%s' (enum), %s: must be one of %s", fp_str(v),
			       val_s, list);
	}
	return OR_OK;
}

/* ---- query ------------------------------------------------------------ */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Known query parameter names (values are not checked), and the method's
 * required query parameters present. */
static or_rc
check_query(const struct disc_method *m, const char *q, struct or_err *err)
{
	const char *p = q, *k;
	json_t *pj;

	while (p != NULL && *p != '\0') {
		char name[64];
		size_t n = 0;
		const char *end = p + strcspn(p, "&=");

		for (; p < end && n + 1 < sizeof(name); p++) {
			if (*p == '%' && end - p >= 3 && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
				name[n++] = (char)(hexval(p[1]) * 16 + hexval(p[2]));
				p += 2;
			} else {
				name[n++] = *p == '+' ? ' ' : *p;
			}
		}
		name[n] = '\0';
		if (n > 0 && json_object_get(m->params, name) == NULL &&
		    json_object_get(m->doc->params, name) == NULL)
			return or_fail(err, OR_E_INVALID, "invalid_argument", name,
				       "Invalid JSON payload received. Unknown name \"%.63s\": "
				       "Cannot bind query parameter.",
				       name);
		p += strcspn(p, "&");
		if (*p == '&')
			p++;
	}
	json_object_foreach(m->params, k, pj) {
		const char *loc = json_string_value(json_object_get(pj, "location"));
		size_t kl = strlen(k);
		int found = 0;

		if (loc == NULL || strcmp(loc, "query") != 0 ||
		    !json_is_true(json_object_get(pj, "required")))
			continue;
		for (p = q; p != NULL && *p != '\0'; p += strcspn(p, "&"), p += *p == '&') {
			if (strncmp(p, k, kl) == 0 && (p[kl] == '=' || p[kl] == '&' || p[kl] == '\0')) {
				found = 1;
				break;
			}
		}
		if (!found)
			return or_fail(err, OR_E_INVALID, "invalid_argument", k,
				       "Required query parameter '%s' not specified", k);
	}
	return OR_OK;
}

/* ---- the check -------------------------------------------------------- */

or_rc
disc_check_id(const struct disc *d, const char *method, const char *path,
	      const char *query, json_t *body, const char **id, struct or_err *err)
{
	struct pseg s[DISC_MAX_SEG];
	const struct disc_method *best = NULL;
	const char *p, *end;
	char allowed[96];
	size_t i, alen = 0, plen;
	int ns = 0, pass;

	if (id != NULL)
		*id = NULL;
	allowed[0] = '\0';
	if (d == NULL || method == NULL || path == NULL || path[0] != '/')
		return or_fail(err, OR_E_NOTFOUND, "not_found", NULL,
			       "The requested URL %.200s was not found", path ? path : "(null)");
	plen = strcspn(path, "?");
	if (query == NULL && path[plen] == '?')
		query = path + plen + 1;
	for (p = path + 1, end = path + plen;; p++) {
		const char *e = memchr(p, '/', (size_t)(end - p));

		if (ns == DISC_MAX_SEG)
			goto notfound;
		s[ns].p = p;
		s[ns].len = (size_t)((e != NULL ? e : end) - p);
		ns++;
		if (e == NULL)
			break;
		p = e;
	}
	/* Pass 0: the bucket of templates with ns segments; pass 1: the
	 * templates with a multi-segment variable. */
	for (pass = 0; pass < 2; pass++) {
		size_t lo = pass == 0 ? d->first[ns] : d->first[DISC_MAX_SEG + 1];
		size_t hi = pass == 0 ? d->first[ns + 1] : d->nm;

		for (i = lo; i < hi; i++) {
			const struct disc_method *m = &d->m[i];

			if (!method_match(m, s, ns))
				continue;
			if (strcmp(m->http, method) != 0) {
				size_t hl = strlen(m->http);

				if (strstr(allowed, m->http) == NULL && alen + hl + 3 < sizeof(allowed)) {
					snprintf(allowed + alen, sizeof(allowed) - alen, "%s%s",
						 alen > 0 ? ", " : "", m->http);
					alen = strlen(allowed);
				}
				continue;
			}
			if (best == NULL || m->score > best->score)
				best = m;
		}
	}
	if (best == NULL && alen > 0)
		return or_fail(err, OR_E_METHOD, "method_not_allowed", NULL,
			       "Method %.16s is not allowed on %.200s (allowed: %s)", method, path,
			       allowed);
	if (best == NULL)
		goto notfound;
	if (id != NULL)
		*id = best->id;
	if (check_query(best, query, err) != OR_OK)
		return OR_E_INVALID;
	if (best->request == NULL) {
		if (body != NULL && !json_is_null(body) &&
		    !(json_is_object(body) && json_object_size(body) == 0))
			return or_fail(err, OR_E_INVALID, "invalid_argument", "body",
				       "%s takes no request body", best->id);
		return OR_OK;
	}
	{
		struct vctx v;
		json_t *empty = NULL;
		or_rc rc;

		memset(&v, 0, sizeof(v));
		v.doc = best->doc;
		v.d = d;
		v.method_id = best->id;
		v.err = err;
		fp_push_key(&v, best->doc->prefix);
		if (body == NULL) {
			/* No body at all is judged as "{}": required fields say so. */
			empty = json_object();
			if (empty == NULL)
				return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
		}
		rc = validate(&v, best->request, body != NULL ? body : empty, 0);
		json_decref(empty);
		return rc;
	}
notfound:
	return or_fail(err, OR_E_NOTFOUND, "not_found", NULL,
		       "The requested URL %.*s was not found", (int)(plen < 200 ? plen : 200),
		       path);
}

or_rc
disc_check(const struct disc *d, const char *method, const char *path, const char *query,
	   json_t *body, struct or_err *err)
{
	return disc_check_id(d, method, path, query, body, NULL, err);
}

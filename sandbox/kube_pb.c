/*
 * kube_pb.c - the protobuf request bodies of kubectl >= 1.32.
 *
 * Typed clients (kubectl create namespace|secret|configmap|serviceaccount|
 * token|clusterrolebinding|rolebinding|clusterrole|role) send "k8s\0" +
 * runtime.Unknown{typeMeta, raw}, and a 415 answer is not retried in JSON.  The few messages involved are decoded by a
 * table-driven reader of the wire format; unknown fields are skipped, as
 * protobuf readers do.  Anything else is refused with 415.
 */
#include "kube_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum ft { F_STR, F_BYTES, F_INT, F_BOOL, F_MSG, F_MAP_SS, F_MAP_SB, F_REP_STR, F_REP_MSG };

struct field {
	unsigned num;
	const char *name;
	enum ft type;
	const struct field *sub;	/* F_MSG, F_REP_MSG; ends with num 0 */
};

static const struct field owner_ref[] = {
	{1, "kind", F_STR, NULL}, {3, "name", F_STR, NULL}, {4, "uid", F_STR, NULL},
	{5, "apiVersion", F_STR, NULL}, {6, "controller", F_BOOL, NULL},
	{7, "blockOwnerDeletion", F_BOOL, NULL}, {0, NULL, F_STR, NULL},
};
static const struct field object_meta[] = {
	{1, "name", F_STR, NULL}, {2, "generateName", F_STR, NULL},
	{3, "namespace", F_STR, NULL}, {5, "uid", F_STR, NULL},
	{6, "resourceVersion", F_STR, NULL}, {7, "generation", F_INT, NULL},
	{11, "labels", F_MAP_SS, NULL}, {12, "annotations", F_MAP_SS, NULL},
	{13, "ownerReferences", F_REP_MSG, owner_ref}, {14, "finalizers", F_REP_STR, NULL},
	{0, NULL, F_STR, NULL},
};
static const struct field ns_spec[] = {
	{1, "finalizers", F_REP_STR, NULL}, {0, NULL, F_STR, NULL},
};
static const struct field namespace_msg[] = {
	{1, "metadata", F_MSG, object_meta}, {2, "spec", F_MSG, ns_spec},
	{0, NULL, F_STR, NULL},
};
static const struct field secret_msg[] = {
	{1, "metadata", F_MSG, object_meta}, {2, "data", F_MAP_SB, NULL},
	{3, "type", F_STR, NULL}, {4, "stringData", F_MAP_SS, NULL},
	{5, "immutable", F_BOOL, NULL}, {0, NULL, F_STR, NULL},
};
static const struct field configmap_msg[] = {
	{1, "metadata", F_MSG, object_meta}, {2, "data", F_MAP_SS, NULL},
	{3, "binaryData", F_MAP_SB, NULL}, {4, "immutable", F_BOOL, NULL},
	{0, NULL, F_STR, NULL},
};
static const struct field object_ref[] = {
	{1, "kind", F_STR, NULL}, {2, "namespace", F_STR, NULL}, {3, "name", F_STR, NULL},
	{4, "uid", F_STR, NULL}, {5, "apiVersion", F_STR, NULL},
	{6, "resourceVersion", F_STR, NULL}, {7, "fieldPath", F_STR, NULL},
	{0, NULL, F_STR, NULL},
};
static const struct field local_ref[] = {
	{1, "name", F_STR, NULL}, {0, NULL, F_STR, NULL},
};
static const struct field sa_msg[] = {
	{1, "metadata", F_MSG, object_meta}, {2, "secrets", F_REP_MSG, object_ref},
	{3, "imagePullSecrets", F_REP_MSG, local_ref},
	{4, "automountServiceAccountToken", F_BOOL, NULL}, {0, NULL, F_STR, NULL},
};
static const struct field bound_ref[] = {
	{1, "kind", F_STR, NULL}, {2, "apiVersion", F_STR, NULL}, {3, "name", F_STR, NULL},
	{4, "uid", F_STR, NULL}, {0, NULL, F_STR, NULL},
};
static const struct field token_spec[] = {
	{1, "audiences", F_REP_STR, NULL}, {3, "boundObjectRef", F_MSG, bound_ref},
	{4, "expirationSeconds", F_INT, NULL}, {0, NULL, F_STR, NULL},
};
static const struct field token_msg[] = {
	{1, "metadata", F_MSG, object_meta}, {2, "spec", F_MSG, token_spec},
	{0, NULL, F_STR, NULL},
};
static const struct field subject[] = {
	{1, "kind", F_STR, NULL}, {2, "apiGroup", F_STR, NULL}, {3, "name", F_STR, NULL},
	{4, "namespace", F_STR, NULL}, {0, NULL, F_STR, NULL},
};
static const struct field role_ref[] = {
	{1, "apiGroup", F_STR, NULL}, {2, "kind", F_STR, NULL}, {3, "name", F_STR, NULL},
	{0, NULL, F_STR, NULL},
};
static const struct field binding_msg[] = {
	{1, "metadata", F_MSG, object_meta}, {2, "subjects", F_REP_MSG, subject},
	{3, "roleRef", F_MSG, role_ref}, {0, NULL, F_STR, NULL},
};
static const struct field policy_rule[] = {
	{1, "verbs", F_REP_STR, NULL}, {2, "apiGroups", F_REP_STR, NULL},
	{3, "resources", F_REP_STR, NULL}, {4, "resourceNames", F_REP_STR, NULL},
	{5, "nonResourceURLs", F_REP_STR, NULL}, {0, NULL, F_STR, NULL},
};
static const struct field role_msg[] = {
	{1, "metadata", F_MSG, object_meta}, {2, "rules", F_REP_MSG, policy_rule},
	{0, NULL, F_STR, NULL},
};
static const struct field type_meta[] = {
	{1, "apiVersion", F_STR, NULL}, {2, "kind", F_STR, NULL}, {0, NULL, F_STR, NULL},
};

static const struct {
	const char *api_version, *kind;
	const struct field *msg;
} kinds[] = {
	{"v1", "Namespace", namespace_msg},
	{"v1", "Secret", secret_msg},
	{"v1", "ConfigMap", configmap_msg},
	{"v1", "ServiceAccount", sa_msg},
	{"authentication.k8s.io/v1", "TokenRequest", token_msg},
	{"rbac.authorization.k8s.io/v1", "ClusterRoleBinding", binding_msg},
	{"rbac.authorization.k8s.io/v1", "RoleBinding", binding_msg},
	{"rbac.authorization.k8s.io/v1", "ClusterRole", role_msg},
	{"rbac.authorization.k8s.io/v1", "Role", role_msg},
};

struct rd {
	const unsigned char *p, *end;
};

static int
varint(struct rd *r, uint64_t *v)
{
	unsigned shift = 0;

	*v = 0;
	while (r->p < r->end && shift < 64) {
		unsigned char b = *r->p++;

		*v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			return 1;
		shift += 7;
	}
	return 0;
}

/* A length-delimited field's bytes. */
static int
chunk(struct rd *r, struct rd *out)
{
	uint64_t n;

	if (!varint(r, &n) || n > (uint64_t)(r->end - r->p))
		return 0;
	out->p = r->p;
	out->end = r->p + n;
	r->p += n;
	return 1;
}

static int
skip(struct rd *r, unsigned wire)
{
	uint64_t v;
	struct rd c;

	switch (wire) {
	case 0:
		return varint(r, &v);
	case 1:
		if (r->end - r->p < 8)
			return 0;
		r->p += 8;
		return 1;
	case 2:
		return chunk(r, &c);
	case 5:
		if (r->end - r->p < 4)
			return 0;
		r->p += 4;
		return 1;
	default:
		return 0;
	}
}

static json_t *
base64(const unsigned char *b, size_t n)
{
	struct buf out;
	json_t *j;

	buf_init(&out, 4 * n / 3 + 8);
	kube_base64(&out, b, n, 0);
	j = json_string(buf_str(&out));
	buf_free(&out);
	return j;
}

static json_t *
bytes_str(const struct rd *c)
{
	return json_stringn((const char *)c->p, (size_t)(c->end - c->p));
}

static json_t *decode(struct rd *r, const struct field *msg, int depth);

/* A map entry {1: key, 2: value}. */
static int
map_entry(struct rd *c, json_t *map, int bytes_value)
{
	char *key = NULL;
	json_t *val = NULL;
	uint64_t tag;
	struct rd f;
	int ok = 1;

	while (ok && c->p < c->end) {
		if (!varint(c, &tag)) {
			ok = 0;
			break;
		}
		if ((tag & 7) != 2) {
			ok = skip(c, (unsigned)(tag & 7));
			continue;
		}
		if (!chunk(c, &f)) {
			ok = 0;
			break;
		}
		if ((tag >> 3) == 1) {
			free(key);
			key = strndup((const char *)f.p, (size_t)(f.end - f.p));
		} else if ((tag >> 3) == 2) {
			json_decref(val);
			val = bytes_value ? base64(f.p, (size_t)(f.end - f.p)) : bytes_str(&f);
		}
	}
	if (ok && key != NULL)
		json_object_set_new(map, key, val != NULL ? val : json_string(""));
	else
		json_decref(val);
	free(key);
	return ok && key != NULL;
}

static json_t *
decode(struct rd *r, const struct field *msg, int depth)
{
	json_t *out = json_object(), *v, *arr;
	const struct field *f;
	uint64_t tag, n;
	struct rd c;
	unsigned wire, num;

	if (out == NULL || depth > 8)
		goto bad;
	while (r->p < r->end) {
		if (!varint(r, &tag))
			goto bad;
		wire = (unsigned)(tag & 7);
		num = (unsigned)(tag >> 3);
		for (f = msg; f->num != 0 && f->num != num; f++)
			;
		if (f->num == 0) {
			if (!skip(r, wire))
				goto bad;
			continue;
		}
		if (f->type == F_INT || f->type == F_BOOL) {
			if (wire != 0 || !varint(r, &n))
				goto bad;
			if (f->type == F_INT && n == 0)
				continue;	/* as JSON's omitempty would */
			json_object_set_new(out, f->name, f->type == F_INT
								  ? json_integer((json_int_t)n)
								  : json_boolean(n != 0));
			continue;
		}
		if (wire != 2 || !chunk(r, &c))
			goto bad;
		switch (f->type) {
		case F_STR:
			/* Go marshals empty optional strings; JSON clients omit
			 * them, and defaults must see them absent. */
			if (c.p != c.end)
				json_object_set_new(out, f->name, bytes_str(&c));
			break;
		case F_BYTES:
			json_object_set_new(out, f->name, base64(c.p, (size_t)(c.end - c.p)));
			break;
		case F_MSG:
			v = decode(&c, f->sub, depth + 1);
			if (v == NULL)
				goto bad;
			json_object_set_new(out, f->name, v);
			break;
		case F_MAP_SS:
		case F_MAP_SB:
			v = json_object_get(out, f->name);
			if (v == NULL) {
				v = json_object();
				json_object_set_new(out, f->name, v);
			}
			if (!map_entry(&c, v, f->type == F_MAP_SB))
				goto bad;
			break;
		case F_REP_STR:
		case F_REP_MSG:
			arr = json_object_get(out, f->name);
			if (arr == NULL) {
				arr = json_array();
				json_object_set_new(out, f->name, arr);
			}
			v = f->type == F_REP_STR ? bytes_str(&c) : decode(&c, f->sub, depth + 1);
			if (v == NULL)
				goto bad;
			json_array_append_new(arr, v);
			break;
		default:
			goto bad;
		}
	}
	return out;
bad:
	json_decref(out);
	return NULL;
}

or_rc
kube_pb_decode(const void *data, size_t len, json_t **out, struct or_err *err)
{
	struct rd r = {data, (const unsigned char *)data + len}, c, raw = {NULL, NULL};
	json_t *tm = NULL, *obj = NULL;
	const char *av, *kind;
	uint64_t tag;
	size_t i;
	or_rc rc;

	*out = NULL;
	if (len < 4 || memcmp(data, "k8s\0", 4) != 0)
		return or_fail(err, OR_E_MALFORMED, "bad_request", NULL,
			       "the protobuf body does not start with the k8s magic");
	r.p += 4;
	/* runtime.Unknown: 1 typeMeta, 2 raw (the object's own message). */
	while (r.p < r.end) {
		if (!varint(&r, &tag))
			goto bad;
		if ((tag & 7) != 2) {
			if (!skip(&r, (unsigned)(tag & 7)))
				goto bad;
			continue;
		}
		if (!chunk(&r, &c))
			goto bad;
		if ((tag >> 3) == 1) {
			json_decref(tm);
			tm = decode(&c, type_meta, 0);
			if (tm == NULL)
				goto bad;
		} else if ((tag >> 3) == 2) {
			raw = c;
		}
	}
	av = kube_sget(tm, "apiVersion");
	kind = kube_sget(tm, "kind");
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i].api_version, av) == 0 && strcmp(kinds[i].kind, kind) == 0)
			break;
	if (i == sizeof(kinds) / sizeof(kinds[0])) {
		rc = or_fail(err, OR_E_MEDIATYPE, "unsupported_media_type", NULL,
			     "the sandbox decodes protobuf only for Namespace, Secret, ConfigMap, ServiceAccount, TokenRequest and RBAC kinds, not %s %s; send JSON (kubectl <= 1.31, or apply -f)",
			     av, kind);
		goto out;
	}
	if (raw.p == NULL)
		raw.p = raw.end = (const unsigned char *)data + len;
	obj = decode(&raw, kinds[i].msg, 0);
	if (obj == NULL)
		goto bad;
	json_object_set_new(obj, "apiVersion", json_string(av));
	json_object_set_new(obj, "kind", json_string(kind));
	*out = obj;
	rc = OR_OK;
	goto out;
bad:
	rc = or_fail(err, OR_E_MALFORMED, "bad_request", NULL,
		     "the protobuf body could not be decoded");
out:
	json_decref(tm);
	return rc;
}

/*
 * kube_patch.c - the four PATCH flavours kubectl sends, and YAML bodies.
 *
 * - JSON merge patch (RFC 7386): kubectl label/annotate, and apply of
 *   custom resources.
 * - Strategic merge patch: kubectl apply of built-in kinds.  Real servers
 *   read the merge keys from Go struct tags; here a table of the list
 *   fields that matter (containers by name, ports by containerPort or
 *   port, env by name ...) stands in for them.  Directives: $patch
 *   (replace, delete, merge), $setElementOrder/, $deleteFromPrimitiveList/,
 *   $retainKeys.
 * - JSON patch (RFC 6902).
 * Every function works on copies: inputs are never changed.
 */
#include "kube_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* ---- JSON merge patch ------------------------------------------------ */

static json_t *
merge(const json_t *target, const json_t *patch)
{
	json_t *out, *v, *cur;
	const char *key;

	if (!json_is_object(patch))
		return json_deep_copy(patch);
	out = json_is_object(target) ? json_deep_copy(target) : json_object();
	if (out == NULL)
		return NULL;
	json_object_foreach((json_t *)patch, key, v) {
		if (json_is_null(v)) {
			json_object_del(out, key);
			continue;
		}
		cur = json_object_get(out, key);
		json_object_set_new(out, key, merge(cur, v));
	}
	return out;
}

or_rc
kube_merge_patch(const json_t *target, const json_t *patch, json_t **out,
		 struct or_err *err)
{
	*out = merge(target, patch);
	if (*out == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	return OR_OK;
}

/* ---- strategic merge patch ------------------------------------------- */

/* List fields merged by key; everything else is replaced whole. */
static const struct {
	const char *field;
	const char *key;
} merge_keys[] = {
	{"containers", "name"},
	{"initContainers", "name"},
	{"ephemeralContainers", "name"},
	{"env", "name"},
	{"volumes", "name"},
	{"volumeMounts", "mountPath"},
	{"volumeDevices", "devicePath"},
	{"imagePullSecrets", "name"},
	{"conditions", "type"},
	{"hostAliases", "ip"},
	{"ownerReferences", "uid"},
	{"topologySpreadConstraints", "topologyKey"},
	{"resourceClaims", "name"},
	{"secrets", "name"},
	{"ports", NULL},	/* containerPort in containers, port in services */
	{"finalizers", ""},	/* a set of strings */
};

static int
list_strategy(const char *field, const json_t *cur, const json_t *patch,
	      const char **key)
{
	size_t i, j, m;
	json_t *e;
	const json_t *lists[2] = {cur, patch};

	for (i = 0; i < sizeof(merge_keys) / sizeof(merge_keys[0]); i++) {
		if (strcmp(field, merge_keys[i].field) != 0)
			continue;
		*key = merge_keys[i].key;
		if (*key != NULL)
			return 1;
		*key = "port";
		for (j = 0; j < 2; j++)
			json_array_foreach(lists[j], m, e)
				if (json_object_get(e, "containerPort") != NULL)
					*key = "containerPort";
		return 1;
	}
	return 0;
}

static json_t *smp_obj(const json_t *target, const json_t *patch, struct or_err *err);

/* A copy of v with the directives of nested objects applied to nothing
 * (they must not reach the stored object). */
static json_t *
strip(const json_t *v, struct or_err *err)
{
	if (json_is_object(v))
		return smp_obj(NULL, v, err);
	return json_deep_copy(v);
}

static long
find_keyed(const json_t *list, const char *key, const json_t *val)
{
	size_t i;
	json_t *e;

	json_array_foreach(list, i, e)
		if (json_is_object(e) && json_equal(json_object_get(e, key), val))
			return (long)i;
	return -1;
}

static json_t *
smp_list(const char *field, const json_t *cur, const json_t *patch,
	 struct or_err *err)
{
	json_t *out, *e, *kv, *merged;
	const char *key = NULL, *dir;
	size_t i;
	long at;

	/* [{"$patch": "replace"}, ...] replaces the list. */
	json_array_foreach(patch, i, e) {
		dir = json_string_value(json_object_get(e, "$patch"));
		if (dir != NULL && strcmp(dir, "replace") == 0) {
			out = json_array();
			json_array_foreach(patch, i, e)
				if (json_object_get(e, "$patch") == NULL)
					json_array_append_new(out, strip(e, err));
			return out;
		}
	}
	if (!list_strategy(field, cur, patch, &key) || !json_is_array(cur)) {
		out = json_array();
		json_array_foreach(patch, i, e) {
			dir = json_string_value(json_object_get(e, "$patch"));
			if (dir == NULL)
				json_array_append_new(out, strip(e, err));
		}
		return out;
	}
	out = json_deep_copy(cur);
	if (key[0] == '\0') {
		/* A set of primitives. */
		json_array_foreach(patch, i, e) {
			size_t j;
			json_t *x;
			int have = 0;

			json_array_foreach(out, j, x)
				if (json_equal(x, e))
					have = 1;
			if (!have)
				json_array_append(out, e);
		}
		return out;
	}
	json_array_foreach(patch, i, e) {
		if (!json_is_object(e)) {
			json_array_append(out, e);
			continue;
		}
		kv = json_object_get(e, key);
		dir = json_string_value(json_object_get(e, "$patch"));
		at = kv != NULL ? find_keyed(out, key, kv) : -1;
		if (dir != NULL && strcmp(dir, "delete") == 0) {
			while (at >= 0) {
				json_array_remove(out, (size_t)at);
				at = find_keyed(out, key, kv);
			}
			continue;
		}
		merged = smp_obj(at >= 0 ? json_array_get(out, (size_t)at) : NULL, e, err);
		if (merged == NULL)
			continue;
		if (at >= 0)
			json_array_set_new(out, (size_t)at, merged);
		else
			json_array_append_new(out, merged);
	}
	return out;
}

static int
order_match(const json_t *item, const json_t *want, const char *key)
{
	if (json_is_object(want) && key != NULL && key[0] != '\0')
		return json_is_object(item) &&
		       json_equal(json_object_get(item, key), json_object_get(want, key));
	return json_equal(item, want);
}

/* Items named in order first, in that order; the others after, as they were. */
static void
set_order(json_t *obj, const char *field, const json_t *order)
{
	json_t *list = json_object_get(obj, field), *out, *e, *w;
	const char *key = NULL;
	size_t i, j;
	char *used;

	if (!json_is_array(list) || !json_is_array(order))
		return;
	if (!list_strategy(field, list, order, &key))
		key = "name";
	used = calloc(json_array_size(list) + 1, 1);
	out = json_array();
	if (used == NULL || out == NULL)
		goto out;
	json_array_foreach(order, j, w) {
		json_array_foreach(list, i, e) {
			if (!used[i] && order_match(e, w, key)) {
				used[i] = 1;
				json_array_append(out, e);
				break;
			}
		}
	}
	json_array_foreach(list, i, e)
		if (!used[i])
			json_array_append(out, e);
	json_object_set(obj, field, out);
out:
	json_decref(out);
	free(used);
}

static json_t *
smp_obj(const json_t *target, const json_t *patch, struct or_err *err)
{
	json_t *out, *v, *cur, *retain;
	const char *key, *dir;
	size_t i;

	dir = json_string_value(json_object_get(patch, "$patch"));
	if (dir != NULL && strcmp(dir, "replace") == 0)
		target = NULL;
	out = json_is_object(target) ? json_deep_copy(target) : json_object();
	if (out == NULL)
		return NULL;
	json_object_foreach((json_t *)patch, key, v) {
		if (key[0] == '$') {
			if (strncmp(key, "$deleteFromPrimitiveList/", 25) == 0) {
				json_t *list = json_object_get(out, key + 25), *x;

				json_array_foreach(v, i, x) {
					long at;

					do {
						size_t j;
						json_t *y;

						at = -1;
						json_array_foreach(list, j, y)
							if (json_equal(x, y))
								at = (long)j;
						if (at >= 0)
							json_array_remove(list, (size_t)at);
					} while (at >= 0);
				}
			}
			continue;
		}
		cur = json_object_get(out, key);
		if (json_is_null(v)) {
			json_object_del(out, key);
		} else if (json_is_object(v)) {
			dir = json_string_value(json_object_get(v, "$patch"));
			if (dir != NULL && strcmp(dir, "delete") == 0)
				json_object_del(out, key);
			else
				json_object_set_new(out, key, smp_obj(cur, v, err));
		} else if (json_is_array(v)) {
			json_object_set_new(out, key, smp_list(key, cur, v, err));
		} else {
			json_object_set(out, key, v);
		}
	}
	/* Orders last: they describe the merged lists. */
	json_object_foreach((json_t *)patch, key, v)
		if (strncmp(key, "$setElementOrder/", 17) == 0)
			set_order(out, key + 17, v);
	retain = json_object_get(patch, "$retainKeys");
	if (json_is_array(retain)) {
		void *tmp;

		json_object_foreach_safe(out, tmp, key, v) {
			json_t *x;
			int keep = 0;

			json_array_foreach(retain, i, x)
				if (json_is_string(x) && strcmp(json_string_value(x), key) == 0)
					keep = 1;
			if (!keep)
				json_object_del(out, key);
		}
	}
	return out;
}

or_rc
kube_smp(const json_t *target, const json_t *patch, json_t **out, struct or_err *err)
{
	if (!json_is_object(patch))
		return or_fail(err, OR_E_MALFORMED, "bad_request", NULL,
			       "a strategic merge patch must be a JSON object");
	*out = smp_obj(target, patch, err);
	if (*out == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	return OR_OK;
}

/* ---- JSON patch -------------------------------------------------------- */

/* Split pointer into its parent and last token (unescaped into last). */
static json_t *
ptr_parent(json_t *doc, const char *ptr, char *last, size_t size)
{
	char tok[512];
	const char *p = ptr, *slash;
	json_t *cur = doc;
	size_t n, i, o;

	if (*p != '/')
		return NULL;
	for (;;) {
		p++;
		slash = strchr(p, '/');
		n = slash != NULL ? (size_t)(slash - p) : strlen(p);
		if (n >= sizeof(tok) || n >= size)
			return NULL;
		for (i = o = 0; i < n; i++) {
			if (p[i] == '~' && i + 1 < n && (p[i + 1] == '0' || p[i + 1] == '1')) {
				tok[o++] = p[i + 1] == '0' ? '~' : '/';
				i++;
			} else {
				tok[o++] = p[i];
			}
		}
		tok[o] = '\0';
		if (slash == NULL) {
			memcpy(last, tok, o + 1);
			return cur;
		}
		if (json_is_object(cur)) {
			cur = json_object_get(cur, tok);
		} else if (json_is_array(cur)) {
			char *end;
			unsigned long idx = strtoul(tok, &end, 10);

			if (*tok == '\0' || *end != '\0')
				return NULL;
			cur = json_array_get(cur, idx);
		} else {
			return NULL;
		}
		if (cur == NULL)
			return NULL;
		p = slash;
	}
}

static int
arr_index(const json_t *arr, const char *tok, int append_ok, size_t *idx)
{
	char *end;
	unsigned long v;

	if (append_ok && strcmp(tok, "-") == 0) {
		*idx = json_array_size(arr);
		return 1;
	}
	if (*tok == '\0' || !isdigit((unsigned char)*tok))
		return 0;
	v = strtoul(tok, &end, 10);
	if (*end != '\0' || v > json_array_size(arr) - (append_ok ? 0 : 1) ||
	    (!append_ok && json_array_size(arr) == 0))
		return 0;
	*idx = v;
	return 1;
}

static json_t *
ptr_get(json_t *doc, const char *ptr)
{
	char last[512];
	json_t *parent;
	size_t idx;

	if (*ptr == '\0')
		return doc;
	parent = ptr_parent(doc, ptr, last, sizeof(last));
	if (json_is_object(parent))
		return json_object_get(parent, last);
	if (json_is_array(parent) && arr_index(parent, last, 0, &idx))
		return json_array_get(parent, idx);
	return NULL;
}

/* add (insert=1) or replace (insert=0) value (stolen) at ptr. */
static int
ptr_put(json_t **doc, const char *ptr, json_t *value, int insert)
{
	char last[512];
	json_t *parent;
	size_t idx;

	if (*ptr == '\0') {
		json_decref(*doc);
		*doc = value;
		return 1;
	}
	parent = ptr_parent(*doc, ptr, last, sizeof(last));
	if (json_is_object(parent)) {
		if (!insert && json_object_get(parent, last) == NULL)
			goto bad;
		json_object_set_new(parent, last, value);
		return 1;
	}
	if (json_is_array(parent) && arr_index(parent, last, insert, &idx)) {
		if (insert)
			json_array_insert_new(parent, idx, value);
		else
			json_array_set_new(parent, idx, value);
		return 1;
	}
bad:
	json_decref(value);
	return 0;
}

static int
ptr_remove(json_t *doc, const char *ptr)
{
	char last[512];
	json_t *parent = *ptr != '\0' ? ptr_parent(doc, ptr, last, sizeof(last)) : NULL;
	size_t idx;

	if (json_is_object(parent))
		return json_object_del(parent, last) == 0;
	if (json_is_array(parent) && arr_index(parent, last, 0, &idx))
		return json_array_remove(parent, idx) == 0;
	return 0;
}

or_rc
kube_json_patch(const json_t *target, const json_t *ops, json_t **out,
		struct or_err *err)
{
	json_t *doc, *op, *val;
	const char *name, *path, *from;
	size_t i;
	int ok;

	*out = NULL;
	if (!json_is_array(ops))
		return or_fail(err, OR_E_MALFORMED, "bad_request", NULL,
			       "a JSON patch must be an array of operations");
	doc = json_deep_copy(target);
	if (doc == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	json_array_foreach(ops, i, op) {
		name = kube_sget(op, "op");
		path = json_string_value(json_object_get(op, "path"));
		from = json_string_value(json_object_get(op, "from"));
		val = json_object_get(op, "value");
		if (path == NULL)
			goto bad;
		if (strcmp(name, "add") == 0 && val != NULL) {
			ok = ptr_put(&doc, path, json_deep_copy(val), 1);
		} else if (strcmp(name, "replace") == 0 && val != NULL) {
			ok = ptr_get(doc, path) != NULL &&
			     ptr_put(&doc, path, json_deep_copy(val), 0);
		} else if (strcmp(name, "remove") == 0) {
			ok = ptr_remove(doc, path);
		} else if (strcmp(name, "test") == 0 && val != NULL) {
			ok = json_equal(ptr_get(doc, path), val);
			if (!ok) {
				json_decref(doc);
				return or_fail(err, OR_E_INVALID, "invalid", path,
					       "the server rejected our request due to an error in our request: testing value %s failed",
					       path);
			}
		} else if ((strcmp(name, "move") == 0 || strcmp(name, "copy") == 0) &&
			   from != NULL) {
			json_t *v = json_deep_copy(ptr_get(doc, from));

			ok = v != NULL;
			if (ok && name[0] == 'm')
				ok = ptr_remove(doc, from);
			if (ok)
				ok = ptr_put(&doc, path, v, 1);
			else
				json_decref(v);
		} else {
			goto bad;
		}
		if (!ok) {
			json_decref(doc);
			return or_fail(err, OR_E_INVALID, "invalid", path,
				       "the server rejected our request due to an error in our request: doc is missing path: \"%s\"",
				       path);
		}
	}
	*out = doc;
	return OR_OK;
bad:
	json_decref(doc);
	return or_fail(err, OR_E_MALFORMED, "bad_request", NULL,
		       "operation %zu of the JSON patch is not valid", i);
}

/* ---- YAML ------------------------------------------------------------------ */

/* A plain scalar's value under the YAML 1.2 core schema. */
static json_t *
plain_scalar(const char *s)
{
	char *end;
	long long ll;
	double d;

	if (*s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	    strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0)
		return json_null();
	if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
		return json_true();
	if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
		return json_false();
	if (strncmp(s, "0x", 2) == 0 || strncmp(s, "0o", 2) == 0) {
		ll = strtoll(s + 2, &end, s[1] == 'x' ? 16 : 8);
		if (s[2] != '\0' && *end == '\0')
			return json_integer(ll);
		return json_string(s);
	}
	if (strspn(s, "+-0123456789") == strlen(s) && strspn(s + 1, "0123456789") == strlen(s + 1)) {
		ll = strtoll(s, &end, 10);
		if (*end == '\0')
			return json_integer(ll);
	}
	if (strspn(s, "+-0123456789.eE") == strlen(s) && strpbrk(s, "0123456789") != NULL) {
		d = strtod(s, &end);
		if (*end == '\0')
			return json_real(d);
	}
	return json_string(s);
}

struct yframe {
	json_t *node;
	char *key;	/* mapping: the key waiting for its value */
};

or_rc
kube_yaml_parse(const char *text, size_t len, json_t **out, struct or_err *err)
{
	yaml_parser_t p;
	yaml_event_t ev;
	struct yframe stack[64];
	json_t *anchors = json_object(), *node, *root = NULL;
	int depth = 0, done = 0, have_ev = 0;
	or_rc rc = OR_OK;
	const char *anchor;

	*out = NULL;
	if (!yaml_parser_initialize(&p)) {
		json_decref(anchors);
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	while (!done) {
		if (!yaml_parser_parse(&p, &ev)) {
			rc = or_fail(err, OR_E_MALFORMED, "bad_request", NULL,
				     "error converting YAML to JSON: yaml: line %zu: %s",
				     p.problem_mark.line + 1,
				     p.problem != NULL ? p.problem : "syntax error");
			goto out;
		}
		have_ev = 1;
		node = NULL;
		anchor = NULL;
		switch (ev.type) {
		case YAML_SCALAR_EVENT: {
			const char *v = (const char *)ev.data.scalar.value;
			const char *tag = (const char *)ev.data.scalar.tag;

			if (ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
			    (tag != NULL && strcmp(tag, YAML_STR_TAG) == 0) ||
			    (depth > 0 && json_is_object(stack[depth - 1].node) &&
			     stack[depth - 1].key == NULL))
				node = json_string(v);
			else
				node = plain_scalar(v);
			anchor = (const char *)ev.data.scalar.anchor;
			break;
		}
		case YAML_ALIAS_EVENT:
			node = json_incref(json_object_get(anchors,
							   (const char *)ev.data.alias.anchor));
			if (node == NULL) {
				rc = or_fail(err, OR_E_MALFORMED, "bad_request", NULL,
					     "error converting YAML to JSON: unknown anchor");
				goto out;
			}
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (depth == (int)(sizeof(stack) / sizeof(stack[0]))) {
				rc = or_fail(err, OR_E_MALFORMED, "bad_request", NULL,
					     "YAML nested too deeply");
				goto out;
			}
			stack[depth].node = ev.type == YAML_SEQUENCE_START_EVENT ? json_array()
										  : json_object();
			stack[depth].key = NULL;
			anchor = ev.type == YAML_SEQUENCE_START_EVENT
					 ? (const char *)ev.data.sequence_start.anchor
					 : (const char *)ev.data.mapping_start.anchor;
			if (anchor != NULL)
				json_object_set(anchors, anchor, stack[depth].node);
			depth++;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			node = stack[depth].node;
			free(stack[depth].key);
			break;
		case YAML_DOCUMENT_END_EVENT:
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		default:
			break;
		}
		if (node != NULL && anchor != NULL)
			json_object_set(anchors, anchor, node);
		if (node != NULL) {
			if (depth == 0) {
				json_decref(root);
				root = node;
			} else if (json_is_array(stack[depth - 1].node)) {
				json_array_append_new(stack[depth - 1].node, node);
			} else if (stack[depth - 1].key == NULL) {
				/* A key: JSON keys are strings. */
				if (json_is_string(node)) {
					stack[depth - 1].key = strdup(json_string_value(node));
				} else {
					char *d = json_dumps(node, JSON_ENCODE_ANY);

					stack[depth - 1].key = d != NULL ? d : strdup("");
				}
				json_decref(node);
			} else {
				json_object_set_new(stack[depth - 1].node, stack[depth - 1].key,
						    node);
				free(stack[depth - 1].key);
				stack[depth - 1].key = NULL;
			}
		}
		yaml_event_delete(&ev);
		have_ev = 0;
	}
out:
	if (have_ev)
		yaml_event_delete(&ev);
	while (depth > 0) {
		depth--;
		json_decref(stack[depth].node);
		free(stack[depth].key);
	}
	yaml_parser_delete(&p);
	json_decref(anchors);
	if (rc != OR_OK) {
		json_decref(root);
		return rc;
	}
	*out = root != NULL ? root : json_null();
	return OR_OK;
}

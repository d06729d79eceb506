/*
 * ydoc.c - YAML documents into JSON values (see ydoc.h).
 *
 * Built on libyaml's event parser rather than its document loader: the
 * loader tags every untagged plain scalar as !!str, which would lose the
 * difference between `replicas: 1` and `replicas: !!str 1`.  The events
 * keep it, and let aliases be counted as they are expanded.
 *
 * Must never: recurse without a bound, expand aliases without a bound, or
 * keep a value that is not a tree (an alias is a deep copy, so a later
 * change to one copy does not show in another).
 */
#include "ydoc.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YTAG "tag:yaml.org,2002:"

/* One anchor of the current document: its value and how many values it
 * holds (charged again at every alias). */
struct anchor {
	char *name;
	json_t *value;
	size_t weight;
};

struct ctx {
	yaml_parser_t parser;
	int docno;		/* 1-based number of the current document */
	size_t values;		/* values built so far, aliases expanded */
	struct anchor *anchors;
	size_t nanchors, capanchors;
	struct or_err *err;
};

static or_rc
fail_at(struct ctx *c, or_rc rc, size_t line, const char *what)
{
	return or_fail(c->err, rc, NULL, NULL, "YAML document %d, line %zu: %s",
		       c->docno > 0 ? c->docno : 1, line + 1, what);
}

/* The parser's own complaint, with its line. */
static or_rc
fail_parser(struct ctx *c)
{
	const char *problem = c->parser.problem != NULL ? c->parser.problem : "cannot parse";

	if (c->parser.error == YAML_MEMORY_ERROR)
		return or_fail(c->err, OR_E_NOMEM, NULL, NULL, "out of memory parsing YAML");
	if (c->parser.context != NULL)
		return or_fail(c->err, OR_E_MALFORMED, NULL, NULL,
			       "YAML document %d, line %zu: %s %s (line %zu)",
			       c->docno > 0 ? c->docno : 1, c->parser.problem_mark.line + 1,
			       problem, c->parser.context, c->parser.context_mark.line + 1);
	return fail_at(c, OR_E_MALFORMED, c->parser.problem_mark.line, problem);
}

static void
anchors_clear(struct ctx *c)
{
	size_t i;

	for (i = 0; i < c->nanchors; i++) {
		free(c->anchors[i].name);
		json_decref(c->anchors[i].value);
	}
	c->nanchors = 0;
}

/* Remember value under name (a later anchor of the same name wins, as in
 * YAML).  Takes its own reference. */
static or_rc
anchor_put(struct ctx *c, const char *name, json_t *value, size_t weight)
{
	struct anchor *a;
	size_t i;

	for (i = 0; i < c->nanchors; i++)
		if (strcmp(c->anchors[i].name, name) == 0) {
			json_decref(c->anchors[i].value);
			c->anchors[i].value = json_incref(value);
			c->anchors[i].weight = weight;
			return OR_OK;
		}
	if (c->nanchors == c->capanchors) {
		size_t cap = c->capanchors != 0 ? c->capanchors * 2 : 16;

		a = realloc(c->anchors, cap * sizeof(*a));
		if (a == NULL)
			return or_fail(c->err, OR_E_NOMEM, NULL, NULL, "out of memory parsing YAML");
		c->anchors = a;
		c->capanchors = cap;
	}
	a = &c->anchors[c->nanchors];
	a->name = strdup(name);
	if (a->name == NULL)
		return or_fail(c->err, OR_E_NOMEM, NULL, NULL, "out of memory parsing YAML");
	a->value = json_incref(value);
	a->weight = weight;
	c->nanchors++;
	return OR_OK;
}

static const struct anchor *
anchor_get(const struct ctx *c, const char *name)
{
	size_t i;

	for (i = c->nanchors; i-- > 0;)
		if (strcmp(c->anchors[i].name, name) == 0)
			return &c->anchors[i];
	return NULL;
}

/* ---- scalars ------------------------------------------------------------ */

static int
in_set(const char *s, const char *const *set)
{
	for (; *set != NULL; set++)
		if (strcmp(s, *set) == 0)
			return 1;
	return 0;
}

static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
static const char *const trues[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on",
				    "On", "ON", "y", "Y", NULL};
static const char *const falses[] = {"false", "False", "FALSE", "no", "No", "NO", "off",
				     "Off", "OFF", "n", "N", NULL};

/* Go's strconv.ParseInt(s, 0, 64) after removing '_' (what go-yaml v2
 * does): sign, then 0x / 0o / 0b / leading-0 octal / decimal.  1 with
 * *out set, 0 when s is not such an integer or does not fit. */
static int
parse_int(const char *s, long long *out)
{
	char digits[128];
	unsigned long long v = 0, lim;
	int neg = 0, base = 10, d;
	size_t n = 0;
	const char *p = s;

	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	} else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) {
		base = 8;
		p += 2;
	} else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B')) {
		base = 2;
		p += 2;
	} else if (p[0] == '0' && p[1] != '\0') {
		base = 8;
		p += 1;
	}
	for (; *p != '\0'; p++) {
		if (*p == '_')
			continue;
		if (n + 1 >= sizeof(digits))
			return 0;
		digits[n++] = *p;
	}
	if (n == 0)
		return 0;
	lim = neg ? (unsigned long long)INT64_MAX + 1 : (unsigned long long)INT64_MAX;
	for (size_t i = 0; i < n; i++) {
		char ch = digits[i];

		if (ch >= '0' && ch <= '9')
			d = ch - '0';
		else if (ch >= 'a' && ch <= 'f')
			d = ch - 'a' + 10;
		else if (ch >= 'A' && ch <= 'F')
			d = ch - 'A' + 10;
		else
			return 0;
		if (d >= base)
			return 0;
		if (v > (lim - (unsigned long long)d) / (unsigned long long)base)
			return 0;
		v = v * (unsigned long long)base + (unsigned long long)d;
	}
	if (neg)
		*out = v == (unsigned long long)INT64_MAX + 1 ? INT64_MIN : -(long long)v;
	else
		*out = (long long)v;
	return 1;
}

/* go-yaml's yamlStyleFloat: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
 * (after removing '_'). */
static int
parse_float(const char *s, double *out)
{
	char clean[128], *end;
	size_t n = 0, i = 0, digits = 0;
	const char *p;

	for (p = s; *p != '\0'; p++) {
		if (*p == '_')
			continue;
		if (n + 1 >= sizeof(clean))
			return 0;
		clean[n++] = *p;
	}
	clean[n] = '\0';
	if (clean[i] == '+' || clean[i] == '-')
		i++;
	if (clean[i] == '.') {
		i++;
		while (clean[i] >= '0' && clean[i] <= '9')
			i++, digits++;
		if (digits == 0)
			return 0;
	} else {
		while (clean[i] >= '0' && clean[i] <= '9')
			i++, digits++;
		if (digits == 0)
			return 0;
		if (clean[i] == '.') {
			i++;
			while (clean[i] >= '0' && clean[i] <= '9')
				i++;
		}
	}
	if (clean[i] == 'e' || clean[i] == 'E') {
		i++;
		if (clean[i] == '+' || clean[i] == '-')
			i++;
		digits = 0;
		while (clean[i] >= '0' && clean[i] <= '9')
			i++, digits++;
		if (digits == 0)
			return 0;
	}
	if (clean[i] != '\0')
		return 0;
	errno = 0;
	*out = strtod(clean, &end);
	return *end == '\0' && isfinite(*out);
}

/* The value of a plain, untagged scalar. */
static json_t *
resolve_plain(const char *s)
{
	long long iv;
	double dv;

	if (in_set(s, nulls))
		return json_null();
	if (in_set(s, trues))
		return json_true();
	if (in_set(s, falses))
		return json_false();
	if (((s[0] >= '0' && s[0] <= '9') || s[0] == '-' || s[0] == '+' || s[0] == '.')) {
		if (parse_int(s, &iv))
			return json_integer(iv);
		if (parse_float(s, &dv))
			return json_real(dv);
	}
	return json_string(s);
}

/* A scalar event's value: tags first, then the style (anything quoted
 * or a block is a string), then plain resolution.  NULL with err set
 * when an explicit tag does not fit the text. */
static json_t *
scalar_value(struct ctx *c, const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	const char *tag = (const char *)ev->data.scalar.tag;
	size_t line = ev->start_mark.line;
	json_t *v = NULL;
	long long iv;
	double dv;
	char msg[200];

	if (strlen(s) != ev->data.scalar.length) {
		fail_at(c, OR_E_MALFORMED, line, "a string holds a NUL character");
		return NULL;
	}
	if (tag != NULL && strncmp(tag, YTAG, strlen(YTAG)) == 0) {
		const char *t = tag + strlen(YTAG);

		if (strcmp(t, "str") == 0 || strcmp(t, "binary") == 0 ||
		    strcmp(t, "timestamp") == 0)
			v = json_string(s);
		else if (strcmp(t, "null") == 0 && in_set(s, nulls))
			v = json_null();
		else if (strcmp(t, "bool") == 0 && in_set(s, trues))
			v = json_true();
		else if (strcmp(t, "bool") == 0 && in_set(s, falses))
			v = json_false();
		else if (strcmp(t, "int") == 0 && parse_int(s, &iv))
			v = json_integer(iv);
		else if (strcmp(t, "float") == 0 && parse_int(s, &iv))
			v = json_real((double)iv);
		else if (strcmp(t, "float") == 0 && parse_float(s, &dv))
			v = json_real(dv);
		else if (strcmp(t, "null") == 0 || strcmp(t, "bool") == 0 ||
			 strcmp(t, "int") == 0 || strcmp(t, "float") == 0) {
			snprintf(msg, sizeof(msg), "cannot decode \"%.60s\" as !!%s", s, t);
			fail_at(c, OR_E_MALFORMED, line, msg);
			return NULL;
		} else
			v = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? resolve_plain(s)
									     : json_string(s);
	} else if (tag != NULL && strcmp(tag, "!") != 0) {
		/* A local tag (!Ref): go-yaml resolves the text as if untagged. */
		v = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? resolve_plain(s)
								     : json_string(s);
	} else if (tag == NULL && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		v = resolve_plain(s);
	} else {
		v = json_string(s);
	}
	if (v == NULL)
		fail_at(c, OR_E_MALFORMED, line, "a string is not valid UTF-8");
	return v;
}

/* A mapping key as JSON wants it: a string.  Numbers and booleans are
 * printed the way sigs.k8s.io/yaml prints them. */
static char *
key_text(const json_t *k)
{
	char buf[64];

	if (json_is_string(k))
		return strdup(json_string_value(k));
	if (json_is_integer(k)) {
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(k));
		return strdup(buf);
	}
	if (json_is_real(k)) {
		snprintf(buf, sizeof(buf), "%.17g", json_real_value(k));
		return strdup(buf);
	}
	if (json_is_true(k))
		return strdup("true");
	if (json_is_false(k))
		return strdup("false");
	if (json_is_null(k))
		return strdup("null");
	return NULL;
}

/* ---- nodes -------------------------------------------------------------- */

static or_rc next_event(struct ctx *c, yaml_event_t *ev);
static or_rc node(struct ctx *c, yaml_event_t *ev, int depth, json_t **out, size_t *weight);

static or_rc
next_event(struct ctx *c, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&c->parser, ev))
		return fail_parser(c);
	return OR_OK;
}

static or_rc
charge(struct ctx *c, size_t n, size_t line)
{
	if (n > YDOC_MAX_VALUES || c->values > YDOC_MAX_VALUES - n)
		return fail_at(c, OR_E_TOOLARGE, line,
			       "too many values (aliases expand past the limit)");
	c->values += n;
	return OR_OK;
}

/* Merge key: fold the mapping (or each mapping of a sequence) into
 * merged, keys already there winning (earlier sources win, as in YAML). */
static or_rc
merge_into(struct ctx *c, json_t *merged, json_t *src, size_t line)
{
	size_t i;
	json_t *m;

	if (json_is_object(src)) {
		json_object_update_missing(merged, src);
		return OR_OK;
	}
	if (json_is_array(src)) {
		json_array_foreach(src, i, m) {
			if (!json_is_object(m))
				return fail_at(c, OR_E_MALFORMED, line,
					       "map merge requires map or sequence of maps as the value");
			json_object_update_missing(merged, m);
		}
		return OR_OK;
	}
	return fail_at(c, OR_E_MALFORMED, line,
		       "map merge requires map or sequence of maps as the value");
}

static or_rc
mapping(struct ctx *c, int depth, json_t **out, size_t *weight)
{
	json_t *obj = json_object(), *merged = json_object(), *k = NULL, *v = NULL;
	yaml_event_t ev;
	size_t w = 1, kw, vw, line;
	or_rc rc = OR_OK;
	char *key = NULL, msg[200];
	int is_merge;

	if (obj == NULL || merged == NULL) {
		rc = or_fail(c->err, OR_E_NOMEM, NULL, NULL, "out of memory parsing YAML");
		goto out;
	}
	for (;;) {
		rc = next_event(c, &ev);
		if (rc != OR_OK)
			goto out;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		line = ev.start_mark.line;
		if (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT) {
			yaml_event_delete(&ev);
			rc = fail_at(c, OR_E_MALFORMED, line,
				     "a mapping key is a mapping or a sequence");
			goto out;
		}
		is_merge = ev.type == YAML_SCALAR_EVENT && ev.data.scalar.tag == NULL &&
			   ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
			   strcmp((const char *)ev.data.scalar.value, "<<") == 0;
		rc = node(c, &ev, depth + 1, &k, &kw);
		if (rc != OR_OK)
			goto out;
		key = key_text(k);
		json_decref(k);
		k = NULL;
		if (key == NULL) {
			rc = fail_at(c, OR_E_MALFORMED, line,
				     "a mapping key is a mapping or a sequence");
			goto out;
		}
		rc = next_event(c, &ev);
		if (rc != OR_OK)
			goto out;
		rc = node(c, &ev, depth + 1, &v, &vw);
		if (rc != OR_OK)
			goto out;
		if (is_merge) {
			rc = merge_into(c, merged, v, line);
			json_decref(v);
			v = NULL;
			if (rc != OR_OK)
				goto out;
		} else {
			if (json_object_get(obj, key) != NULL) {
				snprintf(msg, sizeof(msg), "mapping key \"%.80s\" already defined",
					 key);
				rc = fail_at(c, OR_E_MALFORMED, line, msg);
				goto out;
			}
			if (json_object_set_new(obj, key, v) != 0) {
				v = NULL;
				rc = fail_at(c, OR_E_MALFORMED, line,
					     "a mapping key is not valid UTF-8");
				goto out;
			}
			w += vw;
		}
		v = NULL;
		free(key);
		key = NULL;
	}
	/* Keys written in the mapping win over merged ones. */
	json_object_update_missing(obj, merged);
	*out = obj;
	obj = NULL;
	*weight = w + json_object_size(merged);
out:
	free(key);
	json_decref(k);
	json_decref(v);
	json_decref(obj);
	json_decref(merged);
	return rc;
}

static or_rc
sequence(struct ctx *c, int depth, json_t **out, size_t *weight)
{
	json_t *arr = json_array(), *v = NULL;
	yaml_event_t ev;
	size_t w = 1, vw;
	or_rc rc = OR_OK;

	if (arr == NULL)
		return or_fail(c->err, OR_E_NOMEM, NULL, NULL, "out of memory parsing YAML");
	for (;;) {
		rc = next_event(c, &ev);
		if (rc != OR_OK)
			goto out;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		rc = node(c, &ev, depth + 1, &v, &vw);
		if (rc != OR_OK)
			goto out;
		if (json_array_append_new(arr, v) != 0) {
			rc = or_fail(c->err, OR_E_NOMEM, NULL, NULL, "out of memory parsing YAML");
			goto out;
		}
		w += vw;
	}
	*out = arr;
	arr = NULL;
	*weight = w;
out:
	json_decref(arr);
	return rc;
}

/* The value that starts with event ev (consumed here, deleted here), into
 * *out (new reference) with its weight (values it holds). */
static or_rc
node(struct ctx *c, yaml_event_t *ev, int depth, json_t **out, size_t *weight)
{
	const struct anchor *a;
	char *anchor = NULL, msg[160];
	size_t line = ev->start_mark.line;
	json_t *v = NULL;
	size_t w = 1;
	or_rc rc = OR_OK;

	*out = NULL;
	if (depth > YDOC_MAX_DEPTH) {
		rc = fail_at(c, OR_E_MALFORMED, line, "values nest too deeply");
		goto out;
	}
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		a = anchor_get(c, (const char *)ev->data.alias.anchor);
		if (a == NULL) {
			snprintf(msg, sizeof(msg), "unknown anchor '%.80s' referenced",
				 (const char *)ev->data.alias.anchor);
			rc = fail_at(c, OR_E_MALFORMED, line, msg);
			goto out;
		}
		rc = charge(c, a->weight, line);
		if (rc != OR_OK)
			goto out;
		v = json_deep_copy(a->value);
		w = a->weight;
		if (v == NULL)
			rc = or_fail(c->err, OR_E_NOMEM, NULL, NULL, "out of memory parsing YAML");
		break;
	case YAML_SCALAR_EVENT:
		rc = charge(c, 1, line);
		if (rc != OR_OK)
			goto out;
		if (ev->data.scalar.anchor != NULL)
			anchor = strdup((const char *)ev->data.scalar.anchor);
		v = scalar_value(c, ev);
		if (v == NULL)
			rc = c->err != NULL && c->err->rc != OR_OK ? c->err->rc : OR_E_MALFORMED;
		break;
	case YAML_MAPPING_START_EVENT:
	case YAML_SEQUENCE_START_EVENT:
		rc = charge(c, 1, line);
		if (rc != OR_OK)
			goto out;
		if (ev->type == YAML_MAPPING_START_EVENT && ev->data.mapping_start.anchor != NULL)
			anchor = strdup((const char *)ev->data.mapping_start.anchor);
		if (ev->type == YAML_SEQUENCE_START_EVENT && ev->data.sequence_start.anchor != NULL)
			anchor = strdup((const char *)ev->data.sequence_start.anchor);
		if (ev->type == YAML_MAPPING_START_EVENT)
			rc = mapping(c, depth, &v, &w);
		else
			rc = sequence(c, depth, &v, &w);
		break;
	default:
		rc = fail_at(c, OR_E_MALFORMED, line, "unexpected YAML event");
		break;
	}
	if (rc == OR_OK && anchor != NULL)
		rc = anchor_put(c, anchor, v, w);
	if (rc == OR_OK) {
		*out = v;
		*weight = w;
		v = NULL;
	}
out:
	yaml_event_delete(ev);
	free(anchor);
	json_decref(v);
	return rc;
}

/* ---- documents ---------------------------------------------------------- */

or_rc
ydoc_load(const char *text, size_t len, json_t **docs, json_t **where, struct or_err *err)
{
	struct ctx c;
	yaml_event_t ev;
	json_t *all = json_array(), *pos = json_array(), *v = NULL;
	size_t w, line;
	or_rc rc = OR_OK;
	int done = 0;

	*docs = NULL;
	if (where != NULL)
		*where = NULL;
	memset(&c, 0, sizeof(c));
	c.err = err;
	if (all == NULL || pos == NULL) {
		json_decref(all);
		json_decref(pos);
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory parsing YAML");
	}
	if (len > YDOC_MAX_INPUT) {
		json_decref(all);
		json_decref(pos);
		return or_fail(err, OR_E_TOOLARGE, NULL, NULL,
			       "the YAML text is %zu bytes; at most %u are read", len,
			       YDOC_MAX_INPUT);
	}
	if (!yaml_parser_initialize(&c.parser)) {
		json_decref(all);
		json_decref(pos);
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory parsing YAML");
	}
	yaml_parser_set_input_string(&c.parser, (const unsigned char *)text, len);
	while (!done) {
		rc = next_event(&c, &ev);
		if (rc != OR_OK)
			goto out;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			yaml_event_delete(&ev);
			break;
		case YAML_DOCUMENT_START_EVENT:
			c.docno++;
			anchors_clear(&c); /* anchors do not cross documents */
			yaml_event_delete(&ev);
			break;
		case YAML_STREAM_START_EVENT:
		case YAML_DOCUMENT_END_EVENT:
			yaml_event_delete(&ev);
			break;
		default:
			line = ev.start_mark.line;
			rc = node(&c, &ev, 0, &v, &w);
			if (rc != OR_OK)
				goto out;
			if (!json_is_null(v)) {
				json_array_append_new(all, v);
				json_array_append_new(pos, json_pack("[iI]", c.docno,
								     (json_int_t)line + 1));
			} else {
				json_decref(v);
			}
			v = NULL;
			break;
		}
	}
	*docs = all;
	all = NULL;
	if (where != NULL) {
		*where = pos;
		pos = NULL;
	}
out:
	anchors_clear(&c);
	free(c.anchors);
	yaml_parser_delete(&c.parser);
	json_decref(all);
	json_decref(pos);
	return rc;
}

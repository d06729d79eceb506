/*
 * bp.c - blueprint loader, graph checks and parameter validation.
 *
 * Loading never aborts the server: every problem in a file becomes that
 * blueprint's load_error.  Only running out of memory or a missing
 * directory is an error of the set.
 */
#include "bp.h"

#include "buf.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BP_FILE_MAX (1024 * 1024)
#define BP_STRING_PARAM_MAX 4096

static const char *const param_types[] = {"string", "integer", "number",
					  "boolean", "array", "object"};
static const char *const param_keys[] = {"type", "description", "default",
					 "required", "pattern", "minimum",
					 "maximum", "enum", "group"};
static const char *const step_keys[] = {"name", "plugin", "with", "after",
					"description", "retries"};
static const char *const top_keys[] = {"name", "description", "params",
				       "steps", "outputs"};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int
in_list(const char *s, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return 1;
	return 0;
}

/* [a-z][a-z0-9-]*, at most max characters, not ending in '-'. */
static int
is_label(const char *s, size_t max)
{
	size_t i;

	if (s[0] < 'a' || s[0] > 'z')
		return 0;
	for (i = 1; s[i] != '\0'; i++) {
		if (i >= max)
			return 0;
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	}
	return s[i - 1] != '-';
}

/* ---- references -------------------------------------------------------- */

/* Copy the run of characters accepted by ok() at p into out.  Returns its
 * length, or 0 when empty or too long. */
static size_t
take_word(const char *p, char *out, size_t size, int (*ok)(int c))
{
	size_t n = 0;

	while (ok((unsigned char)p[n])) {
		if (n + 1 >= size)
			return 0;
		out[n] = p[n];
		n++;
	}
	out[n] = '\0';
	return n;
}

static int
ident_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-';
}

int
bp_ref_next(const char *s, size_t *pos, struct bp_ref *ref)
{
	const char *p, *q;
	size_t n;

	for (p = strstr(s + *pos, "${"); p != NULL; p = strstr(p + 2, "${")) {
		memset(ref, 0, sizeof(*ref));
		ref->start = (size_t)(p - s);
		if (strncmp(p + 2, "params.", 7) == 0) {
			ref->kind = BP_REF_PARAM;
			q = p + 9;
			n = take_word(q, ref->name, sizeof(ref->name), ident_char);
			if (n == 0 || q[n] != '}')
				return -1;
			q += n + 1;
		} else if (strncmp(p + 2, "steps.", 6) == 0) {
			ref->kind = BP_REF_STEP_OUTPUT;
			q = p + 8;
			n = take_word(q, ref->name, sizeof(ref->name), ident_char);
			if (n == 0 || strncmp(q + n, ".outputs.", 9) != 0)
				return -1;
			q += n + 9;
			n = take_word(q, ref->key, sizeof(ref->key), ident_char);
			if (n == 0 || q[n] != '}')
				return -1;
			q += n + 1;
		} else {
			continue; /* a shell variable or other text */
		}
		ref->len = (size_t)(q - p);
		*pos = (size_t)(q - s);
		return 1;
	}
	return 0;
}

/* ---- loading -------------------------------------------------------- */

static void
bp_errorf(struct bp *bp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
bp_errorf(struct bp *bp, const char *fmt, ...)
{
	va_list ap;
	char msg[512];

	if (bp->load_error != NULL)
		return; /* the first problem is the one to fix first */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	bp->load_error = strdup(msg);
}

static ssize_t
param_index(const struct bp *bp, const char *name)
{
	size_t i;

	for (i = 0; i < bp->nparams; i++)
		if (strcmp(bp->params[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

static ssize_t
step_index(const struct bp *bp, const char *name)
{
	size_t i;

	for (i = 0; i < bp->nsteps; i++)
		if (strcmp(bp->steps[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

static int
number_ok(const struct bp_param *p, json_t *v, char *why, size_t size)
{
	json_t *min = json_object_get(p->schema, "minimum");
	json_t *max = json_object_get(p->schema, "maximum");
	double d = json_number_value(v);

	if (min != NULL && d < json_number_value(min)) {
		snprintf(why, size, "must be at least %g", json_number_value(min));
		return 0;
	}
	if (max != NULL && d > json_number_value(max)) {
		snprintf(why, size, "must be at most %g", json_number_value(max));
		return 0;
	}
	return 1;
}

/* Does v satisfy the parameter's schema?  If not, why says so. */
static int
value_ok(const struct bp_param *p, json_t *v, char *why, size_t size)
{
	json_t *en = json_object_get(p->schema, "enum"), *e;
	const char *t = p->type;
	size_t i;

	if (strcmp(t, "string") == 0) {
		if (!json_is_string(v))
			goto type;
		if (json_string_length(v) > BP_STRING_PARAM_MAX) {
			snprintf(why, size, "must be at most %d characters",
				 BP_STRING_PARAM_MAX);
			return 0;
		}
		if (p->has_re && regexec(&p->re, json_string_value(v), 0, NULL, 0) != 0) {
			snprintf(why, size, "must match %s",
				 json_string_value(json_object_get(p->schema, "pattern")));
			return 0;
		}
	} else if (strcmp(t, "integer") == 0) {
		if (!json_is_integer(v))
			goto type;
		if (!number_ok(p, v, why, size))
			return 0;
	} else if (strcmp(t, "number") == 0) {
		if (!json_is_number(v))
			goto type;
		if (!number_ok(p, v, why, size))
			return 0;
	} else if (strcmp(t, "boolean") == 0) {
		if (!json_is_boolean(v))
			goto type;
	} else if (strcmp(t, "array") == 0) {
		if (!json_is_array(v))
			goto type;
	} else if (!json_is_object(v)) {
		goto type;
	}
	if (en != NULL) {
		json_array_foreach(en, i, e)
			if (json_equal(e, v))
				return 1;
		snprintf(why, size, "must be one of the allowed values");
		return 0;
	}
	return 1;
type:
	snprintf(why, size, "must be %s %s",
		 strchr("aeiou", t[0]) != NULL ? "an" : "a", t);
	return 0;
}

static void
load_params(struct bp *bp)
{
	json_t *params = json_object_get(bp->doc, "params");
	const char *name, *key;
	json_t *schema, *v, *d;
	struct bp_param *p;
	char why[256];
	size_t i;

	if (params == NULL)
		return;
	if (!json_is_object(params)) {
		bp_errorf(bp, "\"params\" must be an object");
		return;
	}
	bp->params = calloc(json_object_size(params) + 1, sizeof(*bp->params));
	if (bp->params == NULL) {
		bp_errorf(bp, "out of memory");
		return;
	}
	json_object_foreach(params, name, schema) {
		p = &bp->params[bp->nparams++];
		p->name = name;
		p->schema = schema;
		if (!json_is_object(schema)) {
			bp_errorf(bp, "parameter '%s' must be an object", name);
			continue;
		}
		json_object_foreach(schema, key, v)
			if (!in_list(key, param_keys, NELEM(param_keys)))
				bp_errorf(bp, "parameter '%s' has unknown field '%s'",
					  name, key);
		p->type = json_string_value(json_object_get(schema, "type"));
		if (p->type == NULL || !in_list(p->type, param_types, NELEM(param_types))) {
			bp_errorf(bp, "parameter '%s' needs a \"type\", one of string, "
				      "integer, number, boolean, array, object", name);
			p->type = "string";
			continue;
		}
		v = json_object_get(schema, "description");
		if (!json_is_string(v) || json_string_length(v) == 0)
			bp_errorf(bp, "parameter '%s' needs a one-line \"description\"", name);
		v = json_object_get(schema, "pattern");
		if (v != NULL) {
			if (!json_is_string(v) || strcmp(p->type, "string") != 0)
				bp_errorf(bp, "parameter '%s': \"pattern\" must be a "
					      "string, on a string parameter", name);
			else if (regcomp(&p->re, json_string_value(v),
					 REG_EXTENDED | REG_NOSUB) != 0)
				bp_errorf(bp, "parameter '%s': \"pattern\" is not a "
					      "valid extended regular expression", name);
			else
				p->has_re = 1;
		}
		for (i = 0; i < 2; i++) {
			v = json_object_get(schema, i == 0 ? "minimum" : "maximum");
			if (v != NULL && (!json_is_number(v) ||
					  (strcmp(p->type, "integer") != 0 &&
					   strcmp(p->type, "number") != 0)))
				bp_errorf(bp, "parameter '%s': \"%s\" must be a number, "
					      "on a numeric parameter", name,
					  i == 0 ? "minimum" : "maximum");
		}
		v = json_object_get(schema, "enum");
		if (v != NULL && (!json_is_array(v) || json_array_size(v) == 0))
			bp_errorf(bp, "parameter '%s': \"enum\" must be a non-empty array", name);
		v = json_object_get(schema, "required");
		if (v != NULL && !json_is_boolean(v))
			bp_errorf(bp, "parameter '%s': \"required\" must be true or false", name);
		v = json_object_get(schema, "group");
		if (v != NULL && !json_is_string(v))
			bp_errorf(bp, "parameter '%s': \"group\" must be a string", name);
		d = json_object_get(schema, "default");
		if (d != NULL && !value_ok(p, d, why, sizeof(why)))
			bp_errorf(bp, "parameter '%s': its default %s", name, why);
	}
}

/* Add dependency index dep to step s, once. */
static void
step_add_dep(struct bp *bp, struct bp_step *s, size_t dep)
{
	size_t i, *v;

	for (i = 0; i < s->ndeps; i++)
		if (s->deps[i] == dep)
			return;
	v = realloc(s->deps, (s->ndeps + 1) * sizeof(*v));
	if (v == NULL) {
		bp_errorf(bp, "out of memory");
		return;
	}
	s->deps = v;
	s->deps[s->ndeps++] = dep;
}

/* Check every reference inside value v (recursively); record step
 * references as dependencies of step s (s may be NULL: the outputs map). */
static void
scan_refs(struct bp *bp, struct bp_step *s, json_t *v, const char *where)
{
	struct bp_ref ref;
	const char *key, *str;
	json_t *x;
	size_t i, pos = 0;
	ssize_t idx;
	int r;

	if (json_is_object(v)) {
		json_object_foreach(v, key, x)
			scan_refs(bp, s, x, where);
		return;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			scan_refs(bp, s, x, where);
		return;
	}
	if (!json_is_string(v))
		return;
	str = json_string_value(v);
	while ((r = bp_ref_next(str, &pos, &ref)) != 0) {
		if (r < 0) {
			bp_errorf(bp, "%s: malformed reference at \"%.40s\"; write "
				      "${params.NAME} or ${steps.STEP.outputs.KEY}",
				  where, str + ref.start);
			return;
		}
		if (ref.kind == BP_REF_PARAM) {
			if (param_index(bp, ref.name) < 0)
				bp_errorf(bp, "%s refers to unknown parameter '%s'",
					  where, ref.name);
			continue;
		}
		idx = step_index(bp, ref.name);
		if (idx < 0)
			bp_errorf(bp, "%s refers to unknown step '%s'", where, ref.name);
		else if (s != NULL)
			step_add_dep(bp, s, (size_t)idx);
	}
}

static void
load_steps(struct bp *bp, const struct plugin_set *plugins)
{
	json_t *steps = json_object_get(bp->doc, "steps"), *js, *v, *a;
	struct bp_step *s;
	const char *key;
	char where[128];
	size_t i, j;
	ssize_t idx;

	if (!json_is_array(steps) || json_array_size(steps) == 0) {
		bp_errorf(bp, "\"steps\" must be a non-empty array");
		return;
	}
	bp->steps = calloc(json_array_size(steps), sizeof(*bp->steps));
	if (bp->steps == NULL) {
		bp_errorf(bp, "out of memory");
		return;
	}
	/* First pass: names, so references may point forward. */
	json_array_foreach(steps, i, js) {
		s = &bp->steps[bp->nsteps++];
		s->name = json_string_value(json_object_get(js, "name"));
		s->plugin = json_string_value(json_object_get(js, "plugin"));
		s->with = json_object_get(js, "with");
		if (!json_is_object(js) || s->name == NULL || !is_label(s->name, 63)) {
			bp_errorf(bp, "step %zu needs a \"name\" of lowercase letters, "
				      "digits and hyphens", i + 1);
			s->name = "";
			continue;
		}
		json_object_foreach(js, key, v)
			if (!in_list(key, step_keys, NELEM(step_keys)))
				bp_errorf(bp, "step '%s' has unknown field '%s'", s->name, key);
		if (step_index(bp, s->name) != (ssize_t)i)
			bp_errorf(bp, "two steps are named '%s'", s->name);
		if (s->plugin == NULL)
			bp_errorf(bp, "step '%s' needs a \"plugin\"", s->name);
		else if (!plugin_set_has(plugins, s->plugin) &&
			 plugin_set_error(plugins, s->plugin) != NULL)
			bp_errorf(bp, "step '%s' uses plugin '%s', which cannot be "
				      "loaded: %s", s->name, s->plugin,
				  plugin_set_error(plugins, s->plugin));
		else if (!plugin_set_has(plugins, s->plugin))
			bp_errorf(bp, "step '%s' uses unknown plugin '%s' (not built "
				      "in and no %s.so installed)", s->name, s->plugin,
				  s->plugin);
		if (s->with != NULL && !json_is_object(s->with))
			bp_errorf(bp, "step '%s': \"with\" must be an object", s->name);
		v = json_object_get(js, "retries");
		if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 0 ||
				  json_integer_value(v) > 10))
			bp_errorf(bp, "step '%s': \"retries\" must be a whole number "
				      "from 0 to 10", s->name);
		s->retries = v != NULL && json_is_integer(v) ? (int)json_integer_value(v)
							      : BP_DEFAULT_RETRIES;
	}
	json_array_foreach(steps, i, js) {
		s = &bp->steps[i];
		if (s->name[0] == '\0')
			continue;
		a = json_object_get(js, "after");
		if (a != NULL && !json_is_array(a))
			bp_errorf(bp, "step '%s': \"after\" must be an array of step names",
				  s->name);
		json_array_foreach(a, j, v) {
			idx = json_is_string(v) ? step_index(bp, json_string_value(v)) : -1;
			if (idx < 0)
				bp_errorf(bp, "step '%s' comes after unknown step '%s'",
					  s->name, json_is_string(v) ? json_string_value(v) : "?");
			else
				step_add_dep(bp, s, (size_t)idx);
		}
		snprintf(where, sizeof(where), "step '%s'", s->name);
		scan_refs(bp, s, s->with, where);
	}
}

/* Depth-first search for a cycle through step i; fills path on success. */
static int
find_cycle(const struct bp *bp, size_t i, int *mark, size_t *path,
	   size_t depth, size_t *len)
{
	size_t d;

	if (mark[i] == 2)
		return 0;
	path[depth] = i;
	if (mark[i] == 1) {
		*len = depth + 1;
		return 1;
	}
	mark[i] = 1;
	for (d = 0; d < bp->steps[i].ndeps; d++)
		if (find_cycle(bp, bp->steps[i].deps[d], mark, path, depth + 1, len))
			return 1;
	mark[i] = 2;
	return 0;
}

/* Order the steps (Kahn); a leftover means a cycle, reported by name. */
static void
order_steps(struct bp *bp)
{
	size_t n = bp->nsteps, done = 0, i, d, len = 0, start;
	int *mark, progress = 1;
	size_t *path;
	char msg[400];
	int off;

	bp->order = calloc(n + 1, sizeof(*bp->order));
	mark = calloc(n + 1, sizeof(*mark));
	path = calloc(n + 2, sizeof(*path));
	if (bp->order == NULL || mark == NULL || path == NULL) {
		bp_errorf(bp, "out of memory");
		goto out;
	}
	while (done < n && progress) {
		progress = 0;
		for (i = 0; i < n; i++) {
			if (mark[i])
				continue;
			for (d = 0; d < bp->steps[i].ndeps; d++)
				if (!mark[bp->steps[i].deps[d]])
					break;
			if (d < bp->steps[i].ndeps)
				continue;
			mark[i] = 1;
			bp->order[done++] = i;
			progress = 1;
		}
	}
	if (done == n)
		goto out;
	memset(mark, 0, (n + 1) * sizeof(*mark));
	for (i = 0; i < n; i++)
		if (find_cycle(bp, i, mark, path, 0, &len))
			break;
	/* path ends where the cycle closes: print from the repeated step. */
	start = 0;
	while (len > 0 && start < len - 1 && path[start] != path[len - 1])
		start++;
	off = snprintf(msg, sizeof(msg), "steps form a cycle: ");
	for (i = start; i < len && off > 0 && (size_t)off < sizeof(msg); i++)
		off += snprintf(msg + off, sizeof(msg) - (size_t)off, "%s%s",
				i > start ? " -> " : "", bp->steps[path[i]].name);
	bp_errorf(bp, "%s", msg);
out:
	free(mark);
	free(path);
}

static char *
read_file(const char *path, size_t *len, char *why, size_t size)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	size_t n = 0;

	if (f == NULL) {
		snprintf(why, size, "cannot open the file");
		return NULL;
	}
	data = malloc(BP_FILE_MAX + 1);
	if (data != NULL)
		n = fread(data, 1, BP_FILE_MAX + 1, f);
	fclose(f);
	if (data == NULL || n > BP_FILE_MAX) {
		snprintf(why, size, data == NULL ? "out of memory"
						 : "file is larger than 1 MiB");
		free(data);
		return NULL;
	}
	*len = n;
	return data;
}

static void
load_one(struct bp *bp, const char *path, const char *stem,
	 const struct plugin_set *plugins)
{
	json_error_t jerr;
	const char *key, *name;
	json_t *v;
	char why[128], *data;
	size_t len;

	bp->file = strdup(path);
	data = read_file(path, &len, why, sizeof(why));
	if (data == NULL) {
		bp->name = strdup(stem);
		bp_errorf(bp, "%s", why);
		return;
	}
	bp->doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	free(data);
	if (bp->doc == NULL || !json_is_object(bp->doc)) {
		bp->name = strdup(stem);
		if (bp->doc == NULL)
			bp_errorf(bp, "not valid JSON: line %d column %d: %s",
				  jerr.line, jerr.column, jerr.text);
		else
			bp_errorf(bp, "the file must hold a JSON object");
		return;
	}
	name = json_string_value(json_object_get(bp->doc, "name"));
	bp->name = strdup(name != NULL ? name : stem);
	if (name == NULL || strcmp(name, stem) != 0)
		bp_errorf(bp, "\"name\" must be the file's name without .json ('%s')", stem);
	else if (!is_label(name, 63))
		bp_errorf(bp, "\"name\" must be lowercase letters, digits and hyphens");
	json_object_foreach(bp->doc, key, v)
		if (!in_list(key, top_keys, NELEM(top_keys)))
			bp_errorf(bp, "unknown top-level field '%s'", key);
	v = json_object_get(bp->doc, "description");
	if (!json_is_string(v) || json_string_length(v) == 0)
		bp_errorf(bp, "\"description\" must be a sentence for the wizard");
	load_params(bp);
	load_steps(bp, plugins);
	v = json_object_get(bp->doc, "outputs");
	if (v != NULL && !json_is_object(v))
		bp_errorf(bp, "\"outputs\" must be an object");
	else
		scan_refs(bp, NULL, v, "outputs");
	if (bp->nsteps > 0)
		order_steps(bp);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static or_rc
load_dir(struct bp_set *set, const char *dir, const struct plugin_set *plugins,
	 struct or_err *err)
{
	char **names = NULL, **nv, path[4096], stem[256];
	struct dirent *de;
	struct bp *v;
	size_t n = 0, i, len;
	DIR *d;
	or_rc rc = OR_OK;

	d = opendir(dir);
	if (d == NULL)
		return or_fail(err, OR_E_NOTFOUND, NULL, "blueprints",
			       "cannot read blueprint directory %s", dir);
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len <= 5 || de->d_name[0] == '.' ||
		    strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		nv = realloc(names, (n + 1) * sizeof(*names));
		if (nv == NULL)
			goto nomem;
		names = nv;
		names[n] = strdup(de->d_name);
		if (names[n] == NULL)
			goto nomem;
		n++;
	}
	qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++) {
		v = realloc(set->v, (set->n + 1) * sizeof(*set->v));
		if (v == NULL)
			goto nomem;
		set->v = v;
		memset(&set->v[set->n], 0, sizeof(*set->v));
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		len = strlen(names[i]) - 5;
		snprintf(stem, sizeof(stem), "%.*s", (int)(len < 255 ? len : 255), names[i]);
		load_one(&set->v[set->n], path, stem, plugins);
		if (set->v[set->n].name == NULL || set->v[set->n].file == NULL)
			goto nomem;
		if (bp_set_find(set, set->v[set->n].name) != NULL)
			bp_errorf(&set->v[set->n], "another blueprint named '%s' "
				  "was loaded first", set->v[set->n].name);
		set->n++;
	}
	goto out;
nomem:
	rc = or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

or_rc
bp_set_load(struct bp_set *set, const char *const *dirs, size_t ndirs,
	    const struct plugin_set *plugins, struct or_err *err)
{
	size_t i;
	or_rc rc;

	set->v = NULL;
	set->n = 0;
	for (i = 0; i < ndirs; i++) {
		rc = load_dir(set, dirs[i], plugins, err);
		if (rc != OR_OK) {
			bp_set_free(set);
			return rc;
		}
	}
	return OR_OK;
}

void
bp_set_free(struct bp_set *set)
{
	size_t i, j;
	struct bp *bp;

	for (i = 0; i < set->n; i++) {
		bp = &set->v[i];
		for (j = 0; j < bp->nparams; j++)
			if (bp->params[j].has_re)
				regfree(&bp->params[j].re);
		for (j = 0; j < bp->nsteps; j++)
			free(bp->steps[j].deps);
		free(bp->params);
		free(bp->steps);
		free(bp->order);
		free(bp->name);
		free(bp->file);
		free(bp->load_error);
		json_decref(bp->doc);
	}
	free(set->v);
	set->v = NULL;
	set->n = 0;
}

const struct bp *
bp_set_find(const struct bp_set *set, const char *name)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (set->v[i].name != NULL && strcmp(set->v[i].name, name) == 0)
			return &set->v[i];
	return NULL;
}

json_t *
bp_to_json(const struct bp *bp, int full)
{
	json_t *o, *steps, *s, *after, *v;
	size_t i, d;

	steps = json_array();
	for (i = 0; i < bp->nsteps; i++) {
		if (bp->steps[i].name[0] == '\0')
			continue;
		after = json_array();
		for (d = 0; d < bp->steps[i].ndeps; d++)
			json_array_append_new(after,
					      json_string(bp->steps[bp->steps[i].deps[d]].name));
		s = json_pack("{s:s, s:s?, s:o}", "name", bp->steps[i].name,
			      "plugin", bp->steps[i].plugin, "after", after);
		if (s != NULL && full)
			json_object_set_new(s, "with", bp->steps[i].with != NULL
							       ? json_incref(bp->steps[i].with)
							       : json_object());
		json_array_append_new(steps, s);
	}
	v = bp->doc != NULL ? json_object_get(bp->doc, "params") : NULL;
	o = json_pack("{s:s, s:O?, s:s, s:b, s:s?, s:o, s:o}",
		      "name", bp->name,
		      "description", bp->doc != NULL ? json_object_get(bp->doc, "description") : NULL,
		      "file", bp->file,
		      "loadable", bp->load_error == NULL,
		      "load_error", bp->load_error,
		      "params", json_is_object(v) ? json_incref(v) : json_object(),
		      "steps", steps);
	if (o != NULL && full) {
		v = bp->doc != NULL ? json_object_get(bp->doc, "outputs") : NULL;
		json_object_set_new(o, "outputs", json_is_object(v) ? json_incref(v) : json_object());
	}
	return o;
}

or_rc
bp_params_check(const struct bp *bp, json_t *given, json_t **out,
		struct or_err *err)
{
	const struct bp_param *p;
	const char *key;
	json_t *res, *v, *d;
	char why[256], field[OR_ERR_FIELD_MAX];
	size_t i;

	if (given != NULL && !json_is_object(given))
		return or_fail(err, OR_E_INVALID, NULL, "params",
			       "params must be an object of parameter values");
	json_object_foreach(given, key, v) {
		if (param_index(bp, key) < 0) {
			snprintf(field, sizeof(field), "params.%s", key);
			return or_fail(err, OR_E_INVALID, "unknown_param", field,
				       "blueprint '%s' has no parameter '%.64s'",
				       bp->name, key);
		}
	}
	res = json_object();
	if (res == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	for (i = 0; i < bp->nparams; i++) {
		p = &bp->params[i];
		snprintf(field, sizeof(field), "params.%s", p->name);
		v = given != NULL ? json_object_get(given, p->name) : NULL;
		if (v == NULL || json_is_null(v)) {
			d = json_object_get(p->schema, "default");
			if (d != NULL) {
				json_object_set_new(res, p->name, json_deep_copy(d));
				continue;
			}
			if (json_is_true(json_object_get(p->schema, "required"))) {
				json_decref(res);
				return or_fail(err, OR_E_INVALID, "required", field,
					       "%s is required: %s", p->name,
					       json_string_value(json_object_get(p->schema, "description")));
			}
			continue;
		}
		if (!value_ok(p, v, why, sizeof(why))) {
			json_decref(res);
			return or_fail(err, OR_E_INVALID, NULL, field, "%s %s",
				       p->name, why);
		}
		json_object_set(res, p->name, v);
	}
	*out = res;
	return OR_OK;
}

json_t *
bp_graph(const struct bp *bp)
{
	json_t *g = json_array(), *deps, *after;
	const struct bp_step *s;
	size_t i, d;

	for (i = 0; i < bp->nsteps; i++) {
		s = &bp->steps[i];
		deps = json_array();
		after = json_array();
		for (d = 0; d < s->ndeps; d++) {
			json_array_append_new(deps, json_integer((json_int_t)s->deps[d]));
			json_array_append_new(after, json_string(bp->steps[s->deps[d]].name));
		}
		json_array_append_new(g, json_pack("{s:s, s:s, s:o, s:o, s:o, s:i}",
						   "name", s->name, "plugin", s->plugin,
						   "with", s->with != NULL ? json_incref(s->with)
									   : json_object(),
						   "deps", deps, "after", after,
						   "retries", s->retries));
	}
	return g;
}

json_t *
bp_resolve(json_t *v, bp_lookup_fn lookup, void *ctx, char *why, size_t size)
{
	struct bp_ref ref;
	const char *key, *str;
	json_t *out, *x, *y;
	size_t i, pos = 0, last = 0;
	char *txt;
	int got;

	if (json_is_object(v) || json_is_array(v)) {
		out = json_is_object(v) ? json_object() : json_array();
		if (json_is_object(v)) {
			json_object_foreach(v, key, x) {
				y = bp_resolve(x, lookup, ctx, why, size);
				if (y == NULL)
					goto fail;
				json_object_set_new(out, key, y);
			}
		} else {
			json_array_foreach(v, i, x) {
				y = bp_resolve(x, lookup, ctx, why, size);
				if (y == NULL)
					goto fail;
				json_array_append_new(out, y);
			}
		}
		return out;
fail:
		json_decref(out);
		return NULL;
	}
	if (!json_is_string(v))
		return json_incref(v);
	str = json_string_value(v);
	got = bp_ref_next(str, &pos, &ref);
	if (got <= 0)
		return json_incref(v);
	if (ref.start == 0 && ref.len == strlen(str)) {
		x = lookup(ctx, &ref, why, size);
		if (x == NULL && why[0] == '\0')
			return json_string("(known after apply)");
		return x != NULL ? json_incref(x) : NULL;
	}
	{
		struct buf b;
		or_rc rc = OR_OK;

		buf_init(&b, 1 << 20);
		pos = 0;
		while (rc == OR_OK && bp_ref_next(str, &pos, &ref) > 0) {
			rc = buf_append(&b, str + last, ref.start - last);
			x = lookup(ctx, &ref, why, size);
			if (x == NULL && why[0] != '\0') {
				buf_free(&b);
				return NULL;
			}
			if (x == NULL)
				rc = buf_append_str(&b, "(known after apply)");
			else if (json_is_string(x))
				rc = buf_append_str(&b, json_string_value(x));
			else {
				txt = json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY);
				rc = buf_append_str(&b, txt != NULL ? txt : "");
				free(txt);
			}
			last = pos;
		}
		if (rc == OR_OK)
			rc = buf_append_str(&b, str + last);
		out = rc == OR_OK ? json_string(buf_str(&b)) : NULL;
		if (out == NULL)
			snprintf(why, size, "an input is too large");
		buf_free(&b);
		return out;
	}
}

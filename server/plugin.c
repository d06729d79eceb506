/*
 * plugin.c - which plugins exist.  Names only for now: a name is a plugin
 * file's stem ("gke-cluster" for plugins/gke-cluster.so).
 */
#include "plugin.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h" /* plugins/: the built-in plugins' descriptors */
#include "log.h"
#include "outrigger/plugin.h"
#include "runner.h"

/* Plugins compiled into the server itself. */
static const struct or_plugin *const builtin_plugins[] = {&or_builtin_exec,
							   &or_builtin_wait};

const struct or_plugin *
plugin_builtin_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(builtin_plugins) / sizeof(builtin_plugins[0]); i++)
		if (strcmp(builtin_plugins[i]->name, name) == 0)
			return builtin_plugins[i];
	return NULL;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static or_rc
add_name(struct plugin_set *set, const char *name, size_t len)
{
	char **v, *s;

	s = strndup(name, len);
	v = realloc(set->names, (set->n + 1) * sizeof(*v));
	if (s == NULL || v == NULL) {
		free(s);
		if (v != NULL)
			set->names = v;
		return OR_E_NOMEM;
	}
	set->names = v;
	set->names[set->n++] = s;
	return OR_OK;
}

or_rc
plugin_set_scan(struct plugin_set *set, const char *dir, struct or_err *err)
{
	struct dirent *de;
	DIR *d;
	size_t i, len;
	or_rc rc = OR_OK;

	set->names = NULL;
	set->n = 0;
	set->described = NULL;
	for (i = 0; i < sizeof(builtin_plugins) / sizeof(builtin_plugins[0]); i++)
		if (add_name(set, builtin_plugins[i]->name,
			     strlen(builtin_plugins[i]->name)) != OR_OK)
			goto nomem;
	d = dir != NULL ? opendir(dir) : NULL;
	while (d != NULL && (de = readdir(d)) != NULL) {
		char stem[256];

		len = strlen(de->d_name);
		if (len <= 3 || len - 3 >= sizeof(stem) || de->d_name[0] == '.' ||
		    strcmp(de->d_name + len - 3, ".so") != 0)
			continue;
		memcpy(stem, de->d_name, len - 3);
		stem[len - 3] = '\0';
		if (plugin_set_has(set, stem)) /* a built-in wins */
			continue;
		rc = add_name(set, stem, len - 3);
		if (rc != OR_OK)
			break;
	}
	if (d != NULL)
		closedir(d);
	if (rc != OR_OK)
		goto nomem;
	qsort(set->names, set->n, sizeof(*set->names), name_cmp);
	return OR_OK;
nomem:
	plugin_set_free(set);
	return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
}

int
plugin_set_has(const struct plugin_set *set, const char *name)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (strcmp(set->names[i], name) == 0)
			return 1;
	return 0;
}

void
plugin_set_free(struct plugin_set *set)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		free(set->names[i]);
	free(set->names);
	json_decref(set->described);
	set->described = NULL;
	set->names = NULL;
	set->n = 0;
}

json_t *
plugin_describe(const struct or_plugin *p)
{
	json_t *caps = json_array(), *in, *out;

	json_array_append_new(caps, json_string("apply"));
	if (p->capabilities & OR_CAP_PLAN)
		json_array_append_new(caps, json_string("plan"));
	if (p->capabilities & OR_CAP_DESTROY)
		json_array_append_new(caps, json_string("destroy"));
	if (p->capabilities & OR_CAP_CHECK)
		json_array_append_new(caps, json_string("check"));
	in = p->inputs_schema != NULL ? json_loads(p->inputs_schema, 0, NULL) : NULL;
	out = p->outputs_schema != NULL ? json_loads(p->outputs_schema, 0, NULL) : NULL;
	return json_pack("{s:s, s:s?, s:o, s:o, s:o}", "name", p->name, "summary", p->summary,
			 "inputs", in != NULL ? in : json_object(),
			 "outputs", out != NULL ? out : json_object(), "capabilities", caps);
}

void
plugin_set_describe(struct plugin_set *set, const char *dir)
{
	const struct or_plugin *b;
	struct or_err err;
	char path[4096];
	json_t *d;
	size_t i, keep = 0;

	json_decref(set->described);
	set->described = json_array();
	for (i = 0; i < set->n; i++) {
		b = plugin_builtin_find(set->names[i]);
		if (b != NULL) {
			d = plugin_describe(b);
			json_object_set_new(d, "builtin", json_true());
		} else {
			snprintf(path, sizeof(path), "%s/%s.so", dir, set->names[i]);
			if (runner_describe(path, &d, &err) != OR_OK)
				d = json_pack("{s:s, s:s}", "name", set->names[i], "error",
					      err.message);
			json_object_set_new(d, "builtin", json_false());
		}
		json_array_append_new(set->described, d);
		if (json_object_get(d, "error") != NULL) {
			log_warn("plugin %s cannot be used: %s", set->names[i],
				 json_string_value(json_object_get(d, "error")));
			free(set->names[i]);
			continue;
		}
		set->names[keep++] = set->names[i];
	}
	set->n = keep;
}

const char *
plugin_set_error(const struct plugin_set *set, const char *name)
{
	json_t *d;
	size_t i;

	json_array_foreach(set->described, i, d)
		if (strcmp(json_string_value(json_object_get(d, "name")), name) == 0)
			return json_string_value(json_object_get(d, "error"));
	return NULL;
}

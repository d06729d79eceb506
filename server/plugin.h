/*
 * plugin.h - the set of plugins this server can run: the built-in ones and
 * every plugins/<name>.so found at start-up.  Blueprints are checked against
 * it, so a step naming a plugin that is not installed is a load error.
 */
#ifndef PLUGIN_H
#define PLUGIN_H

#include <jansson.h>
#include <stddef.h>

#include "or.h"

struct plugin_set {
	char **names;	/* owned, sorted */
	size_t n;
	json_t *described;	/* GET /api/v1/plugins: one object per plugin */
};

/* The built-ins plus the .so files of dir (dir may be NULL or missing: then
 * only the built-ins).  Free with plugin_set_free. */
or_rc plugin_set_scan(struct plugin_set *set, const char *dir,
		      struct or_err *err);
int plugin_set_has(const struct plugin_set *set, const char *name);

/* Read every plugin's descriptor: built-ins directly, each .so in a child
 * process (`outrigger describe-plugin`), so that a plugin that crashes or
 * was built for another ABI is reported, not fatal.  Such a plugin is
 * dropped from the set (blueprints using it do not load).  Needs
 * runner_init first. */
void plugin_set_describe(struct plugin_set *set, const char *dir);

/* Why an installed plugin cannot be used (its load error), or NULL. */
const char *plugin_set_error(const struct plugin_set *set, const char *name);

/* A descriptor as the API shows it: name, summary, inputs, outputs,
 * capabilities (new reference). */
struct or_plugin;
json_t *plugin_describe(const struct or_plugin *p);

/* The built-in plugin called name (exec, wait), or NULL. */
const struct or_plugin *plugin_builtin_find(const char *name);
void plugin_set_free(struct plugin_set *set);

#endif

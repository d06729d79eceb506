/*
 * plugin.h - the set of plugins this server can run: the built-in ones and
 * every plugins/<name>.so found at start-up.  Blueprints are checked against
 * it, so a step naming a plugin that is not installed is a load error.
 */
#ifndef PLUGIN_H
#define PLUGIN_H

#include <stddef.h>

#include "or.h"

struct plugin_set {
	char **names;	/* owned, sorted */
	size_t n;
};

/* The built-ins plus the .so files of dir (dir may be NULL or missing: then
 * only the built-ins).  Free with plugin_set_free. */
or_rc plugin_set_scan(struct plugin_set *set, const char *dir,
		      struct or_err *err);
int plugin_set_has(const struct plugin_set *set, const char *name);

/* The built-in plugin called name (exec, wait), or NULL. */
struct or_plugin;
const struct or_plugin *plugin_builtin_find(const char *name);
void plugin_set_free(struct plugin_set *set);

#endif

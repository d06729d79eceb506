/*
 * builtin.h - the plugins compiled into the server binary rather than
 * loaded from plugins/<name>.so.  They speak the same ABI as a loadable
 * plugin (include/outrigger/plugin.h) and run in the same step runner; the
 * runner finds them by these symbols instead of dlsym(OR_PLUGIN_SYMBOL).
 *
 *   or_builtin_exec - "exec": run a command, its output lines become the
 *                     step log, key=value lines in $OUTRIGGER_OUTPUT its
 *                     outputs (plugins/exec.c)
 *   or_builtin_wait - "wait": wait some seconds, or until a URL answers 2xx
 *                     (plugins/wait.c)
 *
 * Both descriptors are constant and live for the whole program.
 */
#ifndef OUTRIGGER_PLUGINS_BUILTIN_H
#define OUTRIGGER_PLUGINS_BUILTIN_H

#include "outrigger/plugin.h"

extern const struct or_plugin or_builtin_exec, or_builtin_wait;

#endif

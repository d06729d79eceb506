/*
 * step.h - the step runner: the child process that runs one step attempt.
 *
 * The server starts `outrigger step` with four descriptors:
 *   0  server -> runner: the job (one JSON line), then one answer line per
 *      request that needs one (state, secret)
 *   1  the plugin's stray standard output (stored as log lines, "stdout")
 *   2  its standard error (stored as log lines, "stderr")
 *   3  runner -> server: the protocol, one JSON object per line
 * The protocol is in docs/engine.md.  The runner loads the plugin (built in,
 * or plugins/<name>.so), calls one operation, reports the result, exits.
 * It dies with the server (PR_SET_PDEATHSIG) and takes its process group
 * with it, so no orphan keeps working on a cloud resource.
 */
#ifndef STEP_H
#define STEP_H

#include <sys/types.h>

#include "outrigger/plugin.h"

/* Longest protocol line either side accepts. */
#define STEP_LINE_MAX (256 * 1024)
/* Longest log line stored; longer ones are cut with a marker. */
#define STEP_LOG_MAX OR_LOG_LINE_MAX

/* A built-in plugin started a command in process group pgid: if the
 * server dies, the runner kills that group as well as its own.  (Not part
 * of the ABI: a loadable plugin's commands stay in the runner's group.) */
void step_track_group(pid_t pgid);

/* The `outrigger step` command. */
int step_main(int argc, char **argv);

/* `outrigger describe-plugin FILE.so`: print the descriptor as JSON (run
 * in a child at start-up, so a broken plugin cannot crash the server). */
int step_describe_main(int argc, char **argv);

#endif

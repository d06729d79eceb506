/*
 * noop.c - a plugin that does nothing, for bench/engine/run.sh: every
 * operation returns OR_STATUS_OK at once, without a log line, an output or
 * a state write.  What a run of noop steps costs is therefore the engine's
 * own cost per step: spawning the step runner, loading the plugin, the
 * JSON-lines protocol, and the scheduler's state commits.
 *
 * Built like a third party's plugin, with nothing but the ABI header:
 *
 *   cc -shared -fPIC -I include -o DIR/noop.so bench/engine/noop.c
 */
#include "outrigger/plugin.h"

static or_status
noop_op(or_host *h, const struct or_host_api *api)
{
	(void)h;
	(void)api;
	return OR_STATUS_OK;
}

static const struct or_plugin noop = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = OR_PLUGIN_ABI_MINOR,
	.name = "noop",
	.summary = "Does nothing; measures the engine's cost per step (bench/engine).",
	.inputs_schema = "{}",
	.outputs_schema = "{}",
	.capabilities = OR_CAP_PLAN | OR_CAP_DESTROY,
	.plan = noop_op,
	.apply = noop_op,
	.destroy = noop_op,
	.check = NULL,
};

OR_PLUGIN_EXPORT(noop)

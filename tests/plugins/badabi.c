/*
 * badabi.c - a plugin that claims the next major ABI version, so the tests
 * can check the runner refuses it with a clear message instead of calling
 * functions whose meaning may have changed.  Otherwise well-formed.
 */
#include "outrigger/plugin.h"

static or_status
badabi_apply(or_host *h, const struct or_host_api *api)
{
	/* Must never run: the runner refuses the descriptor first. */
	api->log(h, OR_LOG_ERROR, "badabi apply ran although its ABI major is unknown");
	return OR_STATUS_FAILED;
}

static const struct or_plugin badabi = {
	.abi_major = OR_PLUGIN_ABI_MAJOR + 1,
	.abi_minor = 0,
	.name = "badabi",
	.summary = "Built for a future major ABI (test plugin).",
	.inputs_schema = "{}",
	.outputs_schema = "{}",
	.capabilities = 0,
	.plan = NULL,
	.apply = badabi_apply,
	.destroy = NULL,
	.check = NULL,
};

OR_PLUGIN_EXPORT(badabi)

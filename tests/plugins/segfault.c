/*
 * segfault.c - a plugin whose apply crashes on purpose (a NULL write), so
 * the tests can check that a crashing plugin fails only its own step: the
 * runner dies with SIGSEGV, the server notices, the step is marked failed.
 */
#include "outrigger/plugin.h"

static or_status
segfault_apply(or_host *h, const struct or_host_api *api)
{
	/* volatile: the compiler must not prove the write away. */
	int *volatile p = NULL;

	api->log(h, OR_LOG_INFO, "about to crash on purpose");
	*p = 42;
	return OR_STATUS_OK;
}

static or_status
segfault_destroy(or_host *h, const struct or_host_api *api)
{
	(void)h;
	(void)api;
	return OR_STATUS_OK;
}

static const struct or_plugin segfault = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = OR_PLUGIN_ABI_MINOR,
	.name = "segfault",
	.summary = "Crashes in apply (test plugin).",
	.inputs_schema = "{}",
	.outputs_schema = "{}",
	.capabilities = OR_CAP_DESTROY,
	.plan = NULL,
	.apply = segfault_apply,
	.destroy = segfault_destroy,
	.check = NULL,
};

OR_PLUGIN_EXPORT(segfault)

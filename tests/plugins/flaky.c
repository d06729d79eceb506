/*
 * flaky.c - a plugin that fails with OR_STATUS_RETRY until its attempt
 * count reaches the input `succeed_after` (default 2), so the tests can
 * check retries with backoff and that state_set survives between
 * attempts.  The count lives in the step's state as "tries"; on success
 * it is also the output `tries`.
 */
#include <stdio.h>
#include <stdlib.h>

#include "outrigger/plugin.h"

static or_status
flaky_apply(or_host *h, const struct or_host_api *api)
{
	const char *after = api->input(h, "succeed_after"), *seen;
	long need = after != NULL ? strtol(after, NULL, 10) : 2, tries;
	char count[32];

	if (need < 1)
		need = 1;
	seen = api->state_get(h, "tries");
	tries = (seen != NULL ? strtol(seen, NULL, 10) : 0) + 1;
	snprintf(count, sizeof(count), "%ld", tries);
	if (api->state_set(h, "tries", count) != 0) {
		api->fail(h, "state", "could not record try %ld", tries);
		return OR_STATUS_FAILED;
	}
	if (tries < need) {
		api->fail(h, "flaky", "try %ld of %ld fails on purpose", tries, need);
		return OR_STATUS_RETRY;
	}
	api->log(h, OR_LOG_INFO, "try %ld succeeds", tries);
	if (api->output(h, "tries", count) != 0) {
		api->fail(h, "output", "the host refused output tries");
		return OR_STATUS_FAILED;
	}
	return OR_STATUS_OK;
}

static or_status
flaky_destroy(or_host *h, const struct or_host_api *api)
{
	(void)h;
	(void)api;
	return OR_STATUS_OK;
}

static const struct or_plugin flaky = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = OR_PLUGIN_ABI_MINOR,
	.name = "flaky",
	.summary = "Asks for a retry until try succeed_after (test plugin).",
	.inputs_schema = "{\"succeed_after\": {\"type\": \"integer\", \"default\": 2, \"minimum\": 1,"
			 " \"description\": \"The try that succeeds\"}}",
	.outputs_schema = "{\"tries\": {\"type\": \"string\","
			  " \"description\": \"Tries it took, this one included\"}}",
	.capabilities = OR_CAP_DESTROY,
	.plan = NULL,
	.apply = flaky_apply,
	.destroy = flaky_destroy,
	.check = NULL,
};

OR_PLUGIN_EXPORT(flaky)

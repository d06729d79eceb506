/*
 * hello.c - the smallest useful Outrigger plugin, and the example of
 * docs/plugins.md.  It needs nothing but include/outrigger/plugin.h and
 * libc:
 *
 *   cc -shared -fPIC -I include -o plugins/hello.so tests/plugins/hello.c
 *
 * Input `name` (default "world").  apply logs "hello, NAME", sets the
 * output `greeting`, and counts its attempts in the step's state (output
 * `attempt_seen`), the way a real plugin records what it started before
 * waiting on it.  The tests load it through the real runner.
 */
#include <stdio.h>
#include <stdlib.h>

#include "outrigger/plugin.h"

/* The input, or its default: the host's strings live until we return. */
static const char *
hello_name(or_host *h, const struct or_host_api *api)
{
	const char *name = api->input(h, "name");

	return name != NULL && name[0] != '\0' ? name : "world";
}

static or_status
hello_plan(or_host *h, const struct or_host_api *api)
{
	api->log(h, OR_LOG_INFO, "would greet %s", hello_name(h, api));
	return OR_STATUS_OK;
}

static or_status
hello_apply(or_host *h, const struct or_host_api *api)
{
	const char *name = hello_name(h, api), *seen;
	char greeting[256], count[32];
	long attempt;

	/* State survives a crash of this process: record before working. */
	seen = api->state_get(h, "attempts");
	attempt = (seen != NULL ? strtol(seen, NULL, 10) : 0) + 1;
	snprintf(count, sizeof(count), "%ld", attempt);
	if (api->state_set(h, "attempts", count) != 0) {
		api->fail(h, "state", "could not record the attempt");
		return OR_STATUS_RETRY;
	}

	api->log(h, OR_LOG_INFO, "hello, %s", name);
	snprintf(greeting, sizeof(greeting), "hello, %s", name);
	if (api->output(h, "greeting", greeting) != 0 ||
	    api->output(h, "attempt_seen", count) != 0) {
		api->fail(h, "output", "the host refused an output");
		return OR_STATUS_FAILED;
	}
	return OR_STATUS_OK;
}

static or_status
hello_destroy(or_host *h, const struct or_host_api *api)
{
	/* Greeting made nothing in the world, so there is nothing to undo. */
	api->log(h, OR_LOG_INFO, "goodbye, %s", hello_name(h, api));
	return OR_STATUS_OK;
}

static const struct or_plugin hello = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = OR_PLUGIN_ABI_MINOR,
	.name = "hello",
	.summary = "Greets someone; the example plugin.",
	.inputs_schema = "{\"name\": {\"type\": \"string\", \"default\": \"world\","
			 " \"description\": \"Who to greet\"}}",
	.outputs_schema = "{\"greeting\": {\"type\": \"string\", \"description\": \"The greeting\"},"
			  " \"attempt_seen\": {\"type\": \"string\","
			  " \"description\": \"Which attempt of the step this was, from 1\"}}",
	.capabilities = OR_CAP_PLAN | OR_CAP_DESTROY,
	.plan = hello_plan,
	.apply = hello_apply,
	.destroy = hello_destroy,
	.check = NULL,
};

OR_PLUGIN_EXPORT(hello)

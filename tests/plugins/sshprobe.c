/*
 * sshprobe.c - a plugin that drives the host's SSH client (ssh_open,
 * ssh_upload, ssh_exec, ssh_close) through the real loader, so that
 * tests/clients/test_ssh.c can check it from outside the runner.  It needs
 * only include/outrigger/plugin.h and libc.
 *
 * Inputs:
 *   host, port (22), user, key_ref   where to log in; the private key is
 *                                    the secret named key_ref
 *   timeout_ms                       ssh_open's (0: the host's default)
 *   upload_path, upload_data,        optional: upload upload_data repeated
 *   upload_repeat (1), upload_mode   upload_repeat times to upload_path with
 *                                    upload_mode (octal text, "0644")
 *   exec                             optional: a command to run
 *   fail_on_status                   "true": a non-zero exit status fails
 *                                    the step (with the host's message)
 * Outputs: status (the command's exit status), when exec was given.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outrigger/plugin.h"

static long
num_input(or_host *h, const struct or_host_api *api, const char *key, long dflt, int base)
{
	const char *v = api->input(h, key);

	return v != NULL && v[0] != '\0' ? strtol(v, NULL, base) : dflt;
}

static or_status
sp_apply(or_host *h, const struct or_host_api *api)
{
	const char *host = api->input(h, "host"), *user = api->input(h, "user");
	const char *key_ref = api->input(h, "key_ref"), *key, *cmd = api->input(h, "exec");
	const char *path = api->input(h, "upload_path"), *data = api->input(h, "upload_data");
	const char *fos = api->input(h, "fail_on_status");
	long port = num_input(h, api, "port", 22, 10);
	long timeout = num_input(h, api, "timeout_ms", 0, 10);
	long repeat = num_input(h, api, "upload_repeat", 1, 10);
	long mode = num_input(h, api, "upload_mode", 0644, 8);
	or_status st = OR_STATUS_FAILED;
	char *blob = NULL, num[16];
	size_t dlen, i;
	or_ssh *s;
	int rc;

	if (api->minor < 1 || api->ssh_open == NULL) {
		api->fail(h, "abi", "the host has no SSH client (ABI minor %u)", api->minor);
		return OR_STATUS_FAILED;
	}
	key = key_ref != NULL ? api->secret_get(h, key_ref) : NULL;
	if (key == NULL) {
		api->fail(h, "input", "no secret named by key_ref");
		return OR_STATUS_FAILED;
	}
	s = api->ssh_open(h, host, (int)port, user, key, timeout);
	if (s == NULL)
		return api->cancelled(h) ? OR_STATUS_CANCELLED : OR_STATUS_FAILED;
	if (path != NULL) {
		if (data == NULL || repeat < 1 || repeat > 64 * 1024) {
			api->fail(h, "input", "upload_data and upload_repeat 1..65536 are needed");
			goto out;
		}
		dlen = strlen(data);
		blob = malloc(dlen * (size_t)repeat + 1);
		if (blob == NULL) {
			api->fail(h, "nomem", "out of memory");
			goto out;
		}
		for (i = 0; i < (size_t)repeat; i++)
			memcpy(blob + i * dlen, data, dlen);
		if (api->ssh_upload(s, path, blob, dlen * (size_t)repeat, (int)mode) != 0)
			goto out;
	}
	if (cmd != NULL) {
		rc = api->ssh_exec(s, cmd);
		if (rc < 0) {
			st = api->cancelled(h) ? OR_STATUS_CANCELLED : OR_STATUS_FAILED;
			goto out;
		}
		snprintf(num, sizeof(num), "%d", rc);
		api->output(h, "status", num);
		if (rc != 0 && fos != NULL && strcmp(fos, "true") == 0)
			goto out; /* the host's fail() says why */
	}
	st = OR_STATUS_OK;
out:
	free(blob);
	api->ssh_close(s);
	return st;
}

static const struct or_plugin sshprobe = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = 1,
	.name = "sshprobe",
	.summary = "Test plugin: log in over SSH, upload a file, run a command",
	.inputs_schema = "{\"host\":{\"type\":\"string\",\"required\":true},"
			 "\"user\":{\"type\":\"string\",\"required\":true},"
			 "\"key_ref\":{\"type\":\"string\",\"required\":true},"
			 "\"port\":{\"type\":\"integer\"},\"timeout_ms\":{\"type\":\"integer\"},"
			 "\"upload_path\":{\"type\":\"string\"},\"upload_data\":{\"type\":\"string\"},"
			 "\"upload_repeat\":{\"type\":\"integer\"},\"upload_mode\":{\"type\":\"string\"},"
			 "\"exec\":{\"type\":\"string\"},\"fail_on_status\":{\"type\":\"boolean\"}}",
	.outputs_schema = "{\"status\":{\"type\":\"string\"}}",
	.capabilities = 0,
	.apply = sp_apply,
};

OR_PLUGIN_EXPORT(sshprobe)

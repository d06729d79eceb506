/*
 * kubeprobe.c - one call of the host's Kubernetes client per step, so
 * tests/clients/test_k8s.c can drive kube_* through the real step runner
 * and loader.  Needs only include/outrigger/plugin.h and libc.
 *
 * Inputs: endpoint, ca_certificate (PEM or base64 of PEM), mode:
 *   apply | delete  YAML from `yaml` or the file `yaml_file`, default
 *                   namespace `namespace`; output `count`.
 *   wait            kube_wait(`what`, `namespace`, `name`, `timeout_ms`);
 *                   output `out`.
 *   get             kube_request GET `path`; outputs `status`, `body`.
 *   open            kube_open only (for refusals).
 * A failing call leaves the host's fail() message as the step's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outrigger/plugin.h"

static char *
kp_slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *data;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		return NULL;
	}
	data = malloc((size_t)n + 1);
	if (data != NULL && fread(data, 1, (size_t)n, f) != (size_t)n) {
		free(data);
		data = NULL;
	}
	if (data != NULL)
		data[n] = '\0';
	fclose(f);
	return data;
}

static or_status
kp_apply(or_host *h, const struct or_host_api *api)
{
	const char *mode = api->input(h, "mode"), *file = api->input(h, "yaml_file");
	const char *ns = api->input(h, "namespace");
	char *text = NULL, num[32], out[256];
	struct or_http_response resp;
	or_status st = OR_STATUS_FAILED;
	or_kube *k;
	int n;

	if (api->minor < 1) {
		api->fail(h, "abi", "the host has no Kubernetes client");
		return OR_STATUS_FAILED;
	}
	k = api->kube_open(h, api->input(h, "endpoint"), api->input(h, "ca_certificate"));
	if (k == NULL)
		return OR_STATUS_FAILED;
	if (mode == NULL || strcmp(mode, "open") == 0) {
		st = OR_STATUS_OK;
	} else if (strcmp(mode, "apply") == 0 || strcmp(mode, "delete") == 0) {
		if (file != NULL) {
			text = kp_slurp(file);
			if (text == NULL) {
				api->fail(h, "input", "cannot read %s", file);
				goto out;
			}
		}
		n = strcmp(mode, "apply") == 0
			    ? api->kube_apply(k, text != NULL ? text : api->input(h, "yaml"), ns)
			    : api->kube_delete(k, text != NULL ? text : api->input(h, "yaml"), ns);
		if (n < 0)
			goto out;
		snprintf(num, sizeof(num), "%d", n);
		api->output(h, "count", num);
		st = OR_STATUS_OK;
	} else if (strcmp(mode, "wait") == 0) {
		long t = api->input(h, "timeout_ms") != NULL ? atol(api->input(h, "timeout_ms")) : 0;

		if (api->kube_wait(k, api->input(h, "what"), ns, api->input(h, "name"), t, out,
				   sizeof(out)) != 0)
			goto out;
		api->output(h, "out", out);
		st = OR_STATUS_OK;
	} else if (strcmp(mode, "get") == 0) {
		if (api->kube_request(k, "GET", api->input(h, "path"), NULL, NULL, &resp) != 0)
			goto out;
		snprintf(num, sizeof(num), "%ld", resp.status);
		api->output(h, "status", num);
		api->output(h, "body", resp.body);
		api->http_free(&resp);
		st = OR_STATUS_OK;
	} else {
		api->fail(h, "input", "unknown mode %s", mode);
	}
out:
	free(text);
	api->kube_close(k);
	return st;
}

static const struct or_plugin kubeprobe = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = 1,
	.name = "kubeprobe",
	.summary = "Calls the host's Kubernetes client once (tests)",
	.inputs_schema = "{}",
	.outputs_schema = "{}",
	.capabilities = 0,
	.apply = kp_apply,
};

OR_PLUGIN_EXPORT(kubeprobe)

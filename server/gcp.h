/*
 * gcp.h - Google Cloud REST for plugins: credentials, calls, operations.
 *
 * Behind the gcp entries of struct or_host_api.  The same code serves the
 * `gcp` provider (Google's endpoints, a service-account key or the
 * metadata server) and the `sandbox` provider (the sandbox's endpoints and
 * key): only the provider object of the job differs.
 *
 * What it must never do: put a token, an assertion or a key into a log
 * line or an error message.
 */
#ifndef GCP_H
#define GCP_H

#include "outrigger/plugin.h"

int gcp_call(or_host *h, const char *method, const char *url, const char *json_body,
	     struct or_http_response *resp);
/* Google's message of a non-2xx answer; valid until the operation returns. */
const char *gcp_error(or_host *h, const struct or_http_response *resp, const char **reason);
int gcp_wait(or_host *h, const char *operation_url, long timeout_ms);

#endif

/*
 * provider.h - where the clouds are: the settings handed to every step
 * runner as the job's "provider" object (see or_host_api.provider).
 *
 * `sandbox` comes from a sandbox's endpoints.json; `gcp` names Google's
 * public endpoints and the credentials of `serve --gcp-credentials` (or,
 * without it, the metadata server of the Compute Engine machine the
 * server runs on).  Both carry the same keys, so the plugins' code path is
 * one: only endpoints, credentials and mirrors differ.
 *
 * Never holds a secret itself: credentials are named by file path.
 */
#ifndef PROVIDER_H
#define PROVIDER_H

#include <jansson.h>

#include "or.h"

/* The providers object {"sandbox": {...}, "gcp": {...}}, owned by the
 * caller (json_decref).  sandbox_endpoints and gcp_key may be NULL;
 * cache_dir (absolute) is where downloads are kept. */
or_rc provider_load(const char *sandbox_endpoints, const char *gcp_key, const char *cache_dir,
		    json_t **out, struct or_err *err);

#endif

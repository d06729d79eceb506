/*
 * disc.h - checks a request against Google's published API discovery
 * documents (shared/spec/compute-v1.json, container-v1.json), so the sandbox
 * refuses what the real Compute Engine and GKE front ends would refuse:
 * unknown paths, wrong HTTP methods, unknown body fields, wrong JSON types,
 * unknown enum values, missing required fields and query parameters.
 *
 * It only judges; it never changes the request and never answers it.
 * Services that have no document loaded (Service Usage, the compute batch
 * endpoint) are the caller's business: disc_check says OR_E_NOTFOUND.
 */
#ifndef DISC_H
#define DISC_H

#include <jansson.h>

#include "or.h"

struct disc;

/* Load every *.json discovery document ("kind": "discovery#restDescription")
 * in dir and index its methods by HTTP method and by
 * "/" + servicePath + flatPath.  Other *.json files are skipped.  Fails with
 * OR_E_NOTFOUND when dir holds no discovery document, OR_E_MALFORMED when
 * one does not parse, OR_E_IO / OR_E_NOMEM otherwise.  The caller owns *out
 * and frees it with disc_free.  The result is read-only: one struct disc may
 * serve disc_check from many threads at once. */
or_rc disc_load(const char *dir, struct disc **out, struct or_err *err);

/* Judge one request.  path is as received ("/compute/v1/projects/p/zones/z/
 * instances"), already percent-decoded; a "?query" on it is used when query
 * is NULL.  query may be NULL.  body may be NULL (no body); it is borrowed.
 * Returns OR_OK when a method matches and the request is valid for it;
 * OR_E_NOTFOUND when no method's template matches the path;
 * OR_E_METHOD when templates match but none for this HTTP method;
 * OR_E_INVALID with err->field set to the offending field path (e.g.
 * "resource.networkInterfaces[0].acessConfigs") for a bad body or query.
 * When id is not NULL and the path matched, *id is the method id (e.g.
 * "compute.instances.insert"), owned by d. */
or_rc disc_check_id(const struct disc *d, const char *method, const char *path,
		    const char *query, json_t *body, const char **id,
		    struct or_err *err);

/* disc_check_id without the method id. */
or_rc disc_check(const struct disc *d, const char *method, const char *path,
		 const char *query, json_t *body, struct or_err *err);

/* How many methods were indexed (all documents together). */
size_t disc_method_count(const struct disc *d);

/* Free d and everything it holds.  disc_free(NULL) is a no-op. */
void disc_free(struct disc *d);

#endif

/*
 * mirror.h - the sandbox's download mirror: what the product downloads in
 * the real world (Istio release archives and their .sha256, the VM sidecar
 * .deb, Online Boutique's release manifests, Gateway API's CRDs), made by
 * the sandbox from its own files (sandbox/assets/, compiled in) and served
 * under its own URLs.  endpoints.json names them: "mirrors" maps each real
 * URL prefix to the sandbox's.
 *
 * Archives and packages are real: a tar.gz made with tar(1), a .deb made
 * with dpkg-deb(1), each built once per version into DIR/mirror/ and kept.
 * Unknown versions and paths answer 404 like the real sites.
 *
 * Never reaches the network; never serves a file outside DIR/mirror/.
 */
#ifndef MIRROR_H
#define MIRROR_H

#include <jansson.h>
#include <stddef.h>

#include "or.h"

struct mirror;

/* dir: where built files are kept (made if missing).  *out: mirror_free. */
or_rc mirror_new(const char *dir, struct mirror **out, struct or_err *err);
void mirror_free(struct mirror *m);

/* {REAL_PREFIX: MIRROR_PREFIX} for endpoints.json; base is the sandbox's
 * URL without a trailing slash.  New reference. */
json_t *mirror_prefixes(const char *base);

/* An answer: either body (malloc'd, the caller frees) or fd (an open file
 * of size bytes, the caller closes), never both; status 200 or 404. */
struct mirror_answer {
	int status;
	char *body;
	size_t len;
	int fd;
	size_t size;
	const char *ctype;
};

/* Answer GET path (the URL path, starting "/mirror/").  OR_OK with a 200
 * or 404 answer; OR_E_IO (with the reason) when building failed. */
or_rc mirror_get(struct mirror *m, const char *path, struct mirror_answer *a,
		 struct or_err *err);

/* The embedded text of an asset ("istio/istioctl"), or NULL. */
const char *mirror_asset(const char *name, size_t *len);

#endif

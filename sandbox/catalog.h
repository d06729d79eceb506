/*
 * catalog.h - the product catalog of the sandbox's shop: Online Boutique's
 * products.json format, checked when the sandbox starts, and the small
 * server that the VM's `docker run ... productcatalogservice` stand-in runs
 * (`outrigger sandbox-catalog`), answering GET /products with the document.
 * (The real productcatalogservice speaks gRPC; this speaks HTTP/JSON: a
 * documented gap, docs/sandbox.md.)
 */
#ifndef CATALOG_H
#define CATALOG_H

#include <jansson.h>

#include "or.h"

#define CATALOG_MAX (1u << 20)	/* bytes of a products.json */

/* Check a products.json document: {"products": [{id, name, description,
 * picture, priceUsd {currencyCode, units, nanos}, categories [..]}, ...]}
 * with at least one product, unique ids, 0 <= nanos < 10^9.  OR_E_INVALID
 * naming the first bad field (e.g. "products[2].priceUsd.units"). */
or_rc catalog_check(const json_t *doc, struct or_err *err);

/* Read and check a products.json file.  *out is the caller's (json_decref). */
or_rc catalog_load(const char *path, json_t **out, struct or_err *err);

/* `outrigger sandbox-catalog --listen IP:PORT --catalog FILE`: serve the
 * catalog until SIGTERM or SIGINT.  Returns the exit code. */
int catalog_main(int argc, char **argv);

#endif

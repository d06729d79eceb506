/*
 * fetch.h - downloads for plugins: through the provider's mirrors, size-
 * capped, checksum-verified, cached by checksum so a retried step does not
 * download again.  Behind or_host_api.fetch.
 */
#ifndef FETCH_H
#define FETCH_H

#include <stddef.h>

#include "outrigger/plugin.h"

const char *fetch_get(or_host *h, const char *url, const char *sha256, const char *sha256_url,
		      size_t max_bytes);

#endif

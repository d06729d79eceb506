/*
 * embed.h - files compiled into the binary by tools/embed.sh (migrations,
 * the OpenAPI document).  The table ends with an entry whose name is NULL;
 * data is NUL-terminated (the NUL is not counted in len).
 */
#ifndef EMBED_H
#define EMBED_H

#include <stddef.h>

struct embed_file {
	const char *name;
	const char *data;
	size_t len;
};

extern const struct embed_file embed_files[];

/* The embedded file called name, or NULL. */
const struct embed_file *embed_find(const char *name);

#endif

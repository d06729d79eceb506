/* embed.c - look-ups in the table tools/embed.sh generates. */
#include "embed.h"

#include <string.h>

const struct embed_file *
embed_find(const char *name)
{
	const struct embed_file *f;

	for (f = embed_files; f->name != NULL; f++)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

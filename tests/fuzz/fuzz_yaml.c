/*
 * fuzz_yaml.c - libFuzzer target for server/ydoc.c, the reader of the
 * manifests the rollout downloads (Istio's, Online Boutique's, whatever a
 * mirror serves): any bytes must give documents or an error naming the
 * document and line, never a crash, a leak or unbounded memory.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ydoc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *docs = NULL, *where = NULL;
	struct or_err err;
	char *text;

	if (ydoc_load((const char *)data, size, &docs, &where, &err) == OR_OK) {
		/* What the client does next: each document back to JSON. */
		text = json_dumps(docs, JSON_COMPACT);
		free(text);
		if (json_array_size(docs) != json_array_size(where))
			__builtin_trap();
	} else if (strstr(err.message, "YAML") == NULL && err.message[0] == '\0') {
		__builtin_trap(); /* a failure must say why */
	}
	json_decref(docs);
	json_decref(where);
	return 0;
}

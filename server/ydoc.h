/*
 * ydoc.h - multi-document YAML into jansson values, typed the way
 * Kubernetes reads its manifests (sigs.k8s.io/yaml over go-yaml v2).
 * Prefix ydoc_: libyaml owns yaml_.
 *
 * Plain scalars become null (~, null, empty), booleans (true/false and the
 * YAML 1.1 words yes/no/on/off/y/n in their three cases), integers
 * (decimal, 0x, 0o, 0b, leading-0 octal, '_' separators) or reals; quoted
 * and block scalars stay strings; explicit !!str/!!int/!!bool/!!float/!!null
 * tags are obeyed.  Anchors, aliases and merge keys (<<) work; an alias is
 * a copy, and the total number of values (aliases counted as expanded) is
 * bounded, so a "billion laughs" text fails instead of eating the memory.
 * Mapping keys become strings (80 -> "80"); a key defined twice is an
 * error, as kubectl says.
 *
 * Documented gaps: timestamps stay the strings they were written as
 * (go-yaml would reformat them); .inf and .nan stay strings (JSON has no
 * such numbers).
 */
#ifndef YDOC_H
#define YDOC_H

#include <jansson.h>
#include <stddef.h>

#include "or.h"

/* Largest text ydoc_load reads, and most values it builds. */
#define YDOC_MAX_INPUT (32u << 20)
#define YDOC_MAX_VALUES 2000000u
#define YDOC_MAX_DEPTH 200

/*
 * Parse every document of text (len bytes, need not be NUL-terminated).
 * *docs gets a new array (caller decrefs) of the documents' values in
 * order, empty documents (nothing, comments only, null) left out.  When
 * where is not NULL, *where gets a new array (caller decrefs) of the same
 * length: for each kept document [number, line], its 1-based position
 * among all documents of the text and the line its value starts on.
 * On failure nothing is returned and err says "YAML document N, line L:
 * what" (OR_E_MALFORMED), or OR_E_TOOLARGE / OR_E_NOMEM.
 */
or_rc ydoc_load(const char *text, size_t len, json_t **docs, json_t **where,
		struct or_err *err);

#endif

/*
 * bp.h - blueprints: step graphs with their parameter schemas, loaded from
 * JSON files at start-up (format in docs/blueprints.md).
 *
 * A file that does not load - bad JSON, a bad parameter schema, an unknown
 * plugin, a reference to a missing step or parameter, a cycle - is still
 * part of the set, with load_error saying why, so the API can show it;
 * environments cannot be created on it.  A bp_set is read-only once loaded
 * and may be shared by all threads.
 */
#ifndef BP_H
#define BP_H

#include <jansson.h>
#include <regex.h>
#include <stddef.h>

#include "or.h"
#include "plugin.h"

struct bp_param {
	const char *name;	/* key in doc's "params"; owned by doc */
	json_t *schema;		/* borrowed from doc */
	const char *type;
	regex_t re;
	int has_re;
};

struct bp_step {
	const char *name;	/* owned by doc */
	const char *plugin;	/* owned by doc */
	json_t *with;		/* borrowed from doc */
	size_t *deps;		/* indexes of the steps this one waits for */
	size_t ndeps;
	int retries;		/* extra attempts after a retryable failure */
};

#define BP_DEFAULT_RETRIES 2

struct bp {
	char *name;		/* the blueprint's name, or the file's stem */
	char *file;
	char *load_error;	/* NULL when the blueprint loaded */
	json_t *doc;		/* the parsed file, NULL if it was not JSON */
	struct bp_param *params;
	size_t nparams;
	struct bp_step *steps;
	size_t nsteps;
	size_t *order;		/* steps in an order that respects deps */
};

struct bp_set {
	struct bp *v;
	size_t n;
};

/* A reference found in a string: ${params.NAME} or ${steps.STEP.outputs.KEY}. */
struct bp_ref {
	enum { BP_REF_PARAM, BP_REF_STEP_OUTPUT } kind;
	char name[64];	/* NAME or STEP */
	char key[64];	/* KEY (step outputs only) */
	size_t start;	/* offset of "${" in the string */
	size_t len;	/* length of the whole reference */
};

/* Find the first reference at or after offset *pos of s.  Returns 1 and
 * fills ref (advancing *pos past it), 0 when there is none, -1 when text
 * starting with "${params." or "${steps." is not a well-formed reference
 * (ref->start says where).  Any other "$" text is not a reference. */
int bp_ref_next(const char *s, size_t *pos, struct bp_ref *ref);

/* What a reference points at: a borrowed value, or NULL.  NULL with why
 * left empty means "not known yet" (a plan), written as the text
 * "(known after apply)"; NULL with why set is an error. */
typedef json_t *(*bp_lookup_fn)(void *ctx, const struct bp_ref *ref,
				char *why, size_t size);

/* Replace the references inside v (recursively; new reference returned).
 * A string that is exactly one reference takes the referenced value, with
 * its type; other strings get the values as text (strings as they are,
 * others as compact JSON).  "$" text that is not a reference stays.  NULL
 * on error, with why saying which reference failed. */
json_t *bp_resolve(json_t *v, bp_lookup_fn lookup, void *ctx, char *why,
		   size_t size);

/* Load every *.json in each directory, in name order.  A missing directory
 * is OR_E_NOTFOUND; an individual bad file is not an error (see above). */
or_rc bp_set_load(struct bp_set *set, const char *const *dirs, size_t ndirs,
		  const struct plugin_set *plugins, struct or_err *err);
void bp_set_free(struct bp_set *set);

/* The blueprint called name, or NULL. */
const struct bp *bp_set_find(const struct bp_set *set, const char *name);

/* The API's view of a blueprint (new reference).  full adds each step's
 * "with" inputs and the outputs map. */
json_t *bp_to_json(const struct bp *bp, int full);

/* The step graph a run freezes: [{name, plugin, with, deps (indexes),
 * after (names), retries}] in the file's order.  New reference. */
json_t *bp_graph(const struct bp *bp);

/* Check given params (a JSON object, may be NULL for none) against the
 * blueprint's schema; on success *out is a new object with defaults filled.
 * Errors are OR_E_INVALID with field "params" or "params.NAME". */
or_rc bp_params_check(const struct bp *bp, json_t *given, json_t **out,
		      struct or_err *err);

#endif

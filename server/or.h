/*
 * or.h - the one error type of Outrigger.
 *
 * Every function that can fail returns an or_rc and, when given one, fills a
 * caller-supplied struct or_err with a human sentence and (for input errors)
 * the name of the offending field.  HTTP statuses are derived from or_rc in
 * exactly one place (or_rc_http_status), and whether an error is worth
 * retrying is data (or_rc_retryable), never guesswork at call sites.
 *
 * An or_err never holds a secret: messages are built from names and
 * positions, not from the values of secret fields.
 */
#ifndef OR_H
#define OR_H

#include <stdarg.h>
#include <stddef.h>

typedef enum or_rc {
	OR_OK = 0,
	OR_E_NOTFOUND,	  /* the named thing does not exist (404) */
	OR_E_CONFLICT,	  /* exists already, or locked by a run (409) */
	OR_E_INVALID,	  /* well-formed but refused, names a field (422) */
	OR_E_MALFORMED,	  /* not parseable, e.g. bad JSON (400) */
	OR_E_METHOD,	  /* path exists, method does not (405) */
	OR_E_TOOLARGE,	  /* over a size limit (413) */
	OR_E_MEDIATYPE,	  /* body is not application/json (415) */
	OR_E_RETRYABLE,	  /* transient: try again later (503) */
	OR_E_TIMEOUT,	  /* gave up waiting (504) */
	OR_E_AUTH,	  /* credentials missing or refused (401) */
	OR_E_IO,	  /* the operating system or the database failed (500) */
	OR_E_CLOUD,	  /* the cloud refused; message is the cloud's own (502) */
	OR_E_NOMEM,	  /* out of memory (500) */
	OR_E__COUNT
} or_rc;

#define OR_ERR_MSG_MAX 512
#define OR_ERR_FIELD_MAX 128

struct or_err {
	or_rc rc;
	char code[48];			/* snake_case, e.g. "not_found" */
	char field[OR_ERR_FIELD_MAX];	/* "" when no field is to blame */
	char message[OR_ERR_MSG_MAX];
};

/* Fill err (if not NULL) and return rc.  field may be NULL.  code may be
 * NULL, in which case the default code of rc is used. */
or_rc or_fail(struct or_err *err, or_rc rc, const char *code,
	      const char *field, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Clear err to "no error". */
void or_err_clear(struct or_err *err);

/* The HTTP status for rc: the single mapping used by the whole server. */
int or_rc_http_status(or_rc rc);

/* The default snake_case code of rc, e.g. "not_found". Static string. */
const char *or_rc_code(or_rc rc);

/* Whether an operation that failed with rc may succeed if retried. */
int or_rc_retryable(or_rc rc);

#endif

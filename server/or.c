/*
 * or.c - the error type: codes, HTTP statuses, retryability.
 * Everything here is a table lookup; keep it that way so the mapping lives
 * in one place.
 */
#include "or.h"

#include <stdio.h>
#include <string.h>

static const struct {
	int http;
	int retryable;
	const char *code;
} rc_table[OR_E__COUNT] = {
	[OR_OK] = {200, 0, "ok"},
	[OR_E_NOTFOUND] = {404, 0, "not_found"},
	[OR_E_CONFLICT] = {409, 0, "conflict"},
	[OR_E_INVALID] = {422, 0, "invalid"},
	[OR_E_MALFORMED] = {400, 0, "malformed"},
	[OR_E_METHOD] = {405, 0, "method_not_allowed"},
	[OR_E_TOOLARGE] = {413, 0, "too_large"},
	[OR_E_MEDIATYPE] = {415, 0, "unsupported_media_type"},
	[OR_E_RETRYABLE] = {503, 1, "unavailable"},
	[OR_E_TIMEOUT] = {504, 1, "timeout"},
	[OR_E_AUTH] = {401, 0, "unauthorized"},
	[OR_E_IO] = {500, 0, "internal"},
	[OR_E_CLOUD] = {502, 0, "cloud_error"},
	[OR_E_NOMEM] = {500, 1, "out_of_memory"},
};

static int
rc_valid(or_rc rc)
{
	return (int)rc >= 0 && rc < OR_E__COUNT;
}

int
or_rc_http_status(or_rc rc)
{
	return rc_valid(rc) ? rc_table[rc].http : 500;
}

const char *
or_rc_code(or_rc rc)
{
	return rc_valid(rc) ? rc_table[rc].code : "internal";
}

int
or_rc_retryable(or_rc rc)
{
	return rc_valid(rc) ? rc_table[rc].retryable : 0;
}

void
or_err_clear(struct or_err *err)
{
	if (err == NULL)
		return;
	memset(err, 0, sizeof(*err));
}

or_rc
or_fail(struct or_err *err, or_rc rc, const char *code, const char *field,
	const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return rc;
	err->rc = rc;
	snprintf(err->code, sizeof(err->code), "%s",
		 code != NULL ? code : or_rc_code(rc));
	snprintf(err->field, sizeof(err->field), "%s",
		 field != NULL ? field : "");
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return rc;
}

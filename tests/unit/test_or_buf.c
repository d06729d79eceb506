/* test_or_buf.c - the error type's mapping and the bounded buffer. */
#include "check.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "or.h"
#include "unit.h"

static void
t_rc_mapping(void)
{
	struct or_err e;

	CHECK_INT(or_rc_http_status(OR_E_NOTFOUND), 404);
	CHECK_INT(or_rc_http_status(OR_E_CONFLICT), 409);
	CHECK_INT(or_rc_http_status(OR_E_INVALID), 422);
	CHECK_INT(or_rc_http_status(OR_E_MALFORMED), 400);
	CHECK_INT(or_rc_http_status(OR_E_METHOD), 405);
	CHECK_INT(or_rc_http_status(OR_E_TOOLARGE), 413);
	CHECK_INT(or_rc_http_status(OR_E_MEDIATYPE), 415);
	CHECK_INT(or_rc_http_status((or_rc)999), 500);
	CHECK(or_rc_retryable(OR_E_RETRYABLE));
	CHECK(or_rc_retryable(OR_E_TIMEOUT));
	CHECK(!or_rc_retryable(OR_E_INVALID));
	CHECK(!or_rc_retryable(OR_E_CLOUD));
	CHECK_INT(or_fail(&e, OR_E_INVALID, NULL, "params.zone", "bad %s", "zone"), OR_E_INVALID);
	CHECK_STR(e.code, "invalid");
	CHECK_STR(e.field, "params.zone");
	CHECK_STR(e.message, "bad zone");
	CHECK_INT(or_fail(NULL, OR_E_IO, NULL, NULL, "x"), OR_E_IO);
}

static void
t_buf_bounded(void)
{
	struct buf b;
	char *s;

	buf_init(&b, 10);
	CHECK_STR(buf_str(&b), "");
	CHECK_INT(buf_append_str(&b, "hello"), OR_OK);
	CHECK_INT(buf_printf(&b, "%d", 12345), OR_OK);
	CHECK_STR(buf_str(&b), "hello12345");
	/* At the limit: growing fails and the contents stay as they were. */
	CHECK_INT(buf_append(&b, "x", 1), OR_E_TOOLARGE);
	CHECK_INT(buf_printf(&b, "%s", "y"), OR_E_TOOLARGE);
	CHECK_STR(buf_str(&b), "hello12345");
	CHECK_INT(b.len, 10);
	buf_reset(&b);
	CHECK_INT(b.len, 0);
	CHECK_INT(buf_append(&b, "abc", 3), OR_OK);
	s = buf_detach(&b);
	CHECK_STR(s, "abc");
	CHECK(b.data == NULL && b.len == 0);
	free(s);
	buf_free(&b);
	buf_free(&b); /* freeing twice is harmless */
}

static void
t_buf_grows(void)
{
	struct buf b;
	size_t i;

	buf_init(&b, 1 << 20);
	for (i = 0; i < 100000; i++)
		CHECK_INT(buf_append(&b, "0123456789", 10), i < 104857 ? OR_OK : OR_E_TOOLARGE);
	CHECK_INT(b.len, 1000000);
	CHECK_INT(strlen(buf_str(&b)), 1000000);
	buf_free(&b);
}

static void
t_utf8_fix(void)
{
	char ok[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80 ascii";
	char cut[] = "abc\xe2\x82";		/* a character cut in half */
	char bad[] = "\xff\xc0\xafx\xed\xa0\x80y";	/* invalid, overlong, surrogate */

	utf8_fix(ok);
	CHECK_STR(ok, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80 ascii");
	utf8_fix(cut);
	CHECK_STR(cut, "abc??");
	utf8_fix(bad);
	CHECK_STR(bad, "???x???y");
}

void
suite_or_buf(void)
{
	RUN(t_rc_mapping);
	RUN(t_buf_bounded);
	RUN(t_buf_grows);
	RUN(t_utf8_fix);
}

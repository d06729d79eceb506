/*
 * buf.h - a bounded growable byte buffer (curl's dynbuf idea).
 *
 * Request bodies, subprocess output and downloads go through a buf whose
 * maximum size is fixed at init: growing past it fails with OR_E_TOOLARGE
 * and leaves the contents as they were, never a crash or silent truncation.
 * The data is always NUL-terminated (the NUL is not counted in len).
 */
#ifndef BUF_H
#define BUF_H

#include <stddef.h>

#include "or.h"

struct buf {
	char *data;	/* NULL until the first append */
	size_t len;
	size_t cap;
	size_t max;	/* bytes of content allowed, not counting the NUL */
};

void buf_init(struct buf *b, size_t max);
/* Free the contents; the buf can be reused (it is empty afterwards). */
void buf_free(struct buf *b);
void buf_reset(struct buf *b);

or_rc buf_append(struct buf *b, const void *data, size_t len);
or_rc buf_append_str(struct buf *b, const char *s);
or_rc buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Hand the contents to the caller, who frees them with free(); the buf is
 * empty afterwards.  Returns "" (allocated) for an empty buf, NULL on OOM. */
char *buf_detach(struct buf *b);

/* The contents as a C string; "" when empty. Owned by the buf. */
const char *buf_str(const struct buf *b);

/* Copy s into out (at most size - 1 bytes, NUL-terminated), replacing
 * control characters, non-ASCII bytes and any byte in also (may be NULL)
 * with '?'.  For echoing what a request sent into a log line or a JSON
 * message, where any byte (a newline, invalid UTF-8) could forge or break
 * the line. */
void ascii_clean(char *out, size_t size, const char *s, const char *also);

/* Make s valid UTF-8 in place: every byte that does not belong to a
 * well-formed sequence becomes '?'.  Text from processes can hold anything,
 * and JSON strings must not. */
void utf8_fix(char *s);

#endif

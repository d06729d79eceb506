/*
 * buf.c - bounded growable buffer.  See buf.h.
 */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

static or_rc
buf_reserve(struct buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > b->max || b->len > b->max - extra)
		return OR_E_TOOLARGE;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return OR_OK;
	cap = b->cap != 0 ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	p = realloc(b->data, cap);
	if (p == NULL)
		return OR_E_NOMEM;
	b->data = p;
	b->cap = cap;
	return OR_OK;
}

or_rc
buf_append(struct buf *b, const void *data, size_t len)
{
	or_rc rc;

	rc = buf_reserve(b, len);
	if (rc != OR_OK)
		return rc;
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return OR_OK;
}

or_rc
buf_append_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

or_rc
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;
	or_rc rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return OR_E_INVALID;
	rc = buf_reserve(b, (size_t)n);
	if (rc != OR_OK)
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return OR_OK;
}

char *
buf_detach(struct buf *b)
{
	char *p;

	if (b->data == NULL)
		return strdup("");
	p = b->data;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

const char *
buf_str(const struct buf *b)
{
	return b->data != NULL ? b->data : "";
}

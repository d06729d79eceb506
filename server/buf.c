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

void
utf8_fix(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t n, i;
	unsigned cp;

	while (*p != '\0') {
		if (*p < 0x80) {
			p++;
			continue;
		}
		if (*p >= 0xc2 && *p <= 0xdf)
			n = 1;
		else if (*p >= 0xe0 && *p <= 0xef)
			n = 2;
		else if (*p >= 0xf0 && *p <= 0xf4)
			n = 3;
		else
			goto bad;
		cp = *p & (0x3f >> n);
		for (i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				goto bad;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		/* Overlong forms, surrogates and values past U+10FFFF. */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			goto bad;
		p += n + 1;
		continue;
bad:
		*p++ = '?';
	}
}

void
ascii_clean(char *out, size_t size, const char *s, const char *also)
{
	size_t i;

	if (size == 0)
		return;
	for (i = 0; i + 1 < size && s[i] != '\0'; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f &&
			  (also == NULL || strchr(also, s[i]) == NULL))
				 ? s[i]
				 : '?';
	out[i] = '\0';
}

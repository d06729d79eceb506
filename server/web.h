/*
 * web.h - static files of the dashboard, served from one directory and
 * never from outside it: ".." and hidden segments are refused, and the file
 * is opened relative to the directory with openat2(RESOLVE_BENEATH), so a
 * symbolic link cannot lead out either.
 */
#ifndef WEB_H
#define WEB_H

#include <stddef.h>
#include <sys/types.h>

#include "or.h"

struct web {
	int root_fd;	/* -1 when no directory is served */
};

struct web_file {
	int fd;			/* owned by the caller once web_open succeeds */
	off_t size;
	const char *content_type;	/* static string */
	char etag[64];
};

/* Open dir (it must exist).  */
or_rc web_init(struct web *w, const char *dir, struct or_err *err);
void web_fini(struct web *w);

/* Open the file for URL path ("/" is index.html).  OR_E_NOTFOUND for
 * anything that is not a regular file inside the directory. */
or_rc web_open(const struct web *w, const char *path, struct web_file *f,
	       struct or_err *err);

/* The content type for a file name, by its extension. */
const char *web_content_type(const char *name);

#endif

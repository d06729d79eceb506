/*
 * web.c - static files.  See web.h; the one rule is that no request can
 * read anything outside the web directory.
 */
#include "web.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define WEB_PATH_MAX 1024

static const struct {
	const char *ext, *type;
} content_types[] = {
	{".html", "text/html; charset=utf-8"},
	{".css", "text/css; charset=utf-8"},
	{".js", "text/javascript; charset=utf-8"},
	{".mjs", "text/javascript; charset=utf-8"},
	{".json", "application/json"},
	{".map", "application/json"},
	{".webmanifest", "application/manifest+json"},
	{".svg", "image/svg+xml"},
	{".png", "image/png"},
	{".ico", "image/x-icon"},
	{".txt", "text/plain; charset=utf-8"},
	{".woff2", "font/woff2"},
};

const char *
web_content_type(const char *name)
{
	const char *dot = strrchr(name, '.');
	size_t i;

	if (dot != NULL)
		for (i = 0; i < sizeof(content_types) / sizeof(content_types[0]); i++)
			if (strcasecmp(dot, content_types[i].ext) == 0)
				return content_types[i].type;
	return "application/octet-stream";
}

or_rc
web_init(struct web *w, const char *dir, struct or_err *err)
{
	w->root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->root_fd < 0)
		return or_fail(err, OR_E_NOTFOUND, NULL, "web",
			       "cannot open web directory %s: %s", dir,
			       strerror(errno));
	return OR_OK;
}

void
web_fini(struct web *w)
{
	if (w->root_fd >= 0)
		close(w->root_fd);
	w->root_fd = -1;
}

/* Refuse "..", ".", hidden and empty segments, and backslashes. */
static int
path_safe(const char *rel)
{
	const char *seg = rel;
	size_t n;

	if (rel[0] == '\0' || strchr(rel, '\\') != NULL)
		return 0;
	for (;;) {
		n = strcspn(seg, "/");
		if (n == 0 || seg[0] == '.')
			return 0;
		if (seg[n] == '\0')
			return 1;
		seg += n + 1;
	}
}

static int
open_beneath(int dirfd, const char *rel)
{
	struct open_how how;
	int fd;

	memset(&how, 0, sizeof(how));
	how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
	if (fd >= 0 || errno != ENOSYS)
		return fd;
	/* Kernels before 5.6: follow no symbolic link at all. */
	if (strchr(rel, '/') != NULL) {
		errno = ENOENT;
		return -1;
	}
	return openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
}

or_rc
web_open(const struct web *w, const char *path, struct web_file *f,
	 struct or_err *err)
{
	char rel[WEB_PATH_MAX];
	struct stat st;
	int fd;

	if (w->root_fd < 0)
		goto notfound;
	while (*path == '/')
		path++;
	if (snprintf(rel, sizeof(rel), "%s",
		     *path == '\0' ? "index.html" : path) >= (int)sizeof(rel))
		goto notfound;
	if (!path_safe(rel))
		goto notfound;
	fd = open_beneath(w->root_fd, rel);
	if (fd < 0)
		goto notfound;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		goto notfound;
	}
	f->fd = fd;
	f->size = st.st_size;
	f->content_type = web_content_type(rel);
	snprintf(f->etag, sizeof(f->etag), "\"%llx-%llx-%llx\"",
		 (unsigned long long)st.st_ino, (unsigned long long)st.st_size,
		 (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL +
			 (unsigned long long)st.st_mtim.tv_nsec);
	return OR_OK;
notfound:
	return or_fail(err, OR_E_NOTFOUND, NULL, NULL, "no such file");
}

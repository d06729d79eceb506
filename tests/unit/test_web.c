/*
 * test_web.c - static files stay inside their directory.
 */
#include "check.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "web.h"

static void
put(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
}

static int
opens(const struct web *w, const char *path)
{
	struct web_file f;

	if (web_open(w, path, &f, NULL) != OR_OK)
		return 0;
	close(f.fd);
	return 1;
}

static void
t_paths(void)
{
	char dir[64], root[96], path[160];
	struct web w;
	struct web_file f;

	tmpdir_make(dir, sizeof(dir));
	snprintf(root, sizeof(root), "%s/web", dir);
	mkdir(root, 0755);
	snprintf(path, sizeof(path), "%s/css", root);
	mkdir(path, 0755);
	put(root, "index.html", "<!doctype html>");
	put(root, "css/site.css", "body{}");
	put(root, ".secret", "x");
	put(dir, "outside.txt", "private");
	snprintf(path, sizeof(path), "%s/leak", root);
	CHECK_INT(symlink("/etc/passwd", path), 0);
	snprintf(path, sizeof(path), "%s/up", root);
	CHECK_INT(symlink("../outside.txt", path), 0);
	snprintf(path, sizeof(path), "%s/alias.html", root);
	CHECK_INT(symlink("index.html", path), 0);

	CHECK_INT(web_init(&w, root, NULL), OR_OK);
	CHECK_INT(web_open(&w, "/", &f, NULL), OR_OK);
	CHECK_STR(f.content_type, "text/html; charset=utf-8");
	CHECK_INT(f.size, 15);
	CHECK(f.etag[0] == '"');
	close(f.fd);
	CHECK(opens(&w, "/css/site.css"));
	CHECK(opens(&w, "/alias.html")); /* a link that stays inside is fine */
	CHECK(!opens(&w, "/../outside.txt"));
	CHECK(!opens(&w, "/css/../../outside.txt"));
	CHECK(!opens(&w, "/css/../index.html"));
	CHECK(!opens(&w, "/leak"));
	CHECK(!opens(&w, "/up"));
	CHECK(!opens(&w, "/.secret"));
	CHECK(!opens(&w, "/css"));
	CHECK(!opens(&w, "/css//site.css"));
	CHECK(!opens(&w, "/css\\site.css"));
	CHECK(!opens(&w, "/missing.js"));
	web_fini(&w);
	tmpdir_remove(dir);
}

static void
t_content_types(void)
{
	CHECK_STR(web_content_type("a.js"), "text/javascript; charset=utf-8");
	CHECK_STR(web_content_type("a.CSS"), "text/css; charset=utf-8");
	CHECK_STR(web_content_type("a.svg"), "image/svg+xml");
	CHECK_STR(web_content_type("noext"), "application/octet-stream");
}

void
suite_web(void)
{
	RUN(t_paths);
	RUN(t_content_types);
}

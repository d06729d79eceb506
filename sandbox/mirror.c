/*
 * mirror.c - the sandbox's download mirror (see mirror.h).
 *
 * The files come from sandbox/assets/ (compiled in by tools/embed.sh) with
 * @VERSION@, @TAG@ and @IMAGE_REPO@ replaced.  Archives and the .deb are
 * built by the real tar(1) and dpkg-deb(1) in a scratch directory, then
 * renamed into place, so a half-built file is never served; one lock
 * serializes the builds (each takes a few milliseconds, once per version).
 */
#include "mirror.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <regex.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "embed.h"

extern char **environ;

#define ISTIO_REAL "https://github.com/istio/istio/releases/download/"
#define DEB_REAL "https://storage.googleapis.com/istio-release/releases/"
#define OB_REAL "https://raw.githubusercontent.com/GoogleCloudPlatform/microservices-demo/"
#define GWAPI_REAL "https://github.com/kubernetes-sigs/gateway-api/releases/download/"
#define ASSET_MAX (1u << 20)

struct mirror {
	char *dir;
	pthread_mutex_t lock;
};

json_t *
mirror_prefixes(const char *base)
{
	static const char *const real[] = {ISTIO_REAL, DEB_REAL, OB_REAL, GWAPI_REAL};
	json_t *m = json_object();
	char url[1024];
	size_t i;

	/* Mirror URL = base + "/mirror/" + the real URL without its scheme:
	 * readable, and one rule maps both ways. */
	for (i = 0; i < sizeof(real) / sizeof(real[0]); i++) {
		snprintf(url, sizeof(url), "%s/mirror/%s", base, real[i] + strlen("https://"));
		json_object_set_new(m, real[i], json_string(url));
	}
	return m;
}

const char *
mirror_asset(const char *name, size_t *len)
{
	char full[256];
	const struct embed_file *f;

	snprintf(full, sizeof(full), "sandbox/assets/%s", name);
	f = embed_find(full);
	if (f == NULL)
		return NULL;
	if (len != NULL)
		*len = f->len;
	return f->data;
}

or_rc
mirror_new(const char *dir, struct mirror **out, struct or_err *err)
{
	struct mirror *m;

	*out = NULL;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return or_fail(err, OR_E_IO, NULL, NULL, "mkdir %s: %s", dir, strerror(errno));
	m = calloc(1, sizeof(*m));
	if (m == NULL || (m->dir = strdup(dir)) == NULL) {
		free(m);
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	}
	pthread_mutex_init(&m->lock, NULL);
	*out = m;
	return OR_OK;
}

void
mirror_free(struct mirror *m)
{
	if (m == NULL)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m->dir);
	free(m);
}

/* ---- versions --------------------------------------------------------- */

static int
matches(const char *re_text, const char *s)
{
	regex_t re;
	int ok;

	if (regcomp(&re, re_text, REG_EXTENDED | REG_NOSUB) != 0)
		return 0;
	ok = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

/* Istio versions the sandbox has: 1.6.x (the tutorial's) and 1.20 on. */
static int
istio_version_ok(const char *v)
{
	return strlen(v) < 32 &&
	       (matches("^1\\.6\\.(0|[1-9][0-9]?)$", v) ||
		matches("^1\\.([2-9][0-9]|[1-9][0-9][0-9])\\.(0|[1-9][0-9]?)$", v));
}

/* Online Boutique tags: v0.MINOR.PATCH.  *legacy: up to v0.5.2 (Istio
 * Gateway); from v0.6.0 on the Gateway API. */
static int
ob_tag(const char *tag, int *legacy, int *minor)
{
	int a, b, n = 0;

	if (strlen(tag) > 16 || !matches("^v0\\.(0|[1-9][0-9]?)\\.(0|[1-9][0-9]?)$", tag) ||
	    sscanf(tag, "v0.%d.%d%n", &a, &b, &n) != 2 || tag[n] != '\0' || (a == 0 && b == 0))
		return 0;
	*legacy = a < 5 || (a == 5 && b <= 2);
	*minor = a;
	return 1;
}

/* ---- files ------------------------------------------------------------- */

/* The asset name with each "@KEY@" of subs (pairs, NULL-ended) replaced. */
static or_rc
render(const char *name, const char *const *subs, struct buf *out, struct or_err *err)
{
	size_t len, i, k;
	const char *s = mirror_asset(name, &len);
	or_rc rc = OR_OK;

	if (s == NULL)
		return or_fail(err, OR_E_IO, NULL, NULL, "asset %s is not compiled in", name);
	buf_init(out, ASSET_MAX);
	for (i = 0; i < len && rc == OR_OK;) {
		int done = 0;

		for (k = 0; subs != NULL && subs[k] != NULL && !done; k += 2)
			if (strncmp(s + i, subs[k], strlen(subs[k])) == 0) {
				rc = buf_append_str(out, subs[k + 1]);
				i += strlen(subs[k]);
				done = 1;
			}
		if (!done)
			rc = buf_append(out, s + i++, 1);
	}
	if (rc != OR_OK) {
		buf_free(out);
		return or_fail(err, rc, NULL, NULL, "asset %s is too large", name);
	}
	return OR_OK;
}

static or_rc
write_file(const char *path, const char *data, size_t len, mode_t mode, struct or_err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ssize_t n;
	size_t off = 0;

	if (fd < 0)
		return or_fail(err, OR_E_IO, NULL, NULL, "open %s: %s", path, strerror(errno));
	while (off < len) {
		n = write(fd, data + off, len - off);
		if (n <= 0) {
			close(fd);
			return or_fail(err, OR_E_IO, NULL, NULL, "write %s: %s", path,
				       strerror(errno));
		}
		off += (size_t)n;
	}
	fchmod(fd, mode);
	if (close(fd) != 0)
		return or_fail(err, OR_E_IO, NULL, NULL, "close %s: %s", path, strerror(errno));
	return OR_OK;
}

/* Render asset into dir/rel (directories made as needed). */
static or_rc
put_asset(const char *dir, const char *rel, const char *asset, const char *const *subs,
	  mode_t mode, struct or_err *err)
{
	char path[4096], *slash;
	struct buf b;
	or_rc rc;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	for (slash = strchr(path + strlen(dir) + 1, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			rc = or_fail(err, OR_E_IO, NULL, NULL, "mkdir %s: %s", path, strerror(errno));
			return rc;
		}
		*slash = '/';
	}
	rc = render(asset, subs, &b, err);
	if (rc != OR_OK)
		return rc;
	rc = write_file(path, b.data != NULL ? b.data : "", b.len, mode, err);
	buf_free(&b);
	return rc;
}

/* Run argv (a tool from PATH), its output to /dev/null; OR_OK if it exits 0. */
static or_rc
run_tool(char *const argv[], struct or_err *err)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st, e;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	e = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (e != 0)
		return or_fail(err, OR_E_IO, NULL, NULL, "cannot run %s: %s", argv[0], strerror(e));
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return or_fail(err, OR_E_IO, NULL, NULL, "waitpid: %s", strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return or_fail(err, OR_E_IO, NULL, NULL, "%s failed (status %d)", argv[0], st);
	return OR_OK;
}

/* Remove a scratch tree made by this file (plain files and directories
 * only; never follows symlinks: nothing here makes any). */
static void
rm_tree(const char *path)
{
	char *argv[] = {"rm", "-rf", "--one-file-system", (char *)path, NULL};
	struct or_err e;

	if (strstr(path, "/mirror/") != NULL)
		run_tool(argv, &e);
}

/* sha256 of a file as 64 hex digits. */
static or_rc
sha256_file(const char *path, char hex[65], struct or_err *err)
{
	unsigned char data[65536], md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	FILE *f = fopen(path, "rb");
	size_t n, i;
	or_rc rc = OR_OK;

	if (ctx == NULL || f == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		rc = or_fail(err, OR_E_IO, NULL, NULL, "cannot hash %s", path);
		goto out;
	}
	while ((n = fread(data, 1, sizeof(data), f)) > 0)
		EVP_DigestUpdate(ctx, data, n);
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
out:
	if (f != NULL)
		fclose(f);
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* Build dir/name with fn unless it is there; then dir/name.sha256 in the
 * format of the real sites: "HEX  NAME\n". */
static or_rc
build_once(struct mirror *m, const char *sub, const char *name, const char *version,
	   or_rc (*fn)(const char *scratch, const char *version, const char *out,
		       struct or_err *err),
	   char *path, size_t size, struct or_err *err)
{
	char dir[4096], scratch[4300], tmp[4400], sum[4400], line[512], hex[65];
	struct stat st;
	or_rc rc = OR_OK;

	snprintf(dir, sizeof(dir), "%s/%s", m->dir, sub);
	snprintf(path, size, "%s/%s-%s", dir, version, name);
	snprintf(sum, sizeof(sum), "%s.sha256", path);
	pthread_mutex_lock(&m->lock);
	if (stat(path, &st) == 0 && stat(sum, &st) == 0)
		goto out;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		rc = or_fail(err, OR_E_IO, NULL, NULL, "mkdir %s: %s", dir, strerror(errno));
		goto out;
	}
	snprintf(scratch, sizeof(scratch), "%s/build-%s", dir, version);
	rm_tree(scratch);
	if (mkdir(scratch, 0755) != 0) {
		rc = or_fail(err, OR_E_IO, NULL, NULL, "mkdir %s: %s", scratch, strerror(errno));
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	rc = fn(scratch, version, tmp, err);
	if (rc == OR_OK)
		rc = sha256_file(tmp, hex, err);
	if (rc == OR_OK) {
		snprintf(line, sizeof(line), "%s  %s\n", hex, name);
		snprintf(sum + strlen(sum), sizeof(sum) - strlen(sum), ".tmp");
		rc = write_file(sum, line, strlen(line), 0644, err);
	}
	if (rc == OR_OK) {
		char final_sum[4400];

		snprintf(final_sum, sizeof(final_sum), "%s.sha256", path);
		if (rename(tmp, path) != 0 || rename(sum, final_sum) != 0)
			rc = or_fail(err, OR_E_IO, NULL, NULL, "rename into %s: %s", dir,
				     strerror(errno));
	}
	rm_tree(scratch);
out:
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* ---- the Istio archive -------------------------------------------------- */

static or_rc
build_istio(const char *scratch, const char *version, const char *out, struct or_err *err)
{
	static const char *const manifests[] = {"crds.yaml", "istiod.yaml", "ingressgateway.yaml",
						"meshexpansion-ports.yaml", "meshexpansion.yaml",
						"addons-demo.yaml", "eastwest.yaml"};
	const char *subs[] = {"@VERSION@", version, NULL};
	char top[128], rel[256], asset[128];
	int legacy = strncmp(version, "1.6.", 4) == 0;
	size_t i;
	or_rc rc;

	snprintf(top, sizeof(top), "istio-%s", version);
	snprintf(rel, sizeof(rel), "%s/bin/istioctl", top);
	rc = put_asset(scratch, rel, "istio/istioctl", subs, 0755, err);
	for (i = 0; rc == OR_OK && i < sizeof(manifests) / sizeof(manifests[0]); i++) {
		snprintf(rel, sizeof(rel), "%s/manifests/%s", top, manifests[i]);
		snprintf(asset, sizeof(asset), "istio/%s", manifests[i]);
		rc = put_asset(scratch, rel, asset, subs, 0644, err);
	}
	/* What each release has: samples/addons from 1.7, the east-west
	 * gateway scripts from 1.8 (the sandbox serves 1.20 on). */
	if (rc == OR_OK && !legacy) {
		snprintf(rel, sizeof(rel), "%s/samples/addons/kiali.yaml", top);
		rc = put_asset(scratch, rel, "istio/kiali.yaml", subs, 0644, err);
	}
	if (rc == OR_OK && !legacy) {
		snprintf(rel, sizeof(rel), "%s/samples/multicluster/gen-eastwest-gateway.sh", top);
		rc = put_asset(scratch, rel, "istio/gen-eastwest-gateway.sh", subs, 0755, err);
	}
	if (rc == OR_OK && !legacy) {
		snprintf(rel, sizeof(rel), "%s/samples/multicluster/expose-istiod.yaml", top);
		rc = put_asset(scratch, rel, "istio/expose-istiod.yaml", subs, 0644, err);
	}
	if (rc == OR_OK) {
		char *argv[] = {"tar", "-C", (char *)scratch, "--owner=0", "--group=0",
				"--numeric-owner", "-czf", (char *)out, top, NULL};

		rc = run_tool(argv, err);
	}
	return rc;
}

/* ---- the sidecar package ------------------------------------------------- */

static or_rc
build_deb(const char *scratch, const char *version, const char *out, struct or_err *err)
{
	static const struct {
		const char *rel, *asset;
		mode_t mode;
	} files[] = {
		{"pkg/DEBIAN/control", "sidecar/control", 0644},
		{"pkg/DEBIAN/postinst", "sidecar/postinst", 0755},
		{"pkg/DEBIAN/conffiles", NULL, 0644},
		{"pkg/usr/local/bin/istio-start.sh", "sidecar/istio-start.sh", 0755},
		{"pkg/lib/systemd/system/istio.service", "sidecar/istio.service", 0644},
		{"pkg/var/lib/istio/envoy/envoy_bootstrap_tmpl.json", "sidecar/envoy_bootstrap_tmpl.json",
		 0644},
		{"pkg/var/lib/istio/envoy/sidecar.env", "sidecar/sidecar.env", 0644},
	};
	static const char conffiles[] = "/var/lib/istio/envoy/envoy_bootstrap_tmpl.json\n"
					"/var/lib/istio/envoy/sidecar.env\n";
	const char *subs[] = {"@VERSION@", version, NULL};
	char path[4400];
	size_t i;
	or_rc rc = OR_OK;

	for (i = 0; rc == OR_OK && i < sizeof(files) / sizeof(files[0]); i++) {
		if (files[i].asset != NULL) {
			rc = put_asset(scratch, files[i].rel, files[i].asset, subs, files[i].mode, err);
		} else {
			snprintf(path, sizeof(path), "%s/%s", scratch, files[i].rel);
			rc = write_file(path, conffiles, strlen(conffiles), files[i].mode, err);
		}
	}
	if (rc == OR_OK) {
		char pkg[4400];
		char *argv[] = {"dpkg-deb", "--root-owner-group", "-Zgzip", "--build", pkg,
				(char *)out, NULL};

		snprintf(pkg, sizeof(pkg), "%s/pkg", scratch);
		rc = run_tool(argv, err);
	}
	return rc;
}

/* ---- answers --------------------------------------------------------------- */

static or_rc
answer_file(const char *path, const char *ctype, struct mirror_answer *a, struct or_err *err)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) != 0) {
		if (fd >= 0)
			close(fd);
		return or_fail(err, OR_E_IO, NULL, NULL, "open %s: %s", path, strerror(errno));
	}
	a->status = 200;
	a->fd = fd;
	a->size = (size_t)st.st_size;
	a->ctype = ctype;
	return OR_OK;
}

static or_rc
answer_text(const char *asset, const char *const *subs, const char *ctype,
	    struct mirror_answer *a, struct or_err *err)
{
	struct buf b;
	or_rc rc = render(asset, subs, &b, err);

	if (rc != OR_OK)
		return rc;
	a->status = 200;
	a->len = b.len;
	a->body = buf_detach(&b);
	a->ctype = ctype;
	return a->body != NULL ? OR_OK : or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
}

static or_rc
not_found(struct mirror_answer *a, const char *text)
{
	a->status = 404;
	a->body = strdup(text);
	a->len = a->body != NULL ? strlen(a->body) : 0;
	a->ctype = "text/plain; charset=utf-8";
	return OR_OK;
}

or_rc
mirror_get(struct mirror *m, const char *path, struct mirror_answer *a, struct or_err *err)
{
	char v[64], file[128], want[160], built[4400], kind[32];
	int n = 0, legacy = 0, minor = 0;

	memset(a, 0, sizeof(*a));
	a->fd = -1;
	if (strstr(path, "..") != NULL || strlen(path) > 400)
		return not_found(a, "Not Found");
	/* Istio release archives. */
	if (sscanf(path, "/mirror/github.com/istio/istio/releases/download/%63[^/]/%127s%n", v, file,
		   &n) == 2 &&
	    path[n] == '\0') {
		int sha;

		if (!istio_version_ok(v))
			return not_found(a, "Not Found");
		snprintf(want, sizeof(want), "istio-%s-linux-amd64.tar.gz", v);
		sha = strcmp(file + strlen(want), ".sha256") == 0;
		if (strncmp(file, want, strlen(want)) != 0 || (file[strlen(want)] != '\0' && !sha))
			return not_found(a, "Not Found");
		if (build_once(m, "istio", want, v, build_istio, built, sizeof(built), err) != OR_OK)
			return err->rc;
		if (sha)
			snprintf(built + strlen(built), sizeof(built) - strlen(built), ".sha256");
		return answer_file(built, sha ? "text/plain; charset=utf-8" : "application/octet-stream",
				   a, err);
	}
	/* The VM sidecar package. */
	if (sscanf(path, "/mirror/storage.googleapis.com/istio-release/releases/%63[^/]/deb/%127s%n",
		   v, file, &n) == 2 &&
	    path[n] == '\0') {
		int sha = strcmp(file, "istio-sidecar.deb.sha256") == 0;

		if (!istio_version_ok(v) || (!sha && strcmp(file, "istio-sidecar.deb") != 0))
			return not_found(a, "<?xml version='1.0' encoding='UTF-8'?><Error><Code>"
					    "NoSuchKey</Code><Message>The specified key does not "
					    "exist.</Message></Error>");
		if (build_once(m, "deb", "istio-sidecar.deb", v, build_deb, built, sizeof(built),
			       err) != OR_OK)
			return err->rc;
		if (sha)
			snprintf(built + strlen(built), sizeof(built) - strlen(built), ".sha256");
		return answer_file(built, sha ? "text/plain; charset=utf-8"
					      : "application/vnd.debian.binary-package",
				   a, err);
	}
	/* Online Boutique release manifests. */
	if (sscanf(path, "/mirror/raw.githubusercontent.com/GoogleCloudPlatform/microservices-demo/"
			 "%63[^/]/release/%31[a-z]-manifests.yaml%n",
		   v, kind, &n) == 2 &&
	    path[n] == '\0') {
		const char *subs[] = {"@TAG@", v, "@IMAGE_REPO@", NULL, NULL};
		char asset[128];

		if (!ob_tag(v, &legacy, &minor) ||
		    (strcmp(kind, "kubernetes") != 0 && strcmp(kind, "istio") != 0))
			return not_found(a, "404: Not Found");
		subs[3] = minor >= 8 ? "us-central1-docker.pkg.dev/google-samples/microservices-demo"
				     : "gcr.io/google-samples/microservices-demo";
		snprintf(asset, sizeof(asset), "boutique/%s-manifests-%s.yaml", kind,
			 legacy ? "legacy" : "current");
		return answer_text(asset, subs, "text/plain; charset=utf-8", a, err);
	}
	/* Gateway API CRDs. */
	if (sscanf(path, "/mirror/github.com/kubernetes-sigs/gateway-api/releases/download/%63[^/]/"
			 "standard-install.yaml%n",
		   v, &n) == 1 &&
	    path[n] == '\0') {
		const char *subs[] = {"@VERSION@", v, NULL};

		if (!matches("^v1\\.(0|[1-9][0-9]?)\\.(0|[1-9][0-9]?)$", v))
			return not_found(a, "Not Found");
		return answer_text("gateway-api/standard-install.yaml", subs,
				   "application/octet-stream", a, err);
	}
	return not_found(a, "Not Found");
}

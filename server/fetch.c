/*
 * fetch.c - downloads for plugins (see fetch.h).
 *
 * The file lands in the provider's cache directory (the job's
 * "cache_dir", else the attempt's scratch directory) under its checksum,
 * written to a temporary name and renamed once verified, so a crash never
 * leaves a half file that looks complete.
 */
#include "fetch.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host.h"

static void
sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	int i;

	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int
hex64(const char *s)
{
	int i;

	for (i = 0; i < 64; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return s[64] == '\0' || isspace((unsigned char)s[64]);
}

static int
get(or_host *h, const char *url, size_t max, struct or_http_response *resp)
{
	struct or_http_request req = {0};

	req.method = "GET";
	req.url = url;
	req.max_response = max;
	req.timeout_ms = 300000;
	if (step_host_api.http(h, &req, resp) != 0)
		return -1;
	if (resp->status != 200) {
		step_host_api.fail(h, "download", "%s answered HTTP %ld", url, resp->status);
		step_host_api.http_free(resp);
		return -1;
	}
	return 0;
}

const char *
fetch_get(or_host *h, const char *url, const char *sha256, const char *sha256_url,
	  size_t max_bytes)
{
	struct or_http_response resp = {0};
	const char *src, *dir, *slash;
	char want[65], got[65], path[4096], tmp[4200], *out = NULL;
	int unverified = 0;
	struct stat st;
	FILE *f;
	size_t i;

	if (url == NULL) {
		step_host_api.fail(h, "plugin", "fetch() needs a URL");
		return NULL;
	}
	if (sha256 == NULL && sha256_url == NULL) {
		/* Some publishers post no checksum (Gateway API's release
		 * YAML): keep such a file under its URL's digest, and say in
		 * the log that nothing vouches for it. */
		sha256_hex(url, strlen(url), want);
		unverified = 1;
	} else if (sha256 != NULL) {
		if (!hex64(sha256)) {
			step_host_api.fail(h, "plugin", "fetch(): sha256 must be 64 hex digits");
			return NULL;
		}
		memcpy(want, sha256, 64);
	} else {
		/* The checksum file's first word, as `sha256sum -c` reads it. */
		src = step_host_api.mirror_url(h, sha256_url);
		if (get(h, src, 4096, &resp) != 0)
			return NULL;
		if (resp.body_len < 64 || !hex64(resp.body)) {
			step_host_api.fail(h, "download", "%s is not a sha256 checksum file", src);
			step_host_api.http_free(&resp);
			return NULL;
		}
		memcpy(want, resp.body, 64);
		step_host_api.http_free(&resp);
	}
	want[64] = '\0';
	for (i = 0; i < 64; i++)
		want[i] = (char)tolower((unsigned char)want[i]);

	dir = step_provider(h, "cache_dir");
	if (dir == NULL || (mkdir(dir, 0700) != 0 && errno != EEXIST))
		dir = step_workdir(h);
	if (dir == NULL)
		return NULL;
	slash = strrchr(url, '/');
	snprintf(path, sizeof(path), "%s/%.16s-%s", dir, want,
		 slash != NULL && slash[1] != '\0' ? slash + 1 : "download");
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
		step_host_api.log(h, OR_LOG_INFO, "%s: in the cache", url);
		return step_keep(h, strdup(path));
	}

	src = step_host_api.mirror_url(h, url);
	step_host_api.log(h, OR_LOG_INFO, "downloading %s%s%s", url,
			  src != url && strcmp(src, url) != 0 ? " from " : "",
			  src != url && strcmp(src, url) != 0 ? src : "");
	if (get(h, src, max_bytes, &resp) != 0)
		return NULL;
	sha256_hex(resp.body, resp.body_len, got);
	if (!unverified && strcmp(got, want) != 0) {
		step_host_api.fail(h, "checksum", "%s: sha256 %s, expected %s", url, got, want);
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.%d.part", path, (int)getpid());
	f = fopen(tmp, "wb");
	if (f == NULL || fwrite(resp.body, 1, resp.body_len, f) != resp.body_len ||
	    fclose(f) != 0 || rename(tmp, path) != 0) {
		step_host_api.fail(h, "io", "cannot store %s in the cache: %s", url, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (unverified)
		step_host_api.log(h, OR_LOG_WARN, "%s: %zu bytes, sha256 %s (no published checksum "
				  "to verify it against)", url, resp.body_len, got);
	else
		step_host_api.log(h, OR_LOG_INFO, "%s: %zu bytes, sha256 verified", url,
				  resp.body_len);
	out = strdup(path);
out:
	step_host_api.http_free(&resp);
	return out != NULL ? step_keep(h, out) : NULL;
}

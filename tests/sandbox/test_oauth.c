/*
 * test_oauth.c - the sandbox's token endpoint, driven from C the way the
 * product will: a service-account key file -> a signed JWT assertion ->
 * POST to token_uri -> a bearer token that the Compute API accepts.
 * Bad assertions are refused with OAuth's error shape.
 */
#define CHECK_MAIN
#include "check.h"

#include <curl/curl.h>
#include <ftw.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pki.h"

static char dir[] = "/tmp/outrigger-oauth-XXXXXX";
static pid_t sandbox_pid;
static json_t *endpoints;

struct sink {
	char data[65536];
	size_t len;
};

static size_t
on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct sink *k = ud;
	size_t add = sz * n;

	if (k->len + add >= sizeof(k->data))
		add = sizeof(k->data) - k->len - 1;
	memcpy(k->data + k->len, p, add);
	k->len += add;
	k->data[k->len] = '\0';
	return sz * n;
}

/* One request; returns the status, the body in k. */
static long
http(const char *method, const char *url, const char *bearer, const char *form,
     struct sink *k)
{
	struct curl_slist *h = NULL;
	char auth[512];
	long status = 0;
	CURL *c = curl_easy_init();

	k->len = 0;
	k->data[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, k);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	if (bearer != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);
		h = curl_slist_append(h, auth);
	}
	if (form != NULL) {
		h = curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return status;
}

static int
start_sandbox(void)
{
	const char *bin = getenv("OUTRIGGER_BIN") ? getenv("OUTRIGGER_BIN") : "build/outrigger";
	char sbdir[128], path[192];
	int i;

	snprintf(sbdir, sizeof(sbdir), "%s/sb", dir);
	sandbox_pid = fork();
	if (sandbox_pid == 0) {
		freopen("/dev/null", "w", stdout);
		execl(bin, bin, "sandbox", "--listen", "127.0.0.1:0", "--dir", sbdir, NULL);
		_exit(127);
	}
	snprintf(path, sizeof(path), "%s/endpoints.json", sbdir);
	for (i = 0; i < 200 && endpoints == NULL; i++) {
		usleep(25000);
		endpoints = json_load_file(path, 0, NULL);
	}
	return endpoints != NULL ? 0 : -1;
}

static char *
assertion_for(const char *key_json, const char *aud, long long now)
{
	struct or_err err;
	char *jwt = NULL;

	if (pki_sa_assertion(key_json, "https://www.googleapis.com/auth/cloud-platform", aud, now,
			     &jwt, &err) != OR_OK)
		fprintf(stderr, "    assertion: %s\n", err.message);
	return jwt;
}

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *data = calloc(1, 65536);

	if (f != NULL && data != NULL)
		fread(data, 1, 65535, f);
	if (f != NULL)
		fclose(f);
	return data;
}

static const char *
ep(const char *key)
{
	return json_string_value(json_object_get(endpoints, key));
}

static void
t_exchange(void)
{
	char *key = read_file(ep("service_account_key_file")), form[20000], url[512];
	char *jwt = assertion_for(key, NULL, (long long)time(NULL));
	struct sink k;
	json_t *ans;
	const char *tok;

	CHECK(jwt != NULL);
	snprintf(form, sizeof(form),
		 "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer&assertion=%s",
		 jwt != NULL ? jwt : "");
	CHECK_INT(http("POST", ep("token_uri"), NULL, form, &k), 200);
	ans = json_loads(k.data, 0, NULL);
	tok = json_string_value(json_object_get(ans, "access_token"));
	CHECK(tok != NULL);
	CHECK_STR(json_string_value(json_object_get(ans, "token_type")), "Bearer");
	CHECK(json_integer_value(json_object_get(ans, "expires_in")) > 3000);
	/* The token opens the Compute API; no token does not. */
	snprintf(url, sizeof(url), "%sprojects/oauth-test-project", ep("compute"));
	CHECK_INT(http("GET", url, tok, NULL, &k), 200);
	CHECK(strstr(k.data, "\"defaultServiceAccount\"") != NULL);
	CHECK_INT(http("GET", url, NULL, NULL, &k), 401);
	CHECK(strstr(k.data, "\"UNAUTHENTICATED\"") != NULL);
	CHECK_INT(http("GET", url, "ya29.made-up", NULL, &k), 401);
	json_decref(ans);
	free(jwt);
	pki_secret_free(key);
}

static void
expect_refused(const char *jwt, const char *grant, const char *why)
{
	char form[20000];
	struct sink k;

	snprintf(form, sizeof(form), "grant_type=%s&assertion=%s", grant, jwt != NULL ? jwt : "x");
	CHECK_INT(http("POST", ep("token_uri"), NULL, form, &k), 400);
	CHECK(strstr(k.data, why) != NULL);
	if (strstr(k.data, why) == NULL)
		fprintf(stderr, "    got %s\n", k.data);
}

static void
t_refused(void)
{
	const char *grant = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";
	char *key = read_file(ep("service_account_key_file")), *other = NULL, *jwt;
	struct or_err err;
	long long now = (long long)time(NULL);

	/* Signed by another service account's key. */
	CHECK_INT(pki_sa_key_new("oauth-test-project", "intruder", NULL, &other, &err), OR_OK);
	jwt = assertion_for(other, ep("token_uri"), now);
	expect_refused(jwt, grant, "invalid_grant");
	free(jwt);
	/* Expired an hour ago, and a wrong audience. */
	jwt = assertion_for(key, NULL, now - 7300);
	expect_refused(jwt, grant, "invalid_grant");
	free(jwt);
	jwt = assertion_for(key, "https://example.invalid/token", now);
	expect_refused(jwt, grant, "invalid_grant");
	free(jwt);
	/* Not a JWT; another grant type. */
	expect_refused("not.a.jwt", grant, "invalid_grant");
	expect_refused("x", "client_credentials", "unsupported_grant_type");
	pki_secret_free(other);
	pki_secret_free(key);
}

static void
t_key_file_private(void)
{
	char cmd[300], out[64] = "";
	FILE *p;

	snprintf(cmd, sizeof(cmd), "stat -c %%a '%s'", ep("service_account_key_file"));
	p = popen(cmd, "r");
	if (p != NULL) {
		if (fgets(out, sizeof(out), p) == NULL)
			out[0] = '\0';
		pclose(p);
	}
	CHECK_STR(out, "600\n");
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int
main(void)
{
	int st = 0;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (mkdtemp(dir) == NULL || start_sandbox() != 0) {
		fprintf(stderr, "oauth: the sandbox did not start\n");
		printf("oauth: 0 passed, 1 failed\n");
		return 1;
	}
	RUN(t_exchange);
	RUN(t_refused);
	RUN(t_key_file_private);
	kill(sandbox_pid, SIGTERM);
	waitpid(sandbox_pid, &st, 0);
	check_cur_name = "t_sandbox_stops_cleanly";
	check_cur_failed = 0;
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if (check_cur_failed)
		check_failed++;
	else
		check_passed++;
	json_decref(endpoints);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	curl_global_cleanup();
	return check_done("oauth");
}

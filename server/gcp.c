/*
 * gcp.c - Google Cloud REST for plugins (see gcp.h).
 *
 * Credentials, in order: the provider's service_account_key_file (a
 * JWT-bearer grant at the provider's token_uri, else the key's own), its
 * access_token_file, else the Compute Engine metadata server.  A token is
 * kept for the attempt and refreshed a minute before it expires, or at
 * once when an API answers 401.
 */
#include "gcp.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "host.h"
#include "pki.h"

#define CLOUD_SCOPE "https://www.googleapis.com/auth/cloud-platform"
#define METADATA_TOKEN_URL \
	"http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token"
/* Key files and token files are small; a bigger one is not what we want. */
#define CRED_FILE_MAX (64 * 1024)

/* The runner runs one attempt, on one thread: the token is per process. */
static char token[4096];
static time_t token_expiry;

static char *
read_small_file(const char *path)
{
	struct buf b;
	char chunk[4096];
	size_t n;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return NULL;
	buf_init(&b, CRED_FILE_MAX);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_append(&b, chunk, n) != OR_OK) {
			buf_free(&b);
			fclose(f);
			return NULL;
		}
	fclose(f);
	return buf_detach(&b);
}

static int
token_keep(or_host *h, const char *value, long long expires_in)
{
	size_t n = value != NULL ? strlen(value) : 0;

	while (n > 0 && (value[n - 1] == '\n' || value[n - 1] == '\r' || value[n - 1] == ' '))
		n--;
	if (n == 0 || n >= sizeof(token)) {
		step_host_api.fail(h, "auth", "the credentials gave no usable access token");
		return -1;
	}
	memcpy(token, value, n);
	token[n] = '\0';
	token_expiry = time(NULL) + (time_t)expires_in;
	return 0;
}

/* POST an assertion of the service-account key to the token endpoint. */
static int
token_from_key(or_host *h, const char *key_file)
{
	struct or_http_response resp = {0};
	struct or_http_request req = {0};
	const char *uri, *headers[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
	char *key = read_small_file(key_file), *jwt = NULL, *body = NULL;
	json_t *k = NULL, *ans = NULL;
	struct or_err err;
	int rc = -1;

	if (key == NULL) {
		step_host_api.fail(h, "auth", "cannot read the service-account key file");
		goto out;
	}
	k = json_loads(key, 0, NULL);
	uri = step_provider(h, "token_uri");
	if (uri == NULL)
		uri = json_string_value(json_object_get(k, "token_uri"));
	if (uri == NULL)
		uri = PKI_GOOGLE_TOKEN_URI;
	if (pki_sa_assertion(key, CLOUD_SCOPE, NULL, (long long)time(NULL), &jwt, &err) != OR_OK) {
		step_host_api.fail(h, "auth", "the service-account key is unusable: %s", err.message);
		goto out;
	}
	if (asprintf(&body, "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer"
			    "&assertion=%s", jwt) < 0) {
		body = NULL;
		goto out;
	}
	req.method = "POST";
	req.url = uri;
	req.headers = headers;
	req.body = body;
	req.body_len = strlen(body);
	if (step_host_api.http(h, &req, &resp) != 0)
		goto out;
	ans = json_loads(resp.body != NULL ? resp.body : "", 0, NULL);
	if (resp.status != 200 || !json_is_string(json_object_get(ans, "access_token"))) {
		/* OAuth's own words; they never contain the assertion. */
		step_host_api.fail(h, "auth", "the token endpoint refused the service account (%ld): %s",
				   resp.status,
				   json_string_value(json_object_get(ans, "error_description"))
					   ? json_string_value(json_object_get(ans, "error_description"))
					   : "no reason given");
		goto out;
	}
	rc = token_keep(h, json_string_value(json_object_get(ans, "access_token")),
			json_integer_value(json_object_get(ans, "expires_in")) > 0
				? json_integer_value(json_object_get(ans, "expires_in"))
				: 3600);
out:
	step_host_api.http_free(&resp);
	json_decref(ans);
	json_decref(k);
	pki_secret_free(key);
	pki_secret_free(jwt);
	pki_secret_free(body);
	return rc;
}

static int
token_from_metadata(or_host *h)
{
	struct or_http_response resp = {0};
	struct or_http_request req = {0};
	const char *headers[] = {"Metadata-Flavor: Google", NULL};
	json_t *ans = NULL;
	int rc = -1;

	req.method = "GET";
	req.url = METADATA_TOKEN_URL;
	req.headers = headers;
	req.timeout_ms = 5000;
	if (step_host_api.http(h, &req, &resp) != 0) {
		step_host_api.fail(h, "auth", "no credentials: no key file, no token file, and no "
					      "metadata server (serve --gcp-credentials KEYFILE)");
		goto out;
	}
	ans = json_loads(resp.body != NULL ? resp.body : "", 0, NULL);
	if (resp.status != 200 || !json_is_string(json_object_get(ans, "access_token"))) {
		step_host_api.fail(h, "auth", "the metadata server gave no token (HTTP %ld)",
				   resp.status);
		goto out;
	}
	rc = token_keep(h, json_string_value(json_object_get(ans, "access_token")),
			json_integer_value(json_object_get(ans, "expires_in")) > 0
				? json_integer_value(json_object_get(ans, "expires_in"))
				: 300);
out:
	step_host_api.http_free(&resp);
	json_decref(ans);
	return rc;
}

const char *
gcp_token(or_host *h)
{
	const char *key_file = step_provider(h, "service_account_key_file");
	const char *token_file = step_provider(h, "access_token_file");
	char *t;
	int rc;

	if (token[0] != '\0' && time(NULL) + 60 < token_expiry)
		return token;
	if (key_file != NULL) {
		rc = token_from_key(h, key_file);
	} else if (token_file != NULL) {
		/* A token someone else refreshes: read it again each time. */
		t = read_small_file(token_file);
		if (t == NULL) {
			step_host_api.fail(h, "auth", "cannot read the access token file");
			return NULL;
		}
		rc = token_keep(h, t, 120);
		pki_secret_free(t);
	} else {
		rc = token_from_metadata(h);
	}
	return rc == 0 ? token : NULL;
}

/* "compute:PATH" and friends against the provider's bases.  Google's
 * own URLs (the selfLinks in its answers) go to the provider's base too,
 * so a link read from an answer works against the sandbox and against
 * an air-gapped proxy alike. */
static char *
resolve_url(or_host *h, const char *url)
{
	static const char *apis[] = {"compute", "container", "serviceusage"};
	static const struct {
		const char *prefix, *api;
	} google[] = {{"https://compute.googleapis.com/compute/v1/", "compute"},
		      {"https://www.googleapis.com/compute/v1/", "compute"},
		      {"https://container.googleapis.com/", "container"},
		      {"https://serviceusage.googleapis.com/", "serviceusage"}};
	const char *colon = strchr(url, ':'), *base;
	char *out;
	size_t i;

	for (i = 0; i < sizeof(google) / sizeof(google[0]); i++) {
		size_t n = strlen(google[i].prefix);

		if (strncmp(url, google[i].prefix, n) != 0)
			continue;
		base = step_provider(h, google[i].api);
		if (base == NULL)
			break;
		if (asprintf(&out, "%s%s", base, url + n) < 0)
			return NULL;
		return out;
	}

	for (i = 0; colon != NULL && i < sizeof(apis) / sizeof(apis[0]); i++) {
		if (strlen(apis[i]) != (size_t)(colon - url) ||
		    strncmp(url, apis[i], strlen(apis[i])) != 0)
			continue;
		base = step_provider(h, apis[i]);
		if (base == NULL) {
			step_host_api.fail(h, "provider",
					   "provider %s is not configured on this server (it has no %s "
					   "endpoint: start it with --sandbox, --sandbox-endpoints or "
					   "--gcp-credentials)",
					   step_host_api.info(h, "provider"), apis[i]);
			return NULL;
		}
		if (asprintf(&out, "%s%s", base, colon[1] == '/' ? colon + 2 : colon + 1) < 0)
			return NULL;
		return out;
	}
	return strdup(url);
}

int
gcp_call(or_host *h, const char *method, const char *url, const char *json_body,
	 struct or_http_response *resp)
{
	struct or_http_request req = {0};
	const char *headers[3];
	char auth[sizeof(token) + 32];
	char *full = NULL;
	int rc = -1, tries;

	memset(resp, 0, sizeof(*resp));
	if (method == NULL || url == NULL) {
		step_host_api.fail(h, "plugin", "gcp() needs a method and a URL");
		return -1;
	}
	full = resolve_url(h, url);
	if (full == NULL)
		return -1;
	for (tries = 0; tries < 2; tries++) {
		if (gcp_token(h) == NULL)
			break;
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		headers[0] = auth;
		headers[1] = "Content-Type: application/json";
		headers[2] = NULL;
		req.method = method;
		req.url = full;
		req.headers = headers;
		req.body = json_body;
		req.body_len = json_body != NULL ? strlen(json_body) : 0;
		rc = step_host_api.http(h, &req, resp);
		if (rc != 0 || resp->status != 401 || tries == 1)
			break;
		/* A token revoked or expired early: get a new one, once. */
		step_host_api.http_free(resp);
		token[0] = '\0';
	}
	explicit_bzero(auth, sizeof(auth));
	free(full);
	return rc;
}

const char *
gcp_error(or_host *h, const struct or_http_response *resp, const char **reason)
{
	json_t *body, *e, *first;
	const char *msg, *why;
	char *copy;

	if (reason != NULL)
		*reason = NULL;
	if (resp == NULL)
		return NULL;
	body = json_loads(resp->body != NULL ? resp->body : "", 0, NULL);
	e = json_object_get(body, "error");
	first = json_array_get(json_object_get(e, "errors"), 0);
	msg = json_string_value(json_object_get(e, "message"));
	why = json_string_value(json_object_get(first, "reason"));
	if (why == NULL)
		why = json_string_value(json_object_get(e, "status"));
	if (reason != NULL && why != NULL)
		*reason = step_keep(h, strdup(why));
	if (msg != NULL)
		copy = strdup(msg);
	else if (asprintf(&copy, "HTTP %ld from the API", resp->status) < 0)
		copy = NULL;
	json_decref(body);
	return step_keep(h, copy);
}

/* The error of a finished operation, Compute's shape or GKE's; NULL when
 * it succeeded. */
static const char *
op_error(const json_t *op)
{
	const json_t *e = json_object_get(op, "error");
	const char *m;

	m = json_string_value(json_object_get(json_array_get(json_object_get(e, "errors"), 0),
					      "message"));
	if (m != NULL)
		return m;
	m = json_string_value(json_object_get(e, "message"));
	if (m != NULL)
		return m;
	/* GKE: DONE with a statusMessage that says what went wrong. */
	if (json_string_value(json_object_get(op, "statusMessage")) != NULL &&
	    json_object_get(op, "error") != NULL)
		return json_string_value(json_object_get(op, "statusMessage"));
	return NULL;
}

int
gcp_wait(or_host *h, const char *operation_url, long timeout_ms)
{
	struct or_http_response resp;
	struct timespec t0, now;
	long waited_ms, delay = 250, last_log = -100000;
	const char *status, *err, *name;
	json_t *op = NULL;
	int rc = -1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (gcp_call(h, "GET", operation_url, NULL, &resp) != 0)
			return -1;
		if (resp.status < 200 || resp.status > 299) {
			step_host_api.fail(h, "cloud", "%s", gcp_error(h, &resp, NULL));
			step_host_api.http_free(&resp);
			return -1;
		}
		json_decref(op);
		op = json_loads(resp.body, 0, NULL);
		step_host_api.http_free(&resp);
		status = json_string_value(json_object_get(op, "status"));
		name = json_string_value(json_object_get(op, "name"));
		clock_gettime(CLOCK_MONOTONIC, &now);
		waited_ms = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (status != NULL && strcmp(status, "DONE") == 0) {
			err = op_error(op);
			if (err != NULL) {
				step_host_api.fail(h, "cloud", "%s", err);
				goto out;
			}
			rc = 0;
			goto out;
		}
		if (waited_ms - last_log >= 10000) {
			step_host_api.log(h, OR_LOG_INFO, "operation %s: %s (%lds)",
					  name != NULL ? name : "?", status != NULL ? status : "?",
					  waited_ms / 1000);
			last_log = waited_ms;
		}
		if (waited_ms >= timeout_ms) {
			step_host_api.fail(h, "timeout", "operation %s did not finish in %lds",
					   name != NULL ? name : operation_url, timeout_ms / 1000);
			goto out;
		}
		if (step_host_api.sleep_ms(h, delay) != 0) {
			step_host_api.fail(h, "cancelled", "cancelled while waiting for %s",
					   name != NULL ? name : "an operation");
			goto out;
		}
		delay = delay * 2 > 5000 ? 5000 : delay * 2;
	}
out:
	json_decref(op);
	return rc;
}

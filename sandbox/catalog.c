/*
 * catalog.c - products.json checks and the catalog server (catalog.h).
 */
#include "catalog.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static or_rc
bad(struct or_err *err, const char *field, const char *why)
{
	return or_fail(err, OR_E_INVALID, NULL, field, "%s %s", field, why);
}

or_rc
catalog_check(const json_t *doc, struct or_err *err)
{
	json_t *products = json_object_get(doc, "products"), *p, *price, *cats, *c, *ids;
	char f[OR_ERR_FIELD_MAX];
	size_t i, j;
	or_rc rc = OR_OK;

	if (!json_is_object(doc))
		return bad(err, "(document)", "must be a JSON object {\"products\": [...]}");
	if (!json_is_array(products) || json_array_size(products) == 0)
		return bad(err, "products", "must be a non-empty array");
	ids = json_object();
	json_array_foreach(products, i, p) {
		static const char *const strs[] = {"id", "name", "description", "picture"};
		json_int_t nanos;

		for (j = 0; j < 4 && rc == OR_OK; j++) {
			const char *s = json_string_value(json_object_get(p, strs[j]));

			snprintf(f, sizeof(f), "products[%zu].%s", i, strs[j]);
			if (s == NULL || (j < 2 && s[0] == '\0'))
				rc = bad(err, f, j < 2 ? "must be a non-empty string" : "must be a string");
		}
		if (rc != OR_OK)
			break;
		if (json_object_get(ids, json_string_value(json_object_get(p, "id"))) != NULL) {
			snprintf(f, sizeof(f), "products[%zu].id", i);
			rc = bad(err, f, "repeats an earlier product's id");
			break;
		}
		json_object_set_new(ids, json_string_value(json_object_get(p, "id")), json_true());
		price = json_object_get(p, "priceUsd");
		snprintf(f, sizeof(f), "products[%zu].priceUsd", i);
		if (!json_is_object(price)) {
			rc = bad(err, f, "must be an object {currencyCode, units, nanos}");
			break;
		}
		snprintf(f, sizeof(f), "products[%zu].priceUsd.currencyCode", i);
		if (json_string_value(json_object_get(price, "currencyCode")) == NULL ||
		    strlen(json_string_value(json_object_get(price, "currencyCode"))) != 3) {
			rc = bad(err, f, "must be a three-letter currency code");
			break;
		}
		snprintf(f, sizeof(f), "products[%zu].priceUsd.units", i);
		if (json_object_get(price, "units") != NULL &&
		    !json_is_integer(json_object_get(price, "units"))) {
			rc = bad(err, f, "must be an integer");
			break;
		}
		snprintf(f, sizeof(f), "products[%zu].priceUsd.nanos", i);
		nanos = json_integer_value(json_object_get(price, "nanos"));
		if ((json_object_get(price, "nanos") != NULL &&
		     !json_is_integer(json_object_get(price, "nanos"))) ||
		    nanos < 0 || nanos > 999999999) {
			rc = bad(err, f, "must be an integer from 0 to 999999999");
			break;
		}
		cats = json_object_get(p, "categories");
		snprintf(f, sizeof(f), "products[%zu].categories", i);
		if (!json_is_array(cats)) {
			rc = bad(err, f, "must be an array of strings");
			break;
		}
		json_array_foreach(cats, j, c)
			if (!json_is_string(c))
				rc = bad(err, f, "must be an array of strings");
		if (rc != OR_OK)
			break;
	}
	json_decref(ids);
	return rc;
}

or_rc
catalog_load(const char *path, json_t **out, struct or_err *err)
{
	json_error_t je;
	json_t *doc;
	FILE *f;
	long size;
	or_rc rc;

	*out = NULL;
	f = fopen(path, "rb");
	if (f == NULL)
		return or_fail(err, OR_E_NOTFOUND, NULL, "catalog", "cannot open %s", path);
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || size > (long)CATALOG_MAX) {
		fclose(f);
		return or_fail(err, OR_E_TOOLARGE, NULL, "catalog", "%s is larger than %u bytes",
			       path, CATALOG_MAX);
	}
	rewind(f);
	doc = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
	fclose(f);
	if (doc == NULL)
		return or_fail(err, OR_E_MALFORMED, NULL, "catalog", "%s: line %d: %s", path,
			       je.line, je.text);
	rc = catalog_check(doc, err);
	if (rc != OR_OK) {
		json_decref(doc);
		return rc;
	}
	*out = doc;
	return OR_OK;
}

/* ---- the server ----------------------------------------------------------- */

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
	   const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	const char *text = cls;
	struct MHD_Response *r;
	enum MHD_Result ret;
	int found = strcmp(url, "/products") == 0 || strcmp(url, "/products.json") == 0;
	static const char nf[] = "{\"error\":\"not found: GET /products\"}";

	(void)version;
	(void)upload;
	if (*con_cls == NULL) {
		*con_cls = conn;
		return MHD_YES;
	}
	if (*upload_size != 0) {
		*upload_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		found = 0;
	r = found ? MHD_create_response_from_buffer(strlen(text), (void *)text,
						     MHD_RESPMEM_PERSISTENT)
		  : MHD_create_response_from_buffer(strlen(nf), (void *)nf, MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	ret = MHD_queue_response(conn, found ? MHD_HTTP_OK : MHD_HTTP_NOT_FOUND, r);
	MHD_destroy_response(r);
	return ret;
}

int
catalog_main(int argc, char **argv)
{
	const char *listen = NULL, *path = NULL;
	char host[64], *text = NULL;
	unsigned port = 0;
	struct sockaddr_in sa;
	struct MHD_Daemon *d = NULL;
	struct or_err err;
	json_t *doc = NULL;
	sigset_t stop;
	int i, sig, status = 1;

	for (i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--listen") == 0)
			listen = argv[i + 1];
		else if (strcmp(argv[i], "--catalog") == 0)
			path = argv[i + 1];
		else
			break;
	}
	if (i != argc || listen == NULL || path == NULL) {
		fprintf(stderr, "usage: outrigger sandbox-catalog --listen IP:PORT --catalog FILE\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	if (sscanf(listen, "%63[^:]:%u", host, &port) != 2 || port == 0 || port > 65535 ||
	    inet_pton(AF_INET, host, &sa.sin_addr) != 1 || strncmp(host, "127.", 4) != 0) {
		fprintf(stderr, "sandbox-catalog: --listen wants 127.x.y.z:PORT, not %s\n", listen);
		return 2;
	}
	if (catalog_load(path, &doc, &err) != OR_OK) {
		fprintf(stderr, "sandbox-catalog: %s\n", err.message);
		return 1;
	}
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (text == NULL)
		return 1;
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
			     on_request, text, MHD_OPTION_SOCK_ADDR, &sa,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "sandbox-catalog: cannot listen on %s\n", listen);
		goto out;
	}
	printf("productcatalogservice (Outrigger sandbox) listening on %s: GET /products\n",
	       listen);
	fflush(stdout);
	if (sigwait(&stop, &sig) == 0)
		status = 0;
out:
	if (d != NULL)
		MHD_stop_daemon(d);
	free(text);
	return status;
}

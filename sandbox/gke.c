/*
 * gke.c - the simulated GKE API v1 (see gke.h).
 *
 * Cluster creation is an operation of a few simulated minutes; when it is
 * done the cluster_up hook starts the cluster's Kubernetes API and the
 * cluster is RUNNING with an endpoint and a CA.  Errors are GKE's:
 * "Not found: ...", "Already exists: ...", 400 for a version or image type
 * the server would refuse.
 */
#include "gke.h"

#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gce.h"
#include "log.h"

#define DUR_CREATE 210.0	/* 3.5 min (gcp-api.md section 5) */
#define DUR_DELETE 180.0

const char *const gke_versions[] = {"1.33.5-gke.1201000", "1.32.9-gke.1130000",
				    "1.31.13-gke.1023000", NULL};
static const char *const image_types[] = {"COS_CONTAINERD", "UBUNTU_CONTAINERD", NULL};

static struct gke_hooks hooks;

void
gke_set_hooks(const struct gke_hooks *h)
{
	hooks = *h;
}

static json_t *gke_error(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static json_t *
gke_error(int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:{s:i, s:s, s:s}}", "error", "code", code, "message", msg, "status",
			 code == 404 ? "NOT_FOUND" : code == 409 ? "ALREADY_EXISTS"
						 : "INVALID_ARGUMENT");
}

/* Resolve a requested version ("latest", "-", "", "1.32", "1.32.9",
 * an exact one) to one the sandbox offers; NULL if none matches. */
static const char *
resolve_version(const char *want)
{
	size_t i, n;

	if (want == NULL || want[0] == '\0' || strcmp(want, "-") == 0 ||
	    strcmp(want, "latest") == 0)
		return gke_versions[0];
	n = strlen(want);
	for (i = 0; gke_versions[i] != NULL; i++)
		if (strncmp(gke_versions[i], want, n) == 0 &&
		    (gke_versions[i][n] == '\0' || gke_versions[i][n] == '.' ||
		     gke_versions[i][n] == '-'))
			return gke_versions[i];
	return NULL;
}

static int
known(const char *const *list, const char *s)
{
	size_t i;

	for (i = 0; list[i] != NULL; i++)
		if (strcmp(list[i], s) == 0)
			return 1;
	return 0;
}

static json_t *
server_config(void)
{
	json_t *versions = json_array(), *types = json_array();
	size_t i;

	for (i = 0; gke_versions[i] != NULL; i++)
		json_array_append_new(versions, json_string(gke_versions[i]));
	for (i = 0; image_types[i] != NULL; i++)
		json_array_append_new(types, json_string(image_types[i]));
	return json_pack("{s:s, s:O, s:o, s:s, s:o, s:[{s:s, s:s, s:O}]}",
			 "defaultClusterVersion", gke_versions[0], "validMasterVersions", versions,
			 "validNodeVersions", versions, "defaultImageType", "COS_CONTAINERD",
			 "validImageTypes", types, "channels", "channel", "REGULAR",
			 "defaultVersion", gke_versions[0], "validVersions", versions);
}

static json_t *
op_new(struct cloud *c, const char *p, const char *loc, const char *type,
       const char *cluster_path, double seconds)
{
	char name[96], path[256], now[32], link[512];
	json_t *op;

	snprintf(name, sizeof(name), "operation-%lld-%08x", cloud_now_ms(),
		 cloud_random(c, 0xffffffffu));
	snprintf(path, sizeof(path), "projects/%s/locations/%s/operations/%s", p, loc, name);
	log_now_iso(now, sizeof(now));
	snprintf(link, sizeof(link), "https://container.googleapis.com/v1/%s", cluster_path);
	op = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "name", name, "zone", loc,
		       "location", loc, "operationType", type, "status", "RUNNING",
		       "startTime", now, "targetLink", link);
	snprintf(link, sizeof(link), "https://container.googleapis.com/v1/%s", path);
	json_object_set_new(op, "selfLink", json_string(link));
	json_object_set_new(op, "_done_at", json_integer(cloud_after_ms(c, seconds)));
	json_object_set_new(op, "_cluster", json_string(cluster_path));
	json_object_set_new(op, "_path", json_string(path));
	cloud_put(c, "gke_operation", path, op);
	return op;
}


static void
op_finish(struct cloud *c, json_t *op)
{
	const char *type = json_string_value(json_object_get(op, "operationType"));
	const char *cpath = json_string_value(json_object_get(op, "_cluster"));
	json_t *cl = cloud_get(c, "cluster", cpath);
	char msg[512] = "", now[32];

	log_now_iso(now, sizeof(now));
	json_object_set_new(op, "status", json_string("DONE"));
	json_object_set_new(op, "endTime", json_string(now));
	if (cl == NULL)
		return;
	if (strcmp(type, "CREATE_CLUSTER") == 0) {
		if (hooks.cluster_up != NULL && hooks.cluster_up(hooks.ctx, cl, msg, sizeof(msg)) != 0) {
			json_object_set_new(cl, "status", json_string("ERROR"));
			json_object_set_new(cl, "statusMessage", json_string(msg));
			json_object_set_new(op, "error", json_pack("{s:i, s:s}", "code", 13,
								   "message", msg));
			json_object_set_new(op, "statusMessage", json_string(msg));
		} else {
			json_object_set_new(cl, "status", json_string("RUNNING"));
		}
		cloud_put(c, "cluster", cpath, cl);
	} else if (strcmp(type, "DELETE_CLUSTER") == 0) {
		if (hooks.cluster_down != NULL)
			hooks.cluster_down(hooks.ctx, cl);
		cloud_del(c, "cluster", cpath);
	}
	json_decref(cl);
}

static void
advance_locked(struct cloud *c)
{
	json_t *ops = cloud_list(c, "gke_operation", "projects/"), *op;
	long long now = cloud_now_ms();
	size_t i;

	json_array_foreach(ops, i, op) {
		if (strcmp(json_string_value(json_object_get(op, "status")), "DONE") == 0 ||
		    now < json_integer_value(json_object_get(op, "_done_at")))
			continue;
		op_finish(c, op);
		cloud_put(c, "gke_operation", json_string_value(json_object_get(op, "_path")), op);
	}
	json_decref(ops);
}

void
gke_advance(struct cloud *c)
{
	cloud_lock(c);
	advance_locked(c);
	cloud_unlock(c);
}

static int
cluster_name_ok(const char *s)
{
	regex_t re;
	int ok;

	if (s == NULL || strlen(s) > 40)
		return 0;
	if (regcomp(&re, "^[a-z]([-a-z0-9]*[a-z0-9])?$", REG_EXTENDED | REG_NOSUB) != 0)
		return 0;
	ok = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

static void
create(struct cloud *c, const char *p, const char *loc, json_t *body, json_t **out, int *status)
{
	json_t *req = json_object_get(body, "cluster"), *cl, *pools, *pool, *op;
	const char *name = json_string_value(json_object_get(req, "name"));
	const char *version, *image;
	char path[256], now[32], link[512];
	long long n;
	size_t i;

	if (!cluster_name_ok(name)) {
		*status = 400;
		*out = gke_error(400, "Invalid value for field \"cluster.name\": \"%s\".",
				 name != NULL ? name : "");
		return;
	}
	snprintf(path, sizeof(path), "projects/%s/zones/%s/clusters/%s", p, loc, name);
	cl = cloud_get(c, "cluster", path);
	if (cl != NULL) {
		json_decref(cl);
		*status = 409;
		*out = gke_error(409, "Already exists: %s.", path);
		return;
	}
	version = resolve_version(json_string_value(json_object_get(req, "initialClusterVersion")));
	if (version == NULL) {
		*status = 400;
		*out = gke_error(400, "Master version \"%s\" is unsupported.",
				 json_string_value(json_object_get(req, "initialClusterVersion")));
		return;
	}
	pools = json_object_get(req, "nodePools");
	json_array_foreach(pools, i, pool) {
		image = json_string_value(json_object_get(json_object_get(pool, "config"), "imageType"));
		if (image != NULL && !known(image_types, image)) {
			*status = 400;
			*out = gke_error(400, "Setting image type %s is not supported in version %s: "
					      "use COS_CONTAINERD or UBUNTU_CONTAINERD.",
					 image, version);
			return;
		}
	}
	n = cloud_next(c, "cluster");
	log_now_iso(now, sizeof(now));
	cl = json_deep_copy(req);
	json_object_set_new(cl, "zone", json_string(loc));
	json_object_set_new(cl, "location", json_string(loc));
	json_object_set_new(cl, "status", json_string("PROVISIONING"));
	json_object_set_new(cl, "createTime", json_string(now));
	json_object_set_new(cl, "currentMasterVersion", json_string(version));
	json_object_set_new(cl, "currentNodeVersion", json_string(version));
	json_object_set_new(cl, "initialClusterVersion", json_string(version));
	/* Distinct ranges per cluster, as GKE allocates them. */
	json_object_set_new(cl, "clusterIpv4Cidr", json_sprintf("10.%lld.0.0/14", (8 + 4 * n) % 252));
	json_object_set_new(cl, "servicesIpv4Cidr", json_sprintf("10.%lld.0.0/20", 200 + n % 50));
	if (json_object_get(cl, "network") == NULL)
		json_object_set_new(cl, "network", json_string("default"));
	json_object_set_new(cl, "currentNodeCount",
			    json_integer(json_integer_value(json_object_get(
				    json_array_get(pools, 0), "initialNodeCount"))));
	snprintf(link, sizeof(link), "https://container.googleapis.com/v1/%s", path);
	json_object_set_new(cl, "selfLink", json_string(link));
	json_object_set_new(cl, "_project", json_string(p));
	json_object_set_new(cl, "_index", json_integer(n));
	cloud_put(c, "cluster", path, cl);
	json_decref(cl);
	op = op_new(c, p, loc, "CREATE_CLUSTER", path, DUR_CREATE);
	*out = cloud_public_copy(op);
	json_decref(op);
	*status = 200;
}

void
gke_handle(struct cloud *c, const char *method, const char *path, json_t *body,
	   json_t **out, int *status)
{
	char buf[512], *s[8], *save = NULL, *tok, cpath[256], prefix[256];
	json_t *doc, *list, *x;
	int n = 0, get = strcmp(method, "GET") == 0;
	size_t i;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, "/", &save); tok != NULL && n < 8; tok = strtok_r(NULL, "/", &save))
		s[n++] = tok;
	*status = 404;
	*out = NULL;
	if (n < 4 || strcmp(s[0], "projects") != 0 ||
	    (strcmp(s[2], "locations") != 0 && strcmp(s[2], "zones") != 0)) {
		*out = gke_error(404, "Not found: %s", path);
		return;
	}
	cloud_lock(c);
	advance_locked(c);
	if (n == 5 && strcmp(s[4], "serverConfig") == 0 && get) {
		*out = server_config();
		*status = 200;
	} else if (n == 5 && strcmp(s[4], "clusters") == 0 && strcmp(method, "POST") == 0) {
		create(c, s[1], s[3], body, out, status);
	} else if (n == 5 && strcmp(s[4], "clusters") == 0 && get) {
		list = cloud_list(c, "cluster", "projects/");
		snprintf(prefix, sizeof(prefix), "projects/%s/zones/", s[1]);
		x = json_array();
		json_array_foreach(list, i, doc) {
			if (strcmp(json_string_value(json_object_get(doc, "_project")), s[1]) != 0)
				continue;
			if (strcmp(s[3], "-") != 0 &&
			    strcmp(json_string_value(json_object_get(doc, "location")), s[3]) != 0)
				continue;
			json_array_append_new(x, cloud_public_copy(doc));
		}
		json_decref(list);
		*out = json_pack("{s:o}", "clusters", x);
		*status = 200;
	} else if (n == 6 && strcmp(s[4], "clusters") == 0) {
		snprintf(cpath, sizeof(cpath), "projects/%s/zones/%s/clusters/%s", s[1], s[3], s[5]);
		doc = cloud_get(c, "cluster", cpath);
		if (doc == NULL) {
			*out = gke_error(404, "Not found: %s.", cpath);
		} else if (get) {
			*out = cloud_public_copy(doc);
			*status = 200;
		} else if (strcmp(method, "DELETE") == 0) {
			json_t *op = op_new(c, s[1], s[3], "DELETE_CLUSTER", cpath, DUR_DELETE);

			json_object_set_new(doc, "status", json_string("STOPPING"));
			cloud_put(c, "cluster", cpath, doc);
			*out = cloud_public_copy(op);
			json_decref(op);
			*status = 200;
		} else {
			*status = 405;
			*out = gke_error(405, "Method %s not allowed", method);
		}
		json_decref(doc);
	} else if (n == 6 && strcmp(s[4], "operations") == 0 && get) {
		snprintf(cpath, sizeof(cpath), "projects/%s/locations/%s/operations/%s", s[1],
			 s[3], s[5]);
		doc = cloud_get(c, "gke_operation", cpath);
		if (doc == NULL) {
			*out = gke_error(404, "Not found: %s.", cpath);
		} else {
			*out = cloud_public_copy(doc);
			*status = 200;
		}
		json_decref(doc);
	} else {
		*out = gke_error(404, "Not found: %s", path);
	}
	cloud_unlock(c);
}

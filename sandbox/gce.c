/*
 * gce.c - the simulated Compute Engine v1 (see gce.h).
 *
 * Every change is an operation with a simulated duration (real durations
 * from the notes x --time-scale); its effect happens when it is DONE, which
 * gce_advance decides from the clock.  Internal fields of stored documents
 * start with '_' and never leave this file.
 */
#include "gce.h"

#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* Real durations in seconds (gcp-api.md section 5). */
#define DUR_INSERT 15.0
#define DUR_DELETE 20.0
#define DUR_FIREWALL 10.0
#define DUR_METADATA 2.0

static struct gce_hooks hooks;

static const char *const image_families[][2] = {
	{"debian-cloud", "debian-12"},
	{"debian-cloud", "debian-11"},
	{"ubuntu-os-cloud", "ubuntu-2004-lts"},
	{"ubuntu-os-cloud", "ubuntu-2204-lts"},
	{"ubuntu-os-cloud", "ubuntu-2404-lts-amd64"},
	{"cos-cloud", "cos-stable"},
};

void
gce_set_hooks(const struct gce_hooks *h)
{
	hooks = *h;
}

json_t *
gce_error(int code, const char *reason, const char *fmt, ...)
{
	static const struct {
		int code;
		const char *status;
	} names[] = {{400, "INVALID_ARGUMENT"}, {401, "UNAUTHENTICATED"},
		     {403, "PERMISSION_DENIED"}, {404, "NOT_FOUND"},
		     {409, "ALREADY_EXISTS"}, {412, "FAILED_PRECONDITION"},
		     {429, "RESOURCE_EXHAUSTED"}, {500, "INTERNAL"},
		     {503, "UNAVAILABLE"}};
	const char *status = "UNKNOWN";
	char msg[1024];
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].code == code)
			status = names[i].status;
	return json_pack("{s:{s:i, s:s, s:[{s:s, s:s, s:s}], s:s}}", "error", "code", code,
			 "message", msg, "errors", "message", msg, "domain", "global",
			 "reason", reason, "status", status);
}

static int
matches(const char *s, const char *pattern)
{
	regex_t re;
	int ok;

	if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
		return 0;
	ok = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

static int
name_ok(const char *s)
{
	return s != NULL && strlen(s) <= 63 && matches(s, "^[a-z]([-a-z0-9]*[a-z0-9])?$");
}

static void
iso_now(char *out, size_t size)
{
	log_now_iso(out, size);
}


static json_t *
link_to(struct cloud *c, const char *path)
{
	char url[1024];

	snprintf(url, sizeof(url), "%s%s", cloud_compute_base(c), path);
	return json_string(url);
}

/* ---- projects, zones, images -------------------------------------------- */

/* The project document, created on first use. */
static json_t *
project(struct cloud *c, const char *p)
{
	char path[256], sa[256];
	json_t *doc;
	long long num;

	snprintf(path, sizeof(path), "projects/%s", p);
	doc = cloud_get(c, "project", path);
	if (doc != NULL)
		return doc;
	num = 100000000000LL + cloud_next(c, "project");
	snprintf(sa, sizeof(sa), "%lld-compute@developer.gserviceaccount.com", num);
	doc = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kind", "compute#project", "name", p,
			"id", "", "defaultServiceAccount", sa, "xpnProjectStatus",
			"UNSPECIFIED_XPN_PROJECT_STATUS");
	json_object_set_new(doc, "id", json_sprintf("%lld", num));
	json_object_set_new(doc, "selfLink", link_to(c, path));
	cloud_put(c, "project", path, doc);
	return doc;
}

static int
project_ok(const char *p)
{
	return p != NULL && strlen(p) >= 6 && strlen(p) <= 30 &&
	       matches(p, "^[a-z][-a-z0-9]*[a-z0-9]$");
}

static int
zone_ok(const char *z)
{
	return z != NULL && matches(z, "^[a-z]+-[a-z]+[0-9]+-[a-z]$");
}

static json_t *
zone_doc(struct cloud *c, const char *p, const char *z)
{
	char path[256], region[64];
	json_t *doc;

	snprintf(region, sizeof(region), "%.*s", (int)strlen(z) - 2, z);
	snprintf(path, sizeof(path), "projects/%s/zones/%s", p, z);
	doc = json_pack("{s:s, s:s, s:s, s:s}", "kind", "compute#zone", "name", z,
			"status", "UP", "description", z);
	json_object_set_new(doc, "selfLink", link_to(c, path));
	snprintf(path, sizeof(path), "projects/%s/regions/%s", p, region);
	json_object_set_new(doc, "region", link_to(c, path));
	return doc;
}

static json_t *
image_doc(struct cloud *c, const char *ip, const char *family)
{
	char path[256], name[128];
	json_t *doc;
	size_t i;

	for (i = 0; i < sizeof(image_families) / sizeof(image_families[0]); i++)
		if (strcmp(image_families[i][0], ip) == 0 &&
		    strcmp(image_families[i][1], family) == 0)
			break;
	if (i == sizeof(image_families) / sizeof(image_families[0]))
		return NULL;
	snprintf(name, sizeof(name), "%s-v20261101", family);
	snprintf(path, sizeof(path), "projects/%s/global/images/%s", ip, name);
	doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kind", "compute#image", "name", name,
			"family", family, "status", "READY", "diskSizeGb", "10",
			"architecture", "X86_64");
	json_object_set_new(doc, "selfLink", link_to(c, path));
	return doc;
}

/* ---- operations ---------------------------------------------------------- */

/* Start an operation on target (path), done after seconds; effect says
 * what happens then.  Returns the operation's public form. */
static json_t *
op_start(struct cloud *c, const char *project_name, const char *zone, const char *type,
	 const char *target, double seconds, json_t *effect)
{
	char name[128], path[256], now[32], tpath[512];
	json_t *op;
	long long n = cloud_next(c, "operation");

	snprintf(name, sizeof(name), "operation-%lld-%08x-%08x", cloud_now_ms(),
		 cloud_random(c, 0xffffffffu), (unsigned)n);
	if (zone != NULL)
		snprintf(path, sizeof(path), "projects/%s/zones/%s/operations/%s", project_name,
			 zone, name);
	else
		snprintf(path, sizeof(path), "projects/%s/global/operations/%s", project_name,
			 name);
	iso_now(now, sizeof(now));
	op = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s}", "kind", "compute#operation",
		       "name", name, "operationType", type, "status", "RUNNING", "progress", 0,
		       "insertTime", now, "startTime", now, "user",
		       "sandbox@outrigger.invalid");
	json_object_set_new(op, "id", json_sprintf("%lld", 7000000000000LL + n));
	json_object_set_new(op, "selfLink", link_to(c, path));
	snprintf(tpath, sizeof(tpath), "%s", target);
	json_object_set_new(op, "targetLink", link_to(c, tpath));
	if (zone != NULL) {
		snprintf(tpath, sizeof(tpath), "projects/%s/zones/%s", project_name, zone);
		json_object_set_new(op, "zone", link_to(c, tpath));
	}
	json_object_set_new(op, "_done_at", json_integer(cloud_after_ms(c, seconds)));
	json_object_set_new(op, "_path", json_string(path));
	json_object_set_new(op, "_effect", effect);
	cloud_put(c, "operation", path, op);
	return op;
}

/* Apply the effect of a finished operation. */
static void
op_effect(struct cloud *c, json_t *op)
{
	json_t *e = json_object_get(op, "_effect"), *doc;
	const char *what = json_string_value(json_object_get(e, "do"));
	const char *path = json_string_value(json_object_get(e, "path"));

	if (what == NULL || path == NULL)
		return;
	if (strcmp(what, "instance_running") == 0) {
		doc = cloud_get(c, "instance", path);
		if (doc == NULL)
			return;
		json_object_set_new(doc, "status", json_string("RUNNING"));
		cloud_put(c, "instance", path, doc);
		if (hooks.instance_running != NULL)
			hooks.instance_running(hooks.ctx, doc);
		json_decref(doc);
	} else if (strcmp(what, "instance_delete") == 0) {
		doc = cloud_get(c, "instance", path);
		if (doc == NULL)
			return;
		cloud_del(c, "instance", path);
		if (hooks.instance_deleted != NULL)
			hooks.instance_deleted(hooks.ctx, doc);
		json_decref(doc);
	} else if (strcmp(what, "firewall_create") == 0) {
		doc = json_object_get(e, "doc");
		json_object_set_new(doc, "creationTimestamp",
				    json_string(json_string_value(json_object_get(op, "endTime"))));
		cloud_put(c, "firewall", path, doc);
	} else if (strcmp(what, "firewall_delete") == 0) {
		cloud_del(c, "firewall", path);
	} else if (strcmp(what, "metadata") == 0) {
		doc = cloud_get(c, "instance", path);
		if (doc == NULL)
			return;
		json_object_set(doc, "metadata", json_object_get(e, "metadata"));
		cloud_put(c, "instance", path, doc);
		if (hooks.metadata_changed != NULL && strcmp(json_string_value(json_object_get(
							     doc, "status")), "RUNNING") == 0)
			hooks.metadata_changed(hooks.ctx, doc);
		json_decref(doc);
	}
}

static void
advance_locked(struct cloud *c)
{
	json_t *ops = cloud_list(c, "operation", "projects/"), *op, *inst;
	long long now = cloud_now_ms(), done_at;
	const char *path;
	char ts[32];
	size_t i;

	json_array_foreach(ops, i, op) {
		if (strcmp(json_string_value(json_object_get(op, "status")), "DONE") == 0)
			continue;
		done_at = json_integer_value(json_object_get(op, "_done_at"));
		path = json_string_value(json_object_get(op, "_path"));
		if (now < done_at) {
			/* Halfway through an insert the VM is STAGING. */
			json_t *e = json_object_get(op, "_effect");
			const char *ipath = json_string_value(json_object_get(e, "path"));

			if (ipath != NULL &&
			    strcmp(json_string_value(json_object_get(e, "do")) ? json_string_value(json_object_get(e, "do")) : "", "instance_running") == 0 &&
			    (inst = cloud_get(c, "instance", ipath)) != NULL) {
				long long start = json_integer_value(json_object_get(op, "_start"));

				if (start == 0 || now - start > (done_at - start) / 2) {
					json_object_set_new(inst, "status", json_string("STAGING"));
					cloud_put(c, "instance", ipath, inst);
				}
				json_decref(inst);
			}
			continue;
		}
		iso_now(ts, sizeof(ts));
		json_object_set_new(op, "status", json_string("DONE"));
		json_object_set_new(op, "progress", json_integer(100));
		json_object_set_new(op, "endTime", json_string(ts));
		op_effect(c, op);
		cloud_put(c, "operation", path, op);
	}
	json_decref(ops);
}

void
gce_advance(struct cloud *c)
{
	cloud_lock(c);
	advance_locked(c);
	cloud_unlock(c);
}

/* ---- instances ------------------------------------------------------------ */

static void
metadata_fingerprint(json_t *md)
{
	char fp[32];

	/* Any change of content changes it: a counter-free hash is enough. */
	char *text = json_dumps(json_object_get(md, "items"), JSON_COMPACT | JSON_SORT_KEYS);
	unsigned long h = 5381;
	const char *p;

	for (p = text != NULL ? text : ""; *p != '\0'; p++)
		h = h * 33 + (unsigned char)*p;
	free(text);
	snprintf(fp, sizeof(fp), "%012lx", h & 0xffffffffffffUL);
	json_object_set_new(md, "fingerprint", json_string(fp));
	json_object_set_new(md, "kind", json_string("compute#metadata"));
}

/* The boot disk's image must exist: "projects/P/global/images/family/F",
 * "projects/P/zones/Z/imageFamilyViews/F" (what gcloud sends), or an image
 * name "projects/P/global/images/NAME-v20261101". */
static int
source_image_ok(struct cloud *c, json_t *body, json_t **out, int *status)
{
	json_t *disk = json_array_get(json_object_get(body, "disks"), 0), *img;
	const char *src = json_string_value(json_object_get(json_object_get(disk, "initializeParams"),
						     "sourceImage"));
	char proj[128], fam[128];
	const char *p;

	if (src == NULL)
		return 1; /* no boot disk image given: the default is used */
	p = strstr(src, "projects/");
	if (p == NULL ||
	    (sscanf(p, "projects/%127[^/]/global/images/family/%127[^/?]", proj, fam) != 2 &&
	     sscanf(p, "projects/%127[^/]/zones/%*[^/]/imageFamilyViews/%127[^/?]", proj, fam) != 2)) {
		*status = 400;
		*out = gce_error(400, "invalid", "Invalid value for field "
					       "'resource.disks[0].initializeParams.sourceImage': '%.300s'.",
				 src);
		return 0;
	}
	img = image_doc(c, proj, fam);
	if (img == NULL) {
		*status = 404;
		*out = gce_error(404, "notFound",
				 "The resource 'projects/%s/global/images/family/%s' was not found",
				 proj, fam);
		return 0;
	}
	json_decref(img);
	return 1;
}

static void
instance_insert(struct cloud *c, const char *p, const char *z, json_t *body, json_t **out,
		int *status)
{
	const char *name = json_string_value(json_object_get(body, "name"));
	char path[512], tpath[512], ip[32], now[32];
	json_t *doc, *ni, *md, *tags;
	long long n;

	if (!name_ok(name)) {
		*status = 400;
		*out = gce_error(400, "invalid", "Invalid value for field 'resource.name': '%s'. "
			"Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'",
			name != NULL ? name : "");
		return;
	}
	snprintf(path, sizeof(path), "projects/%s/zones/%s/instances/%s", p, z, name);
	doc = cloud_get(c, "instance", path);
	if (doc != NULL) {
		json_decref(doc);
		*status = 409;
		*out = gce_error(409, "alreadyExists", "The resource '%s' already exists", path);
		return;
	}
	if (!json_is_string(json_object_get(body, "machineType"))) {
		*status = 400;
		*out = gce_error(400, "invalid", "Invalid value for field 'resource.machineType': ''. "
			"A machine type is required.");
		return;
	}
	if (!source_image_ok(c, body, out, status))
		return;
	n = cloud_next(c, "instance");
	/* Each VM gets its own loopback address: 127.10.x.y. */
	snprintf(ip, sizeof(ip), "127.10.%lld.%lld", 1 + (n / 250) % 250, 1 + n % 250);
	doc = json_deep_copy(body);
	iso_now(now, sizeof(now));
	json_object_set_new(doc, "kind", json_string("compute#instance"));
	json_object_set_new(doc, "id", json_sprintf("%lld", 5000000000000LL + n));
	json_object_set_new(doc, "status", json_string("PROVISIONING"));
	json_object_set_new(doc, "creationTimestamp", json_string(now));
	json_object_set_new(doc, "selfLink", link_to(c, path));
	snprintf(tpath, sizeof(tpath), "projects/%s/zones/%s", p, z);
	json_object_set_new(doc, "zone", link_to(c, tpath));
	if (!json_is_array(json_object_get(doc, "networkInterfaces")) ||
	    json_array_size(json_object_get(doc, "networkInterfaces")) == 0)
		json_object_set_new(doc, "networkInterfaces", json_pack("[{}]"));
	ni = json_array_get(json_object_get(doc, "networkInterfaces"), 0);
	json_object_set_new(ni, "networkIP", json_string(ip));
	json_object_set_new(ni, "name", json_string("nic0"));
	if (json_object_get(ni, "network") == NULL) {
		snprintf(tpath, sizeof(tpath), "projects/%s/global/networks/default", p);
		json_object_set_new(ni, "network", link_to(c, tpath));
	}
	if (json_is_array(json_object_get(ni, "accessConfigs")) &&
	    json_array_size(json_object_get(ni, "accessConfigs")) > 0)
		json_object_set_new(json_array_get(json_object_get(ni, "accessConfigs"), 0),
				    "natIP", json_string(ip));
	md = json_object_get(doc, "metadata");
	if (!json_is_object(md)) {
		md = json_object();
		json_object_set_new(doc, "metadata", md);
	}
	if (!json_is_array(json_object_get(md, "items")))
		json_object_set_new(md, "items", json_array());
	metadata_fingerprint(md);
	tags = json_object_get(doc, "tags");
	if (json_is_object(tags))
		json_object_set_new(tags, "fingerprint", json_string("42WmSpB8rSM="));
	json_object_set_new(doc, "_ip", json_string(ip));
	cloud_put(c, "instance", path, doc);
	json_decref(doc);
	*status = 200;
	doc = op_start(c, p, z, "insert", path, DUR_INSERT,
		       json_pack("{s:s, s:s}", "do", "instance_running", "path", path));
	json_object_set_new(doc, "_start", json_integer(cloud_now_ms()));
	cloud_put(c, "operation", json_string_value(json_object_get(doc, "_path")), doc);
	*out = cloud_public_copy(doc);
	json_decref(doc);
}

static json_t *
not_found(const char *path, int *status)
{
	*status = 404;
	return gce_error(404, "notFound", "The resource '%s' was not found", path);
}

static void
instances(struct cloud *c, const char *method, const char *p, const char *z,
	  const char *name, const char *verb, json_t *body, json_t **out, int *status)
{
	char path[512], prefix[512];
	json_t *doc, *items, *x, *op;
	size_t i;

	if (name == NULL) {
		if (strcmp(method, "POST") == 0) {
			instance_insert(c, p, z, body, out, status);
			return;
		}
		snprintf(prefix, sizeof(prefix), "projects/%s/zones/%s/instances/", p, z);
		items = cloud_list(c, "instance", prefix);
		json_array_foreach(items, i, x)
			json_array_set_new(items, i, cloud_public_copy(x));
		*out = json_pack("{s:s, s:o}", "kind", "compute#instanceList", "items", items);
		*status = 200;
		return;
	}
	snprintf(path, sizeof(path), "projects/%s/zones/%s/instances/%s", p, z, name);
	doc = cloud_get(c, "instance", path);
	if (doc == NULL) {
		*out = not_found(path, status);
		return;
	}
	if (verb == NULL && strcmp(method, "GET") == 0) {
		*out = cloud_public_copy(doc);
		*status = 200;
	} else if (verb == NULL && strcmp(method, "DELETE") == 0) {
		op = op_start(c, p, z, "delete", path, DUR_DELETE,
			      json_pack("{s:s, s:s}", "do", "instance_delete", "path", path));
		json_object_set_new(doc, "status", json_string("STOPPING"));
		cloud_put(c, "instance", path, doc);
		*out = cloud_public_copy(op);
		json_decref(op);
		*status = 200;
	} else if (verb != NULL && strcmp(verb, "setMetadata") == 0 &&
		   strcmp(method, "POST") == 0) {
		json_t *md = json_object_get(doc, "metadata");
		const char *fp = json_string_value(json_object_get(body, "fingerprint"));

		if (fp == NULL || strcmp(fp, json_string_value(json_object_get(md, "fingerprint"))) != 0) {
			*status = 412;
			*out = gce_error(412, "conditionNotMet",
					 "Supplied fingerprint does not match current metadata fingerprint.");
		} else {
			json_t *next = json_pack("{s:O}", "items",
						 json_is_array(json_object_get(body, "items"))
							 ? json_object_get(body, "items")
							 : json_array());

			metadata_fingerprint(next);
			op = op_start(c, p, z, "setMetadata", path, DUR_METADATA,
				      json_pack("{s:s, s:s, s:o}", "do", "metadata", "path", path,
						"metadata", next));
			*out = cloud_public_copy(op);
			json_decref(op);
			*status = 200;
		}
	} else {
		*status = 405;
		*out = gce_error(405, "badRequest", "Method %s is not allowed here", method);
	}
	json_decref(doc);
}

/* ---- firewalls ------------------------------------------------------------- */

static void
firewalls(struct cloud *c, const char *method, const char *p, const char *name,
	  json_t *body, json_t **out, int *status)
{
	char path[512], prefix[512];
	json_t *doc, *items, *x, *op;
	const char *n;
	size_t i;

	if (name == NULL && strcmp(method, "POST") == 0) {
		n = json_string_value(json_object_get(body, "name"));
		if (!name_ok(n)) {
			*status = 400;
			*out = gce_error(400, "invalid", "Invalid value for field 'resource.name': '%s'. "
				"Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'",
				n != NULL ? n : "");
			return;
		}
		snprintf(path, sizeof(path), "projects/%s/global/firewalls/%s", p, n);
		doc = cloud_get(c, "firewall", path);
		if (doc != NULL) {
			json_decref(doc);
			*status = 409;
			*out = gce_error(409, "alreadyExists", "The resource '%s' already exists", path);
			return;
		}
		doc = json_deep_copy(body);
		json_object_set_new(doc, "kind", json_string("compute#firewall"));
		json_object_set_new(doc, "id", json_sprintf("%lld", 3000000000000LL +
								   cloud_next(c, "firewall")));
		json_object_set_new(doc, "selfLink", link_to(c, path));
		if (json_object_get(doc, "direction") == NULL)
			json_object_set_new(doc, "direction", json_string("INGRESS"));
		if (json_object_get(doc, "priority") == NULL)
			json_object_set_new(doc, "priority", json_integer(1000));
		if (json_object_get(doc, "disabled") == NULL)
			json_object_set_new(doc, "disabled", json_false());
		if (json_object_get(doc, "network") == NULL) {
			char net[256];

			snprintf(net, sizeof(net), "projects/%s/global/networks/default", p);
			json_object_set_new(doc, "network", link_to(c, net));
		}
		op = op_start(c, p, NULL, "insert", path, DUR_FIREWALL,
			      json_pack("{s:s, s:s, s:o}", "do", "firewall_create", "path", path,
					"doc", doc));
		*out = cloud_public_copy(op);
		json_decref(op);
		*status = 200;
		return;
	}
	if (name == NULL) {
		snprintf(prefix, sizeof(prefix), "projects/%s/global/firewalls/", p);
		items = cloud_list(c, "firewall", prefix);
		json_array_foreach(items, i, x)
			json_array_set_new(items, i, cloud_public_copy(x));
		*out = json_pack("{s:s, s:o}", "kind", "compute#firewallList", "items", items);
		*status = 200;
		return;
	}
	snprintf(path, sizeof(path), "projects/%s/global/firewalls/%s", p, name);
	doc = cloud_get(c, "firewall", path);
	if (doc == NULL) {
		*out = not_found(path, status);
		return;
	}
	if (strcmp(method, "GET") == 0) {
		*out = cloud_public_copy(doc);
		*status = 200;
	} else if (strcmp(method, "DELETE") == 0) {
		op = op_start(c, p, NULL, "delete", path, DUR_FIREWALL,
			      json_pack("{s:s, s:s}", "do", "firewall_delete", "path", path));
		*out = cloud_public_copy(op);
		json_decref(op);
		*status = 200;
	} else {
		*status = 405;
		*out = gce_error(405, "badRequest", "Method %s is not allowed here", method);
	}
	json_decref(doc);
}

/* ---- operations (get, wait) --------------------------------------------------- */

static void
operation(struct cloud *c, const char *p, const char *z, const char *name, int wait,
	  json_t **out, int *status)
{
	char path[512];
	json_t *op;
	int tries;

	if (z != NULL)
		snprintf(path, sizeof(path), "projects/%s/zones/%s/operations/%s", p, z, name);
	else
		snprintf(path, sizeof(path), "projects/%s/global/operations/%s", p, name);
	/* wait blocks a little (up to ~1 s) so pollers need fewer rounds;
	 * it may return before DONE, as Google's does. */
	for (tries = 0;; tries++) {
		advance_locked(c);
		op = cloud_get(c, "operation", path);
		if (op == NULL) {
			*out = not_found(path, status);
			return;
		}
		if (!wait || tries >= 20 ||
		    strcmp(json_string_value(json_object_get(op, "status")), "DONE") == 0)
			break;
		json_decref(op);
		cloud_unlock(c);
		nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
		cloud_lock(c);
	}
	*out = cloud_public_copy(op);
	json_decref(op);
	*status = 200;
}

/* ---- routing ------------------------------------------------------------------ */

/* Split path into at most max segments (modifies a copy in buf). */
static int
split(const char *path, char *buf, size_t size, char **seg, int max)
{
	int n = 0;
	char *p, *save = NULL;

	snprintf(buf, size, "%s", path);
	for (p = strtok_r(buf, "/", &save); p != NULL && n < max; p = strtok_r(NULL, "/", &save))
		seg[n++] = p;
	return p == NULL ? n : -1;
}

void
gce_handle(struct cloud *c, const char *method, const char *path, json_t *body,
	   json_t **out, int *status)
{
	char buf[1024], *s[10];
	json_t *doc;
	int n = split(path, buf, sizeof(buf), s, 10);
	int get = strcmp(method, "GET") == 0;

	*out = NULL;
	*status = 404;
	if (n < 2 || strcmp(s[0], "projects") != 0) {
		*out = gce_error(404, "notFound", "The requested URL /compute/v1/%.200s was not found",
				 path);
		return;
	}
	if (!project_ok(s[1])) {
		*status = 400;
		*out = gce_error(400, "invalid", "Invalid value for project: %.64s", s[1]);
		return;
	}
	cloud_lock(c);
	advance_locked(c);
	doc = project(c, s[1]);
	if (n == 2 && get) {
		*out = cloud_public_copy(doc);
		*status = 200;
	} else if (n >= 4 && strcmp(s[2], "zones") == 0 && !zone_ok(s[3]) &&
		   strcmp(s[3], "-") != 0) {
		*out = gce_error(400, "invalid", "Invalid value for field 'zone': '%.64s'. Unknown zone.",
				 s[3]);
		*status = 400;
	} else if (n == 4 && strcmp(s[2], "zones") == 0 && get) {
		*out = zone_doc(c, s[1], s[3]);
		*status = 200;
	} else if (n >= 5 && strcmp(s[2], "zones") == 0 && strcmp(s[4], "instances") == 0 &&
		   n <= 7) {
		instances(c, method, s[1], s[3], n >= 6 ? s[5] : NULL, n == 7 ? s[6] : NULL, body,
			  out, status);
	} else if ((n == 6 || n == 7) && strcmp(s[2], "zones") == 0 &&
		   strcmp(s[4], "operations") == 0) {
		operation(c, s[1], s[3], s[5], n == 7 && strcmp(s[6], "wait") == 0, out, status);
	} else if ((n == 5 || n == 6) && strcmp(s[2], "global") == 0 &&
		   strcmp(s[3], "operations") == 0) {
		operation(c, s[1], NULL, s[4], n == 6 && strcmp(s[5], "wait") == 0, out, status);
	} else if ((n == 4 || n == 5) && strcmp(s[2], "global") == 0 &&
		   strcmp(s[3], "firewalls") == 0) {
		firewalls(c, method, s[1], n == 5 ? s[4] : NULL, body, out, status);
	} else if (n == 6 && get && strcmp(s[2], "global") == 0 && strcmp(s[3], "images") == 0 &&
		   strcmp(s[4], "family") == 0) {
		*out = image_doc(c, s[1], s[5]);
		*status = *out != NULL ? 200 : 404;
		if (*out == NULL)
			*out = gce_error(404, "notFound", "The resource 'projects/%s/global/images/family/%s' was not found",
					 s[1], s[5]);
	} else if (n == 6 && get && strcmp(s[2], "zones") == 0 &&
		   strcmp(s[4], "imageFamilyViews") == 0) {
		json_t *img = image_doc(c, s[1], s[5]);

		*status = img != NULL ? 200 : 404;
		*out = img != NULL ? json_pack("{s:s, s:o}", "kind", "compute#imageFamilyView",
					      "image", img)
				   : gce_error(404, "notFound", "The resource 'projects/%s/zones/%s/imageFamilyViews/%s' was not found",
					       s[1], s[3], s[5]);
	} else if (n == 4 && get && strcmp(s[2], "aggregated") == 0 &&
		   strcmp(s[3], "instances") == 0) {
		json_t *all = cloud_list(c, "instance", "projects/"), *x, *items = json_object();
		size_t i;
		char key[128], prefix[256];

		snprintf(prefix, sizeof(prefix), "projects/%s/zones/", s[1]);
		json_array_foreach(all, i, x) {
			const char *zone = strrchr(json_string_value(json_object_get(x, "zone")), '/');
			const char *self = json_string_value(json_object_get(x, "selfLink"));

			if (zone == NULL || self == NULL || strstr(self, prefix) == NULL)
				continue;
			snprintf(key, sizeof(key), "zones/%s", zone + 1);
			if (json_object_get(items, key) == NULL)
				json_object_set_new(items, key, json_pack("{s:[]}", "instances"));
			json_array_append_new(json_object_get(json_object_get(items, key), "instances"),
					      cloud_public_copy(x));
		}
		json_decref(all);
		*out = json_pack("{s:s, s:o}", "kind", "compute#instanceAggregatedList", "items", items);
		*status = 200;
	} else {
		*out = gce_error(404, "notFound", "The requested URL /compute/v1/%.200s was not found",
				 path);
		*status = 404;
	}
	json_decref(doc);
	cloud_unlock(c);
}

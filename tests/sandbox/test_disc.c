/*
 * test_disc.c - the discovery-document checker against the real Compute v1
 * and GKE v1 documents: the bodies gcloud 528 was seen to send
 * (shared/notes/gcp-api.md §1.1, §2.1, §2.3; testworld.md §1.2) pass, and
 * each kind of mistake is refused naming the field a real front end would.
 * Also a small synthetic document for {+name} templates and the depth bound.
 */
#define CHECK_MAIN
#include "check.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "disc.h"

static struct disc *d;
static const char *spec_dir;

#define GKE_CREATE "/v1/projects/test-proj/locations/us-west2-a/clusters"
#define GCE_INSERT "/compute/v1/projects/test-proj/zones/us-west2-a/instances"
#define GCE_FW "/compute/v1/projects/test-proj/global/firewalls"
#define BASE "https://compute.googleapis.com/compute/v1"

/* gcp-api.md §1.1, as observed. */
static const char gke_body[] =
	"{\"cluster\": {\"name\": \"west\", \"network\": \"default\","
	" \"initialClusterVersion\": \"1.29.4-gke.1043002\","
	" \"ipAllocationPolicy\": {\"createSubnetwork\": false, \"useIpAliases\": true},"
	" \"nodePools\": [{\"name\": \"default-pool\", \"initialNodeCount\": 5,"
	"  \"config\": {\"machineType\": \"n1-standard-2\", \"imageType\": \"COS\","
	"   \"diskSizeGb\": 100, \"oauthScopes\": ["
	"    \"https://www.googleapis.com/auth/devstorage.read_only\","
	"    \"https://www.googleapis.com/auth/logging.write\","
	"    \"https://www.googleapis.com/auth/monitoring\","
	"    \"https://www.googleapis.com/auth/service.management.readonly\","
	"    \"https://www.googleapis.com/auth/servicecontrol\","
	"    \"https://www.googleapis.com/auth/trace.append\"]},"
	"  \"management\": {\"autoRepair\": true, \"autoUpgrade\": true},"
	"  \"upgradeSettings\": {\"maxSurge\": 1}}]},"
	" \"parent\": \"projects/test-proj/locations/us-west2-a\"}";

/* testworld.md §1.2 clusters create. */
static const char gke_body2[] =
	"{\"cluster\": {\"name\": \"west\", \"network\": \"default\","
	" \"nodePools\": [{\"name\": \"default-pool\", \"initialNodeCount\": 3,"
	"  \"config\": {\"machineType\": \"e2-standard-4\", \"oauthScopes\": ["
	"   \"https://www.googleapis.com/auth/devstorage.read_only\"]},"
	"  \"management\": {\"autoRepair\": true, \"autoUpgrade\": true},"
	"  \"upgradeSettings\": {\"maxSurge\": 1}}]},"
	" \"parent\": \"projects/demo/locations/us-west2-a\"}";

/* gcp-api.md §2.1, as observed. */
static const char gce_body[] =
	"{\"name\": \"istio-vm\","
	" \"machineType\": \"" BASE "/projects/test-proj/zones/us-west2-a/machineTypes/n1-standard-2\","
	" \"disks\": [{\"boot\": true, \"autoDelete\": true, \"mode\": \"READ_WRITE\","
	"  \"type\": \"PERSISTENT\", \"initializeParams\": {\"diskSizeGb\": \"20\","
	"   \"sourceImage\": \"" BASE "/projects/debian-cloud/zones/-/imageFamilyViews/debian-12\"}}],"
	" \"networkInterfaces\": [{\"network\": \"" BASE "/projects/test-proj/global/networks/default\","
	"  \"subnetwork\": \"" BASE "/projects/test-proj/regions/us-west2/subnetworks/default\","
	"  \"accessConfigs\": [{\"name\": \"external-nat\", \"type\": \"ONE_TO_ONE_NAT\","
	"   \"networkTier\": \"PREMIUM\"}]}],"
	" \"tags\": {\"items\": [\"istio-vm\"]},"
	" \"metadata\": {\"items\": [{\"key\": \"ssh-keys\", \"value\": \"alice:ssh-rsa AAAAB3Nza... alice\\n\"},"
	"  {\"key\": \"startup-script\", \"value\": \"#!/bin/bash\\n...\\n\"}]},"
	" \"serviceAccounts\": [{\"email\": \"default\","
	"  \"scopes\": [\"https://www.googleapis.com/auth/cloud-platform\"]}],"
	" \"scheduling\": {\"automaticRestart\": true, \"onHostMaintenance\": \"MIGRATE\"},"
	" \"canIpForward\": false, \"deletionProtection\": false}";

/* testworld.md §1.2 instances create (sandbox URLs, empty-ish metadata). */
static const char gce_body2[] =
	"{\"canIpForward\": false, \"deletionProtection\": false,"
	" \"disks\": [{\"autoDelete\": true, \"boot\": true, \"mode\": \"READ_WRITE\", \"type\": \"PERSISTENT\","
	"  \"initializeParams\": {\"diskSizeGb\": \"20\","
	"   \"sourceImage\": \"http://127.0.0.1:9/compute/v1/projects/debian-cloud/zones/-/imageFamilyViews/debian-12\"}}],"
	" \"machineType\": \"http://127.0.0.1:9/compute/v1/projects/demo/zones/us-west2-a/machineTypes/e2-standard-2\","
	" \"metadata\": {\"items\": [{\"key\": \"enable-oslogin\", \"value\": \"FALSE\"}]},"
	" \"name\": \"istio-vm\","
	" \"networkInterfaces\": [{\"accessConfigs\": [{\"name\": \"external-nat\", \"type\": \"ONE_TO_ONE_NAT\"}],"
	"  \"network\": \"http://127.0.0.1:9/compute/v1/projects/demo/global/networks/default\"}],"
	" \"scheduling\": {\"automaticRestart\": true},"
	" \"serviceAccounts\": [{\"email\": \"default\", \"scopes\": [\"https://www.googleapis.com/auth/pubsub\"]}],"
	" \"tags\": {\"items\": [\"istio-gce\", \"http-server\"]}}";

/* gcp-api.md §2.3 and testworld.md §1.2 firewall rules. */
static const char fw_body[] =
	"{\"name\": \"allow-istio-vm\", \"network\": \"" BASE "/projects/test-proj/global/networks/default\","
	" \"direction\": \"INGRESS\", \"description\": \"mesh to vm\","
	" \"sourceRanges\": [\"10.0.0.0/8\"], \"targetTags\": [\"istio-vm\"],"
	" \"allowed\": [{\"IPProtocol\": \"tcp\", \"ports\": [\"8080\"]},"
	"  {\"IPProtocol\": \"tcp\", \"ports\": [\"15443\"]}]}";
static const char fw_body2[] =
	"{\"allowed\": [{\"IPProtocol\": \"tcp\", \"ports\": [\"3550\"]}, {\"IPProtocol\": \"tcp\", \"ports\": [\"15012\"]}],"
	" \"direction\": \"INGRESS\", \"name\": \"allow-istio-vm\","
	" \"network\": \"http://127.0.0.1:9/compute/v1/projects/demo/global/networks/default\","
	" \"sourceRanges\": [\"10.8.0.0/14\"], \"targetTags\": [\"istio-gce\"]}";

static json_t *
parse(const char *s)
{
	json_error_t je;
	json_t *j = json_loads(s, 0, &je);

	if (j == NULL)
		fprintf(stderr, "  test body does not parse: %d: %s\n", je.column, je.text);
	return j;
}

/* Check text (a JSON body, or NULL) against method+path; return the rc and
 * leave the error in *err. */
static or_rc
run(const char *method, const char *path, const char *query, const char *text,
    struct or_err *err)
{
	json_t *b = text != NULL ? parse(text) : NULL;
	or_rc rc;

	or_err_clear(err);
	rc = disc_check(d, method, path, query, b, err);
	json_decref(b);
	return rc;
}

/* Parse base, apply a modification given as a path into it, and check. */
static or_rc
run_mod(const char *method, const char *path, const char *base, const char *where,
	json_t *(*mod)(json_t *), struct or_err *err)
{
	json_t *b = parse(base), *o = b;
	char buf[256], *tok, *save = NULL;
	or_rc rc;

	snprintf(buf, sizeof(buf), "%s", where);
	for (tok = strtok_r(buf, ".", &save); tok != NULL && o != NULL;
	     tok = strtok_r(NULL, ".", &save))
		o = (tok[0] >= '0' && tok[0] <= '9') ? json_array_get(o, (size_t)atoi(tok))
						     : json_object_get(o, tok);
	if (o != NULL)
		mod(o);
	or_err_clear(err);
	rc = disc_check(d, method, path, NULL, b, err);
	json_decref(b);
	return rc;
}

static json_t *
rename_access(json_t *ni)
{
	json_object_set(ni, "acessConfigs", json_object_get(ni, "accessConfigs"));
	json_object_del(ni, "accessConfigs");
	return ni;
}

static json_t *
rename_machine(json_t *cfg)
{
	json_object_set_new(cfg, "machineTyp", json_string("n1-standard-2"));
	json_object_del(cfg, "machineType");
	return cfg;
}

static json_t *
can_ip_yes(json_t *o)
{
	json_object_set_new(o, "canIpForward", json_string("yes"));
	return o;
}

static json_t *
nodes_five(json_t *np)
{
	json_object_set_new(np, "initialNodeCount", json_string("five"));
	return np;
}

static json_t *
nodes_string5(json_t *np)
{
	json_object_set_new(np, "initialNodeCount", json_string("5"));
	return np;
}

static json_t *
nodes_huge(json_t *np)
{
	json_object_set_new(np, "initialNodeCount", json_integer(5000000000LL));
	return np;
}

static json_t *
disk_number(json_t *ip)
{
	json_object_set_new(ip, "diskSizeGb", json_integer(20));
	return ip;
}

static json_t *
disk_words(json_t *ip)
{
	json_object_set_new(ip, "diskSizeGb", json_string("twenty"));
	return ip;
}

static json_t *
disk_float(json_t *ip)
{
	json_object_set_new(ip, "diskSizeGb", json_real(20.5));
	return ip;
}

static json_t *
sideways(json_t *o)
{
	json_object_set_new(o, "direction", json_string("SIDEWAYS"));
	return o;
}

static json_t *
egress(json_t *o)
{
	json_object_set_new(o, "direction", json_string("EGRESS"));
	return o;
}

static json_t *
no_name(json_t *o)
{
	json_object_del(o, "name");
	return o;
}

static json_t *
tags_string(json_t *o)
{
	json_object_set_new(o, "tags", json_string("istio-vm"));
	return o;
}

static json_t *
items_number(json_t *tags)
{
	json_array_set_new(json_object_get(tags, "items"), 0, json_integer(7));
	return tags;
}

static json_t *
meta_no_key(json_t *item)
{
	json_object_del(item, "key");
	return item;
}

static json_t *
labels_ok(json_t *o)
{
	json_object_set_new(o, "resourceLabels", json_pack("{s:s}", "team", "mesh"));
	return o;
}

static json_t *
labels_bad(json_t *o)
{
	json_object_set_new(o, "resourceLabels", json_pack("{s:i}", "team", 3));
	return o;
}

static json_t *
null_field(json_t *o)
{
	json_object_set_new(o, "description", json_null());
	return o;
}

static void
t_load(void)
{
	static const char *cands[] = {"../shared/spec"};
	struct or_err err;
	struct stat st;
	size_t i;

	for (i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
		char f[256];

		snprintf(f, sizeof(f), "%s/compute-v1.json", cands[i]);
		if (stat(f, &st) == 0) {
			spec_dir = cands[i];
			break;
		}
	}
	if (spec_dir == NULL)
		SKIP("no discovery documents in ../shared/spec (a clone without ../shared beside it)");
	CHECK_INT(disc_load(spec_dir, &d, &err), OR_OK);
	if (d == NULL) {
		fprintf(stderr, "  %s\n", err.message);
		return;
	}
	/* 710 compute + 65 container methods. */
	CHECK_INT(disc_method_count(d), 775);
	CHECK_INT(disc_load("/nonexistent-dir", &(struct disc *){NULL}, &err), OR_E_NOTFOUND);
}

static void
t_gcloud_bodies_pass(void)
{
	struct or_err err;
	const char *id = NULL;
	json_t *b;

	if (d == NULL)
		SKIP("documents not loaded");
	CHECK_INT(run("POST", GKE_CREATE, "alt=json", gke_body, &err), OR_OK);
	CHECK_INT(run("POST", "/v1/projects/demo/locations/us-west2-a/clusters?alt=json", NULL,
		      gke_body2, &err), OR_OK);
	CHECK_INT(run("POST", GCE_INSERT, "alt=json", gce_body, &err), OR_OK);
	if (err.rc != OR_OK)
		fprintf(stderr, "  %s: %s\n", err.field, err.message);
	CHECK_INT(run("POST", "/compute/v1/projects/demo/zones/us-west2-a/instances", "alt=json",
		      gce_body2, &err), OR_OK);
	CHECK_INT(run("POST", GCE_FW, "alt=json", fw_body, &err), OR_OK);
	CHECK_INT(run("POST", "/compute/v1/projects/demo/global/firewalls", "alt=json", fw_body2,
		      &err), OR_OK);
	/* The tutorial VM: "metadata": {} and no networkTier. */
	CHECK_INT(run("POST", GCE_INSERT, NULL,
		      "{\"name\":\"istio-gce\",\"metadata\":{},\"networkInterfaces\":[{\"accessConfigs\":"
		      "[{\"name\":\"external-nat\",\"type\":\"ONE_TO_ONE_NAT\"}]}]}",
		      &err), OR_OK);
	b = parse(gce_body);
	CHECK_INT(disc_check_id(d, "POST", GCE_INSERT, NULL, b, &id, &err), OR_OK);
	CHECK_STR(id, "compute.instances.insert");
	json_decref(b);
	/* int64 as a bare number: clients differ, front ends take both. */
	CHECK_INT(run_mod("POST", GCE_INSERT, gce_body, "disks.0.initializeParams", disk_number,
			  &err), OR_OK);
	CHECK_INT(run_mod("POST", GCE_FW, fw_body, "", egress, &err), OR_OK);
	CHECK_INT(run_mod("POST", GKE_CREATE, gke_body, "cluster", labels_ok, &err), OR_OK);
	CHECK_INT(run_mod("POST", GCE_FW, fw_body, "", null_field, &err), OR_OK);
}

static void
t_paths_gcloud_uses(void)
{
	static const struct {
		const char *method, *path, *query;
	} ok[] = {
		{"GET", "/compute/v1/projects/demo/zones/us-west2-a", "alt=json"},
		{"GET", "/compute/v1/projects/demo", "alt=json"},
		{"GET", "/compute/v1/projects/demo/zones/us-west2-a/instances", "alt=json&maxResults=500"},
		{"GET", "/compute/v1/projects/demo/aggregated/instances",
		 "alt=json&includeAllScopes=True&maxResults=500&returnPartialSuccess=True"},
		{"GET", "/compute/v1/projects/demo/zones/us-west2-a/instances/istio-vm", "alt=json"},
		{"DELETE", "/compute/v1/projects/demo/zones/us-west2-a/instances/vm1", "requestId=abc"},
		{"POST", "/compute/v1/projects/demo/zones/us-west2-a/operations/operation-1-2/wait",
		 "alt=json"},
		{"POST", "/compute/v1/projects/demo/global/operations/operation-1-2/wait", "alt=json"},
		{"GET", "/compute/v1/projects/demo/global/operations/operation-1-2", NULL},
		{"GET", "/compute/v1/projects/demo/global/firewalls/allow-istio-vm", "alt=json"},
		{"DELETE", "/compute/v1/projects/demo/global/firewalls/fw1", NULL},
		{"GET", "/compute/v1/projects/debian-cloud/global/images/family/debian-12", NULL},
		{"GET", "/compute/v1/projects/debian-cloud/zones/-/imageFamilyViews/debian-12", NULL},
		{"GET", "/v1/projects/demo/locations/us-west2-a/operations/operation-1-ab", "alt=json"},
		{"POST", "/v1/projects/demo/locations/us-west2-a/operations/operation-1-ab:cancel", NULL},
		{"GET", "/v1/projects/demo/locations/us-west2-a/clusters/west", "alt=json"},
		{"GET", "/v1/projects/demo/locations/-/clusters", "alt=json"},
		{"DELETE", "/v1/projects/demo/locations/us-west2-a/clusters/west", NULL},
		{"GET", "/v1/projects/demo/locations/us-west2-a/serverConfig", "alt=json"},
		{"GET", "/v1/projects/demo/zones/us-west2-a/serverconfig", NULL},
	};
	struct or_err err;
	size_t i;

	if (d == NULL)
		SKIP("documents not loaded");
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		or_rc rc = run(ok[i].method, ok[i].path, ok[i].query, NULL, &err);

		CHECK_INT(rc, OR_OK);
		if (rc != OR_OK)
			fprintf(stderr, "  %s %s: %s\n", ok[i].method, ok[i].path, err.message);
	}
	/* A ":cancel" segment picks the cancel method, not operations.get. */
	{
		const char *id = NULL;

		CHECK_INT(disc_check_id(d, "POST",
					"/v1/projects/demo/locations/l/operations/op:cancel", NULL,
					NULL, &id, &err), OR_OK);
		CHECK_STR(id, "container.projects.locations.operations.cancel");
		CHECK_INT(disc_check_id(d, "POST",
					"/compute/v1/projects/p/zones/z/operations/op/wait?alt=json",
					NULL, NULL, &id, &err), OR_OK);
		CHECK_STR(id, "compute.zoneOperations.wait");
	}
}

static void
t_refusals(void)
{
	struct or_err err;

	if (d == NULL)
		SKIP("documents not loaded");
	CHECK_INT(run_mod("POST", GCE_INSERT, gce_body, "networkInterfaces.0", rename_access, &err),
		  OR_E_INVALID);
	CHECK_STR(err.field, "resource.networkInterfaces[0].acessConfigs");
	fprintf(stderr, "  (%s)\n", err.message);
	CHECK_INT(run_mod("POST", GKE_CREATE, gke_body, "cluster.nodePools.0.config", rename_machine,
			  &err), OR_E_INVALID);
	CHECK_STR(err.field, "cluster.nodePools[0].config.machineTyp");
	CHECK_INT(run_mod("POST", GCE_INSERT, gce_body, "", can_ip_yes, &err), OR_E_INVALID);
	CHECK_STR(err.field, "resource.canIpForward");
	fprintf(stderr, "  (%s)\n", err.message);
	CHECK_INT(run_mod("POST", GKE_CREATE, gke_body, "cluster.nodePools.0", nodes_five, &err),
		  OR_E_INVALID);
	CHECK_STR(err.field, "cluster.nodePools[0].initialNodeCount");
	CHECK_INT(run_mod("POST", GKE_CREATE, gke_body, "cluster.nodePools.0", nodes_string5, &err),
		  OR_E_INVALID);
	CHECK_STR(err.field, "cluster.nodePools[0].initialNodeCount");
	CHECK_INT(run_mod("POST", GKE_CREATE, gke_body, "cluster.nodePools.0", nodes_huge, &err),
		  OR_E_INVALID);
	CHECK_INT(run_mod("POST", GCE_INSERT, gce_body, "disks.0.initializeParams", disk_words,
			  &err), OR_E_INVALID);
	CHECK_STR(err.field, "resource.disks[0].initializeParams.diskSizeGb");
	CHECK_INT(run_mod("POST", GCE_INSERT, gce_body, "disks.0.initializeParams", disk_float,
			  &err), OR_E_INVALID);
	CHECK_INT(run_mod("POST", GCE_FW, fw_body, "", sideways, &err), OR_E_INVALID);
	CHECK_STR(err.field, "resource.direction");
	fprintf(stderr, "  (%s)\n", err.message);
	CHECK_INT(run_mod("POST", GCE_INSERT, gce_body, "", no_name, &err), OR_E_INVALID);
	CHECK_STR(err.field, "resource.name");
	CHECK_INT(run_mod("POST", GCE_INSERT, gce_body, "", tags_string, &err), OR_E_INVALID);
	CHECK_STR(err.field, "resource.tags");
	CHECK_INT(run_mod("POST", GCE_INSERT, gce_body, "tags", items_number, &err), OR_E_INVALID);
	CHECK_STR(err.field, "resource.tags.items[0]");
	CHECK_INT(run_mod("POST", GCE_INSERT, gce_body, "metadata.items.1", meta_no_key, &err),
		  OR_E_INVALID);
	CHECK_STR(err.field, "resource.metadata.items[1].key");
	CHECK_INT(run_mod("POST", GKE_CREATE, gke_body, "cluster", labels_bad, &err), OR_E_INVALID);
	CHECK_STR(err.field, "cluster.resourceLabels.team");
	/* Unknown top-level name in a GKE body: no "at" part. */
	CHECK_INT(run("POST", GKE_CREATE, NULL, "{\"clustr\": {}}", &err), OR_E_INVALID);
	CHECK_STR(err.field, "clustr");
	CHECK_INT(run("POST", GKE_CREATE, NULL, "[1]", &err), OR_E_INVALID);
	/* Paths and methods. */
	CHECK_INT(run("GET", "/compute/v1/projects/demo/zones/z/instancez", NULL, NULL, &err),
		  OR_E_NOTFOUND);
	CHECK(strstr(err.message, "/instancez") != NULL);
	CHECK_INT(run("GET", "/compute/v1/projects/demo/zones//instances", NULL, NULL, &err),
		  OR_E_NOTFOUND);
	CHECK_INT(run("GET", "/v1/projects/demo/services/container.googleapis.com", "alt=json",
		      NULL, &err), OR_E_NOTFOUND);
	CHECK_INT(run("POST", "/batch/compute/v1", NULL, NULL, &err), OR_E_NOTFOUND);
	/* container v1 has no locations.list (that is the Cloud Locations mixin). */
	CHECK_INT(run("GET", "/v1/projects/demo/locations", NULL, NULL, &err), OR_E_NOTFOUND);
	CHECK_INT(run("PUT", GCE_INSERT, NULL, gce_body, &err), OR_E_METHOD);
	fprintf(stderr, "  (%s)\n", err.message);
	CHECK_INT(run("GET", "/compute/v1/projects/p/zones/z/operations/op/wait", NULL, NULL, &err),
		  OR_E_METHOD);
	CHECK_INT(run("GET", "/compute/v1/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/a/b/"
			     "c/d/e/f/g/h",
		      NULL, NULL, &err), OR_E_NOTFOUND);
	/* A body where the method takes none. */
	CHECK_INT(run("POST", "/compute/v1/projects/p/zones/z/operations/op/wait", NULL,
		      "{\"x\": 1}", &err), OR_E_INVALID);
	CHECK_INT(run("POST", "/compute/v1/projects/p/zones/z/operations/op/wait", NULL, "{}", &err),
		  OR_OK);
	/* Query parameters: unknown name, missing required one. */
	CHECK_INT(run("GET", "/compute/v1/projects/demo/zones/z/instances", "alt=json&maxResult=5",
		      NULL, &err), OR_E_INVALID);
	CHECK_STR(err.field, "maxResult");
	CHECK_INT(run("POST", "/compute/v1/projects/p/zones/z/instances/vm/setDiskAutoDelete",
		      "deviceName=d", NULL, &err), OR_E_INVALID);
	CHECK_STR(err.field, "autoDelete");
	CHECK_INT(run("POST", "/compute/v1/projects/p/zones/z/instances/vm/setDiskAutoDelete",
		      "deviceName=d&autoDelete=true", NULL, &err), OR_OK);
}

/* A tiny document of our own: {+name} templates and a recursive schema. */
static void
t_synthetic(void)
{
	char dir[] = "/tmp/outrigger-disc-XXXXXX", f[128];
	struct disc *s = NULL;
	struct or_err err;
	json_t *deep, *cur;
	FILE *fp;
	int i;

	if (mkdtemp(dir) == NULL)
		SKIP("mkdtemp failed");
	snprintf(f, sizeof(f), "%s/x.json", dir);
	fp = fopen(f, "w");
	if (fp == NULL)
		SKIP("cannot write the synthetic document");
	fputs("{\"kind\":\"discovery#restDescription\",\"name\":\"x\",\"servicePath\":\"\","
	      "\"parameters\":{\"alt\":{\"location\":\"query\",\"type\":\"string\"}},"
	      "\"schemas\":{\"Node\":{\"id\":\"Node\",\"type\":\"object\",\"properties\":{"
	      "\"child\":{\"$ref\":\"Node\"},\"n\":{\"type\":\"integer\",\"format\":\"int32\"}}}},"
	      "\"resources\":{\"things\":{\"methods\":{"
	      "\"do\":{\"id\":\"x.things.do\",\"httpMethod\":\"POST\",\"path\":\"v9/{+name}:do\","
	      "\"request\":{\"$ref\":\"Node\"},\"parameters\":{}},"
	      "\"get\":{\"id\":\"x.things.get\",\"httpMethod\":\"GET\",\"path\":\"v9/{+name}\"}}}}}",
	      fp);
	fclose(fp);
	snprintf(f, sizeof(f), "%s/notes.json", dir);
	fp = fopen(f, "w");
	if (fp != NULL) {
		fputs("{\"not\": \"a discovery document\"}", fp);
		fclose(fp);
	}
	CHECK_INT(disc_load(dir, &s, &err), OR_OK);
	if (s == NULL)
		goto out;
	CHECK_INT(disc_method_count(s), 2);
	CHECK_INT(disc_check(s, "POST", "/v9/a/b/c:do", NULL, NULL, &err), OR_OK);
	CHECK_INT(disc_check(s, "GET", "/v9/a/b/c", "alt=json", NULL, &err), OR_OK);
	CHECK_INT(disc_check(s, "GET", "/v9", NULL, NULL, &err), OR_E_NOTFOUND);
	CHECK_INT(disc_check(s, "DELETE", "/v9/a", NULL, NULL, &err), OR_E_METHOD);
	/* 10 levels pass, 100 levels are refused without deep recursion. */
	for (i = 0; i < 2; i++) {
		int depth = i == 0 ? 10 : 100, k;

		deep = json_pack("{s:i}", "n", 1);
		for (k = 0; k < depth; k++) {
			cur = json_object();
			json_object_set_new(cur, "child", deep);
			deep = cur;
		}
		CHECK_INT(disc_check(s, "POST", "/v9/a:do", NULL, deep, &err),
			  i == 0 ? OR_OK : OR_E_INVALID);
		json_decref(deep);
	}
	CHECK(strstr(err.message, "nested") != NULL);
out:
	disc_free(s);
	unlink(f);
	snprintf(f, sizeof(f), "%s/x.json", dir);
	unlink(f);
	rmdir(dir);
}

static int
cmp_ns(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return x < y ? -1 : x > y;
}

static void
t_timing(void)
{
	enum { N = 10000 };
	static long ns[N];
	struct or_err err;
	json_t *b;
	int i, bad = 0;

	if (d == NULL)
		SKIP("documents not loaded");
	b = parse(gce_body);
	for (i = 0; i < N; i++) {
		struct timespec t0, t1;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (disc_check(d, "POST", GCE_INSERT, "alt=json", b, &err) != OR_OK)
			bad++;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ns[i] = (t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec);
	}
	json_decref(b);
	CHECK_INT(bad, 0);
	qsort(ns, N, sizeof(ns[0]), cmp_ns);
	printf("disc: instances.insert check: median %.1f us, p99 %.1f us (%d runs)\n",
	       ns[N / 2] / 1000.0, ns[N * 99 / 100] / 1000.0, N);
	{
		struct timespec t0, t1;
		struct disc *x = NULL;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		CHECK_INT(disc_load(spec_dir, &x, &err), OR_OK);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		printf("disc: disc_load of %s: %.0f ms\n", spec_dir,
		       ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e6);
		disc_free(x);
	}
}

int
main(void)
{
	RUN(t_load);
	RUN(t_gcloud_bodies_pass);
	RUN(t_paths_gcloud_uses);
	RUN(t_refusals);
	RUN(t_synthetic);
	RUN(t_timing);
	disc_free(d);
	return check_done("disc");
}

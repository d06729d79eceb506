/*
 * test_rollout.c - the mission, end to end: both tutorial blueprints
 * applied through the real server against the sandbox, the shop opened at
 * the ingress IP with products from a catalog of this test's own (served by
 * the VM), the VM's certificate checked with the openssl command, a
 * re-apply that changes nothing in the cloud, destroy that leaves nothing,
 * and the hard cases: injected 503/429 faults, SIGKILL of the server in the
 * middle, a quota error lifted then retried, bad parameters refused by the
 * pre-flight step.
 *
 * Needs root (the sandbox's VMs are sshd processes in namespaces); as root
 * the runner moves itself into a network namespace with only loopback.
 */
#define CHECK_MAIN
#include "check.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api_client.h"
#include "harness.h"

static struct hx_sandbox sb;
static char sbdir[512], ep_file[600], catalog[600];
static const char *bin;

/* Products of the test's own catalog: the shop must list exactly these. */
static const char catalog_json[] =
	"{\"products\": ["
	"{\"id\": \"E2ETEST001\", \"name\": \"Outrigger Paddle\", \"description\": \"Carbon.\","
	" \"picture\": \"/static/img/products/paddle.jpg\","
	" \"priceUsd\": {\"currencyCode\": \"USD\", \"units\": 129, \"nanos\": 990000000},"
	" \"categories\": [\"boats\"]},"
	"{\"id\": \"E2ETEST002\", \"name\": \"Ama Float\", \"description\": \"Foam.\","
	" \"picture\": \"/static/img/products/float.jpg\","
	" \"priceUsd\": {\"currencyCode\": \"USD\", \"units\": 45, \"nanos\": 0},"
	" \"categories\": [\"boats\"]}]}";

static int
have(const char *prog)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return system(cmd) == 0;
}

static int
start_server(struct srv *s, const char *dir)
{
	const char *extra[] = {"--sandbox-endpoints", ep_file, "--blueprints", "tests/e2e/blueprints",
			       "--retry-base-ms", "200", "--no-access-log", NULL};

	return srv_start(s, dir, extra);
}

/* Create an environment on blueprint bp with params (JSON object text). */
static int
create_env(struct srv *s, const char *name, const char *bp, const char *params)
{
	char body[2048];
	struct res r;
	int ok;

	snprintf(body, sizeof(body),
		 "{\"name\": \"%s\", \"provider\": \"sandbox\", \"blueprint\": \"%s\", \"params\": %s}",
		 name, bp, params);
	if (send_json(s, "POST", "/api/v1/environments", body, &r) != 0)
		return -1;
	ok = r.status == 201;
	if (!ok)
		fprintf(stderr, "    create %s: %ld %s\n", name, r.status, r.body);
	res_free(&r);
	return ok ? 0 : -1;
}

/* Start a run; its id, or -1. */
static long long
start_run(struct srv *s, const char *env, const char *action)
{
	char path[256], body[64];
	struct res r;
	long long id = -1;

	snprintf(path, sizeof(path), "/api/v1/environments/%s/runs", env);
	snprintf(body, sizeof(body), "{\"action\": \"%s\"}", action);
	if (send_json(s, "POST", path, body, &r) == 0 && (r.status == 201 || r.status == 202))
		id = json_integer_value(json_object_get(r.json, "id"));
	else
		fprintf(stderr, "    run %s of %s: %ld %s\n", action, env, r.status, r.body);
	res_free(&r);
	return id;
}

/* Wait until run id ends; its status ("succeeded", ...) into out. */
static void
wait_run(struct srv *s, long long id, int timeout_s, char *out, size_t size)
{
	char path[128];
	struct res r;
	time_t end = time(NULL) + timeout_s;
	const char *st;

	snprintf(out, size, "timeout");
	snprintf(path, sizeof(path), "/api/v1/runs/%lld", id);
	while (time(NULL) < end) {
		if (get(s, path, &r) == 0 && r.status == 200) {
			st = json_string_value(json_object_get(r.json, "status"));
			if (st != NULL && strcmp(st, "queued") != 0 && strcmp(st, "running") != 0) {
				snprintf(out, size, "%s", st);
				if (strcmp(st, "succeeded") != 0) {
					json_t *step;
					size_t i;

					json_array_foreach(json_object_get(r.json, "steps"), i, step)
						if (json_object_get(step, "error") != NULL &&
						    !json_is_null(json_object_get(step, "error"))) {
							char *e = json_dumps(json_object_get(step, "error"),
									     JSON_COMPACT);

							fprintf(stderr, "    step %s: %s\n",
								json_string_value(json_object_get(step, "name")),
								e != NULL ? e : "?");
							free(e);
						}
				}
				res_free(&r);
				return;
			}
		}
		res_free(&r);
		usleep(300000);
	}
}

/* Start a run and wait for its end: its id; its status into out. */
static long long
run_to_end(struct srv *s, const char *env, const char *action, int timeout_s, char *out,
	   size_t size)
{
	long long id = start_run(s, env, action);

	if (id < 0)
		snprintf(out, size, "not started");
	else
		wait_run(s, id, timeout_s, out, size);
	return id;
}

/* The environment's JSON (caller json_decref's). */
static json_t *
env_get(struct srv *s, const char *name)
{
	char path[256];
	struct res r;
	json_t *j = NULL;

	snprintf(path, sizeof(path), "/api/v1/environments/%s", name);
	if (get(s, path, &r) == 0 && r.status == 200)
		j = json_incref(r.json);
	res_free(&r);
	return j;
}

/* How many items a sandbox list answers (instances, firewalls, clusters). */
static long
cloud_count(const char *project, const char *what)
{
	char url[700], *body = NULL;
	json_t *j;
	long n = -1;

	if (strcmp(what, "clusters") == 0)
		snprintf(url, sizeof(url), "%sv1/projects/%s/locations/-/clusters",
			 hx_endpoint(&sb, "container"), project);
	else if (strcmp(what, "instances") == 0)
		snprintf(url, sizeof(url), "%sprojects/%s/aggregated/instances",
			 hx_endpoint(&sb, "compute"), project);
	else
		snprintf(url, sizeof(url), "%sprojects/%s/global/firewalls", hx_endpoint(&sb, "compute"),
			 project);
	if (hx_http("GET", url, sb.token, NULL, &body) != 200) {
		free(body);
		return -1;
	}
	j = json_loads(body, 0, NULL);
	free(body);
	if (strcmp(what, "clusters") == 0) {
		n = (long)json_array_size(json_object_get(j, "clusters"));
	} else if (strcmp(what, "instances") == 0) {
		const char *k;
		json_t *v;

		n = 0;
		json_object_foreach(json_object_get(j, "items"), k, v)
			n += (long)json_array_size(json_object_get(v, "instances"));
	} else {
		n = (long)json_array_size(json_object_get(j, "items"));
	}
	json_decref(j);
	return n;
}

/* Requests that change the cloud (not GET) the sandbox has seen. */
static long
mutating_requests(void)
{
	char url[700], *body = NULL;
	json_t *j, *r;
	size_t i;
	long n = 0;

	snprintf(url, sizeof(url), "%srequests", hx_endpoint(&sb, "admin"));
	if (hx_http("GET", url, NULL, NULL, &body) != 200) {
		free(body);
		return -1;
	}
	j = json_loads(body, 0, NULL);
	free(body);
	json_array_foreach(json_is_array(j) ? j : json_object_get(j, "requests"), i, r) {
		const char *m = json_string_value(json_object_get(r, "method"));
		const char *p = json_string_value(json_object_get(r, "path"));

		if (m != NULL && p != NULL && strcmp(m, "GET") != 0 && strstr(p, "/wait") == NULL &&
		    strstr(p, "/token") == NULL && strstr(p, "/admin/") == NULL)
			n++;
	}
	json_decref(j);
	return n;
}

/* Empty the sandbox's request log (it keeps the last 4096), so counts
 * cover only what comes after. */
static void
requests_forget(void)
{
	char url[700];

	snprintf(url, sizeof(url), "%srequests", hx_endpoint(&sb, "admin"));
	hx_http("DELETE", url, NULL, NULL, NULL);
}

/* Answers with this status the sandbox has given so far. */
static long
answers_with(long status)
{
	char url[700], *body = NULL;
	json_t *j, *r;
	size_t i;
	long n = 0;

	snprintf(url, sizeof(url), "%srequests", hx_endpoint(&sb, "admin"));
	if (hx_http("GET", url, NULL, NULL, &body) != 200) {
		free(body);
		return -1;
	}
	j = json_loads(body, 0, NULL);
	free(body);
	json_array_foreach(json_is_array(j) ? j : json_object_get(j, "requests"), i, r)
		if (json_integer_value(json_object_get(r, "status")) == status)
			n++;
	json_decref(j);
	return n;
}

static int
faults(const char *method, const char *body)
{
	char url[700];
	long st;

	snprintf(url, sizeof(url), "%sfaults", hx_endpoint(&sb, "admin"));
	st = hx_http(method, url, NULL, body, NULL);
	return st >= 200 && st < 300 ? 0 : -1;
}

/* The shop at url lists our catalog's products. */
static int
shop_lists_catalog(const char *url)
{
	char *body = NULL;
	long st = hx_http("GET", url, NULL, NULL, &body);
	int ok = st == 200 && body != NULL && strstr(body, "Outrigger Paddle") != NULL &&
		 strstr(body, "Ama Float") != NULL;

	if (!ok)
		fprintf(stderr, "    shop %s: HTTP %ld: %.300s\n", url, st, body ? body : "");
	free(body);
	return ok;
}

/* Read the VM key from the server's database and check the VM's
 * certificate chain with the openssl command, over real ssh. */
static void
check_vm_certificate(struct srv *s, const char *env, const char *vm_ip)
{
	char cmd[2048], keyf[700];
	int rc;

	snprintf(keyf, sizeof(keyf), "%s/vm_key", s->dir);
	snprintf(cmd, sizeof(cmd),
		 "sqlite3 %s \"SELECT value FROM secrets s JOIN environments e ON e.id = "
		 "s.environment_id WHERE e.name = '%s' AND s.name = 'vm_ssh_key'\" > %s && chmod 600 %s",
		 s->db, env, keyf, keyf);
	CHECK_INT(system(cmd), 0);
	snprintf(cmd, sizeof(cmd),
		 "set -e; d=%s/vmcerts; mkdir -p $d; for f in root-cert.pem cert-chain.pem key.pem; do "
		 "ssh -q -i %s -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
		 "-o BatchMode=yes outrigger@%s sudo cat /etc/certs/$f > $d/$f; done; "
		 "openssl x509 -in $d/cert-chain.pem -noout -ext subjectAltName | grep -q 'URI:spiffe://cluster.local/ns/' && "
		 "awk 'BEGIN{n=0} /BEGIN CERT/{n++} n>1' $d/cert-chain.pem > $d/untrusted.pem && "
		 "openssl verify -CAfile $d/root-cert.pem -untrusted $d/untrusted.pem $d/cert-chain.pem",
		 s->dir, keyf, vm_ip);
	rc = system(cmd);
	CHECK_INT(rc, 0);
}

/* Apply blueprint bp as env; check the shop, re-apply, destroy. */
static void
full_rollout(const char *env, const char *bp, const char *project, int legacy)
{
	struct srv s;
	struct res r;
	char st[32], params[512], path[256];
	const char *ip, *url;
	json_t *e;
	long long id;

	snprintf(params, sizeof(params), "{\"project\": \"%s\"}", project);
	CHECK_INT(start_server(&s, NULL), 0);
	CHECK_INT(create_env(&s, env, bp, params), 0);
	/* The plan (the wizard's review page) says what apply would make,
	 * and makes nothing. */
	requests_forget();
	id = run_to_end(&s, env, "plan", 120, st, sizeof(st));
	CHECK_STR(st, "succeeded");
	CHECK_INT(mutating_requests(), 0);
	snprintf(path, sizeof(path), "/api/v1/runs/%lld/logs?limit=1000", id);
	CHECK_INT(get(&s, path, &r), 0);
	CHECK(r.body != NULL && strstr(r.body, "would create GKE cluster west") != NULL);
	CHECK(r.body != NULL && strstr(r.body, "would create instance istio-gce") != NULL);
	res_free(&r);
	CHECK_INT(cloud_count(project, "clusters"), 0);

	id = start_run(&s, env, "apply");
	CHECK(id > 0);
	wait_run(&s, id, 900, st, sizeof(st));
	CHECK_STR(st, "succeeded");
	e = env_get(&s, env);
	CHECK_STR(json_string_value(json_object_get(e, "status")), "ready");
	ip = json_string_value(json_object_get(json_object_get(e, "outputs"), "ingress_ip"));
	url = json_string_value(json_object_get(json_object_get(e, "outputs"), "app_url"));
	CHECK(ip != NULL && url != NULL);
	if (url != NULL)
		CHECK(shop_lists_catalog(url));
	CHECK_INT(json_array_size(json_object_get(json_object_get(e, "resources"), "clusters")), 1);
	CHECK_INT(json_array_size(json_object_get(json_object_get(e, "resources"), "vms")), 1);
	CHECK_INT(json_array_size(json_object_get(json_object_get(e, "resources"), "firewall_rules")),
		  1);
	if (legacy) {
		json_t *vm = json_array_get(json_object_get(json_object_get(e, "resources"), "vms"), 0);

		check_vm_certificate(&s, env,
				     json_string_value(json_object_get(json_object_get(vm, "attrs"),
								       "internal_ip")));
	}
	json_decref(e);

	/* Re-applying a ready environment changes nothing in the cloud: not
	 * one request but reads (and token grants). */
	requests_forget();
	id = run_to_end(&s, env, "apply", 600, st, sizeof(st));
	CHECK_STR(st, "succeeded");
	CHECK_INT(mutating_requests(), 0);
	CHECK(answers_with(200) > 0); /* it did look */
	/* ... and on the VM, nothing was restarted. */
	snprintf(path, sizeof(path), "/api/v1/runs/%lld/logs?step=vm-bootstrap&limit=1000", id);
	CHECK_INT(get(&s, path, &r), 0);
	CHECK(r.body != NULL && strstr(r.body, "the sidecar runs with these files already") != NULL);
	CHECK(r.body != NULL && strstr(r.body, "runs ") != NULL && strstr(r.body, " already") != NULL);
	CHECK(r.body != NULL && strstr(r.body, "placed /etc/") == NULL);
	res_free(&r);

	id = run_to_end(&s, env, "destroy", 600, st, sizeof(st));
	CHECK_STR(st, "succeeded");
	e = env_get(&s, env);
	CHECK_STR(json_string_value(json_object_get(e, "status")), "destroyed");
	json_decref(e);
	CHECK_INT(cloud_count(project, "instances"), 0);
	CHECK_INT(cloud_count(project, "firewalls"), 0);
	CHECK_INT(cloud_count(project, "clusters"), 0);
	srv_stop(&s, 0);
}

static void
t_legacy_rollout(void)
{
	full_rollout("legacy", "mesh-expansion-legacy", "e2e-legacy-1", 1);
}

static void
t_current_rollout(void)
{
	full_rollout("current", "mesh-expansion", "e2e-current-1", 0);
}

/* 20% of cloud calls fail 503 and 10% 429: the rollout still completes. */
static void
t_flaky_cloud(void)
{
	struct srv s;
	char st[32];
	long n503, n429;

	requests_forget();
	n503 = answers_with(503);
	n429 = answers_with(429);

	/* Certain ones first (the instance insert answered 503 twice, GKE's
	 * operation polls 429 twice), then the random rates on top. */
	CHECK_INT(faults("POST", "{\"match\": \"^POST /compute/v1/projects/e2e-flaky-1/zones/[^/]+/instances$\","
				 " \"status\": 503, \"count\": 2}"), 0);
	CHECK_INT(faults("POST", "{\"match\": \"^GET /v1/projects/e2e-flaky-1/locations/[^/]+/operations/\","
				 " \"status\": 429, \"count\": 2}"), 0);
	CHECK_INT(faults("POST", "{\"match\": \"^(GET|POST|DELETE) /(compute|v1)/\", \"status\": 503,"
				 " \"rate\": 0.2}"), 0);
	CHECK_INT(faults("POST", "{\"match\": \"^(GET|POST|DELETE) /(compute|v1)/\", \"status\": 429,"
				 " \"rate\": 0.1}"), 0);
	CHECK_INT(start_server(&s, NULL), 0);
	CHECK_INT(create_env(&s, "flaky", "mesh-expansion", "{\"project\": \"e2e-flaky-1\"}"), 0);
	run_to_end(&s, "flaky", "apply", 900, st, sizeof(st));
	CHECK_STR(st, "succeeded");
	/* The faults were really met, and many times. */
	fprintf(stderr, "    injected: %ld answers 503, %ld answers 429, %ld answers 200\n",
		answers_with(503) - n503, answers_with(429) - n429, answers_with(200));
	CHECK(answers_with(503) - n503 >= 2);
	CHECK(answers_with(429) - n429 >= 2);
	faults("DELETE", NULL);
	run_to_end(&s, "flaky", "destroy", 600, st, sizeof(st));
	CHECK_STR(st, "succeeded");
	srv_stop(&s, 0);
}

/* SIGKILL of the server mid-rollout; a restart finishes with exactly one
 * cluster, one instance and one firewall rule. */
static void
t_killed_mid_rollout(void)
{
	struct srv s;
	char st[32], dir[256], cmd[600];
	long long id;
	json_t *e;

	CHECK_INT(start_server(&s, NULL), 0);
	CHECK_INT(create_env(&s, "crash", "mesh-expansion", "{\"project\": \"e2e-crash-1\"}"), 0);
	id = start_run(&s, "crash", "apply");
	/* Kill it once the cluster and the VM are being made. */
	sleep(3);
	srv_kill(&s);
	snprintf(dir, sizeof(dir), "%s", s.dir);
	/* It was killed in the middle: the run was still running. */
	snprintf(cmd, sizeof(cmd), "sqlite3 %s 'SELECT status FROM runs WHERE id = %lld' | grep -qx running",
		 s.db, id);
	CHECK_INT(system(cmd), 0);
	CHECK_INT(start_server(&s, dir), 0);
	wait_run(&s, id, 900, st, sizeof(st));
	CHECK_STR(st, "succeeded");
	CHECK_INT(cloud_count("e2e-crash-1", "instances"), 1);
	CHECK_INT(cloud_count("e2e-crash-1", "firewalls"), 1);
	CHECK_INT(cloud_count("e2e-crash-1", "clusters"), 1);
	e = env_get(&s, "crash");
	CHECK_STR(json_string_value(json_object_get(e, "status")), "ready");
	json_decref(e);
	id = run_to_end(&s, "crash", "destroy", 600, st, sizeof(st));
	CHECK_STR(st, "succeeded");
	srv_stop(&s, 0);
}

/* A quota error fails the step with Google's own message; once lifted, a
 * retry of the run succeeds. */
static void
t_quota_then_retry(void)
{
	struct srv s;
	char st[32], path[128];
	struct res r;
	long long id;

	CHECK_INT(faults("POST", "{\"match\": \"^POST /compute/v1/projects/e2e-quota-1/zones/[^/]+/instances$\","
				 " \"status\": 403, \"reason\": \"quotaExceeded\", \"message\": \"Quota 'CPUS' "
				 "exceeded.  Limit: 8.0 in region us-west2.\"}"), 0);
	CHECK_INT(start_server(&s, NULL), 0);
	CHECK_INT(create_env(&s, "quota", "cloud-only", "{\"project\": \"e2e-quota-1\"}"), 0);
	id = run_to_end(&s, "quota", "apply", 300, st, sizeof(st));
	CHECK_STR(st, "failed");
	snprintf(path, sizeof(path), "/api/v1/runs/%lld", id);
	CHECK_INT(get(&s, path, &r), 0);
	CHECK(r.body != NULL && strstr(r.body, "Quota 'CPUS' exceeded.  Limit: 8.0 in region us-west2.") != NULL);
	CHECK(r.body != NULL && strstr(r.body, "\"quota\"") != NULL);
	res_free(&r);
	CHECK_INT(faults("DELETE", NULL), 0);
	snprintf(path, sizeof(path), "/api/v1/runs/%lld/retry", id);
	CHECK_INT(send_json(&s, "POST", path, "{}", &r), 0);
	CHECK(r.status == 200 || r.status == 202);
	res_free(&r);
	wait_run(&s, id, 300, st, sizeof(st));
	CHECK_STR(st, "succeeded");
	CHECK_INT(cloud_count("e2e-quota-1", "instances"), 1);
	id = run_to_end(&s, "quota", "destroy", 300, st, sizeof(st));
	CHECK_STR(st, "succeeded");
	srv_stop(&s, 0);
}

/* Parameters the cloud would refuse fail in seconds, before anything is
 * made. */
static void
t_preflight_refuses(void)
{
	struct srv s;
	char st[32], path[128];
	struct res r;
	long long id;
	time_t t0;

	CHECK_INT(start_server(&s, NULL), 0);
	CHECK_INT(create_env(&s, "badver", "mesh-expansion",
			     "{\"project\": \"e2e-pre-1\", \"cluster_version\": \"1.19\"}"), 0);
	t0 = time(NULL);
	id = run_to_end(&s, "badver", "apply", 120, st, sizeof(st));
	CHECK_STR(st, "failed");
	CHECK(time(NULL) - t0 < 20);
	snprintf(path, sizeof(path), "/api/v1/runs/%lld", id);
	CHECK_INT(get(&s, path, &r), 0);
	CHECK(r.body != NULL && strstr(r.body, "cluster_version 1.19 is not offered") != NULL);
	res_free(&r);
	CHECK_INT(cloud_count("e2e-pre-1", "instances"), 0);
	CHECK_INT(cloud_count("e2e-pre-1", "clusters"), 0);

	CHECK_INT(create_env(&s, "badimg", "cloud-only",
			     "{\"project\": \"e2e-pre-2\", \"image_type\": \"COS\"}"), 0);
	id = run_to_end(&s, "badimg", "apply", 120, st, sizeof(st));
	CHECK_STR(st, "failed");
	snprintf(path, sizeof(path), "/api/v1/runs/%lld", id);
	CHECK_INT(get(&s, path, &r), 0);
	CHECK(r.body != NULL && strstr(r.body, "image type COS is not valid") != NULL);
	res_free(&r);
	srv_stop(&s, 0);
}

/* A name taken by something this environment did not make fails the
 * step with a conflict, and destroy leaves it alone; a resource deleted
 * behind Outrigger's back does not stop destroy. */
static void
t_conflict_and_gone(void)
{
	struct srv s;
	char st[32], url[800], path[128];
	struct res r;
	long long id;

	/* Someone else's VM named istio-gce, without our label. */
	snprintf(url, sizeof(url), "%sprojects/e2e-conflict-1/zones/us-west2-a/instances",
		 hx_endpoint(&sb, "compute"));
	CHECK_INT(hx_http("POST", url, sb.token,
			  "{\"name\": \"istio-gce\", \"machineType\": \"zones/us-west2-a/machineTypes/"
			  "n1-standard-1\", \"disks\": [{\"boot\": true, \"initializeParams\": "
			  "{\"sourceImage\": \"projects/debian-cloud/global/images/family/debian-12\"}}],"
			  " \"networkInterfaces\": [{\"network\": \"global/networks/default\"}]}",
			  NULL), 200);
	CHECK_INT(start_server(&s, NULL), 0);
	CHECK_INT(create_env(&s, "clash", "cloud-only", "{\"project\": \"e2e-conflict-1\"}"), 0);
	id = run_to_end(&s, "clash", "apply", 300, st, sizeof(st));
	CHECK_STR(st, "failed");
	snprintf(path, sizeof(path), "/api/v1/runs/%lld", id);
	CHECK_INT(get(&s, path, &r), 0);
	CHECK(r.body != NULL && strstr(r.body, "\"conflict\"") != NULL &&
	      strstr(r.body, "does not belong to environment clash") != NULL);
	res_free(&r);
	id = run_to_end(&s, "clash", "destroy", 300, st, sizeof(st));
	CHECK_STR(st, "succeeded");
	/* The other VM is still there; our cluster and rule are gone. */
	CHECK_INT(cloud_count("e2e-conflict-1", "instances"), 1);
	CHECK_INT(cloud_count("e2e-conflict-1", "clusters"), 0);
	CHECK_INT(cloud_count("e2e-conflict-1", "firewalls"), 0);

	/* Ours, deleted out of band before destroy. */
	CHECK_INT(create_env(&s, "gone", "cloud-only", "{\"project\": \"e2e-gone-1\"}"), 0);
	id = run_to_end(&s, "gone", "apply", 300, st, sizeof(st));
	CHECK_STR(st, "succeeded");
	snprintf(url, sizeof(url), "%sprojects/e2e-gone-1/zones/us-west2-a/instances/istio-gce",
		 hx_endpoint(&sb, "compute"));
	CHECK_INT(hx_http("DELETE", url, sb.token, NULL, NULL), 200);
	snprintf(url, sizeof(url), "%sprojects/e2e-gone-1/global/firewalls/k8s-to-istio-gce",
		 hx_endpoint(&sb, "compute"));
	CHECK_INT(hx_http("DELETE", url, sb.token, NULL, NULL), 200);
	id = run_to_end(&s, "gone", "destroy", 300, st, sizeof(st));
	CHECK_STR(st, "succeeded");
	CHECK_INT(cloud_count("e2e-gone-1", "instances"), 0);
	CHECK_INT(cloud_count("e2e-gone-1", "clusters"), 0);
	srv_stop(&s, 0);
}

int
main(void)
{
	char tmp[256];
	const char *extra[8];
	int n = 0;
	struct stat st;

	bin = getenv("OUTRIGGER_BIN") != NULL ? getenv("OUTRIGGER_BIN") : "build/outrigger";
	if (geteuid() != 0 || !have("ssh") || !have("openssl") || !have("sqlite3")) {
		fprintf(stderr, "skip: the rollout test needs root (VMs are sshd processes in "
				"namespaces), ssh, openssl and sqlite3\n");
		check_skipped = 1;
		return check_done("e2e");
	}
	if (hx_isolate_network() != 0) {
		fprintf(stderr, "cannot isolate the network\n");
		return 1;
	}
	if (hx_tmpdir(tmp, sizeof(tmp), "outrigger-e2e") != 0)
		return 1;
	snprintf(sbdir, sizeof(sbdir), "%s/sandbox", tmp);
	snprintf(catalog, sizeof(catalog), "%s/products.json", tmp);
	hx_write(catalog, catalog_json);
	extra[n++] = "--catalog";
	extra[n++] = catalog;
	/* Every request the product sends must pass Google's documents. */
	if (stat("../shared/spec", &st) == 0) {
		extra[n++] = "--discovery";
		extra[n++] = "../shared/spec";
	} else {
		fprintf(stderr, "note: ../shared/spec is absent: requests are not checked against "
				"Google's discovery documents in this run\n");
	}
	extra[n] = NULL;
	if (hx_sandbox_start_args(&sb, bin, sbdir, 0.01, extra) != 0) {
		fprintf(stderr, "the sandbox did not start\n");
		return 1;
	}
	snprintf(ep_file, sizeof(ep_file), "%s/endpoints.json", sbdir);

	RUN(t_preflight_refuses);
	RUN(t_legacy_rollout);
	RUN(t_current_rollout);
	RUN(t_quota_then_retry);
	RUN(t_killed_mid_rollout);
	RUN(t_flaky_cloud);
	RUN(t_conflict_and_gone);

	hx_sandbox_stop(&sb);
	hx_rmrf(tmp);
	return check_done("e2e");
}

/*
 * test_k8s.c - the product's Kubernetes client, through the real step
 * runner and plugin loader, against a GKE cluster of the sandbox:
 * server-side apply of our own manifest and of both upstream Online
 * Boutique releases (read in place from ../shared/fixtures, skipped with a
 * reason when absent), a second apply that changes nothing, a CRD and its
 * object in one text, waits for a Deployment and a LoadBalancer address,
 * delete, errors that name their document, YAML errors, retries against a
 * dead endpoint; kubectl checks the results where that is cheap.  Before
 * all that, ydoc (the YAML reader) on its edge cases.
 *
 * Environment: OUTRIGGER_BIN (default build/outrigger, the sandbox) and
 * OUTRIGGER_STEP (default build/outrigger-step).  Run from the repository
 * root.  As root it moves into a network namespace with only loopback.
 */
#define CHECK_MAIN
#include "check.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "ydoc.h"

#define FIXTURES "../shared/fixtures/online-boutique"
#define PROJECT "k8s-test-project"
#define ZONE "us-west2-a"
#define KUBECTL "/usr/bin/kubectl"

static char tmp[256];
static char plugins_dir[4096];
static const char *step_bin;
static struct hx_sandbox sb;
static char endpoint[256];
static char *ca_b64;		/* as GKE gives it */
static int cluster_up;
static char kubeconfig[600];

/* ---- ydoc --------------------------------------------------------------- */

static json_t *
load1(const char *text)
{
	json_t *docs = NULL, *d;
	struct or_err err;

	if (ydoc_load(text, strlen(text), &docs, NULL, &err) != OR_OK) {
		fprintf(stderr, "    ydoc: %s\n", err.message);
		return NULL;
	}
	d = json_incref(json_array_get(docs, 0));
	json_decref(docs);
	return d;
}

static void
t_ydoc_scalars(void)
{
	json_t *d = load1("a: 1\nb: \"1\"\nc: yes\nd: 'true'\ne: ~\nf: 0x1F\ng: 1.5\n"
			  "h: 010\ni: 1_000\nj: !!str 5\nk: !!int \"7\"\nl: hello world\n"
			  "m: \"\"\nempty:\no: -3\np: 1e3\nq: .inf\nr: 2001-12-14\n"
			  "s: 12345678901234567890\nt: Off\nu: 0o17\nv: +12\nw: 1.2.3\n"
			  "x: !!float 2\nnul: null\nz: NO\ny: 1\n");

	CHECK(d != NULL);
	if (d == NULL)
		return;
	CHECK_INT(json_integer_value(json_object_get(d, "a")), 1);
	CHECK(json_is_integer(json_object_get(d, "a")));
	CHECK_STR(json_string_value(json_object_get(d, "b")), "1");
	CHECK(json_is_true(json_object_get(d, "c")));
	CHECK_STR(json_string_value(json_object_get(d, "d")), "true");
	CHECK(json_is_null(json_object_get(d, "e")));
	CHECK_INT(json_integer_value(json_object_get(d, "f")), 31);
	CHECK(json_is_real(json_object_get(d, "g")) && json_real_value(json_object_get(d, "g")) == 1.5);
	CHECK_INT(json_integer_value(json_object_get(d, "h")), 8);
	CHECK_INT(json_integer_value(json_object_get(d, "i")), 1000);
	CHECK_STR(json_string_value(json_object_get(d, "j")), "5");
	CHECK_INT(json_integer_value(json_object_get(d, "k")), 7);
	CHECK_STR(json_string_value(json_object_get(d, "l")), "hello world");
	CHECK_STR(json_string_value(json_object_get(d, "m")), "");
	CHECK(json_is_null(json_object_get(d, "empty")));
	CHECK_INT(json_integer_value(json_object_get(d, "o")), -3);
	CHECK(json_is_real(json_object_get(d, "p")) && json_real_value(json_object_get(d, "p")) == 1000.0);
	CHECK_STR(json_string_value(json_object_get(d, "q")), ".inf");
	CHECK_STR(json_string_value(json_object_get(d, "r")), "2001-12-14");
	CHECK(json_is_real(json_object_get(d, "s")));
	CHECK(json_is_false(json_object_get(d, "t")));
	CHECK_INT(json_integer_value(json_object_get(d, "u")), 15);
	CHECK_INT(json_integer_value(json_object_get(d, "v")), 12);
	CHECK_STR(json_string_value(json_object_get(d, "w")), "1.2.3");
	CHECK(json_is_real(json_object_get(d, "x")));
	CHECK(json_is_null(json_object_get(d, "nul")));
	CHECK(json_is_false(json_object_get(d, "z")));
	/* go-yaml v2 (kubectl) reads a key y as the boolean true: so do we. */
	CHECK_INT(json_integer_value(json_object_get(d, "true")), 1);
	json_decref(d);
}

static void
t_ydoc_blocks_and_keys(void)
{
	json_t *d = load1("# a comment\nlit: |\n  line one\n  line two\n"
			  "fold: >-\n  folded\n  text\nkeep: |+\n  x\n\n"
			  "80: port\ntrue: t\nlist: [1, \"2\", three]\n"
			  "nested:\n  - name: a\n    value: \"08\"\n  - {name: b, value: 9}\n");

	CHECK(d != NULL);
	if (d == NULL)
		return;
	CHECK_STR(json_string_value(json_object_get(d, "lit")), "line one\nline two\n");
	CHECK_STR(json_string_value(json_object_get(d, "fold")), "folded text");
	CHECK_STR(json_string_value(json_object_get(d, "keep")), "x\n\n");
	CHECK_STR(json_string_value(json_object_get(d, "80")), "port");
	CHECK_STR(json_string_value(json_object_get(d, "true")), "t");
	CHECK_INT(json_integer_value(json_array_get(json_object_get(d, "list"), 0)), 1);
	CHECK_STR(json_string_value(json_array_get(json_object_get(d, "list"), 1)), "2");
	CHECK_STR(json_string_value(json_array_get(json_object_get(d, "list"), 2)), "three");
	CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(d, "nested"), 0),
						    "value")),
		  "08");
	CHECK_INT(json_integer_value(json_object_get(json_array_get(json_object_get(d, "nested"), 1),
						     "value")),
		  9);
	json_decref(d);
}

static void
t_ydoc_anchors(void)
{
	json_t *d = load1("base: &b {cpu: 100m, memory: 64Mi}\n"
			  "copy: *b\n"
			  "merged:\n  <<: *b\n  memory: 128Mi\n"
			  "many:\n  <<: [{x: 1}, {x: 2, w: 3}]\n"
			  "seq: &s [1, 2]\nseq2: *s\n");

	CHECK(d != NULL);
	if (d == NULL)
		return;
	CHECK_STR(json_string_value(json_object_get(json_object_get(d, "copy"), "cpu")), "100m");
	CHECK_STR(json_string_value(json_object_get(json_object_get(d, "merged"), "memory")),
		  "128Mi");
	CHECK_STR(json_string_value(json_object_get(json_object_get(d, "merged"), "cpu")), "100m");
	CHECK(json_object_get(json_object_get(d, "merged"), "<<") == NULL);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(d, "many"), "x")), 1);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(d, "many"), "w")), 3);
	CHECK_INT(json_array_size(json_object_get(d, "seq2")), 2);
	/* An alias is a copy: changing one does not change the other. */
	json_object_set_new(json_object_get(d, "copy"), "cpu", json_string("1"));
	CHECK_STR(json_string_value(json_object_get(json_object_get(d, "base"), "cpu")), "100m");
	json_decref(d);
}

static void
t_ydoc_documents(void)
{
	const char *text = "---\n# only a comment\n---\napiVersion: v1\nkind: A\n---\n---\n"
			   "kind: B\n...\n---\nnull\n---\nkind: C\n---\n";
	json_t *docs = NULL, *where = NULL;
	struct or_err err;

	CHECK_INT(ydoc_load(text, strlen(text), &docs, &where, &err), OR_OK);
	CHECK_INT(json_array_size(docs), 3);
	CHECK_STR(json_string_value(json_object_get(json_array_get(docs, 0), "kind")), "A");
	CHECK_STR(json_string_value(json_object_get(json_array_get(docs, 2), "kind")), "C");
	/* Numbers count every document of the text; lines are 1-based. */
	CHECK_INT(json_integer_value(json_array_get(json_array_get(where, 0), 0)), 2);
	CHECK_INT(json_integer_value(json_array_get(json_array_get(where, 0), 1)), 4);
	CHECK_INT(json_integer_value(json_array_get(json_array_get(where, 1), 0)), 4);
	CHECK_INT(json_integer_value(json_array_get(json_array_get(where, 2), 0)), 6);
	json_decref(docs);
	json_decref(where);
	/* An empty text is no documents, not an error. */
	CHECK_INT(ydoc_load("", 0, &docs, NULL, &err), OR_OK);
	CHECK_INT(json_array_size(docs), 0);
	json_decref(docs);
}

static void
t_ydoc_errors(void)
{
	struct or_err err;
	json_t *docs = NULL;
	const char *t;
	char deep[1000];
	size_t i;

	t = "a: [1, 2\n";
	CHECK_INT(ydoc_load(t, strlen(t), &docs, NULL, &err), OR_E_MALFORMED);
	CHECK(docs == NULL);
	CHECK(strstr(err.message, "YAML document 1, line") != NULL);
	t = "a: 1\n---\nb: 2\n---\nkind: x\n  bad: indentation: here\n";
	CHECK_INT(ydoc_load(t, strlen(t), &docs, NULL, &err), OR_E_MALFORMED);
	CHECK(strstr(err.message, "YAML document 3, line 6") != NULL);
	fprintf(stderr, "    (error reads: %s)\n", err.message);
	t = "a: 1\nb: 2\na: 3\n";
	CHECK_INT(ydoc_load(t, strlen(t), &docs, NULL, &err), OR_E_MALFORMED);
	CHECK(strstr(err.message, "line 3") != NULL && strstr(err.message, "\"a\" already") != NULL);
	t = "a: *nope\n";
	CHECK_INT(ydoc_load(t, strlen(t), &docs, NULL, &err), OR_E_MALFORMED);
	CHECK(strstr(err.message, "nope") != NULL);
	t = "a: !!int twelve\n";
	CHECK_INT(ydoc_load(t, strlen(t), &docs, NULL, &err), OR_E_MALFORMED);
	t = "? [a, b]\n: c\n";
	CHECK_INT(ydoc_load(t, strlen(t), &docs, NULL, &err), OR_E_MALFORMED);
	t = "a: \"tab\\x\"\n";
	CHECK_INT(ydoc_load(t, strlen(t), &docs, NULL, &err), OR_E_MALFORMED);
	/* Too deep. */
	for (i = 0; i < 300; i++)
		deep[i] = '[';
	deep[300] = '\0';
	CHECK(ydoc_load(deep, strlen(deep), &docs, NULL, &err) != OR_OK);
	/* A billion laughs fails on the value budget, fast. */
	t = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
	    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
	    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
	    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
	    "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
	    "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
	    "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
	CHECK_INT(ydoc_load(t, strlen(t), &docs, NULL, &err), OR_E_TOOLARGE);
	CHECK(docs == NULL);
	/* Too large a text is refused before parsing. */
	CHECK_INT(ydoc_load("a: 1", (size_t)YDOC_MAX_INPUT + 1, &docs, NULL, &err), OR_E_TOOLARGE);
}

/* Every document of the upstream files is an object with apiVersion, kind
 * and a name, in the numbers SOURCE.txt gives. */
static void
check_fixture(const char *ver, const char *file, size_t want)
{
	char path[512];
	char *text;
	json_t *docs = NULL, *d;
	struct or_err err;
	size_t i;

	snprintf(path, sizeof(path), FIXTURES "/%s/%s", ver, file);
	text = hx_slurp(path);
	CHECK(text != NULL);
	if (text == NULL)
		return;
	CHECK_INT(ydoc_load(text, strlen(text), &docs, NULL, &err), OR_OK);
	CHECK_INT(json_array_size(docs), want);
	json_array_foreach(docs, i, d) {
		CHECK(json_string_value(json_object_get(d, "apiVersion")) != NULL);
		CHECK(json_string_value(json_object_get(d, "kind")) != NULL);
		CHECK(json_string_value(json_object_get(json_object_get(d, "metadata"), "name")) != NULL);
	}
	json_decref(docs);
	free(text);
}

static void
t_ydoc_upstream(void)
{
	struct stat st;
	json_t *d;

	if (stat(FIXTURES, &st) != 0)
		SKIP("../shared/fixtures/online-boutique is not here (a user's clone has none)");
	check_fixture("v0.2.0", "kubernetes-manifests.yaml", 24);
	check_fixture("v0.2.0", "istio-manifests.yaml", 5);
	check_fixture("v0.10.6", "kubernetes-manifests.yaml", 35);
	check_fixture("v0.10.6", "istio-manifests.yaml", 5);
	/* Types as kubectl reads them: a port is a number, an env value a string. */
	d = load1("ports:\n- containerPort: 8080\nenv:\n- name: PORT\n  value: \"8080\"\n");
	CHECK(d != NULL && json_is_integer(json_object_get(json_array_get(json_object_get(d, "ports"), 0),
							   "containerPort")));
	CHECK(d != NULL && json_is_string(json_object_get(json_array_get(json_object_get(d, "env"), 0),
							  "value")));
	json_decref(d);
}

/* ---- the cluster ---------------------------------------------------------- */

static int
cluster_create(void)
{
	const char *base = hx_endpoint(&sb, "container");
	char url[1024], *body = NULL;
	json_t *cl = NULL;
	long st;
	int i;

	if (base == NULL)
		return -1;
	snprintf(url, sizeof(url), "%sv1/projects/%s/locations/%s/clusters", base, PROJECT, ZONE);
	st = hx_http("POST", url, sb.token,
		     "{\"cluster\": {\"name\": \"probe\", \"nodePools\": [{\"name\": \"default-pool\", "
		     "\"initialNodeCount\": 1, \"config\": {\"machineType\": \"n1-standard-2\", "
		     "\"imageType\": \"COS_CONTAINERD\"}}]}}",
		     &body);
	free(body);
	if (st != 200) {
		fprintf(stderr, "    cluster create: HTTP %ld\n", st);
		return -1;
	}
	snprintf(url, sizeof(url), "%sv1/projects/%s/locations/%s/clusters/probe", base, PROJECT,
		 ZONE);
	for (i = 0; i < 600; i++) {
		st = hx_http("GET", url, sb.token, NULL, &body);
		cl = st == 200 ? json_loads(body, 0, NULL) : NULL;
		free(body);
		if (cl != NULL && json_string_value(json_object_get(cl, "status")) != NULL &&
		    strcmp(json_string_value(json_object_get(cl, "status")), "RUNNING") == 0)
			break;
		json_decref(cl);
		cl = NULL;
		usleep(100000);
	}
	if (cl == NULL)
		return -1;
	snprintf(endpoint, sizeof(endpoint), "%s", json_string_value(json_object_get(cl, "endpoint")));
	ca_b64 = strdup(json_string_value(json_object_get(json_object_get(cl, "masterAuth"),
							  "clusterCaCertificate")));
	json_decref(cl);
	return 0;
}

/* A kubeconfig for kubectl with the same endpoint, CA and token. */
static void
write_kubeconfig(void)
{
	char text[16384];

	snprintf(kubeconfig, sizeof(kubeconfig), "%s/kubeconfig", tmp);
	snprintf(text, sizeof(text),
		 "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
		 "    server: https://%s\n    certificate-authority-data: %s\n"
		 "users:\n- name: u\n  user:\n    token: %s\ncontexts:\n- name: x\n"
		 "  context: {cluster: c, user: u}\ncurrent-context: x\n",
		 endpoint, ca_b64, sb.token);
	hx_write(kubeconfig, text);
}

/* kubectl ARGS with our kubeconfig; output into *out (caller frees). */
static int
kubectl(char **out, const char *args)
{
	char cmd[4096], chunk[4096];
	size_t len = 0, n;
	FILE *p;
	int st;

	*out = calloc(1, 1);
	if (access(KUBECTL, X_OK) != 0)
		return -2;
	snprintf(cmd, sizeof(cmd), "timeout 60 " KUBECTL " --kubeconfig %s %s 2>&1", kubeconfig,
		 args);
	p = popen(cmd, "r");
	if (p == NULL)
		return -1;
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0) {
		char *q = realloc(*out, len + n + 1);

		if (q == NULL)
			break;
		*out = q;
		memcpy(*out + len, chunk, n);
		len += n;
		(*out)[len] = '\0';
	}
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- kubeprobe jobs ------------------------------------------------------- */

static json_t *
job(const char *mode)
{
	json_t *provider = json_deep_copy(sb.endpoints);

	json_object_set_new(provider, "name", json_string("sandbox"));
	return json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:s, s:s}, "
			 "s:{}, s:{}, s:o}",
			 "action", "apply", "plugin", "kubeprobe", "plugins_dir", plugins_dir,
			 "inputs", "mode", mode, "endpoint", endpoint, "ca_certificate", ca_b64,
			 "info", "environment", "test", "provider", "sandbox", "step", "probe", "run",
			 "1", "attempt", "1", "plugin", "kubeprobe", "state", "secrets", "provider",
			 provider);
}

static void
in_set(json_t *j, const char *key, const char *value)
{
	json_object_set_new(json_object_get(j, "inputs"), key, json_string(value));
}

/* Run j (consumed); prints the log when the result is not `want`. */
static void
run_job(json_t *j, struct hx_step *r, const char *want)
{
	hx_step_run(step_bin, j, 240, r);
	json_decref(j);
	/* Under ASan a leak or an error shows as a non-zero exit. */
	CHECK_INT(r->exit_status, 0);
	if (strcmp(r->status, want) != 0)
		fprintf(stderr, "    step: %s (want %s) %s: %s\n    log:\n%s", r->status, want,
			r->code, r->message, r->log);
}

static const char *
out_str(struct hx_step *r, const char *key)
{
	return json_string_value(json_object_get(r->outputs, key));
}

static int
apply_text(const char *mode, const char *yaml, const char *file, const char *ns,
	   struct hx_step *r, const char *want)
{
	json_t *j = job(mode);

	if (yaml != NULL)
		in_set(j, "yaml", yaml);
	if (file != NULL)
		in_set(j, "yaml_file", file);
	if (ns != NULL)
		in_set(j, "namespace", ns);
	run_job(j, r, want);
	return out_str(r, "count") != NULL ? atoi(out_str(r, "count")) : -1;
}

/* GET path through the client; the parsed body (caller decrefs) or NULL;
 * *status gets the HTTP status. */
static json_t *
get_obj(const char *path, long *status)
{
	struct hx_step r;
	json_t *j = job("get"), *o = NULL;

	in_set(j, "path", path);
	run_job(j, &r, "ok");
	*status = out_str(&r, "status") != NULL ? atol(out_str(&r, "status")) : 0;
	if (out_str(&r, "body") != NULL)
		o = json_loads(out_str(&r, "body"), 0, NULL);
	hx_step_free(&r);
	return o;
}

static const char *
rv(json_t *o)
{
	return json_string_value(json_object_get(json_object_get(o, "metadata"), "resourceVersion"));
}

static int
wait_for(const char *what, const char *ns, const char *name, const char *timeout_ms,
	 struct hx_step *r, const char *want)
{
	json_t *j = job("wait");

	in_set(j, "what", what);
	in_set(j, "namespace", ns);
	if (name != NULL)
		in_set(j, "name", name);
	in_set(j, "timeout_ms", timeout_ms);
	run_job(j, r, want);
	return strcmp(r->status, want) == 0 ? 0 : -1;
}

#define NEED_CLUSTER()                                                         \
	do {                                                                   \
		if (!cluster_up)                                               \
			SKIP("no sandbox cluster (see the first failure above)"); \
	} while (0)

static const char *own_manifest =
	"# Our own small app: a namespace, a setting, a web server behind a\n"
	"# load balancer.\n"
	"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: probe\n"
	"---\n"
	"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: probe\n"
	"data:\n  mode: fast\n  replicas: \"2\"\n  note: |\n    two lines\n    of text\n"
	"---\n"
	"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: &l {app: web}\n"
	"spec:\n  replicas: 2\n  selector:\n    matchLabels: *l\n  template:\n    metadata:\n"
	"      labels: *l\n    spec:\n      containers:\n      - name: web\n"
	"        image: nginx:1.25\n        ports:\n        - containerPort: 80\n"
	"---\n"
	"apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  type: LoadBalancer\n"
	"  selector: {app: web}\n  ports:\n  - name: http\n    port: 80\n    targetPort: 80\n";

static void
t_open_refusals(void)
{
	struct hx_step r;
	json_t *j;

	NEED_CLUSTER();
	j = job("open");
	json_object_set_new(json_object_get(j, "inputs"), "endpoint",
			    json_sprintf("http://%s", endpoint));
	run_job(j, &r, "failed");
	CHECK_STR(r.status, "failed");
	CHECK(strstr(r.message, "https") != NULL);
	hx_step_free(&r);
	j = job("open");
	in_set(j, "ca_certificate", "not a certificate at all!");
	run_job(j, &r, "failed");
	CHECK(strstr(r.message, "neither PEM nor base64") != NULL);
	hx_step_free(&r);
}

static void
t_apply_own(void)
{
	struct hx_step r;
	json_t *cm, *dep;
	long st;
	char *out;
	int rc;

	NEED_CLUSTER();
	CHECK_INT(apply_text("apply", own_manifest, NULL, "probe", &r, "ok"), 4);
	CHECK(strstr(r.log, "applied Deployment probe/web") != NULL);
	CHECK(strstr(r.log, "applied Namespace probe") != NULL);
	/* Never the token in the log. */
	CHECK(strstr(r.log, sb.token) == NULL);
	hx_step_free(&r);
	cm = get_obj("/api/v1/namespaces/probe/configmaps/settings", &st);
	CHECK_INT(st, 200);
	CHECK_STR(json_string_value(json_object_get(json_object_get(cm, "data"), "replicas")), "2");
	CHECK_STR(json_string_value(json_object_get(json_object_get(cm, "data"), "note")),
		  "two lines\nof text\n");
	dep = get_obj("/apis/apps/v1/namespaces/probe/deployments/web", &st);
	CHECK_INT(st, 200);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(dep, "spec"), "replicas")), 2);
	/* The field manager is ours. */
	{
		char *mf = json_dumps(json_object_get(json_object_get(dep, "metadata"), "managedFields"), 0);

		CHECK(mf != NULL && strstr(mf, "\"outrigger\"") != NULL);
		free(mf);
	}
	/* kubectl sees what we made. */
	rc = kubectl(&out, "get deployment web -n probe -o jsonpath={.spec.template.spec.containers[0].image}");
	if (rc != -2) {
		CHECK_INT(rc, 0);
		CHECK_STR(out, "nginx:1.25");
	}
	free(out);
	json_decref(cm);
	json_decref(dep);
}

static void
t_apply_again_unchanged(void)
{
	struct hx_step r;
	json_t *a, *b, *c, *d;
	long st;

	NEED_CLUSTER();
	a = get_obj("/api/v1/namespaces/probe/configmaps/settings", &st);
	b = get_obj("/apis/apps/v1/namespaces/probe/deployments/web", &st);
	CHECK_INT(apply_text("apply", own_manifest, NULL, "probe", &r, "ok"), 4);
	hx_step_free(&r);
	c = get_obj("/api/v1/namespaces/probe/configmaps/settings", &st);
	d = get_obj("/apis/apps/v1/namespaces/probe/deployments/web", &st);
	CHECK(rv(a) != NULL && rv(c) != NULL && strcmp(rv(a), rv(c)) == 0);
	/* The Deployment's status moves on its own; its generation must not. */
	CHECK_INT(json_integer_value(json_object_get(json_object_get(b, "metadata"), "generation")),
		  json_integer_value(json_object_get(json_object_get(d, "metadata"), "generation")));
	json_decref(a);
	json_decref(b);
	json_decref(c);
	json_decref(d);
}

static void
t_wait_deployment(void)
{
	struct hx_step r;
	char *out;
	int rc;

	NEED_CLUSTER();
	CHECK_INT(wait_for("deployment", "probe", "web", "60000", &r, "ok"), 0);
	CHECK(strstr(r.log, "deployment probe/web: 2/2 available") != NULL);
	hx_step_free(&r);
	rc = kubectl(&out, "get deployment web -n probe -o jsonpath={.status.availableReplicas}");
	if (rc != -2)
		CHECK_STR(out, "2");
	free(out);
	/* A Deployment that never comes: the wait times out, saying why. */
	CHECK_INT(wait_for("deployment", "probe", "never", "2500", &r, "failed"), 0);
	CHECK_STR(r.code, "timeout");
	CHECK(strstr(r.message, "deployment probe/never: not found yet") != NULL);
	CHECK(strstr(r.log, "waiting for deployment probe/never") != NULL);
	hx_step_free(&r);
	CHECK_INT(wait_for("pods", "probe", "web", "1000", &r, "failed"), 0);
	CHECK(strstr(r.message, "unknown condition") != NULL);
	hx_step_free(&r);
}

static void
t_wait_loadbalancer(void)
{
	struct hx_step r;
	char *out;
	int rc;

	NEED_CLUSTER();
	CHECK_INT(wait_for("loadbalancer", "probe", "web", "60000", &r, "ok"), 0);
	CHECK(out_str(&r, "out") != NULL && strncmp(out_str(&r, "out"), "127.30.", 7) == 0);
	rc = kubectl(&out, "get service web -n probe -o jsonpath={.status.loadBalancer.ingress[0].ip}");
	if (rc != -2)
		CHECK_STR(out, out_str(&r, "out") != NULL ? out_str(&r, "out") : "");
	free(out);
	hx_step_free(&r);
	/* A ClusterIP service never gets one: said at once. */
	CHECK_INT(wait_for("loadbalancer", "default", "kubernetes", "60000", &r, "failed"), 0);
	CHECK(strstr(r.message, "not LoadBalancer") != NULL);
	hx_step_free(&r);
}

static const char *crd_yaml =
	"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
	"metadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n"
	"  scope: Namespaced\n  names:\n    plural: widgets\n    singular: widget\n"
	"    kind: Widget\n    listKind: WidgetList\n  versions:\n  - name: v1\n"
	"    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n"
	"        type: object\n        x-kubernetes-preserve-unknown-fields: true\n"
	"---\n"
	"apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: sprocket\n"
	"spec:\n  size: 3\n";

static void
t_crd_then_object(void)
{
	struct hx_step r;
	json_t *w;
	long st;

	NEED_CLUSTER();
	CHECK_INT(apply_text("apply", crd_yaml, NULL, "probe", &r, "ok"), 2);
	hx_step_free(&r);
	w = get_obj("/apis/example.com/v1/namespaces/probe/widgets/sprocket", &st);
	CHECK_INT(st, 200);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(w, "spec"), "size")), 3);
	json_decref(w);
	CHECK_INT(wait_for("crd", "", "widgets.example.com", "30000", &r, "ok"), 0);
	hx_step_free(&r);
	/* Delete: the object, then its CRD (reverse order). */
	CHECK_INT(apply_text("delete", crd_yaml, NULL, "probe", &r, "ok"), 2);
	CHECK(r.log != NULL && strstr(r.log, "deleted Widget probe/sprocket") != NULL &&
	      strstr(r.log, "deleted Widget probe/sprocket") <
		      strstr(r.log, "deleted CustomResourceDefinition"));
	hx_step_free(&r);
	/* Again: everything is gone already, which is fine. */
	CHECK_INT(apply_text("delete", crd_yaml, NULL, "probe", &r, "ok"), 0);
	hx_step_free(&r);
}

static void
t_bad_documents(void)
{
	struct hx_step r;

	NEED_CLUSTER();
	/* The API server's own message, naming the document. */
	CHECK_INT(apply_text("apply",
			     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok1}\n---\n"
			     "# second\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n"
			     "  name: lost\n  namespace: no-such-namespace\n",
			     NULL, "probe", &r, "failed"),
		  -1);
	CHECK_STR(r.code, "kubernetes");
	CHECK(strstr(r.message, "document 3 (ConfigMap no-such-namespace/lost): ") != NULL);
	CHECK(strstr(r.message, "not found") != NULL);
	fprintf(stderr, "    (error reads: %s)\n", r.message);
	hx_step_free(&r);
	/* A document without a name. */
	apply_text("apply", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", NULL, "probe", &r,
		   "failed");
	CHECK(strstr(r.message, "document 1 (ConfigMap (no name)): metadata.name is required") !=
	      NULL);
	hx_step_free(&r);
	/* A kind nobody serves. */
	apply_text("apply", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok2}\n---\n"
			    "apiVersion: nowhere.example.com/v1\nkind: Gadget\nmetadata: {name: g}\n",
		   NULL, "probe", &r, "failed");
	CHECK(strstr(r.message, "document 2 (Gadget g): no matches for kind \"Gadget\"") != NULL);
	hx_step_free(&r);
	/* Not an object. */
	apply_text("apply", "- a\n- b\n", NULL, "probe", &r, "failed");
	CHECK(strstr(r.message, "document 1 (line 1): not a Kubernetes object") != NULL);
	hx_step_free(&r);
}

static void
t_yaml_errors(void)
{
	struct hx_step r;

	NEED_CLUSTER();
	apply_text("apply", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n"
			    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b\ndata: {}\n",
		   NULL, "probe", &r, "failed");
	CHECK_STR(r.status, "failed");
	CHECK(strstr(r.message, "YAML document 2, line") != NULL);
	fprintf(stderr, "    (error reads: %s)\n", r.message);
	/* Nothing was applied: the text is read whole before the first call. */
	CHECK(strstr(r.log, "applied") == NULL);
	hx_step_free(&r);
}

static void
t_delete_own(void)
{
	struct hx_step r;
	long st;
	json_t *o;
	char *out;
	int rc;

	NEED_CLUSTER();
	CHECK_INT(apply_text("delete", own_manifest, NULL, "probe", &r, "ok"), 4);
	/* Reverse order: the Service goes before the Namespace. */
	CHECK(strstr(r.log, "deleted Service probe/web") != NULL &&
	      strstr(r.log, "deleted Namespace probe") != NULL &&
	      strstr(r.log, "deleted Service probe/web") < strstr(r.log, "deleted Namespace probe"));
	hx_step_free(&r);
	o = get_obj("/api/v1/namespaces/probe/configmaps/settings", &st);
	CHECK(st == 404 || st == 200); /* 200 while the namespace terminates */
	json_decref(o);
	o = get_obj("/apis/apps/v1/namespaces/probe/deployments/web", &st);
	CHECK_INT(st, 404);
	json_decref(o);
	rc = kubectl(&out, "get service web -n probe");
	if (rc != -2)
		CHECK(rc != 0 && strstr(out, "NotFound") != NULL);
	free(out);
}

/* One upstream release: apply into its own namespace, wait for every
 * Deployment, a second apply changes nothing, delete. */
static void
boutique(const char *ver, const char *ns, int docs)
{
	char file[512], *out;
	struct hx_step r;
	json_t *a, *b;
	long st;
	int rc;

	/* The runner's cwd is ours, but an absolute path says it plainly. */
	if (realpath(FIXTURES, file) == NULL) {
		CHECK(0);
		return;
	}
	snprintf(file + strlen(file), sizeof(file) - strlen(file), "/%s/kubernetes-manifests.yaml",
		 ver);
	{
		char nsdoc[256];

		snprintf(nsdoc, sizeof(nsdoc), "apiVersion: v1\nkind: Namespace\nmetadata:\n"
					       "  name: %s\n  labels: {istio-injection: enabled}\n",
			 ns);
		CHECK_INT(apply_text("apply", nsdoc, NULL, NULL, &r, "ok"), 1);
		hx_step_free(&r);
	}
	CHECK_INT(apply_text("apply", NULL, file, ns, &r, "ok"), docs);
	hx_step_free(&r);
	CHECK_INT(wait_for("deployments", ns, NULL, "120000", &r, "ok"), 0);
	CHECK(strstr(r.log, "12/12 deployments available") != NULL);
	hx_step_free(&r);
	{
		char path[256];

		snprintf(path, sizeof(path), "/apis/apps/v1/namespaces/%s/deployments/frontend", ns);
		a = get_obj(path, &st);
		CHECK_INT(apply_text("apply", NULL, file, ns, &r, "ok"), docs);
		hx_step_free(&r);
		b = get_obj(path, &st);
		CHECK(rv(a) != NULL && rv(b) != NULL &&
		      json_integer_value(json_object_get(json_object_get(a, "metadata"), "generation")) ==
			      json_integer_value(json_object_get(json_object_get(b, "metadata"),
								 "generation")));
		json_decref(a);
		json_decref(b);
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services/frontend", ns);
		a = get_obj(path, &st);
		CHECK_INT(st, 200);
		json_decref(a);
	}
	{
		char args[256];

		snprintf(args, sizeof(args), "get deployments -n %s --no-headers", ns);
		rc = kubectl(&out, args);
		if (rc != -2) {
			int lines = 0;

			for (char *p = out; *p != '\0'; p++)
				lines += *p == '\n';
			CHECK_INT(lines, 12);
		}
		free(out);
	}
	CHECK_INT(apply_text("delete", NULL, file, ns, &r, "ok"), docs);
	hx_step_free(&r);
}

static void
t_boutique_v0_2_0(void)
{
	struct stat st;

	NEED_CLUSTER();
	if (stat(FIXTURES "/v0.2.0/kubernetes-manifests.yaml", &st) != 0)
		SKIP("../shared/fixtures/online-boutique/v0.2.0 is not here (a user's clone has none)");
	boutique("v0.2.0", "shop-old", 24);
}

static void
t_boutique_v0_10_6(void)
{
	struct stat st;

	NEED_CLUSTER();
	if (stat(FIXTURES "/v0.10.6/kubernetes-manifests.yaml", &st) != 0)
		SKIP("../shared/fixtures/online-boutique/v0.10.6 is not here (a user's clone has none)");
	boutique("v0.10.6", "shop-new", 35);
}

/* Nobody listens: the client retries with backoff, a bounded number of
 * times, then says what happened. */
static void
t_retry_dead_endpoint(void)
{
	struct hx_step r;
	json_t *j;

	NEED_CLUSTER();
	j = job("get");
	in_set(j, "endpoint", "127.0.0.1:1");
	in_set(j, "path", "/api/v1/namespaces");
	run_job(j, &r, "failed");
	CHECK_STR(r.status, "failed");
	CHECK(strstr(r.log, "try 2 of 6") != NULL && strstr(r.log, "try 6 of 6") != NULL);
	CHECK(strstr(r.message, "https://127.0.0.1:1/api/v1/namespaces") != NULL);
	hx_step_free(&r);
	/* A broken CA: said so, and not retried. */
	j = job("get");
	in_set(j, "ca_certificate", "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2Vy\n"
				    "-----END CERTIFICATE-----\n");
	in_set(j, "path", "/api/v1/namespaces");
	run_job(j, &r, "failed");
	CHECK(strstr(r.log, "try 2 of") == NULL);
	CHECK(strstr(r.message, "CA certificate") != NULL);
	fprintf(stderr, "    (error reads: %s)\n", r.message);
	hx_step_free(&r);
	/* Another CA (the system's trust store is not consulted either). */
	{
		char cmd[1800], key[400], crt[400], *pem;

		snprintf(key, sizeof(key), "%s/other.key", tmp);
		snprintf(crt, sizeof(crt), "%s/other.crt", tmp);
		snprintf(cmd, sizeof(cmd),
			 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
			 "-subj /CN=other-ca -days 1 -keyout %s -out %s >/dev/null 2>&1",
			 key, crt);
		if (system(cmd) != 0 || (pem = hx_slurp(crt)) == NULL) {
			fprintf(stderr, "    (no openssl command: the other-CA case is left out)\n");
			return;
		}
		j = job("get");
		in_set(j, "ca_certificate", pem);
		in_set(j, "path", "/api/v1/namespaces");
		run_job(j, &r, "failed");
		CHECK(strstr(r.log, "try 2 of") == NULL);
		CHECK(strstr(r.message, "not signed by the cluster's CA") != NULL);
		fprintf(stderr, "    (error reads: %s)\n", r.message);
		hx_step_free(&r);
		free(pem);
	}
}

/* ---- the rollout's Kubernetes plugins ------------------------------------ */

static char rollout_dir[4096];

/* A job for plugins/NAME.so, action apply or destroy. */
static json_t *
pjob(const char *plugin, const char *action)
{
	json_t *j = job("");

	json_object_set_new(j, "plugin", json_string(plugin));
	json_object_set_new(j, "action", json_string(action));
	json_object_set_new(j, "plugins_dir", json_string(rollout_dir));
	json_object_set_new(json_object_get(j, "info"), "plugin", json_string(plugin));
	json_object_del(json_object_get(j, "inputs"), "mode");
	return j;
}

static void
in_json_set(json_t *j, const char *key, const char *json)
{
	json_object_set_new(json_object_get(j, "inputs"), key, json_loads(json, JSON_DECODE_ANY, NULL));
}

#define NEED_PLUGIN(name)                                                                  \
	do {                                                                               \
		NEED_CLUSTER();                                                            \
		if (access("plugins/" name ".so", R_OK) != 0)                             \
			SKIP("plugins/" name ".so is not built");                          \
	} while (0)

static void
t_plugin_admin_binding(void)
{
	struct hx_step r;
	json_t *j, *o;
	long st;
	char *mf;

	NEED_PLUGIN("cluster-admin-binding");
	j = pjob("cluster-admin-binding", "apply");
	in_set(j, "name", "cluster-admin-binding");
	run_job(j, &r, "ok");
	/* The account is the provider's service account (gcloud's core/account). */
	CHECK(out_str(&r, "user") != NULL && strstr(out_str(&r, "user"), "@") != NULL);
	hx_step_free(&r);
	o = get_obj("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/cluster-admin-binding", &st);
	CHECK_INT(st, 200);
	CHECK_STR(json_string_value(json_object_get(json_object_get(o, "roleRef"), "name")),
		  "cluster-admin");
	mf = json_dumps(json_object_get(o, "subjects"), 0);
	CHECK(mf != NULL && strstr(mf, "\"User\"") != NULL);
	free(mf);
	json_decref(o);
	/* Again: adopted, unchanged. */
	j = pjob("cluster-admin-binding", "apply");
	run_job(j, &r, "ok");
	hx_step_free(&r);
	j = pjob("cluster-admin-binding", "destroy");
	run_job(j, &r, "ok");
	hx_step_free(&r);
	o = get_obj("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/cluster-admin-binding", &st);
	CHECK_INT(st, 404);
	json_decref(o);
	j = pjob("cluster-admin-binding", "destroy");
	run_job(j, &r, "ok");
	CHECK(strstr(r.log, "already gone") != NULL);
	hx_step_free(&r);
	/* Someone else's binding of that name is neither taken nor deleted. */
	CHECK_INT(apply_text("apply",
			     "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
			     "metadata: {name: theirs}\nroleRef: {apiGroup: rbac.authorization.k8s.io, "
			     "kind: ClusterRole, name: view}\nsubjects: [{kind: User, name: someone, "
			     "apiGroup: rbac.authorization.k8s.io}]\n",
			     NULL, NULL, &r, "ok"),
		  1);
	hx_step_free(&r);
	j = pjob("cluster-admin-binding", "apply");
	in_set(j, "name", "theirs");
	run_job(j, &r, "failed");
	CHECK_STR(r.code, "conflict");
	hx_step_free(&r);
	j = pjob("cluster-admin-binding", "destroy");
	in_set(j, "name", "theirs");
	run_job(j, &r, "ok");
	hx_step_free(&r);
	o = get_obj("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/theirs", &st);
	CHECK_INT(st, 200);
	json_decref(o);
}

/* Stand-ins for the CRDs Istio and the Gateway API install, so that
 * istio-manifests.yaml has kinds to land in. */
static void
crd_doc(char *out, size_t size, const char *group, const char *kind, const char *plural,
	const char *versions)
{
	snprintf(out, size,
		 "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
		 "metadata: {name: %s.%s}\nspec:\n  group: %s\n  scope: Namespaced\n"
		 "  names: {kind: %s, plural: %s, singular: x%s, listKind: %sList}\n"
		 "  versions:\n%s---\n",
		 plural, group, group, kind, plural, plural, kind, versions);
}

static int
mesh_crds(void)
{
	static const char *v_istio =
		"  - {name: v1alpha3, served: true, storage: true, schema: {openAPIV3Schema: "
		"{type: object, x-kubernetes-preserve-unknown-fields: true}}}\n"
		"  - {name: v1beta1, served: true, storage: false, schema: {openAPIV3Schema: "
		"{type: object, x-kubernetes-preserve-unknown-fields: true}}}\n";
	static const char *v_gw =
		"  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: "
		"{type: object, x-kubernetes-preserve-unknown-fields: true}}}\n"
		"  - {name: v1beta1, served: true, storage: false, schema: {openAPIV3Schema: "
		"{type: object, x-kubernetes-preserve-unknown-fields: true}}}\n";
	char all[16384], one[2048];
	struct hx_step r;
	int n;

	all[0] = '\0';
	crd_doc(one, sizeof(one), "networking.istio.io", "Gateway", "gateways", v_istio);
	strncat(all, one, sizeof(all) - strlen(all) - 1);
	crd_doc(one, sizeof(one), "networking.istio.io", "VirtualService", "virtualservices", v_istio);
	strncat(all, one, sizeof(all) - strlen(all) - 1);
	crd_doc(one, sizeof(one), "networking.istio.io", "ServiceEntry", "serviceentries", v_istio);
	strncat(all, one, sizeof(all) - strlen(all) - 1);
	crd_doc(one, sizeof(one), "networking.istio.io", "WorkloadEntry", "workloadentries", v_istio);
	strncat(all, one, sizeof(all) - strlen(all) - 1);
	crd_doc(one, sizeof(one), "gateway.networking.k8s.io", "Gateway", "gateways", v_gw);
	strncat(all, one, sizeof(all) - strlen(all) - 1);
	crd_doc(one, sizeof(one), "gateway.networking.k8s.io", "HTTPRoute", "httproutes", v_gw);
	strncat(all, one, sizeof(all) - strlen(all) - 1);
	n = apply_text("apply", all, NULL, NULL, &r, "ok");
	hx_step_free(&r);
	return n == 6 ? 0 : -1;
}

/* boutique-deploy of one flow into ns, then mesh-register there. */
static void
boutique_flow(const char *flow, const char *version, const char *ns)
{
	struct hx_step r;
	json_t *j, *o;
	char path[300], addr[64];
	long st;

	j = pjob("boutique-deploy", "apply");
	in_set(j, "flow", flow);
	in_set(j, "namespace", ns);
	in_set(j, "version", version);
	in_set(j, "move_out", "productcatalogservice");
	in_json_set(j, "inject", "true");
	in_json_set(j, "istio_manifests", "true");
	run_job(j, &r, "ok");
	CHECK(out_str(&r, "vm_image") != NULL &&
	      strstr(out_str(&r, "vm_image"), "productcatalogservice") != NULL);
	CHECK_STR(out_str(&r, "namespace"), ns);
	CHECK_STR(out_str(&r, "gateway_service"),
		  strcmp(flow, "legacy") == 0 ? "istio-ingressgateway" : "istio-gateway-istio");
	CHECK_STR(out_str(&r, "gateway_namespace"), strcmp(flow, "legacy") == 0 ? "istio-system" : ns);
	hx_step_free(&r);
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s", ns);
	o = get_obj(path, &st);
	CHECK_STR(json_string_value(json_object_get(json_object_get(json_object_get(o, "metadata"),
								    "labels"),
						    "istio-injection")),
		  "enabled");
	json_decref(o);
	snprintf(path, sizeof(path), "/apis/apps/v1/namespaces/%s/deployments/productcatalogservice", ns);
	o = get_obj(path, &st);
	CHECK_INT(st, 404);
	json_decref(o);
	snprintf(path, sizeof(path), "/apis/apps/v1/namespaces/%s/deployments/frontend", ns);
	o = get_obj(path, &st);
	CHECK_INT(st, 200);
	json_decref(o);
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services/productcatalogservice", ns);
	o = get_obj(path, &st);
	CHECK_INT(st, strcmp(flow, "legacy") == 0 ? 404 : 200);
	json_decref(o);
	/* A second run changes nothing and does not bring the moved one back. */
	j = pjob("boutique-deploy", "apply");
	in_set(j, "flow", flow);
	in_set(j, "namespace", ns);
	in_set(j, "version", version);
	in_set(j, "move_out", "productcatalogservice");
	run_job(j, &r, "ok");
	CHECK(strstr(r.log, "applied Deployment") != NULL &&
	      strstr(r.log, "applied Deployment productcatalogservice") == NULL);
	hx_step_free(&r);

	/* The VM joins: mesh-register. */
	snprintf(addr, sizeof(addr), "[\"127.10.0.%d\"]", strcmp(flow, "legacy") == 0 ? 7 : 8);
	j = pjob("mesh-register", "apply");
	in_set(j, "flow", flow);
	in_set(j, "namespace", ns);
	in_set(j, "service", "productcatalogservice");
	in_set(j, "port_name", "grpc");
	in_json_set(j, "port", "3550");
	in_json_set(j, "addresses", addr);
	in_set(j, "service_account", strcmp(flow, "legacy") == 0 ? "default" : "productcatalogservice");
	in_json_set(j, "labels", "{\"app\": \"productcatalogservice\"}");
	run_job(j, &r, "ok");
	hx_step_free(&r);
	if (strcmp(flow, "legacy") == 0) {
		snprintf(path, sizeof(path),
			 "/apis/networking.istio.io/v1alpha3/namespaces/%s/serviceentries/"
			 "mesh-expansion-productcatalogservice", ns);
		o = get_obj(path, &st);
		CHECK_INT(st, 200);
		CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(
			json_object_get(o, "spec"), "endpoints"), 0), "address")), "127.10.0.7");
		CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(
			json_object_get(o, "spec"), "ports"), 0), "name")), "grpc-3550");
		json_decref(o);
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services/productcatalogservice", ns);
		o = get_obj(path, &st);
		CHECK_INT(st, 200);
		CHECK(json_object_get(json_object_get(o, "spec"), "selector") == NULL ||
		      json_object_size(json_object_get(json_object_get(o, "spec"), "selector")) == 0);
		json_decref(o);
	} else {
		snprintf(path, sizeof(path),
			 "/apis/networking.istio.io/v1beta1/namespaces/%s/workloadentries/"
			 "productcatalogservice-127-10-0-8", ns);
		o = get_obj(path, &st);
		CHECK_INT(st, 200);
		CHECK_STR(json_string_value(json_object_get(json_object_get(o, "spec"), "address")),
			  "127.10.0.8");
		CHECK_STR(json_string_value(json_object_get(json_object_get(json_object_get(o, "spec"),
									    "labels"),
							    "app")),
			  "productcatalogservice");
		json_decref(o);
		/* add-to-mesh (legacy) refuses the app's own Service, in its words. */
		j = pjob("mesh-register", "apply");
		in_set(j, "flow", "legacy");
		in_set(j, "namespace", ns);
		in_set(j, "service", "productcatalogservice");
		in_json_set(j, "port", "3550");
		in_json_set(j, "addresses", addr);
		run_job(j, &r, "failed");
		CHECK_STR(r.message, "service \"productcatalogservice\" already exists, skip");
		hx_step_free(&r);
	}
	/* Again (adopts its own), then destroy both, in reverse. */
	j = pjob("mesh-register", "apply");
	in_set(j, "flow", flow);
	in_set(j, "namespace", ns);
	in_set(j, "service", "productcatalogservice");
	in_json_set(j, "port", "3550");
	in_json_set(j, "addresses", addr);
	run_job(j, &r, "ok");
	hx_step_free(&r);
	j = pjob("mesh-register", "destroy");
	in_set(j, "flow", flow);
	in_set(j, "namespace", ns);
	in_set(j, "service", "productcatalogservice");
	in_json_set(j, "port", "3550");
	in_json_set(j, "addresses", addr);
	run_job(j, &r, "ok");
	CHECK(strstr(r.log, "deleted") != NULL);
	hx_step_free(&r);
	j = pjob("boutique-deploy", "destroy");
	in_set(j, "flow", flow);
	in_set(j, "namespace", ns);
	in_set(j, "version", version);
	in_set(j, "move_out", "productcatalogservice");
	run_job(j, &r, "ok");
	hx_step_free(&r);
	snprintf(path, sizeof(path), "/apis/apps/v1/namespaces/%s/deployments/frontend", ns);
	o = get_obj(path, &st);
	CHECK_INT(st, 404);
	json_decref(o);
}

static void
t_plugin_boutique_and_register(void)
{
	NEED_PLUGIN("boutique-deploy");
	if (json_object_size(json_object_get(sb.endpoints, "mirrors")) == 0)
		SKIP("this sandbox serves no download mirrors");
	CHECK_INT(mesh_crds(), 0);
	boutique_flow("legacy", "v0.2.0", "shop-legacy");
	boutique_flow("current", "v0.10.6", "default");
}

static void
t_plugin_kiali_and_ingress(void)
{
	char dir[600], file[700];
	struct hx_step r;
	json_t *j;

	NEED_PLUGIN("kiali-link");
	j = pjob("kiali-link", "apply");
	in_set(j, "namespace", "istio-system");
	run_job(j, &r, "failed");
	CHECK(strstr(r.message, "Kiali is not installed") != NULL);
	hx_step_free(&r);
	/* An unpacked release's samples/addons/kiali.yaml (a small one). */
	snprintf(dir, sizeof(dir), "%s/istio", tmp);
	snprintf(file, sizeof(file), "%s/samples", dir);
	mkdir(dir, 0700);
	mkdir(file, 0700);
	snprintf(file, sizeof(file), "%s/samples/addons", dir);
	mkdir(file, 0700);
	snprintf(file, sizeof(file), "%s/samples/addons/kiali.yaml", dir);
	hx_write(file, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: kiali, labels: {app: kiali}}\n"
		       "spec:\n  selector: {matchLabels: {app: kiali}}\n  template:\n"
		       "    metadata: {labels: {app: kiali}}\n    spec:\n      containers:\n"
		       "      - {name: kiali, image: quay.io/kiali/kiali:v1.76}\n---\n"
		       "apiVersion: v1\nkind: Service\nmetadata: {name: kiali}\nspec:\n"
		       "  type: LoadBalancer\n  selector: {app: kiali}\n"
		       "  ports: [{name: http, port: 20001}]\n");
	CHECK_INT(apply_text("apply", "apiVersion: v1\nkind: Namespace\nmetadata: {name: istio-system}\n",
			     NULL, NULL, &r, "ok"), 1);
	hx_step_free(&r);
	j = pjob("kiali-link", "apply");
	in_set(j, "namespace", "istio-system");
	in_set(j, "istio_dir", dir);
	in_json_set(j, "port", "20001");
	in_set(j, "path", "/kiali");
	run_job(j, &r, "ok");
	CHECK_STR(out_str(&r, "url"), "http://localhost:20001/kiali");
	CHECK_STR(out_str(&r, "cluster_url"), "http://kiali.istio-system.svc.cluster.local:20001/kiali");
	hx_step_free(&r);

	/* ingress-ip: the address, then the probe (whatever the sandbox
	 * answers on port 80 of an address that routes to no shop). */
	NEED_PLUGIN("ingress-ip");
	j = pjob("ingress-ip", "apply");
	in_set(j, "service", "kiali");
	in_set(j, "namespace", "istio-system");
	in_set(j, "probe_path", "/");
	in_json_set(j, "probe_status", "299");
	in_json_set(j, "timeout_ms", "2500");
	run_job(j, &r, "failed");
	CHECK_STR(r.code, "timeout");
	CHECK(strstr(r.log, "INGRESS_IP=127.30.") != NULL);
	CHECK(strstr(r.message, "did not answer 299") != NULL);
	fprintf(stderr, "    (error reads: %s)\n", r.message);
	hx_step_free(&r);
	j = pjob("ingress-ip", "destroy");
	in_set(j, "service", "kiali");
	run_job(j, &r, "ok");
	hx_step_free(&r);

	j = pjob("kiali-link", "destroy");
	in_set(j, "namespace", "istio-system");
	in_set(j, "istio_dir", dir);
	json_object_set_new(j, "state", json_pack("{s:s}", "applied", "kiali.yaml"));
	run_job(j, &r, "ok");
	CHECK(strstr(r.log, "deleted Deployment istio-system/kiali") != NULL);
	hx_step_free(&r);
}

int
main(void)
{
	const char *bin = getenv("OUTRIGGER_BIN") != NULL ? getenv("OUTRIGGER_BIN") : "build/outrigger";
	char sbdir[400];

	step_bin = getenv("OUTRIGGER_STEP") != NULL ? getenv("OUTRIGGER_STEP")
						     : "build/outrigger-step";
	RUN(t_ydoc_scalars);
	RUN(t_ydoc_blocks_and_keys);
	RUN(t_ydoc_anchors);
	RUN(t_ydoc_documents);
	RUN(t_ydoc_errors);
	RUN(t_ydoc_upstream);

	if (hx_isolate_network() != 0)
		fprintf(stderr, "  note: could not enter a loopback-only network namespace\n");
	if (realpath("build/test-plugins", plugins_dir) == NULL ||
	    access("build/test-plugins/kubeprobe.so", R_OK) != 0 || access(step_bin, X_OK) != 0 ||
	    hx_tmpdir(tmp, sizeof(tmp), "outrigger-k8s") != 0) {
		fprintf(stderr, "  FAIL setup: build %s, build/test-plugins/kubeprobe.so first\n",
			step_bin);
		check_failed++;
	} else {
		snprintf(sbdir, sizeof(sbdir), "%s/sb", tmp);
		if (hx_sandbox_start(&sb, bin, sbdir, 0.01) != 0 || cluster_create() != 0) {
			fprintf(stderr, "  FAIL setup: sandbox or cluster did not come up (see %s.err)\n",
				sbdir);
			check_failed++;
		} else {
			cluster_up = 1;
			write_kubeconfig();
			if (access(KUBECTL, X_OK) != 0)
				fprintf(stderr, "  note: no kubectl at " KUBECTL
						": its cross-checks are left out\n");
		}
	}
	RUN(t_open_refusals);
	RUN(t_apply_own);
	RUN(t_apply_again_unchanged);
	RUN(t_wait_deployment);
	RUN(t_wait_loadbalancer);
	RUN(t_crd_then_object);
	RUN(t_bad_documents);
	RUN(t_yaml_errors);
	RUN(t_delete_own);
	RUN(t_boutique_v0_2_0);
	RUN(t_boutique_v0_10_6);
	RUN(t_retry_dead_endpoint);
	if (realpath("plugins", rollout_dir) == NULL)
		snprintf(rollout_dir, sizeof(rollout_dir), "plugins");
	RUN(t_plugin_admin_binding);
	RUN(t_plugin_boutique_and_register);
	RUN(t_plugin_kiali_and_ingress);

	hx_sandbox_stop(&sb);
	free(ca_b64);
	if (tmp[0] != '\0' && getenv("KEEP_TMP") == NULL)
		hx_rmrf(tmp);
	return check_done("test_k8s");
}

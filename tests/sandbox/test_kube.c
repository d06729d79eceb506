/*
 * test_kube.c - the sandbox Kubernetes API server, checked two ways:
 * its parsers and patch functions called directly, and the real kubectl
 * (the Cloud SDK dispatcher and its versioned binaries) driving a real
 * server over HTTPS with a bearer token, with certificates made by the
 * openssl command.  Everything stays on 127.0.77.1.
 *
 * Online Boutique manifests are read in place from the shared fixtures
 * (../shared); without them those tests are skipped.
 */
#define CHECK_MAIN
#include "check.h"

#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "kube.h"
#include "kube_int.h"
#include "log.h"

#define ADDR "127.0.77.1"
#define TOKEN "sandbox-test-token-7f3a"
#define KUBECTL "/usr/bin/kubectl"
#define KUBECTL_DIR "/usr/lib/google-cloud-sdk/bin/"

static char tmp[256];		/* the test's directory */
static char state_dir[300];
static char fixtures[300];	/* .../fixtures/online-boutique, or "" */
static struct kube *kube;
static unsigned short port;
static char *cert_pem, *key_pem;
static int have_kubectl;
static int hook_calls;

/* ---- helpers ----------------------------------------------------------- */

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[4096];
	size_t n;

	if (f == NULL)
		return NULL;
	buf_init(&b, 64u << 20);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	return buf_detach(&b);
}

static int
sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Run a shell command line, capture stdout+stderr into *out (caller
 * frees); returns the exit status. */
static int
run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
run(char **out, const char *fmt, ...)
{
	char line[4096], cmd[4200], chunk[4096];
	struct buf b;
	va_list ap;
	FILE *p;
	size_t n;
	int st;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "%s 2>&1", line);
	buf_init(&b, 16u << 20);
	p = popen(cmd, "r");
	if (p == NULL) {
		*out = strdup("");
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		buf_append(&b, chunk, n);
	st = pclose(p);
	*out = buf_detach(&b);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* kubectl (the dispatcher, or kubectl.1.XX when ver is not NULL) with
 * a 90 s bound. */
#define KUBE(out, ver, ...) kubectl_run(out, ver, __VA_ARGS__)

static int
kubectl_run(char **out, const char *ver, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
kubectl_run(char **out, const char *ver, const char *fmt, ...)
{
	char args[3000];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	if (ver != NULL)
		rc = run(out, "timeout 90 " KUBECTL_DIR "kubectl.%s %s", ver, args);
	else
		rc = run(out, "timeout 90 " KUBECTL " %s", args);
	if (rc != 0)
		fprintf(stderr, "    kubectl %s -> %d:\n%s\n", args, rc, *out);
	return rc;
}

static int
count(const char *hay, const char *needle)
{
	int n = 0;
	const char *p = hay;

	while ((p = strstr(p, needle)) != NULL) {
		n++;
		p += strlen(needle);
	}
	return n;
}

static int
lines(const char *s)
{
	int n = 0;

	for (; *s != '\0'; s++)
		if (*s == '\n')
			n++;
	return n;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
auth_cb(void *ctx, const char *bearer)
{
	(void)ctx;
	return strcmp(bearer, TOKEN) == 0;
}

static void
hook_cb(void *ctx, struct kube *k, enum kube_change change, const char *resource,
	const json_t *obj)
{
	(void)ctx;
	(void)k;
	(void)change;
	(void)resource;
	(void)obj;
	__atomic_add_fetch(&hook_calls, 1, __ATOMIC_SEQ_CST);
}

static or_rc
start_kube(unsigned short want_port, struct or_err *err)
{
	struct kube_cfg cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.dir = state_dir;
	cfg.listen_addr = ADDR;
	cfg.port = want_port;
	cfg.tls_cert_pem = cert_pem;
	cfg.tls_key_pem = key_pem;
	cfg.auth = auth_cb;
	cfg.service_cidr = "10.96.0.0/20";
	cfg.lb_range = "127.0.77.100-127.0.77.120";
	cfg.time_scale = 0.03;
	cfg.version = "v1.32.4";
	return kube_start(&cfg, &kube, err);
}

static void
setup(void)
{
	const char *cands[] = {"../shared/fixtures/online-boutique"};
	struct or_err err;
	char path[600];
	size_t i;

	snprintf(tmp, sizeof(tmp), "/tmp/kube-test-XXXXXX");
	if (mkdtemp(tmp) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(state_dir, sizeof(state_dir), "%s/state", tmp);
	mkdir(state_dir, 0700);
	for (i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
		snprintf(path, sizeof(path), "%s/v0.2.0/kubernetes-manifests.yaml", cands[i]);
		if (access(path, R_OK) == 0) {
			snprintf(fixtures, sizeof(fixtures), "%s", cands[i]);
			break;
		}
	}
	have_kubectl = access(KUBECTL, X_OK) == 0 && access(KUBECTL_DIR "kubectl.1.31", X_OK) == 0;
	/* A CA and a server certificate for 127.0.77.1 (EC keys: fast). */
	if (sh("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
	       "-keyout ca.key -out ca.crt -days 2 -subj /CN=sandbox-ca >/dev/null 2>&1 && "
	       "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key "
	       "-out srv.csr -subj /CN=kube-apiserver >/dev/null 2>&1 && "
	       "printf 'subjectAltName=IP:" ADDR "\\nbasicConstraints=CA:FALSE\\n"
	       "keyUsage=digitalSignature,keyEncipherment\\nextendedKeyUsage=serverAuth\\n' > ext.cnf && "
	       "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt "
	       "-days 2 -extfile ext.cnf >/dev/null 2>&1",
	       tmp) != 0) {
		fprintf(stderr, "openssl failed\n");
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/srv.crt", tmp);
	cert_pem = slurp(path);
	snprintf(path, sizeof(path), "%s/srv.key", tmp);
	key_pem = slurp(path);
	if (cert_pem == NULL || key_pem == NULL || start_kube(0, &err) != OR_OK) {
		fprintf(stderr, "kube_start: %s\n", err.message);
		exit(1);
	}
	port = kube_port(kube);
	kube_set_hook(kube, hook_cb, NULL);
	/* A fresh HOME: no discovery or /version cache from earlier runs. */
	snprintf(path, sizeof(path), "%s/home", tmp);
	mkdir(path, 0700);
	setenv("HOME", path, 1);
	snprintf(path, sizeof(path), "%s/kubeconfig", tmp);
	setenv("KUBECONFIG", path, 1);
	setenv("CLOUDSDK_CORE_DISABLE_PROMPTS", "1", 1);
	sh("cd %s && printf 'apiVersion: v1\\nkind: Config\\nclusters:\\n- name: sandbox\\n  cluster:\\n"
	   "    server: https://" ADDR ":%u\\n    certificate-authority-data: %%s\\n"
	   "users:\\n- name: sandbox\\n  user:\\n    token: " TOKEN "\\n"
	   "contexts:\\n- name: sandbox\\n  context: {cluster: sandbox, user: sandbox}\\n"
	   "current-context: sandbox\\n' \"$(base64 -w0 ca.crt)\" > kubeconfig",
	   tmp, port);
}

static void
teardown(void)
{
	kube_free(kube);
	kube = NULL;
	free(cert_pem);
	free(key_pem);
	if (getenv("KUBE_TEST_KEEP") == NULL && strncmp(tmp, "/tmp/kube-test-", 15) == 0)
		nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- direct tests: patches, selectors, YAML, protobuf --------------------- */

static json_t *
J(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, JSON_DECODE_ANY, &e);

	if (j == NULL)
		fprintf(stderr, "bad test JSON: %s: %s\n", s, e.text);
	return j;
}

static int
json_is(const json_t *got, const char *want)
{
	json_t *w = J(want);
	int eq = json_equal(got, w);

	if (!eq) {
		char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);

		fprintf(stderr, "    got  %s\n    want %s\n", g, want);
		free(g);
	}
	json_decref(w);
	return eq;
}

static void
t_merge_patch(void)
{
	json_t *t = J("{\"a\":1,\"b\":{\"c\":2,\"d\":3},\"l\":[1,2]}");
	json_t *p = J("{\"a\":null,\"b\":{\"c\":5},\"l\":[3],\"n\":\"x\"}"), *out = NULL;

	CHECK(kube_merge_patch(t, p, &out, NULL) == OR_OK);
	CHECK(json_is(out, "{\"b\":{\"c\":5,\"d\":3},\"l\":[3],\"n\":\"x\"}"));
	json_decref(t);
	json_decref(p);
	json_decref(out);
}

static void
t_strategic_merge(void)
{
	json_t *t = J("{\"spec\":{\"replicas\":1,\"template\":{\"spec\":{\"containers\":["
		      "{\"name\":\"a\",\"image\":\"a:1\",\"ports\":[{\"containerPort\":80}],"
		      "\"env\":[{\"name\":\"X\",\"value\":\"1\"},{\"name\":\"Y\",\"value\":\"2\"}]},"
		      "{\"name\":\"b\",\"image\":\"b:1\"}]}}},"
		      "\"metadata\":{\"finalizers\":[\"f1\",\"f2\"]}}");
	json_t *p = J("{\"spec\":{\"replicas\":3,\"template\":{\"spec\":{"
		      "\"$setElementOrder/containers\":[{\"name\":\"b\"},{\"name\":\"a\"}],"
		      "\"containers\":[{\"name\":\"a\",\"image\":\"a:2\","
		      "\"env\":[{\"name\":\"Y\",\"$patch\":\"delete\"},{\"name\":\"Z\",\"value\":\"3\"}]}]}}},"
		      "\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"f1\"]}}");
	json_t *out = NULL;

	CHECK(kube_smp(t, p, &out, NULL) == OR_OK);
	CHECK(json_is(out, "{\"spec\":{\"replicas\":3,\"template\":{\"spec\":{\"containers\":["
			   "{\"name\":\"b\",\"image\":\"b:1\"},"
			   "{\"name\":\"a\",\"image\":\"a:2\",\"ports\":[{\"containerPort\":80}],"
			   "\"env\":[{\"name\":\"X\",\"value\":\"1\"},{\"name\":\"Z\",\"value\":\"3\"}]}]}}},"
			   "\"metadata\":{\"finalizers\":[\"f2\"]}}"));
	json_decref(p);
	json_decref(out);
	/* $patch: replace on a map, $retainKeys, a plain list replaced. */
	p = J("{\"spec\":{\"template\":{\"$patch\":\"replace\",\"x\":1}},"
	      "\"metadata\":{\"$retainKeys\":[\"finalizers\"],\"finalizers\":[\"f3\"]}}");
	CHECK(kube_smp(t, p, &out, NULL) == OR_OK);
	CHECK(json_is(out, "{\"spec\":{\"replicas\":1,\"template\":{\"x\":1}},"
			   "\"metadata\":{\"finalizers\":[\"f1\",\"f2\",\"f3\"]}}"));
	json_decref(t);
	json_decref(p);
	json_decref(out);
}

static void
t_json_patch(void)
{
	json_t *t = J("{\"a\":{\"b\":[1,2,3]},\"c\":\"x\"}"), *out = NULL;
	json_t *p = J("[{\"op\":\"add\",\"path\":\"/a/b/1\",\"value\":9},"
		      "{\"op\":\"remove\",\"path\":\"/a/b/0\"},"
		      "{\"op\":\"replace\",\"path\":\"/c\",\"value\":\"y\"},"
		      "{\"op\":\"copy\",\"from\":\"/c\",\"path\":\"/d~1e\"},"
		      "{\"op\":\"move\",\"from\":\"/a/b/2\",\"path\":\"/a/b/-\"},"
		      "{\"op\":\"test\",\"path\":\"/c\",\"value\":\"y\"}]");
	struct or_err err;

	CHECK(kube_json_patch(t, p, &out, &err) == OR_OK);
	CHECK(json_is(out, "{\"a\":{\"b\":[9,2,3]},\"c\":\"y\",\"d/e\":\"y\"}"));
	json_decref(p);
	json_decref(out);
	p = J("[{\"op\":\"replace\",\"path\":\"/nope\",\"value\":1}]");
	CHECK(kube_json_patch(t, p, &out, &err) == OR_E_INVALID);
	CHECK(out == NULL);
	json_decref(p);
	p = J("[{\"op\":\"test\",\"path\":\"/c\",\"value\":\"z\"}]");
	CHECK(kube_json_patch(t, p, &out, &err) == OR_E_INVALID);
	json_decref(p);
	json_decref(t);
}

static void
t_yaml(void)
{
	const char *y = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels: {a: \"1\"}\n"
			"data:\n  n: '42'\n  list: x\nspec:\n  n: 42\n  f: 1.5\n  b: true\n  z: ~\n"
			"  s: hello world\n  q: \"true\"\n  base: &b {k: v}\n  ref: *b\n  seq:\n  - 1\n  - two\n";
	json_t *out = NULL;
	struct or_err err;

	CHECK(kube_yaml_parse(y, strlen(y), &out, &err) == OR_OK);
	CHECK(json_is(out, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\","
			   "\"labels\":{\"a\":\"1\"}},\"data\":{\"n\":\"42\",\"list\":\"x\"},"
			   "\"spec\":{\"n\":42,\"f\":1.5,\"b\":true,\"z\":null,\"s\":\"hello world\","
			   "\"q\":\"true\",\"base\":{\"k\":\"v\"},\"ref\":{\"k\":\"v\"},\"seq\":[1,\"two\"]}}"));
	json_decref(out);
	CHECK(kube_yaml_parse("a: [1, 2", 8, &out, &err) == OR_E_MALFORMED);
	CHECK(kube_yaml_parse("{\"j\": [1]}", 10, &out, &err) == OR_OK);
	CHECK(json_is(out, "{\"j\":[1]}"));
	json_decref(out);
}

static void
t_selectors(void)
{
	json_t *o = J("{\"metadata\":{\"name\":\"web\",\"namespace\":\"x\","
		      "\"labels\":{\"app\":\"web\",\"tier\":\"front\"}},\"status\":{\"phase\":\"Running\"}}");
	json_t *s = NULL;
	struct or_err err;
	static const struct {
		const char *sel;
		int fields, want;
	} cases[] = {
		{"app=web", 0, 1}, {"app==web,tier=front", 0, 1}, {"app!=web", 0, 0},
		{"app in (db, web)", 0, 1}, {"app notin (web)", 0, 0}, {"tier", 0, 1},
		{"!tier", 0, 0}, {"missing", 0, 0}, {"!missing", 0, 1}, {"app in (x),tier", 0, 0},
		{"metadata.name=web", 1, 1}, {"metadata.namespace!=x", 1, 0},
		{"status.phase=Running,metadata.name=web", 1, 1}, {"metadata.name=db", 1, 0},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK(kube_sel_parse(cases[i].sel, cases[i].fields, &s, &err) == OR_OK);
		if (kube_sel_match(s, o, cases[i].fields) != cases[i].want) {
			check_cur_failed = 1;
			fprintf(stderr, "  FAIL selector '%s' want %d\n", cases[i].sel, cases[i].want);
		}
		json_decref(s);
	}
	CHECK(kube_sel_parse("app in (web", 0, &s, &err) == OR_E_MALFORMED);
	json_decref(o);
}

/* A protobuf body as kubectl 1.32 sends it, built by hand. */
static size_t
pb_field(unsigned char *out, unsigned num, const void *data, size_t len)
{
	size_t o = 0;

	out[o++] = (unsigned char)(num << 3 | 2);
	out[o++] = (unsigned char)len;	/* < 128 in these tests */
	memcpy(out + o, data, len);
	return o + len;
}

static void
t_protobuf(void)
{
	unsigned char meta[128], entry[64], ns[256], tm[64], env[512], kv[32];
	size_t m = 0, e, n = 0, t = 0, o = 4;
	json_t *out = NULL;
	struct or_err err;

	e = pb_field(entry, 1, "team", 4);
	e += pb_field(entry + e, 2, "a", 1);
	m = pb_field(meta, 1, "protox", 6);
	m += pb_field(meta + m, 11, entry, e);
	n = pb_field(ns, 1, meta, m);
	t = pb_field(tm, 1, "v1", 2);
	t += pb_field(tm + t, 2, "Namespace", 9);
	memcpy(env, "k8s\0", 4);
	o += pb_field(env + o, 1, tm, t);
	o += pb_field(env + o, 2, ns, n);
	o += pb_field(env + o, 3, "", 0);
	o += pb_field(env + o, 4, "", 0);
	CHECK(kube_pb_decode(env, o, &out, &err) == OR_OK);
	CHECK(json_is(out, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
			   "\"metadata\":{\"name\":\"protox\",\"labels\":{\"team\":\"a\"}}}"));
	json_decref(out);
	/* A Secret: data values are bytes, served base64. */
	m = pb_field(meta, 1, "s", 1);
	e = pb_field(kv, 1, "k", 1);
	e += pb_field(kv + e, 2, "\x01\x02\x03\xff", 4);
	n = pb_field(ns, 1, meta, m);
	n += pb_field(ns + n, 2, kv, e);
	n += pb_field(ns + n, 3, "Opaque", 6);
	t = pb_field(tm, 1, "v1", 2);
	t += pb_field(tm + t, 2, "Secret", 6);
	o = 4;
	o += pb_field(env + o, 1, tm, t);
	o += pb_field(env + o, 2, ns, n);
	CHECK(kube_pb_decode(env, o, &out, &err) == OR_OK);
	CHECK(json_is(out, "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"s\"},"
			   "\"data\":{\"k\":\"AQID/w==\"},\"type\":\"Opaque\"}"));
	json_decref(out);
	/* Other kinds: 415; garbage: 400. */
	t = pb_field(tm, 1, "apps/v1", 7);
	t += pb_field(tm + t, 2, "Deployment", 10);
	o = 4;
	o += pb_field(env + o, 1, tm, t);
	CHECK(kube_pb_decode(env, o, &out, &err) == OR_E_MEDIATYPE);
	CHECK(kube_pb_decode("k8s\0\x0a\x7f", 6, &out, &err) == OR_E_MALFORMED);
}

/* ---- kubectl against a live server ------------------------------------------ */

#define NEED_KUBECTL()                                                       \
	do {                                                                 \
		if (!have_kubectl)                                           \
			SKIP("no kubectl (Cloud SDK) installed");            \
	} while (0)
#define NEED_FIXTURES()                                                      \
	do {                                                                 \
		if (fixtures[0] == '\0')                                     \
			SKIP("no ../shared fixtures: Online Boutique manifests absent"); \
	} while (0)

static void
t_version_get_ns(void)
{
	char *out;

	NEED_KUBECTL();
	CHECK(KUBE(&out, NULL, "version -o json") == 0);
	CHECK(strstr(out, "\"gitVersion\": \"v1.32.4\"") != NULL);
	/* The dispatcher ran kubectl 1.32 for a 1.32 server. */
	CHECK(strstr(out, "\"clientVersion\"") != NULL && strstr(out, "v1.32.") != NULL);
	free(out);
	CHECK(KUBE(&out, NULL, "get ns") == 0);
	CHECK(strstr(out, "NAME") != NULL && strstr(out, "STATUS") != NULL);
	CHECK(strstr(out, "default") != NULL && strstr(out, "Active") != NULL);
	CHECK(strstr(out, "kube-system") != NULL);
	free(out);
	CHECK(KUBE(&out, NULL, "get --raw /api/v1") == 0);
	CHECK(strstr(out, "\"shortNames\":[\"svc\"]") != NULL);
	free(out);
	CHECK(KUBE(&out, NULL, "api-resources") == 0);
	CHECK(strstr(out, "deployments") != NULL && strstr(out, "deploy") != NULL);
	free(out);
}

static void
t_create_namespace(void)
{
	char *out;

	NEED_KUBECTL();
	/* 1.32 (dispatcher) and 1.33 send protobuf; 1.31 and 1.27 JSON. */
	CHECK(KUBE(&out, NULL, "create namespace ob1") == 0);
	CHECK(strstr(out, "namespace/ob1 created") != NULL);
	free(out);
	CHECK(KUBE(&out, "1.33", "create namespace ob2") == 0);
	free(out);
	CHECK(KUBE(&out, "1.31", "create namespace ob3") == 0);
	free(out);
	CHECK(KUBE(&out, "1.27", "create namespace ob4") == 0);
	free(out);
	CHECK(KUBE(&out, NULL, "create namespace ob1") != 0);
	CHECK(strstr(out, "AlreadyExists") != NULL);
	free(out);
	CHECK(KUBE(&out, NULL, "get ns ob2 -o jsonpath={.status.phase}") == 0);
	CHECK_STR(out, "Active");
	free(out);
}

static void
t_secret_from_file(void)
{
	char *out;

	NEED_KUBECTL();
	CHECK(sh("printf 'hello\\nsandbox' > %s/key.txt", tmp) == 0);
	CHECK(KUBE(&out, NULL, "create secret generic s1 -n ob1 --from-file=%s/key.txt "
			      "--from-literal=user=admin", tmp) == 0);
	CHECK(strstr(out, "secret/s1 created") != NULL);
	free(out);
	CHECK(KUBE(&out, NULL, "get secret s1 -n ob1 -o 'jsonpath={.data.key\\.txt}'") == 0);
	CHECK_STR(out, "aGVsbG8Kc2FuZGJveA==");
	free(out);
	CHECK(KUBE(&out, NULL, "get secrets -n ob1") == 0);
	CHECK(strstr(out, "Opaque") != NULL && strstr(out, "s1") != NULL);
	free(out);
	CHECK(KUBE(&out, NULL, "create configmap c1 -n ob1 --from-literal=a=b") == 0);
	free(out);
	CHECK(KUBE(&out, NULL, "create serviceaccount robot -n ob1") == 0);
	free(out);
	CHECK(KUBE(&out, NULL, "create token robot -n ob1 --duration=10m") == 0);
	CHECK(count(out, ".") == 2 && strncmp(out, "eyJ", 3) == 0);
	free(out);
}

static void
t_label_namespace(void)
{
	char *out;

	NEED_KUBECTL();
	CHECK(KUBE(&out, NULL, "label namespace ob1 istio-injection=enabled") == 0);
	CHECK(strstr(out, "namespace/ob1 labeled") != NULL);
	free(out);
	CHECK(KUBE(&out, NULL, "get ns -l istio-injection=enabled -o name") == 0);
	CHECK_STR(out, "namespace/ob1\n");
	free(out);
	CHECK(KUBE(&out, NULL, "get ns ob1 --show-labels") == 0);
	CHECK(strstr(out, "istio-injection=enabled") != NULL);
	free(out);
}

static void
t_apply_boutique(void)
{
	char *out;

	NEED_KUBECTL();
	NEED_FIXTURES();
	kube_set_istio_installed(kube, 1);
	CHECK(KUBE(&out, NULL, "apply -n ob1 -f %s/v0.2.0/kubernetes-manifests.yaml", fixtures) == 0);
	CHECK_INT(count(out, " created"), 24);
	free(out);
	CHECK(KUBE(&out, NULL, "apply -n ob2 -f %s/v0.10.6/kubernetes-manifests.yaml", fixtures) == 0);
	CHECK_INT(count(out, " created"), 35);
	free(out);
	/* Nothing changed: every object unchanged, even after the
	 * controllers filled in status and defaults. */
	CHECK(KUBE(&out, NULL, "apply -n ob1 -f %s/v0.2.0/kubernetes-manifests.yaml", fixtures) == 0);
	CHECK_INT(count(out, " unchanged"), 24);
	free(out);
	CHECK(KUBE(&out, "1.27", "apply -n ob2 -f %s/v0.10.6/kubernetes-manifests.yaml", fixtures) == 0);
	CHECK_INT(count(out, " unchanged"), 35);
	free(out);
	CHECK(KUBE(&out, NULL, "apply --server-side -n ob3 -f %s/v0.10.6/kubernetes-manifests.yaml",
		   fixtures) == 0);
	CHECK_INT(count(out, " serverside-applied"), 35);
	free(out);
	CHECK(KUBE(&out, NULL, "apply --server-side -n ob3 -f %s/v0.10.6/kubernetes-manifests.yaml",
		   fixtures) == 0);
	CHECK_INT(count(out, " serverside-applied"), 35);
	free(out);
}

static void
t_rollout(void)
{
	char *out;

	NEED_KUBECTL();
	NEED_FIXTURES();
	CHECK(KUBE(&out, NULL, "wait --for=condition=Available deployment --all -n ob1 --timeout=60s") == 0);
	CHECK_INT(count(out, "condition met"), 12);
	free(out);
	CHECK(KUBE(&out, NULL, "wait --for=condition=Available deployment --all -n ob2 --timeout=60s") == 0);
	free(out);
	CHECK(KUBE(&out, NULL, "rollout status deployment/frontend -n ob2 --timeout=60s") == 0);
	CHECK(strstr(out, "successfully rolled out") != NULL);
	free(out);
	CHECK(KUBE(&out, NULL, "get pods -n ob1 --no-headers") == 0);
	CHECK_INT(lines(out), 12);
	CHECK_INT(count(out, "Running"), 12);
	/* ob1 is labelled for injection: every pod has the sidecar. */
	CHECK_INT(count(out, "2/2"), 12);
	free(out);
	CHECK(KUBE(&out, NULL, "get pods -n ob2 --no-headers") == 0);
	CHECK_INT(count(out, "1/1"), 12);
	CHECK_INT(count(out, "Running"), 12);
	free(out);
	CHECK(KUBE(&out, NULL, "get pods -n ob1 -l app=frontend "
			      "-o jsonpath={.items[0].spec.containers[1].name}") == 0);
	CHECK_STR(out, "istio-proxy");
	free(out);
	CHECK(KUBE(&out, NULL, "wait --for=condition=Ready pod -l app=cartservice -n ob2 --timeout=30s") == 0);
	free(out);
	CHECK(KUBE(&out, NULL, "get deploy -n ob2") == 0);
	CHECK(strstr(out, "1/1") != NULL && strstr(out, "UP-TO-DATE") != NULL);
	free(out);
	CHECK(KUBE(&out, NULL, "get all -n ob2") == 0);
	CHECK(strstr(out, "replicaset.apps/") != NULL && strstr(out, "service/frontend") != NULL);
	free(out);
}

static void
t_loadbalancer_ip(void)
{
	char *out = NULL;
	int i;

	NEED_KUBECTL();
	NEED_FIXTURES();
	for (i = 0; i < 50; i++) {
		free(out);
		CHECK(KUBE(&out, NULL, "get svc frontend-external -n ob1 "
				      "-o jsonpath={.status.loadBalancer.ingress[0].ip}") == 0);
		if (out[0] != '\0')
			break;
		usleep(100000);
	}
	CHECK(strncmp(out, "127.0.77.1", 10) == 0 && strlen(out) == 12);
	free(out);
	CHECK(KUBE(&out, NULL, "get svc -n ob1") == 0);
	CHECK(strstr(out, "LoadBalancer") != NULL && strstr(out, "80:3") != NULL);
	CHECK(strstr(out, "10.96.") != NULL);
	free(out);
}

static void
t_upgrade_and_patch(void)
{
	char *out;

	NEED_KUBECTL();
	NEED_FIXTURES();
	/* v0.2.0 -> v0.10.6 in place: strategic merge patches of every kind. */
	CHECK(KUBE(&out, NULL, "apply -n ob1 -f %s/v0.10.6/kubernetes-manifests.yaml", fixtures) == 0);
	CHECK(count(out, " configured") >= 12);
	CHECK_INT(count(out, " created"), 11);	/* the ServiceAccounts */
	free(out);
	CHECK(KUBE(&out, NULL, "get deploy frontend -n ob1 -o jsonpath={.spec.template.spec.containers[*].image}") == 0);
	CHECK(strstr(out, "frontend:v0.10.6") != NULL && strstr(out, "v0.2.0") == NULL);
	free(out);
	CHECK(KUBE(&out, NULL, "get deploy frontend -n ob1 -o jsonpath={.spec.template.spec.containers[0].env[*].name}") == 0);
	CHECK(strstr(out, "SHOPPING_ASSISTANT_SERVICE_ADDR") != NULL && strstr(out, "ENV_PLATFORM") == NULL);
	free(out);
	CHECK(KUBE(&out, NULL, "rollout status deployment/frontend -n ob1 --timeout=60s") == 0);
	free(out);
	CHECK(KUBE(&out, NULL, "wait --for=condition=Available deployment --all -n ob1 --timeout=60s") == 0);
	free(out);
	/* Old ReplicaSets scaled to zero: still twelve pods, all new. */
	CHECK(KUBE(&out, NULL, "get pods -n ob1 --no-headers") == 0);
	CHECK_INT(lines(out), 12);
	free(out);
	CHECK(KUBE(&out, NULL, "get rs -n ob1 --no-headers") == 0);
	CHECK_INT(lines(out), 24);
	free(out);
	CHECK(KUBE(&out, NULL, "apply -n ob1 -f %s/v0.10.6/kubernetes-manifests.yaml", fixtures) == 0);
	CHECK_INT(count(out, " unchanged"), 35);
	free(out);
	CHECK(KUBE(&out, NULL, "patch deployment adservice -n ob2 --type=json "
			      "-p '[{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":2}]'") == 0);
	free(out);
	CHECK(KUBE(&out, NULL, "patch deployment adservice -n ob2 --type=merge "
			      "-p '{\"metadata\":{\"annotations\":{\"x\":\"y\"}}}'") == 0);
	free(out);
	CHECK(KUBE(&out, NULL, "rollout status deployment/adservice -n ob2 --timeout=60s") == 0);
	free(out);
	CHECK(KUBE(&out, NULL, "get pods -n ob2 -l app=adservice -o name") == 0);
	CHECK_INT(lines(out), 2);
	free(out);
	CHECK(KUBE(&out, NULL, "get pods -n ob2 -l 'app in (adservice,cartservice)',app!=cartservice -o name") == 0);
	CHECK_INT(lines(out), 2);
	free(out);
	CHECK(KUBE(&out, NULL, "get deploy -n ob2 --field-selector metadata.name=redis-cart -o name") == 0);
	CHECK_STR(out, "deployment.apps/redis-cart\n");
	free(out);
	CHECK(KUBE(&out, NULL, "get deploy nope -n ob2") != 0);
	CHECK(strstr(out, "Error from server (NotFound): deployments.apps \"nope\" not found") != NULL);
	free(out);
}

static void
t_rbac_scale_logs_replace(void)
{
	char *out;

	NEED_KUBECTL();
	NEED_FIXTURES(); /* it scales and describes the shop's deployments */
	/* The tutorial's first step, protobuf from kubectl 1.32. */
	CHECK(KUBE(&out, NULL, "create clusterrolebinding cluster-admin-binding "
			      "--clusterrole=cluster-admin --user=someone@example.com") == 0);
	CHECK(strstr(out, "clusterrolebinding.rbac.authorization.k8s.io/cluster-admin-binding created") != NULL);
	free(out);
	CHECK(KUBE(&out, NULL, "get clusterrolebinding cluster-admin-binding "
			      "-o jsonpath={.roleRef.name}/{.subjects[0].kind}/{.subjects[0].name}") == 0);
	CHECK_STR(out, "cluster-admin/User/someone@example.com");
	free(out);
	CHECK(KUBE(&out, NULL, "create role r1 -n ob1 --verb=get --resource=pods") == 0);
	free(out);
	CHECK(KUBE(&out, NULL, "create rolebinding rb1 -n ob1 --role=r1 --serviceaccount=ob1:robot") == 0);
	free(out);
	CHECK(KUBE(&out, NULL, "get role r1 -n ob1 -o jsonpath={.rules[0].verbs[0]}") == 0);
	CHECK_STR(out, "get");
	free(out);
	/* Scale subresource. */
	CHECK(KUBE(&out, NULL, "scale deployment redis-cart -n ob2 --replicas=3") == 0);
	CHECK(strstr(out, "scaled") != NULL);
	free(out);
	CHECK(KUBE(&out, NULL, "rollout status deployment/redis-cart -n ob2 --timeout=30s") == 0);
	free(out);
	CHECK(KUBE(&out, NULL, "get pods -n ob2 -l app=redis-cart -o name") == 0);
	CHECK_INT(lines(out), 3);
	free(out);
	/* Logs exist, if only to say there are none. */
	CHECK(KUBE(&out, NULL, "logs deployment/redis-cart -n ob2") == 0);
	CHECK(strstr(out, "simulated") != NULL);
	free(out);
	/* replace (PUT), then a stale resourceVersion conflicts. */
	CHECK(sh("KUBECONFIG=$KUBECONFIG " KUBECTL " get cm c1 -n ob1 -o json > %s/c1.json", tmp) == 0);
	CHECK(sh("sed -i 's/\"a\": \"b\"/\"a\": \"c\"/' %s/c1.json", tmp) == 0);
	CHECK(KUBE(&out, NULL, "replace -f %s/c1.json", tmp) == 0);
	CHECK(strstr(out, "configmap/c1 replaced") != NULL);
	free(out);
	CHECK(KUBE(&out, NULL, "replace -f %s/c1.json", tmp) != 0);
	CHECK(strstr(out, "Conflict") != NULL || strstr(out, "the object has been modified") != NULL);
	free(out);
	CHECK(KUBE(&out, NULL, "get cm c1 -n ob1 -o jsonpath={.data.a}") == 0);
	CHECK_STR(out, "c");
	free(out);
	CHECK(KUBE(&out, NULL, "describe deployment frontend -n ob2") == 0);
	CHECK(strstr(out, "Replicas:") != NULL);
	free(out);
}

static const char crds_yaml[] =
	"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
	"metadata: {name: serviceentries.networking.istio.io}\n"
	"spec:\n  group: networking.istio.io\n  scope: Namespaced\n"
	"  names: {kind: ServiceEntry, listKind: ServiceEntryList, plural: serviceentries, "
	"singular: serviceentry, shortNames: [se], categories: [istio-io, networking-istio-io]}\n"
	"  versions:\n"
	"  - {name: v1alpha3, served: true, storage: false, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}\n"
	"  - {name: v1beta1, served: true, storage: true, subresources: {status: {}}, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}\n"
	"---\n"
	"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
	"metadata: {name: virtualservices.networking.istio.io}\n"
	"spec:\n  group: networking.istio.io\n  scope: Namespaced\n"
	"  names: {kind: VirtualService, plural: virtualservices, singular: virtualservice, shortNames: [vs]}\n"
	"  versions:\n"
	"  - {name: v1alpha3, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}\n"
	"  - {name: v1beta1, served: true, storage: false, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}\n"
	"---\n"
	"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
	"metadata: {name: gateways.networking.istio.io}\n"
	"spec:\n  group: networking.istio.io\n  scope: Namespaced\n"
	"  names: {kind: Gateway, plural: gateways, singular: gateway, shortNames: [gw]}\n"
	"  versions:\n"
	"  - {name: v1alpha3, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}\n"
	"---\n"
	"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
	"metadata: {name: gateways.gateway.networking.k8s.io}\n"
	"spec:\n  group: gateway.networking.k8s.io\n  scope: Namespaced\n"
	"  names: {kind: Gateway, plural: gateways, singular: gateway, shortNames: [gtw], categories: [gateway-api]}\n"
	"  versions:\n"
	"  - {name: v1, served: true, storage: true, subresources: {status: {}}, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}\n"
	"  - {name: v1beta1, served: true, storage: false, subresources: {status: {}}, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}\n"
	"---\n"
	"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
	"metadata: {name: httproutes.gateway.networking.k8s.io}\n"
	"spec:\n  group: gateway.networking.k8s.io\n  scope: Namespaced\n"
	"  names: {kind: HTTPRoute, plural: httproutes, singular: httproute, categories: [gateway-api]}\n"
	"  versions:\n"
	"  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}\n"
	"  - {name: v1beta1, served: true, storage: false, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}\n";

static void
t_crds(void)
{
	char *out, path[400];
	FILE *f;

	NEED_KUBECTL();
	snprintf(path, sizeof(path), "%s/crds.yaml", tmp);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	fputs(crds_yaml, f);
	fclose(f);
	CHECK(KUBE(&out, NULL, "apply -f %s", path) == 0);
	CHECK_INT(count(out, " created"), 5);
	free(out);
	CHECK(KUBE(&out, NULL, "wait --for condition=established --timeout=20s -f %s", path) == 0);
	free(out);
	CHECK(KUBE(&out, NULL, "apply -f %s", path) == 0);
	CHECK_INT(count(out, " unchanged"), 5);
	free(out);
	CHECK(KUBE(&out, NULL, "api-resources --api-group=networking.istio.io") == 0);
	CHECK(strstr(out, "serviceentries") != NULL && strstr(out, "se ") != NULL);
	free(out);
	CHECK(KUBE(&out, NULL, "get crd") == 0);
	CHECK(strstr(out, "httproutes.gateway.networking.k8s.io") != NULL);
	free(out);
	if (fixtures[0] != '\0') {
		CHECK(KUBE(&out, NULL, "apply -n ob1 -f %s/v0.2.0/istio-manifests.yaml", fixtures) == 0);
		CHECK_INT(count(out, " created"), 5);
		free(out);
		CHECK(KUBE(&out, NULL, "apply -n ob2 -f %s/v0.10.6/istio-manifests.yaml", fixtures) == 0);
		CHECK_INT(count(out, " created"), 5);
		free(out);
		CHECK(KUBE(&out, NULL, "apply -n ob2 -f %s/v0.10.6/istio-manifests.yaml", fixtures) == 0);
		CHECK_INT(count(out, " unchanged"), 5);
		free(out);
		CHECK(KUBE(&out, NULL, "get se -n ob1 -o name") == 0);
		CHECK(strstr(out, "serviceentry.networking.istio.io/whitelist-egress-googleapis") != NULL);
		free(out);
		CHECK(KUBE(&out, NULL, "get httproute frontend-route -n ob2 "
				      "-o jsonpath={.spec.parentRefs[0].name}") == 0);
		CHECK_STR(out, "istio-gateway");
		free(out);
		/* Served at every version of the CRD. */
		CHECK(KUBE(&out, NULL, "get --raw /apis/networking.istio.io/v1alpha3/namespaces/ob2/serviceentries") == 0);
		CHECK(strstr(out, "\"apiVersion\":\"networking.istio.io/v1alpha3\"") != NULL);
		free(out);
		CHECK(KUBE(&out, NULL, "delete -n ob2 -f %s/v0.10.6/istio-manifests.yaml", fixtures) == 0);
		CHECK_INT(count(out, " deleted"), 5);
		free(out);
	}
}

static void
t_watch(void)
{
	char *out, path[400];

	NEED_KUBECTL();
	/* A watch in the background sees a namespace appear. */
	snprintf(path, sizeof(path), "%s/watch.out", tmp);
	CHECK(sh("timeout 20 " KUBECTL " get ns --watch-only -o name > %s 2>&1 & echo $! > %s.pid; "
		 "sleep 2", path, path) == 0);
	CHECK(KUBE(&out, NULL, "create namespace wx") == 0);
	free(out);
	CHECK(sh("for i in 1 2 3 4 5 6 7 8 9 10; do grep -q namespace/wx %s && exit 0; sleep 0.5; done; exit 1",
		 path) == 0);
	sh("kill $(cat %s.pid) 2>/dev/null; true", path);
	/* A watch honours timeoutSeconds (kubectl gives --request-timeout). */
	CHECK(KUBE(&out, NULL, "get --raw '/api/v1/namespaces?watch=true&timeoutSeconds=1&fieldSelector=metadata.name%%3Dwx'") == 0);
	CHECK(strstr(out, "\"type\":\"ADDED\"") != NULL);
	free(out);
}

/* What kubectl does not exercise, with curl. */
static void
t_raw_http(void)
{
	char *out, cmd[1200], url[64];

	snprintf(cmd, sizeof(cmd), "curl -sS --cacert %s/ca.crt -H 'Authorization: Bearer " TOKEN "'",
		 tmp);
	snprintf(url, sizeof(url), "https://" ADDR ":%u", port);
	/* YAML server-side apply from a non-kubectl client: 201 when created. */
	CHECK(run(&out, "printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: ya\\n"
			"data:\\n  k: \"1\"\\n' | %s -o /dev/null -w '%%{http_code}' -X PATCH "
			"-H 'Content-Type: application/apply-patch+yaml' --data-binary @- "
			"'%s/api/v1/namespaces/default/configmaps/ya?fieldManager=me'", cmd, url) == 0);
	CHECK_STR(out, "201");
	free(out);
	CHECK(run(&out, "printf 'data:\\n  k: \"2\"\\n' | %s -X PATCH "
			"-H 'Content-Type: application/apply-patch+yaml' --data-binary @- "
			"'%s/api/v1/namespaces/default/configmaps/ya?fieldManager=me'", cmd, url) == 0);
	CHECK(strstr(out, "\"k\":\"2\"") != NULL && strstr(out, "\"manager\":\"me\"") != NULL);
	free(out);
	/* Apply without a field manager is refused, as upstream. */
	CHECK(run(&out, "%s -X PATCH -H 'Content-Type: application/apply-patch+yaml' -d '{}' "
			"%s/api/v1/namespaces/default/configmaps/ya", cmd, url) == 0);
	CHECK(strstr(out, "fieldManager: Required value") != NULL && strstr(out, "\"code\":422") != NULL);
	free(out);
	/* Protobuf of a kind the sandbox does not decode: 415, a Status. */
	CHECK(run(&out, "printf 'k8s\\000\\012\\025\\012\\007apps/v1\\022\\012Deployment' | "
			"%s -H 'Content-Type: application/vnd.kubernetes.protobuf' --data-binary @- "
			"%s/apis/apps/v1/namespaces/default/deployments", cmd, url) == 0);
	CHECK(strstr(out, "\"reason\":\"UnsupportedMediaType\"") != NULL);
	free(out);
	/* No token: 401; the version is public. */
	CHECK(run(&out, "curl -sS --cacert %s/ca.crt https://" ADDR ":%u/api/v1/namespaces", tmp, port) == 0);
	CHECK(strstr(out, "\"code\":401") != NULL);
	free(out);
	CHECK(run(&out, "curl -sS --cacert %s/ca.crt https://" ADDR ":%u/version", tmp, port) == 0);
	CHECK(strstr(out, "\"minor\":\"32\"") != NULL);
	free(out);
	/* OpenAPI v3 lists the CRD group versions. */
	CHECK(run(&out, "%s %s/openapi/v3", cmd, url) == 0);
	CHECK(strstr(out, "apis/networking.istio.io/v1beta1") != NULL);
	free(out);
	/* A watch from before the retained history gets 410 Expired. */
	CHECK(run(&out, "%s '%s/api/v1/namespaces?watch=true&resourceVersion=1&timeoutSeconds=1'", cmd, url) == 0);
	CHECK(strstr(out, "\"type\":\"ERROR\"") != NULL || strstr(out, "\"type\":\"ADDED\"") != NULL ||
	      out[0] == '\0');
	free(out);
	CHECK(run(&out, "%s -X DELETE %s/api/v1/namespaces/default/configmaps/ya", cmd, url) == 0);
	CHECK(strstr(out, "\"status\":\"Success\"") != NULL);
	free(out);
}

static void
t_delete(void)
{
	char *out;

	NEED_KUBECTL();
	if (fixtures[0] != '\0') {
		CHECK(KUBE(&out, NULL, "delete -n ob3 -f %s/v0.10.6/kubernetes-manifests.yaml", fixtures) == 0);
		CHECK_INT(count(out, " deleted"), 35);
		free(out);
		CHECK(KUBE(&out, NULL, "get deploy,svc,rs -n ob3") == 0);
		CHECK(strstr(out, "No resources found") != NULL);
		free(out);
		/* Garbage collection took the pods of the deleted deployments. */
		CHECK(KUBE(&out, NULL, "wait --for=delete pods --all -n ob3 --timeout=20s") == 0);
		free(out);
	}
	CHECK(KUBE(&out, NULL, "delete namespace ob3 ob4 wx") == 0);
	CHECK_INT(count(out, " deleted"), 3);
	free(out);
	CHECK(KUBE(&out, NULL, "get ns ob3") != 0);
	CHECK(strstr(out, "NotFound") != NULL);
	free(out);
	CHECK(KUBE(&out, NULL, "get ns -o name") == 0);
	CHECK(strstr(out, "ob1") != NULL && strstr(out, "ob4") == NULL);
	free(out);
	CHECK(KUBE(&out, NULL, "create configmap late -n ob3") != 0);
	CHECK(strstr(out, "namespaces \"ob3\" not found") != NULL);
	free(out);
}

static void
t_wrong_token(void)
{
	char *out;

	NEED_KUBECTL();
	CHECK(KUBE(&out, "1.32", "--token=wrong get ns") != 0);
	CHECK(strstr(out, "Unauthorized") != NULL);
	free(out);
}

static void
t_accessors(void)
{
	json_t *o = NULL, *l = NULL, *cm;
	struct or_err err;
	int i;

	CHECK(kube_get_object(kube, "v1", "namespaces", NULL, "default", &o, &err) == OR_OK);
	CHECK_STR(kube_sget(o, "status.phase"), "Active");
	json_decref(o);
	CHECK(kube_get_object(kube, "v1", "namespaces", NULL, "nope", &o, &err) == OR_E_NOTFOUND);
	CHECK(kube_list(kube, "v1", "services", "default", NULL, &l, &err) == OR_OK);
	CHECK_INT(json_array_size(l), 1);
	CHECK_STR(kube_sget(json_array_get(l, 0), "spec.clusterIP"), "10.96.0.1");
	json_decref(l);
	cm = J("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"acc\","
	       "\"namespace\":\"default\",\"labels\":{\"a\":\"b\"}},\"data\":{\"k\":\"v\"}}");
	CHECK(kube_apply_object(kube, cm, &o, &err) == OR_OK);
	CHECK(o != NULL && kube_sget(o, "metadata.uid")[0] != '\0');
	json_decref(o);
	json_object_set_new(json_object_get(cm, "data"), "k", json_string("w"));
	CHECK(kube_apply_object(kube, cm, NULL, &err) == OR_OK);
	CHECK(kube_list(kube, "v1", "configmaps", NULL, "a=b", &l, &err) == OR_OK);
	CHECK_INT(json_array_size(l), 1);
	CHECK_STR(kube_sget(json_array_get(l, 0), "data.k"), "w");
	json_decref(l);
	CHECK(kube_delete_object(kube, "v1", "configmaps", "default", "acc", &err) == OR_OK);
	CHECK(kube_get_object(kube, "v1", "configmaps", "default", "acc", &o, &err) == OR_E_NOTFOUND);
	json_decref(cm);
	for (i = 0; i < 50 && __atomic_load_n(&hook_calls, __ATOMIC_SEQ_CST) == 0; i++)
		usleep(20000);
	CHECK(__atomic_load_n(&hook_calls, __ATOMIC_SEQ_CST) > 0);
}

static void
t_restart(void)
{
	long long rv = kube_resource_version(kube);
	struct or_err err;
	char *out;

	kube_stop(kube);
	kube_free(kube);
	kube = NULL;
	CHECK(start_kube(port, &err) == OR_OK);
	if (kube == NULL) {
		fprintf(stderr, "    restart: %s\n", err.message);
		return;
	}
	CHECK(kube_resource_version(kube) == rv);
	if (!have_kubectl)
		return;
	CHECK(KUBE(&out, NULL, "get ns ob1 --show-labels") == 0);
	CHECK(strstr(out, "istio-injection=enabled") != NULL);
	free(out);
	CHECK(KUBE(&out, NULL, "get secret s1 -n ob1 -o name") == 0);
	free(out);
	if (fixtures[0] != '\0') {
		CHECK(KUBE(&out, NULL, "get deploy -n ob2 --no-headers") == 0);
		CHECK_INT(lines(out), 12);
		free(out);
		CHECK(KUBE(&out, NULL, "apply -n ob2 -f %s/v0.10.6/kubernetes-manifests.yaml", fixtures) == 0);
		CHECK_INT(count(out, " unchanged"), 35);
		free(out);
		CHECK(KUBE(&out, NULL, "get se -n ob1 -o name") == 0);
		CHECK_INT(lines(out), 2);
		free(out);
	}
	CHECK(KUBE(&out, NULL, "create namespace after-restart") == 0);
	free(out);
	/* The watch history starts at the restart: older cursors expire. */
	CHECK(KUBE(&out, NULL, "get --raw '/api/v1/namespaces?watch=true&resourceVersion=1&timeoutSeconds=1'") == 0);
	CHECK(strstr(out, "\"reason\":\"Expired\"") != NULL && strstr(out, "\"code\":410") != NULL);
	free(out);
	CHECK(kube_resource_version(kube) > rv);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_ERROR);
	RUN(t_merge_patch);
	RUN(t_strategic_merge);
	RUN(t_json_patch);
	RUN(t_yaml);
	RUN(t_selectors);
	RUN(t_protobuf);
	setup();
	if (getenv("KUBE_TEST_SERVE") != NULL) {
		/* Debugging: a live server to point kubectl at by hand. */
		printf("export HOME=%s KUBECONFIG=%s\n", getenv("HOME"), getenv("KUBECONFIG"));
		fflush(stdout);
		sleep((unsigned)atoi(getenv("KUBE_TEST_SERVE")));
		teardown();
		return 0;
	}
	RUN(t_version_get_ns);
	RUN(t_create_namespace);
	RUN(t_secret_from_file);
	RUN(t_label_namespace);
	RUN(t_apply_boutique);
	RUN(t_rollout);
	RUN(t_loadbalancer_ip);
	RUN(t_upgrade_and_patch);
	RUN(t_rbac_scale_logs_replace);
	RUN(t_crds);
	RUN(t_watch);
	RUN(t_raw_http);
	RUN(t_delete);
	RUN(t_wrong_token);
	RUN(t_accessors);
	RUN(t_restart);
	teardown();
	return check_done("kube");
}

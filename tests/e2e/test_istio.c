/*
 * test_istio.c - the rollout's istio-install and vm-files plugins run by the
 * real step runner (build/outrigger-step, plugins/NAME.so) against
 * `outrigger sandbox`, and judged by real clients: kubectl (through
 * `gcloud container clusters get-credentials`, as tests/sandbox/gcloud.sh
 * does) for what landed in the cluster, `openssl verify` and `openssl
 * x509` for the VM's certificate.
 *
 * The server's side of docs/engine.md is played here: each step gets a job
 * with the state and secrets earlier attempts recorded, so re-apply and
 * destroy see what a real run would.
 *
 * As root it runs in a network namespace with only loopback.  Prints
 * "e2e-istio: N passed, N failed[, N skipped]".
 */
#define CHECK_MAIN
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clients/harness.h"

#define PROJECT "istio-e2e"
#define ZONE "us-west2-a"
#define V_CURRENT "1.29.0"
#define V_LEGACY "1.6.5"
#define STEP_TIMEOUT_S 300

static struct hx_sandbox sb;
static char tw[512];		/* the test's directory */
static char bin[PATH_MAX], step_bin[PATH_MAX], plugins_dir[PATH_MAX];
static json_t *provider;
static int have_sandbox, have_mirror, have_tools;

/* One cluster of the test and the mesh CA files. */
struct cluster {
	const char *name;
	char endpoint[256];
	char *ca;		/* masterAuth.clusterCaCertificate (base64) */
	char svc_cidr[64];
	int up;
};
static struct cluster west = {.name = "west"}, old = {.name = "old"};
static char *root_pem, *ca_pem, *ca_key, *chain_pem, *ca2_pem, *ca2_key;
static char vm_ip[64];		/* a Compute Engine VM's address, "" without one */

/* What the server keeps per step between attempts. */
struct step_mem {
	json_t *state;
	json_t *secrets;
	json_t *outputs;
};
static struct step_mem istio_cur, istio_old, vmf_cur, vmf_old;

/* ---- helpers ----------------------------------------------------------------- */

static char *
sh_out(int *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Run a shell command; its stdout+stderr (caller frees), *status its exit. */
static char *
sh_out(int *status, const char *fmt, ...)
{
	char body[8000], cmd[8192], chunk[4096], *out = NULL, *p;
	size_t len = 0, n;
	va_list ap;
	FILE *f;
	int st;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	/* Every command of a list, its errors too. */
	snprintf(cmd, sizeof(cmd), "{ %s\n} 2>&1", body);
	f = popen(cmd, "r");
	if (f == NULL) {
		*status = -1;
		return strdup("");
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		p = realloc(out, len + n + 1);
		if (p == NULL)
			break;
		out = p;
		memcpy(out + len, chunk, n);
		len += n;
		out[len] = '\0';
	}
	st = pclose(f);
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return out != NULL ? out : strdup("");
}

static char *
file_in(const char *name)
{
	static char path[4][700];
	static int i;

	i = (i + 1) % 4;
	snprintf(path[i], sizeof(path[i]), "%s/%s", tw, name);
	return path[i];
}

static const char *
jget(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* The step runner with job, answering state/secret/resource messages as
 * the server does (after "committing" them into mem).  The result's
 * status into status (ok|failed|retry|...), its message into msg. */
static void
run_step(json_t *job, struct step_mem *mem, char *status, size_t ssize, char *msg,
	 size_t msize, char **log_out)
{
	int in[2], proto[2], fd, st;
	char *buf = NULL, *nl, chunk[65536], logpath[700], *line;
	size_t len = 0;
	struct pollfd pfd;
	time_t deadline = time(NULL) + STEP_TIMEOUT_S;
	json_t *m;
	ssize_t n;
	pid_t pid;
	const char *t;

	status[0] = msg[0] = '\0';
	if (log_out != NULL)
		*log_out = NULL;
	json_object_set(job, "state", mem->state);
	json_object_set(job, "secrets", mem->secrets);
	if (pipe(in) != 0 || pipe(proto) != 0)
		return;
	snprintf(logpath, sizeof(logpath), "%s/step-%s-%s.log", tw, jget(job, "plugin"),
		 jget(job, "action"));
	pid = fork();
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(proto[1], 3);
		fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(step_bin, step_bin, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(proto[1]);
	line = json_dumps(job, JSON_COMPACT);
	if (line != NULL) {
		n = write(in[1], line, strlen(line));
		n = write(in[1], "\n", 1);
		(void)n;
	}
	free(line);
	for (;;) {
		if (time(NULL) > deadline) {
			kill(pid, SIGKILL);
			snprintf(msg, msize, "the step timed out");
			break;
		}
		pfd.fd = proto[0];
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 500) <= 0)
			continue;
		n = read(proto[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		nl = realloc(buf, len + (size_t)n + 1);
		if (nl == NULL)
			break;
		buf = nl;
		memcpy(buf + len, chunk, (size_t)n);
		len += (size_t)n;
		buf[len] = '\0';
		while ((nl = memchr(buf, '\n', len)) != NULL) {
			*nl = '\0';
			m = json_loads(buf, 0, NULL);
			t = jget(m, "t");
			if (t == NULL) {
			} else if (strcmp(t, "log") == 0) {
				FILE *lf = fopen(file_in("steps.log"), "a");

				if (lf != NULL) {
					fprintf(lf, "%s %s: %s: %s\n", jget(job, "plugin"),
						jget(job, "action"), jget(m, "level"), jget(m, "text"));
					fclose(lf);
				}
				if (log_out != NULL) {
					size_t o = *log_out != NULL ? strlen(*log_out) : 0;
					const char *x = jget(m, "text") != NULL ? jget(m, "text") : "";
					char *p = realloc(*log_out, o + strlen(x) + 2);

					if (p != NULL) {
						memcpy(p + o, x, strlen(x));
						p[o + strlen(x)] = '\n';
						p[o + strlen(x) + 1] = '\0';
						*log_out = p;
					}
				}
			} else if (strcmp(t, "output") == 0) {
				json_object_set(mem->outputs, jget(m, "key"), json_object_get(m, "value"));
			} else if (strcmp(t, "result") == 0) {
				snprintf(status, ssize, "%s", jget(m, "status") ? jget(m, "status") : "");
				snprintf(msg, msize, "%s: %s", jget(m, "code") ? jget(m, "code") : "",
					 jget(m, "message") ? jget(m, "message") : "");
			} else if (strcmp(t, "progress") != 0) {
				if (strcmp(t, "state") == 0)
					json_object_set(mem->state, jget(m, "key"), json_object_get(m, "value"));
				else if (strcmp(t, "secret") == 0)
					json_object_set(mem->secrets, jget(m, "name"),
							json_object_get(m, "value"));
				n = write(in[1], "{\"ok\":true}\n", 12);
			}
			json_decref(m);
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len);
			buf[len] = '\0';
		}
	}
	free(buf);
	close(proto[0]);
	close(in[1]);
	/* A runner that said ok and then failed (a sanitizer's report at
	 * exit, a crash in cleanup) fails the step here too. */
	if (waitpid(pid, &st, 0) == pid && !(WIFEXITED(st) && WEXITSTATUS(st) == 0) &&
	    strcmp(status, "ok") == 0) {
		snprintf(status, ssize, "exit");
		snprintf(msg, msize, "the runner said ok, then exited with status %d (see %s)",
			 WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), logpath);
	}
	if (status[0] == '\0')
		fprintf(stderr, "  (no result; the runner's output is in %s)\n", logpath);
}

/* Run plugin's action with inputs (decref'd here); 1 when it said ok. */
static int
step(const char *plugin, const char *action, json_t *inputs, struct step_mem *mem,
     char **log_out)
{
	char status[32], msg[2048];
	json_t *job;

	if (mem->state == NULL) {
		mem->state = json_object();
		mem->secrets = json_object();
		mem->outputs = json_object();
	}
	json_object_clear(mem->outputs);
	job = json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:s, s:s, s:s, s:s, s:s}, s:O}", "action",
			action, "plugin", plugin, "plugins_dir", plugins_dir, "inputs", inputs,
			"info", "environment", "e2e", "provider", "sandbox", "step", plugin, "run",
			"1", "attempt", "1", "plugin", plugin, "provider", provider);
	run_step(job, mem, status, sizeof(status), msg, sizeof(msg), log_out);
	json_decref(job);
	if (strcmp(status, "ok") != 0)
		fprintf(stderr, "  %s %s: %s %s\n", plugin, action, status, msg);
	return strcmp(status, "ok") == 0;
}

static void
mem_free(struct step_mem *m)
{
	json_decref(m->state);
	json_decref(m->secrets);
	json_decref(m->outputs);
	memset(m, 0, sizeof(*m));
}

static int
kubectl_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* 1 when `kubectl ARGS` exits 0; the output is printed when it does not. */
static int
kubectl_ok(const char *fmt, ...)
{
	char args[4096], *out;
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	out = sh_out(&st, "kubectl %s", args);
	if (st != 0)
		fprintf(stderr, "  kubectl %s: exit %d: %.500s\n", args, st, out);
	free(out);
	return st == 0;
}

/* ---- the world ----------------------------------------------------------------- */

static int
cluster_create(struct cluster *c)
{
	char url[512], body[1024], *out = NULL;
	json_t *j;
	int i;

	snprintf(url, sizeof(url), "%sv1/projects/" PROJECT "/zones/" ZONE "/clusters",
		 hx_endpoint(&sb, "container"));
	snprintf(body, sizeof(body),
		 "{\"cluster\":{\"name\":\"%s\",\"network\":\"default\",\"ipAllocationPolicy\":"
		 "{\"useIpAliases\":true},\"nodePools\":[{\"name\":\"default-pool\","
		 "\"initialNodeCount\":3,\"config\":{\"machineType\":\"n1-standard-2\","
		 "\"imageType\":\"COS_CONTAINERD\"}}]}}", c->name);
	if (hx_http("POST", url, sb.token, body, &out) != 200) {
		fprintf(stderr, "  cluster create: %.400s\n", out != NULL ? out : "");
		free(out);
		return -1;
	}
	free(out);
	snprintf(url, sizeof(url), "%sv1/projects/" PROJECT "/zones/" ZONE "/clusters/%s",
		 hx_endpoint(&sb, "container"), c->name);
	for (i = 0; i < 600; i++) {
		out = NULL;
		hx_http("GET", url, sb.token, NULL, &out);
		j = out != NULL ? json_loads(out, 0, NULL) : NULL;
		free(out);
		if (j != NULL && jget(j, "status") != NULL && strcmp(jget(j, "status"), "RUNNING") == 0) {
			snprintf(c->endpoint, sizeof(c->endpoint), "%s", jget(j, "endpoint"));
			c->ca = strdup(jget(json_object_get(j, "masterAuth"), "clusterCaCertificate"));
			snprintf(c->svc_cidr, sizeof(c->svc_cidr), "%s", jget(j, "servicesIpv4Cidr"));
			json_decref(j);
			c->up = 1;
			return 0;
		}
		json_decref(j);
		usleep(100000);
	}
	return -1;
}

/* kubectl's context for cluster c, the way the tutorial gets it. */
static int
use_cluster(const struct cluster *c)
{
	int st;
	char *out = sh_out(&st, "gcloud container clusters get-credentials %s --zone " ZONE,
			   c->name);

	if (st != 0)
		fprintf(stderr, "  get-credentials: %.400s\n", out);
	free(out);
	return st == 0;
}

/* A mesh CA made with openssl(1): root, and an intermediate (or a second
 * one for the rotation test) with the extensions Istio wants. */
static int
make_ca(void)
{
	int st;
	char *out = sh_out(&st,
		"cd %s && printf '[req]\\ndistinguished_name=dn\\n[dn]\\n"
		"[v3_ca]\\nbasicConstraints=critical,CA:true\\n"
		"keyUsage=critical,keyCertSign,cRLSign,digitalSignature\\n"
		"subjectKeyIdentifier=hash\\n[v3_int]\\nbasicConstraints=critical,CA:true,pathlen:0\\n"
		"keyUsage=critical,keyCertSign,cRLSign,digitalSignature\\n"
		"subjectKeyIdentifier=hash\\nauthorityKeyIdentifier=keyid\\n"
		"subjectAltName=DNS:istiod.istio-system.svc\\n' > ext.cnf && "
		"openssl req -x509 -newkey rsa:2048 -nodes -keyout root-key.pem -out root-cert.pem "
		"-days 3650 -subj '/O=Outrigger e2e/CN=Root CA' -config ext.cnf -extensions v3_ca && "
		"for n in 1 2; do "
		"openssl req -newkey rsa:2048 -nodes -keyout ca$n-key.pem -out ca$n.csr -config ext.cnf "
		"-subj \"/O=Outrigger e2e/CN=Intermediate CA $n/L=west\" && "
		"openssl x509 -req -in ca$n.csr -CA root-cert.pem -CAkey root-key.pem -CAcreateserial "
		"-days 3650 -extfile ext.cnf -extensions v3_int -out ca$n-cert.pem || exit 1; done && "
		"cat ca1-cert.pem root-cert.pem > cert-chain.pem && "
		"cat ca2-cert.pem root-cert.pem > cert-chain2.pem", tw);

	if (st != 0) {
		fprintf(stderr, "  openssl: %.800s\n", out);
		free(out);
		return -1;
	}
	free(out);
	root_pem = hx_slurp(file_in("root-cert.pem"));
	ca_pem = hx_slurp(file_in("ca1-cert.pem"));
	ca_key = hx_slurp(file_in("ca1-key.pem"));
	ca2_pem = hx_slurp(file_in("ca2-cert.pem"));
	ca2_key = hx_slurp(file_in("ca2-key.pem"));
	chain_pem = hx_slurp(file_in("cert-chain.pem"));
	return root_pem && ca_pem && ca_key && ca2_pem && ca2_key && chain_pem ? 0 : -1;
}

/* A VM of the sandbox (its address is where the sidecar connects from). */
static int
vm_create(void)
{
	char url[512], *out = NULL;
	const char *body =
		"{\"name\":\"istio-gce\",\"machineType\":\"zones/" ZONE "/machineTypes/n1-standard-2\","
		"\"tags\":{\"items\":[\"istio-gce\"]},\"disks\":[{\"boot\":true,\"autoDelete\":true,"
		"\"initializeParams\":{\"sourceImage\":\"projects/ubuntu-os-cloud/global/images/"
		"family/ubuntu-2204-lts\"}}],\"networkInterfaces\":[{\"network\":"
		"\"global/networks/default\"}]}";
	json_t *j;
	int i;

	snprintf(url, sizeof(url), "%sprojects/" PROJECT "/zones/" ZONE "/instances",
		 hx_endpoint(&sb, "compute"));
	if (hx_http("POST", url, sb.token, body, &out) != 200) {
		fprintf(stderr, "  instance insert: %.400s\n", out != NULL ? out : "");
		free(out);
		return -1;
	}
	free(out);
	strncat(url, "/istio-gce", sizeof(url) - strlen(url) - 1);
	for (i = 0; i < 600; i++) {
		out = NULL;
		hx_http("GET", url, sb.token, NULL, &out);
		j = out != NULL ? json_loads(out, 0, NULL) : NULL;
		free(out);
		if (j != NULL && jget(j, "status") != NULL && strcmp(jget(j, "status"), "RUNNING") == 0) {
			snprintf(vm_ip, sizeof(vm_ip), "%s", jget(json_array_get(json_object_get(j,
				 "networkInterfaces"), 0), "networkIP"));
			json_decref(j);
			return vm_ip[0] != '\0' ? 0 : -1;
		}
		json_decref(j);
		usleep(100000);
	}
	return -1;
}

/* What the sidecar's istio-start.sh does with the VM's files: connect to
 * istiod.istio-system.svc:15012 through the hosts line, from the VM's own
 * address, checking istiod against root-cert.pem, presenting the token or
 * the certificate, sending cluster.env.  The sandbox's istiod answer. */
static char *
sidecar_connect(const json_t *bundle)
{
	const char *hosts = jget(bundle, "hosts"), *tok = jget(bundle, "istio-token");
	char gw[64] = "", cred[1500];
	int st;

	sscanf(hosts != NULL ? hosts : "", "%63s", gw);
	hx_write(file_in("c-root.pem"), jget(bundle, "root-cert.pem"));
	hx_write(file_in("c-cluster.env"), jget(bundle, "cluster.env"));
	if (tok != NULL) {
		char *hdr = malloc(strlen(tok) + 64);

		snprintf(hdr, strlen(tok) + 64, "Authorization: Bearer %s\n", tok);
		hx_write(file_in("c-auth"), hdr);
		free(hdr);
		snprintf(cred, sizeof(cred), "-H @%s", file_in("c-auth"));
	} else {
		hx_write(file_in("c-chain.pem"), jget(bundle, "cert-chain.pem"));
		hx_write(file_in("c-key.pem"), jget(bundle, "key.pem"));
		snprintf(cred, sizeof(cred), "--cert %s --key %s", file_in("c-chain.pem"),
			 file_in("c-key.pem"));
	}
	return sh_out(&st, "curl -sS --noproxy '*' --max-time 20 --interface %s --cacert %s "
		      "--resolve istiod.istio-system.svc:15012:%s -H 'X-Outrigger-Vm-Ip: %s' %s "
		      "--data-binary @%s https://istiod.istio-system.svc:15012/outrigger.sandbox.v1/Connect",
		      vm_ip, file_in("c-root.pem"), gw, vm_ip, cred, file_in("c-cluster.env"));
}

/* ---- tests ---------------------------------------------------------------------- */

static void
t_world(void)
{
	char dir[600], ep[700], cache[700];
	const char *need_tools[] = {"kubectl", "gcloud", "openssl", NULL};
	int i, st;
	char *out;

	have_tools = 1;
	for (i = 0; need_tools[i] != NULL; i++) {
		out = sh_out(&st, "command -v %s", need_tools[i]);
		free(out);
		if (st != 0) {
			fprintf(stderr, "  %s is not installed\n", need_tools[i]);
			have_tools = 0;
		}
	}
	if (!have_tools)
		SKIP("kubectl, gcloud and openssl are needed to judge the result");
	snprintf(dir, sizeof(dir), "%s/sb", tw);
	CHECK(hx_sandbox_start(&sb, bin, dir, 0.01) == 0);
	if (sb.endpoints == NULL)
		return;
	have_sandbox = 1;
	have_mirror = json_is_object(json_object_get(sb.endpoints, "mirrors"));
	provider = json_deep_copy(sb.endpoints);
	json_object_set_new(provider, "name", json_string("sandbox"));
	snprintf(cache, sizeof(cache), "%s/cache", tw);
	json_object_set_new(provider, "cache_dir", json_string(cache));
	snprintf(ep, sizeof(ep), "%s/home", tw);
	mkdir(ep, 0700);
	setenv("HOME", ep, 1);
	setenv("CLOUDSDK_CONFIG", file_in("gcloud"), 1);
	setenv("KUBECONFIG", file_in("kubeconfig"), 1);
	setenv("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", hx_endpoint(&sb, "access_token_file"), 1);
	setenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER", hx_endpoint(&sb, "container"), 1);
	setenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE", hx_endpoint(&sb, "compute"), 1);
	setenv("CLOUDSDK_CORE_PROJECT", PROJECT, 1);
	setenv("CLOUDSDK_CORE_DISABLE_PROMPTS", "1", 1);
	setenv("CLOUDSDK_CORE_DISABLE_USAGE_REPORTING", "true", 1);
	setenv("CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK", "true", 1);
	setenv("GCE_METADATA_ROOT", "127.0.0.1:9", 1);
	CHECK(make_ca() == 0);
	CHECK(cluster_create(&west) == 0);
	CHECK(use_cluster(&west));
	if (geteuid() == 0)
		CHECK(vm_create() == 0);
	else
		fprintf(stderr, "  note: not root: the sandbox has no VMs to connect from\n");
	if (!have_mirror)
		fprintf(stderr, "  note: the sandbox's endpoints.json has no \"mirrors\" yet: "
			"istio-install cannot download Istio\n");
}

static json_t *
istio_inputs(const struct cluster *c, const char *flow)
{
	json_t *in = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "flow", flow,
			       "endpoint", c->endpoint, "ca_certificate", c->ca, "version",
			       strcmp(flow, "legacy") == 0 ? V_LEGACY : V_CURRENT, "profile", "demo",
			       "namespace", "istio-system", "root_cert", root_pem, "ca_cert", ca_pem,
			       "cert_chain", chain_pem, "ca_key_ref", "mesh_ca_key");

	if (strcmp(flow, "legacy") == 0) {
		json_object_set_new(in, "mesh_expansion", json_true());
	} else {
		json_object_set_new(in, "mesh_id", json_string("mesh1"));
		json_object_set_new(in, "cluster_id", json_string(c->name));
		json_object_set_new(in, "network", json_string(""));
		json_object_set_new(in, "east_west_gateway", json_true());
		json_object_set_new(in, "expose_istiod", json_true());
		json_object_set_new(in, "gateway_api_crds", json_true());
		json_object_set_new(in, "addons", json_pack("[s, s]", "prometheus", "kiali"));
	}
	return in;
}

static void
secrets_seed(struct step_mem *m)
{
	if (m->state == NULL) {
		m->state = json_object();
		m->secrets = json_object();
		m->outputs = json_object();
	}
	json_object_set_new(m->secrets, "mesh_ca_key", json_string(ca_key));
}

static void
t_istio_current(void)
{
	char *out, want[128];
	const char *ip;
	int st;

	if (!have_sandbox || !west.up)
		SKIP("no sandbox or cluster");
	if (!have_mirror)
		SKIP("the sandbox serves no download mirror (endpoints.json has no \"mirrors\")");
	secrets_seed(&istio_cur);
	CHECK(step("istio-install", "apply", istio_inputs(&west, "current"), &istio_cur, NULL));
	ip = jget(istio_cur.outputs, "gateway_ip");
	CHECK(ip != NULL);
	if (ip == NULL)
		return;
	snprintf(want, sizeof(want), "%s:15012", ip);
	CHECK_STR(jget(istio_cur.outputs, "istiod_address"), want);
	CHECK_STR(jget(istio_cur.outputs, "istiod_host"), "istiod.istio-system.svc");
	CHECK_STR(jget(istio_cur.outputs, "cluster_id"), "west");
	CHECK_STR(jget(istio_cur.outputs, "version"), V_CURRENT);
	CHECK_STR(jget(istio_cur.outputs, "namespace"), "istio-system");

	/* What kubectl sees. */
	CHECK(use_cluster(&west));
	CHECK(kubectl_ok("-n istio-system wait --for=condition=Available deployment/istiod "
			 "--timeout=30s"));
	out = sh_out(&st, "kubectl -n istio-system get svc istio-eastwestgateway -o "
		     "jsonpath='{.status.loadBalancer.ingress[0].ip} {.spec.ports[*].port}'");
	CHECK(st == 0 && strncmp(out, ip, strlen(ip)) == 0 && strstr(out, "15012") != NULL);
	free(out);
	CHECK(kubectl_ok("-n istio-system get gateway.networking.istio.io istiod-gateway"));
	CHECK(kubectl_ok("-n istio-system get virtualservice istiod-vs"));
	CHECK(kubectl_ok("get crd gateways.gateway.networking.k8s.io httproutes.gateway.networking.k8s.io"));
	CHECK(kubectl_ok("-n istio-system get deployment kiali"));
	CHECK(kubectl_ok("get crd workloadgroups.networking.istio.io"));
	/* cacerts holds our CA, byte for byte. */
	out = sh_out(&st, "kubectl -n istio-system get secret cacerts -o "
		     "jsonpath='{.data.root-cert\\.pem}' | base64 -d | cmp - %s && "
		     "kubectl -n istio-system get secret cacerts -o "
		     "jsonpath='{.data.ca-cert\\.pem}' | base64 -d | cmp - %s && "
		     "kubectl -n istio-system get secret cacerts -o "
		     "jsonpath='{.data.ca-key\\.pem}' | base64 -d | cmp - %s && echo same",
		     file_in("root-cert.pem"), file_in("ca1-cert.pem"), file_in("ca1-key.pem"));
	CHECK(st == 0 && strstr(out, "same") != NULL);
	if (st != 0)
		fprintf(stderr, "  cacerts: %.300s\n", out);
	free(out);
	CHECK_STR(jget(istio_cur.state, "gateway_api_crds"), "installed");
}

static void
t_istio_current_again(void)
{
	char *before = NULL, *log = NULL;

	if (!have_sandbox || !have_mirror || jget(istio_cur.outputs, "gateway_ip") == NULL)
		SKIP("istio-install did not run");
	before = strdup(jget(istio_cur.outputs, "istiod_address"));
	CHECK(step("istio-install", "apply", istio_inputs(&west, "current"), &istio_cur, &log));
	CHECK_STR(jget(istio_cur.outputs, "istiod_address"), before);
	CHECK(log != NULL && strstr(log, "same CA, adopted") != NULL);
	CHECK(log != NULL && strstr(log, "in the cache") != NULL);
	free(before);
	free(log);

	/* A new intermediate: cacerts is replaced and istiod restarted to
	 * read it (it loads the plugged-in CA at start). */
	{
		json_t *in = istio_inputs(&west, "current");
		char *chain2 = hx_slurp(file_in("cert-chain2.pem")), *out;
		int st;

		json_object_set_new(istio_cur.secrets, "mesh_ca2_key", json_string(ca2_key));
		json_object_set_new(in, "ca_cert", json_string(ca2_pem));
		json_object_set_new(in, "cert_chain", json_string(chain2 != NULL ? chain2 : ""));
		json_object_set_new(in, "ca_key_ref", json_string("mesh_ca2_key"));
		log = NULL;
		CHECK(step("istio-install", "apply", in, &istio_cur, &log));
		CHECK(log != NULL && strstr(log, "with another CA: replaced") != NULL);
		CHECK(log != NULL && strstr(log, "istiod restarted") != NULL);
		out = sh_out(&st, "kubectl -n istio-system get secret cacerts -o "
			     "jsonpath='{.data.ca-cert\\.pem}' | base64 -d | cmp - %s && echo same",
			     file_in("ca2-cert.pem"));
		CHECK(st == 0 && strstr(out, "same") != NULL);
		free(out);
		out = sh_out(&st, "kubectl -n istio-system get deployment istiod -o "
			     "jsonpath='{.spec.template.metadata.annotations}'");
		CHECK(strstr(out, "outrigger/cacerts-changed") != NULL);
		free(out);
		free(chain2);
		free(log);
	}
}

static json_t *
vmf_current_inputs(void)
{
	const char *addr = jget(istio_cur.outputs, "istiod_address");

	return json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:{s:s}, s:s, s:{s:i}, s:s}, s:s, s:s, "
			 "s:s, s:s, s:s, s:s, s:s, s:i, s:b}",
			 "flow", "current", "endpoint", west.endpoint, "ca_certificate", west.ca,
			 "namespace", "default", "workload_group", "name", "productcatalogservice",
			 "labels", "app", "productcatalogservice", "service_account",
			 "productcatalogservice", "ports", "grpc", 3550, "network", "",
			 "internal_ip", "10.128.0.9", "cluster_id", "west", "mesh_id", "mesh1",
			 "trust_domain", "cluster.local", "istiod_address",
			 addr != NULL ? addr : "127.30.0.9:15012", "istiod_host",
			 "istiod.istio-system.svc", "root_cert", root_pem, "token_seconds", 3600,
			 "capture_dns", 1);
}

static json_t *
bundle_of(const struct step_mem *m)
{
	const char *v = jget(m->secrets, "vm_bundle");

	return v != NULL ? json_loads(v, 0, NULL) : NULL;
}

static void
t_vmfiles_current(void)
{
	json_t *b, *claims = NULL;
	const char *env, *mesh, *tok, *hosts, *dot1, *dot2;
	char want[200], *out, *payload;
	int st;

	if (!have_sandbox || !west.up)
		SKIP("no sandbox or cluster");
	if (jget(istio_cur.outputs, "gateway_ip") == NULL) {
		/* Without Istio from the mirror, the release's CRDs straight
		 * from the sandbox's assets stand in, so the WorkloadGroup
		 * part still runs. */
		if (!kubectl_ok("apply --server-side -f sandbox/assets/istio/crds.yaml"))
			SKIP("no Istio CRDs to hold a WorkloadGroup");
		fprintf(stderr, "  note: Istio's CRDs applied from sandbox/assets (no mirror)\n");
	}
	CHECK(step("vm-files", "apply", vmf_current_inputs(), &vmf_cur, NULL));
	CHECK_STR(jget(vmf_cur.outputs, "bundle_ref"), "vm_bundle");
	CHECK_STR(jget(vmf_cur.outputs, "workload_group"), "productcatalogservice");
	CHECK_STR(jget(vmf_cur.outputs, "service_account"), "productcatalogservice");
	b = bundle_of(&vmf_cur);
	CHECK(b != NULL);
	if (b == NULL)
		return;
	env = jget(b, "cluster.env");
	mesh = jget(b, "mesh.yaml");
	tok = jget(b, "istio-token");
	hosts = jget(b, "hosts");
	CHECK(env != NULL && mesh != NULL && tok != NULL && hosts != NULL);
	CHECK_STR(jget(b, "root-cert.pem"), root_pem);
	if (env != NULL) {
		static const char *const lines[] = {
			"CANONICAL_REVISION=latest\n", "CANONICAL_SERVICE=productcatalogservice\n",
			"ISTIO_INBOUND_PORTS=3550\n", "ISTIO_LOCAL_EXCLUDE_PORTS=15090,15021,15020\n",
			"ISTIO_META_CLUSTER_ID=west\n", "ISTIO_META_MESH_ID=mesh1\n",
			"ISTIO_META_NETWORK=''\n", "ISTIO_META_WORKLOAD_NAME=productcatalogservice\n",
			"ISTIO_METAJSON_LABELS='{\"app\":\"productcatalogservice\","
			"\"service.istio.io/canonical-name\":\"productcatalogservice\","
			"\"service.istio.io/canonical-revision\":\"latest\"}'\n",
			"ISTIO_NAMESPACE=default\n", "POD_NAMESPACE=default\n",
			"SERVICE_ACCOUNT=productcatalogservice\n", "TRUST_DOMAIN=cluster.local\n",
			"ISTIO_SVC_IP=10.128.0.9\n", "ISTIO_META_DNS_CAPTURE=true\n", NULL};
		int i;

		for (i = 0; lines[i] != NULL; i++)
			if (strstr(env, lines[i]) == NULL) {
				fprintf(stderr, "  cluster.env lacks %s", lines[i]);
				check_cur_failed = 1;
			}
		/* It must read back in a shell as the sidecar's script does. */
		hx_write(file_in("cluster.env"), env);
		out = sh_out(&st, "set -a; . %s; printf '%%s|%%s' \"$ISTIO_INBOUND_PORTS\" "
			     "\"$ISTIO_METAJSON_LABELS\"", file_in("cluster.env"));
		CHECK(st == 0 && strncmp(out, "3550|{\"app\":", 12) == 0);
		free(out);
	}
	CHECK(mesh != NULL && strstr(mesh, "defaultConfig:\n  discoveryAddress: "
				     "istiod.istio-system.svc:15012\n") != NULL);
	CHECK(mesh != NULL && strstr(mesh, "  proxyMetadata:\n") != NULL &&
	      strstr(mesh, "    ISTIO_META_CLUSTER_ID: west\n") != NULL);
	snprintf(want, sizeof(want), "%.*s istiod.istio-system.svc\n",
		 (int)strcspn(jget(istio_cur.outputs, "istiod_address") != NULL
				      ? jget(istio_cur.outputs, "istiod_address") : "127.30.0.9:15012", ":"),
		 jget(istio_cur.outputs, "istiod_address") != NULL
			 ? jget(istio_cur.outputs, "istiod_address") : "127.30.0.9:15012");
	CHECK_STR(hosts, want);
	/* The token: a TokenRequest JWT for the service account, istio-ca. */
	dot1 = tok != NULL ? strchr(tok, '.') : NULL;
	dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
	CHECK(dot2 != NULL);
	if (dot2 != NULL) {
		payload = strndup(dot1 + 1, (size_t)(dot2 - dot1 - 1));
		out = sh_out(&st, "printf '%%s' '%s' | tr '_-' '/+' | "
			     "{ read -r p; while [ $(( ${#p} %% 4 )) -ne 0 ]; do p=\"$p=\"; done; "
			     "printf '%%s' \"$p\"; } | base64 -d", payload);
		claims = json_loads(out, 0, NULL);
		free(out);
		free(payload);
		CHECK(claims != NULL);
		CHECK_STR(jget(claims, "sub"), "system:serviceaccount:default:productcatalogservice");
		CHECK(json_is_array(json_object_get(claims, "aud")) &&
		      strcmp(json_string_value(json_array_get(json_object_get(claims, "aud"), 0)),
			     "istio-ca") == 0);
		CHECK_INT(json_integer_value(json_object_get(claims, "exp")) -
				  json_integer_value(json_object_get(claims, "iat")), 3600);
		json_decref(claims);
	}
	json_decref(b);

	/* What kubectl sees. */
	out = sh_out(&st, "kubectl -n default get workloadgroup productcatalogservice -o json");
	b = json_loads(out, 0, NULL);
	free(out);
	CHECK(b != NULL);
	CHECK_STR(jget(json_object_get(json_object_get(b, "spec"), "template"), "serviceAccount"),
		  "productcatalogservice");
	CHECK_INT(json_integer_value(json_object_get(json_object_get(json_object_get(
			  json_object_get(b, "spec"), "template"), "ports"), "grpc")), 3550);
	CHECK_STR(jget(json_object_get(json_object_get(json_object_get(b, "spec"), "metadata"),
				       "labels"), "app"), "productcatalogservice");
	json_decref(b);
	CHECK(kubectl_ok("-n default get serviceaccount productcatalogservice"));
	CHECK_STR(jget(vmf_cur.state, "service_account_created"), "productcatalogservice");

	/* The files are good enough for the (simulated) istiod. */
	if (vm_ip[0] != '\0' && jget(istio_cur.outputs, "gateway_ip") != NULL) {
		b = bundle_of(&vmf_cur);
		out = sidecar_connect(b);
		CHECK(strstr(out, "\"connected\"") != NULL);
		if (strstr(out, "\"connected\"") == NULL)
			fprintf(stderr, "  istiod said: %.500s\n", out);
		free(out);
		json_decref(b);
	}
}

static void
t_vmfiles_current_again(void)
{
	char *before;
	char *log = NULL;

	if (jget(vmf_cur.secrets, "vm_bundle") == NULL)
		SKIP("vm-files (current) did not run");
	before = strdup(jget(vmf_cur.secrets, "vm_bundle"));
	CHECK(step("vm-files", "apply", vmf_current_inputs(), &vmf_cur, &log));
	/* Nothing changed: the same files, the token kept. */
	CHECK_STR(jget(vmf_cur.secrets, "vm_bundle"), before);
	CHECK(log != NULL && strstr(log, "unchanged") != NULL);
	free(before);
	free(log);
}

static json_t *
vmf_legacy_inputs(const char *ca, const char *key_ref)
{
	return json_pack("{s:s, s:{s:s, s:i}, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s}", "flow",
			 "legacy", "cluster_env", "ISTIO_SERVICE_CIDR",
			 west.svc_cidr[0] != '\0' ? west.svc_cidr : "10.200.0.0/20",
			 "ISTIO_INBOUND_PORTS", 3550, "identity",
			 "spiffe://cluster.local/ns/default/sa/default", "cert_days", 365, "root_cert",
			 root_pem, "ca_cert", ca, "cert_chain", chain_pem, "ca_key_ref", key_ref,
			 "istiod_address", "127.30.0.7:15012", "istiod_host", "istiod.istio-system.svc");
}

/* The legacy bundle's files on disk, verified by openssl. */
static void
check_legacy_bundle(const char *ca_file)
{
	json_t *b = bundle_of(&vmf_old);
	const char *env, *chain, *key;
	char *out, want[200];
	int st;

	CHECK(b != NULL);
	if (b == NULL)
		return;
	env = jget(b, "cluster.env");
	chain = jget(b, "cert-chain.pem");
	key = jget(b, "key.pem");
	snprintf(want, sizeof(want), "ISTIO_INBOUND_PORTS=3550\nISTIO_SERVICE_CIDR=%s\n"
		 "ISTIO_CP_AUTH=MUTUAL_TLS\n", west.svc_cidr[0] != '\0' ? west.svc_cidr : "10.200.0.0/20");
	CHECK_STR(env, want);
	CHECK_STR(jget(b, "hosts"), "127.30.0.7 istiod.istio-system.svc\n");
	CHECK_STR(jget(b, "root-cert.pem"), root_pem);
	CHECK(chain != NULL && key != NULL);
	if (chain == NULL || key == NULL) {
		json_decref(b);
		return;
	}
	hx_write(file_in("vm-chain.pem"), chain);
	hx_write(file_in("vm-key.pem"), key);
	hx_write(file_in("vm-root.pem"), jget(b, "root-cert.pem"));
	/* The leaf (first block) against root-cert.pem, through the chain. */
	out = sh_out(&st, "cd %s && awk '/BEGIN/{n++} n==1' vm-chain.pem > vm-leaf.pem && "
		     "openssl verify -CAfile vm-root.pem -untrusted vm-chain.pem vm-leaf.pem", tw);
	CHECK(st == 0 && strstr(out, "vm-leaf.pem: OK") != NULL);
	if (st != 0)
		fprintf(stderr, "  openssl verify: %.400s\n", out);
	free(out);
	out = sh_out(&st, "cd %s && openssl x509 -in vm-leaf.pem -noout -ext subjectAltName", tw);
	CHECK(st == 0 && strstr(out, "URI:spiffe://cluster.local/ns/default/sa/default") != NULL);
	CHECK(strstr(out, "DNS:") == NULL);
	free(out);
	/* Issued by the intermediate the inputs named. */
	out = sh_out(&st, "cd %s && openssl verify -partial_chain -CAfile %s vm-leaf.pem", tw,
		     ca_file);
	CHECK(st == 0);
	free(out);
	/* The key is the certificate's. */
	out = sh_out(&st, "cd %s && [ \"$(openssl x509 -in vm-leaf.pem -noout -pubkey)\" = "
		     "\"$(openssl pkey -in vm-key.pem -pubout)\" ] && echo match", tw);
	CHECK(st == 0 && strstr(out, "match") != NULL);
	free(out);
	json_decref(b);
}

static void
t_vmfiles_legacy(void)
{
	char *first, *log = NULL;
	json_t *b;

	if (!have_sandbox || root_pem == NULL)
		SKIP("no sandbox or CA");
	secrets_seed(&vmf_old);
	json_object_set_new(vmf_old.secrets, "mesh_ca2_key", json_string(ca2_key));
	CHECK(step("vm-files", "apply", vmf_legacy_inputs(ca_pem, "mesh_ca_key"), &vmf_old, NULL));
	CHECK_STR(jget(vmf_old.outputs, "bundle_ref"), "vm_bundle");
	CHECK_STR(jget(vmf_old.outputs, "service_account"), "default");
	check_legacy_bundle(file_in("ca1-cert.pem"));
	if (jget(vmf_old.secrets, "vm_bundle") == NULL)
		return;

	/* Re-apply: the certificate is still good, so it is kept. */
	first = strdup(jget(vmf_old.secrets, "vm_bundle"));
	CHECK(step("vm-files", "apply", vmf_legacy_inputs(ca_pem, "mesh_ca_key"), &vmf_old, &log));
	CHECK_STR(jget(vmf_old.secrets, "vm_bundle"), first);
	CHECK(log != NULL && strstr(log, "kept") != NULL);
	free(log);
	log = NULL;

	/* A new intermediate: the old certificate no longer chains to it. */
	CHECK(step("vm-files", "apply", vmf_legacy_inputs(ca2_pem, "mesh_ca2_key"), &vmf_old, &log));
	b = bundle_of(&vmf_old);
	CHECK(b != NULL && strcmp(jget(vmf_old.secrets, "vm_bundle"), first) != 0);
	CHECK(log != NULL && strstr(log, "issued the VM's certificate") != NULL);
	json_decref(b);
	check_legacy_bundle(file_in("ca2-cert.pem"));
	free(first);
	free(log);

	/* The tutorial's typo is refused, not copied. */
	{
		json_t *in = vmf_legacy_inputs(ca_pem, "mesh_ca_key");
		struct step_mem m = {0};

		secrets_seed(&m);
		json_object_set_new(in, "identity", json_string("spiffee://cluster.local/vm/vmname"));
		CHECK(!step("vm-files", "apply", in, &m, NULL));
		CHECK(jget(m.secrets, "vm_bundle") == NULL);
		mem_free(&m);
	}
}

static void
t_istio_legacy(void)
{
	char *out;
	const char *ip;
	int st;

	if (!have_sandbox)
		SKIP("no sandbox");
	if (!have_mirror)
		SKIP("the sandbox serves no download mirror (endpoints.json has no \"mirrors\")");
	CHECK(cluster_create(&old) == 0);
	if (!old.up)
		return;
	secrets_seed(&istio_old);
	CHECK(step("istio-install", "apply", istio_inputs(&old, "legacy"), &istio_old, NULL));
	ip = jget(istio_old.outputs, "ingress_ip");
	CHECK(ip != NULL);
	CHECK_STR(jget(istio_old.outputs, "version"), V_LEGACY);
	CHECK(use_cluster(&old));
	out = sh_out(&st, "kubectl -n istio-system get svc istio-ingressgateway -o "
		     "jsonpath='{.status.loadBalancer.ingress[0].ip} {.spec.ports[*].port}'");
	CHECK(st == 0 && ip != NULL && strncmp(out, ip, strlen(ip)) == 0 &&
	      strstr(out, "15012") != NULL && strstr(out, "15011") != NULL);
	free(out);
	/* The 1.6 demo profile's Kiali, for `istioctl dashboard kiali`. */
	CHECK(kubectl_ok("-n istio-system get pods -l app=kiali -o name"));
	CHECK(kubectl_ok("-n istio-system get deployment kiali"));
	CHECK(kubectl_ok("-n istio-system get secret cacerts"));
	/* No east-west gateway or Gateway API on this flow. */
	out = sh_out(&st, "kubectl -n istio-system get svc istio-eastwestgateway");
	CHECK(st != 0);
	free(out);

	/* The VM's certificate, accepted by istiod through mesh expansion. */
	if (vm_ip[0] != '\0' && ip != NULL) {
		struct step_mem m = {0};
		json_t *in = vmf_legacy_inputs(ca_pem, "mesh_ca_key"), *b;

		secrets_seed(&m);
		json_object_set_new(in, "istiod_address", json_string(jget(istio_old.outputs,
									    "istiod_address")));
		CHECK(step("vm-files", "apply", in, &m, NULL));
		b = bundle_of(&m);
		out = sidecar_connect(b);
		CHECK(strstr(out, "\"connected\"") != NULL &&
		      strstr(out, "spiffe://cluster.local/ns/default/sa/default") != NULL);
		if (strstr(out, "\"connected\"") == NULL)
			fprintf(stderr, "  istiod said: %.500s\n", out);
		free(out);
		json_decref(b);
		mem_free(&m);
	}
	CHECK(use_cluster(&west));
}

static void
t_destroy(void)
{
	char *out;
	int st;

	if (!have_sandbox || !west.up)
		SKIP("no cluster");
	if (jget(vmf_cur.secrets, "vm_bundle") != NULL) {
		CHECK(step("vm-files", "destroy", vmf_current_inputs(), &vmf_cur, NULL));
		out = sh_out(&st, "kubectl -n default get workloadgroup productcatalogservice");
		CHECK(st != 0 && strstr(out, "NotFound") != NULL);
		free(out);
		out = sh_out(&st, "kubectl -n default get serviceaccount productcatalogservice");
		CHECK(st != 0 && strstr(out, "NotFound") != NULL);
		free(out);
		CHECK_STR(jget(vmf_cur.secrets, "vm_bundle"), "{}");
		/* Again: absent is fine. */
		CHECK(step("vm-files", "destroy", vmf_current_inputs(), &vmf_cur, NULL));
	}
	if (jget(vmf_old.secrets, "vm_bundle") != NULL) {
		CHECK(step("vm-files", "destroy", vmf_legacy_inputs(ca_pem, "mesh_ca_key"), &vmf_old,
			   NULL));
		CHECK_STR(jget(vmf_old.secrets, "vm_bundle"), "{}");
	}
	if (jget(istio_cur.outputs, "gateway_ip") != NULL) {
		CHECK(step("istio-install", "destroy", istio_inputs(&west, "current"), &istio_cur,
			   NULL));
		CHECK(use_cluster(&west));
		out = sh_out(&st, "kubectl get crd workloadgroups.networking.istio.io");
		CHECK(st != 0);
		free(out);
		out = sh_out(&st, "kubectl get crd gateways.gateway.networking.k8s.io");
		CHECK(st != 0);
		free(out);
		out = sh_out(&st, "kubectl -n istio-system get deployment istiod");
		CHECK(st != 0);
		free(out);
		out = sh_out(&st, "kubectl get clusterrole istiod-istio-system -o name; "
			     "kubectl get ns istio-system -o jsonpath='{.status.phase}'");
		CHECK(strstr(out, "clusterrole") == NULL || strstr(out, "NotFound") != NULL);
		CHECK(strstr(out, "Active") == NULL);
		free(out);
		CHECK(step("istio-install", "destroy", istio_inputs(&west, "current"), &istio_cur,
			   NULL));
	}
	if (jget(istio_old.outputs, "gateway_ip") != NULL) {
		CHECK(step("istio-install", "destroy", istio_inputs(&old, "legacy"), &istio_old, NULL));
		CHECK(use_cluster(&old));
		out = sh_out(&st, "kubectl -n istio-system get svc istio-ingressgateway");
		CHECK(st != 0);
		free(out);
	}
}

/* plan: before any step ran, inputs from other steps are placeholders. */
static void
t_plan(void)
{
	struct step_mem m = {0};
	json_t *in;

	if (!have_sandbox)
		SKIP("no sandbox");
	in = json_pack("{s:s, s:s, s:s, s:s, s:s}", "flow", "current", "endpoint",
		       "(known after apply)", "ca_certificate", "(known after apply)", "version",
		       V_CURRENT, "cluster_id", "(known after apply)");
	CHECK(step("istio-install", "plan", in, &m, NULL));
	in = json_pack("{s:s, s:s, s:s}", "flow", "legacy", "identity", "(known after apply)",
		       "istiod_address", "(known after apply)");
	CHECK(step("vm-files", "plan", in, &m, NULL));
	/* plan changes nothing */
	CHECK_INT(json_object_size(m.state), 0);
	CHECK_INT(json_object_size(m.secrets), 0);
	mem_free(&m);
}

int
main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	/* OUTRIGGER_STEP_BIN and OUTRIGGER_PLUGINS_DIR: the ASan builds
	 * (make test-e2e-istio-asan). */
	if (realpath(getenv("OUTRIGGER_BIN") != NULL ? getenv("OUTRIGGER_BIN") : "build/outrigger",
		     bin) == NULL ||
	    realpath(getenv("OUTRIGGER_STEP_BIN") != NULL ? getenv("OUTRIGGER_STEP_BIN")
							  : "build/outrigger-step", step_bin) == NULL ||
	    realpath(getenv("OUTRIGGER_PLUGINS_DIR") != NULL ? getenv("OUTRIGGER_PLUGINS_DIR")
							     : "plugins", plugins_dir) == NULL) {
		printf("e2e-istio: SKIP: run from the repository root after make "
		       "(build/outrigger, build/outrigger-step)\n");
		printf("e2e-istio: 0 passed, 0 failed, 1 skipped\n");
		return 0;
	}
	if (hx_isolate_network() != 0)
		fprintf(stderr, "warning: could not isolate the network\n");
	if (hx_tmpdir(tw, sizeof(tw), "outrigger-e2e-istio") != 0) {
		printf("e2e-istio: 0 passed, 1 failed\n");
		return 1;
	}
	RUN(t_world);
	RUN(t_plan);
	RUN(t_istio_current);
	RUN(t_istio_current_again);
	RUN(t_vmfiles_current);
	RUN(t_vmfiles_current_again);
	RUN(t_vmfiles_legacy);
	RUN(t_istio_legacy);
	RUN(t_destroy);
	hx_sandbox_stop(&sb);
	mem_free(&istio_cur);
	mem_free(&istio_old);
	mem_free(&vmf_cur);
	mem_free(&vmf_old);
	json_decref(provider);
	free(west.ca);
	free(old.ca);
	free(root_pem);
	free(ca_pem);
	free(ca_key);
	free(ca2_pem);
	free(ca2_key);
	free(chain_pem);
	if (getenv("KEEP_E2E") == NULL && check_failed == 0)
		hx_rmrf(tw);
	else
		fprintf(stderr, "the test's files are in %s\n", tw);
	return check_done("e2e-istio");
}

/*
 * test_ssh.c - the product's SSH client (server/ssh.c) judged against real
 * sshd VMs of the sandbox, through the real step runner and loader: a test
 * plugin (tests/plugins/sshprobe.c) calls ssh_open/upload/exec, and the
 * runner's protocol lines say what happened.
 *
 * The sandbox is started here (`outrigger sandbox`) and VMs are made with
 * its Compute REST API, carrying an ssh-keys entry of a key made with
 * pki_ssh_keypair.  VMs need root; without it every test skips saying so.
 * As root the whole runner moves into a new network namespace with only
 * loopback first, so its VMs' 127.10.x.y:22 cannot collide with another
 * sandbox on this machine and nothing can leave it.
 *
 * Environment: OUTRIGGER_BIN (the sandbox, build/outrigger), SSH_TEST_RUNNER
 * (build/outrigger-step, or build/asan/outrigger-step).
 */
#define CHECK_MAIN
#include "check.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "outrigger/plugin.h"
#include "pki.h"
#include "harness.h"

#define ZONE "us-west2-a"
#define PROJECT "ssh-test-project"
#define USER "alice"
#define KEY_REF "vm_key"

static const char *runner = "build/outrigger-step";
static const char *sandbox_bin = "build/outrigger";
static char tmp[64];
static int ready;		/* the sandbox runs with VMs */
static char why_not[512] = "not set up";
static struct hx_sandbox sb;	/* its endpoints.json and token */
static char *priv_key, *pub_key;	/* alice's key, in the VM's metadata */
static char *other_key;		/* a key no VM knows */
static char ip_a[64];		/* VM a, RUNNING */
static char ip_b[64];		/* VM b, made by t_retry_until_up */
static pid_t mirror_pid = -1;	/* the test's download mirror */
static int mirror_port;
static char pinned_key[80], pinned_val[200];	/* what the first login pinned */

/* ---- small helpers ----------------------------------------------------- */

static long
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long)(t.tv_sec * 1000 + t.tv_nsec / 1000000);
}

static int
sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A Compute API call; the parsed answer (caller's), NULL on no answer. */
static json_t *
api(const char *method, const char *path, const char *body, long *status)
{
	char url[1024], *text = NULL;
	json_t *j;

	snprintf(url, sizeof(url), "%s%s", hx_endpoint(&sb, "compute"), path);
	*status = hx_http(method, url, sb.token, body, &text);
	j = *status != 0 ? json_loads(text, 0, NULL) : NULL;
	free(text);
	return j;
}

/* Insert instance name with alice's key; its IP into ip.  0 or -1. */
static int
vm_insert(const char *name, char *ip, size_t ip_size)
{
	char path[256], keys[1024];
	json_t *body, *ans;
	char *text;
	long st;

	snprintf(keys, sizeof(keys), USER ":%s", pub_key);
	body = json_pack("{s:s, s:s, s:[{s:b, s:b, s:{s:s}}], s:[{s:s, s:[{s:s, s:s}]}],"
			 " s:{s:[{s:s, s:s}]}}",
			 "name", name, "machineType", "zones/" ZONE "/machineTypes/n1-standard-2",
			 "disks", "boot", 1, "autoDelete", 1, "initializeParams", "sourceImage",
			 "projects/debian-cloud/global/images/family/debian-12",
			 "networkInterfaces", "network", "global/networks/default",
			 "accessConfigs", "type", "ONE_TO_ONE_NAT", "name", "External NAT",
			 "metadata", "items", "key", "ssh-keys", "value", keys);
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	snprintf(path, sizeof(path), "projects/" PROJECT "/zones/" ZONE "/instances");
	ans = api("POST", path, text, &st);
	free(text);
	json_decref(ans);
	if (st != 200) {
		fprintf(stderr, "  insert %s: HTTP %ld\n", name, st);
		return -1;
	}
	snprintf(path, sizeof(path), "projects/" PROJECT "/zones/" ZONE "/instances/%s", name);
	ans = api("GET", path, NULL, &st);
	snprintf(ip, ip_size, "%s",
		 json_string_value(json_object_get(
			 json_array_get(json_object_get(ans, "networkInterfaces"), 0),
			 "networkIP")) ?: "");
	json_decref(ans);
	return ip[0] != '\0' ? 0 : -1;
}

/* The instance's status ("" when unknown). */
static void
vm_status(const char *name, char *out, size_t size)
{
	char path[256];
	json_t *ans;
	long st;

	snprintf(path, sizeof(path), "projects/" PROJECT "/zones/" ZONE "/instances/%s", name);
	ans = api("GET", path, NULL, &st);
	snprintf(out, size, "%s", json_string_value(json_object_get(ans, "status")) ?: "");
	json_decref(ans);
}

static int
vm_wait_running(const char *name, long ms)
{
	long end = now_ms() + ms;
	char st[32];

	while (now_ms() < end) {
		vm_status(name, st, sizeof(st));
		if (strcmp(st, "RUNNING") == 0)
			return 0;
		usleep(100 * 1000);
	}
	return -1;
}

/* A job for the sshprobe plugin with inputs (stolen). */
static json_t *
job_for(json_t *inputs, json_t *state, const char *key)
{
	json_t *prov = json_deep_copy(sb.endpoints);

	json_object_set_new(prov, "name", json_string("sandbox"));
	return json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:s, s:s, s:s, s:s, s:s}, s:o, s:{s:s},"
			 " s:o}",
			 "action", "apply", "plugin", "sshprobe", "plugins_dir",
			 "build/test-plugins", "inputs", inputs, "info", "environment", "ssh-test",
			 "provider", "sandbox", "step", "probe", "run", "1", "attempt", "1",
			 "plugin", "sshprobe", "state", state != NULL ? state : json_object(),
			 "secrets", KEY_REF, key, "provider", prov);
}

/* Run the runner on job; a runner that did not exit cleanly (a crash, an
 * AddressSanitizer or leak report) fails the test that ran it. */
static int
run_job(json_t *job, const char *term_on, long timeout_ms, struct hx_step *r)
{
	struct hx_step_opts o = {timeout_ms, term_on, 1};

	if (hx_step_run_opts(runner, job, &o, r) != 0) {
		CHECK(!"the runner could not be started");
		return -1;
	}
	CHECK_INT(r->exit_status, 0);
	CHECK(r->err == NULL || strstr(r->err, "Sanitizer") == NULL);
	return 0;
}

/* Run sshprobe on VM a as alice with the extra inputs (stolen). */
static void
probe(json_t *extra, json_t *state, const char *key, const char *term_on, struct hx_step *r)
{
	json_t *in = json_pack("{s:s, s:s, s:s, s:i}", "host", ip_a, "user", USER, "key_ref",
			       KEY_REF, "timeout_ms", 30000);
	json_t *job;

	json_object_update(in, extra);
	json_decref(extra);
	job = job_for(in, state, key);
	run_job(job, term_on, 120000, r);
	json_decref(job);
}

/* Print what a failing test needs to see. */
static void
dump(const struct hx_step *r)
{
	char *all = json_dumps(r->msgs, JSON_COMPACT);

	fprintf(stderr, "  runner exit %d after %ld ms; messages: %.3000s\n  stderr: %.1000s\n",
		r->exit_status, r->ms, all != NULL ? all : "", r->err != NULL ? r->err : "");
	free(all);
}

/* A distinctive piece of a private key's body (its second line). */
static void
key_piece(const char *key, char *out, size_t size)
{
	const char *l2 = strchr(key, '\n');

	snprintf(out, size, "%.40s", l2 != NULL ? l2 + 1 : key);
}

/* ---- setup --------------------------------------------------------------- */

static int
start_sandbox(void)
{
	char path[256], line[512];
	int no_vm = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/sb", tmp);
	if (hx_sandbox_start(&sb, sandbox_bin, path, 0.2) != 0) {
		snprintf(why_not, sizeof(why_not), "the sandbox did not start (see %s/sb.err)", tmp);
		return -1;
	}
	if (hx_endpoint(&sb, "compute") == NULL || sb.token[0] == '\0') {
		snprintf(why_not, sizeof(why_not), "the sandbox wrote no usable endpoints.json");
		return -1;
	}
	/* The sandbox says at start when it cannot run VMs. */
	snprintf(path, sizeof(path), "%s/sb.err", tmp);
	f = fopen(path, "r");
	while (f != NULL && !no_vm && fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, "will have no VM") != NULL) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(why_not, sizeof(why_not), "%.500s", line);
			no_vm = 1;
		}
	}
	if (f != NULL)
		fclose(f);
	return no_vm ? -1 : 0;
}

static void
t_setup(void)
{
	struct or_err e;

	if (geteuid() != 0) {
		snprintf(why_not, sizeof(why_not),
			 "needs root (sandbox VMs are sshd processes in namespaces on port 22)");
		SKIP(why_not);
	}
	if (access(runner, X_OK) != 0 || access(sandbox_bin, X_OK) != 0 ||
	    access("build/test-plugins/sshprobe.so", R_OK) != 0) {
		fprintf(stderr, "  build %s, %s and build/test-plugins/sshprobe.so first\n", runner,
			sandbox_bin);
		CHECK(0);
		return;
	}
	CHECK_INT(pki_ssh_keypair(USER, &priv_key, &pub_key, &e), OR_OK);
	{
		char *junk = NULL;

		CHECK_INT(pki_ssh_keypair("mallory", &other_key, &junk, &e), OR_OK);
		free(junk);
	}
	if (priv_key == NULL || other_key == NULL)
		return;
	if (start_sandbox() != 0) {
		SKIP(why_not);
	}
	if (vm_insert("vm-a", ip_a, sizeof(ip_a)) != 0) {
		CHECK(0);
		return;
	}
	CHECK_INT(vm_wait_running("vm-a", 60000), 0);
	fprintf(stderr, "  vm-a RUNNING at %s\n", ip_a);
	ready = 1;
}

/* ---- the tests ----------------------------------------------------------- */

static void
t_exec_lines_in_order(void)
{
	struct hx_step r;
	const char *lvl = NULL, *key = NULL, *v;
	long t_first = 0, t_second = 0;
	char piece[64], want[32];
	int i, prev = -1, idx, ordered = 1;

	if (!ready)
		SKIP(why_not);
	/* 300 numbered lines, stderr in between, a pause, a last line without
	 * a newline. */
	probe(json_pack("{s:s}", "exec",
			"i=1; while [ $i -le 300 ]; do echo line$i; i=$((i+1)); done; "
			"echo oops >&2; echo first; sleep 2; echo second; printf 'tail'"),
	      NULL, priv_key, NULL, &r);
	CHECK_STR(r.status, "ok");
	CHECK_STR(hx_step_output(&r, "status"), "0");
	for (i = 1; i <= 300; i++) {
		snprintf(want, sizeof(want), "line%d", i);
		idx = hx_step_log_index(&r, want);
		if (idx <= prev)
			ordered = 0;
		prev = idx;
	}
	CHECK(ordered);
	CHECK(hx_step_log(&r, "line300", 0, &lvl, NULL) != NULL && strcmp(lvl, "info") == 0);
	CHECK(hx_step_log_index(&r, "oops") > 0);
	CHECK(hx_step_log(&r, "oops", 0, &lvl, NULL) != NULL && strcmp(lvl, "warn") == 0);
	CHECK(hx_step_log_index(&r, "tail") > hx_step_log_index(&r, "second"));
	/* Streamed as it came: "first" arrived about 2 s before "second". */
	CHECK(hx_step_log(&r, "first", 0, NULL, &t_first) != NULL);
	CHECK(hx_step_log(&r, "second", 0, NULL, &t_second) != NULL);
	CHECK(t_second - t_first >= 1500);
	/* The first login pinned the host key in the step's state. */
	v = hx_step_state(&r, NULL, &key);
	CHECK(v != NULL && strncmp(v, "ssh-ed25519 SHA256:", 19) == 0);
	CHECK(key != NULL && strncmp(key, "ssh_host_key_127-10-", 20) == 0);
	if (v != NULL && key != NULL) {
		snprintf(pinned_key, sizeof(pinned_key), "%s", key);
		snprintf(pinned_val, sizeof(pinned_val), "%s", v);
	}
	CHECK(hx_step_log(&r, "pinned the host key", 0, NULL, NULL) != NULL);
	key_piece(priv_key, piece, sizeof(piece));
	CHECK(!hx_step_mentions(&r, piece));
	if (check_cur_failed)
		dump(&r);
	hx_step_free(&r);
}

static void
t_exit_status(void)
{
	struct hx_step r;

	if (!ready)
		SKIP(why_not);
	probe(json_pack("{s:s}", "exec", "echo before; echo 'it broke' >&2; exit 3"), NULL,
	      priv_key, NULL, &r);
	CHECK_STR(r.status, "ok");
	CHECK_STR(hx_step_output(&r, "status"), "3");
	hx_step_free(&r);

	/* A plugin that fails on the status reports the host's reason. */
	probe(json_pack("{s:s, s:s}", "exec",
			"echo one >&2; echo two >&2; echo 'no such thing' >&2; exit 42",
			"fail_on_status", "true"),
	      NULL, priv_key, NULL, &r);
	CHECK_STR(r.status, "failed");
	CHECK_STR(r.code, "exit_status");
	CHECK(strstr(r.message, "exited with status 42") != NULL);
	CHECK(strstr(r.message, "one | two | no such thing") != NULL);
	if (check_cur_failed)
		dump(&r);
	hx_step_free(&r);

	/* Killed by a signal: 128 + N, as a shell reports it. */
	probe(json_pack("{s:s}", "exec", "kill -9 $$"), NULL, priv_key, NULL, &r);
	CHECK_STR(r.status, "ok");
	CHECK_STR(hx_step_output(&r, "status"), "137");
	if (check_cur_failed)
		dump(&r);
	hx_step_free(&r);
}

static void
t_long_line(void)
{
	struct hx_step r;
	const char *cut;

	if (!ready)
		SKIP(why_not);
	/* 40 000 bytes on one line, with a two-byte character across the
	 * place where it is cut (16 372 bytes fit before " [line cut]"), then
	 * a short line. */
	probe(json_pack("{s:s}", "exec",
			"head -c 16371 /dev/zero | tr '\\0' x; printf '\\303\\251'; "
			"head -c 23000 /dev/zero | tr '\\0' y; echo; echo after"),
	      NULL, priv_key, NULL, &r);
	CHECK_STR(r.status, "ok");
	cut = hx_step_log(&r, "[line cut]", 0, NULL, NULL);
	CHECK(cut != NULL);
	if (cut != NULL) {
		/* The half character is dropped, not mangled. */
		CHECK_INT(strlen(cut), 16371 + strlen(" [line cut]"));
		CHECK(strstr(cut, "xxx [line cut]") != NULL);
		CHECK(strchr(cut, 'y') == NULL);
		CHECK(strchr(cut, '?') == NULL);
	}
	CHECK(hx_step_log_index(&r, "after") > 0);
	CHECK(hx_step_log(&r, "yyyy", 0, NULL, NULL) == NULL);
	if (check_cur_failed)
		dump(&r);
	hx_step_free(&r);
}

static void
sha256_hex(const void *data, size_t len, char *out)
{
	unsigned char md[32];
	unsigned int mdlen = 0, i;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void
t_upload(void)
{
	static const char chunk[] = "upload: tabs\tquotes ' \" back\\slash \xc3\xa9t\xc3\xa9\n";
	struct hx_step r;
	char hex[65], want[128], *all;
	size_t n = sizeof(chunk) - 1, i, reps = 20000;

	if (!ready)
		SKIP(why_not);
	/* About 1 MB to the home directory, mode 0640, read back on the VM. */
	all = malloc(n * reps);
	if (all == NULL) {
		CHECK(0);
		return;
	}
	for (i = 0; i < reps; i++)
		memcpy(all + i * n, chunk, n);
	sha256_hex(all, n * reps, hex);
	free(all);
	probe(json_pack("{s:s, s:s, s:i, s:s, s:s}", "upload_path", "probe.bin", "upload_data",
			chunk, "upload_repeat", (int)reps, "upload_mode", "0640", "exec",
			"stat -c '%a %s %U' probe.bin; sha256sum probe.bin | cut -c1-64"),
	      NULL, priv_key, NULL, &r);
	CHECK_STR(r.status, "ok");
	snprintf(want, sizeof(want), "640 %zu " USER, n * reps);
	CHECK(hx_step_log_index(&r, want) > 0);
	CHECK(hx_step_log_index(&r, hex) > 0);
	if (check_cur_failed)
		dump(&r);
	hx_step_free(&r);

	/* Overwritten with less, and the mode changed: exactly the new bytes. */
	probe(json_pack("{s:s, s:s, s:s, s:s}", "upload_path", "probe.bin", "upload_data",
			"short\n", "upload_mode", "0755", "exec",
			"stat -c '%a %s' probe.bin; cat probe.bin; ./probe.bin; echo rc=$?"),
	      NULL, priv_key, NULL, &r);
	CHECK_STR(r.status, "ok");
	CHECK(hx_step_log_index(&r, "755 6") > 0);
	CHECK(hx_step_log_index(&r, "short") > 0);
	if (check_cur_failed)
		dump(&r);
	hx_step_free(&r);

	/* An absolute path, and an empty file. */
	probe(json_pack("{s:s, s:s, s:s, s:s}", "upload_path", "/tmp/empty-probe", "upload_data",
			"", "upload_mode", "0600", "exec", "stat -c '%a %s' /tmp/empty-probe"),
	      NULL, priv_key, NULL, &r);
	CHECK_STR(r.status, "ok");
	CHECK(hx_step_log_index(&r, "600 0") > 0);
	if (check_cur_failed)
		dump(&r);
	hx_step_free(&r);

	/* Where the user may not write: a clear failure. */
	probe(json_pack("{s:s, s:s, s:s}", "upload_path", "/etc/probe-denied", "upload_data",
			"x", "upload_mode", "0644"),
	      NULL, priv_key, NULL, &r);
	CHECK_STR(r.status, "failed");
	CHECK_STR(r.code, "ssh_upload");
	CHECK(strstr(r.message, "/etc/probe-denied") != NULL);
	CHECK(strstr(r.message, "permission denied") != NULL);
	if (check_cur_failed)
		dump(&r);
	hx_step_free(&r);
}

static void
t_host_key_pinned(void)
{
	struct hx_step r;
	json_t *state;

	if (!ready)
		SKIP(why_not);
	if (pinned_key[0] == '\0')
		SKIP("no pin was recorded by t_exec_lines_in_order");
	/* The pin from before matches: nothing new is recorded. */
	state = json_pack("{s:s}", pinned_key, pinned_val);
	probe(json_pack("{s:s}", "exec", "true"), state, priv_key, NULL, &r);
	CHECK_STR(r.status, "ok");
	CHECK(hx_step_state(&r, NULL, NULL) == NULL);
	hx_step_free(&r);

	/* Another key pinned: refused before logging in. */
	state = json_pack("{s:s}", pinned_key,
			  "ssh-ed25519 SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	probe(json_pack("{s:s}", "exec", "echo must-not-run"), state, priv_key, NULL, &r);
	CHECK_STR(r.status, "failed");
	CHECK_STR(r.code, "host_key_changed");
	CHECK(strstr(r.message, "changed") != NULL);
	CHECK(strstr(r.message, pinned_val) != NULL);
	CHECK(strstr(r.message, "SHA256:AAAAAAAA") != NULL);
	CHECK(hx_step_log_index(&r, "must-not-run") < 0);
	CHECK(hx_step_log(&r, "logged in", 0, NULL, NULL) == NULL);
	if (check_cur_failed)
		dump(&r);
	hx_step_free(&r);

	/* An empty pin counts as none (what a destroy leaves): pinned again. */
	state = json_pack("{s:s}", pinned_key, "");
	probe(json_pack("{s:s}", "exec", "true"), state, priv_key, NULL, &r);
	CHECK_STR(r.status, "ok");
	CHECK_STR(hx_step_state(&r, pinned_key, NULL), pinned_val);
	hx_step_free(&r);
}

static void
t_wrong_key(void)
{
	struct hx_step r;
	char piece[64];
	long t0 = now_ms();

	if (!ready)
		SKIP(why_not);
	probe(json_pack("{s:s}", "exec", "echo must-not-run"), NULL, other_key, NULL, &r);
	CHECK_STR(r.status, "failed");
	CHECK_STR(r.code, "ssh_auth");
	CHECK(strstr(r.message, "refused the key for user " USER) != NULL);
	CHECK(hx_step_log_index(&r, "must-not-run") < 0);
	/* Tried again for a while (a new VM may still be adding the key),
	 * but not for the whole timeout. */
	CHECK(now_ms() - t0 < 25000);
	key_piece(other_key, piece, sizeof(piece));
	CHECK(!hx_step_mentions(&r, piece));
	if (check_cur_failed)
		dump(&r);
	hx_step_free(&r);

	/* Not a key at all: refused at once, saying so, without echoing it. */
	probe(json_pack("{s:s}", "exec", "true"), NULL,
	      "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90LWEta2V5LXNlY3JldC12YWx1ZQ==\n"
	      "-----END OPENSSH PRIVATE KEY-----\n",
	      NULL, &r);
	CHECK_STR(r.status, "failed");
	CHECK_STR(r.code, "ssh_auth");
	CHECK(strstr(r.message, "not usable") != NULL);
	CHECK(!hx_step_mentions(&r, "bm90LWEta2V5"));
	if (check_cur_failed)
		dump(&r);
	hx_step_free(&r);
}

static void
t_retry_until_up(void)
{
	struct hx_step r;
	char ip[64], st[32], needle[128];
	json_t *in, *job;

	if (!ready)
		SKIP(why_not);
	if (vm_insert("vm-b", ip, sizeof(ip)) != 0) {
		CHECK(0);
		return;
	}
	/* Wait for STAGING: the VM exists but does not answer yet. */
	do {
		vm_status("vm-b", st, sizeof(st));
		if (strcmp(st, "RUNNING") == 0)
			break;
		usleep(50 * 1000);
	} while (strcmp(st, "STAGING") != 0);
	CHECK_STR(st, "STAGING");
	in = json_pack("{s:s, s:s, s:s, s:i, s:s}", "host", ip, "user", USER, "key_ref", KEY_REF,
		       "timeout_ms", 60000, "exec", "hostname");
	job = job_for(in, NULL, priv_key);
	if (run_job(job, NULL, 120000, &r) != 0) {
		json_decref(job);
		return;
	}
	json_decref(job);
	CHECK_STR(r.status, "ok");
	if (strcmp(r.status, "ok") == 0)
		snprintf(ip_b, sizeof(ip_b), "%s", ip);
	snprintf(needle, sizeof(needle), "waiting for ssh on %s:22 (attempt 1)", ip);
	CHECK(hx_step_log(&r, needle, 0, NULL, NULL) != NULL);
	snprintf(needle, sizeof(needle), "waiting for ssh on %s:22 (attempt 2)", ip);
	CHECK(hx_step_log(&r, needle, 0, NULL, NULL) != NULL);
	CHECK(hx_step_log_index(&r, "vm-b") > 0);
	fprintf(stderr, "  logged in after %ld ms\n", r.ms);
	if (check_cur_failed)
		dump(&r);
	hx_step_free(&r);
}

static void
t_timeout(void)
{
	struct hx_step r;
	json_t *in, *job;

	if (!ready)
		SKIP(why_not);
	/* Nothing listens there: refused until the timeout, then a clear
	 * failure. */
	in = json_pack("{s:s, s:s, s:s, s:i, s:s}", "host", "127.10.249.249", "user", USER,
		       "key_ref", KEY_REF, "timeout_ms", 2000, "exec", "true");
	job = job_for(in, NULL, priv_key);
	if (run_job(job, NULL, 30000, &r) != 0) {
		json_decref(job);
		return;
	}
	json_decref(job);
	CHECK_STR(r.status, "failed");
	CHECK_STR(r.code, "ssh_timeout");
	CHECK(strstr(r.message, "127.10.249.249:22 did not answer within 2 s") != NULL);
	CHECK(strstr(r.message, "refused") != NULL);
	CHECK(r.ms >= 1900 && r.ms < 10000);
	if (check_cur_failed)
		dump(&r);
	hx_step_free(&r);
}

static void
t_cancel(void)
{
	struct hx_step r;

	if (!ready)
		SKIP(why_not);
	/* SIGTERM (the server's cancel) while `sleep 60` runs on the VM. */
	probe(json_pack("{s:s}", "exec", "echo started; sleep 60; echo finished"), NULL, priv_key,
	      "started", &r);
	CHECK(r.term_ms >= 0);
	CHECK_STR(r.status, "cancelled");
	CHECK(r.ms - r.term_ms < 3000);
	CHECK(hx_step_log(&r, "closing the channel", 0, NULL, NULL) != NULL);
	CHECK(hx_step_log_index(&r, "finished") < 0);
	if (check_cur_failed)
		dump(&r);
	hx_step_free(&r);

	/* Cancelled while still waiting for a VM that never answers. */
	{
		json_t *in = json_pack("{s:s, s:s, s:s, s:i, s:s}", "host", "127.10.249.248", "user",
				       USER, "key_ref", KEY_REF, "timeout_ms", 60000, "exec", "true");
		json_t *job = job_for(in, NULL, priv_key);

		if (run_job(job, "(attempt 2)", 30000, &r) == 0) {
			CHECK_STR(r.status, "cancelled");
			CHECK(r.ms < 15000);
			if (check_cur_failed)
				dump(&r);
			hx_step_free(&r);
		}
		json_decref(job);
	}
}

/* ---- the vm-bootstrap plugin ------------------------------------------------ */

/*
 * The plugin runs against the same VMs with the test's own download mirror
 * (a small HTTP server below, named in the job's provider "mirrors") that
 * serves a stand-in istio-sidecar.deb built here with dpkg-deb: it makes
 * user istio-proxy and an `istio` unit whose istio-start.sh runs only when
 * cluster.env, /etc/hosts and the certificates are in place.  So these
 * tests check the plugin's script (upload, download and checksum, dpkg -i,
 * file placement, hosts, ownership, restart, docker, checks, re-runs,
 * destroy), not the sandbox's simulated sidecar and istiod.  A VM without a
 * `docker` gets a small stand-in first (the sandbox's own may not exist).
 */

#define BOOT_SECRET "vm_bundle"
#define FAKE_KEY_PEM "-----BEGIN PRIVATE KEY-----\nFAKE-WORKLOAD-KEY-b7c1e9d2\n-----END PRIVATE KEY-----\n"
#define FAKE_TOKEN "eyFAKE.istio-token.c4d0a8f3"

static int boot_ready;
static char boot_why[256] = "the bootstrap setup did not run";

static const char fake_start[] =
	"#!/bin/sh\n"
	"# test stand-in of istio-start.sh: runs only when the VM's files are in place\n"
	". /var/lib/istio/envoy/cluster.env\n"
	"[ -n \"${ISTIO_INBOUND_PORTS:-}\" ] || { echo 'no ISTIO_INBOUND_PORTS' >&2; exit 1; }\n"
	"grep -q 'istiod.istio-system.svc' /etc/hosts || { echo 'istiod is not in /etc/hosts' >&2; exit 1; }\n"
	"[ -r /etc/certs/root-cert.pem ] || { echo 'no root cert' >&2; exit 1; }\n"
	"exec sleep 100000\n";

static const char fake_unit[] =
	"[Unit]\nDescription=test stand-in of Istio's sidecar\n\n"
	"[Service]\nExecStart=/usr/local/bin/istio-start.sh\nRestart=always\nRestartSec=10\n\n"
	"[Install]\nWantedBy=multi-user.target\n";

static const char fake_postinst[] =
	"#!/bin/sh\nset -e\n"
	"getent passwd istio-proxy >/dev/null || useradd --system --home-dir /var/lib/istio "
	"--shell /usr/sbin/nologin istio-proxy\n"
	"mkdir -p /var/lib/istio/envoy /var/lib/istio/config /var/lib/istio/proxy /var/log/istio "
	"/etc/certs\n"
	"[ -e /etc/istio ] || ln -s /var/lib/istio /etc/istio\n";

static const char fake_docker[] =
	"#!/bin/sh\n"
	"# test stand-in of docker: remembers containers by name, runs nothing\n"
	"d=/var/lib/fake-docker\nmkdir -p \"$d\"\n"
	"case \"$1\" in\n"
	"ps) echo 'CONTAINER ID   IMAGE   NAMES'\n"
	"    for f in \"$d\"/*; do [ -f \"$f\" ] && echo \"0123456789ab   $(cat \"$f\")   ${f##*/}\"; done; exit 0 ;;\n"
	"rm) shift; [ \"$1\" = -f ] && shift\n"
	"    [ -f \"$d/$1\" ] || { echo \"Error: No such container: $1\" >&2; exit 1; }\n"
	"    rm -f \"$d/$1\"; echo \"$1\" ;;\n"
	"run) shift; name=x; image=\n"
	"    while [ $# -gt 0 ]; do case \"$1\" in --name) name=$2; shift 2 ;; -p) shift 2 ;;\n"
	"    -d|--restart=*) shift ;; *) image=$1; shift ;; esac; done\n"
	"    [ ! -f \"$d/$name\" ] || { echo \"Conflict: $name is in use\" >&2; exit 125; }\n"
	"    echo \"$image\" > \"$d/$name\"; echo 0123456789abcdef ;;\n"
	"*) echo \"fake docker: $1?\" >&2; exit 1 ;;\n"
	"esac\n";

static int
write_file(const char *path, const char *text, int mode)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	fputs(text, f);
	fclose(f);
	return chmod(path, (mode_t)mode);
}

/* tmp/mirror/releases/V/deb/istio-sidecar.deb and its .sha256 (a wrong
 * one when bad_sum). */
static int
make_deb(const char *version, int bad_sum)
{
	char root[256], p[512], deb[512];

	snprintf(root, sizeof(root), "%s/deb-%s", tmp, version);
	if (sh("mkdir -p %s/DEBIAN %s/usr/local/bin %s/lib/systemd/system "
	       "%s/mirror/releases/%s/deb",
	       root, root, root, tmp, version) != 0)
		return -1;
	snprintf(p, sizeof(p), "%s/DEBIAN/control", root);
	{
		char control[512];

		snprintf(control, sizeof(control),
			 "Package: istio-sidecar\nVersion: %s\nArchitecture: all\n"
			 "Maintainer: Outrigger tests <tests@invalid>\n"
			 "Description: test stand-in of Istio's sidecar package\n",
			 version);
		if (write_file(p, control, 0644) != 0)
			return -1;
	}
	snprintf(p, sizeof(p), "%s/DEBIAN/postinst", root);
	if (write_file(p, fake_postinst, 0755) != 0)
		return -1;
	snprintf(p, sizeof(p), "%s/usr/local/bin/istio-start.sh", root);
	if (write_file(p, fake_start, 0755) != 0)
		return -1;
	snprintf(p, sizeof(p), "%s/lib/systemd/system/istio.service", root);
	if (write_file(p, fake_unit, 0644) != 0)
		return -1;
	snprintf(deb, sizeof(deb), "%s/mirror/releases/%s/deb/istio-sidecar.deb", tmp, version);
	if (sh("dpkg-deb --root-owner-group --build %s %s >/dev/null", root, deb) != 0)
		return -1;
	if (bad_sum)
		return sh("echo '%064d  istio-sidecar.deb' > %s.sha256", 0, deb);
	return sh("cd %s/mirror/releases/%s/deb && sha256sum istio-sidecar.deb > "
		  "istio-sidecar.deb.sha256",
		  tmp, version);
}

/* The mirror: GET /PATH answers tmp/mirror/PATH. */
static void
mirror_serve(int ls)
{
	char req[2048], path[1024], file[1400], head[256], buf[65536];
	ssize_t n;
	size_t got;
	FILE *f;
	int c;

	for (;;) {
		c = accept(ls, NULL, NULL);
		if (c < 0)
			continue;
		got = 0;
		while (got < sizeof(req) - 1 && (n = read(c, req + got, sizeof(req) - 1 - got)) > 0) {
			got += (size_t)n;
			req[got] = '\0';
			if (strstr(req, "\r\n\r\n") != NULL)
				break;
		}
		req[got] = '\0';
		f = NULL;
		if (sscanf(req, "GET /%1000s ", path) == 1 && strstr(path, "..") == NULL) {
			snprintf(file, sizeof(file), "%s/mirror/%s", tmp, path);
			f = fopen(file, "r");
		}
		if (f == NULL) {
			snprintf(head, sizeof(head), "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
			if (write(c, head, strlen(head)) < 0) {
				/* the client went away: nothing to do */
			}
		} else {
			fseek(f, 0, SEEK_END);
			snprintf(head, sizeof(head), "HTTP/1.0 200 OK\r\nContent-Length: %ld\r\n\r\n",
				 ftell(f));
			fseek(f, 0, SEEK_SET);
			if (write(c, head, strlen(head)) < 0) {
				/* as above; the loop below stops too */
			}
			while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
				if (write(c, buf, got) < 0)
					break;
			fclose(f);
		}
		close(c);
	}
}

static int
mirror_start(void)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (ls < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 16) < 0 ||
	    getsockname(ls, (struct sockaddr *)&a, &alen) < 0) {
		close(ls);
		return -1;
	}
	mirror_port = ntohs(a.sin_port);
	mirror_pid = fork();
	if (mirror_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		mirror_serve(ls);
		_exit(0);
	}
	close(ls);
	return mirror_pid > 0 ? 0 : -1;
}

/* A vm-bootstrap job: the bundle (a JSON object, stolen) and extra inputs
 * (stolen) over the blueprint's. */
static json_t *
boot_job(const char *action, const char *flow, const char *host, const char *version,
	 json_t *bundle, json_t *extra, json_t *state)
{
	json_t *prov = json_deep_copy(sb.endpoints), *in, *job;
	char mirror[128], *btext = json_dumps(bundle, JSON_COMPACT);

	snprintf(mirror, sizeof(mirror), "http://127.0.0.1:%d/releases/", mirror_port);
	json_object_set_new(prov, "name", json_string("sandbox"));
	json_object_set_new(prov, "mirrors",
			    json_pack("{s:s}", "https://storage.googleapis.com/istio-release/releases/",
				      mirror));
	in = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:i, s:i}", "flow", flow, "host",
		       host, "ssh_user", USER, "ssh_key_ref", KEY_REF, "bundle_ref", BOOT_SECRET,
		       "istio_version", version, "install_docker", 1, "app_image",
		       "gcr.io/google-samples/microservices-demo/productcatalogservice:v0.2.0",
		       "app_port", 3550, "timeout_ms", 30000);
	if (extra != NULL) {
		json_object_update(in, extra);
		json_decref(extra);
	}
	job = json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:s, s:s, s:s, s:s, s:s}, s:o,"
			" s:{s:s, s:s}, s:o}",
			"action", action, "plugin", "vm-bootstrap", "plugins_dir", "plugins",
			"inputs", in, "info", "environment", "ssh-test", "provider", "sandbox", "step",
			"vm-bootstrap", "run", "1", "attempt", "1", "plugin", "vm-bootstrap",
			"state", state != NULL ? state : json_object(), "secrets", KEY_REF, priv_key,
			BOOT_SECRET, btext != NULL ? btext : "", "provider", prov);
	free(btext);
	json_decref(bundle);
	return job;
}

static json_t *
legacy_bundle(const char *gw_ip)
{
	char hosts[128];

	snprintf(hosts, sizeof(hosts), "%s istiod.istio-system.svc\n", gw_ip);
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "cluster.env",
			 "ISTIO_SERVICE_CIDR=10.4.0.0/20\nISTIO_INBOUND_PORTS=3550\n"
			 "ISTIO_CP_AUTH=MUTUAL_TLS\n",
			 "key.pem", FAKE_KEY_PEM, "cert-chain.pem",
			 "-----BEGIN CERTIFICATE-----\nCHAIN\n-----END CERTIFICATE-----\n",
			 "root-cert.pem",
			 "-----BEGIN CERTIFICATE-----\nROOT\n-----END CERTIFICATE-----\n", "hosts",
			 hosts);
}

/* Run a command on a VM with sshprobe; its log lines joined by '\n'. */
static void
vm_sh(const char *ip, const char *cmd, char *out, size_t size)
{
	json_t *in = json_pack("{s:s, s:s, s:s, s:i, s:s}", "host", ip, "user", USER, "key_ref",
			       KEY_REF, "timeout_ms", 30000, "exec", cmd);
	json_t *job = job_for(in, NULL, priv_key), *m;
	struct hx_step r;
	size_t i, used = 0;
	const char *t;

	out[0] = '\0';
	if (run_job(job, NULL, 60000, &r) == 0) {
		json_array_foreach(r.msgs, i, m) {
			t = json_string_value(json_object_get(m, "t"));
			if (t == NULL || strcmp(t, "log") != 0 ||
			    strstr(json_string_value(json_object_get(m, "text")), "logged in to") != NULL ||
			    strstr(json_string_value(json_object_get(m, "text")), "pinned the host") != NULL)
				continue;
			used += (size_t)snprintf(out + used, used < size ? size - used : 0, "%s%s",
						 used > 0 ? "\n" : "",
						 json_string_value(json_object_get(m, "text")));
		}
		hx_step_free(&r);
	}
	json_decref(job);
}

static void
t_boot_setup(void)
{
	char out[4096], cmd[8192];

	if (!ready)
		SKIP(why_not);
	if (access("plugins/vm-bootstrap.so", R_OK) != 0) {
		fprintf(stderr, "  build plugins/vm-bootstrap.so first\n");
		CHECK(0);
		return;
	}
	CHECK_INT(make_deb("1.6.5", 0), 0);
	CHECK_INT(make_deb("1.29.0", 0), 0);
	CHECK_INT(make_deb("1.6.9", 1), 0);
	CHECK_INT(mirror_start(), 0);
	if (check_cur_failed)
		return;
	/* A docker for VMs that have none that works (the sandbox's
	 * stand-in, when it exists, is kept; this machine's own docker CLI,
	 * which the VM sees, has no daemon to talk to). */
	snprintf(cmd, sizeof(cmd),
		 "if sudo -n docker ps >/dev/null 2>&1; then echo has-docker; else "
		 "cat > fake-docker <<'EOF'\n%sEOF\n"
		 "sudo -n install -m 0755 fake-docker /usr/local/bin/docker && echo fake-docker; fi",
		 fake_docker);
	vm_sh(ip_a, cmd, out, sizeof(out));
	CHECK(strstr(out, "docker") != NULL);
	fprintf(stderr, "  vm-a: %s\n", out);
	if (ip_b[0] != '\0') {
		vm_sh(ip_b, cmd, out, sizeof(out));
		CHECK(strstr(out, "docker") != NULL);
	}
	if (!check_cur_failed)
		boot_ready = 1;
}

static void
t_boot_bad_bundle(void)
{
	struct hx_step r;
	json_t *b;

	if (!boot_ready)
		SKIP(boot_why);
	/* No key.pem: refused before connecting, naming the file. */
	b = legacy_bundle("127.30.1.10");
	json_object_del(b, "key.pem");
	{
		json_t *job = boot_job("apply", "legacy", ip_a, "1.6.5", b, NULL, NULL);

		run_job(job, NULL, 60000, &r);
		json_decref(job);
	}
	CHECK_STR(r.status, "failed");
	CHECK_STR(r.code, "bundle");
	CHECK(strstr(r.message, "no key.pem") != NULL);
	CHECK(hx_step_log(&r, "logged in", 0, NULL, NULL) == NULL);
	if (check_cur_failed)
		dump(&r);
	hx_step_free(&r);

	/* A hosts line that is not "IP NAME": refused. */
	b = legacy_bundle("127.30.1.10");
	json_object_set_new(b, "hosts", json_string("istiod.istio-system.svc; rm -rf /\n"));
	{
		json_t *job = boot_job("apply", "legacy", ip_a, "1.6.5", b, NULL, NULL);

		run_job(job, NULL, 60000, &r);
		json_decref(job);
	}
	CHECK_STR(r.status, "failed");
	CHECK_STR(r.code, "bundle");
	CHECK(strstr(r.message, "hosts") != NULL);
	hx_step_free(&r);

	/* The legacy flow with a current release. */
	{
		json_t *job = boot_job("apply", "legacy", ip_a, "1.29.0", legacy_bundle("127.30.1.10"),
				       NULL, NULL);

		run_job(job, NULL, 60000, &r);
		json_decref(job);
	}
	CHECK_STR(r.status, "failed");
	CHECK_STR(r.code, "input");
	CHECK(strstr(r.message, "1.6.x") != NULL);
	hx_step_free(&r);
}

static void
t_boot_legacy(void)
{
	struct hx_step r;
	json_t *job;
	char out[8192];

	if (!boot_ready)
		SKIP(boot_why);
	job = boot_job("apply", "legacy", ip_a, "1.6.5", legacy_bundle("127.30.1.10"), NULL, NULL);
	run_job(job, NULL, 180000, &r);
	json_decref(job);
	CHECK_STR(r.status, "ok");
	CHECK_STR(hx_step_output(&r, "sidecar"), "active");
	CHECK_STR(hx_step_output(&r, "app_container"), "productcatalogservice");
	CHECK(hx_step_log(&r, "bootstrap: downloading http://127.0.0.1:", 0, NULL, NULL) != NULL);
	CHECK(hx_step_log_index(&r, "sidecar: active") > 0);
	CHECK(hx_step_log_index(&r, "app: productcatalogservice running") > 0);
	CHECK(!hx_step_mentions(&r, "FAKE-WORKLOAD-KEY"));
	if (check_cur_failed)
		dump(&r);
	hx_step_free(&r);

	vm_sh(ip_a,
	      "sudo -n stat -c '%n %a %U' /etc/certs/root-cert.pem /etc/certs/cert-chain.pem "
	      "/etc/certs/key.pem /var/lib/istio/envoy/cluster.env; "
	      "sudo -n grep -c FAKE-WORKLOAD-KEY /etc/certs/key.pem; "
	      "grep ISTIO_SERVICE_CIDR /var/lib/istio/envoy/cluster.env; "
	      "echo hosts=$(grep -c istiod.istio-system.svc /etc/hosts); "
	      "grep istiod.istio-system.svc /etc/hosts; grep -c localhost /etc/hosts || true; "
	      "systemctl is-active istio; dpkg-query -W -f='${Version}\\n' istio-sidecar; "
	      "sudo -n docker ps | grep -c productcatalogservice; stat -c '%n %a' key.pem hosts",
	      out, sizeof(out));
	CHECK(strstr(out, "/etc/certs/root-cert.pem 644 istio-proxy\n") != NULL);
	CHECK(strstr(out, "/etc/certs/cert-chain.pem 644 istio-proxy\n") != NULL);
	CHECK(strstr(out, "/etc/certs/key.pem 600 istio-proxy\n") != NULL);
	CHECK(strstr(out, "/var/lib/istio/envoy/cluster.env 644 istio-proxy\n1\n") != NULL);
	CHECK(strstr(out, "ISTIO_SERVICE_CIDR=10.4.0.0/20\n") != NULL);
	CHECK(strstr(out, "hosts=1\n127.30.1.10 istiod.istio-system.svc\n") != NULL);
	/* The rest of /etc/hosts is still there. */
	CHECK(strstr(out, "istiod.istio-system.svc\n0\n") == NULL);
	CHECK(strstr(out, "\nactive\n1.6.5\n1\n") != NULL);
	CHECK(strstr(out, "key.pem 600\nhosts 644") != NULL);
	if (check_cur_failed)
		fprintf(stderr, "  on the VM:\n%s\n", out);
}

static void
t_boot_again(void)
{
	struct hx_step r;
	json_t *job;
	char out[4096];

	if (!boot_ready)
		SKIP(boot_why);
	/* The same again: the package is kept, nothing piles up. */
	job = boot_job("apply", "legacy", ip_a, "1.6.5", legacy_bundle("127.30.1.10"), NULL, NULL);
	run_job(job, NULL, 180000, &r);
	json_decref(job);
	CHECK_STR(r.status, "ok");
	CHECK(hx_step_log(&r, "istio-sidecar 1.6.5 is installed already", 0, NULL, NULL) != NULL);
	CHECK(hx_step_log(&r, "/etc/hosts already maps", 0, NULL, NULL) != NULL);
	if (check_cur_failed)
		dump(&r);
	hx_step_free(&r);

	/* A new gateway IP replaces the line. */
	job = boot_job("apply", "legacy", ip_a, "1.6.5", legacy_bundle("127.30.1.77"), NULL, NULL);
	run_job(job, NULL, 180000, &r);
	json_decref(job);
	CHECK_STR(r.status, "ok");
	hx_step_free(&r);
	vm_sh(ip_a, "grep istiod /etc/hosts; sudo -n docker ps | grep -c productcatalogservice",
	      out, sizeof(out));
	CHECK_STR(out, "127.30.1.77 istiod.istio-system.svc\n1");
}

static void
t_boot_current(void)
{
	struct hx_step r;
	json_t *job, *b;
	char out[8192];

	if (!boot_ready)
		SKIP(boot_why);
	if (ip_b[0] == '\0')
		SKIP("no second VM (t_retry_until_up did not make one)");
	b = json_pack("{s:s, s:s, s:s, s:s, s:s}", "cluster.env",
		      "CANONICAL_SERVICE='productcatalogservice'\nISTIO_INBOUND_PORTS='3550'\n"
		      "ISTIO_NAMESPACE='default'\nSERVICE_ACCOUNT='productcatalogservice'\n",
		      "mesh.yaml", "defaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15012\n",
		      "root-cert.pem", "-----BEGIN CERTIFICATE-----\nROOT\n-----END CERTIFICATE-----\n",
		      "istio-token", FAKE_TOKEN, "hosts", "127.30.2.20 istiod.istio-system.svc\n");
	job = boot_job("apply", "current", ip_b, "1.29.0", b, NULL, NULL);
	run_job(job, NULL, 180000, &r);
	json_decref(job);
	CHECK_STR(r.status, "ok");
	CHECK_STR(hx_step_output(&r, "sidecar"), "active");
	CHECK(!hx_step_mentions(&r, FAKE_TOKEN));
	if (check_cur_failed)
		dump(&r);
	hx_step_free(&r);
	vm_sh(ip_b,
	      "sudo -n stat -c '%n %a %U' /etc/certs/root-cert.pem "
	      "/var/run/secrets/tokens/istio-token /var/lib/istio/envoy/cluster.env "
	      "/etc/istio/config/mesh; "
	      "grep discoveryAddress /etc/istio/config/mesh; grep istiod /etc/hosts; "
	      "systemctl is-active istio; dpkg-query -W -f='${Version}\\n' istio-sidecar",
	      out, sizeof(out));
	CHECK(strstr(out, "/etc/certs/root-cert.pem 644 istio-proxy\n") != NULL);
	CHECK(strstr(out, "/var/run/secrets/tokens/istio-token 600 istio-proxy\n") != NULL);
	CHECK(strstr(out, "/var/lib/istio/envoy/cluster.env 644 istio-proxy\n") != NULL);
	CHECK(strstr(out, "/etc/istio/config/mesh 644 istio-proxy\n") != NULL);
	CHECK(strstr(out, "discoveryAddress: istiod.istio-system.svc:15012\n"
			  "127.30.2.20 istiod.istio-system.svc\nactive\n1.29.0") != NULL);
	if (check_cur_failed)
		fprintf(stderr, "  on the VM:\n%s\n", out);
}

static void
t_boot_script_fails(void)
{
	struct hx_step r;
	json_t *job;

	if (!boot_ready)
		SKIP(boot_why);
	/* 1.6.9's .sha256 does not match: the script stops there, and the
	 * failure says where and why. */
	job = boot_job("apply", "legacy", ip_a, "1.6.9", legacy_bundle("127.30.1.10"), NULL, NULL);
	run_job(job, NULL, 180000, &r);
	json_decref(job);
	CHECK_STR(r.status, "failed");
	CHECK_STR(r.code, "exit_status");
	CHECK(strstr(r.message, "exited with status 1") != NULL);
	CHECK(strstr(r.message, "but its .sha256 says 0000") != NULL);
	CHECK(strstr(r.message, "bootstrap: failed while installing the sidecar package (exit 1)") !=
	      NULL);
	CHECK(hx_step_log(&r, "placing the mesh files", 0, NULL, NULL) == NULL);
	if (check_cur_failed)
		dump(&r);
	hx_step_free(&r);

	/* No mirror for the package (the real URL, no internet here). */
	job = boot_job("apply", "legacy", ip_a, "1.6.4", legacy_bundle("127.30.1.10"), NULL, NULL);
	run_job(job, NULL, 180000, &r);
	json_decref(job);
	CHECK_STR(r.status, "failed");
	CHECK(strstr(r.message, "installing the sidecar package") != NULL);
	if (check_cur_failed)
		dump(&r);
	hx_step_free(&r);
}

static void
t_boot_destroy(void)
{
	struct hx_step r;
	json_t *job;
	char out[4096];

	if (!boot_ready)
		SKIP(boot_why);
	job = boot_job("destroy", "legacy", ip_a, "1.6.5", legacy_bundle("127.30.1.10"), NULL,
		       json_pack("{s:s}", pinned_key, pinned_val));
	run_job(job, NULL, 120000, &r);
	json_decref(job);
	CHECK_STR(r.status, "ok");
	CHECK(hx_step_log_index(&r, "removed container productcatalogservice") > 0);
	CHECK(hx_step_log_index(&r, "stopped the istio service") > 0);
	CHECK_STR(hx_step_state(&r, pinned_key, NULL), "");
	if (check_cur_failed)
		dump(&r);
	hx_step_free(&r);
	vm_sh(ip_a,
	      "systemctl is-active istio; sudo -n docker ps | grep -c productcatalogservice; "
	      "ls key.pem 2>&1 | grep -c 'No such'",
	      out, sizeof(out));
	CHECK_STR(out, "inactive\n0\n1");

	/* A VM that is gone: nothing to do, and that is fine. */
	job = boot_job("destroy", "legacy", "127.10.249.246", "1.6.5", legacy_bundle("127.30.1.10"),
		       json_pack("{s:i}", "timeout_ms", 2000), NULL);
	run_job(job, NULL, 60000, &r);
	json_decref(job);
	CHECK_STR(r.status, "ok");
	CHECK(hx_step_log(&r, "nothing to stop there", 0, NULL, NULL) != NULL);
	if (check_cur_failed)
		dump(&r);
	hx_step_free(&r);
}

/* ---- main ---------------------------------------------------------------- */

static void
teardown(void)
{
	int st;

	if (mirror_pid > 0) {
		kill(mirror_pid, SIGTERM);
		waitpid(mirror_pid, &st, 0);
		mirror_pid = -1;
	}
	hx_sandbox_stop(&sb);
	if (tmp[0] != '\0' && getenv("SSH_TEST_KEEP") == NULL)
		hx_rmrf(tmp);
	pki_secret_free(priv_key);
	pki_secret_free(other_key);
	free(pub_key);
}

int
main(void)
{
	const char *v;
	int rc;

	v = getenv("SSH_TEST_RUNNER");
	if (v != NULL && v[0] != '\0')
		runner = v;
	v = getenv("OUTRIGGER_BIN");
	if (v != NULL && v[0] != '\0')
		sandbox_bin = v;
	if (hx_tmpdir(tmp, sizeof(tmp), "outrigger-ssh") != 0) {
		perror("mkdtemp");
		return 1;
	}
	if (geteuid() == 0) {
		if (hx_isolate_network() == 0)
			fprintf(stderr, "  (in a network namespace of its own, loopback only)\n");
		else
			fprintf(stderr, "  (no network namespace of its own: %s)\n", strerror(errno));
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	fprintf(stderr, "ssh: runner %s\n", runner);
	RUN(t_setup);
	RUN(t_exec_lines_in_order);
	RUN(t_exit_status);
	RUN(t_long_line);
	RUN(t_upload);
	RUN(t_host_key_pinned);
	RUN(t_wrong_key);
	RUN(t_retry_until_up);
	RUN(t_timeout);
	RUN(t_cancel);
	RUN(t_boot_setup);
	RUN(t_boot_bad_bundle);
	RUN(t_boot_legacy);
	RUN(t_boot_again);
	RUN(t_boot_current);
	RUN(t_boot_script_fails);
	RUN(t_boot_destroy);
	teardown();
	curl_global_cleanup();
	rc = check_done("ssh");
	return rc;
}

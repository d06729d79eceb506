/*
 * test_vm.c - sandbox VMs judged by the real OpenSSH clients: logins with
 * the metadata's keys only, sudo, scp, units through the systemctl shim,
 * and that nothing a VM does reaches this machine.  The tests share two
 * VMs and run in order; those that need root and namespaces skip, saying
 * why, where they are not allowed.
 *
 * This program is also the VMs' helper: vm_start runs /proc/self/exe
 * vm-init ..., which main hands to vm_init_main as `outrigger vm-init`
 * does.
 */
#define CHECK_MAIN
#include "check.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vm.h"

#define ADDR_A "127.0.77.2"
#define ADDR_B "127.0.77.3"
#define HOST_A "vm-a"
#define HOST_B "vm-b.c.sandbox.internal"
#define READY_MS 20000

static char tmp[64];	       /* everything of this run */
static char dir_a[128], dir_b[128];
static char key_alice[128], key_bob[128], key_mallory[128];
static char pub_alice[2048], pub_bob[2048];
static char keys_alice[4096]; /* the metadata value with alice only */
static int vm_ok;	       /* root tests may run */
static char vm_why[700];
static struct vm *vm_a;
static char fpr_a[512];	       /* ed25519 fingerprint seen at first boot */
static char hosts_before[65536];

/* Run a shell command; its stdout (and stderr if the command says 2>&1)
 * into out, trailing newlines trimmed.  Returns the exit status, or -1. */
static int sh_out(char *out, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
sh_out(char *out, size_t size, const char *fmt, ...)
{
	char cmd[8192];
	size_t used = 0, n;
	va_list ap;
	FILE *p;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	out[0] = '\0';
	p = popen(cmd, "r");
	if (p == NULL)
		return -1;
	while (used + 1 < size &&
	       (n = fread(out + used, 1, size - 1 - used, p)) > 0)
		used += n;
	out[used] = '\0';
	while (used > 0 && out[used - 1] == '\n')
		out[--used] = '\0';
	st = pclose(p);
	return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ssh USER@ADDR 'REMOTE' with KEY and our known_hosts; strict is the
 * StrictHostKeyChecking value.  REMOTE may not hold single quotes. */
static int
ssh_run(char *out, size_t size, const char *user, const char *key,
	const char *addr, const char *strict, const char *remote)
{
	return sh_out(out, size,
		      "ssh -F /dev/null -o UserKnownHostsFile=%s/known_hosts "
		      "-o StrictHostKeyChecking=%s -o IdentitiesOnly=yes "
		      "-o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR "
		      "-i %s %s@%s '%s' 2>&1 </dev/null",
		      tmp, strict, key, user, addr, remote);
}

static int
ssh_alice(char *out, size_t size, const char *addr, const char *remote)
{
	return ssh_run(out, size, "alice", key_alice, addr, "accept-new",
		       remote);
}

/* Run script with `sh -s` on the VM as alice (for what needs quotes). */
static int
ssh_script(char *out, size_t size, const char *addr, const char *script)
{
	char path[PATH_MAX + 16];
	FILE *f;

	snprintf(path, sizeof(path), "%s/script.sh", tmp);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs(script, f);
	fclose(f);
	return sh_out(out, size,
		      "ssh -F /dev/null -o UserKnownHostsFile=%s/known_hosts "
		      "-o StrictHostKeyChecking=accept-new -o IdentitiesOnly=yes "
		      "-o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR "
		      "-i %s alice@%s 'sh -s' <%s 2>&1",
		      tmp, key_alice, addr, path);
}

static int
read_small(const char *path, char *out, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	out[0] = '\0';
	if (f == NULL)
		return -1;
	n = fread(out, 1, size - 1, f);
	out[n] = '\0';
	fclose(f);
	return 0;
}

static int
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static void
make_key(char *path, size_t size, char *pub, size_t pubsize,
	 const char *name)
{
	char out[512], p[PATH_MAX + 8];

	snprintf(path, size, "%s/id_%s", tmp, name);
	sh_out(out, sizeof(out), "ssh-keygen -q -t ed25519 -N '' -C %s -f %s",
	       name, path);
	snprintf(p, sizeof(p), "%s.pub", path);
	read_small(p, pub, pubsize);
	pub[strcspn(pub, "\n")] = '\0';
}

static void
cfg_for(struct vm_cfg *c, const char *dir, const char *name,
	const char *host, const char *addr, const char *keys)
{
	memset(c, 0, sizeof(*c));
	c->dir = dir;
	c->name = name;
	c->hostname = host;
	c->address = addr;
	c->port = 22;
	c->ssh_keys = keys;
}

/* 1 if the host process pid is gone: no such process, a zombie (this
 * container's init reaps slowly), or the number reused outside pidns. */
static int
pid_gone(pid_t pid, const char *pidns)
{
	char path[64], buf[512], ns[64];
	ssize_t n;
	char *rp;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return 1;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return 1;
	rp = strrchr(buf, ')');
	if (rp != NULL && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'))
		return 1;
	snprintf(path, sizeof(path), "/proc/%ld/ns/pid", (long)pid);
	n = readlink(path, ns, sizeof(ns) - 1);
	if (n <= 0)
		return 1;
	ns[n] = '\0';
	return strcmp(ns, pidns) != 0;
}

/* ---- tests that need nothing ---- */

static void
t_parse_keys(void)
{
	struct vm_ssh_key *k = NULL;
	struct or_err e;
	size_t n = 0, bad = 0;
	char *big;

	CHECK_INT(vm_ssh_keys_parse(
			  "alice:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== "
			  "alice@laptop\r\n"
			  "\n"
			  "  bob:ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHA= "
			  "google-ssh {\"userName\":\"bob\"}\n"
			  "carol:ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB\n"
			  "Root:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==\n"
			  "dave:command=\"rm -rf /\" ssh-ed25519 "
			  "AAAAC3NzaC1lZDI1NTE5AAAAIA==\n"
			  "erin:ssh-dss AAAAB3NzaC1kc3MAAACBAP8=\n"
			  "frank ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==\n"
			  "gina:ssh-ed25519 not*base64*at*all*!!\n"
			  "hal:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==",
			  &k, &n, &bad, &e),
		  OR_OK);
	CHECK_INT(n, 4);
	CHECK_INT(bad, 5);
	if (n == 4) {
		CHECK_STR(k[0].user, "alice");
		CHECK_STR(k[0].line, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== "
				     "alice@laptop");
		CHECK_STR(k[1].user, "bob");
		CHECK_STR(k[1].line,
			  "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHA= "
			  "google-ssh {\"userName\":\"bob\"}");
		CHECK_STR(k[2].line, "ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB");
		CHECK_STR(k[3].user, "hal");
	}
	free(k);

	CHECK_INT(vm_ssh_keys_parse("", &k, &n, NULL, &e), OR_OK);
	CHECK_INT(n, 0);
	CHECK(k == NULL);
	CHECK_INT(vm_ssh_keys_parse(NULL, &k, &n, NULL, &e), OR_OK);
	CHECK_INT(n, 0);

	big = malloc(300 * 1024);
	if (big != NULL) {
		memset(big, 'a', 300 * 1024 - 1);
		big[300 * 1024 - 1] = '\0';
		CHECK_INT(vm_ssh_keys_parse(big, &k, &n, NULL, &e),
			  OR_E_TOOLARGE);
		free(big);
	}
}

static void
t_bad_cfg(void)
{
	struct vm_cfg c;
	struct vm *v = (struct vm *)1;
	struct or_err e;
	char d[PATH_MAX + 8];

	snprintf(d, sizeof(d), "%s/vms/bad", tmp);
	cfg_for(&c, d, "bad", NULL, "10.0.0.1", NULL);
	CHECK_INT(vm_start(&c, &v, &e), OR_E_INVALID);
	CHECK_STR(e.field, "address");
	CHECK(v == NULL);
	cfg_for(&c, d, "Bad_Name", NULL, "127.0.77.9", NULL);
	CHECK_INT(vm_start(&c, &v, &e), OR_E_INVALID);
	CHECK_STR(e.field, "name");
	cfg_for(&c, d, "bad", "no spaces", "127.0.77.9", NULL);
	CHECK_INT(vm_start(&c, &v, &e), OR_E_INVALID);
	CHECK_STR(e.field, "hostname");
	cfg_for(&c, d, "bad", NULL, "127.0.77.9", NULL);
	c.port = 70000;
	CHECK_INT(vm_start(&c, &v, &e), OR_E_INVALID);
	CHECK_STR(e.field, "port");
	CHECK(!exists(d));
	if (geteuid() == 0) {
		/* Refused before anything is made on this machine. */
		cfg_for(&c, "/etc/outrigger-vm-test-must-not-exist/x", "bad",
			NULL, "127.0.77.9", NULL);
		CHECK_INT(vm_start(&c, &v, &e), OR_E_INVALID);
		CHECK_STR(e.field, "dir");
		CHECK(!exists("/etc/outrigger-vm-test-must-not-exist"));
		cfg_for(&c, "/var/../etc/outrigger-vm-test-must-not-exist",
			"bad", NULL, "127.0.77.9", NULL);
		CHECK_INT(vm_start(&c, &v, &e), OR_E_INVALID);
		CHECK(!exists("/etc/outrigger-vm-test-must-not-exist"));
	}
	/* Never wipes a directory that is not a VM's. */
	CHECK_INT(vm_destroy_dir(tmp, &e), OR_E_INVALID);
	CHECK(exists(tmp));
}

/* ---- tests with VMs ---- */

static void
t_supported(void)
{
	struct or_err e;

	if (geteuid() != 0) {
		snprintf(vm_why, sizeof(vm_why),
			 "needs root (unshare, mount, sshd on port 22)");
		SKIP(vm_why);
	}
	if (vm_supported(tmp, NULL, &e) != OR_OK) {
		snprintf(vm_why, sizeof(vm_why), "%s", e.message);
		SKIP(vm_why);
	}
	vm_ok = 1;
}

static void
t_boot_login_sudo(void)
{
	struct vm_cfg c;
	struct or_err e;
	char out[4096];
	int t0;

	if (!vm_ok)
		SKIP(vm_why);
	read_small("/etc/hosts", hosts_before, sizeof(hosts_before));
	cfg_for(&c, dir_a, "vm-a", HOST_A, ADDR_A, keys_alice);
	t0 = (int)time(NULL);
	if (vm_start(&c, &vm_a, &e) != OR_OK) {
		fprintf(stderr, "  vm_start: %s\n", e.message);
		CHECK(0);
		return;
	}
	CHECK(vm_running(vm_a));
	CHECK_INT(vm_wait_ready(vm_a, READY_MS, &e), OR_OK);
	fprintf(stderr, "  booted in about %d s\n", (int)time(NULL) - t0);
	CHECK(vm_ready(vm_a));

	CHECK_INT(ssh_alice(out, sizeof(out), ADDR_A,
			    "id -un; hostname; sudo -n id -u"),
		  0);
	CHECK_STR(out, "alice\n" HOST_A "\n0");
	CHECK_INT(ssh_alice(out, sizeof(out), ADDR_A,
			    "sudo -n true && echo sudo-ok; echo $HOME; pwd; "
			    "test -f .bashrc && echo skel; "
			    "stat -c %a.%U .ssh .ssh/authorized_keys"),
		  0);
	CHECK_STR(out, "sudo-ok\n/home/alice\n/home/alice\nskel\n"
		       "700.alice\n600.alice");

	/* The host key the VM shows is the one in its directory. */
	CHECK_INT(sh_out(fpr_a, sizeof(fpr_a),
			 "ssh-keyscan -t ed25519 %s 2>/dev/null | "
			 "ssh-keygen -lf - | cut -d' ' -f2",
			 ADDR_A),
		  0);
	CHECK_INT(sh_out(out, sizeof(out),
			 "ssh-keygen -lf %s/hostkeys/ssh_host_ed25519_key.pub"
			 " | cut -d' ' -f2",
			 dir_a),
		  0);
	CHECK(strncmp(fpr_a, "SHA256:", 7) == 0);
	CHECK_STR(fpr_a, out);
}

static void
t_scp(void)
{
	char out[4096], src[PATH_MAX + 16];
	FILE *f;

	if (!vm_ok || vm_a == NULL)
		SKIP("no VM");
	snprintf(src, sizeof(src), "%s/up.txt", tmp);
	f = fopen(src, "w");
	if (f == NULL) {
		CHECK(0);
		return;
	}
	fputs("uploaded by scp\nline two\n", f);
	fclose(f);
	/* OpenSSH 9's scp speaks SFTP; -O is the old protocol that libssh2
	 * uses. */
	CHECK_INT(sh_out(out, sizeof(out),
			 "scp -F /dev/null -o UserKnownHostsFile=%s/known_hosts "
			 "-o StrictHostKeyChecking=accept-new "
			 "-o IdentitiesOnly=yes -o BatchMode=yes -i %s %s "
			 "alice@%s:up.txt 2>&1 && "
			 "scp -O -F /dev/null -o UserKnownHostsFile=%s/known_hosts "
			 "-o IdentitiesOnly=yes -o BatchMode=yes -i %s %s "
			 "alice@%s:/tmp/up-legacy.txt 2>&1",
			 tmp, key_alice, src, ADDR_A, tmp, key_alice, src,
			 ADDR_A),
		  0);
	CHECK_STR(out, "");
	CHECK_INT(ssh_alice(out, sizeof(out), ADDR_A,
			    "cat up.txt /tmp/up-legacy.txt"),
		  0);
	CHECK_STR(out, "uploaded by scp\nline two\nuploaded by scp\nline two");
}

static void
t_isolation(void)
{
	static const char script[] =
		"set -e\n"
		"echo '10.9.8.7 istiod.istio-system.svc' | sudo tee -a /etc/hosts >/dev/null\n"
		"sudo mkdir -p /etc/certs /var/lib/istio/envoy /var/run/secrets/tokens\n"
		"echo pem | sudo tee /etc/certs/x.pem >/dev/null\n"
		"echo env | sudo tee /var/lib/istio/envoy/x >/dev/null\n"
		"echo tok | sudo tee /var/run/secrets/tokens/istio-token >/dev/null\n"
		"sudo touch /usr/local/bin/vm-made /usr/lib/vm-made /root/vm-made /opt/vm-made\n"
		"sudo mkdir -p /etc/istio && sudo ln -sfn /var/lib/istio /etc/istio/x\n"
		"grep -c istiod /etc/hosts\n"
		"cat /etc/certs/x.pem /var/lib/istio/envoy/x\n"
		"set +e\n"
		"sudo touch /srv/vm-made 2>/dev/null && echo srv-writable\n"
		"sudo mkdir /vm-made 2>/dev/null && echo root-writable\n"
		"sudo hostname other 2>/dev/null && echo hostname-changed\n"
		"sudo mount -t tmpfs x /srv 2>/dev/null && echo mounted\n"
		"sudo ip addr add 127.0.99.9/8 dev lo 2>/dev/null && echo net-admin\n"
		"sudo sh -c 'echo 1 > /proc/sys/vm/drop_caches' 2>/dev/null && echo sysctl\n"
		"test -b /dev/vda && echo disk-visible\n"
		"echo top:$(ls -A /mnt 2>/dev/null | wc -w)\n"
		"echo procs:$(ps -e --no-headers | wc -l)\n"
		"echo init:$(cat /proc/1/comm)\n";
	char out[8192], hosts_after[65536], host[256];

	if (!vm_ok || vm_a == NULL)
		SKIP("no VM");
	CHECK(!exists("/etc/certs/x.pem"));
	CHECK_INT(ssh_script(out, sizeof(out), ADDR_A, script), 0);
	fprintf(stderr, "  inside: %s\n", out);
	CHECK(strstr(out, "1\npem\nenv\n") == out);
	CHECK(strstr(out, "writable") == NULL);
	CHECK(strstr(out, "hostname-changed") == NULL);
	CHECK(strstr(out, "mounted") == NULL);
	CHECK(strstr(out, "net-admin") == NULL);
	CHECK(strstr(out, "sysctl") == NULL);
	CHECK(strstr(out, "disk-visible") == NULL);
	CHECK(strstr(out, "top:0\n") != NULL);
	CHECK(strstr(out, "init:vm-init") != NULL);
	/* The test tree under /tmp is not the VM's /tmp. */
	snprintf(host, sizeof(host), "test -e %s && echo leak || echo ok",
		 tmp);
	CHECK_INT(ssh_alice(out, sizeof(out), ADDR_A, host), 0);
	CHECK_STR(out, "ok");

	/* This machine saw none of it. */
	read_small("/etc/hosts", hosts_after, sizeof(hosts_after));
	CHECK_STR(hosts_after, hosts_before);
	CHECK(!exists("/etc/certs"));
	CHECK(!exists("/var/lib/istio"));
	CHECK(!exists("/run/secrets/tokens/istio-token"));
	CHECK(!exists("/usr/local/bin/vm-made"));
	CHECK(!exists("/usr/lib/vm-made"));
	CHECK(!exists("/root/vm-made"));
	CHECK(!exists("/opt/vm-made"));
	CHECK(!exists("/srv/vm-made"));
	CHECK(!exists("/vm-made"));
	CHECK(!exists("/etc/sudoers.d/90-outrigger-vm"));
	CHECK_INT(sh_out(out, sizeof(out), "getent passwd alice"), 2);
	gethostname(host, sizeof(host));
	CHECK(strcmp(host, HOST_A) != 0);
	/* ... and the VM's directory did. */
	snprintf(host, sizeof(host), "%s/fs/upper/etc/certs/x.pem", dir_a);
	CHECK(exists(host));
}

static void
t_units(void)
{
	static const char unit[] =
		"set -e\n"
		"sudo mkdir -p /var/lib/demo && sudo chown alice /var/lib/demo\n"
		"sudo tee /etc/systemd/system/demo.service >/dev/null <<'EOF'\n"
		"[Unit]\n"
		"Description=Outrigger demo unit\n"
		"\n"
		"[Service]\n"
		"Environment=\"GREETING=hello world\" MODE=test\n"
		"EnvironmentFile=-/etc/default/demo-missing\n"
		"WorkingDirectory=/var/lib/demo\n"
		"User=alice\n"
		"ExecStartPre=+/bin/sh -c 'id -u > /run/demo-pre'\n"
		"ExecStart=/bin/sh -c 'while :; do echo \"$GREETING $MODE from $(id -un) in $(pwd)\" > /tmp/demo.out; echo tick; sleep 1; done'\n"
		"Restart=always\n"
		"\n"
		"[Install]\n"
		"WantedBy=multi-user.target\n"
		"EOF\n"
		"sudo systemctl daemon-reload\n"
		"sudo systemctl start demo\n"
		"sleep 1.5\n"
		"systemctl is-active demo\n"
		"cat /tmp/demo.out /run/demo-pre\n"
		"systemctl status demo | grep -c 'active (running)'\n"
		"journalctl -u demo | grep -c tick >/dev/null && echo journal-ok\n"
		"pid=$(cat /run/systemctl-shim/demo.service.pid)\n"
		"tr '\\0' ' ' </proc/$pid/cmdline | grep -q 'while :' && echo pid-ok\n"
		"set +e\n"
		"systemctl start demo 2>&1 | grep -q 'Access denied' && echo denied\n"
		"sudo systemctl stop demo\n"
		"systemctl is-active demo\n"
		"kill -0 $pid 2>/dev/null && echo still-there\n"
		"sudo service demo start && systemctl is-active demo\n"
		"sudo systemctl restart demo && systemctl is-active demo\n"
		"sudo service demo stop; systemctl is-active demo\n"
		"systemctl status nope >/dev/null 2>&1; echo nope:$?\n"
		"sudo systemctl enable demo && systemctl is-enabled demo\n"
		"sudo systemctl start demo && systemctl is-active demo\n";
	char out[8192];
	int rc;

	if (!vm_ok || vm_a == NULL)
		SKIP("no VM");
	rc = ssh_script(out, sizeof(out), ADDR_A, unit);
	fprintf(stderr, "  inside: %s\n", out);
	CHECK_INT(rc, 0);
	CHECK_STR(out, "active\n"
		       "hello world test from alice in /var/lib/demo\n"
		       "0\n"
		       "1\n"
		       "journal-ok\n"
		       "pid-ok\n"
		       "denied\n"
		       "inactive\n"
		       "active\n"
		       "active\n"
		       "inactive\n"
		       "nope:4\n"
		       "Created symlink /etc/systemd/system/multi-user.target."
		       "wants/demo.service -> /etc/systemd/system/"
		       "demo.service.\n"
		       "enabled\n"
		       "active");
}

static void
t_refused_key(void)
{
	char out[4096];

	if (!vm_ok || vm_a == NULL)
		SKIP("no VM");
	CHECK_INT(ssh_run(out, sizeof(out), "alice", key_mallory, ADDR_A,
			  "accept-new", "true"),
		  255);
	CHECK(strstr(out, "Permission denied") != NULL);
	CHECK_INT(ssh_run(out, sizeof(out), "bob", key_bob, ADDR_A,
			  "accept-new", "true"),
		  255);
	CHECK(strstr(out, "Permission denied") != NULL);
	/* Not root either, with a listed key. */
	CHECK_INT(ssh_run(out, sizeof(out), "root", key_alice, ADDR_A,
			  "accept-new", "true"),
		  255);
}

static void
t_set_ssh_keys(void)
{
	char keys[8192], out[4096];
	struct or_err e;

	if (!vm_ok || vm_a == NULL)
		SKIP("no VM");
	/* bob joins; junk and a system account are skipped, not fatal. */
	snprintf(keys, sizeof(keys),
		 "alice:%s\nbob:%s\nthis is not a key\nroot:%s\n", pub_alice,
		 pub_bob, pub_bob);
	CHECK_INT(vm_set_ssh_keys(vm_a, keys, &e), OR_OK);
	CHECK_INT(ssh_run(out, sizeof(out), "bob", key_bob, ADDR_A,
			  "accept-new", "id -un; sudo -n id -u; pwd"),
		  0);
	CHECK_STR(out, "bob\n0\n/home/bob");
	CHECK_INT(ssh_alice(out, sizeof(out), ADDR_A, "id -un"), 0);
	CHECK_STR(out, "alice");
	/* root was listed, but is a system account: untouched. */
	snprintf(out, sizeof(out), "%s/fs/upper/root/.ssh", dir_a);
	CHECK(!exists(out));

	/* alice leaves: no login, no sudo rule; her own lines stay. */
	CHECK_INT(ssh_alice(out, sizeof(out), ADDR_A,
			    "echo \"# mine\" >> .ssh/authorized_keys"),
		  0);
	snprintf(keys, sizeof(keys), "bob:%s\n", pub_bob);
	CHECK_INT(vm_set_ssh_keys(vm_a, keys, &e), OR_OK);
	CHECK_INT(ssh_alice(out, sizeof(out), ADDR_A, "true"), 255);
	CHECK_INT(ssh_run(out, sizeof(out), "bob", key_bob, ADDR_A,
			  "accept-new",
			  "sudo cat /etc/sudoers.d/90-outrigger-vm | "
			  "grep -v ^#; sudo cat /home/alice/.ssh/authorized_keys"),
		  0);
	CHECK_STR(out, "bob ALL=(ALL:ALL) NOPASSWD:ALL\n# mine");

	/* Back to alice and bob for the rest. */
	snprintf(keys, sizeof(keys), "alice:%s\nbob:%s\n", pub_alice,
		 pub_bob);
	CHECK_INT(vm_set_ssh_keys(vm_a, keys, &e), OR_OK);
	CHECK_INT(ssh_alice(out, sizeof(out), ADDR_A,
			    "grep -c . .ssh/authorized_keys"),
		  0);
	CHECK_STR(out, "3");
}

static void
t_two_vms(void)
{
	struct vm_cfg c;
	struct vm *b = NULL;
	struct or_err e;
	char out[4096];

	if (!vm_ok || vm_a == NULL)
		SKIP("no VM");
	cfg_for(&c, dir_b, "vm-b", HOST_B, ADDR_B, keys_alice);
	if (vm_start(&c, &b, &e) != OR_OK) {
		fprintf(stderr, "  vm_start b: %s\n", e.message);
		CHECK(0);
		return;
	}
	CHECK_INT(vm_wait_ready(b, READY_MS, &e), OR_OK);
	/* The same directory cannot boot twice, nor two VMs share an
	 * address. */
	{
		struct vm *again = NULL;
		char other[160];

		c.address = "127.0.77.4";
		CHECK_INT(vm_start(&c, &again, &e), OR_E_CONFLICT);
		CHECK_STR(e.field, "dir");
		CHECK(again == NULL);
		snprintf(other, sizeof(other), "%s/vms/vm-c", tmp);
		cfg_for(&c, other, "vm-c", NULL, ADDR_B, keys_alice);
		CHECK_INT(vm_start(&c, &again, &e), OR_E_CONFLICT);
		CHECK_STR(e.field, "address");
		CHECK(again == NULL);
		CHECK(!exists(other));
	}
	CHECK_INT(ssh_alice(out, sizeof(out), ADDR_B,
			    "hostname; test -e /etc/certs/x.pem && echo leak; "
			    "grep -c istiod /etc/hosts; grep vm-b /etc/hosts"),
		  0);
	CHECK_STR(out, HOST_B "\n0\n" ADDR_B "\t" HOST_B
			      " vm-b  # Added by Outrigger sandbox");
	CHECK_INT(ssh_alice(out, sizeof(out), ADDR_A, "hostname"), 0);
	CHECK_STR(out, HOST_A);
	CHECK(vm_init_pid(b) != vm_init_pid(vm_a));
	CHECK_INT(vm_stop(b, &e), OR_OK);
	CHECK(!vm_ready(b));
	CHECK(vm_ready(vm_a));
	vm_free(b);
}

static void
t_stop(void)
{
	pid_t pids[256];
	char out[4096], ns[64], path[64];
	struct or_err e;
	size_t n = 0, i, gone = 0;
	ssize_t len;

	if (!vm_ok || vm_a == NULL)
		SKIP("no VM");
	CHECK_INT(vm_pids(vm_a, pids, 256, &n, &e), OR_OK);
	/* init, sshd, the demo unit's supervisor, shell and sleep */
	CHECK(n >= 4 && n <= 256);
	if (n > 256)
		n = 256;
	snprintf(path, sizeof(path), "/proc/%ld/ns/pid", (long)pids[0]);
	len = readlink(path, ns, sizeof(ns) - 1);
	ns[len > 0 ? len : 0] = '\0';
	CHECK(len > 0);
	CHECK_INT(pids[0], vm_init_pid(vm_a));

	CHECK_INT(vm_stop(vm_a, &e), OR_OK);
	CHECK(!vm_running(vm_a));
	CHECK(!vm_ready(vm_a));
	CHECK_INT(vm_init_pid(vm_a), -1);
	CHECK_INT(vm_pids(vm_a, pids + 0, 0, &i, &e), OR_E_NOTFOUND);
	for (i = 0; i < n; i++)
		gone += pid_gone(pids[i], ns);
	CHECK_INT(gone, n);
	CHECK_INT(ssh_alice(out, sizeof(out), ADDR_A, "true"), 255);
	CHECK(strstr(out, "refused") != NULL);
	CHECK_INT(vm_stop(vm_a, &e), OR_OK); /* idempotent */
	vm_free(vm_a);
	vm_a = NULL;
}

static void
t_restart(void)
{
	struct vm_cfg c;
	struct or_err e;
	char out[4096], fpr[512], keys[8192];

	if (!vm_ok || dir_a[0] == '\0' || fpr_a[0] == '\0')
		SKIP("no VM");
	snprintf(keys, sizeof(keys), "alice:%s\nbob:%s\n", pub_alice,
		 pub_bob);
	cfg_for(&c, dir_a, "vm-a", HOST_A, ADDR_A, keys);
	if (vm_start(&c, &vm_a, &e) != OR_OK) {
		fprintf(stderr, "  vm_start: %s\n", e.message);
		CHECK(0);
		return;
	}
	CHECK_INT(vm_wait_ready(vm_a, READY_MS, &e), OR_OK);
	CHECK_INT(sh_out(fpr, sizeof(fpr),
			 "ssh-keyscan -t ed25519 %s 2>/dev/null | "
			 "ssh-keygen -lf - | cut -d' ' -f2",
			 ADDR_A),
		  0);
	CHECK_STR(fpr, fpr_a);
	/* StrictHostKeyChecking=yes: the known_hosts of the first boot. */
	sleep(2); /* enabled units start after sshd */
	CHECK_INT(ssh_run(out, sizeof(out), "alice", key_alice, ADDR_A, "yes",
			  "cat /etc/certs/x.pem /var/lib/istio/envoy/x up.txt; "
			  "grep -c istiod /etc/hosts; systemctl is-active demo;"
			  " test -e /tmp/up-legacy.txt || echo tmp-fresh"),
		  0);
	CHECK_STR(out, "pem\nenv\nuploaded by scp\nline two\n1\nactive\n"
		       "tmp-fresh");
	CHECK_INT(ssh_run(out, sizeof(out), "bob", key_bob, ADDR_A, "yes",
			  "id -un"),
		  0);
	CHECK_STR(out, "bob");
	{
		char *pub = NULL;

		CHECK_INT(vm_host_key(dir_a, "ed25519", &pub, &e), OR_OK);
		CHECK(pub != NULL && strncmp(pub, "ssh-ed25519 AAAA", 16) == 0);
		CHECK(pub != NULL && strstr(pub, "root@vm-a") != NULL);
		free(pub);
		CHECK_INT(vm_host_key(dir_a, "dsa", &pub, &e), OR_E_INVALID);
	}
}

/* The VMs' consoles, when something failed: vm-init's and sshd's side. */
static void
dump_consoles(void)
{
	char out[16384];

	if (check_failed == 0)
		return;
	sh_out(out, sizeof(out), "tail -n 40 %s/console.log %s/console.log "
	       "2>&1", dir_a, dir_b);
	fprintf(stderr, "---- VM consoles ----\n%s\n----\n", out);
}

static void
t_destroy(void)
{
	struct or_err e;

	dump_consoles();
	if (getenv("OUTRIGGER_VM_TEST_KEEP") != NULL)
		SKIP("OUTRIGGER_VM_TEST_KEEP is set");
	if (!vm_ok || vm_a == NULL)
		SKIP("no VM");
	CHECK_INT(vm_destroy_dir(dir_a, &e), OR_E_CONFLICT);
	CHECK(exists(dir_a));
	CHECK_INT(vm_stop(vm_a, &e), OR_OK);
	vm_free(vm_a);
	vm_a = NULL;
	CHECK_INT(vm_destroy_dir(dir_a, &e), OR_OK);
	CHECK(!exists(dir_a));
	CHECK_INT(vm_destroy_dir(dir_b, &e), OR_OK);
	CHECK(!exists(dir_b));
	CHECK_INT(vm_destroy_dir(dir_b, &e), OR_OK); /* gone is fine */
}

int
main(int argc, char **argv)
{
	char out[256];

	if (argc > 1 && strcmp(argv[1], "vm-init") == 0)
		return vm_init_main(argc, argv);

	snprintf(tmp, sizeof(tmp), "/tmp/outrigger-vm-XXXXXX");
	if (mkdtemp(tmp) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(dir_a, sizeof(dir_a), "%s/vms/vm-a", tmp);
	snprintf(dir_b, sizeof(dir_b), "%s/vms/vm-b", tmp);
	make_key(key_alice, sizeof(key_alice), pub_alice, sizeof(pub_alice),
		 "alice");
	make_key(key_bob, sizeof(key_bob), pub_bob, sizeof(pub_bob), "bob");
	{
		char junk[2048];

		make_key(key_mallory, sizeof(key_mallory), junk, sizeof(junk),
			 "mallory");
	}
	snprintf(keys_alice, sizeof(keys_alice), "alice:%s\n", pub_alice);

	RUN(t_parse_keys);
	RUN(t_bad_cfg);
	RUN(t_supported);
	RUN(t_boot_login_sudo);
	RUN(t_scp);
	RUN(t_isolation);
	RUN(t_units);
	RUN(t_refused_key);
	RUN(t_set_ssh_keys);
	RUN(t_two_vms);
	RUN(t_stop);
	RUN(t_restart);
	RUN(t_destroy);

	vm_free(vm_a);
	if (getenv("OUTRIGGER_VM_TEST_KEEP") != NULL)
		fprintf(stderr, "kept %s\n", tmp);
	else if (strncmp(tmp, "/tmp/outrigger-vm-", 18) == 0)
		sh_out(out, sizeof(out), "rm -rf %s", tmp);
	return check_done("vm");
}

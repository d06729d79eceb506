/*
 * vm.h - one sandbox Compute Engine VM: a real OpenSSH sshd on port 22 of
 * its own loopback address, inside its own mount, PID, UTS and IPC
 * namespaces, so that what a bootstrap script does over ssh (sudo, writing
 * /etc/hosts and /etc/certs, dpkg, systemctl start) happens to the VM's
 * files only and never changes this machine.
 *
 * The VM sees this machine's files through overlayfs (/etc /var /root /home
 * /usr /opt: writes land in the VM's directory), its own tmpfs /run and
 * /tmp, its own /dev (null, zero, random, tty, devpts, shm; no disks), a
 * fresh /proc with /proc/sys read-only, a read-only sysfs, and the rest of
 * / read-only.  Top-level directories a Debian VM would not have (a checkout,
 * /mnt, /media, ...) are hidden under empty read-only tmpfs mounts.  Its
 * hostname is its own (UTS namespace).  Its changes, host keys and users
 * live in its directory and survive a sandbox restart:
 *
 *   DIR/vms/NAME/hostkeys/   ssh_host_{ed25519,ecdsa,rsa}_key[.pub], made once
 *   DIR/vms/NAME/fs/upper/D  the VM's changes to /D; fs/work/D overlayfs's own
 *   DIR/vms/NAME/ssh-keys    the metadata ssh-keys value last applied
 *   DIR/vms/NAME/console.log the "serial console": vm-init and sshd messages
 *   DIR/vms/NAME/catalog.json  cfg->catalog's copy
 *
 * Besides the systemctl stand-in, a VM has a `docker` stand-in (see the
 * script in vm.c) that runs the sandbox's catalog server for images named
 * *productcatalogservice*; the helper program is bind-mounted read-only at
 * /usr/local/lib/outrigger-vm/outrigger for it (`outrigger sandbox-catalog`),
 * and /usr/local/lib/outrigger-vm/address holds the VM's address.
 *
 * Needs root (unshare, mount, sshd on port 22).  The VM runs from a helper
 * process: the program calling vm_start must hand `PROGRAM vm-init ...` to
 * vm_init_main() (server/main.c must dispatch it; the test runner does).
 *
 * It isolates against accidents, not malice: root inside a VM shares the
 * kernel and the network namespace (sshd must listen on a 127/8 address of
 * this machine).  What the VM runs lacks CAP_SYS_ADMIN, CAP_NET_ADMIN,
 * CAP_SYS_MODULE, CAP_MKNOD and other capabilities that reach past the
 * namespaces, so mount, iptables, `ip addr`, sysctl and hostname fail
 * inside; ordinary root (sudo, chown, dpkg, useradd) works.
 *
 * Thread safety: a struct vm may be used from several threads (its calls are
 * serialized by its own lock); different VMs are independent.
 */
#ifndef VM_H
#define VM_H

#include <stddef.h>
#include <sys/types.h>

#include "or.h"

struct vm_cfg {
	const char *dir;      /* the VM's directory, DIR/vms/NAME; made if missing */
	const char *name;     /* instance name: [a-z]([-a-z0-9]{0,61}[a-z0-9])? */
	const char *hostname; /* what `hostname` says inside; NULL means name */
	const char *address;  /* 127.x.y.z that sshd listens on (127/8 only) */
	int port;	      /* 0 means 22 */
	const char *ssh_keys; /* metadata ssh-keys value ("USER:TYPE KEY ..."
				 lines); NULL or "" for none */
	const char *helper;   /* program run as `HELPER vm-init boot ...`;
				 NULL means this program (/proc/self/exe) */
	const char *catalog;  /* a products.json on this machine, copied to
				 DIR/vms/NAME/catalog.json and shown inside
				 at /usr/local/lib/outrigger-vm/products.json
				 (what the docker stand-in's catalog server
				 serves); NULL: none */
};

struct vm;

/* Whether VMs can run here: root, /usr/sbin/sshd, and a trial unshare +
 * overlay mount in scratch (a directory that is made, used and removed).
 * OR_OK, or OR_E_IO with code "vm_unsupported" and the reason. */
or_rc vm_supported(const char *scratch, const char *helper,
		   struct or_err *err);

/* Boot a VM: make its directory and host keys if missing, mount its view,
 * start its init and sshd, apply cfg->ssh_keys.  Returns once the VM's
 * files are ready; sshd may need a moment more (vm_ready).  *out is owned by
 * the caller: vm_free.  OR_E_INVALID names a bad cfg field; OR_E_CONFLICT
 * if the directory is in use by a running VM; OR_E_IO (code
 * "vm_unsupported" when unshare or mount is refused) with the reason. */
or_rc vm_start(const struct vm_cfg *cfg, struct vm **out, struct or_err *err);

/* 1 when the VM runs and its sshd accepts TCP connections (a connect with a
 * short timeout), else 0.  For the STAGING -> RUNNING switch. */
int vm_ready(struct vm *vm);

/* Poll vm_ready until it says yes: OR_OK, OR_E_TIMEOUT, or OR_E_IO if the
 * VM died. */
or_rc vm_wait_ready(struct vm *vm, int timeout_ms, struct or_err *err);

/* 1 while the VM's init lives. */
int vm_running(struct vm *vm);

/* Apply a new metadata ssh-keys value while the VM runs, as the GCE guest
 * agent does: users are created as needed, keys of users no longer listed
 * are removed from their authorized_keys (other lines are kept), and
 * passwordless sudo follows the list.  Malformed lines are skipped and told
 * on the console.  Synchronous: when it returns OR_OK, logins see the new
 * keys. */
or_rc vm_set_ssh_keys(struct vm *vm, const char *value, struct or_err *err);

/* Stop every process of the VM (SIGKILL to its init ends its PID
 * namespace) and wait until they are gone.  The directory stays.  A stopped
 * VM can be freed, or started again with vm_start and the same dir.
 * Idempotent. */
or_rc vm_stop(struct vm *vm, struct or_err *err);

/* Stop (if running) and free.  vm_free(NULL) is a no-op. */
void vm_free(struct vm *vm);

/* The host PIDs of every process now in the VM (its init first), into
 * pids[0..max).  *n is how many there are (may exceed max).  OR_E_NOTFOUND
 * if the VM does not run. */
or_rc vm_pids(struct vm *vm, pid_t *pids, size_t max, size_t *n,
	      struct or_err *err);

/* The host PID of the VM's init, or -1 when it does not run. */
pid_t vm_init_pid(struct vm *vm);

/* The VM's public host key of type ("ed25519", "ecdsa", "rsa"), as the
 * one-line .pub file says it ("ssh-ed25519 AAAA... root@NAME"), into a
 * malloc'd *out (caller frees).  For guest attributes and known_hosts.
 * Works whether or not the VM runs; OR_E_NOTFOUND before the first boot. */
or_rc vm_host_key(const char *dir, const char *type, char **out,
		  struct or_err *err);

/* Remove a stopped VM's directory.  Refuses (OR_E_INVALID) a directory
 * that has not the marker vm_start leaves, so that a wrong path cannot be
 * wiped.  Never crosses into other file systems or follows symlinks. */
or_rc vm_destroy_dir(const char *dir, struct or_err *err);

/* One key of a metadata ssh-keys value. */
#define VM_USER_MAX 32
#define VM_KEY_LINE_MAX 8192
struct vm_ssh_key {
	char user[VM_USER_MAX + 1];
	char line[VM_KEY_LINE_MAX]; /* "TYPE BASE64[ COMMENT]" for authorized_keys */
};

/* Parse an ssh-keys value: lines "USER:TYPE BASE64 [COMMENT]" with TYPE one
 * of ssh-ed25519, ecdsa-sha2-nistp{256,384,521}, ssh-rsa, sk-ssh-ed25519@
 * openssh.com, sk-ecdsa-sha2-nistp256@openssh.com.  Blank lines are ignored;
 * other malformed lines are counted in *skipped (may be NULL) and left out.
 * *keys is malloc'd (caller frees; NULL when *n is 0).  OR_E_TOOLARGE over
 * 256 KiB (GCE's metadata value limit), OR_E_NOMEM. */
or_rc vm_ssh_keys_parse(const char *value, struct vm_ssh_key **keys,
			size_t *n, size_t *skipped, struct or_err *err);

/* The `vm-init` subcommand: argv[1] is "vm-init", argv[2] the mode ("boot"
 * or "probe").  Only vm_start and vm_supported run it; it talks to them
 * over fd 3.  Returns the exit code. */
int vm_init_main(int argc, char **argv);

#endif

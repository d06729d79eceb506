/*
 * vm.c - sandbox VMs: a real sshd per Compute Engine instance, in its own
 * mount, PID, UTS and IPC namespaces over overlayfs (vm.h says what a VM
 * sees and where its state lives).
 *
 * Three processes make a VM:
 *   - the caller (the sandbox, multi-threaded): vm_start forks and at once
 *     execs `PROGRAM vm-init boot ...` (nothing but async-signal-safe calls
 *     in between), then talks to it over a SOCK_SEQPACKET socket (fd 3 on
 *     the other side);
 *   - the helper (vm-init, single-threaded, host PID namespace): makes the
 *     host keys, unshares the mount/UTS/IPC namespaces, mounts the VM's view,
 *     writes the VM's files, then unshares the PID namespace and forks the
 *     VM's init.  It stays as the VM's "guest agent": it applies ssh-keys
 *     changes on request and kills the init when the caller's socket closes
 *     (so a crashed sandbox leaves no VM behind);
 *   - the VM's init (PID 1 inside): mounts /proc, drops dangerous
 *     capabilities from the bounding set, runs sshd and restarts it, reaps
 *     orphans, starts enabled units.  SIGKILL to it ends the PID namespace,
 *     which kills every process of the VM.
 *
 * What this file must never do: change anything of this machine outside the
 * VM's directory (every write inside the VM happens after the overlays are
 * mounted), signal a process other than by a PID it owns, or listen outside
 * 127.0.0.0/8.
 */
#include "vm.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <shadow.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"

#define VM_CTL_FD 3		     /* the helper's end of the control socket */
#define VM_MSG_MAX 1024		     /* one control message */
#define VM_KEYS_MAX (256 * 1024)     /* GCE's limit for one metadata value */
#define VM_FILE_MAX (4 * 1024 * 1024) /* /etc/passwd and the like */
#define VM_CONSOLE_MAX (4 * 1024 * 1024)
#define VM_BOOT_TIMEOUT_MS 60000     /* includes making an RSA host key */
#define VM_REPLY_TIMEOUT_MS 30000
#define VM_STOP_TIMEOUT_MS 10000
#define VM_UID_MIN 1000		     /* like useradd: FIRST_UID .. LAST_UID */
#define VM_UID_MAX 59999
#define VM_MARKER ".outrigger-vm"
#define VM_LOCK ".lock"
#define VM_KEY_MARK "# Added by Google"
#define VM_SUDOERS "/etc/sudoers.d/90-outrigger-vm"
#define VM_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define VM_SSHD "/usr/sbin/sshd"

/* Directories the VM sees through overlayfs: the host's files plus the VM's
 * changes.  /usr, not just /usr/local: `dpkg -i istio-sidecar.deb` writes
 * /lib/systemd/system, which is /usr/lib on a merged-/usr Debian. */
static const char *const vm_overlays[] = {"etc", "var", "root", "home",
					  "usr", "opt"};

/* Top-level directories the VM sees as the host has them (read-only unless
 * overlaid or mounted anew).  Every other one (/mnt, /media, a checkout at the top, ...) is hidden
 * under an empty read-only tmpfs: a VM has no business with the sandbox's
 * own files or with what is mounted on this machine. */
static const char *const vm_keep_top[] = {
	"bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32",
	"lost+found", "opt", "proc", "root", "run", "sbin", "srv", "sys",
	"tmp", "usr", "var"};

/* Capabilities taken out of the bounding set of everything the VM runs:
 * with them root inside could reach this machine through the shared kernel
 * (mount, modules, raw devices, the clock, the shared network stack's
 * configuration, open_by_handle_at, the kernel log). */
static const int vm_drop_caps[] = {
	CAP_SYS_ADMIN,	 CAP_SYS_MODULE,      CAP_SYS_RAWIO, CAP_SYS_TIME,
	CAP_SYS_BOOT,	 CAP_MKNOD,	      CAP_NET_ADMIN, CAP_DAC_READ_SEARCH,
	CAP_SYSLOG,	 CAP_MAC_ADMIN,	      CAP_MAC_OVERRIDE,
	CAP_SYS_PACCT,	 CAP_LINUX_IMMUTABLE, CAP_WAKE_ALARM,
	CAP_BLOCK_SUSPEND, CAP_AUDIT_CONTROL,
#ifdef CAP_PERFMON
	CAP_PERFMON,
#endif
#ifdef CAP_BPF
	CAP_BPF,
#endif
#ifdef CAP_CHECKPOINT_RESTORE
	CAP_CHECKPOINT_RESTORE,
#endif
};

static const char *const vm_hostkey_types[] = {"ed25519", "ecdsa", "rsa"};

struct vm {
	pthread_mutex_t lock;
	char *dir; /* realpath of cfg->dir */
	char *name;
	char *address;
	int port;
	pid_t helper; /* our child; -1 once reaped */
	pid_t pid1;   /* host PID of the VM's init */
	int pid1fd;   /* pidfd of pid1 (sent by the helper), or -1 */
	int ctl;      /* control socket to the helper, or -1 */
	unsigned seq; /* of the last request: a late answer to an earlier
			 one that timed out is recognized and dropped */
};

/* ------------------------------------------------------------------ */
/* Shared helpers */

static long long
vm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
vm_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* dir/name into out; -1 (out is "") when it does not fit. */
static int
vm_join(char *out, size_t size, const char *dir, const char *name)
{
	int n = snprintf(out, size, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= size) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

/* Move fd to a number above the standard streams and the control fd, so
 * that the dup2 calls of a child cannot clobber it. */
static int
vm_fd_high(int fd)
{
	int hi;

	if (fd < 0 || fd > VM_CTL_FD)
		return fd;
	hi = fcntl(fd, F_DUPFD_CLOEXEC, VM_CTL_FD + 1);
	close(fd);
	return hi;
}

static int
vm_valid_name(const char *s)
{
	size_t i, n = s ? strlen(s) : 0;

	if (n == 0 || n > 63 || s[0] < 'a' || s[0] > 'z' || s[n - 1] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

/* A hostname for sethostname(2) (at most 64 bytes) and /etc/hosts: dot-
 * separated labels of letters, digits and hyphens. */
static int
vm_valid_hostname(const char *s)
{
	size_t i, n = s ? strlen(s) : 0, label = 0;

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-'))
			return 0;
		if (c == '-' && label == 0)
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && s[n - 1] != '-';
}

static int
vm_valid_address(const char *s)
{
	struct in_addr a;

	if (s == NULL || inet_pton(AF_INET, s, &a) != 1)
		return 0;
	return (ntohl(a.s_addr) >> 24) == 127;
}

/* Usernames as useradd takes them (and GCE's guest agent passes them on):
 * [a-z_][a-z0-9_.-]*, at most 32. */
static int
vm_valid_user(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > VM_USER_MAX)
		return 0;
	if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return 0;
	for (i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '.' || s[i] == '-'))
			return 0;
	return 1;
}

/* Read a whole file relative to dirfd into b (bounded by b's max).
 * OR_E_NOTFOUND if it does not exist.  Never follows a final symlink. */
static or_rc
vm_read_at(int dirfd, const char *path, struct buf *b, struct or_err *err)
{
	char chunk[8192];
	ssize_t n;
	or_rc rc = OR_OK;
	int fd;

	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return or_fail(err, OR_E_NOTFOUND, NULL, NULL,
				       "%s does not exist", path);
		return or_fail(err, OR_E_IO, NULL, NULL, "open %s: %s", path,
			       strerror(errno));
	}
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = or_fail(err, OR_E_IO, NULL, NULL, "read %s: %s",
				     path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		rc = buf_append(b, chunk, (size_t)n);
		if (rc != OR_OK) {
			or_fail(err, rc, NULL, NULL, "%s is too large", path);
			goto out;
		}
	}
out:
	close(fd);
	return rc;
}

static int
vm_write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Replace path (relative to dirfd) atomically with data: a temporary file
 * next to it, owned uid:gid (-1 keeps ours) with mode, renamed over it.
 * Neither the temporary file nor the target is followed if a symlink, so a
 * user inside the VM cannot redirect these writes. */
static or_rc
vm_write_at(int dirfd, const char *path, const char *data, size_t len,
	    mode_t mode, uid_t uid, gid_t gid, struct or_err *err)
{
	char tmp[PATH_MAX];
	or_rc rc = OR_OK;
	int fd = -1, n;

	n = snprintf(tmp, sizeof(tmp), "%s.vm-new", path);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return or_fail(err, OR_E_INVALID, NULL, NULL,
			       "path too long: %s", path);
	unlinkat(dirfd, tmp, 0);
	fd = openat(dirfd, tmp,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    0600);
	if (fd < 0) {
		rc = or_fail(err, OR_E_IO, NULL, NULL, "create %s: %s", tmp,
			     strerror(errno));
		goto out;
	}
	if (vm_write_all(fd, data, len) < 0 ||
	    ((uid != (uid_t)-1 || gid != (gid_t)-1) &&
	     fchown(fd, uid, gid) < 0) ||
	    fchmod(fd, mode) < 0) {
		rc = or_fail(err, OR_E_IO, NULL, NULL, "write %s: %s", tmp,
			     strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = or_fail(err, OR_E_IO, NULL, NULL, "write %s: %s", tmp,
			     strerror(errno));
		goto out;
	}
	fd = -1;
	if (renameat(dirfd, tmp, dirfd, path) < 0)
		rc = or_fail(err, OR_E_IO, NULL, NULL, "rename %s: %s", path,
			     strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	if (rc != OR_OK)
		unlinkat(dirfd, tmp, 0);
	return rc;
}

static or_rc
vm_write_str_at(int dirfd, const char *path, const char *s, mode_t mode,
		struct or_err *err)
{
	return vm_write_at(dirfd, path, s, strlen(s), mode, (uid_t)-1,
			   (gid_t)-1, err);
}

/* mkdir -p for an absolute or relative path; the last component gets mode
 * (parents 0755).  Existing directories are left as they are. */
static or_rc
vm_mkdir_p(const char *path, mode_t mode, struct or_err *err)
{
	char p[PATH_MAX];
	size_t i, n = strlen(path);

	if (n == 0 || n >= sizeof(p))
		return or_fail(err, OR_E_INVALID, NULL, "dir",
			       "directory path empty or too long");
	memcpy(p, path, n + 1);
	for (i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		p[i] = '\0';
		if (mkdir(p, i == n ? mode : 0755) < 0 && errno != EEXIST)
			return or_fail(err, OR_E_IO, NULL, "dir", "mkdir %s: %s",
				       p, strerror(errno));
		if (i < n)
			p[i] = '/';
	}
	return OR_OK;
}

/* Control messages: one SOCK_SEQPACKET datagram each, optionally carrying
 * one fd.  MSG_NOSIGNAL: a closed peer must not kill the sender. */
static int
vm_msg_send(int sock, const char *msg, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {(void *)msg, strlen(msg)};
	struct msghdr mh;
	struct cmsghdr *cm;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (fd >= 0) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	while (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

/* Receive one message into buf (NUL-terminated) within timeout_ms (-1:
 * forever).  Returns its length, 0 at EOF, -1 on error or timeout (errno
 * ETIMEDOUT).  A passed fd lands in *fd (else -1) when fd is not NULL. */
static ssize_t
vm_msg_recv(int sock, char *buf, size_t size, int *fd, int timeout_ms)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {buf, size - 1};
	struct msghdr mh;
	struct cmsghdr *cm;
	struct pollfd p = {sock, POLLIN, 0};
	long long deadline = vm_now_ms() + timeout_ms;
	int left, r;
	ssize_t n;

	if (fd != NULL)
		*fd = -1;
	for (;;) {
		left = timeout_ms < 0 ? -1 : (int)(deadline - vm_now_ms());
		if (timeout_ms >= 0 && left < 0)
			left = 0;
		r = poll(&p, 1, left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		break;
	}
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = u.buf;
	mh.msg_controllen = sizeof(u.buf);
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		int got;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		memcpy(&got, CMSG_DATA(cm), sizeof(int));
		if (fd != NULL && *fd < 0)
			*fd = got;
		else
			close(got);
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* The metadata ssh-keys value */

static int
vm_key_type_ok(const char *t, size_t n)
{
	static const char *const types[] = {
		"ssh-ed25519",
		"ecdsa-sha2-nistp256",
		"ecdsa-sha2-nistp384",
		"ecdsa-sha2-nistp521",
		"ssh-rsa",
		"sk-ssh-ed25519@openssh.com",
		"sk-ecdsa-sha2-nistp256@openssh.com",
	};
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strlen(types[i]) == n && memcmp(types[i], t, n) == 0)
			return 1;
	return 0;
}

/* One line "USER:TYPE BASE64[ COMMENT]" into k; 0 if malformed.  The
 * written line starts with the key type, so metadata cannot smuggle
 * authorized_keys options (command=, from=) into the VM. */
static int
vm_key_parse_line(const char *s, size_t len, struct vm_ssh_key *k)
{
	const char *end = s + len, *colon, *t, *b, *c;
	size_t tn, bn, cn, i;
	int n;

	colon = memchr(s, ':', len);
	if (colon == NULL || !vm_valid_user(s, (size_t)(colon - s)))
		return 0;
	memcpy(k->user, s, (size_t)(colon - s));
	k->user[colon - s] = '\0';
	t = colon + 1;
	while (t < end && (*t == ' ' || *t == '\t'))
		t++;
	for (b = t; b < end && *b != ' ' && *b != '\t'; b++)
		;
	tn = (size_t)(b - t);
	if (!vm_key_type_ok(t, tn))
		return 0;
	while (b < end && (*b == ' ' || *b == '\t'))
		b++;
	for (c = b; c < end && *c != ' ' && *c != '\t'; c++)
		;
	bn = (size_t)(c - b);
	if (bn < 16)
		return 0;
	for (i = 0; i < bn; i++)
		if (!((b[i] >= 'A' && b[i] <= 'Z') ||
		      (b[i] >= 'a' && b[i] <= 'z') ||
		      (b[i] >= '0' && b[i] <= '9') || b[i] == '+' ||
		      b[i] == '/' || b[i] == '='))
			return 0;
	while (c < end && (*c == ' ' || *c == '\t'))
		c++;
	cn = (size_t)(end - c);
	while (cn > 0 && (c[cn - 1] == ' ' || c[cn - 1] == '\t'))
		cn--;
	for (i = 0; i < cn; i++)
		if ((unsigned char)c[i] < 0x20 && c[i] != '\t')
			return 0;
	n = snprintf(k->line, sizeof(k->line), "%.*s %.*s%s%.*s", (int)tn, t,
		     (int)bn, b, cn ? " " : "", (int)cn, c);
	return n > 0 && (size_t)n < sizeof(k->line);
}

or_rc
vm_ssh_keys_parse(const char *value, struct vm_ssh_key **keys, size_t *n,
		  size_t *skipped, struct or_err *err)
{
	struct vm_ssh_key *all = NULL, *grown;
	size_t count = 0, cap = 0, bad = 0, len;
	const char *s, *nl;
	or_rc rc = OR_OK;

	*keys = NULL;
	*n = 0;
	if (skipped != NULL)
		*skipped = 0;
	if (value == NULL)
		return OR_OK;
	if (strlen(value) > VM_KEYS_MAX)
		return or_fail(err, OR_E_TOOLARGE, NULL, "ssh-keys",
			       "ssh-keys is over %d bytes", VM_KEYS_MAX);
	for (s = value; *s != '\0'; s = nl ? nl + 1 : s + len) {
		nl = strchr(s, '\n');
		len = nl ? (size_t)(nl - s) : strlen(s);
		while (len > 0 && (s[len - 1] == '\r' || s[len - 1] == ' ' ||
				   s[len - 1] == '\t'))
			len--;
		while (len > 0 && (*s == ' ' || *s == '\t')) {
			s++;
			len--;
		}
		if (len == 0) {
			if (nl == NULL)
				break;
			continue;
		}
		if (count == cap) {
			cap = cap ? cap * 2 : 8;
			grown = realloc(all, cap * sizeof(*all));
			if (grown == NULL) {
				rc = or_fail(err, OR_E_NOMEM, NULL, NULL,
					     "out of memory");
				goto out;
			}
			all = grown;
		}
		if (vm_key_parse_line(s, len, &all[count]))
			count++;
		else
			bad++;
		if (nl == NULL)
			break;
	}
out:
	if (rc != OR_OK || count == 0) {
		free(all);
		all = NULL;
		if (rc != OR_OK)
			count = 0;
	}
	*keys = all;
	*n = count;
	if (skipped != NULL)
		*skipped = bad;
	return rc;
}

/* ------------------------------------------------------------------ */
/* The scripts vm-init installs in the VM (BEGIN SHIMS) */

static const char vm_shim_systemctl[] =
	"#!/bin/sh\n"
	"# systemctl for an Outrigger sandbox VM.  The VM has no systemd: its PID 1 is\n"
	"# vm-init, which rewrites this file at every boot.  Bootstrap scripts only\n"
	"# need units that they drop into /etc/systemd/system to start and stop, so\n"
	"# that is what this does, and it says so when asked for anything else.\n"
	"#\n"
	"# Units: NAME or NAME.service, looked up in /etc/systemd/system,\n"
	"# /run/systemd/system, /lib/systemd/system, /usr/lib/systemd/system.\n"
	"# start: ExecStartPre= in the foreground, then ExecStart= in the background\n"
	"# under a supervisor shell in its own session (process group); output goes to\n"
	"# /var/log/systemctl-shim/NAME.log (what `journalctl -u NAME` prints); the\n"
	"# main PID is in /run/systemctl-shim/NAME.pid.  stop: ExecStop= (with\n"
	"# $MAINPID), then SIGTERM to the unit's process group, SIGKILL after 10 s,\n"
	"# then ExecStopPost=.  Stopping is by PID only.\n"
	"#\n"
	"# Limits, compared with systemd:\n"
	"# - command lines are run by /bin/sh: quoting and $VAR follow the shell, not\n"
	"#   systemd; specifiers (%i, %n, ...) are not expanded; the prefixes - + !\n"
	"#   are honoured (ignore failure, run as root), @ and : are dropped; only the\n"
	"#   last ExecStart= counts.\n"
	"# - Environment= is `export VALUE` in sh; EnvironmentFile= is sourced by sh.\n"
	"# - Type=simple/exec/notify/idle/dbus all mean \"simple\"; Type=oneshot runs in\n"
	"#   the foreground (RemainAfterExit=yes keeps it \"active\"); Type=forking runs\n"
	"#   ExecStart in the foreground and reads PIDFile= if given.\n"
	"# - Restart=always|on-failure|on-abnormal restart after RestartSec= (plain\n"
	"#   seconds; default 1); other values do not restart.\n"
	"# - User=/Group= through setpriv; no cgroups, Limit*=, sandboxing options,\n"
	"#   dependencies (After=, Requires=, Wants=), sockets, timers, targets,\n"
	"#   templates (NAME@), or `systemctl show`.\n"
	"# - enable/disable record the unit in /var/lib/systemctl-shim/enabled and\n"
	"#   make the multi-user.target.wants link; vm-init starts enabled units at\n"
	"#   boot.  daemon-reload does nothing: units are read by every command.\n"
	"# - the state (PIDs, exit codes) is in /run, so it is lost when the VM stops,\n"
	"#   as with systemd.\n"
	"\n"
	"STATE=/run/systemctl-shim\n"
	"LOGS=/var/log/systemctl-shim\n"
	"ENABLED=/var/lib/systemctl-shim/enabled\n"
	"UNITDIRS=\"/etc/systemd/system /run/systemd/system /lib/systemd/system /usr/lib/systemd/system\"\n"
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
	"export PATH\n"
	"QUIET=0\n"
	"\n"
	"say() { [ \"$QUIET\" = 1 ] || echo \"$*\"; }\n"
	"warn() { echo \"$*\" >&2; }\n"
	"\n"
	"# unit_name NAME: NAME.service, or empty for a unit type this cannot run.\n"
	"unit_name() {\n"
	"\tcase \"$1\" in\n"
	"\t*/* | \"\" | *@*) echo \"\" ;;\n"
	"\t*.service) echo \"$1\" ;;\n"
	"\t*.*) echo \"\" ;;\n"
	"\t*) echo \"$1.service\" ;;\n"
	"\tesac\n"
	"}\n"
	"\n"
	"unit_file() {\n"
	"\tfor d in $UNITDIRS; do\n"
	"\t\tif [ -f \"$d/$1\" ]; then\n"
	"\t\t\techo \"$d/$1\"\n"
	"\t\t\treturn 0\n"
	"\t\tfi\n"
	"\tdone\n"
	"\treturn 1\n"
	"}\n"
	"\n"
	"# parse FILE: \"Key<TAB>Value\" lines of [Service] (and Description).\n"
	"parse() {\n"
	"\tawk '\n"
	"\t{ sub(/\\r$/, \"\") }\n"
	"\tcont != \"\" { $0 = cont $0; cont = \"\" }\n"
	"\t/\\\\$/ { cont = substr($0, 1, length($0) - 1) \" \"; next }\n"
	"\t{\n"
	"\t\tline = $0\n"
	"\t\tsub(/^[ \\t]+/, \"\", line)\n"
	"\t\tif (line == \"\" || line ~ /^[#;]/) next\n"
	"\t\tif (line ~ /^\\[.*\\][ \\t]*$/) { sec = line; sub(/[ \\t]+$/, \"\", sec); next }\n"
	"\t\teq = index(line, \"=\")\n"
	"\t\tif (eq == 0) next\n"
	"\t\tk = substr(line, 1, eq - 1); v = substr(line, eq + 1)\n"
	"\t\tsub(/[ \\t]+$/, \"\", k); sub(/^[ \\t]+/, \"\", v); sub(/[ \\t]+$/, \"\", v)\n"
	"\t\tif (sec == \"[Unit]\" && k == \"Description\") print \"Description\\t\" v\n"
	"\t\telse if (sec == \"[Service]\") print k \"\\t\" v\n"
	"\t}' \"$1\"\n"
	"}\n"
	"\n"
	"NL='\n"
	"'\n"
	"TAB=$(printf '\\t')\n"
	"\n"
	"# load UNIT: sets the unit's variables, and ENVTEXT: the script that sets\n"
	"# up its environment (written to $STATE/UNIT.env by write_env, only by the\n"
	"# verbs that run something, so that status works for any user).\n"
	"load() {\n"
	"\tU=$1\n"
	"\tF=$(unit_file \"$U\") || return 1\n"
	"\tDESC=\"\" MAIN=\"\" TYPE=simple UUSER=\"\" UGROUP=\"\" WD=\"\" RESTART=no RSEC=1\n"
	"\tPIDFILE=\"\" REMAIN=no RELOAD=\"\" PRE=\"\" POST=\"\" STOP=\"\" STOPPOST=\"\"\n"
	"\tENVF=$STATE/$U.env\n"
	"\tENVTEXT=\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${NL}export PATH$NL\"\n"
	"\tP=$(parse \"$F\")\n"
	"\twhile IFS=\"$TAB\" read -r k v; do\n"
	"\t\tcase \"$k\" in\n"
	"\t\tDescription) DESC=$v ;;\n"
	"\t\tExecStart) MAIN=$v ;;\n"
	"\t\tExecStartPre) if [ -z \"$v\" ]; then PRE=\"\"; else PRE=\"$PRE$v$NL\"; fi ;;\n"
	"\t\tExecStartPost) if [ -z \"$v\" ]; then POST=\"\"; else POST=\"$POST$v$NL\"; fi ;;\n"
	"\t\tExecStop) if [ -z \"$v\" ]; then STOP=\"\"; else STOP=\"$STOP$v$NL\"; fi ;;\n"
	"\t\tExecStopPost) if [ -z \"$v\" ]; then STOPPOST=\"\"; else STOPPOST=\"$STOPPOST$v$NL\"; fi ;;\n"
	"\t\tExecReload) RELOAD=$v ;;\n"
	"\t\tType) TYPE=$v ;;\n"
	"\t\tUser) UUSER=$v ;;\n"
	"\t\tGroup) UGROUP=$v ;;\n"
	"\t\tWorkingDirectory) WD=$v ;;\n"
	"\t\tRestart) RESTART=$v ;;\n"
	"\t\tRestartSec) RSEC=${v%s} ;;\n"
	"\t\tPIDFile) PIDFILE=$v ;;\n"
	"\t\tRemainAfterExit) REMAIN=$v ;;\n"
	"\t\tEnvironment) [ -z \"$v\" ] || ENVTEXT=\"${ENVTEXT}export $v$NL\" ;;\n"
	"\t\tEnvironmentFile)\n"
	"\t\t\tcase \"$v\" in\n"
	"\t\t\t-*) ENVTEXT=\"${ENVTEXT}if [ -r '${v#-}' ]; then set -a; . '${v#-}'; set +a; fi$NL\" ;;\n"
	"\t\t\t*) ENVTEXT=\"${ENVTEXT}set -a; . '$v' || exit 1; set +a$NL\" ;;\n"
	"\t\t\tesac ;;\n"
	"\t\tesac\n"
	"\tdone <<EOF\n"
	"$P\n"
	"EOF\n"
	"\tif [ -n \"$UUSER\" ]; then\n"
	"\t\tuhome=$(getent passwd \"$UUSER\" | cut -d: -f6)\n"
	"\t\tENVTEXT=\"${ENVTEXT}export HOME='$uhome' USER='$UUSER' LOGNAME='$UUSER'$NL\"\n"
	"\tfi\n"
	"\tcase \"$WD\" in\n"
	"\t\"\") ;;\n"
	"\t-*) ENVTEXT=\"${ENVTEXT}cd '$(wd_path \"${WD#-}\")' 2>/dev/null$NL\" ;;\n"
	"\t*) ENVTEXT=\"${ENVTEXT}cd '$(wd_path \"$WD\")' || exit 200$NL\" ;;\n"
	"\tesac\n"
	"\tcase \"$RSEC\" in *[!0-9.]* | \"\") RSEC=1 ;; esac\n"
	"\treturn 0\n"
	"}\n"
	"\n"
	"write_env() {\n"
	"\tmkdir -p \"$STATE\" \"$LOGS\" &&\n"
	"\t\tprintf '%s' \"$ENVTEXT\" >\"$ENVF.tmp\" &&\n"
	"\t\tmv \"$ENVF.tmp\" \"$ENVF\"\n"
	"}\n"
	"\n"
	"wd_path() {\n"
	"\tif [ \"$1\" = \"~\" ]; then\n"
	"\t\tif [ -n \"$UUSER\" ]; then getent passwd \"$UUSER\" | cut -d: -f6; else echo /root; fi\n"
	"\telse\n"
	"\t\techo \"$1\"\n"
	"\tfi\n"
	"}\n"
	"\n"
	"# cmd_script LINE FILE: write FILE that runs LINE (prefixes removed) and set\n"
	"# IGNORE (prefix -) and ASROOT (prefix + or !).\n"
	"cmd_script() {\n"
	"\tline=$1 IGNORE=0 ASROOT=0\n"
	"\twhile :; do\n"
	"\t\tcase \"$line\" in\n"
	"\t\t-*) IGNORE=1; line=${line#-} ;;\n"
	"\t\t+* | !*) ASROOT=1; line=${line#?} ;;\n"
	"\t\t@* | :*) line=${line#?} ;;\n"
	"\t\t*) break ;;\n"
	"\t\tesac\n"
	"\tdone\n"
	"\tprintf '%s\\n' \"exec $line\" >\"$2\"\n"
	"}\n"
	"\n"
	"# as_user: the command prefix that runs a unit command as User=/Group=.\n"
	"as_user() {\n"
	"\tif [ -n \"$UUSER\" ] && [ \"$ASROOT\" = 0 ]; then\n"
	"\t\tg=${UGROUP:-$(id -gn \"$UUSER\")}\n"
	"\t\techo \"setpriv --reuid=$UUSER --regid=$g --init-groups --\"\n"
	"\tfi\n"
	"}\n"
	"\n"
	"# run_cmd SCRIPT: run one command script in the foreground: the unit's\n"
	"# environment is read as root (like systemd), then the command runs as User=.\n"
	"run_cmd() {\n"
	"\t# shellcheck disable=SC2046\n"
	"\t(. \"$ENVF\" && exec $(as_user) /bin/sh \"$1\")\n"
	"}\n"
	"\n"
	"# run_list LINES TAG: run each command line in the foreground, stop at the\n"
	"# first failure not prefixed with -.\n"
	"run_list() {\n"
	"\t[ -n \"$1\" ] || return 0\n"
	"\ti=0\n"
	"\tprintf '%s' \"$1\" | while IFS= read -r l; do\n"
	"\t\ti=$((i + 1))\n"
	"\t\tcmd_script \"$l\" \"$STATE/$U.$2.$i\"\n"
	"\t\tif ! run_cmd \"$STATE/$U.$2.$i\" >>\"$LOGS/$U.log\" 2>&1; then\n"
	"\t\t\t[ \"$IGNORE\" = 1 ] || exit 1\n"
	"\t\tfi\n"
	"\tdone\n"
	"}\n"
	"\n"
	"now() { date '+%b %d %H:%M:%S'; }\n"
	"note() { echo \"$(now) systemctl: $*\" >>\"$LOGS/$U.log\"; }\n"
	"\n"
	"sup_alive() {\n"
	"\t[ -f \"$STATE/$U.sup\" ] || return 1\n"
	"\ts=$(cat \"$STATE/$U.sup\" 2>/dev/null)\n"
	"\t[ -n \"$s\" ] && [ -r \"/proc/$s/cmdline\" ] || return 1\n"
	"\ttr '\\0' ' ' <\"/proc/$s/cmdline\" 2>/dev/null | grep -qF \"$STATE/$U.run\"\n"
	"}\n"
	"\n"
	"# state UNIT: active | failed | inactive\n"
	"state() {\n"
	"\tU=$1\n"
	"\tif [ -f \"$STATE/$U.oneshot\" ]; then echo active; return; fi\n"
	"\tif [ -f \"$STATE/$U.forking\" ]; then\n"
	"\t\tp=$(cat \"$STATE/$U.pid\" 2>/dev/null)\n"
	"\t\tif [ -n \"$p\" ] && [ -d \"/proc/$p\" ]; then echo active; return; fi\n"
	"\tfi\n"
	"\tif sup_alive; then echo active; return; fi\n"
	"\tst=$(cat \"$STATE/$U.status\" 2>/dev/null)\n"
	"\tcase \"$st\" in\n"
	"\t\"\" | 0 | stopped) echo inactive ;;\n"
	"\t*) echo failed ;;\n"
	"\tesac\n"
	"}\n"
	"\n"
	"do_start() {\n"
	"\tU=$1\n"
	"\t[ \"$(state \"$U\")\" = active ] && return 0\n"
	"\tload \"$U\" || { warn \"Failed to start $U: Unit $U not found.\"; return 5; }\n"
	"\tif [ -z \"$MAIN\" ]; then\n"
	"\t\twarn \"Failed to start $U: Unit $U has no ExecStart= setting.\"\n"
	"\t\treturn 1\n"
	"\tfi\n"
	"\twrite_env || return 1\n"
	"\trm -f \"$STATE/$U.status\" \"$STATE/$U.oneshot\" \"$STATE/$U.forking\" \"$STATE/$U.pid\" \"$STATE/$U.sup\"\n"
	"\t# A missing EnvironmentFile= or WorkingDirectory= fails the start,\n"
	"\t# as with systemd, instead of the supervisor dying unseen.\n"
	"\tif ! (. \"$ENVF\") >>\"$LOGS/$U.log\" 2>&1; then\n"
	"\t\techo 1 >\"$STATE/$U.status\"\n"
	"\t\tnote \"$U: failed to set up the environment (EnvironmentFile=, WorkingDirectory=)\"\n"
	"\t\twarn \"Job for $U failed because the control process exited with error code.\"\n"
	"\t\treturn 1\n"
	"\tfi\n"
	"\tif ! run_list \"$PRE\" pre; then\n"
	"\t\techo 1 >\"$STATE/$U.status\"\n"
	"\t\tnote \"$U: ExecStartPre= failed\"\n"
	"\t\twarn \"Job for $U failed because the control process exited with error code.\"\n"
	"\t\treturn 1\n"
	"\tfi\n"
	"\tcmd_script \"$MAIN\" \"$STATE/$U.main\"\n"
	"\tcase \"$TYPE\" in\n"
	"\toneshot | forking)\n"
	"\t\trun_cmd \"$STATE/$U.main\" </dev/null >>\"$LOGS/$U.log\" 2>&1\n"
	"\t\trc=$?\n"
	"\t\techo \"$rc\" >\"$STATE/$U.status\"\n"
	"\t\tif [ \"$rc\" != 0 ] && [ \"$IGNORE\" = 0 ]; then\n"
	"\t\t\tnote \"$U: main process exited, code=$rc\"\n"
	"\t\t\twarn \"Job for $U failed because the control process exited with error code.\"\n"
	"\t\t\treturn 1\n"
	"\t\tfi\n"
	"\t\tif [ \"$TYPE\" = forking ]; then\n"
	"\t\t\t[ -n \"$PIDFILE\" ] && cp \"$PIDFILE\" \"$STATE/$U.pid\" 2>/dev/null\n"
	"\t\t\ttouch \"$STATE/$U.forking\"\n"
	"\t\telif [ \"$REMAIN\" = yes ] || [ \"$REMAIN\" = true ]; then\n"
	"\t\t\ttouch \"$STATE/$U.oneshot\"\n"
	"\t\tfi\n"
	"\t\tnote \"Started $U${DESC:+ - $DESC}.\"\n"
	"\t\trun_list \"$POST\" post\n"
	"\t\treturn 0 ;;\n"
	"\tesac\n"
	"\t{\n"
	"\t\techo \"echo \\$\\$ >'$STATE/$U.sup'\"\n"
	"\t\techo \". '$ENVF'\"\n"
	"\t\techo \"while :; do\"\n"
	"\t\techo \"\t$(as_user) /bin/sh '$STATE/$U.main' </dev/null &\"\n"
	"\t\techo \"\techo \\$! >'$STATE/$U.pid'\"\n"
	"\t\techo \"\twait \\$!\"\n"
	"\t\techo \"\trc=\\$?\"\n"
	"\t\techo \"\techo \\$rc >'$STATE/$U.status'\"\n"
	"\t\techo \"\techo \\\"\\$(date '+%b %d %H:%M:%S') systemctl: $U: main process exited, code=\\$rc\\\"\"\n"
	"\t\tcase \"$RESTART\" in\n"
	"\t\talways) ;;\n"
	"\t\ton-failure) echo \"\t[ \\$rc != 0 ] || break\" ;;\n"
	"\t\ton-abnormal) echo \"\t[ \\$rc -gt 128 ] || break\" ;;\n"
	"\t\t*) echo \"\tbreak\" ;;\n"
	"\t\tesac\n"
	"\t\techo \"\tsleep $RSEC\"\n"
	"\t\techo \"done\"\n"
	"\t} >\"$STATE/$U.run\"\n"
	"\tnote \"Started $U${DESC:+ - $DESC}.\"\n"
	"\tsetsid /bin/sh \"$STATE/$U.run\" </dev/null >>\"$LOGS/$U.log\" 2>&1 &\n"
	"\ti=0\n"
	"\twhile [ ! -s \"$STATE/$U.pid\" ] && [ $i -lt 50 ]; do\n"
	"\t\tsleep 0.1\n"
	"\t\ti=$((i + 1))\n"
	"\tdone\n"
	"\trun_list \"$POST\" post\n"
	"\treturn 0\n"
	"}\n"
	"\n"
	"do_stop() {\n"
	"\tU=$1\n"
	"\tload \"$U\" || { warn \"Failed to stop $U: Unit $U not loaded.\"; return 5; }\n"
	"\tmain=$(cat \"$STATE/$U.pid\" 2>/dev/null)\n"
	"\tENVTEXT=\"${ENVTEXT}export MAINPID=$main$NL\"\n"
	"\twrite_env || return 1\n"
	"\tif [ \"$(state \"$U\")\" = active ] && [ -n \"$STOP\" ]; then\n"
	"\t\trun_list \"$STOP\" stop\n"
	"\tfi\n"
	"\tif sup_alive; then\n"
	"\t\ts=$(cat \"$STATE/$U.sup\")\n"
	"\t\tkill -s TERM -- \"-$s\" 2>/dev/null\n"
	"\t\ti=0\n"
	"\t\twhile kill -0 -- \"-$s\" 2>/dev/null && [ $i -lt 100 ]; do\n"
	"\t\t\tsleep 0.1\n"
	"\t\t\ti=$((i + 1))\n"
	"\t\tdone\n"
	"\t\tkill -s KILL -- \"-$s\" 2>/dev/null\n"
	"\telif [ -f \"$STATE/$U.forking\" ] && [ -n \"$main\" ]; then\n"
	"\t\tkill -s TERM \"$main\" 2>/dev/null\n"
	"\tfi\n"
	"\trm -f \"$STATE/$U.oneshot\" \"$STATE/$U.forking\" \"$STATE/$U.pid\" \"$STATE/$U.sup\"\n"
	"\techo stopped >\"$STATE/$U.status\"\n"
	"\trun_list \"$STOPPOST\" stoppost\n"
	"\tnote \"Stopped $U${DESC:+ - $DESC}.\"\n"
	"\treturn 0\n"
	"}\n"
	"\n"
	"do_status() {\n"
	"\tU=$1\n"
	"\tif ! load \"$U\"; then\n"
	"\t\twarn \"Unit $U could not be found.\"\n"
	"\t\treturn 4\n"
	"\tfi\n"
	"\tst=$(state \"$U\")\n"
	"\ten=disabled\n"
	"\t[ -f \"$ENABLED/$U\" ] && en=enabled\n"
	"\techo \"* $U${DESC:+ - $DESC}\"\n"
	"\techo \"     Loaded: loaded ($F; $en)\"\n"
	"\tcase \"$st\" in\n"
	"\tactive) echo \"     Active: active (running)\" ;;\n"
	"\tfailed) echo \"     Active: failed (Result: exit-code $(cat \"$STATE/$U.status\" 2>/dev/null))\" ;;\n"
	"\t*) echo \"     Active: inactive (dead)\" ;;\n"
	"\tesac\n"
	"\tp=$(cat \"$STATE/$U.pid\" 2>/dev/null)\n"
	"\t[ \"$st\" = active ] && [ -n \"$p\" ] && echo \"   Main PID: $p\"\n"
	"\techo\n"
	"\t[ -f \"$LOGS/$U.log\" ] && tail -n 10 \"$LOGS/$U.log\"\n"
	"\t[ \"$st\" = active ] && return 0\n"
	"\treturn 3\n"
	"}\n"
	"\n"
	"need_root() {\n"
	"\tif [ \"$(id -u)\" != 0 ]; then\n"
	"\t\twarn \"Failed to $1 $2: Access denied\"\n"
	"\t\texit 1\n"
	"\tfi\n"
	"}\n"
	"\n"
	"boot() {\n"
	"\t[ -d \"$ENABLED\" ] || return 0\n"
	"\tfor f in \"$ENABLED\"/*; do\n"
	"\t\t[ -e \"$f\" ] || continue\n"
	"\t\tdo_start \"${f##*/}\" || warn \"systemctl: $U failed to start at boot\"\n"
	"\tdone\n"
	"}\n"
	"\n"
	"VERB=\"\"\n"
	"NOW=0\n"
	"UNITS=\"\"\n"
	"for a in \"$@\"; do\n"
	"\tcase \"$a\" in\n"
	"\t-q | --quiet) QUIET=1 ;;\n"
	"\t--now) NOW=1 ;;\n"
	"\t--boot) VERB=boot ;;\n"
	"\t-*) ;;\n"
	"\t*)\n"
	"\t\tif [ -z \"$VERB\" ]; then VERB=$a; else UNITS=\"$UNITS $a\"; fi ;;\n"
	"\tesac\n"
	"done\n"
	"\n"
	"rc=0\n"
	"case \"$VERB\" in\n"
	"boot) boot; exit 0 ;;\n"
	"daemon-reload | daemon-reexec) exit 0 ;;\n"
	"\"\" | list-units)\n"
	"\t[ -d \"$STATE\" ] || exit 0\n"
	"\tfor f in \"$STATE\"/*.env; do\n"
	"\t\t[ -e \"$f\" ] || continue\n"
	"\t\tu=${f##*/}\n"
	"\t\tu=${u%.env}\n"
	"\t\tprintf '%-40s %s\\n' \"$u\" \"$(state \"$u\")\"\n"
	"\tdone\n"
	"\texit 0 ;;\n"
	"list-unit-files)\n"
	"\tfor d in $UNITDIRS; do\n"
	"\t\tfor f in \"$d\"/*.service; do\n"
	"\t\t\t[ -f \"$f\" ] || continue\n"
	"\t\t\tu=${f##*/}\n"
	"\t\t\te=disabled\n"
	"\t\t\t[ -f \"$ENABLED/$u\" ] && e=enabled\n"
	"\t\t\tprintf '%-40s %s\\n' \"$u\" \"$e\"\n"
	"\t\tdone\n"
	"\tdone\n"
	"\texit 0 ;;\n"
	"start | stop | restart | try-restart | reload | reload-or-restart | \\\n"
	"\tstatus | is-active | is-failed | is-enabled | enable | disable | cat | kill | reset-failed) ;;\n"
	"*)\n"
	"\twarn \"systemctl (Outrigger sandbox VM): '$VERB' is not supported\"\n"
	"\texit 1 ;;\n"
	"esac\n"
	"[ -n \"$UNITS\" ] || { warn \"Too few arguments.\"; exit 1; }\n"
	"\n"
	"for n in $UNITS; do\n"
	"\tU=$(unit_name \"$n\")\n"
	"\tif [ -z \"$U\" ]; then\n"
	"\t\twarn \"systemctl (Outrigger sandbox VM): only .service units are supported: $n\"\n"
	"\t\trc=1\n"
	"\t\tcontinue\n"
	"\tfi\n"
	"\tcase \"$VERB\" in\n"
	"\tstart) need_root start \"$U\"; do_start \"$U\" || rc=1 ;;\n"
	"\tstop) need_root stop \"$U\"; do_stop \"$U\" || rc=1 ;;\n"
	"\trestart | reload-or-restart)\n"
	"\t\tneed_root restart \"$U\"\n"
	"\t\t[ \"$(state \"$U\")\" = active ] && do_stop \"$U\"\n"
	"\t\tdo_start \"$U\" || rc=1 ;;\n"
	"\ttry-restart)\n"
	"\t\tneed_root restart \"$U\"\n"
	"\t\tif [ \"$(state \"$U\")\" = active ]; then do_stop \"$U\"; do_start \"$U\" || rc=1; fi ;;\n"
	"\treload)\n"
	"\t\tneed_root reload \"$U\"\n"
	"\t\tload \"$U\" || { warn \"Failed to reload $U: Unit $U not found.\"; rc=1; continue; }\n"
	"\t\tif [ -z \"$RELOAD\" ]; then\n"
	"\t\t\twarn \"Failed to reload $U: Job type reload is not applicable for unit $U.\"\n"
	"\t\t\trc=1\n"
	"\t\t\tcontinue\n"
	"\t\tfi\n"
	"\t\tENVTEXT=\"${ENVTEXT}export MAINPID=$(cat \"$STATE/$U.pid\" 2>/dev/null)$NL\"\n"
	"\t\twrite_env || { rc=1; continue; }\n"
	"\t\trun_list \"$RELOAD$NL\" reload || rc=1 ;;\n"
	"\tstatus) do_status \"$U\"; r=$?; [ $r = 0 ] || rc=$r ;;\n"
	"\tis-active)\n"
	"\t\ts=$(state \"$U\")\n"
	"\t\tsay \"$s\"\n"
	"\t\t[ \"$s\" = active ] || rc=3 ;;\n"
	"\tis-failed)\n"
	"\t\ts=$(state \"$U\")\n"
	"\t\tsay \"$s\"\n"
	"\t\t[ \"$s\" = failed ] || rc=1 ;;\n"
	"\tis-enabled)\n"
	"\t\tif [ -f \"$ENABLED/$U\" ]; then say enabled; else say disabled; rc=1; fi ;;\n"
	"\tenable)\n"
	"\t\tneed_root enable \"$U\"\n"
	"\t\tf=$(unit_file \"$U\") || { warn \"Failed to enable unit: Unit file $U does not exist.\"; rc=1; continue; }\n"
	"\t\tmkdir -p \"$ENABLED\" /etc/systemd/system/multi-user.target.wants\n"
	"\t\ttouch \"$ENABLED/$U\"\n"
	"\t\tln -sf \"$f\" \"/etc/systemd/system/multi-user.target.wants/$U\"\n"
	"\t\tsay \"Created symlink /etc/systemd/system/multi-user.target.wants/$U -> $f.\"\n"
	"\t\t[ \"$NOW\" = 1 ] && { do_start \"$U\" || rc=1; } ;;\n"
	"\tdisable)\n"
	"\t\tneed_root disable \"$U\"\n"
	"\t\trm -f \"$ENABLED/$U\" \"/etc/systemd/system/multi-user.target.wants/$U\"\n"
	"\t\tsay \"Removed /etc/systemd/system/multi-user.target.wants/$U.\"\n"
	"\t\t[ \"$NOW\" = 1 ] && do_stop \"$U\" ;;\n"
	"\tcat)\n"
	"\t\tf=$(unit_file \"$U\") || { warn \"No files found for $U.\"; rc=1; continue; }\n"
	"\t\techo \"# $f\"\n"
	"\t\tcat \"$f\" ;;\n"
	"\tkill)\n"
	"\t\tneed_root kill \"$U\"\n"
	"\t\tif [ \"$(state \"$U\")\" = active ] && [ -s \"$STATE/$U.pid\" ]; then\n"
	"\t\t\tkill -s TERM \"$(cat \"$STATE/$U.pid\")\" || rc=1\n"
	"\t\tfi ;;\n"
	"\treset-failed)\n"
	"\t\t[ \"$(state \"$U\")\" = failed ] && echo stopped >\"$STATE/$U.status\" ;;\n"
	"\tesac\n"
	"done\n"
	"exit $rc\n";

static const char vm_shim_journalctl[] =
	"#!/bin/sh\n"
	"# journalctl for an Outrigger sandbox VM (rewritten by vm-init at every\n"
	"# boot): prints what the units started by the systemctl shim wrote, from\n"
	"# /var/log/systemctl-shim/NAME.log.  Understands -u/--unit NAME (several\n"
	"# allowed), -n/--lines N, -f/--follow; other options are accepted and\n"
	"# ignored.  Lines carry no journal metadata (no timestamps, PIDs or\n"
	"# priorities) except the start/stop lines that systemctl writes.\n"
	"LOGS=/var/log/systemctl-shim\n"
	"units=\"\" lines=\"\" follow=0\n"
	"while [ $# -gt 0 ]; do\n"
	"\tcase \"$1\" in\n"
	"\t-u | --unit) shift; units=\"$units ${1:-}\" ;;\n"
	"\t-u*) units=\"$units ${1#-u}\" ;;\n"
	"\t--unit=*) units=\"$units ${1#--unit=}\" ;;\n"
	"\t-n | --lines) shift; lines=${1:-10} ;;\n"
	"\t-n*) lines=${1#-n} ;;\n"
	"\t--lines=*) lines=${1#--lines=} ;;\n"
	"\t-f | --follow) follow=1 ;;\n"
	"\t-e | --pager-end) lines=${lines:-1000} ;;\n"
	"\tesac\n"
	"\t[ $# -gt 0 ] && shift\n"
	"done\n"
	"files=\"\"\n"
	"if [ -z \"$units\" ]; then\n"
	"\tfor f in \"$LOGS\"/*.log; do [ -f \"$f\" ] && files=\"$files $f\"; done\n"
	"else\n"
	"\tfor u in $units; do\n"
	"\t\tcase \"$u\" in *.service) ;; *) u=$u.service ;; esac\n"
	"\t\t[ -f \"$LOGS/$u.log\" ] && files=\"$files $LOGS/$u.log\"\n"
	"\tdone\n"
	"fi\n"
	"if [ -z \"$files\" ]; then\n"
	"\techo \"-- No entries --\"\n"
	"\texit 0\n"
	"fi\n"
	"# shellcheck disable=SC2086\n"
	"if [ \"$follow\" = 1 ]; then\n"
	"\texec tail -n \"${lines:-10}\" -F $files\n"
	"elif [ -n \"$lines\" ]; then\n"
	"\texec tail -q -n \"$lines\" $files\n"
	"else\n"
	"\texec cat $files\n"
	"fi\n";

static const char vm_shim_service[] =
	"#!/bin/sh\n"
	"# service(8) for an Outrigger sandbox VM (rewritten by vm-init at every\n"
	"# boot): `service NAME ACTION` runs `systemctl ACTION NAME` when a unit file\n"
	"# exists, else /etc/init.d/NAME ACTION.\n"
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
	"export PATH\n"
	"if [ \"${1:-}\" = --status-all ]; then\n"
	"\texec systemctl list-units\n"
	"fi\n"
	"if [ $# -lt 2 ]; then\n"
	"\techo \"Usage: service < option > | --status-all | [ service_name [ command | --full-restart ] ]\" >&2\n"
	"\texit 1\n"
	"fi\n"
	"name=${1%.service}\n"
	"action=$2\n"
	"shift 2\n"
	"for d in /etc/systemd/system /run/systemd/system /lib/systemd/system /usr/lib/systemd/system; do\n"
	"\tif [ -f \"$d/$name.service\" ]; then\n"
	"\t\t[ \"$action\" = --full-restart ] && action=restart\n"
	"\t\texec systemctl \"$action\" \"$name.service\"\n"
	"\tfi\n"
	"done\n"
	"if [ -x \"/etc/init.d/$name\" ]; then\n"
	"\texec \"/etc/init.d/$name\" \"$action\" \"$@\"\n"
	"fi\n"
	"echo \"$name: unrecognized service\" >&2\n"
	"exit 1\n";

static const char vm_shim_docker[] =
	"#!/bin/sh\n"
	"# docker for an Outrigger sandbox VM: a stand-in, not Docker (the VM has no\n"
	"# container runtime).  vm-init rewrites this file at every boot.  It\n"
	"# supports what a bootstrap script needs to run Online Boutique's\n"
	"# productcatalogservice on a VM, and refuses the rest with a message:\n"
	"#   docker run [-d] [--name N] [--restart R] [-e K=V]... -p HOSTPORT:PORT IMAGE\n"
	"#   docker rm [-f] NAME|ID...\n"
	"#   docker ps [-a] [-q]\n"
	"#   docker --version | docker version\n"
	"# An image whose name contains \"productcatalogservice\" runs the sandbox's\n"
	"# catalog server on this VM's address at HOSTPORT.  It answers HTTP\n"
	"# `GET /products` with the catalog (the real service speaks gRPC: a gap\n"
	"# docs/sandbox.md lists).  Other images are refused.  --restart is recorded\n"
	"# but containers do not come back after the VM restarts.  Like Docker, it\n"
	"# needs root (sudo).\n"
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
	"export PATH\n"
	"STATE=/run/docker-shim\n"
	"LOGS=/var/log/docker-shim\n"
	"LIB=/usr/local/lib/outrigger-vm\n"
	"\n"
	"err() { echo \"$*\" >&2; }\n"
	"alive() { [ -n \"$1\" ] && kill -0 \"$1\" 2>/dev/null; }\n"
	"\n"
	"# find NAME|ID: the container's state directory name, or nothing.\n"
	"find_c() {\n"
	"\t[ -d \"$STATE\" ] || return 1\n"
	"\tfor d in \"$STATE\"/*/; do\n"
	"\t\t[ -d \"$d\" ] || continue\n"
	"\t\tn=$(basename \"$d\")\n"
	"\t\tid=$(cat \"$d/id\" 2>/dev/null)\n"
	"\t\tcase \"$1\" in\n"
	"\t\t\"$n\" | \"$id\") echo \"$n\"; return 0 ;;\n"
	"\t\tesac\n"
	"\t\tcase \"$id\" in\n"
	"\t\t\"$1\"*) [ ${#1} -ge 4 ] && { echo \"$n\"; return 0; } ;;\n"
	"\t\tesac\n"
	"\tdone\n"
	"\treturn 1\n"
	"}\n"
	"\n"
	"case \"${1:-}\" in\n"
	"--version | -v)\n"
	"\techo \"Docker version 24.0.0-outrigger-sandbox, build stand-in\"\n"
	"\texit 0\n"
	"\t;;\n"
	"version)\n"
	"\techo \"Client: Outrigger sandbox docker stand-in\"\n"
	"\techo \" Version: 24.0.0-outrigger-sandbox\"\n"
	"\texit 0\n"
	"\t;;\n"
	"run | rm | ps) ;;\n"
	"\"\")\n"
	"\terr \"Usage:  docker COMMAND (this VM's stand-in supports run, rm, ps)\"\n"
	"\texit 1\n"
	"\t;;\n"
	"*)\n"
	"\terr \"docker: '$1' is not supported by this Outrigger sandbox VM's docker stand-in (run, rm, ps)\"\n"
	"\texit 1\n"
	"\t;;\n"
	"esac\n"
	"if [ \"$(id -u)\" != 0 ]; then\n"
	"\terr \"permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: connect: permission denied\"\n"
	"\texit 1\n"
	"fi\n"
	"mkdir -p \"$STATE\" \"$LOGS\"\n"
	"cmd=$1\n"
	"shift\n"
	"\n"
	"if [ \"$cmd\" = ps ]; then\n"
	"\tall=0 quiet=0\n"
	"\tfor a in \"$@\"; do\n"
	"\t\tcase \"$a\" in\n"
	"\t\t-a | --all) all=1 ;;\n"
	"\t\t-q | --quiet) quiet=1 ;;\n"
	"\t\t-aq | -qa) all=1; quiet=1 ;;\n"
	"\t\t*) err \"unknown flag: $a\"; exit 125 ;;\n"
	"\t\tesac\n"
	"\tdone\n"
	"\t[ \"$quiet\" = 1 ] || printf '%-14s %-60s %-26s %-28s %s\\n' \"CONTAINER ID\" IMAGE STATUS PORTS NAMES\n"
	"\tfor d in \"$STATE\"/*/; do\n"
	"\t\t[ -d \"$d\" ] || continue\n"
	"\t\tn=$(basename \"$d\")\n"
	"\t\tif alive \"$(cat \"$d/pid\" 2>/dev/null)\"; then st=\"Up\"; else st=\"Exited\"; fi\n"
	"\t\t[ \"$st\" = Up ] || [ \"$all\" = 1 ] || continue\n"
	"\t\tid=$(cut -c1-12 \"$d/id\")\n"
	"\t\tif [ \"$quiet\" = 1 ]; then\n"
	"\t\t\techo \"$id\"\n"
	"\t\telse\n"
	"\t\t\tprintf '%-14s %-60s %-26s %-28s %s\\n' \"$id\" \"$(cat \"$d/image\")\" \"$st\" \"$(cat \"$d/ports\")\" \"$n\"\n"
	"\t\tfi\n"
	"\tdone\n"
	"\texit 0\n"
	"fi\n"
	"\n"
	"if [ \"$cmd\" = rm ]; then\n"
	"\tforce=0 rc=0\n"
	"\tfor a in \"$@\"; do\n"
	"\t\tcase \"$a\" in\n"
	"\t\t-f | --force) force=1 ;;\n"
	"\t\t-*) err \"unknown flag: $a\"; exit 125 ;;\n"
	"\t\tesac\n"
	"\tdone\n"
	"\tfor a in \"$@\"; do\n"
	"\t\tcase \"$a\" in -*) continue ;; esac\n"
	"\t\tn=$(find_c \"$a\") || { err \"Error response from daemon: No such container: $a\"; rc=1; continue; }\n"
	"\t\tpid=$(cat \"$STATE/$n/pid\" 2>/dev/null)\n"
	"\t\tif alive \"$pid\"; then\n"
	"\t\t\tif [ \"$force\" = 0 ]; then\n"
	"\t\t\t\terr \"Error response from daemon: You cannot remove a running container $(cat \"$STATE/$n/id\"). Stop the container before attempting removal or force remove\"\n"
	"\t\t\t\trc=1\n"
	"\t\t\t\tcontinue\n"
	"\t\t\tfi\n"
	"\t\t\tkill -TERM \"$pid\" 2>/dev/null\n"
	"\t\t\ti=0\n"
	"\t\t\twhile alive \"$pid\" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done\n"
	"\t\t\talive \"$pid\" && kill -KILL \"$pid\" 2>/dev/null\n"
	"\t\tfi\n"
	"\t\trm -rf \"${STATE:?}/$n\"\n"
	"\t\techo \"$a\"\n"
	"\tdone\n"
	"\texit $rc\n"
	"fi\n"
	"\n"
	"# run\n"
	"detach=0 name= restart=no ports= image= env_port=\n"
	"while [ $# -gt 0 ]; do\n"
	"\tcase \"$1\" in\n"
	"\t-d | --detach) detach=1; shift ;;\n"
	"\t--rm | -i | -t | -it | --init) shift ;;\n"
	"\t--name) name=$2; shift 2 ;;\n"
	"\t--name=*) name=${1#--name=}; shift ;;\n"
	"\t--restart) restart=$2; shift 2 ;;\n"
	"\t--restart=*) restart=${1#--restart=}; shift ;;\n"
	"\t-e | --env)\n"
	"\t\tcase \"$2\" in PORT=*) env_port=${2#PORT=} ;; esac\n"
	"\t\tshift 2\n"
	"\t\t;;\n"
	"\t--env=*) case \"${1#--env=}\" in PORT=*) env_port=${1#--env=PORT=} ;; esac; shift ;;\n"
	"\t-p | --publish) ports=$2; shift 2 ;;\n"
	"\t--publish=*) ports=${1#--publish=}; shift ;;\n"
	"\t-*) err \"docker: this VM's stand-in does not support the flag $1\"; exit 125 ;;\n"
	"\t*) image=$1; shift; break ;;\n"
	"\tesac\n"
	"done\n"
	"[ -n \"$image\" ] || { err \"\\\"docker run\\\" requires at least 1 argument.\"; exit 125; }\n"
	"[ $# -eq 0 ] || { err \"docker: this VM's stand-in runs images with their own command only\"; exit 125; }\n"
	"case \"$image\" in\n"
	"*productcatalogservice*) ;;\n"
	"*)\n"
	"\terr \"docker: Error response from daemon: the Outrigger sandbox VM runs only productcatalogservice images, not $image\"\n"
	"\texit 125\n"
	"\t;;\n"
	"esac\n"
	"case \"$ports\" in\n"
	"[0-9]*:[0-9]*) hostport=${ports%%:*} ;;\n"
	"*) err \"docker: this VM's stand-in needs -p HOSTPORT:PORT (got '$ports')\"; exit 125 ;;\n"
	"esac\n"
	"case \"$restart\" in\n"
	"no | always | unless-stopped | on-failure | on-failure:*) ;;\n"
	"*) err \"docker: invalid restart policy '$restart'\"; exit 125 ;;\n"
	"esac\n"
	"[ -n \"$name\" ] || name=sandbox_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \\n')\n"
	"if n=$(find_c \"$name\"); then\n"
	"\terr \"docker: Error response from daemon: Conflict. The container name \\\"/$name\\\" is already in use by container \\\"$(cat \"$STATE/$n/id\")\\\". You have to remove (or rename) that container to be able to reuse that name.\"\n"
	"\texit 125\n"
	"fi\n"
	"addr=$(cat \"$LIB/address\")\n"
	"[ -r \"$LIB/products.json\" ] || { err \"docker: this VM has no catalog ($LIB/products.json)\"; exit 125; }\n"
	"id=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \\n')\n"
	"mkdir -p \"$STATE/$name\"\n"
	"echo \"$id\" >\"$STATE/$name/id\"\n"
	"echo \"$image\" >\"$STATE/$name/image\"\n"
	"echo \"$addr:$hostport->${env_port:-${ports#*:}}/tcp\" >\"$STATE/$name/ports\"\n"
	"echo \"$restart\" >\"$STATE/$name/restart\"\n"
	"set -- \"$LIB/outrigger\" sandbox-catalog --listen \"$addr:$hostport\" --catalog \"$LIB/products.json\"\n"
	"if [ \"$detach\" = 0 ]; then\n"
	"\techo $$ >\"$STATE/$name/pid\"\n"
	"\texec \"$@\"\n"
	"fi\n"
	"setsid \"$@\" </dev/null >>\"$LOGS/$name.log\" 2>&1 &\n"
	"pid=$!\n"
	"echo \"$pid\" >\"$STATE/$name/pid\"\n"
	"i=0\n"
	"while [ $i -lt 50 ]; do\n"
	"\tgrep -q listening \"$LOGS/$name.log\" 2>/dev/null && break\n"
	"\talive \"$pid\" || break\n"
	"\tsleep 0.1\n"
	"\ti=$((i + 1))\n"
	"done\n"
	"if ! alive \"$pid\"; then\n"
	"\terr \"docker: Error response from daemon: container $name exited at start: $(tail -n 3 \"$LOGS/$name.log\")\"\n"
	"\texit 125\n"
	"fi\n"
	"echo \"$id\"\n";
/* (END SHIMS) */

/* ------------------------------------------------------------------ */
/* The caller's side */

/* A VM's directory may not be under a directory that the VM mounts its own
 * view over: overlayfs refuses an upper layer inside its lower layer, and
 * the VM could not reach its own state.  dir is a realpath. */
static or_rc
vm_check_placement(const char *dir, struct or_err *err)
{
	static const char *const bad[] = {"/etc", "/var", "/root", "/home",
					  "/usr", "/opt", "/proc", "/sys",
					  "/dev"};
	size_t i, n;

	if (strcmp(dir, "/") == 0)
		return or_fail(err, OR_E_INVALID, NULL, "dir",
			       "a VM directory cannot be /");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = strlen(bad[i]);
		if (strncmp(dir, bad[i], n) == 0 &&
		    (dir[n] == '/' || dir[n] == '\0'))
			return or_fail(err, OR_E_INVALID, NULL, "dir",
				       "a VM directory cannot be under %s: "
				       "the VM mounts its own view over it",
				       bad[i]);
	}
	if (strpbrk(dir, ",:\n") != NULL)
		return or_fail(err, OR_E_INVALID, NULL, "dir",
			       "a VM directory path cannot hold ',', ':' or "
			       "a newline (overlayfs options)");
	return OR_OK;
}

/* Where dir is or would be once made: the realpath of its deepest existing
 * ancestor plus the rest.  Checked before anything is made, so that a bad
 * dir cannot leave a directory under /etc.  The rest may not hold "." or
 * ".." (they would resolve differently once made). */
static or_rc
vm_resolve(const char *dir, char *out, size_t size, struct or_err *err)
{
	char p[PATH_MAX], real[PATH_MAX], *slash;
	const char *rest = "";
	int n;

	if (strlen(dir) >= sizeof(p))
		return or_fail(err, OR_E_INVALID, NULL, "dir",
			       "VM directory path too long");
	memcpy(p, dir, strlen(dir) + 1);
	while (realpath(p, real) == NULL) {
		if (errno != ENOENT || strcmp(p, ".") == 0 ||
		    strcmp(p, "/") == 0)
			return or_fail(err, OR_E_IO, NULL, "dir",
				       "realpath %s: %s", p, strerror(errno));
		slash = strrchr(p, '/');
		while (slash != NULL && slash > p && slash[1] == '\0') {
			*slash = '\0'; /* trailing slashes */
			slash = strrchr(p, '/');
		}
		if (slash == NULL) {
			rest = dir;
			memcpy(p, ".", 2);
			continue;
		}
		rest = dir + (slash - p) + 1;
		if (slash == p)
			memcpy(p, "/", 2);
		else
			*slash = '\0';
	}
	if (strstr(rest, "/./") || strstr(rest, "/../") ||
	    strncmp(rest, "./", 2) == 0 || strncmp(rest, "../", 3) == 0 ||
	    strcmp(rest, ".") == 0 || strcmp(rest, "..") == 0 ||
	    (strlen(rest) >= 2 && strcmp(rest + strlen(rest) - 2, "/.") == 0) ||
	    (strlen(rest) >= 3 && strcmp(rest + strlen(rest) - 3, "/..") == 0))
		return or_fail(err, OR_E_INVALID, NULL, "dir",
			       "the part of the VM directory still to be "
			       "made cannot hold . or ..");
	n = snprintf(out, size, "%s%s%s", real,
		     rest[0] && strcmp(real, "/") != 0 ? "/" : "", rest);
	if (n < 0 || (size_t)n >= size)
		return or_fail(err, OR_E_INVALID, NULL, "dir",
			       "VM directory path too long");
	return OR_OK;
}

static or_rc
vm_check_cfg(const struct vm_cfg *cfg, struct or_err *err)
{
	if (cfg == NULL || cfg->dir == NULL || cfg->dir[0] == '\0')
		return or_fail(err, OR_E_INVALID, NULL, "dir",
			       "a VM needs a directory");
	if (!vm_valid_name(cfg->name))
		return or_fail(err, OR_E_INVALID, NULL, "name",
			       "VM name must match [a-z]([-a-z0-9]{0,61}"
			       "[a-z0-9])?");
	if (!vm_valid_hostname(cfg->hostname ? cfg->hostname : cfg->name))
		return or_fail(err, OR_E_INVALID, NULL, "hostname",
			       "hostname must be dot-separated labels of "
			       "letters, digits and '-', at most 64 bytes");
	if (!vm_valid_address(cfg->address))
		return or_fail(err, OR_E_INVALID, NULL, "address",
			       "a VM listens on an address in 127.0.0.0/8");
	if (cfg->port < 0 || cfg->port > 65535)
		return or_fail(err, OR_E_INVALID, NULL, "port",
			       "port must be 1..65535 (0 means 22)");
	return OR_OK;
}

/* A TCP connect to addr:port within timeout_ms. */
static int
vm_connect_ok(const char *addr, int port, int timeout_ms)
{
	struct sockaddr_in sa;
	struct pollfd p;
	socklen_t len = sizeof(int);
	int fd, r, soerr = 0, ok = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		return 0;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (r == 0) {
		ok = 1;
		goto out;
	}
	if (errno != EINPROGRESS)
		goto out;
	p.fd = fd;
	p.events = POLLOUT;
	p.revents = 0;
	if (poll(&p, 1, timeout_ms) == 1 &&
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 &&
	    soerr == 0)
		ok = 1;
out:
	close(fd);
	return ok;
}

/* Whether sshd will be able to listen on addr:port and be reached there: a
 * trial bind (with SO_REUSEADDR, as sshd does) and connect.  Another VM
 * there would answer vm_ready in this one's stead; in a fresh network
 * namespace lo is down, and binding works but nothing connects. */
static or_rc
vm_check_address(const char *addr, int port, struct or_err *err)
{
	struct sockaddr_in sa;
	int fd, one = 1, e;
	or_rc rc = OR_OK;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		return or_fail(err, OR_E_INVALID, NULL, "address",
			       "bad address %s", addr);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return or_fail(err, OR_E_IO, NULL, NULL, "socket: %s",
			       strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = errno;
		if (e == EADDRINUSE)
			rc = or_fail(err, OR_E_CONFLICT, NULL, "address",
				     "%s:%d is in use", addr, port);
		else
			rc = or_fail(err, OR_E_IO, NULL, "address",
				     "cannot listen on %s:%d: %s%s", addr,
				     port, strerror(e),
				     e == EADDRNOTAVAIL ? " (is lo up?)" : "");
	} else if (listen(fd, 1) < 0 || !vm_connect_ok(addr, port, 1000)) {
		rc = or_fail(err, OR_E_IO, NULL, "address",
			     "%s:%d cannot be reached (is lo up?)", addr,
			     port);
	}
	close(fd);
	return rc;
}

/* Between fork and exec of a multi-threaded caller: async-signal-safe calls
 * only (POSIX.1-2008 list: sigprocmask, dup2, fcntl, execv, _exit). */
static void
vm_child_exec(int ctl, int nullfd, int logfd, const char *path,
	      char *const argv[])
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0 ||
	    dup2(ctl, VM_CTL_FD) < 0)
		_exit(127);
	execv(path, argv);
	_exit(127);
}

/* Fork and exec the helper with argv; *ctl is our end of its control
 * socket.  logfd becomes its stdout and stderr. */
static or_rc
vm_spawn(const char *helper, char *const argv[], int logfd, pid_t *pid,
	 int *ctl, struct or_err *err)
{
	int sv[2] = {-1, -1}, nullfd = -1;
	or_rc rc = OR_OK;

	*pid = -1;
	*ctl = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		rc = or_fail(err, OR_E_IO, NULL, NULL, "socketpair: %s",
			     strerror(errno));
		goto out;
	}
	sv[0] = vm_fd_high(sv[0]);
	sv[1] = vm_fd_high(sv[1]);
	nullfd = vm_fd_high(open("/dev/null", O_RDWR | O_CLOEXEC));
	logfd = vm_fd_high(fcntl(logfd, F_DUPFD_CLOEXEC, VM_CTL_FD + 1));
	if (sv[0] < 0 || sv[1] < 0 || nullfd < 0 || logfd < 0) {
		rc = or_fail(err, OR_E_IO, NULL, NULL, "descriptors: %s",
			     strerror(errno));
		goto out;
	}
	*pid = fork();
	if (*pid < 0) {
		rc = or_fail(err, OR_E_IO, NULL, NULL, "fork: %s",
			     strerror(errno));
		goto out;
	}
	if (*pid == 0)
		vm_child_exec(sv[1], nullfd, logfd, helper, argv);
	*ctl = sv[0];
	sv[0] = -1;
out:
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	if (nullfd >= 0)
		close(nullfd);
	if (logfd >= 0)
		close(logfd);
	return rc;
}

/* Wait for our child pid for up to timeout_ms, then SIGKILL it and wait. */
static void
vm_reap(pid_t pid, int timeout_ms)
{
	long long deadline = vm_now_ms() + timeout_ms;
	int st;
	pid_t r;

	if (pid <= 0)
		return;
	for (;;) {
		r = waitpid(pid, &st, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			return;
		if (vm_now_ms() >= deadline)
			break;
		vm_sleep_ms(10);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
}

/* Turn the helper's "err ..." message into rc: "err unsupported: ..." and
 * "err conflict: ..." say which kind. */
static or_rc
vm_helper_error(const char *msg, const char *dir, struct or_err *err)
{
	const char *m = msg;

	if (strncmp(m, "err ", 4) == 0)
		m += 4;
	if (strncmp(m, "unsupported: ", 13) == 0)
		return or_fail(err, OR_E_IO, "vm_unsupported", NULL,
			       "VMs cannot run here: %s", m + 13);
	if (strncmp(m, "conflict: ", 10) == 0)
		return or_fail(err, OR_E_CONFLICT, NULL, "dir", "%s", m + 10);
	return or_fail(err, OR_E_IO, NULL, NULL, "VM boot failed: %s (see %s/"
		       "console.log)", m, dir);
}

static const char *
vm_helper_path(const char *helper)
{
	return helper != NULL ? helper : "/proc/self/exe";
}

/* Keep the console log bounded: at boot, a log over the limit becomes
 * console.log.1 (the previous .1 is dropped). */
static void
vm_rotate_console(const char *dir)
{
	char path[PATH_MAX], old[PATH_MAX];
	struct stat st;

	if (vm_join(path, sizeof(path), dir, "console.log") == 0 &&
	    vm_join(old, sizeof(old), dir, "console.log.1") == 0 &&
	    stat(path, &st) == 0 && st.st_size > VM_CONSOLE_MAX)
		rename(path, old);
}

or_rc
vm_start(const struct vm_cfg *cfg, struct vm **out, struct or_err *err)
{
	char real[PATH_MAX], path[PATH_MAX], port[16], msg[VM_MSG_MAX];
	char *argv[16];
	struct vm *vm = NULL;
	int logfd = -1, fd = -1, dfd = -1, lockfd = -1, argc = 0;
	long pid1;
	ssize_t n;
	or_rc rc;

	*out = NULL;
	rc = vm_check_cfg(cfg, err);
	if (rc != OR_OK)
		goto out;
	if (geteuid() != 0) {
		rc = or_fail(err, OR_E_IO, "vm_unsupported", NULL,
			     "VMs need root (unshare, mount, sshd on port 22)");
		goto out;
	}
	/* Where it will be, checked before it is made; and where it is,
	 * checked again once made (a symlink may have been raced in). */
	rc = vm_resolve(cfg->dir, real, sizeof(real), err);
	if (rc == OR_OK)
		rc = vm_check_placement(real, err);
	if (rc == OR_OK)
		rc = vm_check_address(cfg->address, cfg->port ? cfg->port : 22,
				      err);
	if (rc == OR_OK)
		rc = vm_mkdir_p(real, 0700, err);
	if (rc != OR_OK)
		goto out;
	if (realpath(cfg->dir, real) == NULL) {
		rc = or_fail(err, OR_E_IO, NULL, "dir", "realpath %s: %s",
			     cfg->dir, strerror(errno));
		goto out;
	}
	rc = vm_check_placement(real, err);
	if (rc != OR_OK)
		goto out;
	if (strlen(real) > PATH_MAX - 128) {
		rc = or_fail(err, OR_E_INVALID, NULL, "dir",
			     "VM directory path too long");
		goto out;
	}
	dfd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		rc = or_fail(err, OR_E_IO, NULL, "dir", "open %s: %s", real,
			     strerror(errno));
		goto out;
	}
	/* A running VM holds this lock (its helper takes it again): say so
	 * before its ssh-keys file is overwritten. */
	lockfd = openat(dfd, VM_LOCK,
			O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lockfd < 0) {
		rc = or_fail(err, OR_E_IO, NULL, "dir", "open %s/%s: %s", real,
			     VM_LOCK, strerror(errno));
		goto out;
	}
	if (flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
		rc = or_fail(err, OR_E_CONFLICT, NULL, "dir",
			     "VM directory %s is in use by a running VM",
			     real);
		goto out;
	}
	close(lockfd);
	lockfd = -1;
	rc = vm_write_str_at(dfd, VM_MARKER,
			     "An Outrigger sandbox VM's directory "
			     "(vm_destroy_dir removes only these).\n",
			     0600, err);
	if (rc == OR_OK)
		rc = vm_write_str_at(dfd, "ssh-keys",
				     cfg->ssh_keys ? cfg->ssh_keys : "", 0600,
				     err);
	if (rc == OR_OK && cfg->catalog != NULL) {
		struct buf cat;

		buf_init(&cat, VM_FILE_MAX);
		rc = vm_read_at(AT_FDCWD, cfg->catalog, &cat, err);
		if (rc == OR_OK)
			rc = vm_write_at(dfd, "catalog.json", buf_str(&cat), cat.len,
					 0644, 0, 0, err);
		buf_free(&cat);
	}
	if (rc != OR_OK)
		goto out;
	vm_rotate_console(real);
	vm_join(path, sizeof(path), real, "console.log");
	logfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0) {
		rc = or_fail(err, OR_E_IO, NULL, NULL, "open %s: %s", path,
			     strerror(errno));
		goto out;
	}

	vm = calloc(1, sizeof(*vm));
	if (vm == NULL) {
		rc = or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
		goto out;
	}
	pthread_mutex_init(&vm->lock, NULL);
	vm->helper = -1;
	vm->pid1 = -1;
	vm->pid1fd = -1;
	vm->ctl = -1;
	vm->port = cfg->port ? cfg->port : 22;
	vm->dir = strdup(real);
	vm->name = strdup(cfg->name);
	vm->address = strdup(cfg->address);
	if (vm->dir == NULL || vm->name == NULL || vm->address == NULL) {
		rc = or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
		goto out;
	}

	snprintf(port, sizeof(port), "%d", vm->port);
	argv[argc++] = "outrigger";
	argv[argc++] = "vm-init";
	argv[argc++] = "boot";
	argv[argc++] = "--dir";
	argv[argc++] = vm->dir;
	argv[argc++] = "--name";
	argv[argc++] = vm->name;
	argv[argc++] = "--hostname";
	argv[argc++] = (char *)(cfg->hostname ? cfg->hostname : cfg->name);
	argv[argc++] = "--address";
	argv[argc++] = vm->address;
	argv[argc++] = "--port";
	argv[argc++] = port;
	argv[argc] = NULL;
	rc = vm_spawn(vm_helper_path(cfg->helper), argv, logfd, &vm->helper,
		      &vm->ctl, err);
	if (rc != OR_OK)
		goto out;

	n = vm_msg_recv(vm->ctl, msg, sizeof(msg), &fd, VM_BOOT_TIMEOUT_MS);
	if (n < 0 && errno == ETIMEDOUT) {
		rc = or_fail(err, OR_E_TIMEOUT, NULL, NULL,
			     "VM %s did not boot within %d s (see %s/"
			     "console.log)", vm->name,
			     VM_BOOT_TIMEOUT_MS / 1000, vm->dir);
		goto out;
	}
	if (n <= 0) {
		rc = or_fail(err, OR_E_IO, NULL, NULL,
			     "vm-init of %s ended before booting (is `%s "
			     "vm-init` dispatched? see %s/console.log)",
			     vm->name, vm_helper_path(cfg->helper), vm->dir);
		goto out;
	}
	if (strncmp(msg, "ok ", 3) != 0 || fd < 0) {
		rc = vm_helper_error(msg, vm->dir, err);
		goto out;
	}
	pid1 = strtol(msg + 3, NULL, 10);
	if (pid1 <= 1) {
		rc = or_fail(err, OR_E_IO, NULL, NULL,
			     "vm-init sent a bad message: %s", msg);
		goto out;
	}
	vm->pid1 = (pid_t)pid1;
	vm->pid1fd = fd;
	fd = -1;
	*out = vm;
	vm = NULL;
out:
	if (vm != NULL) {
		if (vm->ctl >= 0)
			close(vm->ctl);
		vm->ctl = -1;
		vm_reap(vm->helper, VM_STOP_TIMEOUT_MS);
		vm->helper = -1;
		vm_free(vm);
	}
	if (fd >= 0)
		close(fd);
	if (lockfd >= 0)
		close(lockfd);
	if (dfd >= 0)
		close(dfd);
	if (logfd >= 0)
		close(logfd);
	return rc;
}

/* Whether the VM's init still lives.  Call with the lock held. */
static int
vm_alive_locked(struct vm *vm)
{
	struct pollfd p;

	if (vm->pid1fd < 0)
		return 0;
	p.fd = vm->pid1fd;
	p.events = POLLIN;
	p.revents = 0;
	/* A pidfd turns readable when its process has exited. */
	return poll(&p, 1, 0) == 0;
}

int
vm_running(struct vm *vm)
{
	int r;

	pthread_mutex_lock(&vm->lock);
	r = vm_alive_locked(vm);
	pthread_mutex_unlock(&vm->lock);
	return r;
}

pid_t
vm_init_pid(struct vm *vm)
{
	pid_t p;

	pthread_mutex_lock(&vm->lock);
	p = vm_alive_locked(vm) ? vm->pid1 : -1;
	pthread_mutex_unlock(&vm->lock);
	return p;
}

int
vm_ready(struct vm *vm)
{
	int alive;

	pthread_mutex_lock(&vm->lock);
	alive = vm_alive_locked(vm);
	pthread_mutex_unlock(&vm->lock);
	return alive && vm_connect_ok(vm->address, vm->port, 300);
}

or_rc
vm_wait_ready(struct vm *vm, int timeout_ms, struct or_err *err)
{
	long long deadline = vm_now_ms() + timeout_ms;

	for (;;) {
		if (vm_ready(vm))
			return OR_OK;
		if (!vm_running(vm))
			return or_fail(err, OR_E_IO, NULL, NULL,
				       "VM %s stopped (see %s/console.log)",
				       vm->name, vm->dir);
		if (vm_now_ms() >= deadline)
			return or_fail(err, OR_E_TIMEOUT, NULL, NULL,
				       "sshd of VM %s does not answer on "
				       "%s:%d (see %s/console.log)",
				       vm->name, vm->address, vm->port,
				       vm->dir);
		vm_sleep_ms(50);
	}
}

or_rc
vm_set_ssh_keys(struct vm *vm, const char *value, struct or_err *err)
{
	struct vm_ssh_key *keys = NULL;
	char msg[VM_MSG_MAX], path[PATH_MAX], req[32], *end;
	long long deadline;
	unsigned long got;
	size_t n;
	ssize_t r;
	or_rc rc;

	rc = vm_ssh_keys_parse(value, &keys, &n, NULL, err);
	free(keys);
	if (rc != OR_OK)
		return rc;
	pthread_mutex_lock(&vm->lock);
	/* The value is kept even when the VM is stopped: metadata outlives
	 * a stop, and the next boot applies it. */
	vm_join(path, sizeof(path), vm->dir, "ssh-keys");
	rc = vm_write_str_at(AT_FDCWD, path, value ? value : "", 0600, err);
	if (rc != OR_OK || !vm_alive_locked(vm) || vm->ctl < 0)
		goto out;
	snprintf(req, sizeof(req), "keys %u", ++vm->seq);
	if (vm_msg_send(vm->ctl, req, -1) < 0) {
		rc = or_fail(err, OR_E_IO, NULL, NULL,
			     "VM %s: vm-init is gone: %s", vm->name,
			     strerror(errno));
		goto out;
	}
	/* Answers are "ok SEQ" or "err SEQ message". */
	deadline = vm_now_ms() + VM_REPLY_TIMEOUT_MS;
	for (;;) {
		r = vm_msg_recv(vm->ctl, msg, sizeof(msg), NULL,
				(int)(deadline - vm_now_ms()));
		if (r <= 0) {
			rc = or_fail(err, r < 0 && errno == ETIMEDOUT
						  ? OR_E_TIMEOUT
						  : OR_E_IO,
				     NULL, NULL, "VM %s: no answer to the "
				     "ssh-keys update (see %s/console.log)",
				     vm->name, vm->dir);
			goto out;
		}
		end = strchr(msg, ' ');
		got = end ? strtoul(end + 1, &end, 10) : 0;
		if (got == vm->seq)
			break;
	}
	if (strncmp(msg, "ok ", 3) != 0)
		rc = or_fail(err, OR_E_IO, NULL, NULL, "VM %s: %s", vm->name,
			     *end == ' ' ? end + 1 : msg);
out:
	pthread_mutex_unlock(&vm->lock);
	return rc;
}

or_rc
vm_stop(struct vm *vm, struct or_err *err)
{
	struct pollfd p;
	or_rc rc = OR_OK;

	if (vm == NULL)
		return OR_OK;
	pthread_mutex_lock(&vm->lock);
	if (vm->pid1fd >= 0) {
		/* By the pidfd, not the number: the init may be long gone
		 * and its PID reused. */
		if (pidfd_send_signal(vm->pid1fd, SIGKILL, NULL, 0) < 0 &&
		    errno != ESRCH)
			rc = or_fail(err, OR_E_IO, NULL, NULL,
				     "VM %s: kill init: %s", vm->name,
				     strerror(errno));
		p.fd = vm->pid1fd;
		p.events = POLLIN;
		p.revents = 0;
		/* Readable once the init has exited, and an init exits only
		 * after every other process of its namespace is reaped. */
		if (rc == OR_OK && poll(&p, 1, VM_STOP_TIMEOUT_MS) != 1)
			rc = or_fail(err, OR_E_TIMEOUT, NULL, NULL,
				     "VM %s: init did not exit", vm->name);
	}
	if (vm->ctl >= 0)
		close(vm->ctl); /* the helper's cue to exit */
	vm->ctl = -1;
	vm_reap(vm->helper, VM_STOP_TIMEOUT_MS);
	vm->helper = -1;
	if (vm->pid1fd >= 0 && rc == OR_OK) {
		close(vm->pid1fd);
		vm->pid1fd = -1;
	}
	pthread_mutex_unlock(&vm->lock);
	return rc;
}

void
vm_free(struct vm *vm)
{
	if (vm == NULL)
		return;
	vm_stop(vm, NULL);
	if (vm->pid1fd >= 0)
		close(vm->pid1fd);
	pthread_mutex_destroy(&vm->lock);
	free(vm->dir);
	free(vm->name);
	free(vm->address);
	free(vm);
}

/* The target of /proc/PID/ns/pid ("pid:[4026532...]"), or "" */
static void
vm_pidns_of(pid_t pid, char *out, size_t size)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%ld/ns/pid", (long)pid);
	n = readlink(path, out, size - 1);
	out[n > 0 ? n : 0] = '\0';
}

or_rc
vm_pids(struct vm *vm, pid_t *pids, size_t max, size_t *n,
	struct or_err *err)
{
	char want[64], got[64];
	struct dirent *de;
	pid_t pid1;
	DIR *d;
	long p;
	char *end;

	*n = 0;
	pid1 = vm_init_pid(vm);
	if (pid1 < 0)
		return or_fail(err, OR_E_NOTFOUND, NULL, NULL,
			       "VM %s does not run", vm->name);
	vm_pidns_of(pid1, want, sizeof(want));
	if (want[0] == '\0')
		return or_fail(err, OR_E_IO, NULL, NULL,
			       "VM %s: cannot read /proc/%ld/ns/pid", vm->name,
			       (long)pid1);
	if (max > 0)
		pids[0] = pid1;
	*n = 1;
	d = opendir("/proc");
	if (d == NULL)
		return or_fail(err, OR_E_IO, NULL, NULL, "opendir /proc: %s",
			       strerror(errno));
	while ((de = readdir(d)) != NULL) {
		p = strtol(de->d_name, &end, 10);
		if (*end != '\0' || p <= 0 || p == pid1)
			continue;
		vm_pidns_of((pid_t)p, got, sizeof(got));
		if (strcmp(got, want) != 0)
			continue;
		if (*n < max)
			pids[*n] = (pid_t)p;
		(*n)++;
	}
	closedir(d);
	return OR_OK;
}

or_rc
vm_host_key(const char *dir, const char *type, char **out,
	    struct or_err *err)
{
	char path[PATH_MAX];
	struct buf b;
	or_rc rc;
	size_t i;
	int known = 0;

	*out = NULL;
	for (i = 0; i < sizeof(vm_hostkey_types) / sizeof(*vm_hostkey_types);
	     i++)
		known |= strcmp(type, vm_hostkey_types[i]) == 0;
	if (!known)
		return or_fail(err, OR_E_INVALID, NULL, "type",
			       "host key type must be ed25519, ecdsa or rsa");
	snprintf(path, sizeof(path), "%s/hostkeys/ssh_host_%s_key.pub", dir,
		 type);
	buf_init(&b, 64 * 1024);
	rc = vm_read_at(AT_FDCWD, path, &b, err);
	if (rc == OR_OK) {
		while (b.len > 0 && (b.data[b.len - 1] == '\n' ||
				     b.data[b.len - 1] == '\r'))
			b.data[--b.len] = '\0';
		*out = buf_detach(&b);
		if (*out == NULL)
			rc = or_fail(err, OR_E_NOMEM, NULL, NULL,
				     "out of memory");
	}
	buf_free(&b);
	return rc;
}

static int
vm_rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	if (flag == FTW_DP)
		return rmdir(path) < 0 ? -1 : 0;
	return unlink(path) < 0 ? -1 : 0;
}

/* rm -rf that stays on path's file system and never follows a symlink. */
static or_rc
vm_rm_tree(const char *path, struct or_err *err)
{
	if (nftw(path, vm_rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0)
		return or_fail(err, OR_E_IO, NULL, NULL, "remove %s: %s",
			       path, strerror(errno));
	return OR_OK;
}

or_rc
vm_destroy_dir(const char *dir, struct or_err *err)
{
	char real[PATH_MAX], path[PATH_MAX];
	struct stat st;
	int fd;
	or_rc rc;

	if (realpath(dir, real) == NULL) {
		if (errno == ENOENT)
			return OR_OK;
		return or_fail(err, OR_E_IO, NULL, "dir", "realpath %s: %s",
			       dir, strerror(errno));
	}
	if (strcmp(real, "/") == 0 ||
	    vm_join(path, sizeof(path), real, VM_MARKER) < 0 ||
	    lstat(path, &st) < 0 ||
	    !S_ISREG(st.st_mode))
		return or_fail(err, OR_E_INVALID, NULL, "dir",
			       "%s is not a VM directory (no %s)", real,
			       VM_MARKER);
	/* The helper holds this lock while the VM runs. */
	vm_join(path, sizeof(path), real, VM_LOCK);
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			close(fd);
			return or_fail(err, OR_E_CONFLICT, NULL, "dir",
				       "the VM in %s still runs", real);
		}
	}
	rc = vm_rm_tree(real, err);
	if (fd >= 0)
		close(fd);
	return rc;
}

or_rc
vm_supported(const char *scratch, const char *helper, struct or_err *err)
{
	char tmpl[PATH_MAX], msg[VM_MSG_MAX], path[PATH_MAX];
	char *argv[8];
	struct stat st;
	pid_t pid = -1;
	int ctl = -1, logfd = -1;
	ssize_t r;
	or_rc rc;

	if (geteuid() != 0)
		return or_fail(err, OR_E_IO, "vm_unsupported", NULL,
			       "VMs need root (unshare, mount, sshd on port "
			       "22)");
	if (stat(VM_SSHD, &st) < 0 || !(st.st_mode & S_IXUSR))
		return or_fail(err, OR_E_IO, "vm_unsupported", NULL,
			       "%s is not installed (openssh-server)", VM_SSHD);
	rc = vm_mkdir_p(scratch, 0700, err);
	if (rc != OR_OK)
		return rc;
	if (strlen(scratch) > PATH_MAX - 128 ||
	    vm_join(tmpl, sizeof(tmpl), scratch, ".vm-probe-XXXXXX") < 0 ||
	    mkdtemp(tmpl) == NULL)
		return or_fail(err, OR_E_IO, NULL, NULL, "mkdtemp in %s: %s",
			       scratch, strerror(errno));
	vm_join(path, sizeof(path), tmpl, "probe.log");
	logfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0) {
		rc = or_fail(err, OR_E_IO, NULL, NULL, "open %s: %s", path,
			     strerror(errno));
		goto out;
	}
	argv[0] = "outrigger";
	argv[1] = "vm-init";
	argv[2] = "probe";
	argv[3] = "--dir";
	argv[4] = tmpl;
	argv[5] = NULL;
	rc = vm_spawn(vm_helper_path(helper), argv, logfd, &pid, &ctl, err);
	if (rc != OR_OK)
		goto out;
	r = vm_msg_recv(ctl, msg, sizeof(msg), NULL, VM_REPLY_TIMEOUT_MS);
	if (r <= 0)
		rc = or_fail(err, OR_E_IO, "vm_unsupported", NULL,
			     "vm-init probe gave no answer (is `vm-init` "
			     "dispatched by %s?)", vm_helper_path(helper));
	else if (strcmp(msg, "ok") != 0)
		rc = vm_helper_error(msg, tmpl, err);
out:
	if (ctl >= 0)
		close(ctl);
	vm_reap(pid, VM_STOP_TIMEOUT_MS);
	if (logfd >= 0)
		close(logfd);
	/* The probe's mount namespace died with it: only plain files
	 * remain. */
	vm_rm_tree(tmpl, NULL);
	return rc;
}

/* ------------------------------------------------------------------ */
/* vm-init: the helper (host PID namespace) and the VM's init (PID 1) */

struct vmi {
	const char *dir, *name, *hostname, *address;
	int port;
	int dfd; /* the VM's directory, opened before the namespaces changed:
		    it stays reachable after /tmp or the checkout are covered */
	int ctl; /* VM_CTL_FD: the caller */
};

static const char *vmi_name = "?";

static void vmi_log(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
vmi_log(enum log_level level, const char *fmt, ...)
{
	char msg[900];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(level, "vm %s: %s", vmi_name, msg);
}

static void vmi_fail(struct vmi *v, const char *kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));

/* Before the init runs: tell the caller why the boot failed and exit.
 * kind is "" or "unsupported: " or "conflict: ". */
static void
vmi_fail(struct vmi *v, const char *kind, const char *fmt, ...)
{
	char msg[VM_MSG_MAX - 64], line[VM_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vmi_log(LOG_ERROR, "boot failed: %s", msg);
	snprintf(line, sizeof(line), "err %s%s", kind, msg);
	vm_msg_send(v->ctl, line, -1);
	_exit(1);
}

/* A mount error is "unsupported" when the kernel or our privileges refuse
 * the operation itself rather than its arguments being wrong. */
static const char *
vmi_kind(int e)
{
	return (e == EPERM || e == ENODEV || e == EOPNOTSUPP ||
		e == EINVAL || e == ENOSYS)
		       ? "unsupported: "
		       : "";
}

/* Run argv (PATH is searched) and wait.  Output goes to out (bounded,
 * NUL-terminated) when given, else to our stdout/stderr (the console).
 * Returns the wait status, or -1.  Single-threaded callers only; the
 * helper not after CLONE_NEWPID (its first fork would become the
 * namespace's init), the init itself at any time. */
static int
vmi_run(char *const argv[], char *out, size_t size)
{
	int p[2] = {-1, -1}, st = -1;
	size_t used = 0;
	ssize_t n;
	pid_t pid;

	if (out != NULL) {
		out[0] = '\0';
		if (pipe2(p, O_CLOEXEC) < 0)
			return -1;
	}
	pid = fork();
	if (pid < 0)
		goto out;
	if (pid == 0) {
		if (out != NULL &&
		    (dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0))
			_exit(127);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (out != NULL) {
		close(p[1]);
		p[1] = -1;
		for (;;) {
			char sink[256];

			if (used + 1 < size)
				n = read(p[0], out + used, size - 1 - used);
			else
				n = read(p[0], sink, sizeof(sink));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			if (used + 1 < size)
				used += (size_t)n;
		}
		out[used] = '\0';
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			st = -1;
			break;
		}
out:
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	return st;
}

/* The VM's host keys, made once with ssh-keygen and kept in hostkeys/.
 * They are written under a temporary name and renamed, .pub first, so a
 * boot interrupted half-way makes them again instead of using half a key. */
static void
vmi_hostkeys(struct vmi *v)
{
	char key[128], pub[136], tmp[PATH_MAX], tmppub[PATH_MAX + 8];
	char comment[128], out[2048];
	size_t i;
	int st;

	if (mkdirat(v->dfd, "hostkeys", 0700) < 0 && errno != EEXIST)
		vmi_fail(v, "", "mkdir hostkeys: %s", strerror(errno));
	for (i = 0; i < sizeof(vm_hostkey_types) / sizeof(*vm_hostkey_types);
	     i++) {
		char *argv[] = {"ssh-keygen", "-q", "-t", NULL, "-N", "",
				"-C", comment, "-f", tmp, NULL};

		snprintf(key, sizeof(key), "hostkeys/ssh_host_%s_key",
			 vm_hostkey_types[i]);
		snprintf(pub, sizeof(pub), "%s.pub", key);
		if (faccessat(v->dfd, key, F_OK, AT_SYMLINK_NOFOLLOW) == 0 &&
		    faccessat(v->dfd, pub, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			continue;
		snprintf(tmp, sizeof(tmp), "%s/%s.new", v->dir, key);
		snprintf(tmppub, sizeof(tmppub), "%s.pub", tmp);
		snprintf(comment, sizeof(comment), "root@%s", v->name);
		unlink(tmp);
		unlink(tmppub);
		argv[3] = (char *)vm_hostkey_types[i];
		st = vmi_run(argv, out, sizeof(out));
		if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			vmi_fail(v, "", "ssh-keygen -t %s failed: %s",
				 vm_hostkey_types[i], out);
		if (renameat(AT_FDCWD, tmppub, v->dfd, pub) < 0)
			vmi_fail(v, "", "rename %s: %s", pub, strerror(errno));
		if (renameat(AT_FDCWD, tmp, v->dfd, key) < 0)
			vmi_fail(v, "", "rename %s: %s", key, strerror(errno));
		vmi_log(LOG_INFO, "made host key %s", key);
	}
}

static void
vmi_mount(struct vmi *v, const char *src, const char *dst, const char *type,
	  unsigned long flags, const char *data)
{
	if (mount(src, dst, type, flags, data) < 0) {
		int e = errno;

		vmi_fail(v, vmi_kind(e), "mount %s on %s: %s",
			 type ? type : src, dst, strerror(e));
	}
}

/* A read-only bind of path over itself (for /proc/sys).  0, or -1 with
 * errno.  A path this kernel does not have is fine. */
static int
vmi_bind_ro(const char *path)
{
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return 0;
	if (mount(path, path, NULL, MS_BIND, NULL) < 0 ||
	    mount(NULL, path, NULL,
		  MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV |
			  MS_NOEXEC,
		  NULL) < 0)
		return -1;
	return 0;
}

/* The VM's own /dev: the usual character devices, its own devpts instance
 * and /dev/shm; not this machine's disks. */
static void
vmi_mount_dev(struct vmi *v)
{
	static const struct {
		const char *name;
		unsigned maj, min;
	} nodes[] = {{"null", 1, 3},   {"zero", 1, 5},	  {"full", 1, 7},
		     {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
	static const char *const links[][2] = {
		{"ptmx", "pts/ptmx"},	       {"fd", "/proc/self/fd"},
		{"stdin", "/proc/self/fd/0"},  {"stdout", "/proc/self/fd/1"},
		{"stderr", "/proc/self/fd/2"}};
	char path[64], opts[128];
	struct group *tty;
	size_t i;

	/* Detached, not just covered: nothing of this machine's /dev
	 * (devpts, /dev/shm) stays in the VM's mount table.  Private
	 * propagation keeps the host's mounts as they are. */
	umount2("/dev", MNT_DETACH);
	vmi_mount(v, "tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME,
		  "mode=0755,size=1m");
	for (i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		snprintf(path, sizeof(path), "/dev/%s", nodes[i].name);
		if (mknod(path, S_IFCHR | 0666,
			  makedev(nodes[i].maj, nodes[i].min)) < 0 ||
		    chmod(path, 0666) < 0)
			vmi_fail(v, vmi_kind(errno), "mknod %s: %s", path,
				 strerror(errno));
	}
	for (i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		snprintf(path, sizeof(path), "/dev/%s", links[i][0]);
		if (symlink(links[i][1], path) < 0)
			vmi_fail(v, "", "symlink %s: %s", path,
				 strerror(errno));
	}
	if (mkdir("/dev/pts", 0755) < 0 || mkdir("/dev/shm", 0755) < 0 ||
	    chmod("/dev/shm", 01777) < 0)
		vmi_fail(v, "", "mkdir /dev/pts: %s", strerror(errno));
	tty = getgrnam("tty");
	snprintf(opts, sizeof(opts),
		 "newinstance,ptmxmode=0666,mode=0620,gid=%u",
		 tty ? (unsigned)tty->gr_gid : 5u);
	vmi_mount(v, "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		  opts);
	vmi_mount(v, "tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV,
		  "mode=1777,size=256m");
}

static int
vmi_keep_top(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(vm_keep_top) / sizeof(*vm_keep_top); i++)
		if (strcmp(name, vm_keep_top[i]) == 0)
			return 1;
	return 0;
}

/* The VM's view of the file system, in the new mount namespace.  After
 * this, every write of the VM lands in its overlays or its tmpfs mounts,
 * and the rest of / is read-only. */
static void vmi_bind_helper(struct vmi *v);

static void
vmi_mounts(struct vmi *v)
{
	char dst[64], opts[256], path[PATH_MAX];
	struct dirent *de;
	struct stat st;
	size_t i;
	DIR *d;

	/* Nothing mounted here may reach the host's namespace. */
	vmi_mount(v, NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);

	/* Overlay options name the layers relative to DIR/fs, which keeps
	 * them short and free of the caller's path.  By path, not by dfd:
	 * overlayfs clones the upper layer's mount, which must be one of
	 * this namespace, and dfd's is the host's. */
	if (chdir(v->dir) < 0 || chdir("fs") < 0)
		vmi_fail(v, "", "chdir %s/fs: %s", v->dir, strerror(errno));
	for (i = 0; i < sizeof(vm_overlays) / sizeof(*vm_overlays); i++) {
		snprintf(dst, sizeof(dst), "/%s", vm_overlays[i]);
		if (lstat(dst, &st) < 0 || !S_ISDIR(st.st_mode)) {
			vmi_log(LOG_INFO, "%s is not a directory here: not "
				"overlaid", dst);
			continue;
		}
		snprintf(opts, sizeof(opts),
			 "lowerdir=/%s,upperdir=upper/%s,workdir=work/%s",
			 vm_overlays[i], vm_overlays[i], vm_overlays[i]);
		vmi_mount(v, "overlay", dst, "overlay", 0, opts);
	}
	if (chdir("/") < 0)
		vmi_fail(v, "", "chdir /: %s", strerror(errno));
	/* Now, while this program's path still names it: a checkout under
	 * /tmp or /run is hidden by the VM's own tmpfs mounts just below. */
	vmi_bind_helper(v);

	vmi_mount(v, "tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV,
		  "mode=0755,size=256m");
	if (mkdir("/run/sshd", 0755) < 0 || mkdir("/run/lock", 0755) < 0 ||
	    chmod("/run/lock", 01777) < 0 || mkdir("/run/user", 0755) < 0)
		vmi_fail(v, "", "mkdir in /run: %s", strerror(errno));
	vmi_mount(v, "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
		  "mode=1777,size=2g");
	vmi_mount_dev(v);
	/* A sysfs of its own, without this machine's cgroup mounts, and
	 * read-only.  A VM can live without /sys, so failing is not fatal. */
	umount2("/sys", MNT_DETACH);
	if (mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL) < 0)
		vmi_log(LOG_WARN, "no /sys: %s", strerror(errno));
	else if (mount(NULL, "/sys", NULL,
		       MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID |
			       MS_NODEV | MS_NOEXEC,
		       NULL) < 0)
		vmi_fail(v, vmi_kind(errno), "read-only /sys: %s",
			 strerror(errno));

	/* Hide what a VM would not have: the sandbox's own tree, /mnt. */
	d = opendir("/");
	if (d == NULL)
		vmi_fail(v, "", "opendir /: %s", strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || vmi_keep_top(de->d_name))
			continue;
		snprintf(path, sizeof(path), "/%s", de->d_name);
		if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		vmi_mount(v, "tmpfs", path, "tmpfs",
			  MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "mode=0755,size=4k");
	}
	closedir(d);
	/* Only this namespace's mount of / turns read-only (MS_BIND): the
	 * host's stays as it is.  The overlays took their own private
	 * clones of the upper layer's mount when they were made. */
	vmi_mount(v, NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
}

static void
vmi_write(struct vmi *v, const char *path, const char *data, mode_t mode)
{
	struct or_err e;

	if (vm_write_str_at(AT_FDCWD, path, data, mode, &e) != OR_OK)
		vmi_fail(v, "", "%s", e.message);
}

static void
vmi_copy_hostkey(struct vmi *v, const char *type, const char *suffix,
		 mode_t mode)
{
	char src[128], dst[128];
	struct or_err e;
	struct buf b;

	snprintf(src, sizeof(src), "hostkeys/ssh_host_%s_key%s", type,
		 suffix);
	snprintf(dst, sizeof(dst), "/etc/ssh/ssh_host_%s_key%s", type,
		 suffix);
	buf_init(&b, 64 * 1024);
	if (vm_read_at(v->dfd, src, &b, &e) != OR_OK ||
	    vm_write_at(AT_FDCWD, dst, b.data, b.len, mode, 0, 0, &e) !=
		    OR_OK) {
		buf_free(&b);
		vmi_fail(v, "", "host key %s: %s", type, e.message);
	}
	buf_free(&b);
}

/* What the docker stand-in needs: the VM's address, the catalog, and this
 * program (for `outrigger sandbox-catalog`), bind-mounted read-only from
 * /proc/self/exe: the checkout it lives in is hidden from the VM. */
static void
vmi_outrigger_files(struct vmi *v)
{
	static const char dir[] = "/usr/local/lib/outrigger-vm";
	static const char exe[] = "/usr/local/lib/outrigger-vm/outrigger";
	struct buf cat;
	struct or_err e;
	char text[64];

	if ((mkdir("/usr/local/lib", 0755) < 0 && errno != EEXIST) ||
	    (mkdir(dir, 0755) < 0 && errno != EEXIST))
		vmi_fail(v, "", "mkdir %s: %s", dir, strerror(errno));
	snprintf(text, sizeof(text), "%s\n", v->address);
	vmi_write(v, "/usr/local/lib/outrigger-vm/address", text, 0644);
	buf_init(&cat, VM_FILE_MAX);
	if (vm_read_at(v->dfd, "catalog.json", &cat, &e) == OR_OK)
		vmi_write(v, "/usr/local/lib/outrigger-vm/products.json", buf_str(&cat), 0644);
	buf_free(&cat);
	(void)exe;
}

/* Bind this program read-only at /usr/local/lib/outrigger-vm/outrigger,
 * by its path: /proc/self/exe names a mount of the host's namespace,
 * which bind(2) refuses here.  Called inside vmi_mounts, once /usr is the
 * VM's overlay and before /tmp, /run and the checkout are hidden.  Not fatal: without it
 * the docker stand-in says it cannot start the catalog. */
static void
vmi_bind_helper(struct vmi *v)
{
	static const char exe[] = "/usr/local/lib/outrigger-vm/outrigger";
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int fd;

	(void)v;
	if (n <= 0 || strstr(self, " (deleted)") != NULL) {
		vmi_log(LOG_WARN, "cannot find this program's path: no catalog server in the VM");
		return;
	}
	self[n] = '\0';
	if ((mkdir("/usr/local/lib", 0755) < 0 && errno != EEXIST) ||
	    (mkdir("/usr/local/lib/outrigger-vm", 0755) < 0 && errno != EEXIST))
		return;
	fd = open(exe, O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
	if (fd >= 0)
		close(fd);
	if (fd < 0 || mount(self, exe, NULL, MS_BIND, NULL) < 0 ||
	    mount(NULL, exe, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
		vmi_log(LOG_WARN, "bind-mount %s at %s: %s: no catalog server in the VM", self,
			exe, strerror(errno));
}

/* The VM's own files, written inside its view at every boot (except
 * /etc/hosts and /etc/machine-id: only at the first, as a disk keeps what
 * a bootstrap added to them). */
static void
vmi_files(struct vmi *v, int first_boot)
{
	char text[4096], host[72], *dot;
	unsigned char id[16];
	size_t i;

	snprintf(text, sizeof(text), "%s\n", v->hostname);
	vmi_write(v, "/etc/hostname", text, 0644);
	if (first_boot) {
		snprintf(host, sizeof(host), "%s", v->hostname);
		dot = strchr(host, '.');
		if (dot != NULL)
			*dot = '\0';
		snprintf(text, sizeof(text),
			 "127.0.0.1\tlocalhost\n"
			 "::1\tlocalhost ip6-localhost ip6-loopback\n"
			 "ff02::1\tip6-allnodes\n"
			 "ff02::2\tip6-allrouters\n"
			 "%s\t%s%s%s  # Added by Outrigger sandbox\n",
			 v->address, v->hostname, dot ? " " : "",
			 dot ? host : "");
		vmi_write(v, "/etc/hosts", text, 0644);
		if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id))
			vmi_fail(v, "", "getrandom: %s", strerror(errno));
		for (i = 0; i < sizeof(id); i++)
			snprintf(text + 2 * i, 3, "%02x", id[i]);
		text[32] = '\n';
		text[33] = '\0';
		vmi_write(v, "/etc/machine-id", text, 0444);
	}

	if (mkdir("/etc/ssh", 0755) < 0 && errno != EEXIST)
		vmi_fail(v, "", "mkdir /etc/ssh: %s", strerror(errno));
	for (i = 0; i < sizeof(vm_hostkey_types) / sizeof(*vm_hostkey_types);
	     i++) {
		vmi_copy_hostkey(v, vm_hostkey_types[i], "", 0600);
		vmi_copy_hostkey(v, vm_hostkey_types[i], ".pub", 0644);
	}
	/* Debian's defaults where they matter, and GCE's: keys only, no
	 * root login.  UsePAM no: PAM's session modules want systemd and
	 * logind; accounts need a shadow password of '*' rather than '!'.
	 * No Include: drop-ins of this machine's /etc/ssh must not apply. */
	snprintf(text, sizeof(text),
		 "# Written by Outrigger's vm-init at every boot of VM %s: "
		 "edits are lost.\n"
		 "ListenAddress %s:%d\n"
		 "HostKey /etc/ssh/ssh_host_ed25519_key\n"
		 "HostKey /etc/ssh/ssh_host_ecdsa_key\n"
		 "HostKey /etc/ssh/ssh_host_rsa_key\n"
		 "PidFile /run/sshd.pid\n"
		 "PermitRootLogin no\n"
		 "PubkeyAuthentication yes\n"
		 "AuthorizedKeysFile .ssh/authorized_keys\n"
		 "PasswordAuthentication no\n"
		 "KbdInteractiveAuthentication no\n"
		 "UsePAM no\n"
		 "X11Forwarding no\n"
		 "PrintMotd no\n"
		 "AcceptEnv LANG LC_*\n"
		 "Subsystem sftp internal-sftp\n"
		 "LogLevel VERBOSE\n",
		 v->name, v->address, v->port);
	vmi_write(v, "/etc/ssh/sshd_config", text, 0644);

	if ((mkdir("/usr/local/bin", 0755) < 0 && errno != EEXIST) ||
	    (mkdir("/usr/local/sbin", 0755) < 0 && errno != EEXIST) ||
	    (mkdir("/etc/sudoers.d", 0755) < 0 && errno != EEXIST))
		vmi_fail(v, "", "mkdir: %s", strerror(errno));
	vmi_write(v, "/usr/local/bin/systemctl", vm_shim_systemctl, 0755);
	vmi_write(v, "/usr/local/bin/journalctl", vm_shim_journalctl, 0755);
	vmi_write(v, "/usr/local/sbin/service", vm_shim_service, 0755);
	vmi_write(v, "/usr/local/bin/docker", vm_shim_docker, 0755);
	vmi_outrigger_files(v);
}

/* ---- users and keys: what GCE's guest agent does with ssh-keys ---- */

/* Append line to a user database file (/etc/passwd, ...), keeping its
 * mode and owner.  Called with lckpwdf() held. */
static or_rc
vmi_db_append(const char *path, const char *line, struct or_err *err)
{
	struct stat st;
	struct buf b;
	or_rc rc;

	if (stat(path, &st) < 0)
		return or_fail(err, OR_E_IO, NULL, NULL, "stat %s: %s", path,
			       strerror(errno));
	buf_init(&b, VM_FILE_MAX);
	rc = vm_read_at(AT_FDCWD, path, &b, err);
	if (rc == OR_OK && b.len > 0 && b.data[b.len - 1] != '\n')
		rc = buf_append_str(&b, "\n");
	if (rc == OR_OK)
		rc = buf_append_str(&b, line);
	if (rc == OR_OK)
		rc = vm_write_at(AT_FDCWD, path, buf_str(&b), b.len,
				 st.st_mode & 07777, st.st_uid, st.st_gid,
				 err);
	buf_free(&b);
	return rc;
}

/* Give user's shadow entry the password '*' if it is locked ('!...'):
 * sshd without PAM refuses locked accounts even for key logins. */
static or_rc
vmi_shadow_unlock(const char *user, struct or_err *err)
{
	struct buf in, out;
	struct stat st;
	const char *s, *nl, *rest;
	size_t ulen = strlen(user), len;
	int changed = 0;
	or_rc rc;

	if (stat("/etc/shadow", &st) < 0)
		return OR_OK;
	buf_init(&in, VM_FILE_MAX);
	buf_init(&out, VM_FILE_MAX);
	rc = vm_read_at(AT_FDCWD, "/etc/shadow", &in, err);
	for (s = buf_str(&in); rc == OR_OK && *s != '\0'; s += len) {
		nl = strchr(s, '\n');
		len = nl ? (size_t)(nl - s) + 1 : strlen(s);
		if (len > ulen + 1 && strncmp(s, user, ulen) == 0 &&
		    s[ulen] == ':' && s[ulen + 1] == '!') {
			rest = memchr(s + ulen + 1, ':', len - ulen - 1);
			rc = buf_printf(&out, "%s:*%.*s", user,
					rest ? (int)(s + len - rest) : 1,
					rest ? rest : "\n");
			changed = 1;
			continue;
		}
		rc = buf_append(&out, s, len);
	}
	if (rc == OR_OK && changed)
		rc = vm_write_at(AT_FDCWD, "/etc/shadow", buf_str(&out),
				 out.len, st.st_mode & 07777, st.st_uid,
				 st.st_gid, err);
	buf_free(&in);
	buf_free(&out);
	return rc;
}

/* The first free ID in [VM_UID_MIN, VM_UID_MAX] as a UID, and as a GID too
 * when want_gid (a user private group gets the same number, as useradd
 * does).  0 when none is left. */
static unsigned
vmi_free_id(int want_gid)
{
	static unsigned char used[VM_UID_MAX + 1];
	struct passwd *pw;
	struct group *gr;
	unsigned id;

	memset(used, 0, sizeof(used));
	setpwent();
	while ((pw = getpwent()) != NULL)
		if (pw->pw_uid <= VM_UID_MAX)
			used[pw->pw_uid] = 1;
	endpwent();
	if (want_gid) {
		setgrent();
		while ((gr = getgrent()) != NULL)
			if (gr->gr_gid <= VM_UID_MAX)
				used[gr->gr_gid] = 1;
		endgrent();
	}
	for (id = VM_UID_MIN; id <= VM_UID_MAX; id++)
		if (!used[id])
			return id;
	return 0;
}

/* Copy /etc/skel's plain files into a new home (useradd -m). */
static void
vmi_copy_skel(int homefd, uid_t uid, gid_t gid)
{
	struct dirent *de;
	struct stat st;
	struct or_err e;
	struct buf b;
	int sfd;
	DIR *d;

	sfd = open("/etc/skel", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0)
		return;
	d = fdopendir(sfd);
	if (d == NULL) {
		close(sfd);
		return;
	}
	buf_init(&b, 1024 * 1024);
	while ((de = readdir(d)) != NULL) {
		if (fstatat(sfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		buf_reset(&b);
		if (vm_read_at(sfd, de->d_name, &b, &e) == OR_OK)
			vm_write_at(homefd, de->d_name, buf_str(&b), b.len,
				    st.st_mode & 0777, uid, gid, &e);
	}
	buf_free(&b);
	closedir(d);
}

/* Make sure user exists as a login account of the VM, like the guest
 * agent's `useradd -m -s /bin/bash -p '*'`.  OR_E_INVALID for names that
 * belong to the system (root, daemon, a system group): those are skipped,
 * never changed.  Called with lckpwdf() held. */
static or_rc
vmi_ensure_user(const char *user, struct or_err *err)
{
	char line[512];
	struct passwd *pw;
	struct group *gr;
	struct stat st;
	unsigned uid, gid;
	or_rc rc;

	pw = getpwnam(user);
	if (pw != NULL) {
		if (pw->pw_uid < VM_UID_MIN || pw->pw_uid > VM_UID_MAX)
			return or_fail(err, OR_E_INVALID, NULL, NULL,
				       "%s is a system account", user);
		return vmi_shadow_unlock(user, err);
	}
	gr = getgrnam(user);
	if (gr != NULL && (gr->gr_gid < VM_UID_MIN || gr->gr_gid > VM_UID_MAX))
		return or_fail(err, OR_E_INVALID, NULL, NULL,
			       "%s is a system group", user);
	gid = gr != NULL ? (unsigned)gr->gr_gid : 0;
	uid = vmi_free_id(gr == NULL);
	if (uid == 0)
		return or_fail(err, OR_E_IO, NULL, NULL, "no free UID left");
	if (gr == NULL)
		gid = uid;
	snprintf(line, sizeof(line), "%s:x:%u:%u::/home/%s:/bin/bash\n", user,
		 uid, gid, user);
	rc = vmi_db_append("/etc/passwd", line, err);
	if (rc != OR_OK)
		return rc;
	snprintf(line, sizeof(line), "%s:*:%ld:0:99999:7:::\n", user,
		 (long)(time(NULL) / 86400));
	rc = vmi_db_append("/etc/shadow", line, err);
	if (rc == OR_OK && gr == NULL) {
		snprintf(line, sizeof(line), "%s:x:%u:\n", user, gid);
		rc = vmi_db_append("/etc/group", line, err);
		if (rc == OR_OK && stat("/etc/gshadow", &st) == 0) {
			snprintf(line, sizeof(line), "%s:!::\n", user);
			rc = vmi_db_append("/etc/gshadow", line, err);
		}
	}
	if (rc == OR_OK)
		vmi_log(LOG_INFO, "created user %s (uid %u)", user, uid);
	return rc;
}

/* Rewrite pw's ~/.ssh/authorized_keys: lines the agent added earlier
 * (each after a VM_KEY_MARK line) are replaced by the user's keys in keys
 * (none when the user left the metadata); the user's own lines stay.  A
 * missing home is made (with /etc/skel) only for a listed user.  All
 * opens refuse symlinks: the user owns these directories. */
static or_rc
vmi_user_keys(const struct passwd *pw, const struct vm_ssh_key *keys,
	      size_t n, int listed, struct or_err *err)
{
	struct buf old, new;
	const char *s, *nl;
	int homefd = -1, sshfd = -1, skip = 0, made;
	size_t i, len;
	or_rc rc = OR_OK;

	buf_init(&old, VM_FILE_MAX);
	buf_init(&new, VM_FILE_MAX);
	if (pw->pw_dir[0] != '/')
		goto out;
	homefd = open(pw->pw_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					  O_CLOEXEC);
	if (homefd < 0 && errno == ENOENT && listed) {
		if (mkdir(pw->pw_dir, 0755) < 0) {
			rc = or_fail(err, OR_E_IO, NULL, NULL, "mkdir %s: %s",
				     pw->pw_dir, strerror(errno));
			goto out;
		}
		homefd = open(pw->pw_dir, O_RDONLY | O_DIRECTORY |
						  O_NOFOLLOW | O_CLOEXEC);
		if (homefd >= 0) {
			if (fchown(homefd, pw->pw_uid, pw->pw_gid) < 0) {
				rc = or_fail(err, OR_E_IO, NULL, NULL,
					     "chown %s: %s", pw->pw_dir,
					     strerror(errno));
				goto out;
			}
			vmi_copy_skel(homefd, pw->pw_uid, pw->pw_gid);
		}
	}
	if (homefd < 0) {
		if (listed)
			rc = or_fail(err, OR_E_IO, NULL, NULL, "open %s: %s",
				     pw->pw_dir, strerror(errno));
		goto out;
	}
	made = mkdirat(homefd, ".ssh", 0700) == 0;
	sshfd = openat(homefd, ".ssh", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					       O_CLOEXEC);
	if (sshfd < 0 || (made && fchown(sshfd, pw->pw_uid, pw->pw_gid) < 0)) {
		rc = or_fail(err, OR_E_IO, NULL, NULL, "%s/.ssh: %s",
			     pw->pw_dir, strerror(errno));
		goto out;
	}
	rc = vm_read_at(sshfd, "authorized_keys", &old, err);
	if (rc == OR_E_NOTFOUND || (rc != OR_OK && !listed)) {
		buf_reset(&old);
		rc = OR_OK;
	}
	if (rc != OR_OK)
		goto out;
	for (s = buf_str(&old); *s != '\0'; s += len) {
		nl = strchr(s, '\n');
		len = nl ? (size_t)(nl - s) + 1 : strlen(s);
		if (skip) {
			skip = 0;
			continue;
		}
		if (len >= strlen(VM_KEY_MARK) &&
		    strncmp(s, VM_KEY_MARK, strlen(VM_KEY_MARK)) == 0 &&
		    (s[strlen(VM_KEY_MARK)] == '\n' ||
		     s[strlen(VM_KEY_MARK)] == '\0')) {
			skip = 1;
			continue;
		}
		rc = buf_append(&new, s, len);
		if (rc == OR_OK && s[len - 1] != '\n')
			rc = buf_append_str(&new, "\n");
		if (rc != OR_OK)
			goto toolarge;
	}
	for (i = 0; listed && i < n; i++) {
		if (strcmp(keys[i].user, pw->pw_name) != 0)
			continue;
		rc = buf_printf(&new, VM_KEY_MARK "\n%s\n", keys[i].line);
		if (rc != OR_OK)
			goto toolarge;
	}
	if (new.len == old.len && memcmp(buf_str(&new), buf_str(&old),
					 old.len) == 0)
		goto out;
	rc = vm_write_at(sshfd, "authorized_keys", buf_str(&new), new.len,
			 0600, pw->pw_uid, pw->pw_gid, err);
	goto out;
toolarge:
	rc = or_fail(err, rc, NULL, NULL, "%s's authorized_keys is too large",
		     pw->pw_name);
out:
	if (sshfd >= 0)
		close(sshfd);
	if (homefd >= 0)
		close(homefd);
	buf_free(&old);
	buf_free(&new);
	return rc;
}

static int
vmi_in_list(char *const *list, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return 1;
	return 0;
}

/* Apply DIR/ssh-keys inside the VM's view: users, keys, sudoers, and
 * DIR/managed-users (who had keys, so that they can be taken away).
 * Malformed lines and system accounts are skipped and logged. */
static or_rc
vmi_apply_keys(struct vmi *v, struct or_err *err)
{
	struct vm_ssh_key *keys = NULL;
	struct buf val, prev, sud, managed;
	char **users = NULL, **old = NULL, *s, *save = NULL, empty[1] = "";
	size_t nkeys = 0, skipped = 0, nusers = 0, nold = 0, i, bad = 0;
	struct passwd *pw;
	struct or_err e;
	int locked = 0;
	or_rc rc;

	buf_init(&val, VM_KEYS_MAX + 1);
	buf_init(&prev, VM_FILE_MAX);
	buf_init(&sud, VM_FILE_MAX);
	buf_init(&managed, VM_FILE_MAX);
	rc = vm_read_at(v->dfd, "ssh-keys", &val, err);
	if (rc == OR_E_NOTFOUND)
		rc = OR_OK;
	if (rc == OR_OK)
		rc = vm_ssh_keys_parse(buf_str(&val), &keys, &nkeys, &skipped,
				       err);
	if (rc != OR_OK)
		goto out;
	if (vm_read_at(v->dfd, "managed-users", &prev, &e) != OR_OK)
		buf_reset(&prev);

	users = calloc(nkeys + 1, sizeof(*users));
	old = calloc(prev.len / 2 + 2, sizeof(*old));
	if (users == NULL || old == NULL) {
		rc = or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
		goto out;
	}
	for (s = strtok_r(prev.data ? prev.data : empty, "\n", &save);
	     s != NULL; s = strtok_r(NULL, "\n", &save))
		if (vm_valid_user(s, strlen(s)))
			old[nold++] = s;

	if (lckpwdf() < 0) {
		rc = or_fail(err, OR_E_RETRYABLE, NULL, NULL,
			     "the VM's user database is locked");
		goto out;
	}
	locked = 1;
	for (i = 0; i < nkeys; i++) {
		if (vmi_in_list(users, nusers, keys[i].user))
			continue;
		rc = vmi_ensure_user(keys[i].user, &e);
		if (rc == OR_E_INVALID) {
			vmi_log(LOG_WARN, "ssh-keys: skipped: %s", e.message);
			bad++;
			continue;
		}
		if (rc != OR_OK) {
			or_fail(err, rc, NULL, NULL, "user %s: %s",
				keys[i].user, e.message);
			goto out;
		}
		users[nusers++] = keys[i].user;
	}
	ulckpwdf();
	locked = 0;

	/* Keys: listed users get theirs, users no longer listed lose the
	 * agent's lines. */
	for (i = 0; i < nusers + nold; i++) {
		const char *u = i < nusers ? users[i] : old[i - nusers];
		int listed = i < nusers;

		if (!listed && vmi_in_list(users, nusers, u))
			continue;
		pw = getpwnam(u);
		if (pw == NULL || pw->pw_uid < VM_UID_MIN ||
		    pw->pw_uid > VM_UID_MAX)
			continue;
		rc = vmi_user_keys(pw, keys, nkeys, listed, &e);
		if (rc != OR_OK) {
			or_fail(err, rc, NULL, NULL, "keys of %s: %s", u,
				e.message);
			goto out;
		}
	}

	rc = buf_append_str(&sud,
			    "# Written by Outrigger's vm-init from the "
			    "instance's ssh-keys metadata:\n# its users get "
			    "passwordless sudo, as with GCE's guest agent.  "
			    "Rewritten at\n# every change; put your own rules "
			    "in another file.\n");
	for (i = 0; rc == OR_OK && i < nusers; i++) {
		rc = buf_printf(&sud, "%s ALL=(ALL:ALL) NOPASSWD:ALL\n",
				users[i]);
		if (rc == OR_OK)
			rc = buf_printf(&managed, "%s\n", users[i]);
	}
	if (rc != OR_OK) {
		or_fail(err, rc, NULL, NULL, "sudoers too large");
		goto out;
	}
	rc = vm_write_at(AT_FDCWD, VM_SUDOERS, buf_str(&sud), sud.len, 0440,
			 0, 0, err);
	if (rc == OR_OK)
		rc = vm_write_str_at(v->dfd, "managed-users",
				     buf_str(&managed), 0600, err);
	if (rc == OR_OK)
		vmi_log(LOG_INFO,
			"ssh-keys: %zu key(s) for %zu user(s) applied, %zu "
			"malformed line(s) and %zu account(s) skipped",
			nkeys, nusers, skipped, bad);
out:
	if (locked)
		ulckpwdf();
	free(users);
	free(old);
	free(keys);
	buf_free(&val);
	buf_free(&prev);
	buf_free(&sud);
	buf_free(&managed);
	return rc;
}

/* ---- the VM's init ---- */

static void vmi_init_fail(int rep, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

static void
vmi_init_fail(int rep, const char *fmt, ...)
{
	char msg[VM_MSG_MAX - 8];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vmi_log(LOG_ERROR, "init: %s", msg);
	if (n > 0)
		vm_write_all(rep, msg, strlen(msg));
	_exit(1);
}

static pid_t
vmi_start_sshd(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		/* argv[0] absolute: sshd re-executes itself for every
		 * connection and insists on it. */
		setsid();
		execl(VM_SSHD, VM_SSHD, "-D", "-e", "-f",
		      "/etc/ssh/sshd_config", (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* PID 1 of the VM.  Never returns: it reaps orphans, as an init must
 * (daemons started by the systemctl shim end up as its children), and
 * restarts sshd if it dies.  Its stdout/stderr are the console. */
static void vmi_init(struct vmi *v, int rep) __attribute__((noreturn));

static void
vmi_init(struct vmi *v, int rep)
{
	char *check[] = {VM_SSHD, "-t", "-f", "/etc/ssh/sshd_config", NULL};
	char *boot[] = {"/usr/local/bin/systemctl", "--boot", NULL};
	char out[1024];
	int st, backoff = 1;
	long long started;
	pid_t sshd, pid;
	size_t i;

	prctl(PR_SET_NAME, "vm-init", 0, 0, 0);
	/* The helper is single-threaded, so this fires exactly when it
	 * dies: a VM never outlives the process that can stop it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	umount2("/proc", MNT_DETACH); /* this machine's PIDs */
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL) < 0)
		vmi_init_fail(rep, "%smount proc: %s", vmi_kind(errno),
			      strerror(errno));
	/* The kernel's knobs are this machine's: look, don't touch. */
	if (vmi_bind_ro("/proc/sys") < 0 ||
	    vmi_bind_ro("/proc/sysrq-trigger") < 0)
		vmi_init_fail(rep, "read-only /proc/sys: %s", strerror(errno));
	for (i = 0; i < sizeof(vm_drop_caps) / sizeof(*vm_drop_caps); i++)
		if (prctl(PR_CAPBSET_DROP, vm_drop_caps[i], 0, 0, 0) < 0 &&
		    errno != EINVAL)
			vmi_init_fail(rep, "drop capability %d: %s",
				      vm_drop_caps[i], strerror(errno));

	/* sshd -t says what is wrong with the configuration or the host
	 * keys in words; a failing sshd -D would only loop. */
	st = vmi_run(check, out, sizeof(out));
	if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		vmi_init_fail(rep, "sshd -t: %s", out);
	sshd = vmi_start_sshd();
	if (sshd < 0)
		vmi_init_fail(rep, "fork: %s", strerror(errno));
	started = vm_now_ms();
	vm_write_all(rep, "ok", 2);
	close(rep);
	vmi_log(LOG_INFO, "init: sshd (pid %ld inside) listens on %s:%d",
		(long)sshd, v->address, v->port);

	pid = fork();
	if (pid == 0) {
		execv(boot[0], boot);
		_exit(127);
	}

	for (;;) {
		pid = wait(&st);
		if (pid < 0) {
			if (errno != EINTR)
				vm_sleep_ms(1000);
			continue;
		}
		if (pid != sshd)
			continue;
		if (vm_now_ms() - started > 60000)
			backoff = 1;
		vmi_log(LOG_WARN, "init: sshd exited (%s %d); restart in %d s",
			WIFSIGNALED(st) ? "signal" : "status",
			WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
			backoff);
		vm_sleep_ms(backoff * 1000);
		backoff = backoff < 30 ? backoff * 2 : 30;
		sshd = vmi_start_sshd();
		started = vm_now_ms();
	}
}

/* ---- the helper ---- */

/* After the boot: the VM's guest agent until the caller lets go.  The
 * caller's end closing (vm_stop, or the sandbox dying) kills the init; the
 * init dying ends the helper. */
static void vmi_serve(struct vmi *v, pid_t pid1, int pidfd)
	__attribute__((noreturn));

static void
vmi_serve(struct vmi *v, pid_t pid1, int pidfd)
{
	struct pollfd p[2];
	char msg[VM_MSG_MAX], reply[VM_MSG_MAX];
	struct or_err e;
	unsigned long seq;
	ssize_t n;
	int st;

	for (;;) {
		p[0].fd = v->ctl;
		p[0].events = POLLIN;
		p[0].revents = 0;
		p[1].fd = pidfd;
		p[1].events = POLLIN;
		p[1].revents = 0;
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			vmi_log(LOG_ERROR, "poll: %s", strerror(errno));
			break;
		}
		if (p[1].revents != 0)
			break; /* the init died: vm_stop, or a crash */
		if (p[0].revents == 0)
			continue;
		n = vm_msg_recv(v->ctl, msg, sizeof(msg), NULL, 0);
		if (n <= 0)
			break; /* the caller is done with this VM */
		seq = strtoul(msg + strcspn(msg, " "), NULL, 10);
		if (strncmp(msg, "keys ", 5) == 0) {
			if (vmi_apply_keys(v, &e) == OR_OK)
				snprintf(reply, sizeof(reply), "ok %lu", seq);
			else
				snprintf(reply, sizeof(reply), "err %lu %s",
					 seq, e.message);
		} else {
			snprintf(reply, sizeof(reply), "err %lu unknown "
				 "request", seq);
		}
		vm_msg_send(v->ctl, reply, -1);
	}
	pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
	while (waitpid(pid1, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
		vmi_log(LOG_INFO, "stopped");
	else
		vmi_log(LOG_WARN, "init ended by itself (%s %d)",
			WIFSIGNALED(st) ? "signal" : "status",
			WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	_exit(0);
}

/* What every vm-init mode does first: a clean process whatever the
 * caller's state (signal dispositions, environment, stray descriptors). */
static void
vmi_setup(void)
{
	sigset_t none;
	int sig;

	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	close_range(VM_CTL_FD + 1, ~0U, 0);
	clearenv();
	setenv("PATH", VM_PATH, 1);
	setenv("LANG", "C.UTF-8", 1);
	umask(022);
}

static int
vmi_args(struct vmi *v, int argc, char **argv)
{
	const char *port = NULL;
	int i;

	for (i = 0; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--dir") == 0)
			v->dir = argv[i + 1];
		else if (strcmp(argv[i], "--name") == 0)
			v->name = argv[i + 1];
		else if (strcmp(argv[i], "--hostname") == 0)
			v->hostname = argv[i + 1];
		else if (strcmp(argv[i], "--address") == 0)
			v->address = argv[i + 1];
		else if (strcmp(argv[i], "--port") == 0)
			port = argv[i + 1];
		else
			return -1;
	}
	if (i != argc)
		return -1;
	v->port = port ? atoi(port) : 22;
	return 0;
}

static int
vmi_boot(int argc, char **argv)
{
	struct vmi v;
	struct or_err e;
	char msg[VM_MSG_MAX];
	struct pollfd p;
	int rep[2], lockfd, first, pidfd, st;
	size_t i;
	ssize_t n;
	pid_t pid1;

	memset(&v, 0, sizeof(v));
	v.ctl = VM_CTL_FD;
	v.dfd = -1;
	if (vmi_args(&v, argc, argv) < 0 || v.dir == NULL ||
	    !vm_valid_name(v.name) || !vm_valid_hostname(v.hostname) ||
	    !vm_valid_address(v.address) || v.port <= 0 || v.port > 65535)
		vmi_fail(&v, "", "vm-init boot: bad arguments");
	vmi_name = v.name;
	v.dfd = open(v.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (v.dfd < 0)
		vmi_fail(&v, "", "open %s: %s", v.dir, strerror(errno));
	/* Held by this helper and the init (inherited) while the VM runs. */
	lockfd = openat(v.dfd, VM_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lockfd < 0)
		vmi_fail(&v, "", "open %s/%s: %s", v.dir, VM_LOCK,
			 strerror(errno));
	if (flock(lockfd, LOCK_EX | LOCK_NB) < 0)
		vmi_fail(&v, "conflict: ", "VM directory %s is in use by a "
			 "running VM", v.dir);
	vmi_log(LOG_INFO, "booting: %s:%d, hostname %s", v.address, v.port,
		v.hostname);
	first = faccessat(v.dfd, "booted", F_OK, AT_SYMLINK_NOFOLLOW) < 0;

	vmi_hostkeys(&v);
	if (mkdirat(v.dfd, "fs", 0700) < 0 && errno != EEXIST)
		vmi_fail(&v, "", "mkdir fs: %s", strerror(errno));
	if ((mkdirat(v.dfd, "fs/upper", 0755) < 0 && errno != EEXIST) ||
	    (mkdirat(v.dfd, "fs/work", 0700) < 0 && errno != EEXIST))
		vmi_fail(&v, "", "mkdir fs/: %s", strerror(errno));
	for (i = 0; i < sizeof(vm_overlays) / sizeof(*vm_overlays); i++) {
		char up[64], wk[64];

		snprintf(up, sizeof(up), "fs/upper/%s", vm_overlays[i]);
		snprintf(wk, sizeof(wk), "fs/work/%s", vm_overlays[i]);
		if ((mkdirat(v.dfd, up, 0755) < 0 && errno != EEXIST) ||
		    (mkdirat(v.dfd, wk, 0700) < 0 && errno != EEXIST))
			vmi_fail(&v, "", "mkdir %s: %s", up, strerror(errno));
	}

	if (unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC) < 0)
		vmi_fail(&v, "unsupported: ", "unshare(mount, UTS, IPC): %s",
			 strerror(errno));
	if (sethostname(v.hostname, strlen(v.hostname)) < 0)
		vmi_fail(&v, "", "sethostname: %s", strerror(errno));
	vmi_mounts(&v);
	vmi_files(&v, first);
	if (vmi_apply_keys(&v, &e) != OR_OK)
		vmi_fail(&v, "", "ssh-keys: %s", e.message);

	if (unshare(CLONE_NEWPID) < 0)
		vmi_fail(&v, "unsupported: ", "unshare(PID): %s",
			 strerror(errno));
	if (pipe2(rep, O_CLOEXEC) < 0)
		vmi_fail(&v, "", "pipe: %s", strerror(errno));
	pid1 = fork();
	if (pid1 < 0)
		vmi_fail(&v, "", "fork init: %s", strerror(errno));
	if (pid1 == 0) {
		close(rep[0]);
		close(v.ctl);
		vmi_init(&v, rep[1]);
	}
	close(rep[1]);
	p.fd = rep[0];
	p.events = POLLIN;
	p.revents = 0;
	n = -1;
	if (poll(&p, 1, VM_BOOT_TIMEOUT_MS) == 1)
		n = read(rep[0], msg, sizeof(msg) - 1);
	close(rep[0]);
	msg[n > 0 ? n : 0] = '\0';
	if (strcmp(msg, "ok") != 0) {
		kill(pid1, SIGKILL); /* our child, not yet reaped */
		while (waitpid(pid1, &st, 0) < 0 && errno == EINTR)
			;
		if (n <= 0)
			vmi_fail(&v, "", "init died while starting (see the "
				 "console)");
		vmi_fail(&v, "", "%s", msg);
	}
	pidfd = pidfd_open(pid1, 0);
	if (pidfd < 0) {
		kill(pid1, SIGKILL);
		vmi_fail(&v, "", "pidfd_open: %s", strerror(errno));
	}
	if (first && vm_write_str_at(v.dfd, "booted", "", 0600, &e) != OR_OK)
		vmi_log(LOG_WARN, "%s", e.message);
	snprintf(msg, sizeof(msg), "ok %ld", (long)pid1);
	if (vm_msg_send(v.ctl, msg, pidfd) < 0)
		vmi_log(LOG_WARN, "the caller left during the boot");
	vmi_log(LOG_INFO, "running: init is pid %ld", (long)pid1);
	vmi_serve(&v, pid1, pidfd);
}

/* vm_supported's trial: the same unshare and mounts as a boot, on scratch
 * directories, with nothing left behind (the namespace dies with us). */
static int
vmi_probe(int argc, char **argv)
{
	struct vmi v;
	char path[PATH_MAX];
	pid_t pid;
	int st, fd;
	size_t i;
	static const char *const sub[] = {"l", "u", "w", "m"};

	memset(&v, 0, sizeof(v));
	v.ctl = VM_CTL_FD;
	v.name = "probe";
	if (vmi_args(&v, argc, argv) < 0 || v.dir == NULL)
		vmi_fail(&v, "", "vm-init probe: bad arguments");
	vmi_name = "probe";
	if (chdir(v.dir) < 0)
		vmi_fail(&v, "", "chdir %s: %s", v.dir, strerror(errno));
	for (i = 0; i < sizeof(sub) / sizeof(*sub); i++)
		if (mkdir(sub[i], 0700) < 0)
			vmi_fail(&v, "", "mkdir: %s", strerror(errno));
	if (unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC) < 0)
		vmi_fail(&v, "unsupported: ", "unshare(mount, UTS, IPC): %s",
			 strerror(errno));
	vmi_mount(&v, NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	vmi_mount(&v, "overlay", "m", "overlay", 0,
		  "lowerdir=l,upperdir=u,workdir=w");
	fd = open("m/x", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || close(fd) < 0 || access("u/x", F_OK) < 0)
		vmi_fail(&v, "unsupported: ", "overlayfs does not write its "
			 "upper layer here");
	vmi_mount(&v, "tmpfs", "l", "tmpfs", 0, "size=4k");
	if (unshare(CLONE_NEWPID) < 0)
		vmi_fail(&v, "unsupported: ", "unshare(PID): %s",
			 strerror(errno));
	pid = fork();
	if (pid < 0)
		vmi_fail(&v, "", "fork: %s", strerror(errno));
	if (pid == 0)
		_exit(getpid() == 1 && mount("proc", "m", "proc", 0, NULL) == 0
			      ? 0
			      : 1);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		vmi_fail(&v, "unsupported: ", "a new PID namespace cannot "
			 "mount its /proc");
	snprintf(path, sizeof(path), "ok");
	vm_msg_send(v.ctl, path, -1);
	_exit(0);
}

int
vm_init_main(int argc, char **argv)
{
	vmi_setup();
	if (argc >= 3 && strcmp(argv[2], "boot") == 0)
		return vmi_boot(argc - 3, argv + 3);
	if (argc >= 3 && strcmp(argv[2], "probe") == 0)
		return vmi_probe(argc - 3, argv + 3);
	fprintf(stderr, "usage: %s vm-init boot|probe ... (started by the "
		"sandbox, not by hand)\n", argc > 0 ? argv[0] : "outrigger");
	return 2;
}

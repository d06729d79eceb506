/*
 * ssh.c - the SSH client of the step runner (see ssh.h), on libssh2 1.10.
 *
 * The session is non-blocking from the handshake on: every libssh2 call
 * that would block returns LIBSSH2_ERROR_EAGAIN and we wait on the socket
 * in slices of at most 200 ms, checking the attempt's cancelled() flag and
 * a deadline between slices.  That is what lets a cancel stop a long
 * command, and stops a dead VM from hanging the step.
 *
 * Why no pty for commands: a pty would merge stderr into stdout, and the
 * step log must tell them apart.  The price, with libssh2 1.10 (which has
 * no channel signal request): closing the channel on cancel ends our side,
 * but a remote command that ignores its closed pipes may run on until it
 * writes.  The rollout's scripts are idempotent for that reason too.
 *
 * Never logged or put into a fail() message: the private key.  Remote
 * output goes to log() and the stderr tail to fail(); the server replaces
 * the environment's known secrets in both before storing them.
 */
#include "ssh.h"

#include <errno.h>
#include <fcntl.h>
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "host.h"
#include "pki.h"

#define SSH_DEFAULT_TIMEOUT_MS (5L * 60 * 1000)
#define SSH_CONNECT_TRY_MS 5000L  /* one TCP connect try */
#define SSH_OP_TIMEOUT_MS 60000L  /* one handshake, login or SFTP request */
#define SSH_AUTH_RETRY_MS 10000L  /* how long a refused key is tried again */
#define SSH_BACKOFF_MAX_MS 5000L
#define SSH_SLICE_MS 200	  /* longest wait between cancel checks */
#define SSH_TAIL_LINES 8	  /* stderr lines kept for fail() */
#define SSH_TAIL_LINE_MAX 300	  /* bytes of each of them */
#define SSH_CUT_MARK " [line cut]"
/* Longest line we hand to log(): what the host stores, minus the mark and
 * the NUL. */
#define SSH_LINE_MAX (OR_LOG_LINE_MAX - 1 - (sizeof(SSH_CUT_MARK) - 1))

struct ssh_stream {
	char *line;	/* SSH_LINE_MAX + 1 bytes: the line being assembled */
	size_t len;
	int cut;	/* the current line was too long: skip to its end */
	int level;	/* OR_LOG_INFO (stdout) or OR_LOG_WARN (stderr) */
};

struct or_ssh {
	or_host *h;
	int sock;
	LIBSSH2_SESSION *session;
	LIBSSH2_SFTP *sftp;	/* opened at the first upload */
	char where[300];	/* "user@host:port" for messages */
	/* The last lines of stderr of the latest command, for fail(). */
	char tail[SSH_TAIL_LINES][SSH_TAIL_LINE_MAX];
	int tail_next, tail_count;
};

/* ---- time and waiting ---------------------------------------------------- */

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until the socket is ready in the direction libssh2 asked for, at
 * most one slice.  Returns 0 to go on, -1 when cancelled (fail() set) or
 * past deadline (fail() set with code and what). */
static int
ssh_wait(or_ssh *s, long long deadline, const char *what)
{
	struct pollfd p;
	int dir;

	if (step_host_api.cancelled(s->h)) {
		step_host_api.fail(s->h, "cancelled", "cancelled while %s on %s", what, s->where);
		return -1;
	}
	if (now_ms() >= deadline) {
		step_host_api.fail(s->h, "ssh_timeout", "%s on %s timed out", what, s->where);
		return -1;
	}
	dir = libssh2_session_block_directions(s->session);
	memset(&p, 0, sizeof(p));
	p.fd = s->sock;
	if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
		p.events |= POLLIN;
	if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		p.events |= POLLOUT;
	if (p.events == 0)
		p.events = POLLIN;
	if (poll(&p, 1, SSH_SLICE_MS) < 0 && errno != EINTR) {
		step_host_api.fail(s->h, "ssh_io", "%s on %s: poll: %s", what, s->where,
				   strerror(errno));
		return -1;
	}
	return 0;
}

/* libssh2's own words for the session's last error (never key material:
 * its messages are static strings). */
static const char *
ssh_last_error(LIBSSH2_SESSION *session)
{
	char *msg = NULL;

	libssh2_session_last_error(session, &msg, NULL, 0);
	return msg != NULL && msg[0] != '\0' ? msg : "unknown error";
}

/* ---- connecting ---------------------------------------------------------- */

/* One TCP connect try to host:port within try_ms.  Returns the connected
 * socket, or -1 with why filled (errno text, "timed out"). */
static int
tcp_connect(const char *host, int port, long try_ms, char *why, size_t why_size)
{
	struct addrinfo hints, *res = NULL, *ai;
	char portstr[16];
	int fd = -1, rc, err = 0, one = 1, idle = 30, intvl = 10, cnt = 3;
	socklen_t elen;
	struct pollfd p;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc != 0) {
		snprintf(why, why_size, "cannot resolve: %s", gai_strerror(rc));
		return -1;
	}
	snprintf(why, why_size, "no address");
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			snprintf(why, why_size, "socket: %s", strerror(errno));
			continue;
		}
		rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
		if (rc < 0 && errno == EINPROGRESS) {
			memset(&p, 0, sizeof(p));
			p.fd = fd;
			p.events = POLLOUT;
			do
				rc = poll(&p, 1, (int)try_ms);
			while (rc < 0 && errno == EINTR);
			if (rc == 0) {
				snprintf(why, why_size, "connection timed out");
				close(fd);
				fd = -1;
				continue;
			}
			elen = sizeof(err);
			if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
				err = errno;
			rc = err == 0 ? 0 : -1;
			errno = err;
		}
		if (rc == 0) {
			why[0] = '\0';
			break;
		}
		snprintf(why, why_size, "%s", strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd >= 0) {
		/* A VM that vanishes mid-command must end the wait: the
		 * kernel gives up on a silent peer after about a minute. */
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	return fd;
}

static const char *
hostkey_type_name(int type)
{
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA:
		return "ssh-rsa";
	case LIBSSH2_HOSTKEY_TYPE_DSS:
		return "ssh-dss";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
		return "ecdsa-sha2-nistp256";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
		return "ecdsa-sha2-nistp384";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
		return "ecdsa-sha2-nistp521";
	case LIBSSH2_HOSTKEY_TYPE_ED25519:
		return "ssh-ed25519";
	default:
		return "unknown";
	}
}

/* The state key of host:port's pin (the rule is in ssh.h). */
static void
pin_key(const char *host, int port, char *out, size_t size)
{
	char name[64 + 300];
	uint64_t hash = 1469598103934665603ULL;
	size_t i, n;
	char hp[300];

	n = (size_t)snprintf(name, sizeof(name), "ssh_host_key_");
	for (i = 0; host[i] != '\0' && n < sizeof(name) - 1; i++, n++) {
		char c = host[i];

		name[n] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9'))
				  ? c
				  : '-';
	}
	name[n] = '\0';
	if (host[i] == '\0' && n + 1 + 5 <= 63) {
		/* n <= 57 here: the key fits in 64 bytes */
		snprintf(out, size, "%.57s_%d", name, port);
		return;
	}
	snprintf(hp, sizeof(hp), "%s:%d", host, port);
	for (i = 0; hp[i] != '\0'; i++) {
		hash ^= (unsigned char)hp[i];
		hash *= 1099511628211ULL;
	}
	snprintf(out, size, "ssh_host_key_%016llx", (unsigned long long)hash);
}

/* Check the server's host key against the pin, pinning it at first use.
 * 0 when it may be trusted, -1 with fail() set. */
static int
hostkey_check(or_ssh *s, const char *host, int port)
{
	const unsigned char *hash;
	const char *pinned;
	char key[80], seen[160], *b64 = NULL;
	size_t klen = 0, i;
	int type = 0, rc = -1;

	if (libssh2_session_hostkey(s->session, &klen, &type) == NULL) {
		step_host_api.fail(s->h, "ssh_handshake", "%s sent no host key", s->where);
		return -1;
	}
	hash = (const unsigned char *)libssh2_hostkey_hash(s->session,
							  LIBSSH2_HOSTKEY_HASH_SHA256);
	if (hash == NULL) {
		step_host_api.fail(s->h, "ssh_handshake",
				   "cannot compute the SHA-256 fingerprint of %s's host key",
				   s->where);
		return -1;
	}
	b64 = pki_b64_encode(hash, 32);
	if (b64 == NULL) {
		step_host_api.fail(s->h, "nomem", "out of memory");
		return -1;
	}
	for (i = strlen(b64); i > 0 && b64[i - 1] == '='; i--)
		b64[i - 1] = '\0'; /* as ssh-keygen -l prints it */
	snprintf(seen, sizeof(seen), "%s SHA256:%s", hostkey_type_name(type), b64);
	pin_key(host, port, key, sizeof(key));
	pinned = step_host_api.state_get(s->h, key);
	if (pinned == NULL || pinned[0] == '\0') {
		if (step_host_api.state_set(s->h, key, seen) != 0) {
			step_host_api.fail(s->h, "state",
					   "cannot record the host key of %s:%d in the step's state",
					   host, port);
			goto out;
		}
		step_host_api.log(s->h, OR_LOG_INFO, "pinned the host key of %s:%d: %s", host,
				  port, seen);
	} else if (strcmp(pinned, seen) != 0) {
		step_host_api.fail(s->h, "host_key_changed",
				   "the SSH host key of %s:%d changed: pinned %.150s at first "
				   "use, now offered %s; refusing to log in (if the VM was "
				   "rebuilt on purpose, destroy this step first so the new key "
				   "is pinned)",
				   host, port, pinned, seen);
		goto out;
	}
	rc = 0;
out:
	free(b64);
	return rc;
}

/* Ask for ed25519 host keys first: the same choice on every connection,
 * so that the pin stays comparable, and the type sshd always has.  Only
 * names this libssh2 supports are passed: 1.10's method_pref removes
 * unknown ones with an overlapping memcpy (undefined behaviour that ASan
 * reports). */
static void
hostkey_pref(LIBSSH2_SESSION *session)
{
	static const char *const want[] = {"ssh-ed25519", "ecdsa-sha2-nistp256",
					   "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
					   "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"};
	const char **algs = NULL;
	char pref[256] = "";
	size_t i, used = 0;
	int n, j;

	n = libssh2_session_supported_algs(session, LIBSSH2_METHOD_HOSTKEY, &algs);
	if (n <= 0)
		return; /* libssh2's own order, then */
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		for (j = 0; j < n; j++)
			if (strcmp(want[i], algs[j]) == 0) {
				used += (size_t)snprintf(pref + used, sizeof(pref) - used, "%s%s",
							 used > 0 ? "," : "", want[i]);
				break;
			}
	libssh2_free(session, algs);
	if (used > 0)
		libssh2_session_method_pref(session, LIBSSH2_METHOD_HOSTKEY, pref);
}

/* Handshake, host key check and login on a connected socket.  Returns 0,
 * 1 when worth another try (the server went away mid-handshake, or
 * refused the key: *refused says which), or -1 for good (fail() set). */
static int
ssh_session_start(or_ssh *s, const char *host, int port, const char *user,
		  const char *key, long long deadline, int *refused, char *why,
		  size_t why_size)
{
	long long op_deadline = now_ms() + SSH_OP_TIMEOUT_MS;
	int rc;

	if (op_deadline > deadline)
		op_deadline = deadline;
	*refused = 0;
	s->session = libssh2_session_init();
	if (s->session == NULL) {
		step_host_api.fail(s->h, "nomem", "cannot start an SSH session (libssh2)");
		return -1;
	}
	hostkey_pref(s->session);
	libssh2_session_set_blocking(s->session, 0);
	while ((rc = libssh2_session_handshake(s->session, s->sock)) == LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(s, op_deadline, "the SSH handshake") != 0) {
			snprintf(why, why_size, "the SSH handshake timed out");
			return step_host_api.cancelled(s->h) ? -1 : 1;
		}
	if (rc != 0) {
		/* sshd not quite up yet answers and hangs up: try again. */
		snprintf(why, why_size, "SSH handshake failed: %s", ssh_last_error(s->session));
		return 1;
	}
	if (hostkey_check(s, host, port) != 0)
		return -1;
	while ((rc = libssh2_userauth_publickey_frommemory(s->session, user, strlen(user), NULL,
							   0, key, strlen(key), NULL)) ==
	       LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(s, op_deadline, "logging in") != 0) {
			snprintf(why, why_size, "logging in timed out");
			return step_host_api.cancelled(s->h) ? -1 : 1;
		}
	if (rc == 0)
		return 0;
	if (rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED || rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED) {
		*refused = 1;
		snprintf(why, why_size, "the server refused the key for user %s", user);
		return 1;
	}
	if (rc == LIBSSH2_ERROR_SOCKET_SEND || rc == LIBSSH2_ERROR_SOCKET_RECV ||
	    rc == LIBSSH2_ERROR_SOCKET_DISCONNECT || rc == LIBSSH2_ERROR_TIMEOUT) {
		snprintf(why, why_size, "the connection broke while logging in: %s",
			 ssh_last_error(s->session));
		return 1;
	}
	/* Anything else comes from reading the key (libssh2 parses it before
	 * it talks to the server); its message names the format problem,
	 * never the key's content. */
	step_host_api.fail(s->h, "ssh_auth",
			   "cannot log in to %s: the private key is not usable (%s)", s->where,
			   ssh_last_error(s->session));
	return -1;
}

/* Shut down SFTP, say goodbye and free the session.  Blocking, with a
 * 2 s timeout per call: in non-blocking mode libssh2's free functions
 * return EAGAIN and keep their memory. */
static void
ssh_session_end(or_ssh *s)
{
	if (s->session != NULL) {
		libssh2_session_set_timeout(s->session, 2000);
		libssh2_session_set_blocking(s->session, 1);
	}
	if (s->sftp != NULL) {
		libssh2_sftp_shutdown(s->sftp);
		s->sftp = NULL;
	}
	if (s->session != NULL) {
		libssh2_session_disconnect(s->session, "bye");
		libssh2_session_free(s->session);
		s->session = NULL;
	}
	if (s->sock >= 0) {
		close(s->sock);
		s->sock = -1;
	}
}

or_ssh *
ssh_open(or_host *h, const char *host, int port, const char *user,
	 const char *private_key, long timeout_ms)
{
	static int inited;
	long long start = now_ms(), deadline, auth_until = 0;
	long backoff = 250;
	char why[512] = "";
	or_ssh *s = NULL;
	int attempt, rc, refused;

	if (host == NULL || host[0] == '\0' || user == NULL || user[0] == '\0' ||
	    private_key == NULL || private_key[0] == '\0' || port <= 0 || port > 65535 ||
	    strlen(host) > 253 || strlen(user) > 32) {
		step_host_api.fail(h, "invalid",
				   "ssh_open needs a host (at most 253 bytes), a port 1-65535, "
				   "a user (at most 32 bytes) and a private key");
		return NULL;
	}
	if (!inited) {
		if (libssh2_init(0) != 0) {
			step_host_api.fail(h, "ssh_init", "libssh2 failed to initialise");
			return NULL;
		}
		inited = 1;
	}
	deadline = start + (timeout_ms > 0 ? timeout_ms : SSH_DEFAULT_TIMEOUT_MS);
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		step_host_api.fail(h, "nomem", "out of memory");
		return NULL;
	}
	s->h = h;
	s->sock = -1;
	snprintf(s->where, sizeof(s->where), "%s@%s:%d", user, host, port);
	for (attempt = 1;; attempt++) {
		long long left = deadline - now_ms();
		long wait;

		if (step_host_api.cancelled(h)) {
			step_host_api.fail(h, "cancelled", "cancelled while waiting for ssh on %s:%d",
					   host, port);
			goto fail;
		}
		s->sock = tcp_connect(host, port,
				      left < SSH_CONNECT_TRY_MS ? (left > 100 ? (long)left : 100)
								: SSH_CONNECT_TRY_MS,
				      why, sizeof(why));
		if (s->sock >= 0) {
			rc = ssh_session_start(s, host, port, user, private_key, deadline, &refused,
					       why, sizeof(why));
			if (rc == 0)
				break;
			ssh_session_end(s);
			if (rc < 0)
				goto fail;
			if (refused) {
				if (auth_until == 0)
					auth_until = now_ms() + SSH_AUTH_RETRY_MS;
				if (now_ms() >= auth_until || now_ms() >= deadline) {
					step_host_api.fail(h, "ssh_auth",
							   "cannot log in to %s: the server refused "
							   "the key for user %s (tried for %lld s)",
							   s->where, user,
							   (now_ms() - start + 500) / 1000);
					goto fail;
				}
			}
		}
		if (now_ms() >= deadline) {
			step_host_api.fail(h, "ssh_timeout",
					   "ssh on %s:%d did not answer within %ld s (%d attempts; "
					   "last: %s)",
					   host, port, (long)((deadline - start + 500) / 1000), attempt,
					   why);
			goto fail;
		}
		wait = backoff / 2 + random() % (backoff / 2 + 1);
		if (wait > deadline - now_ms())
			wait = (long)(deadline - now_ms());
		step_host_api.log(h, OR_LOG_INFO, "waiting for ssh on %s:%d (attempt %d): %s", host,
				  port, attempt, why);
		if (wait > 0 && step_host_api.sleep_ms(h, wait)) {
			step_host_api.fail(h, "cancelled", "cancelled while waiting for ssh on %s:%d",
					   host, port);
			goto fail;
		}
		backoff = backoff * 2 > SSH_BACKOFF_MAX_MS ? SSH_BACKOFF_MAX_MS : backoff * 2;
	}
	step_host_api.log(h, OR_LOG_INFO, "logged in to %s (attempt %d, %.1f s)", s->where,
			  attempt, (double)(now_ms() - start) / 1000.0);
	return s;
fail:
	ssh_session_end(s);
	free(s);
	return NULL;
}

void
ssh_close(or_ssh *s)
{
	if (s == NULL)
		return;
	ssh_session_end(s);
	free(s);
}

/* ---- upload -------------------------------------------------------------- */

int
ssh_upload(or_ssh *s, const char *path, const void *data, size_t len, int mode)
{
	LIBSSH2_SFTP_HANDLE *f = NULL;
	LIBSSH2_SFTP_ATTRIBUTES attrs;
	long long deadline;
	const char *p = data;
	size_t off = 0;
	ssize_t n;
	int rc = -1, r;

	if (s == NULL)
		return -1;
	if (path == NULL || path[0] == '\0' || (data == NULL && len > 0)) {
		step_host_api.fail(s->h, "invalid", "ssh_upload needs a path and data");
		return -1;
	}
	deadline = now_ms() + SSH_OP_TIMEOUT_MS;
	while (s->sftp == NULL) {
		s->sftp = libssh2_sftp_init(s->session);
		if (s->sftp != NULL)
			break;
		if (libssh2_session_last_errno(s->session) != LIBSSH2_ERROR_EAGAIN) {
			step_host_api.fail(s->h, "ssh_upload", "cannot start SFTP on %s: %s",
					   s->where, ssh_last_error(s->session));
			return -1;
		}
		if (ssh_wait(s, deadline, "starting SFTP") != 0)
			return -1;
	}
	for (;;) {
		f = libssh2_sftp_open_ex(s->sftp, path, (unsigned)strlen(path),
					 LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC,
					 (long)(mode & 07777), LIBSSH2_SFTP_OPENFILE);
		if (f != NULL)
			break;
		if (libssh2_session_last_errno(s->session) != LIBSSH2_ERROR_EAGAIN) {
			unsigned long e = libssh2_sftp_last_error(s->sftp);

			step_host_api.fail(s->h, "ssh_upload", "cannot create %s on %s: %s%s",
					   path, s->where, ssh_last_error(s->session),
					   e == LIBSSH2_FX_PERMISSION_DENIED ? " (permission denied)"
					   : e == LIBSSH2_FX_NO_SUCH_FILE	     ? " (no such directory)"
										     : "");
			return -1;
		}
		if (ssh_wait(s, deadline, "opening the file") != 0)
			return -1;
	}
	while (off < len) {
		n = libssh2_sftp_write(f, p + off, len - off);
		if (n == LIBSSH2_ERROR_EAGAIN) {
			/* Writing is bounded by progress, not by one deadline. */
			if (ssh_wait(s, now_ms() + SSH_OP_TIMEOUT_MS, "uploading") != 0)
				goto out;
			continue;
		}
		if (n < 0) {
			step_host_api.fail(s->h, "ssh_upload", "writing %s on %s failed: %s", path,
					   s->where, ssh_last_error(s->session));
			goto out;
		}
		off += (size_t)n;
	}
	/* The mode given at creation went through the server's umask, and an
	 * existing file kept its own: set it outright. */
	memset(&attrs, 0, sizeof(attrs));
	attrs.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS;
	attrs.permissions = (unsigned long)(mode & 07777);
	deadline = now_ms() + SSH_OP_TIMEOUT_MS;
	while ((r = libssh2_sftp_fsetstat(f, &attrs)) == LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(s, deadline, "setting the file mode") != 0)
			goto out;
	if (r != 0) {
		step_host_api.fail(s->h, "ssh_upload", "cannot set the mode of %s on %s: %s", path,
				   s->where, ssh_last_error(s->session));
		goto out;
	}
	rc = 0;
out:
	deadline = now_ms() + 5000;
	while ((r = libssh2_sftp_close_handle(f)) == LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(s, deadline, "closing the file") != 0)
			break;
	if (r == LIBSSH2_ERROR_EAGAIN) {
		/* Cancelled or timed out: the handle must still be freed. */
		libssh2_session_set_timeout(s->session, 2000);
		libssh2_session_set_blocking(s->session, 1);
		libssh2_sftp_close_handle(f);
		libssh2_session_set_blocking(s->session, 0);
		libssh2_session_set_timeout(s->session, 0);
	}
	if (rc == 0)
		step_host_api.log(s->h, OR_LOG_INFO, "uploaded %s (%zu bytes, mode %04o) to %s",
				  path, len, (unsigned)(mode & 07777), s->where);
	return rc;
}

/* ---- exec ---------------------------------------------------------------- */

static void
tail_add(or_ssh *s, const char *line)
{
	snprintf(s->tail[s->tail_next], SSH_TAIL_LINE_MAX, "%s", line);
	s->tail_next = (s->tail_next + 1) % SSH_TAIL_LINES;
	if (s->tail_count < SSH_TAIL_LINES)
		s->tail_count++;
}

/* Hand the assembled line of st to the log (and the stderr tail). */
static void
stream_emit(or_ssh *s, struct ssh_stream *st, int cut)
{
	size_t len = st->len;

	if (len > 0 && st->line[len - 1] == '\r')
		len--;
	if (cut) {
		/* Drop a UTF-8 sequence the cut left incomplete, so the mark
		 * does not follow half a character. */
		size_t j = len, need;
		unsigned char lead;

		while (j > 0 && ((unsigned char)st->line[j - 1] & 0xC0) == 0x80 && len - j < 3)
			j--;
		if (j > 0) {
			lead = (unsigned char)st->line[j - 1];
			need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
			if (len - (j - 1) < need)
				len = j - 1;
		}
	}
	st->line[len] = '\0';
	step_host_api.log(s->h, st->level, "%s%s", st->line, cut ? SSH_CUT_MARK : "");
	if (st->level == OR_LOG_WARN)
		tail_add(s, st->line);
	st->len = 0;
}

/* Split n bytes of a stream into log lines. */
static void
stream_feed(or_ssh *s, struct ssh_stream *st, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '\n') {
			if (st->cut)
				st->cut = 0;
			else
				stream_emit(s, st, 0);
			continue;
		}
		if (st->cut)
			continue;
		if (st->len == SSH_LINE_MAX) {
			stream_emit(s, st, 1);
			st->cut = 1;
			continue;
		}
		st->line[st->len++] = p[i];
	}
}

static void
stream_flush(or_ssh *s, struct ssh_stream *st)
{
	if (st->len > 0 && !st->cut)
		stream_emit(s, st, 0);
	st->len = 0;
	st->cut = 0;
}

/* "SIGNAME" as libssh2 reports it, to a number for the 128+N status. */
static int
signal_number(const char *name)
{
	static const struct {
		const char *name;
		int num;
	} sigs[] = {{"HUP", 1},	  {"INT", 2},  {"QUIT", 3}, {"ILL", 4},	  {"ABRT", 6},
		    {"FPE", 8},	  {"KILL", 9}, {"SEGV", 11}, {"PIPE", 13}, {"ALRM", 14},
		    {"TERM", 15}, {"USR1", 10}, {"USR2", 12}};
	size_t i;

	for (i = 0; name != NULL && i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (strcmp(name, sigs[i].name) == 0)
			return sigs[i].num;
	return 127;
}

/* The command as it may appear in a message: its first line, cut. */
static void
command_label(const char *command, char *out, size_t size)
{
	size_t n = strcspn(command, "\n");

	if (n > 80)
		n = 80;
	snprintf(out, size, "%.*s%s", (int)n, command, command[n] != '\0' ? " ..." : "");
}

int
ssh_exec(or_ssh *s, const char *command)
{
	LIBSSH2_CHANNEL *ch = NULL;
	struct ssh_stream out = {NULL, 0, 0, OR_LOG_INFO}, err = {NULL, 0, 0, OR_LOG_WARN};
	char buf[16384], label[100], *signame = NULL;
	struct buf msg;
	long long deadline;
	int rc = -1, r, status, i, done_out = 0, done_err = 0;
	ssize_t n;

	if (s == NULL)
		return -1;
	if (command == NULL || command[0] == '\0') {
		step_host_api.fail(s->h, "invalid", "ssh_exec needs a command");
		return -1;
	}
	command_label(command, label, sizeof(label));
	buf_init(&msg, 4096);
	s->tail_next = s->tail_count = 0;
	out.line = malloc(SSH_LINE_MAX + 1);
	err.line = malloc(SSH_LINE_MAX + 1);
	if (out.line == NULL || err.line == NULL) {
		step_host_api.fail(s->h, "nomem", "out of memory");
		goto out;
	}
	deadline = now_ms() + SSH_OP_TIMEOUT_MS;
	while ((ch = libssh2_channel_open_session(s->session)) == NULL) {
		if (libssh2_session_last_errno(s->session) != LIBSSH2_ERROR_EAGAIN) {
			step_host_api.fail(s->h, "ssh_exec", "cannot open a channel on %s: %s",
					   s->where, ssh_last_error(s->session));
			goto out;
		}
		if (ssh_wait(s, deadline, "opening a channel") != 0)
			goto out;
	}
	while ((r = libssh2_channel_exec(ch, command)) == LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(s, deadline, "starting the command") != 0)
			goto out;
	if (r != 0) {
		step_host_api.fail(s->h, "ssh_exec", "cannot run `%s` on %s: %s", label, s->where,
				   ssh_last_error(s->session));
		goto out;
	}
	/* Read both streams as data comes, in no fixed order, so that a
	 * command writing much to one stream never blocks on the other. */
	while (!done_out || !done_err) {
		int progressed = 0;

		if (!done_out) {
			n = libssh2_channel_read(ch, buf, sizeof(buf));
			if (n > 0) {
				stream_feed(s, &out, buf, (size_t)n);
				progressed = 1;
			} else if (n == 0) {
				done_out = libssh2_channel_eof(ch);
			} else if (n != LIBSSH2_ERROR_EAGAIN) {
				step_host_api.fail(s->h, "ssh_exec", "reading the output of `%s` on %s: %s",
						   label, s->where, ssh_last_error(s->session));
				goto out;
			}
		}
		if (!done_err) {
			n = libssh2_channel_read_stderr(ch, buf, sizeof(buf));
			if (n > 0) {
				stream_feed(s, &err, buf, (size_t)n);
				progressed = 1;
			} else if (n == 0) {
				done_err = libssh2_channel_eof(ch);
			} else if (n != LIBSSH2_ERROR_EAGAIN) {
				step_host_api.fail(s->h, "ssh_exec", "reading the errors of `%s` on %s: %s",
						   label, s->where, ssh_last_error(s->session));
				goto out;
			}
		}
		if (progressed)
			continue;
		/* No deadline for the command itself: cancel ends it, TCP
		 * keepalive ends a dead connection. */
		if (ssh_wait(s, now_ms() + SSH_SLICE_MS * 10, "running a command") != 0) {
			if (step_host_api.cancelled(s->h)) {
				stream_flush(s, &out);
				stream_flush(s, &err);
				step_host_api.log(s->h, OR_LOG_WARN,
						  "cancelled: closing the channel of `%s` on %s", label,
						  s->where);
				step_host_api.fail(s->h, "cancelled", "cancelled while `%s` ran on %s",
						   label, s->where);
			}
			goto out;
		}
	}
	stream_flush(s, &out);
	stream_flush(s, &err);
	deadline = now_ms() + SSH_OP_TIMEOUT_MS;
	while ((r = libssh2_channel_close(ch)) == LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(s, deadline, "closing the channel") != 0)
			goto out;
	while (r == 0 && (r = libssh2_channel_wait_closed(ch)) == LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(s, deadline, "closing the channel") != 0)
			goto out;
	status = libssh2_channel_get_exit_status(ch);
	if (libssh2_channel_get_exit_signal(ch, &signame, NULL, NULL, NULL, NULL, NULL) == 0 &&
	    signame != NULL) {
		status = 128 + signal_number(signame);
		step_host_api.log(s->h, OR_LOG_WARN, "`%s` on %s was killed by SIG%s", label,
				  s->where, signame);
	}
	if (status < 0 || status > 255)
		status = 255;
	if (status != 0) {
		buf_printf(&msg, "`%s` on %s exited with status %d", label, s->where, status);
		if (s->tail_count > 0)
			buf_append_str(&msg, "; last lines of stderr:");
		for (i = 0; i < s->tail_count; i++) {
			int k = (s->tail_next - s->tail_count + i + SSH_TAIL_LINES) % SSH_TAIL_LINES;

			buf_printf(&msg, " | %s", s->tail[k]);
		}
		step_host_api.fail(s->h, "exit_status", "%s", buf_str(&msg));
	}
	rc = status;
out:
	if (ch != NULL) {
		/* On the error paths the channel is still open.  In
		 * non-blocking mode libssh2 would leave it (and later the
		 * whole session) unfreed on EAGAIN: free it blocking, with a
		 * short timeout for the server's answer (sshd answers a close
		 * only once the command has exited, which after a cancel may
		 * be never). */
		libssh2_session_set_timeout(s->session, rc < 0 ? 500 : 2000);
		libssh2_session_set_blocking(s->session, 1);
		if (rc < 0)
			libssh2_channel_close(ch);
		libssh2_channel_free(ch);
		libssh2_session_set_blocking(s->session, 0);
		libssh2_session_set_timeout(s->session, 0);
	}
	if (signame != NULL)
		libssh2_free(s->session, signame);
	free(out.line);
	free(err.line);
	buf_free(&msg);
	return rc;
}

/*
 * ssh.h - the product's SSH client (libssh2), behind the ssh_* entries of
 * struct or_host_api (see include/outrigger/plugin.h for the promise each
 * makes to plugins).  Lives in the step runner only; every call belongs to
 * the attempt h it was opened for and reports through step_host_api (log,
 * fail, state, cancelled).
 *
 * What this client must never do: put the private key, or anything derived
 * from it, into a log line, a fail() message or the step's state; log in to
 * a host whose key differs from the one pinned for it.
 */
#ifndef SSH_H
#define SSH_H

#include <stddef.h>

#include "outrigger/plugin.h"

/* Connect to host:port, retrying refused and timed-out connections (a VM
 * that is still booting) with backoff until timeout_ms passes (0: 5
 * minutes); each wait is logged ("waiting for ssh on H:P (attempt N): ...")
 * and ends early when the attempt is cancelled.  The host key is pinned in
 * the step's state under "ssh_host_key_<host>_<port>" (value "TYPE
 * SHA256:BASE64") at first use; a different key later fails with code
 * "host_key_changed".  A pin whose value is "" counts as none: a plugin
 * that knows the VM is gone (its destroy) writes "" so that a new VM at
 * the same address is pinned afresh.  <host> is the host with every byte
 * other than [A-Za-z0-9] replaced by '-'; when the key would be longer
 * than the 63 bytes state keys may have, it is "ssh_host_key_" and 16 hex
 * digits of the FNV-1a 64 hash of "host:port".  Then public-key login as user with private_key (an
 * OpenSSH or PEM private key, in memory, unencrypted); a refused key is
 * tried a few more times for up to 10 s (a new VM's agent may still be
 * adding it), then fails with code "ssh_auth".
 * Returns a handle the caller closes with ssh_close, or NULL with fail()
 * set (codes "invalid", "ssh_timeout", "ssh_handshake", "host_key_changed",
 * "ssh_auth", "state", "cancelled"). */
or_ssh *ssh_open(or_host *h, const char *host, int port, const char *user,
		 const char *private_key, long timeout_ms);

/* Disconnect and free s.  NULL is a no-op. */
void ssh_close(or_ssh *s);

/* Write len bytes of data to path on the remote host over SFTP: created
 * if absent, truncated and overwritten if present, and left with exactly
 * mode (& 07777, whatever the server's umask).  A relative path is
 * relative to the user's home directory.  0, or -1 with fail() set
 * ("ssh_upload", "cancelled"). */
int ssh_upload(or_ssh *s, const char *path, const void *data, size_t len, int mode);

/* Run command (through the user's login shell, as sshd does) without a
 * terminal.  Each line of its stdout goes to the step log at info level
 * and each line of its stderr at warn level as soon as it arrives; lines
 * longer than the log takes are cut and marked.  Returns the exit status
 * (0..255; 128+N when a signal N ended it), or -1 when it could not be
 * run or the attempt was cancelled (the channel is then closed; fail() is
 * set, "ssh_exec" or "cancelled").  A non-zero status also sets fail()
 * with code "exit_status" and the last lines of stderr, so that a plugin
 * that returns OR_STATUS_FAILED on it reports why; a plugin that does not
 * mind the status calls fail() again or returns OK. */
int ssh_exec(or_ssh *s, const char *command);

#endif

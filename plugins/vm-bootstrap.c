/*
 * vm-bootstrap.c - the rollout step that joins the Compute Engine VM to the
 * mesh: it logs in over SSH, copies the VM's bundle into the login user's
 * home directory, then writes and runs a bootstrap script that installs
 * Istio's sidecar package, puts the bundle's files where the sidecar reads
 * them, restarts the sidecar and starts the app container.  Built like a
 * third party's plugin: include/outrigger/plugin.h and libc only.
 *
 * What the step does (the tutorial's gce-script.sh, corrected for istiod;
 * ../shared/notes/istio-vm.md sections 1 and 4.4):
 *
 *   1. SSH to `host` as `ssh_user` with the private key in the secret
 *      named `ssh_key_ref`, waiting up to `timeout_ms` (5 min) for a VM
 *      that is still booting.  The VM's host key is pinned at first use.
 *   2. Upload every file of the bundle -- the secret named `bundle_ref`, a
 *      JSON object {"file name": "content"} that the vm-files step made --
 *      to the home directory (key.pem and istio-token mode 0600, the rest
 *      0644), then the script as outrigger-bootstrap.sh (0700).
 *        legacy (Istio 1.6): cluster.env, key.pem, cert-chain.pem,
 *                            root-cert.pem, hosts (optional: else the
 *                            `istiod_ip` and `istiod_host` inputs)
 *        current (1.20+):    cluster.env, mesh.yaml, root-cert.pem,
 *                            istio-token, hosts
 *   3. Run it (`sh outrigger-bootstrap.sh`), its output streamed to the
 *      step log.  The script, `set -eu`, as the ssh user with `sudo -n`:
 *      a. Docker: nothing when `command -v docker` finds one, else
 *         `apt-get install -y docker.io` (refused when install_docker is
 *         false).
 *      b. The sidecar: unless istio-sidecar of this version is installed
 *         already, download the package from
 *         https://storage.googleapis.com/istio-release/releases/V/deb/istio-sidecar.deb
 *         (rewritten through the provider's mirror: the sandbox's, or an
 *         air-gapped install's) and its .sha256, check it, `sudo dpkg -i`.
 *      c. Files: legacy /etc/certs/{root-cert.pem,cert-chain.pem,key.pem},
 *         /var/lib/istio/envoy/cluster.env; current /etc/certs/root-cert.pem,
 *         /var/run/secrets/tokens/istio-token, /var/lib/istio/envoy/cluster.env,
 *         /etc/istio/config/mesh.  `install` replaces them in place.
 *      d. /etc/hosts: each line of the bundle's hosts file ("IP
 *         istiod.istio-system.svc") replaces any line naming the same
 *         host, so a re-run (or a new gateway IP) leaves exactly one.
 *      e. `chown -R istio-proxy` of what the sidecar reads (legacy:
 *         /etc/certs /var/lib/istio/envoy; current also /etc/istio/config,
 *         /etc/istio/proxy, /var/run/secrets).
 *      f. `sudo systemctl restart istio`, only when a file changed or the
 *         sidecar is not active (files are installed only when they differ).
 *      g. The app: left alone when a container NAME runs IMAGE already;
 *         else `docker rm -f NAME`, then
 *         `docker run -d --name NAME --restart=always -p PORT:PORT IMAGE`.
 *      h. Checks: `systemctl is-active istio` must say active, and still
 *         3 s later (a sidecar that istiod refuses exits and fails); the
 *         container must be listed by `docker ps`.
 *      Every phase is announced ("bootstrap: installing the sidecar ...");
 *      a failing one prints "bootstrap: failed while PHASE (exit N)" on
 *      stderr, with the sidecar's own log when the sidecar is the problem.
 *   4. Outputs: sidecar = "active", app_container = NAME, istio_version.
 *
 * Running the step again is safe: every action of the script converges
 * (files replaced, hosts lines replaced, the package kept when its version
 * matches, the container replaced).  A script that fails fails the step
 * (the host's message names the exit status and the last lines of
 * stderr); a connection lost while it ran is retried, since re-running is
 * harmless.
 *
 * Destroy: when the VM still answers (within timeout_ms, at most 60 s), `docker rm -f NAME`,
 * `systemctl stop istio` and the uploaded files are removed; a VM that is
 * gone or does not let us in is fine (the vm step deletes it anyway).  The
 * host key pin is cleared so that a new VM at the same address is pinned
 * afresh.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outrigger/plugin.h"
#include "rollout.h" /* known(), later(): a plan before the VM exists */

#define VB_SCRIPT "outrigger-bootstrap.sh"
#define VB_DEFAULT_TIMEOUT_MS 300000L
#define VB_DESTROY_TIMEOUT_MS 60000L
#define VB_MAX_FILES 16
#define VB_SIDECAR_URL "https://storage.googleapis.com/istio-release/releases/%s/deb/istio-sidecar.deb"

/* ---- a growable string ----------------------------------------------------- */

struct vb_str {
	char *p;
	size_t len, cap;
	int oom;
};

static void vb_printf(struct vb_str *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
vb_printf(struct vb_str *s, const char *fmt, ...)
{
	va_list ap;
	int n;
	char *q;

	if (s->oom)
		return;
	for (;;) {
		size_t room = s->cap - s->len;

		va_start(ap, fmt);
		n = vsnprintf(s->p != NULL ? s->p + s->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			s->oom = 1;
			return;
		}
		if ((size_t)n < room) {
			s->len += (size_t)n;
			return;
		}
		q = realloc(s->p, s->cap + (size_t)n + 4096);
		if (q == NULL) {
			s->oom = 1;
			return;
		}
		s->p = q;
		s->cap += (size_t)n + 4096;
	}
}

/* value in single quotes for sh ('\'' for a quote inside). */
static void
vb_quote(struct vb_str *s, const char *v)
{
	vb_printf(s, "'");
	for (; *v != '\0'; v++) {
		if (*v == '\'')
			vb_printf(s, "'\\''");
		else
			vb_printf(s, "%c", *v);
	}
	vb_printf(s, "'");
}

/* ---- the bundle: a JSON object of strings ------------------------------------ */

struct vb_file {
	char *name;
	char *data;
	size_t len;
};

struct vb_bundle {
	struct vb_file f[VB_MAX_FILES];
	int n;
};

static void
vb_bundle_free(struct vb_bundle *b)
{
	int i;

	for (i = 0; i < b->n; i++) {
		free(b->f[i].name);
		if (b->f[i].data != NULL) {
			/* The bundle holds keys and tokens: wipe them. */
			volatile char *p = b->f[i].data;
			size_t k;

			for (k = 0; k < b->f[i].len; k++)
				p[k] = 0;
			free(b->f[i].data);
		}
	}
	b->n = 0;
}

static const char *
vb_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static int
vb_hex4(const char *p, unsigned *out)
{
	unsigned v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* Parse the JSON string at *pp (at its opening quote) into a malloc'd
 * buffer; *pp moves past it.  NULL when malformed. */
static char *
vb_json_string(const char **pp, size_t *len_out)
{
	const char *p = *pp;
	size_t cap = 64, len = 0;
	char *out, *q;
	unsigned cp, lo;

	if (*p != '"')
		return NULL;
	p++;
	out = malloc(cap);
	if (out == NULL)
		return NULL;
	while (*p != '"') {
		if (*p == '\0' || (unsigned char)*p < 0x20)
			goto bad;
		if (len + 5 > cap) {
			cap *= 2;
			q = realloc(out, cap);
			if (q == NULL)
				goto bad;
			out = q;
		}
		if (*p != '\\') {
			out[len++] = *p++;
			continue;
		}
		p++;
		switch (*p) {
		case '"': case '\\': case '/':
			out[len++] = *p;
			break;
		case 'b': out[len++] = '\b'; break;
		case 'f': out[len++] = '\f'; break;
		case 'n': out[len++] = '\n'; break;
		case 'r': out[len++] = '\r'; break;
		case 't': out[len++] = '\t'; break;
		case 'u':
			if (vb_hex4(p + 1, &cp) != 0)
				goto bad;
			p += 4;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (p[1] != '\\' || p[2] != 'u' || vb_hex4(p + 3, &lo) != 0 ||
				    lo < 0xDC00 || lo > 0xDFFF)
					goto bad;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				p += 6;
			} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
				goto bad;
			}
			if (cp == 0)
				goto bad; /* files are text; a NUL is a mistake */
			if (cp < 0x80) {
				out[len++] = (char)cp;
			} else if (cp < 0x800) {
				out[len++] = (char)(0xC0 | (cp >> 6));
				out[len++] = (char)(0x80 | (cp & 0x3F));
			} else if (cp < 0x10000) {
				out[len++] = (char)(0xE0 | (cp >> 12));
				out[len++] = (char)(0x80 | ((cp >> 6) & 0x3F));
				out[len++] = (char)(0x80 | (cp & 0x3F));
			} else {
				out[len++] = (char)(0xF0 | (cp >> 18));
				out[len++] = (char)(0x80 | ((cp >> 12) & 0x3F));
				out[len++] = (char)(0x80 | ((cp >> 6) & 0x3F));
				out[len++] = (char)(0x80 | (cp & 0x3F));
			}
			break;
		default:
			goto bad;
		}
		p++;
	}
	out[len] = '\0';
	*pp = p + 1;
	*len_out = len;
	return out;
bad:
	free(out);
	return NULL;
}

/* A bundle file name: letters, digits, '.', '-', '_', not starting with
 * '.', and never the script's own name. */
static int
vb_name_ok(const char *n)
{
	size_t i;

	if (n[0] == '\0' || n[0] == '.' || strlen(n) > 64 || strcmp(n, VB_SCRIPT) == 0)
		return 0;
	for (i = 0; n[i] != '\0'; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= 'A' && n[i] <= 'Z') ||
		      (n[i] >= '0' && n[i] <= '9') || n[i] == '.' || n[i] == '-' || n[i] == '_'))
			return 0;
	return 1;
}

/* Parse text into b.  0, or -1 with why (never quoting the content). */
static int
vb_bundle_parse(const char *text, struct vb_bundle *b, char *why, size_t size)
{
	const char *p = vb_ws(text);
	char *name, *data;
	size_t nlen, dlen;
	int i;

	memset(b, 0, sizeof(*b));
	if (*p != '{') {
		snprintf(why, size, "is not a JSON object");
		return -1;
	}
	p = vb_ws(p + 1);
	if (*p == '}') {
		snprintf(why, size, "has no files");
		return -1;
	}
	for (;;) {
		name = vb_json_string(&p, &nlen);
		if (name == NULL) {
			snprintf(why, size, "is not a JSON object of strings");
			goto bad;
		}
		if (!vb_name_ok(name) || b->n == VB_MAX_FILES) {
			snprintf(why, size, b->n == VB_MAX_FILES ? "has more than %d files"
								 : "has a file name that is not a plain name",
				 VB_MAX_FILES);
			free(name);
			goto bad;
		}
		for (i = 0; i < b->n; i++)
			if (strcmp(b->f[i].name, name) == 0) {
				snprintf(why, size, "names a file twice");
				free(name);
				goto bad;
			}
		p = vb_ws(p);
		if (*p != ':') {
			snprintf(why, size, "is not a JSON object of strings");
			free(name);
			goto bad;
		}
		p = vb_ws(p + 1);
		data = vb_json_string(&p, &dlen);
		if (data == NULL) {
			snprintf(why, size, "has a value of %.64s that is not a string", name);
			free(name);
			goto bad;
		}
		b->f[b->n].name = name;
		b->f[b->n].data = data;
		b->f[b->n].len = dlen;
		b->n++;
		p = vb_ws(p);
		if (*p == ',') {
			p = vb_ws(p + 1);
			continue;
		}
		if (*p == '}' && *vb_ws(p + 1) == '\0')
			return 0;
		snprintf(why, size, "is not a JSON object of strings");
		goto bad;
	}
bad:
	vb_bundle_free(b);
	return -1;
}

static const struct vb_file *
vb_find(const struct vb_bundle *b, const char *name)
{
	int i;

	for (i = 0; i < b->n; i++)
		if (strcmp(b->f[i].name, name) == 0)
			return &b->f[i];
	return NULL;
}

/* ---- inputs ---------------------------------------------------------------- */

/* Only these characters: what each value may hold once it is in the
 * script (it is quoted as well; this keeps surprises out of the log). */
static int
vb_chars_ok(const char *v, const char *extra, size_t max)
{
	size_t i;

	if (v == NULL || v[0] == '\0' || strlen(v) > max)
		return 0;
	for (i = 0; v[i] != '\0'; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
		      (v[i] >= '0' && v[i] <= '9') || strchr(extra, v[i]) != NULL))
			return 0;
	return 1;
}

/* An Istio release: 1.6.5, 1.29.0, 1.24.0-beta.1. */
static int
vb_version_ok(const char *v)
{
	int a, b, c, n = 0;

	if (!vb_chars_ok(v, ".-", 40))
		return 0;
	if (sscanf(v, "%d.%d.%d%n", &a, &b, &c, &n) != 3)
		return 0;
	return v[n] == '\0' || (v[n] == '-' && vb_chars_ok(v + n + 1, ".", 20));
}

static int
vb_ipv4_ok(const char *v)
{
	unsigned a, b, c, d;
	int n = 0;

	if (v == NULL || sscanf(v, "%u.%u.%u.%u%n", &a, &b, &c, &d, &n) != 4 || v[n] != '\0')
		return 0;
	return a < 256 && b < 256 && c < 256 && d < 256 && vb_chars_ok(v, ".", 15);
}

struct vb_in {
	const char *flow, *host, *user, *key_ref, *bundle_ref, *version, *image, *name;
	const char *istiod_ip, *istiod_host;
	long port, app_port, timeout_ms;
	int install_docker;
	int legacy;
};

static long
vb_num(or_host *h, const struct or_host_api *api, const char *key, long dflt)
{
	const char *v = api->input(h, key);
	char *end;
	long n;

	if (v == NULL || v[0] == '\0')
		return dflt;
	n = strtol(v, &end, 10);
	return *end == '\0' ? n : -1;
}

/* Read and check the inputs; 0, or -1 with fail() set. */
static int
vb_inputs(or_host *h, const struct or_host_api *api, struct vb_in *in, int for_destroy)
{
	const char *d;

	memset(in, 0, sizeof(*in));
	in->flow = api->input(h, "flow");
	in->host = api->input(h, "host");
	in->user = api->input(h, "ssh_user");
	in->key_ref = api->input(h, "ssh_key_ref");
	in->bundle_ref = api->input(h, "bundle_ref");
	in->version = api->input(h, "istio_version");
	in->image = api->input(h, "app_image");
	in->name = api->input(h, "app_name");
	in->istiod_ip = api->input(h, "istiod_ip");
	in->istiod_host = api->input(h, "istiod_host");
	in->port = vb_num(h, api, "ssh_port", 22);
	in->app_port = vb_num(h, api, "app_port", 3550);
	in->timeout_ms = vb_num(h, api, "timeout_ms", VB_DEFAULT_TIMEOUT_MS);
	d = api->input(h, "install_docker");
	in->install_docker = d == NULL || strcmp(d, "false") != 0;
	if (in->name == NULL || in->name[0] == '\0')
		in->name = "productcatalogservice";
	if (in->istiod_host == NULL || in->istiod_host[0] == '\0')
		in->istiod_host = "istiod.istio-system.svc";

	if (in->flow == NULL || (strcmp(in->flow, "legacy") != 0 && strcmp(in->flow, "current") != 0)) {
		api->fail(h, "input", "flow must be \"legacy\" or \"current\"");
		return -1;
	}
	in->legacy = strcmp(in->flow, "legacy") == 0;
	if (!later(h, api, in->host) && !vb_chars_ok(in->host, ".-:", 253)) {
		api->fail(h, "input", "host must be the VM's IP address or DNS name");
		return -1;
	}
	if (!later(h, api, in->user) &&
	    (!vb_chars_ok(in->user, "_-.", 32) || in->user[0] == '-')) {
		api->fail(h, "input", "ssh_user must be a login name (letters, digits, '_', '-', '.')");
		return -1;
	}
	if (!later(h, api, in->key_ref) && (in->key_ref == NULL || in->key_ref[0] == '\0')) {
		api->fail(h, "input", "ssh_key_ref must name the secret holding the SSH key");
		return -1;
	}
	if (in->port < 1 || in->port > 65535 || in->app_port < 1 || in->app_port > 65535) {
		api->fail(h, "input", "ssh_port and app_port must be 1-65535");
		return -1;
	}
	if (in->timeout_ms < 1000) {
		api->fail(h, "input", "timeout_ms must be at least 1000");
		return -1;
	}
	if (!vb_chars_ok(in->name, "_.-", 63)) {
		api->fail(h, "input", "app_name must be a container name (letters, digits, '_', '.', '-')");
		return -1;
	}
	if (for_destroy)
		return 0;
	if (!later(h, api, in->bundle_ref) &&
	    (in->bundle_ref == NULL || in->bundle_ref[0] == '\0')) {
		api->fail(h, "input", "bundle_ref must name the secret holding the VM's files");
		return -1;
	}
	if (later(h, api, in->version)) {
		/* a plan before the step that makes it */
	} else if (!vb_version_ok(in->version)) {
		api->fail(h, "input", "istio_version must be a release such as 1.6.5 or 1.29.0");
		return -1;
	} else if (in->legacy && strncmp(in->version, "1.6.", 4) != 0) {
		api->fail(h, "input", "the legacy flow needs an Istio 1.6.x release, not %s",
			  in->version);
		return -1;
	}
	if (!later(h, api, in->image) && !vb_chars_ok(in->image, "._-/:@", 255)) {
		api->fail(h, "input", "app_image must be a container image reference");
		return -1;
	}
	if (in->istiod_ip != NULL && in->istiod_ip[0] != '\0' && !later(h, api, in->istiod_ip) &&
	    !vb_ipv4_ok(in->istiod_ip)) {
		api->fail(h, "input", "istiod_ip must be an IPv4 address");
		return -1;
	}
	if (!later(h, api, in->istiod_host) && !vb_chars_ok(in->istiod_host, ".-", 253)) {
		api->fail(h, "input", "istiod_host must be a DNS name");
		return -1;
	}
	return 0;
}

/* ---- the script ------------------------------------------------------------ */

/* The /etc/hosts lines to ensure: the bundle's hosts file, or (legacy, no
 * file) istiod_ip + istiod_host.  Appends one `hosts_line 'IP' 'NAME...'`
 * call per line to s.  0, or -1 with why. */
static int
vb_hosts_lines(const struct vb_in *in, const struct vb_bundle *b, struct vb_str *s, char *why,
	       size_t size)
{
	const struct vb_file *f = vb_find(b, "hosts");
	const char *p, *e;
	char line[512], ip[64], names[400];
	int count = 0;
	size_t n;

	if (f == NULL || f->len == 0) {
		if (in->legacy && in->istiod_ip != NULL && in->istiod_ip[0] != '\0') {
			vb_printf(s, "hosts_line ");
			vb_quote(s, in->istiod_ip);
			vb_printf(s, " ");
			vb_quote(s, in->istiod_host);
			vb_printf(s, "\n");
			return 0;
		}
		snprintf(why, size,
			 f == NULL ? "the bundle has no hosts file%s"
				   : "the bundle's hosts file is empty%s",
			 in->legacy ? " and istiod_ip is not set"
				    : " (istioctl writes it empty when the east-west gateway "
				      "has no IP yet)");
		return -1;
	}
	for (p = f->data; *p != '\0'; p = *e != '\0' ? e + 1 : e) {
		e = strchr(p, '\n');
		if (e == NULL)
			e = p + strlen(p);
		n = (size_t)(e - p);
		if (n >= sizeof(line)) {
			snprintf(why, size, "the bundle's hosts file has a line too long");
			return -1;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
			line[--n] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		names[0] = '\0';
		if (sscanf(line, "%63s %399[^\n]", ip, names) != 2 || !vb_ipv4_ok(ip) ||
		    !vb_chars_ok(names, ".- \t", 399)) {
			snprintf(why, size,
				 "the bundle's hosts file has a line that is not \"IP NAME...\"");
			return -1;
		}
		vb_printf(s, "hosts_line ");
		vb_quote(s, ip);
		vb_printf(s, " ");
		vb_quote(s, names);
		vb_printf(s, "\n");
		count++;
	}
	if (count == 0) {
		snprintf(why, size, "the bundle's hosts file names no host");
		return -1;
	}
	return 0;
}

/* The fixed part of the script: helpers every flow uses. */
static const char vb_script_head[] =
	"set -eu\n"
	"cd \"$HOME\"\n"
	"phase=starting\n"
	"step() { phase=$1; printf 'bootstrap: %s\\n' \"$1\"; }\n"
	"on_exit() {\n"
	"\trc=$?\n"
	"\tif [ \"$rc\" -ne 0 ]; then\n"
	"\t\tprintf 'bootstrap: failed while %s (exit %s)\\n' \"$phase\" \"$rc\" >&2\n"
	"\tfi\n"
	"}\n"
	"trap on_exit EXIT\n"
	"fetch() {\n"
	"\tif command -v curl >/dev/null 2>&1; then\n"
	"\t\tcurl -fsSL --retry 5 --retry-connrefused -o \"$2\" \"$1\"\n"
	"\telse\n"
	"\t\twget -q -t 5 -O \"$2\" \"$1\"\n"
	"\tfi\n"
	"}\n"
	"# One line per host name: a line naming the same host is replaced, so a\n"
	"# re-run (or a new gateway IP) leaves exactly one.  /etc/hosts is\n"
	"# rewritten in place (tee), never replaced by another file.\n"
	/* Install a file only when it differs, so that a re-run over a VM
	 * that is as it should be changes nothing and restarts nothing. */
	"changed=0\n"
	"place() {\n"
	"\tif sudo -n cmp -s \"$1\" \"$2\"; then return 0; fi\n"
	"\tsudo -n install -m \"$3\" \"$1\" \"$2\"\n"
	"\tprintf 'bootstrap: placed %s\\n' \"$2\"\n"
	"\tchanged=1\n"
	"}\n"
	"hosts_line() {\n"
	"\tif grep -qxF \"$1 $2\" /etc/hosts; then\n"
	"\t\tprintf 'bootstrap: /etc/hosts already maps %s to %s\\n' \"$2\" \"$1\"\n"
	"\t\treturn 0\n"
	"\tfi\n"
	"\tcp /etc/hosts hosts.outrigger.new\n"
	"\tfor n in $2; do\n"
	"\t\tawk -v n=\"$n\" '{ for (i = 2; i <= NF; i++) if ($i == n) next; print }' \\\n"
	"\t\t\thosts.outrigger.new > hosts.outrigger.tmp\n"
	"\t\tmv hosts.outrigger.tmp hosts.outrigger.new\n"
	"\tdone\n"
	"\tprintf '%s %s\\n' \"$1\" \"$2\" >> hosts.outrigger.new\n"
	"\tsudo -n tee /etc/hosts < hosts.outrigger.new > /dev/null\n"
	"\trm -f hosts.outrigger.new\n"
	"\tchanged=1\n"
	"\tprintf 'bootstrap: /etc/hosts maps %s to %s\\n' \"$2\" \"$1\"\n"
	"}\n";

/* Build the whole script for in and the bundle.  NULL with why on a bad
 * bundle; the caller frees the result. */
static char *
vb_script(const struct vb_in *in, const struct vb_bundle *b, const char *deb_url, char *why,
	  size_t size)
{
	static const char *const legacy_files[] = {"cluster.env", "key.pem", "cert-chain.pem",
						   "root-cert.pem", NULL};
	static const char *const current_files[] = {"cluster.env", "mesh.yaml", "root-cert.pem",
						    "istio-token", NULL};
	const char *const *need = in->legacy ? legacy_files : current_files;
	struct vb_str s = {0};
	int i;

	for (i = 0; need[i] != NULL; i++)
		if (vb_find(b, need[i]) == NULL || vb_find(b, need[i])->len == 0) {
			snprintf(why, size,
				 "the VM bundle has no %s (the %s flow needs %s, %s, %s and %s)",
				 need[i], in->flow, need[0], need[1], need[2], need[3]);
			return NULL;
		}
	vb_printf(&s, "#!/bin/sh\n# Written by Outrigger's vm-bootstrap step: the %s flow, "
		      "Istio %s.\n# Running it again changes nothing that matters.\n",
		  in->flow, in->version);
	vb_printf(&s, "%s", vb_script_head);

	vb_printf(&s, "\nstep 'checking for docker'\n"
		      "if command -v docker >/dev/null 2>&1; then\n"
		      "\tprintf 'bootstrap: docker is installed: %%s\\n' \"$(command -v docker)\"\n");
	if (in->install_docker)
		vb_printf(&s, "else\n"
			      "\tstep 'installing docker.io'\n"
			      "\tsudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -q\n"
			      "\tsudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io\n");
	else
		vb_printf(&s, "else\n"
			      "\techo 'docker is not installed and install_docker is false' >&2\n"
			      "\texit 1\n");
	vb_printf(&s, "fi\n");

	vb_printf(&s, "\nstep 'installing the sidecar package'\nversion=");
	vb_quote(&s, in->version);
	vb_printf(&s, "\nurl=");
	vb_quote(&s, deb_url);
	vb_printf(&s,
		  "\nhave=$(dpkg-query -W -f='${Version}' istio-sidecar 2>/dev/null || true)\n"
		  "if [ \"$have\" = \"$version\" ] && [ -x /usr/local/bin/istio-start.sh ]; then\n"
		  "\tprintf 'bootstrap: istio-sidecar %%s is installed already\\n' \"$have\"\n"
		  "else\n"
		  "\tprintf 'bootstrap: downloading %%s\\n' \"$url\"\n"
		  "\tfetch \"$url\" istio-sidecar.deb\n"
		  "\tfetch \"$url.sha256\" istio-sidecar.deb.sha256\n"
		  "\twant=$(cut -d' ' -f1 < istio-sidecar.deb.sha256)\n"
		  "\tgot=$(sha256sum istio-sidecar.deb | cut -d' ' -f1)\n"
		  "\tif [ \"$want\" != \"$got\" ]; then\n"
		  "\t\tprintf 'istio-sidecar.deb: SHA-256 %%s, but its .sha256 says %%s\\n' \"$got\" \"$want\" >&2\n"
		  "\t\texit 1\n"
		  "\tfi\n"
		  "\tsudo -n dpkg -i istio-sidecar.deb\n"
		  "fi\n");

	vb_printf(&s, "\nstep 'placing the mesh files'\n");
	if (in->legacy) {
		vb_printf(&s, "sudo -n mkdir -p /etc/certs /var/lib/istio/envoy\n"
			      "place root-cert.pem /etc/certs/root-cert.pem 0644\n"
			      "place cert-chain.pem /etc/certs/cert-chain.pem 0644\n"
			      "place key.pem /etc/certs/key.pem 0600\n"
			      "place cluster.env /var/lib/istio/envoy/cluster.env 0644\n");
	} else {
		vb_printf(&s, "sudo -n mkdir -p /etc/certs /var/run/secrets/tokens /var/lib/istio/envoy "
			      "/etc/istio/config /etc/istio/proxy\n"
			      "place root-cert.pem /etc/certs/root-cert.pem 0644\n"
			      "place istio-token /var/run/secrets/tokens/istio-token 0600\n"
			      "place cluster.env /var/lib/istio/envoy/cluster.env 0644\n"
			      "place mesh.yaml /etc/istio/config/mesh 0644\n");
	}

	vb_printf(&s, "\nstep 'mapping istiod in /etc/hosts'\n");
	if (vb_hosts_lines(in, b, &s, why, size) != 0) {
		free(s.p);
		return NULL;
	}

	vb_printf(&s, "\nstep 'handing the files to istio-proxy'\n");
	if (in->legacy)
		vb_printf(&s, "sudo -n chown -R istio-proxy /etc/certs /var/lib/istio/envoy\n");
	else
		vb_printf(&s, "sudo -n chown -R istio-proxy /var/lib/istio /etc/certs /etc/istio/proxy "
			      "/etc/istio/config /var/run/secrets\n");

	vb_printf(&s, "\nstep 'starting the sidecar'\n"
		      "if [ \"$changed\" = 1 ] || [ \"$(systemctl is-active istio 2>/dev/null || true)\" != active ]; then\n"
		      "\tsudo -n systemctl restart istio\n"
		      "else\n"
		      "\techo 'bootstrap: the sidecar runs with these files already'\n"
		      "fi\n");

	vb_printf(&s, "\nstep 'starting the app container'\nname=");
	vb_quote(&s, in->name);
	vb_printf(&s, "\nimage=");
	vb_quote(&s, in->image);
	vb_printf(&s,
		  "\nif sudo -n docker ps 2>/dev/null | awk -v n=\"$name\" -v i=\"$image\" '$2 == i && $NF == n { f = 1 } END { exit !f }'; then\n"
		  "\techo \"bootstrap: $name runs $image already\"\n"
		  "else\n"
		  "\tsudo -n docker rm -f \"$name\" >/dev/null 2>&1 || true\n"
		  "\tsudo -n docker run -d --name \"$name\" --restart=always -p %ld:%ld \"$image\"\n"
		  "fi\n",
		  in->app_port, in->app_port);

	vb_printf(&s,
		  "\nstep 'checking the sidecar'\n"
		  "sidecar_log() {\n"
		  "\tsudo -n systemctl status istio >&2 || true\n"
		  "\tsudo -n tail -n 20 /var/log/istio/istio.err.log >&2 2>/dev/null || true\n"
		  "\tsudo -n journalctl -u istio -n 20 --no-pager >&2 2>/dev/null || true\n"
		  "}\n"
		  "i=0\n"
		  "until [ \"$(systemctl is-active istio 2>/dev/null || true)\" = active ]; do\n"
		  "\ti=$((i + 1))\n"
		  "\tif [ \"$i\" -ge 30 ]; then\n"
		  "\t\tsidecar_log\n"
		  "\t\tprintf 'the istio service is %%s, not active\\n' \"$(systemctl is-active istio 2>/dev/null || true)\" >&2\n"
		  "\t\texit 1\n"
		  "\tfi\n"
		  "\tsleep 1\n"
		  "done\n"
		  "# A sidecar that istiod refuses exits soon after it starts.\n"
		  "sleep 3\n"
		  "state=$(systemctl is-active istio 2>/dev/null || true)\n"
		  "if [ \"$state\" != active ]; then\n"
		  "\tsidecar_log\n"
		  "\tprintf 'the istio service started, then became %%s\\n' \"$state\" >&2\n"
		  "\texit 1\n"
		  "fi\n"
		  "echo 'sidecar: active'\n"
		  "\nstep 'checking the app container'\n"
		  "if ! sudo -n docker ps | grep -qw -- \"$name\"; then\n"
		  "\tsudo -n docker ps >&2 || true\n"
		  "\tprintf 'the container %%s is not running\\n' \"$name\" >&2\n"
		  "\texit 1\n"
		  "fi\n"
		  "printf 'app: %%s running\\n' \"$name\"\n"
		  "phase=done\n");
	if (s.oom) {
		free(s.p);
		snprintf(why, size, "out of memory");
		return NULL;
	}
	return s.p;
}

/* ---- the operations ---------------------------------------------------------- */

/* The state key under which the host pins host:port's SSH key (the rule
 * of server/ssh.h), so that destroy can clear it. */
static void
vb_pin_key(const char *host, long port, char *out, size_t size)
{
	char name[300], hp[320];
	unsigned long long hash = 1469598103934665603ULL;
	size_t i, n = 0;

	for (i = 0; host[i] != '\0' && n < sizeof(name) - 1; i++)
		name[n++] = ((host[i] >= 'a' && host[i] <= 'z') || (host[i] >= 'A' && host[i] <= 'Z') ||
			     (host[i] >= '0' && host[i] <= '9'))
				    ? host[i]
				    : '-';
	name[n] = '\0';
	if (strlen("ssh_host_key_") + n + 1 + 5 <= 63) {
		snprintf(out, size, "ssh_host_key_%.50s_%ld", name, port);
		return;
	}
	snprintf(hp, sizeof(hp), "%.253s:%ld", host, port);
	for (i = 0; hp[i] != '\0'; i++) {
		hash ^= (unsigned char)hp[i];
		hash *= 1099511628211ULL;
	}
	snprintf(out, size, "ssh_host_key_%016llx", hash);
}

static int
vb_secret_mode(const char *name)
{
	return strcmp(name, "key.pem") == 0 || strcmp(name, "istio-token") == 0 ? 0600 : 0644;
}

static or_status
vb_apply(or_host *h, const struct or_host_api *api)
{
	struct vb_in in;
	struct vb_bundle b = {0};
	const char *key, *bundle, *deb_url;
	char why[300], url[512];
	char *script = NULL;
	or_status st = OR_STATUS_FAILED;
	or_ssh *s = NULL;
	int i, rc;

	if (api->minor < 1) {
		api->fail(h, "abi", "vm-bootstrap needs a host with plugin ABI 1.1 (SSH client)");
		return OR_STATUS_FAILED;
	}
	if (vb_inputs(h, api, &in, 0) != 0)
		return OR_STATUS_FAILED;
	key = api->secret_get(h, in.key_ref);
	if (key == NULL) {
		api->fail(h, "input", "no secret named %s (ssh_key_ref)", in.key_ref);
		return OR_STATUS_FAILED;
	}
	bundle = api->secret_get(h, in.bundle_ref);
	if (bundle == NULL) {
		api->fail(h, "input", "no secret named %s (bundle_ref)", in.bundle_ref);
		return OR_STATUS_FAILED;
	}
	if (vb_bundle_parse(bundle, &b, why, sizeof(why)) != 0) {
		api->fail(h, "bundle", "the VM bundle %s %s", in.bundle_ref, why);
		return OR_STATUS_FAILED;
	}
	snprintf(url, sizeof(url), VB_SIDECAR_URL, in.version);
	deb_url = api->mirror_url(h, url);
	if (deb_url == NULL || !vb_chars_ok(deb_url, ":/._-~%+=?&@", 1000)) {
		api->fail(h, "input", "the sidecar package's download URL is not usable");
		goto out;
	}
	script = vb_script(&in, &b, deb_url, why, sizeof(why));
	if (script == NULL) {
		api->fail(h, "bundle", "%s", why);
		goto out;
	}

	api->progress(h, 5, "connecting to the VM");
	s = api->ssh_open(h, in.host, (int)in.port, in.user, key, in.timeout_ms);
	if (s == NULL) {
		st = api->cancelled(h) ? OR_STATUS_CANCELLED : OR_STATUS_FAILED;
		goto out;
	}
	api->progress(h, 15, "uploading the VM's files");
	for (i = 0; i < b.n; i++)
		if (api->ssh_upload(s, b.f[i].name, b.f[i].data, b.f[i].len,
				    vb_secret_mode(b.f[i].name)) != 0) {
			st = api->cancelled(h) ? OR_STATUS_CANCELLED : OR_STATUS_FAILED;
			goto out;
		}
	if (api->ssh_upload(s, VB_SCRIPT, script, strlen(script), 0700) != 0) {
		st = api->cancelled(h) ? OR_STATUS_CANCELLED : OR_STATUS_FAILED;
		goto out;
	}
	api->progress(h, 25, "running the bootstrap script");
	api->log(h, OR_LOG_INFO, "running %s on %s (%s flow, Istio %s)", VB_SCRIPT, in.host, in.flow,
		 in.version);
	rc = api->ssh_exec(s, "sh " VB_SCRIPT);
	if (rc < 0) {
		/* Cancelled, or the connection broke: the script is safe to
		 * run again, so a broken connection is worth a retry. */
		st = api->cancelled(h) ? OR_STATUS_CANCELLED : OR_STATUS_RETRY;
		goto out;
	}
	if (rc != 0) {
		/* The host's fail() names the exit status and the script's
		 * last lines of stderr ("bootstrap: failed while ..."). */
		api->log(h, OR_LOG_ERROR, "the bootstrap script on %s failed with exit status %d",
			 in.host, rc);
		st = OR_STATUS_FAILED;
		goto out;
	}
	api->progress(h, 100, "sidecar active, app running");
	if (api->output(h, "sidecar", "active") != 0 ||
	    api->output(h, "app_container", in.name) != 0 ||
	    api->output(h, "istio_version", in.version) != 0) {
		api->fail(h, "output", "the host refused an output");
		goto out;
	}
	st = OR_STATUS_OK;
out:
	api->ssh_close(s);
	free(script);
	vb_bundle_free(&b);
	return st;
}

static or_status
vb_destroy(or_host *h, const struct or_host_api *api)
{
	struct vb_in in;
	struct vb_str cmd = {0};
	const char *key;
	char pin[80];
	or_ssh *s;
	int rc;

	if (api->minor < 1) {
		api->fail(h, "abi", "vm-bootstrap needs a host with plugin ABI 1.1 (SSH client)");
		return OR_STATUS_FAILED;
	}
	if (vb_inputs(h, api, &in, 1) != 0)
		return OR_STATUS_FAILED;
	key = api->secret_get(h, in.key_ref);
	s = key != NULL ? api->ssh_open(h, in.host, (int)in.port, in.user, key,
					in.timeout_ms < VB_DESTROY_TIMEOUT_MS
						? in.timeout_ms
						: VB_DESTROY_TIMEOUT_MS)
			: NULL;
	if (s == NULL) {
		if (api->cancelled(h))
			return OR_STATUS_CANCELLED;
		api->log(h, OR_LOG_WARN,
			 "the VM at %s does not let us in (gone, or not ours any more): "
			 "nothing to stop there", in.host);
	} else {
		vb_printf(&cmd, "name=");
		vb_quote(&cmd, in.name);
		vb_printf(&cmd,
			  "; if command -v docker >/dev/null 2>&1; then "
			  "sudo -n docker rm -f \"$name\" >/dev/null 2>&1 && echo \"removed container $name\"; fi; "
			  "sudo -n systemctl stop istio 2>/dev/null && echo 'stopped the istio service'; "
			  "rm -f " VB_SCRIPT " key.pem istio-token cert-chain.pem root-cert.pem "
			  "cluster.env mesh.yaml hosts istio-sidecar.deb istio-sidecar.deb.sha256; "
			  "exit 0");
		rc = cmd.oom ? -1 : api->ssh_exec(s, cmd.p);
		free(cmd.p);
		api->ssh_close(s);
		if (rc < 0 && api->cancelled(h))
			return OR_STATUS_CANCELLED;
		if (rc != 0)
			api->log(h, OR_LOG_WARN, "stopping the app and the sidecar on %s did not "
				 "finish; the VM goes with the vm step", in.host);
	}
	/* A VM made again at this address has new host keys: pin afresh. */
	vb_pin_key(in.host, in.port, pin, sizeof(pin));
	if (api->state_get(h, pin) != NULL && api->state_get(h, pin)[0] != '\0' &&
	    api->state_set(h, pin, "") != 0) {
		api->fail(h, "state", "cannot clear the pinned host key of %s", in.host);
		return OR_STATUS_RETRY;
	}
	return OR_STATUS_OK;
}

/* What apply would do; changes nothing (no SSH).  Inputs earlier steps
 * have not made yet are named as such. */
static or_status
vb_plan(or_host *h, const struct or_host_api *api)
{
	struct vb_in in;
	struct vb_bundle b;
	const char *bundle = NULL;
	char why[256], files[64] = "the VM's files (not made yet)";

	if (vb_inputs(h, api, &in, 0) != 0)
		return OR_STATUS_FAILED;
	if (known(in.bundle_ref))
		bundle = api->secret_get(h, in.bundle_ref);
	if (bundle != NULL && vb_bundle_parse(bundle, &b, why, sizeof(why)) == 0) {
		snprintf(files, sizeof(files), "%d files", b.n);
		vb_bundle_free(&b);
	}
	if (!known(in.host) || !known(in.user))
		api->log(h, OR_LOG_INFO, "the VM does not exist yet: would log in to it over SSH");
	else
		api->log(h, OR_LOG_INFO, "would log in to %s@%s:%ld over SSH", in.user, in.host,
			 in.port);
	api->log(h, OR_LOG_INFO, "would upload %s and %s to the VM and run the Istio %s "
		 "bootstrap (%s flow: install istio-sidecar.deb%s, place the files, restart "
		 "istio), then run %s (%s) on port %ld", files, VB_SCRIPT, in.version, in.flow,
		 in.install_docker ? " and docker when missing" : "", in.name,
		 known(in.image) ? in.image : "the image the app step names", in.app_port);
	return OR_STATUS_OK;
}

static const struct or_plugin vm_bootstrap = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = 1,
	.name = "vm-bootstrap",
	.summary = "Install Istio's sidecar on the VM, place its mesh files, start the app",
	.inputs_schema =
		"{\"flow\":{\"type\":\"string\",\"required\":true,\"description\":\"legacy (Istio 1.6) or current (1.20+)\"},"
		"\"host\":{\"type\":\"string\",\"required\":true,\"description\":\"the VM's address\"},"
		"\"ssh_user\":{\"type\":\"string\",\"required\":true,\"description\":\"login user (sudo without password)\"},"
		"\"ssh_key_ref\":{\"type\":\"string\",\"required\":true,\"description\":\"secret holding the OpenSSH private key\"},"
		"\"ssh_port\":{\"type\":\"integer\",\"description\":\"SSH port (22)\"},"
		"\"bundle_ref\":{\"type\":\"string\",\"required\":true,\"description\":\"secret holding the VM's files as a JSON object\"},"
		"\"istio_version\":{\"type\":\"string\",\"required\":true,\"description\":\"release of the sidecar package\"},"
		"\"istiod_ip\":{\"type\":\"string\",\"description\":\"legacy: istiod's address, when the bundle has no hosts file\"},"
		"\"istiod_host\":{\"type\":\"string\",\"description\":\"the name istiod is reached by (istiod.istio-system.svc)\"},"
		"\"install_docker\":{\"type\":\"boolean\",\"description\":\"install docker.io when the VM has no docker (true)\"},"
		"\"app_image\":{\"type\":\"string\",\"required\":true,\"description\":\"the container image to run\"},"
		"\"app_name\":{\"type\":\"string\",\"description\":\"the container's name (productcatalogservice)\"},"
		"\"app_port\":{\"type\":\"integer\",\"description\":\"port published by the container (3550)\"},"
		"\"timeout_ms\":{\"type\":\"integer\",\"description\":\"how long to wait for SSH (300000)\"}}",
	.outputs_schema = "{\"sidecar\":{\"type\":\"string\",\"description\":\"active\"},"
			  "\"app_container\":{\"type\":\"string\",\"description\":\"name of the running container\"},"
			  "\"istio_version\":{\"type\":\"string\",\"description\":\"sidecar release installed\"}}",
	.capabilities = OR_CAP_PLAN | OR_CAP_DESTROY,
	.plan = vb_plan,
	.apply = vb_apply,
	.destroy = vb_destroy,
};

OR_PLUGIN_EXPORT(vm_bootstrap)

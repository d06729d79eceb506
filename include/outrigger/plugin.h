/*
 * outrigger/plugin.h - the Outrigger plugin ABI.  The one header a plugin
 * needs; it depends on nothing but the C standard library.
 *
 * A plugin is a shared object (plugins/<name>.so) that exports one function,
 * outrigger_plugin(), returning its descriptor.  Each step attempt runs in
 * its own process: the step runner loads the plugin, calls one operation
 * (plan, apply, destroy or check) with a host context, and exits.  A plugin
 * may therefore block, may leak on purpose-free exits, and can never take
 * the server down; it must still be idempotent, because an attempt can be
 * repeated after a crash (look first, adopt what exists, resume the pending
 * operation recorded with state_set).
 *
 * Versioning: OR_PLUGIN_ABI_MAJOR changes only when existing entries change
 * meaning; the runner refuses a plugin built for another major version.
 * Minor versions only append members to the end of struct or_host_api, so a
 * plugin built against minor N runs on any host with minor >= N; a plugin
 * that wants a newer entry checks api->minor (or api->size) first.
 *
 * Ownership: strings the host returns stay valid until the operation
 * returns, unless said otherwise; the plugin never frees them.  Strings the
 * plugin passes in are copied by the host before the call returns.
 */
#ifndef OUTRIGGER_PLUGIN_H
#define OUTRIGGER_PLUGIN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OR_PLUGIN_ABI_MAJOR 1
#define OR_PLUGIN_ABI_MINOR 1

/* What an operation returns. */
typedef enum or_status {
	OR_STATUS_OK = 0,	/* done; outputs are final */
	OR_STATUS_FAILED = 1,	/* permanent failure: do not retry */
	OR_STATUS_RETRY = 2,	/* transient failure: retry with backoff */
	OR_STATUS_CANCELLED = 3	/* stopped because cancelled() said so */
} or_status;

/* Longest log line the host stores, in bytes; longer ones are cut (at a
 * character boundary; bytes that are not UTF-8 become '?'). */
#define OR_LOG_LINE_MAX 16384

/* Log levels for log(). */
enum or_log_level { OR_LOG_DEBUG = 0, OR_LOG_INFO = 1, OR_LOG_WARN = 2, OR_LOG_ERROR = 3 };

/* Capability bits of a descriptor. */
#define OR_CAP_PLAN (1u << 0)	 /* plan() says what apply would do */
#define OR_CAP_DESTROY (1u << 1) /* destroy() undoes apply */
#define OR_CAP_CHECK (1u << 2)	 /* check() reports drift */

/* One step attempt, opaque to the plugin. */
typedef struct or_host or_host;

/* Handles of the minor-1 clients, opaque to the plugin. */
typedef struct or_kube or_kube;
typedef struct or_ssh or_ssh;

/* The mesh CA files (Istio's plugged-in `cacerts`) and a workload's files.
 * Every member is malloc'd by the host; free with pki_free. */
struct or_pki_files {
	char *root_cert;	/* root-cert.pem */
	char *ca_cert;		/* ca-cert.pem (intermediate) or the leaf */
	char *key;		/* ca-key.pem or key.pem: secret */
	char *cert_chain;	/* cert-chain.pem */
	char *root_key;		/* the root's key (mesh CA only): secret */
};

/* An HTTP request through the host's client (libcurl underneath), with
 * retry on connection errors, 429 and 5xx: exponential backoff with
 * jitter, at most max_attempts tries (0: the host's default, 5). */
/* These two structs are frozen for ABI major 1 (no members will be added;
 * a later need gets new structs and new host functions). */
struct or_http_request {
	const char *method;	/* "GET", "POST", ... */
	const char *url;
	const char *const *headers;	/* NULL-terminated "Name: value", or NULL */
	const char *body;	/* may be NULL */
	size_t body_len;
	long timeout_ms;	/* per try; 0: 30 s */
	int max_attempts;
	size_t max_response;	/* bytes; 0: 8 MiB; larger answers fail */
};

struct or_http_response {
	long status;		/* 0 when no answer came */
	char *body;		/* NUL-terminated; free with http_free */
	size_t body_len;
	char *content_type;	/* may be NULL */
};

/*
 * The host's functions.  Append-only: new members go at the end and raise
 * OR_PLUGIN_ABI_MINOR.  h is the context passed to the operation.
 */
struct or_host_api {
	unsigned major;		/* OR_PLUGIN_ABI_MAJOR of the host */
	unsigned minor;		/* OR_PLUGIN_ABI_MINOR of the host */
	size_t size;		/* sizeof(struct or_host_api) of the host */

	/* -- inputs (minor 0) -- */
	/* The step's "with" input key, references already replaced, as text:
	 * strings as they are, numbers and booleans printed, arrays and
	 * objects as compact JSON.  NULL when absent. */
	const char *(*input)(or_host *h, const char *key);
	/* The whole "with" object as compact JSON text. */
	const char *(*inputs_json)(or_host *h);
	/* Facts about the attempt: "action" (apply|destroy|plan|check),
	 * "environment", "provider", "step", "run", "attempt", "plugin". */
	const char *(*info)(or_host *h, const char *key);

	/* -- reporting -- */
	/* A log line (printf-style).  Known secret values are replaced by
	 * [redacted] before the line is stored. */
	void (*log)(or_host *h, int level, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));
	/* Set an output of the step (string value, or JSON text with
	 * output_json).  Later steps read it as ${steps.STEP.outputs.KEY}.
	 * Returns 0, or -1 if the key or value is refused. */
	int (*output)(or_host *h, const char *key, const char *value);
	int (*output_json)(or_host *h, const char *key, const char *json);
	/* Progress of a long operation, 0..100, with a short message. */
	void (*progress)(or_host *h, int percent, const char *message);
	/* Describe why the operation fails: code is snake_case ("quota",
	 * "conflict"), the message a sentence; the last call wins. */
	void (*fail)(or_host *h, const char *code, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));

	/* -- state kept across attempts of this step (e.g. the name of a
	 * pending cloud operation, recorded before waiting on it) -- */
	const char *(*state_get)(or_host *h, const char *key);
	/* Committed to the server's database before it returns 0. */
	int (*state_set)(or_host *h, const char *key, const char *value);

	/* -- secrets of the environment (keys, tokens): never logged, never
	 * returned by the API -- */
	const char *(*secret_get)(or_host *h, const char *name);
	/* Committed before it returns 0; the value is redacted from logs. */
	int (*secret_put)(or_host *h, const char *name, const char *value);

	/* -- cancellation: 1 once the run is being cancelled; long waits
	 * should check it every second or so and return
	 * OR_STATUS_CANCELLED. -- */
	int (*cancelled)(or_host *h);
	/* Sleep up to ms, returning early (1) when cancelled. */
	int (*sleep_ms)(or_host *h, long ms);

	/* -- shared clients -- */
	/* HTTP with retry.  Returns 0 when an answer came (any status), -1
	 * otherwise (fail() has been called with the reason). */
	int (*http)(or_host *h, const struct or_http_request *req,
		    struct or_http_response *resp);
	void (*http_free)(struct or_http_response *resp);

	/* ---- minor 1: the rollout's clients ---------------------------- */

	/* The provider the environment runs on: "name" (gcp | sandbox),
	 * "project" (the default project, may be NULL), "compute",
	 * "container", "serviceusage" (API base URLs ending in '/').  NULL
	 * for an unknown key. */
	const char *(*provider)(or_host *h, const char *key);
	/* url rewritten through the provider's mirrors: each mirror stands
	 * for a public download prefix (Istio's releases, Online Boutique's
	 * manifests) with one of its own -- the sandbox's, or an air-gapped
	 * install's.  url itself when no mirror covers it. */
	const char *(*mirror_url)(or_host *h, const char *url);

	/* A Google API call.  url is absolute, or "compute:PATH",
	 * "container:PATH", "serviceusage:PATH" relative to that API's base.
	 * The bearer token comes from the provider's credentials (a service
	 * account key, a token file or the metadata server), refreshed before
	 * it expires; 429, 5xx and resets are retried like http().  Returns 0
	 * when an answer came, whatever its status; -1 otherwise (fail()
	 * set).  For a non-2xx answer, gcp_error() gives Google's message. */
	int (*gcp)(or_host *h, const char *method, const char *url,
		   const char *json_body, struct or_http_response *resp);
	/* Google's error message and reason of a non-2xx answer, verbatim
	 * ("The resource 'projects/p/zones/z/instances/vm' already exists",
	 * "alreadyExists"); reason may be NULL. */
	const char *(*gcp_error)(or_host *h, const struct or_http_response *resp,
				 const char **reason);
	/* Wait for a long-running operation to be DONE: a Compute operation's
	 * selfLink or a GKE operation's selfLink/name URL.  Progress goes to
	 * the log.  0 when it succeeded; -1 when it failed (fail() set with
	 * the operation's own error message), timed out or was cancelled
	 * (then cancelled() is 1). */
	int (*gcp_wait)(or_host *h, const char *operation_url, long timeout_ms);

	/* A Kubernetes API client: endpoint ("https://IP" or a host name),
	 * the cluster's CA (PEM) and the provider's Google token as bearer
	 * (what gke-gcloud-auth-plugin gives kubectl).  NULL with fail() set
	 * when the arguments are unusable.  Closed at kube_close. */
	or_kube *(*kube_open)(or_host *h, const char *endpoint, const char *ca_pem);
	void (*kube_close)(or_kube *k);
	/* One request; path starts with '/'.  content_type may be NULL
	 * (application/json).  Same return as http(). */
	int (*kube_request)(or_kube *k, const char *method, const char *path,
			    const char *content_type, const char *body,
			    struct or_http_response *resp);
	/* Server-side apply (field manager "outrigger", force) of every
	 * document of a YAML or JSON text, in order; documents of namespaced
	 * kinds without a namespace go to default_ns.  Kinds are resolved by
	 * discovery; a CRD created by an earlier document is waited for.
	 * Returns the number of objects applied, or -1 (fail() names the
	 * document: "document 3 (Deployment default/frontend): ..."). */
	int (*kube_apply)(or_kube *k, const char *yaml, const char *default_ns);
	/* Delete every object the documents name, in reverse order; absent
	 * objects are fine.  Returns the number deleted, or -1. */
	int (*kube_delete)(or_kube *k, const char *yaml, const char *default_ns);
	/* Wait for a condition, logging progress: what = "deployment"
	 * (available replicas == desired), "deployments" (every Deployment
	 * of namespace ns; name ignored), "loadbalancer" (the Service has an
	 * ingress IP, copied into out), "crd" (name established).  0 when
	 * met, -1 on timeout, error or cancel (fail() set). */
	int (*kube_wait)(or_kube *k, const char *what, const char *ns,
			 const char *name, long timeout_ms, char *out, size_t out_size);

	/* SSH (libssh2): connect to host:port, retrying until it answers or
	 * timeout_ms passes; the host key is pinned in the step's state at
	 * first use and must match after; public-key login as user with an
	 * OpenSSH private key held in memory.  NULL with fail() set. */
	or_ssh *(*ssh_open)(or_host *h, const char *host, int port, const char *user,
			    const char *private_key, long timeout_ms);
	void (*ssh_close)(or_ssh *s);
	/* Write data to path on the remote host (SFTP), with mode. */
	int (*ssh_upload)(or_ssh *s, const char *path, const void *data, size_t len,
			  int mode);
	/* Run a command; every line of its stdout and stderr goes to the
	 * step log as it comes.  Returns the exit status (0..255), or -1
	 * when the command could not be run (fail() set). */
	int (*ssh_exec)(or_ssh *s, const char *command);

	/* PKI (OpenSSL).  pki_mesh_ca: Istio's plugged-in CA, a new root
	 * (O=org, valid root_days) and an intermediate for cluster (valid
	 * ca_days) with the extensions istiod requires.  pki_workload: a
	 * leaf for spiffe://TRUST_DOMAIN/ns/NS/sa/SA signed by ca_cert/ca_key,
	 * chain up to root_cert.  pki_ssh_key: an ed25519 key pair (key:
	 * OpenSSH private key, ca_cert: the authorized_keys line).  0, or -1
	 * with fail() set. */
	int (*pki_mesh_ca)(or_host *h, const char *org, const char *cluster, int root_days,
			   int ca_days, struct or_pki_files *out);
	int (*pki_workload)(or_host *h, const char *ca_cert, const char *ca_key,
			    const char *root_cert, const char *trust_domain, const char *ns,
			    const char *sa, int days, struct or_pki_files *out);
	int (*pki_ssh_key)(or_host *h, const char *comment, struct or_pki_files *out);
	void (*pki_free)(struct or_pki_files *f);

	/* Download url (through the provider's mirror when one stands for its
	 * site) into the host's cache, at most max_bytes, checked against
	 * sha256 (64 hex digits) or, when sha256 is NULL and sha256_url is
	 * not, the first word of that file; with neither (a publisher that
	 * posts no checksum) the file is kept unverified, and the log says so.  Returns the cached file's path
	 * (valid until the operation returns), or NULL with fail() set. */
	const char *(*fetch)(or_host *h, const char *url, const char *sha256,
			     const char *sha256_url, size_t max_bytes);
	/* Run a local program (argv[0] a path) with cwd, capturing stdout
	 * (at most 64 MiB) into *out (free with free()); stderr lines go to
	 * the log.  Returns the exit status, or -1 (fail() set). */
	int (*run)(or_host *h, const char *const *argv, const char *cwd, char **out);
	/* A private scratch directory for this attempt, removed after it. */
	const char *(*workdir)(or_host *h);

	/* Record what the environment owns in the cloud: kind "cluster",
	 * "vm" or "firewall_rule"; attrs a JSON object (IPs, CIDRs, zone,
	 * endpoint).  Committed before it returns 0.  resource_drop forgets
	 * one (after destroy deleted it). */
	int (*resource_put)(or_host *h, const char *kind, const char *name,
			    const char *self_link, const char *status, const char *attrs_json);
	int (*resource_drop)(or_host *h, const char *kind, const char *name);
};

/* The descriptor a plugin exports. */
struct or_plugin {
	unsigned abi_major;	/* OR_PLUGIN_ABI_MAJOR the plugin was built with */
	unsigned abi_minor;
	const char *name;	/* equals the file's stem */
	const char *summary;	/* one line for GET /api/v1/plugins */
	const char *inputs_schema;	/* JSON object: input name -> {type, description, required} */
	const char *outputs_schema;	/* JSON object: output name -> {type, description} */
	unsigned capabilities;	/* OR_CAP_* */
	/* plan, destroy and check may be NULL when their capability bit is
	 * not set; the step then fails saying the plugin cannot do that. */
	or_status (*plan)(or_host *h, const struct or_host_api *api);
	or_status (*apply)(or_host *h, const struct or_host_api *api);
	or_status (*destroy)(or_host *h, const struct or_host_api *api);
	or_status (*check)(or_host *h, const struct or_host_api *api);
	/* Members added in later minor versions go here, and the host reads
	 * them only when abi_minor says they exist. */
};

/* The symbol the runner looks up. */
#define OR_PLUGIN_SYMBOL "outrigger_plugin"
typedef const struct or_plugin *(*or_plugin_entry)(void);

/* Define the entry point: OR_PLUGIN_EXPORT(my_descriptor) */
#define OR_PLUGIN_EXPORT(desc)                                              \
	__attribute__((visibility("default"))) const struct or_plugin *     \
	outrigger_plugin(void);                                              \
	const struct or_plugin *outrigger_plugin(void) { return &(desc); }

#ifdef __cplusplus
}
#endif

#endif

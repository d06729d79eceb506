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
#define OR_PLUGIN_ABI_MINOR 0

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

/*
 * main.c - the outrigger command: serve, migrate, version.
 *
 * Start-up is the only place allowed to give up (exit 1 for a failure,
 * exit 2 for a bad command line, one line saying why); once serving, every
 * error is answered, logged, and survived.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api.h"
#include "bp.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "plugin.h"
#include "runner.h"
#include "provider.h"
#include "sandbox.h"
#include "catalog.h"
#include "scheduler.h"
#include "sse.h"
#include "step.h"
#include "vm.h"
#include "web.h"

#include "version.h" /* generated: OUTRIGGER_VERSION */

extern char **environ;

#define MAX_BLUEPRINT_DIRS 16
#define STOP_GRACE_MS 10000

static const char usage[] =
	"usage: outrigger <command> [options]\n"
	"\n"
	"Outrigger extends an Istio mesh from a GKE cluster to Compute Engine VMs:\n"
	"a REST API and dashboard that run the rollout step by step.\n"
	"\n"
	"commands:\n"
	"  serve      run the server (REST API, dashboard)\n"
	"  migrate    bring a database's schema up to date and exit\n"
	"  sandbox    run the simulated Google Cloud (--listen 127.0.0.1:PORT --dir DIR\n"
	"             [--time-scale S] [--seed N] [--project ID] [--catalog FILE]);\n"
	"             see docs/sandbox.md\n"
	"  version    print the version\n"
	"\n"
	"serve options:\n"
	"  --listen ADDR:PORT          address to listen on (127.0.0.1:8080; port 0 picks one)\n"
	"  --db FILE                   SQLite database (./var/outrigger.db)\n"
	"  --web DIR                   dashboard files (web/)\n"
	"  --plugins DIR               plugins; DIR/blueprints is always loaded (plugins/)\n"
	"  --blueprints DIR            more blueprints (may repeat)\n"
	"  --threads N                 HTTP worker threads (2)\n"
	"  --max-connections N         connections in all (4096)\n"
	"  --max-connections-per-ip N  connections from one address (1024)\n"
	"  --timeout SECONDS           idle connection timeout (30)\n"
	"  --parallel N                step runners at once, all runs together (8)\n"
	"  --retry-base-ms N           first retry delay of a failed step (1000)\n"
	"  --cancel-grace-ms N         SIGTERM to SIGKILL on cancel (10000)\n"
	"  --sandbox                   start the simulated Google Cloud beside the server\n"
	"                              (state in DIR-of-db/sandbox, a tenth of real time;\n"
	"                              see docs/sandbox.md)\n"
	"  --sandbox-endpoints FILE    use a sandbox that runs already (its endpoints.json)\n"
	"  --gcp-credentials KEYFILE   service-account key for the gcp provider (without it:\n"
	"                              the metadata server of the machine, on Compute Engine)\n"
	"  --no-access-log             no access log line per request\n"
	"  --check                     load everything, report problems, exit\n"
	"\n"
	"migrate options:\n"
	"  --db FILE                   SQLite database (./var/outrigger.db)\n";

struct opts {
	const char *listen;
	const char *db;
	const char *web;
	const char *plugins;
	const char *blueprints[MAX_BLUEPRINT_DIRS];
	size_t nblueprints;
	unsigned threads, max_conns, max_per_ip, timeout_s;
	unsigned parallel, retry_base_ms, cancel_grace_ms;
	int sandbox;
	const char *sandbox_endpoints;
	const char *gcp_credentials;
	int access_log;
	int check;
};

static void die_usage(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void
die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "outrigger: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see outrigger --help)\n");
	exit(2);
}

static unsigned
parse_uint(const char *flag, const char *v, unsigned min, unsigned max)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || v[0] == '-' || n < min || n > max) {
		fprintf(stderr, "outrigger: %s wants a whole number from %u to %u, not '%s'\n",
			flag, min, max, v);
		exit(2);
	}
	return (unsigned)n;
}

static int
flag_takes_value(const char *flag, int allow_serve)
{
	static const char *const serve_flags[] = {
		"--listen", "--web", "--plugins", "--blueprints", "--threads",
		"--max-connections", "--max-connections-per-ip", "--timeout",
		"--parallel", "--retry-base-ms", "--cancel-grace-ms", "--sandbox-endpoints",
		"--gcp-credentials"};
	size_t i;

	if (strcmp(flag, "--db") == 0)
		return 1;
	for (i = 0; allow_serve && i < sizeof(serve_flags) / sizeof(serve_flags[0]); i++)
		if (strcmp(flag, serve_flags[i]) == 0)
			return 1;
	return 0;
}

/* Parse argv[first..] into o.  allow_serve: accept serve's options. */
static void
parse_opts(int argc, char **argv, int first, int allow_serve, struct opts *o)
{
	const char *flag, *val;
	int i;

	for (i = first; i < argc; i++) {
		flag = argv[i];
		if (strcmp(flag, "--no-access-log") == 0 && allow_serve) {
			o->access_log = 0;
			continue;
		}
		if (strcmp(flag, "--check") == 0 && allow_serve) {
			o->check = 1;
			continue;
		}
		if (strcmp(flag, "--sandbox") == 0 && allow_serve) {
			o->sandbox = 1;
			continue;
		}
		if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
			fputs(usage, stdout);
			exit(0);
		}
		if (strncmp(flag, "--", 2) != 0)
			die_usage("unexpected argument '%s'", flag);
		if (!flag_takes_value(flag, allow_serve))
			die_usage("unknown option '%s'", flag);
		if (i + 1 >= argc)
			die_usage("%s needs a value", flag);
		val = argv[++i];
		if (val[0] == '\0')
			die_usage("%s needs a non-empty value", flag);
		if (strcmp(flag, "--db") == 0) {
			o->db = val;
		} else if (!allow_serve) {
			die_usage("unknown option '%s'", flag);
		} else if (strcmp(flag, "--listen") == 0) {
			o->listen = val;
		} else if (strcmp(flag, "--web") == 0) {
			o->web = val;
		} else if (strcmp(flag, "--plugins") == 0) {
			o->plugins = val;
		} else if (strcmp(flag, "--blueprints") == 0) {
			if (o->nblueprints == MAX_BLUEPRINT_DIRS - 1)
				die_usage("%s: too many directories", flag);
			o->blueprints[o->nblueprints++] = val;
		} else if (strcmp(flag, "--threads") == 0) {
			o->threads = parse_uint(flag, val, 1, 64);
		} else if (strcmp(flag, "--max-connections") == 0) {
			o->max_conns = parse_uint(flag, val, 1, 1000000);
		} else if (strcmp(flag, "--max-connections-per-ip") == 0) {
			o->max_per_ip = parse_uint(flag, val, 1, 1000000);
		} else if (strcmp(flag, "--timeout") == 0) {
			o->timeout_s = parse_uint(flag, val, 1, 86400);
		} else if (strcmp(flag, "--sandbox-endpoints") == 0) {
			o->sandbox_endpoints = val;
		} else if (strcmp(flag, "--gcp-credentials") == 0) {
			o->gcp_credentials = val;
		} else if (strcmp(flag, "--parallel") == 0) {
			o->parallel = parse_uint(flag, val, 1, 256);
		} else if (strcmp(flag, "--retry-base-ms") == 0) {
			o->retry_base_ms = parse_uint(flag, val, 1, 600000);
		} else if (strcmp(flag, "--cancel-grace-ms") == 0) {
			o->cancel_grace_ms = parse_uint(flag, val, 1, 600000);
		} else {
			die_usage("unknown option '%s'", flag);
		}
	}
}

/* Raise the open-file limit to what connections need; returns the limit. */
static unsigned
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 1024;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur > UINT_MAX ? UINT_MAX : (unsigned)rl.rlim_cur;
}

static int
open_db(const char *path, struct db **db)
{
	struct or_err err;

	if (db_open(path, db, &err) != OR_OK || db_migrate(*db, &err) != OR_OK) {
		fprintf(stderr, "outrigger: %s\n", err.message);
		db_close(*db);
		*db = NULL;
		return 1;
	}
	return 0;
}

static int
cmd_migrate(int argc, char **argv)
{
	struct opts o = {.db = "var/outrigger.db"};
	struct or_err err;
	struct db *db = NULL;
	int version = 0;

	parse_opts(argc, argv, 2, 0, &o);
	if (open_db(o.db, &db) != 0)
		return 1;
	if (db_schema_version(db, &version, &err) != OR_OK) {
		fprintf(stderr, "outrigger: %s\n", err.message);
		db_close(db);
		return 1;
	}
	printf("outrigger: %s is at schema version %d\n", o.db, version);
	db_close(db);
	return 0;
}

static void
report_blueprints(const struct bp_set *set)
{
	size_t i;

	for (i = 0; i < set->n; i++) {
		if (set->v[i].load_error != NULL)
			log_warn("blueprint %s (%s) did not load: %s", set->v[i].name,
				 set->v[i].file, set->v[i].load_error);
		else
			log_info("blueprint %s loaded from %s (%zu steps)",
				 set->v[i].name, set->v[i].file, set->v[i].nsteps);
	}
}

/* Start `outrigger sandbox` as a child that stops when this process does,
 * with its state in dir; wait for its endpoints.json.  0 on success. */
static int
sandbox_spawn(const char *dir, pid_t *pid, char *endpoints, size_t size)
{
	char self[PATH_MAX], parent[32];
	/* A tenth of real time: a newcomer's first rollout takes a couple of
	 * minutes instead of a quarter of an hour, and still shows each
	 * step's wait the way Google's durations shape it. */
	char *argv[] = {self, "sandbox", "--listen", "127.0.0.1:0", "--dir", (char *)dir,
			"--time-scale", "0.1", "--parent", parent, NULL};
	posix_spawn_file_actions_t fa;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	json_t *e = NULL;
	int i;

	if (n <= 0)
		return -1;
	self[n] = '\0';
	snprintf(parent, sizeof(parent), "%ld", (long)getpid());
	snprintf(endpoints, size, "%s/endpoints.json", dir);
	unlink(endpoints); /* a stale one would say the wrong port */
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	if (posix_spawn(pid, self, &fa, NULL, argv, environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	for (i = 0; i < 200 && e == NULL; i++) {
		usleep(50000);
		e = json_load_file(endpoints, 0, NULL);
		if (waitpid(*pid, NULL, WNOHANG) == *pid)
			return -1; /* it gave up; its own message is on stderr */
	}
	json_decref(e);
	return e != NULL ? 0 : -1;
}

/* endpoints.json of a sandbox: it must name the APIs the product uses. */
static int
sandbox_check(const char *path)
{
	static const char *const keys[] = {"compute", "container", "token_uri",
					   "service_account_key_file", "project"};
	json_t *e = json_load_file(path, 0, NULL);
	size_t i;
	int ok = e != NULL;

	for (i = 0; ok && i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!json_is_string(json_object_get(e, keys[i]))) {
			fprintf(stderr, "outrigger: %s has no \"%s\"\n", path, keys[i]);
			ok = 0;
		}
	if (ok)
		log_info("sandbox: Compute Engine at %s, GKE at %s",
			 json_string_value(json_object_get(e, "compute")),
			 json_string_value(json_object_get(e, "container")));
	json_decref(e);
	return ok ? 0 : -1;
}

/* Downloads are kept beside the database, in cache/: an absolute path,
 * since step runners may run elsewhere. */
static int
cache_dir_for(const char *db, char *out, size_t size)
{
	char dir[PATH_MAX], real[PATH_MAX];
	const char *slash = strrchr(db, '/');

	snprintf(dir, sizeof(dir), "%.*s", slash != NULL ? (int)(slash - db) : 1,
		 slash != NULL ? db : ".");
	if (realpath(dir[0] != '\0' ? dir : "/", real) == NULL)
		return -1;
	if (snprintf(out, size, "%s/cache", real) >= (int)size)
		return -1;
	return 0;
}

/* The scheduler's committed events go to the event streams. */
static void
publish_events(void *ctx, long long run, const struct db_event *ev, size_t n,
	       int finished)
{
	sse_publish(ctx, run, ev, n, finished);
}

static int
cmd_serve(int argc, char **argv)
{
	struct opts o = {.listen = "127.0.0.1:8080", .db = "var/outrigger.db",
			 .web = "web", .plugins = "plugins", .threads = 2,
			 .max_conns = 4096, .max_per_ip = 1024, .timeout_s = 30,
			 .parallel = 8, .retry_base_ms = 1000, .cancel_grace_ms = 10000,
			 .access_log = 1};
	struct sched_cfg sc;
	struct sched *sched = NULL;
	struct sse_hub *hub = NULL;
	char sandbox_file[PATH_MAX + 32], cache_dir[PATH_MAX];
	json_t *providers = NULL;
	pid_t sandbox_pid = 0;
	struct plugin_set plugins = {0};
	struct bp_set blueprints = {0};
	struct web web = {.root_fd = -1};
	struct http_cfg hc;
	struct http *http = NULL;
	struct api api;
	struct db *db = NULL;
	struct or_err err;
	const char *dirs[MAX_BLUEPRINT_DIRS];
	char builtin_dir[PATH_MAX];
	struct stat st;
	unsigned nofile;
	sigset_t stop;
	size_t ndirs = 0, i;
	int sig, status = 1;

	parse_opts(argc, argv, 2, 1, &o);
	if (o.sandbox && o.sandbox_endpoints != NULL)
		die_usage("%s", "--sandbox and --sandbox-endpoints exclude each other");
	if (http_check_listen(o.listen, &err) != OR_OK)
		die_usage("%s", err.message);
	if (snprintf(builtin_dir, sizeof(builtin_dir), "%s/blueprints", o.plugins) >=
	    (int)sizeof(builtin_dir))
		die_usage("--plugins path is too long: %s", o.plugins);
	if (stat(builtin_dir, &st) == 0)
		dirs[ndirs++] = builtin_dir;
	else
		log_warn("no blueprint directory %s; only --blueprints are loaded",
			 builtin_dir);
	for (i = 0; i < o.nblueprints; i++) {
		if (stat(o.blueprints[i], &st) != 0 || !S_ISDIR(st.st_mode))
			die_usage("--blueprints: '%s' is not a directory", o.blueprints[i]);
		dirs[ndirs++] = o.blueprints[i];
	}
	if (web_init(&web, o.web, &err) != OR_OK)
		die_usage("--web: '%s' is not a readable directory", o.web);
	if (runner_init(&err) != OR_OK || plugin_set_scan(&plugins, o.plugins, &err) != OR_OK) {
		fprintf(stderr, "outrigger: %s\n", err.message);
		goto out;
	}
	plugin_set_describe(&plugins, o.plugins);
	if (bp_set_load(&blueprints, dirs, ndirs, &plugins, &err) != OR_OK) {
		fprintf(stderr, "outrigger: %s\n", err.message);
		goto out;
	}
	report_blueprints(&blueprints);
	if (open_db(o.db, &db) != 0)
		goto out;
	if (o.check) {
		for (i = 0; i < blueprints.n; i++)
			if (blueprints.v[i].load_error != NULL)
				printf("blueprint %s: %s\n", blueprints.v[i].name,
				       blueprints.v[i].load_error);
		printf("outrigger: configuration checked\n");
		status = 0;
		goto out;
	}

	if (o.sandbox) {
		char sdir[PATH_MAX];
		const char *slash = strrchr(o.db, '/');

		snprintf(sdir, sizeof(sdir), "%.*s/sandbox", slash != NULL ? (int)(slash - o.db) : 1,
			 slash != NULL ? o.db : ".");
		if (sandbox_spawn(sdir, &sandbox_pid, sandbox_file, sizeof(sandbox_file)) != 0) {
			fprintf(stderr, "outrigger: the sandbox did not start (state in %s)\n", sdir);
			goto out;
		}
		o.sandbox_endpoints = sandbox_file;
	}
	if (o.sandbox_endpoints != NULL && sandbox_check(o.sandbox_endpoints) != 0) {
		fprintf(stderr, "outrigger: %s is not a sandbox's endpoints.json\n",
			o.sandbox_endpoints);
		goto out;
	}

	if (cache_dir_for(o.db, cache_dir, sizeof(cache_dir)) != 0 ||
	    provider_load(o.sandbox_endpoints, o.gcp_credentials, cache_dir, &providers, &err) !=
		    OR_OK) {
		fprintf(stderr, "outrigger: %s\n",
			providers == NULL && err.message[0] ? err.message : "cannot set up the providers");
		goto out;
	}

	nofile = raise_nofile();
	if (o.max_conns + 64 > nofile) {
		log_warn("open-file limit %u allows %u connections, not %u",
			 nofile, nofile > 128 ? nofile - 64 : 64, o.max_conns);
		o.max_conns = nofile > 128 ? nofile - 64 : 64;
	}
	/* Block the stop signals before any thread starts, so that they
	 * inherit the mask and only sigwait below receives them. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);

	hub = sse_hub_new(db);
	if (hub == NULL) {
		fprintf(stderr, "outrigger: out of memory\n");
		goto out;
	}
	memset(&sc, 0, sizeof(sc));
	sc.on_events = publish_events;
	sc.ctx = hub;
	sc.db = db;
	sc.plugins_dir = o.plugins;
	sc.providers = providers;
	sc.max_parallel = o.parallel;
	sc.retry_base_ms = o.retry_base_ms;
	sc.cancel_grace_ms = o.cancel_grace_ms;
	if (sched_start(&sc, &sched, &err) != OR_OK) {
		fprintf(stderr, "outrigger: %s\n", err.message);
		goto out;
	}
	api.db = db;
	api.blueprints = &blueprints;
	api.plugins = &plugins;
	api.version = OUTRIGGER_VERSION;
	api.sched = sched;
	api.providers = providers;
	hc.listen = o.listen;
	hc.threads = o.threads;
	hc.max_conns = o.max_conns;
	hc.max_per_ip = o.max_per_ip;
	hc.timeout_s = o.timeout_s;
	hc.access_log = o.access_log;
	hc.sse = hub;
	if (http_start(&hc, &api, &web, &http, &err) != OR_OK) {
		fprintf(stderr, "outrigger: %s\n", err.message);
		goto out;
	}
	/* The one line scripts and tests wait for. */
	printf("outrigger %s listening on http://%.*s:%u/\n", OUTRIGGER_VERSION,
	       strncmp(o.listen, "0.0.0.0:", 8) == 0 ? 9 : (int)(strrchr(o.listen, ':') - o.listen),
	       strncmp(o.listen, "0.0.0.0:", 8) == 0 ? "127.0.0.1" : o.listen,
	       http_port(http));
	fflush(stdout);
	log_info("serving on %s (port %u), database %s", o.listen,
		 http_port(http), o.db);

	if (sigwait(&stop, &sig) != 0)
		sig = SIGTERM;
	log_info("%s received: finishing requests in flight, then stopping",
		 sig == SIGINT ? "SIGINT" : "SIGTERM");
	http_stop(http, STOP_GRACE_MS);
	status = 0;
	log_info("stopped cleanly");
out:
	sched_stop(sched);
	sse_hub_free(hub);
	if (sandbox_pid > 0) {
		kill(sandbox_pid, SIGTERM);
		waitpid(sandbox_pid, NULL, 0);
	}
	db_close(db);
	json_decref(providers);
	bp_set_free(&blueprints);
	plugin_set_free(&plugins);
	web_fini(&web);
	return status;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage, stderr);
		return 2;
	}
	/* Internal: a sandbox VM's namespace helper, before anything else
	 * (it must stay single-threaded). */
	if (strcmp(argv[1], "vm-init") == 0)
		return vm_init_main(argc, argv);
	/* Internal: the catalog server a sandbox VM's docker stand-in runs. */
	if (strcmp(argv[1], "sandbox-catalog") == 0)
		return catalog_main(argc, argv);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("outrigger %s\n", OUTRIGGER_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "serve") == 0)
		return cmd_serve(argc, argv);
	if (strcmp(argv[1], "migrate") == 0)
		return cmd_migrate(argc, argv);
	if (strcmp(argv[1], "sandbox") == 0)
		return sandbox_main(argc, argv);
	/* Internal: the step runner the scheduler starts (docs/engine.md). */
	if (strcmp(argv[1], "step") == 0)
		return step_main(argc, argv);
	if (strcmp(argv[1], "describe-plugin") == 0)
		return step_describe_main(argc, argv);
	die_usage("unknown command '%s'", argv[1]);
	return 2;
}

/*
 * scheduler.c - the scheduler thread (see scheduler.h and docs/engine.md).
 *
 * Everything here runs on one thread, so run and step state needs no
 * locks; the only way in from other threads is sched_wake (a pipe).  The
 * rule the whole file follows: a state change is committed to the store
 * before anything acts on it (a runner is started only after its step is
 * recorded as running; a dependent starts only after its dependency is
 * recorded as succeeded).
 */
#include "scheduler.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bp.h"
#include "buf.h"
#include "log.h"
#include "runner.h"

#define FLUSH_LINES 1024	/* log lines held before a forced flush */
#define FLUSH_MS 5		/* how long a log line may wait */
#define MAX_RUNNERS 256		/* poll slots: 3 each */
#define REDACTED "[redacted]"

enum st { ST_PENDING, ST_RUNNING, ST_SUCCEEDED, ST_FAILED, ST_SKIPPED, ST_CANCELLED };
static const char *const st_names[] = {"pending", "running", "succeeded",
				       "failed", "skipped", "cancelled"};

enum act { ACT_APPLY, ACT_DESTROY, ACT_PLAN };

struct sstep {
	struct srun *run;
	size_t idx;
	const char *name;	/* borrowed from run->graph */
	const char *plugin;
	json_t *with;
	size_t *deps, ndeps;	/* what must succeed first (reversed for destroy) */
	int max_attempts;
	enum st status;
	int attempts, round_attempts;
	long long retry_at;	/* ms since the epoch; 0: now */
	char started_at[32], finished_at[32];
	json_t *outputs;	/* owned */
	char err_code[64];
	char err_msg[1024];
	struct runner *runner;
	json_t *result;		/* the runner's result message, owned */
	long long kill_at;	/* ms: next escalation after a SIGTERM */
	int term_sent, hup_sent;
	int wstatus;		/* of the runner, once reaped */
};

struct srun {
	struct sched *sched;
	long long id, env_id;
	char env[64], provider[16];
	enum act action;
	json_t *graph, *params, *outputs_map, *secrets, *step_state; /* owned */
	struct sstep *steps;
	size_t n;
	long long seq;		/* last event number used */
	int started;		/* status is running in the store */
	char started_at[32];
	int cancel;		/* cancel requested */
	int failed;		/* a step failed for good */
	int seen;		/* still active in the store (pump bookkeeping) */
	struct srun *next;
};

struct sched {
	struct sched_cfg cfg;
	pthread_t thread;
	int wake[2];
	atomic_int stopping;
	struct srun *runs;
	unsigned running;	/* runners alive */
	/* Events not yet committed, in order, with their data owned here. */
	struct db_event *pending;
	size_t npending, cap;
	long long pending_since;	/* ms */
};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *
act_name(enum act a)
{
	return a == ACT_APPLY ? "apply" : a == ACT_DESTROY ? "destroy" : "plan";
}

/* ---- events and commits -------------------------------------------------- */

static void
free_pending(struct sched *s)
{
	size_t i;

	for (i = 0; i < s->npending; i++)
		free(s->pending[i].data);
	s->npending = 0;
}

/* Queue an event of run r; takes ownership of data. */
static void
emit(struct sched *s, struct srun *r, const char *kind, const char *step,
     const char *stream, char *data)
{
	struct db_event *e, *v;

	if (data == NULL)
		return;
	if (s->npending == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;

		v = realloc(s->pending, cap * sizeof(*v));
		if (v == NULL) {
			free(data);
			return;
		}
		s->pending = v;
		s->cap = cap;
	}
	if (s->npending == 0)
		s->pending_since = now_ms();
	e = &s->pending[s->npending++];
	e->run = r->id;
	e->seq = ++r->seq;
	log_now_iso(e->ts, sizeof(e->ts));
	e->kind = kind;
	e->step = step;
	e->stream = stream;
	e->data = data;
}

static void
emit_json(struct sched *s, struct srun *r, const char *kind, const char *step,
	  json_t *data)
{
	char *text = json_dumps(data, JSON_COMPACT);

	json_decref(data);
	emit(s, r, kind, step, NULL, text);
}

/* Tell the listener about committed events, run by run. */
static void
publish(struct sched *s, const struct db_event *ev, size_t n, long long finished_run)
{
	size_t i = 0, j;

	if (s->cfg.on_events == NULL)
		return;
	while (i < n) {
		for (j = i; j < n && ev[j].run == ev[i].run; j++)
			;
		s->cfg.on_events(s->cfg.ctx, ev[i].run, ev + i, j - i,
				 ev[i].run == finished_run);
		i = j;
	}
}

/* Commit the pending events and ops in one transaction.  A failure here
 * means the store is unusable: keep trying, since acting on an
 * uncommitted change is the one thing this file must not do. */
static void
commit(struct sched *s, json_t *ops, long long finished_run)
{
	struct or_err err;
	int tries;

	for (tries = 0;; tries++) {
		if (db_sched_commit(s->cfg.db, s->pending, s->npending, ops, &err) == OR_OK)
			break;
		if (tries % 50 == 0)
			log_error("scheduler: cannot commit (%s); retrying", err.message);
		usleep(100000);
		if (atomic_load(&s->stopping) && tries > 20)
			break;
	}
	publish(s, s->pending, s->npending, finished_run);
	free_pending(s);
	json_decref(ops);
}

static json_t *
str_or_null(const char *v)
{
	return v != NULL && v[0] != '\0' ? json_string(v) : json_null();
}

/* The store's row for step st, as a commit op. */
static json_t *
step_op(struct sstep *st)
{
	return json_pack("{s:s, s:I, s:I, s:s, s:i, s:i, s:o, s:o, s:o, s:O, s:o, s:o, s:o}",
			 "op", "step", "run", (json_int_t)st->run->id,
			 "idx", (json_int_t)st->idx, "status", st_names[st->status],
			 "attempts", st->attempts, "round_attempts", st->round_attempts,
			 "retry_at", st->retry_at > 0 ? json_integer(st->retry_at) : json_null(),
			 "started_at", str_or_null(st->started_at),
			 "finished_at", str_or_null(st->finished_at),
			 "outputs", st->outputs,
			 "error_code", str_or_null(st->err_code),
			 "error_message", str_or_null(st->err_msg),
			 "runner_pid", st->runner != NULL ? json_integer(runner_pid(st->runner))
							  : json_null());
}

/* Record st's new status (event + row), committing at once. */
static void
set_status(struct sched *s, struct sstep *st, enum st status, json_t *more_ops)
{
	json_t *ev, *ops = more_ops != NULL ? more_ops : json_array();

	st->status = status;
	if (status == ST_RUNNING)
		log_now_iso(st->started_at, sizeof(st->started_at));
	if (status >= ST_SUCCEEDED)
		log_now_iso(st->finished_at, sizeof(st->finished_at));
	ev = json_pack("{s:s, s:s, s:i}", "step", st->name, "status", st_names[status],
		       "attempt", st->attempts);
	if (st->err_code[0] != '\0' && status != ST_RUNNING && status != ST_SUCCEEDED)
		json_object_set_new(ev, "error", json_pack("{s:s, s:s}", "code", st->err_code,
							   "message", st->err_msg));
	if (status == ST_PENDING && st->retry_at > 0)
		json_object_set_new(ev, "retry_at", json_integer(st->retry_at));
	emit_json(s, st->run, "step", st->name, ev);
	json_array_insert_new(ops, 0, step_op(st));
	commit(s, ops, 0);
}

/* ---- secrets out of logs ----------------------------------------------- */

/* Replace every occurrence of secret values (and of each long line of a
 * multi-line one, such as a PEM key) in text.  Returns a new string. */
static char *
redact(json_t *secrets, const char *text)
{
	const char *name, *val, *p, *nl;
	json_t *v;
	char *out = strdup(text), *hit, *next, piece[4096];
	size_t vlen, plen;

	json_object_foreach(secrets, name, v) {
		val = json_string_value(v);
		if (val == NULL || out == NULL)
			continue;
		for (p = val; *p != '\0'; p = nl != NULL ? nl + 1 : p + strlen(p)) {
			nl = strchr(p, '\n');
			plen = nl != NULL ? (size_t)(nl - p) : strlen(p);
			/* Whole single-line values from 4 bytes on; lines of a
			 * multi-line value from 16 (a PEM line is 64). */
			if (plen < (nl != NULL || p != val ? 16u : 4u) || plen >= sizeof(piece))
				continue;
			memcpy(piece, p, plen);
			piece[plen] = '\0';
			vlen = plen;
			while (out != NULL && (hit = strstr(out, piece)) != NULL) {
				size_t head = (size_t)(hit - out), tail = strlen(hit + vlen);

				next = malloc(head + strlen(REDACTED) + tail + 1);
				if (next == NULL) {
					free(out);
					return NULL;
				}
				memcpy(next, out, head);
				memcpy(next + head, REDACTED, strlen(REDACTED));
				memcpy(next + head + strlen(REDACTED), hit + vlen, tail + 1);
				free(out);
				out = next;
			}
		}
	}
	return out;
}

/* Redact buf in place (cut to size if the marker made it longer). */
static void
redact_into(json_t *secrets, char *buf, size_t size)
{
	char *clean = redact(secrets, buf);

	if (clean == NULL) {
		snprintf(buf, size, "%s", "(message withheld: out of memory)");
		return;
	}
	snprintf(buf, size, "%s", clean);
	free(clean);
}

/* ---- inputs ------------------------------------------------------------- */

/* The value a reference points at, or NULL (why says so). */
static json_t *
ref_value(struct srun *r, const struct bp_ref *ref, char *why, size_t size)
{
	json_t *outs = NULL, *v;
	size_t i;

	if (ref->kind == BP_REF_PARAM) {
		v = json_object_get(r->params, ref->name);
		if (v == NULL)
			snprintf(why, size, "parameter '%s' has no value", ref->name);
		return v;
	}
	if (r->action == ACT_APPLY) {
		for (i = 0; i < r->n; i++)
			if (strcmp(r->steps[i].name, ref->name) == 0)
				outs = r->steps[i].outputs;
	} else {
		/* Destroy and plan read what the last apply produced. */
		outs = json_object_get(json_object_get(r->step_state, ref->name), "outputs");
	}
	v = json_object_get(outs, ref->key);
	if (v == NULL && r->action == ACT_PLAN)
		return NULL; /* the caller writes "(known after apply)" */
	if (v == NULL)
		snprintf(why, size, "step '%s' produced no output '%s'%s", ref->name,
			 ref->key, r->action == ACT_DESTROY ? " in its last apply" : "");
	return v;
}

static json_t *
lookup(void *ctx, const struct bp_ref *ref, char *why, size_t size)
{
	return ref_value(ctx, ref, why, size);
}

static json_t *
resolve(struct srun *r, json_t *v, char *why, size_t size)
{
	return bp_resolve(v, lookup, r, why, size);
}

/* ---- starting and finishing steps --------------------------------------- */

static struct srun *find_run(struct sched *s, long long id);

/* 1 when no apply of the environment has recorded anything for st: no
 * state, no outputs. */
static int
never_applied(struct srun *r, struct sstep *st)
{
	json_t *holder = json_object_get(r->step_state, st->name);

	return json_object_size(json_object_get(holder, "state")) == 0 &&
	       json_object_size(json_object_get(holder, "outputs")) == 0;
}

static void
start_step(struct sched *s, struct sstep *st)
{
	struct srun *r = st->run;
	struct or_err err;
	json_t *inputs, *job, *state;
	char why[512] = "", attempt[16], run_id[32];

	st->attempts++;
	st->round_attempts++;
	st->retry_at = 0;
	/* Outputs come from the attempt that succeeds, never an earlier one. */
	json_object_clear(st->outputs);
	st->err_code[0] = st->err_msg[0] = '\0';
	json_decref(st->result);
	st->result = NULL;
	inputs = st->with != NULL ? resolve(r, st->with, why, sizeof(why)) : json_object();
	if (inputs == NULL && r->action == ACT_DESTROY && never_applied(r, st)) {
		/* A step reads only outputs of steps it comes after: when they
		 * are missing, this step never ran, made nothing, and has
		 * nothing to undo (an apply that failed early, then destroy). */
		emit(s, r, "log", st->name, "info",
		     strdup("nothing to undo: this step never ran in an apply"));
		set_status(s, st, ST_SUCCEEDED, NULL);
		return;
	}
	if (inputs == NULL) {
		snprintf(st->err_code, sizeof(st->err_code), "missing_input");
		snprintf(st->err_msg, sizeof(st->err_msg), "cannot compute the inputs: %s", why);
		r->failed = 1;
		set_status(s, st, ST_FAILED, NULL);
		return;
	}
	/* Committed first: a restart sees it running and runs it again. */
	set_status(s, st, ST_RUNNING, NULL);
	snprintf(attempt, sizeof(attempt), "%d", st->attempts);
	snprintf(run_id, sizeof(run_id), "%lld", r->id);
	state = json_object_get(json_object_get(r->step_state, st->name), "state");
	job = json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:s, s:s, s:s, s:s, s:s}, s:o, s:O, s:O?}",
			"action", act_name(r->action), "plugin", st->plugin,
			"plugins_dir", s->cfg.plugins_dir, "inputs", inputs,
			"info", "environment", r->env, "provider", r->provider,
			"step", st->name, "run", run_id, "attempt", attempt,
			"plugin", st->plugin,
			"state", state != NULL ? json_incref(state) : json_object(),
			"secrets", r->secrets,
			"provider", json_object_get(s->cfg.providers, r->provider));
	if (job == NULL || runner_spawn(job, &st->runner, &err) != OR_OK) {
		snprintf(st->err_code, sizeof(st->err_code), "spawn_failed");
		snprintf(st->err_msg, sizeof(st->err_msg), "%s",
			 job == NULL ? "out of memory" : err.message);
		st->runner = NULL;
		r->failed = 1;
		set_status(s, st, ST_FAILED, NULL);
		json_decref(job);
		return;
	}
	json_decref(job);
	s->running++;
	if (r->cancel) {
		runner_kill(st->runner, SIGTERM);
		st->term_sent = 1;
		st->kill_at = now_ms() + s->cfg.cancel_grace_ms;
	}
}

/* Exponential backoff with jitter: base * 2^(n-1), +-50 %, capped. */
static long long
backoff_ms(struct sched *s, int attempt)
{
	long long d = (long long)s->cfg.retry_base_ms << (attempt > 10 ? 10 : attempt - 1);

	if (d > 300000)
		d = 300000;
	return d / 2 + (long long)(random() % (d + 1));
}

/* The runner has exited (wstatus) and its streams are closed. */
static void
finish_step(struct sched *s, struct sstep *st, int wstatus)
{
	struct srun *r = st->run;
	const char *res = json_string_value(json_object_get(st->result, "status"));
	const char *code = json_string_value(json_object_get(st->result, "code"));
	const char *msg = json_string_value(json_object_get(st->result, "message"));
	json_t *ops = json_array();
	enum st next;

	runner_free(st->runner);
	st->runner = NULL;
	s->running--;
	st->kill_at = 0;
	if (res == NULL) {
		/* No result: the plugin crashed, or was killed. */
		if (st->term_sent) {
			res = "cancelled";
			code = "cancelled";
			msg = "cancelled";
		} else if (WIFSIGNALED(wstatus)) {
			snprintf(st->err_code, sizeof(st->err_code), "crashed");
			snprintf(st->err_msg, sizeof(st->err_msg),
				 "the %s plugin crashed: %s (signal %d)", st->plugin,
				 strsignal(WTERMSIG(wstatus)), WTERMSIG(wstatus));
			res = "failed";
		} else {
			snprintf(st->err_code, sizeof(st->err_code), "runner_failed");
			snprintf(st->err_msg, sizeof(st->err_msg),
				 "the step runner exited with status %d without a result",
				 WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
			res = "failed";
		}
	}
	if (code != NULL && st->err_code[0] == '\0')
		snprintf(st->err_code, sizeof(st->err_code), "%s", code);
	if (msg != NULL && st->err_msg[0] == '\0')
		snprintf(st->err_msg, sizeof(st->err_msg), "%s", msg);
	/* An error message often quotes what a command printed. */
	redact_into(r->secrets, st->err_msg, sizeof(st->err_msg));
	st->term_sent = 0;
	st->hup_sent = 0;

	if (strcmp(res, "ok") == 0) {
		st->err_code[0] = st->err_msg[0] = '\0';
		next = ST_SUCCEEDED;
		if (r->action == ACT_APPLY) {
			json_array_append_new(ops, json_pack("{s:s, s:I, s:s, s:O}", "op",
							     "step_outputs", "env",
							     (json_int_t)r->env_id, "step",
							     st->name, "outputs", st->outputs));
			json_object_set(json_object_get(r->step_state, st->name) != NULL
						? json_object_get(r->step_state, st->name)
						: (json_object_set_new(r->step_state, st->name,
								       json_object()),
						   json_object_get(r->step_state, st->name)),
					"outputs", st->outputs);
		}
	} else if (strcmp(res, "cancelled") == 0 || r->cancel) {
		next = ST_CANCELLED;
	} else if (strcmp(res, "retry") == 0 && st->round_attempts < st->max_attempts) {
		next = ST_PENDING;
		st->retry_at = now_ms() + backoff_ms(s, st->round_attempts);
		emit(s, r, "log", st->name, "warn",
		     strdup("attempt failed; it will be retried after a pause"));
	} else {
		if (strcmp(res, "retry") == 0) {
			size_t used = strlen(st->err_msg);

			snprintf(st->err_msg + used, sizeof(st->err_msg) - used,
				 " (gave up after %d attempts)", st->round_attempts);
		}
		next = ST_FAILED;
		r->failed = 1;
	}
	set_status(s, st, next, ops);
}

/* ---- lines from runners ----------------------------------------------------- */

static void
on_proto(struct sched *s, struct sstep *st, const char *line)
{
	struct srun *r = st->run;
	json_t *msg = json_loads(line, 0, NULL), *ops;
	const char *t = json_string_value(json_object_get(msg, "t"));
	const char *key, *val;
	char *clean;

	if (t == NULL) {
		emit(s, r, "log", st->name, "error",
		     strdup("the step runner sent a line that is not protocol JSON"));
	} else if (strcmp(t, "log") == 0) {
		clean = redact(r->secrets, json_string_value(json_object_get(msg, "text"))
						   ? json_string_value(json_object_get(msg, "text"))
						   : "");
		val = json_string_value(json_object_get(msg, "level"));
		if (val == NULL || (strcmp(val, "debug") != 0 && strcmp(val, "info") != 0 &&
				    strcmp(val, "warn") != 0 && strcmp(val, "error") != 0))
			val = "info";
		/* The stream names are static strings: the event outlives msg. */
		emit(s, r, "log", st->name,
		     strcmp(val, "debug") == 0 ? "debug" : strcmp(val, "warn") == 0 ? "warn"
						       : strcmp(val, "error") == 0 ? "error"
										    : "info",
		     clean);
	} else if (strcmp(t, "output") == 0) {
		key = json_string_value(json_object_get(msg, "key"));
		if (key != NULL && json_object_get(msg, "value") != NULL)
			json_object_set(st->outputs, key, json_object_get(msg, "value"));
	} else if (strcmp(t, "progress") == 0) {
		clean = redact(r->secrets, json_string_value(json_object_get(msg, "message"))
						   ? json_string_value(json_object_get(msg, "message"))
						   : "");
		emit_json(s, r, "step", st->name,
			  json_pack("{s:s, s:s, s:O, s:s?}", "step", st->name, "status", "running",
				    "progress", json_object_get(msg, "percent"), "message", clean));
		free(clean);
	} else if (strcmp(t, "state") == 0 || strcmp(t, "secret") == 0) {
		int is_state = strcmp(t, "state") == 0;
		json_t *holder;

		key = json_string_value(json_object_get(msg, is_state ? "key" : "name"));
		val = json_string_value(json_object_get(msg, "value"));
		if (key == NULL || val == NULL) {
			runner_answer(st->runner, 0);
			goto out;
		}
		ops = json_array();
		if (is_state) {
			holder = json_object_get(r->step_state, st->name);
			if (holder == NULL) {
				json_object_set_new(r->step_state, st->name,
						    json_pack("{s:{}, s:{}}", "state", "outputs"));
				holder = json_object_get(r->step_state, st->name);
			}
			if (!json_is_object(json_object_get(holder, "state")))
				json_object_set_new(holder, "state", json_object());
			json_object_set_new(json_object_get(holder, "state"), key, json_string(val));
			json_array_append_new(ops, json_pack("{s:s, s:I, s:s, s:O}", "op", "state",
							     "env", (json_int_t)r->env_id,
							     "step", st->name, "state",
							     json_object_get(holder, "state")));
		} else {
			json_object_set_new(r->secrets, key, json_string(val));
			json_array_append_new(ops, json_pack("{s:s, s:I, s:s, s:s}", "op", "secret",
							     "env", (json_int_t)r->env_id,
							     "name", key, "value", val));
		}
		commit(s, ops, 0);
		runner_answer(st->runner, 1);
	} else if (strcmp(t, "resource") == 0) {
		/* What the environment owns in the cloud, committed before the
		 * plugin goes on (destroy reads it). */
		val = json_string_value(json_object_get(msg, "op"));
		key = json_string_value(json_object_get(msg, "kind"));
		if (key == NULL || (strcmp(key, "cluster") != 0 && strcmp(key, "vm") != 0 &&
				    strcmp(key, "firewall_rule") != 0) ||
		    !json_is_string(json_object_get(msg, "name")) ||
		    !(json_object_get(msg, "attrs") == NULL || json_is_null(json_object_get(msg, "attrs")) ||
		      json_is_object(json_object_get(msg, "attrs")))) {
			runner_answer(st->runner, 0);
			goto out;
		}
		ops = json_array();
		json_array_append_new(ops, json_pack("{s:s, s:I, s:O?, s:O?, s:O?, s:O?, s:O?, s:s}",
						     "op", val != NULL && strcmp(val, "drop") == 0
								? "resource_drop" : "resource_put",
						     "env", (json_int_t)r->env_id,
						     "kind", json_object_get(msg, "kind"),
						     "name", json_object_get(msg, "name"),
						     "self_link", json_object_get(msg, "self_link"),
						     "status", json_object_get(msg, "status"),
						     "attrs", json_object_get(msg, "attrs"),
						     "step", st->name));
		commit(s, ops, 0);
		runner_answer(st->runner, 1);
	} else if (strcmp(t, "result") == 0) {
		json_decref(st->result);
		st->result = json_incref(msg);
	}
out:
	json_decref(msg);
}

static void
on_line(void *ctx, struct runner *rn, enum runner_stream stream, const char *line,
	size_t len, int truncated)
{
	struct sstep *st = ctx;
	struct srun *r = st->run;
	char *clean, *cut;
	size_t n;

	(void)rn;
	(void)len;
	if (stream == RUNNER_PROTO) {
		if (!truncated)
			on_proto(r->sched, st, line);
		return;
	}
	clean = redact(r->secrets, line);
	if (clean != NULL)
		utf8_fix(clean);
	if (clean != NULL && truncated) {
		n = strlen(clean);
		cut = realloc(clean, n + sizeof(" [line cut]"));
		if (cut != NULL) {
			memcpy(cut + n, " [line cut]", sizeof(" [line cut]"));
			clean = cut;
		}
	}
	emit(r->sched, r, "log", st->name, stream == RUNNER_STDOUT ? "stdout" : "stderr",
	     clean);
}

/* ---- runs --------------------------------------------------------------- */

static void
run_free(struct srun *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		free(r->steps[i].deps);
		json_decref(r->steps[i].outputs);
		json_decref(r->steps[i].result);
		runner_free(r->steps[i].runner);
	}
	free(r->steps);
	json_decref(r->graph);
	json_decref(r->params);
	json_decref(r->outputs_map);
	json_decref(r->secrets);
	json_decref(r->step_state);
	free(r);
}

static struct srun *
find_run(struct sched *s, long long id)
{
	struct srun *r;

	for (r = s->runs; r != NULL; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

static enum st
st_parse(const char *name)
{
	int i;

	for (i = 0; i <= ST_CANCELLED; i++)
		if (name != NULL && strcmp(name, st_names[i]) == 0)
			return (enum st)i;
	return ST_PENDING;
}

/* Load run id from the store and adopt it: steps left running by a
 * previous server are pending again (their runner died with it). */
static void
run_load(struct sched *s, long long id)
{
	struct or_err err;
	json_t *row = NULL, *g, *srow, *deps, *d;
	struct srun *r;
	struct sstep *st;
	const char *action;
	size_t i, j, k;
	int resumed = 0;

	if (db_sched_load(s->cfg.db, id, &row, &err) != OR_OK) {
		log_error("scheduler: cannot load run %lld: %s", id, err.message);
		return;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		goto out;
	r->sched = s;
	r->id = id;
	r->env_id = json_integer_value(json_object_get(row, "environment_id"));
	snprintf(r->env, sizeof(r->env), "%s", json_string_value(json_object_get(row, "environment")));
	snprintf(r->provider, sizeof(r->provider), "%s",
		 json_string_value(json_object_get(row, "provider")));
	action = json_string_value(json_object_get(row, "action"));
	r->action = strcmp(action, "destroy") == 0 ? ACT_DESTROY
		    : strcmp(action, "plan") == 0 ? ACT_PLAN
						  : ACT_APPLY;
	r->graph = json_incref(json_object_get(row, "graph"));
	r->params = json_incref(json_object_get(row, "params"));
	r->outputs_map = json_incref(json_object_get(row, "outputs_map"));
	r->secrets = json_incref(json_object_get(row, "secrets"));
	r->step_state = json_incref(json_object_get(row, "step_state"));
	r->seq = json_integer_value(json_object_get(row, "max_seq"));
	r->cancel = json_is_true(json_object_get(row, "cancel_requested"));
	r->started = strcmp(json_string_value(json_object_get(row, "status")), "running") == 0;
	if (json_is_string(json_object_get(row, "started_at")))
		snprintf(r->started_at, sizeof(r->started_at), "%s",
			 json_string_value(json_object_get(row, "started_at")));
	r->n = json_array_size(r->graph);
	r->steps = calloc(r->n + 1, sizeof(*r->steps));
	if (r->steps == NULL) {
		run_free(r);
		goto out;
	}
	for (i = 0; i < r->n; i++) {
		st = &r->steps[i];
		g = json_array_get(r->graph, i);
		st->run = r;
		st->idx = i;
		st->name = json_string_value(json_object_get(g, "name"));
		st->plugin = json_string_value(json_object_get(g, "plugin"));
		st->with = json_object_get(g, "with");
		st->max_attempts = 1 + (int)json_integer_value(json_object_get(g, "retries"));
		st->outputs = json_object();
		srow = json_array_get(json_object_get(row, "steps"), i);
		st->status = st_parse(json_string_value(json_object_get(srow, "status")));
		st->attempts = (int)json_integer_value(json_object_get(srow, "attempts"));
		st->round_attempts = (int)json_integer_value(json_object_get(srow, "round_attempts"));
		st->retry_at = json_integer_value(json_object_get(srow, "retry_at"));
		if (json_is_object(json_object_get(srow, "outputs")))
			json_object_update(st->outputs, json_object_get(srow, "outputs"));
		if (json_is_string(json_object_get(srow, "started_at")))
			snprintf(st->started_at, sizeof(st->started_at), "%s",
				 json_string_value(json_object_get(srow, "started_at")));
		if (json_is_string(json_object_get(srow, "error_code")))
			snprintf(st->err_code, sizeof(st->err_code), "%s",
				 json_string_value(json_object_get(srow, "error_code")));
		if (json_is_string(json_object_get(srow, "error_message")))
			snprintf(st->err_msg, sizeof(st->err_msg), "%s",
				 json_string_value(json_object_get(srow, "error_message")));
		if (st->status == ST_FAILED)
			r->failed = 1;
	}
	/* Dependencies: the graph's for apply and plan, reversed for destroy. */
	for (i = 0; i < r->n; i++) {
		st = &r->steps[i];
		deps = json_object_get(json_array_get(r->graph, i), "deps");
		st->deps = calloc(r->n + 1, sizeof(*st->deps));
		if (st->deps == NULL)
			continue;
		if (r->action != ACT_DESTROY) {
			json_array_foreach(deps, j, d)
				st->deps[st->ndeps++] = (size_t)json_integer_value(d);
			continue;
		}
		for (k = 0; k < r->n; k++)
			json_array_foreach(json_object_get(json_array_get(r->graph, k), "deps"), j, d)
				if ((size_t)json_integer_value(d) == i)
					st->deps[st->ndeps++] = k;
	}
	r->next = s->runs;
	s->runs = r;
	for (i = 0; i < r->n; i++) {
		st = &r->steps[i];
		if (st->status != ST_RUNNING)
			continue;
		emit(s, r, "log", st->name, "warn",
		     strdup("the server restarted while this step ran; running it again"));
		set_status(s, st, ST_PENDING, NULL);
		resumed++;
	}
	if (resumed > 0)
		log_info("scheduler: run %lld resumed (%d step(s) to run again)", id, resumed);
out:
	json_decref(row);
}

/* Is step st ready (1), blocked for good (-1), or waiting (0)? */
static int
step_ready(struct srun *r, struct sstep *st)
{
	enum st d;
	size_t i;
	int wait = 0;

	for (i = 0; i < st->ndeps; i++) {
		d = r->steps[st->deps[i]].status;
		if (d == ST_FAILED || d == ST_SKIPPED || d == ST_CANCELLED)
			return -1;
		if (d != ST_SUCCEEDED)
			wait = 1;
	}
	return wait ? 0 : 1;
}

/* The blueprint's outputs, from this run's step outputs. */
static json_t *
env_outputs(struct srun *r)
{
	char why[256] = "";
	json_t *o;

	o = resolve(r, r->outputs_map, why, sizeof(why));
	if (o == NULL) {
		log_warn("run %lld: outputs not complete: %s", r->id, why);
		o = json_object();
	}
	return o;
}

static void
run_finish(struct sched *s, struct srun *r)
{
	const char *status, *env_status = NULL;
	char now[32], msg[1200] = "", code[64] = "";
	json_t *ops, *outputs = NULL;
	size_t i;

	status = r->cancel ? "cancelled" : r->failed ? "failed" : "succeeded";
	for (i = 0; i < r->n && r->failed && code[0] == '\0'; i++)
		if (r->steps[i].status == ST_FAILED) {
			snprintf(code, sizeof(code), "%s", r->steps[i].err_code);
			snprintf(msg, sizeof(msg), "step %s failed: %s", r->steps[i].name,
				 r->steps[i].err_msg);
		}
	if (r->action == ACT_APPLY) {
		env_status = strcmp(status, "succeeded") == 0 ? "ready" : "failed";
		if (strcmp(status, "succeeded") == 0)
			outputs = env_outputs(r);
	} else if (r->action == ACT_DESTROY) {
		env_status = strcmp(status, "succeeded") == 0 ? "destroyed" : "failed";
		if (strcmp(status, "succeeded") == 0)
			outputs = json_object();
	}
	log_now_iso(now, sizeof(now));
	emit_json(s, r, "run", NULL, json_pack("{s:s}", "status", status));
	ops = json_pack("[{s:s, s:I, s:s, s:o, s:s, s:o, s:o}, {s:s, s:I, s:o, s:o, s:b}]",
			"op", "run", "id", (json_int_t)r->id, "status", status,
			"started_at", str_or_null(r->started_at), "finished_at", now,
			"error_code", str_or_null(code), "error_message", str_or_null(msg),
			"op", "env", "id", (json_int_t)r->env_id,
			"status", str_or_null(env_status),
			"outputs", outputs != NULL ? outputs : json_null(), "unlock", 1);
	commit(s, ops, r->id);
	log_info("run %lld (%s of %s) %s", r->id, act_name(r->action), r->env, status);
}

/* Advance run r: start what can start, settle what can no longer run.
 * Returns 1 when it has finished. */
static int
run_step(struct sched *s, struct srun *r, long long now, long long *wake_at)
{
	struct sstep *st;
	size_t i;
	int busy, ready, changed;

	if (!r->started) {
		r->started = 1;
		log_now_iso(r->started_at, sizeof(r->started_at));
		emit_json(s, r, "run", NULL, json_pack("{s:s}", "status", "running"));
		commit(s, json_pack("[{s:s, s:I, s:s, s:s, s:n, s:n, s:n}]", "op", "run",
				    "id", (json_int_t)r->id, "status", "running",
				    "started_at", r->started_at, "finished_at",
				    "error_code", "error_message"),
		       0);
	}
	/* Settling one step can settle its dependents: go round until
	 * nothing changes. */
	do {
		busy = 0;
		changed = 0;
		for (i = 0; i < r->n; i++) {
			st = &r->steps[i];
			if (st->status == ST_RUNNING) {
				busy = 1;
				if (r->cancel && !st->term_sent && st->runner != NULL) {
					runner_kill(st->runner, SIGTERM);
					st->term_sent = 1;
					st->kill_at = now + s->cfg.cancel_grace_ms;
				}
				continue;
			}
			if (st->status != ST_PENDING)
				continue;
			if (r->cancel) {
				set_status(s, st, ST_CANCELLED, NULL);
				changed = 1;
				continue;
			}
			ready = step_ready(r, st);
			if (ready < 0 || (r->failed && ready == 1)) {
				/* Blocked for good, or the run failed elsewhere: a
				 * step that was waiting out a retry ends failed
				 * with its last error, the others skipped. */
				if (st->attempts > 0 && st->retry_at > 0) {
					size_t used = strlen(st->err_msg);

					snprintf(st->err_msg + used, sizeof(st->err_msg) - used,
						 " (not tried again: the run failed)");
					st->retry_at = 0;
					set_status(s, st, ST_FAILED, NULL);
				} else {
					set_status(s, st, ST_SKIPPED, NULL);
				}
				changed = 1;
				continue;
			}
			busy = 1;
			if (ready == 0)
				continue;
			if (st->retry_at > now) {
				if (*wake_at == 0 || st->retry_at < *wake_at)
					*wake_at = st->retry_at;
				continue;
			}
			if (s->running >= s->cfg.max_parallel || s->running >= MAX_RUNNERS)
				continue;
			start_step(s, st);
			if (st->status != ST_RUNNING)
				changed = 1; /* it failed to start */
		}
	} while (changed);
	if (busy)
		return 0;
	run_finish(s, r);
	return 1;
}

/* Look at the store and at every run: adopt new runs, notice cancels,
 * start steps, finish runs.  *wake_at: the earliest retry time. */
static void
pump(struct sched *s, long long *wake_at)
{
	struct or_err err;
	struct srun *r, **pp;
	json_t *active = NULL, *a;
	long long now = now_ms(), id;
	size_t i;

	if (db_sched_active(s->cfg.db, &active, &err) != OR_OK) {
		log_error("scheduler: %s", err.message);
		return;
	}
	for (r = s->runs; r != NULL; r = r->next)
		r->seen = 0;
	json_array_foreach(active, i, a) {
		id = json_integer_value(json_object_get(a, "id"));
		r = find_run(s, id);
		if (r == NULL) {
			run_load(s, id);
			r = find_run(s, id);
		}
		if (r == NULL)
			continue;
		r->seen = 1;
		if (json_is_true(json_object_get(a, "cancel_requested")) && !r->cancel) {
			r->cancel = 1;
			emit(s, r, "log", NULL, "info", strdup("cancel requested"));
		}
	}
	json_decref(active);
	for (pp = &s->runs; *pp != NULL;) {
		r = *pp;
		/* A run that is no longer active in the store and has
		 * nothing running is done with (retried runs come back). */
		if (run_step(s, r, now, wake_at)) {
			*pp = r->next;
			run_free(r);
			continue;
		}
		pp = &r->next;
	}
}

/* ---- the thread ------------------------------------------------------- */

/* Kill runners past their grace, reap the ones that exited.  Returns how
 * many steps finished (the caller looks at the graph again at once). */
static int
reap_and_kill(struct sched *s, long long now, long long *wake_at)
{
	int finished = 0;
	struct srun *r;
	struct sstep *st;
	size_t i;
	int ws;

	for (r = s->runs; r != NULL; r = r->next) {
		for (i = 0; i < r->n; i++) {
			st = &r->steps[i];
			if (st->runner == NULL)
				continue;
			if (st->kill_at > 0 && now >= st->kill_at && !st->hup_sent) {
				/* SIGHUP: the runner kills what its plugin started
				 * (a command's own process group), then itself. */
				runner_kill(st->runner, SIGHUP);
				st->hup_sent = 1;
				st->kill_at = now + 500;
			} else if (st->kill_at > 0 && now >= st->kill_at) {
				runner_kill(st->runner, SIGKILL);
				st->kill_at = 0;
			} else if (st->kill_at > 0 && (*wake_at == 0 || st->kill_at < *wake_at)) {
				*wake_at = st->kill_at;
			}
			/* Reaped as soon as it exits (its pidfd wakes us), then
			 * finished once its streams are drained too. */
			if (!runner_reap(st->runner, &st->wstatus)) {
				if (runner_eof(st->runner) && (*wake_at == 0 || now + 2 < *wake_at))
					*wake_at = now + 2; /* no pidfd: look again soon */
				continue;
			}
			if (!runner_eof(st->runner))
				continue;
			ws = st->wstatus;
			finish_step(s, st, ws);
			finished++;
		}
	}
	return finished;
}

static void *
sched_main(void *arg)
{
	struct sched *s = arg;
	struct pollfd fds[1 + MAX_RUNNERS * 4];
	void *tags[1 + MAX_RUNNERS * 4];
	struct sstep *owner[1 + MAX_RUNNERS * 4];
	struct srun *r;
	long long now, wake_at;
	char drain[256];
	int n, k, timeout, i;
	size_t j;

	while (!atomic_load(&s->stopping)) {
		wake_at = 0;
		pump(s, &wake_at);
		now = now_ms();
		if (reap_and_kill(s, now, &wake_at) > 0)
			wake_at = now; /* dependents may start now */

		fds[0].fd = s->wake[0];
		fds[0].events = POLLIN;
		fds[0].revents = 0;
		n = 1;
		for (r = s->runs; r != NULL; r = r->next)
			for (j = 0; j < r->n; j++) {
				if (r->steps[j].runner == NULL ||
				    n + 4 > (int)(sizeof(fds) / sizeof(fds[0])))
					continue;
				k = runner_pollfds(r->steps[j].runner, fds + n, tags + n);
				for (i = 0; i < k; i++)
					owner[n + i] = &r->steps[j];
				n += k;
			}
		timeout = 1000;
		if (wake_at > 0)
			timeout = wake_at - now < 0 ? 0 : (int)(wake_at - now < 1000 ? wake_at - now : 1000);
		if (s->npending > 0) {
			long long due = s->pending_since + FLUSH_MS - now;

			if (due < timeout)
				timeout = due < 0 ? 0 : (int)due;
		}
		if (poll(fds, (nfds_t)n, timeout) < 0 && errno != EINTR)
			log_error("scheduler: poll: %s", strerror(errno));
		if (fds[0].revents & POLLIN)
			while (read(s->wake[0], drain, sizeof(drain)) > 0)
				;
		for (i = 1; i < n; i++)
			if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
				runner_read(owner[i]->runner, tags[i], on_line, owner[i]);
		/* Log lines wait at most FLUSH_MS, and never pile up. */
		if (s->npending >= FLUSH_LINES ||
		    (s->npending > 0 && now_ms() - s->pending_since >= FLUSH_MS))
			commit(s, NULL, 0);
	}
	return NULL;
}

or_rc
sched_start(const struct sched_cfg *cfg, struct sched **out, struct or_err *err)
{
	struct sched *s;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	s->cfg = *cfg;
	if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		free(s);
		return or_fail(err, OR_E_IO, NULL, NULL, "pipe: %s", strerror(errno));
	}
	srandom((unsigned)(time(NULL) ^ getpid()));
	if (pthread_create(&s->thread, NULL, sched_main, s) != 0) {
		close(s->wake[0]);
		close(s->wake[1]);
		free(s);
		return or_fail(err, OR_E_IO, NULL, NULL, "cannot start the scheduler thread");
	}
	*out = s;
	return OR_OK;
}

void
sched_wake(struct sched *s)
{
	ssize_t n;

	if (s == NULL)
		return;
	n = write(s->wake[1], "w", 1);
	(void)n; /* a full pipe already means "look again" */
}

void
sched_stop(struct sched *s)
{
	struct srun *r, *next;
	size_t i;
	int ws, tries;

	if (s == NULL)
		return;
	atomic_store(&s->stopping, 1);
	sched_wake(s);
	pthread_join(s->thread, NULL);
	/* Flush what the runners said; their steps stay "running" in the
	 * store, so the next start runs them again. */
	if (s->npending > 0)
		commit(s, NULL, 0);
	/* SIGHUP first: a runner then takes down what its plugin started
	 * (as when the server dies), before SIGKILL makes sure. */
	for (r = s->runs; r != NULL; r = r->next)
		for (i = 0; i < r->n; i++)
			if (r->steps[i].runner != NULL)
				runner_kill(r->steps[i].runner, SIGHUP);
	usleep(50000);
	for (r = s->runs; r != NULL; r = r->next)
		for (i = 0; i < r->n; i++)
			if (r->steps[i].runner != NULL)
				runner_kill(r->steps[i].runner, SIGKILL);
	for (r = s->runs; r != NULL; r = next) {
		next = r->next;
		for (i = 0; i < r->n; i++)
			for (tries = 0; r->steps[i].runner != NULL && tries < 200; tries++) {
				if (runner_reap(r->steps[i].runner, &ws))
					break;
				usleep(5000);
			}
		run_free(r);
	}
	free_pending(s);
	free(s->pending);
	close(s->wake[0]);
	close(s->wake[1]);
	free(s);
}

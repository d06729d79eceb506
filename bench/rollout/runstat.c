/*
 * runstat.c - bench/rollout's reader of a run's JSON (GET /api/v1/runs/{id})
 * and of small JSON answers, so the script needs neither jq nor python.
 *
 *   runstat run FILE     one line: "status wall_ms critical_ms sum_ms steps
 *                        succeeded attempts path" -- wall is the run's own
 *                        started_at..finished_at; critical is the longest
 *                        path through the step graph (each step's `after`)
 *                        weighted by each step's started_at..finished_at,
 *                        the floor no scheduler can beat with these step
 *                        durations; sum is every step's duration added up
 *                        (what running them one after another would cost);
 *                        path names the critical steps, joined by '>', in
 *                        the order they ran (a destroy walks the graph
 *                        backwards, so its path is apply's reversed).
 *   runstat steps FILE   one TSV line per step: name, status, attempts,
 *                        start_ms (from the run's start), duration_ms,
 *                        critical (1 when on the critical path), after.
 *   runstat get FILE KEY[.KEY...]
 *                        the value there: a string as it is, anything else
 *                        as compact JSON; nothing (and exit 1) when absent.
 *
 * Times are the server's (ISO 8601, milliseconds, UTC).  Exit status 2 on
 * a file that is not the JSON expected.  libc and jansson only.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strptime, timegm */
#endif
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_STEPS 512

struct step {
	const char *name;
	const char *status;
	long long start, end; /* epoch ms, -1 when not set */
	long long attempts;
	json_t *after;
	long long best;	      /* longest path ending here, -1: not computed */
	int prev;	      /* predecessor on that path, -1: none */
	int busy;	      /* cycle guard */
	int critical;
};

/* "2026-11-26T12:10:40.440Z" -> epoch ms; -1 when absent or malformed. */
static long long
iso_ms(const char *s)
{
	struct tm tm;
	int ms = 0;
	char *end;

	if (s == NULL)
		return -1;
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL)
		return -1;
	if (*end == '.') {
		int digits = 0;

		for (end++; *end >= '0' && *end <= '9'; end++, digits++)
			if (digits < 3)
				ms = ms * 10 + (*end - '0');
		for (; digits < 3; digits++)
			ms *= 10;
	}
	return (long long)timegm(&tm) * 1000 + ms;
}

static int
find(struct step *st, int n, const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(st[i].name, name) == 0)
			return i;
	return -1;
}

static long long
dur(const struct step *s)
{
	return s->start >= 0 && s->end >= s->start ? s->end - s->start : 0;
}

/* The longest duration-weighted path that ends with step i. */
static long long
longest(struct step *st, int n, int i)
{
	size_t k;
	json_t *a;
	long long best = 0;
	int j;

	if (st[i].best >= 0)
		return st[i].best;
	if (st[i].busy) {
		fprintf(stderr, "runstat: the steps' after lists form a cycle at %s\n", st[i].name);
		exit(2);
	}
	st[i].busy = 1;
	st[i].prev = -1;
	json_array_foreach(st[i].after, k, a) {
		j = json_is_string(a) ? find(st, n, json_string_value(a)) : -1;
		if (j < 0)
			continue;
		if (longest(st, n, j) > best || st[i].prev < 0) {
			best = longest(st, n, j);
			st[i].prev = j;
		}
	}
	st[i].busy = 0;
	st[i].best = best + dur(&st[i]);
	return st[i].best;
}

static json_t *
load(const char *file)
{
	json_error_t e;
	json_t *j = json_load_file(file, JSON_DECODE_ANY, &e);

	if (j == NULL) {
		fprintf(stderr, "runstat: %s: %s (line %d)\n", file, e.text, e.line);
		exit(2);
	}
	return j;
}

static int
cmd_get(const char *file, const char *path)
{
	json_t *root = load(file), *v = root;
	char *p = strdup(path), *key, *save = NULL, *text;
	int rc = 1;

	if (p == NULL)
		exit(2);
	for (key = strtok_r(p, ".", &save); key != NULL && v != NULL; key = strtok_r(NULL, ".", &save)) {
		char *end;
		long idx = strtol(key, &end, 10);

		if (json_is_array(v) && *end == '\0')
			v = json_array_get(v, (size_t)idx);
		else
			v = json_object_get(v, key);
	}
	if (v != NULL && !json_is_null(v)) {
		if (json_is_string(v)) {
			printf("%s\n", json_string_value(v));
		} else {
			text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
			printf("%s\n", text != NULL ? text : "");
			free(text);
		}
		rc = 0;
	}
	free(p);
	json_decref(root);
	return rc;
}

static int
cmd_run(const char *file, int per_step)
{
	json_t *root = load(file), *steps = json_object_get(root, "steps"), *s;
	static struct step st[MAX_STEPS];
	long long run0, run1, crit = 0, sum = 0, attempts = 0;
	int n = 0, ok = 0, last = -1, i, j, reverse;
	size_t k;
	char path[4096] = "", tmp[4096];

	if (!json_is_array(steps) || json_array_size(steps) > MAX_STEPS) {
		fprintf(stderr, "runstat: %s has no steps array (or more than %d steps)\n", file,
			MAX_STEPS);
		exit(2);
	}
	json_array_foreach(steps, k, s) {
		st[n].name = json_string_value(json_object_get(s, "name"));
		st[n].status = json_string_value(json_object_get(s, "status"));
		if (st[n].name == NULL)
			continue;
		if (st[n].status == NULL)
			st[n].status = "?";
		st[n].start = iso_ms(json_string_value(json_object_get(s, "started_at")));
		st[n].end = iso_ms(json_string_value(json_object_get(s, "finished_at")));
		st[n].attempts = json_integer_value(json_object_get(s, "attempts"));
		st[n].after = json_object_get(s, "after");
		st[n].best = -1;
		st[n].prev = -1;
		st[n].busy = 0;
		st[n].critical = 0;
		n++;
	}
	for (i = 0; i < n; i++) {
		if (longest(st, n, i) > crit || last < 0) {
			crit = longest(st, n, i);
			last = i;
		}
		sum += dur(&st[i]);
		attempts += st[i].attempts;
		if (strcmp(st[i].status, "succeeded") == 0)
			ok++;
	}
	/* A destroy runs the graph in reverse (the run keeps apply's
	 * `after`): the same chains, walked the other way. */
	reverse = json_is_string(json_object_get(root, "action")) &&
		  strcmp(json_string_value(json_object_get(root, "action")), "destroy") == 0;
	for (j = last; j >= 0; j = st[j].prev) {
		st[j].critical = 1;
		if (reverse)
			snprintf(tmp, sizeof(tmp), "%s%s%s", path, path[0] != '\0' ? ">" : "", st[j].name);
		else
			snprintf(tmp, sizeof(tmp), "%s%s%s", st[j].name, path[0] != '\0' ? ">" : "", path);
		memcpy(path, tmp, sizeof(path));
	}
	run0 = iso_ms(json_string_value(json_object_get(root, "started_at")));
	run1 = iso_ms(json_string_value(json_object_get(root, "finished_at")));
	if (per_step) {
		for (i = 0; i < n; i++) {
			char *after = json_dumps(st[i].after != NULL ? st[i].after : json_array(),
						 JSON_COMPACT | JSON_ENCODE_ANY);

			printf("%s\t%s\t%lld\t%lld\t%lld\t%d\t%s\n", st[i].name, st[i].status,
			       st[i].attempts, st[i].start >= 0 && run0 >= 0 ? st[i].start - run0 : -1,
			       dur(&st[i]), st[i].critical, after != NULL ? after : "[]");
			free(after);
		}
	} else {
		const char *status = json_string_value(json_object_get(root, "status"));

		printf("%s %lld %lld %lld %d %d %lld %s\n", status != NULL ? status : "?",
		       run0 >= 0 && run1 >= run0 ? run1 - run0 : -1, crit, sum, n, ok, attempts,
		       path[0] != '\0' ? path : "-");
	}
	json_decref(root);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "run") == 0)
		return cmd_run(argv[2], 0);
	if (argc == 3 && strcmp(argv[1], "steps") == 0)
		return cmd_run(argv[2], 1);
	if (argc == 4 && strcmp(argv[1], "get") == 0)
		return cmd_get(argv[2], argv[3]);
	fprintf(stderr, "usage: runstat run FILE | runstat steps FILE | runstat get FILE KEY[.KEY...]\n");
	return 2;
}

/*
 * test_bp.c - blueprint loading: references, graph order, cycles, every
 * load error, parameter checks; and the two shipped tutorial blueprints.
 */
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bp.h"
#include "unit.h"

/* Every plugin the shipped blueprints name, as if installed. */
static char *tutorial_plugins[] = {
	"boutique-deploy", "cluster-admin-binding", "exec", "gce-firewall",
	"gce-instance", "gke-cluster", "ingress-ip", "istio-install",
	"kiali-link", "mesh-ca", "mesh-register", "preflight", "vm-bootstrap", "vm-files",
	"wait"};

static struct plugin_set all_plugins = {tutorial_plugins,
					sizeof(tutorial_plugins) / sizeof(tutorial_plugins[0]), NULL};

static void
write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL)
		return;
	fputs(text, f);
	fclose(f);
}

/* Load one blueprint file with this text; returns its load_error (a copy,
 * "" when it loaded) in out. */
static void
load_text(const char *name, const char *text, char *out, size_t size)
{
	char dir[64], file[80];
	const char *dirs[1];
	struct bp_set set;
	struct plugin_set ps = {0};

	tmpdir_make(dir, sizeof(dir));
	snprintf(file, sizeof(file), "%s.json", name);
	write_file(dir, file, text);
	dirs[0] = dir;
	plugin_set_scan(&ps, NULL, NULL); /* the built-ins: exec, wait */
	out[0] = '\0';
	if (bp_set_load(&set, dirs, 1, &ps, NULL) == OR_OK) {
		if (set.n == 1 && set.v[0].load_error != NULL)
			snprintf(out, size, "%s", set.v[0].load_error);
		else if (set.n != 1)
			snprintf(out, size, "set has %zu blueprints", set.n);
		bp_set_free(&set);
	} else {
		snprintf(out, size, "set did not load");
	}
	plugin_set_free(&ps);
	tmpdir_remove(dir);
}

static void
t_ref_parse(void)
{
	struct bp_ref ref;
	const char *s = "a ${params.zone} $HOME ${HOME} ${steps.vm.outputs.ip_addr}!";
	size_t pos = 0;

	CHECK_INT(bp_ref_next(s, &pos, &ref), 1);
	CHECK_INT(ref.kind, BP_REF_PARAM);
	CHECK_STR(ref.name, "zone");
	CHECK_INT(ref.start, 2);
	CHECK_INT(ref.len, strlen("${params.zone}"));
	CHECK_INT(bp_ref_next(s, &pos, &ref), 1);
	CHECK_INT(ref.kind, BP_REF_STEP_OUTPUT);
	CHECK_STR(ref.name, "vm");
	CHECK_STR(ref.key, "ip_addr");
	CHECK_INT(bp_ref_next(s, &pos, &ref), 0);

	pos = 0;
	CHECK_INT(bp_ref_next("${params.}", &pos, &ref), -1);
	pos = 0;
	CHECK_INT(bp_ref_next("${params.zone", &pos, &ref), -1);
	pos = 0;
	CHECK_INT(bp_ref_next("${steps.vm.output.ip}", &pos, &ref), -1);
	pos = 0;
	CHECK_INT(bp_ref_next("${steps.vm.outputs.}", &pos, &ref), -1);
	pos = 0;
	CHECK_INT(bp_ref_next("echo ${PATH} $$ ${", &pos, &ref), 0);
}

static void
t_load_demo(void)
{
	const char *dirs[] = {"tests/blueprints"};
	struct plugin_set ps = {0};
	struct bp_set set;
	const struct bp *bp;
	size_t i, pos[3];

	CHECK_INT(plugin_set_scan(&ps, NULL, NULL), OR_OK);
	CHECK_INT(bp_set_load(&set, dirs, 1, &ps, NULL), OR_OK);
	bp = bp_set_find(&set, "demo");
	CHECK(bp != NULL);
	if (bp == NULL)
		goto out;
	CHECK(bp->load_error == NULL);
	CHECK_INT(bp->nsteps, 3);
	CHECK_INT(bp->nparams, 5);
	/* finish waits for count ("after") and greet (its output). */
	CHECK_INT(bp->steps[2].ndeps, 2);
	for (i = 0; i < 3; i++)
		pos[bp->order[i]] = i;
	CHECK(pos[2] > pos[0] && pos[2] > pos[1]);
out:
	bp_set_free(&set);
	plugin_set_free(&ps);
}

#define STEP_OK "{\"name\":\"a\",\"plugin\":\"exec\",\"with\":{}}"
#define BP(params, steps) \
	"{\"name\":\"x\",\"description\":\"d\",\"params\":" params ",\"steps\":" steps "}"

static void
t_load_errors(void)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{"{\"name\":", "not valid JSON: line 1"},
		{"[1]", "must hold a JSON object"},
		{"{\"name\":\"y\",\"description\":\"d\",\"steps\":[" STEP_OK "]}", "file's name"},
		{"{\"name\":\"x\",\"steps\":[" STEP_OK "]}", "description"},
		{BP("{}", "[" STEP_OK "]") "", ""},
		{"{\"name\":\"x\",\"description\":\"d\",\"steps\":[" STEP_OK "],\"colour\":1}",
		 "unknown top-level field 'colour'"},
		{BP("{}", "[]"), "non-empty array"},
		{BP("{}", "[{\"name\":\"a\",\"plugin\":\"teleport\"}]"), "unknown plugin 'teleport'"},
		{BP("{}", "[{\"name\":\"A\",\"plugin\":\"exec\"}]"), "needs a \"name\""},
		{BP("{}", "[{\"name\":\"a\",\"plugin\":\"exec\"},{\"name\":\"a\",\"plugin\":\"exec\"}]"),
		 "two steps are named 'a'"},
		{BP("{}", "[{\"name\":\"a\",\"plugin\":\"exec\",\"retry\":1}]"), "unknown field 'retry'"},
		{BP("{}", "[{\"name\":\"a\",\"plugin\":\"exec\",\"with\":{\"x\":\"${params.zone}\"}}]"),
		 "unknown parameter 'zone'"},
		{BP("{}", "[{\"name\":\"a\",\"plugin\":\"exec\",\"with\":{\"x\":[\"${steps.b.outputs.ip}\"]}}]"),
		 "unknown step 'b'"},
		{BP("{}", "[{\"name\":\"a\",\"plugin\":\"exec\",\"with\":{\"x\":\"${steps.b.ip}\"}}]"),
		 "malformed reference"},
		{BP("{}", "[{\"name\":\"a\",\"plugin\":\"exec\",\"after\":[\"zz\"]}]"),
		 "after unknown step 'zz'"},
		{BP("{}", "[{\"name\":\"a\",\"plugin\":\"exec\",\"after\":[\"b\"]},"
			  "{\"name\":\"b\",\"plugin\":\"exec\",\"with\":{\"v\":\"${steps.a.outputs.k}\"}}]"),
		 "cycle: a -> b -> a"},
		{BP("{}", "[{\"name\":\"a\",\"plugin\":\"exec\",\"after\":[\"a\"]}]"), "cycle: a -> a"},
		{BP("{}", "[{\"name\":\"a\",\"plugin\":\"exec\"},{\"name\":\"b\",\"plugin\":\"exec\",\"after\":[\"c\"]},"
			  "{\"name\":\"c\",\"plugin\":\"exec\",\"after\":[\"d\"]},{\"name\":\"d\",\"plugin\":\"exec\",\"after\":[\"b\",\"a\"]}]"),
		 "cycle: b -> c -> d -> b"},
		{BP("{\"p\":{\"description\":\"d\"}}", "[" STEP_OK "]"), "needs a \"type\""},
		{BP("{\"p\":{\"type\":\"text\",\"description\":\"d\"}}", "[" STEP_OK "]"), "needs a \"type\""},
		{BP("{\"p\":{\"type\":\"string\"}}", "[" STEP_OK "]"), "one-line \"description\""},
		{BP("{\"p\":{\"type\":\"string\",\"description\":\"d\",\"pattern\":\"([a-z\"}}", "[" STEP_OK "]"),
		 "not a valid extended regular expression"},
		{BP("{\"p\":{\"type\":\"string\",\"description\":\"d\",\"pattern\":\"^[a-z]+$\",\"default\":\"ABC\"}}",
		    "[" STEP_OK "]"), "its default must match"},
		{BP("{\"p\":{\"type\":\"integer\",\"description\":\"d\",\"maximum\":3,\"default\":5}}", "[" STEP_OK "]"),
		 "its default must be at most 3"},
		{BP("{\"p\":{\"type\":\"integer\",\"description\":\"d\",\"default\":\"5\"}}", "[" STEP_OK "]"),
		 "its default must be an integer"},
		{BP("{\"p\":{\"type\":\"string\",\"description\":\"d\",\"minimum\":1}}", "[" STEP_OK "]"),
		 "\"minimum\" must be a number, on a numeric parameter"},
		{BP("{\"p\":{\"type\":\"string\",\"description\":\"d\",\"enum\":[]}}", "[" STEP_OK "]"),
		 "\"enum\" must be a non-empty array"},
		{BP("{\"p\":{\"type\":\"string\",\"description\":\"d\",\"secret\":true}}", "[" STEP_OK "]"),
		 "unknown field 'secret'"},
		{"{\"name\":\"x\",\"description\":\"d\",\"steps\":[" STEP_OK "],\"outputs\":{\"ip\":\"${steps.q.outputs.ip}\"}}",
		 "outputs refers to unknown step 'q'"},
	};
	char got[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		load_text("x", cases[i].text, got, sizeof(got));
		if (cases[i].want[0] == '\0')
			CHECK_STR(got, "");
		else
			CHECK(strstr(got, cases[i].want) != NULL);
		if ((cases[i].want[0] == '\0') != (got[0] == '\0') ||
		    strstr(got, cases[i].want) == NULL)
			fprintf(stderr, "    case %zu: want \"%s\", got \"%s\"\n", i,
				cases[i].want, got);
	}
}

static json_t *
parse(const char *s)
{
	return json_loads(s, 0, NULL);
}

static void
expect_params(const struct bp *bp, const char *given, or_rc rc, const char *field)
{
	struct or_err err;
	json_t *g = parse(given), *out = NULL;
	or_rc got;

	or_err_clear(&err);
	got = bp_params_check(bp, g, &out, &err);
	CHECK_INT(got, rc);
	if (field != NULL)
		CHECK_STR(err.field, field);
	if (got != rc)
		fprintf(stderr, "    params %s: %s\n", given, err.message);
	json_decref(g);
	json_decref(out);
}

static void
t_tutorial_blueprints(void)
{
	const char *dirs[] = {"plugins/blueprints"};
	struct bp_set set;
	const struct bp *legacy, *cur;
	struct or_err err;
	json_t *g, *out = NULL;
	size_t i, j;

	CHECK_INT(bp_set_load(&set, dirs, 1, &all_plugins, NULL), OR_OK);
	legacy = bp_set_find(&set, "mesh-expansion-legacy");
	cur = bp_set_find(&set, "mesh-expansion");
	CHECK(legacy != NULL && cur != NULL);
	if (legacy == NULL || cur == NULL)
		goto out;
	CHECK(legacy->load_error == NULL);
	CHECK(cur->load_error == NULL);
	if (legacy->load_error != NULL)
		fprintf(stderr, "    legacy: %s\n", legacy->load_error);
	if (cur->load_error != NULL)
		fprintf(stderr, "    current: %s\n", cur->load_error);
	/* Cluster, VM and mesh CA start at once: each waits only for the
	 * pre-flight check, which waits for nothing. */
	for (i = 0; i < cur->nsteps; i++) {
		if (strcmp(cur->steps[i].plugin, "preflight") == 0)
			CHECK_INT(cur->steps[i].ndeps, 0);
		if (strcmp(cur->steps[i].plugin, "gke-cluster") == 0 ||
		    strcmp(cur->steps[i].plugin, "gce-instance") == 0 ||
		    strcmp(cur->steps[i].plugin, "mesh-ca") == 0) {
			CHECK_INT(cur->steps[i].ndeps, 1);
			if (cur->steps[i].ndeps == 1)
				CHECK_STR(cur->steps[cur->steps[i].deps[0]].plugin, "preflight");
		}
	}
	/* Every parameter has a one-line description and a group. */
	for (i = 0; i < cur->nparams; i++) {
		CHECK(json_is_string(json_object_get(cur->params[i].schema, "description")));
		CHECK(json_is_string(json_object_get(cur->params[i].schema, "group")));
	}

	/* Defaults from the tutorial. */
	g = parse("{\"project\":\"my-project-123\"}");
	CHECK_INT(bp_params_check(legacy, g, &out, &err), OR_OK);
	CHECK_STR(json_string_value(json_object_get(out, "zone")), "us-west2-a");
	CHECK_STR(json_string_value(json_object_get(out, "cluster_name")), "west");
	CHECK_STR(json_string_value(json_object_get(out, "istio_version")), "1.6.5");
	CHECK_STR(json_string_value(json_object_get(out, "vm_name")), "istio-gce");
	CHECK_STR(json_string_value(json_object_get(out, "boutique_version")), "v0.2.0");
	CHECK_INT(json_integer_value(json_object_get(out, "num_nodes")), 5);
	CHECK_INT(json_integer_value(json_object_get(out, "vm_port")), 3550);
	json_decref(out);
	out = NULL;
	CHECK_INT(bp_params_check(cur, g, &out, &err), OR_OK);
	CHECK_STR(json_string_value(json_object_get(out, "boutique_version")), "v0.10.6");
	json_decref(out);
	json_decref(g);

	for (j = 0; j < 2; j++) {
		const struct bp *bp = j == 0 ? legacy : cur;

		expect_params(bp, "{}", OR_E_INVALID, "params.project");
		expect_params(bp, "{\"project\":\"Bad_Project\"}", OR_E_INVALID, "params.project");
		expect_params(bp, "{\"project\":\"short\"}", OR_E_INVALID, "params.project");
		expect_params(bp, "{\"project\":\"ends-with-hyphen-\"}", OR_E_INVALID, "params.project");
		expect_params(bp, "{\"project\":\"my-project-1\",\"zone\":\"mars\"}", OR_E_INVALID, "params.zone");
		expect_params(bp, "{\"project\":\"my-project-1\",\"num_nodes\":0}", OR_E_INVALID, "params.num_nodes");
		expect_params(bp, "{\"project\":\"my-project-1\",\"vm_port\":70000}", OR_E_INVALID, "params.vm_port");
		expect_params(bp, "{\"project\":\"my-project-1\",\"boutique_version\":\"0.2\"}",
			      OR_E_INVALID, "params.boutique_version");
		expect_params(bp, "{\"project\":\"my-project-1\",\"namespace\":\"Default\"}",
			      OR_E_INVALID, "params.namespace");
		expect_params(bp, "{\"project\":\"my-project-1\",\"zone\":\"europe-west4-b\",\"num_nodes\":3}",
			      OR_OK, NULL);
	}
	expect_params(legacy, "{\"project\":\"my-project-1\",\"istio_version\":\"1.24.0\"}",
		      OR_E_INVALID, "params.istio_version");
	expect_params(cur, "{\"project\":\"my-project-1\",\"istio_version\":\"1.24.0\"}", OR_OK, NULL);
out:
	bp_set_free(&set);
}

/* Without their plugins installed the tutorial blueprints are listed but
 * not loadable, and the reason names the plugin. */
static void
t_unknown_plugins_listed(void)
{
	const char *dirs[] = {"plugins/blueprints"};
	struct plugin_set ps = {0};
	struct bp_set set;
	json_t *j;

	plugin_set_scan(&ps, NULL, NULL);
	CHECK_INT(bp_set_load(&set, dirs, 1, &ps, NULL), OR_OK);
	CHECK_INT(set.n, 2);
	CHECK(set.n > 0 && set.v[0].load_error != NULL &&
	      strstr(set.v[0].load_error, "unknown plugin") != NULL);
	if (set.n > 0) {
		j = bp_to_json(&set.v[0], 0);
		CHECK(json_is_false(json_object_get(j, "loadable")));
		CHECK(json_is_string(json_object_get(j, "load_error")));
		CHECK(json_object_size(json_object_get(j, "params")) == 17);
		json_decref(j);
	}
	bp_set_free(&set);
	plugin_set_free(&ps);
}

static void
t_missing_dir(void)
{
	const char *dirs[] = {"/nonexistent-outrigger-dir"};
	struct bp_set set;
	struct or_err err;

	CHECK_INT(bp_set_load(&set, dirs, 1, &all_plugins, &err), OR_E_NOTFOUND);
	CHECK(strstr(err.message, "/nonexistent-outrigger-dir") != NULL);
}

static void
t_plugin_scan(void)
{
	char dir[64];
	struct plugin_set ps;

	tmpdir_make(dir, sizeof(dir));
	write_file(dir, "gke-cluster.so", "");
	write_file(dir, "exec.so", "");	 /* a built-in name is not added twice */
	write_file(dir, "notes.txt", "");
	write_file(dir, ".hidden.so", "");
	CHECK_INT(plugin_set_scan(&ps, dir, NULL), OR_OK);
	CHECK_INT(ps.n, 3);
	CHECK(plugin_set_has(&ps, "gke-cluster"));
	CHECK(plugin_set_has(&ps, "exec"));
	CHECK(plugin_set_has(&ps, "wait"));
	CHECK(!plugin_set_has(&ps, "notes"));
	plugin_set_free(&ps);
	tmpdir_remove(dir);
}

/* A lookup over fixed params and step outputs; "later" is not known yet
 * (what a plan sees). */
static json_t *
fixture_lookup(void *ctx, const struct bp_ref *ref, char *why, size_t size)
{
	json_t *world = ctx, *v;

	if (ref->kind == BP_REF_PARAM) {
		v = json_object_get(json_object_get(world, "params"), ref->name);
	} else {
		if (strcmp(ref->name, "later") == 0)
			return NULL;
		v = json_object_get(json_object_get(json_object_get(world, "steps"), ref->name),
				    ref->key);
	}
	if (v == NULL)
		snprintf(why, size, "no value for %s", ref->name);
	return v;
}

static void
t_resolve(void)
{
	json_t *world = json_loads("{\"params\":{\"zone\":\"us\",\"n\":5,\"on\":true},"
				   "\"steps\":{\"cluster\":{\"ip\":\"10.0.0.1\",\"port\":443,"
				   "\"cidr\":[\"10.4.0.0/14\"]}}}", 0, NULL);
	json_t *in, *out;
	char why[128] = "", *text;

	in = json_loads("{\"n\":\"${params.n}\",\"on\":\"${params.on}\","
			"\"addr\":\"${steps.cluster.outputs.ip}:${steps.cluster.outputs.port}\","
			"\"cidr\":\"${steps.cluster.outputs.cidr}\","
			"\"argv\":[\"sh\",\"-c\",\"echo $HOME ${HOME} ${params.zone}\"],"
			"\"later\":\"${steps.later.outputs.x}\",\"plain\":7}", 0, NULL);
	out = bp_resolve(in, fixture_lookup, world, why, sizeof(why));
	CHECK(out != NULL);
	text = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
	/* One whole reference keeps its type; inside text it becomes text;
	 * shell variables stay; unknown-yet values are marked. */
	CHECK_STR(text, "{\"addr\":\"10.0.0.1:443\","
			"\"argv\":[\"sh\",\"-c\",\"echo $HOME ${HOME} us\"],"
			"\"cidr\":[\"10.4.0.0/14\"],\"later\":\"(known after apply)\","
			"\"n\":5,\"on\":true,\"plain\":7}");
	free(text);
	json_decref(out);
	json_decref(in);

	in = json_loads("[\"x ${steps.cluster.outputs.nope} y\"]", 0, NULL);
	CHECK(bp_resolve(in, fixture_lookup, world, why, sizeof(why)) == NULL);
	CHECK(strstr(why, "no value for cluster") != NULL);
	json_decref(in);
	json_decref(world);
}

void
suite_bp(void)
{
	RUN(t_ref_parse);
	RUN(t_resolve);
	RUN(t_load_demo);
	RUN(t_load_errors);
	RUN(t_tutorial_blueprints);
	RUN(t_unknown_plugins_listed);
	RUN(t_missing_dir);
	RUN(t_plugin_scan);
}

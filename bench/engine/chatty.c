/*
 * chatty.c - a plugin that writes log lines as fast as it can, or at a
 * steady rate, for bench/engine/run.sh.  Input `mode` says how:
 *
 *   log    `lines` lines of `bytes` bytes through api->log (the protocol
 *          path every plugin's log takes: JSON on descriptor 3);
 *   print  the same lines written to the runner's own stdout (the path of
 *          a plugin that prints: plain lines the server splits itself);
 *   tick   `rate` lines a second for `seconds` seconds through api->log,
 *          each "tick I USEC" where USEC is CLOCK_REALTIME in microseconds
 *          just before the call, so a watcher of the run's event stream
 *          can compute delivery latency.  If `gate` names a file, tick
 *          first waits (up to `gate_timeout` seconds) until it exists, so
 *          every watcher is connected before the first tick.
 *
 * Line I of log and print is "L" + I in 9 digits + " " + filler, `bytes`
 * long in all, so the stored lines can be counted and checked.
 *
 * Built like a third party's plugin, with nothing but the ABI header:
 *
 *   cc -shared -fPIC -I include -o DIR/chatty.so bench/engine/chatty.c
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "outrigger/plugin.h"

#define CHATTY_BYTES_MAX 4000

static long
chatty_long(or_host *h, const struct or_host_api *api, const char *key, long def)
{
	const char *v = api->input(h, key);

	return v != NULL && v[0] != '\0' ? strtol(v, NULL, 10) : def;
}

/* Line i into buf (size >= bytes + 1): "L%09ld " then filler. */
static void
chatty_line(char *buf, long i, long bytes)
{
	static const char filler[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	int n = snprintf(buf, (size_t)bytes + 1, "L%09ld ", i);
	long k;

	for (k = n; k < bytes; k++)
		buf[k] = filler[k % (long)(sizeof(filler) - 1)];
	buf[bytes] = '\0';
}

static or_status
chatty_lines(or_host *h, const struct or_host_api *api, int to_stdout)
{
	long lines = chatty_long(h, api, "lines", 1000);
	long bytes = chatty_long(h, api, "bytes", 100);
	static char buf[CHATTY_BYTES_MAX + 2];
	static char out[1 << 16];
	long i;

	if (bytes < 12 || bytes > CHATTY_BYTES_MAX) {
		api->fail(h, "input", "bytes must be 12..%d", CHATTY_BYTES_MAX);
		return OR_STATUS_FAILED;
	}
	if (to_stdout)
		setvbuf(stdout, out, _IOFBF, sizeof(out));
	for (i = 0; i < lines; i++) {
		chatty_line(buf, i, bytes);
		if (to_stdout) {
			buf[bytes] = '\n';
			if (fwrite(buf, 1, (size_t)bytes + 1, stdout) != (size_t)bytes + 1) {
				api->fail(h, "io", "stdout: %s", strerror(errno));
				return OR_STATUS_FAILED;
			}
		} else {
			api->log(h, OR_LOG_INFO, "%s", buf);
		}
	}
	if (to_stdout && fflush(stdout) != 0) {
		api->fail(h, "io", "stdout: %s", strerror(errno));
		return OR_STATUS_FAILED;
	}
	return OR_STATUS_OK;
}

static or_status
chatty_tick(or_host *h, const struct or_host_api *api)
{
	long rate = chatty_long(h, api, "rate", 100);
	long seconds = chatty_long(h, api, "seconds", 10);
	long gate_timeout = chatty_long(h, api, "gate_timeout", 120);
	const char *gate = api->input(h, "gate");
	struct timespec t0, due, now;
	long i, n, waited;

	if (rate < 1 || rate > 100000 || seconds < 1) {
		api->fail(h, "input", "rate must be 1..100000 and seconds >= 1");
		return OR_STATUS_FAILED;
	}
	for (waited = 0; gate != NULL && gate[0] != '\0' && access(gate, F_OK) != 0;
	     waited += 10) {
		if (waited >= gate_timeout * 1000) {
			api->fail(h, "gate", "%s did not appear within %ld s", gate, gate_timeout);
			return OR_STATUS_FAILED;
		}
		if (api->sleep_ms(h, 10))
			return OR_STATUS_CANCELLED;
	}
	n = rate * seconds;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i++) {
		/* Absolute deadlines: a late tick does not delay the next. */
		long long ns = (long long)t0.tv_nsec + (long long)i * 1000000000LL / rate;

		due.tv_sec = t0.tv_sec + (time_t)(ns / 1000000000LL);
		due.tv_nsec = (long)(ns % 1000000000LL);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) == EINTR)
			;
		if (api->cancelled(h))
			return OR_STATUS_CANCELLED;
		clock_gettime(CLOCK_REALTIME, &now);
		api->log(h, OR_LOG_INFO, "tick %ld %lld", i,
			 (long long)now.tv_sec * 1000000LL + now.tv_nsec / 1000);
	}
	return OR_STATUS_OK;
}

static or_status
chatty_apply(or_host *h, const struct or_host_api *api)
{
	const char *mode = api->input(h, "mode");

	if (mode == NULL || strcmp(mode, "log") == 0)
		return chatty_lines(h, api, 0);
	if (strcmp(mode, "print") == 0)
		return chatty_lines(h, api, 1);
	if (strcmp(mode, "tick") == 0)
		return chatty_tick(h, api);
	api->fail(h, "input", "mode must be log, print or tick");
	return OR_STATUS_FAILED;
}

static or_status
chatty_destroy(or_host *h, const struct or_host_api *api)
{
	(void)h;
	(void)api;
	return OR_STATUS_OK;
}

static const struct or_plugin chatty = {
	.abi_major = OR_PLUGIN_ABI_MAJOR,
	.abi_minor = OR_PLUGIN_ABI_MINOR,
	.name = "chatty",
	.summary = "Writes many log lines, or ticks at a steady rate (bench/engine).",
	.inputs_schema =
		"{\"mode\": {\"type\": \"string\", \"description\": \"log, print or tick\"},"
		" \"lines\": {\"type\": \"integer\", \"description\": \"log, print: how many lines\"},"
		" \"bytes\": {\"type\": \"integer\", \"description\": \"log, print: bytes per line\"},"
		" \"rate\": {\"type\": \"integer\", \"description\": \"tick: lines per second\"},"
		" \"seconds\": {\"type\": \"integer\", \"description\": \"tick: for how long\"},"
		" \"gate\": {\"type\": \"string\", \"description\": \"tick: wait for this file first\"},"
		" \"gate_timeout\": {\"type\": \"integer\", \"description\": \"tick: seconds to wait for gate\"}}",
	.outputs_schema = "{}",
	.capabilities = OR_CAP_DESTROY,
	.plan = NULL,
	.apply = chatty_apply,
	.destroy = chatty_destroy,
	.check = NULL,
};

OR_PLUGIN_EXPORT(chatty)

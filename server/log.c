/*
 * log.c - stderr logging.  A line is formatted into a stack buffer and
 * written with one write(2): atomic for lines under PIPE_BUF, and cheap
 * enough to keep an access log on the hot path.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

static enum log_level log_min = LOG_INFO;

void
log_set_level(enum log_level min)
{
	log_min = min;
}

void
log_now_iso(char *out, unsigned long size)
{
	/* The date part changes once a second; log ingestion stamps every
	 * line, so each thread keeps the last one it formatted. */
	static __thread time_t last_sec = -1;
	static __thread char base[32];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != last_sec) {
		gmtime_r(&ts.tv_sec, &tm);
		strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
		last_sec = ts.tv_sec;
	}
	snprintf(out, size, "%s.%03ldZ", base, ts.tv_nsec / 1000000);
}

static void
log_write(char *line, size_t cap, int n)
{
	size_t len;
	ssize_t w;

	if (n < 0)
		return;
	len = (size_t)n < cap - 1 ? (size_t)n : cap - 2;
	line[len++] = '\n';
	w = write(STDERR_FILENO, line, len);
	(void)w; /* nowhere left to report a failed log write */
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	char line[1024], ts[32];
	va_list ap;
	int n, m;

	if (level < log_min)
		return;
	log_now_iso(ts, sizeof(ts));
	n = snprintf(line, sizeof(line), "%s %s ", ts, names[level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	log_write(line, sizeof(line), m < 0 ? n : n + m);
}

void
log_access(const char *remote, const char *method, const char *url,
	   int status, unsigned long long bytes, double ms)
{
	char line[640], ts[32], m[16], u[401];
	int n;

	log_now_iso(ts, sizeof(ts));
	ascii_clean(m, sizeof(m), method, "\"");
	ascii_clean(u, sizeof(u), url, "\"");
	n = snprintf(line, sizeof(line), "%s access %s \"%s %s\" %d %llu %.2fms",
		     ts, remote, m, u, status, bytes, ms);
	log_write(line, sizeof(line), n);
}

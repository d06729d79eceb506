/*
 * log.h - the server's own log on stderr: one line per event, written with a
 * single write(2) so lines from different threads never interleave.
 * Nothing here ever receives a secret: callers log names, not values.
 */
#ifndef LOG_H
#define LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level min);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* The access log line of one finished request. */
void log_access(const char *remote, const char *method, const char *url,
		int status, unsigned long long bytes, double ms);

/* "2026-11-26T09:30:00.123Z" for now, into out (at least 25 bytes). */
void log_now_iso(char *out, unsigned long size);

#endif

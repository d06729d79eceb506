/*
 * sse.h - Server-Sent Events of runs: every watcher gets the run's events
 * (step status changes and log lines) in order, from the start or after
 * Last-Event-ID, then live until the run ends.
 *
 * Old events are replayed from the store; live ones come from a ring of
 * recent events per run that the scheduler fills as it commits them, so
 * many watchers of one run cost one copy each, not one query each.
 * Watchers with nothing to send are suspended (libmicrohttpd
 * suspend/resume) and resumed by the next publish.
 */
#ifndef SSE_H
#define SSE_H

#include <microhttpd.h>

#include "db.h"

struct sse_hub;

struct sse_hub *sse_hub_new(struct db *db);
/* Free; the HTTP server must be stopped first. */
void sse_hub_free(struct sse_hub *hub);

/* Scheduler thread: events of run were committed (finished: it ended). */
void sse_publish(struct sse_hub *hub, long long run, const struct db_event *ev,
		 size_t n, int finished);

/* A streaming response for run, starting after event number after.  The
 * connection c is suspended while there is nothing to send. */
struct MHD_Response *sse_response(struct sse_hub *hub,
				  struct MHD_Connection *c, long long run,
				  long long after);

/* Before the HTTP server stops: wake every watcher and end its stream. */
void sse_shutdown(struct sse_hub *hub);

/* Watchers connected now. */
unsigned sse_watchers(struct sse_hub *hub);

#endif

/*
 * sse.c - the run event streams (see sse.h).
 *
 * libmicrohttpd rules this file keeps (../shared/notes/perf-baselines.md):
 * suspend only from the content reader, and while holding the hub lock,
 * which the publisher also holds while it resumes, so a resume never
 * meets a connection that is not yet suspended; at shutdown everyone is
 * resumed and ends before the daemon stops.  A keep-alive comment every
 * few seconds makes dead clients show up, since a suspended connection
 * notices nothing by itself.
 */
#include "sse.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"

#define RING_MAX 8192		/* recent events kept per run */
#define CHANNELS_MAX 64		/* runs with a ring at once */
#define REPLAY_PAGE 500		/* events per store read */
#define KEEPALIVE_S 10
#define OUT_MAX (4u << 20)	/* one watcher's pending bytes */

struct frame {
	long long seq;
	char *text;		/* "id: ...\nevent: ...\ndata: ...\n\n" */
	size_t len;
};

struct client;

struct channel {
	long long run;
	unsigned clients;	/* streams of this run open now */
	struct frame *ring;	/* circular, RING_MAX slots */
	size_t head, count;	/* oldest slot, frames held */
	long long last_seq;	/* newest published */
	int finished;
	struct client *waiters;	/* suspended, waiting for a publish */
	time_t touched;
	struct channel *next;
};

struct client {
	struct sse_hub *hub;
	struct channel *ch;	/* counted in ch->clients while open */
	struct MHD_Connection *conn;
	long long run;
	long long after;	/* last event sent (or queued in out) */
	struct buf out;
	size_t off;		/* bytes of out already handed to MHD */
	int done;		/* the run ended and everything is queued */
	int ping;		/* send a keep-alive comment */
	struct client *next_waiter;
};

struct sse_hub {
	struct db *db;
	pthread_mutex_t lock;
	struct channel *channels;
	unsigned watchers;
	int stopping;
	pthread_t ticker;
	int ticker_started;
	pthread_cond_t tick;
};

/* ---- frames and channels (hub lock held) ------------------------------- */

static char *
frame_text(long long seq, const char *ts, const char *kind, const char *step,
	   const char *stream, const char *data, size_t *len)
{
	json_t *d;
	char *j, *out;
	size_t n;

	if (strcmp(kind, "log") == 0) {
		d = json_pack("{s:I, s:s, s:s?, s:s?, s:s}", "seq", (json_int_t)seq, "ts", ts,
			      "step", step, "stream", stream, "text", data);
	} else {
		d = json_loads(data, 0, NULL);
		if (!json_is_object(d)) {
			json_decref(d);
			d = json_object();
		}
		json_object_set_new(d, "seq", json_integer(seq));
		json_object_set_new(d, "ts", json_string(ts));
	}
	j = json_dumps(d, JSON_COMPACT);
	json_decref(d);
	if (j == NULL)
		return NULL;
	n = strlen(j) + strlen(kind) + 64;
	out = malloc(n);
	if (out != NULL)
		*len = (size_t)snprintf(out, n, "id: %lld\nevent: %s\ndata: %s\n\n", seq, kind, j);
	free(j);
	return out;
}

static void
channel_free(struct channel *ch)
{
	size_t i;

	for (i = 0; i < ch->count; i++)
		free(ch->ring[(ch->head + i) % RING_MAX].text);
	free(ch->ring);
	free(ch);
}

static struct channel *
channel_find(struct sse_hub *hub, long long run)
{
	struct channel *ch;

	for (ch = hub->channels; ch != NULL; ch = ch->next)
		if (ch->run == run)
			return ch;
	return NULL;
}

/* Make room: drop the least recently used channel nobody waits on. */
static void
channel_evict(struct sse_hub *hub)
{
	struct channel **pp, **victim = NULL, *ch;
	unsigned n = 0;

	for (pp = &hub->channels; *pp != NULL; pp = &(*pp)->next) {
		n++;
		if ((*pp)->waiters == NULL && (*pp)->clients == 0 &&
		    (victim == NULL || (*pp)->touched < (*victim)->touched))
			victim = pp;
	}
	if (n < CHANNELS_MAX || victim == NULL)
		return;
	ch = *victim;
	*victim = ch->next;
	channel_free(ch);
}

static struct channel *
channel_get(struct sse_hub *hub, long long run)
{
	struct channel *ch = channel_find(hub, run);

	if (ch != NULL)
		return ch;
	channel_evict(hub);
	ch = calloc(1, sizeof(*ch));
	if (ch == NULL)
		return NULL;
	ch->ring = calloc(RING_MAX, sizeof(*ch->ring));
	if (ch->ring == NULL) {
		free(ch);
		return NULL;
	}
	ch->run = run;
	ch->touched = time(NULL);
	ch->next = hub->channels;
	hub->channels = ch;
	return ch;
}

static void
resume_waiters(struct channel *ch)
{
	struct client *c, *next;

	for (c = ch->waiters; c != NULL; c = next) {
		next = c->next_waiter;
		c->next_waiter = NULL;
		MHD_resume_connection(c->conn);
	}
	ch->waiters = NULL;
}

/* ---- publishing (scheduler thread) ------------------------------------- */

void
sse_publish(struct sse_hub *hub, long long run, const struct db_event *ev,
	    size_t n, int finished)
{
	struct channel *ch;
	struct frame *f;
	size_t i, slot;

	if (hub == NULL)
		return;
	pthread_mutex_lock(&hub->lock);
	ch = channel_find(hub, run);
	if (ch == NULL || ch->clients == 0) {
		/* Nobody watches: no frames to build (log ingestion pays for
		 * them otherwise).  A later watcher reads the store. */
		if (ch != NULL) {
			for (i = 0; i < ch->count; i++)
				free(ch->ring[(ch->head + i) % RING_MAX].text);
			ch->head = ch->count = 0;
			if (n > 0 && ev[n - 1].seq > ch->last_seq)
				ch->last_seq = ev[n - 1].seq;
			if (finished)
				ch->finished = 1;
		}
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (ev[i].seq <= ch->last_seq)
			continue;
		if (ch->count == RING_MAX) {
			free(ch->ring[ch->head].text);
			ch->head = (ch->head + 1) % RING_MAX;
			ch->count--;
		}
		slot = (ch->head + ch->count) % RING_MAX;
		f = &ch->ring[slot];
		f->seq = ev[i].seq;
		f->text = frame_text(ev[i].seq, ev[i].ts, ev[i].kind, ev[i].step,
				     ev[i].stream, ev[i].data, &f->len);
		if (f->text == NULL)
			continue;
		ch->count++;
		ch->last_seq = ev[i].seq;
	}
	if (finished)
		ch->finished = 1;
	ch->touched = time(NULL);
	resume_waiters(ch);
out:
	pthread_mutex_unlock(&hub->lock);
}

/* ---- watching (HTTP threads) ----------------------------------------------- */

/* Queue replayed events from the store; hub lock NOT held. */
static int
replay(struct client *c, int *finished)
{
	struct or_err err;
	json_t *evs = NULL, *e;
	size_t i, len;
	char *text;

	if (db_run_events(c->hub->db, c->run, c->after, REPLAY_PAGE, &evs, finished,
			  &err) != OR_OK) {
		log_warn("sse: run %lld: %s", c->run, err.message);
		return -1;
	}
	json_array_foreach(evs, i, e) {
		text = frame_text(json_integer_value(json_object_get(e, "seq")),
				  json_string_value(json_object_get(e, "ts")),
				  json_string_value(json_object_get(e, "kind")),
				  json_string_value(json_object_get(e, "step")),
				  json_string_value(json_object_get(e, "stream")),
				  json_string_value(json_object_get(e, "data")), &len);
		if (text == NULL || buf_append(&c->out, text, len) != OR_OK) {
			free(text);
			break;
		}
		free(text);
		c->after = json_integer_value(json_object_get(e, "seq"));
	}
	i = json_array_size(evs);
	json_decref(evs);
	return (int)i;
}

/* Copy ring frames after c->after into c->out; hub lock held.  Returns 1
 * when the ring could not cover the gap (replay from the store first). */
static int
from_ring(struct client *c, struct channel *ch)
{
	struct frame *f;
	size_t i;

	if (ch->count == 0 || c->after >= ch->last_seq)
		return 0;
	if (ch->ring[ch->head].seq > c->after + 1)
		return 1;
	for (i = 0; i < ch->count; i++) {
		f = &ch->ring[(ch->head + i) % RING_MAX];
		if (f->seq <= c->after)
			continue;
		if (buf_append(&c->out, f->text, f->len) != OR_OK)
			break; /* the rest goes out in the next call */
		c->after = f->seq;
	}
	return 0;
}

static ssize_t
copy_out(struct client *c, char *dst, size_t max)
{
	size_t n = c->out.len - c->off;

	if (n > max)
		n = max;
	memcpy(dst, c->out.data + c->off, n);
	c->off += n;
	if (c->off == c->out.len) {
		buf_reset(&c->out);
		c->off = 0;
	}
	return (ssize_t)n;
}

static ssize_t
reader(void *cls, uint64_t pos, char *dst, size_t max)
{
	struct client *c = cls;
	struct sse_hub *hub = c->hub;
	struct channel *ch;
	int finished = 0, gap, got, rounds;

	(void)pos;
	for (rounds = 0; rounds < 4; rounds++) {
		if (c->out.len > c->off)
			return copy_out(c, dst, max);
		if (c->done)
			return MHD_CONTENT_READER_END_OF_STREAM;
		pthread_mutex_lock(&hub->lock);
		if (hub->stopping) {
			pthread_mutex_unlock(&hub->lock);
			return MHD_CONTENT_READER_END_OF_STREAM;
		}
		ch = channel_find(hub, c->run);
		/* An empty ring says nothing about what is stored: ask. */
		gap = ch == NULL || ch->count == 0 || from_ring(c, ch);
		if (!gap && c->out.len > 0) {
			pthread_mutex_unlock(&hub->lock);
			continue;
		}
		if (!gap && ch->finished && c->after >= ch->last_seq) {
			pthread_mutex_unlock(&hub->lock);
			return MHD_CONTENT_READER_END_OF_STREAM;
		}
		if (!gap) {
			if (c->ping) {
				c->ping = 0;
				pthread_mutex_unlock(&hub->lock);
				buf_append_str(&c->out, ": keep-alive\n\n");
				continue;
			}
			/* Nothing new: sleep until the next publish. */
			c->next_waiter = ch->waiters;
			ch->waiters = c;
			MHD_suspend_connection(c->conn);
			pthread_mutex_unlock(&hub->lock);
			return 0;
		}
		pthread_mutex_unlock(&hub->lock);
		/* Older than the ring (or no ring): read the store. */
		got = replay(c, &finished);
		if (got < 0)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (got > 0)
			continue;
		if (finished) {
			c->done = 1;
			continue;
		}
		/* A live run with nothing stored after c->after: wait for the
		 * scheduler's next publish on its channel. */
		pthread_mutex_lock(&hub->lock);
		ch = channel_get(hub, c->run);
		if (ch == NULL || hub->stopping) {
			pthread_mutex_unlock(&hub->lock);
			return MHD_CONTENT_READER_END_OF_STREAM;
		}
		if (ch->last_seq > c->after) {
			pthread_mutex_unlock(&hub->lock);
			continue;
		}
		c->next_waiter = ch->waiters;
		ch->waiters = c;
		MHD_suspend_connection(c->conn);
		pthread_mutex_unlock(&hub->lock);
		return 0;
	}
	/* Several rounds found nothing to copy: say so and come back. */
	buf_append_str(&c->out, ": \n\n");
	return copy_out(c, dst, max);
}

static void
client_free(void *cls)
{
	struct client *c = cls;

	pthread_mutex_lock(&c->hub->lock);
	c->hub->watchers--;
	if (c->ch != NULL)
		c->ch->clients--;
	pthread_mutex_unlock(&c->hub->lock);
	buf_free(&c->out);
	free(c);
}

struct MHD_Response *
sse_response(struct sse_hub *hub, struct MHD_Connection *conn, long long run,
	     long long after)
{
	struct MHD_Response *r;
	struct client *c;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->hub = hub;
	c->conn = conn;
	c->run = run;
	c->after = after;
	buf_init(&c->out, OUT_MAX);
	/* Tell the client how soon to reconnect after a drop. */
	buf_append_str(&c->out, "retry: 1000\n\n");
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, reader, c,
					      client_free);
	if (r == NULL) {
		buf_free(&c->out);
		free(c);
		return NULL;
	}
	pthread_mutex_lock(&hub->lock);
	hub->watchers++;
	c->ch = channel_get(hub, run);
	if (c->ch != NULL)
		c->ch->clients++;
	pthread_mutex_unlock(&hub->lock);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(r, "X-Accel-Buffering", "no");
	return r;
}

/* Every KEEPALIVE_S: wake every waiter so it sends a comment; a client
 * that went away fails that write and is closed. */
static void *
ticker(void *arg)
{
	struct sse_hub *hub = arg;
	struct channel *ch;
	struct client *c;
	struct timespec until;

	pthread_mutex_lock(&hub->lock);
	while (!hub->stopping) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += KEEPALIVE_S;
		pthread_cond_timedwait(&hub->tick, &hub->lock, &until);
		if (hub->stopping)
			break;
		for (ch = hub->channels; ch != NULL; ch = ch->next) {
			for (c = ch->waiters; c != NULL; c = c->next_waiter)
				c->ping = 1;
			resume_waiters(ch);
		}
	}
	pthread_mutex_unlock(&hub->lock);
	return NULL;
}

struct sse_hub *
sse_hub_new(struct db *db)
{
	struct sse_hub *hub = calloc(1, sizeof(*hub));

	if (hub == NULL)
		return NULL;
	hub->db = db;
	pthread_mutex_init(&hub->lock, NULL);
	pthread_cond_init(&hub->tick, NULL);
	hub->ticker_started = pthread_create(&hub->ticker, NULL, ticker, hub) == 0;
	return hub;
}

void
sse_shutdown(struct sse_hub *hub)
{
	struct channel *ch;

	if (hub == NULL)
		return;
	pthread_mutex_lock(&hub->lock);
	hub->stopping = 1;
	for (ch = hub->channels; ch != NULL; ch = ch->next)
		resume_waiters(ch);
	pthread_cond_broadcast(&hub->tick);
	pthread_mutex_unlock(&hub->lock);
}

unsigned
sse_watchers(struct sse_hub *hub)
{
	unsigned n;

	pthread_mutex_lock(&hub->lock);
	n = hub->watchers;
	pthread_mutex_unlock(&hub->lock);
	return n;
}

void
sse_hub_free(struct sse_hub *hub)
{
	struct channel *ch, *next;

	if (hub == NULL)
		return;
	sse_shutdown(hub);
	if (hub->ticker_started)
		pthread_join(hub->ticker, NULL);
	for (ch = hub->channels; ch != NULL; ch = next) {
		next = ch->next;
		channel_free(ch);
	}
	pthread_cond_destroy(&hub->tick);
	pthread_mutex_destroy(&hub->lock);
	free(hub);
}

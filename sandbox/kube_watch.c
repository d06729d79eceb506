/*
 * kube_watch.c - ?watch=true streams: one JSON event per line, chunked.
 *
 * A stream reads the store's event ring from its cursor (a
 * resourceVersion).  With nothing to send it suspends its connection,
 * under k->lock, and every store change resumes all suspended streams,
 * also under k->lock (libmicrohttpd's rule: a resume must never meet a
 * connection that is not suspended yet); the controller thread resumes
 * them once a second too, so timeoutSeconds is honoured and no stream
 * holds a thread.  At stop everyone is resumed and ends before the daemon
 * stops.  A cursor older than the ring gets the 410 Expired event a real
 * API server sends, and client-go relists.
 */
#include "kube_int.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WATCH_OUT_MAX (16u << 20)	/* one stream's pending bytes */
#define WATCH_DEFAULT_S 1800

struct kube_watch {
	struct kube *k;
	struct MHD_Connection *conn;
	struct kube_res res;
	char ns[256];
	json_t *sel, *fsel;
	int table;
	long long cursor;
	long long deadline;	/* monotonic ms */
	struct buf out;
	size_t off;
	int done;		/* end once out is drained */
	struct kube_watch *next_waiter;
};

static const char *
type_name(enum kube_change t)
{
	return t == KUBE_ADDED ? "ADDED" : t == KUBE_MODIFIED ? "MODIFIED" : "DELETED";
}

static int
matches(const struct kube_watch *w, const char *key, const json_t *obj)
{
	if (strcmp(key, w->res.key) != 0)
		return 0;
	if (w->ns[0] != '\0' && strcmp(kube_sget(obj, "metadata.namespace"), w->ns) != 0)
		return 0;
	return kube_sel_match(w->sel, obj, 0) && kube_sel_match(w->fsel, obj, 1);
}

/* Append one event line; 0 when the stream's buffer is full. */
static int
emit(struct kube_watch *w, const char *type, const json_t *obj)
{
	json_t *o, *ev, *one;
	char gv[160], *line;
	or_rc rc;

	if (w->table) {
		one = json_pack("[O]", obj);
		o = kube_table(w->k, &w->res, one, w->k->rv);
		json_decref(one);
	} else {
		kube_res_gv(&w->res, gv, sizeof(gv));
		o = json_deep_copy(obj);
		json_object_set_new(o, "apiVersion", json_string(gv));
	}
	ev = json_pack("{s:s, s:o}", "type", type, "object", o);
	line = ev != NULL ? json_dumps(ev, JSON_COMPACT) : NULL;
	json_decref(ev);
	if (line == NULL)
		return 0;
	rc = buf_append_str(&w->out, line);
	if (rc == OR_OK)
		rc = buf_append_str(&w->out, "\n");
	free(line);
	return rc == OR_OK;
}

static void
emit_expired(struct kube_watch *w, long long rv)
{
	char msg[128];
	json_t *st;

	snprintf(msg, sizeof(msg), "too old resource version: %lld (%lld)", rv,
		 w->k->ring_floor + 1);
	st = json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind", "Status", "apiVersion", "v1",
		       "metadata", "status", "Failure", "message", msg, "reason", "Expired",
		       "code", 410);
	{
		json_t *ev = json_pack("{s:s, s:o}", "type", "ERROR", "object", st);
		char *line = json_dumps(ev, JSON_COMPACT);

		json_decref(ev);
		if (line != NULL) {
			buf_append_str(&w->out, line);
			buf_append_str(&w->out, "\n");
			free(line);
		}
	}
	w->done = 1;
}

/* Events after the cursor into out (lock held). */
static void
collect(struct kube_watch *w)
{
	struct kube *k = w->k;
	struct kube_event *e;
	size_t lo = 0, hi = k->ring_count, mid;

	if (w->cursor < k->ring_floor) {
		emit_expired(w, w->cursor);
		return;
	}
	/* The ring is in resourceVersion order: find the first newer one. */
	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (k->ring[(k->ring_head + mid) % KUBE_RING].rv <= w->cursor)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < k->ring_count; lo++) {
		e = &k->ring[(k->ring_head + lo) % KUBE_RING];
		if (matches(w, e->key, e->obj) && !emit(w, type_name(e->type), e->obj))
			return;	/* full: the rest on the next call */
		w->cursor = e->rv;
	}
}

static int
cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

or_rc
kube_watch_new(struct kube *k, const struct kube_res *res, const char *ns, long long from_rv,
	       const json_t *sel, const json_t *fsel, int table, long long timeout_s,
	       struct kube_watch **out, struct or_err *err)
{
	struct kube_watch *w = calloc(1, sizeof(*w));
	json_t *bucket, *o;
	const char **keys = NULL, *key;
	size_t n = 0, i;

	*out = NULL;
	if (w == NULL)
		return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
	w->k = k;
	w->res = *res;
	snprintf(w->ns, sizeof(w->ns), "%s", ns != NULL ? ns : "");
	w->sel = json_deep_copy(sel);
	w->fsel = json_deep_copy(fsel);
	w->table = table;
	w->deadline = kube_mono_ms() + 1000 * (timeout_s > 0 ? timeout_s : WATCH_DEFAULT_S);
	buf_init(&w->out, WATCH_OUT_MAX);
	if (from_rv > 0) {
		w->cursor = from_rv;
	} else {
		/* No resourceVersion: the current state first, as ADDED. */
		bucket = kube_obj_bucket(k, res->key);
		keys = malloc((json_object_size(bucket) + 1) * sizeof(*keys));
		if (keys == NULL) {
			kube_watch_free(w);
			return or_fail(err, OR_E_NOMEM, NULL, NULL, "out of memory");
		}
		json_object_foreach(bucket, key, o)
			keys[n++] = key;
		qsort(keys, n, sizeof(*keys), cmp_key);
		for (i = 0; i < n; i++) {
			o = json_object_get(bucket, keys[i]);
			if (matches(w, res->key, o))
				emit(w, "ADDED", o);
		}
		free(keys);
		w->cursor = k->rv;
	}
	k->watchers++;
	*out = w;
	return OR_OK;
}

static ssize_t
copy_out(struct kube_watch *w, char *dst, size_t max)
{
	size_t n = w->out.len - w->off;

	if (n > max)
		n = max;
	memcpy(dst, w->out.data + w->off, n);
	w->off += n;
	if (w->off == w->out.len) {
		buf_reset(&w->out);
		w->off = 0;
	}
	return (ssize_t)n;
}

static ssize_t
reader(void *cls, uint64_t pos, char *dst, size_t max)
{
	struct kube_watch *w = cls;
	struct kube *k = w->k;

	(void)pos;
	if (w->out.len > w->off)
		return copy_out(w, dst, max);
	if (w->done)
		return MHD_CONTENT_READER_END_OF_STREAM;
	pthread_mutex_lock(&k->lock);
	if (k->stopping) {
		pthread_mutex_unlock(&k->lock);
		return MHD_CONTENT_READER_END_OF_STREAM;
	}
	collect(w);
	if (w->out.len > 0) {
		pthread_mutex_unlock(&k->lock);
		return copy_out(w, dst, max);
	}
	if (kube_mono_ms() >= w->deadline) {
		pthread_mutex_unlock(&k->lock);
		return MHD_CONTENT_READER_END_OF_STREAM;
	}
	/* Nothing new: sleep until the next change or tick. */
	w->next_waiter = k->waiters;
	k->waiters = w;
	MHD_suspend_connection(w->conn);
	pthread_mutex_unlock(&k->lock);
	return 0;
}

void
kube_watch_free(struct kube_watch *w)
{
	if (w == NULL)
		return;
	json_decref(w->sel);
	json_decref(w->fsel);
	buf_free(&w->out);
	free(w);
}

/* MHD's free callback: the stream is over. */
static void
watch_done(void *cls)
{
	struct kube_watch *w = cls, **pp;
	struct kube *k = w->k;

	pthread_mutex_lock(&k->lock);
	for (pp = &k->waiters; *pp != NULL; pp = &(*pp)->next_waiter) {
		if (*pp == w) {
			*pp = w->next_waiter;
			break;
		}
	}
	k->watchers--;
	pthread_mutex_unlock(&k->lock);
	kube_watch_free(w);
}

struct MHD_Response *
kube_watch_response(struct kube_watch *w, struct MHD_Connection *conn)
{
	struct MHD_Response *r;

	w->conn = conn;
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, reader, w,
					      watch_done);
	if (r == NULL) {
		watch_done(w);
		return NULL;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache, private");
	return r;
}

void
kube_watch_wake(struct kube *k)
{
	struct kube_watch *w, *next;

	for (w = k->waiters; w != NULL; w = next) {
		next = w->next_waiter;
		w->next_waiter = NULL;
		MHD_resume_connection(w->conn);
	}
	k->waiters = NULL;
}

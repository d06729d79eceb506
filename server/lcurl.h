/*
 * lcurl.h - libcurl, loaded the first time a step runner needs HTTP.
 *
 * Every step attempt is a new process; linking libcurl (and the dozen
 * libraries it pulls in) cost each of them about 2 ms of start-up, for
 * steps that mostly never make a request (bench/engine).  So the runner
 * resolves the few functions it uses with dlopen, on first use.
 */
#ifndef LCURL_H
#define LCURL_H

#include <curl/curl.h>

struct lcurl {
	CURLcode (*global_init)(long flags);
	void (*global_cleanup)(void);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *c, CURLoption opt, ...);
	CURLcode (*easy_perform)(CURL *c);
	CURLcode (*easy_getinfo)(CURL *c, CURLINFO info, ...);
	void (*easy_cleanup)(CURL *c);
	const char *(*easy_strerror)(CURLcode code);
	struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
	void (*slist_free_all)(struct curl_slist *l);
};

/* The loaded library (initialised with curl_global_init), or NULL with
 * why filled when it cannot be loaded.  Not thread-safe: the runner is
 * single-threaded. */
const struct lcurl *lcurl_get(char *why, size_t size);

/* curl_global_cleanup, if it was loaded. */
void lcurl_release(void);

#endif

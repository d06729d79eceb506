/* lcurl.c - libcurl on first use (see lcurl.h). */
#include "lcurl.h"

#include <dlfcn.h>
#include <stdio.h>

static struct lcurl lc;
static void *handle;
static int loaded;

/* Resolve one symbol into *slot; 0 on success. */
static int
sym(void **slot, const char *name, char *why, size_t size)
{
	*slot = dlsym(handle, name);
	if (*slot == NULL) {
		snprintf(why, size, "libcurl has no %s", name);
		return -1;
	}
	return 0;
}

const struct lcurl *
lcurl_get(char *why, size_t size)
{
	if (loaded)
		return &lc;
	handle = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	if (handle == NULL) {
		snprintf(why, size, "cannot load libcurl: %s", dlerror());
		return NULL;
	}
	if (sym((void **)&lc.global_init, "curl_global_init", why, size) != 0 ||
	    sym((void **)&lc.global_cleanup, "curl_global_cleanup", why, size) != 0 ||
	    sym((void **)&lc.easy_init, "curl_easy_init", why, size) != 0 ||
	    sym((void **)&lc.easy_setopt, "curl_easy_setopt", why, size) != 0 ||
	    sym((void **)&lc.easy_perform, "curl_easy_perform", why, size) != 0 ||
	    sym((void **)&lc.easy_getinfo, "curl_easy_getinfo", why, size) != 0 ||
	    sym((void **)&lc.easy_cleanup, "curl_easy_cleanup", why, size) != 0 ||
	    sym((void **)&lc.easy_strerror, "curl_easy_strerror", why, size) != 0 ||
	    sym((void **)&lc.slist_append, "curl_slist_append", why, size) != 0 ||
	    sym((void **)&lc.slist_free_all, "curl_slist_free_all", why, size) != 0) {
		dlclose(handle);
		handle = NULL;
		return NULL;
	}
	lc.global_init(CURL_GLOBAL_DEFAULT);
	loaded = 1;
	return &lc;
}

void
lcurl_release(void)
{
	if (loaded)
		lc.global_cleanup();
	/* The handle stays: plugins may still hold function pointers. */
}

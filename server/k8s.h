/*
 * k8s.h - the product's Kubernetes client, behind the kube_* entries of
 * struct or_host_api (see include/outrigger/plugin.h for what each does).
 * Prefix k8s_: the simulated API server in sandbox/ owns kube_.
 */
#ifndef K8S_H
#define K8S_H

#include <stddef.h>

#include "outrigger/plugin.h"

or_kube *k8s_open(or_host *h, const char *endpoint, const char *ca_pem);
void k8s_close(or_kube *k);
int k8s_request(or_kube *k, const char *method, const char *path, const char *content_type,
		const char *body, struct or_http_response *resp);
int k8s_apply(or_kube *k, const char *yaml, const char *default_ns);
int k8s_delete(or_kube *k, const char *yaml, const char *default_ns);
int k8s_wait(or_kube *k, const char *what, const char *ns, const char *name, long timeout_ms,
	     char *out, size_t out_size);

#endif

/*
 * step_pki.h - server/pki.c offered to plugins (the pki entries of struct
 * or_host_api): the mesh CA, workload certificates, SSH keys.
 */
#ifndef STEP_PKI_H
#define STEP_PKI_H

#include "outrigger/plugin.h"

int step_pki_mesh_ca(or_host *h, const char *org, const char *cluster, int root_days,
		     int ca_days, struct or_pki_files *out);
int step_pki_workload(or_host *h, const char *ca_cert, const char *ca_key,
		      const char *root_cert, const char *trust_domain, const char *ns,
		      const char *sa, int days, struct or_pki_files *out);
int step_pki_ssh_key(or_host *h, const char *comment, struct or_pki_files *out);
void step_pki_free(struct or_pki_files *f);

#endif

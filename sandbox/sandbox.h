/*
 * sandbox.h - `outrigger sandbox`: the simulated Google Cloud that the
 * product's gcp code path, gcloud, kubectl and ssh talk to (docs/sandbox.md).
 */
#ifndef SANDBOX_H
#define SANDBOX_H

int sandbox_main(int argc, char **argv);

#endif

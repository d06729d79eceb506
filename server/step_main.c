/*
 * step_main.c - `outrigger-step`, the step runner as a program of its own.
 *
 * The scheduler starts one per step attempt.  It links only what a runner
 * needs (jansson; libcurl on first use), so starting it costs a fraction
 * of starting the whole server binary (bench/engine).  `outrigger step`
 * is the same code, for when this program is not installed beside it.
 */
#include <string.h>

#include "step.h"

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "describe-plugin") == 0)
		return step_describe_main(argc, argv);
	return step_main(argc, argv);
}

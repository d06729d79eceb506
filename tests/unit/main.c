/*
 * main.c - the unit test runner: the subsystems called directly, with real
 * SQLite files and real directories, no server process.
 */
#define CHECK_MAIN
#include "check.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "unit.h"

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void
tmpdir_make(char *out, size_t size)
{
	snprintf(out, size, "/tmp/outrigger-unit-XXXXXX");
	if (mkdtemp(out) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
}

void
tmpdir_remove(const char *dir)
{
	if (strncmp(dir, "/tmp/outrigger-unit-", 20) == 0)
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int
main(void)
{
	log_set_level(LOG_ERROR); /* keep the runner's output to results */
	suite_or_buf();
	suite_bp();
	suite_db();
	suite_web();
	suite_api();
	suite_pki();
	return check_done("unit");
}

/*
 * main.c - the API test runner: every suite drives a real outrigger server
 * on 127.0.0.1 over libcurl or raw sockets.
 */
#define CHECK_MAIN
#include "check.h"

#include <curl/curl.h>
#include <signal.h>

#include "suites.h"

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	suite_meta();
	suite_envs();
	suite_runs();
	suite_store();
	suite_robust();
	curl_global_cleanup();
	return check_done("api");
}

/* suites.h - the API test suites; main.c runs them in this order. */
#ifndef SUITES_H
#define SUITES_H

void suite_meta(void);		/* health, openapi, blueprints, static files */
void suite_envs(void);		/* environments CRUD, validation, errors */
void suite_runs(void);		/* the run engine: runs, steps, logs, events, plugins */
void suite_store(void);		/* restart keeps data, migrations, schema */
void suite_robust(void);	/* garbage, limits, slow clients, shutdown */

#endif

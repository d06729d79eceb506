/* unit.h - the unit suites; main.c runs them. */
#ifndef UNIT_H
#define UNIT_H

void suite_or_buf(void);
void suite_bp(void);
void suite_db(void);
void suite_web(void);
void suite_api(void);
void suite_pki(void);

/* A fresh temporary directory for a test (mkdtemp under /tmp), and its
 * removal. */
void tmpdir_make(char *out, size_t size);
void tmpdir_remove(const char *dir);

#endif

/*
 * check.h - the smallest test harness that says what failed and where.
 *
 *   static void t_something(void) { CHECK(x == 1); CHECK_STR(s, "a"); }
 *   int main(void) { RUN(t_something); return check_done("unit"); }
 *
 * Exactly one file of a runner defines CHECK_MAIN before including it.
 *
 * A test passes when none of its CHECKs failed.  check_done() prints the
 * closing line "N passed, N failed[, N skipped]" and returns the exit code.
 * SKIP("why") inside a test marks it skipped with the reason printed.
 */
#ifndef CHECK_H
#define CHECK_H

#include <stdio.h>
#include <string.h>

/* Defined in the one file that defines CHECK_MAIN before including this. */
extern int check_passed, check_failed, check_skipped, check_cur_failed,
	check_cur_skipped;
extern const char *check_cur_name;
#ifdef CHECK_MAIN
int check_passed, check_failed, check_skipped, check_cur_failed,
	check_cur_skipped;
const char *check_cur_name;
#endif

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			check_cur_failed = 1;                                \
			fprintf(stderr, "  FAIL %s: %s:%d: %s\n",            \
				check_cur_name, __FILE__, __LINE__, #cond);  \
		}                                                            \
	} while (0)

#define CHECK_INT(a, b)                                                      \
	do {                                                                 \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b); \
		if (check_a_ != check_b_) {                                  \
			check_cur_failed = 1;                                \
			fprintf(stderr, "  FAIL %s: %s:%d: %s == %lld, want %lld\n", \
				check_cur_name, __FILE__, __LINE__, #a,      \
				check_a_, check_b_);                         \
		}                                                            \
	} while (0)

#define CHECK_STR(a, b)                                                      \
	do {                                                                 \
		const char *check_a_ = (a), *check_b_ = (b);                 \
		if (check_a_ == NULL || check_b_ == NULL ||                  \
		    strcmp(check_a_, check_b_) != 0) {                      \
			check_cur_failed = 1;                                \
			fprintf(stderr, "  FAIL %s: %s:%d: %s == \"%s\", want \"%s\"\n", \
				check_cur_name, __FILE__, __LINE__, #a,      \
				check_a_ ? check_a_ : "(null)",              \
				check_b_ ? check_b_ : "(null)");             \
		}                                                            \
	} while (0)

#define SKIP(why)                                                            \
	do {                                                                 \
		check_cur_skipped = 1;                                       \
		fprintf(stderr, "  SKIP %s: %s\n", check_cur_name, why);     \
		return;                                                      \
	} while (0)

#define RUN(fn)                                                              \
	do {                                                                 \
		check_cur_name = #fn;                                        \
		check_cur_failed = 0;                                        \
		check_cur_skipped = 0;                                       \
		fn();                                                        \
		if (check_cur_failed)                                        \
			check_failed++;                                      \
		else if (check_cur_skipped)                                  \
			check_skipped++;                                     \
		else                                                         \
			check_passed++;                                      \
		fprintf(stderr, "%s %s\n",                                   \
			check_cur_failed ? "not ok" : check_cur_skipped ? "skip" : "ok", \
			#fn);                                                \
	} while (0)

static inline int
check_done(const char *suite)
{
	if (check_skipped > 0)
		printf("%s: %d passed, %d failed, %d skipped\n", suite,
		       check_passed, check_failed, check_skipped);
	else
		printf("%s: %d passed, %d failed\n", suite, check_passed,
		       check_failed);
	fflush(stdout);
	return check_failed == 0 ? 0 : 1;
}

#endif

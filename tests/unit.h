/* SPDX-License-Identifier: ISC */
/*
 * A minimal unit-test harness.  Each check prints "ok - NAME" or
 * "not ok - NAME" with the values that differed; tests/run counts them.
 */
#ifndef UNIT_H
#define UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_failed;

#define CHECK(cond, name) do {						\
	if (cond)							\
		printf("ok - %s\n", (name));				\
	else {								\
		printf("not ok - %s (%s:%d: %s)\n", (name), __FILE__,	\
		    __LINE__, #cond);					\
		unit_failed++;						\
	}								\
} while (0)

#define CHECK_INT(got, want, name) do {					\
	long long g_ = (long long)(got), w_ = (long long)(want);	\
	if (g_ == w_)							\
		printf("ok - %s\n", (name));				\
	else {								\
		printf("not ok - %s (%s:%d: got %lld, want %lld)\n",	\
		    (name), __FILE__, __LINE__, g_, w_);		\
		unit_failed++;						\
	}								\
} while (0)

#define CHECK_STR(got, want, name) do {					\
	const char *g_ = (got), *w_ = (want);				\
	if ((g_ == NULL && w_ == NULL) ||				\
	    (g_ != NULL && w_ != NULL && strcmp(g_, w_) == 0))		\
		printf("ok - %s\n", (name));				\
	else {								\
		printf("not ok - %s (%s:%d: got \"%s\", want \"%s\")\n", \
		    (name), __FILE__, __LINE__, g_ ? g_ : "(null)",	\
		    w_ ? w_ : "(null)");				\
		unit_failed++;						\
	}								\
} while (0)

#define UNIT_DONE() return unit_failed ? 1 : 0

#endif

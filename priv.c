/* SPDX-License-Identifier: ISC */
/*
 * The setgid install: the binary belongs to the group smarthost, which
 * may read /etc/smarthost.conf (root:smarthost 0640) and write the
 * system queue (root:smarthost 2770).  Everything else happens in the
 * caller's name: priv_init drops the group at once, and it is raised
 * only around those two jobs.  The saved set-group-ID keeps it within
 * reach, so no variable has to remember it.
 */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "smarthost.h"

static void
priv_fatal(const char *what)
{
	/* Going on with the wrong group could leak the system password. */
	fprintf(stderr, "smarthost: cannot %s the smarthost group: %s\n",
	    what, strerror(errno));
	_exit(EX_OSERR);
}

/*
 * Run as the caller; the group stays in the saved set-group-ID.  Only
 * the group of a binary installed setgid counts: one this process got
 * from whoever started it (a setgid program of theirs) is given up for
 * good, or it would pass for the smarthost group.
 */
void
priv_init(void)
{
	struct stat	 st;
	gid_t		 r, e, s;

	if (getresgid(&r, &e, &s) == -1)
		priv_fatal("look up");
	if (e == r)
		return;
	if (stat("/proc/self/exe", &st) == 0 && (st.st_mode & S_ISGID) &&
	    st.st_gid == e) {
		if (setresgid(r, r, e) == -1)
			priv_fatal("drop");
		return;
	}
	if (setresgid(r, r, r) == -1)
		priv_fatal("drop");
}

/* Whether the binary runs setgid: the group is within reach. */
int
priv_setgid(void)
{
	return priv_group() != (gid_t)-1;
}

/* The group of a setgid run, or -1. */
gid_t
priv_group(void)
{
	gid_t	 r, e, s;

	if (getresgid(&r, &e, &s) == -1 || s == r)
		return (gid_t)-1;
	return s;
}

/* A setgid run for a caller other than root: overrides are limited. */
int
priv_restricted(void)
{
	return priv_setgid() && getuid() != 0;
}

void
priv_raise(void)
{
	gid_t	 r, e, s;

	if (getresgid(&r, &e, &s) == -1)
		priv_fatal("look up");
	if (s != r && e != s && setresgid((gid_t)-1, s, (gid_t)-1) == -1)
		priv_fatal("raise");
}

void
priv_drop(void)
{
	gid_t	 r, e, s;

	if (getresgid(&r, &e, &s) == -1)
		priv_fatal("look up");
	if (e == r)
		return;
	if (setresgid((gid_t)-1, r, (gid_t)-1) == -1)
		priv_fatal("drop");
	/* A change of credentials may make the process dumpable again. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* In a child about to exec a command for the caller: gone for good. */
void
priv_child(void)
{
	gid_t	 g = getgid();

	if (setresgid(g, g, g) == -1)
		_exit(127);
}

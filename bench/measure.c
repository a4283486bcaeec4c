/* SPDX-License-Identifier: ISC */
/*
 * measure: run a command and append one line to a file:
 *
 *   EXIT WALL USER SYS MAXRSS
 *
 * EXIT is the exit status (128 + N for a signal), WALL, USER and SYS are
 * seconds with microseconds (CLOCK_MONOTONIC around fork and wait4; user
 * and system CPU from wait4's rusage), MAXRSS is the peak resident set in
 * KiB.  Standard input, output and error are the command's.
 *
 *   measure [-t SECONDS] [-s STAMPS] FILE COMMAND [ARG...]
 *
 * With -t, a command still running after SECONDS is killed (SIGKILL), so
 * a benchmark never hangs; its line then says 137.
 * With -s, the command's standard error goes through a pipe to the file
 * STAMPS instead, each line preceded by the seconds from the start (the
 * same clock as WALL) at which its first octet was read: with smarthost
 * -v, when each reply line was read and traced (stderr is unbuffered, one
 * write per trace line).
 * Why not /usr/bin/time: its wall clock has 10 ms steps, too coarse for a
 * loopback round trip.  The bench script builds this one static, because
 * a forked child starts with a copy of its parent's resident pages and
 * ru_maxrss keeps that high-water mark across exec: the smaller this
 * process, the lower the floor under every RSS figure.
 */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
seconds(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Wait for the child at most limit seconds (0: no limit), then kill it.
 * SIGCHLD is blocked, so sigtimedwait sees it even if it came early. */
static int
reap(pid_t pid, long limit, const sigset_t *chld, int *status,
    struct rusage *ru)
{
	struct timespec ts;
	pid_t r;

	ts.tv_sec = limit;
	ts.tv_nsec = 0;
	for (;;) {
		r = wait4(pid, status, limit > 0 ? WNOHANG : 0, ru);
		if (r == pid)
			return 0;
		if (r == -1 && errno != EINTR) {
			perror("measure: wait4");
			return -1;
		}
		if (r == 0 && sigtimedwait(chld, NULL, &ts) == -1 &&
		    errno == EAGAIN) {
			fprintf(stderr, "measure: %ld s are up: killing "
			    "the command\n", limit);
			kill(pid, SIGKILL);
			limit = 0;
		}
	}
}

/*
 * Copy the pipe to FP, each line stamped; kill the command when the
 * limit is up.  Returns at EOF, when the command and whatever it left
 * holding its stderr have closed it.
 */
static void
stamp(int fd, FILE *fp, double t0, long limit, pid_t pid)
{
	char		 buf[4096];
	struct pollfd	 pfd;
	double		 left;
	ssize_t		 n, i;
	int		 bol = 1, rc;

	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		left = limit > 0 ? t0 + (double)limit - now() : -1;
		if (limit > 0 && left <= 0) {
			fprintf(stderr, "measure: %ld s are up: killing "
			    "the command\n", limit);
			kill(pid, SIGKILL);
			limit = 0;
			continue;
		}
		rc = poll(&pfd, 1, limit > 0 ? (int)(left * 1000) + 1 : -1);
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc == -1) {
			perror("measure: poll");
			return;
		}
		if (rc == 0)
			continue;
		if ((n = read(fd, buf, sizeof(buf))) == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		for (i = 0; i < n; i++) {
			if (bol)
				fprintf(fp, "%.6f ", now() - t0);
			fputc(buf[i], fp);
			bol = buf[i] == '\n';
		}
	}
}

int
main(int argc, char *argv[])
{
	struct rusage ru;
	sigset_t chld;
	double t0, t1;
	FILE *out, *sf = NULL;
	pid_t pid;
	long limit = 0;
	int status, code, fds[2] = { -1, -1 };

	for (;;) {
		if (argc > 2 && strcmp(argv[1], "-t") == 0)
			limit = strtol(argv[2], NULL, 10);
		else if (argc > 2 && strcmp(argv[1], "-s") == 0) {
			if ((sf = fopen(argv[2], "w")) == NULL) {
				perror(argv[2]);
				return 73;
			}
		} else
			break;
		argc -= 2;
		argv += 2;
	}
	if (argc < 3 || limit < 0) {
		fprintf(stderr, "usage: measure [-t SECONDS] [-s STAMPS] FILE "
		    "COMMAND [ARG...]\n");
		return 64;
	}
	if ((out = fopen(argv[1], "a")) == NULL) {
		perror(argv[1]);
		return 73;
	}
	if (sf != NULL && pipe2(fds, O_CLOEXEC) == -1) {
		perror("measure: pipe");
		return 71;
	}
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	t0 = now();
	if ((pid = fork()) == -1) {
		perror("measure: fork");
		return 71;
	}
	if (pid == 0) {
		sigprocmask(SIG_UNBLOCK, &chld, NULL);
		fclose(out);
		if (fds[1] != -1 && dup2(fds[1], 2) == -1)
			_exit(71);
		execvp(argv[2], argv + 2);
		fprintf(stderr, "measure: %s: %s\n", argv[2], strerror(errno));
		_exit(127);
	}
	if (sf != NULL) {
		close(fds[1]);
		stamp(fds[0], sf, t0, limit, pid);
		close(fds[0]);
		if (fclose(sf) == EOF)
			perror("measure: stamps");
		/* What is left of the limit, if anything. */
		if (limit > 0)
			limit = limit - (long)(now() - t0) > 0 ?
			    limit - (long)(now() - t0) : 1;
	}
	if (reap(pid, limit, &chld, &status, &ru) == -1)
		return 71;
	t1 = now();
	code = WIFEXITED(status) ? WEXITSTATUS(status) :
	    128 + WTERMSIG(status);
	fprintf(out, "%d %.6f %.6f %.6f %ld\n", code, t1 - t0,
	    seconds(ru.ru_utime), seconds(ru.ru_stime), ru.ru_maxrss);
	if (fclose(out) == EOF) {
		perror(argv[1]);
		return 74;
	}
	return code;
}

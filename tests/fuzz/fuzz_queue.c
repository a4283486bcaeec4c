/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer target: the queue file reader.  The input is a queue entry
 * (data, envelope trailer, last line) and, after a line "--status--",
 * its ID.status file.  queue_open reads them from a private queue
 * directory, and queue_list_at lists it; the entry must come out
 * unchanged whatever it holds.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smarthost.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define ID		"20261127T231500-0123456789ab"
#define MARK		"\n--status--\n"
#define INPUT_MAX	(512 * 1024)

static char	 dir[64];
static char	 entry[128], status[128];
static FILE	*devnull;

/* Leave nothing behind when the run ends. */
static void
cleanup(void)
{
	unlink(status);
	unlink(entry);
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("fuzz_queue");
	/* In memory where there is a tmpfs: a disk makes it I/O-bound. */
	snprintf(dir, sizeof(dir), "%s/fuzz_queue.XXXXXX",
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (mkdtemp(dir) == NULL ||
	    (devnull = fopen("/dev/null", "w")) == NULL) {
		perror("fuzz_queue: mkdtemp");
		exit(1);
	}
	snprintf(entry, sizeof(entry), "%s/" ID, dir);
	snprintf(status, sizeof(status), "%s/" ID ".status", dir);
	atexit(cleanup);
	return 0;
}

static void
put(const char *path, const void *p, size_t n)
{
	int	 fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1 || write(fd, p, n) != (ssize_t)n)
		abort();
	close(fd);
}

/* The entry on disk is still exactly the input. */
static void
unchanged(const void *p, size_t n)
{
	struct stat	 st;
	char		*buf;
	int		 fd;

	if ((fd = open(entry, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1 || (size_t)st.st_size != n)
		abort();
	if ((buf = malloc(n + 1)) == NULL ||
	    read(fd, buf, n + 1) != (ssize_t)n || memcmp(buf, p, n) != 0)
		abort();
	free(buf);
	close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qentry	 q;
	struct message	 m;
	struct error	 e;
	const uint8_t	*mark;
	size_t		 elen;

	if (size > INPUT_MAX)
		return 0;
	mark = memmem(data, size, MARK, strlen(MARK));
	elen = mark != NULL ? (size_t)(mark - data) : size;
	put(entry, data, elen);
	if (mark != NULL)
		put(status, mark + strlen(MARK), size - elen - strlen(MARK));
	else
		unlink(status);
	memset(&e, 0, sizeof(e));
	if (queue_open(dir, ID, &q, &m, &e) == 0) {
		message_free(&m);	/* closes q.fd too */
		q.fd = -1;
		qentry_free(&q);
	}
	queue_list_at(devnull, dir, 80, 1800000000);
	unchanged(data, elen);
	return 0;
}

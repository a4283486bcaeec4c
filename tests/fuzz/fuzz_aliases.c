/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer target: the aliases file.  The first input line names the
 * recipients (up to 8, separated by spaces); the rest is the aliases
 * file, read and applied by message_read: targets, "default", loops
 * and depth, maildomain qualification.
 */
#include <sys/mman.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smarthost.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define RCPTS		8
#define INPUT_MAX	(256 * 1024)

static int	 in_fd = -1, al_fd = -1;
static char	 al_path[64];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char	 msg[] = "Subject: x\n\nbody\n";

	(void)argc;
	(void)argv;
	setenv("TMPDIR", "/tmp", 1);
	log_init("fuzz_aliases");
	if ((in_fd = memfd_create("in", MFD_CLOEXEC)) == -1 ||
	    (al_fd = memfd_create("aliases", MFD_CLOEXEC)) == -1 ||
	    write(in_fd, msg, sizeof(msg) - 1) != sizeof(msg) - 1) {
		perror("fuzz_aliases: memfd_create");
		exit(1);
	}
	snprintf(al_path, sizeof(al_path), "/proc/self/fd/%d", al_fd);
	return 0;
}

/* Splits the first line of buf in place into at most RCPTS names. */
static size_t
names(char *line, char **v)
{
	size_t	 n = 0;
	char	*w;

	while (n < RCPTS && (w = strsep(&line, " ")) != NULL)
		if (*w != '\0')
			v[n++] = w;
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cmdline	 cl;
	struct account	 a;
	struct message	 m;
	struct error	 e;
	const uint8_t	*nl;
	char		*line, *v[RCPTS];
	size_t		 len;
	int		 spool;

	if (size > INPUT_MAX ||
	    (nl = memchr(data, '\n', size)) == NULL)
		return 0;
	len = (size_t)(nl - data);
	if ((line = calloc(1, len + 1)) == NULL)
		abort();
	memcpy(line, data, len);
	data += len + 1;
	size -= len + 1;
	if (ftruncate(al_fd, 0) == -1 ||
	    pwrite(al_fd, data, size, 0) != (ssize_t)size ||
	    lseek(in_fd, 0, SEEK_SET) != 0)
		abort();
	memset(&cl, 0, sizeof(cl));
	memset(&a, 0, sizeof(a));
	cl.rcpts = v;
	cl.nrcpts = names(line, v);
	a.from = "alice@example.com";
	a.maildomain = "example.org";
	a.aliases = al_path;
	a.set_from_header = TRI_OFF;
	a.set_date_header = TRI_OFF;
	a.set_msgid_header = TRI_OFF;
	if ((spool = memfd_create("spool", MFD_CLOEXEC)) == -1)
		abort();
	memset(&e, 0, sizeof(e));
	if (message_read(in_fd, spool, &cl, &a, &m, &e) == 0)
		message_free(&m);
	else
		close(spool);
	free(line);
	return 0;
}

/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer target: addresses.  The input goes to address_check as one
 * envelope address, and as the value of a To: field read with -t, which
 * runs the header address-list parser (groups, comments, quoted
 * strings, routes) and the check of every mailbox it yields.
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

#define INPUT_MAX	65536

static int	 in_fd = -1;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("TMPDIR", "/tmp", 1);
	log_init("fuzz_address");
	if ((in_fd = memfd_create("in", MFD_CLOEXEC)) == -1) {
		perror("fuzz_address: memfd_create");
		exit(1);
	}
	return 0;
}

static void
envelope(const uint8_t *data, size_t size)
{
	struct error	 e;
	char		*s;

	s = calloc(1, size + 1);
	if (s == NULL)
		abort();
	memcpy(s, data, size);
	memset(&e, 0, sizeof(e));
	(void)address_check(s, &e);
	free(s);
}

static void
header(const uint8_t *data, size_t size)
{
	static const char	 head[] = "From: a@example.com\nTo: ";
	static const char	 tail[] = "\nSubject: x\n\nbody\n";
	struct cmdline		 cl;
	struct account		 a;
	struct message		 m;
	struct error		 e;
	int			 spool;

	if (ftruncate(in_fd, 0) == -1 ||
	    pwrite(in_fd, head, sizeof(head) - 1, 0) == -1 ||
	    pwrite(in_fd, data, size, sizeof(head) - 1) == -1 ||
	    pwrite(in_fd, tail, sizeof(tail) - 1,
	    (off_t)(sizeof(head) - 1 + size)) == -1 ||
	    lseek(in_fd, 0, SEEK_SET) != 0)
		abort();
	memset(&cl, 0, sizeof(cl));
	memset(&a, 0, sizeof(a));
	cl.read_rcpts = 1;
	a.from = "alice@example.com";
	a.maildomain = "example.org";
	a.set_from_header = TRI_OFF;
	a.set_date_header = TRI_OFF;
	a.set_msgid_header = TRI_OFF;
	a.remove_bcc_headers = 1;
	if ((spool = memfd_create("spool", MFD_CLOEXEC)) == -1)
		abort();
	memset(&e, 0, sizeof(e));
	if (message_read(in_fd, spool, &cl, &a, &m, &e) == 0)
		message_free(&m);
	else
		close(spool);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > INPUT_MAX)
		return 0;
	envelope(data, size);
	header(data, size);
	return 0;
}

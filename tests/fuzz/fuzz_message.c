/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer target: the message reader.  The first input byte picks
 * the options (-t, -i, the From:/Date:/Message-ID: fixes, -f, -F); the
 * rest is the message on stdin: header block, address lists, body.
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

static int	 in_fd = -1;

static char	*rcpt_args[] = { "bob@example.net", "carol" };

/* -F names: plain, needing encoding, quoting, and hostile. */
static const char *const names[] = {
	NULL, "Alice Example", "J\xc3\xbcrgen M\xc3\xbcller",
	"\"Quoted\" (comment) <x>", "a\r\nBcc: evil@example.com",
	"=?utf-8?q?already?=", "", "x\x01y"
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("TMPDIR", "/tmp", 1);
	log_init("fuzz_message");
	if ((in_fd = memfd_create("in", MFD_CLOEXEC)) == -1) {
		perror("fuzz_message: memfd_create");
		exit(1);
	}
	return 0;
}

static void
setup(uint8_t o, struct cmdline *cl, struct account *a)
{
	static const enum tri tris[] = { TRI_AUTO, TRI_OFF, TRI_ON,
	    TRI_AUTO };

	memset(cl, 0, sizeof(*cl));
	memset(a, 0, sizeof(*a));
	cl->read_rcpts = o & 1;
	cl->dot_ends = (o >> 1) & 1;
	if (!cl->read_rcpts || (o & 0x80)) {
		cl->rcpts = rcpt_args;
		cl->nrcpts = 2;
	}
	cl->fullname = names[(o >> 5) & 3];
	if (o & 0x40)
		cl->from = (o & 0x10) ? "" : "sender@example.org";
	a->from = "alice@example.com";
	a->from_full_name = (char *)names[((o >> 4) & 3) + 4];
	a->maildomain = "example.org";
	a->allow_from_override = (o >> 3) & 1;
	a->rewrite_local_senders = 1;
	a->set_from_header = tris[(o >> 2) & 3];
	a->set_date_header = (o & 4) ? TRI_AUTO : TRI_OFF;
	a->set_msgid_header = (o & 8) ? TRI_AUTO : TRI_OFF;
	a->remove_bcc_headers = 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cmdline	 cl;
	struct account	 a;
	struct message	 m;
	struct error	 e;
	int		 spool;

	if (size < 1)
		return 0;
	setup(data[0], &cl, &a);
	data++;
	size--;
	if (ftruncate(in_fd, 0) == -1 ||
	    pwrite(in_fd, data, size, 0) != (ssize_t)size ||
	    lseek(in_fd, 0, SEEK_SET) != 0)
		abort();
	if ((spool = memfd_create("spool", MFD_CLOEXEC)) == -1)
		abort();
	memset(&e, 0, sizeof(e));
	if (message_read(in_fd, spool, &cl, &a, &m, &e) == 0)
		message_free(&m);	/* closes the spool */
	else
		close(spool);
	return 0;
}

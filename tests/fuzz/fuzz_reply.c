/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer target: the relay's replies.  The input is what a hostile
 * relay sends; it goes through net.c's line reader, smtp.c's reply
 * parser and, when it parses, the EHLO capability parser.
 */
#include <stdint.h>
#include <string.h>

#include "smarthost.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct conn	 c;
	struct reply		 r;
	struct smtp_caps	 caps;
	struct error		 e;

	if (size > sizeof(c.rbuf))
		size = sizeof(c.rbuf);
	memset(&c, 0, sizeof(c));
	c.fd = -1;		/* no socket: the buffer is all there is */
	c.timeout_ms = 0;
	memcpy(c.rbuf, data, size);
	c.rlen = size;
	while (smtp_read_reply(&c, &r, &e) == 0)
		smtp_parse_ehlo(&r, &caps);
	return 0;
}

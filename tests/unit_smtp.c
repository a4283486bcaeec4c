/* SPDX-License-Identifier: ISC */
/*
 * The reply and EHLO parsers (smtp.c) and the connection's line reader
 * (net.c), fed through a socketpair so the real code paths run.
 */
#include <sys/socket.h>

#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "smarthost.h"
#include "unit.h"

/* Parse BYTES as the relay's reply; returns smtp_read_reply's result. */
static int
feed(const char *bytes, size_t len, struct reply *r, struct error *e)
{
	struct conn	 c;
	int		 sv[2], rc;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	if (write(sv[1], bytes, len) != (ssize_t)len)
		abort();
	close(sv[1]);
	memset(&c, 0, sizeof(c));
	c.fd = sv[0];
	c.timeout_ms = 2000;
	memset(e, 0, sizeof(*e));
	rc = smtp_read_reply(&c, r, e);
	close(sv[0]);
	return rc;
}

#define FEED(s, r, e)	feed((s), sizeof(s) - 1, (r), (e))

static void
test_parse_line(void)
{
	const char	*text;
	int		 code, more;

	CHECK_INT(smtp_parse_line("250 ok", &code, &more, &text), 0,
	    "line: 250 ok parses");
	CHECK_INT(code, 250, "line: code 250");
	CHECK_INT(more, 0, "line: last line");
	CHECK_STR(text, "ok", "line: text");
	CHECK_INT(smtp_parse_line("250-more", &code, &more, &text), 0,
	    "line: continuation parses");
	CHECK_INT(more, 1, "line: continuation flagged");
	CHECK_INT(smtp_parse_line("553", &code, &more, &text), 0,
	    "line: bare code accepted (RFC 5321 4.2)");
	CHECK_STR(text, "", "line: bare code has empty text");
	CHECK_INT(smtp_parse_line("160 x", &code, &more, &text), -1,
	    "line: 1xx refused");
	CHECK_INT(smtp_parse_line("260 x", &code, &more, &text), -1,
	    "line: second digit above 5 refused");
	CHECK_INT(smtp_parse_line("25", &code, &more, &text), -1,
	    "line: two digits refused");
	CHECK_INT(smtp_parse_line("250x", &code, &more, &text), -1,
	    "line: junk after code refused");
	CHECK_INT(smtp_parse_line("hello", &code, &more, &text), -1,
	    "line: garbage refused");
	CHECK_INT(smtp_parse_line("", &code, &more, &text), -1,
	    "line: empty refused");
}

static void
test_replies(void)
{
	struct reply	 r;
	struct error	 e;
	char		*big;
	size_t		 i, n;

	CHECK_INT(FEED("250 2.0.0 Ok\r\n", &r, &e), 0, "reply: single");
	CHECK_INT(r.code, 250, "reply: single code");
	CHECK_STR(r.text, "250 2.0.0 Ok", "reply: single text");

	CHECK_INT(FEED("250-a\r\n250-b\r\n250 c\r\n", &r, &e), 0,
	    "reply: multi-line");
	CHECK_INT(r.lines, 3, "reply: three lines");
	CHECK_STR(r.text, "250 a\n250 b\n250 c", "reply: lines joined");

	CHECK_INT(FEED("250 lf only\n", &r, &e), 0,
	    "reply: LF-only line ending tolerated");
	CHECK_STR(r.text, "250 lf only", "reply: LF-only text");

	CHECK_INT(FEED("553-\r\n553\r\n", &r, &e), 0,
	    "reply: CVE-2020-8794 shape parses within bounds");
	CHECK_INT(r.lines, 2, "reply: CVE-2020-8794 two lines");

	CHECK_INT(FEED("250-a\r\n451 b\r\n", &r, &e), -1,
	    "reply: mixed codes refused");
	CHECK_INT(e.code, EX_PROTOCOL, "reply: mixed codes exit 76");

	CHECK_INT(FEED("hello world\r\n", &r, &e), -1, "reply: garbage");
	CHECK_INT(e.code, EX_PROTOCOL, "reply: garbage exit 76");
	CHECK_STR(e.msg, "the relay sent something that is not an SMTP "
	    "reply: 'hello world'", "reply: garbage message");

	CHECK_INT(FEED("250-a\r\n", &r, &e), -1, "reply: cut short");
	CHECK_INT(e.code, EX_TEMPFAIL, "reply: cut short exit 75");
	CHECK_STR(e.msg, "the relay closed the connection",
	    "reply: cut short message");

	CHECK_INT(FEED("250 a\0b\r\n", &r, &e), -1, "reply: NUL refused");
	CHECK_INT(e.code, EX_PROTOCOL, "reply: NUL exit 76");

	CHECK_INT(FEED("250 \033[2Jclear\r\n", &r, &e), 0,
	    "reply: escape sequence parses");
	CHECK_STR(r.text, "250 \033[2Jclear", "reply: raw text kept");
	error_reply(&e, r.text);
	CHECK_STR(e.reply, "250 ?[2Jclear", "reply: sanitized for output");

	/* A line longer than we accept is an error, never cut silently. */
	n = REPLY_LINE_MAX + 10;
	big = malloc(n + 3);
	memcpy(big, "250 ", 4);
	memset(big + 4, 'x', n - 4);
	memcpy(big + n, "\r\n", 3);
	CHECK_INT(feed(big, n + 2, &r, &e), -1, "reply: overlong line");
	CHECK_INT(e.code, EX_PROTOCOL, "reply: overlong line exit 76");
	free(big);

	/* More continuation lines than the bound. */
	n = (REPLY_LINES_MAX + 5) * 8;
	big = malloc(n + 1);
	for (i = 0; i < REPLY_LINES_MAX + 5; i++)
		memcpy(big + i * 8, "250-xxx\n", 8);
	CHECK_INT(feed(big, n, &r, &e), -1, "reply: too many lines");
	CHECK_INT(e.code, EX_PROTOCOL, "reply: too many lines exit 76");
	free(big);
}

static void
test_ehlo(void)
{
	struct reply	 r;
	struct error	 e;
	struct smtp_caps c;

	FEED("250-relay.test Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
	    "250-auth plain LOGIN\r\n250-AUTH=CRAM-MD5\r\n250-CHUNKING\r\n"
	    "250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250-BINARYMIME\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n", &r, &e);
	smtp_parse_ehlo(&r, &c);
	CHECK_INT(c.pipelining, 1, "ehlo: PIPELINING");
	CHECK_INT(c.size_offered, 1, "ehlo: SIZE offered");
	CHECK_INT((long long)c.size, 10240000, "ehlo: SIZE value");
	CHECK_STR(c.auth, "PLAIN LOGIN CRAM-MD5 ",
	    "ehlo: AUTH lists merged, upper-cased");
	CHECK_INT(c.chunking, 1, "ehlo: CHUNKING");
	CHECK_INT(c.eightbitmime, 1, "ehlo: 8BITMIME");
	CHECK_INT(c.dsn, 1, "ehlo: DSN");
	CHECK_INT(c.smtputf8, 1, "ehlo: SMTPUTF8");
	CHECK_INT(c.binarymime, 1, "ehlo: BINARYMIME");
	CHECK_INT(c.enhanced, 1, "ehlo: ENHANCEDSTATUSCODES");
	CHECK_INT(c.starttls, 1, "ehlo: STARTTLS");

	/* The greeting line's words are not capabilities. */
	FEED("250 STARTTLS.example PIPELINING\r\n", &r, &e);
	smtp_parse_ehlo(&r, &c);
	CHECK_INT(c.starttls, 0, "ehlo: domain line is not a capability");
	CHECK_INT(c.pipelining, 0, "ehlo: single line has no capabilities");

	/* Found by fuzz_reply: many AUTH lines overran the list. */
	{
		char	 many[4096];
		size_t	 len = 0;
		int	 i;

		len += (size_t)snprintf(many, sizeof(many), "250-x\r\n");
		for (i = 0; i < 40; i++)
			len += (size_t)snprintf(many + len, sizeof(many) - len,
			    "250-AUTH PLAIN LOGIN CRAM-MD5\r\n");
		len += (size_t)snprintf(many + len, sizeof(many) - len,
		    "250 OK\r\n");
		feed(many, len, &r, &e);
		smtp_parse_ehlo(&r, &c);
		CHECK_INT(strlen(c.auth), sizeof(c.auth) - 1,
		    "ehlo: many AUTH lines stay within the list's bound");
	}

	FEED("250-x\r\n250 SIZE\r\n", &r, &e);
	smtp_parse_ehlo(&r, &c);
	CHECK_INT(c.size_offered, 1, "ehlo: SIZE without a limit");
	CHECK_INT((long long)c.size, 0, "ehlo: SIZE 0 = no limit");
}

int
main(void)
{
	test_parse_line();
	test_replies();
	test_ehlo();
	UNIT_DONE();
}

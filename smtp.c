/* SPDX-License-Identifier: ISC */
/*
 * The SMTP client: greeting, EHLO, STARTTLS, AUTH, then the transaction
 * in as few round trips as the relay allows (RFC 5321, 3207, 2920, 3030,
 * 1870, 6152, 3461, 6531).  Every wait is bounded by the RFC 5321
 * 4.5.3.2 timeout for its step, scaled by the account's timeout.
 */
#include <sys/socket.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "smarthost.h"

/* RFC 5321 4.5.3.2 minimum timeouts, in seconds. */
#define TO_GREETING	300
#define TO_COMMAND	300
#define TO_DATA_INIT	120
#define TO_DATA_BLOCK	180
#define TO_DATA_END	600

struct session {
	struct conn	 conn;
	struct smtp_caps caps;
	struct account	*acct;
	int		 secure;	/* TLS is up */
	int		 dirty;		/* a transaction ended half-way */
	int		 pending_rset;	/* RSET's reply is still to read */
	smtp_progress_fn progress;	/* called as the data goes out */
	void		*pctx;
	int		 broken;	/* the connection is unusable */
};

static void
set_timeout(struct session *s, int rfc_seconds)
{
	long long	 ms;

	/* The default timeout (60) keeps the RFC values as they are. */
	ms = (long long)rfc_seconds * 1000 * s->acct->timeout / 60;
	if (ms < 1000)
		ms = 1000;
	net_timeout(&s->conn, (int)ms);
}

/*
 * Split one reply line: "250-text", "250 text" or a bare "250".  RFC
 * 5321 4.2: the code is [2-5][0-5][0-9]; anything else is garbage.
 */
int
smtp_parse_line(const char *line, int *code, int *more, const char **text)
{
	if (line[0] < '2' || line[0] > '5' || line[1] < '0' ||
	    line[1] > '5' || line[2] < '0' || line[2] > '9')
		return -1;
	*code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + line[2] - '0';
	switch (line[3]) {
	case '\0':
		*more = 0;
		*text = line + 3;
		return 0;
	case ' ':
		*more = 0;
		break;
	case '-':
		*more = 1;
		break;
	default:
		return -1;
	}
	*text = line + 4;
	return 0;
}

static void
trace_line(const char *dir, const char *line)
{
	char	 clean[REPLY_LINE_MAX];

	if (trace_level == 0)
		return;
	sanitize(clean, sizeof(clean), line);
	trace("%s %s", dir, clean);
}

int
smtp_read_reply(struct conn *c, struct reply *r, struct error *e)
{
	char		 line[REPLY_LINE_MAX], clean[64];
	const char	*text;
	size_t		 len = 0;
	int		 code, more;

	r->code = 0;
	r->lines = 0;
	r->text[0] = '\0';
	do {
		if (net_getline(c, line, sizeof(line), e) == -1)
			return -1;
		trace_line("<-", line);
		if (smtp_parse_line(line, &code, &more, &text) == -1) {
			sanitize(clean, sizeof(clean), line);
			return error_set(e, EX_PROTOCOL, "the relay sent "
			    "something that is not an SMTP reply: '%s'",
			    clean);
		}
		if (r->lines > 0 && code != r->code) {
			error_reply(e, r->text);
			return error_set(e, EX_PROTOCOL, "the relay sent a "
			    "multi-line reply with mixed codes (%d, %d)",
			    r->code, code);
		}
		if (++r->lines > REPLY_LINES_MAX)
			return error_set(e, EX_PROTOCOL, "the relay sent a "
			    "reply of more than %d lines", REPLY_LINES_MAX);
		r->code = code;
		/* Keep "CODE text" lines; a very long reply is cut. */
		if (len + 1 < sizeof(r->text))
			len += (size_t)snprintf(r->text + len,
			    sizeof(r->text) - len, "%s%.3s%s%s",
			    len ? "\n" : "", line, *text ? " " : "", text);
		if (len >= sizeof(r->text))
			len = sizeof(r->text) - 1;
	} while (more);
	return 0;
}

/* Remember the relay's words for the error message. */
static int
reply_error(struct error *e, const struct reply *r, int code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
reply_error(struct error *e, const struct reply *r, int code,
    const char *fmt, ...)
{
	va_list	 ap;

	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	error_reply(e, r->text);
	return -1;
}

/* The exit code a refusal maps to: 4xx waits, 5xx is final. */
static int
refusal_code(const struct reply *r, int permanent)
{
	return r->code >= 500 ? permanent : EX_TEMPFAIL;
}

void
smtp_parse_ehlo(const struct reply *r, struct smtp_caps *caps)
{
	const char	*p = r->text, *eol, *arg;
	char		 kw[32];
	size_t		 n, len;

	memset(caps, 0, sizeof(*caps));
	/* The first line is the greeting's domain, not a capability. */
	if ((p = strchr(p, '\n')) == NULL)
		return;
	for (p++; *p != '\0'; p = *eol ? eol + 1 : eol) {
		if ((eol = strchr(p, '\n')) == NULL)
			eol = p + strlen(p);
		if (eol - p < 4)
			continue;
		p += 4;		/* "250 " */
		for (n = 0; p + n < eol && !isspace((unsigned char)p[n]) &&
		    p[n] != '=' && n + 1 < sizeof(kw); n++)
			kw[n] = (char)toupper((unsigned char)p[n]);
		kw[n] = '\0';
		arg = p + n;
		while (arg < eol && (*arg == ' ' || *arg == '='))
			arg++;
		if (strcmp(kw, "STARTTLS") == 0)
			caps->starttls = 1;
		else if (strcmp(kw, "PIPELINING") == 0)
			caps->pipelining = 1;
		else if (strcmp(kw, "CHUNKING") == 0)
			caps->chunking = 1;
		else if (strcmp(kw, "BINARYMIME") == 0)
			caps->binarymime = 1;
		else if (strcmp(kw, "8BITMIME") == 0)
			caps->eightbitmime = 1;
		else if (strcmp(kw, "SMTPUTF8") == 0)
			caps->smtputf8 = 1;
		else if (strcmp(kw, "DSN") == 0)
			caps->dsn = 1;
		else if (strcmp(kw, "ENHANCEDSTATUSCODES") == 0)
			caps->enhanced = 1;
		else if (strcmp(kw, "SIZE") == 0) {
			caps->size_offered = 1;
			caps->size = strtoull(arg, NULL, 10);
		} else if (strcmp(kw, "AUTH") == 0) {
			/* Several AUTH lines add up; the list is bounded. */
			len = strlen(caps->auth);
			for (n = 0; arg + n < eol &&
			    len + 2 < sizeof(caps->auth); n++)
				caps->auth[len++] = (char)toupper(
				    (unsigned char)arg[n]);
			if (len + 1 < sizeof(caps->auth))
				caps->auth[len++] = ' ';
			caps->auth[len] = '\0';
		}
	}
}

/*
 * Queue one command line; it leaves with the next flush.  A control
 * character can never reach the wire: addresses were checked before,
 * this is the last line of defence against command injection.
 */
static int
cmd(struct session *s, struct error *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
cmd(struct session *s, struct error *e, const char *fmt, ...)
{
	char	 line[SMTP_LINE_MAX];
	va_list	 ap;
	size_t	 i;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		return error_set(e, EX_DATAERR, "SMTP command longer than "
		    "%d octets", SMTP_LINE_MAX);
	for (i = 0; i < (size_t)n; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			return error_set(e, EX_SOFTWARE, "refusing to send a "
			    "command with a control character");
	trace_line("->", line);
	memcpy(line + n, "\r\n", 2);
	return net_write(&s->conn, line, (size_t)n + 2, e);
}

/* Send VERB [ARG], wait TO seconds at most for the reply. */
static int
command(struct session *s, struct reply *r, int to, struct error *e,
    const char *verb, const char *arg)
{
	if ((arg != NULL ? cmd(s, e, "%s %s", verb, arg) :
	    cmd(s, e, "%s", verb)) == -1 || net_flush(&s->conn, e) == -1)
		return -1;
	set_timeout(s, to);
	return smtp_read_reply(&s->conn, r, e);
}

static int
ehlo(struct session *s, struct error *e)
{
	struct reply	 r;
	struct account	*a = s->acct;

	if (command(s, &r, TO_COMMAND, e, "EHLO", a->domain) == -1)
		return -1;
	if (r.code == 250) {
		smtp_parse_ehlo(&r, &s->caps);
		return 0;
	}
	if (r.code < 500 || a->tls || a->auth != NULL)
		return reply_error(e, &r, refusal_code(&r, EX_PROTOCOL),
		    "the relay refused EHLO");
	/* An old relay: HELO, and no extensions at all. */
	if (command(s, &r, TO_COMMAND, e, "HELO", a->domain) == -1)
		return -1;
	if (r.code != 250)
		return reply_error(e, &r, refusal_code(&r, EX_PROTOCOL),
		    "the relay refused EHLO and HELO");
	memset(&s->caps, 0, sizeof(s->caps));
	return 0;
}

/*
 * RFC 3207.  Fail closed: no STARTTLS, a refusal, or any byte after the
 * 220 (the response injection of CVE-2011-0411 and its kin) ends the
 * session before anything else is said in clear.
 */
static int
starttls(struct session *s, struct error *e)
{
	struct reply	 r;
	char		 b;

	if (!s->caps.starttls)
		return error_set(e, EX_PROTOCOL, "the relay does not offer "
		    "STARTTLS, so nothing was sent (someone may be stripping "
		    "it; if the relay only speaks implicit TLS, set "
		    "tls_starttls off)");
	if (command(s, &r, TO_COMMAND, e, "STARTTLS", NULL) == -1)
		return -1;
	if (r.code != 220)
		return reply_error(e, &r, EX_PROTOCOL, "the relay refused "
		    "STARTTLS, so nothing was sent");
	if (net_pending(&s->conn) ||
	    recv(s->conn.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0)
		return error_set(e, EX_PROTOCOL, "the relay sent data after "
		    "its 220 reply to STARTTLS (a response injection attack, "
		    "or a broken relay): aborted before TLS");
	set_timeout(s, TO_COMMAND);
	if (tls_start(&s->conn, s->acct, e) == -1)
		return -1;
	s->secure = 1;
	/* RFC 3207 4.2: forget everything learned in clear. */
	memset(&s->caps, 0, sizeof(s->caps));
	return ehlo(s, e);
}

static int
session_open(struct session *s, struct account *a, struct error *e)
{
	struct reply	 r;

	memset(s, 0, sizeof(*s));
	s->acct = a;
	s->conn.fd = -1;
	if (net_connect(&s->conn, a->host, a->port, a->source_ip,
	    a->timeout * 1000, e) == -1)
		return -1;
	if (a->tls && !a->starttls) {
		set_timeout(s, TO_COMMAND);
		if (tls_start(&s->conn, a, e) == -1)
			return -1;
		s->secure = 1;
	}
	set_timeout(s, TO_GREETING);
	if (smtp_read_reply(&s->conn, &r, e) == -1)
		return -1;
	if (r.code != 220)
		return reply_error(e, &r, r.code == 421 ? EX_TEMPFAIL :
		    EX_PROTOCOL, "the relay did not greet with 220");
	if (ehlo(s, e) == -1)
		return -1;
	if (a->tls && a->starttls && starttls(s, e) == -1)
		return -1;
	if (a->auth != NULL) {
		set_timeout(s, TO_COMMAND);
		if (auth_login(&s->conn, &s->caps, a, e) == -1)
			return -1;
	}
	return 0;
}

static void
session_close(struct session *s)
{
	struct error	 ignored;

	if (s->conn.fd == -1)
		return;
	/* QUIT without waiting: its reply tells us nothing we need. */
	set_timeout(s, 5);
	if (cmd(s, &ignored, "QUIT") == 0)
		(void)net_flush(&s->conn, &ignored);
	net_close(&s->conn);
}

/* RFC 3461 xtext, for ENVID. */
static void
xtext(char *dst, size_t size, const char *src)
{
	size_t		 len = 0;
	unsigned char	 c;

	for (; *src != '\0' && len + 4 < size; src++) {
		c = (unsigned char)*src;
		if (c < 33 || c > 126 || c == '+' || c == '=')
			len += (size_t)snprintf(dst + len, size - len, "+%02X",
			    c);
		else
			dst[len++] = (char)c;
	}
	dst[len] = '\0';
}

/* What the message needs that the relay must offer; checked up front. */
static int
check_caps(const struct session *s, const struct message *m,
    struct error *e)
{
	const struct smtp_caps	*c = &s->caps;

	if (c->size_offered && c->size > 0 &&
	    (unsigned long long)m->size > c->size)
		return error_set(e, EX_DATAERR, "the message is %lld octets, "
		    "the relay takes at most %llu", (long long)m->size,
		    c->size);
	if (m->has_nul && !(c->binarymime && c->chunking))
		return error_set(e, EX_DATAERR, "the message holds NUL bytes "
		    "and the relay does not offer BINARYMIME with CHUNKING: "
		    "not sent, rather than altered");
	if (m->smtputf8 && !c->smtputf8)
		return error_set(e, EX_UNAVAILABLE, "an envelope address is "
		    "not ASCII and the relay does not offer SMTPUTF8");
	if ((m->dsn_notify != NULL || m->dsn_return != NULL ||
	    m->dsn_envid != NULL) && !c->dsn)
		return error_set(e, EX_UNAVAILABLE, "delivery status "
		    "notifications were asked for and the relay does not "
		    "offer DSN");
	return 0;
}

static int
send_mail_from(struct session *s, const struct message *m,
    struct error *e)
{
	char	 params[SMTP_LINE_MAX], envid[300];
	size_t	 len = 0;

	params[0] = '\0';
	if (s->caps.size_offered)
		len += (size_t)snprintf(params + len, sizeof(params) - len,
		    " SIZE=%lld", (long long)m->size);
	if (m->has_nul)
		len += (size_t)snprintf(params + len, sizeof(params) - len,
		    " BODY=BINARYMIME");
	else if (m->eightbit && s->caps.eightbitmime)
		len += (size_t)snprintf(params + len, sizeof(params) - len,
		    " BODY=8BITMIME");
	if (m->smtputf8)
		len += (size_t)snprintf(params + len, sizeof(params) - len,
		    " SMTPUTF8");
	if (m->dsn_return != NULL)
		len += (size_t)snprintf(params + len, sizeof(params) - len,
		    " RET=%s", m->dsn_return);
	if (m->dsn_envid != NULL) {
		xtext(envid, sizeof(envid), m->dsn_envid);
		snprintf(params + len, sizeof(params) - len, " ENVID=%s",
		    envid);
	}
	return cmd(s, e, "MAIL FROM:<%s>%s", m->sender, params);
}

static int
send_rcpt(struct session *s, const struct message *m, size_t i,
    struct error *e)
{
	return cmd(s, e, "RCPT TO:<%s>%s%s", m->rcpts[i],
	    m->dsn_notify ? " NOTIFY=" : "",
	    m->dsn_notify ? m->dsn_notify : "");
}

static int
send_rcpts(struct session *s, const struct message *m, struct error *e)
{
	size_t	 i;

	for (i = 0; i < m->nrcpts; i++)
		if (send_rcpt(s, m, i, e) == -1)
			return -1;
	return 0;
}

/*
 * The message as it is in the spool, in 64 KiB reads.  With DATA, a
 * line starting with '.' gets one more (RFC 5321 4.5.2); the spool
 * already has CRLF line endings and ends with one.
 */
static int
send_body(struct session *s, const struct message *m, int stuff,
    struct error *e)
{
	char		 buf[65536];
	const char	*p, *end, *nl;
	off_t		 off = 0;
	ssize_t		 n;
	int		 bol = 1;

	set_timeout(s, TO_DATA_BLOCK);
	while (off < m->size) {
		/* Only the message: a queued file has its envelope after it. */
		n = pread(m->fd, buf, m->size - off < (off_t)sizeof(buf) ?
		    (size_t)(m->size - off) : sizeof(buf), off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return error_set(e, EX_IOERR, "cannot read the spooled "
			    "message: %s", n == 0 ? "short file" :
			    strerror(errno));
		off += n;
		if (s->progress != NULL)
			s->progress(s->pctx, off, m->size);
		if (!stuff) {
			if (net_write(&s->conn, buf, (size_t)n, e) == -1)
				return -1;
			continue;
		}
		for (p = buf, end = buf + n; p < end; p = nl) {
			if (bol && *p == '.' &&
			    net_write(&s->conn, ".", 1, e) == -1)
				return -1;
			nl = memchr(p, '\n', (size_t)(end - p));
			nl = nl != NULL ? nl + 1 : end;
			bol = nl[-1] == '\n';
			if (net_write(&s->conn, p, (size_t)(nl - p), e) == -1)
				return -1;
		}
	}
	if (stuff && net_write(&s->conn, ".\r\n", 3, e) == -1)
		return -1;
	trace("-> (%lld octets of message%s)", (long long)m->size,
	    stuff ? " and the final dot" : "");
	return 0;
}

/*
 * Read the replies to MAIL and every RCPT (RFC 2920: all of them, even
 * after a refusal); the first refusal is reported.  Returns 0, 1 for a
 * refusal, -1 when the connection failed.
 */
static int
read_envelope_replies(struct session *s, const struct message *m,
    struct error *e)
{
	struct reply	 r;
	size_t		 i;
	int		 failed = 0;

	set_timeout(s, TO_COMMAND);
	if (s->pending_rset) {
		s->pending_rset = 0;
		if (smtp_read_reply(&s->conn, &r, e) == -1)
			return -1;
		if (r.code != 250)
			return reply_error(e, &r, EX_PROTOCOL,
			    "the relay refused RSET");
	}
	if (smtp_read_reply(&s->conn, &r, e) == -1)
		return -1;
	if (r.code != 250) {
		failed = 1;
		reply_error(e, &r, refusal_code(&r, EX_DATAERR),
		    "the relay refused the sender <%s>", m->sender);
	}
	for (i = 0; i < m->nrcpts; i++) {
		if (smtp_read_reply(&s->conn, &r, e) == -1)
			return -1;
		if ((r.code == 250 || r.code == 251) || failed)
			continue;
		failed = 1;
		reply_error(e, &r, refusal_code(&r, EX_DATAERR),
		    "the relay refused the recipient <%s>", m->rcpts[i]);
	}
	return failed;
}

static int
final_reply(struct session *s, struct reply *r, const char *what,
    struct error *e)
{
	set_timeout(s, TO_DATA_END);
	if (smtp_read_reply(&s->conn, r, e) == -1)
		return -1;
	if (r->code != 250)
		return reply_error(e, r, refusal_code(r, EX_DATAERR),
		    "the relay refused the message after %s", what);
	return 0;
}

/* The whole message as one chunk (RFC 3030): no dot-stuffing. */
static int
bdat_last(struct session *s, const struct message *m, struct error *e)
{
	if (cmd(s, e, "BDAT %lld LAST", (long long)m->size) == -1)
		return -1;
	return send_body(s, m, 0, e);
}

/* After the reply to DATA: the message, dot-stuffed, if it was 354. */
static int
data_after_354(struct session *s, const struct message *m, struct reply *r,
    struct error *e)
{
	if (r->code != 354)
		return reply_error(e, r, refusal_code(r, EX_DATAERR),
		    "the relay refused DATA");
	if (send_body(s, m, 1, e) == -1 || net_flush(&s->conn, e) == -1)
		return -1;
	return final_reply(s, r, "DATA", e);
}

/*
 * One recipient and CHUNKING: MAIL, RCPT, BDAT and the message leave in
 * one flight.  With more recipients the RCPT replies are read first, so
 * that a refused recipient never leaves the others with a copy.
 */
static int
transaction_bdat(struct session *s, const struct message *m,
    struct reply *r, struct error *e)
{
	struct error	 e2;
	int		 one_flight = s->caps.pipelining && m->nrcpts == 1;
	int		 failed;

	if (send_mail_from(s, m, e) == -1 || send_rcpts(s, m, e) == -1)
		return -1;
	if (!one_flight) {
		if (net_flush(&s->conn, e) == -1 ||
		    read_envelope_replies(s, m, e) != 0)
			return -1;
	}
	if (bdat_last(s, m, e) == -1 || net_flush(&s->conn, e) == -1)
		return -1;
	if (one_flight && (failed = read_envelope_replies(s, m, e)) != 0) {
		/* Still read the BDAT reply; the first refusal counts. */
		if (failed == 1)
			(void)smtp_read_reply(&s->conn, r, &e2);
		return -1;
	}
	return final_reply(s, r, "BDAT", e);
}

/*
 * PIPELINING: MAIL, every RCPT and DATA in one flight; the message
 * follows the 354.  If any recipient was refused the message is not
 * sent at all: after a 354 the only way out without delivering to the
 * others is to drop the connection before the final dot.
 */
static int
transaction_data(struct session *s, const struct message *m,
    struct reply *r, struct error *e)
{
	struct error	 e2;
	int		 failed;

	if (send_mail_from(s, m, e) == -1 ||
	    send_rcpts(s, m, e) == -1 || cmd(s, e, "DATA") == -1 ||
	    net_flush(&s->conn, e) == -1)
		return -1;
	if ((failed = read_envelope_replies(s, m, e)) == -1)
		return -1;
	set_timeout(s, TO_DATA_INIT);
	if (smtp_read_reply(&s->conn, r, failed ? &e2 : e) == -1)
		return -1;
	if (failed) {
		if (r->code == 354)
			net_close(&s->conn);	/* no dot: nothing delivered */
		return -1;
	}
	return data_after_354(s, m, r, e);
}

/* Without PIPELINING: every command waits for its reply. */
static int
transaction_lockstep(struct session *s, const struct message *m,
    struct reply *r, struct error *e)
{
	size_t	 i;

	set_timeout(s, TO_COMMAND);
	if (send_mail_from(s, m, e) == -1 || net_flush(&s->conn, e) == -1 ||
	    smtp_read_reply(&s->conn, r, e) == -1)
		return -1;
	if (r->code != 250)
		return reply_error(e, r, refusal_code(r, EX_DATAERR),
		    "the relay refused the sender <%s>", m->sender);
	for (i = 0; i < m->nrcpts; i++) {
		if (send_rcpt(s, m, i, e) == -1 || net_flush(&s->conn, e) == -1 ||
		    smtp_read_reply(&s->conn, r, e) == -1)
			return -1;
		if (r->code != 250 && r->code != 251)
			return reply_error(e, r, refusal_code(r, EX_DATAERR),
			    "the relay refused the recipient <%s>",
			    m->rcpts[i]);
	}
	if (s->caps.chunking)
		return bdat_last(s, m, e) == -1 ||
		    net_flush(&s->conn, e) == -1 ? -1 :
		    final_reply(s, r, "BDAT", e);
	set_timeout(s, TO_DATA_INIT);
	if (cmd(s, e, "DATA") == -1 || net_flush(&s->conn, e) == -1 ||
	    smtp_read_reply(&s->conn, r, e) == -1)
		return -1;
	return data_after_354(s, m, r, e);
}

/*
 * After a refused transaction the relay still holds its state: RSET
 * leads the next flight (RFC 2920 lets it be pipelined).
 */
static int
reset(struct session *s, struct error *e)
{
	struct reply	 r;

	if (!s->dirty)
		return 0;
	if (cmd(s, e, "RSET") == -1)
		return -1;
	if (s->caps.pipelining)
		return 1;	/* its reply is read first, with the flight's */
	if (net_flush(&s->conn, e) == -1)
		return -1;
	set_timeout(s, TO_COMMAND);
	if (smtp_read_reply(&s->conn, &r, e) == -1)
		return -1;
	return r.code == 250 ? 0 : reply_error(e, &r, EX_PROTOCOL,
	    "the relay refused RSET");
}

static int
transaction(struct session *s, const struct message *m, struct reply *r,
    struct error *e)
{
	int	 rc;

	if ((rc = reset(s, e)) == -1)
		return -1;
	s->pending_rset = rc;
	s->dirty = 1;
	if (!s->caps.pipelining)
		return transaction_lockstep(s, m, r, e);
	if (s->caps.chunking)
		return transaction_bdat(s, m, r, e);
	return transaction_data(s, m, r, e);
}

/*
 * One connection for any number of messages: smtp_open, then
 * smtp_deliver for each (oldest queued first), then smtp_close.
 */
struct session *
smtp_open(struct account *a, struct error *e)
{
	struct session	*s = xcalloc(1, sizeof(*s));

	if (session_open(s, a, e) == -1) {
		smtp_close(s);
		return NULL;
	}
	return s;
}

int
smtp_deliver(struct session *s, const struct message *m, struct reply *r,
    struct error *e)
{
	r->code = 0;
	r->text[0] = '\0';
	if (s->broken || s->conn.fd == -1)
		return error_set(e, EX_TEMPFAIL, "the connection to the relay "
		    "was lost");
	if (check_caps(s, m, e) == -1)
		return -1;	/* nothing was sent: the session is intact */
	if (transaction(s, m, r, e) == 0) {
		s->dirty = 0;
		return 0;
	}
	/* A refusal leaves the session usable; anything else does not. */
	if (e->reply[0] == '\0' || s->conn.fd == -1 ||
	    (e->code != EX_DATAERR && e->code != EX_TEMPFAIL))
		s->broken = 1;
	return -1;
}

/*
 * Several queued messages over one connection, pipelined across
 * transactions (RFC 2920): the flights of all N messages (MAIL, RCPT,
 * BDAT LAST and the data) leave before the first reply is read, so the
 * queue flush pays one round trip per batch instead of one per message.
 * Only one-recipient messages with PIPELINING and CHUNKING take this
 * way (a refused sender or recipient then delivers nothing); the rest
 * go one by one.  Each message gets its own reply, error and result.
 */
int
smtp_batchable(const struct session *s, const struct message *m)
{
	return smtp_usable(s) && s->caps.pipelining && s->caps.chunking &&
	    m->nrcpts == 1;
}

void
smtp_deliver_batch(struct session *s, struct message *const *m, size_t n,
    struct reply *r, struct error *e, int *rc)
{
	struct error	 ignored;
	size_t		 i, sent = 0;
	int		 failed, rset = 0;

	for (i = 0; i < n; i++)
		rc[i] = 0;
	/* A refused transaction before this batch: RSET leads it. */
	if ((rset = reset(s, &e[0])) == -1)
		goto lost;
	for (i = 0; i < n; i++) {
		r[i].code = 0;
		r[i].text[0] = '\0';
		if ((rc[i] = check_caps(s, m[i], &e[i])) == -1)
			continue;	/* refused here: never sent */
		/*
		 * A refused MAIL or RCPT leaves the relay's transaction
		 * open (a 554 to BDAT does not end it), and we learn of it
		 * only later: every later transaction starts with RSET.
		 */
		if ((sent > 0 && cmd(s, &e[i], "RSET") == -1) ||
		    send_mail_from(s, m[i], &e[i]) == -1 ||
		    send_rcpts(s, m[i], &e[i]) == -1 ||
		    bdat_last(s, m[i], &e[i]) == -1)
			goto lost;
		rc[i] = sent > 0 || rset ? 2 : 1;	/* 2: after an RSET */
		sent = i + 1;
	}
	if (sent > 0 && net_flush(&s->conn, &e[sent - 1]) == -1)
		goto lost;
	s->dirty = 0;
	for (i = 0; i < sent; i++) {
		if (rc[i] <= 0)
			continue;
		s->pending_rset = rc[i] == 2;	/* its reply comes first */
		if ((failed = read_envelope_replies(s, m[i], &e[i])) == -1)
			goto lost;
		if (failed) {
			/* The BDAT that followed is refused too. */
			if (smtp_read_reply(&s->conn, &r[i], &ignored) == -1)
				goto lost;
			rc[i] = -1;
			s->dirty = 1;
			continue;
		}
		if ((rc[i] = final_reply(s, &r[i], "BDAT", &e[i])) == -1 &&
		    e[i].reply[0] == '\0')
			goto lost;
		s->dirty = rc[i] == -1;
	}
	return;
lost:
	/* The connection broke: what was in flight is not known. */
	s->broken = 1;
	for (i = 0; i < n; i++) {
		if (rc[i] > 0 || (rc[i] == 0 && i >= sent)) {
			if (e[i].msg[0] == '\0')
				error_set(&e[i], EX_TEMPFAIL, "the connection "
				    "to the relay was lost");
			rc[i] = -1;
		}
	}
}

void
smtp_progress(struct session *s, smtp_progress_fn fn, void *ctx)
{
	s->progress = fn;
	s->pctx = ctx;
}

int
smtp_usable(const struct session *s)
{
	return s != NULL && !s->broken && s->conn.fd != -1;
}

void
smtp_close(struct session *s)
{
	if (s == NULL)
		return;
	if (!s->broken)
		session_close(s);
	else
		net_close(&s->conn);
	free(s);
}

static void
print_caps(FILE *fp, const struct smtp_caps *c)
{
	fprintf(fp, "Capabilities:\n");
	if (c->size_offered)
		fprintf(fp, "    SIZE %llu (%s)\n", c->size, c->size ?
		    "largest message" : "no limit");
	if (c->pipelining)
		fprintf(fp, "    PIPELINING\n");
	if (c->chunking)
		fprintf(fp, "    CHUNKING\n");
	if (c->binarymime)
		fprintf(fp, "    BINARYMIME\n");
	if (c->eightbitmime)
		fprintf(fp, "    8BITMIME\n");
	if (c->smtputf8)
		fprintf(fp, "    SMTPUTF8\n");
	if (c->dsn)
		fprintf(fp, "    DSN\n");
	if (c->enhanced)
		fprintf(fp, "    ENHANCEDSTATUSCODES\n");
	if (c->auth[0] != '\0')
		fprintf(fp, "    AUTH %s\n", c->auth);
}

/* --serverinfo: everything we learn from the relay, and no mail. */
int
smtp_serverinfo(struct account *a, FILE *fp, struct error *e)
{
	struct session	 s;
	struct tls_info	 ti;
	struct account	 noauth = *a;
	int		 rc;

	noauth.auth = NULL;
	rc = session_open(&s, &noauth, e);
	if (rc == 0) {
		fprintf(fp, "Relay %s port %d (%s)\n", a->host, a->port,
		    s.conn.peer);
		if (s.conn.tls != NULL) {
			tls_info(s.conn.tls, &ti);
			fprintf(fp, "TLS: %s, %s (%s)\n", ti.version,
			    ti.cipher, a->starttls ? "STARTTLS" :
			    "implicit TLS");
			fprintf(fp, "Certificate:\n    subject %s\n"
			    "    issuer  %s\n    expires %s\n"
			    "    SHA-256 %s\n", ti.subject, ti.issuer,
			    ti.expires, ti.fingerprint);
		} else
			fprintf(fp, "TLS: off\n");
		print_caps(fp, &s.caps);
		if (a->auth != NULL) {
			rc = auth_login(&s.conn, &s.caps, a, e);
			fprintf(fp, "Authentication as %s: %s\n",
			    a->user ? a->user : "(no user)",
			    rc == 0 ? "works" : "FAILED");
		}
	}
	session_close(&s);
	return rc;
}

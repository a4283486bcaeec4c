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

/*
 * RFC 5321 4.5.3.2 minimum timeouts, in seconds; the greeting's is
 * ours: a relay that accepts the connection and says nothing for half
 * a minute is the wrong port (465 spoken to with STARTTLS) or a broken
 * path, and waiting 5 minutes at every run helps no one.
 */
#define TO_GREETING	30
#define TO_COMMAND	300
#define TO_DATA_INIT	120
#define TO_DATA_BLOCK	180
#define TO_DATA_END	600

/*
 * Transactions in flight at once with PIPELINING and CHUNKING: each is
 * a whole message (MAIL, RCPT..., BDAT LAST and the data), so a queue
 * run pays one round trip per window, not per message, and the window
 * slides: a new message goes out as each one's replies come in.  Each
 * holds an open queue file; 64 stays far below any descriptor limit.
 */
#define WINDOW		64

/*
 * Octets of message data that may go out before the reply to a
 * pipelined AUTH: a larger message waits for the 235.
 */
#define AUTH_FLIGHT_MAX	(64 * 1024)

/* One transaction: a message and the recipients it is for. */
struct txn {
	struct mail	*mail;
	size_t		*idx;		/* its recipients, in m->rcpts */
	size_t		 n;
	unsigned char	*acc;		/* acc[k]: the relay took idx[k] */
	size_t		 accepted;
	int		 rset;		/* an RSET leads it */
	int		 mail_ok;	/* MAIL was accepted */
	int		 limited;	/* a recipient limit was met */
	int		 data_sent;	/* the message went (DATA path) */
	int		 lost;		/* a 421 met it: for a new connection */
	int		 delivered;	/* 250 for the data */
	int		 auth_failed;	/* behind an AUTH the relay refused */
	int		 skip_mail;	/* ... which took our MAIL line */
	unsigned long long end;		/* conn.out when it was all written */
};

static int	 auth_first(struct session *, struct error *);
static int	 txn_reply(struct session *, struct reply *, struct error *);
static void	 replies_left(struct session *, const struct smtp_feed *);
static void	 again_lost(struct session *, const struct smtp_feed *,
		    const struct error *);
static void	 mail_fail(struct mail *, const struct reply *, int,
		    const char *, ...) __attribute__((format(printf, 4, 5)));
static int	 send_body(struct session *, const struct message *, int,
		    struct error *);

struct session {
	struct conn	 conn;
	struct smtp_caps caps;
	const struct account *acct;
	const struct cred *cred;
	int		 secure;	/* TLS is up */
	int		 tls12;		/* TLS 1.2 at most (tls_start) */
	int		 dirty;		/* the relay may hold a transaction */
	smtp_progress_fn progress;	/* called as the data goes out */
	void		*pctx;
	int		 broken;	/* the connection is unusable */
	int		 closing;	/* the relay said 421: no new ones */
	struct error	 closed;	/* ... and its words */
	struct auth_pending auth;	/* AUTH rides with the first flight */
	int		 auth_pending;
	int		 auth_busy;	/* its reply is being read */
	off_t		 auth_bytes;	/* data sent before its reply */
	size_t		 rcpt_limit;	/* recipients per transaction; 0: any */
	struct txn	 win[WINDOW];	/* in flight, oldest at head */
	size_t		 head, count;
	struct mail	*again[WINDOW];	/* need another transaction */
	size_t		 nagain;
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

/*
 * One reply, multi-line or not.  secret: an AUTH exchange, whose 334
 * challenges carry credentials or their proofs: those lines are never
 * traced.
 */
static int
reply_read(struct conn *c, struct reply *r, int secret, struct error *e)
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
		if (!secret || strncmp(line, "334", 3) != 0)
			trace_line("<-", line);
		else
			trace("<- 334 <redacted>");
		if (smtp_parse_line(line, &code, &more, &text) == -1) {
			sanitize(clean, sizeof(clean), line);
			return error_set(e, EX_PROTOCOL, "the relay sent "
			    "something that is not an SMTP reply: '%s'",
			    secret ? "<redacted>" : clean);
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

/* A failed read leaves a reply half read: c->rbroken says so. */
int
smtp_read_reply(struct conn *c, struct reply *r, struct error *e)
{
	if (reply_read(c, r, 0, e) == -1) {
		c->rbroken = 1;
		return -1;
	}
	return 0;
}

int
smtp_read_secret(struct conn *c, struct reply *r, struct error *e)
{
	if (reply_read(c, r, 1, e) == -1) {
		c->rbroken = 1;
		return -1;
	}
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
	const struct account *a = s->acct;

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
	int		 rc;

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
	if ((rc = tls_start(&s->conn, s->acct, s->tls12, e)) != 0)
		return rc;
	s->secure = 1;
	/* RFC 3207 4.2: forget everything learned in clear. */
	memset(&s->caps, 0, sizeof(s->caps));
	return ehlo(s, e);
}

/* No greeting: say which setting is likely wrong. */
static int
greeting_error(struct session *s, const struct account *a,
    struct error *e)
{
	int	 secs = s->conn.timeout_ms / 1000;

	if (e->code != EX_TEMPFAIL || strncmp(e->msg, "no answer", 9) != 0)
		return -1;
	if (a->tls && a->starttls && a->port == 465)
		return error_set(e, EX_CONFIG, "no greeting from %s port 465 "
		    "within %d seconds: port 465 is implicit TLS, and this "
		    "account speaks STARTTLS there: set tls_starttls off",
		    a->host, secs);
	return error_set(e, EX_TEMPFAIL, "%s port %d took the connection but "
	    "sent no greeting within %d seconds: a broken path, or not the "
	    "relay's SMTP port (465 is implicit TLS: tls_starttls off; 587 "
	    "and 25 greet in clear: tls_starttls on)", a->host, a->port,
	    secs);
}

/*
 * Connect, greeting, EHLO, TLS, AUTH.  -1 on failure; -2 when the TLS
 * handshake asks for a second try with TLS 1.2 at most (tls_start).
 */
static int
session_connect(struct session *s, const struct account *a,
    const struct cred *cr, struct error *e)
{
	struct reply	 r;
	int		 rc;

	if (net_connect(&s->conn, a->host, a->port, a->source_ip,
	    a->timeout * 1000, e) == -1)
		return -1;
	if (a->tls && !a->starttls) {
		set_timeout(s, TO_GREETING);
		if ((rc = tls_start(&s->conn, a, s->tls12, e)) != 0)
			return rc;
		s->secure = 1;
	}
	set_timeout(s, TO_GREETING);
	if (smtp_read_reply(&s->conn, &r, e) == -1)
		return greeting_error(s, a, e);
	if (r.code != 220)
		return reply_error(e, &r, r.code == 421 ? EX_TEMPFAIL :
		    EX_PROTOCOL, "the relay did not greet with 220");
	if (ehlo(s, e) == -1)
		return -1;
	if (a->tls && a->starttls && (rc = starttls(s, e)) != 0)
		return rc;
	if (a->auth != NULL && cr != NULL) {
		set_timeout(s, TO_COMMAND);
		if ((rc = auth_start(&s->conn, &s->caps, a, cr, 1, &s->auth,
		    e)) == -1)
			return -1;
		s->auth_pending = rc == 1;
	}
	return 0;
}

static int
session_open(struct session *s, const struct account *a,
    const struct cred *cr, struct error *e)
{
	int	 rc;

	memset(s, 0, sizeof(*s));
	s->acct = a;
	s->cred = cr;
	s->conn.fd = -1;
	if ((rc = session_connect(s, a, cr, e)) != -2)
		return rc;
	trace("-- the relay signed TLS 1.2 with RSA-PSS, which this mbedTLS "
	    "refuses: connecting again, offering TLS 1.2 only");
	net_close(&s->conn);
	memset(&s->caps, 0, sizeof(s->caps));
	s->secure = 0;
	s->tls12 = 1;
	return session_connect(s, a, cr, e) == 0 ? 0 : -1;
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
	return cmd(s, e, "RCPT TO:<%s>%s%s", m->rcpts[i].addr,
	    m->dsn_notify ? " NOTIFY=" : "",
	    m->dsn_notify ? m->dsn_notify : "");
}

/*
 * Per recipient (RFC 5321 3.3): what a transaction's replies mean for
 * the message and for each of its recipients.
 */

/*
 * The first failure of a message is what its caller reports; a broken
 * session on an earlier connection says less than what the relay says
 * on this one.
 */
static void
mail_fail(struct mail *ml, const struct reply *r, int code,
    const char *fmt, ...)
{
	va_list	 ap;

	if (ml->error.msg[0] != '\0' && !ml->error_soft)
		return;
	ml->error_soft = 0;
	ml->error.code = code;
	va_start(ap, fmt);
	vsnprintf(ml->error.msg, sizeof(ml->error.msg), fmt, ap);
	va_end(ap);
	if (r != NULL)
		error_reply(&ml->error, r->text);
}

/* The session broke under this message: for a new connection. */
static void
mail_lost(struct mail *ml, const struct error *e)
{
	ml->lost = 1;
	if (ml->error.msg[0] == '\0') {
		ml->error = *e;
		ml->error_soft = 1;
	}
}

/* The reply, one line, as a recipient keeps it (queue, mailq, log). */
static void
why_line(char *buf, size_t size, const struct reply *r)
{
	size_t	 i;

	snprintf(buf, size, "%s", r->text);
	for (i = 0; buf[i] != '\0'; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = ' ';
}

/* 4xx: for now, 5xx: for good. */
static void
rcpt_refuse(struct rcpt *rc, const struct reply *r)
{
	char	 why[REPLY_LINE_MAX];

	why_line(why, sizeof(why), r);
	rcpt_set(rc, r->code >= 500 ? RCPT_REFUSED : RCPT_DEFERRED, why);
}

/*
 * "Too many recipients" (RFC 5321 4.5.3.1.10): 452, or the older 552,
 * with the enhanced code X.5.3 or saying so; a bare 452 counts when the
 * relay took others in the same transaction.
 */
int
smtp_rcpt_limit_reply(const struct reply *r)
{
	const char	*t = r->text + (strlen(r->text) > 4 ? 4 : 3);

	if (r->code != 452 && r->code != 552)
		return 0;
	return strncmp(t, "4.5.3", 5) == 0 || strncmp(t, "5.5.3", 5) == 0 ||
	    strcasestr(r->text, "too many recipients") != NULL;
}

/* The reply to MAIL FROM; 0 when the transaction goes on. */
static int
txn_mail_reply(struct txn *t, const struct reply *r)
{
	struct message	*m = t->mail->m;
	size_t		 i;

	if (r->code == 421 || (t->auth_failed && r->code != 250)) {
		t->lost = 1;	/* not a verdict on the message */
		return -1;
	}
	t->mail->answered = 1;
	if (r->code == 250) {
		t->mail_ok = 1;
		return 0;
	}
	mail_fail(t->mail, r, r->code == 503 ? EX_PROTOCOL : r->code >= 500 ?
	    EX_DATAERR : EX_TEMPFAIL, "the relay refused the sender <%s>",
	    m->sender);
	/*
	 * Whatever it says of the sender, it says for every recipient.  A
	 * 503 ("bad sequence") is the relay's confusion, not a verdict on
	 * the message: later.
	 */
	for (i = 0; i < m->nrcpts; i++) {
		if (m->rcpts[i].state != RCPT_PENDING)
			continue;
		m->rcpts[i].this_run = 1;
		rcpt_refuse(&m->rcpts[i], r);
		if (r->code == 503)
			m->rcpts[i].state = RCPT_DEFERRED;
	}
	return -1;
}

/* The reply to the K-th RCPT of the transaction. */
static void
txn_rcpt_reply(struct session *s, struct txn *t, size_t k,
    const struct reply *r)
{
	struct message	*m = t->mail->m;
	struct rcpt	*rc = &m->rcpts[t->idx[k]];

	if (!t->mail_ok)
		return;		/* its MAIL failed: nothing to learn */
	if (r->code == 421 || (t->auth_failed && r->code != 250 &&
	    r->code != 251)) {
		t->lost = 1;
		return;
	}
	if (r->code == 250 || r->code == 251) {
		t->acc[k] = 1;
		t->accepted++;
		return;
	}
	/* Over the limit: it waits for the next transaction. */
	if (t->accepted > 0 && (smtp_rcpt_limit_reply(r) || r->code == 452)) {
		if (!t->limited && (s->rcpt_limit == 0 ||
		    t->accepted < s->rcpt_limit))
			s->rcpt_limit = t->accepted;
		t->limited = 1;
		return;
	}
	rcpt_refuse(rc, r);
	/* Postfix says this at RCPT time when the login may not send so. */
	if (strcasestr(r->text, "Sender address rejected") != NULL)
		mail_fail(t->mail, r, r->code >= 500 ? EX_DATAERR :
		    EX_TEMPFAIL, "the relay refused the sender <%s>",
		    m->sender);
	else
		mail_fail(t->mail, r, r->code >= 500 ? EX_DATAERR :
		    EX_TEMPFAIL, "the relay refused the recipient <%s>",
		    rc->addr);
}

/*
 * The reply to the data: for every recipient the relay took.  A 250
 * delivers to them even when replies before it said the session is
 * ending (a 421 to a later RCPT, a refused AUTH on a relay that relays
 * all the same): sending it again would make a duplicate.  The reply
 * to the DATA command itself is no verdict unless it refuses: anything
 * but 354 there sent nothing.
 */
static void
txn_data_reply(struct txn *t, const struct reply *r, const char *what)
{
	struct message	*m = t->mail->m;
	size_t		 k;
	int		 to_data = strcmp(what, "DATA") == 0 && !t->data_sent;

	if (to_data && r->code < 400) {
		mail_fail(t->mail, r, EX_PROTOCOL, "the relay answered DATA "
		    "with %d instead of 354: nothing was sent", r->code);
		for (k = 0; k < t->n; k++)
			if (t->acc[k])
				rcpt_set(&m->rcpts[t->idx[k]], RCPT_DEFERRED,
				    "DATA answered without 354");
		return;
	}
	if (r->code != 250 && (r->code == 421 || t->lost || t->auth_failed)) {
		t->lost = 1;	/* those it took wait for a new connection */
		return;
	}
	if (r->code == 250) {
		t->mail->reply = *r;
		t->delivered = 1;
	} else if (to_data && t->mail->error.msg[0] == '\0')
		mail_fail(t->mail, r, r->code >= 500 ? EX_DATAERR :
		    EX_TEMPFAIL, "the relay refused DATA");
	else
		mail_fail(t->mail, r, r->code >= 500 ? EX_DATAERR :
		    EX_TEMPFAIL, "the relay refused the message after %s",
		    what);
	for (k = 0; k < t->n; k++) {
		if (!t->acc[k])
			continue;
		if (r->code == 250)
			rcpt_set(&m->rcpts[t->idx[k]], RCPT_SENT, NULL);
		else
			rcpt_refuse(&m->rcpts[t->idx[k]], r);
	}
}

/*
 * Whether the relay may now hold a transaction open: after anything but
 * a clean end, the next transaction starts with RSET (in its flight, so
 * it costs no round trip when pipelined).
 */
static void
txn_end(struct session *s, const struct txn *t, const struct reply *final)
{
	s->dirty = t->mail_ok && (final == NULL || final->code != 250);
}

/*
 * The next transaction for a message: its pending recipients, at most
 * the relay's limit.  Returns 0 when it has none left.
 */
static int
txn_build(struct session *s, struct mail *ml, struct txn *t)
{
	struct message	*m = ml->m;
	size_t		 i;

	memset(t, 0, sizeof(*t));
	t->mail = ml;
	t->idx = xcalloc(m->nrcpts, sizeof(*t->idx));
	t->acc = xcalloc(m->nrcpts, 1);
	for (i = 0; i < m->nrcpts; i++) {
		if (m->rcpts[i].state != RCPT_PENDING)
			continue;
		if (s->rcpt_limit > 0 && t->n == s->rcpt_limit)
			break;
		m->rcpts[i].this_run = 1;
		t->idx[t->n++] = i;
	}
	/*
	 * Behind a transaction whose outcome is not known yet, RSET leads
	 * (RFC 2920 lets it ride in the flight): a relay that keeps a
	 * failed transaction open (MAIL taken, every RCPT refused, the
	 * chunk refused) would otherwise take this one's RCPT and data
	 * into that one, while its MAIL got 503: delivered, and sent
	 * again.  A clean end needs none.
	 */
	t->rset = s->dirty || s->count > 0;
	return t->n > 0;
}

static void
txn_free(struct txn *t)
{
	free(t->idx);
	free(t->acc);
	memset(t, 0, sizeof(*t));
}

/* MAIL and its recipients, queued for the next flush. */
static int
txn_envelope(struct session *s, struct txn *t, struct error *e)
{
	size_t	 k;

	if (t->rset && cmd(s, e, "RSET") == -1)
		return -1;
	if (send_mail_from(s, t->mail->m, e) == -1)
		return -1;
	for (k = 0; k < t->n; k++)
		if (send_rcpt(s, t->mail->m, t->idx[k], e) == -1)
			return -1;
	return 0;
}

/*
 * RSET's reply, when one led the transaction.  Refused, it is no
 * verdict: the replies behind it in the flight are read all the same
 * (a relay that then took the message must not get it again), and a
 * MAIL the relay cannot take says so itself (503).  A 421 ends the
 * session after what is in flight (txn_reply).
 */
static int
txn_rset_reply(struct session *s, struct txn *t, struct error *e)
{
	struct reply	 r;

	if (!t->rset)
		return 0;
	if (txn_reply(s, &r, e) == -1)
		return -1;
	if (r.code != 250) {
		trace("-- the relay refused RSET (%d): reading on", r.code);
		return 0;
	}
	s->dirty = 0;
	return 0;
}

/*
 * A reply read.  A 421 says the relay is closing the session: nothing
 * new goes out, but what is in flight is still read, as long as the
 * connection lasts (a relay that goes on answering may have taken the
 * messages after it: sending those again would make duplicates).
 */
static int
txn_reply(struct session *s, struct reply *r, struct error *e)
{
	if (smtp_read_reply(&s->conn, r, e) == -1)
		return -1;
	if (r->code == 421 && !s->closing) {
		s->closing = 1;
		reply_error(&s->closed, r, EX_TEMPFAIL, "the relay closed the "
		    "session");
	}
	return 0;
}

/*
 * The reply to an AUTH that rode with this transaction.  Refused, the
 * session ends after the transaction, whose replies say nothing about
 * the message (530 "authentication required"): unless the relay took
 * it all the same (it relays for anyone), it waits, as when AUTH
 * fails alone.  A 334 ate our MAIL line: the transaction has no MAIL.
 */
static int
txn_auth_reply(struct session *s, struct txn *t, struct error *e)
{
	size_t	 k;
	int	 rc;

	if (!s->auth_pending)
		return 0;
	s->auth_pending = 0;
	set_timeout(s, TO_COMMAND);
	s->auth_busy = 1;
	if ((rc = auth_finish(&s->conn, s->acct, &s->auth, &s->closed)) ==
	    -1) {
		*e = s->closed;
		return -1;
	}
	s->auth_busy = 0;
	if (rc == 0)
		return 0;
	/* Every transaction of the flight was behind it. */
	for (k = 0; k < s->count; k++)
		s->win[(s->head + k) % WINDOW].auth_failed = 1;
	t->auth_failed = 1;
	s->closing = 1;
	if (s->auth.ate) {
		t->lost = 1;
		t->mail_ok = 0;
		t->skip_mail = 1;
	}
	return 0;
}

/* The replies to MAIL and every RCPT (RFC 2920: all, even after one). */
static int
txn_envelope_replies(struct session *s, struct txn *t, struct error *e)
{
	struct reply	 r;
	size_t		 k;

	set_timeout(s, TO_COMMAND);
	if (txn_auth_reply(s, t, e) == -1 || txn_rset_reply(s, t, e) == -1)
		return -1;
	if (!t->skip_mail) {
		if (txn_reply(s, &r, e) == -1)
			return -1;
		(void)txn_mail_reply(t, &r);
	}
	for (k = 0; k < t->n; k++) {
		if (txn_reply(s, &r, e) == -1)
			return -1;
		txn_rcpt_reply(s, t, k, &r);
	}
	return 0;
}

/*
 * PIPELINING and CHUNKING: the whole transaction in one flight, its
 * replies read later.  The data goes whatever the replies will be: a
 * recipient refused does not keep the message from the others, and
 * with nobody taken the relay refuses the chunk.
 */
static int
txn_write_bdat(struct session *s, struct txn *t, struct error *e)
{
	set_timeout(s, TO_DATA_BLOCK);
	if (txn_envelope(s, t, e) == -1 ||
	    cmd(s, e, "BDAT %lld LAST", (long long)t->mail->m->size) == -1)
		return -1;
	return send_body(s, t->mail->m, 0, e);
}

static int
txn_read_bdat(struct session *s, struct txn *t, struct error *e)
{
	struct reply	 r;

	if (txn_envelope_replies(s, t, e) == -1)
		return -1;
	set_timeout(s, TO_DATA_END);
	if (txn_reply(s, &r, e) == -1)
		return -1;
	if (t->mail_ok && t->accepted > 0)
		txn_data_reply(t, &r, "BDAT");
	txn_end(s, t, &r);
	return 0;
}

/*
 * PIPELINING without CHUNKING: MAIL, every RCPT and DATA in one flight;
 * the data follows a 354.  With nobody taken, a 354 still wants its
 * end: a lone "." that delivers to no one.
 */
static int
txn_data(struct session *s, struct txn *t, struct error *e)
{
	struct reply	 r;
	int		 any;

	set_timeout(s, TO_COMMAND);
	if (txn_envelope(s, t, e) == -1 || cmd(s, e, "DATA") == -1 ||
	    net_flush(&s->conn, e) == -1 ||
	    txn_envelope_replies(s, t, e) == -1)
		return -1;
	set_timeout(s, TO_DATA_INIT);
	if (txn_reply(s, &r, e) == -1)
		return -1;
	any = t->mail_ok && t->accepted > 0;
	if (r.code != 354) {
		if (any)
			txn_data_reply(t, &r, "DATA");
		txn_end(s, t, NULL);
		return 0;
	}
	t->data_sent = 1;
	if ((any ? send_body(s, t->mail->m, 1, e) :
	    net_write(&s->conn, ".\r\n", 3, e)) == -1 ||
	    net_flush(&s->conn, e) == -1)
		return -1;
	set_timeout(s, TO_DATA_END);
	if (txn_reply(s, &r, e) == -1)
		return -1;
	if (any)
		txn_data_reply(t, &r, "DATA");
	txn_end(s, t, &r);
	return 0;
}

/* Without PIPELINING: every command waits for its reply. */
static int
txn_lockstep(struct session *s, struct txn *t, struct error *e)
{
	struct reply	 r;
	size_t		 k;

	set_timeout(s, TO_COMMAND);
	if (t->rset && (cmd(s, e, "RSET") == -1 ||
	    net_flush(&s->conn, e) == -1 || txn_rset_reply(s, t, e) == -1))
		return -1;
	if (s->closing) {	/* 421 to the RSET: nothing more goes out */
		t->lost = 1;
		return 0;
	}
	if (send_mail_from(s, t->mail->m, e) == -1 ||
	    net_flush(&s->conn, e) == -1 || txn_reply(s, &r, e) == -1)
		return -1;
	if (txn_mail_reply(t, &r) == -1) {
		txn_end(s, t, NULL);
		return 0;
	}
	for (k = 0; k < t->n && !t->limited; k++) {
		if (send_rcpt(s, t->mail->m, t->idx[k], e) == -1 ||
		    net_flush(&s->conn, e) == -1 || txn_reply(s, &r, e) == -1)
			return -1;
		txn_rcpt_reply(s, t, k, &r);
	}
	if (t->accepted == 0) {
			txn_end(s, t, NULL);
		return 0;
	}
	if (s->caps.chunking) {
		if (cmd(s, e, "BDAT %lld LAST", (long long)t->mail->m->size) ==
		    -1 || send_body(s, t->mail->m, 0, e) == -1 ||
		    net_flush(&s->conn, e) == -1)
			return -1;
		set_timeout(s, TO_DATA_END);
		if (txn_reply(s, &r, e) == -1)
			return -1;
		txn_data_reply(t, &r, "BDAT");
	} else {
		set_timeout(s, TO_DATA_INIT);
		if (cmd(s, e, "DATA") == -1 || net_flush(&s->conn, e) == -1 ||
		    txn_reply(s, &r, e) == -1)
			return -1;
		if (r.code == 354) {
			t->data_sent = 1;
			if (send_body(s, t->mail->m, 1, e) == -1 ||
			    net_flush(&s->conn, e) == -1)
				return -1;
			set_timeout(s, TO_DATA_END);
			if (txn_reply(s, &r, e) == -1)
				return -1;
		}
		txn_data_reply(t, &r, "DATA");
		if (!t->data_sent) {
			txn_end(s, t, NULL);
			return 0;
		}
	}
	txn_end(s, t, &r);
	return 0;
}

/*
 * The session's side of the feed: a message that needs another
 * transaction (over a recipient limit) goes before any new one.
 */
static struct mail *
feed_take(struct session *s, const struct smtp_feed *f)
{
	struct mail	*ml;

	if (s->nagain > 0) {
		ml = s->again[0];
		memmove(s->again, s->again + 1,
		    --s->nagain * sizeof(*s->again));
		return ml;
	}
	/* Asked again each time: an outcome can give it more to send. */
	return f->next(f->ctx);
}

/* A message whose transaction ended: another one, or its outcome. */
static void
feed_after(struct session *s, const struct smtp_feed *f, struct txn *t)
{
	struct mail	*ml = t->mail;
	int		 more = rcpt_count(ml->m, RCPT_PENDING) > 0;

	if (t->auth_failed && t->delivered)
		log_warn("%s, but the relay took the message anyway (it "
		    "relays without authentication): fix the password all "
		    "the same", s->closed.msg);
	if (t->lost) {
		mail_lost(ml, &s->closed);
		more = 0;
	}
	txn_free(t);
	if (more && s->nagain < WINDOW)
		s->again[s->nagain++] = ml;
	else {
		if (more)
			ml->lost = 1;	/* cannot happen: WINDOW bounds it */
		f->done(f->ctx, ml);
	}
}

/*
 * The AUTH reply before the flight goes on: for a message too large to
 * send before knowing the password works.  -1: refused, or the
 * connection failed (e says which).
 */
static int
auth_first(struct session *s, struct error *e)
{
	int	 rc;

	set_timeout(s, TO_COMMAND);
	if (net_flush(&s->conn, e) == -1)
		return -1;	/* replies_left may read its reply */
	s->auth_pending = 0;
	s->auth_busy = 1;
	rc = auth_finish(&s->conn, s->acct, &s->auth, e);
	if (rc != -1)
		s->auth_busy = 0;
	if (rc == 0)
		return 0;
	if (rc == 1) {
		s->closing = 1;
		s->closed = *e;
	}
	return -1;
}

/*
 * What the relay needs before anything is sent; a message it cannot take
 * (too large, NUL bytes, SMTPUTF8 or DSN missing) is refused for every
 * recipient here.  Returns 0 when it is to be sent.
 */
static int
mail_check(struct session *s, struct mail *ml)
{
	struct message	*m = ml->m;
	struct error	 e;
	size_t		 i;

	memset(&e, 0, sizeof(e));
	if (check_caps(s, m, &e) == 0)
		return 0;
	if (ml->error.msg[0] == '\0' || ml->error_soft) {
		ml->error = e;
		ml->error_soft = 0;
	}
	for (i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].state == RCPT_PENDING) {
			m->rcpts[i].this_run = 1;
			rcpt_set(&m->rcpts[i], RCPT_REFUSED, e.msg);
		}
	return -1;
}

/*
 * The connection broke: the messages in flight get nothing they were
 * not told of.  A recipient whose transaction had no final reply stays
 * pending (the relay may or may not have taken it: RFC 5321 6.1), and
 * the caller tries again over a new connection.
 */
static void
session_lost(struct session *s, const struct smtp_feed *f,
    const struct error *e)
{
	struct txn	*t;
	struct mail	*ml;

	s->broken = 1;
	while (s->count > 0) {
		t = &s->win[s->head];
		s->head = (s->head + 1) % WINDOW;
		s->count--;
		ml = t->mail;
		txn_free(t);
		mail_lost(ml, e);
		f->done(f->ctx, ml);
	}
	again_lost(s, f, e);
}

/* The messages that wait for another transaction: handed back. */
static void
again_lost(struct session *s, const struct smtp_feed *f,
    const struct error *e)
{
	struct mail	*ml;

	while (s->nagain > 0) {
		ml = s->again[--s->nagain];
		mail_lost(ml, e);
		f->done(f->ctx, ml);
	}
}

/*
 * Every message the feed gives, over this connection.  With PIPELINING
 * and CHUNKING up to WINDOW whole transactions are in flight; otherwise
 * one at a time.  Returns 0 when the feed ran dry, -1 when the
 * connection broke (every message taken has been handed back by done,
 * the unfinished ones marked lost).
 */
int
smtp_send(struct session *s, const struct smtp_feed *f, struct error *e)
{
	struct txn	*t;
	struct mail	*ml;
	size_t		 window;

	if (!smtp_usable(s))
		return error_set(e, EX_TEMPFAIL, "the connection to the relay "
		    "was lost");
	window = s->caps.pipelining && s->caps.chunking ? WINDOW : 1;
	for (;;) {
		while (!s->closing && s->count < window &&
		    !(s->auth_pending && s->auth_bytes >= AUTH_FLIGHT_MAX) &&
		    (ml = feed_take(s, f)) != NULL) {
			if (mail_check(s, ml) == -1) {
				f->done(f->ctx, ml);
				continue;
			}
			/*
			 * Before the AUTH reply, at most AUTH_FLIGHT_MAX
			 * octets of data go out: a message that would pass
			 * it waits for the reply (read with the flight's
			 * first transaction, or now).
			 */
			if (s->auth_pending && window > 1 && s->count > 0 &&
			    s->auth_bytes + ml->m->size > AUTH_FLIGHT_MAX) {
				s->again[s->nagain++] = ml;
				s->auth_bytes = AUTH_FLIGHT_MAX;
				break;
			}
			if (s->auth_pending && window > 1 &&
			    ml->m->size > AUTH_FLIGHT_MAX &&
			    auth_first(s, e) == -1) {
				ml->lost = 1;
				ml->error = *e;
				f->done(f->ctx, ml);
				goto lost;
			}
			t = &s->win[(s->head + s->count) % WINDOW];
			if (!txn_build(s, ml, t)) {
				txn_free(t);
				f->done(f->ctx, ml);
				continue;
			}
			s->count++;
			if (s->auth_pending)
				s->auth_bytes += t->mail->m->size;
			if (window > 1 && txn_write_bdat(s, t, e) == -1)
				goto lost;
			t->end = s->conn.out;
			if (window == 1)
				break;
		}
		/* Closing (421, a refused AUTH): done, politely (QUIT). */
		if (s->count == 0 && s->closing) {
			*e = s->closed;
			again_lost(s, f, e);
			return -1;
		}
		if (s->count == 0)
			return 0;
		t = &s->win[s->head];
		if (window > 1) {
			if (net_flush(&s->conn, e) == -1 ||
			    txn_read_bdat(s, t, e) == -1)
				goto lost;
		} else if ((s->caps.pipelining ? txn_data(s, t, e) :
		    txn_lockstep(s, t, e)) == -1)
			goto lost;
		s->head = (s->head + 1) % WINDOW;
		s->count--;
		feed_after(s, f, t);
	}
lost:
	if (window > 1 && s->conn.wbroken && !s->conn.rbroken &&
	    !s->auth_busy)
		replies_left(s, f);
	session_lost(s, f, e);
	return -1;
}

/*
 * A write of a flight failed: the relay may have closed after taking
 * its first messages (a per-connection limit), and the replies it sent
 * before are still in the socket.  Those of the transactions that went
 * out whole are read, for a second at most, so what it took is not sent
 * again.  The first that cannot be read ends it; session_lost takes the
 * rest.  Only when no read has failed and no AUTH exchange was cut in
 * its middle: else the next reply is not where the window says.
 */
static void
replies_left(struct session *s, const struct smtp_feed *f)
{
	struct txn	*t;
	struct error	 e;

	s->conn.cap = now_ms() + 1000;
	while (s->count > 0) {
		t = &s->win[s->head];
		if (t->end == 0 || t->end > s->conn.sent ||
		    txn_read_bdat(s, t, &e) == -1)
			break;
		s->head = (s->head + 1) % WINDOW;
		s->count--;
		feed_after(s, f, t);
	}
}

/*
 * One connection for any number of messages: smtp_open, smtp_send with
 * a feed, smtp_close.
 */
struct session *
smtp_open(const struct account *a, const struct cred *cr, struct error *e)
{
	struct session	*s = xcalloc(1, sizeof(*s));

	if (session_open(s, a, cr, e) == -1) {
		smtp_close(s);
		return NULL;
	}
	return s;
}

/* What a reconnect should know from the start: the recipient limit. */
size_t
smtp_rcpt_limit(const struct session *s)
{
	return s != NULL ? s->rcpt_limit : 0;
}

void
smtp_set_rcpt_limit(struct session *s, size_t n)
{
	s->rcpt_limit = n;
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
	return s != NULL && !s->broken && !s->closing && s->conn.fd != -1;
}

void
smtp_close(struct session *s)
{
	size_t	 i;

	if (s == NULL)
		return;
	if (!s->broken)
		session_close(s);
	else
		net_close(&s->conn);
	for (i = 0; i < WINDOW; i++)
		txn_free(&s->win[i]);
	free(s);
}

/*
 * The message as it is in the spool, in reads of up to 64 KiB sized so
 * that they end on a TLS record boundary: net_write then passes whole
 * records on without copying them.  With DATA, a line starting with '.'
 * gets one more (RFC 5321 4.5.2); such lines are found with memchr(3)
 * for the dots, not line by line.  The spool already has CRLF line
 * endings and ends with one.
 */
static int
send_body(struct session *s, const struct message *m, int stuff,
    struct error *e)
{
	char		 buf[65536];
	const char	*p, *q, *end;
	off_t		 off = 0;
	size_t		 want;
	ssize_t		 n;
	int		 bol = 1;

	set_timeout(s, TO_DATA_BLOCK);
	while (off < m->size) {
		/* Only the message: a queued file has its envelope after it. */
		want = net_write_size(&s->conn, sizeof(buf));
		if (m->size - off < (off_t)want)
			want = (size_t)(m->size - off);
		n = pread(m->fd, buf, want, off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return error_set(e, EX_IOERR, "cannot read the spooled "
			    "message: %s", n == 0 ? "short file" :
			    strerror(errno));
		off += n;
		if (s->progress != NULL)
			s->progress(s->pctx, off, m->size);
		p = buf;
		end = buf + n;
		for (q = p; stuff && q < end; q++) {
			if ((q = memchr(q, '.', (size_t)(end - q))) == NULL)
				break;
			if (q == buf ? !bol : q[-1] != '\n')
				continue;
			/* The dot goes out with the text that follows it. */
			if (net_write(&s->conn, p, (size_t)(q - p), e) == -1 ||
			    net_write(&s->conn, ".", 1, e) == -1)
				return -1;
			p = q;
		}
		if (net_write(&s->conn, p, (size_t)(end - p), e) == -1)
			return -1;
		bol = end[-1] == '\n';
	}
	if (stuff && net_write(&s->conn, ".\r\n", 3, e) == -1)
		return -1;
	trace("-> (%lld octets of message%s)", (long long)m->size,
	    stuff ? " and the final dot" : "");
	return 0;
}

/* A value the relay chose, printed with no control character in it. */
static void
print_field(FILE *fp, const char *prefix, const char *value,
    const char *suffix)
{
	char	 clean[1024];
	size_t	 i;

	snprintf(clean, sizeof(clean), "%s", value);
	for (i = 0; clean[i] != '\0'; i++)
		if ((unsigned char)clean[i] < 0x20 || clean[i] == 0x7f)
			clean[i] = '?';
	fprintf(fp, "%s%s%s", prefix, clean, suffix);
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
		print_field(fp, "    AUTH ", c->auth, "\n");
}

/* --serverinfo: everything we learn from the relay, and no mail. */
int
smtp_serverinfo(const struct account *a, const struct cred *cr, FILE *fp,
    struct error *e)
{
	struct session	 s;
	struct account	 full;
	struct tls_info	 ti;
	int		 rc;

	/*
	 * A full handshake: a session resumed from the cache has no
	 * certificate to show (TLS 1.3 keeps none), and the fingerprint
	 * is what a user comes here for.  No AUTH yet: it is tried below,
	 * where its outcome is printed.
	 */
	full = *a;
	full.session_cache = NULL;
	rc = session_open(&s, &full, NULL, e);
	if (rc == 0) {
		fprintf(fp, "Relay %s port %d (%s)\n", a->host, a->port,
		    s.conn.peer);
		if (s.conn.tls != NULL) {
			tls_info(s.conn.tls, &ti);
			fprintf(fp, "TLS: %s, %s (%s)\n", ti.version,
			    ti.cipher, a->starttls ? "STARTTLS" :
			    "implicit TLS");
			print_field(fp, "Certificate:\n    subject ",
			    ti.subject, "\n");
			print_field(fp, "    issuer  ", ti.issuer, "\n");
			print_field(fp, "    expires ", ti.expires, "\n");
			print_field(fp, "    SHA-256 ", ti.fingerprint, "\n");
		} else
			fprintf(fp, "TLS: off\n");
		print_caps(fp, &s.caps);
		if (a->auth != NULL) {
			rc = auth_login(&s.conn, &s.caps, a, cr, e);
			print_field(fp, "Authentication as ", a->user ?
			    a->user : "(no user)", rc == 0 ? ": works\n" :
			    ": FAILED\n");
		}
	}
	session_close(&s);
	return rc;
}

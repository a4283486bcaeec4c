/* SPDX-License-Identifier: ISC */
/*
 * testsrv: the scripted SMTP server smarthost's tests talk to.
 *
 * It plays a relay on loopback for one client connection at a time and
 * records what crosses the wire: a transcript of every command, reply,
 * flight and TLS event, and each message as envelope, data and raw
 * stream.  A fault script changes replies, delays or trickles them,
 * injects bytes, or drops the connection at chosen steps, so that tests
 * can provoke every misbehaviour a client must survive.
 *
 * TLS is mbedTLS 3.6 (server side, with session tickets for resumption
 * tests); AUTH is GNU SASL's server side plus XOAUTH2 and OAUTHBEARER
 * written here (with -O, the bearer token must be one of a file's
 * lines, re-read at each AUTH: the OAuth2 tests' token endpoint writes
 * it, so a stale token is refused).  Replies are queued and written
 * the way Postfix does: only when no complete command is left in the
 * input buffer, so a pipelined client flight gets one write of all its
 * replies.
 */

#include <sys/types.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <gsasl.h>
#include <mbedtls/base64.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/psa_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_cache.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>

#define MAXCMD		512		/* RFC 5321 4.5.3.1.4, CRLF included */
#define MAXAUTHLINE	12288		/* RFC 4954 4 */
#define INBUFSZ		(64 * 1024)	/* >= one TLS record + one line */
#define MAXOUT		(64 * 1024 * 1024)
#define MAXTLOG		1100		/* transcript line, newline included */
#define MAXRCPT		1000
#define MAXUSERS	32
#define MAXCAPS		64
#define MAXRULES	256
#define MAXMATCH	32
#define MAXAUTHSTEPS	16
#define MAXSCRIPTLINE	8192
#define FILLERLEN	78		/* octets of one filler reply line */
#define HOSTNAME	"testsrv"
#define SCRAM_FAKE_KEY1	"00112233445566778899aabbccddeeff00112233"
#define SCRAM_FAKE_KEY256 "00112233445566778899aabbccddeeff" \
			"00112233445566778899aabbccddeeff"

enum step {
	ST_CONNECT, ST_GREETING, ST_EHLO, ST_HELO, ST_STARTTLS, ST_TLS,
	ST_AUTH, ST_AUTHSTEP, ST_MAIL, ST_RCPT, ST_DATA, ST_DATABODY,
	ST_DATAEND, ST_BDAT, ST_BDATLAST, ST_RSET, ST_NOOP, ST_QUIT,
	ST_COUNT
};
#define ST_NONE		ST_COUNT	/* replies no rule can change */

static const char *const stepnames[ST_COUNT] = {
	"connect", "greeting", "ehlo", "helo", "starttls", "tls", "auth",
	"auth-step", "mail", "rcpt", "data", "data-body", "data-end",
	"bdat", "bdat-last", "rset", "noop", "quit"
};

#define BIT(s)		(1u << (s))
#define ALLSTEPS	(BIT(ST_COUNT) - 1)
#define REPLYSTEPS	(ALLSTEPS & ~(BIT(ST_CONNECT) | BIT(ST_TLS) | \
			    BIT(ST_DATABODY)))
#define DROPSTEPS	(BIT(ST_DATABODY) | BIT(ST_BDAT) | BIT(ST_BDATLAST))

enum action {
	A_REPLY, A_CLOSE, A_DROP, A_DELAY, A_TRICKLE, A_INJECT, A_BIG,
	A_LINES, A_NOSTARTTLS, A_COUNT
};

enum argkind { ARG_NONE, ARG_TEXT, ARG_NUM };

static const struct actiondef {
	const char	*name;
	enum argkind	 arg;
	long		 max;
	unsigned int	 steps;
} actions[A_COUNT] = {
	{ "reply",	ARG_TEXT, 0,		REPLYSTEPS | BIT(ST_TLS) },
	{ "close",	ARG_NONE, 0,		ALLSTEPS },
	{ "drop",	ARG_NUM,  1L << 30,	DROPSTEPS },
	{ "delay",	ARG_NUM,  600000,	ALLSTEPS },
	{ "trickle",	ARG_NUM,  10000,	REPLYSTEPS },
	{ "inject",	ARG_TEXT, 0,		REPLYSTEPS },
	{ "big",	ARG_NUM,  16L << 20,	REPLYSTEPS },
	{ "lines",	ARG_NUM,  1000000,	REPLYSTEPS },
	{ "nostarttls",	ARG_NONE, 0,		BIT(ST_EHLO) },
};

struct rule {
	enum step	 step;
	enum action	 act;
	unsigned long	 occ;		/* 0: every occurrence */
	unsigned long	 conn;		/* 0: every connection */
	long		 num;
	char		*text;		/* escapes processed */
	size_t		 textlen;
};

struct script {
	struct rule	*r;
	size_t		 n;
};

struct effect {
	const struct rule *r[MAXMATCH];
	size_t		 n;
};

struct buf {
	char		*p;
	size_t		 len, cap;
};

struct user {
	const char	*name;
	const char	*pass;
};

struct caps {
	char		*copy;		/* the -e/-E argument, split */
	char		*line[MAXCAPS];
	size_t		 n;
};

struct config {
	const char	*addr, *port, *portfile, *cert, *key, *cafile;
	const char	*script, *tfile, *dir;
	const char	*tokens;	/* -O: bearer tokens, a line each */
	char		*greeting;
	int		 implicit;
	mbedtls_ssl_protocol_version tlsmin, tlsmax;
	struct caps	 caps, capstls;
	struct user	 users[MAXUSERS];
	size_t		 nusers;
	unsigned long	 count;
	long		 maxsecs;
	int		 timeout_ms;
	size_t		 rcptmax;	/* -L: per transaction, 0: MAXRCPT */
	const char	*scramiter;	/* -i: SCRAM iteration count sent */
};

struct tls {
	int		 ready;
	int		 resumed;	/* set by the ticket/cache hooks */
	mbedtls_ssl_config conf;
	mbedtls_x509_crt cert, ca;
	mbedtls_pk_context key;
	mbedtls_ssl_ticket_context ticket;
	mbedtls_ssl_cache_context cache;
};

enum stop { STOP_NO, STOP_SIGNAL, STOP_DEADLINE };

struct server {
	const struct config *cf;
	struct script	 sc;
	FILE		*tlog;
	int		 lfd, sigfd;
	long long	 deadline;
	unsigned long	 nconn, nmsg, ntmp;
	enum stop	 stop;
	struct tls	 tls;
	Gsasl		*sasl;
};

enum how { H_OPEN, H_QUIT, H_EOF, H_DROPPED, H_TIMEOUT, H_ERROR };
static const char *const hownames[] = {
	"open", "quit", "eof", "dropped", "timeout", "error"
};

enum line { LINE_NONE, LINE_OK, LINE_LONG };

struct msg {
	int		 open;
	FILE		*raw, *eml;
	unsigned long	 tmpno;
	unsigned long long rawlen, emllen;
	unsigned long	 reads, lastseq;
	int		 state;		/* dot-unstuffing, enum bodystate */
};

struct txn {
	int		 mail;
	char		*from;		/* "<addr>[ params]" as recorded */
	char		*rcpt[MAXRCPT];
	size_t		 nrcpt;
	int		 utf8, binary;
	int		 bdat, bdatfail;
	struct msg	 m;
};

struct conn {
	struct server	*srv;
	const struct config *cf;
	int		 fd;
	unsigned long	 no;
	enum how	 how;
	int		 tls, tls13, peerok, sslinit;
	mbedtls_ssl_context ssl;
	char		 tlsver[32], tlssuite[96], peercn[256];

	unsigned char	 in[INBUFSZ];
	size_t		 ipos, iend;
	int		 discard;
	char		 line[MAXAUTHLINE + 1];
	size_t		 linelen;
	int		 crlf;
	struct buf	 out;

	unsigned long	 flight, flreads, flbytes, readseq;
	int		 wrote, flreported;
	unsigned long	 occ[ST_COUNT];

	int		 helo;		/* 0, 'e' (EHLO) or 'h' (HELO) */
	char		 heloname[MAXCMD];
	int		 nostarttls;
	int		 authed;
	char		 authmech[64], authid[256];
	struct txn	 txn;
};

static void	usage(void) __attribute__((noreturn));
static void	fatal(const char *, ...)
		    __attribute__((noreturn, format(printf, 1, 2)));

/* ------------------------------------------------------------------ */
/* Small helpers. */

static void
fatal(const char *fmt, ...)
{
	va_list ap;

	fputs("testsrv: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void
usage(void)
{
	fputs("usage: testsrv [-T] [-l addr] [-p port] [-w portfile] "
	    "[-c cert -k key]\n"
	    "\t[-A cafile] [-m 1.2|1.3] [-M 1.2|1.3] [-e caps] [-E caps]\n"
	    "\t[-u user:pass]... [-s script] [-t transcript] [-d dir]\n"
	    "\t[-n count] [-x seconds] [-r seconds] [-g greeting]"
	    " [-L rcpts]\n\t[-i scram-iterations] [-O tokenfile]\n", stderr);
	exit(2);
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
buf_add(struct buf *b, const void *p, size_t n)
{
	size_t cap;
	char *np;

	if (n > MAXOUT || b->len + n > MAXOUT)
		fatal("reply buffer over %d octets", MAXOUT);
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((np = realloc(b->p, cap)) == NULL)
			fatal("out of memory");
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
buf_addstr(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void
buf_set(struct buf *b, const char *p, size_t n)
{
	b->len = 0;
	buf_add(b, p, n);
}

static void
buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* Parse a whole decimal number in [0, max]; -1 when it is not one. */
static long
parse_num(const char *s, long max)
{
	char *end;
	long v;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	return v;
}

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/*
 * Process \r \n \t \\ \xHH in s into out.  Returns -1 on an unknown or
 * incomplete escape.
 */
static int
unescape(const char *s, struct buf *out)
{
	char ch;
	int hi, lo;

	out->len = 0;
	buf_add(out, "", 0);
	for (; *s != '\0'; s++) {
		ch = *s;
		if (ch == '\\') {
			switch (*++s) {
			case 'r':  ch = '\r'; break;
			case 'n':  ch = '\n'; break;
			case 't':  ch = '\t'; break;
			case '\\': ch = '\\'; break;
			case 'x':
				if ((hi = hexval(s[1])) == -1 ||
				    (lo = hexval(s[2])) == -1)
					return -1;
				ch = (char)(hi * 16 + lo);
				s += 2;
				break;
			default:
				return -1;
			}
		}
		buf_add(out, &ch, 1);
	}
	return 0;
}

static int
ends_crlf(const struct buf *b)
{
	return b->len >= 2 && b->p[b->len - 2] == '\r' &&
	    b->p[b->len - 1] == '\n';
}

/* The reply code a text starts with, 0 when it has none. */
static int
reply_code(const char *p, size_t len)
{
	if (len < 3 || !isdigit((unsigned char)p[0]) ||
	    !isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]))
		return 0;
	return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

/* ------------------------------------------------------------------ */
/* Fault script. */

static enum step
step_lookup(const char *name)
{
	int i;

	for (i = 0; i < ST_COUNT; i++)
		if (strcmp(name, stepnames[i]) == 0)
			return (enum step)i;
	return ST_NONE;
}

static int
action_lookup(const char *name)
{
	int i;

	for (i = 0; i < A_COUNT; i++)
		if (strcmp(name, actions[i].name) == 0)
			return i;
	return -1;
}

/* "@N " prefix: only the Nth connection. */
static const char *
rule_parse_conn(const char *p, struct rule *r, const char **why)
{
	char num[32];
	size_t n;
	long v;

	if (*p != '@')
		return p;
	n = strcspn(++p, " \t");
	if (n == 0 || n >= sizeof(num))
		return *why = "bad @N connection number", NULL;
	memcpy(num, p, n);
	num[n] = '\0';
	if ((v = parse_num(num, 1000000)) <= 0)
		return *why = "bad @N connection number", NULL;
	r->conn = (unsigned long)v;
	return p + n + strspn(p + n, " \t");
}

/* "STEP[#N]" */
static const char *
rule_parse_step(const char *p, struct rule *r, const char **why)
{
	char name[32], *hash;
	size_t n;
	long v;

	n = strcspn(p, " \t");
	if (n == 0 || n >= sizeof(name))
		return *why = "missing or bad step", NULL;
	memcpy(name, p, n);
	name[n] = '\0';
	if ((hash = strchr(name, '#')) != NULL) {
		*hash++ = '\0';
		if ((v = parse_num(hash, 1000000)) <= 0)
			return *why = "bad #N occurrence", NULL;
		r->occ = (unsigned long)v;
	}
	if ((r->step = step_lookup(name)) == ST_NONE)
		return *why = "unknown step", NULL;
	return p + n + strspn(p + n, " \t");
}

static const char *
rule_parse_arg(const char *arg, struct rule *r)
{
	const struct actiondef *a = &actions[r->act];
	struct buf b = { 0 };

	if (a->arg == ARG_NONE)
		return *arg == '\0' ? NULL : "this action takes no argument";
	if (a->arg == ARG_NUM) {
		if ((r->num = parse_num(arg, a->max)) == -1)
			return "bad or too large number";
		return NULL;
	}
	if (unescape(arg, &b) == -1) {
		buf_free(&b);
		return "bad escape (use \\r \\n \\t \\\\ \\xHH)";
	}
	if (r->act == A_REPLY && !ends_crlf(&b))
		buf_add(&b, "\r\n", 2);
	r->text = b.p;
	r->textlen = b.len;
	return NULL;
}

/* One script line: "[@N ]STEP[#N] ACTION [ARG]". */
static const char *
rule_parse(const char *p, struct rule *r)
{
	const char *why = NULL, *arg;
	char name[32];
	size_t n;
	int a;

	memset(r, 0, sizeof(*r));
	if ((p = rule_parse_conn(p, r, &why)) == NULL ||
	    (p = rule_parse_step(p, r, &why)) == NULL)
		return why;
	n = strcspn(p, " \t");
	if (n == 0 || n >= sizeof(name))
		return "missing or unknown action";
	memcpy(name, p, n);
	name[n] = '\0';
	if ((a = action_lookup(name)) == -1)
		return "unknown action";
	r->act = (enum action)a;
	if ((actions[a].steps & BIT(r->step)) == 0)
		return "action not possible at this step";
	/* TEXT is the rest of the line after one blank. */
	arg = p + n;
	if (*arg == ' ' || *arg == '\t')
		arg++;
	if (actions[a].arg != ARG_TEXT)
		arg += strspn(arg, " \t");
	return rule_parse_arg(arg, r);
}

static void
script_load(struct script *sc, const char *path)
{
	char line[MAXSCRIPTLINE], *p;
	const char *why;
	unsigned long lineno = 0;
	size_t n;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL)
		fatal("%s: %s", path, strerror(errno));
	if ((sc->r = calloc(MAXRULES, sizeof(*sc->r))) == NULL)
		fatal("out of memory");
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		n = strlen(line);
		if (n == sizeof(line) - 1 && line[n - 1] != '\n')
			fatal("%s:%lu: line too long", path, lineno);
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		p = line + strspn(line, " \t");
		if (*p == '\0' || *p == '#')
			continue;
		if (sc->n == MAXRULES)
			fatal("%s:%lu: more than %d rules", path, lineno,
			    MAXRULES);
		if ((why = rule_parse(p, &sc->r[sc->n])) != NULL)
			fatal("%s:%lu: %s: %s", path, lineno, why, p);
		sc->n++;
	}
	if (ferror(fp))
		fatal("%s: %s", path, strerror(errno));
	fclose(fp);
}

/* ------------------------------------------------------------------ */
/* Transcript. */

static void
tlog(struct server *srv, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
tlog_put(struct server *srv, char *line, size_t len, int cut)
{
	if (len > MAXTLOG - 1) {
		len = MAXTLOG - 1;
		cut = 1;
	}
	if (cut) {
		if (len > MAXTLOG - 4)
			len = MAXTLOG - 4;
		memcpy(line + len, "...", 3);
		len += 3;
	}
	line[len] = '\0';
	fprintf(srv->tlog, "%s\n", line);
	fflush(srv->tlog);
}

static void
tlog(struct server *srv, const char *fmt, ...)
{
	char line[MAXTLOG + 1];
	va_list ap;
	int n;

	if (srv->tlog == NULL)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	tlog_put(srv, line, (size_t)n < sizeof(line) ? (size_t)n :
	    sizeof(line) - 1, (size_t)n >= MAXTLOG);
}

/*
 * "C 3 MAIL FROM:<a>": wire data with control characters shown as
 * \xHH so that one event stays one line.
 */
static void
tlog_data(struct server *srv, const char *tag, unsigned long flight,
    const void *data, size_t len, int cut)
{
	char line[MAXTLOG + 8];
	const unsigned char *p = data;
	size_t n, i;
	int w;

	if (srv->tlog == NULL)
		return;
	w = snprintf(line, sizeof(line), "%s %lu ", tag, flight);
	n = w > 0 ? (size_t)w : 0;
	for (i = 0; i < len && n < MAXTLOG; i++) {
		if (p[i] < 0x20 || p[i] == 0x7f)
			n += (size_t)snprintf(line + n, sizeof(line) - n,
			    "\\x%02x", p[i]);
		else
			line[n++] = (char)p[i];
	}
	tlog_put(srv, line, n < MAXTLOG ? n : MAXTLOG, cut || i < len);
}

/* One S line per reply line sent. */
static void
tlog_reply(struct conn *c, const char *p, size_t len)
{
	const char *nl;
	size_t n;

	while (len > 0) {
		nl = memchr(p, '\n', len);
		n = nl ? (size_t)(nl - p) : len;
		tlog_data(c->srv, "S", c->flight, p,
		    n > 0 && p[n - 1] == '\r' ? n - 1 : n, 0);
		if (nl == NULL)
			break;
		len -= n + 1;
		p += n + 1;
	}
}

/* ------------------------------------------------------------------ */
/* Waiting and raw I/O; every wait is bounded. */

static int
conn_fail(struct conn *c, enum how how)
{
	if (c->how == H_OPEN)
		c->how = how;
	return -1;
}

static void
signal_take(struct server *srv)
{
	struct signalfd_siginfo si;

	if (read(srv->sigfd, &si, sizeof(si)) > 0)
		srv->stop = STOP_SIGNAL;
}

/*
 * Wait until the connection is ready for ev (fd -1: just sleep ms).
 * A signal, the read timeout or the run's deadline end the wait with
 * -1 and the reason in c->how; a finished sleep returns 0.
 */
static int
wait_io(struct conn *c, int fd, short ev, int ms)
{
	struct pollfd pfd[2];
	long long left, end = now_ms() + ms;
	int n, waitms;

	for (;;) {
		left = c->srv->deadline - now_ms();
		if (left <= 0) {
			c->srv->stop = STOP_DEADLINE;
			return conn_fail(c, H_TIMEOUT);
		}
		waitms = (int)(end - now_ms());
		if (waitms < 0)
			waitms = 0;
		if (left < waitms)
			waitms = (int)left;
		pfd[0].fd = fd;
		pfd[0].events = ev;
		pfd[1].fd = c->srv->sigfd;
		pfd[1].events = POLLIN;
		n = poll(pfd, 2, waitms);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return conn_fail(c, H_ERROR);
		if (pfd[1].revents != 0) {
			signal_take(c->srv);
			return conn_fail(c, H_ERROR);
		}
		if (pfd[0].revents != 0)
			return 0;
		if (now_ms() >= end)
			return fd == -1 ? 0 : conn_fail(c, H_TIMEOUT);
	}
}

static int
pause_ms(struct conn *c, long ms)
{
	return ms > 0 ? wait_io(c, -1, 0, (int)ms) : 0;
}

static ssize_t
plain_recv(struct conn *c, unsigned char *p, size_t len)
{
	ssize_t n;

	for (;;) {
		if (wait_io(c, c->fd, POLLIN, c->cf->timeout_ms) == -1)
			return -1;
		if ((n = read(c->fd, p, len)) > 0)
			return n;
		if (n == 0 || errno == ECONNRESET) {
			conn_fail(c, H_EOF);
			return 0;
		}
		if (errno != EINTR && errno != EAGAIN)
			return conn_fail(c, H_ERROR);
	}
}

static int
plain_send(struct conn *c, const void *data, size_t len)
{
	const char *p = data;
	ssize_t n;

	while (len > 0) {
		n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
			if (wait_io(c, c->fd, POLLOUT, c->cf->timeout_ms) == -1)
				return -1;
			continue;
		}
		return conn_fail(c, errno == EPIPE || errno == ECONNRESET ?
		    H_EOF : H_ERROR);
	}
	return 0;
}

/* mbedTLS BIO callbacks: the same bounded waits as clear text. */
static int
bio_send(void *ctx, const unsigned char *p, size_t len)
{
	struct conn *c = ctx;
	ssize_t n;

	if (len > INT_MAX)
		len = INT_MAX;
	for (;;) {
		n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n >= 0)
			return (int)n;
		if (errno != EAGAIN && errno != EINTR) {
			conn_fail(c, errno == EPIPE || errno == ECONNRESET ?
			    H_EOF : H_ERROR);
			return MBEDTLS_ERR_NET_SEND_FAILED;
		}
		if (wait_io(c, c->fd, POLLOUT, c->cf->timeout_ms) == -1)
			return MBEDTLS_ERR_NET_SEND_FAILED;
	}
}

static int
bio_recv(void *ctx, unsigned char *p, size_t len, uint32_t timeout)
{
	struct conn *c = ctx;
	ssize_t n;

	(void)timeout;		/* ours is c->cf->timeout_ms */
	if (len > INT_MAX)
		len = INT_MAX;
	n = plain_recv(c, p, len);
	if (n > 0)
		return (int)n;
	if (n == 0)
		return 0;
	return c->how == H_TIMEOUT ? MBEDTLS_ERR_SSL_TIMEOUT :
	    MBEDTLS_ERR_NET_RECV_FAILED;
}

/*
 * "TLS-FAIL text (-0xcode)".  After the handshake a read or write that
 * timed out or met EOF was already accounted for in c->how.
 */
static int
tls_fail(struct conn *c, int ret, int always)
{
	char err[200];

	if (c->how != H_OPEN && !always)
		return -1;
	mbedtls_strerror(ret, err, sizeof(err));
	tlog(c->srv, "TLS-FAIL %s (-0x%04x)", err, (unsigned int)-ret);
	return conn_fail(c, H_ERROR);
}

static ssize_t
conn_recv(struct conn *c, unsigned char *p, size_t len)
{
	int r;

	if (!c->tls)
		return plain_recv(c, p, len);
	for (;;) {
		r = mbedtls_ssl_read(&c->ssl, p, len);
		if (r > 0)
			return r;
		if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY ||
		    r == MBEDTLS_ERR_SSL_CONN_EOF) {
			conn_fail(c, H_EOF);
			return 0;
		}
		if (r != MBEDTLS_ERR_SSL_WANT_READ &&
		    r != MBEDTLS_ERR_SSL_WANT_WRITE)
			return tls_fail(c, r, 0);
	}
}

static int
conn_send(struct conn *c, const void *data, size_t len)
{
	const unsigned char *p = data;
	int r;

	if (!c->tls)
		return plain_send(c, data, len);
	while (len > 0) {
		r = mbedtls_ssl_write(&c->ssl, p, len);
		if (r > 0) {
			p += r;
			len -= (size_t)r;
		} else if (r != MBEDTLS_ERR_SSL_WANT_READ &&
		    r != MBEDTLS_ERR_SSL_WANT_WRITE)
			return tls_fail(c, r, 0);
	}
	return 0;
}

/*
 * Every write to the client goes through here: the first write after a
 * client flight ends that flight.
 */
static int
conn_write(struct conn *c, const void *p, size_t len)
{
	if (len == 0)
		return 0;
	if (c->flight > 0 && !c->flreported && c->flreads > 0) {
		tlog(c->srv, "FLIGHT %lu reads=%lu bytes=%lu", c->flight,
		    c->flreads, c->flbytes);
		c->flreported = 1;
	}
	c->wrote = 1;
	return conn_send(c, p, len);
}

static int
flush(struct conn *c)
{
	int r;

	if (c->how != H_OPEN)
		return -1;
	r = conn_write(c, c->out.p, c->out.len);
	c->out.len = 0;
	return r;
}

/* Read what the client sent; new bytes after a write open a flight. */
static int
fill(struct conn *c)
{
	ssize_t n;

	if (c->how != H_OPEN)
		return -1;
	if (c->ipos > 0) {
		memmove(c->in, c->in + c->ipos, c->iend - c->ipos);
		c->iend -= c->ipos;
		c->ipos = 0;
	}
	n = conn_recv(c, c->in + c->iend, sizeof(c->in) - c->iend);
	if (n <= 0)
		return -1;
	if (c->wrote) {
		c->flight++;
		c->wrote = 0;
		c->flreads = c->flbytes = 0;
		c->flreported = 0;
	}
	c->flreads++;
	c->flbytes += (unsigned long)n;
	c->readseq++;
	c->iend += (size_t)n;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Command lines. */

/*
 * Take one line of at most max octets (terminator included) from the
 * input buffer into c->line.  A longer line is logged cut, discarded
 * up to its end and reported as LINE_LONG.
 */
static enum line
next_line(struct conn *c, size_t max)
{
	unsigned char *p = c->in + c->ipos, *lf;
	size_t avail = c->iend - c->ipos, n, len;

	lf = memchr(p, '\n', avail);
	if (c->discard) {
		c->ipos = lf ? c->ipos + (size_t)(lf - p) + 1 : c->iend;
		c->discard = lf == NULL;
		return lf ? LINE_LONG : LINE_NONE;
	}
	if (lf == NULL && avail < max)
		return LINE_NONE;
	n = lf ? (size_t)(lf - p) + 1 : avail;
	if (lf == NULL || n > max) {
		tlog_data(c->srv, "C", c->flight, p, n < 200 ? n : 200, 1);
		c->ipos += n;
		c->discard = lf == NULL;
		return lf ? LINE_LONG : LINE_NONE;
	}
	len = n - 1;
	c->crlf = len > 0 && p[len - 1] == '\r';
	if (c->crlf)
		len--;
	memcpy(c->line, p, len);
	c->line[len] = '\0';
	c->linelen = len;
	c->ipos += n;
	tlog_data(c->srv, "C", c->flight, c->line, len, 0);
	return LINE_OK;
}

/* Replies are written only when no complete line is left to process. */
static int
read_line(struct conn *c, size_t max)
{
	enum line r;

	for (;;) {
		if (c->how != H_OPEN)
			return -1;
		if ((r = next_line(c, max)) != LINE_NONE)
			return (int)r;
		if (flush(c) == -1 || fill(c) == -1)
			return -1;
	}
}

/* ------------------------------------------------------------------ */
/* Replies and the rules that change them. */

static void
collect(struct conn *c, enum step step, struct effect *e)
{
	const struct script *sc = &c->srv->sc;
	const struct rule *r;
	size_t i;

	e->n = 0;
	if (step == ST_NONE)
		return;
	c->occ[step]++;
	for (i = 0; i < sc->n && e->n < MAXMATCH; i++) {
		r = &sc->r[i];
		if (r->step == step &&
		    (r->occ == 0 || r->occ == c->occ[step]) &&
		    (r->conn == 0 || r->conn == c->no))
			e->r[e->n++] = r;
	}
}

static const struct rule *
effect_find(const struct effect *e, enum action act)
{
	const struct rule *found = NULL;
	size_t i;

	for (i = 0; i < e->n; i++)
		if (e->r[i]->act == act)
			found = e->r[i];
	return found;
}

static long
effect_delay(const struct effect *e)
{
	long ms = 0;
	size_t i;

	for (i = 0; i < e->n; i++)
		if (e->r[i]->act == A_DELAY)
			ms += e->r[i]->num;
	return ms;
}

/* Delay and close, the actions every step has.  -1: connection gone. */
static int
effect_pre(struct conn *c, const struct effect *e)
{
	if (pause_ms(c, effect_delay(e)) == -1)
		return -1;
	if (effect_find(e, A_CLOSE) != NULL) {
		flush(c);
		return conn_fail(c, H_DROPPED);
	}
	return 0;
}

/*
 * Pad the reply in t with "CODE-..." filler lines, inserted after the
 * first line (so an EHLO reply keeps its capabilities and a one-line
 * reply keeps its final line), until it has `lines` lines or `octets`
 * octets.
 */
static void
reply_pad(struct buf *t, long lines, long octets)
{
	struct buf o = { 0 };
	char code[4] = "250", pad[FILLERLEN + 8];
	const char *nl;
	size_t first = 0, nlines = 0, i, len;
	long left;

	if (reply_code(t->p, t->len) != 0)
		memcpy(code, t->p, 3);
	for (i = 0; i < t->len; i++)
		if (t->p[i] == '\n')
			nlines++;
	if (nlines > 1 && (nl = memchr(t->p, '\n', t->len)) != NULL)
		first = (size_t)(nl - t->p) + 1;
	buf_add(&o, t->p, first);
	if (lines > 0)
		for (i = nlines; i < (size_t)lines; i++) {
			buf_addstr(&o, code);
			buf_addstr(&o, "-x\r\n");
		}
	left = octets - (long)t->len;
	while (octets > 0 && left >= 7) {
		/* The last line takes what is left (7..84 octets). */
		len = left > FILLERLEN + 6 ? FILLERLEN : (size_t)left;
		memcpy(pad, code, 3);
		pad[3] = '-';
		memset(pad + 4, 'X', len - 6);
		memcpy(pad + len - 2, "\r\n", 2);
		buf_add(&o, pad, len);
		left -= (long)len;
	}
	buf_add(&o, t->p + first, t->len - first);
	buf_free(t);
	*t = o;
}

/* The reply text after the rules, in file order. */
static void
effect_text(const struct effect *e, struct buf *t, struct buf *inject,
    long *trickle)
{
	const struct rule *r;
	size_t i;

	*trickle = -1;
	for (i = 0; i < e->n; i++) {
		r = e->r[i];
		switch (r->act) {
		case A_REPLY:
			buf_set(t, r->text, r->textlen);
			break;
		case A_BIG:
			reply_pad(t, 0, r->num);
			break;
		case A_LINES:
			reply_pad(t, r->num, 0);
			break;
		case A_INJECT:
			buf_add(inject, r->text, r->textlen);
			break;
		case A_TRICKLE:
			*trickle = r->num;
			break;
		default:
			break;
		}
	}
}

static int
send_trickle(struct conn *c, const struct buf *t, long ms)
{
	size_t i;

	if (flush(c) == -1)
		return -1;
	for (i = 0; i < t->len; i++) {
		if (conn_write(c, t->p + i, 1) == -1)
			return -1;
		if (i + 1 < t->len && pause_ms(c, ms) == -1)
			return -1;
	}
	return 0;
}

/*
 * Send the reply to a step: def unless the script says otherwise.
 * Returns the code of what was sent, or -1 when the connection is gone.
 */
static int
emit(struct conn *c, const struct effect *e, const char *def)
{
	struct buf t = { 0 }, inject = { 0 };
	long trickle;
	int code, r = 0;

	if (effect_pre(c, e) == -1)
		return -1;
	buf_addstr(&t, def);
	if (!ends_crlf(&t))
		buf_add(&t, "\r\n", 2);
	buf_add(&inject, "", 0);
	effect_text(e, &t, &inject, &trickle);
	tlog_reply(c, t.p, t.len);
	tlog_reply(c, inject.p, inject.len);
	if (trickle >= 0) {
		r = send_trickle(c, &t, trickle);
		if (r == 0)
			buf_add(&c->out, inject.p, inject.len);
	} else {
		buf_add(&c->out, t.p, t.len);
		buf_add(&c->out, inject.p, inject.len);
	}
	code = reply_code(t.p, t.len);
	buf_free(&t);
	buf_free(&inject);
	return r == -1 ? -1 : code;
}

static int
reply(struct conn *c, enum step step, const char *def)
{
	struct effect e;

	collect(c, step, &e);
	return emit(c, &e, def);
}

/* ------------------------------------------------------------------ */
/* Capabilities. */

static const struct caps *
caps_now(const struct conn *c)
{
	return c->tls ? &c->cf->capstls : &c->cf->caps;
}

/* The capability line for keyword kw ("SIZE" finds "SIZE 1000"). */
static const char *
cap_find(const struct caps *caps, const char *kw)
{
	size_t i, n = strlen(kw);
	const char *l;

	for (i = 0; i < caps->n; i++) {
		l = caps->line[i];
		if (strncasecmp(l, kw, n) == 0 &&
		    (l[n] == '\0' || l[n] == ' ' || l[n] == '='))
			return l;
	}
	return NULL;
}

static int
has_cap(const struct conn *c, const char *kw)
{
	return cap_find(caps_now(c), kw) != NULL;
}

/* The advertised SIZE limit, 0 for none. */
static unsigned long long
size_limit(const struct conn *c)
{
	const char *l = cap_find(caps_now(c), "SIZE");

	return l && l[4] != '\0' ? strtoull(l + 5, NULL, 10) : 0;
}

static int
mech_offered(const struct conn *c, const char *mech)
{
	const char *l = cap_find(caps_now(c), "AUTH");
	size_t n = strlen(mech);

	if (l == NULL)
		return 0;
	for (l += 4; *l != '\0'; l += strcspn(l, " =")) {
		l += strspn(l, " =");
		if (strncasecmp(l, mech, n) == 0 &&
		    (l[n] == '\0' || l[n] == ' '))
			return 1;
	}
	return 0;
}

static void
ehlo_text(const struct conn *c, struct buf *t)
{
	const struct caps *caps = caps_now(c);
	const char *shown[MAXCAPS];
	size_t i, n = 0;

	for (i = 0; i < caps->n; i++)
		if (c->tls || !c->nostarttls ||
		    strcasecmp(caps->line[i], "STARTTLS") != 0)
			shown[n++] = caps->line[i];
	buf_addstr(t, n > 0 ? "250-" HOSTNAME "\r\n" : "250 " HOSTNAME "\r\n");
	for (i = 0; i < n; i++) {
		buf_addstr(t, i + 1 < n ? "250-" : "250 ");
		buf_addstr(t, shown[i]);
		buf_addstr(t, "\r\n");
	}
}

/* ------------------------------------------------------------------ */
/* Messages: DIR/N.env, N.eml, N.raw. */

static void
msg_path(const struct conn *c, char *path, size_t size, unsigned long tmp,
    unsigned long no, const char *ext)
{
	if (tmp)
		snprintf(path, size, "%s/.tmp-%lu.%s", c->cf->dir, tmp, ext);
	else
		snprintf(path, size, "%s/%lu.%s", c->cf->dir, no, ext);
}

static int
msg_open(struct conn *c, struct msg *m)
{
	char path[PATH_MAX];

	if (m->open)
		return 0;
	memset(m, 0, sizeof(*m));
	m->open = 1;
	if (c->cf->dir == NULL)
		return 0;
	m->tmpno = ++c->srv->ntmp;
	msg_path(c, path, sizeof(path), m->tmpno, 0, "raw");
	if ((m->raw = fopen(path, "w")) == NULL)
		goto fail;
	msg_path(c, path, sizeof(path), m->tmpno, 0, "eml");
	if ((m->eml = fopen(path, "w")) == NULL)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "testsrv: %s: %s\n", path, strerror(errno));
	return conn_fail(c, H_ERROR);
}

static void
msg_write(struct conn *c, struct msg *m, const void *raw, size_t rawn,
    const void *eml, size_t emln)
{
	if (m->lastseq != c->readseq && rawn > 0) {
		m->reads++;
		m->lastseq = c->readseq;
	}
	m->rawlen += rawn;
	m->emllen += emln;
	if (m->raw != NULL)
		fwrite(raw, 1, rawn, m->raw);
	if (m->eml != NULL)
		fwrite(eml, 1, emln, m->eml);
}

/* BDAT framing: part of the raw stream, not of the message. */
static void
msg_frame(struct msg *m, const void *p, size_t n)
{
	m->rawlen += n;
	if (m->raw != NULL)
		fwrite(p, 1, n, m->raw);
}

static void
msg_abort(struct conn *c, struct msg *m)
{
	char path[PATH_MAX];

	if (!m->open)
		return;
	if (m->raw != NULL)
		fclose(m->raw);
	if (m->eml != NULL)
		fclose(m->eml);
	if (m->tmpno) {
		msg_path(c, path, sizeof(path), m->tmpno, 0, "raw");
		unlink(path);
		msg_path(c, path, sizeof(path), m->tmpno, 0, "eml");
		unlink(path);
	}
	memset(m, 0, sizeof(*m));
}

static void
msg_envelope(const struct conn *c, FILE *fp, const char *via)
{
	size_t i;

	fprintf(fp, "%s %s\n", c->helo == 'h' ? "helo" : "ehlo",
	    c->heloname);
	if (c->tls)
		fprintf(fp, "tls %s %s\n", c->tlsver, c->tlssuite);
	else
		fprintf(fp, "tls none\n");
	if (c->authed)
		fprintf(fp, "auth %s %s\n", c->authmech, c->authid);
	else
		fprintf(fp, "auth none\n");
	fprintf(fp, "from %s\n", c->txn.from);
	for (i = 0; i < c->txn.nrcpt; i++)
		fprintf(fp, "rcpt %s\n", c->txn.rcpt[i]);
	fprintf(fp, "via %s\n", via);
}

/* Store the message as number no; the files appear complete or not. */
static int
msg_commit(struct conn *c, struct msg *m, unsigned long no, const char *via)
{
	static const char *const ext[] = { "raw", "eml" };
	char from[PATH_MAX], to[PATH_MAX];
	FILE *fp;
	size_t i;
	int bad = 0;

	if (m->raw != NULL)
		bad |= fclose(m->raw) != 0;
	if (m->eml != NULL)
		bad |= fclose(m->eml) != 0;
	m->raw = m->eml = NULL;
	if (!m->tmpno)
		return 0;
	msg_path(c, from, sizeof(from), m->tmpno, 0, "env");
	if ((fp = fopen(from, "w")) == NULL)
		bad = 1;
	else {
		msg_envelope(c, fp, via);
		bad |= fclose(fp) != 0;
	}
	msg_path(c, to, sizeof(to), 0, no, "env");
	bad |= rename(from, to) != 0;
	for (i = 0; i < 2; i++) {
		msg_path(c, from, sizeof(from), m->tmpno, 0, ext[i]);
		msg_path(c, to, sizeof(to), 0, no, ext[i]);
		bad |= rename(from, to) != 0;
	}
	m->tmpno = 0;
	if (bad)
		fprintf(stderr, "testsrv: storing message %lu in %s failed\n",
		    no, c->cf->dir);
	return bad ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* Transaction state. */

static void
txn_reset(struct conn *c)
{
	struct txn *t = &c->txn;
	size_t i;

	msg_abort(c, &t->m);
	free(t->from);
	for (i = 0; i < t->nrcpt; i++)
		free(t->rcpt[i]);
	memset(t, 0, sizeof(*t));
}

static void
session_reset(struct conn *c)
{
	txn_reset(c);
	c->helo = 0;
	c->heloname[0] = '\0';
	c->authed = 0;
	c->authmech[0] = c->authid[0] = '\0';
}

/* ------------------------------------------------------------------ */
/* TLS. */

/* The ticket and cache hooks tell us a handshake resumed a session. */
static int
ticket_write(void *p, const mbedtls_ssl_session *s, unsigned char *start,
    const unsigned char *end, size_t *tlen, uint32_t *lifetime)
{
	struct tls *t = p;

	return mbedtls_ssl_ticket_write(&t->ticket, s, start, end, tlen,
	    lifetime);
}

static int
ticket_parse(void *p, mbedtls_ssl_session *s, unsigned char *buf,
    size_t len)
{
	struct tls *t = p;
	int r;

	if ((r = mbedtls_ssl_ticket_parse(&t->ticket, s, buf, len)) == 0)
		t->resumed = 1;
	return r;
}

static int
cache_get(void *p, unsigned char const *id, size_t idlen,
    mbedtls_ssl_session *s)
{
	struct tls *t = p;
	int r;

	if ((r = mbedtls_ssl_cache_get(&t->cache, id, idlen, s)) == 0)
		t->resumed = 1;
	return r;
}

static int
cache_set(void *p, unsigned char const *id, size_t idlen,
    const mbedtls_ssl_session *s)
{
	struct tls *t = p;

	return mbedtls_ssl_cache_set(&t->cache, id, idlen, s);
}

static void
tls_check(int r, const char *what, const char *file)
{
	char err[200];

	if (r >= 0)
		return;
	mbedtls_strerror(r, err, sizeof(err));
	fatal("%s%s%s: %s", what, file ? " " : "", file ? file : "", err);
}

static void
tls_init(struct tls *t, const struct config *cf)
{
	mbedtls_ssl_config *conf = &t->conf;

	if (cf->cert == NULL)
		return;
	if (psa_crypto_init() != PSA_SUCCESS)
		fatal("psa_crypto_init failed");
	mbedtls_ssl_config_init(conf);
	mbedtls_x509_crt_init(&t->cert);
	mbedtls_x509_crt_init(&t->ca);
	mbedtls_pk_init(&t->key);
	mbedtls_ssl_ticket_init(&t->ticket);
	mbedtls_ssl_cache_init(&t->cache);
	tls_check(mbedtls_x509_crt_parse_file(&t->cert, cf->cert),
	    "certificate", cf->cert);
	tls_check(mbedtls_pk_parse_keyfile(&t->key, cf->key, NULL,
	    mbedtls_psa_get_random, MBEDTLS_PSA_RANDOM_STATE), "key", cf->key);
	tls_check(mbedtls_ssl_config_defaults(conf, MBEDTLS_SSL_IS_SERVER,
	    MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT),
	    "TLS defaults", NULL);
	mbedtls_ssl_conf_rng(conf, mbedtls_psa_get_random,
	    MBEDTLS_PSA_RANDOM_STATE);
	tls_check(mbedtls_ssl_conf_own_cert(conf, &t->cert, &t->key),
	    "certificate and key", cf->cert);
	mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_NONE);
	if (cf->cafile != NULL) {
		tls_check(mbedtls_x509_crt_parse_file(&t->ca, cf->cafile),
		    "CA file", cf->cafile);
		mbedtls_ssl_conf_ca_chain(conf, &t->ca, NULL);
		/* Ask for a certificate; EXTERNAL checks it was verified. */
		mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_OPTIONAL);
	}
	mbedtls_ssl_conf_min_tls_version(conf, cf->tlsmin);
	mbedtls_ssl_conf_max_tls_version(conf, cf->tlsmax);
	mbedtls_ssl_conf_read_timeout(conf, (uint32_t)cf->timeout_ms);
	tls_check(mbedtls_ssl_ticket_setup(&t->ticket, mbedtls_psa_get_random,
	    MBEDTLS_PSA_RANDOM_STATE, MBEDTLS_CIPHER_AES_256_GCM, 86400),
	    "session tickets", NULL);
	mbedtls_ssl_conf_session_tickets_cb(conf, ticket_write, ticket_parse,
	    t);
	mbedtls_ssl_conf_session_cache(conf, t, cache_get, cache_set);
	t->ready = 1;
}

static void
tls_peer(struct conn *c)
{
	const mbedtls_x509_crt *crt = mbedtls_ssl_get_peer_cert(&c->ssl);
	const mbedtls_x509_name *n;
	size_t len;

	c->peercn[0] = '\0';
	if (crt == NULL)
		return;
	for (n = &crt->subject; n != NULL; n = n->next) {
		if (n->oid.len != sizeof(MBEDTLS_OID_AT_CN) - 1 ||
		    memcmp(n->oid.p, MBEDTLS_OID_AT_CN, n->oid.len) != 0)
			continue;
		len = n->val.len < sizeof(c->peercn) - 1 ? n->val.len :
		    sizeof(c->peercn) - 1;
		memcpy(c->peercn, n->val.p, len);
		c->peercn[len] = '\0';
	}
	c->peerok = mbedtls_ssl_get_verify_result(&c->ssl) == 0;
	tlog(c->srv, "TLS-CLIENT %s %s", c->peercn[0] ? c->peercn : "-",
	    c->peerok ? "verified" : "failed");
}

static void
tls_done(struct conn *c)
{
	const char *v = mbedtls_ssl_get_version(&c->ssl);
	const char *s = mbedtls_ssl_get_ciphersuite(&c->ssl);

	c->tls = 1;
	c->tls13 = mbedtls_ssl_get_version_number(&c->ssl) ==
	    MBEDTLS_SSL_VERSION_TLS1_3;
	snprintf(c->tlsver, sizeof(c->tlsver), "%s", v ? v : "?");
	snprintf(c->tlssuite, sizeof(c->tlssuite), "%s", s ? s : "?");
	tlog(c->srv, "TLS %s %s", c->tlsver, c->tlssuite);
	if (c->srv->tls.resumed)
		tlog(c->srv, "TLS-RESUMED");
	tls_peer(c);
}

/* The "tls" step: delay, close, or clear-text garbage instead. */
static int
tls_script(struct conn *c)
{
	const struct rule *r;
	struct effect e;

	collect(c, ST_TLS, &e);
	if (effect_pre(c, &e) == -1)
		return -1;
	if ((r = effect_find(&e, A_REPLY)) == NULL)
		return 0;
	tlog_reply(c, r->text, r->textlen);
	conn_write(c, r->text, r->textlen);
	return conn_fail(c, H_DROPPED);
}

static int
tls_start(struct conn *c)
{
	struct tls *t = &c->srv->tls;
	int r;

	if (tls_script(c) == -1)
		return -1;
	mbedtls_ssl_init(&c->ssl);
	c->sslinit = 1;
	if ((r = mbedtls_ssl_setup(&c->ssl, &t->conf)) != 0)
		return tls_fail(c, r, 1);
	mbedtls_ssl_set_bio(&c->ssl, c, bio_send, NULL, bio_recv);
	t->resumed = 0;
	while ((r = mbedtls_ssl_handshake(&c->ssl)) != 0)
		if (r != MBEDTLS_ERR_SSL_WANT_READ &&
		    r != MBEDTLS_ERR_SSL_WANT_WRITE)
			return tls_fail(c, r, 1);
	tls_done(c);
	return 0;
}

/* ------------------------------------------------------------------ */
/* AUTH: GNU SASL's server side, XOAUTH2 and OAUTHBEARER by hand. */

static const struct user *
user_find(const struct config *cf, const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < cf->nusers; i++)
		if (strcmp(cf->users[i].name, name) == 0)
			return &cf->users[i];
	return NULL;
}

static int
sasl_simple(struct conn *c, Gsasl_session *s)
{
	const char *id = gsasl_property_fast(s, GSASL_AUTHID);
	const char *zid = gsasl_property_fast(s, GSASL_AUTHZID);
	const char *pw = gsasl_property_fast(s, GSASL_PASSWORD);
	const struct user *u = user_find(c->cf, id);

	if (u == NULL || pw == NULL || strcmp(u->pass, pw) != 0)
		return GSASL_AUTHENTICATION_ERROR;
	if (zid != NULL && *zid != '\0' && strcmp(zid, id) != 0)
		return GSASL_AUTHENTICATION_ERROR;
	return GSASL_OK;
}

static int
sasl_cb(Gsasl *ctx, Gsasl_session *s, Gsasl_property prop)
{
	struct conn *c = gsasl_session_hook_get(s);
	const struct user *u;

	(void)ctx;
	switch (prop) {
	case GSASL_VALIDATE_SIMPLE:
		return sasl_simple(c, s);
	case GSASL_PASSWORD:
		u = user_find(c->cf, gsasl_property_fast(s, GSASL_AUTHID));
		if (u == NULL)
			return GSASL_NO_CALLBACK;
		return gsasl_property_set(s, GSASL_PASSWORD, u->pass);
	case GSASL_VALIDATE_EXTERNAL:
		return c->peerok ? GSASL_OK : GSASL_AUTHENTICATION_ERROR;
	case GSASL_VALIDATE_ANONYMOUS:
		return GSASL_OK;
	case GSASL_SCRAM_ITER:
		if (c->cf->scramiter == NULL)
			return GSASL_NO_CALLBACK;
		return gsasl_property_set(s, prop, c->cf->scramiter);
	case GSASL_SCRAM_STOREDKEY:
	case GSASL_SCRAM_SERVERKEY:
		/*
		 * With -i the keys are made up: the server then never hashes
		 * the password over that many rounds itself, and no client
		 * that checks the count gets as far as proving anything.
		 */
		if (c->cf->scramiter == NULL)
			return GSASL_NO_CALLBACK;
		return gsasl_property_set(s, prop, strstr(gsasl_mechanism_name(
		    s), "SHA-256") != NULL ? SCRAM_FAKE_KEY256 :
		    SCRAM_FAKE_KEY1);
	default:
		return GSASL_NO_CALLBACK;
	}
}

/*
 * The end of an AUTH exchange as the client was told it: AUTHOK when
 * the session is now authenticated (a scripted 2xx counts), else
 * AUTHFAIL.
 */
static void
auth_result(struct conn *c, const char *mech, int ok, const char *id)
{
	if (!ok) {
		tlog(c->srv, "AUTHFAIL %s", mech);
		return;
	}
	c->authed = 1;
	snprintf(c->authmech, sizeof(c->authmech), "%s", mech);
	snprintf(c->authid, sizeof(c->authid), "%s", id && *id ? id : "-");
	tlog(c->srv, "AUTHOK %s %s", c->authmech, c->authid);
}

/*
 * Send "334 b64" and read the answer into c->line: 0.  -1 when the
 * exchange ended here (cancelled, scripted reply, connection gone).
 */
static int
auth_ask(struct conn *c, enum step step, const char *mech, const char *b64)
{
	struct buf t = { 0 };
	int code, r;

	buf_addstr(&t, "334 ");
	buf_addstr(&t, b64);
	code = reply(c, step, t.p);
	buf_free(&t);
	if (code != 334) {
		auth_result(c, mech, code / 100 == 2, NULL);
		return -1;
	}
	if ((r = read_line(c, MAXAUTHLINE)) == -1) {
		auth_result(c, mech, 0, NULL);
		return -1;
	}
	if (r == LINE_LONG)
		code = reply(c, ST_AUTHSTEP,
		    "500 5.5.6 Authentication exchange line is too long");
	else if (strcmp(c->line, "*") == 0)
		code = reply(c, ST_AUTHSTEP,
		    "501 5.7.0 Authentication aborted");
	else
		return 0;
	auth_result(c, mech, code / 100 == 2, NULL);
	return -1;
}

/* The final reply: 235 when the mechanism succeeded, else 535. */
static void
auth_end(struct conn *c, enum step step, const char *mech, int ok,
    const char *id)
{
	int code;

	code = reply(c, step, ok ? "235 2.7.0 Authentication successful" :
	    "535 5.7.8 Error: authentication failed");
	auth_result(c, mech, code / 100 == 2, ok ? id : NULL);
}

static void
auth_channel_binding(struct conn *c, Gsasl_session *s)
{
	static const char label[] = "EXPORTER-Channel-Binding";
	unsigned char cb[32], b64[64];
	size_t n;

	if (!c->tls13 || mbedtls_ssl_export_keying_material(&c->ssl, cb,
	    sizeof(cb), label, sizeof(label) - 1, NULL, 0, 0) != 0)
		return;
	if (mbedtls_base64_encode(b64, sizeof(b64), &n, cb, sizeof(cb)) == 0)
		gsasl_property_set(s, GSASL_CB_TLS_EXPORTER, (char *)b64);
}

static const char *
auth_identity(struct conn *c, Gsasl_session *s, const char *mech)
{
	const char *id;

	if (strcmp(mech, "ANONYMOUS") == 0)
		return gsasl_property_fast(s, GSASL_ANONYMOUS_TOKEN);
	if (strcmp(mech, "EXTERNAL") == 0) {
		id = gsasl_property_fast(s, GSASL_AUTHZID);
		return id && *id ? id : c->peercn;
	}
	return gsasl_property_fast(s, GSASL_AUTHID);
}

/*
 * Step the mechanism until it is done.  SMTP cannot carry data with
 * the 235, so data that comes with success goes in one more 334.
 */
static void
auth_sasl(struct conn *c, const char *mech, const char *ir)
{
	Gsasl_session *s;
	enum step step = ST_AUTH;
	char *out = NULL;
	int rc = GSASL_NEEDS_MORE, i;

	if (gsasl_server_start(c->srv->sasl, mech, &s) != GSASL_OK) {
		reply(c, ST_AUTH, "504 5.5.4 Unsupported authentication "
		    "mechanism");
		return;
	}
	gsasl_session_hook_set(s, c);
	gsasl_property_set(s, GSASL_SERVICE, "smtp");
	gsasl_property_set(s, GSASL_HOSTNAME, HOSTNAME);
	if (strstr(mech, "-PLUS") != NULL)
		auth_channel_binding(c, s);
	for (i = 0; i < MAXAUTHSTEPS && rc == GSASL_NEEDS_MORE; i++) {
		rc = gsasl_step64(s, ir, &out);
		if ((rc != GSASL_OK && rc != GSASL_NEEDS_MORE) ||
		    (rc == GSASL_OK && *out == '\0'))
			break;
		if (auth_ask(c, step, mech, out) == -1)
			goto done;
		gsasl_free(out);
		out = NULL;
		step = ST_AUTHSTEP;
		ir = c->line;
	}
	if (rc == GSASL_BASE64_ERROR) {
		auth_result(c, mech, reply(c, step,
		    "501 5.5.2 Cannot decode response") / 100 == 2, NULL);
	} else
		auth_end(c, step, mech, rc == GSASL_OK,
		    rc == GSASL_OK ? auth_identity(c, s, mech) : NULL);
done:
	if (rc == GSASL_OK || rc == GSASL_NEEDS_MORE)
		gsasl_free(out);
	gsasl_finish(s);
}

/* Field "key=value" of a \1-separated OAuth payload. */
static const char *
oauth_field(const char *p, size_t len, const char *key, size_t *vlen)
{
	size_t klen = strlen(key), n;
	const char *end = p + len, *sep;

	while (p < end) {
		sep = memchr(p, '\1', (size_t)(end - p));
		n = sep ? (size_t)(sep - p) : (size_t)(end - p);
		if (n > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
			*vlen = n - klen - 1;
			return p + klen + 1;
		}
		p += n + 1;
	}
	return NULL;
}

/* Is the token (tok, n) a line of the -O file as it is now? */
static int
token_listed(const char *file, const char *tok, size_t n)
{
	char line[MAXAUTHLINE];
	FILE *fp;
	size_t len;
	int found = 0;

	if ((fp = fopen(file, "r")) == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), fp) != NULL) {
		len = strcspn(line, "\r\n");
		found = len == n && n > 0 && memcmp(line, tok, n) == 0;
	}
	fclose(fp);
	return found;
}

/*
 * Check user and "Bearer TOKEN": the token is the password, or with
 * -O one of the file's lines (and the user one of -u's).
 */
static int
oauth_check(const struct conn *c, const char *user, size_t ulen,
    const char *p, size_t len)
{
	const char *bearer;
	size_t blen, i;

	if (user == NULL ||
	    (bearer = oauth_field(p, len, "auth", &blen)) == NULL ||
	    blen < 7 || strncasecmp(bearer, "Bearer ", 7) != 0)
		return 0;
	if (c->cf->tokens != NULL) {
		for (i = 0; i < c->cf->nusers; i++)
			if (strlen(c->cf->users[i].name) == ulen &&
			    memcmp(c->cf->users[i].name, user, ulen) == 0)
				return token_listed(c->cf->tokens, bearer + 7,
				    blen - 7);
		return 0;
	}
	for (i = 0; i < c->cf->nusers; i++)
		if (strlen(c->cf->users[i].name) == ulen &&
		    memcmp(c->cf->users[i].name, user, ulen) == 0 &&
		    strlen(c->cf->users[i].pass) == blen - 7 &&
		    memcmp(c->cf->users[i].pass, bearer + 7, blen - 7) == 0)
			return 1;
	return 0;
}

/* The user of an OAuth payload into id; NULL when there is none. */
static const char *
oauth_user(const char *mech, const char *p, size_t len, size_t *ulen)
{
	const char *a, *comma;

	if (strcmp(mech, "XOAUTH2") == 0)
		return oauth_field(p, len, "user", ulen);
	/* OAUTHBEARER: gs2 header "n,a=USER," then \1 fields. */
	if (len < 5 || memcmp(p, "n,a=", 4) != 0)
		return NULL;
	a = p + 4;
	if ((comma = memchr(a, ',', len - 4)) == NULL)
		return NULL;
	*ulen = (size_t)(comma - a);
	return a;
}

static void
auth_oauth(struct conn *c, const char *mech, const char *ir)
{
	static const char err2[] = "{\"status\":\"401\",\"schemes\":\"bearer\","
	    "\"scope\":\"https://mail.google.com/\"}";
	static const char errb[] = "{\"status\":\"invalid_token\","
	    "\"schemes\":\"bearer\",\"scope\":\"smtp\"}";
	const char *err = strcmp(mech, "XOAUTH2") == 0 ? err2 : errb;
	unsigned char dec[MAXAUTHLINE], b64[256];
	enum step step = ST_AUTH;
	const char *user;
	size_t n, ulen = 0;

	if (ir == NULL) {
		if (auth_ask(c, ST_AUTH, mech, "") == -1)
			return;
		ir = c->line;
		step = ST_AUTHSTEP;
	}
	if (mbedtls_base64_decode(dec, sizeof(dec) - 1, &n,
	    (const unsigned char *)ir, strlen(ir)) != 0) {
		auth_result(c, mech, reply(c, step,
		    "501 5.5.2 Cannot decode response") / 100 == 2, NULL);
		return;
	}
	dec[n] = '\0';
	user = oauth_user(mech, (char *)dec, n, &ulen);
	if (oauth_check(c, user, ulen, (char *)dec, n)) {
		snprintf((char *)b64, sizeof(b64), "%.*s", (int)ulen, user);
		auth_end(c, step, mech, 1, (char *)b64);
		return;
	}
	/* RFC 7628 3.2.2: the error comes in a 334, the client answers. */
	mbedtls_base64_encode(b64, sizeof(b64), &n, (const unsigned char *)err,
	    strlen(err));
	if (auth_ask(c, step, mech, (char *)b64) == -1)
		return;
	auth_end(c, ST_AUTHSTEP, mech, 0, NULL);
}

static void
cmd_auth(struct conn *c, char *arg)
{
	char mech[64], *m, *ir, *save = NULL;
	size_t i;

	/* The mechanism outlives c->line, which the exchange reuses. */
	m = strtok_r(arg, " ", &save);
	ir = strtok_r(NULL, " ", &save);
	if (m == NULL || strlen(m) >= sizeof(mech) ||
	    strtok_r(NULL, " ", &save) != NULL) {
		reply(c, ST_AUTH, "501 5.5.4 Syntax: AUTH mechanism");
		return;
	}
	for (i = 0; m[i] != '\0'; i++)
		mech[i] = (char)toupper((unsigned char)m[i]);
	mech[i] = '\0';
	if (c->helo != 'e')
		reply(c, ST_AUTH, "503 5.5.1 Error: send EHLO first");
	else if (c->authed)
		reply(c, ST_AUTH, "503 5.5.1 Error: already authenticated");
	else if (c->txn.mail)
		reply(c, ST_AUTH, "503 5.5.1 Error: MAIL transaction in "
		    "progress");
	else if (!has_cap(c, "AUTH"))
		reply(c, ST_AUTH, "503 5.5.1 Error: authentication not "
		    "enabled");
	else if (!mech_offered(c, mech))
		reply(c, ST_AUTH, "504 5.5.4 Unsupported authentication "
		    "mechanism");
	else if (strcmp(mech, "XOAUTH2") == 0 ||
	    strcmp(mech, "OAUTHBEARER") == 0)
		auth_oauth(c, mech, ir && strcmp(ir, "=") == 0 ? "" : ir);
	else
		auth_sasl(c, mech, ir && strcmp(ir, "=") == 0 ? "" : ir);
}

/* ------------------------------------------------------------------ */
/* Session commands. */

static void
cmd_ehlo(struct conn *c, char *arg)
{
	struct buf t = { 0 };
	struct effect e;

	collect(c, ST_EHLO, &e);
	if (effect_find(&e, A_NOSTARTTLS) != NULL)
		c->nostarttls = 1;
	if (*arg == '\0')
		buf_addstr(&t, "501 5.5.4 Syntax: EHLO hostname");
	else
		ehlo_text(c, &t);
	if (emit(c, &e, t.p) == 250) {
		txn_reset(c);
		c->helo = 'e';
		snprintf(c->heloname, sizeof(c->heloname), "%s", arg);
	}
	buf_free(&t);
}

static void
cmd_helo(struct conn *c, char *arg)
{
	if (reply(c, ST_HELO, *arg == '\0' ? "501 5.5.4 Syntax: HELO hostname" :
	    "250 " HOSTNAME) == 250) {
		txn_reset(c);
		c->helo = 'h';
		snprintf(c->heloname, sizeof(c->heloname), "%s", arg);
	}
}

/* RFC 3207 4.2: forget what came before; the client must EHLO again. */
static void
starttls_go(struct conn *c)
{
	size_t left;

	if (flush(c) == -1)
		return;
	left = c->iend - c->ipos;
	if (left > 0)
		tlog(c->srv, "DISCARD %zu", left);
	c->ipos = c->iend = 0;
	c->discard = 0;
	session_reset(c);
	tls_start(c);
}

static void
cmd_starttls(struct conn *c, char *arg)
{
	const char *def;
	struct effect e;

	collect(c, ST_STARTTLS, &e);
	if (*arg != '\0')
		def = "501 5.5.4 Syntax: STARTTLS";
	else if (c->tls)
		def = "554 5.5.1 Error: TLS already active";
	else if (c->nostarttls || !has_cap(c, "STARTTLS"))
		def = "502 5.5.1 Error: command not implemented";
	else
		def = "220 2.0.0 Ready to start TLS";
	if (emit(c, &e, def) == 220 && !c->tls && c->srv->tls.ready)
		starttls_go(c);
}

/* "FROM:<addr> params": split into the path and its parameters. */
static int
parse_path(char *arg, const char *kw, char **path, char **params)
{
	size_t n = strlen(kw);
	char *p, *gt;

	if (strncasecmp(arg, kw, n) != 0)
		return -1;
	p = arg + n;
	p += strspn(p, " ");
	if (*p != '<' || (gt = strchr(p, '>')) == NULL)
		return -1;
	*path = p;
	p = gt + 1;
	if (*p != '\0' && *p != ' ')
		return -1;
	if (*p != '\0')
		*p++ = '\0';
	else
		gt[1] = '\0';
	*params = p + strspn(p, " ");
	return 0;
}

static int
non_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/* MAIL parameter check: NULL when fine, else the reply. */
static const char *
mail_param(struct conn *c, const char *p)
{
	const char *v = strchr(p, '=');
	size_t klen = v ? (size_t)(v - p) : strlen(p);

	v = v ? v + 1 : "";
#define KEY(k)	(klen == sizeof(k) - 1 && strncasecmp(p, k, klen) == 0)
	if (KEY("SIZE") && has_cap(c, "SIZE")) {
		if (!isdigit((unsigned char)*v))
			return "501 5.5.4 Bad message size syntax";
		if (size_limit(c) > 0 && strtoull(v, NULL, 10) > size_limit(c))
			return "552 5.3.4 Message size exceeds fixed limit";
		return NULL;
	}
	if (KEY("BODY")) {
		if (strcasecmp(v, "7BIT") == 0 || (has_cap(c, "8BITMIME") &&
		    strcasecmp(v, "8BITMIME") == 0))
			return NULL;
		if (!has_cap(c, "BINARYMIME") ||
		    strcasecmp(v, "BINARYMIME") != 0)
			return "501 5.5.4 Bad BODY parameter";
		c->txn.binary = 1;
		return NULL;
	}
	if (KEY("SMTPUTF8") && has_cap(c, "SMTPUTF8") && *v == '\0') {
		c->txn.utf8 = 1;
		return NULL;
	}
	if ((KEY("RET") || KEY("ENVID")) && has_cap(c, "DSN"))
		return NULL;
	if (KEY("AUTH") && has_cap(c, "AUTH"))
		return NULL;
#undef KEY
	return "555 5.5.4 Unsupported option";
}

static const char *
rcpt_param(struct conn *c, const char *p)
{
	if ((strncasecmp(p, "NOTIFY=", 7) == 0 ||
	    strncasecmp(p, "ORCPT=", 6) == 0) && has_cap(c, "DSN"))
		return NULL;
	return "555 5.5.4 Unsupported option";
}

/*
 * Check each parameter and build the recorded form "<path> P1 P2".
 * NULL when all are fine, else the reply.
 */
static const char *
check_params(struct conn *c, const char *path, char *params,
    const char *(*check)(struct conn *, const char *), char **rec)
{
	struct buf b = { 0 };
	const char *bad = NULL;
	char *p, *save = NULL;

	buf_addstr(&b, path);
	for (p = strtok_r(params, " ", &save); p != NULL && bad == NULL;
	    p = strtok_r(NULL, " ", &save)) {
		bad = check(c, p);
		buf_addstr(&b, " ");
		buf_addstr(&b, p);
	}
	if (bad != NULL) {
		buf_free(&b);
		return bad;
	}
	*rec = b.p;
	return NULL;
}

static void
cmd_mail(struct conn *c, char *arg)
{
	const char *bad;
	char *path, *params, *rec = NULL;
	struct effect e;

	collect(c, ST_MAIL, &e);
	if (c->helo == 0)
		bad = "503 5.5.1 Error: send HELO/EHLO first";
	else if (c->txn.mail)
		bad = "503 5.5.1 Error: nested MAIL command";
	else if (c->cf->nusers > 0 && !c->authed)
		bad = "530 5.7.0 Authentication required";
	else if (parse_path(arg, "FROM:", &path, &params) == -1)
		bad = "501 5.5.4 Syntax: MAIL FROM:<address>";
	else if ((bad = check_params(c, path, params, mail_param,
	    &rec)) == NULL && non_ascii(path) && !c->txn.utf8)
		bad = "553 5.6.7 Must declare SMTPUTF8 to send a UTF-8 "
		    "address";
	if (emit(c, &e, bad ? bad : "250 2.1.0 Ok") / 100 == 2 &&
	    rec != NULL) {
		c->txn.mail = 1;
		c->txn.from = rec;
		return;
	}
	free(rec);
	if (!c->txn.mail)
		c->txn.utf8 = c->txn.binary = 0;
}

static void
cmd_rcpt(struct conn *c, char *arg)
{
	const char *bad;
	char *path, *params, *rec = NULL;
	struct effect e;

	collect(c, ST_RCPT, &e);
	if (!c->txn.mail)
		bad = "503 5.5.1 Error: need MAIL command";
	else if (parse_path(arg, "TO:", &path, &params) == -1)
		bad = "501 5.5.4 Syntax: RCPT TO:<address>";
	else if (c->txn.nrcpt == MAXRCPT ||
	    (c->cf->rcptmax > 0 && c->txn.nrcpt >= c->cf->rcptmax))
		bad = "452 4.5.3 Error: too many recipients";
	else if ((bad = check_params(c, path, params, rcpt_param,
	    &rec)) == NULL && non_ascii(path) && !c->txn.utf8)
		bad = "553 5.6.7 Must declare SMTPUTF8 to send a UTF-8 "
		    "address";
	if (emit(c, &e, bad ? bad : "250 2.1.5 Ok") / 100 == 2 &&
	    rec != NULL) {
		c->txn.rcpt[c->txn.nrcpt++] = rec;
		return;
	}
	free(rec);
}

/* Where a byte of DATA stands relative to line starts. */
enum bodystate { B_BOL, B_MID, B_CR, B_DOT, B_DOTCR };

/*
 * Un-stuff p[0..n) into out; stop after the CRLF.CRLF terminator.
 * Returns the octets consumed; *done is set at the terminator.
 */
static size_t
unstuff(struct msg *m, const unsigned char *p, size_t n, char *out,
    size_t *outn, int *done)
{
	size_t i, o = 0;
	int ch;

	for (i = 0; i < n && !*done; i++) {
		ch = p[i];
		switch (m->state) {
		case B_BOL:
			if (ch == '.') {
				m->state = B_DOT;
				continue;
			}
			break;
		case B_DOT:
			if (ch == '\r') {
				m->state = B_DOTCR;
				continue;
			}
			break;
		case B_DOTCR:
			if (ch == '\n') {
				*done = 1;
				continue;
			}
			out[o++] = '\r';
			m->state = B_CR;
			break;
		default:
			break;
		}
		out[o++] = (char)ch;
		if (ch == '\r')
			m->state = B_CR;
		else
			m->state = ch == '\n' && m->state == B_CR ? B_BOL :
			    B_MID;
	}
	*outn = o;
	return i;
}

/* Stop when drop octets of message data have arrived. */
static int
drop_reached(struct conn *c, long drop, unsigned long long got)
{
	if (drop < 0 || got < (unsigned long long)drop)
		return 0;
	flush(c);
	return 1;
}

static int
data_body(struct conn *c, struct msg *m, long drop)
{
	char out[INBUFSZ + 2];	/* ".\rX" at a chunk start: 2 out for 1 */
	size_t n, used, outn;
	int done = 0;

	m->state = B_BOL;
	while (!done) {
		if (drop_reached(c, drop, m->rawlen))
			return conn_fail(c, H_DROPPED);
		if (c->ipos == c->iend && fill(c) == -1)
			return -1;
		n = c->iend - c->ipos;
		if (drop >= 0 && n > (unsigned long long)drop - m->rawlen)
			n = (size_t)((unsigned long long)drop - m->rawlen);
		used = unstuff(m, c->in + c->ipos, n, out, &outn, &done);
		msg_write(c, m, c->in + c->ipos, used, out, outn);
		c->ipos += used;
	}
	return 0;
}

static const char *
data_check(const struct conn *c, const char *arg)
{
	if (*arg != '\0')
		return "501 5.5.4 Syntax: DATA";
	if (!c->txn.mail)
		return "503 5.5.1 Error: need RCPT command";
	if (c->txn.bdat)
		return "503 5.5.1 Error: DATA after BDAT";
	if (c->txn.binary)
		return "503 5.5.1 Error: BODY=BINARYMIME requires BDAT";
	if (c->txn.nrcpt == 0)
		return "554 5.5.1 Error: no valid recipients";
	return NULL;
}

/* The reply after the whole message; stored when it is a 2xx. */
static void
msg_end(struct conn *c, const struct effect *e, const char *via)
{
	struct msg *m = &c->txn.m;
	unsigned long long limit = size_limit(c);
	unsigned long no = c->srv->nmsg + 1;
	char def[64];

	tlog(c->srv, "DATA %lu %llu %lu", c->flight, m->rawlen, m->reads);
	if (limit > 0 && m->emllen > limit)
		snprintf(def, sizeof(def), "552 5.3.4 Message size exceeds "
		    "fixed limit");
	else
		snprintf(def, sizeof(def), "250 2.0.0 Ok: queued as %lu", no);
	if (emit(c, e, def) / 100 == 2) {
		c->srv->nmsg = no;
		msg_commit(c, m, no, via);
	}
	txn_reset(c);
}

static void
cmd_data(struct conn *c, char *arg)
{
	const char *bad = data_check(c, arg);
	const struct rule *drop;
	struct effect e;

	if (reply(c, ST_DATA, bad ? bad :
	    "354 End data with <CR><LF>.<CR><LF>") != 354 || bad != NULL)
		return;
	if (flush(c) == -1)
		return;
	collect(c, ST_DATABODY, &e);
	if (effect_pre(c, &e) == -1 || msg_open(c, &c->txn.m) == -1)
		return;
	drop = effect_find(&e, A_DROP);
	if (data_body(c, &c->txn.m, drop ? drop->num : -1) == -1)
		return;
	collect(c, ST_DATAEND, &e);
	msg_end(c, &e, "DATA");
}

/* "n [LAST]" */
static int
bdat_parse(const char *arg, unsigned long long *size, int *last)
{
	char *end;

	if (!isdigit((unsigned char)*arg))
		return -1;
	errno = 0;
	*size = strtoull(arg, &end, 10);
	if (errno != 0 || *size > (1ULL << 40))
		return -1;
	end += strspn(end, " ");
	*last = strcasecmp(end, "LAST") == 0;
	return *last || *end == '\0' ? 0 : -1;
}

/* Take exactly size octets; keep them in the message when m is set. */
static int
bdat_chunk(struct conn *c, struct msg *m, unsigned long long size, long drop)
{
	unsigned long long got = 0;
	size_t n;

	for (;;) {
		if (drop_reached(c, drop, got))
			return conn_fail(c, H_DROPPED);
		if (got == size)
			return 0;
		if (c->ipos == c->iend && fill(c) == -1)
			return -1;
		n = c->iend - c->ipos;
		if (n > size - got)
			n = (size_t)(size - got);
		if (drop >= 0 && n > (unsigned long long)drop - got)
			n = (size_t)((unsigned long long)drop - got);
		if (m != NULL)
			msg_write(c, m, c->in + c->ipos, n, c->in + c->ipos, n);
		c->ipos += n;
		got += n;
	}
}

static const char *
bdat_check(const struct conn *c)
{
	if (!has_cap(c, "CHUNKING"))
		return "502 5.5.1 Error: command not implemented";
	if (!c->txn.mail)
		return "503 5.5.1 Error: need MAIL command";
	if (c->txn.nrcpt == 0)
		return "554 5.5.1 Error: no valid recipients";
	if (c->txn.bdatfail)
		return "503 5.5.1 Error: earlier BDAT failed, send RSET";
	return NULL;
}

static void
cmd_bdat(struct conn *c, char *arg)
{
	unsigned long long size;
	const struct rule *drop;
	const char *bad;
	struct msg *m = &c->txn.m;
	struct effect e, el;
	char def[64];
	size_t i;
	int last;

	if (bdat_parse(arg, &size, &last) == -1) {
		reply(c, ST_BDAT, "501 5.5.4 Syntax: BDAT count [LAST]");
		return;
	}
	collect(c, ST_BDAT, &e);
	if (last) {
		collect(c, ST_BDATLAST, &el);
		for (i = 0; i < el.n && e.n < MAXMATCH; i++)
			e.r[e.n++] = el.r[i];
	}
	drop = effect_find(&e, A_DROP);
	if ((bad = bdat_check(c)) != NULL) {
		if (bdat_chunk(c, NULL, size, drop ? drop->num : -1) == 0)
			emit(c, &e, bad);
		return;
	}
	if (msg_open(c, m) == -1)
		return;
	c->txn.bdat = 1;
	msg_frame(m, c->line, c->linelen);
	msg_frame(m, c->crlf ? "\r\n" : "\n", c->crlf ? 2 : 1);
	if (bdat_chunk(c, m, size, drop ? drop->num : -1) == -1)
		return;
	if (last) {
		msg_end(c, &e, "BDAT");
		return;
	}
	snprintf(def, sizeof(def), "250 2.0.0 Ok: %llu octets", size);
	if (emit(c, &e, def) / 100 != 2)
		c->txn.bdatfail = 1;
}

static void
cmd_rset(struct conn *c, char *arg)
{
	(void)arg;
	if (reply(c, ST_RSET, "250 2.0.0 Ok") / 100 == 2)
		txn_reset(c);
}

static void
cmd_noop(struct conn *c, char *arg)
{
	(void)arg;
	reply(c, ST_NOOP, "250 2.0.0 Ok");
}

static void
cmd_quit(struct conn *c, char *arg)
{
	(void)arg;
	if (reply(c, ST_QUIT, "221 2.0.0 Bye") == -1)
		return;
	if (flush(c) == 0)
		c->how = H_QUIT;
}

static const struct command {
	const char	*name;
	void		(*fn)(struct conn *, char *);
} commands[] = {
	{ "EHLO", cmd_ehlo },
	{ "HELO", cmd_helo },
	{ "STARTTLS", cmd_starttls },
	{ "AUTH", cmd_auth },
	{ "MAIL", cmd_mail },
	{ "RCPT", cmd_rcpt },
	{ "DATA", cmd_data },
	{ "BDAT", cmd_bdat },
	{ "RSET", cmd_rset },
	{ "NOOP", cmd_noop },
	{ "QUIT", cmd_quit },
};

/* c->line stays whole: BDAT records it in the raw stream. */
static void
dispatch(struct conn *c)
{
	size_t i, n = strcspn(c->line, " ");
	char *arg = c->line + n;

	if (*arg != '\0')
		arg++;
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strlen(commands[i].name) == n &&
		    strncasecmp(c->line, commands[i].name, n) == 0) {
			commands[i].fn(c, arg);
			return;
		}
	reply(c, ST_NONE, "500 5.5.2 Error: command not recognized");
}

/* ------------------------------------------------------------------ */
/* Connections. */

static void
session(struct conn *c)
{
	const struct config *cf = c->cf;
	struct effect e;
	int r;

	collect(c, ST_CONNECT, &e);
	if (effect_pre(c, &e) == -1)
		return;
	if (cf->implicit && tls_start(c) == -1)
		return;
	if (reply(c, ST_GREETING, cf->greeting) == -1)
		return;
	while (c->how == H_OPEN) {
		if ((r = read_line(c, MAXCMD)) == -1)
			break;
		if (r == LINE_LONG)
			reply(c, ST_NONE, "500 5.5.2 Error: line too long");
		else
			dispatch(c);
	}
}

static void
conn_close(struct conn *c)
{
	int r;

	if (c->tls) {
		if (c->how == H_QUIT)
			do
				r = mbedtls_ssl_close_notify(&c->ssl);
			while (r == MBEDTLS_ERR_SSL_WANT_WRITE);
	}
	if (c->sslinit)
		mbedtls_ssl_free(&c->ssl);
	close(c->fd);
	tlog(c->srv, "CLOSE %lu %s", c->no, hownames[c->how]);
	txn_reset(c);
	buf_free(&c->out);
}

static void
serve(struct server *srv, int fd)
{
	struct conn *c;
	int one = 1;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatal("out of memory");
	c->srv = srv;
	c->cf = srv->cf;
	c->fd = fd;
	c->no = ++srv->nconn;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	tlog(srv, "CONNECT %lu", c->no);
	session(c);
	if (c->how == H_OPEN)
		c->how = H_ERROR;
	conn_close(c);
	free(c);
}

/* ------------------------------------------------------------------ */
/* Start-up. */

static void
write_portfile(const char *path, unsigned int port)
{
	char tmp[PATH_MAX];
	FILE *fp;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if ((fp = fopen(tmp, "w")) == NULL)
		fatal("%s: %s", tmp, strerror(errno));
	fprintf(fp, "%u\n", port);
	if (fclose(fp) != 0 || rename(tmp, path) != 0)
		fatal("%s: %s", path, strerror(errno));
}

static unsigned int
sock_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		fatal("getsockname: %s", strerror(errno));
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int
listen_on(const char *addr, const char *port)
{
	struct addrinfo hints, *res;
	int fd, one = 1, r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	if ((r = getaddrinfo(addr, port, &hints, &res)) != 0)
		fatal("listen address %s port %s: %s", addr, port,
		    gai_strerror(r));
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		fatal("socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, 16) == -1)
		fatal("listen on %s port %s: %s", addr, port, strerror(errno));
	freeaddrinfo(res);
	return fd;
}

static void
caps_parse(struct caps *caps, const char *list)
{
	char *copy, *p, *save = NULL;

	caps->n = 0;
	if ((copy = strdup(list)) == NULL)
		fatal("out of memory");
	caps->copy = copy;
	for (p = strtok_r(copy, ",", &save); p != NULL;
	    p = strtok_r(NULL, ",", &save)) {
		if (*p == '\0')
			continue;
		if (caps->n == MAXCAPS)
			fatal("more than %d capabilities", MAXCAPS);
		caps->line[caps->n++] = p;
	}
}

/* -E defaults to -e without STARTTLS. */
static void
caps_after_tls(struct caps *to, const struct caps *from)
{
	size_t i;

	to->n = 0;
	for (i = 0; i < from->n; i++)
		if (strcasecmp(from->line[i], "STARTTLS") != 0)
			to->line[to->n++] = from->line[i];
}

static mbedtls_ssl_protocol_version
parse_version(const char *s)
{
	if (strcmp(s, "1.2") == 0)
		return MBEDTLS_SSL_VERSION_TLS1_2;
	if (strcmp(s, "1.3") == 0)
		return MBEDTLS_SSL_VERSION_TLS1_3;
	fatal("TLS version must be 1.2 or 1.3, not %s", s);
}

static void
add_user(struct config *cf, char *arg)
{
	char *colon = strchr(arg, ':');

	if (colon == NULL || colon == arg)
		fatal("-u wants USER:PASS");
	if (cf->nusers == MAXUSERS)
		fatal("more than %d users", MAXUSERS);
	*colon = '\0';
	cf->users[cf->nusers].name = arg;
	cf->users[cf->nusers++].pass = colon + 1;
}

static void
set_greeting(struct config *cf, const char *text)
{
	struct buf b = { 0 };

	free(cf->greeting);
	if (unescape(text, &b) == -1)
		fatal("-g: bad escape");
	if (!ends_crlf(&b))
		buf_add(&b, "\r\n", 2);
	cf->greeting = b.p;
}

static long
num_opt(int opt, const char *arg, long max)
{
	long v;

	if ((v = parse_num(arg, max)) == -1)
		fatal("-%c: bad number %s", opt, arg);
	return v;
}

static void
parse_args(struct config *cf, int argc, char **argv)
{
	const char *e = "PIPELINING,8BITMIME,ENHANCEDSTATUSCODES", *E = NULL;
	int ch;

	cf->addr = "127.0.0.1";
	cf->port = "0";
	cf->tlsmin = MBEDTLS_SSL_VERSION_TLS1_2;
	cf->tlsmax = MBEDTLS_SSL_VERSION_TLS1_3;
	cf->maxsecs = 120;
	cf->timeout_ms = 30000;
	set_greeting(cf, "220 " HOSTNAME " ESMTP ready");
	while ((ch = getopt(argc, argv,
	    "A:c:d:E:e:g:i:k:L:l:M:m:n:O:p:r:s:Tt:u:w:x:")) != -1) {
		switch (ch) {
		case 'A': cf->cafile = optarg; break;
		case 'c': cf->cert = optarg; break;
		case 'd': cf->dir = optarg; break;
		case 'E': E = optarg; break;
		case 'e': e = optarg; break;
		case 'g': set_greeting(cf, optarg); break;
		case 'i': cf->scramiter = optarg; break;
		case 'k': cf->key = optarg; break;
		case 'L': cf->rcptmax = (size_t)num_opt(ch, optarg, MAXRCPT);
		    break;
		case 'l': cf->addr = optarg; break;
		case 'M': cf->tlsmax = parse_version(optarg); break;
		case 'm': cf->tlsmin = parse_version(optarg); break;
		case 'n': cf->count = (unsigned long)num_opt(ch, optarg,
		    1000000); break;
		case 'O': cf->tokens = optarg; break;
		case 'p': cf->port = optarg; break;
		case 'r': cf->timeout_ms = (int)num_opt(ch, optarg, 3600) *
		    1000; break;
		case 's': cf->script = optarg; break;
		case 'T': cf->implicit = 1; break;
		case 't': cf->tfile = optarg; break;
		case 'u': add_user(cf, optarg); break;
		case 'w': cf->portfile = optarg; break;
		case 'x': cf->maxsecs = num_opt(ch, optarg, 86400); break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	caps_parse(&cf->caps, e);
	if (E != NULL)
		caps_parse(&cf->capstls, E);
	else
		caps_after_tls(&cf->capstls, &cf->caps);
}

static void
check_args(const struct config *cf)
{
	int need = cf->implicit || cap_find(&cf->caps, "STARTTLS") != NULL;

	if ((cf->cert == NULL) != (cf->key == NULL))
		fatal("-c and -k go together");
	if (need && cf->cert == NULL)
		fatal("-T and STARTTLS need -c CERT -k KEY");
	if (cf->cafile != NULL && cf->cert == NULL)
		fatal("-A needs -c CERT -k KEY");
	if (cf->tlsmin > cf->tlsmax)
		fatal("-m is above -M");
	if (cf->timeout_ms == 0)
		fatal("-r must be at least 1 second");
}

static int
signals_init(void)
{
	sigset_t set;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1 ||
	    (fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal("signalfd: %s", strerror(errno));
	return fd;
}

/* Wait for the next client; 0 with the run over. */
static int
next_client(struct server *srv)
{
	struct pollfd pfd[2];
	long long left;
	int fd;

	while (srv->stop == STOP_NO) {
		if ((left = srv->deadline - now_ms()) <= 0) {
			srv->stop = STOP_DEADLINE;
			break;
		}
		pfd[0].fd = srv->lfd;
		pfd[0].events = POLLIN;
		pfd[1].fd = srv->sigfd;
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, left > 1000 ? 1000 : (int)left) == -1 &&
		    errno != EINTR)
			fatal("poll: %s", strerror(errno));
		if (pfd[1].revents != 0)
			signal_take(srv);
		else if (pfd[0].revents != 0 && (fd = accept4(srv->lfd, NULL,
		    NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1)
			return fd;
	}
	return -1;
}

static void
server_init(struct server *srv, const struct config *cf)
{
	memset(srv, 0, sizeof(*srv));
	srv->cf = cf;
	if (cf->script != NULL)
		script_load(&srv->sc, cf->script);
	if (cf->tfile != NULL && (srv->tlog = fopen(cf->tfile, "a")) == NULL)
		fatal("%s: %s", cf->tfile, strerror(errno));
	if (gsasl_init(&srv->sasl) != GSASL_OK)
		fatal("gsasl_init failed");
	gsasl_callback_set(srv->sasl, sasl_cb);
	tls_init(&srv->tls, cf);
	srv->sigfd = signals_init();
	srv->deadline = now_ms() + cf->maxsecs * 1000;
	srv->lfd = listen_on(cf->addr, cf->port);
	if (cf->portfile != NULL)
		write_portfile(cf->portfile, sock_port(srv->lfd));
}

static void
tls_free(struct tls *t)
{
	if (!t->ready)
		return;
	mbedtls_ssl_config_free(&t->conf);
	mbedtls_x509_crt_free(&t->cert);
	mbedtls_x509_crt_free(&t->ca);
	mbedtls_pk_free(&t->key);
	mbedtls_ssl_ticket_free(&t->ticket);
	mbedtls_ssl_cache_free(&t->cache);
	mbedtls_psa_crypto_free();
}

static void
server_free(struct server *srv, struct config *cf)
{
	size_t i;

	tls_free(&srv->tls);
	gsasl_done(srv->sasl);
	for (i = 0; i < srv->sc.n; i++)
		free(srv->sc.r[i].text);
	free(srv->sc.r);
	if (srv->tlog != NULL)
		fclose(srv->tlog);
	close(srv->lfd);
	close(srv->sigfd);
	free(cf->caps.copy);
	free(cf->capstls.copy);
	free(cf->greeting);
}

int
main(int argc, char **argv)
{
	struct config cf;
	struct server srv;
	int fd;

	memset(&cf, 0, sizeof(cf));

	parse_args(&cf, argc, argv);
	check_args(&cf);
	server_init(&srv, &cf);
	while ((fd = next_client(&srv)) != -1) {
		serve(&srv, fd);
		if (cf.count > 0 && srv.nconn >= cf.count)
			break;
	}
	server_free(&srv, &cf);
	if (srv.stop == STOP_DEADLINE) {
		fprintf(stderr, "testsrv: -x %ld seconds are over\n",
		    cf.maxsecs);
		return 3;
	}
	return 0;
}

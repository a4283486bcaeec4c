/* SPDX-License-Identifier: ISC */
/*
 * The message: standard input to an unlinked spool file, the header
 * scan, the envelope (sender, recipients, aliases) and the few header
 * fixes SPEC section 4 allows.  Only the header block is held in
 * memory; the body streams through one fixed buffer, so memory does
 * not grow with the message.  The spool holds exactly the octets that
 * go on the wire before dot-stuffing: CRLF line endings only, lines no
 * longer than 998 octets.
 */
#include <sys/random.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "smarthost.h"

#define IOBUF_SIZE	(64 * 1024)	/* one read(2), one write(2) */
#define FIELD_NAME_MAX	997		/* so "Name:" fits one line */
#define FIELDS_MAX	10000		/* header fields of one message */
#define ALIAS_LINE_MAX	4096
#define ALIASES_MAX	10000
#define CHANGES_MAX	100
#define FULLNAME_MAX	256
#define ENVID_MAX	100
#define SHOWN_MAX	300		/* an address quoted in a message */

/*
 * Input: pieces of lines.  A piece is the text up to a line ending (LF,
 * CRLF or, in the body, a bare CR) or, for a line longer than the
 * buffer, the whole buffer.  A piece without a line ending is therefore
 * either a full buffer or the end of input, so the start of every line
 * can be judged from its first piece.  In the header block a bare CR
 * becomes a space: ending the line there would let "Subject: x\rBcc: y"
 * from a web form add a hidden recipient under -t.
 */
struct reader {
	int		 fd;
	int		 eof;
	int		 skip_lf;	/* CR was last: skip an LF next */
	int		 ended;		/* a lone "." ended the input */
	size_t		 pos, len;
	size_t		 cr;		/* next CR at or after pos, or len */
	int		 cr_known;	/* cr is valid for this buffer */
	int		 in_header;	/* a bare CR is a space, not an end */
	unsigned char	 buf[IOBUF_SIZE];
};

struct piece {
	const unsigned char *p;
	size_t		 len;
	size_t		 eollen;	/* octets of the line ending */
	int		 eol;		/* a line ending follows the text */
	int		 eof;		/* no line ending and no more input */
	int		 cr_last;	/* the ending is a CR at buffer end */
};

/* The header block, normalised to CRLF, and its fields. */
enum hdr_end {
	HDR_BLANK,		/* an empty line: the body follows */
	HDR_EOF,		/* input (or a lone ".") ended in it */
	HDR_NONE,		/* the first line is no header field */
	HDR_BODYLINE		/* a line that is no field ended it */
};

struct field {
	size_t		 off, len;	/* in header.buf, CRLFs included */
	size_t		 namelen;
	size_t		 valoff;	/* after the colon, from off */
	unsigned	 lines;
	int		 removed;
	char		*repl;		/* replacement text with CRLF */
	size_t		 repllen;
};

struct header {
	char		*buf;
	size_t		 len, cap;
	struct field	*f;
	size_t		 nf, fcap;
	enum hdr_end	 end;
	int		 mbox_from;	/* a "From " line was dropped */
};

/* A mailbox found by the address list parser. */
struct mailbox {
	char		 addr[ADDR_MAX + 2];
	size_t		 len;
	size_t		 start, end;	/* the addr-spec in the parsed text */
	unsigned	 ntok;
	int		 toolong;
	int		 phrase;	/* words and no address: a name */
	int		 lastword;
};

struct alparse {
	const char	*s;
	size_t		 n, i;
	struct mailbox	 plain, angle;
	int		 in_angle, have_angle;
	int		 stop;		/* the callback said so */
	int		(*cb)(void *, const struct mailbox *);
	void		*arg;
};

struct splitter {
	const char	*s;
	size_t		 i;
	int		 done;
};

struct addrs {
	char		**v;
	size_t		 n;
};

struct alias {
	char		*name;
	char		**targets;
	size_t		 ntargets;
};

struct aliases {
	const char	*file;
	struct alias	*v;
	size_t		 n;
};

struct spool {
	int		 fd;
	const char	*dir;
	off_t		 size;
	off_t		 max;		/* max_message_size; 0: none */
	int		 queue;		/* fd is the queue's spool */
	int		 moved;		/* ... which was full: now TMPDIR's */
	int		 queue_fd;	/* ... and the queue's, to close */
	size_t		 len, col;
	int		 broken;	/* the current line was broken */
	unsigned	 nbroken;
	int		 eightbit, nul;
	unsigned char	 buf[IOBUF_SIZE];
};

/* Everything one message_read() call works with. */
struct ctx {
	const struct cmdline	*cl;
	const struct account	*ac;
	struct message		*m;
	struct reader		*rd;
	struct spool		*sp;
	struct header		 h;
	struct aliases		 al;
	struct addrs		 raw;		/* recipients as given */
	struct addrs		 rcpts;		/* expanded, qualified */
	const char		*stack[ALIAS_DEPTH_MAX];
	size_t			 depth;
	char			 host[256], shorthost[256];
	char			*added[3];	/* header lines we add */
	size_t			 nadded;
	const char		*rcpt_field;	/* for messages */
};

static const char	*addr_reason(const char *, size_t);
static int		 addr_shape(const char *, size_t, const char **);
static int		 domain_ok(const char *, size_t);
static int		 label_ok(const char *, size_t);
static void		 addr_show(char *, size_t, const char *, size_t);
static int		 has_ctl(const char *);
static int		 split_next(struct splitter *, const char **,
			    size_t *);
static void		 addr_strip(const char **, size_t *);
static void		 change_add(struct message *, const char *, ...)
			    __attribute__((format(printf, 2, 3)));
static int		 dsn_check(struct ctx *, struct error *);
static int		 dsn_notify_norm(const char *, const char **);
static int		 dsn_return_norm(const char *, const char **);
static int		 envid_ok(const char *);
static void		 host_names(struct ctx *);
static int		 hdr_read(struct reader *, struct header *, int,
			    struct error *);
static int		 hdr_fields(struct reader *, struct header *, int,
			    struct error *);
static int		 rd_piece(struct reader *, struct piece *,
			    struct error *);
static int		 rd_bare_cr(struct reader *, size_t);
static int		 rd_fill(struct reader *, struct error *);
static void		 rd_consume(struct reader *, const struct piece *);
static int		 rd_skip_line(struct reader *, struct error *);
static int		 is_lone_dot(const struct piece *);
static int		 field_start(const struct piece *, size_t *);
static int		 hdr_take_line(struct reader *, struct header *, int,
			    size_t, struct error *);
static int		 hdr_append(struct header *, const void *, size_t,
			    struct error *);
static int		 envelope_sender(struct ctx *, struct error *);
static int		 from_usable(const struct account *);
static int		 login_address(struct ctx *, char *, size_t,
			    struct error *);
static int		 sender_rewrite(struct ctx *, char *, size_t);
static int		 is_local(const struct ctx *, const char *, char *,
			    size_t);
static int		 is_local_domain(const struct ctx *, const char *);
static int		 rcpts_from_args(struct ctx *, struct error *);
static int		 addrs_add(struct addrs *, const char *, size_t,
			    struct error *);
static int		 rcpts_from_header(struct ctx *, struct error *);
static int		 field_is(const struct header *, size_t,
			    const char *);
static int		 resent_block(const struct header *, size_t *,
			    size_t *);
static int		 field_rcpts(struct ctx *, size_t, struct error *);
static int		 field_mailbox(void *, const struct mailbox *);
static void		 al_parse(struct alparse *);
static int		 al_token(struct alparse *, size_t *, size_t *);
static void		 al_skip_cfws(struct alparse *);
static int		 is_atext(unsigned char);
static void		 mb_add(struct mailbox *, const char *, size_t,
			    size_t);
static void		 al_finish(struct alparse *);
static int		 aliases_load(struct ctx *, struct error *);
static int		 alias_line(struct aliases *, char *, unsigned,
			    struct error *);
static int		 rcpts_expand(struct ctx *, struct error *);
static int		 rcpt_expand(struct ctx *, const char *,
			    struct error *);
static const struct alias *alias_find(const struct ctx *, const char *);
static int		 alias_apply(struct ctx *, const struct alias *,
			    const char *, struct error *);
static int		 rcpt_final(struct ctx *, const char *,
			    struct error *);
static int		 hdr_fix(struct ctx *, struct error *);
static void		 bcc_remove(struct ctx *);
static int		 from_fix(struct ctx *, struct error *);
static int		 field_find(const struct header *, const char *);
static const char	*from_header_addr(const struct ctx *);
static int		 from_value(struct ctx *, const char *, char *,
			    size_t, struct error *);
static void		 name_encode(const char *, char *, size_t);
static void		 b64_word(const unsigned char *, size_t, char *,
			    size_t);
static int		 field_local_replace(struct ctx *, int, const char *);
static void		 rescue(struct ctx *, int);
static void		 rescue_header(struct ctx *);
static const char	*local_target(const struct ctx *);
static int		 sender_target(const struct ctx *, const char *, char *,
			    size_t);
static int		 angle_before(const char *, size_t);
static int		 comment_text(const char *, size_t, size_t, size_t,
			    char *, size_t);
static void		 str_trim_copy(char *);
static void		 senders_rewrite(struct ctx *);
static int		 from_one(void *, const struct mailbox *);
static void		 date_add(struct ctx *);
static int		 msgid_add(struct ctx *, struct error *);
static void		 added_line(struct ctx *, const char *, ...)
			    __attribute__((format(printf, 2, 3)));
static int		 spool_open(struct spool *, struct error *);
static int		 spool_write_all(struct ctx *, struct error *);
static int		 sp_text(struct spool *, const void *, size_t,
			    struct error *);
static void		 sp_scan(struct spool *, const unsigned char *, size_t);
static int		 sp_eol(struct spool *, struct error *);
static int		 sp_put(struct spool *, const void *, size_t,
			    struct error *);
static int		 sp_flush(struct spool *, struct error *);
static int		 sp_block(struct spool *, const char *, size_t,
			    struct error *);
static int		 body_copy(struct reader *, struct spool *, int,
			    struct error *);
static void		 envelope_flags(struct ctx *);
static int		 has_8bit(const char *);
static void		 ctx_free(struct ctx *);

/*
 * Addresses given on the command line (-f and recipients).  A recipient
 * argument may be a comma-separated list, as msmtp allows.  Checked
 * before anything else happens, so nothing an address carries can reach
 * the wire or the spool.
 */
int
address_check(const char *addr, struct error *err)
{
	struct splitter	 sp = { addr, 0, 0 };
	const char	*e, *why;
	size_t		 n;
	char		 shown[SHOWN_MAX];

	if (has_ctl(addr)) {
		addr_show(shown, sizeof(shown), addr, strlen(addr));
		return error_set(err, EX_USAGE, "invalid address '%s': "
		    "control characters are not allowed", shown);
	}
	while (split_next(&sp, &e, &n)) {
		if ((why = addr_reason(e, n)) == NULL)
			continue;
		addr_show(shown, sizeof(shown), e, n);
		return error_set(err, EX_USAGE, "invalid address '%s': %s",
		    shown, why);
	}
	return 0;
}

/* Why one address (no list) is not acceptable, or NULL. */
static const char *
addr_reason(const char *a, size_t n)
{
	const char	*why;
	size_t		 i;

	for (i = 0; i < n; i++)
		if ((unsigned char)a[i] < 0x20 || a[i] == 0x7f)
			return "control characters are not allowed";
	if (n >= 2 && a[0] == '<' && a[n - 1] == '>') {
		a++;
		n -= 2;
	} else if (n > 0 && (a[0] == '<' || a[n - 1] == '>'))
		return "unbalanced angle brackets";
	if (n == 0)
		return "it is empty";
	if (n > ADDR_MAX)
		return "it is longer than 256 characters";
	if (addr_shape(a, n, &why) == -1)
		return why;
	return NULL;
}

/* The local part, then the domain if there is an '@'. */
static int
addr_shape(const char *a, size_t n, const char **why)
{
	const char	*d;
	size_t		 i = 0, dn;

	if (a[0] == '"') {
		for (i = 1; i < n && a[i] != '"'; i++)
			if (a[i] == '\\' && i + 1 < n)
				i++;
		if (i++ >= n)
			return (*why = "unterminated quotes", -1);
		if (i < n && a[i] != '@')
			return (*why = "text after the quoted local part",
			    -1);
	} else {
		for (; i < n && a[i] != '@'; i++) {
			if (a[i] == ' ' || a[i] == '\t')
				return (*why = "whitespace is allowed only "
				    "inside quotes", -1);
			if (strchr("()<>[]:;\\,\"", a[i]) != NULL)
				return (*why = "the local part has a "
				    "character that needs quotes", -1);
		}
		if (i == 0)
			return (*why = "the local part before @ is empty", -1);
	}
	if (i == n)
		return 0;		/* a bare local part: qualified later */
	d = a + i + 1;
	dn = n - i - 1;
	for (i = 0; i < dn; i++) {
		if (d[i] == ' ' || d[i] == '\t')
			return (*why = "whitespace is allowed only inside "
			    "quotes", -1);
		if (d[i] == '@')
			return (*why = "more than one @", -1);
	}
	if (dn == 0)
		return (*why = "the domain after @ is empty", -1);
	if (!domain_ok(d, dn))
		return (*why = "the domain is not a valid host name or "
		    "[address literal]", -1);
	return 0;
}

static int
domain_ok(const char *d, size_t n)
{
	char		 lit[64];
	unsigned char	 bin[16];
	size_t		 i, start;

	if (d[0] == '[') {
		if (n < 3 || d[n - 1] != ']' || n - 2 >= sizeof(lit))
			return 0;
		memcpy(lit, d + 1, n - 2);
		lit[n - 2] = '\0';
		if (strncasecmp(lit, "IPv6:", 5) == 0)
			return inet_pton(AF_INET6, lit + 5, bin) == 1;
		return inet_pton(AF_INET, lit, bin) == 1;
	}
	if (n > 255)
		return 0;
	for (start = i = 0; i <= n; i++) {
		if (i < n && d[i] != '.')
			continue;
		if (!label_ok(d + start, i - start))
			return 0;
		start = i + 1;
	}
	return 1;
}

/* Letters, digits, '-' and '_' (seen in real host names), UTF-8. */
static int
label_ok(const char *l, size_t n)
{
	size_t		 i;
	unsigned char	 c;

	if (n == 0 || n > 63 || l[0] == '-' || l[n - 1] == '-')
		return 0;
	for (i = 0; i < n; i++) {
		c = (unsigned char)l[i];
		if (!(c >= 0x80 || (c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

/* Quote an address in a message: control characters escaped, bounded. */
static void
addr_show(char *dst, size_t size, const char *s, size_t n)
{
	size_t		 i, o = 0, k;
	unsigned char	 c;
	char		 tmp[8];

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c == '\n')
			k = (size_t)snprintf(tmp, sizeof(tmp), "\\n");
		else if (c == '\r')
			k = (size_t)snprintf(tmp, sizeof(tmp), "\\r");
		else if (c == '\t')
			k = (size_t)snprintf(tmp, sizeof(tmp), "\\t");
		else if (c < 0x20 || c == 0x7f)
			k = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", c);
		else {
			tmp[0] = (char)c;
			k = 1;
		}
		if (o + k + 4 > size) {
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(dst + o, tmp, k);
		o += k;
	}
	dst[o] = '\0';
}

static int
has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/*
 * The next comma-separated element, trimmed of blanks; commas inside
 * quotes do not count.  "" is one (empty) element.
 */
static int
split_next(struct splitter *sp, const char **elem, size_t *len)
{
	const char	*s = sp->s;
	size_t		 j, b, e;
	int		 q = 0;

	if (sp->done)
		return 0;
	for (j = sp->i; s[j] != '\0'; j++) {
		if (s[j] == '\\' && q && s[j + 1] != '\0')
			j++;
		else if (s[j] == '"')
			q = !q;
		else if (s[j] == ',' && !q)
			break;
	}
	for (b = sp->i; b < j && (s[b] == ' ' || s[b] == '\t'); b++)
		;
	for (e = j; e > b && (s[e - 1] == ' ' || s[e - 1] == '\t'); e--)
		;
	*elem = s + b;
	*len = e - b;
	if (s[j] == '\0')
		sp->done = 1;
	else
		sp->i = j + 1;
	return 1;
}

static void
addr_strip(const char **a, size_t *n)
{
	if (*n >= 2 && (*a)[0] == '<' && (*a)[*n - 1] == '>') {
		(*a)++;
		*n -= 2;
	}
}

/*
 * Read the message from fd, work out its envelope, fix its headers and
 * write it to spool (the queue's empty file, which m owns on success)
 * or, with spool -1, to an unlinked file of our own.  On failure
 * everything of ours is freed, spool stays open for the caller and m is
 * left empty (fd -1), so message_free() is safe either way.
 */
int
message_read(int fd, int spool, const struct cmdline *cl,
    const struct account *ac, struct message *m, struct error *err)
{
	struct ctx	 c;
	off_t		 size;
	int		 rc = -1, kept;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	memset(&c, 0, sizeof(c));
	c.cl = cl;
	c.ac = ac;
	c.m = m;
	c.rd = xcalloc(1, sizeof(*c.rd));
	c.rd->fd = fd;
	c.sp = xcalloc(1, sizeof(*c.sp));
	c.sp->fd = -1;
	c.sp->dir = "the queue directory";
	c.sp->max = (off_t)ac->max_message_size;
	host_names(&c);

	if (hdr_read(c.rd, &c.h, cl->dot_ends, err) == -1) {
		if (err->code == EX_DATAERR)
			rescue_header(&c);
		goto done;
	}
	if (dsn_check(&c, err) == -1 ||
	    envelope_sender(&c, err) == -1 ||
	    rcpts_from_args(&c, err) == -1 ||
	    rcpts_from_header(&c, err) == -1 ||
	    aliases_load(&c, err) == -1 ||
	    rcpts_expand(&c, err) == -1 ||
	    hdr_fix(&c, err) == -1) {
		if (err->code == EX_CONFIG)
			rescue(&c, spool);
		goto done;
	}
	if (spool == -1 && spool_open(c.sp, err) == -1)
		goto done;
	if (spool != -1) {
		c.sp->fd = spool;
		c.sp->queue = 1;
	}
	if (spool_write_all(&c, err) == -1) {
		if (spool != -1 && !c.sp->moved)
			c.sp->fd = -1;		/* the caller's to close */
		goto done;
	}
	/* Moved out of a full queue: the queue's file is ours to close. */
	if (c.sp->moved) {
		close(c.sp->queue_fd);
		change_add(m, "the queue's file system is full: the message "
		    "is sent without being queued");
	}
	envelope_flags(&c);
	m->fd = c.sp->fd;
	c.sp->fd = -1;
	rc = 0;
done:
	ctx_free(&c);
	if (rc == -1 && m->rescued) {
		kept = m->fd;
		size = m->size;
		m->fd = -1;
		message_free(m);
		m->fd = kept;
		m->size = size;
		m->rescued = 1;
	} else if (rc == -1)
		message_free(m);
	return rc;
}

/*
 * A configuration error once the header was read: the message is still
 * read to its end, as it came, so the caller can keep it (dead.letter)
 * instead of losing it (a cron job's output, say).  SPOOL is the
 * caller's to close either way.
 */
static void
rescue(struct ctx *c, int spool)
{
	struct error	 ignored;

	c->sp->fd = -1;
	if (spool_open(c->sp, &ignored) == -1)
		return;
	c->nadded = 0;
	if (spool_write_all(c, &ignored) == -1 ||
	    lseek(c->sp->fd, 0, SEEK_SET) == -1) {
		close(c->sp->fd);
		c->sp->fd = -1;
		return;
	}
	(void)spool;
	c->m->fd = c->sp->fd;
	c->sp->fd = -1;
	c->m->rescued = 1;
}

/*
 * A header block too large to take (HEADER_MAX, FIELDS_MAX): what was
 * read of it and the rest of the input, as they came, for dead.letter.
 */
static void
rescue_header(struct ctx *c)
{
	struct error	 ignored;

	c->sp->fd = -1;
	if (spool_open(c->sp, &ignored) == -1)
		return;
	if (sp_block(c->sp, c->h.buf, c->h.len, &ignored) == -1 ||
	    body_copy(c->rd, c->sp, c->cl->dot_ends, &ignored) == -1 ||
	    sp_flush(c->sp, &ignored) == -1 ||
	    lseek(c->sp->fd, 0, SEEK_SET) == -1) {
		close(c->sp->fd);
		c->sp->fd = -1;
		return;
	}
	c->m->size = c->sp->size;
	c->m->fd = c->sp->fd;
	c->sp->fd = -1;
	c->m->rescued = 1;
}

static void
change_add(struct message *m, const char *fmt, ...)
{
	va_list	 ap;
	char	 buf[512], clean[512];

	if (m->nchanges >= CHANGES_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	sanitize(clean, sizeof(clean), buf);
	m->changes = xreallocarray(m->changes, m->nchanges + 1,
	    sizeof(*m->changes));
	m->changes[m->nchanges++] = xstrdup(clean);
}

/*
 * DSN options (RFC 3461): -N/-R/-V win over the account.  They are
 * checked here so that what reaches MAIL FROM and RCPT TO is one of a
 * few fixed words; ENVID is xtext-encoded by the sender.
 */
static int
dsn_check(struct ctx *c, struct error *err)
{
	const char	*v;
	int		 code;

	v = c->cl->dsn_notify ? c->cl->dsn_notify : c->ac->dsn_notify;
	code = c->cl->dsn_notify ? EX_USAGE : EX_CONFIG;
	if (v != NULL && dsn_notify_norm(v, &c->m->dsn_notify) == -1)
		return error_set(err, code, "invalid DSN notify '%.100s': "
		    "use never, or a comma list of success, delay, failure",
		    v);
	v = c->cl->dsn_return ? c->cl->dsn_return : c->ac->dsn_return;
	code = c->cl->dsn_return ? EX_USAGE : EX_CONFIG;
	if (v != NULL && dsn_return_norm(v, &c->m->dsn_return) == -1)
		return error_set(err, code, "invalid DSN return '%.100s': "
		    "use full or hdrs", v);
	v = c->cl->dsn_envid;
	if (v != NULL && !envid_ok(v))
		return error_set(err, EX_USAGE, "invalid DSN envelope id "
		    "'%.100s': use 1 to 100 printable ASCII characters "
		    "without '+' or '='", v);
	c->m->dsn_envid = v;
	return 0;
}

/* "off" (msmtp) means no DSN request at all. */
static int
dsn_notify_norm(const char *v, const char **out)
{
	static const char *const names[8] = { NULL, "SUCCESS", "DELAY",
	    "SUCCESS,DELAY", "FAILURE", "SUCCESS,FAILURE", "DELAY,FAILURE",
	    "SUCCESS,DELAY,FAILURE" };
	struct splitter	 sp = { v, 0, 0 };
	const char	*e;
	size_t		 n;
	unsigned	 flags = 0, never = 0;

	if (strcasecmp(v, "off") == 0)
		return (*out = NULL, 0);
	while (split_next(&sp, &e, &n)) {
		if (n == 5 && strncasecmp(e, "never", 5) == 0)
			never++;
		else if (n == 7 && strncasecmp(e, "success", 7) == 0)
			flags |= 1;
		else if (n == 5 && strncasecmp(e, "delay", 5) == 0)
			flags |= 2;
		else if (n == 7 && strncasecmp(e, "failure", 7) == 0)
			flags |= 4;
		else
			return -1;
	}
	if (never > 0 && (never > 1 || flags != 0))
		return -1;
	*out = never ? "NEVER" : names[flags];
	return 0;
}

static int
dsn_return_norm(const char *v, const char **out)
{
	if (strcasecmp(v, "off") == 0)
		*out = NULL;
	else if (strcasecmp(v, "full") == 0)
		*out = "FULL";
	else if (strcasecmp(v, "hdrs") == 0 || strcasecmp(v, "headers") == 0)
		*out = "HDRS";
	else
		return -1;
	return 0;
}

static int
envid_ok(const char *v)
{
	size_t	 i;

	for (i = 0; v[i] != '\0'; i++)
		if (v[i] < 0x21 || v[i] > 0x7e || v[i] == '+' || v[i] == '=')
			return 0;
	return i >= 1 && i <= ENVID_MAX;
}

/* This host's name, full and short: what "local" domains look like. */
static void
host_names(struct ctx *c)
{
	char	*dot;

	if (gethostname(c->host, sizeof(c->host) - 1) == -1)
		c->host[0] = '\0';
	c->host[sizeof(c->host) - 1] = '\0';
	snprintf(c->shorthost, sizeof(c->shorthost), "%s", c->host);
	if ((dot = strchr(c->shorthost, '.')) != NULL)
		*dot = '\0';
}

/*
 * The header block: from the first line, if that is a header field (a
 * leading mbox "From " line is dropped), to the first empty line.  A
 * line that is no field and no continuation ends it too and stays in
 * the reader for the body.
 */
static int
hdr_read(struct reader *rd, struct header *h, int dot_ends,
    struct error *err)
{
	int	 rc;

	rd->in_header = 1;
	rc = hdr_fields(rd, h, dot_ends, err);
	rd->in_header = 0;
	return rc;
}

static int
hdr_fields(struct reader *rd, struct header *h, int dot_ends,
    struct error *err)
{
	struct piece	 pc;
	size_t		 namelen = 0;
	int		 first = 1, cont;

	for (;;) {
		if (rd_piece(rd, &pc, err) == -1)
			return -1;
		if (pc.eof && pc.len == 0)
			return (h->end = HDR_EOF, 0);
		if (dot_ends && is_lone_dot(&pc)) {
			rd->ended = 1;
			return (h->end = HDR_EOF, 0);
		}
		if (pc.len == 0) {
			rd_consume(rd, &pc);
			return (h->end = HDR_BLANK, 0);
		}
		if (first && pc.len >= 5 && memcmp(pc.p, "From ", 5) == 0) {
			first = 0;
			h->mbox_from = 1;
			if (rd_skip_line(rd, err) == -1)
				return -1;
			continue;
		}
		first = 0;
		cont = pc.p[0] == ' ' || pc.p[0] == '\t';
		if ((cont && h->nf == 0) || (!cont && !field_start(&pc,
		    &namelen)))
			return (h->end = h->nf ? HDR_BODYLINE : HDR_NONE, 0);
		if (hdr_take_line(rd, h, cont, namelen, err) == -1)
			return -1;
	}
}

/*
 * The search is two memchr(3) calls, not a loop over every octet: the
 * input is copied into the spool at the speed of memory, and a 20 MB
 * message costs a small part of what its encryption does.  The next CR
 * is remembered, as most input has none (or one per line, at its end).
 */
static int
rd_piece(struct reader *rd, struct piece *pc, struct error *err)
{
	const unsigned char	*q;
	size_t			 i, from = 0;
	int			 bare;

	for (;;) {
		if (rd->skip_lf && rd->pos < rd->len) {
			if (rd->buf[rd->pos] == '\n')
				rd->pos++;
			rd->skip_lf = 0;
		}
		if (from < rd->pos)
			from = rd->pos;
		if (!rd->cr_known || rd->cr < rd->pos) {
			q = memchr(rd->buf + rd->pos, '\r', rd->len - rd->pos);
			rd->cr = q != NULL ? (size_t)(q - rd->buf) : rd->len;
			rd->cr_known = 1;
		}
		q = memchr(rd->buf + from, '\n', rd->cr - from);
		i = q != NULL ? (size_t)(q - rd->buf) : rd->cr;
		if (rd->in_header && q == NULL && i < rd->len &&
		    (bare = rd_bare_cr(rd, i)) != 0) {
			if (bare == 1) {	/* a space now; look on */
				from = i + 1;
				continue;
			}
			if (rd->pos > 0 || rd->len < sizeof(rd->buf)) {
				if (rd_fill(rd, err) == -1)
					return -1;
				from = 0;
				continue;
			}
			break;	/* a full buffer ending in CR: held back */
		}
		if (i < rd->len || rd->eof ||
		    (rd->pos == 0 && rd->len == sizeof(rd->buf)))
			break;
		if (rd_fill(rd, err) == -1)
			return -1;
		from = 0;
	}
	pc->p = rd->buf + rd->pos;
	pc->len = i - rd->pos;
	pc->eol = i < rd->len && !(rd->in_header && i + 1 == rd->len &&
	    rd->buf[i] == '\r' && !rd->eof);
	pc->eof = !pc->eol && rd->eof;
	pc->eollen = 0;
	pc->cr_last = 0;
	if (!pc->eol)
		return 0;
	pc->eollen = 1;
	if (rd->buf[i] == '\r') {
		if (i + 1 < rd->len && rd->buf[i + 1] == '\n')
			pc->eollen = 2;
		else if (i + 1 == rd->len && !rd->eof)
			pc->cr_last = 1;
	}
	return 0;
}

/*
 * In the header block, the CR at i: 0 when CRLF follows (a line end),
 * 1 when it is bare (made a space, the next CR found), 2 when the
 * buffer ends with it and more input may tell.
 */
static int
rd_bare_cr(struct reader *rd, size_t i)
{
	const unsigned char	*q;

	if (i + 1 == rd->len && !rd->eof)
		return 2;
	if (i + 1 < rd->len && rd->buf[i + 1] == '\n')
		return 0;
	rd->buf[i] = ' ';
	q = memchr(rd->buf + i + 1, '\r', rd->len - i - 1);
	rd->cr = q != NULL ? (size_t)(q - rd->buf) : rd->len;
	return 1;
}

static int
rd_fill(struct reader *rd, struct error *err)
{
	ssize_t	 n;

	rd->cr_known = 0;
	if (rd->pos > 0) {
		memmove(rd->buf, rd->buf + rd->pos, rd->len - rd->pos);
		rd->len -= rd->pos;
		rd->pos = 0;
	}
	do
		n = read(rd->fd, rd->buf + rd->len, sizeof(rd->buf) - rd->len);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return error_set(err, EX_IOERR, "cannot read the message "
		    "from standard input: %s", strerror(errno));
	if (n == 0)
		rd->eof = 1;
	rd->len += (size_t)n;
	return 0;
}

static void
rd_consume(struct reader *rd, const struct piece *pc)
{
	rd->pos += pc->len + pc->eollen;
	if (pc->cr_last)
		rd->skip_lf = 1;
}

static int
rd_skip_line(struct reader *rd, struct error *err)
{
	struct piece	 pc;

	do {
		if (rd_piece(rd, &pc, err) == -1)
			return -1;
		rd_consume(rd, &pc);
	} while (!pc.eol && !pc.eof);
	return 0;
}

/* Called on a line's first piece only. */
static int
is_lone_dot(const struct piece *pc)
{
	return pc->len == 1 && pc->p[0] == '.' && (pc->eol || pc->eof);
}

/* "Name:" or, obsolete, "Name :" (RFC 5322 4.5.8, Postfix too). */
static int
field_start(const struct piece *pc, size_t *namelen)
{
	size_t	 i;

	for (i = 0; i < pc->len && i <= FIELD_NAME_MAX; i++)
		if (pc->p[i] < 33 || pc->p[i] > 126 || pc->p[i] == ':')
			break;
	if (i == 0 || i > FIELD_NAME_MAX)
		return 0;
	*namelen = i;
	while (i < pc->len && (pc->p[i] == ' ' || pc->p[i] == '\t'))
		i++;
	return i < pc->len && pc->p[i] == ':';
}

/* One whole line into the header buffer, ending it with CRLF. */
static int
hdr_take_line(struct reader *rd, struct header *h, int cont,
    size_t namelen, struct error *err)
{
	struct piece	 pc;
	struct field	*f;
	size_t		 start = h->len;
	char		*colon;

	if (!cont && h->nf >= FIELDS_MAX)
		return error_set(err, EX_DATAERR, "more than %d header "
		    "fields: the message is malformed", FIELDS_MAX);
	do {
		if (rd_piece(rd, &pc, err) == -1 ||
		    hdr_append(h, pc.p, pc.len, err) == -1)
			return -1;
		rd_consume(rd, &pc);
	} while (!pc.eol && !pc.eof);
	if (hdr_append(h, "\r\n", 2, err) == -1)
		return -1;
	if (cont) {
		f = &h->f[h->nf - 1];
		f->len = h->len - f->off;
		f->lines++;
		return 0;
	}
	if (h->nf == h->fcap) {
		h->fcap = h->fcap ? h->fcap * 2 : 16;
		h->f = xreallocarray(h->f, h->fcap, sizeof(*h->f));
	}
	f = &h->f[h->nf++];
	memset(f, 0, sizeof(*f));
	f->off = start;
	f->len = h->len - start;
	f->namelen = namelen;
	colon = memchr(h->buf + start, ':', f->len);
	f->valoff = (size_t)(colon - (h->buf + start)) + 1;
	f->lines = 1;
	return 0;
}

static int
hdr_append(struct header *h, const void *p, size_t n, struct error *err)
{
	if (n > HEADER_MAX - h->len)
		return error_set(err, EX_DATAERR, "header block larger than "
		    "1 MiB: the message is malformed (is the empty line "
		    "after the headers missing?)");
	if (h->len + n > h->cap) {
		while (h->len + n > h->cap)
			h->cap = h->cap ? h->cap * 2 : 4096;
		h->buf = xreallocarray(h->buf, h->cap, 1);
	}
	memcpy(h->buf + h->len, p, n);
	h->len += n;
	return 0;
}

/*
 * The envelope sender (SPEC 4.1): -f if allowed, else the account's
 * from, else the login name at maildomain; a local sender is then
 * rewritten; the result must be a full address or the null sender.
 */
static int
envelope_sender(struct ctx *c, struct error *err)
{
	const struct cmdline	*cl = c->cl;
	const struct account	*ac = c->ac;
	char			 buf[ADDR_MAX + 1], shown[SHOWN_MAX];
	const char		*a, *why;
	size_t			 n;

	if (cl->from != NULL && !ac->allow_from_override)
		change_add(c->m, "ignored -f %s: allow_from_override is off",
		    cl->from);
	if (cl->from != NULL && ac->allow_from_override) {
		if (strcmp(cl->from, "") == 0 || strcmp(cl->from, "<>") == 0)
			return (c->m->sender = xstrdup(""), 0);
		a = cl->from;
		n = strlen(a);
		why = strchr(a, ',') ? "one address only, not a list" :
		    addr_reason(a, n);
		if (why != NULL) {
			addr_show(shown, sizeof(shown), a, n);
			return error_set(err, EX_USAGE, "invalid sender "
			    "'%s': %s", shown, why);
		}
		addr_strip(&a, &n);
		snprintf(buf, sizeof(buf), "%.*s", (int)n, a);
	} else if (from_usable(ac))
		snprintf(buf, sizeof(buf), "%s", ac->from);
	else if (login_address(c, buf, sizeof(buf), err) == -1)
		return -1;
	if (ac->rewrite_local_senders && sender_rewrite(c, buf,
	    sizeof(buf)) == -1)
		return error_set(err, EX_CONFIG, "envelope sender is too "
		    "long after rewriting");
	a = strrchr(buf, '@');
	addr_show(shown, sizeof(shown), buf, strlen(buf));
	if (a == NULL || a == buf || a[1] == '\0')
		return error_set(err, EX_CONFIG, "envelope sender '%s' is "
		    "not a full address: set from (or maildomain) in the "
		    "configuration", shown);
	/* from and maildomain come from files: check them like -f. */
	if ((why = addr_reason(buf, strlen(buf))) != NULL)
		return error_set(err, EX_CONFIG, "envelope sender '%s': %s: "
		    "fix from (or maildomain) in the configuration", shown,
		    why);
	c->m->sender = xstrdup(buf);
	return 0;
}

/* msmtp: a from with ?*[ is a pattern for matching -f, not an address. */
static int
from_usable(const struct account *ac)
{
	return ac->from != NULL && ac->from[0] != '\0' &&
	    strpbrk(ac->from, "?*[") == NULL;
}

static int
login_address(struct ctx *c, char *buf, size_t size, struct error *err)
{
	struct passwd	*pw;

	if ((pw = getpwuid(getuid())) == NULL)
		return error_set(err, EX_CONFIG, "user id %u has no name: "
		    "set from in the configuration", (unsigned)getuid());
	if (c->ac->maildomain != NULL && c->ac->maildomain[0] != '\0')
		snprintf(buf, size, "%s@%s", pw->pw_name, c->ac->maildomain);
	else
		snprintf(buf, size, "%s", pw->pw_name);
	return 0;
}

/* rewrite_local_senders: Postfix's sender_canonical_maps. */
static int
sender_rewrite(struct ctx *c, char *buf, size_t size)
{
	char	 local[ADDR_MAX + 1], old[ADDR_MAX + 1];
	int	 n;

	if (!is_local(c, buf, local, sizeof(local)))
		return 0;
	snprintf(old, sizeof(old), "%s", buf);
	if ((n = sender_target(c, local, buf, size)) <= 0)
		return n;
	if (strcmp(old, buf) != 0)
		change_add(c->m, "rewrote sender %s -> %s", old, buf);
	return 0;
}

/*
 * What a local sender LOCAL becomes: the account's from, else
 * LOCAL@maildomain.  1 when BUF holds it, 0 when neither is set, -1
 * when it does not fit.
 */
static int
sender_target(const struct ctx *c, const char *local, char *buf,
    size_t size)
{
	int	 n;

	if (from_usable(c->ac))
		n = snprintf(buf, size, "%s", c->ac->from);
	else if (c->ac->maildomain != NULL && c->ac->maildomain[0] != '\0')
		n = snprintf(buf, size, "%s@%s", local, c->ac->maildomain);
	else
		return 0;
	return n < 0 || (size_t)n >= size ? -1 : 1;
}

/*
 * An address without a domain, or with this host's name, localhost or
 * localdomain: mail that cron, mail(1) and daemons write.  Fills in the
 * local part.
 */
static int
is_local(const struct ctx *c, const char *addr, char *local, size_t size)
{
	const char	*at = strrchr(addr, '@');

	if (at != NULL && !is_local_domain(c, at + 1))
		return 0;
	if (at == NULL)
		snprintf(local, size, "%s", addr);
	else
		snprintf(local, size, "%.*s", (int)(at - addr), addr);
	return 1;
}

static int
is_local_domain(const struct ctx *c, const char *d)
{
	return strcasecmp(d, "localhost") == 0 ||
	    strcasecmp(d, "localdomain") == 0 ||
	    strcasecmp(d, "localhost.localdomain") == 0 ||
	    (c->host[0] != '\0' && strcasecmp(d, c->host) == 0) ||
	    (c->shorthost[0] != '\0' && strcasecmp(d, c->shorthost) == 0);
}

/* Recipient arguments; each may be a list ("a@x, b@y", msmtp). */
static int
rcpts_from_args(struct ctx *c, struct error *err)
{
	struct splitter	 sp;
	const char	*e, *why;
	size_t		 i, n;
	char		 shown[SHOWN_MAX];

	for (i = 0; i < c->cl->nrcpts; i++) {
		sp.s = c->cl->rcpts[i];
		sp.i = 0;
		sp.done = 0;
		while (split_next(&sp, &e, &n)) {
			if ((why = addr_reason(e, n)) != NULL) {
				addr_show(shown, sizeof(shown), e, n);
				return error_set(err, EX_USAGE, "invalid "
				    "address '%s': %s", shown, why);
			}
			addr_strip(&e, &n);
			if (addrs_add(&c->raw, e, n, err) == -1)
				return -1;
		}
	}
	return 0;
}

/* Add unless already there (case-insensitive); order kept, bounded. */
static int
addrs_add(struct addrs *l, const char *a, size_t n, struct error *err)
{
	size_t	 i;

	for (i = 0; i < l->n; i++)
		if (strlen(l->v[i]) == n && strncasecmp(l->v[i], a, n) == 0)
			return 0;
	if (l->n >= RCPT_MAX)
		return error_set(err, EX_USAGE, "more than %d recipients: "
		    "send the message in parts", RCPT_MAX);
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n] = xcalloc(1, n + 1);
	memcpy(l->v[l->n++], a, n);
	return 0;
}

/*
 * -t: To, Cc and Bcc; or, when the message was resent (RFC 5322 3.6.6),
 * the Resent-To, -Cc and -Bcc of the newest (first) Resent- block, as
 * Postfix and msmtp do.
 */
static int
rcpts_from_header(struct ctx *c, struct error *err)
{
	static const char *const plain[] = { "To", "Cc", "Bcc", NULL };
	static const char *const resent[] = { "Resent-To", "Resent-Cc",
	    "Resent-Bcc", NULL };
	const char *const *names = plain;
	size_t		 i, first = 0, last = c->h.nf;
	int		 j;

	if (!c->cl->read_rcpts)
		return 0;
	if (resent_block(&c->h, &first, &last))
		names = resent;
	for (i = first; i < last; i++)
		for (j = 0; names[j] != NULL; j++)
			if (field_is(&c->h, i, names[j]) &&
			    field_rcpts(c, i, err) == -1)
				return -1;
	return 0;
}

static int
field_is(const struct header *h, size_t i, const char *name)
{
	return h->f[i].namelen == strlen(name) &&
	    strncasecmp(h->buf + h->f[i].off, name, h->f[i].namelen) == 0;
}

/* Trace fields (Received, Return-Path) may sit inside a block. */
static int
resent_block(const struct header *h, size_t *first, size_t *last)
{
	size_t	 i;

	for (i = 0; i < h->nf; i++)
		if (h->f[i].namelen > 7 &&
		    strncasecmp(h->buf + h->f[i].off, "Resent-", 7) == 0)
			break;
	if (i == h->nf)
		return 0;
	*first = i;
	for (; i < h->nf; i++)
		if (!(h->f[i].namelen > 7 && strncasecmp(h->buf + h->f[i].off,
		    "Resent-", 7) == 0) && !field_is(h, i, "Received") &&
		    !field_is(h, i, "Return-Path"))
			break;
	*last = i;
	return 1;
}

struct field_walk {
	struct ctx	*c;
	struct error	*err;
	const struct field *f;
	int		 failed;
};

static int
field_rcpts(struct ctx *c, size_t i, struct error *err)
{
	struct field_walk	 w = { c, err, &c->h.f[i], 0 };
	struct alparse		 p;

	memset(&p, 0, sizeof(p));
	p.s = c->h.buf + w.f->off + w.f->valoff;
	p.n = w.f->len - w.f->valoff;
	p.cb = field_mailbox;
	p.arg = &w;
	al_parse(&p);
	return w.failed ? -1 : 0;
}

static int
field_mailbox(void *arg, const struct mailbox *mb)
{
	struct field_walk	*w = arg;
	const char		*why;
	char			 shown[SHOWN_MAX];

	if (mb->phrase)
		why = "a name without an address";
	else if (mb->toolong)
		why = "it is longer than 256 characters";
	else
		why = addr_reason(mb->addr, mb->len);
	if (why != NULL) {
		addr_show(shown, sizeof(shown), mb->addr, mb->len);
		error_set(w->err, EX_DATAERR, "invalid address '%s' in the "
		    "%.*s header: %s", shown, (int)w->f->namelen,
		    w->c->h.buf + w->f->off, why);
		return (w->failed = 1, -1);
	}
	if (addrs_add(&w->c->raw, mb->addr, mb->len, w->err) == -1)
		return (w->failed = 1, -1);
	return 0;
}

/*
 * An RFC 5322 address list with the obsolete forms of 4.4: groups,
 * comments (nested), quoted strings, angle addresses with routes, CFWS
 * between the tokens of an addr-spec, empty list elements.  Each
 * mailbox's addr-spec (tokens joined, CFWS dropped) goes to the
 * callback; its position lets set_from_header replace just the address.
 */
static void
al_parse(struct alparse *p)
{
	size_t	 ts, te;
	int	 t;
	char	 ch;

	while (!p->stop && (t = al_token(p, &ts, &te)) != 0) {
		ch = p->s[ts];
		if (p->in_angle) {
			if (t == 'w' || t == '[' || ch == '@' || ch == '.')
				mb_add(&p->angle, p->s, ts, te);
			else if (ch == ':')		/* obs-route */
				memset(&p->angle, 0, sizeof(p->angle));
			else if (ch == '>' || ((ch == ',' || ch == ';') &&
			    p->angle.addr[0] != '@')) {
				p->in_angle = 0;
				p->have_angle = 1;
				if (ch != '>')
					al_finish(p);
			}
			continue;
		}
		if (ch == ',' || ch == ';')
			al_finish(p);
		else if (p->have_angle)
			;			/* a comment-like tail */
		else if (t == 'w' || t == '[') {
			if (p->plain.lastword)
				p->plain.phrase = 1;
			mb_add(&p->plain, p->s, ts, te);
			p->plain.lastword = 1;
		} else if (ch == '@' || ch == '.') {
			mb_add(&p->plain, p->s, ts, te);
			p->plain.lastword = 0;
		} else if (ch == '<') {
			p->in_angle = 1;
			memset(&p->angle, 0, sizeof(p->angle));
		} else if (ch == ':')		/* a group's display name */
			memset(&p->plain, 0, sizeof(p->plain));
		if (p->stop)
			return;
	}
	al_finish(p);
}

/* 0 at the end, 'w' word, '[' domain literal, 's' special. */
static int
al_token(struct alparse *p, size_t *ts, size_t *te)
{
	const char	*s = p->s;
	size_t		 i;
	char		 close;

	al_skip_cfws(p);
	if ((i = p->i) >= p->n)
		return 0;
	*ts = i;
	if (s[i] == '"' || s[i] == '[') {
		close = s[i] == '"' ? '"' : ']';
		for (i++; i < p->n && s[i] != close; i++)
			if (s[i] == '\\' && i + 1 < p->n)
				i++;
		if (i < p->n)
			i++;
		*te = p->i = i;
		return close == '"' ? 'w' : '[';
	}
	if (is_atext((unsigned char)s[i])) {
		while (i < p->n && is_atext((unsigned char)s[i]))
			i++;
		*te = p->i = i;
		return 'w';
	}
	*te = p->i = i + 1;
	return 's';
}

static void
al_skip_cfws(struct alparse *p)
{
	unsigned	 depth;
	char		 ch;

	while (p->i < p->n) {
		ch = p->s[p->i];
		if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
			p->i++;
			continue;
		}
		if (ch != '(')
			return;
		for (depth = 0; p->i < p->n; p->i++) {
			ch = p->s[p->i];
			if (ch == '\\' && p->i + 1 < p->n)
				p->i++;
			else if (ch == '(')
				depth++;
			else if (ch == ')' && --depth == 0) {
				p->i++;
				break;
			}
		}
	}
}

/*
 * RFC 5322 atext, UTF-8 (RFC 6532), and the control characters other
 * than CR, LF and HT so that they end up in an address and get it
 * refused rather than silently dropped.
 */
static int
is_atext(unsigned char c)
{
	if (c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	if (c < 0x20 || c == 0x7f)
		return c != '\r' && c != '\n' && c != '\t';
	return strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static void
mb_add(struct mailbox *mb, const char *s, size_t ts, size_t te)
{
	if (mb->ntok++ == 0)
		mb->start = ts;
	mb->end = te;
	if (mb->toolong || te - ts > ADDR_MAX - mb->len) {
		mb->toolong = 1;
		return;
	}
	memcpy(mb->addr + mb->len, s + ts, te - ts);
	mb->len += te - ts;
	mb->addr[mb->len] = '\0';
}

/* A list element is complete: report its mailbox, if it has one. */
static void
al_finish(struct alparse *p)
{
	const struct mailbox	*mb = NULL;

	if (p->have_angle && p->angle.ntok > 0)
		mb = &p->angle;
	else if (!p->have_angle && p->plain.ntok > 0)
		mb = &p->plain;
	if (mb != NULL && p->cb(p->arg, mb) == -1) {
		p->stop = 1;
		return;
	}
	memset(&p->plain, 0, sizeof(p->plain));
	memset(&p->angle, 0, sizeof(p->angle));
	p->have_angle = 0;
	p->in_angle = 0;
}

/*
 * The aliases file: "local: addr, addr" and "default: addr" lines, '#'
 * comments.  Every target is checked when the file is read, so that a
 * bad line is reported with its number whichever recipient uses it.
 */
static int
aliases_load(struct ctx *c, struct error *err)
{
	FILE		*fp;
	char		 line[ALIAS_LINE_MAX + 2];
	unsigned	 lineno = 0;
	size_t		 n;
	int		 fd;

	if (c->ac->aliases == NULL)
		return 0;
	c->al.file = c->ac->aliases;
	if ((fd = open_read(c->al.file, 0)) == -1 ||
	    (fp = fdopen(fd, "r")) == NULL) {
		error_set(err, EX_CONFIG, "cannot read the aliases file %s: "
		    "%s: create it or fix the aliases directive", c->al.file,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		n = strlen(line);
		if (n > ALIAS_LINE_MAX && line[n - 1] != '\n') {
			fclose(fp);
			return error_set(err, EX_CONFIG, "%s:%u: line longer "
			    "than %d characters", c->al.file, lineno,
			    ALIAS_LINE_MAX);
		}
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (alias_line(&c->al, line, lineno, err) == -1) {
			fclose(fp);
			return -1;
		}
	}
	fclose(fp);
	return 0;
}

static int
alias_line(struct aliases *al, char *line, unsigned lineno,
    struct error *err)
{
	struct splitter	 sp;
	struct alias	*a;
	char		*p = line, *colon, shown[SHOWN_MAX];
	const char	*e, *why;
	size_t		 n, end;

	p += strspn(p, " \t");
	if (*p == '\0' || *p == '#')
		return 0;
	if ((colon = strchr(p, ':')) == NULL || colon == p)
		return error_set(err, EX_CONFIG, "%s:%u: expected "
		    "'name: address, ...'", al->file, lineno);
	for (end = (size_t)(colon - p); end > 0 && (p[end - 1] == ' ' ||
	    p[end - 1] == '\t'); end--)
		;
	if (end == 0 || strcspn(p, " \t") < end || al->n >= ALIASES_MAX)
		return error_set(err, EX_CONFIG, "%s:%u: expected "
		    "'name: address, ...' (at most %d names)", al->file,
		    lineno, ALIASES_MAX);
	al->v = xreallocarray(al->v, al->n + 1, sizeof(*al->v));
	a = &al->v[al->n++];
	memset(a, 0, sizeof(*a));
	a->name = xcalloc(1, end + 1);
	memcpy(a->name, p, end);
	sp.s = colon + 1;
	sp.i = 0;
	sp.done = 0;
	while (split_next(&sp, &e, &n)) {
		if ((why = addr_reason(e, n)) != NULL) {
			addr_show(shown, sizeof(shown), e, n);
			return error_set(err, EX_CONFIG, "%s:%u: invalid "
			    "alias target '%s': %s", al->file, lineno, shown,
			    why);
		}
		addr_strip(&e, &n);
		a->targets = xreallocarray(a->targets, a->ntargets + 1,
		    sizeof(*a->targets));
		a->targets[a->ntargets] = xcalloc(1, n + 1);
		memcpy(a->targets[a->ntargets++], e, n);
	}
	return 0;
}

/*
 * SPEC 4.2: each recipient through the aliases, then maildomain, then
 * into the final list without duplicates.
 */
static int
rcpts_expand(struct ctx *c, struct error *err)
{
	size_t	 i;

	for (i = 0; i < c->raw.n; i++)
		if (rcpt_expand(c, c->raw.v[i], err) == -1)
			return -1;
	if (c->rcpts.n == 0)
		return error_set(err, EX_USAGE, "no recipients (use -t to "
		    "take them from the headers, or name them as "
		    "arguments)");
	c->m->rcpts = xcalloc(c->rcpts.n, sizeof(*c->m->rcpts));
	for (i = 0; i < c->rcpts.n; i++)
		c->m->rcpts[i].addr = c->rcpts.v[i];
	c->m->nrcpts = c->rcpts.n;
	free(c->rcpts.v);
	c->rcpts.v = NULL;
	c->rcpts.n = 0;
	return 0;
}

static int
rcpt_expand(struct ctx *c, const char *addr, struct error *err)
{
	const struct alias	*a;
	char			 local[ADDR_MAX + 1];

	if (c->al.n > 0 && is_local(c, addr, local, sizeof(local)) &&
	    (a = alias_find(c, local)) != NULL)
		return alias_apply(c, a, addr, err);
	return rcpt_final(c, addr, err);
}

/* "default" catches the rest, but not what default itself expands to. */
static const struct alias *
alias_find(const struct ctx *c, const char *local)
{
	const struct alias	*def = NULL;
	size_t			 i;

	for (i = 0; i < c->al.n; i++) {
		if (strcasecmp(c->al.v[i].name, local) == 0)
			return &c->al.v[i];
		if (def == NULL && strcmp(c->al.v[i].name, "default") == 0)
			def = &c->al.v[i];
	}
	for (i = 0; def != NULL && i < c->depth; i++)
		if (strcmp(c->stack[i], "default") == 0)
			return NULL;
	return def;
}

static int
alias_apply(struct ctx *c, const struct alias *a, const char *addr,
    struct error *err)
{
	char	 chain[512];
	size_t	 i, o = 0;

	for (i = 0; i < c->depth; i++)
		if (strcasecmp(c->stack[i], a->name) == 0)
			break;
	if (i < c->depth || c->depth >= ALIAS_DEPTH_MAX) {
		for (; i < c->depth && o < sizeof(chain); i++)
			o += (size_t)snprintf(chain + o, sizeof(chain) - o,
			    "%s -> ", c->stack[i]);
		if (o < sizeof(chain))
			snprintf(chain + o, sizeof(chain) - o, "%s", a->name);
		return error_set(err, EX_CONFIG, "alias loop in %s: %s: fix "
		    "the aliases file", c->al.file, c->depth >=
		    ALIAS_DEPTH_MAX ? "deeper than 16 levels" : chain);
	}
	change_add(c->m, "alias %s -> %s%s", addr, a->targets[0],
	    a->ntargets > 1 ? ", ..." : "");
	c->stack[c->depth++] = a->name;
	for (i = 0; i < a->ntargets; i++)
		if (rcpt_expand(c, a->targets[i], err) == -1)
			return -1;
	c->depth--;
	return 0;
}

/*
 * Where a local recipient goes when no alias and no maildomain says
 * (nullmailer's adminaddr): local_recipient, else the account's own
 * address, so that cron without MAILTO and "mail root" reach a mailbox.
 */
static const char *
local_target(const struct ctx *c)
{
	if (c->ac->local_recipient != NULL &&
	    c->ac->local_recipient[0] != '\0')
		return c->ac->local_recipient;
	return from_usable(c->ac) ? c->ac->from : NULL;
}

static int
rcpt_final(struct ctx *c, const char *addr, struct error *err)
{
	const char	*md = c->ac->maildomain, *lr;
	char		 buf[ADDR_MAX + 1], shown[SHOWN_MAX];
	char		 local[ADDR_MAX + 1];
	int		 n;

	if (strchr(addr, '@') != NULL && (md != NULL ||
	    !is_local(c, addr, local, sizeof(local))))
		return addrs_add(&c->rcpts, addr, strlen(addr), err);
	addr_show(shown, sizeof(shown), addr, strlen(addr));
	if ((md == NULL || md[0] == '\0') && (lr = local_target(c)) != NULL) {
		if (addr_reason(lr, strlen(lr)) != NULL)
			return error_set(err, EX_CONFIG, "local_recipient "
			    "'%s' is not a valid address: fix local_recipient "
			    "(or from)", lr);
		change_add(c->m, "local recipient %s -> %s", addr, lr);
		return addrs_add(&c->rcpts, lr, strlen(lr), err);
	}
	if (md == NULL || md[0] == '\0')
		return error_set(err, EX_CONFIG, "recipient '%s' has no "
		    "domain: set local_recipient, maildomain or from, or add "
		    "it to the aliases file", shown);
	n = snprintf(buf, sizeof(buf), "%s@%s", addr, md);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return error_set(err, EX_USAGE, "recipient '%s@%s' is longer "
		    "than 256 characters", shown, md);
	if (addr_reason(buf, (size_t)n) != NULL)
		return error_set(err, EX_CONFIG, "recipient '%s' qualified "
		    "with maildomain is not a valid address: fix maildomain",
		    shown);
	change_add(c->m, "qualified recipient %s -> %s", addr, buf);
	return addrs_add(&c->rcpts, buf, (size_t)n, err);
}

/*
 * The header fixes of SPEC 4.3.  Added fields go on top; nothing else
 * changes.
 */
static int
hdr_fix(struct ctx *c, struct error *err)
{
	if (c->h.mbox_from)
		change_add(c->m, "dropped the mbox 'From ' line");
	if (c->ac->remove_bcc_headers)
		bcc_remove(c);
	if (c->ac->rewrite_local_senders)
		senders_rewrite(c);
	if (from_fix(c, err) == -1)
		return -1;
	if (c->ac->set_date_header != TRI_OFF &&
	    field_find(&c->h, "Date") == -1)
		date_add(c);
	if (c->ac->set_msgid_header != TRI_OFF &&
	    field_find(&c->h, "Message-ID") == -1 &&
	    msgid_add(c, err) == -1)
		return -1;
	if (c->h.end == HDR_BODYLINE)
		change_add(c->m, "inserted an empty line before the body");
	return 0;
}

/*
 * rewrite_local_senders in the header too (SPEC 3), as Postfix's
 * sender_canonical_maps does by default: providers that bind From to
 * the login (GMX, WEB.DE, Gmail, Microsoft 365) refuse or rewrite
 * "From: root".
 */
static void
senders_rewrite(struct ctx *c)
{
	static const char *const names[] = { "From", "Sender", "Reply-To" };
	size_t	 k;
	int	 i;

	/* set_from_header off: the From header is left as it is. */
	for (k = c->ac->set_from_header == TRI_OFF ? 1 : 0;
	    k < sizeof(names) / sizeof(names[0]); k++)
		if ((i = field_find(&c->h, names[k])) != -1)
			(void)field_local_replace(c, i, NULL);
}

/* Always, not only with -t: bsd-mailx writes a Bcc header. */
static void
bcc_remove(struct ctx *c)
{
	struct field	*f;
	size_t		 i;

	for (i = 0; i < c->h.nf; i++) {
		if (!field_is(&c->h, i, "Bcc") &&
		    !field_is(&c->h, i, "Resent-Bcc"))
			continue;
		f = &c->h.f[i];
		f->removed = 1;
		change_add(c->m, "removed %.*s: (%u line%s)",
		    (int)f->namelen, c->h.buf + f->off, f->lines,
		    f->lines == 1 ? "" : "s");
	}
}

static int
from_fix(struct ctx *c, struct error *err)
{
	const char	*addr;
	char		 value[1024];
	int		 i;

	if (c->ac->set_from_header == TRI_OFF)
		return 0;
	if ((addr = from_header_addr(c)) == NULL)
		return 0;
	if ((i = field_find(&c->h, "From")) != -1) {
		if (c->ac->set_from_header == TRI_ON)
			return field_local_replace(c, i, addr);
		return 0;
	}
	if (from_value(c, addr, value, sizeof(value), err) == -1)
		return -1;
	added_line(c, "From: %s", value);
	change_add(c->m, "added From: %s", value);
	return 0;
}

static int
field_find(const struct header *h, const char *name)
{
	size_t	 i;

	for (i = 0; i < h->nf; i++)
		if (!h->f[i].removed && field_is(h, i, name))
			return (int)i;
	return -1;
}

/* The null sender puts the account's address in From, if it has one. */
static const char *
from_header_addr(const struct ctx *c)
{
	if (c->m->sender[0] != '\0')
		return c->m->sender;
	return from_usable(c->ac) ? c->ac->from : NULL;
}

/*
 * "NAME <addr>" from -F or from_full_name.  The name is checked again
 * here (sendmail.c and config.c refuse CR and LF already): a header
 * value we build must never be able to start a header line of its own.
 */
static int
from_value(struct ctx *c, const char *addr, char *out, size_t size,
    struct error *err)
{
	const char	*name = c->cl->fullname;
	int		 code = EX_USAGE;
	char		 enc[FULLNAME_MAX * 3];

	if (name == NULL) {
		name = c->ac->from_full_name;
		code = EX_CONFIG;
	}
	if (name == NULL || name[0] == '\0') {
		snprintf(out, size, "%s", addr);
		return 0;
	}
	if (has_ctl(name))
		return error_set(err, code, "the full name for the From "
		    "header has control characters: remove them from %s",
		    code == EX_USAGE ? "-F" : "from_full_name");
	if (strlen(name) > FULLNAME_MAX)
		return error_set(err, code, "the full name for the From "
		    "header is longer than %d octets: shorten %s",
		    FULLNAME_MAX, code == EX_USAGE ? "-F" : "from_full_name");
	name_encode(name, enc, sizeof(enc));
	snprintf(out, size, "%s <%s>", enc, addr);
	return 0;
}

/*
 * A display name as an RFC 5322 phrase: as is when it is atoms and
 * single spaces, a quoted string when it has specials, RFC 2047
 * B-encoded UTF-8 words (at most 75 characters each) when it is not
 * ASCII.
 */
static void
name_encode(const char *name, char *out, size_t size)
{
	const unsigned char	*p = (const unsigned char *)name;
	size_t			 n = strlen(name), i, k, o = 0;
	int			 quote = 0;

	if (has_8bit(name)) {
		for (i = 0; i < n; i += k) {
			k = n - i < 45 ? n - i : 45;
			while (k < n - i && k > 1 && (p[i + k] & 0xc0) == 0x80)
				k--;	/* never split a UTF-8 sequence */
			if (o > 0 && o + 1 < size)
				out[o++] = ' ';
			b64_word(p + i, k, out + o, size - o);
			o += strlen(out + o);
		}
		return;
	}
	if (name[0] == ' ' || name[n - 1] == ' ' || strstr(name, "  "))
		quote = 1;
	for (i = 0; i < n; i++)
		if (name[i] != ' ' && !is_atext(p[i]))
			quote = 1;
	if (!quote) {
		snprintf(out, size, "%s", name);
		return;
	}
	out[o++] = '"';
	for (i = 0; i < n && o + 3 < size; i++) {
		if (name[i] == '"' || name[i] == '\\')
			out[o++] = '\\';
		out[o++] = name[i];
	}
	out[o++] = '"';
	out[o] = '\0';
}

static void
b64_word(const unsigned char *p, size_t n, char *out, size_t size)
{
	static const char	 tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	char			 b[64];
	size_t			 i, o = 0;
	unsigned		 v;

	for (i = 0; i < n; i += 3) {
		v = (unsigned)p[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		b[o++] = tab[(v >> 18) & 63];
		b[o++] = tab[(v >> 12) & 63];
		b[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		b[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	b[o] = '\0';
	snprintf(out, size, "=?UTF-8?B?%s?=", b);
}

struct from_walk {
	unsigned	 count;
	struct mailbox	 first;
};

/*
 * A From, Sender or Reply-To that holds exactly one local address (root,
 * root@thishost) gets ADDR, or, when ADDR is NULL, the account's address
 * as rewrite_local_senders gives it; the display name stays.  A name
 * written as a comment, as cron writes it ("root (Cron Daemon)"),
 * becomes the display name: "Cron Daemon <alice@example.org>", as
 * Postfix's sender_canonical_maps leaves it readable.
 */
static int
field_local_replace(struct ctx *c, int i, const char *addr)
{
	struct field	*f = &c->h.f[i];
	struct from_walk w;
	struct alparse	 p;
	char		 local[ADDR_MAX + 1], target[ADDR_MAX + 2];
	char		 name[FULLNAME_MAX + 1], enc[FULLNAME_MAX * 3], *v;
	const char	*base = c->h.buf + f->off, *val = base + f->valoff;
	size_t		 a, b, vlen = f->len - f->valoff, end, n;

	memset(&w, 0, sizeof(w));
	memset(&p, 0, sizeof(p));
	p.s = val;
	p.n = vlen;
	p.cb = from_one;
	p.arg = &w;
	al_parse(&p);
	if (w.count != 1 || w.first.toolong || w.first.phrase ||
	    !is_local(c, w.first.addr, local, sizeof(local)))
		return 0;
	if (addr == NULL) {
		if (sender_target(c, local, target, sizeof(target)) != 1 ||
		    strcmp(target, w.first.addr) == 0)
			return 0;
		addr = target;
	}
	a = w.first.start;
	b = w.first.end;
	/* The line end(s) of the field, kept as they are. */
	for (end = vlen; end > 0 && (val[end - 1] == '\r' ||
	    val[end - 1] == '\n'); end--)
		;
	if (!angle_before(val, a) && comment_text(val, a, b, end, name,
	    sizeof(name))) {
		name_encode(name, enc, sizeof(enc));
		n = strlen(enc) + strlen(addr) + 8;
		v = xcalloc(1, n);
		snprintf(v, n, " %s <%s>", enc, addr);
		a = 0;
		b = end;
	} else
		v = xstrdup(addr);
	n = strlen(v);
	f->repllen = f->valoff + a + n + (vlen - b);
	free(f->repl);
	f->repl = xcalloc(1, f->repllen + 1);
	memcpy(f->repl, base, f->valoff + a);
	memcpy(f->repl + f->valoff + a, v, n);
	memcpy(f->repl + f->valoff + a + n, val + b, vlen - b);
	change_add(c->m, "replaced %.*s: %s -> %.*s", (int)f->namelen, base,
	    w.first.addr, (int)(strlen(v) - (v[0] == ' ')), v + (v[0] == ' '));
	free(v);
	return 0;
}

/* Whether the address at A is written <like this>. */
static int
angle_before(const char *val, size_t a)
{
	while (a > 0 && is_blank(val[a - 1]))
		a--;
	return a > 0 && val[a - 1] == '<';
}

/*
 * The text of the first comment around the address (outside [a, b),
 * before END), trimmed, in NAME; 0 when there is none or it would need
 * more than a plain name can hold.
 */
static int
comment_text(const char *val, size_t a, size_t b, size_t end, char *name,
    size_t size)
{
	size_t	 i, o = 0;
	int	 depth = 0, found = 0;

	for (i = 0; i < end; i++) {
		if (i >= a && i < b)
			continue;
		if (depth == 0 && val[i] == '"')
			return 0;	/* a quoted word: not cron's form */
		if (val[i] == '(' && depth++ == 0) {
			if (found)
				break;
			found = 1;
			continue;
		}
		if (val[i] == ')' && depth > 0 && --depth == 0)
			continue;
		if (depth == 0)
			continue;
		if (val[i] == '\\' && i + 1 < end)
			i++;
		if (val[i] == '\r' || val[i] == '\n')
			continue;
		if (o + 1 >= size)
			return 0;
		name[o++] = val[i];
	}
	name[o] = '\0';
	str_trim_copy(name);
	return found && name[0] != '\0' && !has_ctl(name);
}

/* str_trim, but in place at the start of the buffer. */
static void
str_trim_copy(char *s)
{
	char	*t = str_trim(s);

	if (t != s)
		memmove(s, t, strlen(t) + 1);
}

static int
from_one(void *arg, const struct mailbox *mb)
{
	struct from_walk	*w = arg;

	if (w->count++ == 0)
		w->first = *mb;
	return 0;
}

/* RFC 5322 3.3 in the local zone; English names whatever the locale. */
static void
date_add(struct ctx *c)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed",
	    "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
	    "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm	 tm;
	time_t		 t = time(NULL);
	long		 off;
	char		 v[64];

	localtime_r(&t, &tm);
	off = tm.tm_gmtoff / 60;
	snprintf(v, sizeof(v), "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
	added_line(c, "Date: %s", v);
	change_add(c->m, "added Date: %s", v);
}

/*
 * <UTC time.20 random base32 characters@the sender's domain>: unique
 * without asking DNS for this host's name.
 */
static int
msgid_add(struct ctx *c, struct error *err)
{
	static const char	 b32[] = "abcdefghijklmnopqrstuvwxyz234567";
	unsigned char		 r[13];
	char			 rnd[21], stamp[32], v[ADDR_MAX + 64];
	const char		*dom = NULL, *at;
	struct tm		 tm;
	time_t			 t = time(NULL);
	ssize_t			 n;
	size_t			 i, got = 0;
	unsigned		 bits = 0, acc = 0, o = 0;

	while (got < sizeof(r)) {
		if ((n = getrandom(r + got, sizeof(r) - got, 0)) == -1) {
			if (errno == EINTR)
				continue;
			return error_set(err, EX_OSERR, "getrandom: %s",
			    strerror(errno));
		}
		got += (size_t)n;
	}
	for (i = 0; i < sizeof(r) && o < 20; i++) {
		acc = (acc << 8) | r[i];
		for (bits += 8; bits >= 5 && o < 20; bits -= 5)
			rnd[o++] = b32[(acc >> (bits - 5)) & 31];
	}
	rnd[o] = '\0';
	explicit_bzero(r, sizeof(r));
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
	if ((at = from_header_addr(c)) != NULL && (at = strrchr(at, '@')))
		dom = at + 1;
	else if (c->ac->maildomain != NULL && c->ac->maildomain[0] != '\0')
		dom = c->ac->maildomain;
	else
		dom = c->host[0] != '\0' ? c->host : "localhost";
	snprintf(v, sizeof(v), "<%s.%s@%s>", stamp, rnd, dom);
	added_line(c, "Message-ID: %s", v);
	change_add(c->m, "added Message-ID: %s", v);
	return 0;
}

static void
added_line(struct ctx *c, const char *fmt, ...)
{
	va_list	 ap;
	char	 buf[2048];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (c->nadded < sizeof(c->added) / sizeof(c->added[0]))
		c->added[c->nadded++] = xstrdup(buf);
}

/*
 * An unlinked file in TMPDIR: O_TMPFILE where the file system has it,
 * else mkstemp and unlink, so nothing is left behind by a crash.
 */
static int
spool_open(struct spool *sp, struct error *err)
{
	const char	*dir = getenv("TMPDIR");
	char		 path[4096];
	int		 fd;

	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	sp->dir = dir;
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd == -1) {
		snprintf(path, sizeof(path), "%s/smarthost.XXXXXX", dir);
		if ((fd = mkostemp(path, O_CLOEXEC)) != -1)
			unlink(path);
	}
	if (fd == -1)
		return error_set(err, EX_IOERR, "cannot create a spool file "
		    "in %s: %s: set TMPDIR to a writable directory", dir,
		    strerror(errno));
	sp->fd = fd;
	return 0;
}

/*
 * The queue's file system filled up while the message was read: what
 * is written so far (and DONE octets of the buffer) is copied to a
 * spool file in TMPDIR, which takes the rest.  The message is then sent
 * without being queued (the commit fails for lack of room), rather
 * than lost.
 */
static int
sp_move(struct spool *sp, off_t done)
{
	struct error	 ignored;
	struct spool	 tmp;
	char		 buf[IOBUF_SIZE];
	off_t		 off = 0, total = sp->size + done;
	ssize_t		 n;

	memset(&tmp, 0, sizeof(tmp));
	if (spool_open(&tmp, &ignored) == -1)
		return -1;
	while (off < total) {
		n = pread(sp->fd, buf, total - off < (off_t)sizeof(buf) ?
		    (size_t)(total - off) : sizeof(buf), off);
		if (n <= 0 || write(tmp.fd, buf, (size_t)n) != n) {
			close(tmp.fd);
			return -1;
		}
		off += n;
	}
	sp->queue_fd = sp->fd;
	sp->fd = tmp.fd;
	sp->dir = tmp.dir;
	sp->moved = 1;
	return 0;
}

static int
spool_write_all(struct ctx *c, struct error *err)
{
	struct spool	*sp = c->sp;
	struct field	*f;
	size_t		 i;

	for (i = 0; i < c->nadded; i++)
		if (has_ctl(c->added[i]))	/* never a line of its own */
			return error_set(err, EX_SOFTWARE, "internal error: "
			    "a header field to add has a control character");
	for (i = 0; i < c->nadded; i++)
		if (sp_text(sp, c->added[i], strlen(c->added[i]), err) == -1 ||
		    sp_eol(sp, err) == -1)
			return -1;
	for (i = 0; i < c->h.nf; i++) {
		f = &c->h.f[i];
		if (f->removed)
			continue;
		if (sp_block(sp, f->repl ? f->repl : c->h.buf + f->off,
		    f->repl ? f->repllen : f->len, err) == -1)
			return -1;
	}
	if ((c->h.end != HDR_EOF || (c->h.nf == 0 && c->nadded > 0)) &&
	    sp_eol(sp, err) == -1)
		return -1;
	if (body_copy(c->rd, sp, c->cl->dot_ends, err) == -1 ||
	    sp_flush(sp, err) == -1)
		return -1;
	if (sp->nbroken > 0) {
		c->m->long_lines = 1;
		change_add(c->m, "broke %u line%s longer than %d octets",
		    sp->nbroken, sp->nbroken == 1 ? "" : "s", TEXT_LINE_MAX);
	}
	c->m->size = sp->size;
	c->m->eightbit = sp->eightbit;
	c->m->has_nul = sp->nul;
	return 0;
}

/*
 * Text without line endings.  Past 998 octets a line is broken the way
 * Postfix's smtp_line_length_limit does: CRLF and a space, which also
 * makes a long header line a folded one.  A line of exactly 998 octets
 * stays whole.
 */
static int
sp_text(struct spool *sp, const void *data, size_t n, struct error *err)
{
	const unsigned char	*p = data;
	size_t			 k;

	while (n > 0) {
		if (sp->col == TEXT_LINE_MAX) {
			if (sp_put(sp, "\r\n ", 3, err) == -1)
				return -1;
			sp->col = 1;
			if (!sp->broken)
				sp->nbroken++;
			sp->broken = 1;
		}
		k = n < TEXT_LINE_MAX - sp->col ? n : TEXT_LINE_MAX - sp->col;
		if (sp_put(sp, p, k, err) == -1)
			return -1;
		sp->col += k;
		p += k;
		n -= k;
	}
	return 0;
}

/*
 * Note 8-bit octets and NULs in a block going to the spool.  The line
 * endings and line breaks added are neither, so this says the same as
 * a look at every octet of text would, at a small part of the cost:
 * once a block, 32 octets a step, and no more once both were seen.
 */
static void
sp_scan(struct spool *sp, const unsigned char *p, size_t n)
{
	uint64_t	 w[4], any = 0;
	size_t		 i;

	if (!sp->nul && memchr(p, '\0', n) != NULL)
		sp->nul = 1;
	if (sp->eightbit)
		return;
	for (i = 0; i + sizeof(w) <= n; i += sizeof(w)) {
		memcpy(w, p + i, sizeof(w));
		any |= w[0] | w[1] | w[2] | w[3];
	}
	for (; i < n; i++)
		any |= p[i];
	sp->eightbit = (any & 0x8080808080808080ULL) != 0;
}

static int
sp_eol(struct spool *sp, struct error *err)
{
	sp->col = 0;
	sp->broken = 0;
	if (sp->len + 2 < sizeof(sp->buf)) {
		sp->buf[sp->len++] = '\r';
		sp->buf[sp->len++] = '\n';
		return 0;
	}
	return sp_put(sp, "\r\n", 2, err);
}

static int
sp_put(struct spool *sp, const void *data, size_t n, struct error *err)
{
	const unsigned char	*p = data;
	size_t			 k;

	/* The usual case, a line that fits with room to spare. */
	if (n < sizeof(sp->buf) - sp->len) {
		memcpy(sp->buf + sp->len, p, n);
		sp->len += n;
		return 0;
	}
	while (n > 0) {
		k = sizeof(sp->buf) - sp->len;
		if (k > n)
			k = n;
		memcpy(sp->buf + sp->len, p, k);
		sp->len += k;
		p += k;
		n -= k;
		if (sp->len == sizeof(sp->buf) && sp_flush(sp, err) == -1)
			return -1;
	}
	return 0;
}

static int
sp_flush(struct spool *sp, struct error *err)
{
	size_t	 o = 0;
	ssize_t	 n;

	/* Refused here, before it fills a disk (or the system queue). */
	if (sp->max > 0 && sp->size + (off_t)sp->len > sp->max)
		return error_set(err, EX_DATAERR, "the message is larger than "
		    "max_message_size (%lld octets): not sent and not kept; "
		    "send it another way, or raise max_message_size",
		    (long long)sp->max);

	if (!sp->eightbit || !sp->nul)
		sp_scan(sp, sp->buf, sp->len);
	while (o < sp->len) {
		n = write(sp->fd, sp->buf + o, sp->len - o);
		if (n == -1 && errno == EINTR)
			continue;
		/* A full queue: the message goes on in TMPDIR, unqueued. */
		if (n == -1 && (errno == ENOSPC || errno == EDQUOT) &&
		    sp->queue && !sp->moved && sp_move(sp, (off_t)o) == 0)
			continue;
		if (n == -1)
			return error_set(err, EX_IOERR, "cannot write the "
			    "spool file in %s: %s: free space there or set "
			    "TMPDIR", sp->dir, strerror(errno));
		o += (size_t)n;
	}
	sp->size += (off_t)sp->len;
	sp->len = 0;
	return 0;
}

/* Stored header text: lines that each end in CRLF. */
static int
sp_block(struct spool *sp, const char *p, size_t n, struct error *err)
{
	const char	*cr;

	while (n > 0) {
		if ((cr = memchr(p, '\r', n)) == NULL)
			cr = p + n;
		if (sp_text(sp, p, (size_t)(cr - p), err) == -1)
			return -1;
		if (cr == p + n)
			break;
		if (sp_eol(sp, err) == -1)
			return -1;
		n -= (size_t)(cr - p) + 2;
		p = cr + 2;
	}
	return 0;
}

/* The rest of the input, streamed; a missing final line end is added. */
static int
body_copy(struct reader *rd, struct spool *sp, int dot_ends,
    struct error *err)
{
	struct piece	 pc;
	int		 bol = 1;

	if (rd->ended)
		return 0;
	for (;;) {
		if (rd_piece(rd, &pc, err) == -1)
			return -1;
		if (bol && dot_ends && is_lone_dot(&pc)) {
			rd->ended = 1;
			return 0;
		}
		if (pc.eof && pc.len == 0)
			return bol ? 0 : sp_eol(sp, err);
		if (sp_text(sp, pc.p, pc.len, err) == -1)
			return -1;
		if (pc.eol && sp_eol(sp, err) == -1)
			return -1;
		bol = pc.eol;
		rd_consume(rd, &pc);
	}
}

/* SMTPUTF8 only when an envelope address needs it (SPEC 4.4). */
static void
envelope_flags(struct ctx *c)
{
	struct message	*m = c->m;
	size_t		 i;

	if (c->cl->body != NULL && strcasecmp(c->cl->body, "8BITMIME") == 0)
		m->eightbit = 1;
	m->smtputf8 = has_8bit(m->sender);
	for (i = 0; i < m->nrcpts; i++)
		if (has_8bit(m->rcpts[i].addr))
			m->smtputf8 = 1;
}

static int
has_8bit(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

static void
ctx_free(struct ctx *c)
{
	size_t	 i, j;

	if (c->sp->fd != -1)
		close(c->sp->fd);
	free(c->sp);
	free(c->rd);
	for (i = 0; i < c->h.nf; i++)
		free(c->h.f[i].repl);
	free(c->h.f);
	free(c->h.buf);
	for (i = 0; i < c->al.n; i++) {
		for (j = 0; j < c->al.v[i].ntargets; j++)
			free(c->al.v[i].targets[j]);
		free(c->al.v[i].targets);
		free(c->al.v[i].name);
	}
	free(c->al.v);
	for (i = 0; i < c->raw.n; i++)
		free(c->raw.v[i]);
	free(c->raw.v);
	for (i = 0; i < c->rcpts.n; i++)
		free(c->rcpts.v[i]);
	free(c->rcpts.v);
	for (i = 0; i < c->nadded; i++)
		free(c->added[i]);
}

void
message_free(struct message *m)
{
	size_t	 i;

	if (m->fd != -1)
		close(m->fd);
	free(m->sender);
	for (i = 0; i < m->nrcpts; i++) {
		free(m->rcpts[i].addr);
		free(m->rcpts[i].why);
	}
	free(m->rcpts);
	for (i = 0; i < m->nchanges; i++)
		free(m->changes[i]);
	free(m->changes);
	memset(m, 0, sizeof(*m));
	m->fd = -1;
}

/* A recipient's new state, and the relay's words about it, if any. */
void
rcpt_set(struct rcpt *r, enum rcpt_state state, const char *why)
{
	r->state = state;
	r->unreported = state == RCPT_REFUSED;
	free(r->why);
	r->why = why != NULL && *why != '\0' ? xstrdup(why) : NULL;
}

size_t
rcpt_count(const struct message *m, enum rcpt_state state)
{
	size_t	 i, n = 0;

	for (i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].state == state)
			n++;
	return n;
}

/* SPDX-License-Identifier: ISC */
/*
 * Failure notices (SPEC 8): when recipients are refused for good, or a
 * message is still not delivered after queue_max_age, a short RFC 3464
 * delivery status notification goes to notify_to (default the envelope
 * sender) through the same relay.  It is queued like any message, so a
 * relay that is down now gets it later.
 *
 * Its envelope sender is the account's own address: submission relays
 * bind the sender to the login and refuse a null one.  It says
 * "Auto-Submitted: auto-replied", and no notice is made about a
 * message with a null sender, about a notice or about anything
 * auto-submitted, so two machines cannot loop.
 */
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "smarthost.h"

#define NOTICE_HEADERS_MAX	(64 * 1024)	/* of the original, quoted */

static char	*original_headers(const struct message *, size_t *);
static int	 auto_submitted(const char *, size_t);
static const char *header_value(const char *, size_t, const char *,
		    size_t *);
static void	 status_code(const char *, int, char *, size_t);
static void	 notice_text(FILE *, const struct account *,
		    const struct message *, const char *, size_t, int,
		    const char *);
static int	 notice_fd(const struct account *, const struct message *,
		    const char *, size_t, int, const char *, struct error *);

/*
 * The notice about M's refused recipients (those still unreported),
 * read and queued: OUT and Q are the new message and its entry, locked.
 * Returns 0 when queued, 1 when none is due, -1 on error.
 */
int
notice_queue(const struct account *a, const struct message *m, int expired,
    struct message *out, struct qentry *q, struct error *e)
{
	struct cmdline	 cl;
	char		*hdr, *to;
	size_t		 hlen;
	int		 fd, spool = -1, rc = 1;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	if (!a->notify || m->sender == NULL || m->sender[0] == '\0' ||
	    a->from == NULL || a->from[0] == '\0' ||
	    strpbrk(a->from, "?*[") != NULL)
		return 1;
	if ((hdr = original_headers(m, &hlen)) == NULL)
		return error_set(e, EX_IOERR, "cannot read the message to "
		    "write a failure notice: %s", strerror(errno));
	if (auto_submitted(hdr, hlen)) {
		free(hdr);
		return 1;
	}
	to = a->notify_to != NULL && a->notify_to[0] != '\0' ? a->notify_to :
	    m->sender;
	if ((fd = notice_fd(a, m, hdr, hlen, expired, to, e)) == -1) {
		free(hdr);
		return -1;
	}
	free(hdr);
	memset(&cl, 0, sizeof(cl));
	cl.mode = MODE_SEND;
	cl.from = a->from;
	cl.rcpts = &to;
	cl.nrcpts = 1;
	if (queue_spool(a, &spool, e) == -1 ||
	    message_read(fd, spool, &cl, a, out, e) == -1) {
		if (spool != -1 && out->fd != spool)
			close(spool);
		rc = -1;
	} else if (queue_commit(a, out, q, e) == -1) {
		message_free(out);
		rc = -1;
	} else
		rc = 0;
	close(fd);
	return rc;
}

/* The header block of the message, as spooled (CRLF), without the body. */
static char *
original_headers(const struct message *m, size_t *len)
{
	size_t	 max = NOTICE_HEADERS_MAX, n = 0;
	char	*buf, *end;
	ssize_t	 k;

	if ((off_t)max > m->size)
		max = (size_t)m->size;
	buf = xcalloc(1, max + 1);
	while (n < max) {
		k = pread(m->fd, buf + n, max - n, (off_t)n);
		if (k == -1 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	if (n < max) {
		free(buf);
		errno = EIO;
		return NULL;
	}
	buf[n] = '\0';
	if ((end = strstr(buf, "\r\n\r\n")) != NULL)
		n = (size_t)(end - buf) + 2;
	else if ((end = memrchr(buf, '\n', n)) != NULL)
		n = (size_t)(end - buf) + 1;	/* cut at a line end */
	buf[n] = '\0';
	*len = n;
	return buf;
}

/*
 * RFC 3834: an Auto-Submitted other than "no", or a delivery report
 * (this is how other MTAs' bounces look): never answered.
 */
static int
auto_submitted(const char *hdr, size_t len)
{
	const char	*v;
	size_t		 n;

	if ((v = header_value(hdr, len, "Auto-Submitted", &n)) != NULL &&
	    !(n >= 2 && strncasecmp(v, "no", 2) == 0 &&
	    (n == 2 || v[2] == ';' || isspace((unsigned char)v[2]))))
		return 1;
	if ((v = header_value(hdr, len, "Content-Type", &n)) != NULL &&
	    n > 16 && strncasecmp(v, "multipart/report", 16) == 0 &&
	    memmem(v, n, "delivery-status", 15) != NULL)
		return 1;
	return 0;
}

/* The first NAME field's value (its first line, blanks trimmed). */
static const char *
header_value(const char *hdr, size_t len, const char *name, size_t *n)
{
	const char	*p = hdr, *end = hdr + len, *eol;
	size_t		 nl = strlen(name);

	for (; p < end; p = eol + 1) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			eol = end;
		if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 &&
		    p[nl] == ':') {
			p += nl + 1;
			while (p < eol && (*p == ' ' || *p == '\t'))
				p++;
			*n = (size_t)(eol - p);
			while (*n > 0 && isspace((unsigned char)p[*n - 1]))
				(*n)--;
			return p;
		}
		if (eol == end)
			break;
	}
	return NULL;
}

/*
 * The RFC 3463 status of a refused recipient: the enhanced code of the
 * relay's reply, else its class; 4.4.7 for an expired message.
 */
static void
status_code(const char *why, int expired, char *buf, size_t size)
{
	const char	*p = why != NULL ? why : "";
	int		 cls, sub, det, k = 0;

	if (expired) {
		snprintf(buf, size, "4.4.7");
		return;
	}
	if (strlen(p) > 4 && isdigit((unsigned char)p[0]) && p[3] == ' ' &&
	    sscanf(p + 4, "%1d.%3d.%3d%n", &cls, &sub, &det, &k) == 3 &&
	    k > 0 && (p[4 + k] == ' ' || p[4 + k] == '\0') &&
	    (cls == 4 || cls == 5)) {
		snprintf(buf, size, "%d.%d.%d", cls, sub, det);
		return;
	}
	snprintf(buf, size, "%c.0.0", p[0] == '4' ? '4' : '5');
}

/* The notice itself, LF line ends (message_read makes them CRLF). */
static void
notice_text(FILE *fp, const struct account *a, const struct message *m,
    const char *hdr, size_t hlen, int expired, const char *to)
{
	char		 boundary[64], status[16], host[256];
	const struct rcpt *r;
	size_t		 i;
	time_t		 now = time(NULL);

	if (gethostname(host, sizeof(host)) == -1 || host[0] == '\0')
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(boundary, sizeof(boundary), "%lld.%ld/%s", (long long)now,
	    (long)getpid(), "smarthost");
	fprintf(fp, "From: Mail Delivery System <%s>\nTo: %s\n"
	    "Subject: %s\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\n"
	    "\tboundary=\"%s\"\n\n", a->from, to, expired ?
	    "Undelivered Mail: delivery time expired" :
	    "Undelivered Mail Returned to Sender", boundary);
	fprintf(fp, "This is a MIME-encapsulated message.\n\n--%s\n"
	    "Content-Description: Notification\n"
	    "Content-Type: text/plain; charset=utf-8\n\n"
	    "This is smarthost on %s, relaying through %s.\n\n"
	    "Your message could not be delivered to %s:\n\n",
	    boundary, host, a->host != NULL ? a->host : "the relay",
	    expired ? "these recipients within queue_max_age" :
	    "these recipients");
	for (i = 0; i < m->nrcpts; i++) {
		r = &m->rcpts[i];
		if (r->unreported)
			fprintf(fp, "<%s>: %s\n", r->addr, r->why != NULL ?
			    r->why : "refused");
	}
	fprintf(fp, "\nA copy of the message is in %s on %s.\n",
	    a->dead_letter != NULL ? a->dead_letter : "dead.letter", host);
	fprintf(fp, "\n--%s\nContent-Description: Delivery report\n"
	    "Content-Type: message/delivery-status\n\n"
	    "Reporting-MTA: dns; %s\n", boundary, host);
	for (i = 0; i < m->nrcpts; i++) {
		r = &m->rcpts[i];
		if (!r->unreported)
			continue;
		status_code(r->why, expired, status, sizeof(status));
		fprintf(fp, "\nFinal-Recipient: rfc822; %s\nAction: failed\n"
		    "Status: %s\n", r->addr, status);
		if (!expired && r->why != NULL && isdigit((unsigned char)
		    r->why[0]))
			fprintf(fp, "Remote-MTA: dns; %s\nDiagnostic-Code: smtp; "
			    "%s\n", a->host != NULL ? a->host : "relay",
			    r->why);
	}
	fprintf(fp, "\n--%s\nContent-Description: Undelivered Message "
	    "Headers\nContent-Type: text/rfc822-headers\n\n", boundary);
	/* A NUL that got the message refused must not refuse the notice. */
	for (i = 0; i < hlen; i++)
		if (hdr[i] != '\r')
			fputc(hdr[i] != '\0' ? hdr[i] : '?', fp);
	fprintf(fp, "\n--%s--\n", boundary);
}

/* The notice in an unlinked file of TMPDIR, positioned at its start. */
static int
notice_fd(const struct account *a, const struct message *m, const char *hdr,
    size_t hlen, int expired, const char *to, struct error *e)
{
	const char	*tmp = getenv("TMPDIR");
	FILE		*fp;
	int		 fd;

	if (tmp == NULL || *tmp != '/')
		tmp = "/tmp";
	if ((fd = open(tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) == -1)
		return error_set(e, EX_IOERR, "cannot write a failure notice "
		    "in %s: %s", tmp, strerror(errno));
	if ((fp = fdopen(dup(fd), "w")) == NULL) {
		close(fd);
		return error_set(e, EX_OSERR, "fdopen: %s", strerror(errno));
	}
	notice_text(fp, a, m, hdr, hlen, expired, to);
	if (fclose(fp) != 0 || lseek(fd, 0, SEEK_SET) == -1) {
		close(fd);
		return error_set(e, EX_IOERR, "cannot write a failure notice "
		    "in %s: %s", tmp, strerror(errno));
	}
	return fd;
}

/* SPDX-License-Identifier: ISC */
/*
 * Errors, warnings and the -v trace on stderr; small allocation helpers.
 * The trace level is the one piece of global mutable state (STYLE.md).
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "smarthost.h"

int		 trace_level;
static const char *progname = "smarthost";	/* set once, at start */

void
log_init(const char *name)
{
	const char	*p;

	if (name == NULL || *name == '\0')
		return;
	p = strrchr(name, '/');
	progname = p != NULL ? p + 1 : name;
}

int
error_set(struct error *e, int code, const char *fmt, ...)
{
	va_list	 ap;

	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

/* Keep the relay's reply with its control characters made harmless. */
void
error_reply(struct error *e, const char *reply)
{
	sanitize(e->reply, sizeof(e->reply), reply);
}

/*
 * Copy text a peer sent, replacing every control character but '\n'
 * with '?', so that server text can never move the cursor, clear the
 * screen or forge a line of our own output.
 */
void
sanitize(char *dst, size_t size, const char *src)
{
	size_t		 i;
	unsigned char	 c;

	if (size == 0)
		return;
	for (i = 0; i + 1 < size && src[i] != '\0'; i++) {
		c = (unsigned char)src[i];
		dst[i] = (c < 0x20 && c != '\n') || c == 0x7f ? '?' : (char)c;
	}
	dst[i] = '\0';
}

/*
 * Every notice is one line with no control character, whatever went
 * into it: relay-controlled text (AUTH keywords, certificate names,
 * replies) can never move the cursor or forge a line of ours.  This is
 * the one place that guarantees it for stderr.
 */
static void
vlog(const char *prefix, const char *fmt, va_list ap)
{
	char	 buf[2048];
	size_t	 i;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	for (i = 0; buf[i] != '\0'; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
	fprintf(stderr, "%s: %s%s\n", progname, prefix, buf);
}

/*
 * A warning is said once per run: the configuration is read once per
 * account a queue run looks at, and its warnings would repeat.
 */
void
log_warn(const char *fmt, ...)
{
	static unsigned long	 said[32];
	static size_t		 nsaid;
	char			 buf[2048];
	unsigned long		 h = 5381;
	size_t			 i;
	va_list			 ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	for (i = 0; buf[i] != '\0'; i++)
		h = h * 33 + (unsigned char)buf[i];
	for (i = 0; i < nsaid; i++)
		if (said[i] == h)
			return;
	if (nsaid < sizeof(said) / sizeof(said[0]))
		said[nsaid++] = h;
	log_notice("warning: %s", buf);
}

void
log_notice(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
}

void
trace(const char *fmt, ...)
{
	char	 buf[REPLY_LINE_MAX + 64];
	va_list	 ap;

	if (trace_level == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	sanitize(buf, sizeof(buf), buf);
	fprintf(stderr, "%s\n", buf);
}

static void
oom(void)
{
	fprintf(stderr, "%s: out of memory\n", progname);
	exit(EX_OSERR);
}

void *
xcalloc(size_t n, size_t size)
{
	void	*p;

	if ((p = calloc(n, size)) == NULL)
		oom();
	return p;
}

void *
xreallocarray(void *old, size_t n, size_t size)
{
	void	*p;

	if (size != 0 && n > SIZE_MAX / size)
		oom();
	if ((p = realloc(old, n * size)) == NULL && n * size != 0)
		oom();
	return p;
}

char *
xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		oom();
	return p;
}

int
is_blank(int c)
{
	return c == ' ' || c == '\t';
}

/* Drop the blanks (space, tab) at both ends, in place. */
char *
str_trim(char *s)
{
	size_t	 n;

	while (is_blank(*s))
		s++;
	n = strlen(s);
	while (n > 0 && is_blank(s[n - 1]))
		s[--n] = '\0';
	return s;
}

char *
concat3(const char *a, const char *b, const char *c)
{
	size_t	 n = strlen(a) + strlen(b) + strlen(c) + 1;
	char	*p = xcalloc(1, n);

	snprintf(p, n, "%s%s%s", a, b, c);
	return p;
}

/*
 * open(2) for reading that cannot hang on a FIFO nobody writes to: the
 * open does not wait for a writer, and a read then sees end of file.
 * What is read is otherwise read as from any file (a pipe from a
 * process substitution works).
 */
int
open_read(const char *path, int flags)
{
	int	 fd, fl;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | flags);
	if (fd == -1)
		return -1;
	if ((fl = fcntl(fd, F_GETFL)) != -1)
		(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return fd;
}

/*
 * mkdir -p for every directory above path (not path itself), new ones
 * 0700.  -1 with errno for the first that is neither made nor there.
 */
int
mkdir_above(const char *path)
{
	char	 dir[PATH_MAX], *p;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return 0;
}

/*
 * The first line of buf (at most max octets were read), without its line
 * end; NULL when there is none, when it holds a NUL, or (*toolong) when
 * max octets came without a line end.
 */
char *
first_line(const char *buf, size_t len, size_t max, int *toolong)
{
	const char	*nl = memchr(buf, '\n', len);
	size_t		 n;
	char		*line;

	*toolong = nl == NULL && len >= max;
	n = nl != NULL ? (size_t)(nl - buf) : len;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (*toolong || n == 0 || memchr(buf, '\0', n) != NULL)
		return NULL;
	line = xcalloc(1, n + 1);
	memcpy(line, buf, n);
	return line;
}

/* The one clock for deadlines and timeouts. */
long long
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The cause, then the relay's reply, one line each. */
void
print_error(const struct error *e)
{
	char	*line, *copy, *save;

	log_notice("%s", e->msg);
	if (e->reply[0] == '\0')
		return;
	copy = xstrdup(e->reply);
	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		log_notice("the relay said: %s", line);
	free(copy);
}

static const char *
exit_name(int code)
{
	static const struct {
		int		 code;
		const char	*name;
	} names[] = {
		{ EX_OK, "EX_OK" }, { EX_USAGE, "EX_USAGE" },
		{ EX_DATAERR, "EX_DATAERR" }, { EX_NOINPUT, "EX_NOINPUT" },
		{ EX_NOHOST, "EX_NOHOST" }, { EX_UNAVAILABLE, "EX_UNAVAILABLE" },
		{ EX_SOFTWARE, "EX_SOFTWARE" }, { EX_OSERR, "EX_OSERR" },
		{ EX_IOERR, "EX_IOERR" }, { EX_TEMPFAIL, "EX_TEMPFAIL" },
		{ EX_PROTOCOL, "EX_PROTOCOL" }, { EX_NOPERM, "EX_NOPERM" },
		{ EX_CONFIG, "EX_CONFIG" },
	};
	size_t	 i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].code == code)
			return names[i].name;
	return "EX_SOFTWARE";
}

/* Quoted for the log line: no quote, no newline, no control character. */
static void
log_quote(char *dst, size_t size, const char *src)
{
	size_t	 i;

	sanitize(dst, size, src);
	for (i = 0; dst[i] != '\0'; i++)
		if (dst[i] == '\'' || dst[i] == '\n')
			dst[i] = dst[i] == '\n' ? ' ' : '?';
}

/*
 * -1 when the file cannot be written: said on stderr with the line, or
 * (quiet, the default log) left to the caller.
 */
static int
append_line(const char *path, const char *line, int quiet)
{
	char	 stamp[64];
	time_t	 now = time(NULL);

	FILE	*fp;
	int	 i, fd;

	if (strcmp(path, "-") == 0) {
		printf("%s\n", line);
		return 0;
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0600);
	if (fd == -1 && errno == ENOENT && quiet && mkdir_above(path) == 0)
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
		    O_NOFOLLOW, 0600);
	if (fd == -1 || (fp = fdopen(fd, "a")) == NULL) {
		if (!quiet) {
			log_warn("cannot write to logfile %s: %s", path,
			    strerror(errno));
			fprintf(stderr, "%s\n", line);
		}
		if (fd != -1)
			close(fd);
		return -1;
	}
	/* Wait up to 10 s for others appending at the same time. */
	for (i = 0; i < 1000 && flock(fd, LOCK_EX | LOCK_NB) == -1; i++)
		usleep(10000);
	strftime(stamp, sizeof(stamp), "%b %d %H:%M:%S", localtime(&now));
	fprintf(fp, "%s %s\n", stamp, line);
	return fclose(fp) == 0 ? 0 : -1;
}

/*
 * One line per attempt, in msmtp's format, to the logfile and syslog.
 * It names host, sender and recipients, never a secret.  recipients=
 * are the ones this attempt was for; deferred= and refused= say which
 * of them did not get it (a partial delivery), and exitcode= is what the
 * attempt amounts to: EX_OK also for a message kept in the queue.
 */
void
log_delivery(const struct account *a, const struct message *m,
    const struct reply *r, const struct error *e, int code)
{
	char	 line[8192], q[1200];
	size_t	 len = 0, i;
	int	 st, any, to_syslog = 0;

	if (a->logfile == NULL && !a->syslog)
		return;
#define ADD(...) do {							\
	if (len < sizeof(line))						\
		len += (size_t)snprintf(line + len, sizeof(line) - len,	\
		    __VA_ARGS__);					\
} while (0)
	ADD("host=%s tls=%s auth=%s", a->host, a->tls ? "on" : "off",
	    a->auth ? "on" : "off");
	if (a->user != NULL)
		ADD(" user=%s", a->user);
	ADD(" from=%s recipients=", m->sender);
	for (i = 0, any = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].this_run)
			ADD("%s%s", any++ ? "," : "", m->rcpts[i].addr);
	for (st = RCPT_DEFERRED; st <= RCPT_REFUSED; st++)
		for (i = 0, any = 0; i < m->nrcpts; i++)
			if (m->rcpts[i].this_run &&
			    (int)m->rcpts[i].state == st)
				ADD("%s%s", any++ ? "," : st == RCPT_DEFERRED ?
				    " deferred=" : " refused=",
				    m->rcpts[i].addr);
	ADD(" mailsize=%lld", (long long)m->size);
	if (r != NULL && r->code != 0) {
		log_quote(q, sizeof(q), r->text);
		ADD(" smtpstatus=%d smtpmsg='%s'", r->code, q);
	}
	if (e != NULL && e->msg[0] != '\0') {
		if (e->reply[0] != '\0' && (r == NULL || r->code == 0)) {
			log_quote(q, sizeof(q), e->reply);
			ADD(" smtpstatus=%.3s smtpmsg='%s'", e->reply, q);
		}
		log_quote(q, sizeof(q), e->msg);
		ADD(" errormsg='%s'", q);
	}
	ADD(" exitcode=%s", exit_name(code));
#undef ADD
	/* The default log of a user without a writable home: syslog. */
	if (a->logfile != NULL &&
	    append_line(a->logfile, line, a->logfile_default) == -1 &&
	    a->logfile_default)
		to_syslog = 1;
	if (a->syslog || to_syslog) {
		openlog("smarthost", LOG_PID, a->syslog ?
		    a->syslog_facility : LOG_MAIL);
		syslog(code != 0 || (e != NULL && e->msg[0] != '\0') ?
		    LOG_ERR : LOG_INFO, "%s", line);
		closelog();
	}
}

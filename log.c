/*
 * Errors, warnings and the -v trace on stderr; small allocation helpers.
 * The trace level is the one piece of global mutable state (STYLE.md).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "smarthost.h"

int		 trace_level;
static const char *progname = "smarthost";

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

static void
vlog(const char *prefix, const char *fmt, va_list ap)
{
	char	 buf[2048];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	fprintf(stderr, "%s: %s%s\n", progname, prefix, buf);
}

void
log_warn(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog("warning: ", fmt, ap);
	va_end(ap);
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
	va_list	 ap;

	if (trace_level == 0)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
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

void
secret_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

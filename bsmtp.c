/* SPDX-License-Identifier: ISC */
/*
 * sendmail -bs: SMTP on standard input and output, as some PHP mailers
 * speak it.  Each accepted message is handed to the caller, which
 * relays it exactly as in send mode; this file only speaks the protocol.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "smarthost.h"

struct bs {
	FILE		*in, *out;
	char		*sender;	/* NULL until MAIL */
	char	       **rcpts;
	size_t		 nrcpts;
	bs_deliver_fn	 deliver;
	void		*ctx;
};

static void
reply(struct bs *b, const char *text)
{
	fprintf(b->out, "%s\r\n", text);
	fflush(b->out);
}

static void
reset(struct bs *b)
{
	size_t	 i;

	free(b->sender);
	b->sender = NULL;
	for (i = 0; i < b->nrcpts; i++)
		free(b->rcpts[i]);
	free(b->rcpts);
	b->rcpts = NULL;
	b->nrcpts = 0;
}

/*
 * One line, CRLF or LF, at most SMTP_LINE_MAX octets (DATA lines up to
 * TEXT_LINE_MAX + 2); a longer one is read to its end and refused.
 * Returns its length, -1 at EOF, -2 when it was too long.
 */
static ssize_t
get_line(struct bs *b, char *buf, size_t size)
{
	size_t	 len = 0;
	int	 c, over = 0;

	while ((c = getc(b->in)) != EOF && c != '\n') {
		if (len + 1 < size)
			buf[len++] = (char)c;
		else
			over = 1;
	}
	if (c == EOF && len == 0)
		return -1;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	return over ? -2 : (ssize_t)len;
}

/* "FROM:<addr> params" -> addr, or NULL when malformed. */
static char *
path_arg(const char *arg, const char *kw)
{
	const char	*p, *end;
	char		*addr;
	struct error	 e;

	if (strncasecmp(arg, kw, strlen(kw)) != 0)
		return NULL;
	p = arg + strlen(kw);
	while (*p == ' ')
		p++;
	if (*p != '<' || (end = strchr(p, '>')) == NULL)
		return NULL;
	addr = xcalloc(1, (size_t)(end - p));
	memcpy(addr, p + 1, (size_t)(end - p - 1));
	if (*addr != '\0' && address_check(addr, &e) == -1) {
		free(addr);
		return NULL;
	}
	return addr;
}

/* The message after DATA, dot-stuffing undone, into an unlinked file. */
static int
read_data(struct bs *b, int *fdp)
{
	char		 line[TEXT_LINE_MAX * 4];
	const char	*dir = getenv("TMPDIR");
	FILE		*fp;
	ssize_t		 n;
	int		 fd;

	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	if ((fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) == -1)
		return -1;
	if ((fp = fdopen(dup(fd), "w")) == NULL) {
		close(fd);
		return -1;
	}
	for (;;) {
		n = get_line(b, line, sizeof(line));
		if (n == -1)
			break;		/* EOF inside DATA: discarded */
		if (n >= 0 && strcmp(line, ".") == 0) {
			if (fclose(fp) != 0 || lseek(fd, 0, SEEK_SET) == -1)
				break;
			*fdp = fd;
			return 0;
		}
		/* An overlong line keeps what fitted: message.c breaks it. */
		fputs(line[0] == '.' ? line + 1 : line, fp);
		fputc('\n', fp);
	}
	fclose(fp);
	close(fd);
	return -1;
}

static int
cmd_data(struct bs *b)
{
	struct error	 e;
	int		 fd, code;

	if (b->sender == NULL || b->nrcpts == 0) {
		reply(b, "503 5.5.1 MAIL and RCPT first");
		return 0;
	}
	reply(b, "354 End data with <CR><LF>.<CR><LF>");
	if (read_data(b, &fd) == -1)
		return -1;
	memset(&e, 0, sizeof(e));
	code = b->deliver(b->ctx, b->sender, b->rcpts, b->nrcpts, fd, &e);
	close(fd);
	reset(b);
	if (code == EX_OK)
		reply(b, "250 2.0.0 Ok: relayed or queued");
	else if (code == EX_DATAERR || code == EX_USAGE)
		reply(b, "554 5.0.0 Refused: see standard error");
	else
		reply(b, "451 4.0.0 Not sent: see standard error");
	return 0;
}

static int
command(struct bs *b, char *line)
{
	char	*arg;

	if ((arg = strchr(line, ' ')) != NULL)
		*arg++ = '\0';
	else
		arg = line + strlen(line);
	if (strcasecmp(line, "EHLO") == 0) {
		reset(b);
		reply(b, "250-smarthost\r\n250 8BITMIME");
	} else if (strcasecmp(line, "HELO") == 0) {
		reset(b);
		reply(b, "250 smarthost");
	} else if (strcasecmp(line, "MAIL") == 0) {
		if (b->sender != NULL)
			reply(b, "503 5.5.1 nested MAIL");
		else if ((b->sender = path_arg(arg, "FROM:")) == NULL)
			reply(b, "501 5.1.7 bad sender address");
		else
			reply(b, "250 2.1.0 Ok");
	} else if (strcasecmp(line, "RCPT") == 0) {
		char	*addr;

		if (b->sender == NULL)
			reply(b, "503 5.5.1 MAIL first");
		else if (b->nrcpts >= RCPT_MAX)
			reply(b, "452 4.5.3 too many recipients");
		else if ((addr = path_arg(arg, "TO:")) == NULL || *addr == 0) {
			free(addr);
			reply(b, "501 5.1.3 bad recipient address");
		} else {
			b->rcpts = xreallocarray(b->rcpts, b->nrcpts + 1,
			    sizeof(*b->rcpts));
			b->rcpts[b->nrcpts++] = addr;
			reply(b, "250 2.1.5 Ok");
		}
	} else if (strcasecmp(line, "DATA") == 0)
		return cmd_data(b);
	else if (strcasecmp(line, "RSET") == 0) {
		reset(b);
		reply(b, "250 2.0.0 Ok");
	} else if (strcasecmp(line, "NOOP") == 0)
		reply(b, "250 2.0.0 Ok");
	else if (strcasecmp(line, "VRFY") == 0)
		reply(b, "252 2.5.2 Cannot verify, will try");
	else if (strcasecmp(line, "QUIT") == 0) {
		reply(b, "221 2.0.0 Bye");
		return 1;
	} else
		reply(b, "502 5.5.2 Command not implemented");
	return 0;
}

int
bsmtp_serve(FILE *in, FILE *out, bs_deliver_fn deliver, void *ctx)
{
	struct bs	 b;
	char		 line[SMTP_LINE_MAX + 1];
	ssize_t		 n;
	int		 rc = 0;

	memset(&b, 0, sizeof(b));
	b.in = in;
	b.out = out;
	b.deliver = deliver;
	b.ctx = ctx;
	reply(&b, "220 smarthost ESMTP (sendmail -bs)");
	while (rc == 0) {
		if ((n = get_line(&b, line, sizeof(line))) == -1)
			break;
		if (n == -2)
			reply(&b, "500 5.5.2 Line too long");
		else
			rc = command(&b, line);
	}
	reset(&b);
	return rc == -1 ? EX_IOERR : EX_OK;
}

/* SPDX-License-Identifier: ISC */
/*
 * The connection: connect to every address of the relay in turn within
 * one shared deadline, then buffered reads and writes, each wait bounded.
 * Writes are collected into one 16 KiB buffer, the size of a full TLS
 * record, and leave only on a flush or when the buffer is full.
 */
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "smarthost.h"

static int
bind_source(int fd, int family, const char *source_ip, struct error *e)
{
	struct addrinfo	 hints, *res;
	int		 rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
	if ((rc = getaddrinfo(source_ip, NULL, &hints, &res)) != 0)
		return error_set(e, EX_CONFIG,
		    "source_ip %s is not a numeric address of this family: %s",
		    source_ip, gai_strerror(rc));
	rc = bind(fd, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	if (rc == -1)
		return error_set(e, EX_CONFIG, "cannot bind to source_ip %s: %s",
		    source_ip, strerror(errno));
	return 0;
}

/* One connect attempt with its own deadline; 0, or -1 with errno. */
static int
connect_one(int fd, const struct addrinfo *ai, int ms)
{
	struct pollfd	 pfd;
	socklen_t	 len;
	int		 err, rc;

	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -1;
	pfd.fd = fd;
	pfd.events = POLLOUT;
	do
		rc = poll(&pfd, 1, ms);
	while (rc == -1 && errno == EINTR);
	if (rc == 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	if (rc == -1)
		return -1;
	len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		return -1;
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

static void
addr_name(const struct addrinfo *ai, char *buf, size_t size)
{
	if (getnameinfo(ai->ai_addr, ai->ai_addrlen, buf, (socklen_t)size,
	    NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(buf, size, "?");
}

/*
 * Try every address of HOST; the timeout is shared fairly: each attempt
 * gets what is left divided by the addresses left, so four dead
 * addresses never cost four timeouts.
 */
int
net_connect(struct conn *c, const char *host, int port,
    const char *source_ip, int timeout_ms, struct error *e)
{
	struct addrinfo	 hints, *res, *ai;
	char		 portstr[16], why[256] = "";
	long long	 deadline, left;
	int		 fd, rc, n, one = 1;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->wmax = sizeof(c->wbuf);
	snprintf(portstr, sizeof(portstr), "%d", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	if ((rc = getaddrinfo(host, portstr, &hints, &res)) != 0)
		return error_set(e, EX_TEMPFAIL, "cannot resolve %s: %s",
		    host, rc == EAI_SYSTEM ? strerror(errno) :
		    gai_strerror(rc));
	for (n = 0, ai = res; ai != NULL; ai = ai->ai_next)
		n++;
	deadline = now_ms() + timeout_ms;
	for (ai = res; ai != NULL; ai = ai->ai_next, n--) {
		addr_name(ai, c->peer, sizeof(c->peer));
		left = deadline - now_ms();
		if (left <= 0)
			break;
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd == -1) {
			snprintf(why, sizeof(why), "socket: %s",
			    strerror(errno));
			continue;
		}
		if (source_ip != NULL &&
		    bind_source(fd, ai->ai_family, source_ip, e) == -1) {
			close(fd);
			freeaddrinfo(res);
			return -1;
		}
		if (connect_one(fd, ai, (int)(left / n)) == 0) {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
			    sizeof(one));
			c->fd = fd;
			trace("-- connected to %s port %d (%s)", host, port,
			    c->peer);
			freeaddrinfo(res);
			return 0;
		}
		snprintf(why, sizeof(why), "%s: %s", c->peer,
		    strerror(errno));
		close(fd);
	}
	freeaddrinfo(res);
	return error_set(e, EX_TEMPFAIL, "cannot connect to %s port %d (%s)",
	    host, port, why[0] ? why : "timed out");
}

/*
 * Wait until fd is ready for EVENTS or the deadline passes.  Before a
 * read, ask for quick ACKs: a relay that writes its TLS ticket and its
 * greeting in two segments (Postfix does) otherwise waits for our
 * delayed ACK under Nagle, 40 ms on Linux, before sending the second.
 */
int
net_wait(int fd, short events, int ms)
{
	struct pollfd	 pfd;
	long long	 deadline = now_ms() + ms, left;
	int		 rc, one = 1;

	if (events & POLLIN)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one,
		    sizeof(one));
	pfd.fd = fd;
	pfd.events = events;
	for (;;) {
		left = deadline - now_ms();
		if (left < 0)
			left = 0;
		rc = poll(&pfd, 1, (int)left);
		if (rc > 0)
			return 0;
		if (rc == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (errno != EINTR)
			return -1;
	}
}

/*
 * The step that starts now may take MS milliseconds: every write gets
 * that long, and all the reads of its reply together, so a relay that
 * trickles a byte at a time cannot stretch the wait (RFC 5321 4.5.3.2).
 */
void
net_timeout(struct conn *c, int ms)
{
	c->timeout_ms = ms;
	c->deadline = now_ms() + ms;
	if (c->cap != 0 && c->deadline > c->cap)
		c->deadline = c->cap;
}

/* Fill the read buffer: >0 bytes, 0 at EOF, -1 on error. */
static int
fill(struct conn *c, struct error *e)
{
	long long	 left = c->timeout_ms;
	ssize_t		 n;

	c->rpos = 0;
	c->rlen = 0;
	if (c->deadline != 0 && (left = c->deadline - now_ms()) <= 0)
		return error_set(e, EX_TEMPFAIL, "no answer from the relay "
		    "within %d seconds", c->timeout_ms / 1000);
	if (c->tls != NULL) {
		n = tls_read(c->tls, c->rbuf, sizeof(c->rbuf),
		    c->deadline != 0 ? c->deadline : now_ms() + left,
		    c->timeout_ms, e);
	} else {
		if (net_wait(c->fd, POLLIN, (int)left) == -1)
			return error_set(e, EX_TEMPFAIL,
			    "no answer from the relay within %d seconds",
			    c->timeout_ms / 1000);
		do
			n = recv(c->fd, c->rbuf, sizeof(c->rbuf), 0);
		while (n == -1 && errno == EINTR);
		if (n == -1)
			return error_set(e, EX_TEMPFAIL,
			    "reading from the relay: %s", strerror(errno));
	}
	if (n > 0) {
		c->rlen = (size_t)n;
		c->reads++;
	}
	return (int)n;
}

/*
 * Read one line, without its line ending, into BUF.  The line must fit;
 * a longer one is a protocol violation, never silently cut.
 */
int
net_getline(struct conn *c, char *buf, size_t size, struct error *e)
{
	size_t	 len = 0;
	char	 ch;
	int	 n;

	for (;;) {
		if (c->rpos == c->rlen) {
			if ((n = fill(c, e)) == -1)
				return -1;
			if (n == 0)
				return error_set(e, EX_TEMPFAIL,
				    "the relay closed the connection");
		}
		ch = c->rbuf[c->rpos++];
		if (ch == '\n')
			break;
		if (len + 1 >= size)
			return error_set(e, EX_PROTOCOL,
			    "the relay sent a line longer than %zu bytes",
			    size - 1);
		buf[len++] = ch;
	}
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	if (memchr(buf, '\0', len) != NULL)
		return error_set(e, EX_PROTOCOL,
		    "the relay sent a NUL byte in a reply");
	return (int)len;
}

int
net_pending(const struct conn *c)
{
	return c->rlen > c->rpos;
}

/*
 * Write first and wait only when the socket is full: a poll(2) before
 * every record doubles the system calls of a large message.  What the
 * socket took is counted (c->sent), one record at a time under TLS, so
 * that after a failed write the caller knows which commands went out
 * whole; c->wbroken says the connection failed on a write.
 */
static int
send_all(struct conn *c, const unsigned char *p, size_t len,
    struct error *e)
{
	ssize_t	 n;
	size_t	 k;

	while (c->tls != NULL && len > 0) {
		k = len > c->wmax ? c->wmax : len;
		if (tls_write(c->tls, p, k, c->timeout_ms, e) == -1) {
			c->wbroken = 1;
			return -1;
		}
		p += k;
		len -= k;
		c->sent += k;
	}
	while (len > 0) {
		n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN) {
			if (net_wait(c->fd, POLLOUT, c->timeout_ms) == -1) {
				c->wbroken = 1;
				return error_set(e, EX_TEMPFAIL,
				    "the relay took no data for %d seconds",
				    c->timeout_ms / 1000);
			}
			continue;
		}
		if (n == -1) {
			c->wbroken = 1;
			return error_set(e, EX_TEMPFAIL,
			    "writing to the relay: %s", strerror(errno));
		}
		p += n;
		len -= (size_t)n;
		c->sent += (size_t)n;
	}
	return 0;
}

int
net_flush(struct conn *c, struct error *e)
{
	size_t	 len = c->wlen;

	if (len == 0)
		return 0;
	c->wlen = 0;
	c->flushes++;
	return send_all(c, c->wbuf, len, e);
}

/*
 * Buffer LEN bytes; each time the buffer holds what fills one TLS record
 * (c->wmax: TLS 1.3 padding leaves a little less than 16 KiB), it goes
 * out as exactly one record.  Whole records of a large write go straight
 * from the caller's buffer when nothing waits in ours: the same records,
 * one copy less (net_write_size says how to make every write so).
 */
int
net_write(struct conn *c, const void *buf, size_t len, struct error *e)
{
	const unsigned char	*p = buf;
	size_t			 n;

	c->out += len;
	while (len > 0) {
		if (c->wlen == 0 && len >= c->wmax) {
			n = len - len % c->wmax;
			if (send_all(c, p, n, e) == -1)
				return -1;
			p += n;
			len -= n;
			continue;
		}
		n = c->wmax - c->wlen;
		if (n > len)
			n = len;
		memcpy(c->wbuf + c->wlen, p, n);
		c->wlen += n;
		p += n;
		len -= n;
		if (c->wlen == c->wmax) {
			c->wlen = 0;
			if (send_all(c, c->wbuf, c->wmax, e) == -1)
				return -1;
		}
	}
	return 0;
}

/*
 * The largest length up to MAX that ends on a record boundary after
 * what is buffered: a write of that length leaves the buffer empty, so
 * the next one of whole records is not copied at all.
 */
size_t
net_write_size(const struct conn *c, size_t max)
{
	size_t	 r = (c->wlen + max) % c->wmax;

	return r < max ? max - r : max;
}

int
net_printf(struct conn *c, struct error *e, const char *fmt, ...)
{
	char	 line[SMTP_LINE_MAX + 1];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return error_set(e, EX_SOFTWARE, "command longer than %d octets",
		    SMTP_LINE_MAX);
	return net_write(c, line, (size_t)n, e);
}

void
net_close(struct conn *c)
{
	if (c->tls != NULL) {
		tls_close(c->tls);
		c->tls = NULL;
	}
	if (c->fd != -1) {
		close(c->fd);
		c->fd = -1;
	}
}

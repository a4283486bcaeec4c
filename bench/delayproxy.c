/* SPDX-License-Identifier: ISC */
/*
 * delayproxy: a loopback TCP proxy that delays every byte by a fixed time,
 * so the benchmark can show what a client's round trips cost on a real
 * network without touching the machine's qdiscs (tc netem on lo would slow
 * every other test running on the machine).
 *
 *   delayproxy [-d MS] [-l PORT] [-t SECONDS] HOST PORT
 *
 * Listens on 127.0.0.1:PORT (-l 0, the default, lets the kernel choose)
 * and prints "port N" on standard output once it listens.  Each accepted
 * connection gets its own connection to HOST PORT; what is read on one
 * side is written to the other MS milliseconds later (one-way delay, so
 * RTT = 2 * MS), in order and in the chunks it was read in.  An EOF is
 * passed on as a shutdown(SHUT_WR) after the same delay.  It exits on
 * SIGTERM or SIGINT, or after SECONDS (default 900) so a benchmark that
 * dies cannot leave it behind.
 *
 * One process, ppoll(), no threads.  Bounded: at most MAXCONN connections
 * and MAXQUEUED bytes waiting per direction; past that it stops reading
 * that side until the queue drains (TCP flow control does the rest).  The
 * bound is far above what the delay lets through, so it limits memory,
 * not throughput.  The TCP handshake itself is not delayed: connect()
 * returns as soon as the kernel accepted it.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/signalfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <netdb.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAXCONN		64
#define CHUNK		65536
#define MAXQUEUED	(8 * 1024 * 1024)

struct chunk {
	struct chunk	*next;
	int64_t		 due;		/* monotonic ns when it may go out */
	size_t		 len;		/* 0 = the EOF marker */
	size_t		 off;		/* already written */
	unsigned char	 data[];
};

/* One direction of a connection: bytes read from src go to dst. */
struct pipe {
	int		 src, dst;
	struct chunk	*head, *tail;
	size_t		 queued;
	int		 eof;		/* src said EOF (marker queued) */
	int		 done;		/* EOF passed on to dst */
};

struct conn {
	int		 used;
	int		 fd[2];		/* 0 = client, 1 = target */
	struct pipe	 p[2];		/* 0: client->target, 1: back */
};

struct proxy {
	int		 lfd, sfd;
	int64_t		 delay;		/* ns */
	int64_t		 deadline;	/* ns */
	struct sockaddr_storage target;
	socklen_t	 targetlen;
	struct conn	 c[MAXCONN];
};

static void
usage(void)
{
	fprintf(stderr, "usage: delayproxy [-d MS] [-l PORT] [-t SECONDS] "
	    "HOST PORT\n");
	exit(64);
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long
number(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "delayproxy: bad number %s (%ld..%ld)\n", s,
		    min, max);
		exit(64);
	}
	return v;
}

static void
resolve(struct proxy *px, const char *host, const char *port)
{
	struct addrinfo hints, *res;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		fprintf(stderr, "delayproxy: %s port %s: %s (give a numeric "
		    "address and port)\n", host, port, gai_strerror(rc));
		exit(64);
	}
	memcpy(&px->target, res->ai_addr, res->ai_addrlen);
	px->targetlen = res->ai_addrlen;
	freeaddrinfo(res);
}

static void
listen_on(struct proxy *px, long port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int one = 1;

	px->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (px->lfd == -1) {
		perror("delayproxy: socket");
		exit(71);
	}
	setsockopt(px->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	if (bind(px->lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(px->lfd, MAXCONN) == -1 ||
	    getsockname(px->lfd, (struct sockaddr *)&sin, &len) == -1) {
		fprintf(stderr, "delayproxy: 127.0.0.1:%ld: %s\n", port,
		    strerror(errno));
		exit(71);
	}
	printf("port %u\n", ntohs(sin.sin_port));
	fflush(stdout);
}

/* Signals arrive as a readable fd, so the poll loop is the only control
 * flow and no handler touches shared state. */
static void
signals(struct proxy *px)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	px->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (px->sfd == -1) {
		perror("delayproxy: signalfd");
		exit(71);
	}
}

static void
conn_close(struct conn *c)
{
	struct chunk *k, *next;
	int i;

	for (i = 0; i < 2; i++) {
		for (k = c->p[i].head; k != NULL; k = next) {
			next = k->next;
			free(k);
		}
		close(c->fd[i]);
	}
	memset(c, 0, sizeof(*c));
}

static struct conn *
conn_slot(struct proxy *px)
{
	int i;

	for (i = 0; i < MAXCONN; i++)
		if (!px->c[i].used)
			return &px->c[i];
	return NULL;
}

/* The target is on loopback, so a blocking connect() returns at once. */
static void
conn_accept(struct proxy *px)
{
	struct conn *c;
	int cfd, tfd, one = 1;

	cfd = accept4(px->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd == -1)
		return;
	if ((c = conn_slot(px)) == NULL) {
		close(cfd);
		return;
	}
	tfd = socket(px->target.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (tfd == -1 || connect(tfd, (struct sockaddr *)&px->target,
	    px->targetlen) == -1) {
		perror("delayproxy: connect to target");
		if (tfd != -1)
			close(tfd);
		close(cfd);
		return;
	}
	fcntl(tfd, F_SETFL, fcntl(tfd, F_GETFL) | O_NONBLOCK);
	/* Chunks are written when due; Nagle would add its own delay. */
	setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(tfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(c, 0, sizeof(*c));
	c->used = 1;
	c->fd[0] = cfd;
	c->fd[1] = tfd;
	c->p[0].src = cfd;
	c->p[0].dst = tfd;
	c->p[1].src = tfd;
	c->p[1].dst = cfd;
}

static void
pipe_push(struct pipe *p, const unsigned char *buf, size_t len, int64_t due)
{
	struct chunk *k;

	if ((k = malloc(sizeof(*k) + len)) == NULL) {
		perror("delayproxy: malloc");
		exit(71);
	}
	k->next = NULL;
	k->due = due;
	k->len = len;
	k->off = 0;
	if (len > 0)
		memcpy(k->data, buf, len);
	if (p->tail != NULL)
		p->tail->next = k;
	else
		p->head = k;
	p->tail = k;
	p->queued += len;
}

/* Returns -1 when the connection is dead. */
static int
pipe_read(struct proxy *px, struct pipe *p)
{
	unsigned char buf[CHUNK];
	ssize_t n;

	n = read(p->src, buf, sizeof(buf));
	if (n == -1)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (n == 0)
		p->eof = 1;
	pipe_push(p, buf, (size_t)n, now_ns() + px->delay);
	return 0;
}

/* Write every chunk that is due; returns -1 when the connection is dead. */
static int
pipe_write(struct pipe *p, int64_t now)
{
	struct chunk *k;
	ssize_t n;

	while ((k = p->head) != NULL && k->due <= now) {
		if (k->len == 0) {
			shutdown(p->dst, SHUT_WR);
			p->done = 1;
		} else {
			n = write(p->dst, k->data + k->off, k->len - k->off);
			if (n == -1)
				return errno == EAGAIN || errno == EINTR ?
				    0 : -1;
			k->off += (size_t)n;
			if (k->off < k->len)
				return 0;
			p->queued -= k->len;
		}
		p->head = k->next;
		if (p->head == NULL)
			p->tail = NULL;
		free(k);
	}
	return 0;
}

/* What this direction waits for: input (if it may read more) and, when
 * a due chunk is stuck, the destination becoming writable. */
static void
pipe_events(const struct pipe *p, int64_t now, short *src, short *dst)
{
	if (!p->eof && p->queued < MAXQUEUED)
		*src |= POLLIN;
	if (p->head != NULL && p->head->due <= now)
		*dst |= POLLOUT;
}

static int64_t
next_due(const struct proxy *px, int64_t until)
{
	int i, j;

	for (i = 0; i < MAXCONN; i++) {
		if (!px->c[i].used)
			continue;
		for (j = 0; j < 2; j++)
			if (px->c[i].p[j].head != NULL &&
			    px->c[i].p[j].head->due < until)
				until = px->c[i].p[j].head->due;
	}
	return until;
}

static int
conn_step(struct proxy *px, struct conn *c, const struct pollfd *pf,
    int64_t now)
{
	int j;

	for (j = 0; j < 2; j++) {
		/* pf[j] belongs to c->fd[j], the source of pipe j. */
		if (pf[j].revents & POLLERR)
			return -1;
		if ((pf[j].revents & (POLLIN | POLLHUP)) &&
		    !c->p[j].eof && c->p[j].queued < MAXQUEUED &&
		    pipe_read(px, &c->p[j]) == -1)
			return -1;
	}
	for (j = 0; j < 2; j++)
		if (pipe_write(&c->p[j], now) == -1)
			return -1;
	return c->p[0].done && c->p[1].done ? -1 : 0;
}

static void
run(struct proxy *px)
{
	struct pollfd pf[2 + 2 * MAXCONN];
	struct timespec ts;
	int64_t now, wake;
	int i, n;

	for (;;) {
		now = now_ns();
		if (now >= px->deadline)
			return;
		pf[0].fd = px->lfd;
		pf[0].events = POLLIN;
		pf[1].fd = px->sfd;
		pf[1].events = POLLIN;
		for (i = 0; i < MAXCONN; i++) {
			struct pollfd *q = &pf[2 + 2 * i];

			q[0].fd = q[1].fd = -1;
			q[0].events = q[1].events = 0;
			q[0].revents = q[1].revents = 0;
			if (!px->c[i].used)
				continue;
			q[0].fd = px->c[i].fd[0];
			q[1].fd = px->c[i].fd[1];
			pipe_events(&px->c[i].p[0], now, &q[0].events,
			    &q[1].events);
			pipe_events(&px->c[i].p[1], now, &q[1].events,
			    &q[0].events);
			/* Nothing wanted: ignore it, or a half-closed
			 * socket's POLLHUP would spin the loop. */
			if (q[0].events == 0)
				q[0].fd = -1;
			if (q[1].events == 0)
				q[1].fd = -1;
		}
		wake = next_due(px, px->deadline);
		if (wake < now)
			wake = now;
		ts.tv_sec = (time_t)((wake - now) / 1000000000);
		ts.tv_nsec = (long)((wake - now) % 1000000000);
		n = ppoll(pf, 2 + 2 * MAXCONN, &ts, NULL);
		if (n == -1 && errno != EINTR) {
			perror("delayproxy: ppoll");
			exit(71);
		}
		if (n > 0 && pf[1].revents)
			return;
		if (n > 0 && (pf[0].revents & POLLIN))
			conn_accept(px);
		now = now_ns();
		for (i = 0; i < MAXCONN; i++)
			if (px->c[i].used &&
			    conn_step(px, &px->c[i], &pf[2 + 2 * i], now) == -1)
				conn_close(&px->c[i]);
	}
}

int
main(int argc, char *argv[])
{
	static struct proxy px;	/* large: keep it off the stack */
	long delay = 25, port = 0, timeout = 900;
	int ch;

	while ((ch = getopt(argc, argv, "d:l:t:")) != -1) {
		switch (ch) {
		case 'd':
			delay = number(optarg, 0, 60000);
			break;
		case 'l':
			port = number(optarg, 0, 65535);
			break;
		case 't':
			timeout = number(optarg, 1, 86400);
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 2)
		usage();
	px.delay = (int64_t)delay * 1000000;
	resolve(&px, argv[optind], argv[optind + 1]);
	signals(&px);
	listen_on(&px, port);
	px.deadline = now_ns() + (int64_t)timeout * 1000000000;
	run(&px);
	return 0;
}

/*
 * A minimal HTTPS client for the OAuth2 endpoints (oauth.c): one POST
 * of a form per connection, HTTP/1.1 with Connection: close, over
 * net.c and tls.c with the account's own trust settings, so no second
 * TLS library and no second idea of which certificates count.
 *
 * The response is read whole, at most HTTP_RESPONSE_MAX octets and
 * within one deadline however slowly it trickles in, then parsed:
 * status line, headers, and the body by Content-Length, chunked, or up
 * to the close.  The request and the response carry secrets (refresh
 * tokens, client secrets, access tokens): every buffer that held them
 * is wiped, and nothing of either reaches the trace.
 */
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

#include "smarthost.h"

#define URL_HOST_MAX	255
#define URL_PATH_MAX	2048
#define HEADER_LINES_MAX 100

struct url {
	char	 host[URL_HOST_MAX + 1];	/* without brackets */
	int	 port;
	int	 ipv6;				/* [host] */
	char	 path[URL_PATH_MAX + 2];	/* with the query, and a "/" */
};

/*
 * https://HOST[:PORT][/PATH][?QUERY], nothing else: no user info, no
 * fragment, no blank or control character anywhere.
 */
static int
url_parse(const char *s, struct url *u)
{
	const char	*h, *end, *p;
	size_t		 n;
	long		 port = 443;
	char		*num_end;

	memset(u, 0, sizeof(*u));
	if (strncasecmp(s, "https://", 8) != 0)
		return -1;
	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '#')
			return -1;
	h = s + 8;
	end = h + strcspn(h, "/?");
	if (memchr(h, '@', (size_t)(end - h)) != NULL)
		return -1;
	if (*h == '[') {
		if ((p = memchr(h, ']', (size_t)(end - h))) == NULL)
			return -1;
		n = (size_t)(p - h - 1);
		if (n == 0 || n > URL_HOST_MAX || strspn(h + 1,
		    "0123456789abcdefABCDEF:.") < n)
			return -1;
		memcpy(u->host, h + 1, n);
		u->ipv6 = 1;
		p++;
	} else {
		p = h + strcspn(h, ":/?");
		n = (size_t)(p - h);
		if (n == 0 || n > URL_HOST_MAX)
			return -1;
		memcpy(u->host, h, n);
	}
	if (*p == ':') {
		if (!isdigit((unsigned char)p[1]))
			return -1;
		errno = 0;
		port = strtol(p + 1, &num_end, 10);
		if (errno != 0 || num_end != end || port < 1 || port > 65535)
			return -1;
	} else if (p != end)
		return -1;
	u->port = (int)port;
	if (strlen(end) > URL_PATH_MAX)
		return -1;
	snprintf(u->path, sizeof(u->path), "%s%s", *end == '/' ? "" : "/",
	    end);
	return 0;
}

int
http_url_valid(const char *s)
{
	struct url	 u;

	return url_parse(s, &u) == 0;
}

/* The header block; Host carries the port only when it is not 443. */
static int
request_head(const struct url *u, size_t bodylen, char *buf, size_t size)
{
	char	 port[16] = "";
	int	 n;

	if (u->port != 443)
		snprintf(port, sizeof(port), ":%d", u->port);
	n = snprintf(buf, size, "POST %s HTTP/1.1\r\n"
	    "Host: %s%s%s%s\r\n"
	    "User-Agent: smarthost/" SMARTHOST_VERSION "\r\n"
	    "Accept: application/json\r\n"
	    "Content-Type: application/x-www-form-urlencoded\r\n"
	    "Content-Length: %zu\r\n"
	    "Connection: close\r\n\r\n", u->path, u->ipv6 ? "[" : "",
	    u->host, u->ipv6 ? "]" : "", port, bodylen);
	return n < 0 || (size_t)n >= size ? -1 : n;
}

/*
 * The parser.  Lines end in LF, optionally after CR.  Returns the
 * length of the line at p (without its end) and sets *next, or -1 when
 * no complete line is there yet.
 */
static long
line_at(const char *p, const char *end, const char **next)
{
	const char	*nl = memchr(p, '\n', (size_t)(end - p));
	size_t		 n;

	if (nl == NULL)
		return -1;
	*next = nl + 1;
	n = (size_t)(nl - p);
	if (n > 0 && p[n - 1] == '\r')
		n--;
	return (long)n;
}

/* "HTTP/1.x NNN reason": the status, or -1. */
static int
status_line(const char *p, long n)
{
	int	 code;

	if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 ||
	    (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
	    !isdigit((unsigned char)p[9]) || !isdigit((unsigned char)p[10]) ||
	    !isdigit((unsigned char)p[11]) || (n > 12 && p[12] != ' '))
		return -1;
	code = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	return code >= 100 && code <= 599 ? code : -1;
}

struct head {
	int		 status;
	int		 chunked;
	long long	 length;	/* Content-Length, -1 when absent */
	const char	*body;		/* first octet after the blank line */
};

/* A header's value, blanks trimmed, when its name is NAME. */
static int
header_is(const char *p, long n, const char *name, const char **v,
    size_t *vlen)
{
	size_t	 len = strlen(name);
	long	 i;

	if ((size_t)n <= len || strncasecmp(p, name, len) != 0 ||
	    p[len] != ':')
		return 0;
	for (i = (long)len + 1; i < n && is_blank(p[i]); i++)
		;
	while (n > i && is_blank(p[n - 1]))
		n--;
	*v = p + i;
	*vlen = (size_t)(n - i);
	return 1;
}

static int
head_field(struct head *h, const char *p, long n, struct error *e)
{
	const char	*v;
	size_t		 vlen, i;
	long long	 len = 0;

	if (n > 0 && is_blank(*p))
		return error_set(e, EX_PROTOCOL, "the token endpoint sent a "
		    "folded header line");
	if (memchr(p, ':', (size_t)n) == NULL)
		return error_set(e, EX_PROTOCOL, "the token endpoint sent a "
		    "header line without a colon");
	if (header_is(p, n, "Transfer-Encoding", &v, &vlen)) {
		/* Only chunked, the one coding every server can send. */
		if (vlen != 7 || strncasecmp(v, "chunked", 7) != 0)
			return error_set(e, EX_PROTOCOL, "the token endpoint "
			    "sent a transfer coding other than chunked");
		h->chunked = 1;
	} else if (header_is(p, n, "Content-Length", &v, &vlen)) {
		if (vlen == 0 || vlen > 9)
			return error_set(e, EX_PROTOCOL, "the token endpoint "
			    "sent a bad Content-Length");
		for (i = 0; i < vlen; i++) {
			if (!isdigit((unsigned char)v[i]))
				return error_set(e, EX_PROTOCOL, "the token "
				    "endpoint sent a bad Content-Length");
			len = len * 10 + (v[i] - '0');
		}
		if (h->length != -1 && h->length != len)
			return error_set(e, EX_PROTOCOL, "the token endpoint "
			    "sent two different Content-Length headers");
		h->length = len;
	}
	return 0;
}

/*
 * Status line and headers of the final response (1xx ones skipped).
 * 1 when they are not complete yet.
 */
static int
parse_head(const char *buf, size_t len, struct head *h, struct error *e)
{
	const char	*p = buf, *end = buf + len, *next;
	long		 n;
	int		 lines;

	for (;;) {
		memset(h, 0, sizeof(*h));
		h->length = -1;
		if ((n = line_at(p, end, &next)) == -1)
			return 1;
		if ((h->status = status_line(p, n)) == -1)
			return error_set(e, EX_PROTOCOL, "the token endpoint "
			    "did not answer with an HTTP/1.x status line");
		for (lines = 0, p = next;; p = next) {
			if ((n = line_at(p, end, &next)) == -1)
				return 1;
			if (n == 0)
				break;
			if (++lines > HEADER_LINES_MAX)
				return error_set(e, EX_PROTOCOL, "the token "
				    "endpoint sent more than %d header lines",
				    HEADER_LINES_MAX);
			if (head_field(h, p, n, e) == -1)
				return -1;
		}
		p = next;
		if (h->status >= 200)
			break;
	}
	h->body = p;
	return 0;
}

/* The hex size of a chunk, extensions ignored; -1 when malformed. */
static long long
chunk_size(const char *p, long n)
{
	long long	 v = 0;
	long		 i;
	int		 d;

	for (i = 0; i < n && isxdigit((unsigned char)p[i]); i++) {
		if (i >= 8)
			return -1;	/* more than HTTP_RESPONSE_MAX anyway */
		d = isdigit((unsigned char)p[i]) ? p[i] - '0' :
		    tolower((unsigned char)p[i]) - 'a' + 10;
		v = v * 16 + d;
	}
	if (i == 0 || (i < n && p[i] != ';' && !is_blank(p[i])))
		return -1;
	return v;
}

/* A chunked body into out (as long as the input); 1 when incomplete. */
static int
parse_chunked(const char *p, const char *end, char *out, size_t *olen,
    struct error *e)
{
	const char	*next;
	long long	 size;
	long		 n;

	*olen = 0;
	for (;;) {
		if ((n = line_at(p, end, &next)) == -1)
			return 1;
		if ((size = chunk_size(p, n)) == -1)
			return error_set(e, EX_PROTOCOL, "the token endpoint "
			    "sent a malformed chunk");
		p = next;
		if (size == 0)
			break;
		if ((long long)(end - p) < size + 1)
			return 1;
		memcpy(out + *olen, p, (size_t)size);
		*olen += (size_t)size;
		p += size;
		if ((n = line_at(p, end, &next)) == -1)
			return 1;
		if (n != 0)
			return error_set(e, EX_PROTOCOL, "the token endpoint "
			    "sent a chunk longer than its size");
		p = next;
	}
	/* Trailer fields, then the blank line. */
	for (;;) {
		if ((n = line_at(p, end, &next)) == -1)
			return 1;
		if (n == 0)
			return 0;
		p = next;
	}
}

/*
 * Parse a response read so far (eof: the peer has closed).  0 with r
 * filled, 1 when more must be read, -1 when it is malformed (or cut
 * off at the close).
 */
int
http_parse(const char *buf, size_t len, int eof, struct http_response *r,
    struct error *e)
{
	struct head	 h;
	const char	*end = buf + len;
	size_t		 blen;
	char		*body;
	int		 rc;

	memset(r, 0, sizeof(*r));
	if ((rc = parse_head(buf, len, &h, e)) != 0)
		goto incomplete;
	body = xcalloc(1, (size_t)(end - h.body) + 1);
	if (h.status == 204 || h.status == 304)
		blen = 0;
	else if (h.chunked) {
		if ((rc = parse_chunked(h.body, end, body, &blen, e)) != 0) {
			explicit_bzero(body, (size_t)(end - h.body) + 1);
			free(body);
			goto incomplete;
		}
	} else if (h.length >= 0) {
		if ((long long)(end - h.body) < h.length) {
			free(body);
			rc = 1;
			goto incomplete;
		}
		blen = (size_t)h.length;
		memcpy(body, h.body, blen);
	} else {
		/* Neither: the body ends with the connection. */
		if (!eof) {
			free(body);
			rc = 1;
			goto incomplete;
		}
		blen = (size_t)(end - h.body);
		memcpy(body, h.body, blen);
	}
	r->status = h.status;
	r->body = body;
	r->len = blen;
	return 0;
incomplete:
	if (rc == 1 && eof)
		return error_set(e, EX_PROTOCOL, "the token endpoint closed "
		    "the connection in the middle of its answer");
	return rc;
}

void
http_response_free(struct http_response *r)
{
	if (r->body != NULL) {
		explicit_bzero(r->body, r->len);
		free(r->body);
	}
	memset(r, 0, sizeof(*r));
}

/* Prefix an error from net.c or tls.c with where it happened. */
static int
endpoint_error(struct error *e, const struct url *u)
{
	char	 msg[sizeof(e->msg)];

	snprintf(msg, sizeof(msg), "%s", e->msg);
	return error_set(e, e->code, "token endpoint %s: %s", u->host, msg);
}

static int
send_request(struct conn *c, const struct url *u, const char *form,
    struct error *e)
{
	char	 head[URL_PATH_MAX + URL_HOST_MAX + 512];
	size_t	 flen = strlen(form);
	int	 n, rc;

	if ((n = request_head(u, flen, head, sizeof(head))) == -1)
		return error_set(e, EX_SOFTWARE, "HTTP request too long");
	rc = net_write(c, head, (size_t)n, e) == -1 ||
	    net_write(c, form, flen, e) == -1 || net_flush(c, e) == -1;
	/* The form held a refresh token or a client secret. */
	explicit_bzero(c->wbuf, sizeof(c->wbuf));
	return rc ? -1 : 0;
}

/* Read until the response is complete, the peer closes or time is up. */
static int
read_response(struct conn *c, const struct url *u, long long deadline,
    int ms, struct http_response *r, struct error *e)
{
	struct error	 more;
	char		*buf = xcalloc(1, HTTP_RESPONSE_MAX + 1);
	size_t		 len = 0;
	int		 n, rc = 1;

	while (rc == 1) {
		if (len == HTTP_RESPONSE_MAX) {
			rc = error_set(e, EX_PROTOCOL, "token endpoint %s: "
			    "the answer is larger than %d KiB", u->host,
			    HTTP_RESPONSE_MAX / 1024);
			break;
		}
		if (now_ms() >= deadline) {
			rc = error_set(e, EX_TEMPFAIL, "token endpoint %s "
			    "sent no complete answer within %d seconds",
			    u->host, ms / 1000);
			break;
		}
		n = tls_read(c->tls, buf + len, HTTP_RESPONSE_MAX - len,
		    deadline, ms, e);
		/* A close without close_notify still ends a body. */
		if (n == -1 && now_ms() < deadline &&
		    http_parse(buf, len, 1, r, &more) == 0) {
			rc = 0;
			break;
		}
		if (n == -1) {
			rc = e->code == EX_TEMPFAIL && now_ms() >= deadline ?
			    error_set(e, EX_TEMPFAIL, "token endpoint %s sent "
			    "no complete answer within %d seconds", u->host,
			    ms / 1000) : endpoint_error(e, u);
			break;
		}
		len += (size_t)n;
		rc = http_parse(buf, len, n == 0, r, e);
	}
	explicit_bzero(buf, HTTP_RESPONSE_MAX + 1);
	free(buf);
	return rc;
}

/*
 * POST FORM (application/x-www-form-urlencoded) to URL.  The token
 * endpoint is checked against tls_trust_file (or the system store),
 * always: tls_fingerprint pins the relay, not this host, and
 * tls_certcheck off is for a relay one cannot fix, never for the place
 * that receives the refresh token.
 */
int
http_post(const struct account *a, const char *url, const char *form,
    struct http_response *r, struct error *e)
{
	struct account	 t;
	struct conn	 c;
	struct url	 u;
	long long	 deadline;
	int		 ms = (a->timeout > 0 ? a->timeout : 60) * 1000, rc;

	memset(r, 0, sizeof(*r));
	if (url_parse(url, &u) == -1)
		return error_set(e, EX_CONFIG, "'%.200s' is not an https:// "
		    "URL", url);
	memset(&t, 0, sizeof(t));
	t.host = u.host;
	t.port = u.port;
	t.trust_file = a->trust_file;
	t.tls_min = a->tls_min;
	t.certcheck = 1;
	deadline = now_ms() + ms;
	trace("-- OAuth2: POST https://%s%s%s:%d%s", u.ipv6 ? "[" : "",
	    u.host, u.ipv6 ? "]" : "", u.port, u.path);
	if (net_connect(&c, u.host, u.port, a->source_ip, ms, e) == -1)
		return endpoint_error(e, &u);
	net_timeout(&c, (int)(deadline - now_ms() > 0 ?
	    deadline - now_ms() : 1));
	if (tls_start(&c, &t, 0, e) != 0) {
		net_close(&c);
		return endpoint_error(e, &u);
	}
	net_timeout(&c, ms);
	if (send_request(&c, &u, form, e) == -1)
		rc = endpoint_error(e, &u);
	else
		rc = read_response(&c, &u, deadline, ms, r, e);
	explicit_bzero(c.rbuf, sizeof(c.rbuf));
	net_close(&c);
	if (rc == 0)
		trace("-- OAuth2: HTTP %d, %zu octets", r->status, r->len);
	return rc;
}

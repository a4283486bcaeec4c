/* SPDX-License-Identifier: ISC */
/*
 * SMTP AUTH (RFC 4954) with GNU SASL, plus XOAUTH2 and OAUTHBEARER,
 * which libgsasl lacks.  The credentials belong to the caller (secret.c)
 * and are only read here; no AUTH data ever reaches the trace.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <gsasl.h>

#include "smarthost.h"

#define AUTH_LINE_MAX	12288	/* RFC 4954 4: AUTH with initial response */
/*
 * SCRAM's iteration count comes from the relay, and GNU SASL 2.2 takes
 * any: 2^32-1 rounds of PBKDF2 burn minutes of CPU past every timeout.
 * RFC 7677 asks for at least 4096; servers use 4096 to 100000.
 */
#define SCRAM_ITER_MAX	100000

/*
 * auth on (SPEC 3).  Inside TLS whose certificate was checked (or
 * pinned), PLAIN first, as msmtp and Thunderbird do: the password goes
 * only to the relay that proved who it is, which needs it anyway, and
 * PLAIN takes one round trip (none of its own when pipelined with the
 * transaction) where SCRAM takes three.  Without that proof (TLS off on
 * loopback, tls_certcheck off) SCRAM first: it never shows the password
 * to whoever answers.
 */
static const char *const preference_verified[] = {
	"PLAIN", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256",
	"SCRAM-SHA-1", "CRAM-MD5", "LOGIN", NULL
};
static const char *const preference[] = {
	"SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256",
	"SCRAM-SHA-1", "PLAIN", "CRAM-MD5", "LOGIN", NULL
};

struct exchange {
	struct conn	*conn;
	const struct account *acct;
	const struct cred *cred;
	const char	*mech;
	struct reply	 r;
};

static int
offered(const char *list, const char *mech)
{
	size_t		 len = strlen(mech);
	const char	*p;

	for (p = list; (p = strstr(p, mech)) != NULL; p += len)
		if ((p == list || p[-1] == ' ') &&
		    (p[len] == ' ' || p[len] == '\0'))
			return 1;
	return 0;
}

static int
is_loopback(const char *host)
{
	return strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0 ||
	    strncmp(host, "127.", 4) == 0;
}

/* Pick the mechanism, or say why none can be used. */
static const char *
choose(struct conn *c, const struct smtp_caps *caps,
    const struct account *a, Gsasl *ctx, struct error *e)
{
	const char *const *list;
	char	 cb[64];
	int	 i, plus;

	if (caps->auth[0] == '\0') {
		error_set(e, EX_UNAVAILABLE, "the relay offers no "
		    "authentication (AUTH) %s, but user %s is configured",
		    c->tls ? "" : "on an unencrypted connection",
		    a->user ? a->user : "");
		return NULL;
	}
	if (strcmp(a->auth, "on") != 0) {
		if (!offered(caps->auth, a->auth)) {
			error_set(e, EX_UNAVAILABLE, "the relay does not offer "
			    "AUTH %s; it offers %s", a->auth, caps->auth);
			return NULL;
		}
		return a->auth;
	}
	plus = c->tls != NULL && tls_exporter(c->tls, cb, sizeof(cb)) == 0;
	explicit_bzero(cb, sizeof(cb));
	list = c->tls != NULL && a->certcheck ? preference_verified :
	    preference;
	for (i = 0; list[i] != NULL; i++) {
		if (!plus && strstr(list[i], "-PLUS") != NULL)
			continue;
		if (offered(caps->auth, list[i]) &&
		    gsasl_client_support_p(ctx, list[i]))
			return list[i];
	}
	error_set(e, EX_UNAVAILABLE, "no authentication mechanism in common "
	    "with the relay (it offers %s); name one with auth MECHANISM",
	    caps->auth);
	return NULL;
}

static int	 queue_line(struct exchange *, const char *, const char *,
		    struct error *);

/* Write one line of the exchange, and send it. */
static int
send_line(struct exchange *x, const char *verb, const char *data,
    struct error *e)
{
	return queue_line(x, verb, data, e) == -1 ? -1 :
	    net_flush(x->conn, e);
}

/* Queue one line of the exchange; the trace shows only its verb. */
static int
queue_line(struct exchange *x, const char *verb, const char *data,
    struct error *e)
{
	if (verb != NULL) {
		trace("-> AUTH %s%s", verb, data ? " <redacted>" : "");
		if (net_write(x->conn, "AUTH ", 5, e) == -1 ||
		    net_write(x->conn, verb, strlen(verb), e) == -1 ||
		    (data != NULL && (net_write(x->conn, " ", 1, e) == -1 ||
		    net_write(x->conn, *data ? data : "=",
		    *data ? strlen(data) : 1, e) == -1)))
			return -1;
	} else {
		trace("-> <redacted>");
		if (net_write(x->conn, data, strlen(data), e) == -1)
			return -1;
	}
	return net_write(x->conn, "\r\n", 2, e);
}

/* Read a reply; a 334 challenge is kept out of the trace. */
static int
read_reply(struct exchange *x, struct error *e)
{
	return smtp_read_secret(x->conn, &x->r, e);
}

static int
refused(struct exchange *x, struct error *e)
{
	/* 454 is the relay's own trouble: worth another try later. */
	int	 code = x->r.code >= 500 ? EX_NOPERM : EX_TEMPFAIL;

	error_reply(e, x->r.text);
	return error_set(e, code, "the relay refused authentication as %s "
	    "with %s", x->acct->user ? x->acct->user : "(no user)", x->mech);
}

static const char *
challenge(const struct reply *r)
{
	/* "334 text", or a bare "334": an empty challenge. */
	return strlen(r->text) > 4 ? r->text + 4 : "";
}

/*
 * SCRAM's server-first message (RFC 5802 5.1), "r=...,s=...,i=N": an
 * iteration count above SCRAM_ITER_MAX is refused before GNU SASL
 * starts hashing.  Other challenges carry no i= attribute.
 */
static int
scram_iterations_ok(const char *mech, const char *b64, struct error *e)
{
	char		*raw = NULL, *msg, *attr, *save;
	size_t		 len;
	unsigned long	 n;
	int		 ok = 1;

	if (strncmp(mech, "SCRAM-", 6) != 0 ||
	    gsasl_base64_from(b64, strlen(b64), &raw, &len) != GSASL_OK)
		return 0;	/* not SCRAM, or GNU SASL reports it */
	msg = xcalloc(1, len + 1);
	memcpy(msg, raw, len);
	gsasl_free(raw);
	for (attr = strtok_r(msg, ",", &save); attr != NULL;
	    attr = strtok_r(NULL, ",", &save)) {
		if (strncmp(attr, "i=", 2) != 0)
			continue;
		errno = 0;
		n = strtoul(attr + 2, NULL, 10);
		ok = attr[2] >= '0' && attr[2] <= '9' && errno == 0 &&
		    n <= SCRAM_ITER_MAX;
		break;
	}
	free(msg);
	if (ok)
		return 0;
	return error_set(e, EX_PROTOCOL, "the relay asks for more than %d "
	    "%s iterations, which smarthost refuses (a hostile relay could "
	    "make the hashing take hours): name another mechanism with "
	    "auth, or fix the relay", SCRAM_ITER_MAX, mech);
}

static int
setup_session(Gsasl *ctx, Gsasl_session **sp, struct exchange *x,
    struct error *e)
{
	const struct account *a = x->acct;
	char		 cb[64];
	int		 rc;

	if ((rc = gsasl_client_start(ctx, x->mech, sp)) != GSASL_OK)
		return error_set(e, EX_UNAVAILABLE, "cannot use %s: %s",
		    x->mech, gsasl_strerror(rc));
	gsasl_property_set(*sp, GSASL_SERVICE, "smtp");
	gsasl_property_set(*sp, GSASL_HOSTNAME, a->host);
	if (a->user != NULL)
		gsasl_property_set(*sp, GSASL_AUTHID, a->user);
	if (x->cred->password != NULL)
		gsasl_property_set(*sp, GSASL_PASSWORD, x->cred->password);
	if (strcmp(x->mech, "EXTERNAL") == 0)
		gsasl_property_set(*sp, GSASL_AUTHZID, "");
	if (strcmp(x->mech, "ANONYMOUS") == 0)
		gsasl_property_set(*sp, GSASL_ANONYMOUS_TOKEN,
		    a->user ? a->user : "smarthost");
	/* Only on -PLUS: libgsasl 2.2.0 fails plain SCRAM with it set. */
	if (strstr(x->mech, "-PLUS") != NULL) {
		if (x->conn->tls == NULL ||
		    tls_exporter(x->conn->tls, cb, sizeof(cb)) == -1)
			return error_set(e, EX_UNAVAILABLE, "%s needs TLS 1.3 "
			    "channel binding, which this connection lacks",
			    x->mech);
		gsasl_property_set(*sp, GSASL_CB_TLS_EXPORTER, cb);
		explicit_bzero(cb, sizeof(cb));
	}
	return 0;
}

/*
 * The RFC 4954 loop: initial response where the mechanism has one and it
 * fits; then answer each 334.  A 235 counts only when the mechanism is
 * satisfied too (SCRAM and DIGEST-MD5 check the server).
 */
static int
sasl_exchange(Gsasl *ctx, struct exchange *x, struct error *e)
{
	Gsasl_session	*s = NULL;
	struct error	 ignored;
	char		*out = NULL, *pending = NULL;
	int		 rc, ret = -1;

	if (setup_session(ctx, &s, x, e) == -1)
		goto done;
	rc = gsasl_step64(s, NULL, &out);
	if (rc != GSASL_OK && rc != GSASL_NEEDS_MORE) {
		error_set(e, EX_SOFTWARE, "%s: %s", x->mech,
		    gsasl_strerror(rc));
		goto done;
	}
	if ((*out != '\0' || rc == GSASL_OK) &&
	    strcmp(x->mech, "LOGIN") != 0 &&
	    strlen(out) + strlen(x->mech) + 8 <= AUTH_LINE_MAX) {
		if (send_line(x, x->mech, out, e) == -1)
			goto done;
	} else {
		if (*out != '\0' || rc == GSASL_OK)
			pending = out, out = NULL;
		if (send_line(x, x->mech, NULL, e) == -1)
			goto done;
	}
	for (;;) {
		if (out != NULL) {
			explicit_bzero(out, strlen(out));
			gsasl_free(out);
			out = NULL;
		}
		if (read_reply(x, e) == -1)
			goto done;
		if (x->r.code == 235) {
			if (rc == GSASL_OK)
				ret = 0;
			else
				error_set(e, EX_NOPERM, "the relay accepted "
				    "%s before proving itself: not trusted",
				    x->mech);
			goto done;
		}
		if (x->r.code != 334) {
			refused(x, e);
			goto done;
		}
		if (pending != NULL) {
			if (send_line(x, NULL, pending, e) == -1)
				goto done;
			explicit_bzero(pending, strlen(pending));
			gsasl_free(pending);
			pending = NULL;
			continue;
		}
		if (rc != GSASL_OK &&
		    scram_iterations_ok(x->mech, challenge(&x->r), e) == -1) {
			(void)send_line(x, NULL, "*", &ignored);
			(void)read_reply(x, &ignored);
			goto done;
		}
		if (rc == GSASL_OK ||
		    ((rc = gsasl_step64(s, challenge(&x->r), &out)) !=
		    GSASL_OK && rc != GSASL_NEEDS_MORE)) {
			out = NULL;
			(void)send_line(x, NULL, "*", e);
			(void)read_reply(x, e);
			error_set(e, EX_NOPERM, "%s exchange with the relay "
			    "failed: %s", x->mech, rc == GSASL_OK ?
			    "more challenges than the mechanism has" :
			    gsasl_strerror(rc));
			goto done;
		}
		if (send_line(x, NULL, out, e) == -1)
			goto done;
	}
done:
	if (out != NULL) {
		explicit_bzero(out, strlen(out));
		gsasl_free(out);
	}
	if (pending != NULL) {
		explicit_bzero(pending, strlen(pending));
		gsasl_free(pending);
	}
	if (s != NULL)
		gsasl_finish(s);
	return ret;
}

/*
 * XOAUTH2 and OAUTHBEARER: the token is the password.  On failure the
 * relay sends a 334 with an error document; we answer it as each
 * mechanism wants and read the final refusal.
 */
/*
 * XOAUTH2 and OAUTHBEARER's one line: the token is the password.  The
 * caller wipes and frees *b64 (gsasl_free).
 */
static int
oauth_payload(struct exchange *x, char **b64, size_t *b64len,
    struct error *e)
{
	const struct account *a = x->acct;
	const char	*token = x->cred->password;
	char		*raw;
	size_t		 rawlen;
	int		 bearer = strcmp(x->mech, "OAUTHBEARER") == 0, n, rc;

	rawlen = strlen(a->user ? a->user : "") + strlen(token) +
	    strlen(a->host) + 64;
	raw = xcalloc(1, rawlen);
	if (bearer)
		n = snprintf(raw, rawlen, "n,a=%s,\001host=%s\001port=%d\001"
		    "auth=Bearer %s\001\001", a->user ? a->user : "", a->host,
		    a->port, token);
	else
		n = snprintf(raw, rawlen, "user=%s\001auth=Bearer %s\001\001",
		    a->user ? a->user : "", token);
	rc = gsasl_base64_to(raw, (size_t)n, b64, b64len);
	explicit_bzero(raw, rawlen);
	free(raw);
	if (rc != GSASL_OK)
		return error_set(e, EX_SOFTWARE, "cannot encode the %s token",
		    x->mech);
	return 0;
}

/*
 * XOAUTH2 and OAUTHBEARER: on failure the relay sends a 334 with an
 * error document; we answer it as each mechanism wants and read the
 * final refusal.
 */
static int
oauth_exchange(struct exchange *x, struct error *e)
{
	char	*b64 = NULL;
	size_t	 b64len = 0;
	int	 bearer = strcmp(x->mech, "OAUTHBEARER") == 0, ret = -1;

	if (oauth_payload(x, &b64, &b64len, e) == -1)
		return -1;
	if (send_line(x, x->mech, b64, e) == -1 || read_reply(x, e) == -1)
		goto done;
	if (x->r.code == 334) {
		if (send_line(x, NULL, bearer ? "AQ==" : "", e) == -1 ||
		    read_reply(x, e) == -1)
			goto done;
	}
	if (x->r.code == 235)
		ret = 0;
	else
		refused(x, e);
done:
	explicit_bzero(b64, b64len);
	gsasl_free(b64);
	return ret;
}

/*
 * A mechanism whose whole client side is one initial response (RFC
 * 4954 4): its AUTH line can ride in the transaction's flight.
 */
static int
one_step(const char *mech)
{
	return strcmp(mech, "PLAIN") == 0 || strcmp(mech, "EXTERNAL") == 0 ||
	    strcmp(mech, "XOAUTH2") == 0 || strcmp(mech, "OAUTHBEARER") == 0;
}

/* That one line, queued (not sent): 0, or -1 when it cannot be. */
static int
one_step_queue(Gsasl *ctx, struct exchange *x, struct error *e)
{
	Gsasl_session	*s = NULL;
	char		*out = NULL;
	size_t		 len = 0;
	int		 rc;

	if (strcmp(x->mech, "XOAUTH2") == 0 ||
	    strcmp(x->mech, "OAUTHBEARER") == 0)
		rc = oauth_payload(x, &out, &len, e) == 0 ? GSASL_OK : -1;
	else if (setup_session(ctx, &s, x, e) == -1)
		rc = -1;
	else if ((rc = gsasl_step64(s, NULL, &out)) != GSASL_OK) {
		error_set(e, EX_SOFTWARE, "%s: %s", x->mech,
		    gsasl_strerror(rc));
		out = NULL;
	}
	if (s != NULL)
		gsasl_finish(s);
	if (rc == GSASL_OK && strlen(out) + strlen(x->mech) + 8 >
	    AUTH_LINE_MAX) {
		error_set(e, EX_SOFTWARE, "%s: the initial response is too "
		    "long for one line", x->mech);
		rc = -1;
	}
	if (rc == GSASL_OK && queue_line(x, x->mech, out, e) == -1)
		rc = -1;
	if (out != NULL) {
		explicit_bzero(out, strlen(out));
		gsasl_free(out);
	}
	return rc == GSASL_OK ? 0 : -1;
}

/*
 * Never over an unencrypted connection, unless the user named the
 * mechanism, turned TLS off and the relay is this machine (SPEC 3).
 */
static int
may_authenticate(struct conn *c, const struct account *a,
    struct error *e)
{
	if (c->tls != NULL)
		return 0;
	if (strcmp(a->auth, "on") != 0 && !a->tls && is_loopback(a->host))
		return 0;
	return error_set(e, EX_CONFIG, "refusing to authenticate over an "
	    "unencrypted connection: turn tls on (or, for a relay on this "
	    "machine only, name the mechanism with auth)");
}

/*
 * Authenticate.  With PIPE and a one-step mechanism (PLAIN, EXTERNAL,
 * XOAUTH2, OAUTHBEARER) only the AUTH line is queued, to leave with the
 * transaction's flight (RFC 4954 4): returns 1, and auth_finish reads
 * its reply.  Otherwise the whole exchange happens here: 0 or -1.
 */
int
auth_start(struct conn *c, const struct smtp_caps *caps,
    const struct account *a, const struct cred *cred, int pipe,
    struct auth_pending *p, struct error *e)
{
	struct exchange	 x;
	Gsasl		*ctx = NULL;
	int		 rc, ret = -1;

	memset(&x, 0, sizeof(x));
	memset(p, 0, sizeof(*p));
	x.conn = c;
	x.acct = a;
	x.cred = cred;
	if (may_authenticate(c, a, e) == -1)
		goto done;
	if ((rc = gsasl_init(&ctx)) != GSASL_OK) {
		error_set(e, EX_SOFTWARE, "cannot start GNU SASL: %s",
		    gsasl_strerror(rc));
		goto done;
	}
	if ((x.mech = choose(c, caps, a, ctx, e)) == NULL)
		goto done;
	if (secret_needs_password(x.mech) && cred->password == NULL) {
		error_set(e, EX_CONFIG, "no password for %s: set password or "
		    "passwordeval, or provide it in "
		    "$CREDENTIALS_DIRECTORY/smarthost-password, "
		    "SMARTHOST_PASSWORD_FILE or ~/.netrc",
		    a->user ? a->user : a->host);
		goto done;
	}
	if (pipe && caps->pipelining && one_step(x.mech)) {
		if (one_step_queue(ctx, &x, e) == 0) {
			snprintf(p->mech, sizeof(p->mech), "%s", x.mech);
			ret = 1;
		}
	} else if (strcmp(x.mech, "XOAUTH2") == 0 ||
	    strcmp(x.mech, "OAUTHBEARER") == 0)
		ret = oauth_exchange(&x, e);
	else
		ret = sasl_exchange(ctx, &x, e);
done:
	if (ctx != NULL)
		gsasl_done(ctx);
	return ret;
}

/*
 * The reply to a pipelined AUTH: 0 for 235, 1 for a refusal (in e), -1
 * when the connection failed.  A 334 (a token
 * refused, as XOAUTH2 says it) means the relay took our next line as the
 * answer to it: its verdict comes next, and p->ate says that line is
 * gone.
 */
int
auth_finish(struct conn *c, const struct account *a, struct auth_pending *p,
    struct error *e)
{
	struct exchange	 x;

	memset(&x, 0, sizeof(x));
	x.conn = c;
	x.acct = a;
	x.mech = p->mech;
	if (read_reply(&x, e) == -1)
		return -1;
	if (x.r.code == 235)
		return 0;
	if (x.r.code == 334) {
		p->ate = 1;
		if (read_reply(&x, e) == -1)
			return -1;
		if (x.r.code == 235)
			x.r.code = 535;	/* proved nothing */
	}
	(void)refused(&x, e);
	return 1;
}

/* The whole exchange, now (--serverinfo). */
int
auth_login(struct conn *c, const struct smtp_caps *caps,
    const struct account *a, const struct cred *cred, struct error *e)
{
	struct auth_pending	 p;

	return auth_start(c, caps, a, cred, 0, &p, e);
}

const char *
auth_library_version(void)
{
	return gsasl_check_version(NULL);
}

char *
auth_mechanisms(void)
{
	Gsasl	*ctx;
	char	*list = NULL, *copy;

	if (gsasl_init(&ctx) != GSASL_OK)
		return xstrdup("(GNU SASL unavailable)");
	if (gsasl_client_mechlist(ctx, &list) != GSASL_OK)
		list = NULL;
	copy = xstrdup(list != NULL ? list : "");
	gsasl_free(list);
	gsasl_done(ctx);
	return copy;
}

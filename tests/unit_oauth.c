/*
 * Unit tests for oauth.c and http.c: the HTTP response parser, the
 * token endpoint's answers (tokens, device codes, errors and what they
 * tell the user), the token store's format, PKCE (RFC 7636's own
 * example), the oauth_* directives and presets through config_account,
 * and the Microsoft hint.  The network parts run in tests/t-oauth.sh.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "smarthost.h"
#include "unit.h"

static char	 tmp[128];
static char	 conf[200];

/* Parse a complete response (the peer closed): 0, 1 or -1. */
static int
parse(const char *text, struct http_response *r, struct error *e)
{
	return http_parse(text, strlen(text), 1, r, e);
}

/* What the send path gets for an account: secret_get, wiped at once. */
static int
get_token(struct account *a, struct error *e)
{
	struct cred	 cr;
	int		 rc;

	rc = secret_get(a, &cr, e);
	secret_clear(&cr);
	return rc;
}

static void
test_http(void)
{
	struct http_response	 r;
	struct error		 e;
	const char		*t;

	CHECK_INT(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
	    "Content-Type: application/json\r\n\r\nhello", &r, &e), 0,
	    "http: Content-Length");
	CHECK_INT(r.status, 200, "http: status");
	CHECK_STR(r.body, "hello", "http: body");
	http_response_free(&r);

	CHECK_INT(parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
	    &r, &e), 0, "http: bytes after the body are not the body");
	CHECK_STR(r.body, "ok", "http: Content-Length counts");
	http_response_free(&r);

	t = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "4;ext=1\r\n{\"a\"\r\nA\r\n:\"bcdefghi\r\n2\r\n\"}\r\n0\r\n"
	    "X-Trailer: yes\r\n\r\n";
	CHECK_INT(parse(t, &r, &e), 0, "http: chunked");
	CHECK_STR(r.body, "{\"a\":\"bcdefghi\"}", "http: chunks joined");
	http_response_free(&r);
	CHECK_INT(http_parse(t, strlen(t) - 2, 0, &r, &e), 1,
	    "http: chunked without its end: read more");
	CHECK_INT(http_parse(t, strlen(t) - 2, 1, &r, &e), -1,
	    "http: chunked cut off by the close: error");
	CHECK(strstr(e.msg, "closed the connection") != NULL,
	    "http: says it was cut off");

	t = "HTTP/1.0 200 OK\nContent-Type: x\n\nto the end";
	CHECK_INT(http_parse(t, strlen(t), 0, &r, &e), 1,
	    "http: no length: read until the close");
	CHECK_INT(http_parse(t, strlen(t), 1, &r, &e), 0,
	    "http: no length, bare LF: body ends at the close");
	CHECK_STR(r.body, "to the end", "http: body up to the close");
	http_response_free(&r);

	CHECK_INT(parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad\r\n"
	    "Content-Length: 2\r\n\r\n{}", &r, &e), 0, "http: 1xx skipped");
	CHECK_INT(r.status, 400, "http: the final status");
	http_response_free(&r);

	CHECK_INT(http_parse("HTTP/1.1 200 OK\r\nContent-Le", 26, 0, &r, &e),
	    1, "http: headers not complete: read more");
	CHECK_INT(parse("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
	    &r, &e), -1, "http: body shorter than Content-Length");
	CHECK_INT(parse("220 smtp.example ESMTP\r\n", &r, &e), -1,
	    "http: not HTTP");
	CHECK_INT(e.code, EX_PROTOCOL, "http: not HTTP is a protocol error");
	CHECK_INT(parse("HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", &r, &e), -1,
	    "http: folded header refused");
	CHECK_INT(parse("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
	    "Content-Length: 2\r\n\r\nab", &r, &e), -1,
	    "http: two different Content-Length refused");
	CHECK_INT(parse("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	    &r, &e), -1, "http: negative Content-Length refused");
	CHECK_INT(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, "
	    "chunked\r\n\r\n", &r, &e), -1, "http: other codings refused");
	CHECK_INT(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "2\r\nabc\r\n0\r\n\r\n", &r, &e), -1,
	    "http: chunk longer than its size refused");
	CHECK_INT(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "zz\r\n", &r, &e), -1, "http: bad chunk size refused");
	CHECK_INT(parse("HTTP/1.1 99 X\r\n\r\n", &r, &e), -1,
	    "http: status below 100 refused");

	CHECK(http_url_valid("https://login.example.com/t/oauth2/token"),
	    "url: https");
	CHECK(http_url_valid("https://127.0.0.1:8443/token?x=1"),
	    "url: port and query");
	CHECK(http_url_valid("https://[::1]:8443/"), "url: IPv6");
	CHECK(http_url_valid("HTTPS://example.com"), "url: no path");
	CHECK(!http_url_valid("http://example.com/token"), "url: no http");
	CHECK(!http_url_valid("https://user@example.com/"),
	    "url: no user info");
	CHECK(!http_url_valid("https://example.com/a b"), "url: no blank");
	CHECK(!http_url_valid("https://example.com:0/"), "url: port 0");
	CHECK(!http_url_valid("https://example.com:99999/"),
	    "url: port too big");
	CHECK(!http_url_valid("https:///path"), "url: no host");
	CHECK(!http_url_valid("https://example.com/#frag"),
	    "url: no fragment");
}

/* A response with this status and body. */
static struct http_response
resp(int status, const char *body)
{
	struct http_response	 r;

	r.status = status;
	r.body = (char *)body;
	r.len = strlen(body);
	return r;
}

static void
test_tokens(void)
{
	struct http_response	 r;
	struct oauth_token	 t;
	struct error		 e;
	long long		 now = (long long)time(NULL);

	r = resp(200, "{\"token_type\":\"Bearer\",\"access_token\":\"at-1\","
	    "\"expires_in\":3599,\"refresh_token\":\"rt-1\","
	    "\"scope\":\"https://outlook.office.com/SMTP.Send\"}");
	CHECK_INT(oauth_token_parse(&r, &t, &e), OAUTH_OK, "token: ok");
	CHECK_STR(t.access_token, "at-1", "token: access token");
	CHECK_STR(t.refresh_token, "rt-1", "token: refresh token");
	CHECK_STR(t.scope, "https://outlook.office.com/SMTP.Send",
	    "token: scope");
	CHECK(t.expires_at >= now + 3599 && t.expires_at <= now + 3601,
	    "token: expires_at from expires_in");
	oauth_token_free(&t);

	r = resp(200, "{\"token_type\":\"bearer\","
	    "\"access_token\":\"ya29.a-b_c\",\"expires_in\":\"3599\"}");
	CHECK_INT(oauth_token_parse(&r, &t, &e), OAUTH_OK,
	    "token: expires_in as a string (Microsoft v1)");
	CHECK(t.refresh_token == NULL, "token: no refresh token");
	CHECK(t.expires_at > now, "token: string expires_in counts");
	oauth_token_free(&t);

	r = resp(200, "{\"access_token\":\"at\",\"token_type\":\"Bearer\"}");
	CHECK_INT(oauth_token_parse(&r, &t, &e), OAUTH_OK,
	    "token: without expires_in");
	CHECK_INT(t.expires_at, 0, "token: without expires_in never reused");
	oauth_token_free(&t);

	r = resp(200, "{\"access_token\":\"a\\u0001b\",\"token_type\":"
	    "\"Bearer\"}");
	CHECK_INT(oauth_token_parse(&r, &t, &e), OAUTH_FAILED,
	    "token: control character refused (it would break XOAUTH2)");
	CHECK_INT(e.code, EX_PROTOCOL, "token: bad token is a protocol error");
	r = resp(200, "{\"access_token\":\"a b\"}");
	CHECK_INT(oauth_token_parse(&r, &t, &e), OAUTH_FAILED,
	    "token: blank refused");
	r = resp(200, "{\"access_token\":\"a\",\"token_type\":\"mac\"}");
	CHECK_INT(oauth_token_parse(&r, &t, &e), OAUTH_FAILED,
	    "token: not a bearer token");
	r = resp(200, "{\"access_token\":\"a\",\"expires_in\":-5}");
	CHECK_INT(oauth_token_parse(&r, &t, &e), OAUTH_FAILED,
	    "token: negative expires_in");
	r = resp(200, "{\"access_token\":\"a\",\"refresh_token\":7}");
	CHECK_INT(oauth_token_parse(&r, &t, &e), OAUTH_FAILED,
	    "token: refresh_token not a string");
	r = resp(200, "{\"access_token\":\"a\",\"access_token\":\"b\"}");
	CHECK_INT(oauth_token_parse(&r, &t, &e), OAUTH_FAILED,
	    "token: duplicate member refused");
	r = resp(200, "<html>");
	CHECK_INT(oauth_token_parse(&r, &t, &e), OAUTH_FAILED,
	    "token: not JSON");
	CHECK_INT(e.code, EX_PROTOCOL, "token: not JSON is a protocol error");
	r = resp(200, "[1]");
	CHECK_INT(oauth_token_parse(&r, &t, &e), OAUTH_FAILED,
	    "token: not an object");

	r = resp(400, "{\"error\":\"authorization_pending\"}");
	CHECK_INT(oauth_token_parse(&r, &t, &e), OAUTH_PENDING,
	    "error: authorization_pending");
	r = resp(400, "{\"error\":\"slow_down\"}");
	CHECK_INT(oauth_token_parse(&r, &t, &e), OAUTH_SLOW_DOWN,
	    "error: slow_down");
	r = resp(400, "{\"error\":\"invalid_grant\",\"error_description\":"
	    "\"AADSTS50173: revoked\\u001b[2J\"}");
	CHECK_INT(oauth_token_parse(&r, &t, &e), OAUTH_INVALID_GRANT,
	    "error: invalid_grant");
	CHECK_INT(e.code, EX_TEMPFAIL, "error: invalid_grant keeps the mail");
	CHECK(strstr(e.msg, "AADSTS50173: revoked?[2J") != NULL,
	    "error: the description, control characters made harmless");
	r = resp(400, "{\"error\":\"access_denied\"}");
	CHECK_INT(oauth_token_parse(&r, &t, &e), OAUTH_FAILED,
	    "error: access_denied");
	CHECK(strstr(e.msg, "declined") != NULL, "error: access_denied says");
	r = resp(400, "{\"error\":\"expired_token\"}");
	CHECK_INT(oauth_token_parse(&r, &t, &e), OAUTH_FAILED,
	    "error: expired_token");
	CHECK(strstr(e.msg, "--configure again") != NULL,
	    "error: expired_token says what to do");
	r = resp(401, "{\"error\":\"invalid_client\",\"error_description\":"
	    "\"AADSTS7000215: Invalid client secret provided.\"}");
	CHECK_INT(oauth_token_parse(&r, &t, &e), OAUTH_FAILED,
	    "error: invalid_client");
	CHECK_INT(e.code, EX_CONFIG, "error: invalid_client is a config error");
	CHECK(strstr(e.msg, "oauth_client_secret") != NULL &&
	    strstr(e.msg, "AADSTS7000215") != NULL,
	    "error: invalid_client names the directives and the reason");
	r = resp(400, "{\"error\":\"invalid_scope\"}");
	(void)oauth_token_parse(&r, &t, &e);
	CHECK(strstr(e.msg, "oauth_scope") != NULL, "error: invalid_scope");
	r = resp(503, "<html>busy</html>");
	CHECK_INT(oauth_token_parse(&r, &t, &e), OAUTH_FAILED, "error: 503");
	CHECK_INT(e.code, EX_TEMPFAIL, "error: 5xx keeps the mail");
	CHECK(strstr(e.msg, "HTTP 503") != NULL, "error: 5xx named");
	r = resp(404, "not found");
	(void)oauth_token_parse(&r, &t, &e);
	CHECK_INT(e.code, EX_CONFIG, "error: 404 is a config error");
	CHECK(strstr(e.msg, "oauth_token_endpoint") != NULL,
	    "error: 404 names the URL directive");
	r = resp(200, "{\"error\":\"invalid_request\"}");
	CHECK_INT(oauth_token_parse(&r, &t, &e), OAUTH_FAILED,
	    "error: an error with status 200 is an error");
}

static void
test_device(void)
{
	struct http_response	 r;
	struct oauth_device	 d;
	struct error		 e;
	long long		 now = now_ms();

	r = resp(200, "{\"device_code\":\"dc\",\"user_code\":\"ABCD-EFGH\","
	    "\"verification_uri\":\"https://microsoft.com/devicelogin\","
	    "\"expires_in\":900,\"interval\":5,\"message\":\"x\"}");
	CHECK_INT(oauth_device_parse(&r, &d, &e), 0, "device: ok");
	CHECK_STR(d.user_code, "ABCD-EFGH", "device: user code");
	CHECK_STR(d.uri, "https://microsoft.com/devicelogin", "device: uri");
	CHECK_INT(d.interval, 5, "device: interval");
	CHECK(d.deadline >= now + 899000 && d.deadline <= now + 901000,
	    "device: deadline from expires_in");
	oauth_device_free(&d);

	r = resp(200, "{\"device_code\":\"dc\",\"user_code\":\"X\","
	    "\"verification_url\":\"https://www.google.com/device\","
	    "\"expires_in\":\"1800\"}");
	CHECK_INT(oauth_device_parse(&r, &d, &e), 0,
	    "device: Google's verification_url");
	CHECK_INT(d.interval, 5, "device: interval defaults to 5 s");
	oauth_device_free(&d);

	r = resp(200, "{\"device_code\":\"dc\",\"user_code\":\"X\","
	    "\"verification_uri\":\"javascript:alert(1)\"}");
	CHECK_INT(oauth_device_parse(&r, &d, &e), -1,
	    "device: not a web address");
	r = resp(200, "{\"user_code\":\"X\",\"verification_uri\":"
	    "\"https://x/\"}");
	CHECK_INT(oauth_device_parse(&r, &d, &e), -1, "device: no code");
	r = resp(400, "{\"error\":\"unauthorized_client\"}");
	CHECK_INT(oauth_device_parse(&r, &d, &e), -1, "device: error");
	CHECK(strstr(e.msg, "public client") != NULL,
	    "device: unauthorized_client says what to allow");
}

/* A test account for the store: client and user. */
static void
store_account(struct account *a, const char *client, const char *user)
{
	memset(a, 0, sizeof(*a));
	a->oauth_client_id = (char *)client;
	a->user = (char *)user;
}

static void
test_store(void)
{
	struct account		 a;
	struct oauth_token	 t;
	struct error		 e;
	const char		*s;
	char			*p;

	s = "{\"smarthost_oauth\":1,\"client_id\":\"c1\",\"user\":\"u@x\","
	    "\"scope\":\"s\",\"access_token\":\"at\",\"expires_at\":1234,"
	    "\"refresh_token\":\"rt\"}";
	store_account(&a, "c1", "u@x");
	CHECK_INT(oauth_store_parse(s, strlen(s), &a, &t, &e), 0,
	    "store: read");
	CHECK_STR(t.access_token, "at", "store: access token");
	CHECK_STR(t.refresh_token, "rt", "store: refresh token");
	CHECK_INT(t.expires_at, 1234, "store: expires_at");
	oauth_token_free(&t);
	store_account(&a, "c2", "u@x");
	CHECK_INT(oauth_store_parse(s, strlen(s), &a, &t, &e), 1,
	    "store: another client's is not ours");
	store_account(&a, "c1", "v@x");
	CHECK_INT(oauth_store_parse(s, strlen(s), &a, &t, &e), 1,
	    "store: another user's is not ours");
	store_account(&a, "c1", "u@x");
	s = "{\"smarthost_oauth\":2,\"client_id\":\"c1\",\"expires_at\":1,"
	    "\"access_token\":\"at\"}";
	CHECK_INT(oauth_store_parse(s, strlen(s), &a, &t, &e), -1,
	    "store: unknown version");
	s = "{\"smarthost_oauth\":1,\"client_id\":\"c1\",\"user\":\"u@x\","
	    "\"expires_at\":1}";
	CHECK_INT(oauth_store_parse(s, strlen(s), &a, &t, &e), -1,
	    "store: no token at all");
	CHECK_INT(oauth_store_parse("{", 1, &a, &t, &e), -1,
	    "store: not JSON");

	p = oauth_store_name("/d", "../work acct");
	CHECK_STR(p, "/d/_._work_acct", "store name: no slash, no blank");
	free(p);
	p = oauth_store_name("/d", ".hidden");
	CHECK_STR(p, "/d/_hidden", "store name: no leading dot");
	free(p);
}

static void
test_pkce(void)
{
	char	 out[64];

	/* RFC 7636, Appendix B. */
	CHECK_INT(oauth_pkce_challenge(
	    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", out, sizeof(out)),
	    0, "pkce: challenge");
	CHECK_STR(out, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
	    "pkce: RFC 7636 appendix B");
}

/*
 * Directives and presets, through config_account with a -C file.
 */
static void
reset_env(void)
{
	const char *const	*d;
	char			 var[64];
	size_t			 i;

	for (d = config_directives(); *d != NULL; d++) {
		snprintf(var, sizeof(var), "SMARTHOST_%s", *d);
		for (i = 0; var[i] != '\0'; i++)
			if (var[i] >= 'a' && var[i] <= 'z')
				var[i] = (char)(var[i] - 'a' + 'A');
		unsetenv(var);
	}
	unsetenv("SMARTHOST_RELAY");
	unsetenv("SMARTHOST_PASSWORD");
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("XDG_STATE_HOME");
	setenv("HOME", tmp, 1);
	setenv("SMARTHOST_SYSCONF", "/nonexistent/smarthost.conf", 1);
	setenv("SMARTHOST_MAILNAME_FILE", "/nonexistent/mailname", 1);
}

static int
load(const char *text, struct cmdline *cl, struct account *a,
    struct error *e)
{
	int	 fd;

	unlink(conf);
	if ((fd = open(conf, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		exit(1);
	close(fd);
	memset(e, 0, sizeof(*e));
	cl->conffile = conf;
	return config_account(cl, a, e);
}

static void
cl_init(struct cmdline *cl)
{
	memset(cl, 0, sizeof(*cl));
	cl->mode = MODE_SEND;
	cl->dot_ends = 1;
}

static void
test_config(void)
{
	struct cmdline	 cl;
	struct account	 a;
	struct override	 over[1];
	struct error	 e;
	char		*out = NULL, want[512];
	size_t		 len = 0;
	FILE		*fp;

	reset_env();
	cl_init(&cl);
	CHECK_INT(load("provider office365\nuser a@contoso.example\n"
	    "oauth_client_id 0000-1111\n", &cl, &a, &e), 0,
	    "office365 with a client: loads");
	CHECK_STR(a.auth, "XOAUTH2", "office365: auth XOAUTH2");
	CHECK_STR(a.oauth_grant, "device", "office365: device flow");
	CHECK_STR(a.oauth_tenant, "organizations",
	    "office365: tenant organizations");
	CHECK_STR(a.oauth_scope, "https://outlook.office.com/SMTP.Send "
	    "offline_access", "office365: delegated scope");
	CHECK_STR(a.oauth_token_endpoint, "https://login.microsoftonline.com/"
	    "{tenant}/oauth2/v2.0/token", "office365: token endpoint");
	CHECK_STR(a.oauth_device_endpoint, "https://login.microsoftonline.com/"
	    "{tenant}/oauth2/v2.0/devicecode", "office365: device endpoint");
	snprintf(want, sizeof(want), "%s/.local/state/smarthost/oauth/default",
	    tmp);
	CHECK_STR(a.oauth_token_store, want, "office365: the user's store");
	account_free(&a);

	CHECK_INT(load("provider office365\nuser a@contoso.example\n"
	    "oauth_client_id 0000-1111\noauth_grant client_credentials\n"
	    "oauth_tenant contoso.example\noauth_client_secret s3\n",
	    &cl, &a, &e), 0, "office365 app-only: loads");
	CHECK_STR(a.oauth_scope, "https://outlook.office365.com/.default",
	    "office365 app-only: .default scope");
	CHECK_STR(a.oauth_tenant, "contoso.example", "own tenant wins");
	account_free(&a);

	CHECK_INT(load("provider gmail\nuser a@gmail.com\n"
	    "oauth_client_id x.apps.googleusercontent.com\n", &cl, &a, &e), 0,
	    "gmail with a client: loads");
	CHECK_STR(a.oauth_grant, "authorization_code", "gmail: code + PKCE");
	CHECK_STR(a.oauth_scope, "https://mail.google.com/", "gmail: scope");
	CHECK(a.oauth_device_endpoint == NULL, "gmail: no device endpoint");
	CHECK_STR(a.oauth_authorize_endpoint,
	    "https://accounts.google.com/o/oauth2/v2/auth",
	    "gmail: authorize endpoint");
	account_free(&a);

	CHECK_INT(load("provider office365\nuser a@contoso.example\n"
	    "password x\n", &cl, &a, &e), 0, "office365 without a client");
	CHECK(a.oauth_token_endpoint == NULL && a.oauth_token_store == NULL,
	    "no client id: no OAuth2 at all");
	CHECK_STR(a.auth, "on", "no client id: auth on");
	fp = open_memstream(&out, &len);
	config_print(fp, &a);
	fclose(fp);
	CHECK(strstr(out, "oauth_") == NULL,
	    "config_print: no oauth lines without OAuth2");
	free(out);
	account_free(&a);

	CHECK_INT(load("host h\noauth_client_id c\n"
	    "oauth_token_endpoint http://h/token\n", &cl, &a, &e), -1,
	    "oauth_token_endpoint must be https");
	CHECK(strstr(e.msg, ":3: invalid value") != NULL,
	    "a bad endpoint names file and line");
	CHECK_INT(load("host h\noauth_grant password\n", &cl, &a, &e), -1,
	    "oauth_grant: unknown grant");
	CHECK_INT(load("host h\noauth_tenant a/b\n", &cl, &a, &e), -1,
	    "oauth_tenant: no slash");
	CHECK_INT(load("host h\noauth_client_secret x\n", &cl, &a, &e), 0,
	    "oauth_client_secret in a 0600 file");
	account_free(&a);
	chmod(conf, 0644);
	CHECK_INT(config_account(&cl, &a, &e), -1,
	    "oauth_client_secret in a file others read: refused");
	CHECK(strstr(e.msg, "chmod 600") != NULL, "... says chmod 600");

	over[0].name = "oauth_client_secret";
	over[0].value = "x";
	cl.over = over;
	cl.nover = 1;
	CHECK_INT(load("host h\n", &cl, &a, &e), -1,
	    "--oauth-client-secret refused");
	CHECK_INT(e.code, EX_USAGE, "--oauth-client-secret: usage error");
	cl.over = NULL;
	cl.nover = 0;

	CHECK_INT(load("host h\nuser u\nauth plain\noauth_client_id c\n"
	    "oauth_token_endpoint https://h/t\n", &cl, &a, &e), 0,
	    "OAuth2 with auth plain: loads");
	CHECK_INT(get_token(&a, &e), -1, "... but gets no token");
	CHECK(strstr(e.msg, "auth xoauth2 or oauthbearer") != NULL,
	    "... and says which auth");
	account_free(&a);

	CHECK_INT(load("host h\nuser u@x\noauth_client_id c\n"
	    "oauth_token_endpoint https://login.example/{tenant}/token\n",
	    &cl, &a, &e), 0, "{tenant} without oauth_tenant: loads");
	CHECK_INT(get_token(&a, &e), -1, "... no token");
	CHECK(strstr(e.msg, "needs oauth_tenant") != NULL,
	    "... says to set oauth_tenant");
	account_free(&a);

	CHECK_INT(load("provider office365\nuser u@x\noauth_client_id c\n"
	    "oauth_grant client_credentials\noauth_client_secret s\n",
	    &cl, &a, &e), 0, "app-only with tenant organizations: loads");
	CHECK_INT(get_token(&a, &e), -1, "... no token");
	CHECK(strstr(e.msg, "need your own tenant") != NULL,
	    "... says app-only needs the own tenant");
	account_free(&a);

	CHECK_INT(load("host h\nuser u@x\noauth_client_id c\n"
	    "oauth_token_endpoint https://h/t\n"
	    "oauth_grant client_credentials\n", &cl, &a, &e), 0,
	    "app-only without a secret: loads");
	CHECK_INT(get_token(&a, &e), -1, "... no token");
	CHECK(strstr(e.msg, "needs the client secret") != NULL,
	    "... says the secret is missing");
	account_free(&a);

	/* No token yet: the message stays queued (75), with what to do. */
	CHECK_INT(load("host h\nuser u@x\noauth_client_id c\n"
	    "oauth_token_endpoint https://h/t\n", &cl, &a, &e), 0,
	    "no token yet: loads");
	CHECK_INT(get_token(&a, &e), -1, "... no token");
	CHECK_INT(e.code, EX_TEMPFAIL, "... temporary: the mail is kept");
	CHECK(strstr(e.msg, "smarthost --configure u@x") != NULL,
	    "... says to run --configure");
	account_free(&a);
}

static void
test_hint(void)
{
	const char	*h;

	h = provider_hint("office365", "550 5.7.30 Basic authentication is "
	    "not supported for Client Submission.");
	CHECK(h != NULL && strstr(h, "MC786329") != NULL &&
	    strstr(h, "SmtpClientAuthenticationDisabled") != NULL &&
	    strstr(h, "OAuth2") != NULL,
	    "hint: 5.7.30 -> the tenant's SMTP AUTH setting and OAuth2");
	h = provider_hint("office365", "535 5.7.139 Authentication "
	    "unsuccessful, basic authentication is disabled.");
	CHECK(h != NULL && strstr(h, "MC786329") != NULL, "hint: 5.7.139");
	h = provider_hint("outlook", "535 5.7.139 Authentication "
	    "unsuccessful, basic authentication is disabled.");
	CHECK(h != NULL && strstr(h, "OAuth2") != NULL, "hint: outlook too");
	CHECK(provider_hint("gmx", "550 5.7.30 Basic authentication") ==
	    NULL || strstr(provider_hint("gmx", "550 5.7.30 Basic "
	    "authentication"), "MC786329") == NULL,
	    "hint: not for other providers");
}

int
main(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/unit_oauth.XXXXXX");
	if (mkdtemp(tmp) == NULL)
		return 1;
	snprintf(conf, sizeof(conf), "%s/conf", tmp);
	test_http();
	test_tokens();
	test_device();
	test_store();
	test_pkce();
	test_config();
	test_hint();
	unlink(conf);
	rmdir(tmp);
	UNIT_DONE();
}

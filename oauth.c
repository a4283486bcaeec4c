/*
 * OAuth2 built in: the access token that XOAUTH2 and OAUTHBEARER send
 * as the password, obtained with the account's own client registration
 * and kept fresh without a helper script.
 *
 * Grants: the device authorization grant (RFC 8628) and the
 * authorization code grant with PKCE (RFC 7636) sign a user in at
 * --configure; after that every send uses the cached access token until
 * shortly before it expires, then the refresh token (RFC 6749 6), saving
 * a rotated one.  The client credentials grant (RFC 6749 4.4) needs no
 * user at all (Microsoft 365 app-only SMTP).
 *
 * The token store is one JSON file per account, 0600 and the user's,
 * replaced atomically under a lock, so two runs never both refresh.
 * In a setgid install the system account's store lies under the system
 * queue, root:smarthost 0640, read with the group raised (priv.c);
 * only root's runs write it.  Tokens never reach a trace, a log line
 * or an error message, and every copy is wiped: jansson allocates
 * through functions here that wipe what they free.
 */
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <mbedtls/base64.h>
#include <mbedtls/sha256.h>

#include "smarthost.h"

#define REFRESH_MARGIN	60		/* seconds before expiry: refresh */
#define STORE_MAX	(64 * 1024)	/* a token store file */
#define TOKEN_MAX	16384		/* an access or refresh token */
#define SHOWN_MAX	300		/* of an error_description */
#define LIFETIME_MAX	(10LL * 365 * 86400)
#define DEVICE_WAIT_MAX	3600		/* seconds a device code may live */
#define STORE_VERSION	1
#define DEVICE_GRANT	"urn:ietf:params:oauth:grant-type:device_code"

static const char *const grants[] = {
	"device", "authorization_code", "client_credentials", NULL
};

/*
 * JSON through jansson, whose buffers held tokens: every block carries
 * its size in front, so the free function can wipe it.
 */
#define JSON_HEAD	16	/* keeps malloc's alignment */

static void *
json_wipe_alloc(size_t n)
{
	unsigned char	*p;

	if (n > SIZE_MAX - JSON_HEAD || (p = malloc(n + JSON_HEAD)) == NULL)
		return NULL;
	memcpy(p, &n, sizeof(n));
	return p + JSON_HEAD;
}

static void
json_wipe_free(void *v)
{
	unsigned char	*p;
	size_t		 n;

	if (v == NULL)
		return;
	p = (unsigned char *)v - JSON_HEAD;
	memcpy(&n, p, sizeof(n));
	explicit_bzero(p, n + JSON_HEAD);
	free(p);
}

static json_t *
json_parse(const char *buf, size_t len)
{
	json_error_t	 jerr;

	/* Idempotent: the same two functions every time. */
	json_set_alloc_funcs(json_wipe_alloc, json_wipe_free);
	return json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
}

/* A string member made only of printable ASCII, no blank; else NULL. */
static const char *
json_word(json_t *o, const char *key, size_t max)
{
	json_t		*v = json_object_get(o, key);
	const char	*s;
	size_t		 n, i;

	if (!json_is_string(v))
		return NULL;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n == 0 || n > max || strlen(s) != n)
		return NULL;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return NULL;
	return s;
}

/* Any string member, made safe to print and cut to size. */
static void
json_text(json_t *o, const char *key, char *buf, size_t size)
{
	json_t	*v = json_object_get(o, key);

	buf[0] = '\0';
	if (json_is_string(v))
		sanitize(buf, size, json_string_value(v));
}

/* A number of seconds, as a number or a numeric string; -1 if absent. */
static long long
json_seconds(json_t *o, const char *key)
{
	json_t		*v = json_object_get(o, key);
	const char	*s;
	long long	 n = 0;

	if (json_is_integer(v))
		n = json_integer_value(v);
	else if (json_is_string(v)) {
		s = json_string_value(v);
		if (*s == '\0' || strlen(s) > 12)
			return -2;
		for (; *s != '\0'; s++) {
			if (*s < '0' || *s > '9')
				return -2;
			n = n * 10 + (*s - '0');
		}
	} else if (v == NULL)
		return -1;
	else
		return -2;
	return n >= 0 && n <= LIFETIME_MAX ? n : -2;
}

/*
 * Directive values (config.c calls this for each oauth_* directive but
 * the secret and the files): checked where they are read, so an error
 * names the file and line.
 */
int
oauth_enabled(const struct account *a)
{
	return a->oauth_client_id != NULL;
}

static int
printable(const char *s, int blanks)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < ' ' || (unsigned char)*s >= 0x7f ||
		    (!blanks && *s == ' '))
			return 0;
	return 1;
}

int
oauth_norm(const char *name, const char *arg, char **out, const char **why)
{
	size_t	 i;

	*out = NULL;
	if (strcmp(name, "oauth_grant") == 0) {
		*why = "use device, authorization_code or client_credentials";
		for (i = 0; grants[i] != NULL; i++)
			if (strcasecmp(arg, grants[i]) == 0) {
				*out = xstrdup(grants[i]);
				return 0;
			}
		return -1;
	}
	if (strstr(name, "_endpoint") != NULL) {
		*why = "use an https:// URL (https://HOST[:PORT]/PATH); "
		    "{tenant} stands for oauth_tenant";
		if (!http_url_valid(arg))
			return -1;
	} else if (strcmp(name, "oauth_redirect_uri") == 0) {
		*why = "use an http:// or https:// URL without blanks";
		if ((strncasecmp(arg, "http://", 7) != 0 &&
		    strncasecmp(arg, "https://", 8) != 0) ||
		    !printable(arg, 0) || strlen(arg) > 1024)
			return -1;
	} else if (strcmp(name, "oauth_tenant") == 0) {
		*why = "use the tenant's ID or domain, or common, "
		    "organizations or consumers";
		if (strlen(arg) > 128 || strspn(arg, "abcdefghijklmnopqrstu"
		    "vwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") !=
		    strlen(arg))
			return -1;
	} else if (strcmp(name, "oauth_scope") == 0) {
		*why = "use scopes separated by blanks, printable ASCII";
		if (strlen(arg) > 2048 || !printable(arg, 1))
			return -1;
	} else {
		*why = "use printable ASCII without blanks";
		if (strlen(arg) > 1024 || !printable(arg, 0))
			return -1;
	}
	*out = xstrdup(arg);
	return 0;
}

/* DIR/NAME, the account name made a safe file name (config.c). */
char *
oauth_store_name(const char *dir, const char *account)
{
	size_t	 n = strlen(dir), i, len = strlen(account);
	char	*p = xcalloc(1, n + len + 8);

	snprintf(p, n + len + 8, "%s/%s", dir, len > 0 ? account : "_");
	for (i = n + 1; p[i] != '\0'; i++)
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV"
		    "WXYZ0123456789-_@+", p[i]) == NULL && !(p[i] == '.' &&
		    i > n + 1))
			p[i] = '_';
	return p;
}

/*
 * The settings a grant needs, resolved: the preset's endpoints with
 * the tenant put in, the client secret read.
 */
struct oauth_cfg {
	const char	*grant;
	char		*token_url, *device_url, *authorize_url;
	const char	*client_id, *scope, *redirect;
	char		*secret;		/* wiped */
	const char	*extra;			/* the preset's, or NULL */
};

static void
cfg_free(struct oauth_cfg *c)
{
	free(c->token_url);
	free(c->device_url);
	free(c->authorize_url);
	secret_free(c->secret);
	memset(c, 0, sizeof(*c));
}

/* URL with {tenant} replaced; NULL stays NULL. */
static int
endpoint(const struct account *a, const char *url, const char *what,
    char **out, struct error *e)
{
	const char	*t;
	size_t		 n;

	*out = NULL;
	if (url == NULL)
		return 0;
	if ((t = strstr(url, "{tenant}")) == NULL) {
		*out = xstrdup(url);
		return 0;
	}
	if (a->oauth_tenant == NULL)
		return error_set(e, EX_CONFIG, "%s %s needs oauth_tenant: set "
		    "it to your tenant's ID or domain (or organizations)",
		    what, url);
	n = strlen(url) + strlen(a->oauth_tenant) + 1;
	*out = xcalloc(1, n);
	snprintf(*out, n, "%.*s%s%s", (int)(t - url), url, a->oauth_tenant,
	    t + 8);
	return 0;
}

/* The command's first line, or the file's: config.c runs and reads. */
static int
cfg_secret(const struct account *a, struct oauth_cfg *c, struct error *e)
{
	if (a->oauth_client_secret != NULL) {
		c->secret = xstrdup(a->oauth_client_secret);
		return 0;
	}
	if (a->oauth_client_secret_file == NULL &&
	    a->oauth_client_secret_eval == NULL)
		return 0;
	/* In the caller's name, for the caller to read: not the system's. */
	if (a->system && priv_restricted())
		return error_set(e, EX_CONFIG, "account %s in %s: "
		    "oauth_client_secret_file and oauth_client_secret_eval "
		    "would run in the name of whoever sends, in a setgid "
		    "install: put oauth_client_secret itself in that file",
		    a->name, a->source);
	return secret_read(a, a->oauth_client_secret_file,
	    a->oauth_client_secret_eval, &c->secret, e);
}

/* The secret, read only when a request is about to be made. */
static int
cfg_need_secret(const struct account *a, struct oauth_cfg *c,
    struct error *e)
{
	if (c->secret == NULL && cfg_secret(a, c, e) == -1)
		return -1;
	if (strcmp(c->grant, "client_credentials") == 0 && c->secret == NULL)
		return error_set(e, EX_CONFIG, "account %s: oauth_grant "
		    "client_credentials needs the client secret: set "
		    "oauth_client_secret, oauth_client_secret_file or "
		    "oauth_client_secret_eval", a->name);
	return 0;
}

static int
cfg_load(const struct account *a, struct oauth_cfg *c, int secret,
    struct error *e)
{
	struct preset	 p;
	struct error	 perr;

	memset(c, 0, sizeof(*c));
	c->client_id = a->oauth_client_id;
	c->scope = a->oauth_scope;
	c->redirect = a->oauth_redirect_uri != NULL ? a->oauth_redirect_uri :
	    "http://localhost";
	c->grant = a->oauth_grant != NULL ? a->oauth_grant :
	    a->oauth_device_endpoint != NULL ? "device" : "authorization_code";
	if (a->provider != NULL && provider_find(a->provider, &p, &perr) == 0 &&
	    p.oauth != NULL)
		c->extra = p.oauth->authorize_extra;
	if (a->auth == NULL || (strcmp(a->auth, "XOAUTH2") != 0 &&
	    strcmp(a->auth, "OAUTHBEARER") != 0))
		return error_set(e, EX_CONFIG, "account %s: OAuth2 tokens go "
		    "with auth xoauth2 or oauthbearer, not auth %s", a->name,
		    a->auth != NULL ? a->auth : "off");
	if (a->oauth_token_endpoint == NULL)
		return error_set(e, EX_CONFIG, "account %s: oauth_client_id is "
		    "set but no oauth_token_endpoint (the presets office365, "
		    "outlook and gmail fill it in)", a->name);
	if (strcmp(c->grant, "client_credentials") == 0 && a->oauth_tenant !=
	    NULL && (strcmp(a->oauth_tenant, "common") == 0 ||
	    strcmp(a->oauth_tenant, "organizations") == 0 ||
	    strcmp(a->oauth_tenant, "consumers") == 0))
		return error_set(e, EX_CONFIG, "account %s: app-only tokens "
		    "(oauth_grant client_credentials) need your own tenant: "
		    "set oauth_tenant to its ID or domain, not %s", a->name,
		    a->oauth_tenant);
	if (endpoint(a, a->oauth_token_endpoint, "oauth_token_endpoint",
	    &c->token_url, e) == -1 || endpoint(a, a->oauth_device_endpoint,
	    "oauth_device_endpoint", &c->device_url, e) == -1 ||
	    endpoint(a, a->oauth_authorize_endpoint,
	    "oauth_authorize_endpoint", &c->authorize_url, e) == -1 ||
	    (secret && cfg_need_secret(a, c, e) == -1)) {
		cfg_free(c);
		return -1;
	}
	return 0;
}

/* What to tell the user to run. */
static const char *
configure_address(const struct account *a)
{
	if (a->user != NULL && strchr(a->user, '@') != NULL)
		return a->user;
	return a->from != NULL ? a->from : "ADDRESS";
}

/*
 * A form (application/x-www-form-urlencoded) of secrets: it grows by
 * copying into a new buffer and wiping the old one.
 */
struct form {
	char	*p;
	size_t	 len, cap;
};

static void
form_put(struct form *f, const char *s, size_t n)
{
	char	*p;

	if (f->len + n + 1 > f->cap) {
		p = xcalloc(1, (f->len + n + 1) * 2);
		if (f->p != NULL) {
			memcpy(p, f->p, f->len);
			explicit_bzero(f->p, f->cap);
			free(f->p);
		}
		f->p = p;
		f->cap = (f->len + n + 1) * 2;
	}
	memcpy(f->p + f->len, s, n);
	f->len += n;
	f->p[f->len] = '\0';
}

static void
form_encode(struct form *f, const char *s)
{
	static const char	 hex[] = "0123456789ABCDEF";
	char			 enc[3];

	for (; *s != '\0'; s++) {
		if (strchr("-._~", *s) != NULL || (*s >= '0' && *s <= '9') ||
		    (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')) {
			form_put(f, s, 1);
			continue;
		}
		enc[0] = '%';
		enc[1] = hex[(unsigned char)*s >> 4];
		enc[2] = hex[(unsigned char)*s & 15];
		form_put(f, enc, 3);
	}
}

static void
form_add(struct form *f, const char *key, const char *value)
{
	if (value == NULL)
		return;
	if (f->len > 0)
		form_put(f, "&", 1);
	form_encode(f, key);
	form_put(f, "=", 1);
	form_encode(f, value);
}

static void
form_free(struct form *f)
{
	if (f->p != NULL)
		explicit_bzero(f->p, f->cap);
	free(f->p);
	memset(f, 0, sizeof(*f));
}

/*
 * What the token endpoint answered (RFC 6749 5.1 and 5.2, RFC 8628
 * 3.5): a token, one of the device flow's "not yet", or an error that
 * says what to do.
 */
static enum oauth_reply
reply_error(const struct http_response *r, json_t *o, struct error *e)
{
	const char	*code;
	char		 desc[SHOWN_MAX + 1], shown[72];

	code = o != NULL ? json_word(o, "error", 64) : NULL;
	if (code == NULL) {
		if (r->status >= 500 || r->status == 429)
			error_set(e, EX_TEMPFAIL, "the token endpoint answered "
			    "HTTP %d: it has trouble now, try again later",
			    r->status);
		else if (r->status >= 400)
			error_set(e, EX_CONFIG, "the token endpoint answered "
			    "HTTP %d without an OAuth2 error: check its URL "
			    "(oauth_token_endpoint, oauth_device_endpoint)",
			    r->status);
		else
			error_set(e, EX_PROTOCOL, "the token endpoint answered "
			    "HTTP %d without a token", r->status);
		return OAUTH_FAILED;
	}
	if (strcmp(code, "authorization_pending") == 0)
		return OAUTH_PENDING;
	if (strcmp(code, "slow_down") == 0)
		return OAUTH_SLOW_DOWN;
	json_text(o, "error_description", desc, sizeof(desc));
	desc[strcspn(desc, "\n")] = '\0';
	sanitize(shown, sizeof(shown), code);
#define WHY(fmt) fmt " (%s%s%s)", shown, desc[0] ? ": " : "", desc
	if (strcmp(code, "invalid_grant") == 0) {
		error_set(e, EX_TEMPFAIL, WHY("the token endpoint refused the "
		    "grant: it was revoked, has expired or was used already"));
		return OAUTH_INVALID_GRANT;
	}
	/* Microsoft says authorization_declined. */
	if (strcmp(code, "access_denied") == 0 ||
	    strcmp(code, "authorization_declined") == 0)
		error_set(e, EX_NOPERM, WHY("the sign-in was declined"));
	else if (strcmp(code, "expired_token") == 0)
		error_set(e, EX_TEMPFAIL, WHY("the code expired before the "
		    "sign-in was finished: run smarthost --configure again"));
	else if (strcmp(code, "invalid_client") == 0)
		error_set(e, EX_CONFIG, WHY("the token endpoint does not "
		    "accept this client: check oauth_client_id, "
		    "oauth_client_secret and oauth_tenant"));
	else if (strcmp(code, "unauthorized_client") == 0)
		error_set(e, EX_CONFIG, WHY("this client may not use this "
		    "grant: check the app registration (the device flow needs "
		    "public client flows allowed)"));
	else if (strcmp(code, "invalid_scope") == 0)
		error_set(e, EX_CONFIG, WHY("the scope was refused: check "
		    "oauth_scope and the API permissions of the app "
		    "registration"));
	else if (strcmp(code, "temporarily_unavailable") == 0 ||
	    strcmp(code, "server_error") == 0 || r->status >= 500)
		error_set(e, EX_TEMPFAIL, WHY("the token endpoint has trouble "
		    "now; try again later"));
	else
		error_set(e, EX_CONFIG, WHY("the token endpoint refused the "
		    "request"));
#undef WHY
	return OAUTH_FAILED;
}

static int
is_bearer(json_t *o)
{
	json_t	*t = json_object_get(o, "token_type");

	/* Required by RFC 6749 5.1; an endpoint that leaves it out gets by. */
	return t == NULL || (json_is_string(t) &&
	    strcasecmp(json_string_value(t), "bearer") == 0);
}

enum oauth_reply
oauth_token_parse(const struct http_response *r, struct oauth_token *t,
    struct error *e)
{
	json_t		*o;
	const char	*at, *rt, *scope;
	long long	 life;
	enum oauth_reply rc = OAUTH_FAILED;

	memset(t, 0, sizeof(*t));
	if ((o = json_parse(r->body, r->len)) != NULL && !json_is_object(o)) {
		json_decref(o);
		o = NULL;
	}
	if (r->status != 200 || o == NULL || json_object_get(o, "error")) {
		if (r->status == 200 && o == NULL) {
			error_set(e, EX_PROTOCOL, "the token endpoint's answer "
			    "is not a JSON object");
			return OAUTH_FAILED;
		}
		rc = reply_error(r, o, e);
		json_decref(o);
		return rc;
	}
	at = json_word(o, "access_token", TOKEN_MAX);
	rt = json_object_get(o, "refresh_token") != NULL ?
	    json_word(o, "refresh_token", TOKEN_MAX) : NULL;
	life = json_seconds(o, "expires_in");
	if (at == NULL)
		error_set(e, EX_PROTOCOL, "the token endpoint's answer has no "
		    "usable access_token");
	else if (!is_bearer(o))
		error_set(e, EX_PROTOCOL, "the token endpoint issued a token "
		    "that is not a bearer token");
	else if (json_object_get(o, "refresh_token") != NULL && rt == NULL)
		error_set(e, EX_PROTOCOL, "the token endpoint's answer has an "
		    "unusable refresh_token");
	else if (life == -2)
		error_set(e, EX_PROTOCOL, "the token endpoint's answer has a "
		    "bad expires_in");
	else {
		t->access_token = xstrdup(at);
		t->refresh_token = rt != NULL ? xstrdup(rt) : NULL;
		/* Without expires_in the token is used once, never kept. */
		t->expires_at = life > 0 ? (long long)time(NULL) + life : 0;
		scope = json_is_string(json_object_get(o, "scope")) ?
		    json_string_value(json_object_get(o, "scope")) : NULL;
		if (scope != NULL && printable(scope, 1) && strlen(scope) <
		    2048)
			t->scope = xstrdup(scope);
		rc = OAUTH_OK;
	}
	json_decref(o);
	return rc;
}

void
oauth_token_free(struct oauth_token *t)
{
	secret_free(t->access_token);
	secret_free(t->refresh_token);
	free(t->scope);
	memset(t, 0, sizeof(*t));
}

int
oauth_device_parse(const struct http_response *r, struct oauth_device *d,
    struct error *e)
{
	json_t		*o;
	const char	*code, *user, *uri;
	long long	 life, interval;
	int		 rc = -1;

	memset(d, 0, sizeof(*d));
	if ((o = json_parse(r->body, r->len)) != NULL && !json_is_object(o)) {
		json_decref(o);
		o = NULL;
	}
	if (r->status != 200 || o == NULL || json_object_get(o, "error")) {
		if (r->status == 200 && o == NULL)
			return error_set(e, EX_PROTOCOL, "the device "
			    "endpoint's answer is not a JSON object");
		if (reply_error(r, o, e) != OAUTH_FAILED)
			error_set(e, EX_PROTOCOL, "the device endpoint "
			    "answered as if polled");
		json_decref(o);
		return -1;
	}
	code = json_word(o, "device_code", TOKEN_MAX);
	user = json_word(o, "user_code", sizeof(d->user_code) - 1);
	/* Google spells it verification_url. */
	if ((uri = json_word(o, "verification_uri", sizeof(d->uri) - 1)) ==
	    NULL)
		uri = json_word(o, "verification_url", sizeof(d->uri) - 1);
	life = json_seconds(o, "expires_in");
	interval = json_seconds(o, "interval");
	if (code == NULL || user == NULL || uri == NULL)
		error_set(e, EX_PROTOCOL, "the device endpoint's answer lacks "
		    "device_code, user_code or verification_uri");
	else if (strncasecmp(uri, "https://", 8) != 0 &&
	    strncasecmp(uri, "http://", 7) != 0)
		error_set(e, EX_PROTOCOL, "the device endpoint's "
		    "verification_uri is not a web address");
	else if (life == -2 || interval == -2)
		error_set(e, EX_PROTOCOL, "the device endpoint's answer has a "
		    "bad expires_in or interval");
	else {
		d->device_code = xstrdup(code);
		snprintf(d->user_code, sizeof(d->user_code), "%s", user);
		snprintf(d->uri, sizeof(d->uri), "%s", uri);
		if (life <= 0 || life > DEVICE_WAIT_MAX)
			life = life <= 0 ? 900 : DEVICE_WAIT_MAX;
		d->deadline = now_ms() + life * 1000;
		/* RFC 8628 3.2: 5 seconds when the endpoint says nothing. */
		d->interval = interval <= 0 ? 5 : interval > 300 ? 300 :
		    (int)interval;
		rc = 0;
	}
	json_decref(o);
	return rc;
}

void
oauth_device_free(struct oauth_device *d)
{
	secret_free(d->device_code);
	memset(d, 0, sizeof(*d));
}

/* One request to the token endpoint and what it answered. */
static enum oauth_reply
token_request(const struct account *a, const struct oauth_cfg *c,
    struct form *f, struct oauth_token *t, struct error *e)
{
	struct http_response	 r;
	enum oauth_reply	 rc;

	memset(t, 0, sizeof(*t));
	if (http_post(a, c->token_url, f->p, &r, e) == -1)
		return OAUTH_FAILED;
	rc = oauth_token_parse(&r, t, e);
	http_response_free(&r);
	return rc;
}

/* The parameters every token request carries. */
static void
form_client(struct form *f, const struct oauth_cfg *c, const char *grant)
{
	form_add(f, "grant_type", grant);
	form_add(f, "client_id", c->client_id);
	form_add(f, "client_secret", c->secret);
}

/*
 * The token store.
 */
struct store {
	const char	*path;
	int		 shared;	/* the system account's, setgid */
	int		 writable;
	int		 lock;		/* descriptor, or -1 */
};

static int
store_shared(const struct account *a)
{
	return a->system && priv_setgid();
}

/* The store's directory; made (0700, or 0750 shared) if need be. */
static int
store_dir(const struct store *s, struct error *e)
{
	char		 dir[4096], *p;
	struct stat	 st;
	gid_t		 g = priv_group();

	if (snprintf(dir, sizeof(dir), "%s", s->path) >= (int)sizeof(dir) ||
	    (p = strrchr(dir, '/')) == NULL)
		return error_set(e, EX_CONFIG, "token store %.200s: not a "
		    "full path", s->path);
	*p = '\0';
	(void)mkdir_above(dir);
	if (s->shared)
		priv_raise();
	if (mkdir(dir, s->shared ? 0750 : 0700) == 0 && s->shared &&
	    (chown(dir, 0, g) == -1 || chmod(dir, 02750) == -1)) {
		priv_drop();
		return error_set(e, EX_IOERR, "cannot give %s to the group "
		    "of the setgid install: %s", dir, strerror(errno));
	}
	if (lstat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		priv_drop();
		return error_set(e, EX_IOERR, "cannot create the directory "
		    "%s of the OAuth2 token store: %s", dir, strerror(errno));
	}
	priv_drop();
	if (st.st_uid != geteuid() || (st.st_mode & 022) != 0)
		return error_set(e, EX_CONFIG, "the directory %s of the OAuth2 "
		    "token store must be yours and writable by you alone: run "
		    "chmod go-w %s", dir, dir);
	return 0;
}

/* A lock next to the store: one refresh at a time. */
static int
store_lock(struct store *s, int timeout, struct error *e)
{
	char		 path[4200];
	long long	 until = now_ms() + (long long)timeout * 1000;

	snprintf(path, sizeof(path), "%s.lock", s->path);
	s->lock = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (s->lock == -1)
		return error_set(e, EX_IOERR, "cannot open %s: %s", path,
		    strerror(errno));
	while (flock(s->lock, LOCK_EX | LOCK_NB) == -1) {
		if (errno != EWOULDBLOCK || now_ms() >= until)
			return error_set(e, EX_TEMPFAIL, "the OAuth2 token "
			    "store %s stays locked by another run", s->path);
		usleep(20000);
	}
	return 0;
}

static int
store_open(const struct account *a, struct store *s, int lock,
    struct error *e)
{
	memset(s, 0, sizeof(*s));
	s->lock = -1;
	if ((s->path = a->oauth_token_store) == NULL)
		return error_set(e, EX_CONFIG, "account %s: no place for the "
		    "OAuth2 token store (no home directory): set "
		    "oauth_token_store", a->name);
	s->shared = store_shared(a);
	/* Files the process writes are the caller's: only root's runs. */
	s->writable = !s->shared || getuid() == 0;
	if (!lock || !s->writable)
		return 0;
	if (store_dir(s, e) == -1)
		return -1;
	if (s->shared)
		priv_raise();
	if (store_lock(s, a->timeout > 0 ? a->timeout : 60, e) == -1) {
		priv_drop();
		return -1;
	}
	priv_drop();
	return 0;
}

static void
store_close(struct store *s)
{
	if (s->lock != -1)
		close(s->lock);
	s->lock = -1;
}

/* 0 loaded, 1 none (or another client's), -1 error. */
static int
store_load(const struct store *s, const struct account *a,
    struct oauth_token *t, struct error *e)
{
	struct stat	 st;
	char		*buf;
	ssize_t		 n;
	size_t		 len = 0;
	int		 fd, rc, ok;

	memset(t, 0, sizeof(*t));
	if (s->shared)
		priv_raise();
	fd = open_read(s->path, O_NOFOLLOW);
	priv_drop();
	if (fd == -1 && errno == ENOENT)
		return 1;
	if (fd == -1)
		return error_set(e, EX_CONFIG, "cannot read the OAuth2 token "
		    "store %s: %s", s->path, strerror(errno));
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > STORE_MAX) {
		close(fd);
		return error_set(e, EX_CONFIG, "the OAuth2 token store %s is "
		    "not a regular file of at most 64 KiB", s->path);
	}
	ok = s->shared ? st.st_uid == 0 && st.st_gid == priv_group() &&
	    (st.st_mode & 027) == 0 : st.st_uid == geteuid() &&
	    (st.st_mode & 077) == 0;
	if (!ok) {
		close(fd);
		return error_set(e, EX_CONFIG, "the OAuth2 token store %s must "
		    "be %s: run %s %s", s->path, s->shared ? "root's, in the "
		    "group smarthost, mode 0640" : "yours and mode 0600",
		    s->shared ? "chown root:smarthost, chmod 640" :
		    "chmod 600", s->path);
	}
	buf = xcalloc(1, STORE_MAX + 1);
	while (len < STORE_MAX && (n = read(fd, buf + len, STORE_MAX - len)) >
	    0)
		len += (size_t)n;
	close(fd);
	rc = oauth_store_parse(buf, len, a, t, e);
	explicit_bzero(buf, STORE_MAX + 1);
	free(buf);
	if (rc == -1) {
		/* Say which file, keep what was wrong with it. */
		char	 why[sizeof(e->msg)];

		snprintf(why, sizeof(why), "%s", e->msg);
		error_set(e, EX_CONFIG, "the OAuth2 token store %s: %s; "
		    "remove it and run smarthost --configure %s", s->path,
		    why, configure_address(a));
	}
	return rc;
}

/*
 * The file: {"smarthost_oauth": 1, "client_id", "user", "scope",
 * "access_token", "expires_at", "refresh_token"}.  A store written for
 * another client or user is not ours (1): it is never sent elsewhere.
 */
int
oauth_store_parse(const char *buf, size_t len, const struct account *a,
    struct oauth_token *t, struct error *e)
{
	json_t		*o, *v;
	const char	*id, *user, *at, *rt, *scope;
	long long	 exp;
	int		 rc = -1;

	memset(t, 0, sizeof(*t));
	if ((o = json_parse(buf, len)) == NULL || !json_is_object(o)) {
		json_decref(o);
		return error_set(e, EX_CONFIG, "it is not a JSON object");
	}
	v = json_object_get(o, "smarthost_oauth");
	id = json_word(o, "client_id", 1024);
	user = json_word(o, "user", 1024);
	at = json_word(o, "access_token", TOKEN_MAX);
	rt = json_word(o, "refresh_token", TOKEN_MAX);
	scope = json_is_string(json_object_get(o, "scope")) ?
	    json_string_value(json_object_get(o, "scope")) : NULL;
	exp = json_is_integer(json_object_get(o, "expires_at")) ?
	    json_integer_value(json_object_get(o, "expires_at")) : -1;
	if (!json_is_integer(v) || json_integer_value(v) != STORE_VERSION)
		error_set(e, EX_CONFIG, "it is not a version %d token store",
		    STORE_VERSION);
	else if (id == NULL || exp < 0 || (at == NULL && rt == NULL) ||
	    (json_object_get(o, "access_token") != NULL && at == NULL) ||
	    (json_object_get(o, "refresh_token") != NULL && rt == NULL))
		error_set(e, EX_CONFIG, "it lacks client_id, expires_at or a "
		    "usable token");
	else if (strcmp(id, a->oauth_client_id != NULL ?
	    a->oauth_client_id : "") != 0 || (a->user != NULL ?
	    user == NULL || strcmp(user, a->user) != 0 : user != NULL))
		rc = 1;
	else {
		t->access_token = at != NULL ? xstrdup(at) : NULL;
		t->refresh_token = rt != NULL ? xstrdup(rt) : NULL;
		t->scope = scope != NULL && printable(scope, 1) ?
		    xstrdup(scope) : NULL;
		t->expires_at = exp;
		rc = 0;
	}
	json_decref(o);
	return rc;
}

static int
write_all(int fd, const char *p, size_t len)
{
	ssize_t	 n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static char *
store_dump(const struct account *a, const struct oauth_token *t)
{
	json_t	*o;
	char	*s;

	json_set_alloc_funcs(json_wipe_alloc, json_wipe_free);
	o = json_object();
	json_object_set_new(o, "smarthost_oauth", json_integer(STORE_VERSION));
	json_object_set_new(o, "client_id",
	    json_string(a->oauth_client_id));
	if (a->user != NULL)
		json_object_set_new(o, "user", json_string(a->user));
	if (t->scope != NULL)
		json_object_set_new(o, "scope", json_string(t->scope));
	if (t->access_token != NULL)
		json_object_set_new(o, "access_token",
		    json_string(t->access_token));
	json_object_set_new(o, "expires_at", json_integer(t->expires_at));
	if (t->refresh_token != NULL)
		json_object_set_new(o, "refresh_token",
		    json_string(t->refresh_token));
	s = json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

/* Replace the store atomically: a new file, fsync'd, renamed. */
static int
store_save(const struct store *s, const struct account *a,
    const struct oauth_token *t, struct error *e)
{
	char	 tmp[4200], *json;
	size_t	 len;
	int	 fd, bad;

	if ((json = store_dump(a, t)) == NULL)
		return error_set(e, EX_SOFTWARE, "cannot encode the token "
		    "store");
	len = strlen(json);
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", s->path);
	if (s->shared)
		priv_raise();
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		priv_drop();
		json_wipe_free(json);
		return error_set(e, EX_IOERR, "cannot write the OAuth2 token "
		    "store %s: %s", s->path, strerror(errno));
	}
	/* Root's file in the group that alone may read it. */
	bad = s->shared && (fchown(fd, 0, priv_group()) == -1 ||
	    fchmod(fd, 0640) == -1);
	bad = bad || write_all(fd, json, len) == -1 || fsync(fd) == -1;
	bad = close(fd) == -1 || bad;
	if (!bad && rename(tmp, s->path) == -1)
		bad = 1;
	if (bad) {
		error_set(e, EX_IOERR, "cannot write the OAuth2 token store "
		    "%s: %s", s->path, strerror(errno));
		(void)unlink(tmp);
	}
	priv_drop();
	json_wipe_free(json);
	return bad ? -1 : 0;
}

/* "59 min", for a number of seconds. */
static const char *
duration(long long s, char *buf, size_t size)
{
	if (s < 0)
		s = -s;
	if (s < 120)
		snprintf(buf, size, "%lld s", s);
	else if (s < 7200)
		snprintf(buf, size, "%lld min", s / 60);
	else if (s < 3 * 86400)
		snprintf(buf, size, "%lld h", s / 3600);
	else
		snprintf(buf, size, "%lld days", s / 86400);
	return buf;
}

static int
fresh(const struct oauth_token *t)
{
	return t->access_token != NULL &&
	    t->expires_at - (long long)time(NULL) > REFRESH_MARGIN;
}

/* Keep what the endpoint did not send again, then save. */
static void
keep_and_save(const struct store *s, const struct account *a,
    const struct oauth_cfg *c, const struct oauth_token *old,
    struct oauth_token *t)
{
	struct error	 e;
	char		 d[32];

	if (t->refresh_token == NULL && old != NULL &&
	    old->refresh_token != NULL)
		t->refresh_token = xstrdup(old->refresh_token);
	if (t->scope == NULL && c->scope != NULL)
		t->scope = xstrdup(c->scope);
	trace("-- OAuth2: new access token, expires in %s%s",
	    t->expires_at > 0 ? duration(t->expires_at - (long long)time(NULL),
	    d, sizeof(d)) : "(not said: used once)", old != NULL &&
	    old->refresh_token != NULL && t->refresh_token != NULL &&
	    strcmp(old->refresh_token, t->refresh_token) != 0 ?
	    "; refresh token rotated" : "");
	if (!s->writable) {
		trace("-- OAuth2: not saved: only root's runs write the "
		    "system account's token store");
		return;
	}
	memset(&e, 0, sizeof(e));
	if (store_save(s, a, t, &e) == -1)
		log_warn("%s; the new token is used for this run only", e.msg);
	else
		trace("-- OAuth2: saved to %s", s->path);
}

/*
 * The send path (config.c asks just before AUTH): a fresh access token
 * into *out.  The refresh happens under the store's lock, so a second
 * run waits and then finds the token the first one saved.
 */
int
oauth_token(const struct account *a, char **out, struct error *e)
{
	struct oauth_cfg	 c;
	struct store		 s;
	struct oauth_token	 old, t;
	struct form		 f = { NULL, 0, 0 };
	char			 d[32], why[sizeof(e->msg)];
	const char		*who;
	enum oauth_reply	 r;
	int			 rc = -1, loaded;

	memset(&old, 0, sizeof(old));
	memset(&t, 0, sizeof(t));
	if (cfg_load(a, &c, 0, e) == -1)
		return -1;
	if (store_open(a, &s, 1, e) == -1 ||
	    (loaded = store_load(&s, a, &old, e)) == -1)
		goto done;
	loaded = loaded == 0;
	who = s.writable ? "sign in again with" : "root signs the system "
	    "account in again with";
	if (loaded && fresh(&old)) {
		trace("-- OAuth2: access token from %s, expires in %s", s.path,
		    duration(old.expires_at - (long long)time(NULL), d,
		    sizeof(d)));
		*out = xstrdup(old.access_token);
		rc = 0;
		goto done;
	}
	if (cfg_need_secret(a, &c, e) == -1)
		goto done;
	if (strcmp(c.grant, "client_credentials") == 0) {
		form_client(&f, &c, "client_credentials");
		form_add(&f, "scope", c.scope);
	} else if (!loaded || old.refresh_token == NULL) {
		error_set(e, EX_TEMPFAIL, "account %s has no OAuth2 token in "
		    "%s: %s smarthost --configure %s", a->name, s.path,
		    s.writable ? "sign in with" : "root signs the system "
		    "account in with", configure_address(a));
		goto done;
	} else {
		trace("-- OAuth2: the access token %s; refreshing it",
		    old.access_token == NULL ? "is missing" :
		    old.expires_at > (long long)time(NULL) ?
		    "expires within a minute" : "has expired");
		form_client(&f, &c, "refresh_token");
		form_add(&f, "refresh_token", old.refresh_token);
		form_add(&f, "scope", c.scope);
	}
	if ((r = token_request(a, &c, &f, &t, e)) != OAUTH_OK) {
		snprintf(why, sizeof(why), "%s", e->msg);
		if (r == OAUTH_INVALID_GRANT && old.refresh_token != NULL)
			error_set(e, EX_TEMPFAIL, "the OAuth2 refresh token of "
			    "account %s was refused, so it was revoked or has "
			    "expired: %s smarthost --configure %s (%s)",
			    a->name, who, configure_address(a), why);
		else if (r != OAUTH_FAILED && r != OAUTH_INVALID_GRANT)
			error_set(e, EX_PROTOCOL, "the token endpoint answered "
			    "a %s request as if it were a device code poll",
			    c.grant);
		goto done;
	}
	keep_and_save(&s, a, &c, &old, &t);
	*out = xstrdup(t.access_token);
	rc = 0;
done:
	store_close(&s);
	form_free(&f);
	oauth_token_free(&old);
	oauth_token_free(&t);
	cfg_free(&c);
	return rc;
}

/* A token got at --configure: saved under the lock, then used. */
static int
save_new(struct account *a, const struct oauth_cfg *c, struct oauth_token *t,
    struct error *e)
{
	struct store	 s;
	int		 rc;

	if (t->scope == NULL && c->scope != NULL)
		t->scope = xstrdup(c->scope);
	if ((rc = store_open(a, &s, 1, e)) == 0) {
		if (!s.writable)
			rc = error_set(e, EX_NOPERM, "only root can sign the "
			    "system account in (smarthost is installed "
			    "setgid)");
		else
			rc = store_save(&s, a, t, e);
	}
	store_close(&s);
	return rc;
}

/*
 * The device flow (RFC 8628): the code to show, then polling until the
 * user has signed in elsewhere, the code expires or the user declines.
 */
int
oauth_device_start(struct account *a, struct oauth_device *d,
    struct error *e)
{
	struct oauth_cfg	 c;
	struct http_response	 r;
	struct form		 f = { NULL, 0, 0 };
	int			 rc = -1;

	memset(d, 0, sizeof(*d));
	if (cfg_load(a, &c, 1, e) == -1)
		return -1;
	if (c.device_url == NULL)
		error_set(e, EX_CONFIG, "account %s: the device flow needs "
		    "oauth_device_endpoint (or oauth_grant "
		    "authorization_code)", a->name);
	else {
		form_add(&f, "client_id", c.client_id);
		form_add(&f, "client_secret", c.secret);
		form_add(&f, "scope", c.scope);
		if (http_post(a, c.device_url, f.p, &r, e) == 0) {
			rc = oauth_device_parse(&r, d, e);
			http_response_free(&r);
		}
	}
	form_free(&f);
	cfg_free(&c);
	return rc;
}

static void
sleep_ms(long long ms)
{
	struct timespec	 ts;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

int
oauth_device_wait(struct account *a, struct oauth_device *d,
    struct error *e)
{
	struct oauth_cfg	 c;
	struct oauth_token	 t;
	struct form		 f = { NULL, 0, 0 };
	enum oauth_reply	 r = OAUTH_PENDING;
	long long		 left;
	int			 rc = -1;

	if (cfg_load(a, &c, 1, e) == -1)
		return -1;
	form_client(&f, &c, DEVICE_GRANT);
	form_add(&f, "device_code", d->device_code);
	memset(&t, 0, sizeof(t));
	while (r == OAUTH_PENDING || r == OAUTH_SLOW_DOWN) {
		left = d->deadline - now_ms();
		if (left <= (long long)d->interval * 1000) {
			sleep_ms(left);
			error_set(e, EX_TEMPFAIL, "the code expired before the "
			    "sign-in was finished: run smarthost --configure "
			    "again and sign in within the time shown");
			goto done;
		}
		sleep_ms((long long)d->interval * 1000);
		r = token_request(a, &c, &f, &t, e);
		/* RFC 8628 3.5: 5 s more for this and every later poll. */
		if (r == OAUTH_SLOW_DOWN)
			d->interval += 5;
		trace("-- OAuth2: device flow: %s", r == OAUTH_PENDING ?
		    "authorization pending" : r == OAUTH_SLOW_DOWN ?
		    "slow down" : r == OAUTH_OK ? "signed in" : "failed");
	}
	if (r == OAUTH_OK)
		rc = save_new(a, &c, &t, e);
done:
	oauth_token_free(&t);
	form_free(&f);
	cfg_free(&c);
	return rc;
}

/*
 * The authorization code grant with PKCE (RFC 7636), where the device
 * flow is not allowed (Google's mail scope): the URL to open, then the
 * address the browser was sent to (or the code alone), pasted back.
 */
static int
random_b64url(char *out, size_t size, size_t nbytes, struct error *e)
{
	unsigned char	 raw[48];
	size_t		 olen, i;

	if (nbytes > sizeof(raw) ||
	    getrandom(raw, nbytes, 0) != (ssize_t)nbytes)
		return error_set(e, EX_OSERR, "getrandom: %s",
		    strerror(errno));
	if (mbedtls_base64_encode((unsigned char *)out, size, &olen, raw,
	    nbytes) != 0)
		return error_set(e, EX_SOFTWARE, "base64 failed");
	explicit_bzero(raw, sizeof(raw));
	for (i = 0; i < olen; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	while (olen > 0 && out[olen - 1] == '=')
		out[--olen] = '\0';
	return 0;
}

/* BASE64URL(SHA256(verifier)), RFC 7636 4.2. */
int
oauth_pkce_challenge(const char *verifier, char *out, size_t size)
{
	unsigned char	 md[32];
	size_t		 olen, i;

	mbedtls_sha256((const unsigned char *)verifier, strlen(verifier), md,
	    0);
	if (mbedtls_base64_encode((unsigned char *)out, size, &olen, md,
	    sizeof(md)) != 0)
		return -1;
	for (i = 0; i < olen; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	while (olen > 0 && out[olen - 1] == '=')
		out[--olen] = '\0';
	return 0;
}

int
oauth_pkce_start(struct account *a, struct oauth_pkce *p, struct error *e)
{
	struct oauth_cfg	 c;
	struct form		 f = { NULL, 0, 0 };
	char			 challenge[64];
	size_t			 len;
	int			 rc = -1;

	memset(p, 0, sizeof(*p));
	if (cfg_load(a, &c, 0, e) == -1)
		return -1;
	if (c.authorize_url == NULL)
		error_set(e, EX_CONFIG, "account %s: the authorization code "
		    "flow needs oauth_authorize_endpoint", a->name);
	else if (random_b64url(p->verifier, sizeof(p->verifier), 32, e) ==
	    0 && random_b64url(p->state, sizeof(p->state), 16, e) == 0 &&
	    oauth_pkce_challenge(p->verifier, challenge,
	    sizeof(challenge)) == 0) {
		form_add(&f, "response_type", "code");
		form_add(&f, "client_id", c.client_id);
		form_add(&f, "redirect_uri", c.redirect);
		form_add(&f, "scope", c.scope);
		form_add(&f, "code_challenge", challenge);
		form_add(&f, "code_challenge_method", "S256");
		form_add(&f, "state", p->state);
		if (c.extra != NULL) {
			form_put(&f, "&", 1);
			form_put(&f, c.extra, strlen(c.extra));
		}
		len = strlen(c.authorize_url) + f.len + 2;
		p->url = xcalloc(1, len);
		snprintf(p->url, len, "%s%c%s", c.authorize_url,
		    strchr(c.authorize_url, '?') != NULL ? '&' : '?', f.p);
		rc = 0;
	}
	form_free(&f);
	cfg_free(&c);
	return rc;
}

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* The value of KEY in a query (after '?', '&'-separated), decoded. */
static char *
query_value(const char *url, const char *key)
{
	const char	*q = strchr(url, '?'), *p, *end;
	size_t		 klen = strlen(key), i, n;
	char		*v;

	if (q == NULL)
		return NULL;
	for (p = q + 1; *p != '\0'; p = *end ? end + 1 : end) {
		end = p + strcspn(p, "&#");
		if ((size_t)(end - p) <= klen || strncmp(p, key, klen) != 0 ||
		    p[klen] != '=')
			continue;
		p += klen + 1;
		v = xcalloc(1, (size_t)(end - p) + 1);
		for (i = n = 0; p + i < end; i++) {
			if (p[i] == '%' && i + 2 < (size_t)(end - p) &&
			    hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0) {
				v[n++] = (char)(hexval(p[i + 1]) * 16 +
				    hexval(p[i + 2]));
				i += 2;
			} else
				v[n++] = p[i] == '+' ? ' ' : p[i];
		}
		return v;
	}
	return NULL;
}

/* The code from what the user pasted: the whole address, or the code. */
static int
pasted_code(const char *answer, const struct oauth_pkce *p, char **code,
    struct error *e)
{
	char	*err, *state, shown[128];

	*code = NULL;
	if (strchr(answer, '?') == NULL) {
		if (*answer == '\0' || !printable(answer, 0))
			return error_set(e, EX_USAGE, "paste the whole address "
			    "the browser shows after the sign-in, or the code "
			    "in it");
		*code = xstrdup(answer);
		return 0;
	}
	if ((err = query_value(answer, "error")) != NULL) {
		sanitize(shown, sizeof(shown), err);
		free(err);
		return error_set(e, EX_NOPERM, "the sign-in failed: %s",
		    shown);
	}
	state = query_value(answer, "state");
	if (state == NULL || strcmp(state, p->state) != 0) {
		free(state);
		return error_set(e, EX_USAGE, "the pasted address is not from "
		    "this sign-in (its state does not match): open the address "
		    "shown above and paste where the browser ends up");
	}
	free(state);
	if ((*code = query_value(answer, "code")) == NULL || **code == '\0' ||
	    !printable(*code, 0)) {
		secret_free(*code);
		*code = NULL;
		return error_set(e, EX_USAGE, "the pasted address holds no "
		    "code");
	}
	return 0;
}

int
oauth_pkce_finish(struct account *a, struct oauth_pkce *p,
    const char *answer, struct error *e)
{
	struct oauth_cfg	 c;
	struct oauth_token	 t;
	struct form		 f = { NULL, 0, 0 };
	enum oauth_reply	 r;
	char			*code = NULL;
	int			 rc = -1;

	memset(&t, 0, sizeof(t));
	if (cfg_load(a, &c, 1, e) == -1)
		return -1;
	if (pasted_code(answer, p, &code, e) == 0) {
		form_client(&f, &c, "authorization_code");
		form_add(&f, "code", code);
		form_add(&f, "redirect_uri", c.redirect);
		form_add(&f, "code_verifier", p->verifier);
		if ((r = token_request(a, &c, &f, &t, e)) == OAUTH_OK)
			rc = save_new(a, &c, &t, e);
		else if (r != OAUTH_FAILED && r != OAUTH_INVALID_GRANT)
			error_set(e, EX_PROTOCOL, "the token endpoint answered "
			    "the code as if it were a device code poll");
	}
	secret_free(code);
	oauth_token_free(&t);
	form_free(&f);
	cfg_free(&c);
	return rc;
}

void
oauth_pkce_free(struct oauth_pkce *p)
{
	free(p->url);
	explicit_bzero(p, sizeof(*p));
}

/*
 * --serverinfo and --pretend: the token's state, never the token.
 */
void
oauth_state(FILE *fp, const struct account *a)
{
	struct oauth_cfg	 c;
	struct oauth_token	 t;
	struct store		 s;
	struct error		 e;
	char			 d[32];
	long long		 left;
	int			 rc;

	if (!oauth_enabled(a))
		return;
	memset(&e, 0, sizeof(e));
	if (cfg_load(a, &c, 0, &e) == -1) {
		fprintf(fp, "oauth2: not usable: %s\n", e.msg);
		return;
	}
	fprintf(fp, "oauth2: grant %s, client %s, token endpoint %s\n",
	    c.grant, c.client_id, c.token_url);
	cfg_free(&c);
	if (store_open(a, &s, 0, &e) == -1 ||
	    (rc = store_load(&s, a, &t, &e)) == -1) {
		fprintf(fp, "oauth2 token: unknown: %s\n", e.msg);
		return;
	}
	fprintf(fp, "oauth2 token store: %s\n", s.path);
	if (rc == 1 || (t.access_token == NULL && t.refresh_token == NULL)) {
		fprintf(fp, "oauth2 token: none: sign in with smarthost "
		    "--configure %s\n", configure_address(a));
		return;
	}
	left = t.expires_at - (long long)time(NULL);
	if (t.access_token == NULL)
		fprintf(fp, "oauth2 token: none cached");
	else if (left > 0)
		fprintf(fp, "oauth2 token: present, expires in %s",
		    duration(left, d, sizeof(d)));
	else
		fprintf(fp, "oauth2 token: present, expired %s ago",
		    duration(left, d, sizeof(d)));
	fprintf(fp, "%s%s\n", t.scope != NULL ? ", scope " : "",
	    t.scope != NULL ? t.scope : "");
	fprintf(fp, "oauth2 refresh token: %s\n", t.refresh_token != NULL ?
	    "present" : strcmp(a->oauth_grant != NULL ? a->oauth_grant : "",
	    "client_credentials") == 0 ? "none (not needed: client "
	    "credentials)" : "none");
	oauth_token_free(&t);
}

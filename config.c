/* SPDX-License-Identifier: ISC */
/*
 * The configuration (SPEC sections 2, 3 and 5): the system and user
 * files in msmtp's syntax, the environment and the command line,
 * resolved into one struct account.  A literal password found on the
 * way is kept there only until secret.c takes it; every other password
 * source is secret.c's.
 *
 * Every value is checked and normalized where it is read, so that an
 * error can name the file and line (or variable, or option) it came
 * from.  The layers are kept as strings until the very end, when the
 * chosen account, the environment and the command line are laid over
 * each other and turned into the typed struct account.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "smarthost.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR	"/etc"
#endif
#ifndef SPOOLDIR
#define SPOOLDIR	"/var/spool/smarthost"	/* the system queue */
#endif

#define CONF_SIZE_MAX	(1024 * 1024)	/* a config or netrc file */
#define LINE_START	(64 * 1024)	/* first getline() buffer */
#define IOBUF_SIZE	8192		/* stdio buffer of a config file */
#define ACCOUNTS_MAX	1000
#define PARENTS_MAX	32		/* account NAME : P1,P2,... */
#define SHOWN_MAX	80		/* of a bad value quoted in an error */
#define WHERE_MAX	4200		/* "FILE:LINE" */
#define TIMEOUT_MAX	86400
#define AGE_MAX		(3650L * 86400)
#define BYTES_MAX	(1L << 40)	/* max_message_size: 1 TiB */

/* Directives, in the order of SPEC section 3 (and of config_print). */
enum dir {
	D_HOST, D_PORT, D_RELAYHOST, D_PROVIDER, D_TLS, D_TLS_STARTTLS,
	D_TLS_TRUST_FILE,
	D_TLS_FINGERPRINT, D_TLS_CERT_FILE, D_TLS_KEY_FILE,
	D_TLS_HOST_OVERRIDE, D_TLS_MIN_VERSION, D_TLS_LEGACY_CIPHERS,
	D_TLS_CERTCHECK, D_TLS_SESSION_CACHE, D_TIMEOUT, D_DOMAIN, D_SOURCE_IP,
	D_AUTH, D_USER, D_PASSWORD, D_PASSWORDEVAL,
	/* OAuth2 (oauth.c), together: config_print shows them as a block */
	D_OAUTH_GRANT, D_OAUTH_CLIENT_ID, D_OAUTH_CLIENT_SECRET,
	D_OAUTH_CLIENT_SECRET_FILE, D_OAUTH_CLIENT_SECRET_EVAL, D_OAUTH_TENANT,
	D_OAUTH_SCOPE, D_OAUTH_TOKEN_ENDPOINT, D_OAUTH_DEVICE_ENDPOINT,
	D_OAUTH_AUTHORIZE_ENDPOINT, D_OAUTH_REDIRECT_URI, D_OAUTH_TOKEN_STORE,
	D_FROM, D_ALLOW_FROM_OVERRIDE, D_REWRITE_LOCAL_SENDERS,
	D_FROM_FULL_NAME, D_SET_FROM_HEADER, D_SET_DATE_HEADER,
	D_SET_MSGID_HEADER, D_REMOVE_BCC_HEADERS, D_ALIASES, D_MAILDOMAIN,
	D_LOCAL_RECIPIENT, D_NOTIFY, D_NOTIFY_TO, D_DSN_NOTIFY, D_DSN_RETURN,
	D_QUEUE, D_QUEUE_DIR, D_QUEUE_MAX_AGE, D_MAX_MESSAGE_SIZE,
	D_DEAD_LETTER, D_LOGFILE,
	D_SYSLOG,
	D_COUNT
};

enum vtype {
	V_TEXT,		/* any text; empty = unset */
	V_SECRET,	/* like V_TEXT, never quoted in a message */
	V_NAME,		/* a host or domain name: no blanks */
	V_PORT,
	V_RELAYHOST,	/* [HOST]:PORT, sets host and port */
	V_PROVIDER,	/* a preset name, normalized by providers.c */
	V_BOOL,		/* on|off; empty = on (msmtp) */
	V_FILE,		/* ~ expanded */
	V_TRUST,	/* system|FILE */
	V_FINGERPRINT,	/* SHA-256 */
	V_TLSVER,	/* 1.2|1.3 */
	V_SECONDS,
	V_AUTH,		/* on|off|MECHANISM */
	V_FROM,		/* %U %H %M substituted */
	V_TRI,		/* auto|on|off */
	V_AUTO_OFF,	/* auto|off */
	V_DSN_NOTIFY,
	V_DSN_RETURN,
	V_DURATION,	/* N[smhd] */
	V_BYTES,	/* N[kMG], 0 = no limit */
	V_CACHE,	/* FILE|off */
	V_LOGFILE,	/* FILE|- */
	V_SYSLOG,
	V_OAUTH		/* checked by oauth.c */
};

/*
 * In a setgid run, callers other than root may not override these:
 * S_DEST could send the system password elsewhere (or make the group
 * touch a file), S_SENDER would bypass the system account's sender
 * rules.
 */
enum { S_NONE, S_DEST, S_SENDER, S_PASSWORD };

struct directive {
	enum vtype	 type;
	int		 sensitive;	/* S_*: what a setgid caller may not */
	size_t		 off;		/* of its field in struct account */
};

static const char *const names[D_COUNT + 1] = {
	[D_HOST] = "host",
	[D_PORT] = "port",
	[D_RELAYHOST] = "relayhost",
	[D_PROVIDER] = "provider",
	[D_TLS] = "tls",
	[D_TLS_STARTTLS] = "tls_starttls",
	[D_TLS_TRUST_FILE] = "tls_trust_file",
	[D_TLS_FINGERPRINT] = "tls_fingerprint",
	[D_TLS_CERT_FILE] = "tls_cert_file",
	[D_TLS_KEY_FILE] = "tls_key_file",
	[D_TLS_HOST_OVERRIDE] = "tls_host_override",
	[D_TLS_MIN_VERSION] = "tls_min_version",
	[D_TLS_LEGACY_CIPHERS] = "tls_legacy_ciphers",
	[D_TLS_CERTCHECK] = "tls_certcheck",
	[D_TLS_SESSION_CACHE] = "tls_session_cache",
	[D_TIMEOUT] = "timeout",
	[D_DOMAIN] = "domain",
	[D_SOURCE_IP] = "source_ip",
	[D_AUTH] = "auth",
	[D_USER] = "user",
	[D_PASSWORD] = "password",
	[D_PASSWORDEVAL] = "passwordeval",
	[D_OAUTH_GRANT] = "oauth_grant",
	[D_OAUTH_CLIENT_ID] = "oauth_client_id",
	[D_OAUTH_CLIENT_SECRET] = "oauth_client_secret",
	[D_OAUTH_CLIENT_SECRET_FILE] = "oauth_client_secret_file",
	[D_OAUTH_CLIENT_SECRET_EVAL] = "oauth_client_secret_eval",
	[D_OAUTH_TENANT] = "oauth_tenant",
	[D_OAUTH_SCOPE] = "oauth_scope",
	[D_OAUTH_TOKEN_ENDPOINT] = "oauth_token_endpoint",
	[D_OAUTH_DEVICE_ENDPOINT] = "oauth_device_endpoint",
	[D_OAUTH_AUTHORIZE_ENDPOINT] = "oauth_authorize_endpoint",
	[D_OAUTH_REDIRECT_URI] = "oauth_redirect_uri",
	[D_OAUTH_TOKEN_STORE] = "oauth_token_store",
	[D_FROM] = "from",
	[D_ALLOW_FROM_OVERRIDE] = "allow_from_override",
	[D_REWRITE_LOCAL_SENDERS] = "rewrite_local_senders",
	[D_FROM_FULL_NAME] = "from_full_name",
	[D_SET_FROM_HEADER] = "set_from_header",
	[D_SET_DATE_HEADER] = "set_date_header",
	[D_SET_MSGID_HEADER] = "set_msgid_header",
	[D_REMOVE_BCC_HEADERS] = "remove_bcc_headers",
	[D_ALIASES] = "aliases",
	[D_MAILDOMAIN] = "maildomain",
	[D_LOCAL_RECIPIENT] = "local_recipient",
	[D_NOTIFY] = "notify",
	[D_NOTIFY_TO] = "notify_to",
	[D_DSN_NOTIFY] = "dsn_notify",
	[D_DSN_RETURN] = "dsn_return",
	[D_QUEUE] = "queue",
	[D_QUEUE_DIR] = "queue_dir",
	[D_QUEUE_MAX_AGE] = "queue_max_age",
	[D_MAX_MESSAGE_SIZE] = "max_message_size",
	[D_DEAD_LETTER] = "dead_letter",
	[D_LOGFILE] = "logfile",
	[D_SYSLOG] = "syslog",
	[D_COUNT] = NULL
};

static const struct directive dirs[D_COUNT] = {
	[D_HOST] = { V_NAME, S_DEST, offsetof(struct account, host) },
	[D_PORT] = { V_PORT, S_DEST, offsetof(struct account, port) },
	[D_RELAYHOST] = { V_RELAYHOST, S_DEST, 0 },
	[D_PROVIDER] = { V_PROVIDER, S_DEST,
	    offsetof(struct account, provider) },
	[D_TLS] = { V_BOOL, S_DEST, offsetof(struct account, tls) },
	[D_TLS_STARTTLS] = { V_BOOL, S_DEST,
	    offsetof(struct account, starttls) },
	[D_TLS_TRUST_FILE] = { V_TRUST, S_DEST,
	    offsetof(struct account, trust_file) },
	[D_TLS_FINGERPRINT] = { V_FINGERPRINT, S_DEST, 0 },
	[D_TLS_CERT_FILE] = { V_FILE, S_DEST,
	    offsetof(struct account, cert_file) },
	[D_TLS_KEY_FILE] = { V_FILE, S_DEST,
	    offsetof(struct account, key_file) },
	[D_TLS_HOST_OVERRIDE] = { V_NAME, S_DEST,
	    offsetof(struct account, host_override) },
	[D_TLS_MIN_VERSION] = { V_TLSVER, S_DEST,
	    offsetof(struct account, tls_min) },
	[D_TLS_LEGACY_CIPHERS] = { V_BOOL, S_DEST,
	    offsetof(struct account, tls_legacy_ciphers) },
	[D_TLS_CERTCHECK] = { V_BOOL, S_DEST,
	    offsetof(struct account, certcheck) },
	[D_TLS_SESSION_CACHE] = { V_CACHE, S_DEST,
	    offsetof(struct account, session_cache) },
	[D_TIMEOUT] = { V_SECONDS, S_NONE, offsetof(struct account, timeout) },
	[D_DOMAIN] = { V_NAME, 0, offsetof(struct account, domain) },
	[D_SOURCE_IP] = { V_NAME, S_DEST,
	    offsetof(struct account, source_ip) },
	[D_AUTH] = { V_AUTH, S_DEST, offsetof(struct account, auth) },
	[D_USER] = { V_TEXT, S_DEST, offsetof(struct account, user) },
	[D_PASSWORD] = { V_SECRET, 0, offsetof(struct account, password) },
	[D_PASSWORDEVAL] = { V_TEXT, S_DEST,
	    offsetof(struct account, passwordeval) },
	/* Each could send the system account's tokens or secret elsewhere. */
	[D_OAUTH_GRANT] = { V_OAUTH, S_DEST,
	    offsetof(struct account, oauth_grant) },
	[D_OAUTH_CLIENT_ID] = { V_OAUTH, S_DEST,
	    offsetof(struct account, oauth_client_id) },
	[D_OAUTH_CLIENT_SECRET] = { V_SECRET, S_PASSWORD,
	    offsetof(struct account, oauth_client_secret) },
	[D_OAUTH_CLIENT_SECRET_FILE] = { V_FILE, S_DEST,
	    offsetof(struct account, oauth_client_secret_file) },
	[D_OAUTH_CLIENT_SECRET_EVAL] = { V_TEXT, S_DEST,
	    offsetof(struct account, oauth_client_secret_eval) },
	[D_OAUTH_TENANT] = { V_OAUTH, S_DEST,
	    offsetof(struct account, oauth_tenant) },
	[D_OAUTH_SCOPE] = { V_OAUTH, S_DEST,
	    offsetof(struct account, oauth_scope) },
	[D_OAUTH_TOKEN_ENDPOINT] = { V_OAUTH, S_DEST,
	    offsetof(struct account, oauth_token_endpoint) },
	[D_OAUTH_DEVICE_ENDPOINT] = { V_OAUTH, S_DEST,
	    offsetof(struct account, oauth_device_endpoint) },
	[D_OAUTH_AUTHORIZE_ENDPOINT] = { V_OAUTH, S_DEST,
	    offsetof(struct account, oauth_authorize_endpoint) },
	[D_OAUTH_REDIRECT_URI] = { V_OAUTH, S_DEST,
	    offsetof(struct account, oauth_redirect_uri) },
	[D_OAUTH_TOKEN_STORE] = { V_FILE, S_DEST,
	    offsetof(struct account, oauth_token_store) },
	[D_FROM] = { V_FROM, S_SENDER, offsetof(struct account, from) },
	[D_ALLOW_FROM_OVERRIDE] = { V_BOOL, S_SENDER,
	    offsetof(struct account, allow_from_override) },
	[D_REWRITE_LOCAL_SENDERS] = { V_BOOL, S_SENDER,
	    offsetof(struct account, rewrite_local_senders) },
	[D_FROM_FULL_NAME] = { V_TEXT, 0,
	    offsetof(struct account, from_full_name) },
	[D_SET_FROM_HEADER] = { V_TRI, S_SENDER,
	    offsetof(struct account, set_from_header) },
	[D_SET_DATE_HEADER] = { V_AUTO_OFF, 0,
	    offsetof(struct account, set_date_header) },
	[D_SET_MSGID_HEADER] = { V_AUTO_OFF, 0,
	    offsetof(struct account, set_msgid_header) },
	[D_REMOVE_BCC_HEADERS] = { V_BOOL, 0,
	    offsetof(struct account, remove_bcc_headers) },
	[D_ALIASES] = { V_FILE, S_DEST, offsetof(struct account, aliases) },
	[D_MAILDOMAIN] = { V_NAME, S_SENDER,
	    offsetof(struct account, maildomain) },
	[D_LOCAL_RECIPIENT] = { V_FROM, 0,
	    offsetof(struct account, local_recipient) },
	[D_NOTIFY] = { V_BOOL, 0, offsetof(struct account, notify) },
	[D_NOTIFY_TO] = { V_FROM, 0, offsetof(struct account, notify_to) },
	[D_DSN_NOTIFY] = { V_DSN_NOTIFY, 0,
	    offsetof(struct account, dsn_notify) },
	[D_DSN_RETURN] = { V_DSN_RETURN, 0,
	    offsetof(struct account, dsn_return) },
	[D_QUEUE] = { V_BOOL, 0, offsetof(struct account, queue) },
	[D_QUEUE_DIR] = { V_FILE, S_DEST, offsetof(struct account, queue_dir) },
	[D_QUEUE_MAX_AGE] = { V_DURATION, 0,
	    offsetof(struct account, queue_max_age) },
	[D_MAX_MESSAGE_SIZE] = { V_BYTES, S_DEST,
	    offsetof(struct account, max_message_size) },
	[D_DEAD_LETTER] = { V_FILE, S_DEST,
	    offsetof(struct account, dead_letter) },
	[D_LOGFILE] = { V_LOGFILE, S_DEST, offsetof(struct account, logfile) },
	[D_SYSLOG] = { V_SYSLOG, 0, 0 }
};

/* msmtp directives we deliberately leave out: accepted with a warning. */
static const char *const unsupported[] = {
	"tls_crl_file", "tls_priorities", "tls_min_dh_prime_bits",
	"proxy_host", "proxy_port", "socket", "protocol", "ntlmdomain",
	"logfile_time_format", "set_to_header", "undisclosed_recipients",
	"eval", "auto_from", "add_missing_from_header",
	"add_missing_date_header", "keepbcc", "connect_timeout",
	"tls_nocertcheck", "tls_nostarttls", "tls_force_sslv3", NULL
};

static const struct {
	const char	*name;
	int		 facility;
} facilities[] = {
	{ "LOG_MAIL", LOG_MAIL }, { "LOG_USER", LOG_USER },
	{ "LOG_LOCAL0", LOG_LOCAL0 }, { "LOG_LOCAL1", LOG_LOCAL1 },
	{ "LOG_LOCAL2", LOG_LOCAL2 }, { "LOG_LOCAL3", LOG_LOCAL3 },
	{ "LOG_LOCAL4", LOG_LOCAL4 }, { "LOG_LOCAL5", LOG_LOCAL5 },
	{ "LOG_LOCAL6", LOG_LOCAL6 }, { "LOG_LOCAL7", LOG_LOCAL7 },
	{ NULL, 0 }
};

#define RELAY_FORM	"use smtps://USER@HOST[:PORT] (implicit TLS) or " \
			"smtp://USER@HOST[:PORT] (STARTTLS)"
#define SHA256_HOWTO	"a SHA-256 fingerprint is required (32 bytes in " \
			"hex, AA:BB:...); print it with: openssl x509 " \
			"-noout -fingerprint -sha256 -in CERT.pem"

/* What the process knows about its user and host, read once. */
struct ctx {
	char	*home;		/* NULL when there is none */
	char	*user;		/* login name, for %U */
	char	 hostname[256];	/* for %H and the EHLO default */
	char	*mailname;	/* first line of /etc/mailname, or NULL */
	int	 privileged;	/* setuid or setgid: no test hooks */
	int	 restricted;	/* privileged, and the caller is not root */
	int	 in_system;	/* parsing the system file */
	int	 quiet;		/* its warnings were given once already */
};

/*
 * One layer of settings: val[d] == NULL means "not mentioned", "" means
 * "explicitly unset", anything else is a checked, normalized value.
 * own[d] marks what the account itself (or a parent) set, as opposed to
 * what it copied from `defaults': only that is inherited.
 */
struct settings {
	char		*val[D_COUNT];
	unsigned char	 own[D_COUNT];
};

struct cacc {
	char		*name;
	char		*file;
	int		 system;	/* from the system file alone */
	struct settings	 s;
};

struct clist {
	struct cacc	**v;
	size_t		  n;
};

struct parser {
	const struct ctx *ctx;
	const char	*file;
	size_t		 line;
	char		 where[WHERE_MAX];
	struct settings	 defaults;
	struct settings	*cur;		/* defaults or the current account */
	struct clist	 accounts;
	int		 password;	/* the file sets a password */
};

struct files {
	char	*looked[3];	/* every path tried, in order */
	int	 read[3];	/* ... and whether it was read */
	size_t	 n;
	char	*edit;		/* the file to tell the user to edit */
};

enum { CF_SYSTEM = 1, CF_USER = 2 };

/*
 * Small helpers.
 */

static int
directive_index(const char *name)
{
	int	 d;

	for (d = 0; d < D_COUNT; d++)
		if (strcmp(names[d], name) == 0)
			return d;
	return -1;
}

static void
settings_put(struct settings *s, enum dir d, char *v, int own)
{
	secret_free(s->val[d]);
	s->val[d] = v;
	s->own[d] = own != 0;
}

/* Does settings_copy() take d from src? */
static int
copied(const struct settings *src, enum dir d, int own_only)
{
	return src->val[d] != NULL && (!own_only || src->own[d]);
}

/* Copy what src set (only its own settings when inheriting). */
static void
settings_copy(struct settings *dst, const struct settings *src,
    int own_only, int own)
{
	int	 d;

	/*
	 * password and passwordeval are one setting, the password's
	 * source: a layer that sets either replaces both of the layer
	 * below, so --passwordeval beats a file's password (msmtp would
	 * let the password win) and SMARTHOST_PASSWORD a file's
	 * passwordeval.
	 */
	if (copied(src, D_PASSWORD, own_only) ||
	    copied(src, D_PASSWORDEVAL, own_only)) {
		settings_put(dst, D_PASSWORD, NULL, 0);
		settings_put(dst, D_PASSWORDEVAL, NULL, 0);
	}
	for (d = 0; d < D_COUNT; d++) {
		if (!copied(src, d, own_only))
			continue;
		settings_put(dst, d, xstrdup(src->val[d]), own);
	}
}

static void
settings_clear(struct settings *s)
{
	int	 d;

	for (d = 0; d < D_COUNT; d++)
		secret_free(s->val[d]);
	memset(s, 0, sizeof(*s));
}

static int
is_set(const struct settings *s, enum dir d)
{
	return s->val[d] != NULL && s->val[d][0] != '\0';
}

static void
cacc_free(struct cacc *a)
{
	if (a == NULL)
		return;
	free(a->name);
	free(a->file);
	settings_clear(&a->s);
	free(a);
}

static struct cacc *
clist_find(const struct clist *l, const char *name)
{
	size_t	 i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i]->name, name) == 0)
			return l->v[i];
	return NULL;
}

static void
clist_add(struct clist *l, struct cacc *a)
{
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = a;
}

static void
clist_clear(struct clist *l)
{
	size_t	 i;

	for (i = 0; i < l->n; i++)
		cacc_free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/*
 * The context: home, user and host names, /etc/mailname.
 */
static char *
mailname_read(const struct ctx *c)
{
	const char	*path = "/etc/mailname", *env;
	char		 buf[256], *s;
	FILE		*fp;
	int		 fd;

	env = getenv("SMARTHOST_MAILNAME_FILE");
	if (!c->privileged && env != NULL && *env != '\0')
		path = env;
	if ((fd = open_read(path, 0)) == -1)
		return NULL;
	if ((fp = fdopen(fd, "r")) == NULL) {
		close(fd);
		return NULL;
	}
	s = fgets(buf, sizeof(buf), fp);
	fclose(fp);
	if (s == NULL)
		return NULL;
	buf[strcspn(buf, "\r\n")] = '\0';
	s = str_trim(buf);
	return *s != '\0' ? xstrdup(s) : NULL;
}

static void
ctx_init(struct ctx *c)
{
	struct passwd	*pw;
	const char	*h;

	memset(c, 0, sizeof(*c));
	c->privileged = getuid() != geteuid() || priv_setgid();
	c->restricted = priv_restricted();
	pw = getpwuid(getuid());
	h = getenv("HOME");
	if (h != NULL && *h == '/')
		c->home = xstrdup(h);
	else if (pw != NULL && pw->pw_dir != NULL && *pw->pw_dir == '/')
		c->home = xstrdup(pw->pw_dir);
	/*
	 * %U: the login of the uid.  $USER is the caller's to set, so a
	 * setgid run never takes it: it would choose the sender that
	 * allow_from_override off is there to fix.
	 */
	if (pw != NULL && pw->pw_name != NULL)
		c->user = xstrdup(pw->pw_name);
	else if (!c->privileged && (h = getenv("USER")) != NULL &&
	    *h != '\0')
		c->user = xstrdup(h);
	/* The name as configured: an FQDN lookup could stall every run. */
	if (gethostname(c->hostname, sizeof(c->hostname) - 1) == -1 ||
	    c->hostname[0] == '\0')
		snprintf(c->hostname, sizeof(c->hostname), "localhost");
	c->mailname = mailname_read(c);
}

static void
ctx_free(struct ctx *c)
{
	free(c->home);
	free(c->user);
	free(c->mailname);
}

/* $VAR/suffix if VAR is an absolute path, else ~/fallback/suffix. */
static char *
xdg_path(const struct ctx *c, const char *var, const char *fallback,
    const char *suffix)
{
	const char	*v = getenv(var);
	char		*base, *p;

	if (v != NULL && *v == '/')
		return concat3(v, "/", suffix);
	if (c->home == NULL)
		return NULL;
	base = concat3(c->home, "/", fallback);
	p = concat3(base, "/", suffix);
	free(base);
	return p;
}

/*
 * Values: check one argument and return its normalized form.  On error
 * *why says which values are accepted.
 */
static int
norm_bool(const char *arg, char **out, const char **why)
{
	if (*arg == '\0' || strcasecmp(arg, "on") == 0)
		*out = xstrdup("on");
	else if (strcasecmp(arg, "off") == 0)
		*out = xstrdup("off");
	else {
		*why = "use on or off";
		return -1;
	}
	return 0;
}

static int
norm_number(const char *arg, long min, long max, long *n)
{
	char	*end;

	if (!isdigit((unsigned char)*arg))
		return -1;
	errno = 0;
	*n = strtol(arg, &end, 10);
	if (errno != 0 || *end != '\0' || *n < min || *n > max)
		return -1;
	return 0;
}

static char *
long_string(long n)
{
	char	 buf[32];

	snprintf(buf, sizeof(buf), "%ld", n);
	return xstrdup(buf);
}

static int
norm_name(const char *arg, char **out, const char **why)
{
	if (strpbrk(arg, " \t") != NULL) {
		*why = "use a name without blanks";
		return -1;
	}
	*out = xstrdup(arg);
	return 0;
}

static int
norm_file(const struct ctx *c, const char *arg, char **out,
    const char **why)
{
	if (arg[0] != '~' || (arg[1] != '\0' && arg[1] != '/')) {
		*out = xstrdup(arg);
		return 0;
	}
	if (c->home == NULL) {
		*why = "~ needs a home directory, and HOME is not set";
		return -1;
	}
	*out = concat3(c->home, arg + 1, "");
	return 0;
}

/* 64 hex digits, colons anywhere; normalized to AA:BB:... (95 chars). */
static int
norm_fingerprint(const char *arg, char **out, const char **why)
{
	char	 hex[64];
	size_t	 n = 0, i;

	*why = SHA256_HOWTO;
	for (; *arg != '\0'; arg++) {
		if (*arg == ':')
			continue;
		if (!isxdigit((unsigned char)*arg) || n == sizeof(hex))
			return -1;
		hex[n++] = (char)toupper((unsigned char)*arg);
	}
	if (n != sizeof(hex))
		return -1;
	*out = xcalloc(1, 96);
	for (i = 0; i < 32; i++) {
		if (i > 0)
			(*out)[i * 3 - 1] = ':';
		(*out)[i * 3] = hex[2 * i];
		(*out)[i * 3 + 1] = hex[2 * i + 1];
	}
	return 0;
}

static int
norm_auth(const char *arg, char **out, const char **why)
{
	size_t	 i, n = strlen(arg);

	if (*arg == '\0' || strcasecmp(arg, "on") == 0) {
		*out = xstrdup("on");
		return 0;
	}
	if (strcasecmp(arg, "off") == 0) {
		*out = xstrdup("off");
		return 0;
	}
	*why = "use on, off or a SASL mechanism such as PLAIN, "
	    "SCRAM-SHA-256 or XOAUTH2";
	if (n > 64)
		return -1;
	*out = xstrdup(arg);
	for (i = 0; i < n; i++) {
		(*out)[i] = (char)toupper((unsigned char)arg[i]);
		if (!isalnum((unsigned char)(*out)[i]) && (*out)[i] != '-' &&
		    (*out)[i] != '_') {
			free(*out);
			*out = NULL;
			return -1;
		}
	}
	return 0;
}

/* msmtp's substitutions in `from': %U user, %H host, %M mailname. */
static int
norm_from(const struct ctx *c, const char *arg, char **out,
    const char **why)
{
	char		 buf[1024], one[2] = "";
	const char	*add;
	size_t		 n = 0, len;

	for (; *arg != '\0'; arg++) {
		add = NULL;
		if (arg[0] == '%' && arg[1] != '\0') {
			switch (arg[1]) {
			case 'U':
				if ((add = c->user) == NULL) {
					*why = "%U needs a login name, and uid "
					    "has no passwd entry (nor, outside "
					    "a setgid install, $USER)";
					return -1;
				}
				break;
			case 'H':
				add = c->hostname;
				break;
			case 'M':
				if ((add = c->mailname) == NULL) {
					*why = "%M needs /etc/mailname, which "
					    "does not exist";
					return -1;
				}
				break;
			case '%':
				add = "%";
				break;
			}
		}
		if (add != NULL)
			arg++;
		else {
			one[0] = *arg;
			add = one;
		}
		len = strlen(add);
		if (n + len >= sizeof(buf)) {
			*why = "an address is at most 1000 characters long";
			return -1;
		}
		memcpy(buf + n, add, len);
		n += len;
	}
	buf[n] = '\0';
	*out = xstrdup(buf);
	return 0;
}

static int
norm_choice(const char *arg, const char *const *ok, char **out)
{
	for (; *ok != NULL; ok++) {
		if (strcasecmp(arg, *ok) == 0) {
			*out = xstrdup(*ok);
			return 0;
		}
	}
	return -1;
}

/* never, or a list of success, delay, failure: as RFC 3461 spells it. */
static int
norm_dsn_notify(const char *arg, char **out, const char **why)
{
	static const char *const kw[] = { "SUCCESS", "DELAY", "FAILURE",
	    NULL };
	char		*copy, *tok, *save, *one = NULL, buf[64] = "";

	*why = "use never or a comma-separated list of success, delay and "
	    "failure";
	if (*arg == '\0' || strcasecmp(arg, "off") == 0) {
		*out = xstrdup("");
		return 0;
	}
	if (strcasecmp(arg, "never") == 0) {
		*out = xstrdup("NEVER");
		return 0;
	}
	copy = xstrdup(arg);
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (norm_choice(str_trim(tok), kw, &one) == -1 ||
		    strstr(buf, one) != NULL) {
			free(one);
			free(copy);
			return -1;
		}
		if (buf[0] != '\0')
			strcat(buf, ",");
		strcat(buf, one);
		free(one);
		one = NULL;
	}
	free(copy);
	if (buf[0] == '\0')
		return -1;
	*out = xstrdup(buf);
	return 0;
}

static int
norm_dsn_return(const char *arg, char **out, const char **why)
{
	*why = "use hdrs or full";
	if (*arg == '\0' || strcasecmp(arg, "off") == 0)
		*out = xstrdup("");
	else if (strcasecmp(arg, "hdrs") == 0 ||
	    strcasecmp(arg, "headers") == 0)
		*out = xstrdup("HDRS");
	else if (strcasecmp(arg, "full") == 0)
		*out = xstrdup("FULL");
	else
		return -1;
	return 0;
}

static int
norm_duration(const char *arg, char **out, const char **why)
{
	char	 num[24];
	size_t	 n = strlen(arg);
	long	 v, unit = 1;

	*why = "use a positive number with an optional unit s, m, h or d "
	    "(for example 5d)";
	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, arg, n + 1);
	switch (num[n - 1]) {
	case 'd':
		unit *= 24;
		/* FALLTHROUGH */
	case 'h':
		unit *= 60;
		/* FALLTHROUGH */
	case 'm':
		unit *= 60;
		/* FALLTHROUGH */
	case 's':
		num[n - 1] = '\0';
		break;
	}
	if (norm_number(num, 1, AGE_MAX / unit, &v) == -1)
		return -1;
	*out = long_string(v * unit);
	return 0;
}

/* N[kMG] octets (powers of 1024); 0 is no limit. */
static int
norm_bytes(const char *arg, char **out, const char **why)
{
	char	 num[24];
	size_t	 n = strlen(arg);
	long	 v, unit = 1;

	*why = "use a number of octets with an optional unit k, M or G "
	    "(for example 100M), or 0 for no limit";
	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, arg, n + 1);
	switch (num[n - 1]) {
	case 'G':
		unit *= 1024;
		/* FALLTHROUGH */
	case 'M':
		unit *= 1024;
		/* FALLTHROUGH */
	case 'k':
		unit *= 1024;
		num[n - 1] = '\0';
		break;
	}
	if (norm_number(num, 0, BYTES_MAX / unit, &v) == -1)
		return -1;
	*out = long_string(v * unit);
	return 0;
}

static int
norm_syslog(const char *arg, char **out, const char **why)
{
	size_t	 i;

	*why = "use on, off, LOG_MAIL, LOG_USER or LOG_LOCAL0 to LOG_LOCAL7";
	if (*arg == '\0' || strcasecmp(arg, "on") == 0) {
		*out = xstrdup("LOG_MAIL");
		return 0;
	}
	if (strcasecmp(arg, "off") == 0) {
		*out = xstrdup("off");
		return 0;
	}
	for (i = 0; facilities[i].name != NULL; i++) {
		if (strcasecmp(arg, facilities[i].name) == 0) {
			*out = xstrdup(facilities[i].name);
			return 0;
		}
	}
	return -1;
}

static int
value_norm(const struct ctx *c, enum dir d, const char *arg, char **out,
    const char **why)
{
	static const char *const tri[] = { "auto", "on", "off", NULL };
	static const char *const auto_off[] = { "auto", "off", NULL };
	static const char *const vers[] = { "1.2", "1.3", NULL };
	long	 n;

	/* The caller's HOME must not choose whom the system account trusts. */
	if ((d == D_TLS_TRUST_FILE || d == D_TLS_CERT_FILE ||
	    d == D_TLS_KEY_FILE || d == D_OAUTH_TOKEN_STORE) &&
	    c->restricted && c->in_system &&
	    arg[0] == '~') {
		*why = "~ would be the home of whoever runs smarthost, which "
		    "is installed setgid: write the full path";
		return -1;
	}

	*out = NULL;
	/* For everything but a boolean, an empty argument means "unset". */
	if (*arg == '\0' && dirs[d].type != V_BOOL &&
	    dirs[d].type != V_AUTH && dirs[d].type != V_SYSLOG) {
		*out = xstrdup("");
		return 0;
	}
	switch (dirs[d].type) {
	case V_TEXT:
	case V_SECRET:
		*out = xstrdup(arg);
		return 0;
	case V_NAME:
		return norm_name(arg, out, why);
	case V_PORT:
		*why = "use a port number from 1 to 65535";
		if (norm_number(arg, 1, 65535, &n) == -1)
			return -1;
		*out = long_string(n);
		return 0;
	case V_BOOL:
		return norm_bool(arg, out, why);
	case V_FILE:
		return norm_file(c, arg, out, why);
	case V_TRUST:
		if (strcmp(arg, "system") == 0) {
			*out = xstrdup(arg);
			return 0;
		}
		return norm_file(c, arg, out, why);
	case V_FINGERPRINT:
		return norm_fingerprint(arg, out, why);
	case V_TLSVER:
		*why = "use 1.2 or 1.3";
		return norm_choice(arg, vers, out);
	case V_SECONDS:
		*why = "use a number of seconds from 1 to 86400 (there is no "
		    "off: smarthost never waits forever)";
		if (norm_number(arg, 1, TIMEOUT_MAX, &n) == -1)
			return -1;
		*out = long_string(n);
		return 0;
	case V_AUTH:
		return norm_auth(arg, out, why);
	case V_FROM:
		return norm_from(c, arg, out, why);
	case V_TRI:
		*why = "use auto, on or off";
		return norm_choice(arg, tri, out);
	case V_AUTO_OFF:
		*why = "use auto or off";
		return norm_choice(arg, auto_off, out);
	case V_DSN_NOTIFY:
		return norm_dsn_notify(arg, out, why);
	case V_DSN_RETURN:
		return norm_dsn_return(arg, out, why);
	case V_DURATION:
		return norm_duration(arg, out, why);
	case V_BYTES:
		return norm_bytes(arg, out, why);
	case V_CACHE:
		if (strcmp(arg, "off") == 0) {
			*out = xstrdup(arg);
			return 0;
		}
		return norm_file(c, arg, out, why);
	case V_LOGFILE:
		if (strcmp(arg, "-") == 0) {
			*out = xstrdup(arg);
			return 0;
		}
		return norm_file(c, arg, out, why);
	case V_SYSLOG:
		return norm_syslog(arg, out, why);
	case V_OAUTH:
		return oauth_norm(names[d], arg, out, why);
	case V_RELAYHOST:
	case V_PROVIDER:
		break;
	}
	*why = "internal error: no checker for this directive";
	return -1;
}

/* HOST, [HOST], HOST:PORT or [HOST]:PORT; *port is NULL when absent. */
static int
relayhost_split(const char *arg, char **host, char **port)
{
	const char	*end, *colon;
	long		 n;

	*host = *port = NULL;
	if (arg[0] == '[') {
		if ((end = strchr(arg, ']')) == NULL || end == arg + 1)
			return -1;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			return -1;
		arg++;
	} else {
		colon = strchr(arg, ':');
		end = colon != NULL ? colon : arg + strlen(arg);
		if (end == arg || (colon != NULL && strchr(colon + 1, ':')))
			return -1;
	}
	if (colon != NULL && norm_number(colon + 1, 1, 65535, &n) == -1)
		return -1;
	*host = xcalloc(1, (size_t)(end - arg) + 1);
	memcpy(*host, arg, (size_t)(end - arg));
	if (strpbrk(*host, " \t[]") != NULL) {
		free(*host);
		*host = NULL;
		return -1;
	}
	if (colon != NULL)
		*port = long_string(n);
	return 0;
}

static int
relayhost_apply(struct settings *s, const char *arg, const char *where,
    int code, struct error *err)
{
	char	*host, *port, shown[SHOWN_MAX + 1];

	if (*arg == '\0') {
		settings_put(s, D_HOST, xstrdup(""), 1);
		settings_put(s, D_PORT, xstrdup(""), 1);
		return 0;
	}
	if (relayhost_split(arg, &host, &port) == -1) {
		sanitize(shown, sizeof(shown), arg);
		return error_set(err, code, "%s: invalid value '%s' for "
		    "relayhost: use HOST, [HOST] or [HOST]:PORT", where,
		    shown);
	}
	settings_put(s, D_HOST, host, 1);
	settings_put(s, D_PORT, port != NULL ? port : xstrdup(""), 1);
	return 0;
}

/* The preset's own name, so that an alias and a typo show up early. */
static int
provider_apply(struct settings *s, const char *arg, const char *where,
    int code, struct error *err)
{
	struct preset	 p;
	struct error	 perr;

	if (*arg == '\0') {
		settings_put(s, D_PROVIDER, xstrdup(""), 1);
		return 0;
	}
	if (provider_find(arg, &p, &perr) == -1)
		return error_set(err, code, "%s: %s", where, perr.msg);
	settings_put(s, D_PROVIDER, xstrdup(p.name), 1);
	return 0;
}

/* Check one directive's argument and record it in a layer. */
static int
directive_apply(const struct ctx *c, struct settings *s, enum dir d,
    const char *arg, const char *where, int code, struct error *err)
{
	const char	*why = "";
	char		*v, shown[SHOWN_MAX + 1];

	if (strpbrk(arg, "\r\n") != NULL)
		return error_set(err, code, "%s: the value for %s contains a "
		    "CR or LF character", where, names[d]);
	if (d == D_RELAYHOST)
		return relayhost_apply(s, arg, where, code, err);
	if (d == D_PROVIDER)
		return provider_apply(s, arg, where, code, err);
	if (value_norm(c, d, arg, &v, &why) == -1) {
		sanitize(shown, sizeof(shown), arg);
		return error_set(err, code, "%s: invalid value '%s' for %s: %s",
		    where, shown, names[d], why);
	}
	settings_put(s, d, v, 1);
	return 0;
}

/*
 * The file parser.
 */
static void
parser_where(struct parser *p)
{
	snprintf(p->where, sizeof(p->where), "%s:%zu", p->file, p->line);
}

/*
 * The argument: either one double-quoted string (\" and \\ escaped),
 * or the rest of the line as written, quotes included (msmtp passes
 * them on, and passwordeval commands rely on it).  A '#' at the start
 * of a word and outside double quotes begins a comment.
 */
static int
parse_arg(struct parser *p, char *s, char **arg, struct error *err)
{
	char	*r, *w;
	int	 inq = 0;

	s = str_trim(s);
	*arg = s;
	if (*s != '"') {
		for (r = s; *r != '\0'; r++) {
			if (*r == '"')
				inq = !inq;
			else if (*r == '#' && !inq && (r == s ||
			    is_blank(r[-1]))) {
				*r = '\0';
				break;
			}
		}
		str_trim(s);
		return 0;
	}
	for (r = s + 1, w = s; *r != '"'; r++) {
		if (*r == '\0')
			return error_set(err, EX_CONFIG, "%s: missing closing "
			    "quote", p->where);
		if (*r == '\\' && (r[1] == '"' || r[1] == '\\'))
			r++;
		*w++ = *r;
	}
	*w = '\0';
	for (r++; is_blank(*r); r++)
		;
	if (*r != '\0' && *r != '#')
		return error_set(err, EX_CONFIG, "%s: text after the closing "
		    "quote (quote the whole argument)", p->where);
	return 0;
}

static int
account_new(struct parser *p, const char *name, struct cacc **out,
    struct error *err)
{
	struct cacc	*a;

	if (p->accounts.n >= ACCOUNTS_MAX)
		return error_set(err, EX_CONFIG, "%s: more than %d accounts",
		    p->where, ACCOUNTS_MAX);
	if (clist_find(&p->accounts, name) != NULL)
		return error_set(err, EX_CONFIG, "%s: account '%s' is already "
		    "defined in this file", p->where, name);
	a = xcalloc(1, sizeof(*a));
	a->name = xstrdup(name);
	a->file = xstrdup(p->file);
	a->system = p->ctx->in_system;
	settings_copy(&a->s, &p->defaults, 0, 0);
	*out = a;
	return 0;
}

static int
account_inherit(struct parser *p, struct cacc *a, char *list,
    struct error *err)
{
	char		*tok, *save, *name;
	struct cacc	*parent;
	int		 n = 0;

	for (tok = strtok_r(list, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		name = str_trim(tok);
		if (++n > PARENTS_MAX)
			return error_set(err, EX_CONFIG, "%s: account '%s' "
			    "has more than %d parents", p->where, a->name,
			    PARENTS_MAX);
		if ((parent = clist_find(&p->accounts, name)) == NULL)
			return error_set(err, EX_CONFIG, "%s: account '%s' "
			    "must be defined before account '%s' can inherit "
			    "from it", p->where, name, a->name);
		settings_copy(&a->s, &parent->s, 1, 1);
	}
	if (n == 0)
		return error_set(err, EX_CONFIG, "%s: no parent account after "
		    "':' (account NAME : PARENT[,PARENT...])", p->where);
	return 0;
}

/* account NAME [: PARENT[,PARENT...]] */
static int
start_account(struct parser *p, char *arg, struct error *err)
{
	char		*colon, *name, *parents = NULL;
	struct cacc	*a;

	if ((colon = strchr(arg, ':')) != NULL) {
		*colon = '\0';
		parents = colon + 1;
	}
	name = str_trim(arg);
	if (*name == '\0')
		return error_set(err, EX_CONFIG, "%s: account needs a name "
		    "(account NAME [: PARENT,...])", p->where);
	if (strchr(name, ',') != NULL)
		return error_set(err, EX_CONFIG, "%s: account name '%s' must "
		    "not contain a comma", p->where, name);
	if (account_new(p, name, &a, err) == -1)
		return -1;
	if (parents != NULL && account_inherit(p, a, parents, err) == -1) {
		cacc_free(a);
		return -1;
	}
	clist_add(&p->accounts, a);
	p->cur = &a->s;
	return 0;
}

/* Settings before any `account' line form the account "default" (msmtp). */
static int
start_implicit(struct parser *p, struct error *err)
{
	struct cacc	*a;

	if (account_new(p, "default", &a, err) == -1)
		return -1;
	clist_add(&p->accounts, a);
	p->cur = &a->s;
	return 0;
}

static int
unknown_directive(struct parser *p, const char *word, struct error *err)
{
	char	 shown[SHOWN_MAX + 1];
	size_t	 i;

	for (i = 0; unsupported[i] != NULL; i++) {
		if (strcmp(word, unsupported[i]) == 0) {
			if (!p->ctx->quiet)
				log_warn("%s: directive '%s' is not supported "
				    "by smarthost and is ignored", p->where,
				    word);
			return 0;
		}
	}
	sanitize(shown, sizeof(shown), word);
	return error_set(err, EX_CONFIG, "%s: unknown directive '%s'",
	    p->where, shown);
}

static int
parse_line(struct parser *p, char *line, struct error *err)
{
	char	*s, *word, *arg;
	size_t	 n = strlen(line);
	int	 d;

	if (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	if (n > 0 && line[n - 1] == '\r')
		line[--n] = '\0';
	s = str_trim(line);
	if (*s == '\0' || *s == '#')
		return 0;
	for (word = s; *s != '\0' && !is_blank(*s); s++)
		;
	if (*s != '\0')
		*s++ = '\0';
	if (parse_arg(p, s, &arg, err) == -1)
		return -1;
	if (strcmp(word, "defaults") == 0) {
		if (*arg != '\0')
			return error_set(err, EX_CONFIG, "%s: defaults takes "
			    "no argument", p->where);
		p->cur = &p->defaults;
		return 0;
	}
	if (strcmp(word, "account") == 0)
		return start_account(p, arg, err);
	if ((d = directive_index(word)) == -1)
		return unknown_directive(p, word, err);
	if (p->cur == NULL && start_implicit(p, err) == -1)
		return -1;
	if ((d == D_PASSWORD || d == D_OAUTH_CLIENT_SECRET) && *arg != '\0')
		p->password = 1;
	return directive_apply(p->ctx, p->cur, d, arg, p->where, EX_CONFIG,
	    err);
}

static int
parse_stream(struct parser *p, FILE *fp, struct error *err)
{
	char	*line;
	size_t	 cap = LINE_START, total = 0;
	ssize_t	 n;
	int	 rc = 0;

	/*
	 * getline() frees what it outgrows unwiped: start big enough for
	 * any real line (OAuth tokens are a few KiB), so the buffer wiped
	 * below is the only one that held a password.
	 */
	line = xcalloc(1, cap);
	while (rc == 0 && (n = getline(&line, &cap, fp)) != -1) {
		p->line++;
		parser_where(p);
		total += (size_t)n;
		if (total > CONF_SIZE_MAX)
			rc = error_set(err, EX_CONFIG, "%s is larger than "
			    "1 MiB: refusing to read it", p->file);
		else if (strlen(line) != (size_t)n)
			rc = error_set(err, EX_CONFIG, "%s: the line contains "
			    "a NUL byte", p->where);
		else
			rc = parse_line(p, line, err);
	}
	if (rc == 0 && ferror(fp))
		rc = error_set(err, EX_IOERR, "cannot read %s: %s", p->file,
		    strerror(errno));
	/* The lines may have held a password. */
	if (line != NULL)
		explicit_bzero(line, cap);
	free(line);
	return rc;
}

/*
 * A user's file must be the user's own (root run with a user's HOME must
 * not take that user's relay for the system account's); a file that
 * sets a password must not be readable by others, nor a user's by its
 * group (the system file may be root:smarthost 0640, setgid install).
 */
static int
perm_check(const char *path, const struct stat *st, int user, int password,
    struct error *err)
{
	if (user && st->st_uid != geteuid())
		return error_set(err, EX_CONFIG, "%s belongs to uid %u, not "
		    "to you (uid %u): a configuration file of yours must be "
		    "your own", path, (unsigned)st->st_uid,
		    (unsigned)geteuid());
	if (!password)
		return 0;
	if (st->st_mode & S_IROTH)
		return error_set(err, EX_CONFIG, "%s holds a password and can "
		    "be read by every user: run chmod 600 %s", path, path);
	if (user && (st->st_mode & S_IRGRP))
		return error_set(err, EX_CONFIG, "%s holds a password and can "
		    "be read by its group: run chmod 600 %s", path, path);
	return 0;
}

/*
 * Lay one file's accounts over those read so far (later files win).
 * With replace (a user's file in a setgid run), an account of the same
 * name takes the place of the system's as a whole: merged, a user's
 * `host' would send the system password to the user's server.
 */
static int
clist_merge(struct clist *all, struct clist *more, const char *path,
    int replace, struct error *err)
{
	struct cacc	*a, *old;
	size_t		 i;

	for (i = 0; i < more->n; i++) {
		a = more->v[i];
		if ((old = clist_find(all, a->name)) != NULL && replace) {
			settings_clear(&old->s);
			old->system = 0;
		}
		if (old == NULL) {
			if (all->n >= ACCOUNTS_MAX)
				return error_set(err, EX_CONFIG, "%s: more "
				    "than %d accounts in all files", path,
				    ACCOUNTS_MAX);
			clist_add(all, a);
			more->v[i] = NULL;
			continue;
		}
		settings_copy(&old->s, &a->s, 0, 1);
		old->system = old->system && a->system;
		free(old->file);
		old->file = xstrdup(a->file);
	}
	return 0;
}

static void
files_note(struct files *f, const char *path, int read)
{
	if (f->n >= sizeof(f->looked) / sizeof(f->looked[0]))
		return;
	f->looked[f->n] = xstrdup(path);
	f->read[f->n++] = read;
}

/* Returns 1 when the file does not exist. */
static int
conf_file(const struct ctx *c, const char *path, int kind,
    struct clist *all, struct files *f, struct error *err)
{
	struct parser	 p;
	struct ctx	 sc;
	struct stat	 st;
	FILE		*fp;
	char		*iobuf;
	int		 fd, rc;

	/* The one file a setgid run reads with its group (priv.c). */
	if (kind == CF_SYSTEM)
		priv_raise();
	fd = open_read(path, 0);
	priv_drop();
	if (fd == -1) {
		files_note(f, path, 0);
		if (errno == ENOENT)
			return 1;
		if (kind == CF_SYSTEM && errno == EACCES) {
			if (!c->quiet)
				log_warn("cannot read %s: %s; ignoring it",
				    path, strerror(errno));
			return 1;
		}
		return error_set(err, EX_CONFIG, "cannot open %s: %s", path,
		    strerror(errno));
	}
	files_note(f, path, 1);
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return error_set(err, EX_CONFIG, "%s is not a regular file",
		    path);
	}
	if (st.st_size > CONF_SIZE_MAX) {
		close(fd);
		return error_set(err, EX_CONFIG, "%s is larger than 1 MiB: "
		    "refusing to read it", path);
	}
	if ((fp = fdopen(fd, "r")) == NULL) {
		close(fd);
		return error_set(err, EX_OSERR, "cannot read %s: %s", path,
		    strerror(errno));
	}
	/* Our own stdio buffer, so that it can be wiped: it held the file. */
	iobuf = xcalloc(1, IOBUF_SIZE);
	setvbuf(fp, iobuf, _IOFBF, IOBUF_SIZE);
	memset(&p, 0, sizeof(p));
	sc = *c;
	sc.in_system = kind == CF_SYSTEM;
	p.ctx = &sc;
	p.file = path;
	rc = parse_stream(&p, fp, err);
	fclose(fp);
	explicit_bzero(iobuf, IOBUF_SIZE);
	free(iobuf);
	if (rc == 0)
		rc = perm_check(path, &st, kind == CF_USER, p.password, err);
	if (rc == 0)
		rc = clist_merge(all, &p.accounts, path,
		    kind == CF_USER && c->restricted, err);
	clist_clear(&p.accounts);
	settings_clear(&p.defaults);
	return rc;
}

static int
conf_load(const struct ctx *c, const struct cmdline *cl, struct clist *all,
    struct files *f, struct error *err)
{
	char		*path;
	int		 rc;

	if (cl->conffile != NULL) {
		if (c->restricted && cl->mode != MODE_CONFIGURE)
			return error_set(err, EX_USAGE, "-C cannot be used: "
			    "smarthost is installed setgid and only root may "
			    "choose another configuration file");
		f->edit = xstrdup(cl->conffile);
		if ((rc = conf_file(c, cl->conffile, CF_USER, all, f,
		    err)) == 1)
			return error_set(err, EX_CONFIG, "cannot open %s: %s",
			    cl->conffile, strerror(ENOENT));
		return rc;
	}
	if (conf_file(c, config_system_file(), CF_SYSTEM, all, f, err) == -1)
		return -1;
	if ((path = xdg_path(c, "XDG_CONFIG_HOME", ".config",
	    "smarthost/config")) == NULL)
		return 0;
	f->edit = path;
	if ((rc = conf_file(c, path, CF_USER, all, f, err)) != 1 ||
	    c->home == NULL)
		return rc == -1 ? -1 : 0;
	path = concat3(c->home, "/.smarthostrc", "");
	if ((rc = conf_file(c, path, CF_USER, all, f, err)) == 0) {
		free(f->edit);
		f->edit = path;
	} else
		free(path);
	return rc == -1 ? -1 : 0;
}

/*
 * Account choice.
 */
static int
from_matches(const char *pattern, const char *addr)
{
	if (strpbrk(pattern, "*?[") != NULL)
		return fnmatch(pattern, addr, FNM_CASEFOLD) == 0;
	return strcasecmp(pattern, addr) == 0;
}

/* user+tag@d -> user@d; returns 0 when there is no tag. */
static int
addr_untag(const char *addr, char *out, size_t size)
{
	const char	*at = strrchr(addr, '@'), *plus;

	plus = strchr(addr, '+');
	if (at == NULL || plus == NULL || plus > at)
		return 0;
	snprintf(out, size, "%.*s%s", (int)(plus - addr), addr, at);
	return 1;
}

static struct cacc *
match_from(const struct clist *all, const char *from)
{
	char		 addr[ADDR_MAX + 1], plain[ADDR_MAX + 1];
	const char	*pat;
	size_t		 n = strlen(from), i;
	int		 tagged;

	if (n >= 2 && from[0] == '<' && from[n - 1] == '>') {
		from++;
		n -= 2;
	}
	if (n == 0 || n > ADDR_MAX)
		return NULL;
	snprintf(addr, sizeof(addr), "%.*s", (int)n, from);
	tagged = addr_untag(addr, plain, sizeof(plain));
	for (i = 0; i < all->n; i++) {
		if (!is_set(&all->v[i]->s, D_FROM))
			continue;
		pat = all->v[i]->s.val[D_FROM];
		if (from_matches(pat, addr) ||
		    (tagged && from_matches(pat, plain)))
			return all->v[i];
	}
	return NULL;
}

static void
files_list(const struct files *f, int only_read, char *buf, size_t size)
{
	size_t	 i, n = 0;

	buf[0] = '\0';
	for (i = 0; i < f->n; i++) {
		if (only_read && !f->read[i])
			continue;
		snprintf(buf + strlen(buf), size - strlen(buf), "%s%s",
		    n++ > 0 ? ", " : "", f->looked[i]);
	}
}

static int
account_choose(const struct clist *all, const struct cmdline *cl,
    const struct files *f, struct cacc **out, struct error *err)
{
	char	 list[1024];

	*out = NULL;
	if (cl->account != NULL) {
		if ((*out = clist_find(all, cl->account)) != NULL)
			return 0;
		files_list(f, 1, list, sizeof(list));
		if (list[0] != '\0')
			return error_set(err, EX_CONFIG, "account %s not "
			    "found in %s", cl->account, list);
		files_list(f, 0, list, sizeof(list));
		return error_set(err, EX_CONFIG, "account %s not found: no "
		    "configuration file exists (looked for %s)", cl->account,
		    list);
	}
	if (cl->from != NULL && (*out = match_from(all, cl->from)) != NULL)
		return 0;
	if ((*out = clist_find(all, "default")) != NULL)
		return 0;
	if (all->n == 1)
		*out = all->v[0];
	return 0;
}

/*
 * The environment (SPEC section 5).
 */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static char *
percent_decode(const char *s, size_t n)
{
	char	*out = xcalloc(1, n + 1);
	size_t	 i, w = 0;
	int	 hi, lo;

	for (i = 0; i < n; i++) {
		if (s[i] != '%') {
			out[w++] = s[i];
			continue;
		}
		if (i + 2 >= n || (hi = hexval(s[i + 1])) < 0 ||
		    (lo = hexval(s[i + 2])) < 0) {
			free(out);
			return NULL;
		}
		out[w++] = (char)(hi * 16 + lo);
		i += 2;
	}
	if (strlen(out) != w || strpbrk(out, "\r\n") != NULL) {
		free(out);
		return NULL;
	}
	return out;
}

static int
relay_scheme(const char *url, const char **rest, int *implicit,
    struct error *err)
{
	const char	*sep = strstr(url, "://");
	char		 shown[SHOWN_MAX + 1], scheme[SHOWN_MAX + 1];

	if (strncasecmp(url, "smtps://", 8) == 0) {
		*implicit = 1;
		*rest = url + 8;
		return 0;
	}
	if (strncasecmp(url, "smtp://", 7) == 0) {
		*implicit = 0;
		*rest = url + 7;
		return 0;
	}
	snprintf(scheme, sizeof(scheme), "%.*s",
	    sep != NULL ? (int)(sep - url) : 0, url);
	sanitize(shown, sizeof(shown), scheme);
	return error_set(err, EX_CONFIG, "SMARTHOST_RELAY: unknown scheme "
	    "'%s': " RELAY_FORM, shown);
}

/* smtps://USER@HOST[:PORT] or smtp://USER@HOST[:PORT]; USER optional. */
static int
relay_apply(struct settings *s, const char *url, struct error *err)
{
	const char	*rest = NULL, *at;
	char		*user = NULL, *host, *port, hostpart[1024];
	int		 implicit = 0;
	size_t		 n;

	if (strpbrk(url, "\r\n") != NULL)
		return error_set(err, EX_CONFIG, "SMARTHOST_RELAY: the value "
		    "contains a CR or LF character");
	if (relay_scheme(url, &rest, &implicit, err) == -1)
		return -1;
	if ((at = strrchr(rest, '@')) != NULL) {
		if (memchr(rest, ':', (size_t)(at - rest)) != NULL)
			return error_set(err, EX_CONFIG, "SMARTHOST_RELAY: "
			    "no password in the URL, please: put it in "
			    "SMARTHOST_PASSWORD or SMARTHOST_PASSWORD_FILE");
		if ((user = percent_decode(rest, (size_t)(at - rest))) ==
		    NULL)
			return error_set(err, EX_CONFIG, "SMARTHOST_RELAY: "
			    "bad percent-encoding in the user name: write @ "
			    "as %%40 and %% as %%25; CR, LF and NUL are not "
			    "allowed");
		rest = at + 1;
	}
	n = strlen(rest);
	if (n > 0 && rest[n - 1] == '/')
		n--;
	if (n < sizeof(hostpart))
		snprintf(hostpart, sizeof(hostpart), "%.*s", (int)n, rest);
	if (n == 0 || n >= sizeof(hostpart) ||
	    relayhost_split(hostpart, &host, &port) == -1) {
		free(user);
		return error_set(err, EX_CONFIG, "SMARTHOST_RELAY: invalid "
		    "host or port: " RELAY_FORM);
	}
	settings_put(s, D_HOST, host, 1);
	if (port != NULL)
		settings_put(s, D_PORT, port, 1);
	settings_put(s, D_TLS, xstrdup("on"), 1);
	settings_put(s, D_TLS_STARTTLS, xstrdup(implicit ? "off" : "on"), 1);
	if (user != NULL && *user != '\0')
		settings_put(s, D_USER, user, 1);
	else
		free(user);
	return 0;
}

static int
restricted_error(const char *what, int kind, int code, struct error *err)
{
	return error_set(err, code, "%s cannot be used: smarthost is "
	    "installed setgid, and only root may change %s", what,
	    kind == S_SENDER ? "the sender rules of the system account" :
	    kind == S_PASSWORD ? "the password of the system account" :
	    "where the system password goes");
}

static int
env_apply(const struct ctx *c, struct settings *s, const char *password,
    struct error *err)
{
	const char	*v;
	char		 var[64];
	size_t		 i;
	int		 d;

	if ((v = getenv("SMARTHOST_RELAY")) != NULL && *v != '\0') {
		if (c->restricted)
			return restricted_error("SMARTHOST_RELAY", S_DEST,
			    EX_CONFIG, err);
		if (relay_apply(s, v, err) == -1)
			return -1;
	}
	for (d = 0; d < D_COUNT; d++) {
		if (d == D_PASSWORD)
			continue;
		snprintf(var, sizeof(var), "SMARTHOST_%s", names[d]);
		for (i = 0; var[i] != '\0'; i++)
			var[i] = (char)toupper((unsigned char)var[i]);
		if ((v = getenv(var)) == NULL || *v == '\0')
			continue;
		if (c->restricted && dirs[d].sensitive)
			return restricted_error(var, dirs[d].sensitive,
			    EX_CONFIG, err);
		if (directive_apply(c, s, d, v, var, EX_CONFIG, err) == -1)
			return -1;
	}
	if (password != NULL)
		return directive_apply(c, s, D_PASSWORD, password,
		    "SMARTHOST_PASSWORD", EX_CONFIG, err);
	return 0;
}

/*
 * A SMARTHOST_ variable that is neither a directive nor one the program
 * reads itself is a typo that would go unnoticed: say so, naming the
 * nearest known variable.  Only names are shown, never values (one may
 * be a misspelt password).  sendmail.c calls this once per run.
 */
static const char *const env_own[] = {
	"RELAY", "PASSWORD", "PASSWORD_FILE",
	"SYSCONF", "MAILNAME_FILE",	/* tests move the system files */
	NULL
};

#define ENV_NAME_MAX	64

/* Edit distance of a and b, ignoring case (both shorter than 64). */
static size_t
env_distance(const char *a, const char *b)
{
	size_t	 row[ENV_NAME_MAX + 1], i, j, diag, up, best;
	size_t	 na = strlen(a), nb = strlen(b);

	for (j = 0; j <= nb; j++)
		row[j] = j;
	for (i = 1; i <= na; i++) {
		diag = row[0];
		row[0] = i;
		for (j = 1; j <= nb; j++) {
			up = row[j];
			best = diag + (toupper((unsigned char)a[i - 1]) !=
			    toupper((unsigned char)b[j - 1]));
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[nb];
}

/* Is name (after SMARTHOST_) known?  If not, *near is the closest. */
static int
env_known(const char *name, char *near, size_t size)
{
	char		 up[ENV_NAME_MAX];
	size_t		 i, d, best = (size_t)-1;

	near[0] = '\0';
	for (i = 0; env_own[i] != NULL; i++) {
		if (strcmp(name, env_own[i]) == 0)
			return 1;
		if ((d = env_distance(name, env_own[i])) < best) {
			best = d;
			snprintf(near, size, "%s", env_own[i]);
		}
	}
	for (i = 0; i < D_COUNT; i++) {
		snprintf(up, sizeof(up), "%s", names[i]);
		for (d = 0; up[d] != '\0'; d++)
			up[d] = (char)toupper((unsigned char)up[d]);
		if (strcmp(name, up) == 0)
			return 1;
		if ((d = env_distance(name, up)) < best) {
			best = d;
			snprintf(near, size, "%s", up);
		}
	}
	/* Two edits away is a suggestion; further, a riddle. */
	if (best > 2)
		near[0] = '\0';
	return 0;
}

void
config_env_warn(void)
{
	extern char	**environ;
	char		 name[ENV_NAME_MAX], shown[ENV_NAME_MAX + 16];
	char		 near[ENV_NAME_MAX];
	const char	*e, *eq;
	size_t		 i, n;

	for (i = 0; environ[i] != NULL; i++) {
		e = environ[i];
		if (strncmp(e, "SMARTHOST_", 10) != 0)
			continue;
		e += 10;
		if ((eq = strchr(e, '=')) == NULL)
			continue;
		n = (size_t)(eq - e);
		if (n >= sizeof(name))
			n = sizeof(name) - 1;
		memcpy(name, e, n);
		name[n] = '\0';
		if (env_known(name, near, sizeof(near)))
			continue;
		sanitize(shown, sizeof(shown), name);
		if (near[0] != '\0')
			log_warn("SMARTHOST_%s is not a variable smarthost "
			    "knows and is ignored: did you mean SMARTHOST_%s?",
			    shown, near);
		else
			log_warn("SMARTHOST_%s is not a variable smarthost "
			    "knows and is ignored: it reads SMARTHOST_RELAY, "
			    "SMARTHOST_PASSWORD, SMARTHOST_PASSWORD_FILE and "
			    "SMARTHOST_ with any directive of "
			    "smarthost.conf(5) in upper case, such as "
			    "SMARTHOST_HOST", shown);
	}
}

/*
 * The command line: --directive=value in order, then -X.
 */
static int
over_apply(const struct ctx *c, struct settings *s,
    const struct cmdline *cl, struct error *err)
{
	char	 opt[128];
	size_t	 i, j;
	int	 d;

	for (i = 0; i < cl->nover; i++) {
		snprintf(opt, sizeof(opt), "--%s", cl->over[i].name);
		for (j = 2; opt[j] != '\0'; j++)
			if (opt[j] == '_')
				opt[j] = '-';
		if (strcmp(cl->over[i].name, "password") == 0)
			return error_set(err, EX_USAGE, "there is no "
			    "--password: every user can read the command "
			    "line; use --passwordeval=COMMAND, a password "
			    "file (SMARTHOST_PASSWORD_FILE) or a chmod 600 "
			    "configuration file");
		if ((d = directive_index(cl->over[i].name)) == -1)
			return error_set(err, EX_USAGE, "unknown option %s",
			    opt);
		if (d == D_OAUTH_CLIENT_SECRET)
			return error_set(err, EX_USAGE, "there is no %s: every "
			    "user can read the command line; use "
			    "--oauth-client-secret-file or "
			    "--oauth-client-secret-eval", opt);
		if (c->restricted && dirs[d].sensitive)
			return restricted_error(opt, dirs[d].sensitive,
			    EX_USAGE, err);
		if (directive_apply(c, s, d, cl->over[i].value != NULL ?
		    cl->over[i].value : "", opt, EX_USAGE, err) == -1)
			return -1;
	}
	if (cl->logfile != NULL && c->restricted)
		return restricted_error("-X", S_DEST, EX_USAGE, err);
	if (cl->logfile != NULL)
		return directive_apply(c, s, D_LOGFILE, cl->logfile, "-X",
		    EX_USAGE, err);
	return 0;
}

/*
 * The account: the layers, laid over each other, made typed.
 */
static char **
str_field(struct account *a, enum dir d)
{
	return (char **)(void *)((char *)a + dirs[d].off);
}

static int *
int_field(struct account *a, enum dir d)
{
	return (int *)(void *)((char *)a + dirs[d].off);
}

static const void *
field(const struct account *a, enum dir d)
{
	return (const char *)a + dirs[d].off;
}

static void
account_defaults(struct account *a)
{
	a->tls = 1;
	a->starttls = 1;
	a->tls_min = 12;
	a->certcheck = 1;
	a->timeout = 60;
	a->allow_from_override = 1;
	a->rewrite_local_senders = 1;
	a->set_from_header = TRI_AUTO;
	a->set_date_header = TRI_AUTO;
	a->set_msgid_header = TRI_AUTO;
	a->remove_bcc_headers = 1;
	a->queue = 1;
	a->queue_max_age = 5 * 86400;
	a->max_message_size = 100LL * 1024 * 1024;
	a->notify = 1;
}

static enum tri
tri_value(const char *v)
{
	if (strcmp(v, "on") == 0)
		return TRI_ON;
	return strcmp(v, "off") == 0 ? TRI_OFF : TRI_AUTO;
}

static void
fingerprint_set(struct account *a, const char *v)
{
	size_t	 i;

	for (i = 0; i < 32; i++)
		a->fingerprint[i] = (unsigned char)(hexval(v[i * 3]) * 16 +
		    hexval(v[i * 3 + 1]));
	a->has_fingerprint = 1;
}

static void
syslog_set(struct account *a, const char *v)
{
	size_t	 i;

	a->syslog = 0;
	for (i = 0; facilities[i].name != NULL; i++) {
		if (strcmp(v, facilities[i].name) == 0) {
			a->syslog = 1;
			a->syslog_facility = facilities[i].facility;
		}
	}
}

static void
account_set(struct account *a, enum dir d, const char *v)
{
	char	**p;

	switch (dirs[d].type) {
	case V_PORT:
	case V_SECONDS:
		*int_field(a, d) = atoi(v);
		return;
	case V_BOOL:
		*int_field(a, d) = strcmp(v, "on") == 0;
		return;
	case V_TLSVER:
		*int_field(a, d) = strcmp(v, "1.3") == 0 ? 13 : 12;
		return;
	case V_TRI:
	case V_AUTO_OFF:
		*(enum tri *)(void *)((char *)a + dirs[d].off) = tri_value(v);
		return;
	case V_DURATION:
		a->queue_max_age = atol(v);
		return;
	case V_BYTES:
		*(long long *)(void *)((char *)a + dirs[d].off) = atoll(v);
		return;
	case V_FINGERPRINT:
		fingerprint_set(a, v);
		return;
	case V_SYSLOG:
		syslog_set(a, v);
		return;
	case V_RELAYHOST:
		return;
	case V_TRUST:
	case V_CACHE:
	case V_AUTH:
		/* These mean "no file" or "off": the field stays NULL. */
		if (strcmp(v, "system") == 0 || strcmp(v, "off") == 0)
			return;
		break;
	default:
		break;
	}
	p = str_field(a, d);
	secret_free(*p);
	*p = xstrdup(v);
}

/* Where a user's own accounts queue by default. */
static char *
user_queue(const struct ctx *c)
{
	return xdg_path(c, "XDG_STATE_HOME", ".local/state",
	    "smarthost/queue");
}

/* The defaults that depend on other settings or on the process. */
static void
account_derive(struct account *a, const struct settings *s,
    const struct ctx *c)
{
	char	*dir;

	if (a->port == 0)
		a->port = !a->tls ? 25 : a->starttls ? 587 : 465;
	if (!is_set(s, D_AUTH) && a->user != NULL)
		a->auth = xstrdup(a->oauth_client_id != NULL ? "XOAUTH2" :
		    "on");
	/*
	 * A session of the system account in a file the caller can write:
	 * theirs to forge (its peer certificate and verify result are
	 * taken on trust) while we hold the system password.  Off.
	 */
	if (c->restricted && a->system) {
		free(a->session_cache);
		a->session_cache = NULL;
	} else if (!is_set(s, D_TLS_SESSION_CACHE))
		a->session_cache = xdg_path(c, "XDG_CACHE_HOME", ".cache",
		    "smarthost/tls-sessions");
	if (a->domain == NULL)
		a->domain = xstrdup(c->hostname);
	if (a->maildomain == NULL && c->mailname != NULL)
		a->maildomain = xstrdup(c->mailname);
	/* A user's own account never puts mail in the shared queue. */
	if (a->queue_dir == NULL && (geteuid() == 0 || (c->privileged &&
	    a->system)))
		a->queue_dir = xstrdup(SPOOLDIR);
	else if (a->queue_dir == NULL)
		a->queue_dir = user_queue(c);
	if (a->dead_letter == NULL && c->home != NULL)
		a->dead_letter = concat3(c->home, "/dead.letter", "");
	/* OAuth2: the system account's tokens where only the group reads. */
	if (a->oauth_client_id != NULL && a->oauth_token_store == NULL) {
		dir = c->privileged && a->system ?
		    xstrdup(SPOOLDIR "/" OAUTH_SYSTEM_DIR) :
		    xdg_path(c, "XDG_STATE_HOME", ".local/state",
		    "smarthost/oauth");
		a->oauth_token_store = dir != NULL ?
		    oauth_store_name(dir, a->name) : NULL;
		free(dir);
	}
	/* Everyone has a log: root syslog, any other user a file. */
	if (!is_set(s, D_SYSLOG) && geteuid() == 0 && a->logfile == NULL) {
		a->syslog = 1;
		a->syslog_facility = LOG_MAIL;
	} else if (!is_set(s, D_SYSLOG) && !is_set(s, D_LOGFILE) &&
	    a->logfile == NULL) {
		a->logfile = xdg_path(c, "XDG_STATE_HOME", ".local/state",
		    "smarthost/log");
		a->logfile_default = a->logfile != NULL;
	}
}

static void
account_build(struct account *a, const struct settings *s,
    const struct cacc *chosen, const struct ctx *c)
{
	int	 d;

	a->name = xstrdup(chosen != NULL ? chosen->name : "environment");
	a->source = xstrdup(chosen != NULL ? chosen->file : "environment");
	a->system = chosen != NULL && chosen->system;
	account_defaults(a);
	for (d = 0; d < D_COUNT; d++)
		if (is_set(s, d))
			account_set(a, d, s->val[d]);
	account_derive(a, s, c);
}

static int
account_check(const struct account *a, const struct clist *all,
    const struct cacc *chosen, const struct files *f, struct error *err)
{
	char	 list[1024];

	if (a->host == NULL && chosen == NULL && all->n > 1) {
		files_list(f, 1, list, sizeof(list));
		return error_set(err, EX_CONFIG, "no account chosen: %s "
		    "define %zu accounts and none is named default: choose "
		    "one with -a NAME, or name one default", list, all->n);
	}
	if (a->host == NULL)
		return error_set(err, EX_CONFIG, "no relay host configured: "
		    "set host in %s or SMARTHOST_RELAY", chosen != NULL ?
		    chosen->file : f->edit != NULL ? f->edit :
		    "~/.config/smarthost/config");
	if ((a->cert_file == NULL) != (a->key_file == NULL))
		return error_set(err, EX_CONFIG, "%s is set but %s is not: "
		    "a client certificate needs both", a->cert_file != NULL ?
		    "tls_cert_file" : "tls_key_file", a->cert_file != NULL ?
		    "tls_key_file" : "tls_cert_file");
	return 0;
}

static void
preset_put(struct settings *s, enum dir d, const char *v)
{
	if (s->val[d] == NULL && v != NULL)
		settings_put(s, d, xstrdup(v), 1);
}

/*
 * A preset fills only what no layer mentions, so the account's own
 * directives win wherever they stand.  A relay that takes only the
 * login as sender gets it as from, and -f and local From headers give
 * way to it.
 */
static int
preset_apply(struct settings *s, struct error *err)
{
	struct preset	 p;
	const char	*user;
	char		 port[16];

	if (!is_set(s, D_PROVIDER))
		return 0;
	if (provider_find(s->val[D_PROVIDER], &p, err) == -1)
		return -1;
	snprintf(port, sizeof(port), "%d", p.port);
	preset_put(s, D_HOST, p.host);
	preset_put(s, D_PORT, port);
	preset_put(s, D_TLS_STARTTLS, p.starttls ? "on" : "off");
	preset_put(s, D_USER, p.user);
	/* OAuth2: the provider's endpoints and scope for the client given. */
	if (is_set(s, D_OAUTH_CLIENT_ID) && p.oauth != NULL) {
		preset_put(s, D_OAUTH_GRANT, p.oauth->grant);
		preset_put(s, D_OAUTH_TENANT, p.oauth->tenant);
		preset_put(s, D_OAUTH_SCOPE, is_set(s, D_OAUTH_GRANT) &&
		    strcmp(s->val[D_OAUTH_GRANT],
		    "client_credentials") == 0 ? p.oauth->app_scope :
		    p.oauth->scope);
		preset_put(s, D_OAUTH_TOKEN_ENDPOINT, p.oauth->token_endpoint);
		preset_put(s, D_OAUTH_DEVICE_ENDPOINT,
		    p.oauth->device_endpoint);
		preset_put(s, D_OAUTH_AUTHORIZE_ENDPOINT,
		    p.oauth->authorize_endpoint);
		preset_put(s, D_AUTH, p.oauth->auth);
	}
	if (!is_set(s, D_USER))
		return 0;
	preset_put(s, D_AUTH, p.auth);
	user = s->val[D_USER];
	if (!p.sender_login || strchr(user, '@') == NULL ||
	    strpbrk(user, "% \t") != NULL)
		return 0;
	preset_put(s, D_FROM, user);
	preset_put(s, D_ALLOW_FROM_OVERRIDE, "off");
	preset_put(s, D_SET_FROM_HEADER, "on");
	return 0;
}

static void
files_clear(struct files *f)
{
	size_t	 i;

	for (i = 0; i < f->n; i++)
		free(f->looked[i]);
	free(f->edit);
}

int
config_account(const struct cmdline *cl, struct account *a,
    struct error *err)
{
	struct ctx	 c;
	struct clist	 all = { NULL, 0 };
	struct files	 f;
	struct settings	 env, over, fin;
	struct cacc	*chosen = NULL;
	char		*password;
	int		 rc;

	memset(a, 0, sizeof(*a));
	memset(&f, 0, sizeof(f));
	memset(&env, 0, sizeof(env));
	memset(&over, 0, sizeof(over));
	memset(&fin, 0, sizeof(fin));
	password = secret_env_take();
	ctx_init(&c);
	rc = conf_load(&c, cl, &all, &f, err);
	if (rc == 0)
		rc = account_choose(&all, cl, &f, &chosen, err);
	if (rc == 0 && c.restricted && password != NULL && chosen !=
	    NULL && chosen->system)
		rc = restricted_error("SMARTHOST_PASSWORD", S_PASSWORD,
		    EX_CONFIG, err);
	if (rc == 0)
		rc = env_apply(&c, &env, password, err);
	if (rc == 0)
		rc = over_apply(&c, &over, cl, err);
	if (rc == 0) {
		if (chosen != NULL)
			settings_copy(&fin, &chosen->s, 0, 0);
		settings_copy(&fin, &env, 0, 1);
		settings_copy(&fin, &over, 0, 1);
		rc = preset_apply(&fin, err);
	}
	if (rc == 0) {
		account_build(a, &fin, chosen, &c);
		/* mailq and -q need only the queue: no relay for an empty one. */
		if (cl->mode != MODE_QUEUE_LIST && cl->mode != MODE_QUEUE_RUN)
			rc = account_check(a, &all, chosen, &f, err);
	}
	secret_free(password);
	settings_clear(&env);
	settings_clear(&over);
	settings_clear(&fin);
	clist_clear(&all);
	files_clear(&f);
	ctx_free(&c);
	if (rc == -1)
		account_free(a);
	return rc;
}

/*
 * Every account the files define, for -q and -bp, which look at each
 * one's queue.  With no account at all, the environment's: ".".
 */
int
config_account_names(const struct cmdline *cl, char ***out, size_t *n,
    struct error *err)
{
	struct ctx	 c;
	struct clist	 all = { NULL, 0 };
	struct files	 f;
	size_t		 i;
	int		 rc;

	*out = NULL;
	*n = 0;
	memset(&f, 0, sizeof(f));
	ctx_init(&c);
	c.quiet = 1;	/* each account's config_account warns */
	if ((rc = conf_load(&c, cl, &all, &f, err)) == 0) {
		*out = xcalloc(all.n + 1, sizeof(**out));
		for (i = 0; i < all.n; i++)
			(*out)[i] = xstrdup(all.v[i]->name);
		*n = all.n;
	}
	clist_clear(&all);
	files_clear(&f);
	ctx_free(&c);
	return rc;
}

/*
 * Names, printing, freeing.
 */
/* The system file; SMARTHOST_SYSCONF moves it for tests, unprivileged. */
const char *
config_system_file(void)
{
	const char	*env = getenv("SMARTHOST_SYSCONF");

	if (getuid() == geteuid() && !priv_setgid() && env != NULL &&
	    *env != '\0')
		return env;
	return SYSCONFDIR "/smarthost.conf";
}

const char *
config_system_queue(void)
{
	return SPOOLDIR;
}

/* The queue of a user's own accounts in a setgid install, or NULL. */
char *
config_user_queue(void)
{
	struct ctx	 c;
	char		*path;

	ctx_init(&c);
	path = user_queue(&c);
	ctx_free(&c);
	return path;
}

int
config_is_directive(const char *name)
{
	return name != NULL && directive_index(name) != -1;
}

const char *const *
config_directives(void)
{
	return names;
}

static const char *
duration_string(long v, char *buf, size_t size)
{
	if (v % 86400 == 0)
		snprintf(buf, size, "%ldd", v / 86400);
	else if (v % 3600 == 0)
		snprintf(buf, size, "%ldh", v / 3600);
	else if (v % 60 == 0)
		snprintf(buf, size, "%ldm", v / 60);
	else
		snprintf(buf, size, "%lds", v);
	return buf;
}

static const char *
bytes_string(long long v, char *buf, size_t size)
{
	if (v != 0 && v % (1024 * 1024 * 1024) == 0)
		snprintf(buf, size, "%lldG", v / (1024 * 1024 * 1024));
	else if (v != 0 && v % (1024 * 1024) == 0)
		snprintf(buf, size, "%lldM", v / (1024 * 1024));
	else if (v != 0 && v % 1024 == 0)
		snprintf(buf, size, "%lldk", v / 1024);
	else
		snprintf(buf, size, "%lld", v);
	return buf;
}

static const char *
syslog_string(const struct account *a)
{
	size_t	 i;

	for (i = 0; a->syslog && facilities[i].name != NULL; i++)
		if (facilities[i].facility == a->syslog_facility)
			return facilities[i].name;
	return "off";
}

static const char *
tri_string(enum tri t)
{
	return t == TRI_ON ? "on" : t == TRI_OFF ? "off" : "auto";
}

static void
print_value(FILE *fp, const struct account *a, enum dir d)
{
	char		 buf[32];
	const char	*s;
	size_t		 i;

	/* The system file's command may hold the password itself. */
	if (((d == D_PASSWORDEVAL && a->passwordeval != NULL) ||
	    (d == D_OAUTH_CLIENT_SECRET_EVAL &&
	    a->oauth_client_secret_eval != NULL)) && a->system &&
	    priv_restricted()) {
		fputs("<set, in the system file>", fp);
		return;
	}
	switch (dirs[d].type) {
	case V_PORT:
	case V_SECONDS:
		fprintf(fp, "%d", *(const int *)field(a, d));
		return;
	case V_BOOL:
		fputs(*(const int *)field(a, d) ? "on" : "off", fp);
		return;
	case V_TLSVER:
		fputs(a->tls_min == 13 ? "1.3" : "1.2", fp);
		return;
	case V_TRI:
	case V_AUTO_OFF:
		fputs(tri_string(*(const enum tri *)field(a, d)), fp);
		return;
	case V_DURATION:
		fputs(duration_string(a->queue_max_age, buf, sizeof(buf)), fp);
		return;
	case V_BYTES:
		fputs(bytes_string(*(const long long *)field(a, d), buf,
		    sizeof(buf)), fp);
		return;
	case V_SYSLOG:
		fputs(syslog_string(a), fp);
		return;
	case V_SECRET:
		fputs(*(char *const *)field(a, d) != NULL ? "<set>" :
		    "<not set>", fp);
		return;
	case V_FINGERPRINT:
		if (!a->has_fingerprint)
			fputs("<not set>", fp);
		for (i = 0; a->has_fingerprint && i < 32; i++)
			fprintf(fp, "%s%02X", i > 0 ? ":" : "",
			    a->fingerprint[i]);
		return;
	default:
		break;
	}
	s = *(char *const *)field(a, d);
	if (s == NULL)
		s = dirs[d].type == V_TRUST ? "system" :
		    dirs[d].type == V_CACHE || dirs[d].type == V_AUTH ? "off" :
		    "<not set>";
	fputs(s, fp);
}

void
config_print(FILE *fp, const struct account *a)
{
	int	 d;

	fprintf(fp, "account %s (%s)\n", a->name != NULL ? a->name : "",
	    a->source != NULL ? a->source : "");
	for (d = 0; d < D_COUNT; d++) {
		/* No preset in use: the line would only be noise. */
		if (d == D_RELAYHOST ||
		    (d == D_PROVIDER && a->provider == NULL) ||
		    (d >= D_OAUTH_GRANT && d <= D_OAUTH_TOKEN_STORE &&
		    !oauth_enabled(a)))
			continue;
		fprintf(fp, "%s ", names[d]);
		print_value(fp, a, d);
		fputc('\n', fp);
	}
}

void
account_free(struct account *a)
{
	int	 d;

	if (a == NULL)
		return;
	for (d = 0; d < D_COUNT; d++) {
		switch (dirs[d].type) {
		case V_TEXT: case V_SECRET: case V_NAME: case V_FILE:
		case V_TRUST: case V_AUTH: case V_FROM: case V_DSN_NOTIFY:
		case V_DSN_RETURN: case V_CACHE: case V_LOGFILE: case V_OAUTH:
			secret_free(*str_field(a, d));
			break;
		default:
			break;
		}
	}
	free(a->name);
	free(a->source);
	free(a->provider);
	explicit_bzero(a, sizeof(*a));
}

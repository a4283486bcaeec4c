/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for config.c: the grammar, every error message, account
 * choice, the environment, defaults, the permission rule and the
 * password sources.  HOME and XDG_* point into a temporary directory
 * and SMARTHOST_SYSCONF / SMARTHOST_MAILNAME_FILE at fixtures or
 * nothing, so the machine's own files never matter.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "smarthost.h"
#include "unit.h"

static char	 tmp[128];	/* the test directory */
static char	 home[160];	/* $HOME inside it */
static char	 conf[200];	/* the -C file most tests write */
static char	 hostname[256];

/* A path inside the test directory (a few rotating buffers). */
static const char *
tpath(const char *name)
{
	static char	 buf[8][256];
	static int	 i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmp, name);
	return buf[i];
}

/* Replace @F (conf), @H (home), @T (tmp) and @N (hostname) in tmpl. */
static const char *
expand(const char *tmpl)
{
	static char	 buf[4][4096];
	static int	 i;
	const char	*add;
	size_t		 n = 0;

	i = (i + 1) % 4;
	for (; *tmpl != '\0' && n < sizeof(buf[i]) - 300; tmpl++) {
		add = NULL;
		if (tmpl[0] == '@' && tmpl[1] == 'F')
			add = conf;
		else if (tmpl[0] == '@' && tmpl[1] == 'H')
			add = home;
		else if (tmpl[0] == '@' && tmpl[1] == 'T')
			add = tmp;
		else if (tmpl[0] == '@' && tmpl[1] == 'N')
			add = hostname;
		if (add != NULL) {
			n += (size_t)snprintf(buf[i] + n, sizeof(buf[i]) - n,
			    "%s", add);
			tmpl++;
		} else
			buf[i][n++] = *tmpl;
	}
	buf[i][n] = '\0';
	return buf[i];
}

static void
put_bytes(const char *path, mode_t mode, const char *text, size_t len)
{
	int	 fd;

	unlink(path);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    write(fd, text, len) != (ssize_t)len) {
		perror(path);
		exit(1);
	}
	close(fd);
	chmod(path, mode);
}

static void
put(const char *path, mode_t mode, const char *text)
{
	put_bytes(path, mode, text, strlen(text));
}

/* A clean environment for every test. */
static void
reset_env(void)
{
	const char *const	*d;
	char			 var[64];
	size_t			 i;
	static const char *const extra[] = { "SMARTHOST_RELAY",
	    "SMARTHOST_PASSWORD", "SMARTHOST_PASSWORD_FILE",
	    "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME",
	    "CREDENTIALS_DIRECTORY", NULL };

	for (d = config_directives(); *d != NULL; d++) {
		snprintf(var, sizeof(var), "SMARTHOST_%s", *d);
		for (i = 0; var[i] != '\0'; i++)
			if (var[i] >= 'a' && var[i] <= 'z')
				var[i] = (char)(var[i] - 'a' + 'A');
		unsetenv(var);
	}
	for (i = 0; extra[i] != NULL; i++)
		unsetenv(extra[i]);
	setenv("HOME", home, 1);
	setenv("SMARTHOST_SYSCONF", "/nonexistent/smarthost.conf", 1);
	setenv("SMARTHOST_MAILNAME_FILE", "/nonexistent/mailname", 1);
}

static void
cl_init(struct cmdline *cl)
{
	memset(cl, 0, sizeof(*cl));
	cl->conffile = conf;
}

/* Write the -C file and resolve the account. */
static int
load(const char *text, struct cmdline *cl, struct account *a,
    struct error *e)
{
	put(conf, 0600, text);
	memset(e, 0, sizeof(*e));
	return config_account(cl, a, e);
}

static int
load1(const char *text, struct account *a, struct error *e)
{
	struct cmdline	 cl;

	cl_init(&cl);
	return load(text, &cl, a, e);
}

/* A configuration that must fail with exactly this code and message. */
static void
expect_error(const char *text, int code, const char *msg, const char *name)
{
	struct account	 a;
	struct error	 e;
	char		 n[256];

	reset_env();
	snprintf(n, sizeof(n), "%s: fails", name);
	CHECK_INT(load1(text, &a, &e), -1, n);
	snprintf(n, sizeof(n), "%s: code", name);
	CHECK_INT(e.code, code, n);
	snprintf(n, sizeof(n), "%s: message", name);
	CHECK_STR(e.msg, expand(msg), n);
}

/* stderr captured into a file, for log_warn(). */
static int	 saved_stderr = -1;

static void
capture_start(void)
{
	int	 fd;

	fflush(stderr);
	saved_stderr = dup(2);
	fd = open(tpath("stderr"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 2);
	close(fd);
}

static const char *
capture_end(void)
{
	static char	 buf[4096];
	ssize_t		 n;
	int		 fd;

	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	fd = open(tpath("stderr"), O_RDONLY);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/*
 * The grammar.
 */
static void
test_grammar(void)
{
	struct account	 a;
	struct error	 e;

	reset_env();
	CHECK_INT(load1(
	    "# a comment\n"
	    "   # an indented comment\n"
	    "\n"
	    "defaults\n"
	    "tls_starttls off   # a comment after a value\n"
	    "account main\n"
	    "  host   \"mail.example.com\"  # quoted\n"
	    "user \"john \\\"jd\\\" doe\\\\x\"\n"
	    "from_full_name \"a # b\"\n"
	    "passwordeval echo \"x # y\" 'z'\n"
	    "tls_trust_file ~/ca.pem\n"
	    "aliases ~\n"
	    "dead_letter ~user/x\n"
	    "password abc#def\n"
	    "domain example.org\r\n", &a, &e), 0, "grammar: loads");
	CHECK_STR(a.name, "main", "grammar: account name");
	CHECK_STR(a.host, "mail.example.com", "grammar: quoted value");
	CHECK_STR(a.user, "john \"jd\" doe\\x", "grammar: \\\" and \\\\ "
	    "escapes");
	CHECK_STR(a.from_full_name, "a # b", "grammar: # inside quotes");
	CHECK_STR(a.passwordeval, "echo \"x # y\" 'z'",
	    "grammar: quotes inside an argument are kept");
	CHECK_STR(a.trust_file, expand("@H/ca.pem"), "grammar: ~/");
	CHECK_STR(a.aliases, home, "grammar: ~ alone");
	CHECK_STR(a.dead_letter, "~user/x", "grammar: ~user is literal");
	CHECK_STR(a.password, "abc#def", "grammar: # inside a word");
	CHECK_STR(a.domain, "example.org", "grammar: CRLF line end");
	CHECK_INT(a.starttls, 0, "grammar: defaults apply");
	account_free(&a);
}

static void
test_long_line(void)
{
	struct account	 a;
	struct error	 e;
	size_t		 n = 100 * 1000;
	char		*text;

	reset_env();
	text = calloc(1, n + 64);
	memcpy(text, "host h\npassword ", 16);
	memset(text + 16, 't', n);
	memcpy(text + 16 + n, "\nuser u\n", 9);
	CHECK_INT(load1(text, &a, &e), 0, "long line: loads");
	CHECK_INT(a.password != NULL ? strlen(a.password) : 0, n,
	    "long line: a 100 KB token is kept whole");
	CHECK_STR(a.user, "u", "long line: the next line is read");
	account_free(&a);
	free(text);
}

static void
test_inheritance(void)
{
	static const char text[] =
	    "defaults\n"
	    "port 2525\n"
	    "from d@example.com\n"
	    "account base\n"
	    "host base.example.com\n"
	    "tls_starttls off\n"
	    "account other\n"
	    "host other.example.com\n"
	    "user other\n"
	    "auth plain\n"
	    "account child : base, other\n"
	    "timeout 30\n"
	    "from\n"
	    "defaults\n"
	    "port 26\n"
	    "account late\n"
	    "host late.example.com\n"
	    "tls_starttls off\n"
	    "account late2 : late\n"
	    "tls_starttls\n";
	struct cmdline	 cl;
	struct account	 a;
	struct error	 e;

	reset_env();
	cl_init(&cl);
	cl.account = "child";
	CHECK_INT(load(text, &cl, &a, &e), 0, "inherit: loads");
	CHECK_STR(a.host, "other.example.com",
	    "inherit: the later parent wins");
	CHECK_INT(a.starttls, 0, "inherit: from the first parent");
	CHECK_STR(a.user, "other", "inherit: from the second parent");
	CHECK_STR(a.auth, "PLAIN", "inherit: auth upper-cased");
	CHECK_INT(a.port, 2525, "inherit: defaults of the time");
	CHECK_INT(a.timeout, 30, "inherit: own setting");
	CHECK_STR(a.from, NULL, "inherit: empty argument unsets");
	account_free(&a);

	cl.account = "base";
	CHECK_INT(load(text, &cl, &a, &e), 0, "inherit: base loads");
	CHECK_STR(a.user, NULL, "inherit: base has no user");
	CHECK_STR(a.auth, NULL, "inherit: no user, auth off");
	CHECK_STR(a.from, "d@example.com", "inherit: base gets defaults");
	account_free(&a);

	cl.account = "late";
	CHECK_INT(load(text, &cl, &a, &e), 0, "inherit: late loads");
	CHECK_INT(a.port, 26, "inherit: a later defaults section");
	account_free(&a);

	cl.account = "late2";
	CHECK_INT(load(text, &cl, &a, &e), 0, "inherit: late2 loads");
	CHECK_INT(a.starttls, 1, "inherit: empty boolean means on");
	CHECK_STR(a.host, "late.example.com", "inherit: one parent");
	account_free(&a);

	CHECK_INT(load1("host h\nport 1\n", &a, &e), 0, "implicit: loads");
	CHECK_STR(a.name, "default",
	    "implicit: lines before any account form 'default'");
	account_free(&a);
}

static void
test_values(void)
{
	struct account	 a;
	struct error	 e;
	static const unsigned char fp[32] = {
		0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
		0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
		0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
		0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xff };

	reset_env();
	CHECK_INT(load1(
	    "relayhost [smtp.example.com]:2587\n"
	    "tls_fingerprint 0123456789abcdef0123456789ABCDEF"
	    "0123456789abcdef0123456789abcdff\n"
	    "auth xoauth2\n"
	    "syslog LOG_LOCAL3\n"
	    "queue_max_age 90m\n"
	    "dsn_notify failure, delay\n"
	    "dsn_return headers\n"
	    "tls_min_version 1.3\n"
	    "tls_legacy_ciphers on\n"
	    "set_from_header on\n"
	    "set_date_header off\n"
	    "tls_session_cache off\n"
	    "queue off\n"
	    "logfile -\n", &a, &e), 0, "values: load");
	CHECK_STR(a.host, "smtp.example.com", "relayhost: host");
	CHECK_INT(a.port, 2587, "relayhost: port");
	CHECK_INT(a.has_fingerprint, 1, "fingerprint: set");
	CHECK(memcmp(a.fingerprint, fp, 32) == 0,
	    "fingerprint: bytes, without colons, any case");
	CHECK_STR(a.auth, "XOAUTH2", "auth: mechanism upper-cased");
	CHECK_INT(a.syslog, 1, "syslog: on");
	CHECK_INT(a.syslog_facility, LOG_LOCAL3, "syslog: facility");
	CHECK_INT(a.queue_max_age, 5400, "duration: 90m");
	CHECK_STR(a.dsn_notify, "FAILURE,DELAY", "dsn_notify: list");
	CHECK_STR(a.dsn_return, "HDRS", "dsn_return: headers");
	CHECK_INT(a.tls_min, 13, "tls_min_version 1.3");
	CHECK_INT(a.tls_legacy_ciphers, 1, "tls_legacy_ciphers on");
	CHECK_INT(a.set_from_header, TRI_ON, "set_from_header on");
	CHECK_INT(a.set_date_header, TRI_OFF, "set_date_header off");
	CHECK_INT(a.set_msgid_header, TRI_AUTO, "set_msgid_header auto");
	CHECK_STR(a.session_cache, NULL, "tls_session_cache off");
	CHECK_INT(a.queue, 0, "queue off");
	CHECK_STR(a.logfile, "-", "logfile -");
	account_free(&a);

	CHECK_INT(load1("relayhost smtp.example.com\n"
	    "tls_fingerprint AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:"
	    "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89\n"
	    "queue_max_age 2h\n", &a, &e), 0, "values: load 2");
	CHECK_STR(a.host, "smtp.example.com", "relayhost: no brackets");
	CHECK_INT(a.port, 587, "relayhost: no port, default port");
	CHECK_INT(a.fingerprint[31], 0x89, "fingerprint: with colons");
	CHECK_INT(a.queue_max_age, 7200, "duration: 2h");
	account_free(&a);

	CHECK_INT(load1("host h\nqueue_max_age 7d\n", &a, &e), 0, "7d");
	CHECK_INT(a.queue_max_age, 7 * 86400, "duration: 7d");
	account_free(&a);
	CHECK_INT(load1("host h\nqueue_max_age 100\n", &a, &e), 0, "100");
	CHECK_INT(a.queue_max_age, 100, "duration: plain seconds");
	account_free(&a);
	CHECK_INT(load1("host h\nqueue_max_age 45s\nsyslog\n", &a, &e), 0,
	    "45s");
	CHECK_INT(a.queue_max_age, 45, "duration: 45s");
	CHECK_INT(a.syslog_facility, LOG_MAIL, "syslog: empty = LOG_MAIL");
	CHECK(a.max_message_size == 100LL * 1024 * 1024,
	    "max_message_size: 100M by default");
	account_free(&a);
	CHECK_INT(load1("host h\nmax_message_size 2G\n", &a, &e), 0, "2G");
	CHECK(a.max_message_size == 2LL * 1024 * 1024 * 1024,
	    "max_message_size: 2G");
	account_free(&a);
	CHECK_INT(load1("host h\nmax_message_size 0\n", &a, &e), 0, "0");
	CHECK(a.max_message_size == 0, "max_message_size: 0 is no limit");
	account_free(&a);
	CHECK_INT(load1("host h\nmax_message_size 512k\n", &a, &e), 0,
	    "512k");
	CHECK(a.max_message_size == 512 * 1024, "max_message_size: 512k");
	account_free(&a);
	expect_error("host h\nmax_message_size 12x\n", 78, "@F:2: invalid "
	    "value '12x' for max_message_size: use a number of octets with "
	    "an optional unit k, M or G (for example 100M), or 0 for no "
	    "limit", "max_message_size: a bad unit");
}

static void
test_from_substitution(void)
{
	struct account	 a;
	struct error	 e;
	struct passwd	*pw = getpwuid(getuid());
	char		 want[512];

	reset_env();
	put(tpath("mailname"), 0644, "example.org\nignored\n");
	setenv("SMARTHOST_MAILNAME_FILE", tpath("mailname"), 1);
	CHECK_INT(load1("host h\nfrom %U@%M\ndomain %H\n", &a, &e), 0,
	    "from %U@%M: loads");
	snprintf(want, sizeof(want), "%s@example.org", pw->pw_name);
	CHECK_STR(a.from, want, "from: %U and %M substituted");
	CHECK_STR(a.maildomain, "example.org",
	    "maildomain: first line of the mailname file");
	account_free(&a);

	CHECK_INT(load1("host h\nfrom cron@%H\n", &a, &e), 0, "from %H");
	snprintf(want, sizeof(want), "cron@%s", hostname);
	CHECK_STR(a.from, want, "from: %H is the host name");
	account_free(&a);

	expect_error("host h\nfrom %U@%M\n", 78, "@F:2: invalid value "
	    "'%U@%M' for from: %M needs /etc/mailname, which does not exist",
	    "from %M without a mailname");
}

/*
 * Every error message of the file grammar and the values.
 */
static void
test_value_errors(void)
{
	expect_error("host h\nhots x\n", 78,
	    "@F:2: unknown directive 'hots'", "unknown directive");
	expect_error("host h\nport 99999\n", 78, "@F:2: invalid value "
	    "'99999' for port: use a port number from 1 to 65535",
	    "bad port");
	expect_error("host h\ntls yes\n", 78,
	    "@F:2: invalid value 'yes' for tls: use on or off", "bad tls");
	expect_error("host h\ntls_min_version 1.1\n", 78, "@F:2: invalid "
	    "value '1.1' for tls_min_version: use 1.2 or 1.3",
	    "bad tls_min_version");
	expect_error("host h\ntimeout off\n", 78, "@F:2: invalid value 'off' "
	    "for timeout: use a number of seconds from 1 to 86400 (there is "
	    "no off: smarthost never waits forever)", "timeout off");
	expect_error("host h\ntimeout 0\n", 78, "@F:2: invalid value '0' "
	    "for timeout: use a number of seconds from 1 to 86400 (there is "
	    "no off: smarthost never waits forever)", "timeout 0");
	expect_error("host h\nauth pl ain\n", 78, "@F:2: invalid value "
	    "'pl ain' for auth: use on, off or a SASL mechanism such as "
	    "PLAIN, SCRAM-SHA-256 or XOAUTH2", "bad auth");
	expect_error("host h\ntls_fingerprint 12:34:56:78:9A:BC:DE:F0:12:34:"
	    "56:78:9A:BC:DE:F0:12:34:56:78\n", 78, "@F:2: invalid value "
	    "'12:34:56:78:9A:BC:DE:F0:12:34:56:78:9A:BC:DE:F0:12:34:56:78' "
	    "for tls_fingerprint: a SHA-256 fingerprint is required (32 "
	    "bytes in hex, AA:BB:...); print it with: openssl x509 -noout "
	    "-fingerprint -sha256 -in CERT.pem", "SHA-1 fingerprint");
	expect_error("host h\ntls_fingerprint xyz\n", 78, "@F:2: invalid "
	    "value 'xyz' for tls_fingerprint: a SHA-256 fingerprint is "
	    "required (32 bytes in hex, AA:BB:...); print it with: openssl "
	    "x509 -noout -fingerprint -sha256 -in CERT.pem",
	    "garbage fingerprint");
	expect_error("host h\nset_from_header sometimes\n", 78, "@F:2: "
	    "invalid value 'sometimes' for set_from_header: use auto, on or "
	    "off", "bad set_from_header");
	expect_error("host h\nset_date_header on\n", 78, "@F:2: invalid "
	    "value 'on' for set_date_header: use auto or off",
	    "bad set_date_header");
	expect_error("host h\nsyslog LOG_DAEMON\n", 78, "@F:2: invalid "
	    "value 'LOG_DAEMON' for syslog: use on, off, LOG_MAIL, LOG_USER "
	    "or LOG_LOCAL0 to LOG_LOCAL7", "bad syslog");
	expect_error("host h\nqueue_max_age 5w\n", 78, "@F:2: invalid value "
	    "'5w' for queue_max_age: use a positive number with an optional "
	    "unit s, m, h or d (for example 5d)", "bad duration");
	expect_error("host h\ndsn_notify sometimes\n", 78, "@F:2: invalid "
	    "value 'sometimes' for dsn_notify: use never or a "
	    "comma-separated list of success, delay and failure",
	    "bad dsn_notify");
	expect_error("host h\ndsn_return body\n", 78, "@F:2: invalid value "
	    "'body' for dsn_return: use hdrs or full", "bad dsn_return");
	expect_error("relayhost [a]:x\n", 78, "@F:1: invalid value '[a]:x' "
	    "for relayhost: use HOST, [HOST] or [HOST]:PORT",
	    "bad relayhost");
	expect_error("host a b\n", 78, "@F:1: invalid value 'a b' for host: "
	    "use a name without blanks", "host with a blank");
	expect_error("host h\nuser \"abc\n", 78, "@F:2: missing closing "
	    "quote", "missing quote");
	expect_error("host h\nuser \"abc\" def\n", 78, "@F:2: text after the "
	    "closing quote (quote the whole argument)", "text after quote");
	expect_error("host a\rb\n", 78, "@F:1: the value for host contains "
	    "a CR or LF character", "CR in a value");
}

static void
test_structure_errors(void)
{
	struct account	 a;
	struct error	 e;
	char		*big;
	size_t		 i, n;

	reset_env();
	put_bytes(conf, 0600, "host h\nuser a\0b\n", 16);
	memset(&e, 0, sizeof(e));
	{
		struct cmdline	 cl;

		cl_init(&cl);
		CHECK_INT(config_account(&cl, &a, &e), -1, "NUL: fails");
	}
	CHECK_INT(e.code, 78, "NUL: code");
	CHECK_STR(e.msg, expand("@F:2: the line contains a NUL byte"),
	    "NUL: message");

	expect_error("account\n", 78, "@F:1: account needs a name (account "
	    "NAME [: PARENT,...])", "account without a name");
	expect_error("account a,b\n", 78, "@F:1: account name 'a,b' must not "
	    "contain a comma", "account name with a comma");
	expect_error("account a\nhost h\naccount a\n", 78, "@F:3: account 'a' "
	    "is already defined in this file", "duplicate account");
	expect_error("account b : a\n", 78, "@F:1: account 'a' must be "
	    "defined before account 'b' can inherit from it",
	    "undefined parent");
	expect_error("account b :\n", 78, "@F:1: no parent account after ':' "
	    "(account NAME : PARENT[,PARENT...])", "empty parent list");
	expect_error("defaults x\n", 78, "@F:1: defaults takes no argument",
	    "defaults with an argument");

	n = 1001 * 16;
	big = calloc(1, n + 1);
	for (i = 0; i < 1001; i++)
		snprintf(big + strlen(big), n + 1 - strlen(big),
		    "account a%zu\n", i);
	expect_error(big, 78, "@F:1001: more than 1000 accounts",
	    "too many accounts");
	free(big);

	n = 1024 * 1024 + 10;
	big = malloc(n + 1);
	memset(big, '#', n);
	big[n] = '\0';
	expect_error(big, 78, "@F is larger than 1 MiB: refusing to read it",
	    "file too large");
	free(big);
}

static void
test_unsupported(void)
{
	struct account	 a;
	struct error	 e;
	int		 rc;
	const char	*out;

	reset_env();
	capture_start();
	rc = load1("host h\ntls_crl_file /x\nprotocol smtp\n"
	    "set_to_header on\n", &a, &e);
	out = capture_end();
	CHECK_INT(rc, 0, "unsupported msmtp directives: accepted");
	CHECK_STR(out, expand(
	    "smarthost: warning: @F:2: directive 'tls_crl_file' is not "
	    "supported by smarthost and is ignored\n"
	    "smarthost: warning: @F:3: directive 'protocol' is not supported "
	    "by smarthost and is ignored\n"
	    "smarthost: warning: @F:4: directive 'set_to_header' is not "
	    "supported by smarthost and is ignored\n"),
	    "unsupported msmtp directives: one warning each, with file:line");
	account_free(&a);
}

/*
 * Files: system and user, -C, the permission rule.
 */
static void
test_files(void)
{
	struct cmdline	 cl;
	struct account	 a;
	struct error	 e;

	reset_env();
	memset(&cl, 0, sizeof(cl));
	setenv("SMARTHOST_SYSCONF", "tests/config/system.conf", 1);
	put(expand("@H/.config/smarthost/config"), 0600,
	    "account default\nhost user.example.com\n"
	    "account mine\nhost mine.example.com\n");
	CHECK_INT(config_account(&cl, &a, &e), 0, "files: system + user");
	CHECK_STR(a.host, "user.example.com", "files: the user file wins");
	CHECK_INT(a.port, 2465, "files: the system account is extended");
	CHECK_STR(a.user, "system", "files: system user kept");
	CHECK_STR(a.source, expand("@H/.config/smarthost/config"),
	    "files: source is the later file");
	account_free(&a);

	cl.from = "x@backup.example.com";
	CHECK_INT(config_account(&cl, &a, &e), 0, "files: -f system");
	CHECK_STR(a.name, "backup", "files: -f matches a system account");
	CHECK_STR(a.source, "tests/config/system.conf",
	    "files: source is the system file");
	account_free(&a);
	cl.from = NULL;

	setenv("XDG_CONFIG_HOME", tpath("xdg"), 1);
	mkdir(tpath("xdg"), 0700);
	mkdir(tpath("xdg/smarthost"), 0700);
	put(tpath("xdg/smarthost/config"), 0600, "host xdg.example.com\n");
	CHECK_INT(config_account(&cl, &a, &e), 0, "files: XDG_CONFIG_HOME");
	CHECK_STR(a.host, "xdg.example.com",
	    "files: $XDG_CONFIG_HOME/smarthost/config");
	account_free(&a);
	unlink(tpath("xdg/smarthost/config"));

	put(expand("@H/.smarthostrc"), 0600, "host rc.example.com\n");
	CHECK_INT(config_account(&cl, &a, &e), 0, "files: ~/.smarthostrc");
	CHECK_STR(a.host, "rc.example.com",
	    "files: ~/.smarthostrc when there is no XDG file");
	account_free(&a);
	unlink(expand("@H/.smarthostrc"));
	unlink(expand("@H/.config/smarthost/config"));

	cl.conffile = tpath("none");
	CHECK_INT(config_account(&cl, &a, &e), -1, "-C missing: fails");
	CHECK_INT(e.code, 78, "-C missing: code");
	CHECK_STR(e.msg, expand("cannot open @T/none: No such file or "
	    "directory"), "-C missing: message");
	cl.conffile = tmp;
	CHECK_INT(config_account(&cl, &a, &e), -1, "-C directory: fails");
	CHECK_STR(e.msg, expand("@T is not a regular file"),
	    "-C directory: message");
}

static void
test_permissions(void)
{
	struct cmdline	 cl;
	struct account	 a;
	struct error	 e;
	static const char pw[] = "host h\npassword secret\n";

	reset_env();
	cl_init(&cl);
	put(conf, 0604, pw);
	CHECK_INT(config_account(&cl, &a, &e), -1, "perm o+r: refused");
	CHECK_INT(e.code, 78, "perm o+r: code");
	CHECK_STR(e.msg, expand("@F holds a password and can be read by "
	    "every user: run chmod 600 @F"), "perm o+r: message");

	put(conf, 0640, pw);
	CHECK_INT(config_account(&cl, &a, &e), -1, "perm g+r user: refused");
	CHECK_STR(e.msg, expand("@F holds a password and can be read by its "
	    "group: run chmod 600 @F"), "perm g+r user: message");

	put(conf, 0644, "host h\npasswordeval echo x\n");
	CHECK_INT(config_account(&cl, &a, &e), 0,
	    "perm: no password, any mode");
	account_free(&a);

	put(conf, 0600, pw);
	CHECK_INT(config_account(&cl, &a, &e), 0, "perm 0600: accepted");
	CHECK_STR(a.password, "secret", "perm 0600: password read");
	account_free(&a);

	/* The system file may be root:smarthost 0640, never o+r. */
	memset(&cl, 0, sizeof(cl));
	put(tpath("sys.conf"), 0640, pw);
	setenv("SMARTHOST_SYSCONF", tpath("sys.conf"), 1);
	CHECK_INT(config_account(&cl, &a, &e), 0, "perm system 0640: ok");
	account_free(&a);
	chmod(tpath("sys.conf"), 0644);
	CHECK_INT(config_account(&cl, &a, &e), -1, "perm system o+r: refused");
	CHECK_STR(e.msg, expand("@T/sys.conf holds a password and can be "
	    "read by every user: run chmod 600 @T/sys.conf"),
	    "perm system o+r: message");

	if (geteuid() != 0) {
		printf("skip - perm owner: needs root to chown\n");
		return;
	}
	cl_init(&cl);
	put(conf, 0600, pw);
	if (chown(conf, 4242, 4242) == -1)
		perror("chown");
	CHECK_INT(config_account(&cl, &a, &e), -1, "perm owner: refused");
	CHECK_STR(e.msg, expand("@F belongs to uid 4242, not to you (uid 0): "
	    "a configuration file of yours must be your own"),
	    "perm owner: message");
	/* Without a password too: root with a user's HOME takes no relay. */
	put(conf, 0600, "account default\nhost evil.example\n");
	if (chown(conf, 4242, 4242) == -1)
		perror("chown");
	CHECK_INT(config_account(&cl, &a, &e), -1,
	    "perm owner, no password: refused");
}

/*
 * Account choice.
 */
static const char choice_conf[] =
    "account work\nhost w.example\nfrom john@work.example\n"
    "account lists\nhost l.example\nfrom *@lists.example\n"
    "account personal\nhost p.example\nfrom John@Home.example\n"
    "account work2\nhost w2.example\nfrom john@work.example\n"
    "account default\nhost d.example\n";

static const char *
chosen(const char *account, const char *from)
{
	static char	 name[1024];
	struct cmdline	 cl;
	struct account	 a;
	struct error	 e;

	cl_init(&cl);
	cl.account = account;
	cl.from = from;
	if (load(choice_conf, &cl, &a, &e) == -1) {
		snprintf(name, sizeof(name), "%s", e.msg);
		return name;
	}
	snprintf(name, sizeof(name), "%s", a.name);
	account_free(&a);
	return name;
}

static void
test_choice(void)
{
	struct account	 a;
	struct error	 e;

	reset_env();
	CHECK_STR(chosen(NULL, "john@work.example"), "work", "-f literal");
	CHECK_STR(chosen(NULL, "JOHN@Work.Example"), "work",
	    "-f case-insensitive");
	CHECK_STR(chosen(NULL, "john+cron@work.example"), "work",
	    "-f user+tag matches user");
	CHECK_STR(chosen(NULL, "<john@work.example>"), "work",
	    "-f in angle brackets");
	CHECK_STR(chosen(NULL, "Anyone@LISTS.example"), "lists",
	    "-f wildcard, case-insensitive");
	CHECK_STR(chosen(NULL, "john@home.example"), "personal",
	    "-f literal against mixed case from");
	CHECK_STR(chosen(NULL, "nobody@else.example"), "default",
	    "-f without a match: default");
	CHECK_STR(chosen(NULL, ""), "default", "-f <>: default");
	CHECK_STR(chosen("personal", "john@work.example"), "personal",
	    "-a wins over -f");
	CHECK_STR(chosen("work2", NULL), "work2", "-a");
	CHECK_STR(chosen("nope", NULL), expand("account nope not found in "
	    "@F"), "-a not found");

	CHECK_INT(load1("account solo\nhost s\n", &a, &e), 0, "only one");
	CHECK_STR(a.name, "solo", "the only account is used");
	account_free(&a);

	expect_error("account a\nhost a\naccount b\nhost b\n", 78,
	    "no account chosen: @F define 2 accounts and none is named "
	    "default: choose one with -a NAME, or name one default",
	    "two accounts, no default");

	setenv("SMARTHOST_RELAY", "smtps://env.example", 1);
	CHECK_INT(load1("account a\nhost a\naccount b\nhost b\n", &a, &e), 0,
	    "no default: environment");
	CHECK_STR(a.name, "environment", "no default: account environment");
	CHECK_STR(a.host, "env.example", "no default: host from the relay");
	account_free(&a);

	{
		struct cmdline	 cl;

		reset_env();
		memset(&cl, 0, sizeof(cl));
		cl.account = "nope";
		CHECK_INT(config_account(&cl, &a, &e), -1, "-a, no files");
		CHECK_STR(e.msg, expand("account nope not found: no "
		    "configuration file exists (looked for "
		    "/nonexistent/smarthost.conf, @H/.config/smarthost/config, "
		    "@H/.smarthostrc)"), "-a, no files: message");
		cl.account = NULL;
		CHECK_INT(config_account(&cl, &a, &e), -1, "no host: fails");
		CHECK_INT(e.code, 78, "no host: code");
		CHECK_STR(e.msg, expand("no relay host configured: set host in "
		    "@H/.config/smarthost/config or SMARTHOST_RELAY"),
		    "no host, no files: message");
	}
	expect_error("account a\nport 1\n", 78, "no relay host configured: "
	    "set host in @F or SMARTHOST_RELAY", "no host in the account");
	expect_error("host h\ntls_cert_file /c.pem\n", 78, "tls_cert_file is "
	    "set but tls_key_file is not: a client certificate needs both",
	    "cert without key");
	expect_error("host h\ntls_key_file /k.pem\n", 78, "tls_key_file is "
	    "set but tls_cert_file is not: a client certificate needs both",
	    "key without cert");
}

/*
 * The environment and the command line.
 */
static int
env_only(struct account *a, struct error *e)
{
	struct cmdline	 cl;

	memset(&cl, 0, sizeof(cl));
	memset(e, 0, sizeof(*e));
	return config_account(&cl, a, e);
}

static void
expect_env_error(const char *var, const char *val, const char *msg,
    const char *name)
{
	struct account	 a;
	struct error	 e;
	char		 n[256];

	reset_env();
	setenv(var, val, 1);
	snprintf(n, sizeof(n), "%s: fails", name);
	CHECK_INT(env_only(&a, &e), -1, n);
	snprintf(n, sizeof(n), "%s: code", name);
	CHECK_INT(e.code, 78, n);
	snprintf(n, sizeof(n), "%s: message", name);
	CHECK_STR(e.msg, msg, n);
}

static void
test_environment(void)
{
	struct account	 a;
	struct error	 e;

	reset_env();
	setenv("SMARTHOST_RELAY",
	    "smtps://user%40example.com@mail.example.com:2465", 1);
	setenv("SMARTHOST_PASSWORD", "envpw", 1);
	setenv("SMARTHOST_FROM", "me@example.com", 1);
	CHECK_INT(env_only(&a, &e), 0, "relay smtps: loads");
	CHECK_STR(a.name, "environment", "relay: account name");
	CHECK_STR(a.source, "environment", "relay: source");
	CHECK_STR(a.host, "mail.example.com", "relay: host");
	CHECK_INT(a.port, 2465, "relay: port");
	CHECK_INT(a.tls, 1, "relay smtps: tls");
	CHECK_INT(a.starttls, 0, "relay smtps: implicit TLS");
	CHECK_STR(a.user, "user@example.com", "relay: %40 decoded");
	CHECK_STR(a.auth, "on", "relay: user set, auth on");
	CHECK_STR(a.password, "envpw", "SMARTHOST_PASSWORD read");
	CHECK(getenv("SMARTHOST_PASSWORD") == NULL,
	    "SMARTHOST_PASSWORD removed from the environment");
	CHECK_STR(a.from, "me@example.com", "SMARTHOST_FROM");
	account_free(&a);

	reset_env();
	setenv("SMARTHOST_RELAY", "smtp://mail.example.com", 1);
	CHECK_INT(env_only(&a, &e), 0, "relay smtp: loads");
	CHECK_INT(a.port, 587, "relay smtp: port 587");
	CHECK_INT(a.starttls, 1, "relay smtp: STARTTLS");
	CHECK_STR(a.user, NULL, "relay without user");
	CHECK_STR(a.auth, NULL, "relay without user: auth off");
	account_free(&a);

	setenv("SMARTHOST_RELAY", "SMTPS://[::1]:1465/", 1);
	setenv("SMARTHOST_TLS_STARTTLS", "on", 1);
	setenv("SMARTHOST_PORT", "2000", 1);
	CHECK_INT(env_only(&a, &e), 0, "relay ipv6: loads");
	CHECK_STR(a.host, "::1", "relay: bracketed IPv6 host");
	CHECK_INT(a.port, 2000, "SMARTHOST_PORT beats the relay's port");
	CHECK_INT(a.starttls, 1, "SMARTHOST_TLS_STARTTLS beats the relay");
	account_free(&a);

	reset_env();
	setenv("SMARTHOST_RELAY", "smtps://h.example", 1);
	CHECK_INT(env_only(&a, &e), 0, "relay no port");
	CHECK_INT(a.port, 465, "relay smtps: port 465");
	account_free(&a);

	expect_env_error("SMARTHOST_RELAY", "http://h.example", "SMARTHOST_"
	    "RELAY: unknown scheme 'http': use smtps://USER@HOST[:PORT] "
	    "(implicit TLS) or smtp://USER@HOST[:PORT] (STARTTLS)",
	    "relay: bad scheme");
	expect_env_error("SMARTHOST_RELAY", "h.example", "SMARTHOST_"
	    "RELAY: unknown scheme '': use smtps://USER@HOST[:PORT] "
	    "(implicit TLS) or smtp://USER@HOST[:PORT] (STARTTLS)",
	    "relay: no scheme");
	expect_env_error("SMARTHOST_RELAY", "smtps://u:pw@h.example",
	    "SMARTHOST_RELAY: no password in the URL, please: put it in "
	    "SMARTHOST_PASSWORD or SMARTHOST_PASSWORD_FILE",
	    "relay: password in the URL");
	expect_env_error("SMARTHOST_RELAY", "smtps://u%4@h.example",
	    "SMARTHOST_RELAY: bad percent-encoding in the user name: write @ "
	    "as %40 and % as %25; CR, LF and NUL are not allowed",
	    "relay: bad percent-encoding");
	expect_env_error("SMARTHOST_RELAY", "smtps://u%0d%0aRCPT@h.example",
	    "SMARTHOST_RELAY: bad percent-encoding in the user name: write @ "
	    "as %40 and % as %25; CR, LF and NUL are not allowed",
	    "relay: encoded CRLF");
	expect_env_error("SMARTHOST_RELAY", "smtps://u@h.example:99999",
	    "SMARTHOST_RELAY: invalid host or port: use "
	    "smtps://USER@HOST[:PORT] (implicit TLS) or "
	    "smtp://USER@HOST[:PORT] (STARTTLS)", "relay: bad port");
	expect_env_error("SMARTHOST_RELAY", "smtps://h\r\n.example",
	    "SMARTHOST_RELAY: the value contains a CR or LF character",
	    "relay: CR LF");
	expect_env_error("SMARTHOST_TLS", "maybe", "SMARTHOST_TLS: invalid "
	    "value 'maybe' for tls: use on or off", "env: bad value");
	expect_env_error("SMARTHOST_FROM", "a@b\nRCPT TO:<x>",
	    "SMARTHOST_FROM: the value for from contains a CR or LF "
	    "character", "env: LF in a value");

	reset_env();
	setenv("SMARTHOST_HOST", "h.example", 1);
	setenv("SMARTHOST_TLS", "off", 1);
	CHECK_INT(env_only(&a, &e), 0, "SMARTHOST_HOST alone");
	CHECK_INT(a.port, 25, "tls off: port 25");
	account_free(&a);
}

static void
expect_over_error(const char *name, const char *value, const char *msg,
    const char *test)
{
	struct cmdline	 cl;
	struct override	 o = { name, value };
	struct account	 a;
	struct error	 e;
	char		 n[256];

	reset_env();
	cl_init(&cl);
	cl.over = &o;
	cl.nover = 1;
	snprintf(n, sizeof(n), "%s: fails", test);
	CHECK_INT(load("host h\n", &cl, &a, &e), -1, n);
	snprintf(n, sizeof(n), "%s: code 64", test);
	CHECK_INT(e.code, 64, n);
	snprintf(n, sizeof(n), "%s: message", test);
	CHECK_STR(e.msg, msg, n);
}

static void
test_precedence(void)
{
	struct cmdline	 cl;
	struct override	 o[3] = { { "port", "3000" },
	    { "tls_starttls", "off" }, { "logfile", "/tmp/a.log" } };
	struct account	 a;
	struct error	 e;
	static const char text[] = "host file.example\nport 1000\n"
	    "user fileuser\n";

	reset_env();
	cl_init(&cl);
	CHECK_INT(load(text, &cl, &a, &e), 0, "precedence: file");
	CHECK_INT(a.port, 1000, "precedence: file alone");
	account_free(&a);
	setenv("SMARTHOST_PORT", "2000", 1);
	setenv("SMARTHOST_USER", "envuser", 1);
	CHECK_INT(load(text, &cl, &a, &e), 0, "precedence: env");
	CHECK_INT(a.port, 2000, "precedence: env beats file");
	CHECK_STR(a.user, "envuser", "precedence: SMARTHOST_USER");
	CHECK_STR(a.host, "file.example", "precedence: file kept");
	account_free(&a);
	cl.over = o;
	cl.nover = 3;
	cl.logfile = "/tmp/x.log";
	CHECK_INT(load(text, &cl, &a, &e), 0, "precedence: command line");
	CHECK_INT(a.port, 3000, "precedence: command line beats env");
	CHECK_INT(a.starttls, 0, "precedence: --tls-starttls=off");
	CHECK_STR(a.logfile, "/tmp/x.log", "precedence: -X after --logfile");
	CHECK_INT(a.syslog, 0, "syslog off with a logfile");
	account_free(&a);

	expect_over_error("password", "x", "there is no --password: every "
	    "user can read the command line; use --passwordeval=COMMAND, a "
	    "password file (SMARTHOST_PASSWORD_FILE) or a chmod 600 "
	    "configuration file", "--password");
	expect_over_error("bogus_thing", "x", "unknown option --bogus-thing",
	    "unknown override");
	expect_over_error("tls_starttls", "maybe", "--tls-starttls: invalid "
	    "value 'maybe' for tls_starttls: use on or off", "bad override");
	expect_over_error("from", "a@b\r\nDATA", "--from: the value for from "
	    "contains a CR or LF character", "CRLF override");
}

/*
 * password and passwordeval are one setting across the layers: the
 * higher layer's source wins whichever kind it is.
 */
static void
test_password_layers(void)
{
	struct cmdline	 cl;
	struct override	 eval = { "passwordeval", "echo cmdline-pw" };
	struct account	 a;
	struct cred	 cr;
	struct error	 e;
	static const char filepw[] = "host h\nuser u\npassword file-pw\n";
	static const char fileeval[] = "host h\nuser u\n"
	    "passwordeval \"echo file-eval\"\n";

	reset_env();
	cl_init(&cl);
	cl.over = &eval;
	cl.nover = 1;
	CHECK_INT(load(filepw, &cl, &a, &e), 0,
	    "--passwordeval over a file's password: loads");
	CHECK(a.password == NULL, "--passwordeval cancels the file's password");
	CHECK_STR(a.passwordeval, "echo cmdline-pw",
	    "--passwordeval over a file's password: the command");
	CHECK_INT(secret_get(&a, &cr, &e), 0,
	    "--passwordeval over a file's password: runs");
	CHECK_STR(cr.password, "cmdline-pw",
	    "--passwordeval over a file's password: its output is used");
	secret_clear(&cr);
	account_free(&a);

	/* The command line beats the environment's password too. */
	setenv("SMARTHOST_PASSWORD", "env-pw", 1);
	CHECK_INT(load(filepw, &cl, &a, &e), 0,
	    "--passwordeval over SMARTHOST_PASSWORD: loads");
	CHECK(a.password == NULL && a.passwordeval != NULL,
	    "--passwordeval cancels SMARTHOST_PASSWORD");
	account_free(&a);

	/* The other way round: a higher password cancels a lower eval. */
	reset_env();
	setenv("SMARTHOST_PASSWORD", "env-pw", 1);
	CHECK_INT(load1(fileeval, &a, &e), 0,
	    "SMARTHOST_PASSWORD over a file's passwordeval: loads");
	CHECK_STR(a.password, "env-pw",
	    "SMARTHOST_PASSWORD over a file's passwordeval: the password");
	CHECK(a.passwordeval == NULL,
	    "SMARTHOST_PASSWORD cancels the file's passwordeval");
	account_free(&a);
	reset_env();
	setenv("SMARTHOST_PASSWORDEVAL", "echo env-eval", 1);
	CHECK_INT(load1(filepw, &a, &e), 0,
	    "SMARTHOST_PASSWORDEVAL over a file's password: loads");
	CHECK(a.password == NULL && a.passwordeval != NULL &&
	    strcmp(a.passwordeval, "echo env-eval") == 0,
	    "SMARTHOST_PASSWORDEVAL cancels the file's password");
	account_free(&a);

	/* A later file over an earlier one: ~/.config over the system. */
	reset_env();
	put(tpath("sys.conf"), 0600, filepw);
	setenv("SMARTHOST_SYSCONF", tpath("sys.conf"), 1);
	put(tpath("home/.config/smarthost/config"), 0600, fileeval);
	CHECK_INT(env_only(&a, &e), 0, "user file over system file: loads");
	CHECK(a.password == NULL && a.passwordeval != NULL &&
	    strcmp(a.passwordeval, "echo file-eval") == 0,
	    "the user file's passwordeval cancels the system file's password");
	account_free(&a);
	unlink(tpath("home/.config/smarthost/config"));
	unlink(tpath("sys.conf"));

	/* Within one layer nothing changes: the password still wins. */
	reset_env();
	CHECK_INT(load1("host h\nuser u\npassword p\npasswordeval \"echo "
	    "e\"\n", &a, &e), 0, "both in one account: loads");
	CHECK_STR(a.password, "p", "both in one account: the password kept");
	account_free(&a);
}

/*
 * A misspelt SMARTHOST_ variable: one warning each, naming the nearest
 * known name; the program's own variables and the directives are quiet,
 * and loading the configuration never warns (sendmail.c warns once).
 */
static void
test_env_warning(void)
{
	struct account	 a;
	struct error	 e;
	const char	*out;

	reset_env();
	setenv("SMARTHOST_RELAY", "smtps://u@h.example", 1);
	setenv("SMARTHOST_PASSWORD_FILE", "/nonexistent", 1);
	setenv("SMARTHOST_FROM", "me@example.org", 1);
	setenv("SMARTHOST_TLS_TRUST_FILE", "/etc/ssl/certs/x.pem", 1);
	capture_start();
	config_env_warn();
	out = capture_end();
	CHECK_STR(out, "", "env: known variables are quiet (SYSCONF, "
	    "MAILNAME_FILE, RELAY, PASSWORD_FILE, directives)");

	setenv("SMARTHOST_HOTS", "h.example", 1);
	setenv("SMARTHOST_tls_starttls", "off", 1);
	setenv("SMARTHOST_WHATEVER", "secret-value", 1);
	capture_start();
	config_env_warn();
	out = capture_end();
	CHECK(strstr(out, "smarthost: warning: SMARTHOST_HOTS is not a "
	    "variable smarthost knows and is ignored: did you mean "
	    "SMARTHOST_HOST?\n") != NULL, "env: a typo names the nearest");
	CHECK(strstr(out, "SMARTHOST_tls_starttls is not a variable smarthost "
	    "knows and is ignored: did you mean SMARTHOST_TLS_STARTTLS?") !=
	    NULL, "env: lower case names the upper-case variable");
	CHECK(strstr(out, "SMARTHOST_WHATEVER is not a variable smarthost "
	    "knows and is ignored: it reads SMARTHOST_RELAY, "
	    "SMARTHOST_PASSWORD, SMARTHOST_PASSWORD_FILE and SMARTHOST_ with "
	    "any directive") != NULL, "env: no near name lists the known");
	CHECK(strstr(out, "secret-value") == NULL, "env: values never shown");
	CHECK(strstr(out, "SMARTHOST_RELAY is") == NULL &&
	    strstr(out, "SMARTHOST_SYSCONF is") == NULL,
	    "env: no warning for the known ones among them");

	capture_start();
	CHECK_INT(env_only(&a, &e), 0, "env with typos: loads");
	out = capture_end();
	CHECK_STR(out, "", "env: config_account itself does not warn again");
	CHECK_STR(a.host, "h.example", "env: the typo changed nothing");
	account_free(&a);
	unsetenv("SMARTHOST_HOTS");
	unsetenv("SMARTHOST_tls_starttls");
	unsetenv("SMARTHOST_WHATEVER");
}

/*
 * Defaults.
 */
static void
queue_dir_as(uid_t uid, char *out, size_t size)
{
	struct account	 a;
	struct error	 e;
	int		 fds[2];
	pid_t		 pid;
	ssize_t		 n;

	if (pipe(fds) == -1 || (pid = fork()) == -1)
		return;
	if (pid == 0) {
		close(fds[0]);
		if (setresgid(65534, 65534, 65534) == -1 ||
		    setresuid(uid, uid, uid) == -1 || env_only(&a, &e) == -1)
			_exit(1);
		n = write(fds[1], a.queue_dir, strlen(a.queue_dir));
		_exit(n > 0 ? 0 : 1);
	}
	close(fds[1]);
	n = read(fds[0], out, size - 1);
	out[n > 0 ? n : 0] = '\0';
	close(fds[0]);
	waitpid(pid, NULL, 0);
}

static void
test_defaults(void)
{
	struct account	 a;
	struct error	 e;
	char		 buf[512];

	reset_env();
	CHECK_INT(load1("host h\n", &a, &e), 0, "defaults: load");
	CHECK_INT(a.port, 587, "default port: 587 with STARTTLS");
	CHECK_INT(a.tls, 1, "default tls on");
	CHECK_INT(a.starttls, 1, "default tls_starttls on");
	CHECK_INT(a.tls_min, 12, "default tls_min_version 1.2");
	CHECK_INT(a.tls_legacy_ciphers, 0, "default tls_legacy_ciphers off");
	CHECK_INT(a.certcheck, 1, "default tls_certcheck on");
	CHECK_STR(a.trust_file, NULL, "default tls_trust_file system");
	CHECK_INT(a.has_fingerprint, 0, "default no fingerprint");
	CHECK_INT(a.timeout, 60, "default timeout 60");
	CHECK_STR(a.domain, hostname, "default domain: gethostname");
	CHECK_STR(a.auth, NULL, "default auth: off without user");
	CHECK_INT(a.allow_from_override, 1, "default allow_from_override");
	CHECK_INT(a.rewrite_local_senders, 1, "default rewrite_local_senders");
	CHECK_INT(a.set_from_header, TRI_AUTO, "default set_from_header");
	CHECK_INT(a.set_date_header, TRI_AUTO, "default set_date_header");
	CHECK_INT(a.set_msgid_header, TRI_AUTO, "default set_msgid_header");
	CHECK_INT(a.remove_bcc_headers, 1, "default remove_bcc_headers");
	CHECK_STR(a.maildomain, NULL, "default maildomain: no mailname");
	CHECK_INT(a.queue, 1, "default queue on");
	CHECK_INT(a.queue_max_age, 5 * 86400, "default queue_max_age 5d");
	CHECK_STR(a.dead_letter, expand("@H/dead.letter"),
	    "default dead_letter");
	CHECK_STR(a.session_cache, expand("@H/.cache/smarthost/tls-sessions"),
	    "default tls_session_cache");
	CHECK_STR(a.queue_dir, geteuid() == 0 ? "/var/spool/smarthost" :
	    expand("@H/.local/state/smarthost/queue"),
	    "default queue_dir for this user");
	CHECK_INT(a.syslog, geteuid() == 0, "default syslog: on for root");
	CHECK_INT(a.syslog_facility, geteuid() == 0 ? LOG_MAIL : 0,
	    "default syslog facility");
	account_free(&a);

	CHECK_INT(load1("host h\ntls_starttls off\n", &a, &e), 0, "465");
	CHECK_INT(a.port, 465, "default port: 465 with implicit TLS");
	account_free(&a);
	CHECK_INT(load1("host h\ntls off\n", &a, &e), 0, "25");
	CHECK_INT(a.port, 25, "default port: 25 with tls off");
	account_free(&a);

	setenv("XDG_CACHE_HOME", tpath("cache"), 1);
	setenv("XDG_STATE_HOME", tpath("state"), 1);
	CHECK_INT(load1("host h\nuser u\n", &a, &e), 0, "XDG: load");
	CHECK_STR(a.session_cache, expand("@T/cache/smarthost/tls-sessions"),
	    "tls_session_cache under XDG_CACHE_HOME");
	CHECK_STR(a.auth, "on", "auth on when user is set");
	account_free(&a);

	/* queue_dir of a user who is not root, whoever runs the test. */
	reset_env();
	setenv("SMARTHOST_HOST", "h.example", 1);
	setenv("XDG_STATE_HOME", "/state", 1);
	if (geteuid() == 0) {
		queue_dir_as(65534, buf, sizeof(buf));
		CHECK_STR(buf, "/state/smarthost/queue",
		    "queue_dir for a user: $XDG_STATE_HOME/smarthost/queue");
		unsetenv("XDG_STATE_HOME");
		queue_dir_as(65534, buf, sizeof(buf));
		CHECK_STR(buf, expand("@H/.local/state/smarthost/queue"),
		    "queue_dir for a user: ~/.local/state/smarthost/queue");
	} else {
		CHECK_INT(env_only(&a, &e), 0, "queue_dir: load");
		CHECK_STR(a.queue_dir, "/state/smarthost/queue",
		    "queue_dir for a user: $XDG_STATE_HOME/smarthost/queue");
		account_free(&a);
	}
}

/*
 * An ~/.msmtprc read unchanged.
 */
static void
test_msmtprc(void)
{
	struct cmdline	 cl;
	struct account	 a;
	struct error	 e;

	reset_env();
	memset(&cl, 0, sizeof(cl));
	cl.conffile = "tests/config/msmtprc";
	CHECK_INT(config_account(&cl, &a, &e), 0, "msmtprc: default");
	CHECK_STR(a.name, "default", "msmtprc: account default");
	CHECK_STR(a.host, "smtp.gmail.com", "msmtprc: host inherited");
	CHECK_INT(a.port, 587, "msmtprc: port");
	CHECK_INT(a.tls, 1, "msmtprc: tls");
	CHECK_INT(a.starttls, 1, "msmtprc: tls_starttls default");
	CHECK_STR(a.trust_file, "/etc/ssl/certs/ca-certificates.crt",
	    "msmtprc: tls_trust_file");
	CHECK_STR(a.auth, "on", "msmtprc: auth");
	CHECK_STR(a.user, "username", "msmtprc: user");
	CHECK_STR(a.from, "username@gmail.com", "msmtprc: from");
	CHECK_STR(a.passwordeval, "gpg --quiet --for-your-eyes-only --no-tty "
	    "--decrypt ~/.msmtp-gmail.gpg", "msmtprc: quoted passwordeval");
	CHECK_STR(a.logfile, expand("@H/.msmtp.log"), "msmtprc: logfile ~");
	CHECK_STR(a.aliases, "/etc/aliases", "msmtprc: aliases");
	account_free(&a);

	cl.from = "joe_smith@freemail.example";
	CHECK_INT(config_account(&cl, &a, &e), 0, "msmtprc: -f");
	CHECK_STR(a.name, "freemail", "msmtprc: -f picks freemail");
	CHECK_INT(a.port, 465, "msmtprc: freemail port");
	CHECK_INT(a.starttls, 0, "msmtprc: freemail implicit TLS");
	CHECK_STR(a.passwordeval, "pass show \"mail/freemail\"",
	    "msmtprc: unquoted passwordeval keeps its quotes");
	account_free(&a);

	cl.from = NULL;
	cl.account = "freemail2";
	CHECK_INT(config_account(&cl, &a, &e), 0, "msmtprc: -a freemail2");
	CHECK_STR(a.user, "joe.smith", "msmtprc: inherited user");
	CHECK_STR(a.from, "joe@freemail.example", "msmtprc: own from");
	account_free(&a);
}

/*
 * --pretend output and the directive list.
 */
static void
test_print(void)
{
	struct cmdline	 cl;
	struct account	 a;
	struct error	 e;
	char		*out = NULL;
	size_t		 len = 0;
	FILE		*fp;

	reset_env();
	cl_init(&cl);
	cl.account = "main";
	CHECK_INT(load("account main\nhost mail.example.com\n"
	    "tls_starttls off\nuser u@example.com\npassword pw\n"
	    "tls_fingerprint 000102030405060708090a0b0c0d0e0f"
	    "101112131415161718191a1b1c1d1e1f\n"
	    "logfile /var/log/smarthost.log\n"
	    "tls_session_cache off\nqueue_dir /q\n", &cl, &a, &e), 0,
	    "print: load");
	fp = open_memstream(&out, &len);
	config_print(fp, &a);
	fclose(fp);
	CHECK_STR(out, expand(
	    "account main (@F)\n"
	    "host mail.example.com\n"
	    "port 465\n"
	    "tls on\n"
	    "tls_starttls off\n"
	    "tls_trust_file system\n"
	    "tls_fingerprint 00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:"
	    "10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D:1E:1F\n"
	    "tls_cert_file <not set>\n"
	    "tls_key_file <not set>\n"
	    "tls_host_override <not set>\n"
	    "tls_min_version 1.2\n"
	    "tls_legacy_ciphers off\n"
	    "tls_certcheck on\n"
	    "tls_session_cache off\n"
	    "timeout 60\n"
	    "domain @N\n"
	    "source_ip <not set>\n"
	    "auth on\n"
	    "user u@example.com\n"
	    "password <set>\n"
	    "passwordeval <not set>\n"
	    "from <not set>\n"
	    "allow_from_override on\n"
	    "rewrite_local_senders on\n"
	    "from_full_name <not set>\n"
	    "set_from_header auto\n"
	    "set_date_header auto\n"
	    "set_msgid_header auto\n"
	    "remove_bcc_headers on\n"
	    "aliases <not set>\n"
	    "maildomain <not set>\n"
	    "local_recipient <not set>\n"
	    "notify on\n"
	    "notify_to <not set>\n"
	    "dsn_notify <not set>\n"
	    "dsn_return <not set>\n"
	    "queue on\n"
	    "queue_dir /q\n"
	    "queue_max_age 5d\n"
	    "max_message_size 100M\n"
	    "dead_letter @H/dead.letter\n"
	    "logfile /var/log/smarthost.log\n"
	    "syslog off\n"), "config_print: every directive in table order");
	CHECK(strstr(out, "pw\n") == NULL, "config_print: no password");
	free(out);
	account_free(&a);
}

static void
test_directives(void)
{
	const char *const	*d = config_directives();
	size_t			 n;

	for (n = 0; d[n] != NULL; n++)
		;
	CHECK_INT(n, 56, "config_directives: 56 names (12 oauth_*)");
	CHECK_STR(d[0], "host", "config_directives: table order");
	CHECK_STR(d[n - 1], "syslog", "config_directives: last");
	CHECK_INT(config_is_directive("tls_starttls"), 1,
	    "config_is_directive: tls_starttls");
	CHECK_INT(config_is_directive("relayhost"), 1,
	    "config_is_directive: relayhost");
	CHECK_INT(config_is_directive("tls-starttls"), 0,
	    "config_is_directive: '-' spelling is not a name");
	CHECK_INT(config_is_directive("provider"), 1,
	    "config_is_directive: provider");
	CHECK_INT(config_is_directive("tls_crl_file"), 0,
	    "config_is_directive: unsupported msmtp directive");
}

/*
 * Password sources.
 */
static void
mk_account(struct account *a, const char *auth, const char *user,
    const char *eval)
{
	memset(a, 0, sizeof(*a));
	a->host = xstrdup("mail.example.com");
	a->auth = auth != NULL ? xstrdup(auth) : NULL;
	a->user = user != NULL ? xstrdup(user) : NULL;
	a->passwordeval = eval != NULL ? xstrdup(eval) : NULL;
	a->timeout = 5;
}

static const char *
password_of(const char *auth, const char *user, const char *eval)
{
	static char	 buf[1100];
	struct account	 a;
	struct cred	 cr;
	struct error	 e;

	mk_account(&a, auth, user, eval);
	memset(&e, 0, sizeof(e));
	if (secret_get(&a, &cr, &e) == -1)
		snprintf(buf, sizeof(buf), "error %d: %s", e.code, e.msg);
	else
		snprintf(buf, sizeof(buf), "%s", cr.password != NULL ?
		    cr.password : "(none)");
	secret_clear(&cr);
	account_free(&a);
	return buf;
}

static void
test_passwordeval(void)
{
	struct account	 a;
	struct cred	 cr;
	struct error	 e;
	struct timespec	 t0, t1;
	int		 rc, fds[2], saved;

	reset_env();
	CHECK_STR(password_of("on", "u", "printf 'sec ret\\r\\nsecond\\n'"),
	    "sec ret", "passwordeval: first line, no line end");
	CHECK_STR(password_of("on", "u", "printf nonl"), "nonl",
	    "passwordeval: output without a newline");
	CHECK_STR(password_of("on", "u", "echo err >&2; exit 3"),
	    "error 78: passwordeval command exited with status 3",
	    "passwordeval: exit status");
	CHECK_STR(password_of("on", "u", "true"), "error 78: passwordeval "
	    "command printed no password: it must print the password on its "
	    "first line", "passwordeval: empty output");
	CHECK_STR(password_of("on", "u", "kill -9 $$"), "error 78: "
	    "passwordeval command was killed by signal 9",
	    "passwordeval: killed");
	/* Our stdin holds the message: the command must not see it. */
	if (pipe(fds) == -1 || write(fds[1], "leak\n", 5) != 5)
		perror("pipe");
	close(fds[1]);
	saved = dup(0);
	dup2(fds[0], 0);
	close(fds[0]);
	CHECK_STR(password_of("on", "u", "read x; echo got$x"), "got",
	    "passwordeval: stdin is /dev/null, not the message");
	dup2(saved, 0);
	close(saved);
	CHECK_STR(password_of("on", "u", "head -c 200000 /dev/zero | tr "
	    "'\\0' a; echo"), "error 78: passwordeval command printed more "
	    "than 64 KiB without a line end", "passwordeval: bounded read");

	/* No secret in the command's environment. */
	setenv("SMARTHOST_PASSWORD", "topsecret", 1);
	CHECK_INT(load1("host h\n", &a, &e), 0, "env password: load");
	account_free(&a);
	CHECK_STR(password_of("on", "u", "echo ${SMARTHOST_PASSWORD-none}"),
	    "none", "passwordeval: SMARTHOST_PASSWORD not inherited");

	mk_account(&a, "on", "u", "sleep 5");
	a.timeout = 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = secret_get(&a, &cr, &e);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK_INT(rc, -1, "passwordeval timeout: fails");
	CHECK_STR(e.msg, "passwordeval command did not finish within 1 "
	    "seconds and was killed (the timeout directive sets the limit)",
	    "passwordeval timeout: message");
	CHECK(t1.tv_sec - t0.tv_sec < 3, "passwordeval timeout: killed in "
	    "time");
	account_free(&a);

	CHECK_STR(password_of(NULL, "u", "exit 1"), "(none)",
	    "auth off: no password looked for");
	CHECK_STR(password_of("EXTERNAL", "u", "exit 1"), "(none)",
	    "auth EXTERNAL: no password looked for");
	mk_account(&a, "on", "u", "exit 1");
	a.password = xstrdup("given");
	CHECK_INT(secret_get(&a, &cr, &e), 0, "password given: no command");
	CHECK_STR(cr.password, "given", "password given: it is the one");
	CHECK(a.password == NULL, "password given: moved out of the account");
	secret_clear(&cr);
	CHECK(cr.password == NULL, "credentials: cleared");
	account_free(&a);
}

static void
test_password_files(void)
{
	const char	*out;

	reset_env();
	mkdir(tpath("creds"), 0700);
	put(tpath("creds/smarthost-password"), 0600, "credpw\nsecond\n");
	put(tpath("pwfile"), 0600, "filepw\r\n");
	put(tpath("empty"), 0600, "");
	put(expand("@H/.netrc"), 0600, "machine mail.example.com login u "
	    "password netrcpw\n");

	setenv("CREDENTIALS_DIRECTORY", tpath("creds"), 1);
	setenv("SMARTHOST_PASSWORD_FILE", tpath("pwfile"), 1);
	CHECK_STR(password_of("on", "u", "echo evalpw"), "evalpw",
	    "order: passwordeval first");
	CHECK_STR(password_of("on", "u", NULL), "credpw",
	    "order: credentials directory, first line");
	unsetenv("CREDENTIALS_DIRECTORY");
	CHECK_STR(password_of("on", "u", NULL), "filepw",
	    "order: SMARTHOST_PASSWORD_FILE, first line");
	setenv("SMARTHOST_PASSWORD_FILE", tpath("nofile"), 1);
	CHECK_STR(password_of("on", "u", NULL), expand("error 78: cannot "
	    "read @T/nofile (SMARTHOST_PASSWORD_FILE): No such file or "
	    "directory"), "SMARTHOST_PASSWORD_FILE missing");
	setenv("SMARTHOST_PASSWORD_FILE", tpath("empty"), 1);
	CHECK_STR(password_of("on", "u", NULL), expand("error 78: @T/empty "
	    "holds no password: it must be on the first line"),
	    "SMARTHOST_PASSWORD_FILE empty");
	unsetenv("SMARTHOST_PASSWORD_FILE");
	CHECK_STR(password_of("on", "u", NULL), "netrcpw", "order: ~/.netrc");
	setenv("CREDENTIALS_DIRECTORY", tpath("nocreds"), 1);
	CHECK_STR(password_of("on", "u", NULL), "netrcpw",
	    "credentials directory without the file: next source");

	reset_env();
	put(expand("@H/.netrc"), 0600,
	    "machine other.example login john password p1\n"
	    "macdef init\n"
	    "machine mail.example.com login john password frommacro\n"
	    "\n"
	    "machine MAIL.example.com login jane password p2\n"
	    "machine mail.example.com\n  login john\n  password \"p 3\"\n"
	    "default login john password p4\n");
	CHECK_STR(password_of("on", "john", NULL), "p 3",
	    "netrc: machine and login, macro skipped, quoted password");
	CHECK_STR(password_of("on", "jane", NULL), "p2",
	    "netrc: machine case-insensitive, login must match");
	CHECK_STR(password_of("on", "bob", NULL), "(none)",
	    "netrc: no entry for this login");
	CHECK_STR(password_of("PLAIN", NULL, NULL), "p2",
	    "netrc: no user, first entry for the host");
	put(expand("@H/.netrc"), 0600, "machine x login john password p1\n"
	    "default login john password p4\n");
	CHECK_STR(password_of("on", "john", NULL), "p4",
	    "netrc: default entry");

	chmod(expand("@H/.netrc"), 0644);
	capture_start();
	out = password_of("on", "john", NULL);
	CHECK_STR(out, "(none)", "netrc readable by others: ignored");
	CHECK_STR(capture_end(), expand("smarthost: warning: ignoring "
	    "@H/.netrc: it must be your own file and not readable by others "
	    "(run chmod 600 @H/.netrc)\n"), "netrc readable by others: "
	    "warning");
}

static void
cleanup(void)
{
	char	 cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmp);
}

int
main(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/unit_config.XXXXXX");
	if (mkdtemp(tmp) == NULL || chmod(tmp, 0755) == -1) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(home, sizeof(home), "%s/home", tmp);
	snprintf(conf, sizeof(conf), "%s/conf", tmp);
	mkdir(home, 0755);
	mkdir(tpath("home/.config"), 0755);
	mkdir(tpath("home/.config/smarthost"), 0755);
	gethostname(hostname, sizeof(hostname) - 1);

	test_grammar();
	test_long_line();
	test_inheritance();
	test_values();
	test_from_substitution();
	test_value_errors();
	test_structure_errors();
	test_unsupported();
	test_files();
	test_permissions();
	test_choice();
	test_environment();
	test_precedence();
	test_password_layers();
	test_env_warning();
	test_defaults();
	test_msmtprc();
	test_print();
	test_directives();
	test_passwordeval();
	test_password_files();
	cleanup();
	UNIT_DONE();
}

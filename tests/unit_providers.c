/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for providers.c (the preset table, the `provider'
 * directive through config_account, hints) and for setup.c's Postfix
 * importer (a guide's main.cf files under tests/setup/, exact output;
 * every imported configuration must also load with config_account).
 * HOME and the system file point into a temporary directory, so the
 * machine's own files never matter.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smarthost.h"
#include "unit.h"

static char	 tmp[128];
static char	 conf[200];

static void
put(const char *path, const char *text)
{
	int	 fd;
	size_t	 len = strlen(text);

	unlink(path);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    write(fd, text, len) != (ssize_t)len) {
		perror(path);
		exit(1);
	}
	close(fd);
}

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
	setenv("HOME", tmp, 1);
	setenv("SMARTHOST_SYSCONF", "/nonexistent/smarthost.conf", 1);
	setenv("SMARTHOST_MAILNAME_FILE", "/nonexistent/mailname", 1);
}

/* Load text as the -C file; 0 or -1 as config_account returns. */
static int
load(const char *text, struct account *a, struct error *e)
{
	struct cmdline	 cl;

	reset_env();
	put(conf, text);
	memset(&cl, 0, sizeof(cl));
	cl.conffile = conf;
	memset(e, 0, sizeof(*e));
	return config_account(&cl, a, e);
}

struct row {
	const char	*name;		/* as written in the file */
	const char	*canonical;
	const char	*host;
	int		 port;
	int		 starttls;
};

/* Every row of the table, as providers.c claims it. */
static const struct row rows[] = {
	{ "gmx", "gmx", "mail.gmx.net", 587, 1 },
	{ "gmx.de", "gmx", "mail.gmx.net", 587, 1 },
	{ "web.de", "web.de", "smtp.web.de", 587, 1 },
	{ "posteo", "posteo", "posteo.de", 465, 0 },
	{ "strato", "strato", "smtp.strato.de", 465, 0 },
	{ "ionos", "ionos", "smtp.ionos.de", 587, 1 },
	{ "1und1", "ionos", "smtp.ionos.de", 587, 1 },
	{ "aol", "aol", "smtp.aol.com", 465, 0 },
	{ "gmail", "gmail", "smtp.gmail.com", 465, 0 },
	{ "googlemail", "gmail", "smtp.gmail.com", 465, 0 },
	{ "google-relay", "google-relay", "smtp-relay.gmail.com", 587, 1 },
	{ "google-workspace", "google-relay", "smtp-relay.gmail.com", 587, 1 },
	{ "outlook", "outlook", "smtp-mail.outlook.com", 587, 1 },
	{ "hotmail", "outlook", "smtp-mail.outlook.com", 587, 1 },
	{ "office365", "office365", "smtp.office365.com", 587, 1 },
	{ "icloud", "icloud", "smtp.mail.me.com", 587, 1 },
	{ "yahoo", "yahoo", "smtp.mail.yahoo.com", 465, 0 },
	{ "fastmail", "fastmail", "smtp.fastmail.com", 465, 0 },
	{ "mailbox.org", "mailbox.org", "smtp.mailbox.org", 465, 0 },
	{ "zoho", "zoho", "smtp.zoho.com", 465, 0 },
	{ "zoho-eu", "zoho-eu", "smtp.zoho.eu", 465, 0 },
	{ "ses-eu-west-1", "ses-eu-west-1",
	    "email-smtp.eu-west-1.amazonaws.com", 465, 0 },
	{ "ses-us-gov-west-1", "ses-us-gov-west-1",
	    "email-smtp.us-gov-west-1.amazonaws.com", 465, 0 },
	{ "sendgrid", "sendgrid", "smtp.sendgrid.net", 465, 0 },
	{ "mailgun", "mailgun", "smtp.mailgun.org", 465, 0 },
	{ "mailgun-eu", "mailgun-eu", "smtp.eu.mailgun.org", 465, 0 },
	{ "postmark", "postmark", "smtp.postmarkapp.com", 587, 1 },
	{ "brevo", "brevo", "smtp-relay.brevo.com", 465, 0 },
	{ "sendinblue", "brevo", "smtp-relay.brevo.com", 465, 0 },
	{ "mailjet", "mailjet", "in-v3.mailjet.com", 587, 1 },
	{ "smtp2go", "smtp2go", "mail.smtp2go.com", 465, 0 },
	{ "resend", "resend", "smtp.resend.com", 465, 0 },
	{ "ovh", "ovh", "ssl0.ovh.net", 465, 0 },
	{ "t-online", "t-online", "securesmtp.t-online.de", 465, 0 },
	{ "GMAIL", "gmail", "smtp.gmail.com", 465, 0 },
};

static void
test_rows(void)
{
	struct account	 a;
	struct error	 e;
	char		 text[256], name[128];
	size_t		 i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		snprintf(text, sizeof(text), "provider %s\nuser u@example."
		    "org\npassword pw\n", rows[i].name);
		snprintf(name, sizeof(name), "row %s", rows[i].name);
		if (load(text, &a, &e) == -1) {
			printf("# %s\n", e.msg);
			CHECK(0, name);
			continue;
		}
		CHECK(a.provider != NULL &&
		    strcmp(a.provider, rows[i].canonical) == 0 &&
		    a.host != NULL && strcmp(a.host, rows[i].host) == 0 &&
		    a.port == rows[i].port && a.starttls == rows[i].starttls &&
		    a.tls == 1, name);
		account_free(&a);
	}
}

/* A preset fills only what the account leaves unset, in any order. */
static void
test_precedence(void)
{
	struct account	 a;
	struct error	 e;

	CHECK_INT(load("port 2587\nprovider gmx\nuser u@gmx.de\n", &a, &e),
	    0, "own port before provider: loads");
	CHECK_INT(a.port, 2587, "own port before provider: kept");
	CHECK_STR(a.host, "mail.gmx.net", "own port: host from the preset");
	account_free(&a);
	CHECK_INT(load("provider gmx\nport 2587\ntls_starttls off\n", &a,
	    &e), 0, "own port after provider: loads");
	CHECK_INT(a.port, 2587, "own port after provider: kept");
	CHECK_INT(a.starttls, 0, "own tls_starttls off: kept");
	account_free(&a);
	CHECK_INT(load("provider gmail\nrelayhost [relay.example]\n", &a,
	    &e), 0, "relayhost with provider: loads");
	CHECK_STR(a.host, "relay.example", "relayhost wins over the preset");
	CHECK_INT(a.port, 465, "relayhost without port: port from TLS mode");
	account_free(&a);
	reset_env();
	setenv("SMARTHOST_PROVIDER", "posteo", 1);
	put(conf, "host own.example\n");
	{
		struct cmdline	 cl;

		memset(&cl, 0, sizeof(cl));
		cl.conffile = conf;
		CHECK_INT(config_account(&cl, &a, &e), 0,
		    "SMARTHOST_PROVIDER: loads");
	}
	CHECK_STR(a.host, "own.example", "SMARTHOST_PROVIDER: file host wins");
	CHECK_INT(a.port, 465, "SMARTHOST_PROVIDER: port from the preset");
	CHECK_STR(a.provider, "posteo", "SMARTHOST_PROVIDER: named");
	account_free(&a);
}

/* GMX and WEB.DE take only the login as sender. */
static void
test_sender_rule(void)
{
	struct account	 a;
	struct error	 e;

	CHECK_INT(load("provider web.de\nuser max@web.de\n", &a, &e), 0,
	    "sender rule: loads");
	CHECK_STR(a.from, "max@web.de", "sender rule: from = user");
	CHECK_INT(a.allow_from_override, 0, "sender rule: -f ignored");
	CHECK_INT(a.set_from_header, TRI_ON, "sender rule: From replaced");
	CHECK_STR(a.auth, "on", "sender rule: auth on");
	account_free(&a);
	CHECK_INT(load("provider gmx\nuser 12345678\nfrom me@gmx.de\n"
	    "allow_from_override on\n", &a, &e), 0,
	    "sender rule, customer number: loads");
	CHECK_STR(a.from, "me@gmx.de", "sender rule: own from kept");
	CHECK_INT(a.allow_from_override, 1, "sender rule: own override kept");
	account_free(&a);
	CHECK_INT(load("provider gmx\nuser 12345678\n", &a, &e), 0,
	    "sender rule, login not an address: loads");
	CHECK(a.from == NULL, "sender rule: no from from a customer number");
	account_free(&a);
	CHECK_INT(load("provider gmail\nuser x@gmail.com\n", &a, &e), 0,
	    "no sender rule: loads");
	CHECK(a.from == NULL && a.allow_from_override == 1 &&
	    a.set_from_header == TRI_AUTO, "gmail: no sender rule");
	account_free(&a);
	CHECK_INT(load("provider sendgrid\n", &a, &e), 0, "sendgrid: loads");
	CHECK_STR(a.user, "apikey", "sendgrid: user apikey");
	CHECK_STR(a.auth, "on", "sendgrid: auth on for the preset user");
	account_free(&a);
	CHECK_INT(load("provider resend\n", &a, &e), 0, "resend: loads");
	CHECK_STR(a.user, "resend", "resend: user is literally resend");
	CHECK_STR(a.auth, "on", "resend: auth on for the preset user");
	account_free(&a);
	CHECK_INT(load("provider mailjet\n", &a, &e), 0, "mailjet: loads");
	CHECK(a.user == NULL && a.auth == NULL,
	    "mailjet: no fixed user (it is the account's API key)");
	account_free(&a);
	/* The Workspace relay may know this machine by its IP address. */
	CHECK_INT(load("provider google-relay\n", &a, &e), 0,
	    "google-relay without user: loads");
	CHECK(a.user == NULL && a.auth == NULL,
	    "google-relay without user: no login (IP-authenticated)");
	account_free(&a);
	CHECK_INT(load("provider google-relay\nuser me@example.org\n", &a,
	    &e), 0, "google-relay with user: loads");
	CHECK_STR(a.auth, "on", "google-relay with user: auth on");
	CHECK(a.from == NULL, "google-relay: no sender rule");
	account_free(&a);
	CHECK_INT(load("provider 1und1\nuser k@example.de\n", &a, &e), 0,
	    "ionos: loads");
	CHECK_STR(a.auth, "PLAIN", "ionos: mechanism from the preset");
	account_free(&a);
	CHECK_INT(load("provider 1und1\nuser k@example.de\nauth LOGIN\n", &a,
	    &e), 0, "ionos, own auth: loads");
	CHECK_STR(a.auth, "LOGIN", "ionos: own mechanism kept");
	account_free(&a);
	CHECK_INT(load("provider ionos\n", &a, &e), 0,
	    "ionos without user: loads");
	CHECK(a.auth == NULL, "ionos without user: no auth");
	account_free(&a);
}

static void
test_errors(void)
{
	struct account	 a;
	struct error	 e;
	char		 want[1024];

	CHECK_INT(load("provider nosuch\n", &a, &e), -1, "unknown: fails");
	CHECK_INT(e.code, 78, "unknown: exit 78");
	snprintf(want, sizeof(want), "%s:1: unknown provider 'nosuch': known "
	    "providers are gmx, web.de, posteo, ionos, strato, arcor, aol, "
	    "gmail, google-relay, outlook, office365, icloud, yahoo, "
	    "fastmail, mailbox.org, zoho, zoho-eu, ses-REGION, sendgrid, "
	    "mailgun, mailgun-eu, postmark, brevo, mailjet, smtp2go, resend, "
	    "ovh, t-online (smarthost --providers shows them)", conf);
	CHECK_STR(e.msg, want, "unknown: message lists the names");
	CHECK_INT(load("provider arcor\n", &a, &e), -1, "arcor: fails");
	CHECK(strstr(e.msg, ":1: provider arcor: discontinued: Arcor's mail "
	    "service ended") != NULL && e.code == 78,
	    "arcor: the error says it was discontinued");
	CHECK(strstr(e.msg, "no preset for it") != NULL,
	    "arcor: the error says there is no preset");
	CHECK_INT(load("provider ses-eu-west-x\n", &a, &e), -1,
	    "ses garbage: fails");
	snprintf(want, sizeof(want), "%s:1: provider 'ses-eu-west-x': ses- "
	    "must be followed by an AWS region such as eu-west-1 or "
	    "us-east-1", conf);
	CHECK_STR(e.msg, want, "ses garbage: message");
	CHECK_INT(load("provider ses-\n", &a, &e), -1, "ses empty: fails");
	CHECK_INT(load("provider ses-EU-WEST-1\n", &a, &e), -1,
	    "ses upper case: fails");
	CHECK_INT(load("provider ses-eu-west-1; rm -rf\n", &a, &e), -1,
	    "ses blank: fails");
	CHECK_INT(load("provider ses-eu-1\n", &a, &e), -1,
	    "ses without a word: fails");
	CHECK_INT(load("provider ses-ap-southeast-2\n", &a, &e), 0,
	    "ses ap-southeast-2: loads");
	account_free(&a);
}

static void
test_lookups(void)
{
	struct preset	 p;
	struct error	 e;

	CHECK_INT(provider_for_address("a@gmx.net", &p, &e), 1,
	    "domain gmx.net found");
	CHECK_STR(p.name, "gmx", "domain gmx.net: gmx");
	CHECK_INT(provider_for_address("a@GoogleMail.com", &p, &e), 1,
	    "domain GoogleMail.com found");
	CHECK_STR(p.name, "gmail", "domain googlemail.com: gmail");
	CHECK_INT(provider_for_address("a@me.com", &p, &e), 1, "me.com");
	CHECK_STR(p.host, "smtp.mail.me.com", "me.com: icloud host");
	CHECK_INT(provider_for_address("a@example.org", &p, &e), 0,
	    "unknown domain: 0");
	CHECK_INT(provider_for_address("a@web.dex", &p, &e), 0,
	    "no suffix match");
	CHECK_INT(provider_for_address("a@arcor.de", &p, &e), -1,
	    "arcor.de: closed");
	CHECK_STR(provider_hint("web.de", "535 Authentification failed, or "
	    "POP3 logon too old"), "WEB.DE: enable \"POP3/IMAP Abruf\" under "
	    "Settings in the WEB.DE web mail: until then it refuses mail from "
	    "external programs", "hint web.de");
	CHECK(provider_hint("gmail", "534-5.7.9 Application-specific "
	    "password required. Learn more") != NULL &&
	    strstr(provider_hint("gmail", "534-5.7.9 Application-specific "
	    "password required."), "myaccount.google.com/apppasswords") !=
	    NULL, "hint gmail app password");
	CHECK(provider_hint("office365", "535 5.7.139 Authentication "
	    "unsuccessful, SmtpClientAuthentication is disabled for the "
	    "Tenant") != NULL, "hint office365");
	/* Microsoft 365 without basic authentication (MC786329). */
	CHECK(provider_hint("office365", "550 5.7.30 Basic authentication is "
	    "not supported for Client Submission.") != NULL &&
	    strstr(provider_hint("office365", "550 5.7.30 Basic "
	    "authentication is not supported for Client Submission."),
	    "OAuth2 in smarthost.conf(5)") != NULL,
	    "hint office365 5.7.30: points to OAuth2");
	CHECK(provider_hint("m365", "535 5.7.139 Authentication "
	    "unsuccessful, basic authentication is disabled.") != NULL &&
	    strstr(provider_hint("m365", "535 5.7.139 Authentication "
	    "unsuccessful, basic authentication is disabled."),
	    "OAuth2") != NULL, "hint office365 5.7.139 basic auth: OAuth2");
	CHECK(provider_hint("office365", "535 5.7.139 Authentication "
	    "unsuccessful, SmtpClientAuthentication is disabled for the "
	    "Tenant.") != NULL && strstr(provider_hint("office365", "535 "
	    "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is "
	    "disabled for the Tenant."), "SMTP AUTH is turned off") != NULL,
	    "hint office365 5.7.139 SMTP AUTH off: the tenant setting");
	CHECK(provider_hint("google-workspace", "550-5.7.1 Invalid credentials "
	    "for relay [192.0.2.1].") != NULL && strstr(provider_hint(
	    "google-workspace", "550-5.7.1 Invalid credentials for relay"),
	    "SMTP relay service") != NULL, "hint google-relay");
	CHECK(provider_hint("ses-eu-west-1", "554 Message rejected: Email "
	    "address is not verified.") != NULL, "hint ses by region");
	CHECK(provider_hint("gmail", "421 try later") == NULL,
	    "no hint for other text");
	CHECK(provider_hint(NULL, "x") == NULL, "no hint without provider");
}

static void
test_list(void)
{
	char	*buf = NULL;
	size_t	 len = 0;
	FILE	*fp = open_memstream(&buf, &len);

	providers_list(fp);
	fclose(fp);
	CHECK(strncmp(buf, "PROVIDER     HOST:PORT", 22) == 0,
	    "list: header");
	CHECK(strstr(buf, "\nposteo       posteo.de:465                      "
	    "implicit implicit TLS on 465") != NULL, "list: posteo row");
	CHECK(strstr(buf, "\narcor        -                                  "
	    "-        discontinued") != NULL,
	    "list: arcor shows no relay and says discontinued");
	CHECK(strstr(buf, "\nresend       smtp.resend.com:465") != NULL &&
	    strstr(buf, "source: https://resend.com/docs/send-with-smtp") !=
	    NULL, "list: resend row with its source");
	CHECK(strstr(buf, "email-smtp.REGION.amazonaws.com:465") != NULL,
	    "list: ses pattern");
	CHECK(strstr(buf, "source: https://docs.aws.amazon.com/ses/") != NULL,
	    "list: sources");
	free(buf);
}

/*
 * The importer: the guide's files, byte for byte against expected.conf,
 * and the output must load.
 */
static char *
slurp(const char *path)
{
	FILE	*fp = fopen(path, "r");
	char	*buf;
	long	 n;

	if (fp == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = calloc(1, (size_t)n + 1);
	if (fread(buf, 1, (size_t)n, fp) != (size_t)n)
		buf[0] = '\0';
	fclose(fp);
	return buf;
}

static void
test_import_one(const char *name, const char *host, int port)
{
	char		 dir[128], path[160], what[160], *got, *want;
	struct account	 a;
	struct error	 e;
	FILE		*fp;
	int		 rc;

	snprintf(dir, sizeof(dir), "tests/setup/%s", name);
	snprintf(path, sizeof(path), "%s/expected.conf", dir);
	fp = fopen(conf, "w");
	memset(&e, 0, sizeof(e));
	rc = setup_import_postfix(dir, fp, &e);
	fclose(fp);
	snprintf(what, sizeof(what), "import %s: succeeds", name);
	CHECK_INT(rc, 0, what);
	got = slurp(conf);
	want = slurp(path);
	snprintf(what, sizeof(what), "import %s: output as expected.conf",
	    name);
	CHECK(got != NULL && want != NULL && strcmp(got, want) == 0, what);
	if (got != NULL && want != NULL && strcmp(got, want) != 0)
		printf("# got:\n%s", got);
	snprintf(what, sizeof(what), "import %s: the output loads", name);
	CHECK_INT(load(got != NULL ? got : "", &a, &e), 0, what);
	snprintf(what, sizeof(what), "import %s: host and port", name);
	CHECK(a.host != NULL && strcmp(a.host, host) == 0 && a.port == port,
	    what);
	account_free(&a);
	free(got);
	free(want);
}

static void
test_import(void)
{
	struct error	 e;
	FILE		*fp;
	char		 want[512];

	test_import_one("gmx", "mail.gmx.net", 587);
	test_import_one("arcor", "mail.arcor.de", 25);
	test_import_one("1und1", "smtp.1und1.de", 25);
	test_import_one("posteo", "posteo.de", 587);
	test_import_one("gmail", "smtp.googlemail.com", 587);
	test_import_one("hard", "relay.example.net", 465);

	fp = fopen(conf, "w");
	CHECK_INT(setup_import_postfix("tests/setup/nosuch", fp, &e), -1,
	    "import: no main.cf fails");
	CHECK_INT(e.code, 66, "import: no main.cf is 66");
	CHECK_STR(e.msg, "cannot read tests/setup/nosuch/main.cf: No such "
	    "file or directory", "import: no main.cf message");
	snprintf(want, sizeof(want), "%s/main.cf", tmp);
	put(want, "myhostname = x.example\n");
	CHECK_INT(setup_import_postfix(tmp, fp, &e), -1,
	    "import: no relayhost fails");
	snprintf(want, sizeof(want), "%s/main.cf sets no relayhost: this "
	    "Postfix delivers mail itself instead of through a relay, so "
	    "there is nothing to import; set host in smarthost's "
	    "configuration by hand", tmp);
	CHECK_STR(e.msg, want, "import: no relayhost message");
	snprintf(want, sizeof(want), "%s/main.cf", tmp);
	put(want, "relayhost = [a.example]:587\nbroken line\n");
	CHECK_INT(setup_import_postfix(tmp, fp, &e), -1,
	    "import: bad line fails");
	snprintf(want, sizeof(want), "%s/main.cf:2: expected NAME = VALUE",
	    tmp);
	CHECK_STR(e.msg, want, "import: bad line names file and line");
	fclose(fp);
}

int
main(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/unit_providers.XXXXXX");
	if (mkdtemp(tmp) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(conf, sizeof(conf), "%s/conf", tmp);
	log_init("unit_providers");
	test_rows();
	test_precedence();
	test_sender_rule();
	test_errors();
	test_lookups();
	test_list();
	test_import();
	unlink(conf);
	snprintf(conf, sizeof(conf), "%s/main.cf", tmp);
	unlink(conf);
	rmdir(tmp);
	UNIT_DONE();
}

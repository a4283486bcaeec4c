/* SPDX-License-Identifier: ISC */
/*
 * Provider presets (SPEC section 6): the one table of what each mail
 * provider needs, from a German Postfix smarthost guide ("Guide" below)
 * and the providers' own documentation,
 * and the lookups on it: by name (the `provider' directive), by the
 * domain of an address (--configure) and by the text of a relay's reply
 * (the hint printed with an error).
 *
 * Rows marked "checked" had host, port and TLS mode confirmed against
 * the source page (or a page quoting it) when they were written; the
 * others follow the guide or common knowledge and say so.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

#include "smarthost.h"

#define NAME_MAX_LEN	48	/* of a provider name, ses-REGION included */
#define HINTS_MAX	3
#define SES_HOST	"email-smtp.%s.amazonaws.com"	/* %s: the region */

struct hint {
	const char	*match;	/* '|'-separated, case-insensitive */
	const char	*text;
};

struct provider {
	const char	*name;
	const char	*aliases;	/* blank-separated */
	const char	*domains;	/* mail domains it serves, blank-sep. */
	const char	*host;
	int		 port;
	int		 starttls;	/* 0 = implicit TLS */
	const char	*auth;		/* mechanism, NULL = strongest */
	int		 sender_login;	/* only the login is a valid sender */
	const char	*user;		/* fixed user name, or NULL */
	const char	*closed;	/* the service is gone: why */
	const char	*note;
	struct hint	 hints[HINTS_MAX];
	const char	*source;
};

#define APP_PASSWORD_HINT(who, where)					\
	who ": the relay refused the password; it wants an app password " \
	"(create one at " where ") instead of the account password"

static const struct provider providers[] = {
	/* Guide: mail.gmx.net:587, sender bound to the login; not checked. */
	{ "gmx", "gmx.de gmx.net", "gmx.de gmx.net gmx.at gmx.ch",
	    "mail.gmx.net", 587, 1, NULL, 1, NULL, NULL,
	    "sender must be the login; enable POP3/IMAP access first",
	    { { "authentication|credentials|POP3|logon",
		"GMX: enable \"POP3/IMAP Abruf\" (access by external "
		"programs) under Settings in the GMX web mail, and log in "
		"with the full e-mail address or the customer number" },
	      { "sender address|not allowed|not owned",
		"GMX accepts only the address you log in with as sender: "
		"set from to it (the gmx preset does when from is unset)" },
	      { NULL, NULL } },
	    "https://hilfe.gmx.net/pop-imap/imap/outlook.html" },
	/* Guide (error text, POP3/IMAP switch); host not checked. */
	{ "web.de", "webde", "web.de",
	    "smtp.web.de", 587, 1, NULL, 1, NULL, NULL,
	    "sender must be the login; enable POP3/IMAP access first",
	    { { "POP3 logon too old|Authentification failed|"
		"authentication failed",
		"WEB.DE: enable \"POP3/IMAP Abruf\" under Settings in the "
		"WEB.DE web mail: until then it refuses mail from external "
		"programs" },
	      { NULL, NULL }, { NULL, NULL } },
	    "https://hilfe.web.de/pop-imap/einschalten.html" },
	/*
	 * Checked: 465 with implicit TLS and 587 with STARTTLS (Delta Chat's
	 * provider database, checked 2026-01, quoting Posteo's help); an
	 * old Postfix guide's "465 refused" is no longer true.
	 */
	{ "posteo", NULL,
	    "posteo.de posteo.net posteo.at posteo.ch posteo.org posteo.eu",
	    "posteo.de", 465, 0, NULL, 0, NULL, NULL,
	    "implicit TLS on 465; STARTTLS on 587 works too",
	    { { NULL, NULL }, { NULL, NULL }, { NULL, NULL } },
	    "https://posteo.de/en/help/how-do-i-set-up-posteo-in-an-email-"
	    "client-pop3-imap-and-smtp" },
	/* Guide: smtp.1und1.de, only the plaintext mechanisms; the host is
	 * now smtp.ionos.de (not checked). */
	{ "ionos", "1und1 1and1 1&1", "",
	    "smtp.ionos.de", 587, 1, "PLAIN", 0, NULL, NULL,
	    "was smtp.1und1.de; PLAIN inside TLS (noplaintext must go)",
	    { { NULL, NULL }, { NULL, NULL }, { NULL, NULL } },
	    "https://www.ionos.de/hilfe/e-mail/grundlagen/serverinformation"
	    "en-fuer-imap-pop3-und-smtp/" },
	/*
	 * smtp.strato.de: 465 with implicit TLS (587 STARTTLS too), the
	 * login the full address; host and ports seen in STRATO's own
	 * Received lines and users' settings, not on the FAQ page itself.
	 */
	{ "strato", NULL, "",
	    "smtp.strato.de", 465, 0, NULL, 0, NULL, NULL,
	    "user is the full e-mail address of the mailbox",
	    { { NULL, NULL }, { NULL, NULL }, { NULL, NULL } },
	    "https://www.strato.com/faq/en_us/product/configuration-"
	    "possibilities-in-email-management/" },
	/*
	 * Discontinued: Vodafone took Arcor over in 2008 and dissolved it in
	 * 2011; the old relay postman.arcor-online.net was switched off in
	 * November 2005.  The row stays so that `provider arcor' and an
	 * arcor.de address at --configure say so instead of "unknown".
	 */
	{ "arcor", NULL, "arcor.de",
	    "mail.arcor.de", 25, 1, NULL, 0, NULL,
	    "discontinued: Arcor's mail service ended (Vodafone took Arcor "
	    "over in 2008 and dissolved it in 2011; its relay "
	    "postman.arcor-online.net was switched off in November 2005), so "
	    "there is no preset for it; arcor.de mailboxes that still exist "
	    "are Vodafone's: set host to the relay Vodafone names for them",
	    "discontinued: not a usable preset",
	    { { NULL, NULL }, { NULL, NULL }, { NULL, NULL } },
	    "https://dsl.preisvergleich.de/info/14578/arcor-umzug/" },
	/* Guide: other senders are filtered; host and port not checked. */
	{ "aol", NULL, "aol.com aol.de aim.com",
	    "smtp.aol.com", 465, 0, NULL, 1, NULL, NULL,
	    "sender must be the login; needs an app password",
	    { { "AUTH005|authentication|535",
		APP_PASSWORD_HINT("AOL", "the AOL account security page") },
	      { NULL, NULL }, { NULL, NULL } },
	    "https://help.aol.com/articles/how-do-i-use-other-email-"
	    "applications-to-send-and-receive-my-aol-mail" },
	/* Guide: smtp.googlemail.com:587; 465 implicit TLS is the same. */
	{ "gmail", "googlemail google", "gmail.com googlemail.com",
	    "smtp.gmail.com", 465, 0, NULL, 0, NULL, NULL,
	    "Gmail rewrites From to the login itself; needs an app password",
	    { { "Application-specific password required|"
		"Username and Password not accepted|BadCredentials",
		APP_PASSWORD_HINT("Gmail",
		    "https://myaccount.google.com/apppasswords, which needs "
		    "2-Step Verification") },
	      { NULL, NULL }, { NULL, NULL } },
	    "https://support.google.com/mail/answer/7126229" },
	/*
	 * Checked: Google Workspace's SMTP relay service, which an
	 * administrator turns on (Gmail, Routing, SMTP relay service); with
	 * TLS on 587 (465 works too), by the sending machine's IP address or
	 * by a login as a Workspace user.
	 */
	{ "google-relay", "google-workspace workspace gsuite smtp-relay", "",
	    "smtp-relay.gmail.com", 587, 1, NULL, 0, NULL, NULL,
	    "Workspace relay: IP-authenticated (no user) or a Workspace "
	    "login; sender in your domains",
	    { { "Invalid credentials for relay|Mail relay denied",
		"Google Workspace relay: register this machine's public "
		"IP address in the SMTP relay service setting (Admin "
		"console, Apps, Google Workspace, Gmail, Routing), or "
		"require SMTP authentication there and set user and "
		"password; the sender must be in one of your domains" },
	      { NULL, NULL }, { NULL, NULL } },
	    "https://support.google.com/a/answer/2956491" },
	/* Checked. */
	{ "outlook", "hotmail live outlook.com",
	    "outlook.com hotmail.com live.com msn.com outlook.de hotmail.de "
	    "live.de",
	    "smtp-mail.outlook.com", 587, 1, NULL, 0, NULL, NULL,
	    "no password login since 16 September 2024: OAuth2 built in "
	    "(--configure ADDRESS --oauth-client-id=ID)",
	    { { "5.7.139|5.7.30|basic authentication|BasicAuthBlocked",
		"Outlook.com no longer takes a password for SMTP: sign in "
		"with OAuth2: smarthost --configure ADDRESS "
		"--provider=outlook --oauth-client-id=ID (OAuth2 in "
		"smarthost.conf(5))" },
	      { NULL, NULL }, { NULL, NULL } },
	    "https://support.microsoft.com/en-us/office/pop-imap-and-smtp-"
	    "settings-for-outlook-com-d088b986-291d-42b8-9564-9c414e2aa040" },
	/*
	 * Checked.  Basic authentication (a password) for SMTP AUTH is off
	 * by default for existing tenants from the end of December 2026 and
	 * not offered to new tenants (message center MC786329, update of
	 * 2026-01-27); the replies are 535 5.7.139 and 550 5.7.30.
	 */
	{ "office365", "microsoft365 m365 exchange-online", "",
	    "smtp.office365.com", 587, 1, NULL, 0, NULL, NULL,
	    "password login is off by default from the end of 2026: use "
	    "OAuth2; SMTP AUTH must be enabled for the mailbox",
	    { { "SmtpClientAuthentication is disabled",
		"Microsoft 365: SMTP AUTH is turned off for this mailbox "
		"or the whole tenant; an administrator turns it on in the "
		"Microsoft 365 admin center (the user, Mail, Manage email "
		"apps, Authenticated SMTP), which OAuth2 needs too" },
	      { "5.7.30|Basic authentication is not supported|"
		"basic authentication is disabled|security defaults",
		"Microsoft 365 no longer takes a password for SMTP "
		"(basic authentication is off: by default for existing "
		"tenants from the end of December 2026, MC786329, always "
		"for new ones): sign in with OAuth2: smarthost --configure ADDRESS "
		"--provider=office365 --oauth-client-id=ID (see OAuth2 in "
		"smarthost.conf(5)), or have an administrator allow basic "
		"authentication again in the tenant's SMTP AUTH setting "
		"(Set-TransportConfig -SmtpClientAuthenticationDisabled "
		"$false) while Microsoft still offers it" },
	      { NULL, NULL } },
	    "https://learn.microsoft.com/en-us/exchange/clients-and-mobile-"
	    "in-exchange-online/authenticated-client-smtp-submission" },
	/* Checked: 587 STARTTLS, app-specific password. */
	{ "icloud", "apple", "icloud.com me.com mac.com",
	    "smtp.mail.me.com", 587, 1, NULL, 0, NULL, NULL,
	    "needs an app-specific password; user is the full address",
	    { { "authentication|535",
		APP_PASSWORD_HINT("iCloud", "https://account.apple.com") },
	      { NULL, NULL }, { NULL, NULL } },
	    "https://support.apple.com/en-us/102525" },
	/* Not checked. */
	{ "yahoo", "ymail", "yahoo.com yahoo.de yahoo.co.uk yahoo.fr "
	    "ymail.com rocketmail.com",
	    "smtp.mail.yahoo.com", 465, 0, NULL, 0, NULL, NULL,
	    "needs an app password",
	    { { "authentication|535",
		APP_PASSWORD_HINT("Yahoo", "the Yahoo account security "
		    "page") },
	      { NULL, NULL }, { NULL, NULL } },
	    "https://help.yahoo.com/kb/SLN4075.html" },
	/* Checked (465 implicit TLS, app passwords). */
	{ "fastmail", NULL, "fastmail.com fastmail.fm",
	    "smtp.fastmail.com", 465, 0, NULL, 0, NULL, NULL,
	    "needs an app password",
	    { { "authentication|535",
		APP_PASSWORD_HINT("Fastmail", "Settings, Privacy & "
		    "Security, App passwords") },
	      { NULL, NULL }, { NULL, NULL } },
	    "https://www.fastmail.help/hc/en-us/articles/1500000279921" },
	/* Checked. */
	{ "mailbox.org", "mailbox", "mailbox.org",
	    "smtp.mailbox.org", 465, 0, NULL, 0, NULL, NULL,
	    "with two-factor login, an application password",
	    { { NULL, NULL }, { NULL, NULL }, { NULL, NULL } },
	    "https://kb.mailbox.org/en/private/e-mail/e-mail-configuration" },
	/* Not checked. */
	{ "zoho", NULL, "zoho.com zohomail.com",
	    "smtp.zoho.com", 465, 0, NULL, 1, NULL, NULL,
	    "sender must be the login or an alias; EU accounts: zoho-eu",
	    { { "Relaying disallowed|Sender is not allowed",
		"Zoho accepts only your own address or an alias as sender" },
	      { NULL, NULL }, { NULL, NULL } },
	    "https://www.zoho.com/mail/help/zoho-smtp.html" },
	{ "zoho-eu", NULL, "zoho.eu",
	    "smtp.zoho.eu", 465, 0, NULL, 1, NULL, NULL,
	    "sender must be the login or an alias",
	    { { "Relaying disallowed|Sender is not allowed",
		"Zoho accepts only your own address or an alias as sender" },
	      { NULL, NULL }, { NULL, NULL } },
	    "https://www.zoho.com/mail/help/zoho-smtp.html" },
	/* Checked: STARTTLS 25/587/2587, TLS wrapper 465/2465. */
	{ "ses-REGION", NULL, "",
	    "email-smtp.REGION.amazonaws.com", 465, 0, NULL, 0, NULL, NULL,
	    "any AWS region, e.g. ses-eu-west-1; user and password are "
	    "SES SMTP credentials, not IAM keys",
	    { { "not verified",
		"Amazon SES: verify the sender address or domain in this "
		"region (in the sandbox, the recipients too)" },
	      { NULL, NULL }, { NULL, NULL } },
	    "https://docs.aws.amazon.com/ses/latest/dg/smtp-connect.html" },
	/* Not checked. */
	{ "sendgrid", NULL, "",
	    "smtp.sendgrid.net", 465, 0, NULL, 0, "apikey", NULL,
	    "user is literally apikey, the password an API key",
	    { { "verified Sender Identity",
		"SendGrid: verify the sender (Single Sender Verification) "
		"or authenticate its domain" },
	      { NULL, NULL }, { NULL, NULL } },
	    "https://www.twilio.com/docs/sendgrid/for-developers/sending-"
	    "email/integrating-with-the-smtp-api" },
	/* Checked: 465 implicit TLS; US and EU are separate. */
	{ "mailgun", NULL, "",
	    "smtp.mailgun.org", 465, 0, NULL, 0, NULL, NULL,
	    "user is the domain's SMTP login; EU domains: mailgun-eu",
	    { { NULL, NULL }, { NULL, NULL }, { NULL, NULL } },
	    "https://documentation.mailgun.com/docs/mailgun/user-manual/"
	    "sending-messages/send-smtp" },
	{ "mailgun-eu", NULL, "",
	    "smtp.eu.mailgun.org", 465, 0, NULL, 0, NULL, NULL,
	    "user is the domain's SMTP login",
	    { { NULL, NULL }, { NULL, NULL }, { NULL, NULL } },
	    "https://documentation.mailgun.com/docs/mailgun/user-manual/"
	    "sending-messages/send-smtp" },
	/* Checked: 25, 2525, 587 with STARTTLS; no implicit TLS port. */
	{ "postmark", NULL, "",
	    "smtp.postmarkapp.com", 587, 1, NULL, 0, NULL, NULL,
	    "user and password are both the Server API token",
	    { { NULL, NULL }, { NULL, NULL }, { NULL, NULL } },
	    "https://postmarkapp.com/support/article/811-what-are-the-smtp-"
	    "details-api-tokens-i-should-be-using" },
	/* Checked: 465 with TLS, 587/2525 with STARTTLS. */
	{ "brevo", "sendinblue", "",
	    "smtp-relay.brevo.com", 465, 0, NULL, 0, NULL, NULL,
	    "user is the SMTP login of the account, the password an SMTP key",
	    { { NULL, NULL }, { NULL, NULL }, { NULL, NULL } },
	    "https://developers.brevo.com/docs/smtp-integration" },
	/*
	 * Checked (a page quoting Mailjet): in-v3.mailjet.com, 587 with
	 * STARTTLS; the user is the API key, the password its secret key.
	 */
	{ "mailjet", NULL, "",
	    "in-v3.mailjet.com", 587, 1, NULL, 0, NULL, NULL,
	    "user is the API key, the password the secret key; the sender "
	    "must be validated",
	    { { NULL, NULL }, { NULL, NULL }, { NULL, NULL } },
	    "https://cloud.google.com/compute/docs/tutorials/sending-mail/"
	    "using-mailjet" },
	/* Checked: SSL on 465, 8465, 443; TLS on 25, 2525, 8025, 587, 80. */
	{ "smtp2go", NULL, "",
	    "mail.smtp2go.com", 465, 0, NULL, 0, NULL, NULL,
	    "user and password of an SMTP User (Sending, SMTP Users)",
	    { { NULL, NULL }, { NULL, NULL }, { NULL, NULL } },
	    "https://developers.smtp2go.com/docs/smtp-relay" },
	/* Checked: SMTPS 465/2465, STARTTLS 25/587/2587; user "resend". */
	{ "resend", NULL, "",
	    "smtp.resend.com", 465, 0, NULL, 0, "resend", NULL,
	    "user is literally resend, the password an API key; verified "
	    "domain",
	    { { NULL, NULL }, { NULL, NULL }, { NULL, NULL } },
	    "https://resend.com/docs/send-with-smtp" },
	/* Seed (like GMX); host of the MX Plan mailboxes, not checked. */
	{ "ovh", NULL, "",
	    "ssl0.ovh.net", 465, 0, NULL, 0, NULL, NULL,
	    "MX Plan mailboxes; Exchange mailboxes have their own host",
	    { { NULL, NULL }, { NULL, NULL }, { NULL, NULL } },
	    "https://help.ovhcloud.com/csm/en-web-hosting-email-configure-"
	    "thunderbird" },
	/* Not checked. */
	{ "t-online", "telekom", "t-online.de",
	    "securesmtp.t-online.de", 465, 0, NULL, 0, NULL, NULL,
	    "needs the separate password for e-mail programs",
	    { { "authentication|535",
		"T-Online: use the password for e-mail programs (set in the "
		"Telekom e-mail settings), not the login password" },
	      { NULL, NULL }, { NULL, NULL } },
	    "https://www.telekom.de/hilfe/apps-dienste/e-mail/programme/"
	    "server-einstellungen" },
};

#define NPROVIDERS	(sizeof(providers) / sizeof(providers[0]))

/*
 * OAuth2 (oauth.c): endpoints and scopes for the providers whose SMTP
 * takes XOAUTH2.  Users bring their own client registration
 * (smarthost.conf(5), OAUTH2); no client id is shipped.  Endpoints and
 * scopes checked against Microsoft's "Authenticate an IMAP, POP or SMTP
 * connection using OAuth" and Google's "OAuth 2.0 for iOS & Desktop
 * Apps" and "Gmail IMAP/SMTP XOAUTH2" pages.  Google allows no device
 * flow for the mail scope: code with PKCE, pasted back.
 */
#define MS_LOGIN	\
	"https://login.microsoftonline.com/{tenant}/oauth2/v2.0/"
#define MS_SMTP_SCOPE	"https://outlook.office.com/SMTP.Send offline_access"

static const struct oauth_preset oauth_presets[] = {
	{ "office365", "device", "organizations", MS_SMTP_SCOPE,
	    "https://outlook.office365.com/.default", MS_LOGIN "token",
	    MS_LOGIN "devicecode", MS_LOGIN "authorize", NULL, "XOAUTH2", 0,
	    "needed: basic authentication for SMTP AUTH is off for new "
	    "tenants, and by default for existing ones from the end of "
	    "December 2026 (MC786329)" },
	{ "outlook", "device", "consumers", MS_SMTP_SCOPE, NULL,
	    MS_LOGIN "token", MS_LOGIN "devicecode", MS_LOGIN "authorize",
	    NULL, "XOAUTH2", 0,
	    "needed: Outlook.com has refused passwords in other mail "
	    "programs since 16 September 2024" },
	{ "gmail", "authorization_code", NULL, "https://mail.google.com/",
	    NULL, "https://oauth2.googleapis.com/token", NULL,
	    "https://accounts.google.com/o/oauth2/v2/auth",
	    "access_type=offline&prompt=consent", "XOAUTH2", 1,
	    "or an app password (with 2-Step Verification); the account "
	    "password alone is refused (Gmail since 30 May 2022, Google "
	    "Workspace since May 2025)" },
};

#define NOAUTH	(sizeof(oauth_presets) / sizeof(oauth_presets[0]))

static const struct oauth_preset *
oauth_find(const char *name)
{
	size_t	 i;

	for (i = 0; i < NOAUTH; i++)
		if (strcmp(oauth_presets[i].provider, name) == 0)
			return &oauth_presets[i];
	return NULL;
}

/* Is word one of the blank-separated words of list (any case)? */
static int
word_in(const char *word, const char *list)
{
	size_t	 n = strlen(word), len;

	while (list != NULL && *list != '\0') {
		while (*list == ' ')
			list++;
		len = strcspn(list, " ");
		if (len == n && len > 0 && strncasecmp(list, word, n) == 0)
			return 1;
		list += len;
	}
	return 0;
}

static int
is_ses(const char *name)
{
	return strncasecmp(name, "ses-", 4) == 0;
}

/*
 * An AWS region: two letters, one or two words, a number, lower case,
 * as in eu-west-1, us-gov-west-1, ap-southeast-2.
 */
static int
region_valid(const char *r)
{
	size_t	 words = 0, n;

	if (strlen(r) > 32 || !islower((unsigned char)r[0]) ||
	    !islower((unsigned char)r[1]) || r[2] != '-')
		return 0;
	for (r += 3;; r += n + 1) {
		for (n = 0; islower((unsigned char)r[n]); n++)
			;
		if (n == 0 || r[n] != '-')
			break;
		words++;
	}
	if (words < 1 || words > 2)
		return 0;
	for (n = 0; isdigit((unsigned char)r[n]); n++)
		;
	return n >= 1 && n <= 2 && r[n] == '\0';
}

static const struct provider *
row_find(const char *name)
{
	size_t	 i;

	/* Every ses-REGION is the one pattern row. */
	if (is_ses(name))
		name = "ses-REGION";
	for (i = 0; i < NPROVIDERS; i++)
		if (strcasecmp(providers[i].name, name) == 0 ||
		    word_in(name, providers[i].aliases))
			return &providers[i];
	return NULL;
}

static void
known_names(char *buf, size_t size)
{
	size_t	 i, n;

	buf[0] = '\0';
	for (i = 0; i < NPROVIDERS; i++) {
		n = strlen(buf);
		snprintf(buf + n, size - n, "%s%s", i > 0 ? ", " : "",
		    providers[i].name);
	}
}

static void
preset_fill(struct preset *p, const struct provider *r, const char *name)
{
	memset(p, 0, sizeof(*p));
	if (is_ses(name)) {
		snprintf(p->name, sizeof(p->name), "ses-%s", name + 4);
		snprintf(p->host, sizeof(p->host), SES_HOST, name + 4);
	} else {
		snprintf(p->name, sizeof(p->name), "%s", r->name);
		snprintf(p->host, sizeof(p->host), "%s", r->host);
	}
	p->port = r->port;
	p->starttls = r->starttls;
	p->auth = r->auth;
	p->sender_login = r->sender_login;
	p->user = r->user;
	p->note = r->note;
	p->source = r->source;
	p->oauth = oauth_find(r->name);
}

int
provider_find(const char *name, struct preset *p, struct error *err)
{
	const struct provider	*r;
	char			 shown[NAME_MAX_LEN + 1], known[1024];

	sanitize(shown, sizeof(shown), name);
	if (strlen(name) > NAME_MAX_LEN || (r = row_find(name)) == NULL) {
		known_names(known, sizeof(known));
		return error_set(err, EX_CONFIG, "unknown provider '%s': "
		    "known providers are %s (smarthost --providers shows "
		    "them)", shown, known);
	}
	if (is_ses(name) && !region_valid(name + 4))
		return error_set(err, EX_CONFIG, "provider '%s': ses- must "
		    "be followed by an AWS region such as eu-west-1 or "
		    "us-east-1", shown);
	if (r->closed != NULL)
		return error_set(err, EX_CONFIG, "provider %s: %s", r->name,
		    r->closed);
	preset_fill(p, r, name);
	return 0;
}

/* 1 with *p filled when a preset serves the address's domain, else 0. */
int
provider_for_address(const char *addr, struct preset *p, struct error *err)
{
	const char	*at = strrchr(addr, '@');
	size_t		 i;

	if (at == NULL || at[1] == '\0')
		return 0;
	for (i = 0; i < NPROVIDERS; i++) {
		if (!word_in(at + 1, providers[i].domains))
			continue;
		if (provider_find(providers[i].name, p, err) == -1)
			return -1;
		return 1;
	}
	return 0;
}

/* Does text contain one of the '|'-separated needles (any case)? */
static int
text_matches(const char *text, const char *needles)
{
	char	 one[128];
	size_t	 n;

	while (*needles != '\0') {
		n = strcspn(needles, "|");
		if (n > 0 && n < sizeof(one)) {
			memcpy(one, needles, n);
			one[n] = '\0';
			if (strcasestr(text, one) != NULL)
				return 1;
		}
		needles += n;
		if (*needles == '|')
			needles++;
	}
	return 0;
}

const char *
provider_hint(const char *provider, const char *reply_text)
{
	const struct provider	*r;
	size_t			 i;

	if (provider == NULL || reply_text == NULL ||
	    (r = row_find(provider)) == NULL)
		return NULL;
	for (i = 0; i < HINTS_MAX && r->hints[i].match != NULL; i++)
		if (text_matches(reply_text, r->hints[i].match))
			return r->hints[i].text;
	return NULL;
}

void
providers_list(FILE *fp)
{
	const struct provider	*r;
	char			 hp[128];
	size_t			 i;

	fprintf(fp, "%-12s %-34s %-8s %s\n", "PROVIDER", "HOST:PORT", "TLS",
	    "NOTE");
	for (i = 0; i < NPROVIDERS; i++) {
		r = &providers[i];
		/* A discontinued row shows no relay to copy. */
		if (r->closed != NULL)
			snprintf(hp, sizeof(hp), "-");
		else
			snprintf(hp, sizeof(hp), "%s:%d", r->host, r->port);
		fprintf(fp, "%-12s %-34s %-8s %s\n", r->name, hp,
		    r->closed != NULL ? "-" : r->starttls ? "STARTTLS" :
		    "implicit", r->note);
		if (r->aliases != NULL)
			fprintf(fp, "%12s also: %s\n", "", r->aliases);
		if (r->domains[0] != '\0')
			fprintf(fp, "%12s domains: %s\n", "", r->domains);
		if (oauth_find(r->name) != NULL)
			fprintf(fp, "%12s oauth2: %s\n", "",
			    oauth_find(r->name)->required);
		fprintf(fp, "%12s source: %s\n", "", r->source);
	}
}

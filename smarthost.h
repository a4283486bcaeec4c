/* SPDX-License-Identifier: ISC */
/*
 * smarthost: a sendmail-compatible relay client.
 *
 * The one header: the types that cross modules and each module's public
 * functions.  Data flows one way:
 *
 *   argv -> struct cmdline (sendmail.c)
 *        -> struct account (config.c: files, environment, command line)
 *        -> struct cred (secret.c: password or token, obtained once)
 *        -> struct message (message.c: stdin to a spool file, envelope)
 *        -> delivery (deliver.c: the caller's message first, then the
 *           queue, over one session: smtp.c over net.c, tls.c, auth.c)
 *        -> outcome (sendmail.c: exit code)
 */
#ifndef SMARTHOST_H
#define SMARTHOST_H

#include <sys/types.h>
#include <stddef.h>
#include <stdio.h>

#define SMARTHOST_VERSION	"0.1.0"

/* Bounds (RFC 5321 4.5.3.1 and our own). */
#define SMTP_LINE_MAX		512	/* command line incl. CRLF */
#define REPLY_LINE_MAX		4096	/* we accept longer than the RFC */
#define REPLY_LINES_MAX		128	/* lines of one multi-line reply */
#define RCPT_MAX		1000	/* recipients of one message */
#define ADDR_MAX		256	/* RFC 5321 path limit */
#define HEADER_MAX		(1024 * 1024)	/* whole header block */
#define ALIAS_DEPTH_MAX		16
#define TEXT_LINE_MAX		998	/* octets, without CRLF */

/*
 * Errors.  Functions return 0 / -1 and fill a struct error; sendmail.c
 * alone prints it and decides the exit code.
 */
struct error {
	int	 code;		/* sysexits(3) value */
	char	 msg[1024];	/* what went wrong and what to do */
	char	 reply[1024];	/* the relay's reply, sanitized, or "" */
};

/* log.c */
int	 error_set(struct error *, int, const char *, ...)
	    __attribute__((format(printf, 3, 4)));	/* returns -1 */
void	 error_reply(struct error *, const char *);
void	 sanitize(char *, size_t, const char *);
void	 log_init(const char *);		/* program name for stderr */
void	 log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_notice(const char *, ...) __attribute__((format(printf, 1, 2)));
extern int	 trace_level;			/* -v: dialogue on stderr */
void	 trace(const char *, ...) __attribute__((format(printf, 1, 2)));
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
int	 is_blank(int);
char	*str_trim(char *);
char	*concat3(const char *, const char *, const char *);
int	 mkdir_above(const char *);	/* the directories leading to it */
int	 open_read(const char *, int);	/* O_RDONLY; no hang on a FIFO */
char	*first_line(const char *, size_t, size_t, int *);
long long now_ms(void);				/* monotonic clock */
void	 print_error(const struct error *);	/* cause, relay's words */
struct account;
struct message;
struct reply;
void	 log_delivery(const struct account *, const struct message *,
	    const struct reply *, const struct error *, int);

/*
 * The command line (sendmail.c).
 */
enum mode {
	MODE_SEND,		/* -bm, the default */
	MODE_QUEUE_LIST,	/* -bp, mailq */
	MODE_QUEUE_RUN,		/* -q */
	MODE_NEWALIASES,	/* newaliases, -bi */
	MODE_SMTP,		/* -bs */
	MODE_SERVERINFO,	/* --serverinfo */
	MODE_PRETEND,		/* --pretend, -P */
	MODE_VERSION,
	MODE_HELP,
	MODE_PROVIDERS,		/* --providers */
	MODE_IMPORT_POSTFIX,	/* --import-postfix [DIR] */
	MODE_CONFIGURE		/* --configure ADDRESS */
};

struct override {		/* --directive=value */
	const char	*name;	/* directive name, '-' spelled '_' */
	const char	*value;
};

struct cmdline {
	enum mode	 mode;
	int		 read_rcpts;	/* -t */
	int		 dot_ends;	/* no -i: a lone "." ends input */
	int		 verbose;	/* -v */
	int		 force;		/* -qf, --now: ignore the schedule */
	const char	*from;		/* -f, -r; "" is the null sender */
	const char	*fullname;	/* -F */
	const char	*dsn_notify;	/* -N */
	const char	*dsn_return;	/* -R */
	const char	*dsn_envid;	/* -V */
	const char	*body;		/* -B: "7BIT" or "8BITMIME" */
	const char	*logfile;	/* -X */
	const char	*conffile;	/* -C */
	const char	*account;	/* -a */
	const char	*setup_arg;	/* --import-postfix DIR, --configure */
	const char	*output;	/* --import-postfix -o FILE */
	const char	*o_early;	/* an -o before --import-postfix */
	char	       **rcpts;		/* recipients given as arguments */
	size_t		 nrcpts;
	struct override	*over;		/* --directive=value, in order */
	size_t		 nover;
};

/*
 * The account: every directive of SPEC section 3, resolved from the
 * files, the environment and the command line (config.c).  Strings are
 * owned by the account; NULL means "not set".
 */
enum tri { TRI_AUTO = -1, TRI_OFF = 0, TRI_ON = 1 };

struct account {
	char	*name;		/* account name, or "environment" */
	char	*source;	/* "FILE" or "environment" */
	int	 system;	/* from the system file alone */
	char	*provider;	/* preset name or NULL */

	/* connection and TLS */
	char	*host;
	int	 port;		/* resolved default when not set */
	int	 tls;		/* on */
	int	 starttls;	/* on; off = implicit TLS */
	char	*trust_file;	/* NULL = the system store */
	unsigned char fingerprint[32];
	int	 has_fingerprint;
	char	*cert_file, *key_file;
	char	*host_override;
	int	 tls_min;	/* 12 or 13 */
	int	 tls_legacy_ciphers;	/* TLS 1.2 without ECDHE, AEAD */
	int	 certcheck;	/* on */
	char	*session_cache;	/* NULL = off; default is a user file */
	int	 timeout;	/* seconds: connect, and scales RFC ones */
	char	*domain;	/* EHLO name */
	char	*source_ip;

	/* authentication */
	char	*auth;		/* NULL = off, "on", or a mechanism */
	char	*user;
	char	*password;	/* a literal one (file, environment):
				   secret_get moves it into struct cred */
	char	*passwordeval;

	/* OAuth2 (oauth.c): on when oauth_client_id is set */
	char	*oauth_grant;	/* device, authorization_code, ... */
	char	*oauth_client_id;
	char	*oauth_client_secret;	/* secret: wiped by account_free */
	char	*oauth_client_secret_file;
	char	*oauth_client_secret_eval;
	char	*oauth_tenant;
	char	*oauth_scope;
	char	*oauth_token_endpoint;
	char	*oauth_device_endpoint;
	char	*oauth_authorize_endpoint;
	char	*oauth_redirect_uri;
	char	*oauth_token_store;

	/* envelope and headers */
	char	*from;
	int	 allow_from_override;
	int	 rewrite_local_senders;
	char	*from_full_name;
	enum tri set_from_header;	/* auto, on, off */
	enum tri set_date_header;	/* auto, off */
	enum tri set_msgid_header;	/* auto, off */
	int	 remove_bcc_headers;
	char	*aliases;
	char	*maildomain;
	char	*local_recipient;	/* NULL: from */
	int	 notify;		/* failure notices (SPEC 8) */
	char	*notify_to;		/* NULL: the envelope sender */
	char	*dsn_notify, *dsn_return;

	/* delivery safety and logging */
	int	 queue;
	char	*queue_dir;
	long	 queue_max_age;	/* seconds */
	long long max_message_size;	/* octets, 0 = no limit */
	char	*dead_letter;
	char	*logfile;	/* NULL, a file, or "-" */
	int	 logfile_default; /* unset: syslog when it cannot be written */
	int	 syslog;	/* 0 = off, else a facility | 1 */
	int	 syslog_facility;
};

/*
 * The setgid install (priv.c): the group reads the system file and
 * writes the system queue, nothing else; priv_init drops it first thing.
 */
void	 priv_init(void);
int	 priv_setgid(void);
int	 priv_restricted(void);		/* setgid, caller not root */
gid_t	 priv_group(void);		/* (gid_t)-1 when not setgid */
void	 priv_raise(void);
void	 priv_drop(void);
void	 priv_child(void);		/* before exec: for good */

/* config.c */
int	 config_account(const struct cmdline *, struct account *,
	    struct error *);
int	 config_account_names(const struct cmdline *, char ***, size_t *,
	    struct error *);
int	 secret_read(const struct account *, const char *, const char *,
	    char **, struct error *);	/* file or command: oauth.c */
int	 config_is_directive(const char *);
void	 config_print(FILE *, const struct account *);
const char *config_system_file(void);	/* /etc/smarthost.conf */
void	 config_env_warn(void);		/* misspelt SMARTHOST_ variables */
const char *config_system_queue(void);	/* of a setgid install */
char	*config_user_queue(void);		/* ... and a user's there */
void	 account_free(struct account *);
const char *const *config_directives(void);	/* NULL-terminated */

/* providers.c: the presets of SPEC section 6, one table */
struct preset {
	char		 name[64];	/* canonical: "gmx", "ses-eu-west-1" */
	char		 host[128];
	int		 port;
	int		 starttls;	/* 0 = implicit TLS */
	const char	*auth;		/* mechanism to use; NULL = strongest */
	int		 sender_login;	/* the relay takes only the login */
	const char	*user;		/* fixed user name, or NULL */
	const char	*note;
	const char	*source;	/* the provider's documentation page */
	const struct oauth_preset *oauth;	/* NULL: no OAuth2 preset */
};

/* The OAuth2 part of a preset: endpoints ({tenant} replaced), scopes. */
struct oauth_preset {
	const char	*provider;	/* the preset's name */
	const char	*grant;		/* for a user: device or ... */
	const char	*tenant;	/* default tenant, or NULL */
	const char	*scope;		/* delegated: for a user */
	const char	*app_scope;	/* client_credentials, or NULL */
	const char	*token_endpoint;
	const char	*device_endpoint;	/* NULL: no device flow */
	const char	*authorize_endpoint;
	const char	*authorize_extra;	/* more query, or NULL */
	const char	*auth;		/* the SASL mechanism */
	int		 needs_secret;	/* user clients have a secret too */
	const char	*required;	/* since when a password fails */
};
int	 provider_find(const char *, struct preset *, struct error *);
int	 provider_for_address(const char *, struct preset *,
	    struct error *);			/* 1 = found */
const char *provider_hint(const char *, const char *);	/* or NULL */
void	 providers_list(FILE *);

/* setup.c: smarthost --import-postfix [DIR], --configure ADDRESS */
int	 setup_import_postfix(const char *, FILE *, struct error *);
int	 setup_import(const char *, const char *,
	    struct error *);			/* DIR, -o FILE or NULL */
int	 setup_configure(const struct cmdline *, struct error *);

/*
 * The message (message.c): read from stdin into an unlinked spool file,
 * headers fixed, line endings made CRLF, long lines broken.  The spool
 * file holds exactly the octets that go on the wire before
 * dot-stuffing.
 */
/*
 * A recipient and what became of it (RFC 5321 3.3): every recipient is
 * served once, whatever the others' fate.
 */
enum rcpt_state {
	RCPT_PENDING,		/* to try (again) in this run */
	RCPT_SENT,		/* the relay took the message for it */
	RCPT_DEFERRED,		/* refused for now: a later run tries again */
	RCPT_REFUSED		/* refused for good */
};

struct rcpt {
	char		*addr;
	enum rcpt_state	 state;
	int		 unreported;	/* refused; dead.letter copy owed */
	int		 this_run;	/* tried in this run */
	char		*why;		/* one line: the reply about it */
};

struct message {
	int	 fd;		/* spool file, positioned anywhere */
	off_t	 size;		/* octets in it (the RFC 1870 SIZE) */
	int	 eightbit;	/* a byte >= 0x80 */
	int	 has_nul;	/* a NUL byte */
	int	 long_lines;	/* lines were broken at 998 octets */
	int	 rescued;	/* message_read failed; fd holds it as read */

	/* envelope */
	char	*sender;	/* "" for the null sender */
	struct rcpt *rcpts;
	size_t	 nrcpts;
	int	 smtputf8;	/* an envelope address needs it */
	const char *dsn_notify, *dsn_return, *dsn_envid;

	/* what was changed, for --pretend and -v ("added Date: ...") */
	char   **changes;
	size_t	 nchanges;
};

int	 address_check(const char *, struct error *);
/*
 * message_read(in, spool, ...): spool is an empty file to write to (the
 * queue's, owned by m on success, still the caller's on failure) or -1
 * for an unlinked file in TMPDIR.
 */
int	 message_read(int, int, const struct cmdline *,
	    const struct account *, struct message *, struct error *);
void	 message_free(struct message *);
void	 rcpt_set(struct rcpt *, enum rcpt_state, const char *);
size_t	 rcpt_count(const struct message *, enum rcpt_state);

/*
 * The queue (queue.c): one immutable file QUEUE_DIR/ID per message (the
 * data, then an envelope trailer) and QUEUE_DIR/ID.status (attempts,
 * next try, last error, each recipient's state).  Spool with
 * queue_spool, then queue_commit before the first byte goes out; then
 * queue_done (every recipient served) or queue_defer (some wait).  A
 * message being sent is flock'ed.  q->fd is m->fd: message_free closes
 * it and drops the lock; m->dsn_envid of a queue_open'ed message points
 * into q.
 */
#define QUEUE_ID_LEN	28	/* 20261127T231500-0123456789ab */

struct qentry {
	char	 id[QUEUE_ID_LEN + 1];
	char	*dir;		/* queue directory */
	char	*path;		/* dir/id, for messages */
	int	 fd;		/* the entry, locked; the same as m->fd */
	char	*account;	/* name of the account it was queued for */
	time_t	 created;	/* when it was queued */
	time_t	 first, last;	/* failed attempts; 0 = none yet */
	time_t	 next;		/* no try before (backoff); 0 = any run */
	unsigned attempts;	/* failed attempts so far */
	char	 error[1024];	/* the last one, one line, or "" */
	char	*dsn_envid;	/* owned here */
	int	 shared;	/* in the system queue of a setgid install */
	uid_t	 owner;		/* who queued it */
};

int	 queue_spool(const struct account *, int *, struct error *);
int	 queue_commit(const struct account *, struct message *,
	    struct qentry *, struct error *);
int	 queue_defer(struct qentry *, const struct message *,
	    const struct error *, int, struct error *);
int	 queue_done(struct qentry *);
int	 queue_dead_letter(const struct account *, const struct message *,
	    const struct error *, const char *, struct error *);
int	 queue_scan(const char *, char ***, size_t *, struct error *);
void	 queue_ids_free(char **, size_t);
int	 queue_open(const char *, const char *, struct qentry *,
	    struct message *, struct error *);	/* 1 = busy or gone */
int	 queue_expired(const struct account *, const struct qentry *);
time_t	 queue_backoff(unsigned);
void	 queue_list(FILE *, const char *, int);
void	 queue_list_at(FILE *, const char *, int, time_t);
void	 qentry_free(struct qentry *);

/* notice.c: RFC 3464 failure notices, queued like any message. */
int	 notice_queue(const struct account *, const struct message *, int,
	    struct message *, struct qentry *, struct error *);

/*
 * The connection (net.c): a socket with buffered, deadline-bound I/O,
 * optionally upgraded to TLS by tls.c.
 */
struct tls;
struct conn {
	int		 fd;
	struct tls	*tls;		/* NULL while in clear */
	char		 rbuf[16384];
	size_t		 rpos, rlen;
	unsigned char	 wbuf[16384];	/* one full TLS record */
	size_t		 wlen;
	size_t		 wmax;		/* what fills one record: <= wbuf */
	int		 timeout_ms;	/* for the current step */
	long long	 deadline;	/* its reads end by then (0: none) */
	unsigned	 reads;		/* read calls that returned data */
	unsigned	 flushes;	/* flights written */
	unsigned long long out;		/* octets given to net_write */
	unsigned long long sent;	/* ... and taken by the socket */
	int		 wbroken;	/* a write failed */
	int		 rbroken;	/* a read failed (smtp.c) */
	long long	 cap;		/* no read waits past it (0: none) */
	char		 peer[64];	/* numeric address, for messages */
};

int	 net_connect(struct conn *, const char *, int, const char *, int,
	    struct error *);
int	 net_getline(struct conn *, char *, size_t, struct error *);
int	 net_write(struct conn *, const void *, size_t, struct error *);
size_t	 net_write_size(const struct conn *, size_t);	/* record-aligned */
int	 net_printf(struct conn *, struct error *, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
int	 net_flush(struct conn *, struct error *);
int	 net_pending(const struct conn *);	/* bytes buffered unread */
int	 net_wait(int, short, int);
void	 net_timeout(struct conn *, int);
void	 net_close(struct conn *);

/* tls.c */
struct tls_info {
	char	 version[16];	/* "TLSv1.3" */
	char	 cipher[64];
	char	 subject[256], issuer[256];
	char	 expires[32];
	char	 fingerprint[96];	/* AA:BB:... */
	int	 resumed;
};
int	 tls_start(struct conn *, const struct account *, int,
	    struct error *);
size_t	 tls_record_payload(struct tls *);
int	 tls_read(struct tls *, void *, size_t, long long, int,
	    struct error *);
int	 tls_write(struct tls *, const void *, size_t, int, struct error *);
int	 tls_exporter(struct tls *, char *, size_t);	/* base64 */
void	 tls_info(struct tls *, struct tls_info *);
void	 tls_close(struct tls *);
const char *tls_library_version(void);

/*
 * Credentials (secret.c): the password or token of one account, obtained
 * once per run by whoever drives the delivery, handed to the session
 * const (a reconnect uses them again), wiped once by secret_clear.
 */
struct cred {
	char	*password;	/* NULL: none needed or none found */
};

char	*secret_env_take(void);		/* SMARTHOST_PASSWORD, wiped */
int	 secret_needs_password(const char *);	/* mechanism */
int	 secret_get(struct account *, struct cred *, struct error *);
void	 secret_clear(struct cred *);
void	 secret_free(char *);	/* wipe, then free */
int	 secret_line(int, char *, size_t, struct error *);	/* terminal */
int	 secret_prompt(int, char *, size_t, struct error *);	/* no echo */

/* auth.c */
struct smtp_caps;
struct auth_pending {		/* an AUTH line in the transaction's flight */
	char	 mech[32];
	int	 ate;		/* the relay took our next line as its answer */
};
int	 auth_login(struct conn *, const struct smtp_caps *,
	    const struct account *, const struct cred *, struct error *);
int	 auth_start(struct conn *, const struct smtp_caps *,
	    const struct account *, const struct cred *, int,
	    struct auth_pending *, struct error *);	/* 1: pending */
int	 auth_finish(struct conn *, const struct account *,
	    struct auth_pending *, struct error *);
const char *auth_library_version(void);
char	*auth_mechanisms(void);		/* client mechanisms, malloc'd */

/*
 * OAuth2 (oauth.c): the access token XOAUTH2 and OAUTHBEARER send, got
 * with the account's own client registration (RFC 6749, 8628, 7636) and
 * kept fresh in a token store; the requests go through http.c, a
 * minimal HTTPS client over net.c and tls.c.
 */
#define HTTP_RESPONSE_MAX	(64 * 1024)	/* status, headers and body */

struct http_response {
	int	 status;	/* 200 */
	char	*body;		/* NUL-terminated; wiped when freed */
	size_t	 len;
};

int	 http_post(const struct account *, const char *, const char *,
	    struct http_response *, struct error *);
int	 http_url_valid(const char *);		/* https://HOST[:PORT]/... */
int	 http_parse(const char *, size_t, int, struct http_response *,
	    struct error *);		/* 1: not complete yet */
void	 http_response_free(struct http_response *);

struct oauth_token {
	char		*access_token;	/* secrets: oauth_token_free wipes */
	char		*refresh_token;
	char		*scope;
	long long	 expires_at;	/* time(3); 0: never reused */
};

/* What the token endpoint answered. */
enum oauth_reply {
	OAUTH_OK, OAUTH_PENDING, OAUTH_SLOW_DOWN, OAUTH_INVALID_GRANT,
	OAUTH_FAILED
};

struct oauth_device {		/* RFC 8628 3.2 */
	char		*device_code;	/* secret */
	char		 user_code[64];
	char		 uri[512];
	long long	 deadline;	/* now_ms() */
	int		 interval;	/* seconds between polls */
};

struct oauth_pkce {		/* RFC 7636 */
	char		 verifier[64];
	char		 state[32];
	char		*url;		/* for the browser */
};

/* The system account's token stores: this directory of the system queue. */
#define OAUTH_SYSTEM_DIR	"oauth"

int	 oauth_enabled(const struct account *);
int	 oauth_norm(const char *, const char *, char **, const char **);
int	 oauth_token(const struct account *, char **, struct error *);
int	 oauth_device_start(struct account *, struct oauth_device *,
	    struct error *);
int	 oauth_device_wait(struct account *, struct oauth_device *,
	    struct error *);
void	 oauth_device_free(struct oauth_device *);
int	 oauth_pkce_start(struct account *, struct oauth_pkce *,
	    struct error *);
int	 oauth_pkce_finish(struct account *, struct oauth_pkce *,
	    const char *, struct error *);
void	 oauth_pkce_free(struct oauth_pkce *);
void	 oauth_state(FILE *, const struct account *);
char	*oauth_store_name(const char *, const char *);	/* DIR, account */
int	 oauth_pkce_challenge(const char *, char *, size_t);
/* The parsers of what crosses the wire or the disk (unit tests, fuzz). */
enum oauth_reply oauth_token_parse(const struct http_response *,
	    struct oauth_token *, struct error *);
int	 oauth_device_parse(const struct http_response *,
	    struct oauth_device *, struct error *);
int	 oauth_store_parse(const char *, size_t, const struct account *,
	    struct oauth_token *, struct error *);	/* 1: not ours */
void	 oauth_token_free(struct oauth_token *);

/* smtp.c */
struct smtp_caps {
	int	 starttls, pipelining, chunking, binarymime, eightbitmime;
	int	 smtputf8, dsn, enhanced, size_offered;
	unsigned long long size;	/* 0 = no limit announced */
	char	 auth[512];		/* AUTH mechanisms, upper case */
};

struct reply {
	int	 code;			/* 200..599 */
	char	 text[REPLY_LINE_MAX];	/* all lines, joined by '\n' */
	int	 lines;
};

/*
 * One message handed to the session, with what became of it: the
 * recipients' states are in m->rcpts, the first failure in error, the
 * relay's reply to the data in reply.  lost: the connection broke
 * before every recipient had its answer; those are RCPT_PENDING again.
 */
struct mail {
	struct message	*m;
	struct error	 error;
	struct reply	 reply;
	int		 lost;
	int		 error_soft;	/* error says only that a session broke */
	int		 answered;	/* the relay said something about it */
	void		*owner;		/* the caller's */
};

/*
 * Where the session takes its mail from: next() gives the next message
 * (NULL: no more), done() is told when each has its outcome.  Up to a
 * window of messages is in flight at once.
 */
struct smtp_feed {
	struct mail	*(*next)(void *);
	void		 (*done)(void *, struct mail *);
	void		*ctx;
};

int	 smtp_parse_line(const char *, int *, int *, const char **);
int	 smtp_read_reply(struct conn *, struct reply *, struct error *);
int	 smtp_read_secret(struct conn *, struct reply *, struct error *);
void	 smtp_parse_ehlo(const struct reply *, struct smtp_caps *);
int	 smtp_rcpt_limit_reply(const struct reply *);
struct session;
typedef void (*smtp_progress_fn)(void *, off_t, off_t);
struct session *smtp_open(const struct account *, const struct cred *,
	    struct error *);
void	 smtp_progress(struct session *, smtp_progress_fn, void *);
int	 smtp_send(struct session *, const struct smtp_feed *,
	    struct error *);
int	 smtp_usable(const struct session *);
size_t	 smtp_rcpt_limit(const struct session *);
void	 smtp_set_rcpt_limit(struct session *, size_t);
void	 smtp_close(struct session *);
int	 smtp_serverinfo(const struct account *, const struct cred *, FILE *,
	    struct error *);

/*
 * Delivery (deliver.c): the caller's message first, then what waits in
 * the queue, over one session, reconnecting a bounded number of times;
 * each message settled (sent, kept, dead.letter) as its outcome comes.
 * Returns the exit code for the caller's message (SPEC 1): 0 when it is
 * smarthost's now, non-zero when the caller still owns it.
 */
int	 deliver_message(const struct cmdline *, struct account *, int);
int	 deliver_queue(const struct cmdline *, int);	/* -q; 1 = force */
int	 deliver_rescue(const struct cmdline *, const struct error *);
void	 deliver_list(const struct cmdline *, const struct account *,
	    FILE *, int);				/* -bp */

/* bsmtp.c: -bs; each message is handed to the callback as a file. */
typedef int (*bs_deliver_fn)(void *, const char *, char **, size_t, int,
	    struct error *);
int	 bsmtp_serve(FILE *, FILE *, bs_deliver_fn, void *);

#endif /* SMARTHOST_H */

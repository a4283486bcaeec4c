/*
 * smarthost: the command line, the mode, and the outcome.  This file
 * alone decides what to print and which sysexits(3) code to exit with.
 */
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "smarthost.h"

static void usage_error(const char *, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* The words come from argv: shown with control characters made safe. */
static void
usage_error(const char *fmt, ...)
{
	char	 msg[512], clean[512];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sanitize(clean, sizeof(clean), msg);
	log_notice("%s (try --help)", clean);
	exit(EX_USAGE);
}

/* No control character in any option value: they end up in headers. */
static const char *
checked(const char *opt, const char *val)
{
	const unsigned char	*p;

	for (p = (const unsigned char *)val; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f) {
			log_notice("option -%s: control characters are not "
			    "allowed in its value", opt);
			exit(EX_USAGE);
		}
	return val;
}

static void
set_mode(struct cmdline *cl, const char *m)
{
	if (strcmp(m, "m") == 0)
		cl->mode = MODE_SEND;
	else if (strcmp(m, "p") == 0)
		cl->mode = MODE_QUEUE_LIST;
	else if (strcmp(m, "s") == 0)
		cl->mode = MODE_SMTP;
	else if (strcmp(m, "i") == 0)
		cl->mode = MODE_NEWALIASES;
	else
		usage_error("unsupported mode -b%s (smarthost knows -bm, -bp, "
		    "-bs and -bi)", m);
}

/* -o sub-options: only -oi matters; -oem, -odi, -oep ... are ignored. */
static void
set_o(struct cmdline *cl, const char *o)
{
	if (strcmp(o, "i") == 0 || strcasecmp(o, "i=true") == 0)
		cl->dot_ends = 0;
	else if (strcasecmp(o, "i=false") == 0)
		cl->dot_ends = 1;
}

static void
add_override(struct cmdline *cl, const char *arg)
{
	const char	*eq = strchr(arg, '=');
	char		*name, opt[64];
	size_t		 i;

	if (eq == NULL || eq == arg)
		usage_error("unknown option --%s", arg);
	name = xcalloc(1, (size_t)(eq - arg) + 1);
	memcpy(name, arg, (size_t)(eq - arg));
	for (i = 0; name[i] != '\0'; i++)
		if (name[i] == '-')
			name[i] = '_';
	if (strcmp(name, "password") == 0)
		usage_error("there is no --%s: argv is visible to every "
		    "user; use passwordeval, a 0600 config file or "
		    "SMARTHOST_PASSWORD_FILE", "password");
	if (!config_is_directive(name))
		usage_error("unknown option --%s", arg);
	cl->over = xreallocarray(cl->over, cl->nover + 1, sizeof(*cl->over));
	cl->over[cl->nover].name = name;
	/* checked() names it as "-X"; a long option reads "--name". */
	snprintf(opt, sizeof(opt), "-%.*s", (int)(eq - arg), arg);
	cl->over[cl->nover].value = checked(opt, eq + 1);
	cl->nover++;
}

/* What add_override allocated (LeakSanitizer counts it otherwise). */
static void
overrides_free(struct cmdline *cl)
{
	size_t	 i;

	for (i = 0; i < cl->nover; i++)
		free((char *)cl->over[i].name);
	free(cl->over);
	cl->over = NULL;
	cl->nover = 0;
}

static void
long_option(struct cmdline *cl, const char *arg, int argc, char **argv,
    int *i)
{
	if (strcmp(arg, "providers") == 0)
		cl->mode = MODE_PROVIDERS;
	else if (strcmp(arg, "import-postfix") == 0) {
		cl->mode = MODE_IMPORT_POSTFIX;
		/* An optional directory: the next word unless an option. */
		if (*i + 1 < argc && argv[*i + 1][0] != '-')
			cl->setup_arg = argv[++*i];
	} else if (strncmp(arg, "import-postfix=", 15) == 0) {
		cl->mode = MODE_IMPORT_POSTFIX;
		cl->setup_arg = arg + 15;
	} else if (strcmp(arg, "configure") == 0) {
		if (*i + 1 >= argc)
			usage_error("--configure needs an address");
		cl->mode = MODE_CONFIGURE;
		cl->setup_arg = argv[++*i];
	} else if (strncmp(arg, "configure=", 10) == 0) {
		cl->mode = MODE_CONFIGURE;
		cl->setup_arg = arg + 10;
	} else if (strcmp(arg, "version") == 0)
		cl->mode = MODE_VERSION;
	else if (strcmp(arg, "help") == 0)
		cl->mode = MODE_HELP;
	else if (strcmp(arg, "serverinfo") == 0)
		cl->mode = MODE_SERVERINFO;
	else if (strcmp(arg, "pretend") == 0)
		cl->mode = MODE_PRETEND;
	else
		add_override(cl, arg);
}

/* The option letters that take a value, attached or as the next word. */
#define WITH_VALUE	"fFrNRVBXCaoOAhLb"

/*
 * sendmail's syntax as real callers write it: -FCronDaemon, -f addr,
 * -ti, -oem, -B 8BITMIME, -q30m, --.  Options end at the first word that
 * is not one, so a recipient that starts with '-' after it stays a
 * recipient.
 */
static int
parse_short(struct cmdline *cl, int argc, char **argv, int i)
{
	const char	*p = argv[i] + 1, *val;
	char		 opt[2] = { 0, 0 };

	for (; *p != '\0'; p++) {
		opt[0] = *p;
		if (*p == 'q') {	/* -q, -q30m, -qf: no daemon */
			cl->mode = MODE_QUEUE_RUN;
			return i;
		}
		if (strchr(WITH_VALUE, *p) == NULL) {
			switch (*p) {
			case 't': cl->read_rcpts = 1; break;
			case 'i': cl->dot_ends = 0; break;
			case 'v': cl->verbose++; break;
			case 'P': cl->mode = MODE_PRETEND; break;
			case 'G': case 'm': case 'n': case 'U': break;
			default:
				usage_error("unknown option -%s", opt);
			}
			continue;
		}
		if (p[1] != '\0')
			val = p + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		else
			usage_error("option -%s needs a value", opt);
		checked(opt, val);
		switch (*p) {
		case 'f': case 'r': cl->from = val; break;
		case 'F': cl->fullname = val; break;
		case 'N': cl->dsn_notify = val; break;
		case 'R': cl->dsn_return = val; break;
		case 'V': cl->dsn_envid = val; break;
		case 'B': cl->body = val; break;
		case 'X': cl->logfile = val; break;
		case 'C': cl->conffile = val; break;
		case 'a': cl->account = val; break;
		case 'b': set_mode(cl, val); break;
		case 'o': set_o(cl, val); break;
		default: break;		/* -O -A -h -L: accepted, ignored */
		}
		return i;
	}
	return i;
}

/* address_check takes lists too: "a@x, b@y", as mail(1) users write. */
static void
check_address_arg(const char *arg)
{
	struct error	 e;

	if (address_check(arg, &e) == -1) {
		log_notice("%s", e.msg);
		exit(e.code);
	}
}

static void
parse_args(struct cmdline *cl, int argc, char **argv)
{
	int	 i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (strncmp(argv[i], "--", 2) == 0)
			long_option(cl, argv[i] + 2, argc, argv, &i);
		else if (argv[i][0] == '-' && argv[i][1] != '\0')
			i = parse_short(cl, argc, argv, i);
		else
			break;
	}
	cl->rcpts = argv + i;
	cl->nrcpts = (size_t)(argc - i);
	if (cl->from != NULL && strcmp(cl->from, "<>") == 0)
		cl->from = "";
	if (cl->from != NULL && *cl->from != '\0')
		check_address_arg(cl->from);
	for (i = 0; (size_t)i < cl->nrcpts; i++)
		check_address_arg(cl->rcpts[i]);
	if (cl->body != NULL && strcasecmp(cl->body, "7BIT") != 0 &&
	    strcasecmp(cl->body, "8BITMIME") != 0)
		usage_error("-B takes 7BIT or 8BITMIME, not '%s'", cl->body);
}

static void
mode_from_name(struct cmdline *cl, const char *argv0)
{
	const char	*base = strrchr(argv0, '/');

	base = base != NULL ? base + 1 : argv0;
	if (strcmp(base, "mailq") == 0)
		cl->mode = MODE_QUEUE_LIST;
	else if (strcmp(base, "newaliases") == 0)
		cl->mode = MODE_NEWALIASES;
}

static void
version(void)
{
	char	*mechs = auth_mechanisms();

	printf("smarthost %s\n", SMARTHOST_VERSION);
	printf("TLS library: mbedTLS %s\n", tls_library_version());
	printf("SASL library: GNU SASL %s\n", auth_library_version());
	printf("SASL mechanisms: %s XOAUTH2 OAUTHBEARER\n", mechs);
	free(mechs);
}

static void
help(void)
{
	const char *const	*d;
	const char		*p;
	int			 col = 0;

	printf("usage: sendmail [options] [--] [recipient ...]\n"
	    "Send one message from standard input through the relay.\n\n"
	    "  -t             also take recipients from To, Cc and Bcc\n"
	    "  -i, -oi        a line with a single '.' does not end the "
	    "message\n"
	    "  -f ADDR, -r    envelope sender ('<>' for the null sender)\n"
	    "  -F NAME        full name for a From header smarthost adds\n"
	    "  -N LIST        DSN NOTIFY: never or success,delay,failure\n"
	    "  -R full|hdrs   DSN RET\n"
	    "  -V ENVID       DSN ENVID\n"
	    "  -B TYPE        body type: 7BIT or 8BITMIME\n"
	    "  -bm            send (the default)\n"
	    "  -bp            list the queue (as mailq)\n"
	    "  -bs            speak SMTP on standard input and output\n"
	    "  -bi            do nothing (as newaliases)\n"
	    "  -q[INTERVAL]   deliver the queue now\n"
	    "  -v             show the SMTP dialogue (secrets redacted)\n"
	    "  -X FILE        log file\n"
	    "  -C FILE        configuration file (instead of the usual ones)\n"
	    "  -a ACCOUNT     account to use\n"
	    "  -P, --pretend  show account, settings and envelope; send "
	    "nothing\n"
	    "  --serverinfo   show the relay's TLS, certificate and "
	    "capabilities\n"
	    "  --providers    list the provider presets\n"
	    "  --import-postfix [DIR]  print a configuration equivalent to "
	    "DIR/main.cf\n"
	    "  --configure ADDRESS     write a user configuration, after "
	    "testing it\n"
	    "  --version, --help\n"
	    "  -o*, -A, -G, -h, -L, -m, -n, -O, -U   accepted and ignored\n"
	    "  --DIRECTIVE=VALUE   any configuration directive, e.g. "
	    "--host=, --port=:\n   ");
	for (d = config_directives(); *d != NULL; d++) {
		if (strcmp(*d, "password") == 0 ||
		    strcmp(*d, "oauth_client_secret") == 0)
			continue;	/* never on the command line */
		if (col > 60) {
			printf("\n   ");
			col = 0;
		}
		col += printf(" --");
		for (p = *d; *p != '\0'; p++)
			col += putchar(*p == '_' ? '-' : *p) != EOF;
	}
	printf("\n\nExit codes: 0 sent or queued, 64 usage, 65 refused "
	    "(dead.letter), 69 capability missing,\n75 temporary failure, "
	    "76 protocol, 77 authentication, 78 configuration.\n"
	    "See smarthost(8) and smarthost.conf(5).\n");
}

static int
terminal_width(void)
{
	struct winsize	 ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == -1 || ws.ws_col == 0)
		return 80;
	return ws.ws_col;
}

/* The cause, then the relay's reply, one line each. */
static void
print_error(const struct error *e)
{
	char	*line, *copy, *save;

	log_notice("%s", e->msg);
	if (e->reply[0] == '\0')
		return;
	copy = xstrdup(e->reply);
	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		log_notice("the relay said: %s", line);
	free(copy);
}

static void
die(const struct error *e)
{
	print_error(e);
	exit(e->code);
}

static void
pretend(const struct cmdline *cl, struct account *a)
{
	struct message	 m;
	struct error	 e;
	size_t		 i;

	if (message_read(STDIN_FILENO, -1, cl, a, &m, &e) == -1)
		die(&e);
	config_print(stdout, a);
	oauth_state(stdout, a);		/* the token's state, not the token */
	printf("envelope sender: <%s>\n", m.sender);
	for (i = 0; i < m.nrcpts; i++)
		printf("recipient: <%s>\n", m.rcpts[i]);
	printf("message: %lld octets%s%s%s\n", (long long)m.size,
	    m.eightbit ? ", 8-bit" : "", m.smtputf8 ? ", SMTPUTF8" : "",
	    m.has_nul ? ", NUL bytes" : "");
	for (i = 0; i < m.nchanges; i++)
		printf("header change: %s\n", m.changes[i]);
	message_free(&m);
}

/*
 * What a failure means for the message (SPEC 1, issue 5): a permanent
 * refusal goes to dead.letter; anything else keeps it queued, because a
 * person (77, 78, 76) or time (75) can fix the cause.
 */
static int
permanent(const struct error *e)
{
	return e->code == EX_DATAERR;
}

/*
 * Another user's message in the shared queue of a setgid install: kept
 * for later, or, refused for good, marked so for its owner's next run,
 * which moves it to the owner's dead.letter, never to ours.  What the
 * relay said about it is not ours to read either.
 */
static int
settle_other(struct qentry *q, const struct error *why, int quiet)
{
	struct error	 e;

	memset(&e, 0, sizeof(e));
	if (!permanent(why))
		return queue_defer(q, why, &e) == -1 ? EX_IOERR : why->code;
	if (queue_refuse(q, why, &e) == -1) {
		log_notice("%s", e.msg);
		return EX_IOERR;
	}
	if (!quiet)
		log_notice("message %s of uid %lu was refused for good; it "
		    "stays in the system queue until its owner's next run "
		    "moves it to their dead.letter", q->id,
		    (unsigned long)q->owner);
	return why->code;
}

/*
 * Settle one message after an attempt: delivered, refused for good
 * (dead.letter), or kept for later.  Returns the exit code for it.
 */
static int
settle(const struct account *a, struct message *m, struct qentry *q,
    int queued, int rc, const struct error *why, int quiet)
{
	struct error	 e;
	const char	*hint;

	memset(&e, 0, sizeof(e));
	if (rc == 0) {
		if (queued)
			(void)queue_done(q);
		return EX_OK;
	}
	if (queued && q->shared && q->owner != getuid())
		return settle_other(q, why, quiet);
	if (!quiet) {
		print_error(why);
		if (a->provider != NULL &&
		    (hint = provider_hint(a->provider, why->reply)) != NULL)
			log_notice("hint for %s: %s", a->provider, hint);
	}
	if (permanent(why) || !a->queue || !queued) {
		/* Refused for good, or nowhere to keep it: dead.letter. */
		if (queue_dead_letter(a, m, why, &e) == -1) {
			log_notice("%s", e.msg);
			if (queued) {
				log_notice("the message stays in the queue as "
				    "%s", q->id);
				(void)queue_defer(q, why, &e);
			}
			return queued ? why->code : EX_IOERR;
		}
		if (queued)
			(void)queue_done(q);
		log_notice("the message was appended to %s", a->dead_letter);
		return why->code;
	}
	if (queue_defer(q, why, &e) == -1) {
		log_notice("%s", e.msg);
		return EX_IOERR;
	}
	if (why->code == EX_TEMPFAIL) {
		log_notice("queued as %s; it will be sent by the next run or "
		    "sendmail -q", q->id);
		return EX_OK;
	}
	log_notice("the message is kept in the queue as %s: fix the cause, "
	    "then run sendmail -q", q->id);
	return why->code;
}

/* A fresh connection after the last one broke. */
static int
reconnect(struct account *a, struct session **sp, struct error *e)
{
	smtp_close(*sp);
	*sp = smtp_open(a, e);
	return *sp == NULL ? -1 : 0;
}

/*
 * Messages flushed per round trip (RFC 2920 pipelining across them).
 * Against Postfix on loopback, 32 was slower than 1 to 8 (its per-message
 * work dominates and larger batches stalled); 8 still divides a real
 * network's round trips by eight.
 */
#define WINDOW	8

/*
 * Whose mail a flush takes: the caller's, other users' (in the shared
 * queue of a setgid install), or both.
 */
enum { FLUSH_OWN = 1, FLUSH_OTHERS = 2, FLUSH_ALL = 3 };

/* What a queue run did, for its progress line and summary. */
struct flush {
	int		 quiet;		/* the caller's own message follows */
	int		 tty;		/* stderr is a terminal */
	unsigned	 delivered, deferred, refused;
};

static void
flush_count(struct flush *f, int rc, const struct error *e)
{
	if (rc == 0)
		f->delivered++;
	else if (e->code == EX_DATAERR)
		f->refused++;
	else
		f->deferred++;
	if (f->tty && !f->quiet)
		fprintf(stderr, "\rsmarthost: queue: %u delivered, %u "
		    "deferred, %u refused ", f->delivered, f->deferred,
		    f->refused);
}

/*
 * Deliver K opened queue entries over the session: in one pipelined
 * batch when every one can be, else one by one.  Each is settled and
 * freed.  Returns -1 when the relay could not be reached.
 */
static int
deliver_window(struct account *a, struct session **sp, struct qentry *q,
    struct message *m, size_t k, struct flush *f)
{
	struct message	*mp[WINDOW];
	struct reply	 r[WINDOW];
	struct error	 e[WINDOW];
	int		 rc[WINDOW], ret = 0;
	size_t		 i, batch = 1;

	memset(e, 0, sizeof(e));
	if (!smtp_usable(*sp) && reconnect(a, sp, &e[0]) == -1) {
		for (i = 1; i < k; i++)
			e[i] = e[0];
		for (i = 0; i < k; i++)
			rc[i] = -1;
		ret = -1;
	} else {
		for (i = 0; i < k; i++) {
			mp[i] = &m[i];
			batch = batch && smtp_batchable(*sp, &m[i]);
		}
		if (batch)
			smtp_deliver_batch(*sp, mp, k, r, e, rc);
		else
			for (i = 0; i < k; i++)
				rc[i] = smtp_deliver(*sp, &m[i], &r[i], &e[i]);
	}
	for (i = 0; i < k; i++) {
		if (ret == 0)
			log_delivery(a, &m[i], rc[i] == 0 ? &r[i] : NULL,
			    rc[i] == 0 ? NULL : &e[i]);
		if (rc[i] == 0)
			trace("-- delivered %s from the queue", q[i].id);
		settle(a, &m[i], &q[i], 1, rc[i], &e[i],
		    f->quiet || ret == -1);
		flush_count(f, rc[i], &e[i]);
		message_free(&m[i]);
		qentry_free(&q[i]);
	}
	if (ret == -1 && !f->quiet)
		log_notice("%s; %zu queued message%s wait for the next run",
		    e[0].msg, k, k == 1 ? "" : "s");
	return ret;
}

/*
 * What to do with an opened entry: 0 leave it, 1 send it, 2 put it in
 * the caller's dead.letter (refused for good earlier).  In the shared
 * queue of a setgid install a user's run takes only the user's own
 * mail: a run of someone else's they could stop, kill and restart at
 * will.  Root's (the queue timer's) takes all, marks another user's
 * refused mail for its owner, and takes that over once queue_max_age
 * is past.
 */
static int
flush_what(const struct account *a, struct qentry *q, int who)
{
	int	 own = !q->shared || q->owner == getuid();

	if ((who & (own ? FLUSH_OWN : FLUSH_OTHERS)) == 0)
		return 0;
	if (own)
		return q->refused ? 2 : 1;
	if (getuid() != 0)
		return 0;
	if (!q->refused)
		return 1;
	if (queue_expired(a, q)) {
		q->owner = 0;	/* root's now: settle puts it in root's */
		return 2;
	}
	return 0;
}

/* Deliver what waits in the queue for this account, oldest first. */
static void
flush_account(struct account *a, struct session **sp, const char *skip,
    int who, struct flush *f)
{
	struct qentry	 q[WINDOW];
	struct message	 m[WINDOW];
	struct error	 e;
	char		**ids;
	size_t		 n, i, k = 0;
	int		 rc, what;

	memset(&e, 0, sizeof(e));
	if (queue_scan(a->queue_dir, &ids, &n, &e) == -1) {
		log_notice("%s", e.msg);
		return;
	}
	for (i = 0; i < n; i++) {
		if (skip != NULL && strcmp(ids[i], skip) == 0)
			continue;
		memset(&e, 0, sizeof(e));
		rc = queue_open(a->queue_dir, ids[i], &q[k], &m[k], &e);
		if (rc == 1)
			continue;	/* another run is sending it */
		if (rc == -1) {
			log_notice("%s", e.msg);
			continue;
		}
		if (strcmp(q[k].account, a->name) != 0 ||
		    (what = flush_what(a, &q[k], who)) == 0) {
			message_free(&m[k]);
			qentry_free(&q[k]);
			continue;
		}
		if (what == 2) {
			error_set(&e, EX_DATAERR, "%s", q[k].error);
			settle(a, &m[k], &q[k], 1, -1, &e, f->quiet);
			flush_count(f, -1, &e);
			message_free(&m[k]);
			qentry_free(&q[k]);
			continue;
		}
		if (queue_expired(a, &q[k])) {
			error_set(&e, EX_DATAERR, "not delivered within "
			    "queue_max_age; last error: %s", q[k].error);
			settle(a, &m[k], &q[k], 1, -1, &e, f->quiet);
			flush_count(f, -1, &e);
			message_free(&m[k]);
			qentry_free(&q[k]);
			continue;
		}
		if (++k < WINDOW)
			continue;
		k = 0;
		if (deliver_window(a, sp, q, m, WINDOW, f) == -1)
			break;	/* the relay is gone: the rest waits */
	}
	if (k > 0)
		(void)deliver_window(a, sp, q, m, k, f);
	queue_ids_free(ids, n);
}

/* Large messages show how far they got, on a terminal only. */
#define PROGRESS_MIN	(1024 * 1024)

static void
show_progress(void *ctx, off_t done, off_t total)
{
	(void)ctx;
	fprintf(stderr, "\rsmarthost: sent %.1f of %.1f MB (%d%%) ",
	    (double)done / 1e6, (double)total / 1e6,
	    (int)(done * 100 / (total > 0 ? total : 1)));
}

/*
 * Read one message from IN and relay it, with the queue behind it.
 * Returns the exit code; everything worth saying is on stderr.
 */
static int
deliver_input(const struct cmdline *cl, struct account *a, int in)
{
	struct message	 m;
	struct qentry	 q;
	struct session	*s = NULL;
	struct reply	 r;
	struct error	 e;
	int		 spool = -1, queued = 0, rc, code;

	memset(&e, 0, sizeof(e));
	memset(&q, 0, sizeof(q));
	if (a->queue && queue_spool(a, &spool, &e) == -1) {
		log_warn("%s; the message cannot be queued", e.msg);
		spool = -1;
	}
	if (message_read(in, spool, cl, a, &m, &e) == -1) {
		if (spool != -1)
			close(spool);
		print_error(&e);
		return e.code;
	}
	/* Before the first byte goes out, the message is in the queue. */
	if (spool != -1) {
		if (queue_commit(a, &m, &q, &e) == 0)
			queued = 1;
		else
			log_warn("%s; the message cannot be queued", e.msg);
	}
	memset(&e, 0, sizeof(e));
	if (a->auth != NULL && config_password(a, &e) == -1)
		rc = -1;
	else if ((s = smtp_open(a, &e)) == NULL)
		rc = -1;
	else {
		if (queued) {
			struct flush	 f = { .quiet = 1 };

			flush_account(a, &s, q.id, priv_restricted() ?
			    FLUSH_OWN : FLUSH_ALL, &f);
		}
		if (!smtp_usable(s) && reconnect(a, &s, &e) == -1)
			rc = -1;
		else {
			if (m.size >= PROGRESS_MIN && isatty(STDERR_FILENO))
				smtp_progress(s, show_progress, NULL);
			rc = smtp_deliver(s, &m, &r, &e);
			if (m.size >= PROGRESS_MIN && isatty(STDERR_FILENO))
				fputc('\n', stderr);
		}
	}
	smtp_close(s);
	log_delivery(a, &m, rc == 0 ? &r : NULL, rc == 0 ? NULL : &e);
	code = settle(a, &m, &q, queued, rc, &e, 0);
	message_free(&m);
	qentry_free(&q);
	return code;
}

/* -bs: the envelope came over SMTP, the message is in FD. */
static int
bs_deliver(void *ctx, const char *sender, char **rcpts, size_t n, int fd,
    struct error *e)
{
	struct account	*a = ((void **)ctx)[0];
	struct cmdline	 cl = *(const struct cmdline *)((void **)ctx)[1];

	(void)e;
	cl.from = sender;
	cl.rcpts = rcpts;
	cl.nrcpts = n;
	cl.read_rcpts = 0;
	cl.dot_ends = 0;
	return deliver_input(&cl, a, fd);
}

/*
 * The accounts that have mail waiting, in the order of their oldest;
 * (*whose)[i] says whose mail it is (FLUSH_OWN, FLUSH_OTHERS: in the
 * shared queue of a setgid install, other users' mail).
 */
static char **
queued_accounts(const char *dir, size_t *count, int **whose)
{
	struct qentry	 q;
	struct message	 m;
	struct error	 e;
	char		**ids, **names = NULL;
	size_t		 n, i, j, k = 0;

	memset(&e, 0, sizeof(e));
	if (queue_scan(dir, &ids, &n, &e) == -1)
		die(&e);
	for (i = 0; i < n; i++) {
		if (queue_open(dir, ids[i], &q, &m, &e) != 0)
			continue;	/* busy, or reported when flushed */
		for (j = 0; j < k && strcmp(names[j], q.account) != 0; j++)
			;
		if (j == k) {
			names = xreallocarray(names, k + 1, sizeof(*names));
			*whose = xreallocarray(*whose, k + 1, sizeof(**whose));
			names[k] = xstrdup(q.account);
			(*whose)[k++] = 0;
		}
		(*whose)[j] |= !q.shared || q.owner == getuid() ? FLUSH_OWN :
		    FLUSH_OTHERS;
		message_free(&m);
		qentry_free(&q);
	}
	queue_ids_free(ids, n);
	*count = k;
	return names;
}

/* Flush one account's mail, WHO says whose. */
static void
flush_name(const struct cmdline *cl, const char *name, int who,
    struct account *def, struct flush *f)
{
	struct cmdline	 one = *cl;
	struct account	 a;
	struct session	*s = NULL;
	struct error	 e;

	memset(&e, 0, sizeof(e));
	one.account = name;
	if (def->name != NULL && strcmp(name, def->name) == 0) {
		a = *def;
		memset(def, 0, sizeof(*def));
	} else if (config_account(&one, &a, &e) == -1) {
		log_notice("mail queued for account %s stays: %s", name,
		    e.msg);
		return;
	}
	if (a.host == NULL)
		log_notice("mail queued for account %s stays: no relay host "
		    "configured", name);
	else if (a.auth != NULL && config_password(&a, &e) == -1)
		log_notice("%s", e.msg);
	else
		flush_account(&a, &s, NULL, who, f);
	smtp_close(s);
	account_free(&a);
}

/* The accounts with mail in DIR, each flushed as flush_name says. */
static void
flush_dir(const struct cmdline *cl, const char *dir, struct account *def,
    struct flush *f)
{
	char		**names;
	int		*whose = NULL;
	int		 who = priv_restricted() ? FLUSH_OWN : FLUSH_ALL;
	size_t		 n, i;

	names = queued_accounts(dir, &n, &whose);
	for (i = 0; i < n; i++)
		if (whose[i] & who)
			flush_name(cl, names[i], who, def, f);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(whose);
}

/*
 * The queues a run looks at: the default account's; in a setgid run for
 * a user also the system queue and the queue of the user's own accounts
 * (*own, to free).  NULL and duplicates left out.
 */
static size_t
queue_dirs(const struct account *def, const char *dirs[3], char **own)
{
	const char	*cand[3];
	size_t		 n = 0, i, j;

	*own = NULL;
	/* Without a setgid install a missing queue_dir is reported. */
	if (!priv_restricted()) {
		dirs[0] = def->queue_dir;
		return 1;
	}
	*own = config_user_queue();
	cand[0] = def->queue_dir;
	cand[1] = config_system_queue();
	cand[2] = *own;
	for (i = 0; i < 3; i++) {
		for (j = 0; cand[i] != NULL && j < n &&
		    strcmp(dirs[j], cand[i]) != 0; j++)
			;
		if (cand[i] != NULL && j == n)
			dirs[n++] = cand[i];
	}
	return n;
}

/*
 * -q: every account with mail waiting, one connection each; in a setgid
 * run for a user, the user's queues and the system queue.
 */
static int
queue_run(const struct cmdline *cl)
{
	struct account	 def;
	struct error	 e;
	struct flush	 f;
	const char	*dirs[3];
	char		*own;
	size_t		 n, i;

	memset(&e, 0, sizeof(e));
	if (config_account(cl, &def, &e) == -1)
		die(&e);
	memset(&f, 0, sizeof(f));
	f.tty = isatty(STDERR_FILENO);
	n = queue_dirs(&def, dirs, &own);
	for (i = 0; i < n; i++)
		flush_dir(cl, dirs[i], &def, &f);
	free(own);
	if (f.tty || cl->verbose)
		fprintf(stderr, "%ssmarthost: queue: %u delivered, %u "
		    "deferred, %u refused\n", f.tty ? "\r" : "",
		    f.delivered, f.deferred, f.refused);
	account_free(&def);
	return EX_OK;
}

/*
 * Descriptors 0-2 closed by the caller would be the first ones open(2)
 * hands out: a queue file on descriptor 2 would get every notice and
 * trace line.  They are opened on /dev/null, before any file.
 */
static void
std_fds(void)
{
	int	 fd;

	for (fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		if (open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd)
			_exit(EX_OSERR);
	}
}

/*
 * The process may hold a password: no core dump, and no ptrace or
 * /proc/PID/mem for other processes of the same user.
 */
static void
no_core_dumps(void)
{
	struct rlimit	 rl = { 0, 0 };

	(void)setrlimit(RLIMIT_CORE, &rl);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int
main(int argc, char *argv[])
{
	struct cmdline	 cl;
	struct account	 a;
	struct error	 e;
	const char	*dirs[3];
	char		*own;
	void		*ctx[2];
	size_t		 n, i;
	int		 rc = EX_OK;

	std_fds();
	priv_init();	/* the group of a setgid install is dropped */
	log_init(argv[0]);
	no_core_dumps();
	memset(&cl, 0, sizeof(cl));
	memset(&e, 0, sizeof(e));
	cl.dot_ends = 1;
	mode_from_name(&cl, argv[0]);
	parse_args(&cl, argc, argv);
	trace_level = cl.verbose;

	switch (cl.mode) {
	case MODE_VERSION:
		version();
		return EX_OK;
	case MODE_HELP:
		help();
		return EX_OK;
	case MODE_NEWALIASES:
		return EX_OK;	/* aliases are read at send time */
	case MODE_PROVIDERS:
		providers_list(stdout);
		return EX_OK;
	case MODE_IMPORT_POSTFIX:
		if (setup_import_postfix(cl.setup_arg, stdout, &e) == -1)
			die(&e);
		return EX_OK;
	case MODE_CONFIGURE:
		if (setup_configure(&cl, &e) == -1)
			die(&e);
		overrides_free(&cl);
		return EX_OK;
	case MODE_QUEUE_RUN:
		rc = queue_run(&cl);
		overrides_free(&cl);
		return rc;
	default:
		break;
	}
	if (config_account(&cl, &a, &e) == -1)
		die(&e);
	switch (cl.mode) {
	case MODE_QUEUE_LIST:
		n = queue_dirs(&a, dirs, &own);
		for (i = 0; i < n; i++)
			queue_list(stdout, dirs[i], isatty(STDOUT_FILENO) ?
			    terminal_width() : 0);
		free(own);
		break;
	case MODE_PRETEND:
		pretend(&cl, &a);
		break;
	case MODE_SMTP:
		ctx[0] = &a;
		ctx[1] = &cl;
		rc = bsmtp_serve(stdin, stdout, bs_deliver, ctx);
		break;
	case MODE_SERVERINFO:
		if ((a.auth != NULL && config_password(&a, &e) == -1) ||
		    smtp_serverinfo(&a, stdout, &e) == -1)
			die(&e);
		oauth_state(stdout, &a);	/* OAuth2: never the token */
		break;
	default:
		rc = deliver_input(&cl, &a, STDIN_FILENO);
		break;
	}
	account_free(&a);
	overrides_free(&cl);
	return rc;
}

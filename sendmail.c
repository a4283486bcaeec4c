/* SPDX-License-Identifier: ISC */
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
	} else if (strcmp(arg, "output") == 0) {
		if (*i + 1 >= argc)
			usage_error("--output needs a file name");
		cl->output = checked("-output", argv[++*i]);
	} else if (strncmp(arg, "output=", 7) == 0) {
		cl->output = checked("-output", arg + 7);
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
	else if (strcmp(arg, "now") == 0)
		cl->force = 1;
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
			cl->force = strcmp(p, "qf") == 0;
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
		case 'o':
			/* After --import-postfix, -o names its output file. */
			if (cl->mode == MODE_IMPORT_POSTFIX)
				cl->output = val;
			else {
				cl->o_early = val;
				set_o(cl, val);
			}
			break;
		default: break;		/* -O -A -h -L: accepted, ignored */
		}
		return i;
	}
	return i;
}

static void
cmdline_free(struct cmdline *cl)
{
	size_t	 i;

	for (i = 0; i < cl->nover; i++)
		free((char *)cl->over[i].name);
	free(cl->over);
	cl->over = NULL;
	cl->nover = 0;
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
	if (cl->output != NULL && cl->mode != MODE_IMPORT_POSTFIX)
		usage_error("--output (or -o FILE) is for --import-postfix");
	/* -o FILE before --import-postfix was read as a sendmail -o. */
	if (cl->mode == MODE_IMPORT_POSTFIX && cl->output == NULL &&
	    cl->o_early != NULL)
		usage_error("-o %s: write -o FILE after --import-postfix",
		    cl->o_early);
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
	    "  -q[INTERVAL]   deliver what is due in the queue now\n"
	    "  -qf, -q --now  deliver the whole queue now, due or not\n"
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
	    "  -o FILE, --output FILE  with --import-postfix: write it to "
	    "FILE instead,\n"
	    "                 mode 0600, replacing only an earlier import\n"
	    "  --configure ADDRESS     write a user configuration (root: "
	    "the system one),\n"
	    "                 after testing it\n"
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
	printf("\n\nExit codes: 0 the message is smarthost's now (delivered, "
	    "or kept in the queue);\nanything else: the caller still owns "
	    "it.  64 usage, 65 refused for every\nrecipient (dead.letter), "
	    "69 capability missing; with queue off: 75 temporary\nfailure, "
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

	memset(&e, 0, sizeof(e));
	if (message_read(STDIN_FILENO, -1, cl, a, &m, &e) == -1)
		die(&e);
	config_print(stdout, a);
	oauth_state(stdout, a);		/* the token's state, not the token */
	printf("envelope sender: <%s>\n", m.sender);
	for (i = 0; i < m.nrcpts; i++)
		printf("recipient: <%s>\n", m.rcpts[i].addr);
	printf("message: %lld octets%s%s%s\n", (long long)m.size,
	    m.eightbit ? ", 8-bit" : "", m.smtputf8 ? ", SMTPUTF8" : "",
	    m.has_nul ? ", NUL bytes" : "");
	for (i = 0; i < m.nchanges; i++)
		printf("header change: %s\n", m.changes[i]);
	message_free(&m);
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
	return deliver_message(&cl, a, fd);
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
	struct cred	 cr;
	struct error	 e;
	void		*ctx[2];
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
	config_env_warn();	/* once: the environment is read often */

	switch (cl.mode) {
	case MODE_VERSION:
		version();
		goto done;
	case MODE_HELP:
		help();
		goto done;
	case MODE_NEWALIASES:
		goto done;	/* aliases are read at send time */
	case MODE_PROVIDERS:
		providers_list(stdout);
		goto done;
	case MODE_IMPORT_POSTFIX:
		if (setup_import(cl.setup_arg, cl.output, &e) == -1)
			die(&e);
		goto done;
	case MODE_CONFIGURE:
		if (setup_configure(&cl, &e) == -1)
			die(&e);
		goto done;
	case MODE_QUEUE_RUN:
		rc = deliver_queue(&cl, cl.force);
		goto done;
	default:
		break;
	}
	if (config_account(&cl, &a, &e) == -1) {
		/* A message on its way: kept, whatever the configuration. */
		if (cl.mode == MODE_SEND) {
			print_error(&e);
			rc = deliver_rescue(&cl, &e);
			goto done;
		}
		die(&e);
	}
	switch (cl.mode) {
	case MODE_QUEUE_LIST:
		deliver_list(&cl, &a, stdout, isatty(STDOUT_FILENO) ?
		    terminal_width() : 0);
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
		memset(&cr, 0, sizeof(cr));
		if ((a.auth != NULL && secret_get(&a, &cr, &e) == -1) ||
		    smtp_serverinfo(&a, &cr, stdout, &e) == -1) {
			secret_clear(&cr);
			die(&e);
		}
		secret_clear(&cr);
		oauth_state(stdout, &a);	/* OAuth2: never the token */
		break;
	default:
		rc = deliver_message(&cl, &a, STDIN_FILENO);
		break;
	}
	account_free(&a);
done:
	cmdline_free(&cl);
	return rc;
}

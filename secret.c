/* SPDX-License-Identifier: ISC */
/*
 * Credentials: the password or OAuth token of an account, from wherever
 * the configuration says (SPEC 3): the literal one of the file or the
 * environment, passwordeval, $CREDENTIALS_DIRECTORY, a password file,
 * ~/.netrc.  Obtained once per run by whoever drives the delivery,
 * handed to the session const, wiped once.  Nothing here is ever
 * formatted into a message, a trace or a log.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "smarthost.h"

#define SECRET_MAX	(64 * 1024)	/* passwordeval output, secret files */
#define NETRC_SIZE_MAX	(1024 * 1024)

static int	 secret_fetch(const struct account *, struct cred *,
		    struct error *);

/*
 * Take SMARTHOST_PASSWORD out of the environment first thing, wiping
 * the copy that /proc/PID/environ shows, so no child ever inherits it.
 */
char *
secret_env_take(void)
{
	char	*v = getenv("SMARTHOST_PASSWORD"), *copy;

	if (v == NULL)
		return NULL;
	copy = *v != '\0' ? xstrdup(v) : NULL;
	explicit_bzero(v, strlen(v));
	unsetenv("SMARTHOST_PASSWORD");
	return copy;
}


static void
eval_child(const char *cmd, int wfd)
{
	int	 nul;

	/* stdin is the message: the command must not eat it. */
	if ((nul = open("/dev/null", O_RDONLY)) == -1 ||
	    dup2(nul, STDIN_FILENO) == -1 || dup2(wfd, STDOUT_FILENO) == -1)
		_exit(127);
	/* A setgid install runs the command in the caller's name. */
	priv_child();
	execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
	_exit(127);
}

/* 0 at end of output, 1 when the buffer is full, -1 at the deadline. */
static int
eval_read(int fd, char *buf, size_t *len, long long deadline)
{
	struct pollfd	 pfd = { fd, POLLIN, 0 };
	long long	 left;
	ssize_t		 n;

	while (*len < SECRET_MAX) {
		if ((left = deadline - now_ms()) <= 0)
			return -1;
		if (poll(&pfd, 1, (int)left) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (pfd.revents == 0)
			continue;
		n = read(fd, buf + *len, SECRET_MAX - *len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		*len += (size_t)n;
	}
	return 1;
}

/* Reap the child, killing it at the deadline; -1 when it was killed. */
static int
eval_wait(pid_t pid, long long deadline, int *status)
{
	struct timespec	 ts = { 0, 10 * 1000 * 1000 };
	pid_t		 r;

	for (;;) {
		if ((r = waitpid(pid, status, WNOHANG)) == pid)
			return 0;
		if (r == -1 && errno != EINTR)
			return 0;
		if (now_ms() >= deadline) {
			kill(pid, SIGKILL);
			while (waitpid(pid, status, 0) == -1 && errno == EINTR)
				;
			return -1;
		}
		nanosleep(&ts, NULL);
	}
}

static int
eval_result(const char *buf, size_t len, int status, char **out,
    struct error *err)
{
	int	 toolong;

	if (WIFSIGNALED(status))
		return error_set(err, EX_CONFIG, "passwordeval command was "
		    "killed by signal %d", WTERMSIG(status));
	if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		return error_set(err, EX_CONFIG, "passwordeval command exited "
		    "with status %d", WEXITSTATUS(status));
	if ((*out = first_line(buf, len, SECRET_MAX, &toolong)) != NULL)
		return 0;
	if (toolong)
		return error_set(err, EX_CONFIG, "passwordeval command printed "
		    "more than 64 KiB without a line end");
	return error_set(err, EX_CONFIG, "passwordeval command printed no "
	    "password: it must print the password on its first line");
}

static int
eval_run(const struct account *a, char **out, struct error *err)
{
	long long	 deadline;
	char		*buf;
	size_t		 len = 0;
	pid_t		 pid;
	int		 fds[2], status = 0, rc, killed;

	if (pipe2(fds, O_CLOEXEC) == -1)
		return error_set(err, EX_OSERR, "passwordeval: cannot create "
		    "a pipe: %s", strerror(errno));
	fflush(NULL);
	if ((pid = fork()) == -1) {
		close(fds[0]);
		close(fds[1]);
		return error_set(err, EX_OSERR, "passwordeval: cannot fork: "
		    "%s", strerror(errno));
	}
	if (pid == 0)
		eval_child(a->passwordeval, fds[1]);
	close(fds[1]);
	deadline = now_ms() + (long long)(a->timeout > 0 ? a->timeout : 60) *
	    1000;
	buf = xcalloc(1, SECRET_MAX);
	rc = eval_read(fds[0], buf, &len, deadline);
	close(fds[0]);
	killed = eval_wait(pid, rc == -1 ? 0 : deadline, &status) == -1;
	/* Stopping at 64 KiB kills a longer writer with SIGPIPE: fine. */
	if (rc == 1 && !killed && WIFSIGNALED(status) &&
	    WTERMSIG(status) == SIGPIPE)
		status = 0;
	if (rc == -1 || killed)
		rc = error_set(err, EX_CONFIG, "passwordeval command did not "
		    "finish within %d seconds and was killed (the timeout "
		    "directive sets the limit)", a->timeout);
	else
		rc = eval_result(buf, len, status, out, err);
	explicit_bzero(buf, SECRET_MAX);
	free(buf);
	return rc;
}

/* The first line of a secret file; 1 when it does not exist. */
static int
secret_file(const char *path, char **out, struct error *err)
{
	char	*buf;
	size_t	 len = 0;
	ssize_t	 n;
	int	 fd, toolong;

	if ((fd = open_read(path, 0)) == -1) {
		if (errno == ENOENT)
			return 1;
		return error_set(err, EX_CONFIG, "cannot read %s: %s", path,
		    strerror(errno));
	}
	buf = xcalloc(1, SECRET_MAX);
	while (len < SECRET_MAX &&
	    (n = read(fd, buf + len, SECRET_MAX - len)) > 0)
		len += (size_t)n;
	close(fd);
	*out = first_line(buf, len, SECRET_MAX, &toolong);
	explicit_bzero(buf, SECRET_MAX);
	free(buf);
	if (*out == NULL)
		return error_set(err, EX_CONFIG, "%s holds no password: it "
		    "must be on the first line", path);
	return 0;
}

/*
 * ~/.netrc: blank-separated tokens ("quoted" allowed), entries that
 * start with `machine NAME' or `default', macro definitions skipped.
 */
struct netrc {
	char	*p, *end;
	int	 term;		/* the character that ended the last token */
};

static char *
netrc_token(struct netrc *n)
{
	char	*tok, *w;

	while (n->p < n->end && isspace((unsigned char)*n->p))
		n->p++;
	if (n->p >= n->end)
		return NULL;
	if (*n->p == '"') {
		for (tok = w = ++n->p; n->p < n->end && *n->p != '"';) {
			if (*n->p == '\\' && n->p + 1 < n->end)
				n->p++;
			*w++ = *n->p++;
		}
	} else {
		for (tok = n->p; n->p < n->end &&
		    !isspace((unsigned char)*n->p); n->p++)
			;
		w = n->p;
	}
	n->term = n->p < n->end ? *n->p : '\0';
	if (n->p < n->end)
		n->p++;
	*w = '\0';
	return tok;
}

/* A macro body runs from the line after `macdef NAME' to an empty line. */
static void
netrc_skip_macro(struct netrc *n)
{
	if (netrc_token(n) == NULL)
		return;
	if (n->term != '\n')
		while (n->p < n->end && *n->p++ != '\n')
			;
	while (n->p < n->end) {
		if (*n->p == '\n') {
			n->p++;
			return;
		}
		while (n->p < n->end && *n->p++ != '\n')
			;
	}
}

struct netrc_entry {
	int		 in;		/* inside an entry */
	const char	*machine;	/* NULL for `default' */
	const char	*login, *password;
};

static int
netrc_match(const struct netrc_entry *e, const struct account *a)
{
	if (!e->in || e->password == NULL)
		return 0;
	if (a->user != NULL && (e->login == NULL ||
	    strcmp(e->login, a->user) != 0))
		return 0;
	return e->machine == NULL || strcasecmp(e->machine, a->host) == 0;
}

/* The password of the first entry for the host, else of `default'. */
static char *
netrc_search(char *buf, size_t len, const struct account *a)
{
	struct netrc		 n = { buf, buf + len, 0 };
	struct netrc_entry	 e = { 0, NULL, NULL, NULL };
	const char		*def = NULL;
	char			*tok, *val;

	for (;;) {
		tok = netrc_token(&n);
		if (tok == NULL || strcmp(tok, "machine") == 0 ||
		    strcmp(tok, "default") == 0) {
			if (netrc_match(&e, a) && e.machine != NULL)
				return xstrdup(e.password);
			if (netrc_match(&e, a) && def == NULL)
				def = e.password;
			if (tok == NULL)
				break;
			memset(&e, 0, sizeof(e));
			e.in = 1;
			if (strcmp(tok, "machine") == 0 &&
			    (e.machine = netrc_token(&n)) == NULL)
				break;
		} else if (strcmp(tok, "macdef") == 0)
			netrc_skip_macro(&n);
		else if ((val = netrc_token(&n)) == NULL)
			break;
		else if (strcmp(tok, "login") == 0)
			e.login = val;
		else if (strcmp(tok, "password") == 0)
			e.password = val;
	}
	return def != NULL ? xstrdup(def) : NULL;
}

static int
netrc_read(const char *home, const struct account *a, char **out)
{
	struct stat	 st;
	char		*path, *buf;
	ssize_t		 n;
	size_t		 len = 0;
	int		 fd;

	path = concat3(home, "/.netrc", "");
	if ((fd = open_read(path, 0)) == -1) {
		free(path);
		return 0;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		log_warn("ignoring %s: it must be your own file and not "
		    "readable by others (run chmod 600 %s)", path, path);
		close(fd);
		free(path);
		return 0;
	}
	free(path);
	buf = xcalloc(1, NETRC_SIZE_MAX + 1);
	while (len < NETRC_SIZE_MAX &&
	    (n = read(fd, buf + len, NETRC_SIZE_MAX - len)) > 0)
		len += (size_t)n;
	close(fd);
	*out = netrc_search(buf, len, a);
	explicit_bzero(buf, NETRC_SIZE_MAX + 1);
	free(buf);
	return 0;
}

/* Mechanisms that prove who we are without a password. */
int
secret_needs_password(const char *mech)
{
	return strcmp(mech, "EXTERNAL") != 0 &&
	    strcmp(mech, "ANONYMOUS") != 0 && strcmp(mech, "GSSAPI") != 0;
}

/*
 * The credentials for one run.  A literal password (file, environment)
 * is moved out of the account, so the account holds no secret after
 * this; anything else is fetched now, in the caller's name.
 */
int
secret_get(struct account *a, struct cred *cr, struct error *err)
{
	memset(cr, 0, sizeof(*cr));
	if (a->password != NULL) {
		cr->password = a->password;
		a->password = NULL;
	}
	if (secret_fetch(a, cr, err) == -1) {
		secret_clear(cr);
		return -1;
	}
	return 0;
}

static int
secret_fetch(const struct account *a, struct cred *cr, struct error *err)
{
	const char	*dir, *file;
	char		*path, *home;
	struct passwd	*pw;
	int		 rc;

	/* Any user can listen there while the relay is down. */
	if (a->auth != NULL && a->system && priv_restricted() &&
	    a->port >= 1024 && (!a->tls || (!a->certcheck &&
	    !a->has_fingerprint)))
		return error_set(err, EX_CONFIG, "account %s in %s would send "
		    "the system password to port %d without a checked TLS "
		    "certificate, and any user can listen on a port above "
		    "1023 while the relay is down: use TLS with certificate "
		    "checks (or tls_fingerprint), or a port below 1024",
		    a->name, a->source, a->port);
	if (a->auth == NULL || cr->password != NULL ||
	    !secret_needs_password(a->auth))
		return 0;
	/* OAuth2 built in: a fresh access token is the password. */
	if (oauth_enabled(a))
		return oauth_token(a, &cr->password, err);
	/* It would run in the caller's name, for the caller to watch. */
	if (a->passwordeval != NULL && a->system && priv_restricted())
		return error_set(err, EX_CONFIG, "passwordeval of account %s "
		    "in %s cannot keep the password from the users of a "
		    "setgid install (it runs in their name): put the "
		    "password itself in that file", a->name, a->source);
	if (a->passwordeval != NULL)
		return eval_run(a, &cr->password, err);
	/* The system account's password is the system file's alone. */
	if (a->system && priv_restricted())
		return 0;
	/* Read in the caller's name: a setgid run has dropped its group. */
	if ((dir = getenv("CREDENTIALS_DIRECTORY")) != NULL && *dir == '/') {
		path = concat3(dir, "/smarthost-password", "");
		rc = secret_file(path, &cr->password, err);
		free(path);
		if (rc != 1)
			return rc;
	}
	if ((file = getenv("SMARTHOST_PASSWORD_FILE")) != NULL &&
	    *file != '\0') {
		if ((rc = secret_file(file, &cr->password, err)) == 1)
			return error_set(err, EX_CONFIG, "cannot read %s "
			    "(SMARTHOST_PASSWORD_FILE): %s", file,
			    strerror(ENOENT));
		return rc;
	}
	if ((home = getenv("HOME")) == NULL || *home != '/') {
		pw = getpwuid(getuid());
		home = pw != NULL ? pw->pw_dir : NULL;
	}
	if (home == NULL || a->host == NULL)
		return 0;
	return netrc_read(home, a, &cr->password);
}

void
secret_clear(struct cred *cr)
{
	secret_free(cr->password);
	cr->password = NULL;
}

/*
 * A secret other than the password, from a file or a command, read as
 * the password would be (oauth.c: oauth_client_secret_file, _eval).
 */
int
secret_read(const struct account *a, const char *file, const char *cmd,
    char **out, struct error *err)
{
	struct account	 t = *a;
	char		 msg[sizeof(err->msg)];
	int		 rc;

	if (cmd == NULL) {
		if ((rc = secret_file(file, out, err)) == 1)
			return error_set(err, EX_CONFIG, "cannot read %s: %s",
			    file, strerror(ENOENT));
		return rc;
	}
	t.passwordeval = (char *)cmd;
	if ((rc = eval_run(&t, out, err)) == -1 &&
	    strncmp(err->msg, "passwordeval ", 13) == 0) {
		snprintf(msg, sizeof(msg), "%s", err->msg + 13);
		error_set(err, err->code, "oauth_client_secret_eval: the %s",
		    msg);
	}
	return rc;
}

/* Every secret string ends here: wiped, then freed. */
void
secret_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

/* --- the terminal: answers of --configure, and secrets without echo --- */

/*
 * Set by the signal handler while the password is read without echo,
 * so the terminal is restored before the signal takes its course: the
 * one piece of global state this needs (readpassphrase(3) does it so).
 */
static volatile sig_atomic_t prompt_signal;

static void
prompt_catch(int sig)
{
	prompt_signal = sig;
}

/*
 * One line from the terminal, without its newline: an answer of
 * --configure or a secret, so it is wiped when it does not fit.
 */
int
secret_line(int fd, char *buf, size_t size, struct error *err)
{
	size_t	 len = 0;
	ssize_t	 n;
	char	 ch;

	for (;;) {
		n = read(fd, &ch, 1);
		if (n == -1 && errno == EINTR && prompt_signal == 0)
			continue;
		if (n == -1 && errno == EINTR)
			return error_set(err, EX_TEMPFAIL, "interrupted: "
			    "nothing was written");
		if (n == -1)
			return error_set(err, EX_IOERR, "cannot read from the "
			    "terminal: %s", strerror(errno));
		if (n == 0 && len == 0)
			return error_set(err, EX_USAGE, "no answer (end of "
			    "input): nothing was written");
		if (n == 0 || ch == '\n')
			break;
		if (len + 1 >= size) {
			explicit_bzero(buf, size);
			return error_set(err, EX_USAGE, "the answer is longer "
			    "than %zu characters", size - 1);
		}
		buf[len++] = ch;
	}
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	return 0;
}

static const int prompt_sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP,
    SIGTTIN, SIGTTOU };
#define PROMPT_NSIGS	(sizeof(prompt_sigs) / sizeof(prompt_sigs[0]))

/* A secret from the terminal, not echoed; the caller asked for it. */
int
secret_prompt(int fd, char *buf, size_t size, struct error *err)
{
	struct sigaction sa, saved[PROMPT_NSIGS];
	struct termios	 old, quiet;
	size_t		 i;
	int		 rc, sig;

	if (tcgetattr(fd, &old) == -1)
		return error_set(err, EX_USAGE, "cannot turn off the echo "
		    "of the terminal: %s", strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = prompt_catch;	/* no SA_RESTART: read stops */
	sigemptyset(&sa.sa_mask);
	prompt_signal = 0;
	for (i = 0; i < PROMPT_NSIGS; i++)
		sigaction(prompt_sigs[i], &sa, &saved[i]);
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	if (tcsetattr(fd, TCSAFLUSH, &quiet) == -1)
		rc = error_set(err, EX_USAGE, "cannot turn off the echo of "
		    "the terminal: %s", strerror(errno));
	else
		rc = secret_line(fd, buf, size, err);
	tcsetattr(fd, TCSAFLUSH, &old);
	for (i = 0; i < PROMPT_NSIGS; i++)
		sigaction(prompt_sigs[i], &saved[i], NULL);
	if ((sig = prompt_signal) != 0) {
		explicit_bzero(buf, size);
		raise(sig);	/* with the terminal as it was */
		return error_set(err, EX_TEMPFAIL, "interrupted: nothing "
		    "was written");
	}
	if (rc == 0 && buf[0] == '\0')
		rc = error_set(err, EX_USAGE, "no password given: nothing "
		    "was written");
	return rc;
}

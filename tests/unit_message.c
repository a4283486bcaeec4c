/* SPDX-License-Identifier: ISC */
/*
 * message.c: address checks, the header torture set, the envelope
 * rules, the header fixes and the exact octets of the spool file.
 */
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "smarthost.h"
#include "unit.h"

static char	 tmpdir[256];
static char	 login[256];
static char	 host[256];

static void
acct_init(struct account *a)
{
	memset(a, 0, sizeof(*a));
	a->allow_from_override = 1;
	a->rewrite_local_senders = 1;
	a->set_from_header = TRI_OFF;
	a->set_date_header = TRI_OFF;
	a->set_msgid_header = TRI_OFF;
	a->remove_bcc_headers = 1;
	a->from = "alice@example.com";
	a->maildomain = "example.org";
}

static char *one_rcpt[] = { "bob@example.net" };

static void
cl_init(struct cmdline *cl)
{
	memset(cl, 0, sizeof(*cl));
	cl->rcpts = one_rcpt;
	cl->nrcpts = 1;
}

static int
input_fd(const void *data, size_t n)
{
	int	 fd = memfd_create("input", MFD_CLOEXEC);

	if (fd == -1 || write(fd, data, n) != (ssize_t)n ||
	    lseek(fd, 0, SEEK_SET) != 0) {
		perror("memfd");
		exit(1);
	}
	return fd;
}

static int
run_n(const void *in, size_t n, const struct cmdline *cl,
    const struct account *ac, struct message *m, struct error *err)
{
	int	 fd = input_fd(in, n), rc;

	memset(err, 0, sizeof(*err));
	rc = message_read(fd, -1, cl, ac, m, err);
	close(fd);
	return rc;
}

static int
run(const char *in, const struct cmdline *cl, const struct account *ac,
    struct message *m, struct error *err)
{
	return run_n(in, strlen(in), cl, ac, m, err);
}

/* The spool's octets, NUL-terminated; checks its size against m->size. */
static char *
spool(const struct message *m, size_t *np)
{
	struct stat	 st;
	char		*buf;
	size_t		 n;

	if (m->fd == -1 || fstat(m->fd, &st) == -1)
		return NULL;
	n = (size_t)st.st_size;
	buf = xcalloc(1, n + 1);
	if (pread(m->fd, buf, n, 0) != (ssize_t)n) {
		free(buf);
		return NULL;
	}
	if ((off_t)n != m->size)
		printf("# spool is %zu octets, m->size says %lld\n", n,
		    (long long)m->size);
	if (np != NULL)
		*np = n;
	return buf;
}

/* Run, then compare the whole spool with the expected text. */
static void
check_spool(const char *in, const struct cmdline *cl,
    const struct account *ac, const char *want, const char *name)
{
	struct message	 m;
	struct error	 err;
	char		*got;
	char		 label[256];

	if (run(in, cl, ac, &m, &err) == -1) {
		printf("not ok - %s (error %d: %s)\n", name, err.code,
		    err.msg);
		unit_failed++;
		return;
	}
	got = spool(&m, NULL);
	CHECK_STR(got, want, name);
	snprintf(label, sizeof(label), "%s: size", name);
	CHECK_INT(m.size, strlen(want), label);
	free(got);
	message_free(&m);
}

/* The spool ends with want. */
static void
check_tail(const char *in, const struct cmdline *cl,
    const struct account *ac, const char *want, const char *name)
{
	struct message	 m;
	struct error	 err;
	char		*got;
	size_t		 n, w = strlen(want);

	if (run(in, cl, ac, &m, &err) == -1) {
		printf("not ok - %s (error %d: %s)\n", name, err.code,
		    err.msg);
		unit_failed++;
		return;
	}
	got = spool(&m, &n);
	CHECK_STR(got != NULL && n >= w ? got + n - w : "(short)", want,
	    name);
	free(got);
	message_free(&m);
}

static int	 spool_has_body(const struct message *);

static void
check_error(const char *in, const struct cmdline *cl,
    const struct account *ac, int code, const char *msg, const char *name)
{
	struct message	 m;
	struct error	 err;
	char		 label[256];
	int		 rc, kept;

	rc = run(in, cl, ac, &m, &err);
	snprintf(label, sizeof(label), "%s: fails", name);
	CHECK_INT(rc, -1, label);
	snprintf(label, sizeof(label), "%s: code", name);
	CHECK_INT(err.code, code, label);
	snprintf(label, sizeof(label), "%s: message", name);
	CHECK_STR(err.msg, msg, label);
	snprintf(label, sizeof(label), "%s: message left empty", name);
	CHECK(m.sender == NULL && m.rcpts == NULL, label);
	/*
	 * A configuration error once the header was read, or a header
	 * block too large to take: the message is still read to its end,
	 * as it came, for dead.letter; any other error leaves nothing.
	 */
	kept = code == EX_CONFIG || strstr(msg, "header block larger") !=
	    NULL || strstr(msg, "header fields") != NULL;
	snprintf(label, sizeof(label), "%s: %s", name, kept ?
	    "the message kept, whole, for dead.letter" : "no spool left");
	if (kept)
		CHECK(m.rescued && m.fd != -1 && m.size > 0 &&
		    (code != EX_CONFIG || spool_has_body(&m)), label);
	else
		CHECK(!m.rescued && m.fd == -1, label);
	message_free(&m);
}

/* The rescued spool holds the input's last line (every input ends so). */
static int
spool_has_body(const struct message *m)
{
	char	 buf[65536];
	ssize_t	 n;

	n = pread(m->fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strstr(buf, "\r\n\r\n") != NULL;
}

static char *
rcpt_list(const struct message *m)
{
	static char	 buf[8192];
	size_t		 i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < m->nrcpts; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s",
		    i ? "\n" : "", m->rcpts[i].addr);
	return buf;
}

static void
check_rcpts(const char *in, const struct cmdline *cl,
    const struct account *ac, const char *want, const char *name)
{
	struct message	 m;
	struct error	 err;

	if (run(in, cl, ac, &m, &err) == -1) {
		printf("not ok - %s (error %d: %s)\n", name, err.code,
		    err.msg);
		unit_failed++;
		return;
	}
	CHECK_STR(rcpt_list(&m), want, name);
	message_free(&m);
}

static int
has_change(const struct message *m, const char *want)
{
	size_t	 i;

	for (i = 0; i < m->nchanges; i++)
		if (strcmp(m->changes[i], want) == 0)
			return 1;
	for (i = 0; i < m->nchanges; i++)
		printf("# change: %s\n", m->changes[i]);
	return 0;
}

static char *
slurp(const char *path)
{
	FILE	*fp;
	char	*buf;
	long	 n;

	if ((fp = fopen(path, "rb")) == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = xcalloc(1, (size_t)n + 1);
	if (fread(buf, 1, (size_t)n, fp) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(fp);
	return buf;
}

static void
test_address_check(void)
{
	static const struct {
		const char	*addr;
		const char	*msg;
	} t[] = {
		{ "alice@example.com", NULL },
		{ "root", NULL },
		{ "-oQ/tmp/x@example.com", NULL },
		{ "-bob", NULL },
		{ "<alice@example.com>", NULL },
		{ "\"john doe\"@example.com", NULL },
		{ "\"a,b\"@example.com", NULL },
		{ "a@[127.0.0.1]", NULL },
		{ "a@[IPv6:::1]", NULL },
		{ "a@x.test, b@y.test", NULL },
		{ "<a@x.test>,<b@y.test>", NULL },
		{ "j\xc3\xb6rg@b\xc3\xbc" "cher.de", NULL },
		{ "o'brien+tag@mail_1.example.com", NULL },
		{ "a\nb", "invalid address 'a\\nb': control characters "
		    "are not allowed" },
		{ "a@b\r\nDATA", "invalid address 'a@b\\r\\nDATA': control "
		    "characters are not allowed" },
		{ "a\tb@c", "invalid address 'a\\tb@c': control characters "
		    "are not allowed" },
		{ "a\x7f@c", "invalid address 'a\\x7f@c': control "
		    "characters are not allowed" },
		{ "a@b -X/var/www/x.php", "invalid address "
		    "'a@b -X/var/www/x.php': whitespace is allowed only "
		    "inside quotes" },
		{ "john doe@example.com", "invalid address 'john "
		    "doe@example.com': whitespace is allowed only inside "
		    "quotes" },
		{ "a@b@c", "invalid address 'a@b@c': more than one @" },
		{ "@example.com", "invalid address '@example.com': the "
		    "local part before @ is empty" },
		{ "alice@", "invalid address 'alice@': the domain after @ "
		    "is empty" },
		{ "alice@example..com", "invalid address "
		    "'alice@example..com': the domain is not a valid host "
		    "name or [address literal]" },
		{ "alice@-x.com", "invalid address 'alice@-x.com': the "
		    "domain is not a valid host name or [address literal]" },
		{ "alice@x.com.", "invalid address 'alice@x.com.': the "
		    "domain is not a valid host name or [address literal]" },
		{ "alice@[1.2.3]", "invalid address 'alice@[1.2.3]': the "
		    "domain is not a valid host name or [address literal]" },
		{ "alice@ex!ample.com", "invalid address "
		    "'alice@ex!ample.com': the domain is not a valid host "
		    "name or [address literal]" },
		{ "", "invalid address '': it is empty" },
		{ "<>", "invalid address '<>': it is empty" },
		{ "a(b)@c", "invalid address 'a(b)@c': the local part has a "
		    "character that needs quotes" },
		{ "\"open@x", "invalid address '\"open@x': unterminated "
		    "quotes" },
		{ "\"q\"x@y", "invalid address '\"q\"x@y': text after the "
		    "quoted local part" },
		{ "<a@b", "invalid address '<a@b': unbalanced angle "
		    "brackets" },
		{ "a@x.test,,b@y.test", "invalid address '': it is empty" },
		{ "a@x.test, b c@y.test", "invalid address 'b c@y.test': "
		    "whitespace is allowed only inside quotes" },
	};
	struct error	 err;
	char		 name[300], big[400];
	size_t		 i;
	int		 rc;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&err, 0, sizeof(err));
		rc = address_check(t[i].addr, &err);
		snprintf(name, sizeof(name), "address_check %zu", i);
		if (t[i].msg == NULL) {
			CHECK_INT(rc, 0, name);
			continue;
		}
		CHECK_INT(rc, -1, name);
		CHECK_INT(err.code, EX_USAGE, name);
		CHECK_STR(err.msg, t[i].msg, name);
	}

	/* 256 is the limit (RFC 5321 path), 257 is refused. */
	memset(big, 'a', sizeof(big));
	memcpy(big + 256 - 12, "@example.com", 13);
	CHECK_INT(address_check(big, &err), 0, "256 characters accepted");
	memset(big, 'a', sizeof(big));
	memcpy(big + 257 - 12, "@example.com", 13);
	CHECK_INT(address_check(big, &err), -1, "257 characters refused");
	CHECK(strstr(err.msg, "': it is longer than 256 characters") != NULL,
	    "257 characters: message");
}

static void
test_torture(void)
{
	static const char *const names[] = {
		"rfc5322-a1.1", "rfc5322-a1.2", "rfc5322-a1.3", "rfc5322-a2",
		"rfc5322-a2b", "rfc5322-a3", "rfc5322-a4", "rfc5322-a5",
		"rfc5322-a6.1", "rfc5322-a6.2", "rfc5322-a6.3", "cronie",
		"bsd-mailx", "php-mixed-crlf", "git-send-email", "mutt",
		"torture-misc",
	};
	struct cmdline	 cl;
	struct account	 ac;
	struct message	 m;
	struct error	 err;
	char		 path[512], label[300], *eml, *want, *sp;
	const char	*top = getenv("TOP");
	size_t		 i, n;

	cl_init(&cl);
	cl.nrcpts = 0;
	cl.read_rcpts = 1;
	acct_init(&ac);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/tests/message/%s.eml",
		    top ? top : ".", names[i]);
		eml = slurp(path);
		snprintf(path, sizeof(path), "%s/tests/message/%s.rcpts",
		    top ? top : ".", names[i]);
		want = slurp(path);
		snprintf(label, sizeof(label), "torture %s", names[i]);
		if (eml == NULL || want == NULL) {
			printf("not ok - %s (fixture missing)\n", label);
			unit_failed++;
			continue;
		}
		n = strlen(want);
		if (n > 0 && want[n - 1] == '\n')
			want[n - 1] = '\0';
		if (run(eml, &cl, &ac, &m, &err) == -1) {
			printf("not ok - %s (error %d: %s)\n", label, err.code,
			    err.msg);
			unit_failed++;
		} else {
			CHECK_STR(rcpt_list(&m), want, label);
			sp = spool(&m, NULL);
			snprintf(label, sizeof(label), "torture %s: no Bcc "
			    "left, CRLF only", names[i]);
			CHECK(sp != NULL && strstr(sp, "\nBcc:") == NULL &&
			    strncmp(sp, "Bcc:", 4) != 0 &&
			    strspn(sp, "x") == 0, label);
			free(sp);
			message_free(&m);
		}
		free(eml);
		free(want);
	}
}

/* No bare CR or LF anywhere: what SMTP smuggling needs is gone. */
static int
crlf_only(const char *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		if (s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n'))
			return 0;
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			return 0;
	}
	return 1;
}

static void
test_line_endings(void)
{
	struct cmdline	 cl;
	struct account	 ac;
	struct message	 m;
	struct error	 err;
	char		*in, *want, *got;
	size_t		 i, o, n;

	cl_init(&cl);
	acct_init(&ac);
	check_spool("A: 1\r\nB: 2\rC: 3\n\r\nx\ry\r\r\nz", &cl, &ac,
	    "A: 1\r\nB: 2 C: 3\r\n\r\nx\r\ny\r\n\r\nz\r\n",
	    "LF and CRLF become CRLF, a bare CR too in the body and a "
	    "space in the header; final CRLF added");
	check_spool("S: s\n\na\n.\nb\r\n.\r\nc\r\r\n.\r", &cl, &ac,
	    "S: s\r\n\r\na\r\n.\r\nb\r\n.\r\nc\r\n\r\n.\r\n",
	    "smuggling sequences with -i: normalised, kept");
	check_spool("", &cl, &ac, "", "empty input, no fixes: empty spool");

	/* A CR as the last octet of one read(2), its LF in the next. */
	in = xcalloc(1, 70000);
	want = xcalloc(1, 72000);
	o = (size_t)sprintf(in, "S: x\n\n");
	n = (size_t)sprintf(want, "S: x\r\n\r\n");
	for (i = 0; i < 655; i++) {
		o += (size_t)sprintf(in + o, "%099d\n", 0);
		n += (size_t)sprintf(want + n, "%099d\r\n", 0);
	}
	o += (size_t)sprintf(in + o, "%029d", 7);
	n += (size_t)sprintf(want + n, "%029d\r\n", 7);
	CHECK_INT(o, 65535, "CR lands on the read boundary");
	strcpy(in + o, "\r\nb\n");
	strcpy(want + n, "b\r\n");
	check_spool(in, &cl, &ac, want, "CRLF split across reads: one end");
	strcpy(in + o, "\rb\n");
	check_spool(in, &cl, &ac, want, "bare CR at a read boundary");

	/* The same in the header block: a bare CR there is a space. */
	o = n = 0;
	for (i = 0; i < 655; i++) {
		o += (size_t)sprintf(in + o, "X: %096d\n", 0);
		n += (size_t)sprintf(want + n, "X: %096d\r\n", 0);
	}
	o += (size_t)sprintf(in + o, "Y: %032d", 7);
	n += (size_t)sprintf(want + n, "Y: %032d", 7);
	CHECK_INT(o, 65535, "header CR lands on the read boundary");
	strcpy(in + o, "\rZ: b\n\nbody\n");
	strcpy(want + n, " Z: b\r\n\r\nbody\r\n");
	check_spool(in, &cl, &ac, want, "header: bare CR at a read boundary");
	strcpy(in + o, "\r\nZ: b\n\nbody\n");
	strcpy(want + n, "\r\nZ: b\r\n\r\nbody\r\n");
	check_spool(in, &cl, &ac, want, "header: CRLF split across reads");
	/*
	 * One header line that fills the whole buffer, a CR its last (the
	 * line is folded on the way, so only its end is compared).
	 */
	o = (size_t)sprintf(in, "Y: ");
	memset(in + o, 'a', 65535 - o);
	strcpy(in + 65535, "\rb\n\nbody\n");
	check_tail(in, &cl, &ac, "aaa b\r\n\r\nbody\r\n",
	    "header: a full buffer ending in CR");
	strcpy(in + 65535, "\r\nZ: b\n\nbody\n");
	check_tail(in, &cl, &ac, "aaa\r\nZ: b\r\n\r\nbody\r\n",
	    "header: a full buffer, CRLF after");
	strcpy(in + 65535, "\r");
	check_tail(in, &cl, &ac, "aaa \r\n", "header: a bare CR is the last "
	    "octet");

	/* A lone dot as the last octet of one read(2), its LF in the next. */
	o = (size_t)sprintf(in, "S: x\n\n");
	n = (size_t)sprintf(want, "S: x\r\n\r\n");
	for (i = 0; i < 655; i++) {
		o += (size_t)sprintf(in + o, "%099d\n", 0);
		n += (size_t)sprintf(want + n, "%099d\r\n", 0);
	}
	o += (size_t)sprintf(in + o, "%029d", 7);
	n += (size_t)sprintf(want + n, "%029d\r\n", 7);
	o -= 1;				/* drop the '7' */
	n -= 3;
	strcpy(in + o, "\n.\nafter\n");
	strcpy(want + n, "\r\n");
	CHECK_INT(strchr(in + o + 1, '.') - in, 65535, "dot on the boundary");
	cl.dot_ends = 1;
	check_spool(in, &cl, &ac, want, "lone dot split across reads");
	cl.dot_ends = 0;
	free(in);
	free(want);

	/*
	 * -t: "Subject: x\rBcc: y", as a web form that strips only LF
	 * passes it on, adds no recipient and leaves no Bcc field.
	 */
	cl.nrcpts = 0;
	cl.read_rcpts = 1;
	in = "To: bob@example.org\nSubject: hi\rBcc: evil@example.net\n"
	    "From x\rCc: evil2@example.net\n\nbody\n";
	if (run(in, &cl, &ac, &m, &err) == 0) {
		CHECK_STR(rcpt_list(&m), "bob@example.org",
		    "-t: a bare CR in a header adds no recipient");
		got = spool(&m, NULL);
		CHECK(got != NULL && strstr(got, "\r\nSubject: hi Bcc: "
		    "evil@example.net\r\n") != NULL,
		    "-t: the bare CR is a space in the Subject");
		free(got);
		message_free(&m);
	} else
		CHECK(0, "-t with a bare CR in a header: ran");
	in = "From x\rCc: evil@example.net\nTo: bob@example.org\n\nb\n";
	if (run(in, &cl, &ac, &m, &err) == 0) {
		CHECK_STR(rcpt_list(&m), "bob@example.org",
		    "-t: a bare CR in an mbox From line adds no recipient");
		message_free(&m);
	} else
		CHECK(0, "-t with a bare CR in the From line: ran");
	cl_init(&cl);

	in = "H: v\n\nmixed\r\nlf\nbare\rcrcr\r\r\n\n\rend";
	if (run(in, &cl, &ac, &m, &err) == 0) {
		got = spool(&m, &n);
		CHECK(got != NULL && crlf_only(got, n), "no bare CR or LF");
		free(got);
		message_free(&m);
	} else
		CHECK(0, "no bare CR or LF: ran");
}

static void
test_dot(void)
{
	struct cmdline	 cl;
	struct account	 ac;
	struct message	 m;
	struct error	 err;
	char		*big;
	size_t		 n;
	int		 fd;

	cl_init(&cl);
	acct_init(&ac);
	cl.dot_ends = 1;
	check_spool("S: s\n\nline1\n.\nafter\n", &cl, &ac,
	    "S: s\r\n\r\nline1\r\n", "lone dot ends the input");
	check_spool("S: s\r\n\r\nline1\r\n.\r\nafter\r\n", &cl, &ac,
	    "S: s\r\n\r\nline1\r\n", "lone dot CRLF ends the input");
	check_spool("S: s\n\nline1\n.", &cl, &ac, "S: s\r\n\r\nline1\r\n",
	    "lone dot at EOF ends the input");
	check_spool("S: s\n\n..\n.x\n. \n.\n", &cl, &ac,
	    "S: s\r\n\r\n..\r\n.x\r\n. \r\n", "'..', '.x', '. ' are kept as "
	    "is (stuffing is the sender's job)");
	check_spool("S: s\n.\nmore\n", &cl, &ac, "S: s\r\n",
	    "lone dot in the header block");
	check_spool(".\n", &cl, &ac, "", "lone dot first: empty message");
	cl.dot_ends = 0;
	check_spool("S: s\n\nline1\n.\nafter\n", &cl, &ac,
	    "S: s\r\n\r\nline1\r\n.\r\nafter\r\n", "-i: lone dot kept");
	check_spool("S: s\n\nline1\n.", &cl, &ac,
	    "S: s\r\n\r\nline1\r\n.\r\n", "-i: dot at EOF kept");

	/* The rest of the input is not read. */
	cl.dot_ends = 1;
	n = 300000;
	big = xcalloc(1, n + 1);
	memset(big, 'x', n);
	memcpy(big, "S: s\n\nbody\n.\n", 13);
	fd = input_fd(big, n);
	memset(&err, 0, sizeof(err));
	CHECK_INT(message_read(fd, -1, &cl, &ac, &m, &err), 0, "dot: read");
	CHECK(lseek(fd, 0, SEEK_CUR) <= 65536, "dot: rest of input not read");
	CHECK_INT(m.size, strlen("S: s\r\n\r\nbody\r\n"), "dot: size");
	message_free(&m);
	close(fd);
	free(big);
}

static void
long_line(char *buf, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		buf[i] = (char)('a' + i % 26);
	buf[len] = '\0';
}

static void
test_long_lines(void)
{
	struct cmdline	 cl;
	struct account	 ac;
	struct message	 m;
	struct error	 err;
	char		 in[8192], want[8192], line[2100], *big, *got;
	size_t		 L = 200000, n;

	cl_init(&cl);
	acct_init(&ac);
	long_line(line, 2000);
	snprintf(in, sizeof(in), "S: s\n\n%s\nend\n", line);
	snprintf(want, sizeof(want), "S: s\r\n\r\n%.998s\r\n %.997s\r\n "
	    "%.5s\r\nend\r\n", line, line + 998, line + 1995);
	check_spool(in, &cl, &ac, want, "2000 octets: 998 + SP 997 + SP 5");
	if (run(in, &cl, &ac, &m, &err) == 0) {
		CHECK_INT(m.long_lines, 1, "2000 octets: long_lines set");
		CHECK(has_change(&m, "broke 1 line longer than 998 octets"),
		    "2000 octets: change noted");
		message_free(&m);
	}

	long_line(line, 998);
	snprintf(in, sizeof(in), "S: s\n\n%s\n%s\n", line, line);
	snprintf(want, sizeof(want), "S: s\r\n\r\n%s\r\n%s\r\n", line, line);
	check_spool(in, &cl, &ac, want, "998 octets stay whole");
	if (run(in, &cl, &ac, &m, &err) == 0) {
		CHECK_INT(m.long_lines, 0, "998 octets: long_lines not set");
		message_free(&m);
	}
	long_line(line, 999);
	snprintf(in, sizeof(in), "S: s\n\n%s\n%s", line, line);
	snprintf(want, sizeof(want), "S: s\r\n\r\n%.998s\r\n %s\r\n"
	    "%.998s\r\n %s\r\n", line, line + 998, line, line + 998);
	check_spool(in, &cl, &ac, want, "999 octets: 998 + SP 1");
	if (run(in, &cl, &ac, &m, &err) == 0) {
		CHECK(has_change(&m, "broke 2 lines longer than 998 octets"),
		    "two lines broken: change noted");
		message_free(&m);
	}

	/* A header line is folded by the same rule. */
	long_line(line, 1500);
	snprintf(in, sizeof(in), "Subject: %s\n\nb\n", line);
	snprintf(want, sizeof(want), "Subject: %.989s\r\n %s\r\n\r\nb\r\n",
	    line, line + 989);
	check_spool(in, &cl, &ac, want, "long header line folded");

	/* A line longer than the read buffer. */
	big = xcalloc(1, L + 16);
	memcpy(big, "S: s\n\n", 6);
	long_line(big + 6, L);
	if (run(big, &cl, &ac, &m, &err) == 0) {
		got = spool(&m, &n);
		CHECK_INT(n, 8 + L + 3 * ((L - 998 + 996) / 997) + 2,
		    "200000-octet line: exact size");
		CHECK(got != NULL && crlf_only(got, n) &&
		    memcmp(got + 8, big + 6, 998) == 0 &&
		    memcmp(got + 8 + 998, "\r\n ", 3) == 0 &&
		    memcmp(got + n - 2, "\r\n", 2) == 0,
		    "200000-octet line: broken at 998");
		free(got);
		message_free(&m);
	} else
		CHECK(0, "200000-octet line: ran");
	free(big);
}

static void
test_big(void)
{
	struct cmdline	 cl;
	struct account	 ac;
	struct message	 m;
	struct error	 err;
	struct rusage	 before, after;
	char		 line[100];
	const size_t	 lines = 524288;	/* 50 MiB of input */
	size_t		 i;
	pid_t		 pid;
	int		 p[2], status;
	long		 grown;

	cl_init(&cl);
	acct_init(&ac);
	if (pipe(p) == -1)
		return;
	if ((pid = fork()) == 0) {
		close(p[0]);
		memset(line, 'y', sizeof(line));
		line[99] = '\n';
		if (write(p[1], "Subject: big\n\n", 14) != 14)
			_exit(1);
		for (i = 0; i < lines; i++)
			if (write(p[1], line, sizeof(line)) != sizeof(line))
				_exit(1);
		_exit(0);
	}
	close(p[1]);
	getrusage(RUSAGE_SELF, &before);
	memset(&err, 0, sizeof(err));
	CHECK_INT(message_read(p[0], -1, &cl, &ac, &m, &err), 0, "50 MB: read");
	getrusage(RUSAGE_SELF, &after);
	close(p[0]);
	waitpid(pid, &status, 0);
	grown = after.ru_maxrss - before.ru_maxrss;
	printf("# max RSS grew by %ld KiB\n", grown);
	CHECK(grown < 8 * 1024, "50 MB: memory grows less than 8 MB");
	CHECK_INT(m.size, 16 + (long long)lines * 101, "50 MB: exact size");
	CHECK_INT(m.eightbit, 0, "50 MB: 7 bit");
	message_free(&m);
}

static void
test_8bit_nul(void)
{
	struct cmdline	 cl;
	struct account	 ac;
	struct message	 m;
	struct error	 err;
	char		*got;
	size_t		 n;

	cl_init(&cl);
	acct_init(&ac);
	if (run("S: s\n\ncaf\xc3\xa9\n", &cl, &ac, &m, &err) == 0) {
		CHECK_INT(m.eightbit, 1, "8 bit in the body detected");
		CHECK_INT(m.has_nul, 0, "no NUL");
		message_free(&m);
	}
	if (run("Subject: J\xc3\xb6rg\n\nx\n", &cl, &ac, &m, &err) == 0) {
		CHECK_INT(m.eightbit, 1, "8 bit in a header detected");
		message_free(&m);
	}
	if (run("S: s\n\nplain\n", &cl, &ac, &m, &err) == 0) {
		CHECK_INT(m.eightbit, 0, "7 bit");
		message_free(&m);
	}
	cl.body = "8BITMIME";
	if (run("S: s\n\nplain\n", &cl, &ac, &m, &err) == 0) {
		CHECK_INT(m.eightbit, 1, "-B 8BITMIME sets eightbit");
		message_free(&m);
	}
	cl.body = "7BIT";
	if (run_n("S: s\n\na\0b\n", 10, &cl, &ac, &m, &err) == 0) {
		got = spool(&m, &n);
		CHECK_INT(m.has_nul, 1, "NUL detected");
		CHECK(n == 13 && memcmp(got, "S: s\r\n\r\na\0b\r\n", 13) == 0,
		    "NUL kept as is");
		free(got);
		message_free(&m);
	}
}

/*
 * The 8-bit and NUL checks look at whole blocks of the spool, eight
 * octets at a time: one such octet in any lane of a word, in any block,
 * and only in the last few octets, is still seen.
 */
static void
test_8bit_far(void)
{
	struct cmdline	 cl;
	struct account	 ac;
	struct message	 m;
	struct error	 err;
	const size_t	 at[] = { 0, 1, 3, 7, 31, 32, 65530, 65536, 70001,
	    139990, 149992 };
	char		*in, what[80];
	size_t		 i, n = 150000, hdr;

	cl_init(&cl);
	acct_init(&ac);
	in = xcalloc(1, n + 1);
	hdr = (size_t)sprintf(in, "S: s\n\n");
	for (i = hdr; i < n; i++)
		in[i] = (i - hdr) % 77 == 76 ? '\n' : 'a';
	in[n - 1] = '\n';
	if (run_n(in, n, &cl, &ac, &m, &err) == 0) {
		CHECK_INT(m.eightbit, 0, "150 KB of ASCII: 7 bit");
		CHECK_INT(m.has_nul, 0, "150 KB of ASCII: no NUL");
		message_free(&m);
	}
	for (i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		in[hdr + at[i]] = (char)0xe9;
		snprintf(what, sizeof(what), "8 bit at body octet %zu", at[i]);
		if (run_n(in, n, &cl, &ac, &m, &err) == 0) {
			CHECK_INT(m.eightbit, 1, what);
			CHECK_INT(m.has_nul, 0, what);
			message_free(&m);
		}
		in[hdr + at[i]] = '\0';
		snprintf(what, sizeof(what), "NUL at body octet %zu", at[i]);
		if (run_n(in, n, &cl, &ac, &m, &err) == 0) {
			CHECK_INT(m.has_nul, 1, what);
			CHECK_INT(m.eightbit, 0, what);
			message_free(&m);
		}
		in[hdr + at[i]] = 'a';
	}
	/* One seen in an early block, the other in a later one. */
	in[hdr + 1] = '\0';
	in[hdr + 140000] = (char)0xe9;
	if (run_n(in, n, &cl, &ac, &m, &err) == 0) {
		CHECK(m.has_nul && m.eightbit, "NUL first, 8 bit later: both");
		message_free(&m);
	}
	in[hdr + 1] = (char)0xe9;
	in[hdr + 140000] = '\0';
	if (run_n(in, n, &cl, &ac, &m, &err) == 0) {
		CHECK(m.has_nul && m.eightbit, "8 bit first, NUL later: both");
		message_free(&m);
	}
	free(in);
}

/*
 * Bare CRs far apart, each in a later read than the one before: the
 * reader remembers where the next CR is, and must forget it with every
 * read.
 */
static void
test_cr_far(void)
{
	struct cmdline	 cl;
	struct account	 ac;
	char		*in, *want;
	size_t		 i, o, n;

	cl_init(&cl);
	acct_init(&ac);
	in = xcalloc(1, 300000);
	want = xcalloc(1, 310000);
	o = (size_t)sprintf(in, "S: x\n\n");
	n = (size_t)sprintf(want, "S: x\r\n\r\n");
	for (i = 0; i < 2500; i++) {
		/* A bare CR in every 700th line, CRLF in every 900th. */
		o += (size_t)sprintf(in + o, "%0*zu%s", 60 + (int)(i % 50), i,
		    i % 700 == 699 ? "\rcr\n" : i % 900 == 899 ? "\r\n" : "\n");
		n += (size_t)sprintf(want + n, "%0*zu%s", 60 + (int)(i % 50), i,
		    i % 700 == 699 ? "\r\ncr\r\n" : "\r\n");
	}
	check_spool(in, &cl, &ac, want, "bare CRs and CRLFs reads apart");
	free(in);
	free(want);
}

struct sender_case {
	const char	*f;		/* -f, or NULL */
	const char	*from;		/* account from, or NULL */
	const char	*maildomain;
	int		 override, rewrite;
	const char	*want;		/* sender, or NULL for an error */
	const char	*msg;
};

static void
test_sender(void)
{
	char		 root_host[300], login_md[300], err_login[400];
	char		 err_badmd[400];
	const struct sender_case t[] = {
		{ "root", "alice@example.com", "example.org", 1, 1,
		    "alice@example.com", NULL },
		{ "root@localhost", "alice@example.com", "example.org", 1, 1,
		    "alice@example.com", NULL },
		{ "root@localhost.localdomain", "alice@example.com", NULL, 1,
		    1, "alice@example.com", NULL },
		{ root_host, "alice@example.com", NULL, 1, 1,
		    "alice@example.com", NULL },
		{ "root", NULL, "example.org", 1, 1, "root@example.org",
		    NULL },
		{ "<>", "alice@example.com", NULL, 1, 1, "", NULL },
		{ "", "alice@example.com", NULL, 1, 1, "", NULL },
		{ "bob@example.net", "alice@example.com", NULL, 0, 1,
		    "alice@example.com", NULL },
		{ "bob@example.net", "alice@example.com", NULL, 1, 1,
		    "bob@example.net", NULL },
		{ "<bob@example.net>", NULL, NULL, 1, 1, "bob@example.net",
		    NULL },
		{ NULL, "alice@example.com", "example.org", 1, 1,
		    "alice@example.com", NULL },
		{ NULL, NULL, "example.org", 1, 1, login_md, NULL },
		{ NULL, "*@example.com", "example.org", 1, 1, login_md,
		    NULL },
		{ NULL, NULL, NULL, 1, 1, NULL, err_login },
		{ "root", "alice@example.com", "example.org", 1, 0, NULL,
		    "envelope sender 'root' is not a full address: set from "
		    "(or maildomain) in the configuration" },
		{ "root", "*@example.com", NULL, 1, 1, NULL,
		    "envelope sender 'root' is not a full address: set from "
		    "(or maildomain) in the configuration" },
		{ "a@x.test, b@y.test", NULL, NULL, 1, 1, NULL,
		    "invalid sender 'a@x.test, b@y.test': one address only, "
		    "not a list" },
		{ "a\r\nb@x", NULL, NULL, 1, 1, NULL, "invalid sender "
		    "'a\\r\\nb@x': control characters are not allowed" },
		{ NULL, "a@example.com\r\nBcc: x@y.test", NULL, 1, 1, NULL,
		    "envelope sender 'a@example.com\\r\\nBcc: x@y.test': "
		    "control characters are not allowed: fix from (or "
		    "maildomain) in the configuration" },
		{ NULL, NULL, "exa mple.org", 1, 1, NULL, err_badmd },
	};
	struct cmdline	 cl;
	struct account	 ac;
	struct message	 m;
	struct error	 err;
	char		 name[400];
	size_t		 i;
	int		 rc;

	snprintf(root_host, sizeof(root_host), "root@%s", host);
	snprintf(login_md, sizeof(login_md), "%s@example.org", login);
	snprintf(err_login, sizeof(err_login), "envelope sender '%s' is not "
	    "a full address: set from (or maildomain) in the configuration",
	    login);
	snprintf(err_badmd, sizeof(err_badmd), "envelope sender "
	    "'%s@exa mple.org': whitespace is allowed only inside quotes: "
	    "fix from (or maildomain) in the configuration", login);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		cl_init(&cl);
		acct_init(&ac);
		cl.from = t[i].f;
		ac.from = (char *)t[i].from;
		ac.maildomain = (char *)t[i].maildomain;
		ac.allow_from_override = t[i].override;
		ac.rewrite_local_senders = t[i].rewrite;
		snprintf(name, sizeof(name), "sender rule %zu", i);
		rc = run("S: s\n\nb\n", &cl, &ac, &m, &err);
		if (t[i].want != NULL) {
			if (rc == -1)
				printf("# %s\n", err.msg);
			CHECK_STR(m.sender, t[i].want, name);
		} else {
			CHECK_INT(rc, -1, name);
			CHECK_INT(err.code, t[i].msg[0] == 'i' ? EX_USAGE :
			    EX_CONFIG, name);
			CHECK_STR(err.msg, t[i].msg, name);
		}
		message_free(&m);
	}

	cl_init(&cl);
	acct_init(&ac);
	cl.from = "bob@example.net";
	ac.allow_from_override = 0;
	if (run("S: s\n\nb\n", &cl, &ac, &m, &err) == 0) {
		CHECK(has_change(&m, "ignored -f bob@example.net: "
		    "allow_from_override is off"), "ignored -f noted");
		message_free(&m);
	}
	cl.from = "root";
	ac.allow_from_override = 1;
	if (run("S: s\n\nb\n", &cl, &ac, &m, &err) == 0) {
		CHECK(has_change(&m, "rewrote sender root -> "
		    "alice@example.com"), "rewrite noted");
		message_free(&m);
	}
}

static void
test_recipients(void)
{
	static char	*args2[] = { "carol@example.com", "dave@example.com" };
	static char	*dup[] = { "a@x.test", "A@X.test", "b@x.test, a@x.test",
	    "<b@x.test>" };
	static char	*bare[] = { "root", "root@example.org", "bob" };
	static char	*r_lh[] = { "root@localhost" };
	static char	*bad[] = { "ok@x.test", "bad address@x.test" };
	static char	*utf[] = { "j\xc3\xb6rg@example.de" };
	struct cmdline	 cl;
	struct account	 ac;
	struct message	 m;
	struct error	 err;
	char		**many;
	size_t		 i;
	char		*saved_from;
	const char	*hdr = "To: to@example.com\nCc: Cc <cc@example.com>\n"
	    "Bcc: bcc@example.com\nSubject: s\n\nbody\n";

	cl_init(&cl);
	acct_init(&ac);
	check_rcpts(hdr, &cl, &ac, "bob@example.net",
	    "without -t: arguments only");
	cl.read_rcpts = 1;
	check_rcpts(hdr, &cl, &ac, "bob@example.net\nto@example.com\n"
	    "cc@example.com\nbcc@example.com", "-t with arguments: both");
	cl.nrcpts = 0;
	check_rcpts(hdr, &cl, &ac, "to@example.com\ncc@example.com\n"
	    "bcc@example.com", "-t alone");
	check_error("Subject: s\n\nbody\n", &cl, &ac, EX_USAGE, "no "
	    "recipients (use -t to take them from the headers, or name them "
	    "as arguments)", "-t and no recipient headers");
	cl.read_rcpts = 0;
	check_error(hdr, &cl, &ac, EX_USAGE, "no recipients (use -t to take "
	    "them from the headers, or name them as arguments)",
	    "no recipients at all");

	/* Resent-: the first block only, trace fields inside it. */
	cl.read_rcpts = 1;
	check_rcpts("Resent-To: new@example.com\nResent-Cc: rc@example.com\n"
	    "Received: from a by b\nResent-Bcc: rb@example.com\n"
	    "From: x@example.com\nResent-To: older@example.com\n"
	    "To: orig@example.com\n\nb\n", &cl, &ac, "new@example.com\n"
	    "rc@example.com\nrb@example.com", "Resent- block used");
	check_spool("Resent-To: new@example.com\nResent-Bcc: rb@example.com,"
	    "\n  rb2@example.com\nTo: orig@example.com\n\nb\n", &cl, &ac,
	    "Resent-To: new@example.com\r\nTo: orig@example.com\r\n\r\nb\r\n",
	    "Resent-Bcc removed");

	/* Duplicates, case-insensitive, order kept; lists; brackets. */
	cl.rcpts = dup;
	cl.nrcpts = 4;
	check_rcpts("To: a@x.test\n\nb\n", &cl, &ac, "a@x.test\nb@x.test",
	    "duplicates removed");
	cl.rcpts = args2;
	cl.nrcpts = 2;
	cl.read_rcpts = 0;
	check_rcpts("S: s\n\nb\n", &cl, &ac, "carol@example.com\n"
	    "dave@example.com", "two arguments in order");

	/* maildomain, and duplicates after qualification. */
	cl.rcpts = bare;
	cl.nrcpts = 3;
	check_rcpts("S: s\n\nb\n", &cl, &ac, "root@example.org\n"
	    "bob@example.org", "maildomain qualifies bare names");
	if (run("S: s\n\nb\n", &cl, &ac, &m, &err) == 0) {
		CHECK(has_change(&m, "qualified recipient bob -> "
		    "bob@example.org"), "qualification noted");
		message_free(&m);
	}
	ac.maildomain = NULL;
	saved_from = ac.from;
	ac.from = NULL;
	cl.from = "x@example.org";
	check_error("S: s\n\nb\n", &cl, &ac, EX_CONFIG, "recipient 'root' "
	    "has no domain: set local_recipient, maildomain or from, or add "
	    "it to the aliases file", "bare name, no maildomain, no from");
	/* cron without MAILTO, mail root: the account's own mailbox. */
	cl.from = NULL;
	ac.from = "alice@example.com";
	cl.nrcpts = 1;
	check_rcpts("S: s\n\nb\n", &cl, &ac, "alice@example.com",
	    "bare name, no maildomain: the account's from");
	if (run("S: s\n\nb\n", &cl, &ac, &m, &err) == 0) {
		CHECK(has_change(&m, "local recipient root -> "
		    "alice@example.com"), "local recipient noted");
		message_free(&m);
	}
	ac.local_recipient = "ops@example.net";
	check_rcpts("S: s\n\nb\n", &cl, &ac, "ops@example.net",
	    "bare name: local_recipient");
	cl.rcpts = r_lh;
	check_rcpts("S: s\n\nb\n", &cl, &ac, "ops@example.net",
	    "root@localhost (fail2ban's default): local_recipient");
	cl.rcpts = bare;
	ac.local_recipient = "not an address";
	check_error("S: s\n\nb\n", &cl, &ac, EX_CONFIG, "local_recipient "
	    "'not an address' is not a valid address: fix local_recipient "
	    "(or from)", "local_recipient checked");
	ac.local_recipient = NULL;
	ac.from = saved_from;
	cl.nrcpts = 3;
	ac.maildomain = "bad domain";
	check_error("S: s\n\nb\n", &cl, &ac, EX_CONFIG, "recipient 'root' "
	    "qualified with maildomain is not a valid address: fix "
	    "maildomain", "invalid maildomain");
	ac.maildomain = "example.org";

	cl.rcpts = bad;
	cl.nrcpts = 2;
	check_error("S: s\n\nb\n", &cl, &ac, EX_USAGE, "invalid address "
	    "'bad address@x.test': whitespace is allowed only inside quotes",
	    "invalid argument recipient");
	cl.nrcpts = 0;
	cl.read_rcpts = 1;
	check_error("To: Joe Bloggs\n\nb\n", &cl, &ac, EX_DATAERR,
	    "invalid address 'JoeBloggs' in the To header: a name without "
	    "an address", "a name alone in To");
	check_error("To: <a\x01" "b@x.test>\n\nb\n", &cl, &ac, EX_DATAERR,
	    "invalid address 'a\\x01b@x.test' in the To header: control "
	    "characters are not allowed", "control character in To");

	/* RCPT_MAX */
	many = xcalloc(RCPT_MAX + 1, sizeof(char *));
	for (i = 0; i <= RCPT_MAX; i++) {
		many[i] = xcalloc(1, 32);
		snprintf(many[i], 32, "r%zu@example.com", i);
	}
	cl.read_rcpts = 0;
	cl.rcpts = many;
	cl.nrcpts = RCPT_MAX;
	if (run("S: s\n\nb\n", &cl, &ac, &m, &err) == 0) {
		CHECK_INT(m.nrcpts, RCPT_MAX, "1000 recipients accepted");
		message_free(&m);
	} else
		CHECK(0, "1000 recipients accepted");
	cl.nrcpts = RCPT_MAX + 1;
	check_error("S: s\n\nb\n", &cl, &ac, EX_USAGE, "more than 1000 "
	    "recipients: send the message in parts", "1001 recipients");
	for (i = 0; i <= RCPT_MAX; i++)
		free(many[i]);
	free(many);

	/* SMTPUTF8 only when an envelope address needs it. */
	cl.rcpts = utf;
	cl.nrcpts = 1;
	if (run("S: s\n\nb\n", &cl, &ac, &m, &err) == 0) {
		CHECK_INT(m.smtputf8, 1, "UTF-8 recipient: smtputf8");
		message_free(&m);
	}
	cl.rcpts = args2;
	if (run("Subject: J\xc3\xb6rg\n\nb\n", &cl, &ac, &m, &err) == 0) {
		CHECK_INT(m.smtputf8, 0, "UTF-8 header only: no smtputf8");
		message_free(&m);
	}
}

static void
test_bcc(void)
{
	struct cmdline	 cl;
	struct account	 ac;
	struct message	 m;
	struct error	 err;
	const char	*in = "To: a@x.test\nBcc: b@x.test,\n c@x.test\n"
	    "Bcc:\nSubject: s\nbcc: d@x.test\n\nBcc: body@x.test\n";

	cl_init(&cl);
	acct_init(&ac);
	cl.read_rcpts = 1;
	cl.nrcpts = 0;
	check_rcpts(in, &cl, &ac, "a@x.test\nb@x.test\nc@x.test\nd@x.test",
	    "-t: Bcc recipients taken (folded, empty, lower case)");
	check_spool(in, &cl, &ac, "To: a@x.test\r\nSubject: s\r\n\r\n"
	    "Bcc: body@x.test\r\n", "-t: every Bcc field removed");
	if (run(in, &cl, &ac, &m, &err) == 0) {
		CHECK(has_change(&m, "removed Bcc: (2 lines)"),
		    "folded Bcc: change noted");
		CHECK(has_change(&m, "removed Bcc: (1 line)"),
		    "empty Bcc: change noted");
		message_free(&m);
	}
	cl.read_rcpts = 0;
	cl.nrcpts = 1;
	check_spool(in, &cl, &ac, "To: a@x.test\r\nSubject: s\r\n\r\n"
	    "Bcc: body@x.test\r\n", "without -t: Bcc removed too");
	ac.remove_bcc_headers = 0;
	check_spool("To: a@x.test\nBcc: b@x.test\n\nb\n", &cl, &ac,
	    "To: a@x.test\r\nBcc: b@x.test\r\n\r\nb\r\n",
	    "remove_bcc_headers off: kept");
}

static void
test_header_shapes(void)
{
	struct cmdline	 cl;
	struct account	 ac;
	char		*big;
	size_t		 i, o;

	cl_init(&cl);
	acct_init(&ac);
	check_spool("hello world\nsecond\n", &cl, &ac,
	    "\r\nhello world\r\nsecond\r\n", "no header block: empty line "
	    "keeps the body a body");
	check_spool(" indented\n", &cl, &ac, "\r\n indented\r\n",
	    "a first line starting with a space is body");
	check_spool("From alice Fri Nov 27 23:09:34 2026\nSubject: s\n\nb\n",
	    &cl, &ac, "Subject: s\r\n\r\nb\r\n", "mbox From line dropped");
	check_spool("Subject: s\nnot a header\nmore\n", &cl, &ac,
	    "Subject: s\r\n\r\nnot a header\r\nmore\r\n",
	    "a non-field line ends the header block");
	check_spool("Subject: s\n", &cl, &ac, "Subject: s\r\n",
	    "header block only");
	check_spool("X-Weird-\x7e!#: v\nSubject  : s\n\tfolded\n\nb\n", &cl,
	    &ac, "X-Weird-~!#: v\r\nSubject  : s\r\n\tfolded\r\n\r\nb\r\n",
	    "odd names, obsolete 'Name :', folding kept byte for byte");
	ac.set_from_header = TRI_AUTO;
	check_spool("", &cl, &ac, "From: alice@example.com\r\n\r\n",
	    "empty input: added From and the empty line");
	check_spool("hello\n", &cl, &ac, "From: alice@example.com\r\n\r\n"
	    "hello\r\n", "no header block: added field, empty line, body");
	ac.set_from_header = TRI_OFF;

	big = xcalloc(1, HEADER_MAX + 2000);
	for (o = i = 0; o < HEADER_MAX + 100; i++)
		o += (size_t)sprintf(big + o, "X-Filler-%zu: %0500d\n", i, 0);
	check_error(big, &cl, &ac, EX_DATAERR, "header block larger than "
	    "1 MiB: the message is malformed (is the empty line after the "
	    "headers missing?)", "header block over 1 MiB");
	for (o = i = 0; i < 10001; i++)
		o += (size_t)sprintf(big + o, "X-F: %zu\n", i);
	check_error(big, &cl, &ac, EX_DATAERR, "more than 10000 header "
	    "fields: the message is malformed", "10001 header fields");
	free(big);
}

static void
test_from_header(void)
{
	struct cmdline	 cl;
	struct account	 ac;
	struct message	 m;
	struct error	 err;
	char		 in[512], want[512];

	cl_init(&cl);
	acct_init(&ac);
	ac.set_from_header = TRI_AUTO;
	check_spool("Subject: s\n\nb\n", &cl, &ac, "From: alice@example.com"
	    "\r\nSubject: s\r\n\r\nb\r\n", "auto: From added, no name");
	if (run("Subject: s\n\nb\n", &cl, &ac, &m, &err) == 0) {
		CHECK(has_change(&m, "added From: alice@example.com"),
		    "added From noted");
		message_free(&m);
	}
	cl.fullname = "Cron Daemon";
	check_spool("Subject: s\n\nb\n", &cl, &ac, "From: Cron Daemon "
	    "<alice@example.com>\r\nSubject: s\r\n\r\nb\r\n", "-F name");
	cl.fullname = "Joe Q. Public";
	check_spool("S: s\n\nb\n", &cl, &ac, "From: \"Joe Q. Public\" "
	    "<alice@example.com>\r\nS: s\r\n\r\nb\r\n", "name with specials "
	    "quoted");
	cl.fullname = "Say \"hi\" \\o/";
	check_spool("S: s\n\nb\n", &cl, &ac, "From: \"Say \\\"hi\\\" \\\\o/\" "
	    "<alice@example.com>\r\nS: s\r\n\r\nb\r\n", "quotes escaped");
	cl.fullname = "J\xc3\xb6rg M\xc3\xbcller";
	check_spool("S: s\n\nb\n", &cl, &ac, "From: =?UTF-8?B?"
	    "SsO2cmcgTcO8bGxlcg==?= <alice@example.com>\r\nS: s\r\n\r\nb\r\n",
	    "UTF-8 name: RFC 2047");
	cl.fullname = NULL;
	ac.from_full_name = "Web One";
	check_spool("S: s\n\nb\n", &cl, &ac, "From: Web One "
	    "<alice@example.com>\r\nS: s\r\n\r\nb\r\n", "from_full_name");
	cl.fullname = "Bad\nTo: victim@example.com";
	check_error("S: s\n\nb\n", &cl, &ac, EX_USAGE, "the full name for "
	    "the From header has control characters: remove them from -F",
	    "-F with a newline refused");
	cl.fullname = NULL;
	ac.from_full_name = NULL;
	check_spool("From: Bob <bob@example.net>\n\nb\n", &cl, &ac,
	    "From: Bob <bob@example.net>\r\n\r\nb\r\n", "auto: From kept");
	/* rewrite_local_senders: the header too, the name kept. */
	check_spool("From: root (Cron Daemon)\n\nb\n", &cl, &ac,
	    "From: Cron Daemon <alice@example.com>\r\n\r\nb\r\n",
	    "cron's From: the comment becomes the display name");
	check_spool("From: Root <root@localhost>\nSender: root\nReply-To: "
	    "root@localdomain (admin)\n\nb\n", &cl, &ac, "From: Root "
	    "<alice@example.com>\r\nSender: alice@example.com\r\nReply-To: "
	    "admin <alice@example.com>\r\n\r\nb\r\n",
	    "From, Sender and Reply-To rewritten, names kept");
	check_spool("From: root (a \\(nested\\) (name))\n\nb\n", &cl, &ac,
	    "From: \"a (nested) (name)\" <alice@example.com>\r\n\r\nb\r\n",
	    "a comment with escapes and nesting: quoted name");
	check_spool("Reply-To: bob@example.net\n\nb\n", &cl, &ac,
	    "From: alice@example.com\r\nReply-To: bob@example.net\r\n"
	    "\r\nb\r\n", "a foreign Reply-To kept");
	ac.rewrite_local_senders = 0;
	check_spool("From: root (Cron Daemon)\nSender: root\n\nb\n", &cl,
	    &ac, "From: root (Cron Daemon)\r\nSender: root\r\n\r\nb\r\n",
	    "rewrite_local_senders off: the header left alone");
	ac.rewrite_local_senders = 1;

	/* Null sender: the account's from, else nothing. */
	cl.from = "<>";
	check_spool("S: s\n\nb\n", &cl, &ac, "From: alice@example.com\r\n"
	    "S: s\r\n\r\nb\r\n", "null sender: From is the account's");
	ac.from = NULL;
	check_spool("S: s\n\nb\n", &cl, &ac, "S: s\r\n\r\nb\r\n",
	    "null sender, no from: no From");
	ac.from = "alice@example.com";
	cl.from = NULL;

	ac.set_from_header = TRI_ON;
	check_spool("From: root (Cron Daemon)\nTo: x@y.test\n\nb\n", &cl,
	    &ac, "From: Cron Daemon <alice@example.com>\r\nTo: x@y.test\r\n"
	    "\r\nb\r\n", "on: bare local From replaced, comment a name");
	if (run("From: root (Cron Daemon)\n\nb\n", &cl, &ac, &m, &err) == 0) {
		CHECK(has_change(&m, "replaced From: root -> "
		    "Cron Daemon <alice@example.com>"), "replaced From noted");
		message_free(&m);
	}
	check_spool("From: \"Root User\" <root@localhost>\n\nb\n", &cl, &ac,
	    "From: \"Root User\" <alice@example.com>\r\n\r\nb\r\n",
	    "on: display name kept");
	snprintf(in, sizeof(in), "From: Daemon\n <daemon@%s> (x)\n\nb\n",
	    host);
	snprintf(want, sizeof(want), "From: Daemon\r\n <alice@example.com> "
	    "(x)\r\n\r\nb\r\n");
	check_spool(in, &cl, &ac, want, "on: folded From, this host's name");
	check_spool("From: Bob <bob@example.net>\n\nb\n", &cl, &ac,
	    "From: Bob <bob@example.net>\r\n\r\nb\r\n", "on: foreign From "
	    "kept");
	check_spool("From: a@localhost, b@localhost\n\nb\n", &cl, &ac,
	    "From: a@localhost, b@localhost\r\n\r\nb\r\n", "on: two "
	    "authors kept");
	check_spool("S: s\n\nb\n", &cl, &ac, "From: alice@example.com\r\n"
	    "S: s\r\n\r\nb\r\n", "on: From added when missing");
	ac.set_from_header = TRI_OFF;
	check_spool("From: root\n\nb\n", &cl, &ac, "From: root\r\n\r\nb\r\n",
	    "off: From untouched");
	check_spool("S: s\n\nb\n", &cl, &ac, "S: s\r\n\r\nb\r\n",
	    "off: no From added");
}

static int
matches(const char *s, const char *re)
{
	regex_t	 r;
	int	 rc;

	if (regcomp(&r, re, REG_EXTENDED | REG_NOSUB) != 0)
		return 0;
	rc = regexec(&r, s, 0, NULL, 0);
	regfree(&r);
	return rc == 0;
}

static void
test_date_msgid(void)
{
	struct cmdline	 cl;
	struct account	 ac;
	struct message	 m;
	struct error	 err;
	char		*got, *id1 = NULL, d0[64], d1[64], want[256];
	struct tm	 tm;
	time_t		 t;

	setenv("TZ", "UTC", 1);
	tzset();
	cl_init(&cl);
	acct_init(&ac);
	ac.set_from_header = TRI_AUTO;
	ac.set_date_header = TRI_AUTO;
	ac.set_msgid_header = TRI_AUTO;
	t = time(NULL);
	if (run("Subject: s\n\nb\n", &cl, &ac, &m, &err) != 0) {
		CHECK(0, "date/msgid: ran");
		return;
	}
	got = spool(&m, NULL);
	gmtime_r(&t, &tm);
	strftime(d0, sizeof(d0), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	t++;
	gmtime_r(&t, &tm);
	strftime(d1, sizeof(d1), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	snprintf(want, sizeof(want), "From: alice@example.com\r\nDate: %s\r\n"
	    "Message-ID: <", d0);
	CHECK(strncmp(got, want, strlen(want)) == 0 || (want[0] = '\0',
	    snprintf(want, sizeof(want), "From: alice@example.com\r\nDate: "
	    "%s\r\nMessage-ID: <", d1), strncmp(got, want, strlen(want)) == 0),
	    "From, Date (RFC 5322, local zone) and Message-ID on top");
	CHECK(matches(got, "\r\nMessage-ID: <[0-9]{14}\\.[a-z2-7]{20}"
	    "@example\\.com>\r\nSubject: s\r\n\r\nb\r\n$"), "Message-ID shape");
	CHECK(matches(m.changes[m.nchanges - 1], "^added Message-ID: <"),
	    "Message-ID noted");
	id1 = strstr(got, "Message-ID: ");
	id1 = id1 ? xstrdup(id1) : NULL;
	free(got);
	message_free(&m);
	if (run("Subject: s\n\nb\n", &cl, &ac, &m, &err) == 0) {
		got = spool(&m, NULL);
		CHECK(id1 != NULL && strstr(got, id1) == NULL,
		    "two Message-IDs differ");
		free(got);
		message_free(&m);
	}
	free(id1);

	/* The sender's domain; present fields are left alone. */
	cl.from = "bob@mail.example.net";
	ac.set_from_header = TRI_OFF;
	ac.set_date_header = TRI_OFF;
	if (run("S: s\n\nb\n", &cl, &ac, &m, &err) == 0) {
		got = spool(&m, NULL);
		CHECK(matches(got, "^Message-ID: <[0-9]{14}\\.[a-z2-7]{20}"
		    "@mail\\.example\\.net>\r\nS: s\r\n"), "Message-ID domain "
		    "is the sender's");
		free(got);
		message_free(&m);
	}
	ac.set_from_header = TRI_AUTO;
	ac.set_date_header = TRI_AUTO;
	check_spool("From: x@y.test\nDate: Fri, 27 Nov 2026 23:09:34 +0000\n"
	    "Message-Id: <1@y.test>\n\nb\n", &cl, &ac, "From: x@y.test\r\n"
	    "Date: Fri, 27 Nov 2026 23:09:34 +0000\r\nMessage-Id: <1@y.test>"
	    "\r\n\r\nb\r\n", "present From, Date, Message-Id kept as is");

	setenv("TZ", "EST5", 1);
	tzset();
	cl.from = NULL;
	ac.set_from_header = TRI_OFF;
	ac.set_msgid_header = TRI_OFF;
	if (run("S: s\n\nb\n", &cl, &ac, &m, &err) == 0) {
		got = spool(&m, NULL);
		CHECK(matches(got, "^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), "
		    "[0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
		    " [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} -0500\r\nS: s\r\n"),
		    "Date in the local zone (-0500)");
		free(got);
		message_free(&m);
	}
	unsetenv("TZ");
	tzset();
}

static void
test_dsn(void)
{
	static const struct {
		const char	*n, *r, *v;
		const char	*want_n, *want_r;
		const char	*msg;
	} t[] = {
		{ "success,delay", "hdrs", "abc-123", "SUCCESS,DELAY", "HDRS",
		    NULL },
		{ "FAILURE,success", "full", NULL, "SUCCESS,FAILURE", "FULL",
		    NULL },
		{ "never", "headers", NULL, "NEVER", "HDRS", NULL },
		{ "off", "off", NULL, NULL, NULL, NULL },
		{ "never,success", NULL, NULL, NULL, NULL, "invalid DSN "
		    "notify 'never,success': use never, or a comma list of "
		    "success, delay, failure" },
		{ "bogus", NULL, NULL, NULL, NULL, "invalid DSN notify "
		    "'bogus': use never, or a comma list of success, delay, "
		    "failure" },
		{ "success,", NULL, NULL, NULL, NULL, "invalid DSN notify "
		    "'success,': use never, or a comma list of success, delay, "
		    "failure" },
		{ NULL, "body", NULL, NULL, NULL, "invalid DSN return 'body': "
		    "use full or hdrs" },
		{ NULL, NULL, "a+b", NULL, NULL, "invalid DSN envelope id "
		    "'a+b': use 1 to 100 printable ASCII characters without "
		    "'+' or '='" },
		{ NULL, NULL, "a b", NULL, NULL, "invalid DSN envelope id "
		    "'a b': use 1 to 100 printable ASCII characters without "
		    "'+' or '='" },
		{ NULL, NULL, "", NULL, NULL, "invalid DSN envelope id '': "
		    "use 1 to 100 printable ASCII characters without '+' or "
		    "'='" },
	};
	struct cmdline	 cl;
	struct account	 ac;
	struct message	 m;
	struct error	 err;
	char		 name[128], id[120];
	size_t		 i;
	int		 rc;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		cl_init(&cl);
		acct_init(&ac);
		cl.dsn_notify = t[i].n;
		cl.dsn_return = t[i].r;
		cl.dsn_envid = t[i].v;
		snprintf(name, sizeof(name), "dsn %zu", i);
		rc = run("S: s\n\nb\n", &cl, &ac, &m, &err);
		if (t[i].msg == NULL) {
			CHECK_INT(rc, 0, name);
			CHECK_STR(m.dsn_notify, t[i].want_n, name);
			CHECK_STR(m.dsn_return, t[i].want_r, name);
			CHECK_STR(m.dsn_envid, t[i].v, name);
		} else {
			CHECK_INT(rc, -1, name);
			CHECK_INT(err.code, EX_USAGE, name);
			CHECK_STR(err.msg, t[i].msg, name);
		}
		message_free(&m);
	}
	cl_init(&cl);
	acct_init(&ac);
	ac.dsn_notify = "delay";
	ac.dsn_return = "hdrs";
	cl.dsn_notify = "never";
	if (run("S: s\n\nb\n", &cl, &ac, &m, &err) == 0) {
		CHECK_STR(m.dsn_notify, "NEVER", "-N wins over dsn_notify");
		CHECK_STR(m.dsn_return, "HDRS", "dsn_return from the account");
		message_free(&m);
	}
	cl.dsn_notify = NULL;
	ac.dsn_notify = "sometimes";
	check_error("S: s\n\nb\n", &cl, &ac, EX_CONFIG, "invalid DSN notify "
	    "'sometimes': use never, or a comma list of success, delay, "
	    "failure", "bad dsn_notify in the account");
	ac.dsn_notify = NULL;
	memset(id, 'e', 101);
	id[101] = '\0';
	cl.dsn_envid = id;
	CHECK_INT(run("S: s\n\nb\n", &cl, &ac, &m, &err), -1,
	    "101-character ENVID refused");
	id[100] = '\0';
	CHECK_INT(run("S: s\n\nb\n", &cl, &ac, &m, &err), 0,
	    "100-character ENVID accepted");
	message_free(&m);
}

static const char *
write_file(const char *name, const char *text)
{
	static char	 path[512];
	FILE		*fp;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	if ((fp = fopen(path, "w")) == NULL || fputs(text, fp) == EOF) {
		perror(path);
		exit(1);
	}
	fclose(fp);
	return path;
}

static void
test_aliases(void)
{
	static char	*r_root[] = { "root" };
	static char	*r_pm[] = { "postmaster@localhost" };
	static char	*r_mix[] = { "ROOT", "nobody", "bob@example.net",
	    "ops@example.net" };
	static char	*r_a[] = { "a" };
	static char	*r_a0[] = { "a0" };
	char		*r_host[1], hostaddr[300], path[512], msg[1024];
	char		 chain[8192];
	struct cmdline	 cl;
	struct account	 ac;
	size_t		 i, o;

	cl_init(&cl);
	acct_init(&ac);
	snprintf(path, sizeof(path), "%s", write_file("aliases",
	    "# system aliases\n"
	    "\n"
	    "root: admin, <ops@example.net>\n"
	    "  admin :Ann@example.com\n"
	    "postmaster: root\n"
	    "default: catchall@example.com\n"));
	ac.aliases = path;
	cl.rcpts = r_root;
	check_rcpts("S: s\n\nb\n", &cl, &ac, "Ann@example.com\n"
	    "ops@example.net", "alias expanded recursively");
	cl.rcpts = r_pm;
	check_rcpts("S: s\n\nb\n", &cl, &ac, "Ann@example.com\n"
	    "ops@example.net", "alias applies to @localhost");
	snprintf(hostaddr, sizeof(hostaddr), "root@%s", host);
	r_host[0] = hostaddr;
	cl.rcpts = r_host;
	check_rcpts("S: s\n\nb\n", &cl, &ac, "Ann@example.com\n"
	    "ops@example.net", "alias applies to this host's name");
	cl.rcpts = r_mix;
	cl.nrcpts = 4;
	check_rcpts("S: s\n\nb\n", &cl, &ac, "Ann@example.com\n"
	    "ops@example.net\ncatchall@example.com\nbob@example.net",
	    "case-insensitive, default:, foreign kept, duplicates removed");
	cl.nrcpts = 1;
	cl.read_rcpts = 1;
	cl.rcpts = NULL;
	cl.nrcpts = 0;
	check_spool("To: root\n\nb\n", &cl, &ac, "To: root\r\n\r\nb\r\n",
	    "aliases change the envelope only");
	cl.read_rcpts = 0;
	cl.nrcpts = 1;

	/* default: to a bare name is not expanded again. */
	ac.aliases = (char *)write_file("aliases2", "default: root\n");
	cl.rcpts = r_a;
	check_rcpts("S: s\n\nb\n", &cl, &ac, "root@example.org",
	    "default to a bare name, then maildomain");

	ac.aliases = (char *)write_file("loop", "a: b\nb: c, x@example.com\n"
	    "c: a\n");
	snprintf(msg, sizeof(msg), "alias loop in %s: a -> b -> c -> a: fix "
	    "the aliases file", ac.aliases);
	check_error("S: s\n\nb\n", &cl, &ac, EX_CONFIG, msg, "alias loop");

	/* 16 levels work, 17 do not. */
	for (o = i = 0; i < 16; i++)
		o += (size_t)snprintf(chain + o, sizeof(chain) - o,
		    "a%zu: a%zu\n", i, i + 1);
	snprintf(chain + o, sizeof(chain) - o, "a16: deep@example.com\n");
	cl.rcpts = r_a0;
	ac.aliases = (char *)write_file("deep17", chain);
	snprintf(msg, sizeof(msg), "alias loop in %s: deeper than 16 levels: "
	    "fix the aliases file", ac.aliases);
	check_error("S: s\n\nb\n", &cl, &ac, EX_CONFIG, msg, "17 levels");
	snprintf(chain + o - strlen("a15: a16\n"), sizeof(chain) - o,
	    "a15: deep@example.com\n");
	ac.aliases = (char *)write_file("deep16", chain);
	check_rcpts("S: s\n\nb\n", &cl, &ac, "deep@example.com",
	    "16 levels");

	cl.rcpts = r_root;
	ac.aliases = "/nonexistent/aliases";
	check_error("S: s\n\nb\n", &cl, &ac, EX_CONFIG, "cannot read the "
	    "aliases file /nonexistent/aliases: No such file or directory: "
	    "create it or fix the aliases directive", "missing aliases file");
	ac.aliases = (char *)write_file("bad1", "root: ok@example.com\n"
	    "admin: ok@example.com, bad address@example.com\n");
	snprintf(msg, sizeof(msg), "%s:2: invalid alias target "
	    "'bad address@example.com': whitespace is allowed only inside "
	    "quotes", ac.aliases);
	check_error("S: s\n\nb\n", &cl, &ac, EX_CONFIG, msg,
	    "bad alias target names file:line");
	ac.aliases = (char *)write_file("bad2", "root: a\x01" "b@x.test\n");
	snprintf(msg, sizeof(msg), "%s:1: invalid alias target 'a\\x01b@x."
	    "test': control characters are not allowed", ac.aliases);
	check_error("S: s\n\nb\n", &cl, &ac, EX_CONFIG, msg,
	    "control character in an alias target");
	ac.aliases = (char *)write_file("bad3", "root ops@example.com\n");
	snprintf(msg, sizeof(msg), "%s:1: expected 'name: address, ...'",
	    ac.aliases);
	check_error("S: s\n\nb\n", &cl, &ac, EX_CONFIG, msg,
	    "alias line without a colon");
}

/* The queue's spool file: written, owned by m on success only. */
static void
test_given_spool(void)
{
	struct cmdline	 cl;
	struct account	 ac;
	struct message	 m;
	struct error	 err;
	char		 buf[64];
	int		 in, sp;

	cl_init(&cl);
	acct_init(&ac);
	sp = memfd_create("spool", MFD_CLOEXEC);
	in = input_fd("S: s\n\nb\n", 8);
	CHECK_INT(message_read(in, sp, &cl, &ac, &m, &err), 0,
	    "given spool: read");
	close(in);
	CHECK_INT(m.fd, sp, "given spool: m->fd is it");
	memset(buf, 0, sizeof(buf));
	CHECK(pread(sp, buf, sizeof(buf) - 1, 0) == 11 &&
	    strcmp(buf, "S: s\r\n\r\nb\r\n") == 0, "given spool: content");
	message_free(&m);
	CHECK(fcntl(sp, F_GETFD) == -1, "given spool: message_free closed it");

	sp = memfd_create("spool", MFD_CLOEXEC);
	cl.nrcpts = 0;
	in = input_fd("S: s\n\nb\n", 8);
	CHECK_INT(message_read(in, sp, &cl, &ac, &m, &err), -1,
	    "given spool: failure");
	close(in);
	CHECK(fcntl(sp, F_GETFD) != -1 && m.fd == -1,
	    "given spool: still the caller's after a failure");
	close(sp);
}

static void
test_free(void)
{
	struct message	 m;

	memset(&m, 0, sizeof(m));
	m.fd = -1;
	message_free(&m);
	message_free(&m);
	CHECK_INT(m.fd, -1, "message_free twice is safe");
}

int
main(void)
{
	struct passwd	*pw;
	const char	*t = getenv("TMPDIR");

	signal(SIGPIPE, SIG_IGN);
	snprintf(tmpdir, sizeof(tmpdir), "%s/unit_message.XXXXXX",
	    t && *t ? t : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	if ((pw = getpwuid(getuid())) != NULL)
		snprintf(login, sizeof(login), "%s", pw->pw_name);
	gethostname(host, sizeof(host) - 1);

	test_big();		/* first: max RSS is lowest now */
	test_address_check();
	test_torture();
	test_line_endings();
	test_dot();
	test_long_lines();
	test_8bit_nul();
	test_8bit_far();
	test_cr_far();
	test_sender();
	test_recipients();
	test_bcc();
	test_header_shapes();
	test_from_header();
	test_date_msgid();
	test_dsn();
	test_aliases();
	test_given_spool();
	test_free();

	{
		char	 cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", tmpdir);
	}
	UNIT_DONE();
}

/* SPDX-License-Identifier: ISC */
/*
 * The queue: spool, commit, open, lock, defer, done, scan, corrupt
 * entries, directory safety, dead.letter and the mailq listing.  Every
 * test works in a fresh directory under TMPDIR.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "smarthost.h"
#include "tests/unit.h"

#define DATA	"From: alice@example.org\r\nSubject: hi\r\n\r\nhello\r\n"

static char	 top[256];	/* this run's directory */

/* A fresh directory for one test, and an account that uses it. */
static void
setup(struct account *a, const char *name)
{
	static char	 qdir[512], dead[512];

	snprintf(dead, sizeof(dead), "%s/%s", top, name);
	if (mkdir(dead, 0700) == -1)
		printf("# mkdir %s: %s\n", dead, strerror(errno));
	snprintf(qdir, sizeof(qdir), "%s/%s/queue", top, name);
	snprintf(dead, sizeof(dead), "%s/%s/dead.letter", top, name);
	memset(a, 0, sizeof(*a));
	a->name = "work";
	a->queue_dir = qdir;
	a->dead_letter = dead;
	a->queue_max_age = 5 * 86400;
}

/* Test plumbing that must not fail silently. */
static void
xwrite(int fd, const char *data, size_t len)
{
	if (write(fd, data, len) != (ssize_t)len)
		printf("# write: %s\n", strerror(errno));
}

static void
xread1(int fd)
{
	char	 c;

	if (read(fd, &c, 1) != 1)
		printf("# read: %s\n", strerror(errno));
}

static char *
slurp(const char *path, size_t *len)
{
	FILE	*fp;
	char	*buf;
	long	 n;

	*len = 0;
	if ((fp = fopen(path, "rb")) == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = calloc(1, (size_t)n + 1);
	*len = fread(buf, 1, (size_t)n, fp);
	fclose(fp);
	return buf;
}

static void
spit(const char *path, const char *data, size_t len, mode_t mode)
{
	int	 fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd == -1 || write(fd, data, len) != (ssize_t)len)
		printf("# cannot write %s: %s\n", path, strerror(errno));
	if (fd != -1)
		close(fd);
}

/* A message spooled with queue_spool, as message.c leaves it. */
static int
spool(const struct account *a, struct message *m, const char *data,
    size_t len)
{
	struct error	 e;
	static char	 r0[] = "bob@example.com", r1[] = "carol@example.net";
	static struct rcpt rcpts[2];

	free(rcpts[0].why);
	free(rcpts[1].why);
	memset(rcpts, 0, sizeof(rcpts));
	rcpts[0].addr = r0;
	rcpts[1].addr = r1;
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (queue_spool(a, &m->fd, &e) == -1) {
		printf("# queue_spool: %s\n", e.msg);
		return -1;
	}
	if (write(m->fd, data, len) != (ssize_t)len)
		return -1;
	m->size = (off_t)len;
	m->sender = "alice@example.org";
	m->rcpts = rcpts;
	m->nrcpts = 2;
	return 0;
}

/* An entry written by hand: data, the given trailer lines, last line. */
static void
entry_by_hand(const char *dir, const char *id, const char *data,
    const char *lines)
{
	char	 path[600], *buf;
	size_t	 len;

	snprintf(path, sizeof(path), "%s/%s", dir, id);
	len = strlen(data) + strlen(lines) + 128;
	buf = malloc(len);
	len = (size_t)snprintf(buf, len, "%sX-Smarthost-Envelope: 1\n%s"
	    "smarthost-queue-v1 size=%020zu\n", data, lines, strlen(data));
	spit(path, buf, len, 0600);
	free(buf);
}

/* Set a file's modification time SECS seconds back. */
static void
age_file(const char *path, time_t secs)
{
	struct timespec	 ts[2];

	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= secs;
	ts[1] = ts[0];
	if (utimensat(AT_FDCWD, path, ts, 0) == -1)
		printf("# utimensat %s: %s\n", path, strerror(errno));
}

static const char *
fmt(const char *f, ...)
{
	static char	 buf[4][4096];
	static int	 i;
	va_list		 ap;

	i = (i + 1) % 4;
	va_start(ap, f);
	vsnprintf(buf[i], sizeof(buf[i]), f, ap);
	va_end(ap);
	return buf[i];
}

/* What queue_open gave us: descriptor, envelope copies, entry. */
static void
release(struct qentry *q, struct message *m)
{
	size_t	 i;

	if (m->fd != -1)
		close(m->fd);
	free(m->sender);
	for (i = 0; i < m->nrcpts; i++) {
		free(m->rcpts[i].addr);
		free(m->rcpts[i].why);
	}
	free(m->rcpts);
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	qentry_free(q);
}

static long long
msec(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
exists(const char *path)
{
	struct stat	 st;

	return lstat(path, &st) == 0;
}

static void
test_commit_open(void)
{
	struct account	 a;
	struct message	 m, m2, m3;
	struct qentry	 q, q2, q3;
	struct error	 e;
	struct stat	 st;
	char		*buf, data[64];
	size_t		 len;
	time_t		 t0 = time(NULL);
	int		 rc;

	setup(&a, "commit");
	if (spool(&a, &m, DATA, strlen(DATA)) == -1)
		return;
	m.eightbit = 1;
	m.dsn_notify = "SUCCESS,FAILURE";
	m.dsn_return = "HDRS";
	m.dsn_envid = "abc123";
	CHECK_INT(queue_commit(&a, &m, &q, &e), 0, "commit: succeeds");
	CHECK_INT(strlen(q.id), QUEUE_ID_LEN, "commit: id length");
	CHECK(q.id[8] == 'T' && q.id[15] == '-', "commit: id shape");
	CHECK_STR(q.path, fmt("%s/%s", a.queue_dir, q.id), "commit: path");
	CHECK_INT(q.fd, m.fd, "commit: q->fd is m->fd");
	CHECK_STR(q.account, "work", "commit: account");
	CHECK(q.created >= t0 && q.created <= time(NULL), "commit: created");
	buf = slurp(q.path, &len);
	CHECK_STR(buf, fmt("%sX-Smarthost-Envelope: 1\naccount work\n"
	    "sender alice@example.org\nrcpt bob@example.com\n"
	    "rcpt carol@example.net\ndsn-notify SUCCESS,FAILURE\n"
	    "dsn-return HDRS\ndsn-envid abc123\neightbit 1\nsmtputf8 0\n"
	    "nul 0\ncreated %lld\n"
	    "smarthost-queue-v1 size=00000000000000000047\n", DATA,
	    (long long)q.created), "commit: file is data + trailer, exactly");
	free(buf);
	stat(q.path, &st);
	CHECK_INT(st.st_mode & 07777, 0600, "commit: file mode 0600");

	/* flock is per open file: our own second open sees the lock. */
	rc = queue_open(a.queue_dir, q.id, &q2, &m2, &e);
	CHECK_INT(rc, 1, "open: busy while the committer holds the lock");
	if (rc == 0)
		release(&q2, &m2);
	close(m.fd);
	rc = queue_open(a.queue_dir, q.id, &q2, &m2, &e);
	CHECK_INT(rc, 0, "open: succeeds once the lock is released");
	if (rc != 0)
		return;
	CHECK_STR(m2.sender, "alice@example.org", "open: sender");
	CHECK_INT(m2.nrcpts, 2, "open: nrcpts");
	CHECK_STR(m2.rcpts[0].addr, "bob@example.com", "open: rcpt 0");
	CHECK_STR(m2.rcpts[1].addr, "carol@example.net", "open: rcpt 1");
	CHECK(m2.rcpts[0].state == RCPT_PENDING && m2.rcpts[1].state ==
	    RCPT_PENDING, "open: no status yet: every recipient pending");
	CHECK_INT(m2.size, 47, "open: size");
	CHECK_INT(m2.eightbit, 1, "open: eightbit");
	CHECK_INT(m2.smtputf8, 0, "open: smtputf8");
	CHECK_INT(m2.has_nul, 0, "open: nul");
	CHECK_STR(m2.dsn_notify, "SUCCESS,FAILURE", "open: dsn notify");
	CHECK_STR(m2.dsn_return, "HDRS", "open: dsn return");
	CHECK_STR(m2.dsn_envid, "abc123", "open: dsn envid");
	CHECK_INT(m2.nchanges, 0, "open: no changes");
	CHECK_STR(q2.account, "work", "open: account");
	CHECK_INT(q2.created, q.created, "open: created");
	CHECK_INT(q2.attempts, 0, "open: no attempts yet");
	CHECK_STR(q2.id, q.id, "open: id");
	CHECK_INT(q2.fd, m2.fd, "open: q->fd is m->fd");
	memset(data, 0, sizeof(data));
	CHECK_INT(pread(m2.fd, data, sizeof(data), 0), sizeof(data),
	    "open: readable");
	CHECK(memcmp(data, DATA, 47) == 0, "open: data intact");
	CHECK_INT(queue_open(a.queue_dir, q2.id, &q3, &m3, &e), 1,
	    "open: a second open is busy");
	release(&q2, &m2);
	qentry_free(&q);
}

/* Another process holds the entry: we skip it, then get it. */
static void
test_lock_fork(void)
{
	struct account	 a;
	struct message	 m;
	struct qentry	 q;
	struct error	 e;
	char		 id[QUEUE_ID_LEN + 1], c;
	int		 go[2], held[2], status;
	pid_t		 pid;

	setup(&a, "fork");
	if (spool(&a, &m, DATA, strlen(DATA)) == -1 ||
	    queue_commit(&a, &m, &q, &e) == -1)
		return;
	snprintf(id, sizeof(id), "%s", q.id);
	close(m.fd);
	qentry_free(&q);
	if (pipe(go) == -1 || pipe(held) == -1)
		return;
	if ((pid = fork()) == 0) {
		struct message	 cm;
		struct qentry	 cq;

		if (queue_open(a.queue_dir, id, &cq, &cm, &e) != 0)
			_exit(1);
		xwrite(held[1], "x", 1);
		xread1(go[0]);
		_exit(0);
	}
	CHECK_INT(read(held[0], &c, 1), 1, "fork: child holds the entry");
	CHECK_INT(queue_open(a.queue_dir, id, &q, &m, &e), 1,
	    "fork: busy while another process sends it");
	xwrite(go[1], "x", 1);
	waitpid(pid, &status, 0);
	CHECK_INT(WEXITSTATUS(status), 0, "fork: child opened it");
	CHECK_INT(queue_open(a.queue_dir, id, &q, &m, &e), 0,
	    "fork: ours after the child exited");
	CHECK_INT(queue_done(&q), 0, "fork: done");
	release(&q, &m);
	CHECK_INT(queue_open(a.queue_dir, id, &q, &m, &e), 1,
	    "fork: a delivered entry is gone (1)");
	close(go[0]), close(go[1]), close(held[0]), close(held[1]);
}

static void
test_defer_done(void)
{
	struct account	 a;
	struct message	 m;
	struct qentry	 q;
	struct error	 e, why;
	char		*buf, spath[600];
	size_t		 len;
	time_t		 t0 = time(NULL), first;

	setup(&a, "defer");
	if (spool(&a, &m, DATA, strlen(DATA)) == -1 ||
	    queue_commit(&a, &m, &q, &e) == -1)
		return;
	snprintf(spath, sizeof(spath), "%s.status", q.path);
	memset(&why, 0, sizeof(why));
	snprintf(why.msg, sizeof(why.msg), "cannot connect to "
	    "relay.example.com port 465: Connection refused");
	CHECK_INT(queue_defer(&q, &m, &why, 0, &e), 0, "defer: succeeds");
	CHECK_INT(q.attempts, 1, "defer: attempts 1");
	CHECK(q.first >= t0 && q.first <= time(NULL), "defer: first set");
	CHECK_INT(q.last, q.first, "defer: last = first");
	CHECK_INT(q.next, 0, "defer: the relay never answered: no backoff");
	buf = slurp(spath, &len);
	CHECK_STR(buf, fmt("attempts 1\nfirst %lld\nlast %lld\nnext 0\n"
	    "error cannot connect to relay.example.com port 465: Connection "
	    "refused\n", (long long)q.first, (long long)q.first),
	    "defer: status file");
	free(buf);
	first = q.first;
	snprintf(why.msg, sizeof(why.msg), "the relay refused the sender "
	    "for now");
	snprintf(why.reply, sizeof(why.reply), "451 4.7.1 greylisted\n"
	    "451 4.7.1 come\tback later");
	/* One recipient served, one waiting with the relay's words. */
	rcpt_set(&m.rcpts[0], RCPT_SENT, NULL);
	rcpt_set(&m.rcpts[1], RCPT_DEFERRED, "450 4.2.0 mailbox\tbusy");
	CHECK_INT(queue_defer(&q, &m, &why, 1, &e), 0, "defer: again");
	CHECK(q.next == q.last + 600, "defer: the relay answered, second "
	    "failure: next try in 10 minutes");
	CHECK(queue_backoff(1) == 300 && queue_backoff(2) == 600 &&
	    queue_backoff(6) == 9600 && queue_backoff(7) == 14400 &&
	    queue_backoff(1000) == 14400, "backoff: 5 min doubling to 4 h");
	buf = slurp(spath, &len);
	CHECK(buf != NULL && strstr(buf, "\nrcpt 0 sent\nrcpt 1 deferred "
	    "450 4.2.0 mailbox busy\n") != NULL, "defer: recipients' states "
	    "written, one line each");
	free(buf);
	close(m.fd);
	qentry_free(&q);
	CHECK_INT(queue_open(a.queue_dir, fmt("%s", strrchr(spath, '/') + 1),
	    &q, &m, &e), -1, "defer: a status name is not an id");
	spath[strlen(spath) - 7] = '\0';
	CHECK_INT(queue_open(a.queue_dir, strrchr(spath, '/') + 1, &q, &m,
	    &e), 0, "defer: reopened");
	CHECK_INT(q.attempts, 2, "defer: attempts 2 read back");
	CHECK_INT(q.first, first, "defer: first kept");
	CHECK(q.last >= first, "defer: last read back");
	CHECK(q.next >= q.last + 300, "defer: next read back");
	CHECK_STR(q.error, "the relay refused the sender for now (relay "
	    "said: 451 4.7.1 greylisted 451 4.7.1 come back later)",
	    "defer: error is one sanitized line with the reply");
	CHECK(m.rcpts[0].state == RCPT_SENT, "defer: sent one read back");
	CHECK(m.rcpts[1].state == RCPT_DEFERRED && m.rcpts[1].why != NULL &&
	    strcmp(m.rcpts[1].why, "450 4.2.0 mailbox busy") == 0,
	    "defer: deferred one read back, with its reply");
	/* Refused for good, kept for its owner (a shared queue's case). */
	rcpt_set(&m.rcpts[1], RCPT_REFUSED, "550 5.1.1 gone");
	CHECK_INT(m.rcpts[1].unreported, 1, "refuse: owed to the owner");
	CHECK_INT(queue_defer(&q, &m, &why, 0, &e), 0, "refuse: succeeds");
	buf = slurp(fmt("%s.status", spath), &len);
	CHECK(buf != NULL && strstr(buf, "\nrcpt 1 unreported 550 5.1.1 "
	    "gone\n") != NULL && buf[len - 1] == '\n',
	    "refuse: status says unreported");
	free(buf);
	release(&q, &m);
	CHECK_INT(queue_open(a.queue_dir, strrchr(spath, '/') + 1, &q, &m,
	    &e), 0, "refuse: reopened");
	CHECK(m.rcpts[1].state == RCPT_REFUSED && m.rcpts[1].unreported,
	    "refuse: read back");
	CHECK_INT(q.attempts, 3, "refuse: counted as an attempt");
	CHECK_INT(q.shared, 0, "refuse: a private queue is not shared");
	CHECK_INT(q.owner, getuid(), "refuse: the owner is read");
	release(&q, &m);
	/* The first format: "refused 1" meant the whole message. */
	spit(fmt("%s.status", spath), "attempts 1\nfirst 1\nlast 1\nerror "
	    "x\nrefused 1\n", 44, 0600);
	CHECK_INT(queue_open(a.queue_dir, strrchr(spath, '/') + 1, &q, &m,
	    &e), 0, "legacy status: reopened");
	CHECK(m.rcpts[0].state == RCPT_REFUSED && m.rcpts[0].unreported &&
	    m.rcpts[1].state == RCPT_REFUSED && m.rcpts[1].unreported,
	    "legacy status: refused 1 is every recipient refused");
	CHECK_INT(q.next, 0, "legacy status: no next line, no backoff");
	CHECK_INT(queue_done(&q), 0, "done: succeeds");
	CHECK(!exists(spath), "done: entry removed");
	CHECK(!exists(fmt("%s.status", spath)), "done: status removed");
	release(&q, &m);
}

static void
test_scan(void)
{
	struct account	 a;
	struct error	 e;
	struct message	 m;
	struct qentry	 q;
	char		**ids;
	size_t		 n;
	const char	*lines = "account work\nsender a@b.c\nrcpt d@e.f\n"
	    "eightbit 0\nsmtputf8 0\nnul 0\ncreated 1700000000\n";

	setup(&a, "scan");
	CHECK_INT(queue_scan(a.queue_dir, &ids, &n, &e), 0,
	    "scan: a missing directory is an empty queue");
	CHECK_INT(n, 0, "scan: no entries");
	if (spool(&a, &m, "x", 1) == -1)	/* creates the directory */
		return;
	close(m.fd);
	entry_by_hand(a.queue_dir, "20261127T231500-000000000003", "x", lines);
	entry_by_hand(a.queue_dir, "20250101T000000-0000000000aa", "x", lines);
	entry_by_hand(a.queue_dir, "20261127T231500-000000000001", "x", lines);
	spit(fmt("%s/README", a.queue_dir), "hi\n", 3, 0600);
	spit(fmt("%s/.tmp-abc", a.queue_dir), "hi\n", 3, 0600);
	/* What killed runs left: a status written aside, a spool file. */
	spit(fmt("%s/.tmp-20261127T231500-000000000001.status", a.queue_dir),
	    "x", 1, 0600);
	age_file(fmt("%s/.tmp-20261127T231500-000000000001.status",
	    a.queue_dir), 601);
	spit(fmt("%s/.tmp-20261127T231500-000000000003.status", a.queue_dir),
	    "x", 1, 0600);
	age_file(fmt("%s/.tmp-20261127T231500-000000000003.status",
	    a.queue_dir), 30);
	spit(fmt("%s/.tmp-new-0badcafe", a.queue_dir), "x", 1, 0600);
	age_file(fmt("%s/.tmp-new-0badcafe", a.queue_dir), 86401);
	spit(fmt("%s/2026bad", a.queue_dir), "hi\n", 3, 0600);
	spit(fmt("%s/20261127T231500-000000000001.status", a.queue_dir),
	    "attempts 1\nfirst 1\nlast 1\nerror x\n", 34, 0600);
	spit(fmt("%s/20261127T231500-0000000000ff.status", a.queue_dir),
	    "attempts 1\nfirst 1\nlast 1\nerror x\n", 34, 0600);
	CHECK_INT(queue_scan(a.queue_dir, &ids, &n, &e), 0, "scan: succeeds");
	CHECK_INT(n, 3, "scan: three entries");
	if (n == 3) {
		CHECK_STR(ids[0], "20250101T000000-0000000000aa",
		    "scan: oldest first");
		CHECK_STR(ids[1], "20261127T231500-000000000001", "scan: 2nd");
		CHECK_STR(ids[2], "20261127T231500-000000000003", "scan: 3rd");
	}
	queue_ids_free(ids, n);
	CHECK(exists(fmt("%s/README", a.queue_dir)), "scan: foreign kept");
	CHECK(exists(fmt("%s/2026bad", a.queue_dir)), "scan: bad id kept");
	CHECK(exists(fmt("%s/.tmp-abc", a.queue_dir)), "scan: temp kept");
	CHECK(!exists(fmt("%s/.tmp-20261127T231500-000000000001.status",
	    a.queue_dir)), "scan: a status left aside 10 minutes ago goes");
	CHECK(exists(fmt("%s/.tmp-20261127T231500-000000000003.status",
	    a.queue_dir)), "scan: one being written now stays");
	CHECK(!exists(fmt("%s/.tmp-new-0badcafe", a.queue_dir)),
	    "scan: a spool file never committed goes after a day");
	CHECK(exists(fmt("%s/20261127T231500-000000000001.status",
	    a.queue_dir)), "scan: status kept");
	CHECK(!exists(fmt("%s/20261127T231500-0000000000ff.status",
	    a.queue_dir)), "scan: status without entry removed");
	CHECK_INT(queue_open(a.queue_dir, "../../etc/passwd", &q, &m, &e), -1,
	    "open: a path is not an id");
	CHECK_INT(queue_open(a.queue_dir, "20261127T231500-000000000009", &q,
	    &m, &e), 1, "open: a missing entry is gone (1)");
}

/* Each corrupt file: -1, the reason, and not one byte changed. */
static void
corrupt_case(const struct account *a, const char *id, const char *reason,
    const char *name)
{
	struct message	 m;
	struct qentry	 q;
	struct error	 e;
	struct stat	 st;
	char		*before, *after, path[600];
	size_t		 blen, alen;

	snprintf(path, sizeof(path), "%s/%s", a->queue_dir, id);
	before = slurp(path, &blen);
	memset(&e, 0, sizeof(e));
	CHECK_INT(queue_open(a->queue_dir, id, &q, &m, &e), -1,
	    fmt("corrupt %s: refused", name));
	CHECK_INT(e.code, 65, fmt("corrupt %s: code 65", name));
	CHECK_STR(e.msg, fmt("queue file %s/%s is corrupt (%s); it was left "
	    "alone: look at it, then delete it or move it out of the queue",
	    a->queue_dir, id, reason), fmt("corrupt %s: message", name));
	CHECK_INT(m.fd, -1, fmt("corrupt %s: m empty", name));
	CHECK(m.sender == NULL && m.rcpts == NULL, fmt("corrupt %s: m freed",
	    name));
	after = slurp(path, &alen);
	CHECK(after != NULL && alen == blen && memcmp(before, after, blen) ==
	    0, fmt("corrupt %s: file unchanged", name));
	CHECK(stat(path, &st) == 0 && st.st_nlink == 1, fmt("corrupt %s: "
	    "still there", name));
	free(before);
	free(after);
}

static void
test_corrupt(void)
{
	struct account	 a;
	struct message	 m;
	struct qentry	 q;
	struct error	 e;
	char		*big, path[600], *buf;
	size_t		 i, len;
	const char	*tail = "eightbit 0\nsmtputf8 0\nnul 0\ncreated 1\n";

	setup(&a, "corrupt");
	if (spool(&a, &m, "x", 1) == -1)
		return;
	close(m.fd);
	entry_by_hand(a.queue_dir, "20260101T000000-000000000001", DATA,
	    fmt("account work\nsender a@b.c\nrcpt d@e.f\n%s", tail));
	snprintf(path, sizeof(path), "%s/20260101T000000-000000000001",
	    a.queue_dir);
	buf = slurp(path, &len);
	spit(path, buf, len - 10, 0600);
	free(buf);
	corrupt_case(&a, "20260101T000000-000000000001",
	    "the last line is not \"smarthost-queue-v1 size=N\"", "cut");

	entry_by_hand(a.queue_dir, "20260101T000000-000000000002", DATA,
	    fmt("account work\nsender a@b.c\nrcpt d@e.f\nMAIL FROM:<x>\n%s",
	    tail));
	corrupt_case(&a, "20260101T000000-000000000002",
	    "bad or missing eightbit, smtputf8 or nul line", "injected line");
	entry_by_hand(a.queue_dir, "20260101T000000-000000000003", DATA,
	    fmt("account work\nsender a@b.c\nrcpt d@e\r.f\n%s", tail));
	corrupt_case(&a, "20260101T000000-000000000003", "a recipient is "
	    "empty, too long or has control characters", "CR in address");

	big = malloc(1001 * 16 + 200);
	len = (size_t)sprintf(big, "account work\nsender a@b.c\n");
	for (i = 0; i < 1000; i++)
		len += (size_t)sprintf(big + len, "rcpt u%zu@e.f\n", i);
	strcpy(big + len, tail);
	entry_by_hand(a.queue_dir, "20260101T000000-000000000004", DATA, big);
	CHECK_INT(queue_open(a.queue_dir, "20260101T000000-000000000004", &q,
	    &m, &e), 0, "corrupt: 1000 recipients are fine");
	CHECK_INT(m.nrcpts, 1000, "corrupt: 1000 read");
	release(&q, &m);
	sprintf(big + len, "rcpt one@too.many\n%s", tail);
	entry_by_hand(a.queue_dir, "20260101T000000-000000000005", DATA, big);
	corrupt_case(&a, "20260101T000000-000000000005",
	    "more than 1000 recipients", "1001 recipients");
	free(big);

	snprintf(path, sizeof(path), "%s/20260101T000000-000000000006",
	    a.queue_dir);
	buf = strdup(fmt("%sX-Smarthost-Envelope: 1\naccount work\nsender "
	    "a@b.c\nrcpt d@e.f\n%ssmarthost-queue-v1 size=99999999999999999999"
	    "\n", DATA, tail));
	spit(path, buf, strlen(buf), 0600);
	corrupt_case(&a, "20260101T000000-000000000006", "the size in the "
	    "last line is not a number that fits the file", "absurd size");
	memcpy(strstr(buf, "size=") + 5, "00000000000000000300", 20);
	spit(path, buf, strlen(buf), 0600);
	corrupt_case(&a, "20260101T000000-000000000006", "the size in the "
	    "last line is not a number that fits the file", "size > file");
	memcpy(strstr(buf, "size=") + 5, "00000000000000000050", 20);
	spit(path, buf, strlen(buf), 0600);
	corrupt_case(&a, "20260101T000000-000000000006", "it does not start "
	    "with \"X-Smarthost-Envelope: 1\"", "size off by one");
	free(buf);

	entry_by_hand(a.queue_dir, "20260101T000000-000000000007", DATA,
	    fmt("account work\nsender a@b.c\nrcpt d@e.f\n%s", tail));
	spit(fmt("%s/20260101T000000-000000000007.status", a.queue_dir),
	    "attempts 1\nfirst x\nlast 1\nerror y\n", 34, 0600);
	corrupt_case(&a, "20260101T000000-000000000007", "its status file "
	    "cannot be read, is too large or is garbled", "status");
	spit(fmt("%s/20260101T000000-000000000007.status", a.queue_dir),
	    "attempts 1\nfirst 1\nlast 1\nerror y\nrefused 2\n", 44, 0600);
	corrupt_case(&a, "20260101T000000-000000000007", "its status file "
	    "cannot be read, is too large or is garbled", "refused 2");
	spit(fmt("%s/20260101T000000-000000000007.status", a.queue_dir),
	    "attempts 1\nfirst 1\nlast 1\nnext 0\nerror y\nrcpt 1 sent\n",
	    52, 0600);
	corrupt_case(&a, "20260101T000000-000000000007", "its status file "
	    "cannot be read, is too large or is garbled", "rcpt out of range");
	spit(fmt("%s/20260101T000000-000000000007.status", a.queue_dir),
	    "attempts 1\nfirst 1\nlast 1\nnext 0\nerror y\nrcpt 0 sent\n"
	    "rcpt 0 refused\n", 67, 0600);
	corrupt_case(&a, "20260101T000000-000000000007", "its status file "
	    "cannot be read, is too large or is garbled", "rcpt twice");
	spit(fmt("%s/20260101T000000-000000000007.status", a.queue_dir),
	    "attempts 1\nfirst 1\nlast 1\nnext 0\nerror y\nrcpt 0 gone\n",
	    52, 0600);
	corrupt_case(&a, "20260101T000000-000000000007", "its status file "
	    "cannot be read, is too large or is garbled", "unknown state");
}

static void
test_dir_safety(void)
{
	struct account	 a;
	struct error	 e;
	struct stat	 st;
	char		 real[600], link[600], deep[600], parent[600], **ids;
	char		 other[700];
	size_t		 n;
	int		 fd;

	setup(&a, "safety");
	snprintf(real, sizeof(real), "%s/safety/real", top);
	snprintf(link, sizeof(link), "%s/safety/link", top);
	mkdir(real, 0700);
	CHECK_INT(symlink(real, link), 0, "safety: setup");
	a.queue_dir = link;
	CHECK_INT(queue_spool(&a, &fd, &e), -1, "safety: symlink refused");
	CHECK_INT(e.code, 78, "safety: symlink is 78");
	CHECK_STR(e.msg, fmt("queue directory %s is a symbolic link, which "
	    "is never followed: set queue_dir to the real directory", link),
	    "safety: symlink message");
	snprintf(other, sizeof(other), "%s/", link);
	a.queue_dir = other;
	CHECK_INT(queue_spool(&a, &fd, &e), -1,
	    "safety: symlink with a trailing slash refused");

	chmod(real, 0770);
	a.queue_dir = real;
	CHECK_INT(queue_spool(&a, &fd, &e), -1, "safety: group-writable");
	CHECK_INT(e.code, 78, "safety: group-writable is 78");
	CHECK_STR(e.msg, fmt("queue directory %s can be written by others "
	    "(mode 770): run chmod go-w %s", real, real),
	    "safety: group-writable message");
	chmod(real, 0702);
	CHECK_INT(queue_spool(&a, &fd, &e), -1, "safety: other-writable");
	chmod(real, 0755);
	CHECK_INT(queue_spool(&a, &fd, &e), 0, "safety: 0755 is fine");
	close(fd);
	if (geteuid() == 0) {
		CHECK_INT(chown(real, 65534, 65534), 0, "safety: chown");
		CHECK_INT(queue_spool(&a, &fd, &e), -1,
		    "safety: another owner refused");
		CHECK_STR(e.msg, fmt("queue directory %s belongs to uid "
		    "65534, not to you (uid 0): chown it or set queue_dir "
		    "to a directory of your own", real),
		    "safety: owner message");
		CHECK_INT(chown(real, 0, 0), 0, "safety: chown back");
	}
	snprintf(other, sizeof(other), "%s/safety/file", top);
	a.queue_dir = other;
	spit(a.queue_dir, "x", 1, 0600);
	CHECK_INT(queue_spool(&a, &fd, &e), -1, "safety: a file refused");
	CHECK_INT(e.code, 78, "safety: a file is 78");

	umask(022);
	snprintf(parent, sizeof(parent), "%s/safety/a", top);
	snprintf(deep, sizeof(deep), "%s/safety/a/b/c", top);
	a.queue_dir = deep;
	CHECK_INT(queue_spool(&a, &fd, &e), 0, "safety: parents created");
	close(fd);
	CHECK(stat(parent, &st) == 0 && (st.st_mode & 07777) == 0700,
	    "safety: parent made 0700");
	CHECK(stat(deep, &st) == 0 && (st.st_mode & 07777) == 0700,
	    "safety: queue dir made 0700");
	CHECK_INT(queue_scan(link, &ids, &n, &e), -1,
	    "safety: scan refuses a symlink");
	CHECK_INT(n, 0, "safety: nothing scanned");
}

/* The other ways a spool file can reach queue_commit. */
static void
test_commit_paths(void)
{
	struct account	 a;
	struct message	 m, m2;
	struct qentry	 q, q2;
	struct error	 e;
	struct stat	 st;
	char		 tmp[600], name[600];
	static char	 bad[] = "bob@example.com\r\nDATA";
	char		*good;
	int		 fd;

	setup(&a, "paths");
	if (spool(&a, &m, "x", 1) == -1)
		return;
	close(m.fd);

	/* The no-O_TMPFILE fallback: DIR/.tmp-INODE. */
	snprintf(tmp, sizeof(tmp), "%s/.tmp-new", a.queue_dir);
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL, 0600);
	fstat(fd, &st);
	snprintf(name, sizeof(name), "%s/.tmp-%llx", a.queue_dir,
	    (unsigned long long)st.st_ino);
	rename(tmp, name);
	spool(&a, &m, DATA, 0);
	close(m.fd);
	m.fd = fd;
	xwrite(fd, DATA, strlen(DATA));
	m.size = (off_t)strlen(DATA);
	CHECK_INT(queue_commit(&a, &m, &q, &e), 0, "paths: .tmp-INODE");
	CHECK(!exists(name), "paths: .tmp-INODE renamed");
	CHECK(stat(q.path, &st) == 0 && st.st_nlink == 1,
	    "paths: .tmp-INODE entry");
	close(m.fd);
	CHECK_INT(queue_open(a.queue_dir, q.id, &q2, &m2, &e), 0,
	    "paths: .tmp-INODE reads back");
	release(&q2, &m2);
	qentry_free(&q);

	/* Named, then unlinked (mkstemp + unlink): copied. */
	snprintf(tmp, sizeof(tmp), "%s/paths/old", top);
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL, 0600);
	unlink(tmp);
	xwrite(fd, DATA, strlen(DATA));
	m.fd = fd;
	CHECK_INT(queue_commit(&a, &m, &q, &e), 0, "paths: unlinked file");
	CHECK_INT(m.fd, fd, "paths: same descriptor number");
	CHECK(fstat(m.fd, &st) == 0 && st.st_nlink == 1,
	    "paths: descriptor is the queued copy");
	close(m.fd);
	CHECK_INT(queue_open(a.queue_dir, q.id, &q2, &m2, &e), 0,
	    "paths: copy reads back");
	CHECK_INT(m2.size, strlen(DATA), "paths: copy size");
	release(&q2, &m2);
	qentry_free(&q);

	/* Another file system (tmpfs): copied too. */
	if ((fd = open("/dev/shm", O_TMPFILE | O_RDWR, 0600)) == -1) {
		printf("skip - paths: no O_TMPFILE on /dev/shm\n");
		return;
	}
	xwrite(fd, DATA, strlen(DATA));
	m.fd = fd;
	CHECK_INT(queue_commit(&a, &m, &q, &e), 0, "paths: other fs");
	CHECK(fstat(m.fd, &st) == 0 && st.st_nlink == 1 &&
	    stat(q.path, &st) == 0, "paths: other fs queued");
	CHECK((fcntl(m.fd, F_GETFD) & FD_CLOEXEC) != 0,
	    "paths: the copy keeps close-on-exec (no passwordeval child "
	    "inherits the queue file)");
	close(m.fd);
	qentry_free(&q);

	good = m.rcpts[0].addr;
	m.rcpts[0].addr = bad;
	CHECK_INT(queue_spool(&a, &m.fd, &e), 0, "paths: spool");
	CHECK_INT(queue_commit(&a, &m, &q, &e), -1,
	    "paths: CRLF in an address is not queued");
	CHECK_INT(e.code, 70, "paths: that is an internal error");
	close(m.fd);
	m.rcpts[0].addr = good;
}

static void
test_dead_letter(void)
{
	struct account	 a;
	struct message	 m;
	struct error	 e, why;
	struct stat	 st;
	struct tm	 tm;
	char		*buf, d0[64], d1[64], target[600];
	const char	*want, *data = "From: alice@example.org\r\nSubject: hi"
	    "\r\n\r\nFrom the start\r\n>From quoted\r\n>>From more\r\n"
	    ">x\r\nFrom\r\nplain\r\nbare\rcr\r\nFrom ";
	size_t		 len;
	time_t		 t0, t1;
	int		 p[2], fd, status;
	long long	 ms;
	pid_t		 pid;

	setenv("TZ", "UTC", 1);
	tzset();
	setup(&a, "dead");
	if (spool(&a, &m, data, strlen(data)) == -1)
		return;
	memset(&why, 0, sizeof(why));
	snprintf(why.msg, sizeof(why.msg), "the relay refused recipient "
	    "bob@example.com");
	snprintf(why.reply, sizeof(why.reply), "550 5.1.1 no such\nuser");
	t0 = time(NULL);
	CHECK_INT(queue_dead_letter(&a, &m, &why, NULL, &e), 0, "dead: written");
	t1 = time(NULL);
	strftime(d0, sizeof(d0), "%a %b %e %H:%M:%S %Y", gmtime_r(&t0, &tm));
	strftime(d1, sizeof(d1), "%a %b %e %H:%M:%S %Y", gmtime_r(&t1, &tm));
	want = "\nX-Smarthost-Error: the relay refused recipient "
	    "bob@example.com (relay said: 550 5.1.1 no such user)\n"
	    "From: alice@example.org\nSubject: hi\n\n>From the start\n"
	    ">>From quoted\n>>>From more\n>x\nFrom\nplain\nbare\rcr\n"
	    ">From \n\n";
	buf = slurp(a.dead_letter, &len);
	CHECK(buf != NULL && (strcmp(buf, fmt("From alice@example.org %s%s",
	    d0, want)) == 0 || strcmp(buf, fmt("From alice@example.org %s%s",
	    d1, want)) == 0), "dead: mbox bytes exact");
	if (buf != NULL && strncmp(buf + 23 + strlen(d0), want, 20) != 0)
		printf("# got:\n%s# want:\n%s\n", buf, want);
	stat(a.dead_letter, &st);
	CHECK_INT(st.st_mode & 07777, 0600, "dead: mode 0600");

	/* A second one appends; null sender; no final newline. */
	close(m.fd);
	spool(&a, &m, "x", 1);
	m.sender = "";
	memset(&why, 0, sizeof(why));
	snprintf(why.msg, sizeof(why.msg), "too old");
	free(buf);
	t0 = time(NULL);
	queue_dead_letter(&a, &m, &why, NULL, &e);
	strftime(d0, sizeof(d0), "%a %b %e %H:%M:%S %Y", gmtime_r(&t0, &tm));
	buf = slurp(a.dead_letter, &len);
	CHECK(buf != NULL && strstr(buf, fmt("\n\nFrom MAILER-DAEMON %s\n"
	    "X-Smarthost-Error: too old\nx\n\n", d0)) != NULL &&
	    strncmp(buf, "From alice@example.org ", 23) == 0,
	    "dead: appended, MAILER-DAEMON, newline added");
	free(buf);

	/* Held by a mail reader for 300 ms: we wait, then write. */
	if (pipe(p) == -1)
		return;
	if ((pid = fork()) == 0) {
		fd = open(a.dead_letter, O_RDONLY);
		flock(fd, LOCK_EX);
		xwrite(p[1], "x", 1);
		usleep(300000);
		_exit(0);
	}
	xread1(p[0]);
	ms = msec();
	CHECK_INT(queue_dead_letter(&a, &m, &why, NULL, &e), 0,
	    "dead: written after the lock is released");
	CHECK(msec() - ms >= 250, "dead: waited for the lock");
	waitpid(pid, &status, 0);
	close(p[0]), close(p[1]);

	snprintf(target, sizeof(target), "%s/dead/target", top);
	spit(target, "keep\n", 5, 0600);
	unlink(a.dead_letter);
	CHECK_INT(symlink(target, a.dead_letter), 0, "dead: setup symlink");
	CHECK_INT(queue_dead_letter(&a, &m, &why, NULL, &e), -1,
	    "dead: a symlink is not followed");
	CHECK_INT(e.code, 74, "dead: symlink is 74");
	CHECK_STR(e.msg, fmt("cannot write dead.letter file %s: it is a "
	    "symbolic link, which is never followed: fix it or set "
	    "dead_letter", a.dead_letter), "dead: symlink message");
	buf = slurp(target, &len);
	CHECK_STR(buf, "keep\n", "dead: symlink target untouched");
	free(buf);
	close(m.fd);
}

static void
test_list(void)
{
	struct account	 a;
	struct message	 m;
	char		*out = NULL;
	size_t		 len = 0;
	FILE		*fp;
	int		 fd;
	const time_t	 now = 1795000000;

	setup(&a, "list");
	fp = open_memstream(&out, &len);
	queue_list_at(fp, a.queue_dir, 80, now);
	fclose(fp);
	CHECK_STR(out, "Mail queue is empty\n", "list: missing directory");
	free(out);
	if (spool(&a, &m, "x", 1) == -1)
		return;
	close(m.fd);
	fp = open_memstream(&out, &len);
	queue_list_at(fp, a.queue_dir, 0, now);
	fclose(fp);
	CHECK_STR(out, "Mail queue is empty\n", "list: empty directory");
	free(out);

	entry_by_hand(a.queue_dir, "20261119T081320-00000000000a", DATA,
	    "account work\nsender cron@example.org\nrcpt ops@example.com\n"
	    "rcpt oncall@example.com\neightbit 0\nsmtputf8 0\nnul 0\n"
	    "created 1794999820\n");
	spit(fmt("%s/20261119T081320-00000000000a.status", a.queue_dir),
	    "attempts 3\nfirst 1794999821\nlast 1794999940\nerror cannot "
	    "connect to relay.example.com port 465: Connection refused\n",
	    115, 0600);
	entry_by_hand(a.queue_dir, "20261118T000000-00000000000b",
	    "Subject: big\r\n\r\n", "account work\nsender \n"
	    "rcpt x@example.com\neightbit 0\nsmtputf8 0\nnul 0\n"
	    "created 1794820000\n");
	fd = open(fmt("%s/20261118T000000-00000000000b", a.queue_dir),
	    O_RDONLY);
	flock(fd, LOCK_EX);
	fp = open_memstream(&out, &len);
	queue_list_at(fp, a.queue_dir, 0, now);
	fclose(fp);
	CHECK_STR(out,
	    "-Queue ID-------------------- --Size-- -Age-  -Sender/Recipient-"
	    "------\n"
	    "20261118T000000-00000000000b*       16    2d  <>\n"
	    "                                              x@example.com\n"
	    "  (being sent now)\n"
	    "\n"
	    "20261119T081320-00000000000a        47    3m  cron@example.org\n"
	    "                                              ops@example.com\n"
	    "                                              oncall@example.com"
	    "\n"
	    "  (3 attempts, last 1m ago, next try at the next run: cannot "
	    "connect to relay.example.com port 465: Connection refused)\n"
	    "\n"
	    "-- 1 kB in 2 messages\n", "list: two entries, exactly");
	free(out);
	fp = open_memstream(&out, &len);
	queue_list_at(fp, a.queue_dir, 60, now);
	fclose(fp);
	CHECK_STR(out,
	    "-Queue ID-------------------- --Size-- -Age-  -Sender/Rec...\n"
	    "20261118T000000-00000000000b*       16    2d  <>\n"
	    "                                              x@example.com\n"
	    "  (being sent now)\n"
	    "\n"
	    "20261119T081320-00000000000a        47    3m  cron@exampl...\n"
	    "                                              ops@example...\n"
	    "                                              oncall@exam...\n"
	    "  (3 attempts, last 1m ago, next try at the next run: can...\n"
	    "\n"
	    "-- 1 kB in 2 messages\n", "list: lines cut to the width");
	free(out);
	close(fd);
}

static void
test_expired(void)
{
	struct account	 a;
	struct qentry	 q;

	setup(&a, "expired");
	memset(&q, 0, sizeof(q));
	q.created = time(NULL) - 6 * 86400;
	CHECK_INT(queue_expired(&a, &q), 1, "expired: queued 6 days ago");
	q.first = time(NULL) - 86400;
	CHECK_INT(queue_expired(&a, &q), 0, "expired: first try 1 day ago");
	q.first = time(NULL) - 5 * 86400 - 10;
	CHECK_INT(queue_expired(&a, &q), 1, "expired: just over 5 days");
	q.first = time(NULL) - 5 * 86400 + 10;
	CHECK_INT(queue_expired(&a, &q), 0, "expired: just under 5 days");
	a.queue_max_age = 0;
	q.first = 1;
	CHECK_INT(queue_expired(&a, &q), 0, "expired: max age 0 = never");
}

int
main(void)
{
	const char	*tmp = getenv("TMPDIR");

	snprintf(top, sizeof(top), "%s/unit_queue.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(top) == NULL) {
		printf("not ok - mkdtemp %s: %s\n", top, strerror(errno));
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);	/* all of it, even on a crash */
	test_commit_open();
	test_lock_fork();
	test_defer_done();
	test_scan();
	test_corrupt();
	test_dir_safety();
	test_commit_paths();
	test_dead_letter();
	test_list();
	test_expired();
	if (unit_failed == 0 && system(fmt("rm -rf '%s'", top)) != 0)
		printf("# could not remove %s\n", top);
	UNIT_DONE();
}

/* SPDX-License-Identifier: ISC */
/*
 * The queue: messages kept for a later try, dead.letter for the ones the
 * relay refused for good, and the mailq listing.
 *
 * A queue entry is one immutable file DIR/ID: the message data exactly
 * as spooled (m->size octets), then an envelope trailer of text lines
 * ending in a fixed-size line that gives the data size, so a reader
 * starts from the end.  DIR/ID.status (attempts, times, last error) is
 * replaced atomically after each failed attempt.  The spool file is
 * created in the queue directory itself (O_TMPFILE), so committing is
 * one linkat(2): a kill at any moment leaves the message either in the
 * queue or not yet accepted from the caller, never half written.  A
 * message being sent is flock'ed, so two runs never send it twice.
 *
 * In a setgid install the system queue is shared: root:smarthost 2770,
 * its files 0640 in the group, opened with the group raised (priv.c).
 * A user's runs send only the user's own entries, root's send all; a
 * message root's run finds refused for good is not put into root's
 * dead.letter: it is marked refused and its owner's next run moves it
 * to theirs.
 *
 * Where O_TMPFILE is missing, queue_spool creates DIR/.tmp-INODE (the
 * file's own inode number in hex), so queue_commit finds the name again
 * from the descriptor alone, with no table of open files.
 */
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "smarthost.h"

#define TRAILER_MAGIC	"X-Smarthost-Envelope: 1\n"
#define LASTLINE_FMT	"smarthost-queue-v1 size=%020lld\n"
#define LASTLINE_LEN	45		/* strlen of LASTLINE_FMT, printed */
#define TRAILER_MAX	(RCPT_MAX * (ADDR_MAX + 8) + 4096)
#define STATUS_MAX	(RCPT_MAX * (WHY_MAX + 32) + 4096) /* ID.status */
#define WHY_MAX		300		/* a recipient's reason, kept */
#define ERROR_TEXT_MAX	900		/* a reason kept in status, mbox */
#define NAME_MAX_LEN	255		/* account name */
#define ENVID_MAX_LEN	100		/* RFC 3461 ENVID */
#define ATTEMPTS_MAX	1000000
#define SCAN_MAX	100000		/* entries one run looks at */
#define LINK_TRIES	16		/* fresh IDs tried on a clash */
#define LOCK_WAIT_MS	10000		/* dead.letter held by another */
#define TMP_PREFIX	".tmp-"
#define STATUS_SUFFIX	".status"
#define COPY_BUF	65536
#define STALE_STATUS	600		/* a .tmp-ID.status, in seconds */
#define RESERVE_PART	20		/* 1/20 of the file system kept free */
#define RESERVE_MAX	(1024LL * 1024 * 1024)	/* ... but at most 1 GiB */
#define USER_MSGS_MAX	100		/* a user's share of the system queue */
#define USER_BYTES_MAX	(256LL * 1024 * 1024)
#define STALE_SPOOL	86400		/* an uncommitted spool file */

static int	 shared_refused(const struct account *, int, struct error *);
static int	 queue_room(int, const char *, int, off_t, struct error *);
static int	 user_share(int, off_t, size_t *, long long *);
static int	 dir_open(const char *, int, int *, int *, struct error *);
static void	 dir_close(int);
static int	 dir_check(int, const char *, int, int *, struct error *);
static int	 spool_create(int, const char *, int, struct error *);
static int	 spool_linkable(int, int);
static int	 spool_copy(int, const char *, int, struct message *,
		    struct error *);
static int	 trailer_write(const struct account *, const struct message *,
		    time_t, struct error *);
static int	 value_ok(const char *, size_t, int);
static const char *dsn_notify_value(const char *);
static const char *dsn_return_value(const char *);
static void	 queue_id(char *, size_t);
static int	 entry_link(int, int, const char *, char *, struct error *);
static void	 reason_clean(char *);
static void	 reason_line(char *, size_t, const struct error *);
static int	 status_write(int, struct qentry *, const struct message *,
		    struct error *);
static int	 status_rcpt(char *, struct message *, unsigned char *);
static int	 dead_letter_lock(int);
static int	 dead_letter_write(FILE *, const struct message *,
		    const struct error *, const char *, time_t);
struct mbox;
static void	 mbox_flush_prefix(struct mbox *, int);
static void	 mbox_quote(struct mbox *, int);
static void	 mbox_byte(struct mbox *, int);
static int	 mbox_body(FILE *, const struct message *);
static int	 scan_fd(int, const char *, char ***, size_t *,
		    struct error *);
static int	 scan_ours(int, const char *);
static void	 scan_stale(int, const char *);
static int	 scan_compare(const void *, const void *);
static int	 id_valid(const char *);
static int	 dir_open_raised(const char *, int, int *, int *,
		    struct error *);
static int	 entry_read(int, const char *, const char *, int, int,
		    struct qentry *, struct message *, const char **);
static int	 trailer_read(int, off_t, struct qentry *, struct message *,
		    const char **);
static int	 trailer_parse(char *, struct qentry *, struct message *,
		    const char **);
static char	*line_take(char **, const char *);
static int	 number_parse(const char *, long long, long long *);
static int	 status_read(int, const char *, struct qentry *,
		    struct message *, const char **);
static int	 status_legacy(char **, struct message *);
static ssize_t	 read_all(int, char *, size_t);
static void	 message_clear(struct message *);
static void	 list_entry(FILE *, int, int, int, const char *, const char *,
		    time_t, long long *, size_t *, size_t *);
static void	 list_rcpt(FILE *, int, const struct rcpt *);
static void	 list_status(FILE *, int, const struct qentry *,
		    const struct message *, int, time_t);
static void	 list_line(FILE *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static void	 age_string(char *, size_t, time_t);

/*
 * The spool file for a new message, in the queue directory so that
 * queue_commit can link it there without copying a byte.
 */
int
queue_spool(const struct account *a, int *fd, struct error *e)
{
	int	 dfd, shared;

	if (dir_open(a->queue_dir, 1, &dfd, &shared, e) != 0)
		return -1;
	if (shared_refused(a, shared, e) == -1 ||
	    queue_room(dfd, a->queue_dir, shared, 0, e) == -1) {
		dir_close(dfd);
		return -1;
	}
	*fd = spool_create(dfd, a->queue_dir, shared, e);
	dir_close(dfd);
	return *fd == -1 ? -1 : 0;
}

/*
 * In a setgid run the shared queue takes only mail of the system file's
 * accounts, and theirs only there: root's runs send it with the system
 * account, and a user's own account of the same name must not be
 * mistaken for it.
 */
static int
shared_refused(const struct account *a, int shared, struct error *e)
{
	if (!priv_restricted() || shared == a->system)
		return 0;
	if (a->system)
		return error_set(e, EX_CONFIG, "account %s of the system file "
		    "queues in %s, which is not the system queue %s: in a "
		    "setgid install its mail waits only there", a->name,
		    a->queue_dir, config_system_queue());
	return error_set(e, EX_CONFIG, "the system queue %s takes only mail "
	    "of the system file's accounts, not of account %s: set "
	    "queue_dir to a directory of your own", a->queue_dir, a->name);
}

/*
 * Room for a message of SIZE octets: its file system keeps a reserve
 * (the rest of the machine needs it too, and a full disk is how queues
 * lose mail), and in the shared queue of a setgid install each user has
 * a share, so that one user's mail cannot crowd out everyone's.
 */
static int
queue_room(int dfd, const char *dir, int shared, off_t size,
    struct error *e)
{
	struct statvfs	 vfs;
	long long	 avail, reserve, bytes;
	size_t		 n;

	if (fstatvfs(dfd, &vfs) == 0 && vfs.f_frsize > 0) {
		avail = (long long)vfs.f_bavail * (long long)vfs.f_frsize;
		reserve = (long long)vfs.f_blocks * (long long)vfs.f_frsize /
		    RESERVE_PART;
		if (reserve > RESERVE_MAX)
			reserve = RESERVE_MAX;
		if (avail - (long long)size < reserve)
			return error_set(e, EX_IOERR, "the file system of "
			    "queue directory %s is nearly full (%lld kB free, "
			    "%lld kB are kept free): free space there",
			    dir, avail / 1024, reserve / 1024);
	}
	if (!shared || !priv_restricted())
		return 0;
	if (user_share(dfd, size, &n, &bytes) == -1)
		return error_set(e, EX_IOERR, "cannot read the system queue "
		    "%s: %s", dir, strerror(errno));
	if (n >= USER_MSGS_MAX || bytes > USER_BYTES_MAX)
		return error_set(e, EX_IOERR, "your share of the system queue "
		    "%s is full (%zu messages, %lld kB; a user may keep %d "
		    "messages and %lld MB there): let them be sent first "
		    "(sendmail -q)", dir, n, bytes / 1024, USER_MSGS_MAX,
		    USER_BYTES_MAX / (1024 * 1024));
	return 0;
}

/* The caller's entries in the directory, and their octets plus SIZE. */
static int
user_share(int dfd, off_t size, size_t *n, long long *bytes)
{
	struct dirent	*de;
	struct stat	 st;
	DIR		*d;
	int		 fd;

	*n = 0;
	*bytes = (long long)size;
	if ((fd = dup(dfd)) == -1)
		return -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (!id_valid(de->d_name) ||
		    fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    st.st_uid != getuid())
			continue;
		(*n)++;
		*bytes += (long long)st.st_size;
	}
	closedir(d);
	return 0;
}

/*
 * Open the queue directory, never through a symbolic link, and only if
 * it is ours and nobody else can write to it: whoever can put a file
 * there can make us send mail with our credentials.  Returns 0, -1 on
 * error, 1 when it does not exist and create is 0.  *shared says it is
 * the system queue of a setgid install: the group stays raised until
 * dir_close; in every other case it is dropped before this returns.
 */
static int
dir_open(const char *path, int create, int *dfd, int *shared,
    struct error *e)
{
	int	 rc;

	*shared = 0;
	rc = dir_open_raised(path, create, dfd, shared, e);
	if (rc != 0 || !*shared)
		priv_drop();
	return rc;
}

static int
dir_open_raised(const char *path, int create, int *dfd, int *shared,
    struct error *e)
{
	char		 buf[PATH_MAX];
	size_t		 len;
	struct stat	 st;
	int		 sys;

	*dfd = -1;
	if (path == NULL || path[0] == '\0')
		return error_set(e, EX_CONFIG, "no queue directory is set: "
		    "set queue_dir");
	len = strlen(path);
	if (len >= sizeof(buf))
		return error_set(e, EX_CONFIG, "queue directory name is "
		    "too long: %.64s...", path);
	memcpy(buf, path, len + 1);
	/* "link/" would follow the link even with O_NOFOLLOW. */
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	if (create) {	/* failures show when it is opened */
		(void)mkdir_above(buf);
		(void)mkdir(buf, 0700);
	}
	/* The system queue, and no other path, opens with the group. */
	sys = strcmp(buf, config_system_queue()) == 0;
	if (sys)
		priv_raise();
	if (lstat(buf, &st) == 0 && S_ISLNK(st.st_mode))
		return error_set(e, EX_CONFIG, "queue directory %s is a "
		    "symbolic link, which is never followed: set queue_dir "
		    "to the real directory", buf);
	*dfd = open(buf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*dfd == -1 && errno == ENOENT && !create)
		return 1;
	if (*dfd == -1 && (errno == ENOTDIR || errno == ELOOP))
		return error_set(e, EX_CONFIG, "queue directory %s is not a "
		    "directory: move it away or set queue_dir", buf);
	if (*dfd == -1)
		return error_set(e, EX_IOERR, "cannot open queue directory "
		    "%s: %s: create it (mode 0700) or set queue_dir", buf,
		    strerror(errno));
	if (dir_check(*dfd, buf, sys, shared, e) == -1) {
		close(*dfd);
		*dfd = -1;
		return -1;
	}
	return 0;
}

/* The directory is closed and the group, if it was raised, dropped. */
static void
dir_close(int dfd)
{
	if (dfd != -1)
		close(dfd);
	priv_drop();
}

static int
dir_check(int dfd, const char *path, int sys, int *shared, struct error *e)
{
	struct stat	 st;
	gid_t		 g = sys ? priv_group() : (gid_t)-1;

	if (fstat(dfd, &st) == -1)
		return error_set(e, EX_IOERR, "cannot stat queue directory "
		    "%s: %s", path, strerror(errno));
	/* Writable by the group of a setgid install: the system queue. */
	if (g != (gid_t)-1 && st.st_gid == g && (st.st_mode & S_IWGRP)) {
		if (st.st_uid != 0)
			return error_set(e, EX_CONFIG, "system queue %s "
			    "belongs to uid %lu: it must belong to root (run "
			    "chown root %s)", path, (unsigned long)st.st_uid,
			    path);
		if ((st.st_mode & S_IRWXO) != 0)
			return error_set(e, EX_CONFIG, "system queue %s can "
			    "be reached by every user (mode %04o): run chmod "
			    "2770 %s", path, (unsigned)(st.st_mode & 07777),
			    path);
		*shared = 1;
		return 0;
	}
	if (st.st_uid != geteuid())
		return error_set(e, EX_CONFIG, "queue directory %s belongs "
		    "to uid %lu, not to you (uid %lu): chown it or set "
		    "queue_dir to a directory of your own", path,
		    (unsigned long)st.st_uid, (unsigned long)geteuid());
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return error_set(e, EX_CONFIG, "queue directory %s can be "
		    "written by others (mode %03o): run chmod go-w %s", path,
		    (unsigned)(st.st_mode & 0777), path);
	return 0;
}

/*
 * An unlinked file in the queue directory, or, where the file system
 * has no O_TMPFILE, the file .tmp-INODE there.
 */
static int
spool_create(int dfd, const char *dir, int shared, struct error *e)
{
	char		 tmp[64], name[64];
	unsigned	 r;
	struct stat	 st;
	int		 fd;

	fd = openat(dfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	/* Any caller's run reads a shared entry, through the group. */
	if (fd != -1 && shared && fchmod(fd, 0640) == -1) {
		close(fd);
		return error_set(e, EX_IOERR, "cannot make a spool file in "
		    "the system queue %s readable by its group: %s", dir,
		    strerror(errno));
	}
	if (fd != -1)
		return fd;
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (unsigned)getpid() ^ (unsigned)time(NULL);
	snprintf(tmp, sizeof(tmp), TMP_PREFIX "new-%08x", r);
	fd = openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd == -1)
		return error_set(e, EX_IOERR, "cannot create a spool file in "
		    "queue directory %s: %s: free space there or fix its "
		    "permissions", dir, strerror(errno));
	if (fstat(fd, &st) == -1 || (shared && fchmod(fd, 0640) == -1))
		goto fail;
	snprintf(name, sizeof(name), TMP_PREFIX "%llx",
	    (unsigned long long)st.st_ino);
	if (renameat(dfd, tmp, dfd, name) == -1)
		goto fail;
	return fd;
fail:
	error_set(e, EX_IOERR, "cannot create a spool file in queue "
	    "directory %s: %s", dir, strerror(errno));
	(void)unlinkat(dfd, tmp, 0);
	close(fd);
	return -1;
}

/*
 * Put the spooled message into the queue: trailer appended, the file
 * locked (we are about to send it), then linked under a fresh ID.  No
 * fsync: a killed process leaves its writes in the page cache, and
 * queue_defer syncs when the message really has to wait.
 */
int
queue_commit(const struct account *a, struct message *m, struct qentry *q,
    struct error *e)
{
	struct timespec	 now;
	int		 dfd, rc, shared, copied = 0;

	memset(q, 0, sizeof(*q));
	q->fd = -1;
	if (a->name == NULL || !value_ok(a->name, NAME_MAX_LEN, 0))
		return error_set(e, EX_SOFTWARE, "cannot queue the message: "
		    "the account name is empty or has control characters");
	if (dir_open(a->queue_dir, 1, &dfd, &shared, e) != 0)
		return -1;
	if (shared_refused(a, shared, e) == -1 ||
	    queue_room(dfd, a->queue_dir, shared, m->size, e) == -1)
		goto fail;
	clock_gettime(CLOCK_REALTIME, &now);
	if (spool_linkable(dfd, m->fd) == -1) {
		if (spool_copy(dfd, a->queue_dir, shared, m, e) == -1)
			goto fail;
		copied = 1;
	}
	for (;;) {
		if (trailer_write(a, m, now.tv_sec, e) == -1)
			goto fail;
		if (flock(m->fd, LOCK_EX | LOCK_NB) == -1) {
			error_set(e, EX_IOERR, "cannot lock the spool file in "
			    "%s: %s", a->queue_dir, strerror(errno));
			goto fail;
		}
		if ((rc = entry_link(dfd, m->fd, a->queue_dir, q->id, e)) == 0)
			break;
		/* An unlinked file that was not O_TMPFILE: copy it once. */
		if (rc == -1 || copied++ ||
		    spool_copy(dfd, a->queue_dir, shared, m, e) == -1)
			goto fail;
	}
	dir_close(dfd);
	q->shared = shared;
	q->owner = getuid();
	q->dir = xstrdup(a->queue_dir);
	if (asprintf(&q->path, "%s/%s", a->queue_dir, q->id) == -1)
		q->path = xstrdup(q->id);
	q->fd = m->fd;
	q->account = xstrdup(a->name);
	q->created = now.tv_sec;
	return 0;
fail:
	dir_close(dfd);
	return -1;
}

/*
 * Whether fd can be linked into the directory: an unlinked file on the
 * same file system, or our own .tmp-INODE there.
 */
static int
spool_linkable(int dfd, int fd)
{
	struct stat	 fst, dst, tst;
	char		 name[64];

	if (fstat(fd, &fst) == -1 || fstat(dfd, &dst) == -1)
		return -1;
	if (!S_ISREG(fst.st_mode) || fst.st_dev != dst.st_dev)
		return -1;
	if (fst.st_nlink == 0)
		return 0;
	snprintf(name, sizeof(name), TMP_PREFIX "%llx",
	    (unsigned long long)fst.st_ino);
	if (fstatat(dfd, name, &tst, AT_SYMLINK_NOFOLLOW) == -1 ||
	    tst.st_dev != fst.st_dev || tst.st_ino != fst.st_ino)
		return -1;
	return 0;
}

/*
 * The spool file is elsewhere (another file system, say TMPDIR): copy
 * the data into a new spool file and put that under the caller's
 * descriptor number, so m->fd stays valid.
 */
static int
spool_copy(int dfd, const char *dir, int shared, struct message *m,
    struct error *e)
{
	char	*buf;
	off_t	 off = 0;
	ssize_t	 n;
	int	 fd;

	if ((fd = spool_create(dfd, dir, shared, e)) == -1)
		return -1;
	buf = xcalloc(1, COPY_BUF);
	while (off < m->size) {
		n = pread(m->fd, buf, (size_t)(m->size - off < COPY_BUF ?
		    m->size - off : COPY_BUF), off);
		if (n <= 0 || write(fd, buf, (size_t)n) != n) {
			error_set(e, EX_IOERR, "cannot copy the message into "
			    "queue directory %s: %s", dir, n == 0 ?
			    "spool file too short" : strerror(errno));
			goto fail;
		}
		off += n;
	}
	/* dup2 would clear close-on-exec: a passwordeval child gets it. */
	if (dup3(fd, m->fd, O_CLOEXEC) == -1) {
		error_set(e, EX_OSERR, "dup3: %s", strerror(errno));
		goto fail;
	}
	free(buf);
	close(fd);
	return 0;
fail:
	free(buf);
	close(fd);
	return -1;
}

/* The envelope after the data; every value checked so it reads back. */
static int
trailer_write(const struct account *a, const struct message *m, time_t now,
    struct error *e)
{
	char	*buf = NULL;
	size_t	 len = 0, i;
	FILE	*fp;
	int	 bad;

	bad = m->size < 0 || m->sender == NULL || m->nrcpts == 0 ||
	    m->nrcpts > RCPT_MAX || !value_ok(m->sender, ADDR_MAX, 1) ||
	    (m->dsn_notify && !dsn_notify_value(m->dsn_notify)) ||
	    (m->dsn_return && !dsn_return_value(m->dsn_return)) ||
	    (m->dsn_envid && !value_ok(m->dsn_envid, ENVID_MAX_LEN, 0));
	for (i = 0; !bad && i < m->nrcpts; i++)
		bad = !value_ok(m->rcpts[i].addr, ADDR_MAX, 0);
	if (bad)
		return error_set(e, EX_SOFTWARE, "cannot queue the message: "
		    "its envelope has an empty, overlong or unprintable value");
	if ((fp = open_memstream(&buf, &len)) == NULL)
		return error_set(e, EX_OSERR, "open_memstream: %s",
		    strerror(errno));
	fprintf(fp, TRAILER_MAGIC "account %s\nsender %s\n", a->name,
	    m->sender);
	for (i = 0; i < m->nrcpts; i++)
		fprintf(fp, "rcpt %s\n", m->rcpts[i].addr);
	if (m->dsn_notify)
		fprintf(fp, "dsn-notify %s\n", m->dsn_notify);
	if (m->dsn_return)
		fprintf(fp, "dsn-return %s\n", m->dsn_return);
	if (m->dsn_envid)
		fprintf(fp, "dsn-envid %s\n", m->dsn_envid);
	fprintf(fp, "eightbit %d\nsmtputf8 %d\nnul %d\ncreated %lld\n"
	    LASTLINE_FMT, m->eightbit != 0, m->smtputf8 != 0,
	    m->has_nul != 0, (long long)now, (long long)m->size);
	if (fclose(fp) != 0) {
		free(buf);
		return error_set(e, EX_OSERR, "out of memory");
	}
	if (ftruncate(m->fd, m->size) == -1 ||
	    pwrite(m->fd, buf, len, m->size) != (ssize_t)len) {
		error_set(e, EX_IOERR, "cannot write the queue file: %s: "
		    "free space in the queue directory", strerror(errno));
		free(buf);
		return -1;
	}
	free(buf);
	return 0;
}

/* Bounded, no control characters; empty only where allowed. */
static int
value_ok(const char *s, size_t max, int empty_ok)
{
	size_t	 i;

	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || i >= max)
			return 0;
	return i > 0 || empty_ok;
}

/* The canonical DSN values, as static strings m->dsn_* can point to. */
static const char *
dsn_notify_value(const char *v)
{
	static const char *const ok[] = { "NEVER", "SUCCESS", "DELAY",
	    "SUCCESS,DELAY", "FAILURE", "SUCCESS,FAILURE", "DELAY,FAILURE",
	    "SUCCESS,DELAY,FAILURE" };
	size_t	 i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(v, ok[i]) == 0)
			return ok[i];
	return NULL;
}

static const char *
dsn_return_value(const char *v)
{
	if (strcmp(v, "FULL") == 0)
		return "FULL";
	if (strcmp(v, "HDRS") == 0)
		return "HDRS";
	return NULL;
}

/*
 * 20261127T231500-0a1b2c3d4e5f: UTC time, then the microseconds in five
 * hex digits and 28 random bits, so IDs sort by creation.
 */
static void
queue_id(char *buf, size_t size)
{
	struct timespec	 ts;
	struct tm	 tm;
	char		 stamp[16];
	unsigned	 r;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm) == 0)
		memcpy(stamp, "99991231T235959", sizeof(stamp));
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (unsigned)getpid() * 2654435761u ^ (unsigned)ts.tv_nsec;
	snprintf(buf, size, "%.15s-%05x%07x", stamp,
	    (unsigned)(ts.tv_nsec / 1000) & 0xfffffu, r & 0xfffffffu);
}

/*
 * Give the file its name in the queue; a clash just means a new ID.
 * Returns -2 when this file cannot be linked at all (an unlinked file
 * that was not made with O_TMPFILE, or one on another file system).
 */
static int
entry_link(int dfd, int fd, const char *dir, char *id, struct error *e)
{
	char		 proc[64], tmp[64];
	struct stat	 st;
	int		 i, rc;

	if (fstat(fd, &st) == -1)
		return error_set(e, EX_IOERR, "fstat: %s", strerror(errno));
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	snprintf(tmp, sizeof(tmp), TMP_PREFIX "%llx",
	    (unsigned long long)st.st_ino);
	for (i = 0; i < LINK_TRIES; i++) {
		queue_id(id, QUEUE_ID_LEN + 1);
		if (st.st_nlink != 0)
			rc = linkat(dfd, tmp, dfd, id, 0);
		else if ((rc = linkat(AT_FDCWD, proc, dfd, id,
		    AT_SYMLINK_FOLLOW)) == -1 && errno == ENOENT)
			rc = linkat(fd, "", dfd, id, AT_EMPTY_PATH);
		if (rc == 0)
			break;
		if (errno == EEXIST)
			continue;
		rc = errno == ENOENT || errno == EXDEV || errno == EPERM ?
		    -2 : -1;
		error_set(e, EX_IOERR, "cannot link the message into queue "
		    "directory %s: %s", dir, strerror(errno));
		return rc;
	}
	if (i == LINK_TRIES)
		return error_set(e, EX_IOERR, "cannot find a free queue id "
		    "in %s", dir);
	if (st.st_nlink != 0)
		(void)unlinkat(dfd, tmp, 0);
	return 0;
}

/*
 * Some recipients wait (or refusals wait for their owner's run): make
 * the data durable, then record the attempt and every recipient's state
 * in ID.status.  backoff: the relay answered about this message, so the
 * next try waits (queue_backoff); without it any run tries again.
 */
int
queue_defer(struct qentry *q, const struct message *m,
    const struct error *why, int backoff, struct error *e)
{
	time_t	 now = time(NULL);
	int	 dfd, rc, shared;

	if (fsync(q->fd) == -1)
		return error_set(e, EX_IOERR, "cannot sync queue file %s: %s",
		    q->path, strerror(errno));
	if ((rc = dir_open(q->dir, 0, &dfd, &shared, e)) != 0)
		return rc == -1 ? -1 : error_set(e, EX_IOERR, "queue "
		    "directory %s vanished: the message is lost", q->dir);
	if (q->attempts < ATTEMPTS_MAX)
		q->attempts++;
	if (q->first == 0)
		q->first = now;
	q->last = now;
	q->next = backoff ? now + queue_backoff(q->attempts) : 0;
	q->shared = shared;
	reason_line(q->error, sizeof(q->error), why);
	rc = status_write(dfd, q, m, e);
	dir_close(dfd);
	return rc;
}

/*
 * How long a message waits after its Nth failed attempt that the relay
 * answered: 5 minutes, doubling up to 4 hours (Postfix: 300 s to 4000 s;
 * dma: 5 min to 3 h).
 */
time_t
queue_backoff(unsigned attempts)
{
	time_t	 t = 300;

	while (attempts-- > 1 && t < 4 * 3600)
		t *= 2;
	return t > 4 * 3600 ? 4 * 3600 : t;
}

/* Control characters (the relay's line breaks) made blanks. */
static void
reason_clean(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

/* One line: the message, then the relay's reply unless already in it. */
static void
reason_line(char *buf, size_t size, const struct error *why)
{
	char	 text[2200];
	size_t	 i;

	if (why == NULL || (why->msg[0] == '\0' && why->reply[0] == '\0')) {
		snprintf(buf, size, "unknown");
		return;
	}
	if (why->reply[0] != '\0' && strstr(why->msg, why->reply) == NULL)
		snprintf(text, sizeof(text), "%s%s(relay said: %s)", why->msg,
		    why->msg[0] != '\0' ? " " : "", why->reply);
	else
		snprintf(text, sizeof(text), "%s", why->msg);
	reason_clean(text);
	if (size > ERROR_TEXT_MAX + 1)
		size = ERROR_TEXT_MAX + 1;
	i = strnlen(text, size - 1);
	memcpy(buf, text, i);
	buf[i] = '\0';
}

/*
 * attempts, first, last, next, error, then one "rcpt INDEX STATE [WHY]"
 * line for each recipient that is not simply waiting for its first
 * try.  Written aside, synced, renamed over the old one, directory
 * synced.
 */
static int
status_write(int dfd, struct qentry *q, const struct message *m,
    struct error *e)
{
	static const char *const names[] = { "pending", "sent", "deferred",
	    "refused" };
	char	 tmp[64], name[64], why[WHY_MAX + 1], *buf = NULL;
	size_t	 len = 0, i;
	FILE	*fp;
	int	 fd = -1, ok;

	snprintf(tmp, sizeof(tmp), TMP_PREFIX "%s" STATUS_SUFFIX, q->id);
	snprintf(name, sizeof(name), "%s" STATUS_SUFFIX, q->id);
	if ((fp = open_memstream(&buf, &len)) == NULL)
		return error_set(e, EX_OSERR, "open_memstream: %s",
		    strerror(errno));
	fprintf(fp, "attempts %u\nfirst %lld\nlast %lld\nnext %lld\n"
	    "error %s\n", q->attempts, (long long)q->first,
	    (long long)q->last, (long long)q->next, q->error);
	for (i = 0; i < m->nrcpts; i++) {
		if (m->rcpts[i].state == RCPT_PENDING)
			continue;
		snprintf(why, sizeof(why), "%s", m->rcpts[i].why != NULL ?
		    m->rcpts[i].why : "");
		reason_clean(why);
		fprintf(fp, "rcpt %zu %s%s%s\n", i, m->rcpts[i].unreported ?
		    "unreported" : names[m->rcpts[i].state],
		    why[0] != '\0' ? " " : "", why);
	}
	ok = fclose(fp) == 0 && len <= STATUS_MAX;
	if (ok) {
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC |
		    O_NOFOLLOW | O_CLOEXEC, 0600);
		ok = fd != -1 && (!q->shared || fchmod(fd, 0640) == 0) &&
		    write(fd, buf, len) == (ssize_t)len && fsync(fd) == 0 &&
		    renameat(dfd, tmp, dfd, name) == 0 && fsync(dfd) == 0;
	}
	free(buf);
	if (!ok) {
		error_set(e, EX_IOERR, "cannot write %s%s: %s", q->path,
		    STATUS_SUFFIX, strerror(errno != 0 ? errno : EFBIG));
		if (fd != -1)
			close(fd);
		(void)unlinkat(dfd, tmp, 0);
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * Delivered or moved to dead.letter: the entry goes, the status after
 * it (a status without its entry is harmless).  The lock stays until
 * the descriptor is closed.
 */
int
queue_done(struct qentry *q)
{
	struct error	 e;
	char		 name[64];
	int		 dfd, rc, shared;

	if (q->dir == NULL)
		return -1;
	/* Checked as when it was opened: the path could lead elsewhere. */
	memset(&e, 0, sizeof(e));
	if ((rc = dir_open(q->dir, 0, &dfd, &shared, &e)) == 1)
		error_set(&e, EX_IOERR, "the queue directory is gone");
	else if (rc == 0 && shared != q->shared)
		error_set(&e, EX_SOFTWARE, "the queue directory changed");
	if (e.msg[0] != '\0' || unlinkat(dfd, q->id, 0) == -1) {
		log_warn("cannot remove delivered message %s from the queue: "
		    "%s: remove it by hand, or it will be sent again",
		    q->path, e.msg[0] != '\0' ? e.msg : strerror(errno));
		dir_close(dfd);
		return -1;
	}
	snprintf(name, sizeof(name), "%s" STATUS_SUFFIX, q->id);
	if (unlinkat(dfd, name, 0) == -1 && errno != ENOENT)
		log_warn("cannot remove %s%s: %s", q->path, STATUS_SUFFIX,
		    strerror(errno));
	/*
	 * No fsync: if a power cut undoes the unlink, the message is sent
	 * once more, which is the duplicate case smarthost(8) documents,
	 * and every delivery would otherwise wait for the disk.
	 */
	dir_close(dfd);
	return 0;
}

/*
 * A message the relay refused for good, kept where the user looks: an
 * mbox entry (mboxrd quoting) whose first header says why.
 */
int
queue_dead_letter(const struct account *a, const struct message *m,
    const struct error *why, const char *rcpts, struct error *e)
{
	struct stat	 st;
	FILE		*fp;
	int		 fd, rc;

	if (a->dead_letter == NULL)
		return error_set(e, EX_IOERR, "the message cannot be kept: "
		    "no dead_letter file is set (no home directory?): set "
		    "dead_letter");
	fd = open(a->dead_letter, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW |
	    O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd == -1)
		return error_set(e, EX_IOERR, "cannot write dead.letter file "
		    "%s: %s: fix it or set dead_letter", a->dead_letter,
		    errno == ELOOP ? "it is a symbolic link, which is never "
		    "followed" : strerror(errno));
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return error_set(e, EX_IOERR, "cannot write dead.letter file "
		    "%s: it is not a regular file: set dead_letter",
		    a->dead_letter);
	}
	if (dead_letter_lock(fd) == -1) {
		close(fd);
		return error_set(e, EX_IOERR, "cannot write dead.letter file "
		    "%s: another process holds its lock: try again later",
		    a->dead_letter);
	}
	if (fstat(fd, &st) == -1 || (fp = fdopen(fd, "a")) == NULL) {
		close(fd);
		return error_set(e, EX_IOERR, "cannot write dead.letter file "
		    "%s: %s", a->dead_letter, strerror(errno));
	}
	rc = dead_letter_write(fp, m, why, rcpts, time(NULL));
	if (fflush(fp) == EOF || rc == -1 || fsync(fd) == -1) {
		/* No half message in the mbox: cut back to where we began. */
		error_set(e, EX_IOERR, "cannot write dead.letter file %s: %s: "
		    "free space there or set dead_letter", a->dead_letter,
		    strerror(errno != 0 ? errno : EIO));
		if (ftruncate(fd, st.st_size) == -1)
			log_warn("%s may end in a partial message",
			    a->dead_letter);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	return 0;
}

/* Bounded wait: a mail reader may hold the mbox a moment. */
static int
dead_letter_lock(int fd)
{
	int	 waited;

	for (waited = 0; waited < LOCK_WAIT_MS; waited += 10) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		usleep(10000);
	}
	return -1;
}

/*
 * "From SENDER DATE", why, and, for a message that reached some of its
 * recipients, the ones it did not reach (RCPTS, comma-separated, folded
 * at the commas).
 */
static int
dead_letter_write(FILE *fp, const struct message *m, const struct error *why,
    const char *rcpts, time_t now)
{
	char		 date[64], reason[ERROR_TEXT_MAX + 1];
	struct tm	 tm;
	const char	*p, *comma;
	size_t		 col, n;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm);
	reason_line(reason, sizeof(reason), why);
	fprintf(fp, "From %s %s\nX-Smarthost-Error: %s\n",
	    m->sender != NULL && m->sender[0] != '\0' ? m->sender :
	    "MAILER-DAEMON", date, reason);
	if (rcpts != NULL) {
		fputs("X-Smarthost-Not-Delivered-To:", fp);
		col = 29;
		for (p = rcpts; *p != '\0'; p = *comma ? comma + 1 : comma) {
			if ((comma = strchr(p, ',')) == NULL)
				comma = p + strlen(p);
			n = (size_t)(comma - p);
			if (col > 30 && col + n > 76) {
				fputs("\n", fp);
				col = 0;
			}
			fprintf(fp, " %.*s%s", (int)n, p, *comma ? "," : "");
			col += n + 2;
		}
		fputc('\n', fp);
	}
	return mbox_body(fp, m);
}

/*
 * The data with CRLF made LF and mboxrd quoting: a line matching
 * ">*From " gets one more '>', so a reader can undo it exactly.
 */
struct mbox {
	FILE	*fp;
	int	 cr;		/* a CR waits for the next byte */
	int	 bol;		/* at the start of a line */
	size_t	 gt;		/* '>' seen at the start of this line */
	size_t	 from;		/* octets of "From " matched after them */
	int	 last;		/* last octet written */
};

static void
mbox_flush_prefix(struct mbox *x, int quote)
{
	size_t	 i;

	if (quote)
		putc('>', x->fp);
	for (i = 0; i < x->gt; i++)
		putc('>', x->fp);
	fwrite("From ", 1, x->from, x->fp);
	if (x->gt + x->from > 0)
		x->last = x->from > 0 ? "From "[x->from - 1] : '>';
	x->gt = x->from = 0;
	x->bol = 0;
}

static void
mbox_quote(struct mbox *x, int c)
{
	if (x->bol) {
		if (c == '>' && x->from == 0) {
			x->gt++;
			return;
		}
		if (c == "From "[x->from]) {
			if (++x->from == 5)
				mbox_flush_prefix(x, 1);
			return;
		}
		mbox_flush_prefix(x, 0);
	}
	putc(c, x->fp);
	x->last = c;
	x->bol = c == '\n';
}

static void
mbox_byte(struct mbox *x, int c)
{
	if (x->cr) {
		x->cr = 0;
		if (c == '\n') {
			mbox_quote(x, '\n');
			return;
		}
		mbox_quote(x, '\r');
	}
	if (c == '\r')
		x->cr = 1;
	else
		mbox_quote(x, c);
}

static int
mbox_body(FILE *fp, const struct message *m)
{
	struct mbox	 x = { fp, 0, 1, 0, 0, '\n' };
	unsigned char	*buf;
	off_t		 off = 0;
	ssize_t		 n, i;

	buf = xcalloc(1, COPY_BUF);
	while (off < m->size) {
		n = pread(m->fd, buf, (size_t)(m->size - off < COPY_BUF ?
		    m->size - off : COPY_BUF), off);
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			free(buf);
			return -1;
		}
		for (i = 0; i < n; i++)
			mbox_byte(&x, buf[i]);
		off += n;
	}
	free(buf);
	if (x.cr)
		mbox_quote(&x, '\r');
	if (x.bol)
		mbox_flush_prefix(&x, 0);
	if (x.last != '\n')
		putc('\n', fp);
	putc('\n', fp);
	return ferror(fp) ? -1 : 0;
}

/* The entries, oldest first; anything else is left where it is. */
int
queue_scan(const char *dir, char ***ids, size_t *n, struct error *e)
{
	int	 dfd, rc, shared;

	*ids = NULL;
	*n = 0;
	if ((rc = dir_open(dir, 0, &dfd, &shared, e)) != 0)
		return rc == 1 ? 0 : -1;
	rc = scan_fd(dfd, dir, ids, n, e);
	priv_drop();
	return rc;
}

static int
scan_fd(int dfd, const char *dir, char ***ids, size_t *n, struct error *e)
{
	DIR		*d;
	struct dirent	*de;
	char		 first[64] = "";
	size_t		 foreign = 0, more = 0;

	if ((d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return error_set(e, EX_IOERR, "cannot read queue directory "
		    "%s: %s", dir, strerror(errno));
	}
	while ((de = readdir(d)) != NULL) {
		if (id_valid(de->d_name) && *n == SCAN_MAX)
			more++;
		else if (id_valid(de->d_name)) {
			*ids = xreallocarray(*ids, *n + 1, sizeof(**ids));
			(*ids)[(*n)++] = xstrdup(de->d_name);
		} else if (!scan_ours(dirfd(d), de->d_name) && foreign++ == 0)
			sanitize(first, sizeof(first), de->d_name);
	}
	closedir(d);
	if (more > 0)
		log_warn("queue directory %s: %zu entries beyond the first "
		    "%d wait for a later run", dir, more, SCAN_MAX);
	if (foreign > 0)
		log_warn("queue directory %s holds %zu file%s that %s not "
		    "queue entries (such as %s); left alone", dir, foreign,
		    foreign == 1 ? "" : "s", foreign == 1 ? "is" : "are",
		    first);
	if (*n > 0)
		qsort(*ids, *n, sizeof(**ids), scan_compare);
	return 0;
}

/*
 * ".", "..", our temporary files, status files and the directory of
 * the system account's OAuth2 tokens.  A status file whose entry is
 * gone (a crash inside queue_done) is removed.
 */
static int
scan_ours(int dfd, const char *name)
{
	char		 id[QUEUE_ID_LEN + 1];
	struct stat	 st;
	size_t		 len = strlen(name);

	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
	    strcmp(name, OAUTH_SYSTEM_DIR) == 0)	/* oauth.c's */
		return 1;
	if (strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
		scan_stale(dfd, name);
		return 1;
	}
	if (len != QUEUE_ID_LEN + strlen(STATUS_SUFFIX) ||
	    strcmp(name + QUEUE_ID_LEN, STATUS_SUFFIX) != 0)
		return 0;
	memcpy(id, name, QUEUE_ID_LEN);
	id[QUEUE_ID_LEN] = '\0';
	if (!id_valid(id))
		return 0;
	/* fstatat, not faccessat: that one asks with the real group. */
	if (fstatat(dfd, id, &st, AT_SYMLINK_NOFOLLOW) == -1 &&
	    errno == ENOENT)
		(void)unlinkat(dfd, name, 0);
	return 1;
}

/*
 * What a killed run leaves behind: a status written aside (a second's
 * work) after ten minutes, a spool file that was never committed (the
 * caller may write slowly) after a day.
 */
static void
scan_stale(int dfd, const char *name)
{
	struct stat	 st;
	size_t		 len = strlen(name), slen = strlen(STATUS_SUFFIX);
	time_t		 age;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(st.st_mode))
		return;
	age = time(NULL) - st.st_mtime;
	if (len > slen && strcmp(name + len - slen, STATUS_SUFFIX) == 0 ?
	    age > STALE_STATUS : age > STALE_SPOOL)
		(void)unlinkat(dfd, name, 0);
}

static int
scan_compare(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* YYYYMMDDTHHMMSS-hhhhhhhhhhhh, nothing else (no path can sneak in). */
static int
id_valid(const char *id)
{
	size_t	 i;

	if (strlen(id) != QUEUE_ID_LEN)
		return 0;
	for (i = 0; i < QUEUE_ID_LEN; i++) {
		if (i == 8 && id[i] == 'T')
			continue;
		if (i == 15 && id[i] == '-')
			continue;
		if (i < 15 && i != 8 && id[i] >= '0' && id[i] <= '9')
			continue;
		if (i > 15 && ((id[i] >= '0' && id[i] <= '9') ||
		    (id[i] >= 'a' && id[i] <= 'f')))
			continue;
		return 0;
	}
	return 1;
}

void
queue_ids_free(char **ids, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

/*
 * An entry, locked for delivery.  Returns 1 when another process holds
 * it, it is already gone, or (a user's run, the shared queue) it is
 * another user's: not an error, the caller skips it.
 */
int
queue_open(const char *dir, const char *id, struct qentry *q,
    struct message *m, struct error *e)
{
	const char	*why;
	struct stat	 st;
	int		 dfd, fd, rc, shared;

	memset(q, 0, sizeof(*q));
	q->fd = -1;
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (!id_valid(id))
		return error_set(e, EX_USAGE, "not a queue id: %.64s", id);
	if ((rc = dir_open(dir, 0, &dfd, &shared, e)) != 0)
		return rc == 1 ? 1 : -1;
	fd = openat(dfd, id, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1) {
		rc = errno == ENOENT ? 1 : error_set(e, EX_IOERR, "cannot "
		    "open queue file %s/%s: %s", dir, id, strerror(errno));
		dir_close(dfd);
		return rc;
	}
	/*
	 * In the shared queue a user's run never locks another user's
	 * entry: stopped while holding the lock, it would stall the owner's
	 * and root's runs for as long as it liked.
	 */
	if (shared && priv_restricted() && (fstat(fd, &st) == -1 ||
	    st.st_uid != getuid())) {
		close(fd);
		dir_close(dfd);
		return 1;
	}
	rc = flock(fd, LOCK_EX | LOCK_NB) == -1 ? (errno == EWOULDBLOCK ? 1 :
	    error_set(e, EX_IOERR, "cannot lock queue file %s/%s: %s", dir,
	    id, strerror(errno))) : 0;
	/* Sent and removed by another run between our open and lock. */
	if (rc == 0 && fstat(fd, &st) == 0 && st.st_nlink == 0)
		rc = 1;
	if (rc == 0 && entry_read(dfd, dir, id, fd, shared, q, m, &why) ==
	    -1)
		rc = error_set(e, EX_DATAERR, "queue file %s/%s is corrupt "
		    "(%s); it was left alone: look at it, then delete it or "
		    "move it out of the queue", dir, id, why);
	dir_close(dfd);
	if (rc != 0)
		close(fd);
	return rc;
}

/* Parse an open entry into q and m; on failure both are left empty. */
static int
entry_read(int dfd, const char *dir, const char *id, int fd, int shared,
    struct qentry *q, struct message *m, const char **why)
{
	struct stat	 st;

	memset(q, 0, sizeof(*q));
	q->fd = -1;
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		*why = "not a regular file";
		return -1;
	}
	/* In the shared queue only the group could have put it there. */
	if (shared && (st.st_gid != priv_group() ||
	    (st.st_mode & S_IRWXO) != 0)) {
		*why = "it is not in the queue's group, or others can read it";
		return -1;
	}
	if (!shared && st.st_uid != geteuid()) {
		*why = "it belongs to another user";
		return -1;
	}
	if (trailer_read(fd, st.st_size, q, m, why) == -1 ||
	    status_read(dfd, id, q, m, why) == -1) {
		message_clear(m);
		qentry_free(q);
		return -1;
	}
	snprintf(q->id, sizeof(q->id), "%s", id);
	q->shared = shared;
	q->owner = st.st_uid;
	q->dir = xstrdup(dir);
	if (asprintf(&q->path, "%s/%s", dir, id) == -1)
		q->path = xstrdup(id);
	q->fd = m->fd = fd;
	return 0;
}

/* The last line first: it says where the data ends. */
static int
trailer_read(int fd, off_t fsize, struct qentry *q, struct message *m,
    const char **why)
{
	char		 last[LASTLINE_LEN + 1], *buf;
	const size_t	 magic = strlen(TRAILER_MAGIC);
	long long	 size;
	size_t		 tlen;
	int		 rc;

	*why = "too short for a queue file";
	if (fsize < (off_t)(LASTLINE_LEN + magic))
		return -1;
	*why = "cannot read its last line";
	if (pread(fd, last, LASTLINE_LEN, fsize - LASTLINE_LEN) !=
	    LASTLINE_LEN)
		return -1;
	last[LASTLINE_LEN] = '\0';
	*why = "the last line is not \"smarthost-queue-v1 size=N\"";
	if (strncmp(last, LASTLINE_FMT, 24) != 0 ||
	    last[LASTLINE_LEN - 1] != '\n')
		return -1;
	last[LASTLINE_LEN - 1] = '\0';
	*why = "the size in the last line is not a number that fits the file";
	if (number_parse(last + 24, (long long)(fsize - LASTLINE_LEN -
	    (off_t)magic), &size) == -1)
		return -1;
	tlen = (size_t)(fsize - LASTLINE_LEN - size);
	*why = "the envelope is too large";
	if (tlen > TRAILER_MAX)
		return -1;
	buf = xcalloc(1, tlen + 1);
	*why = "cannot read the envelope";
	if (pread(fd, buf, tlen, size) != (ssize_t)tlen) {
		free(buf);
		return -1;
	}
	*why = "the envelope holds a NUL byte";
	rc = strlen(buf) == tlen ? trailer_parse(buf, q, m, why) : -1;
	free(buf);
	m->size = size;
	return rc;
}

/* Exactly the lines trailer_write writes, in that order. */
static int
trailer_parse(char *p, struct qentry *q, struct message *m, const char **why)
{
	static const char *const flags[] = { "eightbit", "smtputf8", "nul" };
	int		*flagp[3];
	const char	*v;
	long long	 n;
	size_t		 i;

	flagp[0] = &m->eightbit;
	flagp[1] = &m->smtputf8;
	flagp[2] = &m->has_nul;
	*why = "it does not start with \"" "X-Smarthost-Envelope: 1\"";
	if (strncmp(p, TRAILER_MAGIC, strlen(TRAILER_MAGIC)) != 0)
		return -1;
	p += strlen(TRAILER_MAGIC);
	*why = "bad or missing account line";
	if ((v = line_take(&p, "account")) == NULL ||
	    !value_ok(v, NAME_MAX_LEN, 0))
		return -1;
	q->account = xstrdup(v);
	*why = "bad or missing sender line";
	if ((v = line_take(&p, "sender")) == NULL || !value_ok(v, ADDR_MAX, 1))
		return -1;
	m->sender = xstrdup(v);
	while ((v = line_take(&p, "rcpt")) != NULL) {
		*why = "a recipient is empty, too long or has control "
		    "characters";
		if (!value_ok(v, ADDR_MAX, 0))
			return -1;
		*why = "more than 1000 recipients";
		if (m->nrcpts == RCPT_MAX)
			return -1;
		m->rcpts = xreallocarray(m->rcpts, m->nrcpts + 1,
		    sizeof(*m->rcpts));
		memset(&m->rcpts[m->nrcpts], 0, sizeof(*m->rcpts));
		m->rcpts[m->nrcpts++].addr = xstrdup(v);
	}
	*why = "no recipient";
	if (m->nrcpts == 0)
		return -1;
	*why = "bad dsn-notify, dsn-return or dsn-envid line";
	if ((v = line_take(&p, "dsn-notify")) != NULL &&
	    (m->dsn_notify = dsn_notify_value(v)) == NULL)
		return -1;
	if ((v = line_take(&p, "dsn-return")) != NULL &&
	    (m->dsn_return = dsn_return_value(v)) == NULL)
		return -1;
	if ((v = line_take(&p, "dsn-envid")) != NULL) {
		if (!value_ok(v, ENVID_MAX_LEN, 0) || strchr(v, ' ') != NULL)
			return -1;
		m->dsn_envid = q->dsn_envid = xstrdup(v);
	}
	for (i = 0; i < 3; i++) {
		*why = "bad or missing eightbit, smtputf8 or nul line";
		if ((v = line_take(&p, flags[i])) == NULL ||
		    (strcmp(v, "0") != 0 && strcmp(v, "1") != 0))
			return -1;
		*flagp[i] = v[0] == '1';
	}
	*why = "bad or missing created line";
	if ((v = line_take(&p, "created")) == NULL ||
	    number_parse(v, LLONG_MAX, &n) == -1)
		return -1;
	q->created = (time_t)n;
	*why = "an unknown line in the envelope";
	return *p == '\0' ? 0 : -1;
}

/* "KEY VALUE\n" at *p: the value, NUL-terminated, and *p moved on. */
static char *
line_take(char **p, const char *key)
{
	size_t	 len = strlen(key);
	char	*v, *nl;

	if (strncmp(*p, key, len) != 0 || (*p)[len] != ' ')
		return NULL;
	v = *p + len + 1;
	if ((nl = strchr(v, '\n')) == NULL)
		return NULL;
	*nl = '\0';
	*p = nl + 1;
	return v;
}

/* Decimal digits only, at most max. */
static int
number_parse(const char *s, long long max, long long *out)
{
	long long	 n = 0;
	size_t		 i;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 20)
			return -1;
		if (n > (max - (s[i] - '0')) / 10)
			return -1;
		n = n * 10 + (s[i] - '0');
	}
	if (i == 0)
		return -1;
	*out = n;
	return 0;
}

/*
 * ID.status, if there is one: attempts, first, last, next, error, then
 * the recipients' states.  Files of the first format (no next line, a
 * "refused 1" line for a message refused for good) read too.
 */
static int
status_read(int dfd, const char *id, struct qentry *q, struct message *m,
    const char **why)
{
	char		 name[64], *buf, *p;
	const char	*v[5];
	static const char *const keys[5] = { "attempts", "first", "last",
	    "next", "error" };
	unsigned char	*seen;
	long long	 n[4];
	ssize_t		 len;
	size_t		 i;
	int		 fd, rc = -1;

	snprintf(name, sizeof(name), "%s" STATUS_SUFFIX, id);
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1 && errno == ENOENT)
		return 0;
	*why = "its status file cannot be read, is too large or is garbled";
	if (fd == -1)
		return -1;
	buf = xcalloc(1, STATUS_MAX + 2);
	len = read_all(fd, buf, STATUS_MAX + 1);
	close(fd);
	seen = xcalloc(m->nrcpts + 1, 1);
	if (len < 0 || len > STATUS_MAX || strlen(buf) != (size_t)len)
		goto done;
	p = buf;
	for (i = 0; i < 5; i++)
		if ((v[i] = line_take(&p, keys[i])) == NULL && i != 3)
			goto done;
	if ((v[3] == NULL && status_legacy(&p, m) == -1) ||
	    number_parse(v[0], ATTEMPTS_MAX, &n[0]) == -1 ||
	    number_parse(v[1], LLONG_MAX, &n[1]) == -1 ||
	    number_parse(v[2], LLONG_MAX, &n[2]) == -1 ||
	    (v[3] != NULL && number_parse(v[3], LLONG_MAX, &n[3]) == -1) ||
	    !value_ok(v[4], ERROR_TEXT_MAX, 1))
		goto done;
	while (*p != '\0')
		if (status_rcpt(line_take(&p, "rcpt"), m, seen) == -1)
			goto done;
	q->attempts = (unsigned)n[0];
	q->first = (time_t)n[1];
	q->last = (time_t)n[2];
	q->next = v[3] != NULL ? (time_t)n[3] : 0;
	snprintf(q->error, sizeof(q->error), "%s", v[4]);
	rc = 0;
done:
	free(seen);
	free(buf);
	return rc;
}

/* "INDEX STATE [WHY]": each recipient once, at most. */
static int
status_rcpt(char *v, struct message *m, unsigned char *seen)
{
	static const char *const names[] = { "sent", "deferred", "refused",
	    "unreported" };
	static const enum rcpt_state states[] = { RCPT_SENT, RCPT_DEFERRED,
	    RCPT_REFUSED, RCPT_REFUSED };
	char		*sp, *st, *why;
	long long	 i;
	size_t		 k;

	if (v == NULL || (sp = strchr(v, ' ')) == NULL)
		return -1;
	*sp = '\0';
	if (number_parse(v, (long long)m->nrcpts - 1, &i) == -1 || seen[i])
		return -1;
	st = sp + 1;
	if ((why = strchr(st, ' ')) != NULL)
		*why++ = '\0';
	for (k = 0; k < 4 && strcmp(st, names[k]) != 0; k++)
		;
	if (k == 4 || (why != NULL && !value_ok(why, WHY_MAX, 0)))
		return -1;
	seen[i] = 1;
	rcpt_set(&m->rcpts[i], states[k], why);
	m->rcpts[i].unreported = k == 3;
	return 0;
}

/*
 * The first format: an optional "refused 1" after the error line meant
 * the whole message was refused for good, its owner not yet told.
 */
static int
status_legacy(char **p, struct message *m)
{
	const char	*r;
	size_t		 i;

	if ((r = line_take(p, "refused")) == NULL)
		return 0;
	if (strcmp(r, "1") != 0)
		return -1;
	for (i = 0; i < m->nrcpts; i++)
		rcpt_set(&m->rcpts[i], RCPT_REFUSED, NULL);
	return 0;
}

/* Up to max octets; the count read, or -1. */
static ssize_t
read_all(int fd, char *buf, size_t max)
{
	size_t	 len = 0;
	ssize_t	 n;

	while (len < max) {
		n = read(fd, buf + len, max - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	return (ssize_t)len;
}

/* Frees what trailer_parse allocated; the descriptor is not ours. */
static void
message_clear(struct message *m)
{
	size_t	 i;

	free(m->sender);
	for (i = 0; i < m->nrcpts; i++) {
		free(m->rcpts[i].addr);
		free(m->rcpts[i].why);
	}
	free(m->rcpts);
	memset(m, 0, sizeof(*m));
	m->fd = -1;
}

/* From its first failed attempt, or from when it was queued. */
int
queue_expired(const struct account *a, const struct qentry *q)
{
	time_t	 start = q->first != 0 ? q->first : q->created;

	if (a->queue_max_age <= 0)
		return 0;
	return time(NULL) - start > a->queue_max_age;
}

void
queue_list(FILE *fp, const char *dir, int width)
{
	queue_list_at(fp, dir, width, time(NULL));
}

/*
 * mailq, after Postfix's: one block per message, the ones being sent
 * now marked with '*'.  width > 0 cuts lines to the terminal.
 */
void
queue_list_at(FILE *fp, const char *dir, int width, time_t now)
{
	struct error	 e;
	char		**ids;
	size_t		 n, i, count = 0, hidden = 0;
	long long	 total = 0;
	int		 dfd, rc, shared;

	memset(&e, 0, sizeof(e));
	if ((rc = dir_open(dir, 0, &dfd, &shared, &e)) == -1) {
		log_warn("%s", e.msg);
		return;
	}
	ids = NULL;
	n = 0;
	if (rc == 0 && scan_fd(dup(dfd), dir, &ids, &n, &e) == -1)
		log_warn("%s", e.msg);
	/* Raised again per entry only while it is read, not printed. */
	priv_drop();
	if (n == 0) {
		fputs("Mail queue is empty\n", fp);
		dir_close(rc == 0 ? dfd : -1);
		queue_ids_free(ids, n);
		return;
	}
	if (width > 0 && width < 20)
		width = 20;
	list_line(fp, width, "-Queue ID-------------------- --Size-- -Age-  "
	    "-Sender/Recipient-------");
	for (i = 0; i < n; i++)
		list_entry(fp, width, dfd, shared, dir, ids[i], now, &total,
		    &count, &hidden);
	list_line(fp, width, "-- %lld kB in %zu message%s%s", (total + 1023) /
	    1024, count, count == 1 ? "" : "s", hidden > 0 ? ", and more "
	    "of other users" : "");
	dir_close(dfd);
	queue_ids_free(ids, n);
}

/*
 * One entry.  In the shared queue of a setgid run, other users' mail is
 * only counted (*hidden): its envelope is theirs.
 */
static void
list_entry(FILE *fp, int width, int dfd, int shared, const char *dir,
    const char *id, time_t now, long long *total, size_t *count,
    size_t *hidden)
{
	struct qentry	 q;
	struct message	 m;
	const char	*why;
	char		 age[32];
	struct stat	 st;
	size_t		 i;
	int		 fd, active, rc;

	if (shared)
		priv_raise();
	fd = openat(dfd, id, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1) {
		priv_drop();
		return;		/* delivered meanwhile */
	}
	/* Only a probe: holding it would make a queue run skip this one. */
	active = flock(fd, LOCK_SH | LOCK_NB) == -1;
	if (!active)
		(void)flock(fd, LOCK_UN);
	rc = entry_read(dfd, dir, id, fd, shared, &q, &m, &why);
	priv_drop();
	/* Another user's entry, even a corrupt one, is theirs to read. */
	if (shared && priv_restricted() && (rc == -1 ? fstat(fd, &st) == -1 ||
	    st.st_uid != getuid() : q.owner != getuid())) {
		(*hidden)++;
		if (rc == 0) {
			message_clear(&m);
			qentry_free(&q);
		}
		close(fd);
		return;
	}
	if (rc == -1) {
		list_line(fp, width, "%-28s%c (corrupt, left alone: %s)", id,
		    active ? '*' : ' ', why);
		fputc('\n', fp);
		close(fd);
		return;
	}
	age_string(age, sizeof(age), now - q.created);
	list_line(fp, width, "%-28s%c %8lld %5s  %s", id, active ? '*' : ' ',
	    (long long)m.size, age, m.sender[0] != '\0' ? m.sender : "<>");
	for (i = 0; i < m.nrcpts; i++)
		list_rcpt(fp, width, &m.rcpts[i]);
	list_status(fp, width, &q, &m, active, now);
	fputc('\n', fp);
	*total += m.size;
	(*count)++;
	message_clear(&m);
	qentry_free(&q);
	close(fd);
}

/* A recipient, and what became of it when it is not simply waiting. */
static void
list_rcpt(FILE *fp, int width, const struct rcpt *r)
{
	static const char *const names[] = { "", "sent", "deferred",
	    "refused" };

	if (r->state == RCPT_PENDING)
		list_line(fp, width, "%46s%s", "", r->addr);
	else
		list_line(fp, width, "%46s%s (%s%s%s)", "", r->addr,
		    names[r->state], r->why != NULL ? ": " : "",
		    r->why != NULL ? r->why : "");
}

/* The attempts so far and when the next one comes. */
static void
list_status(FILE *fp, int width, const struct qentry *q,
    const struct message *m, int active, time_t now)
{
	char	 last[32], in[32], next[64];
	size_t	 i, owed = 0;

	for (i = 0; i < m->nrcpts; i++)
		owed += m->rcpts[i].unreported;
	if (owed > 0 && q->shared && q->owner != getuid())
		list_line(fp, width, "  (%zu refused recipient%s: waits for "
		    "uid %lu to collect it into their dead.letter)", owed,
		    owed == 1 ? "" : "s", (unsigned long)q->owner);
	if (q->attempts == 0) {
		list_line(fp, width, "  (%s)", active ? "being sent now" :
		    "no delivery attempt finished yet");
		return;
	}
	age_string(last, sizeof(last), now - q->last);
	if (active)
		snprintf(next, sizeof(next), "being sent now");
	else if (q->next > now) {
		age_string(in, sizeof(in), q->next - now);
		snprintf(next, sizeof(next), "next try in %s", in);
	} else
		snprintf(next, sizeof(next), "next try at the next run");
	list_line(fp, width, "  (%u attempt%s, last %s ago, %s: %s)",
	    q->attempts, q->attempts == 1 ? "" : "s", last, next, q->error);
}

/* One line, cut with "..." to the width, never inside a UTF-8 char. */
static void
list_line(FILE *fp, int width, const char *fmt, ...)
{
	char	 buf[4096];
	va_list	 ap;
	size_t	 cut;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (width > 0 && strlen(buf) > (size_t)width) {
		cut = (size_t)width - 3;
		while (cut > 0 && ((unsigned char)buf[cut] & 0xc0) == 0x80)
			cut--;
		memcpy(buf + cut, "...", 4);
	}
	fprintf(fp, "%s\n", buf);
}

static void
age_string(char *buf, size_t size, time_t secs)
{
	long long	 s = secs < 0 ? 0 : (long long)secs;

	if (s < 60)
		snprintf(buf, size, "%llds", s);
	else if (s < 3600)
		snprintf(buf, size, "%lldm", s / 60);
	else if (s < 86400)
		snprintf(buf, size, "%lldh", s / 3600);
	else
		snprintf(buf, size, "%lldd", s / 86400);
}

/* The strings q owns; q->fd belongs to the message (message_free). */
void
qentry_free(struct qentry *q)
{
	free(q->dir);
	free(q->path);
	free(q->account);
	free(q->dsn_envid);
	memset(q, 0, sizeof(*q));
	q->fd = -1;
}

/* SPDX-License-Identifier: ISC */
/*
 * Delivery: the caller's message first, then what waits in the queue for
 * the same account, over one session; every recipient served once; each
 * message settled as soon as its outcome is known: delivered (the entry
 * goes), kept for the recipients that wait (the entry stays, each
 * recipient's state in its status), or, for recipients refused for
 * good, a copy in dead.letter that names them.
 *
 * The rule for the caller (SPEC 1): exit 0 means the message is ours
 * now, delivered or kept; non-zero means the caller still owns it, so a
 * caller that retries never makes a duplicate.
 *
 * A connection that breaks mid-run (a relay's per-connection limit, a
 * 421) is opened again, at most RECONNECTS times per run, with the same
 * credentials: they belong to the run, not to the session.
 */
#include <sys/types.h>

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "smarthost.h"

#define RECONNECTS	3		/* new connections after a break */
#define PROGRESS_MIN	(1024 * 1024)	/* a message worth a progress line */
#define DIRS_MAX	64		/* queue directories one run looks at */

/* Whose mail a run takes from the shared queue of a setgid install. */
enum { FLUSH_OWN = 1, FLUSH_OTHERS = 2, FLUSH_ALL = 3 };

/* One message of a run, with its queue entry and outcome. */
struct job {
	struct mail	 mail;
	struct message	 m;
	struct qentry	 q;
	int		 queued;	/* q is its entry in the queue */
	int		 own;		/* the caller's message */
	int		 expired;	/* past queue_max_age */
};

/* A run: one account, its credentials and session, what it sends. */
struct run {
	struct account	*a;
	struct cred	 cred;
	struct session	*s;
	int		 reconnects;
	size_t		 rcpt_limit;	/* learnt, kept across reconnects */
	int		 who;		/* FLUSH_*: whose queued mail */
	int		 force;		/* ignore the retry schedule */
	int		 quiet;		/* the caller's message said it all */
	int		 tty;		/* stderr is a terminal */
	int		 sending;	/* a send, not a queue run */
	struct job	*own;		/* the caller's message, first */
	char		 own_id[QUEUE_ID_LEN + 1];	/* its queue entry */
	int		 own_given;
	int		 own_code;
	const char	*dir;		/* the queue, and its entries */
	char	       **ids;
	size_t		 nids, nextid;
	struct job	*ahead;		/* opened before connecting */
	struct job     **retry;		/* lost with a broken connection */
	size_t		 nretry;
	unsigned	 delivered, deferred, refused;
};

static struct mail *feed_next(void *);
static void	 feed_done(void *, struct mail *);
static struct job *queue_next(struct run *);
static struct job *job_open(struct run *, const char *);
static int	 job_eligible(struct run *, struct job *);
static void	 job_free(struct job *);
static int	 settle(struct run *, struct job *, const struct error *);
static int	 settle_refusals(struct run *, struct job *,
		    const struct error *, int);
static int	 settle_rest(struct run *, struct job *, const struct error *,
		    size_t);
static void	 say_kept(struct run *, struct job *, const struct error *);
static void	 notify(struct run *, struct job *);
static char	*rcpt_list(const struct message *, int);
static void	 run_session(struct run *);
static void	 run_count(struct run *, struct job *);
static void	 show_progress(void *, off_t, off_t);
static void	 keep_rescued(const char *, struct message *,
		    const struct error *);

/*
 * The caller's message: read from IN into the queue, then sent, with
 * the account's queue behind it.  Returns the exit code (SPEC 1).
 */
int
deliver_message(const struct cmdline *cl, struct account *a, int in)
{
	struct run	 r;
	struct job	*j;
	struct error	 e;
	char		**ids = NULL;
	size_t		 nids = 0;
	int		 spool = -1, code;

	memset(&r, 0, sizeof(r));
	memset(&e, 0, sizeof(e));
	j = xcalloc(1, sizeof(*j));
	j->own = 1;
	j->q.fd = -1;
	if (a->queue && queue_spool(a, &spool, &e) == -1) {
		log_warn("%s; the message cannot be queued", e.msg);
		spool = -1;
	}
	if (message_read(in, spool, cl, a, &j->m, &e) == -1) {
		if (spool != -1)
			close(spool);
		print_error(&e);
		if (j->m.rescued)
			keep_rescued(a->dead_letter, &j->m, &e);
		message_free(&j->m);
		free(j);
		return e.code;
	}
	/* Before the first byte goes out, the message is in the queue. */
	if (spool != -1) {
		if (queue_commit(a, &j->m, &j->q, &e) == 0)
			j->queued = 1;
		else
			log_warn("%s; the message cannot be queued", e.msg);
	}
	j->mail.m = &j->m;
	j->mail.owner = j;
	r.a = a;
	r.sending = 1;
	r.own = j;
	if (j->queued)
		snprintf(r.own_id, sizeof(r.own_id), "%s", j->q.id);
	r.own_code = EX_SOFTWARE;
	r.who = priv_restricted() ? FLUSH_OWN : FLUSH_ALL;
	r.tty = isatty(STDERR_FILENO);
	/* The backlog goes after it, over the same connection. */
	memset(&e, 0, sizeof(e));
	if (j->queued && queue_scan(a->queue_dir, &ids, &nids, &e) == 0) {
		r.dir = a->queue_dir;
		r.ids = ids;
		r.nids = nids;
	}
	run_session(&r);
	code = r.own_code;
	queue_ids_free(ids, nids);
	return code;
}

/*
 * A message read in spite of a configuration error goes to dead.letter
 * as it came: the caller hears non-zero, and nothing is lost (a cron
 * job's output with a broken configuration, say).
 */
static void
keep_rescued(const char *path, struct message *m, const struct error *why)
{
	struct account	 a;
	struct error	 e;

	memset(&a, 0, sizeof(a));
	memset(&e, 0, sizeof(e));
	a.dead_letter = (char *)path;
	if (m->sender == NULL)
		m->sender = xstrdup("");
	if (queue_dead_letter(&a, m, why, NULL, &e) == -1)
		log_notice("%s", e.msg);
	else
		log_notice("the message was appended to %s", path);
}

/*
 * The configuration cannot even be read: the message on standard input
 * is kept all the same, in the caller's ~/dead.letter.
 */
int
deliver_rescue(const struct cmdline *cl, const struct error *why)
{
	struct account	 a;
	struct message	 m;
	struct error	 e;
	struct passwd	*pw;
	const char	*home = getenv("HOME");
	char		*path;

	if (home == NULL || *home != '/')
		home = (pw = getpwuid(getuid())) != NULL ? pw->pw_dir : NULL;
	if (home == NULL || *home != '/') {
		log_notice("the message could not be kept: no home directory "
		    "for a dead.letter");
		return why->code;
	}
	path = concat3(home, "/dead.letter", "");
	memset(&a, 0, sizeof(a));
	memset(&e, 0, sizeof(e));
	/* No account: whatever it can read of the envelope, and the rest. */
	if (message_read(STDIN_FILENO, -1, cl, &a, &m, &e) == 0 ||
	    m.rescued)
		keep_rescued(path, &m, why);
	else
		log_notice("the message could not be kept: %s", e.msg);
	message_free(&m);
	free(path);
	return why->code;
}

/*
 * Connect, authenticate, send what the feed gives; after a break, again,
 * a bounded number of times.  Whatever could not be sent is settled as
 * kept (or dead.letter) with the reason.
 */
static void
run_session(struct run *r)
{
	struct smtp_feed f = { feed_next, feed_done, r };
	struct error	 e;
	struct job	*j;
	int		 progress;

	memset(&e, 0, sizeof(e));
	/* A queue run with nothing due makes no connection. */
	if (r->own == NULL && (r->ahead = queue_next(r)) == NULL &&
	    r->nretry == 0)
		return;
	progress = r->own != NULL && r->own->m.size >= PROGRESS_MIN &&
	    r->tty;
	if (r->a->auth != NULL && secret_get(r->a, &r->cred, &e) == -1)
		goto unsent;
	for (;;) {
		if ((r->s = smtp_open(r->a, &r->cred, &e)) == NULL)
			break;
		smtp_set_rcpt_limit(r->s, r->rcpt_limit);
		if (progress && !r->own_given)
			smtp_progress(r->s, show_progress, r);
		if (smtp_send(r->s, &f, &e) == 0) {
			memset(&e, 0, sizeof(e));
			break;
		}
		r->rcpt_limit = smtp_rcpt_limit(r->s);
		smtp_close(r->s);
		r->s = NULL;
		if (r->nretry == 0 && r->ahead == NULL && r->own_given &&
		    r->nextid >= r->nids)
			break;		/* nothing left to send */
		/* A refused password will be refused again: no retry. */
		if (e.code != EX_TEMPFAIL)
			break;
		if (++r->reconnects > RECONNECTS)
			break;
		trace("-- the connection broke (%s): connecting again", e.msg);
	}
	smtp_close(r->s);
	r->s = NULL;
unsent:
	secret_clear(&r->cred);
	/* What the session never took waits; the rest of the queue too. */
	if (r->own != NULL && !r->own_given) {
		r->own_given = 1;
		(void)settle(r, r->own, &e);
	}
	while (r->nretry > 0) {
		j = r->retry[--r->nretry];
		(void)settle(r, j, &e);
	}
	if (r->ahead != NULL) {
		j = r->ahead;
		r->ahead = NULL;
		(void)settle(r, j, &e);
	}
	free(r->retry);
	r->retry = NULL;
	if (e.msg[0] == '\0' || r->sending)
		return;
	/*
	 * -q: the relay cannot be reached; each waiting message records
	 * why, for mailq.  (The caller of a send does not wait for that.)
	 */
	if (!r->sending) {
		log_notice("%s; the queued messages of account %s wait for "
		    "the next run", e.msg, r->a->name);
		r->quiet = 1;
		while (r->nextid < r->nids)
			if ((j = job_open(r, r->ids[r->nextid++])) != NULL)
				(void)settle(r, j, &e);
	}
}

/*
 * The feed: the caller's message, then the ones a broken connection
 * left, then the queue, oldest first.
 */
static struct mail *
feed_next(void *ctx)
{
	struct run	*r = ctx;
	struct job	*j;

	if (r->own != NULL && !r->own_given) {
		r->own_given = 1;
		return &r->own->mail;
	}
	if (r->s != NULL)
		smtp_progress(r->s, NULL, NULL);
	if (r->nretry > 0) {
		j = r->retry[0];
		memmove(r->retry, r->retry + 1, --r->nretry *
		    sizeof(*r->retry));
		j->mail.lost = 0;
		return &j->mail;
	}
	if ((j = r->ahead) != NULL || (j = queue_next(r)) != NULL) {
		r->ahead = NULL;
		return &j->mail;
	}
	return NULL;
}

/* The next queued message this run is to send, opened and locked. */
static struct job *
queue_next(struct run *r)
{
	struct job	*j;

	while (r->nextid < r->nids)
		if ((j = job_open(r, r->ids[r->nextid++])) != NULL)
			return j;
	return NULL;
}

/* A message has its outcome: settled now, or sent again after a break. */
static void
feed_done(void *ctx, struct mail *ml)
{
	struct run	*r = ctx;
	struct job	*j = ml->owner;

	if (ml->lost && r->reconnects < RECONNECTS) {
		r->retry = xreallocarray(r->retry, r->nretry + 1,
		    sizeof(*r->retry));
		r->retry[r->nretry++] = j;
		return;
	}
	(void)settle(r, j, &ml->error);
}

/*
 * A queued message, opened and locked, if this run is to send it: of
 * this account, ours to send, not waiting for its retry time.  One that
 * needs no sending (expired, or refusals its owner has to collect) is
 * settled right here.
 */
static struct job *
job_open(struct run *r, const char *id)
{
	struct job	*j;
	struct error	 e;
	int		 rc;

	if (strcmp(id, r->own_id) == 0)
		return NULL;
	memset(&e, 0, sizeof(e));
	j = xcalloc(1, sizeof(*j));
	rc = queue_open(r->dir, id, &j->q, &j->m, &e);
	if (rc != 0) {
		if (rc == -1 && !r->quiet)
			log_notice("%s", e.msg);
		free(j);
		return NULL;	/* another run has it, or it is gone */
	}
	j->queued = 1;
	j->mail.m = &j->m;
	j->mail.owner = j;
	if ((rc = job_eligible(r, j)) == 1)
		return j;
	if (rc == 0)
		job_free(j);
	return NULL;
}

/*
 * 1: send it; 0: leave it alone; -1: settled here.  In the shared queue
 * of a setgid install a user's run takes only the user's own mail (one
 * could stop, kill and restart a run of someone else's at will);
 * root's (the queue timer's) takes all, but leaves another user's
 * refusals for the owner's dead.letter until queue_max_age is past.
 */
static int
job_eligible(struct run *r, struct job *j)
{
	struct error	 e;
	struct rcpt	*rc;
	size_t		 i, todo = 0;
	int		 own = !j->q.shared || j->q.owner == getuid();

	if (strcmp(j->q.account, r->a->name) != 0 ||
	    (r->who & (own ? FLUSH_OWN : FLUSH_OTHERS)) == 0 ||
	    (!own && getuid() != 0))
		return 0;
	memset(&e, 0, sizeof(e));
	if (queue_expired(r->a, &j->q)) {
		error_set(&e, EX_DATAERR, "not delivered within "
		    "queue_max_age; last error: %s", j->q.error);
		for (i = 0; i < j->m.nrcpts; i++) {
			rc = &j->m.rcpts[i];
			if (rc->state == RCPT_PENDING ||
			    rc->state == RCPT_DEFERRED) {
				rc->this_run = 1;
				rcpt_set(rc, RCPT_REFUSED, e.msg);
			}
		}
		if (!own)
			j->q.owner = getuid();	/* root's now */
		j->expired = 1;
		(void)settle(r, j, &e);
		return -1;
	}
	/* Deferred ones are tried again; sent and refused ones are done. */
	for (i = 0; i < j->m.nrcpts; i++) {
		rc = &j->m.rcpts[i];
		if (rc->state == RCPT_DEFERRED)
			rc->state = RCPT_PENDING;
		todo += rc->state == RCPT_PENDING;
	}
	/* Nothing to send: refusals for us to collect into dead.letter. */
	if (todo == 0) {
		if (!own)
			return 0;
		error_set(&e, EX_DATAERR, "%s", j->q.error);
		(void)settle(r, j, &e);
		return -1;
	}
	if (!r->force && j->q.next > time(NULL))
		return 0;
	return 1;
}

static void
job_free(struct job *j)
{
	if (j == NULL)
		return;
	message_free(&j->m);
	qentry_free(&j->q);
	free(j);
}

/*
 * A message after its attempt: every recipient refused for good
 * reported (a dead.letter copy naming them), then the ones that wait
 * kept in the queue, or, when it cannot keep them, put in dead.letter
 * too.  Frees the job; returns (and for the caller's message records)
 * the exit code.
 */
static int
settle(struct run *r, struct job *j, const struct error *why)
{
	struct message	*m = &j->m;
	size_t		 i, waiting = 0, tried = 0;
	int		 code, rest, other;

	/* What went wrong with this message first; else with the run. */
	if (j->mail.error.msg[0] != '\0' || why == NULL)
		why = &j->mail.error;
	/* Never tried (the relay could not be reached): they wait. */
	for (i = 0; i < m->nrcpts; i++) {
		if (m->rcpts[i].state == RCPT_PENDING) {
			m->rcpts[i].this_run = 1;
			rcpt_set(&m->rcpts[i], RCPT_DEFERRED, NULL);
		}
		waiting += m->rcpts[i].state == RCPT_DEFERRED;
		tried += m->rcpts[i].this_run;
	}
	other = j->queued && j->q.shared && j->q.owner != getuid();
	if (j->own && !r->quiet && why->msg[0] != '\0' &&
	    rcpt_count(m, RCPT_SENT) == 0)
		print_error(why);
	code = settle_refusals(r, j, why, other);
	rest = settle_rest(r, j, why, waiting);
	if (code == EX_OK)
		code = rest;
	if (tried > 0)
		log_delivery(r->a, m, j->mail.reply.code != 0 ?
		    &j->mail.reply : NULL, why, code);
	run_count(r, j);
	if (j->own) {
		r->own_code = code;
		r->own = NULL;
		r->quiet = 1;	/* the backlog after it stays quiet */
	}
	job_free(j);
	return code;
}

/*
 * Recipients refused in this run (or before, for their owner to hear
 * of): a copy in dead.letter that names them.  Another user's, in the
 * shared queue, wait for their owner's run.  Returns 0, or the exit code
 * when every recipient was refused (the caller's message is then not
 * ours: it is in dead.letter, and the caller hears non-zero).
 */
static int
settle_refusals(struct run *r, struct job *j, const struct error *cause,
    int other)
{
	struct message	*m = &j->m;
	struct error	 e, why;
	char		*list;
	size_t		 i, n = 0, first = 0;

	for (i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].unreported && n++ == 0)
			first = i;
	if (n == 0)
		return EX_OK;
	if (other) {
		if (!r->quiet)
			log_notice("message %s of uid %lu: %zu recipient%s "
			    "refused for good; it stays in the system queue "
			    "until its owner's next run puts it in their "
			    "dead.letter", j->q.id, (unsigned long)j->q.owner,
			    n, n == 1 ? "" : "s");
		return EX_OK;
	}
	memset(&e, 0, sizeof(e));
	/* Why, as dead.letter's header says it: the relay's own words. */
	why = *cause;
	if (why.msg[0] == '\0' && m->rcpts[first].why != NULL)
		error_set(&why, EX_DATAERR, "refused for good: %s",
		    m->rcpts[first].why);
	else if (why.msg[0] == '\0')
		error_set(&why, EX_DATAERR, "refused for good by the relay");
	if (why.code == 0 || why.code == EX_TEMPFAIL)
		why.code = EX_DATAERR;
	list = rcpt_list(m, 1);
	/* Part of it went: say exactly who did not get it. */
	if ((!r->quiet || j->own) && rcpt_count(m, RCPT_SENT) > 0) {
		for (i = 0; i < m->nrcpts; i++)
			if (m->rcpts[i].unreported)
				log_notice("not delivered to <%s>: %s",
				    m->rcpts[i].addr, m->rcpts[i].why ?
				    m->rcpts[i].why : why.msg);
	}
	if (queue_dead_letter(r->a, m, &why, rcpt_count(m, RCPT_SENT) > 0 ||
	    rcpt_count(m, RCPT_DEFERRED) > 0 ? list : NULL, &e) == -1) {
		log_notice("%s", e.msg);
		free(list);
		/* Kept in the queue, refusals and all, for a later run. */
		return j->queued && r->a->queue ? EX_OK : EX_IOERR;
	}
	free(list);
	notify(r, j);
	for (i = 0; i < m->nrcpts; i++)
		m->rcpts[i].unreported = 0;
	if (!r->quiet || j->own)
		log_notice("%s was appended to %s", rcpt_count(m, RCPT_SENT) >
		    0 ? "a copy of the message (delivered to the others)" :
		    "the message", r->a->dead_letter);
	if (rcpt_count(m, RCPT_SENT) > 0 || rcpt_count(m, RCPT_DEFERRED) > 0)
		return EX_OK;
	return why.code != 0 ? why.code : EX_DATAERR;
}

/*
 * A failure notice about J's refusals (notice.c), queued; it goes next
 * over this session, or with a later run.
 */
static void
notify(struct run *r, struct job *j)
{
	struct job	*n;
	struct error	 e;
	int		 rc;

	memset(&e, 0, sizeof(e));
	n = xcalloc(1, sizeof(*n));
	n->q.fd = -1;
	if ((rc = notice_queue(r->a, &j->m, j->expired, &n->m, &n->q,
	    &e)) != 0) {
		if (rc == -1)
			log_notice("no failure notice: %s", e.msg);
		free(n);
		return;
	}
	n->queued = 1;
	n->mail.m = &n->m;
	n->mail.owner = n;
	trace("-- failure notice queued as %s", n->q.id);
	r->retry = xreallocarray(r->retry, r->nretry + 1, sizeof(*r->retry));
	r->retry[r->nretry++] = n;
}

/*
 * The recipients that wait: kept in the queue (exit 0: ours now), or,
 * with no queue, put in dead.letter with the reason (the caller's).
 * Nothing waits: the entry goes.
 */
static int
settle_rest(struct run *r, struct job *j, const struct error *why,
    size_t waiting)
{
	struct message	*m = &j->m;
	struct error	 e;
	char		*list;
	int		 code;
	size_t		 i;

	memset(&e, 0, sizeof(e));
	if (waiting > 0 && (!r->quiet || j->own) &&
	    rcpt_count(m, RCPT_SENT) > 0)
		for (i = 0; i < m->nrcpts; i++)
			if (m->rcpts[i].state == RCPT_DEFERRED)
				log_notice("delivery to <%s> deferred: %s",
				    m->rcpts[i].addr, m->rcpts[i].why ?
				    m->rcpts[i].why : why->msg);
	if (waiting == 0 && j->queued) {
		for (i = 0; i < m->nrcpts; i++)
			if (m->rcpts[i].unreported)
				break;
		/* Refusals of another user's message wait for its owner. */
		if (i < m->nrcpts)
			return queue_defer(&j->q, m, why, 0, &e) == -1 ?
			    EX_IOERR : EX_OK;
		(void)queue_done(&j->q);
		return EX_OK;
	}
	if (waiting == 0)
		return EX_OK;
	if (j->queued && r->a->queue) {
		/* Backoff only when the relay answered about it. */
		if (queue_defer(&j->q, m, why, j->mail.answered &&
		    !j->mail.lost, &e) == 0) {
			say_kept(r, j, why);
			return EX_OK;
		}
		log_notice("%s", e.msg);
	}
	/* Nowhere to keep them: dead.letter, and the caller still owns it. */
	code = why->code != 0 && why->code != EX_OK ? why->code : EX_TEMPFAIL;
	list = rcpt_count(m, RCPT_SENT) > 0 ? rcpt_list(m, 0) : NULL;
	if (queue_dead_letter(r->a, m, why, list, &e) == -1) {
		log_notice("%s", e.msg);
		free(list);
		if (j->queued) {
			log_notice("the message stays in the queue as %s",
			    j->q.id);
			(void)queue_defer(&j->q, m, why, 0, &e);
			return EX_OK;
		}
		return EX_IOERR;
	}
	free(list);
	if (j->queued)
		(void)queue_done(&j->q);
	if (!r->quiet || j->own)
		log_notice("the message was appended to %s",
		    r->a->dead_letter);
	return rcpt_count(m, RCPT_SENT) > 0 ? EX_OK : code;
}

/*
 * Kept: the caller's message says so, loudly when a person has to fix
 * something first (a refused password, a certificate, a stripped
 * STARTTLS: the relay will not change its mind by itself).
 */
static void
say_kept(struct run *r, struct job *j, const struct error *why)
{
	const char	*hint;

	if (!j->own) {
		if (!r->quiet)
			log_notice("message %s stays in the queue: %s",
			    j->q.id, why->msg);
		return;
	}
	if (r->a->provider != NULL && why->reply[0] != '\0' &&
	    (hint = provider_hint(r->a->provider, why->reply)) != NULL)
		log_notice("hint for %s: %s", r->a->provider, hint);
	if (why->code == EX_TEMPFAIL || why->code == 0)
		log_notice("queued as %s; it will be sent by the next run or "
		    "sendmail -q", j->q.id);
	else
		log_notice("NOT SENT YET: the message is kept in the queue as "
		    "%s, and every later run tries it again; fix the cause "
		    "above, then run sendmail -q", j->q.id);
}

/* The recipients refused (unreported) or not sent, comma-separated. */
static char *
rcpt_list(const struct message *m, int refused)
{
	char	*buf = NULL;
	size_t	 len = 0, i;
	FILE	*fp;
	int	 n = 0;

	if ((fp = open_memstream(&buf, &len)) == NULL)
		return NULL;
	for (i = 0; i < m->nrcpts; i++)
		if (refused ? m->rcpts[i].unreported :
		    m->rcpts[i].state != RCPT_SENT)
			fprintf(fp, "%s%s", n++ ? "," : "", m->rcpts[i].addr);
	if (fclose(fp) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* The queue run's counters and, on a terminal, its progress line. */
static void
run_count(struct run *r, struct job *j)
{
	const struct message *m = &j->m;

	if (j->own)
		return;
	if (rcpt_count(m, RCPT_DEFERRED) > 0)
		r->deferred++;
	else if (rcpt_count(m, RCPT_SENT) > 0)
		r->delivered++;
	else
		r->refused++;
	if (rcpt_count(m, RCPT_SENT) > 0)
		trace("-- delivered %s from the queue", j->q.id);
	if (r->tty && !r->quiet)
		fprintf(stderr, "\rsmarthost: queue: %u delivered, %u "
		    "deferred, %u refused ", r->delivered, r->deferred,
		    r->refused);
}

static void
show_progress(void *ctx, off_t done, off_t total)
{
	(void)ctx;
	fprintf(stderr, "\rsmarthost: sent %.1f of %.1f MB (%d%%)%s",
	    (double)done / 1e6, (double)total / 1e6,
	    (int)(done * 100 / (total > 0 ? total : 1)),
	    done >= total ? "\n" : " ");
}

/*
 * -q and -bp: the queue directories the configuration names (every
 * account's queue_dir), and in a setgid run for a user also the system
 * queue and the queue of the user's own accounts; without duplicates.
 */
static size_t
queue_dirs(const struct cmdline *cl, const struct account *def,
    char **dirs)
{
	struct cmdline	 one = *cl;
	struct account	 a;
	struct error	 e;
	char		**names = NULL, *cand;
	size_t		 n = 0, nnames = 0, i, k;

	memset(&e, 0, sizeof(e));
	if (def != NULL && def->queue_dir != NULL)
		dirs[n++] = xstrdup(def->queue_dir);
	if (config_account_names(cl, &names, &nnames, &e) == -1)
		log_warn("%s", e.msg);
	for (i = 0; i <= nnames + 2 && n < DIRS_MAX; i++) {
		cand = NULL;
		if (i < nnames) {
			one.account = names[i];
			if (config_account(&one, &a, &e) == 0) {
				if (a.queue_dir != NULL)
					cand = xstrdup(a.queue_dir);
				account_free(&a);
			}
		} else if (i == nnames && priv_restricted())
			cand = xstrdup(config_system_queue());
		else if (i == nnames + 1 && priv_restricted())
			cand = config_user_queue();
		if (cand == NULL)
			continue;
		for (k = 0; k < n && strcmp(dirs[k], cand) != 0; k++)
			;
		if (k < n)
			free(cand);
		else
			dirs[n++] = cand;
	}
	for (i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	return n;
}

/* mailq: every queue, one after the other. */
void
deliver_list(const struct cmdline *cl, const struct account *def, FILE *fp,
    int width)
{
	char	*dirs[DIRS_MAX];
	size_t	 n, i;

	n = queue_dirs(cl, def, dirs);
	for (i = 0; i < n; i++) {
		if (n > 1)
			fprintf(fp, "%s%s:\n", i > 0 ? "\n" : "", dirs[i]);
		queue_list(fp, dirs[i], width);
		free(dirs[i]);
	}
}

/* The account names with mail in DIR, in the order of their oldest. */
static char **
queued_accounts(const char *dir, size_t *count)
{
	struct qentry	 q;
	struct message	 m;
	struct error	 e;
	char		**ids, **names = NULL;
	size_t		 n, i, j, k = 0;

	memset(&e, 0, sizeof(e));
	*count = 0;
	if (queue_scan(dir, &ids, &n, &e) == -1) {
		log_notice("%s", e.msg);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		if (queue_open(dir, ids[i], &q, &m, &e) != 0)
			continue;	/* busy, not ours, or reported later */
		for (j = 0; j < k && strcmp(names[j], q.account) != 0; j++)
			;
		if (j == k) {
			names = xreallocarray(names, k + 1, sizeof(*names));
			names[k++] = xstrdup(q.account);
		}
		message_free(&m);
		qentry_free(&q);
	}
	queue_ids_free(ids, n);
	*count = k;
	return names;
}

/* One account's mail in DIR, over one session. */
static void
flush_account(const struct cmdline *cl, const char *dir, const char *name,
    int force, struct run *total)
{
	struct cmdline	 one = *cl;
	struct account	 a;
	struct error	 e;
	struct run	 r;

	memset(&e, 0, sizeof(e));
	one.account = name;
	if (config_account(&one, &a, &e) == -1) {
		log_notice("mail queued for account %s stays: %s", name,
		    e.msg);
		return;
	}
	if (a.host == NULL) {
		log_notice("mail queued for account %s stays: no relay host "
		    "configured", name);
		account_free(&a);
		return;
	}
	memset(&r, 0, sizeof(r));
	r.a = &a;
	r.who = priv_restricted() ? FLUSH_OWN : FLUSH_ALL;
	r.force = force;
	r.tty = total->tty;
	r.dir = dir;
	if (queue_scan(dir, &r.ids, &r.nids, &e) == 0 && r.nids > 0)
		run_session(&r);
	queue_ids_free(r.ids, r.nids);
	total->delivered += r.delivered;
	total->deferred += r.deferred;
	total->refused += r.refused;
	account_free(&a);
}

/*
 * -q: every account with mail waiting in every queue, one session each.
 * The retry schedule is kept unless FORCE (-qf, --now).
 */
int
deliver_queue(const struct cmdline *cl, int force)
{
	struct run	 total;
	char		*dirs[DIRS_MAX], **names;
	size_t		 n, i, k, nnames;

	memset(&total, 0, sizeof(total));
	total.tty = isatty(STDERR_FILENO);
	n = queue_dirs(cl, NULL, dirs);
	for (i = 0; i < n; i++) {
		names = queued_accounts(dirs[i], &nnames);
		for (k = 0; k < nnames; k++) {
			flush_account(cl, dirs[i], names[k], force, &total);
			free(names[k]);
		}
		free(names);
		free(dirs[i]);
	}
	if (total.tty || cl->verbose)
		fprintf(stderr, "%ssmarthost: queue: %u delivered, %u "
		    "deferred, %u refused\n", total.tty ? "\r" : "",
		    total.delivered, total.deferred, total.refused);
	return EX_OK;
}

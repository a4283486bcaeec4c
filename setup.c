/* SPDX-License-Identifier: ISC */
/*
 * Setting smarthost up.
 *
 * --import-postfix turns the main.cf of a Postfix that relays through
 * a smarthost (a guide's setup: relayhost, SASL password map, TLS
 * level, sender rewriting) into a smarthost configuration, with a
 * comment for every setting it could not carry over.
 *
 * --configure asks for what a preset does not know, proves the answers
 * by connecting and authenticating, and only then writes the user's
 * configuration file (for root, the system one unless it asks for its
 * own).  With an OAuth2 client it signs the user in first (oauth.c: the
 * device flow, or a code pasted back), so the token store holds a
 * refresh token before the login is tested.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "smarthost.h"

#define POSTFIX_DIR	"/etc/postfix"
#define PF_FILE_MAX	(1024 * 1024)	/* main.cf, or a map's source */
#define PF_LINES_MAX	10000		/* logical lines of one file */
#define PF_DEPTH_MAX	10		/* nested $name expansion */
#define PF_VALUE_MAX	4096		/* an expanded value */
#define PF_KEYS		5		/* ways to write the relay in a map */
#define ANSWER_MAX	1024		/* one line typed at --configure */

/*
 * Postfix files: logical lines, where a line that starts with
 * whitespace continues the one before and comment lines are skipped.
 */
struct llines {
	char	**v;
	size_t	 *lineno;
	size_t	  n;
};

struct param {
	char	*name, *value;
	size_t	 line;
	int	 used;		/* carried over or commented on */
};

struct maincf {
	const char	*dir;
	char		 path[PATH_MAX];
	struct param	*v;
	size_t		 n;
};

/* What the import produces: directives first, then the comments. */
struct conv {
	char	 relay[300];	/* relayhost as written, expanded */
	char	 host[256];
	int	 port;
	int	 implicit;
	char	*trust, *cert, *key, *helo, *source_ip, *auth;
	char	*user, *password;	/* the password is wiped */
	char	*from;
	int	 rewrite_local, set_from_header;
	char	*maildomain;
	char   **notes;
	size_t	 nnotes;
};

static void
llines_free(struct llines *l)
{
	size_t	 i;

	/* Map sources hold passwords: wipe every line. */
	for (i = 0; i < l->n; i++)
		secret_free(l->v[i]);
	free(l->v);
	free(l->lineno);
	memset(l, 0, sizeof(*l));
}


static void
llines_add(struct llines *l, const char *text, size_t lineno)
{
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->lineno = xreallocarray(l->lineno, l->n + 1, sizeof(*l->lineno));
	l->v[l->n] = xstrdup(text);
	l->lineno[l->n++] = lineno;
}

/* Append a continuation line to the last logical line. */
static void
llines_extend(struct llines *l, const char *more)
{
	char	*old = l->v[l->n - 1], *joined;
	size_t	 n = strlen(old) + strlen(more) + 2;

	joined = xcalloc(1, n);
	snprintf(joined, n, "%s %s", old, more);
	secret_free(old);
	l->v[l->n - 1] = joined;
}

static int
llines_split(char *buf, const char *path, struct llines *l,
    struct error *err)
{
	char	*line, *next, *s;
	size_t	 lineno = 0;

	for (line = buf; line != NULL; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		line[strcspn(line, "\r")] = '\0';
		s = str_trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		if (is_blank(line[0]) && l->n > 0) {
			llines_extend(l, s);
			continue;
		}
		if (l->n >= PF_LINES_MAX)
			return error_set(err, EX_DATAERR, "%s has more than "
			    "%d lines", path, PF_LINES_MAX);
		llines_add(l, s, lineno);
	}
	return 0;
}

static int
llines_read(const char *path, struct llines *l, struct error *err)
{
	struct stat	 st;
	char		*buf;
	size_t		 len = 0;
	ssize_t		 n;
	int		 fd, rc;

	memset(l, 0, sizeof(*l));
	if ((fd = open_read(path, 0)) == -1)
		return error_set(err, EX_NOINPUT, "cannot read %s: %s", path,
		    strerror(errno));
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > PF_FILE_MAX) {
		close(fd);
		return error_set(err, EX_DATAERR, "%s is not a regular file "
		    "of at most 1 MiB", path);
	}
	buf = xcalloc(1, (size_t)st.st_size + 1);
	while (len < (size_t)st.st_size &&
	    (n = read(fd, buf + len, (size_t)st.st_size - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	if (strlen(buf) != len)
		rc = error_set(err, EX_DATAERR, "%s contains a NUL byte",
		    path);
	else
		rc = llines_split(buf, path, l, err);
	explicit_bzero(buf, len);
	free(buf);
	if (rc == -1)
		llines_free(l);
	return rc;
}

/*
 * main.cf: `name = value'; a later line for the same name wins.
 */
static struct param *
pf_find(struct maincf *m, const char *name)
{
	size_t	 i;

	for (i = 0; i < m->n; i++)
		if (strcmp(m->v[i].name, name) == 0)
			return &m->v[i];
	return NULL;
}

static int
pf_add(struct maincf *m, char *line, size_t lineno, struct error *err)
{
	struct param	*p;
	char		*eq = strchr(line, '='), *name, *value;

	if (eq == NULL)
		return error_set(err, EX_DATAERR, "%s:%zu: expected NAME = "
		    "VALUE", m->path, lineno);
	*eq = '\0';
	name = str_trim(line);
	value = str_trim(eq + 1);
	if (*name == '\0' || strpbrk(name, " \t") != NULL)
		return error_set(err, EX_DATAERR, "%s:%zu: expected NAME = "
		    "VALUE", m->path, lineno);
	if ((p = pf_find(m, name)) != NULL) {
		free(p->value);
		p->value = xstrdup(value);
		return 0;
	}
	m->v = xreallocarray(m->v, m->n + 1, sizeof(*m->v));
	p = &m->v[m->n++];
	p->name = xstrdup(name);
	p->value = xstrdup(value);
	p->line = lineno;
	p->used = 0;
	return 0;
}

static int
pf_read(struct maincf *m, const char *dir, struct error *err)
{
	struct llines	 l;
	size_t		 i;
	int		 rc = 0;

	memset(m, 0, sizeof(*m));
	m->dir = dir;
	snprintf(m->path, sizeof(m->path), "%s/main.cf", dir);
	if (llines_read(m->path, &l, err) == -1)
		return -1;
	for (i = 0; rc == 0 && i < l.n; i++)
		rc = pf_add(m, l.v[i], l.lineno[i], err);
	llines_free(&l);
	return rc;
}

static void
pf_free(struct maincf *m)
{
	size_t	 i;

	for (i = 0; i < m->n; i++) {
		free(m->v[i].name);
		free(m->v[i].value);
	}
	free(m->v);
	memset(m, 0, sizeof(*m));
}

/* A parameter's raw value, marked as dealt with; NULL when unset. */
static const char *
pf_get(struct maincf *m, const char *name)
{
	struct param	*p = pf_find(m, name);

	if (p == NULL)
		return NULL;
	p->used = 1;
	return p->value;
}

static int
pf_yes(struct maincf *m, const char *name)
{
	const char	*v = pf_get(m, name);

	return v != NULL && (strcasecmp(v, "yes") == 0 ||
	    strcasecmp(v, "true") == 0);
}

static int
buf_add(char *out, size_t size, size_t *n, const char *s, size_t len)
{
	if (*n + len >= size)
		return -1;
	memcpy(out + *n, s, len);
	*n += len;
	out[*n] = '\0';
	return 0;
}

/* The name after a '$': name, {name} or (name); 0 when malformed. */
static size_t
pf_refname(const char *s, char *name, size_t size, size_t *skip)
{
	const char	*close = NULL;
	size_t		 n;

	if (*s == '{' || *s == '(')
		close = *s++ == '{' ? "}" : ")";
	for (n = 0; isalnum((unsigned char)s[n]) || s[n] == '_'; n++)
		;
	if (n == 0 || n >= size || (close != NULL && s[n] != *close))
		return 0;
	memcpy(name, s, n);
	name[n] = '\0';
	*skip = n + (close != NULL ? 2 : 0);
	return n;
}

/*
 * $name, ${name} and $(name) from main.cf, and $config_directory;
 * *bad names what could not be expanded.
 */
static int
pf_expand(struct maincf *m, const char *in, char *out, size_t size,
    int depth, char *bad, size_t badsize)
{
	char		 name[64], sub[PF_VALUE_MAX];
	const char	*v;
	size_t		 n = 0, skip;

	out[0] = '\0';
	for (; *in != '\0'; in++) {
		if (*in != '$') {
			if (buf_add(out, size, &n, in, 1) == -1)
				goto toolong;
			continue;
		}
		if (in[1] == '$') {
			in++;
			if (buf_add(out, size, &n, "$", 1) == -1)
				goto toolong;
			continue;
		}
		if (pf_refname(in + 1, name, sizeof(name), &skip) == 0) {
			snprintf(bad, badsize, "%.40s", in);
			return -1;
		}
		in += skip;
		v = pf_get(m, name);
		if (v == NULL && strcmp(name, "config_directory") == 0)
			v = m->dir;
		if (v == NULL || depth >= PF_DEPTH_MAX) {
			snprintf(bad, badsize, "$%.60s", name);
			return -1;
		}
		if (pf_expand(m, v, sub, sizeof(sub), depth + 1, bad,
		    badsize) == -1)
			return -1;
		if (buf_add(out, size, &n, sub, strlen(sub)) == -1)
			goto toolong;
	}
	return 0;
toolong:
	snprintf(bad, badsize, "a value longer than %d characters",
	    PF_VALUE_MAX);
	return -1;
}

/*
 * The result.
 */
static void
note(struct conv *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
note(struct conv *c, const char *fmt, ...)
{
	char	 raw[2048], clean[2048];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	sanitize(clean, sizeof(clean), raw);
	c->notes = xreallocarray(c->notes, c->nnotes + 1, sizeof(*c->notes));
	c->notes[c->nnotes++] = xstrdup(clean);
}

/* The value of a parameter, expanded; NULL (and a note) when it fails. */
static const char *
pf_value(struct maincf *m, struct conv *c, const char *name, char *out,
    size_t size)
{
	const char	*v = pf_get(m, name);
	char		 bad[64];

	if (v == NULL)
		return NULL;
	if (pf_expand(m, v, out, size, 0, bad, sizeof(bad)) == -1) {
		note(c, "not carried over: %s = %s (%s is not set in "
		    "main.cf)", name, v, bad);
		return NULL;
	}
	return out;
}

static void
conv_free(struct conv *c)
{
	size_t	 i;

	free(c->trust);
	free(c->cert);
	free(c->key);
	free(c->helo);
	free(c->source_ip);
	free(c->auth);
	free(c->user);
	secret_free(c->password);
	free(c->from);
	free(c->maildomain);
	for (i = 0; i < c->nnotes; i++)
		free(c->notes[i]);
	free(c->notes);
}

/*
 * relayhost: [host]:port, host:port or host; the port may be a service
 * name.  Only the first of a list is used.
 */
static int
port_number(const char *s)
{
	char	*end;
	long	 n;

	if (strcmp(s, "smtp") == 0)
		return 25;
	if (strcmp(s, "submission") == 0)
		return 587;
	if (strcmp(s, "smtps") == 0 || strcmp(s, "submissions") == 0)
		return 465;
	if (!isdigit((unsigned char)*s))
		return -1;
	n = strtol(s, &end, 10);
	return *end == '\0' && n > 0 && n < 65536 ? (int)n : -1;
}

static int
relay_split(const char *s, char *host, size_t size, int *port,
    int *brackets)
{
	const char	*end, *colon;

	*brackets = s[0] == '[';
	if (*brackets) {
		if ((end = strchr(s, ']')) == NULL)
			return -1;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			return -1;
		s++;
	} else {
		colon = strrchr(s, ':');
		end = colon != NULL ? colon : s + strlen(s);
	}
	if (end == s || (size_t)(end - s) >= size)
		return -1;
	memcpy(host, s, (size_t)(end - s));
	host[end - s] = '\0';
	*port = colon != NULL ? port_number(colon + 1) : 0;
	return *port == -1 || strpbrk(host, " \t[]:") != NULL ? -1 : 0;
}

static int
conv_relay(struct maincf *m, struct conv *c, struct error *err)
{
	char		 v[PF_VALUE_MAX];
	const char	*raw = pf_get(m, "relayhost");
	size_t		 n;
	int		 brackets;

	if (raw == NULL || *raw == '\0')
		return error_set(err, EX_CONFIG, "%s sets no relayhost: this "
		    "Postfix delivers mail itself instead of through a relay, "
		    "so there is nothing to import; set host in smarthost's "
		    "configuration by hand", m->path);
	if (pf_value(m, c, "relayhost", v, sizeof(v)) == NULL)
		return error_set(err, EX_CONFIG, "%s: relayhost = %s refers "
		    "to a parameter main.cf does not set", m->path, raw);
	n = strcspn(v, ", \t");
	if (n >= sizeof(c->relay))
		return error_set(err, EX_CONFIG, "%s: relayhost is longer "
		    "than %zu characters", m->path, sizeof(c->relay) - 1);
	memcpy(c->relay, v, n);
	c->relay[n] = '\0';
	if (relay_split(c->relay, c->host, sizeof(c->host), &c->port,
	    &brackets) == -1)
		return error_set(err, EX_CONFIG, "%s: cannot read relayhost = "
		    "%s: expected [HOST]:PORT, HOST:PORT or HOST", m->path, v);
	if (v[n] != '\0')
		note(c, "relayhost = %s: smarthost uses one relay, the first",
		    v);
	if (!brackets)
		note(c, "relayhost = %s: without brackets Postfix looked up "
		    "the MX records of %s; smarthost never does and connects "
		    "to %s itself", v, c->host, c->host);
	if (c->port == 0) {
		c->port = 25;
		note(c, "relayhost = %s names no port, so Postfix used 25; "
		    "providers take mail from programs on 587 (STARTTLS) or "
		    "465 (set port 465 and tls_starttls off)", v);
	}
	c->implicit = pf_yes(m, "smtp_tls_wrappermode") || c->port == 465;
	return 0;
}

static char *
dup_value(struct maincf *m, struct conv *c, const char *name)
{
	char	 v[PF_VALUE_MAX];

	if (pf_value(m, c, name, v, sizeof(v)) == NULL || v[0] == '\0')
		return NULL;
	return xstrdup(v);
}

static void
conv_tls_level(struct maincf *m, struct conv *c)
{
	const char	*lvl = pf_get(m, "smtp_tls_security_level");

	if (lvl == NULL || *lvl == '\0') {
		if (pf_yes(m, "smtp_enforce_tls"))
			lvl = "encrypt";
		else if (pf_yes(m, "smtp_use_tls"))
			lvl = "may";
	}
	if (lvl == NULL || *lvl == '\0' || strcmp(lvl, "none") == 0)
		note(c, "smtp_tls_security_level = %s: Postfix sent without "
		    "TLS; smarthost always uses TLS (set tls off only for a "
		    "relay that has none: then no password is sent)",
		    lvl != NULL && *lvl != '\0' ? lvl : "(not set)");
	else if (strcmp(lvl, "may") == 0)
		note(c, "smtp_tls_security_level = may: smarthost never falls "
		    "back to plaintext; TLS is required and the certificate "
		    "checked");
	else if (strcmp(lvl, "encrypt") == 0)
		note(c, "smtp_tls_security_level = encrypt: Postfix did not "
		    "check the certificate; smarthost does (tls_trust_file, "
		    "or pin it with tls_fingerprint)");
	else if (strcmp(lvl, "verify") != 0 && strcmp(lvl, "secure") != 0)
		note(c, "smtp_tls_security_level = %s: smarthost checks the "
		    "certificate against tls_trust_file (DANE and "
		    "fingerprint levels are not carried over)", lvl);
}

static void
conv_tls(struct maincf *m, struct conv *c)
{
	conv_tls_level(m, c);
	c->trust = dup_value(m, c, "smtp_tls_CAfile");
	c->cert = dup_value(m, c, "smtp_tls_cert_file");
	c->key = dup_value(m, c, "smtp_tls_key_file");
	c->helo = dup_value(m, c, "smtp_helo_name");
	c->source_ip = dup_value(m, c, "smtp_bind_address");
}

/*
 * Maps: only tables whose source is a plain text file can be read.
 * Files named under /etc/postfix are read from DIR, so a copy of
 * another machine's /etc/postfix can be imported.
 */
static int
map_source(struct maincf *m, struct conv *c, const char *param,
    const char *spec, char *path, size_t size)
{
	static const char *const plain[] = { "hash", "btree", "texthash",
	    "lmdb", "cdb", "dbm", "sdbm", NULL };
	const char	*colon = strchr(spec, ':'), *file = spec;
	size_t		 i, n = colon != NULL ? (size_t)(colon - spec) : 0;

	if (colon != NULL) {
		for (i = 0; plain[i] != NULL; i++)
			if (strlen(plain[i]) == n &&
			    strncmp(plain[i], spec, n) == 0)
				break;
		if (plain[i] == NULL) {
			note(c, "not carried over: %s = %s (smarthost reads "
			    "only tables made from a text file, such as "
			    "hash: and texthash:)", param, spec);
			return -1;
		}
		file = colon + 1;
	}
	if (strncmp(file, POSTFIX_DIR "/", sizeof(POSTFIX_DIR)) == 0 &&
	    strcmp(m->dir, POSTFIX_DIR) != 0)
		snprintf(path, size, "%s/%s", m->dir,
		    file + sizeof(POSTFIX_DIR));
	else
		snprintf(path, size, "%s", file);
	return 0;
}

/* Read a map's text source; a failure becomes a note. */
static int
map_read(struct maincf *m, struct conv *c, const char *param,
    const char *spec, struct llines *l)
{
	char		 path[PATH_MAX];
	struct error	 e;

	if (map_source(m, c, param, spec, path, sizeof(path)) == -1)
		return -1;
	if (llines_read(path, l, &e) == -1) {
		note(c, "not carried over: %s = %s (%s)", param, spec, e.msg);
		return -1;
	}
	return 0;
}

/* The value for key in a map's lines, or NULL. */
static const char *
map_lookup(const struct llines *l, const char *key)
{
	size_t	 i, n = strlen(key);

	for (i = 0; i < l->n; i++)
		if (strncasecmp(l->v[i], key, n) == 0 &&
		    is_blank(l->v[i][n]))
			return str_trim(l->v[i] + n);
	return NULL;
}

/* How a sasl_password line may name the relay, most specific first. */
static void
relay_keys(const struct conv *c, char keys[PF_KEYS][300])
{
	snprintf(keys[0], sizeof(keys[0]), "%s", c->relay);
	snprintf(keys[1], sizeof(keys[1]), "[%s]:%d", c->host, c->port);
	snprintf(keys[2], sizeof(keys[2]), "%s:%d", c->host, c->port);
	snprintf(keys[3], sizeof(keys[3]), "[%s]", c->host);
	snprintf(keys[4], sizeof(keys[4]), "%s", c->host);
}

static int
sasl_entry(struct conv *c, const struct llines *l)
{
	char		 keys[PF_KEYS][300];
	const char	*v = NULL, *colon;
	size_t		 i;

	relay_keys(c, keys);
	for (i = 0; i < PF_KEYS && v == NULL; i++)
		v = map_lookup(l, keys[i]);
	if (v == NULL || (colon = strchr(v, ':')) == NULL || colon == v)
		return -1;
	c->user = xcalloc(1, (size_t)(colon - v) + 1);
	memcpy(c->user, v, (size_t)(colon - v));
	c->password = xstrdup(colon + 1);
	return 0;
}

static void
conv_sasl_options(struct maincf *m, struct conv *c)
{
	const char	*opts = pf_get(m, "smtp_sasl_security_options");
	const char	*filter = pf_get(m, "smtp_sasl_mechanism_filter");

	if (opts != NULL && strstr(opts, "noplaintext") != NULL)
		note(c, "smtp_sasl_security_options = %s: Postfix refused "
		    "PLAIN and LOGIN; smarthost takes the strongest mechanism "
		    "both sides have and sends PLAIN or LOGIN only inside "
		    "TLS (set auth to a mechanism such as SCRAM-SHA-256 to "
		    "insist on it)", opts);
	else if (opts != NULL)
		note(c, "smtp_sasl_security_options = %s: nothing to carry "
		    "over: smarthost never logs in anonymously and sends "
		    "PLAIN or LOGIN only inside TLS", opts);
	if ((opts = pf_get(m, "smtp_sasl_tls_security_options")) != NULL)
		note(c, "smtp_sasl_tls_security_options = %s: nothing to "
		    "carry over: smarthost authenticates only inside TLS",
		    opts);
	if (filter == NULL || *filter == '\0')
		return;
	if (strpbrk(filter, ", \t") == NULL)
		c->auth = xstrdup(filter);
	else
		note(c, "smtp_sasl_mechanism_filter = %s: smarthost takes "
		    "the strongest mechanism both sides have; set auth to "
		    "one of them to insist on it", filter);
}

static void
conv_sasl(struct maincf *m, struct conv *c)
{
	char		 spec[PF_VALUE_MAX];
	const char	*maps;
	struct llines	 l;

	if (!pf_yes(m, "smtp_sasl_auth_enable")) {
		if ((maps = pf_get(m, "smtp_sasl_password_maps")) != NULL)
			note(c, "not carried over: smtp_sasl_password_maps = "
			    "%s (smtp_sasl_auth_enable is not yes, so Postfix "
			    "did not log in)", maps);
		return;
	}
	conv_sasl_options(m, c);
	if (pf_value(m, c, "smtp_sasl_password_maps", spec,
	    sizeof(spec)) == NULL) {
		note(c, "smtp_sasl_auth_enable = yes but no "
		    "smtp_sasl_password_maps: set user and password");
		return;
	}
	spec[strcspn(spec, ", \t")] = '\0';
	if (map_read(m, c, "smtp_sasl_password_maps", spec, &l) == -1)
		return;
	if (sasl_entry(c, &l) == -1)
		note(c, "smtp_sasl_password_maps = %s has no USER:PASSWORD "
		    "line for %s: set user and password", spec, c->host);
	llines_free(&l);
}

/*
 * sender_canonical_maps and smtp_generic_maps: one address that all
 * local senders become is what `from' does.
 */
static char *
map_single_target(struct conv *c, const char *param, const char *spec,
    const struct llines *l)
{
	const char	*target = NULL, *v;
	char		 list[1024] = "";
	size_t		 i, n;

	for (i = 0; i < l->n; i++) {
		n = strcspn(l->v[i], " \t");
		v = str_trim(l->v[i] + n);
		if (strlen(list) < sizeof(list) - 1)
			snprintf(list + strlen(list), sizeof(list) -
			    strlen(list), "%s%.*s -> %s", i > 0 ? ", " : "",
			    (int)n, l->v[i], v);
		if (target == NULL)
			target = v;
		else if (strcasecmp(target, v) != 0)
			target = "";
	}
	if (target != NULL && *target != '\0' && strchr(target, '@') !=
	    NULL && strpbrk(target, " \t,") == NULL)
		return xstrdup(target);
	note(c, "not carried over: %s = %s (%s: smarthost has one from "
	    "per account; use an account per sender, chosen with -a or -f)",
	    param, spec, l->n == 0 ? "no entries" : list);
	return NULL;
}

static void
conv_sender_map(struct maincf *m, struct conv *c, const char *param,
    int *flag)
{
	char		 spec[PF_VALUE_MAX], *target;
	struct llines	 l;

	if (pf_value(m, c, param, spec, sizeof(spec)) == NULL ||
	    spec[0] == '\0')
		return;
	if (strpbrk(spec, ", \t") != NULL) {
		note(c, "not carried over: %s = %s (more than one table)",
		    param, spec);
		return;
	}
	if (map_read(m, c, param, spec, &l) == -1)
		return;
	target = map_single_target(c, param, spec, &l);
	llines_free(&l);
	if (target == NULL)
		return;
	if (c->from != NULL && strcasecmp(c->from, target) != 0) {
		note(c, "not carried over: %s = %s (it maps to %s, but from "
		    "is already %s)", param, spec, target, c->from);
		free(target);
		return;
	}
	free(c->from);
	c->from = target;
	*flag = 1;
}

/* myorigin: what Postfix appended to local names, if a plain domain. */
static void
conv_domain(struct maincf *m, struct conv *c)
{
	char		 v[PF_VALUE_MAX];
	const char	*raw = pf_get(m, "myorigin");

	if (raw == NULL || pf_value(m, c, "myorigin", v, sizeof(v)) == NULL)
		return;
	if (strcmp(v, "/etc/mailname") == 0)
		note(c, "myorigin = %s: smarthost reads /etc/mailname itself "
		    "when maildomain is not set", raw);
	else if (v[0] == '/' || strchr(v, '.') == NULL ||
	    strpbrk(v, " \t,") != NULL)
		note(c, "not carried over: myorigin = %s (not a domain name; "
		    "set maildomain)", raw);
	else
		c->maildomain = xstrdup(v);
}

/* Why a parameter has no equivalent, for the closing comments. */
static const char *
why_not(const char *name)
{
	static const struct {
		const char	*prefix;
		const char	*why;
	} reasons[] = {
		{ "smtpd_", "smarthost receives no mail over SMTP" },
		{ "alias_", "smarthost reads aliases at send time from the "
		    "file named by the aliases directive" },
		{ "mailbox_", "smarthost delivers nothing locally" },
		{ "home_mailbox", "smarthost delivers nothing locally" },
		{ "mydestination", "smarthost delivers nothing locally" },
		{ "local_", "smarthost delivers nothing locally" },
		{ "recipient_delimiter", "smarthost delivers nothing "
		    "locally" },
		{ "inet_", "smarthost listens on no socket" },
		{ "mynetworks", "smarthost listens on no socket" },
		{ "myhostname", "smarthost names itself after this machine; "
		    "domain sets the EHLO name" },
		{ "mydomain", "used only through $mydomain" },
		{ "append_", "smarthost completes local names with "
		    "maildomain" },
		{ "smtp_tls_session_cache", "smarthost keeps its own "
		    "(tls_session_cache)" },
		{ "smtp_tls_CApath", "smarthost takes one CA file, "
		    "tls_trust_file" },
		{ "smtp_tls_", "smarthost uses TLS 1.2 or newer and checks "
		    "the certificate; tls_min_version raises the minimum" },
		{ NULL, "Postfix's own housekeeping, no smarthost "
		    "equivalent" }
	};
	size_t	 i;

	for (i = 0; reasons[i].prefix != NULL; i++)
		if (strncmp(name, reasons[i].prefix,
		    strlen(reasons[i].prefix)) == 0)
			break;
	return reasons[i].why;
}

static void
conv_rest(struct maincf *m, struct conv *c)
{
	size_t	 i;

	for (i = 0; i < m->n; i++)
		if (!m->v[i].used)
			note(c, "not carried over: %s = %s (%s)",
			    m->v[i].name, m->v[i].value,
			    why_not(m->v[i].name));
}

/*
 * Printing: an argument is quoted when the parser would otherwise
 * read a blank, '#' or '"' in it differently.
 */
static void
print_directive(FILE *fp, const char *name, const char *value)
{
	const char	*s;

	if (value == NULL)
		return;
	if (*value != '\0' && strpbrk(value, " \t#\"\\") == NULL) {
		fprintf(fp, "%s %s\n", name, value);
		return;
	}
	fprintf(fp, "%s \"", name);
	for (s = value; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', fp);
		fputc(*s, fp);
	}
	fputs("\"\n", fp);
}

/* A comment, broken at blanks into lines of at most 76 columns. */
static void
print_comment(FILE *fp, const char *text)
{
	const char	*prefix = "# ";
	size_t		 width = 74, n, cut;

	while (*text != '\0') {
		n = strlen(text);
		cut = n;
		if (n > width) {
			for (cut = width; cut > 0 && text[cut] != ' '; cut--)
				;
			if (cut == 0)
				cut = strcspn(text, " ");
		}
		fprintf(fp, "%s%.*s\n", prefix, (int)cut, text);
		text += cut;
		while (*text == ' ')
			text++;
		prefix = "#   ";
		width = 72;
	}
}

static void
conv_print(FILE *fp, const struct conv *c, const char *path)
{
	char	 head[PATH_MAX + 128];
	size_t	 i;

	snprintf(head, sizeof(head), "Imported from %s by smarthost "
	    "--import-postfix.", path);
	print_comment(fp, head);
	if (c->password != NULL)
		print_comment(fp, "It holds a password: keep it in a file "
		    "only you can read (umask 077 before writing it; "
		    "smarthost refuses it otherwise)");
	fputs("account default\n", fp);
	print_directive(fp, "host", c->host);
	fprintf(fp, "port %d\n", c->port);
	fprintf(fp, "tls_starttls %s\n", c->implicit ? "off" : "on");
	print_directive(fp, "tls_trust_file", c->trust);
	print_directive(fp, "tls_cert_file", c->cert);
	print_directive(fp, "tls_key_file", c->key);
	print_directive(fp, "domain", c->helo);
	print_directive(fp, "source_ip", c->source_ip);
	print_directive(fp, "auth", c->auth);
	print_directive(fp, "user", c->user);
	print_directive(fp, "password", c->password);
	print_directive(fp, "from", c->from);
	if (c->rewrite_local)
		fputs("rewrite_local_senders on\n", fp);
	if (c->set_from_header)
		fputs("set_from_header on\n", fp);
	print_directive(fp, "maildomain", c->maildomain);
	if (c->nnotes > 0)
		fputc('\n', fp);
	for (i = 0; i < c->nnotes; i++)
		print_comment(fp, c->notes[i]);
}

/* The import itself; *password says whether the output holds one. */
static int
import_run(const char *dir, FILE *out, int *password, struct error *err)
{
	struct maincf	 m;
	struct conv	 c;
	int		 rc;

	if (dir == NULL)
		dir = POSTFIX_DIR;
	memset(&c, 0, sizeof(c));
	*password = 0;
	if (pf_read(&m, dir, err) == -1) {
		pf_free(&m);
		return -1;
	}
	if ((rc = conv_relay(&m, &c, err)) == 0) {
		conv_tls(&m, &c);
		conv_sasl(&m, &c);
		conv_sender_map(&m, &c, "sender_canonical_maps",
		    &c.rewrite_local);
		conv_sender_map(&m, &c, "smtp_generic_maps",
		    &c.set_from_header);
		conv_domain(&m, &c);
		conv_rest(&m, &c);
		conv_print(out, &c, m.path);
		*password = c.password != NULL;
		if (fflush(out) == EOF || ferror(out))
			rc = error_set(err, EX_IOERR, "cannot write the "
			    "configuration: %s", strerror(errno));
	}
	conv_free(&c);
	pf_free(&m);
	return rc;
}

int
setup_import_postfix(const char *dir, FILE *out, struct error *err)
{
	int	 password;

	return import_run(dir, out, &password, err);
}

/*
 * An earlier import's output, which -o may replace: a regular file of
 * the caller's own that starts with the line conv_print() writes.  A
 * file written by hand, or anybody else's, is never replaced.
 */
#define IMPORT_MARK	"# Imported from "
#define IMPORT_MARK2	"--import-postfix."	/* the line may wrap */

static int
import_ours(const char *path, const struct stat *st)
{
	struct stat	 fst;
	char		 head[PATH_MAX + 256];
	ssize_t		 n;
	int		 fd, ours;

	if (!S_ISREG(st->st_mode) || st->st_uid != geteuid())
		return 0;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC)) == -1)
		return 0;
	ours = fstat(fd, &fst) == 0 && fst.st_ino == st->st_ino &&
	    fst.st_dev == st->st_dev &&
	    (n = read(fd, head, sizeof(head) - 1)) > 0;
	close(fd);
	if (!ours)
		return 0;
	head[n] = '\0';
	return strncmp(head, IMPORT_MARK, strlen(IMPORT_MARK)) == 0 &&
	    strstr(head, IMPORT_MARK2) != NULL;
}

/* Say so when a password goes into a file others can read. */
static void
import_stdout_check(void)
{
	struct stat	 st;

	if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) &&
	    (st.st_mode & (S_IRGRP | S_IROTH)) != 0)
		log_warn("standard output is a file that others can read "
		    "(mode %03o) and it now holds a password: smarthost "
		    "refuses such a configuration; run chmod 600 on it, or "
		    "write it with -o FILE instead",
		    (unsigned)(st.st_mode & 0777));
}

/* Make the new file durable in its directory too. */
static void
dir_sync(const char *dir)
{
	int	 fd;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		fsync(fd);
		close(fd);
	}
}

/*
 * -o FILE: a new file of mode 0600 in FILE's directory, written through
 * a buffer of ours (wiped: it held the password), fsync'ed, then put in
 * place: link(2) where there was no file, so a file that appears
 * meanwhile is never overwritten; rename(2) over an earlier import of
 * the caller's.  A symbolic link is never followed.
 */
static int
import_to_file(const char *dir, const char *path, struct error *err)
{
	struct stat	 st;
	char		 tmp[PATH_MAX + 32], parent[PATH_MAX], iobuf[4096];
	const char	*slash = strrchr(path, '/');
	FILE		*fp;
	int		 fd, rc, bad, password, replace = 0;

	if (strlen(path) >= PATH_MAX - 32)
		return error_set(err, EX_USAGE, "-o: the file name is too "
		    "long");
	if (lstat(path, &st) == 0) {
		if (S_ISLNK(st.st_mode))
			return error_set(err, EX_CANTCREAT, "%s is a symbolic "
			    "link, which -o never follows: nothing was "
			    "written", path);
		if (!import_ours(path, &st))
			return error_set(err, EX_CANTCREAT, "%s exists and is "
			    "not an earlier --import-postfix output of yours: "
			    "it was kept and nothing was written (remove it, "
			    "or name another file)", path);
		replace = 1;
	} else if (errno != ENOENT)
		return error_set(err, EX_CANTCREAT, "cannot write %s: %s",
		    path, strerror(errno));
	if (slash == NULL)
		snprintf(parent, sizeof(parent), ".");
	else if (slash == path)
		snprintf(parent, sizeof(parent), "/");
	else
		snprintf(parent, sizeof(parent), "%.*s", (int)(slash - path),
		    path);
	snprintf(tmp, sizeof(tmp), "%s/.smarthost-import.XXXXXX", parent);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1)
		return error_set(err, EX_CANTCREAT, "cannot create a file in "
		    "%s: %s; nothing was written", parent, strerror(errno));
	if (fchmod(fd, 0600) == -1 || (fp = fdopen(fd, "w")) == NULL) {
		rc = error_set(err, EX_OSERR, "cannot write %s: %s", tmp,
		    strerror(errno));
		close(fd);
		unlink(tmp);
		return rc;
	}
	setvbuf(fp, iobuf, _IOFBF, sizeof(iobuf));
	rc = import_run(dir, fp, &password, err);
	bad = fflush(fp) == EOF || ferror(fp) || fsync(fd) == -1;
	bad |= fclose(fp) == EOF;
	explicit_bzero(iobuf, sizeof(iobuf));
	if (rc == 0 && bad)
		rc = error_set(err, EX_IOERR, "cannot write %s: %s", tmp,
		    strerror(errno));
	if (rc == 0 && (replace ? rename(tmp, path) : link(tmp, path)) == -1)
		rc = error_set(err, EX_CANTCREAT, "cannot create %s: %s; "
		    "nothing was written", path, strerror(errno));
	if (rc == -1 || !replace)
		unlink(tmp);
	if (rc == 0)
		dir_sync(parent);
	return rc;
}

int
setup_import(const char *dir, const char *path, struct error *err)
{
	int	 password;

	if (path != NULL && strcmp(path, "-") != 0)
		return import_to_file(dir, path, err);
	if (import_run(dir, stdout, &password, err) == -1)
		return -1;
	if (password)
		import_stdout_check();
	return 0;
}

/*
 * --configure: questions on /dev/tty, a candidate configuration proven
 * with a real login, then the user's file.
 */
struct answers {
	const char	*address;
	const struct cmdline *cl;	/* --directive=value: into the file */
	int		 preset;	/* p is filled */
	struct preset	 p;
	char		 host[256];
	int		 port;
	int		 implicit;
	char		 trust[ANSWER_MAX];
	char		 user[ANSWER_MAX];
	char		 password[ANSWER_MAX];	/* wiped */
	char		 client_id[ANSWER_MAX];	/* OAuth2, or "" */
	char		 secret[ANSWER_MAX];	/* wiped */
};

static void
tty_say(int fd, const char *s)
{
	size_t	 len = strlen(s);
	ssize_t	 n;

	while (len > 0) {
		if ((n = write(fd, s, len)) == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

/* Ask; an empty answer takes def (when there is one). */
static int
tty_ask(int fd, const char *question, const char *def, char *buf,
    size_t size, struct error *err)
{
	char	 prompt[1024];

	for (;;) {
		if (def != NULL)
			snprintf(prompt, sizeof(prompt), "%s [%s]: ",
			    question, def);
		else
			snprintf(prompt, sizeof(prompt), "%s: ", question);
		tty_say(fd, prompt);
		if (secret_line(fd, buf, size, err) == -1)
			return -1;
		if (buf[0] == '\0' && def != NULL)
			snprintf(buf, size, "%s", def);
		if (buf[0] != '\0')
			return 0;
		tty_say(fd, "This one needs an answer.\n");
	}
}

/* The relay, from the preset or from the user. */
static int
ask_relay(int fd, struct answers *a, struct error *err)
{
	char	 buf[ANSWER_MAX], line[1024];
	long	 n;
	char	*end;

	if (a->preset) {
		snprintf(line, sizeof(line), "Preset %s: %s port %d, %s (%s)"
		    "\n", a->p.name, a->p.host, a->p.port, a->p.starttls ?
		    "STARTTLS" : "implicit TLS", a->p.note);
		tty_say(fd, line);
		return 0;
	}
	tty_say(fd, "No preset knows this domain: name the relay.\n");
	if (tty_ask(fd, "Relay host", NULL, a->host, sizeof(a->host),
	    err) == -1)
		return -1;
	for (;;) {
		if (tty_ask(fd, "TLS: implicit (port 465) or starttls "
		    "(port 587)", "implicit", buf, sizeof(buf), err) == -1)
			return -1;
		if (strcasecmp(buf, "implicit") == 0 ||
		    strcasecmp(buf, "starttls") == 0)
			break;
	}
	a->implicit = strcasecmp(buf, "implicit") == 0;
	for (;;) {
		if (tty_ask(fd, "Port", a->implicit ? "465" : "587", buf,
		    sizeof(buf), err) == -1)
			return -1;
		n = strtol(buf, &end, 10);
		if (isdigit((unsigned char)buf[0]) && *end == '\0' &&
		    n > 0 && n < 65536)
			break;
	}
	a->port = (int)n;
	return tty_ask(fd, "CA file for the relay's certificate, or system",
	    "system", a->trust, sizeof(a->trust), err);
}

/* The OAuth2 client, then the directives given on the command line. */
static void
answers_print_oauth(FILE *fp, const struct answers *a, int hide)
{
	static const char *const asked[] = { "provider", "user", "from",
	    "oauth_client_id", NULL };
	size_t	 i, j;

	if (a->client_id[0] != '\0')
		print_directive(fp, "oauth_client_id", a->client_id);
	if (a->secret[0] != '\0')
		print_directive(fp, "oauth_client_secret", hide ? "<hidden>" :
		    a->secret);
	for (i = 0; a->cl != NULL && i < a->cl->nover; i++) {
		for (j = 0; asked[j] != NULL &&
		    strcmp(asked[j], a->cl->over[i].name) != 0; j++)
			;
		if (asked[j] == NULL)
			print_directive(fp, a->cl->over[i].name,
			    a->cl->over[i].value);
	}
}

static void
answers_print(FILE *fp, const struct answers *a, int hide)
{
	fprintf(fp, "# written by smarthost --configure %s\n", a->address);
	fputs("account default\n", fp);
	if (a->preset)
		print_directive(fp, "provider", a->p.name);
	else {
		print_directive(fp, "host", a->host);
		fprintf(fp, "port %d\n", a->port);
		fprintf(fp, "tls_starttls %s\n", a->implicit ? "off" : "on");
		if (strcmp(a->trust, "system") != 0)
			print_directive(fp, "tls_trust_file", a->trust);
	}
	print_directive(fp, "user", a->user);
	if (a->client_id[0] == '\0')
		print_directive(fp, "password", hide ? "<hidden>" :
		    a->password);
	print_directive(fp, "from", a->address);
	answers_print_oauth(fp, a, hide);
}

/* $XDG_CONFIG_HOME/smarthost/config, else ~/.config/smarthost/config. */
static int
config_path(char *path, size_t size, struct error *err)
{
	const char	*x = getenv("XDG_CONFIG_HOME"), *home;
	struct passwd	*pw;

	if (x != NULL && *x == '/') {
		snprintf(path, size, "%s/smarthost/config", x);
		return 0;
	}
	if ((home = getenv("HOME")) == NULL || *home != '/') {
		pw = getpwuid(getuid());
		home = pw != NULL ? pw->pw_dir : NULL;
	}
	if (home == NULL || *home != '/')
		return error_set(err, EX_CONFIG, "no home directory (HOME "
		    "is not set): set XDG_CONFIG_HOME");
	snprintf(path, size, "%s/.config/smarthost/config", home);
	return 0;
}

/* mkdir -p for the directory part of path, new parts 0700. */
static int
make_dirs(const char *path, struct error *err)
{
	if (mkdir_above(path) == -1)
		return error_set(err, EX_CANTCREAT, "cannot create the "
		    "directories of %s: %s", path, strerror(errno));
	return 0;
}

/*
 * The candidate: a new file (O_EXCL, 0600) next to the target, written
 * through a buffer of ours that is wiped afterwards.
 */
static int
candidate_write(const struct answers *a, const char *path, char *tmp,
    size_t size, struct error *err)
{
	char	 iobuf[4096];
	FILE	*fp;
	int	 fd, bad;

	snprintf(tmp, size, "%.*s/.config.XXXXXX",
	    (int)(strrchr(path, '/') - path), path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1)
		return error_set(err, EX_CANTCREAT, "cannot create a file "
		    "in the directory of %s: %s", path, strerror(errno));
	if ((fp = fdopen(fd, "w")) == NULL) {
		close(fd);
		unlink(tmp);
		return error_set(err, EX_OSERR, "fdopen: %s",
		    strerror(errno));
	}
	setvbuf(fp, iobuf, _IOFBF, sizeof(iobuf));
	answers_print(fp, a, 0);
	bad = fflush(fp) == EOF || ferror(fp) || fsync(fd) == -1;
	bad |= fclose(fp) == EOF;
	explicit_bzero(iobuf, sizeof(iobuf));
	if (bad) {
		unlink(tmp);
		return error_set(err, EX_IOERR, "cannot write %s: %s", tmp,
		    strerror(errno));
	}
	return 0;
}

/* Connect and log in with the candidate, as --serverinfo does. */
static int
candidate_test(const struct answers *a, const char *tmp, struct error *err)
{
	struct cmdline	 cl;
	struct account	 acc;
	struct cred	 cr;
	const char	*hint;
	size_t		 n;
	int		 rc;

	/* MODE_CONFIGURE: the draft is the caller's own, not a -C. */
	memset(&cl, 0, sizeof(cl));
	cl.mode = MODE_CONFIGURE;
	cl.dot_ends = 1;
	cl.conffile = tmp;
	if (config_account(&cl, &acc, err) == -1)
		return -1;
	printf("Testing %s port %d as %s ...\n", acc.host, acc.port,
	    acc.user != NULL ? acc.user : "");
	fflush(stdout);
	memset(&cr, 0, sizeof(cr));
	/* An OAuth2 account's token comes from the store just filled. */
	rc = acc.auth != NULL ? secret_get(&acc, &cr, err) : 0;
	if (rc == 0)
		rc = smtp_serverinfo(&acc, &cr, stdout, err);
	secret_clear(&cr);
	account_free(&acc);
	if (rc == 0)
		return 0;
	n = strlen(err->msg);
	hint = a->preset ? provider_hint(a->p.name, err->reply) : NULL;
	snprintf(err->msg + n, sizeof(err->msg) - n, "%s%s; nothing was "
	    "written", hint != NULL ? ". " : "", hint != NULL ? hint : "");
	return -1;
}

/*
 * A system file replaced keeps its group and that group's read access
 * (root:smarthost 0640 in a setgid install); others never read it.
 */
static void
candidate_keep_group(const char *tmp, const char *path)
{
	struct stat	 st;

	if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    chown(tmp, (uid_t)-1, st.st_gid) == 0)
		chmod(tmp, st.st_mode & 0640);
}

/* Put the proven candidate in place: never over a file not confirmed. */
static int
candidate_install(const char *tmp, const char *path, int replace,
    int system, struct error *err)
{
	int	 rc;

	if (replace && system)
		candidate_keep_group(tmp, path);
	rc = replace ? rename(tmp, path) : link(tmp, path);
	if (rc == -1) {
		rc = error_set(err, EX_CANTCREAT, "cannot create %s: %s; "
		    "nothing was written", path, strerror(errno));
		unlink(tmp);
		return rc;
	}
	if (!replace)
		unlink(tmp);
	return 0;
}

/* The last --NAME=VALUE of the command line, or NULL. */
static const char *
over_value(const struct cmdline *cl, const char *name)
{
	const char	*v = NULL;
	size_t		 i;

	for (i = 0; cl != NULL && i < cl->nover; i++)
		if (strcmp(cl->over[i].name, name) == 0)
			v = cl->over[i].value;
	return v;
}

/*
 * OAuth2: the client of the user's own app registration, given as
 * --oauth-client-id or asked for where the preset knows OAuth2; its
 * secret where the grant needs one and no file or command gives it.
 */
static int
ask_oauth(int fd, struct answers *a, struct error *err)
{
	const struct oauth_preset *op = a->preset ? a->p.oauth : NULL;
	const char	*id = over_value(a->cl, "oauth_client_id");
	const char	*grant = over_value(a->cl, "oauth_grant");

	if (id != NULL)
		snprintf(a->client_id, sizeof(a->client_id), "%s", id);
	else if (op != NULL) {
		tty_say(fd, "OAuth2 client ID of your app registration "
		    "(smarthost.conf(5), OAUTH2), empty for a password: ");
		if (secret_line(fd, a->client_id, sizeof(a->client_id),
		    err) == -1)
			return -1;
	}
	if (a->client_id[0] == '\0')
		return 0;
	if (grant == NULL && op != NULL)
		grant = op->grant;
	if (over_value(a->cl, "oauth_client_secret_file") != NULL ||
	    over_value(a->cl, "oauth_client_secret_eval") != NULL ||
	    ((op == NULL || !op->needs_secret) && (grant == NULL ||
	    strcmp(grant, "client_credentials") != 0)))
		return 0;
	tty_say(fd, "Client secret (not shown): ");
	return secret_prompt(fd, a->secret,
	    sizeof(a->secret), err);
}

/*
 * Sign in with the candidate's account: the device flow's code to
 * enter elsewhere, or an address to open and the one it ends at pasted
 * back; app-only clients just get a token.  *store: the token store
 * written, for removal when the login test fails.
 */
static int
sign_in_account(int fd, struct account *acc, struct error *err)
{
	struct oauth_device	 d;
	struct oauth_pkce	 p;
	char			 line[1200], answer[4096], *token = NULL;
	long long		 min;
	int			 rc;

	if (acc->oauth_grant != NULL &&
	    strcmp(acc->oauth_grant, "client_credentials") == 0) {
		tty_say(fd, "Getting an app-only token ...\n");
		rc = oauth_token(acc, &token, err);
		secret_free(token);
	} else if (acc->oauth_grant == NULL ||
	    strcmp(acc->oauth_grant, "device") == 0) {
		if ((rc = oauth_device_start(acc, &d, err)) == 0) {
			min = (d.deadline - now_ms() + 59999) / 60000;
			snprintf(line, sizeof(line), "To sign in, open %s in a "
			    "browser (on any device) and enter the code %s "
			    "within %lld minute%s.\nWaiting for the sign-in "
			    "...\n", d.uri, d.user_code, min,
			    min == 1 ? "" : "s");
			tty_say(fd, line);
			rc = oauth_device_wait(acc, &d, err);
			oauth_device_free(&d);
		}
	} else if ((rc = oauth_pkce_start(acc, &p, err)) == 0) {
		tty_say(fd, "Open this address in a browser and sign in:\n\n");
		tty_say(fd, p.url);
		tty_say(fd, "\n\nThe browser then goes to an address that "
		    "may not load; copy that whole address from its address "
		    "bar.\nAddress (or the code in it): ");
		if ((rc = secret_line(fd, answer, sizeof(answer), err)) == 0)
			rc = oauth_pkce_finish(acc, &p, str_trim(answer),
			    err);
		explicit_bzero(answer, sizeof(answer));
		oauth_pkce_free(&p);
	}
	if (rc == 0) {
		snprintf(line, sizeof(line), "Signed in: the token is kept in "
		    "%s.\n", acc->oauth_token_store);
		tty_say(fd, line);
	}
	return rc;
}

/* Sign in with the candidate file's account. */
static int
sign_in(int fd, const char *tmp, char **store, struct error *err)
{
	struct cmdline		 cl;
	struct account		 acc;
	int			 rc;

	*store = NULL;
	memset(&cl, 0, sizeof(cl));
	cl.mode = MODE_CONFIGURE;
	cl.dot_ends = 1;
	cl.conffile = tmp;
	if (config_account(&cl, &acc, err) == -1)
		return -1;
	if ((rc = sign_in_account(fd, &acc, err)) == 0)
		*store = xstrdup(acc.oauth_token_store);
	account_free(&acc);
	return rc;
}

/*
 * An account of the configuration as it is (-a, or the one whose from
 * is ADDRESS) that already signs ADDRESS in with OAuth2: signing in
 * again is all there is to do, after a revoked token, or as root for
 * the system file's account of a setgid install, whose token store
 * only root writes.  1 with *acc filled.
 */
static int
existing_oauth(const struct cmdline *cl, struct account *acc)
{
	struct cmdline	 c = *cl;
	struct error	 e;
	const char	*addr = cl->setup_arg;

	if (c.account == NULL)
		c.from = addr;
	if (config_account(&c, acc, &e) == -1)
		return 0;
	if (oauth_enabled(acc) && ((acc->user != NULL &&
	    strcasecmp(acc->user, addr) == 0) || (acc->from != NULL &&
	    strcasecmp(acc->from, addr) == 0)))
		return 1;
	account_free(acc);
	return 0;
}

/* Sign the existing account in again, then test the login. */
static int
sign_in_again(int fd, struct account *acc, int *done, struct error *err)
{
	struct cred	 cr;
	char		 q[PATH_MAX + 256], buf[ANSWER_MAX];
	int		 rc;

	*done = 0;
	snprintf(q, sizeof(q), "Account %s of %s signs in with OAuth2. Sign "
	    "in again (n: write a new configuration)? (y/n)", acc->name,
	    acc->source);
	if (tty_ask(fd, q, "y", buf, sizeof(buf), err) == -1)
		return -1;
	if (strcasecmp(buf, "y") != 0 && strcasecmp(buf, "yes") != 0)
		return 0;
	*done = 1;
	if (sign_in_account(fd, acc, err) == -1)
		return -1;
	printf("Testing %s port %d as %s ...\n", acc->host, acc->port,
	    acc->user != NULL ? acc->user : "");
	fflush(stdout);
	memset(&cr, 0, sizeof(cr));
	if ((rc = secret_get(acc, &cr, err)) == 0)
		rc = smtp_serverinfo(acc, &cr, stdout, err);
	secret_clear(&cr);
	if (rc == 0)
		printf("%s is unchanged.\n", acc->source);
	return rc;
}

static int
ask_all(int fd, struct answers *a, const char *path, int *replace,
    struct error *err)
{
	struct stat	 st;
	char		 buf[ANSWER_MAX], q[PATH_MAX + 64];

	*replace = 0;
	if (lstat(path, &st) == 0) {
		snprintf(q, sizeof(q), "%s exists. Replace it? (y/n)", path);
		if (tty_ask(fd, q, "n", buf, sizeof(buf), err) == -1)
			return -1;
		if (strcasecmp(buf, "y") != 0 && strcasecmp(buf, "yes") != 0)
			return error_set(err, EX_CANTCREAT, "%s exists and "
			    "was kept: nothing was written", path);
		*replace = 1;
	}
	if (ask_relay(fd, a, err) == -1)
		return -1;
	if (tty_ask(fd, "User name", a->preset && a->p.user != NULL ?
	    a->p.user : a->address, a->user, sizeof(a->user), err) == -1)
		return -1;
	if (ask_oauth(fd, a, err) == -1)
		return -1;
	if (a->client_id[0] != '\0')
		return 0;
	tty_say(fd, "Password (not shown): ");
	return secret_prompt(fd, a->password,
	    sizeof(a->password), err);
}

/*
 * Root configures the machine: the system file (what cron and daemons
 * running as root read), unless root asks for its own file instead.
 */
static int
ask_target(int fd, char *path, size_t size, int *system, struct error *err)
{
	char	 user[PATH_MAX], buf[ANSWER_MAX], q[2 * PATH_MAX + 128];
	int	 have_user;

	*system = 0;
	if (geteuid() != 0)
		return config_path(path, size, err);
	have_user = config_path(user, sizeof(user), err) == 0;
	if (!have_user) {
		snprintf(buf, sizeof(buf), "system");
		snprintf(q, sizeof(q), "Writing the system configuration %s"
		    "\n", config_system_file());
		tty_say(fd, q);
	} else {
		snprintf(q, sizeof(q), "Write the system configuration %s, "
		    "or root's own %s? (system/user)", config_system_file(),
		    user);
		for (;;) {
			if (tty_ask(fd, q, "system", buf, sizeof(buf),
			    err) == -1)
				return -1;
			if (strcasecmp(buf, "system") == 0 ||
			    strcasecmp(buf, "user") == 0)
				break;
		}
	}
	*system = strcasecmp(buf, "system") == 0;
	snprintf(path, size, "%s", *system ? config_system_file() : user);
	return 0;
}

int
setup_configure(const struct cmdline *cl, struct error *err)
{
	struct answers	 a;
	struct account	 acc;
	struct stat	 st;
	const char	*address = cl->setup_arg, *name;
	char		 path[PATH_MAX], tmp[PATH_MAX + 32], *store = NULL;
	size_t		 n;
	int		 fd, rc, replace, system, done;

	memset(&a, 0, sizeof(a));
	a.address = address;
	a.cl = cl;
	if (address_check(address, err) == -1)
		return -1;
	if (strchr(address, '@') == NULL)
		return error_set(err, EX_USAGE, "--configure needs your full "
		    "address, such as you@example.org");
	/* --provider=NAME: the domain alone does not tell (Microsoft 365). */
	if ((name = over_value(cl, "provider")) != NULL) {
		if (provider_find(name, &a.p, err) == -1)
			return -1;
		a.preset = 1;
	} else if ((a.preset = provider_for_address(address, &a.p, err)) ==
	    -1)
		return -1;
	if ((fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)) == -1)
		return error_set(err, EX_USAGE, "--configure asks questions "
		    "and needs a terminal: /dev/tty: %s", strerror(errno));
	if (existing_oauth(cl, &acc)) {
		rc = sign_in_again(fd, &acc, &done, err);
		account_free(&acc);
		if (rc == -1 || done) {
			close(fd);
			return rc;
		}
	}
	rc = ask_target(fd, path, sizeof(path), &system, err);
	if (rc == 0)
		rc = ask_all(fd, &a, path, &replace, err);
	if (rc == 0)
		rc = make_dirs(path, err);
	if (rc == 0)
		rc = candidate_write(&a, path, tmp, sizeof(tmp), err);
	explicit_bzero(a.password, sizeof(a.password));
	explicit_bzero(a.secret, sizeof(a.secret));
	if (rc == 0 && a.client_id[0] != '\0' &&
	    sign_in(fd, tmp, &store, err) == -1) {
		unlink(tmp);
		n = strlen(err->msg);
		snprintf(err->msg + n, sizeof(err->msg) - n, "; nothing was "
		    "written");
		rc = -1;
	}
	close(fd);
	if (rc == 0 && candidate_test(&a, tmp, err) == -1) {
		unlink(tmp);
		if (store != NULL)
			unlink(store);
		rc = -1;
	}
	if (rc == 0)
		rc = candidate_install(tmp, path, replace, system, err);
	if (rc == 0 && lstat(path, &st) == -1)
		st.st_mode = 0600;
	if (rc == 0) {
		printf("Wrote %s (mode %04o):\n", path,
		    (unsigned)(st.st_mode & 07777));
		answers_print(stdout, &a, 1);
	}
	if (rc == 0 && system && (st.st_mode & 0077) == 0)
		printf("Only root can read it: it serves root's mail (cron, "
		    "daemons running as root); for a password every user "
		    "may send with, see \"Setgid install\" in "
		    "smarthost(8).\n");
	free(store);
	return rc;
}

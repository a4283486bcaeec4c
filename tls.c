/* SPDX-License-Identifier: ISC */
/*
 * TLS with mbedTLS 3.6: implicit TLS and STARTTLS over the same socket.
 * Verification is on unless the user turned it off; the host name is
 * always set (it is both SNI and the name checked).  A pinned
 * fingerprint replaces CA trust, as in msmtp.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <mbedtls/base64.h>
#include <mbedtls/build_info.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/psa_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>

#include "smarthost.h"

#if MBEDTLS_VERSION_NUMBER < 0x03060000
#error "smarthost needs mbedTLS 3.6 or newer: run scripts/install-deps"
#endif

/* Where the operating system keeps its CA bundle. */
static const char *const system_stores[] = {
	"/etc/ssl/certs/ca-certificates.crt",	/* Debian, Ubuntu, Alpine */
	"/etc/pki/tls/certs/ca-bundle.crt",	/* Fedora, RHEL */
	"/etc/ssl/ca-bundle.pem",		/* openSUSE */
	"/etc/ssl/cert.pem",			/* OpenBSD, macOS */
	NULL
};

/*
 * The signature algorithms offered, RSA PKCS#1 v1.5 before RSA-PSS: the
 * default list puts PSS first, which breaks TLS 1.2 with mbedTLS 3.6.6.
 *
 * The ClientHello is written for the highest version allowed, TLS 1.3,
 * so it offers rsa_pss_rsae_* (0x0804-0x0806).  When the relay then
 * chooses TLS 1.2 and signs its ServerKeyExchange with one of them (what
 * OpenSSL does for an RSA key when the client lists PSS first), the TLS
 * 1.2 client checks the algorithm with mbedtls_ssl_tls12_sig_alg_is_
 * supported(), which knows only RFC 5246's (hash, signature) pairs: the
 * PSS code points, valid in TLS 1.2 since RFC 8446 4.2.3, are not among
 * them, and the handshake ends with a fatal illegal_parameter.  Up to
 * 3.6.5 the check let any known code point through; the CVE-2026-25834
 * fix in 3.6.6 made it strict (ssl_parse_signature_algorithm() in
 * library/ssl_tls12_client.c) and so rejects valid PSS signatures.
 * Upstream fixed this after 3.6.6 (Mbed-TLS/mbedtls#10674).  It does not
 * depend on MBEDTLS_USE_PSA_CRYPTO or MBEDTLS_X509_RSASSA_PSS_SUPPORT,
 * and no configuration call makes the 1.2 path accept PSS.
 *
 * Dropping PSS from the list is no way out: TLS 1.3 allows only PSS for
 * an RSA key's CertificateVerify.  Listing PKCS#1 first instead makes a
 * relay that follows the client's order (OpenSSL by default, Go) sign
 * with PKCS#1 in TLS 1.2, while in TLS 1.3 it must still pick PSS.  A
 * relay that imposes its own order and prefers PSS in TLS 1.2 still
 * fails; handshake_error() says why.
 */
static const uint16_t sig_algs[] = {
	MBEDTLS_TLS1_3_SIG_ECDSA_SECP256R1_SHA256,
	MBEDTLS_TLS1_3_SIG_ECDSA_SECP384R1_SHA384,
	MBEDTLS_TLS1_3_SIG_ECDSA_SECP521R1_SHA512,
	MBEDTLS_TLS1_3_SIG_RSA_PKCS1_SHA256,
	MBEDTLS_TLS1_3_SIG_RSA_PKCS1_SHA384,
	MBEDTLS_TLS1_3_SIG_RSA_PKCS1_SHA512,
	MBEDTLS_TLS1_3_SIG_RSA_PSS_RSAE_SHA256,
	MBEDTLS_TLS1_3_SIG_RSA_PSS_RSAE_SHA384,
	MBEDTLS_TLS1_3_SIG_RSA_PSS_RSAE_SHA512,
	MBEDTLS_TLS1_3_SIG_NONE
};

/*
 * The TLS 1.2 ciphersuites offered unless tls_legacy_ciphers is on:
 * ECDHE, for forward secrecy, with an AEAD cipher, as RFC 9325 4.1-4.2
 * recommends.  mbedTLS's default list also has static RSA key transport
 * (a recorded session, and the password in it, can be read later by
 * whoever gets the relay's key), CBC with its padding-oracle history and
 * finite-field DHE.  Every TLS 1.3 suite qualifies and stays as mbedTLS
 * lists it.
 */
static const int tls12_suites[] = {
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
};
#define SUITES_MAX	32

struct tls {
	mbedtls_ssl_context	 ssl;
	mbedtls_ssl_config	 conf;
	mbedtls_x509_crt	 ca;
	mbedtls_x509_crt	 cert;
	mbedtls_pk_context	 key;
	int			 fd;
	int			 timeout_ms;	/* for messages */
	long long		 deadline;	/* for the reads of one call */
	const char		*name;		/* name verified */
	/* what the verify callback saw of the relay's certificate */
	uint32_t		 leaf_flags;
	char			 leaf_names[512];
	char			 leaf_issuer[256];
	char			 leaf_expiry[32];
	unsigned char		 leaf_sha256[32];
	int			 have_leaf;
	int			 leaf_rsa;	/* its key is RSA */
	int			 suites[SUITES_MAX + 1];	/* 0 ends */
	/* TLS session resumption across runs */
	char			*cache;		/* ticket file, or NULL */
	int			 loaded;	/* a ticket was offered */
	int			 max12;		/* TLS 1.2 at most: see sig_algs */
	unsigned char		 first[64];	/* what the relay sent first */
	size_t			 nfirst;
	int			 pss12;		/* the relay signed 1.2 with PSS */
};

static int
bio_send(void *ctx, const unsigned char *buf, size_t len)
{
	struct tls	*t = ctx;
	ssize_t		 n;

	/* Wait only when the socket is full, not before every record. */
	for (;;) {
		n = send(t->fd, buf, len, MSG_NOSIGNAL);
		if (n >= 0)
			return (int)n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return MBEDTLS_ERR_NET_SEND_FAILED;
		if (net_wait(t->fd, POLLOUT, t->timeout_ms) == -1)
			return MBEDTLS_ERR_SSL_TIMEOUT;
	}
}

static int
bio_recv(void *ctx, unsigned char *buf, size_t len, uint32_t unused)
{
	struct tls	*t = ctx;
	ssize_t		 n;

	(void)unused;
	for (;;) {
		long long	 left = t->deadline != 0 ?
		    t->deadline - now_ms() : t->timeout_ms;

		if (left < 0)
			left = 0;
		if (net_wait(t->fd, POLLIN, (int)left) == -1)
			return errno == ETIMEDOUT ? MBEDTLS_ERR_SSL_TIMEOUT :
			    MBEDTLS_ERR_NET_RECV_FAILED;
		n = recv(t->fd, buf, len, 0);
		if (n > 0 && t->nfirst < sizeof(t->first)) {
			size_t	 k = sizeof(t->first) - t->nfirst;

			if (k > (size_t)n)
				k = (size_t)n;
			memcpy(t->first + t->nfirst, buf, k);
			t->nfirst += k;
		}
		if (n >= 0)
			return (int)n;
		if (errno != EINTR && errno != EAGAIN)
			return MBEDTLS_ERR_NET_RECV_FAILED;
	}
}

static void
mbed_error(int rc, char *buf, size_t size)
{
	mbedtls_strerror(rc, buf, size);
}

/* The dNSName and iPAddress entries of a certificate, for messages. */
static void
cert_names(const mbedtls_x509_crt *crt, char *buf, size_t size)
{
	const mbedtls_x509_sequence		*cur;
	mbedtls_x509_subject_alternative_name	 san;
	size_t					 len = 0;
	char					 name[256];
	const unsigned char			*p;

	buf[0] = '\0';
	for (cur = &crt->subject_alt_names; cur != NULL; cur = cur->next) {
		if (cur->buf.p == NULL)
			continue;
		memset(&san, 0, sizeof(san));
		if (mbedtls_x509_parse_subject_alt_name(&cur->buf, &san) != 0)
			continue;
		p = san.san.unstructured_name.p;
		if (san.type == MBEDTLS_X509_SAN_DNS_NAME)
			snprintf(name, sizeof(name), "%.*s",
			    (int)san.san.unstructured_name.len, p);
		else if (san.type == MBEDTLS_X509_SAN_IP_ADDRESS &&
		    san.san.unstructured_name.len == 4)
			snprintf(name, sizeof(name), "%u.%u.%u.%u", p[0], p[1],
			    p[2], p[3]);
		else if (san.type == MBEDTLS_X509_SAN_IP_ADDRESS)
			snprintf(name, sizeof(name), "an IPv6 address");
		else
			name[0] = '\0';
		mbedtls_x509_free_subject_alt_name(&san);
		if (name[0] == '\0')
			continue;
		len += (size_t)snprintf(buf + len, size - len, "%s%s",
		    len ? ", " : "", name);
		if (len >= size)
			break;
	}
	if (buf[0] == '\0')
		mbedtls_x509_dn_gets(buf, size, &crt->subject);
}

static void
cert_expiry(const mbedtls_x509_crt *crt, char *buf, size_t size)
{
	const mbedtls_x509_time	*to = &crt->valid_to;

	snprintf(buf, size, "%04d-%02d-%02d %02d:%02d:%02d UTC", to->year,
	    to->mon, to->day, to->hour, to->min, to->sec);
}

/*
 * Called for every certificate of the chain.  Only looks: the flags are
 * left alone, so mbedTLS still decides.
 */
static int
verify_cb(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
	struct tls	*t = ctx;

	if (depth != 0)
		return 0;
	t->have_leaf = 1;
	t->leaf_flags = *flags;
	t->leaf_rsa = mbedtls_pk_get_type(&crt->pk) == MBEDTLS_PK_RSA;
	cert_names(crt, t->leaf_names, sizeof(t->leaf_names));
	mbedtls_x509_dn_gets(t->leaf_issuer, sizeof(t->leaf_issuer),
	    &crt->issuer);
	cert_expiry(crt, t->leaf_expiry, sizeof(t->leaf_expiry));
	mbedtls_sha256(crt->raw.p, crt->raw.len, t->leaf_sha256, 0);
	return 0;
}

/*
 * Trust anchors.  The CA file is read and its PEM decoded here, not by
 * mbedtls_x509_crt_parse_file(): mbedTLS decodes base64 in constant time,
 * as private keys need, at about 400 instructions a byte, and that was
 * 64 of the 114 million instructions of a whole small send with the
 * system bundle (144 certificates).  CA certificates are public, so a
 * plain decoder is safe; mbedTLS still parses and checks every one.
 */
#define TRUST_MAX	(16 * 1024 * 1024)

static const char pem_begin[] = "-----BEGIN CERTIFICATE-----";
static const char pem_end[] = "-----END CERTIFICATE-----";

#define B64_SPACE	(-2)
#define B64_PAD		(-3)

/* The value of each octet in base64: a digit, or one of the above, or -1. */
static void
b64_table(signed char *val)
{
	static const char	 digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	int			 i;

	memset(val, -1, 256);
	for (i = 0; i < 64; i++)
		val[(unsigned char)digits[i]] = (signed char)i;
	val['\n'] = val['\r'] = val[' '] = val['\t'] = B64_SPACE;
	val['='] = B64_PAD;
}

/* A PEM body to DER in out (room for 3/4 of the input): length or -1. */
static long
pem_decode(const signed char *val, const char *p, const char *end,
    unsigned char *out)
{
	unsigned long	 acc = 0;
	size_t		 digits = 0, pad = 0, n = 0;
	int		 v;

	for (; p < end; p++) {
		v = val[(unsigned char)*p];
		if (v >= 0 && pad == 0) {
			acc = acc << 6 | (unsigned long)v;
			if (++digits % 4 == 0) {
				out[n++] = (unsigned char)(acc >> 16);
				out[n++] = (unsigned char)(acc >> 8);
				out[n++] = (unsigned char)acc;
				acc = 0;
			}
		} else if (v == B64_PAD)
			pad++;
		else if (v != B64_SPACE)
			return -1;
	}
	if (pad > 2 || (digits + pad) % 4 != 0 || digits % 4 == 1)
		return -1;
	if (digits % 4 == 2)
		out[n++] = (unsigned char)(acc >> 4);
	else if (digits % 4 == 3) {
		out[n++] = (unsigned char)(acc >> 10);
		out[n++] = (unsigned char)(acc >> 2);
	}
	return (long)n;
}

/*
 * Every CERTIFICATE block of a PEM file, or the file as one DER
 * certificate; a block mbedTLS refuses is skipped, as
 * mbedtls_x509_crt_parse_file() does.
 */
static void
parse_cas(mbedtls_x509_crt *ca, const char *buf, size_t len)
{
	const char	*p = buf, *end = buf + len, *b, *z;
	unsigned char	*der;
	signed char	 val[256];
	long		 n;

	if (memmem(buf, len, pem_begin, sizeof(pem_begin) - 1) == NULL) {
		(void)mbedtls_x509_crt_parse_der(ca,
		    (const unsigned char *)buf, len);
		return;
	}
	b64_table(val);
	der = xcalloc(1, len / 4 * 3 + 3);
	while ((b = memmem(p, (size_t)(end - p), pem_begin,
	    sizeof(pem_begin) - 1)) != NULL) {
		b += sizeof(pem_begin) - 1;
		z = memmem(b, (size_t)(end - b), pem_end, sizeof(pem_end) - 1);
		if (z == NULL)
			break;
		if ((n = pem_decode(val, b, z, der)) > 0)
			(void)mbedtls_x509_crt_parse_der(ca, der, (size_t)n);
		p = z + sizeof(pem_end) - 1;
	}
	free(der);
}

/*
 * Read a CA file whole.  Errors say which file, why, and what to set:
 * mbedTLS would only say "PK - Read/write of file failed".
 */
static int
read_trust(const char *file, const char *what, char **bufp, size_t *lenp,
    struct error *e)
{
	static const char fix[] = "set tls_trust_file to a readable file "
	    "of PEM CA certificates, or pin the relay with tls_fingerprint";
	struct stat	 st;
	char		*buf;
	ssize_t		 n;
	size_t		 len = 0;
	int		 fd;

	/* O_NONBLOCK: a FIFO must not hang us; no effect on a file. */
	if ((fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1)
		return error_set(e, EX_CONFIG, "cannot open %s %s: %s (%s)",
		    what, file, strerror(errno), fix);
	if (fstat(fd, &st) == -1) {
		error_set(e, EX_CONFIG, "cannot read %s %s: %s (%s)", what,
		    file, strerror(errno), fix);
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > TRUST_MAX) {
		close(fd);
		return error_set(e, EX_CONFIG, "%s %s is %s (%s)", what, file,
		    S_ISDIR(st.st_mode) ? "a directory, not a file" :
		    !S_ISREG(st.st_mode) ? "not a regular file" :
		    "larger than 16 MiB", fix);
	}
	buf = xcalloc(1, (size_t)st.st_size + 1);
	while (len < (size_t)st.st_size &&
	    (n = read(fd, buf + len, (size_t)st.st_size - len)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			error_set(e, EX_CONFIG, "cannot read %s %s: %s (%s)",
			    what, file, strerror(errno), fix);
			close(fd);
			free(buf);
			return -1;
		}
		len += (size_t)n;
	}
	close(fd);
	*bufp = buf;
	*lenp = len;
	return 0;
}

static int
load_trust(struct tls *t, const struct account *a, struct error *e)
{
	const char	*file = a->trust_file, *what = "tls_trust_file";
	char		*buf = NULL;
	size_t		 len = 0;
	int		 i;

	if (file == NULL) {
		what = "the system CA store";
		for (i = 0; system_stores[i] != NULL; i++)
			if (access(system_stores[i], F_OK) == 0)
				break;
		if ((file = system_stores[i]) == NULL)
			return error_set(e, EX_CONFIG, "no system CA store "
			    "found (looked for %s and others): install "
			    "ca-certificates, or set tls_trust_file or "
			    "tls_fingerprint", system_stores[0]);
	}
	if (read_trust(file, what, &buf, &len, e) == -1)
		return -1;
	parse_cas(&t->ca, buf, len);
	free(buf);
	if (t->ca.raw.p == NULL)
		return error_set(e, EX_CONFIG, "%s %s holds no usable "
		    "certificate (PEM or DER expected)", what, file);
	mbedtls_ssl_conf_ca_chain(&t->conf, &t->ca, NULL);
	return 0;
}

/*
 * Why mbedTLS could not load a file: it says only "Read/write of file
 * failed" where the system can say why.
 */
static void
load_error(int rc, const char *file, char *msg, size_t size)
{
	int	 fd;

	if (rc == MBEDTLS_ERR_X509_FILE_IO_ERROR ||
	    rc == MBEDTLS_ERR_PK_FILE_IO_ERROR) {
		if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1) {
			snprintf(msg, size, "%s", strerror(errno));
			return;
		}
		close(fd);
	}
	mbed_error(rc, msg, size);
}

/* Set e and return 1 when path exists and is no regular file. */
static int
not_regular(const char *path, const char *what, struct error *e)
{
	struct stat	 st;

	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		error_set(e, EX_CONFIG, "cannot load %s %s: not a regular "
		    "file", what, path);
		return 1;
	}
	return 0;
}

static int
load_client_cert(struct tls *t, const struct account *a, struct error *e)
{
	char	 msg[128];
	int	 rc;

	if (a->cert_file == NULL && a->key_file == NULL)
		return 0;
	if (a->cert_file == NULL || a->key_file == NULL)
		return error_set(e, EX_CONFIG, "tls_cert_file and "
		    "tls_key_file must be set together");
	/* mbedTLS reads them with fopen(3): a FIFO would hang it. */
	if (not_regular(a->cert_file, "tls_cert_file", e) ||
	    not_regular(a->key_file, "tls_key_file", e))
		return -1;
	if ((rc = mbedtls_x509_crt_parse_file(&t->cert, a->cert_file)) != 0) {
		load_error(rc, a->cert_file, msg, sizeof(msg));
		return error_set(e, EX_CONFIG, "cannot load tls_cert_file "
		    "%s: %s", a->cert_file, msg);
	}
	rc = mbedtls_pk_parse_keyfile(&t->key, a->key_file, NULL,
	    mbedtls_psa_get_random, MBEDTLS_PSA_RANDOM_STATE);
	if (rc != 0) {
		load_error(rc, a->key_file, msg, sizeof(msg));
		return error_set(e, EX_CONFIG, "cannot load tls_key_file "
		    "%s: %s", a->key_file, msg);
	}
	if ((rc = mbedtls_ssl_conf_own_cert(&t->conf, &t->cert, &t->key)) !=
	    0)
		return error_set(e, EX_SOFTWARE, "mbedtls_ssl_conf_own_cert "
		    "failed (%d)", rc);
	return 0;
}

/*
 * The session cache: one file per host, port, trust and cipher
 * settings, named by a hash of them, so a ticket saved under one trust
 * configuration is never used under another (a resumed TLS 1.3 session
 * carries no certificate to check again), nor a legacy cipher's session
 * once tls_legacy_ciphers is off.  The file is a secret: 0600, ours, or
 * ignored; replaced atomically.
 */
#define TICKET_MAX	8192

static char *
cache_path(const struct account *a, const char *name)
{
	mbedtls_sha256_context	 h;
	unsigned char		 md[32];
	char			 key[1024], *path;
	size_t			 len, i;
	int			 n;

	if (a->session_cache == NULL || !a->certcheck)
		return NULL;
	n = snprintf(key, sizeof(key), "%s%c%d%c%s%c%d%c%d%c%d", name, 0,
	    a->port, 0, a->trust_file ? a->trust_file : "system", 0,
	    a->tls_min, 0, a->has_fingerprint, 0, a->tls_legacy_ciphers);
	if (n < 0 || (size_t)n >= sizeof(key))
		return NULL;
	mbedtls_sha256_init(&h);
	mbedtls_sha256_starts(&h, 0);
	mbedtls_sha256_update(&h, (const unsigned char *)key, (size_t)n);
	if (a->has_fingerprint)
		mbedtls_sha256_update(&h, a->fingerprint, 32);
	mbedtls_sha256_finish(&h, md);
	mbedtls_sha256_free(&h);
	len = strlen(a->session_cache) + 64;
	path = xcalloc(1, len);
	n = snprintf(path, len, "%s/", a->session_cache);
	for (i = 0; i < 16; i++)
		n += snprintf(path + n, len - (size_t)n, "%02x", md[i]);
	return path;
}

/* Make the cache directory (0700) if needed; it must be ours. */
static int
cache_dir(const char *dir)
{
	struct stat	 st;

	(void)mkdir_above(dir);
	(void)mkdir(dir, 0700);
	if (lstat(dir, &st) == -1 || !S_ISDIR(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 077) != 0)
		return -1;
	return 0;
}

static void
cache_load(struct tls *t)
{
	mbedtls_ssl_session	 sess;
	unsigned char		 buf[TICKET_MAX];
	struct stat		 st;
	ssize_t			 n;
	int			 fd, ok = 0;

	if (t->cache == NULL)
		return;
	fd = open_read(t->cache, O_NOFOLLOW);
	if (fd == -1)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_uid == geteuid() && (st.st_mode & 077) == 0 &&
	    st.st_size > 0 && st.st_size <= TICKET_MAX &&
	    (n = read(fd, buf, sizeof(buf))) == st.st_size) {
		mbedtls_ssl_session_init(&sess);
		if (mbedtls_ssl_session_load(&sess, buf, (size_t)n) == 0 &&
		    mbedtls_ssl_set_session(&t->ssl, &sess) == 0)
			ok = 1;
		mbedtls_ssl_session_free(&sess);
	}
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	if (ok)
		t->loaded = 1;
	else
		(void)unlink(t->cache);	/* stale: a library upgrade, say */
}

static void
cache_save(struct tls *t)
{
	mbedtls_ssl_session	 sess;
	unsigned char		 buf[TICKET_MAX];
	char			 tmp[4200];
	size_t			 len = 0;
	int			 fd, ok;

	if (t->cache == NULL)
		return;
	mbedtls_ssl_session_init(&sess);
	ok = mbedtls_ssl_get_session(&t->ssl, &sess) == 0 &&
	    mbedtls_ssl_session_save(&sess, buf, sizeof(buf), &len) == 0;
	mbedtls_ssl_session_free(&sess);
	if (!ok || snprintf(tmp, sizeof(tmp), "%s.XXXXXX", t->cache) >=
	    (int)sizeof(tmp))
		goto done;
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1)
		goto done;
	if (write(fd, buf, len) == (ssize_t)len && close(fd) == 0) {
		if (rename(tmp, t->cache) == -1)
			(void)unlink(tmp);
	} else {
		close(fd);
		(void)unlink(tmp);
	}
done:
	explicit_bzero(buf, sizeof(buf));
}

/* mbedTLS's list in its order, less the TLS 1.2 suites not wanted. */
static void
choose_suites(struct tls *t)
{
	const int	*all = mbedtls_ssl_list_ciphersuites();
	size_t		 i, j, n = 0;
	int		 keep;

	for (i = 0; all[i] != 0 && n < SUITES_MAX; i++) {
		/* RFC 8446 B.4: TLS 1.3 suites are 0x13XX. */
		keep = (all[i] & 0xff00) == 0x1300;
		for (j = 0; !keep && j < sizeof(tls12_suites) /
		    sizeof(tls12_suites[0]); j++)
			keep = all[i] == tls12_suites[j];
		if (keep)
			t->suites[n++] = all[i];
	}
	t->suites[n] = 0;
	mbedtls_ssl_conf_ciphersuites(&t->conf, t->suites);
}

static int
configure(struct tls *t, const struct account *a, struct error *e)
{
	int	 rc;

	if ((rc = mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_CLIENT,
	    MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT)) != 0)
		return error_set(e, EX_SOFTWARE, "TLS setup failed (%d)", rc);
	mbedtls_ssl_conf_rng(&t->conf, mbedtls_psa_get_random,
	    MBEDTLS_PSA_RANDOM_STATE);
	mbedtls_ssl_conf_min_tls_version(&t->conf, a->tls_min == 13 ?
	    MBEDTLS_SSL_VERSION_TLS1_3 : MBEDTLS_SSL_VERSION_TLS1_2);
	mbedtls_ssl_conf_max_tls_version(&t->conf, t->max12 ?
	    MBEDTLS_SSL_VERSION_TLS1_2 : MBEDTLS_SSL_VERSION_TLS1_3);
	mbedtls_ssl_conf_verify(&t->conf, verify_cb, t);
	mbedtls_ssl_conf_sig_algs(&t->conf, sig_algs);
	if (!a->tls_legacy_ciphers)
		choose_suites(t);
	if (a->session_cache != NULL && a->certcheck)
		mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(
		    &t->conf, MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED);
	if (!a->certcheck) {
		log_warn("tls_certcheck is off: the relay's identity is NOT "
		    "checked and the password can be stolen by anyone on the "
		    "path");
		mbedtls_ssl_conf_authmode(&t->conf, MBEDTLS_SSL_VERIFY_NONE);
	} else if (a->has_fingerprint) {
		/* The pin replaces CA trust; checked after the handshake. */
		mbedtls_ssl_conf_authmode(&t->conf,
		    MBEDTLS_SSL_VERIFY_OPTIONAL);
	} else {
		mbedtls_ssl_conf_authmode(&t->conf,
		    MBEDTLS_SSL_VERIFY_REQUIRED);
		if (load_trust(t, a, e) == -1)
			return -1;
	}
	if (load_client_cert(t, a, e) == -1)
		return -1;
	if ((rc = mbedtls_ssl_setup(&t->ssl, &t->conf)) != 0)
		return error_set(e, EX_SOFTWARE, "TLS setup failed (%d)", rc);
	if ((rc = mbedtls_ssl_set_hostname(&t->ssl, t->name)) != 0)
		return error_set(e, EX_CONFIG, "cannot use '%s' as TLS host "
		    "name (%d)", t->name, rc);
	mbedtls_ssl_set_bio(&t->ssl, t, bio_send, NULL, bio_recv);
	if (!t->max12 && (t->cache = cache_path(a, t->name)) != NULL &&
	    cache_dir(a->session_cache) == -1) {
		free(t->cache);
		t->cache = NULL;
	}
	cache_load(t);
	return 0;
}

static void
fingerprint_str(const unsigned char *md, char *buf, size_t size)
{
	size_t	 i, len = 0;

	buf[0] = '\0';
	for (i = 0; i < 32 && len + 3 < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%02X",
		    i ? ":" : "", md[i]);
}

/* Say exactly why the relay's certificate was not accepted. */
static int
verify_error(struct tls *t, const struct account *a, struct error *e)
{
	uint32_t	 f = mbedtls_ssl_get_verify_result(&t->ssl);
	char		 info[512];

	if (f == (uint32_t)-1)
		f = t->leaf_flags;
	if (f & MBEDTLS_X509_BADCERT_EXPIRED)
		return error_set(e, EX_CONFIG, "the certificate of %s expired "
		    "on %s", t->name, t->leaf_expiry);
	if (f & MBEDTLS_X509_BADCERT_FUTURE)
		return error_set(e, EX_CONFIG, "the certificate of %s is not "
		    "valid yet (check this machine's clock)", t->name);
	if (f & MBEDTLS_X509_BADCERT_CN_MISMATCH)
		return error_set(e, EX_CONFIG, "the certificate of the relay "
		    "is for %s, not for %s (set host to one of those names, "
		    "or tls_host_override)", t->leaf_names, t->name);
	if (f & MBEDTLS_X509_BADCERT_NOT_TRUSTED)
		return error_set(e, EX_CONFIG, "the certificate of %s was "
		    "issued by '%s', which is not trusted by %s (set "
		    "tls_trust_file to that CA, or pin it with "
		    "tls_fingerprint)", t->name, t->leaf_issuer,
		    a->trust_file ? a->trust_file : "the system CA store");
	mbedtls_x509_crt_verify_info(info, sizeof(info), "", f);
	info[strcspn(info, "\n")] = '\0';
	return error_set(e, EX_CONFIG, "the certificate of %s was not "
	    "accepted: %s", t->name, info);
}

/* Compare without an early exit, so timing tells nothing. */
static int
same_digest(const unsigned char *a, const unsigned char *b)
{
	unsigned char	 d = 0;
	size_t		 i;

	for (i = 0; i < 32; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

static int
check_pin(struct tls *t, const struct account *a, struct error *e)
{
	char	 got[100], want[100];

	if (!a->certcheck || !a->has_fingerprint)
		return 0;
	/* Resumed from a ticket saved after this same pin matched. */
	if (!t->have_leaf && t->loaded)
		return 0;
	if (!t->have_leaf)
		return error_set(e, EX_CONFIG, "%s sent no certificate to "
		    "check tls_fingerprint against", t->name);
	if (same_digest(t->leaf_sha256, a->fingerprint))
		return 0;
	fingerprint_str(t->leaf_sha256, got, sizeof(got));
	fingerprint_str(a->fingerprint, want, sizeof(want));
	return error_set(e, EX_CONFIG, "the certificate of %s does not match "
	    "tls_fingerprint: it is %s, the pin is %s", t->name, got, want);
}

/*
 * A failed handshake, with what the user can do about it.  A relay that
 * knows none of our ciphers answers with a fatal alert, and mbedTLS
 * does not say which alert, so the tls_legacy_ciphers hint comes with
 * every fatal alert that may be one.
 */
/*
 * Implicit TLS to a port that greets in clear (587, 25): the first bytes
 * are an SMTP reply, not a TLS record.  Said as such, with the setting
 * to change; a plain "421 busy" is the relay's trouble, for later.
 */
static int
plain_reply(struct tls *t, const struct account *a, struct error *e)
{
	char	 shown[sizeof(t->first) + 1];
	size_t	 i;
	ssize_t	 n;

	if (t->nfirst < 4 || t->first[0] < '2' || t->first[0] > '5' ||
	    !isdigit(t->first[1]) || !isdigit(t->first[2]) ||
	    (t->first[3] != ' ' && t->first[3] != '-'))
		return 0;
	/* The rest of the line, if it came: only looked at. */
	n = recv(t->fd, t->first + t->nfirst, sizeof(t->first) - t->nfirst,
	    MSG_PEEK | MSG_DONTWAIT);
	if (n > 0)
		t->nfirst += (size_t)n;
	for (i = 0; i < t->nfirst && t->first[i] != '\r' &&
	    t->first[i] != '\n'; i++)
		shown[i] = t->first[i] < 0x20 || t->first[i] >= 0x7f ? '?' :
		    (char)t->first[i];
	shown[i] = '\0';
	if (memcmp(t->first, "421", 3) == 0)
		return error_set(e, EX_TEMPFAIL, "the relay %s port %d "
		    "answered in plain text instead of TLS: '%s...' (busy); "
		    "if it always greets in plain text, set tls_starttls on",
		    t->name, a->port, shown);
	return error_set(e, EX_CONFIG, "the relay %s port %d greets in plain "
	    "text ('%s...'), not with TLS: this port wants STARTTLS: set "
	    "tls_starttls on (or use the relay's implicit TLS port, usually "
	    "465)", t->name, a->port, shown);
}

static int
handshake_error(struct tls *t, const struct account *a, int rc,
    struct error *e)
{
	char	 msg[160];

	if (plain_reply(t, a, e) == -1)
		return -1;
	mbed_error(rc, msg, sizeof(msg));
	if (rc == MBEDTLS_ERR_NET_RECV_FAILED ||
	    rc == MBEDTLS_ERR_NET_SEND_FAILED ||
	    rc == MBEDTLS_ERR_SSL_CONN_EOF)
		return error_set(e, EX_TEMPFAIL, "TLS handshake with %s "
		    "failed: %s", t->name, msg);
	if (a->tls_min == 13)
		return error_set(e, EX_PROTOCOL, "TLS handshake with %s "
		    "failed: %s (tls_min_version is 1.3)", t->name, msg);
	/* See sig_algs[]. */
	if (rc == MBEDTLS_ERR_SSL_ILLEGAL_PARAMETER &&
	    mbedtls_ssl_get_version_number(&t->ssl) ==
	    MBEDTLS_SSL_VERSION_TLS1_2 && (!t->have_leaf || t->leaf_rsa))
		t->pss12 = 1;
	if (t->pss12)
		return error_set(e, EX_PROTOCOL, "TLS handshake with %s "
		    "failed: %s (the relay chose TLS 1.2 and most likely "
		    "signed with RSA-PSS, which mbedTLS %s refuses in TLS "
		    "1.2, a bug fixed after 3.6.6: update mbedTLS, or enable "
		    "TLS 1.3 on the relay)", t->name, msg,
		    tls_library_version());
	if (rc == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE &&
	    !a->tls_legacy_ciphers)
		return error_set(e, EX_PROTOCOL, "TLS handshake with %s "
		    "failed: %s (if the relay speaks only TLS 1.2 without "
		    "forward secrecy, e.g. AES128-SHA, 'tls_legacy_ciphers "
		    "on' allows its ciphers: see smarthost.conf(5))",
		    t->name, msg);
	return error_set(e, EX_PROTOCOL, "TLS handshake with %s failed: %s",
	    t->name, msg);
}

static int
handshake(struct tls *t, const struct account *a, struct error *e)
{
	int	 rc;

	while ((rc = mbedtls_ssl_handshake(&t->ssl)) != 0) {
		if (rc == MBEDTLS_ERR_SSL_WANT_READ ||
		    rc == MBEDTLS_ERR_SSL_WANT_WRITE ||
		    rc == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
			continue;
		if (rc == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED ||
		    rc == MBEDTLS_ERR_SSL_BAD_CERTIFICATE)
			return verify_error(t, a, e);
		if (rc == MBEDTLS_ERR_SSL_TIMEOUT)
			return error_set(e, EX_TEMPFAIL, "TLS handshake with "
			    "%s timed out", t->name);
		return handshake_error(t, a, rc, e);
	}
	if (check_pin(t, a, e) == -1)
		return -1;
	/* TLS 1.2 has its session now; 1.3 tickets come later (tls_read). */
	if (mbedtls_ssl_get_version_number(&t->ssl) ==
	    MBEDTLS_SSL_VERSION_TLS1_2 && !(t->loaded && !t->have_leaf))
		cache_save(t);
	return 0;
}

static void
tls_free(struct tls *t)
{
	free(t->cache);
	mbedtls_ssl_free(&t->ssl);
	mbedtls_ssl_config_free(&t->conf);
	mbedtls_x509_crt_free(&t->ca);
	mbedtls_x509_crt_free(&t->cert);
	mbedtls_pk_free(&t->key);
	free(t);
}

/*
 * TLS over the connection.  max12: offer TLS 1.2 at most, for a second
 * connection after -2: the relay chose TLS 1.2 and signed with RSA-PSS,
 * which mbedTLS 3.6.6 refuses there (see sig_algs); a ClientHello for
 * 1.2 alone offers no PSS, so the relay must sign with PKCS#1.  The
 * certificate is checked all the same.
 */
int
tls_start(struct conn *c, const struct account *a, int max12,
    struct error *e)
{
	static int	 psa_ready;
	struct tls	*t;
	int		 retry;

	if (!psa_ready) {
		if (psa_crypto_init() != PSA_SUCCESS)
			return error_set(e, EX_SOFTWARE,
			    "cannot initialise the crypto library");
		psa_ready = 1;
	}
	t = xcalloc(1, sizeof(*t));
	mbedtls_ssl_init(&t->ssl);
	mbedtls_ssl_config_init(&t->conf);
	mbedtls_x509_crt_init(&t->ca);
	mbedtls_x509_crt_init(&t->cert);
	mbedtls_pk_init(&t->key);
	t->fd = c->fd;
	t->timeout_ms = c->timeout_ms;
	t->deadline = now_ms() + c->timeout_ms;	/* the whole handshake */
	t->name = a->host_override != NULL ? a->host_override : a->host;
	t->max12 = max12;
	if (configure(t, a, e) == -1 || handshake(t, a, e) == -1) {
		retry = t->pss12 && !max12;
		tls_free(t);
		return retry ? -2 : -1;
	}
	c->tls = t;
	c->wmax = tls_record_payload(t);
	trace("-- TLS %s %s%s", mbedtls_ssl_get_version(&t->ssl),
	    mbedtls_ssl_get_ciphersuite(&t->ssl),
	    t->loaded && !t->have_leaf ? " (resumed)" : "");
	return 0;
}

/* How much plaintext fills one record, so no write splits into two. */
size_t
tls_record_payload(struct tls *t)
{
	int	 n = mbedtls_ssl_get_max_out_record_payload(&t->ssl);

	if (n <= 0 || n > 16384)
		return 16384;
	return (size_t)n;
}

int
tls_read(struct tls *t, void *buf, size_t len, long long deadline,
    int step_ms, struct error *e)
{
	char	 msg[160];
	int	 rc;

	/* One deadline for the step's reads, however the bytes trickle in. */
	t->deadline = deadline;
	t->timeout_ms = step_ms;
	for (;;) {
		rc = mbedtls_ssl_read(&t->ssl, buf, len);
		if (rc >= 0)
			return rc;
		switch (rc) {
		case MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET:
			cache_save(t);
			continue;
		case MBEDTLS_ERR_SSL_WANT_READ:
		case MBEDTLS_ERR_SSL_WANT_WRITE:
			continue;
		case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
			return 0;
		case MBEDTLS_ERR_SSL_TIMEOUT:
			return error_set(e, EX_TEMPFAIL, "no answer from the "
			    "relay within %d seconds", t->timeout_ms / 1000);
		default:
			mbed_error(rc, msg, sizeof(msg));
			return error_set(e, EX_TEMPFAIL, "reading from the "
			    "relay: %s", msg);
		}
	}
}

int
tls_write(struct tls *t, const void *buf, size_t len, int step_ms,
    struct error *e)
{
	const unsigned char	*p = buf;
	char			 msg[160];
	int			 rc;

	t->timeout_ms = step_ms;	/* for each write, as RFC 5321 has it */
	while (len > 0) {
		rc = mbedtls_ssl_write(&t->ssl, p, len);
		if (rc > 0) {
			p += rc;
			len -= (size_t)rc;
			continue;
		}
		if (rc == MBEDTLS_ERR_SSL_WANT_READ ||
		    rc == MBEDTLS_ERR_SSL_WANT_WRITE ||
		    rc == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
			continue;
		if (rc == MBEDTLS_ERR_SSL_TIMEOUT)
			return error_set(e, EX_TEMPFAIL, "the relay took no "
			    "data for %d seconds", t->timeout_ms / 1000);
		mbed_error(rc, msg, sizeof(msg));
		return error_set(e, EX_TEMPFAIL, "writing to the relay: %s",
		    msg);
	}
	return 0;
}

/*
 * The RFC 9266 tls-exporter channel binding, base64, for SCRAM-*-PLUS.
 * Only for TLS 1.3: mbedTLS has no tls-unique for 1.2.
 */
int
tls_exporter(struct tls *t, char *buf, size_t size)
{
#ifdef MBEDTLS_SSL_KEYING_MATERIAL_EXPORT
	unsigned char	 key[32];
	size_t		 olen;
	int		 rc;

	if (mbedtls_ssl_get_version_number(&t->ssl) !=
	    MBEDTLS_SSL_VERSION_TLS1_3)
		return -1;
	if (mbedtls_ssl_export_keying_material(&t->ssl, key, sizeof(key),
	    "EXPORTER-Channel-Binding", 24, NULL, 0, 0) != 0)
		return -1;
	rc = mbedtls_base64_encode((unsigned char *)buf, size, &olen, key,
	    sizeof(key));
	explicit_bzero(key, sizeof(key));
	return rc == 0 ? 0 : -1;
#else
	(void)t;
	(void)buf;
	(void)size;
	return -1;
#endif
}

/*
 * What the session tells of the relay.  The certificate comes from the
 * session itself, so it is there with tls_certcheck off too (no verify
 * callback runs then); a resumed TLS 1.3 session has none.
 */
void
tls_info(struct tls *t, struct tls_info *info)
{
	const mbedtls_x509_crt	*crt;
	unsigned char		 md[32];

	memset(info, 0, sizeof(*info));
	snprintf(info->version, sizeof(info->version), "%s",
	    mbedtls_ssl_get_version(&t->ssl));
	snprintf(info->cipher, sizeof(info->cipher), "%s",
	    mbedtls_ssl_get_ciphersuite(&t->ssl));
	if ((crt = mbedtls_ssl_get_peer_cert(&t->ssl)) != NULL) {
		mbedtls_x509_dn_gets(info->subject, sizeof(info->subject),
		    &crt->subject);
		mbedtls_x509_dn_gets(info->issuer, sizeof(info->issuer),
		    &crt->issuer);
		cert_expiry(crt, info->expires, sizeof(info->expires));
		mbedtls_sha256(crt->raw.p, crt->raw.len, md, 0);
		fingerprint_str(md, info->fingerprint,
		    sizeof(info->fingerprint));
	}
	info->resumed = t->loaded && !t->have_leaf;
}

void
tls_close(struct tls *t)
{
	int	 rc;

	t->timeout_ms = 1000;
	do
		rc = mbedtls_ssl_close_notify(&t->ssl);
	while (rc == MBEDTLS_ERR_SSL_WANT_WRITE);
	tls_free(t);
}

const char *
tls_library_version(void)
{
	static char	 v[32];

	mbedtls_version_get_string(v);
	return v;
}

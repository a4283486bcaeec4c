# SPDX-License-Identifier: ISC
# smarthost: a sendmail-compatible relay client.
#
#   make            build ./smarthost
#   make check      install what the tests need if missing, build, run
#                   every test (the root-only ones need root: README)
#   make demo       install the build dependencies if missing, send a
#                   message to a test relay on loopback
#   make deb        the Debian package, build/smarthost_*.deb
#   make install    PREFIX=/usr/local DESTDIR=
#   make install-setgid   the same, setgid smarthost (a system password)

PREFIX	?= /usr/local
SBINDIR	?= $(PREFIX)/sbin
LIBDIR	?= $(PREFIX)/lib
MANDIR	?= $(PREFIX)/share/man
CC	?= cc
CFLAGS	?= -O2 -g
PKG_CONFIG ?= pkg-config

PKGS	 = mbedtls mbedx509 mbedcrypto libgsasl jansson
WARN	 = -Wall -Wextra -Wshadow -Wformat=2 -Wconversion -Wno-sign-conversion \
	   -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
	   -Wundef -Wvla
DEFS	 = -D_GNU_SOURCE -D_FORTIFY_SOURCE=2
HARDEN	 = -fstack-protector-strong -fPIE
PKGCFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKGLIBS	:= $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
ALLCFLAGS = -std=c11 $(WARN) $(DEFS) $(HARDEN) $(PKGCFLAGS) $(CFLAGS)
ALLLDFLAGS = -pie -Wl,-z,relro,-z,now $(LDFLAGS)

SRCS	 = sendmail.c config.c secret.c message.c deliver.c notice.c net.c \
	   tls.c auth.c smtp.c log.c queue.c bsmtp.c providers.c setup.c \
	   priv.c oauth.c http.c
LIBSRCS	 = $(filter-out sendmail.c,$(SRCS))
UNITS	 = $(patsubst tests/%.c,%,$(wildcard tests/unit_*.c))

B	 = build
OBJS	 = $(SRCS:%.c=$(B)/%.o)
LIBOBJS	 = $(LIBSRCS:%.c=$(B)/%.o)

# The sanitizer build: same sources, own objects.
SAN	 = -fsanitize=address,undefined -fno-omit-frame-pointer \
	   -fno-sanitize-recover=all
BA	 = build/asan
AOBJS	 = $(SRCS:%.c=$(BA)/%.o)
ALIBOBJS = $(LIBSRCS:%.c=$(BA)/%.o)

.PHONY: all check check-run demo demo-run install install-setgid uninstall \
	clean deps deps-check deb \
	asan mbedtls-version fuzz static

all: mbedtls-version smarthost

mbedtls-version:
	@$(PKG_CONFIG) --atleast-version=3.6.0 mbedtls 2>/dev/null || { \
	  echo "smarthost needs mbedTLS 3.6 or newer (found:" \
	    "$$($(PKG_CONFIG) --modversion mbedtls 2>/dev/null || echo none))."; \
	  echo "Run scripts/install-deps: it installs libmbedtls-dev 3.6" \
	    "(on Debian 12 from Debian 13's packages)."; exit 1; }

smarthost: $(OBJS)
	$(CC) $(ALLCFLAGS) $(ALLLDFLAGS) -o $@ $(OBJS) $(PKGLIBS)

$(B)/%.o: %.c smarthost.h | $(B)
	$(CC) $(ALLCFLAGS) -c -o $@ $<

$(B) $(BA):
	mkdir -p $@

asan: $(BA)/smarthost $(UNITS:%=$(BA)/%)

$(BA)/smarthost: $(AOBJS)
	$(CC) $(ALLCFLAGS) $(SAN) $(ALLLDFLAGS) -o $@ $(AOBJS) $(PKGLIBS)

$(BA)/%.o: %.c smarthost.h | $(BA)
	$(CC) $(ALLCFLAGS) $(SAN) -c -o $@ $<

# Unit tests link the modules without sendmail.c's main().
$(B)/unit_%: tests/unit_%.c tests/unit.h $(LIBOBJS)
	$(CC) $(ALLCFLAGS) -I. $(ALLLDFLAGS) -o $@ $< $(LIBOBJS) $(PKGLIBS)

$(BA)/unit_%: tests/unit_%.c tests/unit.h $(ALIBOBJS)
	$(CC) $(ALLCFLAGS) $(SAN) -I. $(ALLLDFLAGS) -o $@ $< $(ALIBOBJS) \
	    $(PKGLIBS)

# The scripted test server.
$(B)/testsrv: tests/testsrv.c | $(B)
	$(CC) $(ALLCFLAGS) $(ALLLDFLAGS) -o $@ tests/testsrv.c $(PKGLIBS)

# tests/t-setgid.sh installs this one setgid: the same objects, but
# the system file and queue under SGID_ROOT, where the test owns them;
# one per checkout (named by a hash of its path, which build/sgid/root
# tells the test), so that two checkouts can test at once.
SGID_ROOT = /run/smarthost-sgid-test-$(shell printf %s '$(CURDIR)' | \
	    sha256sum | cut -c1-12)
$(B)/sgid/config.o: config.c smarthost.h Makefile
	@mkdir -p $(B)/sgid
	$(CC) $(ALLCFLAGS) -DSYSCONFDIR='"$(SGID_ROOT)/etc"' \
	    -DSPOOLDIR='"$(SGID_ROOT)/spool"' -c -o $@ config.c
	echo '$(SGID_ROOT)' >$(B)/sgid/root

$(B)/sgid/smarthost: $(B)/sgid/config.o $(filter-out $(B)/config.o,$(OBJS))
	$(CC) $(ALLCFLAGS) $(ALLLDFLAGS) -o $@ $^ $(PKGLIBS)

TESTBINS = smarthost $(B)/testsrv $(UNITS:%=$(B)/%) asan $(B)/sgid/smarthost

# Fuzzing (clang's libFuzzer): each tests/fuzz/fuzz_*.c for FUZZ_TIME
# seconds, starting from the committed seeds in tests/fuzz/corpus/NAME;
# what it learns goes to build/fuzz/corpus-NAME.
FUZZ_CC	 ?= clang
FUZZ_TIME ?= 30
FUZZERS	 = $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

$(B)/fuzz/%: tests/fuzz/%.c $(LIBSRCS) smarthost.h
	@mkdir -p $(B)/fuzz
	$(FUZZ_CC) -std=c11 -g -O1 -D_GNU_SOURCE -I. $(PKGCFLAGS) \
	    -fsanitize=fuzzer,address,undefined -o $@ $< $(LIBSRCS) $(PKGLIBS)

fuzz: $(FUZZERS)
	@for f in $(FUZZERS); do n=$${f##*/}; \
	  mkdir -p $(B)/fuzz/corpus-$$n tests/fuzz/corpus/$$n; \
	  echo "== $$n ($(FUZZ_TIME) s)"; \
	  $$f -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
	    $(B)/fuzz/corpus-$$n tests/fuzz/corpus/$$n 2>&1 | \
	    grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss|==[0-9]+==ERROR|SUMMARY)' \
	    || exit 1; \
	done

# make demo needs only what builds smarthost; make check also the test
# tools and the Debian roots the test Postfix runs in (made once, in the
# background while the build runs, and shared by every checkout; the
# machine's MTA is never touched).
deps:
	@./scripts/install-deps build

deps-check:
	@./scripts/install-deps check
	@tests/postfix-relay prepare --background 3.7 3.10

check: deps-check
	@$(MAKE) --no-print-directory check-run

check-run: mbedtls-version $(TESTBINS)
	@tests/run

demo: deps
	@$(MAKE) --no-print-directory demo-run

demo-run: mbedtls-version smarthost $(B)/testsrv
	@tests/demo

# The Debian package from the files git knows, built in build/deb.
deb:
	@./scripts/make-deb

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBDIR) \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5
	install -m 0755 smarthost $(DESTDIR)$(SBINDIR)/smarthost
	ln -sf smarthost $(DESTDIR)$(SBINDIR)/sendmail
	ln -sf smarthost $(DESTDIR)$(SBINDIR)/mailq
	ln -sf smarthost $(DESTDIR)$(SBINDIR)/newaliases
	ln -sf $(SBINDIR)/smarthost $(DESTDIR)$(LIBDIR)/sendmail
	install -m 0644 man/smarthost.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 man/smarthost.conf.5 $(DESTDIR)$(MANDIR)/man5/

# make install-setgid: a system-wide password for every user, off by
# default (smarthost(8), SETGID INSTALL).  On top of install: the group
# smarthost, the binary setgid to it, /etc/smarthost.conf root:smarthost
# 0640 when it exists, and the system queue root:smarthost 2770 (what
# root queued there before joins the group).
GROUP	?= smarthost
# The system queue: config.c's SPOOLDIR, compiled in.
SPOOL	 = /var/spool/smarthost
install-setgid: install
	getent group $(GROUP) >/dev/null || groupadd --system $(GROUP)
	chgrp $(GROUP) $(DESTDIR)$(SBINDIR)/smarthost
	chmod 2755 $(DESTDIR)$(SBINDIR)/smarthost
	install -d -o root -g $(GROUP) -m 2770 $(DESTDIR)$(SPOOL)
	find $(DESTDIR)$(SPOOL) -maxdepth 1 -type f -user root \
	    -exec chgrp $(GROUP) {} + -exec chmod 0640 {} +
	if [ -f $(DESTDIR)/etc/smarthost.conf ]; then \
	  chown root:$(GROUP) $(DESTDIR)/etc/smarthost.conf && \
	  chmod 0640 $(DESTDIR)/etc/smarthost.conf; fi

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/smarthost $(DESTDIR)$(SBINDIR)/sendmail \
	    $(DESTDIR)$(SBINDIR)/mailq $(DESTDIR)$(SBINDIR)/newaliases \
	    $(DESTDIR)$(LIBDIR)/sendmail \
	    $(DESTDIR)$(MANDIR)/man8/smarthost.8 \
	    $(DESTDIR)$(MANDIR)/man5/smarthost.conf.5

# make static: ./smarthost-static for scratch and distroless images
# (contrib/Dockerfile.example), a static PIE from the same objects.
# glibc, not musl: Debian ships libc.a and the .a of mbedTLS, GNU SASL,
# libidn and libntlm, so nothing has to be rebuilt.  glibc >= 2.34 has
# the "files" and "dns" lookups built in, so getaddrinfo needs only
# /etc/hosts and /etc/resolv.conf (Docker provides both); the linker's
# warnings about getaddrinfo, getpwuid and dlopen name the lookups that
# would load NSS modules or GSSAPI plugins from the image, which a
# static binary does without: the GSSAPI mechanism is then unavailable.
# libgsasl.pc leaves out the GSSAPI library Debian builds it with.
STATICLIBS ?= -lgssglue
static: mbedtls-version smarthost-static

smarthost-static: $(OBJS)
	$(CC) $(ALLCFLAGS) -static-pie -Wl,-z,relro,-z,now $(LDFLAGS) \
	    -o $@ $(OBJS) \
	    $$($(PKG_CONFIG) --static --libs $(PKGS)) $(STATICLIBS)

# The benchmark against msmtp through the test relays, Postfix 3.7 and
# 3.10 (root; about 4 minutes): prints the table, writes bench/RESULTS.md
# and bench/results.png.
.PHONY: bench
bench: mbedtls-version smarthost
	@./scripts/install-deps bench
	@bench/run

clean:
	rm -rf build smarthost smarthost-static

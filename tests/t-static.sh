#!/bin/bash
# SPDX-License-Identifier: ISC
# make static: ./smarthost-static has no program interpreter and no
# shared library, and sends through the scripted test relay from a root
# directory holding only itself, a CA file, a password file and
# /etc/hosts (what a scratch container has), set up by the environment
# alone.  Without a CA store it refuses to connect and keeps the message.
. tests/lib.sh

BIN=$TOP/smarthost-static
USER=alice@example.test
PASS=alice-not-a-real-secret

# Static linking needs the .a of libc and of every library; a machine
# without them skips, any other failure to link is a failure.
missing_archives() {
	local l
	for l in c $(pkg-config --static --libs-only-l mbedtls mbedx509 \
	    mbedcrypto libgsasl | sed 's/-l//g') gssglue; do
		[ "$(${CC:-cc} -print-file-name="lib$l.a")" = "lib$l.a" ] &&
		    printf ' lib%s.a' "$l"
	done
}
if ! make -s -C "$TOP" static >"$T/build.log" 2>&1; then
	m=$(missing_archives)
	if [ -n "$m" ]; then
		skip "make static # static archives missing:$m"
		exit 0
	fi
	notok "make static"
	sed 's/^/#   | /' "$T/build.log" | tail -20
	exit 1
fi
ok "make static"

check_eq "static: no program interpreter" \
    "$(readelf -lW "$BIN" | grep -c 'program interpreter')" 0
check_eq "static: no shared library needed" \
    "$(readelf -dW "$BIN" | grep -c '(NEEDED)')" 0
check_eq "static: --version as the dynamic build" \
    "$(env -i "$BIN" --version)" "$("$TOP/smarthost" --version)"

# srv NAME: a test relay (implicit TLS, localhost's certificate) for one
# connection.
srv() {
	rm -rf "${T:?}/$1"; mkdir -p "$T/$1/mail"
	bg "$TESTSRV" -p 0 -w "$T/$1/port" -t "$T/$1/tr" -d "$T/$1/mail" \
	    -n 1 -x 30 -u "$USER:$PASS" -T -c "$CERTS/server.pem" \
	    -k "$CERTS/server.key" \
	    -e "AUTH PLAIN LOGIN,PIPELINING,CHUNKING,SIZE 10000000,8BITMIME"
	for _ in $(seq 200); do [ -s "$T/$1/port" ] && break; sleep 0.02
	done
	PORT=$(cat "$T/$1/port")
	MAIL=$T/$1/mail
}

MSG="From: Alice <$USER>
To: bob@example.org
Subject: from an empty root
Date: Sat, 28 Nov 2026 10:00:00 +0000
Message-ID: <static1@example.test>

sent by the static binary"
printf '%s\n' "$MSG" | sed 's/$/\r/' >"$T/expected.eml"

# newroot DIR: the binary, the CA, the password and localhost's address.
newroot() {
	mkdir -p "$1/etc"
	cp "$BIN" "$1/smarthost"
	cp "$CERTS/ca.pem" "$1/ca.pem"
	printf '%s\n' "$PASS" >"$1/password"
	chmod 600 "$1/password"
	echo "127.0.0.1 localhost" >"$1/etc/hosts"
}

# at ROOT: how the binary names ROOT's top.
at() { [ ${#CHROOT[@]} -eq 0 ] && echo "$1"; }

wait_srv() {
	local p
	for p in $lib_pids; do wait "$p" 2>/dev/null; done
	lib_pids=
}

# inroot ROOT [VAR=VALUE...] -- [smarthost args]: run the binary in
# ROOT (chroot) or, without root, from ROOT in an empty environment with
# the paths made absolute; the relay and account come from the
# environment alone.
inroot() {
	local root=$1 pre
	shift
	pre=$(at "$root")
	local vars=()
	while [ "$1" != -- ]; do vars+=("$1"); shift; done
	shift
	(cd "$root" && env -i \
	    SMARTHOST_RELAY="smtps://$USER@localhost:$PORT" \
	    SMARTHOST_PASSWORD_FILE="$pre/password" \
	    SMARTHOST_FROM="$USER" \
	    SMARTHOST_QUEUE_DIR="$pre/var/spool/smarthost" \
	    SMARTHOST_DEAD_LETTER="$pre/dead.letter" \
	    "${vars[@]}" "${CHROOT[@]}" "$pre/smarthost" "$@")
}

# send ROOT NAME [VAR=VALUE...]: the message to bob through the relay.
send() {
	local root=$1 name=$2
	shift 2
	printf '%s\n' "$MSG" | inroot "$root" "$@" -- -i bob@example.org \
	    >"$T/$name.out" 2>"$T/$name.err"
	RC=$?
}

CHROOT=()
if [ "$(id -u)" -eq 0 ] && command -v chroot >/dev/null; then
	CHROOT=("$(command -v chroot)" .)
	echo "# in a chroot holding only the files named above"
else
	skip "chroot # not root: the binary runs from an empty environment instead"
fi

# 1. The container setup: environment only, the CA given as a file.
srv envonly
newroot "$T/r1"
send "$T/r1" envonly SMARTHOST_TLS_TRUST_FILE="$(at "$T/r1")/ca.pem"
wait_srv
check_eq "empty root: exit 0" "$RC" 0
[ "$RC" -ne 0 ] && sed 's/^/#   | /' "$T/envonly.err"
check "empty root: the relay stored the message unchanged" \
    cmp -s "$MAIL/1.eml" "$T/expected.eml"
check_grep "empty root: authenticated as the relay URL's user" \
    "^auth PLAIN $USER\$" "$MAIL/1.env"
check_grep "empty root: envelope sender from SMARTHOST_FROM" \
    "^from <$USER>" "$MAIL/1.env"
check_grep "empty root: recipient" "^rcpt <bob@example.org>\$" \
    "$MAIL/1.env"
check_eq "empty root: nothing on stderr" "$(cat "$T/envonly.err")" ""
check_eq "empty root: the queue is left empty" \
    "$(ls -A "$T/r1/var/spool/smarthost")" ""

# 2. No tls_trust_file: in the root there is no CA store, so nothing is
# sent; the message waits in the queue (exit 0: it is ours now) and the
# fix is asked for loudly.
# Outside a chroot the host's store is found and does not hold the test
# CA: the same exit and queueing, for the certificate.
if [ ${#CHROOT[@]} -gt 0 ]; then
	WHY="no system CA store found.*set tls_trust_file"
else
	WHY="not trusted by the system CA store (set tls_trust_file"
fi
srv nostore
newroot "$T/r2"
send "$T/r2" nostore
wait_srv
check_eq "no CA store: kept, exit 0" "$RC" 0
check_grep "no CA store: says to set tls_trust_file" "$WHY" \
    "$T/nostore.err"
check_eq "no CA store: the relay received no message" \
    "$(ls -A "$MAIL")" ""
id=$(sed -n 's/.*kept in the queue as \([^,]*\),.*/\1/p' "$T/nostore.err")
check_grep "no CA store: the message is kept in the queue" \
    "NOT SENT YET: the message is kept in the queue as .*run sendmail -q" \
    "$T/nostore.err"
inroot "$T/r2" -- -bp >"$T/mailq.out" 2>&1
check_grep "no CA store: mailq in the root lists it" \
    "^${id:-no-queue-id} " "$T/mailq.out"
check_grep "no CA store: mailq gives the reason" "$WHY" "$T/mailq.out"

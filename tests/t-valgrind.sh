#!/bin/bash
# SPDX-License-Identifier: ISC
# A handful of real sessions against the test relay under valgrind: no
# memory error and no definite leak in any of them (and the unit tests,
# when their binaries are built).  Skipped where valgrind is missing.
. tests/lib.sh

if ! command -v valgrind >/dev/null; then
	skip "valgrind # not installed"
	exit 0
fi

USER=alice@example.test
PASS=alice-not-a-real-secret
CAPS="AUTH PLAIN LOGIN SCRAM-SHA-256,PIPELINING,CHUNKING,8BITMIME,DSN"
TLSOPT=(-c "$CERTS/server.pem" -k "$CERTS/server.key")
VG=(valgrind -q --leak-check=full --errors-for-leak-kinds=definite
    --error-exitcode=99)

srv() { testsrv "$@" -x 120; }

conf() {	# NAME [directive lines...]
	local n=$1
	shift
	smarthost_conf "$T/$n.conf" "timeout 30" \
	    "tls_session_cache $T/session" "logfile $T/log" "$@"
}

# vg NAME WANT_RC [smarthost arguments]: a message on stdin.
vg() {
	name=$1 want=$2; shift 2
	printf 'Subject: valgrind\nTo: bob@example.org\n\nbody\n' |
	    "${VG[@]}" --log-file="$T/$name.vg" "$SMARTHOST" -C "$CONF" "$@" \
	    >"$T/$name.out" 2>"$T/$name.err"
	RC=$?
	check_eq "$name: exit $want (99 = valgrind found errors)" "$RC" "$want"
	if [ -s "$T/$name.vg" ]; then
		notok "$name: valgrind is silent"
		sed 's/^/#   | /' "$T/$name.vg" | head -30
	else
		ok "$name: valgrind is silent"
	fi
}

srv implicit "${TLSOPT[@]}" -T -n 2 -e "$CAPS"
conf implicit "tls_starttls off" "auth PLAIN"
vg "implicit TLS, PLAIN, CHUNKING" 0 bob@example.org
vg "resumed session, -t, DSN" 0 -t -N success,failure -V envid1
check_grep "resumed session: the ticket was used" '^TLS-RESUMED' "$TR"

srv starttls "${TLSOPT[@]}" -n 1 -e "STARTTLS,$CAPS" -E "$CAPS"
conf starttls "auth SCRAM-SHA-256" "tls_session_cache off"
vg "STARTTLS, SCRAM-SHA-256, -v" 0 -v bob@example.org
check_grep "STARTTLS: SCRAM-SHA-256 used" '^AUTHOK SCRAM-SHA-256' "$TR"

srv wrongpw "${TLSOPT[@]}" -T -n 1 -e "$CAPS"
conf wrongpw "tls_starttls off" "auth LOGIN" "queue off" \
    "tls_session_cache off"
sed -i "s/^password .*/password wrong-password/" "$CONF"
vg "refused password" 77 bob@example.org

printf 'rcpt reply 550 5.1.1 no such user\n' >"$T/r550.script"
srv r550 "${TLSOPT[@]}" -T -n 1 -e "$CAPS" -s "$T/r550.script"
conf r550 "tls_starttls off" "tls_session_cache off"
vg "recipient refused, dead.letter" 65 bob@example.org
check_grep "recipient refused: kept in dead.letter" '^Subject: valgrind' \
    "$T/dead.letter"

PORT=$(free_port)
conf down "tls_starttls off" "tls_session_cache off" "timeout 2"
vg "relay down, queued" 0 bob@example.org
srv up "${TLSOPT[@]}" -T -n 1 -e "$CAPS"
conf up "tls_starttls off" "tls_session_cache off"
vg "queue run" 0 -q
check "queue run: delivered" test -e "$MAIL/1.eml"

printf 'postmaster: root\nroot: bob@example.org, carol@example.org\n' \
    >"$T/aliases"
conf pretend "aliases $T/aliases" "maildomain example.org"
vg "--pretend with aliases" 0 --pretend postmaster
# A message --pretend cannot take (no recipients): its error is all set,
# nothing of it read uninitialized ("the relay said: <garbage>").
vg "--pretend, no recipients" 64 --pretend
check_nogrep "--pretend, no recipients: no relay reply invented" \
    'the relay said' "$T/--pretend, no recipients.err"
# A partial delivery and a recipient limit, through the per-recipient
# states, the status file and mailq.
printf 'rcpt#2 reply 450 4.2.0 busy\n' >"$T/r450.script"
srv partial "${TLSOPT[@]}" -T -n 1 -e "$CAPS" -L 1 -s "$T/r450.script"
conf partial "tls_starttls off" "tls_session_cache off"
vg "452 limit and a 450: partial, kept" 0 a@example.org b@example.org \
    c@example.org
vg "mailq with recipient states" 0 -bp
wait "$SRV" 2>/dev/null
PORT=$(free_port)
conf nobody "tls_starttls off" "tls_session_cache off"
vg "bad option" 64 --no-such-option
vg "--serverinfo, nobody listening" 75 --serverinfo

# The unit tests, when built (make check builds them).
for u in "$TOP"/build/unit_*; do
	[ -x "$u" ] || continue
	n=$(basename "$u")
	"${VG[@]}" --log-file="$T/$n.vg" "$u" >"$T/$n.out" 2>&1
	rc=$?
	check_eq "$n under valgrind: exit 0" "$rc" 0
	check "$n under valgrind: silent" test ! -s "$T/$n.vg"
done

#!/bin/bash
# SPDX-License-Identifier: ISC
# Faults at each step of the session against the scripted test relay:
# the exit code, the message, and that nothing was said that should not
# have been (from the relay's transcript).
ASAN_TOO=1
. tests/lib.sh

CAPS="AUTH PLAIN,PIPELINING,8BITMIME,ENHANCEDSTATUSCODES"

srv() { testsrv "$@"; }
conf() {
	local n=$1
	shift
	smarthost_conf "$T/$n.conf" "timeout 1" "queue off" "$@"
}

send() {
	name=$1; shift
	printf 'Subject: fault test\n\nbody\n' |
	    "$SMARTHOST" -C "$CONF" "$@" bob@example.org \
	    >"$T/$name.out" 2>"$T/$name.err"
	RC=$?
}

# nothing_after_clear NAME: no AUTH, MAIL, RCPT or data in the transcript.
nothing_sent() {
	check_nogrep "$1: no AUTH, MAIL or RCPT crossed" \
	    '^C [0-9]* \(AUTH\|MAIL\|RCPT\|DATA\|BDAT\)' "$TR"
	check "$1: no message stored" test ! -e "$MAIL/1.eml"
}

# fault NAME WANT_RC PATTERN SCRIPT-LINE [more testsrv options]
fault() {
	name=$1 want=$2 pat=$3 rule=$4; shift 4
	printf '%s\n' "$rule" >"$T/$name.script"
	srv "$name" -T -c "$CERTS/server.pem" -k "$CERTS/server.key" \
	    -e "$CAPS" -s "$T/$name.script" "$@"
	conf "$name" "tls_starttls off"
	send "$name"
	wait
	check_eq "$name: exit $want" "$RC" "$want"
	check_grep "$name: message says why" "$pat" "$T/$name.err"
}

fault greeting-421 75 'did not greet with 220' 'greeting reply 421 4.3.2 busy'
fault greeting-554 76 'did not greet with 220' 'greeting reply 554 go away'
fault greeting-garbage 76 'not an SMTP reply' 'greeting reply hello there'
fault greeting-close 75 'closed the connection' 'greeting close'
fault ehlo-garbage 76 'not an SMTP reply' 'ehlo reply 250-x\r\nfoo'
fault ehlo-mixed 76 'mixed codes' 'ehlo reply 250-x\r\n550 y'
fault auth-454 75 'refused authentication' 'auth reply 454 4.7.0 try later'
fault auth-535 77 'refused authentication' 'auth reply 535 5.7.8 bad credentials'
fault mail-451 75 'refused the sender' 'mail reply 451 4.7.1 greylisted'
fault mail-553 65 'refused the sender' 'mail reply 553 5.7.1 not yours'
fault rcpt-550 65 'refused the recipient <bob@example.org>' \
    'rcpt reply 550 5.1.1 no such user'
fault rcpt-450 75 'refused the recipient' 'rcpt reply 450 4.2.0 later'
fault data-554 65 'refused DATA' 'data reply 554 5.5.1 no'
fault data-end-552 65 'refused the message' 'data-end reply 552 5.3.4 too big'
fault data-end-451 75 'refused the message' 'data-end reply 451 4.3.0 later'
fault data-end-close 75 'closed the connection' 'data-end close'
fault data-drop 75 'closed the connection\|writing to the relay\|reading from the relay' \
    'data-body drop 3'
fault mail-timeout 75 'no answer from the relay' 'mail delay 6000'
fault big-reply 76 'longer than\|more than 128 lines' 'ehlo big 100000'
fault many-lines 76 'more than 128 lines' 'ehlo lines 500'
check_grep "rcpt-550: the reply is quoted" 'the relay said: 550 5.1.1' \
    "$T/rcpt-550.err"

# A refused recipient never leaves the others with a copy.
printf 'rcpt#2 reply 550 5.1.1 no\n' >"$T/partial.script"
srv partial -T -c "$CERTS/server.pem" -k "$CERTS/server.key" -e "$CAPS" \
    -s "$T/partial.script"
conf partial "tls_starttls off"
printf 'Subject: x\n\nbody\n' | "$SMARTHOST" -C "$CONF" a@example.org \
    b@example.org >/dev/null 2>&1
RC=$?
wait
check_eq "partial RCPT failure: exit 65" "$RC" 65
check "partial RCPT failure: nothing delivered" test ! -e "$MAIL/1.eml"

# Connection refused: nobody listens.
PORT=$(free_port)
conf refused "tls_starttls off"
send refused
check_eq "connection refused: exit 75" "$RC" 75
check_grep "connection refused: says so" 'cannot connect to 127.0.0.1' \
    "$T/refused.err"

# STARTTLS: not offered, refused, injected; nothing in clear after EHLO.
srv nostarttls -c "$CERTS/server.pem" -k "$CERTS/server.key" \
    -e "AUTH PLAIN,PIPELINING"
conf nostarttls
send nostarttls
wait
check_eq "STARTTLS missing: exit 76" "$RC" 76
check_grep "STARTTLS missing: says so" 'does not offer STARTTLS' \
    "$T/nostarttls.err"
nothing_sent "STARTTLS missing"

for code in 454 502 554; do
	printf 'starttls reply %s no TLS today\n' "$code" >"$T/st$code.script"
	srv "st$code" -c "$CERTS/server.pem" -k "$CERTS/server.key" \
	    -e "STARTTLS,AUTH PLAIN,PIPELINING" -s "$T/st$code.script"
	conf "st$code"
	send "st$code"
	wait
	check_eq "STARTTLS answered $code: exit 76" "$RC" 76
	nothing_sent "STARTTLS answered $code"
done

printf 'starttls inject 250-evil\\r\\n250 AUTH PLAIN\\r\\n\n' \
    >"$T/inject.script"
srv inject -c "$CERTS/server.pem" -k "$CERTS/server.key" \
    -e "STARTTLS,AUTH PLAIN,PIPELINING" -s "$T/inject.script"
conf inject
send inject
wait
check_eq "STARTTLS response injection: exit 76" "$RC" 76
check_grep "STARTTLS response injection: named" 'response injection' \
    "$T/inject.err"
check_nogrep "STARTTLS response injection: no handshake" '^TLS ' "$TR"
nothing_sent "STARTTLS response injection"

# Certificates: wrong name, unknown issuer, expired; a pin.
cert() {	# NAME CERT WANT_RC PATTERN [conf lines]
	name=$1 c=$2 want=$3 pat=$4; shift 4
	srv "$name" -T -c "$CERTS/$c.pem" -k "$CERTS/$c.key" -e "$CAPS"
	conf "$name" "tls_starttls off" "$@"
	send "$name"
	wait
	check_eq "$name: exit $want" "$RC" "$want"
	if [ "$want" -eq 0 ]; then
		check "$name: nothing on stderr" test ! -s "$T/$name.err"
	else
		check_grep "$name: message says why" "$pat" "$T/$name.err"
		nothing_sent "$name"
	fi
}
cert wrong-name wrongname 78 'is for wrong.example, \*.wrong.example, not for 127.0.0.1'
cert unknown-issuer untrusted 78 "issued by 'O=smarthost tests, CN=unknown test CA'"
cert expired expired 78 'expired on 2021-01-01'
cert pinned untrusted 0 '' "tls_fingerprint $(cat "$CERTS/untrusted.sha256")"
cert pin-mismatch server 78 'does not match tls_fingerprint' \
    "tls_fingerprint $(cat "$CERTS/untrusted.sha256")"
cert system-store server 78 'not trusted by the system CA store' \
    "tls_trust_file system"

# tls_min_version 1.3 against a relay that stops at 1.2.
srv downgrade -T -c "$CERTS/server.pem" -k "$CERTS/server.key" -e "$CAPS" \
    -M 1.2
conf downgrade "tls_starttls off" "tls_min_version 1.3"
send downgrade
wait
check_eq "TLS 1.2-only relay with tls_min_version 1.3: exit 76" "$RC" 76
nothing_sent "TLS 1.2-only relay with tls_min_version 1.3"

# Authentication is never attempted in clear.
srv clear -e "AUTH PLAIN,PIPELINING"
conf clear "tls off"
send clear
wait
check_eq "AUTH over plaintext: exit 78" "$RC" 78
check_grep "AUTH over plaintext: says so" 'unencrypted connection' \
    "$T/clear.err"
nothing_sent "AUTH over plaintext"

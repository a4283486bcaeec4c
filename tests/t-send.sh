#!/bin/bash
# SPDX-License-Identifier: ISC
# The send path against the scripted test relay (build/testsrv): TLS
# modes, every mechanism, the one-flight transaction, faults at each step
# and their exit codes, and what crossed the wire.
ASAN_TOO=1
. tests/lib.sh

ALLCAPS="AUTH PLAIN LOGIN CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-256-PLUS,PIPELINING,CHUNKING,SIZE 10000000,8BITMIME,ENHANCEDSTATUSCODES,DSN,SMTPUTF8"

srv() { testsrv "$@"; }
conf() { local n=$1; shift; smarthost_conf "$T/$n.conf" "$@"; }

MSG="From: Alice <$USER>
To: bob@example.org
Subject: test
Date: Fri, 27 Nov 2026 10:00:00 +0000
Message-ID: <t1@example.test>

line one
.leading dot
..two dots
.
last line"

# send NAME [smarthost options]: send $MSG, remember the exit code.
send() {
	name=$1; shift
	printf '%s\n' "$MSG" | "$SMARTHOST" -C "$CONF" -i "$@" \
	    >"$T/$name.out" 2>"$T/$name.err"
	RC=$?
}

# The message as the relay must store it: CRLF, stuffing undone.
printf '%s\n' "$MSG" | sed 's/$/\r/' >"$T/expected.eml"

# waits: client flights after the TLS handshake, QUIT not counted.
flights() {
	awk '/^TLS /{tls=1} tls && /^C / && $3 != "QUIT" {f[$2]=1}
	    END{n=0; for (k in f) n++; print n}' "$1"
}

# 1. Implicit TLS, AUTH PLAIN, PIPELINING + CHUNKING: one flight.
srv implicit -T -c "$CERTS/server.pem" -k "$CERTS/server.key" \
    -e "AUTH PLAIN LOGIN,PIPELINING,CHUNKING,SIZE 10000000,8BITMIME,ENHANCEDSTATUSCODES"
conf implicit "tls_starttls off"
send implicit -- bob@example.org
wait
check_eq "implicit TLS: exit 0" "$RC" 0
check "implicit TLS: message stored byte for byte" \
    cmp -s "$MAIL/1.eml" "$T/expected.eml"
check_grep "implicit TLS: TLS 1.3 negotiated" '^TLS TLSv1.3' "$TR"
check_grep "implicit TLS: AUTH PLAIN with initial response" \
    '^C [0-9]* AUTH PLAIN [A-Za-z0-9+/=]' "$TR"
check_grep "implicit TLS: BDAT LAST" '^C [0-9]* BDAT [0-9]* LAST' "$TR"
f_auth=$(awk '$3 == "AUTH" {print $2}' "$TR")
f_mail=$(awk '$3 == "MAIL" {print $2}' "$TR")
f_bdat=$(awk '$3 == "BDAT" {print $2}' "$TR")
f_rcpt=$(awk '$3 == "RCPT" {print $2}' "$TR")
check_eq "implicit TLS: AUTH, MAIL, RCPT, BDAT in one flight (RFC 4954 4)" \
    "$f_auth $f_mail $f_rcpt $f_bdat" "$f_auth $f_auth $f_auth $f_auth"
# handshake + greeting + EHLO + (AUTH and the transaction) = 4 waits
check_eq "implicit TLS: 2 client flights after TLS (4 waits in all)" \
    "$(flights "$TR")" 2
check_grep "implicit TLS: QUIT sent" '^C [0-9]* QUIT' "$TR"

# 2. STARTTLS: EHLO, STARTTLS, EHLO, AUTH, transaction.
srv starttls -c "$CERTS/server.pem" -k "$CERTS/server.key" \
    -e "STARTTLS,AUTH PLAIN,PIPELINING,CHUNKING,8BITMIME"
conf starttls
send starttls bob@example.org
wait
check_eq "STARTTLS: exit 0" "$RC" 0
check "STARTTLS: message stored byte for byte" \
    cmp -s "$MAIL/1.eml" "$T/expected.eml"
pre=$(awk '/^TLS /{exit} /^C /{print $3}' "$TR" | tr '\n' ' ')
check_eq "STARTTLS: only EHLO and STARTTLS in clear" "$pre" "EHLO STARTTLS "
# greeting, EHLO, STARTTLS, handshake, EHLO, AUTH and the transaction
check_eq "STARTTLS: 2 client flights after TLS (6 waits in all)" \
    "$(flights "$TR")" 2

# 3. DATA without CHUNKING: MAIL+RCPT+DATA in one flight, dots stuffed.
srv data -T -c "$CERTS/server.pem" -k "$CERTS/server.key" \
    -e "AUTH PLAIN,PIPELINING,8BITMIME"
conf data "tls_starttls off"
send data bob@example.org carol@example.org
wait
check_eq "DATA: exit 0" "$RC" 0
f=$(awk '$3 == "AUTH" || $3 == "MAIL" || $3 == "RCPT" || $3 == "DATA" {
    print $2}' "$TR" | sort -u | wc -l)
check_eq "DATA: AUTH, MAIL, both RCPTs and DATA in one flight" "$f" 1
check "DATA: message stored byte for byte" \
    cmp -s "$MAIL/1.eml" "$T/expected.eml"
check_grep "DATA: a leading dot is doubled on the wire" \
    '^\.\.leading dot' "$MAIL/1.raw"
check_grep "DATA: two dots become three" '^\.\.\.two dots' "$MAIL/1.raw"
check_grep "DATA: both recipients in the envelope" 'carol@example.org' \
    "$MAIL/1.env"

# 3b. DATA with 1.4 MB of lines that are or start with dots, so that
# reads of the spool begin on such lines and inside them: each line that
# starts with a dot gets exactly one more, no other dot is touched.
srv dots -T -c "$CERTS/server.pem" -k "$CERTS/server.key" \
    -e "AUTH PLAIN,PIPELINING,8BITMIME"
conf dots "tls_starttls off"
{
	printf '%s\n' "$MSG" | sed '/^$/q'
	awk 'BEGIN { for (i = 0; i < 200000; i++)
		print (int(i / 2000) % 2 ? "a........" : ".") }'
} >"$T/dots.msg"
"$SMARTHOST" -C "$CONF" -i bob@example.org <"$T/dots.msg" >/dev/null 2>&1
RC=$?
wait
check_eq "DATA, 1.4 MB of dots: exit 0" "$RC" 0
sed 's/$/\r/' "$T/dots.msg" >"$T/dots.eml"
check "DATA, 1.4 MB of dots: stored byte for byte" \
    cmp -s "$MAIL/1.eml" "$T/dots.eml"
{ sed 's/^\./../' "$T/dots.eml"; printf '.\r\n'; } >"$T/dots.raw"
check "DATA, 1.4 MB of dots: each leading dot doubled on the wire" \
    cmp -s "$MAIL/1.raw" "$T/dots.raw"

# 4. Every SASL mechanism the test relay checks.
for mech in LOGIN CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256 \
    SCRAM-SHA-256-PLUS; do
	srv "m$mech" -T -c "$CERTS/server.pem" -k "$CERTS/server.key" \
	    -e "AUTH $mech,PIPELINING,CHUNKING"
	conf "m$mech" "tls_starttls off" "auth $mech"
	send "m$mech" bob@example.org
	wait
	check_eq "AUTH $mech: exit 0" "$RC" 0
	check_grep "AUTH $mech: relay authenticated $USER" \
	    "^AUTHOK $mech $USER" "$TR"
done

# 5. auth on: inside TLS with the certificate checked (or pinned), PLAIN
# (one line, pipelined with the transaction); without that proof, the
# strongest: SCRAM-SHA-256-PLUS on TLS 1.3.
srv verified -T -c "$CERTS/server.pem" -k "$CERTS/server.key" \
    -e "$ALLCAPS"
conf verified "tls_starttls off"
send verified bob@example.org
wait
check_grep "auth on, certificate checked: PLAIN" '^AUTHOK PLAIN' "$TR"
srv pinned -T -c "$CERTS/untrusted.pem" -k "$CERTS/untrusted.key" \
    -e "$ALLCAPS"
conf pinned "tls_starttls off" \
    "tls_fingerprint $(cat "$CERTS/untrusted.sha256")"
send pinned bob@example.org
wait
check_grep "auth on, certificate pinned: PLAIN" '^AUTHOK PLAIN' "$TR"
srv strongest -T -c "$CERTS/server.pem" -k "$CERTS/server.key" \
    -e "$ALLCAPS"
conf strongest "tls_starttls off" "tls_certcheck off"
send strongest bob@example.org
wait
check_grep "auth on, tls_certcheck off: SCRAM-SHA-256-PLUS" \
    '^AUTHOK SCRAM-SHA-256-PLUS' "$TR"
check_nogrep "auth on, tls_certcheck off: no PLAIN" \
    '^C [0-9]* AUTH PLAIN' "$TR"

# 6. A wrong password: the message is kept (exit 0: it is ours now),
# the 535 quoted and the fix asked for loudly; with queue off, 77.
srv wrongpw -T -c "$CERTS/server.pem" -k "$CERTS/server.key" \
    -e "AUTH PLAIN,PIPELINING"
conf wrongpw "tls_starttls off" "queue_dir $T/queue-wrongpw"
sed -i "s/^password .*/password wrong-password/" "$CONF"
send wrongpw bob@example.org
wait
check_eq "wrong password: exit 0, kept" "$RC" 0
check_grep "wrong password: the 535 is quoted" 'the relay said: 535' \
    "$T/wrongpw.err"
check_grep "wrong password: kept, fix asked for" \
    'NOT SENT YET: the message is kept in the queue as' "$T/wrongpw.err"
check_eq "wrong password: one message in the queue" \
    "$(ls "$T/queue-wrongpw" | grep -cv status)" 1
check "wrong password: nothing stored" test ! -e "$MAIL/1.eml"
check_eq "wrong password: one connection (no retry of a refused password)" \
    "$(grep -c '^CONNECT' "$TR")" 1
check_grep "wrong password: the relay refused what rode with AUTH" \
    '^S [0-9]* 530' "$TR"
srv wrongpw2 -T -c "$CERTS/server.pem" -k "$CERTS/server.key" \
    -e "AUTH PLAIN,PIPELINING"
conf wrongpw2 "tls_starttls off" "queue off"
sed -i "s/^password .*/password wrong-password/" "$CONF"
send wrongpw2 bob@example.org
wait
check_eq "wrong password, queue off: exit 77" "$RC" 77
check_grep "wrong password, queue off: in dead.letter" \
    '^X-Smarthost-Error: .*refused authentication' "$T/dead.letter"

# 7. The -v trace never shows the password, in any form.
srv trace -T -c "$CERTS/server.pem" -k "$CERTS/server.key" \
    -e "AUTH PLAIN,PIPELINING"
conf trace "tls_starttls off"
send trace -v bob@example.org
wait
b64=$(printf '\0%s\0%s' "$USER" "$PASS" | base64 -w0)
check_eq "trace: exit 0" "$RC" 0
check_grep "trace: shows the dialogue" '^-> MAIL FROM:' "$T/trace.err"
check_grep "trace: AUTH redacted" '^-> AUTH PLAIN <redacted>' "$T/trace.err"
check_nogrep "trace: no password" "$PASS" "$T/trace.err"
check_nogrep "trace: no base64 credentials" "$b64" "$T/trace.err"

# 8. Coalescing: a 1 MB message leaves in full TLS records, not one per
# line (msmtp writes ~14000 records for it).  The relay counts the TLS
# records it read for the message (one per read over TLS).
srv coalesce -T -c "$CERTS/server.pem" -k "$CERTS/server.key" \
    -e "AUTH PLAIN,PIPELINING,CHUNKING,8BITMIME"
conf coalesce "tls_starttls off"
{
	printf 'Subject: 1 MB\n\n'
	head -c 770000 /dev/urandom | base64 -w 76
} >"$T/1mb.msg"
"$SMARTHOST" -C "$CONF" -i bob@example.org <"$T/1mb.msg" >/dev/null 2>&1
RC=$?
wait
check_eq "1 MB message: exit 0" "$RC" 0
set -- $(awk '$1 == "DATA" {print $3, $4}' "$TR")
octets=${1:-0} records=${2:-0}
# 16369 octets fill a TLS 1.3 record once mbedTLS has padded it.
floor=$(( (octets + 16368) / 16369 ))
check "1 MB message: $records records for $octets octets (floor $floor)" \
    test "$records" -ge "$floor" -a "$records" -le $((floor + 1))

# 9. -bs: SMTP on standard input and output, each message relayed.
srv bs -T -c "$CERTS/server.pem" -k "$CERTS/server.key" \
    -e "AUTH PLAIN,PIPELINING,CHUNKING,8BITMIME"
conf bs "tls_starttls off"
printf 'EHLO php\r\nMAIL FROM:<%s>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: via -bs\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n' \
    "$USER" | "$SMARTHOST" -C "$CONF" -bs >"$T/bs.out" 2>"$T/bs.err"
RC=$?
wait
check_eq "-bs: exit 0" "$RC" 0
check_eq "-bs: the dialogue" "$(tr -d '\r' <"$T/bs.out" | cut -c1-3 | tr '\n' ' ')" \
    "220 250 250 250 250 354 250 221 "
check_grep "-bs: the relay got the message" '^Subject: via -bs' \
    "$MAIL/1.eml"
check_grep "-bs: dot-stuffing undone once" '^\.dot' "$MAIL/1.eml"
check_grep "-bs: the envelope recipient" 'rcpt <bob@example.org>' \
    "$MAIL/1.env"

# 9. A message over 64 KiB does not go before the AUTH reply: AUTH, then
# the transaction.
srv bigauth -T -c "$CERTS/server.pem" -k "$CERTS/server.key" \
    -e "AUTH PLAIN,PIPELINING,CHUNKING"
conf bigauth "tls_starttls off"
{ printf 'Subject: big\n\n'; head -c 100000 /dev/zero | tr '\0' x |
    fold -w 70; } | "$SMARTHOST" -C "$CONF" bob@example.org \
    >"$T/bigauth.out" 2>&1
RC=$?
wait
check_eq "over 64 KiB: exit 0" "$RC" 0
f_auth=$(awk '$3 == "AUTH" {print $2}' "$TR")
f_mail=$(awk '$3 == "MAIL" {print $2}' "$TR")
check "over 64 KiB: AUTH in a flight before MAIL's" test "$f_auth" -lt "$f_mail"

# 10. XOAUTH2 with a token the relay refuses: its 334 takes our MAIL line
# as the answer; nothing is delivered, and nothing goes astray.
SRVUSER=$USER:the-right-token srv xoauth -T -c "$CERTS/server.pem" \
    -k "$CERTS/server.key" -e "AUTH XOAUTH2,PIPELINING,CHUNKING"
conf xoauth "tls_starttls off" "auth xoauth2" "queue_dir $T/queue-xoauth"
send xoauth bob@example.org
wait
check_eq "XOAUTH2 refused: kept (exit 0)" "$RC" 0
check_grep "XOAUTH2 refused: says so" 'refused authentication' \
    "$T/xoauth.err"
check "XOAUTH2 refused: nothing stored" test ! -e "$MAIL/1.eml"
check_eq "XOAUTH2 refused: kept in the queue" \
    "$(ls "$T/queue-xoauth" | grep -cv status)" 1

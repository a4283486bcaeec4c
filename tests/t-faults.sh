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

# where NAME: "queue", "dead" or "none": where the message is now.
where() {
	local q d
	q=$(ls "$T/$1.q" 2>/dev/null | grep -cv '\.status$')
	d=$(grep -c '^From ' "$T/$1.dead" 2>/dev/null)
	if [ "${q:-0}" -gt 0 ] && [ "${d:-0}" -eq 0 ]; then echo queue
	elif [ "${d:-0}" -gt 0 ] && [ "${q:-0}" -eq 0 ]; then echo dead
	elif [ "${q:-0}" -eq 0 ] && [ "${d:-0}" -eq 0 ]; then echo none
	else echo "both"; fi
}

# fault NAME RC PATTERN SCRIPT-LINE [more testsrv options]: with queue
# off, msmtp's exit code RC and the message in dead.letter.
fault() {
	name=$1 want=$2 pat=$3 rule=$4; shift 4
	printf '%s\n' "$rule" >"$T/$name.script"
	srv "$name" -T -c "$CERTS/server.pem" -k "$CERTS/server.key" \
	    -e "$CAPS" -s "$T/$name.script" "$@"
	conf "$name" "tls_starttls off" "queue_dir $T/$name.q" \
	    "dead_letter $T/$name.dead"
	send "$name"
	wait
	check_eq "$name: exit $want" "$RC" "$want"
	check_grep "$name: message says why" "$pat" "$T/$name.err"
	check_eq "$name: in dead.letter" "$(where "$name")" dead
}

# kept NAME RC WHERE SCRIPT-LINE: the same fault with the queue on (SPEC
# 1): exit 0 when the message is ours (kept in the queue), non-zero only
# when the caller still owns it (refused for good: dead.letter).
kept() {
	name=$1-q want=$2 loc=$3 rule=$4; shift 4
	printf '%s\n' "$rule" >"$T/$name.script"
	srv "$name" -T -c "$CERTS/server.pem" -k "$CERTS/server.key" \
	    -e "$CAPS" -s "$T/$name.script" "$@"
	smarthost_conf "$T/$name.conf" "timeout 1" "tls_starttls off" \
	    "queue_dir $T/$name.q" "dead_letter $T/$name.dead"
	send "$name"
	wait
	check_eq "$name (queue on): exit $want" "$RC" "$want"
	check_eq "$name (queue on): the message is in the $loc" \
	    "$(where "$name")" "$loc"
}

# NAME  queue off: RC PATTERN  queue on: RC WHERE  SCRIPT-LINE
while read -r name off pat on loc rule; do
	[ -n "$name" ] || continue
	fault "$name" "$off" "$pat" "$rule"
	kept "$name" "$on" "$loc" "$rule"
done <<'EOF'
greeting-421 75 did.not.greet.with.220 0 queue greeting reply 421 4.3.2 busy
greeting-554 76 did.not.greet.with.220 0 queue greeting reply 554 go away
greeting-garbage 76 not.an.SMTP.reply 0 queue greeting reply hello there
greeting-close 75 closed.the.connection 0 queue greeting close
ehlo-garbage 76 not.an.SMTP.reply 0 queue ehlo reply 250-x\r\nfoo
ehlo-mixed 76 mixed.codes 0 queue ehlo reply 250-x\r\n550 y
auth-454 75 refused.authentication 0 queue auth reply 454 4.7.0 try later
auth-535 77 refused.authentication 0 queue auth reply 535 5.7.8 bad credentials
mail-451 75 refused.the.sender 0 queue mail reply 451 4.7.1 greylisted
mail-553 65 refused.the.sender 65 dead mail reply 553 5.7.1 not yours
rcpt-550 65 refused.the.recipient.<bob@example.org> 65 dead rcpt reply 550 5.1.1 no such user
rcpt-450 75 refused.the.recipient 0 queue rcpt reply 450 4.2.0 later
data-554 65 refused.DATA 65 dead data reply 554 5.5.1 no
data-end-552 65 refused.the.message 65 dead data-end reply 552 5.3.4 too big
data-end-451 75 refused.the.message 0 queue data-end reply 451 4.3.0 later
data-end-close 75 closed.the.connection 0 queue data-end close
data-drop 75 closed.the.connection\|writing.to.the.relay\|reading.from.the.relay 0 queue data-body drop 3
mail-timeout 75 no.answer.from.the.relay 0 queue mail delay 6000
big-reply 76 longer.than\|more.than.128.lines 0 queue ehlo big 100000
many-lines 76 more.than.128.lines 0 queue ehlo lines 500
EOF
check_grep "rcpt-550: the reply is quoted" 'the relay said: 550 5.1.1' \
    "$T/rcpt-550.err"

# One recipient refused for good: the others get the message (RFC 5321
# 3.3), the refused one is named, and a copy that names it goes to
# dead.letter; exit 0 (the message is delivered where it could be).
printf 'rcpt#2 reply 550 5.1.1 no\n' >"$T/partial.script"
srv partial -T -c "$CERTS/server.pem" -k "$CERTS/server.key" -e "$CAPS" \
    -s "$T/partial.script"
conf partial "tls_starttls off"
printf 'Subject: x\n\nbody\n' | "$SMARTHOST" -C "$CONF" a@example.org \
    b@example.org c@example.org >/dev/null 2>"$T/partial.err"
RC=$?
wait
check_eq "one RCPT refused of three: exit 0" "$RC" 0
check_grep "one RCPT refused of three: the others got it" \
    'c@example.org' "$MAIL/1.env"
check_nogrep "one RCPT refused of three: not the refused one" \
    'b@example.org' "$MAIL/1.env"
check_grep "one RCPT refused of three: named on stderr" \
    'not delivered to <b@example.org>: 550 5.1.1 no' "$T/partial.err"
check_grep "one RCPT refused of three: dead.letter names it" \
    '^X-Smarthost-Not-Delivered-To: b@example.org$' "$T/dead.letter"

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

# Wrong port or TLS mode: fail fast, and say which setting to change.
# STARTTLS spoken to an implicit-TLS port 465: no greeting ever comes.
srv p465 -l 127.0.0.2 -p 465 -T -c "$CERTS/server.pem" \
    -k "$CERTS/server.key" -e "$CAPS"
conf p465 "host 127.0.0.2" "port 465"
t0=$(date +%s)
send p465
check_eq "STARTTLS to port 465: exit 78" "$RC" 78
check_grep "STARTTLS to port 465: says tls_starttls off" \
    'port 465 is implicit TLS.*set tls_starttls off' "$T/p465.err"
check "STARTTLS to port 465: within the greeting timeout" \
    test $(($(date +%s) - t0)) -lt 5
kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null
# A listener that never says anything.
printf 'greeting delay 20000\n' >"$T/silent.script"
srv silent -e "$CAPS" -s "$T/silent.script"
conf silent
t0=$(date +%s)
send silent
check_eq "a silent listener: exit 75" "$RC" 75
check_grep "a silent listener: no greeting, and what may be wrong" \
    'sent no greeting within 1 seconds.*465 is implicit TLS' "$T/silent.err"
check "a silent listener: within the greeting timeout" \
    test $(($(date +%s) - t0)) -lt 5
kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null
# Implicit TLS to a port that greets in clear (587, 25).
srv plaingreet -e "$CAPS"
conf plaingreet "tls_starttls off"
send plaingreet
wait
check_eq "implicit TLS to a STARTTLS port: exit 78" "$RC" 78
check_grep "implicit TLS to a STARTTLS port: says tls_starttls on" \
    "greets in plain text ('220 testsrv.*set tls_starttls on" \
    "$T/plaingreet.err"
printf 'greeting reply 421 4.3.2 too busy\n' >"$T/busy.script"
srv busy -e "$CAPS" -s "$T/busy.script"
conf busy "tls_starttls off"
send busy
wait
check_eq "a plain-text 421 on an implicit-TLS port: exit 75" "$RC" 75
check_grep "a plain-text 421: said as busy" "answered in plain text.*(busy)" \
    "$T/busy.err"

# A broken configuration once the message is read (SPEC 1): exit 78,
# and the whole message, byte for byte after the first line, in the
# caller's dead.letter (the configuration cannot say where).
broken() {	# NAME MODE [directive]
	local name=$1 mode=$2 h=$T/$1.home
	mkdir -p "$h"
	{
		echo "account default"
		echo "host 127.0.0.1"
		echo "from alice@example.test"
		echo "user alice"
		echo "password not-a-real-secret"
		[ -n "${3:-}" ] && echo "$3"
	} >"$h/conf"
	chmod "$mode" "$h/conf"
	{ printf 'To: bob@example.org\nSubject: broken %s\n\n' "$name"
	  seq 1 30000; printf 'no newline at the end'; } >"$T/$name.msg"
	HOME=$h "$SMARTHOST" -C "$h/conf" -t -i <"$T/$name.msg" \
	    >"$T/$name.out" 2>"$T/$name.err"
	RC=$?
	check_eq "broken config ($name): exit 78" "$RC" 78
	check_grep "broken config ($name): says where the message went" \
	    "appended to $h/dead.letter" "$T/$name.err"
	# dead.letter: the mbox From line, the X-Smarthost-Error, then the
	# message as it came (and a line end at its end).
	check "broken config ($name): the whole message in dead.letter" \
	    cmp -s <(sed '1,2d' "$h/dead.letter" | sed '$d') \
	    <(cat "$T/$name.msg"; echo)
}
broken unknown 600 "frobnicate yes"
check_grep "broken config (unknown): names the directive" \
    "unknown directive 'frobnicate'" "$T/unknown.err"
broken perm644 644
check_grep "broken config (perm644): names chmod" "chmod 600" \
    "$T/perm644.err"

# A header block too large to take: exit 65, and the whole message in
# dead.letter (it was lost, with the rest of the input unread).
smarthost_conf "$T/bighdr.conf" "queue off" "notify off"
{ printf 'Subject: huge\nX-Long: '; head -c 2200000 /dev/zero | tr '\0' '~'
  printf '\n\nfirst body line\nEND-OF-MESSAGE\n'; } >"$T/bighdr.msg"
{ printf 'Subject: many\n'; for i in $(seq 20000); do echo "X-F: $i"; done
  printf '\nfirst body line\nEND-OF-MESSAGE\n'; } >"$T/manyhdr.msg"
for name in bighdr manyhdr; do
	rm -f "$T/dead.letter"
	"$SMARTHOST" -C "$CONF" bob@example.org <"$T/$name.msg" \
	    >"$T/$name.out" 2>"$T/$name.err"
	check_eq "header block too large ($name): exit 65" "$?" 65
	check_grep "header block too large ($name): kept in dead.letter" \
	    "appended to $T/dead.letter" "$T/$name.err"
	check_grep "header block too large ($name): its last line too" \
	    '^END-OF-MESSAGE$' "$T/dead.letter"
	cp "$T/dead.letter" "$T/$name.dead"
done
check_eq "more than 10000 header fields: every field in dead.letter" \
    "$(grep -c '^X-F: ' "$T/manyhdr.dead")" 20000
check_eq "a 2 MB header line: every octet of it in dead.letter" \
    "$(tr -cd '~' <"$T/bighdr.dead" | wc -c)" 2200000

# Files that are FIFOs nobody writes to: a clear error at once, no hang
# (each run is killed after 20 s; a hang shows as exit 124).
mkfifo -m 600 "$T/fifo"
fifo_case() {	# NAME TEXT CONF [ENV...]
	local name=$1 text=$2 conf=$3
	shift 3
	env "$@" timeout 20 "$SMARTHOST" -C "$conf" --serverinfo \
	    >"$T/fifo-$name.out" 2>&1 </dev/null
	check_eq "a FIFO as $name: exit 78, no hang" "$?" 78
	check_grep "a FIFO as $name: says why" "$text" "$T/fifo-$name.out"
}
fifo_case "the configuration file" "fifo is not a regular file" "$T/fifo"
smarthost_conf "$T/fifo-pw.conf"
sed -i '/^password /d' "$CONF"
fifo_case "SMARTHOST_PASSWORD_FILE" "fifo holds no password" "$CONF" \
    SMARTHOST_PASSWORD_FILE="$T/fifo"
testsrv fifo-srv -T -c "$CERTS/server.pem" -k "$CERTS/server.key" \
    -e "AUTH PLAIN"
smarthost_conf "$T/fifo-cert.conf" "tls_starttls off" \
    "tls_cert_file $T/fifo" "tls_key_file $T/fifo"
fifo_case "tls_cert_file" "fifo: not a regular file" "$CONF"
kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null
smarthost_conf "$T/fifo-oauth.conf" "auth xoauth2" \
    "oauth_grant authorization_code" "oauth_client_id test-client" \
    "oauth_token_endpoint https://127.0.0.1:9/token" \
    "oauth_token_store $T/fifo"
sed -i '/^password /d' "$CONF"
fifo_case "the OAuth2 token store" "fifo is not a regular file" "$CONF"

#!/bin/bash
# SPDX-License-Identifier: ISC
# Delivery through a real Postfix relay on loopback (tests/postfix-relay):
# STARTTLS on the submission port and implicit TLS, every mechanism the
# relay offers, TLS 1.3, and the message arriving byte for byte.
. tests/lib.sh

if [ "$(id -u)" -ne 0 ]; then
	skip "the Postfix test relay # needs root to start Postfix"; exit 0
fi
if ! tests/postfix-relay start >"$T/relay-start.log" 2>&1; then
	notok "the Postfix test relay starts"
	sed 's/^/#   | /' "$T/relay-start.log"
	exit 1
fi
eval "$(tests/postfix-relay env)"

conf() {	# FILE PORT STARTTLS [lines...]
	f=$1 port=$2 st=$3; shift 3
	{
		echo "account default"
		echo "host $RELAY_HOST"
		echo "port $port"
		echo "tls_starttls $st"
		echo "tls_trust_file $RELAY_CA"
		echo "user $RELAY_USER"
		echo "password $RELAY_PASS"
		echo "from $RELAY_USER"
		echo "tls_session_cache off"
		echo "queue_dir $T/queue"
		echo "dead_letter $T/dead.letter"
		for l in "$@"; do echo "$l"; done
	} >"$f"
	chmod 600 "$f"
}

# sink_wait TAG: the sink file holding the X-Test-Id TAG, within 30 s,
# once Postfix has logged it as sent (so the sink has all of it).
sink_wait() {
	local f qid
	for _ in $(seq 300); do
		f=$(grep -l "^X-Test-Id: $1\$" "$RELAY_SINK"/* 2>/dev/null |
		    head -1)
		if [ -n "$f" ]; then
			qid=$(sed -n 's/.* with ESMTPSA id \([0-9A-Za-z]*\)$/\1/p' \
			    "$f" | head -1)
			if [ -n "$qid" ] &&
			    grep -q "$qid: to=.*status=sent" "$RELAY_LOG"; then
				echo "$f"
				return 0
			fi
		fi
		sleep 0.1
	done
	return 1
}

# body_of FILE: what the client sent, from our first header to the end,
# without the sink's final empty line.
body_of() {
	sed -n '/^X-Test-Id: /,$p' "$1" | sed '$d'
}

n=0
# deliver NAME PORT STARTTLS [conf lines]: send a small message with a
# leading-dot line and 8-bit text, then compare what the sink holds.
deliver() {
	name=$1 port=$2 st=$3; shift 3
	n=$((n + 1))
	tag="t$$-$n"
	conf "$T/$n.conf" "$port" "$st" "$@"
	printf 'X-Test-Id: %s\nSubject: relay test\nTo: bob@example.org\n\nline\n.dot line\n..two\ncaf\303\251 cr\303\250me\n' \
	    "$tag" >"$T/$n.msg"
	"$SMARTHOST" -C "$T/$n.conf" -i bob@example.org <"$T/$n.msg" \
	    >"$T/$n.out" 2>"$T/$n.err"
	rc=$?
	check_eq "$name: exit 0" "$rc" 0
	[ "$rc" -eq 0 ] || sed 's/^/#   | /' "$T/$n.err"
	if f=$(sink_wait "$tag"); then
		ok "$name: arrived in the sink"
		body_of "$f" >"$T/$n.got"
		# Our headers (From, Date, Message-ID added) then the message.
		sed -n '/^X-Test-Id/,$p' "$T/$n.msg" >"$T/$n.want"
		check "$name: the message arrived unchanged" \
		    diff <(grep -v '^\(From\|Date\|Message-ID\): ' "$T/$n.got") \
		    "$T/$n.want"
		check_grep "$name: envelope sender" \
		    "^X-Mail-Args: <$RELAY_USER>" "$f"
		check_grep "$name: envelope recipient" \
		    '^X-Rcpt-Args: <bob@example.org>' "$f"
		check_grep "$name: sent as 8BITMIME" 'BODY=8BITMIME' "$f"
	else
		notok "$name: arrived in the sink"
	fi
}

deliver "STARTTLS 587 PLAIN (auth on)" "$RELAY_SUBMISSION" on
deliver "implicit TLS 465 PLAIN (auth on)" "$RELAY_SMTPS" off
for mech in PLAIN LOGIN CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256; do
	deliver "STARTTLS $mech" "$RELAY_SUBMISSION" on "auth $mech"
	deliver "implicit TLS $mech" "$RELAY_SMTPS" off "auth $mech"
done
check_grep "TLS 1.3 negotiated with the relay" 'TLSv1.3 with cipher' \
    "$RELAY_LOG"

# The relay enforces the sender like GMX: smarthost reports its 553.
conf "$T/other.conf" "$RELAY_SMTPS" off
printf 'Subject: x\n\nx\n' | "$SMARTHOST" -C "$T/other.conf" \
    -f "$RELAY_USER2" --allow-from-override=on bob@example.org \
    >/dev/null 2>"$T/other.err"
rc=$?
check_eq "a sender the login may not use: exit 65" "$rc" 65
check_grep "a sender the login may not use: 553 quoted" \
    'the relay said: 553 5.7.1' "$T/other.err"

# A wrong password: kept in the queue (exit 0, said loudly), the 535
# quoted; with queue off, 77.
conf "$T/wrong.conf" "$RELAY_SMTPS" off "queue_dir $T/queue-wrong"
sed -i 's/^password .*/password not-the-password/' "$T/wrong.conf"
printf 'Subject: x\n\nx\n' | "$SMARTHOST" -C "$T/wrong.conf" \
    bob@example.org >/dev/null 2>"$T/wrong.err"
check_eq "wrong password at the real relay: kept, exit 0" "$?" 0
check_grep "wrong password at the real relay: the fix is asked for" \
    'NOT SENT YET' "$T/wrong.err"
printf 'Subject: x\n\nx\n' | "$SMARTHOST" -C "$T/wrong.conf" --queue=off \
    bob@example.org >/dev/null 2>"$T/wrong2.err"
check_eq "wrong password at the real relay, queue off: exit 77" "$?" 77
check_grep "wrong password at the real relay: 535 quoted" \
    'the relay said: 535' "$T/wrong.err"

# A 20 MB message arrives intact.
tag="big-$$"
conf "$T/big.conf" "$RELAY_SMTPS" off
{
	printf 'X-Test-Id: %s\nSubject: big\n\n' "$tag"
	head -c 15000000 /dev/urandom | base64 -w 76
} >"$T/big.msg"
"$SMARTHOST" -C "$T/big.conf" -i bob@example.org <"$T/big.msg" \
    >/dev/null 2>"$T/big.err"
rc=$?
check_eq "20 MB message: exit 0" "$rc" 0
if f=$(sink_wait "$tag"); then
	body_of "$f" | grep -v '^\(From\|Date\|Message-ID\): ' >"$T/big.got"
	check "20 MB message: arrived intact" cmp -s "$T/big.got" "$T/big.msg"
else
	notok "20 MB message: arrived in the sink"
fi

# The queue against the real relay: relay unreachable, queued; then -q
# with the relay up delivers it once.
tag="queued-$$"
conf "$T/q.conf" "$RELAY_SMTPS" off
printf 'X-Test-Id: %s\nSubject: queued\n\nwaited\n' "$tag" |
    "$SMARTHOST" -C "$T/q.conf" --port="$(free_port)" -i bob@example.org \
    >/dev/null 2>"$T/q.err"
check_eq "relay unreachable: exit 0" "$?" 0
check_grep "relay unreachable: queued" 'queued as ' "$T/q.err"
"$SMARTHOST" -C "$T/q.conf" -q >"$T/q2.out" 2>&1
check_eq "-q with the relay up: exit 0" "$?" 0
if f=$(sink_wait "$tag"); then
	ok "-q with the relay up: delivered"
	check_eq "-q with the relay up: exactly once" \
	    "$(grep -l "^X-Test-Id: $tag\$" "$RELAY_SINK"/* | wc -l)" 1
else
	notok "-q with the relay up: delivered"
fi
check_eq "-q with the relay up: queue empty" \
    "$(ls "$T/queue" | grep -vc '\.status$')" 0

# A container: the environment alone, no configuration file anywhere.
tag="env-$$"
printf 'X-Test-Id: %s\nSubject: env\n\nfrom a container\n' "$tag" |
    (cd "$T" && env -i PATH="$PATH" HOME="$T/empty-home" \
    SMARTHOST_SYSCONF=/nonexistent \
    SMARTHOST_RELAY="smtps://${RELAY_USER/@/%40}@$RELAY_HOST:$RELAY_SMTPS" \
    SMARTHOST_PASSWORD="$RELAY_PASS" SMARTHOST_FROM="$RELAY_USER" \
    SMARTHOST_TLS_TRUST_FILE="$RELAY_CA" SMARTHOST_QUEUE_DIR="$T/envq" \
    "$SMARTHOST" -i bob@example.org) >"$T/env.out" 2>&1
check_eq "environment only: exit 0" "$?" 0
if f=$(sink_wait "$tag"); then
	ok "environment only: delivered through the real relay"
	check_grep "environment only: the sender from SMARTHOST_FROM" \
	    "^X-Mail-Args: <$RELAY_USER>" "$f"
else
	notok "environment only: delivered through the real relay"
fi

# relay_settle LOG: up to 30 s until every message the smarthost LOG
# says the relay queued has gone on to the sink (status=sent in the
# relay's log), so a count of sink files is final.
relay_settle() {
	local ids id left
	ids=$(grep -o 'queued as [0-9A-Za-z]*' "$1" | cut -d' ' -f3)
	[ -n "$ids" ] || return 1
	for _ in $(seq 300); do
		left=
		for id in $ids; do
			grep -q "$id: to=.*status=sent" "$RELAY_LOG" || left=1
		done
		[ -z "$left" ] && return 0
		sleep 0.1
	done
	return 1
}
# tagged TAG [PATTERN]: the sink files holding TAG (and PATTERN).
tagged() {
	grep -l "^X-Test-Id: $1\$" "$RELAY_SINK"/* 2>/dev/null |
	    xargs -r grep -l -e "${2:-.}"
}
is_notice='^Content-Type: message/delivery-status'

# --- A relay with a recipient limit (issue 12): Postfix answers 452 to a
# third recipient; each of five is served once, over three transactions.
tag="limit-$$"
conf "$T/limit.conf" "$RELAY_LIMITED" off "logfile $T/limit.log"
printf 'X-Test-Id: %s\nSubject: limit\n\nfive\n' "$tag" |
    "$SMARTHOST" -C "$T/limit.conf" -v -i r1@example.org r2@example.org \
    r3@example.org r4@example.org r5@example.org >"$T/limit.out" 2>&1
check_eq "recipient limit 2, five recipients: exit 0" "$?" 0
check "recipient limit: the relay delivered all it took" \
    relay_settle "$T/limit.log"
check_eq "recipient limit: three transactions" \
    "$(tagged "$tag" | wc -l)" 3
check_eq "recipient limit: each recipient once" \
    "$(tagged "$tag" | xargs -r sed -n 's/^X-Rcpt-Args: <\([^>]*\)>.*/\1/p' |
    sort | tr '\n' ' ')" \
    "r1@example.org r2@example.org r3@example.org r4@example.org $(
    )r5@example.org "
check_grep "recipient limit: Postfix said 452 (it was the limit)" \
    '^<- 452 4.5.3 Error: too many recipients' "$T/limit.out"
check_eq "recipient limit: nothing queued" \
    "$(ls "$T/queue" | grep -vc '\.status$')" 0

# --- Failure notices through the relay (SPEC 8, issue 13) ---------------
# One of two recipients refused for good (550): the other gets the
# message, the sender exactly one RFC 3464 notice.
tag="notice-$$"
conf "$T/n1.conf" "$RELAY_SMTPS" off "logfile $T/n1.log"
printf 'X-Test-Id: %s\nSubject: one refused\n\nbody\n' "$tag" |
    "$SMARTHOST" -C "$T/n1.conf" -i bob@example.org refused@example.org \
    >"$T/n1.out" 2>&1
check_eq "550 for one of two: exit 0" "$?" 0
check "550 for one of two: the relay delivered all it took" \
    relay_settle "$T/n1.log"
f=$(tagged "$tag" | xargs -r grep -L "$is_notice")
check_eq "550 for one of two: the message once, to the other only" \
    "$(cat $f /dev/null | grep -c '^X-Rcpt-Args:')" 1
check_grep "550 for one of two: to bob" '^X-Rcpt-Args: <bob@example.org>' \
    ${f:-/dev/null}
n=$(tagged "$tag" "$is_notice")
check_eq "550 for one of two: exactly one notice" \
    "$(echo "$n" | grep -c .)" 1
check_grep "550 for one of two: the notice goes to the sender" \
    "^X-Rcpt-Args: <$RELAY_USER>" ${n:-/dev/null}
check_grep "550 for one of two: the notice is a delivery-status report" \
    'report-type=delivery-status' ${n:-/dev/null}
check_grep "550 for one of two: it names the recipient" \
    '^Final-Recipient: rfc822; refused@example.org' ${n:-/dev/null}
check_grep "550 for one of two: it quotes Postfix's reply" \
    '^Diagnostic-Code: smtp; 550 5.1.1 <refused@example.org>' \
    ${n:-/dev/null}

# queue_max_age: kept while the relay was away, expired at the next run:
# one notice, the message itself not sent.
tag="expire-$$"
conf "$T/n2.conf" "$RELAY_SMTPS" off "logfile $T/n2.log" \
    "queue_max_age 1s" "queue_dir $T/n2q"
printf 'X-Test-Id: %s\nSubject: too late\n\nbody\n' "$tag" |
    "$SMARTHOST" -C "$T/n2.conf" --port="$(free_port)" -i bob@example.org \
    >"$T/n2.out" 2>&1
check_eq "relay away: queued" "$(ls "$T/n2q" | grep -vc '\.status$')" 1
sleep 2
"$SMARTHOST" -C "$T/n2.conf" -q >"$T/n2q.out" 2>&1
check_eq "expired: -q exit 0" "$?" 0
check "expired: the relay delivered all it took" relay_settle "$T/n2.log"
n=$(tagged "$tag" "$is_notice")
check_eq "expired: exactly one notice" "$(echo "$n" | grep -c .)" 1
check_grep "expired: status 4.4.7" '^Status: 4.4.7' ${n:-/dev/null}
check_eq "expired: the message itself was not sent" \
    "$(tagged "$tag" | xargs -r grep -L "$is_notice" | wc -l)" 0
check_eq "expired: the queue is empty" \
    "$(ls "$T/n2q" | grep -vc '\.status$')" 0

# A null sender: refused for one recipient, no notice (nobody to tell).
tag="null-$$"
conf "$T/n3.conf" "$RELAY_SMTPS" off "logfile $T/n3.log"
printf 'X-Test-Id: %s\nSubject: null sender\n\nbody\n' "$tag" |
    "$SMARTHOST" -C "$T/n3.conf" -f '<>' -i bob@example.org \
    refused@example.org >"$T/n3.out" 2>&1
check_eq "null sender, one refused: exit 0" "$?" 0
check "null sender: the relay delivered all it took" \
    relay_settle "$T/n3.log"
check_eq "null sender: the message to bob, and no notice" \
    "$(tagged "$tag" | wc -l) $(tagged "$tag" "$is_notice" | wc -l)" "1 0"
check_grep "null sender: sent with MAIL FROM:<>" '^X-Mail-Args: <>' \
    "$(tagged "$tag" | head -1)"

# --- The headless box (issue 13): an unprivileged user, no mailname, no
# aliases, no maildomain, a configuration of just the relay, the login
# and from (port and CA only because the test relay has its own).
# Local mail and cron's mail without MAILTO arrive at from, cron's From
# header qualified; the user has a log without asking for one.
nob=$(id -u nobody)
private_dir H "$nob"
install -m 0755 "$SMARTHOST" "$H/sendmail"
install -m 0644 "$RELAY_CA" "$H/ca.pem"
mkdir -p "$H/.config/smarthost"
cat >"$H/.config/smarthost/config" <<EOC
host $RELAY_HOST
port $RELAY_SUBMISSION
tls_trust_file $H/ca.pem
user $RELAY_USER
password $RELAY_PASS
from $RELAY_USER
EOC
chmod 600 "$H/.config/smarthost/config"
chown -R "$nob:$nob" "$H"
as_nobody() {	# the environment of a cron job (and no MAILTO)
	(cd "$H" && setpriv --reuid="$nob" --regid="$nob" --clear-groups \
	    env -i PATH=/usr/bin:/bin HOME="$H" LOGNAME=nobody SHELL=/bin/sh \
	    SMARTHOST_SYSCONF=/nonexistent \
	    SMARTHOST_MAILNAME_FILE=/nonexistent "$H/sendmail" "$@")
}
tag="local-$$"
printf 'X-Test-Id: %s\nSubject: x\n\nx\n' "$tag" | as_nobody nobody \
    >"$T/nob1.out" 2>&1
check_eq "unprivileged: sendmail nobody: exit 0" "$?" 0
sed 's/^/#   | /' "$T/nob1.out"
if f=$(sink_wait "$tag"); then
	check_grep "unprivileged: nobody's mail arrives at from" \
	    "^X-Rcpt-Args: <$RELAY_USER>" "$f"
else
	notok "unprivileged: nobody's mail arrives at from"
fi
tag="cron-$$"
{
	printf 'From: root (Cron Daemon)\nTo: nobody\n'
	printf 'Subject: Cron <nobody@box> echo hi\nMIME-Version: 1.0\n'
	printf 'Content-Type: text/plain; charset=UTF-8\n'
	printf 'Content-Transfer-Encoding: 8bit\nX-Cron-Env: <SHELL=/bin/sh>\n'
	printf 'X-Cron-Env: <HOME=%s>\nX-Cron-Env: <LOGNAME=nobody>\n' "$H"
	printf 'X-Test-Id: %s\n\nhi\n' "$tag"
} | as_nobody -FCronDaemon -i -odi -oem -oi -t >"$T/nob2.out" 2>&1
check_eq "unprivileged: cron's call: exit 0" "$?" 0
sed 's/^/#   | /' "$T/nob2.out"
if f=$(sink_wait "$tag"); then
	check_grep "cron's mail arrives at from" \
	    "^X-Rcpt-Args: <$RELAY_USER>" "$f"
	check_grep "cron's mail: sent as from" "^X-Mail-Args: <$RELAY_USER>" \
	    "$f"
	check_grep "cron's mail: From: Cron Daemon <from>" \
	    "^From: Cron Daemon <$RELAY_USER>\$" "$f"
	check_grep "cron's mail: To: left as cron wrote it" '^To: nobody$' "$f"
else
	notok "cron's mail arrives at from"
fi
check_eq "unprivileged: a log of its own, a line per message" \
    "$(grep -c 'exitcode=EX_OK$' "$H/.local/state/smarthost/log")" 2
check_eq "unprivileged: the log is the user's alone" \
    "$(stat -c '%U %a' "$H/.local/state/smarthost/log")" "nobody 600"
check_nogrep "unprivileged: no password in the log" "$RELAY_PASS" \
    "$H/.local/state/smarthost/log"

# No writable home (www-data, nobody's /nonexistent): the default log
# falls back to syslog without a word on stderr.
tag="nohome-$$"
printf 'X-Test-Id: %s\nSubject: x\n\nx\n' "$tag" | (cd "$H" && setpriv \
    --reuid="$nob" --regid="$nob" --clear-groups env -i PATH=/usr/bin:/bin \
    HOME=/nonexistent SMARTHOST_SYSCONF=/nonexistent "$H/sendmail" \
    -C "$H/.config/smarthost/config" nobody) >"$T/nob3.out" 2>&1
check_eq "no writable home: exit 0" "$?" 0
sed 's/^/#   | /' "$T/nob3.out"
check_nogrep "no writable home: nothing said about the log" 'log' \
    "$T/nob3.out"
check "no writable home: delivered" eval 'sink_wait "$tag" >/dev/null'

# --- Debian 13's Postfix 3.10 (stricter pipelining rules): a flush of
# four kept messages behind a new one with a refused recipient, and the
# recipient limit, all in one session each; nothing in its log about
# pipelining, every message once, one notice.
if ! tests/postfix-relay start 3.10 >"$T/start10" 2>&1; then
	notok "3.10: relay starts"; sed 's/^/#   | /' "$T/start10"; exit 1
fi
eval "$(tests/postfix-relay env 3.10)"
from_line=$(($(wc -l <"$RELAY_LOG") + 1))
tag="p310-$$"
conf "$T/p10.conf" "$RELAY_SUBMISSION" on "logfile $T/p10.log" \
    "queue_dir $T/p10q"
away=$(free_port)
for i in 1 2 3 4; do
	printf 'X-Test-Id: %s\nSubject: kept %s\n\nx\n' "$tag" "$i" |
	    "$SMARTHOST" -C "$T/p10.conf" --port="$away" -i bob@example.org \
	    2>/dev/null
done
check_eq "3.10: four kept while the relay was away" \
    "$(ls "$T/p10q" | grep -vc '\.status$')" 4
printf 'X-Test-Id: %s\nSubject: now\n\nx\n' "$tag" |
    "$SMARTHOST" -C "$T/p10.conf" -v -i bob@example.org \
    refused@example.org >"$T/p10.out" 2>&1
check_eq "3.10: the new one with a refused recipient: exit 0" "$?" 0
check_eq "3.10: one connection for all" "$(grep -c '^<- 220 ' "$T/p10.out")" 2
check "3.10: the relay delivered all it took" relay_settle "$T/p10.log"
check_eq "3.10: five messages and one notice in the sink" \
    "$(tagged "$tag" | wc -l) $(tagged "$tag" "$is_notice" | wc -l)" "6 1"
check_eq "3.10: the queue is empty" \
    "$(ls "$T/p10q" | grep -vc '\.status$')" 0
tag="l310-$$"
conf "$T/l10.conf" "$RELAY_LIMITED" off "logfile $T/l10.log"
printf 'X-Test-Id: %s\nSubject: limit\n\nfive\n' "$tag" |
    "$SMARTHOST" -C "$T/l10.conf" -i r1@example.org r2@example.org \
    r3@example.org r4@example.org r5@example.org >"$T/l10.out" 2>&1
check_eq "3.10: recipient limit, five recipients: exit 0" "$?" 0
check "3.10: recipient limit: delivered" relay_settle "$T/l10.log"
check_eq "3.10: recipient limit: each recipient once, in three" \
    "$(tagged "$tag" | wc -l) $(tagged "$tag" | xargs -r sed -n \
    's/^X-Rcpt-Args: <\([^>]*\)>.*/\1/p' | sort -u | wc -l)" "3 5"
check_nogrep "3.10: its log has no word on pipelining or a warning" \
    'pipelining\|warning' <(tail -n +"$from_line" "$RELAY_LOG")

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

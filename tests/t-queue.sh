#!/bin/bash
# SPDX-License-Identifier: ISC
# Nothing is lost: temporary failures at each step end with the message
# queued (exit 0), a later -q delivers each exactly once (also with two
# runs at the same time), a permanent refusal lands in dead.letter, and
# a kill -9 at any step leaves the message queued or delivered.
ASAN_TOO=1
. tests/lib.sh

CAPS="AUTH PLAIN,PIPELINING,8BITMIME,ENHANCEDSTATUSCODES"
Q=$T/queue

srv() {	# NAME COUNT [testsrv options]
	local name=$1 count=$2
	shift 2
	testsrv "$name" -n "$count" -T -c "$CERTS/server.pem" \
	    -k "$CERTS/server.key" -e "$CAPS" "$@"
}

CONF=$T/smarthost.conf
conf() {	# PORT
	PORT=$1 smarthost_conf "$T/smarthost.conf" "tls_starttls off" \
	    "timeout 1"
}

n=0
send() {	# NAME: a message with a unique subject; sets RC
	n=$((n + 1))
	printf 'Subject: msg-%s\n\nbody of %s\n' "$1" "$1" |
	    "$SMARTHOST" -C "$CONF" bob@example.org >"$T/$1.out" 2>"$T/$1.err"
	RC=$?
}
queued() { ls "$Q" 2>/dev/null | grep -cv '\.status$'; }

# 1. Relay down: queued, exit 0, a notice with the id.
conf "$(free_port)"
send down
check_eq "relay down: exit 0" "$RC" 0
check_grep "relay down: notice names the queue id" \
    'queued as 20[0-9T]*-[0-9a-f]*; it will be sent' "$T/down.err"
check_eq "relay down: one message in the queue" "$(queued)" 1
"$SMARTHOST" -C "$CONF" -bp >"$T/mailq.out" 2>&1
check_grep "mailq: lists the message" '^20[0-9T]*-[0-9a-f]* ' "$T/mailq.out"
check_grep "mailq: shows the recipient" 'bob@example.org' "$T/mailq.out"
check_grep "mailq: shows the last error" 'cannot connect to 127.0.0.1' \
    "$T/mailq.out"

# 2. A temporary failure at each step: queued.
for rule in 'greeting reply 421 4.3.2 busy' 'ehlo close' \
    'auth reply 454 4.7.0 later' 'mail reply 451 4.7.1 greylisted' \
    'rcpt reply 450 4.2.0 later' 'data reply 451 4.3.0 later' \
    'data-body drop 10' 'data-end close' 'data-end reply 452 4.3.1 full' \
    'mail delay 7000'; do
	step=${rule%% *}-${rule#* }; step=${step%% *}
	printf '%s\n' "$rule" >"$T/rule"
	srv "t-$step" 1 -s "$T/rule"
	conf "$PORT"
	before=$(queued)
	send "t-$step"
	wait "$SRV" 2>/dev/null
	check_eq "$rule: exit 0" "$RC" 0
	check_eq "$rule: one more message queued" "$(queued)" $((before + 1))
done

# 3. The relay is back.  Plain -q keeps the retry schedule: a message
# the relay answered "later" (greylisting, a full mailbox) waits its
# turn, one that never reached the relay goes at once; -qf sends all,
# over one connection, each exactly once.
total=$(queued)
"$SMARTHOST" -C "$CONF" -bp >"$T/mailq-sched.out" 2>&1
check_grep "mailq: a message the relay answered shows its next try" \
    'next try in [0-9]*m: the relay refused the sender' \
    "$T/mailq-sched.out"
check_grep "mailq: one the relay never answered goes at the next run" \
    'next try at the next run: ' "$T/mailq-sched.out"
want_due=$(grep -c 'next try at the next run' "$T/mailq-sched.out")
srv due 1
conf "$PORT"
"$SMARTHOST" -C "$CONF" -q >"$T/due.out" 2>&1
RC=$?
wait "$SRV" 2>/dev/null
due=$(ls "$MAIL"/*.eml 2>/dev/null | wc -l)
check_eq "-q: exit 0" "$RC" 0
check_eq "-q: sends what is due" "$due" "$want_due"
check_eq "-q: the ones the relay answered wait for their time" \
    "$(queued)" $((total - want_due))
srv flush 1
conf "$PORT"
"$SMARTHOST" -C "$CONF" -qf >"$T/flush.out" 2>&1
RC=$?
wait "$SRV" 2>/dev/null
check_eq "-qf: exit 0" "$RC" 0
check_eq "-qf: the queue is empty" "$(queued)" 0
check_eq "-qf: every waiting message delivered" \
    "$(ls "$MAIL"/*.eml | wc -l)" $((total - due))
check_eq "-qf: one connection for all" "$(grep -c '^CONNECT' "$TR")" 1
check_eq "-qf: no message twice" \
    "$(cat "$T"/due/mail/*.eml "$MAIL"/*.eml | grep '^Subject:' | sort |
    uniq -d | wc -l)" 0
"$SMARTHOST" -C "$CONF" -bp >"$T/mailq2.out" 2>&1
check_eq "mailq: an empty queue says so" "$(cat "$T/mailq2.out")" \
    "Mail queue is empty"

# 3b. The flush pipelines across messages: one flight for all of them;
# a refusal in the middle touches only its own message (AUTH rides in
# the same flight).
conf "$(free_port)"
for i in 1 2 3; do send "batch-$i"; done
printf 'rcpt#2 reply 550 5.1.1 no such user\n' >"$T/rule"
srv batch 1 -e "$CAPS,CHUNKING" -s "$T/rule"
conf "$PORT"
echo "notify off" >>"$CONF"	# t-notice has the notices
rm -f "$T/dead.letter"
"$SMARTHOST" -C "$CONF" -q >"$T/batch.out" 2>&1
wait "$SRV" 2>/dev/null
check_eq "pipelined flush: all three MAILs in one flight" \
    "$(awk '$3 == "MAIL" {print $2}' "$TR" | sort -u | wc -l)" 1
check_eq "pipelined flush: two delivered" "$(ls "$MAIL"/*.eml | wc -l)" 2
check_grep "pipelined flush: the refused one in dead.letter" \
    '^Subject: msg-batch-2' "$T/dead.letter"
check_eq "pipelined flush: the queue is empty" "$(queued)" 0
check_nogrep "pipelined flush: the others are not in dead.letter" \
    '^Subject: msg-batch-[13]' "$T/dead.letter"
check_eq "pipelined flush: none delivered twice" \
    "$(grep -h '^Subject:' "$MAIL"/*.eml | sort | uniq -d | wc -l)" 0
check_grep "pipelined flush: RSET behind a transaction in flight" \
    '^C 2 RSET' "$TR"

# 4. Two -q runs at once never send a message twice.
conf "$(free_port)"
for i in 1 2 3 4 5 6; do send "twice-$i"; done
srv both 2
conf "$PORT"
"$SMARTHOST" -C "$CONF" -q >/dev/null 2>&1 &
p1=$!
"$SMARTHOST" -C "$CONF" -q >/dev/null 2>&1 &
p2=$!
wait "$p1" "$p2"
kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null
check_eq "two -q at once: the queue is empty" "$(queued)" 0
check_eq "two -q at once: six messages delivered" \
    "$(ls "$MAIL"/*.eml 2>/dev/null | wc -l)" 6
check_eq "two -q at once: none twice" \
    "$(grep -h '^Subject:' "$MAIL"/*.eml | sort | uniq -d | wc -l)" 0

# 5. A permanent refusal: dead.letter with the whole message, exit 65.
printf 'rcpt reply 550 5.1.1 no such user\n' >"$T/rule"
srv perm 1 -s "$T/rule"
conf "$PORT"
send perm
wait "$SRV" 2>/dev/null
check_eq "5xx: exit 65" "$RC" 65
check_eq "5xx: not queued" "$(queued)" 0
check_grep "5xx: dead.letter has the mbox From line" \
    "^From $USER " "$T/dead.letter"
check_grep "5xx: dead.letter has the reason" \
    '^X-Smarthost-Error: .*550 5.1.1' "$T/dead.letter"
check_grep "5xx: dead.letter has the body" '^body of perm$' \
    "$T/dead.letter"
check_grep "5xx: says where it went" "appended to $T/dead.letter" \
    "$T/perm.err"

# 6. A wrong password needs a person: kept in the queue, and said so
# loudly, but exit 0: the message is ours now (a caller that retried on
# non-zero would make a duplicate once the password is fixed).
srv pw 1
conf "$PORT"
sed -i 's/^password .*/password wrong/' "$CONF"
send pw
wait "$SRV" 2>/dev/null
check_eq "wrong password: exit 0" "$RC" 0
check_grep "wrong password: kept with its id, the fix asked for" \
    'NOT SENT YET: the message is kept in the queue as 20[0-9T]*-' \
    "$T/pw.err"
check_eq "wrong password: queued" "$(queued)" 1
srv pw2 1
conf "$PORT"
"$SMARTHOST" -C "$CONF" -q >/dev/null 2>&1
wait "$SRV" 2>/dev/null
check_eq "wrong password fixed: -q delivers it" "$(queued)" 0

# 7. kill -9 at each step: queued or delivered, never neither.
for step in greeting ehlo auth mail rcpt data data-end; do
	printf '%s delay 3000\n' "$step" >"$T/rule"
	srv "kill-$step" 1 -s "$T/rule"
	conf "$PORT"
	printf 'Subject: kill-%s\n\nx\n' "$step" |
	    "$SMARTHOST" -C "$CONF" bob@example.org >/dev/null 2>&1 &
	p=$!
	sleep 1
	kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null
	kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null
	got=$(grep -l "^Subject: kill-$step" "$MAIL"/*.eml 2>/dev/null | wc -l)
	inq=$(grep -l "^Subject: kill-$step" "$Q"/* 2>/dev/null | wc -l)
	check "kill -9 during $step: queued or delivered" \
	    test $((got + inq)) -ge 1
done
srv killflush 1
conf "$PORT"
"$SMARTHOST" -C "$CONF" -q >/dev/null 2>&1
wait "$SRV" 2>/dev/null
check_eq "after the kills, -q empties the queue" "$(queued)" 0

# 8. On a terminal, -q shows one progress line; elsewhere (cron) nothing.
conf "$(free_port)"
for i in 1 2 3; do send "tty-$i"; done
srv tty 1
conf "$PORT"
script -qec "$SMARTHOST -C $CONF -q" /dev/null >"$T/tty.out" 2>&1
wait "$SRV" 2>/dev/null
check_grep "-q on a terminal: a progress line" \
    'queue: 3 delivered, 0 deferred, 0 refused' "$T/tty.out"
conf "$(free_port)"
send notty
srv notty 1
conf "$PORT"
"$SMARTHOST" -C "$CONF" -q >"$T/notty.out" 2>&1
wait "$SRV" 2>/dev/null
check "-q without a terminal: silent" test ! -s "$T/notty.out"

# A large message shows how far it got, on a terminal.
srv large 1
conf "$PORT"
{ printf 'Subject: large\n\n'; head -c 1500000 /dev/zero | tr '\0' 'x' |
    fold -w 70; } >"$T/large.msg"
script -qec "$SMARTHOST -C $CONF bob@example.org <$T/large.msg" /dev/null \
    >"$T/large.out" 2>&1
wait "$SRV" 2>/dev/null
check_grep "large message on a terminal: progress" \
    'sent 1.5 of 1.5 MB (100%)' "$T/large.out"

# 9. No configuration at all (a fresh package): mailq and -q succeed.
( cd "$T" && env -i HOME="$T/nohome" SMARTHOST_SYSCONF=/nonexistent \
    SMARTHOST_QUEUE_DIR="$T/q-empty" \
    PATH="$PATH" "$SMARTHOST" -bp >"$T/nocfg.out" 2>&1 )
check_eq "no configuration: mailq exits 0" "$?" 0
check_eq "no configuration: mailq says empty" "$(cat "$T/nocfg.out")" \
    "Mail queue is empty"
( cd "$T" && env -i HOME="$T/nohome" SMARTHOST_SYSCONF=/nonexistent \
    SMARTHOST_QUEUE_DIR="$T/q-empty" \
    PATH="$PATH" "$SMARTHOST" -q >"$T/nocfg-q.out" 2>&1 )
check_eq "no configuration: -q exits 0" "$?" 0
check "no configuration: -q prints nothing" test ! -s "$T/nocfg-q.out"

# 10. Called with stdout and stderr closed (and -v): the notices must
#     not land in the queue file, which would then be corrupt.
rm -rf "$Q"
conf "$(free_port)"
printf 'Subject: closed-fds\n\nbody\n' |
    "$SMARTHOST" -v -C "$CONF" bob@example.org >&- 2>&-
check_eq "stdout and stderr closed: exit 0" "$?" 0
"$SMARTHOST" -C "$CONF" -bp >"$T/closed.out" 2>&1
check_nogrep "stdout and stderr closed: the queue file is intact" \
    'corrupt' "$T/closed.out"
check_grep "stdout and stderr closed: the message is queued" \
    '^20[0-9T]*-[0-9a-f]* ' "$T/closed.out"

# 11. -q with the default account's mail older than another account's
#     (the default account is flushed first, then the next name).
rm -rf "$Q"
conf "$(free_port)"
printf 'account work : default\nfrom work@example.org\n' >>"$CONF"
printf 'Subject: d\n\nd\n' | "$SMARTHOST" -C "$CONF" bob@example.org \
    2>/dev/null
printf 'Subject: w\n\nw\n' | "$SMARTHOST" -C "$CONF" -a work \
    bob@example.org 2>/dev/null
check_eq "two accounts queued" "$(queued)" 2
"$SMARTHOST" -C "$CONF" -q >"$T/two.out" 2>&1
check_eq "-q over default's and another account's mail: exit 0" "$?" 0
check_eq "-q over two accounts: both still queued (relay down)" \
    "$(queued)" 2

# 12. A queue on a full disk: the relay is up, so the message goes all
#     the same (not queued), whether the disk is nearly full before it
#     (the reserve) or fills while it is read.  A tmpfs of 1 MiB in a
#     mount namespace of its own.
full_send() {	# NAME FREE-KB MESSAGE-KB
	local name=$1 free=$2 size=$3
	srv "$name" 1
	conf "$PORT"
	sed -i "s|^queue_dir .*|queue_dir $T/$name/fs/q|" "$CONF"
	mkdir -p "$T/$name/fs"
	{ printf 'Subject: %s\n\n' "$name"
	  head -c $((size * 1024)) /dev/zero | tr '\0' x | fold -w 70; } \
	    >"$T/$name.msg"
	unshare -m bash -c '
		mount -t tmpfs -o size=1m tmpfs "$1/fs" || exit 99
		mkdir -m 700 "$1/fs/q"
		dd if=/dev/zero of="$1/fs/filler" bs=1k \
		    count=$((1024 - $2)) 2>/dev/null
		"$3" -C "$4" bob@example.org <"$5" >"$1.out" 2>"$1.err"
		echo $? >"$1.rc"
		ls "$1/fs/q" >"$1.q"' - "$T/$name" "$free" "$SMARTHOST" \
	    "$CONF" "$T/$name.msg"
	wait "$SRV" 2>/dev/null
}
if ! unshare -m true 2>/dev/null; then
	notok "full disk: unshare -m works (the tests run as root)"
else
	full_send reserve 30 4
	check_eq "queue nearly full: exit 0" "$(cat "$T/reserve.rc")" 0
	check_grep "queue nearly full: says it cannot be queued" \
	    'nearly full.*cannot be queued' "$T/reserve.err"
	check "queue nearly full: delivered all the same" \
	    test -e "$T/reserve/mail/1.eml"
	full_send fills 300 600
	check_eq "queue fills while reading: exit 0" "$(cat "$T/fills.rc")" 0
	check "queue fills while reading: delivered all the same" \
	    test -e "$T/fills/mail/1.eml"
	check_eq "queue fills while reading: the whole message" \
	    "$(grep -c '^x' "$T/fills/mail/1.eml")" \
	    "$(grep -c '^x' "$T/fills.msg")"
	check_eq "queue fills while reading: nothing left in the queue" \
	    "$(grep -cv status "$T/fills.q")" 0
fi

# 13. Accounts a1 and a2, no "default", queue_dir under defaults: mailq
#     lists what waits for either, and -q delivers it.
mq_conf() {	# PORT
	{
		echo "defaults"
		echo "host 127.0.0.1"
		echo "port $1"
		echo "tls_starttls off"
		echo "tls_trust_file $CERTS/ca.pem"
		echo "user $USER"
		echo "password $PASS"
		echo "tls_session_cache off"
		echo "timeout 1"
		echo "queue_dir $T/mq"
		echo "dead_letter $T/mq.dead"
		echo "notify off"
		echo "account a1"
		echo "from $USER"
		echo "account a2"
		echo "from $USER"
	} >"$T/mq.conf"
	chmod 600 "$T/mq.conf"
}
mq_conf "$(free_port)"
for a in a1 a2; do
	printf 'Subject: msg-acct-%s\n\nbody\n' "$a" |
	    "$SMARTHOST" -C "$T/mq.conf" -a "$a" bob@example.org \
	    >/dev/null 2>&1
done
check_eq "no default account: both kept" \
    "$(ls "$T/mq" | grep -cv '\.status$')" 2
"$SMARTHOST" -C "$T/mq.conf" -bp >"$T/mq.bp" 2>&1
check_eq "no default account: mailq lists both" \
    "$(grep -c '^20[0-9T]*-[0-9a-f]* ' "$T/mq.bp")" 2
srv mqsrv 2
mq_conf "$PORT"
"$SMARTHOST" -C "$T/mq.conf" -q >"$T/mq.q" 2>&1
check_eq "no default account: -q exit 0" "$?" 0
wait "$SRV" 2>/dev/null
check_eq "no default account: -q delivered both" \
    "$(grep -l '^Subject: msg-acct-a[12]' "$MAIL"/*.eml 2>/dev/null |
    wc -l)" 2
check_eq "no default account: the queue is empty" \
    "$(ls "$T/mq" | grep -cv '\.status$')" 0

#!/bin/bash
# SPDX-License-Identifier: ISC
# Every recipient is served once (SPEC 7-8, RFC 5321 3.3), and every
# session is recovered: a recipient limit (452) sends the rest in a
# further transaction, a refusal for good or for now touches only its
# own recipient, and a relay that drops the connection mid-queue is
# reconnected, with the same credentials, until the run is done.
ASAN_TOO=1
. tests/lib.sh

Q=$T/queue
TLS=(-T -c "$CERTS/server.pem" -k "$CERTS/server.key")

# srv NAME CAPS [testsrv options]
srv() {
	local name=$1 caps=$2
	shift 2
	testsrv "$name" "${TLS[@]}" -e "AUTH PLAIN,$caps" "$@"
}
conf() { smarthost_conf "$T/smarthost.conf" "tls_starttls off" "timeout 2" \
    "$@"; }
queued() { ls "$Q" 2>/dev/null | grep -cv '\.status$'; }

# send NAME RCPT...: a message with a unique subject; sets RC.
send() {
	local name=$1
	shift
	printf 'Subject: %s\n\nbody of %s\n' "$name" "$name" |
	    "$SMARTHOST" -C "$CONF" "$@" >"$T/$name.out" 2>"$T/$name.err"
	RC=$?
}

# rcpts_got DIR: every recipient the relay stored a message for, sorted.
rcpts_got() { grep -h '^rcpt <' "$1"/*.env 2>/dev/null | sort; }

FIVE="r1@example.org r2@example.org r3@example.org r4@example.org r5@example.org"
want5=$(for r in $FIVE; do echo "rcpt <$r>"; done | sort)

# 1. A recipient limit of 2 per transaction (452 4.5.3 on the 3rd, as
#    Exim's recipients_max): on every path all five get it, once.
for path in "data:PIPELINING" "bdat:PIPELINING,CHUNKING" "lockstep:8BITMIME"
do
	name=${path%%:*} caps=${path#*:}
	srv "limit-$name" "$caps" -L 2
	conf "queue_dir $Q-$name"
	# shellcheck disable=SC2086
	send "limit-$name" $FIVE
	wait "$SRV" 2>/dev/null
	check_eq "452 after 2 ($name): exit 0" "$RC" 0
	check_eq "452 after 2 ($name): each of the five got it once" \
	    "$(rcpts_got "$MAIL")" "$want5"
	check_eq "452 after 2 ($name): three transactions" \
	    "$(grep -c '^C [0-9]* MAIL' "$TR")" 3
	check_eq "452 after 2 ($name): the limit is remembered" \
	    "$(grep -c '^S [0-9]* 452' "$TR")" "$([ "$name" = lockstep ] &&
	    echo 1 || echo 3)"
	check_eq "452 after 2 ($name): nothing left in the queue" \
	    "$(ls "$Q-$name" | wc -l)" 0
	check "452 after 2 ($name): nothing on stderr" \
	    test ! -s "$T/limit-$name.err"
done

# 2. One recipient refused for good among three, in the one-flight BDAT
#    path: the other two get it, exit 0, dead.letter names the refused.
printf 'rcpt#2 reply 550 5.1.1 no such user\n' >"$T/rule"
srv refused "PIPELINING,CHUNKING" -s "$T/rule"
conf "notify off"	# t-notice has the failure notices
send refused a@example.org b@example.org c@example.org
wait "$SRV" 2>/dev/null
check_eq "one 550 among three: exit 0" "$RC" 0
check_eq "one 550 among three: the other two got it" \
    "$(rcpts_got "$MAIL" | tr '\n' ' ')" \
    "rcpt <a@example.org> rcpt <c@example.org> "
check_grep "one 550 among three: dead.letter names the refused one" \
    '^X-Smarthost-Not-Delivered-To: b@example.org$' "$T/dead.letter"
check_grep "one 550 among three: with the relay's reason" \
    '^X-Smarthost-Error: .*550 5.1.1 no such user' "$T/dead.letter"
check_grep "one 550 among three: said on stderr" \
    'not delivered to <b@example.org>: 550 5.1.1' "$T/refused.err"
check_eq "one 550 among three: not kept in the queue" "$(queued)" 0

# 3. One recipient refused for now: two get it now, the third stays
#    queued alone; the next run reaches only it.
printf 'rcpt#3 reply 450 4.2.0 mailbox busy\n' >"$T/rule"
srv later "PIPELINING,CHUNKING" -s "$T/rule"
conf
send later a@example.org b@example.org c@example.org
wait "$SRV" 2>/dev/null
check_eq "one 450 among three: exit 0" "$RC" 0
check_eq "one 450 among three: two got it now" \
    "$(rcpts_got "$MAIL" | tr '\n' ' ')" \
    "rcpt <a@example.org> rcpt <b@example.org> "
check_eq "one 450 among three: kept in the queue" "$(queued)" 1
check_grep "one 450 among three: said on stderr" \
    'delivery to <c@example.org> deferred: 450 4.2.0' "$T/later.err"
"$SMARTHOST" -C "$CONF" -bp >"$T/later.mailq" 2>&1
check_grep "mailq: the two that got it" \
    'a@example.org (sent)' "$T/later.mailq"
check_grep "mailq: the one that waits, and why" \
    'c@example.org (deferred: 450 4.2.0 mailbox busy)' "$T/later.mailq"
first=$MAIL
srv later2 "PIPELINING,CHUNKING"
conf
"$SMARTHOST" -C "$CONF" -q >"$T/later2.out" 2>&1
check_eq "one 450: plain -q waits for its time" "$(queued)" 1
"$SMARTHOST" -C "$CONF" -qf >"$T/later2.out" 2>&1
wait "$SRV" 2>/dev/null
check_eq "one 450: the next run reaches only the third" \
    "$(rcpts_got "$MAIL" | tr '\n' ' ')" "rcpt <c@example.org> "
check_eq "one 450: nobody twice over both runs" \
    "$(cat "$first"/*.env "$MAIL"/*.env | grep '^rcpt' | sort | uniq -d)" ""
check_eq "one 450: the queue is empty" "$(queued)" 0

# 4. The relay drops the connection at the second message of a flush,
#    and later (a per-connection limit) answers 421: the run reconnects
#    and delivers everything, each once.
conf "port $(free_port)"
for i in 1 2 3 4; do send "drop-$i" bob@example.org; done
check_eq "relay down: four queued" "$(queued)" 4
printf '@1 mail#2 close\n@2 mail#2 reply 421 4.7.0 too many messages\n' \
    >"$T/rule"
srv drop "PIPELINING,CHUNKING" -n 3 -s "$T/rule"
conf
"$SMARTHOST" -C "$CONF" -q >"$T/drop.out" 2>&1
RC=$?
wait "$SRV" 2>/dev/null
check_eq "drop mid-flush: exit 0" "$RC" 0
check_eq "drop mid-flush: the queue is empty" "$(queued)" 0
check_eq "drop mid-flush: four delivered" "$(ls "$MAIL"/*.eml | wc -l)" 4
check_eq "drop mid-flush: none twice" \
    "$(grep -h '^Subject:' "$MAIL"/*.eml | sort | uniq -d)" ""
check_eq "drop mid-flush: three connections" \
    "$(grep -c '^CONNECT' "$TR")" 3
check_eq "drop mid-flush: authenticated on each" \
    "$(grep -c '^AUTHOK' "$TR")" 3

# 5. The reconnect of a send: a message queued while the relay was
#    down, then a new one; the relay drops the first connection at the
#    first MAIL.  Both arrive (the password is the run's, not used up).
conf "port $(free_port)"
send waiting bob@example.org
printf '@1 mail#1 close\n' >"$T/rule"
srv resend "PIPELINING,CHUNKING" -n 2 -s "$T/rule"
conf
send fresh bob@example.org
wait "$SRV" 2>/dev/null
check_eq "send after a drop: exit 0" "$RC" 0
check "send after a drop: no 'no password' error" \
    test ! -s "$T/fresh.err"
check_eq "send after a drop: both delivered" \
    "$(grep -h '^Subject:' "$MAIL"/*.eml | tr -d '\r' | sort |
    tr '\n' ' ')" "Subject: fresh Subject: waiting "
check_eq "send after a drop: the caller's own first" \
    "$(grep -h '^Subject:' "$MAIL/1.eml" | tr -d '\r')" "Subject: fresh"
check_eq "send after a drop: the queue is empty" "$(queued)" 0

# 7. Replies in unexpected places.
# 7a. DATA answered 250 instead of 354: nothing went, so it is kept.
for path in "data:PIPELINING" "lockstep:8BITMIME"; do
	name=${path%%:*} caps=${path#*:}
	printf 'data reply 250 2.0.0 ok\n' >"$T/rule"
	srv "data250-$name" "$caps" -s "$T/rule"
	conf "queue_dir $Q-d250-$name"
	send "data250-$name" bob@example.org
	wait "$SRV" 2>/dev/null
	check_eq "DATA answered 250 ($name): exit 0, kept" "$RC" 0
	check_eq "DATA answered 250 ($name): in the queue" \
	    "$(ls "$Q-d250-$name" | grep -cv '\.status$')" 1
	check_eq "DATA answered 250 ($name): the relay has nothing" \
	    "$(ls "$MAIL" | wc -l)" 0
	check_grep "DATA answered 250 ($name): says so" \
	    'answered DATA with 250 instead of 354' "$T/data250-$name.err"
done
# 7b. The pipelined AUTH refused by a relay that relays all the same, the
#     second recipient refused: the first got it, and never again.
printf 'rcpt#2 reply 550 5.1.1 no such user\n' >"$T/rule"
SRVUSER=open srv openrelay "PIPELINING,CHUNKING" -s "$T/rule" -n 2
conf "queue_dir $Q-open" "notify off"
send openrelay a@example.org b@example.org
check_eq "AUTH refused, relayed anyway: exit 0" "$RC" 0
check_grep "AUTH refused, relayed anyway: the warning" \
    'took the message anyway' "$T/openrelay.err"
"$SMARTHOST" -C "$CONF" -qf >"$T/openrelay2.out" 2>&1
wait "$SRV" 2>/dev/null
check_eq "AUTH refused, relayed anyway: a@ got it once over two runs" \
    "$(rcpts_got "$MAIL" | grep -c 'a@example.org')" 1
# 7c. A 421 to the second RCPT, the data then taken: the first recipient
#     has it, the second gets it over a new connection; each once.
printf '@1 rcpt#2 reply 421 4.7.0 too many errors\n' >"$T/rule"
srv rcpt421 "PIPELINING,CHUNKING" -s "$T/rule" -n 2
conf "queue_dir $Q-421"
send rcpt421 a@example.org b@example.org
wait "$SRV" 2>/dev/null
check_eq "421 to a RCPT, data taken: exit 0" "$RC" 0
check_eq "421 to a RCPT, data taken: each recipient once" \
    "$(rcpts_got "$MAIL" | tr '\n' ' ')" \
    "rcpt <a@example.org> rcpt <b@example.org> "
# 7d. The connection breaks at the data, the next one refuses the
#     recipient: what is reported is the relay's 550, not the break.
printf '@1 bdat-last close\n@2 rcpt reply 550 5.1.1 no such user\n' \
    >"$T/rule"
srv stale "PIPELINING,CHUNKING" -s "$T/rule" -n 2
conf "queue_dir $Q-stale" "notify off"
rm -f "$T/dead.letter"
send stale bob@example.org
wait "$SRV" 2>/dev/null
check_eq "broken, then refused: exit 65" "$RC" 65
check_grep "broken, then refused: stderr quotes the 550" \
    'relay said: 550 5.1.1 no such user' "$T/stale.err"
check_grep "broken, then refused: dead.letter quotes the 550" \
    '^X-Smarthost-Error: .*550 5.1.1' "$T/dead.letter"

# 7e. RSET refused (502) or answered 421 in a flush: the replies behind
#     it are read all the same, so what the relay took is not sent again
#     (it was left queued and sent on every later run).
for rule in "rset#1 reply 502 5.5.1 not implemented" \
    "@1 rset#1 reply 421 4.7.0 bye"; do
	name=rset${rule##* }
	conf "port $(free_port)" "queue_dir $Q-$name"
	for i in 1 2 3; do send "$name-$i" bob@example.org; done
	printf '%s\n' "$rule" >"$T/rule"
	srv "$name" "PIPELINING,CHUNKING" -n 2 -s "$T/rule"
	conf "queue_dir $Q-$name"
	"$SMARTHOST" -C "$CONF" -q >"$T/$name.out" 2>&1
	RC=$?
	wait "$SRV" 2>/dev/null
	check_eq "RSET answered ${rule#* reply }: exit 0" "$RC" 0
	check_eq "RSET answered ${rule#* reply }: three delivered, none twice" \
	    "$(grep -h '^Subject:' "$MAIL"/*.eml | sort -u | wc -l) \
$(ls "$MAIL"/*.eml | wc -l)" "3 3"
	check_eq "RSET answered ${rule#* reply }: the queue is empty" \
	    "$(ls "$Q-$name" | wc -l)" 0
done

# 7f. The relay closes after taking the first of three large messages in
#     one flight (a per-connection limit) while the second is being
#     written: the 250 that came before the write failed is read, so the
#     first is not sent again; the other two go over a new connection.
#     Over TLS and in clear (different write paths).
for mode in tls clear; do
	if [ $mode = tls ]; then
		opts=("${TLS[@]}") caps="AUTH PLAIN,PIPELINING,CHUNKING"
		extra=() open=
	else
		opts=() caps="PIPELINING,CHUNKING" extra=("tls off" "auth off")
		open=open
	fi
	conf "port $(free_port)" "queue_dir $Q-wc$mode" "${extra[@]}"
	for i in 1 2 3; do
		{ printf 'Subject: wclose-%s\n\n' "$i"
		  head -c 3000000 /dev/zero | tr '\0' x | fold -w 70; } |
		    "$SMARTHOST" -C "$CONF" bob@example.org 2>/dev/null
	done
	printf '@1 mail#2 close\n' >"$T/rule"
	SRVUSER=$open testsrv "wc$mode" "${opts[@]}" -e "$caps" -n 2 \
	    -s "$T/rule"
	conf "queue_dir $Q-wc$mode" "timeout 5" "${extra[@]}"
	"$SMARTHOST" -C "$CONF" -q >"$T/wc$mode.out" 2>&1
	RC=$?
	wait "$SRV" 2>/dev/null
	check_eq "closed while writing a flight ($mode): exit 0" "$RC" 0
	check_eq "closed while writing a flight ($mode): three delivered, \
none twice" "$(grep -h '^Subject:' "$MAIL"/*.eml | sort -u | wc -l) \
$(ls "$MAIL"/*.eml | wc -l)" "3 3"
	check_eq "closed while writing a flight ($mode): the queue is empty" \
	    "$(ls "$Q-wc$mode" | wc -l)" 0
done

# 6. Accounts a1 and a2, no default, queue_dir under defaults: mailq and
#    -q without -a find what waits.
PORT=$(free_port)
{
	printf 'defaults\nqueue_dir %s/q-defaults\ntls_starttls off\n' "$T"
	printf 'tls_trust_file %s/ca.pem\ntls_session_cache off\n' "$CERTS"
	printf 'dead_letter %s/dead.letter\ntimeout 2\n' "$T"
	for a in a1 a2; do
		printf 'account %s\nhost 127.0.0.1\nport %s\nuser %s\n' \
		    "$a" "$PORT" "$USER"
		printf 'password %s\nfrom %s@example.test\n' "$PASS" "$a"
	done
} >"$T/two.conf"
chmod 600 "$T/two.conf"
for a in a1 a2; do
	printf 'Subject: from %s\n\nx\n' "$a" |
	    "$SMARTHOST" -C "$T/two.conf" -a "$a" bob@example.org 2>/dev/null
done
"$SMARTHOST" -C "$T/two.conf" -bp >"$T/two.mailq" 2>&1
check_grep "no default account: mailq lists a1's message" \
    'a1@example.test' "$T/two.mailq"
check_grep "no default account: mailq lists a2's message" \
    'a2@example.test' "$T/two.mailq"
srv two "PIPELINING,CHUNKING" -n 2
sed -i "s/^port .*/port $PORT/" "$T/two.conf"
"$SMARTHOST" -C "$T/two.conf" -q >"$T/two.out" 2>&1
wait "$SRV" 2>/dev/null
check_eq "no default account: -q delivers both" \
    "$(ls "$MAIL"/*.eml 2>/dev/null | wc -l)" 2
check_eq "no default account: the queue is empty" \
    "$(ls "$T/q-defaults" | wc -l)" 0

#!/bin/bash
# SPDX-License-Identifier: ISC
# Failure notices (SPEC 8): a recipient refused for good, or a message
# past queue_max_age, gets one RFC 3464 delivery status notification to
# notify_to (default the envelope sender), through the same relay,
# with the account's own address as envelope sender.  None about a null
# sender, a notice or an auto-submitted message; none with notify off.
ASAN_TOO=1
. tests/lib.sh

CAPS="AUTH PLAIN,PIPELINING,CHUNKING,8BITMIME,ENHANCEDSTATUSCODES"
srv() {	# NAME [testsrv options]
	local name=$1
	shift
	testsrv "$name" -T -c "$CERTS/server.pem" -k "$CERTS/server.key" \
	    -e "$CAPS" "$@"
}
conf() { smarthost_conf "$T/smarthost.conf" "tls_starttls off" \
    "timeout 10" "$@"; }
queued() { ls "$T/queue" 2>/dev/null | grep -cv '\.status$'; }

# The notice among the stored messages: the one with a report in it.
notice_of() { grep -l '^Content-Type: message/delivery-status' \
    "$1"/*.eml 2>/dev/null; }

# 1. One of two recipients refused for good: the other gets the message,
#    the sender one notice, in the same session.
printf 'rcpt#2 reply 550 5.1.1 <b@example.org>: no such user\n' \
    >"$T/rule"
srv partial -s "$T/rule"
conf
printf 'Subject: the report\nX-Tag: original\n\nbody\n' |
    "$SMARTHOST" -C "$CONF" a@example.org b@example.org \
    >/dev/null 2>"$T/partial.err"
RC=$?
wait "$SRV" 2>/dev/null
check_eq "one refused of two: exit 0" "$RC" 0
n=$(notice_of "$MAIL")
check_eq "one refused of two: exactly one notice" \
    "$(notice_of "$MAIL" | wc -l)" 1
env=${n%.eml}.env
check_grep "notice: to the envelope sender" "^rcpt <$USER>" "$env"
check_grep "notice: from the account's address, not <>" "^from <$USER>" \
    "$env"
for pat in '^Auto-Submitted: auto-replied' \
    '^Content-Type: multipart/report; report-type=delivery-status;' \
    '^Final-Recipient: rfc822; b@example.org' '^Action: failed' \
    '^Status: 5.1.1' \
    '^Diagnostic-Code: smtp; 550 5.1.1 <b@example.org>: no such user' \
    '^Content-Type: text/rfc822-headers' '^Subject: the report' \
    '^X-Tag: original'; do
	check_grep "notice: $pat" "$pat" "$n"
done
check_nogrep "notice: not about the recipient that got it" \
    'Final-Recipient: rfc822; a@example.org' "$n"
check_nogrep "notice: the original's body is not in it" '^body$' "$n"
check_eq "notice: sent, nothing left in the queue" "$(queued)" 0
check_eq "the delivered one: to a@example.org only" \
    "$(grep -l '^X-Tag: original' "$MAIL"/*.eml | grep -cv "$n")" 1

# 2. queue_max_age: a message queued while the relay was down expires;
#    one notice, with the expiry status, and the message itself in
#    dead.letter; the relay never gets the original.
conf "port $(free_port)" "queue_max_age 1s"
printf 'Subject: too late\n\nbody\n' |
    "$SMARTHOST" -C "$CONF" late@example.org 2>/dev/null
check_eq "relay down: queued" "$(queued)" 1
sleep 2
srv expiry
conf "queue_max_age 1s"
"$SMARTHOST" -C "$CONF" -q >"$T/expiry.out" 2>&1
wait "$SRV" 2>/dev/null
check_eq "expired: the relay got one message" \
    "$(ls "$MAIL"/*.eml 2>/dev/null | wc -l)" 1
n=$(notice_of "$MAIL")
check "expired: it is the notice" test -n "$n"
check_grep "expired: Status 4.4.7" '^Status: 4.4.7' "$n"
check_grep "expired: its subject says so" \
    '^Subject: Undelivered Mail: delivery time expired' "$n"
check_grep "expired: the message is in dead.letter" '^Subject: too late' \
    "$T/dead.letter"
check_eq "expired: the queue is empty" "$(queued)" 0

# 2b. A NUL in a header, refused here (the relay has no BINARYMIME): the
#     notice quotes the header without the NUL, so it is not refused too.
srv nul
conf
rm -f "$T/dead.letter"
printf 'Subject: a\000b\n\nbody\n' |
    "$SMARTHOST" -C "$CONF" a@example.org >/dev/null 2>"$T/nul.err"
RC=$?
wait "$SRV" 2>/dev/null
check_eq "NUL in a header: refused here (65)" "$RC" 65
check_eq "NUL in a header: the notice reached the relay" \
    "$(notice_of "$MAIL" | wc -l)" 1
check_grep "NUL in a header: the notice quotes it with ? for the NUL" \
    '^Subject: a?b' "$(notice_of "$MAIL" | head -1)"
check_eq "NUL in a header: one copy in dead.letter, not the notice too" \
    "$(grep -c '^From ' "$T/dead.letter")" 1

# 3. No notice: a null sender, an auto-submitted message, notify off.
noreport() {	# NAME [smarthost options]: a refused message, no notice
	local name=$1
	shift
	printf 'rcpt reply 550 5.1.1 no such user\n' >"$T/rule"
	srv "$name" -s "$T/rule"
	conf ${CONFLINE:+"$CONFLINE"}
	printf 'Subject: %s\n%s\nbody\n' "$name" "${HDR:-}" |
	    "$SMARTHOST" -C "$CONF" "$@" x@example.org >/dev/null \
	    2>"$T/$name.err"
	wait "$SRV" 2>/dev/null
	check_eq "$name: no notice" "$(notice_of "$MAIL" | wc -l)" 0
	check_eq "$name: none queued" "$(queued)" 0
}
noreport null-sender -f '<>'
HDR='Auto-Submitted: auto-generated
' noreport auto-submitted
HDR='Content-Type: multipart/report; report-type=delivery-status;
  boundary=x
' noreport a-bounce
CONFLINE="notify off" noreport notify-off

# 4. notify_to: the notice goes there instead.
printf 'rcpt#1 reply 550 5.1.1 no such user\n' >"$T/rule"
srv notifyto -s "$T/rule"
conf "notify_to postmaster@example.org"
printf 'Subject: x\n\nbody\n' |
    "$SMARTHOST" -C "$CONF" x@example.org >/dev/null 2>&1
wait "$SRV" 2>/dev/null
n=$(notice_of "$MAIL")
check "notify_to: a notice" test -n "$n"
check_grep "notify_to: to that address" '^rcpt <postmaster@example.org>' \
    "${n%.eml}.env"
check_grep "notify_to: its To header" '^To: postmaster@example.org' "$n"

# 5. A notice the relay refuses in turn makes no notice about itself.
printf 'rcpt reply 550 5.1.1 no such user\n' >"$T/rule"
srv loop -s "$T/rule"
conf
printf 'Subject: x\n\nbody\n' |
    "$SMARTHOST" -C "$CONF" x@example.org >/dev/null 2>&1
wait "$SRV" 2>/dev/null
check_eq "a refused notice: two transactions, the message's and its notice's" \
    "$(grep -c '^C [0-9]* MAIL' "$TR")" 2
check_eq "a refused notice: nothing more queued" "$(queued)" 0

#!/bin/bash
# SPDX-License-Identifier: ISC
# The command line as real callers write it, pinned through --pretend:
# the envelope and header changes smarthost computes for cron, mail(1),
# mutt, git send-email, PHP and fail2ban, the option syntax (attached
# and separate values, grouped flags, -o sub-options, --), the modes by
# program name, and the refusals with exit 64.
ASAN_TOO=1
. tests/lib.sh

CONF=$T/smarthost.conf
cat >"$CONF" <<EOC
account default
host relay.example.net
user alice@example.net
password not-a-real-secret
from alice@example.net
maildomain example.net
tls_session_cache off
queue_dir $T/queue
EOC
chmod 600 "$CONF"

# pretend NAME STDIN ARGS...: the envelope and the header changes, with
# the values of Date and Message-ID (they change every run) left out.
pretend() {
	local input=$2
	name=$1
	shift 2
	printf '%b' "$input" | "$SMARTHOST" -C "$CONF" -P "$@" 2>&1 |
	    sed -n -e 's/^\(header change: added \(Date\|Message-ID\)\):.*/\1/p' \
	    -e '/^envelope sender/p' -e '/^recipient/p' \
	    -e 's/^message: [0-9]* octets/message: N octets/p' \
	    -e '/^header change: [^a]/p' \
	    -e '/^header change: added From/p' >"$T/$name.got"
}

pin() {	# NAME EXPECTED-LINES...
	local want
	want=$(printf '%s\n' "${@:2}")
	check_eq "$1" "$(cat "$T/$1.got")" "$want"
}

CRON='To: root\nSubject: Cron <root@vm> backup\n\nbackup done\n'
pretend cronie "$CRON" -FCronDaemon -i -odi -oem -oi -t -f root
pin cronie "envelope sender: <alice@example.net>" \
    "recipient: <root@example.net>" "message: N octets" \
    "header change: rewrote sender root -> alice@example.net" \
    "header change: qualified recipient root -> root@example.net" \
    "header change: added From: CronDaemon <alice@example.net>" \
    "header change: added Date" "header change: added Message-ID"

pretend debian-cron "Subject: x\n\n\303\244\n" -FCronDaemon -i -B8BITMIME \
    -oem root
pin debian-cron "envelope sender: <alice@example.net>" \
    "recipient: <root@example.net>" "message: N octets, 8-bit" \
    "header change: qualified recipient root -> root@example.net" \
    "header change: added From: CronDaemon <alice@example.net>" \
    "header change: added Date" "header change: added Message-ID"

pretend systemd-cron "Subject: x\n\nx\n" -i -B 8BITMIME root
check_grep "systemd-cron: -B and its value as two words" \
    '^recipient: <root@example.net>$' "$T/systemd-cron.got"

pretend mailx 'To: bob@example.org\nBcc: carol@example.org\nSubject: s\n\nhi\n' \
    -i -t
pin mailx "envelope sender: <alice@example.net>" \
    "recipient: <bob@example.org>" "recipient: <carol@example.org>" \
    "message: N octets" "header change: removed Bcc: (1 line)" \
    "header change: added From: alice@example.net" \
    "header change: added Date" "header change: added Message-ID"

pretend mutt 'From: Alice <alice@example.net>\nTo: bob@example.org\nSubject: s\nDate: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <m1@example.net>\n\nhi\n' \
    -oem -oi -- bob@example.org
pin mutt "envelope sender: <alice@example.net>" \
    "recipient: <bob@example.org>" "message: N octets"

pretend git 'From: Alice <alice@example.net>\nSubject: [PATCH] x\n\npatch\n' \
    -i root
check_grep "git send-email: argument recipient qualified" \
    '^recipient: <root@example.net>$' "$T/git.got"

pretend php 'To: bob@example.org\r\nCc: carol@example.org\nSubject: php\r\n\r\nbody\n' \
    -t -i
pin php "envelope sender: <alice@example.net>" \
    "recipient: <bob@example.org>" "recipient: <carol@example.org>" \
    "message: N octets" "header change: added From: alice@example.net" \
    "header change: added Date" "header change: added Message-ID"

pretend fail2ban 'Subject: [Fail2Ban] sshd: banned\n\nbanned\n' \
    -f "fail2ban@vm" "root@localhost"
pin fail2ban "envelope sender: <alice@example.net>" \
    "recipient: <root@localhost>" "message: N octets" \
    "header change: rewrote sender fail2ban@vm -> alice@example.net" \
    "header change: added From: alice@example.net" \
    "header change: added Date" "header change: added Message-ID"

pretend null-sender 'Subject: bounce\n\nx\n' -f '<>' bob@example.org
check_grep "-f '<>': the null sender" '^envelope sender: <>$' \
    "$T/null-sender.got"

pretend override-off 'Subject: x\n\nx\n' --allow-from-override=off \
    -f other@example.org bob@example.org
check_grep "--allow-from-override=off: -f ignored" \
    '^envelope sender: <alice@example.net>$' "$T/override-off.got"

# Without -i a lone dot ends the message; with -i it is a line.
size() {	# ARGS...: the message size --pretend reports
	printf 'Subject: x\n\nbefore\n.\nafter\n' |
	    "$SMARTHOST" -C "$CONF" -P "$@" bob@example.org 2>&1 |
	    sed -n 's/^message: \([0-9]*\) octets.*/\1/p'
}
check_eq "a lone dot ends the message without -i; with -i it stays" \
    $(( $(size -i) - $(size) )) 10

# Option syntax: grouped flags, -o sub-options, --directive=value.
printf 'To: bob@example.org\n\nx\n' | "$SMARTHOST" -C "$CONF" -ti -P \
    --port=2525 --tls-starttls=off >"$T/grouped.out" 2>&1
check_grep "-ti: recipients from the header" '^recipient: <bob@example.org>$' \
    "$T/grouped.out"
check_grep "--port=2525 overrides the file" '^port 2525$' "$T/grouped.out"
check_grep "--tls-starttls=off: '-' spelling" '^tls_starttls off$' \
    "$T/grouped.out"
check_grep "--pretend shows no password" '^password <set>$' \
    "$T/grouped.out"
check_nogrep "--pretend never prints the password" 'not-a-real-secret' \
    "$T/grouped.out"

# The command line overrides the file and the environment, for the
# password's source too: --passwordeval replaces a password set below.
printf 'Subject: x\n\nx\n' | SMARTHOST_PASSWORD=env-pw "$SMARTHOST" \
    -C "$CONF" -P --passwordeval='echo from-cmdline' bob@example.org \
    >"$T/peval.out" 2>&1
check_grep "--passwordeval beats password in the file: the command" \
    '^passwordeval echo from-cmdline$' "$T/peval.out"
check_grep "--passwordeval beats password in the file and environment" \
    '^password <not set>$' "$T/peval.out"

# A misspelt SMARTHOST_ variable: one warning naming the right one, in a
# send and in a queue run (which loads the configuration more than
# once); the program's own variables never warn.
printf 'Subject: x\n\nx\n' | SMARTHOST_PROT=2525 SMARTHOST_FROM=a@b.example \
    "$SMARTHOST" -C "$CONF" -P bob@example.org >"$T/envtypo.out" 2>&1
check_eq "SMARTHOST_PROT: one warning" "$(grep -c 'warning: SMARTHOST_' \
    "$T/envtypo.out")" 1
check_grep "SMARTHOST_PROT: names SMARTHOST_PORT" \
    'SMARTHOST_PROT is not a variable smarthost knows and is ignored: did you mean SMARTHOST_PORT?' \
    "$T/envtypo.out"
check_grep "SMARTHOST_PROT: ignored" '^port 587$' "$T/envtypo.out"
DEAD=$(free_port)
cat >"$T/two.conf" <<EOC
account default
host 127.0.0.1
port $DEAD
tls_starttls off
from alice@example.net
tls_session_cache off
queue_dir $T/q2
dead_letter $T/dead2
account other : default
EOC
printf 'Subject: x\n\nx\n' | "$SMARTHOST" -C "$T/two.conf" -a other \
    bob@example.org >"$T/queued.out" 2>&1
check_eq "a message queued for account other (relay down): exit 0" "$?" 0
SMARTHOST_PROT=2525 "$SMARTHOST" -C "$T/two.conf" -q >"$T/envtypo-q.out" 2>&1
check_eq "SMARTHOST_PROT with -q over two accounts: one warning" \
    "$(grep -c 'warning: SMARTHOST_PROT' "$T/envtypo-q.out")" 1
printf 'Subject: x\n\nx\n' | SMARTHOST_PASSWORD_FILE=/nonexistent \
    SMARTHOST_MAILNAME_FILE=/nonexistent SMARTHOST_PORT=2525 \
    "$SMARTHOST" -C "$CONF" -P bob@example.org >"$T/envok.out" 2>&1
check_nogrep "known SMARTHOST_ variables: no warning" 'warning' \
    "$T/envok.out"

# A word after -- that looks like an option is a recipient.
printf 'Subject: x\n\nx\n' | (cd "$T" && "$SMARTHOST" -C "$CONF" -P -i -- \
    -X/tmp/x) >"$T/dash.out" 2>&1
check_grep "-- then -X...: a recipient" '^recipient: <-X/tmp/x@example.net>$' \
    "$T/dash.out"

# Refusals: exit 64 with the option named, before reading anything.
refuse() {	# NAME PATTERN ARGS...
	local n=$1 pat=$2
	shift 2
	"$SMARTHOST" -C "$CONF" "$@" </dev/null >"$T/$n.out" 2>&1
	check_eq "$n: exit 64" "$?" 64
	check_grep "$n: says why" "$pat" "$T/$n.out"
}
refuse unknown-letter 'unknown option -x' -x bob@example.org
refuse unknown-long 'unknown option --nope=1' --nope=1 bob@example.org
refuse no-password-option 'there is no --password' --password=x
refuse mode-bd 'unsupported mode -bd' -bd
refuse bad-body "-B takes 7BIT or 8BITMIME, not '9BIT'" -B 9BIT x@y.z
refuse missing-value 'option -f needs a value' -f
refuse cr-in-from "invalid address 'a?b@example.org'\|control characters" \
    -f "$(printf 'a\rb@example.org')" bob@example.org
refuse lf-in-rcpt 'control characters' "$(printf 'bob@example.org\nRCPT')"
refuse lf-in-name 'control characters' -F "$(printf 'x\nBcc: y')" b@c.d
refuse no-rcpt 'no recipients' -i </dev/null

# Modes by program name, and the informational options.
ln -s "$SMARTHOST" "$T/mailq"
ln -s "$SMARTHOST" "$T/newaliases"
ln -s "$SMARTHOST" "$T/send-mail"
"$T/mailq" -C "$CONF" >"$T/mailq.out" 2>&1
check_eq "mailq by name: the queue" "$(cat "$T/mailq.out")" \
    "Mail queue is empty"
"$T/newaliases" >"$T/newaliases.out" 2>&1
check_eq "newaliases by name: exit 0, silent" "$?:$(cat "$T/newaliases.out")" \
    "0:"
printf 'Subject: x\n\nx\n' | "$T/send-mail" -C "$CONF" -P -i root \
    >"$T/send-mail.out" 2>&1
check_grep "send-mail by name: send mode" '^recipient: <root@example.net>$' \
    "$T/send-mail.out"
"$SMARTHOST" --version >"$T/version.out"
check_grep "--version: mbedTLS 3.6" '^TLS library: mbedTLS 3\.[6-9]' \
    "$T/version.out"
check_grep "--version: GNU SASL" '^SASL library: GNU SASL 2\.' \
    "$T/version.out"
check_grep "--version: SASL mechanisms" 'SCRAM-SHA-256.*XOAUTH2' \
    "$T/version.out"
"$SMARTHOST" --help >"$T/help.out"
check_grep "--help: the directives as options" ' --tls-fingerprint ' \
    "$T/help.out"

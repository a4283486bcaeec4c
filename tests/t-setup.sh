#!/bin/bash
# SPDX-License-Identifier: ISC
# Setup in one minute: smarthost --providers, --import-postfix on the
# main.cf files of a German Postfix smarthost guide (exact output, and
# one imported configuration sending through the real Postfix test
# relay), and --configure driven
# through a pseudo-terminal (tests/setup/pty-drive) against the scripted
# test relay: no echo of the password, a candidate proven by a real
# login before the 0600 file is written, nothing written on failure.
ASAN_TOO=1
. tests/lib.sh

if ! "$SMARTHOST" --providers >"$T/providers" 2>"$T/providers.err"; then
	skip "setup commands # this smarthost has no --providers yet"
	exit 0
fi

# --- --providers ---------------------------------------------------------
check_eq "--providers: header" "$(head -1 "$T/providers")" \
    "PROVIDER     HOST:PORT                          TLS      NOTE"
check_grep "--providers: gmx row" \
    '^gmx          mail.gmx.net:587                   STARTTLS sender must be the login' \
    "$T/providers"
check_grep "--providers: every row has a source" \
    '^             source: https://docs.aws.amazon.com/ses/' "$T/providers"

# --- --import-postfix on the guide's files -------------------------------
for d in gmx arcor 1und1 posteo gmail hard; do
	"$SMARTHOST" --import-postfix "tests/setup/$d" >"$T/$d.conf" \
	    2>"$T/$d.err"
	check_eq "import $d: exit 0" "$?" 0
	check "import $d: output is tests/setup/$d/expected.conf" \
	    cmp -s "$T/$d.conf" "tests/setup/$d/expected.conf"
	check "import $d: nothing on stderr" test ! -s "$T/$d.err"
done
"$SMARTHOST" --import-postfix "$T/nosuch" >"$T/none.out" 2>"$T/none.err"
check_eq "import without main.cf: exit 66" "$?" 66
check "import without main.cf: nothing on stdout" test ! -s "$T/none.out"

# --- an imported configuration sends through the Postfix test relay ------
relay_send() {
	mkdir -p "$T/pf"
	cat >"$T/pf/main.cf" <<-EOF
	# A null client of the test relay, as the guide would set it up.
	inet_interfaces = loopback-only
	relayhost = [$RELAY_HOST]:$RELAY_SUBMISSION
	smtp_sasl_auth_enable = yes
	smtp_sasl_password_maps = hash:\$config_directory/sasl_password
	smtp_sasl_security_options = noanonymous
	smtp_tls_security_level = encrypt
	smtp_tls_CAfile = $RELAY_CA
	sender_canonical_maps = hash:\$config_directory/sender_canonical
	EOF
	echo "[$RELAY_HOST]:$RELAY_SUBMISSION $RELAY_USER:$RELAY_PASS" \
	    >"$T/pf/sasl_password"
	printf 'root %s\nnobody %s\n' "$RELAY_USER" "$RELAY_USER" \
	    >"$T/pf/sender_canonical"
	(umask 077; "$SMARTHOST" --import-postfix "$T/pf" >"$T/relay.conf" \
	    2>"$T/relay.err")
	check_eq "relay import: exit 0" "$?" 0
	check_nogrep "relay import: no password on stderr" "$RELAY_PASS" \
	    "$T/relay.err"
	check_grep "relay import: user" "^user $RELAY_USER\$" "$T/relay.conf"
	check_grep "relay import: from the canonical map" \
	    "^from $RELAY_USER\$" "$T/relay.conf"
	{
		echo "tls_session_cache off"
		echo "queue_dir $T/queue"
		echo "dead_letter $T/dead.letter"
	} >>"$T/relay.conf"
	tag=tsetup$$$RANDOM
	printf 'To: %s\nSubject: imported\nX-Test-Id: %s\n\nfrom main.cf\n' \
	    "$RELAY_USER2" "$tag" |
	    "$SMARTHOST" -C "$T/relay.conf" -f root "$RELAY_USER2" \
	    >"$T/relay-send.out" 2>"$T/relay-send.err"
	check_eq "relay send with the imported config: exit 0" "$?" 0
	for _ in $(seq 300); do
		f=$(grep -l "^X-Test-Id: $tag\$" "$RELAY_SINK"/* 2>/dev/null |
		    head -1)
		[ -n "$f" ] && break
		sleep 0.1
	done
	if [ -n "$f" ]; then
		ok "relay send: arrived in the sink"
		check_grep "relay send: sender rewritten to the login" \
		    "^X-Mail-Args: <$RELAY_USER>" "$f"
	else
		notok "relay send: arrived in the sink"
		sed 's/^/#   | /' "$T/relay-send.err"
	fi
}
if [ "$(id -u)" -ne 0 ]; then
	skip "import sends through the Postfix relay # needs root (Postfix)"
elif ! tests/postfix-relay start >"$T/relay-start.log" 2>&1; then
	notok "the Postfix test relay starts"
	sed 's/^/#   | /' "$T/relay-start.log"
else
	eval "$(tests/postfix-relay env)"
	relay_send
fi

# --- --configure through a pseudo-terminal -------------------------------
USER_ADDR=alice@example.test
PASS='s3cret #pass'

srv() {	# NAME [testsrv options]: a test relay for one connection
	rm -rf "$T/$1"; mkdir -p "$T/$1/mail"
	bg "$TESTSRV" -p 0 -w "$T/$1/port" -t "$T/$1/tr" -d "$T/$1/mail" \
	    -n 1 -x 30 -u "$2:$PASS" -T -c "$CERTS/server.pem" \
	    -k "$CERTS/server.key" -e "AUTH PLAIN LOGIN,PIPELINING"
	for _ in $(seq 200); do [ -s "$T/$1/port" ] && break; sleep 0.02
	done
	PORT=$(cat "$T/$1/port")
}

# configure NAME ADDRESS PROMPT=ANSWER...: run --configure in a pty.
configure() {
	local name=$1 addr=$2; shift 2
	mkdir -p "$T/home-$name"
	HOME=$T/home-$name XDG_CONFIG_HOME= tests/setup/pty-drive \
	    "$T/$name.tty" "$@" -- "$SMARTHOST" --configure "$addr"
	RC=$?
	CONF=$T/home-$name/.config/smarthost/config
}

srv manual "$USER_ADDR"
configure manual "$USER_ADDR" "Relay host: =127.0.0.1" "TLS: =implicit" \
    "Port [465]: =$PORT" "or system [system]: =$CERTS/ca.pem" \
    "User name [$USER_ADDR]: =" "Password (not shown): =$PASS"
wait "$!" 2>/dev/null
check_eq "configure by hand: exit 0" "$RC" 0
check_eq "configure by hand: the file as answered" "$(cat "$CONF")" \
"# written by smarthost --configure $USER_ADDR
account default
host 127.0.0.1
port $PORT
tls_starttls off
tls_trust_file $CERTS/ca.pem
user $USER_ADDR
password \"$PASS\"
from $USER_ADDR"
check_eq "configure by hand: mode 0600" "$(stat -c %a "$CONF")" 600
check_grep "configure by hand: echo off for the password" \
    'Password (not shown): \[echo off\]' "$T/manual.tty"
check_nogrep "configure by hand: the password never shown" "s3cret" \
    "$T/manual.tty"
check_grep "configure by hand: login tested first" \
    "^Authentication as $USER_ADDR: works" "$T/manual.tty"
check_grep "configure by hand: prints what it wrote" \
    '^password <hidden>' "$T/manual.tty"
check_grep "configure by hand: the relay saw the login" '^C .*AUTH PLAIN' \
    "$T/manual/tr"

# A preset domain: no relay questions; the environment points the test
# login at the scripted relay instead of GMX.
srv preset max@gmx.de
SMARTHOST_HOST=127.0.0.1 SMARTHOST_PORT=$PORT SMARTHOST_TLS_STARTTLS=off \
SMARTHOST_TLS_TRUST_FILE=$CERTS/ca.pem \
    configure preset max@gmx.de "User name [max@gmx.de]: =" \
    "Password (not shown): =$PASS"
wait "$!" 2>/dev/null
check_eq "configure preset: exit 0" "$RC" 0
check_grep "configure preset: named" '^Preset gmx: mail.gmx.net port 587' \
    "$T/preset.tty"
check_eq "configure preset: the file" "$(grep -v '^password' "$CONF")" \
"# written by smarthost --configure max@gmx.de
account default
provider gmx
user max@gmx.de
from max@gmx.de"

# A wrong password: nothing is written.
srv wrong "$USER_ADDR"
configure wrong "$USER_ADDR" "Relay host: =127.0.0.1" "TLS: =implicit" \
    "Port [465]: =$PORT" "or system [system]: =$CERTS/ca.pem" \
    "User name [$USER_ADDR]: =" "Password (not shown): =wrong"
wait "$!" 2>/dev/null
check_eq "configure wrong password: exit 77" "$RC" 77
check "configure wrong password: no file" test ! -e "$CONF"
check_grep "configure wrong password: says so" 'nothing was written' \
    "$T/wrong.tty"
check "configure wrong password: no candidate left" \
    test -z "$(ls -A "$T/home-wrong/.config/smarthost")"

# An existing file is kept unless the user says yes.
mkdir -p "$T/home-keep/.config/smarthost"
echo "# mine" >"$T/home-keep/.config/smarthost/config"
configure keep "$USER_ADDR" "Replace it? (y/n) [n]: ="
check_eq "configure over a file: exit 73" "$RC" 73
check_eq "configure over a file: kept" \
    "$(cat "$T/home-keep/.config/smarthost/config")" "# mine"

# A closed provider is refused before any question.
configure closed someone@arcor.de
check_eq "configure arcor: exit 78" "$RC" 78
check_grep "configure arcor: the note" 'Arcor no longer exists' \
    "$T/closed.tty"

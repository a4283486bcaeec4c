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
	(umask 077; "$SMARTHOST" --import-postfix "tests/setup/$d" \
	    >"$T/$d.conf" 2>"$T/$d.err")
	check_eq "import $d: exit 0" "$?" 0
	check "import $d: output is tests/setup/$d/expected.conf" \
	    cmp -s "$T/$d.conf" "tests/setup/$d/expected.conf"
	check "import $d: nothing on stderr" test ! -s "$T/$d.err"
done
"$SMARTHOST" --import-postfix "$T/nosuch" >"$T/none.out" 2>"$T/none.err"
check_eq "import without main.cf: exit 66" "$?" 66
check "import without main.cf: nothing on stdout" test ! -s "$T/none.out"

# --- --import-postfix -o FILE: 0600, atomic, never over a foreign file --
mkdir -p "$T/out"
O=$T/out/smarthost.conf
(umask 022; "$SMARTHOST" --import-postfix tests/setup/gmx -o "$O" \
    >"$T/o.out" 2>"$T/o.err")
check_eq "import -o: exit 0" "$?" 0
check "import -o: the file is expected.conf" \
    cmp -s "$O" tests/setup/gmx/expected.conf
check_eq "import -o: mode 0600 whatever the umask" "$(stat -c %a "$O")" 600
check "import -o: nothing on stdout" test ! -s "$T/o.out"
check "import -o: nothing on stderr" test ! -s "$T/o.err"
check_eq "import -o: no temporary file left" "$(ls -A "$T/out")" \
    "smarthost.conf"
check "import -o: the file loads" "$SMARTHOST" -C "$O" -P root \
    </dev/null >/dev/null 2>&1

# An earlier import of ours is replaced (the long form, the other order).
"$SMARTHOST" --output="$O" --import-postfix tests/setup/posteo \
    >/dev/null 2>"$T/o2.err"
check_eq "import --output= over an earlier import: exit 0" "$?" 0
check "import --output=: replaced by the new import" \
    cmp -s "$O" tests/setup/posteo/expected.conf
check_eq "import --output=: still 0600" "$(stat -c %a "$O")" 600

# A file the import did not write is kept, whoever owns it.
printf 'account default\nhost mine.example\n' >"$T/out/mine.conf"
"$SMARTHOST" --import-postfix tests/setup/gmx -o "$T/out/mine.conf" \
    >/dev/null 2>"$T/o3.err"
check_eq "import -o over a hand-written file: exit 73" "$?" 73
check_eq "import -o over a hand-written file: kept" \
    "$(cat "$T/out/mine.conf")" "$(printf 'account default\nhost mine.example')"
check_grep "import -o over a hand-written file: says so" \
    'mine.conf exists and is not an earlier --import-postfix output' \
    "$T/o3.err"

# A symbolic link is not followed, not even to an earlier import.
ln -s "$O" "$T/out/link.conf"
cp "$O" "$T/o.before"
"$SMARTHOST" --import-postfix tests/setup/gmx -o "$T/out/link.conf" \
    >/dev/null 2>"$T/o4.err"
check_eq "import -o to a symlink: exit 73" "$?" 73
check "import -o to a symlink: its target unchanged" \
    cmp -s "$O" "$T/o.before"
check "import -o to a symlink: still a symlink" test -L "$T/out/link.conf"

# A failed import writes nothing and leaves nothing behind.
"$SMARTHOST" --import-postfix "$T/nosuch" -o "$T/out/none.conf" \
    >/dev/null 2>&1
check_eq "import -o without main.cf: exit 66" "$?" 66
check "import -o without main.cf: no file" test ! -e "$T/out/none.conf"
check_eq "import -o without main.cf: no temporary file left" \
    "$(ls -A "$T/out" | tr '\n' ' ')" "link.conf mine.conf smarthost.conf "

# -o before --import-postfix is sendmail's -o: refused, not ignored;
# --output without --import-postfix too.
"$SMARTHOST" -o "$T/out/early.conf" --import-postfix tests/setup/gmx \
    >"$T/o5.out" 2>"$T/o5.err"
check_eq "-o FILE before --import-postfix: exit 64" "$?" 64
check "-o FILE before --import-postfix: nothing printed" test ! -s "$T/o5.out"
check_grep "-o FILE before --import-postfix: says where it goes" \
    'write -o FILE after --import-postfix' "$T/o5.err"
echo | "$SMARTHOST" --output="$T/out/x.conf" -P root >/dev/null 2>&1
check_eq "--output without --import-postfix: exit 64" "$?" 64

# Standard output redirected into a file others can read: a warning
# (the next run would refuse that file); none for a 0600 file or a pipe.
(umask 022; "$SMARTHOST" --import-postfix tests/setup/gmx \
    >"$T/out/open.conf" 2>"$T/o6.err")
check_eq "import > 0644 file: exit 0" "$?" 0
check_grep "import > 0644 file: warns" \
    'standard output is a file that others can read (mode 644)' "$T/o6.err"
check_eq "import > 0644 file: warns once" "$(grep -c warning "$T/o6.err")" 1
(umask 077; "$SMARTHOST" --import-postfix tests/setup/gmx \
    >"$T/out/closed.conf" 2>"$T/o7.err")
check "import > 0600 file: no warning" test ! -s "$T/o7.err"
"$SMARTHOST" --import-postfix tests/setup/gmx 2>"$T/o8.err" | cat >/dev/null
check "import | pipe: no warning" test ! -s "$T/o8.err"

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
if [ -n "${NO_POSTFIX:-}" ]; then
	skip "import sends through the Postfix relay # NO_POSTFIX is set"
elif [ "$(id -u)" -ne 0 ]; then
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

# Root is asked first which file to write: these runs answer "user".
ASUSER=()
[ "$(id -u)" -eq 0 ] && ASUSER=("(system/user) [system]: =user")

srv manual "$USER_ADDR"
configure manual "$USER_ADDR" "${ASUSER[@]}" "Relay host: =127.0.0.1" \
    "TLS: =implicit" \
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
    configure preset max@gmx.de "${ASUSER[@]}" "User name [max@gmx.de]: =" \
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
configure wrong "$USER_ADDR" "${ASUSER[@]}" "Relay host: =127.0.0.1" \
    "TLS: =implicit" \
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
configure keep "$USER_ADDR" "${ASUSER[@]}" "Replace it? (y/n) [n]: ="
check_eq "configure over a file: exit 73" "$RC" 73
check_eq "configure over a file: kept" \
    "$(cat "$T/home-keep/.config/smarthost/config")" "# mine"

# A closed provider is refused before any question.
configure closed someone@arcor.de
check_eq "configure arcor: exit 78" "$RC" 78
check_grep "configure arcor: says it was discontinued" \
    "provider arcor: discontinued: Arcor's mail service ended" \
    "$T/closed.tty"

# Root configures the machine: the system file by default (here
# SMARTHOST_SYSCONF points it into the test directory), not
# /root/.config/smarthost/config.
if [ "$(id -u)" -ne 0 ]; then
	skip "configure as root writes the system file # needs root"
else
	mkdir -p "$T/etc"
	SMARTHOST_SYSCONF=$T/etc/smarthost.conf
	srv system "$USER_ADDR"
	configure system "$USER_ADDR" "(system/user) [system]: =" \
	    "Relay host: =127.0.0.1" "TLS: =implicit" "Port [465]: =$PORT" \
	    "or system [system]: =$CERTS/ca.pem" \
	    "User name [$USER_ADDR]: =" "Password (not shown): =$PASS"
	wait "$!" 2>/dev/null
	check_eq "configure as root: exit 0" "$RC" 0
	check_grep "configure as root: offers both files" \
	    "Write the system configuration $T/etc/smarthost.conf, or root's own $T/home-system/.config/smarthost/config" \
	    "$T/system.tty"
	check_grep "configure as root: the system file" \
	    "^host 127.0.0.1\$" "$T/etc/smarthost.conf"
	check_eq "configure as root: mode 0600" \
	    "$(stat -c %a "$T/etc/smarthost.conf")" 600
	check "configure as root: no file in root's home" \
	    test ! -e "$CONF"
	check_grep "configure as root: says who can read it" \
	    "Only root can read it" "$T/system.tty"

	# A setgid install's root:GROUP 0640 file keeps group and mode.
	grp=$(getent group nogroup >/dev/null && echo nogroup || echo daemon)
	chgrp "$grp" "$T/etc/smarthost.conf"
	chmod 640 "$T/etc/smarthost.conf"
	srv system2 "$USER_ADDR"
	configure system2 "$USER_ADDR" "(system/user) [system]: =system" \
	    "Replace it? (y/n) [n]: =y" \
	    "Relay host: =127.0.0.1" "TLS: =implicit" "Port [465]: =$PORT" \
	    "or system [system]: =$CERTS/ca.pem" \
	    "User name [$USER_ADDR]: =" "Password (not shown): =$PASS"
	wait "$!" 2>/dev/null
	check_eq "configure as root, replacing: exit 0" "$RC" 0
	check_eq "configure as root, replacing: group and mode kept" \
	    "$(stat -c '%G %a' "$T/etc/smarthost.conf")" "$grp 640"
	check_grep "configure as root, replacing: the new port" \
	    "^port $PORT\$" "$T/etc/smarthost.conf"

	# "user" still writes root's own file.
	srv rootuser "$USER_ADDR"
	configure rootuser "$USER_ADDR" "(system/user) [system]: =user" \
	    "Relay host: =127.0.0.1" "TLS: =implicit" "Port [465]: =$PORT" \
	    "or system [system]: =$CERTS/ca.pem" \
	    "User name [$USER_ADDR]: =" "Password (not shown): =$PASS"
	wait "$!" 2>/dev/null
	check_eq "configure as root, user: exit 0" "$RC" 0
	check_grep "configure as root, user: root's own file" \
	    "^port $PORT\$" "$CONF"
	SMARTHOST_SYSCONF=/nonexistent
fi

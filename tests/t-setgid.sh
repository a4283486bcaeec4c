#!/bin/bash
# SPDX-License-Identifier: ISC
# The setgid install (SPEC 2): a system-wide password in a file only the
# group can read, used by callers who cannot read it, and never sent
# anywhere else.  build/sgid/smarthost is installed setgid to a test
# group with its system file and queue under SGID_ROOT, and run as two
# unprivileged test users (numeric ids, nothing added to /etc/passwd).
. tests/lib.sh

BIN=$TOP/build/sgid/smarthost
# The Makefile's SGID_ROOT, compiled into BIN: this checkout's.
R=$(cat "$TOP/build/sgid/root" 2>/dev/null)
GID=64200 AU=64201 BU=64202		# the group; alice and bob
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null; then
	skip "setgid install # needs root and setpriv"
	exit 0
fi
[ -x "$BIN" ] && [[ $R == /run/smarthost-sgid-test-* ]] ||
    { notok "build/sgid/smarthost and build/sgid/root are built"; exit 1; }

# The system file and queue live under root's /run (no user can plant
# anything there); the binary in a fresh directory of a file system
# that honours the setgid bit.
rm -rf "$R"
mkdir -p "$R/etc" "$R/spool" "$R/alice" "$R/bob"
chmod 0755 "$R" "$R/etc"
BD=$(mktemp -d /var/tmp/smarthost-sgid.XXXXXX) && chmod 0755 "$BD"
install -m 2755 -g "$GID" "$BIN" "$BD/smarthost"
install -m 0644 "$CERTS/ca.pem" "$R/ca.pem"
chown root:"$GID" "$R/spool"; chmod 2770 "$R/spool"
chown "$AU:$AU" "$R/alice"; chown "$BU:$BU" "$R/bob"
chmod 0700 "$R/alice" "$R/bob"
trap 'lib_cleanup; [ -n "${KEEP:-}" ] || rm -rf "$R" "$BD"' EXIT

CAPS="AUTH PLAIN,PIPELINING,8BITMIME"
srv() {	# NAME COUNT [testsrv options]
	local name=$1 count=$2
	shift 2
	testsrv "$name" -n "$count" -T -c "$CERTS/server.pem" \
	    -k "$CERTS/server.key" -e "$CAPS" "$@"
}

# sysconf PORT [PORT-of-account-later]: the system file, root:GID 0640.
sysconf() {
	cat >"$R/etc/smarthost.conf" <<EOF
defaults
tls_starttls off
tls_trust_file $R/ca.pem
timeout 2
logfile ~/smarthost.log

account default
host 127.0.0.1
port $1
user $USER
password $PASS
from $USER

account later
host 127.0.0.1
port ${2:-$1}
user $USER
password $PASS
from $USER

account eval
host 127.0.0.1
port $1
user $USER
passwordeval "id -G >\$HOME/eval-groups; echo $PASS"
from $USER
EOF
	chown root:"$GID" "$R/etc/smarthost.conf"
	chmod 0640 "$R/etc/smarthost.conf"
}

# as USER CMD...: run CMD as alice or bob (their own uid and gid only).
as() {
	local u=$1 id
	shift
	id=$AU; [ "$u" = bob ] && id=$BU
	setpriv --reuid="$id" --regid="$id" --clear-groups \
	    env -i PATH=/usr/bin:/bin HOME="$R/$u" USER="$u" "$@"
}
mail_to() {	# USER NAME [smarthost args]: a message; sets RC
	local u=$1 name=$2
	shift 2
	printf 'Subject: %s\n\nbody of %s\n' "$name" "$name" |
	    as "$u" "$BD/smarthost" "$@" carol@example.org \
	    >"$T/$name.out" 2>"$T/$name.err"
	RC=$?
}
entries() { ls "$R/spool" | grep -cv '\.status$'; }
delivered() { ls "$MAIL"/*.eml 2>/dev/null | wc -l; }

# 1. The install: what a user can and cannot do without the binary.
srv relay 1
sysconf "$PORT"
as alice cat "$R/etc/smarthost.conf" >/dev/null 2>&1
check_eq "alice cannot read it (cat fails)" "$?" 1
as alice ls "$R/spool" >/dev/null 2>&1
check_eq "alice cannot list the system queue" "$?" 2
# Before any configuration is read the group is gone already: the
# Postfix import cannot read a group-only Postfix setup for her.
cp -r "$TOP/tests/setup/gmx" "$R/etc/postfix"
chown -R root:"$GID" "$R/etc/postfix"
chmod 0750 "$R/etc/postfix"; chmod 0640 "$R/etc/postfix"/*
as alice "$BD/smarthost" --import-postfix "$R/etc/postfix" >"$T/imp.out" \
    2>"$T/imp.err"
check_eq "--import-postfix of a group-only setup: exit 66" "$?" 66
check_grep "--import-postfix: permission denied" 'Permission denied' \
    "$T/imp.err"
check_nogrep "--import-postfix: no password printed" '^password' \
    "$T/imp.out"

# 2. Through the binary the system account works for her.
mail_to alice plain
wait "$SRV" 2>/dev/null
check_eq "alice sends through the system account: exit 0" "$RC" 0
check_grep "the relay saw AUTH PLAIN with the system login" \
    "^AUTHOK PLAIN $USER" "$TR"
check_eq "the relay received the message" "$(delivered)" 1
check_eq "nothing left in the system queue" "$(entries)" 0
check_eq "her log file is hers, not the group's" \
    "$(stat -c '%u:%g' "$R/alice/smarthost.log")" "$AU:$AU"
check_nogrep "no password in her log file" "$PASS" "$R/alice/smarthost.log"
check "no TLS session of the system account is kept in her cache" \
    test ! -e "$R/alice/.cache/smarthost/tls-sessions"

# 3. A system account's passwordeval would run in her name, where she
#    can watch it (/proc/PID/cmdline): refused, nothing sent.  Her own
#    account's passwordeval runs in her name, with no trace of the group.
srv evalrelay 1
sysconf "$PORT"
mail_to alice evalsys -a eval
check_eq "system passwordeval for a user: kept (exit 0)" "$RC" 0
check_grep "system passwordeval: says to put the password in the file" \
    'cannot keep the password from the users' "$T/evalsys.err"
check "system passwordeval: never ran" test ! -e "$R/alice/eval-groups"
check_eq "system passwordeval: the message waits in the queue" \
    "$(entries)" 1
rm -f "$R/spool"/2*
printf 'account mine\nhost 127.0.0.1\nport %s\n%s\n%s\n%s\n%s\n' "$PORT" \
    "tls_starttls off" "tls_trust_file $R/ca.pem" "user $USER" \
    "passwordeval \"id -G >\$HOME/eval-groups; echo $PASS\"" \
    >"$R/alice/.smarthostrc"
chown "$AU:$AU" "$R/alice/.smarthostrc"; chmod 600 "$R/alice/.smarthostrc"
mail_to alice evalmsg -a mine -f "$USER"
wait "$SRV" 2>/dev/null
check_eq "her own passwordeval account: exit 0" "$RC" 0
check_eq "her passwordeval ran with her groups only" \
    "$(cat "$R/alice/eval-groups" 2>/dev/null)" "$AU"
check_eq "its output file is hers" \
    "$(stat -c '%u:%g' "$R/alice/eval-groups" 2>/dev/null)" "$AU:$AU"
rm -f "$R/alice/.smarthostrc"
# The system account's command may hold the password: --pretend hides it.
as alice "$BD/smarthost" -a eval --pretend x@example.org </dev/null \
    >"$T/pretend.out" 2>&1
check_grep "--pretend shows that a system passwordeval is set" \
    '^passwordeval <set, in the system file>' "$T/pretend.out"
check_nogrep "--pretend does not show her the command or password" \
    "id -G\|$PASS" "$T/pretend.out"
"$BD/smarthost" -a eval -f "$USER" --pretend x@example.org </dev/null \
    >"$T/pretend-root.out" 2>&1
check_grep "root's --pretend shows the command" '^passwordeval id -G' \
    "$T/pretend-root.out"
# ~ in the system file's trust, certificate and key would be her HOME.
cp -p "$R/etc/smarthost.conf" "$T/sys.keep"
sed -i "s|^tls_trust_file .*|tls_trust_file ~/ca.pem|" "$R/etc/smarthost.conf"
mail_to alice tilde
check_eq "~ in the system file's tls_trust_file: exit 78 for her" "$RC" 78
check_grep "~: says to write the full path" 'write the full path' \
    "$T/tilde.err"
"$BD/smarthost" -f "$USER" --pretend x@example.org </dev/null \
    >"$T/tilde-root.out" 2>&1
check_eq "~ in the system file: fine for root" "$?" 0
# Without a checked certificate to a port any user could take over.
printf 'account default\nhost 127.0.0.1\nport 2525\ntls off\nuser u\n%s\n%s\n' \
    "password $PASS" "from $USER" >"$R/etc/smarthost.conf"
mail_to alice plainport
check_eq "system password in clear to port 2525: kept for root (exit 0)" \
    "$RC" 0
check_grep "clear to a high port: says why" 'any user can listen on a port' \
    "$T/plainport.err"
rm -f "$R/spool"/2*
cp -p "$T/sys.keep" "$R/etc/smarthost.conf"
# --configure writes her own file and tests it: not a -C of hers.
install -m 0755 "$TOP/tests/setup/pty-drive" "$BD/pty-drive"
srv configure 1
as alice python3 "$BD/pty-drive" "$R/alice/conf.tty" \
    "Relay host: =127.0.0.1" "TLS: =implicit" "Port [465]: =$PORT" \
    "or system [system]: =$R/ca.pem" "User name [$USER]: =" \
    "Password (not shown): =$PASS" -- "$BD/smarthost" --configure "$USER" \
    >/dev/null 2>&1
RC=$?
wait "$SRV" 2>/dev/null
check_eq "--configure in a setgid install: exit 0" "$RC" 0
check_grep "--configure: the relay saw her login" "^AUTHOK PLAIN $USER" \
    "$TR"
check "--configure: her file written" \
    test -s "$R/alice/.config/smarthost/config"
rm -rf "$R/alice/.config"

# 4. Overrides that could send the system password elsewhere: refused
#    before any connection (the relay would show one).
srv evil 1
EVIL=$PORT EVILTR=$TR EVILSRV=$SRV
printf 'account default\nhost 127.0.0.1\nport %s\n' "$EVIL" \
    >"$R/alice/other.conf"
chown "$AU:$AU" "$R/alice/other.conf"; chmod 600 "$R/alice/other.conf"
refused() {	# NAME CODE PATTERN [env...] -- [args...]
	local name=$1 code=$2 pat=$3 envs=()
	shift 3
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	printf 'Subject: x\n\nx\n' | setpriv --reuid="$AU" --regid="$AU" \
	    --clear-groups env -i PATH=/usr/bin:/bin HOME="$R/alice" \
	    USER=alice "${envs[@]}" "$BD/smarthost" "$@" carol@example.org \
	    >"$T/r.out" 2>"$T/r.err"
	check_eq "$name: exit $code" "$?" "$code"
	check_grep "$name: says why" "$pat" "$T/r.err"
}
refused "-C" 64 '-C cannot be used: smarthost is installed setgid' \
    -- -C "$R/alice/other.conf"
refused "--host" 64 '--host cannot be used: .*only root' -- --host=127.0.0.1
refused "--port" 64 '--port cannot be used' -- --port="$EVIL"
refused "--passwordeval" 64 '--passwordeval cannot be used' \
    -- '--passwordeval=echo x'
refused "--tls-fingerprint" 64 'cannot be used' \
    -- --tls-fingerprint=AA:BB
refused "-X" 64 '-X cannot be used' -- -X /tmp/x.log
refused "--from" 64 '--from cannot be used: .*sender rules' \
    -- --from=boss@example.org
refused "--allow-from-override" 64 'sender rules' \
    -- --allow-from-override=on
refused "SMARTHOST_ALLOW_FROM_OVERRIDE" 78 'sender rules' \
    SMARTHOST_ALLOW_FROM_OVERRIDE=on --
refused "SMARTHOST_MAILDOMAIN" 78 'sender rules' \
    SMARTHOST_MAILDOMAIN=example.net --
refused "SMARTHOST_RELAY" 78 'SMARTHOST_RELAY cannot be used' \
    "SMARTHOST_RELAY=smtps://a@127.0.0.1:$EVIL" --
refused "SMARTHOST_HOST" 78 'SMARTHOST_HOST cannot be used' \
    SMARTHOST_HOST=127.0.0.1 --
refused "SMARTHOST_PORT" 78 'SMARTHOST_PORT cannot be used' \
    "SMARTHOST_PORT=$EVIL" --
refused "SMARTHOST_PASSWORD" 78 'only root may change the password of' \
    SMARTHOST_PASSWORD=guess --
check_nogrep "none of them connected to the other relay" '^C [0-9]* ' \
    "$EVILTR"
# Root may: the same -C and --host through the setgid binary.
cp "$R/alice/other.conf" "$T/root.conf"
"$BD/smarthost" -C "$T/root.conf" --host=localhost -f r@example.org \
    --pretend x@example.org </dev/null >"$T/root.out" 2>&1
check_eq "root may use -C and --host with the setgid binary" "$?" 0
check_grep "root's --host is used" '^host localhost$' "$T/root.out"

# A plain smarthost started with a group in its effective gid (by a
# setgid program of the caller's) does not take it for the smarthost
# group: it gives it up and runs unrestricted.
install -m 0755 "$TOP/smarthost" "$BD/plain"
printf 'Subject: x\n\nx\n' | setpriv --reuid="$AU" --rgid="$AU" \
    --egid="$GID" --clear-groups env -i PATH=/usr/bin:/bin \
    HOME="$R/alice" USER=alice "$BD/plain" -C "$R/alice/other.conf" \
    -f "$USER" --pretend x@example.org >"$T/inherited.out" 2>&1
check_eq "an inherited group is not a setgid install (-C works)" "$?" 0
check_nogrep "an inherited group: no restriction message" 'setgid' \
    "$T/inherited.out"

# 5. A user's own file cannot borrow the system account's password.
cat >"$R/alice/.smarthostrc" <<EOF
account default
host 127.0.0.1
port $EVIL
tls_starttls off
tls_trust_file $R/ca.pem
user $USER
from $USER
queue off
EOF
chown "$AU:$AU" "$R/alice/.smarthostrc"; chmod 600 "$R/alice/.smarthostrc"
mail_to alice borrow
check "own account of the system's name: not sent (no password of its own)" \
    test "$RC" -ne 0
check_grep "own account: says there is no password" 'password' \
    "$T/borrow.err"
check_nogrep "own account: the evil relay saw no AUTH" '^C [0-9]* AUTH' \
    "$EVILTR"
check_nogrep "own account: no password on stderr" "$PASS" "$T/borrow.err"
# Queued, her own account's mail stays in her own queue: in the system
# queue, anyone's run would send it with the system account of that
# name, under the sender she chose.
printf 'account default\nhost 127.0.0.1\nport %s\nfrom ceo@example.org\n' \
    "$(free_port)" >"$R/alice/.smarthostrc"
mail_to alice ownqueue
check_eq "own account, relay down: queued (exit 0)" "$RC" 0
check_eq "own account: nothing in the system queue" "$(entries)" 0
check_eq "own account: in her own queue" \
    "$(ls "$R/alice/.local/state/smarthost/queue" 2>/dev/null | \
    grep -cv '\.status$')" 1
rm -rf "$R/alice/.local"
printf 'account default\nhost 127.0.0.1\nport 1\nqueue_dir %s\n' \
    "$R/spool" >"$R/alice/.smarthostrc"
mail_to alice ownshared
check_grep "own account naming the system queue: refused" \
    'takes only mail of the system file' "$T/ownshared.err"
check_eq "own account naming the system queue: nothing there" \
    "$(entries)" 0
printf 'account mine : default\nhost 127.0.0.1\nport %s\n' "$EVIL" \
    >"$R/alice/.smarthostrc"
mail_to alice inherit -a mine
check_eq "own account inheriting from the system's: exit 78" "$RC" 78
check_grep "inheriting: the parent is unknown in her file" \
    "must be defined before account 'mine'" "$T/inherit.err"
# Her file as a link to the system file: opened in her name, refused.
ln -sf "$R/etc/smarthost.conf" "$R/alice/.smarthostrc"
mail_to alice link
check_eq "~/.smarthostrc linked to the system file: exit 78" "$RC" 78
check_grep "the link: permission denied" 'Permission denied' "$T/link.err"
check_nogrep "the link: no password on stderr" "$PASS" "$T/link.err"
rm -f "$R/alice/.smarthostrc"
# Her aliases file pointing at the system file: read in her name.
printf 'account own\nhost 127.0.0.1\nport %s\naliases %s\nfrom %s\n' \
    "$EVIL" "$R/etc/smarthost.conf" "$USER" >"$R/alice/.smarthostrc"
chown "$AU:$AU" "$R/alice/.smarthostrc"; chmod 600 "$R/alice/.smarthostrc"
mail_to alice aliases -a own
check "aliases naming the system file: not sent" test "$RC" -ne 0
check_grep "aliases: read in her name, permission denied" \
    'Permission denied' "$T/aliases.err"
check_nogrep "aliases: no password on stderr" "$PASS" "$T/aliases.err"
rm -f "$R/alice/.smarthostrc"
kill "$EVILSRV" 2>/dev/null; wait "$EVILSRV" 2>/dev/null
check_nogrep "the other relay saw no AUTH, MAIL or RCPT" \
    '^C [0-9]* \(AUTH\|MAIL\|RCPT\)' "$EVILTR"

# 6. The shared queue: alice's message waits there; bob's runs leave it
#    alone (a run of his he could stop or kill mid-send), root's (the
#    queue timer's) sends it.
sysconf "$PORT" "$(free_port)"
mail_to alice queued -a later
check_eq "relay down: exit 0" "$RC" 0
check_grep "relay down: queued" 'queued as' "$T/queued.err"
check_eq "one entry in the system queue" "$(entries)" 1
e=$(ls "$R/spool" | grep -v '\.status$' | head -1)
check_eq "the entry: hers, in the group, 0640" \
    "$(stat -c '%u:%g %a' "$R/spool/$e")" "$AU:$GID 640"
check_eq "its status file: in the group, 0640" \
    "$(stat -c '%g %a' "$R/spool/$e.status")" "$GID 640"
as alice "$BD/smarthost" -bp >"$T/mailq.out" 2>&1
check_grep "her mailq lists it" "^$e " "$T/mailq.out"
as bob "$BD/smarthost" -bp >"$T/mailqb.out" 2>&1
check_nogrep "bob's mailq does not show her message" "^$e \|$USER" \
    "$T/mailqb.out"
check_grep "bob's mailq says there is more of other users" \
    'and more of other users' "$T/mailqb.out"
# The file is hers, but only the group can reach the directory: she
# cannot rewrite its envelope, nor link it anywhere, before it is sent.
as alice bash -c ': >>"$1"' - "$R/spool/$e" 2>/dev/null
check_eq "she cannot open her queued entry to rewrite it" "$?" 1
as alice ln "$R/spool/$e" "$R/alice/mine" 2>/dev/null
check "she cannot link it out of the queue" test ! -e "$R/alice/mine"
# bob's runs, with a relay up and whatever he sets, do not touch it.
srv bobs 2
sysconf "$PORT"
sleep 2
as bob env SMARTHOST_QUEUE_MAX_AGE=1s "$BD/smarthost" -q >"$T/age.out" 2>&1
mail_to bob bobsown
kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null
check_eq "bob's -q and send: her message stays" "$(entries)" 1
check_nogrep "bob's runs: it is not marked refused" '^refused' \
    "$R/spool/$e.status"
check_nogrep "bob's runs did not send it" "^Subject: queued" "$MAIL"/*.eml
check "nothing of hers in bob's dead.letter" test ! -e "$R/bob/dead.letter"
srv flush 1
sysconf "$PORT"
"$BD/smarthost" -q >"$T/rootq.out" 2>&1
check_eq "root's -q: exit 0" "$?" 0
wait "$SRV" 2>/dev/null
check_eq "root's -q delivered her message" "$(delivered)" 1
check_grep "it is her message" '^Subject: queued' "$MAIL"/*.eml
check_eq "the system queue is empty again" "$(entries)" 0

# 7. Refused for good in root's run: not in root's dead.letter; hers on
#    her next run.
sysconf "$(free_port)"
mail_to alice refused -a later
check_eq "queued again" "$(entries)" 1
printf 'rcpt reply 550 5.1.1 no such user\n' >"$T/rule"
srv refuse 1 -s "$T/rule"
sysconf "$PORT"
"$BD/smarthost" -q >"$T/rootq2.out" 2>&1
wait "$SRV" 2>/dev/null
check "root's dead.letter did not get her message" \
    test ! -e "$HOME/dead.letter"
check_eq "it stays in the queue" "$(entries)" 1
check_grep "root is told it waits for its owner" \
    "of uid $AU: 1 recipient refused for good; it stays" "$T/rootq2.out"
"$BD/smarthost" -bp >"$T/mailq2.out" 2>&1
check_grep "mailq says refused, waiting for its owner" \
    "refused recipient: waits for uid $AU" "$T/mailq2.out"
as alice "$BD/smarthost" -q >"$T/aliceq.out" 2>&1
check_eq "her -q: her message left the system queue; its failure notice \
waits there (the relay is down)" "$(entries)" 1
check_grep "the notice is hers, to her address" '^rcpt '"$USER" \
    "$R/spool/$(ls "$R/spool" | grep -v '\.status$' | head -1)"
rm -f "$R/spool"/2*
check_grep "her dead.letter has it" '^Subject: refused' \
    "$R/alice/dead.letter"
check_grep "with the relay's reason" '550 5.1.1' "$R/alice/dead.letter"
check_eq "her dead.letter is hers" \
    "$(stat -c '%u:%g %a' "$R/alice/dead.letter")" "$AU:$AU 600"

# 7b. Her own account's mail waits in her own queue, and her -q sends it.
ownconf() {	# PORT
	printf 'account own\nhost 127.0.0.1\nport %s\n%s\n%s\nfrom %s\n%s\n' \
	    "$1" "tls_starttls off" "tls_trust_file $R/ca.pem" "$USER" \
	    "user $USER"$'\n'"password $PASS" >"$R/alice/.smarthostrc"
	chown "$AU:$AU" "$R/alice/.smarthostrc"
	chmod 600 "$R/alice/.smarthostrc"
}
ownconf "$(free_port)"
mail_to alice ownq -a own
check_eq "her own account, relay down: queued (exit 0)" "$RC" 0
check_eq "her own account's message is not in the system queue" \
    "$(entries)" 0
ownq() { ls "$R/alice/.local/state/smarthost/queue" 2>/dev/null |
    grep -cv '\.status$'; }
check_eq "it is in her own queue" "$(ownq)" 1
srv own 1
ownconf "$PORT"
as alice "$BD/smarthost" -q >"$T/aliceq3.out" 2>&1
wait "$SRV" 2>/dev/null
check_eq "her -q sends it through her account" "$(delivered)" 1
check_eq "her queue is empty" "$(ownq)" 0
rm -f "$R/alice/.smarthostrc"

# 8. A queue that others could reach is refused.
chmod 2777 "$R/spool"
sysconf "$(free_port)"
mail_to alice open
check_eq "world-writable system queue: not used (relay down: exit 75)" \
    "$RC" 75
check_grep "world-writable system queue: says chmod 2770" 'chmod 2770' \
    "$T/open.err"
chmod 2770 "$R/spool"

# 9. make install-setgid: the binary setgid, the queue 2770; plain
#    make install leaves the binary without it.
D=$T/dest
make -s -C "$TOP" install DESTDIR="$D/plain" PREFIX=/usr >/dev/null 2>&1
check_eq "make install: no setgid bit" \
    "$(stat -c %a "$D/plain/usr/sbin/smarthost" 2>/dev/null)" 755
mkdir -p "$D/sgid/etc" "$D/sgid/var/spool/smarthost"
printf 'account default\nhost x\n' >"$D/sgid/etc/smarthost.conf"
old=20261128T000000-0123456789ab
( umask 077; echo x >"$D/sgid/var/spool/smarthost/$old" )
make -s -C "$TOP" install-setgid DESTDIR="$D/sgid" PREFIX=/usr GROUP=mail \
    >/dev/null 2>&1
check_eq "make install-setgid: exit 0" "$?" 0
check_eq "make install-setgid: binary root:mail 2755" \
    "$(stat -c '%U:%G %a' "$D/sgid/usr/sbin/smarthost" 2>/dev/null)" \
    "root:mail 2755"
check_eq "make install-setgid: queue root:mail 2770" \
    "$(stat -c '%U:%G %a' "$D/sgid/var/spool/smarthost" 2>/dev/null)" \
    "root:mail 2770"
check_eq "make install-setgid: an entry queued before, now root:mail 0640" \
    "$(stat -c '%U:%G %a' "$D/sgid/var/spool/smarthost/$old")" \
    "root:mail 640"
check_eq "make install-setgid: system file root:mail 0640" \
    "$(stat -c '%U:%G %a' "$D/sgid/etc/smarthost.conf" 2>/dev/null)" \
    "root:mail 640"

# 10. What a user can do to others through the system queue (issue 14).
rm -f "$R/spool"/2*
sysconf "$(free_port)"
mail_to alice hers -a later
check_eq "her message waits in the system queue" "$(entries)" 1
hers=$(ls "$R/spool" | grep -v '\.status$')
# 10a. Bob's runs never lock her entry: a run of his, stopped while it
# held the lock, would stall hers and root's for as long as he liked.
mail_to bob his -a later
strace -f -qq -e trace=openat,flock,close -o "$T/bobq.strace" \
    setpriv --reuid="$BU" --regid="$BU" --clear-groups \
    env -i PATH=/usr/bin:/bin HOME="$R/bob" "$BD/smarthost" -q \
    >/dev/null 2>&1
# Between the open of her entry and its close: no flock on it.
held=$(awk -v id="$hers" '
    index($0, "openat(") && index($0, "\"" id "\"") && $NF ~ /^[0-9]+$/ {
	fd = $NF; open = 1; seen = 1; next }
    open && $0 ~ "flock\\(" fd "," { locked = 1 }
    open && $0 ~ "close\\(" fd "\\)" { open = 0 }
    END { print seen ? (locked ? "locked" : "not locked") : "not opened" }' \
    "$T/bobq.strace")
check_eq "bob's -q looked at her entry and never locked it" "$held" \
    "not locked"
check_grep "bob's -q did lock his own" 'flock([0-9]*, LOCK_EX' \
    "$T/bobq.strace"
# 10b. Another user's corrupt entry: bob's mailq does not read out why.
printf 'garbage\n' >"$R/spool/20261201T000000-0000000000aa"
chown "$AU:$GID" "$R/spool/20261201T000000-0000000000aa"
chmod 0640 "$R/spool/20261201T000000-0000000000aa"
as bob "$BD/smarthost" -bp >"$T/bobcorrupt.out" 2>&1
check_nogrep "bob's mailq: not her corrupt entry's reason" \
    'corrupt' "$T/bobcorrupt.out"
as alice "$BD/smarthost" -bp >"$T/alicecorrupt.out" 2>&1
check_grep "her mailq: her own corrupt entry, with the reason" \
    '20261201T000000-0000000000aa.*corrupt' "$T/alicecorrupt.out"
rm -f "$R/spool"/2*
# 10c. Limits: source_ip and max_message_size are the system's; a message
# over max_message_size is refused here; a user's share of the queue is
# bounded.
as alice env SMARTHOST_SOURCE_IP=::1 "$BD/smarthost" -a later \
    carol@example.org </dev/null >"$T/srcip.out" 2>&1
check_eq "SMARTHOST_SOURCE_IP for a user: refused (78)" "$?" 78
check_grep "SMARTHOST_SOURCE_IP: says only root may" 'only root may' \
    "$T/srcip.out"
as alice "$BD/smarthost" --max-message-size=0 -a later carol@example.org \
    </dev/null >"$T/maxsize.out" 2>&1
check_eq "--max-message-size for a user: refused (64)" "$?" 64
{ printf 'Subject: big\n\n'; head -c 300000 /dev/zero | tr '\0' x |
    fold -w 70; } >"$T/big.msg"
sed -i '/^timeout 2$/a max_message_size 200k' "$R/etc/smarthost.conf"
as alice "$BD/smarthost" -a later carol@example.org <"$T/big.msg" \
    >"$T/big.out" 2>&1
check_eq "over max_message_size: refused here (65)" "$?" 65
check_grep "over max_message_size: says so" 'larger than max_message_size' \
    "$T/big.out"
check_eq "over max_message_size: nothing kept in the system queue" \
    "$(entries)" 0
for i in $(seq 100); do
	printf 'Subject: share %s\n\nx\n' "$i" |
	    as alice "$BD/smarthost" -a later carol@example.org 2>/dev/null
done
check_eq "her share: 100 messages kept" "$(entries)" 100
mail_to alice onetoomany -a later
check_grep "her 101st: her share of the system queue is full" \
    'your share of the system queue .* is full' "$T/onetoomany.err"
check_eq "her 101st: not kept there" "$(entries)" 100
check_grep "her 101st: in her dead.letter instead" '^Subject: onetoomany' \
    "$R/alice/dead.letter"
check "her 101st: she still owns it (non-zero)" test "$RC" -ne 0
mail_to bob bobs -a later
check_eq "bob's share is his own: his message is kept" "$(entries)" 101
rm -f "$R/spool"/2*
# 10d. %U is the uid's login; $USER is the caller's to set: a setgid run
# never takes it (alice has no passwd entry, so %U cannot be had).
printf 'account user\nhost 127.0.0.1\nport 1\nfrom %%U@example.org\n%s\n' \
    "allow_from_override off" >>"$R/etc/smarthost.conf"
as alice env USER=ceo "$BD/smarthost" -a user --pretend x@example.org \
    </dev/null >"$T/pctu.out" 2>&1
check "%U with \$USER=ceo and no passwd entry: refused" test "$?" -ne 0
check_nogrep "%U: never ceo@example.org" 'ceo@example.org' "$T/pctu.out"
check_grep "%U: says it needs a login name" 'needs a login name' \
    "$T/pctu.out"
# 10. OAuth2: the system account's token store lies in the system
#     queue, root's and the group's (0640); her runs read it with the
#     group and never write it (a file she wrote would be hers to read);
#     root's runs save a new token.
EPD=$T/ep
mkdir -p "$EPD"
bg "$TOP/tests/oauth-endpoint" "$EPD" "$CERTS/server.pem" "$CERTS/server.key"
for _ in $(seq 250); do [ -s "$EPD/port" ] && break; sleep 0.02; done
EP=https://127.0.0.1:$(cat "$EPD/port")
srv oauthrelay 4 -O "$EPD/tokens" -e "AUTH XOAUTH2,PIPELINING"
sysconf "$PORT"
cat >>"$R/etc/smarthost.conf" <<EOC

account oauth
host 127.0.0.1
port $PORT
user $USER
from $USER
oauth_client_id test-client
oauth_grant client_credentials
oauth_tenant example.test
oauth_client_secret test-secret
oauth_token_endpoint $EP/token
EOC
S=$R/spool/oauth/oauth
tokens() { grep -c ' client_credentials ok' "$EPD/log"; }
"$BD/smarthost" -a oauth --serverinfo >"$T/oauth-root.out" 2>&1
check_grep "oauth: root gets the system account's token" \
    '^Authentication as .*: works' "$T/oauth-root.out"
check_eq "oauth: the store root:group 0640" "$(stat -c '%u:%g %a' "$S")" \
    "0:$GID 640"
check_eq "oauth: its directory root:group 2750" \
    "$(stat -c '%u:%g %a' "$R/spool/oauth")" "0:$GID 2750"
as alice cat "$S" >/dev/null 2>&1
check_eq "oauth: alice cannot read the store herself" "$?" 1
mail_to alice oauth1 -a oauth -v
check_eq "oauth: alice sends with the system account's token" "$RC" 0
check_eq "oauth: with the token root got (no new one)" "$(tokens)" 1
python3 -c 'import json, sys
p = sys.argv[1]; d = json.load(open(p)); d["expires_at"] = 1
open(p, "w").write(json.dumps(d))' "$S"
sum=$(md5sum <"$S")
mail_to alice oauth2 -a oauth -v
check_eq "oauth: expired, alice still sends" "$RC" 0
check_eq "oauth: with a token of her own run" "$(tokens)" 2
check_eq "oauth: which she does not save" "$(md5sum <"$S")" "$sum"
check_grep "oauth: -v says so" 'not saved: only root' "$T/oauth2.err"
printf 'Subject: root\n\nx\n' | "$BD/smarthost" -a oauth carol@example.org \
    >"$T/oauth3.out" 2>&1
check_eq "oauth: root's run fetched one more" "$(tokens)" 3
check "oauth: and saved it" test "$(md5sum <"$S")" != "$sum"
check_eq "oauth: still root:group 0640" "$(stat -c '%u:%g %a' "$S")" \
    "0:$GID 640"
wait "$SRV" 2>/dev/null
check_eq "oauth: the relay took every token" \
    "$(grep -c "^AUTHOK XOAUTH2 $USER" "$TR")" 4
for f in "$T/oauth1.err" "$T/oauth2.err" "$R/alice/smarthost.log"; do
	check_nogrep "oauth: no token in $(basename "$f")" \
	    'at-[0-9]*-[0-9a-f]\{16\}\|test-secret' "$f"
done
as alice "$BD/smarthost" -a oauth --oauth-token-endpoint=https://x.example/ \
    -P </dev/null >"$T/oauth-over.out" 2>&1
check_eq "oauth: she cannot send the secret elsewhere (exit 64)" "$?" 64

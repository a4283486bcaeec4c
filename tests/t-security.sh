#!/bin/bash
# SPDX-License-Identifier: ISC
# Security (issue 6): injection refused before connecting, secrets kept
# out of every output and of other processes' view, bounded waits and
# sizes, and capabilities from before STARTTLS never trusted after it.
# Each case asserts from the test relay's transcript what crossed.
. tests/lib.sh

USER=alice@example.test
PASS=Zq7-s3cret-Pw4ss-uNiqu3x9
CAPS="AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER,PIPELINING,8BITMIME"
TLSOPT=(-c "$CERTS/server.pem" -k "$CERTS/server.key")

srv() { testsrv "$@"; }

# srv_wait: let the relay finish its connection (5 s at most), then stop
# it, so that a client that never connected costs no -x minute.
srv_wait() {
	local i
	for i in $(seq 100); do
		kill -0 "$SRV" 2>/dev/null || break
		sleep 0.05
	done
	kill "$SRV" 2>/dev/null
	wait "$SRV" 2>/dev/null
}

# conf NAME [directive lines...]: a 0600 config for the relay started.
conf() {
	local n=$1
	shift
	smarthost_conf "$T/$n.conf" "timeout 1" "queue off" "$@"
}

# run NAME [smarthost arguments]: a small message; sets RC, OUT, ERR.
run() {
	name=$1; shift
	OUT=$T/$name.out ERR=$T/$name.err
	printf 'Subject: security test\n\nbody\n' |
	    "$SMARTHOST" -C "$CONF" "$@" >"$OUT" 2>"$ERR"
	RC=$?
}

# in_clear: the transcript up to the TLS handshake.
in_clear() {
	awk '/^TLS /{exit} {print}' "$TR" >"$TR.clear"
	echo "$TR.clear"
}

# nothing_in_clear NAME: no AUTH, MAIL, RCPT or message byte before TLS.
nothing_in_clear() {
	check_nogrep "$1: no AUTH, MAIL, RCPT or data in clear" \
	    '^C [0-9]* \(AUTH\|MAIL\|RCPT\|DATA\|BDAT\)\|^DATA \|^AUTH' \
	    "$(in_clear)"
}

# ---------------------------------------------------------------------
# 1. Injection: refused before connecting.  One relay for all the cases;
# its transcript must stay free of CONNECT.
srv inj "${TLSOPT[@]}" -T -n 100 -e "$CAPS"
INJTR=$TR
conf inj "tls_starttls off"
INJCONF=$CONF

# connects: how many connections the injection relay has seen so far.
connects() { grep -c '^CONNECT' "$INJTR"; }

# refused NAME WANT_RC PATTERN [smarthost arguments]
refused() {
	local before
	name=$1 want=$2 pat=$3; shift 3
	before=$(connects)
	run "$name" "$@"
	check_eq "$name: exit $want" "$RC" "$want"
	check_grep "$name: message says why" "$pat" "$ERR"
	check_eq "$name: the relay saw no connection" "$(connects)" "$before"
}

CTL='control character'
refused "-f with CR" 64 "$CTL" -f $'alice@example.test\rRCPT TO:<x@y.z>' \
    bob@example.org
refused "-f with LF" 64 "$CTL" -f $'alice@example.test\nRCPT TO:<x@y.z>' \
    bob@example.org
refused "-F with LF" 64 "$CTL" -F $'Alice\nBcc: evil@example.net' \
    bob@example.org
refused "-F with CR" 64 "$CTL" -F $'Alice\rBcc: evil@example.net' \
    bob@example.org
refused "recipient with CRLF" 64 'control characters are not allowed' \
    $'bob@example.org\r\nRCPT TO:<evil@example.net>'
refused "recipient with LF" 64 'control characters are not allowed' \
    $'bob@example.org\nevil@example.net'
refused "--domain with CR" 64 "$CTL" $'--domain=vm\r\nMAIL FROM:<x@y.z>' \
    bob@example.org
refused "--from with LF" 64 "$CTL" $'--from=a@example.test\nx' \
    bob@example.org
refused "-N with CR" 64 "$CTL" -N $'success\r\nRSET' bob@example.org
refused "-V with LF" 64 "$CTL" -V $'envid\nRSET' bob@example.org

# SMARTHOST_FROM and other environment values.
OUT=$T/envfrom.out ERR=$T/envfrom.err
before=$(connects)
printf 'Subject: x\n\nbody\n' | SMARTHOST_FROM=$'a@example.test\r\nRSET' \
    "$SMARTHOST" -C "$CONF" bob@example.org >"$OUT" 2>"$ERR"
RC=$?
check_eq "SMARTHOST_FROM with CRLF: exit 78" "$RC" 78
check_grep "SMARTHOST_FROM with CRLF: named" \
    'SMARTHOST_FROM: the value for from contains a CR or LF' "$ERR"
check_eq "SMARTHOST_FROM with CRLF: no connection" "$(connects)" "$before"
printf 'Subject: x\n\nbody\n' | SMARTHOST_DOMAIN=$'vm\rX' \
    "$SMARTHOST" -C "$CONF" bob@example.org >"$OUT" 2>"$ERR"
RC=$?
check_eq "SMARTHOST_DOMAIN with CR: exit 78" "$RC" 78
check_eq "SMARTHOST_DOMAIN with CR: no connection" "$(connects)" "$before"

# Config values: a CR inside a line (LF ends it) and a NUL byte.
for d in from domain user from_full_name maildomain host; do
	case $d in
	from) v=$'alice@example.test\rRSET';;
	user|from_full_name) v=$'Alice\rBcc: evil@example.net';;
	*) v=$'example.test\rRSET';;
	esac
	conf "cr-$d" "tls_starttls off" "$d $v"
	refused "config $d with CR" 78 \
	    "cr-$d.conf:14: the value for $d contains a CR or LF" \
	    bob@example.org
done
conf nul "tls_starttls off"
printf 'domain vm\0evil\n' >>"$CONF"
refused "config line with NUL" 78 'nul.conf:14: the line contains a NUL' \
    bob@example.org

# Alias targets.
printf 'bob: carol@example.org\rRSET\n' >"$T/aliases-cr"
conf alias-cr "tls_starttls off" "aliases $T/aliases-cr"
refused "alias target with CR" 78 'invalid alias target' bob
CONF=$INJCONF

# A -F name that looks like a header block stays one From: line.
srv fname "${TLSOPT[@]}" -T -n 1 -e "$CAPS"
conf fname "tls_starttls off" "set_from_header on"
OUT=$T/fname.out ERR=$T/fname.err
printf 'Subject: x\n\nbody\n' | "$SMARTHOST" -C "$CONF" \
    -F 'Alice: Bcc: evil@example.net <x@y.z>' bob@example.org \
    >"$OUT" 2>"$ERR"
RC=$?
srv_wait
check_eq "-F with a colon and brackets: exit 0" "$RC" 0
check_eq "-F: exactly one From: line, no Bcc:" \
    "$(grep -c -i '^\(from\|bcc\):' "$MAIL/1.eml")" 1
check_grep "-F: the name is quoted in the From: line" \
    '^From: "Alice: Bcc: evil@example.net <x@y.z>" <alice@example.test>' \
    "$MAIL/1.eml"

# A recipient that starts with '-' is a recipient, never an option.
srv dash "${TLSOPT[@]}" -T -n 1 -e "$CAPS"
conf dash "tls_starttls off"
cd "$T" || exit 1
run dash -- "-oQ$T/qf@example.org"
cd "$TOP" || exit 1
srv_wait
check_eq "recipient -oQ... after --: exit 0" "$RC" 0
check_grep "recipient -oQ... after --: sent as RCPT TO" \
    "^C [0-9]* RCPT TO:<-oQ$T/qf@example.org>" "$TR"
check "recipient -oQ... after --: no file created" \
    test ! -e "$T/qf@example.org"
CONF=$INJCONF
before=$(connects)
run dash-x --local-recipient= --from= -f "$USER" bob@example.org "-X$T/xlog"
check_eq "-X/FILE after a recipient: exit 78" "$RC" 78
check_grep "-X/FILE after a recipient: taken as an address" \
    "recipient '-X$T/xlog' has no domain" "$ERR"
check "-X/FILE after a recipient: no log file" test ! -e "$T/xlog"
check_eq "-X/FILE after a recipient: no connection" "$(connects)" "$before"
# With a from, a recipient without a domain goes there (local_recipient):
# still an address, never an option.
run dash-x2 --pretend bob@example.org "-X$T/xlog"
check_grep "-X/FILE after a recipient, --pretend: a local recipient" \
    "^header change: local recipient -X$T/xlog -> " "$T/dash-x2.out"
check "-X/FILE after a recipient, --pretend: no log file" \
    test ! -e "$T/xlog"

# ---------------------------------------------------------------------
# 2. Secrets.
#
# b64forms SECRET: the password's base64 as it shows inside any longer
# blob (AUTH PLAIN's "\0user\0pass", XOAUTH2's "auth=Bearer TOKEN"):
# one substring for each of the three alignments, plus the plain text.
b64forms() {
	local s
	printf '%s\n' "$1"
	for s in 0 1 2; do
		printf '%*s%s' "$s" '' "$1" | base64 -w0 |
		    awk -v s="$s" '{ b = s ? 5 : 1; print substr($0, b,
			length($0) - 4 - b + 1) }'
	done
}
b64forms "$PASS" >"$T/forms"

# leaks NAME FILE...: ok when no file holds the password in any form.
leaks() {
	local what=$1; shift
	if grep -a -F -f "$T/forms" "$@" >"$T/leak" 2>/dev/null; then
		notok "$what"; sed 's/^/#   | /' "$T/leak" | head -5
	else ok "$what"; fi
}

# A fake /dev/log in a private mount namespace catches syslog(3).
SYSLOG_NS=0
if unshare -m --propagation private true 2>/dev/null &&
    command -v python3 >/dev/null; then
	SYSLOG_NS=1
fi
cat >"$T/ns.sh" <<'NS'
# ns.sh SYSLOGFILE CMD...: run CMD with /dev/log a socket of our own.
log=$1; shift
mkdir -p "$T/realdev"
mount --bind /dev "$T/realdev" && mount -t tmpfs -o mode=0755 tmpfs /dev ||
    exit 90
for n in null zero full random urandom tty; do
	[ -e "$T/realdev/$n" ] || continue
	touch "/dev/$n" && mount --bind "$T/realdev/$n" "/dev/$n"
done
ln -s /proc/self/fd /dev/fd
python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
f = open(sys.argv[1], "ab", 0)
while True:
	f.write(s.recv(65536) + b"\n")' "$log" &
lp=$!
for _ in $(seq 100); do [ -S /dev/log ] && break; sleep 0.05; done
"$@"
rc=$?
sleep 0.2
kill "$lp"
exit "$rc"
NS

# A full session per mechanism: -v trace, logfile and syslog.
for mech in PLAIN LOGIN XOAUTH2 OAUTHBEARER; do
	srv "auth-$mech" "${TLSOPT[@]}" -T -n 1 -e "$CAPS"
	conf "auth-$mech" "tls_starttls off" "auth $mech" \
	    "logfile $T/auth-$mech.log" "syslog on"
	: >"$T/auth-$mech.syslog"
	if [ "$SYSLOG_NS" = 1 ]; then
		printf 'Subject: x\n\nbody\n' | T=$T unshare -m \
		    --propagation private bash "$T/ns.sh" \
		    "$T/auth-$mech.syslog" "$SMARTHOST" -C "$CONF" -v \
		    bob@example.org >"$T/auth-$mech.out" 2>"$T/auth-$mech.err"
	else
		printf 'Subject: x\n\nbody\n' | "$SMARTHOST" -C "$CONF" -v \
		    bob@example.org >"$T/auth-$mech.out" 2>"$T/auth-$mech.err"
	fi
	RC=$?
	srv_wait
	check_eq "$mech session: exit 0" "$RC" 0
	check_grep "$mech session: the relay saw AUTH $mech succeed" \
	    "^AUTHOK $mech $USER" "$TR"
	check "$mech session: the relay's transcript holds the secret (the \
forms are right)" grep -q -F -f "$T/forms" "$TR"
	check_grep "$mech session: the trace shows AUTH, redacted" \
	    "^-> AUTH $mech" "$T/auth-$mech.err"
	check_grep "$mech session: a log line was written" \
	    "host=127.0.0.1 tls=on auth=on user=$USER" "$T/auth-$mech.log"
	if [ "$SYSLOG_NS" = 1 ]; then
		check_grep "$mech session: a syslog line was written" \
		    "smarthost\[[0-9]*\]: host=127.0.0.1 tls=on auth=on" \
		    "$T/auth-$mech.syslog"
	else
		skip "$mech session: syslog # no mount namespace here"
	fi
	leaks "$mech session: no password in the -v trace, stdout, log \
file or syslog" "$T/auth-$mech.err" "$T/auth-$mech.out" \
	    "$T/auth-$mech.log" "$T/auth-$mech.syslog"
done

# A refused password: the error message and the log hold no form of it.
SRVUSER=$USER:other-password srv wrongpw "${TLSOPT[@]}" -T -n 1 -e "$CAPS"
conf wrongpw "tls_starttls off" "auth PLAIN" "logfile $T/wrongpw.log"
run wrongpw -v bob@example.org
srv_wait
check_eq "wrong password: exit 77" "$RC" 77
check_grep "wrong password: says so" 'refused authentication' "$ERR"
check "wrong password: the relay saw the password (forms right)" \
    grep -q -F -f "$T/forms" "$TR"
leaks "wrong password: not in the error, trace or log" "$ERR" "$OUT" \
    "$T/wrongpw.log"

# No --password: argv is visible to every user.
run nopw --password="$PASS" bob@example.org
check_eq "--password: exit 64" "$RC" 64
check_grep "--password: says why" 'there is no --password' "$ERR"
leaks "--password: the refusal does not echo it" "$ERR"

# While smarthost waits on a slow relay: the password is in neither its
# command line nor its environment (SMARTHOST_PASSWORD is wiped), its
# core limit is 0, and it is not dumpable (its /proc files then belong to
# root, not to the user running it).
printf 'greeting delay 3000\n' >"$T/slow.script"
srv slow "${TLSOPT[@]}" -T -n 2 -e "$CAPS" -s "$T/slow.script"
conf slow "tls_starttls off" "auth PLAIN" "timeout 10"
sed -i '/^password /d' "$CONF"
printf 'Subject: x\n\nbody\n' | SMARTHOST_PASSWORD=$PASS \
    "$SMARTHOST" -C "$CONF" bob@example.org >"$T/slow.out" 2>"$T/slow.err" &
SPID=$!
sleep 1
cat "/proc/$SPID/cmdline" "/proc/$SPID/environ" >"$T/slow.proc" 2>&1
# Not dumpable: only root may read its environ (as the user, a skip).
if [ "$(id -u)" = 0 ]; then
	check_grep "slow relay: the environment was read" 'HOME=' \
	    "$T/slow.proc"
else
	skip "slow relay: environ # a process not dumpable: needs root"
fi
leaks "slow relay: no password in /proc/PID/cmdline or environ" \
    "$T/slow.proc"
check_eq "slow relay: RLIMIT_CORE is 0" \
    "$(prlimit --pid "$SPID" --core --output SOFT,HARD --noheadings |
	tr -s ' ' | sed 's/^ //')" "0 0"
wait "$SPID"
check_eq "slow relay, SMARTHOST_PASSWORD: exit 0" "$?" 0
check_grep "slow relay: authenticated with SMARTHOST_PASSWORD" \
    "^AUTHOK PLAIN $USER" "$TR"

if command -v setpriv >/dev/null && [ "$(id -u)" = 0 ]; then
	# As an unprivileged user: not dumpable shows as root-owned /proc.
	# The binary, its configuration and CA are copied to a directory of
	# the user's own: the checkout may be one nobody cannot enter.
	private_dir D 65534
	cp "$SMARTHOST" "$D/smarthost"; cp "$CERTS/ca.pem" "$D/ca.pem"
	sed -e "s|^tls_trust_file .*|tls_trust_file $D/ca.pem|" \
	    -e "s|^queue_dir .*|queue_dir $D/queue|" \
	    -e "s|^dead_letter .*|dead_letter $D/dead.letter|" \
	    "$CONF" >"$D/conf"
	chown -R 65534:65534 "$D"
	# exec: $! is smarthost's pid; cd /: not in the checkout either.
	printf 'Subject: x\n\nbody\n' | (cd / && exec env HOME="$D" \
	    SMARTHOST_PASSWORD="$PASS" setpriv --reuid=65534 --regid=65534 \
	    --clear-groups "$D/smarthost" -C "$D/conf" bob@example.org) \
	    >"$T/slow2.out" 2>"$T/slow2.err" &
	SPID=$!
	sleep 1
	check_eq "not dumpable: /proc/PID/status belongs to root" \
	    "$(stat -c %u "/proc/$SPID/status")" 0
	check_eq "not dumpable: the process runs as the user" \
	    "$(awk '/^Uid:/{print $2}' "/proc/$SPID/status")" 65534
	wait "$SPID"
else
	skip "not dumpable # needs root and setpriv to look as another user"
fi

# A passwordeval child: its environment and command line, captured while
# it runs, hold no secret; smarthost's own hold none while it waits.
cat >"$T/pweval.sh" <<PW
#!/bin/sh
cat /proc/\$\$/environ /proc/\$\$/cmdline >"$T/pweval.child"
cat /proc/\$PPID/environ /proc/\$PPID/cmdline >"$T/pweval.parent"
sleep 0.3
cat "$T/pwfile"
PW
chmod 700 "$T/pweval.sh"
printf '%s\n' "$PASS" >"$T/pwfile"; chmod 600 "$T/pwfile"
srv pweval "${TLSOPT[@]}" -T -n 1 -e "$CAPS"
conf pweval "tls_starttls off" "auth PLAIN" "passwordeval $T/pweval.sh"
sed -i '/^password /d' "$CONF"
run pweval bob@example.org
srv_wait
check_eq "passwordeval: exit 0" "$RC" 0
check_grep "passwordeval: authenticated" "^AUTHOK PLAIN $USER" "$TR"
check_grep "passwordeval: the child's environment was read" 'HOME=' \
    "$T/pweval.child"
leaks "passwordeval: no secret in the child's or smarthost's /proc" \
    "$T/pweval.child" "$T/pweval.parent"

# SPEC 2: a password in a file others (or the group) can read.
srv perm "${TLSOPT[@]}" -T -n 1 -e "$CAPS"
conf perm "tls_starttls off"
chmod 644 "$CONF"
run perm644 bob@example.org
check_eq "config with password at 0644: exit 78" "$RC" 78
check_grep "config with password at 0644: names chmod" \
    "can be read by every user: run chmod 600 $CONF" "$ERR"
chmod 640 "$CONF"
run perm640 bob@example.org
check_eq "user config with password at 0640: exit 78" "$RC" 78
check_grep "user config with password at 0640: names chmod" \
    "can be read by its group: run chmod 600 $CONF" "$ERR"
check_nogrep "config permissions: no connection" '^CONNECT' "$TR"
kill "$SRV" 2>/dev/null

# ---------------------------------------------------------------------
# 3. Resource bounds.  With "timeout 1" every RFC 5321 wait is 5 s (the
# greeting's 300 s scaled by 1/60); a session that the relay stalls must
# end within 9 s, however the relay spreads its bytes.

# timed NAME: send (killed at 20 s), set RC, ERR and SECS.
timed() {
	local t0 t1
	t0=$(date +%s%N)
	OUT=$T/$1.out ERR=$T/$1.err
	printf 'Subject: x\n\nbody\n' | timeout 20 "$SMARTHOST" -C "$CONF" \
	    bob@example.org >"$OUT" 2>"$ERR"
	RC=$?
	t1=$(date +%s%N)
	SECS=$(( (t1 - t0) / 1000000000 ))
}

# stalled NAME WANT_RC PATTERN SCRIPT-LINE [testsrv options]
stalled() {
	name=$1 want=$2 pat=$3 rule=$4; shift 4
	printf '%s\n' "$rule" >"$T/$name.script"
	srv "$name" "${TLSOPT[@]}" -n 1 -e "STARTTLS,$CAPS" \
	    -s "$T/$name.script" "$@"
	conf "$name"
	timed "$name"
	sleep 0.3	# what the client sent is read and logged by now
	kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null
	check_eq "$name: exit $want" "$RC" "$want"
	check "$name: gave up within 9 s (took $SECS s)" test "$SECS" -lt 9
	check_grep "$name: message says why" "$pat" "$ERR"
	nothing_in_clear "$name"
	check "$name: no message stored" test ! -e "$MAIL/1.eml"
}
stalled greeting-silent 75 'sent no greeting within 1 seconds' \
    'greeting delay 600000'
stalled greeting-trickle 75 'sent no greeting within 1 seconds' \
    'greeting trickle 1000'
stalled handshake-silent 75 'TLS handshake with 127.0.0.1 timed out' \
    'tls delay 600000'
stalled mail-trickle 75 'no answer from the relay within 5 seconds' \
    'mail trickle 1000'

# Oversized replies: many lines, and one line of 1 MiB (from a relay of
# our own: the scripted one writes lines of at most 80 octets).
stalled many-lines 76 'more than 128 lines' 'ehlo lines 100000'
cat >"$T/bigline.py" <<'PY'
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
c, _ = s.accept()
c.sendall(b"220 " + b"x" * (1 << 20) + b"\r\n")
c.settimeout(5)
got = b""
try:
	while True:
		d = c.recv(65536)
		if not d:
			break
		got += d
except Exception:
	pass
open(sys.argv[2], "wb").write(got)
PY
if command -v python3 >/dev/null; then
	rm -f "$T/bigline.port"
	bg python3 "$T/bigline.py" "$T/bigline.port" "$T/bigline.got"
	BPID=$!
	for _ in $(seq 200); do [ -s "$T/bigline.port" ] && break; sleep 0.05
	done
	PORT=$(cat "$T/bigline.port")
	conf bigline
	timed bigline
	wait "$BPID"
	check_eq "1 MiB greeting line: exit 76" "$RC" 76
	check_grep "1 MiB greeting line: says so" \
	    'the relay sent a line longer than 4095 bytes' "$ERR"
	check "1 MiB greeting line: gave up within 9 s" test "$SECS" -lt 9
	check_nogrep "1 MiB greeting line: no EHLO, AUTH or MAIL sent" \
	    'EHLO\|AUTH\|MAIL' "$T/bigline.got"
else
	skip "1 MiB greeting line # no python3"
fi

# Counts and sizes refused before connecting (the relay of section 1).
CONF=$INJCONF
before=$(connects)
seq -f 'r%g@example.org' 2000 >"$T/rcpts"
OUT=$T/rcpts2000.out ERR=$T/rcpts2000.err
printf 'Subject: x\n\nbody\n' | xargs -a "$T/rcpts" -d '\n' \
    "$SMARTHOST" -C "$CONF" >"$OUT" 2>"$ERR"
RC=$?
# xargs reports a command's exit 1..125 as 123.
check_eq "2000 recipients as arguments: refused" "$RC" 123
check_grep "2000 recipients as arguments: says so" \
    'more than 1000 recipients' "$ERR"
{ printf 'To: '; paste -sd, "$T/rcpts"; printf 'Subject: x\n\nbody\n'; } |
    "$SMARTHOST" -C "$CONF" -t >"$OUT" 2>"$ERR"
check_eq "2000 recipients in To: (-t): exit 64" "$?" 64
check_grep "2000 recipients in To: (-t): says so" \
    'more than 1000 recipients' "$ERR"

awk 'BEGIN { printf "Subject: x\n"; for (i = 0; i < 1400; i++)
    printf "X-Filler-%05d: %0800d\n", i, i; printf "\nbody\n" }' |
    "$SMARTHOST" -C "$CONF" bob@example.org >"$OUT" 2>"$ERR"
check_eq "header block over 1 MiB: exit 65" "$?" 65
check_grep "header block over 1 MiB: says so" '1 MiB\|1048576' "$ERR"

for i in $(seq 1 20); do echo "a$i: a$((i + 1))"; done >"$T/aliases-deep"
echo "a21: bob@example.org" >>"$T/aliases-deep"
conf deep "tls_starttls off" "aliases $T/aliases-deep"
sed -i "s/^port .*/port $(sed -n 's/^port //p' "$INJCONF")/" "$CONF"
run deep a1
check_eq "aliases 21 deep: exit 78" "$RC" 78
check_grep "aliases 21 deep: says so" 'deeper than 16 levels' "$ERR"
for i in $(seq 1 15); do echo "b$i: b$((i + 1))"; done >"$T/aliases-16"
echo "b16: bob@example.org" >>"$T/aliases-16"
conf deep16 "aliases $T/aliases-16" "--pretend-only-check"
sed -i '$d' "$CONF"
OUT=$T/deep16.out
printf 'Subject: x\n\nbody\n' | "$SMARTHOST" -C "$CONF" --pretend b1 \
    >"$OUT" 2>&1
check_grep "aliases 16 deep: resolved" 'bob@example.org' "$OUT"

conf big
{ cat "$INJCONF"; awk 'BEGIN { for (i = 0; i < 20000; i++)
    printf "# %060d\n", i }'; } >"$CONF"
run bigconf bob@example.org
check_eq "config over 1 MiB: exit 78" "$RC" 78
check_grep "config over 1 MiB: says so" 'larger than 1 MiB' "$ERR"
check_eq "counts and sizes: the relay saw no connection" "$(connects)" \
    "$before"

# ---------------------------------------------------------------------
# 4. STARTTLS: what t-faults.sh does not cover.

# A 220 to STARTTLS that arrives one octet at a time is still one reply:
# no false injection alarm, no early handshake.
printf 'starttls trickle 40\n' >"$T/split220.script"
srv split220 "${TLSOPT[@]}" -n 1 -e "STARTTLS,$CAPS" -s "$T/split220.script"
conf split220
run split220 bob@example.org
srv_wait
check_eq "220 split across reads: exit 0" "$RC" 0
check_grep "220 split across reads: TLS came up" '^TLS TLSv1' "$TR"
check_grep "220 split across reads: delivered" '^AUTHOK PLAIN' "$TR"
nothing_in_clear "220 split across reads"

# Capabilities from before TLS are forgotten: AUTH after TLS uses what
# the second EHLO offers.
srv caps "${TLSOPT[@]}" -n 1 -e "STARTTLS,AUTH PLAIN LOGIN,PIPELINING" \
    -E "AUTH SCRAM-SHA-256,PIPELINING"
conf caps
run caps bob@example.org
srv_wait
check_eq "AUTH list changed by TLS: exit 0" "$RC" 0
check_grep "AUTH list changed by TLS: SCRAM-SHA-256 used" \
    "^AUTHOK SCRAM-SHA-256 $USER" "$TR"
check_nogrep "AUTH list changed by TLS: PLAIN/LOGIN not tried" \
    '^C [0-9]* AUTH \(PLAIN\|LOGIN\)' "$TR"
nothing_in_clear "AUTH list changed by TLS"

srv noauth "${TLSOPT[@]}" -n 1 -e "STARTTLS,AUTH PLAIN LOGIN,PIPELINING" \
    -E "PIPELINING,8BITMIME"
conf noauth
run noauth bob@example.org
srv_wait
check_eq "no AUTH after TLS: exit 69" "$RC" 69
check_grep "no AUTH after TLS: says so" 'AUTH' "$ERR"
check_nogrep "no AUTH after TLS: no AUTH, MAIL or RCPT at all" \
    '^C [0-9]* \(AUTH\|MAIL\|RCPT\|DATA\|BDAT\)' "$TR"
nothing_in_clear "no AUTH after TLS"

# ---------------------------------------------------------------------
# 5. What a hostile relay says and asks for (issue 14).

# A SCRAM iteration count of 2^32-1 would burn CPU for hours in GNU
# SASL 2.2: refused before any hashing, with the limit named.
srv scramiter "${TLSOPT[@]}" -T -n 1 -e "AUTH SCRAM-SHA-256,PIPELINING" \
    -i 4294967295
conf scramiter "tls_starttls off"
t0=$(date +%s)
run scramiter bob@example.org
srv_wait
check_eq "SCRAM i=2^32-1: exit 76" "$RC" 76
check_grep "SCRAM i=2^32-1: the limit is named" \
    'more than 100000 SCRAM-SHA-256 iterations' "$ERR"
check "SCRAM i=2^32-1: refused at once" test $(($(date +%s) - t0)) -lt 5
check_nogrep "SCRAM i=2^32-1: no MAIL" '^C [0-9]* MAIL' "$TR"
# 100000 is within the limit: hashed, and (the keys are made up) refused
# by the relay, as any wrong proof is.
srv scramok "${TLSOPT[@]}" -T -n 1 -e "AUTH SCRAM-SHA-256,PIPELINING" \
    -i 100000
conf scramok "tls_starttls off"
run scramok bob@example.org
srv_wait
check_eq "SCRAM i=100000: taken, the proof refused: exit 77" "$RC" 77
check_nogrep "SCRAM i=100000: no iteration complaint" 'iterations' "$ERR"

# Terminal escapes in what the relay chooses (AUTH keywords, certificate
# names) never reach the terminal raw.
ESC=$(printf '\033') BEL=$(printf '\007')
srv escauth "${TLSOPT[@]}" -T -n 2 \
    -e "AUTH X-EVIL${ESC}]0;PWNED${BEL}${ESC}[2J,PIPELINING"
conf escauth "tls_starttls off"
run escauth bob@example.org
"$SMARTHOST" -C "$CONF" --serverinfo >"$T/escauth.info" 2>&1
srv_wait
check_eq "escapes in AUTH keywords: no mechanism in common, exit 69" \
    "$RC" 69
check_grep "escapes in AUTH keywords: shown, made harmless" \
    'it offers X-EVIL?\]0;PWNED??\[2J' "$ERR"
check "escapes in AUTH keywords: no ESC or BEL on stderr" \
    test "$(tr -dc '\033\007' <"$ERR" | wc -c)" -eq 0
check "escapes in AUTH keywords: none in --serverinfo either" \
    test "$(tr -dc '\033\007' <"$T/escauth.info" | wc -c)" -eq 0
srv escname -T -n 1 -c "$CERTS/escname.pem" -k "$CERTS/escname.key" \
    -e "AUTH PLAIN,PIPELINING"
conf escname "tls_starttls off"
run escname bob@example.org
srv_wait
check_eq "escapes in the certificate's name: exit 78" "$RC" 78
check_grep "escapes in the certificate's name: shown, made harmless" \
    'is for evil?\]0;PWNED?\.example, not for 127.0.0.1' "$ERR"
check "escapes in the certificate's name: no ESC or BEL on stderr" \
    test "$(tr -dc '\033\007' <"$ERR" | wc -c)" -eq 0

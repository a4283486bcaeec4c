# SPDX-License-Identifier: ISC
# Shared helpers for the shell test scripts (tests/t-*.sh).
#
# Each script is run by tests/run from the top of the tree with these set:
#   TOP       the source tree
#   SMARTHOST the binary under test (./smarthost or build/asan/smarthost)
#   TESTSRV   the scripted test server (build/testsrv)
#   CERTS     directory holding the test CA and server certificates
# A check prints "ok - NAME", "not ok - NAME" or "skip - NAME # why".

: "${TOP:=$(pwd)}"
: "${SMARTHOST:=$TOP/smarthost}"
: "${TESTSRV:=$TOP/build/testsrv}"
: "${CERTS:=$TOP/build/certs}"
export TOP SMARTHOST TESTSRV CERTS

T=$(mktemp -d "${TMPDIR:-/tmp}/smarthost-test.XXXXXX")
chmod 0700 "$T"
# The machine's own files never matter: a home of our own, no system
# configuration, no XDG directories from the caller.
mkdir -p "$T/home"
export HOME=$T/home SMARTHOST_SYSCONF=/nonexistent
unset XDG_CONFIG_HOME XDG_STATE_HOME XDG_CACHE_HOME SMARTHOST_RELAY \
    SMARTHOST_PASSWORD SMARTHOST_PASSWORD_FILE SMARTHOST_FROM \
    CREDENTIALS_DIRECTORY
trap 'lib_cleanup' EXIT INT TERM
lib_pids='' lib_dirs=''
lib_cleanup() {
	[ -n "${KEEP:-}" ] && { echo "# kept $T$lib_dirs"; return; }
	for p in $lib_pids; do kill "$p" 2>/dev/null; done
	for p in $lib_pids; do wait "$p" 2>/dev/null; done
	rm -rf "$T"
	for p in $lib_dirs; do rm -rf "$p"; done
}

# private_dir VAR UID: a new directory that only UID may enter (0700),
# removed at exit; its path in VAR.  For what a test runs as another
# user: the checkout, $T and TMPDIR may be where that user cannot go (a
# clone under a 0700 directory), so what it runs and reads is copied
# here.  Under /var/tmp, which honours the setgid bit on a usual system.
private_dir() {
	local d
	d=$(mktemp -d /var/tmp/smarthost-test.XXXXXX) || return 1
	lib_dirs="$lib_dirs $d"
	chown "$2:$2" "$d" && chmod 0700 "$d" || return 1
	printf -v "$1" %s "$d"
}

ok() { echo "ok - $*"; }
notok() { echo "not ok - $*"; }
skip() { echo "skip - $*"; }

# check NAME COMMAND...: ok when COMMAND succeeds.
check() {
	local what=$1; shift
	if "$@"; then ok "$what"; else notok "$what"; fi
}

# check_eq NAME GOT WANT
check_eq() {
	if [ "$2" = "$3" ]; then ok "$1"
	else notok "$1"; printf '#   got:  %s\n#   want: %s\n' "$2" "$3"; fi
}

# check_grep NAME PATTERN FILE: ok when FILE has a line matching PATTERN.
check_grep() {
	if grep -q -e "$2" "$3" 2>/dev/null; then ok "$1"
	else notok "$1"; echo "#   no line matching '$2' in $3:"
		sed 's/^/#   | /' "$3" 2>/dev/null | head -20; fi
}

# check_nogrep NAME PATTERN FILE: ok when no line of FILE matches.
check_nogrep() {
	if grep -q -e "$2" "$3" 2>/dev/null; then notok "$1"
		echo "#   unexpected line matching '$2' in $3:"
		grep -e "$2" "$3" | sed 's/^/#   | /' | head -5
	else ok "$1"; fi
}

# free_port: print a TCP port on 127.0.0.1 nobody listens on.
free_port() {
	local p
	while :; do
		p=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 30000 ))
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
			echo "$p"; return
		fi
	done
}

# bg COMMAND...: run in the background, killed at exit; sets $!.
bg() {
	"$@" &
	lib_pids="$lib_pids $!"
}

# wait_port PORT: wait up to 5 s for something to listen on PORT.
wait_port() {
	local i=0
	while [ $i -lt 100 ]; do
		(exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		sleep 0.05; i=$((i + 1))
	done
	return 1
}

# The scripted test relay (build/testsrv) and a configuration for it.
# USER and PASS are the test account; tests may set them before use.
: "${USER:=alice@example.test}"
: "${PASS:=alice-not-a-real-secret}"

# testsrv NAME [testsrv options]: start a test relay in $T/NAME (one
# connection unless -n says otherwise; later options win), checking the
# password of USER:PASS, or of SRVUSER when set; sets PORT, TR (its
# transcript), MAIL (where it stores messages) and SRV (its pid).
testsrv() {
	local name=$1 _
	shift
	rm -rf "${T:?}/$name"; mkdir -p "$T/$name/mail"
	# SRVUSER=open: no users, mail from anyone, every AUTH refused.
	set -- -u "${SRVUSER:-$USER:$PASS}" "$@"
	[ "${SRVUSER:-}" = open ] && shift 2
	bg "$TESTSRV" -p 0 -w "$T/$name/port" -t "$T/$name/tr" \
	    -d "$T/$name/mail" -n 1 -x 60 "$@"
	SRV=$!
	for _ in $(seq 250); do [ -s "$T/$name/port" ] && break; sleep 0.02
	done
	PORT=$(cat "$T/$name/port")
	TR=$T/$name/tr
	MAIL=$T/$name/mail
}

# smarthost_conf FILE [directive lines...]: an account for the relay on
# $PORT, with the test PKI, its own queue and dead.letter; sets CONF.
smarthost_conf() {
	local f=$1 l
	shift
	{
		echo "account default"
		echo "host 127.0.0.1"
		echo "port $PORT"
		echo "tls_trust_file $CERTS/ca.pem"
		echo "user $USER"
		echo "password $PASS"
		echo "from $USER"
		echo "tls_session_cache off"
		echo "queue_dir $T/queue"
		echo "dead_letter $T/dead.letter"
		for l in "$@"; do echo "$l"; done
	} >"$f"
	chmod 600 "$f"
	CONF=$f
}

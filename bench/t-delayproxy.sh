#!/bin/bash
# SPDX-License-Identifier: ISC
# Checks that bench/delayproxy delays what it forwards by exactly what it
# is told, keeps order, passes EOF on and exits when told; bench/run runs
# it before measuring, so a broken proxy cannot produce a latency row.
# It talks plain SMTP to the test relay's plain port through the proxy.
#
#   bash bench/t-delayproxy.sh PROXY-BINARY   (the relay must be running)
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC1091
. "$TOP/tests/lib.sh"
PROXY=${1:-$TOP/build/bench/delayproxy}
eval "$(tests/postfix-relay env)"

ms() { echo $(( (${EPOCHREALTIME/./} - $1) / 1000 )); }
now() { echo "${EPOCHREALTIME/./}"; }

# in_range NAME VALUE LOW HIGH
in_range() {
	if [ "$2" -ge "$3" ] && [ "$2" -le "$4" ]; then ok "$1 ($2 ms)"
	else notok "$1"; echo "#   $2 ms, want $3..$4"; fi
}

"$PROXY" -d 25 -t 60 "$RELAY_HOST" "$RELAY_PLAIN" >"$T/port" &
pid=$!
lib_pids="$lib_pids $pid"
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.05; done
port=$(awk '/^port /{ print $2 }' "$T/port")
check "proxy prints its port" test -n "$port"

t0=$(now)
exec 3<>"/dev/tcp/127.0.0.1/$port"
read -r -t 5 greet <&3
check_eq "greeting passes through" "${greet:0:4}" "220 "
in_range "greeting arrives one way delay (25 ms) later" "$(ms "$t0")" 25 90

t0=$(now)
printf 'NOOP\r\n' >&3
read -r -t 5 reply <&3
check_eq "NOOP reply" "${reply%$'\r'}" "250 2.0.0 Ok"
in_range "a command costs one round trip (50 ms)" "$(ms "$t0")" 50 120

# Twenty commands in one write: twenty replies, in order, in one round
# trip (the proxy adds latency, never serialisation).
t0=$(now)
printf 'NOOP %d\r\n' $(seq 20) >&3
n=0
for _ in $(seq 20); do
	read -r -t 5 reply <&3 || break
	[ "${reply%$'\r'}" = "250 2.0.0 Ok" ] && n=$((n + 1))
done
check_eq "twenty pipelined replies" "$n" 20
in_range "twenty pipelined commands cost one round trip" "$(ms "$t0")" \
    50 120

printf 'QUIT\r\n' >&3
read -r -t 5 reply <&3
check_eq "QUIT reply" "${reply:0:4}" "221 "
read -r -t 5 reply <&3
check_eq "EOF is passed on (1 = EOF, >128 = timeout)" "$?" 1
exec 3<&-

kill "$pid"
wait "$pid"
check_eq "exits 0 on SIGTERM" "$?" 0

t0=$(now)
"$PROXY" -d 25 -t 1 "$RELAY_HOST" "$RELAY_PLAIN" >/dev/null
rc=$?
check_eq "exits 0 by itself after -t" "$rc" 0
in_range "-t 1 means one second" "$(ms "$t0")" 1000 1500

"$PROXY" -d 25 127.0.0.1 notaport >/dev/null 2>&1
check_eq "a bad target port is a usage error" "$?" 64

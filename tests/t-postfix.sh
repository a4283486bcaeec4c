# SPDX-License-Identifier: ISC
# The Postfix test relay (tests/postfix-relay) behaves as the smarthost
# setup it stands for: authenticated mail relayed to the sink with exact
# envelope and body, TLS 1.3, AUTH only after STARTTLS, relay refused
# without AUTH, sender bound to the login, wrong password refused, start
# idempotent.  SMTP is driven with openssl s_client as a bash coprocess
# that reads every reply before the next command is sent.
. tests/lib.sh
PATH=$PATH:/usr/sbin:/sbin	# postfix, postconf when not in a login shell

if [ "$(id -u)" -ne 0 ]; then
	skip "postfix relay # needs root to start Postfix"; exit 0
fi

if ! tests/postfix-relay start >"$T/start1" 2>&1; then
	notok "relay starts"; sed 's/^/#   | /' "$T/start1"; exit 1
fi
ok "relay starts"
eval "$(tests/postfix-relay env)"
CA=$CERTS/ca.pem
check_eq "env: users" "$RELAY_HOST $RELAY_USER $RELAY_PASS $RELAY_USER2 $(
    )$RELAY_PASS2" "127.0.0.1 alice@relay.test alice-test-secret $(
    )bob@relay.test bob-test-secret"
check "env: Postfix 3.7 ($RELAY_VERSION)" \
    eval '[[ $RELAY_VERSION == 3.7.* ]]'
ports="$RELAY_SUBMISSION $RELAY_SMTPS $RELAY_PLAIN $RELAY_SINKPORT $(
    )$RELAY_LIMITED"
check_eq "env: five different ports, none of the old fixed ones" \
    "$(echo "$ports" | tr ' ' '\n' | grep -E '^[0-9]+$' |
    grep -vxE '1002[56]|10465|10587' | sort -u | wc -l)" 5
check "env: the Postfix is not the machine's (a root of its own)" \
    eval '[ -x "$RELAY_ROOT/usr/sbin/postfix" ] &&
    [ "$RELAY_ROOT" != / ] && [ -n "$RELAY_ROOT" ]'
check_eq "env: the state directory is this checkout's" \
    "$(cat "$RELAY_STATE/checkout")" "$(cd "$TOP" && pwd -P)"
check_eq "env: sink, log, config and queue in it" \
    "$RELAY_SINK $RELAY_LOG $RELAY_CONF $RELAY_QUEUE" "$(
    )$RELAY_STATE/sink $RELAY_STATE/maillog $RELAY_STATE/etc $(
    )$RELAY_STATE/spool"
check "env: RELAY_CA is the CA of $CERTS" cmp -s "$RELAY_CA" "$CA"
M=tpf$(date +%s)$$$RANDOM	# marks this run's messages

# --- an SMTP client: plain TCP, or openssl s_client in a coprocess ------

IN='' OUT='' MODE='' SPID=''
smtp_open() {	# MODE(plain|starttls|tls) PORT
	MODE=$1
	: >"$T/tls.err"
	case $1 in
	plain)
		exec 5<>"/dev/tcp/$RELAY_HOST/$2" || return 1
		IN=5 OUT=5 SPID=
		reply
		;;
	starttls)
		coproc S { exec openssl s_client -starttls smtp \
		    -connect "$RELAY_HOST:$2" -CAfile "$CA" \
		    -verify_return_error -verify_ip "$RELAY_HOST" -brief \
		    -crlf -quiet -ign_eof 2>"$T/tls.err"; }
		# shellcheck disable=SC2153 # S_PID is set by coproc
		IN=${S[0]} OUT=${S[1]} SPID=$S_PID
		lib_pids="$lib_pids $SPID"
		;;
	tls)
		coproc S { exec openssl s_client \
		    -connect "$RELAY_HOST:$2" -CAfile "$CA" \
		    -verify_return_error -verify_ip "$RELAY_HOST" -brief \
		    -crlf -quiet -ign_eof 2>"$T/tls.err"; }
		# shellcheck disable=SC2153 # S_PID is set by coproc
		IN=${S[0]} OUT=${S[1]} SPID=$S_PID
		lib_pids="$lib_pids $SPID"
		reply
		;;
	esac
}

send() {
	echo "C: $1" >>"$T/transcript"
	if [ "$MODE" = plain ]; then
		printf '%s\r\n' "$1" >&"$OUT"
	else
		printf '%s\n' "$1" >&"$OUT"	# -crlf adds the CR
	fi
}

# reply: read one (multi-line) reply; R_ALL all lines, R_LAST the last,
# R_CODE its code ("none" on timeout or close).
reply() {
	local line
	R_ALL='' R_LAST='' R_CODE=''
	while IFS= read -r -t 10 -u "$IN" line; do
		line=${line%$'\r'}
		echo "S: $line" >>"$T/transcript"
		R_ALL+="$line"$'\n'
		case $line in
		[0-9][0-9][0-9]" "*|[0-9][0-9][0-9])
			R_LAST=$line R_CODE=${line:0:3}
			return 0
			;;
		esac
	done
	R_LAST="(no reply)" R_CODE=none
	return 1
}

cmd() { send "$1"; reply; }

smtp_close() {
	local i=0
	cmd QUIT
	if [ "$MODE" = plain ]; then
		exec 5>&-
		return 0
	fi
	while [ $i -lt 50 ] && kill -0 "$SPID" 2>/dev/null; do
		sleep 0.05; i=$((i + 1))
	done
	kill "$SPID" 2>/dev/null
	wait "$SPID" 2>/dev/null
	return 0
}

b64() { printf '%s' "$1" | base64 -w0; }
auth_plain() {	# USER PASS
	cmd "AUTH PLAIN $(printf '\0%s\0%s' "$1" "$2" | base64 -w0)"
}

# send_data FILE: DATA, the file dot-stuffed, the final dot; sets QID.
QID=
send_data() {
	local line
	QID=
	cmd DATA
	[ "$R_CODE" = 354 ] || return 1
	while IFS= read -r line; do
		case $line in .*) line=.$line ;; esac
		send "$line"
	done <"$1"
	cmd .
	QID=$(echo "$R_LAST" | sed -n 's/^250 2.0.0 Ok: queued as //p')
}

# wait_sent QID N: up to 10 s for Postfix to log N deliveries to the sink.
wait_sent() {
	local i=0 n
	while [ $i -lt 100 ]; do
		n=$(grep -c "$1: to=<.*status=sent" "$RELAY_LOG")
		[ "$n" -ge "$2" ] && return 0
		sleep 0.1; i=$((i + 1))
	done
	return 1
}

# sink_file QID: the sink file of that message (in Postfix's Received
# header a line ends with "id QID", or "id QID;" for several recipients).
sink_file() { grep -rl -e " id $1;\?\$" "$RELAY_SINK" | head -1; }

# sink_body FILE: the message after the sink's and Postfix's Received.
sink_body() {
	awk 'st == 3 { print; next }
	    /^Received: / && st < 2 { st++; next }
	    st >= 1 && /^[ \t]/ { next }
	    st == 2 { st = 3; print }' "$1"
}

check_file() {	# NAME GOT WANT
	if cmp -s "$2" "$3"; then ok "$1"
	else notok "$1"; diff "$3" "$2" | sed 's/^/#   /' | head -20; fi
}

tls_version() { sed -n 's/^Protocol version: //p' "$T/tls.err"; }

# --- (6) AUTH is not offered before STARTTLS on the submission port ------

smtp_open plain "$RELAY_SUBMISSION"
check_eq "submission greeting" "$R_LAST" \
    "220 relay.test ESMTP Postfix (smarthost test relay)"
cmd "EHLO client.test"
check_eq "submission EHLO before TLS: STARTTLS offered" \
    "$(echo "$R_ALL" | grep -c '^250[- ]STARTTLS$')" 1
check_eq "submission EHLO before TLS: no AUTH" \
    "$(echo "$R_ALL" | grep -c '^250[- ]AUTH')" 0
auth_plain "$RELAY_USER" "$RELAY_PASS"
check_eq "AUTH before STARTTLS refused" "$R_LAST" \
    "530 5.7.0 Must issue a STARTTLS command first"
cmd "MAIL FROM:<$RELAY_USER>"
check_eq "MAIL before STARTTLS refused" "$R_LAST" \
    "530 5.7.0 Must issue a STARTTLS command first"
smtp_close

# --- (3) relay without AUTH is refused, on every port -------------------

smtp_open starttls "$RELAY_SUBMISSION"
cmd "EHLO client.test"
check_eq "after STARTTLS: AUTH mechanisms offered" \
    "$(echo "$R_ALL" | grep '^250-AUTH ')" \
    "250-AUTH PLAIN LOGIN CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256"
cmd "MAIL FROM:<$RELAY_USER>"
check_eq "no AUTH: a login's address needs the login" "$R_LAST" \
    "553 5.7.1 <$RELAY_USER>: Sender address rejected: not logged in"
cmd "MAIL FROM:<mallory@example.org>"
check_eq "no AUTH: MAIL FROM a foreign sender accepted" "$R_LAST" \
    "250 2.1.0 Ok"
cmd "RCPT TO:<norelay-$M@example.net>"
check_eq "no AUTH: relay refused on submission" "$R_LAST" \
    "554 5.7.1 <norelay-$M@example.net>: Relay access denied"
# Refused mail carries the marker "refused-$M"; a relay that let it
# through would put it into the sink, which is checked further down.
printf 'Subject: refused-%s\n\nmust not arrive\n' "$M" >"$T/refused"
send_data "$T/refused"
check_eq "no AUTH: DATA refused" "$R_LAST" \
    "554 5.5.1 Error: no valid recipients"
smtp_close

smtp_open plain "$RELAY_PLAIN"
cmd "EHLO client.test"
check_eq "plain port: neither STARTTLS nor AUTH offered" \
    "$(echo "$R_ALL" | grep -c -e '^250[- ]AUTH' -e '^250[- ]STARTTLS')" 0
cmd "MAIL FROM:<mallory@example.org>"
cmd "RCPT TO:<norelay-plain-$M@example.net>"
check_eq "plain port: relay refused" "$R_LAST" \
    "554 5.7.1 <norelay-plain-$M@example.net>: Relay access denied"
send_data "$T/refused"
check_eq "plain port: DATA refused" "$R_LAST" \
    "554 5.5.1 Error: no valid recipients"
smtp_close
want="NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 554 5.7.1"
want+=" <norelay-$M@example.net>: Relay access denied;"
want+=" from=<mallory@example.org> to=<norelay-$M@example.net>"
want+=" proto=ESMTP helo=<client.test>"
check_eq "relay refusal logged" "$(grep -cF "$want" "$RELAY_LOG")" 1

# --- (5) a wrong password gets 535 ---------------------------------------

smtp_open starttls "$RELAY_SUBMISSION"
cmd "EHLO client.test"
auth_plain "$RELAY_USER" "wrong-$RELAY_PASS"
check_eq "wrong password: 535" "$R_LAST" \
    "535 5.7.8 Error: authentication failed: authentication failure"
cmd "MAIL FROM:<$RELAY_USER>"
check_eq "wrong password: still not logged in" "$R_LAST" \
    "553 5.7.1 <$RELAY_USER>: Sender address rejected: not logged in"
smtp_close

# --- (4) alice may not send as bob ---------------------------------------

smtp_open starttls "$RELAY_SUBMISSION"
cmd "EHLO client.test"
auth_plain "$RELAY_USER" "$RELAY_PASS"
check_eq "AUTH PLAIN as $RELAY_USER" "$R_LAST" \
    "235 2.7.0 Authentication successful"
cmd "MAIL FROM:<$RELAY_USER2>"
want="553 5.7.1 <$RELAY_USER2>: Sender address rejected:"
check_eq "$RELAY_USER as $RELAY_USER2: 553" "$R_LAST" \
    "$want not owned by user $RELAY_USER"
cmd "RCPT TO:<asbob-$M@example.net>"
check_eq "after the 553: RCPT needs MAIL" "$R_LAST" \
    "503 5.5.1 Error: need MAIL command"
send_data "$T/refused"
check_eq "after the 553: DATA refused" "$R_LAST" \
    "503 5.5.1 Error: need RCPT command"
smtp_close

# --- (1) (2) an authenticated message arrives with envelope and body ----

cat >"$T/msg1" <<EOF
From: Alice <$RELAY_USER>
To: Bob <bob@example.net>, Carol <carol@example.org>
Subject: t-postfix $M
Date: Thu, 01 Jan 2026 12:00:00 +0000
Message-ID: <$M.1@relay.test>

first line
.a line that starts with a dot
..two dots

last line
EOF
smtp_open starttls "$RELAY_SUBMISSION"
cmd "EHLO client.test"
check_eq "submission: TLS 1.3 negotiated (client side)" \
    "$(tls_version)" TLSv1.3
auth_plain "$RELAY_USER" "$RELAY_PASS"
cmd "MAIL FROM:<$RELAY_USER>"
check_eq "MAIL FROM own address" "$R_LAST" "250 2.1.0 Ok"
cmd "RCPT TO:<bob@example.net>"
check_eq "RCPT 1 relayed" "$R_LAST" "250 2.1.5 Ok"
cmd "RCPT TO:<carol@example.org>"
check_eq "RCPT 2 relayed" "$R_LAST" "250 2.1.5 Ok"
send_data "$T/msg1"
check "message queued with an id" [ -n "$QID" ]
smtp_close
qid1=$QID

check "delivered to the sink within 10 s" wait_sent "$qid1" 2
f1=$(sink_file "$qid1")
check "one sink file for it" [ -n "$f1" ]
check_eq "sink: MAIL FROM" "$(grep '^X-Mail-Args:' "$f1")" \
    "X-Mail-Args: <$RELAY_USER>"
check_eq "sink: recipients" "$(grep '^X-Rcpt-Args:' "$f1" | sort)" \
    "X-Rcpt-Args: <bob@example.net> ORCPT=rfc822;bob@example.net
X-Rcpt-Args: <carol@example.org> ORCPT=rfc822;carol@example.org"
{ cat "$T/msg1"; echo; } >"$T/want1"
sink_body "$f1" >"$T/got1"
check_file "sink: headers and body byte for byte" "$T/got1" "$T/want1"
check_grep "sink: Postfix's Received says TLSv1.3" \
    "^	(using TLSv1.3 with cipher " "$f1"
check_grep "sink: Postfix's Received says ESMTPSA" \
    "^	by relay.test (Postfix) with ESMTPSA id $qid1;\$" "$f1"
want="]: $qid1: client=unknown[127.0.0.1], sasl_method=PLAIN,"
want+=" sasl_username=$RELAY_USER"
pid=$(grep -F "$want" "$RELAY_LOG" | sed -n 's/^[^[]*\[\([0-9]*\)\]: .*/\1/p')
check "log: SASL login of that session" [ -n "$pid" ]
check_eq "log: that session negotiated TLSv1.3" \
    "$(awk -v p="smtpd[$pid]:" -v q="$qid1: client=" '
	index($0, p) && /TLS connection established/ { t = $0 }
	index($0, q) { sub(/.*established from [^ ]* /, "", t);
	    sub(/ with cipher.*/, "", t); print t; exit }' "$RELAY_LOG")" \
    TLSv1.3

# Implicit TLS, the second user, AUTH LOGIN.
cat >"$T/msg2" <<EOF
From: $RELAY_USER2
To: dave@example.com
Subject: t-postfix smtps $M

sent over implicit TLS
EOF
smtp_open tls "$RELAY_SMTPS"
check_eq "smtps greeting" "$R_LAST" \
    "220 relay.test ESMTP Postfix (smarthost test relay)"
check_eq "smtps: TLS 1.3 negotiated (client side)" "$(tls_version)" TLSv1.3
cmd "EHLO client.test"
cmd "AUTH LOGIN"
cmd "$(b64 "$RELAY_USER2")"
cmd "$(b64 "$RELAY_PASS2")"
check_eq "smtps: AUTH LOGIN as $RELAY_USER2" "$R_LAST" \
    "235 2.7.0 Authentication successful"
cmd "MAIL FROM:<$RELAY_USER2> RET=HDRS ENVID=env-$M"
cmd "RCPT TO:<dave@example.com> NOTIFY=FAILURE"
check_eq "smtps: RCPT relayed" "$R_LAST" "250 2.1.5 Ok"
send_data "$T/msg2"
smtp_close
qid2=$QID
check "smtps: delivered to the sink within 10 s" wait_sent "$qid2" 1
f2=$(sink_file "$qid2")
check_eq "smtps sink: MAIL FROM with DSN parameters passed on" \
    "$(grep '^X-Mail-Args:' "$f2")" \
    "X-Mail-Args: <$RELAY_USER2> ENVID=env-$M RET=HDRS"
check_eq "smtps sink: RCPT with NOTIFY passed on" \
    "$(grep '^X-Rcpt-Args:' "$f2")" \
    "X-Rcpt-Args: <dave@example.com> ORCPT=rfc822;dave@example.com$(
	) NOTIFY=FAILURE"
{ cat "$T/msg2"; echo; } >"$T/want2"
sink_body "$f2" >"$T/got2"
check_file "smtps sink: headers and body" "$T/got2" "$T/want2"
check_grep "smtps sink: TLSv1.3" "^	(using TLSv1.3 with cipher " "$f2"

# (3) continued: the refused attempts left nothing in the sink, now that
# later mail has arrived.
check_eq "refused mail never reached the sink" \
    "$(grep -rl -e "refused-$M" -e "norelay-$M" -e "norelay-plain-$M" \
	-e "asbob-$M" "$RELAY_SINK" | wc -l)" 0

# --- CRAM-MD5 and SCRAM-SHA-256 work against the sasldb -----------------

hex2bin() { printf '%b' "$(echo "$1" | sed 's/../\\x&/g')"; }
hmac() {	# HEXKEY [md5]: hex HMAC-SHA256 (or -MD5) of stdin
	openssl dgst "-${2:-sha256}" -mac HMAC -macopt "hexkey:$1" |
	    sed 's/^.*= //'
}
hexxor() {
	local a=$1 b=$2 i out=
	for ((i = 0; i < ${#a}; i += 2)); do
		out+=$(printf '%02x' $((16#${a:i:2} ^ 16#${b:i:2})))
	done
	echo "$out"
}
tohex() { od -An -v -tx1 | tr -d ' \n'; }

smtp_open starttls "$RELAY_SUBMISSION"
cmd "EHLO client.test"
cmd "AUTH CRAM-MD5"
chal=$(echo "${R_LAST#334 }" | base64 -d)
digest=$(printf '%s' "$chal" |
    hmac "$(printf '%s' "$RELAY_PASS" | tohex)" md5)
cmd "$(printf '%s %s' "$RELAY_USER" "$digest" | base64 -w0)"
check_eq "AUTH CRAM-MD5" "$R_LAST" "235 2.7.0 Authentication successful"
smtp_close

smtp_open starttls "$RELAY_SUBMISSION"
cmd "EHLO client.test"
cnonce=$(openssl rand -hex 12)
first="n=$RELAY_USER,r=$cnonce"
cmd "AUTH SCRAM-SHA-256 $(printf 'n,,%s' "$first" | base64 -w0)"
sfirst=$(echo "${R_LAST#334 }" | base64 -d)
nonce=$(echo "$sfirst" | sed -n 's/^r=\([^,]*\),.*/\1/p')
salt=$(echo "$sfirst" | sed -n 's/.*,s=\([^,]*\),.*/\1/p')
iter=$(echo "$sfirst" | sed -n 's/.*,i=\([0-9]*\).*/\1/p')
salted=$(openssl kdf -keylen 32 -kdfopt digest:SHA256 \
    -kdfopt "pass:$RELAY_PASS" \
    -kdfopt "hexsalt:$(echo "$salt" | base64 -d | tohex)" \
    -kdfopt "iter:$iter" PBKDF2 | tr -d ':' | tr 'A-F' 'a-f')
ckey=$(printf 'Client Key' | hmac "$salted")
stored=$(hex2bin "$ckey" | openssl dgst -sha256 | sed 's/^.*= //')
final="c=biws,r=$nonce"
authmsg="$first,$sfirst,$final"
csig=$(printf '%s' "$authmsg" | hmac "$stored")
proof=$(hex2bin "$(hexxor "$ckey" "$csig")" | base64 -w0)
skey=$(printf 'Server Key' | hmac "$salted")
ssig=$(printf '%s' "$authmsg" | hmac "$skey")
cmd "$(printf '%s,p=%s' "$final" "$proof" | base64 -w0)"
check_eq "SCRAM-SHA-256: server proves it knows the password" \
    "$(echo "${R_LAST#334 }" | base64 -d)" \
    "v=$(hex2bin "$ssig" | base64 -w0)"
cmd ""
check_eq "AUTH SCRAM-SHA-256" "$R_LAST" "235 2.7.0 Authentication successful"
smtp_close

# --- (7) start again: harmless; a changed config is put back -------------

master_pid() { tr -d ' ' <"$RELAY_QUEUE/pid/master.pid"; }
mpid=$(master_pid)
spid=$(cat "$RELAY_STATE/sink.pid")
tests/postfix-relay start >"$T/start2" 2>&1
check_eq "start again: exit 0" "$?" 0
check_eq "start again: says it runs, no reload" "$(cat "$T/start2")" \
    "postfix-relay: running: Postfix 3.7, postfix -c $(
    )${RELAY_CONF#"$RELAY_ROOT"} in $RELAY_ROOT (log $RELAY_LOG), sink $(
    )$RELAY_SINK"
check_eq "start again: same master" "$(master_pid)" "$mpid"
check_eq "start again: same sink" "$(cat "$RELAY_STATE/sink.pid")" \
    "$spid"
tests/postfix-relay status >/dev/null 2>&1
check_eq "status: exit 0 when up" "$?" 0

cp "$RELAY_CONF/main.cf" "$T/main.cf"
echo "smtpd_banner = edited" >>"$RELAY_CONF/main.cf"
tests/postfix-relay start >"$T/start3" 2>&1
check_eq "edited config: start reloads" "$(head -1 "$T/start3")" \
    "postfix-relay: configuration changed: reloading"
check_file "edited config: main.cf put back" "$RELAY_CONF/main.cf" \
    "$T/main.cf"
smtp_open plain "$RELAY_PLAIN"
check_eq "after reload: still serving" "$R_LAST" \
    "220 relay.test ESMTP Postfix (smarthost test relay)"
smtp_close

# --- (8) ports: kept while free, new ones when another program took one --

old=$RELAY_SUBMISSION
tests/postfix-relay stop 3.7 >/dev/null 2>&1
testsrv occupy -p "$old"
check_eq "a program of ours took the old submission port" "$PORT" "$old"
tests/postfix-relay start >"$T/start4" 2>&1
check_eq "start with a port taken: exit 0" "$?" 0
sed 's/^/#   | /' "$T/start4" | grep -v 'running:'
kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null
eval "$(tests/postfix-relay env)"
check "start with a port taken: a new submission port" \
    [ "$RELAY_SUBMISSION" != "$old" ]
check_eq "start with a port taken: the others kept" \
    "$RELAY_SMTPS $RELAY_PLAIN $RELAY_SINKPORT $RELAY_LIMITED" "${ports#* }"
smtp_open plain "$RELAY_SUBMISSION"
check_eq "the new submission port serves" "$R_LAST" \
    "220 relay.test ESMTP Postfix (smarthost test relay)"
smtp_close
ports7="$RELAY_SUBMISSION $RELAY_SMTPS $RELAY_PLAIN $RELAY_SINKPORT $(
    )$RELAY_LIMITED"
PLAIN7=$RELAY_PLAIN SINK7=$RELAY_SINK

# --- (9) Debian 13's Postfix 3.10 next to it ------------------------------

if ! tests/postfix-relay start 3.10 >"$T/start10" 2>&1; then
	notok "3.10: relay starts"; sed 's/^/#   | /' "$T/start10"; exit 1
fi
ok "3.10: relay starts"
eval "$(tests/postfix-relay env 3.10)"
check "3.10: env says Postfix 3.10 ($RELAY_VERSION)" \
    eval '[[ $RELAY_VERSION == 3.10.* ]]'
check_eq "3.10: no port in common with the 3.7 relay" \
    "$(echo "$ports7 $RELAY_SUBMISSION $RELAY_SMTPS $RELAY_PLAIN $(
    )$RELAY_SINKPORT $RELAY_LIMITED" | tr ' ' '\n' | sort | uniq -d)" ""
tests/postfix-relay status 3.7 >/dev/null 2>&1
check_eq "3.10 up: the 3.7 relay is still up" "$?" 0
check_eq "3.10: smtpd_forbid_unauth_pipelining = yes" \
    "$(tests/postfix-relay exec 3.10 postconf -h \
    smtpd_forbid_unauth_pipelining)" yes

# The stricter rule, seen from a client: HELO is not announced PIPELINING,
# so a second command in the same write is a protocol violation; 3.7
# answers both, 3.10 hangs up.  One write (cat of a file), or the second
# line might arrive after smtpd looked.
printf 'HELO client.test\r\nNOOP\r\n' >"$T/pipelined"
pipelined() {	# PORT: the replies, joined with "|"
	local l out=
	exec 5<>"/dev/tcp/127.0.0.1/$1" || return
	read -r -t 5 -u 5 l
	cat "$T/pipelined" >&5
	while read -r -t 3 -u 5 l; do out+="${l%$'\r'}|"; done
	exec 5>&-
	echo "$out"
}
check_eq "3.7: HELO and NOOP in one write: both answered" \
    "$(pipelined "$PLAIN7")" "250 relay.test|250 2.0.0 Ok|"
check_eq "3.10: HELO and NOOP in one write: 554, disconnected" \
    "$(pipelined "$RELAY_PLAIN")" \
    "554 5.5.0 Error: SMTP protocol synchronization|"

# One authenticated message through it, one command at a time.
sed "s/^Subject: .*/Subject: t-postfix 3.10 $M/" "$T/msg1" >"$T/msg10"
smtp_open starttls "$RELAY_SUBMISSION"
cmd "EHLO client.test"
check_eq "3.10: TLS 1.3 on submission" "$(tls_version)" TLSv1.3
auth_plain "$RELAY_USER" "$RELAY_PASS"
check_eq "3.10: AUTH PLAIN" "$R_LAST" "235 2.7.0 Authentication successful"
cmd "MAIL FROM:<$RELAY_USER>"
check_eq "3.10: MAIL FROM own address" "$R_LAST" "250 2.1.0 Ok"
cmd "RCPT TO:<bob@example.net>"
check_eq "3.10: RCPT relayed" "$R_LAST" "250 2.1.5 Ok"
send_data "$T/msg10"
check "3.10: message queued with an id" [ -n "$QID" ]
smtp_close
check "3.10: delivered to its sink within 10 s" wait_sent "$QID" 1
f10=$(sink_file "$QID")
check "3.10: one sink file for it" [ -n "$f10" ]
{ cat "$T/msg10"; echo; } >"$T/want10"
sink_body "$f10" >"$T/got10"
check_file "3.10: headers and body byte for byte" "$T/got10" "$T/want10"
check_grep "3.10: relayed as ESMTPSA" \
    "^	by relay.test (Postfix) with ESMTPSA id $QID\$" "$f10"
check_eq "3.10: nothing of it in the 3.7 relay's sink" \
    "$(grep -rl "^Subject: t-postfix 3.10 $M\$" "$SINK7" | wc -l)" 0

# --- (10) another checkout, at the same time: a relay of its own ---------

eval "$(tests/postfix-relay env)"
O=$T/other
mkdir -p "$O/tests" "$O/scripts"
cp -r tests/postfix-relay tests/postfix tests/mkcerts "$O/tests/"
cp scripts/debian-mirror "$O/scripts/"
"$O/tests/postfix-relay" start >"$T/other-start" 2>&1
check_eq "another checkout: its relay starts" "$?" 0
other=$("$O/tests/postfix-relay" env)
oget() { echo "$other" | sed -n "s/^$1=//p"; }
check "another checkout: its own state directory" \
    [ "$(oget RELAY_STATE)" != "$RELAY_STATE" ]
check_eq "another checkout: no port in common" \
    "$(echo "$RELAY_SUBMISSION $RELAY_SMTPS $RELAY_PLAIN $RELAY_SINKPORT $(
    )$RELAY_LIMITED $(oget RELAY_SUBMISSION) $(oget RELAY_SMTPS) $(
    )$(oget RELAY_PLAIN) $(oget RELAY_SINKPORT) $(oget RELAY_LIMITED)" |
    tr ' ' '\n' | sort | uniq -d)" ""
smtp_open plain "$(oget RELAY_PLAIN)"
check_eq "another checkout: its relay serves" "$R_LAST" \
    "220 relay.test ESMTP Postfix (smarthost test relay)"
smtp_close
tests/postfix-relay status >/dev/null 2>&1
check_eq "another checkout: ours still up" "$?" 0
"$O/tests/postfix-relay" clean >/dev/null 2>&1
check "another checkout: clean removes its relay" \
    [ ! -e "$(oget RELAY_STATE)" ]

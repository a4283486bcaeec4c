#!/bin/bash
# SPDX-License-Identifier: ISC
# The scripted test server itself (build/testsrv): the protocol, the
# transcript, the stored messages, every fault action, AUTH, TLS and the
# command line.  The other tests trust what it records, so each check
# here compares exact bytes.  Clear-text clients are bash /dev/tcp; TLS
# clients are openssl s_client; SCRAM uses the gsasl tool when present.
. tests/lib.sh

C=$CERTS
TLSOPT=(-c "$C/server.pem" -k "$C/server.key")

# srv NAME [testsrv options]: start a server; sets PORT, TR, MD, PID.
srv() {
	local d=$T/$1; shift
	mkdir -p "$d/mail"
	TR=$d/tr MD=$d/mail SERR=$d/stderr
	"$TESTSRV" -p 0 -w "$d/port" -t "$TR" -d "$MD" -x 30 "$@" \
	    2>"$SERR" &
	PID=$!
	lib_pids="$lib_pids $PID"
	for _ in $(seq 250); do [ -s "$d/port" ] && break; sleep 0.02; done
	PORT=$(cat "$d/port" 2>/dev/null)
	GOT=$d/got
	: >"$GOT"
}

# finish: wait for the server (started with -n) to exit; sets SRVRC.
finish() {
	wait "$PID"
	SRVRC=$?
}

conn() { exec 3<>/dev/tcp/127.0.0.1/"$PORT"; }
hangup() { exec 3<&-; }

# put TEXT: send TEXT (printf escapes) in one write().
put() {
	printf '%b' "$1" >"$T/put"
	cat "$T/put" >&3
}

# get [N]: read N whole replies (default 1) into $GOT, CR removed.
get() {
	local n=${1:-1} l
	while [ "$n" -gt 0 ]; do
		IFS= read -r -t 5 l <&3 || return 1
		l=${l%$'\r'}
		printf '%s\n' "$l" >>"$GOT"
		case $l in [0-9][0-9][0-9]-*) ;; *) n=$((n - 1));; esac
	done
}

# check_file NAME FILE: FILE must equal stdin.
check_file() {
	cat >"$T/want"
	if cmp -s "$T/want" "$2"; then ok "$1"
	else notok "$1"; diff -u "$T/want" "$2" 2>&1 | head -30 |
	    sed 's/^/#   /'; fi
}

# dialogue: greeting and EHLO, their replies in $GOT.
hello() { conn; get; put 'EHLO client.test\r\n'; get; }

ms() { echo $(( $(date +%s%N) / 1000000 )); }

# ------------------------------------------------------------------
# 1. Greeting, EHLO, a pipelined transaction in one flight, the store.

srv pipe -n 1
hello
printf '%s\r\n' 'MAIL FROM:<a@example.org> BODY=8BITMIME' \
    'RCPT TO:<b@example.org>' DATA >"$T/flight2"
cat "$T/flight2" >&3
get 3
printf 'Subject: t\r\n\r\n..dot line\r\nplain\r\n.\r\n' >"$T/body"
cat "$T/body" >&3
get
put 'QUIT\r\n'; get
hangup; finish
check_eq "-n 1: exits 0 after one connection" "$SRVRC" 0
check_file "greeting, EHLO and pipelined replies" "$GOT" <<'EOF'
220 testsrv ESMTP ready
250-testsrv
250-PIPELINING
250-8BITMIME
250 ENHANCEDSTATUSCODES
250 2.1.0 Ok
250 2.1.5 Ok
354 End data with <CR><LF>.<CR><LF>
250 2.0.0 Ok: queued as 1
221 2.0.0 Bye
EOF
check_file "transcript of a pipelined session" "$TR" <<EOF
CONNECT 1
S 0 220 testsrv ESMTP ready
C 1 EHLO client.test
S 1 250-testsrv
S 1 250-PIPELINING
S 1 250-8BITMIME
S 1 250 ENHANCEDSTATUSCODES
FLIGHT 1 reads=1 bytes=18
C 2 MAIL FROM:<a@example.org> BODY=8BITMIME
S 2 250 2.1.0 Ok
C 2 RCPT TO:<b@example.org>
S 2 250 2.1.5 Ok
C 2 DATA
S 2 354 End data with <CR><LF>.<CR><LF>
FLIGHT 2 reads=1 bytes=$(wc -c <"$T/flight2")
DATA 3 $(wc -c <"$T/body") 1
S 3 250 2.0.0 Ok: queued as 1
FLIGHT 3 reads=1 bytes=$(wc -c <"$T/body")
C 4 QUIT
S 4 221 2.0.0 Bye
FLIGHT 4 reads=1 bytes=6
CLOSE 1 quit
EOF
printf 'Subject: t\r\n\r\n.dot line\r\nplain\r\n' >"$T/want.eml"
check "DATA: N.eml is the data un-stuffed, final dot removed" \
    cmp -s "$T/want.eml" "$MD/1.eml"
check "DATA: N.raw is the data as it crossed the wire" \
    cmp -s "$T/body" "$MD/1.raw"
check_file "DATA: N.env" "$MD/1.env" <<'EOF'
ehlo client.test
tls none
auth none
from <a@example.org> BODY=8BITMIME
rcpt <b@example.org>
via DATA
EOF

# 1b. -L: a recipient limit per transaction, as Exim's recipients_max.
srv limit -n 1 -L 2
hello
printf '%s\r\n' 'MAIL FROM:<a@x.test>' 'RCPT TO:<b@x.test>' \
    'RCPT TO:<c@x.test>' 'RCPT TO:<d@x.test>' RSET 'RCPT TO:<e@x.test>' \
    >&3
get 5
put 'MAIL FROM:<a@x.test>\r\nRCPT TO:<e@x.test>\r\nQUIT\r\n'; get 3
hangup; finish
check_eq "-L 2: the third RCPT gets 452 4.5.3, RSET starts again" \
    "$(sed -n '6,12p' "$GOT" | cut -c1-9 | tr '\n' ' ')" \
    "250 2.1.0 250 2.1.5 250 2.1.5 452 4.5.3 250 2.0.0 503 5.5.1 250 2.1.0 "

# ------------------------------------------------------------------
# 2. BDAT: chunks, LAST, all in the client's flight.

srv bdat -n 1 -e "PIPELINING,CHUNKING,BINARYMIME,8BITMIME"
hello
printf '%s\r\n' 'MAIL FROM:<a@x.test> BODY=BINARYMIME' 'RCPT TO:<b@x.test>' \
    'BDAT 4' ab 'BDAT 3 LAST' . >"$T/flight2"
cat "$T/flight2" >&3
get 4
put 'QUIT\r\n'; get
hangup; finish
check_file "BDAT: replies" "$GOT" <<'EOF'
220 testsrv ESMTP ready
250-testsrv
250-PIPELINING
250-CHUNKING
250-BINARYMIME
250 8BITMIME
250 2.1.0 Ok
250 2.1.5 Ok
250 2.0.0 Ok: 4 octets
250 2.0.0 Ok: queued as 1
221 2.0.0 Bye
EOF
check_eq "BDAT: every command in flight 2" \
    "$(awk '$1 == "C" && $3 != "QUIT" && $3 != "EHLO" {print $2}' "$TR" |
    sort -u)" 2
check_grep "BDAT: DATA line counts the raw stream" \
    "^DATA 2 $((8 + 4 + 13 + 3)) 1\$" "$TR"
printf 'ab\r\n.\r\n' >"$T/want.eml"
check "BDAT: N.eml is the chunks, no un-stuffing" \
    cmp -s "$T/want.eml" "$MD/1.eml"
printf 'BDAT 4\r\nab\r\nBDAT 3 LAST\r\n.\r\n' >"$T/want.raw"
check "BDAT: N.raw keeps the framing" cmp -s "$T/want.raw" "$MD/1.raw"
check_grep "BDAT: envelope says via BDAT" '^via BDAT$' "$MD/1.env"

# ------------------------------------------------------------------
# 3. Protocol checks: sequence, syntax, limits.

srv proto -n 1 -e "PIPELINING,SIZE 100,DSN"
conn; get
put 'MAIL FROM:<a@b>\r\n'; get
put 'EHLO c\r\n'; get
put 'RCPT TO:<x@y>\r\n'; get
put 'DATA\r\n'; get
put 'MAIL FROM:<a@b> SIZE=101\r\n'; get
put 'MAIL FROM:<a@b> SMTPUTF8\r\n'; get
put 'MAIL FROM:<a@b> SIZE=100 RET=HDRS\r\n'; get
put 'MAIL FROM:<a@b>\r\n'; get
put 'RCPT TO:<x@y> NOTIFY=NEVER\r\n'; get
put 'RCPT x@y\r\n'; get
put 'BDAT 1 LAST\r\nx'; get
put "$(printf 'A%.0s' $(seq 600))\r\n"; get
put 'VRFY x\r\n'; get
put 'RSET\r\nNOOP\r\nQUIT\r\n'; get 3
hangup; finish
check_file "sequence, syntax and size errors" "$GOT" <<'EOF'
220 testsrv ESMTP ready
503 5.5.1 Error: send HELO/EHLO first
250-testsrv
250-PIPELINING
250-SIZE 100
250 DSN
503 5.5.1 Error: need MAIL command
503 5.5.1 Error: need RCPT command
552 5.3.4 Message size exceeds fixed limit
555 5.5.4 Unsupported option
250 2.1.0 Ok
503 5.5.1 Error: nested MAIL command
250 2.1.5 Ok
501 5.5.4 Syntax: RCPT TO:<address>
502 5.5.1 Error: command not implemented
500 5.5.2 Error: line too long
500 5.5.2 Error: command not recognized
250 2.0.0 Ok
250 2.0.0 Ok
221 2.0.0 Bye
EOF
long=$(grep '^C [0-9]* AAAA' "$TR")
check_eq "a too-long line is logged cut, with ..." \
    "$long" "C 12 $(printf 'A%.0s' $(seq 200))..."

# ------------------------------------------------------------------
# 4. Fault actions.

# fsrv NAME RULES [testsrv options]: a server with a fault script.
fsrv() {
	local name=$1; printf '%b' "$2" >"$T/$name.script"; shift 2
	srv "$name" -s "$T/$name.script" "$@"
}

fsrv multiline 'greeting reply 220-first\\r\\n220 second
mail reply 250-a\\r\\n250 b\n' -n 1
hello
put 'MAIL FROM:<a@b>\r\n'; get
hangup; finish
check_file "reply: multi-line scripted replies" "$GOT" <<'EOF'
220-first
220 second
250-testsrv
250-PIPELINING
250-8BITMIME
250 ENHANCEDSTATUSCODES
250-a
250 b
EOF
check_grep "reply: scripted lines are in the transcript" '^S 2 250-a$' "$TR"
check_grep "EOF is CLOSE eof" '^CLOSE 1 eof$' "$TR"

# #N: only the second RCPT is refused; close: the third RCPT drops.
fsrv occ 'rcpt#2 reply 550 5.1.1 no such user\nrcpt#3 close\n' -n 1
hello
put 'MAIL FROM:<a@b>\r\nRCPT TO:<r1@x>\r\nRCPT TO:<r2@x>\r\nRCPT TO:<r3@x>\r\n'
get 3
IFS= read -r -t 5 rest <&3; rc=$?
hangup; finish
check_file "#N: only that occurrence; close: queued replies, then EOF" \
    "$GOT" <<'EOF'
220 testsrv ESMTP ready
250-testsrv
250-PIPELINING
250-8BITMIME
250 ENHANCEDSTATUSCODES
250 2.1.0 Ok
250 2.1.5 Ok
550 5.1.1 no such user
EOF
check_eq "close: nothing after" "$rc:$rest" "1:"
check_grep "close: CLOSE dropped" '^CLOSE 1 dropped$' "$TR"

fsrv drop 'data-body drop 10\n' -n 1
hello
put 'MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n'; get 3
put 'Subject: drop\r\n\r\nbody\r\n.\r\n'
IFS= read -r -t 5 rest <&3; rc=$?
hangup; finish
check_eq "drop: no reply to the data" "$rc:$rest" "1:"
check_grep "drop: CLOSE dropped" '^CLOSE 1 dropped$' "$TR"
check_nogrep "drop: no DATA line" '^DATA ' "$TR"
check "drop: nothing stored" test -z "$(ls -A "$MD")"

fsrv delay 'noop delay 700\n' -n 1
hello
t0=$(ms); put 'NOOP\r\n'; get; t1=$(ms)
hangup; finish
check "delay: reply after >= 700 ms (took $((t1 - t0)))" \
    test $((t1 - t0)) -ge 690 -a $((t1 - t0)) -lt 5000
check_eq "delay: reply unchanged" "$(tail -1 "$GOT")" "250 2.0.0 Ok"

fsrv trickle 'noop trickle 30\n' -n 1
hello
t0=$(ms); put 'NOOP\r\n'; get; t1=$(ms)
hangup; finish
check "trickle: 14 octets, 30 ms apart (took $((t1 - t0)))" \
    test $((t1 - t0)) -ge 380 -a $((t1 - t0)) -lt 5000
check_eq "trickle: reply unchanged" "$(tail -1 "$GOT")" "250 2.0.0 Ok"

fsrv big 'ehlo big 3000\nnoop big 200\n' -n 1
hello
put 'NOOP\r\n'; get
hangup; finish
ehlo=$(sed -n '2,/^250 /p' "$GOT")
check_eq "big: EHLO reply is 3000 octets with CRLF" \
    "$(echo "$ehlo" | awk '{n += length($0) + 2} END {print n}')" 3000
check_eq "big: EHLO keeps its first line and capabilities" \
    "$(echo "$ehlo" | grep -v '^250-XXXX')" \
    "$(printf '%s\n' 250-testsrv 250-PIPELINING 250-8BITMIME \
    '250 ENHANCEDSTATUSCODES')"
check_eq "big: NOOP reply is 200 octets, ends with the real line" \
    "$(sed -n '/^250-testsrv/,/^250 ENH/!p' "$GOT" | sed 1d |
    awk '{n += length($0) + 2} END {print n, $0}')" "200 250 2.0.0 Ok"

fsrv lines 'noop lines 4\n' -n 1
hello
put 'NOOP\r\n'; get
hangup; finish
check_eq "lines: N lines, the real one last" "$(tail -4 "$GOT" | tr '\n' '|')" \
    "250-x|250-x|250-x|250 2.0.0 Ok|"

fsrv nostarttls 'ehlo nostarttls\n' -n 1 -e STARTTLS,PIPELINING "${TLSOPT[@]}"
hello
put 'STARTTLS\r\n'; get
hangup; finish
check_file "nostarttls: not advertised, and refused" "$GOT" <<'EOF'
220 testsrv ESMTP ready
250-testsrv
250 PIPELINING
502 5.5.1 Error: command not implemented
EOF

fsrv conn '@2 mail reply 451 4.3.0 second connection only\n' -n 2
for i in 1 2; do
	hello; put 'MAIL FROM:<a@b>\r\n'; get; put 'QUIT\r\n'; get; hangup
done
finish
check_eq "@N: the rule applies to connection 2 only" \
    "$(grep -c '^250 2.1.0 Ok$' "$GOT"):$(grep -c '^451 4.3.0 second' "$GOT")" \
    "1:1"
check_eq "-n 2: two connections, exit 0" \
    "$SRVRC:$(grep -c '^CONNECT' "$TR"):$(grep -c '^CLOSE [12] quit$' "$TR")" \
    "0:2:2"

fsrv dataend 'data-end reply 554 5.7.1 rejected\n' -n 1
hello
put 'MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n'; get 3
put 'x\r\n.\r\n'; get
hangup; finish
check_eq "data-end: scripted refusal" "$(tail -1 "$GOT")" \
    "554 5.7.1 rejected"
check "data-end: a refused message is not stored" test -z "$(ls -A "$MD")"
check_grep "data-end: DATA line still written" '^DATA 3 6 1$' "$TR"

# inject: bytes in clear right after the 220 to STARTTLS.
fsrv inject 'starttls inject 250-evil\\r\\n250 AUTH PLAIN\\r\\n\n' -n 1 \
    -e STARTTLS "${TLSOPT[@]}"
hello
put 'STARTTLS\r\n'; get 3
hangup; finish
check_file "inject: the client reads the injected lines after 220" \
    "$GOT" <<'EOF'
220 testsrv ESMTP ready
250-testsrv
250 STARTTLS
220 2.0.0 Ready to start TLS
250-evil
250 AUTH PLAIN
EOF
check_eq "inject: one flight, in the transcript too" \
    "$(sed -n '/^C 2 STARTTLS/,/^FLIGHT/p' "$TR" | tr '\n' '|')" \
    "C 2 STARTTLS|S 2 220 2.0.0 Ready to start TLS|S 2 250-evil|$(
    )S 2 250 AUTH PLAIN|FLIGHT 2 reads=1 bytes=10|"
check_grep "inject: the handshake then fails on EOF" '^TLS-FAIL ' "$TR"
check_grep "inject: CLOSE eof" '^CLOSE 1 eof$' "$TR"

fsrv tlsgarbage 'tls reply hello in clear\n' -n 1 -e STARTTLS "${TLSOPT[@]}"
hello
put 'STARTTLS\r\n'; get 2
hangup; finish
check_eq "tls reply: clear text instead of a handshake" \
    "$(tail -2 "$GOT" | tr '\n' '|')" \
    "220 2.0.0 Ready to start TLS|hello in clear|"

fsrv connclose 'connect close\n' -n 1
conn; IFS= read -r -t 5 rest <&3; rc=$?; hangup; finish
check_eq "connect close: no greeting" "$rc:$rest" "1:"

# ------------------------------------------------------------------
# 5. AUTH.

b64() { printf "$1" | base64 -w0; }

srv auth -n 1 -e "AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER,PIPELINING" \
    -u alice:secret -u bob:pw2
hello
put 'MAIL FROM:<a@b>\r\n'; get
put "AUTH PLAIN $(b64 '\0alice\0wrong')\r\n"; get
put 'AUTH GSSAPI\r\n'; get
put 'AUTH LOGIN\r\n'; get; put '*\r\n'; get
put 'AUTH CRAM-MD5\r\n'; get
chal=$(tail -1 "$GOT" | cut -c5- | base64 -d)
hmac=$(printf '%s' "$chal" | openssl dgst -md5 -hmac secret | sed 's/.*= //')
put "$(b64 "alice $hmac")\r\n"; get
put "AUTH PLAIN $(b64 '\0bob\0pw2')\r\n"; get
put 'MAIL FROM:<a@b>\r\n'; get
put 'QUIT\r\n'; get
hangup; finish
sed -i '/^334 PD/s/ .*/ <challenge>/' "$GOT"
check_file "AUTH: required, wrong password, cancel, CRAM-MD5, twice" \
    "$GOT" <<'EOF'
220 testsrv ESMTP ready
250-testsrv
250-AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER
250 PIPELINING
530 5.7.0 Authentication required
535 5.7.8 Error: authentication failed
504 5.5.4 Unsupported authentication mechanism
334 VXNlciBOYW1l
501 5.7.0 Authentication aborted
334 <challenge>
235 2.7.0 Authentication successful
503 5.5.1 Error: already authenticated
250 2.1.0 Ok
221 2.0.0 Bye
EOF
check_eq "AUTH: AUTHOK / AUTHFAIL lines" \
    "$(grep '^AUTH' "$TR" | tr '\n' '|')" \
    "AUTHFAIL PLAIN|AUTHFAIL LOGIN|AUTHOK CRAM-MD5 alice|"
check_grep "AUTH: payload lines are recorded" \
    "^C [0-9]* $(b64 "alice $hmac")\$" "$TR"

srv oauth -n 1 -e "AUTH XOAUTH2 OAUTHBEARER" -u alice:tok-1
hello
put "AUTH XOAUTH2 $(b64 'user=alice\1auth=Bearer tok-1\1\1')\r\n"; get
hangup; finish
check_eq "XOAUTH2: right token" "$(tail -1 "$GOT")" \
    "235 2.7.0 Authentication successful"
check_grep "XOAUTH2: AUTHOK" '^AUTHOK XOAUTH2 alice$' "$TR"

srv oauth2 -n 1 -e "AUTH XOAUTH2 OAUTHBEARER" -u alice:tok-1
hello
put "AUTH XOAUTH2 $(b64 'user=alice\1auth=Bearer bad\1\1')\r\n"; get
put '\r\n'; get
put "AUTH OAUTHBEARER $(
    b64 'n,a=alice,\1host=h\1port=25\1auth=Bearer tok-1\1\1')\r\n"
get
hangup; finish
json=$(sed -n 's/^334 //p' "$GOT" | base64 -d)
check_eq "XOAUTH2: wrong token gets 334 JSON, then 535" \
    "$(sed -n '/^334/,$p' "$GOT" | sed 's/^334 .*/334/' | tr '\n' '|')" \
    "334|535 5.7.8 Error: authentication failed|$(
    )235 2.7.0 Authentication successful|"
check_eq "XOAUTH2: the JSON error" "$json" \
    '{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}'
check_grep "OAUTHBEARER: AUTHOK" '^AUTHOK OAUTHBEARER alice$' "$TR"

if command -v gsasl >/dev/null 2>&1; then
	srv scram -n 2 -e "STARTTLS,AUTH SCRAM-SHA-256 SCRAM-SHA-256-PLUS" \
	    -u alice:secret "${TLSOPT[@]}"
	timeout 10 gsasl --client --connect "127.0.0.1:$PORT" --smtp \
	    --no-starttls -m SCRAM-SHA-256 -a alice -p secret --quiet \
	    </dev/null >/dev/null 2>&1
	timeout 10 gsasl --client --connect "127.0.0.1:$PORT" --smtp \
	    --starttls --x509-ca-file="$C/ca.pem" -m SCRAM-SHA-256-PLUS \
	    -a alice -p secret --quiet </dev/null >/dev/null 2>&1
	finish
	check_eq "SCRAM-SHA-256 and -PLUS (tls-exporter) with gsasl" \
	    "$(grep '^AUTH' "$TR" | tr '\n' '|')" \
	    "AUTHOK SCRAM-SHA-256 alice|AUTHOK SCRAM-SHA-256-PLUS alice|"
	# The server's final data needs its own 334: 235 cannot carry it.
	check_eq "SCRAM: 334 (no initial response), 334, 334 v=, 235" \
	    "$(awk '/^C [0-9]+ AUTH/ {a = 1} a && /^S/ {print $3}
	    /^AUTHOK/ {exit}' "$TR" | tr '\n' '|')" "334|334|334|235|"
else
	skip "SCRAM with gsasl # the gsasl tool is not installed"
fi

# ------------------------------------------------------------------
# 6. TLS.

sc() {	# s_client to $PORT; stdin is sent after a pause
	timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
	    -CAfile "$C/ca.pem" -quiet -ign_eof -crlf "$@" 2>/dev/null
}

srv starttls -n 1 -e "STARTTLS,PIPELINING" "${TLSOPT[@]}"
(sleep 0.3; printf 'MAIL FROM:<a@b>\nEHLO again\nQUIT\n'; sleep 1) |
    sc -starttls smtp >"$GOT"
finish
check_grep "STARTTLS: TLS 1.3 by default" \
    '^TLS TLSv1.3 TLS1-3-[A-Z0-9-]*$' "$TR"
check_eq "STARTTLS: state reset, STARTTLS not offered after TLS" \
    "$(sed -n '/^TLS /,$p' "$TR" | grep '^S' | cut -d' ' -f3- | tr '\n' '|')" \
    "503 5.5.1 Error: send HELO/EHLO first|250-testsrv|250 PIPELINING|$(
    )221 2.0.0 Bye|"

srv tls12 -n 1 -T -M 1.2 -e PIPELINING -E "SIZE 500,DSN" "${TLSOPT[@]}"
(sleep 0.3; printf 'EHLO x\nQUIT\n'; sleep 1) | sc >"$GOT"
finish
check_eq "-T: greeting over TLS; -E sets the list after TLS" \
    "$(tr -d '\r' <"$GOT" | tr '\n' '|')" \
    "220 testsrv ESMTP ready|250-testsrv|250-SIZE 500|250 DSN|221 2.0.0 Bye|"
check_grep "-M 1.2: TLS 1.2" '^TLS TLSv1.2 ' "$TR"
check_eq "-T: handshake before the greeting" \
    "$(sed -n 2,3p "$TR" | cut -d' ' -f1-2 | tr '\n' '|')" "TLS TLSv1.2|S 0|"

srv resume -n 2 -T "${TLSOPT[@]}"
(sleep 0.3; printf 'QUIT\n'; sleep 0.5) | sc -sess_out "$T/sess" >/dev/null
(sleep 0.3; printf 'QUIT\n'; sleep 0.5) | sc -sess_in "$T/sess" >/dev/null
finish
check_eq "TLS-RESUMED on the second connection only" \
    "$(grep -e '^CONNECT' -e '^TLS-RESUMED' "$TR" | tr '\n' '|')" \
    "CONNECT 1|CONNECT 2|TLS-RESUMED|"

srv discard -n 1 -e STARTTLS "${TLSOPT[@]}"
hello
put 'STARTTLS\r\nNOOP\r\n'; get
hangup; finish
check_grep "STARTTLS: pipelined bytes after it are discarded" \
    '^DISCARD 6$' "$TR"
check_nogrep "STARTTLS: the NOOP is not processed" '^C [0-9]* NOOP' "$TR"

srv clientcert -n 1 -T -A "$C/ca.pem" -e "AUTH EXTERNAL" "${TLSOPT[@]}"
(sleep 0.3; printf 'EHLO x\nAUTH EXTERNAL =\nQUIT\n'; sleep 1) |
    sc -cert "$C/client.pem" -key "$C/client.key" >/dev/null
finish
check_grep "-A: client certificate verified" \
    '^TLS-CLIENT client verified$' "$TR"
check_grep "EXTERNAL: identity from the certificate" \
    '^AUTHOK EXTERNAL client$' "$TR"

# ------------------------------------------------------------------
# 7. Command line, timeouts, signals.

p=$(free_port)
srv portfile -n 1 -p "$p" -g '220-hello\r\n220 there'
check_eq "-w: the port file holds the port" "$(cat "$T/portfile/port")" "$p"
conn; get; hangup; finish
check_eq "-g: greeting text, escapes processed" "$(tr '\n' '|' <"$GOT")" \
    "220-hello|220 there|"
check_grep "-w: the server listens there" '^CONNECT 1$' "$TR"

srv timeout -n 1 -r 1
t0=$(ms); conn; get; IFS= read -r -t 5 rest <&3; t1=$(ms); hangup; finish
check_grep "-r 1: idle client closed with CLOSE timeout" \
    '^CLOSE 1 timeout$' "$TR"
check "-r 1: after about a second ($((t1 - t0)) ms)" \
    test $((t1 - t0)) -ge 900 -a $((t1 - t0)) -lt 4000

srv term
kill -TERM "$PID"; finish
check_eq "SIGTERM: exit 0" "$SRVRC" 0

"$TESTSRV" -p 0 -x 1 2>"$T/x.err"
check_eq "-x: exits 3 when the time is up" "$?:$(cat "$T/x.err")" \
    "3:testsrv: -x 1 seconds are over"

printf 'mail reply 250 ok\n# comment\nbogus reply x\n' >"$T/bad1"
printf 'rcpt#0 close\n' >"$T/bad2"
printf 'mail explode\n' >"$T/bad3"
printf 'mail drop 5\n' >"$T/bad4"
printf 'mail reply \\q\n' >"$T/bad5"
for i in 1 2 3 4 5; do
	"$TESTSRV" -p 0 -x 2 -s "$T/bad$i" 2>>"$T/bad.err"
	echo "rc=$?" >>"$T/bad.err"
done
check_file "bad script lines: exit 2, the line named" "$T/bad.err" <<EOF
testsrv: $T/bad1:3: unknown step: bogus reply x
rc=2
testsrv: $T/bad2:1: bad #N occurrence: rcpt#0 close
rc=2
testsrv: $T/bad3:1: unknown action: mail explode
rc=2
testsrv: $T/bad4:1: action not possible at this step: mail drop 5
rc=2
testsrv: $T/bad5:1: bad escape (use \\r \\n \\t \\\\ \\xHH): mail reply \\q
rc=2
EOF

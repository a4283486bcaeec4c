#!/bin/bash
# OAuth2 end to end: --configure through a pty, then sends, against a
# local HTTPS token endpoint and the scripted relay.
ASAN_TOO=1
. tests/lib.sh

# tests/oauth-endpoint plays the token endpoint (the device flow,
# refresh with rotation, client credentials, PKCE, errors and faults);
# the relay takes only the token the endpoint issued last (testsrv -O),
# so a send that got through carried the fresh one.  Nothing secret may
# show in -v, the log file or /proc.

USER=alice@example.test
EPD=$T/ep
mkdir -p "$EPD"
bg "$TOP/tests/oauth-endpoint" "$EPD" "$CERTS/server.pem" "$CERTS/server.key"
EPPID=$!
for _ in $(seq 250); do [ -s "$EPD/port" ] && break; sleep 0.02; done
EP=https://127.0.0.1:$(cat "$EPD/port")
STORE=$T/home/.local/state/smarthost/oauth/default
CONFIG=$T/home/.config/smarthost/config

ctl() { printf '%s\n' "$@" >"$EPD/ctl"; }
# count GRANT RESULT: requests the endpoint logged so.
count() { grep -c " $1 $2\( \|\$\)" "$EPD/log"; }
field() {	# FIELD [FILE]: a member of the token store
	python3 -c 'import json, sys
print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' \
	    "${2:-$STORE}" "$1"
}
expire_in() {	# SECONDS [FILE]: the cached token now expires then
	python3 -c 'import json, sys, time
p = sys.argv[1]; d = json.load(open(p))
d["expires_at"] = int(time.time()) + int(sys.argv[2])
open(p, "w").write(json.dumps(d))' "${2:-$STORE}" "$1"
}
relay() {	# NAME [testsrv options]: a relay that takes the current token
	SRVUSER=$USER:not-the-password testsrv "$1" -T \
	    -c "$CERTS/server.pem" -k "$CERTS/server.key" \
	    -e "AUTH XOAUTH2 OAUTHBEARER,PIPELINING,8BITMIME" \
	    -O "$EPD/tokens" "${@:2}"
}
send() {	# NAME [smarthost options]: one message, exit code in RC
	local name=$1; shift
	printf 'Subject: oauth\n\nbody\n' | "$SMARTHOST" -i --port="$PORT" \
	    "$@" bob@example.org >"$T/$name.out" 2>"$T/$name.err"
	RC=$?
}
queued() { find "$T/queue" -maxdepth 1 -name '20*' ! -name '*.status' |
	wc -l; }
# nosecret NAME FILE...: none of the tokens seen so far in FILEs
nosecret() {
	local name=$1 f s bad=
	shift
	for f in "$@"; do
		for s in $SECRETS; do
			grep -qF -e "$s" "$f" 2>/dev/null && bad="$bad $f"
		done
	done
	check_eq "$name: no token or secret in it" "$bad" ""
}
remember() { SECRETS="$SECRETS $(field access_token) $(field refresh_token)"; }
SECRETS="test-secret"

# 1. --configure: the device flow (pending, slow_down, then signed in),
# the login tested with the new token, then the file.
ctl "device=pending,slow_down,ok"
relay configure
tests/oauth-pty "$T/configure.tty" "$CERTS/ca.pem" \
    "(system/user) [system]: =user" \
    "User name [$USER]: =" -- "$SMARTHOST" --configure "$USER" \
    --provider=office365 --oauth-client-id=test-client \
    --oauth-token-endpoint="$EP/token" \
    --oauth-device-endpoint="$EP/devicecode" --host=127.0.0.1 \
    --port="$PORT" --tls-starttls=off --tls-trust-file="$CERTS/ca.pem" \
    --queue-dir="$T/queue" --dead-letter="$T/dead.letter" \
    --logfile="$T/smarthost.log" --tls-session-cache=off
RC=$?
wait "$SRV"
check_eq "configure: exit 0" "$RC" 0
check_grep "configure: shows the code and where to enter it" \
    'open https://127.0.0.1/device .* enter the code ABCD-EFGH' \
    "$T/configure.tty"
check_grep "configure: signed in" '^Signed in: the token is kept in' \
    "$T/configure.tty"
check_grep "configure: the login tested with the token" \
    "^Authentication as $USER: works" "$T/configure.tty"
check_grep "configure: the relay took the token" \
    "^AUTHOK XOAUTH2 $USER" "$TR"
check_grep "configure: delegated scope asked for" \
    '/devicecode - ok scope=https://outlook.office.com/SMTP.Send offline_access' \
    "$EPD/log"
check_eq "configure: polls pending, slow_down, ok" \
    "$(awk '$3 == "device_code" {print $4}' "$EPD/log" | tr '\n' ' ')" \
    "pending slow_down ok "
check_nogrep "configure: never polled too early" 'too-early' "$EPD/log"
gap=$(awk '$3 == "device_code" {t[n++] = $1} END {printf "%d", t[2] - t[1]}' \
    "$EPD/log")
check "configure: 5 s more between polls after slow_down (gap ${gap}s)" \
    test "$gap" -ge 6
check_grep "configure: the file names the client" \
    '^oauth_client_id test-client$' "$CONFIG"
check_grep "configure: the file keeps the command line's endpoint" \
    "^oauth_token_endpoint $EP/token\$" "$CONFIG"
check_nogrep "configure: no password line" '^password' "$CONFIG"
check_eq "configure: config mode 0600" "$(stat -c %a "$CONFIG")" 600
check_eq "configure: token store mode 0600, ours" \
    "$(stat -c '%a %u' "$STORE")" "600 $(id -u)"
check "configure: the store has a refresh token" \
    test -n "$(field refresh_token)"
remember
nosecret "configure: terminal" "$T/configure.tty" "$CONFIG"

# 2. Two sends with the token expiring in between: the first uses the
# cached token, the second refreshes once and saves the rotated refresh
# token; a third uses the new cached token.
relay twosends -n 3
old_rt=$(field refresh_token)
refreshes=$(count refresh_token ok)
expire_in 62
send first
sleep 2
send second -v
send third
wait "$SRV"
check_eq "two sends: first exit 0" "$RC" 0
check_eq "two sends: exactly one refresh" \
    "$(($(count refresh_token ok) - refreshes))" 1
check_eq "two sends: every send authenticated" \
    "$(grep -c "^AUTHOK XOAUTH2 $USER" "$TR")" 3
check_eq "two sends: 3 messages at the relay" "$(ls "$MAIL" | grep -c eml)" 3
check_grep "two sends: -v says it refreshed" 'refreshing it' \
    "$T/second.err"
check_grep "two sends: -v says the refresh token rotated" \
    'refresh token rotated' "$T/second.err"
check "two sends: the rotated refresh token was saved" \
    test "$(field refresh_token)" != "$old_rt"
check_eq "two sends: the relay's token is the one in the store" \
    "$(cat "$EPD/tokens")" "$(field access_token)"
check_eq "two sends: store still 0600" "$(stat -c %a "$STORE")" 600
remember
nosecret "two sends: -v trace" "$T/second.err" "$T/first.err" \
    "$T/third.err"
nosecret "two sends: log file" "$T/smarthost.log"

# Two runs at once with the token expired: the store's lock lets one
# refresh; the other waits and takes the token it saved.
relay together -n 2
refreshes=$(count refresh_token ok)
expire_in 10
ctl "delay=1"
send together1 &
p1=$!
sleep 0.3
send together2 &
p2=$!
wait "$p1" "$p2"
wait "$SRV"
ctl ""
check_eq "two runs at once: exactly one refresh" \
    "$(($(count refresh_token ok) - refreshes))" 1
check_eq "two runs at once: no refresh token refused" \
    "$(grep -c 'invalid_grant' "$EPD/log")" 0
check_eq "two runs at once: both delivered" \
    "$(grep -c "^AUTHOK XOAUTH2 $USER" "$TR")" 2
remember

# OAUTHBEARER carries the same token.
relay bearer -e "AUTH OAUTHBEARER,PIPELINING"
send bearer --auth=oauthbearer
wait "$SRV"
check_eq "OAUTHBEARER: exit 0" "$RC" 0
check_grep "OAUTHBEARER: the relay took the token" \
    "^AUTHOK OAUTHBEARER $USER" "$TR"

# 3. /proc shows nothing: a send that waits at the relay's greeting.
printf 'greeting delay 1500\n' >"$T/slow.script"
relay proc -s "$T/slow.script"
printf 'Subject: oauth\n\nbody\n' | "$SMARTHOST" -i --port="$PORT" \
    bob@example.org >"$T/proc.out" 2>&1 &
pid=$!
sleep 0.7
tr '\0' '\n' <"/proc/$pid/cmdline" >"$T/proc.cmdline" 2>/dev/null
tr '\0' '\n' <"/proc/$pid/environ" >"$T/proc.environ" 2>/dev/null
wait "$pid"
RC=$?
wait "$SRV"
check_eq "/proc: the send went through" "$RC" 0
check "/proc: cmdline was read" test -s "$T/proc.cmdline"
nosecret "/proc: cmdline and environ" "$T/proc.cmdline" "$T/proc.environ"

# 4. --serverinfo and --pretend: the token's state, never the token.
relay info
"$SMARTHOST" --serverinfo --port="$PORT" >"$T/info.out" 2>&1
RC=$?
wait "$SRV"
check_eq "serverinfo: exit 0" "$RC" 0
check_grep "serverinfo: token present, expires in" \
    '^oauth2 token: present, expires in [0-9]* min, scope https://outlook.office.com/SMTP.Send' \
    "$T/info.out"
check_grep "serverinfo: refresh token present" \
    '^oauth2 refresh token: present' "$T/info.out"
printf 'Subject: x\n\nx\n' | "$SMARTHOST" -P bob@example.org \
    >"$T/pretend.out" 2>&1
check_grep "pretend: token state" '^oauth2 token: present' \
    "$T/pretend.out"
check_grep "pretend: the store" "^oauth2 token store: $STORE" \
    "$T/pretend.out"
nosecret "serverinfo and pretend" "$T/info.out" "$T/pretend.out"

# 5. A revoked refresh token: a clear error, the message kept (exit 0).
ctl "revoked=1"
relay revoked
expire_in 10
send revoked
kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null
check_eq "revoked: exit 0 (kept)" "$RC" 0
check_grep "revoked: says to sign in again" \
    'refresh token of account default was refused.*smarthost --configure alice@example.test' \
    "$T/revoked.err"
check_grep "revoked: with the endpoint's reason" 'invalid_grant: AADSTS50173' \
    "$T/revoked.err"
check_grep "revoked: queued" 'queued as 20' "$T/revoked.err"
check_eq "revoked: one message in the queue" "$(queued)" 1
check_nogrep "revoked: the relay saw no AUTH" '^C .* AUTH' "$TR"
check_grep "revoked: the log line says why" \
    "errormsg='the OAuth2 refresh token of account default was refused" \
    "$T/smarthost.log"
nosecret "revoked: stderr and log" "$T/revoked.err" "$T/smarthost.log"

# 6. Faults of the endpoint; each leaves the message in the queue.
ctl "fault=500"
send http500
check_eq "HTTP 500: exit 0 (kept)" "$RC" 0
check_grep "HTTP 500: named" 'token endpoint answered HTTP 500' \
    "$T/http500.err"
ctl ""
send unreachable --oauth-token-endpoint="https://127.0.0.1:$(free_port)/t"
check_eq "unreachable endpoint: exit 0 (kept)" "$RC" 0
check_grep "unreachable endpoint: says so" \
    'token endpoint 127.0.0.1: cannot connect' "$T/unreachable.err"
check_grep "unreachable endpoint: queued" 'queued as' "$T/unreachable.err"
ctl "fault=slow"
send slow --timeout=2
check_eq "trickle past the timeout: exit 0 (kept)" "$RC" 0
check_grep "trickle past the timeout: one deadline for the answer" \
    'sent no complete answer within 2 seconds' "$T/slow.err"
ctl "fault=oversized"
send oversized
check_eq "oversized answer: exit 0 (kept)" "$RC" 0
check_grep "oversized answer: refused" 'larger than 64 KiB' \
    "$T/oversized.err"
ctl "fault=garbage"
send garbage
check_grep "not HTTP: refused" 'HTTP/1.x status line' "$T/garbage.err"
check_eq "endpoint faults: every message kept" "$(queued)" 6
check_eq "endpoint faults: store untouched" "$(field refresh_token)" \
    "$(echo "$SECRETS" | awk '{print $NF}')"

# 7. --configure again, as the error said: it only signs the account
# in again (the file stays as it is); then a trickled and a chunked
# answer are read whole.
ctl "device=ok"
relay again
sum=$(md5sum <"$CONFIG")
tests/oauth-pty "$T/again.tty" "$CERTS/ca.pem" \
    "Sign in again (n: write a new configuration)? (y/n) [y]: =" -- \
    "$SMARTHOST" --configure "$USER" --port="$PORT"
RC=$?
wait "$SRV"
check_eq "sign in again: exit 0" "$RC" 0
check_grep "sign in again: names the account and file" \
    "^Account default of $CONFIG signs in with OAuth2" "$T/again.tty"
check_grep "sign in again: login tested" "^Authentication as $USER: works" \
    "$T/again.tty"
check_eq "sign in again: the file is unchanged" "$(md5sum <"$CONFIG")" "$sum"
remember
relay flush -n 2
ctl "fault=trickle"
expire_in 10
"$SMARTHOST" -q --port="$PORT" >"$T/flush.out" 2>&1
check_eq "after signing in again: sendmail -q delivers the kept mail" \
    "$(queued)" 0
check_eq "trickled answer: refreshed" "$(tail -1 "$EPD/log" | cut -d' ' -f3,4)" \
    "refresh_token ok"
ctl "fault=chunked"
expire_in 10
send chunked
wait "$SRV"
check_eq "chunked answer: exit 0" "$RC" 0
check_eq "chunked answer: delivered with the new token" \
    "$(grep -c "^AUTHOK XOAUTH2 $USER" "$TR")" 2
remember

# 8. Client credentials (app-only): no user sign-in; the secret from a
# file; the token cached for the next send.
ctl ""
printf 'test-secret\n' >"$T/secret"
chmod 600 "$T/secret"
cat >"$T/app.conf" <<EOF
account default
provider office365
host 127.0.0.1
tls_starttls off
tls_trust_file $CERTS/ca.pem
tls_session_cache off
user $USER
from $USER
oauth_client_id test-client
oauth_grant client_credentials
oauth_tenant contoso.example
oauth_client_secret_file $T/secret
oauth_token_endpoint $EP/token
oauth_token_store $T/app.store
queue_dir $T/queue
dead_letter $T/dead.letter
EOF
chmod 600 "$T/app.conf"
relay app -n 2
cc=$(count client_credentials ok)
send app1 -C "$T/app.conf"
send app2 -C "$T/app.conf"
wait "$SRV"
check_eq "client credentials: exit 0" "$RC" 0
check_eq "client credentials: one token for two sends" \
    "$(($(count client_credentials ok) - cc))" 1
check_grep "client credentials: app-only scope" \
    'client_credentials ok scope=https://outlook.office365.com/.default' \
    "$EPD/log"
check_eq "client credentials: both delivered" \
    "$(grep -c "^AUTHOK XOAUTH2 $USER" "$TR")" 2
check "client credentials: no refresh token kept" \
    test -z "$(field refresh_token "$T/app.store")"
check_eq "client credentials: store 0600" "$(stat -c %a "$T/app.store")" 600
printf 'wrong\n' >"$T/secret"
rm -f "$T/app.store"
send appbad -C "$T/app.conf"
check_eq "client credentials, wrong secret: exit 0 (kept)" "$RC" 0
check_grep "client credentials, wrong secret: says which" \
    'does not accept this client: check oauth_client_id, oauth_client_secret.*AADSTS7000215' \
    "$T/appbad.err"
check_grep "client credentials, wrong secret: kept" 'kept in the queue' \
    "$T/appbad.err"
SECRETS="$SECRETS $(cat "$EPD/tokens")"
nosecret "client credentials" "$T/app1.err" "$T/app2.err" "$T/appbad.err"

# 9. Authorization code with PKCE (Google has no device flow for mail):
# the browser's address pasted back; the client secret asked without
# echo and kept in the 0600 file.
mkdir -p "$T/home-g"
USER=bob@gmail.com relay pkce
HOME=$T/home-g tests/oauth-pty "$T/pkce.tty" "$CERTS/ca.pem" \
    "(system/user) [system]: =user" \
    "User name [bob@gmail.com]: =" "Client secret (not shown): =test-secret" \
    "Address (or the code in it): =@browse" -- \
    "$SMARTHOST" --configure bob@gmail.com --oauth-client-id=test-client \
    --oauth-token-endpoint="$EP/token" \
    --oauth-authorize-endpoint="$EP/authorize" --host=127.0.0.1 \
    --port="$PORT" --tls-starttls=off --tls-trust-file="$CERTS/ca.pem" \
    --queue-dir="$T/queue" --tls-session-cache=off
RC=$?
wait "$SRV"
check_eq "PKCE: exit 0" "$RC" 0
check_grep "PKCE: the gmail preset" '^Preset gmail' "$T/pkce.tty"
check_grep "PKCE: the address to open, with S256 and offline access" \
    "$EP/authorize?response_type=code&client_id=test-client&.*code_challenge_method=S256.*access_type=offline" \
    "$T/pkce.tty"
check_grep "PKCE: secret typed without echo" \
    'Client secret (not shown): \[echo off\]' "$T/pkce.tty"
check_grep "PKCE: the verifier matched" 'authorization_code ok' \
    "$EPD/log"
check_grep "PKCE: the relay took the token" '^AUTHOK XOAUTH2 bob@gmail.com' \
    "$TR"
check_grep "PKCE: the secret is in the file" \
    '^oauth_client_secret test-secret$' "$T/home-g/.config/smarthost/config"
check_eq "PKCE: the file is 0600" \
    "$(stat -c %a "$T/home-g/.config/smarthost/config")" 600
check "PKCE: a refresh token stored" test -n "$(field refresh_token \
    "$T/home-g/.local/state/smarthost/oauth/default")"

# A pasted address from another sign-in is refused: nothing written.
mkdir -p "$T/home-s"
HOME=$T/home-s tests/oauth-pty "$T/state.tty" "$CERTS/ca.pem" \
    "(system/user) [system]: =user" \
    "User name [bob@gmail.com]: =" "Client secret (not shown): =x" \
    "Address (or the code in it): =http://localhost/?code=c&state=forged" \
    -- "$SMARTHOST" --configure bob@gmail.com --oauth-client-id=test-client \
    --oauth-token-endpoint="$EP/token" \
    --oauth-authorize-endpoint="$EP/authorize" --host=127.0.0.1 --port=1 \
    --tls-trust-file="$CERTS/ca.pem"
check_grep "PKCE, forged state: refused" 'not from this sign-in' \
    "$T/state.tty"
check "PKCE, forged state: no file written" \
    test ! -e "$T/home-s/.config/smarthost/config"

# Without a client ID the preset's OAuth2 question leads back to the
# password.
mkdir -p "$T/home-p"
SRVUSER=bob@gmail.com:app-password testsrv nooauth -T \
    -c "$CERTS/server.pem" -k "$CERTS/server.key" -e "AUTH PLAIN"
HOME=$T/home-p tests/oauth-pty "$T/nooauth.tty" "$CERTS/ca.pem" \
    "(system/user) [system]: =user" \
    "User name [bob@gmail.com]: =" "empty for a password: =" \
    "Password (not shown): =app-password" -- \
    "$SMARTHOST" --configure bob@gmail.com --host=127.0.0.1 \
    --port="$PORT" --tls-trust-file="$CERTS/ca.pem" \
    --tls-session-cache=off
RC=$?
wait "$SRV"
check_eq "no client ID: exit 0" "$RC" 0
check_grep "no client ID: the password went into the file" \
    '^password app-password$' "$T/home-p/.config/smarthost/config"
check_nogrep "no client ID: no oauth lines" '^oauth' \
    "$T/home-p/.config/smarthost/config"

# 10. The device flow's ends: declined, and expired.
device_fails() {	# NAME CTL... : configure in HOME=$T/home-NAME
	local name=$1; shift
	ctl "$@"
	mkdir -p "$T/home-$name"
	HOME=$T/home-$name tests/oauth-pty "$T/$name.tty" "$CERTS/ca.pem" \
	    "(system/user) [system]: =user" \
	    "User name [$USER]: =" -- "$SMARTHOST" --configure "$USER" \
	    --provider=office365 --oauth-client-id=test-client \
	    --oauth-token-endpoint="$EP/token" \
	    --oauth-device-endpoint="$EP/devicecode" --host=127.0.0.1 \
	    --port=1 --tls-trust-file="$CERTS/ca.pem"
	RC=$?
}
device_fails denied "device=pending,denied"
check_eq "declined: exit 77" "$RC" 77
check_grep "declined: says so" 'sign-in was declined (access_denied' \
    "$T/denied.tty"
check "declined: nothing written" \
    test ! -e "$T/home-denied/.config/smarthost/config"
device_fails expired "device=pending" "device_expires=3"
check_eq "expired: exit 75" "$RC" 75
check_grep "expired: says so" 'code expired before the sign-in was finished' \
    "$T/expired.tty"
check_eq "expired: gave up without an answer" \
    "$(grep -c 'expired_token' "$EPD/log")" 0
device_fails expired2 "device=pending,expired"
check_grep "expired_token from the endpoint: says so" \
    'code expired before the sign-in was finished.*expired_token' \
    "$T/expired2.tty"

# 11. Microsoft's refusal of a password: the hint about SMTP AUTH.
printf 'auth reply 535 5.7.139 Authentication unsuccessful, basic authentication is disabled.\n' \
    >"$T/basic.script"
testsrv basic -T -c "$CERTS/server.pem" \
    -k "$CERTS/server.key" -e "AUTH PLAIN LOGIN" -s "$T/basic.script"
smarthost_conf "$T/basic.conf" "provider office365" "tls_starttls off"
send basic -C "$T/basic.conf"
wait "$SRV"
check_grep "5.7.139: hint about OAuth2 and the tenant's SMTP AUTH setting" \
    'hint for office365: Microsoft 365 no longer takes a password.*MC786329.*--oauth-client-id.*SmtpClientAuthenticationDisabled' \
    "$T/basic.err"

# 12. --providers says who needs OAuth2 and since when.
"$SMARTHOST" --providers >"$T/providers.out"
check_grep "providers: office365 from December 2026 (MC786329)" \
    'oauth2: needed: .*end of December 2026 (MC786329)' "$T/providers.out"
check_grep "providers: outlook" 'oauth2: needed: Outlook.com' \
    "$T/providers.out"
check_grep "providers: gmail" 'oauth2: or an app password' \
    "$T/providers.out"

kill "$EPPID" 2>/dev/null

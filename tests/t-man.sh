#!/bin/bash
# SPDX-License-Identifier: ISC
# The man pages against the program: mandoc finds nothing to complain
# about; smarthost.conf(5) describes exactly the directives the program
# knows (as --help lists them); smarthost(8) and --help show every option
# of SPEC section 1 and every option --help names.
. tests/lib.sh

MAN8=$TOP/man/smarthost.8
MAN5=$TOP/man/smarthost.conf.5

# 1. mandoc -Tlint at warning level: not a word.
if ! command -v mandoc >/dev/null; then
	notok "mandoc is installed (scripts/install-deps installs it)"
	exit 1
fi
mandoc -Tlint -Wwarning "$TOP"/man/*.5 "$TOP"/man/*.8 >"$T/lint" 2>&1
rc=$?
check_eq "mandoc -Tlint -Wwarning: exit 0" "$rc" 0
check_eq "mandoc -Tlint -Wwarning: no message" "$(cat "$T/lint")" ""

# 2. Directives.  --help lists config_directives() after the
# --DIRECTIVE=VALUE line, '_' spelled '-', up to the blank line; it
# leaves out password and oauth_client_secret on purpose (there is no
# --password, no --oauth-client-secret).
"$SMARTHOST" --help >"$T/help" 2>&1
awk '/--DIRECTIVE=VALUE/ { on = 1; next } on && /^$/ { exit }
    on { for (i = 1; i <= NF; i++) if ($i ~ /^--[a-z]/) print $i }' \
    "$T/help" | sed 's/^--//; s/-/_/g' | sort -u >"$T/help.dirs"
{ cat "$T/help.dirs"; echo password; echo oauth_client_secret; } |
    sort -u >"$T/dirs"
n=$(wc -l <"$T/help.dirs")
if [ "$n" -ge 30 ]; then
	ok "--help lists the directives ($n)"
else
	notok "--help lists the directives (found $n)"
	sed 's/^/#   | /' "$T/help"
fi

# Every .It Ic NAME in the DESCRIPTION's subsections (a line may name
# two: ".It Ic tls_cert_file Ar file , Ic tls_key_file Ar file").
# "account" and "defaults" are file syntax, not directives.
awk '/^\.Sh / { desc = ($2 == "DESCRIPTION"); ss = 0; next }
    desc && /^\.Ss / { ss = 1; next }
    desc && ss && /^\.It / {
	for (i = 2; i < NF; i++) if ($i == "Ic") print $(i + 1) }' "$MAN5" |
    grep -vx -e account -e defaults | sort -u >"$T/man.dirs"

missing=$(comm -23 "$T/dirs" "$T/man.dirs" | tr '\n' ' ')
check_eq "smarthost.conf(5) has an .It Ic entry for every directive" \
    "$missing" ""
extra=$(comm -13 "$T/dirs" "$T/man.dirs" | tr '\n' ' ')
check_eq "smarthost.conf(5) describes no directive the program lacks" \
    "$extra" ""

# 3. Options, in the text as a reader sees it (mandoc's rendering,
# overstrike removed).
mandoc -Tascii "$MAN8" | sed 's/.\x08//g' >"$T/man8.txt"

# has FILE OPTION: OPTION as a word of its own; "-o*" is any -o option,
# "--DIRECTIVE=VALUE" is matched in either case.
has() {
	local re
	case "$2" in
	-o\*)	re='(^|[^-[:alnum:]])-o' ;;
	--DIRECTIVE=VALUE) re='--(DIRECTIVE|directive)=(VALUE|value)' ;;
	*)	re="(^|[^-[:alnum:]])$2([^-[:alnum:]]|\$)" ;;
	esac
	grep -Eq -e "$re" "$1"
}

# SPEC section 1's table, in its order.
SPEC_OPTS="-t -bs -i -oi -f -r -F -N -R -V -B -bm -bp -q -v -X -C -a
    -o* -A -G -h -L -m -n -O -U -- --DIRECTIVE=VALUE --serverinfo
    --version --help"
# What --help shows: the options before the gap on each of its option
# lines ("  -f ADDR, -r    envelope sender"), without their arguments.
awk '/^  -/ { s = substr($0, 3); sub(/  .*/, "", s)
    n = split(s, w, /, /)
    for (i = 1; i <= n; i++) { sub(/[ [].*/, "", w[i]); print w[i] } }' \
    "$T/help" | sort -u >"$T/help.opts"
if [ "$(wc -l <"$T/help.opts")" -ge 20 ]; then
	ok "--help lists its options ($(wc -l <"$T/help.opts"))"
else
	notok "--help lists its options"
	sed 's/^/#   | /' "$T/help.opts"
fi

no8='' nohelp=''
for o in $SPEC_OPTS; do
	has "$T/man8.txt" "$o" || no8="$no8 $o"
	has "$T/help" "$o" || nohelp="$nohelp $o"
done
check_eq "smarthost(8) shows every option of SPEC section 1" "$no8" ""
check_eq "--help shows every option of SPEC section 1" "$nohelp" ""
no8=''
while read -r o; do
	has "$T/man8.txt" "$o" || no8="$no8 $o"
done <"$T/help.opts"
check_eq "smarthost(8) shows every option --help lists" "$no8" ""

# 4. No macro as text.  A macro name on a text line (one that does not
# begin with '.') is printed as a word, as "ses- Ns Ar region ," once
# was.  Look for mdoc macro names as whole words in what
# a reader sees; "No" and "It" are left out: they are English too.
MACROS='Ad|Ap|Aq|Ar|Bd|Bk|Bl|Bq|Brq|Cd|Cm|D1|Dl|Dq|Dv|Ed|Ek|El|Em|Er'
MACROS="$MACROS|Ev|Fa|Fl|Fn|Ft|Ic|Li|Lk|Mt|Nm|Ns|Oc|Oo|Op|Pa|Pc|Po|Pq"
MACROS="$MACROS|Ql|Qq|Sh|Sm|Sq|Ss|Sx|Sy|Va|Xc|Xo|Xr"
for page in "$MAN8" "$MAN5"; do
	name=$(basename "$page")
	mandoc -Tascii "$page" | sed 's/.\x08//g' >"$T/$name.txt"
	if grep -Ewn -e "$MACROS" "$T/$name.txt" >"$T/$name.macros"; then
		notok "$name: no macro name printed as text"
		sed 's/^/#   | /' "$T/$name.macros" | head -5
	else
		ok "$name: no macro name printed as text"
	fi
done

#!/bin/bash
# test_man - the manual pages: mandoc finds nothing to warn about, and
# mxswitch.conf(5) documents exactly the settings the daemon accepts, with
# the daemon's defaults, types and ranges; the option and command lists of
# mxswitch(8) and mxswitch-ctl(8) match the programs' own help, and the
# options of the setup scripts' pages their --help.
T_NAME=test_man
. "$(dirname "$0")/lib.sh"

PAGES="milter/mxswitch.8 milter/mxswitch-ctl.8 milter/mxswitch.conf.5
       milter/mxswitch-postfix-setup.8 milter/mxswitch-sendmail-setup.8"

for p in $PAGES; do
    out=$(mandoc -T lint -W warning "$p" 2>&1)
    expect_eq "mandoc -T lint: $p is clean" "$out" ""
done

# settings_dump - "name value" for every setting mxswitch -t -v prints
settings_dump() {
    "$MXSWITCH" -t -v -c /dev/null | awk '
        / = / { v = $0; sub(/^[^=]*= /, "", v); sub(/;$/, "", v)
                n = $1; p = ""; for (i = 1; i <= d; i++) p = p g[i] "."
                print p n " " v; next }
        /: \{$/ { g[++d] = $1; sub(/:$/, "", g[d]); next }
        /^ *\};$/ { d--; next }'
}

# settings_man - "name value" for every setting mxswitch.conf(5) documents,
# from ".It Cm NAME Pq TYPE [RANGE], default DEFAULT"
settings_man() {
    sed -n 's/^\.It Cm \([a-z_.]*\) Pq .*, default \(.*\)$/\1 \2/p' \
        milter/mxswitch.conf.5 |
        sed -e 's/\\&//g' -e 's/ Qq ""$/ ""/' -e 's/ Qq \(.*\)$/ "\1"/' \
            -e 's/ Li ()$/ ()/'
}

settings_dump | sort >"$WORK/dump"
settings_man | sort >"$WORK/man"
expect_eq "the daemon prints settings (mxswitch -t -v)" \
    "$(wc -l <"$WORK/dump")" "$(grep -c ' = ' <("$MXSWITCH" -t -v -c /dev/null))"
[ -s "$WORK/dump" ] || fail "settings dump" "empty"
expect_eq "every setting the daemon has is in mxswitch.conf(5)" \
    "$(join -v1 <(cut -d' ' -f1 "$WORK/dump") <(cut -d' ' -f1 "$WORK/man"))" ""
expect_eq "every setting in mxswitch.conf(5) is one the daemon has" \
    "$(join -v2 <(cut -d' ' -f1 "$WORK/dump") <(cut -d' ' -f1 "$WORK/man"))" ""
expect_eq "mxswitch.conf(5) gives the daemon's default of every setting" \
    "$(diff "$WORK/dump" "$WORK/man" | grep '^[<>]')" ""

# Types: the form of the default in the dump says what the daemon reads.
bad="" typed=0
while read -r name type; do
    typed=$((typed + 1))
    v=$(grep "^$name " "$WORK/dump" | cut -d' ' -f2-)
    case $type in
    string | keyword) re='^".*"$' ;;
    integer) re='^-?[0-9]+$' ;;
    boolean) re='^(true|false)$' ;;
    list) re='^\(.*\)$' ;;
    *) re='^$' ;;
    esac
    [[ $v =~ $re ]] || bad="$bad $name($type=$v)"
done < <(sed -n 's/^\.It Cm \([a-z_.]*\) Pq \([a-z]*\).*/\1 \2/p' \
    milter/mxswitch.conf.5)
expect_eq "the documented type of every setting fits the daemon's value" \
    "$bad" ""
expect_eq "the type check read a type for every setting" \
    "$typed" "$(wc -l <"$WORK/dump")"

# Ranges: one past each documented bound is refused with that range.
bad=""
n=0
while read -r name lo hi; do
    group=${name%.*} key=${name##*.}
    for v in $((lo - 1)) $((hi + 1)); do
        conf="$WORK/range.conf"
        # a.b.c -> a: { b: { c = v; }; };
        IFS=. read -ra parts <<<"$group"
        open="" close=""
        for p in "${parts[@]}"; do open="$open$p: { " close="$close }; "; done
        echo "$open$key = $v;$close" >"$conf"
        out=$("$MXSWITCH" -t -c "$conf" 2>&1)
        grep -q "$name: $v is out of range ($lo-$hi)" <<<"$out" ||
            bad="$bad $name=$v"
        n=$((n + 1))
    done
done < <(sed -n 's/^\.It Cm \([a-z_.]*\) Pq integer \([0-9]*\)\\(en\([0-9]*\),.*/\1 \2 \3/p' \
    milter/mxswitch.conf.5)
expect_eq "every documented integer range is the daemon's ($n bounds tried)" \
    "$bad" ""
expect_eq "every integer setting has its range documented" \
    "$(grep -c '^\.It Cm [a-z_.]* Pq integer [0-9]*\\(en' milter/mxswitch.conf.5)" \
    "$(grep -Ec ' -?[0-9]+$' "$WORK/dump")"

# Options of mxswitch(8) and mxswitch-ctl(8), commands of mxswitch-ctl(8),
# against the programs' own help.
opts_help() { "$1" -h 2>&1 | sed -n '1s/.*\[-\([a-zA-Z]*\)\] \[-c.*/\1c/p' | fold -w1 | sort | tr -d '\n'; }
opts_man() { sed -n 's/^\.It Fl \([a-zA-Z]\).*/\1/p' "$1" | sort | tr -d '\n'; }
expect_eq "mxswitch(8) documents exactly the options of mxswitch -h" \
    "$(opts_man milter/mxswitch.8)" "$(opts_help "$MXSWITCH")"
expect_eq "mxswitch-ctl(8) documents exactly the options of mxswitch-ctl -h" \
    "$(opts_man milter/mxswitch-ctl.8 | tr -d -)" "$(opts_help "$MXCTL")"
expect_eq "mxswitch-ctl(8) documents exactly the commands of mxswitch-ctl -h" \
    "$(sed -n 's/^\.It Cm \([a-z]*\)\( .*\)\{0,1\}$/\1/p' milter/mxswitch-ctl.8 |
        sort -u | tr '\n' ' ')" \
    "$("$MXCTL" -h | sed -n 's/^  \([a-z][a-z]*\) .*/\1/p' | sort -u | tr '\n' ' ')"

# The setup scripts: the options their --help lists (two spaces, then the
# option) are the ones their page has (.It Fl, -h/--help aside).
script_opts_help() {
    "scripts/$1" --help | sed -n 's/^  \(--\{0,1\}[a-z][a-z-]*\).*/\1/p' |
        sort | tr '\n' ' '
}
script_opts_man() {
    sed -n 's/^\.It Fl \([^ ]*\).*/\1/p' "milter/$1.8" | tr -d '\\' |
        sed -e 's/^\([a-z]\)$/-\1/' -e 's/^-\([a-z][a-z]\)/--\1/' |
        grep -vx -- -h | sort | tr '\n' ' '
}
for s in mxswitch-postfix-setup mxswitch-sendmail-setup; do
    got=$(script_opts_man "$s")
    [ -n "$got" ] || fail "$s(8) options" "none read from the page"
    expect_eq "$s(8) documents exactly the options of $s --help" \
        "$got" "$(script_opts_help "$s")"
done
finish

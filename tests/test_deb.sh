#!/bin/bash
# test_deb - the Debian package: scripts/deb builds it and lintian finds no
# error; its files, control fields, conffiles and maintainer scripts are
# the ones issue 23 asks for; the binaries carry dpkg-buildflags'
# hardening (CPPFLAGS honoured); make install/uninstall lay out the same
# files with PREFIX=/usr.
#
# Release variant only: the package is built from the sources with its own
# flags, whatever the variant, so the asan/valgrind/tsan passes would build
# and check the same package again (about a minute each).  They print a
# summary with no checks and say so.
T_NAME=test_deb
. "$(dirname "$0")/lib.sh"

if [ "${VARIANT:-release}" != release ]; then
    echo "note: the package does not depend on the variant: checked in release"
    finish
    exit
fi

# make install with PREFIX=/usr, as debian/rules runs it, then uninstall.
R=$WORK/root
make --no-print-directory -s install PREFIX=/usr SYSCONFDIR=/etc \
    DESTDIR="$R" >"$WORK/install.log" 2>&1 ||
    fail "make install PREFIX=/usr" "$(tail -n 3 "$WORK/install.log")"
for f in usr/sbin/mxswitch usr/sbin/mxswitch-ctl \
    usr/sbin/mxswitch-postfix-setup usr/sbin/mxswitch-sendmail-setup \
    usr/share/man/man8/mxswitch-postfix-setup.8 \
    usr/share/man/man8/mxswitch-sendmail-setup.8 \
    lib/systemd/system/mxswitch.service etc/mxswitch/mxswitch.conf; do
    [ -e "$R/$f" ] || fail "make install PREFIX=/usr puts /$f" "missing"
done
pass "make install PREFIX=/usr: the unit in /lib/systemd/system, the setup scripts in /usr/sbin"
make --no-print-directory -s uninstall PREFIX=/usr SYSCONFDIR=/etc \
    DESTDIR="$R" >"$WORK/uninstall.log" 2>&1
expect_eq "make uninstall removes what install put, keeps the config" \
    "$(cd "$R" && find . -type f | sort | tr '\n' ' ')" \
    "./etc/mxswitch/mxswitch.conf "

# The package.
if ! scripts/deb >"$WORK/deb.log" 2>&1; then
    fail "scripts/deb builds the package, lintian reports no error" \
        "exit status $?"
    tail -n 20 "$WORK/deb.log" | sed 's/^/    | /'
else
    pass "scripts/deb builds the package, lintian reports no error"
fi
DEB=$(ls build/deb/mxswitch_*_*.deb 2>/dev/null | head -n 1)
[ -f "$DEB" ] || abort "a package in build/deb" "none"
# Built by this run, not left from an earlier one.
expect_eq "the package is newer than this test's start" \
    "$(find "$DEB" -newer "$WORK" | wc -l)" 1

expect_eq "lintian ran and printed no E: line" \
    "$([ -f build/deb/lintian.log ] && grep -c '^E: ' build/deb/lintian.log)" 0
expect_grep "scripts/deb prints lintian's counts" "$WORK/deb.log" \
    '^scripts/deb: 0 errors, [0-9]+ warnings$'

dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's#^\./#/#' >"$WORK/files"
for f in /usr/sbin/mxswitch /usr/sbin/mxswitch-ctl \
    /usr/sbin/mxswitch-postfix-setup /usr/sbin/mxswitch-sendmail-setup \
    /usr/share/man/man8/mxswitch.8.gz /usr/share/man/man8/mxswitch-ctl.8.gz \
    /usr/share/man/man8/mxswitch-postfix-setup.8.gz \
    /usr/share/man/man8/mxswitch-sendmail-setup.8.gz \
    /usr/share/man/man5/mxswitch.conf.5.gz /etc/mxswitch/mxswitch.conf \
    /lib/systemd/system/mxswitch.service /usr/share/doc/mxswitch/copyright; do
    expect_eq "the package has $f" "$(grep -cx "$f" "$WORK/files")" 1
done
expect_eq "the package installs nothing under /usr/local" \
    "$(grep -c '^/usr/local' "$WORK/files")" 0

field() { dpkg-deb -f "$DEB" "$1"; }
expect_eq "Package: mxswitch" "$(field Package)" mxswitch
expect_eq "Section: mail" "$(field Section)" mail
expect_eq "Recommends: redis-server" "$(field Recommends)" redis-server
for lib in libmilter1.0.1 libhiredis0.14 libconfig9 libidn2-0 adduser; do
    expect_eq "Depends names $lib" \
        "$(field Depends | tr ',' '\n' | sed 's/^ *//; s/ .*//' |
            grep -cx "$lib")" 1
done

dpkg-deb -e "$DEB" "$WORK/control"
expect_eq "conffiles: /etc/mxswitch/mxswitch.conf" \
    "$(cat "$WORK/control/conffiles")" /etc/mxswitch/mxswitch.conf
user=$(sed -n 's/^    user = "\(.*\)";.*/\1/p' conf/mxswitch.conf)
expect_grep "postinst makes the system user the config names ($user)" \
    "$WORK/control/postinst" "^NAME=${user:-unset}\$"
expect_grep "postinst: adduser --system --group" \
    "$WORK/control/postinst" 'adduser --quiet --system --group'
expect_grep "prerm undoes the Postfix wiring on remove" \
    "$WORK/control/prerm" 'mxswitch-postfix-setup --undo --config-dir'
expect_grep "prerm undoes the Sendmail wiring on remove" \
    "$WORK/control/prerm" 'mxswitch-sendmail-setup --undo'
expect_grep "postrm removes /etc/mxswitch on purge" \
    "$WORK/control/postrm" '^    rm -rf /etc/mxswitch$'
expect_grep "dh_installsystemd enables the unit" \
    "$WORK/control/postinst" "deb-systemd-helper enable 'mxswitch.service'"
for s in prerm postrm postinst; do
    expect_eq "sh -n $s" "$(sh -n "$WORK/control/$s" 2>&1)" ""
done

dpkg-deb -x "$DEB" "$WORK/x"
UNIT=$WORK/x/lib/systemd/system/mxswitch.service
expect_eq "the unit runs /usr/sbin/mxswitch" \
    "$(grep '^ExecStart=' "$UNIT")" \
    "ExecStart=/usr/sbin/mxswitch -f -c /etc/mxswitch/mxswitch.conf"
expect_eq "the unit is ordered before Debian's Postfix and Sendmail units" \
    "$(grep '^Before=' "$UNIT" | tr ' =' '\n\n' | grep -c \
        -e '^postfix@-\.service$' -e '^postfix\.service$' \
        -e '^sendmail\.service$')" 3
# dpkg-buildflags through the Makefile: fortified calls (CPPFLAGS'
# _FORTIFY_SOURCE), full RELRO (LDFLAGS' -z relro -z now), the stack
# protector (CFLAGS).
for b in mxswitch mxswitch-ctl; do
    bin=$WORK/x/usr/sbin/$b
    expect_eq "$b: fortified libc calls (_FORTIFY_SOURCE)" \
        "$(nm -D "$bin" | grep -c '__[a-z]*_chk@' | sed 's/^0$/none/;s/^[0-9]*$/some/')" \
        some
    expect_eq "$b: full RELRO (-z relro -z now)" \
        "$(readelf -lW "$bin" | grep -c GNU_RELRO):$(readelf -dW "$bin" |
            grep -c 'BIND_NOW')" "1:1"
    expect_eq "$b: stack protector" \
        "$(nm -D "$bin" | grep -c '__stack_chk_fail')" 1
done
finish

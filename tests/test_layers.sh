#!/bin/bash
# test_layers - the modules form layers: no include circles, a pure core
#
# The graph: a node per module (x.c and x.h are one node; mxs.h is the
# header of util.c), an edge for every #include "y.h" in milter/*.c and
# milter/*.h.  It fails, naming the circle, when the graph has one; and
# when a module of the pure core includes hiredis.h, mfapi.h or a socket
# header (sys/socket.h, sys/un.h, netinet/, netdb.h).  arpa/inet.h is
# allowed: cfg checks address texts with inet_pton(), which opens nothing.
# The first cases run the same checks on made-up modules, to show that
# they can fail.  docs/design.md lists the layers.
T_NAME=test_layers
. "$(dirname "$0")/lib.sh"

CORE="addr domain route cache cfg cfgref util log fmt"

# node FILE - the module a source file belongs to
node() {
    local m
    m=$(basename "$1")
    m=${m%.[ch]}
    [ "$m" = mxs ] && m=util
    echo "$m"
}

# edges DIR - "from to" for every include of a local header in DIR
edges() {
    local f h
    for f in "$1"/*.[ch]; do
        sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)\.h".*/\1/p' \
            "$f" | while read -r h; do
            echo "$(node "$f") $(node "$h.h")"
        done
    done | awk '$1 != $2' | sort -u
}

# cycles DIR - print each include circle found ("a -> b -> a"), one a line
cycles() {
    edges "$1" | awk '
        { adj[$1] = adj[$1] " " $2; nodes[$1] = 1; nodes[$2] = 1 }
        function visit(n,    i, k, m, to) {
            state[n] = 1
            path[++depth] = n
            k = split(adj[n], to, " ")
            for (i = 1; i <= k; i++) {
                m = to[i]
                if (state[m] == 1) {
                    line = m
                    for (j = depth; j >= 1 && path[j] != m; j--)
                        ;
                    line = path[j]
                    for (j = j + 1; j <= depth; j++)
                        line = line " -> " path[j]
                    print line " -> " m
                } else if (state[m] == 0) {
                    visit(m)
                }
            }
            depth--
            state[n] = 2
        }
        END {
            n = 0
            for (x in nodes)
                order[++n] = x
            # a fixed order, so that the same tree names the same circle
            for (i = 1; i <= n; i++)
                for (j = i + 1; j <= n; j++)
                    if (order[j] < order[i]) {
                        t = order[i]; order[i] = order[j]; order[j] = t
                    }
            for (i = 1; i <= n; i++)
                if (state[order[i]] == 0)
                    visit(order[i])
        }'
}

# impure DIR - "module: file includes header" for each core module that
# includes an I/O header
impure() {
    local m f
    for m in $CORE; do
        for f in "$1/$m.c" "$1/$m.h"; do
            [ -f "$f" ] || continue
            grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](hiredis/hiredis\.h|hiredis\.h|libmilter/mfapi\.h|mfapi\.h|sys/socket\.h|sys/un\.h|netinet/[^>"]*|netdb\.h)[>"]' \
                "$f" | sed "s|^|$m: $(basename "$f") |"
        done
    done
}

# fixture NAME - a made-up module tree in $WORK/NAME: addr, log, util, a
# and b, with no circle and a pure core
fixture() {
    local d="$WORK/$1"
    mkdir -p "$d"
    printf '#include "mxs.h"\n' >"$d/addr.h"
    printf '#include "addr.h"\n#include <string.h>\n' >"$d/addr.c"
    printf '#include <stdio.h>\n' >"$d/log.c"
    printf '#include "log.h"\n#include "mxs.h"\n' >"$d/util.c"
    printf '#include "addr.h"\n' >"$d/a.h"
    printf '#include "a.h"\n#include "log.h"\n' >"$d/a.c"
    printf '#include "a.h"\n#include <hiredis/hiredis.h>\n' >"$d/b.c"
    echo "$d"
}

d=$(fixture clean)
expect_eq "a made-up tree in layers has no circle" "$(cycles "$d")" ""
expect_eq "a made-up pure core passes" "$(impure "$d")" ""

d=$(fixture circle)
printf '#include "b.h"\n' >>"$d/a.c"
expect_eq "a.c including b.h while b.c includes a.h is a circle" \
    "$(cycles "$d")" "a -> b -> a"

d=$(fixture mxs)
printf '#include "mxs.h"\n' >>"$d/log.c"
expect_eq "log.c including mxs.h (util's header) closes log -> util -> log" \
    "$(cycles "$d")" "util -> log -> util"

d=$(fixture long)
printf '#include "addr.h"\n' >>"$d/log.c"
expect_eq "a longer circle is named whole" "$(cycles "$d")" \
    "addr -> util -> log -> addr"

d=$(fixture impure)
printf '#include <sys/socket.h>\n' >>"$d/addr.c"
printf '#include <hiredis/hiredis.h>\n' >>"$d/log.c"
expect_eq "a core module including a socket or hiredis header is found" \
    "$(impure "$d" | tr '\n' ';')" \
    "addr: addr.c #include <sys/socket.h>;log: log.c #include <hiredis/hiredis.h>;"

# The real tree.
found=$(cycles milter)
if [ -z "$found" ]; then
    pass "milter/: no include circle ($(edges milter | wc -l) edges)"
else
    fail "milter/: no include circle" "$(echo "$found" | tr '\n' ';')"
fi
found=$(impure milter)
if [ -z "$found" ]; then
    pass "milter/: the pure core includes no hiredis, libmilter or socket header"
else
    fail "milter/: the pure core includes no I/O header" \
        "$(echo "$found" | tr '\n' ';')"
fi
finish

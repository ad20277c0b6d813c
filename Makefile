# mxswitch - build, test and install
#
#   make                 build milter/mxswitch and milter/mxswitch-ctl
#   make test            run every test once (release build)
#   make test-asan       the same suite built with ASan + UBSan
#   make test-valgrind   the same suite under valgrind (memcheck, leaks)
#   make test-tsan       ThreadSanitizer over the daemon (milter and socket
#                        map protocols, Sendmail end to end), the cache and
#                        the Redis pool
#   make check           format check + all four of the above
#   make fuzz            libFuzzer targets, FUZZ_SECONDS (60) each (clang)
#   make run             scripts/run: private Redis + mxswitch in the foreground
#   make demo            scripts/demo: a private Postfix routing real mail
#   make bench           tests/bench/run: throughput and latency against a
#                        no-op milter (QUICK=1: the reduced set, < 45 s)
#   make install         PREFIX=/usr/local DESTDIR= SBINDIR= MANDIR=
#                        SYSCONFDIR=/etc SYSTEMDUNITDIR= honoured (the unit:
#                        $(PREFIX)/lib/systemd/system, /lib/systemd/system
#                        for PREFIX=/usr as on Debian 12); an existing
#                        mxswitch.conf is kept
#   make uninstall       the same variables: removes what install put, but
#                        not the configuration
#   make deb             scripts/deb: the Debian package in build/deb/
#
# CPPFLAGS, CFLAGS and LDFLAGS from the environment or the command line
# are used (e.g. `eval "$(dpkg-buildflags --export=sh)"; make`); the
# warnings below, -Werror included, are always added.

PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
# Debian 12's systemd reads /lib/systemd/system; /usr/local/lib/systemd/system
# is in its search path too.
SYSTEMDUNITDIR ?= $(if $(filter /usr,$(PREFIX)),,$(PREFIX))/lib/systemd/system
DESTDIR ?=
VARIANT ?= release

CC ?= cc
PKGS = hiredis libconfig libidn2
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
WARN = -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes
CFLAGS ?= -O2 -g
XCFLAGS = -std=gnu11 -D_GNU_SOURCE -pthread $(WARN) $(PKG_CFLAGS)
LIBS = -lmilter $(PKG_LIBS) -lresolv -pthread

BUILD = build/$(VARIANT)
ifeq ($(VARIANT),asan)
XCFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=all
override LDFLAGS += -fsanitize=address,undefined
else ifeq ($(VARIANT),tsan)
# ThreadSanitizer: the daemon and the modules threads share (test-tsan).
XCFLAGS += -fsanitize=thread
override LDFLAGS += -fsanitize=thread
endif
# The release binaries live beside their sources; other variants' in BUILD.
ifeq ($(VARIANT),release)
BIN = milter/mxswitch
CTL = milter/mxswitch-ctl
else
BIN = $(BUILD)/mxswitch
CTL = $(BUILD)/mxswitch-ctl
endif

CORE = fmt util log addr domain route cache cfg cfgref
# The Redis side, low to high (docs/design.md); the admin tool adds rcmd.
REDIS = rendpoint rpool rwatch rclient
DAEMON = $(CORE) dns verify stats $(REDIS) lookup smap mlfi main
# The admin tool links the daemon's own modules: one copy of the rules.
CTLOBJ = $(CORE) dns stats $(REDIS) rcmd lookup ctl
UNITS = fmt util log addr domain route cache cfg cfgref smap lookup corpus dns \
        verify
UNIT_BINS = $(UNITS:%=$(BUILD)/test_%)

all: $(BIN) $(CTL)

$(BUILD)/%.o: milter/%.c milter/*.h | $(BUILD)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(XCFLAGS) -Imilter -c -o $@ $<

$(BUILD)/t_%.o: tests/%.c tests/*.h milter/*.h | $(BUILD)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(XCFLAGS) -Imilter -Itests -c -o $@ $<

$(BUILD):
	mkdir -p $@

$(BIN): $(DAEMON:%=$(BUILD)/%.o)
	$(CC) $(CFLAGS) $(XCFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(CTL): $(CTLOBJ:%=$(BUILD)/%.o)
	$(CC) $(CFLAGS) $(XCFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lresolv -pthread

$(BUILD)/test_%: $(BUILD)/t_test_%.o $(CORE:%=$(BUILD)/%.o)
	$(CC) $(CFLAGS) $(XCFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

# test_smap links the server too (the reader lives beside it); needs no Redis.
$(BUILD)/test_smap: $(BUILD)/smap.o $(BUILD)/lookup.o $(REDIS:%=$(BUILD)/%.o) \
                   $(BUILD)/stats.o $(BUILD)/dns.o $(BUILD)/verify.o
# test_lookup: address keys and cache-only lookups; its Redis is a dead port.
$(BUILD)/test_lookup: $(BUILD)/lookup.o $(REDIS:%=$(BUILD)/%.o) \
                      $(BUILD)/stats.o $(BUILD)/dns.o

# test_dns tests the pure half of dns.c, which lives beside the resolver.
$(BUILD)/test_dns: $(BUILD)/dns.o
# test_verify: the pure half of verify.c (the probe's client needs dns.o).
$(BUILD)/test_verify: $(BUILD)/verify.o $(BUILD)/dns.o

$(BUILD)/mtc: $(BUILD)/t_mtc.o $(BUILD)/t_mclient.o
	$(CC) $(CFLAGS) $(XCFLAGS) $(LDFLAGS) -o $@ $^

# libFuzzer targets: the pure parsers, built with clang and sanitizers.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_CORE = fmt util log addr domain route
FUZZ_BINS = build/fuzz/fuzz_addr build/fuzz/fuzz_domain

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c milter/*.[ch]
	mkdir -p build/fuzz
	$(FUZZ_CC) -g -O1 -std=gnu11 -D_GNU_SOURCE -pthread $(WARN) \
	    $(PKG_CFLAGS) -Imilter -fno-omit-frame-pointer \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	    -o $@ $< $(FUZZ_CORE:%=milter/%.c) $(PKG_LIBS) -pthread

fuzz: $(FUZZ_BINS)
	tests/fuzz/run $(FUZZ_SECONDS) $(FUZZ_BINS)

# ThreadSanitizer over the daemon itself: build/tsan/mxswitch (and
# mxswitch-ctl) driven through the milter protocol and the socket map
# server (test_proto, test_socketmap, test_redis, and test_ops: reloads,
# counters and a stop with a session open), plus the cache (test_cache's
# threads() case) and the Redis pool's shared round trips (rshare, by
# test_rclient.sh); a few minutes.  libmilter is not instrumented:
# tests/tsan.supp, which tests/run hands to TSan, suppresses only what lies
# inside it, each line explained.
TSAN_SCRIPTS = tests/test_proto.sh tests/test_socketmap.sh \
               tests/test_redis.sh tests/test_ops.sh tests/test_rclient.sh \
               tests/test_symbols.sh tests/test_sendmail.sh
test-tsan:
	$(MAKE) VARIANT=tsan build/tsan/mxswitch build/tsan/mxswitch-ctl \
	    build/tsan/mtc build/tsan/notify_sink build/tsan/test_cache \
	    build/tsan/rshare
	MXSWITCH=build/tsan/mxswitch TESTBIN=build/tsan VARIANT=tsan \
	    UNITS=cache SCRIPTS="$(TSAN_SCRIPTS)" tests/run

# rshare: the pool's shared round trips, against tests/test_rclient.sh's Redis.
$(BUILD)/rshare: $(BUILD)/t_rshare.o $(REDIS:%=$(BUILD)/%.o) $(BUILD)/stats.o \
                 $(CORE:%=$(BUILD)/%.o)
	$(CC) $(CFLAGS) $(XCFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lresolv -pthread

$(BUILD)/notify_sink: $(BUILD)/t_notify_sink.o
	$(CC) $(CFLAGS) $(XCFLAGS) $(LDFLAGS) -o $@ $^

test-bins: $(BIN) $(CTL) $(UNIT_BINS) $(BUILD)/mtc $(BUILD)/notify_sink \
           $(BUILD)/rshare

# The benchmark's load generators and its no-op milter and socket map
# server (tests/bench/README.md).
$(BUILD)/b_%.o: tests/bench/%.c tests/*.h | $(BUILD)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(XCFLAGS) -Itests -c -o $@ $<

$(BUILD)/loadgen: $(BUILD)/b_loadgen.o $(BUILD)/t_mclient.o
	$(CC) $(CFLAGS) $(XCFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/noop: $(BUILD)/b_noop.o
	$(CC) $(CFLAGS) $(XCFLAGS) $(LDFLAGS) -o $@ $^ -lmilter -pthread

$(BUILD)/nullmap: $(BUILD)/b_nullmap.o
	$(CC) $(CFLAGS) $(XCFLAGS) $(LDFLAGS) -o $@ $^ -pthread

$(BUILD)/maploop: $(BUILD)/b_maploop.o
	$(CC) $(CFLAGS) $(XCFLAGS) $(LDFLAGS) -o $@ $^

bench-bins: $(BIN) $(BUILD)/loadgen $(BUILD)/noop $(BUILD)/nullmap \
            $(BUILD)/maploop

bench:
	scripts/deps build run demo bench
	$(MAKE) VARIANT=$(VARIANT) bench-bins
	MXSWITCH=$(BIN) TESTBIN=$(BUILD) tests/bench/run $(if $(QUICK),--quick)

test: test-bins
	MXSWITCH=$(BIN) TESTBIN=$(BUILD) VARIANT=$(VARIANT) WRAP="$(WRAP)" \
	    tests/run

test-asan:
	$(MAKE) VARIANT=asan test

test-valgrind: test-bins
	$(MAKE) VARIANT=release test WRAP="valgrind -q --error-exitcode=99 \
	    --leak-check=full --errors-for-leak-kinds=definite,indirect \
	    --show-leak-kinds=definite,indirect --track-fds=no"

check:
	tests/run-all

format-check:
	clang-format --dry-run --Werror milter/*.[ch] tests/*.[ch] tests/fuzz/*.c \
	    tests/bench/*.c

run:
	scripts/run

demo:
	scripts/demo

SETUP = mxswitch-postfix-setup mxswitch-sendmail-setup
MAN8 = mxswitch.8 mxswitch-ctl.8 $(SETUP:%=%.8)

install: $(BIN) $(CTL)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/mxswitch \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 755 $(BIN) $(DESTDIR)$(SBINDIR)/mxswitch
	install -m 755 $(CTL) $(DESTDIR)$(SBINDIR)/mxswitch-ctl
	install -m 755 $(SETUP:%=scripts/%) $(DESTDIR)$(SBINDIR)
	install -m 644 $(MAN8:%=milter/%) $(DESTDIR)$(MANDIR)/man8
	install -m 644 milter/mxswitch.conf.5 $(DESTDIR)$(MANDIR)/man5
	test -e $(DESTDIR)$(SYSCONFDIR)/mxswitch/mxswitch.conf || \
	    install -m 640 conf/mxswitch.conf \
	        $(DESTDIR)$(SYSCONFDIR)/mxswitch/mxswitch.conf
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	sed -e 's#/usr/local/sbin/#$(SBINDIR)/#g' \
	    -e 's#/etc/mxswitch/#$(SYSCONFDIR)/mxswitch/#g' \
	    conf/mxswitch.service >$(DESTDIR)$(SYSTEMDUNITDIR)/mxswitch.service
	chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/mxswitch.service

# The configuration (and what the setup scripts wrote beside it) stays.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/mxswitch $(DESTDIR)$(SBINDIR)/mxswitch-ctl \
	    $(SETUP:%=$(DESTDIR)$(SBINDIR)/%) $(MAN8:%=$(DESTDIR)$(MANDIR)/man8/%) \
	    $(DESTDIR)$(MANDIR)/man5/mxswitch.conf.5 \
	    $(DESTDIR)$(SYSTEMDUNITDIR)/mxswitch.service

# The unit tests alone (no Redis, no MTA, no network): the package build's.
test-units: $(UNIT_BINS)
	@set -e; for t in $(UNITS); do $(BUILD)/test_$$t; done

deb:
	scripts/deb

clean:
	rm -rf build milter/mxswitch milter/mxswitch-ctl


.PHONY: all test test-bins test-asan test-valgrind test-tsan check \
        format-check run demo install uninstall test-units deb clean fuzz \
        bench bench-bins
.SECONDARY:

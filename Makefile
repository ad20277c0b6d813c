# mxswitch - build, test and install
#
#   make                 build milter/mxswitch
#   make test            run every test once (release build)
#   make test-asan       the same suite built with ASan + UBSan
#   make test-valgrind   the same suite under valgrind (memcheck, leaks)
#   make check           format check + all three of the above
#   make run             scripts/run: private Redis + mxswitch in the foreground
#   make demo            scripts/demo: a private Postfix routing real mail
#   make bench           tests/bench/run: throughput and latency against a
#                        no-op milter (QUICK=1: the reduced set, < 45 s)
#   make install         PREFIX=/usr/local DESTDIR= honoured

PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
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
LDFLAGS += -fsanitize=address,undefined
BIN = $(BUILD)/mxswitch
else
BIN = milter/mxswitch
endif

CORE = util log addr domain route cache cfg
DAEMON = $(CORE) rclient lookup smap mxcheck mlfi main
UNITS = addr domain route cache cfg smap
UNIT_BINS = $(UNITS:%=$(BUILD)/test_%)

all: $(BIN)

$(BUILD)/%.o: milter/%.c milter/*.h | $(BUILD)
	$(CC) $(CFLAGS) $(XCFLAGS) -Imilter -c -o $@ $<

$(BUILD)/t_%.o: tests/%.c tests/*.h milter/*.h | $(BUILD)
	$(CC) $(CFLAGS) $(XCFLAGS) -Imilter -Itests -c -o $@ $<

$(BUILD):
	mkdir -p $@

$(BIN): $(DAEMON:%=$(BUILD)/%.o)
	$(CC) $(CFLAGS) $(XCFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/test_%: $(BUILD)/t_test_%.o $(CORE:%=$(BUILD)/%.o)
	$(CC) $(CFLAGS) $(XCFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

# test_smap links the server too (the reader lives beside it); needs no Redis.
$(BUILD)/test_smap: $(BUILD)/smap.o $(BUILD)/lookup.o $(BUILD)/rclient.o

$(BUILD)/mtc: $(BUILD)/t_mtc.o $(BUILD)/t_mclient.o
	$(CC) $(CFLAGS) $(XCFLAGS) $(LDFLAGS) -o $@ $^

test-bins: $(BIN) $(UNIT_BINS) $(BUILD)/mtc

# The benchmark's load generator and no-op milter (tests/bench/README.md).
$(BUILD)/b_%.o: tests/bench/%.c tests/*.h | $(BUILD)
	$(CC) $(CFLAGS) $(XCFLAGS) -Itests -c -o $@ $<

$(BUILD)/loadgen: $(BUILD)/b_loadgen.o $(BUILD)/t_mclient.o
	$(CC) $(CFLAGS) $(XCFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/noop: $(BUILD)/b_noop.o
	$(CC) $(CFLAGS) $(XCFLAGS) $(LDFLAGS) -o $@ $^ -lmilter -pthread

bench-bins: $(BIN) $(BUILD)/loadgen $(BUILD)/noop

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
	clang-format --dry-run --Werror milter/*.[ch] tests/*.[ch] tests/bench/*.c

run:
	scripts/run

demo:
	scripts/demo

install: $(BIN)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/mxswitch
	install -m 755 $(BIN) $(DESTDIR)$(SBINDIR)/mxswitch
	test -e $(DESTDIR)$(SYSCONFDIR)/mxswitch/mxswitch.conf || \
	    install -m 640 conf/mxswitch.conf \
	        $(DESTDIR)$(SYSCONFDIR)/mxswitch/mxswitch.conf

clean:
	rm -rf build milter/mxswitch


.PHONY: all test test-bins test-asan test-valgrind check format-check run demo \
        install clean bench bench-bins
.SECONDARY:

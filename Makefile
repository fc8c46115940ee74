# walship top-level Makefile (plain GNU make).
#
#   make            build walshipd and walship into build/
#   make check      install missing Debian packages, build, run every test
#   make demo       primary + replica in two network namespaces, real PostgreSQL 15
#   make bench      the benchmark (prints ratios against baselines of the same run)
#   make soak       the fault-injection tests, SOAK_ROUNDS times over
#   make fuzz       the libFuzzer targets, FUZZ_SECONDS (default 300) each
#   make install    PREFIX=/usr/local DESTDIR= (walship_archive.so to `pg_config --pkglibdir`)
#   make docs       regenerate the generated parts of docs/ and man/ (scripts/gen-docs.sh)
#   make deb        the Debian packages walship and walship-dkms into $(BUILD)/deb/, lintian
#   make format     reformat the C sources with .clang-format
#   V=1             print full commands

PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
DOCDIR  ?= $(PREFIX)/share/doc/walship
MANDIR  ?= $(PREFIX)/share/man
# systemd's unit folder as systemd.pc names it (/lib/systemd/system on Debian 12).
UNITDIR ?= $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || \
	echo /lib/systemd/system)
DESTDIR ?=

CC      ?= gcc
BUILD   ?= build
VERSION := 0.1.0

ifeq ($(V),1)
Q :=
else
Q := @
endif

define newline


endef
# The two spaces before a quiet build's "CC file" lines, printed by make itself ($(info))
# rather than by a shell started for each object file.
INDENT := $(subst x,,x  )

# Every object's folder is an order-only prerequisite ($$(@D)/), made once by this rule,
# not by a mkdir per object.  Precious: made through pattern rules, the folders would
# otherwise count as intermediate files, which make tries to delete when it ends.
.SECONDEXPANSION:
.PRECIOUS: %/
%/:
	$(Q)mkdir -p $@

# Warnings: -Wall -Wextra -Werror plus the following, each for a reason:
#   -Wshadow                 a shadowed local hides the variable the reader thinks is used
#   -Wformat=2               format strings checked, including non-literal ones
#   -Wmissing-prototypes     every extern function has its contract in a header
#   -Wstrict-prototypes      no K&R-style "()" declarations
#   -Wvla                    stack size is bounded and visible
#   -Wwrite-strings          string literals are const
#   -Wpointer-arith          no arithmetic on void *
#   -Wimplicit-fallthrough   switch fallthrough must be annotated
#   -Wundef                  a typo in an #if is an error, not a silent 0
#   -Wnull-dereference       catches the obvious paths the optimizer can see
#   -Wcast-qual              casting away const is a review point
#   -Wno-format-truncation   snprintf into fixed status/message fields truncates on purpose
WARNINGS := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wmissing-prototypes \
	-Wstrict-prototypes -Wvla -Wwrite-strings -Wpointer-arith \
	-Wimplicit-fallthrough -Wundef -Wnull-dereference -Wcast-qual -Wno-format-truncation

CPPFLAGS += -D_GNU_SOURCE -DWALSHIP_VERSION=\"$(VERSION)\" -Iinclude -Idaemon
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 $(WARNINGS) -MMD -MP -fno-strict-aliasing
LDLIBS   += -luring -lbpf -lelf -lz -lssl -lcrypto
# libisal (ISA-L): walshipd's CRC-32C (daemon/common/crc32c_isal.c), twice as fast as
# daemon/common/crc32c.c's, which the CLI keeps (it links libc alone, CLI_LDLIBS).
LDLIBS   += -lisal
# libnl-genl-3: the sysfs publisher (daemon/publish/) talks generic netlink to walship.ko.
# libpq: the streaming source (daemon/source/) is a PostgreSQL replication client.  Only
# walshipd and the test programs link it, not the CLI (CLI_LDLIBS).
# libsystemd: sd_notify() for Type=notify units (daemon/common/sdnotify.c, systemd/).
# pkg-config runs once, here (:=): CPPFLAGS and LDLIBS are recursive variables (+= on a
# variable the environment or nothing defined), so a $(shell) inside them ran again at
# every compile and link, three pkg-config processes per object file.
PKG_LIBS     := libnl-genl-3.0 libpq libsystemd
PKG_CPPFLAGS := $(shell pkg-config --cflags $(PKG_LIBS))
PKG_LDLIBS   := $(shell pkg-config --libs $(PKG_LIBS))
CPPFLAGS += $(PKG_CPPFLAGS)
LDLIBS   += $(PKG_LDLIBS)

# Sanitizer build for unit tests.  -O0: a third less CPU to compile than -O1 (make check
# builds it from scratch), and the unit tests run in seconds either way; the warnings that
# need the optimiser come from the -O2 build of the same sources.
ASAN_FLAGS := -O0 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=all

# Sources.  Every .c under these folders is built; adding a file needs no Makefile edit.
# The layer order is the table "Layers of the code" in docs/architecture.md, checked by
# scripts/check-layers.sh in `make check`.
CORE_SRCS   := $(sort $(wildcard daemon/common/*.c daemon/wal/*.c daemon/proto/*.c))
DAEMON_SRCS := $(sort $(wildcard daemon/ring/*.c daemon/net/*.c daemon/control/*.c daemon/status/*.c \
	daemon/source/*.c daemon/serve/*.c daemon/role/*.c daemon/publish/*.c daemon/probe/*.c daemon/metrics/*.c))
TOOL_SRCS   := $(sort $(wildcard tools/*.c))
UNIT_SRCS   := $(sort $(shell find test/unit -name '*_test.c' 2>/dev/null))
HELPER_SRCS := $(sort $(wildcard test/helpers/*.c))

CORE_OBJS   := $(CORE_SRCS:%.c=$(BUILD)/obj/%.o)
DAEMON_OBJS := $(DAEMON_SRCS:%.c=$(BUILD)/obj/%.o)
TOOL_OBJS   := $(TOOL_SRCS:%.c=$(BUILD)/obj/%.o)
ASAN_OBJS   := $(CORE_SRCS:%.c=$(BUILD)/asan/%.o) $(DAEMON_SRCS:%.c=$(BUILD)/asan/%.o)
UNIT_BINS   := $(UNIT_SRCS:test/unit/%.c=$(BUILD)/unit/%)
HELPER_BINS := $(HELPER_SRCS:test/helpers/%.c=$(BUILD)/helpers/%)

LIBCORE := $(BUILD)/libwalship.a
# The CLI needs the lower layers and the reading of pinned BPF maps, not the daemon's
# engine, roles, TLS or netlink: it links this smaller archive and libc alone, for
# PostgreSQL starts it once per segment (archive_command, restore_command) and every
# library linked is loaded and relocated at each start.  `walship password` loads
# libcrypto with dlopen() (tools/crypto_dl.h, declared by hand in debian/control);
# `walship stats` reads the pins with bpf(2) itself (daemon/probe/pins.c).
CLI_OBJS    := $(CORE_OBJS) $(BUILD)/obj/daemon/probe/hist.o $(BUILD)/obj/daemon/probe/pins.o
LIBCLI      := $(BUILD)/libwalship-cli.a
CLI_LDLIBS  :=
LIBASAN := $(BUILD)/libwalship-asan.a

.PHONY: all check demo bench soak install uninstall clean format format-check deps unit vmlinux \
	system helpers docs

# PostgreSQL's archive module (pgmod/, archive_library = 'walship_archive'): built only
# where pg_config names server headers (Debian: postgresql-server-dev-15) of PostgreSQL 15,
# whose archive module API (postmaster/pgarch.h) it is written for: 16 moved it
# (archive/archive_module.h, callbacks with a state), and a build against it would fail.  The CLI's
# control client, the WAL file names and the logger go into it compiled again as position-independent code,
# with hidden visibility so that none of their symbols can be bound to the server's.
PG_CONFIG         ?= pg_config
PG_INCLUDE_SERVER := $(shell $(PG_CONFIG) --includedir-server 2>/dev/null)
PG_PKGLIBDIR      := $(shell $(PG_CONFIG) --pkglibdir 2>/dev/null)
PGMOD_SO          := $(BUILD)/walship_archive.so
PGMOD_PIC_OBJS    := $(BUILD)/pic/tools/client.o $(BUILD)/pic/daemon/common/log.o \
		     $(BUILD)/pic/daemon/wal/name.o
PG_MAJOR          := $(shell $(PG_CONFIG) --version 2>/dev/null | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')
ifneq ($(wildcard $(PG_INCLUDE_SERVER)/postgres.h),)
ifeq ($(PG_MAJOR),15)
PGMOD := $(PGMOD_SO)
endif
endif

all: $(BUILD)/walshipd $(BUILD)/walship helpers $(PGMOD)

helpers: $(HELPER_BINS)

# BPF probes (bpf/): clang -target bpf, then bpftool turns the object into a skeleton
# header in $(BUILD)/bpf that daemon/probe/ includes.  bpf/vmlinux.h is kept in the tree
# (CO-RE makes it portable); `make vmlinux` regenerates it from the running kernel.
CLANG      ?= clang
BPFTOOL    ?= bpftool
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_x86 -Ibpf -Wall -Werror
BPF_SKELS  := $(BUILD)/bpf/probes.skel.h
# bpf/ is an include root: bpf/probes.h holds the map layouts shared with user space.
CPPFLAGS   += -I$(BUILD)/bpf -Ibpf

$(BUILD)/bpf/%.tmp.bpf.o: bpf/%.bpf.c bpf/%.h bpf/vmlinux.h | $$(@D)/
	$(if $(Q),$(info $(INDENT)BPF     $<))
	$(Q)$(CLANG) $(BPF_CFLAGS) -c -o $@ $<

$(BUILD)/bpf/%.bpf.o: $(BUILD)/bpf/%.tmp.bpf.o
	$(Q)$(BPFTOOL) gen object $@ $<

$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(if $(Q),$(info $(INDENT)GEN-SKEL $@))
	$(Q)$(BPFTOOL) gen skeleton $< name $*_bpf > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/daemon/probe/probe.o $(BUILD)/asan/daemon/probe/probe.o: $(BPF_SKELS)

vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux.h

$(BUILD)/obj/%.o: %.c | $$(@D)/
	$(if $(Q),$(info $(INDENT)CC      $<))
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/asan/%.o: %.c | $$(@D)/
	$(if $(Q),$(info $(INDENT)CC-ASAN $<))
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(ASAN_FLAGS) -c -o $@ $<

$(LIBCORE): $(CORE_OBJS) $(DAEMON_OBJS)
	$(if $(Q),$(info $(INDENT)AR      $@))
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBASAN): $(ASAN_OBJS)
	$(if $(Q),$(info $(INDENT)AR      $@))
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/walshipd: $(BUILD)/obj/daemon/main.o $(LIBCORE)
	$(if $(Q),$(info $(INDENT)LD      $@))
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(LIBCLI): $(CLI_OBJS)
	$(if $(Q),$(info $(INDENT)AR      $@))
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/walship: $(TOOL_OBJS) $(LIBCLI)
	$(if $(Q),$(info $(INDENT)LD      $@))
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(CLI_LDLIBS)

$(BUILD)/helpers/%: test/helpers/%.c $(LIBCORE) | $$(@D)/
	$(if $(Q),$(info $(INDENT)LD      $@))
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LIBCORE) $(LDFLAGS) $(LDLIBS)

# ctl_send speaks the control protocol through the CLI's own client code.
$(BUILD)/helpers/ctl_send: test/helpers/ctl_send.c $(BUILD)/obj/tools/client.o $(LIBCORE) | $$(@D)/
	$(if $(Q),$(info $(INDENT)LD      $@))
	$(Q)$(CC) $(CPPFLAGS) -Itools $(CFLAGS) -o $@ $< $(BUILD)/obj/tools/client.o $(LIBCORE) \
		$(LDFLAGS) $(LDLIBS)

$(BUILD)/pic/%.o: %.c | $$(@D)/
	$(if $(Q),$(info $(INDENT)CC-PIC  $<))
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -fPIC -fvisibility=hidden -c -o $@ $<

# The server's headers are system headers here: our warnings are for our code.
$(BUILD)/pgmod/%.o: pgmod/%.c | $$(@D)/
	$(if $(Q),$(info $(INDENT)CC-PG   $<))
	$(Q)$(CC) $(CPPFLAGS) -Itools -isystem $(PG_INCLUDE_SERVER) $(CFLAGS) -fPIC -c -o $@ $<

$(PGMOD_SO): $(BUILD)/pgmod/walship_archive.o $(PGMOD_PIC_OBJS)
	$(if $(Q),$(info $(INDENT)LD      $@))
	$(Q)$(CC) $(CFLAGS) -shared -o $@ $^ $(LDFLAGS)

# Unit tests: cmocka, built and run with ASan+UBSan.
$(BUILD)/unit/%: test/unit/%.c $(LIBASAN) | $$(@D)/
	$(if $(Q),$(info $(INDENT)LD-TEST $@))
	$(Q)$(CC) $(CPPFLAGS) -Itest/unit $(CFLAGS) $(ASAN_FLAGS) -o $@ $< $(LIBASAN) \
		$(LDFLAGS) -lcmocka $(LDLIBS)

unit: $(UNIT_BINS)

deps:
	$(Q)scripts/install-deps.sh

# The build runs one job per core; the tests run side by side (TEST_JOBS, test/run-tests.sh).
NPROC := $(shell nproc 2>/dev/null || echo 1)

check: deps
	$(Q)$(MAKE) --no-print-directory -j$(NPROC) all
	$(Q)UNIT_BUILD="$(MAKE) --no-print-directory -j$(NPROC) unit" test/run-tests.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh

# Long runs of the fault-injection tests: SOAK_ROUNDS rounds (default 5) of every
# t_3* scenario, each round a fresh network, cluster and daemons (t_39 with 1000 files).
SOAK_ROUNDS ?= 5
soak: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)for round in $$(seq 1 $(SOAK_ROUNDS)); do \
		echo "== soak round $$round of $(SOAK_ROUNDS)"; \
		T39_FILES=1000 TESTS='system/t_3' test/run-tests.sh || exit 1; \
	done

bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)test/bench/run-bench.sh

# libFuzzer targets (test/fuzz/, clang): build them and run each for FUZZ_SECONDS.
# `make check` runs them briefly (test/system/t_95_fuzz.sh).
FUZZ_SECONDS ?= 300
.PHONY: fuzz
fuzz: deps
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) test/fuzz/run.sh

format:
	$(Q)clang-format -i $$(git ls-files '*.c' '*.h' ':!bpf/vmlinux.h')

format-check:
	$(Q)clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h' ':!bpf/vmlinux.h')

# The man pages (man/), each into the section its name ends with.
MAN_PAGES := $(sort $(wildcard man/*.[1-8]))

install: $(BUILD)/walshipd $(BUILD)/walship
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(DOCDIR)
	install -m 0755 $(BUILD)/walshipd $(DESTDIR)$(SBINDIR)/walshipd
	install -m 0755 $(BUILD)/walship $(DESTDIR)$(BINDIR)/walship
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	$(foreach page,$(MAN_PAGES),install -D -m 0644 $(page) \
		$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(page)))/$(notdir $(page))$(newline))
	install -d $(DESTDIR)$(UNITDIR)
	install -m 0644 systemd/walshipd.service systemd/walshipd@.service $(DESTDIR)$(UNITDIR)/
ifneq ($(PGMOD),)
	install -d $(DESTDIR)$(PG_PKGLIBDIR)
	install -m 0755 $(PGMOD_SO) $(DESTDIR)$(PG_PKGLIBDIR)/walship_archive.so
endif

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/walshipd $(DESTDIR)$(BINDIR)/walship
ifneq ($(PGMOD),)
	rm -f $(DESTDIR)$(PG_PKGLIBDIR)/walship_archive.so
endif
	rm -rf $(DESTDIR)$(DOCDIR)
	rm -f $(foreach page,$(MAN_PAGES),\
		$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(page)))/$(notdir $(page)))
	rm -f $(DESTDIR)$(UNITDIR)/walshipd.service $(DESTDIR)$(UNITDIR)/walshipd@.service

# The key reference of docs/configuration.md and man/walship.conf.5 is generated from the
# config table by walshipd; a unit test and t_92_man fail when it is stale.
docs: $(BUILD)/walshipd
	$(Q)WALSHIPD=$(BUILD)/walshipd scripts/gen-docs.sh

# Debian packages (debian/): built in a scratch copy of the tree's files (tracked and
# new, not ignored) under $(BUILD)/deb/src, so that the working tree gets no build output;
# the .deb files land in $(BUILD)/deb/, then lintian checks them (errors fail the build).
# The copy builds with its own settings: this make's command-line variables (BUILD=) are
# not passed down to it.
DEB_DIR := $(BUILD)/deb
.PHONY: deb
deb: deps
	$(Q)rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src/walship
	$(Q)git ls-files -z --cached --others --exclude-standard | \
		xargs -0 sh -c 'for f; do [ -e "$$f" ] && printf "%s\0" "$$f"; done' sh | \
		tar -c --null -T - | tar -x -C $(DEB_DIR)/src/walship
	$(Q)cd $(DEB_DIR)/src/walship && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		dpkg-buildpackage -b -us -uc -j$(NPROC) >../build.log 2>&1 || \
		{ tail -n 40 ../build.log; exit 1; }
	$(Q)mv $(DEB_DIR)/src/*.deb $(DEB_DIR)/
	$(Q)lintian --fail-on error $(DEB_DIR)/*.deb
	$(Q)ls $(DEB_DIR)/*.deb

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

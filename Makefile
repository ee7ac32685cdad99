# pam_ticket: build, demo and tests. `make demo` and `make test` are the README's contract.

CARGO ?= cargo
PROBE_SO := target/panic-probe/libpam_ticket.so
# The probe's own target directory: a build with other features in target/debug would
# replace the module there, and the next `cargo build` would compile it all over again.
PROBE_TARGET := target/panic-probe-build

.PHONY: fuzz fuzz-smoke all build release portable selinux dist rpm deb deps deps-dist demo test test-dist probe clippy \
	fmt clean bench install install-files uninstall demo-ssh test-packaging

# Installation layout. PAMDIR is where this system's libpam loads modules from, whatever
# PREFIX says (scripts/pam-module-dir.sh; the .deb uses the same directory); the
# configuration path is compiled into the module (/etc/security).
PREFIX ?= /usr
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/pam_ticket
SYSCONFDIR ?= /etc
PAMDIR ?= $(shell scripts/pam-module-dir.sh)
# The default AuditLogFile's directory (root-only; labelled pam_ticket_log_t under SELinux).
AUDITDIR ?= /var/log/pam_ticket
INSTALL ?= install
CONF := $(DESTDIR)$(SYSCONFDIR)/security/pam_ticket.conf

# The released artifacts: linked against glibc 2.28 (RHEL 8) by cargo-zigbuild, so that
# one build loads on RHEL 8/9, Debian 10+ and Ubuntu 20.04+ (scripts/build-portable.sh).
PORTABLE_DIR := target/x86_64-unknown-linux-gnu/release
VERSION := $(shell scripts/version.sh)
# `make install` installs a native release build; PORTABLE=1 installs the portable one.
ifeq ($(PORTABLE),1)
ARTIFACTS := $(PORTABLE_DIR)
INSTALL_BUILD := portable
else
ARTIFACTS := target/release
INSTALL_BUILD := release
endif

all: release

deps:
	@scripts/ensure-deps.sh

deps-dist:
	@scripts/ensure-deps.sh dist

build: deps
	$(CARGO) build

release: deps
	$(CARGO) build --release

portable: deps
	scripts/build-portable.sh

# The SELinux policy module, target/selinux/pam_ticket.pp (checkmodule, semodule_package).
selinux: deps-dist
	scripts/build-selinux.sh

# dist/pam_ticket-<version>-1.x86_64.rpm and dist/pam_ticket-selinux-<version>-1.noarch.rpm.
rpm: portable selinux
	scripts/build-rpm.sh

# dist/libpam-ticket_<version>-1_amd64.deb.
deb: portable
	scripts/build-deb.sh

# Every release artifact in dist/, from one portable build; their paths are printed last.
dist: portable selinux
	rm -rf dist
	scripts/build-rpm.sh
	scripts/build-deb.sh
	@echo "stripped portable module: $$(stat -c %s $(PORTABLE_DIR)/libpam_ticket.so) bytes ($(PORTABLE_DIR)/libpam_ticket.so; limit 4000000)"
	@echo "dist:"
	@ls -1 dist/pam_ticket-$(VERSION)-1.x86_64.rpm dist/pam_ticket-selinux-$(VERSION)-1.noarch.rpm \
		dist/libpam-ticket_$(VERSION)-1_*.deb

# A module built with the panic-probe feature, kept apart: the test suite uses it to prove
# that a panic never unwinds into the PAM application. The released module has no probe.
probe: deps
	$(CARGO) build --lib --features panic-probe --target-dir $(PROBE_TARGET)
	mkdir -p $(dir $(PROBE_SO))
	cp $(PROBE_TARGET)/debug/libpam_ticket.so $(PROBE_SO)

demo: deps
	$(CARGO) build
	$(CARGO) run --quiet --example demo -- $(SYSTEM)

# `cargo build` refreshes target/debug/libpam_ticket.so, which the tests load through
# libpam; `cargo test` alone would not.
test: deps probe
	$(CARGO) build
	$(CARGO) test --workspace --no-fail-fast -- --test-threads=4
	tests/pysnc_check.sh
	tests/packaging.sh

# The release artifacts: `make dist`, then tests/dist.sh (glibc baseline, size, the shared
# case table through libpam against the portable module, RPM contents and a scratch-root
# install, the SELinux module linked into a reference policy, the .deb). `.ci/run` runs it.
test-dist: dist probe
	@scripts/ensure-deps.sh test-dist
	$(CARGO) build
	tests/dist.sh

# Man pages, `make install DESTDIR=...`, and (as root) the .deb through dpkg -i and a PAM
# login through the installed module. Also run by `make test`.
test-packaging: deps
	tests/packaging.sh

# Builds as needed, then installs. Never overwrites an existing configuration.
install: $(INSTALL_BUILD)
	@$(MAKE) --no-print-directory install-files

# The files alone, from $(ARTIFACTS); also lays out the .deb (scripts/build-deb.sh).
install-files:
	$(INSTALL) -d $(DESTDIR)$(PAMDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(SYSCONFDIR)/security
	$(INSTALL) -d -m 0700 $(DESTDIR)$(AUDITDIR)
	$(INSTALL) -m 0644 $(ARTIFACTS)/libpam_ticket.so $(DESTDIR)$(PAMDIR)/pam_ticket.so
	$(INSTALL) -m 0755 $(ARTIFACTS)/pam-ticket $(DESTDIR)$(SBINDIR)/pam-ticket
	$(INSTALL) -m 0644 man/pam_ticket.8 $(DESTDIR)$(MANDIR)/man8/pam_ticket.8
	$(INSTALL) -m 0644 man/pam_ticket.conf.5 $(DESTDIR)$(MANDIR)/man5/pam_ticket.conf.5
	$(INSTALL) -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	$(INSTALL) -m 0644 conf/pam_ticket.conf conf/pam_ticket.remedy.conf conf/pam_ticket.portal.conf \
		$(DESTDIR)$(DOCDIR)/examples/
	$(INSTALL) -m 0644 pam.d/sshd $(DESTDIR)$(DOCDIR)/examples/pam.d-sshd
	$(INSTALL) -m 0644 pam.d/sshd.debian $(DESTDIR)$(DOCDIR)/examples/pam.d-sshd.debian
	$(INSTALL) -m 0644 pam.d/sshd.rhel $(DESTDIR)$(DOCDIR)/examples/pam.d-sshd.rhel
	@if [ -e $(CONF) ]; then \
		echo "keeping the existing $(CONF)"; \
	else \
		echo "$(INSTALL) -m 0600 conf/pam_ticket.conf $(CONF)"; \
		$(INSTALL) -m 0600 conf/pam_ticket.conf $(CONF); \
	fi

# Removes what install put in place; the configuration only if nobody changed it. Then
# lists what it leaves: the admin's own files and pam.d lines that still load the module.
uninstall:
	rm -f $(DESTDIR)$(PAMDIR)/pam_ticket.so $(DESTDIR)$(SBINDIR)/pam-ticket \
		$(DESTDIR)$(MANDIR)/man8/pam_ticket.8 $(DESTDIR)$(MANDIR)/man5/pam_ticket.conf.5
	rm -rf $(DESTDIR)$(DOCDIR)
	@rmdir $(DESTDIR)$(AUDITDIR) 2>/dev/null || true
	@if [ -e $(CONF) ] && cmp -s conf/pam_ticket.conf $(CONF); then \
		echo "rm -f $(CONF)"; rm -f $(CONF); \
	elif [ -e $(CONF) ]; then \
		echo "keeping $(CONF): it was changed after installation"; \
	fi
	@scripts/leftovers.sh $(SYSCONFDIR)/security/pam_ticket.conf "$(DESTDIR)"

# Root only: the simulator, a private sshd with its own PAM service, and real ssh sessions
# asked for a ticket, refused for a closed one, let in with a valid one.
demo-ssh: deps
	$(CARGO) build
	$(CARGO) run --quiet --example demo_ssh
clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Coverage-guided fuzzing of every parser of untrusted text (cargo-fuzz with libFuzzer, on
# the stable toolchain; cargo-fuzz is installed with cargo when missing). `make fuzz` runs
# each target for FUZZ_SECONDS; `make fuzz-smoke`, which CI runs, a few seconds each.
# See docs/fuzzing.md.
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 5

fuzz: deps
	CARGO=$(CARGO) scripts/fuzz.sh $(FUZZ_SECONDS)

fuzz-smoke: deps
	CARGO=$(CARGO) scripts/fuzz.sh $(FUZZ_SMOKE_SECONDS) smoke

fmt:
	$(CARGO) fmt --all
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml --all

clean:
	$(CARGO) clean

# Module vs. curl against the same simulator, in one run (release build of the module).
bench: deps
	$(CARGO) build --release
	PAM_TICKET_SO=$(CURDIR)/target/release/libpam_ticket.so $(CARGO) run --release --quiet --example bench

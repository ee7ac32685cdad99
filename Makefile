# pam_ticket: build, demo and tests. `make demo` and `make test` are the README's contract.

CARGO ?= cargo
PROBE_SO := target/panic-probe/libpam_ticket.so
# The probe's own target directory: a build with other features in target/debug would
# replace the module there, and the next `cargo build` would compile it all over again.
PROBE_TARGET := target/panic-probe-build

.PHONY: all build release deps demo test probe clippy fmt clean bench \
	install uninstall deb demo-ssh test-packaging

# Installation layout. PAMDIR is where this system's libpam loads modules from, whatever
# PREFIX says; the configuration path is compiled into the module (/etc/security).
PREFIX ?= /usr
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/pam_ticket
SYSCONFDIR ?= /etc
PAMDIR ?= $(shell scripts/pam-module-dir.sh)
INSTALL ?= install
RELEASE_SO := target/release/libpam_ticket.so
RELEASE_BIN := target/release/pam-ticket
CONF := $(DESTDIR)$(SYSCONFDIR)/security/pam_ticket.conf

all: release

deps:
	@scripts/ensure-deps.sh

build: deps
	$(CARGO) build

release: deps
	$(CARGO) build --release

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

# Man pages, `make install DESTDIR=...`, and (as root) the .deb through dpkg -i and a PAM
# login through the installed module. Also run by `make test`.
test-packaging: deps
	tests/packaging.sh

# Builds as needed, then installs. Never overwrites an existing configuration.
install: release
	$(INSTALL) -d $(DESTDIR)$(PAMDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(SYSCONFDIR)/security
	$(INSTALL) -m 0644 $(RELEASE_SO) $(DESTDIR)$(PAMDIR)/pam_ticket.so
	$(INSTALL) -m 0755 $(RELEASE_BIN) $(DESTDIR)$(SBINDIR)/pam-ticket
	$(INSTALL) -m 0644 man/pam_ticket.8 $(DESTDIR)$(MANDIR)/man8/pam_ticket.8
	$(INSTALL) -m 0644 man/pam_ticket.conf.5 $(DESTDIR)$(MANDIR)/man5/pam_ticket.conf.5
	$(INSTALL) -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	$(INSTALL) -m 0644 conf/pam_ticket.conf $(DESTDIR)$(DOCDIR)/examples/pam_ticket.conf
	$(INSTALL) -m 0644 pam.d/sshd $(DESTDIR)$(DOCDIR)/examples/pam.d-sshd
	@if [ -e $(CONF) ]; then \
		echo "keeping the existing $(CONF)"; \
	else \
		echo "$(INSTALL) -m 0600 conf/pam_ticket.conf $(CONF)"; \
		$(INSTALL) -m 0600 conf/pam_ticket.conf $(CONF); \
	fi

# Removes what install put in place; the configuration only if nobody changed it.
uninstall:
	rm -f $(DESTDIR)$(PAMDIR)/pam_ticket.so $(DESTDIR)$(SBINDIR)/pam-ticket \
		$(DESTDIR)$(MANDIR)/man8/pam_ticket.8 $(DESTDIR)$(MANDIR)/man5/pam_ticket.conf.5
	rm -rf $(DESTDIR)$(DOCDIR)
	@if [ -e $(CONF) ] && cmp -s conf/pam_ticket.conf $(CONF); then \
		echo "rm -f $(CONF)"; rm -f $(CONF); \
	elif [ -e $(CONF) ]; then \
		echo "keeping $(CONF): it was changed after installation"; \
	fi

# A Debian package with the same files (the configuration as a conffile), built with
# cargo-deb, which is installed with cargo when missing. Prints the .deb's path last.
deb: deps
	@command -v cargo-deb >/dev/null 2>&1 || $(CARGO) install --locked cargo-deb
	$(CARGO) deb

# Root only: the simulator, a private sshd with its own PAM service, and real ssh sessions
# asked for a ticket, refused for a closed one, let in with a valid one.
demo-ssh: deps
	$(CARGO) build
	$(CARGO) run --quiet --example demo_ssh
clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean

# Module vs. curl against the same simulator, in one run (release build of the module).
bench: deps
	$(CARGO) build --release
	PAM_TICKET_SO=$(CURDIR)/target/release/libpam_ticket.so $(CARGO) run --release --quiet --example bench

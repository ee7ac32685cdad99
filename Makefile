# pam_ticket: build, demo and tests. `make demo` and `make test` are the README's contract.

CARGO ?= cargo
DEBUG_SO := target/debug/libpam_ticket.so
PROBE_SO := target/panic-probe/libpam_ticket.so

.PHONY: all build release deps demo test probe clippy fmt clean bench

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
	$(CARGO) build --features panic-probe
	mkdir -p $(dir $(PROBE_SO))
	cp $(DEBUG_SO) $(PROBE_SO)

demo: deps
	$(CARGO) build
	$(CARGO) run --quiet --example demo -- $(SYSTEM)

# `cargo build` refreshes target/debug/libpam_ticket.so, which the tests load through
# libpam; `cargo test` alone would not.
test: deps probe
	$(CARGO) build
	$(CARGO) test --no-fail-fast -- --test-threads=4
	tests/pysnc_check.sh

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean

# Module vs. curl against the same simulator, in one run (release build of the module).
bench: deps
	$(CARGO) build --release
	PAM_TICKET_SO=$(CURDIR)/target/release/libpam_ticket.so $(CARGO) run --release --quiet --example bench

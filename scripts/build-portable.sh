#!/usr/bin/env bash
# Builds the released artifacts, target/x86_64-unknown-linux-gnu/release/libpam_ticket.so and
# pam-ticket, against glibc 2.28 (RHEL 8), so that one build loads on RHEL 8 and 9, Debian 10
# and later, and Ubuntu 20.04 and later. `make dist`, `make rpm` and `make deb` use them;
# day-to-day builds and tests stay native (`cargo build`).
#
# cargo-zigbuild links with zig against glibc 2.28's symbol versions. What it needs and
# lacks, this script fetches once: cargo-zigbuild (`cargo install --locked`), and zig from
# the `ziglang` package on PyPI, in a virtualenv under target/.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
RUST_TARGET=x86_64-unknown-linux-gnu
GLIBC_BASELINE=2.28
# Known-good versions; any cargo-zigbuild already installed is used as it is.
CARGO_ZIGBUILD_VERSION=0.24.1
ZIGLANG_VERSION=0.15.2
venv=target/zig-venv
# A directory holding only a libpam.so symlink: zig must find libpam to link the module,
# but must not see the rest of the host's library directory (its libc is newer than 2.28).
link_dir=$PWD/target/portable-link

step() { echo "build-portable: $*"; }

if ! "$CARGO" zigbuild --help >/dev/null 2>&1; then
    step "installing cargo-zigbuild $CARGO_ZIGBUILD_VERSION (cargo install --locked)"
    "$CARGO" install --locked --no-default-features --version "$CARGO_ZIGBUILD_VERSION" cargo-zigbuild
fi

if ! "$venv/bin/python3" -m ziglang version >/dev/null 2>&1; then
    step "installing zig (PyPI ziglang==$ZIGLANG_VERSION) into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "ziglang==$ZIGLANG_VERSION"
fi

libpam=""
libdir=$(pkg-config --variable=libdir pam 2>/dev/null || true)
for candidate in "$libdir/libpam.so" /usr/lib/x86_64-linux-gnu/libpam.so.0 /usr/lib64/libpam.so.0 /lib/x86_64-linux-gnu/libpam.so.0; do
    if [ -e "$candidate" ]; then
        libpam=$(realpath "$candidate")
        break
    fi
done
[ -n "$libpam" ] || { echo "build-portable: libpam not found (install libpam0g-dev or pam-devel)" >&2; exit 1; }
mkdir -p "$link_dir"
ln -sfn "$libpam" "$link_dir/libpam.so"

export CARGO_ZIGBUILD_PYTHON_PATH=$PWD/$venv/bin/python3
export CARGO_ZIGBUILD_CACHE_DIR=$PWD/target/zigbuild-cache
export ZIG_GLOBAL_CACHE_DIR=$PWD/target/zig-cache
# Only for this target and only in this script: the native build never sees the link dir.
# RUSTFLAGS, when the caller set it, would hide the target-specific variable, so the
# directory is added there instead.
if [ -n "${RUSTFLAGS:-}" ]; then
    export RUSTFLAGS="$RUSTFLAGS -L native=$link_dir"
else
    export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="${CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS:+$CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS }-L native=$link_dir"
fi
step "cargo zigbuild --release --target $RUST_TARGET.$GLIBC_BASELINE"
"$CARGO" zigbuild --release --locked --target "$RUST_TARGET.$GLIBC_BASELINE"

#!/usr/bin/env bash
# Builds dist/pam_ticket-<version>-1.x86_64.rpm and dist/pam_ticket-selinux-<version>-1.noarch.rpm
# with rpmbuild (Debian: rpm) from packaging/rpm/pam_ticket.spec, the portable artifacts
# (scripts/build-portable.sh) and the compiled policy module (scripts/build-selinux.sh),
# which `make rpm` builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(scripts/version.sh)
artifacts=$PWD/target/x86_64-unknown-linux-gnu/release
topdir=$PWD/target/rpmbuild
for file in "$artifacts/libpam_ticket.so" "$artifacts/pam-ticket" target/selinux/pam_ticket.pp; do
    [ -f "$file" ] || { echo "build-rpm: $file is missing (make portable selinux)" >&2; exit 1; }
done
rm -rf "$topdir"
mkdir -p dist
rpmbuild -bb --quiet --target x86_64 \
    --define "_topdir $topdir" \
    --define "pkgversion $version" \
    --define "srcroot $PWD" \
    --define "artifacts $artifacts" \
    --define "selinuxdir $PWD/target/selinux" \
    packaging/rpm/pam_ticket.spec
cp "$topdir/RPMS/x86_64/pam_ticket-$version-1.x86_64.rpm" \
    "$topdir/RPMS/noarch/pam_ticket-selinux-$version-1.noarch.rpm" dist/
echo "build-rpm: dist/pam_ticket-$version-1.x86_64.rpm dist/pam_ticket-selinux-$version-1.noarch.rpm"

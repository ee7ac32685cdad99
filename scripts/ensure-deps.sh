#!/usr/bin/env bash
# Makes sure the Debian packages the build, the demo and the tests need are installed.
# As root it installs the missing ones; otherwise it prints the exact apt-get line and fails.
#   ensure-deps.sh            build, demo, `make test` (incl. the portable build for the .deb)
#   ensure-deps.sh dist       also `make dist`: rpmbuild, checkmodule, semodule_package
#   ensure-deps.sh test-dist  also tests/dist.sh: a reference SELinux policy and its tools
set -euo pipefail

packages=(libpam0g-dev pkg-config binutils pamtester libpam-wrapper openssh-server openssh-client expect man-db groff-base python3-venv dpkg-dev)
case "${1:-}" in
    "") ;;
    dist) packages+=(rpm checkpolicy semodule-utils) ;;
    test-dist) packages+=(rpm checkpolicy semodule-utils file selinux-policy-default setools policycoreutils selinux-utils) ;;
    *) echo "usage: $0 [dist|test-dist]" >&2; exit 2 ;;
esac
missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "pam_ticket needs these Debian packages; run as root:" >&2
    echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "Installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q "${missing[@]}"

#!/bin/sh
# Prints the directory this system's libpam loads modules from, with symlinks resolved so
# that `make install` and the .deb (scripts/build-deb.sh: /usr/lib/<triplet>/security)
# name the same directory and never own one file under two names through a /lib -> usr/lib
# symlink. In order: pkg-config's libdir for pam (libpam0g-dev, pam-devel) plus /security;
# else the Debian multiarch directory /usr/lib/<triplet>/security; else /usr/lib64/security
# (RHEL); else /usr/lib/security.
canonical() {
    if [ -d "$1" ]; then (cd "$1" && pwd -P); else echo "$1"; fi
}
libdir=$(pkg-config --variable=libdir pam 2>/dev/null)
if [ -n "$libdir" ]; then
    echo "$(canonical "$libdir")/security"
    exit 0
fi
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null)
if [ -n "$multiarch" ] && [ -d "/usr/lib/$multiarch/security" ]; then
    canonical "/usr/lib/$multiarch/security"
elif [ -d /usr/lib64/security ]; then
    canonical /usr/lib64/security
else
    echo /usr/lib/security
fi

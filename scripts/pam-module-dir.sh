#!/bin/sh
# Prints the directory this system's libpam loads modules from: pkg-config's libdir for
# pam (libpam0g-dev, pam-devel) plus /security; else the Debian multiarch directory; else
# /usr/lib64/security (RHEL); else /usr/lib/security.
libdir=$(pkg-config --variable=libdir pam 2>/dev/null)
if [ -n "$libdir" ]; then
    echo "$libdir/security"
    exit 0
fi
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null)
if [ -n "$multiarch" ] && [ -d "/usr/lib/$multiarch/security" ]; then
    echo "/usr/lib/$multiarch/security"
elif [ -d /usr/lib64/security ]; then
    echo /usr/lib64/security
else
    echo /usr/lib/security
fi

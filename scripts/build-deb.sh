#!/usr/bin/env bash
# Builds dist/libpam-ticket_<version>-1_<arch>.deb from the portable artifacts
# (scripts/build-portable.sh, which `make deb` runs first) with dpkg-deb.
#
# The files are laid out by `make install` itself (DESTDIR=a staging tree), so the package
# and a from-source install put every file in the same place. The module directory comes
# from the target's multiarch triplet (/usr/lib/<triplet>/security), the same directory
# `make install` resolves on a Debian system; the Debian architecture comes from the same
# triplet.
set -euo pipefail
cd "$(dirname "$0")/.."

RUST_TARGET=x86_64-unknown-linux-gnu
# x86_64-unknown-linux-gnu -> x86_64-linux-gnu (Rust names a vendor, GNU triplets do not).
gnu_triplet=${RUST_TARGET/-unknown-/-}
multiarch=$(dpkg-architecture -t "$gnu_triplet" -qDEB_HOST_MULTIARCH 2>/dev/null)
deb_arch=$(dpkg-architecture -t "$gnu_triplet" -qDEB_HOST_ARCH 2>/dev/null)
version=$(scripts/version.sh)
package=libpam-ticket
artifacts=target/$RUST_TARGET/release
stage=target/deb/stage
deb=dist/${package}_${version}-1_${deb_arch}.deb
pamdir=/usr/lib/$multiarch/security
docdir=/usr/share/doc/$package

rm -rf "$stage"
mkdir -p "$stage/DEBIAN" dist
make --no-print-directory install-files DESTDIR="$PWD/$stage" PORTABLE=1 PAMDIR="$pamdir" \
    DOCDIR="$docdir" >/dev/null
# Debian policy: compressed man pages, a copyright file.
gzip -9n "$stage/usr/share/man/man8/pam_ticket.8" "$stage/usr/share/man/man5/pam_ticket.conf.5"
cat >"$stage$docdir/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: pam_ticket
License: MIT

Files: *
Copyright: pam_ticket authors
License: MIT
EOF

# What the module and the tool need. libpam0g's minimum comes from dpkg-shlibdeps. libc6's
# does not: Debian's symbols file dates libpthread.so.0 and libdl.so.2 (which the
# glibc-2.28 link names) to glibc 2.34, where they became empty stubs; the true minimum is
# the newest GLIBC_ symbol version the two artifacts require (tests/dist.sh checks it
# is 2.28 at most).
glibc=$(objdump -T "$artifacts/libpam_ticket.so" "$artifacts/pam-ticket" \
    | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
shlibs_dir=target/deb/shlibs
rm -rf "$shlibs_dir"
mkdir -p "$shlibs_dir/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$package" "$package" >"$shlibs_dir/debian/control"
libpam_depends=$(cd "$shlibs_dir" && dpkg-shlibdeps -O "$OLDPWD/$stage$pamdir/pam_ticket.so" 2>/dev/null \
    | sed -n 's/^shlibs:Depends=//p' | tr ',' '\n' | sed -n 's/^ *\(libpam0g.*\)/\1/p')
[ -n "$glibc" ] && [ -n "$libpam_depends" ] || { echo "build-deb: cannot work out the dependencies" >&2; exit 1; }
depends="libc6 (>= $glibc), $libpam_depends"

installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<EOF
Package: $package
Version: $version-1
Architecture: $deb_arch
Maintainer: pam_ticket maintainers <root@localhost>
Installed-Size: $installed_size
Depends: $depends, libpam-runtime
Section: admin
Priority: optional
Description: PAM module that lets SSH users in only with a valid IT ticket
 pam_ticket.so asks the person logging in (typically over SSH, as a second step after
 the key) for an IT ticket ID and lets them in only if ServiceNow, BMC Remedy or a
 CyberArk PVWA portal says the ticket exists and is fit for the job. pam-ticket checks
 a configuration and tries a ticket without PAM.
EOF
echo /etc/security/pam_ticket.conf >"$stage/DEBIAN/conffiles"

# postinst: on a system whose /usr is not merged, libpam looks in /lib/<triplet>/security
# only; say so rather than leave a pam.d line that cannot find the module.
cat >"$stage/DEBIAN/postinst" <<EOF
#!/bin/sh
set -e
if [ "\$1" = configure ] && [ -d /lib/$multiarch/security ] \\
    && ! [ /lib/$multiarch/security -ef $pamdir ]; then
    echo "libpam-ticket: /lib is not merged into /usr here, so libpam may not look in $pamdir;" >&2
    echo "  name the module by its full path in pam.d: auth required $pamdir/pam_ticket.so" >&2
fi
exit 0
EOF

# postrm: between "remove" (the configuration still exists) and "purge" (dpkg has deleted
# it by then) keep only the lines naming the admin's files, then list those files on purge.
{
    cat <<'EOF'
#!/bin/sh
set -e
state=/var/lib/libpam-ticket
EOF
    sed -n '/^pam_ticket_leftovers() {/,/^}/p' scripts/leftovers.sh
    cat <<'EOF'
case "$1" in
    remove)
        if [ -f /etc/security/pam_ticket.conf ]; then
            mkdir -p "$state"
            chmod 0700 "$state"
            grep -E '^[[:space:]]*(ConnectionAccountFile|PortalAccountFile|CAFile|AuditLogFile|CacheDirectory)[[:space:]]*=' \
                /etc/security/pam_ticket.conf >"$state/pam_ticket.conf" || true
        fi
        ;;
    purge)
        pam_ticket_leftovers "$state/pam_ticket.conf" ""
        rm -rf "$state"
        ;;
esac
exit 0
EOF
} >"$stage/DEBIAN/postrm"
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/postrm"

(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
    >"$stage/DEBIAN/md5sums"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "build-deb: $deb (module in $pamdir)"

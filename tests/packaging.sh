#!/usr/bin/env bash
# Packaging checks, run by `make test`:
#  1. the man pages format without a single warning (groff -ww, man --warnings);
#     that they document every configuration key is checked by `cargo test`;
#  2. `make install DESTDIR=...` lays out every file, keeps an existing configuration, and
#     `make uninstall` removes them again and lists the admin's files it leaves behind;
#  3. as root: `make deb` builds the package, `dpkg -i` installs it (configuration as a
#     conffile) into the very module directory `make install` uses, a PAM login through
#     the installed module works (pamtester), and the package is purged again, listing the
#     admin's files it leaves behind. Skipped, with the reason, when not root or when this
#     machine already has a pam_ticket configuration of its own.
# `make install` here installs the portable build (PORTABLE=1), the one `make deb` packages,
# so that the test builds one release, not two.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "packaging: FAIL: $*" >&2; exit 1; }
step() { echo "packaging: $*"; }

work=$(mktemp -d /tmp/pam_ticket-packaging.XXXXXX)
service="pam_ticket-packaging-$$"
cleanup() {
    rm -rf "$work"
    rm -f "/etc/pam.d/$service"
}
trap cleanup EXIT

# --- 1. man pages ------------------------------------------------------------------------
for page in man/pam_ticket.8 man/pam_ticket.conf.5; do
    warnings=$(groff -man -ww -z "$page" 2>&1) || fail "groff failed on $page: $warnings"
    [ -z "$warnings" ] || fail "groff warns about $page:
$warnings"
    warnings=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null) || fail "man -l failed on $page"
    [ -z "$warnings" ] || fail "man warns about $page:
$warnings"
done
# That pam_ticket.conf(5) documents every key of the key table (src/config/keys.rs), no
# other, and each with the table's default, is a unit test of the crate:
# config::keys::tests::the_man_page_*.
step "man pages: no warnings"

# --- 2. make install / uninstall ---------------------------------------------------------
pamdir=$(scripts/pam-module-dir.sh)
dest="$work/root"
make --no-print-directory install DESTDIR="$dest" PORTABLE=1 >"$work/install.log" 2>&1 \
    || { cat "$work/install.log"; fail "make install"; }
for file in "$pamdir/pam_ticket.so" /usr/sbin/pam-ticket /usr/share/man/man8/pam_ticket.8 \
    /usr/share/man/man5/pam_ticket.conf.5 /etc/security/pam_ticket.conf \
    /usr/share/doc/pam_ticket/examples/pam.d-sshd; do
    [ -f "$dest$file" ] || fail "make install did not create $file"
done
[ "$(stat -c %a "$dest/etc/security/pam_ticket.conf")" = 600 ] || fail "configuration is not 0600"
[ -x "$dest/usr/sbin/pam-ticket" ] || fail "pam-ticket is not executable"
nm -D --defined-only "$dest$pamdir/pam_ticket.so" | grep -q pam_sm_authenticate \
    || fail "the installed module has no pam_sm_authenticate"

# An admin's configuration survives both a second install and uninstall, and uninstall
# names what the admin made: the files the configuration names, the audit log, and a
# pam.d file that still loads the module.
[ -d "$dest/var/log/pam_ticket" ] && [ "$(stat -c %a "$dest/var/log/pam_ticket")" = 700 ] \
    || fail "make install did not create /var/log/pam_ticket (0700)"
echo '# edited by the admin' >>"$dest/etc/security/pam_ticket.conf"
make --no-print-directory install DESTDIR="$dest" PORTABLE=1 >"$work/install2.log" 2>&1 || fail "second make install"
grep -q 'edited by the admin' "$dest/etc/security/pam_ticket.conf" || fail "install overwrote the configuration"
sed -i 's|^AuditLogFile=.*|AuditLogFile="/var/log/pam_ticket/audit.jsonl"|; s|^ConnectionAccountFile=.*|ConnectionAccountFile="/etc/security/admin.account"|' \
    "$dest/etc/security/pam_ticket.conf"
echo 'CAFile="/etc/pki/portal-ca.pem"' >>"$dest/etc/security/pam_ticket.conf"
mkdir -p "$dest/etc/pki" "$dest/etc/pam.d"
echo '{}' >"$dest/var/log/pam_ticket/audit.jsonl"
echo 'Username="svc"' >"$dest/etc/security/admin.account"
echo '-----BEGIN CERTIFICATE-----' >"$dest/etc/pki/portal-ca.pem"
mkdir -p "$dest/usr/local/share/ca-certificates"
printf '# CN=Portal CA (added by pam-ticket ca add, 2026-01-01 00:00:00 UTC)\n' >"$dest/usr/local/share/ca-certificates/portal.crt"
printf '# the distribution'"'"'s own, not ours\n' >"$dest/usr/local/share/ca-certificates/other.crt"
printf 'auth required pam_ticket.so\n@include common-account\n' >"$dest/etc/pam.d/sshd"
printf '# auth required pam_ticket.so (commented out)\n' >"$dest/etc/pam.d/login"
make --no-print-directory uninstall DESTDIR="$dest" >"$work/uninstall.log" 2>&1 || fail "make uninstall"
[ ! -e "$dest$pamdir/pam_ticket.so" ] && [ ! -e "$dest/usr/sbin/pam-ticket" ] \
    || fail "make uninstall left files"
[ -e "$dest/etc/security/pam_ticket.conf" ] || fail "uninstall removed a changed configuration"
for line in "keeping .*/etc/security/pam_ticket.conf: it was changed" \
    "/etc/security/admin.account  (ConnectionAccountFile)" "/etc/pki/portal-ca.pem  (CAFile)" \
    "/var/log/pam_ticket/audit.jsonl  (AuditLogFile)" "/etc/pam.d/sshd  (still loads pam_ticket.so" \
    "/usr/local/share/ca-certificates/portal.crt  (CA added with pam-ticket ca add"; do
    grep -q -- "$line" "$work/uninstall.log" || { cat "$work/uninstall.log"; fail "make uninstall does not say: $line"; }
done
grep -q '/etc/pam.d/login' "$work/uninstall.log" && fail "make uninstall named a pam.d file whose pam_ticket line is a comment"
grep -q 'other.crt' "$work/uninstall.log" && fail "make uninstall named a CA file pam-ticket did not write"
rm -rf "$dest"
# With nothing of the admin's left, it says so.
make --no-print-directory install DESTDIR="$dest" PORTABLE=1 >/dev/null 2>&1 || fail "third make install"
make --no-print-directory uninstall DESTDIR="$dest" >"$work/uninstall2.log" 2>&1 || fail "second make uninstall"
grep -q 'no files of yours left behind' "$work/uninstall2.log" || { cat "$work/uninstall2.log"; fail "clean uninstall"; }
[ ! -e "$dest/etc/security/pam_ticket.conf" ] && [ ! -e "$dest/var/log/pam_ticket" ] || fail "clean uninstall left files"
# With PREFIX, the module still goes where libpam looks.
make --no-print-directory install DESTDIR="$dest-local" PREFIX=/usr/local PORTABLE=1 >/dev/null 2>&1 || fail "install with PREFIX"
[ -f "$dest-local$pamdir/pam_ticket.so" ] && [ -f "$dest-local/usr/local/sbin/pam-ticket" ] \
    || fail "install with PREFIX=/usr/local"
rm -rf "$dest-local"
step "make install/uninstall: layout under $pamdir, /usr/sbin, man5, man8; configuration kept"

# --- 3. the Debian package ---------------------------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
    step "SKIPPED dpkg -i: not root"
    exit 0
fi
if [ -e /etc/security/pam_ticket.conf ] && ! dpkg -S /etc/security/pam_ticket.conf >/dev/null 2>&1; then
    step "SKIPPED dpkg -i: this machine has its own /etc/security/pam_ticket.conf"
    exit 0
fi
started=$(date +%s)
make --no-print-directory deb >"$work/deb.log" 2>&1 || { tail -30 "$work/deb.log"; fail "make deb"; }
deb=$(ls -t dist/libpam-ticket_*.deb | head -1)
[ -f "$deb" ] || fail "make deb made no package"
dpkg-deb --info "$deb" conffiles | grep -qx /etc/security/pam_ticket.conf || fail "the configuration is not a conffile"
contents=$(dpkg-deb --contents "$deb")
for file in security/pam_ticket.so usr/sbin/pam-ticket man8/pam_ticket.8 man5/pam_ticket.conf.5 etc/security/pam_ticket.conf; do
    grep -q "$file" <<<"$contents" || fail "the package lacks $file"
done

purge() { dpkg --purge libpam-ticket >/dev/null 2>&1 || true; }
trap 'purge; cleanup' EXIT
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i"; }
installed=$(dpkg -L libpam-ticket | grep '/pam_ticket.so$')
[ -f "$installed" ] || fail "dpkg -i did not install the module"
# The package and `make install` name the same file: never one file under two names
# through a /lib -> usr/lib symlink, which would leave dpkg and make fighting over it.
[ "$installed" = "$pamdir/pam_ticket.so" ] \
    || fail "the .deb installed $installed, make install uses $pamdir/pam_ticket.so"
/usr/sbin/pam-ticket --help >/dev/null || fail "the installed pam-ticket does not run"
man -w pam_ticket >/dev/null 2>&1 || fail "man pam_ticket finds no page"

# A login through the installed module, named bare as an admin would name it, with a
# configuration that needs no network: format checks only.
cat >"$work/pam_ticket.conf" <<EOF
TicketingSystem="ServiceNow"
SystemURL="https://ticketing.invalid"
ValidateTicketNumber="No"
MaxAttempts="1"
AuditLogFile="$work/audit.log"
EOF
printf 'auth required pam_ticket.so config=%s\naccount required pam_permit.so\n' \
    "$work/pam_ticket.conf" >"/etc/pam.d/$service"
echo INC0010001 | pamtester "$service" root authenticate >"$work/pam-ok.log" 2>&1 \
    || { cat "$work/pam-ok.log"; fail "a valid ticket was refused by the installed module"; }
if echo 'INC1^NQ' | pamtester "$service" root authenticate >"$work/pam-bad.log" 2>&1; then
    fail "a malformed ticket was let in by the installed module"
fi
grep -q "may only contain letters" "$work/pam-bad.log" || { cat "$work/pam-bad.log"; fail "no reason shown"; }
grep -q '"decision":"allow"' "$work/audit.log" && grep -q '"decision":"deny"' "$work/audit.log" \
    || fail "the installed module wrote no audit records"
# Purging names the admin's files the package leaves: those the configuration names (read
# at removal, since dpkg deletes the conffile before the purge step) and the pam.d file
# that still loads the module.
echo 'Username="svc"' >"$work/admin.account"
chmod 600 "$work/admin.account"
echo "ConnectionAccountFile=\"$work/admin.account\"" >>/etc/security/pam_ticket.conf
dpkg --purge libpam-ticket >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "dpkg --purge"; }
for line in "$work/admin.account  (ConnectionAccountFile)" "/etc/pam.d/$service  (still loads pam_ticket.so"; do
    grep -qF -- "$line" "$work/purge.log" || { cat "$work/purge.log"; fail "dpkg --purge does not say: $line"; }
done
[ ! -e "$installed" ] || fail "dpkg --purge left the module"
[ ! -e /etc/security/pam_ticket.conf ] || fail "dpkg --purge left the configuration"
[ ! -e /var/lib/libpam-ticket ] || fail "dpkg --purge left its state directory"
step "deb: $(basename "$deb") installs ($installed), logs in through PAM, purges ($(($(date +%s) - started)) s)"

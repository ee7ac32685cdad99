#!/bin/sh
# Prints the files an admin made for pam_ticket that an uninstall leaves in place: the
# files the configuration names (account files, CAFile, audit log, token cache), CA
# certificates `pam-ticket ca add` placed in the system trust, and pam.d files that still
# load pam_ticket.so (after the module is gone, every login through them fails).
#
#   leftovers.sh CONFIG [ROOT]
#
# CONFIG is read for the keys below only (it may be a copy holding just those lines, as
# the .deb keeps between remove and purge). ROOT prefixes every path (make's DESTDIR), in
# what is looked at and in what is printed.
# `make uninstall` and the .deb's postrm run it; its body is copied into the postrm, so it
# stays plain POSIX sh and self-contained.

pam_ticket_leftovers() {
    config=$1
    root=$2
    found=""
    # The last value of KEY="VALUE" (or KEY=VALUE) in the configuration, if any.
    value() {
        [ -f "$root$config" ] || return 0
        sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\"\{0,1\}\([^\"]*\)\"\{0,1\}[[:space:]]*\$/\1/p" \
            "$root$config" | tail -n 1
    }
    report() {
        [ -n "$found" ] || echo "pam_ticket: left in place, made by you (remove them if no longer needed):"
        found=yes
        echo "  $1  ($2)"
    }
    for key in ConnectionAccountFile PortalAccountFile CAFile AuditLogFile; do
        path=$(value "$key")
        [ -n "$path" ] || continue
        case "$key:$path" in
            # The system's own bundles are not pam_ticket's to mention.
            CAFile:/etc/pki/tls/certs/ca-bundle.crt | CAFile:/etc/ssl/certs/ca-certificates.crt | CAFile:/etc/ssl/ca-bundle.pem) continue ;;
        esac
        [ -e "$root$path" ] && report "$root$path" "$key"
    done
    audit_dir=/var/log/pam_ticket
    if [ -d "$root$audit_dir" ] && [ -n "$(ls -A "$root$audit_dir" 2>/dev/null)" ]; then
        report "$root$audit_dir/" "audit log directory, not empty"
    fi
    cache=$(value CacheDirectory)
    cache=${cache:-/run/pam_ticket}
    [ -d "$root$cache" ] && report "$root$cache/" "CacheDirectory: login tokens"
    for anchors in /etc/pki/ca-trust/source/anchors /usr/local/share/ca-certificates; do
        [ -d "$root$anchors" ] || continue
        for file in "$root$anchors"/*; do
            [ -f "$file" ] || continue
            if grep -q 'added by pam-ticket ca add' "$file" 2>/dev/null; then
                report "$file" "CA added with pam-ticket ca add; still trusted system-wide"
            fi
        done
    done
    if [ -d "$root/etc/pam.d" ]; then
        for service in "$root"/etc/pam.d/*; do
            [ -f "$service" ] || continue
            if grep -Eq '^[[:space:]]*[^#[:space:]].*pam_ticket\.so' "$service" 2>/dev/null; then
                report "$service" "still loads pam_ticket.so: remove that line, or logins through it fail"
            fi
        done
    fi
    [ -n "$found" ] || echo "pam_ticket: no files of yours left behind"
    return 0
}

# Run as a script (not when the .deb's postrm includes the function).
case "$0" in
    *leftovers.sh) pam_ticket_leftovers "${1:-/etc/security/pam_ticket.conf}" "${2:-}" ;;
esac

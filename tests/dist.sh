#!/usr/bin/env bash
# Checks the release artifacts `make dist` made (run by `make test-dist`, which builds them
# first, and by .ci/run):
#  1. both portable artifacts need no glibc symbol newer than GLIBC_2.28, the module is
#     stripped and at most 4 MB, and ureq's bundled webpki-roots are not compiled in;
#  2. the portable module passes the shared case table through libpam (tests/ticket_gate.rs
#     with PAM_TICKET_SO pointing at it);
#  3. the main RPM: exact file list, modes and flags, and requirements nothing beyond libc,
#     libpam and rpmlib features; the -selinux RPM: its files and scriptlets;
#  4. as root: the RPM installed into a scratch root (rpm --root DIR --initdb; -i --nodeps),
#     and the module taken from that root lets a valid ticket in and refuses a closed one
#     (tests/installed_module.rs through libpam);
#  5. the SELinux module links into a reference policy (Debian's selinux-policy-default,
#     copied to a scratch store: semodule -p ROOT), and the policy built there grants sshd_t
#     exactly the rules of packaging/selinux/pam_ticket.te and nothing else, and labels
#     /run/pam_ticket and /var/log/pam_ticket;
#  6. the .deb: module directory from the multiarch triplet (the one `make install` uses),
#     libc6 (>= 2.28), the configuration as a conffile.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "dist: FAIL: $*" >&2; exit 1; }
step() { echo "dist: $*"; }

GLIBC_BASELINE=2.28
SIZE_LIMIT=4000000
version=$(scripts/version.sh)
artifacts=target/x86_64-unknown-linux-gnu/release
rpm_main=dist/pam_ticket-$version-1.x86_64.rpm
rpm_selinux=dist/pam_ticket-selinux-$version-1.noarch.rpm
deb=dist/libpam-ticket_$version-1_amd64.deb
work=$(mktemp -d /tmp/pam_ticket-dist.XXXXXX)
trap 'rm -rf "$work"' EXIT

for file in "$artifacts/libpam_ticket.so" "$artifacts/pam-ticket" "$rpm_main" "$rpm_selinux" "$deb"; do
    [ -f "$file" ] || fail "$file is missing: run make dist"
done
[ "$(ls dist | wc -l)" -eq 3 ] || fail "dist/ should hold exactly the three packages: $(ls dist)"

# --- 1. glibc baseline, size, no bundled roots ---------------------------------------------
# The highest GLIBC_ symbol version an ELF file requires (as auditwheel checks wheels).
highest_glibc() {
    objdump -T "$1" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1
}
for artifact in "$artifacts/libpam_ticket.so" "$artifacts/pam-ticket"; do
    highest=$(highest_glibc "$artifact")
    [ -n "$highest" ] || fail "$artifact requires no GLIBC_ version at all?"
    newest=$(printf '%s\n%s\n' "$highest" "$GLIBC_BASELINE" | sort -V | tail -n 1)
    [ "$newest" = "$GLIBC_BASELINE" ] \
        || fail "$artifact requires GLIBC_$highest, newer than GLIBC_$GLIBC_BASELINE"
    step "$(basename "$artifact"): highest glibc symbol version GLIBC_$highest (limit $GLIBC_BASELINE)"
done
# The native debug build proves the check can fail: it is linked against this host's glibc.
native_highest=$(highest_glibc target/debug/libpam_ticket.so)
step "(the native debug module, for comparison, needs GLIBC_$native_highest)"
size=$(stat -c %s "$artifacts/libpam_ticket.so")
[ "$size" -le "$SIZE_LIMIT" ] || fail "the portable module is $size bytes, over $SIZE_LIMIT"
grep -q ', stripped' <<<"$(file "$artifacts/libpam_ticket.so")" || fail "the portable module is not stripped"
grep -q '\.symtab' <<<"$(readelf -S "$artifacts/libpam_ticket.so")" && fail "the portable module has a symbol table"
step "libpam_ticket.so: $size bytes, stripped (limit $SIZE_LIMIT)"
if cargo tree --locked -e normal -i webpki-roots >/dev/null 2>&1; then
    fail "webpki-roots is still in the dependency tree"
fi
step "webpki-roots: not a dependency"
"$artifacts/pam-ticket" --help >/dev/null || fail "the portable pam-ticket does not run"

# --- 2. the shared case table against the portable module -----------------------------------
[ -f target/panic-probe/libpam_ticket.so ] || fail "target/panic-probe/libpam_ticket.so is missing: make probe"
PAM_TICKET_SO=$PWD/$artifacts/libpam_ticket.so PAM_TICKET_PANIC_SO=$PWD/target/panic-probe/libpam_ticket.so \
    cargo test --quiet --locked --test ticket_gate >"$work/ticket_gate.log" 2>&1 \
    || { grep -E -A30 "^---- |^failures:" "$work/ticket_gate.log" | tail -60; fail "tests/ticket_gate.rs against the portable module"; }
step "tests/ticket_gate.rs passes against $artifacts/libpam_ticket.so ($(grep -o '[0-9]* passed' "$work/ticket_gate.log" | tail -n 1))"

# --- 3. RPM contents -------------------------------------------------------------------------
# FILEFLAGS: c = %config, n = noreplace, d = %doc (man pages are docs to rpm too).
expected_main="-rw------- cn /etc/security/pam_ticket.conf
-rwxr-xr-x  /usr/lib64/security/pam_ticket.so
-rwxr-xr-x  /usr/sbin/pam-ticket
drwxr-xr-x  /usr/share/doc/pam_ticket
-rw-r--r-- d /usr/share/doc/pam_ticket/README.md
drwxr-xr-x  /usr/share/doc/pam_ticket/examples
-rw-r--r-- d /usr/share/doc/pam_ticket/examples/pam.d-sshd
-rw-r--r-- d /usr/share/doc/pam_ticket/examples/pam.d-sshd.debian
-rw-r--r-- d /usr/share/doc/pam_ticket/examples/pam.d-sshd.rhel
-rw-r--r-- d /usr/share/doc/pam_ticket/examples/pam_ticket.conf
-rw-r--r-- d /usr/share/doc/pam_ticket/examples/pam_ticket.portal.conf
-rw-r--r-- d /usr/share/doc/pam_ticket/examples/pam_ticket.remedy.conf
-rw-r--r-- d /usr/share/man/man5/pam_ticket.conf.5.gz
-rw-r--r-- d /usr/share/man/man8/pam_ticket.8.gz
drwx------  /var/log/pam_ticket"
actual_main=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm_main")
[ "$actual_main" = "$expected_main" ] || fail "main RPM file list differs:
$(diff <(echo "$expected_main") <(echo "$actual_main"))"
owners=$(rpm -qp --qf '[%{FILEUSERNAME}:%{FILEGROUPNAME}\n]' "$rpm_main" | sort -u)
[ "$owners" = root:root ] || fail "main RPM files not all root:root: $owners"
step "main RPM: $(echo "$actual_main" | wc -l) entries, modes and flags as expected"

# Requirements: libc (glibc's libc, libpthread, libdl, the dynamic loader), libpam, rpmlib
# features, the -selinux subpackage when the targeted policy is present, and config(),
# which rpm adds for every %config file and the package itself provides.
unexpected=$(rpm -qp --requires "$rpm_main" | grep -Ev \
    -e '^(libc\.so\.6|libpthread\.so\.0|libdl\.so\.2|ld-linux-x86-64\.so\.2)\(' \
    -e '^libpam\.so\.0\(' \
    -e '^rpmlib\(' \
    -e '^\(pam_ticket-selinux if selinux-policy-targeted\)$' \
    -e "^config\\(pam_ticket\\) = $version-1\$" || true)
[ -z "$unexpected" ] || fail "main RPM requires more than libc, libpam and rpmlib: $unexpected"
grep -qx '(pam_ticket-selinux if selinux-policy-targeted)' <<<"$(rpm -qp --requires "$rpm_main")" \
    || fail "main RPM does not pull in -selinux where the targeted policy is"
newest_libc=$(rpm -qp --requires "$rpm_main" | sed -n 's/^libc\.so\.6(GLIBC_\([0-9.]*\)).*/\1/p' | sort -V | tail -n 1)
[ "$newest_libc" = "$GLIBC_BASELINE" ] || fail "main RPM requires libc GLIBC_$newest_libc"
[ -z "$(rpm -qp --scripts "$rpm_main")" ] || fail "main RPM has scriptlets"
step "main RPM requires: libc (GLIBC_$newest_libc at most), libpam, rpmlib features, -selinux if selinux-policy-targeted"

expected_selinux="drwxr-xr-x /usr/share/selinux/packages/pam_ticket
-rw-r--r-- /usr/share/selinux/packages/pam_ticket/pam_ticket.fc
-rw-r--r-- /usr/share/selinux/packages/pam_ticket/pam_ticket.pp
-rw-r--r-- /usr/share/selinux/packages/pam_ticket/pam_ticket.te"
actual_selinux=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$rpm_selinux")
[ "$actual_selinux" = "$expected_selinux" ] || fail "-selinux RPM file list differs:
$(diff <(echo "$expected_selinux") <(echo "$actual_selinux"))"
[ "$(rpm -qp --qf '%{ARCH}' "$rpm_selinux")" = noarch ] || fail "-selinux RPM is not noarch"
scripts=$(rpm -qp --scripts "$rpm_selinux")
grep -q '^postinstall scriptlet' <<<"$scripts" && grep -q 'semodule -i /usr/share/selinux/packages/pam_ticket/pam_ticket.pp' <<<"$scripts" \
    || fail "-selinux RPM %post does not run semodule -i"
grep -q '^postuninstall scriptlet' <<<"$scripts" && grep -q 'semodule -r pam_ticket' <<<"$scripts" \
    || fail "-selinux RPM %postun does not run semodule -r"
grep -qx selinux-policy-targeted <<<"$(rpm -qp --requires "$rpm_selinux")" || fail "-selinux RPM does not require selinux-policy-targeted"
step "-selinux RPM: noarch, .pp + .te + .fc, %post semodule -i, %postun semodule -r"

# --- 4. scratch-root install and a login through the installed module ------------------------
if [ "$(id -u)" -ne 0 ]; then
    step "SKIPPED rpm --root install: not root"
else
    root=$work/rpmroot
    # (Debian's rpm warns on stderr that it should not install packages: into a scratch
    # root it may.)
    rpm_log=$work/rpm-root.log
    rpm --root "$root" --initdb 2>>"$rpm_log" || { cat "$rpm_log"; fail "rpm --root --initdb"; }
    rpm --root "$root" -i --nodeps "$rpm_main" 2>>"$rpm_log" || { cat "$rpm_log"; fail "rpm --root -i $rpm_main"; }
    # Its scriptlets would run semodule inside the scratch root, which has no SELinux tools.
    rpm --root "$root" -i --nodeps --noscripts "$rpm_selinux" 2>>"$rpm_log" \
        || { cat "$rpm_log"; fail "rpm --root -i $rpm_selinux"; }
    rpm --root "$root" -V --nodeps pam_ticket pam_ticket-selinux >"$work/rpm-verify.log" 2>>"$rpm_log" \
        || { cat "$work/rpm-verify.log"; fail "rpm -V finds the installed files changed"; }
    [ "$(rpm --root "$root" -qa 2>>"$rpm_log" | sort | tr '\n' ' ')" = "pam_ticket-$version-1.x86_64 pam_ticket-selinux-$version-1.noarch " ] \
        || fail "rpm --root -qa: $(rpm --root "$root" -qa 2>/dev/null)"
    [ "$(stat -c %a "$root/etc/security/pam_ticket.conf")" = 600 ] || fail "installed configuration is not 0600"
    cmp -s "$root/usr/lib64/security/pam_ticket.so" "$artifacts/libpam_ticket.so" || fail "installed module differs from the build"
    PAM_TICKET_SO=$root/usr/lib64/security/pam_ticket.so \
        cargo test --quiet --locked --test installed_module >"$work/installed.log" 2>&1 \
        || { tail -40 "$work/installed.log"; fail "a login through the module installed from the RPM"; }
    step "rpm --root: installed, rpm -V clean, $root/usr/lib64/security/pam_ticket.so lets INC0010001 in and refuses closed INC0010002"
fi

# --- 5. SELinux: link into a reference policy --------------------------------------------------
store=/var/lib/selinux/default
[ -d "$store/active" ] || fail "no reference policy store at $store (apt-get install selinux-policy-default)"
se_root=$work/selinux-root
mkdir -p "$se_root/var/lib/selinux" "$se_root/etc"
cp -a "$store" "$se_root/var/lib/selinux/"
cp -a /etc/selinux "$se_root/etc/"
base_policy=$(ls "$se_root"/etc/selinux/default/policy/policy.* | head -n 1)
cp "$base_policy" "$work/base-policy"
semodule -p "$se_root" -s default -i target/selinux/pam_ticket.pp >"$work/semodule.log" 2>&1 \
    || { cat "$work/semodule.log"; fail "semodule -p could not link pam_ticket.pp into the reference policy"; }
built_policy=$(ls "$se_root"/etc/selinux/default/policy/policy.* | head -n 1)
cmp -s "$built_policy" "$work/base-policy" && fail "the scratch store's policy was not rebuilt"
[ -d "$store/active/modules/400/pam_ticket" ] && fail "semodule -p touched the system store"

# Every rule that names sshd_t directly, before and after: the difference is exactly ours.
sshd_rules() { sesearch -A -T -s sshd_t -ds "$1" | sort; }
added=$(comm -13 <(sshd_rules "$work/base-policy") <(sshd_rules "$built_policy"))
removed=$(comm -23 <(sshd_rules "$work/base-policy") <(sshd_rules "$built_policy"))
expected_added="allow sshd_t http_cache_port_t:tcp_socket name_connect;
allow sshd_t http_port_t:tcp_socket name_connect;
allow sshd_t pam_ticket_cache_t:dir { add_name create getattr open read remove_name search write };
allow sshd_t pam_ticket_cache_t:file { create getattr lock open read rename setattr unlink write };
allow sshd_t pam_ticket_log_t:dir { add_name getattr search write };
allow sshd_t pam_ticket_log_t:file { append create getattr open };
allow sshd_t squid_port_t:tcp_socket name_connect;
type_transition sshd_t var_run_t:dir pam_ticket_cache_t pam_ticket;"
[ "$added" = "$expected_added" ] || fail "the module adds other sshd_t rules than expected:
$(diff <(echo "$expected_added") <(echo "$added"))"
[ -z "$removed" ] || fail "linking removed sshd_t rules: $removed"
grep -q . <<<"$(sesearch -A -s sshd_t -ds -t squid_port_t -dt -c tcp_socket -p name_connect "$built_policy")" \
    || fail "sesearch finds no sshd_t -> squid_port_t name_connect"
grep -q . <<<"$(sesearch -A -s sshd_t -ds -t squid_port_t -dt -c tcp_socket -p name_connect "$work/base-policy")" \
    && fail "the reference policy already had sshd_t -> squid_port_t; this check proves nothing"
# Rules whose source is not sshd_t: only the cache type's leave to live on /run's tmpfs.
cil=$(bzcat "$se_root/var/lib/selinux/default/active/modules/400/pam_ticket/cil")
other=$(grep '^(allow' <<<"$cil" | grep -v '^(allow sshd_t ' || true)
[ "$other" = "(allow pam_ticket_cache_t tmpfs_t (filesystem (associate)))" ] \
    || fail "the module allows more than sshd_t's rules: $other"
contexts=$se_root/etc/selinux/default/contexts/files/file_contexts
for pair in /run/pam_ticket:pam_ticket_cache_t /run/pam_ticket/remedy-token:pam_ticket_cache_t \
    /var/log/pam_ticket:pam_ticket_log_t /var/log/pam_ticket/audit.jsonl:pam_ticket_log_t; do
    path=${pair%%:*}
    type=${pair#*:}
    label=$(selabel_lookup -b file -k "$path" -f "$contexts" | sed -n 's/.*Default context: //p')
    [ "$label" = "system_u:object_r:$type:s0" ] || fail "$path is labelled '$label', not $type"
done
step "SELinux: pam_ticket.pp links into selinux-policy-default (semodule -p scratch store); sshd_t gains exactly the 8 expected rules; /run/pam_ticket and /var/log/pam_ticket labelled"

# --- 6. the .deb ----------------------------------------------------------------------------------
pamdir=$(scripts/pam-module-dir.sh)
deb_contents=$(dpkg-deb --contents "$deb")
grep -q " \./${pamdir#/}/pam_ticket.so\$" <<<"$deb_contents" \
    || fail "the .deb does not put the module in $pamdir (where make install puts it)"
grep -q "libc6 (>= $GLIBC_BASELINE)" <<<"$(dpkg-deb -f "$deb" Depends)" || fail "the .deb does not depend on libc6 (>= $GLIBC_BASELINE)"
grep -qx amd64 <<<"$(dpkg-deb -f "$deb" Architecture)" || fail "the .deb is not amd64"
grep -qx /etc/security/pam_ticket.conf <<<"$(dpkg-deb --info "$deb" conffiles)" || fail "the .deb's configuration is not a conffile"
step "deb: module in $pamdir, $(dpkg-deb -f "$deb" Depends)"
step "all checks passed"

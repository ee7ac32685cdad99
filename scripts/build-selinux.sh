#!/usr/bin/env bash
# Compiles the SELinux policy module (packaging/selinux/pam_ticket.te + .fc) into
# target/selinux/pam_ticket.pp with `checkmodule -M -m` and `semodule_package` (Debian:
# checkpolicy, semodule-utils), and puts its sources beside it for the -selinux RPM.
set -euo pipefail
cd "$(dirname "$0")/.."
# 19 is the newest module format RHEL 8's libsepol (2.9) reads; later formats only add
# language features this module does not use.
MODULE_FORMAT=19
out=target/selinux
mkdir -p "$out"
cp packaging/selinux/pam_ticket.te packaging/selinux/pam_ticket.fc "$out/"
checkmodule -M -m -c "$MODULE_FORMAT" -o "$out/pam_ticket.mod" "$out/pam_ticket.te"
semodule_package -o "$out/pam_ticket.pp" -m "$out/pam_ticket.mod" -f "$out/pam_ticket.fc"
echo "build-selinux: $out/pam_ticket.pp"

#!/usr/bin/env bash
# Runs ServiceNow's own Python client (pysnc) against the ServiceNow simulator, to show the
# simulator answers the way a real instance does. Exit status 0 only if every check passed.
#
#   tests/pysnc_check.sh
#
# Environment (all optional):
#   PYSNC_PYTHON       a python that already has pysnc; otherwise a venv is made under
#                      $TMPDIR with the pinned version below
#   SERVICENOW_SIM_BIN a built `servicenow_sim` example; otherwise cargo builds it
set -euo pipefail

PYSNC_VERSION=1.2.1
USER_NAME=svc_pam
PASSWORD='s3cret-pysnc'
CLIENT_ID=pysnc-oauth-client
CLIENT_SECRET='client-s3cret-pysnc'
REQUESTS_OAUTHLIB_VERSION=2.0.0

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/pam_ticket-pysnc.XXXXXX")
sim_pid=""

cleanup() {
    # Closing the simulator's standard input is its signal to stop; kill only if it lingers.
    exec 3>&- 2>/dev/null || true
    if [[ -n "$sim_pid" ]]; then
        for _ in $(seq 50); do
            kill -0 "$sim_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill "$sim_pid" 2>/dev/null || true
        wait "$sim_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

if [[ -n "${PYSNC_PYTHON:-}" ]]; then
    python=$PYSNC_PYTHON
else
    venv="${TMPDIR:-/tmp}/pam_ticket-pysnc-$PYSNC_VERSION"
    # requests-oauthlib is pysnc's optional dependency for its OAuth flows.
    if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import pysnc, requests_oauthlib' 2>/dev/null; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "pysnc==$PYSNC_VERSION" \
            "requests-oauthlib==$REQUESTS_OAUTHLIB_VERSION"
    fi
    python=$venv/bin/python
fi

if [[ -n "${SERVICENOW_SIM_BIN:-}" ]]; then
    sim_bin=$SERVICENOW_SIM_BIN
else
    (cd "$repo" && cargo build --quiet --example servicenow_sim)
    target_dir=$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
    sim_bin=$target_dir/debug/examples/servicenow_sim
fi

# A FIFO as standard input: the simulator serves while fd 3 stays open here.
mkfifo "$work/stdin"
"$sim_bin" "$USER_NAME" "$PASSWORD" "$CLIENT_ID" "$CLIENT_SECRET" <"$work/stdin" >"$work/sim.out" 2>"$work/sim.err" &
sim_pid=$!
exec 3>"$work/stdin"

for _ in $(seq 100); do
    grep -q '^PASSWORD=' "$work/sim.out" 2>/dev/null && break
    kill -0 "$sim_pid" 2>/dev/null || { cat "$work/sim.err" >&2; echo "simulator exited early" >&2; exit 1; }
    sleep 0.1
done
ca=$(sed -n 's/^CA=//p' "$work/sim.out")
port=$(sed -n 's/^PORT=//p' "$work/sim.out")
if [[ -z "$ca" || -z "$port" ]]; then
    echo "simulator did not report CA= and PORT=" >&2
    exit 1
fi

status=0
"$python" "$repo/tests/pysnc_check.py" "https://localhost:$port" "$ca" "$USER_NAME" "$PASSWORD" \
    "$CLIENT_ID" "$CLIENT_SECRET" || status=$?
exit "$status"

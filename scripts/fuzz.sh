#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/*.rs) for a bounded time, one after the other,
# with cargo-fuzz and libFuzzer on the stable toolchain. See docs/fuzzing.md.
#
#   scripts/fuzz.sh SECONDS [smoke]
#
# Each target starts from its committed seeds (fuzz/corpus/TARGET, never written to) and
# dictionary (fuzz/dict/TARGET.dict), plus a work corpus that libFuzzer adds new inputs to:
# fuzz/work/TARGET, kept between runs, or for `smoke` a fresh fuzz/work/smoke/TARGET. A
# crash, a time-out or an out-of-memory fails the run and names the reproducer (under
# fuzz/artifacts/TARGET/).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:?usage: scripts/fuzz.sh SECONDS [smoke]}
mode=${2:-full}
cargo=${CARGO:-cargo}
# The version docs/fuzzing.md was checked with; installed when cargo-fuzz is missing.
cargo_fuzz_version=0.13.2
# No sanitizer: cargo-fuzz then passes only stable rustc flags, so no nightly is needed.
# Debug assertions make an integer overflow a crash instead of a silent wrap.
flags=(--sanitizer none --debug-assertions)

if ! "$cargo" fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz $cargo_fuzz_version"
    "$cargo" install --locked --version "$cargo_fuzz_version" cargo-fuzz
fi

mapfile -t targets < <(find fuzz/fuzz_targets -name '*.rs' -printf '%f\n' | sed 's/\.rs$//' | sort)
if [ "${#targets[@]}" -eq 0 ]; then
    echo "fuzz: no targets in fuzz/fuzz_targets" >&2
    exit 1
fi

echo "fuzz: building ${#targets[@]} targets"
"$cargo" fuzz build "${flags[@]}"

passed=0
failed=0
for target in "${targets[@]}"; do
    if [ "$mode" = smoke ]; then
        work=fuzz/work/smoke/$target
        rm -rf "$work"
    else
        work=fuzz/work/$target
    fi
    mkdir -p "$work" "fuzz/artifacts/$target"
    log=fuzz/work/$target.log
    # -timeout: one input taking longer than this is reported as a hang. The dictionary
    # holds the words the parser compares against (keys, field names), which libFuzzer
    # cannot see without a sanitizer's memcmp hooks.
    options=(-max_total_time="$seconds" -timeout=30 -print_final_stats=1)
    if [ -f "fuzz/dict/$target.dict" ]; then
        options+=(-dict="fuzz/dict/$target.dict")
    fi
    if "$cargo" fuzz run "${flags[@]}" "$target" "$work" "fuzz/corpus/$target" -- \
        "${options[@]}" >"$log" 2>&1; then
        executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        echo "fuzz: $target: ${executions:-?} executions in ${seconds} s, 0 crashes"
        passed=$((passed + 1))
    else
        echo "fuzz: $target FAILED; the end of $log:" >&2
        tail -n 40 "$log" >&2
        failed=$((failed + 1))
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

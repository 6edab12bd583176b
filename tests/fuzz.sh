#!/usr/bin/env bash
# Run zt-core's fuzz targets (fuzz/) for a bounded time each, as part of the test suite.
#
#   tests/fuzz.sh [SECONDS]        # default 30 per target
#
# A panic, a hang (an input taking over 10 s), or an input needing over 1 GiB of memory fails
# the run; libFuzzer leaves the reproducer in fuzz/artifacts/<target>/ (add it to
# fuzz/regressions/<target>/ so zt-core's fuzz_regressions test keeps it). The working corpus
# (fuzz/corpus/, not committed) starts from fuzz/seeds/, the regressions and fuzz/minimized/
# (the committed, `cargo fuzz cmin`-reduced corpus of the long local runs, which the
# fuzz_regressions test replays as well).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/prerequisites.sh
. tests/prerequisites.sh
zt_ensure_rust
seconds=${1:-30}
if ! cargo fuzz --version 2>/dev/null | grep -q "^cargo-fuzz 0.13"; then
    echo "installing cargo-fuzz 0.13" >&2
    cargo install --locked --quiet cargo-fuzz --version "^0.13"
fi
# cargo-fuzz instruments with unstable rustc flags; this lets the stable toolchain take them
# for the fuzz build only.
export RUSTC_BOOTSTRAP=1
for target in config yaml_readers; do
    mkdir -p "fuzz/corpus/$target" "fuzz/regressions/$target" "fuzz/minimized/$target"
    echo "fuzzing $target for ${seconds}s" >&2
    log="fuzz/artifacts/$target.log"
    mkdir -p fuzz/artifacts
    status=0
    cargo fuzz run --release --debug-assertions "$target" \
        "fuzz/corpus/$target" "fuzz/seeds/$target" "fuzz/regressions/$target" \
        "fuzz/minimized/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=1024 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    # libFuzzer's progress lines are noise in a test log; its verdict and totals are not.
    grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY)" "$log" >&2 || true
    if [ "$status" -ne 0 ]; then
        tail -n 40 "$log" >&2
        echo "error: fuzzing $target failed (exit $status); reproducer in fuzz/artifacts/$target/" >&2
        exit 1
    fi
done

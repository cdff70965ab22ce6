#!/usr/bin/env bash
# Runs each cargo-fuzz target for a bounded time (FJORD_FUZZ_SECONDS, default 30 each).
# cargo-fuzz needs nightly compiler flags; RUSTC_BOOTSTRAP=1 unlocks them on the pinned
# stable toolchain, so no second toolchain is needed. A crash fails the script and leaves
# the input under tests/fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FJORD_FUZZ_SECONDS:-30}"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --version 0.13.2 --locked
fi
for target in request_decode batch_validate; do
    echo "fuzzing $target for ${seconds}s"
    mkdir -p "tests/fuzz/corpus/$target"
    RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir tests/fuzz "$target" \
        "tests/fuzz/corpus/$target" tests/fuzz/seeds/"$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1
done

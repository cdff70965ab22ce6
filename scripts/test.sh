#!/usr/bin/env bash
# Fjord's one test command: installs what the tests need on a fresh Debian machine, then runs
# formatting, lints and every test. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

require_toolchain() {
    # Every machine of this project's kind ships rustup with the pinned toolchain; the
    # registries reachable here carry no Rust toolchain (Debian's is too old for edition 2024).
    if ! command -v cargo >/dev/null 2>&1; then
        echo "error: cargo not found; install Rust $(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml) with rustup" >&2
        exit 1
    fi
    if ! command -v cc >/dev/null 2>&1; then
        log "installing a C compiler (zstd builds C code)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential >/dev/null
    fi
}

require_toolchain

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo test"
cargo test --workspace --locked

log "benchmarks compile (they run only on demand: cargo bench -p fjord-log)"
cargo build --workspace --benches --locked

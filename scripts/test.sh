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
    # Processors are components for wasm32-wasip2 (rust-toolchain.toml lists the target;
    # an older rustup does not add it to an installed toolchain by itself).
    rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2
    if ! command -v cc >/dev/null 2>&1; then
        log "installing a C compiler (zstd builds C code)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential >/dev/null
    fi
}

apt_install() {
    local missing=()
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if ((${#missing[@]})); then
        log "installing ${missing[*]} (Debian)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

require_clients() {
    # Real Kafka clients for tests/clients: kcat (librdkafka 2.0.2, Debian), confluent-kafka
    # and kafka-python (PyPI), @platformatic/kafka (npm), driven by pytest.
    apt_install kcat
    command -v python3 >/dev/null 2>&1 || apt_install python3
    # A virtual environment under target/: pinned versions, no system packages touched.
    if [[ ! -x target/test-venv/bin/python ]]; then
        python3 -m venv target/test-venv 2>/dev/null || {
            apt_install python3-venv
            python3 -m venv target/test-venv
        }
    fi
    target/test-venv/bin/python -m pip install --quiet --disable-pip-version-check \
        -r tests/clients/requirements.txt
    # An npm client (@platformatic/kafka, pinned by its lock file) for the newest versions.
    command -v node >/dev/null 2>&1 || apt_install nodejs
    command -v npm >/dev/null 2>&1 || apt_install npm
    npm ci --prefix tests/clients/node --silent --no-audit --no-fund
}

require_toolchain
require_clients

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo clippy for wasm32-wasip2: the SDK's component side and every guest"
guests=()
for manifest in examples/processors/*/Cargo.toml tests/guests/*/Cargo.toml; do
    package="$(sed -n 's/^name = "\(.*\)"/\1/p' "$manifest" | head -1)"
    [[ $package == guest-harness ]] || guests+=(-p "$package")
done
cargo clippy --locked --target wasm32-wasip2 --target-dir target/guests -p fjord-sdk "${guests[@]}" -- -D warnings

# Benchmarks are compiled (type-checked) by clippy --all-targets above; they run only on
# demand (cargo bench -p fjord), so CI does not build them in release.
log "cargo test (the guest components are built by the tests, into target/guests)"
cargo test --workspace --locked

log "real Kafka clients against fjord serve (tests/clients)"
cargo build -p fjord --locked
FJORD_BIN="$PWD/target/debug/fjord" target/test-venv/bin/python -m pytest -q -p no:warnings -p no:cacheprovider tests/clients

log "librdkafka's own integration tests against fjord serve (tests/librdkafka/allowlist.txt)"
FJORD_BIN="$PWD/target/debug/fjord" RDK_PYTHON="$PWD/target/test-venv/bin/python" tests/librdkafka/run.sh

log "fuzzing request decoding and batch validation (bounded: FJORD_FUZZ_SECONDS each)"
FJORD_FUZZ_SECONDS="${FJORD_FUZZ_SECONDS:-30}" scripts/fuzz.sh

#!/usr/bin/env bash
# librdkafka's own integration test suite (tests/test-runner from Debian's librdkafka source
# package, the same librdkafka kcat uses) against a real `fjord serve`.
#
#   FJORD_BIN=target/debug/fjord tests/librdkafka/run.sh              # tests in allowlist.txt
#   FJORD_BIN=... tests/librdkafka/run.sh 0012 0017                   # these tests only
#   FJORD_BIN=... tests/librdkafka/run.sh --list tests/librdkafka/candidates.txt
#   tests/librdkafka/run.sh --build-only                              # fetch and build, no run
#                                         (also builds examples/rdkafka_performance for the benchmark)
#
# Environment:
#   FJORD_BIN         broker binary (default: target/debug/fjord)
#   RDK_WORK          where the source is unpacked and built (default: target/librdkafka-src)
#   RDK_TEST_TIMEOUT  seconds one test number may run before it is killed (default: 240)
#   RDK_JOBS          test numbers run at once against the broker (default: 2)
#   RDK_QUICK         0 (default): every sub-test; 1: test-runner -Q, which skips every sub-test
#                     not marked quick (so a test made only of those "passes" having done nothing)
#   RDK_LOG_DIR       per-test logs (default: a fresh directory under target/librdkafka-logs)
#   RDK_PYTHON        a Python with confluent-kafka, for the kafka-topics.sh stand-in in
#                     kafka-shim/ (default: target/test-venv/bin/python, as scripts/test.sh
#                     makes it); without one, the tests that need KAFKA_PATH fail
#
# Each test number runs in its own test-runner process (a test that times out there kills the
# whole process), against one broker on a free port with a fresh data directory. Exits 0 only
# when every selected test passed. A broker that died during a test fails that test and is
# started again (fresh data directory) for the next one.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${RDK_WORK:-$root/target/librdkafka-src}"
fjord_bin="${FJORD_BIN:-$root/target/debug/fjord}"
per_test_timeout="${RDK_TEST_TIMEOUT:-240}"
jobs="${RDK_JOBS:-2}"
quick="${RDK_QUICK:-0}"
# The broker version the tests gate their features on (TEST_BRKVER): the Kafka release whose
# protocol Fjord speaks.
kafka_version="${RDK_KAFKA_VERSION:-3.5.0}"

log() { printf '\n==> %s\n' "$*" >&2; }

apt_updated=0
apt_update() {
    if ((!apt_updated)); then
        apt-get update -qq >/dev/null
        apt_updated=1
    fi
}

apt_install() {
    local missing=() package
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if ((${#missing[@]})); then
        log "installing ${missing[*]} (Debian)"
        apt_update
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# deb-src entries beside the existing deb ones, so `apt-get source` works. Idempotent: a second
# run finds the file (or any other deb-src entry) and changes nothing.
enable_deb_src() {
    local dir=/etc/apt/sources.list.d
    if grep -rqsE '^(deb-src|Types:.*deb-src)' /etc/apt/sources.list "$dir"/*.list "$dir"/*.sources; then
        return
    fi
    log "enabling deb-src for Debian's sources"
    if [[ -f $dir/debian.sources ]]; then
        sed 's/^Types: deb$/Types: deb-src/' "$dir/debian.sources" >"$dir/fjord-deb-src.sources"
    elif [[ -f /etc/apt/sources.list ]]; then
        sed -n 's/^deb \(.*\)$/deb-src \1/p' /etc/apt/sources.list >"$dir/fjord-deb-src.list"
    else
        echo "error: no Debian apt sources found to derive deb-src entries from" >&2
        exit 1
    fi
    apt_updated=0
}

# What the build below is made with: a tree built otherwise is configured and built again.
build_id="librdkafka test-runner and rdkafka_performance: --disable-ssl --disable-gssapi --disable-curl, zstd lz4 rapidjson"

src_dir() {
    local dir
    for dir in "$work"/librdkafka-[0-9]*/; do
        [[ -f $dir/configure ]] && { echo "${dir%/}"; return; }
    done
}

build() {
    local src
    src="$(src_dir || true)"
    if [[ -n $src && -x $src/tests/test-runner && "$(cat "$src/.fjord-built" 2>/dev/null)" == "$build_id" ]]; then
        echo "$src"
        return
    fi
    local start=$SECONDS
    # rapidjson: the tests that check statistics JSON (0053, 0110, ...) skip themselves without it.
    apt_install build-essential dpkg-dev pkg-config python3 zlib1g-dev libzstd-dev liblz4-dev \
        rapidjson-dev
    if [[ -z $src ]]; then
        enable_deb_src
        apt_update
        log "apt-get source librdkafka into $work"
        mkdir -p "$work"
        (cd "$work" && apt-get source -qq librdkafka >/dev/null 2>&1) || {
            echo "error: apt-get source librdkafka failed" >&2
            exit 1
        }
        src="$(src_dir)"
    fi
    log "building librdkafka and its test-runner in $src"
    (
        cd "$src"
        rm -f .fjord-built
        # A tree built before with other settings: start clean.
        if [[ -f Makefile.config ]]; then make clean >/dev/null 2>&1 || true; fi
        # No SSL, SASL/GSSAPI or HTTP: out of scope for Fjord, and fewer build dependencies.
        ./configure --no-download --disable-ssl --disable-gssapi --disable-curl >fjord-configure.log 2>&1 ||
            { tail -30 fjord-configure.log >&2; exit 1; }
        for feature in ZSTD LZ4_EXT RAPIDJSON; do
            grep -q "BUILT_WITH.* $feature" fjord-configure.log ||
                { echo "error: librdkafka configured without $feature" >&2; exit 1; }
        done
        make -j"$(nproc)" libs >fjord-build.log 2>&1 || { tail -30 fjord-build.log >&2; exit 1; }
        make -j"$(nproc)" -C tests test-runner >>fjord-build.log 2>&1 || { tail -30 fjord-build.log >&2; exit 1; }
        # librdkafka's C load generator, for the broker benchmark (not used by the tests).
        make -C examples rdkafka_performance >>fjord-build.log 2>&1 || { tail -30 fjord-build.log >&2; exit 1; }
        echo "$build_id" >.fjord-built
    )
    log "librdkafka built in $((SECONDS - start))s"
    echo "$src"
}

# ---- arguments ----
tests=()
list_file=""
build_only=0
while (($#)); do
    case "$1" in
        --list) list_file="$2"; shift 2 ;;
        --build-only) build_only=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        [0-9][0-9][0-9][0-9] | [0-9][0-9][0-9][0-9]:*) tests+=("$1"); shift ;;
        *) echo "error: unknown argument $1" >&2; exit 2 ;;
    esac
done
if ((${#tests[@]} == 0)); then
    list_file="${list_file:-$here/allowlist.txt}"
    # One test number a line, optionally followed by a scenario; '#' starts a comment.
    while read -r number scenario _; do
        tests+=("$number${scenario:+:$scenario}")
    done < <(sed 's/#.*//' "$list_file" | awk 'NF')
fi

src="$(build)"
((build_only)) && exit 0
((${#tests[@]})) || { echo "error: no tests selected" >&2; exit 2; }
[[ -x $fjord_bin ]] || { echo "error: FJORD_BIN=$fjord_bin is not an executable" >&2; exit 2; }

# ---- broker ----
run_dir="$(mktemp -d "${TMPDIR:-/tmp}/fjord-rdk.XXXXXX")"
log_dir="${RDK_LOG_DIR:-$root/target/librdkafka-logs/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$log_dir"
# A copy of the broker: the same binary for the whole run even if a build replaces FJORD_BIN.
cp "$fjord_bin" "$run_dir/fjord"
broker_pid=""
running_pid=()
broker_scenario=""
port=""

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The broker configuration of librdkafka's test scenarios (tests/scenarios/*.json): 4 partitions
# for auto-created topics, auto-creation on except in "noautocreate". (Their replication factor
# 3 needs three brokers; tests that depend on it are out of scope.)
start_broker() {
    local scenario="$1" auto_create=true
    [[ $scenario == noautocreate ]] && auto_create=false
    broker_scenario="$scenario"
    port="$(free_port)"
    rm -rf "$run_dir/data"
    echo "---- fjord serve, scenario $scenario, port $port" >>"$log_dir/broker.log"
    "$run_dir/fjord" serve --listen "127.0.0.1:$port" --data-dir "$run_dir/data" \
        --auto-create-topics "$auto_create" --num-partitions 4 \
        >>"$log_dir/broker.log" 2>&1 &
    broker_pid=$!
    local i
    for ((i = 0; i < 100; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            printf 'metadata.broker.list=127.0.0.1:%s\ntest.topic.random=true\n' "$port" \
                >"$run_dir/test.conf"
            return
        fi
        kill -0 "$broker_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "error: fjord serve did not start listening on 127.0.0.1:$port; see $log_dir/broker.log" >&2
    exit 1
}

stop_broker() {
    [[ -n $broker_pid ]] || return 0
    local pid=$broker_pid status=0
    broker_pid=""
    kill -TERM "$pid" 2>/dev/null || return 0
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" || status=$?
    return "$status"
}

cleanup() {
    # Tests still running (interrupted run): TERM to their timeout, which passes it on.
    local pid child
    for pid in "${running_pid[@]}"; do
        for child in $(pgrep -P "$pid" 2>/dev/null); do kill -TERM "$child" 2>/dev/null || true; done
    done
    stop_broker || true
    rm -rf "$run_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Tests that run Kafka's bin/kafka-topics.sh find the stand-in through KAFKA_PATH and BROKERS.
rdk_python="${RDK_PYTHON:-$root/target/test-venv/bin/python}"
if [[ -x $rdk_python ]] && "$rdk_python" -c 'import confluent_kafka' 2>/dev/null; then
    export RDK_PYTHON="$rdk_python" KAFKA_PATH="$here/kafka-shim"
else
    log "no Python with confluent-kafka at $rdk_python: tests that need kafka-topics.sh will fail"
fi
log "logs in $log_dir"

# ---- tests ----
runner_args=(-L)            # skip TEST_F_LOCAL tests: they use librdkafka's mock cluster, not Fjord
((quick)) && runner_args+=(-Q)

# Runs one test number in the background; its exit status lands in $log_dir/NAME.rc.
start_test() {
    local entry="$1" number="${1%%:*}" scenario="$2" name="$3"
    (
        cd "$src/tests"
        export LD_LIBRARY_PATH="$src/src:$src/src-cpp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        export RDKAFKA_TEST_CONF="$run_dir/test.conf" TEST_KAFKA_VERSION="$kafka_version"
        export TESTS="$number" RDKAFKA_GITVER="debian-source" BROKERS="127.0.0.1:$port"
        rc=0
        timeout -k 10 "$per_test_timeout" ./test-runner "${runner_args[@]}" -s "$scenario" || rc=$?
        echo "$rc" >"$log_dir/$name.rc"
    ) >"$log_dir/$name.log" 2>&1 &
    running_pid+=("$!") running_entry+=("$entry") running_name+=("$name") running_start+=("$SECONDS")
}

passed=() failed=() durations=()
broker_failures=0

# Judges a finished test from its exit status and summary table, and prints the verdict.
finish_test() {
    local entry="$1" name="$2" took="$3" number="${1%%:*}"
    local test_log="$log_dir/$name.log" rc verdict="" ran
    rc="$(cat "$log_dir/$name.rc" 2>/dev/null || echo 255)"
    # Statistics JSON the test-runner leaves in its directory: kept with the logs.
    mv "$src"/tests/stats_"$number"_*.json "$log_dir"/ 2>/dev/null || true
    # The summary table: one row per test variant with its state.
    ran="$(sed 's/\x1b\[[0-9;]*m//g' "$test_log" | grep -cE '^\| +[0-9]{4}_\S+ +\| +(PASSED|FAILED)' || true)"
    if ((rc == 124)); then
        verdict="killed after ${per_test_timeout}s (RDK_TEST_TIMEOUT)"
    elif grep -q 'timed out (timeout set to' "$test_log"; then
        verdict="test-runner's own timeout"
    elif ((rc != 0)); then
        verdict="failed (exit $rc)"
    elif ((ran == 0)); then
        verdict="ran nothing (all variants skipped)"
    fi
    if ! kill -0 "$broker_pid" 2>/dev/null; then
        verdict="${verdict:+$verdict; }BROKER DIED"
        wait "$broker_pid" 2>/dev/null || true
        broker_pid=""
        broker_failures=$((broker_failures + 1))
        start_broker "$broker_scenario"
    fi
    durations+=("$took $entry")
    if [[ -z $verdict ]]; then
        passed+=("$entry")
        printf 'PASS %-20s %4ss\n' "$entry" "$took"
    else
        failed+=("$entry")
        printf 'FAIL %-20s %4ss  %s  (log: %s)\n' "$entry" "$took" "$verdict" "$test_log"
        sed 's/\x1b\[[0-9;]*m//g' "$test_log" | grep -E '^###|Test .* timed out|FATAL|rdkafka error' |
            head -4 | cut -c1-300 | sed 's/^/    /' || true
    fi
}

# Reaps finished tests; with "all", waits for every running one.
reap() {
    local mode="$1" i
    while :; do
        local still_pid=() still_entry=() still_name=() still_start=()
        for i in "${!running_pid[@]}"; do
            if kill -0 "${running_pid[i]}" 2>/dev/null; then
                still_pid+=("${running_pid[i]}") still_entry+=("${running_entry[i]}")
                still_name+=("${running_name[i]}") still_start+=("${running_start[i]}")
            else
                wait "${running_pid[i]}" 2>/dev/null || true
                finish_test "${running_entry[i]}" "${running_name[i]}" \
                    "$((SECONDS - running_start[i]))"
            fi
        done
        running_pid=("${still_pid[@]}") running_entry=("${still_entry[@]}")
        running_name=("${still_name[@]}") running_start=("${still_start[@]}")
        if [[ $mode == all ]]; then
            ((${#running_pid[@]} == 0)) && return
        else
            ((${#running_pid[@]} < jobs)) && return
        fi
        sleep 0.2
    done
}

running_pid=() running_entry=() running_name=() running_start=()
run_begin=$SECONDS
# Scenario by scenario (each its own broker configuration), in the order they first appear.
scenarios=()
for entry in "${tests[@]}"; do
    scenario=default
    if [[ $entry == *:* ]]; then scenario="${entry#*:}"; fi
    [[ " ${scenarios[*]} " == *" $scenario "* ]] || scenarios+=("$scenario")
done
for scenario in "${scenarios[@]}"; do
    start_broker "$scenario"
    for entry in "${tests[@]}"; do
        this=default
        if [[ $entry == *:* ]]; then this="${entry#*:}"; fi
        [[ $this == "$scenario" ]] || continue
        name="${entry%%:*}"
        if [[ $scenario != default ]]; then name="$name-$scenario"; fi
        reap free
        start_test "$entry" "$scenario" "$name"
    done
    reap all
    stop_broker || broker_failures=$((broker_failures + 1))
done

echo
echo "slowest:"
printf '%s\n' "${durations[@]}" | sort -rn | head -8 | awk '{printf "  %-20s %4ss\n", $2, $1}'
echo "librdkafka test-runner: passed ${#passed[@]} of ${#tests[@]} attempted in $((SECONDS - run_begin))s" \
    "($jobs at a time); logs in $log_dir"
((${#failed[@]})) && echo "failed: ${failed[*]}"
if ((broker_failures)); then
    echo "fjord serve died, or exited non-zero on SIGTERM, $broker_failures time(s); see $log_dir/broker.log"
fi
echo "librdkafka: ${#passed[@]} passed, ${#failed[@]} failed"
((${#failed[@]} == 0 && broker_failures == 0))

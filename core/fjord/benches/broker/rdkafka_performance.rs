//! `rdkafka_performance`, librdkafka's own C load generator (built from the Debian source
//! package by `tests/librdkafka/run.sh --build-only`), as a second, leaner client: the rdkafka
//! crate spends more CPU per record than the broker does, and on a 2-core machine the client
//! and the broker share the cores.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, ensure};

/// The binary: `FJORD_BENCH_RDKAFKA_PERFORMANCE`, else the one `run.sh --build-only` leaves
/// under `target/librdkafka-src`; `None` when neither exists.
pub(crate) fn find() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("FJORD_BENCH_RDKAFKA_PERFORMANCE") {
        return Some(PathBuf::from(path));
    }
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/librdkafka-src");
    std::fs::read_dir(sources)
        .ok()?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path().join("examples/rdkafka_performance"))
        .find(|path| path.is_file())
}

/// The librdkafka settings both clients use (see the crate-based runs in `main.rs`).
const PRODUCER_SETTINGS: &[&str] = &[
    "linger.ms=5",
    "batch.size=1048576",
    "message.max.bytes=2000000",
    "queue.buffering.max.kbytes=1048576",
    "enable.idempotence=false",
];
const CONSUMER_SETTINGS: &[&str] = &[
    "fetch.max.bytes=52428800",
    "max.partition.fetch.bytes=10485760",
    "fetch.wait.max.ms=100",
    "queued.max.messages.kbytes=1048576",
];

/// Produces `records` records of `record_bytes` to `topic` (one partition: partition 0; more:
/// librdkafka's partitioner spreads them); MB/s of values, from start to the last delivery.
pub(crate) fn produce(
    binary: &Path,
    bootstrap: &str,
    topic: &str,
    acks: &str,
    partitions: i32,
    records: u64,
    record_bytes: usize,
) -> anyhow::Result<f64> {
    let acks = if acks == "all" { "-1" } else { acks };
    let mut command = Command::new(binary);
    command.args(["-P", "-q", "-t", topic, "-b", bootstrap, "-a", acks]);
    command.args(["-s", &record_bytes.to_string(), "-c", &records.to_string()]);
    if partitions == 1 {
        command.args(["-p", "0"]);
    }
    settings(&mut command, PRODUCER_SETTINGS);
    let (output, elapsed) = run(command)?;
    // "% N messages produced (B bytes), D delivered (offset O, F failed) in ..."
    let delivered = number_before(&output, " delivered")?;
    let failed = number_before(&output, " failed")?;
    ensure!(
        delivered == records && failed == 0,
        "rdkafka_performance delivered {delivered} of {records} records ({failed} failed)"
    );
    Ok(records as f64 * record_bytes as f64 / elapsed / 1e6)
}

/// Consumes `records` records from `partitions` of `topic` from the beginning, one
/// `rdkafka_performance` process per element of `partitions`, all at once; MB/s of values.
/// Each process times itself from its first record to its last, which leaves out its
/// start-up (about half a second of metadata lookups before the first fetch); the processes
/// run side by side, so all of them together moved their bytes in the longest of those times.
pub(crate) fn consume(
    binary: &Path,
    bootstrap: &str,
    topic: &str,
    partitions: &[Vec<i32>],
    records: &[u64],
) -> anyhow::Result<f64> {
    let children = partitions
        .iter()
        .zip(records)
        .map(|(assigned, &count)| {
            let mut command = Command::new(binary);
            command.args(["-C", "-q", "-t", topic, "-b", bootstrap, "-o", "beginning"]);
            command.args(["-c", &count.to_string()]);
            for partition in assigned {
                command.args(["-p", &partition.to_string()]);
            }
            settings(&mut command, CONSUMER_SETTINGS);
            Ok((spawn(command)?, count))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (mut bytes, mut elapsed_ms) = (0, 1);
    for (child, count) in children {
        let output = finish(child)?;
        // "% N messages (B bytes) consumed in T ms: ..."
        let consumed = number_before(&output, " messages (")?;
        ensure!(
            consumed == count,
            "rdkafka_performance consumed {consumed} of {count} records"
        );
        bytes += number_before(&output, " bytes) consumed")?;
        elapsed_ms = elapsed_ms.max(number_before(&output, "ms: ")?);
    }
    Ok(bytes as f64 / (elapsed_ms as f64 / 1e3) / 1e6)
}

fn settings(command: &mut Command, settings: &[&str]) {
    for setting in settings {
        command.args(["-X", setting]);
    }
}

fn spawn(mut command: Command) -> anyhow::Result<std::process::Child> {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting rdkafka_performance")
}

/// Waits for the process (so its CPU time counts among this process's children) and returns
/// what it printed.
fn finish(child: std::process::Child) -> anyhow::Result<String> {
    let output = child.wait_with_output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(
        output.status.success(),
        "rdkafka_performance failed: {text}"
    );
    Ok(text)
}

fn run(command: Command) -> anyhow::Result<(String, f64)> {
    let started = Instant::now();
    let output = finish(spawn(command)?)?;
    Ok((output, started.elapsed().as_secs_f64()))
}

/// The integer just before the last occurrence of `marker` in `text`.
fn number_before(text: &str, marker: &str) -> anyhow::Result<u64> {
    let (before, _) = text
        .rsplit_once(marker)
        .with_context(|| format!("no {marker:?} in rdkafka_performance output: {text}"))?;
    let digits: String = before
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits
        .parse()
        .with_context(|| format!("no count before {marker:?} in: {text}"))
}

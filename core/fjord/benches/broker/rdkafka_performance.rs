//! `rdkafka_performance`, librdkafka's own C load generator (built from the Debian source
//! package by `tests/librdkafka/run.sh --build-only`), as a second, leaner client: the rdkafka
//! crate spends more CPU per record than the broker does, and on a 2-core machine the client
//! and the broker share the cores.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
    "queued.min.messages=100000",
    "queued.max.messages.kbytes=1048576",
];

/// How long one run may take before its processes are killed and the run fails.
const RUN_DEADLINE: Duration = Duration::from_secs(600);

/// Produces `records` records of `record_bytes` to `topic` (one partition: partition 0; more:
/// librdkafka's partitioner spreads them); MB/s of values, as the tool times itself: from the
/// first send to the last delivery report, as the crate-based run is timed.
pub(crate) fn produce(
    binary: &Path,
    bootstrap: &str,
    topic: &str,
    acks: &str,
    partitions: i32,
    records: u64,
    record_bytes: usize,
) -> anyhow::Result<f64> {
    ensure!(records > 0, "nothing to produce");
    let acks = if acks == "all" { "-1" } else { acks };
    let mut command = Command::new(binary);
    command.args(["-P", "-q", "-t", topic, "-b", bootstrap, "-a", acks]);
    command.args(["-s", &record_bytes.to_string(), "-c", &records.to_string()]);
    if partitions == 1 {
        command.args(["-p", "0"]);
    }
    settings(&mut command, PRODUCER_SETTINGS);
    let finished = wait_all(vec![spawn(command)?])?;
    // "% N messages produced (B bytes), D delivered (offset O, F failed) in T ms: ..."
    let summary = summary_line(&finished[0].stdout, " messages produced ")?;
    let delivered = number_before(summary, " delivered")?;
    let failed = number_before(summary, " failed)")?;
    ensure!(
        delivered == records && failed == 0,
        "rdkafka_performance delivered {delivered} of {records} records ({failed} failed)"
    );
    let elapsed_ms = number_before(summary, "ms: ")?.max(1);
    Ok(records as f64 * record_bytes as f64 / (elapsed_ms as f64 / 1e3) / 1e6)
}

/// Consumes `records` records from `partitions` of `topic` from the beginning, one
/// `rdkafka_performance` process per element of `partitions`, all at once; MB/s of values.
/// Each process times itself from its first record to its last, which leaves out its
/// start-up (about half a second of metadata lookups before the first fetch); the run spans
/// from the earliest first record (a process's exit less its own time) to the last exit.
pub(crate) fn consume(
    binary: &Path,
    bootstrap: &str,
    topic: &str,
    partitions: &[Vec<i32>],
    records: &[u64],
) -> anyhow::Result<f64> {
    ensure!(
        records.iter().all(|&count| count > 0),
        "a consumer has nothing to read"
    );
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
            spawn(command)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (mut bytes, mut first, mut last) = (0, None::<Instant>, None::<Instant>);
    for (done, &count) in wait_all(children)?.iter().zip(records) {
        // "% N messages (B bytes) consumed in T ms: ..."
        let summary = summary_line(&done.stdout, " consumed in ")?;
        let consumed = number_before(summary, " messages (")?;
        ensure!(
            consumed == count,
            "rdkafka_performance consumed {consumed} of {count} records"
        );
        bytes += number_before(summary, " bytes) consumed")?;
        let own = Duration::from_millis(number_before(summary, "ms: ")?);
        let started = done.exited.checked_sub(own).unwrap_or(done.exited);
        first = Some(first.map_or(started, |first| first.min(started)));
        last = Some(last.map_or(done.exited, |last| last.max(done.exited)));
    }
    let (Some(first), Some(last)) = (first, last) else {
        anyhow::bail!("no consumer ran");
    };
    Ok(bytes as f64 / (last - first).as_secs_f64().max(1e-3) / 1e6)
}

fn settings(command: &mut Command, settings: &[&str]) {
    for setting in settings {
        command.args(["-X", setting]);
    }
}

fn spawn(mut command: Command) -> anyhow::Result<Child> {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting rdkafka_performance")
}

/// A process that exited successfully: what it printed to stdout, and when it exited.
struct Finished {
    stdout: String,
    exited: Instant,
}

/// Waits for every process (so their CPU time counts among this process's children), each
/// on its own thread so that each exit time is its own; kills them all past
/// [`RUN_DEADLINE`].
fn wait_all(children: Vec<Child>) -> anyhow::Result<Vec<Finished>> {
    let pids: Vec<u32> = children.iter().map(Child::id).collect();
    let deadline = Instant::now() + RUN_DEADLINE;
    std::thread::scope(|scope| {
        let waiters: Vec<_> = children
            .into_iter()
            .map(|child| {
                scope.spawn(move || -> anyhow::Result<Finished> {
                    let output = child.wait_with_output()?;
                    let exited = Instant::now();
                    ensure!(
                        output.status.success(),
                        "rdkafka_performance failed ({}): {}",
                        output.status,
                        String::from_utf8_lossy(&output.stderr)
                    );
                    Ok(Finished {
                        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                        exited,
                    })
                })
            })
            .collect();
        while !waiters.iter().all(|waiter| waiter.is_finished()) {
            if Instant::now() > deadline {
                for pid in &pids {
                    // Best effort: a process that just exited has nothing left to kill.
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
                anyhow::bail!("rdkafka_performance ran past {RUN_DEADLINE:?}; killed");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        waiters
            .into_iter()
            .map(|waiter| {
                waiter
                    .join()
                    .map_err(|_| anyhow::anyhow!("a waiter panicked"))?
            })
            .collect()
    })
}

/// The tool's summary: the last stdout line starting with `% ` that contains `marker`
/// (librdkafka's own log lines go to stderr and are not searched).
fn summary_line<'a>(stdout: &'a str, marker: &str) -> anyhow::Result<&'a str> {
    stdout
        .lines()
        .rev()
        .find(|line| line.starts_with("% ") && line.contains(marker))
        .with_context(|| format!("no {marker:?} summary in rdkafka_performance output: {stdout}"))
}

/// The integer just before the first occurrence of `marker` in `line`.
fn number_before(line: &str, marker: &str) -> anyhow::Result<u64> {
    let (before, _) = line
        .split_once(marker)
        .with_context(|| format!("no {marker:?} in rdkafka_performance summary: {line}"))?;
    let start = before
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |at| at + 1);
    before[start..]
        .parse()
        .with_context(|| format!("no count before {marker:?} in: {line}"))
}

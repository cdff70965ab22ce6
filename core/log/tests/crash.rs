//! Crash test. A child process appends with `FlushPolicy::EveryBatch` and prints each
//! acknowledged offset; the parent kills it with SIGKILL at a random point, reopens the log as
//! after a crash, and checks that every acknowledged batch is present and intact, that
//! everything served is valid, and that appends go on. Some rounds also leave a torn write
//! (part of a batch, or garbage) at the end of the active segment before recovery, as a power
//! loss would.
//!
//! Every batch's content is a function of its base offset, so any batch read back can be
//! checked on its own. Run with `FJORD_CRASH_SEED=N` to replay a failure; the seed is printed.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, ensure};
use fjord_log::{FlushPolicy, Log, Recovery, Store, TopicConfig, TopicPartition};
use fjord_record::{BatchBuilder, Compression, NewRecord, Records, batches};

const ROUNDS: usize = 60;
const CHILD_ENV: &str = "FJORD_CRASH_CHILD";

fn main() -> ExitCode {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        return match child(Path::new(&dir)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("child failed: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let seed = std::env::var("FJORD_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("crash test: {ROUNDS} SIGKILL rounds, FJORD_CRASH_SEED={seed}");
    match parent(seed) {
        Ok(()) => {
            println!("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("crash test failed (FJORD_CRASH_SEED={seed}): {e:#}");
            println!(
                "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out"
            );
            ExitCode::FAILURE
        }
    }
}

fn config() -> TopicConfig {
    TopicConfig {
        segment_bytes: 64 * 1024,
        index_interval_bytes: 1024,
        flush: FlushPolicy::EveryBatch,
        retention_ms: None,
        ..TopicConfig::default()
    }
}

fn partition() -> TopicPartition {
    TopicPartition::new("crash", 0)
}

/// The batch that belongs at `base_offset`: its size and bytes follow from the offset alone.
fn batch_for(base_offset: i64) -> Vec<u8> {
    let mut rng = Rng(base_offset as u64 ^ 0x9e37_79b9_7f4a_7c15);
    let count = 1 + rng.below(40) as i64;
    let codec = Compression::ALL[rng.below(5) as usize];
    let mut builder = BatchBuilder::new(codec);
    for offset in base_offset..base_offset + count {
        let value = value_for(offset);
        let key = offset.to_be_bytes();
        builder
            .push(&NewRecord {
                timestamp_ms: offset,
                key: Some(&key),
                value: Some(&value),
                headers: &[],
            })
            .expect("small batch");
    }
    builder.build().expect("small batch")
}

fn value_for(offset: i64) -> Vec<u8> {
    let len = Rng(offset as u64).below(3_000) as usize;
    (0..len)
        .map(|i| (offset as usize).wrapping_mul(31).wrapping_add(i) as u8)
        .collect()
}

fn child(dir: &Path) -> anyhow::Result<()> {
    let store = Store::open(dir)?;
    let mut log = match store.open_log(&partition(), config(), 0) {
        Ok((log, _)) => log,
        Err(_) => store.create_log(&partition(), config(), 0)?,
    };
    let mut stdout = std::io::stdout().lock();
    loop {
        let batch = batch_for(log.log_end_offset());
        let info = log.append(&batch, 0, 0)?;
        writeln!(stdout, "{}", info.last_offset)?;
        stdout.flush()?;
    }
}

fn parent(seed: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut rng = Rng(seed);
    let mut acknowledged = -1i64;
    let exe = std::env::current_exe()?;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().context("child stdout")?;
        let wanted = 1 + rng.below(25);
        let mut lines = BufReader::new(stdout).lines();
        for _ in 0..wanted {
            let line = lines.next().context("child exited early")??;
            acknowledged = acknowledged.max(line.parse()?);
        }
        child.kill()?;
        child.wait()?;
        // Anything the child printed before dying was acknowledged too.
        for line in lines {
            acknowledged = acknowledged.max(line?.parse()?);
        }
        if rng.below(3) == 0 {
            tear_tail(&dir.path().join("crash-0"), &mut rng)?;
        }
        verify(dir.path(), acknowledged, rng.below(2) == 0)
            .with_context(|| format!("round {round}"))?;
    }
    ensure!(
        acknowledged > 100,
        "too few appends acknowledged: {acknowledged}"
    );
    println!(
        "{ROUNDS} rounds, {} records acknowledged and verified",
        acknowledged + 1
    );
    Ok(())
}

/// Appends part of a valid batch, or garbage, to the active segment: a write torn by a
/// power loss.
fn tear_tail(log_dir: &Path, rng: &mut Rng) -> anyhow::Result<()> {
    let mut segments: Vec<_> = std::fs::read_dir(log_dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?;
    segments.retain(|p| p.extension().is_some_and(|e| e == "log"));
    segments.sort();
    let active = segments.last().context("no segment")?;
    let torn = if rng.below(2) == 0 {
        let whole = batch_for(1 << 40);
        whole[..1 + rng.below(whole.len() as u64 - 1) as usize].to_vec()
    } else {
        (0..1 + rng.below(200))
            .map(|_| rng.below(256) as u8)
            .collect()
    };
    std::fs::OpenOptions::new()
        .append(true)
        .open(active)?
        .write_all(&torn)?;
    Ok(())
}

/// Opens the log after a crash and checks every batch in it.
fn verify(dir: &Path, acknowledged: i64, close_cleanly: bool) -> anyhow::Result<()> {
    let store = Store::open(dir)?;
    ensure!(
        store.recovery() == Recovery::Full,
        "a killed writer left a clean-shutdown marker"
    );
    let (mut log, _report) = store.open_log(&partition(), config(), 0)?;
    ensure!(
        log.log_end_offset() > acknowledged,
        "acknowledged offset {acknowledged} lost: log ends at {}",
        log.log_end_offset()
    );
    check_all_batches(&log)?;
    // Appends go on after recovery.
    let batch = batch_for(log.log_end_offset());
    log.append(&batch, 0, 0)?;
    if close_cleanly {
        store.close([log])?;
        // The child will open it as trusted; that must hold too.
        let store = Store::open(dir)?;
        let (log, report) = store.open_log(&partition(), config(), 0)?;
        ensure!(
            report.recovered_segments == 0,
            "a clean shutdown still needed recovery"
        );
        check_all_batches(&log)?;
        drop(log);
        // Leave no marker: the next writer is killed again.
    }
    Ok(())
}

fn check_all_batches(log: &Log) -> anyhow::Result<()> {
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let bytes = log.read(offset, 256 * 1024, i64::MAX)?;
        ensure!(
            !bytes.is_empty(),
            "no data at {offset} before the log end {}",
            log.log_end_offset()
        );
        for batch in batches(&bytes) {
            let batch = batch?;
            ensure!(
                batch.header.base_offset == offset,
                "batch at {} where {offset} was expected",
                batch.header.base_offset
            );
            check_batch(&batch)?;
            offset = batch.header.next_offset();
        }
    }
    Ok(())
}

fn check_batch(batch: &fjord_record::Batch<'_>) -> anyhow::Result<()> {
    batch.verify_crc()?;
    let expected = batch_for(batch.header.base_offset);
    ensure!(
        batch.bytes[16..] == expected[16..],
        "batch at {} differs from what was written",
        batch.header.base_offset
    );
    let records = batch.decompressed_record_bytes(1 << 24)?;
    for record in Records::new(&records) {
        let record = record?;
        let offset = batch.header.base_offset + i64::from(record.offset_delta);
        ensure!(
            record.value == Some(&value_for(offset)[..]),
            "record {offset} corrupted"
        );
    }
    Ok(())
}

/// SplitMix64: a small deterministic generator, so a seed replays a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

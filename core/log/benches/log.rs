//! Log benchmark: `cargo bench -p fjord-log`. Not a test; prints figures beside a baseline
//! measured in the same run on the same directory, as a ratio.
//!
//! - Append of 1 KiB records in 16 KiB and 1 MiB batches, flush by the OS and fsync every
//!   batch, against plain `write` of the same sizes (plus `fdatasync` per write when syncing).
//! - Sequential read of the log against a raw sequential read of the same files: the first
//!   pass after opening (every CRC checked), then later passes with a new buffer per read
//!   (`Log::read`) and with one reused buffer (`Log::read_into`, how start-up replays producer state).
//!
//! Each figure is the median of five interleaved runs; `sync(1)` runs before each append
//! run so no run pays for the previous one's write-back.
//! - Resident memory of 10,000 open idle partitions.
//!
//! `FJORD_BENCH_MIB` sets the volume per run (default 256; the fsync runs of 16 KiB batches
//! use a quarter of it). `FJORD_BENCH_ONLY=idle` or `=io` runs one part.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use fjord_log::{FilePool, FlushPolicy, Log, Store, TopicConfig, TopicPartition};
use fjord_record::{BatchBuilder, Compression, NewRecord};

const RECORD_BYTES: usize = 1024;
const PARTITIONS_IDLE: usize = 10_000;

fn main() -> anyhow::Result<()> {
    let volume_mib: usize = std::env::var("FJORD_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    println!(
        "fjord-log benchmark in {} ({volume_mib} MiB per run)\n",
        root.path().display()
    );
    let only = std::env::var("FJORD_BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "idle" {
        // First, while the heap is small, so the resident-memory figure is the partitions' own.
        idle_partitions(&root.path().join("idle"))?;
        println!();
    }
    if !only.is_empty() && only != "io" {
        return Ok(());
    }
    println!(
        "{:<34} {:>12} {:>12} {:>7}",
        "append", "fjord MB/s", "raw MB/s", "ratio"
    );
    for (flush, flush_name) in [(FlushPolicy::Os, "os"), (FlushPolicy::EveryBatch, "fsync")] {
        for batch_bytes in [16 * 1024, 1024 * 1024] {
            let volume = if flush == FlushPolicy::EveryBatch && batch_bytes < 1 << 20 {
                volume_mib / 4
            } else {
                volume_mib
            } << 20;
            let batches = volume / batch_bytes;
            let (mut fjord, mut raw, mut written) = (Vec::new(), Vec::new(), 0);
            // Interleaved repetitions, median of each: this disk's throughput drifts.
            for round in 0..REPEATS {
                let dir = root
                    .path()
                    .join(format!("append-{flush_name}-{batch_bytes}-{round}"));
                let raw_path = root
                    .path()
                    .join(format!("raw-{flush_name}-{batch_bytes}-{round}.bin"));
                let sync_each = flush == FlushPolicy::EveryBatch;
                // Each run starts with no dirty pages of the one before it to write back, and
                // the two take turns going first.
                for contender in [round % 2, 1 - round % 2] {
                    sync_all()?;
                    if contender == 0 {
                        let (elapsed, bytes) = append_log(&dir, flush, batch_bytes, batches)?;
                        fjord.push(elapsed);
                        written = bytes;
                    } else {
                        raw.push(raw_write(&raw_path, batch_bytes, batches, sync_each)?);
                    }
                }
                // Both contenders' files go together, after both runs.
                std::fs::remove_file(&raw_path)?;
                if round > 0 || flush != FlushPolicy::Os || batch_bytes < 1 << 20 {
                    std::fs::remove_dir_all(&dir)?;
                }
            }
            let label = format!("{} KiB batches, flush {flush_name}", batch_bytes / 1024);
            print_row(&label, written, median(fjord), median(raw));
        }
    }
    println!();
    let dir = root.path().join(format!("append-os-{}-0", 1024 * 1024));
    println!(
        "{:<34} {:>12} {:>12} {:>7}",
        "read 1 MiB at a time (page cache)", "fjord MB/s", "raw MB/s", "ratio"
    );
    read_log(&dir)?;
    Ok(())
}

const REPEATS: usize = 5;

/// `sync(1)`: writes back every dirty page on the machine.
fn sync_all() -> anyhow::Result<()> {
    let status = std::process::Command::new("sync").status()?;
    anyhow::ensure!(status.success(), "sync failed: {status}");
    Ok(())
}

fn median(mut durations: Vec<Duration>) -> Duration {
    durations.sort();
    durations[durations.len() / 2]
}

fn print_row(label: &str, bytes: usize, fjord: Duration, raw: Duration) {
    let rate = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e6;
    println!(
        "{label:<34} {:>12.0} {:>12.0} {:>7.2}",
        rate(fjord),
        rate(raw),
        rate(fjord) / rate(raw)
    );
}

/// A batch of 1 KiB records, about `batch_bytes` long, with incompressible-looking values.
fn make_batch(batch_bytes: usize, seed: u64) -> Vec<u8> {
    let count = (batch_bytes / (RECORD_BYTES + 16)).max(1);
    let mut state = seed | 1;
    let value: Vec<u8> = (0..RECORD_BYTES)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let mut builder = BatchBuilder::new(Compression::None);
    for i in 0..count {
        let key = (i as u64).to_be_bytes();
        builder
            .push(&NewRecord {
                timestamp_ms: 1_700_000_000_000,
                key: Some(&key),
                value: Some(&value),
                headers: &[],
            })
            .expect("benchmark batches are small");
    }
    builder.build().expect("benchmark batches are small")
}

fn append_log(
    dir: &Path,
    flush: FlushPolicy,
    batch_bytes: usize,
    batches: usize,
) -> anyhow::Result<(Duration, usize)> {
    let config = TopicConfig {
        flush,
        retention_ms: None,
        max_message_bytes: 2 << 20,
        ..TopicConfig::default()
    };
    let mut log = Log::create(dir, config, FilePool::new(64), 0)?;
    let template = make_batch(batch_bytes, batch_bytes as u64);
    // The producer's buffer: the log assigns offsets in place, as the broker will.
    let mut buffers: Vec<Vec<u8>> = (0..batches).map(|_| template.clone()).collect();
    let start = Instant::now();
    for buffer in &mut buffers {
        log.append(buffer, 0, 0)?;
    }
    log.flush()?;
    let elapsed = start.elapsed();
    let written = log.size_bytes() as usize;
    log.close()?;
    Ok((elapsed, written))
}

fn raw_write(
    path: &Path,
    write_bytes: usize,
    writes: usize,
    sync_each: bool,
) -> anyhow::Result<Duration> {
    let buffer = make_batch(write_bytes, 7);
    let mut file = File::create(path)?;
    let start = Instant::now();
    for _ in 0..writes {
        file.write_all(&buffer)?;
        if sync_each {
            file.sync_data()?;
        }
    }
    file.sync_data()?;
    Ok(start.elapsed())
}

/// How a read pass hands out the batches.
#[derive(Clone, Copy)]
enum ReadMode {
    /// `Log::read`: a new buffer per read.
    Fresh,
    /// `Log::read_into` one reused buffer, as producer-state replay does.
    Reused,
}

fn read_pass(log: &Log, mode: ReadMode) -> anyhow::Result<usize> {
    let (mut offset, mut bytes) = (log.log_start_offset(), 0);
    let mut buffer = Vec::with_capacity(1 << 20);
    while offset < log.log_end_offset() {
        let chunk = match mode {
            ReadMode::Fresh => {
                buffer = log.read(offset, 1 << 20, i64::MAX)?.into();
                &buffer[..]
            }
            ReadMode::Reused => {
                buffer.clear();
                log.read_into(offset, 1 << 20, i64::MAX, &mut buffer)?;
                &buffer[..]
            }
        };
        let mut last = offset;
        for batch in fjord_record::batches(chunk) {
            last = batch?.header.next_offset();
        }
        bytes += chunk.len();
        offset = last;
    }
    Ok(bytes)
}

fn raw_read_pass(files: &[std::path::PathBuf]) -> anyhow::Result<usize> {
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0;
    for path in files {
        let mut file = File::open(path)?;
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            bytes += n;
            std::hint::black_box(&buffer[..n]);
        }
    }
    Ok(bytes)
}

/// Reads the log the way a consumer does, beside a raw read of its files. The first pass
/// after opening checks every CRC; later passes read batches already verified.
fn read_log(dir: &Path) -> anyhow::Result<()> {
    let open = || {
        Log::open(
            dir,
            TopicConfig {
                retention_ms: None,
                ..TopicConfig::default()
            },
            FilePool::new(64),
            fjord_log::Recovery::Trusted,
            0,
        )
        .map(|(log, _)| log)
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "log"));
    let bytes = raw_read_pass(&files)?; // warm the page cache for both contenders
    let timed = |f: &mut dyn FnMut() -> anyhow::Result<usize>| -> anyhow::Result<Duration> {
        let start = Instant::now();
        let read = f()?;
        anyhow::ensure!(read == bytes, "read {read} bytes, the files hold {bytes}");
        Ok(start.elapsed())
    };
    let rows: [(&str, ReadMode, bool); 3] = [
        ("first pass after open, CRC checked", ReadMode::Fresh, true),
        ("again, new buffer per read", ReadMode::Fresh, false),
        ("again, reused buffer", ReadMode::Reused, false),
    ];
    let (mut fjord, mut raw) = (vec![Vec::new(); rows.len()], vec![Vec::new(); rows.len()]);
    for _ in 0..REPEATS {
        let mut log = None;
        for (i, &(_, mode, reopen)) in rows.iter().enumerate() {
            if reopen || log.is_none() {
                log = Some(open()?);
            }
            let log = log
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("log not open"))?;
            fjord[i].push(timed(&mut || read_pass(log, mode))?);
            raw[i].push(timed(&mut || raw_read_pass(&files))?);
        }
    }
    for (i, (label, _, _)) in rows.iter().enumerate() {
        print_row(
            label,
            bytes,
            median(std::mem::take(&mut fjord[i])),
            median(std::mem::take(&mut raw[i])),
        );
    }
    Ok(())
}

fn idle_partitions(root: &Path) -> anyhow::Result<()> {
    let before = resident_bytes()?;
    let store = Store::open(root)?;
    let mut logs = Vec::with_capacity(PARTITIONS_IDLE);
    let start = Instant::now();
    for partition in 0..PARTITIONS_IDLE {
        let tp = TopicPartition::new(
            format!("topic-{}", partition / 100),
            (partition % 100) as i32,
        );
        let mut log = store.create_log(&tp, TopicConfig::default(), 0)?;
        log.append(&make_batch(2048, partition as u64), 0, 0)?;
        logs.push(log);
    }
    let created = start.elapsed();
    let after = resident_bytes()?;
    println!(
        "{PARTITIONS_IDLE} idle partitions (one 2 KiB batch each): created in {:.1} s",
        created.as_secs_f64()
    );
    println!(
        "  resident memory: {:.1} MiB for the process, {:.1} MiB added by the partitions (target < 200 MiB)",
        after as f64 / 1048576.0,
        after.saturating_sub(before) as f64 / 1048576.0
    );
    println!(
        "  open files held by the pool: {} (cap {})",
        store.pool().open_files(),
        store.pool().capacity()
    );
    store.close(logs)?;
    let start = Instant::now();
    let store = Store::open(root)?;
    let mut reopened = Vec::with_capacity(PARTITIONS_IDLE);
    for tp in store.partitions()? {
        reopened.push(store.open_log(&tp, TopicConfig::default(), 0)?.0);
    }
    println!(
        "  reopened {} partitions after a clean shutdown in {:.1} s",
        reopened.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn resident_bytes() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/self/status"))?;
    Ok(kib * 1024)
}

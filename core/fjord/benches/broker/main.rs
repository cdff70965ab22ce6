//! Broker benchmark: `cargo bench -p fjord --bench broker`. Not a test. Starts a release
//! `fjord serve` on loopback and drives it with librdkafka (the rdkafka crate), printing
//! figures beside the loopback TCP throughput of this machine and the speed of plain
//! sequential file writes on the same disk, both measured in the same run.
//!
//! - Produce, 1 KiB records, linger 5 ms, 1 MiB batches: acks=1 and acks=all, 1 and 8
//!   partitions (data goes to the log on disk; the OS flushes it).
//! - Consume everything from the beginning (the last 8-partition topic), with one, two and
//!   four consumers (partitions dealt in turn): one librdkafka consumer is slower than the
//!   broker. Timed from the first record received to the last.
//! - Produce latency at 5,000 records/s, acks=all: p50, p99, p99.9 (send to acknowledgement).
//! - Transactions (see `transactions.rs`): transactional produce as a ratio of idempotent
//!   produce, read_committed consume as a ratio of read_uncommitted
//!   (`FJORD_BENCH_ONLY=transactions` runs only these).
//! - The broker's resident memory at the end, and its peak.
//!
//! Each throughput run goes twice when `rdkafka_performance` (librdkafka's C load generator)
//! is built, once per client, with the same settings: rows `crate:` use the rdkafka crate,
//! rows `C:` use `rdkafka_performance` (see `rdkafka_performance.rs`). CPU columns are the
//! broker's and the client's share of one core over the run (client start-up included).
//!
//! `FJORD_BENCH_MIB` sets the volume per produce run (default 1024). Last, the broker is
//! restarted after `kill -9` with `FJORD_BENCH_RESTART_PARTITIONS` (default 10,000) empty
//! partitions and timed to its first answer, beside a start on an empty directory.
//!
//! `FJORD_BENCH_STEADY_MIB=6144` runs in steady state (root only): the broker and the file
//! baseline in a memory cgroup of that size, filled by a warm-up file first, so that writes
//! recycle page-cache pages as on a server that has run for a while instead of touching
//! memory the virtual machine never used (see `cgroup.rs`). 6144 keeps both clients'
//! 8-partition topics, which the consume runs read, in the page cache.

mod cgroup;
#[allow(dead_code)]
#[path = "../../tests/support/fjord_serve.rs"]
mod fjord_serve;
mod rdkafka_performance;
mod restart;
mod transactions;

use fjord_serve::FjordServe;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

const RECORD_BYTES: usize = 1024;
/// [`print_row`]'s `produce` argument: whether the file-write ratio applies.
const PRODUCE: bool = true;
const CONSUME: bool = false;
const LATENCY_RATE_PER_SECOND: u64 = 5_000;
const LATENCY_SECONDS: u64 = 10;

fn main() -> anyhow::Result<()> {
    let volume_mib: u64 = std::env::var("FJORD_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let steady_mib: Option<u64> = std::env::var("FJORD_BENCH_STEADY_MIB")
        .ok()
        .and_then(|v| v.parse().ok());
    let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let loopback = loopback_mb_per_second(volume_mib.min(4096))?;
    // Kept until the end so the broker's writes cannot reuse its page-cache pages (in steady
    // state, so that its warm-up file keeps the cgroup full).
    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let cgroup = steady_mib.map(cgroup::MemoryCgroup::create).transpose()?;
    if let (Some(cgroup), Some(limit_mib)) = (&cgroup, steady_mib) {
        cgroup.enter(std::process::id())?;
        file_write_mb_per_second(&scratch.path().join("warm-up"), limit_mib + 256)?;
    }
    let file_write = file_write_mb_per_second(&scratch.path().join("baseline"), volume_mib)?;
    if let Some(cgroup) = &cgroup {
        cgroup.leave(std::process::id())?;
    }
    let broker = FjordServe::start(data.path(), &[])?;
    if let Some(cgroup) = &cgroup {
        cgroup.enter(broker.pid())?;
    }
    if std::env::var("FJORD_BENCH_ONLY").as_deref() == Ok("transactions") {
        return transactions::measure(&broker.bootstrap, volume_mib);
    }
    println!(
        "fjord broker benchmark: {volume_mib} MiB per produce run, 1 KiB records, data in {}",
        data.path().display()
    );
    match steady_mib {
        Some(limit_mib) => println!(
            "steady state: broker and file baseline in a {limit_mib} MiB memory cgroup, page cache full and recycled"
        ),
        None => println!(
            "memory as found: on a fresh VM, page-cache pages are new to the hypervisor (FJORD_BENCH_STEADY_MIB for steady state)"
        ),
    }
    println!("loopback TCP (one stream, 1 MiB writes): {loopback:.0} MB/s");
    println!(
        "file write (new file on the same disk, 1 MiB writes, no fsync, {volume_mib} MiB): {file_write:.0} MB/s\n"
    );
    println!(
        "{:<52} {:>8} {:>10} {:>12} {:>11} {:>11}",
        "client: run", "MB/s", "÷loopback", "÷file write", "broker CPU", "client CPU"
    );
    let baselines = Baselines {
        loopback,
        file_write,
    };
    let performance = rdkafka_performance::find();
    if performance.is_none() {
        println!(
            "(rdkafka_performance not built: `tests/librdkafka/run.sh --build-only` builds it; rdkafka crate rows only)"
        );
    }
    let row_out = |label: &str, produce: bool, rate: f64, usage: &Usage| {
        print_row(label, produce, rate, usage, &broker, &baselines)
    };
    let mut consume_topic = None;
    let records = (volume_mib << 20) / RECORD_BYTES as u64;
    for (acks, partitions) in [("1", 1), ("1", 8), ("all", 1), ("all", 8)] {
        let row = format!("produce acks={acks} partitions={partitions}");
        let topic = format!("bench-acks{acks}-p{partitions}");
        create_topic(&broker.bootstrap, &topic, partitions)?;
        let usage = Usage::start(&broker)?;
        let rate = produce_mb_per_second(&broker.bootstrap, &topic, acks, volume_mib << 20)?;
        row_out(&format!("crate: {row}"), PRODUCE, rate, &usage)?;
        if let Some(binary) = &performance {
            let topic = format!("{topic}-performance");
            create_topic(&broker.bootstrap, &topic, partitions)?;
            let usage = Usage::start(&broker)?;
            let rate = rdkafka_performance::produce(
                binary,
                &broker.bootstrap,
                &topic,
                acks,
                partitions,
                records,
                RECORD_BYTES,
            )?;
            row_out(&format!("C: {row}"), PRODUCE, rate, &usage)?;
        }
        if partitions == 8 {
            // The last one written: in steady state the rest may have left the page cache.
            consume_topic = Some((topic, partitions));
        }
    }
    if let Some((topic, partitions)) = consume_topic {
        for consumers in [1, 2, 4] {
            let row = format!("consume from the beginning, {consumers} consumer(s)");
            let usage = Usage::start(&broker)?;
            let rate = consume_mb_per_second(&broker.bootstrap, &topic, partitions, consumers)?;
            row_out(&format!("crate: {row}"), CONSUME, rate, &usage)?;
            if let Some(binary) = &performance {
                let topic = format!("{topic}-performance");
                let (assigned, counts) = split_partitions(&broker, &topic, partitions, consumers)?;
                let usage = Usage::start(&broker)?;
                let rate = rdkafka_performance::consume(
                    binary,
                    &broker.bootstrap,
                    &topic,
                    &assigned,
                    &counts,
                )?;
                row_out(&format!("C: {row}"), CONSUME, rate, &usage)?;
            }
        }
    }
    transactions::measure(&broker.bootstrap, volume_mib)?;
    let latencies = produce_latencies(&broker.bootstrap)?;
    println!(
        "\nproduce latency at {LATENCY_RATE_PER_SECOND} records/s, acks=all ({} records): p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms",
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 0.999)
    );
    let (resident, peak) = memory_kib(broker.pid())?;
    println!(
        "broker resident memory: {:.0} MiB now, {:.0} MiB peak",
        resident as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    drop(broker);
    let restart_partitions = std::env::var("FJORD_BENCH_RESTART_PARTITIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let restart_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    restart::measure(restart_dir.path(), restart_partitions)
}

/// (VmRSS, VmHWM) of process `pid`, in KiB.
fn memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// The same run's raw throughputs, MB/s, that each row is divided by.
struct Baselines {
    loopback: f64,
    file_write: f64,
}

/// One table row: MB/s, the ratios to the baselines (file write for produce only), and CPU.
fn print_row(
    row: &str,
    produce: bool,
    rate: f64,
    usage: &Usage,
    broker: &FjordServe,
    baselines: &Baselines,
) -> anyhow::Result<()> {
    let (broker_cpu, client_cpu) = usage.finish(broker)?;
    let file_ratio = if produce {
        format!("{:.2}", rate / baselines.file_write)
    } else {
        "-".to_string()
    };
    println!(
        "{row:<52} {rate:>8.0} {:>10.2} {file_ratio:>12} {broker_cpu:>10.0}% {client_cpu:>10.0}%",
        rate / baselines.loopback
    );
    Ok(())
}

/// Partitions `0..partitions` dealt to `consumers` in turn, and how many records each share
/// holds (its partitions' high watermarks: every topic here starts at offset 0).
fn split_partitions(
    broker: &FjordServe,
    topic: &str,
    partitions: i32,
    consumers: i32,
) -> anyhow::Result<(Vec<Vec<i32>>, Vec<u64>)> {
    let consumer: BaseConsumer = client(&broker.bootstrap).create()?;
    let mut assigned = vec![Vec::new(); consumers as usize];
    let mut counts = vec![0u64; consumers as usize];
    for partition in 0..partitions {
        let share = (partition % consumers) as usize;
        let (_, high_watermark) =
            consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
        assigned[share].push(partition);
        counts[share] += u64::try_from(high_watermark)?;
    }
    Ok((assigned, counts))
}

/// CPU used by the broker and by the client (this process, plus the `rdkafka_performance`
/// processes it waited for) over a run, as a percentage of one core: shows which side the
/// 2 cores went to.
struct Usage {
    started: Instant,
    broker_ticks: u64,
    bench_ticks: u64,
}

impl Usage {
    fn start(broker: &FjordServe) -> anyhow::Result<Self> {
        Ok(Self {
            started: Instant::now(),
            broker_ticks: cpu_ticks(broker.pid())?,
            bench_ticks: own_and_children_cpu_ticks()?,
        })
    }

    fn finish(&self, broker: &FjordServe) -> anyhow::Result<(f64, f64)> {
        const TICKS_PER_SECOND: f64 = 100.0;
        let elapsed = self.started.elapsed().as_secs_f64();
        let percent = |ticks: u64| ticks as f64 / TICKS_PER_SECOND / elapsed * 100.0;
        Ok((
            percent(cpu_ticks(broker.pid())? - self.broker_ticks),
            percent(own_and_children_cpu_ticks()? - self.bench_ticks),
        ))
    }
}

/// User plus system time of a process, in clock ticks (`/proc/PID/stat` fields 14 and 15).
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    Ok(stat_fields(pid, 2)?.iter().sum())
}

/// This process's CPU time plus that of its children waited for (rdkafka_performance runs),
/// in clock ticks (`/proc/self/stat` fields 14 to 17).
fn own_and_children_cpu_ticks() -> anyhow::Result<u64> {
    Ok(stat_fields(std::process::id(), 4)?.iter().sum())
}

/// `count` numeric fields of `/proc/PID/stat` from field 14 (utime) on.
fn stat_fields(pid: u32, count: usize) -> anyhow::Result<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow::anyhow!("malformed /proc/{pid}/stat"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |i: usize| -> anyhow::Result<u64> {
        Ok(fields
            .get(i)
            .ok_or_else(|| anyhow::anyhow!("short /proc/{pid}/stat"))?
            .parse()?)
    };
    // After the name: state is field 3, so utime (field 14) is at index 11.
    (11..11 + count).map(field).collect()
}

/// One TCP stream on loopback, 1 MiB writes, the reader discarding: the ceiling any
/// broker on this machine works under.
fn loopback_mb_per_second(volume_mib: u64) -> anyhow::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut stream, _) = listener.accept()?;
        let mut buffer = vec![0u8; 1 << 20];
        let mut total = 0;
        loop {
            match stream.read(&mut buffer)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    });
    let chunk = vec![7u8; 1 << 20];
    let started = Instant::now();
    let mut stream = TcpStream::connect(address)?;
    for _ in 0..volume_mib {
        stream.write_all(&chunk)?;
    }
    drop(stream);
    let total = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))??;
    Ok(total as f64 / started.elapsed().as_secs_f64() / 1e6)
}

/// Sequential writes of 1 MiB to a new file, as the log writes a segment (page cache, no
/// fsync): what this machine's disk path allows the broker at most.
fn file_write_mb_per_second(path: &Path, volume_mib: u64) -> anyhow::Result<f64> {
    let chunk = vec![7u8; 1 << 20];
    let started = Instant::now();
    let mut file = std::fs::File::create(path)?;
    for _ in 0..volume_mib {
        file.write_all(&chunk)?;
    }
    Ok((volume_mib << 20) as f64 / started.elapsed().as_secs_f64() / 1e6)
}

fn client(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    config
}

pub(crate) fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> anyhow::Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = client(bootstrap).create()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for result in runtime.block_on(admin.create_topics([&topic], &AdminOptions::new()))? {
        result.map_err(|(t, code)| anyhow::anyhow!("creating {t}: {code}"))?;
    }
    Ok(())
}

/// Counts acknowledged records and keeps their latencies when asked.
#[derive(Default)]
struct Acks {
    delivered: AtomicU64,
    failed: AtomicU64,
    latencies_ns: std::sync::Mutex<Vec<u64>>,
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = Box<Option<Instant>>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Self::DeliveryOpaque) {
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.delivered.fetch_add(1, Ordering::Relaxed);
        if let Some(sent) = *sent {
            let mut latencies = self.latencies_ns.lock().unwrap_or_else(|e| e.into_inner());
            latencies.push(sent.elapsed().as_nanos() as u64);
        }
    }
}

fn producer(
    bootstrap: &str,
    acks: &str,
    linger_ms: &str,
) -> anyhow::Result<ThreadedProducer<Acks>> {
    Ok(client(bootstrap)
        .set("acks", acks)
        .set("linger.ms", linger_ms)
        .set("batch.size", "1048576")
        .set("message.max.bytes", "2000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("enable.idempotence", "false")
        .create_with_context(Acks::default())?)
}

fn send(
    producer: &ThreadedProducer<Acks>,
    topic: &str,
    value: &[u8],
    sent: Option<Instant>,
) -> anyhow::Result<()> {
    let mut opaque = Box::new(sent);
    loop {
        let record = BaseRecord::<[u8], [u8], _>::with_opaque_to(topic, opaque).payload(value);
        match producer.send::<[u8], [u8]>(record) {
            Ok(()) => return Ok(()),
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                record,
            )) => {
                opaque = record.delivery_opaque;
                std::thread::sleep(Duration::from_micros(200));
            }
            Err((error, _)) => return Err(error.into()),
        }
    }
}

fn produce_mb_per_second(
    bootstrap: &str,
    topic: &str,
    acks: &str,
    volume: u64,
) -> anyhow::Result<f64> {
    let producer = producer(bootstrap, acks, "5")?;
    let value = vec![b'x'; RECORD_BYTES];
    let records = volume / RECORD_BYTES as u64;
    let started = Instant::now();
    for _ in 0..records {
        send(&producer, topic, &value, None)?;
    }
    producer.flush(Duration::from_secs(300))?;
    let elapsed = started.elapsed().as_secs_f64();
    let context = producer.context();
    anyhow::ensure!(
        context.delivered.load(Ordering::Relaxed) == records
            && context.failed.load(Ordering::Relaxed) == 0,
        "not every record was acknowledged"
    );
    Ok(volume as f64 / elapsed / 1e6)
}

/// Everything in `topic` from the beginning, its partitions shared among `consumers`
/// threads (one librdkafka consumer each). Timed from the first record any of them received
/// to the last, leaving out client start-up, as `rdkafka_performance` times itself.
fn consume_mb_per_second(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    consumers: i32,
) -> anyhow::Result<f64> {
    let shares = std::thread::scope(|scope| -> anyhow::Result<Vec<Consumed>> {
        let threads: Vec<_> = (0..consumers)
            .map(|consumer| {
                let assigned: Vec<i32> = (0..partitions)
                    .filter(|p| p % consumers == consumer)
                    .collect();
                scope.spawn(move || consume_partitions(bootstrap, topic, &assigned))
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| {
                thread
                    .join()
                    .map_err(|_| anyhow::anyhow!("a consumer panicked"))?
            })
            .collect()
    })?;
    let bytes: u64 = shares.iter().map(|share| share.bytes).sum();
    let first = shares.iter().filter_map(|share| share.first).min();
    let last = shares.iter().filter_map(|share| share.last).max();
    let (Some(first), Some(last)) = (first, last) else {
        anyhow::bail!("nothing consumed");
    };
    Ok(bytes as f64 / (last - first).as_secs_f64().max(1e-3) / 1e6)
}

/// What one consumer read: value bytes, and when its first and last records arrived.
struct Consumed {
    bytes: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

/// The settings every benchmark consumer uses: large fetches and queues, no commits (the
/// same as `rdkafka_performance`'s in `rdkafka_performance.rs`).
fn consumer_config(bootstrap: &str, group: &str) -> ClientConfig {
    let mut config = client(bootstrap);
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set("fetch.wait.max.ms", "100")
        .set("queued.min.messages", "100000")
        .set("queued.max.messages.kbytes", "1048576");
    config
}

/// Reads `partitions` of `topic` from the beginning to the high watermark.
fn consume_partitions(
    bootstrap: &str,
    topic: &str,
    partitions: &[i32],
) -> anyhow::Result<Consumed> {
    let consumer: BaseConsumer = consumer_config(bootstrap, "bench").create()?;
    let mut list = TopicPartitionList::new();
    let mut expected = 0i64;
    for &partition in partitions {
        list.add_partition_offset(topic, partition, Offset::Beginning)?;
        expected += consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))?
            .1;
    }
    consumer.assign(&list)?;
    let mut records = 0i64;
    let mut consumed = Consumed {
        bytes: 0,
        first: None,
        last: None,
    };
    let started = Instant::now();
    while records < expected {
        if let Some(message) = consumer.poll(Duration::from_secs(10)) {
            consumed.bytes += message?.payload().map_or(0, |p| p.len()) as u64;
            consumed.first.get_or_insert_with(Instant::now);
            records += 1;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "consume stalled"
        );
    }
    consumed.last = Some(Instant::now());
    Ok(consumed)
}

/// Send-to-acknowledgement latency of records sent at a steady rate, in milliseconds.
fn produce_latencies(bootstrap: &str) -> anyhow::Result<Vec<f64>> {
    let topic = "bench-latency";
    create_topic(bootstrap, topic, 1)?;
    let producer = producer(bootstrap, "all", "0")?;
    let value = vec![b'x'; RECORD_BYTES];
    let interval = Duration::from_nanos(1_000_000_000 / LATENCY_RATE_PER_SECOND);
    let started = Instant::now();
    for i in 0..LATENCY_RATE_PER_SECOND * LATENCY_SECONDS {
        // Sleep, not spin: on a small machine a spinning client takes a core from the broker.
        let due = started + interval * i as u32;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        send(&producer, topic, &value, Some(Instant::now()))?;
    }
    producer.flush(Duration::from_secs(60))?;
    let mut latencies: Vec<f64> = producer
        .context()
        .latencies_ns
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|&ns| ns as f64 / 1e6)
        .collect();
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 * quantile).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

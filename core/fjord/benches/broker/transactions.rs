//! Transactions beside their baselines, measured in the same run on the same broker:
//! transactional produce (1 KiB records, 1 MiB batches, 8 partitions) committing every
//! 100 ms and every 1,000 records, as a ratio of idempotent produce to the same partitions;
//! then the 100 ms topic consumed with `read_committed`, as a ratio of `read_uncommitted`.
//! Targets (issue 16): at least 0.8 for produce with 100 ms commits, 0.95 for consume.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use super::{Acks, RECORD_BYTES, client, consumer_config, create_topic};

const PARTITIONS: i32 = 8;
const DEADLINE: Duration = Duration::from_secs(300);

/// When a transactional run commits.
#[derive(Debug, Clone, Copy)]
enum CommitEvery {
    Duration(Duration),
    Records(u64),
}

pub(crate) fn measure(bootstrap: &str, volume_mib: u64) -> anyhow::Result<()> {
    let records = (volume_mib << 20) / RECORD_BYTES as u64;
    println!(
        "\ntransactions: {volume_mib} MiB per run, 1 KiB records, 1 MiB batches, {PARTITIONS} partitions"
    );
    println!("{:<52} {:>8} {:>10}", "run", "MB/s", "÷baseline");
    // A first run, not reported, so that no measured run is the one paying for memory the
    // machine touches for the first time.
    create_topic(bootstrap, "bench-warm-up", PARTITIONS)?;
    produce(bootstrap, "bench-warm-up", None, records)?;
    create_topic(bootstrap, "bench-idempotent", PARTITIONS)?;
    let idempotent = produce(bootstrap, "bench-idempotent", None, records)?;
    println!(
        "{:<52} {idempotent:>8.0} {:>10}",
        "produce, idempotent (baseline)", ""
    );
    let mut committed_topic = None;
    for (label, every) in [
        (
            "commit every 100 ms",
            CommitEvery::Duration(Duration::from_millis(100)),
        ),
        ("commit every 1,000 records", CommitEvery::Records(1_000)),
    ] {
        let topic = format!("bench-txn-{}", committed_topic.is_some() as u8);
        create_topic(bootstrap, &topic, PARTITIONS)?;
        let rate = produce(bootstrap, &topic, Some(every), records)?;
        let ratio = rate / idempotent;
        println!(
            "{:<52} {rate:>8.0} {ratio:>10.2}",
            format!("produce, transactional, {label}")
        );
        committed_topic.get_or_insert(topic);
    }
    let topic = committed_topic.unwrap_or_default();
    let uncommitted = consume(bootstrap, &topic, "read_uncommitted", records)?;
    println!(
        "{:<52} {uncommitted:>8.0} {:>10}",
        "consume (100 ms topic), read_uncommitted (baseline)", ""
    );
    let committed = consume(bootstrap, &topic, "read_committed", records)?;
    println!(
        "{:<52} {committed:>8.0} {:>10.2}",
        "consume (100 ms topic), read_committed",
        committed / uncommitted
    );
    Ok(())
}

/// A producer polled by the sending thread itself (both runs alike): the rdkafka crate's
/// `ThreadedProducer` serves delivery reports on a 100 ms poll, which would pace every
/// commit's flush rather than the broker.
fn producer(bootstrap: &str, transactional: bool) -> anyhow::Result<BaseProducer<Acks>> {
    let mut config = client(bootstrap);
    config
        .set("linger.ms", "5")
        .set("batch.size", "1048576")
        .set("message.max.bytes", "2000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("enable.idempotence", "true");
    if transactional {
        config.set("transactional.id", "bench-transactions");
    }
    Ok(config.create_with_context(Acks::default())?)
}

/// MB/s of values from the first send to the last acknowledgement (the last commit).
fn produce(
    bootstrap: &str,
    topic: &str,
    every: Option<CommitEvery>,
    records: u64,
) -> anyhow::Result<f64> {
    let producer = producer(bootstrap, every.is_some())?;
    if every.is_some() {
        producer.init_transactions(DEADLINE)?;
    }
    let value = vec![b'x'; RECORD_BYTES];
    let started = Instant::now();
    let mut sent = 0u64;
    while sent < records {
        if every.is_some() {
            producer.begin_transaction()?;
        }
        let (began, first) = (Instant::now(), sent);
        while sent < records
            && match every {
                Some(CommitEvery::Duration(period)) => began.elapsed() < period,
                Some(CommitEvery::Records(count)) => sent - first < count,
                None => true,
            }
        {
            send(&producer, topic, &value)?;
            sent += 1;
        }
        if every.is_some() {
            drain(&producer)?;
            producer.commit_transaction(DEADLINE)?;
        }
    }
    producer.flush(DEADLINE)?;
    let elapsed = started.elapsed().as_secs_f64();
    let context = producer.context();
    anyhow::ensure!(
        context.delivered.load(Ordering::Relaxed) == records
            && context.failed.load(Ordering::Relaxed) == 0,
        "not every record was acknowledged"
    );
    Ok((records * RECORD_BYTES as u64) as f64 / elapsed / 1e6)
}

/// Waits until every record sent is acknowledged, serving delivery reports as they come.
/// (The rdkafka crate's own flush, which `commit_transaction` calls, can sleep a 100 ms
/// poll after the last report: done here first, its flush finds nothing left.)
fn drain(producer: &BaseProducer<Acks>) -> anyhow::Result<()> {
    let deadline = Instant::now() + DEADLINE;
    while producer.in_flight_count() > 0 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "records not acknowledged in time"
        );
        producer.poll(Duration::from_millis(1));
    }
    Ok(())
}

/// Sends one record, serving delivery reports while the queue is full.
fn send(producer: &BaseProducer<Acks>, topic: &str, value: &[u8]) -> anyhow::Result<()> {
    let mut record =
        BaseRecord::<[u8], [u8], _>::with_opaque_to(topic, Box::new(None)).payload(value);
    loop {
        match producer.send(record) {
            Ok(()) => {
                producer.poll(Duration::ZERO);
                return Ok(());
            }
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                back,
            )) => {
                record = back;
                producer.poll(Duration::from_millis(1));
            }
            Err((error, _)) => return Err(error.into()),
        }
    }
}

/// MB/s of values reading all `records` of `topic` with one consumer, timed from the first
/// record received to the last (markers are not records: the count, not the high watermark,
/// says when it is done).
fn consume(bootstrap: &str, topic: &str, isolation: &str, records: u64) -> anyhow::Result<f64> {
    let consumer: BaseConsumer = consumer_config(bootstrap, "bench-transactions")
        .set("isolation.level", isolation)
        .create()?;
    let mut list = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        list.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&list)?;
    let (mut count, mut bytes, mut first) = (0u64, 0u64, None);
    let started = Instant::now();
    while count < records {
        if let Some(message) = consumer.poll(Duration::from_secs(10)) {
            bytes += message?.payload().map_or(0, |p| p.len()) as u64;
            first.get_or_insert_with(Instant::now);
            count += 1;
        }
        anyhow::ensure!(started.elapsed() < DEADLINE, "consume stalled at {count}");
    }
    let first = first.unwrap_or(started);
    Ok(bytes as f64 / first.elapsed().as_secs_f64().max(1e-3) / 1e6)
}

//! Transactions with the rdkafka crate (librdkafka, built from source by rdkafka-sys) against a
//! real `fjord serve`: a committed and an aborted transaction, read back by a read_committed
//! and a read_uncommitted consumer. Each read ends at a plain sentinel record written after
//! both transactions ended, so what is not there is known from the log, not from a pause.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::ensure;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

#[allow(dead_code)]
#[path = "support/fjord_serve.rs"]
mod fjord_serve;

use fjord_serve::FjordServe;

const DEADLINE: Duration = Duration::from_secs(60);
const TOPIC: &str = "rdkafka-txn";

fn config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3");
    config
}

fn send(producer: &BaseProducer, values: &[&str]) -> anyhow::Result<()> {
    for value in values {
        producer
            .send(
                BaseRecord::<(), str>::to(TOPIC)
                    .payload(*value)
                    .partition(0),
            )
            .map_err(|(error, _)| error)?;
    }
    producer.flush(DEADLINE)?;
    Ok(())
}

/// The values of partition 0 up to the sentinel, under `isolation`.
fn read(bootstrap: &str, isolation: &str) -> anyhow::Result<Vec<String>> {
    let consumer: BaseConsumer = config(bootstrap)
        .set("group.id", "rdkafka-txn-reader")
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(TOPIC, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + DEADLINE;
    let mut values = Vec::new();
    loop {
        ensure!(Instant::now() < deadline, "no sentinel after {values:?}");
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let value = String::from_utf8(message?.payload().unwrap_or_default().to_vec())?;
        if value == "sentinel" {
            return Ok(values);
        }
        values.push(value);
    }
}

fn run(data_dir: &Path) -> anyhow::Result<()> {
    let broker = FjordServe::start(data_dir, &[])?;
    let bootstrap = broker.bootstrap.as_str();
    let producer: BaseProducer = config(bootstrap)
        .set("transactional.id", "rdkafka-txn")
        .set("transaction.timeout.ms", "60000")
        .create()?;
    producer.init_transactions(DEADLINE)?;
    producer.begin_transaction()?;
    send(&producer, &["kept-1", "kept-2"])?;
    producer.commit_transaction(DEADLINE)?;
    producer.begin_transaction()?;
    send(&producer, &["dropped-1", "dropped-2"])?;
    producer.abort_transaction(DEADLINE)?;
    let plain: BaseProducer = config(bootstrap).create()?;
    send(&plain, &["sentinel"])?;

    assert_eq!(read(bootstrap, "read_committed")?, ["kept-1", "kept-2"]);
    assert_eq!(
        read(bootstrap, "read_uncommitted")?,
        ["kept-1", "kept-2", "dropped-1", "dropped-2"]
    );
    Ok(())
}

#[test]
fn a_committed_transaction_is_read_and_an_aborted_one_only_uncommitted() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    run(dir.path())
}

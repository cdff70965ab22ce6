//! The rdkafka crate (librdkafka 2.12, built from source by rdkafka-sys) against a real
//! `fjord serve` process: produce and consume with every codec, keys, headers and null values;
//! the idempotent producer; a consumer group whose commits survive a SIGKILL of the broker;
//! lookups by timestamp; and the admin API (topics, configs, partitions, records).
//!
//! Each test starts its own broker on a free port with its own data directory. Waits are
//! bounded by deadlines and end as soon as the awaited data arrives; nothing here depends on
//! how fast the machine is.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// How long any one wait may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(60);

#[allow(dead_code)]
#[path = "support/fjord_serve.rs"]
mod fjord_serve;

use fjord_serve::FjordServe;

/// A broker with the group rebalance delay off, so group tests do not wait for it.
fn start_broker(data_dir: &Path) -> anyhow::Result<FjordServe> {
    FjordServe::start(data_dir, BROKER_ARGS)
}

fn start_broker_on(data_dir: &Path, port: u16) -> anyhow::Result<FjordServe> {
    FjordServe::start_on(data_dir, port, BROKER_ARGS)
}

const BROKER_ARGS: &[&str] = &["--group-initial-rebalance-delay-ms", "0"];

fn config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3");
    config
}

fn admin(bootstrap: &str) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    Ok(config(bootstrap).create()?)
}

fn options() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(DEADLINE))
}

fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(future))
}

fn create_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> anyhow::Result<()> {
    let mut new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (name, value) in configs {
        new_topic = new_topic.set(name, value);
    }
    for result in block_on(admin(bootstrap)?.create_topics([&new_topic], &options()))?? {
        result.map_err(|(topic, code)| anyhow::anyhow!("creating {topic}: {code}"))?;
    }
    Ok(())
}

/// Sends every record, then waits until each one is acknowledged; fails on the first
/// delivery error.
fn produce_all<'a>(
    producer: &BaseProducer,
    records: impl IntoIterator<Item = BaseRecord<'a, str, str>>,
) -> anyhow::Result<()> {
    for mut record in records {
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
                Err((error, _)) => return Err(error.into()),
            }
        }
    }
    producer.flush(DEADLINE)?;
    Ok(())
}

/// A consumer that only reads partitions assigned by hand (no group membership).
fn reader(bootstrap: &str) -> anyhow::Result<BaseConsumer> {
    Ok(config(bootstrap)
        .set("group.id", "fjord-test-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()?)
}

/// Polls until `count` records arrived, failing on a consumer error or at the deadline.
fn poll_records(consumer: &BaseConsumer, count: usize) -> anyhow::Result<Vec<OwnedMessage>> {
    let deadline = Instant::now() + DEADLINE;
    let mut records = Vec::with_capacity(count);
    while records.len() < count {
        ensure!(
            Instant::now() < deadline,
            "only {} of {count} records arrived",
            records.len()
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => records.push(message.detach()),
            Some(Err(error)) => return Err(error.into()),
            None => {}
        }
    }
    Ok(records)
}

/// Every record of one partition, from offset 0.
fn read_partition(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    count: usize,
) -> anyhow::Result<Vec<OwnedMessage>> {
    let consumer = reader(bootstrap)?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    poll_records(&consumer, count)
}

fn header_value(message: &OwnedMessage, key: &str) -> Option<String> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|header| header.key == key)
        .and_then(|header| header.value)
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

#[test]
fn every_codec_round_trips_keys_headers_and_null_values() -> anyhow::Result<()> {
    const RECORDS: usize = 500;
    let data = tempfile::tempdir()?;
    let broker = start_broker(data.path())?;
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        create_topic(&broker.bootstrap, &topic, 1, &[])?;
        let producer: BaseProducer = config(&broker.bootstrap)
            .set("compression.type", codec)
            .set("linger.ms", "5")
            .create()?;
        let keys: Vec<String> = (0..RECORDS).map(|i| format!("key-{i}")).collect();
        let values: Vec<String> = (0..RECORDS)
            .map(|i| format!("{codec} value {i} {}", "abc".repeat(i % 40)))
            .collect();
        let indexes: Vec<String> = (0..RECORDS).map(|i| i.to_string()).collect();
        produce_all(
            &producer,
            (0..RECORDS).map(|i| {
                let headers = OwnedHeaders::new().insert(Header {
                    key: "index",
                    value: Some(indexes[i].as_str()),
                });
                let record = BaseRecord::to(&topic)
                    .key(keys[i].as_str())
                    .headers(headers);
                // Every tenth record is a tombstone (null value).
                if i % 10 == 9 {
                    record
                } else {
                    record.payload(values[i].as_str())
                }
            }),
        )?;
        let records = read_partition(&broker.bootstrap, &topic, 0, RECORDS)?;
        for (i, record) in records.iter().enumerate() {
            assert_eq!(record.offset(), i as i64, "{codec}: offset");
            assert_eq!(record.key(), Some(keys[i].as_bytes()), "{codec}: key {i}");
            let expected = (i % 10 != 9).then(|| values[i].as_bytes());
            assert_eq!(record.payload(), expected, "{codec}: value {i}");
            assert_eq!(header_value(record, "index"), Some(indexes[i].clone()));
        }
    }
    Ok(())
}

#[test]
fn idempotent_producer_keeps_order_without_duplicates() -> anyhow::Result<()> {
    const RECORDS: usize = 5_000;
    let data = tempfile::tempdir()?;
    let broker = start_broker(data.path())?;
    create_topic(&broker.bootstrap, "payments", 1, &[])?;
    let producer: BaseProducer = config(&broker.bootstrap)
        .set("enable.idempotence", "true")
        .set("max.in.flight.requests.per.connection", "5")
        .set("batch.num.messages", "100")
        .set("linger.ms", "1")
        .create()?;
    let values: Vec<String> = (0..RECORDS).map(|i| format!("payment-{i}")).collect();
    produce_all(
        &producer,
        values
            .iter()
            .map(|v| BaseRecord::to("payments").payload(v.as_str())),
    )?;
    let records = read_partition(&broker.bootstrap, "payments", 0, RECORDS)?;
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.offset(), i as i64);
        assert_eq!(record.payload(), Some(values[i].as_bytes()));
    }
    let (low, high) = reader(&broker.bootstrap)?.fetch_watermarks("payments", 0, DEADLINE)?;
    assert_eq!(
        (low, high),
        (0, RECORDS as i64),
        "no duplicates were appended"
    );
    Ok(())
}

fn group_member(bootstrap: &str, group: &str) -> anyhow::Result<BaseConsumer> {
    Ok(config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .create()?)
}

#[test]
fn group_commits_survive_broker_sigkill() -> anyhow::Result<()> {
    const PARTITIONS: i32 = 3;
    let data = tempfile::tempdir()?;
    let broker = start_broker(data.path())?;
    create_topic(&broker.bootstrap, "orders", PARTITIONS, &[])?;
    let producer: BaseProducer = config(&broker.bootstrap).create()?;
    let keys: Vec<String> = (0..30).map(|i| format!("customer-{i}")).collect();
    produce_all(
        &producer,
        keys.iter()
            .map(|k| BaseRecord::to("orders").key(k.as_str()).payload("old")),
    )?;

    let member = group_member(&broker.bootstrap, "billing")?;
    member.subscribe(&["orders"])?;
    let first = poll_records(&member, 30)?;
    assert!(first.iter().all(|r| r.payload() == Some(b"old".as_slice())));
    member.commit_consumer_state(CommitMode::Sync)?;
    let groups = member.fetch_group_list(Some("billing"), DEADLINE)?;
    let described = groups
        .groups()
        .first()
        .context("group billing not listed")?;
    assert_eq!(described.state(), "Stable");
    assert_eq!(described.members().len(), 1);
    drop(member);
    drop(producer);

    let port = broker.port()?;
    broker.kill()?;
    let broker = start_broker_on(data.path(), port)?;

    let member = group_member(&broker.bootstrap, "billing")?;
    let mut partitions = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        partitions.add_partition("orders", partition);
    }
    let committed = member.committed_offsets(partitions, DEADLINE)?;
    let mut total = 0;
    for element in committed.elements() {
        let (_, high) = member.fetch_watermarks("orders", element.partition(), DEADLINE)?;
        assert_eq!(element.offset(), Offset::Offset(high), "{element:?}");
        total += high;
    }
    assert_eq!(total, 30);

    // The group resumes at its commits: the first records it sees are the new ones.
    let producer: BaseProducer = config(&broker.bootstrap).create()?;
    produce_all(
        &producer,
        keys[..5]
            .iter()
            .map(|k| BaseRecord::to("orders").key(k.as_str()).payload("new")),
    )?;
    member.subscribe(&["orders"])?;
    let resumed = poll_records(&member, 5)?;
    assert!(
        resumed
            .iter()
            .all(|r| r.payload() == Some(b"new".as_slice())),
        "the group re-read committed records"
    );
    Ok(())
}

#[test]
fn offsets_for_times_finds_the_first_record_at_or_after() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let broker = start_broker(data.path())?;
    create_topic(&broker.bootstrap, "readings", 1, &[])?;
    let producer: BaseProducer = config(&broker.bootstrap).set("linger.ms", "0").create()?;
    let base_ms = 1_700_000_000_000_i64;
    produce_all(
        &producer,
        (0..10).map(|i| {
            BaseRecord::to("readings")
                .payload("reading")
                .timestamp(base_ms + i * 1_000)
        }),
    )?;
    let consumer = reader(&broker.bootstrap)?;
    for (timestamp_ms, expected) in [
        (base_ms - 5, Offset::Offset(0)),
        (base_ms + 3_000, Offset::Offset(3)),
        (base_ms + 3_001, Offset::Offset(4)),
        (base_ms + 9_000, Offset::Offset(9)),
        (base_ms + 9_001, Offset::End),
    ] {
        let mut query = TopicPartitionList::new();
        query.add_partition_offset("readings", 0, Offset::Offset(timestamp_ms))?;
        let answer = consumer.offsets_for_times(query, DEADLINE)?;
        let element = answer.find_partition("readings", 0).context("no answer")?;
        element.error()?;
        assert_eq!(element.offset(), expected, "timestamp {timestamp_ms}");
    }
    let records = read_partition(&broker.bootstrap, "readings", 0, 10)?;
    for (i, record) in records.iter().enumerate() {
        let created = record.timestamp().to_millis().context("no timestamp")?;
        assert_eq!(created, base_ms + i as i64 * 1_000);
    }
    Ok(())
}

#[test]
fn admin_manages_topics_configs_partitions_and_records() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let broker = start_broker(data.path())?;
    let admin = admin(&broker.bootstrap)?;
    create_topic(
        &broker.bootstrap,
        "inventory",
        2,
        &[("retention.ms", "3600000"), ("cleanup.policy", "compact")],
    )?;

    let configs = |admin: &AdminClient<DefaultClientContext>| -> anyhow::Result<_> {
        let resource = ResourceSpecifier::Topic("inventory");
        let mut results = block_on(admin.describe_configs([&resource], &options()))??;
        let result = results.pop().context("no describe result")??;
        Ok(result
            .entries
            .into_iter()
            .filter_map(|entry| Some((entry.name, entry.value?)))
            .collect::<BTreeMap<_, _>>())
    };
    let described = configs(&admin)?;
    assert_eq!(described["retention.ms"], "3600000");
    assert_eq!(described["cleanup.policy"], "compact");

    let change = AlterConfig::new(ResourceSpecifier::Topic("inventory"))
        .set("retention.ms", "7200000")
        .set("cleanup.policy", "compact");
    for result in block_on(admin.alter_configs([&change], &options()))?? {
        result.map_err(|(resource, code)| anyhow::anyhow!("altering {resource:?}: {code}"))?;
    }
    assert_eq!(configs(&admin)?["retention.ms"], "7200000");

    let grow = NewPartitions::new("inventory", 5);
    for result in block_on(admin.create_partitions([&grow], &options()))?? {
        result.map_err(|(topic, code)| anyhow::anyhow!("growing {topic}: {code}"))?;
    }
    let metadata = admin.inner().fetch_metadata(Some("inventory"), DEADLINE)?;
    assert_eq!(metadata.topics()[0].partitions().len(), 5);

    // DeleteRecords moves the log start offset.
    let producer: BaseProducer = config(&broker.bootstrap).create()?;
    produce_all(
        &producer,
        (0..10).map(|_| {
            BaseRecord::to("inventory")
                .partition(0)
                .key("sku")
                .payload("1")
        }),
    )?;
    let mut before = TopicPartitionList::new();
    before.add_partition_offset("inventory", 0, Offset::Offset(4))?;
    let deleted = block_on(admin.delete_records(&before, &options()))??;
    let element = deleted
        .find_partition("inventory", 0)
        .context("no answer")?;
    element.error()?;
    assert_eq!(element.offset(), Offset::Offset(4));
    let (low, high) = reader(&broker.bootstrap)?.fetch_watermarks("inventory", 0, DEADLINE)?;
    assert_eq!((low, high), (4, 10));

    // Kafka's error codes for bad requests.
    let bad_name = NewTopic::new("bad/name", 1, TopicReplication::Fixed(1));
    let bad_config =
        NewTopic::new("fine", 1, TopicReplication::Fixed(1)).set("retention.ms", "soon");
    let results = block_on(admin.create_topics([&bad_name, &bad_config], &options()))??;
    let codes: Vec<_> = results
        .into_iter()
        .map(|r| r.err().map(|(_, code)| code))
        .collect();
    assert_eq!(
        codes,
        [
            Some(RDKafkaErrorCode::InvalidTopic),
            Some(RDKafkaErrorCode::InvalidConfig)
        ]
    );

    for result in block_on(admin.delete_topics(&["inventory"], &options()))?? {
        result.map_err(|(topic, code)| anyhow::anyhow!("deleting {topic}: {code}"))?;
    }
    let metadata = admin.inner().fetch_metadata(None, DEADLINE)?;
    assert!(metadata.topics().iter().all(|t| t.name() != "inventory"));
    Ok(())
}

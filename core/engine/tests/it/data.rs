//! Append, read and wait, through the engine alone.

use std::sync::Arc;

use fjord_engine::{
    Error, FetchPartition, Isolation, OFFSETS_TOPIC, Offset, Origin, PartitionIndex,
};
use fjord_record::{BatchBuilder, Compression, NewRecord};

use crate::support::{START_MS, TestEngine, batch};

fn fetch(topic: &str, partition: i32, offset: i64) -> Arc<[FetchPartition]> {
    Arc::from(vec![FetchPartition {
        topic: topic.into(),
        partition: PartitionIndex(partition),
        offset: Offset(offset),
        max_bytes: 1 << 20,
    }])
}

#[tokio::test]
async fn appends_are_read_back_and_stamp_the_last_append_time() -> anyhow::Result<()> {
    let test = TestEngine::open().await?;
    let engine = &test.engine;
    test.topic("events", 2, &[]).await;
    assert_eq!(engine.last_append_ms("events", PartitionIndex(1))?, None);
    let first = engine
        .append(
            "events",
            PartitionIndex(1),
            batch(10, 10, START_MS),
            Origin::Internal,
        )
        .await?;
    let second = engine
        .append(
            "events",
            PartitionIndex(1),
            batch(5, 5, START_MS),
            Origin::Client,
        )
        .await?;
    assert_eq!(
        (first.base_offset, first.last_offset),
        (Offset(0), Offset(9))
    );
    assert_eq!(second.base_offset, Offset(10));
    assert_eq!(
        engine.last_append_ms("events", PartitionIndex(1))?,
        Some(START_MS)
    );
    assert_eq!(
        engine.offsets("events", PartitionIndex(1))?.high_watermark,
        Offset(15)
    );
    assert_eq!(
        engine.offsets("events", PartitionIndex(0))?.high_watermark,
        Offset(0)
    );
    let reads = engine
        .read(fetch("events", 1, 10), 1 << 20, Isolation::HighWatermark)
        .await;
    let read = reads.into_iter().next().expect("one result")?;
    let records: i64 = match &read.records {
        fjord_engine::Batches::File(range) => range.offsets().end.0 - range.offsets().start.0,
        fjord_engine::Batches::Memory(bytes) => fjord_record::batches(bytes)
            .map(|b| i64::from(b.expect("stored batch").header.records_count))
            .sum(),
    };
    assert_eq!(records, 5, "from offset 10: the second batch only");
    Ok(())
}

#[tokio::test]
async fn clients_may_not_write_internal_topics_nor_control_batches() -> anyhow::Result<()> {
    let test = TestEngine::open().await?;
    let engine = &test.engine;
    for origin in [Origin::Client, Origin::Internal] {
        let refused = engine
            .append(
                OFFSETS_TOPIC,
                PartitionIndex(0),
                batch(1, 1, START_MS),
                origin,
            )
            .await;
        assert!(matches!(refused, Err(Error::InternalTopicWrite { .. })));
    }
    test.topic("plain", 1, &[]).await;
    // A marker; a batch written on a producer's behalf (no sequence); a transactional batch
    // with no transaction open.
    for (control, sequence) in [(true, 0), (false, -1), (false, 0)] {
        let mut builder = BatchBuilder::new(Compression::None);
        builder.control = control;
        builder.transactional = true;
        builder.producer_id = 7;
        builder.producer_epoch = 0;
        builder.base_sequence = sequence;
        builder.push(&NewRecord {
            timestamp_ms: START_MS,
            key: Some(b"k"),
            value: Some(b"v"),
            headers: &[],
        })?;
        let bytes = bytes::Bytes::from(builder.build()?);
        let refused = engine
            .append("plain", PartitionIndex(0), bytes, Origin::Client)
            .await;
        let expected = if sequence == 0 && !control {
            matches!(refused, Err(Error::PartitionNotInTransaction { .. }))
        } else {
            matches!(refused, Err(Error::ForbiddenBatchAttribute { .. }))
        };
        assert!(expected, "{refused:?}");
    }
    assert_eq!(
        engine.offsets("plain", PartitionIndex(0))?.log_end_offset,
        Offset(0),
        "nothing written"
    );
    Ok(())
}

#[tokio::test]
async fn a_waiter_wakes_for_its_own_partitions_only() -> anyhow::Result<()> {
    let test = TestEngine::open().await?;
    let engine = &test.engine;
    test.topic("watched", 2, &[]).await;
    let mut waiter = engine.waiter([("watched".to_string(), PartitionIndex(0))]);
    // A deadline already passed: `changed` answers from what already happened.
    let now = tokio::time::Instant::now();
    assert!(!waiter.changed(now).await, "nothing appended yet");
    engine
        .append(
            "watched",
            PartitionIndex(1),
            batch(1, 1, START_MS),
            Origin::Internal,
        )
        .await?;
    assert!(!waiter.changed(now).await, "partition 1 is not watched");
    engine
        .append(
            "watched",
            PartitionIndex(0),
            batch(1, 1, START_MS),
            Origin::Internal,
        )
        .await?;
    assert!(waiter.changed(now).await, "partition 0 moved");
    assert!(!waiter.changed(now).await, "seen once");
    Ok(())
}

#[test]
fn the_engine_runs_on_a_current_thread_runtime() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let test = TestEngine::open().await?;
        test.topic("single", 1, &[("flush.messages", "1")]).await;
        let appended = test
            .engine
            .append(
                "single",
                PartitionIndex(0),
                batch(3, 3, START_MS),
                Origin::Internal,
            )
            .await?;
        assert_eq!(appended.last_offset, Offset(2));
        let reads = test
            .engine
            .read(fetch("single", 0, 0), 1 << 20, Isolation::HighWatermark)
            .await;
        assert!(
            reads
                .into_iter()
                .all(|r| r.is_ok_and(|r| !r.records.is_empty()))
        );
        let engine = Arc::clone(&test.engine);
        drop(test.engine);
        engine.close().await?;
        anyhow::Ok(())
    })
}

#[tokio::test]
async fn every_partition_finds_its_own_log_after_a_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clock: Arc<dyn fjord_engine::Clock> = Arc::new(fjord_engine::ManualClock::new(START_MS));
    let config = fjord_engine::EngineConfig::new(dir.path().to_path_buf());
    let engine = Arc::new(fjord_engine::Engine::open(config.clone(), Arc::clone(&clock)).await?);
    // Names on both sides of `__consumer_offsets` in byte order, partitions of several sizes.
    let topics = [("zeta", 3), ("alpha", 2), ("Upper", 1), ("mid_dle", 4)];
    for (name, partitions) in topics {
        engine
            .create_topic(name, partitions, Default::default(), false)
            .await?;
        for partition in 0..partitions {
            let count = (partition + 1) as usize + name.len();
            engine
                .append(
                    name,
                    PartitionIndex(partition),
                    batch(count, 1, START_MS),
                    Origin::Internal,
                )
                .await?;
        }
    }
    engine.close().await?;
    let engine = Arc::new(fjord_engine::Engine::open(config, clock).await?);
    for (name, partitions) in topics {
        for partition in 0..partitions {
            let expected = i64::from(partition + 1) + name.len() as i64;
            assert_eq!(
                engine
                    .offsets(name, PartitionIndex(partition))?
                    .log_end_offset,
                Offset(expected),
                "{name}-{partition}"
            );
        }
    }
    assert_eq!(
        engine
            .offsets(OFFSETS_TOPIC, PartitionIndex(0))?
            .log_end_offset,
        Offset(0)
    );
    Ok(())
}

#[tokio::test]
async fn only_the_brokers_own_topics_are_internal() -> anyhow::Result<()> {
    let test = TestEngine::open().await?;
    test.topic("__users_own", 1, &[]).await;
    let appended = test
        .engine
        .append(
            "__users_own",
            PartitionIndex(0),
            batch(1, 1, START_MS),
            Origin::Client,
        )
        .await?;
    assert_eq!(appended.base_offset, Offset(0));
    Ok(())
}

/// Kafka's fetch budget (KIP-74) across partitions, whatever order the reads finish in: a
/// partition with nothing new takes nothing; the first with data gets its first batch whole
/// even past the total; the ones after get only whole batches within what is left.
#[tokio::test]
async fn a_read_spends_its_budget_in_partition_order() -> anyhow::Result<()> {
    let test = TestEngine::open().await?;
    let engine = &test.engine;
    test.topic("budget", 4, &[]).await;
    // Batches larger than `index.interval.bytes`, so every batch boundary is indexed and a
    // read may end at any of them.
    let one_batch = batch(400, 400, START_MS);
    let batch_bytes = one_batch.len();
    assert!(batch_bytes > 4096);
    for partition in 1..4 {
        for _ in 0..3 {
            let batches = batch(400, 400, START_MS);
            engine
                .append("budget", PartitionIndex(partition), batches, Origin::Client)
                .await?;
        }
    }
    let wanted = |total_batches: usize| {
        let partitions: Arc<[FetchPartition]> = (0..4)
            .map(|partition| FetchPartition {
                topic: "budget".into(),
                partition: PartitionIndex(partition),
                offset: Offset(0),
                max_bytes: 2 * batch_bytes,
            })
            .collect();
        (partitions, total_batches * batch_bytes)
    };
    let batches_read = |reads: Vec<fjord_engine::Result<fjord_engine::PartitionRead>>| {
        reads
            .into_iter()
            .map(|read| read.map(|r| r.records.len() / batch_bytes))
            .collect::<Result<Vec<_>, _>>()
    };

    // Room for three batches: two from partition 1 (its own limit), one from partition 2.
    let (partitions, total) = wanted(3);
    let reads = engine
        .read(partitions, total, Isolation::HighWatermark)
        .await;
    assert_eq!(batches_read(reads)?, vec![0, 2, 1, 0]);

    // A total smaller than one batch: the first partition with data still gets one whole.
    let (partitions, _) = wanted(0);
    let reads = engine.read(partitions, 1, Isolation::HighWatermark).await;
    assert_eq!(batches_read(reads)?, vec![0, 1, 0, 0]);

    // Room for everything the partition limits allow.
    let (partitions, total) = wanted(100);
    let reads = engine
        .read(partitions, total, Isolation::HighWatermark)
        .await;
    assert_eq!(batches_read(reads)?, vec![0, 2, 2, 2]);

    // Partition limits below one batch, the total far above them (the partitions are read at
    // once): only the first partition with data gets a batch, whole; for the others it does
    // not fit their limit.
    let partitions: Arc<[FetchPartition]> = (0..4)
        .map(|partition| FetchPartition {
            topic: "budget".into(),
            partition: PartitionIndex(partition),
            offset: Offset(0),
            max_bytes: batch_bytes / 2,
        })
        .collect();
    let reads = engine
        .read(partitions, 10 * batch_bytes, Isolation::HighWatermark)
        .await;
    assert_eq!(batches_read(reads)?, vec![0, 1, 0, 0]);
    Ok(())
}

/// A request naming one partition twice keeps its appends in request order, so a
/// producer's sequence numbers arrive as it sent them.
#[tokio::test]
async fn a_partition_named_twice_is_appended_in_request_order() -> anyhow::Result<()> {
    let test = TestEngine::open().await?;
    let engine = &test.engine;
    test.topic("twice", 2, &[]).await;
    let produced = |sequence: i32| -> anyhow::Result<bytes::Bytes> {
        let mut builder = BatchBuilder::new(Compression::None);
        builder.producer_id = 42;
        builder.producer_epoch = 0;
        builder.base_sequence = sequence;
        for _ in 0..3 {
            builder.push(&NewRecord {
                timestamp_ms: START_MS,
                key: Some(b"key"),
                value: Some(b"value"),
                headers: &[],
            })?;
        }
        Ok(bytes::Bytes::from(builder.build()?))
    };
    let request = |partition: i32, batches| fjord_engine::AppendRequest {
        topic: "twice".into(),
        partition: PartitionIndex(partition),
        batches,
    };
    let requests = vec![
        request(0, produced(0)?),
        request(1, batch(2, 2, START_MS)),
        request(0, produced(3)?),
    ];
    let results = engine
        .append_all(requests, Origin::Client, fjord_engine::Acks::All)
        .await;
    let bases = results
        .into_iter()
        .map(|r| r.map(|appended| appended.base_offset))
        .collect::<Result<Vec<_>, _>>()?;
    assert_eq!(bases, vec![Offset(0), Offset(0), Offset(3)]);
    Ok(())
}

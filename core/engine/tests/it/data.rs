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
    for (control, transactional) in [(true, true), (false, true)] {
        let mut builder = BatchBuilder::new(Compression::None);
        builder.control = control;
        builder.transactional = transactional;
        builder.producer_id = 7;
        builder.producer_epoch = 0;
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
        assert!(
            matches!(refused, Err(Error::ForbiddenBatchAttribute { .. })),
            "{refused:?}"
        );
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

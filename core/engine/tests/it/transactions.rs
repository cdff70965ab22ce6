//! Transactions through the engine: what the Kafka transactional APIs do, driven in process
//! with a manual clock.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fjord_engine::{
    Commit, Engine, EngineConfig, Error, FetchPartition, HookPoint, Hooks, Identity, Isolation,
    LeaderEpoch, ManualClock, Offset, Origin, PartitionIndex, ProducerEpoch, ProducerId,
    TransactionState,
};
use fjord_record::{BatchBuilder, Compression, NewRecord};

use crate::support::{START_MS, TestEngine};

const TIMEOUT_MS: i32 = 60_000;
const NOT_A_MEMBER: Identity<'static> = Identity {
    member_id: "",
    generation_id: -1,
    group_instance_id: None,
};

type Producer = (ProducerId, ProducerEpoch);

/// A transactional batch of `count` records from `producer`, starting at `sequence`.
fn transactional(producer: Producer, sequence: i32, count: usize) -> Bytes {
    let mut builder = BatchBuilder::new(Compression::None);
    builder.transactional = true;
    builder.producer_id = producer.0.0;
    builder.producer_epoch = producer.1.0;
    builder.base_sequence = sequence;
    for i in 0..count {
        let value = format!("value-{i}");
        builder
            .push(&NewRecord {
                timestamp_ms: START_MS,
                key: None,
                value: Some(value.as_bytes()),
                headers: &[],
            })
            .expect("record fits");
    }
    Bytes::from(builder.build().expect("batch builds"))
}

fn partition(topic: &str, index: i32) -> (String, PartitionIndex) {
    (topic.to_string(), PartitionIndex(index))
}

/// Offsets and control flags of the batches a read under `isolation` returns, and the
/// aborted transactions it names.
async fn read(
    engine: &Engine,
    topic: &str,
    isolation: Isolation,
) -> anyhow::Result<(Vec<(i64, bool)>, Vec<(i64, i64)>)> {
    let fetch = Arc::from(vec![FetchPartition {
        topic: topic.into(),
        partition: PartitionIndex(0),
        offset: Offset(0),
        max_bytes: 1 << 20,
    }]);
    let read = engine
        .read(fetch, 1 << 20, isolation)
        .await
        .into_iter()
        .next()
        .expect("one result")?;
    let bytes = read.records.into_bytes()?;
    let batches = fjord_record::batches(&bytes)
        .map(|b| b.map(|b| (b.header.base_offset, b.header.attributes.is_control())))
        .collect::<Result<Vec<_>, _>>()?;
    let aborted = read
        .aborted_transactions
        .iter()
        .map(|a| (a.producer_id.0, a.first_offset.0))
        .collect();
    Ok((batches, aborted))
}

async fn begin(engine: &Engine, id: &str, partitions: &[(String, PartitionIndex)]) -> Producer {
    let producer = engine
        .init_producer_id(Some(id), TIMEOUT_MS, None)
        .await
        .expect("producer initialised");
    engine
        .add_partitions_to_transaction(id, producer, partitions)
        .await
        .expect("partitions added");
    producer
}

async fn append(engine: &Engine, topic: &str, batch: Bytes) -> Result<Offset, Error> {
    let appended = engine
        .append(topic, PartitionIndex(0), batch, Origin::Client)
        .await?;
    Ok(appended.base_offset)
}

fn state(engine: &Engine, id: &str) -> TransactionState {
    engine.transactions().describe(&[id.to_string()])[0]
        .as_ref()
        .expect("known id")
        .state
}

#[tokio::test]
async fn committed_and_aborted_transactions_are_read_as_kafka_reads_them() -> anyhow::Result<()> {
    let test = TestEngine::open().await?;
    let engine = &test.engine;
    test.topic("orders", 1, &[]).await;
    let one = begin(engine, "one", &[partition("orders", 0)]).await;
    let two = begin(engine, "two", &[partition("orders", 0)]).await;
    assert_eq!(
        append(engine, "orders", transactional(one, 0, 3)).await?,
        Offset(0)
    );
    assert_eq!(
        append(engine, "orders", transactional(two, 0, 2)).await?,
        Offset(3)
    );
    let offsets = engine.offsets("orders", PartitionIndex(0))?;
    assert_eq!(offsets.high_watermark, Offset(5));
    assert_eq!(offsets.last_stable_offset, Offset(0), "both open");
    let (visible, _) = read(engine, "orders", Isolation::LastStable).await?;
    assert!(
        visible.is_empty(),
        "read_committed sees nothing: {visible:?}"
    );

    engine.end_transaction("two", two, false).await?;
    assert_eq!(state(engine, "two"), TransactionState::CompleteAbort);
    assert_eq!(
        engine
            .offsets("orders", PartitionIndex(0))?
            .last_stable_offset,
        Offset(0),
        "one is still open before two's data"
    );
    engine.end_transaction("one", one, true).await?;
    // A retried EndTxn whose answer was lost succeeds again.
    engine.end_transaction("one", one, true).await?;
    assert_eq!(state(engine, "one"), TransactionState::CompleteCommit);
    let offsets = engine.offsets("orders", PartitionIndex(0))?;
    assert_eq!(offsets.high_watermark, Offset(7), "two markers");
    assert_eq!(offsets.last_stable_offset, Offset(7));

    let (batches, aborted) = read(engine, "orders", Isolation::LastStable).await?;
    assert_eq!(
        batches,
        [(0, false), (3, false), (5, true), (6, true)],
        "data, then two's ABORT marker, then one's COMMIT marker"
    );
    assert_eq!(aborted, [(two.0.0, 3)], "the reader drops two's batch");
    let (_, aborted) = read(engine, "orders", Isolation::HighWatermark).await?;
    assert!(aborted.is_empty(), "read_uncommitted gets no aborted list");
    Ok(())
}

#[tokio::test]
async fn a_partition_must_join_the_transaction_before_it_is_written() -> anyhow::Result<()> {
    let test = TestEngine::open().await?;
    let engine = &test.engine;
    test.topic("joined", 1, &[]).await;
    test.topic("other", 1, &[]).await;
    let producer = begin(engine, "strict", &[partition("joined", 0)]).await;
    let refused = append(engine, "other", transactional(producer, 0, 1)).await;
    assert!(
        matches!(refused, Err(Error::PartitionNotInTransaction { .. })),
        "{refused:?}"
    );
    // Internal topics never join a transaction; the group's offsets go through AddOffsetsToTxn.
    let internal = engine
        .add_partitions_to_transaction("strict", producer, &[partition("__consumer_offsets", 0)])
        .await;
    assert!(
        matches!(internal, Err(Error::InternalTopicWrite { .. })),
        "{internal:?}"
    );
    let unknown = engine
        .add_partitions_to_transaction("strict", producer, &[partition("missing", 0)])
        .await;
    assert!(
        matches!(unknown, Err(Error::UnknownTopic { .. })),
        "{unknown:?}"
    );
    // One append carries one transactional producer's batches, never two.
    let other = begin(engine, "other", &[partition("joined", 0)]).await;
    let mut two = transactional(producer, 0, 1).to_vec();
    two.extend_from_slice(&transactional(other, 0, 1));
    let mixed = append(engine, "joined", Bytes::from(two)).await;
    assert!(
        matches!(mixed, Err(Error::ForbiddenBatchAttribute { .. })),
        "{mixed:?}"
    );
    // After the end, the partition is out of the transaction again.
    engine.end_transaction("strict", producer, true).await?;
    let late = append(engine, "joined", transactional(producer, 0, 1)).await;
    assert!(
        matches!(late, Err(Error::PartitionNotInTransaction { .. })),
        "{late:?}"
    );
    let ended = engine.end_transaction("unknown-id", producer, true).await;
    assert!(
        matches!(ended, Err(Error::InvalidProducerIdMapping { .. })),
        "{ended:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_new_incarnation_fences_the_old_one_and_aborts_its_transaction() -> anyhow::Result<()> {
    let test = TestEngine::open().await?;
    let engine = &test.engine;
    test.topic("fenced", 1, &[]).await;
    let zombie = begin(engine, "app", &[partition("fenced", 0)]).await;
    append(engine, "fenced", transactional(zombie, 0, 4)).await?;

    let current = engine
        .init_producer_id(Some("app"), TIMEOUT_MS, None)
        .await?;
    assert_eq!(current.0, zombie.0, "same producer id");
    assert!(
        current.1.0 > zombie.1.0,
        "epoch bumped: {current:?} after {zombie:?}"
    );
    assert_eq!(
        state(engine, "app"),
        TransactionState::Empty,
        "aborted, then ready"
    );
    let offsets = engine.offsets("fenced", PartitionIndex(0))?;
    assert_eq!(
        offsets.last_stable_offset, offsets.high_watermark,
        "the zombie's data aborted"
    );

    let write = append(engine, "fenced", transactional(zombie, 4, 1)).await;
    assert!(write.is_err(), "the zombie may not write: {write:?}");
    let end = engine.end_transaction("app", zombie, true).await;
    assert!(matches!(end, Err(Error::ProducerFenced { .. })), "{end:?}");
    let add = engine
        .add_partitions_to_transaction("app", zombie, &[partition("fenced", 0)])
        .await;
    assert!(matches!(add, Err(Error::ProducerFenced { .. })), "{add:?}");
    let (_, aborted) = read(engine, "fenced", Isolation::LastStable).await?;
    assert_eq!(aborted, [(zombie.0.0, 0)]);
    Ok(())
}

#[tokio::test]
async fn a_producer_bumping_its_own_epoch_with_a_transaction_open_aborts_it() -> anyhow::Result<()>
{
    let test = TestEngine::open().await?;
    let engine = &test.engine;
    test.topic("bumped", 1, &[]).await;
    let producer = begin(engine, "self", &[partition("bumped", 0)]).await;
    append(engine, "bumped", transactional(producer, 0, 2)).await?;
    // KIP-360: the client names its own producer and epoch.
    let bumped = engine
        .init_producer_id(Some("self"), TIMEOUT_MS, Some(producer))
        .await?;
    assert_eq!(bumped.0, producer.0);
    assert!(bumped.1.0 > producer.1.0 + 1, "past the fence: {bumped:?}");
    assert_eq!(state(engine, "self"), TransactionState::Empty);
    let offsets = engine.offsets("bumped", PartitionIndex(0))?;
    assert_eq!(
        offsets.last_stable_offset, offsets.high_watermark,
        "aborted"
    );
    // The old epoch, named again later, is fenced.
    let stale = engine
        .init_producer_id(Some("self"), TIMEOUT_MS, Some(producer))
        .await;
    assert!(
        matches!(stale, Err(Error::ProducerFenced { .. })),
        "{stale:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_transaction_past_its_timeout_is_aborted_by_the_upkeep() -> anyhow::Result<()> {
    let test = TestEngine::open().await?;
    let engine = &test.engine;
    test.topic("slow", 1, &[]).await;
    let too_long = engine.init_producer_id(Some("slow"), 900_001, None).await;
    assert!(
        matches!(too_long, Err(Error::InvalidTransactionTimeout { .. })),
        "{too_long:?}"
    );
    let producer = begin(engine, "slow", &[partition("slow", 0)]).await;
    append(engine, "slow", transactional(producer, 0, 2)).await?;
    test.clock.advance(Duration::from_millis(TIMEOUT_MS as u64));
    assert_eq!(engine.run_transaction_timeouts().await?, 0, "not yet past");
    test.clock.advance(Duration::from_millis(1));
    assert_eq!(engine.run_transaction_timeouts().await?, 1);
    assert_eq!(state(engine, "slow"), TransactionState::CompleteAbort);
    let offsets = engine.offsets("slow", PartitionIndex(0))?;
    assert_eq!(
        offsets.last_stable_offset,
        Offset(3),
        "data and ABORT marker"
    );
    let end = engine.end_transaction("slow", producer, true).await;
    assert!(matches!(end, Err(Error::ProducerFenced { .. })), "{end:?}");
    Ok(())
}

fn commit(topic: &str, offset: i64) -> Commit {
    Commit {
        topic: topic.into(),
        partition: PartitionIndex(0),
        offset: Offset(offset),
        leader_epoch: LeaderEpoch::UNKNOWN,
        metadata: None,
    }
}

fn committed(engine: &Engine, group: &str) -> Option<i64> {
    let asked = Some(vec![("input".to_string(), vec![PartitionIndex(0)])]);
    engine.groups().fetch_offsets(group, asked)[0]
        .2
        .as_ref()
        .map(|c| c.offset.0)
}

#[tokio::test]
async fn offsets_committed_in_a_transaction_apply_on_commit_only() -> anyhow::Result<()> {
    let test = TestEngine::open().await?;
    let engine = &test.engine;
    test.topic("input", 1, &[]).await;
    test.topic("output", 1, &[]).await;
    for (round, commit_it) in [(1, false), (2, true)] {
        let producer = begin(engine, "pipeline", &[partition("output", 0)]).await;
        engine
            .add_offsets_to_transaction("pipeline", producer, "readers")
            .await?;
        let results = engine
            .commit_transactional_offsets(
                "readers",
                producer,
                NOT_A_MEMBER,
                vec![commit("input", 10 * round)],
            )
            .await?;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert!(
            engine
                .groups()
                .has_pending_offset("readers", "input", PartitionIndex(0))
        );
        assert_eq!(
            committed(engine, "readers"),
            if round == 1 { None } else { Some(0) }
        );
        engine
            .end_transaction("pipeline", producer, commit_it)
            .await?;
        assert!(
            !engine
                .groups()
                .has_pending_offset("readers", "input", PartitionIndex(0))
        );
        let expected = if commit_it { Some(20) } else { None };
        assert_eq!(committed(engine, "readers"), expected, "round {round}");
        if round == 1 {
            // A plain commit between the rounds: the aborted one left it alone.
            engine
                .commit_offsets("readers", NOT_A_MEMBER, vec![commit("input", 0)])
                .await?;
        }
    }
    // Offsets need AddOffsetsToTxn first.
    let producer = begin(engine, "pipeline", &[partition("output", 0)]).await;
    let refused = engine
        .commit_transactional_offsets("readers", producer, NOT_A_MEMBER, vec![commit("input", 1)])
        .await;
    assert!(
        matches!(refused, Err(Error::PartitionNotInTransaction { .. })),
        "{refused:?}"
    );
    Ok(())
}

/// An engine over `dir` whose hook, when `hold` is set, parks the transaction ending at the
/// point its markers are about to be written.
async fn open_holding(
    dir: &std::path::Path,
    clock: &Arc<ManualClock>,
    hold: Option<std::sync::mpsc::Receiver<()>>,
) -> anyhow::Result<Arc<Engine>> {
    let mut config = EngineConfig::new(dir.to_path_buf());
    if let Some(hold) = hold {
        let hold = std::sync::Mutex::new(hold);
        config.hooks = Hooks::new(move |point| {
            if point == HookPoint::MarkersWriting {
                // Parked until the test lets go (or drops the sender).
                let _ = hold.lock().map(|h| h.recv());
            }
        });
    }
    Ok(Arc::new(
        Engine::open(config, Arc::clone(clock) as _).await?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_completes_a_commit_that_was_preparing_and_applies_its_offsets()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clock = Arc::new(ManualClock::new(START_MS));
    let (release, hold) = std::sync::mpsc::channel();
    let engine = open_holding(dir.path(), &clock, Some(hold)).await?;
    for topic in ["input", "output"] {
        engine
            .create_topic(topic, 1, Default::default(), false)
            .await?;
    }
    let producer = begin(&engine, "crash", &[partition("output", 0)]).await;
    append(&engine, "output", transactional(producer, 0, 5)).await?;
    engine
        .add_offsets_to_transaction("crash", producer, "g")
        .await?;
    engine
        .commit_transactional_offsets("g", producer, NOT_A_MEMBER, vec![commit("input", 42)])
        .await?;
    let ending = {
        let engine = Arc::clone(&engine);
        tokio::spawn(async move { engine.end_transaction("crash", producer, true).await })
    };
    // Wait for the commit to reach its markers: PrepareCommit is durable by then.
    while state(&engine, "crash") != TransactionState::PrepareCommit {
        tokio::task::yield_now().await;
    }
    // The crash: the engine is abandoned where it stands, never closed.
    ending.abort();
    std::mem::forget(engine);
    drop(release);

    let engine = open_holding(dir.path(), &clock, None).await?;
    assert_eq!(state(&engine, "crash"), TransactionState::CompleteCommit);
    let offsets = engine.offsets("output", PartitionIndex(0))?;
    assert_eq!(
        (offsets.high_watermark, offsets.last_stable_offset),
        (Offset(6), Offset(6)),
        "five records and the COMMIT marker"
    );
    assert_eq!(committed(&engine, "g"), Some(42));
    assert!(
        !engine
            .groups()
            .has_pending_offset("g", "input", PartitionIndex(0))
    );
    let (batches, aborted) = read(&engine, "output", Isolation::LastStable).await?;
    assert_eq!((batches, aborted), (vec![(0, false), (5, true)], vec![]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_producer_id_finishes_a_commit_whose_end_txn_was_dropped() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clock = Arc::new(ManualClock::new(START_MS));
    let (release, hold) = std::sync::mpsc::channel();
    let engine = open_holding(dir.path(), &clock, Some(hold)).await?;
    engine
        .create_topic("output", 1, Default::default(), false)
        .await?;
    let producer = begin(&engine, "dropped", &[partition("output", 0)]).await;
    append(&engine, "output", transactional(producer, 0, 5)).await?;
    let ending = {
        let engine = Arc::clone(&engine);
        tokio::spawn(async move { engine.end_transaction("dropped", producer, true).await })
    };
    while state(&engine, "dropped") != TransactionState::PrepareCommit {
        tokio::task::yield_now().await;
    }
    // The request is dropped after deciding: nobody is writing the markers any more.
    ending.abort();
    drop(release);
    let _ = ending.await;

    let next = engine
        .init_producer_id(Some("dropped"), TIMEOUT_MS, None)
        .await?;
    assert_eq!(next, (producer.0, ProducerEpoch(producer.1.0 + 1)));
    assert_eq!(state(&engine, "dropped"), TransactionState::Empty);
    let offsets = engine.offsets("output", PartitionIndex(0))?;
    assert_eq!(
        offsets.last_stable_offset, offsets.high_watermark,
        "the decided commit was finished, not left open"
    );
    let (batches, _) = read(&engine, "output", Isolation::LastStable).await?;
    assert_eq!(
        batches.first(),
        Some(&(0, false)),
        "the records are committed"
    );
    Ok(())
}

#[tokio::test]
async fn an_open_transaction_survives_a_restart_and_aborts_on_its_timeout() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clock = Arc::new(ManualClock::new(START_MS));
    let engine = open_holding(dir.path(), &clock, None).await?;
    for topic in ["input", "output"] {
        engine
            .create_topic(topic, 1, Default::default(), false)
            .await?;
    }
    let producer = begin(&engine, "open", &[partition("output", 0)]).await;
    append(&engine, "output", transactional(producer, 0, 3)).await?;
    engine
        .add_offsets_to_transaction("open", producer, "g")
        .await?;
    engine
        .commit_transactional_offsets("g", producer, NOT_A_MEMBER, vec![commit("input", 7)])
        .await?;
    std::mem::forget(engine);

    let engine = open_holding(dir.path(), &clock, None).await?;
    assert_eq!(state(&engine, "open"), TransactionState::Ongoing);
    assert_eq!(
        engine
            .offsets("output", PartitionIndex(0))?
            .last_stable_offset,
        Offset(0)
    );
    assert!(
        engine
            .groups()
            .has_pending_offset("g", "input", PartitionIndex(0))
    );
    clock.advance(Duration::from_millis(TIMEOUT_MS as u64 + 1));
    assert_eq!(engine.run_transaction_timeouts().await?, 1);
    assert_eq!(
        engine
            .offsets("output", PartitionIndex(0))?
            .last_stable_offset,
        Offset(4)
    );
    assert_eq!(
        committed(&engine, "g"),
        None,
        "the aborted offsets never apply"
    );
    assert!(
        !engine
            .groups()
            .has_pending_offset("g", "input", PartitionIndex(0))
    );
    Ok(())
}

fn record(value: &[u8]) -> NewRecord<'_> {
    NewRecord {
        timestamp_ms: START_MS,
        key: None,
        value: Some(value),
        headers: &[],
    }
}

#[tokio::test]
async fn an_in_process_writer_commits_records_and_positions_all_or_nothing() -> anyhow::Result<()> {
    let test = TestEngine::open().await?;
    let engine = &test.engine;
    test.topic("input", 1, &[]).await;
    test.topic("sink", 2, &[]).await;
    let timeout = Duration::from_secs(60);
    let mut writer = engine
        .transactional_writer("processor-1", timeout, Compression::None)
        .await?;
    // Aborted: neither the records nor the position.
    writer
        .append("sink", PartitionIndex(0), &[record(b"a")])
        .await?;
    writer
        .commit_offsets("processor", vec![commit("input", 1)])
        .await?;
    writer.abort().await?;
    // Committed: both partitions and the position at once.
    writer
        .append("sink", PartitionIndex(0), &[record(b"b")])
        .await?;
    writer
        .append("sink", PartitionIndex(1), &[record(b"c"), record(b"d")])
        .await?;
    writer
        .commit_offsets("processor", vec![commit("input", 2)])
        .await?;
    assert_eq!(
        engine
            .offsets("sink", PartitionIndex(1))?
            .last_stable_offset,
        Offset(0)
    );
    writer.commit().await?;
    assert_eq!(committed(engine, "processor"), Some(2));
    let (batches, aborted) = read(engine, "sink", Isolation::LastStable).await?;
    assert_eq!(batches, [(0, false), (1, true), (2, false), (3, true)]);
    assert_eq!(aborted, [(writer.producer().0.0, 0)]);

    // A new writer for the id fences this one and aborts what it left open.
    writer
        .append("sink", PartitionIndex(0), &[record(b"e")])
        .await?;
    let mut successor = engine
        .transactional_writer("processor-1", timeout, Compression::None)
        .await?;
    let fenced = writer
        .append("sink", PartitionIndex(0), &[record(b"f")])
        .await;
    assert!(fenced.is_err(), "{fenced:?}");
    // After an error the writer only aborts (see its docs); it cannot commit.
    assert!(matches!(
        writer.commit().await,
        Err(Error::InvalidTxnState { .. })
    ));
    successor
        .append("sink", PartitionIndex(0), &[record(b"g")])
        .await?;
    successor.commit().await?;
    let sink = engine.offsets("sink", PartitionIndex(0))?;
    assert_eq!(sink.last_stable_offset, sink.high_watermark);
    Ok(())
}

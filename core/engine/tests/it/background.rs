//! Slow background work (compaction, creating a large topic) held at a gate in the middle,
//! while produce, fetch, heartbeats and interval flushes of other work complete. No timing:
//! the held work is still held when the others finish, and is released only after.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fjord_engine::{
    Engine, FetchPartition, HookPoint, Hooks, Identity, Isolation, Origin, PartitionIndex,
};

use crate::support::{START_MS, TestEngine, batch, stable_member};

/// Turns a deadlock into a failure instead of a hung test; never reached when all is well.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Holds the work that reaches `point` until released, after letting the first `skip`
/// pass.
struct Gate {
    reached: Mutex<mpsc::Receiver<()>>,
    release: mpsc::Sender<()>,
}

impl Gate {
    fn install(point: HookPoint, skip: usize) -> (Self, Hooks) {
        let (reached_tx, reached) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let passed = AtomicUsize::new(0);
        let hooks = Hooks::new(move |at| {
            if at == point && passed.fetch_add(1, Ordering::Relaxed) >= skip {
                let _ = reached_tx.send(());
                let _ = release_rx.lock().expect("gate lock").recv();
            }
        });
        let gate = Self {
            reached: Mutex::new(reached),
            release,
        };
        (gate, hooks)
    }

    /// Waits (on a blocking thread) until the held work sits at the gate.
    async fn wait_reached(self: &Arc<Self>) {
        let gate = Arc::clone(self);
        tokio::task::spawn_blocking(move || gate.reached.lock().expect("gate lock").recv())
            .await
            .expect("gate thread")
            .expect("the held work reached the gate");
    }

    fn release(&self) {
        self.release.send(()).expect("the held work waits");
    }
}

async fn guarded<T>(what: &str, work: impl Future<Output = T>) -> T {
    match tokio::time::timeout(HANG_GUARD, work).await {
        Ok(done) => done,
        Err(_) => panic!("{what} did not complete while the background work was held"),
    }
}

/// A produce, a fetch, a heartbeat and an upkeep round (interval flushes) complete.
async fn data_path_goes_on(engine: &Engine, member: &(String, i32)) -> anyhow::Result<()> {
    let appended = guarded(
        "an append",
        engine.append(
            "other",
            PartitionIndex(0),
            batch(5, 5, START_MS),
            Origin::Client,
        ),
    )
    .await?;
    let read = guarded(
        "a read",
        engine.read(
            Arc::from(vec![FetchPartition {
                topic: "other".into(),
                partition: PartitionIndex(0),
                offset: appended.base_offset,
                max_bytes: 1 << 20,
            }]),
            1 << 20,
            Isolation::HighWatermark,
        ),
    )
    .await;
    assert!(
        read.into_iter()
            .all(|r| r.is_ok_and(|r| !r.records.is_empty()))
    );
    let identity = Identity {
        member_id: &member.0,
        generation_id: member.1,
        group_instance_id: None,
    };
    engine.groups().heartbeat("group", identity)?;
    guarded("an upkeep round", engine.run_upkeep(false)).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_fetch_and_heartbeats_go_on_while_compaction_runs() -> anyhow::Result<()> {
    let (gate, hooks) = Gate::install(HookPoint::CompactionRunning, 0);
    let gate = Arc::new(gate);
    let test = TestEngine::open_with(hooks).await?;
    let engine = Arc::clone(&test.engine);
    let compacted = [
        ("cleanup.policy", "compact"),
        ("segment.bytes", "1024"),
        ("min.cleanable.dirty.ratio", "0.01"),
        ("min.compaction.lag.ms", "0"),
    ];
    test.topic("compacted", 1, &compacted).await;
    test.topic("other", 1, &[("flush.ms", "1")]).await;
    for _ in 0..4 {
        // Each batch is over a segment's 1 KiB: every append rolls a segment.
        engine
            .append(
                "compacted",
                PartitionIndex(0),
                batch(40, 4, START_MS),
                Origin::Client,
            )
            .await?;
    }
    let member = stable_member(&engine, "group", bytes::Bytes::new()).await?;
    test.clock.advance(Duration::from_secs(1));

    let compaction = tokio::spawn({
        let engine = Arc::clone(&engine);
        async move { engine.run_compaction().await }
    });
    gate.wait_reached().await;
    data_path_goes_on(&engine, &member).await?;
    // The partition being compacted takes appends too: the round runs outside its lock.
    guarded(
        "an append to the partition being compacted",
        engine.append(
            "compacted",
            PartitionIndex(0),
            batch(1, 1, START_MS),
            Origin::Client,
        ),
    )
    .await?;
    assert!(!compaction.is_finished(), "compaction is still held");

    gate.release();
    assert_eq!(compaction.await??, 1, "one partition compacted");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_fetch_and_heartbeats_go_on_while_a_large_topic_is_created() -> anyhow::Result<()> {
    // Opening creates `__consumer_offsets` and `__transaction_state`, then the test creates
    // `other`: all three pass.
    let (gate, hooks) = Gate::install(HookPoint::TopicCreating, 3);
    let gate = Arc::new(gate);
    let test = TestEngine::open_with(hooks).await?;
    let engine = Arc::clone(&test.engine);
    test.topic("other", 1, &[]).await;
    let member = stable_member(&engine, "group", bytes::Bytes::new()).await?;

    let large = tokio::spawn({
        let engine = Arc::clone(&engine);
        async move {
            engine
                .create_topic("large", 1000, Default::default(), false)
                .await
        }
    });
    gate.wait_reached().await;
    data_path_goes_on(&engine, &member).await?;
    assert!(
        engine.topic("large").is_none(),
        "not visible before its logs exist"
    );
    assert!(!large.is_finished(), "topic creation is still held");

    gate.release();
    assert_eq!(large.await??.partition_count(), 1000);
    assert_eq!(
        engine.offsets("large", PartitionIndex(999))?.log_end_offset,
        fjord_engine::Offset(0)
    );
    Ok(())
}

//! Background work: interval flushes and retention, group session expiry, and compaction on
//! a worker of its own, so a long compaction never delays a `flush.ms` sync or a session
//! check. Each round can also be run directly (tests drive them with a manual clock).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Engine;
use crate::Result;

/// How often interval flushes are checked and group sessions expired.
const UPKEEP_INTERVAL: Duration = Duration::from_millis(100);
/// Retention runs every this many upkeep ticks (5 minutes, Kafka's
/// `log.retention.check.interval.ms`).
const RETENTION_EVERY_TICKS: u64 = 3_000;
/// How often partitions are checked for a due compaction (Kafka's `log.cleaner.backoff.ms`).
const COMPACTION_INTERVAL: Duration = Duration::from_secs(15);

/// The engine's running background workers; [`Upkeep::stop`] ends them.
#[derive(Debug)]
pub struct Upkeep {
    stop: watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
}

impl Upkeep {
    /// Stops the workers and waits for the round in hand to finish.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for worker in self.workers {
            let _ = worker.await;
        }
    }
}

impl Engine {
    /// Starts the background workers: upkeep (flushes, retention, group sessions) and
    /// compaction, each on its own task.
    pub fn start_upkeep(self: &Arc<Self>) -> Upkeep {
        let (stop, stopped) = watch::channel(false);
        let upkeep = tokio::spawn(upkeep_worker(Arc::clone(self), stopped.clone()));
        let compaction = tokio::spawn(compaction_worker(Arc::clone(self), stopped));
        Upkeep {
            stop,
            workers: vec![upkeep, compaction],
        }
    }

    /// One upkeep round: expires group sessions, syncs partitions whose `flush.ms` is due
    /// and, with `retention`, applies retention limits. Failures are logged per partition.
    pub async fn run_upkeep(&self, retention: bool) {
        self.groups.tick().await;
        let topics = Arc::clone(&self.topics);
        let now_ms = self.clock.now_ms();
        let done = self
            .pool
            .run(move || {
                for topic in topics.list() {
                    for index in 0..topic.partition_count() {
                        let outcome = topic
                            .partition(index)
                            .and_then(|p| p.maintain(now_ms, retention));
                        if let Err(error) = outcome {
                            tracing::error!(topic = %topic.name, partition = index, %error, "partition upkeep failed");
                        }
                    }
                }
                Ok(())
            })
            .await;
        if let Err(error) = done {
            tracing::error!(%error, "upkeep round failed");
        }
    }

    /// One compaction round: every partition whose compaction is due (dirty ratio or lag)
    /// is compacted, one at a time, each on the blocking pool. Returns how many were.
    pub async fn run_compaction(&self) -> Result<usize> {
        let mut compacted = 0;
        for topic in self.topics.list() {
            for index in 0..topic.partition_count() {
                let partition = topic.partition(index)?;
                let now_ms = self.clock.now_ms();
                match self.pool.run(move || partition.compact(now_ms)).await {
                    Ok(Some(outcome)) => {
                        compacted += 1;
                        tracing::debug!(topic = %topic.name, partition = index, ?outcome, "compacted");
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::error!(topic = %topic.name, partition = index, %error, "compaction failed");
                    }
                }
            }
        }
        Ok(compacted)
    }
}

async fn upkeep_worker(engine: Arc<Engine>, mut stopped: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(UPKEEP_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick = 0u64;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.changed() => return,
        }
        tick += 1;
        engine
            .run_upkeep(tick.is_multiple_of(RETENTION_EVERY_TICKS))
            .await;
    }
}

async fn compaction_worker(engine: Arc<Engine>, mut stopped: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(COMPACTION_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate; nothing is dirty yet
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.changed() => return,
        }
        if let Err(error) = engine.run_compaction().await {
            tracing::error!(%error, "compaction round failed");
        }
    }
}

//! Background work: interval flushes and retention, group session expiry, and compaction on
//! a worker of its own, so a long compaction never delays a `flush.ms` sync or a session
//! check. Each round can also be run directly (tests drive them with a manual clock).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Engine;
use crate::Result;
use crate::join::join_all;

/// How often interval flushes are checked (and retention and offset expiry counted).
const UPKEEP_INTERVAL: Duration = Duration::from_millis(100);
/// Retention runs every this many upkeep ticks (5 minutes, Kafka's
/// `log.retention.check.interval.ms`).
const RETENTION_EVERY_TICKS: u64 = 3_000;
/// How long the group timer sleeps when no group has a deadline (a request wakes it).
const GROUP_TIMER_IDLE: Duration = Duration::from_secs(60);
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
    /// Starts the background workers, each on its own task: upkeep (flushes, retention,
    /// offset expiry), the group timer (sessions and rounds, woken at their deadlines),
    /// compaction, and transaction timeouts.
    pub fn start_upkeep(self: &Arc<Self>) -> Upkeep {
        let (stop, stopped) = watch::channel(false);
        let upkeep = tokio::spawn(upkeep_worker(Arc::clone(self), stopped.clone()));
        let timers = tokio::spawn(group_timer_worker(Arc::clone(self), stopped.clone()));
        let compaction = tokio::spawn(compaction_worker(Arc::clone(self), stopped.clone()));
        let transactions = tokio::spawn(transaction_worker(Arc::clone(self), stopped));
        Upkeep {
            stop,
            workers: vec![upkeep, timers, compaction, transactions],
        }
    }

    /// Moves the group coordinator's time on: expires sessions and pending member ids whose
    /// deadline passed, completes rounds whose initial delay or rebalance timeout passed.
    /// The group timer worker runs it at each deadline.
    pub async fn run_group_timers(&self) {
        self.groups.tick().await;
    }

    /// One upkeep round: syncs partitions whose `flush.ms` is due and, with `retention`,
    /// applies retention limits. Failures are logged per partition.
    pub async fn run_upkeep(&self, retention: bool) {
        let now_ms = self.clock.now_ms();
        for topic in self.topics.list() {
            let rounds = topic.partitions().map(|(index, partition)| async move {
                (index, partition.maintain(now_ms, retention).await)
            });
            for (index, outcome) in join_all(rounds.collect()).await {
                if let Err(error) = outcome {
                    tracing::error!(topic = %topic.name, %index, %error, "partition upkeep failed");
                }
            }
        }
    }

    /// One pass of committed-offset expiry (KIP-211, see the coordinator): returns how many
    /// offsets expired and how many empty groups went away.
    pub async fn run_offset_expiry(&self) -> Result<(usize, usize)> {
        self.groups.expire_offsets().await
    }

    /// One compaction round: every partition whose compaction is due (dirty ratio or lag)
    /// is compacted, one at a time, each on the blocking pool. Returns how many were.
    pub async fn run_compaction(&self) -> Result<usize> {
        let mut compacted = 0;
        for topic in self.topics.list() {
            for (index, partition) in topic.partitions() {
                match partition.compact(self.clock.now_ms()).await {
                    Ok(true) => {
                        compacted += 1;
                        tracing::debug!(topic = %topic.name, %index, "compacted");
                    }
                    Ok(false) => {}
                    Err(error) => {
                        tracing::error!(topic = %topic.name, %index, %error, "compaction failed");
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
    let expiry_interval = engine.config.groups.offsets_retention_check_interval;
    let expiry_every_ticks =
        (expiry_interval.as_millis() / UPKEEP_INTERVAL.as_millis()).max(1) as u64;
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
        if tick.is_multiple_of(expiry_every_ticks)
            && let Err(error) = engine.run_offset_expiry().await
        {
            tracing::error!(%error, "offset expiry failed");
        }
    }
}

/// Sleeps until the group coordinator's next deadline (or until a request may have brought
/// it forward), then moves the groups' time on: a session expires at its deadline, not at the
/// next poll.
async fn group_timer_worker(engine: Arc<Engine>, mut stopped: watch::Receiver<bool>) {
    // At most one round per millisecond, whatever a deadline says.
    let mut earliest = tokio::time::Instant::now();
    loop {
        let deadline = engine
            .groups
            .next_deadline()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + GROUP_TIMER_IDLE)
            .max(earliest);
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {
                engine.run_group_timers().await;
                earliest = tokio::time::Instant::now() + Duration::from_millis(1);
            }
            () = engine.groups.deadlines_changed() => {}
            _ = stopped.changed() => return,
        }
    }
}

/// Every `transaction.abort.timed.out.transaction.cleanup.interval.ms`: aborts timed-out
/// transactions, completes unfinished ones, forgets expired transactional ids.
async fn transaction_worker(engine: Arc<Engine>, mut stopped: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(engine.transactions.abort_interval());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.changed() => return,
        }
        if let Err(error) = engine.run_transaction_timeouts().await {
            tracing::error!(%error, "transaction timeout round failed");
        }
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

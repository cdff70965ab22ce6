//! One task: a processor on one input partition, exactly once.
//!
//! The loop, for each batch read (`read_committed`) from the input partition:
//! 1. the watermark moves to the batch's latest record time, the guest processes the
//!    batch, expired state goes, and the timers that came due run (on the call pool);
//! 2. the outputs (and failed records, under a dead-letter policy) are appended to their
//!    partitions in the task's open transaction;
//! 3. once the commit interval has passed (at once by default), the state store's pending
//!    changes go to the changelog partition, the input position to the processor's group,
//!    and the transaction commits: outputs, state and position together or not at all.
//!
//! Any failure before the commit aborts the transaction, rolls the store back to the last
//! commit, starts a new instance (guest memory must not keep what the store forgot) and goes
//! on from the last committed position. A crash is the same: the next task's writer fences
//! this one and aborts its transaction, and the store is rebuilt from the changelog.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fjord_engine::{
    Commit, ConsumedRecord, LeaderEpoch, Offset, PartitionIndex, TransactionalWriter,
};
use fjord_record::Compression;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::output::{OwnedRecord, Routed};
use crate::report::{TaskReport, TaskState};
use crate::spec::ErrorPolicy;
use crate::state::StateStore;
use crate::task_call::{Called, call_batch};
use crate::transform::{CallError, InputRecord, Transform};
use crate::{changelog, metrics, restore};

use crate::task_call::TaskContext;

/// Bytes of input read at a time.
const READ_BYTES: usize = 1024 * 1024;
/// Bytes of records in one append (well under the default `max.message.bytes`).
const APPEND_BYTES: usize = 512 * 1024;
/// How long an idle task waits for input before looking again.
const IDLE_WAIT: Duration = Duration::from_secs(1);
/// The transaction timeout of a task's writer: a task that dies leaves its transaction to
/// be aborted this long after (or at once, when its successor starts).
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// A running task (see the module docs).
pub struct Task {
    context: TaskContext,
    partition: PartitionIndex,
    writer: TransactionalWriter,
    /// `None` only while a call runs, or after a call thread was lost.
    transform: Option<Box<dyn Transform>>,
    /// The input position of the last commit.
    committed: Offset,
    /// The input position after the batches in the open transaction.
    position: Offset,
    /// When the open transaction took its first batch.
    open_since: Option<Instant>,
    /// After a call failed under a skip or dead-letter policy: records up to this offset
    /// are processed one per transaction, so the failing one is found alone.
    isolate_until: Option<Offset>,
    report: Arc<Mutex<TaskReport>>,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("partition", &self.partition)
            .field("committed", &self.committed)
            .finish_non_exhaustive()
    }
}

/// Runs the task of `partition` until `stop` turns true: opens it, retrying with backoff
/// while the engine is busy (a previous incarnation's transaction still completing, say),
/// then runs it. Returns the error the task could not get past, if any.
pub async fn supervise(
    context: TaskContext,
    partition: PartitionIndex,
    report: Arc<Mutex<TaskReport>>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let mut backoff = BACKOFF_MIN;
    while !*stop.borrow() {
        match Task::open(context.clone(), partition, Arc::clone(&report)).await {
            Ok(task) => return task.run(stop).await,
            Err(error) if error.is_transient() => {
                if let Ok(mut report) = report.lock() {
                    report.set_error(TaskState::Retrying, &error);
                }
                back_off(&mut backoff, &mut stop).await;
            }
            Err(error) => {
                tracing::error!(processor = %context.spec.name, partition = partition.0, %error, "task cannot start");
                if let Ok(mut report) = report.lock() {
                    report.set_error(TaskState::Failed, &error);
                }
                return Err(error);
            }
        }
    }
    Ok(())
}

impl Task {
    /// Opens the task for `partition`: fences any earlier incarnation (aborting its open
    /// transaction), rebuilds the state store from the changelog, finds the input position
    /// and starts an instance.
    pub async fn open(
        context: TaskContext,
        partition: PartitionIndex,
        report: Arc<Mutex<TaskReport>>,
    ) -> Result<Task> {
        let spec = Arc::clone(&context.spec);
        let engine = Arc::clone(&context.engine);
        let transactional_id = spec.transactional_id(partition.0);
        let writer = engine
            .transactional_writer(&transactional_id, TRANSACTION_TIMEOUT, Compression::None)
            .await?;
        let state = restore::state(
            &engine,
            &spec.changelog_topic(),
            partition,
            spec.limits.state,
        )
        .await?;
        let committed = restore::position(&engine, &spec, partition).await?;
        let transform = context.start_instance(state).await?;
        let task = Task {
            context,
            partition,
            writer,
            transform: Some(transform),
            committed,
            position: committed,
            open_since: None,
            isolate_until: None,
            report,
        };
        task.update_report(|report| {
            report.state = TaskState::Running;
            report.committed_offset = committed.0;
        });
        Ok(task)
    }

    /// Runs until `stop` turns true (committing what is open first), or until an error the
    /// task cannot get past (the stop policy, a processor that no longer starts).
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> Result<()> {
        let mut backoff = BACKOFF_MIN;
        while !*stop.borrow() {
            let Err(error) = self.step(&mut stop).await else {
                backoff = BACKOFF_MIN;
                continue;
            };
            if let Err(failed) = self.recover().await {
                if !failed.is_transient() {
                    return Err(self.fail(failed));
                }
                // The engine is busy (a fenced transaction completing, say): the next step
                // fails on the writer and recovers again, after the backoff.
                self.update_report(|report| report.set_error(TaskState::Retrying, &failed));
                back_off(&mut backoff, &mut stop).await;
                continue;
            }
            let isolating =
                self.isolate_until.is_some() && self.context.spec.error_policy != ErrorPolicy::Stop;
            if isolating && matches!(error, Error::Call(_)) {
                let message = format!(
                    "{error}: redoing from offset {} one record at a time",
                    self.committed.0
                );
                self.log(crate::transform::LogLevel::Warn, message);
                continue;
            }
            if !error.is_transient() {
                return Err(self.fail(error));
            }
            tracing::warn!(processor = %self.context.spec.name, partition = self.partition.0, %error, "retrying");
            self.log(
                crate::transform::LogLevel::Warn,
                format!("retrying: {error}"),
            );
            self.update_report(|report| report.set_error(TaskState::Retrying, &error));
            back_off(&mut backoff, &mut stop).await;
        }
        if self.open_since.is_some() && self.commit().await.is_err() {
            let _ = self.recover().await;
        }
        self.update_report(|report| report.state = TaskState::Stopped);
        Ok(())
    }

    /// One read, and what follows from it.
    async fn step(&mut self, stop: &mut watch::Receiver<bool>) -> Result<()> {
        let engine = Arc::clone(&self.context.engine);
        let spec = Arc::clone(&self.context.spec);
        let mut waiter = engine.waiter([(spec.input.clone(), self.partition)]);
        let read = match engine
            .read_committed(&spec.input, self.partition, self.position, READ_BYTES)
            .await
        {
            Ok(read) => read,
            Err(error) => {
                let error = Error::from(error);
                if !restore::is_out_of_range(&error) {
                    return Err(error);
                }
                let start = engine
                    .offsets(&spec.input, self.partition)?
                    .log_start_offset;
                // Removed by retention, or past the end of a topic deleted and created again:
                // as a consumer with auto.offset.reset=earliest, from the log start.
                tracing::warn!(processor = %spec.name, partition = self.partition.0, from = self.position.0, to = start.0,
                    "input position out of range: going on from the log start");
                self.position = start;
                return Ok(());
            }
        };
        self.update_report(|report| report.log_end_offset = read.offsets.last_stable_offset.0);
        if read.records.is_empty() {
            let moved = read.next_offset > self.position;
            self.position = self.position.max(read.next_offset);
            if moved || self.open_since.is_some() {
                return self.commit().await;
            }
            tokio::select! {
                _ = waiter.changed(Instant::now() + IDLE_WAIT) => {}
                _ = stop.changed() => {}
            }
            return Ok(());
        }
        let chunk_records = if self.isolate_until.is_some() {
            1
        } else {
            spec.limits.batch_records.max(1)
        };
        let mut records = read.records;
        while !records.is_empty() {
            let rest = records.split_off(chunk_records.min(records.len()));
            let after = records
                .last()
                .map_or(self.position, |record| Offset(record.offset.0 + 1));
            self.process(records).await?;
            self.position = if rest.is_empty() {
                read.next_offset.max(after)
            } else {
                after
            };
            if self
                .isolate_until
                .is_some_and(|until| self.position > until)
            {
                self.isolate_until = None;
            }
            if self.commit_due() {
                self.commit().await?;
            }
            records = rest;
        }
        Ok(())
    }

    /// Processes one batch into the open transaction.
    async fn process(&mut self, records: Vec<ConsumedRecord>) -> Result<()> {
        let started = std::time::Instant::now();
        // The call takes the records as copies; the read's records (sharing its buffer)
        // stay here for the error policy.
        let batch: Vec<InputRecord> = records
            .iter()
            .map(|record| input_record(self.partition, record))
            .collect();
        let transform = self
            .transform
            .take()
            .ok_or(Error::CallAborted(crate::pool::CallAborted))?;
        let spec = Arc::clone(&self.context.spec);
        let partition = self.partition.0;
        let (transform, called) = self
            .context
            .pool
            .run(move || call_batch(transform, &spec.name, partition, batch))
            .await?;
        let fuel = transform.fuel_consumed();
        self.transform = Some(transform);
        self.drain_logs();
        let called = match called {
            Ok(called) => called,
            Err(error) => return self.call_failed(error, &records).await,
        };
        self.open_since.get_or_insert_with(Instant::now);
        let routed = self.route(called, &records)?;
        let records_out = routed.count;
        self.append(routed).await?;
        metrics::batch(
            &self.context.spec.name,
            records.len(),
            records_out,
            fuel,
            started.elapsed(),
        );
        self.update_report(|report| {
            report.records_in += records.len() as u64;
            report.records_out += records_out as u64;
        });
        Ok(())
    }

    /// The batch's outputs and failed records, routed, after the error policy.
    fn route(&self, called: Called, records: &[ConsumedRecord]) -> Result<Routed> {
        let spec = &self.context.spec;
        let engine = &self.context.engine;
        let mut routed = Routed::default();
        let now_ms = engine.clock().now_ms();
        let mut errors = routed.add(engine, spec, called.records.outputs, now_ms);
        errors.extend(routed.add(engine, spec, called.timers.outputs, now_ms));
        let failures = called
            .records
            .failures
            .iter()
            .chain(&called.timers.failures)
            .count();
        for failure in &called.records.failures {
            let Some(record) = records.get(failure.index as usize) else {
                continue;
            };
            match &spec.error_policy {
                ErrorPolicy::Stop => {
                    return Err(Error::RecordFailed {
                        offset: record.offset.0,
                        message: failure.message.clone(),
                    });
                }
                ErrorPolicy::Skip => {}
                ErrorPolicy::DeadLetter { topic } => {
                    let input = input_record(self.partition, record);
                    routed.add_dead_letter(engine, spec, topic, &input, &failure.message)?;
                }
            }
        }
        if let Some(failure) = called.timers.failures.first() {
            tracing::warn!(processor = %spec.name, partition = self.partition.0, message = %failure.message, "a timer failed");
            if spec.error_policy == ErrorPolicy::Stop {
                return Err(Error::RecordFailed {
                    offset: self.position.0,
                    message: failure.message.clone(),
                });
            }
        }
        if let Some(error) = errors.first() {
            if spec.error_policy == ErrorPolicy::Stop {
                return Err(error.clone().into());
            }
            tracing::warn!(processor = %spec.name, %error, "output dropped");
        }
        let counted = failures + errors.len();
        metrics::errors(&spec.name, counted);
        self.update_report(|report| report.errors += counted as u64);
        Ok(routed)
    }

    /// A call failed as a whole (a trap, a limit). Under the stop policy the task stops.
    /// Otherwise, if the call had several records or the transaction holds earlier batches,
    /// everything since the last commit is redone one record per transaction; a record that
    /// fails its call alone is skipped or dead-lettered.
    async fn call_failed(&mut self, error: CallError, records: &[ConsumedRecord]) -> Result<()> {
        let spec = Arc::clone(&self.context.spec);
        let [record] = records else {
            return self.isolate(error, records);
        };
        if spec.error_policy == ErrorPolicy::Stop || self.open_since.is_some() {
            return self.isolate(error, records);
        }
        let offset = record.offset.0;
        tracing::warn!(processor = %spec.name, partition = self.partition.0, offset, %error, "record failed its call");
        self.log(
            crate::transform::LogLevel::Warn,
            format!("the record at offset {offset} failed: {error}"),
        );
        let state = self.take_rolled_back_state().await?;
        self.transform = Some(self.context.start_instance(state).await?);
        let mut routed = Routed::default();
        if let ErrorPolicy::DeadLetter { topic } = &spec.error_policy {
            let input = input_record(self.partition, record);
            routed.add_dead_letter(
                &self.context.engine,
                &spec,
                topic,
                &input,
                &error.to_string(),
            )?;
        }
        metrics::errors(&spec.name, 1);
        self.update_report(|report| report.errors += 1);
        self.open_since.get_or_insert_with(Instant::now);
        self.append(routed).await
    }

    /// Fails the call so the task rolls back; outside the stop policy, the records up to
    /// the last of `records` are then redone one per transaction.
    fn isolate(&mut self, error: CallError, records: &[ConsumedRecord]) -> Result<()> {
        if self.context.spec.error_policy != ErrorPolicy::Stop {
            self.isolate_until = records.last().map(|record| record.offset);
        }
        Err(error.into())
    }

    fn commit_due(&self) -> bool {
        let interval = self.context.spec.commit_interval;
        self.isolate_until.is_some()
            || interval.is_zero()
            || self
                .open_since
                .is_some_and(|since| since.elapsed() >= interval)
    }

    /// Commits the open transaction: the store's changes to the changelog, the input
    /// position to the group, then the transaction.
    async fn commit(&mut self) -> Result<()> {
        let spec = Arc::clone(&self.context.spec);
        let changes = self
            .transform
            .as_mut()
            .map(|transform| transform.state().pending_changes())
            .unwrap_or_default();
        if !changes.is_empty() {
            let now_ms = self.context.engine.clock().now_ms();
            let records: Vec<OwnedRecord> = changes
                .iter()
                .map(|change| {
                    let (key, value) = changelog::encode(change);
                    OwnedRecord {
                        timestamp_ms: now_ms,
                        key: Some(key),
                        value,
                        headers: Vec::new(),
                    }
                })
                .collect();
            self.append_records(&spec.changelog_topic(), self.partition, &records)
                .await?;
        }
        let position = Commit {
            topic: spec.input.clone(),
            partition: self.partition,
            offset: self.position,
            leader_epoch: LeaderEpoch::UNKNOWN,
            metadata: None,
        };
        self.writer
            .commit_offsets(&spec.group_id(), vec![position])
            .await?;
        self.writer.commit().await?;
        if let Some(transform) = self.transform.as_mut() {
            transform.state().mark_committed();
        }
        self.committed = self.position;
        self.open_since = None;
        let committed = self.committed.0;
        self.update_report(|report| {
            report.committed_offset = committed;
            report.state = TaskState::Running;
            metrics::lag(&spec.name, report.partition, report.lag());
        });
        Ok(())
    }

    /// Back to the last commit: the transaction aborted, the store rolled back, a new
    /// instance on it, the position at the last commit.
    async fn recover(&mut self) -> Result<()> {
        self.writer.abort().await?;
        let state = self.take_rolled_back_state().await?;
        self.transform = Some(self.context.start_instance(state).await?);
        self.position = self.committed;
        self.open_since = None;
        Ok(())
    }

    /// The store as the last commit left it: rolled back from the instance's, or rebuilt
    /// from the changelog when the instance was lost with its call thread.
    async fn take_rolled_back_state(&mut self) -> Result<StateStore> {
        match self.transform.take() {
            Some(transform) => {
                let mut state = transform.into_state();
                state.rollback();
                Ok(state)
            }
            None => {
                let spec = &self.context.spec;
                restore::state(
                    &self.context.engine,
                    &spec.changelog_topic(),
                    self.partition,
                    spec.limits.state,
                )
                .await
            }
        }
    }

    async fn append(&mut self, routed: Routed) -> Result<()> {
        for ((topic, partition), records) in routed.partitions {
            self.append_records(&topic, partition, &records).await?;
        }
        Ok(())
    }

    /// Appends `records` in the open transaction, in batches of at most `APPEND_BYTES`.
    async fn append_records(
        &mut self,
        topic: &str,
        partition: PartitionIndex,
        records: &[OwnedRecord],
    ) -> Result<()> {
        let mut start = 0;
        while start < records.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < records.len()
                && (end == start || bytes + records[end].size_bytes() <= APPEND_BYTES)
            {
                bytes += records[end].size_bytes();
                end += 1;
            }
            let borrowed = OwnedRecord::new_records(&records[start..end]);
            self.writer
                .append(topic, partition, &borrowed.records())
                .await?;
            start = end;
        }
        Ok(())
    }

    fn drain_logs(&mut self) {
        let Some(transform) = self.transform.as_mut() else {
            return;
        };
        let (lines, dropped) = transform.take_logs();
        let processor = &self.context.spec.name;
        let now_ms = self.context.engine.clock().now_ms();
        for line in lines {
            tracing::debug!(processor = %processor, partition = self.partition.0, level = ?line.level, "{}", line.message);
            self.context
                .logs
                .push(now_ms, self.partition.0, line.level, line.message);
        }
        if dropped > 0 {
            let message = format!("{dropped} log lines over the per-call limit dropped");
            self.context.logs.push(
                now_ms,
                self.partition.0,
                crate::transform::LogLevel::Warn,
                message,
            );
        }
    }

    /// A line in the processor's log (`fjord processor logs`).
    fn log(&self, level: crate::transform::LogLevel, message: String) {
        let now_ms = self.context.engine.clock().now_ms();
        self.context
            .logs
            .push(now_ms, self.partition.0, level, message);
    }

    fn fail(&self, error: Error) -> Error {
        tracing::error!(processor = %self.context.spec.name, partition = self.partition.0, %error, "task stopped");
        self.log(
            crate::transform::LogLevel::Error,
            format!("task stopped: {error}"),
        );
        self.update_report(|report| report.set_error(TaskState::Failed, &error));
        error
    }

    fn update_report(&self, update: impl FnOnce(&mut TaskReport)) {
        if let Ok(mut report) = self.report.lock() {
            update(&mut report);
        }
    }
}

/// Waits `backoff` (less if `stop` changes meanwhile), then doubles it up to `BACKOFF_MAX`.
async fn back_off(backoff: &mut Duration, stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        () = tokio::time::sleep(*backoff) => {}
        _ = stop.changed() => {}
    }
    *backoff = (*backoff * 2).min(BACKOFF_MAX);
}

fn input_record(partition: PartitionIndex, record: &ConsumedRecord) -> InputRecord {
    InputRecord {
        partition: partition.0,
        offset: record.offset.0,
        timestamp_ms: record.timestamp_ms,
        key: record.key.as_ref().map(|key| key.to_vec()),
        value: record.value.as_ref().map(|value| value.to_vec()),
        headers: record
            .headers
            .iter()
            .map(|(key, value)| crate::transform::Header {
                key: String::from_utf8_lossy(key).into_owned(),
                value: value.as_ref().map(|value| value.to_vec()),
            })
            .collect(),
    }
}

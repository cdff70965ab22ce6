//! The partition contract, and its local-log form.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use fjord_log::{AppendInfo, CompactionOutcome, Fetched, Log, LogConfig, TimestampOffset};
use tokio::sync::watch;

use crate::hooks::{HookPoint, Hooks};
use crate::{Error, Result};

/// The offsets a client can see for a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub log_start_offset: i64,
    pub high_watermark: i64,
    /// Equal to the high watermark until transactions arrive.
    pub last_stable_offset: i64,
    pub log_end_offset: i64,
}

/// How durable an append must be before it is acknowledged (Kafka's `acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// Written by the leader (`acks=1`, and `acks=0`, which waits for nothing visible).
    Leader,
    /// Durable as the partition's replication promises (`acks=all`).
    All,
}

/// Which records a reader may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Up to the high watermark (`read_uncommitted`).
    HighWatermark,
    /// Up to the last stable offset (`read_committed`).
    LastStable,
}

/// Everything the engine asks of a partition. A local log implements it today; a diskless
/// partition (object storage plus an ordering database) can implement it later.
///
/// Every method may block on I/O: the engine calls them only from its blocking pool, never
/// on an async worker. Methods past the data path (`set_config`, `maintain`, `compact`)
/// have defaults that do nothing, which is safe for a storage that manages itself.
pub trait PartitionStorage: Send + Sync + std::fmt::Debug {
    /// Validates and appends producer batches, durable as the flush policy says when it
    /// returns; moves the high watermark and wakes its watchers. `batches` is the producer's
    /// buffer, stored as it is but for the fields the broker owns (offsets, leader epoch,
    /// log-append time), never copied whole.
    fn append(&self, batches: &[u8], now_ms: i64) -> Result<AppendInfo>;

    /// The durability step of `acks=all`: returns once everything up to `last_offset` is as
    /// durable as the partition promises for it. A local single-replica log is its own
    /// in-sync replica set, so this is what its flush policy already did in `append` (as
    /// with Kafka on one broker) and the default returns at once; a diskless partition
    /// returns once the batches are in object storage and their order committed.
    fn make_durable(&self, _last_offset: i64) -> Result<()> {
        Ok(())
    }

    /// Appends to `out` whole stored batches from the one holding `offset`, at most
    /// `max_bytes` (unless the first batch alone is larger), none past what `isolation`
    /// lets the reader see. Returns the bytes appended.
    fn read_into(
        &self,
        offset: i64,
        max_bytes: usize,
        isolation: Isolation,
        out: &mut Vec<u8>,
    ) -> Result<usize>;

    /// Stored batches for a consumer from the batch holding `offset`, at most `max_bytes`:
    /// the first batch whole even when larger if `min_one_batch` (KIP-74), none if not.
    /// A local log answers with a range of a segment file where it can, so the bytes go to
    /// the socket with `sendfile`.
    fn fetch(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        isolation: Isolation,
    ) -> Result<Fetched>;

    fn offsets(&self) -> Result<PartitionOffsets>;

    /// The first record at or after `timestamp_ms`.
    fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<TimestampOffset>>;

    /// The first record with the largest timestamp below the high watermark.
    fn offset_of_max_timestamp(&self) -> Result<Option<TimestampOffset>>;

    /// Advances the log start offset to `offset` (DeleteRecords); returns the new one.
    fn delete_records(&self, offset: i64) -> Result<i64>;

    /// The high watermark, watched: every move is sent, so a reader can wait for new data on
    /// this partition alone.
    fn watch_high_watermark(&self) -> watch::Receiver<i64>;

    /// When the last append landed (wall-clock ms), or `None` if none since the partition
    /// was opened.
    fn last_append_ms(&self) -> Option<i64>;

    /// Applies a changed topic config.
    fn set_config(&self, _config: &LogConfig) -> Result<()> {
        Ok(())
    }

    /// Time-based upkeep: interval flushes, and retention when `retention` is set.
    fn maintain(&self, _now_ms: i64, _retention: bool) -> Result<()> {
        Ok(())
    }

    /// Runs a compaction round if one is due. The slow part must not hold up appends and
    /// reads.
    fn compact(&self, _now_ms: i64) -> Result<Option<CompactionOutcome>> {
        Ok(None)
    }
}

/// A partition kept in a local `fjord-log` log. A single node is its own in-sync replica
/// set, so the high watermark follows the log end offset after each append.
///
/// The log sits behind a read-write lock that appends hold across their write and sync, so
/// the offsets are also kept beside it, refreshed after every change: asking for them never
/// waits for the disk.
#[derive(Debug)]
pub struct LocalPartition {
    log: RwLock<Option<Log>>,
    offsets: Mutex<PartitionOffsets>,
    high_watermark: watch::Sender<i64>,
    last_append_ms: AtomicI64,
    hooks: Hooks,
}

/// `last_append_ms` before the first append.
const NEVER: i64 = i64::MIN;

impl LocalPartition {
    pub fn new(mut log: Log, hooks: Hooks) -> Self {
        // A single replica: everything in the log is replicated.
        let log_end_offset = log.log_end_offset();
        log.set_high_watermark(log_end_offset);
        let offsets = offsets_of(&log);
        Self {
            log: RwLock::new(Some(log)),
            offsets: Mutex::new(offsets),
            high_watermark: watch::Sender::new(log_end_offset),
            last_append_ms: AtomicI64::new(NEVER),
            hooks,
        }
    }

    /// Takes the log out for a close or delete; later calls fail with `PartitionClosed`.
    pub fn take_log(&self) -> Option<Log> {
        self.log.write().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Runs `f` on the log under the write lock, then refreshes the offsets kept beside it
    /// and tells watchers if the high watermark moved.
    fn with_log_mut<T>(&self, f: impl FnOnce(&mut Log) -> Result<T>) -> Result<T> {
        let mut guard = self.write()?;
        let log = guard.as_mut().ok_or(Error::PartitionClosed)?;
        let result = f(log);
        // Published while the log is still held, so that two changes are published in the
        // order they were made and the offsets never appear to go back.
        let offsets = offsets_of(log);
        *self.offsets.lock().unwrap_or_else(|e| e.into_inner()) = offsets;
        self.high_watermark.send_if_modified(|seen| {
            let moved = *seen != offsets.high_watermark;
            *seen = offsets.high_watermark;
            moved
        });
        drop(guard);
        result
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, Option<Log>>> {
        // A panic while holding the lock leaves the log's in-memory state unknown: refuse.
        self.log.read().map_err(|_| Error::PartitionClosed)
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, Option<Log>>> {
        self.log.write().map_err(|_| Error::PartitionClosed)
    }

    fn with_log<T>(&self, f: impl FnOnce(&Log) -> Result<T>) -> Result<T> {
        let guard = self.read()?;
        f(guard.as_ref().ok_or(Error::PartitionClosed)?)
    }
}

impl PartitionStorage for LocalPartition {
    fn append(&self, batches: &[u8], now_ms: i64) -> Result<AppendInfo> {
        let info = self.with_log_mut(|log| {
            let info = log.append(batches, 0, now_ms)?;
            let log_end_offset = log.log_end_offset();
            log.set_high_watermark(log_end_offset);
            self.last_append_ms.store(now_ms, Ordering::Release);
            Ok(info)
        })?;
        Ok(info)
    }

    fn read_into(
        &self,
        offset: i64,
        max_bytes: usize,
        _isolation: Isolation,
        out: &mut Vec<u8>,
    ) -> Result<usize> {
        self.with_log(|log| Ok(log.read_into(offset, max_bytes, log.high_watermark(), out)?))
    }

    fn fetch(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        _isolation: Isolation,
    ) -> Result<Fetched> {
        self.with_log(|log| {
            Ok(log.fetch(offset, max_bytes, log.high_watermark(), min_one_batch)?)
        })
    }

    fn offsets(&self) -> Result<PartitionOffsets> {
        Ok(*self.offsets.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<TimestampOffset>> {
        self.with_log(|log| {
            let found = log.offset_for_timestamp(timestamp_ms)?;
            Ok(found.filter(|f| f.offset < log.high_watermark()))
        })
    }

    fn offset_of_max_timestamp(&self) -> Result<Option<TimestampOffset>> {
        self.with_log(|log| {
            let found = log.offset_of_max_timestamp()?;
            Ok(found.filter(|f| f.offset < log.high_watermark()))
        })
    }

    fn delete_records(&self, offset: i64) -> Result<i64> {
        self.with_log_mut(|log| Ok(log.delete_records(offset)?))
    }

    fn watch_high_watermark(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    fn last_append_ms(&self) -> Option<i64> {
        Some(self.last_append_ms.load(Ordering::Acquire)).filter(|ms| *ms != NEVER)
    }

    fn set_config(&self, config: &LogConfig) -> Result<()> {
        self.with_log_mut(|log| Ok(log.set_config(config.clone())?))
    }

    fn maintain(&self, now_ms: i64, retention: bool) -> Result<()> {
        self.with_log_mut(|log| {
            log.flush_if_due(now_ms)?;
            if retention {
                log.apply_retention(now_ms)?;
            }
            Ok(())
        })
    }

    /// Plans and installs under the lock; the round itself runs outside it, so producers and
    /// consumers are not held up.
    fn compact(&self, now_ms: i64) -> Result<Option<CompactionOutcome>> {
        let plan = self.with_log_mut(|log| {
            Ok(log
                .compaction_due(now_ms)
                .then(|| log.compaction_plan(now_ms))
                .flatten())
        })?;
        let Some(plan) = plan else {
            return Ok(None);
        };
        self.hooks.reached(HookPoint::CompactionRunning);
        let compacted = plan.run()?;
        let outcome = self.with_log_mut(|log| Ok(log.install_compaction(compacted)?))?;
        Ok(Some(outcome))
    }
}

fn offsets_of(log: &Log) -> PartitionOffsets {
    PartitionOffsets {
        log_start_offset: log.log_start_offset(),
        high_watermark: log.high_watermark(),
        last_stable_offset: log.high_watermark(),
        log_end_offset: log.log_end_offset(),
    }
}

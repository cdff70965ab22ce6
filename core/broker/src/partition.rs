//! The narrow interface through which handlers reach a partition, and its local-log form.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use fjord_log::{AppendInfo, Fetched, Log, TimestampOffset};

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

/// Which records a reader may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Up to the high watermark (`read_uncommitted`).
    HighWatermark,
    /// Up to the last stable offset (`read_committed`).
    LastStable,
}

/// Everything the broker asks of a partition. A local log implements it today; a diskless
/// partition (object storage plus an ordering database) can implement it later.
pub trait PartitionStorage: Send + Sync + std::fmt::Debug {
    /// Validates and appends producer batches (offsets assigned in place). Returns where
    /// they went.
    fn append(&self, batches: &mut [u8], now_ms: i64) -> Result<AppendInfo>;

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

    /// Advances the log start offset to `offset` (DeleteRecords); returns the new one.
    fn delete_records(&self, offset: i64) -> Result<i64>;
}

/// A partition kept in a local `fjord-log` log. A single node is its own in-sync replica
/// set, so the high watermark follows the log end offset after each append.
#[derive(Debug)]
pub struct LocalPartition {
    log: RwLock<Option<Log>>,
}

impl LocalPartition {
    pub fn new(mut log: Log) -> Self {
        // A single replica: everything in the log is replicated.
        let log_end_offset = log.log_end_offset();
        log.set_high_watermark(log_end_offset);
        Self {
            log: RwLock::new(Some(log)),
        }
    }

    /// Takes the log out for a clean close; later calls fail with `PartitionClosed`.
    pub fn take_log(&self) -> Option<Log> {
        self.log.write().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Runs `f` on the log under the write lock.
    pub fn with_log_mut<T>(&self, f: impl FnOnce(&mut Log) -> Result<T>) -> Result<T> {
        let mut guard = self.write()?;
        let log = guard.as_mut().ok_or(Error::PartitionClosed)?;
        f(log)
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
    fn append(&self, batches: &mut [u8], now_ms: i64) -> Result<AppendInfo> {
        self.with_log_mut(|log| {
            let info = log.append(batches, 0, now_ms)?;
            let log_end_offset = log.log_end_offset();
            log.set_high_watermark(log_end_offset);
            Ok(info)
        })
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
        self.with_log(|log| {
            Ok(PartitionOffsets {
                log_start_offset: log.log_start_offset(),
                high_watermark: log.high_watermark(),
                last_stable_offset: log.high_watermark(),
                log_end_offset: log.log_end_offset(),
            })
        })
    }

    fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<TimestampOffset>> {
        self.with_log(|log| {
            let found = log.offset_for_timestamp(timestamp_ms)?;
            Ok(found.filter(|f| f.offset < log.high_watermark()))
        })
    }

    fn delete_records(&self, offset: i64) -> Result<i64> {
        self.with_log_mut(|log| Ok(log.delete_records(offset)?))
    }
}

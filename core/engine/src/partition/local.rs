//! [`LocalPartition`]: a partition kept in a local `fjord-log` log.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use fjord_log::{Fetched, Log, TopicConfig};
use tokio::sync::watch;

use super::{
    Appended, Batches, Isolation, PartitionOffsets, PartitionStorage, Read, ReadRange,
    StorageFuture, TimestampOffset,
};
use crate::blocking::BlockingPool;
use crate::hooks::{HookPoint, Hooks};
use crate::{Error, Result};
use fjord_partition::Offset;

/// A partition kept in a local `fjord-log` log. A single node is its own in-sync replica
/// set, so the high watermark follows the log end offset after each append, and `acks=all`
/// asks nothing more of it than `acks=1`.
///
/// Every file operation runs on the engine's blocking pool. The log sits behind a
/// read-write lock that appends hold across their write and sync, so the offsets are also
/// kept beside it, refreshed after every change: asking for them never waits for the disk.
#[derive(Debug)]
pub struct LocalPartition {
    shared: Arc<Shared>,
    pool: BlockingPool,
}

#[derive(Debug)]
struct Shared {
    log: RwLock<Option<Log>>,
    offsets: Mutex<PartitionOffsets>,
    high_watermark: watch::Sender<Offset>,
    last_append_ms: AtomicI64,
    /// When the log's interval flush is next due (`NEVER_DUE` if nothing waits for one), so
    /// an upkeep round skips partitions with nothing to do without taking their lock.
    flush_due_ms: AtomicI64,
    hooks: Hooks,
}

/// `last_append_ms` before the first append.
const NEVER: i64 = i64::MIN;
/// `flush_due_ms` when no flush is due.
const NEVER_DUE: i64 = i64::MAX;

impl LocalPartition {
    pub(crate) fn new(mut log: Log, pool: BlockingPool, hooks: Hooks) -> Self {
        // A single replica: everything in the log is replicated.
        let log_end_offset = log.log_end_offset();
        log.set_high_watermark(log_end_offset);
        let offsets = offsets_of(&log);
        let flush_due_ms = log.flush_due_ms().unwrap_or(NEVER_DUE);
        let shared = Shared {
            log: RwLock::new(Some(log)),
            offsets: Mutex::new(offsets),
            high_watermark: watch::Sender::new(Offset(log_end_offset)),
            last_append_ms: AtomicI64::new(NEVER),
            flush_due_ms: AtomicI64::new(flush_due_ms),
            hooks,
        };
        Self {
            shared: Arc::new(shared),
            pool,
        }
    }

    /// Takes the log out for a delete; later calls fail with `PartitionClosed`.
    pub(crate) fn take_log(&self) -> Option<Log> {
        self.shared
            .log
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Runs `job` on the shared state on the blocking pool.
    fn on_pool<T, F>(&self, job: F) -> StorageFuture<'_, T>
    where
        F: FnOnce(&Shared) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        Box::pin(self.pool.run(move || job(&shared)))
    }
}

impl Shared {
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
        self.flush_due_ms
            .store(log.flush_due_ms().unwrap_or(NEVER_DUE), Ordering::Release);
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

    fn append(&self, batches: &[u8], now_ms: i64) -> Result<Appended> {
        self.with_log_mut(|log| {
            let info = log.append(batches, 0, now_ms)?;
            let log_end_offset = log.log_end_offset();
            log.set_high_watermark(log_end_offset);
            self.last_append_ms.store(now_ms, Ordering::Release);
            Ok(Appended {
                base_offset: Offset(info.base_offset),
                last_offset: Offset(info.last_offset),
                log_append_time_ms: info.log_append_time_ms,
                records_count: info.records_count,
                log_start_offset: Offset(log.log_start_offset()),
                duplicate: info.duplicate,
            })
        })
    }

    fn read_batches(&self, range: ReadRange) -> Result<Read> {
        self.with_log(|log| {
            let visible_end = match range.isolation {
                Isolation::HighWatermark => log.high_watermark(),
                Isolation::LastStable => log.last_stable_offset(),
            };
            let fetched = log.fetch(
                range.offset.0,
                range.max_bytes,
                visible_end,
                range.min_one_batch,
            )?;
            let batches = match fetched {
                Fetched::Copied(bytes) => Batches::Memory(bytes),
                Fetched::Slice(range) => Batches::File(range),
            };
            let aborted_transactions = match range.isolation {
                Isolation::LastStable if !batches.is_empty() => {
                    let end = batches.next_offset().map_or(visible_end, |end| end.0);
                    log.aborted_transactions(range.offset.0, end)
                }
                _ => Vec::new(),
            };
            Ok(Read {
                batches,
                aborted_transactions,
            })
        })
    }

    /// Plans and installs under the lock; the round itself runs outside it, so producers and
    /// consumers are not held up.
    fn compact(&self, now_ms: i64) -> Result<bool> {
        let plan = self.with_log_mut(|log| {
            Ok(log
                .compaction_due(now_ms)
                .then(|| log.compaction_plan(now_ms))
                .flatten())
        })?;
        let Some(plan) = plan else {
            return Ok(false);
        };
        self.hooks.reached(HookPoint::CompactionRunning);
        let compacted = plan.run()?;
        let outcome = self.with_log_mut(|log| Ok(log.install_compaction(compacted)?))?;
        tracing::debug!(?outcome, "compaction installed");
        Ok(true)
    }
}

impl PartitionStorage for LocalPartition {
    fn append(&self, batches: Bytes, now_ms: i64) -> StorageFuture<'_, Appended> {
        self.on_pool(move |shared| shared.append(&batches, now_ms))
    }

    fn read(&self, range: ReadRange) -> StorageFuture<'_, Read> {
        self.on_pool(move |shared| shared.read_batches(range))
    }

    fn offsets(&self) -> Result<PartitionOffsets> {
        Ok(*self
            .shared
            .offsets
            .lock()
            .unwrap_or_else(|e| e.into_inner()))
    }

    fn offset_for_timestamp(
        &self,
        timestamp_ms: i64,
    ) -> StorageFuture<'_, Option<TimestampOffset>> {
        self.on_pool(move |shared| {
            shared.with_log(|log| {
                let found = log.offset_for_timestamp(timestamp_ms)?;
                Ok(visible(found, log))
            })
        })
    }

    fn offset_of_max_timestamp(&self) -> StorageFuture<'_, Option<TimestampOffset>> {
        self.on_pool(|shared| {
            shared.with_log(|log| {
                let found = log.offset_of_max_timestamp()?;
                Ok(visible(found, log))
            })
        })
    }

    fn delete_records(&self, offset: Offset) -> StorageFuture<'_, Offset> {
        self.on_pool(move |shared| {
            shared.with_log_mut(|log| Ok(Offset(log.delete_records(offset.0)?)))
        })
    }

    fn watch_high_watermark(&self) -> watch::Receiver<Offset> {
        self.shared.high_watermark.subscribe()
    }

    fn last_append_ms(&self) -> Option<i64> {
        Some(self.shared.last_append_ms.load(Ordering::Acquire)).filter(|ms| *ms != NEVER)
    }

    fn set_config(&self, config: &TopicConfig) -> Result<()> {
        self.shared
            .with_log_mut(|log| Ok(log.set_config(config.clone())?))
    }

    fn maintain(&self, now_ms: i64, retention: bool) -> StorageFuture<'_, ()> {
        if !retention && now_ms < self.shared.flush_due_ms.load(Ordering::Acquire) {
            return Box::pin(std::future::ready(Ok(())));
        }
        self.on_pool(move |shared| {
            shared.with_log_mut(|log| {
                log.flush_if_due(now_ms)?;
                if retention {
                    log.apply_retention(now_ms)?;
                }
                Ok(())
            })
        })
    }

    fn compact(&self, now_ms: i64) -> StorageFuture<'_, bool> {
        self.on_pool(move |shared| shared.compact(now_ms))
    }

    /// Closes the log: flushed, its producer snapshot and checkpoints written.
    fn close(&self) -> StorageFuture<'_, ()> {
        // Taken on the pool: an append still in flight holds the lock across its sync.
        self.on_pool(|shared| {
            let log = shared.log.write().unwrap_or_else(|e| e.into_inner()).take();
            match log {
                Some(log) => Ok(log.close()?),
                None => Ok(()),
            }
        })
    }
}

/// A record found by time, if below the high watermark.
fn visible(found: Option<fjord_log::TimestampOffset>, log: &Log) -> Option<TimestampOffset> {
    found
        .filter(|f| f.offset < log.high_watermark())
        .map(|f| TimestampOffset {
            timestamp_ms: f.timestamp,
            offset: Offset(f.offset),
        })
}

fn offsets_of(log: &Log) -> PartitionOffsets {
    PartitionOffsets {
        log_start_offset: Offset(log.log_start_offset()),
        high_watermark: Offset(log.high_watermark()),
        last_stable_offset: Offset(log.last_stable_offset()),
        log_end_offset: Offset(log.log_end_offset()),
    }
}

//! The partition contract ([`PartitionStorage`]), the neutral types it speaks, and its
//! local-log form ([`LocalPartition`]).
//!
//! The contract is what the engine needs of a partition and no more, in types of the engine's
//! own: a storage other than `fjord-log` (a diskless partition keeping batches in object
//! storage and their order in PostgreSQL) implements it without knowing the log crate.

mod local;

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use fjord_partition::{AbortedTransaction, FileRange, TopicConfig};
use tokio::sync::watch;

pub use self::local::LocalPartition;
use crate::Result;
use fjord_partition::Offset;

/// The offsets a client can see for a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub log_start_offset: Offset,
    pub high_watermark: Offset,
    /// The high watermark held back to the first offset of the oldest open transaction:
    /// where a `read_committed` reader stops.
    pub last_stable_offset: Offset,
    pub log_end_offset: Offset,
}

impl PartitionOffsets {
    /// Where a reader under `isolation` must stop.
    pub fn visible_end(&self, isolation: Isolation) -> Offset {
        match isolation {
            Isolation::HighWatermark => self.high_watermark,
            Isolation::LastStable => self.last_stable_offset,
        }
    }
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

/// Where an append went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: Offset,
    pub last_offset: Offset,
    /// The log-append time stamped on the batches, or -1 under `CreateTime`.
    pub log_append_time_ms: i64,
    pub records_count: i64,
    /// The partition's log start offset after the append.
    pub log_start_offset: Offset,
    /// A producer's retry of batches already in the log: nothing was written and the
    /// offsets are the original's.
    pub duplicate: bool,
}

/// One read of a partition: from the batch holding `offset`, at most `max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadRange {
    pub offset: Offset,
    pub max_bytes: usize,
    /// The first batch goes whole even when larger than `max_bytes` (KIP-74); without it, a
    /// first batch that does not fit means an empty answer.
    pub min_one_batch: bool,
    pub isolation: Isolation,
}

/// Whole stored batches (record batch v2, CRC checked), as a read found them.
#[derive(Debug, Clone)]
pub enum Batches {
    /// A range of a file, so the bytes can go to a socket with `sendfile`.
    File(FileRange),
    /// Batches in memory.
    Memory(Bytes),
}

impl Batches {
    /// No batches.
    pub fn none() -> Self {
        Self::Memory(Bytes::new())
    }

    pub fn len(&self) -> usize {
        match self {
            Self::File(range) => range.len(),
            Self::Memory(bytes) => bytes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The offset after the last batch, `None` when there is none (or the bytes do not
    /// parse, which a storage's checked batches always do).
    pub fn next_offset(&self) -> Option<Offset> {
        match self {
            Self::File(range) if !range.is_empty() => Some(range.offsets().end),
            Self::File(_) => None,
            Self::Memory(bytes) => fjord_record::batches(bytes)
                .map_while(|batch| batch.ok())
                .last()
                .map(|batch| Offset(batch.header.next_offset())),
        }
    }

    /// The bytes, read from the file for a file range. Blocking: call it off the async
    /// workers.
    pub fn into_bytes(self) -> std::io::Result<Bytes> {
        match self {
            Self::File(range) => range.read_to_vec().map(Bytes::from),
            Self::Memory(bytes) => Ok(bytes),
        }
    }
}

/// What a read of one partition found.
#[derive(Debug, Clone)]
pub struct Read {
    pub batches: Batches,
    /// Under [`Isolation::LastStable`], the aborted transactions with records among
    /// `batches` (a reader skips their records); empty otherwise.
    pub aborted_transactions: Vec<AbortedTransaction>,
}

impl Read {
    /// Nothing found.
    pub fn none() -> Self {
        Self {
            batches: Batches::none(),
            aborted_transactions: Vec::new(),
        }
    }
}

/// A record found by its timestamp (ListOffsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub timestamp_ms: i64,
    pub offset: Offset,
}

/// What a [`PartitionStorage`] method returns when it may wait: for the disk, the network
/// or another writer.
pub type StorageFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

fn ready<'a, T: Send + 'a>(value: Result<T>) -> StorageFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

/// Everything the engine asks of a partition. A local log implements it today
/// ([`LocalPartition`]); a diskless partition (object storage plus an ordering database)
/// can implement it later, with no type of `fjord-log` in the way.
///
/// Methods that may wait return a [`StorageFuture`]: the implementation decides where its
/// waiting happens (the local log on the engine's blocking pool, a diskless one on the
/// network) and never blocks the async worker that polls it. The synchronous methods read
/// memory only; `set_config` may wait for the partition's lock and is called from the
/// blocking pool. Lifecycle methods past the data path (`set_config`, `maintain`, `compact`,
/// `close`) have defaults that do nothing, which is safe for a storage that manages itself.
pub trait PartitionStorage: Send + Sync + std::fmt::Debug {
    /// Validates and appends producer batches (record batch v2, one or more), stored as they
    /// are but for the fields the broker owns (offsets, leader epoch, log-append time),
    /// never copied whole. Returns once the leader has them (`acks=1`): readable below the
    /// new high watermark, durable as the topic's flush policy says. A producer's retry of
    /// batches already stored is answered with the original offsets, `duplicate` set.
    fn append(&self, batches: Bytes, now_ms: i64) -> StorageFuture<'_, Appended>;

    /// The durability step of `acks=all`: returns once everything up to `last_offset` is as
    /// durable as the partition promises for it. A local single-replica log is its own
    /// in-sync replica set, so this is what its flush policy already did in `append` (as
    /// with Kafka on one broker) and the default returns at once; a diskless partition
    /// returns once the batches are in object storage and their order committed.
    fn make_durable(&self, _last_offset: Offset) -> StorageFuture<'_, ()> {
        ready(Ok(()))
    }

    /// Whole stored batches from the one holding `range.offset`, within `range.max_bytes`
    /// (see [`ReadRange`]), none past what `range.isolation` lets the reader see; for a
    /// `read_committed` reader, with the aborted transactions among them.
    fn read(&self, range: ReadRange) -> StorageFuture<'_, Read>;

    /// The partition's offsets, from memory: never waits for an append in progress.
    fn offsets(&self) -> Result<PartitionOffsets>;

    /// The first record at or after `timestamp_ms`, below the high watermark.
    fn offset_for_timestamp(&self, timestamp_ms: i64)
    -> StorageFuture<'_, Option<TimestampOffset>>;

    /// The first record with the largest timestamp below the high watermark.
    fn offset_of_max_timestamp(&self) -> StorageFuture<'_, Option<TimestampOffset>>;

    /// Advances the log start offset to `offset` (DeleteRecords); returns the new one.
    fn delete_records(&self, offset: Offset) -> StorageFuture<'_, Offset>;

    /// The high watermark, watched: every move is sent, so a reader can wait for new data on
    /// this partition alone.
    fn watch_high_watermark(&self) -> watch::Receiver<Offset>;

    /// When the last append landed (wall-clock ms), or `None` if none since the partition
    /// was opened.
    fn last_append_ms(&self) -> Option<i64>;

    /// Applies a changed topic config, already validated whole.
    fn set_config(&self, _config: &TopicConfig) -> Result<()> {
        Ok(())
    }

    /// Time-based upkeep: interval flushes, and retention when `retention` is set.
    fn maintain(&self, _now_ms: i64, _retention: bool) -> StorageFuture<'_, ()> {
        ready(Ok(()))
    }

    /// Runs a compaction round if one is due; returns whether one ran. The slow part must
    /// not hold up appends and reads.
    fn compact(&self, _now_ms: i64) -> StorageFuture<'_, bool> {
        ready(Ok(false))
    }

    /// Makes everything appended durable and lets go of the partition's resources; later
    /// appends, reads and maintenance fail with `PartitionClosed` (the memory-only methods
    /// keep answering with the last values). Called at shutdown.
    fn close(&self) -> StorageFuture<'_, ()> {
        ready(Ok(()))
    }
}

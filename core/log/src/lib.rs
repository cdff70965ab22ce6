//! Fjord's partition log: the durable, segmented store of Kafka record batches.
//!
//! A [`Log`] holds one partition. It stores batches exactly as producers sent them (format
//! v2, checked by the rules every storage shares, `fjord_partition::check_batches`), assigning only the base offset, the leader epoch and, if
//! the topic asks, the log-append time. Reads hand back the stored bytes, CRC-checked once, never
//! re-encoded. A [`Store`] is the data directory of many logs: it shares one [`FilePool`]
//! that caps open files, and owns the clean-shutdown marker.
//!
//! The log does no networking and spawns no threads. Time comes in as `now_ms` arguments,
//! so every behaviour (rolling, retention, flush intervals, tombstone expiry) is
//! deterministic under test. Mutations take `&mut self` and reads `&self`: the owner picks
//! the locking. Compaction is split so its slow part runs without the log
//! ([`CompactionPlan::run`]).
//!
//! # Offsets
//! `log_start_offset <= high_watermark <= log_end_offset`. The log end offset is where the
//! next record goes. The high watermark is set by the owner (replication, or `acks` on a
//! single node); the log only clamps it. The log start offset moves with retention and
//! DeleteRecords. Each batch records the leader epoch it was written in, and the epoch cache
//! (`leader-epoch-checkpoint`) summarises them, so replication needs no format change.
//!
//! # On disk
//! ```text
//! STORE/                              (a broker's `DATA_DIR/logs`)
//!   .clean-shutdown                   written last at a clean stop, removed at open
//!   TOPIC-PARTITION.deleted/          a log being deleted: renamed aside, then removed
//!   TOPIC-PARTITION/
//!     00000000000000000000.log        batches, back to back
//!     00000000000000000000.index      (last offset - base, position) every index.interval.bytes
//!     00000000000000000000.timeindex  (max timestamp so far, its offset - base), same points
//!     00000000000000000000.txnindex   per transaction aborted by a marker in the segment:
//!                                     producer id, first offset, marker offset, last stable
//!                                     offset after it (+ CRC each); only once there is one
//!     fjord.checkpoint                log start offset, recovery point, high watermark (+ CRC)
//!     leader-epoch-checkpoint         epoch -> start offset (+ CRC)
//!     producer.snapshot               per producer id: epoch, last timestamp, the first offset
//!                                     of its open transaction (-1: none), its last five
//!                                     batches' sequences and offsets; the log end offset it
//!                                     covers (text "fjord-producer-snapshot v2", v1 read too,
//!                                     + CRC)
//!     compaction.tmp/                 cleaned segments being written (recovery removes it)
//!     *.tmp                           a small file being replaced atomically (removed too)
//! ```
//!
//! # Write, sync and recovery protocol
//! Append:
//! 1. Check every batch of the request (lengths, magic, CRC-32C, record count, every record,
//!    decompressing under a limit) before writing anything. One bad batch rejects all.
//! 2. Roll first if the active segment would pass `segment.bytes` or is older than
//!    `segment.ms`. Rolling syncs the old segment and its indexes, creates the new files,
//!    syncs the directory, then writes the checkpoint with the recovery point at the new
//!    segment's base.
//! 3. Write base offsets and the leader epoch into a copy of each batch's 61-byte header
//!    (outside the CRC), and the log-append time if configured (CRC recomputed over the new
//!    header and the untouched records). The producer's buffer is never changed or copied.
//!    A new leader epoch is written to the epoch cache (atomically) before the data.
//! 4. One `pwritev` of each new header followed by its records, at the end of the active
//!    segment; index entries buffered.
//! 5. Flush policy: `EveryBatch` runs `fdatasync` before returning, so a returned append is
//!    on disk; `IntervalMs` syncs once the oldest unsynced append is that old; `Os` leaves it
//!    to the page cache (survives a process crash, not power loss).
//!
//! Small files (checkpoint, epoch cache) are written to a temporary file, synced, renamed
//! over the old one, and the directory synced; each carries a CRC and is ignored if damaged.
//!
//! Clean shutdown: [`Store::close`] syncs every log (data and indexes), writes their
//! checkpoints, then creates `.clean-shutdown`. [`Store::open`] removes the marker at once.
//!
//! Recovery ([`Recovery::Full`], when the marker is missing):
//! 1. Remove leftovers of interrupted work (`*.tmp`, the compaction scratch directory).
//! 2. Delete segments wholly below the checkpointed log start offset.
//! 3. Segments ending at or below the recovery point are trusted (synced before the
//!    checkpoint was written). From the segment holding the recovery point on, read every
//!    batch: length in bounds, magic 2, CRC-32C, base offset not below the previous batch's
//!    end. Rebuild both indexes from what is valid.
//! 4. At the first invalid batch, truncate the file there (a torn write: nothing past it was
//!    acknowledged under a syncing policy) and delete every later segment.
//! 5. Truncate the epoch cache to the new log end offset, sync, write the checkpoint.
//!
//! Trusted segments still have their indexes checked (whole entries, ordered, the last entry
//! pointing at a batch with the offset it claims) and rebuilt if not. Every read checks each
//! batch's length, magic and offsets, and its CRC unless the batch was verified since the log
//! was opened: each segment keeps a verified watermark, below which every batch was checked
//! at append (before it was written), by recovery, or by an earlier read. So each byte on
//! disk is CRC-checked once per process before it is served, and steady-state reads cost a
//! copy, not a checksum. Index entries are verified against the batch they point at. Damage
//! in an old segment is reported as [`Error::Corrupt`] with the file and byte position,
//! never served as data.
//!
//! # Invariants
//! - Segments are contiguous and ordered: each starts at or after the end of the previous.
//! - Offsets only grow within a log; compaction removes records but never renumbers them.
//! - Nothing from disk or from a producer is trusted before it is checked; no input panics.
//! - At most the pool's capacity of files is open, however many logs are loaded.

mod checkpoint;
mod compaction;
mod epoch;
mod error;
mod index;
pub mod limits;
mod log;
mod pool;
mod producer;
mod retention;
mod scan;
mod segment;
mod store;
mod txn_index;

pub use compaction::{Compacted, CompactionOutcome, CompactionPlan};
pub use epoch::EpochEntry;
pub use error::{Error, Result};
pub use fjord_partition::{AbortedTransaction, FileRange};
pub use fjord_partition::{CleanupPolicy, FlushPolicy, TopicConfig};
pub use fjord_partition::{PRODUCER_EXPIRATION_MS, PRODUCERS_MAX, ProducerBatch};
pub use fjord_partition::{RecordError, RecordRule};
pub use log::{AppendInfo, Fetched, Log, OpenReport, Recovery};
pub use pool::FilePool;
pub use retention::RetentionOutcome;
pub use segment::TimestampOffset;
pub use store::{Store, TopicPartition};

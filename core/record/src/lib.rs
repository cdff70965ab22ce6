//! Kafka record batches, format v2 (magic 2), as they travel on the wire and sit in the log.
//!
//! Every layer of Fjord handles records in this one format: producers send it, the log stores it
//! byte for byte, fetches return it, SQL decodes it. This crate is the only place that knows the
//! layout, so the others never hand-parse a batch.
//!
//! - [`BatchHeader`] parses the fixed 61-byte header; [`batches`] walks a buffer of batches and
//!   checks each declared length against what is really there before anything is read past it.
//! - [`validate_batch`] is the full check for untrusted input: header, CRC-32C, and every record
//!   (decompressed under a size limit).
//! - [`Records`] iterates the records of a batch as zero-copy [`Record`] views over the
//!   (decompressed) record bytes; [`BatchBuilder`] encodes new batches.
//! - [`assign`] rewrites the fields the broker owns (base offset, leader epoch, log-append time)
//!   without touching the records.
//!
//! # Invariants
//! - No function in this crate panics on any input: every length is checked against the buffer
//!   and against a limit before it is used, and decompression stops at a caller-given size.
//! - The CRC covers bytes `21..` of a batch (attributes onwards). The base offset and the
//!   partition leader epoch sit before it, so the broker may set them without recomputing it.

mod assign;
mod batch;
mod builder;
mod compression;
mod control;
mod error;
mod header;
mod record;
mod varint;

pub use assign::{assign, set_log_append_time, set_log_append_time_split};
pub use batch::{Batch, BatchIter, batches, validate_batch, validate_batch_with};
pub use builder::{BatchBuilder, NewRecord, rebuild, recompress};
pub use compression::{Compression, compress, decompress};
pub use control::ControlType;
pub use error::{Error, Result};
pub use header::{
    Attributes, BATCH_OVERHEAD_BYTES, BatchHeader, HEADER_BYTES, MAGIC_V2, NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID, NO_SEQUENCE, TimestampType,
};
pub use record::{Header, HeaderIter, Record, Records};

/// The largest decompressed size of one batch's records this crate will produce (256 MiB).
///
/// Decompression output is bounded by this, or by a smaller limit the caller passes, so a small
/// compressed batch cannot inflate into an allocation that takes the process down.
pub const DECOMPRESSED_BYTES_MAX: usize = 256 * 1024 * 1024;

/// The most records one batch may declare. Kafka has no explicit cap; a batch of one million
/// empty records is 7 MiB, far above any sane `max.message.bytes`.
pub const RECORDS_PER_BATCH_MAX: i32 = 1 << 20;

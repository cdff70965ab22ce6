//! The fixed 61-byte header of a v2 record batch.
//!
//! ```text
//! offset  size  field
//!      0     8  base_offset
//!      8     4  batch_length           bytes after this field (total length - 12)
//!     12     4  partition_leader_epoch set by the broker, not covered by the CRC
//!     16     1  magic                  2
//!     17     4  crc                    CRC-32C of bytes 21..end
//!     21     2  attributes
//!     23     4  last_offset_delta
//!     27     8  base_timestamp
//!     35     8  max_timestamp
//!     43     8  producer_id
//!     51     2  producer_epoch
//!     53     4  base_sequence
//!     57     4  records_count
//!     61        records
//! ```

use crate::{Compression, Error, Result};

/// Size of the fixed batch header.
pub const HEADER_BYTES: usize = 61;
/// Bytes before `batch_length`'s count starts: `base_offset` and `batch_length` themselves.
pub const BATCH_OVERHEAD_BYTES: usize = 12;
/// The only record format this crate reads and writes.
pub const MAGIC_V2: i8 = 2;
/// `producer_id` of a batch from a producer without idempotence.
pub const NO_PRODUCER_ID: i64 = -1;
/// `producer_epoch` of a batch from a producer without idempotence.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// `base_sequence` of a batch from a producer without idempotence.
pub const NO_SEQUENCE: i32 = -1;

pub(crate) const BASE_OFFSET_AT: usize = 0;
pub(crate) const BATCH_LENGTH_AT: usize = 8;
pub(crate) const PARTITION_LEADER_EPOCH_AT: usize = 12;
pub(crate) const MAGIC_AT: usize = 16;
pub(crate) const CRC_AT: usize = 17;
pub(crate) const ATTRIBUTES_AT: usize = 21;
pub(crate) const LAST_OFFSET_DELTA_AT: usize = 23;
pub(crate) const BASE_TIMESTAMP_AT: usize = 27;
pub(crate) const MAX_TIMESTAMP_AT: usize = 35;
pub(crate) const PRODUCER_ID_AT: usize = 43;
pub(crate) const PRODUCER_EPOCH_AT: usize = 51;
pub(crate) const BASE_SEQUENCE_AT: usize = 53;
pub(crate) const RECORDS_COUNT_AT: usize = 57;

/// Which clock a batch's timestamps come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// Set by the producer.
    CreateTime,
    /// Set by the broker when it appended the batch.
    LogAppendTime,
}

/// The 16-bit attributes field of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attributes(pub i16);

impl Attributes {
    const COMPRESSION_MASK: i16 = 0b111;
    const TIMESTAMP_TYPE: i16 = 1 << 3;
    const TRANSACTIONAL: i16 = 1 << 4;
    const CONTROL: i16 = 1 << 5;
    const DELETE_HORIZON: i16 = 1 << 6;

    /// The compression codec id (0 to 7; only 0 to 4 are defined).
    pub fn compression_id(self) -> u8 {
        (self.0 & Self::COMPRESSION_MASK) as u8
    }

    pub fn timestamp_type(self) -> TimestampType {
        if self.0 & Self::TIMESTAMP_TYPE != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Part of a transaction: invisible to `read_committed` consumers until committed.
    pub fn is_transactional(self) -> bool {
        self.0 & Self::TRANSACTIONAL != 0
    }

    /// A control batch (transaction commit or abort marker), never handed to applications.
    pub fn is_control(self) -> bool {
        self.0 & Self::CONTROL != 0
    }

    /// The base timestamp holds the delete horizon of the batch's tombstones (KIP-534).
    pub fn has_delete_horizon(self) -> bool {
        self.0 & Self::DELETE_HORIZON != 0
    }

    pub fn with_compression(self, compression: Compression) -> Self {
        Self((self.0 & !Self::COMPRESSION_MASK) | i16::from(compression.id()))
    }

    pub fn with_timestamp_type(self, timestamp_type: TimestampType) -> Self {
        match timestamp_type {
            TimestampType::CreateTime => Self(self.0 & !Self::TIMESTAMP_TYPE),
            TimestampType::LogAppendTime => Self(self.0 | Self::TIMESTAMP_TYPE),
        }
    }

    pub fn with_transactional(self, transactional: bool) -> Self {
        self.with_flag(Self::TRANSACTIONAL, transactional)
    }

    pub fn with_control(self, control: bool) -> Self {
        self.with_flag(Self::CONTROL, control)
    }

    fn with_flag(self, flag: i16, on: bool) -> Self {
        if on {
            Self(self.0 | flag)
        } else {
            Self(self.0 & !flag)
        }
    }
}

/// The parsed fixed header of one batch. Plain data: parsing checks nothing but the length of
/// the slice; [`crate::batches`] and [`crate::validate_batch`] do the checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: Attributes,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the first [`HEADER_BYTES`] of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let Some(h) = bytes.get(..HEADER_BYTES) else {
            return Err(Error::Truncated {
                position: 0,
                needed_bytes: HEADER_BYTES,
                available_bytes: bytes.len(),
            });
        };
        Ok(Self {
            base_offset: read_i64(h, BASE_OFFSET_AT),
            batch_length: read_i32(h, BATCH_LENGTH_AT),
            partition_leader_epoch: read_i32(h, PARTITION_LEADER_EPOCH_AT),
            magic: h[MAGIC_AT] as i8,
            crc: read_i32(h, CRC_AT) as u32,
            attributes: Attributes(read_i16(h, ATTRIBUTES_AT)),
            last_offset_delta: read_i32(h, LAST_OFFSET_DELTA_AT),
            base_timestamp: read_i64(h, BASE_TIMESTAMP_AT),
            max_timestamp: read_i64(h, MAX_TIMESTAMP_AT),
            producer_id: read_i64(h, PRODUCER_ID_AT),
            producer_epoch: read_i16(h, PRODUCER_EPOCH_AT),
            base_sequence: read_i32(h, BASE_SEQUENCE_AT),
            records_count: read_i32(h, RECORDS_COUNT_AT),
        })
    }

    /// Reads only `base_offset` and `batch_length`, the 12 bytes needed to step over a batch.
    pub fn parse_prefix(bytes: &[u8]) -> Option<(i64, i32)> {
        let h = bytes.get(..BATCH_OVERHEAD_BYTES)?;
        Some((read_i64(h, BASE_OFFSET_AT), read_i32(h, BATCH_LENGTH_AT)))
    }

    /// Total size of the batch in bytes, header included.
    pub fn size_bytes(&self) -> usize {
        BATCH_OVERHEAD_BYTES + self.batch_length.max(0) as usize
    }

    /// Offset of the last record the batch was written with. Compaction may remove records but
    /// keeps this, so the next batch always starts at `last_offset() + 1`.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// The offset after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// The codec, or `None` for an undefined codec id.
    pub fn compression(&self) -> Option<Compression> {
        Compression::from_id(self.attributes.compression_id())
    }
}

pub(crate) fn read_i16(bytes: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([bytes[at], bytes[at + 1]])
}

pub(crate) fn read_i32(bytes: &[u8], at: usize) -> i32 {
    let mut b = [0; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    i32::from_be_bytes(b)
}

pub(crate) fn read_i64(bytes: &[u8], at: usize) -> i64 {
    let mut b = [0; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    i64::from_be_bytes(b)
}

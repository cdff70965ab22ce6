use crate::Compression;

/// Everything that can be wrong with a record batch.
///
/// `position` fields are byte positions inside the buffer handed to the function that failed,
/// so a caller reading a file can add its own file position and report both.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    #[error(
        "batch at byte {position} is truncated: {needed_bytes} bytes needed, {available_bytes} available"
    )]
    Truncated {
        position: usize,
        needed_bytes: usize,
        available_bytes: usize,
    },
    #[error("batch at byte {position} declares length {batch_length}, outside {min}..={max}")]
    InvalidLength {
        position: usize,
        batch_length: i64,
        min: i64,
        max: i64,
    },
    #[error(
        "batch at byte {position} has magic {magic}; only record format v2 (magic 2) is supported"
    )]
    UnsupportedMagic { position: usize, magic: i8 },
    #[error(
        "batch at byte {position} fails its CRC-32C: stored {stored:#010x}, computed {computed:#010x}"
    )]
    CrcMismatch {
        position: usize,
        stored: u32,
        computed: u32,
    },
    #[error("batch at byte {position} uses unknown compression codec {codec}")]
    UnknownCompression { position: usize, codec: u8 },
    #[error(
        "batch at byte {position} declares {records_count} records and last offset delta {last_offset_delta}"
    )]
    InvalidRecordCount {
        position: usize,
        records_count: i32,
        last_offset_delta: i32,
    },
    #[error("record {index} of the batch is malformed: {reason}")]
    MalformedRecord { index: usize, reason: &'static str },
    #[error("batch holds {found} records but its header declares {declared}")]
    RecordCountMismatch { declared: i32, found: usize },
    #[error("{codec:?} data does not decompress: {reason}")]
    Decompression { codec: Compression, reason: String },
    #[error("{codec:?} data decompresses past the limit of {limit_bytes} bytes")]
    DecompressedTooLarge {
        codec: Compression,
        limit_bytes: usize,
    },
    #[error("{codec:?} compression failed: {reason}")]
    Compression { codec: Compression, reason: String },
    #[error("a batch built here would exceed {limit} {what}")]
    BuilderLimit { what: &'static str, limit: usize },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

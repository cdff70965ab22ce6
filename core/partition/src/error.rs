/// A refused topic config, producer batch or read: what any storage refuses for the same
/// reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("rejected batch: {0}")]
    InvalidBatch(#[source] fjord_record::Error),
    #[error("batch of {size_bytes} bytes exceeds max.message.bytes {size_bytes_max}")]
    BatchTooLarge {
        size_bytes: usize,
        size_bytes_max: usize,
    },
    #[error("append of {size_bytes} bytes exceeds the limit of {size_bytes_max} per append")]
    AppendTooLarge {
        size_bytes: usize,
        size_bytes_max: usize,
    },
    #[error("empty append: no batches given")]
    EmptyAppend,
    #[error("batch refused: {message}")]
    InvalidRecords {
        rule: crate::RecordRule,
        /// The first refused record's message.
        message: String,
        /// Each refused record (at most `limits::RECORD_ERRORS_MAX`).
        records: Vec<crate::RecordError>,
    },
    #[error(
        "offset {offset} is out of range: log start offset {log_start_offset}, log end offset {log_end_offset}"
    )]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("invalid config {name}={value}: {reason}")]
    InvalidConfig {
        name: String,
        value: String,
        reason: &'static str,
    },
    #[error(
        "producer {producer_id}: sequence {first_sequence} is out of order, expected {expected_sequence}"
    )]
    OutOfOrderSequence {
        producer_id: i64,
        first_sequence: i32,
        expected_sequence: i32,
    },
    #[error(
        "producer {producer_id}: epoch {producer_epoch} is fenced by the newer epoch {current_epoch}"
    )]
    InvalidProducerEpoch {
        producer_id: i64,
        producer_epoch: i16,
        current_epoch: i16,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

use std::path::PathBuf;

/// Everything the log can fail with. Variants carry what a caller needs to act or to report:
/// the file and byte position for damage on disk, the offending values for rejected input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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
    #[error("corrupt data in {path} at byte {position}: {reason}")]
    Corrupt {
        path: PathBuf,
        position: u64,
        reason: String,
    },
    #[error(
        "offset {offset} is out of range: log start offset {log_start_offset}, log end offset {log_end_offset}"
    )]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("leader epoch {leader_epoch} is older than the latest epoch {latest_epoch} in the log")]
    StaleLeaderEpoch {
        leader_epoch: i32,
        latest_epoch: i32,
    },
    #[error("offset {offset} does not fit: {reason}")]
    OffsetOverflow { offset: i64, reason: &'static str },
    #[error("log directory {path} is not a log: {reason}")]
    NotALog { path: PathBuf, reason: &'static str },
    /// A refused config or producer batch (the rules every storage shares).
    #[error(transparent)]
    Partition(#[from] fjord_partition::Error),
    #[error("log {path} already exists")]
    AlreadyExists { path: PathBuf },
    #[error("batch refused: {message}")]
    InvalidRecords {
        rule: crate::RecordRule,
        /// The first refused record's message.
        message: String,
        /// Each refused record (at most `limits::RECORD_ERRORS_MAX`).
        records: Vec<crate::RecordError>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches the path to an I/O error: `file.read_at(..).map_err(io(path))`.
pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

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
    #[error("corrupt data in {path} at byte {position}: {reason}")]
    Corrupt {
        path: PathBuf,
        position: u64,
        reason: String,
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
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A batch that does not parse: refused as the shared rules refuse it.
pub(crate) fn invalid_batch(error: fjord_record::Error) -> Error {
    Error::Partition(fjord_partition::Error::InvalidBatch(error))
}

/// Attaches the path to an I/O error: `file.read_at(..).map_err(io(path))`.
pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

//! Errors of the processor runtime.

use crate::changelog::DecodeError;
use crate::output::OutputError;
use crate::pool::CallAborted;
use crate::transform::CallError;

/// Why a task could not go on. Engine errors are retried with backoff; the others follow the
/// processor's error policy.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] fjord_engine::Error),
    #[error(transparent)]
    Changelog(#[from] DecodeError),
    #[error("the processor could not start: {message}")]
    Start { message: String },
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("the processor failed the record at offset {offset}: {message}")]
    RecordFailed { offset: i64, message: String },
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    CallAborted(#[from] CallAborted),
    #[error("a processor needs at least one output topic")]
    NoOutput,
    #[error("invalid processor: {reason}")]
    InvalidSpec { reason: String },
    #[error("the module cannot be deployed: {message}")]
    Module { message: String },
    #[error("no processor named `{name}`")]
    UnknownProcessor { name: String },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is damaged: {reason}")]
    Corrupt {
        path: std::path::PathBuf,
        reason: String,
    },
}

impl Error {
    /// Whether retrying the same work may succeed (the engine was busy or a transaction was
    /// fenced and reopened); the processor's own failures repeat on replay.
    pub fn is_transient(&self) -> bool {
        match self {
            // A refused batch (too large, malformed) is refused again.
            Error::Engine(fjord_engine::Error::Partition(_)) => false,
            Error::Engine(_) | Error::CallAborted(_) => true,
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

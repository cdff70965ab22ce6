//! Fjord's stream processors, apart from the code that runs them: the contract a running
//! transform meets ([`Transform`]), the task's keyed state and timers ([`StateStore`]), and
//! the limits of a processor.
//!
//! # Why it is built this way
//! - **wasmtime stays out.** A Wasm instance is one implementation of [`Transform`]
//!   (`fjord-wasm`); native code is another, which tests and the benchmark's baseline use.
//!   Editing this crate or the engine rebuilds no Wasm runtime.
//! - **State is in memory, durability is the commit's.** A task's store is rebuilt from the
//!   processor's compacted changelog and written back, change by change, in the same
//!   transaction as the batch's outputs and input position; between commits the store can
//!   undo everything since the last one.
//! - **Replays are deterministic.** A call's time and random seed ([`CallContext`]) come
//!   from the input, and limits are counted in fuel, not wall-clock time.
//!
//! # Invariants
//! - After [`StateStore::rollback`] the store equals what the last commit wrote.
//! - No limit is unbounded: every one has a default and a ceiling in [`limits`].

mod changelog;
mod error;
pub mod limits;
mod logs;
mod metrics;
mod output;
mod pool;
mod registry;
mod report;
mod restore;
mod spec;
pub mod state;
mod store;
mod task;
mod task_call;
pub mod topics;
pub mod transform;

pub use changelog::DecodeError;
pub use error::{Error, Result};
pub use limits::ProcessorLimits;
pub use logs::{LogBuffer, LogEntry};
pub use output::OutputError;
pub use pool::{CallAborted, CallPool};
pub use registry::{Description, ModuleLoader, Processors, TaskDescription};
pub use report::{TaskReport, TaskState};
pub use spec::{COMMIT_INTERVAL_DEFAULT, ErrorPolicy, ProcessorSpec, StartFrom};
pub use state::{Change, Entry, PutError, StateLimits, StateStore};
pub use task::{Task, supervise};
pub use task_call::{TaskContext, TransformFactory};
pub use transform::{
    BatchOutput, CallContext, CallError, DueTimer, Header, InputRecord, LogLevel, LogLine,
    OutputRecord, RecordFailure, Transform,
};

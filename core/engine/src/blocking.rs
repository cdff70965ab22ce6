//! The engine's pool for blocking file work (appends that may sync, reads, topic creation,
//! recovery, compaction), so no async worker thread ever waits on the disk.
//!
//! Jobs run on tokio's blocking threads, which every runtime flavour has (`block_in_place`
//! panics on a current-thread runtime), and at most [`BLOCKING_JOBS_MAX`] run at once: the
//! pool is bounded by its own semaphore, so a burst of requests queues here instead of
//! spawning hundreds of threads.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::limits::BLOCKING_JOBS_MAX;
use crate::{Error, Result};

/// A bounded pool of blocking jobs. Cheap to clone; clones share the bound.
#[derive(Debug, Clone)]
pub(crate) struct BlockingPool {
    permits: Arc<Semaphore>,
}

impl BlockingPool {
    pub(crate) fn new(jobs_max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(jobs_max.clamp(1, BLOCKING_JOBS_MAX))),
        }
    }

    /// Runs `job` on a blocking thread once a slot is free, and returns its result. A job
    /// that panics is reported as [`Error::WorkerFailed`]; the engine goes on.
    pub(crate) async fn run<T, F>(&self, job: F) -> Result<T>
    where
        F: FnOnce() -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::ShuttingDown)?;
        // The permit goes with the job: a caller that stops waiting does not free the slot
        // while the job still runs.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await
        .map_err(|error| Error::WorkerFailed {
            reason: error.to_string(),
        })?
    }
}

//! The threads guest calls run on: a fixed number of their own, so a CPU-bound transform
//! never holds an async worker and the calls of all processors share a known number of
//! cores.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, oneshot};

type Job = Box<dyn FnOnce() + Send>;

/// Jobs queued or running at once; a task waits for room beyond it.
const JOBS_MAX: usize = 1024;

/// A bounded pool of call threads. Cloning shares it; the threads end when the last clone
/// is dropped.
#[derive(Debug, Clone)]
pub struct CallPool {
    sender: SyncSender<Job>,
    permits: Arc<Semaphore>,
}

/// The call thread stopped before answering: the pool is shutting down, or the job panicked
/// (a bug of the host, never a guest's doing: guest failures are errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the processor call thread stopped before answering")]
pub struct CallAborted;

impl CallPool {
    /// Starts `threads` call threads (at least one).
    pub fn new(threads: usize) -> std::io::Result<CallPool> {
        let (sender, receiver) = sync_channel::<Job>(JOBS_MAX);
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads.max(1) {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("fjord-call-{index}"))
                .spawn(move || work(&receiver))?;
        }
        Ok(CallPool {
            sender,
            permits: Arc::new(Semaphore::new(JOBS_MAX)),
        })
    }

    /// Runs `job` on a call thread and returns its result.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CallAborted> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| CallAborted)?;
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(job());
            drop(permit);
        });
        // A permit is a place in the channel: this never blocks.
        self.sender.send(job).map_err(|_| CallAborted)?;
        result.await.map_err(|_| CallAborted)
    }
}

fn work(receiver: &Mutex<Receiver<Job>>) {
    loop {
        let job = match receiver.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
            tracing::error!("a processor call panicked on the host side; its task will retry");
        }
    }
}

//! A task's calls into the processor's code, on the call pool: the batch, then the timers it
//! brought due; and the context that starts instances.

use std::sync::Arc;

use fjord_engine::Engine;

use crate::error::{Error, Result};
use crate::limits::ProcessorLimits;
use crate::pool::CallPool;
use crate::spec::ProcessorSpec;
use crate::state::StateStore;
use crate::transform::{BatchOutput, CallContext, CallError, InputRecord, Transform};

/// Starts instances of a processor's code: a Wasm module, or native code.
pub trait TransformFactory: Send + Sync {
    /// Starts an instance with `settings` and the task's state; an error is the instance's
    /// refusal (its `init` said no) or a failure to start.
    fn start(
        &self,
        settings: &[(String, String)],
        limits: ProcessorLimits,
        state: StateStore,
    ) -> std::result::Result<Box<dyn Transform>, String>;
}

/// What a task shares with the rest of its processor.
#[derive(Clone)]
pub struct TaskContext {
    pub engine: Arc<Engine>,
    pub pool: CallPool,
    pub spec: Arc<ProcessorSpec>,
    pub factory: Arc<dyn TransformFactory>,
    pub logs: Arc<crate::logs::LogBuffer>,
}

impl std::fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskContext")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl TaskContext {
    /// Starts an instance on the call pool (instantiating is CPU work).
    pub(crate) async fn start_instance(&self, state: StateStore) -> Result<Box<dyn Transform>> {
        let factory = Arc::clone(&self.factory);
        let spec = Arc::clone(&self.spec);
        self.pool
            .run(move || factory.start(&spec.settings, spec.limits, state))
            .await?
            .map_err(|message| Error::Start { message })
    }
}

/// The outputs of a batch's call and of the timers it brought due.
#[derive(Debug)]
pub(crate) struct Called {
    pub(crate) records: BatchOutput,
    pub(crate) timers: BatchOutput,
}

/// Runs on a call thread: the watermark moves to the batch's latest record time, the batch
/// is processed, then expired state goes and due timers run.
pub(crate) fn call_batch(
    mut transform: Box<dyn Transform>,
    processor: &str,
    partition: i32,
    records: Vec<InputRecord>,
) -> (Box<dyn Transform>, Result<Called, CallError>) {
    let first_offset = records.first().map_or(0, |record| record.offset);
    let latest = records
        .iter()
        .map(|record| record.timestamp_ms)
        .max()
        .unwrap_or(i64::MIN);
    let seed = CallContext::seed_for(processor, partition, first_offset);
    transform.state().advance_watermark(latest);
    let call = CallContext {
        time_ms: latest,
        random_seed: seed,
    };
    let result = transform.process(records, call).and_then(|records| {
        let due = transform.state().take_due();
        let timers = if due.is_empty() {
            BatchOutput::default()
        } else {
            let watermark_ms = transform.state().watermark_ms();
            let call = CallContext {
                time_ms: watermark_ms,
                random_seed: crate::transform::mix64(seed),
            };
            transform.on_timer(due, call)?
        };
        Ok(Called { records, timers })
    });
    (transform, result)
}

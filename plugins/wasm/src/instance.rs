//! One instance of a processor's component, for one task (one input partition): a
//! [`Transform`] whose calls run under the processor's fuel, memory and output limits.

use fjord_processor::{
    BatchOutput, CallContext, CallError, DueTimer, Header, InputRecord, LogLine, OutputRecord,
    ProcessorLimits, RecordFailure, StateStore, Transform,
};
use wasmtime::{Engine, Store, Trap};

use crate::bindings::{Processor, ProcessorPre, types};
use crate::determinism::CallInputs;
use crate::error::{Error, Result};
pub(crate) use crate::host::TaskData;

/// A running instance. After a call fails with a [`CallError`] it must not be called again:
/// hand its state to a new one ([`Transform::into_state`]).
pub struct Instance {
    store: Store<TaskData>,
    bindings: Processor,
    inputs: CallInputs,
    limits: ProcessorLimits,
    fuel_consumed: u64,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Instance {
    pub(crate) fn start(
        engine: &Engine,
        pre: &ProcessorPre<TaskData>,
        settings: &[(String, String)],
        limits: ProcessorLimits,
        state: StateStore,
    ) -> Result<Instance> {
        let inputs = CallInputs::default();
        let mut store = Store::new(engine, TaskData::new(&inputs, limits.memory_bytes, state));
        store.limiter(|data| &mut data.memory);
        set_fuel(&mut store, limits.fuel_per_call);
        let bindings = pre.instantiate(&mut store).map_err(|error| Error::Start {
            message: describe(&store, &error),
        })?;
        let refused = bindings
            .call_init(&mut store, settings)
            .map_err(|error| Error::Start {
                message: describe(&store, &error),
            })?;
        refused.map_err(|message| Error::Config { message })?;
        Ok(Instance {
            store,
            bindings,
            inputs,
            limits,
            fuel_consumed: 0,
        })
    }

    fn prepare(&mut self, call: CallContext) {
        self.inputs.set(call.time_ms, call.random_seed);
        set_fuel(&mut self.store, self.limits.fuel_per_call);
        self.store.data_mut().logs_this_call = 0;
    }

    fn finish(
        &mut self,
        result: wasmtime::Result<types::BatchResult>,
    ) -> Result<BatchOutput, CallError> {
        let remaining = self.store.get_fuel().unwrap_or(0);
        self.fuel_consumed = self.limits.fuel_per_call.saturating_sub(remaining);
        let result = result.map_err(|error| self.call_error(&error))?;
        let count = result.outputs.len();
        if count > self.limits.output_records_per_call {
            return Err(CallError::TooManyOutputs {
                count,
                count_max: self.limits.output_records_per_call,
            });
        }
        let outputs: Vec<OutputRecord> = result.outputs.into_iter().map(output_from_wit).collect();
        let size_bytes: usize = outputs.iter().map(OutputRecord::size_bytes).sum();
        if size_bytes > self.limits.output_bytes_per_call {
            return Err(CallError::OutputTooLarge {
                size_bytes,
                size_bytes_max: self.limits.output_bytes_per_call,
            });
        }
        let failures = result
            .failures
            .into_iter()
            .map(|failure| RecordFailure {
                index: failure.index,
                message: failure.message,
            })
            .collect();
        Ok(BatchOutput { outputs, failures })
    }

    fn call_error(&self, error: &wasmtime::Error) -> CallError {
        if error.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
            return CallError::OutOfFuel {
                fuel: self.limits.fuel_per_call,
            };
        }
        if self.store.data().memory.exceeded {
            return CallError::OutOfMemory {
                memory_bytes_max: self.limits.memory_bytes,
            };
        }
        CallError::Trap {
            message: describe(&self.store, error),
        }
    }
}

impl Transform for Instance {
    fn process(
        &mut self,
        records: Vec<InputRecord>,
        call: CallContext,
    ) -> Result<BatchOutput, CallError> {
        self.prepare(call);
        let records: Vec<types::InputRecord> = records.into_iter().map(input_to_wit).collect();
        let result = self.bindings.call_process(&mut self.store, &records);
        self.finish(result)
    }

    fn on_timer(
        &mut self,
        timers: Vec<DueTimer>,
        call: CallContext,
    ) -> Result<BatchOutput, CallError> {
        self.prepare(call);
        let timers: Vec<types::Timer> = timers
            .into_iter()
            .map(|timer| types::Timer {
                key: timer.key,
                time_ms: timer.time_ms,
            })
            .collect();
        let result = self.bindings.call_on_timer(&mut self.store, &timers);
        self.finish(result)
    }

    fn state(&mut self) -> &mut StateStore {
        &mut self.store.data_mut().state
    }

    fn into_state(self: Box<Self>) -> StateStore {
        self.store.into_data().state
    }

    fn take_logs(&mut self) -> (Vec<LogLine>, u64) {
        let data = self.store.data_mut();
        (
            std::mem::take(&mut data.logs),
            std::mem::take(&mut data.logs_dropped),
        )
    }

    fn fuel_consumed(&self) -> u64 {
        self.fuel_consumed
    }
}

fn set_fuel(store: &mut Store<TaskData>, fuel: u64) {
    // The engine is always built with fuel on, so setting it cannot fail.
    store.set_fuel(fuel).expect("the engine consumes fuel");
}

/// A trap's message, or the error chain, in one line; a memory cap hit says so.
fn describe(store: &Store<TaskData>, error: &wasmtime::Error) -> String {
    let message = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    if store.data().memory.exceeded {
        format!(
            "{message} (after it asked for more than {} bytes of memory)",
            store.data().memory.memory_bytes_max
        )
    } else {
        message
    }
}

fn input_to_wit(record: InputRecord) -> types::InputRecord {
    types::InputRecord {
        partition: record.partition,
        offset: record.offset,
        timestamp_ms: record.timestamp_ms,
        key: record.key,
        value: record.value,
        headers: record
            .headers
            .into_iter()
            .map(|header| types::Header {
                key: header.key,
                value: header.value,
            })
            .collect(),
    }
}

fn output_from_wit(record: types::OutputRecord) -> OutputRecord {
    OutputRecord {
        topic: record.topic,
        partition: record.partition,
        key: record.key,
        value: record.value,
        headers: record
            .headers
            .into_iter()
            .map(|header| Header {
                key: header.key,
                value: header.value,
            })
            .collect(),
        timestamp_ms: record.timestamp_ms,
    }
}

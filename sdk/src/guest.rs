//! The component's side of the WIT boundary (built for `wasm32` only): the bindings
//! wit-bindgen generates, the host's imports behind [`Host`], and the glue the
//! [`export_processor!`](crate::export_processor) macro calls.

use std::cell::RefCell;
use std::thread::LocalKey;

use crate::context::{Host, Level, StateError};
use crate::processor::{Config, Processor, process_batch, process_timers};
use crate::record::{self, Header, Record};

/// Generated from `wit/processor.wit`. The canonical ABI is unsafe by nature: the only unsafe
/// code of the SDK is what wit-bindgen writes here.
#[allow(
    unsafe_code,
    unreachable_pub,
    missing_debug_implementations,
    clippy::all
)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "processor",
        default_bindings_module: "fjord_sdk::__private::bindings",
        pub_export_macro: true,
        export_macro_name: "__export_processor_world",
    });
}

pub use bindings::Guest;
use bindings::fjord::processor::{logging, state, timers, types};
pub use types::{BatchResult, InputRecord, Timer};

/// The processor of this component: one per instance, which the host runs for one partition.
pub type Slot<P> = LocalKey<RefCell<Option<P>>>;

pub fn init<P: Processor>(
    slot: &'static Slot<P>,
    config: Vec<(String, String)>,
) -> Result<(), String> {
    let processor = P::init(&Config::new(config))?;
    slot.with(|cell| *cell.borrow_mut() = Some(processor));
    Ok(())
}

pub fn process<P: Processor>(slot: &'static Slot<P>, records: Vec<InputRecord>) -> BatchResult {
    let records: Vec<Record> = records.into_iter().map(record_from_wit).collect();
    slot.with(|cell| match cell.borrow_mut().as_mut() {
        Some(processor) => result_to_wit(process_batch(processor, &records, &mut WasmHost)),
        None => not_initialised(records.len()),
    })
}

pub fn on_timer<P: Processor>(slot: &'static Slot<P>, due: Vec<Timer>) -> BatchResult {
    let due: Vec<record::Timer> = due
        .into_iter()
        .map(|timer| record::Timer {
            time_ms: timer.time_ms,
            key: timer.key,
        })
        .collect();
    slot.with(|cell| match cell.borrow_mut().as_mut() {
        Some(processor) => result_to_wit(process_timers(processor, &due, &mut WasmHost)),
        None => not_initialised(due.len()),
    })
}

fn not_initialised(count: usize) -> BatchResult {
    let failures = (0..count)
        .map(|index| types::RecordFailure {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            message: "the processor was called before init".to_owned(),
        })
        .collect();
    BatchResult {
        outputs: Vec::new(),
        failures,
    }
}

fn record_from_wit(record: InputRecord) -> Record {
    Record {
        partition: record.partition,
        offset: record.offset,
        timestamp_ms: record.timestamp_ms,
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
    }
}

fn result_to_wit(result: record::BatchResult) -> BatchResult {
    BatchResult {
        outputs: result
            .outputs
            .into_iter()
            .map(|output| types::OutputRecord {
                topic: output.topic,
                partition: output.partition,
                key: output.key,
                value: output.value,
                headers: output
                    .headers
                    .into_iter()
                    .map(|header| types::Header {
                        key: header.key,
                        value: header.value,
                    })
                    .collect(),
                timestamp_ms: output.timestamp_ms,
            })
            .collect(),
        failures: result
            .failures
            .into_iter()
            .map(|failure| types::RecordFailure {
                index: failure.index,
                message: failure.message,
            })
            .collect(),
    }
}

/// The host's imports.
struct WasmHost;

impl Host for WasmHost {
    fn log(&mut self, level: Level, message: &str) {
        let level = match level {
            Level::Trace => logging::Level::Trace,
            Level::Debug => logging::Level::Debug,
            Level::Info => logging::Level::Info,
            Level::Warn => logging::Level::Warn,
            Level::Error => logging::Level::Error,
        };
        logging::log(level, message);
    }

    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        state::get(key)
    }

    fn put(&mut self, key: &[u8], value: &[u8], ttl_ms: Option<u64>) -> Result<(), StateError> {
        state::put(key, value, ttl_ms).map_err(state_error)
    }

    fn delete(&mut self, key: &[u8]) {
        state::delete(key);
    }

    fn range(&mut self, start: &[u8], end: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        state::range(start, end, limit)
    }

    fn set_timer(&mut self, key: &[u8], time_ms: i64) -> Result<(), StateError> {
        timers::set(key, time_ms).map_err(state_error)
    }

    fn cancel_timer(&mut self, key: &[u8]) {
        timers::cancel(key);
    }
}

fn state_error(error: state::StateError) -> StateError {
    match error {
        state::StateError::TooLarge(size_bytes_max) => StateError::TooLarge { size_bytes_max },
        state::StateError::Full(size_bytes_max) => StateError::Full { size_bytes_max },
    }
}

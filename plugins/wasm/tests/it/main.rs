//! fjord-wasm against real components built from this repository's sources.

mod examples;
mod sandbox;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use fjord_processor::{CallContext, InputRecord, ProcessorLimits, StateStore};
use fjord_wasm::{Instance, Module, Runtime, RuntimeConfig};

/// One runtime and one compiled module per guest for the whole test binary.
fn module(package: &str) -> Module {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    static MODULES: OnceLock<Mutex<HashMap<String, Module>>> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| Runtime::new(RuntimeConfig::default()).expect("runtime"));
    let modules = MODULES.get_or_init(Mutex::default);
    let mut modules = modules.lock().expect("no test panicked holding the lock");
    modules
        .entry(package.to_owned())
        .or_insert_with(|| {
            runtime
                .compile(&guest_harness::component(package))
                .expect("the guest compiles")
        })
        .clone()
}

/// Limits small enough that the sandbox tests hit them fast.
fn test_limits() -> ProcessorLimits {
    ProcessorLimits {
        memory_bytes: 32 * 1024 * 1024,
        fuel_per_call: 200_000_000,
        ..ProcessorLimits::default()
    }
}

fn start(
    package: &str,
    settings: &[(&str, &str)],
    limits: ProcessorLimits,
) -> Result<Instance, fjord_wasm::Error> {
    let settings: Vec<(String, String)> = settings
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    module(package).instantiate(&settings, limits, StateStore::new(limits.state))
}

fn record(offset: i64, key: Option<&str>, value: &str) -> InputRecord {
    InputRecord {
        partition: 0,
        offset,
        timestamp_ms: 1_000 + offset,
        key: key.map(|key| key.as_bytes().to_vec()),
        value: Some(value.as_bytes().to_vec()),
        headers: Vec::new(),
    }
}

fn call(time_ms: i64) -> CallContext {
    CallContext {
        time_ms,
        random_seed: CallContext::seed_for("test", 0, time_ms),
    }
}

//! What a guest's imports reach: its task's state store, timers and log, and a deny-all
//! WASI (no files, sockets, environment or arguments; clocks and random numbers fixed per
//! call).

use fjord_processor::limits::{LOG_LINE_BYTES_MAX, LOG_LINES_PER_CALL_MAX};
use fjord_processor::{LogLevel, LogLine, PutError, StateStore};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{logging, state, timers, types};
use crate::determinism::CallInputs;

/// A store's data: everything the host keeps for one instance.
pub(crate) struct TaskData {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) memory: MemoryLimiter,
    pub(crate) state: StateStore,
    pub(crate) logs: Vec<LogLine>,
    pub(crate) logs_dropped: u64,
    pub(crate) logs_this_call: usize,
}

impl TaskData {
    pub(crate) fn new(inputs: &CallInputs, memory_bytes_max: u64, state: StateStore) -> TaskData {
        let wasi = WasiCtx::builder()
            .wall_clock(inputs.wall_clock())
            .monotonic_clock(inputs.monotonic_clock())
            .secure_random(inputs.random())
            .insecure_random(inputs.random())
            .insecure_random_seed(0)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        TaskData {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryLimiter {
                memory_bytes_max,
                exceeded: false,
            },
            state,
            logs: Vec::new(),
            logs_dropped: 0,
            logs_this_call: 0,
        }
    }
}

impl WasiView for TaskData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps an instance's linear memory and tables; remembers that the cap was hit, so a trap
/// that follows is reported as what it is.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    pub(crate) memory_bytes_max: u64,
    pub(crate) exceeded: bool,
}

/// Table elements an instance may have (function tables of large Rust programs stay far
/// below).
const TABLE_ELEMENTS_MAX: usize = 1_000_000;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired as u64 <= self.memory_bytes_max;
        self.exceeded |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= TABLE_ELEMENTS_MAX;
        self.exceeded |= !allowed;
        Ok(allowed)
    }
}

impl types::Host for TaskData {}

impl logging::Host for TaskData {
    fn log(&mut self, level: logging::Level, mut message: String) {
        if self.logs_this_call >= LOG_LINES_PER_CALL_MAX {
            self.logs_dropped += 1;
            return;
        }
        self.logs_this_call += 1;
        if message.len() > LOG_LINE_BYTES_MAX {
            let mut end = LOG_LINE_BYTES_MAX;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        let level = match level {
            logging::Level::Trace => LogLevel::Trace,
            logging::Level::Debug => LogLevel::Debug,
            logging::Level::Info => LogLevel::Info,
            logging::Level::Warn => LogLevel::Warn,
            logging::Level::Error => LogLevel::Error,
        };
        self.logs.push(LogLine { level, message });
    }
}

impl state::Host for TaskData {
    fn get(&mut self, key: Vec<u8>) -> Option<Vec<u8>> {
        self.state.get(&key).map(<[u8]>::to_vec)
    }

    fn put(
        &mut self,
        key: Vec<u8>,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<(), state::StateError> {
        self.state.put(&key, &value, ttl_ms).map_err(state_error)
    }

    fn delete(&mut self, key: Vec<u8>) {
        self.state.delete(&key);
    }

    fn range(
        &mut self,
        start: Vec<u8>,
        end: Option<Vec<u8>>,
        limit: u32,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.state.range(&start, end.as_deref(), limit)
    }
}

impl timers::Host for TaskData {
    fn set(&mut self, key: Vec<u8>, time_ms: i64) -> Result<(), state::StateError> {
        self.state.set_timer(&key, time_ms).map_err(state_error)
    }

    fn cancel(&mut self, key: Vec<u8>) {
        self.state.cancel_timer(&key);
    }
}

fn state_error(error: PutError) -> state::StateError {
    match error {
        PutError::TooLarge { size_bytes_max } => state::StateError::TooLarge(size_bytes_max),
        PutError::Full { size_bytes_max } => state::StateError::Full(size_bytes_max),
    }
}

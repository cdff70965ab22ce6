//! The contract between the task loop and whatever runs a processor's code: a Wasm instance
//! (`fjord-wasm`), or native code in tests and benchmarks.

use crate::state::StateStore;

/// A Kafka record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// One record of the input partition, as a read_committed consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRecord {
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
}

impl InputRecord {
    /// Bytes this record holds (key, value, headers), as the output limits count them.
    pub fn size_bytes(&self) -> usize {
        record_size_bytes(self.key.as_deref(), self.value.as_deref(), &self.headers)
    }
}

/// A record the processor asks to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRecord {
    /// One of the processor's outputs; `None` is its first (default) output.
    pub topic: Option<String>,
    /// `None`: Kafka's default partitioner.
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    /// `None`: the broker's time at the write.
    pub timestamp_ms: Option<i64>,
}

impl OutputRecord {
    /// Bytes this record holds (key, value, headers), as the output limits count them.
    pub fn size_bytes(&self) -> usize {
        record_size_bytes(self.key.as_deref(), self.value.as_deref(), &self.headers)
    }
}

fn record_size_bytes(key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) -> usize {
    let headers_bytes: usize = headers
        .iter()
        .map(|header| header.key.len() + header.value.as_ref().map_or(0, Vec::len))
        .sum();
    key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len) + headers_bytes
}

/// A record (or timer) the processor could not process, by its place in the call's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFailure {
    pub index: u32,
    pub message: String,
}

/// What one call produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchOutput {
    pub outputs: Vec<OutputRecord>,
    pub failures: Vec<RecordFailure>,
}

/// A timer that came due.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DueTimer {
    pub time_ms: i64,
    pub key: Vec<u8>,
}

/// A log level of a processor's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// A line a processor logged during a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

/// What the host fixes for a call so that a replay computes the same: the time the guest's
/// clocks read, and the seed of its random numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallContext {
    /// The time of the call: the batch's latest record time (or the watermark, for timers).
    pub time_ms: i64,
    /// Fixed by the processor, the input partition and the batch's first offset.
    pub random_seed: u64,
}

impl CallContext {
    /// The seed of a batch: a hash of the processor's name, the partition and the batch's
    /// first offset (FNV-1a then a SplitMix64 finaliser: stable across builds and hosts).
    pub fn seed_for(processor: &str, partition: i32, first_offset: i64) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let bytes = processor
            .bytes()
            .chain(partition.to_be_bytes())
            .chain(first_offset.to_be_bytes());
        for byte in bytes {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        mix64(hash)
    }
}

/// SplitMix64's finaliser.
pub fn mix64(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// How a call went wrong as a whole (a record's own failure is a [`RecordFailure`]).
/// After any of these the instance is discarded and the call's state changes rolled back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("the processor trapped: {message}")]
    Trap { message: String },
    #[error(
        "the processor used its fuel for one call ({fuel} units): an endless loop, or raise `fuel_per_batch`"
    )]
    OutOfFuel { fuel: u64 },
    #[error("the processor asked for more than its {memory_bytes_max} bytes of memory")]
    OutOfMemory { memory_bytes_max: u64 },
    #[error("the processor returned {count} records for one call; the limit is {count_max}")]
    TooManyOutputs { count: usize, count_max: usize },
    #[error(
        "the processor returned {size_bytes} bytes for one call; the limit is {size_bytes_max}"
    )]
    OutputTooLarge {
        size_bytes: usize,
        size_bytes_max: usize,
    },
}

/// A processor's code, instantiated for one task (one input partition). Calls are made one
/// at a time, in offset order; each is a whole batch.
pub trait Transform: Send {
    /// Processes a batch. State writes go to [`Transform::state`]'s store.
    fn process(
        &mut self,
        records: Vec<InputRecord>,
        call: CallContext,
    ) -> Result<BatchOutput, CallError>;

    /// Runs the timers that came due, in time then key order.
    fn on_timer(
        &mut self,
        timers: Vec<DueTimer>,
        call: CallContext,
    ) -> Result<BatchOutput, CallError>;

    /// The task's state store, which the calls read and write.
    fn state(&mut self) -> &mut StateStore;

    /// Gives the state store back, to hand to a new instance after this one failed.
    fn into_state(self: Box<Self>) -> StateStore;

    /// The lines logged since the last time this was asked, and how many were dropped for
    /// passing the per-call limit.
    fn take_logs(&mut self) -> (Vec<LogLine>, u64) {
        (Vec::new(), 0)
    }

    /// Fuel the last call used (0 where fuel is not metered).
    fn fuel_consumed(&self) -> u64 {
        0
    }
}

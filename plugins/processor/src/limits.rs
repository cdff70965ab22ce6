//! Every limit of a processor, with its default. Each is a setting of the deployment
//! (`ProcessorLimits`); the constants are the defaults and the ceilings a setting may not pass.

/// What a state entry or timer costs beyond its key and value (maps and indexes).
pub const STATE_ENTRY_OVERHEAD_BYTES: u64 = 64;

/// Default linear memory of one instance (one input partition).
pub const MEMORY_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// No instance may have more, whatever the setting.
pub const MEMORY_BYTES_CEILING: u64 = 4 * 1024 * 1024 * 1024;

/// Default fuel (about one WebAssembly instruction each) of one call: a few seconds of CPU,
/// so an endless loop is stopped while a heavy batch of `BATCH_RECORDS_DEFAULT` records
/// still has 500,000 instructions per record. Fuel, not a wall-clock deadline: a batch that
/// runs out runs out again on replay, so exactly-once replays stay deterministic.
pub const FUEL_PER_CALL_DEFAULT: u64 = 5_000_000_000;

/// Default number of records handed to one call.
pub const BATCH_RECORDS_DEFAULT: usize = 10_000;
/// The WIT boundary counts a call's records with a `u32`; the host stays far below.
pub const BATCH_RECORDS_CEILING: usize = 1_000_000;

/// Default size of a component (the `.wasm` file) a deployment may bring.
pub const MODULE_BYTES_DEFAULT: usize = 32 * 1024 * 1024;
pub const MODULE_BYTES_CEILING: usize = 512 * 1024 * 1024;

/// Default outputs of one call, in records and in bytes (keys, values, headers).
pub const OUTPUT_RECORDS_PER_CALL_DEFAULT: usize = 100_000;
pub const OUTPUT_BYTES_PER_CALL_DEFAULT: usize = 64 * 1024 * 1024;

/// Default state of one task (input partition).
pub const STATE_BYTES_DEFAULT: u64 = 256 * 1024 * 1024;
pub const STATE_KEY_BYTES_DEFAULT: usize = 4 * 1024;
pub const STATE_VALUE_BYTES_DEFAULT: usize = 1024 * 1024;

/// The most entries one `range` call returns (the WIT says so).
pub const STATE_RANGE_ENTRIES_MAX: u32 = 10_000;

/// Log lines one call may write; more are counted and dropped.
pub const LOG_LINES_PER_CALL_MAX: usize = 100;
/// A log line longer than this is cut.
pub const LOG_LINE_BYTES_MAX: usize = 4 * 1024;

const _: () = {
    assert!(MEMORY_BYTES_DEFAULT <= MEMORY_BYTES_CEILING);
    assert!(BATCH_RECORDS_DEFAULT <= BATCH_RECORDS_CEILING);
    assert!(BATCH_RECORDS_CEILING <= u32::MAX as usize);
    assert!(MODULE_BYTES_DEFAULT <= MODULE_BYTES_CEILING);
    assert!(STATE_VALUE_BYTES_DEFAULT as u64 <= STATE_BYTES_DEFAULT);
    // An output batch must fit in the instance's memory before it can be handed over.
    assert!(OUTPUT_BYTES_PER_CALL_DEFAULT as u64 <= MEMORY_BYTES_DEFAULT);
};

/// The limits of one processor, applied to each of its tasks. In JSON, a missing field
/// takes its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessorLimits {
    pub memory_bytes: u64,
    pub fuel_per_call: u64,
    pub batch_records: usize,
    pub output_records_per_call: usize,
    pub output_bytes_per_call: usize,
    pub state: crate::state::StateLimits,
}

impl Default for ProcessorLimits {
    fn default() -> ProcessorLimits {
        ProcessorLimits {
            memory_bytes: MEMORY_BYTES_DEFAULT,
            fuel_per_call: FUEL_PER_CALL_DEFAULT,
            batch_records: BATCH_RECORDS_DEFAULT,
            output_records_per_call: OUTPUT_RECORDS_PER_CALL_DEFAULT,
            output_bytes_per_call: OUTPUT_BYTES_PER_CALL_DEFAULT,
            state: crate::state::StateLimits {
                key_bytes_max: STATE_KEY_BYTES_DEFAULT,
                value_bytes_max: STATE_VALUE_BYTES_DEFAULT,
                size_bytes_max: STATE_BYTES_DEFAULT,
            },
        }
    }
}

impl ProcessorLimits {
    /// Refuses settings past a ceiling or that leave nothing to work with.
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            (
                self.memory_bytes >= 1024 * 1024 && self.memory_bytes <= MEMORY_BYTES_CEILING,
                "memory_bytes must be between 1 MiB and 4 GiB",
            ),
            (self.fuel_per_call > 0, "fuel_per_call must be positive"),
            (
                (1..=BATCH_RECORDS_CEILING).contains(&self.batch_records),
                "batch_records must be between 1 and 1,000,000",
            ),
            (
                self.output_records_per_call > 0,
                "output_records_per_call must be positive",
            ),
            (
                self.output_bytes_per_call > 0,
                "output_bytes_per_call must be positive",
            ),
            (
                self.state.key_bytes_max > 0 && self.state.value_bytes_max > 0,
                "state key and value limits must be positive",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err((*message).to_owned()),
            None => Ok(()),
        }
    }
}

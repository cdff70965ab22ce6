//! A processor that misbehaves on request (`--config mode=...`), so the host's limits and
//! error handling are tested against a real component. Modes:
//!
//! - `echo`: forwards every record; `count`: counts records per key in state and emits the
//!   count, and panics after counting a record whose value is `panic` (rollback tests);
//! - `loop`: never returns; `alloc`: allocates until stopped; `panic`: panics on the record
//!   whose value is `panic` (every record when `always=true`);
//! - `oversize`: emits `count` records of `bytes` bytes each per input record;
//! - `state-bomb`: writes 64 KiB values under new keys until the store refuses;
//! - `entropy`: emits the WASI wall-clock time and a WASI random number (determinism tests);
//! - `log-flood`: logs 1,000 lines per record;
//! - `refuse`: refuses its configuration.

use fjord_sdk::{Config, Context, Error, Level, Output, Processor, Record};

#[derive(Debug)]
pub enum Sandbox {
    Echo,
    Count,
    Loop,
    Alloc,
    Panic { always: bool },
    Oversize { count: usize, bytes: usize },
    StateBomb,
    Entropy,
    LogFlood,
}

impl Processor for Sandbox {
    fn init(config: &Config) -> Result<Self, String> {
        Ok(match config.require("mode")? {
            "echo" => Sandbox::Echo,
            "count" => Sandbox::Count,
            "loop" => Sandbox::Loop,
            "alloc" => Sandbox::Alloc,
            "panic" => Sandbox::Panic {
                always: config.parse_or("always", false)?,
            },
            "oversize" => Sandbox::Oversize {
                count: config.parse_or("count", 1)?,
                bytes: config.parse_or("bytes", 1024)?,
            },
            "state-bomb" => Sandbox::StateBomb,
            "entropy" => Sandbox::Entropy,
            "log-flood" => Sandbox::LogFlood,
            "refuse" => return Err("refused on purpose".to_owned()),
            other => return Err(format!("unknown mode `{other}`")),
        })
    }

    fn process(&mut self, record: &Record, context: &mut Context<'_>) -> Result<(), Error> {
        match self {
            Sandbox::Echo => context.emit(record.forward()),
            Sandbox::Count => {
                let key = record.key.clone().unwrap_or_default();
                let count = context.get(&key).map_or(0, |bytes| decode_count(&bytes)) + 1;
                context.put(&key, count.to_be_bytes())?;
                if record.value_str() == Some("panic") {
                    panic!("asked to panic after counting offset {}", record.offset);
                }
                context.emit(Output::new(Some(key), Some(count.to_string())));
            }
            Sandbox::Loop => {
                let mut spins = 0_u64;
                loop {
                    spins = std::hint::black_box(spins.wrapping_add(1));
                }
            }
            Sandbox::Alloc => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Sandbox::Panic { always } => {
                if *always || record.value_str() == Some("panic") {
                    panic!("asked to panic at offset {}", record.offset);
                }
                context.emit(record.forward());
            }
            Sandbox::Oversize { count, bytes } => {
                for _ in 0..*count {
                    context.emit(Output::value(vec![b'x'; *bytes]));
                }
            }
            Sandbox::StateBomb => {
                for index in 0_u64.. {
                    context.put(index.to_be_bytes(), vec![0; 64 * 1024])?;
                }
            }
            Sandbox::Entropy => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_err(|error| Error::new(error.to_string()))?;
                let mut random = [0; 8];
                getrandom::fill(&mut random).map_err(|error| Error::new(error.to_string()))?;
                let random = u64::from_le_bytes(random);
                context.emit(Output::value(format!("{} {random}", now.as_millis())));
            }
            Sandbox::LogFlood => {
                for line in 0..1_000 {
                    context.log(
                        Level::Info,
                        &format!("line {line} of offset {}", record.offset),
                    );
                }
            }
        }
        Ok(())
    }
}

fn decode_count(bytes: &[u8]) -> u64 {
    bytes.try_into().map_or(0, u64::from_be_bytes)
}

fjord_sdk::export_processor!(Sandbox);

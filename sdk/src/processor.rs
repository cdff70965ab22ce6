//! The `Processor` trait and the driver that runs it over a batch, natively and in Wasm.

use crate::context::{Context, Host};
use crate::record::{BatchResult, Failure, Output, Record, Timer};

/// Why a record could not be processed. The host applies the processor's error policy to
/// the record (stop, skip, or dead-letter with this message in a header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(error: E) -> Error {
        Error {
            message: error.to_string(),
        }
    }
}

/// The settings given at deploy time (`--config key=value`), in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    entries: Vec<(String, String)>,
}

impl Config {
    pub fn new(entries: Vec<(String, String)>) -> Config {
        Config { entries }
    }

    /// The last value given for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    /// The value of `key`, or an error that names it.
    pub fn require(&self, key: &str) -> Result<&str, String> {
        self.get(key)
            .ok_or_else(|| format!("missing setting `{key}`"))
    }

    /// The value of `key` parsed, `default` when it is absent, or an error that names it.
    pub fn parse_or<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|error| format!("setting `{key}` = `{text}`: {error}")),
        }
    }

    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Config {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Config {
        Config {
            entries: entries
                .into_iter()
                .map(|(key, value)| (key.into(), value.into()))
                .collect(),
        }
    }
}

/// A stream processor. One instance runs per input partition, created by `init` and then
/// called record by record, in offset order; `on_timer` runs for each timer that came due.
///
/// Everything a call does (records emitted, state written, timers set) takes effect
/// exactly once: it commits with the input position, or, after a crash, is redone from the
/// same input and state.
pub trait Processor: Sized {
    /// Reads the settings; an error refuses the deployment with its message.
    fn init(config: &Config) -> Result<Self, String>;

    /// Processes one record. An error marks this record failed: what it emitted is dropped
    /// (state it wrote stays), and the batch goes on.
    fn process(&mut self, record: &Record, context: &mut Context<'_>) -> Result<(), Error>;

    /// Called when a timer set with [`Context::set_timer`] comes due.
    fn on_timer(&mut self, timer: &Timer, context: &mut Context<'_>) -> Result<(), Error> {
        let _ = (timer, context);
        Ok(())
    }
}

/// Runs `processor` over one batch as the host calls it: failures collected per record.
pub fn process_batch<P: Processor>(
    processor: &mut P,
    records: &[Record],
    host: &mut dyn Host,
) -> BatchResult {
    run_each(
        records,
        host,
        |record| record.timestamp_ms,
        |record, context| processor.process(record, context),
    )
}

/// Runs `processor`'s timers, each failure counted against its place in `timers`.
pub fn process_timers<P: Processor>(
    processor: &mut P,
    timers: &[Timer],
    host: &mut dyn Host,
) -> BatchResult {
    run_each(
        timers,
        host,
        |timer| timer.time_ms,
        |timer, context| processor.on_timer(timer, context),
    )
}

/// Calls `call` on each item: the outputs of one that fails are dropped and its failure
/// recorded by its place; the others' outputs without a timestamp get the item's time.
fn run_each<T>(
    items: &[T],
    host: &mut dyn Host,
    time_ms: impl Fn(&T) -> i64,
    mut call: impl FnMut(&T, &mut Context<'_>) -> Result<(), Error>,
) -> BatchResult {
    let mut result = BatchResult::default();
    for (index, item) in items.iter().enumerate() {
        let kept = result.outputs.len();
        match call(item, &mut Context::new(&mut result.outputs, host)) {
            Ok(()) => fill_timestamps(&mut result.outputs[kept..], time_ms(item)),
            Err(error) => {
                result.outputs.truncate(kept);
                result.failures.push(Failure {
                    index: index_u32(index),
                    message: error.message,
                });
            }
        }
    }
    result
}

/// Outputs without a timestamp get their record's (or timer's) time.
fn fill_timestamps(outputs: &mut [Output], time_ms: i64) {
    for output in outputs {
        output.timestamp_ms.get_or_insert(time_ms);
    }
}

fn index_u32(index: usize) -> u32 {
    // The host never sends more records in one call than fit in the WIT's u32 index.
    u32::try_from(index).unwrap_or(u32::MAX)
}

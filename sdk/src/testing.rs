//! Run a processor natively, with the host's semantics held in memory: plain `cargo test`.
//!
//! ```
//! use fjord_sdk::testing::TestRunner;
//! use fjord_sdk::{Config, Context, Error, Processor, Record};
//!
//! struct Upper;
//! impl Processor for Upper {
//!     fn init(_: &Config) -> Result<Self, String> {
//!         Ok(Upper)
//!     }
//!     fn process(&mut self, record: &Record, context: &mut Context<'_>) -> Result<(), Error> {
//!         let text = record.value_str().ok_or_else(|| Error::new("not UTF-8"))?;
//!         context.emit(record.forward().with_value(text.to_uppercase()));
//!         Ok(())
//!     }
//! }
//!
//! let mut runner = TestRunner::<Upper>::new(&[]).unwrap();
//! let run = runner.send(None, Some("hello"), 1_000);
//! assert_eq!(run.outputs[0].value_str(), Some("HELLO"));
//! ```

use std::collections::BTreeMap;

use crate::context::{Host, Level, StateError};
use crate::processor::{Config, Processor, process_batch, process_timers};
use crate::record::{BatchResult, Failure, Output, Record, Timer};

/// The most entries one `range` call returns, as in the broker.
const RANGE_ENTRIES_MAX: u32 = 10_000;

/// What one batch produced: the records' outputs, then those of the timers that came due.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Run {
    pub outputs: Vec<Output>,
    /// Records that failed, by their place in the batch.
    pub failures: Vec<Failure>,
    /// Timers that failed, by their place among the timers that came due.
    pub timer_failures: Vec<Failure>,
}

/// A processor and an in-memory host: state with TTLs, timers and the watermark behave as in
/// the broker (see the `state` and `timers` interfaces of the WIT package).
#[derive(Debug)]
pub struct TestRunner<P> {
    processor: P,
    host: MemoryHost,
    partition: i32,
    next_offset: i64,
}

impl<P: Processor> TestRunner<P> {
    /// Initialises the processor with `config`, as `deploy --config key=value` would.
    pub fn new(config: &[(&str, &str)]) -> Result<TestRunner<P>, String> {
        let config: Config = config.iter().copied().collect();
        Ok(TestRunner {
            processor: P::init(&config)?,
            host: MemoryHost::default(),
            partition: 0,
            next_offset: 0,
        })
    }

    /// One record with the next offset of the runner's partition.
    pub fn send(&mut self, key: Option<&str>, value: Option<&str>, timestamp_ms: i64) -> Run {
        let record = self.record(
            key.map(str::as_bytes),
            value.map(str::as_bytes),
            timestamp_ms,
        );
        self.process(vec![record])
    }

    /// A record with the next offset of the runner's partition, to pass to [`Self::process`].
    pub fn record(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp_ms: i64,
    ) -> Record {
        let mut record = Record::new(key, value);
        record.partition = self.partition;
        record.offset = self.next_offset;
        record.timestamp_ms = timestamp_ms;
        self.next_offset += 1;
        record
    }

    /// One batch, as the host runs it: the watermark moves to the batch's latest record
    /// time, the batch is processed, expired state goes, and due timers fire.
    pub fn process(&mut self, records: Vec<Record>) -> Run {
        if let Some(latest) = records.iter().map(|record| record.timestamp_ms).max() {
            self.host.watermark_ms = self.host.watermark_ms.max(latest);
        }
        let processed = process_batch(&mut self.processor, &records, &mut self.host);
        let fired = self.fire_timers();
        Run {
            outputs: processed.outputs.into_iter().chain(fired.outputs).collect(),
            failures: processed.failures,
            timer_failures: fired.failures,
        }
    }

    /// Moves the watermark to `time_ms` without records (as a later batch would) and fires
    /// the timers that came due.
    pub fn advance_watermark(&mut self, time_ms: i64) -> Run {
        self.host.watermark_ms = self.host.watermark_ms.max(time_ms);
        let fired = self.fire_timers();
        Run {
            outputs: fired.outputs,
            failures: Vec::new(),
            timer_failures: fired.failures,
        }
    }

    /// The live state entries, in key order.
    pub fn state(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let watermark_ms = self.host.watermark_ms;
        self.host
            .entries
            .iter()
            .filter(|(_, entry)| entry.live(watermark_ms))
            .map(|(key, entry)| (key.clone(), entry.value.clone()))
            .collect()
    }

    /// The pending timers, in time then key order.
    pub fn timers(&self) -> Vec<Timer> {
        let mut timers: Vec<Timer> = self
            .host
            .timers
            .iter()
            .map(|(key, &time_ms)| Timer {
                time_ms,
                key: key.clone(),
            })
            .collect();
        timers.sort();
        timers
    }

    /// What the processor logged, oldest first.
    pub fn logs(&self) -> &[(Level, String)] {
        &self.host.logs
    }

    pub fn processor(&mut self) -> &mut P {
        &mut self.processor
    }

    fn fire_timers(&mut self) -> BatchResult {
        let watermark_ms = self.host.watermark_ms;
        self.host
            .entries
            .retain(|_, entry| entry.live(watermark_ms));
        let mut due: Vec<Timer> = self
            .host
            .timers
            .iter()
            .filter(|&(_, &time_ms)| time_ms <= watermark_ms)
            .map(|(key, &time_ms)| Timer {
                time_ms,
                key: key.clone(),
            })
            .collect();
        due.sort();
        for timer in &due {
            self.host.timers.remove(&timer.key);
        }
        process_timers(&mut self.processor, &due, &mut self.host)
    }
}

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    /// The watermark at which the entry disappears.
    expires_at_ms: Option<i64>,
}

impl Entry {
    fn live(&self, watermark_ms: i64) -> bool {
        self.expires_at_ms
            .is_none_or(|expires_at_ms| watermark_ms < expires_at_ms)
    }
}

#[derive(Debug)]
struct MemoryHost {
    entries: BTreeMap<Vec<u8>, Entry>,
    timers: BTreeMap<Vec<u8>, i64>,
    watermark_ms: i64,
    logs: Vec<(Level, String)>,
}

impl Default for MemoryHost {
    fn default() -> MemoryHost {
        MemoryHost {
            entries: BTreeMap::new(),
            timers: BTreeMap::new(),
            watermark_ms: i64::MIN,
            logs: Vec::new(),
        }
    }
}

impl Host for MemoryHost {
    fn log(&mut self, level: Level, message: &str) {
        self.logs.push((level, message.to_owned()));
    }

    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.entries
            .get(key)
            .filter(|entry| entry.live(self.watermark_ms))
            .map(|entry| entry.value.clone())
    }

    fn put(&mut self, key: &[u8], value: &[u8], ttl_ms: Option<u64>) -> Result<(), StateError> {
        let expires_at_ms = ttl_ms.map(|ttl_ms| {
            self.watermark_ms
                .saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX))
        });
        self.entries.insert(
            key.to_vec(),
            Entry {
                value: value.to_vec(),
                expires_at_ms,
            },
        );
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) {
        self.entries.remove(key);
    }

    fn range(&mut self, start: &[u8], end: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        let watermark_ms = self.watermark_ms;
        self.entries
            .range(start.to_vec()..)
            .take_while(|(key, _)| end.is_none_or(|end| key.as_slice() < end))
            .filter(|(_, entry)| entry.live(watermark_ms))
            .take(limit.min(RANGE_ENTRIES_MAX) as usize)
            .map(|(key, entry)| (key.clone(), entry.value.clone()))
            .collect()
    }

    fn set_timer(&mut self, key: &[u8], time_ms: i64) -> Result<(), StateError> {
        self.timers.insert(key.to_vec(), time_ms);
        Ok(())
    }

    fn cancel_timer(&mut self, key: &[u8]) {
        self.timers.remove(key);
    }
}

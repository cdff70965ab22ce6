//! The shapes users know from Kafka Streams and Redpanda Connect, as small traits: write the
//! one method that matters and wrap the type (`Filter<MyFilter>`) to get a [`Processor`].
//!
//! ```
//! use fjord_sdk::shapes::{Filter, FilterFn};
//! use fjord_sdk::{Config, Error, Record};
//!
//! struct NonEmpty;
//! impl FilterFn for NonEmpty {
//!     fn init(_: &Config) -> Result<Self, String> {
//!         Ok(NonEmpty)
//!     }
//!     fn keep(&mut self, record: &Record) -> Result<bool, Error> {
//!         Ok(record.value.as_ref().is_some_and(|value| !value.is_empty()))
//!     }
//! }
//! fjord_sdk::export_processor!(Filter<NonEmpty>);
//! ```

use crate::context::Context;
use crate::processor::{Config, Error, Processor};
use crate::record::{Output, Record, Timer};

/// Keeps the records `keep` accepts, unchanged, on the default output.
pub trait FilterFn: Sized {
    fn init(config: &Config) -> Result<Self, String>;
    fn keep(&mut self, record: &Record) -> Result<bool, Error>;
}

/// One output per record.
pub trait MapFn: Sized {
    fn init(config: &Config) -> Result<Self, String>;
    fn map(&mut self, record: &Record) -> Result<Output, Error>;
}

/// At most one output per record.
pub trait FilterMapFn: Sized {
    fn init(config: &Config) -> Result<Self, String>;
    fn filter_map(&mut self, record: &Record) -> Result<Option<Output>, Error>;
}

/// Any number of outputs per record.
pub trait FlatMapFn: Sized {
    fn init(config: &Config) -> Result<Self, String>;
    fn flat_map(&mut self, record: &Record) -> Result<Vec<Output>, Error>;
}

/// Where [`RouteFn`] sends a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// The processor's first output.
    Default,
    /// One of the processor's outputs, by topic name.
    Topic(String),
    /// Nowhere.
    Drop,
}

/// Each record, unchanged, to the output topic chosen for it.
pub trait RouteFn: Sized {
    fn init(config: &Config) -> Result<Self, String>;
    fn route(&mut self, record: &Record) -> Result<Destination, Error>;
}

/// What [`AggregateFn::aggregate`] returns: the key's new state and what to emit, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregated {
    pub state: Vec<u8>,
    pub emit: Option<Output>,
}

/// State carried from record to record per record key (a null key is the empty key).
pub trait AggregateFn: Sized {
    fn init(config: &Config) -> Result<Self, String>;
    fn aggregate(&mut self, state: Option<Vec<u8>>, record: &Record) -> Result<Aggregated, Error>;
}

/// A tumbling window of event time per record key: `add` folds each record into its
/// window's accumulator; `close` runs once the watermark passes the window's end. A record
/// later than its window's close opens the window again, and `close` runs for it once more.
pub trait WindowFn: Sized {
    fn init(config: &Config) -> Result<Self, String>;
    /// The window's length, in milliseconds (positive).
    fn window_ms(&self) -> i64;
    fn add(&mut self, accumulator: Option<Vec<u8>>, record: &Record) -> Result<Vec<u8>, Error>;
    fn close(
        &mut self,
        key: &[u8],
        window_start_ms: i64,
        accumulator: Vec<u8>,
    ) -> Result<Option<Output>, Error>;
}

/// The [`Processor`] of a [`FilterFn`].
#[derive(Debug)]
pub struct Filter<T>(pub T);
/// The [`Processor`] of a [`MapFn`].
#[derive(Debug)]
pub struct Map<T>(pub T);
/// The [`Processor`] of a [`FilterMapFn`].
#[derive(Debug)]
pub struct FilterMap<T>(pub T);
/// The [`Processor`] of a [`FlatMapFn`].
#[derive(Debug)]
pub struct FlatMap<T>(pub T);
/// The [`Processor`] of a [`RouteFn`].
#[derive(Debug)]
pub struct Route<T>(pub T);
/// The [`Processor`] of an [`AggregateFn`].
#[derive(Debug)]
pub struct Aggregate<T>(pub T);
/// The [`Processor`] of a [`WindowFn`].
#[derive(Debug)]
pub struct TumblingWindow<T>(pub T);

impl<T: FilterFn> Processor for Filter<T> {
    fn init(config: &Config) -> Result<Self, String> {
        T::init(config).map(Filter)
    }
    fn process(&mut self, record: &Record, context: &mut Context<'_>) -> Result<(), Error> {
        if self.0.keep(record)? {
            context.emit(record.forward());
        }
        Ok(())
    }
}

impl<T: MapFn> Processor for Map<T> {
    fn init(config: &Config) -> Result<Self, String> {
        T::init(config).map(Map)
    }
    fn process(&mut self, record: &Record, context: &mut Context<'_>) -> Result<(), Error> {
        context.emit(self.0.map(record)?);
        Ok(())
    }
}

impl<T: FilterMapFn> Processor for FilterMap<T> {
    fn init(config: &Config) -> Result<Self, String> {
        T::init(config).map(FilterMap)
    }
    fn process(&mut self, record: &Record, context: &mut Context<'_>) -> Result<(), Error> {
        if let Some(output) = self.0.filter_map(record)? {
            context.emit(output);
        }
        Ok(())
    }
}

impl<T: FlatMapFn> Processor for FlatMap<T> {
    fn init(config: &Config) -> Result<Self, String> {
        T::init(config).map(FlatMap)
    }
    fn process(&mut self, record: &Record, context: &mut Context<'_>) -> Result<(), Error> {
        for output in self.0.flat_map(record)? {
            context.emit(output);
        }
        Ok(())
    }
}

impl<T: RouteFn> Processor for Route<T> {
    fn init(config: &Config) -> Result<Self, String> {
        T::init(config).map(Route)
    }
    fn process(&mut self, record: &Record, context: &mut Context<'_>) -> Result<(), Error> {
        match self.0.route(record)? {
            Destination::Default => context.emit(record.forward()),
            Destination::Topic(topic) => context.emit(record.forward().with_topic(topic)),
            Destination::Drop => {}
        }
        Ok(())
    }
}

impl<T: AggregateFn> Processor for Aggregate<T> {
    fn init(config: &Config) -> Result<Self, String> {
        T::init(config).map(Aggregate)
    }
    fn process(&mut self, record: &Record, context: &mut Context<'_>) -> Result<(), Error> {
        let key = record.key.as_deref().unwrap_or_default();
        let state = context.get(key);
        let aggregated = self.0.aggregate(state, record)?;
        context.put(key, &aggregated.state)?;
        if let Some(output) = aggregated.emit {
            context.emit(output);
        }
        Ok(())
    }
}

impl<T: WindowFn> Processor for TumblingWindow<T> {
    fn init(config: &Config) -> Result<Self, String> {
        let window = T::init(config)?;
        if window.window_ms() <= 0 {
            return Err(format!(
                "window length must be positive, not {} ms",
                window.window_ms()
            ));
        }
        Ok(TumblingWindow(window))
    }
    fn process(&mut self, record: &Record, context: &mut Context<'_>) -> Result<(), Error> {
        let window_ms = self.0.window_ms();
        let start_ms = record.timestamp_ms.div_euclid(window_ms) * window_ms;
        let slot = window_slot(start_ms, record.key.as_deref().unwrap_or_default());
        let accumulator = context.get(&slot);
        let updated = self.0.add(accumulator, record)?;
        context.put(&slot, &updated)?;
        context.set_timer(&slot, start_ms.saturating_add(window_ms))?;
        Ok(())
    }
    fn on_timer(&mut self, timer: &Timer, context: &mut Context<'_>) -> Result<(), Error> {
        let Some((start_ms, key)) = parse_window_slot(&timer.key) else {
            return Ok(()); // not one of ours
        };
        let Some(accumulator) = context.get(&timer.key) else {
            return Ok(());
        };
        context.delete(&timer.key);
        if let Some(output) = self.0.close(key, start_ms, accumulator)? {
            context.emit(output);
        }
        Ok(())
    }
}

/// A window's state and timer key: the start time (big-endian, sign bit flipped, so keys
/// sort by time) then the record key.
fn window_slot(start_ms: i64, key: &[u8]) -> Vec<u8> {
    let mut slot = Vec::with_capacity(8 + key.len());
    slot.extend_from_slice(&((start_ms as u64) ^ (1 << 63)).to_be_bytes());
    slot.extend_from_slice(key);
    slot
}

fn parse_window_slot(slot: &[u8]) -> Option<(i64, &[u8])> {
    let (time, key) = slot.split_first_chunk::<8>()?;
    Some(((u64::from_be_bytes(*time) ^ (1 << 63)) as i64, key))
}

#[cfg(test)]
mod tests {
    use super::{parse_window_slot, window_slot};

    #[test]
    fn window_slots_round_trip_and_sort_by_time() {
        for start_ms in [i64::MIN, -60_000, 0, 60_000, i64::MAX] {
            let slot = window_slot(start_ms, b"card");
            assert_eq!(parse_window_slot(&slot), Some((start_ms, &b"card"[..])));
        }
        assert!(window_slot(-1, b"z") < window_slot(0, b"a"));
        assert!(window_slot(0, b"z") < window_slot(1, b"a"));
        assert_eq!(parse_window_slot(b"short"), None);
    }
}

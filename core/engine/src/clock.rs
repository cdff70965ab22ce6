//! Time as the engine sees it, passed in so that tests drive it.
//!
//! Two readings: wall-clock milliseconds since the Unix epoch (Kafka timestamps, retention,
//! commit times) and a monotonic [`Instant`] (session and rebalance deadlines). A
//! [`ManualClock`] moves both together, only when a test says so.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A source of time. The engine never reads the system clock except through one.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// A monotonic instant, for deadlines.
    fn now(&self) -> Instant;
}

/// The machine's clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that stands still until [`ManualClock::advance`] moves it.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<(i64, Instant)>,
}

impl ManualClock {
    /// A clock reading `now_ms` (and the current instant, as its monotonic start).
    pub fn new(now_ms: i64) -> Self {
        Self {
            state: Mutex::new((now_ms, Instant::now())),
        }
    }

    /// Moves both readings forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = state
            .0
            .saturating_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX));
        state.1 += by;
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    fn now(&self) -> Instant {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_both_readings_together() {
        let clock = ManualClock::new(1_000);
        let start = clock.now();
        clock.advance(Duration::from_millis(250));
        assert_eq!(clock.now_ms(), 1_250);
        assert_eq!(clock.now() - start, Duration::from_millis(250));
    }
}

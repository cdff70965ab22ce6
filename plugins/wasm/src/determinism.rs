//! The WASI clocks and random numbers of a guest, fixed per call by the host so that a
//! replayed batch computes what it computed the first time.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use fjord_processor::transform::mix64;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// What the host sets before each call; the guest's clocks and generators read it.
#[derive(Debug, Default, Clone)]
pub(crate) struct CallInputs {
    time_ms: Arc<AtomicI64>,
    random_state: Arc<AtomicU64>,
}

impl CallInputs {
    pub(crate) fn set(&self, time_ms: i64, random_seed: u64) {
        self.time_ms.store(time_ms, Ordering::Relaxed);
        self.random_state.store(random_seed, Ordering::Relaxed);
    }

    pub(crate) fn wall_clock(&self) -> CallClock {
        CallClock {
            time_ms: self.time_ms.clone(),
        }
    }

    pub(crate) fn monotonic_clock(&self) -> CallClock {
        CallClock {
            time_ms: self.time_ms.clone(),
        }
    }

    pub(crate) fn random(&self) -> SeededRandom {
        SeededRandom {
            state: self.random_state.clone(),
        }
    }
}

/// Both WASI clocks read the call's time: the batch's latest record time. Times before the
/// epoch read as the epoch.
#[derive(Debug)]
pub(crate) struct CallClock {
    time_ms: Arc<AtomicI64>,
}

impl CallClock {
    fn millis(&self) -> u64 {
        u64::try_from(self.time_ms.load(Ordering::Relaxed)).unwrap_or(0)
    }
}

impl HostWallClock for CallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(self.millis())
    }
}

impl HostMonotonicClock for CallClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }

    fn now(&self) -> u64 {
        self.millis().saturating_mul(1_000_000)
    }
}

/// SplitMix64 from the call's seed: the same numbers on every replay of the batch. Serves
/// both WASI generators; a processor needing secrets has no business in a replayed stream.
#[derive(Debug)]
pub(crate) struct SeededRandom {
    state: Arc<AtomicU64>,
}

impl SeededRandom {
    fn next(&self) -> u64 {
        let state = self
            .state
            .load(Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        self.state.store(state, Ordering::Relaxed);
        mix64(state)
    }
}

impl rand_core::TryRng for SeededRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.next() >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.next())
    }

    fn try_fill_bytes(&mut self, bytes: &mut [u8]) -> Result<(), Infallible> {
        for chunk in bytes.chunks_mut(8) {
            let word = self.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        Ok(())
    }
}

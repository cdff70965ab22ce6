//! A task's keyed state and timers: what the guest's `state` and `timers` imports reach.
//!
//! The store lives in memory; durability is the task loop's job, which writes
//! [`StateStore::take_changes`] to the processor's changelog in the same transaction as the
//! batch's outputs and input position, and rebuilds the store from the changelog with
//! [`StateStore::restore`]. Between two commits the store remembers the first previous value
//! of every slot it changed, so a batch that cannot commit (a trap, a refused output, a
//! failed commit) is undone with [`StateStore::rollback`] and the store equals the last
//! commit again.
//!
//! Event time: the watermark is the highest record time the task has processed. An entry
//! written with a TTL disappears once the watermark reaches the write's watermark plus the
//! TTL; a timer comes due once the watermark reaches its time.

use std::collections::{BTreeMap, BTreeSet};

use crate::limits::{STATE_ENTRY_OVERHEAD_BYTES, STATE_RANGE_ENTRIES_MAX};

/// The limits of one task's store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateLimits {
    pub key_bytes_max: usize,
    pub value_bytes_max: usize,
    /// Keys, values and a fixed overhead per entry and timer, over the whole store.
    pub size_bytes_max: u64,
}

/// Why a write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PutError {
    #[error("state key or value longer than {size_bytes_max} bytes")]
    TooLarge { size_bytes_max: u64 },
    #[error("the state store would pass its limit of {size_bytes_max} bytes")]
    Full { size_bytes_max: u64 },
}

/// A value and when it disappears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: Vec<u8>,
    /// The watermark at which the entry disappears.
    pub expires_at_ms: Option<i64>,
}

/// What a changelog record holds: one slot of the store and its value now (`None`: gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Entry { key: Vec<u8>, entry: Option<Entry> },
    Timer { key: Vec<u8>, time_ms: Option<i64> },
    Watermark { time_ms: i64 },
}

/// The first previous value of every slot changed since the last commit.
#[derive(Debug, Default)]
struct Touched {
    entries: BTreeMap<Vec<u8>, Option<Entry>>,
    timers: BTreeMap<Vec<u8>, Option<i64>>,
    watermark_ms: Option<i64>,
}

impl Touched {
    fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.timers.is_empty() && self.watermark_ms.is_none()
    }
}

/// One task's state store.
#[derive(Debug)]
pub struct StateStore {
    limits: StateLimits,
    entries: BTreeMap<Vec<u8>, Entry>,
    /// (expires_at_ms, key) of every entry with a TTL.
    expiries: BTreeSet<(i64, Vec<u8>)>,
    timers: BTreeMap<Vec<u8>, i64>,
    /// (time_ms, key) of every timer.
    timer_queue: BTreeSet<(i64, Vec<u8>)>,
    watermark_ms: i64,
    size_bytes: u64,
    touched: Touched,
}

impl StateStore {
    pub fn new(limits: StateLimits) -> StateStore {
        StateStore {
            limits,
            entries: BTreeMap::new(),
            expiries: BTreeSet::new(),
            timers: BTreeMap::new(),
            timer_queue: BTreeSet::new(),
            watermark_ms: i64::MIN,
            size_bytes: 0,
            touched: Touched::default(),
        }
    }

    pub fn watermark_ms(&self) -> i64 {
        self.watermark_ms
    }

    /// Keys, values and overheads of every entry and timer.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    /// Moves the watermark forward to `time_ms` (never back).
    pub fn advance_watermark(&mut self, time_ms: i64) {
        if time_ms > self.watermark_ms {
            self.touched.watermark_ms.get_or_insert(self.watermark_ms);
            self.watermark_ms = time_ms;
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries
            .get(key)
            .filter(|entry| self.live(entry))
            .map(|entry| entry.value.as_slice())
    }

    pub fn put(&mut self, key: &[u8], value: &[u8], ttl_ms: Option<u64>) -> Result<(), PutError> {
        if key.len() > self.limits.key_bytes_max {
            return Err(PutError::TooLarge {
                size_bytes_max: self.limits.key_bytes_max as u64,
            });
        }
        if value.len() > self.limits.value_bytes_max {
            return Err(PutError::TooLarge {
                size_bytes_max: self.limits.value_bytes_max as u64,
            });
        }
        let replaced = self
            .entries
            .get(key)
            .map_or(0, |entry| entry_size(key, &entry.value));
        let size_bytes = self.size_bytes - replaced + entry_size(key, value);
        if size_bytes > self.limits.size_bytes_max {
            return Err(PutError::Full {
                size_bytes_max: self.limits.size_bytes_max,
            });
        }
        let expires_at_ms = ttl_ms.map(|ttl_ms| {
            self.watermark_ms
                .saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX))
        });
        self.touch_entry(key);
        self.set_entry(
            key,
            Some(Entry {
                value: value.to_vec(),
                expires_at_ms,
            }),
        );
        Ok(())
    }

    pub fn delete(&mut self, key: &[u8]) {
        if self.entries.contains_key(key) {
            self.touch_entry(key);
            self.set_entry(key, None);
        }
    }

    /// Live entries with `start <= key < end`, in key order, at most `limit` (and at most
    /// `STATE_RANGE_ENTRIES_MAX`).
    pub fn range(&self, start: &[u8], end: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.entries
            .range(start.to_vec()..)
            .take_while(|(key, _)| end.is_none_or(|end| key.as_slice() < end))
            .filter(|(_, entry)| self.live(entry))
            .take(limit.min(STATE_RANGE_ENTRIES_MAX) as usize)
            .map(|(key, entry)| (key.clone(), entry.value.clone()))
            .collect()
    }

    /// Sets or moves the timer of `key`. Refused like a put when the store is full.
    pub fn set_timer(&mut self, key: &[u8], time_ms: i64) -> Result<(), PutError> {
        if key.len() > self.limits.key_bytes_max {
            return Err(PutError::TooLarge {
                size_bytes_max: self.limits.key_bytes_max as u64,
            });
        }
        let added = if self.timers.contains_key(key) {
            0
        } else {
            timer_size(key)
        };
        if self.size_bytes + added > self.limits.size_bytes_max {
            return Err(PutError::Full {
                size_bytes_max: self.limits.size_bytes_max,
            });
        }
        self.touch_timer(key);
        self.set_timer_slot(key, Some(time_ms));
        Ok(())
    }

    pub fn cancel_timer(&mut self, key: &[u8]) {
        if self.timers.contains_key(key) {
            self.touch_timer(key);
            self.set_timer_slot(key, None);
        }
    }

    /// Removes the entries whose TTL the watermark has reached, and returns (and removes)
    /// the timers that came due, in time then key order.
    pub fn take_due(&mut self) -> Vec<crate::transform::DueTimer> {
        let watermark_ms = self.watermark_ms;
        let expired: Vec<Vec<u8>> = self
            .expiries
            .iter()
            .take_while(|(at, _)| *at <= watermark_ms)
            .map(|(_, key)| key.clone())
            .collect();
        for key in expired {
            self.delete(&key);
        }
        let due: Vec<(i64, Vec<u8>)> = self
            .timer_queue
            .iter()
            .take_while(|(time_ms, _)| *time_ms <= watermark_ms)
            .cloned()
            .collect();
        due.into_iter()
            .map(|(time_ms, key)| {
                self.cancel_timer(&key);
                crate::transform::DueTimer { time_ms, key }
            })
            .collect()
    }

    /// The slots changed since the last commit with their values now (entries in key order,
    /// then timers, then the watermark): what the commit writes to the changelog. The store
    /// still remembers them until [`Self::mark_committed`], so a failed commit can roll back.
    pub fn pending_changes(&self) -> Vec<Change> {
        let entries = self.touched.entries.keys().map(|key| Change::Entry {
            key: key.clone(),
            entry: self.entries.get(key).cloned(),
        });
        let timers = self.touched.timers.keys().map(|key| Change::Timer {
            key: key.clone(),
            time_ms: self.timers.get(key).copied(),
        });
        let watermark = self.touched.watermark_ms.map(|_| Change::Watermark {
            time_ms: self.watermark_ms,
        });
        entries.chain(timers).chain(watermark).collect()
    }

    /// The pending changes are committed: they become what a rollback returns to.
    pub fn mark_committed(&mut self) {
        self.touched = Touched::default();
    }

    /// [`Self::pending_changes`] then [`Self::mark_committed`].
    pub fn take_changes(&mut self) -> Vec<Change> {
        let changes = self.pending_changes();
        self.mark_committed();
        changes
    }

    /// Whether anything changed since the last commit.
    pub fn has_changes(&self) -> bool {
        !self.touched.is_empty()
    }

    /// Undoes every change since the last commit.
    pub fn rollback(&mut self) {
        let touched = std::mem::take(&mut self.touched);
        for (key, entry) in touched.entries {
            self.set_entry(&key, entry);
        }
        for (key, time_ms) in touched.timers {
            self.set_timer_slot(&key, time_ms);
        }
        if let Some(watermark_ms) = touched.watermark_ms {
            self.watermark_ms = watermark_ms;
        }
    }

    /// Applies a change read back from the changelog (at start-up, before any call). Limits
    /// are not checked: the store held it before.
    pub fn restore(&mut self, change: Change) {
        match change {
            Change::Entry { key, entry } => self.set_entry(&key, entry),
            Change::Timer { key, time_ms } => self.set_timer_slot(&key, time_ms),
            Change::Watermark { time_ms } => self.watermark_ms = time_ms,
        }
    }

    fn live(&self, entry: &Entry) -> bool {
        entry
            .expires_at_ms
            .is_none_or(|expires_at_ms| self.watermark_ms < expires_at_ms)
    }

    fn touch_entry(&mut self, key: &[u8]) {
        if !self.touched.entries.contains_key(key) {
            self.touched
                .entries
                .insert(key.to_vec(), self.entries.get(key).cloned());
        }
    }

    fn touch_timer(&mut self, key: &[u8]) {
        if !self.touched.timers.contains_key(key) {
            self.touched
                .timers
                .insert(key.to_vec(), self.timers.get(key).copied());
        }
    }

    fn set_entry(&mut self, key: &[u8], entry: Option<Entry>) {
        if let Some(old) = self.entries.remove(key) {
            self.size_bytes -= entry_size(key, &old.value);
            if let Some(at) = old.expires_at_ms {
                self.expiries.remove(&(at, key.to_vec()));
            }
        }
        if let Some(entry) = entry {
            self.size_bytes += entry_size(key, &entry.value);
            if let Some(at) = entry.expires_at_ms {
                self.expiries.insert((at, key.to_vec()));
            }
            self.entries.insert(key.to_vec(), entry);
        }
    }

    fn set_timer_slot(&mut self, key: &[u8], time_ms: Option<i64>) {
        if let Some(old) = self.timers.remove(key) {
            self.size_bytes -= timer_size(key);
            self.timer_queue.remove(&(old, key.to_vec()));
        }
        if let Some(time_ms) = time_ms {
            self.size_bytes += timer_size(key);
            self.timer_queue.insert((time_ms, key.to_vec()));
            self.timers.insert(key.to_vec(), time_ms);
        }
    }
}

fn entry_size(key: &[u8], value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64 + STATE_ENTRY_OVERHEAD_BYTES
}

fn timer_size(key: &[u8]) -> u64 {
    key.len() as u64 + STATE_ENTRY_OVERHEAD_BYTES
}

#[cfg(test)]
mod tests {
    use super::{Change, Entry, PutError, StateLimits, StateStore};
    use crate::limits::STATE_ENTRY_OVERHEAD_BYTES;
    use crate::transform::DueTimer;

    fn store(size_bytes_max: u64) -> StateStore {
        StateStore::new(StateLimits {
            key_bytes_max: 8,
            value_bytes_max: 16,
            size_bytes_max,
        })
    }

    #[test]
    fn rollback_restores_the_last_commit_whatever_happened_since() {
        let mut state = store(10_000);
        state.advance_watermark(100);
        state.put(b"a", b"1", None).expect("fits");
        state.set_timer(b"t", 500).expect("fits");
        let committed = state.take_changes();
        assert_eq!(committed.len(), 3);
        let size_bytes = state.size_bytes();

        state.advance_watermark(200);
        state.put(b"a", b"2", Some(10)).expect("fits");
        state.put(b"a", b"3", None).expect("fits");
        state.put(b"b", b"4", None).expect("fits");
        state.delete(b"b");
        state.cancel_timer(b"t");
        state.set_timer(b"u", 300).expect("fits");
        state.rollback();

        assert_eq!(state.get(b"a"), Some(&b"1"[..]));
        assert_eq!(state.get(b"b"), None);
        assert_eq!(state.watermark_ms(), 100);
        assert_eq!(state.size_bytes(), size_bytes);
        assert!(!state.has_changes());
        state.advance_watermark(1_000);
        assert_eq!(
            state.take_due(),
            [DueTimer {
                time_ms: 500,
                key: b"t".to_vec()
            }]
        );
    }

    #[test]
    fn changes_name_each_slot_once_with_its_value_now() {
        let mut state = store(10_000);
        state.put(b"a", b"1", None).expect("fits");
        state.put(b"a", b"2", None).expect("fits");
        state.put(b"b", b"1", None).expect("fits");
        state.delete(b"b");
        state.set_timer(b"t", 5).expect("fits");
        assert_eq!(
            state.take_changes(),
            [
                Change::Entry {
                    key: b"a".to_vec(),
                    entry: Some(Entry {
                        value: b"2".to_vec(),
                        expires_at_ms: None
                    })
                },
                Change::Entry {
                    key: b"b".to_vec(),
                    entry: None
                },
                Change::Timer {
                    key: b"t".to_vec(),
                    time_ms: Some(5)
                },
            ]
        );
        assert!(state.take_changes().is_empty());
    }

    #[test]
    fn a_store_restored_from_its_changes_equals_the_original() {
        let mut original = store(10_000);
        let mut log = Vec::new();
        for round in 0..5_i64 {
            original.advance_watermark(round * 10);
            original
                .put(&[b'k', round as u8], b"v", Some(15))
                .expect("fits");
            original
                .set_timer(&[b't', round as u8], round * 10 + 5)
                .expect("fits");
            let due = original.take_due();
            assert!(due.len() <= 1);
            log.extend(original.take_changes());
        }
        let mut restored = store(10_000);
        for change in log {
            restored.restore(change);
        }
        assert_eq!(
            restored.range(b"", None, 100),
            original.range(b"", None, 100)
        );
        assert_eq!(restored.watermark_ms(), original.watermark_ms());
        assert_eq!(restored.size_bytes(), original.size_bytes());
        restored.advance_watermark(1_000);
        original.advance_watermark(1_000);
        assert_eq!(restored.take_due(), original.take_due());
    }

    #[test]
    fn ttl_hides_then_removes_an_entry_at_its_watermark() {
        let mut state = store(10_000);
        state.advance_watermark(1_000);
        state.put(b"k", b"v", Some(500)).expect("fits");
        state.advance_watermark(1_499);
        assert_eq!(state.get(b"k"), Some(&b"v"[..]));
        state.advance_watermark(1_500);
        assert_eq!(state.get(b"k"), None);
        assert!(state.range(b"", None, 10).is_empty());
        assert_eq!(state.entry_count(), 1);
        assert!(state.take_due().is_empty());
        assert_eq!(state.entry_count(), 0);
        assert_eq!(state.size_bytes(), 0);
    }

    #[test]
    fn timers_come_due_in_time_then_key_order_and_can_move() {
        let mut state = store(10_000);
        state.set_timer(b"b", 10).expect("fits");
        state.set_timer(b"a", 10).expect("fits");
        state.set_timer(b"c", 5).expect("fits");
        state.set_timer(b"d", 50).expect("fits");
        state.set_timer(b"c", 20).expect("fits"); // moved
        state.advance_watermark(20);
        let due: Vec<(i64, Vec<u8>)> = state
            .take_due()
            .into_iter()
            .map(|timer| (timer.time_ms, timer.key))
            .collect();
        assert_eq!(
            due,
            [
                (10, b"a".to_vec()),
                (10, b"b".to_vec()),
                (20, b"c".to_vec())
            ]
        );
        assert!(state.take_due().is_empty());
    }

    #[test]
    fn limits_refuse_writes_and_leave_the_store_as_it_was() {
        let one_entry = 1 + 1 + STATE_ENTRY_OVERHEAD_BYTES;
        let mut state = store(2 * one_entry);
        assert_eq!(
            state.put(b"123456789", b"v", None),
            Err(PutError::TooLarge { size_bytes_max: 8 })
        );
        assert_eq!(
            state.put(b"k", &[0; 17], None),
            Err(PutError::TooLarge { size_bytes_max: 16 })
        );
        state.put(b"a", b"1", None).expect("fits");
        state.put(b"b", b"1", None).expect("fits");
        state
            .put(b"b", b"2", None)
            .expect("a replacement of the same size fits");
        assert_eq!(
            state.put(b"c", b"1", None),
            Err(PutError::Full {
                size_bytes_max: 2 * one_entry
            })
        );
        assert_eq!(
            state.set_timer(b"t", 1),
            Err(PutError::Full {
                size_bytes_max: 2 * one_entry
            })
        );
        assert_eq!(state.size_bytes(), 2 * one_entry);
        assert_eq!(state.get(b"c"), None);
    }
}

//! The leader epoch cache: which leader epoch started at which offset.
//!
//! Each batch records the epoch of the leader that appended it; this cache is the summary a
//! follower or a restarted leader needs to answer OffsetsForLeaderEpoch and to truncate a
//! diverged log. Kept in `leader-epoch-checkpoint`, replaced atomically on every change
//! (changes are rare: one per leader election).

use std::path::Path;

use crate::Result;
use crate::checkpoint::{read_checked, with_crc, write_atomically};
use crate::limits::LEADER_EPOCHS_MAX;

const FILE: &str = "leader-epoch-checkpoint";
const VERSION: &str = "0";

/// One epoch and the first offset written in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub leader_epoch: i32,
    pub start_offset: i64,
}

#[derive(Debug, Default)]
pub(crate) struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// Loads the cache; a missing or damaged file gives an empty cache (the log's recovery
    /// refills it from the batches it scans).
    pub(crate) fn load(dir: &Path) -> Result<Self> {
        let Some(body) = read_checked(dir, FILE)? else {
            return Ok(Self::default());
        };
        let mut lines = body.lines();
        let parsed = (|| {
            if lines.next()? != VERSION {
                return None;
            }
            let count: usize = lines.next()?.parse().ok()?;
            if count > LEADER_EPOCHS_MAX {
                return None;
            }
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                let (epoch, offset) = lines.next()?.split_once(' ')?;
                entries.push(EpochEntry {
                    leader_epoch: epoch.parse().ok()?,
                    start_offset: offset.parse().ok()?,
                });
            }
            let ordered = entries.windows(2).all(|w| {
                w[0].leader_epoch < w[1].leader_epoch && w[0].start_offset <= w[1].start_offset
            });
            ordered.then_some(entries)
        })();
        Ok(Self {
            entries: parsed.unwrap_or_default(),
        })
    }

    pub(crate) fn persist(&self, dir: &Path) -> Result<()> {
        let mut body = format!("{VERSION}\n{}\n", self.entries.len());
        for entry in &self.entries {
            body.push_str(&format!("{} {}\n", entry.leader_epoch, entry.start_offset));
        }
        write_atomically(dir, FILE, &with_crc(body))
    }

    pub(crate) fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub(crate) fn latest(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    /// Records that `leader_epoch` starts at `start_offset`, if it is newer than the latest.
    /// Returns whether the cache changed.
    pub(crate) fn assign(&mut self, leader_epoch: i32, start_offset: i64) -> bool {
        if leader_epoch < 0
            || self
                .latest()
                .is_some_and(|l| l.leader_epoch >= leader_epoch)
        {
            return false;
        }
        if self.entries.len() >= LEADER_EPOCHS_MAX {
            self.entries.remove(0);
        }
        self.entries.push(EpochEntry {
            leader_epoch,
            start_offset,
        });
        true
    }

    /// Drops epochs that start at `log_end_offset` or later (after a truncation).
    pub(crate) fn truncate_from(&mut self, log_end_offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < log_end_offset);
        self.entries.len() != before
    }

    /// OffsetsForLeaderEpoch: the largest epoch at most `leader_epoch`, and the offset where
    /// it ended (the next epoch's start, or the log end offset for the latest).
    pub(crate) fn end_offset_for(
        &self,
        leader_epoch: i32,
        log_end_offset: i64,
    ) -> Option<(i32, i64)> {
        let index = self
            .entries
            .iter()
            .rposition(|e| e.leader_epoch <= leader_epoch)?;
        let end = self
            .entries
            .get(index + 1)
            .map_or(log_end_offset, |next| next.start_offset);
        Some((self.entries[index].leader_epoch, end))
    }
}

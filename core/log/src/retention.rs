//! Removing data from a log: retention by time and size, DeleteRecords, and truncation.

use std::sync::Arc;

use crate::checkpoint::sync_dir;
use crate::{Log, Result};

/// What one retention pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub deleted_segments: usize,
    pub deleted_bytes: u64,
}

impl Log {
    /// Deletes whole segments past `retention.ms` (by their newest timestamp) or beyond
    /// `retention.bytes`, and segments wholly below the log start offset. Only under a
    /// `delete` cleanup policy, except the last rule, which always applies. An expired active
    /// segment is rolled first so it can go too; the log always keeps one segment.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<RetentionOutcome> {
        if self.config.cleanup_policy.delete
            && let Some(retention_ms) = self.config.retention_ms
        {
            let active = self.active();
            if active.size_bytes > 0
                && active.max_timestamp >= 0
                && active.max_timestamp < now_ms.saturating_sub(retention_ms)
            {
                self.roll(now_ms)?;
            }
        }
        let mut outcome = RetentionOutcome::default();
        let mut size_bytes = self.size_bytes();
        while self.segments.len() > 1 {
            let Some(oldest) = self.segments.values().next() else {
                break;
            };
            let below_start = oldest.next_offset <= self.log_start_offset;
            let expired = self.config.cleanup_policy.delete
                && self
                    .config
                    .retention_ms
                    .is_some_and(|ms| oldest.max_timestamp < now_ms.saturating_sub(ms));
            let oversized = self.config.cleanup_policy.delete
                && self
                    .config
                    .retention_bytes
                    .is_some_and(|max| size_bytes - oldest.size_bytes >= max);
            if !(below_start || expired || oversized) {
                break;
            }
            size_bytes -= oldest.size_bytes;
            outcome.deleted_bytes += oldest.size_bytes;
            outcome.deleted_segments += 1;
            self.delete_oldest_segment()?;
        }
        Ok(outcome)
    }

    /// DeleteRecords: makes `offset` the new log start offset (records below it are gone for
    /// readers at once, their segments deleted as soon as wholly below). `offset` may not
    /// pass the high watermark. Returns the new log start offset.
    pub fn delete_records(&mut self, offset: i64) -> Result<i64> {
        if offset < 0 || offset > self.high_watermark() {
            return Err(fjord_partition::Error::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.high_watermark(),
            }
            .into());
        }
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            // Durable before segments go, so a crash never resurrects deleted records.
            self.write_checkpoint()?;
            while self.segments.len() > 1
                && self
                    .segments
                    .values()
                    .next()
                    .is_some_and(|s| s.next_offset <= offset)
            {
                self.delete_oldest_segment()?;
            }
        }
        Ok(self.log_start_offset)
    }

    /// Removes every batch whose last offset is `offset` or more (a whole batch goes if any
    /// of it is at or past `offset`), for a replica that diverged from its leader. The log end
    /// offset becomes the end of the last batch kept.
    pub fn truncate_to(&mut self, offset: i64) -> Result<()> {
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        let (dir, pool) = (self.dir.clone(), Arc::clone(&self.pool));
        let keeps_one = self.segments.range(..=offset).next().is_some();
        let doomed: Vec<i64> = if keeps_one {
            self.segments
                .range(offset + 1..)
                .map(|(base, _)| *base)
                .collect()
        } else {
            self.segments.keys().copied().collect()
        };
        for base in doomed {
            if let Some(segment) = self.segments.remove(&base) {
                segment.delete(&dir, &pool)?;
            }
        }
        let interval = self.config.index_interval_bytes;
        // The log ends where the first batch to go starts, or at `offset` itself when
        // compaction removed the batches just below it: those offsets were handed out once
        // and must not be again. (Whole segments past `offset` start past it.)
        let new_end = match self.segments.values_mut().next_back() {
            Some(segment) => {
                let removed_base = segment.truncate_to(&dir, &pool, offset, interval)?;
                offset.min(removed_base.unwrap_or(offset))
            }
            None => {
                let base = offset.max(0);
                self.segments
                    .insert(base, crate::segment::Segment::create(&dir, &pool, base, 0)?);
                base
            }
        };
        if self.log_end_offset() < new_end {
            self.continue_at(new_end)?;
        }
        sync_dir(&dir)?;
        let log_end_offset = self.log_end_offset();
        self.log_start_offset = self.log_start_offset.min(log_end_offset);
        self.recovery_point = self.recovery_point.min(log_end_offset);
        self.clamp_high_watermark();
        self.truncate_epochs()?;
        // The snapshot may name batches that are gone, whose offsets new data will reuse.
        self.producers.truncate_from(log_end_offset);
        self.producers_dirty = true;
        self.snapshot_producers()?;
        self.write_checkpoint()
    }

    /// Starts a new active segment at `offset`, past the end of the data: the active one is
    /// sealed, or deleted if empty. The caller syncs the directory.
    fn continue_at(&mut self, offset: i64) -> Result<()> {
        let (dir, pool) = (self.dir.clone(), Arc::clone(&self.pool));
        let active_base = self.active().base_offset;
        if self.active().size_bytes == 0 {
            if let Some(empty) = self.segments.remove(&active_base) {
                empty.delete(&dir, &pool)?;
            }
        } else {
            self.active_mut().seal(&dir, &pool)?;
        }
        let segment = crate::segment::Segment::create(&dir, &pool, offset, 0)?;
        self.segments.insert(offset, segment);
        Ok(())
    }

    fn delete_oldest_segment(&mut self) -> Result<()> {
        let Some((_, segment)) = self.segments.pop_first() else {
            return Ok(());
        };
        let next_base = self
            .segments
            .keys()
            .next()
            .copied()
            .unwrap_or(segment.next_offset);
        if self.log_start_offset < next_base {
            self.log_start_offset = next_base;
            self.write_checkpoint()?;
        }
        segment.delete(&self.dir, &self.pool)
    }
}

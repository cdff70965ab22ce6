//! Idempotent and transactional producer state of a log: the rules are
//! [`fjord_partition::ProducerStates`]; this is where a local log keeps it, with the aborted
//! transactions it derives (each segment's `.txnindex`, see `txn_index.rs`). The state lives in memory and in `producer.snapshot`
//! (the state's text with a CRC line), written when a segment rolls and when the log closes.
//! Opening a log loads the snapshot and replays the batch headers after it, so the state
//! after a crash is what the surviving data says.

use std::path::Path;

use fjord_partition::{
    AbortedTransaction, CheckedBatch, CompletedTransaction, Offset, ProducerBatch, ProducerId,
    ProducerStates,
};
use fjord_record::{ControlType, NO_PRODUCER_ID};

use crate::checkpoint::{read_checked, with_crc, write_atomically};
use crate::error::invalid_batch;
use crate::limits::DECOMPRESSED_BYTES_MAX;
use crate::txn_index::AbortedEntry;
use crate::{Log, Recovery, Result};

pub(crate) const SNAPSHOT_FILE: &str = "producer.snapshot";

/// The state and the offset it covers, or `None` if there is no usable snapshot.
fn read_snapshot(dir: &Path) -> Result<Option<(ProducerStates, i64)>> {
    let Some(body) = read_checked(dir, SNAPSHOT_FILE)? else {
        return Ok(None);
    };
    let parsed = ProducerStates::decode_snapshot(&body);
    if parsed.is_none() {
        tracing::warn!(dir = %dir.display(), "ignoring malformed producer snapshot");
    }
    Ok(parsed)
}

impl Log {
    /// Rebuilds the producer state after opening: the snapshot, then every batch after it.
    /// Without a snapshot a clean shutdown means there were no producers; after a crash the
    /// active segment is replayed (a roll writes the snapshot, so older segments are in it).
    pub(crate) fn load_producers(&mut self, recovery: Recovery) -> Result<()> {
        let log_end_offset = self.log_end_offset();
        let from = match read_snapshot(&self.dir)? {
            Some((mut states, offset)) => {
                if offset > log_end_offset {
                    states.truncate_from(log_end_offset);
                    self.producers_dirty = true;
                }
                self.producers = states;
                offset.min(log_end_offset)
            }
            None if recovery == Recovery::Trusted => return Ok(()),
            None => self.active().base_offset,
        };
        self.replay_producers(from.max(self.log_start_offset))?;
        if self.producers_dirty {
            self.snapshot_producers()?;
        }
        Ok(())
    }

    fn replay_producers(&mut self, mut offset: i64) -> Result<()> {
        let mut buffer = Vec::new();
        while offset < self.log_end_offset() {
            buffer.clear();
            if self.read_into(offset, 1024 * 1024, i64::MAX, &mut buffer)? == 0 {
                break;
            }
            for batch in fjord_record::batches(&buffer) {
                let batch = batch.map_err(invalid_batch)?;
                self.apply_to_producers(&batch, batch.header)?;
                offset = offset.max(batch.header.next_offset());
            }
        }
        Ok(())
    }

    /// The original of a retried batch, if the append is one; an error if any batch breaks
    /// its producer's sequence or epoch. Batches are checked in order, each seeing the ones
    /// before it in the same append.
    pub(crate) fn find_duplicate(&self, spans: &[CheckedBatch]) -> Result<Option<ProducerBatch>> {
        Ok(self
            .producers
            .check_append(spans.iter().map(|span| &span.header))?)
    }

    /// Records the batches of an append (`batches`, checked as `spans`) that went to the
    /// log from `base_offset` on.
    pub(crate) fn record_producers(
        &mut self,
        batches: &[u8],
        spans: &[CheckedBatch],
        base_offset: i64,
    ) -> Result<()> {
        let mut next_offset = base_offset;
        for span in spans {
            let mut header = span.header;
            header.base_offset = next_offset;
            let bytes = batches
                .get(span.position..span.position + span.size_bytes)
                .ok_or_else(|| {
                    invalid_batch(fjord_record::Error::Truncated {
                        position: span.position,
                        needed_bytes: span.size_bytes,
                        available_bytes: batches.len().saturating_sub(span.position),
                    })
                })?;
            let batch = fjord_record::Batch {
                position: span.position,
                header,
                bytes,
            };
            self.apply_to_producers(&batch, header)?;
            next_offset += span.offsets_count;
        }
        Ok(())
    }

    /// One stored batch (`header` at its offsets) applied to the producer state: a producer's
    /// batch continues its sequence (and may open a transaction); a transaction marker ends
    /// its producer's transaction.
    fn apply_to_producers(
        &mut self,
        batch: &fjord_record::Batch<'_>,
        header: fjord_record::BatchHeader,
    ) -> Result<()> {
        if header.producer_id == NO_PRODUCER_ID {
            return Ok(());
        }
        match ControlType::of_batch(batch, DECOMPRESSED_BYTES_MAX).map_err(invalid_batch)? {
            Some(marker) => {
                let completed = self.producers.end_transaction(&header, marker);
                if let Some(aborted) = completed.filter(|c| c.aborted) {
                    self.record_aborted(aborted)?;
                }
            }
            None => self.producers.update(&header),
        }
        self.producers_dirty = true;
        Ok(())
    }

    /// Adds an aborted transaction to the index of the segment holding its marker, with the
    /// last stable offset once it ended (no transaction aborted later began before it).
    fn record_aborted(&mut self, aborted: CompletedTransaction) -> Result<()> {
        let entry = AbortedEntry {
            producer_id: aborted.producer_id,
            first_offset: aborted.first_offset,
            last_offset: aborted.last_offset,
            last_stable_offset: self
                .producers
                .first_unstable_offset()
                .unwrap_or(aborted.last_offset + 1),
        };
        let Self { dir, segments, .. } = self;
        match segments.range_mut(..=entry.last_offset).next_back() {
            Some((_, segment)) => segment.push_aborted(dir, entry),
            None => Ok(()),
        }
    }

    /// The aborted transactions a `read_committed` reader of offsets `from..to` must know
    /// of: those with records in that range, each as its producer and first offset, in the
    /// order their markers were written.
    pub fn aborted_transactions(&self, from: i64, to: i64) -> Vec<AbortedTransaction> {
        let mut found = Vec::new();
        // A segment ending at or before `from` holds only markers before it.
        let start = self
            .segments
            .range(..=from)
            .next_back()
            .map_or(i64::MIN, |(base, _)| *base);
        for segment in self.segments.range(start..).map(|(_, s)| s) {
            for entry in segment.aborted() {
                if entry.last_offset >= from && entry.first_offset < to {
                    found.push(AbortedTransaction {
                        producer_id: ProducerId(entry.producer_id),
                        first_offset: Offset(entry.first_offset),
                    });
                }
                if entry.last_stable_offset >= to {
                    return found;
                }
            }
        }
        found
    }

    /// The last stable offset: the high watermark, held back to the first offset of the
    /// oldest open transaction (a `read_committed` reader stops there).
    pub fn last_stable_offset(&self) -> i64 {
        let high_watermark = self.high_watermark();
        self.producers
            .first_unstable_offset()
            .map_or(high_watermark, |first| first.min(high_watermark))
    }

    /// Idempotent producers this partition remembers.
    pub fn producer_count(&self) -> usize {
        self.producers.len()
    }

    /// Writes `producer.snapshot` at the log end offset if the state changed.
    pub(crate) fn snapshot_producers(&mut self) -> Result<()> {
        if self.producers_dirty {
            let snapshot = self.producers.encode_snapshot(self.log_end_offset());
            write_atomically(&self.dir, SNAPSHOT_FILE, &with_crc(snapshot))?;
            self.producers_dirty = false;
        }
        Ok(())
    }
}

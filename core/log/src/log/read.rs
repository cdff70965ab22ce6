//! Reading a log: batches copied into memory ([`Log::read`], [`Log::read_into`]) or, for
//! serving consumers, a range of a segment file ([`Log::fetch`]) that the broker sends to a
//! socket without passing it through user space.

use bytes::Bytes;

use super::Log;
use crate::Result;
use crate::segment::SliceRead;
use fjord_partition::FileRange;

/// Stored batches for a consumer, as [`Log::fetch`] found them.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// A range of a segment file: whole batches, each checked (CRC included) since the log
    /// was opened.
    Slice(FileRange),
    /// Batches copied into memory, checked as they were read.
    Copied(Bytes),
}

impl Fetched {
    /// The bytes of batches found.
    pub fn len(&self) -> usize {
        match self {
            Self::Slice(slice) => slice.len(),
            Self::Copied(bytes) => bytes.len(),
        }
    }

    /// Whether no batch was found (nothing at or past the offset yet, or too large a first
    /// batch without `min_one_batch`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Log {
    /// Whole batches starting with the one that holds `offset`: at most `max_bytes` unless the
    /// first batch alone is larger, none at or past `max_offset` (pass the high watermark for
    /// consumers, `i64::MAX` for everything). Every batch handed out has had its CRC checked
    /// since this log was opened (at append, at recovery, or here on its first read); damaged
    /// data gives [`crate::Error::Corrupt`], never bytes.
    pub fn read(&self, offset: i64, max_bytes: usize, max_offset: i64) -> Result<Bytes> {
        let mut out = Vec::new();
        self.read_into(offset, max_bytes, max_offset, &mut out)?;
        Ok(Bytes::from(out))
    }

    /// [`Self::read`] appending to `out`, so a caller can reuse one buffer (or build a
    /// response around the batches) without a copy. Returns the bytes appended.
    pub fn read_into(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
        out: &mut Vec<u8>,
    ) -> Result<usize> {
        let upper = self.readable_up_to(offset, max_offset)?;
        for segment in self.segments_from(offset) {
            if offset >= upper {
                break;
            }
            if let Some(read) =
                segment.read_offset_into(&self.dir, &self.pool, offset, max_bytes, upper, out)?
            {
                return Ok(read);
            }
        }
        Ok(0)
    }

    /// The batches [`Self::read`] would give, for a consumer: as a [`FileRange`] when every
    /// batch in range was checked before and the segment holds nothing past `max_offset`
    /// (the common case: a consumer reading up to the high watermark), copied otherwise.
    /// The first batch is whole even when larger than `max_bytes` if `min_one_batch` (the
    /// fetch's first partition, KIP-74); without it such a read is empty.
    ///
    /// A slice may end before `max_bytes` where the offset index knows no batch boundary
    /// closer to it: it is cut at indexed boundaries (every `index.interval.bytes`) so that
    /// no batch needs reading to find where the range ends.
    pub fn fetch(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<Fetched> {
        let upper = self.readable_up_to(offset, max_offset)?;
        for segment in self.segments_from(offset) {
            if offset >= upper {
                return Ok(Fetched::Copied(Bytes::new()));
            }
            let read = segment.read_slice(
                &self.dir,
                &self.pool,
                offset,
                max_bytes,
                upper,
                min_one_batch,
            )?;
            match read {
                SliceRead::NotHere => {}
                SliceRead::Slice(slice) => return Ok(Fetched::Slice(slice)),
                SliceRead::NeedsCopy => break,
            }
        }
        let mut out = Vec::new();
        self.read_into(offset, max_bytes, max_offset, &mut out)?;
        // Only a first batch larger than `max_bytes` makes a read longer than that.
        if !min_one_batch && out.len() > max_bytes {
            out.clear();
        }
        Ok(Fetched::Copied(Bytes::from(out)))
    }

    /// Checks that `offset` can be read; returns the offset reads must stop before.
    fn readable_up_to(&self, offset: i64, max_offset: i64) -> Result<i64> {
        let log_end_offset = self.log_end_offset();
        if offset < self.log_start_offset || offset > log_end_offset {
            return Err(fjord_partition::Error::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset,
            }
            .into());
        }
        Ok(max_offset.min(log_end_offset))
    }

    /// The segments from the one that may hold `offset` on.
    fn segments_from(&self, offset: i64) -> impl Iterator<Item = &crate::segment::Segment> {
        let first = self
            .segments
            .range(..=offset)
            .next_back()
            .map_or(self.log_start_offset, |(base, _)| *base);
        self.segments.range(first..).map(|(_, segment)| segment)
    }
}

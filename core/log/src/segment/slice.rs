//! Slice reads: where a consumer's batches lie in a segment file, without reading them, so
//! the broker can hand the file range to `sendfile`.

use std::path::Path;

use fjord_partition::{FileRange, Offset};

use super::{INDEX_SUFFIX, LOG_SUFFIX, Segment, file_path};
use crate::Result;
use crate::pool::FilePool;

/// What a segment answers to a slice read.
#[derive(Debug)]
pub(crate) enum SliceRead {
    /// No batch in this segment reaches the offset.
    NotHere,
    /// The batches need reading (unchecked, or some lie past the highest offset allowed).
    NeedsCopy,
    Slice(FileRange),
}

impl Segment {
    /// [`Segment::read_offset_into`] as a file range: whole batches from the one holding
    /// `offset`, at most `max_bytes` (the first batch whole when `min_one_batch`, else none
    /// when it alone is larger), ending at the segment's end or at a batch boundary the
    /// offset index knows.
    pub(crate) fn read_slice(
        &self,
        dir: &Path,
        pool: &FilePool,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<SliceRead> {
        if max_offset < self.next_offset {
            return Ok(SliceRead::NeedsCopy);
        }
        let first = match self.hinted_position(offset) {
            Some(position) => self.header_at(dir, pool, position)?.map(|h| (position, h)),
            None => match self.find(dir, pool, offset)? {
                Some(found) => Some((found.position, found.header)),
                None => return Ok(SliceRead::NotHere),
            },
        };
        let Some((position, header)) = first else {
            return Ok(SliceRead::NeedsCopy);
        };
        let first_end = position + header.size_bytes() as u64;
        let budget_end = position.saturating_add(max_bytes as u64);
        let (end, next_offset) = if first_end > budget_end {
            if min_one_batch {
                (first_end, header.next_offset())
            } else {
                (position, header.base_offset)
            }
        } else if self.size_bytes <= budget_end {
            (self.size_bytes, self.next_offset)
        } else {
            self.indexed_boundary(dir, pool, first_end, budget_end)?
                .unwrap_or((first_end, header.next_offset()))
        };
        if !self.verified.covers(&(position..end)) {
            // The copying read that follows starts where this look-up ended.
            self.set_read_hint(offset, position);
            return Ok(SliceRead::NeedsCopy);
        }
        if end > position {
            self.set_read_hint(next_offset, end);
        }
        let path = file_path(dir, self.base_offset, LOG_SUFFIX);
        Ok(SliceRead::Slice(FileRange::new(
            pool.get(self.log, &path)?,
            position,
            usize::try_from(end - position).unwrap_or(usize::MAX),
            Offset(header.base_offset)..Offset(next_offset),
        )))
    }

    /// The last batch start the offset index records within `from..=to`, with that batch's
    /// base offset.
    fn indexed_boundary(
        &self,
        dir: &Path,
        pool: &FilePool,
        from: u64,
        to: u64,
    ) -> Result<Option<(u64, i64)>> {
        let index_path = file_path(dir, self.base_offset, INDEX_SUFFIX);
        let Some(entry) = self
            .offsets
            .floor_by(pool, &index_path, |e| u64::from(e.position) <= to)?
        else {
            return Ok(None);
        };
        let position = u64::from(entry.position);
        if position < from {
            return Ok(None);
        }
        // The entry names the batch's last offset; its header gives the base offset. An
        // entry that does not match the log is ignored (the read then ends sooner).
        let claimed = self.base_offset + i64::from(entry.relative_offset);
        Ok(self
            .header_at(dir, pool, position)?
            .filter(|header| header.last_offset() == claimed)
            .map(|header| (position, header.base_offset)))
    }
}

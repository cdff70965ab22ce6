//! Reading batches out of a segment: finding the batch that holds an offset (index hint,
//! then a scan of batch headers), copying whole checked batches, and finding records by time.

use std::path::Path;

use fjord_record::{BatchHeader, HEADER_BYTES, Records, TimestampType};

use super::{
    INDEX_SUFFIX, LOG_SUFFIX, ReadHint, Segment, TIME_INDEX_SUFFIX, TimestampOffset, corrupt,
    file_path,
};
use crate::limits::{BATCH_BYTES_MAX, DECOMPRESSED_BYTES_MAX, SCAN_CHUNK_BYTES};
use crate::pool::FilePool;
use crate::scan::{Scanned, Scanner, Step, read_appending, read_up_to};
use crate::{Result, error::io};

impl Segment {
    /// The header at `position`, if a batch with magic 2 and a sane length starts there.
    pub(super) fn header_at(
        &self,
        dir: &Path,
        pool: &FilePool,
        position: u64,
    ) -> Result<Option<BatchHeader>> {
        if position + HEADER_BYTES as u64 > self.size_bytes {
            return Ok(None);
        }
        let path = file_path(dir, self.base_offset, LOG_SUFFIX);
        let mut bytes = [0u8; HEADER_BYTES];
        let read =
            read_up_to(&*pool.get(self.log, &path)?, &mut bytes, position).map_err(io(&path))?;
        Ok(BatchHeader::parse(&bytes[..read]).ok().filter(|h| {
            h.magic == fjord_record::MAGIC_V2
                && h.batch_length >= (HEADER_BYTES - 12) as i32
                && position + h.size_bytes() as u64 <= self.size_bytes
        }))
    }

    /// Where to start scanning for `offset`: an index entry checked against the log file,
    /// or the start of the segment when there is none or it does not check out.
    pub(super) fn scan_start(&self, dir: &Path, pool: &FilePool, offset: i64) -> Result<u64> {
        let index_path = file_path(dir, self.base_offset, INDEX_SUFFIX);
        let Some(entry) = self
            .offsets
            .floor(pool, &index_path, offset - self.base_offset)?
        else {
            return Ok(0);
        };
        let position = u64::from(entry.position);
        let claimed = self.base_offset + i64::from(entry.relative_offset);
        match self.header_at(dir, pool, position)? {
            Some(header) if header.last_offset() == claimed && claimed <= offset => Ok(position),
            _ => {
                tracing::warn!(path = %index_path.display(), offset, "index entry does not match the log; scanning from the segment start");
                Ok(0)
            }
        }
    }

    /// Where the last read ended, if it ended right before `offset`.
    pub(super) fn hinted_position(&self, offset: i64) -> Option<u64> {
        let hint = (*self.read_hint.lock().unwrap_or_else(|e| e.into_inner()))?;
        (hint.next_offset == offset && hint.position < self.size_bytes).then_some(hint.position)
    }

    /// Records that a read for `next_offset` starts at `position`.
    pub(super) fn set_read_hint(&self, next_offset: i64, position: u64) {
        let hint = ReadHint {
            next_offset,
            position,
        };
        *self.read_hint.lock().unwrap_or_else(|e| e.into_inner()) = Some(hint);
    }

    /// The first batch whose last offset is `offset` or more, if the segment has one.
    pub(crate) fn find(&self, dir: &Path, pool: &FilePool, offset: i64) -> Result<Option<Scanned>> {
        let start = self.scan_start(dir, pool, offset)?;
        let path = file_path(dir, self.base_offset, LOG_SUFFIX);
        let file = pool.get(self.log, &path)?;
        let mut scanner = Scanner::new(
            &file,
            &path,
            start..self.size_bytes,
            false,
            SCAN_CHUNK_BYTES,
        );
        loop {
            match scanner.next()? {
                Step::Batch(batch) if batch.header.last_offset() >= offset => {
                    return Ok(Some(batch));
                }
                Step::Batch(_) => {}
                Step::End => return Ok(None),
                Step::Invalid { position, reason } => return Err(corrupt(&path, position, reason)),
            }
        }
    }

    /// [`Self::read_into`] from the batch holding `offset`; `None` if no batch here reaches it.
    /// A read that continues where the last one ended starts there without a look-up.
    pub(crate) fn read_offset_into(
        &self,
        dir: &Path,
        pool: &FilePool,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
        out: &mut Vec<u8>,
    ) -> Result<Option<usize>> {
        let position = match self.hinted_position(offset) {
            Some(position) => position,
            None => match self.find(dir, pool, offset)? {
                Some(found) => found.position,
                None => return Ok(None),
            },
        };
        self.read_into(dir, pool, position, max_bytes, max_offset, out)
            .map(Some)
    }

    /// Appends to `out` whole batches from `position` on: at most `max_bytes` unless the first
    /// batch alone is larger (then just that one), none whose last offset is `max_offset` or
    /// more. Each batch is checked (length, magic, offsets moving forward, and its CRC unless
    /// it was verified before) before it is handed out. Returns the bytes appended.
    pub(super) fn read_into(
        &self,
        dir: &Path,
        pool: &FilePool,
        position: u64,
        max_bytes: usize,
        max_offset: i64,
        out: &mut Vec<u8>,
    ) -> Result<usize> {
        let path = file_path(dir, self.base_offset, LOG_SUFFIX);
        let file = pool.get(self.log, &path)?;
        let available = self.size_bytes.saturating_sub(position);
        let want = (max_bytes as u64).max(HEADER_BYTES as u64).min(available) as usize;
        let start = out.len();
        read_appending(&file, out, want, position).map_err(io(&path))?;
        let verified = self.verified.get();
        let mut used = 0usize;
        let mut expected_offset = i64::MIN;
        loop {
            let at = position + used as u64;
            let batch = match fjord_record::batches(&out[start + used..]).next() {
                None => break,
                Some(Ok(batch)) => batch,
                Some(Err(fjord_record::Error::Truncated { needed_bytes, .. }))
                    if used == 0
                        && (needed_bytes as u64) <= available
                        && needed_bytes <= BATCH_BYTES_MAX =>
                {
                    // The first batch is larger than max_bytes: hand it out whole (KIP-74).
                    let have = out.len() - start;
                    read_appending(&file, out, needed_bytes - have, position + have as u64)
                        .map_err(io(&path))?;
                    if out.len() - start < needed_bytes {
                        return Err(corrupt(&path, at, "file shorter than its segment".into()));
                    }
                    continue;
                }
                Some(Err(fjord_record::Error::Truncated { .. })) if used > 0 => break,
                Some(Err(e)) => return Err(corrupt(&path, at, e.to_string())),
            };
            if batch.header.last_offset() >= max_offset {
                break;
            }
            if batch.header.base_offset < expected_offset || batch.header.last_offset_delta < 0 {
                return Err(corrupt(&path, at, "batch offsets go backwards".into()));
            }
            if at < verified.start || at + batch.bytes.len() as u64 > verified.end {
                batch
                    .verify_crc()
                    .map_err(|e| corrupt(&path, at, e.to_string()))?;
            }
            expected_offset = batch.header.next_offset();
            used += batch.bytes.len();
        }
        out.truncate(start + used);
        if used > 0 {
            self.set_read_hint(expected_offset, position + used as u64);
        }
        self.verified.add(position..position + used as u64);
        Ok(used)
    }

    /// The first record with a timestamp at or after `timestamp`, if this segment has one.
    pub(crate) fn offset_for_timestamp(
        &self,
        dir: &Path,
        pool: &FilePool,
        timestamp: i64,
        from_offset: i64,
    ) -> Result<Option<TimestampOffset>> {
        if self.max_timestamp < timestamp {
            return Ok(None);
        }
        let time_path = file_path(dir, self.base_offset, TIME_INDEX_SUFFIX);
        let hint = self.times.floor(pool, &time_path, timestamp)?;
        let start_offset = hint.map_or(from_offset, |t| {
            (self.base_offset + i64::from(t.relative_offset)).max(from_offset)
        });
        let start = self.scan_start(dir, pool, start_offset)?;
        let path = file_path(dir, self.base_offset, LOG_SUFFIX);
        let file = pool.get(self.log, &path)?;
        let mut scanner =
            Scanner::new(&file, &path, start..self.size_bytes, true, SCAN_CHUNK_BYTES);
        loop {
            let batch = match scanner.next()? {
                Step::Batch(batch) => batch,
                Step::End => return Ok(None),
                Step::Invalid { position, reason } => return Err(corrupt(&path, position, reason)),
            };
            if batch.header.max_timestamp < timestamp
                || batch.header.last_offset() < from_offset
                || batch.header.attributes.is_control()
            {
                continue;
            }
            let bytes = scanner
                .bytes(&batch)
                .ok_or_else(|| corrupt(&path, batch.position, "batch not in buffer".into()))?;
            if let Some(found) =
                first_record_at_or_after(bytes, &batch.header, timestamp, from_offset)
                    .map_err(|e| corrupt(&path, batch.position, e.to_string()))?
            {
                return Ok(Some(found));
            }
        }
    }
}

fn first_record_at_or_after(
    batch: &[u8],
    header: &BatchHeader,
    timestamp: i64,
    from_offset: i64,
) -> Result<Option<TimestampOffset>, fjord_record::Error> {
    let Some(Ok(batch)) = fjord_record::batches(batch).next() else {
        return Ok(None);
    };
    let records = batch.decompressed_record_bytes(DECOMPRESSED_BYTES_MAX)?;
    for record in Records::new(&records) {
        let record = record?;
        let offset = header.base_offset + i64::from(record.offset_delta);
        let record_timestamp = match header.attributes.timestamp_type() {
            TimestampType::LogAppendTime => header.max_timestamp,
            TimestampType::CreateTime => {
                header.base_timestamp.saturating_add(record.timestamp_delta)
            }
        };
        if offset >= from_offset && record_timestamp >= timestamp {
            return Ok(Some(TimestampOffset {
                timestamp: record_timestamp,
                offset,
            }));
        }
    }
    Ok(None)
}

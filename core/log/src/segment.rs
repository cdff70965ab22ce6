//! One segment: a `.log` file of batches with its `.index` and `.timeindex`.
//!
//! Files are named by the segment's base offset, 20 digits zero-padded, as in Kafka:
//! `00000000000000000042.log`. A segment knows nothing of its neighbours; the [`crate::Log`]
//! decides when to roll, what to recover and what to delete.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use fjord_record::BatchHeader;

use crate::index::{Index, OffsetEntry, Opened, TimeEntry};
use crate::limits::{RECOVERY_CHUNK_BYTES, SCAN_CHUNK_BYTES};
use crate::pool::{FileId, FilePool};
use crate::scan::{Scanned, Scanner, Step};
use crate::txn_index::{AbortedEntry, TXN_INDEX_SUFFIX, TxnIndex};
use crate::{Error, Result, error::io};

mod read;
mod slice;
mod vectored;
mod verified;

pub(crate) use slice::SliceRead;
use vectored::write_all_vectored_at;
use verified::Verified;

pub(crate) const LOG_SUFFIX: &str = "log";
pub(crate) const INDEX_SUFFIX: &str = "index";
pub(crate) const TIME_INDEX_SUFFIX: &str = "timeindex";

pub(crate) fn file_path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{suffix}"))
}

/// A record found by timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub timestamp: i64,
    pub offset: i64,
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base_offset: i64,
    /// Offset after the last batch (the log end offset, for the active segment).
    pub(crate) next_offset: i64,
    pub(crate) size_bytes: u64,
    /// Largest batch max timestamp, -1 when empty.
    pub(crate) max_timestamp: i64,
    pub(crate) offset_of_max_timestamp: i64,
    /// When the `segment.ms` timer started.
    pub(crate) rolling_ms: i64,
    bytes_since_index_entry: u64,
    /// The bytes whose batches were checked whole since the segment was opened (appended after
    /// validation, recovered, or read once): reads check only what lies outside, slices cover
    /// only what lies inside.
    verified: Verified,
    /// Where the last read ended: (next offset, its position). A consumer reading on from
    /// there skips the index look-up. Cleared whenever the file's contents change.
    read_hint: Mutex<Option<ReadHint>>,
    log: FileId,
    offsets: Index<OffsetEntry>,
    times: Index<TimeEntry>,
    /// The transactions whose ABORT marker is in this segment.
    aborted: TxnIndex,
}

/// The position of the batch that follows the last one read.
#[derive(Debug, Clone, Copy)]
struct ReadHint {
    next_offset: i64,
    position: u64,
}

/// What a full scan of a segment found.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// Where valid data ended and why, if the file held more than valid batches.
    pub(crate) truncated: Option<(u64, String)>,
}

impl Segment {
    pub(crate) fn create(
        dir: &Path,
        pool: &FilePool,
        base_offset: i64,
        now_ms: i64,
    ) -> Result<Self> {
        let path = file_path(dir, base_offset, LOG_SUFFIX);
        File::create(&path).map_err(io(&path))?;
        let offsets = Index::create(pool, &file_path(dir, base_offset, INDEX_SUFFIX))?;
        let times = Index::create(pool, &file_path(dir, base_offset, TIME_INDEX_SUFFIX))?;
        Ok(Self::with_files(
            pool,
            base_offset,
            0,
            now_ms,
            offsets,
            times,
            TxnIndex::default(),
        ))
    }

    /// A segment of `size_bytes` over the given indexes, its tail state not yet scanned.
    fn with_files(
        pool: &FilePool,
        base_offset: i64,
        size_bytes: u64,
        now_ms: i64,
        offsets: Index<OffsetEntry>,
        times: Index<TimeEntry>,
        aborted: TxnIndex,
    ) -> Self {
        Self {
            base_offset,
            next_offset: base_offset,
            size_bytes,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            rolling_ms: now_ms,
            bytes_since_index_entry: 0,
            verified: Verified::default(),
            read_hint: Mutex::new(None),
            log: pool.register(),
            offsets,
            times,
            aborted,
        }
    }

    /// Opens a segment whose contents are trusted (clean shutdown, or below the recovery
    /// point). Indexes that are missing or fail their checks are rebuilt; a tail that does
    /// not parse makes it fall back to a full [`Self::recover`].
    pub(crate) fn open(
        dir: &Path,
        pool: &FilePool,
        base_offset: i64,
        index_interval_bytes: u64,
        now_ms: i64,
    ) -> Result<(Self, Option<Recovered>)> {
        let (mut segment, indexes_whole) = Self::open_files(dir, pool, base_offset, now_ms)?;
        if !indexes_whole || !segment.indexes_usable(dir, pool)? {
            tracing::warn!(dir = %dir.display(), base_offset, "rebuilding damaged or missing index");
            return Self::reopen_and_recover(dir, pool, base_offset, index_interval_bytes, now_ms);
        }
        match segment.scan_tail(dir, pool)? {
            None => Ok((segment, None)),
            Some((position, reason)) => {
                tracing::warn!(dir = %dir.display(), base_offset, position, %reason, "unexpected data in a trusted segment, recovering it");
                Self::reopen_and_recover(dir, pool, base_offset, index_interval_bytes, now_ms)
            }
        }
    }

    /// Rebuilds the segment's state from its last index entry to the end of the file (header
    /// reads, no CRC). Returns where and why the tail does not parse, if it does not.
    fn scan_tail(&mut self, dir: &Path, pool: &FilePool) -> Result<Option<(u64, String)>> {
        let start = self
            .offsets
            .last()
            .map_or(0, |entry| u64::from(entry.position));
        if let Some(entry) = self.times.last() {
            self.max_timestamp = entry.timestamp;
            self.offset_of_max_timestamp = self.base_offset + i64::from(entry.relative_offset);
        }
        let path = file_path(dir, self.base_offset, LOG_SUFFIX);
        let file = pool.get(self.log, &path)?;
        let file_len = self.size_bytes;
        // `observe` re-adds each scanned batch from the last indexed position on.
        self.size_bytes = start;
        let mut scanner = Scanner::new(&file, &path, start..file_len, false, SCAN_CHUNK_BYTES);
        loop {
            match scanner.next()? {
                Step::Batch(batch) => self.observe(&batch.header, batch.size_bytes),
                Step::End => return Ok(None),
                Step::Invalid { position, reason } => return Ok(Some((position, reason))),
            }
        }
    }

    /// Opens the segment afresh (empty indexes where they are damaged) and runs a full
    /// [`Self::recover`].
    fn reopen_and_recover(
        dir: &Path,
        pool: &FilePool,
        base_offset: i64,
        index_interval_bytes: u64,
        now_ms: i64,
    ) -> Result<(Self, Option<Recovered>)> {
        let (mut segment, _) = Self::open_files(dir, pool, base_offset, now_ms)?;
        let recovered = segment.recover(dir, pool, index_interval_bytes, &mut |_, _| {})?;
        Ok((segment, Some(recovered)))
    }

    /// Opens a segment for recovery: its state is whatever [`Self::recover`] finds.
    pub(crate) fn open_for_recovery(
        dir: &Path,
        pool: &FilePool,
        base_offset: i64,
        now_ms: i64,
    ) -> Result<Self> {
        Self::open_files(dir, pool, base_offset, now_ms).map(|(segment, _)| segment)
    }

    /// Opens the files; the flag says whether both indexes opened whole (an index found
    /// missing or damaged is replaced by an empty one, to be rebuilt).
    fn open_files(
        dir: &Path,
        pool: &FilePool,
        base_offset: i64,
        now_ms: i64,
    ) -> Result<(Self, bool)> {
        let path = file_path(dir, base_offset, LOG_SUFFIX);
        let size_bytes = std::fs::metadata(&path).map_err(io(&path))?.len();
        let index_path = file_path(dir, base_offset, INDEX_SUFFIX);
        let time_path = file_path(dir, base_offset, TIME_INDEX_SUFFIX);
        let (offsets, offsets_whole) = open_index(pool, &index_path)?;
        let (times, times_whole) = open_index(pool, &time_path)?;
        let aborted = TxnIndex::load(&file_path(dir, base_offset, TXN_INDEX_SUFFIX))?;
        let segment = Self::with_files(
            pool,
            base_offset,
            size_bytes,
            now_ms,
            offsets,
            times,
            aborted,
        );
        Ok((segment, offsets_whole && times_whole))
    }

    /// Cheap checks that the indexes describe this log file: the last entries point inside
    /// it, and the last offset entry at a batch with the offset it claims.
    fn indexes_usable(&self, dir: &Path, pool: &FilePool) -> Result<bool> {
        let Some(entry) = self.offsets.last() else {
            return Ok(true);
        };
        let found = self
            .header_at(dir, pool, u64::from(entry.position))?
            .map(|h| h.last_offset());
        Ok(found == Some(self.base_offset + i64::from(entry.relative_offset)))
    }

    /// Scans the whole file, checking every batch (length, magic, CRC, offsets moving
    /// forward), rebuilds both indexes, and truncates the file where valid data ends.
    /// `on_batch(leader_epoch, base_offset)` sees every valid batch, for the epoch cache.
    pub(crate) fn recover(
        &mut self,
        dir: &Path,
        pool: &FilePool,
        index_interval_bytes: u64,
        on_batch: &mut dyn FnMut(i32, i64),
    ) -> Result<Recovered> {
        let path = file_path(dir, self.base_offset, LOG_SUFFIX);
        let file = pool.get(self.log, &path)?;
        let file_len = file.metadata().map_err(io(&path))?.len();
        let mut offsets = Vec::new();
        let mut times = Vec::new();
        self.reset_state();
        let mut scanner = Scanner::new(&file, &path, 0..file_len, true, RECOVERY_CHUNK_BYTES);
        let truncated = loop {
            match scanner.next()? {
                Step::Batch(batch) if batch.header.base_offset < self.next_offset => {
                    break Some((
                        batch.position,
                        format!(
                            "batch base offset {} is below the expected {}",
                            batch.header.base_offset, self.next_offset
                        ),
                    ));
                }
                Step::Batch(batch) => {
                    on_batch(
                        batch.header.partition_leader_epoch,
                        batch.header.base_offset,
                    );
                    if let Some((entry, time)) = self.index_point(&batch, index_interval_bytes)? {
                        offsets.push(entry);
                        times.extend(time);
                    }
                    self.observe(&batch.header, batch.size_bytes);
                }
                Step::End => break None,
                Step::Invalid { position, reason } => break Some((position, reason)),
            }
        };
        if let Some((position, reason)) = &truncated {
            tracing::warn!(path = %path.display(), position, %reason, dropped_bytes = file_len - position, "truncating log at the end of valid data");
            file.set_len(*position).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
        }
        self.size_bytes = truncated
            .as_ref()
            .map_or(file_len, |(position, _)| *position);
        self.verified.clear_mut();
        self.verified.add_mut(0..self.size_bytes);
        drop(file);
        self.offsets.rewrite(
            pool,
            &file_path(dir, self.base_offset, INDEX_SUFFIX),
            &offsets,
        )?;
        self.times.rewrite(
            pool,
            &file_path(dir, self.base_offset, TIME_INDEX_SUFFIX),
            &times,
        )?;
        // Markers cut off with the data are no longer aborts of this log.
        self.aborted.truncate_from(
            &file_path(dir, self.base_offset, TXN_INDEX_SUFFIX),
            self.next_offset,
        )?;
        Ok(Recovered { truncated })
    }

    fn reset_state(&mut self) {
        self.next_offset = self.base_offset;
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = self.base_offset;
        self.bytes_since_index_entry = 0;
        self.size_bytes = 0;
        self.verified.clear_mut();
        *self.read_hint.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Accounts for a batch found at the end of the segment (scanning or appending).
    fn observe(&mut self, header: &BatchHeader, size_bytes: u64) {
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.last_offset();
        }
        self.next_offset = header.next_offset();
        self.size_bytes += size_bytes;
        self.bytes_since_index_entry += size_bytes;
    }

    /// The index entries due before a batch at `batch.position`, if one is due.
    fn index_point(
        &mut self,
        batch: &Scanned,
        index_interval_bytes: u64,
    ) -> Result<Option<(OffsetEntry, Option<TimeEntry>)>> {
        if self.bytes_since_index_entry < index_interval_bytes {
            return Ok(None);
        }
        self.bytes_since_index_entry = 0;
        let last_offset = batch.header.last_offset();
        let (max_timestamp, offset_of_max) = if batch.header.max_timestamp > self.max_timestamp {
            (batch.header.max_timestamp, last_offset)
        } else {
            (self.max_timestamp, self.offset_of_max_timestamp)
        };
        let entry = OffsetEntry {
            relative_offset: self.relative(last_offset)?,
            position: position_u32(batch.position)?,
        };
        let time = (self
            .times
            .last()
            .is_none_or(|t| t.timestamp < max_timestamp))
        .then_some(TimeEntry {
            timestamp: max_timestamp,
            relative_offset: self.relative(offset_of_max)?,
        });
        Ok(Some((entry, time)))
    }

    fn relative(&self, offset: i64) -> Result<u32> {
        u32::try_from(offset - self.base_offset).map_err(|_| Error::OffsetOverflow {
            offset,
            reason: "more than 2^32 offsets past the segment base",
        })
    }

    /// Writes already-assigned, already-validated batches at the end of the segment and
    /// indexes them. Each batch comes as its (assigned) header and its records, written
    /// back to back in one vectored write.
    pub(crate) fn append(
        &mut self,
        dir: &Path,
        pool: &FilePool,
        batches: &[(&[u8], &[u8])],
        index_interval_bytes: u64,
    ) -> Result<()> {
        let path = file_path(dir, self.base_offset, LOG_SUFFIX);
        let file = pool.get(self.log, &path)?;
        let parts: Vec<&[u8]> = batches
            .iter()
            .flat_map(|(header, records)| [*header, *records])
            .collect();
        write_all_vectored_at(&file, &parts, self.size_bytes).map_err(io(&path))?;
        let written: u64 = parts.iter().map(|p| p.len() as u64).sum();
        // The log validated these batches (CRC included) before assigning offsets.
        self.verified
            .add_mut(self.size_bytes..self.size_bytes + written);
        let index_path = file_path(dir, self.base_offset, INDEX_SUFFIX);
        let time_path = file_path(dir, self.base_offset, TIME_INDEX_SUFFIX);
        for (header, records) in batches {
            let header = BatchHeader::parse(header).map_err(crate::error::invalid_batch)?;
            let size_bytes = (fjord_record::HEADER_BYTES + records.len()) as u64;
            let scanned = Scanned {
                position: self.size_bytes,
                header,
                size_bytes,
            };
            if let Some((entry, time)) = self.index_point(&scanned, index_interval_bytes)? {
                self.offsets.append(pool, &index_path, entry)?;
                if let Some(time) = time {
                    self.times.append(pool, &time_path, time)?;
                }
            }
            self.observe(&header, size_bytes);
        }
        Ok(())
    }

    /// [`Segment::append`] for whole batches back to back in one buffer (compaction's
    /// output).
    pub(crate) fn append_bytes(
        &mut self,
        dir: &Path,
        pool: &FilePool,
        bytes: &[u8],
        index_interval_bytes: u64,
    ) -> Result<()> {
        let mut parts = Vec::new();
        for batch in fjord_record::batches(bytes) {
            let batch = batch.map_err(crate::error::invalid_batch)?;
            parts.push(batch.bytes.split_at(fjord_record::HEADER_BYTES));
        }
        self.append(dir, pool, &parts, index_interval_bytes)
    }

    /// `fdatasync` of the log file.
    pub(crate) fn flush(&self, dir: &Path, pool: &FilePool) -> Result<()> {
        let path = file_path(dir, self.base_offset, LOG_SUFFIX);
        pool.get(self.log, &path)?.sync_data().map_err(io(&path))
    }

    /// Makes the segment read-only: a last time index entry for its max timestamp, both
    /// indexes written out, everything synced.
    pub(crate) fn seal(&mut self, dir: &Path, pool: &FilePool) -> Result<()> {
        let time_path = file_path(dir, self.base_offset, TIME_INDEX_SUFFIX);
        if self.max_timestamp >= 0
            && self
                .times
                .last()
                .is_none_or(|t| t.timestamp < self.max_timestamp)
        {
            let entry = TimeEntry {
                timestamp: self.max_timestamp,
                relative_offset: self.relative(self.offset_of_max_timestamp)?,
            };
            self.times.append(pool, &time_path, entry)?;
        }
        self.sync_indexes(dir, pool)?;
        self.flush(dir, pool)
    }

    /// Writes buffered index entries and syncs the index files.
    pub(crate) fn sync_indexes(&mut self, dir: &Path, pool: &FilePool) -> Result<()> {
        self.offsets
            .sync(pool, &file_path(dir, self.base_offset, INDEX_SUFFIX))?;
        self.times
            .sync(pool, &file_path(dir, self.base_offset, TIME_INDEX_SUFFIX))?;
        self.sync_aborted(dir)
    }

    /// Syncs the aborted-transactions index, which a flush of the log must include: a
    /// marker durable without its entry would show aborted records as committed.
    pub(crate) fn sync_aborted(&mut self, dir: &Path) -> Result<()> {
        self.aborted
            .sync(&file_path(dir, self.base_offset, TXN_INDEX_SUFFIX))
    }

    /// The transactions whose ABORT marker is in this segment, by marker offset.
    pub(crate) fn aborted(&self) -> &[AbortedEntry] {
        self.aborted.entries()
    }

    /// Records a transaction aborted by a marker in this segment.
    pub(crate) fn push_aborted(&mut self, dir: &Path, entry: AbortedEntry) -> Result<()> {
        self.aborted
            .push(&file_path(dir, self.base_offset, TXN_INDEX_SUFFIX), entry)
    }

    /// Removes every batch whose last offset is `offset` or more. Returns the base offset of
    /// the first batch removed, if any was.
    pub(crate) fn truncate_to(
        &mut self,
        dir: &Path,
        pool: &FilePool,
        offset: i64,
        index_interval_bytes: u64,
    ) -> Result<Option<i64>> {
        let Some(first_removed) = self.find(dir, pool, offset)? else {
            return Ok(None);
        };
        let path = file_path(dir, self.base_offset, LOG_SUFFIX);
        pool.get(self.log, &path)?
            .set_len(first_removed.position)
            .map_err(io(&path))?;
        // Recompute the indexes and the tail state (max timestamp) from what is left.
        self.recover(dir, pool, index_interval_bytes, &mut |_, _| {})?;
        Ok(Some(first_removed.header.base_offset))
    }

    /// Closes and deletes the segment's files.
    pub(crate) fn delete(self, dir: &Path, pool: &FilePool) -> Result<()> {
        self.forget_files(pool);
        Self::delete_files(dir, self.base_offset)
    }

    /// Deletes the files of the segment at `base_offset`, those that exist.
    pub(crate) fn delete_files(dir: &Path, base_offset: i64) -> Result<()> {
        for suffix in [
            LOG_SUFFIX,
            INDEX_SUFFIX,
            TIME_INDEX_SUFFIX,
            TXN_INDEX_SUFFIX,
        ] {
            let path = file_path(dir, base_offset, suffix);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
        }
        Ok(())
    }

    /// Forgets the open handles, before the files are replaced underneath.
    pub(crate) fn forget_files(&self, pool: &FilePool) {
        pool.forget(self.log);
        pool.forget(self.offsets.file());
        pool.forget(self.times.file());
    }
}

/// Opens an index, replacing a missing or damaged one with an empty file; the flag says
/// whether it opened whole.
fn open_index<E: crate::index::Entry>(pool: &FilePool, path: &Path) -> Result<(Index<E>, bool)> {
    Ok(match Index::open(pool, path)? {
        Opened::Usable(index) => (index, true),
        Opened::Missing => (Index::create(pool, path)?, false),
        Opened::Damaged(reason) => {
            tracing::warn!(path = %path.display(), reason, "index damaged, rebuilding it");
            (Index::create(pool, path)?, false)
        }
    })
}

fn position_u32(position: u64) -> Result<u32> {
    u32::try_from(position).map_err(|_| Error::OffsetOverflow {
        offset: position as i64,
        reason: "segment position past 4 GiB",
    })
}

pub(crate) fn corrupt(path: &Path, position: u64, reason: String) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        position,
        reason,
    }
}

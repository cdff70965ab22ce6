//! Sparse, fixed-width index files: the offset index and the time index of a segment.
//!
//! Entries are appended in key order and looked up with "the last entry whose key is at most
//! the target" ([`Index::floor`]). Indexes are hints, never the source of truth: callers
//! check what an entry points at against the batch header in the log file, and every index
//! can be rebuilt from the log. So an index file may be shorter than the log it describes
//! (entries still buffered at a crash) without harm.
//!
//! Appends are buffered in memory and written in one `pwrite` per [`PENDING_ENTRIES_MAX`]
//! entries, on flush and on close, so indexing costs no system call per batch.

use std::fs::File;
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::limits::INDEX_WINDOW_ENTRIES;
use crate::pool::{FileId, FilePool};
use crate::{Result, error::io};

const PENDING_ENTRIES_MAX: usize = 128;

/// A fixed-width index entry.
pub(crate) trait Entry: Copy + std::fmt::Debug {
    const BYTES: usize;
    /// The value entries are ordered and looked up by.
    fn key(&self) -> i64;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(bytes: &[u8]) -> Self;
}

/// Offset index entry: the batch whose last offset is `base_offset + relative_offset` starts
/// at byte `position` of the segment's log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub(crate) relative_offset: u32,
    pub(crate) position: u32,
}

/// Time index entry: `timestamp` is the largest timestamp in the segment up to and including
/// the batch whose last offset is `base_offset + relative_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub(crate) timestamp: i64,
    pub(crate) relative_offset: u32,
}

impl Entry for OffsetEntry {
    const BYTES: usize = 8;
    fn key(&self) -> i64 {
        i64::from(self.relative_offset)
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
    fn decode(bytes: &[u8]) -> Self {
        Self {
            relative_offset: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            position: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        }
    }
}

impl Entry for TimeEntry {
    const BYTES: usize = 12;
    fn key(&self) -> i64 {
        self.timestamp
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn decode(bytes: &[u8]) -> Self {
        let mut timestamp = [0; 8];
        timestamp.copy_from_slice(&bytes[..8]);
        Self {
            timestamp: i64::from_be_bytes(timestamp),
            relative_offset: u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
        }
    }
}

/// What opening an existing index file found.
#[derive(Debug)]
pub(crate) enum Opened<E: Entry> {
    Usable(Index<E>),
    Missing,
    Damaged(&'static str),
}

#[derive(Debug)]
pub(crate) struct Index<E: Entry> {
    file: FileId,
    /// Entries written to the file.
    written: u64,
    pending: Vec<E>,
    last: Option<E>,
    _entry: PhantomData<E>,
}

impl<E: Entry> Index<E> {
    /// Creates (or empties) the index file at `path`.
    pub(crate) fn create(pool: &FilePool, path: &Path) -> Result<Self> {
        File::create(path).map_err(io(path))?;
        Ok(Self::empty(pool.register()))
    }

    fn empty(file: FileId) -> Self {
        Self {
            file,
            written: 0,
            pending: Vec::new(),
            last: None,
            _entry: PhantomData,
        }
    }

    /// Opens an index file, checking only what is cheap: that it is whole entries and that
    /// its last entry's key is not below the one before it.
    pub(crate) fn open(pool: &FilePool, path: &Path) -> Result<Opened<E>> {
        let len = match std::fs::metadata(path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Opened::Missing),
            Err(e) => return Err(io(path)(e)),
        };
        if len % E::BYTES as u64 != 0 {
            return Ok(Opened::Damaged("length is not a whole number of entries"));
        }
        let mut index = Self::empty(pool.register());
        index.written = len / E::BYTES as u64;
        if index.written > 0 {
            let tail = index.written.saturating_sub(2);
            let entries = index.read_range(pool, path, tail, index.written)?;
            if entries.windows(2).any(|w| w[1].key() < w[0].key()) {
                return Ok(Opened::Damaged("entries out of order"));
            }
            index.last = entries.last().copied();
        }
        Ok(Opened::Usable(index))
    }

    pub(crate) fn file(&self) -> FileId {
        self.file
    }

    pub(crate) fn last(&self) -> Option<E> {
        self.last
    }

    pub(crate) fn append(&mut self, pool: &FilePool, path: &Path, entry: E) -> Result<()> {
        self.pending.push(entry);
        self.last = Some(entry);
        if self.pending.len() >= PENDING_ENTRIES_MAX {
            self.write_pending(pool, path)?;
        }
        Ok(())
    }

    /// Writes buffered entries to the file (not synced).
    pub(crate) fn write_pending(&mut self, pool: &FilePool, path: &Path) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(self.pending.len() * E::BYTES);
        for entry in &self.pending {
            entry.encode(&mut bytes);
        }
        let file = pool.get(self.file, path)?;
        file.write_all_at(&bytes, self.written * E::BYTES as u64)
            .map_err(io(path))?;
        self.written += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Writes and syncs everything.
    pub(crate) fn sync(&mut self, pool: &FilePool, path: &Path) -> Result<()> {
        self.write_pending(pool, path)?;
        pool.get(self.file, path)?.sync_data().map_err(io(path))
    }

    /// The last entry whose key is at most `key`.
    pub(crate) fn floor(&self, pool: &FilePool, path: &Path, key: i64) -> Result<Option<E>> {
        self.floor_by(pool, path, |e| e.key() <= key)
    }

    /// The last entry for which `at_most` holds. Entries are ordered, so `at_most` must hold
    /// for a leading run of them and for none after (any bound on the key or the position).
    pub(crate) fn floor_by(
        &self,
        pool: &FilePool,
        path: &Path,
        at_most: impl Fn(&E) -> bool,
    ) -> Result<Option<E>> {
        if let Some(first) = self.pending.first()
            && at_most(first)
        {
            return Ok(self.pending.iter().rev().find(|e| at_most(e)).copied());
        }
        let (mut low, mut high) = (0, self.written);
        while high - low > INDEX_WINDOW_ENTRIES {
            let middle = low + (high - low) / 2;
            let entry = self.read_range(pool, path, middle, middle + 1)?;
            if entry.first().is_some_and(&at_most) {
                low = middle;
            } else {
                high = middle;
            }
        }
        let window = self.read_range(pool, path, low, high)?;
        Ok(window.iter().rev().find(|e| at_most(e)).copied())
    }

    /// Replaces the whole file with `entries`.
    pub(crate) fn rewrite(&mut self, pool: &FilePool, path: &Path, entries: &[E]) -> Result<()> {
        self.pending.clear();
        let file = pool.get(self.file, path)?;
        file.set_len(0).map_err(io(path))?;
        self.written = 0;
        self.last = None;
        self.pending.extend_from_slice(entries);
        self.last = entries.last().copied();
        self.write_pending(pool, path)
    }

    fn read_range(&self, pool: &FilePool, path: &Path, from: u64, to: u64) -> Result<Vec<E>> {
        if to <= from {
            return Ok(Vec::new());
        }
        let mut bytes = vec![0; ((to - from) as usize) * E::BYTES];
        let file = pool.get(self.file, path)?;
        file.read_exact_at(&mut bytes, from * E::BYTES as u64)
            .map_err(io(path))?;
        Ok(bytes.chunks_exact(E::BYTES).map(E::decode).collect())
    }
}

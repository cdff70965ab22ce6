//! A segment's aborted-transactions index (`.txnindex`, as Kafka names it): one entry per
//! transaction whose ABORT marker lies in the segment, so a `read_committed` fetch can tell
//! its client which producers' records in the returned range to drop.
//!
//! An entry is written when the marker is appended (or found again when recovery replays
//! the log), in marker order, so the entries of a log, segment after segment, are ordered by
//! `last_offset`. The file is created with its first entry and synced with the log it
//! indexes (a flush, a roll, a close); until then, like the data, it survives a process
//! crash but not a power loss. Entries are few (one per aborted transaction), so a
//! segment keeps its entries in memory and the file is only appended to and read at open.
//!
//! Each entry is 36 bytes, big-endian: producer id, first offset, last offset (the marker's),
//! last stable offset after the abort, CRC-32C of the 32 bytes before it. A torn or damaged
//! tail is dropped at open: it can only be the last unsynced entries, which recovery's replay
//! of the log past the producer snapshot writes again.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::checkpoint::sync_dir;
use crate::limits::TXN_INDEX_BYTES_MAX;
use crate::{Result, error::io};

pub(crate) const TXN_INDEX_SUFFIX: &str = "txnindex";
const ENTRY_BYTES: usize = 36;

/// One aborted transaction: `producer_id`'s records from `first_offset` up to its ABORT
/// marker at `last_offset` are to be skipped by `read_committed` readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AbortedEntry {
    pub(crate) producer_id: i64,
    pub(crate) first_offset: i64,
    pub(crate) last_offset: i64,
    /// The partition's last stable offset once this transaction was aborted: no
    /// transaction aborted later began before it, so a search for the transactions touching
    /// a range can stop at the first entry whose `last_stable_offset` is past the range.
    pub(crate) last_stable_offset: i64,
}

impl AbortedEntry {
    fn encode(&self) -> [u8; ENTRY_BYTES] {
        let mut bytes = [0u8; ENTRY_BYTES];
        let fields = [
            self.producer_id,
            self.first_offset,
            self.last_offset,
            self.last_stable_offset,
        ];
        for (chunk, field) in bytes.chunks_exact_mut(8).zip(fields) {
            chunk.copy_from_slice(&field.to_be_bytes());
        }
        let crc = crc32c::crc32c(&bytes[..32]);
        bytes[32..].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    /// The entry, or `None` if its CRC does not match.
    fn decode(bytes: &[u8]) -> Option<Self> {
        let field = |i: usize| -> Option<i64> {
            Some(i64::from_be_bytes(
                bytes.get(i * 8..i * 8 + 8)?.try_into().ok()?,
            ))
        };
        let crc = u32::from_be_bytes(bytes.get(32..36)?.try_into().ok()?);
        (crc32c::crc32c(bytes.get(..32)?) == crc).then_some(())?;
        Some(Self {
            producer_id: field(0)?,
            first_offset: field(1)?,
            last_offset: field(2)?,
            last_stable_offset: field(3)?,
        })
    }
}

/// The entries of one segment, in memory and in its `.txnindex` file.
#[derive(Debug, Default)]
pub(crate) struct TxnIndex {
    entries: Vec<AbortedEntry>,
    /// Entries were written since the file was last synced.
    unsynced: bool,
    /// The file was created since the directory was last synced.
    created: bool,
}

impl TxnIndex {
    /// Loads the file at `path`, if there is one. Entries after a damaged one, or out of
    /// order, are dropped from memory and from the file.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(io(path)(e)),
        };
        let len = file.metadata().map_err(io(path))?.len();
        if len > TXN_INDEX_BYTES_MAX {
            return Err(crate::segment::corrupt(
                path,
                0,
                format!(
                    "{len} bytes, more than an aborted-transactions index may hold ({TXN_INDEX_BYTES_MAX})"
                ),
            ));
        }
        let len = usize::try_from(len)
            .map_err(|_| crate::segment::corrupt(path, 0, "too large".into()))?;
        let mut bytes = vec![0u8; len];
        file.read_exact_at(&mut bytes, 0).map_err(io(path))?;
        let mut entries: Vec<AbortedEntry> = Vec::with_capacity(len / ENTRY_BYTES);
        for chunk in bytes.chunks_exact(ENTRY_BYTES) {
            match AbortedEntry::decode(chunk) {
                Some(entry)
                    if entries
                        .last()
                        .is_none_or(|l| l.last_offset < entry.last_offset) =>
                {
                    entries.push(entry);
                }
                _ => break,
            }
        }
        let mut index = Self {
            entries,
            ..Self::default()
        };
        if index.entries.len() * ENTRY_BYTES != bytes.len() {
            tracing::warn!(path = %path.display(), kept = index.entries.len(), "dropping the damaged tail of an aborted-transactions index");
            index.rewrite(path)?;
        }
        Ok(index)
    }

    pub(crate) fn entries(&self) -> &[AbortedEntry] {
        &self.entries
    }

    /// Appends an entry for a marker at the end of the segment. An entry for the same
    /// marker already there (recovery replaying what the file kept) is not added twice.
    pub(crate) fn push(&mut self, path: &Path, entry: AbortedEntry) -> Result<()> {
        if let Some(last) = self.entries.last()
            && last.last_offset >= entry.last_offset
        {
            return Ok(());
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io(path))?;
        file.write_all(&entry.encode()).map_err(io(path))?;
        self.created |= self.entries.is_empty();
        self.entries.push(entry);
        self.unsynced = true;
        Ok(())
    }

    /// Syncs what was written since the last sync (and the directory entry of a new file).
    pub(crate) fn sync(&mut self, path: &Path) -> Result<()> {
        if self.unsynced {
            File::open(path)
                .and_then(|f| f.sync_data())
                .map_err(io(path))?;
            self.unsynced = false;
        }
        if std::mem::take(&mut self.created)
            && let Some(dir) = path.parent()
        {
            sync_dir(dir)?;
        }
        Ok(())
    }

    /// Drops the entries whose marker is at or past `offset` (the segment was cut there).
    pub(crate) fn truncate_from(&mut self, path: &Path, offset: i64) -> Result<()> {
        let kept = self.entries.partition_point(|e| e.last_offset < offset);
        if kept < self.entries.len() {
            self.entries.truncate(kept);
            self.rewrite(path)?;
        }
        Ok(())
    }

    /// Makes the file hold exactly the entries in memory.
    fn rewrite(&mut self, path: &Path) -> Result<()> {
        if self.entries.is_empty() {
            return match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io(path)(e)),
            };
        }
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io(path))?;
        file.set_len((self.entries.len() * ENTRY_BYTES) as u64)
            .map_err(io(path))?;
        file.sync_data().map_err(io(path))?;
        self.unsynced = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(last_offset: i64) -> AbortedEntry {
        AbortedEntry {
            producer_id: 7,
            first_offset: last_offset - 3,
            last_offset,
            last_stable_offset: last_offset + 1,
        }
    }

    #[test]
    fn entries_survive_a_reopen_and_a_torn_tail_is_dropped() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("00000000000000000000.txnindex");
        let mut index = TxnIndex::load(&path)?;
        assert!(index.entries().is_empty());
        index.push(&path, entry(10))?;
        index.push(&path, entry(20))?;
        index.push(&path, entry(20))?;
        index.sync(&path)?;
        assert_eq!(TxnIndex::load(&path)?.entries(), &[entry(10), entry(20)]);

        // Half an entry, as a crash mid-write leaves it.
        let mut file = OpenOptions::new().append(true).open(&path)?;
        file.write_all(&entry(30).encode()[..20])?;
        assert_eq!(TxnIndex::load(&path)?.entries(), &[entry(10), entry(20)]);
        assert_eq!(std::fs::metadata(&path)?.len(), 2 * ENTRY_BYTES as u64);
        Ok(())
    }

    #[test]
    fn a_damaged_entry_drops_it_and_everything_after() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("x.txnindex");
        let mut index = TxnIndex::load(&path)?;
        for last in [5, 15, 25] {
            index.push(&path, entry(last))?;
        }
        let mut bytes = std::fs::read(&path)?;
        bytes[ENTRY_BYTES + 3] ^= 0xff;
        std::fs::write(&path, &bytes)?;
        assert_eq!(TxnIndex::load(&path)?.entries(), &[entry(5)]);
        Ok(())
    }

    #[test]
    fn truncation_removes_later_markers_and_an_emptied_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("x.txnindex");
        let mut index = TxnIndex::load(&path)?;
        for last in [5, 15, 25] {
            index.push(&path, entry(last))?;
        }
        index.truncate_from(&path, 15)?;
        assert_eq!(TxnIndex::load(&path)?.entries(), &[entry(5)]);
        index.truncate_from(&path, 0)?;
        assert!(!path.exists());
        Ok(())
    }
}

//! [`FileRange`]: stored batches handed out as a range of a file, so a front end can send
//! them with `sendfile` without reading them.

use std::fs::File;
use std::ops::Range;
use std::sync::Arc;

use crate::Offset;

/// Whole stored batches as a byte range of an open file, checked (CRC included) before the
/// range was made. It holds the file open, so the range stays readable while it is held,
/// whatever retention or compaction does meanwhile (both replace or unlink files, never
/// rewrite them). Truncation cuts a file in place: a range over the cut part then comes up
/// short, so a replicated log must not truncate below ranges still being sent.
#[derive(Debug, Clone)]
pub struct FileRange {
    file: Arc<File>,
    position: u64,
    len: usize,
    offsets: Range<Offset>,
}

impl FileRange {
    /// The `len` bytes at `position` of `file`, holding the batches of `offsets` (from the
    /// first batch's base offset to the offset after the last).
    pub fn new(file: Arc<File>, position: u64, len: usize, offsets: Range<Offset>) -> Self {
        Self {
            file,
            position,
            len,
            offsets,
        }
    }

    /// The open file, shared: for work on another thread (a blocking pool's `sendfile`).
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// Where the range starts in the file.
    pub fn position(&self) -> u64 {
        self.position
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The offsets the batches span (gaps left by compaction included).
    pub fn offsets(&self) -> Range<Offset> {
        self.offsets.clone()
    }

    /// The bytes of the range, read from the file. Blocking.
    pub fn read_to_vec(&self) -> std::io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut bytes = vec![0; self.len];
        self.file.read_exact_at(&mut bytes, self.position)?;
        Ok(bytes)
    }
}

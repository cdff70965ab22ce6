//! A cap on open files shared by every log of a store.
//!
//! A broker holds thousands of partitions, each with a few segments of three files. Keeping all
//! of them open would exhaust file descriptors, so segments name their files by [`FileId`] and
//! borrow an open handle from the pool for the length of one operation. The pool keeps at most
//! `capacity` handles and closes the least recently used one to open another. Closing a file
//! loses nothing: data written with `pwrite` lives in the page cache, and `fsync` on any
//! descriptor of a file syncs all of it.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::{Result, error::io};

/// Names one file for the pool. Never reused, so a stale id can only miss, never alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct FileId(u64);

#[derive(Debug)]
pub struct FilePool {
    capacity: usize,
    next_id: AtomicU64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    tick: u64,
    open: HashMap<FileId, (Arc<File>, u64)>,
    by_last_use: BTreeMap<u64, FileId>,
}

impl FilePool {
    /// A pool holding at most `capacity` (at least 1) files open.
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            capacity: capacity.max(1),
            next_id: AtomicU64::new(0),
            state: Mutex::new(State::default()),
        })
    }

    /// Files open right now.
    pub fn open_files(&self) -> usize {
        self.lock().open.len()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn register(&self) -> FileId {
        FileId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// The open handle for `id`, opening `path` (read and write, no create) if needed.
    pub(crate) fn get(&self, id: FileId, path: &Path) -> Result<Arc<File>> {
        let mut state = self.lock();
        state.tick += 1;
        let tick = state.tick;
        if let Some((file, last_use)) = state.open.get_mut(&id) {
            let file = Arc::clone(file);
            let previous = std::mem::replace(last_use, tick);
            state.by_last_use.remove(&previous);
            state.by_last_use.insert(tick, id);
            return Ok(file);
        }
        while state.open.len() >= self.capacity {
            let Some((_, victim)) = state.by_last_use.pop_first() else {
                break;
            };
            state.open.remove(&victim);
        }
        let file = Arc::new(
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(io(path))?,
        );
        state.open.insert(id, (Arc::clone(&file), tick));
        state.by_last_use.insert(tick, id);
        Ok(file)
    }

    /// Closes `id`'s handle, if open: before its file is deleted or replaced.
    pub(crate) fn forget(&self, id: FileId) {
        let mut state = self.lock();
        if let Some((_, last_use)) = state.open.remove(&id) {
            state.by_last_use.remove(&last_use);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent across a panic in another thread: every mutation above
        // completes before anything that could panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_holds_more_than_capacity() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let pool = FilePool::new(3);
        let ids: Vec<_> = (0..10)
            .map(|i| {
                let path = dir.path().join(format!("{i}"));
                std::fs::write(&path, [i as u8])?;
                Ok((pool.register(), path))
            })
            .collect::<anyhow::Result<_>>()?;
        for round in 0..3 {
            for (i, (id, path)) in ids.iter().enumerate() {
                let file = pool.get(*id, path)?;
                let mut byte = [0];
                std::os::unix::fs::FileExt::read_exact_at(&*file, &mut byte, 0)?;
                assert_eq!(byte[0], i as u8, "round {round}");
                assert!(pool.open_files() <= 3);
            }
        }
        pool.forget(ids[9].0);
        assert_eq!(pool.open_files(), 2);
        Ok(())
    }
}

//! Producer ids for idempotent producers, unique for the life of the data directory.
//!
//! Ids are handed out from blocks: before the first id of a block is used, the block's end is
//! written (atomically, synced) to `producer_ids`, so after any crash the next start begins
//! past every id that may have been handed out. Kafka reserves blocks the same way.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::io;
use crate::{Error, Result};

const FILE_NAME: &str = "producer_ids";
const BLOCK_SIZE: i64 = 1000;

#[derive(Debug)]
pub(crate) struct ProducerIds {
    path: PathBuf,
    /// (next id to hand out, end of the reserved block)
    next: Mutex<(i64, i64)>,
}

impl ProducerIds {
    pub(crate) fn open(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(FILE_NAME);
        let reserved_end = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|end| *end >= 0)
                .ok_or_else(|| Error::CorruptTopicFile {
                    path: path.clone(),
                    reason: format!("expected a producer id, found {:?}", text.trim()),
                })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io(&path)(e)),
        };
        Ok(Self {
            path,
            next: Mutex::new((reserved_end, reserved_end)),
        })
    }

    /// A producer id never handed out before.
    pub(crate) fn allocate(&self) -> Result<i64> {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let (id, end) = *next;
        if id == end {
            self.reserve(end + BLOCK_SIZE)?;
            next.1 = end + BLOCK_SIZE;
        }
        next.0 = id + 1;
        Ok(id)
    }

    fn reserve(&self, end: i64) -> Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        writeln!(file, "{end}").map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(io(&self.path))?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_restarts() -> Result<()> {
        let dir = tempfile::tempdir().map_err(Error::Network)?;
        let ids = ProducerIds::open(dir.path())?;
        assert_eq!((ids.allocate()?, ids.allocate()?), (0, 1));
        drop(ids);
        let ids = ProducerIds::open(dir.path())?;
        assert_eq!(ids.allocate()?, BLOCK_SIZE);
        Ok(())
    }
}

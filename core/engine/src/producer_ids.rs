//! Producer ids for idempotent producers, unique for the life of the data directory.
//!
//! Ids are handed out from blocks: before the first id of a block is used, the block's end is
//! written to `producer_ids` (a [`crate::durable`] file), so after any crash the next start
//! begins past every id that may have been handed out. Kafka reserves blocks the same way.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::limits::PRODUCER_ID_BLOCK;
use crate::{Error, Result, durable};

const FILE_NAME: &str = "producer_ids";

#[derive(Debug)]
pub(crate) struct ProducerIds {
    path: PathBuf,
    /// (next id to hand out, end of the reserved block)
    next: Mutex<(i64, i64)>,
}

impl ProducerIds {
    pub(crate) fn open(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(FILE_NAME);
        let reserved_end = match read_body(&path)? {
            Some(body) => body
                .trim()
                .strip_prefix("next=")
                .and_then(|n| n.parse::<i64>().ok())
                .filter(|end| *end >= 0)
                .ok_or_else(|| Error::CorruptFile {
                    path: path.clone(),
                    reason: format!("expected next=<producer id>, found {:?}", body.trim()),
                })?,
            None => 0,
        };
        Ok(Self {
            path,
            next: Mutex::new((reserved_end, reserved_end)),
        })
    }

    /// A producer id never handed out before. May write the next block's reservation.
    pub(crate) fn allocate(&self) -> Result<i64> {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let (id, end) = *next;
        if id == end {
            let new_end = end + PRODUCER_ID_BLOCK;
            durable::write(&self.path, &format!("next={new_end}\n"))?;
            next.1 = new_end;
        }
        next.0 = id + 1;
        Ok(id)
    }
}

/// The file's body. Brokers before the CRC format wrote the bare number (`1000`); such a
/// file is read as `next=1000` and rewritten in the new format at the next reservation.
fn read_body(path: &Path) -> Result<Option<String>> {
    match durable::read(path) {
        Err(Error::CorruptFile { .. }) => {
            let text = std::fs::read_to_string(path).map_err(crate::error::io(path))?;
            let legacy = text.strip_suffix('\n').unwrap_or(&text);
            if !legacy.is_empty() && legacy.bytes().all(|b| b.is_ascii_digit()) {
                return Ok(Some(format!("next={legacy}")));
            }
            durable::read(path)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_restarts() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let ids = ProducerIds::open(dir.path())?;
        assert_eq!((ids.allocate()?, ids.allocate()?), (0, 1));
        drop(ids);
        let ids = ProducerIds::open(dir.path())?;
        assert_eq!(ids.allocate()?, PRODUCER_ID_BLOCK);
        Ok(())
    }

    #[test]
    fn the_format_before_crcs_is_read() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join(FILE_NAME), "3000\n")?;
        assert_eq!(ProducerIds::open(dir.path())?.allocate()?, 3000);
        assert_eq!(
            ProducerIds::open(dir.path())?.allocate()?,
            3000 + PRODUCER_ID_BLOCK
        );
        Ok(())
    }

    #[test]
    fn a_damaged_file_is_refused() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        ProducerIds::open(dir.path())?.allocate()?;
        std::fs::write(dir.path().join(FILE_NAME), "next=1000\ncrc32c 00000000\n")?;
        assert!(matches!(
            ProducerIds::open(dir.path()),
            Err(Error::CorruptFile { .. })
        ));
        Ok(())
    }
}

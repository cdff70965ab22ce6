//! The engine's small durable files (topic files, the producer id block), written one way:
//! a text body, then a `crc32c XXXXXXXX` line over it; written to `NAME.tmp`, synced,
//! renamed over `NAME`, and the directory synced. A reader gets the body only if its CRC
//! matches, so a torn or damaged file is reported, never half-read.
//!
//! The log crate's checkpoints (`fjord.checkpoint`, `leader-epoch-checkpoint`,
//! `producer.snapshot`) follow the same steps in `fjord-log`, which the engine does not
//! reach into.

use std::io::Write;
use std::path::Path;

use crate::error::io;
use crate::{Error, Result};

const CRC_PREFIX: &str = "crc32c ";

/// Largest small file read back; anything larger is damage, not a file we wrote.
const FILE_BYTES_MAX: u64 = 1024 * 1024;

/// Replaces `path` with `body` plus its CRC line, atomically and durably.
pub(crate) fn write(path: &Path, body: &str) -> Result<()> {
    let mut text = String::with_capacity(body.len() + 16);
    text.push_str(body);
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let crc = crc32c::crc32c(text.as_bytes());
    text.push_str(&format!("{CRC_PREFIX}{crc:08x}\n"));
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = std::path::PathBuf::from(temporary);
    let mut file = std::fs::File::create(&temporary).map_err(io(&temporary))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io(&temporary))?;
    std::fs::rename(&temporary, path).map_err(io(path))?;
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// The body of a file written by [`write`]; `None` if there is no such file.
pub(crate) fn read(path: &Path) -> Result<Option<String>> {
    let corrupt = |reason: &str| Error::CorruptFile {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() > FILE_BYTES_MAX => return Err(corrupt("larger than 1 MiB")),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    }
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let without_newline = text
        .strip_suffix('\n')
        .ok_or_else(|| corrupt("cut short"))?;
    let (body, crc_line) = match without_newline.rsplit_once('\n') {
        Some((body, crc_line)) => (&text[..body.len() + 1], crc_line),
        None => ("", without_newline),
    };
    let stored = crc_line
        .strip_prefix(CRC_PREFIX)
        .and_then(|c| u32::from_str_radix(c, 16).ok())
        .ok_or_else(|| corrupt("no CRC line"))?;
    if stored != crc32c::crc32c(body.as_bytes()) {
        return Err(corrupt("CRC mismatch"));
    }
    Ok(Some(body.to_string()))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("file");
        assert_eq!(read(&path)?, None);
        write(&path, "a=1\nb=2\n")?;
        assert_eq!(read(&path)?.as_deref(), Some("a=1\nb=2\n"));
        write(&path, "")?;
        assert_eq!(read(&path)?.as_deref(), Some(""));
        write(&path, "a=1\n")?;
        let mut bytes = std::fs::read(&path)?;
        bytes[0] = b'x';
        std::fs::write(&path, &bytes)?;
        assert!(matches!(read(&path), Err(Error::CorruptFile { .. })));
        std::fs::write(&path, "a=1\ncrc32c 0000")?;
        assert!(matches!(read(&path), Err(Error::CorruptFile { .. })));
        Ok(())
    }
}

//! Small files replaced atomically: the per-log checkpoint and the leader epoch cache.
//!
//! Each is written to `NAME.tmp`, synced, renamed over `NAME`, and the directory synced, so a
//! crash leaves either the old or the new file, never a mix. Each carries a CRC-32C line, so a
//! damaged file is detected and treated as absent (recovery then starts from the beginning).

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::{Result, error::io};

pub(crate) const CHECKPOINT_FILE: &str = "fjord.checkpoint";
const CHECKPOINT_HEADER: &str = "fjord-log-checkpoint v1";

/// The durable state of a log besides its segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub(crate) log_start_offset: i64,
    /// Everything below this offset is synced to disk and needs no recovery.
    pub(crate) recovery_point: i64,
    pub(crate) high_watermark: i64,
}

impl Checkpoint {
    pub(crate) fn write(&self, dir: &Path) -> Result<()> {
        let body = format!(
            "{CHECKPOINT_HEADER}\nlog_start_offset {}\nrecovery_point {}\nhigh_watermark {}\n",
            self.log_start_offset, self.recovery_point, self.high_watermark
        );
        write_atomically(dir, CHECKPOINT_FILE, &with_crc(body))
    }

    /// The checkpoint, or `None` when it is missing or damaged.
    pub(crate) fn read(dir: &Path) -> Result<Option<Self>> {
        let Some(body) = read_checked(dir, CHECKPOINT_FILE)? else {
            return Ok(None);
        };
        let mut lines = body.lines();
        if lines.next() != Some(CHECKPOINT_HEADER) {
            return Ok(None);
        }
        let mut field = |name: &str| -> Option<i64> {
            let (key, value) = lines.next()?.split_once(' ')?;
            (key == name).then(|| value.parse().ok())?
        };
        Ok((|| {
            Some(Self {
                log_start_offset: field("log_start_offset")?,
                recovery_point: field("recovery_point")?,
                high_watermark: field("high_watermark")?,
            })
        })())
    }
}

/// Appends a `crc32c XXXXXXXX` line covering everything before it.
pub(crate) fn with_crc(body: String) -> String {
    let crc = crc32c::crc32c(body.as_bytes());
    format!("{body}crc32c {crc:08x}\n")
}

/// Reads `name` and checks its CRC line; `None` if missing or damaged (with a warning).
pub(crate) fn read_checked(dir: &Path, name: &str) -> Result<Option<String>> {
    let path = dir.join(name);
    let text = match std::fs::read(&path) {
        Ok(bytes) if bytes.len() <= 16 * 1024 * 1024 => String::from_utf8(bytes).ok(),
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path)(e)),
    };
    let checked = text.and_then(|text| {
        let (body, crc_line) = text.trim_end_matches('\n').rsplit_once('\n')?;
        let body = format!("{body}\n");
        let stored = u32::from_str_radix(crc_line.strip_prefix("crc32c ")?, 16).ok()?;
        (stored == crc32c::crc32c(body.as_bytes())).then_some(body)
    });
    if checked.is_none() {
        tracing::warn!(path = %path.display(), "ignoring damaged file");
    }
    Ok(checked)
}

pub(crate) fn write_atomically(dir: &Path, name: &str, contents: &str) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut file = File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(contents.as_bytes()).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    sync_dir(dir)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

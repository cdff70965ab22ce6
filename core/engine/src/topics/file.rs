//! The persisted form of a topic: `topics/NAME.topic`, a [`crate::durable`] file.
//!
//! ```text
//! id=<uuid>
//! partitions=<count>
//! config.<kafka name>=<value>     one line per override
//! crc32c <8 hex digits>
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::{Error, Result, durable};

pub(crate) const TOPIC_SUFFIX: &str = ".topic";

#[derive(Debug, Clone)]
pub(crate) struct TopicFile {
    pub(crate) id: Uuid,
    pub(crate) partitions: i32,
    pub(crate) overrides: BTreeMap<String, String>,
}

impl TopicFile {
    pub(crate) fn path(dir: &Path, name: &str) -> PathBuf {
        dir.join(format!("{name}{TOPIC_SUFFIX}"))
    }

    fn encode(&self) -> String {
        let mut body = format!("id={}\npartitions={}\n", self.id, self.partitions);
        for (name, value) in &self.overrides {
            body.push_str(&format!("config.{name}={value}\n"));
        }
        body
    }

    pub(crate) fn read(path: &Path) -> Result<Self> {
        let corrupt = |reason: &str| Error::CorruptFile {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let body = durable::read(path)?.ok_or_else(|| corrupt("missing"))?;
        let (mut id, mut partitions, mut overrides) = (None, None, BTreeMap::new());
        for line in body.lines() {
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| corrupt("line without '='"))?;
            match key {
                "id" => id = Uuid::parse_str(value).ok(),
                "partitions" => partitions = value.parse::<i32>().ok().filter(|p| *p > 0),
                _ => {
                    let name = key
                        .strip_prefix("config.")
                        .ok_or_else(|| corrupt("unknown key"))?;
                    overrides.insert(name.to_string(), value.to_string());
                }
            }
        }
        Ok(Self {
            id: id.ok_or_else(|| corrupt("no valid id"))?,
            partitions: partitions.ok_or_else(|| corrupt("no valid partition count"))?,
            overrides,
        })
    }

    /// Writes `NAME.topic` atomically and durably.
    pub(crate) fn write(&self, dir: &Path, name: &str) -> Result<()> {
        durable::write(&Self::path(dir, name), &self.encode())
    }
}

/// Config names and values go into a line-based file: no line breaks, no `=` in names.
pub(crate) fn check_override_text(overrides: &BTreeMap<String, String>) -> Result<()> {
    for (key, value) in overrides {
        if key.contains(['\n', '\r', '=']) || value.contains(['\n', '\r']) {
            return Err(fjord_partition::Error::InvalidConfig {
                name: key.clone(),
                value: value.clone(),
                reason: "line breaks are not allowed",
            }
            .into());
        }
    }
    Ok(())
}

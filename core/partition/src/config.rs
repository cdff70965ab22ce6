//! A topic's configuration, by Kafka's topic config names, with Kafka's defaults.

use fjord_record::{Compression, TimestampType};

use crate::limits::{BATCH_BYTES_MAX, SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN};
use crate::{Error, Result};

/// When appended data is forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// `fdatasync` before an append returns (Kafka `flush.messages=1`).
    EveryBatch,
    /// `fdatasync` once the oldest unflushed append is this old (Kafka `flush.ms`); checked on
    /// append and by the storage's upkeep, which the engine runs on a timer.
    IntervalMs(u64),
    /// Leave it to the OS page cache, Kafka's default. Survives a process crash, not a power
    /// loss. Segments are still synced when they roll and on clean shutdown.
    Os,
}

/// `cleanup.policy`: what happens to old data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

impl CleanupPolicy {
    pub const DELETE: Self = Self {
        delete: true,
        compact: false,
    };
    pub const COMPACT: Self = Self {
        delete: false,
        compact: true,
    };
    pub const COMPACT_DELETE: Self = Self {
        delete: true,
        compact: true,
    };

    /// Parses Kafka's syntax: `delete`, `compact`, `compact,delete` (any order).
    pub fn parse(value: &str) -> Result<Self> {
        let mut policy = Self {
            delete: false,
            compact: false,
        };
        for part in value.split(',').map(str::trim) {
            match part {
                "delete" => policy.delete = true,
                "compact" => policy.compact = true,
                _ => {
                    return Err(invalid(
                        "cleanup.policy",
                        value,
                        "expected delete, compact or both",
                    ));
                }
            }
        }
        Ok(policy)
    }
}

/// The configuration of a topic (and so of each of its partitions). Defaults are Kafka's.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    /// `segment.bytes`: roll to a new segment past this size.
    pub segment_bytes: u64,
    /// `segment.ms`: roll a segment this old, even if small.
    pub segment_ms: i64,
    /// `index.interval.bytes`: bytes between offset index entries.
    pub index_interval_bytes: u64,
    /// `retention.ms`: delete segments whose newest record is older; `None` keeps forever.
    pub retention_ms: Option<i64>,
    /// `retention.bytes`: delete oldest segments while the log is larger; `None` for no limit.
    pub retention_bytes: Option<u64>,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms`: how long compaction keeps a tombstone.
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`: compact once this share of the sealed bytes is dirty.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: records stay uncompacted at least this long.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a dirty segment is compacted at the latest this long after
    /// its newest record, whatever the dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `max.message.bytes`: largest batch accepted.
    pub max_message_bytes: usize,
    /// `message.timestamp.type`.
    pub message_timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms` (KIP-937): under `CreateTime`, a record older than
    /// this is refused.
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms` (KIP-937): under `CreateTime`, a record this far in
    /// the future is refused. Kafka 4.0's default is one hour (KIP-1030).
    pub message_timestamp_after_max_ms: i64,
    /// `flush.messages` / `flush.ms`.
    pub flush: FlushPolicy,
    /// `compression.type`: `None` keeps each batch as its producer compressed it (Kafka's
    /// `producer`); a codec makes the log re-encode batches written with any other.
    pub compression: Option<Compression>,
    /// `file.delete.delay.ms`: kept and shown for Kafka tools, with nothing to delay. Kafka
    /// waits this long before removing a deleted segment's files so that reads in flight can
    /// finish; here a read in flight of a local log holds the segment's open file (a file
    /// range or a pooled handle), which stays readable after the file is unlinked, so the files
    /// are removed at once and no read ever fails because of it.
    pub file_delete_delay_ms: i64,
}

impl Default for TopicConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 3_600_000,
            index_interval_bytes: 4096,
            retention_ms: Some(7 * 24 * 3_600_000),
            retention_bytes: None,
            cleanup_policy: CleanupPolicy::DELETE,
            delete_retention_ms: 24 * 3_600_000,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            max_message_bytes: 1_048_588,
            message_timestamp_type: TimestampType::CreateTime,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: 3_600_000,
            flush: FlushPolicy::Os,
            compression: None,
            file_delete_delay_ms: 60_000,
        }
    }
}

impl TopicConfig {
    /// Checks the values against Kafka's rules and [`crate::limits`].
    pub fn validate(&self) -> Result<()> {
        if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&self.segment_bytes) {
            return Err(invalid(
                "segment.bytes",
                self.segment_bytes,
                "outside 1024..=2147483647",
            ));
        }
        if self.segment_ms <= 0 {
            return Err(invalid("segment.ms", self.segment_ms, "must be positive"));
        }
        if self.index_interval_bytes == 0 {
            return Err(invalid(
                "index.interval.bytes",
                self.index_interval_bytes,
                "must be positive",
            ));
        }
        if self.max_message_bytes == 0 || self.max_message_bytes > BATCH_BYTES_MAX {
            return Err(invalid(
                "max.message.bytes",
                self.max_message_bytes,
                "outside 1..=134217728",
            ));
        }
        if self.delete_retention_ms < 0 {
            return Err(invalid(
                "delete.retention.ms",
                self.delete_retention_ms,
                "must not be negative",
            ));
        }
        if !(0.0..=1.0).contains(&self.min_cleanable_dirty_ratio) {
            return Err(invalid(
                "min.cleanable.dirty.ratio",
                self.min_cleanable_dirty_ratio,
                "outside 0..=1",
            ));
        }
        if self.min_compaction_lag_ms < 0 || self.max_compaction_lag_ms < 1 {
            return Err(invalid(
                "min.compaction.lag.ms / max.compaction.lag.ms",
                format!(
                    "{} / {}",
                    self.min_compaction_lag_ms, self.max_compaction_lag_ms
                ),
                "min must not be negative, max must be positive",
            ));
        }
        if matches!(self.flush, FlushPolicy::IntervalMs(0)) {
            return Err(invalid(
                "flush.ms",
                0,
                "use flush.messages=1 to flush every batch",
            ));
        }
        Ok(())
    }

    /// Every config a topic has, by Kafka name, with its current value as Kafka
    /// tools show it (DescribeConfigs).
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let never = i64::MAX.to_string();
        let optional = |v: Option<i64>| v.map_or("-1".to_string(), |v| v.to_string());
        let policy = match (self.cleanup_policy.compact, self.cleanup_policy.delete) {
            (true, true) => "compact,delete",
            (true, false) => "compact",
            _ => "delete",
        };
        vec![
            ("cleanup.policy", policy.to_string()),
            (
                "compression.type",
                match self.compression {
                    None => "producer",
                    Some(Compression::None) => "uncompressed",
                    Some(codec) => codec.name(),
                }
                .to_string(),
            ),
            ("delete.retention.ms", self.delete_retention_ms.to_string()),
            (
                "file.delete.delay.ms",
                self.file_delete_delay_ms.to_string(),
            ),
            (
                "flush.messages",
                match self.flush {
                    FlushPolicy::EveryBatch => "1".to_string(),
                    _ => never.clone(),
                },
            ),
            (
                "flush.ms",
                match self.flush {
                    FlushPolicy::IntervalMs(ms) => ms.to_string(),
                    FlushPolicy::EveryBatch => "0".to_string(),
                    FlushPolicy::Os => never,
                },
            ),
            (
                "index.interval.bytes",
                self.index_interval_bytes.to_string(),
            ),
            (
                "max.compaction.lag.ms",
                self.max_compaction_lag_ms.to_string(),
            ),
            ("max.message.bytes", self.max_message_bytes.to_string()),
            (
                "message.timestamp.after.max.ms",
                self.message_timestamp_after_max_ms.to_string(),
            ),
            (
                "message.timestamp.before.max.ms",
                self.message_timestamp_before_max_ms.to_string(),
            ),
            (
                "message.timestamp.type",
                match self.message_timestamp_type {
                    TimestampType::CreateTime => "CreateTime".to_string(),
                    TimestampType::LogAppendTime => "LogAppendTime".to_string(),
                },
            ),
            (
                "retention.bytes",
                optional(self.retention_bytes.and_then(|b| i64::try_from(b).ok())),
            ),
            (
                "min.cleanable.dirty.ratio",
                self.min_cleanable_dirty_ratio.to_string(),
            ),
            (
                "min.compaction.lag.ms",
                self.min_compaction_lag_ms.to_string(),
            ),
            ("retention.ms", optional(self.retention_ms)),
            ("segment.bytes", self.segment_bytes.to_string()),
            ("segment.ms", self.segment_ms.to_string()),
        ]
    }

    /// Sets one config by its Kafka name. Unknown names and invalid values are an error
    /// (so a typo never passes), and leave the config unchanged.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let mut next = self.clone();
        next.apply(name, value)?;
        next.validate()?;
        *self = next;
        Ok(())
    }

    fn apply(&mut self, name: &str, value: &str) -> Result<()> {
        let int = |v: &str| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| invalid(name, v, "not an integer"))
        };
        match name {
            "segment.bytes" => self.segment_bytes = non_negative(name, value, int(value)?)?,
            "segment.ms" => self.segment_ms = int(value)?,
            "index.interval.bytes" => {
                self.index_interval_bytes = non_negative(name, value, int(value)?)?
            }
            "retention.ms" => self.retention_ms = (int(value)? >= 0).then_some(int(value)?),
            "retention.bytes" => {
                self.retention_bytes = u64::try_from(int(value)?).ok();
            }
            "cleanup.policy" => self.cleanup_policy = CleanupPolicy::parse(value)?,
            "compression.type" => {
                self.compression = match value.trim() {
                    "producer" => None,
                    "uncompressed" => Some(Compression::None),
                    "gzip" => Some(Compression::Gzip),
                    "snappy" => Some(Compression::Snappy),
                    "lz4" => Some(Compression::Lz4),
                    "zstd" => Some(Compression::Zstd),
                    _ => {
                        return Err(invalid(
                            name,
                            value,
                            "expected producer, uncompressed, gzip, snappy, lz4 or zstd",
                        ));
                    }
                }
            }
            "delete.retention.ms" => self.delete_retention_ms = int(value)?,
            "file.delete.delay.ms" => {
                let ms = int(value)?;
                non_negative(name, value, ms)?;
                self.file_delete_delay_ms = ms;
            }
            "min.cleanable.dirty.ratio" => {
                self.min_cleanable_dirty_ratio = value
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| invalid(name, value, "not a number"))?;
            }
            "min.compaction.lag.ms" => self.min_compaction_lag_ms = int(value)?,
            "max.compaction.lag.ms" => self.max_compaction_lag_ms = int(value)?,
            "max.message.bytes" => {
                self.max_message_bytes = non_negative(name, value, int(value)?)? as usize;
            }
            "message.timestamp.before.max.ms" => {
                self.message_timestamp_before_max_ms = int(value)?;
                non_negative(name, value, self.message_timestamp_before_max_ms)?;
            }
            "message.timestamp.after.max.ms" => {
                self.message_timestamp_after_max_ms = int(value)?;
                non_negative(name, value, self.message_timestamp_after_max_ms)?;
            }
            // Kafka 3.x topic configs Kafka 4 dropped: accepted so that old tools and
            // templates keep working, with a warning that they do nothing.
            "message.format.version" | "message.downconversion.enable" => {
                tracing::warn!(
                    config = name,
                    value,
                    "deprecated topic config accepted and ignored"
                );
            }
            "message.timestamp.type" => {
                self.message_timestamp_type = match value {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    _ => return Err(invalid(name, value, "expected CreateTime or LogAppendTime")),
                }
            }
            "flush.messages" => {
                if int(value)? == 1 {
                    self.flush = FlushPolicy::EveryBatch;
                } else if self.flush == FlushPolicy::EveryBatch {
                    self.flush = FlushPolicy::Os;
                }
            }
            "flush.ms" => {
                let ms = non_negative(name, value, int(value)?)?;
                if self.flush != FlushPolicy::EveryBatch {
                    self.flush = if ms >= i64::MAX as u64 {
                        FlushPolicy::Os
                    } else {
                        FlushPolicy::IntervalMs(ms)
                    };
                }
            }
            _ => return Err(invalid(name, value, "unknown topic config")),
        }
        Ok(())
    }
}

fn non_negative(name: &str, value: &str, parsed: i64) -> Result<u64> {
    u64::try_from(parsed).map_err(|_| invalid(name, value, "must not be negative"))
}

fn invalid(name: &str, value: impl ToString, reason: &'static str) -> Error {
    Error::InvalidConfig {
        name: name.to_string(),
        value: value.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_parse_by_kafka_name() -> Result<()> {
        let mut config = TopicConfig::default();
        config.set("cleanup.policy", "compact,delete")?;
        config.set("retention.ms", "-1")?;
        config.set("flush.messages", "1")?;
        config.set("message.timestamp.type", "LogAppendTime")?;
        config.set("file.delete.delay.ms", "10000")?;
        assert!(config.cleanup_policy.compact && config.cleanup_policy.delete);
        assert_eq!(config.file_delete_delay_ms, 10_000);
        assert!(
            config
                .entries()
                .contains(&("file.delete.delay.ms", "10000".to_string()))
        );
        assert!(matches!(
            config.set("file.delete.delay.ms", "-1"),
            Err(Error::InvalidConfig { .. })
        ));
        assert_eq!(config.retention_ms, None);
        assert_eq!(config.flush, FlushPolicy::EveryBatch);
        assert!(matches!(
            config.set("segment.bytes", "12"),
            Err(Error::InvalidConfig { .. })
        ));
        assert!(matches!(
            config.set("retention.mss", "1"),
            Err(Error::InvalidConfig { .. })
        ));
        Ok(())
    }

    #[test]
    fn entries_read_back_into_the_same_config() {
        let mut config = TopicConfig {
            flush: FlushPolicy::IntervalMs(250),
            retention_ms: None,
            cleanup_policy: CleanupPolicy::COMPACT_DELETE,
            compression: Some(Compression::Zstd),
            ..TopicConfig::default()
        };
        config.message_timestamp_type = TimestampType::LogAppendTime;
        let uncompressed = TopicConfig {
            compression: Some(Compression::None),
            ..TopicConfig::default()
        };
        for original in [config, uncompressed, TopicConfig::default()] {
            let mut parsed = TopicConfig::default();
            for (name, value) in original.entries() {
                parsed.set(name, &value).expect("every entry parses");
            }
            assert_eq!(parsed, original);
        }
    }
}

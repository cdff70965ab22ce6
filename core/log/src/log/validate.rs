//! The check of producer batches before anything is written: each batch whole (length, CRC,
//! header, every record, decompressed under a limit), then the topic's record rules, as
//! Kafka's log validator applies them: a compacted topic takes only records with a key, and
//! under `CreateTime` each record's timestamp must lie within
//! `[now - message.timestamp.before.max.ms, now + message.timestamp.after.max.ms]`
//! (KIP-937). A batch breaking a rule is refused whole, naming each record that broke it
//! (KIP-467), so a client can tell which one was bad.

use fjord_record::{Record, TimestampType};

use super::{Log, Span};
use crate::limits::{RECORD_ERRORS_MAX, VALIDATION_DECOMPRESSED_BYTES_MAX};
use crate::{Error, Result};

/// Which rule a refused batch broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordRule {
    /// A record without a key, on a compacted topic.
    KeyRequired,
    /// A record's timestamp outside the topic's window.
    TimestampOutOfRange,
}

/// One record a batch was refused for: its index in the batch, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub batch_index: i32,
    pub message: String,
}

/// The topic's rules for records, at one moment.
struct RecordRules {
    partition: String,
    key_required: bool,
    /// Inclusive timestamp window, when the topic checks timestamps.
    window_ms: Option<(i64, i64)>,
}

impl RecordRules {
    fn check(
        &self,
        base_timestamp: i64,
        index: usize,
        record: &Record<'_>,
    ) -> Option<(RecordRule, String)> {
        if let Some((earliest, latest)) = self.window_ms {
            let timestamp = base_timestamp.saturating_add(record.timestamp_delta);
            if timestamp < earliest || timestamp > latest {
                let message = format!(
                    "Timestamp {timestamp} of message with offset {index} is out of range. \
                     The timestamp should be within [{earliest}, {latest}]"
                );
                return Some((RecordRule::TimestampOutOfRange, message));
            }
        }
        if self.key_required && record.key.is_none() {
            let message = format!(
                "Compacted topic cannot accept message without key in topic partition {}.",
                self.partition
            );
            return Some((RecordRule::KeyRequired, message));
        }
        None
    }
}

impl Log {
    /// Checks every batch; returns where each one is and its header.
    pub(super) fn validate(&self, batches: &[u8], now_ms: i64) -> Result<Vec<Span>> {
        let rules = self.record_rules(now_ms);
        let mut spans = Vec::new();
        for batch in fjord_record::batches(batches) {
            let batch = batch.map_err(Error::InvalidBatch)?;
            if batch.bytes.len() > self.config.max_message_bytes {
                return Err(Error::BatchTooLarge {
                    size_bytes: batch.bytes.len(),
                    size_bytes_max: self.config.max_message_bytes,
                });
            }
            let mut broken: Vec<(RecordRule, RecordError)> = Vec::new();
            let base_timestamp = batch.header.base_timestamp;
            let check = |index: usize, record: &Record<'_>| {
                if broken.len() >= RECORD_ERRORS_MAX {
                    return;
                }
                if let Some((rule, message)) = rules.check(base_timestamp, index, record) {
                    let batch_index = i32::try_from(index).unwrap_or(i32::MAX);
                    broken.push((
                        rule,
                        RecordError {
                            batch_index,
                            message,
                        },
                    ));
                }
            };
            if rules.key_required || rules.window_ms.is_some() {
                fjord_record::validate_batch_with(&batch, VALIDATION_DECOMPRESSED_BYTES_MAX, check)
            } else {
                fjord_record::validate_batch(&batch, VALIDATION_DECOMPRESSED_BYTES_MAX)
            }
            .map_err(Error::InvalidBatch)?;
            if !broken.is_empty() {
                return Err(refused(broken));
            }
            spans.push(Span {
                position: batch.position,
                size_bytes: batch.bytes.len(),
                offsets_count: i64::from(batch.header.last_offset_delta) + 1,
                header: batch.header,
            });
        }
        Ok(spans)
    }

    fn record_rules(&self, now_ms: i64) -> RecordRules {
        let config = &self.config;
        let window_ms = (config.message_timestamp_type == TimestampType::CreateTime).then(|| {
            (
                now_ms.saturating_sub(config.message_timestamp_before_max_ms),
                now_ms.saturating_add(config.message_timestamp_after_max_ms),
            )
        });
        let window_ms =
            window_ms.filter(|&(earliest, latest)| earliest > i64::MIN || latest < i64::MAX);
        RecordRules {
            partition: self
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            key_required: config.cleanup_policy.compact,
            window_ms,
        }
    }
}

/// The error for a refused batch: a timestamp error decides the code when there is one, as
/// in Kafka; the message is the first record's.
fn refused(broken: Vec<(RecordRule, RecordError)>) -> Error {
    let rule = if broken
        .iter()
        .any(|(rule, _)| *rule == RecordRule::TimestampOutOfRange)
    {
        RecordRule::TimestampOutOfRange
    } else {
        RecordRule::KeyRequired
    };
    let records: Vec<RecordError> = broken.into_iter().map(|(_, error)| error).collect();
    let message = records
        .first()
        .map(|e| e.message.clone())
        .unwrap_or_default();
    Error::InvalidRecords {
        rule,
        message,
        records,
    }
}

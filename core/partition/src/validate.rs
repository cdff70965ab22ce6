//! The check of producer batches before anything is written: each batch whole (length, CRC,
//! header, every record, decompressed under a limit), then the topic's record rules, as
//! Kafka's log validator applies them: a compacted topic takes only records with a key, and
//! under `CreateTime` each record's timestamp must lie within
//! `[now - message.timestamp.before.max.ms, now + message.timestamp.after.max.ms]`
//! (KIP-937). A batch breaking a rule is refused whole, naming each record that broke it
//! (KIP-467), so a client can tell which one was bad.

use fjord_record::{BatchHeader, Compression, Record, TimestampType};

use crate::limits::{APPEND_BYTES_MAX, RECORD_ERRORS_MAX, VALIDATION_DECOMPRESSED_BYTES_MAX};
use crate::{Error, Result, TopicConfig};

/// One checked incoming batch: where it sits in the append buffer, and its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedBatch {
    pub position: usize,
    pub size_bytes: usize,
    /// Offsets the batch takes: its last offset delta plus one.
    pub offsets_count: i64,
    pub header: BatchHeader,
}

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

/// Checks a producer's append (one or more batches) before anything is written: its size,
/// then every batch whole and against the topic's rules for `partition` (its name, for
/// messages) at `now_ms`. Returns where each batch is and its header.
pub fn check_batches(
    batches: &[u8],
    config: &TopicConfig,
    partition: &str,
    now_ms: i64,
) -> Result<Vec<CheckedBatch>> {
    if batches.is_empty() {
        return Err(Error::EmptyAppend);
    }
    if batches.len() > APPEND_BYTES_MAX {
        return Err(Error::AppendTooLarge {
            size_bytes: batches.len(),
            size_bytes_max: APPEND_BYTES_MAX,
        });
    }
    let rules = record_rules(config, partition, now_ms);
    let mut checked = Vec::new();
    for batch in fjord_record::batches(batches) {
        let batch = batch.map_err(Error::InvalidBatch)?;
        if batch.bytes.len() > config.max_message_bytes {
            return Err(Error::BatchTooLarge {
                size_bytes: batch.bytes.len(),
                size_bytes_max: config.max_message_bytes,
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
        checked.push(CheckedBatch {
            position: batch.position,
            size_bytes: batch.bytes.len(),
            offsets_count: i64::from(batch.header.last_offset_delta) + 1,
            header: batch.header,
        });
    }
    Ok(checked)
}

fn record_rules(config: &TopicConfig, partition: &str, now_ms: i64) -> RecordRules {
    let window_ms = (config.message_timestamp_type == TimestampType::CreateTime).then(|| {
        (
            now_ms.saturating_sub(config.message_timestamp_before_max_ms),
            now_ms.saturating_add(config.message_timestamp_after_max_ms),
        )
    });
    let window_ms =
        window_ms.filter(|&(earliest, latest)| earliest > i64::MIN || latest < i64::MAX);
    RecordRules {
        partition: partition.to_string(),
        key_required: config.cleanup_policy.compact,
        window_ms,
    }
}

/// The batches re-encoded with the topic's `compression.type`, when it names a codec and
/// some data batch uses another; `None` when they go in as they are. Call it after
/// [`check_batches`], so the producer's CRC was checked before the batch gets a new one.
pub fn convert_batches(
    batches: &[u8],
    checked: &[CheckedBatch],
    config: &TopicConfig,
) -> Result<Option<Vec<u8>>> {
    let Some(target) = config.compression else {
        return Ok(None);
    };
    let differs = |batch: &CheckedBatch| {
        !batch.header.attributes.is_control() && batch.header.compression() != Some(target)
    };
    if !checked.iter().any(differs) {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(batches.len());
    for batch in checked {
        let bytes = batches
            .get(batch.position..batch.position + batch.size_bytes)
            .ok_or(Error::InvalidBatch(fjord_record::Error::Truncated {
                position: batch.position,
                needed_bytes: batch.size_bytes,
                available_bytes: batches.len().saturating_sub(batch.position),
            }))?;
        if differs(batch) {
            let stored = fjord_record::Batch {
                position: batch.position,
                header: batch.header,
                bytes,
            };
            out.extend_from_slice(&recompress(&stored, target)?);
        } else {
            out.extend_from_slice(bytes);
        }
    }
    Ok(Some(out))
}

fn recompress(batch: &fjord_record::Batch<'_>, target: Compression) -> Result<Vec<u8>> {
    fjord_record::recompress(batch, target, VALIDATION_DECOMPRESSED_BYTES_MAX)
        .map_err(Error::InvalidBatch)
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

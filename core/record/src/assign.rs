//! Rewriting the header fields the broker owns.

use crate::header::{
    ATTRIBUTES_AT, BASE_OFFSET_AT, CRC_AT, HEADER_BYTES, MAX_TIMESTAMP_AT,
    PARTITION_LEADER_EPOCH_AT, read_i16,
};
use crate::{Attributes, Error, Result, TimestampType};

/// Sets a batch's base offset and partition leader epoch. Neither is covered by the CRC, so the
/// batch stays valid and its records untouched.
pub fn assign(batch: &mut [u8], base_offset: i64, partition_leader_epoch: i32) -> Result<()> {
    check_header(batch)?;
    batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
    batch[PARTITION_LEADER_EPOCH_AT..PARTITION_LEADER_EPOCH_AT + 4]
        .copy_from_slice(&partition_leader_epoch.to_be_bytes());
    Ok(())
}

/// Marks a batch as stamped with log-append time `timestamp_ms` (the topic's
/// `message.timestamp.type=LogAppendTime`): sets the timestamp type bit and the max timestamp,
/// then recomputes the CRC. Consumers read every record's timestamp as `max_timestamp`.
pub fn set_log_append_time(batch: &mut [u8], timestamp_ms: i64) -> Result<()> {
    check_header(batch)?;
    let (header, records) = batch.split_at_mut(HEADER_BYTES);
    set_log_append_time_split(header, records, timestamp_ms)
}

/// [`set_log_append_time`] for a batch held as its header (a copy the broker may change) and
/// its records (left where they are): the header is rewritten, the CRC computed over both.
/// This lets the log write a producer's bytes without copying them.
pub fn set_log_append_time_split(
    header: &mut [u8],
    records: &[u8],
    timestamp_ms: i64,
) -> Result<()> {
    if header.len() != HEADER_BYTES {
        return Err(Error::Truncated {
            position: 0,
            needed_bytes: HEADER_BYTES,
            available_bytes: header.len(),
        });
    }
    let attributes = Attributes(read_i16(header, ATTRIBUTES_AT))
        .with_timestamp_type(TimestampType::LogAppendTime);
    header[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.0.to_be_bytes());
    header[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&timestamp_ms.to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header[ATTRIBUTES_AT..]), records);
    header[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

fn check_header(batch: &[u8]) -> Result<()> {
    if batch.len() < HEADER_BYTES {
        return Err(Error::Truncated {
            position: 0,
            needed_bytes: HEADER_BYTES,
            available_bytes: batch.len(),
        });
    }
    Ok(())
}

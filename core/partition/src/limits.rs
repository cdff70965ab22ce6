//! The limits every storage applies: to topic configs and to producer batches.

/// Largest `max.message.bytes`: no batch a storage writes or reads back is larger (Kafka's
/// hard cap on requests is 100 MiB, so no legitimate batch is bigger).
pub const BATCH_BYTES_MAX: usize = 128 * 1024 * 1024;

/// Largest `segment.bytes`: Kafka's config is an `int`, and a local log's index entries hold
/// 32-bit positions.
pub const SEGMENT_BYTES_MAX: u64 = i32::MAX as u64;

/// Smallest `segment.bytes` (Kafka's own floor is 14 bytes, which only makes sense for tests).
pub const SEGMENT_BYTES_MIN: u64 = 1024;

/// Largest buffer one append accepts (all its batches together).
pub const APPEND_BYTES_MAX: usize = 256 * 1024 * 1024;

/// Largest decompressed size of one producer batch the append check inflates. A batch that
/// inflates further is refused as a likely decompression bomb.
pub const VALIDATION_DECOMPRESSED_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Refused records named in one refusal (KIP-467); past it the batch is refused all the same.
pub const RECORD_ERRORS_MAX: usize = 1_000;

const _: () = assert!(SEGMENT_BYTES_MIN < SEGMENT_BYTES_MAX);
const _: () = assert!(BATCH_BYTES_MAX <= APPEND_BYTES_MAX);
const _: () = assert!(BATCH_BYTES_MAX as u64 <= SEGMENT_BYTES_MAX);

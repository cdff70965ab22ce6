//! Every limit of the log crate, in one place.

/// Largest batch the log ever writes or reads back. A stored batch that claims more is
/// corruption, whatever the topic's `max.message.bytes` says.
pub const BATCH_BYTES_MAX: usize = fjord_partition::limits::BATCH_BYTES_MAX;

/// Largest buffer one `append` accepts (all its batches together).
pub const APPEND_BYTES_MAX: usize = fjord_partition::limits::APPEND_BYTES_MAX;

/// Largest `segment.bytes`: index entries hold 32-bit positions.
pub const SEGMENT_BYTES_MAX: u64 = fjord_partition::limits::SEGMENT_BYTES_MAX;

/// Smallest `segment.bytes`.
pub const SEGMENT_BYTES_MIN: u64 = fjord_partition::limits::SEGMENT_BYTES_MIN;

/// Default cap on files held open across all logs of a store.
pub const OPEN_FILES_DEFAULT: usize = 1024;

/// Chunk size for scanning batch headers through a file.
pub const SCAN_CHUNK_BYTES: usize = 64 * 1024;

/// Chunk size for recovery, which reads every byte to check CRCs.
pub const RECOVERY_CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// Index entries read at once when a binary search gets close.
pub const INDEX_WINDOW_ENTRIES: u64 = 1024;

/// Memory the compaction key map may use for keys; past it a round cleans fewer segments.
pub const COMPACTION_KEY_BYTES_MAX: usize = 128 * 1024 * 1024;

/// Largest decompressed batch compaction and timestamp look-up will inflate.
pub const DECOMPRESSED_BYTES_MAX: usize = fjord_record::DECOMPRESSED_BYTES_MAX;

/// Largest aborted-transactions index a segment may have (36 bytes an aborted
/// transaction, so about 7.4 million aborts in one segment). A larger file is corruption.
pub const TXN_INDEX_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// Most leader epochs kept in the epoch cache file.
pub const LEADER_EPOCHS_MAX: usize = 65_536;

const _: () = assert!(BATCH_BYTES_MAX <= APPEND_BYTES_MAX);
const _: () = assert!(SEGMENT_BYTES_MIN < SEGMENT_BYTES_MAX);
// Index entries hold positions within a segment as `u32`.
const _: () = assert!(SEGMENT_BYTES_MAX <= u32::MAX as u64);
const _: () = assert!(SCAN_CHUNK_BYTES >= fjord_record::HEADER_BYTES);
const _: () = assert!(RECOVERY_CHUNK_BYTES >= SCAN_CHUNK_BYTES);

//! Every limit of the engine, in one place, with compile-time checks of how they relate.

/// Blocking jobs (file work) running at once, at most.
pub const BLOCKING_JOBS_MAX: usize = 64;

/// Blocking jobs running at once by default: enough for every partition a small machine
/// writes to at once, few enough that file work cannot starve the process of threads.
pub const BLOCKING_JOBS_DEFAULT: usize = 16;

/// Partitions opened at once during start-up recovery.
pub const RECOVERY_JOBS_MAX: usize = 8;

/// Upper bound on partitions per topic by default, so one request cannot exhaust the machine.
pub const PARTITIONS_PER_TOPIC_DEFAULT: i32 = 10_000;

/// Longest topic name, as in Kafka.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;

/// Longest group id accepted.
pub const GROUP_ID_BYTES_MAX: usize = 4096;

/// Kafka's `offset.metadata.max.bytes`.
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;

/// Records of one commit go in one batch; a request may commit this many partitions at most.
pub const PARTITIONS_PER_COMMIT_MAX: usize = 100_000;

/// Groups the coordinator holds by default, so clients cannot exhaust memory with group ids.
pub const GROUPS_DEFAULT: usize = 100_000;

/// Members per group by default (Kafka's `group.max.size`).
pub const GROUP_MEMBERS_DEFAULT: usize = 1_000;

/// Longest transactional id accepted.
pub const TRANSACTIONAL_ID_BYTES_MAX: usize = 4096;

/// Transactional ids the coordinator holds by default, so clients cannot exhaust memory.
pub const TRANSACTIONAL_IDS_DEFAULT: usize = 100_000;

/// Partitions one transaction may write by default: each gets a marker when it ends.
pub const TRANSACTION_PARTITIONS_DEFAULT: usize = 10_000;

/// Producer ids reserved on disk at a time.
pub const PRODUCER_ID_BLOCK: i64 = 1_000;

/// Longest a reader may wait for new data in one call.
pub const WAIT_FOR_DATA_MS_MAX: u64 = 60_000;

const _: () = assert!(BLOCKING_JOBS_DEFAULT <= BLOCKING_JOBS_MAX);
const _: () = assert!(RECOVERY_JOBS_MAX <= BLOCKING_JOBS_MAX);
const _: () = assert!(OFFSET_METADATA_BYTES_MAX <= GROUP_ID_BYTES_MAX);
const _: () = assert!(PRODUCER_ID_BLOCK > 0);
// A transaction's partitions are written in one `__transaction_state` record.
const _: () = assert!(TRANSACTION_PARTITIONS_DEFAULT <= PARTITIONS_PER_COMMIT_MAX);

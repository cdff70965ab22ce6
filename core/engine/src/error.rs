use std::path::PathBuf;

/// What can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A failure of the local log's storage (never a refusal: those are `Partition`).
    #[error("log error: {0}")]
    Log(fjord_log::Error),
    /// A refused config, producer batch or read: the rules every storage shares.
    #[error(transparent)]
    Partition(#[from] fjord_partition::Error),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("topic {topic:?} does not exist")]
    UnknownTopic { topic: String },
    #[error("no topic has id {topic_id}")]
    UnknownTopicId { topic_id: uuid::Uuid },
    #[error("partition {partition} of topic {topic:?} does not exist")]
    UnknownPartition { topic: String, partition: i32 },
    #[error("topic {topic:?} already exists")]
    TopicExists { topic: String },
    #[error("invalid topic name {topic:?}: {reason}")]
    InvalidTopicName { topic: String, reason: &'static str },
    #[error("invalid partition count {count}: {reason}")]
    InvalidPartitions { count: i32, reason: &'static str },
    #[error("invalid replication factor {factor}: this broker is a single node")]
    InvalidReplicationFactor { factor: i16 },
    #[error("file {path} is damaged: {reason}")]
    CorruptFile { path: PathBuf, reason: String },
    #[error("shutdown found engine state still in use; logs were not closed cleanly")]
    ShutdownIncomplete,
    #[error("the engine is shutting down")]
    ShuttingDown,
    #[error("a blocking worker failed: {reason}")]
    WorkerFailed { reason: String },
    #[error("partition is closed (the broker is shutting down)")]
    PartitionClosed,
    #[error("member {member_id:?} is not in the group")]
    UnknownMemberId { member_id: String },
    #[error("member id {member_id:?} assigned: join again with it")]
    MemberIdRequired { member_id: String },
    #[error("generation {generation_id} is not the group's current generation {current}")]
    IllegalGeneration { generation_id: i32, current: i32 },
    #[error("the group is rebalancing")]
    RebalanceInProgress,
    #[error("static member {instance_id:?} was replaced by a newer instance")]
    FencedInstanceId { instance_id: String },
    #[error("group {group_id:?}: no protocol type and protocol shared with its members")]
    InconsistentGroupProtocol { group_id: String },
    #[error("session timeout {timeout_ms} ms is outside the broker's {min_ms}..={max_ms} ms")]
    InvalidSessionTimeout {
        timeout_ms: i32,
        min_ms: i32,
        max_ms: i32,
    },
    #[error("the group is being deleted")]
    CoordinatorNotAvailable,
    #[error("group {group_id:?} still has members")]
    NonEmptyGroup { group_id: String },
    #[error("group {group_id:?} has reached its maximum number of members")]
    GroupMaxSizeReached { group_id: String },
    #[error("group {group_id:?} does not exist")]
    GroupIdNotFound { group_id: String },
    #[error("invalid group id: {reason}")]
    InvalidGroupId { reason: &'static str },
    #[error("group {group_id:?} is still subscribed to topic {topic:?}")]
    GroupSubscribedToTopic { group_id: String, topic: String },
    #[error("offset metadata of {size_bytes} bytes exceeds {size_bytes_max}")]
    OffsetMetadataTooLarge {
        size_bytes: usize,
        size_bytes_max: usize,
    },
    #[error(
        "transaction timeout {timeout_ms} ms is outside 1..={max_ms} ms (transaction.max.timeout.ms)"
    )]
    InvalidTransactionTimeout { timeout_ms: i32, max_ms: i32 },
    #[error("transactional id {transactional_id:?} does not belong to producer id {producer_id}")]
    InvalidProducerIdMapping {
        transactional_id: String,
        producer_id: i64,
    },
    #[error(
        "producer epoch {producer_epoch} of transactional id {transactional_id:?} is fenced: the current epoch is {current_epoch}"
    )]
    ProducerFenced {
        transactional_id: String,
        producer_epoch: i16,
        current_epoch: i16,
    },
    #[error("transactional id {transactional_id:?} is completing a transaction; retry")]
    ConcurrentTransactions { transactional_id: String },
    #[error("transactional id {transactional_id:?}: {reason}")]
    InvalidTxnState {
        transactional_id: String,
        reason: String,
    },
    #[error(
        "producer id {producer_id} has no transaction open on this partition: add the partition first (AddPartitionsToTxn)"
    )]
    PartitionNotInTransaction { producer_id: i64 },
    #[error("transactional id {transactional_id:?} does not exist")]
    TransactionalIdNotFound { transactional_id: String },
    #[error("invalid transactional id: {reason}")]
    InvalidTransactionalId { reason: &'static str },
    #[error("a transaction may hold at most {partitions_max} partitions")]
    TransactionTooLarge { partitions_max: usize },
    #[error("group {group_id:?} has transactional offsets pending for this partition")]
    UnstableOffsetCommit { group_id: String },
    #[error("topic {topic:?} is internal to the broker")]
    InternalTopic { topic: String },
    #[error("clients may not write to the internal topic {topic:?}")]
    InternalTopicWrite { topic: String },
    #[error("batch {batch_index} has a {attribute}, which clients may not send")]
    ForbiddenBatchAttribute {
        batch_index: usize,
        attribute: &'static str,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A refusal the log gives is the shared rules' refusal: one place to look for it.
impl From<fjord_log::Error> for Error {
    fn from(error: fjord_log::Error) -> Self {
        match error {
            fjord_log::Error::Partition(refused) => Self::Partition(refused),
            other => Self::Log(other),
        }
    }
}

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

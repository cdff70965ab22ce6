//! The one place where Fjord's errors become Kafka error codes.

use fjord_engine::Error;
use kafka_protocol::ResponseError;

/// The Kafka error code a client should see for `error`.
pub(crate) fn error_code(error: &Error) -> i16 {
    response_error(error).code()
}

/// [`error_code`] for a transactional API at `version`: a fenced producer gets
/// PRODUCER_FENCED from `fenced_since` on and INVALID_PRODUCER_EPOCH before, which is all
/// older clients understand (KIP-588: InitProducerId v4, AddPartitionsToTxn,
/// AddOffsetsToTxn and EndTxn v2, TxnOffsetCommit v3).
///
/// A coordinator that cannot write its state (a disk error, a partition closing, the broker
/// stopping) answers NOT_COORDINATOR, as Kafka's coordinators do: clients find the
/// coordinator again and retry, where a storage error would abort their transaction.
pub(crate) fn transaction_error_code(error: &Error, version: i16, fenced_since: i16) -> i16 {
    match error {
        Error::ProducerFenced { .. } if version < fenced_since => {
            ResponseError::InvalidProducerEpoch.code()
        }
        Error::Log(_)
        | Error::Io { .. }
        | Error::CorruptFile { .. }
        | Error::PartitionClosed
        | Error::ShuttingDown => ResponseError::NotCoordinator.code(),
        other => error_code(other),
    }
}

fn response_error(error: &Error) -> ResponseError {
    match error {
        Error::Log(log) => log_error(log),
        Error::Partition(refused) => partition_error(refused),
        Error::UnknownTopic { .. } | Error::UnknownPartition { .. } => {
            ResponseError::UnknownTopicOrPartition
        }
        Error::UnknownTopicId { .. } => ResponseError::UnknownTopicId,
        Error::TopicExists { .. } => ResponseError::TopicAlreadyExists,
        Error::InvalidTopicName { .. } | Error::InternalTopicWrite { .. } => {
            ResponseError::InvalidTopicException
        }
        Error::InvalidPartitions { .. } => ResponseError::InvalidPartitions,
        Error::InvalidReplicationFactor { .. } => ResponseError::InvalidReplicationFactor,
        // A partition that closed, or an engine stopping: the client refreshes and retries.
        Error::PartitionClosed | Error::ShuttingDown => ResponseError::NotLeaderOrFollower,
        Error::Io { .. } | Error::CorruptFile { .. } => ResponseError::KafkaStorageError,
        Error::ForbiddenBatchAttribute { .. } => ResponseError::InvalidRecord,
        Error::UnknownMemberId { .. } => ResponseError::UnknownMemberId,
        Error::MemberIdRequired { .. } => ResponseError::MemberIdRequired,
        Error::IllegalGeneration { .. } => ResponseError::IllegalGeneration,
        Error::RebalanceInProgress => ResponseError::RebalanceInProgress,
        Error::FencedInstanceId { .. } => ResponseError::FencedInstanceId,
        Error::InconsistentGroupProtocol { .. } => ResponseError::InconsistentGroupProtocol,
        Error::InvalidSessionTimeout { .. } => ResponseError::InvalidSessionTimeout,
        Error::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
        Error::NonEmptyGroup { .. } => ResponseError::NonEmptyGroup,
        Error::GroupIdNotFound { .. } => ResponseError::GroupIdNotFound,
        Error::GroupMaxSizeReached { .. } => ResponseError::GroupMaxSizeReached,
        Error::InvalidGroupId { .. } => ResponseError::InvalidGroupId,
        Error::GroupSubscribedToTopic { .. } => ResponseError::GroupSubscribedToTopic,
        Error::OffsetMetadataTooLarge { .. } => ResponseError::OffsetMetadataTooLarge,
        Error::InvalidTransactionTimeout { .. } => ResponseError::InvalidTransactionTimeout,
        Error::InvalidProducerIdMapping { .. } => ResponseError::InvalidProducerIdMapping,
        Error::ProducerFenced { .. } => ResponseError::ProducerFenced,
        Error::ConcurrentTransactions { .. } => ResponseError::ConcurrentTransactions,
        Error::InvalidTxnState { .. } | Error::PartitionNotInTransaction { .. } => {
            ResponseError::InvalidTxnState
        }
        // Past the broker's cap on partitions per transaction (Kafka has none): abortable
        // for clients, where INVALID_TXN_STATE would be fatal to the producer.
        Error::TransactionTooLarge { .. } => ResponseError::InvalidRequest,
        Error::TransactionalIdNotFound { .. } => ResponseError::TransactionalIdNotFound,
        Error::InvalidTransactionalId { .. } => ResponseError::InvalidRequest,
        Error::UnstableOffsetCommit { .. } => ResponseError::UnstableOffsetCommit,
        Error::InternalTopic { .. } => ResponseError::TopicDeletionDisabled,
        Error::WorkerFailed { .. } | Error::ShutdownIncomplete => ResponseError::UnknownServerError,
    }
}

fn log_error(error: &fjord_engine::LogError) -> ResponseError {
    use fjord_engine::LogError as Log;
    match error {
        Log::StaleLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
        Log::OffsetOverflow { .. } => ResponseError::InvalidRecord,
        Log::Io { .. } | Log::Corrupt { .. } | Log::NotALog { .. } => {
            ResponseError::KafkaStorageError
        }
        Log::AlreadyExists { .. } => ResponseError::TopicAlreadyExists,
        Log::Partition(refused) => partition_error(refused),
    }
}

/// Answers the front end gives on its own, for requests it refuses before (or instead of)
/// asking the engine: the protocol's reasons, named here so that every Kafka error code the
/// broker sends comes from this file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A version the broker advertises but does not serve (Produce v0-v2), or an
    /// ApiVersions request of a version it does not know.
    UnsupportedVersion,
    /// A well-formed request asking for something this broker does not do.
    InvalidRequest,
    /// Produce `acks` other than 0, 1 or -1.
    InvalidRequiredAcks,
    /// DescribeGroups v6+ for a group that does not exist.
    GroupIdNotFound,
    /// KIP-227: the fetch session named is not (or no longer) in the cache.
    FetchSessionIdNotFound,
    /// KIP-227: the fetch session's epoch is not the one expected.
    InvalidFetchSessionEpoch,
    /// KIP-227: a session opened naming topics one way was used naming them the other.
    FetchSessionTopicIdError,
    /// AddPartitionsToTxn: the partitions not attempted because another one was refused.
    OperationNotAttempted,
    /// ListTransactions v2: an id pattern that does not compile (or would compile too
    /// large).
    InvalidRegularExpression,
    /// DescribeCluster for controllers, which clients cannot reach here.
    UnsupportedEndpointType,
}

impl Refusal {
    pub(crate) fn code(self) -> i16 {
        match self {
            Self::UnsupportedVersion => ResponseError::UnsupportedVersion,
            Self::InvalidRequest => ResponseError::InvalidRequest,
            Self::InvalidRequiredAcks => ResponseError::InvalidRequiredAcks,
            Self::GroupIdNotFound => ResponseError::GroupIdNotFound,
            Self::FetchSessionIdNotFound => ResponseError::FetchSessionIdNotFound,
            Self::InvalidFetchSessionEpoch => ResponseError::InvalidFetchSessionEpoch,
            Self::FetchSessionTopicIdError => ResponseError::FetchSessionTopicIdError,
            Self::OperationNotAttempted => ResponseError::OperationNotAttempted,
            Self::InvalidRegularExpression => ResponseError::InvalidRegularExpression,
            Self::UnsupportedEndpointType => ResponseError::UnsupportedEndpointType,
        }
        .code()
    }
}

fn partition_error(error: &fjord_engine::PartitionError) -> ResponseError {
    use fjord_engine::PartitionError as Refused;
    match error {
        Refused::InvalidBatch(_) => ResponseError::CorruptMessage,
        Refused::BatchTooLarge { .. } => ResponseError::MessageTooLarge,
        Refused::AppendTooLarge { .. } => ResponseError::RecordListTooLarge,
        Refused::EmptyAppend => ResponseError::InvalidRecord,
        Refused::InvalidRecords { rule, .. } => match rule {
            fjord_engine::RecordRule::KeyRequired => ResponseError::InvalidRecord,
            fjord_engine::RecordRule::TimestampOutOfRange => ResponseError::InvalidTimestamp,
        },
        Refused::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        Refused::InvalidConfig { .. } => ResponseError::InvalidConfig,
        Refused::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        Refused::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
    }
}

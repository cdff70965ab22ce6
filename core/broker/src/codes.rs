//! The one place where Fjord's errors become Kafka error codes.

use fjord_engine::Error;
use kafka_protocol::ResponseError;

/// The Kafka error code a client should see for `error`.
pub(crate) fn error_code(error: &Error) -> i16 {
    response_error(error).code()
}

fn response_error(error: &Error) -> ResponseError {
    match error {
        Error::Log(log) => log_error(log),
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
        Error::TransactionsUnsupported => ResponseError::TransactionalIdAuthorizationFailed,
        Error::InternalTopic { .. } => ResponseError::TopicDeletionDisabled,
        Error::WorkerFailed { .. } | Error::ShutdownIncomplete => ResponseError::UnknownServerError,
    }
}

fn log_error(error: &fjord_engine::LogError) -> ResponseError {
    use fjord_engine::LogError as Log;
    match error {
        Log::InvalidBatch(_) => ResponseError::CorruptMessage,
        Log::BatchTooLarge { .. } => ResponseError::MessageTooLarge,
        Log::AppendTooLarge { .. } => ResponseError::RecordListTooLarge,
        Log::EmptyAppend => ResponseError::InvalidRecord,
        Log::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        Log::StaleLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
        Log::InvalidConfig { .. } => ResponseError::InvalidConfig,
        Log::OffsetOverflow { .. } => ResponseError::InvalidRecord,
        Log::Io { .. } | Log::Corrupt { .. } | Log::NotALog { .. } => {
            ResponseError::KafkaStorageError
        }
        Log::AlreadyExists { .. } => ResponseError::TopicAlreadyExists,
        Log::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        Log::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
        Log::InvalidRecords { rule, .. } => match rule {
            fjord_engine::RecordRule::KeyRequired => ResponseError::InvalidRecord,
            fjord_engine::RecordRule::TimestampOutOfRange => ResponseError::InvalidTimestamp,
        },
    }
}

/// A refused topic config or producer batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid config {name}={value}: {reason}")]
    InvalidConfig {
        name: String,
        value: String,
        reason: &'static str,
    },
    #[error(
        "producer {producer_id}: sequence {first_sequence} is out of order, expected {expected_sequence}"
    )]
    OutOfOrderSequence {
        producer_id: i64,
        first_sequence: i32,
        expected_sequence: i32,
    },
    #[error(
        "producer {producer_id}: epoch {producer_epoch} is fenced by the newer epoch {current_epoch}"
    )]
    InvalidProducerEpoch {
        producer_id: i64,
        producer_epoch: i16,
        current_epoch: i16,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

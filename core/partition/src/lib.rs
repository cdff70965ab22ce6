//! What every partition storage shares, whatever keeps its bytes: the topic config
//! ([`TopicConfig`], Kafka's names and defaults), the check of a producer's batches before
//! they are written ([`check_batches`], [`convert_batches`]: Kafka's log validator rules),
//! the idempotent-producer state ([`ProducerStates`]), the refusals they give ([`Error`])
//! a read's batches as a range of a file ([`FileRange`], for `sendfile`) and the numbers
//! that must not be mixed up ([`Offset`], [`PartitionIndex`],
//! [`ProducerId`], [`ProducerEpoch`], [`LeaderEpoch`]).
//!
//! # Why a crate of its own
//! The engine's partition contract must be implementable by a storage other than the local
//! log (a diskless partition keeping batches in object storage and their order in
//! PostgreSQL). Such a storage needs the same topic configs, batch checks and producer rules
//! as the log, so they live here, below both, and neither depends on the other for them.
//!
//! # Invariants
//! - No I/O of its own: this crate is state machines and parsing. A storage decides where a
//!   producer snapshot or a config is kept; this crate only encodes and decodes them. The one
//!   exception is [`FileRange::read_to_vec`], a read of a file a storage handed out.
//! - A batch is stored only after [`check_batches`] accepted it whole: length, CRC, every
//!   record (decompressed under a limit), `max.message.bytes`, and the topic's record rules.
//! - A [`TopicConfig`] that [`TopicConfig::validate`] accepts is one every storage can apply;
//!   a storage with narrower limits checks them on top.
//! - Producer rules are Kafka's (`ProducerStateManager`): sequences continue by one per
//!   record within an epoch, a new epoch starts at 0, an unknown producer is accepted at any
//!   sequence, a retried batch is recognised among the last five.

mod config;
mod error;
mod file_range;
pub mod limits;
mod producer;
mod types;
mod validate;

pub use config::{CleanupPolicy, FlushPolicy, TopicConfig};
pub use error::{Error, Result};
pub use file_range::FileRange;
pub use producer::{
    Check, CompletedTransaction, PRODUCER_EXPIRATION_MS, PRODUCERS_MAX, ProducerBatch,
    ProducerStates,
};
pub use types::{
    AbortedTransaction, LeaderEpoch, Offset, PartitionIndex, ProducerEpoch, ProducerId,
};
pub use validate::{CheckedBatch, RecordError, RecordRule, check_batches, convert_batches};

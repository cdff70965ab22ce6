//! Newtypes for the numbers that must not be mixed up: an offset is not a partition index,
//! a producer epoch is not a leader epoch.

/// A position in a partition: the offset of a record, or the next one to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset(pub i64);

/// A partition's number within its topic, from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PartitionIndex(pub i32);

/// An idempotent (later transactional) producer's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ProducerId(pub i64);

/// A producer id's epoch: bumped to fence an older instance of the same producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ProducerEpoch(pub i16);

/// The epoch of a partition's leadership; a single node keeps epoch 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LeaderEpoch(pub i32);

impl LeaderEpoch {
    /// Not known: what a client sends when it has no epoch (Kafka's -1).
    pub const UNKNOWN: Self = Self(-1);
}

/// A transaction a `read_committed` reader must skip: `producer_id`'s records from
/// `first_offset` up to its ABORT marker (Kafka's `AbortedTransaction` of a fetch answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    pub producer_id: ProducerId,
    pub first_offset: Offset,
}

macro_rules! display_inner {
    ($($name:ident),*) => {$(
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

display_inner!(
    Offset,
    PartitionIndex,
    ProducerId,
    ProducerEpoch,
    LeaderEpoch
);

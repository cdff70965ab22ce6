//! Fjord's engine: the one in-process API under every front end.
//!
//! [`Engine`] owns the topic catalog, the partitions (behind [`PartitionStorage`]), the group
//! and transaction coordinators, producer ids, the background workers and a [`Clock`]. The Kafka wire server
//! (`fjord-broker`) is one front end on it; processors, connectors and SQL are others, and
//! reach data only through this crate. So the rules a Kafka client gets (validation,
//! durability, offsets, group generations) hold for every writer and reader, because there
//! is only one implementation of them.
//!
//! # Guarantees of the API
//! - [`Engine::append`] returns once the batches are durable under the topic's flush policy
//!   (`flush.messages=1`: synced; otherwise written to the page cache, surviving a process
//!   crash), and, with [`Acks::All`], once the partition's durability step
//!   ([`PartitionStorage::make_durable`]) says so too. A returned offset is never reused.
//! - [`Engine::read`] returns whole stored batches, CRC-checked, never past the high
//!   watermark. [`Engine::waiter`] wakes a reader when a partition it reads moves, not on
//!   every append anywhere.
//! - A committed offset is durable in `__consumer_offsets` before
//!   [`Engine::commit_offsets`] returns, and visible only then.
//! - Topic creation, deletion and config changes are atomic at their topic file.
//! - A transaction (Kafka's transactions V1, [`TransactionCoordinator`]) commits or aborts
//!   everywhere: once [`Engine::end_transaction`] returns, the outcome is durable and every
//!   partition of it has its marker and its group offsets are applied or dropped (a marker a
//!   partition failed to take is written by the upkeep); a crash in between is completed at
//!   the next start. [`Isolation::LastStable`] reads never see an open transaction's records.
//!   [`TransactionalWriter`] gives in-process writers the same all-or-nothing commit.
//!
//! # How it is built
//! Every method that may touch the disk is `async`. A partition is a [`PartitionStorage`],
//! whose methods that may wait return futures: the local log ([`LocalPartition`]) runs each
//! file operation on a bounded blocking pool of the engine's own (`blocking`), which also
//! carries the catalog's file work, so the engine works on any tokio runtime (current-thread
//! included) and no async worker ever waits on a disk, a sync or a lock held across one.
//! Locks are held only for memory: the topic map is swapped, never held across file work; a
//! partition's offsets are kept beside its log, so asking for them never waits for an
//! append's sync. Compaction runs on a worker of its own.
//!
//! Time enters through the [`Clock`]; tests use a [`ManualClock`] and the round methods
//! ([`Engine::run_upkeep`], [`Engine::run_group_timers`], [`Engine::run_offset_expiry`],
//! [`Engine::run_compaction`]) to drive background work. Partitions, positions and epochs
//! are newtypes ([`PartitionIndex`], [`Offset`], [`LeaderEpoch`], [`ProducerId`]) in the
//! data, storage and group APIs, so they cannot be swapped.
//!
//! # Invariants
//! - Only [`Origin::Coordinator`] writes internal topics ([`INTERNAL_TOPICS`]) and control
//!   batches; another origin's transactional batch is appended only while its producer's
//!   open transaction holds the partition (and holds the transaction open meanwhile).
//! - `log_start_offset <= high_watermark <= log_end_offset` for every partition.
//! - Every small file the engine writes goes through `durable`: temporary file, sync,
//!   rename, directory sync, CRC checked on read.

mod blocking;
mod clock;
mod config;
mod durable;
mod engine;
mod error;
mod groups;
mod hooks;
mod internal_topic;
mod join;
pub mod limits;
mod partition;
pub mod partitioner;
mod producer_ids;
mod topics;
mod transactions;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::EngineConfig;
pub use engine::{
    AppendRequest, CommittedRead, ConsumedRecord, Engine, FetchPartition, Origin, PartitionRead,
    TransactionalWriter, Upkeep, Waiter,
};
pub use error::{Error, Result};
pub use fjord_log::Error as LogError;
pub use fjord_partition::{
    AbortedTransaction, CleanupPolicy, Error as PartitionError, FileRange, FlushPolicy,
    LeaderEpoch, Offset, PartitionIndex, ProducerEpoch, ProducerId, RecordError, RecordRule,
    TopicConfig,
};
pub use groups::offsets::{Committed, OFFSETS_TOPIC};
pub use groups::{
    Commit, Coordinator, Description, GroupConfig, GroupState, Identity, JoinRequest, Joined,
    JoinedMember, MemberDescription, Reply, Synced,
};
pub use hooks::{HookPoint, Hooks};
pub use partition::{
    Acks, Appended, Batches, Isolation, LocalPartition, PartitionOffsets, PartitionStorage, Read,
    ReadRange, StorageFuture, TimestampOffset,
};
pub use topics::{INTERNAL_TOPICS, Topic, validate_topic_name};
pub use transactions::{
    TRANSACTION_STATE_TOPIC, TopicPartition, TransactionConfig, TransactionCoordinator,
    TransactionMetadata, TransactionState,
};

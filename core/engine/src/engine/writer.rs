//! The in-process atomic commit: a [`TransactionalWriter`] appends to any partitions and
//! commits a group's (or a processor's) input positions, all or nothing, through the same
//! transaction coordinator, markers and log rules a Kafka client's transaction gets. The
//! Wasm processors, connectors and continuous queries inside the broker commit through it;
//! none of them goes over the wire.
//!
//! A writer is one transactional id's producer, like a Kafka transactional producer: opening
//! it bumps the id's epoch, which fences any earlier writer (or Kafka client) with the same
//! id and aborts its open transaction. Its batches carry the producer id, epoch and a
//! sequence per partition, so the log checks them as it checks a client's.
//!
//! After any error the writer refuses to go on until [`TransactionalWriter::abort`] is
//! called: an append that failed may still have reached the log, so the transaction cannot
//! be trusted whole. `abort` then starts a new epoch (aborting what was open and resetting
//! the sequences, as a Kafka producer does after KIP-360). After a fencing error the writer
//! is finished for good: a newer one owns the id, and `abort` fences it back only if called.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fjord_partition::{PartitionIndex, ProducerEpoch, ProducerId};
use fjord_record::{BatchBuilder, Compression, NewRecord};

use super::{Engine, Origin};
use crate::groups::offsets::invalid_batch;
use crate::groups::{Commit, Identity};
use crate::partition::Appended;
use crate::transactions::TopicPartition;
use crate::{Error, Result};

/// Committing offsets outside any group generation, as an admin tool does.
const NOT_A_MEMBER: Identity<'static> = Identity {
    member_id: "",
    generation_id: -1,
    group_instance_id: None,
};

/// One transactional id's in-process producer (see the module docs).
#[derive(Debug)]
pub struct TransactionalWriter {
    engine: Arc<Engine>,
    transactional_id: String,
    producer: (ProducerId, ProducerEpoch),
    /// The next sequence of each partition written at this epoch.
    sequences: HashMap<TopicPartition, i32>,
    /// Partitions (and groups' offsets) in the open transaction.
    partitions: BTreeSet<TopicPartition>,
    groups: BTreeSet<String>,
    compression: Compression,
    timeout_ms: i32,
    /// An operation failed: only `abort` (a new epoch) may follow.
    failed: bool,
}

impl Engine {
    /// Opens a transactional writer for `transactional_id`, fencing earlier ones; a
    /// transaction it leaves open longer than `timeout` is aborted by the coordinator.
    pub async fn transactional_writer(
        self: &Arc<Self>,
        transactional_id: &str,
        timeout: Duration,
        compression: Compression,
    ) -> Result<TransactionalWriter> {
        let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let producer = self
            .init_producer_id(Some(transactional_id), timeout_ms, None)
            .await?;
        Ok(TransactionalWriter {
            engine: Arc::clone(self),
            transactional_id: transactional_id.to_string(),
            producer,
            sequences: HashMap::new(),
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            compression,
            timeout_ms,
            failed: false,
        })
    }
}

impl TransactionalWriter {
    /// The producer id and epoch its batches carry.
    pub fn producer(&self) -> (ProducerId, ProducerEpoch) {
        self.producer
    }

    /// Appends `records` to a partition in the open transaction (opening one, and adding
    /// the partition to it, as needed); durable under the topic's flush policy on return,
    /// visible to read_committed readers only once [`Self::commit`] returns.
    pub async fn append(
        &mut self,
        topic: &str,
        partition: PartitionIndex,
        records: &[NewRecord<'_>],
    ) -> Result<Appended> {
        self.check_usable()?;
        let appended = self.try_append(topic, partition, records).await;
        self.failed |= appended.is_err();
        appended
    }

    async fn try_append(
        &mut self,
        topic: &str,
        partition: PartitionIndex,
        records: &[NewRecord<'_>],
    ) -> Result<Appended> {
        let key = (topic.to_string(), partition);
        if !self.partitions.contains(&key) {
            self.engine
                .add_partitions_to_transaction(
                    &self.transactional_id,
                    self.producer,
                    std::slice::from_ref(&key),
                )
                .await?;
            self.partitions.insert(key.clone());
        }
        let sequence = self.sequences.get(&key).copied().unwrap_or(0);
        let batch = self.batch(sequence, records)?;
        let appended = self
            .engine
            .append(topic, partition, batch, Origin::Internal)
            .await?;
        let count = i32::try_from(records.len()).unwrap_or(i32::MAX);
        self.sequences.insert(key, sequence.wrapping_add(count));
        Ok(appended)
    }

    /// Commits `group_id`'s positions in the open transaction: in force when it commits,
    /// dropped if it aborts.
    pub async fn commit_offsets(&mut self, group_id: &str, commits: Vec<Commit>) -> Result<()> {
        self.check_usable()?;
        let committed = self.try_commit_offsets(group_id, commits).await;
        self.failed |= committed.is_err();
        committed
    }

    async fn try_commit_offsets(&mut self, group_id: &str, commits: Vec<Commit>) -> Result<()> {
        if !self.groups.contains(group_id) {
            self.engine
                .add_offsets_to_transaction(&self.transactional_id, self.producer, group_id)
                .await?;
            self.groups.insert(group_id.to_string());
        }
        let results = self
            .engine
            .commit_transactional_offsets(group_id, self.producer, NOT_A_MEMBER, commits)
            .await?;
        results.into_iter().collect()
    }

    /// Commits the open transaction: its records become visible and its offsets take
    /// effect, everywhere at once. Without an open transaction, nothing happens.
    pub async fn commit(&mut self) -> Result<()> {
        self.check_usable()?;
        let ended = self.end(true).await;
        self.failed |= ended.is_err();
        ended
    }

    /// Aborts the open transaction: its records are never visible, its offsets never apply.
    /// After an error, it starts a new epoch instead (see the module docs).
    pub async fn abort(&mut self) -> Result<()> {
        if !self.failed {
            let ended = self.end(false).await;
            self.failed |= ended.is_err();
            if ended.is_ok() {
                return Ok(());
            }
        }
        self.producer = self
            .engine
            .init_producer_id(Some(&self.transactional_id), self.timeout_ms, None)
            .await?;
        self.sequences.clear();
        self.partitions.clear();
        self.groups.clear();
        self.failed = false;
        Ok(())
    }

    fn check_usable(&self) -> Result<()> {
        if self.failed {
            return Err(Error::InvalidTxnState {
                transactional_id: self.transactional_id.clone(),
                reason: "an operation of this transaction failed: abort it first".into(),
            });
        }
        Ok(())
    }

    async fn end(&mut self, commit: bool) -> Result<()> {
        if self.partitions.is_empty() && self.groups.is_empty() {
            return Ok(());
        }
        self.engine
            .end_transaction(&self.transactional_id, self.producer, commit)
            .await?;
        self.partitions.clear();
        self.groups.clear();
        Ok(())
    }

    /// The records as one batch of the transaction (no records: the builder's error).
    fn batch(&self, sequence: i32, records: &[NewRecord<'_>]) -> Result<Bytes> {
        let mut builder = BatchBuilder::new(self.compression);
        builder.transactional = true;
        builder.producer_id = self.producer.0.0;
        builder.producer_epoch = self.producer.1.0;
        builder.base_sequence = sequence;
        for record in records {
            builder.push(record).map_err(invalid_batch)?;
        }
        Ok(Bytes::from(builder.build().map_err(invalid_batch)?))
    }
}

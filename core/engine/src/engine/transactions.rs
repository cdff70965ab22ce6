//! Transactions through the engine: the Kafka transactional APIs' operations, for front
//! ends and for in-process writers alike (see [`crate::transactions`]).

use fjord_partition::{PartitionIndex, ProducerEpoch, ProducerId};

use super::Engine;
use crate::groups::offsets::OFFSETS_TOPIC;
use crate::groups::{Commit, Identity};
use crate::transactions::flows::Markers;
use crate::transactions::{TopicPartition, TransactionCoordinator};
use crate::{Error, Result};

/// The partition a transaction adds to commit a group's offsets.
fn offsets_partition() -> TopicPartition {
    (OFFSETS_TOPIC.to_string(), PartitionIndex(0))
}

impl Engine {
    pub(super) fn markers(&self) -> Markers<'_> {
        Markers {
            topics: &self.topics,
            groups: &self.groups,
        }
    }

    /// The transaction coordinator: describe and list transactions.
    pub fn transactions(&self) -> &TransactionCoordinator {
        &self.transactions
    }

    /// InitProducerId. Without a transactional id: a new idempotent producer (epoch 0).
    /// With one: the id's producer with its epoch bumped, an open transaction of an earlier
    /// incarnation aborted first; `timeout_ms` is its `transaction.timeout.ms`, `expected`
    /// the producer the client had (KIP-360).
    pub async fn init_producer_id(
        &self,
        transactional_id: Option<&str>,
        timeout_ms: i32,
        expected: Option<(ProducerId, ProducerEpoch)>,
    ) -> Result<(ProducerId, ProducerEpoch)> {
        match transactional_id {
            None => Ok((self.allocate_producer_id().await?, ProducerEpoch(0))),
            Some(id) => {
                self.transactions
                    .init_producer(id, timeout_ms, expected, self.markers())
                    .await
            }
        }
    }

    /// AddPartitionsToTxn: the partitions join the producer's open transaction (opening
    /// one), durable before this returns. Every partition must exist and be writable by
    /// clients.
    pub async fn add_partitions_to_transaction(
        &self,
        transactional_id: &str,
        producer: (ProducerId, ProducerEpoch),
        partitions: &[TopicPartition],
    ) -> Result<()> {
        for (topic, partition) in partitions {
            let topic = self.require_topic(topic)?;
            if topic.is_internal() {
                return Err(Error::InternalTopicWrite {
                    topic: topic.name.clone(),
                });
            }
            topic.partition(*partition)?;
        }
        self.transactions
            .add_partitions(transactional_id, producer.0, producer.1, partitions)
            .await
    }

    /// AddOffsetsToTxn: the transaction may commit offsets of `group_id` (through
    /// [`Engine::commit_transactional_offsets`]).
    pub async fn add_offsets_to_transaction(
        &self,
        transactional_id: &str,
        producer: (ProducerId, ProducerEpoch),
        group_id: &str,
    ) -> Result<()> {
        crate::groups::validate_group_id(group_id)?;
        self.transactions
            .add_partitions(
                transactional_id,
                producer.0,
                producer.1,
                &[offsets_partition()],
            )
            .await
    }

    /// TxnOffsetCommit: a group's offsets committed in the producer's open transaction, in
    /// force once it commits. One result per commit, or an error for the whole request.
    pub async fn commit_transactional_offsets(
        &self,
        group_id: &str,
        producer: (ProducerId, ProducerEpoch),
        identity: Identity<'_>,
        commits: Vec<Commit>,
    ) -> Result<Vec<Result<()>>> {
        let _open = self
            .transactions
            .begin_append(producer.0, producer.1, &offsets_partition())
            .await?;
        self.groups
            .commit_transactional(group_id, producer, identity, commits, &self.topics)
            .await
    }

    /// EndTxn: commits or aborts the producer's open transaction. On return the outcome is
    /// durable and the markers are written to every partition of it, unless a partition
    /// failed to take its marker: then the upkeep writes it (the outcome stands; that
    /// partition's read_committed readers wait for it).
    pub async fn end_transaction(
        &self,
        transactional_id: &str,
        producer: (ProducerId, ProducerEpoch),
        commit: bool,
    ) -> Result<()> {
        self.transactions
            .end(
                transactional_id,
                producer.0,
                producer.1,
                commit,
                self.markers(),
            )
            .await
    }

    /// One round of transaction upkeep (see [`TransactionCoordinator`]): returns how many
    /// transactions it ended.
    pub async fn run_transaction_timeouts(&self) -> Result<usize> {
        self.transactions.abort_timed_out(self.markers()).await
    }
}

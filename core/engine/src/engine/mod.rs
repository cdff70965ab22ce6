//! [`Engine`]: the one in-process API over topics, partitions, groups and producer ids.

mod consume;
mod data;
mod transactions;
mod upkeep;
mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use self::consume::{CommittedRead, ConsumedRecord};
pub use self::data::{AppendRequest, FetchPartition, Origin, PartitionRead, Waiter};
pub use self::upkeep::Upkeep;
pub use self::writer::TransactionalWriter;
use crate::blocking::BlockingPool;
use crate::clock::Clock;
use crate::groups::{Commit, Coordinator, Identity};
use crate::join::join_all;
use crate::partitioner::Partitioner;
use crate::producer_ids::ProducerIds;
use crate::topics::{Topic, Topics};
use crate::transactions::TransactionCoordinator;
use crate::{EngineConfig, Error, Result};
use fjord_partition::{PartitionIndex, ProducerId};

/// A running engine. Share it as `Arc<Engine>`; every method takes `&self`.
///
/// Every method that may touch the disk is `async` and does its file work on the engine's
/// bounded blocking pool; the others only read memory. No method holds a lock across an
/// `.await` that the data path needs, so one slow partition, topic or compaction does not
/// hold up the others.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    clock: Arc<dyn Clock>,
    pool: BlockingPool,
    topics: Arc<Topics>,
    groups: Coordinator,
    transactions: TransactionCoordinator,
    producer_ids: Arc<ProducerIds>,
    partitioner: Partitioner,
}

impl Engine {
    /// Opens the data directory (recovering logs after a crash, several at once), the group
    /// coordinator (which reads `__consumer_offsets`), the producer id allocator, and the
    /// transaction coordinator (which reads `__transaction_state` and completes the
    /// transactions a crash left half-ended).
    pub async fn open(config: EngineConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        let pool = BlockingPool::new(config.blocking_jobs_max);
        let (topics, producer_ids) = {
            let (config, clock, pool) = (config.clone(), Arc::clone(&clock), pool.clone());
            pool.clone()
                .run(move || {
                    let topics = Topics::open(&config, pool, clock.now_ms())?;
                    let producer_ids = ProducerIds::open(&config.data_dir)?;
                    Ok((Arc::new(topics), Arc::new(producer_ids)))
                })
                .await?
        };
        let groups =
            Coordinator::open(config.groups, &topics, Arc::clone(&clock), pool.clone()).await?;
        let transactions = TransactionCoordinator::open(
            config.transactions,
            &topics,
            Arc::clone(&producer_ids),
            Arc::clone(&clock),
            pool.clone(),
            config.hooks.clone(),
        )
        .await?;
        let engine = Self {
            config,
            clock,
            pool,
            topics,
            groups,
            transactions,
            producer_ids,
            partitioner: Partitioner::default(),
        };
        // A transaction that cannot be completed now is completed by the upkeep later; the
        // engine opens regardless, as its partitions hold the transaction's data safely.
        if let Err(error) = engine.transactions.complete_pending(engine.markers()).await {
            tracing::warn!(%error, "some transactions left preparing could not be completed yet");
        }
        Ok(engine)
    }

    /// Closes every log and records a clean shutdown. Every other holder of the engine (the
    /// front ends, [`Upkeep`]) must have let go of it first.
    pub async fn close(self: Arc<Self>) -> Result<()> {
        let engine = Arc::into_inner(self).ok_or(Error::ShutdownIncomplete)?;
        let Engine {
            pool,
            topics,
            groups,
            transactions,
            ..
        } = engine;
        // The coordinators hold internal topics: let go of them before the logs close.
        drop(transactions);
        drop(groups);
        let topics = Arc::into_inner(topics).ok_or(Error::ShutdownIncomplete)?;
        let partitions = topics.take_all();
        let closed = join_all(partitions.iter().map(|p| p.close()).collect()).await;
        // The shutdown is marked clean only if every partition closed.
        closed.into_iter().collect::<Result<Vec<()>>>()?;
        pool.run(move || topics.close()).await
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    /// The topic called `name`, if it exists.
    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.get(name)
    }

    /// The topic with id `id` (Kafka's topic ids, KIP-516), if it exists.
    pub fn topic_by_id(&self, id: uuid::Uuid) -> Option<Arc<Topic>> {
        self.topics.get_by_id(id)
    }

    /// The name of the topic with id `id`, or [`Error::UnknownTopicId`].
    pub fn topic_name_of(&self, id: uuid::Uuid) -> Result<String> {
        self.topic_by_id(id)
            .map(|t| t.name.clone())
            .ok_or(Error::UnknownTopicId { topic_id: id })
    }

    /// The topic called `name`, or [`Error::UnknownTopic`].
    pub fn require_topic(&self, name: &str) -> Result<Arc<Topic>> {
        self.topics.require(name)
    }

    /// Every topic, by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        self.topics.list()
    }

    /// The topic config defaults topics start from.
    pub fn topic_defaults(&self) -> &fjord_log::TopicConfig {
        self.topics.defaults()
    }

    /// Creates a topic (or with `validate_only` checks that it could be). The topic file is
    /// written first and is the commit point; the partitions' logs follow.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        overrides: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<Topic>> {
        let (topics, name) = (Arc::clone(&self.topics), name.to_string());
        let now_ms = self.clock.now_ms();
        self.pool
            .run(move || topics.create(&name, partitions, overrides, validate_only, now_ms))
            .await
    }

    /// The topic, created with the default partition count if it does not exist, the
    /// caller allows it (`create`: a client's `allow_auto_topic_creation`) and the engine
    /// creates topics on first use. A missing topic is [`Error::UnknownTopic`], or the reason
    /// its name is invalid.
    pub async fn topic_or_create(&self, name: &str, create: bool) -> Result<Arc<Topic>> {
        if let Some(topic) = self.topic(name) {
            return Ok(topic);
        }
        if !(create && self.config.auto_create_topics) {
            crate::topics::validate_topic_name(name)?;
            return Err(Error::UnknownTopic {
                topic: name.to_string(),
            });
        }
        let created = self
            .create_topic(name, self.config.default_partitions, BTreeMap::new(), false)
            .await;
        match created {
            // Created meanwhile by another request: that one.
            Err(Error::TopicExists { .. }) => self.require_topic(name),
            other => other,
        }
    }

    /// Deletes a topic and its data. Internal topics cannot be deleted.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        if crate::topics::INTERNAL_TOPICS.contains(&name) {
            return Err(Error::InternalTopic {
                topic: name.to_string(),
            });
        }
        let (topics, name) = (Arc::clone(&self.topics), name.to_string());
        self.pool.run(move || topics.delete(&name)).await
    }

    /// Replaces a topic's config overrides, validated whole, persisted, then applied.
    pub async fn alter_topic_config(
        &self,
        name: &str,
        overrides: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<()> {
        let (topics, name) = (Arc::clone(&self.topics), name.to_string());
        self.pool
            .run(move || topics.alter_config(&name, overrides, validate_only))
            .await
    }

    /// Grows a topic to `count` partitions.
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<()> {
        let (topics, name) = (Arc::clone(&self.topics), name.to_string());
        let now_ms = self.clock.now_ms();
        self.pool
            .run(move || topics.add_partitions(&name, count, validate_only, now_ms))
            .await
    }

    /// Where Kafka's default partitioner puts a record of `record_bytes` with `key` in
    /// `topic` (see [`crate::partitioner`]).
    pub fn partition_for(
        &self,
        topic: &Topic,
        key: Option<&[u8]>,
        record_bytes: usize,
    ) -> PartitionIndex {
        self.partitioner
            .partition(&topic.name, topic.partition_count(), key, record_bytes)
    }

    /// The group coordinator: membership, rebalances and committed offsets.
    pub fn groups(&self) -> &Coordinator {
        &self.groups
    }

    /// Stores a group's committed offsets, durable before this returns; one result per
    /// commit, or an error for the whole request when the member may not commit.
    pub async fn commit_offsets(
        &self,
        group_id: &str,
        identity: Identity<'_>,
        commits: Vec<Commit>,
    ) -> Result<Vec<Result<()>>> {
        self.groups
            .commit(group_id, identity, commits, &self.topics)
            .await
    }

    /// A producer id never handed out before in this data directory.
    pub async fn allocate_producer_id(&self) -> Result<ProducerId> {
        let producer_ids = Arc::clone(&self.producer_ids);
        self.pool
            .run(move || producer_ids.allocate().map(ProducerId))
            .await
    }
}

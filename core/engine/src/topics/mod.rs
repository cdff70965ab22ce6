//! The topic catalog: each topic's metadata and partitions.
//!
//! Each topic has a file `topics/NAME.topic` (id, partition count, config overrides, CRC)
//! written atomically before its logs are created: the file is the commit point. Deleting
//! removes the file first, then the logs. At start-up, logs without a topic file are
//! leftovers of an interrupted delete and are removed; missing logs of a topic are created.
//!
//! Locking: the map of topics sits behind a read-write lock held only for in-memory reads
//! and swaps, never across file work, so produce and fetch never wait for a topic being
//! created or a config being written. Catalog changes (create, alter, grow, delete) are
//! serialised by a second lock, taken only on the engine's blocking pool.

mod file;
mod open;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use fjord_log::{Store, TopicConfig, TopicPartition};
use uuid::Uuid;

use self::file::{TopicFile, check_override_text};
use crate::blocking::BlockingPool;
use crate::hooks::{HookPoint, Hooks};
use crate::limits::TOPIC_NAME_BYTES_MAX;
use crate::partition::{LocalPartition, PartitionStorage};
use crate::{EngineConfig, Error, Result, durable};
use fjord_partition::PartitionIndex;

/// One topic: its id, config and partitions.
#[derive(Debug)]
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    /// Config set on the topic, by Kafka name; everything else comes from the broker defaults.
    pub overrides: BTreeMap<String, String>,
    pub config: TopicConfig,
    partitions: Vec<Arc<LocalPartition>>,
}

impl Topic {
    pub fn partition_count(&self) -> i32 {
        self.partitions.len() as i32
    }

    /// Partition `index`, or `UnknownPartition`.
    pub fn partition(&self, index: PartitionIndex) -> Result<Arc<dyn PartitionStorage>> {
        usize::try_from(index.0)
            .ok()
            .and_then(|i| self.partitions.get(i))
            .map(|p| Arc::clone(p) as Arc<dyn PartitionStorage>)
            .ok_or_else(|| Error::UnknownPartition {
                topic: self.name.clone(),
                partition: index.0,
            })
    }

    /// Every partition, by index.
    pub fn partitions(&self) -> impl Iterator<Item = (PartitionIndex, Arc<dyn PartitionStorage>)> {
        self.partitions
            .iter()
            .enumerate()
            .map(|(index, partition)| {
                (
                    PartitionIndex(index as i32),
                    Arc::clone(partition) as Arc<dyn PartitionStorage>,
                )
            })
    }

    /// Internal topics (Kafka's: `__consumer_offsets`, `__transaction_state`) are flagged
    /// in Metadata, and clients may not write to them. Other names starting `__` are users'.
    pub fn is_internal(&self) -> bool {
        INTERNAL_TOPICS.contains(&self.name.as_str())
    }
}

/// The topics the broker itself owns.
pub const INTERNAL_TOPICS: [&str; 2] = ["__consumer_offsets", "__transaction_state"];

/// Every topic of the broker.
#[derive(Debug)]
pub(crate) struct Topics {
    dir: PathBuf,
    store: Store,
    defaults: TopicConfig,
    partitions_max: i32,
    hooks: Hooks,
    pool: BlockingPool,
    topics: RwLock<Catalog>,
    changes: Mutex<()>,
}

/// The topics by name, and their names by id (Fetch and Produce v13+ name topics by id).
#[derive(Debug, Default)]
struct Catalog {
    by_name: BTreeMap<String, Arc<Topic>>,
    names_by_id: HashMap<Uuid, String>,
}

impl Catalog {
    fn insert(&mut self, topic: Arc<Topic>) {
        self.names_by_id.insert(topic.id, topic.name.clone());
        self.by_name.insert(topic.name.clone(), topic);
    }

    fn remove(&mut self, name: &str) -> Option<Arc<Topic>> {
        let topic = self.by_name.remove(name)?;
        self.names_by_id.remove(&topic.id);
        Some(topic)
    }
}

/// Kafka's rules: 1 to 249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let invalid = |reason| {
        Err(Error::InvalidTopicName {
            topic: name.chars().take(300).collect(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("empty");
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return invalid("longer than 249 characters");
    }
    if name == "." || name == ".." {
        return invalid("'.' and '..' are reserved");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return invalid("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

impl Topics {
    /// Opens the data directory: loads every topic, recovers or trusts its logs (several
    /// partitions at once).
    pub(crate) fn open(config: &EngineConfig, pool: BlockingPool, now_ms: i64) -> Result<Self> {
        let dir = config.data_dir.join("topics");
        std::fs::create_dir_all(&dir).map_err(crate::error::io(&dir))?;
        let store = Store::open_with(&config.data_dir.join("logs"), config.open_files_max)?;
        let topics = Self {
            dir,
            store,
            defaults: config.log_defaults.clone(),
            partitions_max: config.partitions_max,
            hooks: config.hooks.clone(),
            pool,
            topics: RwLock::new(Catalog::default()),
            changes: Mutex::new(()),
        };
        let loaded = open::load(&topics, now_ms)?;
        let mut catalog = topics.topics.write().unwrap_or_else(|e| e.into_inner());
        for topic in loaded.into_values() {
            catalog.insert(topic);
        }
        drop(catalog);
        Ok(topics)
    }

    fn effective_config(&self, overrides: &BTreeMap<String, String>) -> Result<TopicConfig> {
        let mut config = self.defaults.clone();
        for (name, value) in overrides {
            config.set(name, value)?;
        }
        config.validate()?;
        Ok(config)
    }

    pub(crate) fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_name
            .get(name)
            .cloned()
    }

    /// The topic with id `id`, if it exists.
    pub(crate) fn get_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        let catalog = self.topics.read().unwrap_or_else(|e| e.into_inner());
        let name = catalog.names_by_id.get(&id)?;
        catalog.by_name.get(name).cloned()
    }

    /// The topic called `name`, or `UnknownTopic`.
    pub(crate) fn require(&self, name: &str) -> Result<Arc<Topic>> {
        self.get(name).ok_or_else(|| Error::UnknownTopic {
            topic: name.to_string(),
        })
    }

    pub(crate) fn list(&self) -> Vec<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_name
            .values()
            .cloned()
            .collect()
    }

    fn changes(&self) -> MutexGuard<'_, ()> {
        self.changes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, topic: Arc<Topic>) {
        self.topics
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(topic);
    }

    /// Creates a topic (or, with `validate_only`, checks that it could be created).
    pub(crate) fn create(
        &self,
        name: &str,
        partitions: i32,
        overrides: BTreeMap<String, String>,
        validate_only: bool,
        now_ms: i64,
    ) -> Result<Arc<Topic>> {
        validate_topic_name(name)?;
        if partitions < 1 || partitions > self.partitions_max {
            return Err(Error::InvalidPartitions {
                count: partitions,
                reason: "must be between 1 and the broker's partitions_max",
            });
        }
        check_override_text(&overrides)?;
        let config = self.effective_config(&overrides)?;
        let _changes = self.changes();
        if self.get(name).is_some() {
            return Err(Error::TopicExists {
                topic: name.to_string(),
            });
        }
        let file = TopicFile {
            id: Uuid::new_v4(),
            partitions,
            overrides,
        };
        if validate_only {
            return Ok(Arc::new(Topic {
                name: name.to_string(),
                id: file.id,
                config,
                overrides: file.overrides,
                partitions: Vec::new(),
            }));
        }
        file.write(&self.dir, name)?;
        self.hooks.reached(HookPoint::TopicCreating);
        let topic = Arc::new(open::open_topic(self, name.to_string(), file, now_ms)?);
        self.publish(Arc::clone(&topic));
        tracing::info!(topic = name, partitions, "topic created");
        Ok(topic)
    }

    /// Replaces a topic's config overrides (AlterConfigs, IncrementalAlterConfigs): the new
    /// set is validated whole, persisted in the topic file, then applied to every partition.
    pub(crate) fn alter_config(
        &self,
        name: &str,
        overrides: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<()> {
        check_override_text(&overrides)?;
        let config = self.effective_config(&overrides)?;
        let _changes = self.changes();
        let topic = self.require(name)?;
        if validate_only {
            return Ok(());
        }
        let file = TopicFile {
            id: topic.id,
            partitions: topic.partition_count(),
            overrides: overrides.clone(),
        };
        file.write(&self.dir, name)?;
        for partition in &topic.partitions {
            partition.set_config(&config)?;
        }
        self.publish(Arc::new(Topic {
            name: topic.name.clone(),
            id: topic.id,
            overrides,
            config,
            partitions: topic.partitions.clone(),
        }));
        tracing::info!(topic = name, "topic config altered");
        Ok(())
    }

    /// Grows a topic to `count` partitions (CreatePartitions). Partitions are never removed.
    pub(crate) fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
        now_ms: i64,
    ) -> Result<()> {
        let _changes = self.changes();
        let topic = self.require(name)?;
        if count <= topic.partition_count() || count > self.partitions_max {
            return Err(Error::InvalidPartitions {
                count,
                reason: "must be more than the topic has and at most the broker's partitions_max",
            });
        }
        if validate_only {
            return Ok(());
        }
        let file = TopicFile {
            id: topic.id,
            partitions: count,
            overrides: topic.overrides.clone(),
        };
        file.write(&self.dir, name)?;
        let mut partitions = topic.partitions.clone();
        for index in topic.partition_count()..count {
            let tp = TopicPartition::new(name, index);
            let log = self.store.create_log(&tp, topic.config.clone(), now_ms)?;
            partitions.push(Arc::new(self.local_partition(log)));
        }
        self.publish(Arc::new(Topic {
            name: topic.name.clone(),
            id: topic.id,
            overrides: topic.overrides.clone(),
            config: topic.config.clone(),
            partitions,
        }));
        tracing::info!(topic = name, partitions = count, "partitions added");
        Ok(())
    }

    /// A partition on `log`, its file work on the engine's pool.
    fn local_partition(&self, log: fjord_log::Log) -> LocalPartition {
        LocalPartition::new(log, self.pool.clone(), self.hooks.clone())
    }

    /// The broker-wide defaults topics start from.
    pub(crate) fn defaults(&self) -> &TopicConfig {
        &self.defaults
    }

    /// Deletes a topic and its logs.
    pub(crate) fn delete(&self, name: &str) -> Result<()> {
        let _changes = self.changes();
        let topic = self
            .topics
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
            .ok_or_else(|| Error::UnknownTopic {
                topic: name.to_string(),
            })?;
        let path = TopicFile::path(&self.dir, name);
        std::fs::remove_file(&path).map_err(crate::error::io(&path))?;
        durable::sync_dir(&self.dir)?;
        for partition in &topic.partitions {
            if let Some(log) = partition.take_log() {
                self.store.delete_log(log)?;
            }
        }
        tracing::info!(topic = name, "topic deleted");
        Ok(())
    }

    /// Every partition of every topic, for shutdown: the catalog is emptied, so nothing
    /// reaches them any more.
    pub(crate) fn take_all(&self) -> Vec<Arc<dyn PartitionStorage>> {
        let catalog = std::mem::take(&mut *self.topics.write().unwrap_or_else(|e| e.into_inner()));
        catalog
            .by_name
            .values()
            .flat_map(|topic| topic.partitions())
            .map(|(_, partition)| partition)
            .collect()
    }

    /// Marks the shutdown clean, once every partition was closed.
    pub(crate) fn close(self) -> Result<()> {
        Ok(self.store.close(std::iter::empty())?)
    }
}

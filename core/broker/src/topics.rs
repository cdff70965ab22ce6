//! Topic metadata and the partitions of each topic.
//!
//! Each topic has a file `topics/NAME.topic` (id, partition count, config overrides, CRC)
//! written atomically before its logs are created: the file is the commit point. Deleting
//! removes the file first, then the logs. At start-up, logs without a topic file are
//! leftovers of an interrupted delete and are removed; missing logs of a topic are created.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use fjord_log::{LogConfig, Store, TopicPartition};
use uuid::Uuid;

use crate::error::io;
use crate::partition::{LocalPartition, PartitionStorage};
use crate::{BrokerConfig, Error, Result};

const TOPIC_SUFFIX: &str = ".topic";
/// Longest topic name, as in Kafka.
const TOPIC_NAME_BYTES_MAX: usize = 249;

/// One topic: its id, config and partitions.
#[derive(Debug)]
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    /// Config set on the topic, by Kafka name; everything else comes from the broker defaults.
    pub overrides: BTreeMap<String, String>,
    pub config: LogConfig,
    partitions: Vec<Arc<LocalPartition>>,
}

impl Topic {
    pub fn partition_count(&self) -> i32 {
        self.partitions.len() as i32
    }

    /// Partition `index`, or `UnknownPartition`.
    pub fn partition(&self, index: i32) -> Result<&dyn PartitionStorage> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
            .map(|p| p.as_ref() as &dyn PartitionStorage)
            .ok_or_else(|| Error::UnknownPartition {
                topic: self.name.clone(),
                partition: index,
            })
    }

    /// Internal topics (`__consumer_offsets`, ...) are flagged in Metadata.
    pub fn is_internal(&self) -> bool {
        self.name.starts_with("__")
    }
}

/// Every topic of the broker.
#[derive(Debug)]
pub struct Topics {
    dir: PathBuf,
    store: Store,
    defaults: LogConfig,
    partitions_max: i32,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
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
    /// Opens the data directory: loads every topic, recovers or trusts its logs.
    pub fn open(config: &BrokerConfig, now_ms: i64) -> Result<Self> {
        let dir = config.data_dir.join("topics");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let store = Store::open_with(&config.data_dir.join("logs"), config.open_files_max)?;
        let topics = Self {
            dir,
            store,
            defaults: config.log_defaults.clone(),
            partitions_max: config.partitions_max,
            topics: RwLock::new(BTreeMap::new()),
        };
        topics.load(now_ms)?;
        Ok(topics)
    }

    fn load(&self, now_ms: i64) -> Result<()> {
        let mut loaded = BTreeMap::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let path = entry.map_err(io(&self.dir))?.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(TOPIC_SUFFIX))
            else {
                continue;
            };
            let file = TopicFile::read(&path)?;
            let name = name.to_string();
            let topic = self.open_topic(name.clone(), file, now_ms)?;
            loaded.insert(name, Arc::new(topic));
        }
        for tp in self.store.partitions()? {
            let known = loaded
                .get(&tp.topic)
                .is_some_and(|t| tp.partition < t.partition_count());
            if !known {
                tracing::warn!(topic = %tp.topic, partition = tp.partition, "removing the log of a deleted topic");
                let (log, _) = self.store.open_log(&tp, self.defaults.clone(), now_ms)?;
                self.store.delete_log(log)?;
            }
        }
        tracing::info!(topics = loaded.len(), "topics loaded");
        *self.topics.write().unwrap_or_else(|e| e.into_inner()) = loaded;
        Ok(())
    }

    fn open_topic(&self, name: String, file: TopicFile, now_ms: i64) -> Result<Topic> {
        let config = self.effective_config(&file.overrides)?;
        let mut partitions = Vec::with_capacity(file.partitions as usize);
        for index in 0..file.partitions {
            let tp = TopicPartition::new(name.clone(), index);
            let log = if self.store.root().join(format!("{name}-{index}")).exists() {
                let (log, report) = self.store.open_log(&tp, config.clone(), now_ms)?;
                if report.truncated.is_some() || report.deleted_segments > 0 {
                    tracing::warn!(topic = %name, partition = index, ?report, "log recovered");
                }
                log
            } else {
                self.store.create_log(&tp, config.clone(), now_ms)?
            };
            partitions.push(Arc::new(LocalPartition::new(log)));
        }
        Ok(Topic {
            name,
            id: file.id,
            overrides: file.overrides,
            config,
            partitions,
        })
    }

    fn effective_config(&self, overrides: &BTreeMap<String, String>) -> Result<LogConfig> {
        let mut config = self.defaults.clone();
        for (name, value) in overrides {
            config.set(name, value)?;
        }
        config.validate()?;
        Ok(config)
    }

    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// The topic called `name`, or `UnknownTopic`.
    pub fn require(&self, name: &str) -> Result<Arc<Topic>> {
        self.get(name).ok_or_else(|| Error::UnknownTopic {
            topic: name.to_string(),
        })
    }

    pub fn list(&self) -> Vec<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Creates a topic (or, with `validate_only`, checks that it could be created).
    pub fn create(
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
        self.effective_config(&overrides)?;
        let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
        if topics.contains_key(name) {
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
                config: self.effective_config(&file.overrides)?,
                overrides: file.overrides,
                partitions: Vec::new(),
            }));
        }
        file.write(&self.dir, name)?;
        let topic = Arc::new(self.open_topic(name.to_string(), file, now_ms)?);
        topics.insert(name.to_string(), Arc::clone(&topic));
        tracing::info!(topic = name, partitions, "topic created");
        Ok(topic)
    }

    /// Replaces a topic's config overrides (AlterConfigs, IncrementalAlterConfigs): the new
    /// set is validated whole, persisted in the topic file, then applied to every partition.
    pub fn alter_config(
        &self,
        name: &str,
        overrides: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<()> {
        check_override_text(&overrides)?;
        let config = self.effective_config(&overrides)?;
        let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
        let topic = topics
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownTopic {
                topic: name.to_string(),
            })?;
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
            partition.with_log_mut(|log| Ok(log.set_config(config.clone())?))?;
        }
        let altered = Topic {
            name: topic.name.clone(),
            id: topic.id,
            overrides,
            config,
            partitions: topic.partitions.clone(),
        };
        topics.insert(name.to_string(), Arc::new(altered));
        tracing::info!(topic = name, "topic config altered");
        Ok(())
    }

    /// Grows a topic to `count` partitions (CreatePartitions). Partitions are never removed.
    pub fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
        now_ms: i64,
    ) -> Result<()> {
        let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
        let topic = topics
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownTopic {
                topic: name.to_string(),
            })?;
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
            partitions.push(Arc::new(LocalPartition::new(log)));
        }
        let grown = Topic {
            name: topic.name.clone(),
            id: topic.id,
            overrides: topic.overrides.clone(),
            config: topic.config.clone(),
            partitions,
        };
        topics.insert(name.to_string(), Arc::new(grown));
        tracing::info!(topic = name, partitions = count, "partitions added");
        Ok(())
    }

    /// The broker-wide defaults topics start from.
    pub fn defaults(&self) -> &LogConfig {
        &self.defaults
    }

    /// Deletes a topic and its logs.
    pub fn delete(&self, name: &str) -> Result<()> {
        let topic = self
            .topics
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
            .ok_or_else(|| Error::UnknownTopic {
                topic: name.to_string(),
            })?;
        let path = self.dir.join(format!("{name}{TOPIC_SUFFIX}"));
        std::fs::remove_file(&path).map_err(io(&path))?;
        sync_dir(&self.dir)?;
        for partition in &topic.partitions {
            if let Some(log) = partition.take_log() {
                self.store.delete_log(log)?;
            }
        }
        tracing::info!(topic = name, "topic deleted");
        Ok(())
    }

    /// Runs time-based upkeep on every partition: interval flushes; with `retention`, the
    /// retention limits; with `compaction`, a compaction round where one is due (dirty ratio
    /// or lag, see `Log::compaction_due`). A round is planned and installed under the
    /// partition's lock but runs outside it, so producers and consumers are not held up.
    pub fn maintain(&self, now_ms: i64, retention: bool, compaction: bool) {
        for topic in self.list() {
            for (index, partition) in topic.partitions.iter().enumerate() {
                let outcome = partition.with_log_mut(|log| {
                    log.flush_if_due(now_ms)?;
                    if retention {
                        log.apply_retention(now_ms)?;
                    }
                    Ok(())
                });
                let outcome = outcome.and_then(|()| {
                    if !compaction {
                        return Ok(());
                    }
                    let plan = partition.with_log_mut(|log| {
                        Ok(log
                            .compaction_due(now_ms)
                            .then(|| log.compaction_plan(now_ms))
                            .flatten())
                    })?;
                    if let Some(plan) = plan {
                        let compacted = plan.run()?;
                        let done =
                            partition.with_log_mut(|log| Ok(log.install_compaction(compacted)?))?;
                        tracing::debug!(topic = %topic.name, partition = index, ?done, "compacted");
                    }
                    Ok(())
                });
                if let Err(error) = outcome {
                    tracing::error!(topic = %topic.name, partition = index, %error, "partition upkeep failed");
                }
            }
        }
    }

    /// Closes every log and marks the shutdown clean.
    pub fn close(self) -> Result<()> {
        let topics = self.topics.into_inner().unwrap_or_else(|e| e.into_inner());
        let logs = topics
            .values()
            .flat_map(|t| t.partitions.iter())
            .filter_map(|p| p.take_log())
            .collect::<Vec<_>>();
        Ok(self.store.close(logs)?)
    }
}

/// Config names and values go into a line-based file: no line breaks, no `=` in names.
fn check_override_text(overrides: &BTreeMap<String, String>) -> Result<()> {
    for (key, value) in overrides {
        if key.contains(['\n', '\r', '=']) || value.contains(['\n', '\r']) {
            return Err(fjord_log::Error::InvalidConfig {
                name: key.clone(),
                value: value.clone(),
                reason: "line breaks are not allowed",
            }
            .into());
        }
    }
    Ok(())
}

/// The persisted form of a topic.
#[derive(Debug)]
struct TopicFile {
    id: Uuid,
    partitions: i32,
    overrides: BTreeMap<String, String>,
}

impl TopicFile {
    fn encode(&self) -> String {
        let mut body = format!("id={}\npartitions={}\n", self.id, self.partitions);
        for (name, value) in &self.overrides {
            body.push_str(&format!("config.{name}={value}\n"));
        }
        let crc = crc32c::crc32c(body.as_bytes());
        body.push_str(&format!("crc32c {crc:08x}\n"));
        body
    }

    fn read(path: &Path) -> Result<Self> {
        let corrupt = |reason: &str| Error::CorruptTopicFile {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let (body, crc_line) = text
            .trim_end_matches('\n')
            .rsplit_once('\n')
            .ok_or_else(|| corrupt("no CRC line"))?;
        let body = format!("{body}\n");
        let stored = crc_line
            .strip_prefix("crc32c ")
            .and_then(|c| u32::from_str_radix(c, 16).ok())
            .ok_or_else(|| corrupt("no CRC line"))?;
        if stored != crc32c::crc32c(body.as_bytes()) {
            return Err(corrupt("CRC mismatch"));
        }
        let (mut id, mut partitions, mut overrides) = (None, None, BTreeMap::new());
        for line in body.lines() {
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| corrupt("line without '='"))?;
            match key {
                "id" => id = Uuid::parse_str(value).ok(),
                "partitions" => partitions = value.parse::<i32>().ok().filter(|p| *p > 0),
                _ => {
                    let name = key
                        .strip_prefix("config.")
                        .ok_or_else(|| corrupt("unknown key"))?;
                    overrides.insert(name.to_string(), value.to_string());
                }
            }
        }
        Ok(Self {
            id: id.ok_or_else(|| corrupt("no valid id"))?,
            partitions: partitions.ok_or_else(|| corrupt("no valid partition count"))?,
            overrides,
        })
    }

    /// Writes `NAME.topic` atomically: a synced temporary file renamed over it.
    fn write(&self, dir: &Path, name: &str) -> Result<()> {
        let path = dir.join(format!("{name}{TOPIC_SUFFIX}"));
        let temporary = dir.join(format!("{name}{TOPIC_SUFFIX}.tmp"));
        let mut file = std::fs::File::create(&temporary).map_err(io(&temporary))?;
        file.write_all(self.encode().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io(&temporary))?;
        std::fs::rename(&temporary, &path).map_err(io(&path))?;
        sync_dir(dir)
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

use std::path::PathBuf;

use fjord_log::TopicConfig;

use crate::hooks::Hooks;
use crate::limits::{BLOCKING_JOBS_DEFAULT, PARTITIONS_PER_TOPIC_DEFAULT};
use crate::{GroupConfig, TransactionConfig};

/// How an engine runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The data directory: `logs/` (partition logs), `topics/` (topic metadata) and
    /// `producer_ids`.
    pub data_dir: PathBuf,
    /// `auto.create.topics.enable`: create a topic the first time a client names it.
    pub auto_create_topics: bool,
    /// `num.partitions`: partitions of auto-created topics and of CreateTopics asking for -1.
    pub default_partitions: i32,
    /// Upper bound on partitions per topic, so one request cannot exhaust the machine.
    pub partitions_max: i32,
    /// Topic config defaults (`log.*` broker settings in Kafka); topics override by name.
    pub log_defaults: TopicConfig,
    /// Most files the logs keep open at once.
    pub open_files_max: usize,
    /// The group coordinator's settings.
    pub groups: GroupConfig,
    /// The transaction coordinator's settings.
    pub transactions: TransactionConfig,
    /// Blocking file jobs running at once, at most.
    pub blocking_jobs_max: usize,
    /// Callbacks at points of slow background work (tests only).
    pub hooks: Hooks,
}

impl EngineConfig {
    /// An engine storing data in `data_dir`, with Kafka's defaults otherwise.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            auto_create_topics: true,
            default_partitions: 1,
            partitions_max: PARTITIONS_PER_TOPIC_DEFAULT,
            log_defaults: TopicConfig::default(),
            open_files_max: fjord_log::limits::OPEN_FILES_DEFAULT,
            groups: GroupConfig::default(),
            transactions: TransactionConfig::default(),
            blocking_jobs_max: BLOCKING_JOBS_DEFAULT,
            hooks: Hooks::default(),
        }
    }
}

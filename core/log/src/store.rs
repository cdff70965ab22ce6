//! [`Store`]: the data directory holding every partition log of a broker.
//!
//! Layout: one directory per partition, named `TOPIC-PARTITION` as in Kafka, and a
//! `.clean-shutdown` marker written only after every log was closed. At start-up the marker
//! decides how much checking the logs need: present, they are trusted; absent (a crash), each
//! log recovers from its recovery point. The marker is removed as soon as the store opens, so
//! a crash later is never mistaken for a clean stop.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::checkpoint::sync_dir;
use crate::limits::OPEN_FILES_DEFAULT;
use crate::pool::FilePool;
use crate::{Log, OpenReport, Recovery, Result, TopicConfig, error::io};

const CLEAN_SHUTDOWN_FILE: &str = ".clean-shutdown";
const DELETE_SUFFIX: &str = ".deleted";

/// A topic partition, as the name of its log directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }

    /// The directory name of this partition's log, `TOPIC-PARTITION`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    fn from_dir_name(name: &str) -> Option<Self> {
        let (topic, partition) = name.rsplit_once('-')?;
        let partition = partition.parse().ok().filter(|p| *p >= 0)?;
        (!topic.is_empty()).then(|| Self::new(topic, partition))
    }
}

#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    pool: Arc<FilePool>,
    recovery: Recovery,
}

impl Store {
    /// Opens (creating if needed) the data directory with the default open-file cap.
    pub fn open(root: &Path) -> Result<Self> {
        Self::open_with(root, OPEN_FILES_DEFAULT)
    }

    /// Opens the data directory, keeping at most `open_files_max` files open at once.
    pub fn open_with(root: &Path, open_files_max: usize) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(io(root))?;
        let marker = root.join(CLEAN_SHUTDOWN_FILE);
        let recovery = if marker.exists() {
            std::fs::remove_file(&marker).map_err(io(&marker))?;
            sync_dir(root)?;
            Recovery::Trusted
        } else {
            Recovery::Full
        };
        for entry in std::fs::read_dir(root).map_err(io(root))? {
            let path = entry.map_err(io(root))?.path();
            if path.to_string_lossy().ends_with(DELETE_SUFFIX) {
                std::fs::remove_dir_all(&path).map_err(io(&path))?;
            }
        }
        Ok(Self {
            root: root.to_path_buf(),
            pool: FilePool::new(open_files_max),
            recovery,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn pool(&self) -> &Arc<FilePool> {
        &self.pool
    }

    /// Whether the last shutdown was clean (logs are trusted rather than recovered).
    pub fn recovery(&self) -> Recovery {
        self.recovery
    }

    /// The partitions that have a log here.
    pub fn partitions(&self) -> Result<Vec<TopicPartition>> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(io(&self.root))? {
            let entry = entry.map_err(io(&self.root))?;
            if !entry.file_type().map_err(io(&self.root))?.is_dir() {
                continue;
            }
            if let Some(tp) = entry
                .file_name()
                .to_str()
                .and_then(TopicPartition::from_dir_name)
            {
                found.push(tp);
            }
        }
        found.sort();
        Ok(found)
    }

    pub fn create_log(
        &self,
        partition: &TopicPartition,
        config: TopicConfig,
        now_ms: i64,
    ) -> Result<Log> {
        Log::create(&self.dir(partition), config, Arc::clone(&self.pool), now_ms)
    }

    pub fn open_log(
        &self,
        partition: &TopicPartition,
        config: TopicConfig,
        now_ms: i64,
    ) -> Result<(Log, OpenReport)> {
        Log::open(
            &self.dir(partition),
            config,
            Arc::clone(&self.pool),
            self.recovery,
            now_ms,
        )
    }

    /// Deletes a partition's log: its directory is renamed aside (atomic), then removed. A
    /// crash in between leaves a `*.deleted` directory that the next open removes.
    pub fn delete_log(&self, log: Log) -> Result<()> {
        let dir = log.dir().to_path_buf();
        log.release_files();
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let doomed = self.root.join(format!("{name}{DELETE_SUFFIX}"));
        std::fs::rename(&dir, &doomed).map_err(io(&dir))?;
        sync_dir(&self.root)?;
        std::fs::remove_dir_all(&doomed).map_err(io(&doomed))
    }

    /// Closes every log and marks the shutdown clean. Takes the logs by value so none can be
    /// written after the marker.
    pub fn close(self, logs: impl IntoIterator<Item = Log>) -> Result<()> {
        for log in logs {
            log.close()?;
        }
        let marker = self.root.join(CLEAN_SHUTDOWN_FILE);
        std::fs::File::create(&marker)
            .and_then(|f| f.sync_all())
            .map_err(io(&marker))?;
        sync_dir(&self.root)
    }

    fn dir(&self, partition: &TopicPartition) -> PathBuf {
        self.root.join(partition.dir_name())
    }
}

//! Start-up: every topic file read, every partition's log opened (recovered after a crash)
//! on several threads at once, with progress in the log; leftovers of deletes removed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fjord_log::{Log, TopicConfig, TopicPartition};

use super::file::{TOPIC_SUFFIX, TopicFile};
use super::{Topic, Topics};
use crate::limits::RECOVERY_JOBS_MAX;
use crate::{Error, Result};

/// How often start-up reports how far it got.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Reads every topic file and opens every partition; removes logs of deleted topics.
pub(super) fn load(topics: &Topics, now_ms: i64) -> Result<BTreeMap<String, Arc<Topic>>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&topics.dir).map_err(crate::error::io(&topics.dir))? {
        let path = entry.map_err(crate::error::io(&topics.dir))?.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(TOPIC_SUFFIX))
        else {
            continue;
        };
        files.push((name.to_string(), TopicFile::read(&path)?));
    }
    // Jobs and their logs come back in this order: topics by name, partitions by index.
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut loaded = Vec::with_capacity(files.len());
    let mut jobs = Vec::new();
    for (name, file) in files {
        let config = topics.effective_config(&file.overrides)?;
        for index in 0..file.partitions {
            jobs.push((TopicPartition::new(name.clone(), index), config.clone()));
        }
        loaded.push((name, file, config));
    }
    let mut logs = open_logs(topics, jobs, now_ms)?.into_iter();
    let mut opened = BTreeMap::new();
    for (name, file, config) in loaded {
        let partitions = logs
            .by_ref()
            .take(file.partitions as usize)
            .map(|log| Arc::new(topics.local_partition(log)))
            .collect();
        let topic = Topic {
            name: name.clone(),
            id: file.id,
            overrides: file.overrides,
            config,
            partitions,
        };
        opened.insert(name, Arc::new(topic));
    }
    remove_leftovers(topics, &opened, now_ms)?;
    tracing::info!(topics = opened.len(), "topics loaded");
    Ok(opened)
}

/// Opens (or creates) the logs of a new topic.
pub(super) fn open_topic(
    topics: &Topics,
    name: String,
    file: TopicFile,
    now_ms: i64,
) -> Result<Topic> {
    let config = topics.effective_config(&file.overrides)?;
    let jobs = (0..file.partitions)
        .map(|index| (TopicPartition::new(name.clone(), index), config.clone()))
        .collect();
    let partitions = open_logs(topics, jobs, now_ms)?
        .into_iter()
        .map(|log| Arc::new(topics.local_partition(log)))
        .collect();
    Ok(Topic {
        name,
        id: file.id,
        overrides: file.overrides,
        config,
        partitions,
    })
}

/// Opens each partition's log (creating those missing), in order, on up to
/// [`RECOVERY_JOBS_MAX`] threads. The first failure is returned.
fn open_logs(
    topics: &Topics,
    jobs: Vec<(TopicPartition, TopicConfig)>,
    now_ms: i64,
) -> Result<Vec<Log>> {
    let total = jobs.len();
    let results: Vec<Mutex<Option<Result<Log>>>> = (0..total).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    let reported = Mutex::new(started);
    let threads = RECOVERY_JOBS_MAX.min(total);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some((tp, config)) = jobs.get(index) else {
                        return;
                    };
                    let opened = open_log(topics, tp, config.clone(), now_ms);
                    let failed = opened.is_err();
                    if let Some(slot) = results.get(index) {
                        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(opened);
                    }
                    let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                    report_progress(&reported, finished, total, started);
                    if failed {
                        // Stop the others early: nothing more is needed.
                        next.store(total, Ordering::Relaxed);
                        return;
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or(Err(Error::ShuttingDown))
        })
        .collect()
}

fn report_progress(reported: &Mutex<Instant>, finished: usize, total: usize, started: Instant) {
    let mut last = reported.lock().unwrap_or_else(|e| e.into_inner());
    if last.elapsed() >= PROGRESS_INTERVAL {
        *last = Instant::now();
        tracing::info!(
            opened = finished,
            partitions = total,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "opening partitions"
        );
    }
}

fn open_log(topics: &Topics, tp: &TopicPartition, config: TopicConfig, now_ms: i64) -> Result<Log> {
    if !topics.store.root().join(tp.dir_name()).exists() {
        return Ok(topics.store.create_log(tp, config, now_ms)?);
    }
    let (log, report) = topics.store.open_log(tp, config, now_ms)?;
    if report.truncated.is_some() || report.deleted_segments > 0 {
        tracing::warn!(topic = %tp.topic, partition = tp.partition, ?report, "log recovered");
    }
    Ok(log)
}

/// Logs of topics (or partitions) with no topic file are leftovers of an interrupted delete.
fn remove_leftovers(
    topics: &Topics,
    opened: &BTreeMap<String, Arc<Topic>>,
    now_ms: i64,
) -> Result<()> {
    for tp in topics.store.partitions()? {
        let known = opened
            .get(&tp.topic)
            .is_some_and(|t| tp.partition < t.partition_count());
        if !known {
            tracing::warn!(topic = %tp.topic, partition = tp.partition, "removing the log of a deleted topic");
            let (log, _) = topics
                .store
                .open_log(&tp, topics.defaults.clone(), now_ms)?;
            topics.store.delete_log(log)?;
        }
    }
    Ok(())
}

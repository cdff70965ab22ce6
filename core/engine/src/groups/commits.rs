//! Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete. A commit is written to
//! `__consumer_offsets` (under the write lock, so memory follows the log's order) before it
//! is acknowledged or visible.

use super::offsets::{Committed, Entry, METADATA_BYTES_MAX};
use super::{Commit, Coordinator, GroupEntry, Identity, subscribed_topics, validate_group_id};
use fjord_partition::PartitionIndex;

use crate::topics::Topics;
use crate::{Error, Result};

impl Coordinator {
    /// Stores commits (OffsetCommit); one result per commit, or an error for the whole
    /// request when the member may not commit.
    pub(crate) async fn commit(
        &self,
        group_id: &str,
        identity: Identity<'_>,
        commits: Vec<Commit>,
        topics: &Topics,
    ) -> Result<Vec<Result<()>>> {
        validate_group_id(group_id)?;
        let _write = self.write_lock.lock().await;
        {
            let mut groups = self.groups();
            if !groups.contains_key(group_id) {
                if identity.generation_id >= 0 || groups.len() >= self.config.groups_max {
                    return Err(Error::UnknownMemberId {
                        member_id: identity.member_id.to_string(),
                    });
                }
                let entry = GroupEntry::new(group_id, 0, self.clock.now_ms());
                groups.insert(group_id.to_string(), entry);
            }
            if let Some(entry) = groups.get_mut(group_id) {
                entry.group.check_commit(identity, self.clock.now())?;
            }
        }
        let now_ms = self.clock.now_ms();
        let results: Vec<Result<()>> = commits.iter().map(|c| check_commit(c, topics)).collect();
        let entries: Vec<Entry> = commits
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.is_ok())
            .map(|(c, _)| Entry::Offset {
                group_id: group_id.to_string(),
                topic: c.topic.clone(),
                partition: c.partition,
                committed: Some(committed(c, now_ms)),
            })
            .collect();
        if !entries.is_empty() {
            self.write(entries).await?;
        }
        if let Some(entry) = self.groups().get_mut(group_id) {
            for (commit, _) in commits.iter().zip(&results).filter(|(_, r)| r.is_ok()) {
                let key = (commit.topic.clone(), commit.partition);
                entry.supersede_pending(&key);
                entry.offsets.insert(key, committed(commit, now_ms));
            }
        }
        Ok(results)
    }

    /// Committed offsets of a group: of the partitions asked for, or all with `None`.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<Vec<(String, Vec<PartitionIndex>)>>,
    ) -> Vec<(String, PartitionIndex, Option<Committed>)> {
        self.fetch_stable_offsets(group_id, partitions, false)
            .into_iter()
            .map(|(topic, partition, committed, _)| (topic, partition, committed))
            .collect()
    }

    /// [`Self::fetch_offsets`] for OffsetFetch's `require_stable`: with it, a partition that
    /// a transaction still open has committed is answered unstable (`true`, no offset).
    /// Commits and open transactions are read at one instant, so a transaction completing
    /// meanwhile cannot make an old offset pass for a stable one.
    pub fn fetch_stable_offsets(
        &self,
        group_id: &str,
        partitions: Option<Vec<(String, Vec<PartitionIndex>)>>,
        require_stable: bool,
    ) -> Vec<(String, PartitionIndex, Option<Committed>, bool)> {
        let groups = self.groups();
        let entry = groups.get(group_id);
        let offsets = entry.map(|e| &e.offsets);
        let answer = |topic: String, partition: PartitionIndex, found: Option<Committed>| {
            let key = (topic, partition);
            let unstable = require_stable && entry.is_some_and(|e| e.has_pending(&key));
            let (topic, partition) = key;
            (topic, partition, found.filter(|_| !unstable), unstable)
        };
        match partitions {
            Some(asked) => asked
                .into_iter()
                .flat_map(|(topic, indexes)| indexes.into_iter().map(move |i| (topic.clone(), i)))
                .map(|(topic, partition)| {
                    let found = offsets.and_then(|o| o.get(&(topic.clone(), partition)).cloned());
                    answer(topic, partition, found)
                })
                .collect(),
            None => offsets
                .into_iter()
                .flatten()
                .map(|((topic, partition), c)| answer(topic.clone(), *partition, Some(c.clone())))
                .collect(),
        }
    }

    /// Deletes a group's commits for some partitions (OffsetDelete). Refused per topic
    /// while the group's members are subscribed to it.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: Vec<(String, PartitionIndex)>,
    ) -> Result<Vec<(String, PartitionIndex, Result<()>)>> {
        let _write = self.write_lock.lock().await;
        let subscribed = {
            let groups = self.groups();
            let entry = groups.get(group_id).ok_or_else(|| Error::GroupIdNotFound {
                group_id: group_id.to_string(),
            })?;
            subscribed_topics(&entry.group)
        };
        let results: Vec<(String, PartitionIndex, Result<()>)> = partitions
            .into_iter()
            .map(|(topic, partition)| {
                let result = if subscribed.contains(&topic) {
                    Err(Error::GroupSubscribedToTopic {
                        group_id: group_id.to_string(),
                        topic: topic.clone(),
                    })
                } else {
                    Ok(())
                };
                (topic, partition, result)
            })
            .collect();
        let tombstones: Vec<Entry> = results
            .iter()
            .filter(|(_, _, r)| r.is_ok())
            .map(|(topic, partition, _)| Entry::Offset {
                group_id: group_id.to_string(),
                topic: topic.clone(),
                partition: *partition,
                committed: None,
            })
            .collect();
        if !tombstones.is_empty() {
            self.write(tombstones).await?;
        }
        if let Some(entry) = self.groups().get_mut(group_id) {
            for (topic, partition, _) in results.iter().filter(|(_, _, r)| r.is_ok()) {
                let key = (topic.clone(), *partition);
                entry.supersede_pending(&key);
                entry.offsets.remove(&key);
            }
        }
        Ok(results)
    }
}

pub(super) fn committed(commit: &Commit, now_ms: i64) -> Committed {
    Committed {
        offset: commit.offset,
        leader_epoch: commit.leader_epoch,
        metadata: commit.metadata.clone(),
        commit_timestamp_ms: now_ms,
    }
}

pub(super) fn check_commit(commit: &Commit, topics: &Topics) -> Result<()> {
    let size_bytes = commit.metadata.as_ref().map_or(0, String::len);
    if size_bytes > METADATA_BYTES_MAX {
        return Err(Error::OffsetMetadataTooLarge {
            size_bytes,
            size_bytes_max: METADATA_BYTES_MAX,
        });
    }
    topics.require(&commit.topic)?.partition(commit.partition)?;
    Ok(())
}

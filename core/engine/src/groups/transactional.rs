//! Offsets committed in a transaction (TxnOffsetCommit, KIP-98 and KIP-447): written to
//! `__consumer_offsets` at once, as a batch of the producer's transaction, but in force only
//! from the transaction's COMMIT marker, which the transaction coordinator has this
//! coordinator write ([`Coordinator::complete_transaction`]); an ABORT marker drops them.
//! Until then OffsetFetch with `require_stable` answers UNSTABLE_OFFSET_COMMIT for them.

use bytes::Bytes;
use fjord_partition::{PartitionIndex, ProducerEpoch, ProducerId};

use super::commits::{check_commit, committed};
use super::offsets::{self, Entry};
use super::{Commit, Coordinator, GroupEntry, Identity, validate_group_id};
use crate::topics::Topics;
use crate::{Error, Result};

impl Coordinator {
    /// Stores commits in `producer`'s open transaction; one result per commit, or an error
    /// for the whole request when the member may not commit. The caller has checked that the
    /// transaction holds the offsets partition.
    pub(crate) async fn commit_transactional(
        &self,
        group_id: &str,
        producer: (ProducerId, ProducerEpoch),
        identity: Identity<'_>,
        commits: Vec<Commit>,
        topics: &Topics,
    ) -> Result<Vec<Result<()>>> {
        validate_group_id(group_id)?;
        let _write = self.write_lock.lock().await;
        {
            let mut groups = self.groups();
            if !groups.contains_key(group_id) {
                if groups.len() >= self.config.groups_max {
                    return Err(Error::CoordinatorNotAvailable);
                }
                let entry = GroupEntry::new(group_id, 0, self.clock.now_ms());
                groups.insert(group_id.to_string(), entry);
            }
            if let Some(entry) = groups.get(group_id) {
                entry.group.check_transactional_commit(identity)?;
            }
        }
        let now_ms = self.clock.now_ms();
        let results: Vec<Result<()>> = commits.iter().map(|c| check_commit(c, topics)).collect();
        let accepted: Vec<&Commit> = commits
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.is_ok())
            .map(|(c, _)| c)
            .collect();
        if accepted.is_empty() {
            return Ok(results);
        }
        let entries: Vec<Entry> = accepted
            .iter()
            .map(|c| Entry::Offset {
                group_id: group_id.to_string(),
                topic: c.topic.clone(),
                partition: c.partition,
                committed: Some(committed(c, now_ms)),
            })
            .collect();
        self.append(offsets::encode_batch(&entries, Some(producer), now_ms)?)
            .await?;
        if let Some(entry) = self.groups().get_mut(group_id) {
            let pending = entry.pending.entry(producer.0.0).or_default();
            for commit in accepted {
                pending.insert(
                    (commit.topic.clone(), commit.partition),
                    committed(commit, now_ms),
                );
            }
        }
        Ok(results)
    }

    /// Writes a transaction's marker (`marker`, built by the transaction coordinator) to the
    /// offsets partition and puts the producer's pending offsets in force (`commit`) or
    /// drops them, in one step under the write lock.
    pub(crate) async fn complete_transaction(
        &self,
        producer_id: ProducerId,
        marker: Bytes,
        commit: bool,
    ) -> Result<()> {
        let _write = self.write_lock.lock().await;
        self.append(marker).await?;
        for entry in self.groups().values_mut() {
            if let Some(pending) = entry.pending.remove(&producer_id.0)
                && commit
            {
                entry.offsets.extend(pending);
            }
        }
        Ok(())
    }

    /// Whether a transaction still open has committed an offset for the group's partition
    /// (OffsetFetch's `require_stable`).
    pub fn has_pending_offset(
        &self,
        group_id: &str,
        topic: &str,
        partition: PartitionIndex,
    ) -> bool {
        let key = (topic.to_string(), partition);
        self.groups()
            .get(group_id)
            .is_some_and(|e| e.has_pending(&key))
    }
}

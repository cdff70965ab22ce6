//! Expiry of committed offsets (KIP-211), as Kafka's group coordinator does it: an empty
//! group's offsets expire `offsets.retention.minutes` after it became empty; offsets
//! committed without a group membership (standalone consumers, admin tools) expire that
//! long after their commit; a consumer group with members keeps the offsets of topics it
//! subscribes to, and the others expire that long after their commit. An empty group with
//! no offsets left disappears. Expired offsets and gone groups are tombstoned in
//! `__consumer_offsets` before they leave memory, so a restart does not bring them back.

use std::collections::HashSet;

use fjord_partition::PartitionIndex;

use super::offsets::{self, Entry};
use super::{Coordinator, Group, GroupEntry, GroupState};
use crate::Result;

/// What one expiry pass removes.
#[derive(Debug, Default)]
struct Expired {
    /// (group, topic, partition, commit timestamp) of each expired offset.
    offsets: Vec<(String, String, PartitionIndex, i64)>,
    /// Groups left empty without offsets.
    groups: Vec<String>,
}

impl Coordinator {
    /// One expiry pass; returns how many offsets expired and how many groups went away.
    pub(crate) async fn expire_offsets(&self) -> Result<(usize, usize)> {
        // Commits hold this lock across their write too: nothing is committed between the
        // choice of what expires and its removal.
        let _write = self.write_lock.lock().await;
        let now_ms = self.clock.now_ms();
        let expired = self.choose_expired(now_ms);
        if expired.offsets.is_empty() && expired.groups.is_empty() {
            return Ok((0, 0));
        }
        let tombstones = expired
            .offsets
            .iter()
            .map(|(group_id, topic, partition, _)| Entry::Offset {
                group_id: group_id.clone(),
                topic: topic.clone(),
                partition: *partition,
                committed: None,
            })
            .chain(expired.groups.iter().map(|group_id| Entry::Group {
                group_id: group_id.clone(),
                generation_id: None,
            }))
            .collect();
        self.write(tombstones).await?;
        let mut groups = self.groups();
        for (group_id, topic, partition, _) in &expired.offsets {
            if let Some(entry) = groups.get_mut(group_id) {
                entry.offsets.remove(&(topic.clone(), *partition));
            }
        }
        for group_id in &expired.groups {
            // Not if it gained members or commits while the tombstones were written.
            let still_idle = groups
                .get(group_id)
                .is_some_and(|e| e.group.is_idle() && e.offsets.is_empty() && e.pending.is_empty());
            if still_idle {
                groups.remove(group_id);
            }
        }
        tracing::info!(
            offsets = expired.offsets.len(),
            groups = expired.groups.len(),
            "expired committed offsets"
        );
        Ok((expired.offsets.len(), expired.groups.len()))
    }

    fn choose_expired(&self, now_ms: i64) -> Expired {
        let retention_ms =
            i64::try_from(self.config.offsets_retention.as_millis()).unwrap_or(i64::MAX);
        let is_old = |since_ms: i64| now_ms.saturating_sub(since_ms) >= retention_ms;
        let mut expired = Expired::default();
        for (group_id, entry) in self.groups().iter() {
            let keep = kept_topics(entry);
            let mut left = entry.offsets.len();
            for ((topic, partition), committed) in &entry.offsets {
                // An open transaction's commit of the partition will replace it: kept.
                if entry.has_pending(&(topic.clone(), *partition)) {
                    continue;
                }
                let base_ms = match (keep.as_ref(), entry.empty_since_ms) {
                    // A consumer group with members keeps its subscribed topics' offsets.
                    (Some(kept), _) if kept.contains(topic) => continue,
                    // An empty group that had members: from when it became empty.
                    (None, Some(empty_since_ms)) if entry.had_members => empty_since_ms,
                    // Standalone commits and unsubscribed topics: from the commit.
                    _ => committed.commit_timestamp_ms,
                };
                if is_old(base_ms) {
                    expired.offsets.push((
                        group_id.clone(),
                        topic.clone(),
                        *partition,
                        committed.commit_timestamp_ms,
                    ));
                    left -= 1;
                }
            }
            // Offsets pending in an open transaction count as offsets, as in Kafka.
            let idle = entry.group.is_idle() && entry.pending.is_empty();
            if left == 0 && idle && entry.group.state != GroupState::Dead {
                expired.groups.push(group_id.clone());
            }
        }
        expired
    }
}

/// The topics whose offsets a group keeps whatever their age: `None` for a group without
/// members (all its offsets may expire), the subscribed topics for a consumer group with
/// members, every topic for any other group with members (its protocol is opaque).
fn kept_topics(entry: &GroupEntry) -> Option<KeptTopics> {
    if entry.group.members.is_empty() {
        return None;
    }
    if entry.group.protocol_type.as_deref() == Some("consumer") {
        Some(KeptTopics::Only(subscribed_topics(&entry.group)))
    } else {
        Some(KeptTopics::All)
    }
}

enum KeptTopics {
    All,
    Only(HashSet<String>),
}

impl KeptTopics {
    fn contains(&self, topic: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(topics) => topics.contains(topic),
        }
    }
}

/// Topics the members of a `consumer` group subscribe to, read from their join metadata
/// (ConsumerProtocolSubscription: version, then the topic array; later fields are ignored).
/// Parsed by hand with every length checked, since the bytes come from clients.
pub(super) fn subscribed_topics(group: &Group) -> HashSet<String> {
    let mut topics = HashSet::new();
    if group.protocol_type.as_deref() != Some("consumer") {
        return topics;
    }
    for member in group.members.values() {
        let metadata = member.metadata(group.protocol_name.as_deref());
        let mut reader = offsets::Reader(&metadata);
        let Some(count) = reader.i16().and_then(|_version| reader.i32()) else {
            continue;
        };
        for _ in 0..count.max(0) {
            match reader.string() {
                Some(Some(topic)) => {
                    topics.insert(topic);
                }
                _ => break,
            }
        }
    }
    topics
}

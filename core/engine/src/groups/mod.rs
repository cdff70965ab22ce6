//! The group coordinator: consumer group membership (classic protocol) and committed offsets.
//!
//! Each group is a [`Group`] state machine behind one lock, held only for in-memory work;
//! requests that must wait for a rebalance round get a receiver and await it without holding
//! the lock. Committed offsets are written to `__consumer_offsets` (through its partition's
//! storage) before they are acknowledged or visible, and are reloaded from it at start-up. A
//! timer (the engine's group timer worker, woken at the earliest deadline) expires sessions
//! and completes timed-out rounds. Time comes from the engine's clock.

mod commits;
mod expiry;
mod group;
pub(crate) mod offsets;
#[cfg(test)]
mod tests;
mod transactional;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;

use expiry::subscribed_topics;
use group::Group;
pub use group::{GroupState, Identity, JoinRequest, Joined, JoinedMember, Reply, Synced};
use offsets::{Entry, GroupOffsets, OFFSETS_TOPIC};

use crate::blocking::BlockingPool;
use crate::clock::Clock;
use crate::limits::{GROUP_ID_BYTES_MAX, GROUP_MEMBERS_DEFAULT, GROUPS_DEFAULT};
use crate::topics::{Topic, Topics};
use crate::{Error, Result};
use fjord_partition::{LeaderEpoch, Offset, PartitionIndex};

/// `__consumer_offsets` has one partition: a single node coordinates every group.
const OFFSETS_PARTITION: PartitionIndex = PartitionIndex(0);

/// Coordinator settings, Kafka's `group.*` broker configs.
#[derive(Debug, Clone, Copy)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`: a new group waits this long for more members.
    pub initial_rebalance_delay: Duration,
    /// `group.min.session.timeout.ms` and `group.max.session.timeout.ms`.
    pub session_timeout_min_ms: i32,
    pub session_timeout_max_ms: i32,
    /// Most groups the coordinator holds, so clients cannot exhaust memory with group ids.
    pub groups_max: usize,
    /// Most members per group (Kafka's `group.max.size`).
    pub members_max: usize,
    /// `offsets.retention.minutes`: how long an empty group's offsets (or a standalone
    /// commit) are kept (KIP-211).
    pub offsets_retention: Duration,
    /// `offsets.retention.check.interval.ms`: how often offsets are checked for expiry.
    pub offsets_retention_check_interval: Duration,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            initial_rebalance_delay: Duration::from_millis(3000),
            session_timeout_min_ms: 6_000,
            session_timeout_max_ms: 1_800_000,
            groups_max: GROUPS_DEFAULT,
            members_max: GROUP_MEMBERS_DEFAULT,
            offsets_retention: Duration::from_secs(7 * 24 * 3600),
            offsets_retention_check_interval: Duration::from_millis(600_000),
        }
    }
}

/// One partition's commit in an OffsetCommit.
#[derive(Debug, Clone)]
pub struct Commit {
    pub topic: String,
    pub partition: PartitionIndex,
    pub offset: Offset,
    /// The leader epoch the consumer last saw, or `LeaderEpoch::UNKNOWN`.
    pub leader_epoch: LeaderEpoch,
    pub metadata: Option<String>,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct Description {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol_name: String,
    pub members: Vec<MemberDescription>,
}

#[derive(Debug, Clone)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug)]
struct GroupEntry {
    group: Group,
    offsets: GroupOffsets,
    /// Offsets committed in transactions still open, by producer id: in force at the
    /// transaction's COMMIT marker, dropped at its ABORT marker.
    pending: BTreeMap<i64, GroupOffsets>,
    /// When the group last became empty (wall-clock ms): its offsets expire
    /// `offsets.retention.minutes` later (KIP-211). `None` while it has members.
    empty_since_ms: Option<i64>,
    /// The group has had members (now, before, or before a restart: a generation was
    /// recorded), so its offsets expire from when it became empty, not from their commit.
    had_members: bool,
}

impl GroupEntry {
    fn new(group_id: &str, generation_id: i32, now_ms: i64) -> Self {
        Self {
            group: Group::new(group_id.to_string(), generation_id),
            offsets: GroupOffsets::new(),
            pending: BTreeMap::new(),
            empty_since_ms: Some(now_ms),
            had_members: generation_id > 0,
        }
    }

    /// A plain commit or deletion of `key` was written: it supersedes any transactional
    /// commit of the key still pending, whose record is older (so the log, folded at a
    /// restart or compacted, says the same).
    fn supersede_pending(&mut self, key: &(String, PartitionIndex)) {
        for pending in self.pending.values_mut() {
            pending.remove(key);
        }
        self.pending.retain(|_, pending| !pending.is_empty());
    }

    /// Whether an open transaction has committed `key`.
    fn has_pending(&self, key: &(String, PartitionIndex)) -> bool {
        self.pending
            .values()
            .any(|pending| pending.contains_key(key))
    }

    /// Notes when the group became empty (or that it no longer is).
    fn note_membership(&mut self, now_ms: i64) {
        if self.group.members.is_empty() {
            self.empty_since_ms.get_or_insert(now_ms);
        } else {
            self.empty_since_ms = None;
            self.had_members = true;
        }
    }
}

#[derive(Debug)]
pub struct Coordinator {
    config: GroupConfig,
    groups: Mutex<HashMap<String, GroupEntry>>,
    offsets_topic: Arc<Topic>,
    /// Serialises writes to the offsets topic with the in-memory update that follows, so the
    /// order in memory is the order in the log. Held across the write, so an async lock.
    write_lock: tokio::sync::Mutex<()>,
    clock: Arc<dyn Clock>,
    /// Woken when a request may have brought a group's next deadline forward.
    deadlines_changed: tokio::sync::Notify,
}

impl Coordinator {
    /// Opens (creating if needed) `__consumer_offsets` and loads every group's offsets.
    pub(crate) async fn open(
        config: GroupConfig,
        topics: &Arc<Topics>,
        clock: Arc<dyn Clock>,
        pool: BlockingPool,
    ) -> Result<Self> {
        let now_ms = clock.now_ms();
        let offsets_topic = match topics.get(OFFSETS_TOPIC) {
            Some(topic) => topic,
            None => {
                let overrides = BTreeMap::from([
                    ("cleanup.policy".to_string(), "compact".to_string()),
                    ("segment.bytes".to_string(), (100 * 1024 * 1024).to_string()),
                ]);
                let topics = Arc::clone(topics);
                pool.run(move || topics.create(OFFSETS_TOPIC, 1, overrides, false, now_ms))
                    .await?
            }
        };
        let entries = offsets::load(&*offsets_topic.partition(OFFSETS_PARTITION)?, &pool).await?;
        let mut groups = HashMap::new();
        for (group_id, folded) in offsets::fold(entries) {
            // Loaded groups have no members: empty from start-up on, as far as expiry goes
            // (members left at the latest when the broker stopped).
            let mut entry = GroupEntry::new(&group_id, folded.generation_id, now_ms);
            entry.offsets = folded.offsets;
            entry.pending = folded.pending;
            groups.insert(group_id, entry);
        }
        tracing::info!(
            groups = groups.len(),
            "group coordinator loaded committed offsets"
        );
        Ok(Self {
            config,
            groups: Mutex::new(groups),
            offsets_topic,
            write_lock: tokio::sync::Mutex::new(()),
            clock,
            deadlines_changed: tokio::sync::Notify::new(),
        })
    }

    fn groups(&self) -> MutexGuard<'_, HashMap<String, GroupEntry>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_session_timeout(&self, timeout_ms: i32) -> Result<()> {
        let (min_ms, max_ms) = (
            self.config.session_timeout_min_ms,
            self.config.session_timeout_max_ms,
        );
        if (min_ms..=max_ms).contains(&timeout_ms) {
            Ok(())
        } else {
            Err(Error::InvalidSessionTimeout {
                timeout_ms,
                min_ms,
                max_ms,
            })
        }
    }

    /// Enters a member into the group's rebalance round; the answer may come later, when
    /// the round's join phase completes.
    pub async fn join(&self, group_id: &str, request: JoinRequest) -> Reply<Joined> {
        let (reply, new_generation) = self.join_in_memory(group_id, request);
        self.deadlines_changed.notify_one();
        if let Some(generation) = new_generation {
            self.record_generation(group_id, generation).await;
        }
        reply
    }

    /// The in-memory part of a join: the reply, and the group's new generation if the join
    /// started one.
    fn join_in_memory(&self, group_id: &str, request: JoinRequest) -> (Reply<Joined>, Option<i32>) {
        let checked = (|| {
            validate_group_id(group_id)?;
            self.check_session_timeout(request.session_timeout.as_millis() as i32)
        })();
        if let Err(error) = checked {
            return (Reply::Now(Err(error)), None);
        }
        let mut groups = self.groups();
        if !groups.contains_key(group_id) {
            if !request.member_id.is_empty() {
                let error = Error::UnknownMemberId {
                    member_id: request.member_id,
                };
                return (Reply::Now(Err(error)), None);
            }
            if groups.len() >= self.config.groups_max {
                return (Reply::Now(Err(Error::CoordinatorNotAvailable)), None);
            }
        }
        let now_ms = self.clock.now_ms();
        let entry = groups
            .entry(group_id.to_string())
            .or_insert_with(|| GroupEntry::new(group_id, 0, now_ms));
        if request.member_id.is_empty() && entry.group.members.len() >= self.config.members_max {
            let error = Error::GroupMaxSizeReached {
                group_id: group_id.to_string(),
            };
            return (Reply::Now(Err(error)), None);
        }
        let generation_before = entry.group.generation_id;
        let reply = entry.group.join(
            request,
            self.clock.now(),
            self.config.initial_rebalance_delay,
        );
        let generation = entry.group.generation_id;
        entry.note_membership(now_ms);
        (
            reply,
            (generation != generation_before).then_some(generation),
        )
    }

    pub fn sync(
        &self,
        group_id: &str,
        identity: Identity<'_>,
        assignments: Vec<(String, Bytes)>,
    ) -> Reply<Synced> {
        let reply = match self.groups().get_mut(group_id) {
            Some(entry) => entry.group.sync(identity, assignments, self.clock.now()),
            None => Reply::Now(Err(Error::UnknownMemberId {
                member_id: identity.member_id.to_string(),
            })),
        };
        self.deadlines_changed.notify_one();
        reply
    }

    pub fn heartbeat(&self, group_id: &str, identity: Identity<'_>) -> Result<()> {
        match self.groups().get_mut(group_id) {
            Some(entry) => entry.group.heartbeat(identity, self.clock.now()),
            None => Err(Error::UnknownMemberId {
                member_id: identity.member_id.to_string(),
            }),
        }
    }

    /// Removes members; one result per `(member id, instance id)` given.
    pub fn leave(&self, group_id: &str, members: &[(String, Option<String>)]) -> Vec<Result<()>> {
        let mut groups = self.groups();
        let now = self.clock.now();
        let results = members
            .iter()
            .map(|(member_id, instance)| match groups.get_mut(group_id) {
                Some(entry) => entry.group.leave(member_id, instance.as_deref(), now),
                None => Err(Error::UnknownMemberId {
                    member_id: member_id.clone(),
                }),
            })
            .collect();
        if let Some(entry) = groups.get_mut(group_id) {
            entry.note_membership(self.clock.now_ms());
        }
        self.deadlines_changed.notify_one();
        results
    }

    /// The earliest instant at which time alone changes some group.
    pub(crate) fn next_deadline(&self) -> Option<std::time::Instant> {
        let now = self.clock.now();
        self.groups()
            .values()
            .filter_map(|e| e.group.next_deadline(now))
            .min()
    }

    /// Completes when a request may have brought the next deadline forward.
    pub(crate) async fn deadlines_changed(&self) {
        self.deadlines_changed.notified().await;
    }

    /// Expires sessions and completes rounds whose time is up.
    pub(crate) async fn tick(&self) {
        for (group_id, generation_id) in self.tick_in_memory() {
            self.record_generation(&group_id, generation_id).await;
        }
    }

    /// Moves every group's clock on; returns the groups that started a new generation.
    fn tick_in_memory(&self) -> Vec<(String, i32)> {
        let (now, now_ms) = (self.clock.now(), self.clock.now_ms());
        let mut changed = Vec::new();
        let mut groups = self.groups();
        for (group_id, entry) in groups.iter_mut() {
            let before = entry.group.generation_id;
            entry.group.tick(now);
            entry.note_membership(now_ms);
            if entry.group.generation_id != before {
                changed.push((group_id.clone(), entry.group.generation_id));
            }
        }
        // An empty group without commits keeps nothing worth listing: forgotten at once, so
        // group ids cannot fill the coordinator (its generation record, if any, is harmless).
        groups.retain(|_, e| !(e.group.is_idle() && e.offsets.is_empty()));
        changed
    }

    /// Persists a group's new generation so generations keep increasing across restarts.
    /// Losing this write is harmless (members rejoin after a restart anyway), so it is logged,
    /// not returned.
    async fn record_generation(&self, group_id: &str, generation_id: i32) {
        // Ordered with tombstones (expiry, DeleteGroups), so none lands after one.
        let _write = self.write_lock.lock().await;
        let entry = Entry::Group {
            group_id: group_id.to_string(),
            generation_id: Some(generation_id),
        };
        if let Err(error) = self.write(vec![entry]).await {
            tracing::warn!(group = group_id, %error, "cannot record the group generation");
        }
    }

    /// Appends entries to the offsets topic as one batch, durable as `acks=all` is before
    /// this returns (what a commit promises).
    async fn write(&self, entries: Vec<Entry>) -> Result<()> {
        let now_ms = self.clock.now_ms();
        self.append(offsets::encode_batch(&entries, None, now_ms)?)
            .await
    }

    /// Appends a batch to the offsets partition, durable before this returns.
    async fn append(&self, batch: Bytes) -> Result<()> {
        let partition = self.offsets_topic.partition(OFFSETS_PARTITION)?;
        let appended = partition.append(batch, self.clock.now_ms()).await?;
        partition.make_durable(appended.last_offset).await
    }

    /// Every group: id, protocol type, state.
    pub fn list(&self) -> Vec<(String, String, GroupState)> {
        let mut listed: Vec<_> = self
            .groups()
            .values()
            .filter(|e| e.group.state != GroupState::Dead)
            .map(|e| {
                (
                    e.group.group_id.clone(),
                    e.group
                        .protocol_type
                        .clone()
                        .unwrap_or_else(|| "consumer".into()),
                    e.group.state,
                )
            })
            .collect();
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        listed
    }

    pub fn describe(&self, group_id: &str) -> Option<Description> {
        let groups = self.groups();
        let group = &groups.get(group_id)?.group;
        let protocol = group.protocol_name.clone();
        Some(Description {
            state: group.state,
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol_name: protocol.clone().unwrap_or_default(),
            members: group
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m.metadata(protocol.as_deref()),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        })
    }

    /// Deletes an empty group and its commits (DeleteGroups).
    pub async fn delete_group(&self, group_id: &str) -> Result<()> {
        let _write = self.write_lock.lock().await;
        let keys: Vec<(String, PartitionIndex)> = {
            let mut groups = self.groups();
            let entry = groups
                .get_mut(group_id)
                .filter(|e| e.group.state != GroupState::Dead)
                .ok_or_else(|| Error::GroupIdNotFound {
                    group_id: group_id.to_string(),
                })?;
            // Offsets an open transaction will commit would land in a deleted group.
            if !entry.pending.is_empty() {
                return Err(Error::NonEmptyGroup {
                    group_id: group_id.to_string(),
                });
            }
            entry.group.mark_dead()?;
            entry.offsets.keys().cloned().collect()
        };
        let mut tombstones: Vec<Entry> = keys
            .into_iter()
            .map(|(topic, partition)| Entry::Offset {
                group_id: group_id.to_string(),
                topic,
                partition,
                committed: None,
            })
            .collect();
        tombstones.push(Entry::Group {
            group_id: group_id.to_string(),
            generation_id: None,
        });
        let written = self.write(tombstones).await;
        let mut groups = self.groups();
        match written {
            Ok(()) => {
                groups.remove(group_id);
                Ok(())
            }
            Err(error) => {
                if let Some(entry) = groups.get_mut(group_id) {
                    entry.group.state = GroupState::Empty;
                }
                Err(error)
            }
        }
    }
}

impl Coordinator {
    /// (group, topic, partition, committed offset) of every commit, for lag metrics.
    pub fn all_offsets(&self) -> Vec<(String, String, PartitionIndex, Offset)> {
        self.groups()
            .iter()
            .flat_map(|(group_id, e)| {
                e.offsets
                    .iter()
                    .map(move |((t, p), c)| (group_id.clone(), t.clone(), *p, c.offset))
            })
            .collect()
    }
}

/// Kafka's rule: a group id is a non-empty string.
pub(crate) fn validate_group_id(group_id: &str) -> Result<()> {
    if group_id.is_empty() {
        return Err(Error::InvalidGroupId { reason: "empty" });
    }
    if group_id.len() > GROUP_ID_BYTES_MAX {
        return Err(Error::InvalidGroupId {
            reason: "longer than 4096 bytes",
        });
    }
    Ok(())
}

//! One consumer group's membership state machine (Kafka's classic rebalance protocol).
//!
//! `Empty` → (a member joins) → `PreparingRebalance` → (every member rejoined, or the
//! rebalance timeout passed) → `CompletingRebalance` → (the leader sent the assignment) →
//! `Stable`. A join with new metadata, a leave or an expired session starts the next round.
//! Join and sync requests that must wait for the round park a oneshot sender; whoever moves
//! the group on (another request, or the coordinator's tick) answers them.
//!
//! Nothing here does I/O or reads the clock: time is passed in, so every path is testable.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::{Error, Result};

mod session;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name Kafka's tools show (ListGroups, DescribeGroups).
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }
}

/// An answer now, or a receiver the answer will arrive on when the round moves on.
#[derive(Debug)]
pub enum Reply<T> {
    Now(Result<T>),
    Later(oneshot::Receiver<Result<T>>),
}

/// A JoinGroup as the state machine sees it.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a member without an id is given one and asked to join again.
    pub require_known_member_id: bool,
}

/// What a member learns when a round's join phase completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Every member with its metadata for the chosen protocol: the leader's only.
    pub members: Vec<JoinedMember>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

/// Who a request claims to be: member id, generation, static instance id.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    pub member_id: &'a str,
    pub generation_id: i32,
    pub group_instance_id: Option<&'a str>,
}

#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    pub(crate) protocols: Vec<(String, Bytes)>,
    pub(crate) assignment: Bytes,
    awaiting_join: Option<oneshot::Sender<Result<Joined>>>,
    awaiting_sync: Option<oneshot::Sender<Result<Synced>>>,
    /// The session expires at this instant unless a heartbeat (or any request) renews it.
    deadline: Instant,
    joined_sequence: u64,
}

impl Member {
    /// The metadata this member sent for `protocol`.
    pub(crate) fn metadata(&self, protocol: Option<&str>) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| Some(name.as_str()) == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) group_id: String,
    pub(crate) state: GroupState,
    pub(crate) generation_id: i32,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) leader: Option<String>,
    pub(crate) members: BTreeMap<String, Member>,
    /// `group.instance.id` → member id of static members.
    static_members: HashMap<String, String>,
    /// Member ids handed out by a v4+ JoinGroup that have not joined yet, with their expiry.
    pending_members: HashMap<String, Instant>,
    rebalance_deadline: Option<Instant>,
    /// A new group waits this long for more members before its first round completes.
    initial_delay_until: Option<Instant>,
    join_sequence: u64,
}

impl Group {
    pub(crate) fn new(group_id: String, generation_id: i32) -> Self {
        Self {
            group_id,
            state: GroupState::Empty,
            generation_id,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            rebalance_deadline: None,
            initial_delay_until: None,
            join_sequence: 0,
        }
    }

    pub(crate) fn join(
        &mut self,
        request: JoinRequest,
        now: Instant,
        initial_delay: Duration,
    ) -> Reply<Joined> {
        if let Err(error) = self.check_protocols(&request) {
            return Reply::Now(Err(error));
        }
        if request.member_id.is_empty() {
            return self.join_new(request, now, initial_delay);
        }
        let member_id = request.member_id.clone();
        if let Some(instance) = &request.group_instance_id
            && self.static_members.get(instance) != Some(&member_id)
        {
            return Reply::Now(Err(Error::FencedInstanceId {
                instance_id: instance.clone(),
            }));
        }
        if self.pending_members.remove(&member_id).is_some() {
            return self.add_member(member_id, request, now, initial_delay);
        }
        let Some(member) = self.members.get_mut(&member_id) else {
            return Reply::Now(Err(Error::UnknownMemberId { member_id }));
        };
        let unchanged = member.protocols == request.protocols;
        member.protocols = request.protocols;
        member.session_timeout = request.session_timeout;
        member.rebalance_timeout = request.rebalance_timeout;
        member.deadline = now + member.session_timeout;
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        match self.state {
            GroupState::PreparingRebalance => {}
            GroupState::CompletingRebalance if unchanged => {
                return Reply::Now(Ok(self.joined(&member_id)));
            }
            GroupState::Stable if unchanged && !is_leader => {
                return Reply::Now(Ok(self.joined(&member_id)));
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.prepare_rebalance(now, Duration::ZERO);
            }
            GroupState::Empty | GroupState::Dead => {
                return Reply::Now(Err(Error::UnknownMemberId { member_id }));
            }
        }
        let receiver = self.park_join(&member_id);
        self.maybe_complete_join(now);
        receiver
    }

    fn join_new(&mut self, request: JoinRequest, now: Instant, delay: Duration) -> Reply<Joined> {
        let prefix = request
            .group_instance_id
            .as_deref()
            .unwrap_or(&request.client_id);
        let member_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
        if let Some(instance) = request.group_instance_id.clone() {
            if let Some(old_id) = self.static_members.get(&instance).cloned() {
                return self.replace_static_member(old_id, member_id, request, now, delay);
            }
            self.static_members.insert(instance, member_id.clone());
            return self.add_member(member_id, request, now, delay);
        }
        if request.require_known_member_id {
            self.pending_members
                .insert(member_id.clone(), now + request.session_timeout);
            return Reply::Now(Err(Error::MemberIdRequired { member_id }));
        }
        self.add_member(member_id, request, now, delay)
    }

    /// A static member came back with a new member id: the old id is fenced, the new one
    /// takes its place (and its assignment) without a rebalance if nothing else changed.
    fn replace_static_member(
        &mut self,
        old_id: String,
        new_id: String,
        request: JoinRequest,
        now: Instant,
        delay: Duration,
    ) -> Reply<Joined> {
        let Some(mut member) = self.members.remove(&old_id) else {
            return self.add_member(new_id, request, now, delay);
        };
        let fenced = || Error::FencedInstanceId {
            instance_id: request.group_instance_id.clone().unwrap_or_default(),
        };
        if let Some(reply) = member.awaiting_join.take() {
            let _ = reply.send(Err(fenced()));
        }
        if let Some(reply) = member.awaiting_sync.take() {
            let _ = reply.send(Err(fenced()));
        }
        let unchanged = member.protocols == request.protocols;
        member.member_id = new_id.clone();
        member.protocols = request.protocols;
        member.session_timeout = request.session_timeout;
        member.rebalance_timeout = request.rebalance_timeout;
        member.deadline = now + member.session_timeout;
        if let Some(instance) = &request.group_instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(new_id.clone());
        }
        self.members.insert(new_id.clone(), member);
        if self.state == GroupState::Stable && unchanged {
            return Reply::Now(Ok(self.joined(&new_id)));
        }
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now, delay);
        }
        let receiver = self.park_join(&new_id);
        self.maybe_complete_join(now);
        receiver
    }

    fn add_member(
        &mut self,
        member_id: String,
        request: JoinRequest,
        now: Instant,
        initial_delay: Duration,
    ) -> Reply<Joined> {
        self.join_sequence += 1;
        self.protocol_type = Some(request.protocol_type);
        self.members.insert(
            member_id.clone(),
            Member {
                member_id: member_id.clone(),
                group_instance_id: request.group_instance_id,
                client_id: request.client_id,
                client_host: request.client_host,
                session_timeout: request.session_timeout,
                rebalance_timeout: request.rebalance_timeout,
                protocols: request.protocols,
                assignment: Bytes::new(),
                awaiting_join: None,
                awaiting_sync: None,
                deadline: now + request.session_timeout,
                joined_sequence: self.join_sequence,
            },
        );
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now, initial_delay);
        }
        let receiver = self.park_join(&member_id);
        self.maybe_complete_join(now);
        receiver
    }

    /// Every member must speak the group's protocol type and share a protocol with it.
    fn check_protocols(&self, request: &JoinRequest) -> Result<()> {
        let inconsistent = || Error::InconsistentGroupProtocol {
            group_id: self.group_id.clone(),
        };
        if request.protocols.is_empty() || request.protocol_type.is_empty() {
            return Err(inconsistent());
        }
        let has_others = self
            .members
            .values()
            .any(|m| m.member_id != request.member_id);
        if !has_others {
            return Ok(());
        }
        if self.protocol_type.as_deref() != Some(request.protocol_type.as_str()) {
            return Err(inconsistent());
        }
        let shared = |name: &str| others_support(&self.members, &request.member_id, name);
        if request.protocols.iter().any(|(name, _)| shared(name)) {
            Ok(())
        } else {
            Err(inconsistent())
        }
    }

    fn park_join(&mut self, member_id: &str) -> Reply<Joined> {
        let (sender, receiver) = oneshot::channel();
        match self.members.get_mut(member_id) {
            Some(member) => {
                if let Some(previous) = member.awaiting_join.replace(sender) {
                    let _ = previous.send(Err(Error::UnknownMemberId {
                        member_id: member_id.to_string(),
                    }));
                }
                Reply::Later(receiver)
            }
            None => Reply::Now(Err(Error::UnknownMemberId {
                member_id: member_id.to_string(),
            })),
        }
    }

    /// Starts a round: members get until the rebalance timeout to rejoin.
    fn prepare_rebalance(&mut self, now: Instant, initial_delay: Duration) {
        if self.state == GroupState::CompletingRebalance {
            for member in self.members.values_mut() {
                if let Some(reply) = member.awaiting_sync.take() {
                    let _ = reply.send(Err(Error::RebalanceInProgress));
                }
            }
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        self.initial_delay_until =
            (self.state == GroupState::Empty).then(|| now + initial_delay.min(timeout));
        self.state = GroupState::PreparingRebalance;
        self.rebalance_deadline = Some(now + timeout);
    }

    /// Completes the join phase once every member rejoined (after a new group's initial
    /// delay) or the rebalance timeout passed, dropping members that did not rejoin.
    fn maybe_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let all_joined = self.members.values().all(|m| m.awaiting_join.is_some())
            && self.pending_members.is_empty();
        let delay_passed = self.initial_delay_until.is_none_or(|until| now >= until);
        let timed_out = self.rebalance_deadline.is_some_and(|d| now >= d);
        if !(all_joined && delay_passed || timed_out) {
            return;
        }
        let absent: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in absent {
            tracing::info!(group = %self.group_id, member = %member_id, "member did not rejoin in time; removed");
            self.remove_member(&member_id);
        }
        self.pending_members.clear();
        self.generation_id = self.generation_id.wrapping_add(1).max(1);
        self.rebalance_deadline = None;
        self.initial_delay_until = None;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol_name = None;
            self.leader = None;
            return;
        }
        self.protocol_name = self.select_protocol();
        let leader_gone = !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l));
        if leader_gone {
            self.leader = self
                .members
                .values()
                .min_by_key(|m| m.joined_sequence)
                .map(|m| m.member_id.clone());
        }
        self.state = GroupState::CompletingRebalance;
        tracing::info!(group = %self.group_id, generation = self.generation_id, members = self.members.len(), "rebalance: join phase complete");
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for member_id in ids {
            let joined = self.joined(&member_id);
            if let Some(member) = self.members.get_mut(&member_id) {
                member.deadline = now + member.session_timeout;
                if let Some(reply) = member.awaiting_join.take() {
                    let _ = reply.send(Ok(joined));
                }
            }
        }
    }

    /// The protocol every member supports that most members prefer.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().min_by_key(|m| m.joined_sequence)?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
            .collect();
        let votes = |name: &str| {
            self.members
                .values()
                .filter(|m| {
                    m.protocols
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .find(|n| candidates.contains(n))
                        == Some(name)
                })
                .count()
        };
        let best = candidates.iter().map(|c| votes(c)).max()?;
        candidates
            .iter()
            .find(|c| votes(c) == best)
            .map(|c| (*c).to_string())
    }

    fn joined(&self, member_id: &str) -> Joined {
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .values()
                .map(|m| JoinedMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata(self.protocol_name.as_deref()),
                })
                .collect()
        } else {
            Vec::new()
        };
        Joined {
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader,
            member_id: member_id.to_string(),
            members,
        }
    }
}

fn others_support(members: &BTreeMap<String, Member>, except: &str, protocol: &str) -> bool {
    members
        .values()
        .filter(|m| m.member_id != except)
        .all(|m| m.protocols.iter().any(|(name, _)| name == protocol))
}

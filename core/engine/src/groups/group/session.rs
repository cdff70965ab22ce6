//! The requests a member makes between rebalances, and time passing: heartbeats, syncs,
//! leaves, commit checks, session expiry.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{Group, GroupState, Identity, Reply, Synced};
use crate::{Error, Result};

impl Group {
    /// Checks that `identity` is a current member of this generation.
    fn check_member(&self, identity: Identity<'_>) -> Result<()> {
        if self.state == GroupState::Dead {
            return Err(Error::CoordinatorNotAvailable);
        }
        if let Some(instance) = identity.group_instance_id
            && self
                .static_members
                .get(instance)
                .is_some_and(|id| id != identity.member_id)
        {
            return Err(Error::FencedInstanceId {
                instance_id: instance.to_string(),
            });
        }
        if !self.members.contains_key(identity.member_id) {
            return Err(Error::UnknownMemberId {
                member_id: identity.member_id.to_string(),
            });
        }
        if identity.generation_id != self.generation_id {
            return Err(Error::IllegalGeneration {
                generation_id: identity.generation_id,
                current: self.generation_id,
            });
        }
        Ok(())
    }

    fn touch(&mut self, member_id: &str, now: Instant) {
        if let Some(member) = self.members.get_mut(member_id) {
            member.deadline = now + member.session_timeout;
        }
    }

    pub(crate) fn heartbeat(&mut self, identity: Identity<'_>, now: Instant) -> Result<()> {
        self.check_member(identity)?;
        self.touch(identity.member_id, now);
        match self.state {
            GroupState::PreparingRebalance => Err(Error::RebalanceInProgress),
            GroupState::CompletingRebalance | GroupState::Stable => Ok(()),
            GroupState::Empty | GroupState::Dead => Err(Error::UnknownMemberId {
                member_id: identity.member_id.to_string(),
            }),
        }
    }

    pub(crate) fn sync(
        &mut self,
        identity: Identity<'_>,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Reply<Synced> {
        if let Err(error) = self.check_member(identity) {
            return Reply::Now(Err(error));
        }
        self.touch(identity.member_id, now);
        match self.state {
            GroupState::PreparingRebalance => Reply::Now(Err(Error::RebalanceInProgress)),
            GroupState::Stable => Reply::Now(Ok(self.synced(identity.member_id))),
            GroupState::Empty | GroupState::Dead => Reply::Now(Err(Error::UnknownMemberId {
                member_id: identity.member_id.to_string(),
            })),
            GroupState::CompletingRebalance => {
                let (sender, receiver) = oneshot::channel();
                if let Some(member) = self.members.get_mut(identity.member_id) {
                    member.awaiting_sync = Some(sender);
                }
                if self.leader.as_deref() == Some(identity.member_id) {
                    self.assign(assignments);
                }
                Reply::Later(receiver)
            }
        }
    }

    /// The leader's assignment arrived: the group is stable and every waiting member learns
    /// its part.
    fn assign(&mut self, assignments: Vec<(String, Bytes)>) {
        let mut assignments: HashMap<String, Bytes> = assignments.into_iter().collect();
        for member in self.members.values_mut() {
            member.assignment = assignments.remove(&member.member_id).unwrap_or_default();
        }
        self.state = GroupState::Stable;
        tracing::info!(group = %self.group_id, generation = self.generation_id, "rebalance complete: group stable");
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for member_id in ids {
            let synced = self.synced(&member_id);
            if let Some(reply) = self
                .members
                .get_mut(&member_id)
                .and_then(|m| m.awaiting_sync.take())
            {
                let _ = reply.send(Ok(synced));
            }
        }
    }

    fn synced(&self, member_id: &str) -> Synced {
        Synced {
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    /// A member leaves (LeaveGroup): by member id, or by instance id for static members.
    pub(crate) fn leave(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        now: Instant,
    ) -> Result<()> {
        let member_id = match group_instance_id {
            Some(instance) => {
                let known = self.static_members.get(instance).cloned();
                match known {
                    Some(id) if member_id.is_empty() || id == member_id => id,
                    Some(_) => {
                        return Err(Error::FencedInstanceId {
                            instance_id: instance.to_string(),
                        });
                    }
                    None => {
                        return Err(Error::UnknownMemberId {
                            member_id: member_id.to_string(),
                        });
                    }
                }
            }
            None => member_id.to_string(),
        };
        if self.pending_members.remove(&member_id).is_some() {
            self.maybe_complete_join(now);
            return Ok(());
        }
        if !self.members.contains_key(&member_id) {
            return Err(Error::UnknownMemberId { member_id });
        }
        tracing::info!(group = %self.group_id, member = %member_id, "member left");
        self.remove_member(&member_id);
        self.after_removal(now);
        Ok(())
    }

    pub(super) fn remove_member(&mut self, member_id: &str) {
        if let Some(mut member) = self.members.remove(member_id) {
            let gone = || Error::UnknownMemberId {
                member_id: member_id.to_string(),
            };
            if let Some(reply) = member.awaiting_join.take() {
                let _ = reply.send(Err(gone()));
            }
            if let Some(reply) = member.awaiting_sync.take() {
                let _ = reply.send(Err(gone()));
            }
            if let Some(instance) = &member.group_instance_id
                && self.static_members.get(instance).map(String::as_str) == Some(member_id)
            {
                self.static_members.remove(instance);
            }
        }
    }

    fn after_removal(&mut self, now: Instant) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, Duration::ZERO);
                self.maybe_complete_join(now);
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Time passes: expired sessions are removed and timed-out rounds complete.
    pub(crate) fn tick(&mut self, now: Instant) {
        let expired_pending = self.pending_members.len();
        self.pending_members.retain(|_, expiry| *expiry > now);
        let mut changed = self.pending_members.len() != expired_pending;
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.awaiting_sync.is_none() && m.deadline <= now)
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in expired {
            tracing::info!(group = %self.group_id, member = %member_id, "session timed out; member removed");
            self.remove_member(&member_id);
            changed = true;
        }
        if changed {
            self.after_removal(now);
        } else {
            self.maybe_complete_join(now);
        }
    }

    /// Whether a commit from `identity` may be stored. Generation -1 with no member id is an
    /// admin or standalone consumer's commit, allowed while the group has no members.
    /// TxnOffsetCommit (KIP-447), as Kafka checks it: a member id, if given, must be a
    /// member (and its static instance's); a generation, if given (0 or more), must be the
    /// group's. A commit naming neither (a producer outside any group's membership) is
    /// accepted. A rebalance does not stop it: the transaction decides.
    pub(crate) fn check_transactional_commit(&self, identity: Identity<'_>) -> Result<()> {
        if self.state == GroupState::Dead {
            return Err(Error::CoordinatorNotAvailable);
        }
        if !identity.member_id.is_empty() {
            self.check_member(Identity {
                generation_id: self.generation_id,
                ..identity
            })?;
        }
        if identity.generation_id >= 0 && identity.generation_id != self.generation_id {
            return Err(Error::IllegalGeneration {
                generation_id: identity.generation_id,
                current: self.generation_id,
            });
        }
        Ok(())
    }

    pub(crate) fn check_commit(&mut self, identity: Identity<'_>, now: Instant) -> Result<()> {
        if self.state == GroupState::Dead {
            return Err(Error::CoordinatorNotAvailable);
        }
        if identity.generation_id < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        // Who and which generation first, as Kafka: a commit from an old generation during
        // a rebalance is ILLEGAL_GENERATION, not REBALANCE_IN_PROGRESS.
        self.check_member(identity)?;
        if self.state == GroupState::CompletingRebalance {
            return Err(Error::RebalanceInProgress);
        }
        self.touch(identity.member_id, now);
        Ok(())
    }

    /// The next instant at which time alone changes this group: a session or a pending
    /// member id expiring, a round's initial delay or rebalance timeout passing.
    /// An initial delay that passed while members are still missing changes nothing by
    /// itself (the missing join does), so only one still ahead of `now` counts.
    pub(crate) fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let sessions = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.awaiting_sync.is_none())
            .map(|m| m.deadline);
        let initial_delay = self.initial_delay_until.filter(|until| *until > now);
        let round = (self.state == GroupState::PreparingRebalance)
            .then_some([self.rebalance_deadline, initial_delay])
            .into_iter()
            .flatten()
            .flatten();
        sessions
            .chain(self.pending_members.values().copied())
            .chain(round)
            .min()
    }

    /// No members, none about to join: with no commits either, the group can be forgotten.
    pub(crate) fn is_idle(&self) -> bool {
        self.state == GroupState::Empty
            && self.members.is_empty()
            && self.pending_members.is_empty()
    }

    /// Ends the group (DeleteGroups); only an empty group may be deleted.
    pub(crate) fn mark_dead(&mut self) -> Result<()> {
        if self.state != GroupState::Empty || !self.members.is_empty() {
            return Err(Error::NonEmptyGroup {
                group_id: self.group_id.clone(),
            });
        }
        self.state = GroupState::Dead;
        Ok(())
    }
}

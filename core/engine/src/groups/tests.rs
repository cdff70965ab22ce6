//! The rebalance state machine, driven with explicit time.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::group::{Group, GroupState, Identity, JoinRequest, Joined, Reply, Synced};
use crate::{Error, Result};

const SESSION: Duration = Duration::from_secs(10);

fn request(member_id: &str, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_string(),
        group_instance_id: instance.map(str::to_string),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: SESSION,
        rebalance_timeout: Duration::from_secs(30),
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
        require_known_member_id: false,
    }
}

fn now_or_wait<T: std::fmt::Debug>(reply: Reply<T>) -> Result<T> {
    match reply {
        Reply::Now(result) => result,
        // Not answered yet: reported as the rebalance still going on.
        Reply::Later(mut receiver) => receiver
            .try_recv()
            .unwrap_or(Err(Error::RebalanceInProgress)),
    }
}

fn identity<'a>(joined: &'a Joined) -> Identity<'a> {
    Identity {
        member_id: &joined.member_id,
        generation_id: joined.generation_id,
        group_instance_id: None,
    }
}

/// Two members join a new group; returns their join results (leader first).
fn two_members(group: &mut Group, t0: Instant) -> (Joined, Joined) {
    let Reply::Later(mut first) = group.join(request("", None), t0, Duration::from_secs(3)) else {
        panic!("the first join waits for the initial delay");
    };
    let Reply::Later(mut second) = group.join(request("", None), t0, Duration::from_secs(3)) else {
        panic!("the second join waits too");
    };
    assert!(first.try_recv().is_err(), "still inside the initial delay");
    group.tick(t0 + Duration::from_secs(3));
    let first = first.try_recv().expect("answered").expect("joined");
    let second = second.try_recv().expect("answered").expect("joined");
    (first, second)
}

#[test]
fn members_join_sync_and_become_stable() {
    let t0 = Instant::now();
    let mut group = Group::new("g".into(), 0);
    let (leader, follower) = two_members(&mut group, t0);
    assert_eq!(leader.generation_id, 1);
    assert_eq!(leader.leader, leader.member_id);
    assert_eq!(
        leader.members.len(),
        2,
        "the leader gets every member's metadata"
    );
    assert!(follower.members.is_empty());
    assert_eq!(group.state, GroupState::CompletingRebalance);
    let Reply::Later(mut waiting) = group.sync(identity(&follower), vec![], t0) else {
        panic!("a follower waits for the leader's assignment");
    };
    let assignments = vec![
        (leader.member_id.clone(), Bytes::from_static(b"a")),
        (follower.member_id.clone(), Bytes::from_static(b"b")),
    ];
    let synced: Synced = now_or_wait(group.sync(identity(&leader), assignments, t0)).expect("ok");
    assert_eq!(synced.assignment, Bytes::from_static(b"a"));
    let synced = waiting.try_recv().expect("answered").expect("ok");
    assert_eq!(synced.assignment, Bytes::from_static(b"b"));
    assert_eq!(group.state, GroupState::Stable);
    assert!(group.heartbeat(identity(&follower), t0).is_ok());
    let stale = Identity {
        generation_id: 0,
        ..identity(&follower)
    };
    assert!(matches!(
        group.heartbeat(stale, t0),
        Err(Error::IllegalGeneration { .. })
    ));
}

#[test]
fn an_expired_session_starts_a_rebalance_without_the_member() {
    let t0 = Instant::now();
    let mut group = Group::new("g".into(), 0);
    let (leader, follower) = two_members(&mut group, t0);
    let assignments = vec![(leader.member_id.clone(), Bytes::new())];
    let _ = group.sync(identity(&leader), assignments, t0);
    let _ = group.sync(identity(&follower), vec![], t0);
    assert_eq!(group.state, GroupState::Stable);
    // The leader keeps heartbeating; the follower goes silent.
    let t1 = t0 + SESSION - Duration::from_secs(1);
    group.heartbeat(identity(&leader), t1).expect("alive");
    group.tick(t0 + SESSION + Duration::from_secs(1));
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert!(matches!(
        group.heartbeat(identity(&leader), t1),
        Err(Error::RebalanceInProgress)
    ));
    let rejoined = now_or_wait(group.join(request(&leader.member_id, None), t1, Duration::ZERO))
        .expect("the round completes when every remaining member rejoined");
    assert_eq!(rejoined.generation_id, 2);
    assert_eq!(rejoined.members.len(), 1);
}

#[test]
fn join_v4_asks_for_a_member_id_first_and_leave_rebalances() {
    let t0 = Instant::now();
    let mut group = Group::new("g".into(), 5);
    let mut first = request("", None);
    first.require_known_member_id = true;
    let member_id = match group.join(first, t0, Duration::ZERO) {
        Reply::Now(Err(Error::MemberIdRequired { member_id })) => member_id,
        other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
    };
    let joined =
        now_or_wait(group.join(request(&member_id, None), t0, Duration::ZERO)).expect("joined");
    assert_eq!(
        joined.generation_id, 6,
        "generations continue from the stored one"
    );
    assert!(matches!(
        group.join(request("someone-else", None), t0, Duration::ZERO),
        Reply::Now(Err(Error::UnknownMemberId { .. }))
    ));
    group.leave(&member_id, None, t0).expect("left");
    assert_eq!(group.state, GroupState::Empty);
    assert!(group.mark_dead().is_ok());
}

#[test]
fn a_static_member_returning_with_a_new_id_fences_the_old_one() {
    let t0 = Instant::now();
    let mut group = Group::new("g".into(), 0);
    let joined =
        now_or_wait(group.join(request("", Some("pod-1")), t0, Duration::ZERO)).expect("joined");
    let _ = group.sync(
        identity(&joined),
        vec![(joined.member_id.clone(), Bytes::from_static(b"x"))],
        t0,
    );
    assert_eq!(group.state, GroupState::Stable);
    let again =
        now_or_wait(group.join(request("", Some("pod-1")), t0, Duration::ZERO)).expect("rejoined");
    assert_ne!(again.member_id, joined.member_id);
    assert_eq!(
        again.generation_id, joined.generation_id,
        "no rebalance for a restart"
    );
    let old = Identity {
        group_instance_id: Some("pod-1"),
        ..identity(&joined)
    };
    assert!(matches!(
        group.heartbeat(old, t0),
        Err(Error::FencedInstanceId { .. })
    ));
    let synced = now_or_wait(group.sync(identity(&again), vec![], t0)).expect("stable");
    assert_eq!(
        synced.assignment,
        Bytes::from_static(b"x"),
        "keeps its assignment"
    );
}

#[test]
fn a_member_that_does_not_rejoin_is_dropped_at_the_rebalance_timeout() {
    let t0 = Instant::now();
    let mut group = Group::new("g".into(), 0);
    let (leader, follower) = two_members(&mut group, t0);
    let _ = group.sync(identity(&leader), vec![], t0);
    let _ = group.sync(identity(&follower), vec![], t0);
    let mut changed = request(&leader.member_id, None);
    changed.protocols = vec![
        ("roundrobin".into(), Bytes::new()),
        ("range".into(), Bytes::new()),
    ];
    let Reply::Later(mut waiting) = group.join(changed, t0, Duration::ZERO) else {
        panic!("a leader rejoining starts a round");
    };
    // The follower keeps heartbeating (told to rejoin) but never does.
    group.tick(t0 + Duration::from_secs(5));
    assert!(waiting.try_recv().is_err());
    group.tick(t0 + Duration::from_secs(31));
    let joined = waiting.try_recv().expect("answered").expect("joined");
    assert_eq!(joined.members.len(), 1);
    assert_eq!(joined.protocol_name.as_deref(), Some("roundrobin"));
}

#[test]
fn member_and_generation_are_checked_before_the_state() {
    let t0 = Instant::now();
    let mut group = Group::new("g".into(), 0);
    let (leader, follower) = two_members(&mut group, t0);
    assert_eq!(group.state, GroupState::CompletingRebalance);
    let stale = Identity {
        generation_id: leader.generation_id - 1,
        ..identity(&leader)
    };
    // Old generation during the rebalance: ILLEGAL_GENERATION, for commits, heartbeats and
    // syncs alike; the current generation is told the rebalance is on.
    assert!(matches!(
        group.check_commit(stale, t0),
        Err(Error::IllegalGeneration { .. })
    ));
    assert!(matches!(
        group.heartbeat(stale, t0),
        Err(Error::IllegalGeneration { .. })
    ));
    assert!(matches!(
        now_or_wait(group.sync(stale, vec![], t0)),
        Err(Error::IllegalGeneration { .. })
    ));
    let unknown = Identity {
        member_id: "nobody",
        ..identity(&follower)
    };
    assert!(matches!(
        group.check_commit(unknown, t0),
        Err(Error::UnknownMemberId { .. })
    ));
    assert!(matches!(
        group.check_commit(identity(&follower), t0),
        Err(Error::RebalanceInProgress)
    ));
}

#[test]
fn the_next_deadline_is_the_earliest_thing_time_alone_changes() {
    let t0 = Instant::now();
    let mut group = Group::new("g".into(), 0);
    assert_eq!(
        group.next_deadline(t0),
        None,
        "an empty group waits for nothing"
    );
    let Reply::Later(_first) = group.join(request("", None), t0, Duration::from_secs(3)) else {
        panic!("the first join waits for the initial delay");
    };
    // Preparing the first round: the initial delay, then the rebalance timeout.
    assert_eq!(group.next_deadline(t0), Some(t0 + Duration::from_secs(3)));
    let past_delay = t0 + Duration::from_secs(4);
    assert_eq!(
        group.next_deadline(past_delay),
        Some(t0 + Duration::from_secs(30)),
        "a passed initial delay no longer counts"
    );
    group.tick(t0 + Duration::from_secs(3));
    assert_eq!(group.state, GroupState::CompletingRebalance);
    // The member's session runs from the round's completion.
    assert_eq!(
        group.next_deadline(t0),
        Some(t0 + Duration::from_secs(3) + SESSION)
    );
}

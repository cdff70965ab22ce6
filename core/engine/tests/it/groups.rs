//! Group lifecycle as Kafka (KIP-211): empty groups stay listed until their offsets expire,
//! driven by a manual clock.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fjord_engine::{
    Commit, Engine, EngineConfig, GroupState, Identity, LeaderEpoch, ManualClock, Offset,
    PartitionIndex,
};

use crate::support::{START_MS, stable_member};

const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
const MS: Duration = Duration::from_millis(1);

async fn open(dir: &std::path::Path, clock: &Arc<ManualClock>) -> anyhow::Result<Arc<Engine>> {
    let mut config = EngineConfig::new(dir.to_path_buf());
    config.groups.initial_rebalance_delay = Duration::ZERO;
    let engine = Engine::open(config, Arc::clone(clock) as _).await?;
    for topic in ["subscribed", "other"] {
        if engine.topic(topic).is_none() {
            engine
                .create_topic(topic, 1, Default::default(), false)
                .await?;
        }
    }
    Ok(Arc::new(engine))
}

fn commit(topic: &str, offset: i64) -> Commit {
    Commit {
        topic: topic.into(),
        partition: PartitionIndex(0),
        offset: Offset(offset),
        leader_epoch: LeaderEpoch::UNKNOWN,
        metadata: None,
    }
}

/// ConsumerProtocolSubscription v0 for `topics`, as a consumer sends it in JoinGroup.
fn subscription(topics: &[&str]) -> Bytes {
    let mut bytes = vec![0, 0];
    bytes.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for topic in topics {
        bytes.extend_from_slice(&(topic.len() as i16).to_be_bytes());
        bytes.extend_from_slice(topic.as_bytes());
    }
    bytes.extend_from_slice(&(-1i32).to_be_bytes()); // no user data
    Bytes::from(bytes)
}

/// A stable one-member consumer group subscribed to `subscribed`: (member id, generation).
async fn member(engine: &Engine, group: &str) -> anyhow::Result<(String, i32)> {
    stable_member(engine, group, subscription(&["subscribed"])).await
}

fn listed(engine: &Engine) -> Vec<(String, GroupState)> {
    engine
        .groups()
        .list()
        .into_iter()
        .map(|(group, _, state)| (group, state))
        .collect()
}

#[tokio::test]
async fn standalone_commits_expire_a_retention_after_they_were_made() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clock = Arc::new(ManualClock::new(START_MS));
    let engine = open(dir.path(), &clock).await?;
    let admin = Identity {
        member_id: "",
        generation_id: -1,
        group_instance_id: None,
    };
    engine
        .commit_offsets("tool", admin, vec![commit("other", 5)])
        .await?;
    clock.advance(RETENTION - MS);
    assert_eq!(engine.run_offset_expiry().await?, (0, 0));
    assert_eq!(listed(&engine), [("tool".to_string(), GroupState::Empty)]);
    clock.advance(MS);
    assert_eq!(engine.run_offset_expiry().await?, (1, 1));
    assert!(listed(&engine).is_empty());
    Ok(())
}

#[tokio::test]
async fn an_empty_group_stays_listed_until_its_offsets_expire_and_not_after_a_restart()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clock = Arc::new(ManualClock::new(START_MS));
    let engine = open(dir.path(), &clock).await?;
    let (member_id, generation_id) = member(&engine, "billing").await?;
    let identity = Identity {
        member_id: &member_id,
        generation_id,
        group_instance_id: None,
    };
    let commits = vec![commit("subscribed", 10), commit("other", 3)];
    engine.commit_offsets("billing", identity, commits).await?;

    // With a member: the subscribed topic's offset stays, the other one expires by age.
    clock.advance(RETENTION);
    // Keep the member's session alive across the jump.
    engine.groups().heartbeat("billing", identity)?;
    assert_eq!(engine.run_offset_expiry().await?, (1, 0));
    let kept = engine.groups().fetch_offsets("billing", None);
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].0.as_str(), kept[0].2.as_ref().map(|c| c.offset)),
        ("subscribed", Some(Offset(10)))
    );

    // The last member leaves: EMPTY, listed, offsets kept for a retention from now.
    let left = engine
        .groups()
        .leave("billing", &[(member_id.clone(), None)]);
    assert!(left.iter().all(|r| r.is_ok()));
    assert_eq!(
        listed(&engine),
        [("billing".to_string(), GroupState::Empty)]
    );
    clock.advance(RETENTION - MS);
    assert_eq!(engine.run_offset_expiry().await?, (0, 0));
    clock.advance(MS);
    assert_eq!(engine.run_offset_expiry().await?, (1, 1));
    assert!(listed(&engine).is_empty());

    // The tombstones are in `__consumer_offsets`: a restart does not bring them back.
    engine.close().await?;
    let engine = open(dir.path(), &clock).await?;
    assert!(engine.groups().fetch_offsets("billing", None).is_empty());
    assert!(listed(&engine).is_empty());
    Ok(())
}

#[tokio::test]
async fn an_empty_group_can_be_deleted_before_its_offsets_expire() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clock = Arc::new(ManualClock::new(START_MS));
    let engine = open(dir.path(), &clock).await?;
    let (member_id, generation_id) = member(&engine, "short-lived").await?;
    let identity = Identity {
        member_id: &member_id,
        generation_id,
        group_instance_id: None,
    };
    engine
        .commit_offsets("short-lived", identity, vec![commit("subscribed", 1)])
        .await?;
    engine
        .groups()
        .leave("short-lived", &[(member_id.clone(), None)]);
    assert_eq!(
        listed(&engine),
        [("short-lived".to_string(), GroupState::Empty)]
    );
    engine.groups().delete_group("short-lived").await?;
    assert!(listed(&engine).is_empty());
    Ok(())
}

#[tokio::test]
async fn after_a_restart_a_group_that_had_members_keeps_its_offsets_a_retention_from_then()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clock = Arc::new(ManualClock::new(START_MS));
    let engine = open(dir.path(), &clock).await?;
    let (member_id, generation_id) = member(&engine, "quiet").await?;
    let identity = Identity {
        member_id: &member_id,
        generation_id,
        group_instance_id: None,
    };
    engine
        .commit_offsets("quiet", identity, vec![commit("subscribed", 7)])
        .await?;
    // The commit ages past the retention while the member stays; then the broker restarts.
    clock.advance(RETENTION * 2);
    engine.close().await?;
    let engine = open(dir.path(), &clock).await?;
    assert_eq!(
        engine.run_offset_expiry().await?,
        (0, 0),
        "empty only since start-up: kept"
    );
    clock.advance(RETENTION);
    assert_eq!(engine.run_offset_expiry().await?, (1, 1));
    Ok(())
}

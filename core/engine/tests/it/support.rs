//! Building engines and batches for the tests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fjord_engine::{Engine, EngineConfig, Hooks, Identity, JoinRequest, ManualClock, Reply};
use fjord_record::{BatchBuilder, Compression, NewRecord};

/// Wall-clock start of every test clock (2026-01-01).
pub(crate) const START_MS: i64 = 1_767_225_600_000;

pub(crate) struct TestEngine {
    pub(crate) engine: Arc<Engine>,
    pub(crate) clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

impl TestEngine {
    pub(crate) async fn open() -> anyhow::Result<Self> {
        Self::open_with(Hooks::default()).await
    }

    pub(crate) async fn open_with(hooks: Hooks) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut config = EngineConfig::new(dir.path().to_path_buf());
        config.groups.initial_rebalance_delay = Duration::ZERO;
        config.hooks = hooks;
        let clock = Arc::new(ManualClock::new(START_MS));
        let engine = Arc::new(Engine::open(config, Arc::clone(&clock) as _).await?);
        Ok(Self {
            engine,
            clock,
            _dir: dir,
        })
    }

    pub(crate) async fn topic(&self, name: &str, partitions: i32, configs: &[(&str, &str)]) {
        let overrides: BTreeMap<String, String> = configs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.engine
            .create_topic(name, partitions, overrides, false)
            .await
            .expect("topic created");
    }
}

/// One batch of `count` records keyed `key-<i % keys>` with values `value-<i>`.
pub(crate) fn batch(count: usize, keys: usize, timestamp_ms: i64) -> Bytes {
    let mut builder = BatchBuilder::new(Compression::None);
    for i in 0..count {
        let key = format!("key-{}", i % keys.max(1));
        let value = format!("value-{i}");
        builder
            .push(&NewRecord {
                timestamp_ms,
                key: Some(key.as_bytes()),
                value: Some(value.as_bytes()),
                headers: &[],
            })
            .expect("record fits");
    }
    Bytes::from(builder.build().expect("batch builds"))
}

/// A stable one-member consumer group: joins with `metadata` for the `range` protocol, syncs
/// as leader; returns the member id and generation.
pub(crate) async fn stable_member(
    engine: &Engine,
    group: &str,
    metadata: Bytes,
) -> anyhow::Result<(String, i32)> {
    let join = JoinRequest {
        member_id: String::new(),
        group_instance_id: None,
        client_id: "test".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: Duration::from_secs(30),
        rebalance_timeout: Duration::from_secs(30),
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), metadata)],
        require_known_member_id: false,
    };
    let joined = match engine.groups().join(group, join).await {
        Reply::Now(joined) => joined?,
        Reply::Later(receiver) => {
            engine.run_group_timers().await;
            receiver.await??
        }
    };
    let identity = Identity {
        member_id: &joined.member_id,
        generation_id: joined.generation_id,
        group_instance_id: None,
    };
    let assignment = vec![(joined.member_id.clone(), Bytes::new())];
    match engine.groups().sync(group, identity, assignment) {
        Reply::Now(synced) => synced?,
        Reply::Later(receiver) => receiver.await??,
    };
    Ok((joined.member_id, joined.generation_id))
}

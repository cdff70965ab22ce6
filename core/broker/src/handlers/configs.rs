//! What the config APIs share: resource types, config types, broker-level names.

use std::collections::BTreeMap;

use fjord_engine::Result;
use kafka_protocol::protocol::StrBytes;

use super::Context;
use crate::codes::{Refusal, error_code};

/// `ConfigResource.Type` values.
pub(crate) const RESOURCE_TOPIC: i8 = 2;
pub(crate) const RESOURCE_BROKER: i8 = 4;

/// `ConfigType` of a topic config, for DescribeConfigs v3+.
pub(crate) fn config_type(name: &str) -> i8 {
    const STRING: i8 = 2;
    const INT: i8 = 3;
    const LONG: i8 = 5;
    const LIST: i8 = 7;
    match name {
        "cleanup.policy" => LIST,
        "message.timestamp.type" => STRING,
        "max.message.bytes" | "segment.bytes" | "index.interval.bytes" => INT,
        _ => LONG,
    }
}

/// Broker settings under Kafka's broker names: the topic defaults as `log.*` and friends.
pub(crate) fn broker_entries(context: &Context) -> Vec<(String, String)> {
    let config = context.config();
    let engine = context.engine().config();
    let broker_name = |topic_name: &str| -> String {
        match topic_name {
            "max.message.bytes" => "message.max.bytes".into(),
            "segment.ms" => "log.roll.ms".into(),
            "delete.retention.ms" => "log.cleaner.delete.retention.ms".into(),
            "file.delete.delay.ms" => "log.segment.delete.delay.ms".into(),
            "flush.messages" => "log.flush.interval.messages".into(),
            "flush.ms" => "log.flush.interval.ms".into(),
            other => format!("log.{other}"),
        }
    };
    let mut entries: Vec<(String, String)> = context
        .engine()
        .topic_defaults()
        .entries()
        .into_iter()
        .map(|(name, value)| (broker_name(name), value))
        .collect();
    entries.extend([
        ("broker.id".into(), config.node_id.to_string()),
        (
            "num.partitions".into(),
            engine.default_partitions.to_string(),
        ),
        (
            "auto.create.topics.enable".into(),
            engine.auto_create_topics.to_string(),
        ),
        (
            "socket.request.max.bytes".into(),
            config.request_bytes_max.to_string(),
        ),
        ("max.connections".into(), config.connections_max.to_string()),
        (
            "max.incremental.fetch.session.cache.slots".into(),
            config.fetch_session_cache_slots.to_string(),
        ),
        (
            "max.connections.per.ip".into(),
            config.connections_per_ip_max.to_string(),
        ),
        (
            "group.initial.rebalance.delay.ms".into(),
            engine
                .groups
                .initial_rebalance_delay
                .as_millis()
                .to_string(),
        ),
        (
            "group.min.session.timeout.ms".into(),
            engine.groups.session_timeout_min_ms.to_string(),
        ),
        (
            "offsets.retention.minutes".into(),
            (engine.groups.offsets_retention.as_secs() / 60).to_string(),
        ),
        (
            "offsets.retention.check.interval.ms".into(),
            engine
                .groups
                .offsets_retention_check_interval
                .as_millis()
                .to_string(),
        ),
        (
            "group.max.session.timeout.ms".into(),
            engine.groups.session_timeout_max_ms.to_string(),
        ),
    ]);
    entries.sort();
    entries
}

/// What AlterConfigs and IncrementalAlterConfigs share: refuse anything but a topic, work out
/// the new overrides (`overrides`, which may read the topic), hand them to the engine. The
/// error is the Kafka code and message the response carries.
pub(crate) async fn alter_topic(
    context: &Context,
    resource_type: i8,
    topic: &str,
    validate_only: bool,
    overrides: impl FnOnce() -> Result<BTreeMap<String, String>>,
) -> std::result::Result<(), (i16, StrBytes)> {
    if resource_type != RESOURCE_TOPIC {
        let message = "only topic configs can be altered; broker settings are set at start-up";
        return Err((
            Refusal::InvalidRequest.code(),
            StrBytes::from_static_str(message),
        ));
    }
    let altered = match overrides() {
        Ok(overrides) => {
            context
                .engine()
                .alter_topic_config(topic, overrides, validate_only)
                .await
        }
        Err(error) => Err(error),
    };
    altered.map_err(|error| (error_code(&error), StrBytes::from_string(error.to_string())))
}

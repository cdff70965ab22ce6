//! CreateTopics: new topics with partition counts and config overrides.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use super::{Context, since};
use crate::codes::error_code;
use fjord_engine::{Error, Result};

pub(crate) async fn handle(
    context: &Context,
    version: i16,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let validate_only = request.validate_only;
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.clone();
        topics.push(match create(context, version, topic, validate_only).await {
            Ok(result) => result.with_name(name),
            Err(error) => CreatableTopicResult::default()
                .with_name(name)
                .with_error_code(error_code(&error))
                .with_error_message(Some(StrBytes::from_string(error.to_string())))
                .with_num_partitions(-1)
                .with_replication_factor(-1),
        });
    }
    CreateTopicsResponse::default().with_topics(topics)
}

async fn create(
    context: &Context,
    version: i16,
    topic: CreatableTopic,
    validate_only: bool,
) -> Result<CreatableTopicResult> {
    if !matches!(topic.replication_factor, -1 | 1) {
        return Err(Error::InvalidReplicationFactor {
            factor: topic.replication_factor,
        });
    }
    let partitions = match (topic.num_partitions, topic.assignments.len()) {
        (-1, 0) => context.engine().config().default_partitions,
        (-1, assigned) => i32::try_from(assigned).unwrap_or(i32::MAX),
        (count, _) => count,
    };
    let overrides: BTreeMap<String, String> = topic
        .configs
        .iter()
        .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
        .collect();
    let created = context
        .engine()
        .create_topic(&topic.name, partitions, overrides, validate_only)
        .await?;
    Ok(CreatableTopicResult::default()
        .with_topic_id(since(version, 7, created.id, Default::default()))
        .with_num_partitions(since(version, 5, partitions, -1))
        .with_replication_factor(since(version, 5, 1, -1)))
}

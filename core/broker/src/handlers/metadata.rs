//! Metadata: this broker, and the topics asked for (created on first use if allowed).

use fjord_engine::{Error, Topic};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{Context, since};
use crate::codes::error_code;

pub(crate) async fn handle(
    context: &Context,
    version: i16,
    request: MetadataRequest,
) -> MetadataResponse {
    let config = context.config();
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(config.node_id))
        .with_host(StrBytes::from_string(config.advertised_host.clone()))
        .with_port(i32::from(config.advertised_port));
    let all = match &request.topics {
        None => true,
        Some(topics) => version == 0 && topics.is_empty(),
    };
    let topics = if all {
        context
            .engine()
            .topics()
            .iter()
            .map(|t| describe(context, version, t))
            .collect()
    } else {
        let allow_create = request.allow_auto_topic_creation;
        let names: Vec<String> = request
            .topics
            .iter()
            .flatten()
            .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
            .collect();
        let mut topics = Vec::with_capacity(names.len());
        for name in names {
            topics.push(lookup(context, version, name, allow_create).await);
        }
        topics
    };
    MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_cluster_id(Some(StrBytes::from_string(config.cluster_id.clone())))
        .with_controller_id(BrokerId(config.node_id))
        .with_topics(topics)
}

async fn lookup(
    context: &Context,
    version: i16,
    name: String,
    allow_create: bool,
) -> MetadataResponseTopic {
    let engine = context.engine();
    let found = if allow_create {
        engine.topic_or_create(&name).await
    } else {
        engine
            .topic(&name)
            .ok_or_else(|| match fjord_engine::validate_topic_name(&name) {
                Err(invalid) => invalid,
                Ok(()) => Error::UnknownTopic {
                    topic: name.clone(),
                },
            })
    };
    match found {
        Ok(topic) => describe(context, version, &topic),
        Err(error) => MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(name))))
            .with_error_code(error_code(&error)),
    }
}

fn describe(context: &Context, version: i16, topic: &Topic) -> MetadataResponseTopic {
    let node = BrokerId(context.config().node_id);
    let partitions = (0..topic.partition_count())
        .map(|index| {
            MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(node)
                .with_leader_epoch(since(version, 7, 0, -1))
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.id)
        .with_is_internal(topic.is_internal())
        .with_partitions(partitions)
}

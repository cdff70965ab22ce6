//! Metadata: this broker, and the topics asked for (created on first use if allowed).

use fjord_engine::{Error, Topic};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{Context, authorized, since};
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
    let operations = authorized::if_requested(
        request.include_topic_authorized_operations,
        authorized::TOPIC,
    );
    let describe = |topic: &Topic| {
        describe(context, version, topic).with_topic_authorized_operations(operations)
    };
    let topics = if all {
        context
            .engine()
            .topics()
            .iter()
            .map(|t| describe(t))
            .collect()
    } else {
        let allow_create = request.allow_auto_topic_creation;
        let asked = request.topics.iter().flatten();
        let mut topics = Vec::new();
        for asked in asked {
            let found = match &asked.name {
                // v10+: a topic asked for by id alone (a null or empty name).
                Some(name) if !name.is_empty() || asked.topic_id.is_nil() => {
                    context.engine().topic_or_create(name, allow_create).await
                }
                _ => context
                    .engine()
                    .topic_by_id(asked.topic_id)
                    .ok_or(Error::UnknownTopicId {
                        topic_id: asked.topic_id,
                    }),
            };
            topics.push(match found {
                Ok(topic) => describe(&topic),
                Err(error) => MetadataResponseTopic::default()
                    .with_name(asked.name.clone())
                    .with_topic_id(asked.topic_id)
                    .with_error_code(error_code(&error)),
            });
        }
        topics
    };
    // Only v8-v10 carry the cluster's operations; later versions ask DescribeCluster.
    let cluster_operations = if (8..=10).contains(&version) {
        authorized::if_requested(
            request.include_cluster_authorized_operations,
            authorized::CLUSTER,
        )
    } else {
        authorized::NOT_REQUESTED
    };
    MetadataResponse::default()
        .with_cluster_authorized_operations(cluster_operations)
        .with_brokers(vec![broker])
        .with_cluster_id(Some(StrBytes::from_string(config.cluster_id.clone())))
        .with_controller_id(BrokerId(config.node_id))
        .with_topics(topics)
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

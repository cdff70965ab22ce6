//! OffsetDelete: drops a group's commits for partitions it no longer consumes.

use fjord_engine::PartitionIndex;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::Context;
use crate::codes::error_code;

pub(crate) async fn handle(
    context: &Context,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let partitions: Vec<(String, PartitionIndex)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.to_string(), PartitionIndex(p.partition_index)))
        })
        .collect();
    let outcome = context
        .engine()
        .groups()
        .delete_offsets(&request.group_id, partitions)
        .await;
    let results = match outcome {
        Ok(results) => results,
        Err(error) => return OffsetDeleteResponse::default().with_error_code(error_code(&error)),
    };
    let mut topics: Vec<OffsetDeleteResponseTopic> = Vec::new();
    for (topic, partition, result) in results {
        let partition = OffsetDeleteResponsePartition::default()
            .with_partition_index(partition.0)
            .with_error_code(result.as_ref().map_or_else(error_code, |()| 0));
        match topics.last_mut() {
            Some(last) if last.name.as_str() == topic => last.partitions.push(partition),
            _ => topics.push(
                OffsetDeleteResponseTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic)))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    OffsetDeleteResponse::default().with_topics(topics)
}

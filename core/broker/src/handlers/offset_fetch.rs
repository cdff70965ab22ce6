//! OffsetFetch: a group's committed offsets (one group up to v7, several from v8).

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{Context, since};
use fjord_engine::{Committed, PartitionIndex};

type Found = Vec<(String, PartitionIndex, Option<Committed>)>;
/// Commits grouped by topic, in the order found.
type ByTopic = Vec<(String, Vec<(i32, Option<Committed>)>)>;

pub(crate) fn handle(
    context: &Context,
    version: i16,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = request
            .groups
            .into_iter()
            .map(|g| {
                let asked = g.topics.map(|topics| {
                    topics
                        .into_iter()
                        .map(|t| (t.name.to_string(), partition_indexes(t.partition_indexes)))
                        .collect()
                });
                let found = context.engine().groups().fetch_offsets(&g.group_id, asked);
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_topics(topics_v8(found))
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let asked = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.name.to_string(), partition_indexes(t.partition_indexes)))
            .collect()
    });
    let found = context
        .engine()
        .groups()
        .fetch_offsets(&request.group_id, asked);
    OffsetFetchResponse::default().with_topics(topics_v1(version, found))
}

fn partition_indexes(indexes: Vec<i32>) -> Vec<PartitionIndex> {
    indexes.into_iter().map(PartitionIndex).collect()
}

fn by_topic(found: Found) -> ByTopic {
    let mut topics: ByTopic = Vec::new();
    for (topic, partition, committed) in found {
        match topics.last_mut() {
            Some((name, partitions)) if *name == topic => partitions.push((partition.0, committed)),
            _ => topics.push((topic, vec![(partition.0, committed)])),
        }
    }
    topics
}

/// Offset, leader epoch and metadata as the response carries them (-1 and "" if none).
fn fields(committed: Option<Committed>) -> (i64, i32, Option<StrBytes>) {
    match committed {
        Some(c) => (
            c.offset.0,
            c.leader_epoch.0,
            Some(StrBytes::from_string(c.metadata.unwrap_or_default())),
        ),
        None => (-1, -1, Some(StrBytes::default())),
    }
}

fn topics_v1(version: i16, found: Found) -> Vec<OffsetFetchResponseTopic> {
    by_topic(found)
        .into_iter()
        .map(|(topic, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, committed)| {
                    let (offset, epoch, metadata) = fields(committed);
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(index)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(since(version, 5, epoch, -1))
                        .with_metadata(metadata)
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic)))
                .with_partitions(partitions)
        })
        .collect()
}

fn topics_v8(found: Found) -> Vec<OffsetFetchResponseTopics> {
    by_topic(found)
        .into_iter()
        .map(|(topic, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, committed)| {
                    let (offset, epoch, metadata) = fields(committed);
                    OffsetFetchResponsePartitions::default()
                        .with_partition_index(index)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(epoch)
                        .with_metadata(metadata)
                })
                .collect();
            OffsetFetchResponseTopics::default()
                .with_name(TopicName(StrBytes::from_string(topic)))
                .with_partitions(partitions)
        })
        .collect()
}

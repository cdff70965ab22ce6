//! OffsetFetch: a group's committed offsets (one group up to v7, several from v8). With
//! `require_stable` (v7+, what `read_committed` consumers send), a partition whose offset a
//! transaction still open has committed is answered UNSTABLE_OFFSET_COMMIT, so the consumer
//! retries once the transaction ends instead of starting from an older position.

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{Context, since};
use crate::codes::error_code;
use fjord_engine::{Committed, PartitionIndex};

/// Each partition's commit, and the error code it is answered with.
type Found = Vec<(String, PartitionIndex, Option<Committed>, i16)>;
/// Commits grouped by topic, in the order found.
type ByTopic = Vec<(String, Vec<(i32, Option<Committed>, i16)>)>;

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
                let found = fetch(context, &g.group_id, asked, request.require_stable);
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
    let found = fetch(context, &request.group_id, asked, request.require_stable);
    OffsetFetchResponse::default().with_topics(topics_v1(version, found))
}

/// The commits found, each with its error code: UNSTABLE_OFFSET_COMMIT where `require_stable`
/// asks and a transaction still open has committed that partition.
fn fetch(
    context: &Context,
    group_id: &str,
    asked: Option<Vec<(String, Vec<PartitionIndex>)>>,
    require_stable: bool,
) -> Found {
    let unstable = fjord_engine::Error::UnstableOffsetCommit {
        group_id: group_id.to_string(),
    };
    let unstable = error_code(&unstable);
    context
        .engine()
        .groups()
        .fetch_stable_offsets(group_id, asked, require_stable)
        .into_iter()
        .map(|(topic, partition, committed, is_unstable)| {
            let code = if is_unstable { unstable } else { 0 };
            (topic, partition, committed, code)
        })
        .collect()
}

fn partition_indexes(indexes: Vec<i32>) -> Vec<PartitionIndex> {
    indexes.into_iter().map(PartitionIndex).collect()
}

fn by_topic(found: Found) -> ByTopic {
    let mut topics: ByTopic = Vec::new();
    for (topic, partition, committed, code) in found {
        let entry = (partition.0, committed, code);
        match topics.last_mut() {
            Some((name, partitions)) if *name == topic => partitions.push(entry),
            _ => topics.push((topic, vec![entry])),
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
                .map(|(index, committed, code)| {
                    let (offset, epoch, metadata) = fields(committed);
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(index)
                        .with_error_code(code)
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
                .map(|(index, committed, code)| {
                    let (offset, epoch, metadata) = fields(committed);
                    OffsetFetchResponsePartitions::default()
                        .with_partition_index(index)
                        .with_error_code(code)
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

//! OffsetCommit: a member (or a standalone consumer, generation -1) stores its positions.

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::Context;
use crate::codes::error_code;
use fjord_engine::limits::PARTITIONS_PER_COMMIT_MAX;
use fjord_engine::{Commit, Identity, LeaderEpoch, Offset, PartitionIndex};

pub(crate) async fn handle(
    context: &Context,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let identity = Identity {
        member_id: &request.member_id,
        generation_id: request.generation_id_or_member_epoch,
        group_instance_id: request.group_instance_id.as_deref(),
    };
    let commits: Vec<Commit> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| Commit {
                topic: t.name.to_string(),
                partition: PartitionIndex(p.partition_index),
                offset: Offset(p.committed_offset),
                leader_epoch: LeaderEpoch(p.committed_leader_epoch),
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    let codes: Vec<i16> = if commits.len() > PARTITIONS_PER_COMMIT_MAX {
        vec![crate::codes::Refusal::InvalidRequest.code(); commits.len()]
    } else {
        let outcome = context
            .engine()
            .commit_offsets(&request.group_id, identity, commits)
            .await;
        match outcome {
            Ok(results) => results
                .iter()
                .map(|r| r.as_ref().map_or_else(error_code, |()| 0))
                .collect(),
            Err(error) => {
                tracing::debug!(group = %request.group_id.as_str(), %error, "commit refused");
                let code = error_code(&error);
                vec![code; request.topics.iter().map(|t| t.partitions.len()).sum()]
            }
        }
    };
    let mut codes = codes.into_iter();
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(codes.next().unwrap_or(0))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

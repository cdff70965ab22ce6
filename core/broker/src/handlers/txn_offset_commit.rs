//! TxnOffsetCommit: a consume-transform-produce application commits its input positions in
//! its transaction (KIP-98; KIP-447 adds the member and generation, checked like
//! OffsetCommit's when given).

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::Context;
use crate::codes::transaction_error_code;
use fjord_engine::limits::PARTITIONS_PER_COMMIT_MAX;
use fjord_engine::{
    Commit, Identity, LeaderEpoch, Offset, PartitionIndex, ProducerEpoch, ProducerId,
};

/// From this version a fenced producer is told PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 3;

pub(crate) async fn handle(
    context: &Context,
    version: i16,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let identity = Identity {
        member_id: &request.member_id,
        generation_id: request.generation_id,
        group_instance_id: request.group_instance_id.as_deref(),
    };
    let producer = (
        ProducerId(request.producer_id.0),
        ProducerEpoch(request.producer_epoch),
    );
    // Counted before anything is built per partition: a request can name millions.
    let count: usize = request.topics.iter().map(|t| t.partitions.len()).sum();
    let commits: Vec<Commit> = request
        .topics
        .iter()
        .filter(|_| count <= PARTITIONS_PER_COMMIT_MAX)
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
    let codes: Vec<i16> = if count > PARTITIONS_PER_COMMIT_MAX {
        vec![crate::codes::Refusal::InvalidRequest.code(); count]
    } else {
        let outcome = context
            .engine()
            .commit_transactional_offsets(&request.group_id, producer, identity, commits)
            .await;
        match outcome {
            Ok(results) => results
                .iter()
                .map(|r| {
                    r.as_ref().map_or_else(
                        |e| transaction_error_code(e, version, PRODUCER_FENCED_SINCE),
                        |()| 0,
                    )
                })
                .collect(),
            Err(error) => {
                tracing::debug!(group = %request.group_id.as_str(), %error, "transactional commit refused");
                vec![transaction_error_code(&error, version, PRODUCER_FENCED_SINCE); count]
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
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(codes.next().unwrap_or(0))
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

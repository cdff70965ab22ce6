//! ListOffsets: earliest, latest, or the first offset at or after a timestamp.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::Context;
use crate::codes::error_code;
use fjord_engine::{PartitionIndex, Result};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
/// v7+ (KIP-734): the record with the largest timestamp.
const MAX_TIMESTAMP: i64 = -3;
/// v8+ (KIP-405): the first offset on local disk; all of the log is local here.
const EARLIEST_LOCAL: i64 = -4;
/// v9+ (KIP-1005): the last offset in tiered storage; nothing is tiered here.
const LATEST_TIERED: i64 = -5;

pub(crate) async fn handle(
    context: &Context,
    version: i16,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let read_committed = request.isolation_level == 1;
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let response =
                ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
            let found = lookup(
                context,
                &topic.name,
                p.partition_index,
                p.timestamp,
                read_committed,
            )
            .await;
            partitions.push(match found {
                Ok((timestamp, offset)) => response
                    .with_timestamp(timestamp)
                    .with_offset(offset)
                    .with_leader_epoch(super::since(version, 4, 0, -1)),
                Err(error) => response
                    .with_error_code(error_code(&error))
                    .with_timestamp(-1)
                    .with_offset(-1),
            });
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

/// (timestamp, offset) for one partition; (-1, -1) when no record is that recent.
async fn lookup(
    context: &Context,
    topic_name: &str,
    index: i32,
    timestamp: i64,
    read_committed: bool,
) -> Result<(i64, i64)> {
    let engine = context.engine();
    let index = PartitionIndex(index);
    let offsets = engine.offsets(topic_name, index)?;
    Ok(match timestamp {
        LATEST if read_committed => (-1, offsets.last_stable_offset.0),
        LATEST => (-1, offsets.high_watermark.0),
        EARLIEST | EARLIEST_LOCAL => (-1, offsets.log_start_offset.0),
        MAX_TIMESTAMP => engine
            .offset_of_max_timestamp(topic_name, index)
            .await?
            .map_or((-1, -1), |found| (found.timestamp_ms, found.offset.0)),
        LATEST_TIERED => (-1, -1),
        timestamp if timestamp >= 0 => engine
            .offset_for_timestamp(topic_name, index, timestamp)
            .await?
            .map_or((-1, -1), |found| (found.timestamp_ms, found.offset.0)),
        _ => (-1, -1),
    })
}

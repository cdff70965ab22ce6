//! ListOffsets: earliest, latest, or the first offset at or after a timestamp.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::Context;
use crate::Result;
use crate::codes::error_code;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

pub(crate) fn handle(
    context: &Context,
    version: i16,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let read_committed = request.isolation_level == 1;
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    match lookup(
                        context,
                        &topic.name,
                        p.partition_index,
                        p.timestamp,
                        read_committed,
                    ) {
                        Ok((timestamp, offset)) => response
                            .with_timestamp(timestamp)
                            .with_offset(offset)
                            .with_leader_epoch(super::since(version, 4, 0, -1)),
                        Err(error) => response
                            .with_error_code(error_code(&error))
                            .with_timestamp(-1)
                            .with_offset(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// (timestamp, offset) for one partition; (-1, -1) when no record is that recent.
fn lookup(
    context: &Context,
    topic_name: &str,
    index: i32,
    timestamp: i64,
    read_committed: bool,
) -> Result<(i64, i64)> {
    let topic = context.topics().require(topic_name)?;
    let partition = topic.partition(index)?;
    let offsets = partition.offsets()?;
    Ok(match timestamp {
        LATEST if read_committed => (-1, offsets.last_stable_offset),
        LATEST => (-1, offsets.high_watermark),
        EARLIEST => (-1, offsets.log_start_offset),
        timestamp if timestamp >= 0 => {
            super::blocking(|| partition.offset_for_timestamp(timestamp))?
                .map_or((-1, -1), |found| (found.timestamp, found.offset))
        }
        _ => (-1, -1),
    })
}

//! Fetch: stored batches from each partition, long-polling until `min_bytes` arrive or
//! `max_wait_ms` passes. Bytes go out as stored, never re-encoded.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use tokio::time::Instant;

use super::{Context, blocking, since};
use crate::Result;
use crate::codes::error_code;
use crate::partition::Isolation;

/// Longest long poll honoured, whatever the client asks.
const MAX_WAIT_LIMIT: Duration = Duration::from_secs(60);

pub(crate) async fn handle(
    context: &Context,
    version: i16,
    request: FetchRequest,
) -> FetchResponse {
    let max_wait =
        Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_WAIT_LIMIT);
    let deadline = Instant::now() + max_wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let mut appended = context.subscribe_appended();
    let response = loop {
        appended.borrow_and_update();
        let (response, read_bytes, errors) = blocking(|| read(context, version, &request));
        // min_bytes 0 answers at once; otherwise wait for that much (at least one byte).
        if min_bytes == 0 || read_bytes >= min_bytes || errors || Instant::now() >= deadline {
            break response;
        }
        // Wait for any append (or the deadline), then read again.
        if tokio::time::timeout_at(deadline, appended.changed())
            .await
            .is_err()
        {
            break blocking(|| read(context, version, &request)).0;
        }
    };
    for topic in &response.responses {
        for partition in &topic.partitions {
            if let Some(records) = &partition.records {
                crate::metrics::fetched(&topic.topic, records);
            }
        }
    }
    response
}

/// One pass over the requested partitions: the response, bytes read, and whether any
/// partition answered with an error (which ends a long poll at once).
fn read(context: &Context, version: i16, request: &FetchRequest) -> (FetchResponse, usize, bool) {
    let isolation = if request.isolation_level == 1 {
        Isolation::LastStable
    } else {
        Isolation::HighWatermark
    };
    let mut budget = usize::try_from(request.max_bytes).unwrap_or(0);
    let (mut read_bytes, mut errors) = (0usize, false);
    let responses = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    // Past the total budget, partitions are answered without records; the
                    // first non-empty one always gets its first batch (KIP-74).
                    let limit = usize::try_from(p.partition_max_bytes)
                        .unwrap_or(0)
                        .min(budget);
                    let skip = read_bytes > 0 && limit == 0;
                    match read_partition(context, version, &topic.topic, p, limit, skip, isolation)
                    {
                        Ok(data) => {
                            let len = data.records.as_ref().map_or(0, Bytes::len);
                            read_bytes += len;
                            budget = budget.saturating_sub(len);
                            data
                        }
                        Err(error) => {
                            errors = true;
                            PartitionData::default()
                                .with_partition_index(p.partition)
                                .with_error_code(error_code(&error))
                                .with_high_watermark(-1)
                                .with_last_stable_offset(-1)
                                .with_log_start_offset(-1)
                                .with_preferred_read_replica(BrokerId(-1))
                        }
                    }
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    (
        FetchResponse::default().with_responses(responses),
        read_bytes,
        errors,
    )
}

fn read_partition(
    context: &Context,
    version: i16,
    topic_name: &str,
    request: &FetchPartition,
    limit: usize,
    skip: bool,
    isolation: Isolation,
) -> Result<PartitionData> {
    let topic = context.topics().require(topic_name)?;
    let partition = topic.partition(request.partition)?;
    let mut records = Vec::new();
    if !skip {
        partition.read_into(request.fetch_offset, limit, isolation, &mut records)?;
    }
    let offsets = partition.offsets()?;
    Ok(PartitionData::default()
        .with_partition_index(request.partition)
        .with_high_watermark(offsets.high_watermark)
        .with_last_stable_offset(offsets.last_stable_offset)
        .with_log_start_offset(since(version, 5, offsets.log_start_offset, -1))
        .with_preferred_read_replica(BrokerId(-1))
        .with_records(Some(Bytes::from(records))))
}

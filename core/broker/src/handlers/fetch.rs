//! Fetch: stored batches from each partition, long-polling until `min_bytes` arrive or
//! `max_wait_ms` passes. Bytes go out as stored, never re-encoded.

use std::time::Duration;

use bytes::Bytes;
use fjord_record::{BATCH_OVERHEAD_BYTES, BatchHeader};
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
                    // KIP-74: the first partition with records always gets its first batch,
                    // however large; after it, only whole batches within the budget left.
                    let limit = usize::try_from(p.partition_max_bytes)
                        .unwrap_or(0)
                        .min(budget);
                    let strict = read_bytes > 0;
                    match read_partition(
                        context,
                        version,
                        &topic.topic,
                        p,
                        limit,
                        strict,
                        isolation,
                    ) {
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
    strict: bool,
    isolation: Isolation,
) -> Result<PartitionData> {
    let topic = context.topics().require(topic_name)?;
    let partition = topic.partition(request.partition)?;
    let mut records = Vec::new();
    if !strict || limit > 0 {
        partition.read_into(request.fetch_offset, limit, isolation, &mut records)?;
    }
    if strict {
        records.truncate(whole_batches_within(&records, limit));
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

/// The length of the longest prefix of `batches` made of whole batches and at most `limit`
/// bytes long.
fn whole_batches_within(batches: &[u8], limit: usize) -> usize {
    let mut end = 0;
    while let Some((_, length)) = BatchHeader::parse_prefix(&batches[end..]) {
        let Some(next) = usize::try_from(length)
            .ok()
            .and_then(|length| (end + BATCH_OVERHEAD_BYTES).checked_add(length))
            .filter(|&next| next <= limit.min(batches.len()))
        else {
            break;
        };
        end = next;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::whole_batches_within;

    fn batch(body_bytes: usize) -> Vec<u8> {
        let mut batch = vec![0u8; 8];
        batch.extend_from_slice(&(body_bytes as i32).to_be_bytes());
        batch.resize(12 + body_bytes, 7);
        batch
    }

    #[test]
    fn keeps_only_whole_batches_within_the_limit() {
        let batches = [batch(100), batch(50), batch(200)].concat();
        assert_eq!(whole_batches_within(&batches, 0), 0);
        assert_eq!(whole_batches_within(&batches, 111), 0);
        assert_eq!(whole_batches_within(&batches, 112), 112);
        assert_eq!(whole_batches_within(&batches, 173), 112);
        assert_eq!(whole_batches_within(&batches, 174), 174);
        assert_eq!(whole_batches_within(&batches, usize::MAX), batches.len());
        // A truncated tail or a hostile length never counts.
        assert_eq!(whole_batches_within(&batches[..170], usize::MAX), 112);
        let mut hostile = batch(10);
        hostile[8..12].copy_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(whole_batches_within(&hostile, usize::MAX), 0);
    }
}

//! Fetch: stored batches from each partition, long-polling until `min_bytes` arrive or
//! `max_wait_ms` passes. Bytes go out as stored, never re-encoded: a local partition's
//! batches go from the segment file to the socket with `sendfile` ([`encode`]).

mod encode;

use std::time::Duration;

use fjord_log::Fetched;
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use tokio::time::Instant;

use super::{Context, blocking, since};
use crate::Result;
use crate::codes::error_code;
use crate::outgoing::Outgoing;
use crate::partition::Isolation;

/// Longest long poll honoured, whatever the client asks.
const MAX_WAIT_LIMIT: Duration = Duration::from_secs(60);

/// A fetch response and its partitions' records, in the order the response lists them (the
/// response's own `records` fields stay `None`).
#[derive(Debug)]
pub(crate) struct Answer {
    response: FetchResponse,
    records: Vec<Fetched>,
}

impl Answer {
    pub(crate) fn encode(self, correlation_id: i32, version: i16) -> Result<Outgoing> {
        encode::encode(correlation_id, version, &self.response, self.records)
    }
}

pub(crate) async fn handle(context: &Context, version: i16, request: FetchRequest) -> Answer {
    let max_wait =
        Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_WAIT_LIMIT);
    let deadline = Instant::now() + max_wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let mut appended = context.subscribe_appended();
    let answer = loop {
        appended.borrow_and_update();
        let (answer, read_bytes, errors) = blocking(|| read(context, version, &request));
        // min_bytes 0 answers at once; otherwise wait for that much (at least one byte).
        if min_bytes == 0 || read_bytes >= min_bytes || errors || Instant::now() >= deadline {
            break answer;
        }
        // Wait for any append (or the deadline), then read again.
        if tokio::time::timeout_at(deadline, appended.changed())
            .await
            .is_err()
        {
            break blocking(|| read(context, version, &request)).0;
        }
    };
    let mut records = answer.records.iter();
    for topic in &answer.response.responses {
        for fetched in records.by_ref().take(topic.partitions.len()) {
            crate::metrics::fetched(&topic.topic, fetched);
        }
    }
    answer
}

/// One pass over the requested partitions: the answer, bytes read, and whether any
/// partition answered with an error (which ends a long poll at once).
fn read(context: &Context, version: i16, request: &FetchRequest) -> (Answer, usize, bool) {
    let isolation = if request.isolation_level == 1 {
        Isolation::LastStable
    } else {
        Isolation::HighWatermark
    };
    let mut budget = usize::try_from(request.max_bytes).unwrap_or(0);
    let (mut read_bytes, mut errors) = (0usize, false);
    let mut records = Vec::new();
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
                    let min_one_batch = read_bytes == 0;
                    let read = read_partition(
                        context,
                        version,
                        &topic.topic,
                        p,
                        limit,
                        min_one_batch,
                        isolation,
                    );
                    match read {
                        Ok((data, fetched)) => {
                            read_bytes += fetched.len();
                            budget = budget.saturating_sub(fetched.len());
                            records.push(fetched);
                            data
                        }
                        Err(error) => {
                            errors = true;
                            records.push(Fetched::Copied(bytes::Bytes::new()));
                            PartitionData::default()
                                .with_partition_index(p.partition)
                                .with_error_code(error_code(&error))
                                .with_high_watermark(-1)
                                .with_last_stable_offset(-1)
                                .with_log_start_offset(-1)
                                .with_preferred_read_replica(BrokerId(-1))
                                .with_records(None)
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
    let answer = Answer {
        response: FetchResponse::default().with_responses(responses),
        records,
    };
    (answer, read_bytes, errors)
}

fn read_partition(
    context: &Context,
    version: i16,
    topic_name: &str,
    request: &FetchPartition,
    limit: usize,
    min_one_batch: bool,
    isolation: Isolation,
) -> Result<(PartitionData, Fetched)> {
    let topic = context.topics().require(topic_name)?;
    let partition = topic.partition(request.partition)?;
    // Past the first partition with data, an exhausted budget means nothing more to read.
    let fetched = if min_one_batch || limit > 0 {
        partition.fetch(request.fetch_offset, limit, min_one_batch, isolation)?
    } else {
        Fetched::Copied(bytes::Bytes::new())
    };
    let offsets = partition.offsets()?;
    let data = PartitionData::default()
        .with_partition_index(request.partition)
        .with_high_watermark(offsets.high_watermark)
        .with_last_stable_offset(offsets.last_stable_offset)
        .with_log_start_offset(since(version, 5, offsets.log_start_offset, -1))
        .with_preferred_read_replica(BrokerId(-1))
        .with_records(None);
    Ok((data, fetched))
}

//! Fetch: stored batches from each partition, long-polling until `min_bytes` arrive or
//! `max_wait_ms` passes. The wait is on the partitions fetched, not on every append. Bytes
//! go out as stored, never re-encoded: a local partition's batches go from the segment file
//! to the socket with `sendfile` ([`encode`]).

mod encode;

use std::sync::Arc;
use std::time::Duration;

use fjord_engine::{FetchPartition, Fetched, Isolation, PartitionRead};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use tokio::time::Instant;

use super::{Context, since};
use crate::Result;
use crate::codes::error_code;
use crate::limits::FETCH_WAIT_MAX;
use crate::outgoing::Outgoing;

/// The first Fetch version naming topics by id (KIP-516).
const TOPIC_ID_VERSION_MIN: i16 = 13;

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
        Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(FETCH_WAIT_MAX);
    let deadline = Instant::now() + max_wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let isolation = if request.isolation_level == 1 {
        Isolation::LastStable
    } else {
        Isolation::HighWatermark
    };
    let max_bytes = usize::try_from(request.max_bytes).unwrap_or(0);
    // From v13 topics are named by id; an unknown id answers UNKNOWN_TOPIC_ID.
    let names: Vec<fjord_engine::Result<String>> = request
        .topics
        .iter()
        .map(|topic| {
            if version >= TOPIC_ID_VERSION_MIN {
                context.engine().topic_name_of(topic.topic_id)
            } else {
                Ok(topic.topic.to_string())
            }
        })
        .collect();
    let partitions: Arc<[FetchPartition]> = request
        .topics
        .iter()
        .zip(&names)
        .flat_map(|(topic, name)| {
            let name = name.as_ref().map_or_else(|_| String::new(), Clone::clone);
            topic.partitions.iter().map(move |p| FetchPartition {
                topic: name.clone(),
                partition: p.partition,
                offset: p.fetch_offset,
                max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
            })
        })
        .collect();
    // Watch before the first read, so data landing between a read and the wait wakes it.
    let mut waiter = context
        .engine()
        .waiter(partitions.iter().map(|p| (p.topic.clone(), p.partition)));
    let reads = loop {
        let reads = context
            .engine()
            .read(Arc::clone(&partitions), max_bytes, isolation)
            .await;
        let read_bytes: usize = reads
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|r| r.records.len())
            .sum();
        let errors = reads.iter().any(|r| r.is_err());
        // min_bytes 0 answers at once; otherwise wait for that much (at least one byte).
        if min_bytes == 0 || read_bytes >= min_bytes || errors || Instant::now() >= deadline {
            break reads;
        }
        if !waiter.changed(deadline).await {
            break context
                .engine()
                .read(Arc::clone(&partitions), max_bytes, isolation)
                .await;
        }
    };
    answer(version, &request, &names, reads)
}

/// The response for `request` from one read of its partitions (in request order).
fn answer(
    version: i16,
    request: &FetchRequest,
    names: &[fjord_engine::Result<String>],
    reads: Vec<fjord_engine::Result<PartitionRead>>,
) -> Answer {
    let mut reads = reads.into_iter();
    let mut records = Vec::with_capacity(reads.len());
    let responses = request
        .topics
        .iter()
        .zip(names)
        .map(|(topic, name)| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let read = reads
                        .next()
                        .unwrap_or(Err(fjord_engine::Error::UnknownPartition {
                            topic: topic.topic.to_string(),
                            partition: p.partition,
                        }));
                    // A topic id that named no topic: say so, not "unknown topic ''".
                    let read = match name {
                        Err(fjord_engine::Error::UnknownTopicId { topic_id }) => {
                            Err(fjord_engine::Error::UnknownTopicId {
                                topic_id: *topic_id,
                            })
                        }
                        _ => read,
                    };
                    let data = PartitionData::default()
                        .with_partition_index(p.partition)
                        .with_preferred_read_replica(BrokerId(-1))
                        .with_records(None);
                    match read {
                        Ok(read) => {
                            let name = name.as_deref().unwrap_or_default();
                            crate::metrics::fetched(name, &read.records);
                            records.push(read.records);
                            data.with_high_watermark(read.offsets.high_watermark)
                                .with_last_stable_offset(read.offsets.last_stable_offset)
                                .with_log_start_offset(since(
                                    version,
                                    5,
                                    read.offsets.log_start_offset,
                                    -1,
                                ))
                        }
                        Err(error) => {
                            records.push(Fetched::Copied(bytes::Bytes::new()));
                            data.with_error_code(error_code(&error))
                                .with_high_watermark(-1)
                                .with_last_stable_offset(-1)
                                .with_log_start_offset(-1)
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
    Answer {
        response: FetchResponse::default().with_responses(responses),
        records,
    }
}

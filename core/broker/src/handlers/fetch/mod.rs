//! Fetch: stored batches from each partition, long-polling until `min_bytes` arrive or
//! `max_wait_ms` passes. The wait is on the partitions fetched, not on every append. Bytes
//! go out as stored, never re-encoded: a local partition's batches go from the segment file
//! to the socket with `sendfile` ([`encode`]). Consumers may keep an incremental fetch
//! session ([`session`], KIP-227).

mod encode;
pub(crate) mod session;

use std::sync::Arc;
use std::time::Duration;

use fjord_engine::{
    Batches, FetchPartition, Isolation, Offset, PartitionIndex, PartitionOffsets, PartitionRead,
};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName};
use tokio::time::Instant;
use uuid::Uuid;

use super::{Context, since};
use crate::Result;
use crate::codes::error_code;
use crate::limits::FETCH_WAIT_MAX;
use crate::outgoing::Outgoing;

/// The first Fetch version naming topics by id (KIP-516).
const TOPIC_ID_VERSION_MIN: i16 = 13;

/// A topic as the client named it: by name below v13, by id from v13.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TopicKey {
    name: TopicName,
    id: Uuid,
}

impl TopicKey {
    fn of(version: i16, name: &TopicName, id: Uuid) -> Self {
        if version >= TOPIC_ID_VERSION_MIN {
            Self {
                name: TopicName::default(),
                id,
            }
        } else {
            Self {
                name: name.clone(),
                id: Uuid::nil(),
            }
        }
    }
}

/// One partition to read, in answer order.
#[derive(Debug, Clone)]
pub(crate) struct Wanted {
    topic: TopicKey,
    partition: i32,
    offset: i64,
    max_bytes: usize,
}

/// A fetch response and its partitions' records, in the order the response lists them (the
/// response's own `records` fields stay `None`).
#[derive(Debug)]
pub(crate) struct Answer {
    response: FetchResponse,
    records: Vec<Batches>,
}

impl Answer {
    pub(crate) fn encode(self, correlation_id: i32, version: i16) -> Result<Outgoing> {
        encode::encode(correlation_id, version, &self.response, self.records)
    }
}

pub(crate) async fn handle(context: &Context, version: i16, request: FetchRequest) -> Answer {
    let now = context.engine().clock().now();
    let requested = requested(version, &request);
    let (wanted, mode) = match context
        .fetch_sessions()
        .plan(version, &request, requested, now)
    {
        Ok(plan) => plan,
        Err(code) => {
            let response = FetchResponse::default().with_error_code(code);
            return Answer {
                response,
                records: Vec::new(),
            };
        }
    };
    let names = resolve(context, version, &wanted);
    let reads = read(context, &request, &wanted, &names).await;
    let offsets: Vec<Option<PartitionOffsets>> = reads
        .iter()
        .map(|r| r.as_ref().ok().map(|r| r.offsets))
        .collect();
    let has_records: Vec<bool> = reads
        .iter()
        .map(|r| r.as_ref().is_ok_and(|r| !r.records.is_empty()))
        .collect();
    let (session_id, include) = context.fetch_sessions().finish(
        version,
        &mode,
        &wanted,
        &offsets,
        &has_records,
        context.engine().clock().now(),
    );
    answer(version, session_id, &wanted, &names, reads, &include)
}

/// The partitions the request names, in its order.
fn requested(version: i16, request: &FetchRequest) -> Vec<Wanted> {
    request
        .topics
        .iter()
        .flat_map(|topic| {
            let key = TopicKey::of(version, &topic.topic, topic.topic_id);
            topic.partitions.iter().map(move |p| Wanted {
                topic: key.clone(),
                partition: p.partition,
                offset: p.fetch_offset,
                max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
            })
        })
        .collect()
}

/// Each wanted partition's topic name; a topic id naming no topic is UNKNOWN_TOPIC_ID.
fn resolve(
    context: &Context,
    version: i16,
    wanted: &[Wanted],
) -> Vec<fjord_engine::Result<String>> {
    let by_id = version >= TOPIC_ID_VERSION_MIN;
    wanted
        .iter()
        .map(|w| super::topic_name(context, by_id, &w.topic.name, w.topic.id))
        .collect()
}

/// Reads the wanted partitions, waiting (up to `max_wait_ms`) for `min_bytes` on them.
async fn read(
    context: &Context,
    request: &FetchRequest,
    wanted: &[Wanted],
    names: &[fjord_engine::Result<String>],
) -> Vec<fjord_engine::Result<PartitionRead>> {
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
    // Partitions of topics that resolved; the others are answered with the reason.
    let partitions: Arc<[FetchPartition]> = wanted
        .iter()
        .zip(names)
        .filter_map(|(w, name)| {
            Some(FetchPartition {
                topic: name.as_ref().ok()?.clone(),
                partition: PartitionIndex(w.partition),
                offset: Offset(w.offset),
                max_bytes: w.max_bytes,
            })
        })
        .collect();
    let unresolved = partitions.len() < wanted.len();
    // Watch before the first read, so data landing between a read and the wait wakes it.
    let mut waiter = context
        .engine()
        .waiter(partitions.iter().map(|p| (p.topic.clone(), p.partition)));
    loop {
        let reads = context
            .engine()
            .read(Arc::clone(&partitions), max_bytes, isolation)
            .await;
        let read_bytes: usize = reads
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|r| r.records.len())
            .sum();
        let errors = unresolved || reads.iter().any(|r| r.is_err());
        // min_bytes 0 answers at once; otherwise wait for that much (at least one byte).
        if min_bytes == 0 || read_bytes >= min_bytes || errors || Instant::now() >= deadline {
            return merge(wanted, names, reads);
        }
        if !waiter.changed(deadline).await {
            let reads = context
                .engine()
                .read(Arc::clone(&partitions), max_bytes, isolation)
                .await;
            return merge(wanted, names, reads);
        }
    }
}

/// One result per wanted partition: the reads of the resolved ones, in order, and for a
/// topic id that named no topic, UNKNOWN_TOPIC_ID.
fn merge(
    wanted: &[Wanted],
    names: &[fjord_engine::Result<String>],
    reads: Vec<fjord_engine::Result<PartitionRead>>,
) -> Vec<fjord_engine::Result<PartitionRead>> {
    let mut reads = reads.into_iter();
    wanted
        .iter()
        .zip(names)
        .map(|(w, name)| match name {
            Ok(_) => reads
                .next()
                .unwrap_or(Err(fjord_engine::Error::ShuttingDown)),
            Err(_) => Err(fjord_engine::Error::UnknownTopicId {
                topic_id: w.topic.id,
            }),
        })
        .collect()
}

/// The aborted transactions of a `read_committed` read in the response's form (from v4):
/// null when there are none, which clients read as an empty list.
fn aborted(
    version: i16,
    found: &[fjord_engine::AbortedTransaction],
) -> Option<Vec<AbortedTransaction>> {
    (version >= 4 && !found.is_empty()).then(|| {
        found
            .iter()
            .map(|t| {
                AbortedTransaction::default()
                    .with_producer_id(ProducerId(t.producer_id.0))
                    .with_first_offset(t.first_offset.0)
            })
            .collect()
    })
}

/// The response: the included partitions, grouped by topic in order.
fn answer(
    version: i16,
    session_id: i32,
    wanted: &[Wanted],
    names: &[fjord_engine::Result<String>],
    reads: Vec<fjord_engine::Result<PartitionRead>>,
    include: &[bool],
) -> Answer {
    let mut records = Vec::new();
    let mut responses: Vec<FetchableTopicResponse> = Vec::new();
    let partitions = wanted.iter().zip(names).zip(reads).zip(include);
    for (((wanted, name), read), _) in partitions.filter(|(_, included)| **included) {
        let data = PartitionData::default()
            .with_partition_index(wanted.partition)
            .with_preferred_read_replica(BrokerId(-1))
            .with_records(None);
        let data = match read {
            Ok(read) => {
                crate::metrics::fetched(name.as_deref().unwrap_or_default(), &read.records);
                records.push(read.records);
                data.with_aborted_transactions(aborted(version, &read.aborted_transactions))
                    .with_high_watermark(read.offsets.high_watermark.0)
                    .with_last_stable_offset(read.offsets.last_stable_offset.0)
                    .with_log_start_offset(since(version, 5, read.offsets.log_start_offset.0, -1))
            }
            Err(error) => {
                records.push(Batches::Memory(bytes::Bytes::new()));
                data.with_error_code(error_code(&error))
                    .with_high_watermark(-1)
                    .with_last_stable_offset(-1)
                    .with_log_start_offset(-1)
            }
        };
        match responses.last_mut() {
            Some(last) if last.topic == wanted.topic.name && last.topic_id == wanted.topic.id => {
                last.partitions.push(data);
            }
            _ => responses.push(
                FetchableTopicResponse::default()
                    .with_topic(wanted.topic.name.clone())
                    .with_topic_id(wanted.topic.id)
                    .with_partitions(vec![data]),
            ),
        }
    }
    Answer {
        response: FetchResponse::default()
            .with_session_id(since(version, 7, session_id, 0))
            .with_responses(responses),
        records,
    }
}

//! Produce: append each partition's batches through the engine; answer with their base
//! offsets.

use fjord_engine::{Acks, AppendRequest, Origin, PartitionIndex, Result};
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use super::{Context, since};
use crate::codes::{Refusal, error_code};

/// The first Produce version served: v0-v2 carry message formats v0 and v1, which Kafka 4
/// refuses too (KAFKA-18659). They are still advertised, as Kafka 4 does, because librdkafka
/// before 2.11.1 takes a range starting above v0 to mean compression is unsupported and
/// sends every batch uncompressed (librdkafka#4956). The connection answers them
/// (`produce_legacy`) before the codec, which cannot read them; this check is for callers
/// that reach the handler directly.
const PRODUCE_VERSION_MIN_SERVED: i16 = super::produce_legacy::LEGACY_VERSION_MAX + 1;

/// The first Produce version naming topics by id.
const TOPIC_ID_VERSION_MIN: i16 = 13;

/// Handles a produce request; `None` for acks=0, which gets no response. Every partition
/// to write goes to the engine in one call, which appends the partitions concurrently.
pub(crate) async fn handle(
    context: &Context,
    version: i16,
    request: ProduceRequest,
) -> Option<ProduceResponse> {
    let acks = request.acks;
    let durability = if acks == -1 { Acks::All } else { Acks::Leader };
    let (topics, appends) = plan(context, version, request);
    let sizes: Vec<(String, usize)> = appends
        .iter()
        .map(|a| (a.topic.clone(), a.batches.len()))
        .collect();
    let mut results = context
        .engine()
        .append_all(appends, Origin::Client, durability)
        .await
        .into_iter()
        .zip(sizes);
    let responses = topics
        .into_iter()
        .map(|(topic, partitions)| {
            let answers = partitions
                .into_iter()
                .map(|(index, slot)| match slot {
                    Slot::Refused(refused) => refused.with_index(index),
                    Slot::Append => match results.next() {
                        Some((result, (name, size_bytes))) => {
                            answer(version, &name, index, size_bytes, result)
                        }
                        None => refusal(error_code(&fjord_engine::Error::ShuttingDown)),
                    }
                    .with_index(index),
                })
                .collect();
            topic.with_partition_responses(answers)
        })
        .collect();
    (acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}

/// What becomes of one partition of the request.
enum Slot {
    /// Answered without the engine.
    Refused(PartitionProduceResponse),
    /// The next of the appends handed to the engine.
    Append,
}

type Planned = Vec<(TopicProduceResponse, Vec<(i32, Slot)>)>;

/// Each topic's answer skeleton with its partitions' fates, and the appends to make.
fn plan(context: &Context, version: i16, request: ProduceRequest) -> (Planned, Vec<AppendRequest>) {
    let acks_valid = matches!(request.acks, -1..=1);
    let mut appends = Vec::new();
    let topics = request
        .topic_data
        .into_iter()
        .map(|topic_data| {
            let name = super::topic_name(
                context,
                version >= TOPIC_ID_VERSION_MIN,
                &topic_data.name,
                topic_data.topic_id,
            );
            let partitions = topic_data
                .partition_data
                .into_iter()
                .map(|data| {
                    let slot = match &name {
                        _ if version < PRODUCE_VERSION_MIN_SERVED => {
                            Slot::Refused(refusal(Refusal::UnsupportedVersion.code()))
                        }
                        _ if !acks_valid => {
                            Slot::Refused(refusal(Refusal::InvalidRequiredAcks.code()))
                        }
                        Err(unknown) => Slot::Refused(refusal(error_code(unknown))),
                        Ok(name) => {
                            // A slice of the request frame, handed on as it is: no copy.
                            appends.push(AppendRequest {
                                topic: name.clone(),
                                partition: PartitionIndex(data.index),
                                batches: data.records.unwrap_or_default(),
                            });
                            Slot::Append
                        }
                    };
                    (data.index, slot)
                })
                .collect();
            let topic = TopicProduceResponse::default()
                .with_name(topic_data.name)
                .with_topic_id(topic_data.topic_id);
            (topic, partitions)
        })
        .collect();
    (topics, appends)
}

/// A partition's answer when nothing was written.
fn refusal(code: i16) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_error_code(code)
        .with_base_offset(-1)
}

/// The answer for one partition the engine appended to (or refused).
fn answer(
    version: i16,
    topic_name: &str,
    partition: i32,
    size_bytes: usize,
    appended: Result<fjord_engine::Appended>,
) -> PartitionProduceResponse {
    match appended {
        Ok(appended) => {
            crate::metrics::produced(topic_name, size_bytes, appended.records_count);
            PartitionProduceResponse::default()
                .with_base_offset(appended.base_offset.0)
                .with_log_append_time_ms(appended.log_append_time_ms)
                .with_log_start_offset(since(version, 5, appended.log_start_offset.0, -1))
        }
        Err(error) => {
            tracing::debug!(topic = topic_name, partition, %error, "produce refused");
            let refused = refusal(error_code(&error));
            match error {
                // v8+ (KIP-467): which records were bad, and why.
                fjord_engine::Error::Partition(fjord_engine::PartitionError::InvalidRecords {
                    message,
                    records,
                    ..
                }) if version >= 8 => refused
                    .with_error_message(Some(StrBytes::from_string(message)))
                    .with_record_errors(records.into_iter().map(record_error).collect()),
                _ => refused,
            }
        }
    }
}

fn record_error(error: fjord_engine::RecordError) -> BatchIndexAndErrorMessage {
    BatchIndexAndErrorMessage::default()
        .with_batch_index(error.batch_index)
        .with_batch_index_error_message(Some(StrBytes::from_string(error.message)))
}

//! Produce: append each partition's batches through the engine; answer with their base
//! offsets.

use fjord_engine::{Origin, Result};
use kafka_protocol::messages::produce_request::PartitionProduceData;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use super::{Context, since};
use crate::codes::error_code;

/// The first Produce version served: v0-v2 carry message formats v0 and v1, which Kafka 4
/// refuses too (KAFKA-18659). They are still advertised, as Kafka 4 does, because librdkafka
/// before 2.11.1 takes a range starting above v0 to mean compression is unsupported and
/// sends every batch uncompressed (librdkafka#4956). The connection answers them
/// (`produce_legacy`) before the codec, which cannot read them; this check is for callers
/// that reach the handler directly.
const PRODUCE_VERSION_MIN_SERVED: i16 = super::produce_legacy::LEGACY_VERSION_MAX + 1;

/// The first Produce version naming topics by id.
const TOPIC_ID_VERSION_MIN: i16 = 13;

/// Handles a produce request; `None` for acks=0, which gets no response.
pub(crate) async fn handle(
    context: &Context,
    version: i16,
    request: ProduceRequest,
) -> Option<ProduceResponse> {
    let acks_valid = matches!(request.acks, -1..=1);
    let mut responses = Vec::with_capacity(request.topic_data.len());
    for topic_data in request.topic_data {
        // From v13 a topic is named by its id (KIP-516).
        let name = if version >= TOPIC_ID_VERSION_MIN {
            context.engine().topic_name_of(topic_data.topic_id)
        } else {
            Ok(topic_data.name.to_string())
        };
        let mut partition_responses = Vec::with_capacity(topic_data.partition_data.len());
        for data in topic_data.partition_data {
            let index = data.index;
            let outcome = match &name {
                _ if version < PRODUCE_VERSION_MIN_SERVED => {
                    Err(refusal(crate::codes::Refusal::UnsupportedVersion.code()))
                }
                _ if !acks_valid => Err(refusal(crate::codes::Refusal::InvalidRequiredAcks.code())),
                Ok(name) => append(context, version, name, data).await,
                Err(unknown) => Err(refusal(error_code(unknown))),
            };
            partition_responses.push(
                match outcome {
                    Ok(response) => response,
                    Err(refused) => refused,
                }
                .with_index(index),
            );
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic_data.name)
                .with_topic_id(topic_data.topic_id)
                .with_partition_responses(partition_responses),
        );
    }
    (request.acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}

/// A partition's answer when nothing was written.
fn refusal(code: i16) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_error_code(code)
        .with_base_offset(-1)
}

async fn append(
    context: &Context,
    version: i16,
    topic_name: &str,
    data: PartitionProduceData,
) -> Result<PartitionProduceResponse, PartitionProduceResponse> {
    // A slice of the request frame, handed to the engine as it is: no copy.
    let batches = data.records.unwrap_or_default();
    let size_bytes = batches.len();
    let appended: Result<_> = context
        .engine()
        .append(topic_name, data.index, batches, Origin::Client)
        .await;
    match appended {
        Ok(appended) => {
            crate::metrics::produced(topic_name, size_bytes, appended.records_count);
            Ok(PartitionProduceResponse::default()
                .with_base_offset(appended.base_offset.0)
                .with_log_append_time_ms(appended.log_append_time_ms)
                .with_log_start_offset(since(version, 5, appended.log_start_offset.0, -1)))
        }
        Err(error) => {
            tracing::debug!(topic = topic_name, partition = data.index, %error, "produce refused");
            let refused = refusal(error_code(&error));
            Err(match error {
                // v8+ (KIP-467): which records were bad, and why.
                fjord_engine::Error::Log(fjord_engine::LogError::InvalidRecords {
                    message,
                    records,
                    ..
                }) if version >= 8 => refused
                    .with_error_message(Some(StrBytes::from_string(message)))
                    .with_record_errors(records.into_iter().map(record_error).collect()),
                _ => refused,
            })
        }
    }
}

fn record_error(error: fjord_engine::RecordError) -> BatchIndexAndErrorMessage {
    BatchIndexAndErrorMessage::default()
        .with_batch_index(error.batch_index)
        .with_batch_index_error_message(Some(StrBytes::from_string(error.message)))
}

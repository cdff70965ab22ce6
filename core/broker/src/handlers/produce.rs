//! Produce: append each partition's batches through the engine; answer with their base
//! offsets.

use bytes::BytesMut;
use fjord_engine::{Origin, Result};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_request::PartitionProduceData;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::{Context, since};
use crate::codes::error_code;

/// Handles a produce request; `None` for acks=0, which gets no response.
pub(crate) async fn handle(
    context: &Context,
    version: i16,
    request: ProduceRequest,
) -> Option<ProduceResponse> {
    let acks_valid = matches!(request.acks, -1..=1);
    let mut responses = Vec::with_capacity(request.topic_data.len());
    for topic_data in request.topic_data {
        let mut partition_responses = Vec::with_capacity(topic_data.partition_data.len());
        for data in topic_data.partition_data {
            let index = data.index;
            let outcome = if acks_valid {
                append(context, version, &topic_data.name, data).await
            } else {
                Err(ResponseError::InvalidRequiredAcks.code())
            };
            partition_responses.push(match outcome {
                Ok(response) => response.with_index(index),
                Err(code) => PartitionProduceResponse::default()
                    .with_index(index)
                    .with_error_code(code)
                    .with_base_offset(-1),
            });
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic_data.name)
                .with_partition_responses(partition_responses),
        );
    }
    (request.acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}

async fn append(
    context: &Context,
    version: i16,
    topic_name: &str,
    data: PartitionProduceData,
) -> Result<PartitionProduceResponse, i16> {
    let records = data.records.unwrap_or_default();
    // The log assigns offsets in place: take the bytes over if no one else holds them.
    let batches = records
        .try_into_mut()
        .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
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
            Err(error_code(&error))
        }
    }
}

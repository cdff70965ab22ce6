//! Produce: validate and append each partition's batches; answer with their base offsets.

use bytes::BytesMut;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_request::PartitionProduceData;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::{Context, blocking, now_ms};
use crate::codes::error_code;
use crate::topics::Topic;
use crate::{Error, Result};

/// Handles a produce request; `None` for acks=0, which gets no response.
pub(crate) fn handle(
    context: &Context,
    version: i16,
    request: ProduceRequest,
) -> Option<ProduceResponse> {
    let acks_valid = matches!(request.acks, -1..=1);
    let mut responses = Vec::with_capacity(request.topic_data.len());
    let mut appended = false;
    for topic_data in request.topic_data {
        let topic = context.topics().get(&topic_data.name);
        let partition_responses = topic_data
            .partition_data
            .into_iter()
            .map(|data| {
                let index = data.index;
                let outcome = if acks_valid {
                    append(topic.as_deref(), version, &topic_data.name, data)
                } else {
                    Err(ResponseError::InvalidRequiredAcks.code())
                };
                appended |= outcome.is_ok();
                match outcome {
                    Ok(response) => response.with_index(index),
                    Err(code) => PartitionProduceResponse::default()
                        .with_index(index)
                        .with_error_code(code)
                        .with_base_offset(-1),
                }
            })
            .collect();
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic_data.name)
                .with_partition_responses(partition_responses),
        );
    }
    if appended {
        context.notify_appended();
    }
    (request.acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}

fn append(
    topic: Option<&Topic>,
    version: i16,
    topic_name: &str,
    data: PartitionProduceData,
) -> Result<PartitionProduceResponse, i16> {
    let result: Result<PartitionProduceResponse> = (|| {
        let topic = topic.ok_or_else(|| Error::UnknownTopic {
            topic: topic_name.to_string(),
        })?;
        let partition = topic.partition(data.index)?;
        let records = data.records.unwrap_or_default();
        // The log assigns offsets in place: take the bytes over if no one else holds them.
        let mut batches = records
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        let size_bytes = batches.len();
        let info = blocking(|| partition.append(&mut batches, now_ms()))?;
        crate::metrics::produced(topic_name, size_bytes, info.records_count);
        let log_start_offset = partition.offsets()?.log_start_offset;
        Ok(PartitionProduceResponse::default()
            .with_base_offset(info.base_offset)
            .with_log_append_time_ms(info.log_append_time_ms)
            .with_log_start_offset(super::since(version, 5, log_start_offset, -1)))
    })();
    result.map_err(|error| {
        tracing::debug!(topic = topic_name, partition = data.index, %error, "produce refused");
        error_code(&error)
    })
}

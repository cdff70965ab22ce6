//! CreatePartitions: grows topics. Existing partitions and their data are untouched; keys
//! hash to new partitions from then on, as in Kafka.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use super::{Context, blocking, now_ms};
use crate::codes::error_code;

pub(crate) fn handle(
    context: &Context,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let results = request
        .topics
        .into_iter()
        .map(|topic| {
            let added = blocking(|| {
                context.topics().add_partitions(
                    &topic.name,
                    topic.count,
                    request.validate_only,
                    now_ms(),
                )
            });
            let result = CreatePartitionsTopicResult::default().with_name(topic.name);
            match added {
                Ok(()) => result,
                Err(error) => result
                    .with_error_code(error_code(&error))
                    .with_error_message(Some(StrBytes::from_string(error.to_string()))),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}

//! CreatePartitions: grows topics. Existing partitions and their data are untouched; keys
//! hash to new partitions from then on, as in Kafka.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use super::Context;
use crate::codes::error_code;

pub(crate) async fn handle(
    context: &Context,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let added = context
            .engine()
            .create_partitions(&topic.name, topic.count, request.validate_only)
            .await;
        let result = CreatePartitionsTopicResult::default().with_name(topic.name);
        results.push(match added {
            Ok(()) => result,
            Err(error) => result
                .with_error_code(error_code(&error))
                .with_error_message(Some(StrBytes::from_string(error.to_string()))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

//! DeleteTopics: remove topics and their logs.

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};

use super::Context;
use crate::codes::error_code;

pub(crate) async fn handle(
    context: &Context,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let mut responses = Vec::with_capacity(request.topic_names.len());
    for name in request.topic_names {
        let id = context
            .engine()
            .topic(&name)
            .map(|t| t.id)
            .unwrap_or_default();
        let result = DeletableTopicResult::default().with_topic_id(id);
        responses.push(match context.engine().delete_topic(&name).await {
            Ok(()) => result.with_name(Some(name)),
            Err(error) => result
                .with_name(Some(name))
                .with_error_code(error_code(&error)),
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

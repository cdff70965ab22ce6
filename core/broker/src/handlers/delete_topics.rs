//! DeleteTopics: remove topics and their logs.

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};

use super::{Context, blocking};
use crate::Error;
use crate::codes::error_code;
use crate::groups::offsets::OFFSETS_TOPIC;

pub(crate) fn handle(context: &Context, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let responses = request
        .topic_names
        .into_iter()
        .map(|name| {
            let id = context
                .topics()
                .get(&name)
                .map(|t| t.id)
                .unwrap_or_default();
            let result = DeletableTopicResult::default().with_topic_id(id);
            let deleted = if name.as_str() == OFFSETS_TOPIC {
                Err(Error::InternalTopic {
                    topic: name.to_string(),
                })
            } else {
                blocking(|| context.topics().delete(&name))
            };
            match deleted {
                Ok(()) => result.with_name(Some(name)),
                Err(error) => result
                    .with_name(Some(name))
                    .with_error_code(error_code(&error)),
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

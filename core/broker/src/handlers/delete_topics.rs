//! DeleteTopics: remove topics and their logs, named by name or (v6+) by id.

use fjord_engine::Error;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::{Context, since};
use crate::codes::error_code;

pub(crate) async fn handle(
    context: &Context,
    version: i16,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    // Up to v5 topics come as names; from v6 as (name or null, id) pairs.
    let asked: Vec<(Option<TopicName>, Uuid)> = request
        .topic_names
        .into_iter()
        .map(|name| (Some(name), Uuid::nil()))
        .chain(request.topics.into_iter().map(|t| (t.name, t.topic_id)))
        .collect();
    let mut responses = Vec::with_capacity(asked.len());
    for (name, topic_id) in asked {
        let engine = context.engine();
        let found = match &name {
            Some(name) if !name.is_empty() || topic_id.is_nil() => engine.require_topic(name),
            // By id alone (a null or empty name).
            _ => engine
                .topic_by_id(topic_id)
                .ok_or(Error::UnknownTopicId { topic_id }),
        };
        let name = found
            .as_ref()
            .ok()
            .map(|t| TopicName(StrBytes::from_string(t.name.clone())))
            .or(name);
        let id = found.as_ref().map_or(topic_id, |t| t.id);
        let deleted = match found {
            // An id and a name that disagree name no topic.
            Ok(topic) if !topic_id.is_nil() && topic.id != topic_id => {
                Err(Error::UnknownTopicId { topic_id })
            }
            Ok(topic) => engine.delete_topic(&topic.name).await,
            Err(error) => Err(error),
        };
        let result = DeletableTopicResult::default()
            .with_name(name)
            .with_topic_id(id);
        responses.push(match deleted {
            Ok(()) => result,
            Err(error) => result
                .with_error_code(error_code(&error))
                .with_error_message(since(
                    version,
                    5,
                    Some(StrBytes::from_string(error.to_string())),
                    None,
                )),
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

//! AlterConfigs: replaces a topic's whole set of config overrides.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::Context;
use super::configs::RESOURCE_TOPIC;
use crate::codes::error_code;

pub(crate) async fn handle(
    context: &Context,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        responses.push(alter(context, resource, request.validate_only).await);
    }
    AlterConfigsResponse::default().with_responses(responses)
}

async fn alter(
    context: &Context,
    resource: AlterConfigsResource,
    validate_only: bool,
) -> AlterConfigsResourceResponse {
    let response = AlterConfigsResourceResponse::default()
        .with_resource_type(resource.resource_type)
        .with_resource_name(resource.resource_name.clone());
    if resource.resource_type != RESOURCE_TOPIC {
        return response
            .with_error_code(crate::codes::Refusal::InvalidRequest.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "only topic configs can be altered; broker settings are set at start-up",
            )));
    }
    let overrides: BTreeMap<String, String> = resource
        .configs
        .iter()
        .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
        .collect();
    let altered = context
        .engine()
        .alter_topic_config(&resource.resource_name, overrides, validate_only)
        .await;
    match altered {
        Ok(()) => response,
        Err(error) => response
            .with_error_code(error_code(&error))
            .with_error_message(Some(StrBytes::from_string(error.to_string()))),
    }
}

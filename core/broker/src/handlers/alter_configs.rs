//! AlterConfigs: replaces a topic's whole set of config overrides.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};

use super::Context;
use super::configs::alter_topic;

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
    let overrides = || {
        Ok(resource
            .configs
            .iter()
            .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
            .collect::<BTreeMap<String, String>>())
    };
    let altered = alter_topic(
        context,
        resource.resource_type,
        &resource.resource_name,
        validate_only,
        overrides,
    )
    .await;
    match altered {
        Ok(()) => response,
        Err((code, message)) => response
            .with_error_code(code)
            .with_error_message(Some(message)),
    }
}

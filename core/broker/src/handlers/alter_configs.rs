//! AlterConfigs: replaces a topic's whole set of config overrides.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::configs::RESOURCE_TOPIC;
use super::{Context, blocking};
use crate::codes::error_code;

pub(crate) fn handle(context: &Context, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let responses = request
        .resources
        .into_iter()
        .map(|resource| {
            let response = AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            if resource.resource_type != RESOURCE_TOPIC {
                return response
                    .with_error_code(kafka_protocol::ResponseError::InvalidRequest.code())
                    .with_error_message(Some(StrBytes::from_static_str(
                        "only topic configs can be altered; broker settings are set at start-up",
                    )));
            }
            let overrides: BTreeMap<String, String> = resource
                .configs
                .iter()
                .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                .collect();
            let altered = blocking(|| {
                context.topics().alter_config(
                    &resource.resource_name,
                    overrides,
                    request.validate_only,
                )
            });
            match altered {
                Ok(()) => response,
                Err(error) => response
                    .with_error_code(error_code(&error))
                    .with_error_message(Some(StrBytes::from_string(error.to_string()))),
            }
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

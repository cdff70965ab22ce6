//! IncrementalAlterConfigs: set, delete, append to or subtract from single topic configs.

use std::collections::BTreeMap;

use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::Context;
use super::configs::alter_topic;
use fjord_engine::{Error, Result};

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

pub(crate) async fn handle(
    context: &Context,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        responses.push(alter(context, resource, request.validate_only).await);
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

async fn alter(
    context: &Context,
    resource: AlterConfigsResource,
    validate_only: bool,
) -> AlterConfigsResourceResponse {
    let response = AlterConfigsResourceResponse::default()
        .with_resource_type(resource.resource_type)
        .with_resource_name(resource.resource_name.clone());
    let engine = context.engine();
    let overrides = || {
        let topic = engine.require_topic(&resource.resource_name)?;
        apply(topic.overrides.clone(), &topic.config, &resource.configs)
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

fn apply(
    mut overrides: BTreeMap<String, String>,
    current: &fjord_engine::TopicConfig,
    changes: &[AlterableConfig],
) -> Result<BTreeMap<String, String>> {
    for change in changes {
        let name = change.name.to_string();
        let value = change
            .value
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_default();
        let invalid = |reason| {
            Error::Partition(fjord_engine::PartitionError::InvalidConfig {
                name: name.clone(),
                value: value.clone(),
                reason,
            })
        };
        match change.config_operation {
            SET => {
                overrides.insert(name.clone(), value.clone());
            }
            DELETE => {
                overrides.remove(&name);
            }
            APPEND | SUBTRACT if name == "cleanup.policy" => {
                let present = current
                    .entries()
                    .into_iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                let mut items: Vec<String> = overrides
                    .get(&name)
                    .unwrap_or(&present)
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if change.config_operation == APPEND {
                        if !items.iter().any(|i| i == item) {
                            items.push(item.to_string());
                        }
                    } else {
                        items.retain(|i| i != item);
                    }
                }
                if items.is_empty() {
                    return Err(invalid("cleanup.policy cannot be empty"));
                }
                overrides.insert(name.clone(), items.join(","));
            }
            APPEND | SUBTRACT => return Err(invalid("APPEND and SUBTRACT apply to list configs")),
            _ => return Err(invalid("unknown config operation")),
        }
    }
    Ok(overrides)
}

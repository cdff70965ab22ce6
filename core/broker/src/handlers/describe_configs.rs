//! DescribeConfigs: a topic's effective configs (overrides marked as such) or the broker's.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::configs::{RESOURCE_BROKER, RESOURCE_TOPIC, broker_entries, config_type};
use super::{Context, since};
use crate::codes::error_code;

/// `ConfigSource` values.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

/// One config as described: name, value, source, read-only.
type Described = (String, String, i8, bool);

pub(crate) fn handle(
    context: &Context,
    version: i16,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let described = describe(context, resource.resource_type, &resource.resource_name);
            match described {
                Ok(entries) => {
                    let keys = resource.configuration_keys.as_deref();
                    let configs = entries
                        .into_iter()
                        .filter(|(name, ..)| {
                            keys.is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
                        })
                        .map(|(name, value, source, read_only)| {
                            DescribeConfigsResourceResult::default()
                                .with_config_type(since(version, 3, config_type(&name), 0))
                                .with_name(StrBytes::from_string(name))
                                .with_value(Some(StrBytes::from_string(value)))
                                .with_read_only(read_only)
                                .with_config_source(source)
                        })
                        .collect();
                    result.with_configs(configs)
                }
                Err((code, message)) => result
                    .with_error_code(code)
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn describe(
    context: &Context,
    resource_type: i8,
    name: &str,
) -> Result<Vec<Described>, (i16, String)> {
    let defaults = fjord_engine::TopicConfig::default().entries();
    let source = |config_name: &str, value: &str| {
        let built_in = defaults
            .iter()
            .any(|(n, v)| *n == config_name && v == value);
        if built_in {
            SOURCE_DEFAULT
        } else {
            SOURCE_STATIC_BROKER
        }
    };
    match resource_type {
        RESOURCE_TOPIC => {
            let topic = context
                .engine()
                .require_topic(name)
                .map_err(|e| (error_code(&e), e.to_string()))?;
            Ok(topic
                .config
                .entries()
                .into_iter()
                .map(
                    |(config_name, value)| match topic.overrides.get(config_name) {
                        // As the user wrote it: "delete,compact" stays in that order.
                        Some(set) => (config_name.to_string(), set.clone(), SOURCE_TOPIC, false),
                        None => {
                            let source = source(config_name, &value);
                            (config_name.to_string(), value, source, false)
                        }
                    },
                )
                .collect())
        }
        RESOURCE_BROKER => {
            if name != context.config().node_id.to_string() && !name.is_empty() {
                return Err((
                    crate::codes::Refusal::InvalidRequest.code(),
                    format!("this is broker {}, not {name:?}", context.config().node_id),
                ));
            }
            Ok(broker_entries(context)
                .into_iter()
                .map(|(name, value)| (name, value, SOURCE_STATIC_BROKER, true))
                .collect())
        }
        other => Err((
            crate::codes::Refusal::InvalidRequest.code(),
            format!("resource type {other} has no configs here"),
        )),
    }
}

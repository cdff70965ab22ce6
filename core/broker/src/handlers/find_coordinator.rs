//! FindCoordinator: this broker coordinates every group (a single node). Transaction
//! coordinators are refused until transactions exist.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::{Context, since};
use crate::codes::error_code;
use fjord_engine::Error;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub(crate) fn handle(
    context: &Context,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let config = context.config();
    let (code, message) = match request.key_type {
        KEY_TYPE_GROUP => (0, None),
        KEY_TYPE_TRANSACTION => {
            let error = Error::TransactionsUnsupported;
            (error_code(&error), Some(error.to_string()))
        }
        other => (
            crate::codes::Refusal::InvalidRequest.code(),
            Some(format!("unknown coordinator key type {other}")),
        ),
    };
    let (node_id, host, port) = if code == 0 {
        (
            config.node_id,
            config.advertised_host.clone(),
            i32::from(config.advertised_port),
        )
    } else {
        (-1, String::new(), -1)
    };
    let message = message.map(StrBytes::from_string);
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(node_id))
                    .with_host(StrBytes::from_string(host.clone()))
                    .with_port(port)
                    .with_error_code(code)
                    .with_error_message(message.clone())
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_error_message(since(version, 1, message, None))
        .with_node_id(BrokerId(node_id))
        .with_host(StrBytes::from_string(host))
        .with_port(port)
}

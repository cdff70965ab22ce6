//! FindCoordinator: this broker coordinates every group and every transactional id (a
//! single node).

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::{Context, since};
use crate::codes::Refusal;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// This node, or why it does not coordinate `key`: (error code, message).
fn refusal(key_type: i8, key: &str) -> Option<(i16, String)> {
    match key_type {
        KEY_TYPE_GROUP => None,
        KEY_TYPE_TRANSACTION if key.is_empty() => Some((
            Refusal::InvalidRequest.code(),
            "a transactional id may not be empty".into(),
        )),
        KEY_TYPE_TRANSACTION => None,
        other => Some((
            Refusal::InvalidRequest.code(),
            format!("unknown coordinator key type {other}"),
        )),
    }
}

pub(crate) fn handle(
    context: &Context,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let config = context.config();
    let answer = |key: &str| {
        let refused = refusal(request.key_type, key);
        let (node_id, host, port) = match refused {
            None => (
                config.node_id,
                config.advertised_host.clone(),
                i32::from(config.advertised_port),
            ),
            Some(_) => (-1, String::new(), -1),
        };
        let (code, message) = refused.map_or((0, None), |(code, m)| (code, Some(m)));
        (
            code,
            message.map(StrBytes::from_string),
            node_id,
            host,
            port,
        )
    };
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let (code, message, node_id, host, port) = answer(key);
                Coordinator::default()
                    .with_key(key.clone())
                    .with_node_id(BrokerId(node_id))
                    .with_host(StrBytes::from_string(host))
                    .with_port(port)
                    .with_error_code(code)
                    .with_error_message(message)
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let (code, message, node_id, host, port) = answer(&request.key);
    FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_error_message(since(version, 1, message, None))
        .with_node_id(BrokerId(node_id))
        .with_host(StrBytes::from_string(host))
        .with_port(port)
}

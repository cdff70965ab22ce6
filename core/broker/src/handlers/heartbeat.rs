//! Heartbeat: keeps a member's session alive and tells it when a rebalance started.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::Context;
use crate::codes::error_code;
use fjord_engine::Identity;

pub(crate) fn handle(context: &Context, request: HeartbeatRequest) -> HeartbeatResponse {
    let identity = Identity {
        member_id: &request.member_id,
        generation_id: request.generation_id,
        group_instance_id: request.group_instance_id.as_deref(),
    };
    let code = match context
        .engine()
        .groups()
        .heartbeat(&request.group_id, identity)
    {
        Ok(()) => 0,
        Err(error) => error_code(&error),
    };
    HeartbeatResponse::default().with_error_code(code)
}

//! JoinGroup: enter (or re-enter) a rebalance round; answered when the round's join phase
//! completes, which may take until the rebalance timeout.

use std::net::SocketAddr;
use std::time::Duration;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use super::{Context, nullable_since, since, wait};
use crate::codes::error_code;
use fjord_engine::Error;
use fjord_engine::{JoinRequest, Joined};

pub(crate) async fn handle(
    context: &Context,
    header: &RequestHeader,
    version: i16,
    peer: SocketAddr,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    let rebalance_timeout_ms = if version >= 1 {
        request.rebalance_timeout_ms
    } else {
        request.session_timeout_ms
    };
    let join = JoinRequest {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|s| s.to_string()),
        client_id: header
            .client_id
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        client_host: format!("/{}", peer.ip()),
        session_timeout: millis(request.session_timeout_ms),
        rebalance_timeout: millis(rebalance_timeout_ms),
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let member_id = join.member_id.clone();
    match wait(
        context
            .engine()
            .groups()
            .join(&request.group_id, join)
            .await,
    )
    .await
    {
        Ok(joined) => joined_response(version, joined),
        Err(error) => {
            tracing::debug!(group = %request.group_id.as_str(), %error, "join refused");
            let member_id = match &error {
                Error::MemberIdRequired { member_id } => member_id.clone(),
                _ => member_id,
            };
            JoinGroupResponse::default()
                .with_error_code(error_code(&error))
                .with_generation_id(-1)
                .with_protocol_name(nullable_since(version, 7, None))
                .with_member_id(StrBytes::from_string(member_id))
        }
    }
}

fn joined_response(version: i16, joined: Joined) -> JoinGroupResponse {
    let members = joined
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(StrBytes::from_string(m.member_id))
                .with_group_instance_id(since(
                    version,
                    5,
                    m.group_instance_id.map(StrBytes::from_string),
                    None,
                ))
                .with_metadata(m.metadata)
        })
        .collect();
    JoinGroupResponse::default()
        .with_generation_id(joined.generation_id)
        .with_protocol_type(since(
            version,
            7,
            joined.protocol_type.map(StrBytes::from_string),
            None,
        ))
        .with_protocol_name(nullable_since(version, 7, joined.protocol_name))
        .with_leader(StrBytes::from_string(joined.leader))
        .with_member_id(StrBytes::from_string(joined.member_id))
        .with_members(members)
}

fn millis(value: i32) -> Duration {
    Duration::from_millis(u64::try_from(value).unwrap_or(0))
}

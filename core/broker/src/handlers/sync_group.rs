//! SyncGroup: the leader hands in the assignment; every member gets its part once it has.

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::{Context, since, wait};
use crate::codes::error_code;
use fjord_engine::Error;
use fjord_engine::Identity;

pub(crate) async fn handle(
    context: &Context,
    version: i16,
    request: SyncGroupRequest,
) -> SyncGroupResponse {
    let identity = Identity {
        member_id: &request.member_id,
        generation_id: request.generation_id,
        group_instance_id: request.group_instance_id.as_deref(),
    };
    let assignments = request
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    let reply = context
        .engine()
        .groups()
        .sync(&request.group_id, identity, assignments);
    let outcome = wait(reply).await.and_then(|synced| {
        let mismatch = |asked: &Option<StrBytes>, actual: &Option<String>| {
            asked
                .as_deref()
                .is_some_and(|asked| Some(asked) != actual.as_deref())
        };
        if mismatch(&request.protocol_type, &synced.protocol_type)
            || mismatch(&request.protocol_name, &synced.protocol_name)
        {
            return Err(Error::InconsistentGroupProtocol {
                group_id: request.group_id.to_string(),
            });
        }
        Ok(synced)
    });
    match outcome {
        Ok(synced) => SyncGroupResponse::default()
            .with_protocol_type(since(
                version,
                5,
                synced.protocol_type.map(StrBytes::from_string),
                None,
            ))
            .with_protocol_name(since(
                version,
                5,
                synced.protocol_name.map(StrBytes::from_string),
                None,
            ))
            .with_assignment(synced.assignment),
        Err(error) => {
            tracing::debug!(group = %request.group_id.as_str(), %error, "sync refused");
            SyncGroupResponse::default().with_error_code(error_code(&error))
        }
    }
}

//! ListGroups: every group, optionally filtered by state (v4+) and type (v5+).

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::{Context, since};

pub(crate) fn handle(
    context: &Context,
    version: i16,
    request: ListGroupsRequest,
) -> ListGroupsResponse {
    let wanted = |value: &str, filter: &[StrBytes]| {
        filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
    };
    let groups = context
        .engine()
        .groups()
        .list()
        .into_iter()
        .filter(|(_, _, state)| wanted(state.name(), &request.states_filter))
        .filter(|_| wanted("classic", &request.types_filter))
        .map(|(group_id, protocol_type, state)| {
            ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(group_id)))
                .with_protocol_type(StrBytes::from_string(protocol_type))
                .with_group_state(since(
                    version,
                    4,
                    StrBytes::from_static_str(state.name()),
                    StrBytes::default(),
                ))
                .with_group_type(since(
                    version,
                    5,
                    StrBytes::from_static_str("classic"),
                    StrBytes::default(),
                ))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

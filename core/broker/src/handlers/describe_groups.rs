//! DescribeGroups: state, protocol and members (with metadata and assignment) of groups.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::{Context, since};

pub(crate) fn handle(
    context: &Context,
    version: i16,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let groups = request
        .groups
        .into_iter()
        .map(|group_id| {
            let Some(description) = context.engine().groups().describe(&group_id) else {
                // Kafka describes an unknown group as Dead; v6 adds an explicit error.
                return DescribedGroup::default()
                    .with_group_id(group_id)
                    .with_error_code(since(
                        version,
                        6,
                        crate::codes::Refusal::GroupIdNotFound.code(),
                        0,
                    ))
                    .with_group_state(StrBytes::from_static_str("Dead"));
            };
            let members = description
                .members
                .into_iter()
                .map(|m| {
                    DescribedGroupMember::default()
                        .with_member_id(StrBytes::from_string(m.member_id))
                        .with_group_instance_id(since(
                            version,
                            4,
                            m.group_instance_id.map(StrBytes::from_string),
                            None,
                        ))
                        .with_client_id(StrBytes::from_string(m.client_id))
                        .with_client_host(StrBytes::from_string(m.client_host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(m.assignment)
                })
                .collect();
            DescribedGroup::default()
                .with_group_id(group_id)
                .with_group_state(StrBytes::from_static_str(description.state.name()))
                .with_protocol_type(StrBytes::from_string(description.protocol_type))
                .with_protocol_data(StrBytes::from_string(description.protocol_name))
                .with_members(members)
                .with_authorized_operations(since(
                    version,
                    3,
                    super::authorized::if_requested(
                        request.include_authorized_operations,
                        super::authorized::GROUP,
                    ),
                    super::authorized::NOT_REQUESTED,
                ))
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

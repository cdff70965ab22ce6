//! DescribeCluster: this one broker, which is also the controller.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::{Context, since};

/// `endpoint_type` 1: brokers (2 would be controllers, which clients cannot reach here).
const ENDPOINT_BROKERS: i8 = 1;

pub(crate) fn handle(
    context: &Context,
    version: i16,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let config = context.config();
    if version >= 1 && request.endpoint_type != ENDPOINT_BROKERS {
        return DescribeClusterResponse::default()
            .with_error_code(crate::codes::Refusal::UnsupportedEndpointType.code())
            .with_endpoint_type(request.endpoint_type)
            .with_controller_id(BrokerId(-1));
    }
    let broker = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(config.node_id))
        .with_host(StrBytes::from_string(config.advertised_host.clone()))
        .with_port(i32::from(config.advertised_port));
    DescribeClusterResponse::default()
        .with_endpoint_type(since(version, 1, ENDPOINT_BROKERS, 1))
        .with_cluster_id(StrBytes::from_string(config.cluster_id.clone()))
        .with_controller_id(BrokerId(config.node_id))
        .with_brokers(vec![broker])
        .with_cluster_authorized_operations(super::authorized::if_requested(
            request.include_cluster_authorized_operations,
            super::authorized::CLUSTER,
        ))
}

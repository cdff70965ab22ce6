//! One file per Kafka API. [`dispatch`] routes a decoded request to its handler.

mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod alter_configs;
pub(crate) mod api_versions;
mod authorized;
mod configs;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_transactions;
mod end_txn;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_transactions;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod produce;
pub(crate) mod produce_legacy;
mod sync_group;
#[cfg(test)]
mod tests;
mod txn_offset_commit;

use std::net::SocketAddr;
use std::sync::Arc;

use fjord_engine::{Engine, Reply};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};

use crate::{BrokerConfig, Error, Result};

/// The APIs and versions this broker implements, advertised exactly by ApiVersions: Apache
/// Kafka 4.1's ranges (the README lists both).
pub(crate) const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    // From v0 as Kafka 4 advertises it; v0-v2 are answered UNSUPPORTED_VERSION (produce.rs).
    (ApiKey::Produce, 0, 13),
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeCluster, 0, 2),
    // Transactions V1: the client versions (AddPartitionsToTxn v4+ is broker to broker;
    // EndTxn v5 and TxnOffsetCommit v5 belong to transactions V2).
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 4),
    (ApiKey::TxnOffsetCommit, 0, 4),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 2),
];

pub(crate) fn supports(api_key: ApiKey, version: i16) -> bool {
    SUPPORTED
        .iter()
        .any(|&(key, min, max)| key == api_key && (min..=max).contains(&version))
}

/// What every connection shares: the front end's settings and the engine it serves.
#[derive(Debug)]
pub(crate) struct Context {
    config: BrokerConfig,
    engine: Arc<Engine>,
    fetch_sessions: fetch::session::FetchSessions,
}

impl Context {
    pub(crate) fn new(config: BrokerConfig, engine: Arc<Engine>) -> Self {
        let fetch_sessions = fetch::session::FetchSessions::new(config.fetch_session_cache_slots);
        Self {
            config,
            engine,
            fetch_sessions,
        }
    }

    /// The incremental fetch sessions (KIP-227), shared by every connection.
    pub(crate) fn fetch_sessions(&self) -> &fetch::session::FetchSessions {
        &self.fetch_sessions
    }

    pub(crate) fn config(&self) -> &BrokerConfig {
        &self.config
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// A handler's answer: a message for the codec, or a fetch answer whose records the codec
/// never sees (they go to the socket as they are stored).
#[derive(Debug)]
pub(crate) enum Response {
    Message(ResponseKind),
    Fetch(fetch::Answer),
}

/// Handles one request. `None` means no response is sent (produce with acks=0).
pub(crate) async fn dispatch(
    context: &Context,
    header: &RequestHeader,
    peer: SocketAddr,
    request: RequestKind,
) -> Result<Option<Response>> {
    let version = header.request_api_version;
    let response = match request {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions::handle()),
        RequestKind::Metadata(r) => {
            ResponseKind::Metadata(metadata::handle(context, version, r).await)
        }
        RequestKind::CreateTopics(r) => {
            ResponseKind::CreateTopics(create_topics::handle(context, version, r).await)
        }
        RequestKind::DeleteTopics(r) => {
            ResponseKind::DeleteTopics(delete_topics::handle(context, version, r).await)
        }
        RequestKind::Produce(r) => match produce::handle(context, version, r).await {
            Some(response) => ResponseKind::Produce(response),
            None => return Ok(None),
        },
        RequestKind::Fetch(r) => {
            return Ok(Some(Response::Fetch(
                fetch::handle(context, version, r).await,
            )));
        }
        RequestKind::ListOffsets(r) => {
            ResponseKind::ListOffsets(list_offsets::handle(context, version, r).await)
        }
        RequestKind::InitProducerId(r) => {
            ResponseKind::InitProducerId(init_producer_id::handle(context, version, r).await)
        }
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(find_coordinator::handle(context, version, r))
        }
        RequestKind::JoinGroup(r) => {
            ResponseKind::JoinGroup(join_group::handle(context, header, version, peer, r).await)
        }
        RequestKind::SyncGroup(r) => {
            ResponseKind::SyncGroup(sync_group::handle(context, version, r).await)
        }
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(heartbeat::handle(context, r)),
        RequestKind::LeaveGroup(r) => {
            ResponseKind::LeaveGroup(leave_group::handle(context, version, r))
        }
        RequestKind::OffsetCommit(r) => {
            ResponseKind::OffsetCommit(offset_commit::handle(context, r).await)
        }
        RequestKind::OffsetFetch(r) => {
            ResponseKind::OffsetFetch(offset_fetch::handle(context, version, r))
        }
        RequestKind::OffsetDelete(r) => {
            ResponseKind::OffsetDelete(offset_delete::handle(context, r).await)
        }
        RequestKind::ListGroups(r) => {
            ResponseKind::ListGroups(list_groups::handle(context, version, r))
        }
        RequestKind::DescribeGroups(r) => {
            ResponseKind::DescribeGroups(describe_groups::handle(context, version, r))
        }
        RequestKind::DeleteGroups(r) => {
            ResponseKind::DeleteGroups(delete_groups::handle(context, r).await)
        }
        RequestKind::DescribeConfigs(r) => {
            ResponseKind::DescribeConfigs(describe_configs::handle(context, version, r))
        }
        RequestKind::AlterConfigs(r) => {
            ResponseKind::AlterConfigs(alter_configs::handle(context, r).await)
        }
        RequestKind::IncrementalAlterConfigs(r) => ResponseKind::IncrementalAlterConfigs(
            incremental_alter_configs::handle(context, r).await,
        ),
        RequestKind::CreatePartitions(r) => {
            ResponseKind::CreatePartitions(create_partitions::handle(context, r).await)
        }
        RequestKind::DeleteRecords(r) => {
            ResponseKind::DeleteRecords(delete_records::handle(context, r).await)
        }
        RequestKind::AddPartitionsToTxn(r) => ResponseKind::AddPartitionsToTxn(
            add_partitions_to_txn::handle(context, version, r).await,
        ),
        RequestKind::AddOffsetsToTxn(r) => {
            ResponseKind::AddOffsetsToTxn(add_offsets_to_txn::handle(context, version, r).await)
        }
        RequestKind::TxnOffsetCommit(r) => {
            ResponseKind::TxnOffsetCommit(txn_offset_commit::handle(context, version, r).await)
        }
        RequestKind::EndTxn(r) => ResponseKind::EndTxn(end_txn::handle(context, version, r).await),
        RequestKind::DescribeTransactions(r) => {
            ResponseKind::DescribeTransactions(describe_transactions::handle(context, r))
        }
        RequestKind::ListTransactions(r) => {
            ResponseKind::ListTransactions(list_transactions::handle(context, r))
        }
        RequestKind::DescribeCluster(r) => {
            ResponseKind::DescribeCluster(describe_cluster::handle(context, version, r))
        }
        other => {
            return Err(Error::MalformedRequest {
                reason: format!("no handler for {other:?}"),
            });
        }
    };
    Ok(Some(Response::Message(response)))
}

/// The name of the topic a request names: by its id in the versions that name topics by id
/// (KIP-516: Produce and Fetch from v13), else by its name. An id naming no topic is
/// `UnknownTopicId`.
pub(crate) fn topic_name(
    context: &Context,
    by_id: bool,
    name: &str,
    id: uuid::Uuid,
) -> fjord_engine::Result<String> {
    if by_id {
        context.engine().topic_name_of(id)
    } else {
        Ok(name.to_string())
    }
}

/// Fields that exist only from some version on must keep their default below it: the codec
/// refuses to encode them otherwise. `since(version, first, value, default)` picks.
pub(crate) fn since<T>(version: i16, first: i16, value: T, default: T) -> T {
    if version >= first { value } else { default }
}

/// A string field that is nullable only from version `first`: below it, null is sent as "".
pub(crate) fn nullable_since(
    version: i16,
    first: i16,
    value: Option<String>,
) -> Option<kafka_protocol::protocol::StrBytes> {
    let value = if version >= first {
        value
    } else {
        Some(value.unwrap_or_default())
    };
    value.map(kafka_protocol::protocol::StrBytes::from_string)
}

/// Waits for a group reply that may come when a rebalance round moves on.
pub(crate) async fn wait<T>(reply: Reply<T>) -> fjord_engine::Result<T> {
    match reply {
        Reply::Now(result) => result,
        // The sender is dropped only if the group itself went away.
        Reply::Later(receiver) => receiver
            .await
            .unwrap_or(Err(fjord_engine::Error::CoordinatorNotAvailable)),
    }
}

use std::net::SocketAddr;

use crate::limits::{
    CONNECTIONS_DEFAULT, CONNECTIONS_PER_IP_DEFAULT, FETCH_SESSION_CACHE_SLOTS_DEFAULT,
    REQUEST_BYTES_MAX_DEFAULT,
};

/// How the Kafka front end runs. What it serves (topics, groups) is the engine's.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Where to accept connections.
    pub listen: SocketAddr,
    /// Host and port clients are told to connect to (Metadata); the listen address if unset.
    pub advertised_host: String,
    pub advertised_port: u16,
    /// This broker's id in Metadata responses.
    pub node_id: i32,
    /// Reported in Metadata and DescribeCluster.
    pub cluster_id: String,
    /// `socket.request.max.bytes`: larger frames close the connection before allocation.
    pub request_bytes_max: usize,
    /// `max.connections`: at this many open connections the listener waits for one to close.
    pub connections_max: usize,
    /// `max.connections.per.ip`: a connection past this many from one address is closed.
    pub connections_per_ip_max: usize,
    /// `max.incremental.fetch.session.cache.slots`: incremental fetch sessions kept.
    pub fetch_session_cache_slots: usize,
}

impl BrokerConfig {
    /// A broker on `listen`, with Kafka's defaults otherwise.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            advertised_host: listen.ip().to_string(),
            advertised_port: listen.port(),
            node_id: 1,
            cluster_id: "fjord-cluster".to_string(),
            request_bytes_max: REQUEST_BYTES_MAX_DEFAULT,
            connections_max: CONNECTIONS_DEFAULT,
            connections_per_ip_max: CONNECTIONS_PER_IP_DEFAULT,
            fetch_session_cache_slots: FETCH_SESSION_CACHE_SLOTS_DEFAULT,
        }
    }
}

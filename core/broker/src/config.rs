use std::net::SocketAddr;

/// Largest request frame accepted by default (Kafka's `socket.request.max.bytes`).
pub(crate) const REQUEST_BYTES_MAX_DEFAULT: usize = 100 * 1024 * 1024;

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
        }
    }
}

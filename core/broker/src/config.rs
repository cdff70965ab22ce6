use std::net::SocketAddr;
use std::path::PathBuf;

use fjord_log::LogConfig;

/// Largest request frame accepted by default (Kafka's `socket.request.max.bytes`).
pub(crate) const REQUEST_BYTES_MAX_DEFAULT: usize = 100 * 1024 * 1024;

/// How a broker runs.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Where to accept connections.
    pub listen: SocketAddr,
    /// Host and port clients are told to connect to (Metadata); the listen address if unset.
    pub advertised_host: String,
    pub advertised_port: u16,
    /// The data directory: `logs/` (partition logs) and `topics/` (topic metadata).
    pub data_dir: PathBuf,
    /// This broker's id in Metadata responses.
    pub node_id: i32,
    /// Reported in Metadata and DescribeCluster.
    pub cluster_id: String,
    /// `auto.create.topics.enable`: create a topic the first time Metadata or Produce names it.
    pub auto_create_topics: bool,
    /// `num.partitions`: partitions of auto-created topics and of CreateTopics asking for -1.
    pub default_partitions: i32,
    /// Upper bound on partitions per topic, so one request cannot exhaust the machine.
    pub partitions_max: i32,
    /// `socket.request.max.bytes`: larger frames close the connection before allocation.
    pub request_bytes_max: usize,
    /// Topic config defaults (`log.*` broker settings in Kafka); topics override by name.
    pub log_defaults: LogConfig,
    /// Most files the logs keep open at once.
    pub open_files_max: usize,
    /// The group coordinator's settings.
    pub groups: crate::GroupConfig,
}

impl BrokerConfig {
    /// A broker on `listen`, storing data in `data_dir`, with Kafka's defaults otherwise.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            listen,
            advertised_host: listen.ip().to_string(),
            advertised_port: listen.port(),
            data_dir,
            node_id: 1,
            cluster_id: "fjord-cluster".to_string(),
            auto_create_topics: true,
            default_partitions: 1,
            partitions_max: 10_000,
            request_bytes_max: REQUEST_BYTES_MAX_DEFAULT,
            log_defaults: LogConfig::default(),
            open_files_max: fjord_log::limits::OPEN_FILES_DEFAULT,
            groups: crate::GroupConfig::default(),
        }
    }
}

//! `fjord serve`: the broker, its flags and environment variables, and clean shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use fjord_broker::{Broker, BrokerConfig};

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Address to accept Kafka clients on.
    #[arg(long, env = "FJORD_LISTEN", default_value = "127.0.0.1:9092")]
    listen: SocketAddr,
    /// Address clients are told to connect to, HOST:PORT (defaults to the listen address).
    #[arg(long, env = "FJORD_ADVERTISED_LISTENER")]
    advertised_listener: Option<String>,
    /// Data directory: partition logs and topic metadata.
    #[arg(long, env = "FJORD_DATA_DIR", default_value = "fjord-data")]
    data_dir: PathBuf,
    /// This broker's node id.
    #[arg(long, env = "FJORD_NODE_ID", default_value_t = 1)]
    node_id: i32,
    /// Create topics on first use (Kafka's auto.create.topics.enable).
    #[arg(long, env = "FJORD_AUTO_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    auto_create_topics: bool,
    /// Partitions of auto-created topics (Kafka's num.partitions).
    #[arg(long, env = "FJORD_NUM_PARTITIONS", default_value_t = 1)]
    num_partitions: i32,
    /// How long a new consumer group waits for more members before its first rebalance
    /// completes (Kafka's group.initial.rebalance.delay.ms).
    #[arg(
        long,
        env = "FJORD_GROUP_INITIAL_REBALANCE_DELAY_MS",
        default_value_t = 3000
    )]
    group_initial_rebalance_delay_ms: u64,
    /// Shortest session timeout a consumer may ask for (Kafka's group.min.session.timeout.ms).
    #[arg(
        long,
        env = "FJORD_GROUP_MIN_SESSION_TIMEOUT_MS",
        default_value_t = 6000
    )]
    group_min_session_timeout_ms: i32,
    /// Where Prometheus scrapes `GET /metrics`; `off` disables the endpoint.
    #[arg(long, env = "FJORD_METRICS_LISTEN", default_value = "127.0.0.1:9644")]
    metrics_listen: String,
    /// Default topic config, Kafka names: --log-config flush.messages=1 (repeatable).
    #[arg(long = "log-config", value_name = "NAME=VALUE")]
    log_config: Vec<String>,
}

pub(crate) fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = BrokerConfig::new(args.listen, args.data_dir);
    config.node_id = args.node_id;
    config.auto_create_topics = args.auto_create_topics;
    config.default_partitions = args.num_partitions;
    config.groups.initial_rebalance_delay =
        std::time::Duration::from_millis(args.group_initial_rebalance_delay_ms);
    config.groups.session_timeout_min_ms = args.group_min_session_timeout_ms;
    if let Some(advertised) = args.advertised_listener {
        let (host, port) = advertised
            .rsplit_once(':')
            .context("--advertised-listener must be HOST:PORT")?;
        config.advertised_host = host.to_string();
        config.advertised_port = port.parse().context("advertised port")?;
    }
    for setting in &args.log_config {
        let (name, value) = setting
            .split_once('=')
            .with_context(|| format!("--log-config {setting:?} must be NAME=VALUE"))?;
        config.log_defaults.set(name, value)?;
    }
    config.log_defaults.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fjord")
        .build()?;
    let metrics_listen: Option<SocketAddr> = match args.metrics_listen.as_str() {
        "off" | "" => None,
        listen => Some(
            listen
                .parse()
                .context("--metrics-listen must be HOST:PORT or off")?,
        ),
    };
    runtime.block_on(async {
        if let Some(listen) = metrics_listen {
            crate::metrics::serve(listen).await?;
        }
        let broker = Broker::bind(config).await?;
        broker.run(shutdown_signal()).await?;
        anyhow::Ok(())
    })
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; Ctrl-C only");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
}

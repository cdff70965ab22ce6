//! `fjord serve`: the broker, its flags, environment variables and settings file, and clean
//! shutdown.

mod config_file;
mod heap;
mod processors;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use fjord_broker::{Broker, BrokerConfig};
use fjord_engine::{Engine, EngineConfig, HookPoint, Hooks, SystemClock, TransactionConfig};

use self::config_file::ServeFile;

/// `fjord serve` settings. Each one comes from its flag, else its environment variable, else
/// the `--config` file, else the default named in its help.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Settings file (YAML): keys are these flags' long names, plus `log-config` as a map.
    #[arg(long, env = "FJORD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to accept Kafka clients on [default: 127.0.0.1:9092].
    #[arg(long, env = "FJORD_LISTEN")]
    listen: Option<String>,
    /// Address clients are told to connect to, HOST:PORT [default: the listen address].
    #[arg(long, env = "FJORD_ADVERTISED_LISTENER")]
    advertised_listener: Option<String>,
    /// Data directory: partition logs and topic metadata [default: fjord-data].
    #[arg(long, env = "FJORD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// This broker's node id [default: 1].
    #[arg(long, env = "FJORD_NODE_ID")]
    node_id: Option<i32>,
    /// Create topics on first use, Kafka's auto.create.topics.enable [default: true].
    #[arg(long, env = "FJORD_AUTO_CREATE_TOPICS", action = clap::ArgAction::Set)]
    auto_create_topics: Option<bool>,
    /// Partitions of auto-created topics, Kafka's num.partitions [default: 1].
    #[arg(long, env = "FJORD_NUM_PARTITIONS")]
    num_partitions: Option<i32>,
    /// How long a new consumer group waits for more members before its first rebalance
    /// completes, Kafka's group.initial.rebalance.delay.ms [default: 3000].
    #[arg(long, env = "FJORD_GROUP_INITIAL_REBALANCE_DELAY_MS")]
    group_initial_rebalance_delay_ms: Option<u64>,
    /// Shortest session timeout a consumer may ask for, Kafka's
    /// group.min.session.timeout.ms [default: 6000].
    #[arg(long, env = "FJORD_GROUP_MIN_SESSION_TIMEOUT_MS")]
    group_min_session_timeout_ms: Option<i32>,
    /// How long an empty group's committed offsets are kept, Kafka's
    /// offsets.retention.minutes [default: 10080, 7 days].
    #[arg(long, env = "FJORD_OFFSETS_RETENTION_MINUTES")]
    offsets_retention_minutes: Option<u64>,
    /// How often committed offsets are checked for expiry, Kafka's
    /// offsets.retention.check.interval.ms [default: 600000].
    #[arg(long, env = "FJORD_OFFSETS_RETENTION_CHECK_INTERVAL_MS")]
    offsets_retention_check_interval_ms: Option<u64>,
    /// Incremental fetch sessions kept (KIP-227), Kafka's
    /// max.incremental.fetch.session.cache.slots [default: 1000].
    #[arg(long, env = "FJORD_MAX_INCREMENTAL_FETCH_SESSION_CACHE_SLOTS")]
    max_incremental_fetch_session_cache_slots: Option<usize>,
    /// Most open client connections; at the limit new ones wait to be accepted, Kafka's
    /// max.connections [default: 10000].
    #[arg(long, env = "FJORD_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Most open connections from one client address; more are closed at once, Kafka's
    /// max.connections.per.ip [default: 1000].
    #[arg(long, env = "FJORD_MAX_CONNECTIONS_PER_IP")]
    max_connections_per_ip: Option<usize>,
    /// Longest transaction timeout a transactional producer may ask for, Kafka's
    /// transaction.max.timeout.ms [default: 900000].
    #[arg(long, env = "FJORD_TRANSACTION_MAX_TIMEOUT_MS")]
    transaction_max_timeout_ms: Option<i32>,
    /// How often transactions past their timeout are looked for and aborted, Kafka's
    /// transaction.abort.timed.out.transaction.cleanup.interval.ms [default: 10000].
    #[arg(
        long,
        env = "FJORD_TRANSACTION_ABORT_TIMED_OUT_TRANSACTION_CLEANUP_INTERVAL_MS"
    )]
    transaction_abort_timed_out_transaction_cleanup_interval_ms: Option<u64>,
    /// How long an unused transactional id is kept, Kafka's transactional.id.expiration.ms
    /// [default: 604800000, 7 days].
    #[arg(long, env = "FJORD_TRANSACTIONAL_ID_EXPIRATION_MS")]
    transactional_id_expiration_ms: Option<i64>,
    /// Where Prometheus scrapes `GET /metrics`; `off` disables the endpoint
    /// [default: 127.0.0.1:9644].
    #[arg(long, env = "FJORD_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Threads that run processors' WebAssembly calls (default: one per core)
    #[arg(long, env = "FJORD_PROCESSOR_THREADS")]
    processor_threads: Option<usize>,
    /// Default topic config, Kafka names: --log-config flush.messages=1 (repeatable; each
    /// name given here replaces the settings file's value for it).
    #[arg(long = "log-config", value_name = "NAME=VALUE")]
    log_config: Vec<String>,
}

/// `fjord serve` as configured.
struct Settings {
    engine: EngineConfig,
    broker: BrokerConfig,
    metrics_listen: Option<SocketAddr>,
    processor_threads: usize,
}

pub(crate) fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = settings(args)?;
    heap::retain_freed_memory();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fjord")
        .build()?;
    runtime.block_on(async {
        let admin = match settings.metrics_listen {
            Some(listen) => Some(crate::metrics::serve(listen).await?),
            None => None,
        };
        let data_dir = settings.engine.data_dir.clone();
        // The engine first: the Kafka port opens only once every partition is recovered.
        let engine = Arc::new(Engine::open(settings.engine, Arc::new(SystemClock)).await?);
        tracing::info!(data_dir = %data_dir.display(), "engine ready");
        let upkeep = engine.start_upkeep();
        let processors = processors::open(&engine, &data_dir, settings.processor_threads).await?;
        if let Some(admin) = &admin {
            admin.set_processors(Arc::clone(&processors));
        }
        let broker = Broker::bind(settings.broker, Arc::clone(&engine)).await?;
        let served = broker.run(shutdown_signal()).await;
        processors.close().await;
        if let Some(admin) = &admin {
            admin.clear_processors();
        }
        // The processors hold the engine: let go of them so it can close.
        drop(processors);
        upkeep.stop().await;
        engine.close().await?;
        tracing::info!("logs closed, clean shutdown recorded");
        served?;
        anyhow::Ok(())
    })
}

/// Merges flags and environment (already merged by clap) over the settings file over the
/// defaults, and checks the result.
fn settings(args: ServeArgs) -> anyhow::Result<Settings> {
    let (file, file_name) = match &args.config {
        Some(path) => (ServeFile::read(path)?, path.display().to_string()),
        None => (ServeFile::default(), String::new()),
    };
    settings_from(args, file, &file_name).with_context(|| {
        if file_name.is_empty() {
            "fjord serve settings".to_string()
        } else {
            format!("fjord serve settings (flags, FJORD_* variables, {file_name})")
        }
    })
}

fn settings_from(args: ServeArgs, file: ServeFile, file_name: &str) -> anyhow::Result<Settings> {
    let transactions = transaction_settings(&args, &file)?;
    let listen = args.listen.or(file.listen);
    let listen = listen.as_deref().unwrap_or("127.0.0.1:9092");
    let listen: SocketAddr = listen
        .parse()
        .with_context(|| format!("listen {listen:?} must be IP:PORT (an address, not a name)"))?;
    let data_dir = args
        .data_dir
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from("fjord-data"));
    let mut broker = BrokerConfig::new(listen);
    broker.node_id = args.node_id.or(file.node_id).unwrap_or(1);
    if let Some(slots) = args
        .max_incremental_fetch_session_cache_slots
        .or(file.max_incremental_fetch_session_cache_slots)
    {
        broker.fetch_session_cache_slots = slots;
    }
    if let Some(max) = args.max_connections.or(file.max_connections) {
        anyhow::ensure!(max > 0, "max-connections must be at least 1");
        broker.connections_max = max;
    }
    if let Some(max) = args.max_connections_per_ip.or(file.max_connections_per_ip) {
        anyhow::ensure!(max > 0, "max-connections-per-ip must be at least 1");
        broker.connections_per_ip_max = max;
    }
    let mut config = EngineConfig::new(data_dir);
    config.auto_create_topics = args
        .auto_create_topics
        .or(file.auto_create_topics)
        .unwrap_or(true);
    config.default_partitions = args.num_partitions.or(file.num_partitions).unwrap_or(1);
    config.groups.initial_rebalance_delay = Duration::from_millis(
        args.group_initial_rebalance_delay_ms
            .or(file.group_initial_rebalance_delay_ms)
            .unwrap_or(3000),
    );
    if let Some(minutes) = args
        .offsets_retention_minutes
        .or(file.offsets_retention_minutes)
    {
        anyhow::ensure!(minutes > 0, "offsets-retention-minutes must be at least 1");
        config.groups.offsets_retention = Duration::from_secs(minutes.saturating_mul(60));
    }
    if let Some(ms) = args
        .offsets_retention_check_interval_ms
        .or(file.offsets_retention_check_interval_ms)
    {
        anyhow::ensure!(
            ms > 0,
            "offsets-retention-check-interval-ms must be at least 1"
        );
        config.groups.offsets_retention_check_interval = Duration::from_millis(ms);
    }
    config.transactions = transactions;
    config.hooks = test_hold()?;
    config.groups.session_timeout_min_ms = args
        .group_min_session_timeout_ms
        .or(file.group_min_session_timeout_ms)
        .unwrap_or(6000);
    if let Some(advertised) = args.advertised_listener.or(file.advertised_listener) {
        let invalid = || format!("advertised-listener {advertised:?} must be HOST:PORT");
        let (host, port) = advertised.rsplit_once(':').with_context(invalid)?;
        broker.advertised_host = host.to_string();
        broker.advertised_port = port.parse().with_context(invalid)?;
    }
    for (name, value) in &file.log_config {
        config
            .log_defaults
            .set(name, &value.to_string())
            .with_context(|| format!("log-config {name} in {file_name}"))?;
    }
    for setting in &args.log_config {
        let (name, value) = setting
            .split_once('=')
            .with_context(|| format!("--log-config {setting:?} must be NAME=VALUE"))?;
        config.log_defaults.set(name, value)?;
    }
    config
        .log_defaults
        .validate()
        .context("topic config defaults (--log-config and the settings file's log-config)")?;
    let metrics_listen = args.metrics_listen.or(file.metrics_listen);
    let metrics_listen = match metrics_listen.as_deref().unwrap_or("127.0.0.1:9644") {
        "off" | "" => None,
        listen => Some(
            listen
                .parse()
                .with_context(|| format!("metrics-listen {listen:?} must be IP:PORT or off"))?,
        ),
    };
    let processor_threads = match args.processor_threads {
        Some(0) => anyhow::bail!("processor-threads must be at least 1"),
        Some(threads) => threads,
        None => std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
    };
    Ok(Settings {
        engine: config,
        broker,
        metrics_listen,
        processor_threads,
    })
}

fn transaction_settings(args: &ServeArgs, file: &ServeFile) -> anyhow::Result<TransactionConfig> {
    let mut config = TransactionConfig::default();
    if let Some(ms) = args
        .transaction_max_timeout_ms
        .or(file.transaction_max_timeout_ms)
    {
        anyhow::ensure!(ms > 0, "transaction-max-timeout-ms must be at least 1");
        config.max_timeout_ms = ms;
    }
    if let Some(ms) = args
        .transaction_abort_timed_out_transaction_cleanup_interval_ms
        .or(file.transaction_abort_timed_out_transaction_cleanup_interval_ms)
    {
        anyhow::ensure!(
            ms > 0,
            "transaction-abort-timed-out-transaction-cleanup-interval-ms must be at least 1"
        );
        config.abort_timed_out_interval = Duration::from_millis(ms);
    }
    if let Some(ms) = args
        .transactional_id_expiration_ms
        .or(file.transactional_id_expiration_ms)
    {
        anyhow::ensure!(ms > 0, "transactional-id-expiration-ms must be at least 1");
        config.transactional_id_expiration_ms = ms;
    }
    Ok(config)
}

/// For crash tests only: `FJORD_TEST_HOLD_AT=markers-writing` parks every transaction that
/// ends at the point its `Prepare*` state is durable and its markers are not yet written, and
/// logs that it did, so a test can `kill -9` the broker exactly there. Unset, nothing is held.
fn test_hold() -> anyhow::Result<Hooks> {
    let Ok(point) = std::env::var("FJORD_TEST_HOLD_AT") else {
        return Ok(Hooks::default());
    };
    anyhow::ensure!(
        point == "markers-writing",
        "FJORD_TEST_HOLD_AT={point:?}: the one hold point is markers-writing"
    );
    Ok(Hooks::new(|at| {
        if at == HookPoint::MarkersWriting {
            tracing::warn!("held at markers-writing (FJORD_TEST_HOLD_AT) until killed");
            loop {
                std::thread::park();
            }
        }
    }))
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

//! The admin listener: Prometheus `GET /metrics` (rendered by metrics-exporter-prometheus
//! from what the broker records) and the admin API (`fjord-admin`), on one port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use fjord_admin::Admin;
use metrics_exporter_prometheus::PrometheusBuilder;
use metrics_util::MetricKindMask;
use tokio::net::TcpListener;

/// A sampled gauge not refreshed for this long is dropped (they are refreshed every 5 s).
const GAUGE_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Installs the recorder and serves the admin listener on `listen` until the runtime stops.
/// Processors join with [`Admin::set_processors`] once the engine is up.
pub(crate) async fn serve(listen: SocketAddr) -> anyhow::Result<Admin> {
    // Sampled gauges (consumer lag, ...) of groups or partitions that went away stop being
    // refreshed; drop them after a minute rather than report them forever.
    let handle = PrometheusBuilder::new()
        .idle_timeout(MetricKindMask::GAUGE, Some(GAUGE_IDLE_TIMEOUT))
        .install_recorder()
        .context("installing the metrics recorder")?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the admin listener {listen}"))?;
    tracing::info!(listen = %listener.local_addr()?, "admin API ready (metrics at /metrics)");
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(5));
        loop {
            ticker.tick().await;
            upkeep.run_upkeep();
        }
    });
    let admin = Admin::new(Arc::new(move || handle.render()));
    fjord_admin::spawn(listener, admin.clone());
    Ok(admin)
}

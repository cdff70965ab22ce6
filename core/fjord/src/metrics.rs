//! The Prometheus endpoint: `GET /metrics` on its own listener, rendered by
//! metrics-exporter-prometheus from what the broker records.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Longest request head read before answering (a scrape's is a few hundred bytes).
const REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// A sampled gauge not refreshed for this long is dropped (they are refreshed every 5 s).
const GAUGE_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Installs the recorder and serves scrapes on `listen` until the runtime stops.
pub(crate) async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    // Sampled gauges (consumer lag, ...) of groups or partitions that went away stop being
    // refreshed; drop them after a minute rather than report them forever.
    let handle = PrometheusBuilder::new()
        .idle_timeout(MetricKindMask::GAUGE, Some(GAUGE_IDLE_TIMEOUT))
        .install_recorder()
        .context("installing the metrics recorder")?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the metrics listener {listen}"))?;
    tracing::info!(listen = %listener.local_addr()?, "metrics endpoint ready at /metrics");
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(5));
        loop {
            ticker.tick().await;
            upkeep.run_upkeep();
        }
    });
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let handle = handle.clone();
                    tokio::spawn(async move {
                        if let Err(error) = answer(stream, &handle).await {
                            tracing::debug!(%error, "metrics request failed");
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(())
}

async fn answer(mut stream: TcpStream, handle: &PrometheusHandle) -> anyhow::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = tokio::time::timeout(READ_TIMEOUT, stream.read(&mut buffer)).await??;
        anyhow::ensure!(read > 0, "connection closed before the request ended");
        head.extend_from_slice(&buffer[..read]);
        anyhow::ensure!(
            head.len() <= REQUEST_HEAD_BYTES_MAX,
            "request head too large"
        );
    }
    let request_line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let (status, content_type, body) =
        if request_line.starts_with(b"GET /metrics ") || request_line.starts_with(b"GET / ") {
            ("200 OK", "text/plain; version=0.0.4", handle.render())
        } else {
            (
                "404 Not Found",
                "text/plain",
                "try GET /metrics\n".to_string(),
            )
        };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}

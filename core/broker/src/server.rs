//! Accepting connections, reading request frames, writing responses.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fjord_engine::Engine;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::handlers::{self, Context};
use crate::limits::{DRAIN_TIMEOUT, FRAME_BYTES_MIN};
use crate::{BrokerConfig, Error, Result};

/// How often the sampled gauges (partitions, consumer lag) are refreshed.
const GAUGES_INTERVAL: Duration = Duration::from_secs(5);

/// The Kafka front end of an engine: its listener and the connections it serves.
#[derive(Debug)]
pub struct Broker {
    listener: TcpListener,
    context: Arc<Context>,
}

impl Broker {
    /// Binds the listener. Open the engine first: clients connect only once it is ready, as
    /// with Kafka, instead of waiting on a port that accepts and does not answer.
    pub async fn bind(config: BrokerConfig, engine: Arc<Engine>) -> Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(Error::Network)?;
        let local = listener.local_addr().map_err(Error::Network)?;
        tracing::info!(listen = %local, "Kafka listener ready");
        Ok(Self {
            listener,
            context: Arc::new(Context::new(config, engine)),
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(Error::Network)
    }

    /// Serves until `shutdown` completes, then stops accepting and lets connections finish
    /// the request they are on. The engine stays open: its owner closes it.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let (stop, stopped) = watch::channel(false);
        let mut connections = JoinSet::new();
        let mut open = OpenConnections::default();
        let config = self.context.config();
        let (connections_max, per_ip_max) = (config.connections_max, config.connections_per_ip_max);
        let gauges = tokio::spawn(gauges(Arc::clone(&self.context), stopped.clone()));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                // At max.connections the listener waits for a connection to close.
                accepted = self.listener.accept(), if open.total < connections_max => match accepted {
                    Ok((stream, peer)) => {
                        if open.count(peer.ip()) >= per_ip_max {
                            tracing::warn!(%peer, per_ip_max, "closing a connection past max.connections.per.ip");
                            crate::metrics::connection_refused("max.connections.per.ip");
                            drop(stream);
                            continue;
                        }
                        let context = Arc::clone(&self.context);
                        let stopped = stopped.clone();
                        let task = connections.spawn(crate::connection::serve(
                            context, stream, peer, stopped,
                        ));
                        open.opened(task.id(), peer.ip());
                    }
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(closed) = connections.join_next_with_id(), if !connections.is_empty() => {
                    // A connection that panicked gives its slot back too.
                    let id = match closed {
                        Ok((id, ())) => id,
                        Err(error) => error.id(),
                    };
                    open.closed(id);
                }
            }
        }
        tracing::info!(connections = connections.len(), "shutting down");
        drop(self.listener);
        let _ = stop.send(true);
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("connections still busy after the drain timeout; closing them");
            connections.abort_all();
            while connections.join_next().await.is_some() {}
        }
        let _ = gauges.await;
        Ok(())
    }
}

/// Open connections, in total and per client address, by the task serving each.
#[derive(Debug, Default)]
struct OpenConnections {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    tasks: HashMap<tokio::task::Id, IpAddr>,
}

impl OpenConnections {
    fn count(&self, ip: IpAddr) -> usize {
        self.per_ip.get(&ip).copied().unwrap_or(0)
    }

    fn opened(&mut self, task: tokio::task::Id, ip: IpAddr) {
        self.total += 1;
        *self.per_ip.entry(ip).or_default() += 1;
        self.tasks.insert(task, ip);
    }

    fn closed(&mut self, task: tokio::task::Id) {
        let Some(ip) = self.tasks.remove(&task) else {
            return;
        };
        self.total = self.total.saturating_sub(1);
        if let Some(count) = self.per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

async fn gauges(context: Arc<Context>, mut stopped: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(GAUGES_INTERVAL);
    loop {
        tokio::select! {
            _ = ticker.tick() => record_gauges(&context),
            _ = stopped.changed() => return,
        }
    }
}

/// Refreshes the gauges that are sampled rather than counted: partitions, group lag, fetch
/// sessions, transactions.
fn record_gauges(context: &Context) {
    record_transaction_gauges(context);
    let engine = context.engine();
    crate::metrics::fetch_sessions(context.fetch_sessions().len());
    crate::metrics::refresh_connections();
    let topics = engine.topics();
    crate::metrics::partitions(topics.iter().map(|t| t.partition_count() as usize).sum());
    for (group, topic, partition, committed) in engine.groups().all_offsets() {
        if let Ok(offsets) = engine.offsets(&topic, partition) {
            let lag = (offsets.high_watermark.0 - committed.0).max(0);
            crate::metrics::group_lag(&group, &topic, partition.0, lag);
        }
    }
}

fn record_transaction_gauges(context: &Context) {
    let engine = context.engine();
    let (counts, oldest_start_ms) = engine.transactions().summary();
    let by_state: Vec<(&'static str, usize)> =
        counts.iter().map(|(state, n)| (state.name(), *n)).collect();
    let open_ms = oldest_start_ms.map_or(0, |start| engine.clock().now_ms().saturating_sub(start));
    let oldest_open = std::time::Duration::from_millis(u64::try_from(open_ms).unwrap_or(0));
    crate::metrics::transactions(&by_state, oldest_open);
}

/// Decodes one request frame (without its size prefix) exactly as a connection does, and
/// reports whether it would be served: for fuzzing and tests of the decoding path.
pub fn decode_request_frame(mut frame: Bytes) -> Result<()> {
    if frame.len() < FRAME_BYTES_MIN {
        return Err(Error::FrameSize {
            size_bytes: frame.len() as i64,
            size_bytes_max: usize::MAX,
        });
    }
    let api_key_raw = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api_key = ApiKey::try_from(api_key_raw).map_err(|()| Error::MalformedRequest {
        reason: format!("unknown API key {api_key_raw}"),
    })?;
    if !handlers::supports(api_key, version) {
        return Err(Error::MalformedRequest {
            reason: format!("{api_key:?} version {version} is not supported"),
        });
    }
    decode(api_key, version, &mut frame).map(|_| ())
}

/// Runs the codec on untrusted bytes; a panic inside it is a malformed request, not a crash.
pub(crate) fn decode(
    api_key: ApiKey,
    version: i16,
    frame: &mut Bytes,
) -> Result<(RequestHeader, RequestKind)> {
    let header_version = api_key.request_header_version(version);
    let decoded = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let header = RequestHeader::decode(frame, header_version).map_err(|e| e.to_string())?;
        let request = RequestKind::decode(api_key, frame, version).map_err(|e| e.to_string())?;
        Ok::<_, String>((header, request))
    }));
    match decoded {
        Ok(Ok(decoded)) => Ok(decoded),
        Ok(Err(error)) => Err(Error::MalformedRequest {
            reason: format!("{api_key:?} v{version}: {error}"),
        }),
        Err(_) => Err(Error::MalformedRequest {
            reason: format!("{api_key:?} v{version}: the decoder panicked"),
        }),
    }
}

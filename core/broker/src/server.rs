//! Accepting connections, reading request frames, writing responses.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::groups::Coordinator;
use crate::handlers::{self, Context};
use crate::producer_ids::ProducerIds;
use crate::topics::Topics;
use crate::{BrokerConfig, Error, Result};

/// Request header: api key, api version, correlation id.
pub(crate) const FRAME_BYTES_MIN: usize = 8;
/// How long shutdown waits for connections to finish the request in hand.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often interval flushes are checked, and retention every this many ticks.
const UPKEEP_INTERVAL: Duration = Duration::from_millis(100);
const RETENTION_EVERY_TICKS: u64 = 3_000;
/// Partitions are checked for a due compaction every this many ticks (15 s, Kafka's
/// `log.cleaner.backoff.ms`).
const COMPACTION_EVERY_TICKS: u64 = 150;
/// Partition and consumer-lag gauges are refreshed every this many ticks.
const GAUGES_EVERY_TICKS: u64 = 50;

/// A running broker: its listener and its topics.
#[derive(Debug)]
pub struct Broker {
    listener: TcpListener,
    context: Arc<Context>,
}

impl Broker {
    /// Opens the data directory (recovering logs after a crash) and binds the listener.
    pub async fn bind(config: BrokerConfig) -> Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(Error::Network)?;
        let opened = config.clone();
        let context = tokio::task::spawn_blocking(move || open_state(opened))
            .await
            .map_err(|e| Error::Network(std::io::Error::other(e)))??;
        let local = listener.local_addr().map_err(Error::Network)?;
        tracing::info!(listen = %local, data_dir = %config.data_dir.display(), "broker ready");
        Ok(Self {
            listener,
            context: Arc::new(context),
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(Error::Network)
    }

    /// Serves until `shutdown` completes, then lets connections finish the request they are
    /// on, closes every log and writes the clean-shutdown marker.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let (stop, stopped) = watch::channel(false);
        let mut connections = JoinSet::new();
        let upkeep = tokio::spawn(upkeep(Arc::clone(&self.context), stopped.clone()));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let context = Arc::clone(&self.context);
                        connections.spawn(crate::connection::serve(
                            context,
                            stream,
                            peer,
                            stopped.clone(),
                        ));
                    }
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
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
        let _ = upkeep.await;
        let context = Arc::into_inner(self.context).ok_or(Error::ShutdownIncomplete)?;
        tokio::task::spawn_blocking(move || context.into_topics().close())
            .await
            .map_err(|e| Error::Network(std::io::Error::other(e)))??;
        tracing::info!("logs closed, clean shutdown recorded");
        Ok(())
    }
}

/// Opens the topics, the group coordinator (which reads `__consumer_offsets`) and the
/// producer id allocator.
fn open_state(config: BrokerConfig) -> Result<Context> {
    let now_ms = handlers::now_ms();
    let topics = Topics::open(&config, now_ms)?;
    let groups = Coordinator::open(config.groups, &topics, now_ms)?;
    let producer_ids = ProducerIds::open(&config.data_dir)?;
    Ok(Context::new(config, topics, groups, producer_ids))
}

async fn upkeep(context: Arc<Context>, mut stopped: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(UPKEEP_INTERVAL);
    let mut tick = 0u64;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.changed() => return,
        }
        tick += 1;
        let context = Arc::clone(&context);
        let retention = tick.is_multiple_of(RETENTION_EVERY_TICKS);
        let compaction = tick.is_multiple_of(COMPACTION_EVERY_TICKS);
        let gauges = tick.is_multiple_of(GAUGES_EVERY_TICKS);
        let _ = tokio::task::spawn_blocking(move || {
            context.groups().tick();
            context
                .topics()
                .maintain(handlers::now_ms(), retention, compaction);
            if gauges {
                record_gauges(&context);
            }
        })
        .await;
    }
}

/// Refreshes the gauges that are sampled rather than counted: partitions and group lag.
fn record_gauges(context: &Context) {
    let topics = context.topics().list();
    crate::metrics::partitions(topics.iter().map(|t| t.partition_count() as usize).sum());
    for (group, topic, partition, committed) in context.groups().all_offsets() {
        let high_watermark = context
            .topics()
            .get(&topic)
            .and_then(|t| t.partition(partition).ok().map(|p| p.offsets()));
        if let Some(Ok(offsets)) = high_watermark {
            let lag = (offsets.high_watermark - committed).max(0);
            crate::metrics::group_lag(&group, &topic, partition, lag);
        }
    }
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

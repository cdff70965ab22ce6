//! Accepting connections, reading request frames, writing responses.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::groups::Coordinator;
use crate::handlers::{self, Context};
use crate::producer_ids::ProducerIds;
use crate::topics::Topics;
use crate::{BrokerConfig, Error, Result};

/// Request header: api key, api version, correlation id.
const FRAME_BYTES_MIN: usize = 8;
/// How long shutdown waits for connections to finish the request in hand.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often interval flushes are checked, and retention every this many ticks.
const UPKEEP_INTERVAL: Duration = Duration::from_millis(100);
const RETENTION_EVERY_TICKS: u64 = 3_000;
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
                        connections.spawn(serve(context, stream, peer, stopped.clone()));
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
        let gauges = tick.is_multiple_of(GAUGES_EVERY_TICKS);
        let _ = tokio::task::spawn_blocking(move || {
            context.groups().tick();
            context.topics().maintain(handlers::now_ms(), retention);
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

/// One connection: requests are read, handled and answered one at a time, in order.
async fn serve(
    context: Arc<Context>,
    stream: TcpStream,
    peer: SocketAddr,
    mut stopped: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let _open = OpenConnection::new();
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut out = BytesMut::new();
    loop {
        let frame = tokio::select! {
            biased;
            _ = stopped.changed() => return,
            frame = read_frame(&mut reader, context.config().request_bytes_max) => frame,
        };
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(error) => {
                tracing::info!(%peer, %error, "closing connection");
                return;
            }
        };
        out.clear();
        match handle_frame(&context, frame, peer, &mut out).await {
            Ok(true) => {
                if let Err(error) = writer.write_all(&out).await {
                    tracing::debug!(%peer, %error, "connection lost while answering");
                    return;
                }
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%peer, %error, "closing connection after a bad request");
                return;
            }
        }
    }
}

/// Counts a connection in `fjord_connections` for as long as it lives.
struct OpenConnection;

impl OpenConnection {
    fn new() -> Self {
        crate::metrics::connection_opened();
        Self
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        crate::metrics::connection_closed();
    }
}

/// Reads one size-prefixed frame; `None` at a clean end of stream. The size is checked
/// before anything is allocated.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    size_max: usize,
) -> Result<Option<Bytes>> {
    let mut size = [0u8; 4];
    match reader.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(Error::Network(e)),
    }
    let size = i32::from_be_bytes(size);
    let size_bytes = usize::try_from(size)
        .ok()
        .filter(|s| (FRAME_BYTES_MIN..=size_max).contains(s))
        .ok_or(Error::FrameSize {
            size_bytes: i64::from(size),
            size_bytes_max: size_max,
        })?;
    let mut frame = BytesMut::with_capacity(size_bytes);
    while frame.len() < size_bytes {
        let remaining = (size_bytes - frame.len()) as u64;
        let read = (&mut *reader)
            .take(remaining)
            .read_buf(&mut frame)
            .await
            .map_err(Error::Network)?;
        if read == 0 {
            return Err(Error::Network(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
    Ok(Some(frame.freeze()))
}

/// Decodes, handles and encodes one request into `out`. Returns whether there is a response
/// to send (a produce with acks=0 has none). An error means the connection must close.
async fn handle_frame(
    context: &Context,
    mut frame: Bytes,
    peer: SocketAddr,
    out: &mut BytesMut,
) -> Result<bool> {
    let api_key_raw = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api_key = ApiKey::try_from(api_key_raw).map_err(|()| Error::MalformedRequest {
        reason: format!("unknown API key {api_key_raw}"),
    })?;
    if !handlers::supports(api_key, version) {
        if api_key == ApiKey::ApiVersions {
            // KIP-511: answer with the versions we do support, in the v0 format.
            let response = handlers::api_versions::unsupported();
            encode_response(out, correlation_id, api_key, 0, &response)?;
            return Ok(true);
        }
        return Err(Error::MalformedRequest {
            reason: format!("{api_key:?} version {version} is not supported"),
        });
    }
    let (header, request) = decode(api_key, version, &mut frame)?;
    let started = std::time::Instant::now();
    let response = handlers::dispatch(context, &header, peer, request).await?;
    crate::metrics::request(api_key, started.elapsed());
    tracing::trace!(?api_key, version, elapsed = ?started.elapsed(), "handled");
    match response {
        Some(response) => {
            encode_response(out, correlation_id, api_key, version, &response)?;
            Ok(true)
        }
        None => Ok(false),
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
fn decode(
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

fn encode_response(
    out: &mut BytesMut,
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    response: &ResponseKind,
) -> Result<()> {
    let start = out.len();
    out.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let encoded = header
        .encode(out, api_key.response_header_version(version))
        .map_err(|e| e.to_string())
        .and_then(|()| response.encode(out, version).map_err(|e| e.to_string()));
    encoded.map_err(|reason| Error::Encode { reason })?;
    let size = i32::try_from(out.len() - start - 4).map_err(|_| Error::Encode {
        reason: "response larger than 2 GiB".into(),
    })?;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

//! One client connection, pipelined: a reader task reads request frames ahead (bounded in
//! count and bytes), the connection task handles them strictly in order, and a writer task
//! sends the responses in that same order. Reading, handling and writing overlap, so one busy
//! producer keeps more than one core at work, while the client still sees Kafka's ordering:
//! responses in request order, each request handled after the one before it.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use crate::handlers::{self, Context, Response};
use crate::limits::{FRAME_BYTES_MIN, READ_AHEAD_BYTES, READ_AHEAD_FRAMES, WRITE_QUEUE_RESPONSES};
use crate::outgoing::Outgoing;
use crate::{Error, Result};

/// A request frame (without its size prefix) and its share of the read-ahead budget, given
/// back when the frame is dropped after handling.
struct Frame {
    bytes: Bytes,
    _budget: OwnedSemaphorePermit,
}

/// Serves one connection until the client closes it, a request is malformed, or the broker
/// shuts down (then the requests already read are still answered).
pub(crate) async fn serve(
    context: Arc<Context>,
    stream: TcpStream,
    peer: SocketAddr,
    stopped: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let _open = OpenConnection::new();
    let (reader, writer) = stream.into_split();
    let (frames_in, mut frames) = mpsc::channel(READ_AHEAD_FRAMES);
    let (responses, responses_out) = mpsc::channel(WRITE_QUEUE_RESPONSES);
    let size_max = context.config().request_bytes_max;
    let (gone_in, mut gone) = watch::channel(false);
    let _reading = AbortOnDrop(tokio::spawn(read_frames(
        reader, size_max, frames_in, stopped, gone_in, peer,
    )));
    let writing = tokio::spawn(write_responses(writer, responses_out, peer));
    while let Some(frame) = frames.recv().await {
        let handled = if parks(&frame.bytes) {
            // A long poll or a rebalance round may wait for minutes: stop waiting when the
            // client goes. (Other requests finish: a commit half done must not be dropped.)
            tokio::select! {
                handled = handle_frame(&context, frame.bytes, peer) => handled,
                // `Err` is the reader stopping at shutdown: the request still finishes.
                Ok(_) = gone.wait_for(|gone| *gone) => {
                    tracing::debug!(%peer, "client gone while its request waited");
                    break;
                }
            }
        } else {
            handle_frame(&context, frame.bytes, peer).await
        };
        match handled {
            Ok(Some(response)) => {
                if responses.send(response).await.is_err() {
                    break; // the writer lost the connection
                }
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%peer, %error, "closing connection after a bad request");
                break;
            }
        }
    }
    // The answers already made still go out, in order; then the socket closes.
    drop(responses);
    let _ = writing.await;
}

/// Whether a request may wait long for others (a fetch's long poll, a join or sync waiting
/// for its rebalance round), so that it should end when its client goes.
fn parks(frame: &[u8]) -> bool {
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    [ApiKey::Fetch, ApiKey::JoinGroup, ApiKey::SyncGroup]
        .iter()
        .any(|&key| key as i16 == api_key)
}

/// Reads frames until the client closes, an error, or shutdown; `gone` is set when the client
/// closed or the socket failed (not at shutdown, when requests in hand still finish).
async fn read_frames(
    reader: OwnedReadHalf,
    size_max: usize,
    frames: mpsc::Sender<Frame>,
    mut stopped: watch::Receiver<bool>,
    gone: watch::Sender<bool>,
    peer: SocketAddr,
) {
    let budget = Arc::new(Semaphore::new(READ_AHEAD_BYTES));
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    loop {
        let frame = tokio::select! {
            biased;
            _ = stopped.changed() => return,
            frame = read_frame(&mut reader, size_max, &budget) => frame,
        };
        match frame {
            Ok(Some(frame)) => {
                if frames.send(frame).await.is_err() {
                    return;
                }
            }
            Ok(None) => {
                gone.send_replace(true);
                return;
            }
            Err(error) => {
                tracing::info!(%peer, %error, "closing connection");
                gone.send_replace(true);
                return;
            }
        }
    }
}

async fn write_responses(
    mut writer: OwnedWriteHalf,
    mut responses: mpsc::Receiver<Outgoing>,
    peer: SocketAddr,
) {
    while let Some(response) = responses.recv().await {
        if let Err(error) = response.write_to(&mut writer).await {
            tracing::debug!(%peer, %error, "connection lost while answering");
            return;
        }
    }
}

/// Aborts the task when dropped: the reader stops with its connection, however that ends.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
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
/// before anything is allocated, and the frame's share of the read-ahead budget is taken
/// before its bytes are read.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    size_max: usize,
    budget: &Arc<Semaphore>,
) -> Result<Option<Frame>> {
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
    // A frame larger than the whole budget waits until nothing else is read ahead.
    let permits = u32::try_from(size_bytes.min(READ_AHEAD_BYTES)).unwrap_or(u32::MAX);
    let permit = Arc::clone(budget)
        .acquire_many_owned(permits)
        .await
        .map_err(|_| Error::Network(std::io::Error::other("read-ahead budget closed")))?;
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
    Ok(Some(Frame {
        bytes: frame.freeze(),
        _budget: permit,
    }))
}

/// Decodes, handles and encodes one request. Returns the response frame, if there is one to
/// send (a produce with acks=0 has none). An error means the connection must close.
async fn handle_frame(
    context: &Context,
    mut frame: Bytes,
    peer: SocketAddr,
) -> Result<Option<Outgoing>> {
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
            return encode_response(correlation_id, api_key, 0, &response).map(Some);
        }
        return Err(Error::MalformedRequest {
            reason: format!("{api_key:?} version {version} is not supported"),
        });
    }
    if api_key == ApiKey::Produce && version <= handlers::produce_legacy::LEGACY_VERSION_MAX {
        let refused = handlers::produce_legacy::refuse(&frame, version)?;
        return Ok(refused.map(Outgoing::bytes));
    }
    let (header, request) = crate::server::decode(api_key, version, &mut frame)?;
    let started = std::time::Instant::now();
    let response = handlers::dispatch(context, &header, peer, request).await?;
    crate::metrics::request(api_key, version, started.elapsed());
    tracing::trace!(?api_key, version, elapsed = ?started.elapsed(), "handled");
    match response {
        Some(Response::Message(response)) => {
            encode_response(correlation_id, api_key, version, &response).map(Some)
        }
        Some(Response::Fetch(answer)) => answer.encode(correlation_id, version).map(Some),
        None => Ok(None),
    }
}

fn encode_response(
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    response: &ResponseKind,
) -> Result<Outgoing> {
    let mut out = BytesMut::new();
    out.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let encoded = header
        .encode(&mut out, api_key.response_header_version(version))
        .map_err(|e| e.to_string())
        .and_then(|()| {
            response
                .encode(&mut out, version)
                .map_err(|e| e.to_string())
        });
    encoded.map_err(|reason| Error::Encode { reason })?;
    let size = i32::try_from(out.len() - 4).map_err(|_| Error::Encode {
        reason: "response larger than 2 GiB".into(),
    })?;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Ok(Outgoing::bytes(out.freeze()))
}

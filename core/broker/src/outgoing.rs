//! A response as it goes to the socket: encoded bytes and ranges of segment files, written in
//! order. File ranges go out with `sendfile` (Linux), so stored batches reach the socket
//! without passing through the broker's memory: no copy, no buffer to allocate per fetch.
//!
//! A response waiting for a slow client holds its segment files open (at most the writer's
//! queue of responses per connection), so a file retention deleted keeps its disk space
//! until the response is written or the connection closes, as with Kafka.

use std::io;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use fjord_engine::FileRange;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;

use crate::limits::{INLINE_BYTES_MAX, SENDFILE_BYTES_MAX};
use crate::{Error, Result};

#[derive(Debug)]
enum Chunk {
    Bytes(Bytes),
    File(FileRange),
}

/// A size-prefixed response frame made of chunks.
#[derive(Debug)]
pub(crate) struct Outgoing {
    chunks: Vec<Chunk>,
}

impl Outgoing {
    /// A frame already encoded whole, size prefix included.
    pub(crate) fn bytes(frame: Bytes) -> Self {
        Self {
            chunks: vec![Chunk::Bytes(frame)],
        }
    }

    /// The frame's bytes, file ranges read into memory (for tests).
    #[cfg(test)]
    pub(crate) fn to_vec(&self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        for chunk in &self.chunks {
            match chunk {
                Chunk::Bytes(bytes) => out.extend_from_slice(bytes),
                Chunk::File(slice) => out.extend_from_slice(&slice.read_to_vec()?),
            }
        }
        Ok(out)
    }

    /// Writes the frame. A file range that comes up short (its file was cut since) ends the
    /// connection with an error: the frame cannot be completed.
    pub(crate) async fn write_to(&self, writer: &mut OwnedWriteHalf) -> io::Result<()> {
        let corked = self.chunks.len() > 1;
        if corked {
            // Hold partial packets back until the frame is written (the socket has
            // TCP_NODELAY): small headers between file ranges then share packets.
            let _ = rustix::net::sockopt::set_tcp_cork(writer.as_ref(), true);
        }
        for chunk in &self.chunks {
            match chunk {
                Chunk::Bytes(bytes) => writer.write_all(bytes).await?,
                Chunk::File(slice) => send_file(writer.as_ref(), slice).await?,
            }
        }
        if corked {
            let _ = rustix::net::sockopt::set_tcp_cork(writer.as_ref(), false);
        }
        Ok(())
    }
}

/// Sends a file range with `sendfile`. Pages not in the page cache make `sendfile` wait for
/// the disk, so each call runs on a blocking thread (on a duplicate of the socket's
/// descriptor), never on an async worker; this works on any runtime, current-thread too.
async fn send_file(stream: &TcpStream, slice: &FileRange) -> io::Result<()> {
    let socket = Arc::new(rustix::io::dup(stream)?);
    let file = Arc::clone(slice.file());
    let mut position = slice.position();
    let end = position + slice.len() as u64;
    while position < end {
        wait_for_room(stream).await?;
        let count = usize::try_from(end - position)
            .unwrap_or(usize::MAX)
            .min(SENDFILE_BYTES_MAX);
        let (socket_for_call, file_for_call) = (Arc::clone(&socket), Arc::clone(&file));
        let mut at = position;
        let (sent, at) = tokio::task::spawn_blocking(move || {
            let sent =
                rustix::fs::sendfile(&*socket_for_call, &*file_for_call, Some(&mut at), count)
                    .map_err(io::Error::from);
            (sent, at)
        })
        .await
        .map_err(io::Error::other)?;
        position = at;
        match sent {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment file shorter than the range being sent",
                ));
            }
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Waits until the socket has room to write. The `sendfile` runs on another thread, so the
/// runtime never sees its `EAGAIN`; instead the socket is asked (`poll`, no waiting) under
/// `try_io`, which clears the runtime's readiness only if no newer event arrived meanwhile,
/// so a wake-up cannot be lost between the failed write and the wait.
async fn wait_for_room(stream: &TcpStream) -> io::Result<()> {
    loop {
        stream.writable().await?;
        let room = stream.try_io(Interest::WRITABLE, || {
            let mut fds = [rustix::event::PollFd::new(
                stream,
                rustix::event::PollFlags::OUT,
            )];
            rustix::event::poll(&mut fds, Some(&rustix::time::Timespec::default()))?;
            if fds[0].revents().intersects(rustix::event::PollFlags::OUT) {
                Ok(())
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            }
        });
        match room {
            Ok(()) => return Ok(()),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
    }
}

/// Builds an [`Outgoing`] frame: encode into [`Self::buffer`], add file ranges in between.
pub(crate) struct FrameBuilder {
    chunks: Vec<Chunk>,
    buffer: BytesMut,
    len: usize,
}

impl FrameBuilder {
    pub(crate) fn new() -> Self {
        let mut buffer = BytesMut::with_capacity(1024);
        buffer.put_i32(0); // the size, set by `finish`
        Self {
            chunks: Vec::new(),
            buffer,
            len: 0,
        }
    }

    pub(crate) fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buffer
    }

    /// Adds bytes already made: copied into the buffer when small, else a chunk of their own.
    pub(crate) fn push_bytes(&mut self, bytes: Bytes) {
        if bytes.len() <= INLINE_BYTES_MAX {
            self.buffer.extend_from_slice(&bytes);
        } else {
            self.flush_buffer();
            self.len += bytes.len();
            self.chunks.push(Chunk::Bytes(bytes));
        }
    }

    pub(crate) fn push_file(&mut self, slice: FileRange) {
        self.flush_buffer();
        self.len += slice.len();
        self.chunks.push(Chunk::File(slice));
    }

    pub(crate) fn finish(mut self) -> Result<Outgoing> {
        let size = self.len + self.buffer.len() - 4;
        let size = i32::try_from(size).map_err(|_| Error::Encode {
            reason: "response larger than 2 GiB".into(),
        })?;
        match self.chunks.first_mut() {
            // Still all in the buffer, which starts with the size.
            None => self.buffer[..4].copy_from_slice(&size.to_be_bytes()),
            // The first chunk was the buffer's start: headers, a few KiB at most.
            Some(Chunk::Bytes(first)) => {
                let mut framed = BytesMut::from(&first[..]);
                framed[..4].copy_from_slice(&size.to_be_bytes());
                *first = framed.freeze();
            }
            Some(Chunk::File(_)) => {
                return Err(Error::Encode {
                    reason: "frame does not start with its size".into(),
                });
            }
        }
        self.flush_buffer();
        Ok(Outgoing {
            chunks: self.chunks,
        })
    }

    fn flush_buffer(&mut self) {
        if !self.buffer.is_empty() {
            self.len += self.buffer.len();
            self.chunks.push(Chunk::Bytes(self.buffer.split().freeze()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::{Bytes, BytesMut};
    use fjord_engine::{Engine, EngineConfig, Origin, PartitionIndex, SystemClock};
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{
        ApiKey, FetchRequest, FetchResponse, RequestHeader, ResponseHeader, TopicName,
    };
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::{Broker, BrokerConfig};

    /// The whole path, `sendfile` included, on a current-thread runtime, where
    /// `block_in_place` would panic.
    #[test]
    fn a_fetch_is_served_on_a_current_thread_runtime() -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let dir = tempfile::tempdir()?;
            let engine = Engine::open(
                EngineConfig::new(dir.path().to_path_buf()),
                Arc::new(SystemClock),
            )
            .await?;
            let engine = Arc::new(engine);
            engine
                .create_topic("t", 1, Default::default(), false)
                .await?;
            // 24 MB: far more than a socket buffer, so `sendfile` meets a full socket and
            // the writer must wait for room, again and again.
            let mut builder = fjord_record::BatchBuilder::new(fjord_record::Compression::None);
            let value = vec![7u8; 1_000_000];
            builder.push(&fjord_record::NewRecord {
                timestamp_ms: 0,
                key: Some(b"k"),
                value: Some(&value),
                headers: &[],
            })?;
            let batch = Bytes::from(builder.build()?);
            for _ in 0..24 {
                engine
                    .append("t", PartitionIndex(0), batch.clone(), Origin::Client)
                    .await?;
            }
            let config = BrokerConfig::new("127.0.0.1:0".parse()?);
            let broker = Broker::bind(config, Arc::clone(&engine)).await?;
            let address = broker.local_addr()?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(broker.run(async {
                let _ = stopped.await;
            }));

            let request = FetchRequest::default()
                .with_max_bytes(64 << 20)
                .with_topics(vec![
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_static_str("t")))
                        .with_partitions(vec![
                            FetchPartition::default().with_partition_max_bytes(64 << 20),
                        ]),
                ]);
            let mut frame = BytesMut::new();
            RequestHeader::default()
                .with_request_api_key(ApiKey::Fetch as i16)
                .with_request_api_version(12)
                .with_correlation_id(1)
                .encode(&mut frame, ApiKey::Fetch.request_header_version(12))?;
            request.encode(&mut frame, 12)?;
            let mut client = tokio::net::TcpStream::connect(address).await?;
            client
                .write_all(&(frame.len() as i32).to_be_bytes())
                .await?;
            client.write_all(&frame).await?;
            let size = client.read_i32().await?;
            let mut body = vec![0u8; usize::try_from(size)?];
            client.read_exact(&mut body).await?;
            let mut body = Bytes::from(body);
            ResponseHeader::decode(&mut body, ApiKey::Fetch.response_header_version(12))?;
            let response = FetchResponse::decode(&mut body, 12)?;
            let records = response.responses[0].partitions[0]
                .records
                .clone()
                .unwrap_or_default();
            // Stored as sent but for the fields the log assigns (offsets, leader epoch 0).
            let mut expected = Vec::new();
            for offset in 0..24 {
                let mut stored = batch.to_vec();
                fjord_record::assign(&mut stored, offset, 0)?;
                expected.extend_from_slice(&stored);
            }
            assert!(
                records[..] == expected[..],
                "the batches come back as stored"
            );

            let _ = stop.send(());
            server.await??;
            drop(client);
            Arc::into_inner(engine)
                .map(Arc::new)
                .ok_or_else(|| anyhow::anyhow!("engine still shared"))?
                .close()
                .await?;
            anyhow::Ok(())
        })
    }
}

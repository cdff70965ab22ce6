//! Every limit of the Kafka front end, in one place, with compile-time checks of how they
//! relate. Limits of data (batches, partitions, groups) are the engine's
//! (`fjord_engine::limits`).

use std::time::Duration;

/// Request header: api key, api version, correlation id.
pub const FRAME_BYTES_MIN: usize = 8;

/// Largest request frame accepted by default (Kafka's `socket.request.max.bytes`).
pub const REQUEST_BYTES_MAX_DEFAULT: usize = 100 * 1024 * 1024;

/// Largest `socket.request.max.bytes` that may be set: a frame size is an `i32`.
pub const REQUEST_BYTES_MAX_LIMIT: usize = i32::MAX as usize;

/// Frames read ahead of the one being handled on a connection, at most.
pub const READ_AHEAD_FRAMES: usize = 32;

/// Bytes of frames read ahead on a connection, at most; a larger frame is read once nothing
/// else is waiting.
pub const READ_AHEAD_BYTES: usize = 16 * 1024 * 1024;

/// Encoded responses waiting for a connection's socket, at most.
pub const WRITE_QUEUE_RESPONSES: usize = 4;

/// Open connections by default (Kafka's `max.connections`). At the limit the listener stops
/// accepting until one closes, as Kafka's acceptor does.
pub const CONNECTIONS_DEFAULT: usize = 10_000;

/// Open connections from one client address by default (Kafka's `max.connections.per.ip`).
/// A connection past it is closed at once.
pub const CONNECTIONS_PER_IP_DEFAULT: usize = 1_000;

/// Incremental fetch sessions kept by default (Kafka's
/// `max.incremental.fetch.session.cache.slots`).
pub const FETCH_SESSION_CACHE_SLOTS_DEFAULT: usize = 1_000;

/// Longest long poll honoured, whatever the client asks (Fetch `max_wait_ms`).
pub const FETCH_WAIT_MAX: Duration = Duration::from_secs(60);

/// Longest range handed to one `sendfile` call: bounds how long one call may wait on the disk.
pub const SENDFILE_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Bytes shorter than this are copied into a response frame's buffer rather than sent alone.
pub const INLINE_BYTES_MAX: usize = 4096;

/// Longest regular expression a request may carry (ListTransactions v2's id pattern); the
/// compiled form is held to 64 times this.
pub const REGEX_BYTES_MAX: usize = 16 * 1024;

/// How long shutdown waits for connections to finish the request in hand.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

const _: () = assert!(FRAME_BYTES_MIN < REQUEST_BYTES_MAX_DEFAULT);
const _: () = assert!(REQUEST_BYTES_MAX_DEFAULT <= REQUEST_BYTES_MAX_LIMIT);
const _: () = assert!(READ_AHEAD_BYTES <= REQUEST_BYTES_MAX_DEFAULT);
const _: () = assert!(CONNECTIONS_PER_IP_DEFAULT <= CONNECTIONS_DEFAULT);
const _: () = assert!(INLINE_BYTES_MAX < SENDFILE_BYTES_MAX);
const _: () =
    assert!(FETCH_WAIT_MAX.as_millis() <= fjord_engine::limits::WAIT_FOR_DATA_MS_MAX as u128);

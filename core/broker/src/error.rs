/// What can go wrong in the Kafka front end.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] fjord_engine::Error),
    #[error("network error: {0}")]
    Network(#[source] std::io::Error),
    #[error("request frame of {size_bytes} bytes is outside 8..={size_bytes_max}")]
    FrameSize {
        size_bytes: i64,
        size_bytes_max: usize,
    },
    #[error("malformed request: {reason}")]
    MalformedRequest { reason: String },
    #[error("cannot encode the response: {reason}")]
    Encode { reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

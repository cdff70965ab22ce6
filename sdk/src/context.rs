//! What a processor can do during a call: emit records, keep keyed state, set timers, log.

use crate::record::Output;

/// A log level, as `fjord processor logs NAME` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Why the host refused a state write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateError {
    /// The key or value is longer than the host allows (the limit in bytes).
    TooLarge { size_bytes_max: u64 },
    /// The partition's store would pass the processor's state size limit (in bytes).
    Full { size_bytes_max: u64 },
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::TooLarge { size_bytes_max } => {
                write!(f, "state key or value larger than {size_bytes_max} bytes")
            }
            StateError::Full { size_bytes_max } => {
                write!(
                    f,
                    "state store would pass its limit of {size_bytes_max} bytes"
                )
            }
        }
    }
}

impl std::error::Error for StateError {}

/// The host's side of a call: the component's imports, or the in-memory store of
/// [`crate::testing`]. Implemented by the SDK; a processor only sees [`Context`].
pub trait Host {
    fn log(&mut self, level: Level, message: &str);
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>>;
    fn put(&mut self, key: &[u8], value: &[u8], ttl_ms: Option<u64>) -> Result<(), StateError>;
    fn delete(&mut self, key: &[u8]);
    fn range(&mut self, start: &[u8], end: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)>;
    fn set_timer(&mut self, key: &[u8], time_ms: i64) -> Result<(), StateError>;
    fn cancel_timer(&mut self, key: &[u8]);
}

/// The processor's handle on one call.
///
/// State is scoped to the processor and the input partition; every write of a call becomes
/// durable together with the call's outputs and the input position, or not at all.
pub struct Context<'a> {
    outputs: &'a mut Vec<Output>,
    host: &'a mut dyn Host,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("outputs", &self.outputs.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Context<'a> {
    pub(crate) fn new(outputs: &'a mut Vec<Output>, host: &'a mut dyn Host) -> Context<'a> {
        Context { outputs, host }
    }

    /// Writes `output` (exactly once, with the call's other effects).
    pub fn emit(&mut self, output: Output) {
        self.outputs.push(output);
    }

    /// The value stored under `key`, if any.
    pub fn get(&mut self, key: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        self.host.get(key.as_ref())
    }

    /// Stores `value` under `key`.
    pub fn put(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<(), StateError> {
        self.host.put(key.as_ref(), value.as_ref(), None)
    }

    /// Stores `value` under `key` until the watermark passes the current one by `ttl_ms`.
    pub fn put_with_ttl(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl_ms: u64,
    ) -> Result<(), StateError> {
        self.host.put(key.as_ref(), value.as_ref(), Some(ttl_ms))
    }

    pub fn delete(&mut self, key: impl AsRef<[u8]>) {
        self.host.delete(key.as_ref());
    }

    /// Entries with `start <= key < end` (`end` `None`: to the last key), in key order, at
    /// most `limit` of them and at most 10,000 (ask again from past the last key for more).
    pub fn range(
        &mut self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: u32,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.host.range(start, end, limit)
    }

    /// Entries whose key starts with `prefix`, in key order, at most `limit` of them.
    pub fn scan_prefix(&mut self, prefix: &[u8], limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        let end = prefix_end(prefix);
        self.host.range(prefix, end.as_deref(), limit)
    }

    /// Sets (or moves) the timer of `key` to `time_ms` of event time. Timers count against
    /// the state size limit.
    pub fn set_timer(&mut self, key: impl AsRef<[u8]>, time_ms: i64) -> Result<(), StateError> {
        self.host.set_timer(key.as_ref(), time_ms)
    }

    pub fn cancel_timer(&mut self, key: impl AsRef<[u8]>) {
        self.host.cancel_timer(key.as_ref());
    }

    pub fn log(&mut self, level: Level, message: &str) {
        self.host.log(level, message);
    }
}

/// The first key after every key starting with `prefix` (`None`: there is none).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_is_the_first_key_past_the_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }
}

//! Records in and out: plain owned Rust values, the same natively and in the component.

/// A Kafka record header: a string key and a value that may be null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// One record of the input partition, as a read_committed consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The input partition; every record of a batch has the same one.
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
}

impl Record {
    /// A record with a key and a value and nothing else, for tests.
    pub fn new(key: Option<&[u8]>, value: Option<&[u8]>) -> Record {
        Record {
            partition: 0,
            offset: 0,
            timestamp_ms: 0,
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers: Vec::new(),
        }
    }

    /// The value as UTF-8, if it is there and valid.
    pub fn value_str(&self) -> Option<&str> {
        self.value
            .as_deref()
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    /// The key as UTF-8, if it is there and valid.
    pub fn key_str(&self) -> Option<&str> {
        self.key
            .as_deref()
            .and_then(|key| std::str::from_utf8(key).ok())
    }

    /// The value of the first header named `key` (`Some(None)`: the header is there, null).
    pub fn header(&self, key: &str) -> Option<Option<&[u8]>> {
        self.headers
            .iter()
            .find(|header| header.key == key)
            .map(|header| header.value.as_deref())
    }

    /// The record unchanged, to the default output (with its timestamp).
    pub fn forward(&self) -> Output {
        Output {
            topic: None,
            partition: None,
            key: self.key.clone(),
            value: self.value.clone(),
            headers: self.headers.clone(),
            timestamp_ms: None,
        }
    }
}

/// A record for the host to write. Built with [`Output::new`] and the `with_` methods.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// One of the processor's output topics; `None` is the first (default) output.
    pub topic: Option<String>,
    /// `None`: Kafka's default partitioner (murmur2 of the key).
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    /// `None`: the input record's time (the timer's time for outputs of a timer).
    pub timestamp_ms: Option<i64>,
}

impl Output {
    /// A record to the default output.
    pub fn new(key: Option<impl Into<Vec<u8>>>, value: Option<impl Into<Vec<u8>>>) -> Output {
        Output {
            key: key.map(Into::into),
            value: value.map(Into::into),
            ..Output::default()
        }
    }

    /// A record with this value and no key, to the default output.
    pub fn value(value: impl Into<Vec<u8>>) -> Output {
        Output {
            value: Some(value.into()),
            ..Output::default()
        }
    }

    /// Sends the record to `topic`, one of the processor's outputs.
    pub fn with_topic(mut self, topic: impl Into<String>) -> Output {
        self.topic = Some(topic.into());
        self
    }

    pub fn with_partition(mut self, partition: i32) -> Output {
        self.partition = Some(partition);
        self
    }

    pub fn with_value(mut self, value: impl Into<Vec<u8>>) -> Output {
        self.value = Some(value.into());
        self
    }

    pub fn with_key(mut self, key: impl Into<Vec<u8>>) -> Output {
        self.key = Some(key.into());
        self
    }

    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Output {
        self.headers.push(Header {
            key: key.into(),
            value: Some(value.into()),
        });
        self
    }

    pub fn with_timestamp_ms(mut self, timestamp_ms: i64) -> Output {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }

    /// The value as UTF-8, if it is there and valid (handy in tests).
    pub fn value_str(&self) -> Option<&str> {
        self.value
            .as_deref()
            .and_then(|value| std::str::from_utf8(value).ok())
    }
}

/// A timer that came due: the input partition's watermark reached `time_ms`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timer {
    pub time_ms: i64,
    pub key: Vec<u8>,
}

/// A record the processor could not process: `index` is its place in the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub index: u32,
    pub message: String,
}

/// What one call produced: the outputs, and the records that failed (whose outputs are not
/// among `outputs`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchResult {
    pub outputs: Vec<Output>,
    pub failures: Vec<Failure>,
}

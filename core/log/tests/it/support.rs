use fjord_log::{CleanupPolicy, FilePool, FlushPolicy, Log, OpenReport, Recovery, TopicConfig};
use fjord_record::{BatchBuilder, Compression, NewRecord, Records, batches};
use std::sync::Arc;

/// A record as a test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rec {
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
}

/// A record to encode: key, value, timestamp.
pub(crate) type Spec<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, i64);

/// Encodes one batch of records.
pub(crate) fn batch(records: &[Spec<'_>], codec: Compression) -> Vec<u8> {
    let mut builder = BatchBuilder::new(codec);
    for (key, value, timestamp_ms) in records {
        builder
            .push(&NewRecord {
                timestamp_ms: *timestamp_ms,
                key: *key,
                value: *value,
                headers: &[],
            })
            .expect("test batches are small");
    }
    builder.build().expect("test batches are small")
}

/// A batch of `count` records with value `value_bytes` long, keys "k{i}", timestamp `ts`.
pub(crate) fn filler(count: usize, value_bytes: usize, timestamp_ms: i64) -> Vec<u8> {
    let value = vec![b'x'; value_bytes];
    let keys: Vec<Vec<u8>> = (0..count).map(|i| format!("k{i}").into_bytes()).collect();
    let records: Vec<_> = keys
        .iter()
        .map(|k| (Some(k.as_slice()), Some(value.as_slice()), timestamp_ms))
        .collect();
    batch(&records, Compression::None)
}

/// Decodes every record in `bytes` (whole batches, as `Log::read` returns them).
pub(crate) fn decode(bytes: &[u8]) -> anyhow::Result<Vec<Rec>> {
    let mut out = Vec::new();
    for batch in batches(bytes) {
        let batch = batch?;
        batch.verify_crc()?;
        let records = batch.decompressed_record_bytes(1 << 26)?;
        for record in Records::new(&records) {
            let record = record?;
            out.push(Rec {
                offset: batch.header.base_offset + i64::from(record.offset_delta),
                timestamp: batch.header.base_timestamp + record.timestamp_delta,
                key: record.key.map(<[u8]>::to_vec),
                value: record.value.map(<[u8]>::to_vec),
            });
        }
    }
    Ok(out)
}

/// Every record from the log start offset to the log end offset, read in small steps.
pub(crate) fn read_all(log: &Log) -> anyhow::Result<Vec<Rec>> {
    let mut out: Vec<Rec> = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let bytes = log.read(offset, 700, i64::MAX)?;
        if bytes.is_empty() {
            break;
        }
        let mut next = offset;
        for batch in batches(&bytes) {
            next = batch?.header.next_offset();
        }
        out.extend(decode(&bytes)?.into_iter().filter(|r| r.offset >= offset));
        anyhow::ensure!(next > offset, "read at {offset} made no progress");
        offset = next;
    }
    Ok(out)
}

pub(crate) fn small_config() -> TopicConfig {
    TopicConfig {
        segment_bytes: 1024,
        index_interval_bytes: 100,
        retention_ms: None,
        flush: FlushPolicy::Os,
        ..TopicConfig::default()
    }
}

pub(crate) fn compact_config() -> TopicConfig {
    TopicConfig {
        cleanup_policy: CleanupPolicy::COMPACT,
        delete_retention_ms: 1_000,
        ..small_config()
    }
}

pub(crate) fn new_log(dir: &std::path::Path, config: TopicConfig) -> anyhow::Result<Log> {
    Ok(Log::create(dir, config, FilePool::new(64), 0)?)
}

pub(crate) fn pool() -> Arc<FilePool> {
    FilePool::new(64)
}

/// Restarts `log`: closed cleanly (`clean`, then trusted) or dropped as a crash leaves it
/// (then fully recovered), and opened again at `now_ms`.
pub(crate) fn restart(
    log: Log,
    dir: &std::path::Path,
    config: TopicConfig,
    clean: bool,
    now_ms: i64,
) -> anyhow::Result<(Log, OpenReport)> {
    let recovery = if clean {
        log.close()?;
        Recovery::Trusted
    } else {
        drop(log);
        Recovery::Full
    };
    Ok(Log::open(dir, config, pool(), recovery, now_ms)?)
}

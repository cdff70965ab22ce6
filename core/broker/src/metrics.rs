//! Prometheus metrics the broker records, through the `metrics` facade (the binary installs
//! the exporter). Names follow Prometheus conventions: `_total` counters, base units.
//!
//! - `fjord_requests_total{api,version}`, `fjord_request_duration_seconds{api}`
//! - `fjord_bytes_in_total{topic}`, `fjord_records_in_total{topic}` (produced)
//! - `fjord_bytes_out_total{topic}`, `fjord_records_out_total{topic}` (fetched)
//! - `fjord_connections`, `fjord_partitions`
//! - `fjord_connections_refused_total{limit}`: connections closed at once by a limit
//! - `fjord_fetch_sessions`: incremental fetch sessions open (KIP-227)
//! - `fjord_consumer_group_lag{group,topic,partition}`: high watermark minus committed offset
//! - `fjord_transactional_ids{state}`: transactional ids per coordinator state
//! - `fjord_transaction_oldest_open_seconds`: how long the oldest open transaction has been
//!   open (0 when none is): what holds read_committed consumers back

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fjord_engine::Batches;
use kafka_protocol::messages::ApiKey;

pub(crate) fn request(api_key: ApiKey, version: i16, elapsed: Duration) {
    let api = format!("{api_key:?}");
    metrics::counter!("fjord_requests_total", "api" => api.clone(), "version" => version.to_string())
        .increment(1);
    metrics::histogram!("fjord_request_duration_seconds", "api" => api).record(elapsed);
}

pub(crate) fn produced(topic: &str, bytes: usize, records: i64) {
    let topic = topic.to_string();
    metrics::counter!("fjord_bytes_in_total", "topic" => topic.clone()).increment(bytes as u64);
    metrics::counter!("fjord_records_in_total", "topic" => topic)
        .increment(u64::try_from(records).unwrap_or(0));
}

/// Counts what a fetch sends for a partition. Records are counted from batch headers when
/// the batches were copied, and as the offsets a file range spans when they go out with
/// `sendfile` unread (the same, unless compaction removed records in between).
pub(crate) fn fetched(topic: &str, fetched: &Batches) {
    let records = match fetched {
        Batches::File(slice) => {
            u64::try_from(slice.offsets().end.0 - slice.offsets().start.0).unwrap_or(0)
        }
        Batches::Memory(batches) => fjord_record::batches(batches)
            .filter_map(Result::ok)
            .map(|b| u64::try_from(b.header.records_count).unwrap_or(0))
            .sum(),
    };
    if fetched.is_empty() {
        return;
    }
    let topic = topic.to_string();
    metrics::counter!("fjord_bytes_out_total", "topic" => topic.clone())
        .increment(fetched.len() as u64);
    metrics::counter!("fjord_records_out_total", "topic" => topic).increment(records);
}

/// Open connections: kept here and set as a whole, so that the gauge is right even after
/// the exporter drops it for being idle (sampled gauges are dropped when not refreshed).
static OPEN_CONNECTIONS: AtomicU64 = AtomicU64::new(0);

pub(crate) fn connection_opened() {
    let open = OPEN_CONNECTIONS.fetch_add(1, Ordering::Relaxed) + 1;
    metrics::gauge!("fjord_connections").set(open as f64);
}

/// Sets the connection gauge again (the gauges task, every few seconds).
pub(crate) fn refresh_connections() {
    let open = OPEN_CONNECTIONS.load(Ordering::Relaxed);
    metrics::gauge!("fjord_connections").set(open as f64);
}

pub(crate) fn connection_refused(limit: &'static str) {
    metrics::counter!("fjord_connections_refused_total", "limit" => limit).increment(1);
}

pub(crate) fn connection_closed() {
    let open = OPEN_CONNECTIONS
        .fetch_sub(1, Ordering::Relaxed)
        .saturating_sub(1);
    metrics::gauge!("fjord_connections").set(open as f64);
}

pub(crate) fn fetch_sessions(count: usize) {
    metrics::gauge!("fjord_fetch_sessions").set(count as f64);
}

pub(crate) fn partitions(count: usize) {
    metrics::gauge!("fjord_partitions").set(count as f64);
}

pub(crate) fn group_lag(group: &str, topic: &str, partition: i32, lag: i64) {
    metrics::gauge!(
        "fjord_consumer_group_lag",
        "group" => group.to_string(),
        "topic" => topic.to_string(),
        "partition" => partition.to_string()
    )
    .set(lag as f64);
}

pub(crate) fn transactions(by_state: &[(&'static str, usize)], oldest_open: Duration) {
    for (state, count) in by_state {
        metrics::gauge!("fjord_transactional_ids", "state" => *state).set(*count as f64);
    }
    metrics::gauge!("fjord_transaction_oldest_open_seconds").set(oldest_open.as_secs_f64());
}

//! Prometheus metrics of processors (recorded with `metrics`; the binary exports them).

use std::time::Duration;

pub(crate) fn batch(
    processor: &str,
    records_in: usize,
    records_out: usize,
    fuel: u64,
    elapsed: Duration,
) {
    let name = processor.to_owned();
    metrics::counter!("fjord_processor_records_in_total", "processor" => name.clone())
        .increment(records_in as u64);
    metrics::counter!("fjord_processor_records_out_total", "processor" => name.clone())
        .increment(records_out as u64);
    metrics::counter!("fjord_processor_fuel_consumed_total", "processor" => name.clone())
        .increment(fuel);
    metrics::histogram!("fjord_processor_batch_duration_seconds", "processor" => name)
        .record(elapsed.as_secs_f64());
}

pub(crate) fn errors(processor: &str, count: usize) {
    if count > 0 {
        metrics::counter!("fjord_processor_errors_total", "processor" => processor.to_owned())
            .increment(count as u64);
    }
}

pub(crate) fn lag(processor: &str, partition: i32, lag: i64) {
    metrics::gauge!("fjord_processor_lag_records", "processor" => processor.to_owned(), "partition" => partition.to_string())
        .set(lag as f64);
}

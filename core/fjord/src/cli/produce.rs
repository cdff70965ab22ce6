//! `fjord produce TOPIC`: one record per input line, with optional keys and headers.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use serde::Serialize;

use super::{Connection, Output, pairs, print_json};

/// Longest input line accepted as one record.
const LINE_BYTES_MAX: usize = 64 * 1024 * 1024;

#[derive(Debug, clap::Args)]
pub(crate) struct ProduceArgs {
    #[command(flatten)]
    connection: Connection,
    topic: String,
    /// Read lines from this file instead of stdin.
    #[arg(long, short = 'f')]
    file: Option<PathBuf>,
    /// Split each line at the first SEPARATOR into key and value.
    #[arg(long, short = 'K', value_name = "SEPARATOR")]
    key_separator: Option<String>,
    /// A header on every record: --header source=cli (repeatable).
    #[arg(long, short = 'H', value_name = "NAME=VALUE")]
    header: Vec<String>,
    /// Send every record to this partition (default: by key hash, or spread).
    #[arg(long, short = 'p')]
    partition: Option<i32>,
    /// Acknowledgement level: 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: String,
    /// Compression codec: none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: String,
}

/// Counts deliveries reported by librdkafka's background thread.
#[derive(Default)]
struct Deliveries {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
                first.get_or_insert_with(|| error.to_string());
            }
        }
    }
}

#[derive(Debug, Serialize)]
struct Summary {
    topic: String,
    records: u64,
    bytes: u64,
    failed: u64,
    seconds: f64,
}

pub(crate) fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let mut config = args.connection.config()?;
    config
        .set("acks", &args.acks)
        .set("compression.codec", &args.compression)
        .set("linger.ms", "5");
    let producer: ThreadedProducer<Deliveries> = config
        .create_with_context(Deliveries::default())
        .context("creating the producer")?;
    let headers = pairs(&args.header, "--header")?;
    let (input, size): (Box<dyn Read>, Option<u64>) = match &args.file {
        Some(path) => {
            let file =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            let size = file.metadata().map(|m| m.len()).ok();
            (Box::new(file), size)
        }
        None => (Box::new(std::io::stdin().lock()), None),
    };
    let progress = progress_bar(size);
    let started = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(LINE_BYTES_MAX as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        anyhow::ensure!(
            line.len() <= LINE_BYTES_MAX || line.ends_with(b"\n"),
            "line {} is longer than {LINE_BYTES_MAX} bytes",
            records + 1
        );
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let (key, value) = split(text, args.key_separator.as_deref());
        send(&producer, &args, key, value, &headers)?;
        records += 1;
        bytes += read as u64;
        progress.set_position(if size.is_some() { bytes } else { records });
    }
    producer
        .flush(Duration::from_secs(60))
        .context("waiting for the broker to acknowledge")?;
    progress.finish_and_clear();
    let context = producer.context();
    let summary = Summary {
        topic: args.topic.clone(),
        records: context.delivered.load(Ordering::Relaxed),
        bytes,
        failed: context.failed.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
    };
    match args.connection.output {
        Output::Json => print_json(&summary)?,
        Output::Human => eprintln!(
            "produced {} records ({} bytes) to {} in {:.2} s",
            summary.records, summary.bytes, summary.topic, summary.seconds
        ),
    }
    if summary.failed > 0 {
        let first = context
            .first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_default();
        anyhow::bail!(
            "{} records were not delivered; first error: {first}",
            summary.failed
        );
    }
    Ok(())
}

fn split<'a>(line: &'a [u8], separator: Option<&str>) -> (Option<&'a [u8]>, &'a [u8]) {
    let Some(separator) = separator.map(str::as_bytes).filter(|s| !s.is_empty()) else {
        return (None, line);
    };
    match line.windows(separator.len()).position(|w| w == separator) {
        Some(at) => (Some(&line[..at]), &line[at + separator.len()..]),
        None => (None, line),
    }
}

fn send(
    producer: &ThreadedProducer<Deliveries>,
    args: &ProduceArgs,
    key: Option<&[u8]>,
    value: &[u8],
    headers: &[(String, String)],
) -> anyhow::Result<()> {
    loop {
        let mut record = BaseRecord::<[u8], [u8]>::to(&args.topic).payload(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(partition) = args.partition {
            record = record.partition(partition);
        }
        if !headers.is_empty() {
            let mut owned = OwnedHeaders::new();
            for (name, value) in headers {
                owned = owned.insert(Header {
                    key: name,
                    value: Some(value),
                });
            }
            record = record.headers(owned);
        }
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((error, _)) => return Err(error).context("producing"),
        }
    }
}

/// Bytes against the file size when it is known, a record count otherwise. Hidden when
/// stderr is not a terminal.
fn progress_bar(size: Option<u64>) -> ProgressBar {
    match size {
        Some(size) => {
            let bar = ProgressBar::new(size);
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ) {
                bar.set_style(style);
            }
            bar
        }
        None => {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {pos} records {per_sec}") {
                bar.set_style(style);
            }
            bar
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_split_at_the_first_separator() {
        assert_eq!(
            super::split(b"k:v:w", Some(":")),
            (Some(&b"k"[..]), &b"v:w"[..])
        );
        assert_eq!(super::split(b"plain", Some(":")), (None, &b"plain"[..]));
        assert_eq!(
            super::split(b"k::v", Some("::")),
            (Some(&b"k"[..]), &b"v"[..])
        );
        assert_eq!(super::split(b"k:v", None), (None, &b"k:v"[..]));
    }
}

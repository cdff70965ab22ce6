//! `fjord consume TOPIC`: from the beginning, the end, an offset or a time; alone or in a
//! group; until the end offsets seen at start, or following new records.

use std::io::Write;
use std::time::Duration;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use super::{Connection, Output, TIMEOUT};

#[derive(Debug, clap::Args)]
pub(crate) struct ConsumeArgs {
    #[command(flatten)]
    connection: Connection,
    topic: String,
    /// Where to start: beginning, end, an offset, or time:MILLIS (first record at or after).
    /// In a group, only partitions without a committed offset use it.
    #[arg(long, default_value = "beginning")]
    from: String,
    /// Only this partition (not with --group).
    #[arg(long, short = 'p', conflicts_with = "group")]
    partition: Option<i32>,
    /// Consume as a member of this consumer group, committing what was printed.
    #[arg(long, short = 'g')]
    group: Option<String>,
    /// Keep waiting for new records instead of stopping at the end.
    #[arg(long, short = 'F')]
    follow: bool,
    /// Stop after this many records.
    #[arg(long, short = 'n')]
    count: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Printed<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
    key: Option<String>,
    value: Option<String>,
    headers: Vec<(String, Option<String>)>,
}

pub(crate) fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let mut config = args.connection.config()?;
    config
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    let start = Start::parse(&args.from)?;
    if let Some(group) = &args.group {
        let reset = match start {
            Start::End => "latest",
            _ => "earliest",
        };
        config
            .set("group.id", group)
            .set("auto.offset.reset", reset);
    } else {
        config.set("group.id", "fjord-cli");
    }
    let consumer: BaseConsumer = config.create().context("creating the consumer")?;
    let mut ends = if args.group.is_some() {
        consumer.subscribe(&[&args.topic])?;
        None
    } else {
        Some(assign(&consumer, &args, start)?)
    };
    let progress = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {pos} records {per_sec}") {
        progress.set_style(style);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    loop {
        if args.count.is_some_and(|n| printed >= n) {
            break;
        }
        if !args.follow {
            if ends.is_none() && args.group.is_some() {
                ends = group_ends(&consumer, &args.topic)?;
            }
            if let Some(ends) = &ends
                && reached(&consumer, &args.topic, ends)?
            {
                break;
            }
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.context("consuming")?;
        print(&mut out, args.connection.output, &message)?;
        printed += 1;
        progress.set_position(printed);
    }
    out.flush()?;
    progress.finish_and_clear();
    if args.group.is_some() && printed > 0 {
        consumer
            .commit_consumer_state(CommitMode::Sync)
            .context("committing offsets")?;
    }
    Ok(())
}

/// Where a consumer without a committed position starts.
#[derive(Debug, Clone, Copy)]
enum Start {
    Beginning,
    End,
    Offset(i64),
    /// The first record at or after this time (ListOffsets by timestamp).
    TimeMs(i64),
}

impl Start {
    fn parse(from: &str) -> anyhow::Result<Self> {
        Ok(match from {
            "beginning" | "earliest" => Self::Beginning,
            "end" | "latest" => Self::End,
            other => match other.strip_prefix("time:") {
                Some(ms) => Self::TimeMs(ms.parse().context("--from time:MILLIS")?),
                None => Self::Offset(other.parse().with_context(|| {
                    format!("--from {other:?}: expected beginning, end, an offset or time:MILLIS")
                })?),
            },
        })
    }
}

/// Assigns the topic's partitions at the start position; returns their end offsets now.
fn assign(
    consumer: &BaseConsumer,
    args: &ConsumeArgs,
    start: Start,
) -> anyhow::Result<Vec<(i32, i64)>> {
    let metadata = consumer.fetch_metadata(Some(&args.topic), TIMEOUT)?;
    let topic = metadata
        .topics()
        .iter()
        .find(|t| t.name() == args.topic && !t.partitions().is_empty())
        .with_context(|| format!("topic {} not found", args.topic))?;
    let partitions: Vec<i32> = match args.partition {
        Some(p) => vec![p],
        None => topic.partitions().iter().map(|p| p.id()).collect(),
    };
    let offset = match start {
        Start::Beginning => Offset::Beginning,
        Start::End => Offset::End,
        Start::Offset(offset) => Offset::Offset(offset),
        // offsets_for_times reads the timestamp from the offset field.
        Start::TimeMs(ms) => Offset::Offset(ms),
    };
    let mut list = TopicPartitionList::new();
    for &p in &partitions {
        list.add_partition_offset(&args.topic, p, offset)?;
    }
    if let Start::TimeMs(_) = start {
        // Partitions with no record that late come back as End: they start at the end.
        list = consumer.offsets_for_times(list, TIMEOUT)?;
    }
    consumer.assign(&list)?;
    partitions
        .iter()
        .map(|&p| Ok((p, consumer.fetch_watermarks(&args.topic, p, TIMEOUT)?.1)))
        .collect()
}

/// In a group: the end offsets of the partitions assigned so far (none before assignment).
fn group_ends(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<Option<Vec<(i32, i64)>>> {
    let assignment = consumer.assignment()?;
    if assignment.count() == 0 {
        return Ok(None);
    }
    let ends = assignment
        .elements()
        .iter()
        .map(|e| {
            Ok((
                e.partition(),
                consumer.fetch_watermarks(topic, e.partition(), TIMEOUT)?.1,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(ends))
}

/// Whether every partition's position reached its end offset.
fn reached(consumer: &BaseConsumer, topic: &str, ends: &[(i32, i64)]) -> anyhow::Result<bool> {
    let positions = consumer.position()?;
    Ok(ends.iter().all(|&(partition, end)| {
        end == 0
            || positions
                .find_partition(topic, partition)
                .is_some_and(|e| matches!(e.offset(), Offset::Offset(o) if o >= end))
    }))
}

fn print(out: &mut impl Write, output: Output, message: &impl Message) -> anyhow::Result<()> {
    match output {
        Output::Human => {
            out.write_all(message.payload().unwrap_or_default())?;
            out.write_all(b"\n")?;
        }
        Output::Json => {
            let text =
                |bytes: Option<&[u8]>| bytes.map(|b| String::from_utf8_lossy(b).into_owned());
            let headers = message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|header| (header.key.to_string(), text(header.value)))
                        .collect()
                })
                .unwrap_or_default();
            let printed = Printed {
                topic: message.topic(),
                partition: message.partition(),
                offset: message.offset(),
                timestamp_ms: message.timestamp().to_millis(),
                key: text(message.key()),
                value: text(message.payload()),
                headers,
            };
            serde_json::to_writer(&mut *out, &printed)?;
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}

//! `fjord group list|describe|reset-offsets|delete`.

use std::collections::BTreeMap;

use anyhow::Context as _;
use rdkafka::admin::AdminOptions;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use super::{Connection, Output, TIMEOUT, block_on, print_json, print_table};

#[derive(Debug, clap::Args)]
pub(crate) struct GroupArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Debug, clap::Subcommand)]
enum GroupCommand {
    /// Every consumer group with its state.
    List,
    /// Members, assignments, committed offsets and lag per partition.
    Describe { group: String },
    /// Move a group's committed offsets (the group must have no members). Dry run unless
    /// --execute is given.
    ResetOffsets {
        group: String,
        #[arg(long, short = 't')]
        topic: String,
        /// earliest, latest, an offset, or time:MILLIS.
        #[arg(long)]
        to: String,
        #[arg(long)]
        execute: bool,
    },
    /// Delete a group with no members, and its committed offsets.
    Delete { group: String },
}

#[derive(Debug, Serialize)]
struct GroupSummary {
    group: String,
    state: String,
    protocol_type: String,
    members: usize,
}

#[derive(Debug, Serialize)]
struct PartitionLag {
    topic: String,
    partition: i32,
    committed_offset: Option<i64>,
    high_watermark: i64,
    lag: Option<i64>,
    member: Option<String>,
}

#[derive(Debug, Serialize)]
struct GroupView {
    group: String,
    state: String,
    protocol: String,
    members: Vec<(String, String, String)>,
    partitions: Vec<PartitionLag>,
}

pub(crate) fn run(args: GroupArgs) -> anyhow::Result<()> {
    let connection = &args.connection;
    match args.command {
        GroupCommand::List => list(connection),
        GroupCommand::Describe { group } => describe(connection, &group),
        GroupCommand::ResetOffsets {
            group,
            topic,
            to,
            execute,
        } => reset(connection, &group, &topic, &to, execute),
        GroupCommand::Delete { group } => {
            let admin = connection.admin()?;
            let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
            for result in block_on(admin.delete_groups(&[&group], &options))?? {
                result.map_err(|(g, code)| anyhow::anyhow!("cannot delete group {g}: {code}"))?;
            }
            match connection.output {
                Output::Human => println!("group {group} deleted"),
                Output::Json => {
                    print_json(&serde_json::json!({"group": group, "result": "deleted"}))?
                }
            }
            Ok(())
        }
    }
}

fn consumer(connection: &Connection, group: &str) -> anyhow::Result<BaseConsumer> {
    let mut config = connection.config()?;
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    config.create().context("creating a client")
}

fn list(connection: &Connection) -> anyhow::Result<()> {
    let client = consumer(connection, "fjord-cli")?;
    let groups = client.fetch_group_list(None, TIMEOUT)?;
    let mut summaries: Vec<GroupSummary> = groups
        .groups()
        .iter()
        .map(|g| GroupSummary {
            group: g.name().to_string(),
            state: g.state().to_string(),
            protocol_type: g.protocol_type().to_string(),
            members: g.members().len(),
        })
        .collect();
    summaries.sort_by(|a, b| a.group.cmp(&b.group));
    match connection.output {
        Output::Json => print_json(&summaries),
        Output::Human => {
            let rows: Vec<Vec<String>> = summaries
                .iter()
                .map(|g| vec![g.group.clone(), g.state.clone(), g.members.to_string()])
                .collect();
            print_table(&["GROUP", "STATE", "MEMBERS"], &rows);
            Ok(())
        }
    }
}

fn describe(connection: &Connection, group: &str) -> anyhow::Result<()> {
    let client = consumer(connection, group)?;
    let groups = client.fetch_group_list(Some(group), TIMEOUT)?;
    let info = groups
        .groups()
        .iter()
        .find(|g| g.name() == group)
        .with_context(|| format!("group {group} not found"))?;
    // Which member owns which partition, from the consumer protocol assignments.
    let mut owners: BTreeMap<(String, i32), String> = BTreeMap::new();
    let mut members = Vec::new();
    for member in info.members() {
        members.push((
            member.id().to_string(),
            member.client_id().to_string(),
            member.client_host().to_string(),
        ));
        for (topic, partition) in parse_assignment(member.assignment().unwrap_or_default()) {
            owners.insert((topic, partition), member.client_id().to_string());
        }
    }
    let partitions = lag(&client, group, &owners)?;
    let view = GroupView {
        group: group.to_string(),
        state: info.state().to_string(),
        protocol: info.protocol().to_string(),
        members,
        partitions,
    };
    match connection.output {
        Output::Json => print_json(&view),
        Output::Human => {
            println!(
                "group {} ({}), {} members",
                view.group,
                view.state,
                view.members.len()
            );
            let show = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
            let rows: Vec<Vec<String>> = view
                .partitions
                .iter()
                .map(|p| {
                    vec![
                        p.topic.clone(),
                        p.partition.to_string(),
                        show(p.committed_offset),
                        p.high_watermark.to_string(),
                        show(p.lag),
                        p.member.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            print_table(
                &[
                    "TOPIC",
                    "PARTITION",
                    "COMMITTED",
                    "HIGH WATERMARK",
                    "LAG",
                    "MEMBER",
                ],
                &rows,
            );
            Ok(())
        }
    }
}

/// Committed offset, high watermark and lag of every partition the group owns or committed.
fn lag(
    client: &BaseConsumer,
    group: &str,
    owners: &BTreeMap<(String, i32), String>,
) -> anyhow::Result<Vec<PartitionLag>> {
    let metadata = client.fetch_metadata(None, TIMEOUT)?;
    let mut list = TopicPartitionList::new();
    for topic in metadata
        .topics()
        .iter()
        .filter(|t| !t.name().starts_with("__"))
    {
        for partition in topic.partitions() {
            list.add_partition(topic.name(), partition.id());
        }
    }
    let committed = client
        .committed_offsets(list, TIMEOUT)
        .with_context(|| format!("fetching the committed offsets of {group}"))?;
    let mut rows = Vec::new();
    for element in committed.elements() {
        let key = (element.topic().to_string(), element.partition());
        let committed_offset = match element.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        };
        let member = owners.get(&key).cloned();
        if committed_offset.is_none() && member.is_none() {
            continue;
        }
        let (_, high_watermark) = client.fetch_watermarks(&key.0, key.1, TIMEOUT)?;
        rows.push(PartitionLag {
            lag: committed_offset.map(|c| (high_watermark - c).max(0)),
            topic: key.0,
            partition: key.1,
            committed_offset,
            high_watermark,
            member,
        });
    }
    Ok(rows)
}

fn reset(
    connection: &Connection,
    group: &str,
    topic: &str,
    to: &str,
    execute: bool,
) -> anyhow::Result<()> {
    let client = consumer(connection, group)?;
    let metadata = client.fetch_metadata(Some(topic), TIMEOUT)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    anyhow::ensure!(!partitions.is_empty(), "topic {topic} not found");
    let mut targets = Vec::new();
    for &partition in &partitions {
        let (low, high) = client.fetch_watermarks(topic, partition, TIMEOUT)?;
        let offset = match to {
            "earliest" => low,
            "latest" => high,
            other => match other.strip_prefix("time:") {
                Some(ms) => {
                    let mut query = TopicPartitionList::new();
                    query.add_partition_offset(topic, partition, Offset::Offset(ms.parse()?))?;
                    let found = client.offsets_for_times(query, TIMEOUT)?;
                    match found.elements().first().map(|e| e.offset()) {
                        Some(Offset::Offset(o)) => o,
                        _ => high,
                    }
                }
                None => other
                    .parse::<i64>()
                    .with_context(|| {
                        format!(
                            "--to {other:?}: expected earliest, latest, an offset or time:MILLIS"
                        )
                    })?
                    .clamp(low, high),
            },
        };
        targets.push((partition, offset));
    }
    if execute {
        let mut list = TopicPartitionList::new();
        for &(partition, offset) in &targets {
            list.add_partition_offset(topic, partition, Offset::Offset(offset))?;
        }
        client
            .commit(&list, CommitMode::Sync)
            .with_context(|| format!("committing new offsets for {group} (is the group empty?)"))?;
    }
    match connection.output {
        Output::Json => print_json(&serde_json::json!({
            "group": group, "topic": topic, "executed": execute,
            "offsets": targets.iter().map(|(p, o)| serde_json::json!({"partition": p, "offset": o})).collect::<Vec<_>>(),
        })),
        Output::Human => {
            let rows: Vec<Vec<String>> = targets
                .iter()
                .map(|(p, o)| vec![topic.to_string(), p.to_string(), o.to_string()])
                .collect();
            print_table(&["TOPIC", "PARTITION", "NEW OFFSET"], &rows);
            if !execute {
                println!("(dry run: add --execute to commit these offsets)");
            }
            Ok(())
        }
    }
}

/// Topic partitions in a consumer protocol assignment (version, then topics with partition
/// arrays). Anything malformed yields what was read before it.
fn parse_assignment(bytes: &[u8]) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(head)
    };
    let mut read = || -> Option<()> {
        take(2)?;
        let topics = i32::from_be_bytes(take(4)?.try_into().ok()?);
        for _ in 0..topics.max(0) {
            let length = i16::from_be_bytes(take(2)?.try_into().ok()?);
            let topic = String::from_utf8(take(usize::try_from(length).ok()?)?.to_vec()).ok()?;
            let count = i32::from_be_bytes(take(4)?.try_into().ok()?);
            for _ in 0..count.max(0) {
                out.push((topic.clone(), i32::from_be_bytes(take(4)?.try_into().ok()?)));
            }
        }
        Some(())
    };
    let _ = read();
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn assignments_parse_and_truncation_is_safe() {
        let mut bytes = vec![
            0, 1, 0, 0, 0, 1, 0, 2, b't', b'1', 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 5,
        ];
        assert_eq!(
            super::parse_assignment(&bytes),
            vec![("t1".to_string(), 3), ("t1".to_string(), 5)]
        );
        bytes.truncate(20);
        assert_eq!(super::parse_assignment(&bytes), vec![("t1".to_string(), 3)]);
        assert!(super::parse_assignment(&[0, 1, 0x7f, 0xff, 0xff, 0xff]).is_empty());
    }
}

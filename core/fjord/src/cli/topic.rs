//! `fjord topic create|list|describe|alter|delete`.

use anyhow::Context as _;
use rdkafka::admin::AdminClient;
use rdkafka::admin::{
    AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use serde::Serialize;

use super::{Connection, Output, TIMEOUT, block_on, pairs, print_json, print_table};

#[derive(Debug, clap::Args)]
pub(crate) struct TopicArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        #[arg(long, short = 'p', default_value_t = 1)]
        partitions: i32,
        #[arg(long, default_value_t = 1)]
        replication_factor: i32,
        /// Topic config, Kafka names: --config retention.ms=60000 (repeatable).
        #[arg(long, short = 'c', value_name = "NAME=VALUE")]
        config: Vec<String>,
    },
    /// List topics with their partition counts.
    List {
        /// Include internal topics (`__consumer_offsets`).
        #[arg(long)]
        internal: bool,
    },
    /// Partitions, offsets and config overrides of a topic.
    Describe { name: String },
    /// Set or remove config overrides, or add partitions.
    Alter {
        name: String,
        #[arg(long, short = 'c', value_name = "NAME=VALUE")]
        config: Vec<String>,
        #[arg(long, value_name = "NAME")]
        delete_config: Vec<String>,
        /// Grow the topic to this many partitions.
        #[arg(long)]
        partitions: Option<usize>,
    },
    /// Delete a topic and its data.
    Delete { name: String },
}

#[derive(Debug, Serialize)]
struct TopicSummary {
    name: String,
    partitions: usize,
}

#[derive(Debug, Serialize)]
struct PartitionView {
    partition: i32,
    leader: i32,
    replicas: Vec<i32>,
    log_start_offset: i64,
    high_watermark: i64,
}

#[derive(Debug, Serialize)]
struct TopicView {
    name: String,
    partitions: Vec<PartitionView>,
    configs: Vec<(String, String)>,
}

pub(crate) fn run(args: TopicArgs) -> anyhow::Result<()> {
    let connection = &args.connection;
    let admin = connection.admin()?;
    match args.command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            config,
        } => {
            let config = pairs(&config, "--config")?;
            let mut topic = NewTopic::new(
                &name,
                partitions,
                TopicReplication::Fixed(replication_factor),
            );
            for (key, value) in &config {
                topic = topic.set(key, value);
            }
            let results = block_on(admin.create_topics([&topic], &options()))??;
            for result in results {
                result.map_err(|(topic, code)| anyhow::anyhow!("cannot create {topic}: {code}"))?;
            }
            done(connection.output, "created", &name)
        }
        TopicCommand::List { internal } => list(&admin, connection.output, internal),
        TopicCommand::Describe { name } => describe(&admin, connection.output, &name),
        TopicCommand::Alter {
            name,
            config,
            delete_config,
            partitions,
        } => {
            if let Some(count) = partitions {
                let grow = NewPartitions::new(&name, count);
                for result in block_on(admin.create_partitions([&grow], &options()))?? {
                    result.map_err(|(t, code)| anyhow::anyhow!("cannot grow {t}: {code}"))?;
                }
            }
            if !config.is_empty() || !delete_config.is_empty() {
                alter(&admin, &name, &pairs(&config, "--config")?, &delete_config)?;
            }
            done(connection.output, "altered", &name)
        }
        TopicCommand::Delete { name } => {
            for result in block_on(admin.delete_topics(&[&name], &options()))?? {
                result.map_err(|(t, code)| anyhow::anyhow!("cannot delete {t}: {code}"))?;
            }
            done(connection.output, "deleted", &name)
        }
    }
}

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(TIMEOUT))
}

fn done(output: Output, what: &str, name: &str) -> anyhow::Result<()> {
    match output {
        Output::Human => println!("topic {name} {what}"),
        Output::Json => print_json(&serde_json::json!({ "topic": name, "result": what }))?,
    }
    Ok(())
}

fn list(
    admin: &AdminClient<DefaultClientContext>,
    output: Output,
    internal: bool,
) -> anyhow::Result<()> {
    let metadata = admin
        .inner()
        .fetch_metadata(None, TIMEOUT)
        .context("fetching metadata")?;
    let mut topics: Vec<TopicSummary> = metadata
        .topics()
        .iter()
        .filter(|t| internal || !t.name().starts_with("__"))
        .map(|t| TopicSummary {
            name: t.name().to_string(),
            partitions: t.partitions().len(),
        })
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    match output {
        Output::Json => print_json(&topics),
        Output::Human => {
            let rows: Vec<Vec<String>> = topics
                .iter()
                .map(|t| vec![t.name.clone(), t.partitions.to_string()])
                .collect();
            print_table(&["TOPIC", "PARTITIONS"], &rows);
            Ok(())
        }
    }
}

fn describe(
    admin: &AdminClient<DefaultClientContext>,
    output: Output,
    name: &str,
) -> anyhow::Result<()> {
    let client = admin.inner();
    let metadata = client
        .fetch_metadata(Some(name), TIMEOUT)
        .context("fetching metadata")?;
    let topic = metadata
        .topics()
        .iter()
        .find(|t| t.name() == name)
        .with_context(|| format!("topic {name} not found"))?;
    if let Some(error) = topic.error() {
        anyhow::bail!(
            "topic {name}: {:?}",
            rdkafka::types::RDKafkaErrorCode::from(error)
        );
    }
    let mut partitions = Vec::new();
    for p in topic.partitions() {
        let (low, high) = client.fetch_watermarks(name, p.id(), TIMEOUT)?;
        partitions.push(PartitionView {
            partition: p.id(),
            leader: p.leader(),
            replicas: p.replicas().to_vec(),
            log_start_offset: low,
            high_watermark: high,
        });
    }
    let view = TopicView {
        name: name.to_string(),
        partitions,
        configs: overrides(admin, name)?,
    };
    match output {
        Output::Json => print_json(&view),
        Output::Human => {
            println!("topic {name}: {} partitions", view.partitions.len());
            let rows: Vec<Vec<String>> = view
                .partitions
                .iter()
                .map(|p| {
                    vec![
                        p.partition.to_string(),
                        p.leader.to_string(),
                        format!("{:?}", p.replicas),
                        p.log_start_offset.to_string(),
                        p.high_watermark.to_string(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "PARTITION",
                    "LEADER",
                    "REPLICAS",
                    "START OFFSET",
                    "HIGH WATERMARK",
                ],
                &rows,
            );
            if !view.configs.is_empty() {
                println!();
                let rows: Vec<Vec<String>> = view
                    .configs
                    .iter()
                    .map(|(n, v)| vec![n.clone(), v.clone()])
                    .collect();
                print_table(&["CONFIG", "VALUE"], &rows);
            }
            Ok(())
        }
    }
}

/// The configs set on the topic itself (not inherited from the broker).
fn overrides(
    admin: &AdminClient<DefaultClientContext>,
    name: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let resources =
        block_on(admin.describe_configs([&ResourceSpecifier::Topic(name)], &options()))??;
    let mut configs = Vec::new();
    for resource in resources {
        let resource = resource.map_err(|code| anyhow::anyhow!("describing {name}: {code}"))?;
        for entry in resource.entries {
            if entry.source == ConfigSource::DynamicTopic {
                configs.push((entry.name, entry.value.unwrap_or_default()));
            }
        }
    }
    configs.sort();
    Ok(configs)
}

/// AlterConfigs replaces the whole set of overrides, so the current set is read, changed and
/// written back (works against brokers without IncrementalAlterConfigs too).
fn alter(
    admin: &AdminClient<DefaultClientContext>,
    name: &str,
    set: &[(String, String)],
    delete: &[String],
) -> anyhow::Result<()> {
    let mut configs = overrides(admin, name)?;
    configs.retain(|(n, _)| !delete.contains(n) && !set.iter().any(|(s, _)| s == n));
    configs.extend(set.iter().cloned());
    let mut change = AlterConfig::new(ResourceSpecifier::Topic(name));
    for (key, value) in &configs {
        change = change.set(key, value);
    }
    for result in block_on(admin.alter_configs([&change], &options()))?? {
        result.map_err(|(_, code)| anyhow::anyhow!("cannot alter {name}: {code}"))?;
    }
    Ok(())
}

//! `fjord txn list|describe`: the transactions the cluster's coordinators hold, over the Kafka
//! admin APIs (ListTransactions and DescribeTransactions, which every broker answers for the
//! transactional ids it coordinates), so they work against any Kafka-compatible cluster.

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::admin_wire::{AdminWire, Described, Listed};
use super::{Connection, Output, TIMEOUT, print_json, print_table};

/// Kafka's NOT_COORDINATOR and TRANSACTIONAL_ID_NOT_FOUND: ask the next broker.
const NOT_COORDINATOR: i16 = 16;
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

#[derive(Debug, clap::Args)]
pub(crate) struct TxnArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: TxnCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TxnCommand {
    /// Every transactional id with its producer id and state.
    List,
    /// One transactional id: state, producer, timeout, start time and partitions.
    Describe { transactional_id: String },
}

pub(crate) fn run(args: TxnArgs) -> anyhow::Result<()> {
    let connection = &args.connection;
    let brokers = brokers(connection)?;
    match args.command {
        TxnCommand::List => list(connection, &brokers),
        TxnCommand::Describe { transactional_id } => {
            describe(connection, &brokers, &transactional_id)
        }
    }
}

/// Every broker of the cluster, HOST:PORT, from its metadata.
fn brokers(connection: &Connection) -> anyhow::Result<Vec<String>> {
    let client: BaseConsumer = connection.config()?.create().context("creating a client")?;
    let metadata = client.fetch_metadata(None, TIMEOUT)?;
    Ok(metadata
        .brokers()
        .iter()
        .map(|b| format!("{}:{}", b.host(), b.port()))
        .collect())
}

fn list(connection: &Connection, brokers: &[String]) -> anyhow::Result<()> {
    let mut listed: Vec<Listed> = Vec::new();
    for broker in brokers {
        let (error_code, found) = AdminWire::connect(broker, TIMEOUT)?.list_transactions()?;
        anyhow::ensure!(error_code == 0, "{broker} answered error code {error_code}");
        listed.extend(found);
    }
    listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
    match connection.output {
        Output::Json => print_json(&listed),
        Output::Human => {
            let rows: Vec<Vec<String>> = listed
                .iter()
                .map(|t| {
                    let id = t.transactional_id.clone();
                    vec![id, t.producer_id.to_string(), t.state.clone()]
                })
                .collect();
            print_table(&["TRANSACTIONAL ID", "PRODUCER ID", "STATE"], &rows);
            Ok(())
        }
    }
}

fn describe(connection: &Connection, brokers: &[String], id: &str) -> anyhow::Result<()> {
    let mut found = None;
    for broker in brokers {
        let described = AdminWire::connect(broker, TIMEOUT)?.describe_transaction(id)?;
        match described.error_code {
            0 => {
                found = Some(described);
                break;
            }
            NOT_COORDINATOR | TRANSACTIONAL_ID_NOT_FOUND => {}
            code => anyhow::bail!("{broker} answered error code {code} for {id}"),
        }
    }
    let described = found.with_context(|| format!("transactional id {id} not found"))?;
    match connection.output {
        Output::Json => print_json(&described),
        Output::Human => {
            print_described(&described);
            Ok(())
        }
    }
}

fn print_described(described: &Described) {
    let start = match described.start_time_ms {
        -1 => "-".to_string(),
        ms => ms.to_string(),
    };
    let rows = vec![
        vec![
            "transactional id".into(),
            described.transactional_id.clone(),
        ],
        vec!["state".into(), described.state.clone()],
        vec!["producer id".into(), described.producer_id.to_string()],
        vec![
            "producer epoch".into(),
            described.producer_epoch.to_string(),
        ],
        vec!["timeout ms".into(), described.timeout_ms.to_string()],
        vec!["start time ms".into(), start],
    ];
    print_table(&["FIELD", "VALUE"], &rows);
    let partitions: Vec<Vec<String>> = described
        .partitions
        .iter()
        .flat_map(|(topic, partitions)| {
            partitions
                .iter()
                .map(move |p| vec![topic.clone(), p.to_string()])
        })
        .collect();
    if !partitions.is_empty() {
        println!();
        print_table(&["TOPIC", "PARTITION"], &partitions);
    }
}

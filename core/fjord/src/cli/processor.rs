//! `fjord processor`: deploy WebAssembly processors into a broker and operate them, through
//! the broker's admin API.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use fjord_processor::{
    COMMIT_INTERVAL_DEFAULT, ErrorPolicy, ProcessorLimits, ProcessorSpec, StartFrom,
};
use hyper::Method;
use serde_json::Value;

use super::admin_http::AdminConnection;
use super::{Output, print_json, print_table};

#[derive(Debug, clap::Args)]
pub(crate) struct ProcessorArgs {
    #[command(flatten)]
    connection: AdminConnection,
    #[command(subcommand)]
    command: ProcessorCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ProcessorCommand {
    /// Deploy a processor (a component built for wasm32-wasip2), or redeploy it: the new
    /// module takes over at a batch boundary, with the state and positions kept.
    Deploy(DeployArgs),
    /// Every processor: state, lag, records in and out, errors.
    List,
    /// One processor and its tasks.
    Describe { name: String },
    /// A processor's recent log lines.
    Logs {
        name: String,
        /// How many lines (at most 1,000).
        #[arg(long, short = 'n', default_value_t = 100)]
        lines: usize,
    },
    /// Stop a processor's tasks after they commit; it stays paused across restarts.
    Pause { name: String },
    /// Start a paused (or failed) processor again.
    Resume { name: String },
    /// Stop and forget a processor (its changelog topic and consumer group stay).
    Delete { name: String },
    /// Create a processor project in ./NAME (with the SDK), ready for `cargo test` and
    /// `cargo build --release --target wasm32-wasip2`.
    New {
        name: String,
        /// Where to create it.
        #[arg(long, default_value = ".")]
        directory: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct DeployArgs {
    name: String,
    /// The topic to process.
    #[arg(long, short = 'i')]
    input: String,
    /// A topic it writes to; the first is the default output (repeatable).
    #[arg(long = "output", short = 'O', required = true)]
    outputs: Vec<String>,
    /// A setting for the processor's init, KEY=VALUE (repeatable).
    #[arg(long = "config", short = 'c', value_name = "KEY=VALUE")]
    settings: Vec<String>,
    /// Where to start in partitions without a committed position: earliest, latest, or a
    /// time in milliseconds since the epoch.
    #[arg(long, default_value = "earliest")]
    from: String,
    /// What to do with a record the processor fails: stop, skip, or dead-letter:TOPIC.
    #[arg(long, default_value = "stop")]
    on_error: String,
    /// Gather batches into one transaction for this long (0: commit every batch).
    #[arg(long, default_value_t = COMMIT_INTERVAL_DEFAULT.as_millis() as u64)]
    commit_interval_ms: u64,
    /// A limit, NAME=VALUE: memory_bytes, fuel_per_call, batch_records,
    /// output_records_per_call, output_bytes_per_call, state.size_bytes_max,
    /// state.key_bytes_max, state.value_bytes_max (repeatable).
    #[arg(long = "limit", value_name = "NAME=VALUE")]
    limits: Vec<String>,
    /// The component: the .wasm file `cargo build --target wasm32-wasip2` wrote.
    module: PathBuf,
}

pub(crate) fn run(args: ProcessorArgs) -> anyhow::Result<()> {
    let connection = &args.connection;
    match args.command {
        ProcessorCommand::Deploy(deploy) => {
            let name = deploy.name.clone();
            let body = deploy_body(deploy)?;
            let description =
                connection.call(Method::PUT, &format!("/v1/processors/{name}"), Some(body))?;
            print_description(connection.output, &description, "deployed")
        }
        ProcessorCommand::List => {
            let list = connection.call(Method::GET, "/v1/processors", None)?;
            if connection.output == Output::Json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .as_array()
                .into_iter()
                .flatten()
                .map(summary_row)
                .collect();
            print_table(
                &[
                    "NAME",
                    "STATE",
                    "INPUT",
                    "OUTPUTS",
                    "TASKS",
                    "RECORDS IN",
                    "RECORDS OUT",
                    "ERRORS",
                    "LAG",
                ],
                &rows,
            );
            Ok(())
        }
        ProcessorCommand::Describe { name } => {
            let description =
                connection.call(Method::GET, &format!("/v1/processors/{name}"), None)?;
            print_description(connection.output, &description, "")
        }
        ProcessorCommand::Logs { name, lines } => {
            let logs = connection.call(
                Method::GET,
                &format!("/v1/processors/{name}/logs?lines={lines}"),
                None,
            )?;
            if connection.output == Output::Json {
                return print_json(&logs);
            }
            for line in logs.as_array().into_iter().flatten() {
                println!(
                    "{} p{} {:<5} {}",
                    line["time_ms"].as_i64().unwrap_or_default(),
                    line["partition"].as_i64().unwrap_or_default(),
                    line["level"].as_str().unwrap_or_default(),
                    line["message"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
        ProcessorCommand::Pause { name } => {
            let description =
                connection.call(Method::POST, &format!("/v1/processors/{name}/pause"), None)?;
            print_description(connection.output, &description, "paused")
        }
        ProcessorCommand::Resume { name } => {
            let description =
                connection.call(Method::POST, &format!("/v1/processors/{name}/resume"), None)?;
            print_description(connection.output, &description, "resumed")
        }
        ProcessorCommand::New { name, directory } => {
            let root = super::scaffold::new_project(&directory, &name)?;
            match connection.output {
                Output::Json => print_json(&serde_json::json!({ "created": root })),
                Output::Human => {
                    println!("created {}: cd there, then cargo test", root.display());
                    Ok(())
                }
            }
        }
        ProcessorCommand::Delete { name } => {
            connection.call(Method::DELETE, &format!("/v1/processors/{name}"), None)?;
            match connection.output {
                Output::Json => print_json(&serde_json::json!({ "deleted": name })),
                Output::Human => {
                    println!("processor {name} deleted");
                    Ok(())
                }
            }
        }
    }
}

/// The admin API's deploy request for these arguments.
fn deploy_body(deploy: DeployArgs) -> anyhow::Result<Vec<u8>> {
    let module = std::fs::read(&deploy.module)
        .with_context(|| format!("reading {}", deploy.module.display()))?;
    let spec = ProcessorSpec {
        name: deploy.name,
        input: deploy.input,
        outputs: deploy.outputs,
        settings: super::pairs(&deploy.settings, "--config")?,
        start_from: parse_from(&deploy.from)?,
        error_policy: parse_on_error(&deploy.on_error)?,
        commit_interval: Duration::from_millis(deploy.commit_interval_ms),
        limits: parse_limits(&deploy.limits)?,
    };
    let request = serde_json::json!({
        "spec": spec,
        "module": base64::engine::general_purpose::STANDARD.encode(&module),
    });
    Ok(serde_json::to_vec(&request)?)
}

fn parse_from(from: &str) -> anyhow::Result<StartFrom> {
    Ok(match from {
        "earliest" => StartFrom::Earliest,
        "latest" => StartFrom::Latest,
        time => StartFrom::Timestamp {
            timestamp_ms: time
                .parse()
                .with_context(|| format!("--from {time:?}: earliest, latest or milliseconds"))?,
        },
    })
}

fn parse_on_error(policy: &str) -> anyhow::Result<ErrorPolicy> {
    Ok(match policy {
        "stop" => ErrorPolicy::Stop,
        "skip" => ErrorPolicy::Skip,
        other => match other.strip_prefix("dead-letter:") {
            Some(topic) if !topic.is_empty() => ErrorPolicy::DeadLetter {
                topic: topic.to_owned(),
            },
            _ => anyhow::bail!("--on-error {other:?}: stop, skip or dead-letter:TOPIC"),
        },
    })
}

/// `NAME=VALUE` limits over the defaults, through the limits' own JSON shape.
fn parse_limits(limits: &[String]) -> anyhow::Result<ProcessorLimits> {
    let mut json = serde_json::to_value(ProcessorLimits::default())?;
    for (name, value) in super::pairs(limits, "--limit")? {
        let number: u64 = value
            .parse()
            .with_context(|| format!("--limit {name}={value}: a whole number"))?;
        let slot = name
            .split('.')
            .try_fold(&mut json, |object, key| object.get_mut(key))
            .with_context(|| format!("--limit {name}: no such limit"))?;
        *slot = Value::from(number);
    }
    serde_json::from_value(json).context("--limit")
}

fn summary_row(processor: &Value) -> Vec<String> {
    let spec = &processor["spec"];
    let outputs: Vec<&str> = spec["outputs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    vec![
        spec["name"].as_str().unwrap_or_default().to_owned(),
        processor["state"].as_str().unwrap_or_default().to_owned(),
        spec["input"].as_str().unwrap_or_default().to_owned(),
        outputs.join(","),
        processor["tasks"]
            .as_array()
            .map_or(0, Vec::len)
            .to_string(),
        processor["records_in"].to_string(),
        processor["records_out"].to_string(),
        processor["errors"].to_string(),
        processor["lag"].to_string(),
    ]
}

fn print_description(output: Output, description: &Value, verb: &str) -> anyhow::Result<()> {
    if output == Output::Json {
        return print_json(description);
    }
    let spec = &description["spec"];
    let name = spec["name"].as_str().unwrap_or_default();
    if verb.is_empty() {
        println!(
            "processor {name} ({})",
            description["state"].as_str().unwrap_or_default()
        );
    } else {
        println!(
            "processor {name} {verb} ({})",
            description["state"].as_str().unwrap_or_default()
        );
    }
    println!("  input {}  outputs {}", spec["input"], spec["outputs"]);
    println!(
        "  on error {}  commit interval {} ms  module {} bytes",
        spec["error_policy"], spec["commit_interval_ms"], description["module_bytes"]
    );
    let rows: Vec<Vec<String>> = description["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|task| {
            vec![
                task["partition"].to_string(),
                task["state"].as_str().unwrap_or_default().to_owned(),
                task["committed_offset"].to_string(),
                task["lag"].to_string(),
                task["records_in"].to_string(),
                task["records_out"].to_string(),
                task["errors"].to_string(),
                task["last_error"].as_str().unwrap_or("-").to_owned(),
            ]
        })
        .collect();
    print_table(
        &[
            "PARTITION",
            "STATE",
            "COMMITTED",
            "LAG",
            "RECORDS IN",
            "RECORDS OUT",
            "ERRORS",
            "LAST ERROR",
        ],
        &rows,
    );
    Ok(())
}

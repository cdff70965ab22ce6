//! Client commands. They speak the Kafka protocol through librdkafka (the rdkafka crate), so
//! they work against any Kafka-compatible broker, and they never share code with the broker:
//! a codec bug on one side cannot hide one on the other.
//!
//! Output is a human table by default and JSON with `--output json` (one document per
//! command; `consume` prints one JSON object per line).

pub(crate) mod admin_http;
pub(crate) mod admin_wire;
pub(crate) mod consume;
pub(crate) mod group;
pub(crate) mod processor;
pub(crate) mod produce;
pub(crate) mod scaffold;
pub(crate) mod topic;
pub(crate) mod txn;

use std::net::ToSocketAddrs;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::ClientConfig;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;

/// How long a metadata or admin call may take before the command gives up.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(15);

/// Options every client command takes.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Connection {
    /// Bootstrap brokers, HOST:PORT[,HOST:PORT...].
    #[arg(
        long,
        short = 'b',
        env = "FJORD_BROKERS",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    pub(crate) brokers: String,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Human, global = true)]
    pub(crate) output: Output,
    /// Extra client settings, librdkafka names: -X security.protocol=ssl (repeatable).
    #[arg(short = 'X', value_name = "NAME=VALUE", global = true)]
    pub(crate) settings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Output {
    Human,
    Json,
}

impl Connection {
    /// A client config for these brokers, after checking one of them accepts connections so
    /// that a broker that is down is reported at once, not after librdkafka's retries.
    pub(crate) fn config(&self) -> anyhow::Result<ClientConfig> {
        self.check_reachable()?;
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("log_level", "3");
        for setting in &self.settings {
            let (name, value) = setting
                .split_once('=')
                .with_context(|| format!("-X {setting:?} must be NAME=VALUE"))?;
            config.set(name, value);
        }
        Ok(config)
    }

    pub(crate) fn admin(&self) -> anyhow::Result<AdminClient<DefaultClientContext>> {
        self.config()?.create().context("creating the admin client")
    }

    fn check_reachable(&self) -> anyhow::Result<()> {
        let mut last_error = None;
        for broker in self.brokers.split(',').map(str::trim) {
            let addresses = match broker.to_socket_addrs() {
                Ok(addresses) => addresses,
                Err(error) => {
                    last_error = Some(format!("{broker}: {error}"));
                    continue;
                }
            };
            for address in addresses {
                match std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5)) {
                    Ok(_) => return Ok(()),
                    Err(error) => last_error = Some(format!("{broker}: {error}")),
                }
            }
        }
        anyhow::bail!(
            "cannot reach any broker ({}); is the broker running? (set --brokers or FJORD_BROKERS)",
            last_error.unwrap_or_else(|| "no brokers given".into())
        )
    }
}

/// Runs an admin future to completion on a small runtime.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(future))
}

/// Prints rows as an aligned table with a header.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Prints a value as pretty JSON.
pub(crate) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Parses `NAME=VALUE` pairs.
pub(crate) fn pairs(settings: &[String], flag: &str) -> anyhow::Result<Vec<(String, String)>> {
    settings
        .iter()
        .map(|s| {
            s.split_once('=')
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .with_context(|| format!("{flag} {s:?} must be NAME=VALUE"))
        })
        .collect()
}

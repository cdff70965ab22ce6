//! The `fjord` binary: `fjord serve` runs the broker; `fjord topic|produce|consume|group|txn`
//! talk to any Kafka-compatible broker (Fjord, Apache Kafka, Redpanda) over the wire;
//! `fjord processor` operates a Fjord broker's processors through its admin API.

mod alloc;
mod cli;
mod metrics;
mod serve;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: alloc::Allocator = alloc::Allocator;

#[derive(Debug, Parser)]
#[command(
    name = "fjord",
    version,
    about = "Fjord: a Kafka-compatible event streaming platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a single-node broker.
    Serve(serve::ServeArgs),
    /// Create, list, describe, alter and delete topics.
    Topic(cli::topic::TopicArgs),
    /// Produce lines from stdin or a file as records.
    Produce(cli::produce::ProduceArgs),
    /// Consume records and print them.
    Consume(cli::consume::ConsumeArgs),
    /// List, describe, reset and delete consumer groups.
    Group(cli::group::GroupArgs),
    /// List and describe transactions.
    Txn(cli::txn::TxnArgs),
    /// Deploy and operate WebAssembly processors (through the broker's admin API).
    Processor(cli::processor::ProcessorArgs),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => serve::serve(args),
        Command::Topic(args) => cli::topic::run(args),
        Command::Produce(args) => cli::produce::run(args),
        Command::Consume(args) => cli::consume::run(args),
        Command::Group(args) => cli::group::run(args),
        Command::Txn(args) => cli::txn::run(args),
        Command::Processor(args) => cli::processor::run(args),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

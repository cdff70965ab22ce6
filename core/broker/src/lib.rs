//! Fjord's Kafka front end: the Kafka wire protocol over the engine.
//!
//! [`Broker`] listens for Kafka clients, decodes each request with `kafka-protocol`, hands it
//! to the handler for its API (one file per API under `handlers/`), which calls the
//! [`fjord_engine::Engine`] and encodes its answer. The broker holds no data state of its
//! own: topics, partitions, groups and producer ids live in the engine, which processors,
//! connectors and SQL share in process. Its only state is per connection.
//! Requests on one connection are handled one at a time and answered in order, as Kafka
//! does, while the next frames are read ahead and earlier answers written (`connection`);
//! many connections are served concurrently on the tokio runtime.
//!
//! A fetch response is written as chunks (`outgoing`): the codec encodes every field but
//! the records, and a local partition's records go from the segment file to the socket with
//! `sendfile`.
//!
//! # Invariants
//! - Nothing from the network is trusted: a frame is size-checked before any allocation, a
//!   request that does not decode closes only its connection, every batch is validated by
//!   the log before it touches a file.
//! - Kafka error codes come from one place, `codes.rs`.
//! - The front end knows nothing of processors, connectors or SQL, and the engine knows
//!   nothing of the Kafka wire.

mod codes;
mod config;
mod connection;
mod error;
mod handlers;
pub mod limits;
mod metrics;
mod outgoing;
mod server;

pub use config::BrokerConfig;
pub use error::{Error, Result};
pub use server::{Broker, decode_request_frame};

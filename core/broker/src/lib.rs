//! Fjord's Kafka-protocol broker.
//!
//! [`Broker`] listens for Kafka clients, decodes each request with `kafka-protocol`, hands it
//! to the handler for its API (one file per API under `handlers/`), and writes the response.
//! Requests on one connection are handled one at a time and answered in order, as Kafka
//! does, while the next frames are read ahead and earlier answers written (`connection`);
//! many connections are served concurrently on the tokio runtime.
//!
//! Partitions are reached only through the [`PartitionStorage`] trait: produce appends
//! batches, fetch reads stored bytes, list-offsets asks for offsets. A fetch response is
//! written as chunks (`outgoing`): the codec encodes every field but the records, and a local
//! partition's records go from the segment file to the socket with `sendfile`. [`LocalPartition`] puts
//! a `fjord-log` log behind it; a diskless partition can sit beside it later without the
//! handlers knowing. Topic metadata (id, partition count, config overrides) lives in
//! [`Topics`], persisted one file per topic, written before the logs so that the topic file
//! is the commit point of a create and its removal the commit point of a delete.
//!
//! # Invariants
//! - Nothing from the network is trusted: a frame is size-checked before any allocation, a
//!   request that does not decode closes only its connection, every batch is validated by
//!   the log before it touches a file.
//! - Kafka error codes come from one place, [`codes`].
//! - The high watermark is kept apart from the log end offset; consumers never see past it.

mod codes;
mod config;
mod connection;
mod error;
mod groups;
mod handlers;
mod metrics;
mod outgoing;
mod partition;
mod producer_ids;
mod server;
mod topics;

pub use config::BrokerConfig;
pub use error::{Error, Result};
pub use groups::GroupConfig;
pub use partition::{Isolation, LocalPartition, PartitionOffsets, PartitionStorage};
pub use server::{Broker, decode_request_frame};
pub use topics::{Topic, Topics, validate_topic_name};

//! AddPartitionsToTxn (client versions 0-3): partitions join the producer's transaction
//! before it writes to them. If any partition is refused (unknown, internal), none is
//! added: the others are answered OPERATION_NOT_ATTEMPTED, as Kafka does.

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, TopicName};

use super::Context;
use crate::codes::{Refusal, error_code, transaction_error_code};
use fjord_engine::{Error, PartitionIndex, ProducerEpoch, ProducerId, TopicPartition};

/// From this version a fenced producer is told PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 2;

pub(crate) async fn handle(
    context: &Context,
    version: i16,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let engine = context.engine();
    // More partitions than a transaction may hold: refused whole, before any work per
    // partition (a request can name millions).
    let named: usize = request
        .v3_and_below_topics
        .iter()
        .map(|t| t.partitions.len())
        .sum();
    if named > engine.config().transactions.partitions_max {
        return refuse_all(&request, Refusal::InvalidRequest.code());
    }
    let partitions: Vec<(TopicName, TopicPartition)> = request
        .v3_and_below_topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.clone(), (t.name.to_string(), PartitionIndex(*p))))
        })
        .collect();
    let refused: Vec<Option<i16>> = partitions
        .iter()
        .map(|(_, (topic, partition))| writable(engine, topic, *partition).err())
        .map(|e| e.map(|e| error_code(&e)))
        .collect();
    let codes: Vec<i16> = if refused.iter().any(Option::is_some) {
        refused
            .iter()
            .map(|r| r.unwrap_or_else(|| Refusal::OperationNotAttempted.code()))
            .collect()
    } else {
        let producer = (
            ProducerId(request.v3_and_below_producer_id.0),
            ProducerEpoch(request.v3_and_below_producer_epoch),
        );
        let mut wanted: Vec<TopicPartition> = partitions.iter().map(|(_, p)| p.clone()).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let outcome = engine
            .add_partitions_to_transaction(
                &request.v3_and_below_transactional_id,
                producer,
                &wanted,
            )
            .await;
        let code = match outcome {
            Ok(()) => 0,
            Err(error) => {
                tracing::debug!(transactional_id = %request.v3_and_below_transactional_id.as_str(), %error, "AddPartitionsToTxn refused");
                transaction_error_code(&error, version, PRODUCER_FENCED_SINCE)
            }
        };
        vec![code; partitions.len()]
    };
    let mut results: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for ((name, (_, partition)), code) in partitions.into_iter().zip(codes) {
        let result = AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(partition.0)
            .with_partition_error_code(code);
        match results.last_mut() {
            Some(last) if last.name == name => last.results_by_partition.push(result),
            _ => results.push(
                AddPartitionsToTxnTopicResult::default()
                    .with_name(name)
                    .with_results_by_partition(vec![result]),
            ),
        }
    }
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
}

/// The partition exists and clients may write it.
fn writable(
    engine: &fjord_engine::Engine,
    topic: &str,
    partition: PartitionIndex,
) -> Result<(), Error> {
    let found = engine.require_topic(topic)?;
    if found.is_internal() {
        return Err(Error::InternalTopicWrite {
            topic: topic.to_string(),
        });
    }
    found.partition(partition).map(|_| ())
}

/// Every partition named, answered `code`.
fn refuse_all(request: &AddPartitionsToTxnRequest, code: i16) -> AddPartitionsToTxnResponse {
    let results = request
        .v3_and_below_topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*p)
                        .with_partition_error_code(code)
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(partitions)
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
}

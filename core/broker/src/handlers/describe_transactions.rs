//! DescribeTransactions: each transactional id's state, producer, timeout, start time and
//! partitions (what `kafka-transactions.sh describe` and `fjord txn describe` show).

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
    TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use super::Context;
use crate::codes::{Refusal, error_code};

/// Most ids one request may describe: each answer copies a transaction's partitions.
const IDS_PER_REQUEST_MAX: usize = 10_000;

pub(crate) fn handle(
    context: &Context,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    if request.transactional_ids.len() > IDS_PER_REQUEST_MAX {
        let states = request
            .transactional_ids
            .into_iter()
            .map(|id| refused(id, Refusal::InvalidRequest.code()))
            .collect();
        return DescribeTransactionsResponse::default().with_transaction_states(states);
    }
    let ids: Vec<String> = request
        .transactional_ids
        .iter()
        .map(|id| id.to_string())
        .collect();
    let found = context.engine().transactions().describe(&ids);
    let states = request
        .transactional_ids
        .into_iter()
        .zip(found)
        .map(|(id, found)| match found {
            Ok(metadata) => {
                let mut topics: Vec<TopicData> = Vec::new();
                for (topic, partition) in &metadata.partitions {
                    match topics.last_mut() {
                        Some(last) if last.topic.as_str() == topic => {
                            last.partitions.push(partition.0);
                        }
                        _ => topics.push(
                            TopicData::default()
                                .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                                .with_partitions(vec![partition.0]),
                        ),
                    }
                }
                TransactionState::default()
                    .with_transactional_id(id)
                    .with_transaction_state(StrBytes::from_static_str(metadata.state.name()))
                    .with_transaction_timeout_ms(metadata.timeout_ms)
                    .with_transaction_start_time_ms(metadata.start_ms)
                    .with_producer_id(ProducerId(metadata.producer_id.0))
                    .with_producer_epoch(metadata.producer_epoch.0)
                    .with_topics(topics)
            }
            Err(_) if id.is_empty() => refused(id, Refusal::InvalidRequest.code()),
            Err(error) => refused(id, error_code(&error)),
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

fn refused(id: TransactionalId, code: i16) -> TransactionState {
    TransactionState::default()
        .with_transactional_id(id)
        .with_error_code(code)
        .with_transaction_state(StrBytes::from_static_str(""))
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
        .with_transaction_start_time_ms(-1)
}

//! AddOffsetsToTxn: the transaction will commit offsets of a group (TxnOffsetCommit).

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use super::Context;
use crate::codes::transaction_error_code;
use fjord_engine::{ProducerEpoch, ProducerId};

/// From this version a fenced producer is told PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 2;

pub(crate) async fn handle(
    context: &Context,
    version: i16,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let producer = (
        ProducerId(request.producer_id.0),
        ProducerEpoch(request.producer_epoch),
    );
    let outcome = context
        .engine()
        .add_offsets_to_transaction(&request.transactional_id, producer, &request.group_id)
        .await;
    let code = match outcome {
        Ok(()) => 0,
        Err(error) => {
            tracing::debug!(transactional_id = %request.transactional_id.as_str(), %error, "AddOffsetsToTxn refused");
            transaction_error_code(&error, version, PRODUCER_FENCED_SINCE)
        }
    };
    AddOffsetsToTxnResponse::default().with_error_code(code)
}

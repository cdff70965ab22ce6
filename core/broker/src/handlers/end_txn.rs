//! EndTxn: commit or abort the producer's transaction; answered once every partition of it
//! has its marker.

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use super::Context;
use crate::codes::transaction_error_code;
use fjord_engine::{ProducerEpoch, ProducerId};

/// From this version a fenced producer is told PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 2;

pub(crate) async fn handle(
    context: &Context,
    version: i16,
    request: EndTxnRequest,
) -> EndTxnResponse {
    let producer = (
        ProducerId(request.producer_id.0),
        ProducerEpoch(request.producer_epoch),
    );
    let outcome = context
        .engine()
        .end_transaction(&request.transactional_id, producer, request.committed)
        .await;
    let code = match outcome {
        Ok(()) => 0,
        Err(error) => {
            tracing::debug!(transactional_id = %request.transactional_id.as_str(), %error, "EndTxn refused");
            transaction_error_code(&error, version, PRODUCER_FENCED_SINCE)
        }
    };
    EndTxnResponse::default()
        .with_error_code(code)
        .with_producer_id(request.producer_id)
        .with_producer_epoch(request.producer_epoch)
}

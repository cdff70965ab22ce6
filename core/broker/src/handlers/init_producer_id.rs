//! InitProducerId: a fresh producer id at epoch 0 for an idempotent producer.
//!
//! Without a transactional id Kafka always answers with a new id (an epoch bump request from
//! a KIP-360 client gets one too). Transactions are not implemented yet, so a transactional id
//! is refused rather than half served.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::Context;
use crate::codes::error_code;

pub(crate) async fn handle(
    context: &Context,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let refused = |code: i16| {
        InitProducerIdResponse::default()
            .with_error_code(code)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if request.transactional_id.is_some() {
        tracing::debug!("InitProducerId with a transactional id: transactions are not supported");
        return refused(crate::codes::Refusal::TransactionalIdAuthorizationFailed.code());
    }
    match context.engine().allocate_producer_id().await {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id.0))
            .with_producer_epoch(0),
        Err(error) => {
            tracing::warn!(%error, "cannot reserve producer ids");
            refused(error_code(&error))
        }
    }
}

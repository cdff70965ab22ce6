//! InitProducerId: a producer id and epoch. Without a transactional id, a new idempotent
//! producer at epoch 0 (Kafka answers a KIP-360 epoch bump request of an idempotent producer
//! with a new id too). With one, the transaction coordinator's answer: the id's producer
//! with its epoch bumped, earlier incarnations fenced.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::Context;
use crate::codes::transaction_error_code;

/// From this version a fenced producer is told PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 4;

pub(crate) async fn handle(
    context: &Context,
    version: i16,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    // KIP-360: both the producer id and its epoch, or neither (Kafka: INVALID_REQUEST).
    let (id, epoch) = (request.producer_id.0, request.producer_epoch);
    if (id < 0) != (epoch < 0) {
        return InitProducerIdResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
    }
    let expected = (id >= 0).then_some((
        fjord_engine::ProducerId(id),
        fjord_engine::ProducerEpoch(epoch),
    ));
    let outcome = context
        .engine()
        .init_producer_id(
            request.transactional_id.as_ref().map(|id| id.as_str()),
            request.transaction_timeout_ms,
            expected,
        )
        .await;
    match outcome {
        Ok((producer_id, epoch)) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(producer_id.0))
            .with_producer_epoch(epoch.0),
        Err(error) => {
            tracing::debug!(transactional_id = ?request.transactional_id.as_deref(), %error, "InitProducerId refused");
            InitProducerIdResponse::default()
                .with_error_code(transaction_error_code(
                    &error,
                    version,
                    PRODUCER_FENCED_SINCE,
                ))
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        }
    }
}

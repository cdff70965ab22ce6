//! Handlers called in process against an engine with a manual clock: no sockets.

use std::sync::Arc;

use bytes::Bytes;
use fjord_engine::{Engine, EngineConfig, ManualClock, Offset, PartitionIndex};
use fjord_record::{BatchBuilder, Compression, NewRecord};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    ApiKey, ProduceRequest, RequestHeader, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{Context, Response, dispatch};
use crate::BrokerConfig;

async fn context(dir: &tempfile::TempDir) -> anyhow::Result<Context> {
    let clock = Arc::new(ManualClock::new(1_767_225_600_000));
    let engine = Engine::open(EngineConfig::new(dir.path().to_path_buf()), clock).await?;
    let listen = "127.0.0.1:9092".parse()?;
    Ok(Context::new(BrokerConfig::new(listen), Arc::new(engine)))
}

fn produce(topic: &str, records: usize) -> anyhow::Result<ProduceRequest> {
    let mut builder = BatchBuilder::new(Compression::None);
    for i in 0..records {
        let value = format!("value-{i}");
        builder.push(&NewRecord {
            timestamp_ms: 1_767_225_600_000,
            key: None,
            value: Some(value.as_bytes()),
            headers: &[],
        })?;
    }
    let partition = PartitionProduceData::default()
        .with_index(0)
        .with_records(Some(Bytes::from(builder.build()?)));
    let topic = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partition_data(vec![partition]);
    Ok(ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![topic]))
}

/// (error code, base offset) of the one partition a produce answered for.
async fn send(
    context: &Context,
    version: i16,
    request: ProduceRequest,
) -> anyhow::Result<(i16, i64)> {
    let partition = send_for(context, version, request).await?;
    Ok((partition.error_code, partition.base_offset))
}

/// The answer for the one partition a produce named.
async fn send_for(
    context: &Context,
    version: i16,
    request: ProduceRequest,
) -> anyhow::Result<PartitionProduceResponse> {
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(version);
    let peer = "127.0.0.1:50000".parse()?;
    let response = dispatch(context, &header, peer, RequestKind::Produce(request)).await?;
    let Some(Response::Message(ResponseKind::Produce(response))) = response else {
        anyhow::bail!("no produce response: {response:?}");
    };
    Ok(response.responses[0].partition_responses[0].clone())
}

#[tokio::test]
async fn produce_below_v3_is_refused_and_v3_up_is_served() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let context = context(&dir).await?;
    let unsupported = ResponseError::UnsupportedVersion.code();
    for version in 0..3 {
        assert_eq!(
            send(&context, version, produce("t", 2)?).await?.0,
            unsupported
        );
    }
    // Refused before anything is looked up: nothing is created or written.
    assert!(context.engine().topic("t").is_none());
    context.engine().topic_or_create("t", true).await?;
    assert_eq!(send(&context, 3, produce("t", 2)?).await?, (0, 0));
    assert_eq!(send(&context, 9, produce("t", 3)?).await?, (0, 2));
    assert_eq!(
        context
            .engine()
            .offsets("t", PartitionIndex(0))?
            .high_watermark,
        Offset(5)
    );
    Ok(())
}

#[tokio::test]
async fn produce_to_an_internal_topic_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let context = context(&dir).await?;
    let (error, _) = send(&context, 9, produce(fjord_engine::OFFSETS_TOPIC, 1)?).await?;
    assert_eq!(error, ResponseError::InvalidTopicException.code());
    Ok(())
}

#[tokio::test]
async fn refused_records_are_named_from_v8() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let context = context(&dir).await?;
    let compact = [("cleanup.policy".to_string(), "compact".to_string())].into();
    context
        .engine()
        .create_topic("compacted", 1, compact, false)
        .await?;
    // `produce` writes records without keys: a compacted topic refuses every one.
    let refused = send_for(&context, 8, produce("compacted", 2)?).await?;
    assert_eq!(refused.error_code, ResponseError::InvalidRecord.code());
    let indexes: Vec<i32> = refused
        .record_errors
        .iter()
        .map(|e| e.batch_index)
        .collect();
    assert_eq!(indexes, [0, 1]);
    let message = refused.error_message.as_deref().unwrap_or_default();
    assert!(message.contains("without key"), "{message}");
    // Before v8 the response has no room for them: the code alone.
    let old = send_for(&context, 7, produce("compacted", 2)?).await?;
    assert_eq!(old.error_code, ResponseError::InvalidRecord.code());
    assert!(old.record_errors.is_empty() && old.error_message.is_none());
    assert_eq!(
        context
            .engine()
            .offsets("compacted", PartitionIndex(0))?
            .log_end_offset,
        Offset(0)
    );
    Ok(())
}

/// (error code, producer id, epoch) of an InitProducerId.
async fn init_producer_id(
    context: &Context,
    version: i16,
    transactional_id: &str,
    producer: (i64, i16),
) -> anyhow::Result<(i16, i64, i16)> {
    let request = kafka_protocol::messages::InitProducerIdRequest::default()
        .with_transactional_id(Some(StrBytes::from_string(transactional_id.into()).into()))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(kafka_protocol::messages::ProducerId(producer.0))
        .with_producer_epoch(producer.1);
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::InitProducerId as i16)
        .with_request_api_version(version);
    let peer = "127.0.0.1:50000".parse()?;
    let kind = RequestKind::InitProducerId(request);
    let response = dispatch(context, &header, peer, kind).await?;
    let Some(Response::Message(ResponseKind::InitProducerId(response))) = response else {
        anyhow::bail!("no InitProducerId response: {response:?}");
    };
    Ok((
        response.error_code,
        response.producer_id.0,
        response.producer_epoch,
    ))
}

#[tokio::test]
async fn init_producer_id_bumps_fences_and_checks_kip_360_fields_by_version() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let context = context(&dir).await?;
    let (error, id, epoch) = init_producer_id(&context, 5, "app", (-1, -1)).await?;
    assert_eq!((error, epoch), (0, 0));
    // KIP-360: the client's own producer is bumped; a retry of that bump answered again.
    let bumped = init_producer_id(&context, 5, "app", (id, 0)).await?;
    assert_eq!(bumped, (0, id, 1));
    assert_eq!(init_producer_id(&context, 5, "app", (id, 0)).await?, bumped);
    // A stale epoch is fenced: PRODUCER_FENCED from v4, INVALID_PRODUCER_EPOCH before.
    let stale = (id, 0);
    init_producer_id(&context, 5, "app", (-1, -1)).await?; // another incarnation: epoch 2
    let fenced = ResponseError::ProducerFenced.code();
    assert_eq!(init_producer_id(&context, 4, "app", stale).await?.0, fenced);
    let old_code = ResponseError::InvalidProducerEpoch.code();
    assert_eq!(
        init_producer_id(&context, 3, "app", stale).await?.0,
        old_code
    );
    // One of the two fields without the other is INVALID_REQUEST.
    let invalid = ResponseError::InvalidRequest.code();
    assert_eq!(
        init_producer_id(&context, 5, "app", (id, -1)).await?.0,
        invalid
    );
    assert_eq!(
        init_producer_id(&context, 5, "app", (-1, 2)).await?.0,
        invalid
    );
    Ok(())
}

async fn call(context: &Context, version: i16, kind: RequestKind) -> anyhow::Result<ResponseKind> {
    let api_key = match &kind {
        RequestKind::ListTransactions(_) => ApiKey::ListTransactions,
        RequestKind::AddPartitionsToTxn(_) => ApiKey::AddPartitionsToTxn,
        other => anyhow::bail!("not used here: {other:?}"),
    };
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version);
    let peer = "127.0.0.1:50000".parse()?;
    match dispatch(context, &header, peer, kind).await? {
        Some(Response::Message(response)) => Ok(response),
        other => anyhow::bail!("no response: {other:?}"),
    }
}

#[tokio::test]
async fn transactional_requests_past_their_bounds_are_refused_whole() -> anyhow::Result<()> {
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    use kafka_protocol::messages::{AddPartitionsToTxnRequest, ListTransactionsRequest};

    let dir = tempfile::tempdir()?;
    let context = context(&dir).await?;
    // A pattern that is no expression on its own, though it would compile once anchored.
    let request = ListTransactionsRequest::default()
        .with_transactional_id_pattern(Some(StrBytes::from_static_str("a)|(b")));
    let ResponseKind::ListTransactions(listed) =
        call(&context, 2, RequestKind::ListTransactions(request)).await?
    else {
        anyhow::bail!("not a ListTransactions answer");
    };
    assert_eq!(
        listed.error_code,
        crate::codes::Refusal::InvalidRegularExpression.code()
    );
    // More partitions than a transaction may hold: every one refused, none looked up.
    let partitions_max = context.engine().config().transactions.partitions_max;
    let topic = AddPartitionsToTxnTopic::default()
        .with_name(TopicName(StrBytes::from_static_str("no-such-topic")))
        .with_partitions((0..=partitions_max as i32).collect());
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(StrBytes::from_static_str("big").into())
        .with_v3_and_below_topics(vec![topic]);
    let ResponseKind::AddPartitionsToTxn(added) =
        call(&context, 3, RequestKind::AddPartitionsToTxn(request)).await?
    else {
        anyhow::bail!("not an AddPartitionsToTxn answer");
    };
    let codes: Vec<i16> = added.results_by_topic_v3_and_below[0]
        .results_by_partition
        .iter()
        .map(|r| r.partition_error_code)
        .collect();
    assert_eq!(codes.len(), partitions_max + 1);
    assert!(
        codes
            .iter()
            .all(|c| *c == ResponseError::InvalidRequest.code())
    );
    Ok(())
}
